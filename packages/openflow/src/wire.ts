/**
 * Byte-level helpers of the OpenFlow codec: a bounds-checked reader (every
 * overrun is an `OfError`, never a RangeError), a growable writer, and the
 * error a refused message is answered with (OpenFlow error type and code).
 */

/** A refusal the peer is told about with an OFPT_ERROR of this type and code. */
export class OfError extends Error {
  constructor(
    readonly errType: number,
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = 'OfError';
  }
}

/**
 * Error types and codes, numbered as OpenFlow 1.3 numbers them (1.4 and 1.5
 * add types, keep these); `errorForVersion` renumbers for OpenFlow 1.0.
 */
export const ErrType = {
  HELLO_FAILED: 0,
  BAD_REQUEST: 1,
  BAD_ACTION: 2,
  BAD_INSTRUCTION: 3,
  BAD_MATCH: 4,
  FLOW_MOD_FAILED: 5,
  PORT_MOD_FAILED: 7,
  ROLE_REQUEST_FAILED: 11,
  BAD_PROPERTY: 14,
  BUNDLE_FAILED: 17,
} as const;
export const BadRequest = {
  BAD_VERSION: 0,
  BAD_TYPE: 1,
  BAD_STAT: 2,
  BAD_VENDOR: 3,
  BAD_SUBTYPE: 4,
  EPERM: 5,
  BAD_LEN: 6,
  BUFFER_UNKNOWN: 8,
  BAD_TABLE_ID: 9,
  IS_SLAVE: 10,
  BAD_PORT: 11,
  BAD_PACKET: 12,
} as const;
export const BadAction = { BAD_TYPE: 0, BAD_LEN: 1, BAD_VENDOR: 2, BAD_VENDOR_TYPE: 3, BAD_OUT_PORT: 4, BAD_ARGUMENT: 5, BAD_OUT_GROUP: 9 } as const;
export const BadInstruction = { UNKNOWN_INST: 0, UNSUP_INST: 1, BAD_TABLE_ID: 2, BAD_LEN: 6 } as const;
export const BadMatch = { BAD_TYPE: 0, BAD_LEN: 1, BAD_TAG: 2, BAD_FIELD: 6, BAD_VALUE: 7, BAD_MASK: 8, BAD_PREREQ: 9, DUP_FIELD: 10 } as const;
export const FlowModFailed = { UNKNOWN: 0, TABLE_FULL: 1, BAD_TABLE_ID: 2, OVERLAP: 3, EPERM: 4, BAD_TIMEOUT: 5, BAD_COMMAND: 6, BAD_FLAGS: 7 } as const;
export const PortModFailed = { BAD_PORT: 0, BAD_HW_ADDR: 1 } as const;
export const RoleRequestFailed = { STALE: 0, UNSUP: 1, BAD_ROLE: 2 } as const;
export const BundleFailed = { UNKNOWN: 0, EPERM: 1, BAD_ID: 2, BUNDLE_EXIST: 3, BUNDLE_CLOSED: 4, OUT_OF_BUNDLES: 5, BAD_TYPE: 6, BAD_FLAGS: 7, MSG_BAD_LEN: 8, MSG_BAD_XID: 9, MSG_UNSUP: 10, MSG_CONFLICT: 11, MSG_TOO_MANY: 12, MSG_FAILED: 13, TIMEOUT: 14, BUNDLE_IN_PROGRESS: 15 } as const;

/** OpenFlow 1.0 flow-mod failure codes, by the 1.3 code they stand for. */
const OF10_FLOW_MOD_CODE: Record<number, number> = { [FlowModFailed.TABLE_FULL]: 0, [FlowModFailed.OVERLAP]: 1, [FlowModFailed.EPERM]: 2, [FlowModFailed.BAD_TIMEOUT]: 3, [FlowModFailed.BAD_COMMAND]: 4 };

/** The type and code an error has on the wire of `version` (OpenFlow 1.0 numbers some types differently and lacks others). */
export function errorForVersion(version: number, errType: number, code: number): { errType: number; code: number } {
  if (version !== 1) return { errType, code };
  switch (errType) {
    case ErrType.FLOW_MOD_FAILED:
      return { errType: 3, code: OF10_FLOW_MOD_CODE[code] ?? 2 };
    case ErrType.PORT_MOD_FAILED:
      return { errType: 4, code };
    case ErrType.HELLO_FAILED:
    case ErrType.BAD_REQUEST:
    case ErrType.BAD_ACTION:
      if (errType === ErrType.BAD_ACTION) return { errType, code: code > BadAction.BAD_ARGUMENT ? BadAction.BAD_ARGUMENT : code };
      return { errType, code: errType === ErrType.BAD_REQUEST && code > BadRequest.BUFFER_UNKNOWN ? BadRequest.EPERM : code };
    default:
      // No such type in 1.0 (bad match, bad instruction, …): a refused request.
      return { errType: ErrType.BAD_REQUEST, code: BadRequest.EPERM };
  }
}

export function badLen(what: string): OfError {
  return new OfError(ErrType.BAD_REQUEST, BadRequest.BAD_LEN, what);
}

export class Reader {
  private at = 0;
  constructor(
    readonly buf: Uint8Array,
    private readonly view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength),
  ) {}

  get offset(): number {
    return this.at;
  }
  get left(): number {
    return this.buf.length - this.at;
  }
  private need(n: number): number {
    if (n < 0 || this.at + n > this.buf.length) throw badLen(`message truncated: ${n} bytes wanted at offset ${this.at}, ${this.left} left`);
    const at = this.at;
    this.at += n;
    return at;
  }
  u8(): number {
    return this.view.getUint8(this.need(1));
  }
  u16(): number {
    return this.view.getUint16(this.need(2));
  }
  u32(): number {
    return this.view.getUint32(this.need(4));
  }
  u64(): bigint {
    return this.view.getBigUint64(this.need(8));
  }
  /** An unsigned big-endian number of n bytes. */
  uint(n: number): bigint {
    const at = this.need(n);
    let v = 0n;
    for (let i = 0; i < n; i++) v = (v << 8n) | BigInt(this.buf[at + i]);
    return v;
  }
  bytes(n: number): Uint8Array {
    const at = this.need(n);
    return this.buf.slice(at, at + n);
  }
  skip(n: number): void {
    this.need(n);
  }
  /** A sub-reader over the next n bytes. */
  sub(n: number): Reader {
    return new Reader(this.buf.subarray(this.need(n), this.at));
  }
}

export class Writer {
  private buf = new Uint8Array(256);
  private view = new DataView(this.buf.buffer);
  private at = 0;

  get length(): number {
    return this.at;
  }
  /** Reserves n bytes and returns where they start (callers read `buf`/`view` only after: they may be replaced). */
  private room(n: number): number {
    if (this.at + n > this.buf.length) {
      const next = new Uint8Array(Math.max(this.buf.length * 2, this.at + n));
      next.set(this.buf.subarray(0, this.at));
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
    const at = this.at;
    this.at += n;
    return at;
  }
  u8(v: number): this {
    const at = this.room(1);
    this.view.setUint8(at, v);
    return this;
  }
  u16(v: number): this {
    const at = this.room(2);
    this.view.setUint16(at, v);
    return this;
  }
  u32(v: number): this {
    const at = this.room(4);
    this.view.setUint32(at, v >>> 0);
    return this;
  }
  u64(v: bigint): this {
    const at = this.room(8);
    this.view.setBigUint64(at, BigInt.asUintN(64, v));
    return this;
  }
  uint(v: bigint, n: number): this {
    const at = this.room(n);
    for (let i = n - 1; i >= 0; i--, v >>= 8n) this.buf[at + i] = Number(v & 0xffn);
    return this;
  }
  bytes(b: Uint8Array): this {
    const at = this.room(b.length);
    this.buf.set(b, at);
    return this;
  }
  zeros(n: number): this {
    const at = this.room(n);
    this.buf.fill(0, at, this.at);
    return this;
  }
  /** Pads with zeros to a multiple of `align` bytes counted from `from`. */
  pad(align: number, from = 0): this {
    const r = (this.at - from) % align;
    return r ? this.zeros(align - r) : this;
  }
  setU16(at: number, v: number): void {
    this.view.setUint16(at, v);
  }
  finish(): Uint8Array {
    return this.buf.slice(0, this.at);
  }
}
