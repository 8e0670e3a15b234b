/**
 * A parsed rule-file line or flow-management request: which rules it
 * touches (table, match, cookie) and what it installs (actions, timeouts,
 * flags). The same shape serves add, modify and delete; fields a command
 * does not use keep their defaults.
 */

import type { Action } from './actions.ts';
import type { Match } from './match.ts';

/** ovs-ofctl's flow commands (`add-flow`, `mod-flows`, `mod-flows --strict`, `del-flows`, …). */
export type FlowModCommand = 'add' | 'modify' | 'modify_strict' | 'delete' | 'delete_strict';

/** `send_flow_rem`, `check_overlap`, `reset_counts`, `no_packet_counts`, `no_byte_counts`. */
export interface FlowModFlags {
  readonly sendFlowRem: boolean;
  readonly checkOverlap: boolean;
  readonly resetCounts: boolean;
  readonly noPacketCounts: boolean;
  readonly noByteCounts: boolean;
}

/** No flags set. */
export const NO_FLAGS: FlowModFlags = {
  sendFlowRem: false,
  checkOverlap: false,
  resetCounts: false,
  noPacketCounts: false,
  noByteCounts: false,
};

/** One rule as written (`table=…, priority=…, cookie=…, <match>, actions=…`). */
export interface FlowMod {
  readonly command: FlowModCommand;
  /**
   * `table=N` (0–254); null when not given: `add` then means table 0,
   * modify/delete mean every table.
   */
  readonly table: number | null;
  /** The match, including `priority` (default 32768). */
  readonly match: Match;
  /**
   * For add: the new rule's cookie. For modify/delete with a nonzero
   * `cookieMask`: select rules whose cookie equals `cookie` under the mask.
   */
  readonly cookie: bigint;
  /** 0 unless `cookie=V/M` (only allowed for modify and delete). */
  readonly cookieMask: bigint;
  /** Seconds without traffic before the rule expires; 0 = never. */
  readonly idleTimeout: number;
  /** Seconds after installation before the rule expires; 0 = never. */
  readonly hardTimeout: number;
  /** OpenFlow 1.4 eviction importance; 0 = default. */
  readonly importance: number;
  readonly flags: FlowModFlags;
  /** delete only: `out_port=N` restricts to rules that output to N; null = any. */
  readonly outPort: number | null;
  /** Empty means drop. */
  readonly actions: readonly Action[];
}
