/**
 * The match part of a rule line (everything before `actions=`): rule
 * keywords (`table`, `priority`, `cookie`, flags, …), protocol shorthands
 * (`tcp`, `ipv6`, …) and match fields in their notations, then the match
 * normalised as ovs-ofctl does (fields whose prerequisites are unmet are
 * dropped; in OpenFlow 1.3 a VLAN match keeps what OXM can say).
 */

import { EthType, FRAG_LATER, type Field, fieldByName, IpProto, Slot, VLAN_CFI } from '../fields.ts';
import { type FlowModFlags, NO_FLAGS } from '../flow-mod.ts';
import { DEFAULT_PRIORITY, type Match, newMatch, setMatchField } from '../match.ts';
import { RuleUnsupportedError } from './errors.ts';
import { type LineCtx, parsePort, wrap } from './line-context.ts';
import type { KvScanner } from './scanner.ts';
import { parseIpv4Masked, parseIpv6Masked, parseMac, parseU64, parseUint, parseUintN, TCP_FLAG_NAMES, ValueError } from './values.ts';

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

/** Real OVS match fields and protocols nvs does not implement yet. */
const UNSUPPORTED_FIELDS = new Set([
  'ct_state', 'ct_zone', 'ct_mark', 'ct_label', 'ct_nw_src', 'ct_nw_dst', 'ct_nw_proto', 'ct_tp_src',
  'ct_tp_dst', 'ct_ipv6_src', 'ct_ipv6_dst', 'pkt_mark', 'skb_priority', 'recirc_id', 'dp_hash',
  'actset_output', 'packet_type', 'mpls', 'mplsm', 'mpls_label', 'mpls_tc', 'mpls_bos', 'mpls_ttl',
  'tun_flags', 'tun_gbp_id', 'tun_gbp_flags', 'tun_ipv6_src', 'tun_ipv6_dst', 'tun_tos', 'tun_ttl',
  'dl_vlan1', 'vlan_tci1', 'vlan_vid1', 'vlan_pcp1', 'nsh_spi', 'nsh_si',
  'tun_metadata0', 'tun_erspan_ver', 'ipv6_exthdr', 'out_group',
]);

export interface MatchPart {
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

export function parseMatchPart(ctx: LineCtx, start: number, end: number): MatchPart {
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

const ALL_ONES_64 = (1n << 64n) - 1n;

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
export function parseValueMask(f: Field, text: string): { value: bigint; mask: bigint } {
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
