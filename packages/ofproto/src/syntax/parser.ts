/**
 * The rule-file parser: ovs-ofctl `add-flow`/`add-flows` lines to `FlowMod`s.
 *
 * A line is `[keywords and match fields], actions=<action list>` with items
 * separated by commas or blanks (see scanner.ts). `#` starts a comment;
 * blank lines are skipped. `parseFlows` parses a whole file and returns
 * every rule or throws the first error: nothing partial ever escapes.
 *
 * What is accepted, and what a line means, follows ovs-ofctl (the oracle
 * test compares the two line by line), including its normalisations: a
 * match field whose prerequisites are not met is dropped (`tp_src=80`
 * without `tcp`), later fields override earlier ones, `dl_vlan=4096` keeps
 * the low 12 bits. Deliberate differences are listed in
 * test/flows/stricter.txt.
 *
 * `dialect` says which OpenFlow version the rules must be expressible in
 * ('of10': OpenFlow 1.0 with Nicira extensions, ovs-ofctl's default;
 * 'of13': `-O OpenFlow13`); a few actions exist only in one of them, and
 * in 'of13' a VLAN match keeps only what OXM can say (see vlanAsOxm).
 */

import type { Action, ControllerReason, LearnAction, LearnSpec, SetFieldAction } from '../actions.ts';
import {
  EthType,
  FRAG_LATER,
  type Field,
  type FieldRange,
  fieldByName,
  IpProto,
  mustField,
  OFPP,
  Slot,
  VLAN_CFI,
} from '../fields.ts';
import { type FlowMod, type FlowModCommand, type FlowModFlags, NO_FLAGS } from '../flow-mod.ts';
import { DEFAULT_PRIORITY, type Match, MatchArena, newMatch, setMatchField } from '../match.ts';
import { RuleSyntaxError, RuleUnsupportedError } from './errors.ts';
import { KvScanner, LineSource, splitArgs } from './scanner.ts';
import {
  parseIpv4Masked,
  parseIpv6Masked,
  parseMac,
  parseUint,
  parseUintN,
  TCP_FLAG_NAMES,
  ValueError,
} from './values.ts';

/** The OpenFlow version rules are checked against (see the module comment). */
export type Dialect = 'of10' | 'of13';

/** Options of `parseFlow` / `parseFlows`. */
export interface ParseOptions {
  /** Name used in error messages; default `<input>`. */
  readonly file?: string;
  /** What the lines are for; default 'add' (decides e.g. whether `cookie=V/M` is allowed). */
  readonly command?: FlowModCommand;
  /** Default 'of10'. */
  readonly dialect?: Dialect;
  /** Resolves a port name (`in_port=eth0`, `output:eth0`); undefined = unknown. */
  readonly portByName?: (name: string) => number | undefined;
}

/** Parses every rule of a rule file; throws the first error (nothing is returned then). */
export function parseFlows(text: string, opts: ParseOptions = {}): FlowMod[] {
  const out: FlowMod[] = [];
  const file = opts.file ?? '<input>';
  const ctx = newCtx(new LineSource(text, file, 1), opts, new MatchArena());
  let lineNo = 0;
  let at = 0;
  while (at <= text.length) {
    let nl = text.indexOf('\n', at);
    if (nl < 0) nl = text.length;
    lineNo++;
    ctx.src.moveTo(lineNo, at, nl);
    const fm = parseLine(ctx);
    at = nl + 1;
    if (fm) out.push(fm);
    if (nl === text.length) break;
  }
  return out;
}

/** Parses one rule (comments allowed); throws if the line is blank or invalid. */
export function parseFlow(line: string, opts: ParseOptions = {}): FlowMod {
  const src = new LineSource(line, opts.file ?? '<input>', 1);
  const fm = parseLine(newCtx(src, opts, null));
  if (!fm) throw src.error(0, 'expected a rule, got an empty line');
  return fm;
}

/** Reserved port names accepted wherever a port is (case-insensitive). */
const RESERVED_PORTS: ReadonlyMap<string, number> = new Map([
  ['in_port', OFPP.IN_PORT],
  ['table', OFPP.TABLE],
  ['normal', OFPP.NORMAL],
  ['flood', OFPP.FLOOD],
  ['all', OFPP.ALL],
  ['controller', OFPP.CONTROLLER],
  ['local', OFPP.LOCAL],
  ['none', OFPP.NONE],
  ['any', OFPP.NONE],
]);

/** `ip`, `tcp`, … : dl_type and (optionally) nw_proto. */
const SHORTHANDS: ReadonlyMap<string, readonly [number, number | null]> = new Map([
  ['ip', [EthType.IP, null]],
  ['ipv4', [EthType.IP, null]],
  ['icmp', [EthType.IP, IpProto.ICMP]],
  ['tcp', [EthType.IP, IpProto.TCP]],
  ['udp', [EthType.IP, IpProto.UDP]],
  ['sctp', [EthType.IP, IpProto.SCTP]],
  ['ipv6', [EthType.IPV6, null]],
  ['icmp6', [EthType.IPV6, IpProto.ICMPV6]],
  ['tcp6', [EthType.IPV6, IpProto.TCP]],
  ['udp6', [EthType.IPV6, IpProto.UDP]],
  ['sctp6', [EthType.IPV6, IpProto.SCTP]],
  ['arp', [EthType.ARP, null]],
  ['rarp', [EthType.RARP, null]],
]);

/** Real OVS actions nvs does not implement yet: a clear "not supported" error. */
const UNSUPPORTED_ACTIONS = new Set([
  'ct', 'ct_clear', 'nat', 'group', 'meter', 'enqueue', 'set_queue', 'pop_queue',
  'push_mpls', 'pop_mpls', 'set_mpls_label', 'set_mpls_tc', 'set_mpls_ttl', 'dec_mpls_ttl',
  'set_tunnel', 'set_tunnel64', 'fin_timeout', 'multipath', 'bundle', 'bundle_load', 'sample',
  'exit', 'clone', 'check_pkt_larger', 'encap', 'decap', 'dec_nsh_ttl', 'clear_actions',
  'write_actions', 'push', 'pop', 'debug_recirc', 'debug_slow', 'delete_field',
]);

/** Real OVS match fields and protocols nvs does not implement yet. */
const UNSUPPORTED_FIELDS = new Set([
  'ct_state', 'ct_zone', 'ct_mark', 'ct_label', 'ct_nw_src', 'ct_nw_dst', 'ct_nw_proto', 'ct_tp_src',
  'ct_tp_dst', 'ct_ipv6_src', 'ct_ipv6_dst', 'pkt_mark', 'skb_priority', 'recirc_id', 'dp_hash',
  'actset_output', 'packet_type', 'mpls', 'mplsm', 'mpls_label', 'mpls_tc', 'mpls_bos', 'mpls_ttl',
  'tun_flags', 'tun_gbp_id', 'tun_gbp_flags', 'tun_ipv6_src', 'tun_ipv6_dst', 'tun_tos', 'tun_ttl',
  'dl_vlan1', 'vlan_tci1', 'vlan_vid1', 'vlan_pcp1', 'in_port_oxm', 'xreg0', 'xxreg0', 'nsh_spi', 'nsh_si',
  'tun_metadata0', 'tun_erspan_ver', 'ipv6_exthdr', 'out_group',
]);

/** Names a `set_field`/`load`/`move` target may use beyond the registry's own. */
const ACTION_FIELD_ALIASES: ReadonlyMap<string, string> = new Map([
  ['tp_src', 'tcp_src'],
  ['tp_dst', 'tcp_dst'],
]);

/** Parsing state: one per file (or per single line); `src` moves from line to line. */
interface LineCtx {
  readonly src: LineSource;
  readonly opts: ParseOptions;
  readonly dialect: Dialect;
  readonly command: FlowModCommand;
  /** Where matches are allocated when parsing many lines; null = one at a time. */
  readonly arena: MatchArena | null;
  readonly finders: Finders;
  /** Reused for the match part and the action list (never both at once). */
  readonly scanner: KvScanner;
}

/**
 * `text.indexOf(needle, from)` limited to matches that end by `end`; -1 if
 * none. Remembers the last hit past `end`, so scanning a whole file line by
 * line for a needle most lines lack stays linear.
 */
class Finder {
  private hit = -1;
  private from = Infinity;

  constructor(
    private readonly text: string,
    private readonly needle: string,
  ) {}

  find(from: number, end: number): number {
    if (from < this.from || (this.hit >= 0 && this.hit < from)) {
      this.from = from;
      this.hit = this.text.indexOf(this.needle, from);
    }
    return this.hit >= 0 && this.hit + this.needle.length <= end ? this.hit : -1;
  }
}

function isBlank(c: number): boolean {
  return c === 32 || c === 9 || c === 13 || c === 10 || c === 11 || c === 12;
}

interface Finders {
  readonly hash: Finder;
  readonly action: Finder;
}

/** One parsing context per file (or per single line), reused line after line. */
function newCtx(src: LineSource, opts: ParseOptions, arena: MatchArena | null): LineCtx {
  return {
    src,
    opts,
    dialect: opts.dialect ?? 'of10',
    command: opts.command ?? 'add',
    arena,
    finders: { hash: new Finder(src.text, '#'), action: new Finder(src.text, 'action') },
    scanner: new KvScanner(src, 0, 0),
  };
}

function parseLine(ctx: LineCtx): FlowMod | null {
  const { src, finders } = ctx;
  const text = src.text;
  // Searches stay within the line: `text` may be a whole file.
  const hash = finders.hash.find(src.start, src.end);
  let end = hash >= 0 ? hash : src.end;
  let start = src.start;
  while (end > start && isBlank(text.charCodeAt(end - 1))) end--;
  while (start < end && isBlank(text.charCodeAt(start))) start++;
  if (start >= end) return null;
  const isDelete = ctx.command === 'delete' || ctx.command === 'delete_strict';

  // Like ovs-ofctl, the action list is everything after the first "action…=".
  const actAt = finders.action.find(start, end);
  let matchEnd = end;
  let actionsAt = -1;
  if (actAt >= 0) {
    const eq = text.indexOf('=', actAt);
    if (eq < 0 || eq >= end) throw src.error(actAt, "expected '=' after 'actions' (write actions=<action list>)");
    matchEnd = actAt;
    actionsAt = eq + 1;
  } else if (!isDelete) {
    throw src.error(end, "expected 'actions=' (every rule needs an action list; use actions=drop to drop)");
  }
  if (isDelete && actionsAt >= 0) throw src.error(actAt, `'actions' is not allowed when deleting rules`);

  const st = parseMatchPart(ctx, start, matchEnd);
  const actions = actionsAt >= 0 ? parseActions(ctx, actionsAt, end, st.match, st.table) : [];
  return {
    command: ctx.command,
    table: st.table,
    match: st.match,
    cookie: st.cookie,
    cookieMask: st.cookieMask,
    idleTimeout: st.idleTimeout,
    hardTimeout: st.hardTimeout,
    importance: st.importance,
    flags: st.flags,
    outPort: st.outPort,
    actions,
  };
}

interface MatchPart {
  match: Match;
  table: number | null;
  cookie: bigint;
  cookieMask: bigint;
  idleTimeout: number;
  hardTimeout: number;
  importance: number;
  flags: FlowModFlags;
  outPort: number | null;
}

function parseMatchPart(ctx: LineCtx, start: number, end: number): MatchPart {
  const { src } = ctx;
  const match = ctx.arena ? ctx.arena.newMatch(DEFAULT_PRIORITY) : newMatch(DEFAULT_PRIORITY);
  const r: MatchPart = {
    match,
    table: null,
    cookie: 0n,
    cookieMask: 0n,
    idleTimeout: 0,
    hardTimeout: 0,
    importance: 0,
    flags: NO_FLAGS,
    outPort: null,
  };
  const sc = ctx.scanner.reset(start, end);
  while (sc.next()) {
    const key = sc.key;
    const sh = SHORTHANDS.get(key);
    if (sh) {
      setExact(match, Slot.DL_TYPE, sh[0], 0xffff);
      if (sh[1] !== null) setExact(match, Slot.NW_PROTO, sh[1], 0xff);
      continue;
    }
    if (KEYWORDS.has(key)) {
      parseKeyword(ctx, sc, r);
      continue;
    }
    if (UNSUPPORTED_FIELDS.has(key)) {
      throw new RuleUnsupportedError(src.pos(sc.keyAt), `match field '${key}' is not supported yet`);
    }
    const f = fieldByName(key);
    // NXM/OXM names are for actions; ovs-ofctl rejects them in a match.
    if (!f || key.startsWith('NXM_') || key.startsWith('OXM_')) {
      throw src.error(sc.keyAt, `unknown field or keyword '${key}' (expected a match field such as nw_dst, a protocol such as tcp, or priority, table, cookie, actions, …)`);
    }
    if (sc.delim === '') throw src.error(sc.keyAt, `expected '=' and a value after field '${key}'`);
    try {
      // ovs-ofctl reads an empty value as "0/0" (a wildcard where that parses).
      setFieldFromText(ctx, match, f, sc.value === '' ? '0/0' : sc.value, sc.valueAt);
    } catch (e) {
      throw wrap(ctx, sc.valueAt, e);
    }
  }
  const fl = r.flags;
  if (ctx.dialect === 'of10' && (fl.resetCounts || fl.noPacketCounts || fl.noByteCounts)) {
    throw src.error(start, 'reset_counts, no_packet_counts and no_byte_counts need OpenFlow 1.3 or later');
  }
  if (match.mask[Slot.IPV6_LABEL] && match.value[Slot.DL_TYPE] === EthType.IP && match.mask[Slot.DL_TYPE]) {
    // ovs-ofctl keeps the label for IPv4 and then fails to decode its own message.
    throw src.error(start, 'ipv6_label needs an IPv6 match (ipv6, tcp6, …), not ip');
  }
  normalizeMatch(match);
  if (ctx.dialect === 'of13') vlanAsOxm(ctx, match, start);
  const proto = match.mask[Slot.NW_PROTO] ? match.value[Slot.NW_PROTO] : -1;
  const later = match.mask[Slot.NW_FRAG] & match.value[Slot.NW_FRAG] & FRAG_LATER;
  if (later && (proto === IpProto.TCP || proto === IpProto.UDP || proto === IpProto.SCTP)) {
    if (match.mask[Slot.TP_SRC] || match.mask[Slot.TP_DST] || match.mask[Slot.TCP_FLAGS]) {
      // Later fragments carry no transport header; ovs-ofctl emits a message it cannot decode.
      throw src.error(start, 'nw_frag=later fragments have no transport header: drop tp_src/tp_dst/tcp_flags or match nw_frag=first');
    }
  }
  return r;
}

/** Rule keywords of the match part (everything that is not a field or a shorthand). */
const KEYWORDS = new Set([
  'table', 'priority', 'idle_timeout', 'hard_timeout', 'importance', 'cookie', 'out_port', 'send_flow_rem',
  'check_overlap', 'reset_counts', 'no_packet_counts', 'no_byte_counts',
]);

const FLAG_OF: Readonly<Record<string, keyof FlowModFlags>> = {
  send_flow_rem: 'sendFlowRem',
  check_overlap: 'checkOverlap',
  reset_counts: 'resetCounts',
  no_packet_counts: 'noPacketCounts',
  no_byte_counts: 'noByteCounts',
};

/** One rule keyword (`table=`, `priority=`, `cookie=`, a flag, …) into `r`. */
function parseKeyword(ctx: LineCtx, sc: KvScanner, r: MatchPart): void {
  const { src } = ctx;
  const key = sc.key;
  const flag = FLAG_OF[key];
  if (flag) {
    r.flags = { ...r.flags, [flag]: true };
    return;
  }
  if (key === 'out_port' && ctx.command !== 'delete' && ctx.command !== 'delete_strict') {
    throw src.error(sc.keyAt, "'out_port' only selects rules to delete; it is not allowed when adding or modifying");
  }
  if (sc.delim === '') throw src.error(sc.keyAt, `expected a value after '${key}='`);
  const value = sc.value;
  try {
    switch (key) {
      case 'table': {
        const t = parseUintN(value, 8, 'table');
        r.table = t === 255 ? null : t;
        return;
      }
      case 'priority':
        r.match.priority = parseUintN(value, 16, 'priority');
        return;
      case 'idle_timeout':
        r.idleTimeout = parseUintN(value, 16, 'idle_timeout');
        return;
      case 'hard_timeout':
        r.hardTimeout = parseUintN(value, 16, 'hard_timeout');
        return;
      case 'importance':
        r.importance = parseUintN(value, 16, 'importance');
        return;
      case 'out_port':
        r.outPort = parsePort(ctx, value, sc.valueAt);
        return;
      case 'cookie': {
        const slash = value.indexOf('/');
        r.cookie = parseU64(slash < 0 ? value : value.slice(0, slash), 'cookie');
        if (slash < 0) {
          if (r.cookie === ALL_ONES_64) {
            // OpenFlow reserves this value; ovs-ofctl silently drops it.
            throw src.error(sc.valueAt, 'cookie 0xffffffffffffffff is reserved by OpenFlow; choose another cookie');
          }
          return;
        }
        if (ctx.command === 'add') {
          throw src.error(sc.valueAt + slash, 'a cookie mask (cookie=V/M) only selects rules to modify or delete; adding a rule takes a plain cookie');
        }
        r.cookieMask = parseU64(value.slice(slash + 1), 'cookie mask');
        return;
      }
    }
  } catch (e) {
    throw wrap(ctx, sc.valueAt, e);
  }
}

/** Converts a `ValueError` (no position) into a positioned syntax error. */
function wrap(ctx: LineCtx, at: number, e: unknown): Error {
  if (e instanceof ValueError) return ctx.src.error(at, e.message);
  return e as Error;
}

const ALL_ONES_64 = (1n << 64n) - 1n;

function parseU64(text: string, what: string): bigint {
  const v = parseUint(text);
  if (v >= 1n << 64n) throw new ValueError(`${what} '${text}' does not fit in 64 bits`);
  return v;
}

/** Matches a whole one-word field exactly (mask = the field's width). */
function setExact(m: Match, slot: number, v: number, mask: number): void {
  m.value[slot] = v;
  m.mask[slot] = mask;
}

/** Parses a match value in the field's notation and stores it (with ovs-ofctl's quirks). */
function setFieldFromText(ctx: LineCtx, m: Match, f: Field, text: string, at: number): void {
  if (f.format === 'port') {
    if (text.includes('/')) throw new ValueError(`field '${f.name}' cannot be masked`);
    setExact(m, Slot.IN_PORT, parsePort(ctx, text, at), 0xffff);
    return;
  }
  if (f.format === 'ipv4') {
    // Fast path (the common case in big rule files): no bigint arithmetic.
    const r = parseIpv4Masked(text);
    if (!f.maskable && r.mask !== 0xffffffff) throw new ValueError(`field '${f.name}' cannot be masked`);
    m.mask[f.slot] = r.mask >>> 0;
    m.value[f.slot] = (r.value & r.mask) >>> 0;
    return;
  }
  let { value, mask } = parseValueMask(f, text);
  const bytes = Math.ceil(f.bits / 8);
  if (value >= 1n << BigInt(bytes * 8)) {
    throw new ValueError(`value '${text}' is too large for ${bytes}-byte field ${f.name}`);
  }
  if (f.bits === 20 && value >= 1n << 20n) throw new ValueError(`value '${text}' is too large for 20-bit field ${f.name}`);
  // VLAN views: OpenFlow 1.0 semantics, where matching a VID or PCP implies a tag is present.
  if (f.name === 'dl_vlan') {
    const vid = Number(value);
    if (vid === 0xffff) {
      m.value[Slot.VLAN_TCI] = 0;
      m.mask[Slot.VLAN_TCI] = 0xffff;
    } else {
      m.value[Slot.VLAN_TCI] = (m.value[Slot.VLAN_TCI] & ~0x0fff) | (vid & 0xfff) | VLAN_CFI;
      m.mask[Slot.VLAN_TCI] |= 0x1fff;
    }
    return;
  }
  if (f.name === 'dl_vlan_pcp' || f.name === 'vlan_pcp') {
    const pcp = Number(value) & 7;
    m.value[Slot.VLAN_TCI] = (m.value[Slot.VLAN_TCI] & ~0xe000) | (pcp << 13) | VLAN_CFI;
    m.mask[Slot.VLAN_TCI] |= 0xf000;
    return;
  }
  if (f.words > 1) {
    setMatchField(m, f, value, mask);
    return;
  }
  if (f.slot === Slot.NW_PROTO) {
    // arp_op is 16 bits in OpenFlow, but the flow keeps its low byte where nw_proto lives
    // (normalizeMatch then settles the mask's width by dl_type).
    m.value[f.slot] = Number(value & 0xffn);
    m.mask[f.slot] = 0xff;
    return;
  }
  if (f.slot === Slot.TP_SRC || f.slot === Slot.TP_DST) {
    // ICMP type/code are 8-bit views of the 16-bit port slots; ovs-ofctl matches the whole slot.
    m.value[f.slot] = Number(value & mask);
    m.mask[f.slot] = f.bits === 8 ? 0xffff : Number(mask);
    return;
  }
  // Touch only the field's usable bits: nw_tos and nw_ecn share one byte.
  const region = (Number(f.usable) << f.shift) >>> 0;
  const v = (Number(value & f.usable) << f.shift) >>> 0;
  const k = (Number(mask & f.usable) << f.shift) >>> 0;
  m.mask[f.slot] = ((m.mask[f.slot] & ~region) | k) >>> 0;
  m.value[f.slot] = ((m.value[f.slot] & ~region) | (v & k)) >>> 0;
}

/** `value[/mask]` in the field's notation; mask defaults to all ones. */
function parseValueMask(f: Field, text: string): { value: bigint; mask: bigint } {
  const all = (1n << BigInt(f.bits)) - 1n;
  switch (f.format) {
    case 'ipv4': {
      const r = parseIpv4Masked(text);
      if (!f.maskable && r.mask !== 0xffffffff) throw new ValueError(`field '${f.name}' cannot be masked`);
      return { value: BigInt((r.value & r.mask) >>> 0), mask: BigInt(r.mask >>> 0) };
    }
    case 'ipv6': {
      const r = parseIpv6Masked(text);
      return { value: r.value & r.mask, mask: r.mask };
    }
    case 'mac': {
      const slash = text.indexOf('/');
      const value = parseMac(slash < 0 ? text : text.slice(0, slash));
      const mask = slash < 0 ? all : parseMac(text.slice(slash + 1));
      return { value: value & mask, mask };
    }
    case 'frag':
      return parseFrag(text);
    case 'tcp_flags':
      return parseTcpFlags(text);
    default: {
      const slash = text.indexOf('/');
      const value = parseUint(slash < 0 ? text : text.slice(0, slash));
      if (slash < 0) return { value, mask: all };
      if (!f.maskable) throw new ValueError(`field '${f.name}' cannot be masked ('${text}')`);
      const mask = parseUint(text.slice(slash + 1));
      const bytes = Math.ceil(f.bits / 8);
      if (mask >= 1n << BigInt(bytes * 8)) throw new ValueError(`mask '${text}' is too large for ${bytes}-byte field ${f.name}`);
      return { value: value & mask, mask };
    }
  }
}

const FRAG: ReadonlyMap<string, readonly [bigint, bigint]> = new Map([
  ['no', [0n, 1n]],
  ['yes', [1n, 1n]],
  ['first', [1n, 3n]],
  ['later', [3n, 3n]],
  ['not_later', [0n, 2n]],
]);

function parseFrag(text: string): { value: bigint; mask: bigint } {
  const v = FRAG.get(text);
  if (!v) throw new ValueError(`'${text}' is not a fragment type (expected no, yes, first, later or not_later)`);
  return { value: v[0], mask: v[1] };
}

/** `+syn-ack` (flags that must be set / clear), `syn|ack` (exactly these), or `0x12[/0xfff]`. */
function parseTcpFlags(text: string): { value: bigint; mask: bigint } {
  const all = 0xfffn;
  const bit = (name: string): bigint => {
    const i = (TCP_FLAG_NAMES as readonly string[]).indexOf(name);
    if (i < 0) throw new ValueError(`'${name}' is not a TCP flag (expected ${TCP_FLAG_NAMES.join(', ')})`);
    return 1n << BigInt(i);
  };
  if (/^[0-9]/.test(text)) {
    const slash = text.indexOf('/');
    const value = parseUint(slash < 0 ? text : text.slice(0, slash));
    const mask = slash < 0 ? all : parseUint(text.slice(slash + 1));
    if (value > all || mask > all) throw new ValueError(`'${text}': TCP flags are 12 bits`);
    return { value: value & mask, mask };
  }
  if (text.startsWith('+') || text.startsWith('-')) {
    let value = 0n;
    let mask = 0n;
    const re = /([+-])([a-z]*)/gy;
    let m: RegExpExecArray | null;
    let consumed = 0;
    while ((m = re.exec(text)) !== null && m[0] !== '') {
      const b = bit(m[2]);
      if (mask & b) throw new ValueError(`TCP flag '${m[2]}' is given twice in '${text}'`);
      mask |= b;
      if (m[1] === '+') value |= b;
      consumed = re.lastIndex;
    }
    if (consumed !== text.length) throw new ValueError(`'${text}' is not a TCP flags match (expected e.g. +syn-ack)`);
    return { value, mask };
  }
  let value = 0n;
  for (const name of text.split('|')) value |= bit(name);
  return { value, mask: all };
}

/** A port number (decimal) or a reserved/resolved port name. */
function parsePort(ctx: LineCtx, text: string, at: number): number {
  if (/^[0-9]+$/.test(text)) {
    const n = Number(text);
    if (n <= 0xffff) return n;
    throw ctx.src.error(at, `port '${text}' is out of range (max 65535)`);
  }
  const reserved = RESERVED_PORTS.get(text.toLowerCase());
  if (reserved !== undefined) return reserved;
  const named = ctx.opts.portByName?.(text);
  if (named !== undefined) return named;
  throw ctx.src.error(at, `unknown port '${text}' (expected a port number, a port name, or LOCAL, IN_PORT, CONTROLLER, …)`);
}

/**
 * What an OpenFlow 1.3 (OXM) match keeps of vlan_tci: the VID and
 * tag-present bits as VLAN_VID, and the PCP (exactly) only alongside a
 * nonzero VLAN_VID, which must then say "tag present" — otherwise ovs-ofctl
 * produces a message it cannot decode, so we refuse the rule.
 */
function vlanAsOxm(ctx: LineCtx, m: Match, at: number): void {
  const v = m.value[Slot.VLAN_TCI];
  const k = m.mask[Slot.VLAN_TCI];
  const vid = v & 0x1fff;
  let outV = vid;
  let outK = k & 0x1fff;
  if (vid && k & 0xe000) {
    if (!(vid & VLAN_CFI)) {
      throw ctx.src.error(at, 'in OpenFlow 1.3 a VLAN PCP match needs the tag-present bit (0x1000) in vlan_tci');
    }
    outV |= v & 0xe000;
    outK |= 0xe000;
  }
  m.value[Slot.VLAN_TCI] = outV;
  m.mask[Slot.VLAN_TCI] = outK;
}

function zapSlots(m: Match, slot: number, words: number): void {
  for (let i = 0; i < words; i++) {
    m.value[slot + i] = 0;
    m.mask[slot + i] = 0;
  }
}

/**
 * Drops match bits whose prerequisites are not met, the way ovs-ofctl
 * normalises a match: each storage slot is meaningful only for some
 * packet types (ports only for TCP/UDP/SCTP/ICMP, ARP addresses only for
 * ARP, …). Shared slots (nw_src/arp_spa) are judged by their union.
 */
function normalizeMatch(m: Match): void {
  const dlType = m.mask[Slot.DL_TYPE] ? m.value[Slot.DL_TYPE] : -1;
  const proto = m.mask[Slot.NW_PROTO] ? m.value[Slot.NW_PROTO] : -1;
  const isIp4 = dlType === EthType.IP;
  const isIp6 = dlType === EthType.IPV6;
  const isIp = isIp4 || isIp6;
  const isArp = dlType === EthType.ARP || dlType === EthType.RARP;
  const l4 = isIp && (proto === IpProto.TCP || proto === IpProto.UDP || proto === IpProto.SCTP);
  const icmp4 = isIp4 && proto === IpProto.ICMP;
  const icmp6 = isIp6 && proto === IpProto.ICMPV6;
  const icmpType = icmp6 && m.mask[Slot.TP_SRC] === 0xffff ? m.value[Slot.TP_SRC] : -1;
  if (!isIp4 && !isArp) zapSlots(m, Slot.NW_SRC, 1), zapSlots(m, Slot.NW_DST, 1);
  if (!isIp && !isArp) zapSlots(m, Slot.NW_PROTO, 1);
  // One canonical mask per meaning of the slot: the 16-bit arp_op for ARP, the 8-bit nw_proto for IP.
  else if (m.mask[Slot.NW_PROTO]) m.mask[Slot.NW_PROTO] = isArp ? 0xffff : 0xff;
  if (!isIp) zapSlots(m, Slot.NW_TOS, 1), zapSlots(m, Slot.NW_TTL, 1), zapSlots(m, Slot.NW_FRAG, 1);
  if (!l4 && !icmp4 && !icmp6) zapSlots(m, Slot.TP_SRC, 1), zapSlots(m, Slot.TP_DST, 1);
  if (!(isIp && proto === IpProto.TCP)) zapSlots(m, Slot.TCP_FLAGS, 1);
  if (!isArp && icmpType !== 135) zapSlots(m, Slot.ARP_SHA, 2);
  if (!isArp && icmpType !== 136) zapSlots(m, Slot.ARP_THA, 2);
  if (!isIp6) zapSlots(m, Slot.IPV6_SRC, 4), zapSlots(m, Slot.IPV6_DST, 4), zapSlots(m, Slot.IPV6_LABEL, 1);
  if (icmpType !== 135 && icmpType !== 136) zapSlots(m, Slot.ND_TARGET, 4);
}

// ---------------------------------------------------------------------------
// Actions

function parseActions(ctx: LineCtx, start: number, end: number, match: Match, table: number | null): Action[] {
  const { src } = ctx;
  const out: Action[] = [];
  let sawDrop = -1;
  const sc = ctx.scanner.reset(start, end);
  while (sc.next()) {
    const key = sc.key;
    const name = key.toLowerCase();
    const at = sc.keyAt;
    const v = sc.value;
    const hasValue = sc.delim !== '';
    try {
      switch (name) {
        case 'drop':
          sawDrop = at;
          continue;
        case 'output':
          out.push(parseOutput(ctx, needValue(sc), sc.valueAt, sc.delim === '('));
          continue;
        case 'controller':
          out.push(parseController(ctx, hasValue ? v : null, sc.valueAt, sc.delim === '('));
          continue;
        case 'mod_vlan_vid':
        case 'set_vlan_vid': {
          const vid = parseUintN(needValue(sc), 16, 'VLAN VID');
          if (vid > 4095) throw src.error(sc.valueAt, `'${v}' is not a valid VLAN VID (0 to 4095)`);
          out.push({ type: 'set_vlan_vid', vid, pushIfNeeded: true });
          continue;
        }
        case 'mod_vlan_pcp':
        case 'set_vlan_pcp': {
          const pcp = parseUintN(needValue(sc), 8, 'VLAN PCP');
          if (pcp > 7) throw src.error(sc.valueAt, `'${v}' is not a valid VLAN PCP (0 to 7)`);
          out.push({ type: 'set_vlan_pcp', pcp, pushIfNeeded: true });
          continue;
        }
        case 'strip_vlan':
        case 'pop_vlan':
          out.push({ type: 'pop_vlan' });
          continue;
        case 'push_vlan': {
          const et = parseUintN(needValue(sc), 16, 'ethertype');
          if (et !== EthType.VLAN && et !== EthType.VLAN_8021AD) {
            throw src.error(sc.valueAt, `'${v}' is not a VLAN ethertype (expected 0x8100 or 0x88a8)`);
          }
          out.push({ type: 'push_vlan', ethertype: et });
          continue;
        }
        case 'mod_dl_src':
        case 'mod_dl_dst':
        case 'mod_nw_src':
        case 'mod_nw_dst':
        case 'mod_tp_src':
        case 'mod_tp_dst':
        case 'mod_nw_ttl':
        case 'mod_nw_ecn':
        case 'mod_nw_tos':
          out.push(parseMod(ctx, name, needValue(sc), sc.valueAt, match));
          continue;
        case 'dec_ttl':
          out.push(parseDecTtl(ctx, hasValue ? v : null, sc.valueAt));
          continue;
        case 'set_field':
          out.push(parseSetField(ctx, needValue(sc), sc.valueAt));
          continue;
        case 'load':
          out.push(parseLoad(ctx, needValue(sc), sc.valueAt));
          continue;
        case 'move':
          out.push(parseMove(ctx, needValue(sc), sc.valueAt));
          continue;
        case 'resubmit':
          out.push(parseResubmit(ctx, needValue(sc), sc.valueAt, sc.delim === '('));
          continue;
        case 'goto_table': {
          const table = parseUintN(needValue(sc), 8, 'table');
          if (table > 254) throw src.error(sc.valueAt, `goto_table:${v}: tables are 0 to 254`);
          out.push({ type: 'goto_table', table });
          continue;
        }
        case 'write_metadata': {
          const val = needValue(sc);
          const slash = val.indexOf('/');
          const value = parseU64(slash < 0 ? val : val.slice(0, slash), 'metadata');
          const mask = slash < 0 ? (1n << 64n) - 1n : parseU64(val.slice(slash + 1), 'metadata mask');
          out.push({ type: 'write_metadata', value, mask });
          continue;
        }
        case 'note':
          out.push({ type: 'note', data: parseNote(ctx, hasValue ? v : '', sc.valueAt) });
          continue;
        case 'conjunction':
          out.push(parseConjunction(ctx, needValue(sc), sc.valueAt));
          continue;
        case 'learn':
          out.push(parseLearn(ctx, needValue(sc), sc.valueAt, match));
          continue;
      }
      if (UNSUPPORTED_ACTIONS.has(name)) {
        throw new RuleUnsupportedError(src.pos(at), `action '${key}' is not supported yet`);
      }
      if (!hasValue) {
        // A bare word is an output port: a number, a reserved name or a port name.
        const port = parsePortOrNull(ctx, key);
        if (port !== null) {
          out.push(outputTo(ctx, port, at));
          continue;
        }
      }
      throw src.error(at, `unknown action '${key}' (expected e.g. output:N, NORMAL, drop, resubmit(,T), set_field:V->F)`);
    } catch (e) {
      throw wrap(ctx, sc.valueAt, e);
    }
  }
  if (sawDrop >= 0 && out.length > 0) {
    throw src.error(sawDrop, "'drop' must be the only action (an empty action list also drops)");
  }
  checkActions(ctx, out, match, table, start);
  return out;
}

/** The current action's argument; an error if it has none (`output` instead of `output:1`). */
function needValue(sc: KvScanner): string {
  if (sc.delim === '') throw sc.src.error(sc.keyAt + sc.key.length, `expected ':' and an argument after '${sc.key}'`);
  return sc.value;
}

function parsePortOrNull(ctx: LineCtx, text: string): number | null {
  if (/^[0-9]+$/.test(text)) {
    const n = Number(text);
    return n <= 0xffff ? n : null;
  }
  const reserved = RESERVED_PORTS.get(text.toLowerCase());
  if (reserved !== undefined) return reserved;
  return ctx.opts.portByName?.(text) ?? null;
}

/** An output to a port; output to CONTROLLER becomes the controller action. */
function outputTo(ctx: LineCtx, port: number, at: number): Action {
  if (port === OFPP.CONTROLLER) {
    return { type: 'controller', maxLen: 65535, reason: 'action', controllerId: 0 };
  }
  if (port === OFPP.NONE) throw ctx.src.error(at, 'cannot output to port NONE/ANY');
  if (port > OFPP.MAX && port < OFPP.IN_PORT) throw ctx.src.error(at, `cannot output to reserved port number ${port}`);
  return { type: 'output', port };
}

function parseOutput(ctx: LineCtx, v: string, at: number, parens: boolean): Action {
  if (parens) throw new RuleUnsupportedError(ctx.src.pos(at), 'output(port=…,max_len=…) (truncated output) is not supported yet');
  if (v.includes('[') || (fieldByName(v) && !/^[0-9]/.test(v) && !RESERVED_PORTS.has(v.toLowerCase()))) {
    const src = parseFieldRange(ctx, v, at);
    return { type: 'output_reg', src, maxLen: 65535 };
  }
  const port = parsePortOrNull(ctx, v);
  if (port === null) throw ctx.src.error(at, `unknown port '${v}' for output`);
  return outputTo(ctx, port, at);
}

const CONTROLLER_REASONS: readonly ControllerReason[] = ['action', 'no_match', 'invalid_ttl', 'action_set', 'group', 'packet_out'];

function parseController(ctx: LineCtx, v: string | null, at: number, parens: boolean): Action {
  let maxLen = 65535;
  let reason: ControllerReason = 'action';
  let controllerId = 0;
  if (v !== null && !parens) {
    maxLen = parseUintN(v, 16, 'max_len');
  } else if (v !== null) {
    for (const arg of splitArgs(v, at)) {
      if (arg.text === '') continue;
      const eq = arg.text.indexOf('=');
      const k = eq < 0 ? arg.text : arg.text.slice(0, eq);
      const val = eq < 0 ? '' : arg.text.slice(eq + 1);
      if (k === 'max_len') maxLen = parseUintN(val, 16, 'max_len');
      else if (k === 'id') controllerId = parseUintN(val, 16, 'controller id');
      else if (k === 'reason') {
        if (!(CONTROLLER_REASONS as readonly string[]).includes(val)) {
          throw ctx.src.error(arg.at, `'${val}' is not a controller reason (expected ${CONTROLLER_REASONS.join(', ')})`);
        }
        reason = val as ControllerReason;
      } else if (k === 'userdata' || k === 'pause' || k === 'meter_id') {
        throw new RuleUnsupportedError(ctx.src.pos(arg.at), `controller option '${k}' is not supported yet`);
      } else throw ctx.src.error(arg.at, `unknown controller option '${k}' (expected reason, max_len or id)`);
    }
  }
  return { type: 'controller', maxLen, reason, controllerId };
}

/** The `mod_*` rewrites: a set_field in 'mod' form (or a VLAN action). */
function parseMod(ctx: LineCtx, name: string, v: string, at: number, match: Match): Action {
  const mk = (field: string, value: bigint): Action => {
    const f = mustField(field);
    return { type: 'set_field', field: f, value, mask: (1n << BigInt(f.bits)) - 1n, form: 'mod' };
  };
  switch (name) {
    case 'mod_dl_src':
      return mk('dl_src', parseMac(v));
    case 'mod_dl_dst':
      return mk('dl_dst', parseMac(v));
    case 'mod_nw_src':
      return mk('nw_src', BigInt(parseIpv4Strict(v)));
    case 'mod_nw_dst':
      return mk('nw_dst', BigInt(parseIpv4Strict(v)));
    case 'mod_tp_src':
    case 'mod_tp_dst': {
      const port = BigInt(parseUintN(v, 16, 'transport port'));
      const proto = match.mask[Slot.NW_PROTO] ? match.value[Slot.NW_PROTO] : -1;
      const l4 = proto === IpProto.UDP ? 'udp' : proto === IpProto.SCTP ? 'sctp' : 'tcp';
      return mk(`${l4}_${name.slice(7)}`, port);
    }
    case 'mod_nw_ttl':
      return mk('nw_ttl', BigInt(parseUintN(v, 8, 'TTL')));
    case 'mod_nw_ecn': {
      const ecn = parseUintN(v, 8, 'ECN');
      if (ecn > 3) throw ctx.src.error(at, `'${v}' is not a valid ECN value (0 to 3)`);
      return mk('nw_ecn', BigInt(ecn));
    }
    default: {
      // mod_nw_tos takes the ToS byte; only its DSCP bits may be set.
      const tos = parseUintN(v, 8, 'ToS');
      if (tos & 3) throw ctx.src.error(at, `'${v}' is not a valid ToS for mod_nw_tos (the low two ECN bits must be 0)`);
      return mk('ip_dscp', BigInt(tos >> 2));
    }
  }
}

function parseIpv4Strict(v: string): number {
  const r = parseIpv4Masked(v);
  if (r.mask !== 0xffffffff) throw new ValueError(`'${v}' must be a plain IPv4 address here`);
  return r.value;
}

function parseDecTtl(ctx: LineCtx, v: string | null, at: number): Action {
  if (v === null) return { type: 'dec_ttl', controllerIds: [] };
  const ids = splitArgs(v, at).map((a) => {
    try {
      return parseUintN(a.text, 16, 'controller id');
    } catch (e) {
      throw wrap(ctx, a.at, e);
    }
  });
  return { type: 'dec_ttl', controllerIds: ids };
}

/** Resolves a field name used in an action (`eth_dst`, `NXM_OF_ETH_DST`, `reg0`, `tp_src`). */
function actionField(ctx: LineCtx, name: string, at: number): Field {
  const f = fieldByName(ACTION_FIELD_ALIASES.get(name) ?? name);
  if (!f || f.name === 'dl_vlan' || f.name === 'dl_vlan_pcp') {
    throw ctx.src.error(at, `unknown field '${name}' (expected e.g. eth_dst, ip_src, reg0, NXM_NX_REG0)`);
  }
  return f;
}

/** `NXM_NX_REG0[0..15]`, `reg0[3]`, `reg0[]`, `reg0`. */
function parseFieldRange(ctx: LineCtx, text: string, at: number): FieldRange {
  const br = text.indexOf('[');
  const name = br < 0 ? text : text.slice(0, br);
  const field = actionField(ctx, name, at);
  if (br < 0) return { field, ofs: 0, nBits: field.bits };
  if (!text.endsWith(']')) throw ctx.src.error(at + text.length, `expected ']' to end '${text}'`);
  const inner = text.slice(br + 1, -1);
  if (inner === '') return { field, ofs: 0, nBits: field.bits };
  const m = /^([0-9]+)(?:\.\.([0-9]+))?$/.exec(inner);
  if (!m) throw ctx.src.error(at + br + 1, `expected a bit range like [0..15] or [3] in '${text}'`);
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  if (lo > hi) throw ctx.src.error(at + br + 1, `in '${text}' the starting bit ${lo} is after the ending bit ${hi}`);
  if (hi >= field.bits) throw ctx.src.error(at + br + 1, `in '${text}' bit ${hi} is beyond the ${field.bits}-bit field`);
  return { field, ofs: lo, nBits: hi - lo + 1 };
}

/** `set_field:value[/mask]->field`. */
function parseSetField(ctx: LineCtx, v: string, at: number): Action {
  const arrow = v.lastIndexOf('->');
  if (arrow < 0) throw ctx.src.error(at + v.length, `expected '->field' in set_field:${v}`);
  const name = v.slice(arrow + 2);
  const f = actionField(ctx, name, at + arrow + 2);
  if (!f.writable) throw ctx.src.error(at + arrow + 2, `field '${name}' cannot be written by set_field`);
  const text = v.slice(0, arrow);
  if (f.name === 'vlan_vid' || f.name === 'vlan_pcp') {
    const n = parseUintN(text, 16, f.name);
    if (f.name === 'vlan_pcp') {
      if (n > 7) throw ctx.src.error(at, `'${text}' is not a valid VLAN PCP (0 to 7)`);
      return { type: 'set_vlan_pcp', pcp: n, pushIfNeeded: false };
    }
    if ((n & 0xfff) !== n && (n & ~0x1fff) !== 0) throw ctx.src.error(at, `'${text}' is not a valid vlan_vid`);
    if (ctx.dialect === 'of13' && !(n & VLAN_CFI)) {
      throw ctx.src.error(at, `set_field:${text}->vlan_vid: OpenFlow 1.3 needs the tag-present bit, write ${n | VLAN_CFI} (0x1000 + VID)`);
    }
    return { type: 'set_vlan_vid', vid: n & 0xfff, pushIfNeeded: false };
  }
  let vm: { value: bigint; mask: bigint };
  if (f.format === 'port') {
    vm = { value: BigInt(parsePort(ctx, text, at)), mask: 0xffffn };
  } else {
    vm = parseValueMaskAnyField(f, text);
  }
  const all = (1n << BigInt(f.bits)) - 1n;
  const bytes = Math.ceil(f.bits / 8);
  if (vm.value >= 1n << BigInt(bytes * 8)) throw ctx.src.error(at, `value '${text}' is too large for ${bytes}-byte field ${f.name}`);
  if ((vm.value & ~f.usable & all) !== 0n || vm.value > all) {
    throw ctx.src.error(at, `${text} is not a valid value for field ${name}`);
  }
  return { type: 'set_field', field: f, value: vm.value & vm.mask, mask: vm.mask & all, form: 'set_field' };
}

/** Like parseValueMask but allows masks on any writable field (set_field:V/M->F). */
function parseValueMaskAnyField(f: Field, text: string): { value: bigint; mask: bigint } {
  if (f.maskable || !text.includes('/')) return parseValueMask(f, text);
  return parseValueMask({ ...f, maskable: true }, text);
}

/** `load:value->dst[range]`. */
function parseLoad(ctx: LineCtx, v: string, at: number): Action {
  const arrow = v.indexOf('->');
  if (arrow < 0) throw ctx.src.error(at + v.length, `expected '->field[range]' in load:${v}`);
  const dst = parseFieldRange(ctx, v.slice(arrow + 2), at + arrow + 2);
  if (!dst.field.writable) throw ctx.src.error(at + arrow + 2, `field '${dst.field.name}' cannot be written`);
  const value = parseUint(v.slice(0, arrow));
  if (value >= 1n << BigInt(dst.nBits)) {
    throw ctx.src.error(at, `value ${v.slice(0, arrow)} does not fit into ${dst.nBits} bits`);
  }
  const ones = (1n << BigInt(dst.nBits)) - 1n;
  return {
    type: 'set_field',
    field: dst.field,
    value: value << BigInt(dst.ofs),
    mask: ones << BigInt(dst.ofs),
    form: 'load',
  };
}

/** `move:src[range]->dst[range]`. */
function parseMove(ctx: LineCtx, v: string, at: number): Action {
  const arrow = v.indexOf('->');
  if (arrow < 0) throw ctx.src.error(at + v.length, `expected '->field[range]' in move:${v}`);
  const src = parseFieldRange(ctx, v.slice(0, arrow), at);
  const dst = parseFieldRange(ctx, v.slice(arrow + 2), at + arrow + 2);
  if (src.nBits !== dst.nBits) {
    throw ctx.src.error(at, `move:${v}: the source is ${src.nBits} bits wide but the destination is ${dst.nBits} bits wide`);
  }
  if (!dst.field.writable) throw ctx.src.error(at + arrow + 2, `field '${dst.field.name}' cannot be written`);
  return { type: 'move', src, dst };
}

/** `resubmit:port`, `resubmit(port)`, `resubmit(port,table)`, `resubmit(,table)`. */
function parseResubmit(ctx: LineCtx, v: string, at: number, parens: boolean): Action {
  const args = parens ? splitArgs(v, at) : [{ text: v, at }];
  if (args.length > 3) throw ctx.src.error(at, `resubmit takes at most (port,table): '${v}'`);
  if (args.length === 3) {
    throw new RuleUnsupportedError(ctx.src.pos(args[2].at), 'resubmit(port,table,ct) is not supported yet');
  }
  let port: number | null = null;
  let table: number | null = null;
  if (args[0].text !== '') {
    const p = parsePortOrNull(ctx, args[0].text);
    if (p === null) throw ctx.src.error(args[0].at, `unknown port '${args[0].text}' in resubmit`);
    port = p === OFPP.IN_PORT ? null : p;
  }
  if (args.length > 1 && args[1].text !== '') {
    const t = parseUintN(args[1].text, 16, 'table');
    if (t > 255) throw ctx.src.error(args[1].at, `resubmit to table ${t}: tables are 0 to 254`);
    table = t === 255 ? null : t;
  }
  if (port === null && table === null) {
    throw ctx.src.error(at, 'resubmit needs a port or a table (e.g. resubmit(,3) or resubmit:2)');
  }
  return { type: 'resubmit', port, table };
}

/** `note:01.02.ab` — hex bytes, optionally separated by dots. */
function parseNote(ctx: LineCtx, v: string, at: number): Uint8Array {
  const bytes: number[] = [];
  let i = 0;
  while (i < v.length) {
    if (v[i] === '.') {
      i++;
      continue;
    }
    const pair = v.slice(i, i + 2);
    if (!/^[0-9a-fA-F]{2}$/.test(pair)) throw ctx.src.error(at + i, `bad hex digit in note:${v} (expected pairs of hex digits like 01.ab)`);
    bytes.push(parseInt(pair, 16));
    i += 2;
  }
  return Uint8Array.from(bytes);
}

/** `conjunction(id,k/n)`. */
function parseConjunction(ctx: LineCtx, v: string, at: number): Action {
  const m = /^([^,]+),([0-9]+)\/([0-9]+)$/.exec(v);
  if (!m) throw ctx.src.error(at, `expected conjunction(id,k/n), got conjunction(${v})`);
  const id = Number(parseUint(m[1]) & 0xffffffffn);
  const clause = Number(m[2]);
  const nClauses = Number(m[3]);
  if (nClauses < 2 || nClauses > 64) throw ctx.src.error(at, `conjunction(${v}): the number of clauses must be 2 to 64`);
  if (clause < 1 || clause > nClauses) throw ctx.src.error(at, `conjunction(${v}): the clause must be 1 to ${nClauses}`);
  return { type: 'conjunction', id, clause, nClauses };
}

/** `learn(table=…,…,specs)`. */
function parseLearn(ctx: LineCtx, v: string, at: number, match: Match): LearnAction {
  const l = {
    type: 'learn' as const,
    table: 1,
    priority: DEFAULT_PRIORITY,
    idleTimeout: 0,
    hardTimeout: 0,
    finIdleTimeout: 0,
    finHardTimeout: 0,
    cookie: 0n,
    sendFlowRem: false,
    deleteLearned: false,
    specs: [] as LearnSpec[],
  };
  // dl_type / nw_proto the learned rule will match, for its prerequisite checks.
  const learned = newMatch();
  for (const arg of splitArgs(v, at)) {
    const t = arg.text;
    if (t === '') continue;
    const eq = t.indexOf('=');
    const colon = t.indexOf(':');
    const key = eq >= 0 && (colon < 0 || eq < colon) ? t.slice(0, eq) : colon >= 0 ? t.slice(0, colon) : t;
    const val = t.slice(key.length + 1);
    const numArg = (bits: number): number => {
      try {
        return parseUintN(val, bits, key);
      } catch (e) {
        throw wrap(ctx, arg.at + key.length + 1, e);
      }
    };
    switch (key) {
      case 'table': {
        const n = numArg(8);
        if (n > 254) throw ctx.src.error(arg.at, `learn: table ${n} is out of range (0 to 254)`);
        l.table = n;
        continue;
      }
      case 'priority':
        l.priority = numArg(16);
        continue;
      case 'idle_timeout':
        l.idleTimeout = numArg(16);
        continue;
      case 'hard_timeout':
        l.hardTimeout = numArg(16);
        continue;
      case 'fin_idle_timeout':
        l.finIdleTimeout = numArg(16);
        continue;
      case 'fin_hard_timeout':
        l.finHardTimeout = numArg(16);
        continue;
      case 'cookie':
        l.cookie = parseU64(val, 'cookie');
        continue;
      case 'send_flow_rem':
        l.sendFlowRem = true;
        continue;
      case 'delete_learned':
        l.deleteLearned = true;
        continue;
      case 'limit':
      case 'result_dst':
        throw new RuleUnsupportedError(ctx.src.pos(arg.at), `learn option '${key}' is not supported yet`);
    }
    if (key === 'load' && colon >= 0) {
      const arrow = val.indexOf('->');
      if (arrow < 0) throw ctx.src.error(arg.at, `expected load:SRC->DST in learn, got '${t}'`);
      const dst = parseFieldRange(ctx, val.slice(arrow + 2), arg.at + 5 + arrow + 2);
      const srcText = val.slice(0, arrow);
      const src = /^[0-9]/.test(srcText)
        ? { value: immediate(ctx, srcText, dst, arg.at + 5) }
        : parseFieldRange(ctx, srcText, arg.at + 5);
      if ('field' in src && src.nBits !== dst.nBits) {
        throw ctx.src.error(arg.at, `learn: ${t}: the source is ${src.nBits} bits wide but the destination is ${dst.nBits}`);
      }
      if ('field' in src) requirePrereqs(ctx, src.field, match, arg.at);
      l.specs.push({ kind: 'load', dst, src });
      continue;
    }
    if (key === 'output' && colon >= 0) {
      const src = parseFieldRange(ctx, val, arg.at + 7);
      requirePrereqs(ctx, src.field, match, arg.at);
      l.specs.push({ kind: 'output', src });
      continue;
    }
    // A match spec: DST=SRC, DST=value, or DST alone (SRC = DST).
    const dstText = eq >= 0 ? t.slice(0, eq) : t;
    const dst = parseLearnDst(ctx, dstText, arg.at);
    let src: FieldRange | { value: bigint };
    if (eq < 0) src = dst;
    else {
      const s = t.slice(eq + 1);
      // A field reference (`dl_src`, `NXM_NX_REG1[0..11]`) or else an immediate in dst's notation.
      const ref = /^([A-Za-z_][A-Za-z0-9_]*)(\[[0-9.]*\])?$/.exec(s);
      if (ref && fieldByName(ref[1])) src = parseFieldRange(ctx, s, arg.at + eq + 1);
      else {
        if (dst.ofs !== 0 || dst.nBits !== dst.field.bits) {
          src = { value: immediate(ctx, s, dst, arg.at + eq + 1) };
        } else {
          try {
            const vm = parseValueMask(dst.field, s);
            if (vm.mask !== (1n << BigInt(dst.field.bits)) - 1n) throw new ValueError(`learn: '${s}' cannot be masked here`);
            src = { value: vm.value };
          } catch (e) {
            throw wrap(ctx, arg.at + eq + 1, e);
          }
        }
      }
    }
    if ('field' in src && src.nBits !== dst.nBits) {
      throw ctx.src.error(arg.at, `learn: ${t}: the source is ${src.nBits} bits wide but the destination is ${dst.nBits}`);
    }
    if ('field' in src) requirePrereqs(ctx, src.field, match, arg.at);
    requirePrereqs(ctx, dst.field, learned, arg.at);
    if (!('field' in src) && dst.ofs === 0 && dst.nBits === dst.field.bits) {
      if (dst.field.slot === Slot.DL_TYPE || dst.field.slot === Slot.NW_PROTO) {
        learned.value[dst.field.slot] = Number(src.value);
        learned.mask[dst.field.slot] = dst.field.slot === Slot.DL_TYPE ? 0xffff : 0xff;
      }
    }
    l.specs.push({ kind: 'match', dst, src });
  }
  return l;
}

/** A learn match destination: a field (range) that can be matched (not the OF1.0 VLAN views). */
function parseLearnDst(ctx: LineCtx, text: string, at: number): FieldRange {
  const name = text.includes('[') ? text.slice(0, text.indexOf('[')) : text;
  const f = fieldByName(name);
  if (f && (f.name === 'dl_vlan' || f.name === 'dl_vlan_pcp' || f.name === 'vlan_pcp')) {
    throw ctx.src.error(at, `learn cannot match on '${name}' (use NXM_OF_VLAN_TCI[0..11] instead)`);
  }
  if (!f) throw ctx.src.error(at, `unknown learn argument '${text}' (expected table=, priority=, a field, load:… or output:…)`);
  return parseFieldRange(ctx, text, at);
}

function immediate(ctx: LineCtx, text: string, dst: FieldRange, at: number): bigint {
  let v: bigint;
  try {
    v = parseUint(text);
  } catch (e) {
    throw wrap(ctx, at, e);
  }
  if (v >= 1n << BigInt(dst.nBits)) throw ctx.src.error(at, `value ${text} does not fit into ${dst.nBits} bits`);
  return v;
}

/** Throws unless the match pins down what `f` needs (e.g. `ip` before reading NXM_OF_IP_DST). */
function requirePrereqs(ctx: LineCtx, f: Field, m: Match, at: number): void {
  if (!prereqsMet(f, m)) {
    throw ctx.src.error(at, `field '${f.name}' needs a match on ${describePrereqs(f)} (e.g. add 'ip' or 'tcp' to the rule)`);
  }
}

/**
 * True when the match pins dl_type/nw_proto/icmp_type as the field requires.
 * A TCP, UDP or SCTP field also needs a match that is not of later fragments
 * (which carry no transport header), as ovs-ofctl checks.
 */
export function prereqsMet(f: Field, m: Match): boolean {
  if (!f.prereqs) return true;
  const dl = m.mask[Slot.DL_TYPE] ? m.value[Slot.DL_TYPE] : -1;
  const proto = m.mask[Slot.NW_PROTO] ? m.value[Slot.NW_PROTO] : -1;
  const icmp = m.mask[Slot.TP_SRC] === 0xffff || m.mask[Slot.TP_SRC] === 0xffffffff ? m.value[Slot.TP_SRC] : -1;
  const later = (m.value[Slot.NW_FRAG] & m.mask[Slot.NW_FRAG] & FRAG_LATER) !== 0;
  return f.prereqs.some(
    (p) =>
      p.dlTypes.includes(dl) &&
      (!p.nwProtos || p.nwProtos.includes(proto)) &&
      (!p.icmpTypes || p.icmpTypes.includes(icmp)) &&
      !(later && p.nwProtos && TRANSPORT_PROTOS.includes(proto)),
  );
}

/** Protocols whose header a later fragment lacks. */
const TRANSPORT_PROTOS: readonly number[] = [IpProto.TCP, IpProto.UDP, IpProto.SCTP];

function describePrereqs(f: Field): string {
  const text = (f.prereqs ?? [])
    .map((p) => {
      const dl = p.dlTypes.map((d) => `dl_type=0x${d.toString(16).padStart(4, '0')}`).join('|');
      const pr = p.nwProtos ? `,nw_proto=${p.nwProtos.join('|')}` : '';
      const it = p.icmpTypes ? `,icmp_type=${p.icmpTypes.join('|')}` : '';
      return dl + pr + it;
    })
    .join(' or ');
  const transport = (f.prereqs ?? []).some((p) => p.nwProtos?.some((n) => TRANSPORT_PROTOS.includes(n)));
  return transport ? `${text} (not nw_frag=later)` : text;
}

/**
 * Consistency checks across the action list (ovs-ofctl's rules): the
 * conjunction action stands alone (with notes), instructions come last and
 * once, set_field/load/move need their fields' prerequisites, VLAN rewrites
 * need a tag, and some actions exist only in one OpenFlow version.
 */
function checkActions(ctx: LineCtx, actions: readonly Action[], match: Match, table: number | null, at: number): void {
  const err = (reason: string): RuleSyntaxError => ctx.src.error(at, reason);
  const conj = actions.some((a) => a.type === 'conjunction');
  if (conj) {
    const other = actions.find((a) => a.type !== 'conjunction' && a.type !== 'note');
    if (other) throw err(`conjunction may be combined only with note, not with ${other.type}`);
  }
  if (ctx.dialect === 'of10' && actions.some((x) => x.type === 'write_metadata') && actions.some((x) => x.type === 'goto_table')) {
    // OpenFlow 1.0 spells goto_table as resubmit, after which write_metadata would be misordered.
    throw err('write_metadata together with goto_table needs OpenFlow 1.1 or later');
  }
  let sawGoto = false;
  let sawMeta = false;
  let vlan = (match.value[Slot.VLAN_TCI] & VLAN_CFI) !== 0;
  for (const a of actions) {
    if (a.type === 'goto_table') {
      if (sawGoto) throw err('goto_table may appear only once');
      if (a.table <= (table ?? 0) && table !== null) throw err(`goto_table:${a.table} must go to a later table than ${table}`);
      sawGoto = true;
      continue;
    }
    if (a.type === 'write_metadata') {
      if (sawMeta) throw err('write_metadata may appear only once');
      if (sawGoto) throw err('write_metadata must come before goto_table');
      sawMeta = true;
      continue;
    }
    if (sawGoto || sawMeta) {
      throw err(`${a.type} must come before write_metadata and goto_table (instructions end the action list)`);
    }
    switch (a.type) {
      case 'set_field':
        if (a.form === 'mod') {
          // OpenFlow 1.0 applies mod_nw_*/mod_tp_* to any packet; later versions need the prerequisites.
          if (ctx.dialect === 'of13' && !prereqsMet(a.field, match)) {
            throw err(`${modName(a.field)} needs a match on ${describePrereqs(a.field)} in OpenFlow 1.3`);
          }
          if (a.field.name === 'nw_ttl' && !prereqsMet(a.field, match)) {
            throw err(`mod_nw_ttl needs a match on ${describePrereqs(a.field)}`);
          }
        } else if (!prereqsMet(a.field, match)) {
          throw err(`set_field/load of '${a.field.name}' needs a match on ${describePrereqs(a.field)}`);
        }
        vlan = vlanAfterWrite(a, vlan);
        break;
      case 'move':
        if (!prereqsMet(a.src.field, match)) throw err(`move from '${a.src.field.name}' needs a match on ${describePrereqs(a.src.field)}`);
        if (!prereqsMet(a.dst.field, match)) throw err(`move to '${a.dst.field.name}' needs a match on ${describePrereqs(a.dst.field)}`);
        break;
      case 'output_reg':
        if (!prereqsMet(a.src.field, match)) throw err(`output from '${a.src.field.name}' needs a match on ${describePrereqs(a.src.field)}`);
        break;
      case 'set_vlan_vid':
      case 'set_vlan_pcp':
        if (!a.pushIfNeeded && !vlan) throw err(`set_field on ${a.type === 'set_vlan_vid' ? 'vlan_vid' : 'vlan_pcp'} needs a VLAN tag (match dl_vlan or vlan_tci, or use mod_vlan_vid)`);
        vlan = true;
        break;
      case 'pop_vlan':
        if (!vlan && ctx.dialect === 'of13') throw err('pop_vlan needs a VLAN tag in OpenFlow 1.3 (match dl_vlan or vlan_tci first)');
        vlan = false;
        break;
      case 'push_vlan':
        if (ctx.dialect === 'of10') throw err('push_vlan needs OpenFlow 1.1 or later (in OpenFlow 1.0 use mod_vlan_vid, which pushes a tag if needed)');
        vlan = true;
        break;
      case 'dec_ttl':
        if (ctx.dialect === 'of13' && !ipMatched(match)) {
          throw err('dec_ttl needs an IP match (ip or ipv6) in OpenFlow 1.3');
        }
        break;
    }
  }
}

/**
 * Whether a tag is known to be present after a set_field/load, as ovs-ofctl
 * tracks it to decide when mod_vlan_* must push a tag in OpenFlow 1.3: a write
 * to vlan_tci leaves a tag exactly when the written bits include the CFI bit.
 */
export function vlanAfterWrite(a: SetFieldAction, vlan: boolean): boolean {
  return a.field.slot === Slot.VLAN_TCI ? (a.value & BigInt(VLAN_CFI)) !== 0n : vlan;
}

function ipMatched(m: Match): boolean {
  const dl = m.mask[Slot.DL_TYPE] ? m.value[Slot.DL_TYPE] : -1;
  return dl === EthType.IP || dl === EthType.IPV6;
}

/** The OpenFlow 1.0 action name of a `mod` form field, for messages. */
function modName(f: Field): string {
  return `mod_${f.name.replace(/^(tcp|udp|sctp)_/, 'tp_').replace('ip_dscp', 'nw_tos')}`;
}
