// The IDL: a typed, change-tracked replica of the tables a client monitors,
// plus a transaction builder with optimistic concurrency.
//
// The replica follows the server through one monitor (monitor_cond with
// update2 when the server has it, plain monitor otherwise). Each batch of
// updates becomes one `change` event listing, per table, the rows inserted,
// modified (with their old version and the changed columns) and deleted.
// Rows are immutable snapshots: a modification replaces the row object, so a
// caller holding an old row still sees the old values.
//
// A transaction sees the replica with its own pending changes applied. At
// commit it sends one insert/update/delete per touched row, and a `wait` for
// every column the caller verified, so the commit fails with `timed out`
// when someone else changed what the caller based its decision on. The
// `transact` helper reruns the caller's builder on that failure, once the
// replica has caught up — the "try again" loop of OVS's IDL. Only replicated
// columns can be verified (NotReplicatedError otherwise); a builder that
// awaits sees later updates in its view, but verify pins what it read.
//
// The IDL does not reconnect: on `close`, connect again and create a new one
// (its first `change` lists every row as inserted).
//
// Example (what nvs-vswitchd does):
//
//   const client = await OvsdbClient.connect('unix:/run/nvs/db.sock');
//   const idl = await Idl.create(client, 'Open_vSwitch', {
//     Open_vSwitch: ['bridges', 'next_cfg', 'cur_cfg'],
//     Bridge: ['name', 'ports'],
//     Port: ['name', 'interfaces', 'tag'],
//     Interface: ['name', 'type', 'options', 'ofport', 'error'],
//   });
//   idl.on('change', (changes: IdlChanges) => {
//     for (const row of changes.get('Interface')?.inserted ?? []) log.info({ name: row.string('name') }, 'new interface');
//   });
//   // Report ofport and cur_cfg; rerun if the rows changed under us.
//   await idl.transact((txn) => {
//     const ovs = txn.first('Open_vSwitch');
//     if (!ovs) return;
//     for (const iface of txn.rows('Interface')) txn.set(iface, 'ofport', makeAtom(1));
//     txn.verify(ovs, 'next_cfg');
//     txn.set(ovs, 'cur_cfg', ovs.get('next_cfg'));
//   });
import { EventEmitter } from 'node:events';
import { JsonRpcError } from '@nvs/jsonrpc';
import { OvsdbError } from './errors.ts';
import type { OvsdbClient, MonitorRequest, Operation, OperationResult, TableUpdates } from './client.ts';
import { TransactionError } from './client.ts';
import { rootTables, type Atom, type ColumnType, type DatabaseSchema, type TableSchema } from './schema.ts';
import { datumEquals, datumToJson, defaultDatum, makeMap, makeSet, parseDatum, type Datum } from './datum.ts';

/** One row of the replica (or of a transaction's view): an immutable snapshot. */
export class IdlRow {
  readonly table: string;
  readonly uuid: string;
  private readonly columns: ReadonlyMap<string, Datum>;
  private readonly schema: TableSchema;

  constructor(schema: TableSchema, uuid: string, columns: ReadonlyMap<string, Datum>) {
    this.schema = schema;
    this.table = schema.name;
    this.uuid = uuid;
    this.columns = columns;
  }

  /** The column's value; its default when the column is not replicated or unset. */
  get(column: string): Datum {
    const d = this.columns.get(column);
    if (d) return d;
    if (column === '_uuid') return { keys: [this.uuid] };
    const col = this.schema.columns.get(column);
    if (!col) throw new UnknownColumnError(this.table, column);
    return defaultDatum(col.type);
  }

  /** The column's only atom as a string (a string or uuid column), or undefined when empty. */
  string(column: string): string | undefined {
    const a = this.get(column).keys[0];
    return a === undefined ? undefined : String(a);
  }

  /** The column's only atom as a number (an integer or real column), or undefined when empty. */
  number(column: string): number | undefined {
    const a = this.get(column).keys[0];
    return typeof a === 'number' ? a : undefined;
  }

  /** The column's only atom as a boolean, or undefined when empty. */
  boolean(column: string): boolean | undefined {
    const a = this.get(column).keys[0];
    return typeof a === 'boolean' ? a : undefined;
  }

  /** A set column's atoms (for a reference set, the uuids). */
  set(column: string): readonly Atom[] {
    return this.get(column).keys;
  }

  /** A map column as a Map. */
  map(column: string): Map<Atom, Atom> {
    const d = this.get(column);
    const m = new Map<Atom, Atom>();
    d.keys.forEach((k, i) => m.set(k, d.values![i]));
    return m;
  }

  /** A copy with some columns replaced. */
  with(changes: ReadonlyMap<string, Datum>): IdlRow {
    const columns = new Map(this.columns);
    for (const [c, d] of changes) columns.set(c, d);
    return new IdlRow(this.schema, this.uuid, columns);
  }
}

/** The changes one batch of updates made to one table. */
export interface TableChanges {
  inserted: IdlRow[];
  modified: Array<{ row: IdlRow; old: IdlRow; columns: string[] }>;
  deleted: IdlRow[];
}

/** Changes per table name, for the tables that changed. */
export type IdlChanges = Map<string, TableChanges>;

export interface IdlOptions {
  /** The database's schema, when the caller has it already. */
  schema?: DatabaseSchema;
  /** `monitor_cond` (update2, the default; falls back to `monitor` when the server lacks it) or plain RFC 7047 `monitor`. */
  method?: 'monitor_cond' | 'monitor';
}

/** Which tables (and which of their columns, or 'all') to replicate. */
export type IdlTables = Record<string, readonly string[] | 'all'>;

/** Thrown when a table or column is not in the schema (or not replicated). */
export class UnknownTableError extends OvsdbError {
  constructor(table: string) {
    super('OVSDB_UNKNOWN_TABLE', 'unknown table', `unknown table "${table}"`);
  }
}

/** Thrown when a column is not in its table's schema. */
export class UnknownColumnError extends OvsdbError {
  constructor(table: string, column: string) {
    super('OVSDB_UNKNOWN_COLUMN', 'unknown column', `table ${table} has no column "${column}"`);
  }
}

/** Thrown when verifying a column the IDL does not replicate (a caller bug: add it to the IDL's tables). */
export class NotReplicatedError extends OvsdbError {
  constructor(table: string, column: string) {
    super('OVSDB_NOT_REPLICATED', 'unknown column', `column ${column} of table ${table} is not replicated, so it cannot be verified`);
  }
}

/** Thrown when a transaction touches a row that no longer exists. */
export class NoSuchRowError extends OvsdbError {
  constructor(table: string, uuid: string) {
    super('OVSDB_NO_SUCH_ROW', 'referential integrity violation', `no row ${uuid} in table ${table}`);
  }
}

/** Thrown when `transact` gives up after its retry budget. */
export class TooManyRetriesError extends OvsdbError {
  constructor(attempts: number) {
    super('OVSDB_TOO_MANY_RETRIES', 'timed out', `transaction still conflicting after ${attempts} attempts`);
  }
}

/**
 * Thrown by a `transact` builder to say "not yet": the builder runs again
 * once the replica changes (ovs-vsctl's wait-until uses this).
 */
export class TryAgain extends Error {
  constructor() {
    super('try again when the database changes');
    this.name = 'TryAgain';
  }
}

/** What a commit did. */
export interface CommitResult {
  /** `unchanged` when there was nothing to write (nothing was sent). */
  status: 'success' | 'unchanged';
  /** The real uuid of each row inserted, keyed by the uuid the transaction gave it. */
  inserted: Map<string, string>;
  /** The new value of the incremented column, when `increment` was used. */
  incremented?: number;
}

const MONITOR_ID = 'idl';

/** The replica. Events: `change` (IdlChanges) after each applied batch; `close` (err?). */
export class Idl extends EventEmitter {
  readonly client: OvsdbClient;
  readonly db: string;
  readonly schema: DatabaseSchema;
  private readonly tables = new Map<string, Map<string, IdlRow>>();
  /** Replicated columns per table. */
  private readonly replicated = new Map<string, ReadonlySet<string>>();
  private readonly roots: ReadonlySet<string>;
  private updateFormat: 1 | 2 = 2;
  private seq = 0;

  private constructor(client: OvsdbClient, db: string, schema: DatabaseSchema, tables: IdlTables) {
    super();
    this.client = client;
    this.db = db;
    this.schema = schema;
    this.roots = rootTables(schema);
    for (const name of Object.keys(tables)) {
      const ts = schema.tables.get(name);
      if (!ts) throw new UnknownTableError(name);
      const cols = tables[name];
      if (cols !== 'all') for (const c of cols) if (!ts.columns.has(c)) throw new UnknownColumnError(name, c);
      this.tables.set(name, new Map());
      this.replicated.set(name, new Set(cols === 'all' ? ts.columns.keys() : ['_uuid', ...cols]));
    }
    client.on('close', (err?: Error) => this.emit('close', err));
  }

  /**
   * Starts replicating `tables` of `db`; resolves once the initial contents
   * are in. Pass `opts.schema` when already fetched, to save a round trip.
   */
  static async create(client: OvsdbClient, db: string, tables: IdlTables, opts: IdlOptions = {}): Promise<Idl> {
    const idl = new Idl(client, db, opts.schema ?? (await client.getSchema(db)), tables);
    await idl.startMonitor(tables, opts.method ?? 'monitor_cond');
    return idl;
  }

  private async startMonitor(tables: IdlTables, method: 'monitor_cond' | 'monitor'): Promise<void> {
    const requests: Record<string, MonitorRequest> = {};
    for (const [name, cols] of Object.entries(tables)) {
      const ts = this.schema.tables.get(name)!;
      requests[name] = { columns: cols === 'all' ? ts.userColumns.map((c) => c.name) : [...cols] };
    }
    let initial: TableUpdates | undefined;
    if (method === 'monitor_cond') {
      try {
        initial = await this.client.monitorCond(this.db, MONITOR_ID, requests, (u) => this.applyOrDrop(u));
      } catch (err) {
        // A server without monitor_cond (RFC 7047 only) gets a plain monitor.
        if (!(err instanceof JsonRpcError) || err.rfcError !== 'unknown method') throw err;
      }
    }
    if (!initial) {
      this.updateFormat = 1;
      initial = await this.client.monitor(this.db, MONITOR_ID, requests, (u) => this.applyOrDrop(u));
    }
    this.emit('change', this.apply(initial));
  }

  /** Bumped by every applied batch of updates: lets callers tell whether the replica moved. */
  get seqno(): number {
    return this.seq;
  }

  /** The replicated row `uuid` of `table`, if any. */
  get(table: string, uuid: string): IdlRow | undefined {
    return this.table(table).get(uuid);
  }

  /** The rows of `table`, in the order the server first sent them. */
  rows(table: string): IterableIterator<IdlRow> {
    return this.table(table).values();
  }

  /** The first row of `table` (for one-row tables such as Open_vSwitch). */
  first(table: string): IdlRow | undefined {
    return this.rows(table).next().value;
  }

  /** Whether rows of `table` live without references (RFC 7047: every table, when the schema marks none). */
  isRoot(table: string): boolean {
    return this.roots.has(table);
  }

  /** Whether `column` of `table` is replicated (unreplicated columns read as their default). */
  replicates(table: string, column: string): boolean {
    return this.replicated.get(table)?.has(column) ?? false;
  }

  /** Whether `table` is replicated. */
  has(table: string): boolean {
    return this.tables.has(table);
  }

  private table(name: string): Map<string, IdlRow> {
    const t = this.tables.get(name);
    if (!t) throw new UnknownTableError(name);
    return t;
  }

  /** Resolves after the next applied batch of updates; rejects if the connection closes first. */
  waitForChange(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.client.isClosed) {
        reject(new OvsdbError('OVSDB_CONNECTION_CLOSED', 'connection closed', 'database connection closed'));
        return;
      }
      const onChange = (): void => {
        this.off('close', onClose);
        resolve();
      };
      const onClose = (): void => {
        this.off('change', onChange);
        reject(new OvsdbError('OVSDB_CONNECTION_CLOSED', 'connection closed', 'database connection closed'));
      };
      this.once('change', onChange);
      this.once('close', onClose);
    });
  }

  /** Why the IDL dropped its connection, when an update could not be applied. */
  lastError?: Error;

  /**
   * Applies a notification; one that does not fit the schema would leave the
   * replica wrong, so the connection is closed instead (`close` follows, and
   * the owner reconnects and gets a fresh, whole replica).
   */
  private applyOrDrop(updates: TableUpdates): void {
    let changes: IdlChanges;
    try {
      changes = this.apply(updates);
    } catch (err) {
      this.lastError = err as Error;
      this.client.close();
      return;
    }
    this.emit('change', changes);
  }

  /** Applies one `<table-updates>` / `<table-updates2>` to the replica; returns what changed. */
  private apply(updates: TableUpdates): IdlChanges {
    const changes: IdlChanges = new Map();
    for (const [tname, rows] of Object.entries(updates)) {
      const table = this.tables.get(tname);
      const ts = this.schema.tables.get(tname);
      if (!table || !ts) continue;
      const tc: TableChanges = { inserted: [], modified: [], deleted: [] };
      for (const [uuid, u] of Object.entries(rows)) {
        const old = table.get(uuid);
        const next = this.updateFormat === 2 ? applyUpdate2(ts, uuid, old, u) : applyUpdate1(ts, uuid, old, u);
        if (next === old) continue;
        if (next === undefined) {
          table.delete(uuid);
          tc.deleted.push(old!);
        } else if (old === undefined) {
          table.set(uuid, next);
          tc.inserted.push(next);
        } else {
          table.set(uuid, next);
          tc.modified.push({ row: next, old, columns: changedColumns(ts, old, next) });
        }
      }
      if (tc.inserted.length + tc.modified.length + tc.deleted.length > 0) changes.set(tname, tc);
    }
    this.seq++;
    return changes;
  }

  /** A new transaction over the current replica. */
  transaction(): IdlTransaction {
    return new IdlTransaction(this);
  }

  /**
   * Builds and commits a transaction, rerunning `build` on a fresh view when
   * a verified column changed under it (at most `maxAttempts` commits), or
   * after the next change when it throws TryAgain (without limit: the
   * caller bounds that wait). Resolves with build's result and
   * the commit's.
   */
  async transact<T>(build: (txn: IdlTransaction) => T | Promise<T>, maxAttempts = 100): Promise<{ value: T; commit: CommitResult }> {
    for (let attempt = 1; attempt <= maxAttempts; ) {
      const seq = this.seq;
      const txn = this.transaction();
      let value: T;
      try {
        value = await build(txn);
      } catch (err) {
        if (!(err instanceof TryAgain)) throw err;
        // Waiting for a condition is not a conflict: it does not use up attempts.
        if (this.seq === seq) await this.waitForChange();
        continue;
      }
      attempt++;
      try {
        return { value, commit: await txn.commit() };
      } catch (err) {
        if (!(err instanceof TransactionError) || err.rfcError !== 'timed out') throw err;
        // A verify failed: someone changed a row we read. The update is on
        // its way (or here already); rebuild once the replica has it.
        if (this.seq === seq) await this.waitForChange();
      }
    }
    throw new TooManyRetriesError(maxAttempts);
  }
}

function rowFromJson(ts: TableSchema, uuid: string, json: Record<string, unknown>): IdlRow {
  const columns = new Map<string, Datum>();
  for (const [c, v] of Object.entries(json)) {
    const col = ts.columns.get(c);
    if (col && c !== '_uuid' && c !== '_version') columns.set(c, parseDatum(v, col.type));
  }
  return new IdlRow(ts, uuid, columns);
}

/** `<row-update>` (monitor): `new` carries the row's columns; absent means deleted. */
function applyUpdate1(ts: TableSchema, uuid: string, old: IdlRow | undefined, u: Record<string, unknown>): IdlRow | undefined {
  const next = u.new as Record<string, unknown> | undefined;
  if (!next) return undefined;
  const row = rowFromJson(ts, uuid, next);
  // Merged over the old row, in case a server sends only the changed columns.
  return old ? old.with(new Map(ts.userColumns.filter((c) => c.name in next).map((c) => [c.name, row.get(c.name)]))) : row;
}

/** `<row-update2>` (monitor_cond): initial/insert (defaults omitted), modify (a diff), delete. */
function applyUpdate2(ts: TableSchema, uuid: string, old: IdlRow | undefined, u: Record<string, unknown>): IdlRow | undefined {
  const whole = (u.initial ?? u.insert) as Record<string, unknown> | undefined;
  if (whole) return rowFromJson(ts, uuid, whole);
  if ('delete' in u) return undefined;
  const diff = u.modify as Record<string, unknown> | undefined;
  if (!diff || !old) return old;
  const changes = new Map<string, Datum>();
  for (const [c, v] of Object.entries(diff)) {
    const col = ts.columns.get(c);
    if (col) changes.set(c, applyDiff(col.type, old.get(c), v));
  }
  return old.with(changes);
}

/**
 * Applies an update2 column diff: a column of at most one atom (a scalar or
 * an optional value) is replaced, as ovsdb-server sends it; a set toggles each
 * element (symmetric difference); a map adds new keys, deletes a key given
 * with its current value, and replaces a key given with another value.
 */
function applyDiff(type: ColumnType, old: Datum, json: unknown): Datum {
  // The diff is any number of elements, whatever the column's cardinality.
  const diff = parseDatum(json, { ...type, min: 0, max: Infinity });
  if (!type.value && type.max === 1) return diff;
  if (!type.value) {
    const out = new Set<Atom>(old.keys);
    for (const a of diff.keys) if (!out.delete(a)) out.add(a);
    return makeSet([...out]);
  }
  const m = new Map<Atom, Atom>();
  old.keys.forEach((k, i) => m.set(k, old.values![i]));
  diff.keys.forEach((k, i) => {
    const v = diff.values![i];
    if (m.get(k) === v) m.delete(k);
    else m.set(k, v);
  });
  return makeMap([...m]);
}

function changedColumns(ts: TableSchema, a: IdlRow, b: IdlRow): string[] {
  return ts.userColumns.filter((c) => !datumEquals(a.get(c.name), b.get(c.name))).map((c) => c.name);
}

function uuidWhere(uuid: string): unknown[] {
  return [['_uuid', '==', ['uuid', uuid]]];
}

/**
 * Pending changes over the replica. Reads (`get`, `rows`, `first`) see the
 * pending changes; `verify` records a column read whose value must still
 * hold at commit. Rows inserted here get a provisional uuid, usable in
 * references until the commit maps it to the real one.
 */
export class IdlTransaction {
  private readonly idl: Idl;
  /** Rows inserted here, by provisional uuid. */
  private readonly inserted = new Map<string, IdlRow>();
  /** Columns set on existing rows, per row uuid. */
  private readonly updated = new Map<string, { table: string; changes: Map<string, Datum> }>();
  private readonly deleted = new Map<string, string>();
  /** Mutations, sent as they are (the server applies them to the value it holds). */
  private readonly mutations: Array<{ table: string; uuid: string; column: string; mutator: string; value: Datum }> = [];
  /** Values read, per row uuid: the commit waits for each to still hold. */
  private readonly verified = new Map<string, { table: string; columns: Map<string, Datum> }>();
  private readonly comments: string[] = [];
  private incrementOf?: { table: string; uuid: string; column: string };
  private localIncrement?: number;

  constructor(idl: Idl) {
    this.idl = idl;
  }

  /** The row as this transaction sees it (undefined if deleted or absent). */
  get(table: string, uuid: string): IdlRow | undefined {
    if (this.deleted.has(uuid)) return undefined;
    const ins = this.inserted.get(uuid);
    if (ins) return ins.table === table ? ins : undefined;
    const row = this.idl.get(table, uuid);
    const upd = this.updated.get(uuid);
    return row && upd ? row.with(upd.changes) : row;
  }

  /** Every row of `table` as this transaction sees it. */
  *rows(table: string): IterableIterator<IdlRow> {
    for (const row of this.idl.rows(table)) {
      const r = this.get(table, row.uuid);
      if (r) yield r;
    }
    for (const row of this.inserted.values()) if (row.table === table) yield row;
  }

  first(table: string): IdlRow | undefined {
    return this.rows(table).next().value;
  }

  /** Whether `uuid` is a row this transaction inserted. */
  isNew(uuid: string): boolean {
    return this.inserted.has(uuid);
  }

  /**
   * Inserts a row; returns it. Its uuid is provisional until commit: pass
   * `uuid` when references to the row were written before it was inserted.
   */
  insert(table: string, values: Record<string, Datum> = {}, uuid: string = provisionalUuid()): IdlRow {
    const ts = this.tableSchema(table);
    for (const c of Object.keys(values)) this.columnType(ts, c);
    const row = new IdlRow(ts, uuid, new Map(Object.entries(values)));
    this.inserted.set(row.uuid, row);
    return row;
  }

  /** Sets one column of a row. */
  set(row: IdlRow, column: string, value: Datum): void {
    this.columnType(this.tableSchema(row.table), column);
    const ins = this.inserted.get(row.uuid);
    if (ins) {
      this.inserted.set(row.uuid, ins.with(new Map([[column, value]])));
      return;
    }
    const current = this.deleted.has(row.uuid) ? undefined : this.idl.get(row.table, row.uuid);
    if (!current) throw new NoSuchRowError(row.table, row.uuid);
    let upd = this.updated.get(row.uuid);
    if (!upd) this.updated.set(row.uuid, (upd = { table: row.table, changes: new Map() }));
    // Setting a replicated column to the value it has is no change: nothing
    // is sent for it, and a transaction of only such sets is `unchanged`.
    if (this.idl.replicates(row.table, column) && datumEquals(current.get(column), value)) upd.changes.delete(column);
    else upd.changes.set(column, value);
  }

  /**
   * Deletes a row. A row of a root table is deleted outright (the caller
   * removes references to it); a row of a non-root table is only dropped from
   * this view, and the server garbage-collects it once nothing refers to it —
   * as OVS's IDL does, so deleting a still-referenced Bridge is a no-op
   * rather than a referential-integrity failure.
   */
  delete(row: IdlRow): void {
    if (this.inserted.delete(row.uuid)) return;
    if (!this.idl.get(row.table, row.uuid)) throw new NoSuchRowError(row.table, row.uuid);
    this.updated.delete(row.uuid);
    this.deleted.set(row.uuid, row.table);
  }

  /**
   * Mutates a column on the server (RFC 7047 `mutate`, with `insert` or
   * `delete`): what OVS's IDL sends for a partial update of a set or map.
   * The server applies it to the value it holds at commit (for a row
   * inserted here, after the insert), and checks the result against the
   * column's type and mutability; this transaction's view does not show
   * it. For a map, `delete` takes a set of keys.
   */
  mutate(row: IdlRow, column: string, mutator: 'insert' | 'delete', value: Datum): void {
    this.columnType(this.tableSchema(row.table), column);
    if (!this.inserted.has(row.uuid) && (this.deleted.has(row.uuid) || !this.idl.get(row.table, row.uuid))) throw new NoSuchRowError(row.table, row.uuid);
    this.mutations.push({ table: row.table, uuid: row.uuid, column, mutator, value });
  }

  /**
   * Makes the commit fail (and `Idl.transact` retry) unless `column` of
   * `row` still has the replica's value: call it for every column a
   * decision was based on.
   */
  verify(row: IdlRow, column: string): void {
    if (this.inserted.has(row.uuid)) return;
    this.columnType(this.tableSchema(row.table), column);
    // An unreplicated column reads as its default, which would never verify.
    if (!this.idl.replicates(row.table, column)) throw new NotReplicatedError(row.table, column);
    let v = this.verified.get(row.uuid);
    if (!v) this.verified.set(row.uuid, (v = { table: row.table, columns: new Map() }));
    // Snapshot now: updates may reach the replica before the commit is sent.
    const current = this.idl.get(row.table, row.uuid);
    if (current && !v.columns.has(column)) v.columns.set(column, current.get(column));
  }

  /** Adds 1 to an integer column on the server side; the new value is in the commit result. */
  increment(row: IdlRow, column: string): void {
    const ins = this.inserted.get(row.uuid);
    if (ins) {
      // A row inserted here cannot be named in a mutate: set the value instead.
      this.localIncrement = (ins.number(column) ?? 0) + 1;
      this.set(ins, column, { keys: [this.localIncrement] });
      return;
    }
    this.incrementOf = { table: row.table, uuid: row.uuid, column };
  }

  /** Adds a comment to the server's log of this transaction. */
  comment(text: string): void {
    this.comments.push(text);
  }

  /** Whether there is anything to write. */
  get isEmpty(): boolean {
    return this.inserted.size === 0 && this.deleted.size === 0 && this.mutations.length === 0 && [...this.updated.values()].every((u) => u.changes.size === 0);
  }

  /**
   * Sends the transaction. Rejects with TransactionError (`timed out` when a
   * verified column changed); resolves with status `unchanged`, sending
   * nothing, when there is nothing to write.
   */
  async commit(): Promise<CommitResult> {
    if (this.isEmpty) return { status: 'unchanged', inserted: new Map() };
    const ops: Operation[] = [];
    for (const [uuid, v] of this.verified) {
      const ts = this.tableSchema(v.table);
      const seen: Record<string, unknown> = {};
      for (const [c, d] of v.columns) seen[c] = this.toJson(d, this.columnType(ts, c));
      ops.push({ op: 'wait', table: v.table, where: uuidWhere(uuid), columns: [...v.columns.keys()], until: '==', rows: [seen], timeout: 0 });
    }
    const insertIndex = new Map<number, string>();
    for (const row of this.inserted.values()) {
      insertIndex.set(ops.length, row.uuid);
      ops.push({ op: 'insert', table: row.table, row: this.rowJson(row, this.tableSchema(row.table).userColumns.map((c) => c.name)), 'uuid-name': namedUuid(row.uuid) });
    }
    for (const [uuid, u] of this.updated) {
      if (u.changes.size === 0) continue;
      const ts = this.tableSchema(u.table);
      const json: Record<string, unknown> = {};
      for (const [c, d] of u.changes) json[c] = this.toJson(d, this.columnType(ts, c));
      ops.push({ op: 'update', table: u.table, where: uuidWhere(uuid), row: json });
    }
    // One mutate per row, its mutations in the order they were made.
    const mutateOps = new Map<string, { op: 'mutate'; table: string; where: unknown[]; mutations: unknown[] }>();
    for (const m of this.mutations) {
      const type = this.columnType(this.tableSchema(m.table), m.column);
      const partType: ColumnType = { key: type.key, value: m.value.values ? type.value : undefined, min: 0, max: Infinity };
      let op = mutateOps.get(m.uuid);
      if (!op) {
        const where = this.inserted.has(m.uuid) ? [['_uuid', '==', ['named-uuid', namedUuid(m.uuid)]]] : uuidWhere(m.uuid);
        op = { op: 'mutate', table: m.table, where, mutations: [] };
        mutateOps.set(m.uuid, op);
        ops.push(op as Operation);
      }
      // A set always in "set" notation, even of one element, as OVS's IDL writes it (the server echoes it in errors).
      const v = this.toJson(m.value, partType);
      op.mutations.push([m.column, m.mutator, partType.value === undefined && !(Array.isArray(v) && v[0] === 'set') ? ['set', [v]] : v]);
    }
    for (const [uuid, table] of this.deleted) if (this.idl.isRoot(table)) ops.push({ op: 'delete', table, where: uuidWhere(uuid) });
    let selectIndex = -1;
    if (this.incrementOf) {
      const { table, uuid, column } = this.incrementOf;
      ops.push({ op: 'mutate', table, where: uuidWhere(uuid), mutations: [[column, '+=', 1]] });
      selectIndex = ops.length;
      ops.push({ op: 'select', table, where: uuidWhere(uuid), columns: [column] });
    }
    if (this.comments.length > 0) ops.push({ op: 'comment', comment: this.comments.join('\n') });
    const results: OperationResult[] = await this.idl.client.transact(this.idl.db, ops);
    const inserted = new Map<string, string>();
    for (const [i, provisional] of insertIndex) inserted.set(provisional, ((results[i].uuid as unknown[])[1]) as string);
    const result: CommitResult = { status: 'success', inserted, incremented: this.localIncrement };
    if (selectIndex >= 0) {
      const rows = results[selectIndex].rows as Array<Record<string, unknown>>;
      if (rows.length === 0) throw new NoSuchRowError(this.incrementOf!.table, this.incrementOf!.uuid);
      result.incremented = rows[0][this.incrementOf!.column] as number;
    }
    return result;
  }

  private rowJson(row: IdlRow, columns: string[]): Record<string, unknown> {
    const ts = this.tableSchema(row.table);
    const json: Record<string, unknown> = {};
    for (const c of columns) {
      const type = this.columnType(ts, c);
      const d = row.get(c);
      if (!datumEquals(d, defaultDatum(type))) json[c] = this.toJson(d, type);
    }
    return json;
  }

  /** Wire notation, with provisional uuids of inserted rows written as named-uuids. */
  private toJson(d: Datum, type: ColumnType): unknown {
    const json = datumToJson(d, type);
    if (type.key.type !== 'uuid' && type.value?.type !== 'uuid') return json;
    const sub = (x: unknown): unknown => {
      if (Array.isArray(x)) {
        if (x.length === 2 && x[0] === 'uuid' && typeof x[1] === 'string' && this.inserted.has(x[1])) return ['named-uuid', namedUuid(x[1])];
        return x.map(sub);
      }
      return x;
    };
    return sub(json);
  }

  private tableSchema(table: string): TableSchema {
    const ts = this.idl.schema.tables.get(table);
    if (!ts || !this.idl.has(table)) throw new UnknownTableError(table);
    return ts;
  }

  private columnType(ts: TableSchema, column: string): ColumnType {
    const col = ts.columns.get(column);
    if (!col || column === '_uuid' || column === '_version') throw new UnknownColumnError(ts.name, column);
    return col.type;
  }
}

/**
 * A uuid for a row not yet inserted. It only has to be unique within its
 * transaction (commit sends it as a named-uuid), so Math.random will do —
 * and spares nvs-vsctl loading node:crypto at start-up.
 */
export function provisionalUuid(): string {
  const hex = (n: number): string => Array.from({ length: n }, () => ((Math.random() * 16) | 0).toString(16)).join('');
  return `${hex(8)}-${hex(4)}-4${hex(3)}-${'89ab'[(Math.random() * 4) | 0]}${hex(3)}-${hex(12)}`;
}

function namedUuid(provisional: string): string {
  return `row_${provisional.replace(/-/g, '_')}`;
}
