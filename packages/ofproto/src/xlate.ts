// xlate: translates one flow (a packet's fields and its OpenFlow in_port)
// through the OpenFlow tables into datapath actions, and computes the
// megaflow: the flow under the mask of every bit the translation consulted,
// so that the datapath can reuse the actions for every packet that agrees on
// those bits. Like OVS, field rewrites are kept pending in the working flow
// and committed as `set`/`push_vlan`/`pop_vlan` actions just before each
// output, so only the differences reach the datapath.
//
// The result also lists the rules hit (for stats), invalidation tags (the
// tables and MAC entries the answer depended on), side effects (MACs learned,
// rules learned, packets for the controller) and, on request, a trace.
// With `sideEffects: false` (trace) nothing is learned or queued.

import type { Action, ControllerAction, ControllerReason, LearnAction } from './actions.ts';
import { type BridgePort, inputVlan, outputTag, portInVlan, type TunnelConfig } from './bridge-ports.ts';
import type { ControllerCookie, DpAction, DpFlowKey, DpSetField, DpSetHeader, OdpPortMap, Megaflow } from './dpif.ts';
import { DP_SET_FULL_MASK, formatMac, newDpFlowKey } from './dpif.ts';
import { OfprotoError } from './errors.ts';
import {
  EthType, type Field, type FieldRange, type Flow, FLOW_WORDS, FRAG_ANY, FRAG_LATER, IpProto, macAt, OFPP, readField, Slot, VLAN_CFI, writeField,
} from './fields.ts';
import type { FlowMod } from './flow-mod.ts';
import { NO_FLAGS } from './flow-mod.ts';
import { newMatch } from './match.ts';
import { macTag, type MacLearningTable } from './mac-learning.ts';
import type { FlowTables, Rule } from './tables.ts';

/** Deepest resubmit/goto nesting, as in OVS. */
export const MAX_DEPTH = 64;
/** Most table lookups in one translation, as OVS's MAX_RESUBMITS. */
export const MAX_RESUBMITS = 4096;

/** What xlate reads from its bridge. */
export interface XlateEnv {
  readonly tables: FlowTables;
  /** Ports by OpenFlow number, in flooding order. */
  readonly ports: ReadonlyMap<number, BridgePort>;
  readonly mac: MacLearningTable;
  readonly odpPorts: OdpPortMap;
  /** Clock time (ms). */
  readonly now: number;
  /** Per-table lookup and match counters to bump (dump-tables); absent for trace. */
  readonly counters?: { readonly lookups: number[]; readonly matched: number[] };
  /** Working flows reused across calls (xlate is synchronous); allocated when absent. */
  readonly scratch?: XlateScratch;
  /**
   * other_config:vlan-limit: with 1 (OVS's default), a second VLAN tag is
   * payload, as if the packet's type were its TPID; 0 or absent: no limit
   * (nvs's flows hold two tags).
   */
  readonly vlanLimit?: number;
  /** May be absent: the far end of a patch port of this bridge (a joined patch pair), else undefined. */
  readonly patchPeer?: (ofport: number) => PatchPeer | undefined;
}

/** Where a patch port leads: the peer bridge (its name and xlate view) and the peer port's OpenFlow number. */
export interface PatchPeer {
  readonly bridge: string;
  readonly env: XlateEnv;
  readonly ofport: number;
}

/** The working flows of one translation; a bridge keeps one and reuses it. */
export interface XlateScratch {
  readonly input: Flow;
  readonly flow: Flow;
  readonly base: Flow;
  readonly wc: Flow;
}

export function newXlateScratch(): XlateScratch {
  const w = () => new Uint32Array(FLOW_WORDS);
  return { input: w(), flow: w(), base: w(), wc: w() };
}

export interface XlateOptions {
  /** Learn MACs and rules, queue controller packets (false for trace). Default true. */
  readonly sideEffects?: boolean;
  /** Record a trace. Default false. */
  readonly trace?: boolean;
  /** Run these actions instead of looking the packet up in table 0 (a packet-out's actions). */
  readonly actions?: readonly Action[];
}

/**
 * A packet for the controller, produced by CONTROLLER or dec_ttl.
 * `explicit_miss` is CONTROLLER in a table-miss rule (priority 0, matching
 * everything): OVS reports it as `action` to OpenFlow 1.0–1.2 controllers
 * and as `no_match` from 1.3 on.
 */
export interface ControllerEvent extends ControllerCookie {
  readonly reasonName: ControllerReason | 'explicit_miss';
}

/** A MAC entry the translation learned or relied on (refreshed by `credit`). */
export interface MacRef {
  readonly vlan: number;
  readonly mac: number;
  readonly port: number;
}

/** One step of a trace. */
export type TraceEvent =
  | { readonly kind: 'table'; readonly table: number; readonly rule: Rule | null }
  | { readonly kind: 'action'; readonly action: Action }
  | { readonly kind: 'note'; readonly text: string }
  /** Translation crosses a patch port into `bridge`, or (leave) comes back from it. */
  | { readonly kind: 'bridge'; readonly bridge: string; readonly leave: boolean };

export interface XlateResult {
  /** Datapath actions; empty means drop. */
  readonly actions: DpAction[];
  readonly megaflow: Megaflow;
  /** Rules hit, in order (credit them with the packet's stats). */
  readonly rules: Rule[];
  /** Invalidation tags this result depends on: `table:<id>`, `mac:<vlan>:<mac>`, `ports`. */
  readonly tags: Set<string>;
  /** Source MACs NORMAL learned or confirmed (their age is refreshed by `credit`). */
  readonly macs: MacRef[];
  /** Rules the `learn` action installed or refreshed. */
  readonly learned: Rule[];
  readonly controller: ControllerEvent[];
  /** The flow as the packet leaves (after all rewrites); only kept when tracing. */
  readonly finalFlow: Flow | null;
  /** Why translation failed (the packet is dropped), e.g. `Recursion too deep`; else null. */
  readonly error: string | null;
  /**
   * Why the flow is handled in the slow path (OVS's wording, e.g. `Uses
   * action(s) not supported by datapath.`), or null.
   */
  readonly slowPath: string | null;
  readonly trace: TraceEvent[] | null;
}

/** Translates `flow` (its in_port an OpenFlow port) starting in table 0. */
export function xlate(env: XlateEnv, flow: Flow, opts: XlateOptions = {}): XlateResult {
  if (flow.length !== FLOW_WORDS) {
    throw new OfprotoError('OFPROTO_BAD_FLOW', `a flow has ${FLOW_WORDS} words, got ${flow.length} (build it with newFlow())`);
  }
  const ctx = new Ctx(env, flow, opts.sideEffects ?? true, opts.trace ?? false);
  ctx.tags.add('ports');
  ctx.start(opts.actions);
  if (ctx.error || ctx.tooManyActions) ctx.actions.length = 0;
  return {
    actions: ctx.actions,
    megaflow: ctx.megaflow(),
    rules: ctx.rules,
    tags: ctx.tags,
    macs: ctx.macs,
    learned: ctx.learned,
    controller: ctx.controller,
    finalFlow: ctx.trace ? ctx.flow.slice() : null,
    error: ctx.error,
    slowPath: ctx.slow ? 'Uses action(s) not supported by datapath.' : null,
    trace: ctx.trace,
  };
}

class Ctx {
  readonly flow: Flow;
  /** The packet as the datapath has it so far (rewrites committed). */
  readonly base: Flow;
  readonly input: Flow;
  readonly wc: Flow;
  readonly actions: DpAction[] = [];
  readonly rules: Rule[] = [];
  readonly tags = new Set<string>();
  readonly macs: MacRef[] = [];
  readonly learned: Rule[] = [];
  readonly controller: ControllerEvent[] = [];
  readonly trace: TraceEvent[] | null;
  vlanTpid: number;
  baseTpid: number;
  depth = 0;
  resubmits = 0;
  /** Translating a packet-out: its packets for the controller say so (reason packet_out, as OVS reports them). */
  packetOut = false;
  error: string | null = null;
  /** Set by dec_ttl's exception: stop the current action list. */
  private stopList = false;
  /** Set by `exit`: stop every action list (the action set still runs). */
  private exited = false;
  /** The `push`/`pop` stack, and its size in bytes as OVS counts it (value bytes + 1). */
  private readonly stack: { value: bigint; nBits: number }[] = [];
  private stackBytes = 0;
  /** The OpenFlow 1.1+ action set (write_actions), run when the pipeline ends. */
  private actionSet: Action[] = [];
  /** The flow must stay in the slow path (debug_slow, too many actions). */
  slow = false;
  tooManyActions = false;
  private rule: Rule | null = null;
  private tableId = 0;
  /** The tunnel metadata the packet carries now (a set_tunnel emitted), as `id,src,dst`. */
  private tunnelSet = '';

  /** The bridge translating now: the packet's own, or a patch peer's while crossing. */
  private env: XlateEnv;

  constructor(
    private readonly rootEnv: XlateEnv,
    flow: Flow,
    private readonly sideEffects: boolean,
    trace: boolean,
  ) {
    this.env = rootEnv;
    const sc = rootEnv.scratch ?? newXlateScratch();
    this.input = sc.input;
    this.flow = sc.flow;
    this.base = sc.base;
    this.wc = sc.wc;
    this.input.set(flow);
    this.flow.set(flow);
    this.base.set(flow);
    this.wc.fill(0);
    this.trace = trace ? [] : null;
    this.vlanTpid = this.baseTpid = inputTpid(flow);
    if (rootEnv.vlanLimit === 1 && flow[Slot.VLAN_TCI] & VLAN_CFI && flow[Slot.VLAN_TCI1] & VLAN_CFI) {
      // The inner tag and what follows are payload. The megaflow keeps the
      // packet's real fields (the datapath key has them) and pins the inner tag.
      beyondOneTag(this.flow);
      beyondOneTag(this.base);
      this.wc[Slot.VLAN_TCI1] = 0xffff;
    }
  }

  /**
   * Removes the outer VLAN tag: the inner one of a double-tagged packet
   * becomes the outer (as OVS's flow_pop_vlan), so what follows may match
   * it and the megaflow keys on the inner tag, or on its absence. (OVS pins
   * the inner slot only when a second tag is there; pinning it always keeps
   * a double-tagged packet off a megaflow that a single-tagged one made.)
   */
  private popVlan(): void {
    const f = this.flow;
    this.wc[Slot.VLAN_TCI] |= 0xffff;
    this.wc[Slot.VLAN_TCI1] |= 0xffff;
    f[Slot.VLAN_TCI] = f[Slot.VLAN_TCI] & VLAN_CFI ? f[Slot.VLAN_TCI1] : 0;
    f[Slot.VLAN_TCI1] = 0;
    this.vlanTpid = f[Slot.VLAN_TCI] & VLAN_CFI ? EthType.VLAN : 0;
  }

  private note(text: string): void {
    this.trace?.push({ kind: 'note', text });
  }

  /** Translates from table 0, where the packet enters the pipeline. */
  start(actions?: readonly Action[]): void {
    this.packetOut = actions !== undefined;
    if (actions) this.doActions(actions);
    else this.lookupTable(0, this.flow[Slot.IN_PORT], false);
    this.runActionSet();
  }

  /**
   * Merges write_actions into the action set: it holds one action of each
   * kind (one output, one rewrite per field), a later write replacing it.
   */
  private writeActions(actions: readonly Action[]): void {
    for (const a of actions) {
      const key = actionSetKey(a);
      const i = this.actionSet.findIndex((b) => actionSetKey(b) === key);
      if (i >= 0) this.actionSet[i] = a;
      else this.actionSet.push(a);
    }
  }

  /** Runs the action set in OpenFlow's order (pops, pushes, TTL, rewrites, output last), once. */
  private runActionSet(): void {
    if (this.error || this.exited || this.actionSet.length === 0) return;
    const set = this.actionSet.slice().sort((a, b) => actionSetRank(a) - actionSetRank(b));
    this.actionSet = [];
    this.note('Action set:');
    this.doActions(set);
  }

  /**
   * resubmit and goto_table: like OVS, only a lookup in the same or an
   * earlier table deepens the recursion (a chain forward through the tables
   * is bounded by their number), and every rule they reach counts towards
   * the resubmit limit.
   */
  private resubmit(table: number, inPort: number): void {
    if (this.error) return;
    if (this.depth >= MAX_DEPTH) {
      this.note(`>>>> over max translation depth ${MAX_DEPTH} <<<<`);
      this.error = 'Recursion too deep';
      return;
    }
    if (this.resubmits >= MAX_RESUBMITS) {
      this.note(`>>>> over ${MAX_RESUBMITS} resubmit actions on bridge <<<<`);
      this.error = 'Too many resubmits';
      return;
    }
    // OVS's limits on what resubmits may pile up (its netlink action buffer and stack).
    if (this.actions.length * DP_ACTION_BYTES > 0xffff) {
      if (!this.tooManyActions) this.note('>>>> resubmits yielded over 64 kB of actions <<<<');
      this.tooManyActions = true;
      this.slow = true;
      this.exited = true;
      return;
    }
    if (this.stackBytes >= 65536) {
      this.note('>>>> resubmits yielded over 64 kB of stack <<<<');
      this.error = 'Stack too deep';
      return;
    }
    this.lookupTable(table, inPort, table <= this.tableId);
  }

  /**
   * Looks `table` up with `inPort` as the packet's in_port and runs the
   * rule's actions. The actions see the packet's own in_port again: OVS
   * swaps the port in for the lookup only, so IN_PORT, NORMAL and the
   * input-port check of output act on the port the packet came in on.
   */
  private lookupTable(table: number, inPort: number, deepens: boolean): void {
    this.tags.add(TABLE_TAGS[table]);
    const f = this.flow;
    const ownInPort = f[Slot.IN_PORT];
    const tpSrc = f[Slot.TP_SRC];
    const tpDst = f[Slot.TP_DST];
    f[Slot.IN_PORT] = inPort;
    // OVS's default fragment handling ("normal"): a fragment, first or
    // later, is looked up as if it had no transport ports.
    if (f[Slot.NW_FRAG] & FRAG_ANY && (f[Slot.DL_TYPE] === EthType.IP || f[Slot.DL_TYPE] === EthType.IPV6)) {
      f[Slot.TP_SRC] = 0;
      f[Slot.TP_DST] = 0;
    }
    const rule = this.env.tables.table(table).lookup(f, this.wc);
    f[Slot.IN_PORT] = ownInPort;
    f[Slot.TP_SRC] = tpSrc;
    f[Slot.TP_DST] = tpDst;
    if (this.env.counters) {
      this.env.counters.lookups[table]++;
      if (rule) this.env.counters.matched[table]++;
    }
    this.trace?.push({ kind: 'table', table, rule });
    if (!rule) return;
    this.rules.push(rule);
    // Every rule after the first was reached by resubmit or goto_table.
    if (this.rules.length > 1) this.resubmits++;
    const savedRule = this.rule;
    const savedTable = this.tableId;
    this.rule = rule;
    this.tableId = table;
    if (deepens) this.depth++;
    this.doActions(rule.actions);
    if (deepens) this.depth--;
    this.rule = savedRule;
    this.tableId = savedTable;
    this.stopList = false;
  }

  private doActions(actions: readonly Action[]): void {
    for (const a of actions) {
      if (this.error || this.stopList || this.exited) return;
      this.trace?.push({ kind: 'action', action: a });
      this.doAction(a);
    }
  }

  private doAction(a: Action): void {
    const f = this.flow;
    switch (a.type) {
      case 'output':
        return this.output(a.port, 0);
      case 'output_reg': {
        const port = Number(this.readRange(a.src));
        this.note(`-> output port is ${port}`);
        return this.output(port, a.maxLen);
      }
      case 'controller':
        return this.toController(a);
      case 'set_vlan_vid':
      case 'set_vlan_pcp': {
        this.wc[Slot.VLAN_TCI] |= 0xffff;
        const tagged = (f[Slot.VLAN_TCI] & VLAN_CFI) !== 0;
        if (!tagged && !a.pushIfNeeded) return;
        if (!tagged) this.vlanTpid = EthType.VLAN;
        const tci = f[Slot.VLAN_TCI] | VLAN_CFI;
        f[Slot.VLAN_TCI] = a.type === 'set_vlan_vid' ? (tci & ~0x0fff) | (a.vid & 0x0fff) : (tci & ~0xe000) | ((a.pcp & 7) << 13);
        return;
      }
      case 'pop_vlan':
        this.popVlan();
        return;
      case 'push_vlan':
        // As OVS's flow_push_vlan_uninit: the tags present move inwards and
        // the megaflow matches them.
        this.wc[Slot.VLAN_TCI] |= 0xffff;
        this.wc[Slot.VLAN_TCI1] |= 0xffff;
        if (f[Slot.VLAN_TCI1] & VLAN_CFI) {
          this.note('>> push_vlan on a packet with two VLAN tags: the flow holds two at most; ignored');
          return;
        }
        f[Slot.VLAN_TCI1] = f[Slot.VLAN_TCI];
        f[Slot.VLAN_TCI] = VLAN_CFI;
        this.vlanTpid = a.ethertype;
        return;
      case 'set_field':
        if (!(a.form === 'mod' ? this.modApplies(a.field) : this.prereqsOk(a.field))) {
          this.note(`>> ${a.field.name} does not apply to this packet; ignored`);
          return;
        }
        this.writeMasked(a.field, a.value, a.mask);
        return;
      case 'dec_ttl':
        return this.decTtl(a.controllerIds);
      case 'move': {
        if (!this.prereqsOk(a.src.field) || !this.prereqsOk(a.dst.field)) {
          this.note('>> move between fields this packet lacks; ignored');
          return;
        }
        const v = this.readRange(a.src);
        this.writeRange(a.dst, v);
        this.note(`-> ${a.dst.field.nxm ?? a.dst.field.name}[] is now ${readField(f, a.dst.field).toString(16)}`);
        return;
      }
      case 'resubmit':
        return this.resubmit(a.table ?? this.tableId, a.port !== null && a.port !== OFPP.IN_PORT ? a.port : f[Slot.IN_PORT]);
      case 'goto_table':
        return this.resubmit(a.table, f[Slot.IN_PORT]);
      case 'write_metadata': {
        const md = (BigInt(f[Slot.METADATA]) << 32n) | BigInt(f[Slot.METADATA + 1]);
        const v = (md & ~a.mask) | (a.value & a.mask);
        f[Slot.METADATA] = Number((v >> 32n) & 0xffffffffn);
        f[Slot.METADATA + 1] = Number(v & 0xffffffffn);
        return;
      }
      case 'note':
      case 'conjunction':
        return;
      case 'learn':
        return this.learn(a);
      case 'output_trunc':
        return this.outputTrunc(a.port, a.maxLen);
      case 'stack_push': {
        const value = this.readRange(a.src);
        this.stack.push({ value, nBits: a.src.nBits });
        this.stackBytes += Math.ceil(a.src.nBits / 8) + 1;
        return;
      }
      case 'stack_pop': {
        const top = this.stack.pop();
        if (!top) {
          this.note('>> stack underflow: pop from an empty stack ignored');
          return;
        }
        this.stackBytes -= Math.ceil(top.nBits / 8) + 1;
        this.writeRange(a.dst, top.value);
        return;
      }
      case 'exit':
        this.exited = true;
        return;
      case 'debug_slow':
        this.slow = true;
        return;
      case 'debug_recirc':
        this.note('>> debug_recirc: nvs does not recirculate; ignored');
        return;
      case 'clear_actions':
        this.actionSet = [];
        return;
      case 'write_actions':
        return this.writeActions(a.actions);
    }
  }

  /**
   * output(port=…,max_len=…): the datapath cuts the packet for this output
   * only. As in OVS, reserved ports other than LOCAL and IN_PORT cannot
   * take it.
   */
  private outputTrunc(port: number, maxLen: number): void {
    const ofport = port === OFPP.IN_PORT ? this.flow[Slot.IN_PORT] : port;
    if (ofport === this.flow[Slot.IN_PORT] && port !== OFPP.IN_PORT) {
      this.note('>> skipping output to input port');
      return;
    }
    if (this.env.patchPeer?.(ofport)) {
      this.note(`>> output_trunc does not support patch port ${ofport}`);
      return;
    }
    const odp = this.env.odpPorts.odpPort(ofport);
    if (odp === undefined) {
      this.note(`>> output to nonexistent port ${ofport}`);
      return;
    }
    this.commit();
    this.actions.push({ type: 'truncate', maxLen }, { type: 'output', port: odp });
  }

  // ------------------------------------------------------------- fields

  /**
   * Whether the packet has the field, as OVS checks before set_field, load
   * and move: its Ethernet type, IP protocol or ICMP type, and for a TCP,
   * UDP or SCTP field a packet that is not a later fragment.
   */
  private prereqsOk(field: Field): boolean {
    if (!field.prereqs) return true;
    const f = this.flow;
    this.wc[Slot.DL_TYPE] |= 0xffff;
    return field.prereqs.some((p) => {
      if (!p.dlTypes.includes(f[Slot.DL_TYPE])) return false;
      if (p.nwProtos) {
        this.wc[Slot.NW_PROTO] |= 0xff;
        if (!p.nwProtos.includes(f[Slot.NW_PROTO])) return false;
        if (f[Slot.NW_FRAG] & FRAG_LATER && L4_HEADERS[f[Slot.NW_PROTO]]) return false;
      }
      if (p.icmpTypes) {
        this.wc[Slot.TP_SRC] |= 0xff;
        if (!p.icmpTypes.includes(f[Slot.TP_SRC])) return false;
      }
      return true;
    });
  }

  /**
   * Whether a `mod_*` rewrite applies, as OVS's OpenFlow 1.0 set actions
   * decide: by the Ethernet type alone (mod_nw_src/dst need IPv4, the ToS,
   * ECN and TTL any IP), and mod_tp_src/dst on any IP packet but a later
   * fragment, whatever its protocol (its nw_proto then joins the megaflow).
   */
  private modApplies(field: Field): boolean {
    const f = this.flow;
    this.wc[Slot.DL_TYPE] |= 0xffff;
    if (field.slot === Slot.TP_SRC || field.slot === Slot.TP_DST) {
      if ((f[Slot.DL_TYPE] !== EthType.IP && f[Slot.DL_TYPE] !== EthType.IPV6) || f[Slot.NW_FRAG] & FRAG_LATER) return false;
      this.wc[Slot.NW_PROTO] |= 0xff;
      return true;
    }
    return !field.prereqs || field.prereqs.some((p) => p.dlTypes.includes(f[Slot.DL_TYPE]));
  }

  /** Writes bits of a field; the written bits join the megaflow (commit compares them). */
  private writeMasked(field: Field, value: bigint, mask: bigint): void {
    writeField(this.flow, field, value, mask);
    writeField(this.wc, field, mask, mask);
  }

  private readRange(r: FieldRange): bigint {
    const ones = (1n << BigInt(r.nBits)) - 1n;
    writeField(this.wc, r.field, ones << BigInt(r.ofs), ones << BigInt(r.ofs));
    return (readField(this.flow, r.field) >> BigInt(r.ofs)) & ones;
  }

  private writeRange(r: FieldRange, v: bigint): void {
    const ones = (1n << BigInt(r.nBits)) - 1n;
    this.writeMasked(r.field, (v & ones) << BigInt(r.ofs), ones << BigInt(r.ofs));
  }

  private decTtl(controllerIds: readonly number[]): void {
    const f = this.flow;
    this.wc[Slot.DL_TYPE] |= 0xffff;
    const type = f[Slot.DL_TYPE];
    if (type !== EthType.IP && type !== EthType.IPV6) return;
    this.wc[Slot.NW_TTL] |= 0xff;
    if (f[Slot.NW_TTL] > 1) {
      f[Slot.NW_TTL]--;
      return;
    }
    this.note(`>> ${type === EthType.IP ? 'IPv4' : 'IPv6'} decrement TTL exception`);
    // Plain dec_ttl notifies controller 0, as OVS does.
    for (const id of controllerIds.length ? controllerIds : [0]) {
      this.toController({ type: 'controller', maxLen: 0xffff, reason: 'invalid_ttl', controllerId: id });
    }
    this.stopList = true;
  }

  // ------------------------------------------------------------- output

  private output(port: number, maxLen: number): void {
    const inPort = this.flow[Slot.IN_PORT];
    switch (port) {
      case OFPP.IN_PORT:
        return this.outputTo(inPort);
      case OFPP.TABLE:
        // Only a packet-out's actions may output to TABLE (flows refuse it): the pipeline from table 0.
        return this.resubmit(0, inPort);
      case OFPP.NORMAL:
        return this.normal();
      case OFPP.FLOOD:
      case OFPP.ALL:
        for (const p of this.env.ports.values()) {
          if (p.ofport === inPort || (port === OFPP.FLOOD && p.noFlood)) continue;
          this.outputTo(p.ofport);
        }
        return;
      case OFPP.CONTROLLER:
        return this.toController({ type: 'controller', maxLen: maxLen || 0xffff, reason: 'action', controllerId: 0 });
      case OFPP.NONE:
        return;
      default:
        if (port === inPort) {
          this.note('>> skipping output to input port');
          return;
        }
        return this.outputTo(port);
    }
  }

  /** Commits pending rewrites and emits output to one OpenFlow port (or crosses a patch port). */
  private outputTo(ofport: number): void {
    const peer = this.env.patchPeer?.(ofport);
    if (peer) return this.crossPatch(peer);
    const odp = this.env.odpPorts.odpPort(ofport);
    if (odp === undefined) {
      this.note(`>> output to nonexistent port ${ofport}`);
      return;
    }
    this.commit();
    const tunnel = this.env.ports.get(ofport)?.tunnel;
    if (tunnel && !this.setTunnel(tunnel)) return;
    this.actions.push({ type: 'output', port: odp });
  }

  /**
   * Emits the tunnel metadata of an output to a tunnel port, as OVS builds
   * it: the port's remote_ip and key, or (`flow`) the flow's tun_dst and
   * tun_id, whose input values the megaflow then keys on. False (the output
   * is dropped) when `remote_ip=flow` and the flow has no tun_dst.
   */
  private setTunnel(t: TunnelConfig): boolean {
    const f = this.flow;
    let dst: number;
    if (t.remoteIp === 'flow') {
      dst = f[Slot.TUN_DST];
      this.wc[Slot.TUN_DST] = 0xffffffff;
    } else dst = t.remoteIp;
    if (dst === 0) {
      this.note('>> output to a remote_ip=flow tunnel port without tun_dst: dropped');
      return false;
    }
    let id: number;
    if (t.outKey === 'flow') {
      // The datapath carries the low 32 bits (VXLAN and Geneve send 24).
      id = f[Slot.TUN_ID + 1];
      this.wc[Slot.TUN_ID + 1] = 0xffffffff;
    } else id = t.outKey;
    const text = `${id},${t.localIp},${dst},${t.dstPort}`;
    if (text !== this.tunnelSet) {
      this.tunnelSet = text;
      // The kernel's default TTL is 64.
      this.actions.push({ type: 'set_tunnel', id, src: t.localIp, dst, tos: t.tos ?? 0, ttl: t.ttl ?? 64, dstPort: t.dstPort });
    }
    return true;
  }

  /**
   * Output to a patch port: the packet enters the peer bridge at once, in
   * this same translation (no second trip through the datapath), as in OVS.
   * The peer sees it with its own in_port and with registers, metadata,
   * tunnel metadata, the action set and the stack cleared; afterwards this bridge's view of the
   * flow comes back (what the peer output stays output).
   */
  private crossPatch(peer: PatchPeer): void {
    if (this.depth >= MAX_DEPTH) {
      this.note(`>>>> over max translation depth ${MAX_DEPTH} <<<<`);
      this.error = 'Recursion too deep';
      return;
    }
    const f = this.flow;
    const saved = {
      env: this.env, flow: f.slice(), actionSet: this.actionSet, stack: this.stack.splice(0), stackBytes: this.stackBytes,
      rule: this.rule, tableId: this.tableId, vlanTpid: this.vlanTpid, exited: this.exited,
    };
    this.trace?.push({ kind: 'bridge', bridge: peer.bridge, leave: false });
    this.env = peer.env;
    f[Slot.IN_PORT] = peer.ofport;
    f.fill(0, Slot.METADATA, Slot.METADATA + 2);
    f.fill(0, Slot.REG0, Slot.REG0 + 16);
    f.fill(0, Slot.TUN_ID, Slot.TUN_DST + 1);
    this.actionSet = [];
    this.stackBytes = 0;
    this.depth++;
    this.lookupTable(0, peer.ofport, false);
    this.runActionSet();
    this.depth--;
    this.trace?.push({ kind: 'bridge', bridge: peer.bridge, leave: true });
    this.env = saved.env;
    f.set(saved.flow);
    this.actionSet = saved.actionSet;
    this.stack.splice(0, this.stack.length, ...saved.stack);
    this.stackBytes = saved.stackBytes;
    this.rule = saved.rule;
    this.tableId = saved.tableId;
    this.vlanTpid = saved.vlanTpid;
    this.exited = saved.exited;
  }

  private toController(a: ControllerAction): void {
    this.commit();
    const reasonName = a.reason === 'action' && this.packetOut ? 'packet_out' : a.reason === 'action' && this.rule && isTableMiss(this.rule) ? 'explicit_miss' : a.reason;
    const cookie: ControllerCookie = {
      reason: REASON_CODES[reasonName],
      maxLen: a.maxLen,
      ruleCookie: this.rule?.cookie ?? 0n,
      controllerId: a.controllerId,
      tableId: this.tableId,
    };
    this.actions.push({ type: 'userspace', controller: cookie });
    if (this.sideEffects) this.controller.push({ ...cookie, reasonName });
  }

  // ------------------------------------------------------------- NORMAL

  private normal(): void {
    const f = this.flow;
    const wc = this.wc;
    const inPort = f[Slot.IN_PORT];
    // A tagged packet's PCP is kept on output, so then the whole TCI matters.
    wc[Slot.VLAN_TCI] |= f[Slot.VLAN_TCI] & VLAN_CFI ? 0xffff : VLAN_CFI | 0x0fff;
    const src = macAt(f, Slot.DL_SRC);
    const dst = macAt(f, Slot.DL_DST);
    // Learning reads the source, forwarding the destination: both join the megaflow.
    wc[Slot.DL_SRC] |= 0xffff;
    wc[Slot.DL_SRC + 1] = 0xffffffff;
    wc[Slot.DL_DST] |= 0xffff;
    wc[Slot.DL_DST + 1] = 0xffffffff;
    // A packet from no port (a trace without in_port) enters as OVS's OFPP_NONE bundle: a trunk.
    const port = inPort === OFPP.NONE ? NONE_PORT : this.env.ports.get(inPort);
    if (!port) {
      this.note(`-> no such port ${inPort} on the bridge, dropping`);
      return;
    }
    // Without a tag there is no PCP to keep: stray bits in an untagged TCI are ignored.
    const tci = f[Slot.VLAN_TCI] & VLAN_CFI ? f[Slot.VLAN_TCI] : 0;
    const vlan = inputVlan(port, (tci & VLAN_CFI) !== 0, tci & 0x0fff);
    if (vlan === null) {
      this.note(`-> dropping VLAN ${tci & 0x0fff} packet received on port ${port.name} (${port.mode}${port.mode === 'trunk' ? '' : ` ${port.tag}`})`);
      return;
    }
    const mac = this.env.mac;
    // Only the destination's entry shapes the actions; the source's is kept
    // fresh (or learned again after a move or eviction) when the megaflow's
    // stats are credited, so its changes need not revalidate this flow.
    if (!isMulticast(src) && port !== NONE_PORT) {
      // Credited stats refresh the packet's own bridge's table only: a peer's sightings are learned per upcall.
      if (this.env === this.rootEnv) this.macs.push({ vlan, mac: src, port: inPort });
      if (this.sideEffects && mac.learn(vlan, src, inPort, this.env.now) && this.trace) {
        this.note(`-> learned that ${formatMac(src)} is on port ${port.name} in VLAN ${vlan}`);
      }
    }
    if (!isMulticast(dst)) {
      const e = mac.lookup(vlan, dst);
      this.tags.add(e?.tag ?? macTag(vlan, dst));
      if (e) {
        const out = this.env.ports.get(e.port);
        if (e.port === inPort) {
          this.note('-> learned port is input port, dropping');
          return;
        }
        if (out && portInVlan(out, vlan)) {
          this.note(`-> forwarding to learned port`);
          this.outputVlan(out, vlan, tci);
          return;
        }
      }
      this.note('-> no learned MAC for destination, flooding');
    } else {
      this.note('-> flooding (multicast or broadcast destination)');
    }
    for (const p of this.env.ports.values()) {
      if (p.ofport !== inPort && !p.noFlood && portInVlan(p, vlan)) this.outputVlan(p, vlan, tci);
    }
  }

  /**
   * Outputs to a port with the VLAN tag that port wants, keeping the
   * packet's PCP; a tag whose VID and PCP are both 0 is left off.
   */
  private outputVlan(p: BridgePort, vlan: number, inTci: number): void {
    const f = this.flow;
    const saved = f[Slot.VLAN_TCI];
    const savedInner = f[Slot.VLAN_TCI1];
    const savedTpid = this.vlanTpid;
    const tag = outputTag(p, vlan);
    const tci = tag === null ? 0 : (inTci & 0xe000) | tag;
    if (tci === 0) {
      this.popVlan();
    } else {
      f[Slot.VLAN_TCI] = tci | VLAN_CFI;
      if (!this.vlanTpid) this.vlanTpid = EthType.VLAN;
    }
    this.outputTo(p.ofport);
    f[Slot.VLAN_TCI] = saved;
    f[Slot.VLAN_TCI1] = savedInner;
    this.vlanTpid = savedTpid;
  }

  // ------------------------------------------------------------- learn

  private learn(a: LearnAction): void {
    const f = this.flow;
    const match = newMatch(a.priority);
    const actions: Action[] = [];
    for (const s of a.specs) {
      const value = s.kind === 'output' || !('value' in s.src) ? this.readRange(s.src as FieldRange) : s.src.value;
      if (s.kind === 'match') {
        const ones = (1n << BigInt(s.dst.nBits)) - 1n;
        const sh = BigInt(s.dst.ofs);
        writeField(match.mask, s.dst.field, ones << sh, ones << sh);
        writeField(match.value, s.dst.field, (value & ones) << sh, ones << sh);
        // The learned rule needs its field's prerequisites (dl_type, nw_proto) to be valid.
        if (s.dst.field.prereqs) {
          match.mask[Slot.DL_TYPE] = 0xffff;
          match.value[Slot.DL_TYPE] = f[Slot.DL_TYPE];
          this.wc[Slot.DL_TYPE] |= 0xffff;
          if (s.dst.field.prereqs.some((p) => p.nwProtos)) {
            match.mask[Slot.NW_PROTO] = 0xff;
            match.value[Slot.NW_PROTO] = f[Slot.NW_PROTO];
            this.wc[Slot.NW_PROTO] |= 0xff;
          }
        }
      } else if (s.kind === 'load') {
        const ones = (1n << BigInt(s.dst.nBits)) - 1n;
        const sh = BigInt(s.dst.ofs);
        actions.push({ type: 'set_field', field: s.dst.field, value: (value & ones) << sh, mask: ones << sh, form: 'load' });
      } else {
        actions.push({ type: 'output', port: Number(value) });
      }
    }
    if (!this.sideEffects) {
      this.note('>> suppressing side effects, so learn action ignored');
      return;
    }
    const fm: FlowMod = {
      command: 'add',
      table: a.table,
      match,
      cookie: a.cookie,
      cookieMask: 0n,
      idleTimeout: a.idleTimeout,
      hardTimeout: a.hardTimeout,
      importance: 0,
      flags: { ...NO_FLAGS, sendFlowRem: a.sendFlowRem },
      outPort: null,
      actions,
    };
    try {
      this.learned.push(this.env.tables.learn(fm, this.env.now));
    } catch (e) {
      // A rule that cannot be learned must not fail the packet's translation.
      if (!(e instanceof OfprotoError)) throw e;
      this.note(`>> learn failed: ${e.message}`);
    }
  }

  // ------------------------------------------------------------- commit

  /**
   * Emits datapath actions that turn `base` into `flow`, then makes them
   * equal. The order is OVS's: Ethernet, L3, L4, then the VLAN tag. Like
   * OVS, a packet whose nw_proto is 0 gets no L3 or L4 rewrite: it is not
   * taken to have those headers.
   */
  private commit(): void {
    const f = this.flow;
    const b = this.base;
    this.commitField('eth', 'eth_src', Slot.DL_SRC, 2);
    this.commitField('eth', 'eth_dst', Slot.DL_DST, 2);
    // Whether there is an L3 header to rewrite is read from nw_proto.
    if (this.pending(L3_L4_SLOTS)) {
      this.wc[Slot.NW_PROTO] |= 0xff;
      if (f[Slot.NW_PROTO] !== 0) this.commitL3L4(f[Slot.DL_TYPE]);
    }
    if (f[Slot.VLAN_TCI] !== b[Slot.VLAN_TCI] || f[Slot.VLAN_TCI1] !== b[Slot.VLAN_TCI1] || (f[Slot.VLAN_TCI] && this.vlanTpid !== this.baseTpid)) {
      this.commitVlans();
    }
  }

  /**
   * Turns the packet's tag stack into the flow's, as OVS's
   * commit_vlan_action: the tags both stacks share at the bottom stay, the
   * base's others are popped and the flow's others pushed, innermost first.
   */
  private commitVlans(): void {
    const want = vlanStack(this.flow);
    const have = vlanStack(this.base);
    let w = want.length;
    let h = have.length;
    while (w > 0 && h > 0 && want[w - 1] === have[h - 1] && !(w === 1 && h === 1 && this.vlanTpid !== this.baseTpid)) {
      w--;
      h--;
    }
    for (let i = 0; i < h; i++) this.actions.push({ type: 'pop_vlan' });
    for (let i = w - 1; i >= 0; i--) this.actions.push({ type: 'push_vlan', tpid: i === 0 ? this.vlanTpid || EthType.VLAN : EthType.VLAN, tci: want[i] });
    this.base[Slot.VLAN_TCI] = this.flow[Slot.VLAN_TCI];
    this.base[Slot.VLAN_TCI1] = this.flow[Slot.VLAN_TCI1];
    this.baseTpid = this.vlanTpid;
  }

  private commitL3L4(type: number): void {
    const f = this.flow;
    if (type === EthType.IP) {
      this.commitField('ipv4', 'nw_src', Slot.NW_SRC, 1);
      this.commitField('ipv4', 'nw_dst', Slot.NW_DST, 1);
      this.commitField('ipv4', 'nw_tos', Slot.NW_TOS, 1);
      this.commitField('ipv4', 'nw_ttl', Slot.NW_TTL, 1);
    } else if (type === EthType.IPV6) {
      this.commitField('ipv6', 'ipv6_src', Slot.IPV6_SRC, 4);
      this.commitField('ipv6', 'ipv6_dst', Slot.IPV6_DST, 4);
      this.commitField('ipv6', 'ipv6_label', Slot.IPV6_LABEL, 1);
      this.commitField('ipv6', 'nw_tos', Slot.NW_TOS, 1);
      this.commitField('ipv6', 'nw_ttl', Slot.NW_TTL, 1);
    } else if (type === EthType.ARP || type === EthType.RARP) {
      this.commitField('arp', 'nw_src', Slot.NW_SRC, 1);
      this.commitField('arp', 'nw_dst', Slot.NW_DST, 1);
      this.commitField('arp', 'nw_proto', Slot.NW_PROTO, 1);
      this.commitField('arp', 'arp_sha', Slot.ARP_SHA, 2);
      this.commitField('arp', 'arp_tha', Slot.ARP_THA, 2);
    }
    // (A later fragment's ports never change: no action writes them.)
    if (type === EthType.IP || type === EthType.IPV6) {
      if (f[Slot.NW_PROTO] === IpProto.ICMPV6 && (f[Slot.TP_SRC] === 135 || f[Slot.TP_SRC] === 136)) {
        this.commitField('nd', 'nd_target', Slot.ND_TARGET, 4);
        this.commitField('nd', 'arp_sha', Slot.ARP_SHA, 2);
        this.commitField('nd', 'arp_tha', Slot.ARP_THA, 2);
      }
      const l4 = L4_HEADERS[f[Slot.NW_PROTO]];
      if (l4) {
        this.commitField(l4, 'tp_src', Slot.TP_SRC, 1);
        this.commitField(l4, 'tp_dst', Slot.TP_DST, 1);
      } else if (f[Slot.NW_PROTO] === IpProto.ICMP || f[Slot.NW_PROTO] === IpProto.ICMPV6) {
        this.commitIcmp(f[Slot.NW_PROTO] === IpProto.ICMP ? 'icmp' : 'icmpv6');
      }
    }
  }

  /**
   * ICMP's type and code are 8-bit fields kept in tp_src/tp_dst: like OVS,
   * a change to either sets both, whole and cut to 8 bits (mod_tp_src:1000
   * gives type 232), and pins both in the megaflow.
   */
  private commitIcmp(header: 'icmp' | 'icmpv6'): void {
    const f = this.flow;
    const b = this.base;
    if (((f[Slot.TP_SRC] ^ b[Slot.TP_SRC]) | (f[Slot.TP_DST] ^ b[Slot.TP_DST])) === 0) return;
    b[Slot.TP_SRC] = f[Slot.TP_SRC];
    b[Slot.TP_DST] = f[Slot.TP_DST];
    this.wc[Slot.TP_SRC] |= 0xff;
    this.wc[Slot.TP_DST] |= 0xff;
    this.actions.push({ type: 'set', header, field: 'tp_src', value: f[Slot.TP_SRC] & 0xff, mask: DP_SET_FULL_MASK.tp_src });
    this.actions.push({ type: 'set', header, field: 'tp_dst', value: f[Slot.TP_DST] & 0xff, mask: DP_SET_FULL_MASK.tp_dst });
  }

  /** True when `flow` and `base` differ in one of these slots. */
  private pending(slots: readonly number[]): boolean {
    for (const s of slots) if (this.flow[s] !== this.base[s]) return true;
    return false;
  }

  private commitField(header: DpSetHeader, field: DpSetField, slot: number, words: number): void {
    const f = this.flow;
    const b = this.base;
    let same = true;
    for (let i = 0; i < words; i++) if (f[slot + i] !== b[slot + i]) same = false;
    if (same) return;
    // Like OVS, the set carries the field's bits the megaflow matches (read
    // or written), under a mask: only written bits differ, and the others
    // are equal in every packet of the megaflow.
    for (let i = 0; i < words; i++) b[slot + i] = f[slot + i];
    const mask = wordsValue(this.wc, slot, words);
    const value = typeof mask === 'bigint' ? (wordsValue(f, slot, words) as bigint) & mask : maskNum(wordsValue(f, slot, words) as number, mask, words);
    this.actions.push({ type: 'set', header, field, value, mask });
  }

  // ------------------------------------------------------------- megaflow

  megaflow(): Megaflow {
    const k = this.input;
    const w = this.wc;
    // Fields the datapath always keys on exactly (as OVS's megaflows do).
    w[Slot.IN_PORT] = 0xffffffff;
    w[Slot.DL_TYPE] = 0xffff;
    if (k[Slot.DL_TYPE] === EthType.IP || k[Slot.DL_TYPE] === EthType.IPV6) w[Slot.NW_FRAG] = 3;
    const key = newDpFlowKey();
    const mask = newDpFlowKey();
    const odpIn = this.env.odpPorts.odpPort(k[Slot.IN_PORT]);
    key.in_port = odpIn ?? k[Slot.IN_PORT];
    mask.in_port = 0xffffffff;
    mask.recirc_id = 0xffffffff;
    for (const [name, slot, words] of DP_FIELDS) {
      if (words === 4 ? (w[slot] | w[slot + 1] | w[slot + 2] | w[slot + 3]) === 0 : words === 2 ? (w[slot] | w[slot + 1]) === 0 : w[slot] === 0) continue;
      const m = wordsValue(w, slot, words);
      const v = wordsValue(k, slot, words);
      (mask as unknown as Record<string, number | bigint>)[name] = m;
      (key as unknown as Record<string, number | bigint>)[name] =
        typeof v === 'bigint' ? v & (m as bigint) : maskNum(v, m as number, words);
    }
    if (mask.vlan_tci) {
      mask.vlan_tpid = 0xffff;
      key.vlan_tpid = inputTpid(k);
    }
    return { key, mask };
  }
}

/** The input port of a packet from no port (OFPP_NONE): a trunk, as OVS's. */
const NONE_PORT: BridgePort = { ofport: OFPP.NONE, name: 'OFPP_NONE', mode: 'trunk', tag: 0, trunks: null, noFlood: false, tunnel: null };

/** What one datapath action costs in OVS's netlink buffer (an output: 8 bytes), for its 64 kB limit. */
const DP_ACTION_BYTES = 8;

/** The kind of an action in the action set: one of each kind is kept. */
function actionSetKey(a: Action): string {
  switch (a.type) {
    case 'output':
    case 'output_reg':
    case 'output_trunc':
    case 'controller':
      return 'output';
    case 'set_field':
      return `set:${a.field.slot}:${a.field.shift}:${a.field.bits}`;
    default:
      return a.type;
  }
}

/** OpenFlow's action-set order: pops, pushes, TTL, rewrites, then output. */
function actionSetRank(a: Action): number {
  switch (a.type) {
    case 'pop_vlan':
      return 0;
    case 'push_vlan':
      return 1;
    case 'dec_ttl':
      return 2;
    case 'output':
    case 'output_reg':
    case 'output_trunc':
    case 'controller':
      return 4;
    default:
      return 3;
  }
}

/** Packet-in reasons as OVS numbers them in the datapath's controller cookie. */
const REASON_CODES: Record<ControllerEvent['reasonName'], number> = {
  no_match: 0, action: 1, invalid_ttl: 2, action_set: 3, group: 4, packet_out: 5, explicit_miss: 6,
};

/** A table-miss rule: priority 0 and matching every packet. */
function isTableMiss(rule: Rule): boolean {
  return rule.match.priority === 0 && rule.match.mask.every((w) => w === 0);
}

const TABLE_TAGS = Array.from({ length: 255 }, (_, i) => `table:${i}`);

/** The slots of the L3 and L4 fields a commit may rewrite. */
const L3_L4_SLOTS: readonly number[] = [
  Slot.NW_SRC, Slot.NW_DST, Slot.NW_TOS, Slot.NW_TTL, Slot.NW_PROTO, Slot.IPV6_LABEL, Slot.TP_SRC, Slot.TP_DST,
  ...[0, 1, 2, 3].flatMap((i) => [Slot.IPV6_SRC + i, Slot.IPV6_DST + i, Slot.ND_TARGET + i]),
  Slot.ARP_SHA, Slot.ARP_SHA + 1, Slot.ARP_THA, Slot.ARP_THA + 1,
];

/** Transport headers whose ports a masked set rewrites. */
const L4_HEADERS: Record<number, DpSetHeader> = {
  [IpProto.TCP]: 'tcp',
  [IpProto.UDP]: 'udp',
  [IpProto.SCTP]: 'sctp',
};


/** The outer tag's TPID as the packet came in (a flow made from text has none: 0x8100). */
function inputTpid(f: Flow): number {
  return f[Slot.VLAN_TCI] & VLAN_CFI ? f[Slot.VLAN_TPID] || EthType.VLAN : 0;
}

/** A double-tagged flow as one read with vlan-limit 1: typed by the inner TPID, no inner tag, no L3/L4 fields. */
function beyondOneTag(f: Flow): void {
  f[Slot.DL_TYPE] = EthType.VLAN;
  f[Slot.VLAN_TCI1] = 0;
  f.fill(0, Slot.NW_SRC, Slot.ND_TARGET + 4);
}

/** The VLAN tags of a flow, outer first. */
function vlanStack(f: Flow): number[] {
  if (!(f[Slot.VLAN_TCI] & VLAN_CFI)) return [];
  return f[Slot.VLAN_TCI1] & VLAN_CFI ? [f[Slot.VLAN_TCI], f[Slot.VLAN_TCI1]] : [f[Slot.VLAN_TCI]];
}

/** Datapath key fields and where they live in a Flow. */
const DP_FIELDS: readonly [keyof DpFlowKey, number, number][] = [
  ['eth_dst', Slot.DL_DST, 2],
  ['eth_src', Slot.DL_SRC, 2],
  ['eth_type', Slot.DL_TYPE, 1],
  ['vlan_tci', Slot.VLAN_TCI, 1],
  ['cvlan_tci', Slot.VLAN_TCI1, 1],
  ['nw_proto', Slot.NW_PROTO, 1],
  ['nw_tos', Slot.NW_TOS, 1],
  ['nw_ttl', Slot.NW_TTL, 1],
  ['nw_frag', Slot.NW_FRAG, 1],
  ['tp_src', Slot.TP_SRC, 1],
  ['tp_dst', Slot.TP_DST, 1],
  ['tcp_flags', Slot.TCP_FLAGS, 1],
  ['nw_src', Slot.NW_SRC, 1],
  ['nw_dst', Slot.NW_DST, 1],
  ['ipv6_src', Slot.IPV6_SRC, 4],
  ['ipv6_dst', Slot.IPV6_DST, 4],
  ['nd_target', Slot.ND_TARGET, 4],
  ['ipv6_label', Slot.IPV6_LABEL, 1],
  ['arp_sha', Slot.ARP_SHA, 2],
  ['arp_tha', Slot.ARP_THA, 2],
  // The datapath holds the tunnel ID's low word (VXLAN and Geneve carry 24 bits).
  ['tun_id', Slot.TUN_ID + 1, 1],
  ['tun_src', Slot.TUN_SRC, 1],
  ['tun_dst', Slot.TUN_DST, 1],
];

/** One-word fields as numbers, MACs (2 words) as 48-bit numbers, 128-bit fields as bigints. */
function wordsValue(w: Flow, slot: number, words: number): number | bigint {
  if (words === 1) return w[slot];
  if (words === 2) return macAt(w, slot);
  let v = 0n;
  for (let i = 0; i < words; i++) v = (v << 32n) | BigInt(w[slot + i]);
  return v;
}

function maskNum(v: number, m: number, words: number): number {
  if (words === 1) return (v & m) >>> 0;
  const hi = Math.floor(v / 0x100000000) & Math.floor(m / 0x100000000);
  const lo = (v >>> 0) & (m >>> 0);
  return hi * 0x100000000 + (lo >>> 0);
}

function isMulticast(mac: number): boolean {
  return Math.floor(mac / 0x10000000000) % 2 === 1;
}
