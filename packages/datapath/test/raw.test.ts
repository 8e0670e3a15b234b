// The record batches of the hot calls, through the addon: a put batch is
// seen by the next packet, the dump (with and without actions) and delete
// return the counters, execute batches send and report bad ports, upcall
// batches carry in_port, key and packet.
import { afterEach, describe, expect, it } from 'vitest';
import {
  Datapath,
  encodeActions,
  FlowExistsError,
  forEachFlow,
  forEachUpcall,
  NoSuchPortError,
  PUT_CREATE,
  readStats,
  RecordWriter,
  FLOW_TRAILER,
  writeExecuteRecord,
  writePutRecord,
  type RawUpcall,
} from '../src/index.ts';
import { datapathPool, eventually, udpFrame } from './frames.ts';

const pool = datapathPool();
const datapath = pool.open;
afterEach(pool.closeAll);

describe('raw batches', () => {
  it('puts a batch, hits it at once, dumps and deletes with counters', async () => {
    const dp = datapath({ threads: 1 });
    const p1 = dp.addPort('p1', 'dummy');
    const p2 = dp.addPort('p2', 'dummy');
    const mask = dp.keys.encode(dp.keys.exactMask(['in_port', 'eth_type', 'nw_proto', 'tp_src']));
    const out = encodeActions([{ type: 'output', port: p2 }]);
    const w = new RecordWriter(16);
    const ids: Buffer[] = [];
    for (let i = 0; i < 10; i++) {
      const key = dp.keys.encode(dp.extractKey(udpFrame(100 + i), p1));
      for (let j = 0; j < key.length; j++) key[j] &= mask[j];
      const km = Buffer.concat([key, mask]);
      ids.push(km);
      writePutRecord(w, PUT_CREATE, i % 2 ? km.toString('latin1') : km, out);
    }
    writePutRecord(w, PUT_CREATE, ids[3], out);
    const failed = dp.flowPut(w.take());
    expect(failed).toHaveLength(1);
    expect(failed[0].index).toBe(10);
    expect(failed[0].error).toBeInstanceOf(FlowExistsError);

    dp.inject(p1, Array.from({ length: 10 }, (_, i) => udpFrame(100 + i)));
    await eventually('10 packets out of p2', () => dp.stats().ports.find((p) => p.portNo === p2)?.txPackets === 10);
    expect(dp.recvUpcalls().length).toBe(0);

    const dump = dp.flowDump(false);
    expect(dump.length).toBe(10 * (2 * dp.keys.size + FLOW_TRAILER));
    expect(dp.flowDump(true).length).toBe(dump.length + 10 * out.length);
    const seen = new Set<string>();
    const records: Array<{ keyOffset: number; statsOffset: number; actionsLength: number }> = [];
    forEachFlow(dump, dp.keys.size, (f) => records.push(f));
    expect(records).toHaveLength(10);
    for (const f of records) {
      expect(f.actionsLength).toBe(0);
      seen.add(dump.toString('latin1', f.keyOffset, f.statsOffset));
      const s = readStats(dump, f.statsOffset);
      expect(s.packets).toBe(1);
      expect(s.bytes).toBe(64);
      expect(s.usedMs).toBeGreaterThan(Date.now() - 60_000);
    }
    expect([...seen].sort()).toEqual(ids.map((b) => b.toString('latin1')).sort());

    const missing = Buffer.from(ids[0]);
    missing[0] ^= 0xff;
    const del = dp.flowDel(Buffer.concat([ids[0], missing]));
    expect(readStats(del.stats, 0).packets).toBe(1);
    expect(del.failed.map((f) => [f.index, f.error.code])).toEqual([[1, 'DP_FLOW_NOT_FOUND']]);
    expect(dp.stats().flows).toBe(9);
  });

  it('executes a batch and reports the packets that failed', () => {
    const dp = datapath({ threads: 0 });
    const p1 = dp.addPort('p1', 'dummy');
    const p2 = dp.addPort('p2', 'dummy');
    const out = encodeActions([{ type: 'output', port: p2 }]);
    const w = new RecordWriter();
    writeExecuteRecord(w, p1, udpFrame(1), out);
    writeExecuteRecord(w, 77, udpFrame(2), out);
    writeExecuteRecord(w, p1, udpFrame(3), out);
    const failed = dp.execute(w.take());
    expect(failed.map((f) => f.index)).toEqual([1]);
    expect(failed[0].error).toBeInstanceOf(NoSuchPortError);
    expect(dp.drain(p2).map((b) => b.readUInt16BE(34))).toEqual([1, 3]);
  });

  it('delivers upcalls as raw batches', async () => {
    const dp = datapath({ threads: 1 });
    const p1 = dp.addPort('p1', 'dummy');
    const seen: Array<RawUpcall & { key: ReturnType<Datapath['keys']['decode']>; packet: Buffer }> = [];
    dp.onUpcalls((b) =>
      forEachUpcall(b, dp.keys.size, (u) =>
        seen.push({ ...u, key: dp.keys.decode(b, u.keyOffset), packet: Buffer.from(b.subarray(u.packetOffset, u.packetOffset + u.packetLength)) }),
      ),
    );
    const frames = Array.from({ length: 70 }, (_, i) => (i === 5 ? udpFrame(i).subarray(0, 61) : udpFrame(i)));
    dp.inject(p1, frames);
    await eventually('70 upcalls', () => seen.length === 70);
    dp.offUpcalls();
    // Frame 5 is truncated (its key is partial), so order by the bytes of the packet.
    seen.sort((a, b) => a.packet.readUInt16BE(34) - b.packet.readUInt16BE(34));
    for (let i = 0; i < 70; i++) {
      expect(seen[i]).toMatchObject({ inPort: p1, reason: 0, cookie: 0n });
      expect(Buffer.compare(seen[i].packet, frames[i])).toBe(0);
      expect(dp.keys.encode(seen[i].key)).toEqual(dp.keys.encode(dp.extractKey(frames[i], p1)));
    }
  });
});
