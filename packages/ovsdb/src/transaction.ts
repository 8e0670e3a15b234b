// Executes one RFC 7047 `transact` request against a Database: the ten
// operations (section 5.2) on a private overlay of touched rows, then the
// commit checks — strong references, garbage collection of unreferenced
// non-root rows, removal of dangling weak references, cardinality, maxRows
// and index uniqueness — and, if all pass, the list of row changes to apply.
// Nothing is applied here: the caller (the server) applies the Commit,
// stores it and notifies monitors, so a failed transaction leaves no trace.
import { columnValue, forEachRefChange, indexKey, indexUnchanged, newUuid, refsOf, type Commit, type Database, type Row, type RowChange, type TableInfo } from './database.ts';
import { checkDatum, compareDatums, datumEquals, datumToJson, datumToString, defaultDatum, isUuid, parseDatum, type Datum, type DeltaLog } from './datum.ts';
import {
  AbortedError,
  ConstraintViolationError,
  DuplicateUuidError,
  DuplicateUuidNameError,
  NotAllowedError,
  NotOwnerError,
  NotSupportedError,
  OvsdbError,
  OvsdbSyntaxError,
  ReferentialIntegrityError,
  TimedOutError,
} from './errors.ts';
import { toErrorJson } from '@nvs/jsonrpc';
import { lookupColumn, matchesAll, parseWhere, relaxed, uuidLookup, type Condition } from './condition.ts';
import { applyMutation, parseMutation } from './mutation.ts';
import type { TableSchema } from './schema.ts';

/** What a transaction may ask of the session that sent it. */
export interface TxnContext {
  /** Whether the session owns the named lock (for `assert`). */
  hasLock(name: string): boolean;
  /** Current time in ms. */
  now: number;
  /** When the transaction was first tried: `wait` timeouts count from here. */
  started: number;
  /** Refuse any change (the `_Server` database). */
  readOnly?: boolean;
  /** The session is read-only: operations that may change the database are refused ("not allowed"). */
  readOnlySession?: boolean;
}

/** Operations that never change the database (allowed on a read-only session), as ovsdb-server lists them. */
const READ_ONLY_OPS = new Set(['select', 'wait', 'abort', 'comment', 'assert']);

/** The outcome of executing a transaction. */
export type TxnOutcome =
  /** Finished: `results` is the reply; `commit` is set when rows changed. */
  | { kind: 'done'; results: unknown[]; commit?: Commit; durable: boolean; log?: DeltaLog }
  /** A `wait` is not yet satisfied: retry after the next commit or at `deadline` (ms; Infinity for none). */
  | { kind: 'blocked'; deadline: number };

class Blocked {
  constructor(readonly deadline: number) {}
}

interface SymbolEntry {
  uuid: string;
  created: boolean;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The JSON of a row for `select` and monitors: the listed columns (all, with `_uuid`/`_version`, by default). */
export function rowToJson(row: Row, table: TableSchema, columns?: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (columns) {
    for (const c of columns) out[c] = datumToJson(columnValue(row, c), table.columns.get(c)!.type);
    return out;
  }
  out._uuid = ['uuid', row.uuid];
  out._version = ['uuid', row.version];
  for (const c of table.userColumns) out[c.name] = datumToJson(row.values.get(c.name)!, c.type);
  return out;
}

/** Executes `ops` (the transact params after the database name). Never throws for bad input: errors go in the results. */
export function executeTransaction(db: Database, ops: readonly unknown[], ctx: TxnContext): TxnOutcome {
  const txn = new Transaction(db, ctx);
  const results: unknown[] = new Array(ops.length).fill(null);
  for (let i = 0; i < ops.length; i++) {
    try {
      results[i] = txn.execute(ops[i], i, ops.length);
      // As ovsdb-server: the operation runs first (its own errors win), then a read-only session is refused it.
      const op = (ops[i] as { op: string }).op;
      if (ctx.readOnlySession && !READ_ONLY_OPS.has(op)) throw new NotAllowedError(op);
    } catch (err) {
      if (err instanceof Blocked) return { kind: 'blocked', deadline: err.deadline };
      if (!(err instanceof OvsdbError)) throw err;
      results[i] = toErrorJson(err);
      return { kind: 'done', results, durable: false };
    }
  }
  let changes: RowChange[];
  try {
    changes = txn.finish();
  } catch (err) {
    if (!(err instanceof OvsdbError)) throw err;
    results.push(toErrorJson(err));
    return { kind: 'done', results, durable: false };
  }
  if (changes.length === 0) return { kind: 'done', results, durable: txn.durable };
  const commit: Commit = { id: newUuid(), changes, comment: txn.comments.length ? txn.comments.join('\n') : undefined, durable: txn.durable, date: ctx.now };
  return { kind: 'done', results, commit, durable: txn.durable, log: txn.log };
}

class Transaction {
  readonly comments: string[] = [];
  /** How mutated sets derive from their old values, for O(changes) commit work. */
  readonly log: DeltaLog = new Map();
  durable = false;
  private readonly db: Database;
  private readonly ctx: TxnContext;
  /** table → uuid → the row's state after this transaction (null: deleted). */
  private readonly overlay = new Map<string, Map<string, Row | null>>();
  private readonly symbols = new Map<string, SymbolEntry>();
  private readonly resolve = (name: string): string => {
    let s = this.symbols.get(name);
    if (!s) {
      // Forward references are allowed: the insert that names it may come later.
      s = { uuid: newUuid(), created: false };
      this.symbols.set(name, s);
    }
    return s.uuid;
  };

  constructor(db: Database, ctx: TxnContext) {
    this.db = db;
    this.ctx = ctx;
  }

  private tableOf(json: Record<string, unknown>, i: number, n: number): TableSchema {
    const name = json.table;
    const t = typeof name === 'string' ? this.db.schema.tables.get(name) : undefined;
    if (!t) throw new OvsdbSyntaxError(`Parsing ovsdb operation ${i + 1} of ${n} failed: No table named ${String(name)}.`);
    return t;
  }

  private info(t: TableSchema): TableInfo {
    return this.db.info.get(t.name)!;
  }

  /** A row's state as this transaction sees it. */
  private get(table: string, uuid: string): Row | undefined {
    const o = this.overlay.get(table);
    if (o && o.has(uuid)) return o.get(uuid) ?? undefined;
    return this.db.table(table)!.get(uuid);
  }

  private put(table: string, uuid: string, row: Row | null): void {
    let o = this.overlay.get(table);
    if (!o) this.overlay.set(table, (o = new Map()));
    o.set(uuid, row);
  }

  /** Rows of `t` matching every condition, in this transaction's view. */
  private scan(t: TableSchema, where: readonly Condition[]): Row[] {
    const out: Row[] = [];
    const pinned = uuidLookup(where);
    if (pinned !== undefined) {
      const r = this.get(t.name, pinned);
      if (r && matchesAll(r, where)) out.push(r);
      return out;
    }
    const o = this.overlay.get(t.name);
    for (const [u, r] of this.db.table(t.name)!) {
      if (o && o.has(u)) continue;
      if (matchesAll(r, where)) out.push(r);
    }
    if (o) for (const r of o.values()) if (r && matchesAll(r, where)) out.push(r);
    return out;
  }

  /** The values of a row; `update` is the update operation when it is one (immutable columns are refused, quoting it as ovsdb-server does). */
  private parseRow(t: TableSchema, json: unknown, update?: unknown): Map<string, Datum> {
    const forUpdate = update !== undefined;
    if (!isObject(json)) throw new OvsdbSyntaxError('"row" must be a JSON object');
    const values = new Map<string, Datum>();
    // Every value is parsed before any column is refused as immutable, as in ovsdb-server.
    for (const [name, value] of Object.entries(json)) values.set(name, parseDatum(value, lookupColumn(t, name).type, this.resolve, true));
    for (const name of values.keys()) {
      if (name.startsWith('_') || (forUpdate && !lookupColumn(t, name).mutable)) {
        throw new ConstraintViolationError(`Cannot ${forUpdate ? 'update' : 'set'} immutable column ${name} in table ${t.name}.`, update);
      }
    }
    return values;
  }

  execute(json: unknown, i: number, n: number): unknown {
    if (!isObject(json)) throw new OvsdbSyntaxError(`Parsing ovsdb operation ${i + 1} of ${n} failed: operation is not a JSON object.`);
    switch (json.op) {
      case 'insert':
        return this.insert(json, i, n);
      case 'select':
        return this.select(json, i, n);
      case 'update':
        return this.update(json, i, n);
      case 'mutate':
        return this.mutate(json, i, n);
      case 'delete':
        return this.delete(json, i, n);
      case 'wait':
        return this.wait(json, i, n);
      case 'commit':
        if (typeof json.durable !== 'boolean') throw new OvsdbSyntaxError('"commit" needs a boolean "durable"');
        this.durable ||= json.durable;
        return {};
      case 'abort':
        throw new AbortedError();
      case 'comment':
        if (typeof json.comment !== 'string') throw new OvsdbSyntaxError('"comment" needs a string "comment"');
        this.comments.push(json.comment);
        return {};
      case 'assert':
        if (typeof json.lock !== 'string') throw new OvsdbSyntaxError('"assert" needs a string "lock"');
        if (!this.ctx.hasLock(json.lock)) throw new NotOwnerError(json.lock);
        return {};
      default:
        throw new OvsdbSyntaxError(`Parsing ovsdb operation ${i + 1} of ${n} failed: No operation ${JSON.stringify(json.op)}`);
    }
  }

  private insert(json: Record<string, unknown>, i: number, n: number): unknown {
    const t = this.tableOf(json, i, n);
    let uuid: string;
    if (json.uuid !== undefined) {
      if (!isUuid(json.uuid)) throw new OvsdbSyntaxError(`"uuid" ${JSON.stringify(json.uuid)} is not a UUID`);
      uuid = json.uuid.toLowerCase();
    } else {
      uuid = newUuid();
    }
    // Random uuids cannot collide; only a caller-chosen one needs the check. nvs keeps
    // uuids unique across tables (reference counts are by uuid), ovsdb-server within one.
    if (json.uuid !== undefined) for (const table of this.db.tables.values()) if (table.has(uuid)) throw new DuplicateUuidError(uuid);
    if (json.uuid !== undefined) for (const o of this.overlay.values()) if (o.has(uuid)) throw new DuplicateUuidError(uuid);
    const name = json['uuid-name'];
    if (name !== undefined) {
      if (typeof name !== 'string') throw new OvsdbSyntaxError('"uuid-name" must be a string');
      const s = this.symbols.get(name);
      if (s?.created) throw new DuplicateUuidNameError(name);
      // Referenced before this insert: the row takes the uuid the name stood for, unless the
      // insert chooses one (then, as in ovsdb-server, only later references mean this row).
      if (s && json.uuid === undefined) uuid = s.uuid;
      this.symbols.set(name, { uuid, created: true });
    }
    const given = this.parseRow(t, json.row ?? {});
    const info = this.info(t);
    const values = info.defaults.with(given);
    // A default value must meet the column's constraints too (an integer column with minInteger 1 has default 0).
    for (const c of info.badDefaults) if (!given.has(c.name)) checkDatum(values.get(c.name)!, c.type);
    this.put(t.name, uuid, { uuid, version: newUuid(), values });
    return { uuid: ['uuid', uuid] };
  }

  private select(json: Record<string, unknown>, i: number, n: number): unknown {
    const t = this.tableOf(json, i, n);
    const where = parseWhere(t, json.where, this.resolve);
    const columns = this.columnList(t, json.columns);
    // ovsdb-server takes a "sort" list of columns beyond RFC 7047 (its own tests use it to fix the order of rows).
    const sort = this.columnList(t, json.sort);
    const rows = this.scan(t, where);
    if (sort) rows.sort((a, b) => compareRows(a, b, sort));
    return { rows: rows.map((r) => rowToJson(r, t, columns)) };
  }

  private columnList(t: TableSchema, json: unknown): string[] | undefined {
    if (json === undefined) return undefined;
    if (!Array.isArray(json)) throw new OvsdbSyntaxError('"columns" must be an array of column names');
    return json.map((c) => lookupColumn(t, c).name);
  }

  private update(json: Record<string, unknown>, i: number, n: number): unknown {
    const t = this.tableOf(json, i, n);
    // ovsdb-server's order: the row (and its immutable columns), then the conditions.
    const changes = this.parseRow(t, json.row, json);
    const where = parseWhere(t, json.where, this.resolve);
    const rows = this.scan(t, where);
    for (const r of rows) {
      const changed = [...changes].filter(([c, d]) => !datumEquals(r.values.get(c)!, d));
      if (changed.length > 0) this.put(t.name, r.uuid, { uuid: r.uuid, version: newUuid(), values: r.values.with(changed) });
    }
    return { count: rows.length };
  }

  private mutate(json: Record<string, unknown>, i: number, n: number): unknown {
    const t = this.tableOf(json, i, n);
    // ovsdb-server's order: the mutations, then the conditions.
    if (!Array.isArray(json.mutations)) throw new OvsdbSyntaxError('"mutations" must be an array');
    const mutations = json.mutations.map((m) => parseMutation(t, m, this.resolve));
    const where = parseWhere(t, json.where, this.resolve);
    const rows = this.scan(t, where);
    for (const r of rows) {
      const changed = new Map<string, Datum>();
      for (const m of mutations) {
        const d = applyMutation(changed.get(m.column.name) ?? r.values.get(m.column.name)!, m, this.log);
        checkDatum(d, m.column.type, 'mutation');
        changed.set(m.column.name, d);
      }
      this.put(t.name, r.uuid, { uuid: r.uuid, version: newUuid(), values: r.values.with(changed) });
    }
    return { count: rows.length };
  }

  private delete(json: Record<string, unknown>, i: number, n: number): unknown {
    const t = this.tableOf(json, i, n);
    const where = parseWhere(t, json.where, this.resolve);
    const rows = this.scan(t, where);
    for (const r of rows) this.put(t.name, r.uuid, null);
    return { count: rows.length };
  }

  private wait(json: Record<string, unknown>, i: number, n: number): unknown {
    const t = this.tableOf(json, i, n);
    const where = parseWhere(t, json.where, this.resolve);
    const columns = this.columnList(t, json.columns) ?? [...t.columns.keys()];
    const until = json.until;
    if (until !== '==' && until !== '!=') throw new OvsdbSyntaxError('"until" must be "==" or "!="');
    if (!Array.isArray(json.rows)) throw new OvsdbSyntaxError('"rows" must be an array of rows');
    const timeout = json.timeout;
    if (timeout !== undefined && (typeof timeout !== 'number' || timeout < 0)) throw new OvsdbSyntaxError('"timeout" must be a non-negative number');
    const key = (get: (c: string) => Datum): string => columns.map((c) => JSON.stringify(get(c))).join('|');
    const expected = json.rows.map((rj) => {
      if (!isObject(rj)) throw new OvsdbSyntaxError('each of "rows" must be a JSON object');
      const vals = new Map<string, Datum>();
      for (const [c, v] of Object.entries(rj)) {
        if (!columns.includes(c)) throw new OvsdbSyntaxError(`wait row names column ${c}, which is not in "columns"`);
        vals.set(c, parseDatum(v, relaxed(lookupColumn(t, c).type), this.resolve));
      }
      // A column the row leaves out compares as its default, as in OVS.
      return key((c) => vals.get(c) ?? defaultDatum(t.columns.get(c)!.type));
    });
    const actual = this.scan(t, where).map((r) => key((c) => columnValue(r, c)));
    expected.sort();
    actual.sort();
    const equal = expected.length === actual.length && expected.every((k, j) => k === actual[j]);
    if (equal === (until === '==')) return {};
    const limit = timeout === undefined ? Infinity : this.ctx.started + (timeout as number);
    if (this.ctx.now >= limit) throw new TimedOutError('"where" clause test failed');
    throw new Blocked(limit);
  }

  /** Runs the commit checks and returns the row changes; throws the RFC error that aborts the transaction. */
  finish(): RowChange[] {
    if (this.overlay.size === 0) return [];
    if (this.ctx.readOnly) throw new NotSupportedError(`database ${this.db.name} is read-only`);
    // Net change of inbound strong references per target uuid, and the
    // references this transaction added (to check) or removed (GC candidates).
    const delta = new Map<string, number>();
    const orphanCandidates: Array<[string, string]> = [];
    // forEach rather than for-of over entries: no [key, value] array per row.
    this.overlay.forEach((o, tname) => {
      const info = this.db.info.get(tname)!;
      const base = this.db.table(tname)!;
      o.forEach((r, u) => {
        const old = base.get(u) ?? null;
        if (!info.isRoot && r && !old) orphanCandidates.push([tname, u]);
        forEachRefChange(info, old, r, (ref, target, d) => {
          if (!ref.strong) return;
          delta.set(target, (delta.get(target) ?? 0) + d);
          // A reference this transaction adds must name a row (ovsdb-server's first commit check).
          if (d > 0 && r && !this.get(ref.refTable, target)) {
            throw new ReferentialIntegrityError(`Table ${tname} column ${ref.column.name} row ${u} references nonexistent row ${target} in table ${ref.refTable}.`);
          }
          if (d < 0 && !this.db.info.get(ref.refTable)!.isRoot) orphanCandidates.push([ref.refTable, target]);
        }, this.log);
      });
    });
    const count = (u: string): number => this.db.strongRefCount(u) + (delta.get(u) ?? 0);

    // The checks in ovsdb-server's order, so that a transaction breaking several rules is refused for the same one.
    this.checkDeletedUnreferenced(count);
    this.collectGarbage(count, delta, orphanCandidates);
    this.checkMaxRows();
    this.removeDanglingWeakRefs();

    const changes: RowChange[] = [];
    this.overlay.forEach((o, tname) => {
      const info = this.db.info.get(tname)!;
      const base = this.db.table(tname)!;
      o.forEach((r, u) => {
        const old = base.get(u) ?? null;
        if (!old && !r) return;
        if (old && r && sameValues(old, r)) return;
        changes.push({ table: info.schema, uuid: u, old, new: r });
      });
    });
    this.checkIndexes(changes);
    return changes;
  }

  private checkMaxRows(): void {
    for (const [tname, o] of this.overlay) {
      const info = this.db.info.get(tname)!;
      if (info.schema.maxRows === Infinity) continue;
      const base = this.db.table(tname)!;
      let rows = base.size;
      for (const [u, r] of o) rows += (r ? 1 : 0) - (base.has(u) ? 1 : 0);
      if (rows > info.schema.maxRows) {
        throw new ConstraintViolationError(`transaction causes "${tname}" table to contain ${rows} rows, greater than the schema-defined limit of ${info.schema.maxRows} row(s)`);
      }
    }
  }

  /** A row this transaction deletes must have no strong reference left. */
  private checkDeletedUnreferenced(count: (u: string) => number): void {
    this.overlay.forEach((o, tname) => {
      const base = this.db.table(tname)!;
      o.forEach((r, u) => {
        if (r || !base.has(u)) return;
        const n = count(u);
        if (n > 0) throw new ReferentialIntegrityError(`cannot delete ${tname} row ${u} because of ${n} remaining reference(s)`);
      });
    });
  }

  /** Deletes non-root rows left with no strong reference (inserted unreferenced, or orphaned by this transaction). */
  private collectGarbage(count: (u: string) => number, delta: Map<string, number>, queue: Array<[string, string]>): void {
    while (queue.length > 0) {
      const [tname, u] = queue.pop()!;
      const r = this.get(tname, u);
      if (!r || count(u) > 0) continue;
      const info = this.db.info.get(tname)!;
      this.put(tname, u, null);
      for (const ref of info.refColumns) {
        if (!ref.strong) continue;
        for (const target of refsOf(r, ref)) {
          if (target === u) continue; // a row's reference to itself does not count (as in ovsdb-server)
          delta.set(target, (delta.get(target) ?? 0) - 1);
          if (!this.db.info.get(ref.refTable)!.isRoot) queue.push([ref.refTable, target]);
        }
      }
    }
  }

  private removeDanglingWeakRefs(): void {
    // Most transactions neither delete rows nor write a table with weak references: nothing to do.
    let any = false;
    this.overlay.forEach((o, tname) => {
      if (!any && this.db.info.get(tname)!.hasWeakRefs) any = true;
      if (!any) o.forEach((r) => (any ||= r === null));
    });
    if (!any) return;
    // Rows to examine: rows this transaction wrote, and rows elsewhere that point at rows it deleted.
    const deletedBy = new Map<string, Set<string>>();
    this.overlay.forEach((o, tname) => {
      const base = this.db.table(tname)!;
      o.forEach((r, u) => {
        if (r || !base.has(u)) return;
        let s = deletedBy.get(tname);
        if (!s) deletedBy.set(tname, (s = new Set()));
        s.add(u);
      });
    });
    const examine = new Map<string, Set<string>>();
    const add = (t: string, u: string): void => {
      let s = examine.get(t);
      if (!s) examine.set(t, (s = new Set()));
      s.add(u);
    };
    // Rows this transaction wrote whose weak references it set or changed (an untouched column
    // keeps its committed datum, whose targets all existed before this transaction).
    this.overlay.forEach((o, tname) => {
      const info = this.db.info.get(tname)!;
      if (!info.hasWeakRefs) return;
      const base = this.db.table(tname)!;
      o.forEach((r, u) => {
        if (!r) return;
        const old = base.get(u);
        for (const ref of info.refColumns) {
          if (ref.strong) continue;
          const d = r.values.get(ref.column.name)!;
          if (old ? d !== old.values.get(ref.column.name) : d.keys.length > 0) return add(tname, u);
        }
      });
    });
    if (deletedBy.size === 0 && examine.size === 0) return;
    for (const [target, deleted] of deletedBy) {
      for (const referrer of this.db.referrers.get(target) ?? []) {
        const weak = this.db.info.get(referrer)!.refColumns.filter((r) => !r.strong && r.refTable === target);
        if (weak.length === 0) continue;
        for (const r of this.db.table(referrer)!.values()) {
          if (weak.some((ref) => refsOf(r, ref).some((x) => deleted.has(x)))) add(referrer, r.uuid);
        }
      }
    }
    for (const [tname, uuids] of examine) {
      const info = this.db.info.get(tname)!;
      for (const u of uuids) {
        const r = this.get(tname, u);
        if (!r) continue;
        let values: Map<string, Datum> | undefined;
        for (const ref of info.refColumns) {
          if (ref.strong) continue;
          const d = values?.get(ref.column.name) ?? r.values.get(ref.column.name)!;
          const side = ref.side === 'key' ? d.keys : d.values!;
          const keep: number[] = [];
          for (let k = 0; k < side.length; k++) if (this.get(ref.refTable, side[k] as string)) keep.push(k);
          if (keep.length === side.length) continue;
          const nd: Datum = d.values ? { keys: keep.map((k) => d.keys[k]), values: keep.map((k) => d.values![k]) } : { keys: keep.map((k) => d.keys[k]) };
          if (nd.keys.length < ref.column.type.min) {
            throw weakRefEmptied(ref.column.name, tname, u, side.length - keep.length, !this.db.table(tname)!.has(u), side.some((x) => x === ZERO_UUID));
          }
          values ??= new Map();
          values.set(ref.column.name, nd);
        }
        if (values) this.put(tname, u, { uuid: u, version: newUuid(), values: r.values.with(values) });
      }
    }
  }

  private checkIndexes(changes: readonly RowChange[]): void {
    // Pairs of this transaction's rows are compared directly (a commit changes few rows; no map per commit).
    for (let a = 0; a < changes.length; a++) {
      const ch = changes[a];
      const t = ch.table;
      if (t.indexes.length === 0 || !ch.new) continue;
      for (let i = 0; i < t.indexes.length; i++) {
        const cols = t.indexes[i];
        // A row keeping its key cannot collide with committed rows, and a row of this transaction taking that key meets it as the key's committed holder.
        if (ch.old && indexUnchanged(ch.old, ch.new, cols)) continue;
        const k = indexKey(ch.new, cols);
        let other: Row | undefined;
        for (let b = 0; b < a && !other; b++) {
          const prev = changes[b];
          if (prev.table === t && prev.new && !(prev.old && indexUnchanged(prev.old, prev.new, cols)) && indexKey(prev.new, cols) === k) other = prev.new;
        }
        if (other === undefined) {
          // The committed holder conflicts only if it still has this key after the transaction.
          const h = this.db.indexHolder(t.name, i, k);
          const hr = h !== undefined && h !== ch.uuid ? this.get(t.name, h) : undefined;
          if (hr && indexKey(hr, cols) === k) other = hr;
        }
        if (other !== undefined && other.uuid !== ch.uuid) throw this.duplicateIndexRow(t, cols, other, ch.new, changes);
      }
    }
  }

  /** ovsdb-server's error for two rows with one key in an index, each row described by what this transaction did to it. */
  private duplicateIndexRow(t: TableSchema, cols: readonly string[], x: Row, y: Row, changes: readonly RowChange[]): ConstraintViolationError {
    // ovsdb-server orders the two by comparing all their columns, greater first (in its column
    // hash order; here user columns in schema order, then _uuid), so the message is reproducible.
    const all = [...t.userColumns.map((c) => c.name), '_uuid', '_version'];
    const [a, b] = compareRows(x, y, all) < 0 ? [y, x] : [x, y];
    const shown = (r: Row): string => englishList(cols.map((c) => datumToString(columnValue(r, c), t.columns.get(c)!.type)));
    const describe = (title: string, r: Row): string => {
      const ch = changes.find((c) => c.uuid === r.uuid);
      let what: string;
      if (!ch) what = 'existed in the database before this transaction and was not modified by the transaction.';
      else if (!ch.old) what = 'was inserted by this transaction.';
      else if (indexKey(ch.old, cols) === indexKey(r, cols)) what = "existed in the database before this transaction, which modified some of the row's columns but not any columns in this index.";
      else what = `had the following index values before the transaction: ${shown(ch.old)}.`;
      return `${title} row, with UUID ${r.uuid}, ${what}`;
    };
    return new ConstraintViolationError(
      `Transaction causes multiple rows in "${t.name}" table to have identical values (${shown(a)}) for index on column${cols.length > 1 ? 's' : ''} ${englishList(cols.map((c) => `"${c}"`))}.  ${describe('First', a)}  ${describe('Second', b)}`,
    );
  }
}

/** `a`, `a and b`, `a, b, and c`: how ovsdb-server lists columns and values in its messages. */
function englishList(items: readonly string[]): string {
  if (items.length < 3) return items.join(' and ');
  return `${items.slice(0, -1).join(', ')}, and ${items[items.length - 1]}`;
}

/** Orders rows by the given columns, as ovsdb-server's `sort` and its row comparisons do. */
function compareRows(a: Row, b: Row, columns: readonly string[]): number {
  for (const c of columns) {
    const r = compareDatums(columnValue(a, c), columnValue(b, c));
    if (r !== 0) return r;
  }
  return 0;
}

/** Whether two states of one row hold equal values (both follow the table's column layout, so compare by position). */
function sameValues(a: Row, b: Row): boolean {
  if (a.values === b.values) return true;
  const x = a.values.data;
  const y = b.values.data;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i] && !datumEquals(x[i], y[i])) return false;
  return true;
}

const ZERO_UUID = '00000000-0000-0000-0000-000000000000';

/** The error for a column left with too few elements once its weak references to deleted rows are removed, in ovsdb-server's words. */
function weakRefEmptied(column: string, table: string, uuid: string, removed: number, inserted: boolean, zero: boolean): ConstraintViolationError {
  if (zero && inserted) {
    return new ConstraintViolationError(
      `Weak reference column "${column}" in "${table}" row ${uuid} (inserted within this transaction) contained all-zeros UUID (probably as the default value for this column) but deleting this value caused a constraint volation because this column is not allowed to be empty.`,
    );
  }
  return new ConstraintViolationError(
    `Deletion of ${removed} weak reference(s) to deleted (or never-existing) rows from column "${column}" in "${table}" row ${uuid} ${inserted ? '(inserted within this transaction) ' : ''}caused this column to become empty, but constraints on this column disallow an empty column.`,
  );
}
