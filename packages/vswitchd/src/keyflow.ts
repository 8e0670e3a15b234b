/**
 * Conversions between the datapath's key (DpFlowKey, what upcalls carry)
 * and ofproto's Flow words (what xlate and the classifier read), and back
 * for the fields a packet can carry (to build packets from an ofctl flow).
 * The slow-path-only words (metadata, registers, conj_id) start at zero.
 */
import { newDpFlowKey, newFlow, Slot, type DpFlowKey, type Flow } from '@nvs/ofproto';

const ONE_WORD: readonly [keyof DpFlowKey, number][] = [
  ['eth_type', Slot.DL_TYPE],
  ['vlan_tci', Slot.VLAN_TCI],
  ['nw_src', Slot.NW_SRC],
  ['nw_dst', Slot.NW_DST],
  ['nw_proto', Slot.NW_PROTO],
  ['nw_tos', Slot.NW_TOS],
  ['nw_ttl', Slot.NW_TTL],
  ['nw_frag', Slot.NW_FRAG],
  ['tp_src', Slot.TP_SRC],
  ['tp_dst', Slot.TP_DST],
  ['tcp_flags', Slot.TCP_FLAGS],
  ['ipv6_label', Slot.IPV6_LABEL],
];
const MACS: readonly [keyof DpFlowKey, number][] = [
  ['eth_dst', Slot.DL_DST],
  ['eth_src', Slot.DL_SRC],
  ['arp_sha', Slot.ARP_SHA],
  ['arp_tha', Slot.ARP_THA],
];
const WIDE: readonly [keyof DpFlowKey, number][] = [
  ['ipv6_src', Slot.IPV6_SRC],
  ['ipv6_dst', Slot.IPV6_DST],
  ['nd_target', Slot.ND_TARGET],
];

/**
 * The Flow of a datapath key, with `ofport` (OpenFlow numbering) as in_port;
 * written over `into` when given (the upcall path reuses one: xlate copies it).
 */
export function flowFromKey(key: DpFlowKey, ofport: number, into?: Flow): Flow {
  // Field by field rather than through ONE_WORD/MACS: this runs once per upcall.
  const f = into ? into.fill(0) : newFlow();
  f[Slot.IN_PORT] = ofport;
  f[Slot.DL_TYPE] = key.eth_type;
  f[Slot.VLAN_TCI] = key.vlan_tci;
  f[Slot.NW_SRC] = key.nw_src;
  f[Slot.NW_DST] = key.nw_dst;
  f[Slot.NW_PROTO] = key.nw_proto;
  f[Slot.NW_TOS] = key.nw_tos;
  f[Slot.NW_TTL] = key.nw_ttl;
  f[Slot.NW_FRAG] = key.nw_frag;
  f[Slot.TP_SRC] = key.tp_src;
  f[Slot.TP_DST] = key.tp_dst;
  f[Slot.TCP_FLAGS] = key.tcp_flags;
  f[Slot.IPV6_LABEL] = key.ipv6_label;
  setMac(f, Slot.DL_DST, key.eth_dst);
  setMac(f, Slot.DL_SRC, key.eth_src);
  setMac(f, Slot.ARP_SHA, key.arp_sha);
  setMac(f, Slot.ARP_THA, key.arp_tha);
  setWide(f, Slot.IPV6_SRC, key.ipv6_src);
  setWide(f, Slot.IPV6_DST, key.ipv6_dst);
  setWide(f, Slot.ND_TARGET, key.nd_target);
  return f;
}

function setMac(f: Flow, slot: number, mac: number): void {
  if (mac === 0) return;
  f[slot] = Math.floor(mac / 0x1_0000_0000);
  f[slot + 1] = mac >>> 0;
}

function setWide(f: Flow, slot: number, value: bigint): void {
  // Zero for every IPv4 packet, and BigInt arithmetic is not free.
  if (!value) return;
  let v = BigInt(value);
  for (let i = 3; i >= 0; i--) {
    f[slot + i] = Number(v & 0xffffffffn);
    v >>= 32n;
  }
}

/** The datapath key fields of a Flow (in_port left 0: the caller maps ports). */
export function keyFromFlow(f: Flow): DpFlowKey {
  const key = newDpFlowKey();
  const k = key as unknown as Record<string, number | bigint>;
  for (const [name, slot] of ONE_WORD) k[name] = f[slot];
  for (const [name, slot] of MACS) k[name] = f[slot] * 0x1_0000_0000 + f[slot + 1];
  for (const [name, slot] of WIDE) {
    let v = 0n;
    for (let i = 0; i < 4; i++) v = (v << 32n) | BigInt(f[slot + i]);
    k[name] = v;
  }
  if (key.vlan_tci & 0x1000) key.vlan_tpid = 0x8100;
  return key;
}
