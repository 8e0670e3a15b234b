#!/usr/bin/env node
// xlate benchmark (issue 4): upcalls translated per second on one core — a
// full xlate per packet (table walk, datapath actions, megaflow, tags) — with
// the simple rule set (`priority=100,ip,nw_dst=…,actions=output:N`) at 10 and
// at 1,000 rules, and with a pipeline (3 tables, resubmit, set_field,
// dec_ttl, NORMAL with learned MACs). Packets are spread over the rules, so
// each one is a fresh flow, as upcalls are. Prints wall-clock rates and, as
// the steadier figure on a shared machine, the rate per second of CPU time.
// Usage: node bench/ofproto-xlate.mjs [--upcalls N] [--rounds N] [--quick] [--json FILE]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { contractOptions, Results, roundsOf } from './lib/contract.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: opt } = parseArgs({ options: { ...contractOptions, upcalls: { type: 'string' } } });
const UPCALLS = Number(opt.upcalls ?? (opt.quick ? 50000 : 200000));
const ROUNDS = roundsOf(opt, 5, 3);
const results = new Results(import.meta.url, 'ofproto xlate: upcalls translated per second on one core', opt, ROUNDS);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const dir = mkdtempSync(join(tmpdir(), 'nvs-xlate-bench-'));
try {
  const entry = join(dir, 'entry.ts');
  writeFileSync(entry, `export { Ofproto, parseFlows, parseFlow, identityOdpPorts, trace } from ${JSON.stringify(join(root, 'packages/ofproto/src/index.ts'))};\n`);
  const out = join(dir, 'ofproto.mjs');
  await build({ entryPoints: [entry], bundle: true, platform: 'node', format: 'esm', outfile: out, logLevel: 'warning', external: ['pino'] });
  const { Ofproto, parseFlows, parseFlow, identityOdpPorts, trace } = await import(pathToFileURL(out).href);
  const { default: pino } = await import(pathToFileURL(join(root, 'node_modules/pino/pino.js')).href);

  const flowOf = (text) => Uint32Array.from(parseFlow(text, { command: 'delete' }).match.value);
  const ip = (i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;

  function bench(name, rulesText, packets, setup) {
    const of = new Ofproto({
      name: 'br0',
      odpPorts: identityOdpPorts(100),
      logger: pino({ level: 'silent' }),
      clock: { now: () => 1_000_000 },
      failMode: 'secure',
      ports: [1, 2, 3, 4].map((n) => ({ ofport: n, name: `p${n}` })),
    });
    of.applyFlowMods(parseFlows(rulesText));
    setup?.(of);
    let sink = 0;
    for (let i = 0; i < 20000; i++) sink += of.xlate(packets[i % packets.length]).actions.length; // warm-up
    const rates = [];
    const cpuRates = [];
    for (let r = 0; r < ROUNDS; r++) {
      const t = process.hrtime.bigint();
      const c = process.cpuUsage();
      for (let i = 0; i < UPCALLS; i++) sink += of.xlate(packets[i % packets.length]).actions.length;
      rates.push(UPCALLS / (Number(process.hrtime.bigint() - t) / 1e9));
      const used = process.cpuUsage(c);
      cpuRates.push(UPCALLS / ((used.user + used.system) / 1e6));
    }
    if (sink === 0) throw new Error(`no actions produced; a trace:\n${trace(of, packets[1]).text}`);
    const m = median(rates);
    const mc = median(cpuRates);
    console.log(`  ${name}: ${Math.round(m).toLocaleString('en-US')} upcalls/s wall (${(1e6 / m).toFixed(2)} µs each; rounds ${rates.map((x) => Math.round(x / 1000) + 'k').join(' ')})`);
    // CPU time is steadier than wall time on a shared machine (it leaves out time other processes ran).
    console.log(`    per CPU second: ${Math.round(mc).toLocaleString('en-US')} upcalls (${(1e6 / mc).toFixed(2)} µs of CPU each, GC included)`);
    results.metric({
      name: `xlate-${name.split(' (')[0].replace(/[^a-z0-9]+/gi, '-').toLowerCase()}`,
      label: `xlate, ${name}`,
      unit: 'upcalls/CPU-s',
      better: 'higher',
      nvs: { ofproto: cpuRates },
      anchors: { ovs: "absent: OVS's xlate runs only inside ovs-vswitchd's upcall path (see flow-setup for the end-to-end comparison)" },
    });
  }

  console.log(`ofproto xlate: ${UPCALLS} upcalls per round, ${ROUNDS} rounds, median, one core`);
  for (const n of [10, 1000]) {
    const rules = Array.from({ length: n }, (_, i) => `priority=100,ip,nw_dst=${ip(i)},actions=output:${1 + (i % 2)}`).join('\n');
    const packets = Array.from({ length: 4096 }, (_, i) => flowOf(`in_port=3,tcp,nw_src=192.168.0.${i & 255},nw_dst=${ip(i % n)},tp_src=${1024 + i},tp_dst=80`));
    bench(`simple set, ${n} rules`, rules, packets);
  }
  const pipeline = `table=0,priority=200,in_port=4,actions=drop
table=0,priority=100,ip,actions=dec_ttl,resubmit(,1)
table=0,priority=0,actions=NORMAL
${Array.from({ length: 1000 }, (_, i) => `table=1,priority=${100 + (i % 7)},tcp,nw_dst=${ip(i)},tp_dst=80,actions=set_field:00:00:00:00:00:0${1 + (i % 3)}->eth_dst,resubmit(,2)`).join('\n')}
table=1,priority=1,actions=resubmit(,2)
table=2,actions=NORMAL`;
  const macs = ['00:00:00:00:00:01', '00:00:00:00:00:02', '00:00:00:00:00:03'];
  const pktsPipe = Array.from({ length: 4096 }, (_, i) =>
    flowOf(`in_port=${1 + ((i + 1) % 3)},dl_src=00:00:00:00:01:${(i & 255).toString(16).padStart(2, '0')},dl_dst=${macs[i % 3]},tcp,nw_src=192.168.0.${i & 255},nw_dst=${ip(i % 1200)},nw_ttl=64,tp_dst=80`),
  );
  bench('pipeline (3 tables, 1,000 rules, dec_ttl, set_field, resubmit, NORMAL with 3 learned MACs)', pipeline, pktsPipe, (of) => {
    macs.forEach((m, i) => of.xlate(flowOf(`in_port=${i + 1},dl_src=${m},dl_dst=ff:ff:ff:ff:ff:ff`)));
  });
  results.write();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
