// Megaflows in the datapath's own flow syntax, the layout `ovs-appctl
// dpif/dump-flows` prints for a userspace datapath:
//
//   recirc_id(0),in_port(1),packet_type(ns=0,id=0),eth(src=…,dst=…),
//   eth_type(0x0800),ipv4(dst=10.0.0.0/255.0.0.0,proto=6,frag=no),tcp(dst=80)
//
// One attribute per header in the order headers appear in a packet (VLAN tags
// nest the rest in `encap(…)`). A subfield is shown as `name=value` when its
// mask is exact, `name=value/mask` when partial, and left out when
// wildcarded; an attribute with no subfield left is left out too. The
// verbose form (`-m`) shows every subfield of every header the megaflow
// determines, wildcarded ones as `value/0`, and the metadata fields nvs never
// matches on (skb_priority, skb_mark, ct_*, dp_hash) as fully wildcarded.
//
// Keys here are masked (a megaflow is identified by its masked key), so the
// bits a mask leaves out always print as 0, and a header is shown only when
// the mask pins the field that says it is there (eth_type for L3, nw_proto
// for L4).

import { type DpFlowKey, formatIpv4, formatIpv6, formatMac, FRAG_NAMES, type Megaflow } from './dpif.ts';
import { formatTcpFlags, hex } from './syntax/values.ts';

export interface OdpFlowFormatOptions {
  /** `-m`: every subfield, wildcarded ones as `value/0`, plus the always-wildcarded metadata. */
  readonly verbose?: boolean;
  /** Port names for `--names`: a datapath port number → its name (undefined: print the number). */
  readonly portName?: (odpPort: number) => string | undefined;
}

/** One `name=value[/mask]` subfield, or nothing when wildcarded (unless verbose). */
type Sub = [name: string, text: string] | null;

function sub<T extends number | bigint>(name: string, value: T, mask: T, full: T, fmt: (v: T) => string, maskFmt: (m: T) => string, verbose: boolean): Sub {
  if (!verbose && (mask === 0 || mask === 0n)) return null;
  return [name, mask === full ? fmt(value) : `${fmt(value)}/${maskFmt(mask)}`];
}

function attr(name: string, subs: Sub[]): string | null {
  const parts = subs.filter((s): s is [string, string] => s !== null).map(([n, t]) => `${n}=${t}`);
  return parts.length ? `${name}(${parts.join(',')})` : null;
}

const MAC_FULL = 0xffffffffffff;
const V6_FULL = (1n << 128n) - 1n;
const dec = (v: number) => String(v);
const mac = (v: number) => formatMac(v);
const ip4 = (v: number) => formatIpv4(v);
const ip6 = (v: bigint) => formatIpv6(v);

/**
 * The TCP flags of a flow's statistics (`flags:SFP.`) as OVS's
 * packet_format_tcp_flags writes them: tcpdump's letters in its order (SYN
 * before FIN), not bit order; the reserved bits as `[200]`, `[400]`, `[800]`.
 */
const TCP_FLAG_LETTERS: readonly [bit: number, text: string][] = [
  [0x002, 'S'], [0x001, 'F'], [0x008, 'P'], [0x004, 'R'], [0x020, 'U'], [0x010, '.'],
  [0x040, 'E'], [0x080, 'C'], [0x100, 'N'], [0x200, '[200]'], [0x400, '[400]'], [0x800, '[800]'],
];

/** The `flags:` of a flow's statistics (TCP flags seen), empty when none. */
export function formatTcpFlagLetters(flags: number): string {
  let out = '';
  for (const [bit, text] of TCP_FLAG_LETTERS) if (flags & bit) out += text;
  return out;
}

/** `vlan(vid=…,pcp=…)`: a subfield shows when its value or mask is nonzero (or verbose). */
function vlanAttr(tci: number, mask: number, verbose: boolean): string {
  const parts: string[] = [];
  const vid = tci & 0xfff;
  const vidMask = mask & 0xfff;
  if (verbose || vid || vidMask) parts.push(`vid=${vid}${vidMask === 0xfff ? '' : `/0x${vidMask.toString(16)}`}`);
  const pcp = tci >> 13;
  const pcpMask = mask >> 13;
  if (verbose || pcp || pcpMask) parts.push(`pcp=${pcp}${pcpMask === 7 ? '' : `/0x${pcpMask.toString(16)}`}`);
  // The tag-present bit (CFI position): shown only when it is not the plain "present" it always is.
  const cfi = (tci >> 12) & 1;
  const cfiMask = (mask >> 12) & 1;
  if (!(cfi && cfiMask)) parts.push(`cfi=${cfi}${cfiMask ? '' : '/0'}`);
  return `vlan(${parts.join(',')})`;
}

function fragSub(v: number, m: number, verbose: boolean): Sub {
  if (!verbose && m === 0) return null;
  const name = FRAG_NAMES[v & m] ?? hex(v);
  return ['frag', (m & 3) === 3 ? name : `${name}/${hex(m)}`];
}

/** The L3 and L4 attributes of a key whose (inner) eth_type is known. */
function l3l4(k: DpFlowKey, w: DpFlowKey, verbose: boolean): string[] {
  const out: string[] = [];
  const push = (a: string | null) => {
    if (a) out.push(a);
  };
  const ethType = k.eth_type;
  const isV4 = ethType === 0x0800;
  const isV6 = ethType === 0x86dd;
  if (isV4) {
    push(
      attr('ipv4', [
        sub('src', k.nw_src, w.nw_src, 0xffffffff, ip4, ip4, verbose),
        sub('dst', k.nw_dst, w.nw_dst, 0xffffffff, ip4, ip4, verbose),
        sub('proto', k.nw_proto, w.nw_proto, 0xff, dec, hex, verbose),
        sub('tos', k.nw_tos, w.nw_tos, 0xff, hex, hex, verbose),
        sub('ttl', k.nw_ttl, w.nw_ttl, 0xff, dec, hex, verbose),
        fragSub(k.nw_frag, w.nw_frag, verbose),
      ]),
    );
  } else if (isV6) {
    push(
      attr('ipv6', [
        sub('src', k.ipv6_src, w.ipv6_src, V6_FULL, ip6, ip6, verbose),
        sub('dst', k.ipv6_dst, w.ipv6_dst, V6_FULL, ip6, ip6, verbose),
        sub('label', k.ipv6_label, w.ipv6_label, 0xfffff, hex, hex, verbose),
        sub('proto', k.nw_proto, w.nw_proto, 0xff, dec, hex, verbose),
        sub('tclass', k.nw_tos, w.nw_tos, 0xff, hex, hex, verbose),
        sub('hlimit', k.nw_ttl, w.nw_ttl, 0xff, dec, hex, verbose),
        fragSub(k.nw_frag, w.nw_frag, verbose),
      ]),
    );
  } else if (ethType === 0x0806 || ethType === 0x8035) {
    push(
      attr('arp', [
        sub('sip', k.nw_src, w.nw_src, 0xffffffff, ip4, ip4, verbose),
        sub('tip', k.nw_dst, w.nw_dst, 0xffffffff, ip4, ip4, verbose),
        sub('op', k.nw_proto, w.nw_proto, 0xff, dec, hex, verbose),
        sub('sha', k.arp_sha, w.arp_sha, MAC_FULL, mac, mac, verbose),
        sub('tha', k.arp_tha, w.arp_tha, MAC_FULL, mac, mac, verbose),
      ]),
    );
  }
  // L4 only when the mask says which protocol it is, and not for later fragments (no L4 header there).
  if (!(isV4 || isV6) || w.nw_proto !== 0xff || (k.nw_frag & 2) !== 0) return out;
  const ports = (name: string) =>
    push(attr(name, [sub('src', k.tp_src, w.tp_src, 0xffff, dec, hex, verbose), sub('dst', k.tp_dst, w.tp_dst, 0xffff, dec, hex, verbose)]));
  const icmp = (name: string) =>
    push(attr(name, [sub('type', k.tp_src, w.tp_src & 0xff, 0xff, dec, hex, verbose), sub('code', k.tp_dst, w.tp_dst & 0xff, 0xff, dec, hex, verbose)]));
  switch (k.nw_proto) {
    case 6:
      ports('tcp');
      if (w.tcp_flags) out.push(`tcp_flags(${formatTcpFlags(k.tcp_flags, w.tcp_flags & 0xfff)})`);
      else if (verbose) out.push('tcp_flags(0/0)');
      break;
    case 17:
      ports('udp');
      break;
    case 132:
      ports('sctp');
      break;
    case 1:
      if (isV4) icmp('icmp');
      break;
    case 58:
      if (!isV6) break;
      icmp('icmpv6');
      // Neighbour discovery (solicitation 135, advertisement 136) carries a target and link-layer addresses.
      if ((w.tp_src & 0xff) === 0xff && (k.tp_src === 135 || k.tp_src === 136)) {
        push(
          attr('nd', [
            sub('target', k.nd_target, w.nd_target, V6_FULL, ip6, ip6, verbose),
            sub('sll', k.arp_sha, w.arp_sha, MAC_FULL, mac, mac, verbose),
            sub('tll', k.arp_tha, w.arp_tha, MAC_FULL, mac, mac, verbose),
          ]),
        );
      }
      break;
  }
  return out;
}

function ethTypeAttr(v: number, m: number, verbose: boolean): string | null {
  if (m === 0) return verbose ? 'eth_type(0/0)' : null;
  const h = `0x${v.toString(16).padStart(4, '0')}`;
  return m === 0xffff ? `eth_type(${h})` : `eth_type(${h}/${hex(m)})`;
}

/** A megaflow's key and mask in datapath flow syntax (see the module comment). */
export function formatOdpFlowKey(m: Megaflow, opts: OdpFlowFormatOptions = {}): string {
  const { key: k, mask: w } = m;
  const verbose = opts.verbose ?? false;
  const out: string[] = [];
  if (verbose) out.push('skb_priority(0/0)', 'skb_mark(0/0)', 'ct_state(0/0)', 'ct_zone(0/0)', 'ct_mark(0/0)', 'ct_label(0/0)');
  if (w.recirc_id === 0xffffffff) out.push(`recirc_id(${k.recirc_id})`);
  else if (w.recirc_id || verbose) out.push(`recirc_id(${hex(k.recirc_id)}/${hex(w.recirc_id)})`);
  if (verbose) out.push('dp_hash(0/0)');
  const tunnel = attr('tunnel', [
    // Only for megaflows that key on a tunnel (verbose or not): other packets have none.
    sub('tun_id', k.tun_id, w.tun_id, 0xffffffff, hex, hex, false),
    sub('src', k.tun_src, w.tun_src, 0xffffffff, ip4, ip4, false),
    sub('dst', k.tun_dst, w.tun_dst, 0xffffffff, ip4, ip4, false),
  ]);
  if (tunnel) out.push(tunnel);
  const port = opts.portName?.(k.in_port) ?? String(k.in_port);
  if (w.in_port === 0xffffffff) out.push(`in_port(${port})`);
  else if (w.in_port || verbose) out.push(`in_port(${port}/${hex(w.in_port)})`);
  out.push('packet_type(ns=0,id=0)');
  const eth = attr('eth', [sub('src', k.eth_src, w.eth_src, MAC_FULL, mac, mac, verbose), sub('dst', k.eth_dst, w.eth_dst, MAC_FULL, mac, mac, verbose)]);
  if (eth) out.push(eth);
  // The rest of the packet, nested in encap(…) per VLAN tag whose presence the mask pins.
  const inner: string[] = [];
  const typeKnown = w.eth_type === 0xffff;
  const ethType = ethTypeAttr(k.eth_type, w.eth_type, verbose);
  if (ethType) inner.push(ethType);
  if (typeKnown) inner.push(...l3l4(k, w, verbose));
  let body = inner;
  const tagged = (tci: number, mask: number) => (tci & 0x1000) !== 0 && (mask & 0x1000) !== 0;
  if (tagged(k.vlan_tci, w.vlan_tci)) {
    if (tagged(k.cvlan_tci, w.cvlan_tci)) body = ['eth_type(0x8100)', vlanAttr(k.cvlan_tci, w.cvlan_tci, verbose), `encap(${body.join(',')})`];
    const tpid = w.vlan_tpid && k.vlan_tpid ? k.vlan_tpid : 0x8100;
    body = [`eth_type(0x${tpid.toString(16).padStart(4, '0')})`, vlanAttr(k.vlan_tci, w.vlan_tci, verbose), `encap(${body.join(',')})`];
  }
  out.push(...body);
  return out.join(',');
}
