// Forwarding through the napi binding: one polling thread moves 64-byte
// frames between two dummy ports (loopback pair: 1 → 2 → 1 …), after a large
// batch was injected from JavaScript. Prints, per round and as medians:
// Mpps by wall clock, Mpps per CPU-second of the process (steadier on these
// time-shared machines) and the polling thread's busy ns/packet.
// Usage: node bench/datapath-forward.mjs [--rounds 5] [--seconds 1] [--frames 10000] [--core N] [--quick] [--json FILE]
// No OVS anchor here: OVS's dummy ports are fed one packet per ovs-appctl call.
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { contractOptions, Results, roundsOf } from './lib/contract.mjs';

const { values: opts } = parseArgs({
  options: {
    ...contractOptions,
    seconds: { type: 'string', default: '1' },
    frames: { type: 'string', default: '10000' },
    core: { type: 'string' },
  },
});
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const addon = createRequire(import.meta.url)(process.env.NVS_DATAPATH_ADDON ?? join(root, 'packages/datapath/nvs-datapath.node'));

/** A 64-byte Ethernet/IPv4/UDP frame; `n` varies the source port. */
function frame(n) {
  const f = Buffer.alloc(64);
  Buffer.from([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]).copy(f, 0);
  f.writeUInt16BE(0x0800, 12);
  f[14] = 0x45;
  f.writeUInt16BE(50, 16);
  f[22] = 64;
  f[23] = 17;
  Buffer.from([10, 0, 0, 1, 10, 0, 0, 2]).copy(f, 26);
  f.writeUInt16BE(1024 + (n % 64), 34);
  f.writeUInt16BE(53, 36);
  f.writeUInt16BE(30, 38);
  return f;
}

// Mask: in_port and eth_type exact, from the layout Rust publishes.
const layout = addon.flowKeyLayout();
const mask = Buffer.alloc(addon.flowKeySize());
for (const f of layout.filter((f) => f.name === 'in_port' || f.name === 'eth_type')) mask.fill(0xff, f.offset, f.offset + f.size);
const output = (port) => Buffer.from([1, 4, 0, 0, 0, port]);

const dp = new addon.Datapath({ threads: 1, cores: opts.core === undefined ? [] : [Number(opts.core)] });
const frames = Number(opts.frames);
const portOpts = { loopback: 'true', rxq_len: String(frames * 2) };
const p1 = dp.addPort('p1', 'dummy', portOpts);
const p2 = dp.addPort('p2', 'dummy', portOpts);
// Put records (crates/datapath/src/records.rs): flags u8 (1 = create), pad 3, actions_len u32 LE, key, mask, actions.
const putRecord = (key, actions) => {
  const head = Buffer.alloc(8);
  head[0] = 1;
  head.writeUInt32LE(actions.length, 4);
  return Buffer.concat([head, key, mask, actions]);
};
const failed = dp.flowPut(Buffer.concat([putRecord(addon.extractKey(frame(0), p1), output(p2)), putRecord(addon.extractKey(frame(0), p2), output(p1))]));
if (failed.length > 0) throw new Error(`flow put failed: ${JSON.stringify(failed)}`);

const batch = Array.from({ length: 1000 }, (_, i) => frame(i));
for (let i = 0; i < frames; i += batch.length) dp.inject(p1, batch);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const thread = () => dp.stats().threads[0];
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = [];
await sleep(200); // warm-up
const ROUNDS = roundsOf(opts, 5, 3);
for (let r = 0; r < ROUNDS; r++) {
  const t0 = thread();
  const c0 = process.cpuUsage();
  const w0 = process.hrtime.bigint();
  await sleep(Number(opts.seconds) * 1000);
  const t1 = thread();
  const cpu = process.cpuUsage(c0);
  const wallS = Number(process.hrtime.bigint() - w0) / 1e9;
  const pkts = t1.packets - t0.packets;
  const row = {
    mppsWall: pkts / wallS / 1e6,
    mppsPerCpuSecond: pkts / ((cpu.user + cpu.system) / 1e6) / 1e6,
    busyNsPerPacket: (t1.busyNs - t0.busyNs) / Math.max(1, pkts),
  };
  rows.push(row);
  console.log(`round ${r + 1}: ${row.mppsWall.toFixed(2)} Mpps (wall), ${row.mppsPerCpuSecond.toFixed(2)} Mpps per CPU-second, ${row.busyNsPerPacket.toFixed(1)} ns/packet busy (wall clock)`);
}
const s = dp.stats();
dp.close();
console.log(
  `datapath-forward (binding, 1 polling thread, 64B, ${frames} frames in flight): median ${median(rows.map((r) => r.mppsWall)).toFixed(2)} Mpps wall, ` +
    `${median(rows.map((r) => r.mppsPerCpuSecond)).toFixed(2)} Mpps per CPU-second, ${median(rows.map((r) => r.busyNsPerPacket)).toFixed(1)} ns/packet busy; ` +
    `EMC hits ${((100 * s.threads[0].emcHits) / s.threads[0].packets).toFixed(1)}%, misses ${s.threads[0].misses}, port drops ${s.ports.reduce((a, p) => a + p.rxDropped + p.txDropped, 0)}`,
);
const results = new Results(import.meta.url, 'Forwarding through the binding: one polling thread, dummy port to dummy port, 64-byte frames', opts, ROUNDS);
const noAnchor = { ovs: "absent: OVS's dummy ports take packets one ovs-appctl call at a time (that measures the tool)" };
results.metric({ name: 'forward-mpps-cpu', label: 'forwarding rate per CPU-second of the process', unit: 'Mpps', better: 'higher', nvs: { binding: rows.map((r) => r.mppsPerCpuSecond) }, anchors: noAnchor });
results.metric({ name: 'forward-busy-ns', label: 'polling thread busy time per packet', unit: 'ns', better: 'lower', nvs: { binding: rows.map((r) => r.busyNsPerPacket) }, anchors: noAnchor });
results.write();
