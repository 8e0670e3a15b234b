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

/** OpenFlow 1.0 error types and the codes nvs sends (same numbers in 1.3 for these). */
export const ErrType = { HELLO_FAILED: 0, BAD_REQUEST: 1, BAD_ACTION: 2, FLOW_MOD_FAILED: 3 } as const;
export const BadRequest = { BAD_VERSION: 0, BAD_TYPE: 1, BAD_STAT: 2, BAD_VENDOR: 3, BAD_SUBTYPE: 4, EPERM: 5, BAD_LEN: 6 } as const;
export const BadAction = { BAD_TYPE: 0, BAD_LEN: 1, BAD_VENDOR: 2, BAD_VENDOR_TYPE: 3, BAD_OUT_PORT: 4, BAD_ARGUMENT: 5 } as const;

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
