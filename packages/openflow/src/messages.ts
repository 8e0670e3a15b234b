/**
 * OpenFlow messages as typed values, and their codec: OpenFlow 1.0 with the
 * Nicira extensions `ovs-ofctl` uses (NXM flow format, NXT_FLOW_MOD,
 * NXT_FLOW_MOD_TABLE_ID, NXST_FLOW/AGGREGATE), and OpenFlow 1.3, 1.4 and
 * 1.5 (OXM matches, instructions, multipart). A message's `version` picks
 * its wire layout; the bodies are the same values whatever the version.
 *
 * `decode` throws an `OfError` for anything it refuses (truncation, lying
 * lengths, unknown types), never another exception; `encode(decode(b))`
 * decodes to the same value.
 */
import { type Action, type FlowMod, type FlowModCommand, type Match, mustField, newMatch, OFPP, setMatchField, Slot } from '@nvs/ofproto';
import { readActions, readInstructions, SUPPORTED_ACTIONS, SUPPORTED_INSTRUCTIONS, writeActions, writeInstructions } from './actions.ts';
import { type CookieSelect, OFP10_MATCH_LEN, oxmCapabilities, port16, port32, readNxm, readOf10Match, readOxmMatch, writeNxm, writeNxmCookie, writeOf10Match, writeOxmMatch } from './match.ts';
import { BadRequest, BundleFailed, ErrType, FlowModFailed, OfError, Reader, RoleRequestFailed, Writer } from './wire.ts';

export const OFP10_VERSION = 1;
export const OFP13_VERSION = 4;
export const OFP14_VERSION = 5;
export const OFP15_VERSION = 6;
/** Versions this codec speaks (1.1 and 1.2 are not). */
export const SUPPORTED_VERSIONS: readonly number[] = [OFP10_VERSION, OFP13_VERSION, OFP14_VERSION, OFP15_VERSION];
export const OFP_HEADER_LEN = 8;
const NX_VENDOR = 0x00002320;
const OFPT = { HELLO: 0, ERROR: 1, ECHO_REQUEST: 2, ECHO_REPLY: 3, VENDOR: 4, FEATURES_REQUEST: 5, FEATURES_REPLY: 6, GET_CONFIG_REQUEST: 7, GET_CONFIG_REPLY: 8, SET_CONFIG: 9, PACKET_IN: 10, FLOW_REMOVED: 11, PORT_STATUS: 12, PACKET_OUT: 13, FLOW_MOD: 14, STATS_REQUEST: 16, STATS_REPLY: 17, BARRIER_REQUEST: 18, BARRIER_REPLY: 19 };
const NXT = { ROLE_REQUEST: 10, ROLE_REPLY: 11, SET_FLOW_FORMAT: 12, SET_ASYNC_CONFIG: 19, FLOW_MOD: 13, FLOW_REMOVED: 14, FLOW_MOD_TABLE_ID: 15, SET_PACKET_IN_FORMAT: 16, PACKET_IN2: 30 };
/** NXT_PACKET_IN2 properties. */
const NXPINT = { PACKET: 0, FULL_LEN: 1, BUFFER_ID: 2, TABLE_ID: 3, COOKIE: 4, REASON: 5, METADATA: 6 };
/** "No buffer": nvs buffers no packets, so every packet-in carries its data and every packet-out must too. */
export const NO_BUFFER = 0xffffffff;
const OFPST = { DESC: 0, TABLE: 3, PORT: 4, PORT_DESC: 13, VENDOR: 0xffff };
const NXST = { FLOW: 0, AGGREGATE: 1 };
const COMMANDS: readonly FlowModCommand[] = ['add', 'modify', 'modify_strict', 'delete', 'delete_strict'];
const FLAG = { SEND_FLOW_REM: 1, CHECK_OVERLAP: 2, RESET_COUNTS: 4, NO_PKT_COUNTS: 8, NO_BYT_COUNTS: 16 };
/** OpenFlow 1.1+ message types where they differ from 1.0's. */
const OFPT11 = { PORT_MOD: 16, MULTIPART_REQUEST: 18, MULTIPART_REPLY: 19, BARRIER_REQUEST: 20, BARRIER_REPLY: 21, ROLE_REQUEST: 24, ROLE_REPLY: 25, GET_ASYNC_REQUEST: 26, GET_ASYNC_REPLY: 27, SET_ASYNC: 28, BUNDLE_CONTROL: 33, BUNDLE_ADD_MESSAGE: 34 };
/** The ONF experimenter (OpenFlow 1.3's bundle extension: control 2300, add 2301). */
const ONF_VENDOR = 0x4f4e4600;
const ONFT = { ROLE_STATUS: 1911, BUNDLE_CONTROL: 2300, BUNDLE_ADD_MESSAGE: 2301 };
/** OpenFlow 1.4's role-status message type (1.3: the ONF extension ONFT_ROLE_STATUS). */
const OFPT14_ROLE_STATUS = 30;
/** Bundle control types (requests are even, each reply is request + 1). */
export const BundleCtrl = { OPEN_REQUEST: 0, OPEN_REPLY: 1, CLOSE_REQUEST: 2, CLOSE_REPLY: 3, COMMIT_REQUEST: 4, COMMIT_REPLY: 5, DISCARD_REQUEST: 6, DISCARD_REPLY: 7 } as const;
const OFPMP = { DESC: 0, FLOW: 1, AGGREGATE: 2, TABLE: 3, PORT_STATS: 4, QUEUE: 5, TABLE_FEATURES: 12, PORT_DESC: 13 };
const OFPP_NONE = 0xffff;
/** OpenFlow 1.1+ "any port" and "any group" (no restriction). */
const OFPP_ANY = 0xffffffff;
const OFPG_ANY = 0xffffffff;
const OFPTT_ALL = 0xff;
/** OXS (OpenFlow 1.5 statistics TLVs) class and fields. */
const OXS_BASIC = 0x8002;
const OXS = { DURATION: 0, IDLE_TIME: 1, FLOW_COUNT: 3, PACKET_COUNT: 4, BYTE_COUNT: 5 };
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
  /** Since the port was added (OpenFlow 1.3+; 1.0 has no such field). */
  readonly durationSec: number;
  readonly durationNsec: number;
}
export interface TableStat {
  readonly tableId: number;
  readonly name: string;
  readonly active: number;
  readonly lookups: bigint;
  readonly matched: bigint;
}
/**
 * One table's features (OpenFlow 1.3+): instruction and action types
 * (OFPIT and OFPAT numbers), the tables goto_table may name, and OXM
 * headers it matches (hasmask set where maskable), wildcards and sets.
 */
export interface TableFeatures {
  readonly tableId: number;
  readonly name: string;
  readonly maxEntries: number;
  readonly instructions: readonly number[];
  readonly nextTables: readonly number[];
  readonly writeActions: readonly number[];
  readonly applyActions: readonly number[];
  readonly match: readonly number[];
  readonly wildcards: readonly number[];
  readonly writeSetfield: readonly number[];
  readonly applySetfield: readonly number[];
}
/** Table feature properties in their OFPTFPT numbering, and how wide each item is (2: an instruction/action header of 4 bytes). */
const TFP: readonly [keyof TableFeatures, number, 1 | 4 | 'hdr'][] = [
  ['instructions', 0, 'hdr'],
  ['nextTables', 2, 1],
  ['writeActions', 4, 'hdr'],
  ['applyActions', 6, 'hdr'],
  ['match', 8, 4],
  ['wildcards', 10, 4],
  ['writeSetfield', 12, 4],
  ['applySetfield', 14, 4],
];
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
  /** OFPFF_* bits (OpenFlow 1.3+ show them). */
  readonly flags: number;
  readonly importance: number;
  readonly match: Match;
  readonly actions: readonly Action[];
}
/** A controller's role: 'nochange' only in a request; 'equal' is Nicira's "other". */
export type Role = 'nochange' | 'equal' | 'master' | 'slave';
const OF_ROLES: readonly Role[] = ['nochange', 'equal', 'master', 'slave'];
const NX_ROLES: readonly Role[] = ['equal', 'master', 'slave'];
/**
 * Which asynchronous messages a connection takes, per role (index 0 as
 * master or equal, 1 as slave): bit N of a mask lets reason N through.
 */
export interface AsyncConfig {
  readonly packetIn: readonly [number, number];
  readonly portStatus: readonly [number, number];
  readonly flowRemoved: readonly [number, number];
}
/** OpenFlow 1.4+ async-config property types, by (kind, master?) as [slave, master]. */
const ASYNC_PROPS = { packetIn: [0, 1], portStatus: [2, 3], flowRemoved: [4, 5] } as const;

/** A rule gone (deleted or expired) that asked to be reported (send_flow_rem). */
export interface FlowRemoved {
  readonly cookie: bigint;
  /** OFPRR_*: idle timeout 0, hard timeout 1, delete 2. */
  readonly reason: number;
  readonly tableId: number;
  readonly durationSec: number;
  readonly durationNsec: number;
  readonly idleTimeout: number;
  readonly hardTimeout: number;
  readonly packets: bigint;
  readonly bytes: bigint;
  /** Includes the rule's priority. */
  readonly match: Match;
}
/** A flow dump's selection (flow and aggregate stats requests; cookies only in 1.1+). */
export interface FlowSelect {
  readonly table: number | null;
  readonly outPort: number | null;
  readonly outGroup: number | null;
  readonly cookie: bigint;
  readonly cookieMask: bigint;
  readonly match: Match;
}

export type OfBody =
  | { type: 'hello'; versions: number[] }
  | { type: 'error'; errType: number; code: number; data: Uint8Array }
  | { type: 'echo_request' | 'echo_reply'; data: Uint8Array }
  | { type: 'features_request' | 'get_config_request' | 'barrier_request' | 'barrier_reply' }
  | { type: 'features_reply'; datapathId: bigint; nBuffers: number; nTables: number; capabilities: number; actions: number; ports: PhyPort[] }
  | { type: 'get_config_reply' | 'set_config'; flags: number; missSendLen: number }
  | { type: 'flow_mod'; format: 'of10' | 'nxm' | 'oxm'; flowMod: FlowMod; bufferId: number; outGroup: number | null }
  | { type: 'set_flow_format'; format: 'of10' | 'nxm' }
  | { type: 'flow_mod_table_id'; enable: boolean }
  | { type: 'desc_request' | 'table_stats_request' }
  | { type: 'table_features_request' }
  | { type: 'table_features_reply'; tables: TableFeatures[]; more: boolean }
  | { type: 'packet_in'; format: 'standard' | 'nxt2'; totalLen: number; reason: number; tableId: number; cookie: bigint; match: Match; data: Uint8Array }
  | { type: 'packet_out'; bufferId: number; inPort: number; actions: readonly Action[]; data: Uint8Array }
  | { type: 'set_packet_in_format'; format: 'standard' | 'nxt' | 'nxt2' }
  | ({ type: 'flow_removed'; format: 'standard' | 'nxm' } & FlowRemoved)
  | { type: 'role_request' | 'role_reply'; nicira: boolean; role: Role; generationId: bigint | null }
  | { type: 'role_status'; role: Role; reason: number; generationId: bigint }
  | { type: 'port_status'; reason: number; port: PhyPort }
  | { type: 'get_async_request' }
  | { type: 'set_async' | 'get_async_reply'; nicira: boolean; config: AsyncConfig }
  | { type: 'bundle_control'; bundleId: number; ctrl: number; flags: number }
  | { type: 'bundle_add'; bundleId: number; flags: number; message: OfMessage }
  | { type: 'port_desc_request'; portNo: number }
  | { type: 'port_desc_reply'; ports: PhyPort[] }
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
  if (!SUPPORTED_VERSIONS.includes(version)) throw new OfError(ErrType.BAD_REQUEST, BadRequest.BAD_VERSION, `OpenFlow version 0x${version.toString(16)} is not supported`);
  const body = decodeCommon(r, type, version) ?? (version === OFP10_VERSION ? decodeOf10(r, type) : decodeOf11(r, type, version));
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

/** The messages every version numbers and lays out alike (but for the barrier's number and the features reply's ports); undefined for the rest. */
function decodeCommon(r: Reader, type: number, version: number): OfBody | undefined {
  const of10 = version === OFP10_VERSION;
  switch (type) {
    case OFPT.FEATURES_REQUEST:
      return { type: 'features_request' };
    case OFPT.GET_CONFIG_REQUEST:
      return { type: 'get_config_request' };
    case of10 ? OFPT.BARRIER_REQUEST : OFPT11.BARRIER_REQUEST:
      return { type: 'barrier_request' };
    case of10 ? OFPT.BARRIER_REPLY : OFPT11.BARRIER_REPLY:
      return { type: 'barrier_reply' };
    case OFPT.GET_CONFIG_REPLY:
    case OFPT.SET_CONFIG:
      return { type: type === OFPT.SET_CONFIG ? 'set_config' : 'get_config_reply', flags: r.u16(), missSendLen: r.u16() };
    case OFPT.PORT_STATUS: {
      // Reason: add 0, delete 1, modify 2.
      const reason = r.u8();
      r.skip(7);
      return { type: 'port_status', reason, port: of10 ? readPhyPort10(r) : readPort11(r, version) };
    }
    case OFPT.FEATURES_REPLY: {
      const datapathId = r.u64();
      const nBuffers = r.u32();
      const nTables = r.u8();
      r.skip(3);
      const capabilities = r.u32();
      // 1.0: the actions bitmap and the ports; 1.1+: a reserved word (ports come from a port-desc request).
      const actions = r.u32();
      const ports: PhyPort[] = [];
      while (of10 && r.left > 0) ports.push(readPhyPort10(r));
      return { type: 'features_reply', datapathId, nBuffers, nTables, capabilities, actions: of10 ? actions : 0, ports };
    }
    default:
      return undefined;
  }
}

function decodeOf10(r: Reader, type: number): OfBody {
  switch (type) {
    case OFPT.FLOW_MOD: {
      const m = r.sub(OFP10_MATCH_LEN);
      const cookie = r.u64();
      const command = r.u16();
      const rest = flowModTail(r, cookie, command);
      const match = readOf10Match(m, rest.priority);
      return finishFlowMod(r, 'of10', rest, match);
    }
    case OFPT.VENDOR:
      return decodeNxt(r, OFP10_VERSION);
    case OFPT.PACKET_OUT: {
      const bufferId = r.u32();
      const inPort = r.u16();
      const actionsLen = r.u16();
      const actions = readActions(r, actionsLen, newMatch(0));
      return { type: 'packet_out', bufferId, inPort, actions, data: r.bytes(r.left) };
    }
    case OFPT.FLOW_REMOVED: {
      const m = r.sub(OFP10_MATCH_LEN);
      const cookie = r.u64();
      const priority = r.u16();
      const reason = r.u8();
      r.skip(1);
      const durationSec = r.u32();
      const durationNsec = r.u32();
      const idleTimeout = r.u16();
      r.skip(2);
      const packets = r.u64();
      const bytes = r.u64();
      return { type: 'flow_removed', format: 'standard', cookie, reason, tableId: 0, durationSec, durationNsec, idleTimeout, hardTimeout: 0, packets, bytes, match: readOf10Match(m, priority) };
    }
    case OFPT.PACKET_IN: {
      r.skip(4);
      const totalLen = r.u16();
      const match = newMatch(0);
      setMatchField(match, mustField('in_port'), BigInt(r.u16()), 0xffffn);
      const reason = r.u8();
      r.skip(1);
      return { type: 'packet_in', format: 'standard', totalLen, reason, tableId: 0, cookie: 0n, match, data: r.bytes(r.left) };
    }
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

function finishFlowMod(r: Reader, format: 'of10' | 'nxm', t: FlowModTail, match: Match, sel: CookieSelect = { cookie: 0n, mask: 0n }): OfBody {
  const cmd = COMMANDS[t.command & 0xff];
  if (!cmd) throw new OfError(ErrType.FLOW_MOD_FAILED, 4, `flow_mod command ${t.command & 0xff}`);
  const tableByte = t.command >> 8;
  const actions = readActions(r, r.left, match);
  const isAdd = cmd === 'add';
  const flowMod: FlowMod = {
    command: cmd,
    // (Without NXT_FLOW_MOD_TABLE_ID the byte is no table: the connection then takes every table.)
    table: tableByte === 0xff ? null : tableByte,
    match,
    // A modify or delete selects by NXM_NX_COOKIE_W; with no mask, its cookie field is the modified rules' new cookie.
    cookie: isAdd || sel.mask === 0n ? (cmd === 'delete' || cmd === 'delete_strict' ? 0n : t.cookie) : sel.cookie & sel.mask,
    cookieMask: isAdd ? 0n : sel.mask,
    idleTimeout: t.idle,
    hardTimeout: t.hard,
    importance: 0,
    flags: flowModFlags(t.flags),
    outPort: t.outPort === OFPP_NONE ? null : t.outPort,
    actions: cmd === 'delete' || cmd === 'delete_strict' ? [] : actions,
  };
  return { type: 'flow_mod', format, flowMod, bufferId: t.bufferId, outGroup: null };
}

function decodeNxt(r: Reader, version: number): OfBody {
  const vendor = r.u32();
  if (vendor !== NX_VENDOR) throw new OfError(ErrType.BAD_REQUEST, BadRequest.BAD_VENDOR, `vendor 0x${vendor.toString(16)}`);
  const subtype = r.u32();
  switch (subtype) {
    case NXT.SET_FLOW_FORMAT: {
      const f = r.u32();
      if (f !== 0 && f !== 2) throw new OfError(ErrType.BAD_REQUEST, BadRequest.EPERM, `flow format ${f}`);
      return { type: 'set_flow_format', format: f === 2 ? 'nxm' : 'of10' };
    }
    case NXT.SET_PACKET_IN_FORMAT: {
      const f = r.u32();
      const format = (['standard', 'nxt', 'nxt2'] as const)[f];
      if (!format) throw new OfError(ErrType.BAD_REQUEST, BadRequest.EPERM, `packet-in format ${f}`);
      return { type: 'set_packet_in_format', format };
    }
    case NXT.PACKET_IN2:
      return readPacketIn2(r, version);
    case NXT.ROLE_REQUEST:
    case NXT.ROLE_REPLY: {
      const code = r.u32();
      const role = NX_ROLES[code];
      if (!role) throw new OfError(ErrType.ROLE_REQUEST_FAILED, RoleRequestFailed.BAD_ROLE, `Nicira role ${code}`);
      return { type: subtype === NXT.ROLE_REQUEST ? 'role_request' : 'role_reply', nicira: true, role, generationId: null };
    }
    case NXT.SET_ASYNC_CONFIG:
      return { type: 'set_async', nicira: true, config: readAsync13(r) };
    case NXT.FLOW_REMOVED: {
      const cookie = r.u64();
      const priority = r.u16();
      const reason = r.u8();
      const tableId = r.u8() - 1;
      const durationSec = r.u32();
      const durationNsec = r.u32();
      const idleTimeout = r.u16();
      const matchLen = r.u16();
      const packets = r.u64();
      const bytes = r.u64();
      const match = readNxm(r, matchLen, priority);
      r.skip((8 - (matchLen % 8)) % 8);
      return { type: 'flow_removed', format: 'nxm', cookie, reason, tableId: Math.max(tableId, 0), durationSec, durationNsec, idleTimeout, hardTimeout: 0, packets, bytes, match };
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
      const sel: CookieSelect = { cookie: 0n, mask: 0n };
      const match = readNxm(r, matchLen, t.priority, sel);
      r.skip((8 - (matchLen % 8)) % 8);
      return finishFlowMod(r, 'nxm', t, match, sel);
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
  const sel: CookieSelect = { cookie: 0n, mask: 0n };
  const match = readNxm(r, matchLen, 0, sel);
  r.skip((8 - (matchLen % 8)) % 8);
  return { table: table === 0xff ? null : table, outPort: outPort === OFPP_NONE ? null : outPort, outGroup: null, cookie: sel.cookie & sel.mask, cookieMask: sel.mask, match };
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
      ports.push({ portNo, rxPackets, txPackets, rxBytes, txBytes, rxDropped, txDropped, durationSec: 0, durationNsec: 0 });
    }
    return { type: 'port_stats_reply', ports };
  }
  if (stype === OFPST.PORT_DESC) {
    if (request) return { type: 'port_desc_request', portNo: OFPP_NONE };
    const ports: PhyPort[] = [];
    while (r.left > 0) ports.push(readPhyPort10(r));
    return { type: 'port_desc_reply', ports };
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
      flows.push({ table, durationSec, durationNsec, idleTimeout, hardTimeout, idleAge, hardAge, cookie, packets, bytes, flags: 0, importance: 0, match, actions });
    }
    return { type: 'flow_stats_reply', flows, more: (flags & 1) !== 0 };
  }
  throw new OfError(ErrType.BAD_REQUEST, BadRequest.BAD_SUBTYPE, `Nicira stats subtype ${subtype}`);
}

/** A 32-bit port of a 1.1+ filter (out_port) as nvs's, or null for "any". */
function anyPort(p: number): number | null {
  if (p === OFPP_ANY) return null;
  const port = port16(p);
  if (port === null) throw new OfError(ErrType.BAD_REQUEST, BadRequest.BAD_PORT, `port ${p}`);
  return port;
}

function decodeOf11(r: Reader, type: number, version: number): OfBody {
  switch (type) {
    case OFPT.FLOW_MOD:
      return decodeFlowMod11(r, version);
    case OFPT.VENDOR: {
      const vendor = r.left >= 4 ? new DataView(r.buf.buffer, r.buf.byteOffset + r.offset, 4).getUint32(0) : -1;
      if (vendor === ONF_VENDOR && version === OFP13_VERSION) {
        r.skip(4);
        const expType = r.u32();
        if (expType === ONFT.BUNDLE_CONTROL) return readBundleControl(r);
        if (expType === ONFT.ROLE_STATUS) return readRoleStatus(r);
        if (expType === ONFT.BUNDLE_ADD_MESSAGE) return readBundleAdd(r, version);
        throw new OfError(ErrType.BAD_REQUEST, BadRequest.BAD_SUBTYPE, `ONF message type ${expType}`);
      }
      return decodeNxt(r, version);
    }
    case OFPT.PACKET_OUT: {
      const bufferId = r.u32();
      let inPort: number;
      let actionsLen: number;
      if (version >= OFP15_VERSION) {
        actionsLen = r.u16();
        r.skip(2);
        const m = readOxmMatch(r, 0);
        inPort = m.mask[Slot.IN_PORT] ? m.value[Slot.IN_PORT] : OFPP.CONTROLLER;
      } else {
        const raw = r.u32();
        const p = port16(raw);
        if (p === null) throw new OfError(ErrType.BAD_REQUEST, BadRequest.BAD_PORT, `packet-out in_port ${raw}`);
        inPort = p;
        actionsLen = r.u16();
        r.skip(6);
      }
      const actions = readActions(r, actionsLen, newMatch(0), version);
      return { type: 'packet_out', bufferId, inPort, actions, data: r.bytes(r.left) };
    }
    case OFPT.FLOW_REMOVED: {
      if (version >= OFP15_VERSION) {
        const tableId = r.u8();
        const reason = r.u8();
        const priority = r.u16();
        const idleTimeout = r.u16();
        const hardTimeout = r.u16();
        const cookie = r.u64();
        const match = readOxmMatch(r, priority);
        const oxs = readOxs(r);
        const d = oxs.get(OXS.DURATION) ?? 0n;
        const [packets, bytes] = [oxs.get(OXS.PACKET_COUNT) ?? 0n, oxs.get(OXS.BYTE_COUNT) ?? 0n];
        return { type: 'flow_removed', format: 'standard', cookie, reason, tableId, durationSec: Number(d >> 32n), durationNsec: Number(d & 0xffffffffn), idleTimeout, hardTimeout, packets, bytes, match };
      }
      const cookie = r.u64();
      const priority = r.u16();
      const reason = r.u8();
      const tableId = r.u8();
      const durationSec = r.u32();
      const durationNsec = r.u32();
      const idleTimeout = r.u16();
      const hardTimeout = r.u16();
      const packets = r.u64();
      const bytes = r.u64();
      return { type: 'flow_removed', format: 'standard', cookie, reason, tableId, durationSec, durationNsec, idleTimeout, hardTimeout, packets, bytes, match: readOxmMatch(r, priority) };
    }
    case OFPT.PACKET_IN: {
      r.skip(4);
      const totalLen = r.u16();
      const reason = r.u8();
      const tableId = r.u8();
      const cookie = r.u64();
      const match = readOxmMatch(r, 0);
      r.skip(2);
      return { type: 'packet_in', format: 'standard', totalLen, reason, tableId, cookie, match, data: r.bytes(r.left) };
    }
    case OFPT11.ROLE_REQUEST:
    case OFPT11.ROLE_REPLY: {
      const code = r.u32();
      const role = OF_ROLES[code];
      if (!role) throw new OfError(ErrType.ROLE_REQUEST_FAILED, RoleRequestFailed.BAD_ROLE, `role ${code}`);
      r.skip(4);
      const generationId = r.u64();
      return { type: type === OFPT11.ROLE_REQUEST ? 'role_request' : 'role_reply', nicira: false, role, generationId };
    }
    case OFPT11.GET_ASYNC_REQUEST:
      return { type: 'get_async_request' };
    case OFPT14_ROLE_STATUS:
      if (version < OFP14_VERSION) throw new OfError(ErrType.BAD_REQUEST, BadRequest.BAD_TYPE, `message type ${type}`);
      return readRoleStatus(r);
    case OFPT11.SET_ASYNC:
    case OFPT11.GET_ASYNC_REPLY: {
      const config = version >= OFP14_VERSION ? readAsync14(r) : readAsync13(r);
      return { type: type === OFPT11.SET_ASYNC ? 'set_async' : 'get_async_reply', nicira: false, config };
    }
    case OFPT11.BUNDLE_CONTROL:
      if (version < OFP14_VERSION) throw new OfError(ErrType.BAD_REQUEST, BadRequest.BAD_TYPE, `message type ${type}`);
      return readBundleControl(r);
    case OFPT11.BUNDLE_ADD_MESSAGE:
      if (version < OFP14_VERSION) throw new OfError(ErrType.BAD_REQUEST, BadRequest.BAD_TYPE, `message type ${type}`);
      return readBundleAdd(r, version);
    case OFPT11.MULTIPART_REQUEST:
    case OFPT11.MULTIPART_REPLY:
      return decodeMultipart(r, type === OFPT11.MULTIPART_REQUEST, version);
    default:
      throw new OfError(ErrType.BAD_REQUEST, BadRequest.BAD_TYPE, `message type ${type}`);
  }
}

/** `ofp14_role_status`: the role now held, why (0: another controller asked for master), the generation id. */
function readRoleStatus(r: Reader): OfBody {
  const code = r.u32();
  const role = OF_ROLES[code];
  if (!role) throw new OfError(ErrType.ROLE_REQUEST_FAILED, RoleRequestFailed.BAD_ROLE, `role ${code}`);
  const reason = r.u8();
  r.skip(3);
  const generationId = r.u64();
  r.skip(r.left);
  return { type: 'role_status', role, reason, generationId };
}

/** OpenFlow 1.3's (and Nicira's) async config: packet-in, port-status, flow-removed masks, master then slave. */
function readAsync13(r: Reader): AsyncConfig {
  const pair = () => [r.u32(), r.u32()] as const;
  return { packetIn: pair(), portStatus: pair(), flowRemoved: pair() };
}

/** OpenFlow 1.4+'s async config as properties; the ones nvs does not use (role status, table status, …) are skipped, absent ones are 0. */
function readAsync14(r: Reader): AsyncConfig {
  const masks = new Map<number, number>();
  while (r.left > 0) {
    const type = r.u16();
    const len = r.u16();
    if (len < 4 || len - 4 > r.left) throw new OfError(ErrType.BAD_PROPERTY, 1, `async property length ${len}`);
    const p = r.sub(len - 4);
    r.skip(Math.min(r.left, (8 - (len % 8)) % 8));
    if (type <= 5 && len === 8) masks.set(type, p.u32());
  }
  const pair = ([slave, master]: readonly [number, number]) => [masks.get(master) ?? 0, masks.get(slave) ?? 0] as const;
  return { packetIn: pair(ASYNC_PROPS.packetIn), portStatus: pair(ASYNC_PROPS.portStatus), flowRemoved: pair(ASYNC_PROPS.flowRemoved) };
}

function writeAsync(w: Writer, c: AsyncConfig, v: number): void {
  if (v < OFP14_VERSION) {
    for (const k of ['packetIn', 'portStatus', 'flowRemoved'] as const) w.u32(c[k][0]).u32(c[k][1]);
    return;
  }
  for (const k of ['packetIn', 'portStatus', 'flowRemoved'] as const) {
    w.u16(ASYNC_PROPS[k][0]).u16(8).u32(c[k][1]);
    w.u16(ASYNC_PROPS[k][1]).u16(8).u32(c[k][0]);
  }
}

/** NXT_PACKET_IN2's properties (unknown ones refused: nvs reads only what it writes). */
function readPacketIn2(r: Reader, version: number): OfBody {
  let data: Uint8Array = new Uint8Array(0);
  let totalLen: number | null = null;
  let tableId = 0;
  let cookie = 0n;
  let reason = 0;
  let match = newMatch(0);
  while (r.left > 0) {
    const type = r.u16();
    const len = r.u16();
    if (len < 4 || len - 4 > r.left) throw new OfError(ErrType.BAD_REQUEST, BadRequest.BAD_LEN, `packet-in property length ${len}`);
    const p = r.sub(len - 4);
    r.skip(Math.min(r.left, (8 - (len % 8)) % 8));
    if (type === NXPINT.PACKET) data = p.bytes(p.left);
    else if (type === NXPINT.FULL_LEN) totalLen = p.u32();
    else if (type === NXPINT.TABLE_ID) tableId = p.u8();
    else if (type === NXPINT.COOKIE) (p.skip(4), (cookie = p.u64()));
    else if (type === NXPINT.REASON) reason = p.u8();
    else if (type === NXPINT.METADATA) match = readNxm(p, p.left, 0);
    else throw new OfError(ErrType.BAD_REQUEST, BadRequest.EPERM, `packet-in property ${type}`);
  }
  void version;
  return { type: 'packet_in', format: 'nxt2', totalLen: totalLen ?? data.length, reason, tableId, cookie, match, data };
}

/** One NXT_PACKET_IN2 property: type, length, value, padding to 8 bytes. */
function putProp(w: Writer, type: number, value: (w: Writer) => void): void {
  const at = w.length;
  w.u16(type).u16(0);
  value(w);
  w.setU16(at + 2, w.length - at);
  w.pad(8, at);
}

/** `ofp14_bundle_ctrl_msg` (properties, which nvs does not use, are skipped). */
function readBundleControl(r: Reader): OfBody {
  const bundleId = r.u32();
  const ctrl = r.u16();
  const flags = r.u16();
  if (ctrl > BundleCtrl.DISCARD_REPLY) throw new OfError(ErrType.BUNDLE_FAILED, BundleFailed.BAD_TYPE, `bundle control type ${ctrl}`);
  r.skip(r.left);
  return { type: 'bundle_control', bundleId, ctrl, flags };
}

/** A bundle-add message: the bundle, its flags, and one whole message of the same version and xid. */
function readBundleAdd(r: Reader, version: number): OfBody {
  const bundleId = r.u32();
  r.skip(2);
  const flags = r.u16();
  const len = frameLength(r.buf.subarray(r.offset));
  if (len === null || len < OFP_HEADER_LEN || len > r.left) throw new OfError(ErrType.BUNDLE_FAILED, BundleFailed.MSG_BAD_LEN, 'bundled message length');
  const message = decode(r.bytes(len));
  if (message.version !== version) throw new OfError(ErrType.BAD_REQUEST, BadRequest.BAD_VERSION, `bundled message of version ${message.version}`);
  r.skip(r.left);
  return { type: 'bundle_add', bundleId, flags, message };
}

function decodeFlowMod11(r: Reader, version: number): OfBody {
  const cookie = r.u64();
  const cookieMask = r.u64();
  const tableId = r.u8();
  const command = r.u8();
  const idle = r.u16();
  const hard = r.u16();
  const priority = r.u16();
  const bufferId = r.u32();
  const outPort = r.u32();
  const outGroup = r.u32();
  const flags = r.u16();
  const importance = version >= OFP14_VERSION ? r.u16() : (r.skip(2), 0);
  const match = readOxmMatch(r, priority);
  const cmd = COMMANDS[command];
  if (!cmd) throw new OfError(ErrType.FLOW_MOD_FAILED, FlowModFailed.BAD_COMMAND, `flow_mod command ${command}`);
  const isAdd = cmd === 'add';
  if (isAdd && tableId === OFPTT_ALL) throw new OfError(ErrType.FLOW_MOD_FAILED, FlowModFailed.BAD_TABLE_ID, 'flow_mod add to table 255');
  const actions = readInstructions(r, r.left, match);
  const flowMod: FlowMod = {
    command: cmd,
    table: tableId === OFPTT_ALL ? null : tableId,
    match,
    cookie: isAdd ? cookie : cookie & cookieMask,
    cookieMask: isAdd ? 0n : cookieMask,
    idleTimeout: idle,
    hardTimeout: hard,
    importance,
    flags: flowModFlags(flags),
    outPort: isAdd ? null : anyPort(outPort),
    actions: cmd === 'delete' || cmd === 'delete_strict' ? [] : actions,
  };
  return { type: 'flow_mod', format: 'oxm', flowMod, bufferId, outGroup: isAdd || outGroup === OFPG_ANY ? null : outGroup };
}

/** OpenFlow 1.0's `ofp_phy_port` (features reply, port desc). */
function readPhyPort10(r: Reader): PhyPort {
  const portNo = r.u16();
  const hwAddr = r.uint(6);
  const name = str(r, 16);
  const config = r.u32();
  const state = r.u32();
  r.skip(16);
  return { portNo, hwAddr, name, config, state };
}

function writePhyPort10(w: Writer, p: PhyPort): void {
  w.u16(p.portNo).uint(p.hwAddr, 6);
  putStr(w, p.name, 16);
  // Features (current, advertised, supported, peer): nvs's ports report none.
  w.u32(p.config).u32(p.state).zeros(16);
}

/** An OpenFlow 1.1+ port description (`ofp11_port`, or 1.4's `ofp14_port` with an Ethernet property). */
function readPort11(r: Reader, version: number): PhyPort {
  const portNo = r.u32();
  let e = r;
  if (version >= OFP14_VERSION) {
    const len = r.u16();
    if (len < 40 || len - 6 > r.left) throw new OfError(ErrType.BAD_REQUEST, BadRequest.BAD_LEN, `port length ${len}`);
    e = r.sub(len - 6);
    e.skip(2);
  } else r.skip(4);
  const hwAddr = e.uint(6);
  e.skip(2);
  const name = str(e, 16);
  const config = e.u32();
  const state = e.u32();
  if (version >= OFP14_VERSION) e.skip(e.left);
  else e.skip(24);
  return { portNo: port16(portNo) ?? 0, hwAddr, name, config, state };
}

function writePort11(w: Writer, p: PhyPort, version: number): void {
  w.u32(port32(p.portNo));
  if (version >= OFP14_VERSION) w.u16(72).zeros(2);
  else w.zeros(4);
  w.uint(p.hwAddr, 6).zeros(2);
  putStr(w, p.name, 16);
  w.u32(p.config).u32(p.state);
  // Ethernet features and speeds: nvs's ports report none.
  if (version >= OFP14_VERSION) w.u16(0).u16(32).zeros(4);
  w.zeros(24);
}

function readSelect11(r: Reader): FlowSelect {
  const table = r.u8();
  r.skip(3);
  const outPort = anyPort(r.u32());
  const outGroup = r.u32();
  r.skip(4);
  const cookie = r.u64();
  const cookieMask = r.u64();
  const match = readOxmMatch(r, 0);
  return { table: table === OFPTT_ALL ? null : table, outPort, outGroup: outGroup === OFPG_ANY ? null : outGroup, cookie: cookie & cookieMask, cookieMask, match };
}

/** OXS statistics (OpenFlow 1.5 flow and aggregate stats): header, TLVs, padding. */
function readOxs(r: Reader): Map<number, bigint> {
  r.skip(2);
  const len = r.u16();
  if (len < 4) throw new OfError(ErrType.BAD_REQUEST, BadRequest.BAD_LEN, `OXS length ${len}`);
  const body = r.sub(len - 4);
  r.skip((8 - (len % 8)) % 8);
  const out = new Map<number, bigint>();
  while (body.left > 0) {
    const cls = body.u16();
    const field = body.u8() >> 1;
    const n = body.u8();
    if (cls !== OXS_BASIC || (n !== 4 && n !== 8)) throw new OfError(ErrType.BAD_REQUEST, BadRequest.EPERM, `OXS class 0x${cls.toString(16)} length ${n}`);
    out.set(field, body.uint(n));
  }
  return out;
}

function writeOxs(w: Writer, stats: [number, bigint, number][]): void {
  const at = w.length;
  w.u16(0).u16(0);
  for (const [field, v, n] of stats) w.u16(OXS_BASIC).u8(field << 1).u8(n).uint(v, n);
  w.setU16(at + 2, w.length - at);
  w.pad(8, at);
}

function decodeMultipart(r: Reader, request: boolean, version: number): OfBody {
  const mtype = r.u16();
  const flags = r.u16();
  r.skip(4);
  const more = (flags & 1) !== 0;
  switch (mtype) {
    case OFPMP.DESC:
      if (request) return { type: 'desc_request' };
      return { type: 'desc_reply', mfr: str(r, 256), hw: str(r, 256), sw: str(r, 256), serial: str(r, 32), dp: str(r, 256) };
    case OFPMP.FLOW:
    case OFPMP.AGGREGATE: {
      if (request) return { type: mtype === OFPMP.FLOW ? 'flow_stats_request' : 'aggregate_request', ...readSelect11(r) };
      if (mtype === OFPMP.AGGREGATE) {
        if (version >= OFP15_VERSION) {
          const oxs = readOxs(r);
          return { type: 'aggregate_reply', packets: oxs.get(OXS.PACKET_COUNT) ?? 0n, bytes: oxs.get(OXS.BYTE_COUNT) ?? 0n, flows: Number(oxs.get(OXS.FLOW_COUNT) ?? 0n) };
        }
        const packets = r.u64();
        const bytes = r.u64();
        const flows = r.u32();
        r.skip(4);
        return { type: 'aggregate_reply', packets, bytes, flows };
      }
      const flows: FlowStat[] = [];
      while (r.left > 0) flows.push(readFlowStat11(r, version));
      return { type: 'flow_stats_reply', flows, more };
    }
    case OFPMP.TABLE: {
      if (request) return { type: 'table_stats_request' };
      const tables: TableStat[] = [];
      while (r.left > 0) {
        const tableId = r.u8();
        r.skip(3);
        const active = r.u32();
        tables.push({ tableId, name: '', active, lookups: r.u64(), matched: r.u64() });
      }
      return { type: 'table_stats_reply', tables };
    }
    case OFPMP.PORT_STATS: {
      if (request) {
        const portNo = r.u32();
        r.skip(4);
        return { type: 'port_stats_request', portNo: portNo === OFPP_ANY ? OFPP_NONE : (port16(portNo) ?? 0) };
      }
      const ports: PortStats[] = [];
      while (r.left > 0) ports.push(readPortStats11(r, version));
      return { type: 'port_stats_reply', ports };
    }
    case OFPMP.TABLE_FEATURES: {
      // A request with a body would change the tables' features, which nvs does not offer.
      if (request) {
        if (r.left) throw new OfError(ErrType.BAD_REQUEST, BadRequest.EPERM, 'setting table features is not supported');
        return { type: 'table_features_request' };
      }
      const tables: TableFeatures[] = [];
      while (r.left > 0) {
        const len = r.u16();
        if (len < 64 || len % 8 || len - 2 > r.left) throw new OfError(ErrType.BAD_REQUEST, BadRequest.BAD_LEN, `table features length ${len}`);
        const e = r.sub(len - 2);
        const tableId = e.u8();
        e.skip(5);
        const name = str(e, 32);
        e.skip(20);
        const maxEntries = e.u32();
        const props = new Map<number, number[]>();
        while (e.left > 0) {
          const ptype = e.u16();
          const plen = e.u16();
          if (plen < 4 || plen - 4 > e.left) throw new OfError(ErrType.BAD_REQUEST, BadRequest.BAD_LEN, `table feature property length ${plen}`);
          const pr = e.sub(plen - 4);
          e.skip(Math.min(e.left, (8 - (plen % 8)) % 8));
          const width = TFP.find(([, t]) => t === ptype)?.[2];
          if (width === undefined || props.has(ptype)) throw new OfError(ErrType.BAD_REQUEST, BadRequest.EPERM, `table feature property ${ptype}`);
          const ids: number[] = [];
          while (pr.left > 0) {
            if (width === 'hdr') {
              ids.push(pr.u16());
              if (pr.u16() !== 4) throw new OfError(ErrType.BAD_REQUEST, BadRequest.BAD_LEN, 'table feature id length');
            } else ids.push(width === 1 ? pr.u8() : pr.u32());
          }
          props.set(ptype, ids);
        }
        const lists = Object.fromEntries(TFP.map(([key, t]) => [key, props.get(t) ?? []]));
        tables.push({ tableId, name, maxEntries, ...lists } as unknown as TableFeatures);
      }
      return { type: 'table_features_reply', tables, more };
    }
    case OFPMP.PORT_DESC: {
      if (request) {
        if (version < OFP15_VERSION) return { type: 'port_desc_request', portNo: OFPP_NONE };
        const portNo = r.u32();
        r.skip(4);
        return { type: 'port_desc_request', portNo: portNo === OFPP_ANY ? OFPP_NONE : (port16(portNo) ?? 0) };
      }
      const ports: PhyPort[] = [];
      while (r.left > 0) ports.push(readPort11(r, version));
      return { type: 'port_desc_reply', ports };
    }
    default:
      throw new OfError(ErrType.BAD_REQUEST, BadRequest.BAD_STAT, `multipart type ${mtype}`);
  }
}

function readFlowStat11(r: Reader, version: number): FlowStat {
  const len = r.u16();
  const fixed = version >= OFP15_VERSION ? 24 : 48;
  if (len < fixed || len - 2 > r.left) throw new OfError(ErrType.BAD_REQUEST, BadRequest.BAD_LEN, `flow stats length ${len}`);
  const e = r.sub(len - 2);
  if (version >= OFP15_VERSION) {
    e.skip(2);
    const table = e.u8();
    e.skip(1);
    const priority = e.u16();
    const idleTimeout = e.u16();
    const hardTimeout = e.u16();
    const flags = e.u16();
    const importance = e.u16();
    const cookie = e.u64();
    const match = readOxmMatch(e, priority);
    const oxs = readOxs(e);
    const duration = oxs.get(OXS.DURATION) ?? 0n;
    const actions = readInstructions(e, e.left, match);
    return {
      table,
      durationSec: Number(duration >> 32n),
      durationNsec: Number(duration & 0xffffffffn),
      idleTimeout,
      hardTimeout,
      idleAge: Number((oxs.get(OXS.IDLE_TIME) ?? 0n) >> 32n),
      hardAge: 0,
      cookie,
      packets: oxs.get(OXS.PACKET_COUNT) ?? 0n,
      bytes: oxs.get(OXS.BYTE_COUNT) ?? 0n,
      flags,
      importance,
      match,
      actions,
    };
  }
  const table = e.u8();
  e.skip(1);
  const durationSec = e.u32();
  const durationNsec = e.u32();
  const priority = e.u16();
  const idleTimeout = e.u16();
  const hardTimeout = e.u16();
  const flags = e.u16();
  const importance = e.u16();
  e.skip(2);
  const cookie = e.u64();
  const packets = e.u64();
  const bytes = e.u64();
  const match = readOxmMatch(e, priority);
  const actions = readInstructions(e, e.left, match);
  return { table, durationSec, durationNsec, idleTimeout, hardTimeout, idleAge: 0, hardAge: 0, cookie, packets, bytes, flags, importance: version >= OFP14_VERSION ? importance : 0, match, actions };
}

function readPortStats11(r: Reader, version: number): PortStats {
  if (version >= OFP14_VERSION) {
    const len = r.u16();
    if (len < 80 || len - 2 > r.left) throw new OfError(ErrType.BAD_REQUEST, BadRequest.BAD_LEN, `port stats length ${len}`);
    const e = r.sub(len - 2);
    e.skip(2);
    const portNo = port16(e.u32()) ?? 0;
    const durationSec = e.u32();
    const durationNsec = e.u32();
    const [rxPackets, txPackets, rxBytes, txBytes, rxDropped, txDropped] = [e.u64(), e.u64(), e.u64(), e.u64(), e.u64(), e.u64()];
    e.skip(e.left);
    return { portNo, rxPackets, txPackets, rxBytes, txBytes, rxDropped, txDropped, durationSec, durationNsec };
  }
  const portNo = port16(r.u32()) ?? 0;
  r.skip(4);
  const [rxPackets, txPackets, rxBytes, txBytes, rxDropped, txDropped] = [r.u64(), r.u64(), r.u64(), r.u64(), r.u64(), r.u64()];
  r.skip(48);
  return { portNo, rxPackets, txPackets, rxBytes, txBytes, rxDropped, txDropped, durationSec: r.u32(), durationNsec: r.u32() };
}

export function flowModFlagBits(f: FlowMod['flags']): number {
  return (f.sendFlowRem ? FLAG.SEND_FLOW_REM : 0) | (f.checkOverlap ? FLAG.CHECK_OVERLAP : 0) | (f.resetCounts ? FLAG.RESET_COUNTS : 0) | (f.noPacketCounts ? FLAG.NO_PKT_COUNTS : 0) | (f.noByteCounts ? FLAG.NO_BYT_COUNTS : 0);
}

/** An NXM match padded to 8 bytes, with a cookie selection's NXM_NX_COOKIE_W when given. */
function writeNxmPadded(w: Writer, m: Match, sel?: { cookie: bigint; cookieMask: bigint }): number {
  const len = writeNxm(w, m) + (sel ? writeNxmCookie(w, sel.cookie, sel.cookieMask) : 0);
  w.zeros((8 - (len % 8)) % 8);
  return len;
}

/** Encodes a message in its `version`'s layout. OpenFlow 1.0 flow mods and flow stats always use NXM (a decoded `ofp_match` re-encodes as NXT_FLOW_MOD). */
export function encode(m: OfMessage): Uint8Array {
  const w = new Writer();
  const v = m.version;
  const of10 = v === OFP10_VERSION;
  const header = (type: number) => w.u8(v).u8(type).u16(0).u32(m.xid);
  const nxt = (subtype: number) => {
    header(OFPT.VENDOR);
    w.u32(NX_VENDOR).u32(subtype);
  };
  /** A stats (1.0) or multipart (1.1+) header of this type. */
  const stats = (request: boolean, stype: number, flags = 0) => {
    if (of10) header(request ? OFPT.STATS_REQUEST : OFPT.STATS_REPLY).u16(stype).u16(flags);
    else header(request ? OFPT11.MULTIPART_REQUEST : OFPT11.MULTIPART_REPLY).u16(stype).u16(flags).zeros(4);
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
      for (let i = 0; i < words; i++) w.u32(m.versions.reduce((acc, ver) => (Math.floor(ver / 32) === i ? acc | (1 << ver % 32) : acc), 0));
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
      header(of10 ? OFPT.BARRIER_REQUEST : OFPT11.BARRIER_REQUEST);
      break;
    case 'barrier_reply':
      header(of10 ? OFPT.BARRIER_REPLY : OFPT11.BARRIER_REPLY);
      break;
    case 'get_config_reply':
    case 'set_config':
      header(m.type === 'set_config' ? OFPT.SET_CONFIG : OFPT.GET_CONFIG_REPLY);
      w.u16(m.flags).u16(m.missSendLen);
      break;
    case 'features_reply':
      header(OFPT.FEATURES_REPLY);
      w.u64(m.datapathId).u32(m.nBuffers).u8(m.nTables).zeros(3).u32(m.capabilities);
      if (!of10) {
        // 1.1+: a reserved word, and the ports come from a port-desc request instead.
        w.u32(0);
        break;
      }
      w.u32(m.actions);
      for (const p of m.ports) writePhyPort10(w, p);
      break;
    case 'flow_mod': {
      const fm = m.flowMod;
      const table = fm.table ?? (fm.command === 'add' ? 0 : OFPTT_ALL);
      if (!of10) {
        header(OFPT.FLOW_MOD);
        w.u64(fm.cookie).u64(fm.command === 'add' ? 0n : fm.cookieMask).u8(table).u8(COMMANDS.indexOf(fm.command));
        w.u16(fm.idleTimeout).u16(fm.hardTimeout).u16(fm.match.priority).u32(m.bufferId).u32(fm.outPort === null ? OFPP_ANY : port32(fm.outPort)).u32(m.outGroup ?? OFPG_ANY);
        w.u16(flowModFlagBits(fm.flags)).u16(v >= OFP14_VERSION ? fm.importance : 0);
        writeOxmMatch(w, fm.match, v);
        writeInstructions(w, fm.actions, v, fm.match);
        break;
      }
      nxt(NXT.FLOW_MOD);
      const masked = fm.command !== 'add' && fm.cookieMask !== 0n;
      w.u64(masked ? 0n : fm.cookie).u16((table << 8) | COMMANDS.indexOf(fm.command));
      w.u16(fm.idleTimeout).u16(fm.hardTimeout).u16(fm.match.priority).u32(m.bufferId).u16(fm.outPort ?? OFPP_NONE).u16(flowModFlagBits(fm.flags));
      const lenAt = w.length;
      w.u16(0).zeros(6);
      w.setU16(lenAt, writeNxmPadded(w, fm.match, masked ? fm : undefined));
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
        if (!of10) {
          w.u8(t.tableId).zeros(3).u32(t.active).u64(t.lookups).u64(t.matched);
          continue;
        }
        w.u8(t.tableId).zeros(3);
        putStr(w, t.name, 32);
        w.u32(0x3fffff).u32(1_000_000).u32(t.active).u64(t.lookups).u64(t.matched);
      }
      break;
    case 'table_features_request':
      stats(true, OFPMP.TABLE_FEATURES);
      break;
    case 'table_features_reply':
      stats(false, OFPMP.TABLE_FEATURES, m.more ? 1 : 0);
      for (const t of m.tables) writeTableFeatures(w, t);
      break;
    case 'set_packet_in_format':
      nxt(NXT.SET_PACKET_IN_FORMAT);
      w.u32(['standard', 'nxt', 'nxt2'].indexOf(m.format));
      break;
    case 'packet_in':
      if (m.format === 'nxt2') {
        nxt(NXT.PACKET_IN2);
        putProp(w, NXPINT.PACKET, (p) => p.bytes(m.data));
        if (m.totalLen !== m.data.length) putProp(w, NXPINT.FULL_LEN, (p) => p.u32(m.totalLen));
        putProp(w, NXPINT.TABLE_ID, (p) => p.u8(m.tableId));
        putProp(w, NXPINT.COOKIE, (p) => p.zeros(4).u64(m.cookie));
        putProp(w, NXPINT.REASON, (p) => p.u8(m.reason));
        putProp(w, NXPINT.METADATA, (p) => writeNxm(p, m.match, of10 ? 0 : v));
        break;
      }
      header(OFPT.PACKET_IN);
      if (of10) w.u32(NO_BUFFER).u16(m.totalLen).u16(m.match.mask[Slot.IN_PORT] ? m.match.value[Slot.IN_PORT] : OFPP_NONE).u8(m.reason).zeros(1);
      else {
        w.u32(NO_BUFFER).u16(m.totalLen).u8(m.reason).u8(m.tableId).u64(m.cookie);
        writeOxmMatch(w, m.match, v);
        w.zeros(2);
      }
      w.bytes(m.data);
      break;
    case 'role_request':
    case 'role_reply': {
      const request = m.type === 'role_request';
      if (m.nicira) {
        nxt(request ? NXT.ROLE_REQUEST : NXT.ROLE_REPLY);
        w.u32(Math.max(0, NX_ROLES.indexOf(m.role)));
      } else {
        header(request ? OFPT11.ROLE_REQUEST : OFPT11.ROLE_REPLY);
        w.u32(OF_ROLES.indexOf(m.role)).zeros(4).u64(m.generationId ?? 0xffff_ffff_ffff_ffffn);
      }
      break;
    }
    case 'get_async_request':
      header(OFPT11.GET_ASYNC_REQUEST);
      break;
    case 'port_status':
      header(OFPT.PORT_STATUS);
      w.u8(m.reason).zeros(7);
      if (of10) writePhyPort10(w, m.port);
      else writePort11(w, m.port, v);
      break;
    case 'role_status':
      if (v >= OFP14_VERSION) header(OFPT14_ROLE_STATUS);
      else header(OFPT.VENDOR).u32(ONF_VENDOR).u32(ONFT.ROLE_STATUS);
      w.u32(OF_ROLES.indexOf(m.role)).u8(m.reason).zeros(3).u64(m.generationId);
      break;
    case 'set_async':
    case 'get_async_reply':
      if (m.nicira) nxt(NXT.SET_ASYNC_CONFIG);
      else header(m.type === 'set_async' ? OFPT11.SET_ASYNC : OFPT11.GET_ASYNC_REPLY);
      writeAsync(w, m.config, m.nicira ? OFP13_VERSION : v);
      break;
    case 'flow_removed':
      if (of10 && m.format === 'nxm') {
        nxt(NXT.FLOW_REMOVED);
        w.u64(m.cookie).u16(m.match.priority).u8(m.reason).u8(m.tableId + 1).u32(m.durationSec).u32(m.durationNsec).u16(m.idleTimeout);
        const lenAt = w.length;
        w.u16(0).u64(m.packets).u64(m.bytes);
        w.setU16(lenAt, writeNxmPadded(w, m.match));
      } else if (of10) {
        header(OFPT.FLOW_REMOVED);
        writeOf10Match(w, m.match);
        w.u64(m.cookie).u16(m.match.priority).u8(m.reason).zeros(1).u32(m.durationSec).u32(m.durationNsec).u16(m.idleTimeout).zeros(2).u64(m.packets).u64(m.bytes);
      } else if (v >= OFP15_VERSION) {
        header(OFPT.FLOW_REMOVED);
        w.u8(m.tableId).u8(m.reason).u16(m.match.priority).u16(m.idleTimeout).u16(m.hardTimeout).u64(m.cookie);
        writeOxmMatch(w, m.match, v);
        writeOxs(w, [
          [OXS.DURATION, (BigInt(m.durationSec) << 32n) | BigInt(m.durationNsec), 8],
          [OXS.PACKET_COUNT, m.packets, 8],
          [OXS.BYTE_COUNT, m.bytes, 8],
        ]);
      } else {
        header(OFPT.FLOW_REMOVED);
        w.u64(m.cookie).u16(m.match.priority).u8(m.reason).u8(m.tableId).u32(m.durationSec).u32(m.durationNsec).u16(m.idleTimeout).u16(m.hardTimeout).u64(m.packets).u64(m.bytes);
        writeOxmMatch(w, m.match, v);
      }
      break;
    case 'packet_out': {
      header(OFPT.PACKET_OUT);
      const lenAt = w.length + (v >= OFP15_VERSION ? 4 : of10 ? 6 : 8);
      if (of10) w.u32(m.bufferId).u16(m.inPort).u16(0);
      else if (v >= OFP15_VERSION) {
        w.u32(m.bufferId).u16(0).zeros(2);
        const inPort = newMatch(0);
        setMatchField(inPort, mustField('in_port'), BigInt(m.inPort), 0xffffn);
        writeOxmMatch(w, inPort, v);
      } else w.u32(m.bufferId).u32(port32(m.inPort)).u16(0).zeros(6);
      w.setU16(lenAt, writeActions(w, m.actions, v));
      w.bytes(m.data);
      break;
    }
    case 'bundle_control':
    case 'bundle_add': {
      const add = m.type === 'bundle_add';
      if (v >= OFP14_VERSION) header(add ? OFPT11.BUNDLE_ADD_MESSAGE : OFPT11.BUNDLE_CONTROL);
      else header(OFPT.VENDOR).u32(ONF_VENDOR).u32(add ? ONFT.BUNDLE_ADD_MESSAGE : ONFT.BUNDLE_CONTROL);
      if (m.type === 'bundle_control') w.u32(m.bundleId).u16(m.ctrl).u16(m.flags);
      else w.u32(m.bundleId).u16(0).u16(m.flags).bytes(encode(m.message));
      break;
    }
    case 'port_desc_request':
      stats(true, OFPST.PORT_DESC);
      if (v >= OFP15_VERSION) w.u32(m.portNo === OFPP_NONE ? OFPP_ANY : port32(m.portNo)).zeros(4);
      break;
    case 'port_desc_reply':
      stats(false, OFPST.PORT_DESC);
      for (const p of m.ports) {
        if (of10) writePhyPort10(w, p);
        else writePort11(w, p, v);
      }
      break;
    case 'port_stats_request':
      stats(true, OFPST.PORT);
      if (of10) w.u16(m.portNo).zeros(6);
      else w.u32(m.portNo === OFPP_NONE ? OFPP_ANY : port32(m.portNo)).zeros(4);
      break;
    case 'port_stats_reply':
      stats(false, OFPST.PORT);
      for (const p of m.ports) writePortStats(w, p, v);
      break;
    case 'flow_stats_request':
    case 'aggregate_request': {
      if (!of10) {
        stats(true, m.type === 'flow_stats_request' ? OFPMP.FLOW : OFPMP.AGGREGATE);
        w.u8(m.table ?? OFPTT_ALL).zeros(3).u32(m.outPort === null ? OFPP_ANY : port32(m.outPort)).u32(m.outGroup ?? OFPG_ANY).zeros(4).u64(m.cookie).u64(m.cookieMask);
        writeOxmMatch(w, m.match, v);
        break;
      }
      nxst(true, m.type === 'flow_stats_request' ? NXST.FLOW : NXST.AGGREGATE);
      w.u16(m.outPort ?? OFPP_NONE);
      const lenAt = w.length;
      w.u16(0).u8(m.table ?? 0xff).zeros(3);
      w.setU16(lenAt, writeNxmPadded(w, m.match, m));
      break;
    }
    case 'aggregate_reply':
      if (of10) nxst(false, NXST.AGGREGATE);
      else stats(false, OFPMP.AGGREGATE);
      if (v >= OFP15_VERSION)
        writeOxs(w, [
          [OXS.FLOW_COUNT, BigInt(m.flows), 4],
          [OXS.PACKET_COUNT, m.packets, 8],
          [OXS.BYTE_COUNT, m.bytes, 8],
        ]);
      else w.u64(m.packets).u64(m.bytes).u32(m.flows).zeros(4);
      break;
    case 'flow_stats_reply':
      if (of10) nxst(false, NXST.FLOW, m.more ? 1 : 0);
      else stats(false, OFPMP.FLOW, m.more ? 1 : 0);
      for (const f of m.flows) writeFlowStat(w, f, v);
      break;
  }
  const out = w.finish();
  out[2] = out.length >> 8;
  out[3] = out.length & 0xff;
  if (out.length > 0xffff) throw new OfError(ErrType.BAD_REQUEST, BadRequest.BAD_LEN, `message of ${out.length} bytes is too long`);
  return out;
}

/** What each of `nTables` tables takes (all alike): the instructions, actions and fields this codec carries; goto_table to any later table. */
export function tableFeatures(nTables: number, maxEntries: number): TableFeatures[] {
  const caps = oxmCapabilities();
  return Array.from({ length: nTables }, (_, tableId) => ({
    tableId,
    name: '',
    maxEntries,
    instructions: tableId === nTables - 1 ? SUPPORTED_INSTRUCTIONS.filter((i) => i !== 1) : SUPPORTED_INSTRUCTIONS,
    nextTables: Array.from({ length: nTables - tableId - 1 }, (_, i) => tableId + 1 + i),
    writeActions: [],
    applyActions: SUPPORTED_ACTIONS,
    match: caps.match,
    wildcards: caps.wildcards,
    writeSetfield: [],
    applySetfield: caps.setfield,
  }));
}

/** `ofp13_table_features` and its properties. */
export function writeTableFeatures(w: Writer, t: TableFeatures): void {
  const at = w.length;
  w.u16(0).u8(t.tableId).zeros(5);
  putStr(w, t.name, 32);
  // Any metadata bits may be matched and written; no config bits.
  w.u64(0xffff_ffff_ffff_ffffn).u64(0xffff_ffff_ffff_ffffn).u32(0).u32(t.maxEntries);
  for (const [key, ptype, width] of TFP) {
    const p = w.length;
    w.u16(ptype).u16(0);
    for (const id of t[key] as readonly number[]) {
      if (width === 'hdr') w.u16(id).u16(4);
      else if (width === 1) w.u8(id);
      else w.u32(id);
    }
    w.setU16(p + 2, w.length - p);
    w.pad(8, p);
  }
  w.setU16(at, w.length - at);
}

/** One port's counters: 1.0's `ofp_port_stats`, 1.3's (with duration), 1.4+'s (with an Ethernet property). */
function writePortStats(w: Writer, p: PortStats, v: number): void {
  const at = w.length;
  if (v === OFP10_VERSION) w.u16(p.portNo).zeros(6);
  else if (v === OFP13_VERSION) w.u32(port32(p.portNo)).zeros(4);
  else w.u16(0).zeros(2).u32(port32(p.portNo)).u32(p.durationSec).u32(p.durationNsec);
  w.u64(p.rxPackets).u64(p.txPackets).u64(p.rxBytes).u64(p.txBytes).u64(p.rxDropped).u64(p.txDropped);
  // Errors, frame, overrun, CRC, collisions: not counted by nvs, so all-ones ("unsupported").
  if (v >= OFP14_VERSION) {
    w.u64(UNSUPPORTED).u64(UNSUPPORTED).u16(0).u16(40).zeros(4);
    for (let i = 0; i < 4; i++) w.u64(UNSUPPORTED);
    w.setU16(at, w.length - at);
    return;
  }
  for (let i = 0; i < 6; i++) w.u64(UNSUPPORTED);
  if (v === OFP13_VERSION) w.u32(p.durationSec).u32(p.durationNsec);
}

/** One flow stats entry: NXST_FLOW's `nx_flow_stats` (1.0), `ofp11_flow_stats` (1.3, 1.4) or `ofp15_flow_desc` with OXS stats (1.5). */
export function writeFlowStat(w: Writer, f: FlowStat, version = OFP10_VERSION): void {
  const at = w.length;
  if (version >= OFP15_VERSION) {
    w.u16(0).zeros(2).u8(f.table).u8(0).u16(f.match.priority).u16(f.idleTimeout).u16(f.hardTimeout).u16(f.flags).u16(f.importance).u64(f.cookie);
    writeOxmMatch(w, f.match, version);
    writeOxs(w, [
      [OXS.DURATION, (BigInt(f.durationSec) << 32n) | BigInt(f.durationNsec), 8],
      [OXS.IDLE_TIME, BigInt(f.idleAge) << 32n, 8],
      [OXS.PACKET_COUNT, f.packets, 8],
      [OXS.BYTE_COUNT, f.bytes, 8],
    ]);
    writeInstructions(w, f.actions, version, f.match);
  } else if (version !== OFP10_VERSION) {
    w.u16(0).u8(f.table).u8(0).u32(f.durationSec).u32(f.durationNsec).u16(f.match.priority).u16(f.idleTimeout).u16(f.hardTimeout);
    w.u16(f.flags).u16(version >= OFP14_VERSION ? f.importance : 0).zeros(2).u64(f.cookie).u64(f.packets).u64(f.bytes);
    writeOxmMatch(w, f.match, version);
    writeInstructions(w, f.actions, version, f.match);
  } else {
    w.u16(0).u8(f.table).u8(0).u32(f.durationSec).u32(f.durationNsec).u16(f.match.priority).u16(f.idleTimeout).u16(f.hardTimeout);
    const lenAt = w.length;
    w.u16(0).u16(f.idleAge + 1).u16(f.hardAge + 1).u64(f.cookie).u64(f.packets).u64(f.bytes);
    w.setU16(lenAt, writeNxmPadded(w, f.match));
    writeActions(w, f.actions);
  }
  w.setU16(at, w.length - at);
}
