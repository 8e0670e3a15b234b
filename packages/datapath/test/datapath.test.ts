// The fast path through the addon: two dummy ports, miss → upcall, flow put →
// hit out of port 2, dump stats, delete → miss again; plus errors, execute,
// the upcall callback and the bounded upcall queue.
import { afterEach, describe, expect, it } from 'vitest';
import {
  Datapath,
  FlowExistsError,
  FlowNotFoundError,
  NoSuchPortError,
  PortError,
  PortExistsError,
  BadKeyError,
  DatapathClosedError,
  PUT_MODIFY,
} from '../src/index.ts';
import { datapathPool, delFlows, dumpFlows, eventually, executeOne, putFlows, readUpcalls, udpFrame, type TestUpcall } from './frames.ts';

const pool = datapathPool();
const datapath = pool.open;
afterEach(pool.closeAll);

async function upcalls(dp: Datapath, n: number): Promise<TestUpcall[]> {
  const got: TestUpcall[] = [];
  await eventually(`${n} upcalls`, () => {
    got.push(...readUpcalls(dp, dp.recvUpcalls(64)));
    return got.length >= n;
  });
  return got;
}

describe('datapath on dummy ports', () => {
  it('miss → upcall, put → hit out of port 2, dump stats, delete → miss', async () => {
    const dp = datapath({ threads: 1 });
    const p1 = dp.addPort('p1', 'dummy');
    const p2 = dp.addPort('p2', 'dummy');
    expect([p1, p2]).toEqual([1, 2]);
    const pkt = udpFrame(1000);

    dp.inject(p1, [pkt]);
    const [up] = await upcalls(dp, 1);
    expect(up.reason).toBe('miss');
    expect(up.inPort).toBe(p1);
    expect(Buffer.compare(up.packet, pkt)).toBe(0);
    expect(up.key).toMatchObject({ in_port: p1, eth_type: 0x0800, nw_proto: 17, nw_src: 0x0a000001, tp_src: 1000, tp_dst: 53, eth_src: 0x020000000001 });

    const mask = dp.keys.exactMask(['in_port', 'eth_type', 'nw_proto', 'tp_src']);
    expect(putFlows(dp, [{ key: up.key, mask, actions: [{ type: 'output', port: p2 }] }])).toEqual([]);
    dp.inject(p1, [pkt, pkt, pkt]);
    const out = await eventually('3 packets out of p2', () => {
      const got = dp.drain(p2);
      return got.length > 0 ? got : undefined;
    });
    const rest = await eventually('the rest', () => {
      const s = dp.stats().ports.find((p) => p.portNo === p2);
      return s && s.txPackets === 3 ? dp.drain(p2) : undefined;
    });
    const all = [...out, ...rest];
    expect(all).toHaveLength(3);
    for (const o of all) expect(Buffer.compare(o, pkt)).toBe(0);

    const [flow] = dumpFlows(dp);
    expect(flow.stats.packets).toBe(3);
    expect(flow.stats.bytes).toBe(3 * pkt.length);
    expect(flow.stats.usedMs).toBeGreaterThan(Date.now() - 60_000);
    expect(flow.actions).toEqual([{ type: 'output', port: p2 }]);
    expect(flow.key.tp_src).toBe(1000);
    expect(flow.key.tp_dst).toBe(0); // masked out
    const t = dp.stats().threads[0];
    expect([t.misses, t.megaflowHits, t.emcHits]).toEqual([1, 1, 2]);
    expect(t.busyNs).toBeGreaterThan(0);

    const del = delFlows(dp, [{ key: up.key, mask }]);
    expect(del.failed).toEqual([]);
    expect(del.stats[0]).toMatchObject({ packets: 3, bytes: 3 * pkt.length });
    expect(dumpFlows(dp)).toEqual([]);
    dp.inject(p1, [pkt]);
    const [again] = await upcalls(dp, 1);
    expect(again.reason).toBe('miss');
    expect(dp.drain(p2)).toEqual([]);
  });

  it('returns per-flow errors in batches and throws coded errors', () => {
    const dp = datapath({ threads: 1 });
    const p1 = dp.addPort('p1', 'dummy');
    const key = { in_port: p1, eth_type: 0x0806 };
    const mask = dp.keys.exactMask(['in_port', 'eth_type']);
    const failed = putFlows(dp, [
      { key, mask, actions: [{ type: 'drop' }] },
      { key, mask, actions: [{ type: 'drop' }] },
      { key: { ...key, eth_type: 0x0800 }, mask, actions: [], flags: PUT_MODIFY },
    ]);
    expect(failed.map((f) => f.index)).toEqual([1, 2]);
    expect(failed[0].error).toBeInstanceOf(FlowExistsError);
    expect(failed[1].error.code).toBe('DP_FLOW_NOT_FOUND');
    expect(putFlows(dp, [{ key, mask, actions: [{ type: 'output', port: 9 }], flags: PUT_MODIFY }])).toEqual([]);
    expect(dumpFlows(dp).find((f) => f.key.eth_type === 0x0806)?.actions).toEqual([{ type: 'output', port: 9 }]);
    const gone = delFlows(dp, [{ key: { ...key, eth_type: 1 }, mask }]);
    expect(gone.failed[0].error).toBeInstanceOf(FlowNotFoundError);
    expect(gone.stats[0]).toEqual({ packets: 0, bytes: 0, usedMs: 0, tcpFlags: 0 });
    // A batch whose last record runs past the end is refused whole, with a code.
    expect(() => dp.flowPut(Buffer.alloc(9))).toThrow(expect.objectContaining({ code: 'DP_BAD_ARGUMENT' }));
    expect(() => dp.flowDel(Buffer.alloc(dp.keys.size))).toThrow(expect.objectContaining({ code: 'DP_BAD_ARGUMENT' }));

    expect(() => dp.addPort('p1', 'dummy')).toThrow(PortExistsError);
    expect(() => dp.addPort('x', 'vhost')).toThrow(expect.objectContaining({ code: 'DP_PORT_UNKNOWN_TYPE' }));
    expect(() => dp.addPort('y', 'dummy', { colour: 'blue' })).toThrow(PortError);
    // A dummy port has no kernel device: no MTU or link state to read or set.
    expect(() => dp.portDeviceState(p1)).toThrow(expect.objectContaining({ code: 'DP_PORT_UNSUPPORTED' }));
    expect(() => dp.setPortMtu(p1, 9000)).toThrow(PortError);
    expect(() => dp.portDeviceState(42)).toThrow(NoSuchPortError);
    expect(() => dp.removePort(42)).toThrow(NoSuchPortError);
    expect(() => dp.inject(42, [udpFrame(1)])).toThrow(NoSuchPortError);
    expect(() => dp.keys.decode(Buffer.alloc(4))).toThrow(BadKeyError);
    dp.flowFlush();
    expect(dumpFlows(dp)).toEqual([]);
    dp.close();
    expect(() => dp.addPort('z', 'dummy')).toThrow(DatapathClosedError);
  });

  it('executes actions from the slow path and reports userspace upcalls', () => {
    const dp = datapath({ threads: 0 });
    const p1 = dp.addPort('p1', 'dummy');
    const p2 = dp.addPort('p2', 'dummy');
    const pkt = udpFrame(5);
    const failed = executeOne(dp, p1, pkt, [
      { type: 'userspace', cookie: 0xdead_beef_0000_0001n },
      { type: 'set', field: 'tp_dst', value: Uint8Array.of(0, 54) },
      { type: 'output', port: p2 },
    ]);
    expect(failed).toEqual([]);
    const [out] = dp.drain(p2);
    expect(out.readUInt16BE(36)).toBe(54);
    expect(dp.extractKey(out, p2).tp_dst).toBe(54);
    const [up] = readUpcalls(dp, dp.recvUpcalls());
    expect(up).toMatchObject({ reason: 'userspace', cookie: 0xdead_beef_0000_0001n, inPort: p1 });
    expect(Buffer.compare(up.packet, pkt)).toBe(0);
  });

  it('delivers upcalls to a callback in batches', async () => {
    const dp = datapath({ threads: 1 });
    const p1 = dp.addPort('p1', 'dummy');
    const seen: TestUpcall[] = [];
    let batches = 0;
    dp.onUpcalls((batch) => {
      batches++;
      seen.push(...readUpcalls(dp, batch));
    });
    dp.inject(p1, Array.from({ length: 100 }, (_, i) => udpFrame(i)));
    await eventually('100 upcalls', () => seen.length === 100);
    expect(batches).toBeLessThan(100);
    expect(seen.map((u) => u.key.tp_src).sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    dp.offUpcalls();
  });

  it('drops and counts upcalls when the queue is full', async () => {
    const dp = datapath({ threads: 1, upcallQueueLen: 4 });
    const p1 = dp.addPort('p1', 'dummy');
    dp.inject(p1, Array.from({ length: 10 }, (_, i) => udpFrame(i)));
    await eventually('10 misses', () => dp.stats().threads[0].misses === 10);
    expect(dp.stats()).toMatchObject({ lostUpcalls: 6, upcallsQueued: 4 });
    expect(readUpcalls(dp, dp.recvUpcalls(100))).toHaveLength(4);
  });

  it('setPmdCores re-creates the polling threads; ports and flows stay', async () => {
    const dp = datapath({ threads: 1 });
    const p1 = dp.addPort('p1', 'dummy');
    const p2 = dp.addPort('p2', 'dummy');
    const pkt = udpFrame(1000);
    const key = { in_port: p1, eth_type: 0x0800 };
    const mask = dp.keys.exactMask(['in_port', 'eth_type']);
    expect(putFlows(dp, [{ key, mask, actions: [{ type: 'output', port: p2 }] }])).toEqual([]);
    dp.setPmdCores([0]);
    expect(dp.stats().threads.map((t) => [t.core, t.ports])).toEqual([[0, [p1, p2]]]);
    expect(() => dp.setPmdCores([100_000])).toThrow(expect.objectContaining({ code: 'DP_PIN_FAILED' }));
    expect(dp.stats().threads.map((t) => t.core)).toEqual([0]);
    dp.setPmdCores([]);
    expect(dp.stats().threads.map((t) => t.core)).toEqual([undefined]);
    dp.inject(p1, [pkt, pkt]);
    await eventually('2 packets out of p2', () => dp.stats().ports.find((p) => p.portNo === p2)?.txPackets === 2);
    expect(dp.stats().threads[0].misses).toBe(0);
    expect(dumpFlows(dp)[0].stats.packets).toBe(2);
    // The replaced threads' counters stay in the totals.
    dp.setPmdCores([0]);
    expect(dp.stats().retired).toMatchObject({ packets: 2, megaflowHits: 1, emcHits: 1, misses: 0 });
    expect(dp.stats().threads[0].packets).toBe(0);
  });
});
