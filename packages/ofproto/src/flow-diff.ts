// Comparing two rule sets, as `ovs-ofctl diff-flows` and `replace-flows` do.
// A rule is identified by (table, match, priority); two versions of one
// rule differ when their cookie, timeouts, importance or actions differ.
// `replace-flows` turns the differences into the fewest flow-mods (delete
// the rules that went away, add the new and changed ones), so rules that did
// not change keep their counters.

import type { Action } from './actions.ts';
import { FLOW_WORDS } from './fields.ts';
import type { FlowMod } from './flow-mod.ts';

export interface RuleDiff {
  readonly kind: 'removed' | 'added' | 'changed';
  /** The version in the first set (removed, changed). */
  readonly old: FlowMod | null;
  /** The version in the second set (added, changed). */
  readonly new: FlowMod | null;
}

/**
 * Differences from rule set `a` to rule set `b` (add flow-mods), ordered by
 * table, then priority (highest first). Within one set a later rule with the
 * same identity replaces an earlier one, as adding them in order would.
 */
export function diffRuleSets(a: readonly FlowMod[], b: readonly FlowMod[]): RuleDiff[] {
  const am = byIdentity(a);
  const bm = byIdentity(b);
  const out: RuleDiff[] = [];
  for (const [k, oldFm] of am) {
    const newFm = bm.get(k);
    if (!newFm) out.push({ kind: 'removed', old: oldFm, new: null });
    else if (versionKey(oldFm) !== versionKey(newFm)) out.push({ kind: 'changed', old: oldFm, new: newFm });
  }
  for (const [k, newFm] of bm) if (!am.has(k)) out.push({ kind: 'added', old: null, new: newFm });
  const fmOf = (d: RuleDiff) => (d.old ?? d.new)!;
  return out.sort((x, y) => {
    const p = fmOf(x);
    const q = fmOf(y);
    return (p.table ?? 0) - (q.table ?? 0) || q.match.priority - p.match.priority || identity(p).localeCompare(identity(q));
  });
}

/**
 * The differences in `ovs-ofctl diff-flows` format: `-` lines for the first
 * set's version, `+` lines for the second's. `format` prints one rule the way
 * diff-flows does (see `formatDiffRule`).
 */
export function formatRuleDiffs(diffs: readonly RuleDiff[], format: (fm: FlowMod) => string): string[] {
  const lines: string[] = [];
  for (const d of diffs) {
    if (d.old) lines.push(`-${format(d.old)}`);
    if (d.new) lines.push(`+${format(d.new)}`);
  }
  return lines;
}

/**
 * One rule as diff-flows prints it, given the match (with priority) and
 * action texts: `table=1 priority=7,in_port=1 cookie=0x3 idle_timeout=3 actions=output:2`.
 */
export function formatDiffRule(fm: FlowMod, matchText: string, actionsText: string): string {
  const parts: string[] = [];
  if (fm.table) parts.push(`table=${fm.table}`);
  parts.push(matchText);
  if (fm.cookie) parts.push(`cookie=0x${fm.cookie.toString(16)}`);
  if (fm.idleTimeout) parts.push(`idle_timeout=${fm.idleTimeout}`);
  if (fm.hardTimeout) parts.push(`hard_timeout=${fm.hardTimeout}`);
  if (fm.importance) parts.push(`importance=${fm.importance}`);
  parts.push(`actions=${actionsText}`);
  return parts.join(' ');
}

function byIdentity(set: readonly FlowMod[]): Map<string, FlowMod> {
  const m = new Map<string, FlowMod>();
  for (const fm of set) m.set(identity(fm), fm);
  return m;
}

function identity(fm: FlowMod): string {
  const parts: (number | string)[] = [fm.table ?? 0, fm.match.priority];
  for (let i = 0; i < FLOW_WORDS; i++) parts.push(fm.match.mask[i], fm.match.value[i]);
  return parts.join(',');
}

function versionKey(fm: FlowMod): string {
  return `${fm.cookie}|${fm.idleTimeout}|${fm.hardTimeout}|${fm.importance}|${actionsText(fm.actions)}`;
}

/** A comparable text of an action list (fields by name, bigints and bytes as text). */
export function actionsText(actions: readonly Action[]): string {
  return JSON.stringify(actions, (_k, v: unknown) => {
    if (typeof v === 'bigint') return `${v}n`;
    if (v instanceof Uint8Array) return [...v];
    if (v && typeof v === 'object' && 'slot' in v && 'aliases' in v) return (v as unknown as { name: string }).name;
    return v;
  });
}
