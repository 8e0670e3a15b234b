#!/usr/bin/env node
// Flow setup rate of nvs-vswitchd, end to end (issue 5): packets with new
// 5-tuples enter a dummy port, each misses the datapath, goes up as an
// upcall, is translated by ofproto, and its megaflow is installed and the
// packet executed. Two bridges configurations:
//   - NORMAL: a standalone bridge (learning switch);
// In both, every packet has a new 5-tuple and a new source MAC (NORMAL's
// megaflows keep the MACs exact, so each packet is a new megaflow).
//   - ACL: 1,000 exact 5-tuple drop rules (priority 100) above NORMAL, which
//     every packet is looked up against (and misses) before NORMAL.
// The switch runs in this process (nvs-dbserver as a child, configured with
// the real ovs-vsctl) so the count of installed megaflows can be read
// directly. Packets are offered in windows no larger than the upcall queue,
// so few are lost (a busy slow path makes the datapath drop upcalls, as OVS
// does); lost upcalls are reported, and lost packets are not counted as flows. Also printed: memory
// (RSS and JS heap) per 100,000 megaflows, measured over --flows and scaled.
// Goal: ≥ 100,000 new flows/s. The default is 30,000 flows per round; use
// --flows 100000 for the memory figure at scale.
// Usage: npm run build && node bench/vswitchd-setup.mjs [--flows N] [--rounds N] [--quick] [--json FILE]
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { build } from 'esbuild';
import { contractOptions, Results, roundsOf } from './lib/contract.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: opt } = parseArgs({ options: { ...contractOptions, flows: { type: 'string' } } });
const FLOWS = Number(opt.flows ?? (opt.quick ? 10000 : 30000));
const ROUNDS = roundsOf(opt, 3, 2);
const WINDOW = 1024;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const addon = join(root, 'packages/datapath/nvs-datapath.node');
const dbserver = join(root, 'dist/nvs-dbserver.js');
for (const f of [addon, dbserver]) {
  if (!existsSync(f)) {
    console.error(`${f} is missing: run "npm run build" first`);
    process.exit(1);
  }
}
process.env.NVS_DATAPATH_ADDON = addon;

const dir = mkdtempSync(join(tmpdir(), 'nvs-bench-vswitchd-'));
const entry = join(dir, 'entry.ts');
writeFileSync(
  entry,
  `export { Vswitchd, NvsDpif, buildPacket } from ${JSON.stringify(join(root, 'packages/vswitchd/src/index.ts'))};
export { VLog } from ${JSON.stringify(join(root, 'packages/daemon/src/index.ts'))};\n`,
);
const bundle = join(dir, 'vswitchd.mjs');
await build({
  entryPoints: [entry], bundle: true, platform: 'node', format: 'esm', outfile: bundle, logLevel: 'warning', external: ['*.node'],
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
});
const { Vswitchd, NvsDpif, buildPacket, VLog } = await import(pathToFileURL(bundle).href);

const rundir = join(dir, 'run');
const db = `unix:${join(rundir, 'db.sock')}`;
// Asynchronous: the switch runs in this process and must answer while ovs-vsctl waits for it.
const run = promisify(execFile);
const vsctl = (...args) => run('ovs-vsctl', [`--db=${db}`, '--timeout=30', ...args]);
execFileSync(process.execPath, [dbserver, '--rundir', rundir, '--detach', '--pidfile', `--remote=punix:${join(rundir, 'db.sock')}`, join(rundir, 'conf.db')]);
await vsctl('--no-wait', 'init');

let dp;
let sw;
const vlog = new VLog('bench', { console: undefined });
const tick = () => new Promise((r) => setImmediate(r));

/**
 * A fresh switch (and datapath) for one measurement, so that rounds do not
 * pay for the previous round's megaflows; the bridge comes from the database.
 * With `rules`, they are loaded through nvs-ofctl first. h2 is learned on p2,
 * so NORMAL unicasts instead of flooding.
 */
async function freshSwitch(rules) {
  sw = new Vswitchd({ vlog, rundir, remote: db, restore: false, openDpif: (o) => (dp = NvsDpif.open(o)) });
  await sw.start();
  if (rules) await run(process.execPath, [join(root, 'dist/nvs-ofctl.js'), '--rundir', rundir, 'add-flows', 'br0', rules]);
  const odp = (name) => dp.stats().ports.find((p) => p.name === name).no;
  dp.inject(odp('p2'), [buildPacket({ eth_src: 0x0a0000000002, eth_dst: 0x0a0000000001, nw_src: 0x0b000001, nw_dst: 0x0a000001, nw_proto: 17, tp_src: 1, tp_dst: 2 })]);
  while (sw.megaflowCount < 1) await tick();
  return { p1: odp('p1'), p2: odp('p2') };
}

/**
 * Distinct packets from new hosts to h2: packet i has its own source MAC and
 * 5-tuple. NORMAL's megaflows keep the MAC addresses exact, so each packet
 * is a new megaflow in both configurations (a new 5-tuple alone would often
 * share a megaflow: the classifier only keeps the bits its decision needed).
 */
function packets(n, base) {
  const out = new Array(n);
  for (let i = 0; i < n; i++) {
    const j = base + i;
    out[i] = buildPacket({
      eth_src: 0x020000000000 + j,
      eth_dst: 0x0a0000000002,
      nw_src: (0x0a000000 + (j >>> 16)) >>> 0,
      nw_dst: 0x0b000001,
      nw_proto: 6,
      tp_src: 1024 + ((j & 0xffff) % 60000),
      tp_dst: 80,
    });
  }
  return out;
}

/** Offers `pkts` on port `inPort` in windows; resolves once every packet came out of `outPort`. */
async function setup(inPort, outPort, pkts) {
  // Packets sent out of p2, queued or dropped: nothing drains p2, and a dummy
  // port's tx queue holds 65,536 packets, beyond which it drops and counts.
  const txOut = () => {
    const p = dp.stats().ports.find((q) => q.no === outPort);
    return p.txPackets + p.txDropped;
  };
  const flows0 = sw.megaflowCount;
  const lost0 = dp.stats().lostUpcalls;
  const tx0 = txOut();
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  for (let off = 0; off < pkts.length; off += WINDOW) {
    const chunk = pkts.slice(off, off + WINDOW);
    for (let k = 0; k < chunk.length; k += 32) dp.inject(inPort, chunk.slice(k, k + 32));
    const want = tx0 + off + chunk.length;
    // A packet whose upcall was dropped (queue full while the slow path was busy) never comes out.
    while (txOut() + (dp.stats().lostUpcalls - lost0) < want) await tick();
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  // CPU time of the whole process (event loop, polling thread, upcall bridge), user + system.
  const cpuSecs = (cpu.user + cpu.system) / 1e6;
  return { secs, cpuSecs, flows: sw.megaflowCount - flows0, lost: dp.stats().lostUpcalls - lost0 };
}

// A real collection before each memory reading, so garbage is not counted as megaflows.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc');
function mem() {
  gc();
  const m = process.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed, heapTotal: m.heapTotal, external: m.external };
}

try {
  const boot = new Vswitchd({ vlog, rundir, remote: db, restore: false, openDpif: (o) => NvsDpif.open(o) });
  await boot.start();
  // The MAC table holds every host of the run (OVS's default holds 8,192), so
  // what is measured is flow setup, not eviction churn.
  await vsctl('add-br', 'br0', '--', 'set', 'Bridge', 'br0', 'datapath_type=netdev', `other_config:mac-table-size=${FLOWS * ROUNDS + 16}`,
    '--', 'add-port', 'br0', 'p1', '--', 'set', 'Interface', 'p1', 'type=dummy', 'ofport_request=1',
    '--', 'add-port', 'br0', 'p2', '--', 'set', 'Interface', 'p2', 'type=dummy', 'ofport_request=2');
  await vsctl('set', 'Open_vSwitch', '.', 'other_config:max-idle=600000');
  await boot.stop();
  // 1,000 exact 5-tuple rules above NORMAL.
  const rules = [];
  for (let i = 0; i < 1000; i++) rules.push(`priority=100,tcp,nw_src=192.168.${i >> 8}.${i & 255},nw_dst=11.0.0.1,tp_src=${2000 + i},tp_dst=${1000 + i},actions=drop`);
  const aclFile = join(dir, 'acl.rules');
  writeFileSync(aclFile, `${rules.join('\n')}\n`);

  const setupRates = { normal: [], acl: [] };
  const cpuRates = { normal: [], acl: [] };
  let memPer100k;
  // Alternate the two configurations (A B A B…): this machine's speed drifts.
  for (let round = 0; round < ROUNDS; round++) {
    for (const kind of ['normal', 'acl']) {
      const { p1, p2 } = await freshSwitch(kind === 'acl' ? aclFile : undefined);
      const pkts = packets(FLOWS, round * FLOWS);
      const before = mem();
      const r = await setup(p1, p2, pkts);
      const after = mem();
      setupRates[kind].push(r.flows / r.secs);
      cpuRates[kind].push(r.flows / r.cpuSecs);
      if (kind === 'normal' && round === 0) memPer100k = Object.fromEntries(Object.keys(before).map((k) => [k, ((after[k] - before[k]) * 100000) / r.flows]));
      const label = kind === 'normal' ? 'NORMAL' : '1,000-rule table';
      console.log(`  round ${round + 1} ${label}: ${FLOWS} packets, ${r.flows} new megaflows in ${r.secs.toFixed(2)} s = ${Math.round(r.flows / r.secs)} flows/s, ${Math.round(r.flows / r.cpuSecs)} flows per CPU-second (lost upcalls ${r.lost})`);
      if (round < ROUNDS - 1 || kind === 'normal') await sw.stop();
    }
  }
  const s = dp.stats();
  const busy = s.threads.reduce((n, t) => n + t.counters.busyNs, 0);
  const pk = s.threads.reduce((n, t) => n + t.counters.packets, 0);
  console.log(`flow setup, NORMAL bridge:        median ${Math.round(median(setupRates.normal))} new flows/s over ${ROUNDS} rounds of ${FLOWS}`);
  console.log(`flow setup, 1,000-rule table:     median ${Math.round(median(setupRates.acl))} new flows/s over ${ROUNDS} rounds of ${FLOWS}`);
  console.log(`flows per CPU-second (process):   NORMAL ${Math.round(median(cpuRates.normal))}, 1,000-rule table ${Math.round(median(cpuRates.acl))} (medians; user+system time of every thread, so busy-polling counts)`);
  console.log(`memory per 100,000 megaflows:     RSS +${(memPer100k.rss / 2 ** 20).toFixed(1)} MiB, JS heap used +${(memPer100k.heap / 2 ** 20).toFixed(1)} MiB, JS heap reserved +${(memPer100k.heapTotal / 2 ** 20).toFixed(1)} MiB, external +${(memPer100k.external / 2 ** 20).toFixed(1)} MiB (slow-path ukeys + datapath tables; measured over ${FLOWS}, scaled)`);
  console.log(`polling thread busy time:         ${pk ? (busy / pk).toFixed(0) : '?'} ns per packet received (incl. miss handling in the fast path)`);
  console.log('goal: >= 100000 new flows/s');
  const results = new Results(import.meta.url, 'Flow setup on dummy ports, the switch in this process (nvs alone; flow-setup compares with OVS on veths)', opt, ROUNDS);
  const noAnchor = { ovs: "absent: OVS's dummy ports take packets one ovs-appctl call at a time (flow-setup has OVS on veths)" };
  results.metric({ name: 'setup-normal', label: 'new flows/s, NORMAL, dummy ports', unit: 'flows/s', better: 'higher', nvs: { dummy: setupRates.normal }, anchors: noAnchor });
  results.metric({ name: 'setup-acl', label: 'new flows/s, 1,000-rule table, dummy ports', unit: 'flows/s', better: 'higher', nvs: { dummy: setupRates.acl }, anchors: noAnchor });
  results.metric({ name: 'setup-normal-cpu', label: 'new flows per CPU-second of the process, NORMAL', unit: 'flows/CPU-s', better: 'higher', nvs: { dummy: cpuRates.normal }, anchors: {} });
  results.metric({ name: 'rss-per-100k', label: 'RSS growth per 100,000 megaflows, NORMAL (first round)', unit: 'MiB', better: 'lower', nvs: { dummy: [memPer100k.rss / 2 ** 20] }, anchors: {} });
  results.metric({ name: 'heap-per-100k', label: 'JS heap used per 100,000 megaflows, NORMAL (first round)', unit: 'MiB', better: 'lower', nvs: { dummy: [memPer100k.heap / 2 ** 20] }, anchors: {} });
  const u = sw.udpif;
  if (u?.handled) {
    for (const [ph, ms] of Object.entries(u.phaseMs)) {
      results.metric({ name: `upcall-${ph}`, label: `event-loop time per upcall: ${ph} (all rounds of the last switch)`, unit: 'µs', better: 'lower', nvs: { dummy: [(ms * 1000) / u.handled] }, anchors: {} });
    }
    console.log(`event-loop time per upcall (last switch): ${Object.entries(u.phaseMs).map(([k, ms]) => `${k} ${((ms * 1000) / u.handled).toFixed(2)} µs`).join(', ')}`);
  }
  results.write();
  console.log('anchor: none (OVS flow setup on dummy ports is driven by ovs-appctl netdev-dummy/receive, one process per packet batch, which measures the tool, not the switch)');
} finally {
  await sw?.stop().catch(() => undefined);
  try {
    process.kill(Number(readFileSync(join(rundir, 'nvs-dbserver.pid'), 'utf8')), 'SIGTERM');
  } catch {
    // already gone
  }
  rmSync(dir, { recursive: true, force: true });
}
