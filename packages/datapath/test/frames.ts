// Test support: frames built byte by byte (no parser of ours involved), and
// datapaths that the tests open and close again.
import {
  Datapath,
  decodeActions,
  encodeActions,
  forEachFlow,
  forEachUpcall,
  PUT_CREATE,
  readStats,
  RecordWriter,
  STATS_RECORD,
  writeExecuteRecord,
  writePutRecord,
  type BatchFailure,
  type DpAction,
  type FlowKey,
  type RawStats,
} from '../src/index.ts';

/** Opens datapaths for a test file; `closeAll` (run it in afterEach) closes every one still open. */
export function datapathPool(): { open: (options?: Parameters<typeof Datapath.open>[0]) => Datapath; closeAll: () => void } {
  const opened: Datapath[] = [];
  return {
    open: (options = {}) => {
      const dp = Datapath.open(options);
      opened.push(dp);
      return dp;
    },
    closeAll: () => {
      for (const dp of opened.splice(0)) dp.close();
    },
  };
}

/** A 64-byte Ethernet/IPv4/UDP frame 10.0.0.1:`sport` → 10.0.0.2:53. */
export function udpFrame(sport: number): Buffer {
  const f = Buffer.alloc(64);
  Buffer.from([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]).copy(f, 0);
  f.writeUInt16BE(0x0800, 12);
  f[14] = 0x45;
  f.writeUInt16BE(50, 16);
  f[22] = 64;
  f[23] = 17;
  Buffer.from([10, 0, 0, 1, 10, 0, 0, 2]).copy(f, 26);
  f.writeUInt16BE(sport, 34);
  f.writeUInt16BE(53, 36);
  f.writeUInt16BE(30, 38);
  return f;
}

/** Polls `cond` until it returns a value (the polling thread works asynchronously). */
export async function eventually<T>(what: string, cond: () => T | undefined | false): Promise<T> {
  for (let i = 0; i < 20_000; i++) {
    const v = cond();
    if (v !== undefined && v !== false) return v;
    await new Promise((r) => setTimeout(r, 1));
  }
  throw new Error(`never happened: ${what}`);
}

/** One upcall of a batch, decoded (tests read them as objects; the host keeps records). */
export interface TestUpcall {
  reason: 'miss' | 'userspace';
  cookie: bigint;
  inPort: number;
  key: FlowKey;
  packet: Buffer;
}

/** The upcalls of an upcall record batch. */
export function readUpcalls(dp: Datapath, batch: Buffer): TestUpcall[] {
  const out: TestUpcall[] = [];
  forEachUpcall(batch, dp.keys.size, (u) =>
    out.push({
      reason: u.reason === 0 ? 'miss' : 'userspace',
      cookie: u.cookie,
      inPort: u.inPort,
      key: dp.keys.decode(batch, u.keyOffset),
      packet: Buffer.from(batch.subarray(u.packetOffset, u.packetOffset + u.packetLength)),
    }),
  );
  return out;
}

/** Puts flows given as objects (one put record each); returns the failures. */
export function putFlows(
  dp: Datapath,
  flows: Array<{ key: Partial<FlowKey>; mask: Partial<FlowKey>; actions: DpAction[]; flags?: number }>,
): BatchFailure[] {
  const w = new RecordWriter();
  for (const f of flows) writePutRecord(w, f.flags ?? PUT_CREATE, dp.keys.id(f.key, f.mask), encodeActions(f.actions));
  return dp.flowPut(w.take());
}

/** Deletes flows given as (key, mask) objects; returns their final counters and the failures. */
export function delFlows(dp: Datapath, matches: Array<{ key: Partial<FlowKey>; mask: Partial<FlowKey> }>): { stats: RawStats[]; failed: BatchFailure[] } {
  const ids = Buffer.concat(matches.map((m) => Buffer.from(dp.keys.id(m.key, m.mask), 'latin1')));
  const r = dp.flowDel(ids);
  return { stats: matches.map((_, i) => readStats(r.stats, i * STATS_RECORD)), failed: r.failed };
}

/** Every flow, decoded. */
export function dumpFlows(dp: Datapath): Array<{ key: FlowKey; mask: FlowKey; actions: DpAction[]; stats: RawStats }> {
  const b = dp.flowDump();
  const out: Array<{ key: FlowKey; mask: FlowKey; actions: DpAction[]; stats: RawStats }> = [];
  forEachFlow(b, dp.keys.size, (f) =>
    out.push({
      key: dp.keys.decode(b, f.keyOffset),
      mask: dp.keys.decode(b, f.keyOffset + dp.keys.size),
      actions: decodeActions(b.subarray(f.actionsOffset, f.actionsOffset + f.actionsLength)),
      stats: readStats(b, f.statsOffset),
    }),
  );
  return out;
}

/** Runs `actions` on one packet; returns the failures. */
export function executeOne(dp: Datapath, inPort: number, packet: Uint8Array, actions: DpAction[]): BatchFailure[] {
  const w = new RecordWriter();
  writeExecuteRecord(w, inPort, packet, encodeActions(actions));
  return dp.execute(w.take());
}
