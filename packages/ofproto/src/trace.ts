// Trace: why a packet gets the datapath actions it gets, in the layout of
// OVS's `ofproto/trace` — the input flow, each table visited with the rule
// matched (its match, priority and cookie) and the actions it ran, notes
// from NORMAL and friends, the final flow, and last the `Megaflow:` and
// `Datapath actions:` lines in OVS's own syntax, which scripts read.
// Tracing has no side effects: nothing is learned, counted or queued.

import type { Action } from './actions.ts';
import { formatDpActions, formatIpv4, formatIpv6, formatMac, formatMegaflow } from './dpif.ts';
import { BadTraceRequestError } from './errors.ts';
import { EthType, type Flow, FLOW_WORDS, FRAG_LATER, IpProto, macAt, OFPP, Slot, VLAN_CFI } from './fields.ts';
import { DEFAULT_PRIORITY } from './match.ts';
import type { Ofproto } from './ofproto.ts';
import { parseFlow } from './syntax/parser.ts';
import { parseUint } from './syntax/values.ts';
import { printActions, printMatch } from './syntax/printer.ts';
import type { XlateResult } from './xlate.ts';

export interface TraceOutput {
  /** The whole report, lines joined with '\n'. */
  readonly text: string;
  /** The translation it reports on. */
  readonly result: XlateResult;
}

/**
 * Traces a flow through a bridge. `input` is either a Flow or a flow in
 * ovs-ofctl syntax (`in_port=1,tcp,nw_dst=10.0.0.1,tp_dst=80`; fields not
 * given are 0, in_port not given is NONE, as in OVS). Port names resolve
 * through `portByName` when given.
 */
export function trace(
  of: Ofproto,
  input: string | Flow,
  portByName?: (name: string) => number | undefined,
  opts: { readonly sideEffects?: boolean; readonly actions?: readonly Action[]; readonly names?: TraceNames } = {},
): TraceOutput {
  const flow = typeof input === 'string' ? parseTraceFlow(input, portByName) : input;
  // With side effects (ofproto/trace -generate) the translation learns as a real packet's would;
  // with actions (ofproto/trace-packet-out) they run in place of the tables.
  const result = of.xlate(flow, { sideEffects: opts.sideEffects ?? false, trace: true, actions: opts.actions });
  return { text: formatTrace(of.name, flow, result, opts.names), result };
}

/** A packet's flow from ovs-ofctl match syntax. */
export function parseTraceFlow(text: string, portByName?: (name: string) => number | undefined): Flow {
  try {
    // The packet metadata only a trace gives (no rule matches it) is taken out first.
    const meta: [number, number][] = [];
    const rest = text.replace(/(^|,)\s*(pkt_mark|skb_priority)=([^,\s]+)/g, (_all, lead: string, name: string, v: string) => {
      meta.push([name === 'pkt_mark' ? Slot.PKT_MARK : Slot.SKB_PRIORITY, Number(parseUint(v) & 0xffffffffn)]);
      return lead;
    });
    const m = parseFlow(rest.replace(/^,/, ''), { command: 'delete', file: 'flow', portByName }).match;
    const flow = Uint32Array.from(m.value);
    if (!m.mask[Slot.IN_PORT]) flow[Slot.IN_PORT] = OFPP.NONE;
    for (const [slot, v] of meta) flow[slot] = v;
    return flow;
  } catch (e) {
    throw new BadTraceRequestError(`bad flow "${text}": ${(e as Error).message}`);
  }
}

/** Port names for `--names`: an OpenFlow port's (the Flow line) and a datapath port's (the actions). */
export interface TraceNames {
  readonly ofport: (ofport: number) => string | undefined;
  readonly odpPort: (odpPort: number) => string | undefined;
}

/** The report for an xlate result made with `trace: true`. */
export function formatTrace(bridgeName: string, flow: Flow, r: XlateResult, names?: TraceNames): string {
  const lines: string[] = [`Flow: ${formatFlow(flow, names?.ofport)}`, '', `bridge("${bridgeName}")`, '-'.repeat(bridgeName.length + 10)];
  let lastMatch = null as XlateResult['rules'][number] | null;
  // A patch port's peer bridge is reported nested, as OVS indents it.
  let indent = '';
  const start = lines.length;
  for (const ev of r.trace ?? []) {
    const at = lines.length;
    switch (ev.kind) {
      case 'bridge':
        if (ev.leave) indent = indent.slice(4);
        else {
          lines.push('', `${indent}    bridge("${ev.bridge}")`, `${indent}    ${'-'.repeat(ev.bridge.length + 10)}`);
          indent += '    ';
        }
        continue;
      case 'table': {
        const t = String(ev.table).padStart(2, ' ');
        if (!ev.rule) {
          lines.push(`${t}. No match.`, '    drop');
          lastMatch = null;
          break;
        }
        lastMatch = ev.rule;
        const m = printMatch({ ...ev.rule.match, priority: DEFAULT_PRIORITY });
        const cookie = ev.rule.cookie ? `, cookie 0x${ev.rule.cookie.toString(16)}` : '';
        lines.push(`${t}. ${m ? `${m}, ` : ''}priority ${ev.rule.match.priority}${cookie}`);
        break;
      }
      case 'action':
        lines.push(`    ${printActions([ev.action], lastMatch?.match ?? { priority: 0, value: flow, mask: flow })}`);
        break;
      case 'note':
        lines.push(`     ${ev.text}`);
        break;
    }
    if (indent) for (let i = Math.max(at, start); i < lines.length; i++) lines[i] = indent + lines[i];
  }
  lines.push('');
  lines.push(`Final flow: ${!r.finalFlow || sameFlow(flow, r.finalFlow) ? 'unchanged' : formatFlow(r.finalFlow)}`);
  lines.push(`Megaflow: ${formatMegaflow(r.megaflow)}`);
  lines.push(`Datapath actions: ${formatDpActions(r.actions, { dontSend: true, portName: names?.odpPort })}`);
  if (r.slowPath) lines.push('This flow is handled by the userspace slow path because it:', `  - ${r.slowPath}`);
  if (r.error) lines.push(`Translation failed (${r.error}), packet is dropped.`);
  return lines.join('\n');
}

function sameFlow(a: Flow, b: Flow): boolean {
  for (let i = 0; i < FLOW_WORDS; i++) if (a[i] !== b[i]) return false;
  return true;
}

const FRAG = ['no', 'first', 'first', 'later'];
/** IP protocols whose header fills tp_src/tp_dst (OVS's list). */
const L4_PROTOS = new Set<number>([IpProto.TCP, IpProto.UDP, IpProto.SCTP, IpProto.ICMP, IpProto.ICMPV6, IpProto.IGMP]);

/** One VLAN slot in OVS's flow syntax (`suffix` '1' for the inner tag). */
function formatVlan(tci: number, suffix: string): string {
  return tci & VLAN_CFI ? `dl_vlan${suffix}=${tci & 0xfff},dl_vlan_pcp${suffix}=${tci >>> 13}` : `vlan_tci${suffix}=0x${tci.toString(16).padStart(4, '0')}`;
}

/** A packet's flow the way OVS prints one (`ip,in_port=1,vlan_tci=0x0000,dl_src=…,nw_frag=no`). */
export function formatFlow(f: Flow, portName?: (ofport: number) => string | undefined): string {
  const out: string[] = [];
  const type = f[Slot.DL_TYPE];
  const proto = f[Slot.NW_PROTO];
  const isIp = type === EthType.IP || type === EthType.IPV6;
  const short = shorthand(type, proto);
  if (f[Slot.PKT_MARK]) out.push(`pkt_mark=0x${f[Slot.PKT_MARK].toString(16)}`);
  if (f[Slot.SKB_PRIORITY]) out.push(`skb_priority=0x${f[Slot.SKB_PRIORITY].toString(16)}`);
  if (short) out.push(short);
  for (let i = 0; i < 16; i++) if (f[Slot.REG0 + i]) out.push(`reg${i}=0x${f[Slot.REG0 + i].toString(16)}`);
  // A packet that came through a tunnel (or was given tunnel metadata): OVS's order, after the registers.
  if (f[Slot.TUN_ID] || f[Slot.TUN_ID + 1]) out.push(`tun_id=0x${((BigInt(f[Slot.TUN_ID]) << 32n) | BigInt(f[Slot.TUN_ID + 1])).toString(16)}`);
  if (f[Slot.TUN_SRC]) out.push(`tun_src=${formatIpv4(f[Slot.TUN_SRC])}`);
  if (f[Slot.TUN_DST]) out.push(`tun_dst=${formatIpv4(f[Slot.TUN_DST])}`);
  if (f[Slot.METADATA] || f[Slot.METADATA + 1]) {
    out.push(`metadata=0x${((BigInt(f[Slot.METADATA]) << 32n) | BigInt(f[Slot.METADATA + 1])).toString(16)}`);
  }
  out.push(`in_port=${portName?.(f[Slot.IN_PORT]) ?? f[Slot.IN_PORT]}`);
  const tci = f[Slot.VLAN_TCI];
  out.push(formatVlan(tci, ''));
  // As OVS: a tagged packet also shows its second tag slot, present or not.
  if (tci & VLAN_CFI) out.push(formatVlan(f[Slot.VLAN_TCI1], '1'));
  out.push(`dl_src=${formatMac(macAt(f, Slot.DL_SRC))}`, `dl_dst=${formatMac(macAt(f, Slot.DL_DST))}`);
  if (!short) out.push(`dl_type=0x${type.toString(16).padStart(4, '0')}`);
  if (type === EthType.ARP || type === EthType.RARP) {
    out.push(`arp_spa=${formatIpv4(f[Slot.NW_SRC])}`, `arp_tpa=${formatIpv4(f[Slot.NW_DST])}`, `arp_op=${proto}`);
    out.push(`arp_sha=${formatMac(macAt(f, Slot.ARP_SHA))}`, `arp_tha=${formatMac(macAt(f, Slot.ARP_THA))}`);
  }
  if (isIp) {
    if (type === EthType.IP) out.push(`nw_src=${formatIpv4(f[Slot.NW_SRC])}`, `nw_dst=${formatIpv4(f[Slot.NW_DST])}`);
    else {
      out.push(`ipv6_src=${formatIpv6(words128(f, Slot.IPV6_SRC))}`, `ipv6_dst=${formatIpv6(words128(f, Slot.IPV6_DST))}`);
      out.push(`ipv6_label=0x${f[Slot.IPV6_LABEL].toString(16).padStart(5, '0')}`);
    }
    if (!short || short === 'ip' || short === 'ipv6') out.push(`nw_proto=${proto}`);
    const tos = f[Slot.NW_TOS];
    out.push(`nw_tos=${tos & 0xfc}`, `nw_ecn=${tos & 3}`, `nw_ttl=${f[Slot.NW_TTL]}`, `nw_frag=${FRAG[f[Slot.NW_FRAG] & 3]}`);
    // Later fragments carry no transport header; ICMP fields are named so
    // only under the icmp/icmp6 shorthands, other protocols OVS parses show
    // tp_src/tp_dst.
    if (f[Slot.NW_FRAG] & FRAG_LATER) return out.join(',');
    if (short === 'icmp' || short === 'icmp6') {
      out.push(`icmp_type=${f[Slot.TP_SRC]}`, `icmp_code=${f[Slot.TP_DST]}`);
      if (short === 'icmp6' && (f[Slot.TP_SRC] === 135 || f[Slot.TP_SRC] === 136) && f[Slot.TP_DST] === 0) {
        out.push(`nd_target=${formatIpv6(words128(f, Slot.ND_TARGET))}`);
        out.push(`nd_sll=${formatMac(macAt(f, Slot.ARP_SHA))}`, `nd_tll=${formatMac(macAt(f, Slot.ARP_THA))}`);
      }
    } else if (L4_PROTOS.has(proto)) {
      out.push(`tp_src=${f[Slot.TP_SRC]}`, `tp_dst=${f[Slot.TP_DST]}`);
      if (proto === IpProto.TCP) out.push(`tcp_flags=${f[Slot.TCP_FLAGS] ? `0x${f[Slot.TCP_FLAGS].toString(16).padStart(3, '0')}` : '0'}`);
    }
  }
  return out.join(',');
}

function shorthand(type: number, proto: number): string | null {
  if (type === EthType.IP) return ({ 1: 'icmp', 6: 'tcp', 17: 'udp', 132: 'sctp' } as Record<number, string>)[proto] ?? 'ip';
  if (type === EthType.IPV6) return ({ 58: 'icmp6', 6: 'tcp6', 17: 'udp6', 132: 'sctp6' } as Record<number, string>)[proto] ?? 'ipv6';
  if (type === EthType.ARP) return 'arp';
  if (type === EthType.RARP) return 'rarp';
  return null;
}

function words128(f: Flow, slot: number): bigint {
  let v = 0n;
  for (let i = 0; i < 4; i++) v = (v << 32n) | BigInt(f[slot + i]);
  return v;
}
