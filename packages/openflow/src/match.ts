/**
 * Matches on the wire, to and from ofproto's `Match` (one model: the same
 * structure the rule-file parser produces): NXM (Nicira's TLVs, also used by
 * OpenFlow 1.2+ as OXM) and OpenFlow 1.0's fixed `ofp_match`.
 *
 * Several named fields share storage in a `Flow` (tcp_src/udp_src/icmp_type
 * all live in TP_SRC), so encoding picks, per storage region, the TLV whose
 * prerequisites the match pins (`dl_type`, `nw_proto`), as OVS does.
 */
import { EthType, type Field, IpProto, type Match, mustField, newMatch, readField, setMatchField, Slot, VLAN_CFI, fieldOnes } from '@nvs/ofproto';
import { BadMatch, badLen, ErrType, OfError, type Reader, type Writer } from './wire.ts';

/** One NXM/OXM TLV kind: its class and field number, value width, the ofproto field it carries. */
export interface NxmField {
  readonly name: string;
  readonly cls: number;
  readonly num: number;
  readonly bytes: number;
  readonly field: Field;
  /** When the match pins these, this TLV (not another on the same storage) is used. */
  readonly when?: (dlType: number | null, nwProto: number | null) => boolean;
}

const isIp = (t: number | null) => t === EthType.IP || t === EthType.IPV6;
const NXM_OF = 0x0000;
const NXM_NX = 0x0001;
const OXM_OF = 0x8000;

function nx(name: string, cls: number, num: number, bytes: number, field: string, when?: NxmField['when']): NxmField {
  return { name, cls, num, bytes, field: mustField(field), when };
}

/** The TLVs nvs reads and writes, in the order OVS emits them. */
export const NXM_FIELDS: readonly NxmField[] = [
  nx('NXM_OF_IN_PORT', NXM_OF, 0, 2, 'in_port'),
  ...Array.from({ length: 16 }, (_, i) => nx(`NXM_NX_REG${i}`, NXM_NX, i, 4, `reg${i}`)),
  nx('NXM_NX_TUN_ID', NXM_NX, 16, 8, 'tun_id'),
  nx('NXM_NX_TUN_IPV4_SRC', NXM_NX, 31, 4, 'tun_src'),
  nx('NXM_NX_TUN_IPV4_DST', NXM_NX, 32, 4, 'tun_dst'),
  nx('OXM_OF_METADATA', OXM_OF, 2, 8, 'metadata'),
  nx('NXM_NX_CONJ_ID', NXM_NX, 37, 4, 'conj_id'),
  nx('NXM_OF_ETH_DST', NXM_OF, 1, 6, 'dl_dst'),
  nx('NXM_OF_ETH_SRC', NXM_OF, 2, 6, 'dl_src'),
  nx('NXM_OF_ETH_TYPE', NXM_OF, 3, 2, 'dl_type'),
  nx('NXM_OF_VLAN_TCI', NXM_OF, 4, 2, 'vlan_tci'),
  nx('NXM_OF_IP_SRC', NXM_OF, 7, 4, 'nw_src', (t) => t === EthType.IP),
  nx('NXM_OF_IP_DST', NXM_OF, 8, 4, 'nw_dst', (t) => t === EthType.IP),
  nx('NXM_OF_ARP_SPA', NXM_OF, 16, 4, 'arp_spa', (t) => t === EthType.ARP || t === EthType.RARP),
  nx('NXM_OF_ARP_TPA', NXM_OF, 17, 4, 'arp_tpa', (t) => t === EthType.ARP || t === EthType.RARP),
  nx('NXM_NX_IPV6_SRC', NXM_NX, 19, 16, 'ipv6_src'),
  nx('NXM_NX_IPV6_DST', NXM_NX, 20, 16, 'ipv6_dst'),
  nx('NXM_NX_IPV6_LABEL', NXM_NX, 27, 4, 'ipv6_label'),
  nx('NXM_OF_IP_PROTO', NXM_OF, 6, 1, 'nw_proto', (t) => isIp(t)),
  nx('NXM_OF_ARP_OP', NXM_OF, 15, 2, 'arp_op', (t) => t === EthType.ARP || t === EthType.RARP),
  nx('NXM_OF_IP_TOS', NXM_OF, 5, 1, 'nw_tos'),
  nx('NXM_NX_IP_ECN', NXM_NX, 28, 1, 'nw_ecn'),
  nx('NXM_NX_IP_TTL', NXM_NX, 29, 1, 'nw_ttl'),
  nx('NXM_NX_IP_FRAG', NXM_NX, 26, 1, 'nw_frag'),
  nx('NXM_OF_TCP_SRC', NXM_OF, 9, 2, 'tcp_src', (t, p) => isIp(t) && p === IpProto.TCP),
  nx('NXM_OF_TCP_DST', NXM_OF, 10, 2, 'tcp_dst', (t, p) => isIp(t) && p === IpProto.TCP),
  nx('NXM_OF_UDP_SRC', NXM_OF, 11, 2, 'udp_src', (t, p) => isIp(t) && p === IpProto.UDP),
  nx('NXM_OF_UDP_DST', NXM_OF, 12, 2, 'udp_dst', (t, p) => isIp(t) && p === IpProto.UDP),
  nx('OXM_OF_SCTP_SRC', OXM_OF, 17, 2, 'sctp_src', (t, p) => isIp(t) && p === IpProto.SCTP),
  nx('OXM_OF_SCTP_DST', OXM_OF, 18, 2, 'sctp_dst', (t, p) => isIp(t) && p === IpProto.SCTP),
  nx('NXM_NX_TCP_FLAGS', NXM_NX, 34, 2, 'tcp_flags', (t, p) => isIp(t) && p === IpProto.TCP),
  nx('NXM_OF_ICMP_TYPE', NXM_OF, 13, 1, 'icmp_type', (t, p) => t === EthType.IP && p === IpProto.ICMP),
  nx('NXM_OF_ICMP_CODE', NXM_OF, 14, 1, 'icmp_code', (t, p) => t === EthType.IP && p === IpProto.ICMP),
  nx('NXM_NX_ICMPV6_TYPE', NXM_NX, 21, 1, 'icmpv6_type', (t, p) => t === EthType.IPV6 && p === IpProto.ICMPV6),
  nx('NXM_NX_ICMPV6_CODE', NXM_NX, 22, 1, 'icmpv6_code', (t, p) => t === EthType.IPV6 && p === IpProto.ICMPV6),
  nx('NXM_NX_ND_TARGET', NXM_NX, 23, 16, 'nd_target'),
  nx('NXM_NX_ND_SLL', NXM_NX, 24, 6, 'nd_sll', (t) => t === EthType.IPV6),
  nx('NXM_NX_ND_TLL', NXM_NX, 25, 6, 'nd_tll', (t) => t === EthType.IPV6),
  nx('NXM_NX_ARP_SHA', NXM_NX, 17, 6, 'arp_sha', (t) => t === EthType.ARP || t === EthType.RARP),
  nx('NXM_NX_ARP_THA', NXM_NX, 18, 6, 'arp_tha', (t) => t === EthType.ARP || t === EthType.RARP),
];

/** VLAN as OpenFlow 1.2+ sees it (VID with the "present" bit 0x1000, PCP): in OXM matches and in set_field. */
export const OXM_VLAN_VID = nx('OXM_OF_VLAN_VID', OXM_OF, 6, 2, 'vlan_vid');
export const OXM_VLAN_PCP = nx('OXM_OF_VLAN_PCP', OXM_OF, 7, 1, 'vlan_pcp');
/** One OpenFlow 1.5 packet register TLV (`OXM_OF_PKT_REG<N>`), into the two 32-bit registers it spans. */
function readXreg(body: Reader, header: number, m: Match, seen: Set<number>): void {
  const x = (header >> 9) & 0x7f;
  const masked = (header & 0x100) !== 0;
  if (x >= N_XREGS) throw badMatch(`packet register ${x}`);
  if ((header & 0xff) !== (masked ? 16 : 8)) throw badLen(`OXM_OF_PKT_REG${x}: length ${header & 0xff}`);
  if (seen.has(header & 0xfffffe00)) throw badMatch(`OXM_OF_PKT_REG${x} appears twice`, BadMatch.DUP_FIELD);
  seen.add(header & 0xfffffe00);
  const value = body.u64();
  const mask = masked ? body.u64() : 0xffff_ffff_ffff_ffffn;
  if (value & ~mask) throw badMatch(`OXM_OF_PKT_REG${x}: value outside its mask`, BadMatch.BAD_VALUE);
  for (const [reg, shift] of [[REGS[2 * x], 32n], [REGS[2 * x + 1], 0n]] as const) {
    const part = (mask >> shift) & 0xffffffffn;
    if (part) setMatchField(m, reg, (value >> shift) & part, part);
  }
}

/** OXM's in_port is a 32-bit OpenFlow 1.1+ port number (`port32`/`port16` convert). */
export const OXM_IN_PORT = nx('OXM_OF_IN_PORT', OXM_OF, 0, 4, 'in_port');

/**
 * The standard OXM (OpenFlow 1.2+) header of each field that has one, by
 * field name; the rest (registers, tunnel fields, TTL, fragments, TCP flags,
 * conj_id) keep their NXM header inside an OXM match, as OVS sends them.
 */
const OXM_BASIC: readonly NxmField[] = [
  OXM_IN_PORT,
  nx('OXM_OF_ETH_DST', OXM_OF, 3, 6, 'dl_dst'),
  nx('OXM_OF_ETH_SRC', OXM_OF, 4, 6, 'dl_src'),
  nx('OXM_OF_ETH_TYPE', OXM_OF, 5, 2, 'dl_type'),
  nx('OXM_OF_IP_DSCP', OXM_OF, 8, 1, 'ip_dscp'),
  nx('OXM_OF_IP_ECN', OXM_OF, 9, 1, 'nw_ecn'),
  nx('OXM_OF_IP_PROTO', OXM_OF, 10, 1, 'nw_proto', (t) => isIp(t)),
  nx('OXM_OF_IPV4_SRC', OXM_OF, 11, 4, 'nw_src', (t) => t === EthType.IP),
  nx('OXM_OF_IPV4_DST', OXM_OF, 12, 4, 'nw_dst', (t) => t === EthType.IP),
  nx('OXM_OF_TCP_SRC', OXM_OF, 13, 2, 'tcp_src', (t, p) => isIp(t) && p === IpProto.TCP),
  nx('OXM_OF_TCP_DST', OXM_OF, 14, 2, 'tcp_dst', (t, p) => isIp(t) && p === IpProto.TCP),
  nx('OXM_OF_UDP_SRC', OXM_OF, 15, 2, 'udp_src', (t, p) => isIp(t) && p === IpProto.UDP),
  nx('OXM_OF_UDP_DST', OXM_OF, 16, 2, 'udp_dst', (t, p) => isIp(t) && p === IpProto.UDP),
  nx('OXM_OF_ICMPV4_TYPE', OXM_OF, 19, 1, 'icmp_type', (t, p) => t === EthType.IP && p === IpProto.ICMP),
  nx('OXM_OF_ICMPV4_CODE', OXM_OF, 20, 1, 'icmp_code', (t, p) => t === EthType.IP && p === IpProto.ICMP),
  nx('OXM_OF_ARP_OP', OXM_OF, 21, 2, 'arp_op', (t) => t === EthType.ARP || t === EthType.RARP),
  nx('OXM_OF_ARP_SPA', OXM_OF, 22, 4, 'arp_spa', (t) => t === EthType.ARP || t === EthType.RARP),
  nx('OXM_OF_ARP_TPA', OXM_OF, 23, 4, 'arp_tpa', (t) => t === EthType.ARP || t === EthType.RARP),
  nx('OXM_OF_ARP_SHA', OXM_OF, 24, 6, 'arp_sha', (t) => t === EthType.ARP || t === EthType.RARP),
  nx('OXM_OF_ARP_THA', OXM_OF, 25, 6, 'arp_tha', (t) => t === EthType.ARP || t === EthType.RARP),
  nx('OXM_OF_IPV6_SRC', OXM_OF, 26, 16, 'ipv6_src'),
  nx('OXM_OF_IPV6_DST', OXM_OF, 27, 16, 'ipv6_dst'),
  nx('OXM_OF_IPV6_FLABEL', OXM_OF, 28, 4, 'ipv6_label'),
  nx('OXM_OF_ICMPV6_TYPE', OXM_OF, 29, 1, 'icmpv6_type', (t, p) => t === EthType.IPV6 && p === IpProto.ICMPV6),
  nx('OXM_OF_ICMPV6_CODE', OXM_OF, 30, 1, 'icmpv6_code', (t, p) => t === EthType.IPV6 && p === IpProto.ICMPV6),
  nx('OXM_OF_IPV6_ND_TARGET', OXM_OF, 31, 16, 'nd_target'),
  nx('OXM_OF_IPV6_ND_SLL', OXM_OF, 32, 6, 'nd_sll', (t) => t === EthType.IPV6),
  nx('OXM_OF_IPV6_ND_TLL', OXM_OF, 33, 6, 'nd_tll', (t) => t === EthType.IPV6),
  nx('OXM_OF_TUNNEL_ID', OXM_OF, 38, 8, 'tun_id'),
];

/** The TLVs of an OXM match, in NXM_FIELDS' order with each field's OXM header where it has one. */
const OXM_ORDER: readonly NxmField[] = NXM_FIELDS.flatMap((n) => {
  if (n.field.name === 'vlan_tci') return [OXM_VLAN_VID, OXM_VLAN_PCP];
  if (n.field.name === 'nw_tos') return [OXM_BASIC.find((o) => o.field.name === 'ip_dscp')!];
  return [OXM_BASIC.find((o) => o.field === n.field && o.when === undefined) ?? OXM_BASIC.find((o) => o.field === n.field) ?? n];
});

/** The OXM headers of what an OXM match may carry (hasmask set on the maskable ones), and of the writable fields. */
export function oxmCapabilities(): { match: number[]; wildcards: number[]; setfield: number[] } {
  const match = OXM_ORDER.map((n) => nxmHeader(n, n.field.maskable && n !== OXM_IN_PORT));
  const wildcards = OXM_ORDER.map((n) => nxmHeader(n, false));
  const setfield = OXM_ORDER.filter((n) => n.field.writable).map((n) => nxmHeader(n, false));
  return { match, wildcards, setfield };
}

const BY_HEADER = new Map<number, NxmField>();
for (const f of [...NXM_FIELDS, OXM_VLAN_VID, OXM_VLAN_PCP, ...OXM_BASIC]) BY_HEADER.set(((f.cls << 16) | (f.num << 9)) >>> 0, f);

/** An OpenFlow 1.1+ 32-bit port number as nvs's 16-bit one (reserved ports 0xfffffff8.. are 0xfff8..); null when it has none. */
export function port16(p: number): number | null {
  if (p >= 0xffffff00) return p - 0xffff0000;
  return p < 0xff00 ? p : null;
}
/** A 16-bit port number as OpenFlow 1.1+ writes it. */
export function port32(p: number): number {
  return p >= 0xff00 ? (p + 0xffff0000) >>> 0 : p;
}

/** The TLV header of a field (class, field, hasmask, length). */
export function nxmHeader(f: NxmField, masked: boolean): number {
  return ((f.cls << 16) | (f.num << 9) | (masked ? 0x100 : 0) | (masked ? 2 * f.bytes : f.bytes)) >>> 0;
}

/** The field a TLV header names (hasmask and length ignored); undefined when nvs does not know it. */
export function nxmByHeader(header: number): NxmField | undefined {
  return BY_HEADER.get((header & 0xfffffe00) >>> 0);
}

/** The TLV for an ofproto field (for load/move/output_reg references). */
export function nxmForField(f: Field): NxmField | undefined {
  return NXM_FIELDS.find((n) => n.field === f) ?? [OXM_VLAN_VID, OXM_VLAN_PCP].find((n) => n.field === f);
}

/** The TLV OpenFlow 1.2+ uses for a field in set_field: its OXM header, else its NXM one. */
export function oxmForField(f: Field): NxmField | undefined {
  return OXM_BASIC.find((n) => n.field === f) ?? nxmForField(f);
}

/**
 * Sets a field decoded from the wire in the form the rule-file parser gives
 * it (one model, so a rule compares equal whichever way it came): ICMP
 * type/code, 8-bit views of the 16-bit port slots, match the whole slot;
 * arp_op keeps the low byte, where the flow holds it.
 */
function setWireField(m: Match, f: Field, value: bigint, mask: bigint): void {
  if ((f.slot === Slot.TP_SRC || f.slot === Slot.TP_DST) && f.bits === 8) {
    m.value[f.slot] = Number(value);
    m.mask[f.slot] = 0xffff;
  } else setMatchField(m, f, f.name === 'arp_op' ? value & 0xffn : value, mask);
}

function badMatch(msg: string, code: number = BadMatch.BAD_FIELD): OfError {
  return new OfError(ErrType.BAD_MATCH, code, msg);
}

function pinned(m: Match, name: string): number | null {
  const f = mustField(name);
  const { value, mask } = { value: readField(m.value, f), mask: readField(m.mask, f) };
  return mask === fieldOnes(f) ? Number(value) : null;
}

/** OpenFlow 1.5's packet registers (OXM class 0x8001): xreg N is reg 2N (high half) and reg 2N+1 (low half), as OVS maps them. */
const OXM_PKT_REGS = 0x8001;
const N_XREGS = 8;
const REGS = Array.from({ length: 2 * N_XREGS }, (_, i) => mustField(`reg${i}`));

/**
 * Writes a match as NXM TLVs, or (`oxmVersion` 4-6) as an OXM match's TLVs
 * (OXM headers where a field has one; 1.5 carries registers as xregs);
 * returns the byte length written (unpadded).
 */
export function writeNxm(w: Writer, m: Match, oxmVersion = 0): number {
  const oxm = oxmVersion > 0;
  const xregs = oxmVersion >= 6;
  const start = w.length;
  const dlType = pinned(m, 'dl_type');
  const nwProto = isIp(dlType) ? pinned(m, 'nw_proto') : null;
  const done = new Set<string>();
  for (const n of oxm ? OXM_ORDER : NXM_FIELDS) {
    // Only the field's own bits (nw_tos and nw_ecn share the ToS byte).
    const mask = readField(m.mask, n.field) & n.field.usable;
    if (mask === 0n) continue;
    if (xregs && REGS.includes(n.field)) continue;
    if (n === OXM_VLAN_PCP && !(readField(m.value, OXM_VLAN_VID.field) & 0x1000n)) continue;
    if (n === OXM_IN_PORT) {
      w.u32(nxmHeader(n, false)).u32(port32(Number(readField(m.value, n.field))));
      continue;
    }
    if (n.when && !n.when(dlType, nwProto)) continue;
    const region = `${n.field.slot}:${n.field.shift}:${n.field.bits}`;
    if (done.has(region)) continue;
    done.add(region);
    const value = readField(m.value, n.field) & mask;
    const exact = mask === n.field.usable;
    w.u32(nxmHeader(n, !exact));
    w.uint(value, n.bytes);
    if (!exact) w.uint(mask, n.bytes);
  }
  for (let x = 0; xregs && x < N_XREGS; x++) {
    const pair = (flow: Match['value']) => (readField(flow, REGS[2 * x]) << 32n) | readField(flow, REGS[2 * x + 1]);
    const mask = pair(m.mask);
    if (mask === 0n) continue;
    const exact = mask === 0xffff_ffff_ffff_ffffn;
    w.u32(((OXM_PKT_REGS << 16) | (x << 9) | (exact ? 8 : 0x110)) >>> 0).u64(pair(m.value) & mask);
    if (!exact) w.u64(mask);
  }
  return w.length - start;
}

/** Reads `len` bytes of NXM/OXM TLVs into a new match at `priority`. */
/** NXM_NX_COOKIE(_W): a flow mod's or flow dump's cookie selection, carried among the match's TLVs (NXM only). */
const NXM_NX_COOKIE = ((NXM_NX << 16) | (30 << 9)) >>> 0;

/** A cookie and mask a match's TLVs carried (NXM_NX_COOKIE_W), filled by `readNxm` when given. */
export interface CookieSelect {
  cookie: bigint;
  mask: bigint;
}

/** Writes NXM_NX_COOKIE_W (only when the mask selects something). */
export function writeNxmCookie(w: Writer, cookie: bigint, mask: bigint): number {
  if (mask === 0n) return 0;
  w.u32((NXM_NX_COOKIE | 0x100 | 16) >>> 0).u64(cookie & mask).u64(mask);
  return 20;
}

export function readNxm(r: Reader, len: number, priority: number, cookie?: CookieSelect): Match {
  const m = newMatch(priority);
  const body = r.sub(len);
  const seen = new Set<number>();
  while (body.left > 0) {
    const header = body.u32();
    if (header >>> 16 === OXM_PKT_REGS) {
      readXreg(body, header, m, seen);
      continue;
    }
    if (cookie && (header & 0xfffffe00) >>> 0 === NXM_NX_COOKIE) {
      const masked = (header & 0x100) !== 0;
      if ((header & 0xff) !== (masked ? 16 : 8)) throw badLen(`NXM_NX_COOKIE: length ${header & 0xff}`);
      cookie.cookie = body.u64();
      cookie.mask = masked ? body.u64() : 0xffff_ffff_ffff_ffffn;
      continue;
    }
    const n = nxmByHeader(header);
    const masked = (header & 0x100) !== 0;
    const tlvLen = header & 0xff;
    if (!n) throw badMatch(`unknown NXM field 0x${header.toString(16)}`);
    if (tlvLen !== (masked ? 2 * n.bytes : n.bytes)) throw badLen(`${n.name}: length ${tlvLen}`);
    if (seen.has(header & 0xfffffe00)) throw badMatch(`${n.name} appears twice`, BadMatch.DUP_FIELD);
    seen.add(header & 0xfffffe00);
    let value = body.uint(n.bytes);
    const mask = masked ? body.uint(n.bytes) : n.field.usable;
    if (n === OXM_IN_PORT) {
      const p = masked ? null : port16(Number(value));
      if (p === null) throw new OfError(ErrType.BAD_MATCH, BadMatch.BAD_VALUE, `in_port ${value}`);
      value = BigInt(p);
    }
    if (masked && !n.field.maskable) throw badMatch(`${n.name} may not be masked`, BadMatch.BAD_MASK);
    if ((value | mask) & ~fieldOnes(n.field) || value & ~mask) throw badMatch(`${n.name}: value 0x${value.toString(16)} / 0x${mask.toString(16)} out of range`, BadMatch.BAD_VALUE);
    if (mask & ~n.field.usable) throw badMatch(`${n.name}: bits outside the field are set`, BadMatch.BAD_VALUE);
    setWireField(m, n.field, value, mask);
  }
  // Prerequisites: a field that needs dl_type/nw_proto must come with them pinned.
  const dlType = pinned(m, 'dl_type');
  const nwProto = isIp(dlType) ? pinned(m, 'nw_proto') : null;
  for (const header of seen) {
    const n = nxmByHeader(header);
    if (n?.when && !n.when(dlType, nwProto)) throw badMatch(`${n.name}: prerequisites not met`, BadMatch.BAD_PREREQ);
  }
  return m;
}

/** OpenFlow 1.1+ `ofp_match` of type OXM (1): type, length, TLVs, padded to 8 bytes. */
export function writeOxmMatch(w: Writer, m: Match, version: number): void {
  const at = w.length;
  w.u16(1).u16(0);
  w.setU16(at + 2, 4 + writeNxm(w, m, version));
  w.pad(8, at);
}

export function readOxmMatch(r: Reader, priority: number): Match {
  const type = r.u16();
  const len = r.u16();
  if (type !== 1) throw badMatch(`match type ${type} (only OXM)`, BadMatch.BAD_TYPE);
  if (len < 4) throw new OfError(ErrType.BAD_MATCH, BadMatch.BAD_LEN, `match length ${len}`);
  const m = readNxm(r, len - 4, priority);
  r.skip((8 - (len % 8)) % 8);
  return m;
}

/** OpenFlow 1.0 `ofp_match` wildcard bits. */
const W = { IN_PORT: 1, DL_VLAN: 2, DL_SRC: 4, DL_DST: 8, DL_TYPE: 16, NW_PROTO: 32, TP_SRC: 64, TP_DST: 128, DL_VLAN_PCP: 1 << 20, NW_TOS: 1 << 21 };
const OFP_VLAN_NONE = 0xffff;
/** Size of `ofp_match`. */
export const OFP10_MATCH_LEN = 40;

function prefixMask(wildBits: number): bigint {
  const n = Math.min(wildBits, 32);
  return n >= 32 ? 0n : (0xffffffffn << BigInt(n)) & 0xffffffffn;
}

/** The prefix length of a CIDR mask, or null when the mask is not one. */
function prefixLen(mask: bigint): number | null {
  for (let n = 0; n <= 32; n++) if (mask === prefixMask(32 - n)) return n;
  return null;
}

/**
 * Writes a match as OpenFlow 1.0's `ofp_match` (for messages a 1.0 peer in
 * the standard flow format gets, such as flow-removed). Fields 1.0 cannot
 * express (registers, metadata, IPv6, …) are left out, as OVS does.
 */
export function writeOf10Match(w: Writer, m: Match): void {
  let wc = 0;
  const has = (name: string) => readField(m.mask, mustField(name)) === fieldOnes(mustField(name));
  const val = (name: string) => Number(readField(m.value, mustField(name)));
  const inPort = has('in_port') ? val('in_port') : ((wc |= W.IN_PORT), 0);
  const dlSrc = has('dl_src') ? readField(m.value, mustField('dl_src')) : ((wc |= W.DL_SRC), 0n);
  const dlDst = has('dl_dst') ? readField(m.value, mustField('dl_dst')) : ((wc |= W.DL_DST), 0n);
  const tci = mustField('vlan_tci');
  const tciMask = Number(readField(m.mask, tci));
  const tciVal = Number(readField(m.value, tci));
  let dlVlan = 0;
  let pcp = 0;
  if (tciMask === 0xffff && tciVal === 0) dlVlan = OFP_VLAN_NONE;
  else if ((tciMask & 0x1fff) === 0x1fff) dlVlan = tciVal & 0xfff;
  else wc |= W.DL_VLAN;
  if ((tciMask & 0xe000) === 0xe000 && tciVal & VLAN_CFI) pcp = tciVal >> 13;
  else wc |= W.DL_VLAN_PCP;
  const dlType = has('dl_type') ? val('dl_type') : ((wc |= W.DL_TYPE), 0);
  const ipv4 = dlType === EthType.IP && !(wc & W.DL_TYPE);
  const arp = dlType === EthType.ARP && !(wc & W.DL_TYPE);
  const nwProto = ipv4 && has('nw_proto') ? val('nw_proto') : arp && has('arp_op') ? val('arp_op') : ((wc |= W.NW_PROTO), 0);
  const tos = ipv4 && readField(m.mask, mustField('ip_dscp')) ? val('ip_dscp') << 2 : ((wc |= W.NW_TOS), 0);
  const addr = (name: string, shift: number) => {
    const f = mustField(name);
    const len = ipv4 || arp ? prefixLen(readField(m.mask, f)) : 0;
    wc = (wc & ~(0x3f << shift)) | ((32 - (len ?? 0)) << shift);
    return len ? Number(readField(m.value, f)) : 0;
  };
  const nwSrc = addr(ipv4 ? 'nw_src' : 'arp_spa', 8);
  const nwDst = addr(ipv4 ? 'nw_dst' : 'arp_tpa', 14);
  const l4 = ipv4 && !(wc & W.NW_PROTO);
  const tpSrc = l4 && readField(m.mask, mustField('tp_src')) === 0xffffn ? val('tp_src') : ((wc |= W.TP_SRC), 0);
  const tpDst = l4 && readField(m.mask, mustField('tp_dst')) === 0xffffn ? val('tp_dst') : ((wc |= W.TP_DST), 0);
  w.u32(wc >>> 0).u16(inPort).uint(dlSrc, 6).uint(dlDst, 6).u16(dlVlan).u8(pcp).zeros(1).u16(dlType).u8(tos).u8(nwProto).zeros(2);
  w.u32(nwSrc).u32(nwDst).u16(tpSrc).u16(tpDst);
}

/** Reads OpenFlow 1.0's `ofp_match` (40 bytes) into a match at `priority`. */
export function readOf10Match(r: Reader, priority: number): Match {
  const m = newMatch(priority);
  const wc = r.u32();
  const inPort = r.u16();
  const dlSrc = r.uint(6);
  const dlDst = r.uint(6);
  const dlVlan = r.u16();
  const dlVlanPcp = r.u8();
  r.skip(1);
  const dlType = r.u16();
  const nwTos = r.u8();
  const nwProto = r.u8();
  r.skip(2);
  const nwSrc = BigInt(r.u32());
  const nwDst = BigInt(r.u32());
  const tpSrc = r.u16();
  const tpDst = r.u16();
  const set = (name: string, v: bigint | number) => setWireField(m, mustField(name), BigInt(v), mustField(name).usable);
  if (!(wc & W.IN_PORT)) set('in_port', inPort);
  if (!(wc & W.DL_SRC)) set('dl_src', dlSrc);
  if (!(wc & W.DL_DST)) set('dl_dst', dlDst);
  const tci = mustField('vlan_tci');
  if (!(wc & W.DL_VLAN)) {
    if (dlVlan === OFP_VLAN_NONE) setMatchField(m, tci, 0n, 0xffffn);
    else setMatchField(m, tci, BigInt((dlVlan & 0xfff) | VLAN_CFI), 0x1fffn);
  }
  if (!(wc & W.DL_VLAN_PCP) && !((wc & W.DL_VLAN) === 0 && dlVlan === OFP_VLAN_NONE)) {
    const cur = readField(m.value, tci);
    const curMask = readField(m.mask, tci);
    setMatchField(m, tci, cur | BigInt(((dlVlanPcp & 7) << 13) | VLAN_CFI), curMask | 0xf000n);
  }
  if (!(wc & W.DL_TYPE)) set('dl_type', dlType);
  const ipv4 = !(wc & W.DL_TYPE) && dlType === EthType.IP;
  const arp = !(wc & W.DL_TYPE) && dlType === EthType.ARP;
  if (ipv4 || arp) {
    if (!(wc & W.NW_PROTO)) set(ipv4 ? 'nw_proto' : 'arp_op', ipv4 ? nwProto : nwProto);
    const srcMask = prefixMask((wc >>> 8) & 0x3f);
    const dstMask = prefixMask((wc >>> 14) & 0x3f);
    if (srcMask) setMatchField(m, mustField(ipv4 ? 'nw_src' : 'arp_spa'), nwSrc & srcMask, srcMask);
    if (dstMask) setMatchField(m, mustField(ipv4 ? 'nw_dst' : 'arp_tpa'), nwDst & dstMask, dstMask);
  }
  if (ipv4) {
    if (!(wc & W.NW_TOS)) set('nw_tos', nwTos & 0xfc);
    const proto = wc & W.NW_PROTO ? null : nwProto;
    if (proto === IpProto.TCP || proto === IpProto.UDP || proto === IpProto.SCTP) {
      if (!(wc & W.TP_SRC)) set('tp_src', tpSrc);
      if (!(wc & W.TP_DST)) set('tp_dst', tpDst);
    } else if (proto === IpProto.ICMP) {
      if (!(wc & W.TP_SRC)) set('icmp_type', tpSrc & 0xff);
      if (!(wc & W.TP_DST)) set('icmp_code', tpDst & 0xff);
    }
  }
  return m;
}

