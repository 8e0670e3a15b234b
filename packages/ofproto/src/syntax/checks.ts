/**
 * The semantic checks of a parsed rule, as ovs-ofctl makes them: a field is
 * read or written only where the match pins down its protocol
 * (prerequisites), and an action list is consistent (conjunction alone,
 * instructions last and once, VLAN rewrites on a tagged packet, actions that
 * exist only in one OpenFlow version).
 */

import type { Action, SetFieldAction } from '../actions.ts';
import { EthType, FRAG_LATER, type Field, IpProto, Slot, VLAN_CFI } from '../fields.ts';
import type { Match } from '../match.ts';
import type { RuleSyntaxError } from './errors.ts';
import type { LineCtx } from './line-context.ts';

/** Throws unless the match pins down what `f` needs (e.g. `ip` before reading NXM_OF_IP_DST). */
export function requirePrereqs(ctx: LineCtx, f: Field, m: Match, at: number): void {
  if (!prereqsMet(f, m)) {
    throw ctx.src.error(at, `field '${f.name}' needs a match on ${describePrereqs(f)} (e.g. add 'ip' or 'tcp' to the rule)`);
  }
}

/**
 * True when the match pins dl_type/nw_proto/icmp_type as the field requires.
 * A TCP, UDP or SCTP field also needs a match that is not of later fragments
 * (which carry no transport header), as ovs-ofctl checks.
 */
export function prereqsMet(f: Field, m: Match): boolean {
  if (!f.prereqs) return true;
  const dl = m.mask[Slot.DL_TYPE] ? m.value[Slot.DL_TYPE] : -1;
  const proto = m.mask[Slot.NW_PROTO] ? m.value[Slot.NW_PROTO] : -1;
  const icmp = m.mask[Slot.TP_SRC] === 0xffff || m.mask[Slot.TP_SRC] === 0xffffffff ? m.value[Slot.TP_SRC] : -1;
  const later = (m.value[Slot.NW_FRAG] & m.mask[Slot.NW_FRAG] & FRAG_LATER) !== 0;
  return f.prereqs.some(
    (p) =>
      p.dlTypes.includes(dl) &&
      (!p.nwProtos || p.nwProtos.includes(proto)) &&
      (!p.icmpTypes || p.icmpTypes.includes(icmp)) &&
      !(later && p.nwProtos && TRANSPORT_PROTOS.includes(proto)),
  );
}

/** Protocols whose header a later fragment lacks. */
const TRANSPORT_PROTOS: readonly number[] = [IpProto.TCP, IpProto.UDP, IpProto.SCTP];

function describePrereqs(f: Field): string {
  const text = (f.prereqs ?? [])
    .map((p) => {
      const dl = p.dlTypes.map((d) => `dl_type=0x${d.toString(16).padStart(4, '0')}`).join('|');
      const pr = p.nwProtos ? `,nw_proto=${p.nwProtos.join('|')}` : '';
      const it = p.icmpTypes ? `,icmp_type=${p.icmpTypes.join('|')}` : '';
      return dl + pr + it;
    })
    .join(' or ');
  const transport = (f.prereqs ?? []).some((p) => p.nwProtos?.some((n) => TRANSPORT_PROTOS.includes(n)));
  return transport ? `${text} (not nw_frag=later)` : text;
}

/**
 * Consistency checks across the action list (ovs-ofctl's rules): the
 * conjunction action stands alone (with notes), instructions come last and
 * once, set_field/load/move need their fields' prerequisites, VLAN rewrites
 * need a tag, and some actions exist only in one OpenFlow version.
 */
export function checkActions(ctx: LineCtx, actions: readonly Action[], match: Match, table: number | null, at: number, actionSet = false): void {
  const err = (reason: string): RuleSyntaxError => ctx.src.error(at, reason);
  const conj = actions.some((a) => a.type === 'conjunction');
  if (conj) {
    const other = actions.find((a) => a.type !== 'conjunction' && a.type !== 'note');
    if (other) throw err(`conjunction may be combined only with note, not with ${other.type}`);
  }
  if (ctx.dialect === 'of10' && actions.some((x) => x.type === 'write_metadata') && actions.some((x) => x.type === 'goto_table')) {
    // OpenFlow 1.0 spells goto_table as resubmit, after which write_metadata would be misordered.
    throw err('write_metadata together with goto_table needs OpenFlow 1.1 or later');
  }
  let sawGoto = false;
  let sawMeta = false;
  let sawWrite = false;
  let sawClear = false;
  let vlan = (match.value[Slot.VLAN_TCI] & VLAN_CFI) !== 0;
  for (const a of actions) {
    if (a.type === 'goto_table') {
      if (sawGoto) throw err('goto_table may appear only once');
      if (a.table <= (table ?? 0) && table !== null) throw err(`goto_table:${a.table} must go to a later table than ${table}`);
      sawGoto = true;
      continue;
    }
    if (a.type === 'write_metadata') {
      if (sawMeta) throw err('write_metadata may appear only once');
      if (sawGoto) throw err('write_metadata must come before goto_table');
      sawMeta = true;
      continue;
    }
    if (a.type === 'clear_actions' || a.type === 'write_actions') {
      // OpenFlow 1.1's instruction order: apply-actions, clear, write, metadata, goto.
      if (ctx.dialect === 'of10') throw err(`${a.type} needs OpenFlow 1.1 or later (use -O OpenFlow11 or later)`);
      if (a.type === 'clear_actions' ? sawClear || sawWrite : sawWrite) throw err(`${a.type} may appear only once, clear_actions before write_actions`);
      if (sawGoto || sawMeta) throw err(`${a.type} must come before write_metadata and goto_table`);
      if (a.type === 'clear_actions') sawClear = true;
      else sawWrite = true;
      continue;
    }
    if (sawGoto || sawMeta || sawWrite || sawClear) {
      throw err(`${a.type} must come before the instructions (clear_actions, write_actions, write_metadata, goto_table)`);
    }
    switch (a.type) {
      case 'set_field':
        if (a.form === 'mod') {
          // OpenFlow 1.0 applies mod_nw_*/mod_tp_* to any packet; later versions need the prerequisites.
          if (ctx.dialect === 'of13' && !prereqsMet(a.field, match)) {
            throw err(`${modName(a.field)} needs a match on ${describePrereqs(a.field)} in OpenFlow 1.3`);
          }
          if (a.field.name === 'nw_ttl' && !prereqsMet(a.field, match)) {
            throw err(`mod_nw_ttl needs a match on ${describePrereqs(a.field)}`);
          }
        } else if (!prereqsMet(a.field, match)) {
          throw err(`set_field/load of '${a.field.name}' needs a match on ${describePrereqs(a.field)}`);
        }
        vlan = vlanAfterWrite(a, vlan);
        break;
      case 'move':
        if (!prereqsMet(a.src.field, match)) throw err(`move from '${a.src.field.name}' needs a match on ${describePrereqs(a.src.field)}`);
        if (!prereqsMet(a.dst.field, match)) throw err(`move to '${a.dst.field.name}' needs a match on ${describePrereqs(a.dst.field)}`);
        break;
      case 'stack_push':
        if (!prereqsMet(a.src.field, match)) throw err(`push from '${a.src.field.name}' needs a match on ${describePrereqs(a.src.field)}`);
        break;
      case 'stack_pop':
        if (!prereqsMet(a.dst.field, match)) throw err(`pop into '${a.dst.field.name}' needs a match on ${describePrereqs(a.dst.field)}`);
        break;
      case 'output_reg':
        if (!prereqsMet(a.src.field, match)) throw err(`output from '${a.src.field.name}' needs a match on ${describePrereqs(a.src.field)}`);
        break;
      case 'set_vlan_vid':
      case 'set_vlan_pcp':
        if (!a.pushIfNeeded && !vlan) throw err(`set_field on ${a.type === 'set_vlan_vid' ? 'vlan_vid' : 'vlan_pcp'} needs a VLAN tag (match dl_vlan or vlan_tci, or use mod_vlan_vid)`);
        vlan = true;
        break;
      case 'pop_vlan':
        if (!vlan && ctx.dialect === 'of13' && !actionSet) throw err('pop_vlan needs a VLAN tag in OpenFlow 1.3 (match dl_vlan or vlan_tci first)');
        vlan = false;
        break;
      case 'push_vlan':
        if (ctx.dialect === 'of10') throw err('push_vlan needs OpenFlow 1.1 or later (use -O OpenFlow11 or later; in OpenFlow 1.0 mod_vlan_vid pushes a tag if needed)');
        vlan = true;
        break;
      case 'dec_ttl':
        if (ctx.dialect === 'of13' && !ipMatched(match)) {
          throw err('dec_ttl needs an IP match (ip or ipv6) in OpenFlow 1.3');
        }
        break;
    }
  }
}

/**
 * Whether a tag is known to be present after a set_field/load, as ovs-ofctl
 * tracks it to decide when mod_vlan_* must push a tag in OpenFlow 1.3: a write
 * to vlan_tci leaves a tag exactly when the written bits include the CFI bit.
 */
export function vlanAfterWrite(a: SetFieldAction, vlan: boolean): boolean {
  return a.field.slot === Slot.VLAN_TCI ? (a.value & BigInt(VLAN_CFI)) !== 0n : vlan;
}

function ipMatched(m: Match): boolean {
  const dl = m.mask[Slot.DL_TYPE] ? m.value[Slot.DL_TYPE] : -1;
  return dl === EthType.IP || dl === EthType.IPV6;
}

/** The OpenFlow 1.0 action name of a `mod` form field, for messages. */
function modName(f: Field): string {
  return `mod_${f.name.replace(/^(tcp|udp|sctp)_/, 'tp_').replace('ip_dscp', 'nw_tos')}`;
}
