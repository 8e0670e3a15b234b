/**
 * The OpenFlow action model: what a rule does to a packet, independent of
 * how it was written. Parsing turns every spelling into one of these
 * (`strip_vlan` and `pop_vlan` are both `pop_vlan`; `output:NORMAL` and
 * `NORMAL` are both `output` to `OFPP.NORMAL`); the printer chooses the
 * spelling ovs-ofctl would print for a given OpenFlow version.
 *
 * An empty action list means drop (`actions=drop`); there is no drop action.
 * Instructions (`clear_actions`, `write_actions`, `write_metadata`,
 * `goto_table`) are kept in the same list, in the order OpenFlow 1.1+
 * requires (apply-actions, clear_actions, write_actions, write_metadata,
 * goto_table), which the parser enforces.
 */

import type { Field, FieldRange } from './fields.ts';

/**
 * `output:N` and the reserved-port outputs (`NORMAL`, `FLOOD`, `ALL`,
 * `IN_PORT`, `LOCAL`, `TABLE`, `output:N`): `port` is an OpenFlow port
 * number, reserved ports as `OFPP.*`. Output to `OFPP.CONTROLLER` is the
 * separate `controller` action.
 */
export interface OutputAction {
  readonly type: 'output';
  readonly port: number;
}

/** `output:NXM_NX_REG0[0..15]`: output to the port number held in a field range. */
export interface OutputRegAction {
  readonly type: 'output_reg';
  readonly src: FieldRange;
  /** Bytes to send when the port turns out to be the controller. */
  readonly maxLen: number;
}

/** Why a packet was sent to the controller (`controller(reason=…)`). */
export type ControllerReason = 'action' | 'no_match' | 'invalid_ttl' | 'action_set' | 'group' | 'packet_out';

/**
 * `CONTROLLER[:max_len]`, `output:CONTROLLER`, `controller(reason=…,max_len=…,id=…)`:
 * send (a prefix of) the packet to the controller. ovs-ofctl prints
 * `CONTROLLER:N` when reason is 'action' and the id 0, `controller(…)` otherwise.
 */
export interface ControllerAction {
  readonly type: 'controller';
  readonly maxLen: number;
  readonly reason: ControllerReason;
  readonly controllerId: number;
}

/**
 * `mod_vlan_vid:N` (pushIfNeeded: a tag is pushed on an untagged packet)
 * and `set_field:N->vlan_vid` (pushIfNeeded false: only rewrites an
 * existing tag). `vid` is the 12-bit VLAN ID.
 */
export interface SetVlanVidAction {
  readonly type: 'set_vlan_vid';
  readonly vid: number;
  readonly pushIfNeeded: boolean;
}

/** `mod_vlan_pcp:N` / `set_field:N->vlan_pcp`; as for `set_vlan_vid`. */
export interface SetVlanPcpAction {
  readonly type: 'set_vlan_pcp';
  readonly pcp: number;
  readonly pushIfNeeded: boolean;
}

/** `strip_vlan` / `pop_vlan`: remove the outer VLAN tag, if any. */
export interface PopVlanAction {
  readonly type: 'pop_vlan';
}

/** `push_vlan:0x8100`: push a VLAN tag (VID 0, PCP 0) with this TPID. */
export interface PushVlanAction {
  readonly type: 'push_vlan';
  readonly ethertype: number;
}

/**
 * A masked write of a field: `set_field:V[/M]->field`, `load:V->field[range]`
 * (a load is a set_field whose mask covers the range) and the `mod_*` rewrites
 * (`mod_dl_src`, `mod_nw_dst`, `mod_nw_tos` (field `ip_dscp`), `mod_nw_ttl`,
 * `mod_tp_src`, …), and `set_tunnel:V` / `set_tunnel64:V` (field `tun_id`).
 * `value` has no bits outside `mask`. xlate treats all forms alike; `form`
 * only decides how the action is printed and sent.
 */
export interface SetFieldAction {
  readonly type: 'set_field';
  readonly field: Field;
  readonly value: bigint;
  readonly mask: bigint;
  readonly form: 'set_field' | 'load' | 'mod' | 'set_tunnel' | 'set_tunnel64';
}

/** `dec_ttl[(id,…)]`: decrement the IP TTL; at 0, send to these controllers instead. */
export interface DecTtlAction {
  readonly type: 'dec_ttl';
  /**
   * Controller ids to notify on TTL expiry. Empty for plain `dec_ttl`, which
   * means controller 0 (kept apart from `dec_ttl(0)` because they print differently).
   */
  readonly controllerIds: readonly number[];
}

/** `move:src[range]->dst[range]`: copy bits between fields (same width). */
export interface MoveAction {
  readonly type: 'move';
  readonly src: FieldRange;
  readonly dst: FieldRange;
}

/**
 * `resubmit(port,table)` / `resubmit:port`: look the packet up again, with
 * `in_port` replaced by `port` (null: keep it) in `table` (null: this table).
 */
export interface ResubmitAction {
  readonly type: 'resubmit';
  readonly port: number | null;
  readonly table: number | null;
}

/** `goto_table:N` (OpenFlow 1.1+ instruction): continue in a later table. */
export interface GotoTableAction {
  readonly type: 'goto_table';
  readonly table: number;
}

/**
 * `write_metadata:V[/M]` (instruction): metadata = (metadata & ~M) | (V & M).
 * `value` may carry bits outside `mask` (kept as written, as ovs-ofctl does).
 */
export interface WriteMetadataAction {
  readonly type: 'write_metadata';
  readonly value: bigint;
  readonly mask: bigint;
}

/** `note:hh.hh…`: opaque bytes carried with the rule, no effect on packets. */
export interface NoteAction {
  readonly type: 'note';
  readonly data: Uint8Array;
}

/**
 * `conjunction(id,k/n)`: this rule is clause `clause` (1-based, k) of `nClauses`
 * (n) of conjunctive match `id`. Only `note` may accompany it.
 */
export interface ConjunctionAction {
  readonly type: 'conjunction';
  readonly id: number;
  readonly clause: number;
  readonly nClauses: number;
}

/**
 * One `learn` spec. `match`: the learned rule matches `dst` against the
 * value of `src` in the packet (`NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[]`, or bare
 * `NXM_OF_VLAN_TCI[0..11]` meaning src = dst) or against an immediate value.
 * `load`: the learned rule loads `src`/immediate into `dst`. `output`: the
 * learned rule outputs to the port in `src`.
 */
export type LearnSpec =
  | { readonly kind: 'match'; readonly dst: FieldRange; readonly src: FieldRange | { readonly value: bigint } }
  | { readonly kind: 'load'; readonly dst: FieldRange; readonly src: FieldRange | { readonly value: bigint } }
  | { readonly kind: 'output'; readonly src: FieldRange };

/** `learn(table=…,priority=…,idle_timeout=…,hard_timeout=…,cookie=…,…specs)`: add a rule at run time. */
export interface LearnAction {
  readonly type: 'learn';
  readonly table: number;
  readonly priority: number;
  readonly idleTimeout: number;
  readonly hardTimeout: number;
  readonly finIdleTimeout: number;
  readonly finHardTimeout: number;
  readonly cookie: bigint;
  readonly sendFlowRem: boolean;
  readonly deleteLearned: boolean;
  readonly specs: readonly LearnSpec[];
}

/**
 * `output(port=N,max_len=M)`: output to a port, cut to at most `maxLen`
 * bytes (the datapath's `trunc` action). `output(N)` is a plain output.
 */
export interface OutputTruncAction {
  readonly type: 'output_trunc';
  readonly port: number;
  readonly maxLen: number;
}

/** `push:src[range]`: push bits of a field onto the translation's stack. */
export interface StackPushAction {
  readonly type: 'stack_push';
  readonly src: FieldRange;
}

/** `pop:dst[range]`: pop the stack's top into bits of a field. */
export interface StackPopAction {
  readonly type: 'stack_pop';
  readonly dst: FieldRange;
}

/** `exit`: stop translating, in this table and in every resubmit that led here. */
export interface ExitAction {
  readonly type: 'exit';
}

/**
 * `debug_recirc` and `debug_slow`, OVS's testing actions (accepted by a
 * switch started with --enable-dummy): recirculate the packet through the
 * datapath once, or keep the flow in the slow path.
 */
export interface DebugAction {
  readonly type: 'debug_recirc' | 'debug_slow';
}

/** `clear_actions` (OpenFlow 1.1+ instruction): empty the action set. */
export interface ClearActionsAction {
  readonly type: 'clear_actions';
}

/**
 * `write_actions(…)` (OpenFlow 1.1+ instruction): merge these actions into
 * the action set, which runs when the pipeline ends.
 */
export interface WriteActionsAction {
  readonly type: 'write_actions';
  readonly actions: readonly Action[];
}

/** Every action (and instruction) a rule may carry. */
export type Action =
  | OutputAction
  | OutputRegAction
  | ControllerAction
  | SetVlanVidAction
  | SetVlanPcpAction
  | PopVlanAction
  | PushVlanAction
  | SetFieldAction
  | DecTtlAction
  | MoveAction
  | ResubmitAction
  | GotoTableAction
  | WriteMetadataAction
  | NoteAction
  | ConjunctionAction
  | LearnAction
  | OutputTruncAction
  | StackPushAction
  | StackPopAction
  | ExitAction
  | DebugAction
  | ClearActionsAction
  | WriteActionsAction;

/** The `type` tags of `Action`. */
export type ActionType = Action['type'];
