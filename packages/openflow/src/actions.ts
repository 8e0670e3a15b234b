/**
 * OpenFlow 1.0 actions and the Nicira extension actions (NXAST_*), to and
 * from ofproto's `Action` list: each form encodes to what OVS sends for it
 * (`mod_dl_src` as OFPAT_SET_DL_SRC, `load` as NXAST_REG_LOAD, `set_field`
 * as NXAST_REG_LOAD2), so decoding gives back the same form.
 */
import { type Action, type ControllerReason, type Field, type FieldRange, fieldOnes, IpProto, type Match, mustField, OFPP, Slot } from '@nvs/ofproto';
import { nxmByHeader, nxmForField, nxmHeader, OXM_VLAN_PCP, OXM_VLAN_VID } from './match.ts';
import { BadAction, ErrType, OfError, type Reader, type Writer } from './wire.ts';

const NX_VENDOR = 0x00002320;
const OFPAT = { OUTPUT: 0, SET_VLAN_VID: 1, SET_VLAN_PCP: 2, STRIP_VLAN: 3, SET_DL_SRC: 4, SET_DL_DST: 5, SET_NW_SRC: 6, SET_NW_DST: 7, SET_NW_TOS: 8, SET_TP_SRC: 9, SET_TP_DST: 10, VENDOR: 0xffff };
const NXAST = { RESUBMIT: 1, SET_TUNNEL: 2, REG_MOVE: 6, SET_TUNNEL64: 9, REG_LOAD: 7, NOTE: 8, RESUBMIT_TABLE: 14, OUTPUT_REG: 15, DEC_TTL: 18, CONTROLLER: 20, DEC_TTL_CNT_IDS: 21, WRITE_METADATA: 22, REG_LOAD2: 33, CONJUNCTION: 34 };
const REASONS: readonly ControllerReason[] = ['no_match', 'action', 'invalid_ttl', 'action_set', 'group', 'packet_out'];
const OF10_MOD = new Map<string, number>([
  ['dl_src', OFPAT.SET_DL_SRC],
  ['dl_dst', OFPAT.SET_DL_DST],
  ['nw_src', OFPAT.SET_NW_SRC],
  ['nw_dst', OFPAT.SET_NW_DST],
  ['ip_dscp', OFPAT.SET_NW_TOS],
  ['tcp_src', OFPAT.SET_TP_SRC],
  ['udp_src', OFPAT.SET_TP_SRC],
  ['sctp_src', OFPAT.SET_TP_SRC],
  ['tcp_dst', OFPAT.SET_TP_DST],
  ['udp_dst', OFPAT.SET_TP_DST],
  ['sctp_dst', OFPAT.SET_TP_DST],
]);

function bad(code: number, msg: string): OfError {
  return new OfError(ErrType.BAD_ACTION, code, msg);
}

function startNx(w: Writer, subtype: number): number {
  const at = w.length;
  w.u16(OFPAT.VENDOR).u16(0).u32(NX_VENDOR).u16(subtype);
  return at;
}

/** Pads an action to 8 bytes and writes its length. */
function end(w: Writer, at: number): void {
  w.pad(8, at);
  w.setU16(at + 2, w.length - at);
}

function rangeHeader(r: FieldRange): number {
  const n = nxmForField(r.field);
  if (!n) throw bad(BadAction.BAD_ARGUMENT, `field ${r.field.name} has no NXM header`);
  return nxmHeader(n, false);
}

function readRange(header: number, ofs: number, nBits: number): FieldRange {
  const n = nxmByHeader(header);
  if (!n || header & 0x100) throw bad(BadAction.BAD_ARGUMENT, `unknown field 0x${header.toString(16)}`);
  if (nBits < 1 || ofs + nBits > n.field.bits) throw bad(BadAction.BAD_ARGUMENT, `${n.name}[${ofs}..${ofs + nBits - 1}] is out of range`);
  return { field: n.field, ofs, nBits };
}

/** The contiguous bit range a load's mask covers, or null when it is not one range. */
function maskRange(mask: bigint): { ofs: number; nBits: number } | null {
  if (mask === 0n) return null;
  let ofs = 0;
  while (!((mask >> BigInt(ofs)) & 1n)) ofs++;
  const run = mask >> BigInt(ofs);
  if (run & (run + 1n)) return null;
  return { ofs, nBits: run.toString(2).length };
}

/** Writes one action as OpenFlow 1.0 + Nicira extensions. */
function writeAction(w: Writer, a: Action): void {
  let at: number;
  switch (a.type) {
    case 'output':
      w.u16(OFPAT.OUTPUT).u16(8).u16(a.port).u16(0);
      return;
    case 'controller':
      if (a.reason === 'action' && a.controllerId === 0) {
        w.u16(OFPAT.OUTPUT).u16(8).u16(OFPP.CONTROLLER).u16(a.maxLen);
        return;
      }
      at = startNx(w, NXAST.CONTROLLER);
      w.u16(a.maxLen).u16(a.controllerId).u8(REASONS.indexOf(a.reason)).u8(0);
      return end(w, at);
    case 'output_reg':
      at = startNx(w, NXAST.OUTPUT_REG);
      w.u16((a.src.ofs << 6) | (a.src.nBits - 1)).u32(rangeHeader(a.src)).u16(a.maxLen).zeros(6);
      return end(w, at);
    case 'set_vlan_vid':
      if (!a.pushIfNeeded) return writeSetField(w, OXM_VLAN_VID.field, BigInt(a.vid | 0x1000), 0x1fffn);
      w.u16(OFPAT.SET_VLAN_VID).u16(8).u16(a.vid).u16(0);
      return;
    case 'set_vlan_pcp':
      if (!a.pushIfNeeded) return writeSetField(w, OXM_VLAN_PCP.field, BigInt(a.pcp), 7n);
      w.u16(OFPAT.SET_VLAN_PCP).u16(8).u8(a.pcp).zeros(3);
      return;
    case 'pop_vlan':
      w.u16(OFPAT.STRIP_VLAN).u16(8).zeros(4);
      return;
    case 'set_field': {
      if (a.form === 'set_tunnel') {
        at = startNx(w, NXAST.SET_TUNNEL);
        w.zeros(2).u32(Number(a.value));
        return end(w, at);
      }
      if (a.form === 'set_tunnel64') {
        at = startNx(w, NXAST.SET_TUNNEL64);
        w.zeros(6).u64(a.value);
        return end(w, at);
      }
      const ofpat = a.form === 'mod' ? OF10_MOD.get(a.field.name) : undefined;
      if (ofpat !== undefined) {
        const len = a.field.bits === 48 ? 16 : 8;
        w.u16(ofpat).u16(len);
        if (a.field.bits === 48) w.uint(a.value, 6).zeros(6);
        else if (a.field.bits === 32) w.u32(Number(a.value));
        else if (ofpat === OFPAT.SET_NW_TOS) w.u8(Number(a.value) << 2).zeros(3);
        else w.u16(Number(a.value)).zeros(2);
        return;
      }
      const range = a.form === 'load' ? maskRange(a.mask) : null;
      if (range && range.nBits <= 64) {
        at = startNx(w, NXAST.REG_LOAD);
        w.u16((range.ofs << 6) | (range.nBits - 1)).u32(rangeHeader({ field: a.field, ...range })).u64(a.value >> BigInt(range.ofs));
        return end(w, at);
      }
      return writeSetField(w, a.field, a.value, a.mask);
    }
    case 'dec_ttl':
      if (a.controllerIds.length === 0) {
        at = startNx(w, NXAST.DEC_TTL);
        return end(w, at);
      }
      at = startNx(w, NXAST.DEC_TTL_CNT_IDS);
      w.u16(a.controllerIds.length).zeros(4);
      for (const id of a.controllerIds) w.u16(id);
      return end(w, at);
    case 'move':
      at = startNx(w, NXAST.REG_MOVE);
      w.u16(a.src.nBits).u16(a.src.ofs).u16(a.dst.ofs).u32(rangeHeader(a.src)).u32(rangeHeader(a.dst));
      return end(w, at);
    case 'resubmit':
      at = startNx(w, a.table === null ? NXAST.RESUBMIT : NXAST.RESUBMIT_TABLE);
      w.u16(a.port ?? OFPP.IN_PORT).u8(a.table ?? 0).zeros(3);
      return end(w, at);
    case 'write_metadata':
      at = startNx(w, NXAST.WRITE_METADATA);
      w.zeros(6).u64(a.value).u64(a.mask);
      return end(w, at);
    case 'note':
      at = startNx(w, NXAST.NOTE);
      w.bytes(a.data);
      return end(w, at);
    case 'conjunction':
      at = startNx(w, NXAST.CONJUNCTION);
      w.u8(a.clause - 1).u8(a.nClauses).u32(a.id);
      return end(w, at);
    default:
      throw bad(BadAction.BAD_TYPE, `${a.type} is not available over OpenFlow 1.0 in nvs yet`);
  }
}

/** set_field as NXAST_REG_LOAD2: one OXM TLV (masked when the mask is partial). */
function writeSetField(w: Writer, f: Field, value: bigint, mask: bigint): void {
  const n = nxmForField(f);
  if (!n) throw bad(BadAction.BAD_ARGUMENT, `set_field: ${f.name} has no OXM header`);
  const masked = mask !== fieldOnes(n.field);
  const at = startNx(w, NXAST.REG_LOAD2);
  w.u32(nxmHeader(n, masked)).uint(value, n.bytes);
  if (masked) w.uint(mask, n.bytes);
  end(w, at);
}

/** Writes an action list (OpenFlow 1.0 + NXAST); returns its byte length. */
export function writeActions(w: Writer, actions: readonly Action[]): number {
  const start = w.length;
  for (const a of actions) writeAction(w, a);
  return w.length - start;
}

/** Reads `len` bytes of OpenFlow 1.0 + NXAST actions; the match decides mod_tp_* fields. */
export function readActions(r: Reader, len: number, match: Match): Action[] {
  const body = r.sub(len);
  const out: Action[] = [];
  while (body.left > 0) {
    if (body.left < 8) throw bad(BadAction.BAD_LEN, 'action truncated');
    const type = body.u16();
    const alen = body.u16();
    if (alen < 8 || alen % 8 || alen - 4 > body.left) throw bad(BadAction.BAD_LEN, `action length ${alen}`);
    const a = body.sub(alen - 4);
    out.push(type === OFPAT.VENDOR ? readNx(a, alen) : readOf10(a, type, alen, match));
  }
  return out;
}

function mod(name: string, value: bigint): Action {
  const f = mustField(name);
  return { type: 'set_field', field: f, value, mask: fieldOnes(f), form: 'mod' };
}

function readOf10(a: Reader, type: number, alen: number, match: Match): Action {
  const want = type === OFPAT.SET_DL_SRC || type === OFPAT.SET_DL_DST ? 16 : 8;
  if (type <= OFPAT.SET_TP_DST && alen !== want) throw bad(BadAction.BAD_LEN, `action ${type}: length ${alen}`);
  const l4 = () => {
    const proto = match.mask[Slot.NW_PROTO] ? match.value[Slot.NW_PROTO] : -1;
    return proto === IpProto.UDP ? 'udp' : proto === IpProto.SCTP ? 'sctp' : 'tcp';
  };
  switch (type) {
    case OFPAT.OUTPUT: {
      const port = a.u16();
      const maxLen = a.u16();
      if (port === OFPP.CONTROLLER) return { type: 'controller', maxLen, reason: 'action', controllerId: 0 };
      if (port === 0 || (port >= OFPP.MAX && port < OFPP.IN_PORT) || port === OFPP.NONE) throw bad(BadAction.BAD_OUT_PORT, `output to port ${port}`);
      return { type: 'output', port };
    }
    case OFPAT.SET_VLAN_VID: {
      const vid = a.u16();
      if (vid > 0xfff) throw bad(BadAction.BAD_ARGUMENT, `VLAN ID ${vid}`);
      return { type: 'set_vlan_vid', vid, pushIfNeeded: true };
    }
    case OFPAT.SET_VLAN_PCP: {
      const pcp = a.u8();
      if (pcp > 7) throw bad(BadAction.BAD_ARGUMENT, `VLAN PCP ${pcp}`);
      return { type: 'set_vlan_pcp', pcp, pushIfNeeded: true };
    }
    case OFPAT.STRIP_VLAN:
      return { type: 'pop_vlan' };
    case OFPAT.SET_DL_SRC:
      return mod('dl_src', a.uint(6));
    case OFPAT.SET_DL_DST:
      return mod('dl_dst', a.uint(6));
    case OFPAT.SET_NW_SRC:
      return mod('nw_src', BigInt(a.u32()));
    case OFPAT.SET_NW_DST:
      return mod('nw_dst', BigInt(a.u32()));
    case OFPAT.SET_NW_TOS: {
      const tos = a.u8();
      if (tos & 3) throw bad(BadAction.BAD_ARGUMENT, `ToS 0x${tos.toString(16)} sets ECN bits`);
      return mod('ip_dscp', BigInt(tos >> 2));
    }
    case OFPAT.SET_TP_SRC:
      return mod(`${l4()}_src`, BigInt(a.u16()));
    case OFPAT.SET_TP_DST:
      return mod(`${l4()}_dst`, BigInt(a.u16()));
    default:
      throw bad(BadAction.BAD_TYPE, `action type ${type}`);
  }
}

function readNx(a: Reader, alen: number): Action {
  if (alen < 16) throw bad(BadAction.BAD_LEN, `vendor action length ${alen}`);
  const vendor = a.u32();
  if (vendor !== NX_VENDOR) throw bad(BadAction.BAD_VENDOR, `vendor 0x${vendor.toString(16)}`);
  const subtype = a.u16();
  switch (subtype) {
    case NXAST.RESUBMIT:
    case NXAST.RESUBMIT_TABLE: {
      const port = a.u16();
      const table = a.u8();
      return { type: 'resubmit', port: port === OFPP.IN_PORT ? null : port, table: subtype === NXAST.RESUBMIT || table === 255 ? null : table };
    }
    case NXAST.REG_MOVE: {
      const nBits = a.u16();
      const srcOfs = a.u16();
      const dstOfs = a.u16();
      return { type: 'move', src: readRange(a.u32(), srcOfs, nBits), dst: readRange(a.u32(), dstOfs, nBits) };
    }
    case NXAST.SET_TUNNEL:
    case NXAST.SET_TUNNEL64: {
      a.bytes(subtype === NXAST.SET_TUNNEL ? 2 : 6);
      const value = subtype === NXAST.SET_TUNNEL ? BigInt(a.u32()) : a.u64();
      return { type: 'set_field', field: mustField('tun_id'), value, mask: (1n << 64n) - 1n, form: subtype === NXAST.SET_TUNNEL ? 'set_tunnel' : 'set_tunnel64' };
    }
    case NXAST.REG_LOAD: {
      const ofsNbits = a.u16();
      const dst = readRange(a.u32(), ofsNbits >> 6, (ofsNbits & 63) + 1);
      const value = a.u64();
      if (value >> BigInt(dst.nBits)) throw bad(BadAction.BAD_ARGUMENT, `load: value 0x${value.toString(16)} wider than ${dst.nBits} bits`);
      const mask = ((1n << BigInt(dst.nBits)) - 1n) << BigInt(dst.ofs);
      return { type: 'set_field', field: dst.field, value: value << BigInt(dst.ofs), mask, form: 'load' };
    }
    case NXAST.REG_LOAD2: {
      const header = a.u32();
      const n = nxmByHeader(header);
      const masked = (header & 0x100) !== 0;
      if (!n || (header & 0xff) !== (masked ? 2 : 1) * n.bytes) throw bad(BadAction.BAD_ARGUMENT, `set_field: field 0x${header.toString(16)}`);
      const value = a.uint(n.bytes);
      const mask = masked ? a.uint(n.bytes) : fieldOnes(n.field);
      if ((value | mask) & ~fieldOnes(n.field) || value & ~mask) throw bad(BadAction.BAD_ARGUMENT, `set_field: ${n.name} value out of range`);
      if (n === OXM_VLAN_VID && mask === 0x1fffn && value & 0x1000n) return { type: 'set_vlan_vid', vid: Number(value & 0xfffn), pushIfNeeded: false };
      if (n === OXM_VLAN_PCP && !masked) return { type: 'set_vlan_pcp', pcp: Number(value), pushIfNeeded: false };
      if (n === OXM_VLAN_VID || n === OXM_VLAN_PCP || !n.field.writable) throw bad(BadAction.BAD_ARGUMENT, `set_field: ${n.name} not writable so`);
      return { type: 'set_field', field: n.field, value, mask, form: 'set_field' };
    }
    case NXAST.NOTE:
      return { type: 'note', data: a.bytes(a.left) };
    case NXAST.OUTPUT_REG: {
      const ofsNbits = a.u16();
      const src = readRange(a.u32(), ofsNbits >> 6, (ofsNbits & 63) + 1);
      return { type: 'output_reg', src, maxLen: a.u16() };
    }
    case NXAST.DEC_TTL:
      return { type: 'dec_ttl', controllerIds: [] };
    case NXAST.DEC_TTL_CNT_IDS: {
      const n = a.u16();
      a.skip(4);
      if (n === 0) throw bad(BadAction.BAD_ARGUMENT, 'dec_ttl with no controller ids');
      return { type: 'dec_ttl', controllerIds: Array.from({ length: n }, () => a.u16()) };
    }
    case NXAST.CONTROLLER: {
      const maxLen = a.u16();
      const controllerId = a.u16();
      const reason = REASONS[a.u8()];
      if (!reason) throw bad(BadAction.BAD_ARGUMENT, 'controller: unknown reason');
      return { type: 'controller', maxLen, controllerId, reason };
    }
    case NXAST.WRITE_METADATA: {
      a.skip(6);
      return { type: 'write_metadata', value: a.u64(), mask: a.u64() };
    }
    case NXAST.CONJUNCTION: {
      const clause = a.u8() + 1;
      const nClauses = a.u8();
      const id = a.u32();
      if (nClauses < 2 || nClauses > 64 || clause > nClauses) throw bad(BadAction.BAD_ARGUMENT, `conjunction(${id},${clause}/${nClauses})`);
      return { type: 'conjunction', id, clause, nClauses };
    }
    default:
      throw bad(BadAction.BAD_VENDOR_TYPE, `Nicira action subtype ${subtype}`);
  }
}

