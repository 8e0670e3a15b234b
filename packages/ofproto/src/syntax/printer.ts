/**
 * The rule printer: `Match`, actions and whole `FlowMod`s in the canonical
 * text ovs-ofctl prints (`ovs-ofctl parse-flows` after `ADD `, and the match
 * and actions columns of `dump-flows`). Field order, shorthands (`tcp` for
 * dl_type=0x0800,nw_proto=6), `dl_vlan` vs `vlan_tci`, hex vs decimal and
 * the per-version spelling of actions (`mod_nw_dst:` in OpenFlow 1.0,
 * `set_field:…->ip_dst` in 1.3) all follow ovs-ofctl; the oracle test holds
 * us to it.
 */

import type { Action, LearnAction, SetFieldAction } from '../actions.ts';
import { EthType, type Field, type FieldRange, IpProto, OFPP, Slot, VLAN_CFI } from '../fields.ts';
import type { FlowMod } from '../flow-mod.ts';
import { DEFAULT_PRIORITY, type Match } from '../match.ts';
import { vlanAfterWrite } from './checks.ts';
import type { Dialect } from './line-context.ts';
import { formatIpv4, formatIpv6, formatMac, formatTcpFlags, hex, ipv4PrefixLen, prefixLen } from './values.ts';

/**
 * How actions are spelled: as ovs-ofctl prints them for OpenFlow 1.0
 * ('of10', its default) or 1.3 ('of13') — which normalises some spellings
 * (`goto_table` becomes `resubmit(,N)` in 1.0, `mod_vlan_vid` becomes
 * `push_vlan`+`set_field` in 1.3) — or 'exact': the spelling that parses
 * back to the identical `Action` (used by `printRule`).
 */
export type PrintDialect = Dialect | 'exact';

/** Options of the printers. */
export interface PrintOptions {
  /** Default 'of10' (ovs-ofctl's default OpenFlow 1.0 + Nicira extensions). */
  readonly dialect?: PrintDialect;
}

const PORT_NAMES: ReadonlyMap<number, string> = new Map([
  [OFPP.IN_PORT, 'IN_PORT'],
  [OFPP.TABLE, 'TABLE'],
  [OFPP.NORMAL, 'NORMAL'],
  [OFPP.FLOOD, 'FLOOD'],
  [OFPP.ALL, 'ALL'],
  [OFPP.CONTROLLER, 'CONTROLLER'],
  [OFPP.LOCAL, 'LOCAL'],
  [OFPP.NONE, 'ANY'],
]);

/** A port number as ovs-ofctl prints it (`LOCAL`, `3`). */
export function printPort(port: number): string {
  return PORT_NAMES.get(port) ?? String(port);
}

/**
 * A rule in add-flow input syntax that `parseFlow` turns back into the same
 * `FlowMod` (given the dialect it was parsed with): `table=1, cookie=0x5,
 * idle_timeout=10, send_flow_rem, priority=7,ip actions=…`. Use it to store
 * rules; use `printFlowMod` to show them the way ovs-ofctl does.
 */
export function printRule(fm: FlowMod): string {
  const parts: string[] = [];
  if (fm.table !== null) parts.push(`table=${fm.table}`);
  if (fm.cookie !== 0n || fm.cookieMask !== 0n) {
    parts.push(`cookie=0x${fm.cookie.toString(16)}${fm.cookieMask ? `/0x${fm.cookieMask.toString(16)}` : ''}`);
  }
  if (fm.idleTimeout) parts.push(`idle_timeout=${fm.idleTimeout}`);
  if (fm.hardTimeout) parts.push(`hard_timeout=${fm.hardTimeout}`);
  if (fm.importance) parts.push(`importance=${fm.importance}`);
  if (fm.flags.sendFlowRem) parts.push('send_flow_rem');
  if (fm.flags.checkOverlap) parts.push('check_overlap');
  if (fm.flags.resetCounts) parts.push('reset_counts');
  if (fm.flags.noPacketCounts) parts.push('no_packet_counts');
  if (fm.flags.noByteCounts) parts.push('no_byte_counts');
  if (fm.outPort !== null) parts.push(`out_port=${printPort(fm.outPort)}`);
  const m = printMatch(fm.match, { exact: true });
  if (m) parts.push(m);
  const head = parts.join(', ');
  const isDelete = fm.command === 'delete' || fm.command === 'delete_strict';
  if (isDelete) return head;
  return `${head ? `${head} ` : ''}actions=${printActions(fm.actions, fm.match, { dialect: 'exact' })}`;
}

/** The whole rule after ovs-ofctl's `ADD `: `[table:N ]<match> [cookie:…] … actions=…`. */
export function printFlowMod(fm: FlowMod, opts: { readonly dialect?: Dialect } = {}): string {
  const dialect = opts.dialect ?? 'of10';
  const parts: string[] = [];
  if (fm.table === null) {
    if (dialect === 'of10') parts.push('table:255');
  } else if (fm.table !== 0) parts.push(`table:${fm.table}`);
  const m = printMatch(fm.match);
  if (m) parts.push(m);
  if (fm.cookie !== 0n) parts.push(`cookie:0x${fm.cookie.toString(16)}`);
  if (fm.idleTimeout) parts.push(`idle:${fm.idleTimeout}`);
  if (fm.hardTimeout) parts.push(`hard:${fm.hardTimeout}`);
  if (fm.flags.sendFlowRem) parts.push('send_flow_rem');
  if (fm.flags.checkOverlap) parts.push('check_overlap');
  if (fm.flags.resetCounts) parts.push('reset_counts');
  if (fm.flags.noPacketCounts) parts.push('no_packet_counts');
  if (fm.flags.noByteCounts) parts.push('no_byte_counts');
  parts.push(`actions=${printActions(fm.actions, fm.match, opts)}`);
  return parts.join(' ');
}

/**
 * The match as `priority=…,tcp,nw_dst=…`; '' for a catch-all at the default
 * priority. `exact` (printRule's mode) keeps what ovs-ofctl's text would lose:
 * a partly masked ICMP type/code is printed as `tp_src=V/M`.
 */
export function printMatch(m: Match, opts: { readonly exact?: boolean } = {}): string {
  const out: string[] = [];
  const v = m.value;
  const k = m.mask;
  if (m.priority !== DEFAULT_PRIORITY) out.push(`priority=${m.priority}`);
  if (k[Slot.CONJ_ID]) out.push(`conj_id=${v[Slot.CONJ_ID]}`);

  const dlType = k[Slot.DL_TYPE] ? v[Slot.DL_TYPE] : -1;
  const proto = k[Slot.NW_PROTO] ? v[Slot.NW_PROTO] : -1;
  const isArp = dlType === EthType.ARP || dlType === EthType.RARP;
  let skipType = true;
  let skipProto = false;
  if (dlType === EthType.IP || dlType === EthType.IPV6) {
    const six = dlType === EthType.IPV6;
    const name =
      proto === IpProto.TCP ? 'tcp' : proto === IpProto.UDP ? 'udp' : proto === IpProto.SCTP ? 'sctp' : null;
    if (name) out.push(six ? `${name}6` : name);
    else if (!six && proto === IpProto.ICMP) out.push('icmp');
    else if (six && proto === IpProto.ICMPV6) out.push('icmp6');
    else out.push(six ? 'ipv6' : 'ip');
    skipProto = out[out.length - 1] !== 'ip' && out[out.length - 1] !== 'ipv6';
  } else if (dlType === EthType.ARP) out.push('arp');
  else if (dlType === EthType.RARP) out.push('rarp');
  else skipType = false;

  for (let i = 0; i < 16; i++) {
    if (k[Slot.REG0 + i]) out.push(`reg${i}=${hexMasked(BigInt(v[Slot.REG0 + i]), BigInt(k[Slot.REG0 + i]), 32n)}`);
  }
  pushWide(out, m, 'tun_id');
  pushIpv4(out, m, Slot.TUN_SRC, 'tun_src');
  pushIpv4(out, m, Slot.TUN_DST, 'tun_dst');
  pushWide(out, m, 'metadata');
  if (k[Slot.IN_PORT]) out.push(`in_port=${printPort(v[Slot.IN_PORT])}`);
  pushVlan(out, v[Slot.VLAN_TCI], k[Slot.VLAN_TCI]);
  pushMac(out, m, Slot.DL_SRC, 'dl_src');
  pushMac(out, m, Slot.DL_DST, 'dl_dst');
  if (!skipType && k[Slot.DL_TYPE]) out.push(`dl_type=0x${v[Slot.DL_TYPE].toString(16).padStart(4, '0')}`);
  pushIpv6(out, m, Slot.IPV6_SRC, 'ipv6_src');
  pushIpv6(out, m, Slot.IPV6_DST, 'ipv6_dst');
  if (k[Slot.IPV6_LABEL]) {
    const val = `0x${v[Slot.IPV6_LABEL].toString(16).padStart(5, '0')}`;
    const msk = k[Slot.IPV6_LABEL] === 0xfffff ? '' : `/0x${k[Slot.IPV6_LABEL].toString(16).padStart(5, '0')}`;
    out.push(`ipv6_label=${val}${msk}`);
  }
  pushIpv4(out, m, Slot.NW_SRC, isArp ? 'arp_spa' : 'nw_src');
  pushIpv4(out, m, Slot.NW_DST, isArp ? 'arp_tpa' : 'nw_dst');
  if (!skipProto && k[Slot.NW_PROTO]) out.push(`${isArp ? 'arp_op' : 'nw_proto'}=${v[Slot.NW_PROTO]}`);
  if (isArp) {
    pushMac(out, m, Slot.ARP_SHA, 'arp_sha');
    pushMac(out, m, Slot.ARP_THA, 'arp_tha');
  }
  if (k[Slot.NW_TOS] & 0xfc) out.push(`nw_tos=${v[Slot.NW_TOS] & 0xfc}`);
  if (k[Slot.NW_TOS] & 0x03) out.push(`nw_ecn=${v[Slot.NW_TOS] & 0x03}`);
  if (k[Slot.NW_TTL]) out.push(`nw_ttl=${v[Slot.NW_TTL]}`);
  if (k[Slot.NW_FRAG]) out.push(`nw_frag=${fragName(v[Slot.NW_FRAG], k[Slot.NW_FRAG])}`);
  const icmp = (dlType === EthType.IP && proto === IpProto.ICMP) || (dlType === EthType.IPV6 && proto === IpProto.ICMPV6);
  // ICMP type/code are the low bytes of the port slots; what else is there, only `exact` shows.
  const odd = (slot: number): boolean => k[slot] !== 0 && (k[slot] !== 0xffff || v[slot] > 0xff);
  if (icmp && !(opts.exact && (odd(Slot.TP_SRC) || odd(Slot.TP_DST)))) {
    if (k[Slot.TP_SRC]) out.push(`icmp_type=${v[Slot.TP_SRC] & 0xff}`);
    if (k[Slot.TP_DST]) out.push(`icmp_code=${v[Slot.TP_DST] & 0xff}`);
  } else {
    if (k[Slot.TP_SRC]) out.push(`tp_src=${portMasked(v[Slot.TP_SRC], k[Slot.TP_SRC])}`);
    if (k[Slot.TP_DST]) out.push(`tp_dst=${portMasked(v[Slot.TP_DST], k[Slot.TP_DST])}`);
  }
  if (k[Slot.TCP_FLAGS]) out.push(`tcp_flags=${formatTcpFlags(v[Slot.TCP_FLAGS], k[Slot.TCP_FLAGS])}`);
  pushIpv6(out, m, Slot.ND_TARGET, 'nd_target');
  if (!isArp) {
    pushMac(out, m, Slot.ARP_SHA, 'nd_sll');
    pushMac(out, m, Slot.ARP_THA, 'nd_tll');
  }
  return out.join(',');
}

function hexMasked(v: bigint, k: bigint, bits: bigint): string {
  const all = (1n << bits) - 1n;
  return k === all ? hex(v) : `${hex(v)}/${hex(k)}`;
}

function wide(m: Match, slot: number, words: number): { v: bigint; k: bigint } {
  let v = 0n;
  let k = 0n;
  for (let i = 0; i < words; i++) {
    v = (v << 32n) | BigInt(m.value[slot + i]);
    k = (k << 32n) | BigInt(m.mask[slot + i]);
  }
  return { v, k };
}

function pushWide(out: string[], m: Match, name: 'tun_id' | 'metadata'): void {
  const { v, k } = wide(m, name === 'tun_id' ? Slot.TUN_ID : Slot.METADATA, 2);
  if (k) out.push(`${name}=${hexMasked(v, k, 64n)}`);
}

function pushIpv4(out: string[], m: Match, slot: number, name: string): void {
  const k = m.mask[slot];
  if (!k) return;
  const v = formatIpv4(m.value[slot]);
  if (k === 0xffffffff) out.push(`${name}=${v}`);
  else {
    const len = ipv4PrefixLen(k);
    out.push(`${name}=${v}/${len >= 0 ? len : formatIpv4(k)}`);
  }
}

function pushIpv6(out: string[], m: Match, slot: number, name: string): void {
  const { v, k } = wide(m, slot, 4);
  if (!k) return;
  const all = (1n << 128n) - 1n;
  if (k === all) out.push(`${name}=${formatIpv6(v)}`);
  else {
    const len = prefixLen(k, 128);
    out.push(`${name}=${formatIpv6(v)}/${len >= 0 ? len : formatIpv6(k)}`);
  }
}

function pushMac(out: string[], m: Match, slot: number, name: string): void {
  const { v, k } = wide(m, slot, 2);
  if (!k) return;
  out.push(k === 0xffff_ffff_ffffn ? `${name}=${formatMac(v)}` : `${name}=${formatMac(v)}/${formatMac(k)}`);
}

/** dl_vlan/dl_vlan_pcp when the match is expressible in OpenFlow 1.0 terms, else vlan_tci. */
function pushVlan(out: string[], v: number, k: number): void {
  if (!k) return;
  const tci = (x: number): string => `0x${x.toString(16).padStart(4, '0')}`;
  if (k === 0xffff && v === 0) {
    out.push('vlan_tci=0x0000');
    return;
  }
  const vidK = k & 0x0fff;
  const pcpK = k & 0xe000;
  if (k & VLAN_CFI && v & VLAN_CFI && (vidK === 0 || vidK === 0xfff) && (pcpK === 0 || pcpK === 0xe000) && (vidK || pcpK)) {
    if (vidK) out.push(`dl_vlan=${v & 0xfff}`);
    if (pcpK) out.push(`dl_vlan_pcp=${v >>> 13}`);
    return;
  }
  out.push(k === 0xffff ? `vlan_tci=${tci(v)}` : `vlan_tci=${tci(v)}/${tci(k)}`);
}

function portMasked(v: number, k: number): string {
  return k === 0xffff ? String(v) : `0x${v.toString(16)}/0x${k.toString(16)}`;
}

function fragName(v: number, k: number): string {
  if (k === 1) return v ? 'yes' : 'no';
  if (k === 2) return v ? 'later' : 'not_later';
  return v === 0 ? 'no' : v === 1 ? 'first' : 'later';
}

// ---------------------------------------------------------------------------
// Actions

/** Field names of the OpenFlow 1.0 rewrite actions ovs-ofctl prints instead of set_field. */
const OF10_MOD: ReadonlyMap<string, string> = new Map([
  ['dl_src', 'mod_dl_src'],
  ['dl_dst', 'mod_dl_dst'],
  ['nw_src', 'mod_nw_src'],
  ['nw_dst', 'mod_nw_dst'],
  ['ip_dscp', 'mod_nw_tos'],
  ['nw_tos', 'mod_nw_tos'],
  ['tcp_src', 'mod_tp_src'],
  ['tcp_dst', 'mod_tp_dst'],
  ['udp_src', 'mod_tp_src'],
  ['udp_dst', 'mod_tp_dst'],
  ['sctp_src', 'mod_tp_src'],
  ['sctp_dst', 'mod_tp_dst'],
]);

/** The `mod_*` action of each field a 'mod'-form set_field can hold. */
const EXACT_MOD: ReadonlyMap<string, string> = new Map([
  ...OF10_MOD,
  ['nw_ttl', 'mod_nw_ttl'],
  ['nw_ecn', 'mod_nw_ecn'],
]);

/** The action list, `drop` when empty. `match` decides VLAN pushes in OpenFlow 1.3. */
export function printActions(actions: readonly Action[], match: Match, opts: PrintOptions = {}): string {
  if (actions.length === 0) return 'drop';
  const dialect = opts.dialect ?? 'of10';
  const out: string[] = [];
  let vlan = (match.value[Slot.VLAN_TCI] & VLAN_CFI) !== 0;
  for (const a of actions) {
    switch (a.type) {
      case 'output':
        out.push(PORT_NAMES.has(a.port) ? (PORT_NAMES.get(a.port) as string) : `output:${a.port}`);
        break;
      case 'output_reg':
        out.push(`output:${printRange(a.src)}`);
        break;
      case 'controller': {
        if (a.reason === 'action' && a.controllerId === 0) out.push(`CONTROLLER:${a.maxLen}`);
        else {
          const p: string[] = [];
          if (a.reason !== 'action') p.push(`reason=${a.reason}`);
          if (a.maxLen !== 65535) p.push(`max_len=${a.maxLen}`);
          if (a.controllerId !== 0) p.push(`id=${a.controllerId}`);
          out.push(`controller(${p.join(',')})`);
        }
        break;
      }
      case 'set_vlan_vid':
        if (dialect === 'exact') out.push(a.pushIfNeeded ? `mod_vlan_vid:${a.vid}` : `set_field:${a.vid | 0x1000}->vlan_vid`);
        else if (dialect === 'of10') out.push(`mod_vlan_vid:${a.vid}`);
        else {
          if (a.pushIfNeeded && !vlan) out.push('push_vlan:0x8100');
          out.push(`set_field:${a.vid | 0x1000}->vlan_vid`);
        }
        vlan = true;
        break;
      case 'set_vlan_pcp':
        if (dialect === 'exact') out.push(a.pushIfNeeded ? `mod_vlan_pcp:${a.pcp}` : `set_field:${a.pcp}->vlan_pcp`);
        else if (dialect === 'of10') out.push(`mod_vlan_pcp:${a.pcp}`);
        else {
          if (a.pushIfNeeded && !vlan) out.push('push_vlan:0x8100');
          out.push(`set_field:${a.pcp}->vlan_pcp`);
        }
        vlan = true;
        break;
      case 'pop_vlan':
        out.push(dialect === 'of13' ? 'pop_vlan' : 'strip_vlan');
        vlan = false;
        break;
      case 'push_vlan':
        out.push(`push_vlan:0x${a.ethertype.toString(16)}`);
        vlan = true;
        break;
      case 'set_field':
        out.push(printSetField(a, dialect));
        vlan = vlanAfterWrite(a, vlan);
        break;
      case 'dec_ttl':
        out.push(a.controllerIds.length ? `dec_ttl(${a.controllerIds.join(',')})` : 'dec_ttl');
        break;
      case 'move':
        out.push(`move:${printRange(a.src)}->${printRange(a.dst)}`);
        break;
      case 'resubmit':
        out.push(
          a.table === null
            ? `resubmit:${printPort(a.port ?? OFPP.IN_PORT)}`
            : `resubmit(${a.port === null ? '' : printPort(a.port)},${a.table})`,
        );
        break;
      case 'goto_table':
        out.push(dialect === 'of10' ? `resubmit(,${a.table})` : `goto_table:${a.table}`);
        break;
      case 'write_metadata':
        out.push(
          a.mask === (1n << 64n) - 1n
            ? `write_metadata:${hex(a.value)}`
            : `write_metadata:${hex(a.value)}/${hex(a.mask)}`,
        );
        break;
      case 'note':
        out.push(`note:${printNote(a.data, dialect !== 'exact')}`);
        break;
      case 'conjunction':
        out.push(`conjunction(${a.id},${a.clause}/${a.nClauses})`);
        break;
      case 'learn':
        out.push(printLearn(a));
        break;
      case 'output_trunc':
        out.push(`output(port=${printPort(a.port)},max_len=${a.maxLen})`);
        break;
      case 'stack_push':
        out.push(`push:${printRange(a.src)}`);
        break;
      case 'stack_pop':
        out.push(`pop:${printRange(a.dst)}`);
        break;
      case 'exit':
      case 'debug_recirc':
      case 'debug_slow':
      case 'clear_actions':
        out.push(a.type);
        break;
      case 'write_actions':
        out.push(`write_actions(${printActions(a.actions, match, opts)})`);
        break;
    }
  }
  return out.join(',');
}

/** `NXM_NX_REG0[]`, `NXM_NX_REG0[3]`, `NXM_NX_REG0[0..15]`. */
export function printRange(r: FieldRange): string {
  const name = r.field.nxm ?? r.field.name;
  if (r.ofs === 0 && r.nBits === r.field.bits) return `${name}[]`;
  if (r.nBits === 1) return `${name}[${r.ofs}]`;
  return `${name}[${r.ofs}..${r.ofs + r.nBits - 1}]`;
}

/** A field value in the field's own notation (set_field and learn immediates). */
export function printFieldValue(f: Field, v: bigint): string {
  switch (f.format) {
    case 'mac':
      return formatMac(v);
    case 'ipv4':
      return formatIpv4(Number(v));
    case 'ipv6':
      return formatIpv6(v);
    case 'hex':
    case 'ethertype':
      return hex(v);
    case 'port':
      return printPort(Number(v));
    default:
      return v.toString();
  }
}

function printSetField(a: SetFieldAction, dialect: PrintDialect): string {
  const f = a.field;
  const all = (1n << BigInt(f.bits)) - 1n;
  if ((a.form === 'set_tunnel' || a.form === 'set_tunnel64') && dialect !== 'of13') return `${a.form}:${hex(a.value)}`;
  if (dialect === 'exact') {
    if (a.form === 'load') return printLoads(f, a.value, a.mask, f.bits);
    if (a.form === 'mod') return `${EXACT_MOD.get(f.name)}:${f.name === 'ip_dscp' ? a.value << 2n : printFieldValue(f, a.value)}`;
    const v = printFieldValue(f, a.value);
    return `set_field:${a.mask === all ? v : `${v}/${printFieldValue(f, a.mask)}`}->${f.setFieldName}`;
  }
  if (a.form !== 'load') {
    if (dialect === 'of10') {
      const mod = OF10_MOD.get(f.name);
      if (f.name === 'ip_dscp') return `mod_nw_tos:${a.value << 2n}`;
      if (mod) return `${mod}:${printFieldValue(f, a.value)}`;
    } else if (a.mask === all) {
      if (a.form === 'mod' && f.name === 'nw_ttl') return `mod_nw_ttl:${a.value}`;
      return `set_field:${printFieldValue(f, a.value)}->${f.setFieldName}`;
    }
  }
  return printLoads(f, a.value, a.mask, 64);
}

/** A masked write as NXM register loads: one per contiguous run of the mask, at most `chunk` bits each. */
function printLoads(f: Field, value: bigint, mask: bigint, chunk: number): string {
  const out: string[] = [];
  let bit = 0;
  while (bit < f.bits) {
    if (((mask >> BigInt(bit)) & 1n) === 0n) {
      bit++;
      continue;
    }
    let end = bit;
    while (end < f.bits && ((mask >> BigInt(end)) & 1n) === 1n && end - bit < chunk) end++;
    const n = end - bit;
    const part = (value >> BigInt(bit)) & ((1n << BigInt(n)) - 1n);
    out.push(`load:${hex(part)}->${printRange({ field: f, ofs: bit, nBits: n })}`);
    bit = end;
  }
  return out.join(',');
}

/** Note bytes, zero-padded the way the Nicira note action pads them (to 8-byte action length). */
function printNote(data: Uint8Array, pad: boolean): string {
  const len = pad ? Math.ceil((data.length + 10) / 8) * 8 - 10 : data.length;
  const bytes: string[] = [];
  for (let i = 0; i < len; i++) bytes.push((data[i] ?? 0).toString(16).padStart(2, '0'));
  return bytes.join('.');
}

function printLearn(l: LearnAction): string {
  const p: string[] = [`table=${l.table}`];
  if (l.idleTimeout) p.push(`idle_timeout=${l.idleTimeout}`);
  if (l.hardTimeout) p.push(`hard_timeout=${l.hardTimeout}`);
  if (l.finIdleTimeout) p.push(`fin_idle_timeout=${l.finIdleTimeout}`);
  if (l.finHardTimeout) p.push(`fin_hard_timeout=${l.finHardTimeout}`);
  if (l.priority !== DEFAULT_PRIORITY) p.push(`priority=${l.priority}`);
  if (l.sendFlowRem) p.push('send_flow_rem');
  if (l.deleteLearned) p.push('delete_learned');
  if (l.cookie) p.push(`cookie=0x${l.cookie.toString(16)}`);
  for (const s of l.specs) {
    if (s.kind === 'output') p.push(`output:${printRange(s.src)}`);
    else if (s.kind === 'load') {
      p.push(`load:${'field' in s.src ? printRange(s.src) : hex(s.src.value)}->${printRange(s.dst)}`);
    } else if ('field' in s.src) {
      const same = s.src.field === s.dst.field && s.src.ofs === s.dst.ofs && s.src.nBits === s.dst.nBits;
      p.push(same ? printRange(s.dst) : `${printRange(s.dst)}=${printRange(s.src)}`);
    } else if (s.dst.ofs === 0 && s.dst.nBits === s.dst.field.bits) {
      p.push(`${s.dst.field.setFieldName}=${printFieldValue(s.dst.field, s.src.value)}`);
    } else {
      p.push(`${printRange(s.dst)}=${hex(s.src.value)}`);
    }
  }
  return `learn(${p.join(',')})`;
}
