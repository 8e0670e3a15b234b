// The Dpif over the Rust datapath: an upcall's encoded key read straight
// into Flow words agrees with flowFromKey of the decoded key on random keys;
// a megaflow's identity is its masked key and mask; put, dump, execute
// batches and delete by identity work end to end on dummy ports; upcalls of
// a userspace action reach the upcall handler, which counts them
// (coverage/show) and logs them at a limited rate.
import { Writable } from 'node:stream';
import fc from 'fast-check';
import pino from 'pino';
import { afterEach, expect, it } from 'vitest';
import { newDpFlowKey, newFlow, type ControllerCookie, type DpFlowKey } from '@nvs/ofproto';
import { Coverage } from '../src/coverage.ts';
import { flowFromKey, KeyFlowReader } from '../src/keyflow.ts';
import { NvsDpif } from '../src/dpif-nvs.ts';
import { Udpif } from '../src/udpif.ts';

const open: NvsDpif[] = [];
afterEach(() => {
  for (const dp of open.splice(0)) dp.close();
});
function dpif(): NvsDpif {
  const dp = NvsDpif.open({});
  open.push(dp);
  return dp;
}

const u = (bits: number) => fc.integer({ min: 0, max: 2 ** bits - 1 });
const key: fc.Arbitrary<DpFlowKey> = fc.record({
  in_port: u(32), recirc_id: u(32), eth_dst: u(48), eth_type: u(16), eth_src: u(48), vlan_tci: u(16), vlan_tpid: u(16), cvlan_tci: u(16),
  nw_proto: u(8), nw_tos: u(8), nw_ttl: u(8), nw_frag: u(8), tp_src: u(16), tp_dst: u(16), tcp_flags: u(16), nw_src: u(32), nw_dst: u(32),
  ipv6_src: fc.bigInt({ min: 0n, max: 2n ** 128n - 1n }), ipv6_dst: fc.bigInt({ min: 0n, max: 2n ** 128n - 1n }), nd_target: fc.oneof(fc.constant(0n), fc.bigInt({ min: 0n, max: 2n ** 128n - 1n })),
  ipv6_label: u(20), arp_sha: u(48), arp_tha: u(48), tun_id: u(32), tun_src: u(32), tun_dst: u(32),
});

it('reads an encoded key into the Flow words flowFromKey makes of the decoded key', () => {
  const codec = dpif().dp.keys;
  const reader = new KeyFlowReader(codec);
  fc.assert(
    fc.property(key, (k) => {
      const b = codec.encode(k);
      expect(codec.decode(b)).toEqual(k);
      expect(reader.toFlow(b.toString('latin1'), 7, newFlow().fill(0xffffffff))).toEqual(flowFromKey(k, 7));
    }),
  );
});

it('identifies a megaflow by its masked key and mask', () => {
  const dp = dpif();
  const k = { ...newDpFlowKey(), in_port: 1, eth_type: 0x800, tp_src: 99, nw_src: 0x0a000001 };
  const m = { ...newDpFlowKey(), in_port: 0xffffffff, eth_type: 0xffff, nw_src: 0xffffff00 };
  expect(dp.flowId(k, m)).toBe(dp.flowId({ ...k, tp_src: 7, nw_src: 0x0a000002 }, m));
  expect(dp.flowId(k, m)).not.toBe(dp.flowId(k, { ...m, tp_src: 0xffff }));
  expect(dp.flowId(k, m)).toHaveLength(2 * dp.dp.keys.size);
});

it('puts, dumps stats, executes and deletes by identity', async () => {
  const dp = dpif();
  const p1 = dp.addPort('p1', 'dummy');
  const p2 = dp.addPort('p2', 'dummy');
  const m = { ...newDpFlowKey(), in_port: 0xffffffff, recirc_id: 0xffffffff, eth_type: 0xffff, tp_src: 0xffff };
  const flows = [1, 2, 3].map((i) => ({ key: { ...newDpFlowKey(), in_port: p1, eth_type: 0x800, tp_src: i }, mask: m, actions: [{ type: 'output' as const, port: p2 }] }));
  dp.put([flows[0], { ...flows[1], id: dp.flowId(flows[1].key, m) }, flows[2]]);
  expect(dp.put.bind(dp, [flows[0]])).not.toThrow();
  const ids = flows.map((f) => dp.flowId(f.key, f.mask));
  expect(dp.dumpStats().map((s) => s.id).sort()).toEqual([...ids].sort());
  expect(dp.dumpStats().every((s) => s.packets === 0 && s.usedAt === 0)).toBe(true);

  const frame = Buffer.alloc(60);
  frame.writeUInt16BE(0x0800, 12);
  const failed = dp.executeBatch([
    { inPort: p1, packet: frame, actions: [{ type: 'output', port: p2 }] },
    { inPort: 4242, packet: frame, actions: [{ type: 'output', port: p2 }] },
  ]);
  expect(failed.map((f) => f.index)).toEqual([1]);
  expect(dp.drain(p2, 10)).toHaveLength(1);

  const dumped = dp.dump().find((f) => f.id === ids[0])!;
  expect(dumped).toMatchObject({ key: flows[0].key, mask: m, actions: flows[0].actions, packets: 0 });

  dp.del([ids[0], ids[2], ids[2]]);
  expect(dp.dumpStats().map((s) => s.id)).toEqual([ids[1]]);
});

it('counts and logs (rate-limited) the upcalls of userspace actions', async () => {
  const dp = dpif();
  const p1 = dp.addPort('p1', 'dummy');
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()));
      done();
    },
  });
  const coverage = new Coverage();
  const udpif = new Udpif({ dp, log: pino(sink), coverage, bridgeOf: () => undefined, bridges: () => [], maxIdleMs: 10_000, flowLimit: 1000 });
  udpif.start();
  try {
    const controller: ControllerCookie = { reason: 1, maxLen: 128, ruleCookie: 0n, controllerId: 0, tableId: 3 };
    const m = { ...newDpFlowKey(), in_port: 0xffffffff };
    dp.put([{ key: { ...newDpFlowKey(), in_port: p1 }, mask: m, actions: [{ type: 'userspace', controller }] }]);
    const frame = Buffer.alloc(60);
    frame.writeUInt16BE(0x0800, 12);
    dp.inject(p1, [frame, frame, frame, frame, frame]);
    for (let i = 0; i < 5000 && !/upcall_userspace .* total: 5\n/.test(coverage.show()); i++) await new Promise((r) => setTimeout(r, 2));
    expect(coverage.show()).toMatch(/upcall_userspace .* total: 5\n/);
    expect(coverage.show()).not.toMatch(/upcall_miss/);
    expect(udpif.handled).toBe(0);
    // One line for the first; the next four fall within the rate limit.
    await new Promise((r) => setImmediate(r));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 40, inPort: p1, reason: 1, tableId: 3, msg: 'userspace upcall for the controller dropped: no controller connection' });
  } finally {
    udpif.stop();
  }
});
