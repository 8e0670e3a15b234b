/**
 * The OpenFlow field registry and the `Flow` record.
 *
 * A `Flow` holds the value of every matchable field for one packet (plus the
 * pipeline registers) in a fixed `Uint32Array` of `FLOW_WORDS` words. Each
 * storage field owns whole words at a fixed slot (`Slot.*`), so the
 * classifier can mask, hash and compare flows word by word, and a mask is
 * simply another `Flow` whose 1-bits are significant. Layout rules:
 *
 * - A field of at most 32 bits owns one word and sits in its low bits
 *   (`flow[Slot.TP_DST] === 80`). Values are host-order numbers.
 * - Wider fields own several consecutive words, most significant word first:
 *   a MAC is `[upper 16 bits, lower 32 bits]`, `metadata`/`tun_id` are
 *   `[high 32, low 32]`, an IPv6 address is 4 words in network order.
 * - Storage is shared the way OVS's datapath shares it, so the slow path
 *   maps 1:1 onto the datapath flow key: ARP's opcode lives in `NW_PROTO`,
 *   ARP SPA/TPA in `NW_SRC`/`NW_DST`, ICMP type/code in `TP_SRC`/`TP_DST`,
 *   ND SLL/TLL in `ARP_SHA`/`ARP_THA`.
 * - `VLAN_TCI` is the 802.1Q TCI with bit 0x1000 (CFI) set when a tag is
 *   present, so 0 means "no VLAN" (OVS's convention). `VLAN_TCI1` is the
 *   inner tag of a double-tagged packet, alike; as in OVS, no OpenFlow field
 *   reads it (`pop_vlan` makes it the outer tag). `VLAN_TPID` is the outer
 *   tag's TPID as received (0x8100 or 0x88a8; 0 when untagged or unknown),
 *   which the datapath keys on.
 * - `NW_TOS` is the whole ToS/traffic-class byte (DSCP in the upper 6 bits,
 *   ECN in the lower 2).
 *
 * Reading a field through the registry (`readField`/`writeField`) is for
 * parsing, printing and `load`/`move`; xlate's hot path indexes slots
 * directly. Everything here is immutable data; nothing is module state.
 */

/** Word index of each storage field in a `Flow`. */
export const Slot = {
  IN_PORT: 0,
  DL_DST: 1, // 2 words
  DL_SRC: 3, // 2 words
  DL_TYPE: 5,
  VLAN_TCI: 6,
  NW_SRC: 7,
  NW_DST: 8,
  NW_PROTO: 9,
  NW_TOS: 10,
  NW_TTL: 11,
  NW_FRAG: 12,
  TP_SRC: 13,
  TP_DST: 14,
  TCP_FLAGS: 15,
  ARP_SHA: 16, // 2 words
  ARP_THA: 18, // 2 words
  IPV6_SRC: 20, // 4 words
  IPV6_DST: 24, // 4 words
  IPV6_LABEL: 28,
  ND_TARGET: 29, // 4 words
  METADATA: 33, // 2 words
  REG0: 35, // REG0..REG15 are 35..50
  CONJ_ID: 51,
  TUN_ID: 52, // 2 words
  TUN_SRC: 54,
  TUN_DST: 55,
  VLAN_TCI1: 56,
  VLAN_TPID: 57,
  // Packet metadata a trace may give (skb_mark/pkt_mark, skb_priority); no rule matches them and the datapath key has neither.
  PKT_MARK: 58,
  SKB_PRIORITY: 59,
} as const;

/** Number of 32-bit words in a `Flow`. */
export const FLOW_WORDS = 60;

/**
 * The values of all fields for one packet, or (as a mask) which bits of a
 * flow matter. See the module comment for the layout.
 */
export type Flow = Uint32Array;

/** A zeroed flow (or an all-wildcard mask). */
export function newFlow(): Flow {
  return new Uint32Array(FLOW_WORDS);
}

/** Ethertypes the prerequisites and shorthands refer to. */
export const EthType = {
  IP: 0x0800,
  ARP: 0x0806,
  RARP: 0x8035,
  IPV6: 0x86dd,
  VLAN: 0x8100,
  VLAN_8021AD: 0x88a8,
} as const;

/** IP protocol numbers the prerequisites and shorthands refer to. */
export const IpProto = { ICMP: 1, IGMP: 2, TCP: 6, UDP: 17, SCTP: 132, ICMPV6: 58 } as const;

/** `VLAN_TCI` bit set when the packet carries a VLAN tag. */
export const VLAN_CFI = 0x1000;
/** `NW_FRAG` bit: the packet is an IP fragment. */
export const FRAG_ANY = 1;
/** `NW_FRAG` bit: the packet is a fragment other than the first. */
export const FRAG_LATER = 2;

/**
 * Reserved OpenFlow port numbers, in OVS's 16-bit port space (OpenFlow 1.0
 * numbering; OpenFlow 1.1+ 32-bit numbers 0xfffffff8.. map onto these).
 */
export const OFPP = {
  /** Largest number of a physical/logical port. */
  MAX: 0xff00,
  IN_PORT: 0xfff8,
  TABLE: 0xfff9,
  NORMAL: 0xfffa,
  FLOOD: 0xfffb,
  ALL: 0xfffc,
  CONTROLLER: 0xfffd,
  LOCAL: 0xfffe,
  NONE: 0xffff,
} as const;

/** How a field's values are written and read in rule files. */
export type FieldFormat =
  | 'decimal' // 80
  | 'hex' // 0x1f (decimal accepted on input)
  | 'mac' // 00:11:22:33:44:55
  | 'ipv4' // 10.0.0.1, 10.0.0.0/8
  | 'ipv6' // 2001:db8::1, 2001:db8::/32
  | 'port' // 1, LOCAL, IN_PORT, a name via a resolver
  | 'ethertype' // 0x0800
  | 'frag' // no, yes, first, later, not_later
  | 'tcp_flags'; // +syn-ack, or 0x012/0xfff

/**
 * A packet-shape requirement a field depends on (OpenFlow prerequisites):
 * the match must pin `dl_type` to one of `dlTypes`, and, when given,
 * `nw_proto` to one of `nwProtos` and `icmp_type` to one of `icmpTypes`.
 */
export interface Prereq {
  readonly dlTypes: readonly number[];
  readonly nwProtos?: readonly number[];
  readonly icmpTypes?: readonly number[];
}

/**
 * One named field as rule files and actions see it. Several fields may view
 * the same storage (`nw_src` and `arp_spa`, `vlan_tci` and `dl_vlan`).
 */
export interface Field {
  /** Canonical name, as ovs-ofctl prints it in a match (`dl_src`, `nw_dst`). */
  readonly name: string;
  /** Other names accepted on input (`eth_src`, `NXM_OF_ETH_SRC`, `OXM_OF_ETH_SRC`). */
  readonly aliases: readonly string[];
  /** Name used in `load`/`move`/`learn` field references (`NXM_OF_ETH_SRC`), if any. */
  readonly nxm: string | null;
  /** Name ovs-ofctl prints after `set_field:…->` (`eth_src`, `ip_dst`). */
  readonly setFieldName: string;
  /** Width of the field's value in bits. */
  readonly bits: number;
  /** First storage word (`Slot.*`). */
  readonly slot: number;
  /** Storage words the field spans (1, 2 or 4). */
  readonly words: number;
  /** For one-word fields: bit position of the field's LSB in its word. */
  readonly shift: number;
  /**
   * Bits of the value that are matchable (e.g. 0xfc for `nw_tos`, whose ECN
   * bits are a separate field); other bits are silently zeroed as OVS does.
   * Equals the all-ones mask of `bits` for most fields.
   */
  readonly usable: bigint;
  readonly format: FieldFormat;
  /** Alternatives: the field is usable when any one of them holds; null = always. */
  readonly prereqs: readonly Prereq[] | null;
  /** Arbitrary bitwise masks allowed in a match. */
  readonly maskable: boolean;
  /** `set_field`/`load`/`move` may write it. */
  readonly writable: boolean;
}

const IP = [EthType.IP];
const IP_ANY = [EthType.IP, EthType.IPV6];
const P_IPV4: Prereq[] = [{ dlTypes: IP }];
const P_IPV6: Prereq[] = [{ dlTypes: [EthType.IPV6] }];
const P_IP_ANY: Prereq[] = [{ dlTypes: IP_ANY }];
const P_ARP: Prereq[] = [{ dlTypes: [EthType.ARP, EthType.RARP] }];
const P_TCP: Prereq[] = [{ dlTypes: IP_ANY, nwProtos: [IpProto.TCP] }];
const P_UDP: Prereq[] = [{ dlTypes: IP_ANY, nwProtos: [IpProto.UDP] }];
const P_SCTP: Prereq[] = [{ dlTypes: IP_ANY, nwProtos: [IpProto.SCTP] }];
const P_L4: Prereq[] = [{ dlTypes: IP_ANY, nwProtos: [IpProto.TCP, IpProto.UDP, IpProto.SCTP] }];
const P_ICMP4: Prereq[] = [{ dlTypes: IP, nwProtos: [IpProto.ICMP] }];
const P_ICMP6: Prereq[] = [{ dlTypes: [EthType.IPV6], nwProtos: [IpProto.ICMPV6] }];
const P_ICMP_ANY: Prereq[] = [...P_ICMP4, ...P_ICMP6];
const P_ND: Prereq[] = [{ dlTypes: [EthType.IPV6], nwProtos: [IpProto.ICMPV6], icmpTypes: [135, 136] }];
const P_ND_SLL: Prereq[] = [{ dlTypes: [EthType.IPV6], nwProtos: [IpProto.ICMPV6], icmpTypes: [135] }];
const P_ND_TLL: Prereq[] = [{ dlTypes: [EthType.IPV6], nwProtos: [IpProto.ICMPV6], icmpTypes: [136] }];

interface FieldSpec {
  name: string;
  aliases?: string[];
  nxm?: string;
  setFieldName?: string;
  bits: number;
  slot: number;
  shift?: number;
  usable?: bigint;
  format: FieldFormat;
  prereqs?: Prereq[];
  maskable?: boolean;
  writable?: boolean;
}

function field(s: FieldSpec): Field {
  const all = (1n << BigInt(s.bits)) - 1n;
  return {
    name: s.name,
    aliases: s.aliases ?? [],
    nxm: s.nxm ?? null,
    setFieldName: s.setFieldName ?? s.name,
    bits: s.bits,
    slot: s.slot,
    words: Math.ceil(((s.shift ?? 0) + s.bits) / 32),
    shift: s.shift ?? 0,
    usable: s.usable ?? all,
    format: s.format,
    prereqs: s.prereqs ?? null,
    maskable: s.maskable ?? true,
    writable: s.writable ?? true,
  };
}

function regField(i: number): Field {
  return field({
    name: `reg${i}`,
    aliases: [`NXM_NX_REG${i}`],
    nxm: `NXM_NX_REG${i}`,
    bits: 32,
    slot: Slot.REG0 + i,
    format: 'hex',
  });
}

/**
 * `xregN` (OpenFlow 1.5's packet registers, OXM_OF_PKT_REGN) and `xxregN`:
 * 64- and 128-bit views over reg(2N)..reg(2N+1) and reg(4N)..reg(4N+3), the
 * lower-numbered register holding the most significant bits (as OVS
 * documents), which is the flow's word order.
 */
function wideRegField(i: number, words: 2 | 4): Field {
  const name = words === 2 ? `xreg${i}` : `xxreg${i}`;
  const nxm = words === 2 ? `OXM_OF_PKT_REG${i}` : `NXM_NX_XXREG${i}`;
  return field({ name, aliases: [nxm], nxm, bits: 32 * words, slot: Slot.REG0 + i * words, format: 'hex' });
}

/**
 * Every field. (The printer has its own, ovs-ofctl-compatible order; this
 * list's order only decides which name `FIELDS` maps an alias to first.)
 */
export const FIELD_LIST: readonly Field[] = [
  field({ name: 'tun_id', aliases: ['tunnel_id', 'NXM_NX_TUN_ID', 'OXM_OF_TUNNEL_ID'], nxm: 'NXM_NX_TUN_ID', bits: 64, slot: Slot.TUN_ID, format: 'hex' }),
  field({ name: 'tun_src', aliases: ['NXM_NX_TUN_IPV4_SRC'], nxm: 'NXM_NX_TUN_IPV4_SRC', bits: 32, slot: Slot.TUN_SRC, format: 'ipv4' }),
  field({ name: 'tun_dst', aliases: ['NXM_NX_TUN_IPV4_DST'], nxm: 'NXM_NX_TUN_IPV4_DST', bits: 32, slot: Slot.TUN_DST, format: 'ipv4' }),
  field({ name: 'metadata', aliases: ['OXM_OF_METADATA'], nxm: 'OXM_OF_METADATA', bits: 64, slot: Slot.METADATA, format: 'hex' }),
  ...Array.from({ length: 16 }, (_, i) => regField(i)),
  ...Array.from({ length: 8 }, (_, i) => wideRegField(i, 2)),
  ...Array.from({ length: 4 }, (_, i) => wideRegField(i, 4)),
  field({ name: 'in_port', aliases: ['NXM_OF_IN_PORT'], nxm: 'NXM_OF_IN_PORT', bits: 16, slot: Slot.IN_PORT, format: 'port', maskable: false }),
  // OpenFlow 1.2+'s 32-bit view of in_port (the same storage; reserved ports in OVS's 16-bit numbering).
  field({ name: 'in_port_oxm', aliases: ['OXM_OF_IN_PORT'], nxm: 'OXM_OF_IN_PORT', bits: 32, slot: Slot.IN_PORT, format: 'port', maskable: false }),
  field({ name: 'conj_id', bits: 32, slot: Slot.CONJ_ID, format: 'decimal', maskable: false, writable: false }),
  field({ name: 'dl_src', aliases: ['eth_src', 'NXM_OF_ETH_SRC', 'OXM_OF_ETH_SRC'], nxm: 'NXM_OF_ETH_SRC', setFieldName: 'eth_src', bits: 48, slot: Slot.DL_SRC, format: 'mac' }),
  field({ name: 'dl_dst', aliases: ['eth_dst', 'NXM_OF_ETH_DST', 'OXM_OF_ETH_DST'], nxm: 'NXM_OF_ETH_DST', setFieldName: 'eth_dst', bits: 48, slot: Slot.DL_DST, format: 'mac' }),
  field({ name: 'dl_type', aliases: ['eth_type', 'NXM_OF_ETH_TYPE', 'OXM_OF_ETH_TYPE'], nxm: 'NXM_OF_ETH_TYPE', setFieldName: 'eth_type', bits: 16, slot: Slot.DL_TYPE, format: 'ethertype', maskable: false, writable: false }),
  field({ name: 'vlan_tci', aliases: ['NXM_OF_VLAN_TCI'], nxm: 'NXM_OF_VLAN_TCI', bits: 16, slot: Slot.VLAN_TCI, format: 'hex' }),
  // dl_vlan / dl_vlan_pcp are OpenFlow 1.0 views of vlan_tci; vlan_vid / vlan_pcp the OXM ones.
  field({ name: 'dl_vlan', bits: 12, slot: Slot.VLAN_TCI, format: 'decimal', maskable: false }),
  field({ name: 'vlan_vid', aliases: ['OXM_OF_VLAN_VID'], nxm: 'OXM_OF_VLAN_VID', bits: 13, slot: Slot.VLAN_TCI, format: 'decimal' }),
  field({ name: 'dl_vlan_pcp', bits: 3, slot: Slot.VLAN_TCI, shift: 13, format: 'decimal', maskable: false }),
  field({ name: 'vlan_pcp', aliases: ['OXM_OF_VLAN_PCP'], nxm: 'OXM_OF_VLAN_PCP', bits: 3, slot: Slot.VLAN_TCI, shift: 13, format: 'decimal', maskable: false }),
  field({ name: 'nw_src', aliases: ['ip_src', 'NXM_OF_IP_SRC', 'OXM_OF_IPV4_SRC'], nxm: 'NXM_OF_IP_SRC', setFieldName: 'ip_src', bits: 32, slot: Slot.NW_SRC, format: 'ipv4', prereqs: P_IPV4 }),
  field({ name: 'nw_dst', aliases: ['ip_dst', 'NXM_OF_IP_DST', 'OXM_OF_IPV4_DST'], nxm: 'NXM_OF_IP_DST', setFieldName: 'ip_dst', bits: 32, slot: Slot.NW_DST, format: 'ipv4', prereqs: P_IPV4 }),
  field({ name: 'arp_spa', aliases: ['NXM_OF_ARP_SPA', 'OXM_OF_ARP_SPA'], nxm: 'NXM_OF_ARP_SPA', bits: 32, slot: Slot.NW_SRC, format: 'ipv4', prereqs: P_ARP }),
  field({ name: 'arp_tpa', aliases: ['NXM_OF_ARP_TPA', 'OXM_OF_ARP_TPA'], nxm: 'NXM_OF_ARP_TPA', bits: 32, slot: Slot.NW_DST, format: 'ipv4', prereqs: P_ARP }),
  field({ name: 'ipv6_src', aliases: ['NXM_NX_IPV6_SRC', 'OXM_OF_IPV6_SRC'], nxm: 'NXM_NX_IPV6_SRC', bits: 128, slot: Slot.IPV6_SRC, format: 'ipv6', prereqs: P_IPV6 }),
  field({ name: 'ipv6_dst', aliases: ['NXM_NX_IPV6_DST', 'OXM_OF_IPV6_DST'], nxm: 'NXM_NX_IPV6_DST', bits: 128, slot: Slot.IPV6_DST, format: 'ipv6', prereqs: P_IPV6 }),
  field({ name: 'ipv6_label', aliases: ['NXM_NX_IPV6_LABEL', 'OXM_OF_IPV6_FLABEL'], nxm: 'NXM_NX_IPV6_LABEL', bits: 20, slot: Slot.IPV6_LABEL, format: 'hex', prereqs: P_IPV6 }),
  field({ name: 'nw_proto', aliases: ['ip_proto', 'NXM_OF_IP_PROTO', 'OXM_OF_IP_PROTO'], nxm: 'NXM_OF_IP_PROTO', bits: 8, slot: Slot.NW_PROTO, format: 'decimal', prereqs: P_IP_ANY, maskable: false, writable: false }),
  field({ name: 'arp_op', aliases: ['NXM_OF_ARP_OP', 'OXM_OF_ARP_OP'], nxm: 'NXM_OF_ARP_OP', bits: 16, slot: Slot.NW_PROTO, format: 'decimal', prereqs: P_ARP, maskable: false }),
  // nw_tos is the ToS byte with the ECN bits ignored; ip_dscp is the same six bits shifted down.
  field({ name: 'nw_tos', aliases: ['NXM_OF_IP_TOS'], nxm: 'NXM_OF_IP_TOS', bits: 8, slot: Slot.NW_TOS, usable: 0xfcn, format: 'decimal', prereqs: P_IP_ANY, maskable: false }),
  field({ name: 'ip_dscp', aliases: ['OXM_OF_IP_DSCP'], nxm: 'OXM_OF_IP_DSCP', bits: 6, slot: Slot.NW_TOS, shift: 2, format: 'decimal', prereqs: P_IP_ANY, maskable: false }),
  field({ name: 'nw_ecn', aliases: ['ip_ecn', 'NXM_NX_IP_ECN', 'OXM_OF_IP_ECN'], nxm: 'NXM_NX_IP_ECN', bits: 2, slot: Slot.NW_TOS, format: 'decimal', prereqs: P_IP_ANY, maskable: false }),
  field({ name: 'nw_ttl', aliases: ['NXM_NX_IP_TTL'], nxm: 'NXM_NX_IP_TTL', bits: 8, slot: Slot.NW_TTL, format: 'decimal', prereqs: P_IP_ANY, maskable: false }),
  field({ name: 'nw_frag', aliases: ['ip_frag', 'NXM_NX_IP_FRAG'], nxm: 'NXM_NX_IP_FRAG', bits: 2, slot: Slot.NW_FRAG, format: 'frag', prereqs: P_IP_ANY, writable: false }),
  field({ name: 'tp_src', bits: 16, slot: Slot.TP_SRC, format: 'decimal', prereqs: P_L4 }),
  field({ name: 'tp_dst', bits: 16, slot: Slot.TP_DST, format: 'decimal', prereqs: P_L4 }),
  field({ name: 'tcp_src', aliases: ['NXM_OF_TCP_SRC', 'OXM_OF_TCP_SRC'], nxm: 'NXM_OF_TCP_SRC', bits: 16, slot: Slot.TP_SRC, format: 'decimal', prereqs: P_TCP }),
  field({ name: 'tcp_dst', aliases: ['NXM_OF_TCP_DST', 'OXM_OF_TCP_DST'], nxm: 'NXM_OF_TCP_DST', bits: 16, slot: Slot.TP_DST, format: 'decimal', prereqs: P_TCP }),
  field({ name: 'udp_src', aliases: ['NXM_OF_UDP_SRC', 'OXM_OF_UDP_SRC'], nxm: 'NXM_OF_UDP_SRC', bits: 16, slot: Slot.TP_SRC, format: 'decimal', prereqs: P_UDP }),
  field({ name: 'udp_dst', aliases: ['NXM_OF_UDP_DST', 'OXM_OF_UDP_DST'], nxm: 'NXM_OF_UDP_DST', bits: 16, slot: Slot.TP_DST, format: 'decimal', prereqs: P_UDP }),
  field({ name: 'sctp_src', aliases: ['OXM_OF_SCTP_SRC'], nxm: 'OXM_OF_SCTP_SRC', bits: 16, slot: Slot.TP_SRC, format: 'decimal', prereqs: P_SCTP }),
  field({ name: 'sctp_dst', aliases: ['OXM_OF_SCTP_DST'], nxm: 'OXM_OF_SCTP_DST', bits: 16, slot: Slot.TP_DST, format: 'decimal', prereqs: P_SCTP }),
  field({ name: 'tcp_flags', aliases: ['NXM_NX_TCP_FLAGS', 'OXM_OF_TCP_FLAGS'], nxm: 'NXM_NX_TCP_FLAGS', bits: 12, slot: Slot.TCP_FLAGS, format: 'tcp_flags', prereqs: P_TCP, writable: false }),
  // icmp_type/icmp_code name both ICMPv4 and ICMPv6 in matches (ovs-ofctl prints them so for icmp6 too).
  field({ name: 'icmp_type', aliases: ['NXM_OF_ICMP_TYPE', 'OXM_OF_ICMPV4_TYPE'], nxm: 'NXM_OF_ICMP_TYPE', bits: 8, slot: Slot.TP_SRC, format: 'decimal', prereqs: P_ICMP_ANY, maskable: false }),
  field({ name: 'icmp_code', aliases: ['NXM_OF_ICMP_CODE', 'OXM_OF_ICMPV4_CODE'], nxm: 'NXM_OF_ICMP_CODE', bits: 8, slot: Slot.TP_DST, format: 'decimal', prereqs: P_ICMP_ANY, maskable: false }),
  field({ name: 'icmpv6_type', aliases: ['NXM_NX_ICMPV6_TYPE', 'OXM_OF_ICMPV6_TYPE'], nxm: 'NXM_NX_ICMPV6_TYPE', bits: 8, slot: Slot.TP_SRC, format: 'decimal', prereqs: P_ICMP6, maskable: false }),
  field({ name: 'icmpv6_code', aliases: ['NXM_NX_ICMPV6_CODE', 'OXM_OF_ICMPV6_CODE'], nxm: 'NXM_NX_ICMPV6_CODE', bits: 8, slot: Slot.TP_DST, format: 'decimal', prereqs: P_ICMP6, maskable: false }),
  field({ name: 'nd_target', aliases: ['NXM_NX_ND_TARGET', 'OXM_OF_IPV6_ND_TARGET'], nxm: 'NXM_NX_ND_TARGET', bits: 128, slot: Slot.ND_TARGET, format: 'ipv6', prereqs: P_ND }),
  field({ name: 'nd_sll', aliases: ['NXM_NX_ND_SLL', 'OXM_OF_IPV6_ND_SLL'], nxm: 'NXM_NX_ND_SLL', bits: 48, slot: Slot.ARP_SHA, format: 'mac', prereqs: P_ND_SLL }),
  field({ name: 'nd_tll', aliases: ['NXM_NX_ND_TLL', 'OXM_OF_IPV6_ND_TLL'], nxm: 'NXM_NX_ND_TLL', bits: 48, slot: Slot.ARP_THA, format: 'mac', prereqs: P_ND_TLL }),
  field({ name: 'arp_sha', aliases: ['NXM_NX_ARP_SHA', 'OXM_OF_ARP_SHA'], nxm: 'NXM_NX_ARP_SHA', bits: 48, slot: Slot.ARP_SHA, format: 'mac', prereqs: P_ARP }),
  field({ name: 'arp_tha', aliases: ['NXM_NX_ARP_THA', 'OXM_OF_ARP_THA'], nxm: 'NXM_NX_ARP_THA', bits: 48, slot: Slot.ARP_THA, format: 'mac', prereqs: P_ARP }),
];

/** Every field by canonical name and by each alias. */
export const FIELDS: ReadonlyMap<string, Field> = new Map(
  FIELD_LIST.flatMap((f) => [f.name, ...f.aliases].map((n) => [n, f] as [string, Field])),
);

/** Looks a field up by any of its names; undefined when unknown. */
export function fieldByName(name: string): Field | undefined {
  return FIELDS.get(name);
}

/** The field with this canonical name; throws on a typo (a programming error). */
export function mustField(name: string): Field {
  const f = FIELDS.get(name);
  if (!f) throw new Error(`no such field: ${name}`);
  return f;
}

/**
 * A bit range of a field, as written `NXM_NX_REG0[0..15]`: `ofs` is the bit
 * offset from the field's least significant bit, `nBits` the width.
 * `NXM_NX_REG0[]` is the whole field (`ofs` 0, `nBits` = field.bits).
 */
export interface FieldRange {
  readonly field: Field;
  readonly ofs: number;
  readonly nBits: number;
}

/** Reads a field's value from a flow (or a mask) as a bigint. */
export function readField(flow: Flow, f: Field): bigint {
  if (f.words === 1) return BigInt(((flow[f.slot] >>> f.shift) & lowMask32(f.bits)) >>> 0);
  let v = 0n;
  for (let i = 0; i < f.words; i++) v = (v << 32n) | BigInt(flow[f.slot + i]);
  return v & ((1n << BigInt(f.bits)) - 1n);
}

/** Writes the bits of `value` selected by `mask` into a field of a flow. */
export function writeField(flow: Flow, f: Field, value: bigint, mask: bigint): void {
  if (f.words === 1) {
    const m = (Number(mask & 0xffffffffn) << f.shift) >>> 0;
    const v = (Number(value & 0xffffffffn) << f.shift) >>> 0;
    flow[f.slot] = ((flow[f.slot] & ~m) | (v & m)) >>> 0;
    return;
  }
  for (let i = f.words - 1, s = 0n; i >= 0; i--, s += 32n) {
    const m = Number((mask >> s) & 0xffffffffn);
    const v = Number((value >> s) & 0xffffffffn);
    flow[f.slot + i] = ((flow[f.slot + i] & ~m) | (v & m)) >>> 0;
  }
}

/** All-ones in the low `bits` bits of a 32-bit word (bits ≤ 32). */
export function lowMask32(bits: number): number {
  return bits >= 32 ? 0xffffffff : ((1 << bits) >>> 0) - 1;
}

/** A field's value as a MAC number (< 2^48) from its two storage words. */
export function macAt(flow: Flow, slot: number): number {
  return flow[slot] * 0x1_0000_0000 + flow[slot + 1];
}
