/**
 * Actions and instructions on the wire, to and from ofproto's `Action` list:
 * OpenFlow 1.0's actions, OpenFlow 1.1+'s (1.3, 1.4, 1.5: OFPAT_SET_FIELD,
 * PUSH/POP_VLAN, DEC_NW_TTL, …) and instructions (apply-actions,
 * write-metadata, goto-table), and the Nicira extension actions (NXAST_*)
 * both share. Each form encodes to what OVS sends for it in that version
 * (1.0: `mod_dl_src` as OFPAT_SET_DL_SRC, `load` as NXAST_REG_LOAD,
 * `set_field` as NXAST_REG_LOAD2; 1.3: `mod_dl_src` and `set_field` as
 * OFPAT_SET_FIELD, `load` still NXAST_REG_LOAD), so decoding gives back the same form.
 */
import { type Action, type ControllerReason, type Field, type FieldRange, fieldOnes, IpProto, type Match, mustField, OFPP, Slot } from '@nvs/ofproto';
import { nxmByHeader, nxmForField, nxmHeader, OXM_IN_PORT, OXM_VLAN_PCP, OXM_VLAN_VID, oxmForField, port16, port32 } from './match.ts';
import { BadAction, BadInstruction, ErrType, OfError, type Reader, type Writer } from './wire.ts';

const NX_VENDOR = 0x00002320;
const OFPAT = { OUTPUT: 0, SET_VLAN_VID: 1, SET_VLAN_PCP: 2, STRIP_VLAN: 3, SET_DL_SRC: 4, SET_DL_DST: 5, SET_NW_SRC: 6, SET_NW_DST: 7, SET_NW_TOS: 8, SET_TP_SRC: 9, SET_TP_DST: 10, VENDOR: 0xffff };
const NXAST = { RESUBMIT: 1, SET_TUNNEL: 2, REG_MOVE: 6, SET_TUNNEL64: 9, REG_LOAD: 7, NOTE: 8, RESUBMIT_TABLE: 14, OUTPUT_REG: 15, DEC_TTL: 18, CONTROLLER: 20, DEC_TTL_CNT_IDS: 21, WRITE_METADATA: 22, REG_LOAD2: 33, CONJUNCTION: 34 };
const OFPAT11 = { OUTPUT: 0, PUSH_VLAN: 17, POP_VLAN: 18, SET_NW_TTL: 23, DEC_NW_TTL: 24, SET_FIELD: 25, COPY_FIELD: 28, EXPERIMENTER: 0xffff };
const OFPIT = { GOTO_TABLE: 1, WRITE_METADATA: 2, WRITE_ACTIONS: 3, APPLY_ACTIONS: 4, CLEAR_ACTIONS: 5, METER: 6 };
/** The OpenFlow 1.1+ instructions and (standard) actions nvs takes, for table features. */
export const SUPPORTED_INSTRUCTIONS: readonly number[] = [OFPIT.GOTO_TABLE, OFPIT.WRITE_METADATA, OFPIT.APPLY_ACTIONS];
export const SUPPORTED_ACTIONS: readonly number[] = [OFPAT11.OUTPUT, OFPAT11.PUSH_VLAN, OFPAT11.POP_VLAN, OFPAT11.SET_NW_TTL, OFPAT11.DEC_NW_TTL, OFPAT11.SET_FIELD];
const ETH_TYPE_VLAN = 0x8100;
const ETH_TYPE_VLAN_8021AD = 0x88a8;
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
function writeAction10(w: Writer, a: Action): void {
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

/** Whether the match pins a VLAN tag present (OVS then pushes none for `mod_vlan_vid`). */
function matchHasVlan(m: Match | undefined): boolean {
  return !!m && (m.mask[Slot.VLAN_TCI] & 0x1000) !== 0 && (m.value[Slot.VLAN_TCI] & 0x1000) !== 0;
}

function oxmRangeHeader(r: FieldRange): number {
  const n = oxmForField(r.field);
  if (!n) throw bad(BadAction.BAD_ARGUMENT, `field ${r.field.name} has no OXM header`);
  return nxmHeader(n, false);
}

/** OFPAT_SET_FIELD with one OXM TLV (the OXM header where the field has one), padded to 8. */
function writeOfpSetField(w: Writer, f: Field, value: bigint, mask: bigint): void {
  const n = oxmForField(f);
  if (!n) throw bad(BadAction.BAD_ARGUMENT, `set_field: ${f.name} has no OXM header`);
  const at = w.length;
  const masked = mask !== fieldOnes(n.field);
  w.u16(OFPAT11.SET_FIELD).u16(0).u32(nxmHeader(n, masked));
  if (n === OXM_IN_PORT) w.u32(port32(Number(value)));
  else w.uint(value, n.bytes);
  if (masked) w.uint(mask, n.bytes);
  end(w, at);
}

/** Writes one action as OpenFlow 1.1+ (`version` 4-6) + Nicira extensions. */
function writeAction11(w: Writer, a: Action, version: number, match: Match | undefined): void {
  switch (a.type) {
    case 'output':
      w.u16(OFPAT11.OUTPUT).u16(16).u32(port32(a.port)).u16(0).zeros(6);
      return;
    case 'controller':
      if (a.reason === 'action' && a.controllerId === 0) {
        w.u16(OFPAT11.OUTPUT).u16(16).u32(port32(OFPP.CONTROLLER)).u16(a.maxLen).zeros(6);
        return;
      }
      return writeAction10(w, a);
    case 'set_vlan_vid':
    case 'set_vlan_pcp':
      if (a.pushIfNeeded && !matchHasVlan(match)) w.u16(OFPAT11.PUSH_VLAN).u16(8).u16(ETH_TYPE_VLAN).zeros(2);
      if (a.type === 'set_vlan_vid') return writeOfpSetField(w, OXM_VLAN_VID.field, BigInt(a.vid | 0x1000), 0x1fffn);
      return writeOfpSetField(w, OXM_VLAN_PCP.field, BigInt(a.pcp), 7n);
    case 'push_vlan':
      w.u16(OFPAT11.PUSH_VLAN).u16(8).u16(a.ethertype).zeros(2);
      return;
    case 'pop_vlan':
      w.u16(OFPAT11.POP_VLAN).u16(8).zeros(4);
      return;
    case 'dec_ttl':
      if (a.controllerIds.length === 0) {
        w.u16(OFPAT11.DEC_NW_TTL).u16(8).zeros(4);
        return;
      }
      return writeAction10(w, a);
    case 'set_field': {
      if (a.form === 'mod' && a.field.name === 'nw_ttl') {
        w.u16(OFPAT11.SET_NW_TTL).u16(8).u8(Number(a.value)).zeros(3);
        return;
      }
      // OpenFlow 1.5 has only set_field; before it, a load or a partial write stays NXAST_REG_LOAD(2), as OVS sends it.
      const whole = a.mask === fieldOnes(a.field);
      if (version >= 6 || (a.form !== 'load' && whole && oxmForField(a.field))) return writeOfpSetField(w, a.field, a.value, a.mask);
      return writeAction10(w, a.form === 'mod' ? { ...a, form: 'set_field' } : a);
    }
    case 'move': {
      // OpenFlow 1.5 has its own copy-field action; before it, move stays NXAST_REG_MOVE.
      if (version < 6) return writeAction10(w, a);
      const at = w.length;
      w.u16(OFPAT11.COPY_FIELD).u16(0).u16(a.src.nBits).u16(a.src.ofs).u16(a.dst.ofs).zeros(2).u32(oxmRangeHeader(a.src)).u32(oxmRangeHeader(a.dst));
      return end(w, at);
    }
    case 'goto_table':
    case 'write_metadata':
      throw bad(BadAction.BAD_TYPE, `${a.type} is an instruction, not an action`);
    default:
      return writeAction10(w, a);
  }
}

/**
 * Writes an action list; returns its byte length. `version` 1 writes
 * OpenFlow 1.0 + NXAST (where goto_table and write_metadata are Nicira
 * actions too); 4-6 write OpenFlow 1.1+ actions (instructions go through `writeInstructions`).
 */
export function writeActions(w: Writer, actions: readonly Action[], version = 1, match?: Match): number {
  const start = w.length;
  for (const a of actions) {
    if (version === 1) writeAction10(w, a);
    else writeAction11(w, a, version, match);
  }
  return w.length - start;
}

/** Writes an action list as OpenFlow 1.1+ instructions: apply-actions, then write-metadata, then goto-table (none for drop). */
export function writeInstructions(w: Writer, actions: readonly Action[], version: number, match: Match): number {
  const start = w.length;
  const apply = actions.filter((a) => a.type !== 'goto_table' && a.type !== 'write_metadata');
  if (apply.length) {
    const at = w.length;
    w.u16(OFPIT.APPLY_ACTIONS).u16(0).zeros(4);
    writeActions(w, apply, version, match);
    w.setU16(at + 2, w.length - at);
  }
  for (const a of actions) {
    if (a.type === 'write_metadata') w.u16(OFPIT.WRITE_METADATA).u16(24).zeros(4).u64(a.value).u64(a.mask);
  }
  for (const a of actions) {
    if (a.type === 'goto_table') w.u16(OFPIT.GOTO_TABLE).u16(8).u8(a.table).zeros(3);
  }
  return w.length - start;
}

function badInst(code: number, msg: string): OfError {
  return new OfError(ErrType.BAD_INSTRUCTION, code, msg);
}

/** Reads `len` bytes of OpenFlow 1.1+ instructions into one action list (the model keeps instructions in it). */
export function readInstructions(r: Reader, len: number, match: Match): Action[] {
  const body = r.sub(len);
  const apply: Action[] = [];
  let metadata: Action | undefined;
  let gotoTable: Action | undefined;
  const seen = new Set<number>();
  while (body.left > 0) {
    if (body.left < 8) throw badInst(BadInstruction.BAD_LEN, 'instruction truncated');
    const type = body.u16();
    const ilen = body.u16();
    if (ilen < 8 || ilen % 8 || ilen - 4 > body.left) throw badInst(BadInstruction.BAD_LEN, `instruction length ${ilen}`);
    const i = body.sub(ilen - 4);
    if (seen.has(type)) throw badInst(BadInstruction.UNSUP_INST, `instruction ${type} appears twice`);
    seen.add(type);
    switch (type) {
      case OFPIT.APPLY_ACTIONS:
        i.skip(4);
        apply.push(...readActions(i, i.left, match, 4));
        break;
      case OFPIT.WRITE_METADATA:
        if (ilen !== 24) throw badInst(BadInstruction.BAD_LEN, `write_metadata length ${ilen}`);
        i.skip(4);
        metadata = { type: 'write_metadata', value: i.u64(), mask: i.u64() };
        break;
      case OFPIT.GOTO_TABLE: {
        const table = i.u8();
        if (table > 254) throw badInst(BadInstruction.BAD_TABLE_ID, `goto_table:${table}`);
        gotoTable = { type: 'goto_table', table };
        break;
      }
      case OFPIT.WRITE_ACTIONS:
      case OFPIT.CLEAR_ACTIONS:
      case OFPIT.METER:
        throw badInst(BadInstruction.UNSUP_INST, `instruction ${type} is not supported by nvs yet`);
      default:
        throw badInst(BadInstruction.UNKNOWN_INST, `instruction type ${type}`);
    }
  }
  return [...apply, ...(metadata ? [metadata] : []), ...(gotoTable ? [gotoTable] : [])];
}

/** Reads `len` bytes of OpenFlow 1.0 (`version` 1) or 1.1+ actions and NXAST ones; the match decides mod_tp_* fields. */
export function readActions(r: Reader, len: number, match: Match, version = 1): Action[] {
  const body = r.sub(len);
  const out: Action[] = [];
  while (body.left > 0) {
    if (body.left < 8) throw bad(BadAction.BAD_LEN, 'action truncated');
    const type = body.u16();
    const alen = body.u16();
    if (alen < 8 || alen % 8 || alen - 4 > body.left) throw bad(BadAction.BAD_LEN, `action length ${alen}`);
    const a = body.sub(alen - 4);
    out.push(type === OFPAT.VENDOR ? readNx(a, alen) : version === 1 ? readOf10(a, type, alen, match) : readOf11(a, type, alen));
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

function readOf11(a: Reader, type: number, alen: number): Action {
  const fixed = type === OFPAT11.OUTPUT || type === OFPAT11.COPY_FIELD ? 16 : 8;
  if (type !== OFPAT11.SET_FIELD && type !== OFPAT11.COPY_FIELD && alen !== fixed) throw bad(BadAction.BAD_LEN, `action ${type}: length ${alen}`);
  switch (type) {
    case OFPAT11.OUTPUT: {
      const raw = a.u32();
      const maxLen = a.u16();
      const port = port16(raw);
      if (port === OFPP.CONTROLLER) return { type: 'controller', maxLen, reason: 'action', controllerId: 0 };
      if (port === null || port === 0 || port === OFPP.NONE) throw bad(BadAction.BAD_OUT_PORT, `output to port ${raw}`);
      return { type: 'output', port };
    }
    case OFPAT11.PUSH_VLAN: {
      const ethertype = a.u16();
      if (ethertype !== ETH_TYPE_VLAN && ethertype !== ETH_TYPE_VLAN_8021AD) throw bad(BadAction.BAD_ARGUMENT, `push_vlan:0x${ethertype.toString(16)}`);
      return { type: 'push_vlan', ethertype };
    }
    case OFPAT11.POP_VLAN:
      return { type: 'pop_vlan' };
    case OFPAT11.SET_NW_TTL:
      return mod('nw_ttl', BigInt(a.u8()));
    case OFPAT11.DEC_NW_TTL:
      return { type: 'dec_ttl', controllerIds: [] };
    case OFPAT11.COPY_FIELD: {
      if (alen < 24) throw bad(BadAction.BAD_LEN, `copy_field length ${alen}`);
      const nBits = a.u16();
      const srcOfs = a.u16();
      const dstOfs = a.u16();
      a.skip(2);
      const mv: Action = { type: 'move', src: readRange(a.u32(), srcOfs, nBits), dst: readRange(a.u32(), dstOfs, nBits) };
      a.skip(a.left);
      return mv;
    }
    case OFPAT11.SET_FIELD: {
      const sf = readOxmWrite(a, 'set_field');
      a.skip(a.left);
      return sf;
    }
    default:
      throw bad(BadAction.BAD_TYPE, `action type ${type}`);
  }
}

/** One OXM TLV written into a field (OFPAT_SET_FIELD, NXAST_REG_LOAD2), as the model's action for it. */
function readOxmWrite(a: Reader, form: 'set_field'): Action {
  const header = a.u32();
  const n = nxmByHeader(header);
  const masked = (header & 0x100) !== 0;
  if (!n || (header & 0xff) !== (masked ? 2 : 1) * n.bytes) throw bad(BadAction.BAD_ARGUMENT, `set_field: field 0x${header.toString(16)}`);
  let value = a.uint(n.bytes);
  const mask = masked ? a.uint(n.bytes) : fieldOnes(n.field);
  if (n === OXM_IN_PORT) {
    const p = masked ? null : port16(Number(value));
    if (p === null) throw bad(BadAction.BAD_ARGUMENT, `set_field: in_port ${value}`);
    value = BigInt(p);
  }
  if ((value | mask) & ~fieldOnes(n.field) || value & ~mask) throw bad(BadAction.BAD_ARGUMENT, `set_field: ${n.name} value out of range`);
  if (n === OXM_VLAN_VID && mask === 0x1fffn && value & 0x1000n) return { type: 'set_vlan_vid', vid: Number(value & 0xfffn), pushIfNeeded: false };
  if (n === OXM_VLAN_PCP && !masked) return { type: 'set_vlan_pcp', pcp: Number(value), pushIfNeeded: false };
  if (n === OXM_VLAN_VID || n === OXM_VLAN_PCP || !n.field.writable) throw bad(BadAction.BAD_ARGUMENT, `set_field: ${n.name} not writable so`);
  return { type: 'set_field', field: n.field, value, mask, form };
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
    case NXAST.REG_LOAD2:
      return readOxmWrite(a, 'set_field');
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

