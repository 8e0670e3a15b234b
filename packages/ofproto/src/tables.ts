// The OpenFlow tables of one bridge (0–254) and their flow-mod semantics:
// add (an identical match and priority replaces the old rule, counters and
// duration reset), modify and modify-strict (actions replaced, counters kept
// unless reset_counts), delete and delete-strict (with cookie/cookie_mask and
// out_port filters), idle and hard timeouts against an injected clock, and
// packet/byte counters credited from datapath stats. A batch of flow-mods is
// applied all or nothing: each mod is validated, then applied with an undo
// log that is replayed backwards if a later mod fails. Every change records
// the invalidation tag `table:<id>` of the table it touched. A modify without
// a cookie mask sets the cookie and adds the rule when it selects nothing,
// as OVS does for ovs-ofctl mod-flows.

import type { Action, ConjunctionAction } from './actions.ts';
import { Classifier } from './classifier.ts';
import { actionsText } from './flow-diff.ts';
import { FLOW_WORDS, OFPP } from './fields.ts';
import type { FlowMod, FlowModFlags } from './flow-mod.ts';
import type { Match } from './match.ts';
import { BadFlowModError, BadTableError, FlowModBatchError, OfprotoError, UnsupportedError } from './errors.ts';

/** Number of OpenFlow tables (0–254). */
export const N_TABLES = 255;
/** `table=255` in delete/modify/dump means every table. */
export const TABLE_ALL = 255;

const TABLE_TAGS = Array.from({ length: N_TABLES }, (_, i) => `table:${i}`);

/** An installed rule. Counters and times are mutable; the match is not. */
export interface Rule {
  /** Unique within the bridge, never reused. */
  readonly id: number;
  readonly table: number;
  readonly match: Match;
  cookie: bigint;
  actions: readonly Action[];
  /** Non-null for a conjunctive clause rule. */
  conjunctions: readonly ConjunctionAction[] | null;
  idleTimeout: number;
  hardTimeout: number;
  importance: number;
  flags: FlowModFlags;
  /** Clock times (ms). */
  createdAt: number;
  modifiedAt: number;
  usedAt: number;
  packets: number;
  bytes: number;
  /** False once the rule left its table (deleted, replaced, expired). */
  installed: boolean;
}

/** Why a rule left its table. */
export type RemovalReason = 'delete' | 'idle_timeout' | 'hard_timeout' | 'replaced';

/** What a batch of flow-mods changed. */
export interface FlowModOutcome {
  readonly added: Rule[];
  readonly modified: Rule[];
  readonly removed: Rule[];
}

type Undo = () => void;

export class FlowTables {
  private readonly tables: Classifier<Rule>[] = Array.from({ length: N_TABLES }, () => new Classifier<Rule>());
  /** Rules with a timeout, checked by `expire`. */
  private readonly timed = new Set<Rule>();
  private nextId = 1;
  private changed = new Set<string>();

  /** The classifier of one table (for xlate). */
  table(id: number): Classifier<Rule> {
    return this.tables[id];
  }

  /** Total number of rules. */
  get size(): number {
    let n = 0;
    for (const t of this.tables) n += t.size;
    return n;
  }

  /** Returns and clears the invalidation tags changed since the last call. */
  takeChangedTags(): Set<string> {
    const c = this.changed;
    this.changed = new Set();
    return c;
  }

  /**
   * Applies flow-mods in order, all or nothing. Throws `FlowModBatchError`
   * naming the first bad mod; then no table has changed.
   */
  apply(mods: readonly FlowMod[], now: number): FlowModOutcome {
    mods.forEach((fm, i) => {
      try {
        validate(fm);
      } catch (e) {
        throw e instanceof OfprotoError ? new FlowModBatchError(i, e) : e;
      }
    });
    const undo: Undo[] = [];
    const changedBefore = new Set(this.changed);
    const out: FlowModOutcome = { added: [], modified: [], removed: [] };
    try {
      mods.forEach((fm, i) => {
        try {
          this.applyOne(fm, now, undo, out);
        } catch (e) {
          throw e instanceof OfprotoError ? new FlowModBatchError(i, e) : e;
        }
      });
    } catch (e) {
      for (let i = undo.length - 1; i >= 0; i--) undo[i]();
      this.changed = changedBefore;
      throw e;
    }
    return out;
  }

  /**
   * Adds one rule outside a batch (the `learn` action). Re-learning an
   * identical rule only refreshes its idle time, so that repeated upcalls do
   * not churn the table and invalidate every megaflow that consulted it.
   */
  learn(fm: FlowMod, now: number): Rule {
    const old = this.tables[fm.table ?? 0].findExact(fm.match);
    if (
      old &&
      old.cookie === fm.cookie &&
      old.idleTimeout === fm.idleTimeout &&
      old.hardTimeout === fm.hardTimeout &&
      actionsText(old.actions) === actionsText(fm.actions)
    ) {
      if (now > old.usedAt) old.usedAt = now;
      return old;
    }
    const out: FlowModOutcome = { added: [], modified: [], removed: [] };
    this.applyOne(fm, now, [], out);
    return out.added[0] ?? out.modified[0];
  }

  private applyOne(fm: FlowMod, now: number, undo: Undo[], out: FlowModOutcome): void {
    switch (fm.command) {
      case 'add':
        return this.add(fm, now, undo, out);
      case 'modify':
      case 'modify_strict': {
        const rules = this.select(fm, fm.command === 'modify_strict');
        // OpenFlow 1.0 (and OVS for ovs-ofctl mod-flows): a modify that selects nothing and
        // filters on no cookie adds the rule.
        if (rules.length === 0 && fm.cookieMask === 0n) return this.add({ ...fm, table: fm.table === TABLE_ALL ? 0 : fm.table }, now, undo, out);
        for (const r of rules) this.modify(r, fm, now, undo, out);
        return;
      }
      case 'delete':
      case 'delete_strict':
        for (const r of this.select(fm, fm.command === 'delete_strict')) {
          this.remove(r, undo);
          out.removed.push(r);
        }
        return;
    }
  }

  private add(fm: FlowMod, now: number, undo: Undo[], out: FlowModOutcome): void {
    const tid = fm.table ?? 0;
    const cls = this.tables[tid];
    if (fm.flags.checkOverlap) {
      for (const r of cls.rules()) {
        if (r.match.priority === fm.match.priority && overlaps(r.match, fm.match) && !sameMatch(r.match, fm.match)) {
          throw new BadFlowModError(`rule overlaps an existing rule at priority ${fm.match.priority} in table ${tid} (check_overlap)`);
        }
      }
    }
    const rule: Rule = {
      id: this.nextId++,
      table: tid,
      // The rule takes the flow-mod's match as is: flow-mods are immutable values.
      match: fm.match,
      cookie: fm.cookie,
      actions: fm.actions,
      conjunctions: conjunctionsOf(fm.actions),
      idleTimeout: fm.idleTimeout,
      hardTimeout: fm.hardTimeout,
      importance: fm.importance,
      flags: fm.flags,
      createdAt: now,
      modifiedAt: now,
      usedAt: now,
      packets: 0,
      bytes: 0,
      installed: true,
    };
    const old = this.insert(rule);
    if (old) {
      // Replaced in place by the identical new rule.
      this.timed.delete(old);
      old.installed = false;
      out.removed.push(old);
      undo.push(() => {
        this.insert(old);
        this.timed.delete(rule);
        rule.installed = false;
      });
    } else {
      undo.push(() => this.remove(rule, []));
    }
    out.added.push(rule);
  }

  private modify(r: Rule, fm: FlowMod, now: number, undo: Undo[], out: FlowModOutcome): void {
    const saved = { actions: r.actions, conjunctions: r.conjunctions, modifiedAt: r.modifiedAt, packets: r.packets, bytes: r.bytes, cookie: r.cookie };
    const conj = conjunctionsOf(fm.actions);
    // A rule changing between ordinary and conjunctive moves within the classifier.
    const reinsert = (conj === null) !== (r.conjunctions === null);
    if (reinsert) this.tables[r.table].remove(r);
    r.actions = fm.actions;
    r.conjunctions = conj;
    r.modifiedAt = now;
    // Without a cookie mask the flow-mod's cookie is the new cookie (as OVS does for ovs-ofctl mod-flows).
    if (fm.cookieMask === 0n) r.cookie = fm.cookie;
    if (fm.flags.resetCounts) {
      r.packets = 0;
      r.bytes = 0;
    }
    if (reinsert) this.tables[r.table].insert(r);
    this.changed.add(TABLE_TAGS[r.table]);
    undo.push(() => {
      if (reinsert) this.tables[r.table].remove(r);
      Object.assign(r, saved);
      if (reinsert) this.tables[r.table].insert(r);
    });
    out.modified.push(r);
  }

  /** Rules a modify/delete selects: strict = identical match and priority, else every rule at least as specific. */
  private select(fm: FlowMod, strict: boolean): Rule[] {
    const tables = fm.table === null || fm.table === TABLE_ALL ? this.tables.keys() : [fm.table];
    const picked: Rule[] = [];
    for (const t of tables) {
      const cls = this.tables[t];
      const candidates = strict ? [cls.findExact(fm.match)].filter((r): r is Rule => r !== undefined) : cls.rules();
      for (const r of candidates) {
        if (!strict && !subsumes(fm.match, r.match)) continue;
        if (fm.cookieMask !== 0n && (r.cookie & fm.cookieMask) !== (fm.cookie & fm.cookieMask)) continue;
        if (fm.outPort !== null && fm.outPort !== OFPP.NONE && !outputsTo(r.actions, fm.outPort)) continue;
        picked.push(r);
      }
    }
    return picked;
  }

  /** Inserts a rule; returns the identical rule it replaced, if any. */
  private insert(r: Rule): Rule | undefined {
    r.installed = true;
    const old = this.tables[r.table].insert(r);
    if (r.idleTimeout || r.hardTimeout) this.timed.add(r);
    this.changed.add(TABLE_TAGS[r.table]);
    return old;
  }

  private remove(r: Rule, undo: Undo[]): void {
    this.tables[r.table].remove(r);
    this.timed.delete(r);
    r.installed = false;
    this.changed.add(TABLE_TAGS[r.table]);
    undo.push(() => this.insert(r));
  }

  /** Removes rules whose idle or hard timeout has passed at `now`; returns them with the reason. */
  expire(now: number): { rule: Rule; reason: RemovalReason }[] {
    const gone: { rule: Rule; reason: RemovalReason }[] = [];
    for (const r of this.timed) {
      if (r.hardTimeout && now >= r.createdAt + r.hardTimeout * 1000) gone.push({ rule: r, reason: 'hard_timeout' });
      else if (r.idleTimeout && now >= r.usedAt + r.idleTimeout * 1000) gone.push({ rule: r, reason: 'idle_timeout' });
    }
    for (const g of gone) this.remove(g.rule, []);
    return gone;
  }

  /** Credits traffic to rules (from an upcall or from megaflow stats); `usedAt` in clock ms. */
  credit(rules: Iterable<Rule>, packets: number, bytes: number, usedAt: number): void {
    for (const r of rules) {
      if (!r.installed) continue;
      if (!r.flags.noPacketCounts) r.packets += packets;
      if (!r.flags.noByteCounts) r.bytes += bytes;
      if (usedAt > r.usedAt) r.usedAt = usedAt;
    }
  }

  /** Rules in dump order: by table, then priority (highest first), then age. */
  dump(filter?: { table?: number | null; match?: Match; cookie?: bigint; cookieMask?: bigint; outPort?: number | null }): Rule[] {
    const tables =
      filter?.table === undefined || filter.table === null || filter.table === TABLE_ALL ? [...this.tables.keys()] : [filter.table];
    const out: Rule[] = [];
    for (const t of tables) {
      const rules = [...this.tables[t].rules()].filter(
        (r) =>
          (!filter?.match || subsumes(filter.match, r.match)) &&
          (!filter?.cookieMask || (r.cookie & filter.cookieMask) === ((filter.cookie ?? 0n) & filter.cookieMask)) &&
          (filter?.outPort === undefined || filter.outPort === null || outputsTo(r.actions, filter.outPort)),
      );
      rules.sort((a, b) => b.match.priority - a.match.priority || a.id - b.id);
      out.push(...rules);
    }
    return out;
  }

  /** Per-table rule counts (for dump-tables). */
  tableSizes(): number[] {
    return this.tables.map((t) => t.size);
  }
}

function validate(fm: FlowMod): void {
  const t = fm.table;
  if (t !== null && (t < 0 || t > TABLE_ALL || !Number.isInteger(t))) throw new BadTableError(t);
  if (fm.command === 'add' && t === TABLE_ALL) throw new BadTableError(t);
  if (fm.match.priority < 0 || fm.match.priority > 0xffff) {
    throw new BadFlowModError(`priority ${fm.match.priority} is out of range 0-65535`);
  }
  if (fm.idleTimeout < 0 || fm.idleTimeout > 0xffff || fm.hardTimeout < 0 || fm.hardTimeout > 0xffff) {
    throw new BadFlowModError('idle_timeout and hard_timeout must be 0-65535 seconds');
  }
  if (fm.command === 'add' || fm.command === 'modify' || fm.command === 'modify_strict') validateActions(fm.actions, fm.table ?? 0);
}

/** Checks what the engine can execute; the parser already checked the syntax. */
export function validateActions(actions: readonly Action[], table: number): void {
  if (actions.some((a) => a.type === 'conjunction') && actions.some((a) => a.type !== 'conjunction' && a.type !== 'note')) {
    throw new BadFlowModError('"conjunction" actions may be used along with "note" but not any other kind of action');
  }
  for (const a of actions) {
    switch (a.type) {
      case 'goto_table':
        if (a.table <= table || a.table >= N_TABLES) {
          throw new BadFlowModError(`goto_table:${a.table} must name a later table than ${table} (at most 254)`);
        }
        break;
      case 'resubmit':
        if (a.table !== null && (a.table < 0 || a.table >= N_TABLES)) throw new BadTableError(a.table);
        break;
      case 'learn':
        if (a.table < 0 || a.table >= N_TABLES) throw new BadTableError(a.table);
        break;
      case 'conjunction':
        if (a.nClauses < 1 || a.nClauses > 32 || a.clause < 1 || a.clause > a.nClauses) {
          throw new BadFlowModError(`conjunction(${a.id},${a.clause}/${a.nClauses}): need 1 <= k <= n <= 32`);
        }
        break;
      case 'output':
        if (a.port === OFPP.TABLE) throw new UnsupportedError('output:TABLE in a flow (only packet-out may use it)');
        break;
      default:
        break;
    }
  }
}

function conjunctionsOf(actions: readonly Action[]): readonly ConjunctionAction[] | null {
  // Most rules have none: check before allocating (bulk loads call this per rule).
  if (!actions.some((a) => a.type === 'conjunction')) return null;
  return actions.filter((a): a is ConjunctionAction => a.type === 'conjunction');
}

/** True when every packet matching `narrow` also matches `wide` (OpenFlow's non-strict selection). */
export function subsumes(wide: Match, narrow: Match): boolean {
  for (let i = 0; i < FLOW_WORDS; i++) {
    const m = wide.mask[i];
    if ((narrow.mask[i] & m) >>> 0 !== m) return false;
    if ((narrow.value[i] & m) >>> 0 !== wide.value[i]) return false;
  }
  return true;
}

/** True when some packet matches both. */
export function overlaps(a: Match, b: Match): boolean {
  for (let i = 0; i < FLOW_WORDS; i++) {
    if (((a.value[i] ^ b.value[i]) & a.mask[i] & b.mask[i]) !== 0) return false;
  }
  return true;
}

function sameMatch(a: Match, b: Match): boolean {
  for (let i = 0; i < FLOW_WORDS; i++) if (a.value[i] !== b.value[i] || a.mask[i] !== b.mask[i]) return false;
  return true;
}

/** True when the actions can send to `port` (out_port filter of delete and dump). */
export function outputsTo(actions: readonly Action[], port: number): boolean {
  return actions.some(
    (a) => (a.type === 'output' && a.port === port) || (a.type === 'controller' && port === OFPP.CONTROLLER),
  );
}

