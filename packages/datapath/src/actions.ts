// Datapath actions as typed values, and their binary TLV encoding: the
// format written down in crates/datapath/src/actions/mod.rs (Rust is the
// source of truth; the tests check this encoder against the addon's decoder).
// Each action is `kind: u8, len: u8, payload[len]`, integers big-endian.

import { ActionEncodingError } from './errors.ts';

/** A header field a `set` action can write, with its size in bytes. */
export const SET_FIELDS = {
  eth_src: { id: 1, size: 6 },
  eth_dst: { id: 2, size: 6 },
  ipv4_src: { id: 3, size: 4 },
  ipv4_dst: { id: 4, size: 4 },
  ipv4_tos: { id: 5, size: 1 },
  ipv4_ttl: { id: 6, size: 1 },
  ipv6_src: { id: 7, size: 16 },
  ipv6_dst: { id: 8, size: 16 },
  ipv6_label: { id: 9, size: 4, fullMask: Uint8Array.of(0x00, 0x0f, 0xff, 0xff) },
  ipv6_tclass: { id: 10, size: 1 },
  ipv6_hlimit: { id: 11, size: 1 },
  tp_src: { id: 12, size: 2 },
  tp_dst: { id: 13, size: 2 },
} as const;

export type SetFieldName = keyof typeof SET_FIELDS;

/**
 * One datapath action. `set` writes `field = (field & ~mask) | value` with the
 * bytes as they appear in the packet (network order); `mask` defaults to the
 * whole field (all ones; for `ipv6_label` its low 20 bits, as the format requires).
 */
export type DpAction =
  | { type: 'output'; port: number }
  | { type: 'drop' }
  | { type: 'userspace'; cookie: bigint }
  | { type: 'truncate'; maxLen: number }
  | { type: 'push_vlan'; tpid: 0x8100 | 0x88a8; tci: number }
  | { type: 'pop_vlan' }
  | { type: 'set'; field: SetFieldName; value: Uint8Array; mask?: Uint8Array }
  /** Tunnel metadata for a following output to a tunnel port: ID (VNI), outer IPv4 source and destination (host-order numbers, 0 unset). */
  | { type: 'set_tunnel'; id: number; src: number; dst: number };

const KIND = { output: 1, drop: 2, userspace: 3, truncate: 4, push_vlan: 5, pop_vlan: 6, set: 7, set_tunnel: 8 } as const;

const FIELD_BY_ID = new Map<number, SetFieldName>(
  (Object.keys(SET_FIELDS) as SetFieldName[]).map((name) => [SET_FIELDS[name].id, name]),
);

function bad(code: string, message: string): never {
  throw new ActionEncodingError(code, message);
}

function u32(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) bad('ACTION_BAD_VALUE', `${what} must be a 32-bit unsigned integer, got ${v}`);
  return v;
}

/** Encodes an action list; throws ActionEncodingError for values the format cannot carry. */
export function encodeActions(actions: readonly DpAction[]): Buffer {
  const parts: Buffer[] = [];
  for (const a of actions) {
    let payload: Buffer;
    switch (a.type) {
      case 'output':
        payload = Buffer.alloc(4);
        payload.writeUInt32BE(u32(a.port, 'output port'));
        break;
      case 'truncate':
        payload = Buffer.alloc(4);
        payload.writeUInt32BE(u32(a.maxLen, 'truncate length'));
        break;
      case 'userspace':
        if (a.cookie < 0n || a.cookie > 0xffffffffffffffffn) bad('ACTION_BAD_VALUE', `userspace cookie must fit 64 bits, got ${a.cookie}`);
        payload = Buffer.alloc(8);
        payload.writeBigUInt64BE(a.cookie);
        break;
      case 'push_vlan':
        if (a.tpid !== 0x8100 && a.tpid !== 0x88a8) bad('ACTION_BAD_TPID', `push_vlan TPID must be 0x8100 or 0x88a8, got ${a.tpid}`);
        if (!Number.isInteger(a.tci) || a.tci < 0 || a.tci > 0xffff) bad('ACTION_BAD_VALUE', `push_vlan TCI must be 16 bits, got ${a.tci}`);
        payload = Buffer.alloc(4);
        payload.writeUInt16BE(a.tpid, 0);
        payload.writeUInt16BE(a.tci, 2);
        break;
      case 'drop':
      case 'pop_vlan':
        payload = Buffer.alloc(0);
        break;
      case 'set_tunnel':
        payload = Buffer.alloc(12);
        payload.writeUInt32BE(u32(a.id, 'tunnel id'), 0);
        payload.writeUInt32BE(u32(a.src, 'tunnel source'), 4);
        payload.writeUInt32BE(u32(a.dst, 'tunnel destination'), 8);
        break;
      case 'set': {
        const f = SET_FIELDS[a.field];
        if (!f) bad('ACTION_UNKNOWN_FIELD', `set of unknown field '${String(a.field)}'`);
        const mask = a.mask ?? ('fullMask' in f ? f.fullMask : new Uint8Array(f.size).fill(0xff));
        if (a.value.length !== f.size || mask.length !== f.size) {
          bad('ACTION_BAD_LENGTH', `set of ${a.field} needs a ${f.size}-byte value and mask`);
        }
        if (a.value.some((v, i) => (v & ~mask[i]) !== 0)) bad('ACTION_BAD_VALUE', `set of ${a.field}: value has bits outside the mask`);
        payload = Buffer.concat([Buffer.of(f.id), a.value, mask]);
        break;
      }
      default:
        bad('ACTION_UNKNOWN_KIND', `unknown action type '${(a as { type: string }).type}'`);
    }
    parts.push(Buffer.of(KIND[a.type], payload.length), payload);
  }
  return Buffer.concat(parts);
}

/** Decodes an action list (as dumped by the datapath); throws ActionEncodingError if malformed. */
export function decodeActions(bytes: Uint8Array): DpAction[] {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const out: DpAction[] = [];
  let off = 0;
  while (off < b.length) {
    if (off + 2 > b.length || off + 2 + b[off + 1] > b.length) bad('ACTION_TRUNCATED', `action list truncated inside the action at byte ${off}`);
    const kind = b[off];
    const len = b[off + 1];
    const p = b.subarray(off + 2, off + 2 + len);
    const want = (n: number) => {
      if (len !== n) bad('ACTION_BAD_LENGTH', `action kind ${kind} at byte ${off} has a payload of ${len} bytes`);
    };
    switch (kind) {
      case KIND.output:
        want(4);
        out.push({ type: 'output', port: p.readUInt32BE(0) });
        break;
      case KIND.drop:
        want(0);
        out.push({ type: 'drop' });
        break;
      case KIND.userspace:
        want(8);
        out.push({ type: 'userspace', cookie: p.readBigUInt64BE(0) });
        break;
      case KIND.truncate:
        want(4);
        out.push({ type: 'truncate', maxLen: p.readUInt32BE(0) });
        break;
      case KIND.push_vlan: {
        want(4);
        const tpid = p.readUInt16BE(0);
        if (tpid !== 0x8100 && tpid !== 0x88a8) bad('ACTION_BAD_TPID', `push_vlan at byte ${off} has TPID ${tpid}`);
        out.push({ type: 'push_vlan', tpid, tci: p.readUInt16BE(2) });
        break;
      }
      case KIND.pop_vlan:
        want(0);
        out.push({ type: 'pop_vlan' });
        break;
      case KIND.set_tunnel:
        want(12);
        out.push({ type: 'set_tunnel', id: p.readUInt32BE(0), src: p.readUInt32BE(4), dst: p.readUInt32BE(8) });
        break;
      case KIND.set: {
        if (len < 1) bad('ACTION_BAD_LENGTH', `set action at byte ${off} is empty`);
        const field = FIELD_BY_ID.get(p[0]);
        if (!field) bad('ACTION_UNKNOWN_FIELD', `set action at byte ${off} names unknown field ${p[0]}`);
        const n = SET_FIELDS[field].size;
        want(1 + 2 * n);
        out.push({ type: 'set', field, value: Uint8Array.from(p.subarray(1, 1 + n)), mask: Uint8Array.from(p.subarray(1 + n)) });
        break;
      }
      default:
        bad('ACTION_UNKNOWN_KIND', `unknown action kind ${kind} at byte ${off}`);
    }
    off += 2 + len;
  }
  return out;
}
