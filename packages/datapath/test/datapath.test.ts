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
  parseIpv4,
  parseMac,
  type Upcall,
} from '../src/index.ts';
import { datapathPool, eventually, udpFrame } from './frames.ts';

const pool = datapathPool();
const datapath = pool.open;
afterEach(pool.closeAll);

async function upcalls(dp: Datapath, n: number): Promise<Upcall[]> {
  const got: Upcall[] = [];
  await eventually(`${n} upcalls`, () => {
    got.push(...dp.recvUpcalls(64));
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
    expect(up.key.inPort).toBe(p1);
    expect(up.key.ethType).toBe(0x0800);
    expect(up.key.nwProto).toBe(17);
    expect(up.key.nwSrc).toBe(parseIpv4('10.0.0.1'));
    expect(up.key.tpSrc).toBe(1000);
    expect(up.key.tpDst).toBe(53);
    expect(up.key.ethSrc).toEqual(parseMac('02:00:00:00:00:01'));

    const mask = dp.keys.exactMask(['inPort', 'ethType', 'nwProto', 'tpSrc']);
    expect(dp.flowPut([{ key: up.key, mask, actions: [{ type: 'output', port: p2 }] }])).toEqual([{ ok: true }]);
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

    const [flow] = dp.flowDump();
    expect(flow.stats.packets).toBe(3);
    expect(flow.stats.bytes).toBe(3 * pkt.length);
    expect(flow.stats.usedMs).toBeGreaterThan(Date.now() - 60_000);
    expect(flow.actions).toEqual([{ type: 'output', port: p2 }]);
    expect(flow.key.tpSrc).toBe(1000);
    expect(flow.key.tpDst).toBe(0); // masked out
    const t = dp.stats().threads[0];
    expect([t.misses, t.megaflowHits, t.emcHits]).toEqual([1, 1, 2]);
    expect(t.busyNs).toBeGreaterThan(0);

    const [del] = dp.flowDel([{ key: up.key, mask }]);
    expect(del).toEqual({ ok: true, stats: expect.objectContaining({ packets: 3 }) });
    expect(dp.flowDump()).toEqual([]);
    dp.inject(p1, [pkt]);
    const [again] = await upcalls(dp, 1);
    expect(again.reason).toBe('miss');
    expect(dp.drain(p2)).toEqual([]);
  });

  it('returns per-flow errors in batches and throws coded errors', () => {
    const dp = datapath({ threads: 1 });
    const p1 = dp.addPort('p1', 'dummy');
    const key = { inPort: p1, ethType: 0x0806 };
    const mask = dp.keys.exactMask(['inPort', 'ethType']);
    const results = dp.flowPut([
      { key, mask, actions: [{ type: 'drop' }] },
      { key, mask, actions: [{ type: 'drop' }] },
      { key: { ...key, ethType: 0x0800 }, mask, actions: [], create: false, modify: true },
    ]);
    expect(results[0]).toEqual({ ok: true });
    expect(results[1].ok === false && results[1].error).toBeInstanceOf(FlowExistsError);
    expect(results[2].ok === false && results[2].error.code).toBe('DP_FLOW_NOT_FOUND');
    expect(dp.flowPut([{ key, mask, actions: [{ type: 'output', port: 9 }], modify: true }])).toEqual([{ ok: true }]);
    expect(dp.flowGet(key, mask)?.actions).toEqual([{ type: 'output', port: 9 }]);
    const [gone] = dp.flowDel([{ key: { ...key, ethType: 1 }, mask }]);
    expect(gone.ok === false && gone.error).toBeInstanceOf(FlowNotFoundError);

    expect(() => dp.addPort('p1', 'dummy')).toThrow(PortExistsError);
    expect(() => dp.addPort('x', 'vhost')).toThrow(expect.objectContaining({ code: 'DP_PORT_UNKNOWN_TYPE' }));
    expect(() => dp.addPort('y', 'dummy', { colour: 'blue' })).toThrow(PortError);
    // A dummy port has no kernel device: no MTU or link state to read or set.
    expect(() => dp.portDeviceState(p1)).toThrow(expect.objectContaining({ code: 'DP_PORT_UNSUPPORTED' }));
    expect(() => dp.setPortMtu(p1, 9000)).toThrow(PortError);
    expect(() => dp.portDeviceState(42)).toThrow(NoSuchPortError);
    expect(() => dp.removePort(42)).toThrow(NoSuchPortError);
    expect(() => dp.inject(42, [udpFrame(1)])).toThrow(NoSuchPortError);
    expect(() => dp.flowPut([{ key: { tpSrc: 70000 }, mask, actions: [] }])).toThrow(BadKeyError);
    dp.flowFlush();
    expect(dp.flowDump()).toEqual([]);
    dp.close();
    expect(() => dp.addPort('z', 'dummy')).toThrow(DatapathClosedError);
  });

  it('executes actions from the slow path and reports userspace upcalls', () => {
    const dp = datapath({ threads: 0 });
    const p1 = dp.addPort('p1', 'dummy');
    const p2 = dp.addPort('p2', 'dummy');
    const pkt = udpFrame(5);
    dp.execute(p1, pkt, [
      { type: 'userspace', cookie: 0xdead_beef_0000_0001n },
      { type: 'set', field: 'tp_dst', value: Uint8Array.of(0, 54) },
      { type: 'output', port: p2 },
    ]);
    const [out] = dp.drain(p2);
    expect(out.readUInt16BE(36)).toBe(54);
    expect(dp.extractKey(out, p2).tpDst).toBe(54);
    const [up] = dp.recvUpcalls();
    expect(up).toMatchObject({ reason: 'userspace', cookie: 0xdead_beef_0000_0001n, inPort: p1 });
    expect(Buffer.compare(up.packet, pkt)).toBe(0);
  });

  it('delivers upcalls to a callback in batches', async () => {
    const dp = datapath({ threads: 1 });
    const p1 = dp.addPort('p1', 'dummy');
    const seen: Upcall[] = [];
    let batches = 0;
    dp.onUpcalls((batch) => {
      batches++;
      seen.push(...batch);
    });
    dp.inject(p1, Array.from({ length: 100 }, (_, i) => udpFrame(i)));
    await eventually('100 upcalls', () => seen.length === 100);
    expect(batches).toBeLessThan(100);
    expect(seen.map((u) => u.key.tpSrc).sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    dp.offUpcalls();
  });

  it('drops and counts upcalls when the queue is full', async () => {
    const dp = datapath({ threads: 1, upcallQueueLen: 4 });
    const p1 = dp.addPort('p1', 'dummy');
    dp.inject(p1, Array.from({ length: 10 }, (_, i) => udpFrame(i)));
    await eventually('10 misses', () => dp.stats().threads[0].misses === 10);
    expect(dp.stats()).toMatchObject({ lostUpcalls: 6, upcallsQueued: 4 });
    expect(dp.recvUpcalls(100)).toHaveLength(4);
  });

  it('setPmdCores re-creates the polling threads; ports and flows stay', async () => {
    const dp = datapath({ threads: 1 });
    const p1 = dp.addPort('p1', 'dummy');
    const p2 = dp.addPort('p2', 'dummy');
    const pkt = udpFrame(1000);
    const key = { inPort: p1, ethType: 0x0800 };
    const mask = dp.keys.exactMask(['inPort', 'ethType']);
    expect(dp.flowPut([{ key, mask, actions: [{ type: 'output', port: p2 }] }])).toEqual([{ ok: true }]);
    dp.setPmdCores([0]);
    expect(dp.stats().threads.map((t) => [t.core, t.ports])).toEqual([[0, [p1, p2]]]);
    expect(() => dp.setPmdCores([100_000])).toThrow(expect.objectContaining({ code: 'DP_PIN_FAILED' }));
    expect(dp.stats().threads.map((t) => t.core)).toEqual([0]);
    dp.setPmdCores([]);
    expect(dp.stats().threads.map((t) => t.core)).toEqual([undefined]);
    dp.inject(p1, [pkt, pkt]);
    await eventually('2 packets out of p2', () => dp.stats().ports.find((p) => p.portNo === p2)?.txPackets === 2);
    expect(dp.stats().threads[0].misses).toBe(0);
    expect(dp.flowDump()[0].stats.packets).toBe(2);
    // The replaced threads' counters stay in the totals.
    dp.setPmdCores([0]);
    expect(dp.stats().retired).toMatchObject({ packets: 2, megaflowHits: 1, emcHits: 1, misses: 0 });
    expect(dp.stats().threads[0].packets).toBe(0);
  });
});
