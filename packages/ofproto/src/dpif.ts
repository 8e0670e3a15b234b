// The vocabulary xlate speaks to the datapath — datapath actions and
// megaflows (key + mask) in the datapath's own field terms — and the one
// thing ofproto asks of it while translating: which datapath port stands
// behind an OpenFlow port (`OdpPortMap`). The flow key type is the
// datapath's own (`FlowKey` of @nvs/datapath, whose field names are the
// Rust `FlowKey`'s): ofproto takes that type and its zero value and nothing
// else of the package (test/layering.test.ts holds it to that), so it never
// loads the addon.
// The datapath interface itself (`Dpif`: flow puts, deletions, dumps,
// executions, upcalls) is vswitchd's, which drives it.
//
// This module also prints actions and megaflows in OVS's syntax
// (`push_vlan(vid=10,pcp=0),2`, `recirc_id=0,eth,ip,in_port=1,nw_frag=no`),
// which scripts and test suites read from `ofproto/trace`.

import { zeroFlowKey, type FlowKey } from '@nvs/datapath';

/** A datapath flow key (or, read as a mask, which bits of a key matter): the datapath's `FlowKey`. */
export type DpFlowKey = FlowKey;

/** An all-zero key (as a mask: everything wildcarded). */
export const newDpFlowKey: () => DpFlowKey = zeroFlowKey;

/** A cached decision: packets whose key equals `key` under `mask` get `actions`. */
export interface Megaflow {
  readonly key: DpFlowKey;
  readonly mask: DpFlowKey;
}

/** The header a `set` action rewrites (decides how it is printed and checksummed). */
export type DpSetHeader = 'eth' | 'ipv4' | 'ipv6' | 'tcp' | 'udp' | 'sctp' | 'icmp' | 'icmpv6' | 'arp' | 'nd';

/** A `DpFlowKey` field a `set` action may rewrite. */
export type DpSetField =
  | 'eth_src' | 'eth_dst' | 'nw_src' | 'nw_dst' | 'nw_tos' | 'nw_ttl' | 'nw_proto'
  | 'ipv6_src' | 'ipv6_dst' | 'ipv6_label' | 'tp_src' | 'tp_dst' | 'arp_sha' | 'arp_tha' | 'nd_target';

/** What a controller-bound `userspace` action carries back up with the packet. */
export interface ControllerCookie {
  /** Packet-in reason, numbered as OVS does: 0 no_match, 1 action, 2 invalid_ttl, 3 action_set, 4 group, 5 packet_out, 6 explicit miss. */
  readonly reason: number;
  readonly maxLen: number;
  readonly ruleCookie: bigint;
  readonly controllerId: number;
  /** OpenFlow table of the rule that sent it. */
  readonly tableId: number;
}

/** One datapath action. An empty list means drop. */
export type DpAction =
  /** Send the packet out of datapath port `port`. */
  | { readonly type: 'output'; readonly port: number }
  /** Push a VLAN header; `tci` includes the 0x1000 present bit. */
  | { readonly type: 'push_vlan'; readonly tpid: number; readonly tci: number }
  | { readonly type: 'pop_vlan' }
  /** Masked rewrite of one key field (value has no bits outside mask). */
  | { readonly type: 'set'; readonly header: DpSetHeader; readonly field: DpSetField; readonly value: number | bigint; readonly mask: number | bigint }
  /** Send the packet up to userspace for the controller; the owner hands `controller` back to `Ofproto.queueController`. */
  | { readonly type: 'userspace'; readonly controller: ControllerCookie }
  /** Truncate the packet to `maxLen` bytes for the following outputs. */
  | { readonly type: 'truncate'; readonly maxLen: number }
  /**
   * Tunnel metadata for the following output to a tunnel port: the tunnel ID
   * (its low 32 bits: VXLAN and Geneve carry 24), outer IPv4 source and
   * destination (0: the port's own); the port applies its TOS, TTL and UDP port.
   */
  | {
      readonly type: 'set_tunnel';
      readonly id: number;
      readonly src: number;
      readonly dst: number;
      /** The port's outer TOS and TTL and UDP port, for printing (0: not known, as in a datapath dump). */
      readonly tos: number;
      readonly ttl: number;
      readonly dstPort: number;
    };

/**
 * Which datapath port stands behind each OpenFlow port. Ports are numbered
 * in two spaces: the OpenFlow port of the bridge and the datapath port of
 * the switch (OVS keeps them apart too; the LOCAL port is OpenFlow 0xfffe).
 * xlate reads it to turn outputs and in_port into datapath terms.
 */
export interface OdpPortMap {
  /** The datapath port behind an OpenFlow port, or undefined when it has none. */
  odpPort(ofport: number): number | undefined;
  /** The OpenFlow port of a datapath port, or undefined when unknown. */
  ofPort(odpPort: number): number | undefined;
}

/** A port map whose datapath ports are the OpenFlow port numbers (LOCAL becomes `localPort`). */
export function identityOdpPorts(localPort = 0): OdpPortMap {
  const LOCAL = 0xfffe;
  return {
    odpPort: (p) => (p === LOCAL ? localPort : p < 0xff00 ? p : undefined),
    ofPort: (p) => (p === localPort ? LOCAL : p),
  };
}

// ---------------------------------------------------------------- printing

export function formatMac(mac: number): string {
  const h = mac.toString(16).padStart(12, '0');
  return `${h.slice(0, 2)}:${h.slice(2, 4)}:${h.slice(4, 6)}:${h.slice(6, 8)}:${h.slice(8, 10)}:${h.slice(10, 12)}`;
}

export function formatIpv4(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

/** RFC 5952 text of a 128-bit address. */
export function formatIpv6(v: bigint): string {
  const g: number[] = [];
  for (let i = 7; i >= 0; i--) g.push(Number((v >> BigInt(i * 16)) & 0xffffn));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

function hex(v: number | bigint): string {
  return `0x${v.toString(16)}`;
}

const SET_FIELD_NAMES: Record<DpSetHeader, Partial<Record<DpSetField, string>>> = {
  eth: { eth_src: 'src', eth_dst: 'dst' },
  ipv4: { nw_src: 'src', nw_dst: 'dst', nw_proto: 'proto', nw_tos: 'tos', nw_ttl: 'ttl' },
  ipv6: { ipv6_src: 'src', ipv6_dst: 'dst', ipv6_label: 'label', nw_proto: 'proto', nw_tos: 'tclass', nw_ttl: 'hlimit' },
  tcp: { tp_src: 'src', tp_dst: 'dst' },
  udp: { tp_src: 'src', tp_dst: 'dst' },
  sctp: { tp_src: 'src', tp_dst: 'dst' },
  icmp: { tp_src: 'type', tp_dst: 'code' },
  icmpv6: { tp_src: 'type', tp_dst: 'code' },
  arp: { nw_src: 'sip', nw_dst: 'tip', nw_proto: 'op', arp_sha: 'sha', arp_tha: 'tha' },
  nd: { nd_target: 'target', arp_sha: 'sll', arp_tha: 'tll' },
};

/** The all-ones mask of each settable field (a `set` with it rewrites the whole field). */
export const DP_SET_FULL_MASK: Readonly<Record<DpSetField, number | bigint>> = {
  eth_src: 0xffffffffffff, eth_dst: 0xffffffffffff, nw_src: 0xffffffff, nw_dst: 0xffffffff, nw_tos: 0xff,
  nw_ttl: 0xff, nw_proto: 0xff, ipv6_src: (1n << 128n) - 1n, ipv6_dst: (1n << 128n) - 1n, ipv6_label: 0xfffff,
  tp_src: 0xffff, tp_dst: 0xffff, arp_sha: 0xffffffffffff, arp_tha: 0xffffffffffff, nd_target: (1n << 128n) - 1n,
};

function formatSetValue(field: DpSetField, v: number | bigint): string {
  switch (field) {
    case 'eth_src': case 'eth_dst': case 'arp_sha': case 'arp_tha':
      return formatMac(Number(v));
    case 'nw_src': case 'nw_dst':
      return formatIpv4(Number(v));
    case 'ipv6_src': case 'ipv6_dst': case 'nd_target':
      return formatIpv6(BigInt(v));
    case 'ipv6_label': case 'nw_tos':
      return hex(v);
    default:
      return String(v);
  }
}

/** How `formatDpActions` prints. */
export interface DpActionsFormat {
  /** Prints output ports by name (`--names`). */
  readonly portName?: (odpPort: number) => string | undefined;
  /** Marks controller actions `dont_send=1`, as a trace does: its packet is never sent. */
  readonly dontSend?: boolean;
}

/**
 * Datapath actions in OVS's syntax: `drop` for none; consecutive `set`s of
 * one header are merged into one `set(ipv4(dst=…,ttl=…))`, a partial mask is
 * printed as `value/mask`.
 */
export function formatDpActions(actions: readonly DpAction[], fmt: DpActionsFormat = {}): string {
  const { portName, dontSend } = fmt;
  if (actions.length === 0) return 'drop';
  const out: string[] = [];
  for (let i = 0; i < actions.length; i++) {
    const a = actions[i];
    switch (a.type) {
      case 'output':
        out.push(portName?.(a.port) ?? String(a.port));
        break;
      case 'push_vlan': {
        const tpid = a.tpid === 0x8100 ? '' : `tpid=${hex(a.tpid)},`;
        out.push(`push_vlan(${tpid}vid=${a.tci & 0xfff},pcp=${(a.tci >> 13) & 7})`);
        break;
      }
      case 'pop_vlan':
        out.push('pop_vlan');
        break;
      case 'truncate':
        out.push(`trunc(${a.maxLen})`);
        break;
      case 'set_tunnel': {
        const parts = [`tun_id=${hex(a.id)}`];
        if (a.src) parts.push(`src=${formatIpv4(a.src)}`);
        // No DF: nvs lets the kernel fragment the outer packet.
        parts.push(`dst=${formatIpv4(a.dst)}`);
        if (a.tos) parts.push(`tos=${hex(a.tos)}`);
        if (a.ttl) parts.push(`ttl=${a.ttl}`);
        if (a.dstPort) parts.push(`tp_dst=${a.dstPort}`);
        out.push(`set(tunnel(${parts.join(',')},flags(key)))`);
        break;
      }
      case 'userspace': {
        const c = a.controller;
        out.push(
          `userspace(pid=0,controller(reason=${c.reason},dont_send=${dontSend ? 1 : 0},continuation=0,recirc_id=0,` +
            // printf's %#x: 0 has no 0x.
            `rule_cookie=${c.ruleCookie ? hex(c.ruleCookie) : '0'},controller_id=${c.controllerId},max_len=${c.maxLen}))`,
        );
        break;
      }
      case 'set': {
        const parts: string[] = [];
        let j = i;
        for (; j < actions.length; j++) {
          const b = actions[j];
          if (b.type !== 'set' || b.header !== a.header) break;
          const name = SET_FIELD_NAMES[b.header][b.field] ?? b.field;
          const full = b.mask === DP_SET_FULL_MASK[b.field];
          parts.push(`${name}=${formatSetValue(b.field, b.value)}${full ? '' : `/${formatSetValue(b.field, b.mask)}`}`);
        }
        i = j - 1;
        out.push(`set(${a.header}(${parts.join(',')}))`);
        break;
      }
    }
  }
  return out.join(',');
}

/** nw_frag values under an exact mask, by name. */
export const FRAG_NAMES: Readonly<Record<number, string>> = { 0: 'no', 1: 'first', 3: 'later' };

/**
 * A megaflow in OVS's syntax: `recirc_id=0,eth,ip,in_port=1,nw_dst=10.0.0.0/8,nw_frag=no`.
 * Only fields with a nonzero mask are printed; the protocol shorthand
 * (`ip`, `tcp6`, `arp`…) replaces dl_type (and nw_proto) when they are exact.
 */
export function formatMegaflow(m: Megaflow): string {
  const { key: k, mask: w } = m;
  const out: string[] = [];
  if (w.recirc_id) out.push(`recirc_id=${maskedNum(k.recirc_id, w.recirc_id, 0xffffffff, false)}`);
  out.push('eth');
  const typeExact = w.eth_type === 0xffff;
  const isIp = typeExact && (k.eth_type === 0x0800 || k.eth_type === 0x86dd);
  const protoExact = isIp && w.nw_proto === 0xff;
  const shorthand = typeExact ? protoShorthand(k.eth_type, protoExact ? k.nw_proto : -1) : null;
  const protoShown = shorthand !== null && shorthand.usedProto;
  if (shorthand) out.push(shorthand.name);
  // OVS's order: the tunnel fields just before in_port.
  if (w.tun_id) out.push(`tun_id=${w.tun_id === 0xffffffff ? hex(k.tun_id) : `${hex(k.tun_id)}/${hex(w.tun_id)}`}`);
  if (w.tun_src) out.push(`tun_src=${maskedIp(k.tun_src, w.tun_src)}`);
  if (w.tun_dst) out.push(`tun_dst=${maskedIp(k.tun_dst, w.tun_dst)}`);
  if (w.in_port) out.push(`in_port=${k.in_port}`);
  // Like OVS, an exact "untagged" is implied (the datapath keys on the tag's presence).
  const untaggedExact = k.vlan_tci === 0 && (w.vlan_tci & 0x1000) !== 0;
  if ((w.vlan_tci & 0x1fff) === 0x1fff && k.vlan_tci & 0x1000) {
    out.push(`dl_vlan=${k.vlan_tci & 0xfff}`);
    if ((w.vlan_tci & 0xe000) === 0xe000) out.push(`dl_vlan_pcp=${k.vlan_tci >> 13}`);
  } else if (w.vlan_tci && !untaggedExact) {
    out.push(`vlan_tci=${maskedHex(k.vlan_tci, w.vlan_tci, 0xffff, 4)}`);
  }
  if (w.eth_src) out.push(`dl_src=${maskedMac(k.eth_src, w.eth_src)}`);
  if (w.eth_dst) out.push(`dl_dst=${maskedMac(k.eth_dst, w.eth_dst)}`);
  if (w.eth_type && !shorthand) out.push(`dl_type=0x${k.eth_type.toString(16).padStart(4, '0')}`);
  const isArp = typeExact && (k.eth_type === 0x0806 || k.eth_type === 0x8035);
  const isV6 = typeExact && k.eth_type === 0x86dd;
  if (isV6) {
    if (w.ipv6_src) out.push(`ipv6_src=${maskedV6(k.ipv6_src, w.ipv6_src)}`);
    if (w.ipv6_dst) out.push(`ipv6_dst=${maskedV6(k.ipv6_dst, w.ipv6_dst)}`);
    if (w.ipv6_label) out.push(`ipv6_label=${maskedHex(k.ipv6_label, w.ipv6_label, 0xfffff, 5)}`);
  } else {
    if (w.nw_src) out.push(`${isArp ? 'arp_spa' : 'nw_src'}=${maskedIp(k.nw_src, w.nw_src)}`);
    if (w.nw_dst) out.push(`${isArp ? 'arp_tpa' : 'nw_dst'}=${maskedIp(k.nw_dst, w.nw_dst)}`);
    if (isArp && w.nw_proto) out.push(`arp_op=${k.nw_proto}`);
  }
  if (!isArp && w.nw_proto && !protoShown) out.push(`nw_proto=${k.nw_proto}`);
  if (!isArp) {
    if (w.nw_tos & 0xfc) out.push(`nw_tos=${k.nw_tos & 0xfc}`);
    if (w.nw_tos & 0x03) out.push(`nw_ecn=${k.nw_tos & 0x03}`);
    if (w.nw_ttl) out.push(`nw_ttl=${k.nw_ttl}`);
    if (w.nw_frag) out.push(`nw_frag=${formatFrag(k.nw_frag, w.nw_frag)}`);
  }
  if (isArp) {
    if (w.arp_sha) out.push(`arp_sha=${maskedMac(k.arp_sha, w.arp_sha)}`);
    if (w.arp_tha) out.push(`arp_tha=${maskedMac(k.arp_tha, w.arp_tha)}`);
  }
  const icmp = protoExact && (k.nw_proto === 1 || k.nw_proto === 58);
  if (icmp) {
    if (w.tp_src) out.push(`icmp_type=${k.tp_src}`);
    if (w.tp_dst) out.push(`icmp_code=${k.tp_dst}`);
    if (w.nd_target) out.push(`nd_target=${maskedV6(k.nd_target, w.nd_target)}`);
    if (w.arp_sha) out.push(`nd_sll=${maskedMac(k.arp_sha, w.arp_sha)}`);
    if (w.arp_tha) out.push(`nd_tll=${maskedMac(k.arp_tha, w.arp_tha)}`);
  } else if (!isArp) {
    if (w.tp_src) out.push(`tp_src=${maskedNum(k.tp_src, w.tp_src, 0xffff, true)}`);
    if (w.tp_dst) out.push(`tp_dst=${maskedNum(k.tp_dst, w.tp_dst, 0xffff, true)}`);
    if (w.tcp_flags) out.push(`tcp_flags=${maskedHex(k.tcp_flags, w.tcp_flags, 0xfff, 3)}`);
  }
  return out.join(',');
}

function protoShorthand(ethType: number, proto: number): { name: string; usedProto: boolean } | null {
  const v4: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 132: 'sctp' };
  const v6: Record<number, string> = { 58: 'icmp6', 6: 'tcp6', 17: 'udp6', 132: 'sctp6' };
  if (ethType === 0x0800) return v4[proto] ? { name: v4[proto], usedProto: true } : { name: 'ip', usedProto: false };
  if (ethType === 0x86dd) return v6[proto] ? { name: v6[proto], usedProto: true } : { name: 'ipv6', usedProto: false };
  if (ethType === 0x0806) return { name: 'arp', usedProto: false };
  if (ethType === 0x8035) return { name: 'rarp', usedProto: false };
  return null;
}

function formatFrag(v: number, m: number): string {
  if (m === 3) return FRAG_NAMES[v] ?? `0x${v.toString(16)}`;
  if (m === 1) return v & 1 ? 'yes' : 'no';
  return v & 2 ? 'later' : 'not_later';
}

function maskedNum(v: number, m: number, full: number, hexMask: boolean): string {
  return m === full ? String(v) : `${hexMask ? hex(v) : v}/${hex(m)}`;
}

function maskedHex(v: number, m: number, full: number, width: number): string {
  const h = (x: number) => `0x${x.toString(16).padStart(width, '0')}`;
  return m === full ? h(v) : `${h(v)}/${h(m)}`;
}

function maskedMac(v: number, m: number): string {
  return m === 0xffffffffffff ? formatMac(v) : `${formatMac(v)}/${formatMac(m)}`;
}

function maskedIp(v: number, m: number): string {
  if (m === 0xffffffff) return formatIpv4(v);
  const inv = ~m >>> 0;
  if ((inv & (inv + 1)) === 0) return `${formatIpv4(v)}/${Math.clz32(inv)}`;
  return `${formatIpv4(v)}/${formatIpv4(m)}`;
}

function maskedV6(v: bigint, m: bigint): string {
  const full = (1n << 128n) - 1n;
  if (m === full) return formatIpv6(v);
  const inv = full ^ m;
  if ((inv & (inv + 1n)) === 0n) return `${formatIpv6(v)}/${128 - inv.toString(2).length}`;
  return `${formatIpv6(v)}/${formatIpv6(m)}`;
}
