#!/usr/bin/env node
// Scaling study (issue 18): how cost grows with the size of what a switch holds.
//  1. Packets per second as megaflows grow (1 → 1,000,000, one subtable) and
//     as subtables grow (1 → 100, 10,000 megaflows): one nvs polling thread
//     forwards 64-byte frames on a loopback dummy port through the binding,
//     20,000 frames in flight spread over the megaflows (distinct frames past
//     8,192 megaflows outgrow the exact-match cache). Figure:
//     packets per CPU-second of the process (steadier than wall time on a
//     shared machine; the thread busy-polls, so CPU ≈ its wall time).
//     No OVS line: OVS's dummy ports take packets one ovs-appctl call at a
//     time, and a veth-fed OVS would measure the generator here (Python or
//     testpmd give 0.4–0.75 Mpps on this machine), not the switch.
//  2. add-flows time as rules grow (1,000 → 1,000,000 in the full run,
//     1,000 → 10,000 with --quick): the same file of simple rules
//     (`priority=100,ip,nw_dst=…,actions=output:N`) loaded into a running
//     nvs-vswitchd by nvs-ofctl and by the real ovs-ofctl over the OpenFlow
//     wire, and into ovs-vswitchd by ovs-ofctl; a fresh table per point,
//     systems alternated per point.
// Bounds: a system whose add-flows took over 10 s at one size is not run at
// the next (10×) size (its line ends there, and the log says so); the
// largest size runs once. --max-rules and --max-megaflows lower the sizes.
// Usage: node bench/scaling.mjs [--rounds N] [--quick] [--json FILE] [--max-rules N] [--max-megaflows N]
import { execFileSync, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { contractOptions, median, Results, roundsOf } from './lib/contract.mjs';
import { haveOvs, onStop, startSwitch } from './lib/switches.mjs';

const { values: opt } = parseArgs({ options: { ...contractOptions, 'max-rules': { type: 'string' }, 'max-megaflows': { type: 'string' } } });
const ROUNDS = roundsOf(opt, 3, 2);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const upTo = (xs, max) => xs.filter((x) => x <= Number(max ?? Infinity));
const MEGAFLOWS = upTo(opt.quick ? [1, 1000, 100000] : [1, 100, 10000, 100000, 1000000], opt['max-megaflows']);
const SUBTABLES = opt.quick ? [1, 10, 100] : [1, 10, 25, 50, 100];
const RULES = upTo(opt.quick ? [1000, 10000] : [1000, 10000, 100000, 1000000], opt['max-rules']);
const IN_FLIGHT = 20000;
const results = new Results(import.meta.url, 'Scaling: forwarding rate as megaflows and subtables grow; add-flows time as rules grow', opt, ROUNDS);
const dir = mkdtempSync(join(tmpdir(), 'nvs-bench-scaling-'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- 1. forwarding rate against the megaflow table ----
const addon = createRequire(import.meta.url)(process.env.NVS_DATAPATH_ADDON ?? join(root, 'packages/datapath/nvs-datapath.node'));
const KEY = addon.flowKeySize();
const field = Object.fromEntries(addon.flowKeyLayout().map((f) => [f.name, f]));

/** A 64-byte UDP frame whose source MAC is `id` (every megaflow keeps eth_src exact, so each frame is its own). */
function frame(id) {
  const f = Buffer.alloc(64);
  Buffer.from([2, 0, 0, 0, 0, 2]).copy(f, 0);
  f.writeUInt16BE(0x0200, 6);
  f.writeUInt32BE(id, 8);
  f.writeUInt16BE(0x0800, 12);
  f[14] = 0x45;
  f.writeUInt16BE(50, 16);
  f[22] = 64;
  f[23] = 17;
  f.writeUInt32BE((0x0a000000 + id) >>> 0, 26);
  f.writeUInt32BE(0x0b000001, 30);
  f.writeUInt16BE(1024 + (id % 60000), 34);
  f.writeUInt16BE(53, 36);
  f.writeUInt16BE(30, 38);
  return f;
}

/**
 * Mask number `s` of up to 100 distinct ones: in_port, eth_type and eth_src
 * exact, plus an nw_src prefix (/32 … /8) and none, one or both ports.
 */
function mask(s) {
  const m = Buffer.alloc(KEY);
  for (const n of ['in_port', 'eth_type', 'eth_src']) m.fill(0xff, field[n].offset, field[n].offset + field[n].size);
  const prefix = 32 - (s % 25);
  m.writeUInt32LE((0xffffffff << (32 - prefix)) >>> 0, field.nw_src.offset); // FlowKey words are native (little-endian) u32s
  const ports = Math.floor(s / 25);
  if (ports & 1) m.fill(0xff, field.tp_src.offset, field.tp_src.offset + 2);
  if (ports & 2) m.fill(0xff, field.tp_dst.offset, field.tp_dst.offset + 2);
  return m;
}

/** Packets per CPU-second with `flows` megaflows spread over `subtables` masks; median of ROUNDS one-second rounds. */
async function forwardRate(flows, subtables) {
  const dp = new addon.Datapath({ threads: 1, cores: [] });
  try {
    const port = dp.addPort('p1', 'dummy', { loopback: 'true', rxq_len: String(IN_FLIGHT * 2) });
    const output = Buffer.from([1, 4, 0, 0, 0, port]);
    const masks = Array.from({ length: subtables }, (_, s) => mask(s));
    const head = Buffer.alloc(8);
    head[0] = 1; // create
    head.writeUInt32LE(output.length, 4);
    for (let start = 0; start < flows; start += 10000) {
      const recs = [];
      for (let id = start; id < Math.min(flows, start + 10000); id++) {
        const m = masks[id % subtables];
        const key = Buffer.from(addon.extractKey(frame(id), port));
        for (let i = 0; i < KEY; i++) key[i] &= m[i];
        recs.push(head, key, m, output);
      }
      const failed = dp.flowPut(Buffer.concat(recs));
      if (failed.length) throw new Error(`flow put failed: ${JSON.stringify(failed[0])}`);
    }
    // The same number of frames in flight at every size, spread over the whole table (and so over every subtable).
    const step = flows / IN_FLIGHT;
    for (let k = 0; k < IN_FLIGHT; k += 1000) dp.inject(port, Array.from({ length: 1000 }, (_, i) => frame(Math.floor((k + i) * step))));
    await sleep(300);
    const rates = [];
    for (let r = 0; r < ROUNDS; r++) {
      const p0 = dp.stats().threads[0].packets;
      const c0 = process.cpuUsage();
      await sleep(1000);
      const c = process.cpuUsage(c0);
      rates.push((dp.stats().threads[0].packets - p0) / ((c.user + c.system) / 1e6) / 1e6);
    }
    const s = dp.stats();
    if (s.threads[0].misses > 0) throw new Error(`${s.threads[0].misses} packets missed the table (the test's megaflows are wrong)`);
    return rates;
  } finally {
    dp.close();
  }
}

const byFlows = [];
for (const n of MEGAFLOWS) {
  const rates = await forwardRate(n, 1);
  byFlows.push([n, median(rates)]);
  console.log(`forwarding, ${n} megaflows, 1 subtable: ${median(rates).toFixed(2)} Mpps per CPU-second (rounds ${rates.map((x) => x.toFixed(2)).join(', ')})`);
  results.metric({ name: `pps-${n}-megaflows`, label: `forwarding through ${n.toLocaleString('en-US')} megaflows (1 subtable)`, unit: 'Mpps per CPU-s', better: 'higher', nvs: { binding: rates }, anchors: {} });
}
const bySub = [];
for (const s of SUBTABLES) {
  const rates = await forwardRate(10000, s);
  bySub.push([s, median(rates)]);
  console.log(`forwarding, 10,000 megaflows, ${s} subtables: ${median(rates).toFixed(2)} Mpps per CPU-second (rounds ${rates.map((x) => x.toFixed(2)).join(', ')})`);
}
const noOvsPps = 'absent: OVS dummy ports take packets one ovs-appctl call at a time; a veth-fed OVS measures the generator on this machine';
results.series({ name: 'pps-vs-megaflows', title: 'Forwarding rate as megaflows grow (1 subtable, up to 20,000 distinct frames in flight)', x: 'megaflows', y: 'Mpps per CPU-second', better: 'higher', lines: { nvs: byFlows, ovs: noOvsPps } });
results.series({ name: 'pps-vs-subtables', title: 'Forwarding rate as subtables grow (10,000 megaflows)', x: 'subtables', y: 'Mpps per CPU-second', better: 'higher', lines: { nvs: bySub, ovs: noOvsPps } });
// Written now too: if the run's bound stops the add-flows part, the forwarding part is kept.
results.write();

// ---- 2. add-flows time against the number of rules ----
// A bridge name per switch: each one's LOCAL port is a tap device of that name.
const bridgeOf = (kind) => `nbs${process.pid % 10000}${kind[0]}`;
const systems = [
  { name: 'nvs-ofctl', kind: 'nvs', tool: (sw, file) => ['node', [join(root, 'dist/nvs-ofctl.js'), '--rundir', sw.dir, 'add-flows', bridgeOf('nvs'), file]] },
  { name: 'ovs-ofctl→nvs', kind: 'nvs', tool: (sw, file) => ['ovs-ofctl', ['add-flows', `unix:${sw.dir}/${bridgeOf(sw.kind)}.mgmt`, file]] },
  ...(haveOvs() ? [{ name: 'ovs-ofctl→ovs', kind: 'ovs', tool: (sw, file) => ['ovs-ofctl', ['add-flows', `unix:${sw.dir}/${bridgeOf(sw.kind)}.mgmt`, file]] }] : []),
];
const times = Object.fromEntries(systems.map((s) => [s.name, []]));
const switches = {};
// The switches in a namespace of their own: their tap devices cannot clash with another switch on this host.
const netns = `nbs${process.pid % 10000}`;
const netnsGone = onStop(() => spawnSync('ip', ['netns', 'del', netns]));
try {
  execFileSync('ip', ['netns', 'add', netns]);
  for (const kind of new Set(systems.map((s) => s.kind))) {
    switches[kind] = startSwitch(kind, join(dir, `sw-${kind}`), {}, { netns });
    switches[kind].vsctl('add-br', bridgeOf(kind), '--', 'set', 'Bridge', bridgeOf(kind), 'datapath_type=netdev');
  }
  for (const n of RULES) {
    const file = join(dir, `rules-${n}.txt`);
    writeFileSync(file, Array.from({ length: n }, (_, i) => `priority=100,ip,nw_dst=10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255},actions=output:${1 + (i % 2)}\n`).join(''));
    // The largest point once (it takes minutes for OVS); the others for every round.
    const rounds = n >= 1000000 ? 1 : ROUNDS;
    for (let r = 0; r < rounds; r++) {
      for (const s of systems) {
        // A system whose last point took over 10 s would take minutes at 10× the rules: its line ends there.
        if (s.stoppedAt) continue;
        // Back to the event loop between commands, so a SIGTERM (the runner's bound) is handled and the switches stopped.
        await new Promise((r) => setImmediate(r));
        const sw = switches[s.kind];
        let secs;
        try {
          execFileSync('ovs-ofctl', ['del-flows', `unix:${sw.dir}/${bridgeOf(s.kind)}.mgmt`]);
          const [cmd, args] = s.tool(sw, file);
          const t0 = performance.now();
          execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 1 << 26 });
          secs = (performance.now() - t0) / 1000;
        } catch (e) {
          // One system failing ends its line; the others go on.
          s.failed = `failed at ${n} rules: ${String(e.stderr ?? e.message).trim().split('\n')[0]}`;
          s.stoppedAt = n;
          console.log(`add-flows ${n} rules, ${s.name}: ${s.failed}`);
          continue;
        }
        (times[s.name][RULES.indexOf(n)] ??= []).push(secs);
        console.log(`add-flows ${n} rules, ${s.name}: ${secs.toFixed(3)} s (${s.kind} RSS ${(sw.rssKiB() / 1024).toFixed(0)} MiB)`);
      }
    }
    for (const s of systems) if (!s.stoppedAt && median(times[s.name][RULES.indexOf(n)] ?? [0]) > 10) s.stoppedAt = n;
    rmSync(file);
  }
} finally {
  for (const sw of Object.values(switches)) sw.stop();
  spawnSync('ip', ['netns', 'del', netns]);
  netnsGone.forget();
  rmSync(dir, { recursive: true, force: true });
}
const lines = Object.fromEntries(systems.map((s) => [s.name, RULES.flatMap((n, i) => (times[s.name][i] ? [[n, median(times[s.name][i])]] : []))]));
for (const s of systems) if (!lines[s.name].length) lines[s.name] = `absent: ${s.failed}`;
for (const s of systems.filter((x) => !x.failed && x.stoppedAt && x.stoppedAt < RULES.at(-1))) console.log(`add-flows ${s.name}: stopped after ${s.stoppedAt} rules (over 10 s there; the next point would take minutes)`);
if (!haveOvs()) lines['ovs-ofctl→ovs'] = 'absent: ovs-vswitchd not installed';
results.series({ name: 'add-flows-vs-rules', title: 'add-flows time as rules grow (simple rules, a fresh table each time)', x: 'rules', y: 'seconds', better: 'lower', lines });
// The largest point every system reached.
const big = Math.max(0, Math.min(...systems.map((s) => times[s.name].length - 1)));
const at = (name) => times[name]?.[big] ?? `absent: ${systems.find((s) => s.name === name)?.failed ?? 'ovs-vswitchd not installed'}`;
results.metric({
  name: `add-flows-${RULES[big]}`,
  label: `add-flows of ${RULES[big].toLocaleString('en-US')} simple rules into a running switch`,
  unit: 's',
  better: 'lower',
  nvs: { 'nvs-ofctl': at('nvs-ofctl'), 'ovs-ofctl→nvs': at('ovs-ofctl→nvs') },
  anchors: { ovs: at('ovs-ofctl→ovs') },
});
results.write();
for (const [name, pts] of Object.entries(lines)) if (Array.isArray(pts)) console.log(`add-flows ${name}: ${pts.map(([n, s]) => `${n}: ${s.toFixed(3)} s`).join(', ')}`);
