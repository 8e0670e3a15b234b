/**
 * Builds a packet from flow fields: what `netdev-dummy/receive PORT FLOW`
 * and `ofproto/trace` with a flow use to make real bytes, and what the
 * benchmark uses to make many distinct 5-tuples. Field names and
 * conventions are the datapath key's (see @nvs/ofproto dpif.ts: MACs as
 * 48-bit numbers, IPv4 as host-order numbers, IPv6 as bigints, vlan_tci with
 * 0x1000 when tagged, ARP opcode in nw_proto, ICMP type/code in tp_src/tp_dst).
 * Checksums are computed, so the datapath's parsers see valid packets.
 */

export interface PacketFields {
  eth_src: number;
  eth_dst: number;
  eth_type: number;
  vlan_tci: number;
  nw_src: number;
  nw_dst: number;
  nw_proto: number;
  nw_tos: number;
  nw_ttl: number;
  tp_src: number;
  tp_dst: number;
  tcp_flags: number;
  ipv6_src: bigint;
  ipv6_dst: bigint;
  ipv6_label: number;
  arp_sha: number;
  arp_tha: number;
}

const ETH_IP = 0x0800;
const ETH_ARP = 0x0806;
const ETH_IPV6 = 0x86dd;

function putMac(b: Uint8Array, off: number, mac: number): void {
  for (let i = 5; i >= 0; i--) {
    b[off + i] = mac % 256;
    mac = Math.floor(mac / 256);
  }
}

function putU16(b: Uint8Array, off: number, v: number): void {
  b[off] = (v >>> 8) & 0xff;
  b[off + 1] = v & 0xff;
}

function putU32(b: Uint8Array, off: number, v: number): void {
  putU16(b, off, v >>> 16);
  putU16(b, off + 2, v & 0xffff);
}

function put128(b: Uint8Array, off: number, v: bigint): void {
  for (let i = 15; i >= 0; i--) {
    b[off + i] = Number(v & 0xffn);
    v >>= 8n;
  }
}

/** One's-complement sum of `b[start..end)` folded into 16 bits (plus a starting sum). */
function csum(b: Uint8Array, start: number, end: number, sum = 0): number {
  for (let i = start; i < end; i += 2) sum += (b[i] << 8) | (i + 1 < end ? b[i + 1] : 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

function l4Header(f: Partial<PacketFields>, proto: number): Uint8Array {
  if (proto === 6) {
    const h = new Uint8Array(20);
    putU16(h, 0, f.tp_src ?? 0);
    putU16(h, 2, f.tp_dst ?? 0);
    putU16(h, 12, (5 << 12) | ((f.tcp_flags ?? 0x002) & 0xfff));
    putU16(h, 14, 65535);
    return h;
  }
  if (proto === 17 || proto === 132) {
    const h = new Uint8Array(proto === 17 ? 8 : 12);
    putU16(h, 0, f.tp_src ?? 0);
    putU16(h, 2, f.tp_dst ?? 0);
    if (proto === 17) putU16(h, 4, 8);
    return h;
  }
  if (proto === 1 || proto === 58) {
    const h = new Uint8Array(8);
    h[0] = f.tp_src ?? (proto === 1 ? 8 : 128);
    h[1] = f.tp_dst ?? 0;
    return h;
  }
  return new Uint8Array(0);
}

/**
 * The packet for `f` (missing fields are zero; a missing eth_type is IPv4
 * when IP fields are given). Padded to the 60-byte Ethernet minimum.
 */
export function buildPacket(f: Partial<PacketFields>): Uint8Array {
  const ethType = f.eth_type ?? ETH_IP;
  const vlan = f.vlan_tci ?? 0;
  const l2len = vlan & 0x1000 ? 18 : 14;
  let l3 = new Uint8Array(0);
  if (ethType === ETH_ARP) {
    l3 = new Uint8Array(28);
    putU16(l3, 0, 1);
    putU16(l3, 2, ETH_IP);
    l3[4] = 6;
    l3[5] = 4;
    putU16(l3, 6, f.nw_proto || 1);
    putMac(l3, 8, f.arp_sha ?? f.eth_src ?? 0);
    putU32(l3, 14, f.nw_src ?? 0);
    putMac(l3, 18, f.arp_tha ?? 0);
    putU32(l3, 24, f.nw_dst ?? 0);
  } else if (ethType === ETH_IP) {
    const proto = f.nw_proto ?? 0;
    const l4 = l4Header(f, proto);
    l3 = new Uint8Array(20 + l4.length);
    l3[0] = 0x45;
    l3[1] = f.nw_tos ?? 0;
    putU16(l3, 2, l3.length);
    l3[8] = f.nw_ttl ?? 64;
    l3[9] = proto;
    putU32(l3, 12, f.nw_src ?? 0);
    putU32(l3, 16, f.nw_dst ?? 0);
    putU16(l3, 10, ~csum(l3, 0, 20) & 0xffff);
    l3.set(l4, 20);
    if (l4.length > 0 && proto !== 132) {
      // Pseudo-header: addresses, protocol, L4 length.
      let sum = csum(l3, 12, 20) + proto + l4.length;
      sum = csum(l3, 20, l3.length, sum);
      const off = 20 + (proto === 6 ? 16 : proto === 17 ? 6 : 2);
      putU16(l3, off, ~(proto === 1 ? csum(l3, 20, l3.length) : sum) & 0xffff || (proto === 17 ? 0xffff : 0));
    }
  } else if (ethType === ETH_IPV6) {
    const proto = f.nw_proto ?? 59;
    const l4 = l4Header(f, proto);
    l3 = new Uint8Array(40 + l4.length);
    putU32(l3, 0, (6 << 28) | ((f.nw_tos ?? 0) << 20) | ((f.ipv6_label ?? 0) & 0xfffff));
    putU16(l3, 4, l4.length);
    l3[6] = proto;
    l3[7] = f.nw_ttl ?? 64;
    put128(l3, 8, f.ipv6_src ?? 0n);
    put128(l3, 24, f.ipv6_dst ?? 0n);
    l3.set(l4, 40);
    if (l4.length > 0 && proto !== 132) {
      let sum = csum(l3, 8, 40) + proto + l4.length;
      sum = csum(l3, 40, l3.length, sum);
      const off = 40 + (proto === 6 ? 16 : proto === 17 ? 6 : 2);
      putU16(l3, off, ~sum & 0xffff || 0xffff);
    }
  }
  const pkt = new Uint8Array(Math.max(60, l2len + l3.length));
  putMac(pkt, 0, f.eth_dst ?? 0);
  putMac(pkt, 6, f.eth_src ?? 0);
  if (vlan & 0x1000) {
    putU16(pkt, 12, 0x8100);
    putU16(pkt, 14, vlan & ~0x1000 & 0xffff);
    putU16(pkt, 16, ethType);
  } else {
    putU16(pkt, 12, ethType);
  }
  pkt.set(l3, l2len);
  return pkt;
}

/** Parses hex bytes (spaces and a 0x prefix allowed); undefined when `text` is not hex. */
export function parseHexPacket(text: string): Uint8Array | undefined {
  const hex = text.replace(/^0x/i, '').replace(/\s+/g, '');
  if (hex.length === 0 || hex.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(hex)) return undefined;
  return Uint8Array.from(hex.match(/../g)!.map((h) => parseInt(h, 16)));
}
