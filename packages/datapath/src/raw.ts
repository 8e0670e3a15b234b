// The record forms in which flows, executions and upcalls cross the
// binding: a batch is one Buffer of fixed-layout records instead of an
// object per flow or packet. The layouts are defined in
// crates/datapath/src/records.rs (the Rust codecs, unit-tested and fuzzed);
// this file is their one mirror in TypeScript. Integers are little-endian;
// keys and masks are `KeyCodec.size` raw bytes (see flow-key.ts).

/** Flags of a raw flow put record. */
export const PUT_CREATE = 1;
export const PUT_MODIFY = 2;
export const PUT_ZERO_STATS = 4;

/** Bytes of a counters record: packets u64, bytes u64, usedMs f64, tcpFlags u32, pad u32. */
export const STATS_RECORD = 32;
/** Bytes of an upcall record's header, before its key and packet. */
export const UPCALL_HEADER = 24;
/** Bytes of a flow record after its key and mask, before its actions: a counters record, actions_len u32, pad u32. */
export const FLOW_TRAILER = STATS_RECORD + 8;

/** A growing byte buffer for building one batch of records (reused between batches). */
export class RecordWriter {
  private buf: Buffer;
  /** Bytes written so far. */
  length = 0;
  /** Records written so far. */
  count = 0;

  constructor(initial = 16384) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  /** Makes room for `n` more bytes; returns the buffer and the offset to write at. */
  reserve(n: number): Buffer {
    if (this.length + n > this.buf.length) {
      const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + n));
      this.buf.copy(bigger, 0, 0, this.length);
      this.buf = bigger;
    }
    return this.buf;
  }

  /** A copy of what was written (the writer may then be reset and reused). */
  take(): Buffer {
    const out = Buffer.from(this.buf.subarray(0, this.length));
    this.reset();
    return out;
  }

  reset(): void {
    this.length = 0;
    this.count = 0;
  }
}

/**
 * Appends a flow put record: flags u8, pad 3, actionsLen u32, key, mask
 * (`keyMask`: the two encodings back to back, as bytes or as a latin1
 * string of them), actions.
 */
export function writePutRecord(w: RecordWriter, flags: number, keyMask: Uint8Array | string, actions: Uint8Array): void {
  const km = keyMask.length;
  const b = w.reserve(8 + km + actions.length);
  let o = w.length;
  b.writeUInt32LE(flags, o);
  b.writeUInt32LE(actions.length, o + 4);
  o += 8;
  if (typeof keyMask === 'string') b.write(keyMask, o, km, 'latin1');
  else b.set(keyMask, o);
  b.set(actions, o + km);
  w.length = o + km + actions.length;
  w.count++;
}

/** Appends an execute record: inPort u32, packetLen u32, actionsLen u32, packet, actions. */
export function writeExecuteRecord(w: RecordWriter, inPort: number, packet: Uint8Array, actions: Uint8Array): void {
  const b = w.reserve(12 + packet.length + actions.length);
  let o = w.length;
  b.writeUInt32LE(inPort >>> 0, o);
  b.writeUInt32LE(packet.length, o + 4);
  b.writeUInt32LE(actions.length, o + 8);
  o += 12;
  b.set(packet, o);
  b.set(actions, o + packet.length);
  w.length = o + packet.length + actions.length;
  w.count++;
}

/** Counters of one raw stats record. */
export interface RawStats {
  packets: number;
  bytes: number;
  usedMs: number;
  tcpFlags: number;
}

/** Reads the counters record at `off`. */
export function readStats(b: Buffer, off: number): RawStats {
  return {
    packets: Number(b.readBigUInt64LE(off)),
    bytes: Number(b.readBigUInt64LE(off + 8)),
    usedMs: b.readDoubleLE(off + 16),
    tcpFlags: b.readUInt32LE(off + 24),
  };
}

/** Reads a u64 that fits a double exactly enough for counters, without a BigInt. */
export function readCounter(b: Buffer, off: number): number {
  return b.readUInt32LE(off) + b.readUInt32LE(off + 4) * 0x1_0000_0000;
}

/** One upcall of a raw batch, as offsets into the batch buffer. */
export interface RawUpcall {
  inPort: number;
  /** 0: miss; 1: userspace action. */
  reason: number;
  cookie: bigint;
  keyOffset: number;
  packetOffset: number;
  packetLength: number;
}

/** Calls `f` with each upcall record of a raw batch. */
export function forEachUpcall(batch: Buffer, keySize: number, f: (u: RawUpcall) => void): void {
  let o = 0;
  while (o + UPCALL_HEADER + keySize <= batch.length) {
    const packetLength = batch.readUInt32LE(o + 16);
    const reason = batch[o + 4];
    f({
      inPort: batch.readUInt32LE(o),
      reason,
      cookie: reason === 0 ? 0n : batch.readBigUInt64LE(o + 8),
      keyOffset: o + UPCALL_HEADER,
      packetOffset: o + UPCALL_HEADER + keySize,
      packetLength,
    });
    o += UPCALL_HEADER + keySize + packetLength;
    o = (o + 7) & ~7;
  }
}

/** One flow record of a dump, as offsets into the batch buffer. */
export interface RawFlow {
  /** Offset of the masked key; the mask follows it, then the counters (STATS_RECORD bytes). */
  keyOffset: number;
  statsOffset: number;
  actionsOffset: number;
  actionsLength: number;
}

/** Calls `f` with each flow record of a dump (`flowDump`). */
export function forEachFlow(batch: Buffer, keySize: number, f: (r: RawFlow) => void): void {
  const head = 2 * keySize + FLOW_TRAILER;
  for (let o = 0; o + head <= batch.length; ) {
    const actionsLength = batch.readUInt32LE(o + 2 * keySize + STATS_RECORD);
    f({ keyOffset: o, statsOffset: o + 2 * keySize, actionsOffset: o + head, actionsLength });
    o += head + actionsLength;
  }
}
