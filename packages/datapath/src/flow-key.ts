// The flow key as TypeScript holds it, and the one codec between it and the
// binary key (the raw bytes of Rust's `FlowKey`). The layout (offset, size,
// kind of each field) is not written here: it comes from the addon
// (`flowKeyLayout()`), so Rust stays the one definition; this file names the
// fields and checks, when a codec is built, that the addon has exactly these.
// The slow path speaks this same type (ofproto's `DpFlowKey` is this
// `FlowKey`), so a key is never converted between two object forms.

import { endianness } from 'node:os';
import { BadKeyError, LayoutMismatchError } from './errors.ts';
import type { NativeKeyField } from './native.ts';

/**
 * A datapath flow key, or a mask over one (1-bits matter). Field names are
 * the Rust `FlowKey`'s, one to one, with its conventions: ARP's opcode in
 * nw_proto and SPA/TPA in nw_src/nw_dst, ICMP type/code in tp_src/tp_dst, ND
 * SLL/TLL in arp_sha/arp_tha, vlan_tci with 0x1000 set when tagged,
 * host-order numbers. MACs are 48-bit numbers and 128-bit addresses bigints.
 */
export interface FlowKey {
  in_port: number;
  recirc_id: number;
  eth_dst: number;
  eth_type: number;
  eth_src: number;
  vlan_tci: number;
  vlan_tpid: number;
  cvlan_tci: number;
  nw_proto: number;
  nw_tos: number;
  nw_ttl: number;
  nw_frag: number;
  tp_src: number;
  tp_dst: number;
  tcp_flags: number;
  nw_src: number;
  nw_dst: number;
  ipv6_src: bigint;
  ipv6_dst: bigint;
  nd_target: bigint;
  ipv6_label: number;
  arp_sha: number;
  arp_tha: number;
  /** Tunnel ID (the low 32 bits; VXLAN and Geneve carry 24) of the tunnel the packet came through. */
  tun_id: number;
  /** Outer IPv4 source and destination of that tunnel (0 when the packet came through none). */
  tun_src: number;
  tun_dst: number;
}

export type FlowKeyField = keyof FlowKey;

/** An all-zero key (as a mask: everything wildcarded). */
export function zeroFlowKey(): FlowKey {
  return {
    in_port: 0, recirc_id: 0, eth_dst: 0, eth_type: 0, eth_src: 0, vlan_tci: 0, vlan_tpid: 0, cvlan_tci: 0,
    nw_proto: 0, nw_tos: 0, nw_ttl: 0, nw_frag: 0, tp_src: 0, tp_dst: 0, tcp_flags: 0, nw_src: 0, nw_dst: 0,
    ipv6_src: 0n, ipv6_dst: 0n, nd_target: 0n, ipv6_label: 0, arp_sha: 0, arp_tha: 0,
    tun_id: 0, tun_src: 0, tun_dst: 0,
  };
}

/** `nw_frag` bit: the packet is a fragment. */
export const FRAG_ANY = 1;
/** `nw_frag` bit: a fragment other than the first. */
export const FRAG_LATER = 2;

/** How a field is held: an integer (machine order in the key), a MAC (6 bytes ↔ 48-bit number), 128 bits (16 bytes ↔ bigint). */
export type KeyFieldKind = 'num' | 'mac' | 'wide';

/** One field of the binary key. */
export interface KeyField {
  readonly name: FlowKeyField;
  readonly offset: number;
  readonly size: number;
  readonly kind: KeyFieldKind;
}

/**
 * FlowKey ↔ the binary key, directly (no intermediate object), with the
 * layout the addon publishes. Integers are little-endian: the layout is
 * machine order and nvs builds for little-endian targets only. `write` and
 * `id` run per upcall: they check nothing and allocate only the id string.
 */
export class KeyCodec {
  /** Bytes of an encoded key. */
  readonly size: number;
  /** Every field with its place in the encoded key. */
  readonly fields: readonly KeyField[];
  private readonly byName: ReadonlyMap<FlowKeyField, KeyField>;
  private readonly scratch: Buffer;

  /** Builds a codec from `flowKeyLayout()`; throws LayoutMismatchError if the fields differ from `FlowKey`'s. */
  constructor(layout: readonly NativeKeyField[]) {
    if (endianness() !== 'LE') throw new LayoutMismatchError('DP_LAYOUT_MISMATCH', 'nvs needs a little-endian machine (the datapath key layout is machine order)');
    const zero = zeroFlowKey();
    const fields = layout
      .filter((f) => f.kind !== 'pad')
      .map((f): KeyField => ({ name: f.name as FlowKeyField, offset: f.offset, size: f.size, kind: f.kind === 'uint' ? 'num' : f.size === 6 ? 'mac' : 'wide' }));
    const names = fields.map((f) => f.name).sort();
    const expected = Object.keys(zero).sort();
    const kindsAgree = fields.every((f) => (f.kind === 'num' ? typeof zero[f.name] === 'number' && f.size <= 4 : f.kind === 'mac' ? typeof zero[f.name] === 'number' : f.size === 16));
    if (names.join() !== expected.join() || !kindsAgree) {
      throw new LayoutMismatchError(
        'DP_LAYOUT_MISMATCH',
        `the addon's flow key fields (${names.join(', ')}) differ from @nvs/datapath's (${expected.join(', ')}): rebuild the addon and update flow-key.ts together`,
      );
    }
    this.fields = fields;
    this.byName = new Map(fields.map((f) => [f.name, f]));
    this.size = layout.reduce((end, f) => Math.max(end, f.offset + f.size), 0);
    this.scratch = Buffer.alloc(2 * this.size);
  }

  /** The field `name`. */
  field(name: FlowKeyField): KeyField {
    return this.byName.get(name)!;
  }

  /** Writes `k` at `off` (the `size` bytes there must be zero). */
  write(k: Partial<FlowKey>, b: Buffer, off: number): void {
    for (const f of this.fields) {
      const o = off + f.offset;
      const v = k[f.name];
      if (v === undefined) continue;
      if (f.kind === 'num') {
        const n = (v as number) >>> 0;
        if (n === 0) continue;
        b[o] = n;
        if (f.size > 1) b[o + 1] = n >>> 8;
        if (f.size > 2) {
          b[o + 2] = n >>> 16;
          b[o + 3] = n >>> 24;
        }
      } else if (f.kind === 'mac') {
        const n = v as number;
        if (n === 0) continue;
        const hi = Math.floor(n / 0x1_0000_0000);
        b[o] = hi >>> 8;
        b[o + 1] = hi;
        b.writeUInt32BE(n >>> 0, o + 2);
      } else {
        const x = BigInt(v);
        if (x === 0n) continue;
        b.writeBigUInt64BE(BigInt.asUintN(64, x >> 64n), o);
        b.writeBigUInt64BE(BigInt.asUintN(64, x), o + 8);
      }
    }
  }

  /** Encodes `key` (absent fields are zero) into a new Buffer. */
  encode(key: Partial<FlowKey>): Buffer {
    const b = Buffer.alloc(this.size);
    this.write(key, b, 0);
    return b;
  }

  /** Decodes the key at `off` of `b`; throws BadKeyError when fewer than `size` bytes are there. */
  decode(b: Uint8Array, off = 0): FlowKey {
    if (off < 0 || b.length - off < this.size) {
      throw new BadKeyError('DP_BAD_KEY', `an encoded flow key is ${this.size} bytes, got ${b.length - off}`);
    }
    const buf = Buffer.from(b.buffer, b.byteOffset, b.length);
    const k = zeroFlowKey() as unknown as Record<string, number | bigint>;
    for (const f of this.fields) {
      const o = off + f.offset;
      if (f.kind === 'num') k[f.name] = buf.readUIntLE(o, f.size);
      else if (f.kind === 'mac') k[f.name] = buf.readUInt16BE(o) * 0x1_0000_0000 + buf.readUInt32BE(o + 2);
      else k[f.name] = (buf.readBigUInt64BE(o) << 64n) | buf.readBigUInt64BE(o + 8);
    }
    return k as unknown as FlowKey;
  }

  /** The identity of a megaflow: masked key bytes then mask bytes, as a latin1 string (what flow records carry). */
  id(key: Partial<FlowKey>, mask: Partial<FlowKey>): string {
    const b = this.scratch;
    const n = this.size;
    b.fill(0);
    this.write(key, b, 0);
    this.write(mask, b, n);
    for (let i = 0; i < n; i++) b[i] &= b[n + i];
    return b.toString('latin1', 0, 2 * n);
  }

  /** A mask with every bit of the named fields set (exact match on them). */
  exactMask(names: readonly FlowKeyField[]): Partial<FlowKey> {
    const mask: Record<string, number | bigint> = {};
    for (const name of names) {
      const f = this.byName.get(name);
      if (!f) throw new BadKeyError('DP_BAD_KEY', `unknown flow key field ${name}`);
      mask[name] = f.kind === 'wide' ? (1n << 128n) - 1n : 2 ** (8 * f.size) - 1;
    }
    return mask as Partial<FlowKey>;
  }
}
