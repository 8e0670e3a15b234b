// The flow key as a typed object, and its binary encoding (the raw bytes of
// Rust's `FlowKey`). The layout (offset, size, kind of each field) is not
// written here: it comes from the addon (`flowKeyLayout()`), so Rust stays
// the one definition; this file only names the fields and checks, when a
// codec is built, that the addon has exactly these.

import { endianness } from 'node:os';
import { BadKeyError, LayoutMismatchError } from './errors.ts';
import type { NativeKeyField } from './native.ts';

/**
 * A flow key, or a mask over one (1-bits matter). Integer fields hold
 * host-order values (`ethType: 0x0800`, `nwSrc: 0x0a000001` for 10.0.0.1);
 * addresses are network-order bytes. Conventions follow OVS datapath flows:
 * ARP opcode in `nwProto`, ARP SPA/TPA in `nwSrc`/`nwDst`, ICMP type/code in
 * `tpSrc`/`tpDst`, ND SLL/TLL in `arpSha`/`arpTha`; `vlanTci` has 0x1000 set
 * when a tag is present (0: untagged).
 */
export interface FlowKey {
  inPort: number;
  recircId: number;
  ethDst: Uint8Array;
  ethType: number;
  ethSrc: Uint8Array;
  vlanTci: number;
  vlanTpid: number;
  cvlanTci: number;
  nwProto: number;
  nwTos: number;
  nwTtl: number;
  nwFrag: number;
  tpSrc: number;
  tpDst: number;
  tcpFlags: number;
  nwSrc: number;
  nwDst: number;
  ipv6Src: Uint8Array;
  ipv6Dst: Uint8Array;
  ndTarget: Uint8Array;
  ipv6Label: number;
  arpSha: Uint8Array;
  arpTha: Uint8Array;
}

export type FlowKeyField = keyof FlowKey;

/** Fields holding byte arrays; every other field is an unsigned integer. */
const BYTE_FIELDS: ReadonlySet<FlowKeyField> = new Set<FlowKeyField>([
  'ethDst', 'ethSrc', 'ipv6Src', 'ipv6Dst', 'ndTarget', 'arpSha', 'arpTha',
]);

/** Every field name, in no particular order (the layout gives the order). */
export const FLOW_KEY_FIELDS: readonly FlowKeyField[] = [
  'inPort', 'recircId', 'ethDst', 'ethType', 'ethSrc', 'vlanTci', 'vlanTpid', 'cvlanTci', 'nwProto', 'nwTos',
  'nwTtl', 'nwFrag', 'tpSrc', 'tpDst', 'tcpFlags', 'nwSrc', 'nwDst', 'ipv6Src', 'ipv6Dst', 'ndTarget', 'ipv6Label',
  'arpSha', 'arpTha',
];

/** `nw_frag` bit: the packet is a fragment. */
export const FRAG_ANY = 1;
/** `nw_frag` bit: a fragment other than the first. */
export const FRAG_LATER = 2;

interface Slot {
  name: FlowKeyField;
  offset: number;
  size: number;
  bytes: boolean;
}

function camel(snake: string): string {
  return snake.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** Encodes and decodes flow keys with the layout the addon publishes. */
export class FlowKeyCodec {
  /** Size of an encoded key in bytes. */
  readonly size: number;
  /** The addon's layout this codec was built from (Rust field names, offsets, sizes, kinds). */
  readonly layout: readonly NativeKeyField[];
  private readonly slots: Slot[];
  private readonly littleEndian = endianness() === 'LE';

  /** Builds a codec from `flowKeyLayout()`; throws LayoutMismatchError if the fields differ from `FlowKey`'s. */
  constructor(layout: readonly NativeKeyField[]) {
    this.layout = layout;
    this.slots = layout
      .filter((f) => f.kind !== 'pad')
      .map((f) => ({ name: camel(f.name) as FlowKeyField, offset: f.offset, size: f.size, bytes: f.kind === 'bytes' }));
    this.size = layout.reduce((end, f) => Math.max(end, f.offset + f.size), 0);
    const names = this.slots.map((s) => s.name).sort();
    const expected = [...FLOW_KEY_FIELDS].sort();
    const kindsAgree = this.slots.every((s) => s.bytes === BYTE_FIELDS.has(s.name) && (s.bytes || s.size <= 4));
    if (names.join() !== expected.join() || !kindsAgree) {
      throw new LayoutMismatchError(
        'DP_LAYOUT_MISMATCH',
        `the addon's flow key fields (${names.join(', ')}) differ from @nvs/datapath's (${expected.join(', ')}): rebuild the addon and update flow-key.ts together`,
      );
    }
  }

  /** A key with every field zero (also: the mask that matches everything). */
  zero(): FlowKey {
    return this.decode(Buffer.alloc(this.size));
  }

  /** Encodes `key`; absent fields are zero. Throws BadKeyError for out-of-range values. */
  encode(key: Partial<FlowKey>): Buffer {
    const buf = Buffer.alloc(this.size);
    for (const s of this.slots) {
      const v = key[s.name];
      if (v === undefined) continue;
      if (s.bytes) {
        if (!(v instanceof Uint8Array) || v.length !== s.size) {
          throw new BadKeyError('DP_BAD_KEY', `flow key field ${s.name} must be ${s.size} bytes`);
        }
        buf.set(v, s.offset);
      } else {
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= 2 ** (8 * s.size)) {
          throw new BadKeyError('DP_BAD_KEY', `flow key field ${s.name} must be an integer in [0, 2^${8 * s.size}), got ${String(v)}`);
        }
        if (this.littleEndian) buf.writeUIntLE(v, s.offset, s.size);
        else buf.writeUIntBE(v, s.offset, s.size);
      }
    }
    return buf;
  }

  /** Decodes an encoded key; throws BadKeyError unless it is exactly `size` bytes. */
  decode(buf: Uint8Array): FlowKey {
    if (buf.length !== this.size) {
      throw new BadKeyError('DP_BAD_KEY', `an encoded flow key is ${this.size} bytes, got ${buf.length}`);
    }
    const b = Buffer.from(buf.buffer, buf.byteOffset, buf.length);
    const key: Record<string, number | Uint8Array> = {};
    for (const s of this.slots) {
      key[s.name] = s.bytes
        ? Uint8Array.from(b.subarray(s.offset, s.offset + s.size))
        : this.littleEndian
          ? b.readUIntLE(s.offset, s.size)
          : b.readUIntBE(s.offset, s.size);
    }
    return key as unknown as FlowKey;
  }

  /** A mask with every bit of the named fields set (exact match on them). */
  exactMask(fields: readonly FlowKeyField[]): Partial<FlowKey> {
    const mask: Record<string, number | Uint8Array> = {};
    for (const name of fields) {
      const s = this.slots.find((x) => x.name === name);
      if (!s) throw new BadKeyError('DP_BAD_KEY', `unknown flow key field ${name}`);
      mask[name] = s.bytes ? new Uint8Array(s.size).fill(0xff) : 2 ** (8 * s.size) - 1;
    }
    return mask as Partial<FlowKey>;
  }
}

/** `"02:00:00:00:00:01"` → 6 bytes; throws BadKeyError if malformed. */
export function parseMac(text: string): Uint8Array {
  const parts = text.split(':');
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{1,2}$/.test(p))) {
    throw new BadKeyError('DP_BAD_KEY', `bad MAC address '${text}': expected six hex bytes separated by ':'`);
  }
  return Uint8Array.from(parts.map((p) => parseInt(p, 16)));
}

/** 6 bytes → `"02:00:00:00:00:01"`. */
export function formatMac(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(':');
}

/** `"10.0.0.1"` → `0x0a000001` (the host-order value of `nwSrc`/`nwDst`); throws BadKeyError if malformed. */
export function parseIpv4(text: string): number {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) {
    throw new BadKeyError('DP_BAD_KEY', `bad IPv4 address '${text}': expected four numbers 0-255 separated by '.'`);
  }
  return parts.reduce((acc, p) => acc * 256 + Number(p), 0);
}

/** `0x0a000001` → `"10.0.0.1"`. */
export function formatIpv4(value: number): string {
  return [24, 16, 8, 0].map((s) => (value >>> s) & 0xff).join('.');
}
