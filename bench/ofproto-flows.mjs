#!/usr/bin/env node
// Flow-table loading benchmark (issue 4): parse + insert 100,000 simple flows
// (`priority=100,ip,nw_dst=10.x.y.z,actions=output:N`, the scenario of the
// ovs-ofctl add-flows anchor) into one bridge as one atomic batch, then the
// same set again (every rule replaced), then a mixed set (many priorities,
// several tables, set_field, resubmit). Prints time and heap growth. Where
// ovs-vswitchd is installed, runs the anchor on the same file — a real
// ovs-vswitchd (dummy datapath) fed by `ovs-ofctl add-flows` — alternating
// rounds with nvs, and prints the ratio of medians.
// Usage: node bench/ofproto-flows.mjs [--flows N] [--rounds N] [--no-ovs] [--quick] [--json FILE]
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { build } from 'esbuild';
import { contractOptions, Results, roundsOf } from './lib/contract.mjs';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc');
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: opt } = parseArgs({
  options: {
    ...contractOptions,
    flows: { type: 'string' },
    'no-ovs': { type: 'boolean', default: false },
  },
});
const N = Number(opt.flows ?? (opt.quick ? 20000 : 100000));
const ROUNDS = roundsOf(opt, 3);
const results = new Results(import.meta.url, `Loading ${N.toLocaleString('en-US')} rules into a bridge's tables`, opt, ROUNDS);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const heapMB = () => {
  gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
};

const dir = mkdtempSync(join(tmpdir(), 'nvs-flows-bench-'));
const daemons = [];
try {
  const entry = join(dir, 'entry.ts');
  writeFileSync(entry, `export { Ofproto, parseFlows, identityOdpPorts } from ${JSON.stringify(join(root, 'packages/ofproto/src/index.ts'))};\n`);
  const out = join(dir, 'ofproto.mjs');
  await build({ entryPoints: [entry], bundle: true, platform: 'node', format: 'esm', outfile: out, logLevel: 'warning', external: ['pino'] });
  const { Ofproto, parseFlows, identityOdpPorts } = await import(pathToFileURL(out).href);
  const { default: pino } = await import(pathToFileURL(join(root, 'node_modules/pino/pino.js')).href);

  const simple = [];
  for (let i = 0; i < N; i++) {
    simple.push(`priority=100,ip,nw_dst=10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255},actions=output:${1 + (i % 2)}`);
  }
  const simpleText = simple.join('\n') + '\n';
  const mixed = [];
  for (let i = 0; i < N; i++) {
    const table = i % 8;
    const prio = 100 + (i % 500);
    const a = `${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    const act =
      i % 3 === 0
        ? `set_field:192.168.${i & 255}.1->ip_dst,resubmit(,${table + 1})`
        : i % 3 === 1
          ? `mod_vlan_vid:${1 + (i % 4000)},output:${1 + (i % 48)}`
          : `load:${i & 0xffff}->NXM_NX_REG0[0..15],resubmit(,${table + 1})`;
    const match = i % 2 ? `tcp,nw_src=172.16.${i & 255}.0/24,nw_dst=10.${a},tp_dst=${i & 0xffff}` : `ip,in_port=${1 + (i % 48)},nw_dst=10.${a}`;
    mixed.push(`table=${table},priority=${prio},${match},actions=${act}`);
  }
  const mixedText = mixed.join('\n') + '\n';

  const newBridge = () =>
    new Ofproto({ name: 'br0', odpPorts: identityOdpPorts(100), logger: pino({ level: 'silent' }), clock: { now: () => Date.now() }, failMode: 'secure' });

  function nvsRound(text) {
    const of = newBridge();
    const h0 = heapMB();
    let t = process.hrtime.bigint();
    const c0 = process.cpuUsage();
    const mods = parseFlows(text, { file: 'flows.txt' });
    const parse = Number(process.hrtime.bigint() - t) / 1e9;
    t = process.hrtime.bigint();
    const c1 = process.cpuUsage();
    of.applyFlowMods(mods);
    const insert = Number(process.hrtime.bigint() - t) / 1e9;
    const cpu = (c) => (c.user + c.system) / 1e6;
    const parseCpu = cpu(process.cpuUsage(c0)) - cpu(process.cpuUsage(c1));
    const insertCpu = cpu(process.cpuUsage(c1));
    if (of.dumpFlows().length !== N) throw new Error('not every rule was installed');
    // The same set again: every rule is replaced (identical match and priority).
    t = process.hrtime.bigint();
    of.applyFlowMods(parseFlows(text, { file: 'flows.txt' }));
    const replace = Number(process.hrtime.bigint() - t) / 1e9;
    const heap = heapMB() - h0;
    return { parse, insert, total: parse + insert, parseCpu, insertCpu, totalCpu: parseCpu + insertCpu, replace, heap, of };
  }

  // The anchor: a real ovs-vswitchd on a dummy datapath, fed by ovs-ofctl add-flows.
  let ovs = !opt['no-ovs'];
  try {
    execFileSync('ovs-vswitchd', ['--version'], { stdio: 'ignore' });
  } catch {
    ovs = false;
  }
  const od = join(dir, 'ovs');
  const flowFile = join(dir, 'flows.txt');
  writeFileSync(flowFile, simpleText);
  let mgmt = '';
  if (ovs) {
    mkdirSync(od);
    const env = { ...process.env, OVS_RUNDIR: od, OVS_LOGDIR: od, OVS_DBDIR: od };
    const run = (cmd, args) => execFileSync(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    run('ovsdb-tool', ['create', join(od, 'conf.db'), '/usr/share/openvswitch/vswitch.ovsschema']);
    run('ovsdb-server', [join(od, 'conf.db'), `--remote=punix:${join(od, 'db.sock')}`, `--pidfile=${join(od, 'ovsdb.pid')}`, '--detach', `--log-file=${join(od, 'ovsdb.log')}`]);
    daemons.push(join(od, 'ovsdb.pid'));
    const vsctl = (...a) => run('ovs-vsctl', [`--db=unix:${join(od, 'db.sock')}`, ...a]);
    vsctl('--no-wait', 'init');
    run('ovs-vswitchd', ['--enable-dummy=override', `unix:${join(od, 'db.sock')}`, `--pidfile=${join(od, 'vswitchd.pid')}`, '--detach', `--log-file=${join(od, 'vswitchd.log')}`]);
    daemons.push(join(od, 'vswitchd.pid'));
    vsctl('add-br', 'br0', '--', 'set', 'bridge', 'br0', 'datapath_type=netdev', '--', 'add-port', 'br0', 'p1', '--', 'set', 'Interface', 'p1', 'type=dummy', '--', 'add-port', 'br0', 'p2', '--', 'set', 'Interface', 'p2', 'type=dummy');
    mgmt = `unix:${join(od, 'br0.mgmt')}`;
  }
  function ovsRound() {
    execFileSync('ovs-ofctl', ['del-flows', mgmt]);
    const t = process.hrtime.bigint();
    execFileSync('ovs-ofctl', ['add-flows', mgmt, flowFile]);
    return Number(process.hrtime.bigint() - t) / 1e9;
  }

  const nvs = [];
  const anchor = [];
  for (let r = 0; r < ROUNDS; r++) {
    nvs.push(nvsRound(simpleText));
    if (ovs) anchor.push(ovsRound());
  }
  const f = (x) => x.toFixed(3);
  const med = (k) => median(nvs.map((x) => x[k]));
  console.log(`ofproto flows: ${N} simple flows (priority=100,ip,nw_dst=…,actions=output:N), ${ROUNDS} rounds, medians`);
  console.log(`  nvs parse ${f(med('parse'))} s + insert ${f(med('insert'))} s = ${f(med('total'))} s  (${Math.round(N / med('total'))} flows/s)`);
  console.log(`  nvs CPU time (steadier on a shared machine): parse ${f(med('parseCpu'))} s + insert ${f(med('insertCpu'))} s = ${f(med('totalCpu'))} s`);
  console.log(`  nvs same set again (every rule replaced): ${f(med('replace'))} s`);
  console.log(`  nvs heap growth with the table loaded: ${med('heap').toFixed(1)} MB (${Math.round((med('heap') * 2 ** 20) / N)} B/flow)`);
  if (ovs) {
    const rss = Number(execFileSync('ps', ['-o', 'rss=', '-p', readFileSync(join(od, 'vswitchd.pid'), 'utf8').trim()]).toString().trim());
    console.log(`  OVS ovs-ofctl add-flows into ovs-vswitchd: ${f(median(anchor))} s  (rounds: ${anchor.map(f).join(', ')}), vswitchd RSS ${(rss / 1024).toFixed(0)} MB`);
    console.log(`  ratio OVS/nvs (load time): ${(median(anchor) / med('total')).toFixed(1)}x`);
  } else {
    console.log('  OVS anchor not run (ovs-vswitchd not installed or --no-ovs)');
  }

  const mixedRuns = [];
  for (let r = 0; r < ROUNDS; r++) {
    const of = newBridge();
    const h0 = heapMB();
    const t = process.hrtime.bigint();
    of.applyFlowMods(parseFlows(mixedText, { file: 'mixed.txt' }));
    mixedRuns.push({ total: Number(process.hrtime.bigint() - t) / 1e9, heap: heapMB() - h0, n: of.dumpFlows().length });
  }
  const mt = median(mixedRuns.map((x) => x.total));
  console.log(`ofproto flows: ${N} mixed flows (8 tables, 500 priorities, set_field/mod_vlan_vid/load, resubmit): ${mixedRuns[0].n} installed`);
  console.log(`  nvs parse + insert ${f(mt)} s (${Math.round(N / mt)} flows/s), heap growth ${median(mixedRuns.map((x) => x.heap)).toFixed(1)} MB`);
  results.metric({
    name: 'load-simple',
    label: `${N.toLocaleString('en-US')} simple rules (nvs: parse + insert in process; OVS: ovs-ofctl add-flows into ovs-vswitchd)`,
    unit: 's',
    better: 'lower',
    nvs: { ofproto: nvs.map((x) => x.total) },
    anchors: { ovs: ovs ? anchor : 'absent: ovs-vswitchd not installed or --no-ovs' },
    goal: { variant: 'ofproto', anchor: 'ovs', ratio: 5 },
  });
  results.metric({
    name: 'load-mixed',
    label: `${N.toLocaleString('en-US')} mixed rules (8 tables, 500 priorities, set_field, resubmit), parse + insert`,
    unit: 's',
    better: 'lower',
    nvs: { ofproto: mixedRuns.map((x) => x.total) },
    anchors: {},
  });
  results.write();
} finally {
  for (const pid of daemons.reverse()) {
    try {
      process.kill(Number(readFileSync(pid, 'utf8').trim()));
    } catch {
      // already gone
    }
  }
  rmSync(dir, { recursive: true, force: true });
}
