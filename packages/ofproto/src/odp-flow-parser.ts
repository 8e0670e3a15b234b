// Reading a packet's flow written in the datapath's own syntax, as
// `ovs-appctl ofproto/trace DP 'in_port(1),eth(src=…,dst=…),eth_type(0x0800),
// ipv4(src=…,dst=…,proto=1,tos=0,ttl=64,frag=no),icmp(type=8,code=0)'` and
// `dpif/dump-flows` print it (odp-flow.ts writes this syntax). A subfield may
// carry a `/mask` (as `dump-flows -m` prints it): the value is taken, the
// mask ignored, since a trace follows one packet. Attributes nvs has no field
// for (ct_*, dp_hash, packet_type, tunnel) are read and dropped; an unknown
// attribute or subfield is an error.
//
// The in_port is a datapath port number: the caller maps it to a bridge and
// an OpenFlow port.

import { EthType, type Flow, newFlow, Slot, VLAN_CFI } from './fields.ts';
import { parseIpv4, parseIpv6, parseMac, parseUint, ValueError } from './syntax/values.ts';

export interface OdpFlow {
  /** The packet's fields; IN_PORT is left 0 for the caller to set. */
  readonly flow: Flow;
  /** `in_port(N)`: a datapath port number, or null when not given. */
  readonly odpInPort: number | null;
  /** `recirc_id(N)`, 0 when not given. */
  readonly recircId: number;
}

/** Thrown for text that is not a datapath flow; the message says where. */
export class OdpFlowSyntaxError extends Error {
  readonly code = 'ODP_FLOW_SYNTAX';
  constructor(message: string) {
    super(message);
    this.name = 'OdpFlowSyntaxError';
  }
}

interface Attr {
  readonly name: string;
  /** The text inside the parentheses. */
  readonly body: string;
}

/** Splits `a(x),b(y(z)),c` at top-level commas into `name(body)` items. */
function splitAttrs(text: string): Attr[] {
  const out: Attr[] = [];
  let i = 0;
  while (i < text.length) {
    while (i < text.length && (text[i] === ',' || text[i] === ' ')) i++;
    if (i >= text.length) break;
    const open = text.indexOf('(', i);
    if (open < 0 || !/^[a-z_0-9]+$/.test(text.slice(i, open))) {
      throw new OdpFlowSyntaxError(`syntax error at ${text.slice(i)}`);
    }
    let depth = 0;
    let j = open;
    for (; j < text.length; j++) {
      if (text[j] === '(') depth++;
      else if (text[j] === ')' && --depth === 0) break;
    }
    if (depth !== 0) throw new OdpFlowSyntaxError(`syntax error at ${text.slice(i)} (unbalanced parentheses)`);
    out.push({ name: text.slice(i, open), body: text.slice(open + 1, j) });
    i = j + 1;
  }
  return out;
}

/** `k=v,k=v` of one attribute; a value's `/mask` is dropped. */
function subfields(a: Attr): Map<string, string> {
  const out = new Map<string, string>();
  if (a.body.trim() === '') return out;
  for (const part of a.body.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) throw new OdpFlowSyntaxError(`${a.name}(${a.body}): expected name=value, got '${part}'`);
    const v = part.slice(eq + 1).trim();
    const slash = v.indexOf('/');
    out.set(part.slice(0, eq).trim(), slash < 0 ? v : v.slice(0, slash));
  }
  return out;
}

/** The known subfields of each header attribute, for a clear error on a typo. */
const KNOWN: Record<string, readonly string[]> = {
  eth: ['src', 'dst'],
  vlan: ['vid', 'pcp', 'cfi', 'tci'],
  ipv4: ['src', 'dst', 'proto', 'tos', 'ttl', 'frag'],
  ipv6: ['src', 'dst', 'label', 'proto', 'tclass', 'hlimit', 'frag'],
  tcp: ['src', 'dst'],
  udp: ['src', 'dst'],
  sctp: ['src', 'dst'],
  icmp: ['type', 'code'],
  icmpv6: ['type', 'code'],
  arp: ['sip', 'tip', 'op', 'sha', 'tha'],
  nd: ['target', 'sll', 'tll'],
};

/** Attributes read and dropped: metadata nvs's flows do not hold. */
const IGNORED = new Set(['ct_state', 'ct_zone', 'ct_mark', 'ct_label', 'dp_hash', 'packet_type', 'tunnel', 'ct_tuple4', 'ct_tuple6']);

const FLOW_DL_TYPE_NONE = 0x05ff;

const FRAG: Record<string, number> = { no: 0, first: 1, later: 3 };

function num(text: string, what: string): number {
  try {
    return Number(parseUint(text));
  } catch {
    throw new OdpFlowSyntaxError(`${what}: '${text}' is not a number`);
  }
}

function setMac(f: Flow, slot: number, text: string, what: string): void {
  let v: bigint;
  try {
    v = parseMac(text);
  } catch {
    throw new OdpFlowSyntaxError(`${what}: '${text}' is not a MAC address`);
  }
  f[slot] = Number(v >> 32n);
  f[slot + 1] = Number(v & 0xffffffffn);
}

function ip4(text: string, what: string): number {
  try {
    return parseIpv4(text);
  } catch (e) {
    throw new OdpFlowSyntaxError(`${what}: ${(e as ValueError).message}`);
  }
}

function setIp6(f: Flow, slot: number, text: string, what: string): void {
  let v: bigint;
  try {
    v = parseIpv6(text);
  } catch (e) {
    throw new OdpFlowSyntaxError(`${what}: ${(e as ValueError).message}`);
  }
  for (let i = 3; i >= 0; i--, v >>= 32n) f[slot + i] = Number(v & 0xffffffffn);
}

/**
 * Parses a datapath flow; throws OdpFlowSyntaxError when `text` is not one.
 * `portByName` resolves `in_port(NAME)` to a datapath port number.
 */
export function parseOdpFlow(text: string, portByName?: (name: string) => number | undefined): OdpFlow {
  const flow = newFlow();
  let odpInPort: number | null = null;
  let recircId = 0;
  let tags = 0;
  const apply = (attrs: Attr[]): void => {
    for (const a of attrs) {
      if (IGNORED.has(a.name)) continue;
      const known = KNOWN[a.name];
      const sf = known ? subfields(a) : new Map<string, string>();
      if (known) {
        for (const k of sf.keys()) if (!known.includes(k)) throw new OdpFlowSyntaxError(`${a.name}: unknown field '${k}' (expected ${known.join(', ')})`);
      }
      const get = (k: string): string | undefined => sf.get(k);
      switch (a.name) {
        case 'in_port': {
          const named = /^[0-9]/.test(a.body) ? undefined : portByName?.(a.body);
          odpInPort = named ?? num(a.body, 'in_port');
          break;
        }
        case 'skb_mark':
          flow[Slot.PKT_MARK] = num(a.body.split('/')[0], 'skb_mark');
          break;
        case 'skb_priority':
          flow[Slot.SKB_PRIORITY] = num(a.body.split('/')[0], 'skb_priority');
          break;
        case 'recirc_id':
          recircId = num(a.body, 'recirc_id');
          break;
        case 'eth':
          if (get('src') !== undefined) setMac(flow, Slot.DL_SRC, get('src') as string, 'eth src');
          if (get('dst') !== undefined) setMac(flow, Slot.DL_DST, get('dst') as string, 'eth dst');
          break;
        case 'eth_type':
          flow[Slot.DL_TYPE] = num(a.body.split('/')[0], 'eth_type');
          break;
        case 'vlan': {
          if (tags >= 2) throw new OdpFlowSyntaxError('more than two VLAN tags');
          const tci = get('tci') !== undefined ? num(get('tci') as string, 'vlan tci') : ((num(get('pcp') ?? '0', 'vlan pcp') & 7) << 13) | (num(get('vid') ?? '0', 'vlan vid') & 0xfff) | VLAN_CFI;
          flow[tags === 0 ? Slot.VLAN_TCI : Slot.VLAN_TCI1] = tci | VLAN_CFI;
          if (tags === 0) flow[Slot.VLAN_TPID] = flow[Slot.DL_TYPE] || EthType.VLAN;
          tags++;
          break;
        }
        case 'encap':
          apply(splitAttrs(a.body));
          break;
        case 'ipv4':
          if (get('src') !== undefined) flow[Slot.NW_SRC] = ip4(get('src') as string, 'ipv4 src');
          if (get('dst') !== undefined) flow[Slot.NW_DST] = ip4(get('dst') as string, 'ipv4 dst');
          readIpCommon(flow, get('proto'), get('tos'), get('ttl'), get('frag'));
          break;
        case 'ipv6':
          if (get('src') !== undefined) setIp6(flow, Slot.IPV6_SRC, get('src') as string, 'ipv6 src');
          if (get('dst') !== undefined) setIp6(flow, Slot.IPV6_DST, get('dst') as string, 'ipv6 dst');
          if (get('label') !== undefined) flow[Slot.IPV6_LABEL] = num(get('label') as string, 'ipv6 label') & 0xfffff;
          readIpCommon(flow, get('proto'), get('tclass'), get('hlimit'), get('frag'));
          break;
        case 'tcp':
        case 'udp':
        case 'sctp':
          if (get('src') !== undefined) flow[Slot.TP_SRC] = num(get('src') as string, `${a.name} src`) & 0xffff;
          if (get('dst') !== undefined) flow[Slot.TP_DST] = num(get('dst') as string, `${a.name} dst`) & 0xffff;
          break;
        case 'tcp_flags':
          flow[Slot.TCP_FLAGS] = num(a.body.split('/')[0], 'tcp_flags') & 0xfff;
          break;
        case 'icmp':
        case 'icmpv6':
          if (get('type') !== undefined) flow[Slot.TP_SRC] = num(get('type') as string, `${a.name} type`) & 0xff;
          if (get('code') !== undefined) flow[Slot.TP_DST] = num(get('code') as string, `${a.name} code`) & 0xff;
          break;
        case 'arp':
          if (get('sip') !== undefined) flow[Slot.NW_SRC] = ip4(get('sip') as string, 'arp sip');
          if (get('tip') !== undefined) flow[Slot.NW_DST] = ip4(get('tip') as string, 'arp tip');
          if (get('op') !== undefined) flow[Slot.NW_PROTO] = num(get('op') as string, 'arp op') & 0xff;
          if (get('sha') !== undefined) setMac(flow, Slot.ARP_SHA, get('sha') as string, 'arp sha');
          if (get('tha') !== undefined) setMac(flow, Slot.ARP_THA, get('tha') as string, 'arp tha');
          break;
        case 'nd':
          if (get('target') !== undefined) setIp6(flow, Slot.ND_TARGET, get('target') as string, 'nd target');
          if (get('sll') !== undefined) setMac(flow, Slot.ARP_SHA, get('sll') as string, 'nd sll');
          if (get('tll') !== undefined) setMac(flow, Slot.ARP_THA, get('tll') as string, 'nd tll');
          break;
        default:
          throw new OdpFlowSyntaxError(`unknown datapath flow attribute '${a.name}'`);
      }
    }
  };
  apply(splitAttrs(text));
  // No eth_type: an 802.2 frame, which OVS's flows mark with this type.
  if (!text.includes('eth_type(')) flow[Slot.DL_TYPE] = FLOW_DL_TYPE_NONE;
  return { flow, odpInPort, recircId };
}

function readIpCommon(f: Flow, proto?: string, tos?: string, ttl?: string, frag?: string): void {
  if (proto !== undefined) f[Slot.NW_PROTO] = num(proto, 'proto') & 0xff;
  if (tos !== undefined) f[Slot.NW_TOS] = num(tos, 'tos') & 0xff;
  if (ttl !== undefined) f[Slot.NW_TTL] = num(ttl, 'ttl') & 0xff;
  if (frag !== undefined) {
    const v = FRAG[frag];
    if (v === undefined) throw new OdpFlowSyntaxError(`frag: '${frag}' is not no, first or later`);
    f[Slot.NW_FRAG] = v;
  }
}

/** Whether text looks like a datapath flow (`name(…)` items) rather than an OpenFlow match. */
export function looksLikeOdpFlow(text: string): boolean {
  return /^\s*[a-z_0-9]+\(/.test(text);
}
