/**
 * OpenFlow messages as typed values, and their codec. This slice speaks
 * OpenFlow 1.0 with the Nicira extensions `ovs-ofctl` uses (NXM flow
 * format, NXT_FLOW_MOD, NXT_FLOW_MOD_TABLE_ID, NXST_FLOW/AGGREGATE);
 * HELLO carries a version bitmap so a later version can be negotiated.
 *
 * `decode` throws an `OfError` for anything it refuses (truncation, lying
 * lengths, unknown types), never another exception; `encode(decode(b))`
 * decodes to the same value.
 */
import { type Action, type FlowMod, type FlowModCommand, type Match } from '@nvs/ofproto';
import { readActions, writeActions } from './actions.ts';
import { OFP10_MATCH_LEN, readNxm, readOf10Match, writeNxm } from './match.ts';
import { BadRequest, ErrType, OfError, Reader, Writer } from './wire.ts';

export const OFP10_VERSION = 1;
export const OFP_HEADER_LEN = 8;
const NX_VENDOR = 0x00002320;
const OFPT = { HELLO: 0, ERROR: 1, ECHO_REQUEST: 2, ECHO_REPLY: 3, VENDOR: 4, FEATURES_REQUEST: 5, FEATURES_REPLY: 6, GET_CONFIG_REQUEST: 7, GET_CONFIG_REPLY: 8, SET_CONFIG: 9, FLOW_MOD: 14, STATS_REQUEST: 16, STATS_REPLY: 17, BARRIER_REQUEST: 18, BARRIER_REPLY: 19 };
const NXT = { SET_FLOW_FORMAT: 12, FLOW_MOD: 13, FLOW_MOD_TABLE_ID: 15 };
const OFPST = { DESC: 0, TABLE: 3, PORT: 4, VENDOR: 0xffff };
const NXST = { FLOW: 0, AGGREGATE: 1 };
const COMMANDS: readonly FlowModCommand[] = ['add', 'modify', 'modify_strict', 'delete', 'delete_strict'];
const FLAG = { SEND_FLOW_REM: 1, CHECK_OVERLAP: 2, RESET_COUNTS: 4, NO_PKT_COUNTS: 8, NO_BYT_COUNTS: 16 };
const OFPP_NONE = 0xffff;
/** A port counter the switch does not keep. */
const UNSUPPORTED = 0xffff_ffff_ffff_ffffn;

export interface PhyPort {
  readonly portNo: number;
  readonly hwAddr: bigint;
  readonly name: string;
  readonly config: number;
  readonly state: number;
}
export interface PortStats {
  readonly portNo: number;
  readonly rxPackets: bigint;
  readonly txPackets: bigint;
  readonly rxBytes: bigint;
  readonly txBytes: bigint;
  readonly rxDropped: bigint;
  readonly txDropped: bigint;
}
export interface TableStat {
  readonly tableId: number;
  readonly name: string;
  readonly active: number;
  readonly lookups: bigint;
  readonly matched: bigint;
}
/** One NXST_FLOW reply entry: a rule as the wire shows it. */
export interface FlowStat {
  readonly table: number;
  readonly durationSec: number;
  readonly durationNsec: number;
  readonly idleTimeout: number;
  readonly hardTimeout: number;
  readonly idleAge: number;
  readonly hardAge: number;
  readonly cookie: bigint;
  readonly packets: bigint;
  readonly bytes: bigint;
  readonly match: Match;
  readonly actions: readonly Action[];
}
/** A flow dump's selection (NXST_FLOW and NXST_AGGREGATE requests). */
export interface FlowSelect {
  readonly table: number | null;
  readonly outPort: number | null;
  readonly match: Match;
}

export type OfBody =
  | { type: 'hello'; versions: number[] }
  | { type: 'error'; errType: number; code: number; data: Uint8Array }
  | { type: 'echo_request' | 'echo_reply'; data: Uint8Array }
  | { type: 'features_request' | 'get_config_request' | 'barrier_request' | 'barrier_reply' }
  | { type: 'features_reply'; datapathId: bigint; nBuffers: number; nTables: number; capabilities: number; actions: number; ports: PhyPort[] }
  | { type: 'get_config_reply' | 'set_config'; flags: number; missSendLen: number }
  | { type: 'flow_mod'; format: 'of10' | 'nxm'; flowMod: FlowMod; bufferId: number }
  | { type: 'set_flow_format'; format: 'of10' | 'nxm' }
  | { type: 'flow_mod_table_id'; enable: boolean }
  | { type: 'desc_request' | 'table_stats_request' }
  | { type: 'desc_reply'; mfr: string; hw: string; sw: string; serial: string; dp: string }
  | { type: 'table_stats_reply'; tables: TableStat[] }
  | { type: 'port_stats_request'; portNo: number }
  | { type: 'port_stats_reply'; ports: PortStats[] }
  | ({ type: 'flow_stats_request' | 'aggregate_request' } & FlowSelect)
  | { type: 'flow_stats_reply'; flows: FlowStat[]; more: boolean }
  | { type: 'aggregate_reply'; packets: bigint; bytes: bigint; flows: number };

/** One message: version and transaction id from the header, and a body. */
export type OfMessage = OfBody & { version: number; xid: number };

/** A fixed-size, NUL-padded name, byte for byte (latin1, so any bytes read write back the same). */
function str(r: Reader, n: number): string {
  const b = r.bytes(n);
  const z = b.indexOf(0);
  return Buffer.from(z < 0 ? b : b.subarray(0, z)).toString('latin1');
}
function putStr(w: Writer, s: string, n: number): void {
  const b = Buffer.from(s, 'latin1').subarray(0, n);
  w.bytes(b).zeros(n - b.length);
}

/** The length field of a header at the start of `buf`, or null when fewer than 8 bytes are there. */
export function frameLength(buf: Uint8Array): number | null {
  return buf.length < OFP_HEADER_LEN ? null : (buf[2] << 8) | buf[3];
}

/** Decodes one whole message (exactly its header's length). */
export function decode(buf: Uint8Array): OfMessage {
  const r = new Reader(buf);
  const version = r.u8();
  const type = r.u8();
  const length = r.u16();
  const xid = r.u32();
  if (length !== buf.length || length < OFP_HEADER_LEN) throw new OfError(ErrType.BAD_REQUEST, BadRequest.BAD_LEN, `length ${length} of a ${buf.length}-byte message`);
  if (type === OFPT.HELLO) return { version, xid, ...readHello(r, version) };
  if (type === OFPT.ERROR) return { version, xid, type: 'error', errType: r.u16(), code: r.u16(), data: r.bytes(r.left) };
  if (type === OFPT.ECHO_REQUEST || type === OFPT.ECHO_REPLY) return { version, xid, type: type === OFPT.ECHO_REQUEST ? 'echo_request' : 'echo_reply', data: r.bytes(r.left) };
  if (version !== OFP10_VERSION) throw new OfError(ErrType.BAD_REQUEST, BadRequest.BAD_VERSION, `OpenFlow version 0x${version.toString(16)} is not supported`);
  const body = decodeOf10(r, type);
  if (r.left !== 0) throw new OfError(ErrType.BAD_REQUEST, BadRequest.BAD_LEN, `${r.left} bytes after the message body`);
  return { version, xid, ...body };
}

function readHello(r: Reader, version: number): OfBody {
  const versions = new Set<number>();
  while (r.left >= 4) {
    const et = r.u16();
    const elen = r.u16();
    if (elen < 4 || elen - 4 > r.left) throw new OfError(ErrType.BAD_REQUEST, BadRequest.BAD_LEN, `hello element length ${elen}`);
    const e = r.sub(elen - 4);
    if (et === 1) for (let word = 0; e.left >= 4; word++) {
      const bits = e.u32();
      for (let b = 0; b < 32; b++) if (bits & (1 << b)) versions.add(word * 32 + b);
    }
    r.skip(Math.min(r.left, (8 - (elen % 8)) % 8));
  }
  r.skip(r.left);
  if (versions.size === 0) for (let v = 1; v <= version; v++) versions.add(v);
  return { type: 'hello', versions: [...versions].sort((a, b) => a - b) };
}

function flowModFlags(flags: number): FlowMod['flags'] {
  return {
    sendFlowRem: !!(flags & FLAG.SEND_FLOW_REM),
    checkOverlap: !!(flags & FLAG.CHECK_OVERLAP),
    resetCounts: !!(flags & FLAG.RESET_COUNTS),
    noPacketCounts: !!(flags & FLAG.NO_PKT_COUNTS),
    noByteCounts: !!(flags & FLAG.NO_BYT_COUNTS),
  };
}

function decodeOf10(r: Reader, type: number): OfBody {
  switch (type) {
    case OFPT.FEATURES_REQUEST:
      return { type: 'features_request' };
    case OFPT.GET_CONFIG_REQUEST:
      return { type: 'get_config_request' };
    case OFPT.BARRIER_REQUEST:
      return { type: 'barrier_request' };
    case OFPT.BARRIER_REPLY:
      return { type: 'barrier_reply' };
    case OFPT.GET_CONFIG_REPLY:
    case OFPT.SET_CONFIG:
      return { type: type === OFPT.SET_CONFIG ? 'set_config' : 'get_config_reply', flags: r.u16(), missSendLen: r.u16() };
    case OFPT.FEATURES_REPLY: {
      const datapathId = r.u64();
      const nBuffers = r.u32();
      const nTables = r.u8();
      r.skip(3);
      const capabilities = r.u32();
      const actions = r.u32();
      const ports: PhyPort[] = [];
      while (r.left > 0) {
        const portNo = r.u16();
        const hwAddr = r.uint(6);
        const name = str(r, 16);
        const config = r.u32();
        const state = r.u32();
        r.skip(16);
        ports.push({ portNo, hwAddr, name, config, state });
      }
      return { type: 'features_reply', datapathId, nBuffers, nTables, capabilities, actions, ports };
    }
    case OFPT.FLOW_MOD: {
      const m = r.sub(OFP10_MATCH_LEN);
      const cookie = r.u64();
      const command = r.u16();
      const rest = flowModTail(r, cookie, command);
      const match = readOf10Match(m, rest.priority);
      return finishFlowMod(r, 'of10', rest, match);
    }
    case OFPT.VENDOR:
      return decodeNxt(r);
    case OFPT.STATS_REQUEST:
    case OFPT.STATS_REPLY:
      return decodeStats(r, type === OFPT.STATS_REQUEST);
    default:
      throw new OfError(ErrType.BAD_REQUEST, BadRequest.BAD_TYPE, `message type ${type}`);
  }
}

interface FlowModTail {
  cookie: bigint;
  command: number;
  idle: number;
  hard: number;
  priority: number;
  bufferId: number;
  outPort: number;
  flags: number;
}

function flowModTail(r: Reader, cookie: bigint, command: number): FlowModTail {
  return { cookie, command, idle: r.u16(), hard: r.u16(), priority: r.u16(), bufferId: r.u32(), outPort: r.u16(), flags: r.u16() };
}

function finishFlowMod(r: Reader, format: 'of10' | 'nxm', t: FlowModTail, match: Match): OfBody {
  const cmd = COMMANDS[t.command & 0xff];
  if (!cmd) throw new OfError(ErrType.FLOW_MOD_FAILED, 4, `flow_mod command ${t.command & 0xff}`);
  const tableByte = t.command >> 8;
  const actions = readActions(r, r.left, match);
  const isAdd = cmd === 'add';
  const flowMod: FlowMod = {
    command: cmd,
    table: tableByte === 0xff || (!isAdd && tableByte === 0) ? null : tableByte,
    match,
    cookie: isAdd ? t.cookie : 0n,
    cookieMask: 0n,
    idleTimeout: t.idle,
    hardTimeout: t.hard,
    importance: 0,
    flags: flowModFlags(t.flags),
    outPort: t.outPort === OFPP_NONE ? null : t.outPort,
    actions: cmd === 'delete' || cmd === 'delete_strict' ? [] : actions,
  };
  return { type: 'flow_mod', format, flowMod, bufferId: t.bufferId };
}

function decodeNxt(r: Reader): OfBody {
  const vendor = r.u32();
  if (vendor !== NX_VENDOR) throw new OfError(ErrType.BAD_REQUEST, BadRequest.BAD_VENDOR, `vendor 0x${vendor.toString(16)}`);
  const subtype = r.u32();
  switch (subtype) {
    case NXT.SET_FLOW_FORMAT: {
      const f = r.u32();
      if (f !== 0 && f !== 2) throw new OfError(ErrType.BAD_REQUEST, BadRequest.EPERM, `flow format ${f}`);
      return { type: 'set_flow_format', format: f === 2 ? 'nxm' : 'of10' };
    }
    case NXT.FLOW_MOD_TABLE_ID: {
      const enable = r.u8();
      r.skip(7);
      return { type: 'flow_mod_table_id', enable: enable !== 0 };
    }
    case NXT.FLOW_MOD: {
      const cookie = r.u64();
      const command = r.u16();
      const t = flowModTail(r, cookie, command);
      const matchLen = r.u16();
      r.skip(6);
      const match = readNxm(r, matchLen, t.priority);
      r.skip((8 - (matchLen % 8)) % 8);
      return finishFlowMod(r, 'nxm', t, match);
    }
    default:
      throw new OfError(ErrType.BAD_REQUEST, BadRequest.BAD_SUBTYPE, `Nicira message subtype ${subtype}`);
  }
}

function readSelect(r: Reader): FlowSelect {
  const outPort = r.u16();
  const matchLen = r.u16();
  const table = r.u8();
  r.skip(3);
  const match = readNxm(r, matchLen, 0);
  r.skip((8 - (matchLen % 8)) % 8);
  return { table: table === 0xff ? null : table, outPort: outPort === OFPP_NONE ? null : outPort, match };
}

function decodeStats(r: Reader, request: boolean): OfBody {
  const stype = r.u16();
  const flags = r.u16();
  if (stype === OFPST.DESC) {
    if (request) return { type: 'desc_request' };
    return { type: 'desc_reply', mfr: str(r, 256), hw: str(r, 256), sw: str(r, 256), serial: str(r, 32), dp: str(r, 256) };
  }
  if (stype === OFPST.TABLE) {
    if (request) return { type: 'table_stats_request' };
    const tables: TableStat[] = [];
    while (r.left > 0) {
      const tableId = r.u8();
      r.skip(3);
      const name = str(r, 32);
      r.skip(8);
      const active = r.u32();
      tables.push({ tableId, name, active, lookups: r.u64(), matched: r.u64() });
    }
    return { type: 'table_stats_reply', tables };
  }
  if (stype === OFPST.PORT) {
    if (request) {
      const portNo = r.u16();
      r.skip(6);
      return { type: 'port_stats_request', portNo };
    }
    const ports: PortStats[] = [];
    while (r.left > 0) {
      const portNo = r.u16();
      r.skip(6);
      const [rxPackets, txPackets, rxBytes, txBytes, rxDropped, txDropped] = [r.u64(), r.u64(), r.u64(), r.u64(), r.u64(), r.u64()];
      r.skip(48);
      ports.push({ portNo, rxPackets, txPackets, rxBytes, txBytes, rxDropped, txDropped });
    }
    return { type: 'port_stats_reply', ports };
  }
  if (stype !== OFPST.VENDOR) throw new OfError(ErrType.BAD_REQUEST, BadRequest.BAD_STAT, `stats type ${stype}`);
  const vendor = r.u32();
  if (vendor !== NX_VENDOR) throw new OfError(ErrType.BAD_REQUEST, BadRequest.BAD_VENDOR, `vendor 0x${vendor.toString(16)}`);
  const subtype = r.u32();
  r.skip(4);
  if (subtype === NXST.FLOW || subtype === NXST.AGGREGATE) {
    const kind = subtype === NXST.FLOW ? 'flow' : 'aggregate';
    if (request) return { type: kind === 'flow' ? 'flow_stats_request' : 'aggregate_request', ...readSelect(r) };
    if (kind === 'aggregate') {
      const packets = r.u64();
      const bytes = r.u64();
      const flows = r.u32();
      r.skip(4);
      return { type: 'aggregate_reply', packets, bytes, flows };
    }
    const flows: FlowStat[] = [];
    while (r.left > 0) {
      const len = r.u16();
      if (len < 48 || len - 2 > r.left) throw new OfError(ErrType.BAD_REQUEST, BadRequest.BAD_LEN, `flow stats length ${len}`);
      const e = r.sub(len - 2);
      const table = e.u8();
      e.skip(1);
      const durationSec = e.u32();
      const durationNsec = e.u32();
      const priority = e.u16();
      const idleTimeout = e.u16();
      const hardTimeout = e.u16();
      const matchLen = e.u16();
      const idleAge = e.u16() - 1;
      const hardAge = e.u16() - 1;
      const cookie = e.u64();
      const packets = e.u64();
      const bytes = e.u64();
      const match = readNxm(e, matchLen, priority);
      e.skip((8 - (matchLen % 8)) % 8);
      const actions = readActions(e, e.left, match);
      flows.push({ table, durationSec, durationNsec, idleTimeout, hardTimeout, idleAge, hardAge, cookie, packets, bytes, match, actions });
    }
    return { type: 'flow_stats_reply', flows, more: (flags & 1) !== 0 };
  }
  throw new OfError(ErrType.BAD_REQUEST, BadRequest.BAD_SUBTYPE, `Nicira stats subtype ${subtype}`);
}

function flowModFlagBits(f: FlowMod['flags']): number {
  return (f.sendFlowRem ? FLAG.SEND_FLOW_REM : 0) | (f.checkOverlap ? FLAG.CHECK_OVERLAP : 0) | (f.resetCounts ? FLAG.RESET_COUNTS : 0) | (f.noPacketCounts ? FLAG.NO_PKT_COUNTS : 0) | (f.noByteCounts ? FLAG.NO_BYT_COUNTS : 0);
}

function writeNxmPadded(w: Writer, m: Match): number {
  const len = writeNxm(w, m);
  w.zeros((8 - (len % 8)) % 8);
  return len;
}

/** Encodes a message. Flow mods and flow stats always use NXM (a decoded OpenFlow 1.0 match re-encodes as NXT_FLOW_MOD). */
export function encode(m: OfMessage): Uint8Array {
  const w = new Writer();
  const header = (type: number) => w.u8(m.version).u8(type).u16(0).u32(m.xid);
  const nxt = (subtype: number) => {
    header(OFPT.VENDOR);
    w.u32(NX_VENDOR).u32(subtype);
  };
  const stats = (request: boolean, stype: number, flags = 0) => {
    header(request ? OFPT.STATS_REQUEST : OFPT.STATS_REPLY);
    w.u16(stype).u16(flags);
  };
  const nxst = (request: boolean, subtype: number, flags = 0) => {
    stats(request, OFPST.VENDOR, flags);
    w.u32(NX_VENDOR).u32(subtype).zeros(4);
  };
  switch (m.type) {
    case 'hello': {
      header(OFPT.HELLO);
      const words = Math.floor(Math.max(0, ...m.versions) / 32) + 1;
      w.u16(1).u16(4 + 4 * words);
      for (let i = 0; i < words; i++) w.u32(m.versions.reduce((acc, v) => (Math.floor(v / 32) === i ? acc | (1 << v % 32) : acc), 0));
      w.pad(8);
      break;
    }
    case 'error':
      header(OFPT.ERROR);
      w.u16(m.errType).u16(m.code).bytes(m.data);
      break;
    case 'echo_request':
    case 'echo_reply':
      header(m.type === 'echo_request' ? OFPT.ECHO_REQUEST : OFPT.ECHO_REPLY);
      w.bytes(m.data);
      break;
    case 'features_request':
      header(OFPT.FEATURES_REQUEST);
      break;
    case 'get_config_request':
      header(OFPT.GET_CONFIG_REQUEST);
      break;
    case 'barrier_request':
      header(OFPT.BARRIER_REQUEST);
      break;
    case 'barrier_reply':
      header(OFPT.BARRIER_REPLY);
      break;
    case 'get_config_reply':
    case 'set_config':
      header(m.type === 'set_config' ? OFPT.SET_CONFIG : OFPT.GET_CONFIG_REPLY);
      w.u16(m.flags).u16(m.missSendLen);
      break;
    case 'features_reply':
      header(OFPT.FEATURES_REPLY);
      w.u64(m.datapathId).u32(m.nBuffers).u8(m.nTables).zeros(3).u32(m.capabilities).u32(m.actions);
      for (const p of m.ports) {
        w.u16(p.portNo).uint(p.hwAddr, 6);
        putStr(w, p.name, 16);
        w.u32(p.config).u32(p.state).zeros(16);
      }
      break;
    case 'flow_mod': {
      const fm = m.flowMod;
      nxt(NXT.FLOW_MOD);
      const table = fm.table ?? (fm.command === 'add' ? 0 : 0xff);
      w.u64(fm.cookie).u16((table << 8) | COMMANDS.indexOf(fm.command));
      w.u16(fm.idleTimeout).u16(fm.hardTimeout).u16(fm.match.priority).u32(m.bufferId).u16(fm.outPort ?? OFPP_NONE).u16(flowModFlagBits(fm.flags));
      const lenAt = w.length;
      w.u16(0).zeros(6);
      w.setU16(lenAt, writeNxmPadded(w, fm.match));
      writeActions(w, fm.actions);
      break;
    }
    case 'set_flow_format':
      nxt(NXT.SET_FLOW_FORMAT);
      w.u32(m.format === 'nxm' ? 2 : 0);
      break;
    case 'flow_mod_table_id':
      nxt(NXT.FLOW_MOD_TABLE_ID);
      w.u8(m.enable ? 1 : 0).zeros(7);
      break;
    case 'desc_request':
      stats(true, OFPST.DESC);
      break;
    case 'desc_reply':
      stats(false, OFPST.DESC);
      putStr(w, m.mfr, 256);
      putStr(w, m.hw, 256);
      putStr(w, m.sw, 256);
      putStr(w, m.serial, 32);
      putStr(w, m.dp, 256);
      break;
    case 'table_stats_request':
      stats(true, OFPST.TABLE);
      break;
    case 'table_stats_reply':
      stats(false, OFPST.TABLE);
      for (const t of m.tables) {
        w.u8(t.tableId).zeros(3);
        putStr(w, t.name, 32);
        w.u32(0x3fffff).u32(1_000_000).u32(t.active).u64(t.lookups).u64(t.matched);
      }
      break;
    case 'port_stats_request':
      stats(true, OFPST.PORT);
      w.u16(m.portNo).zeros(6);
      break;
    case 'port_stats_reply':
      stats(false, OFPST.PORT);
      for (const p of m.ports) {
        w.u16(p.portNo).zeros(6).u64(p.rxPackets).u64(p.txPackets).u64(p.rxBytes).u64(p.txBytes).u64(p.rxDropped).u64(p.txDropped);
        // rx/tx errors, frame, overrun, CRC, collisions: not counted by nvs, so all-ones ("unsupported").
        for (let i = 0; i < 6; i++) w.u64(UNSUPPORTED);
      }
      break;
    case 'flow_stats_request':
    case 'aggregate_request': {
      nxst(true, m.type === 'flow_stats_request' ? NXST.FLOW : NXST.AGGREGATE);
      w.u16(m.outPort ?? OFPP_NONE);
      const lenAt = w.length;
      w.u16(0).u8(m.table ?? 0xff).zeros(3);
      w.setU16(lenAt, writeNxmPadded(w, m.match));
      break;
    }
    case 'aggregate_reply':
      nxst(false, NXST.AGGREGATE);
      w.u64(m.packets).u64(m.bytes).u32(m.flows).zeros(4);
      break;
    case 'flow_stats_reply':
      nxst(false, NXST.FLOW, m.more ? 1 : 0);
      for (const f of m.flows) writeFlowStat(w, f);
      break;
  }
  const out = w.finish();
  out[2] = out.length >> 8;
  out[3] = out.length & 0xff;
  if (out.length > 0xffff) throw new OfError(ErrType.BAD_REQUEST, BadRequest.BAD_LEN, `message of ${out.length} bytes is too long`);
  return out;
}

/** One NXST_FLOW entry (`nx_flow_stats`, 48 bytes, NXM match, actions). */
export function writeFlowStat(w: Writer, f: FlowStat): void {
  const at = w.length;
  w.u16(0).u8(f.table).u8(0).u32(f.durationSec).u32(f.durationNsec).u16(f.match.priority).u16(f.idleTimeout).u16(f.hardTimeout);
  const lenAt = w.length;
  w.u16(0).u16(f.idleAge + 1).u16(f.hardAge + 1).u64(f.cookie).u64(f.packets).u64(f.bytes);
  w.setU16(lenAt, writeNxmPadded(w, f.match));
  writeActions(w, f.actions);
  w.setU16(at, w.length - at);
}
