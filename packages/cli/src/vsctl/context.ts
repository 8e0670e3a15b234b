// What every nvs-vsctl command works with: the transaction's view of the
// database, the invocation's `@name` symbols, and ovs-vsctl's rules for
// naming tables, columns and records on the command line.
import { isUuid, provisionalUuid, type BaseType, type ColumnSchema, type DatabaseSchema, type IdlRow, type IdlTransaction, type TableSchema } from '@nvs/ovsdb';
import { VsctlError } from './errors.ts';
import { parseToken } from './notation.ts';
import type { Cell, OutputStyle } from './output.ts';
import type { SwitchView } from './switch-view.ts';

interface Symbol {
  uuid: string;
  /** Given a row by `--id` (create, or get of an existing row). */
  created: boolean;
  /** Written into a strong (or only a weak) reference column, so the row it names is kept. */
  strongRef: boolean;
  weakRef: boolean;
}

/** `@name` rows of one invocation: referenced ones get a uuid first, `--id=@name` then creates or captures the row. */
export class Symbols {
  private readonly table = new Map<string, Symbol>();

  private entry(name: string): Symbol {
    let s = this.table.get(name);
    if (!s) this.table.set(name, (s = { uuid: provisionalUuid(), created: false, strongRef: false, weakRef: false }));
    return s;
  }

  /** The uuid `@name` stands for (allocated on first use), noting the reference when `b` is a reference type. */
  resolve = (name: string, b?: BaseType): string => {
    const s = this.entry(name);
    if (b?.refTable) {
      if (b.refType === 'weak') s.weakRef = true;
      else s.strongRef = true;
    }
    return s.uuid;
  };

  /**
   * Declares `@name` on `--id`: returns the uuid the new row must take, or
   * with `existing` (get) binds the name to that row, which must be its first use.
   */
  define(name: string, opts: { existing?: string; root?: boolean } = {}): string {
    if (!name.startsWith('@')) throw new VsctlError('VSCTL_BAD_ID', `row id "${name}" does not begin with "@"`);
    const isNew = !this.table.has(name);
    const s = this.entry(name);
    if (s.created) throw new VsctlError('VSCTL_BAD_ID', `row id "${name}" may only be specified on one --id option`);
    s.created = true;
    if (opts.existing !== undefined) {
      if (!isNew) throw new VsctlError('VSCTL_BAD_ID', `row id "${name}" specified on "get" command was used before it was defined`);
      s.uuid = opts.existing;
    }
    // A row that exists already, or of a root table, stays without a reference.
    if (opts.existing !== undefined || opts.root) s.strongRef = true;
    return s.uuid;
  }

  /** Fails on a `@name` used but never created; warns of one created but not kept by any reference. */
  check(warn: (message: string) => void): void {
    for (const [name, s] of this.table) {
      if (!s.created) throw new VsctlError('VSCTL_BAD_ID', `row id "${name}" is referenced but never created (e.g. with "-- --id=${name} create ...")`);
      if (s.strongRef) continue;
      warn(
        s.weakRef
          ? `row id "${name}" was created but only a weak reference to it was inserted, so it will not actually appear in the database`
          : `row id "${name}" was created but no reference to it was inserted, so it will not actually appear in the database`,
      );
    }
  }
}

export interface Context {
  txn: IdlTransaction;
  schema: DatabaseSchema;
  symbols: Symbols;
  style: OutputStyle;
  /** The Open_vSwitch row (inserted by this invocation if the database had none). */
  ovs: IdlRow;
  /** Prints a warning (or with `ERR`, an error that does not stop the command) to stderr at once. */
  warn: (message: string, level?: 'WARN' | 'ERR') => void;
  /** Output of the current command; a function runs after commit, when real uuids are known. */
  out: Array<string | ((realUuid: (provisional: string) => string) => string)>;
  /** Set by list and find: the rows they print (printed after the other commands' text, in order). */
  table?: { headings: string[]; rows: Cell[][] };
  /** Whether a table is replicated in this invocation. */
  hasTable: (table: string) => boolean;
  /** The bridges, ports and interfaces as the bridge commands see them; dropped when a database command may have changed them. */
  view?: SwitchView;
}

/** How well `given` names `name`: exact, then equal ignoring case and `-`/`_`, then the length of a prefix; 0 for no match. */
function matchScore(name: string, given: string): number {
  if (name === given) return Number.MAX_SAFE_INTEGER;
  const norm = (c: string): string => (c === '-' ? '_' : c.toLowerCase());
  for (let i = 0; ; i++) {
    if (i === name.length && i === given.length) return Number.MAX_SAFE_INTEGER - 1;
    if (i === given.length) return i;
    if (i === name.length || norm(name[i]) !== norm(given[i])) return 0;
  }
}

/** The best matches of `given` among `names` (all of the same best score). */
function bestMatches(names: Iterable<string>, given: string): string[] {
  let best = 0;
  let matches: string[] = [];
  for (const name of names) {
    const score = matchScore(name, given);
    if (score === 0 || score < best) continue;
    if (score > best) matches = [];
    matches.push(name);
    best = score;
  }
  return matches.sort();
}

/** Finds a table by exact name, then ignoring case and `-`/`_`, then by unique prefix. */
export function findTable(schema: DatabaseSchema, name: string): TableSchema {
  const matches = bestMatches(schema.tables.keys(), name);
  if (matches.length === 0) throw new VsctlError('VSCTL_UNKNOWN_TABLE', `unknown table "${name}"`);
  if (matches.length > 1) throw new VsctlError('VSCTL_AMBIGUOUS_TABLE', `"${name}" matches multiple table names: ${matches.join(', ')}`);
  return schema.tables.get(matches[0])!;
}

/** Finds a column (not `_uuid`) the same way: `external-ids` finds `external_ids`. */
export function findColumn(table: TableSchema, name: string): ColumnSchema {
  const matches = bestMatches(
    table.userColumns.map((c) => c.name),
    name,
  );
  if (matches.length === 0) throw new VsctlError('VSCTL_UNKNOWN_COLUMN', `${table.name} does not contain a column whose name matches "${name}"`);
  if (matches.length > 1) throw new VsctlError('VSCTL_AMBIGUOUS_COLUMN', `${table.name} contains more than one column whose name matches "${name}": ${matches.join(', ')}`);
  return table.columns.get(matches[0])!;
}

/** Refuses to write a column the schema makes immutable (except while creating the row). */
export function checkMutable(ctx: Context, row: IdlRow, column: ColumnSchema): void {
  if (!column.mutable && !ctx.txn.isNew(row.uuid)) throw new VsctlError('VSCTL_READ_ONLY', `cannot modify read-only column ${column.name} in table ${row.table}`);
}

/**
 * How users name records of a table: by a name column of the table itself,
 * or of another table whose row points at it (`Controller br0` is the
 * controller of bridge br0).
 */
interface RecordIdRule {
  table: string;
  nameColumn: string;
  /** Column of `table` that points at the wanted record. */
  refColumn?: string;
}

const RECORD_ID_RULES: Record<string, RecordIdRule> = {
  Bridge: { table: 'Bridge', nameColumn: 'name' },
  Port: { table: 'Port', nameColumn: 'name' },
  Interface: { table: 'Interface', nameColumn: 'name' },
  Controller: { table: 'Bridge', nameColumn: 'name', refColumn: 'controller' },
  Manager: { table: 'Manager', nameColumn: 'target' },
  Mirror: { table: 'Mirror', nameColumn: 'name' },
  NetFlow: { table: 'Bridge', nameColumn: 'name', refColumn: 'netflow' },
  QoS: { table: 'Port', nameColumn: 'name', refColumn: 'qos' },
  sFlow: { table: 'Bridge', nameColumn: 'name', refColumn: 'sflow' },
  IPFIX: { table: 'Bridge', nameColumn: 'name', refColumn: 'ipfix' },
  Flow_Table: { table: 'Flow_Table', nameColumn: 'name' },
  AutoAttach: { table: 'Bridge', nameColumn: 'name', refColumn: 'auto_attach' },
  Flow_Sample_Collector_Set: { table: 'Flow_Sample_Collector_Set', nameColumn: 'id' },
};

/** The tables a record of `table` may be looked up through (for the monitor). */
export function recordIdTables(table: string): string[] {
  const rule = RECORD_ID_RULES[table];
  return rule ? [table, rule.table] : [table];
}

/**
 * Finds a record, as ovs-vsctl does: by uuid; `.` when the table has
 * exactly one row; by the table's naming rule; by a uuid prefix of at
 * least 4 hex digits. Undefined when absent. (`@name` is not a record
 * name: ovs-vsctl refuses it, and so does nvs-vsctl.)
 */
export function findRecord(ctx: Context, table: TableSchema, id: string): IdlRow | undefined {
  if (isUuid(id)) {
    const row = ctx.txn.get(table.name, id.toLowerCase());
    if (row) return row;
  }
  if (id === '.') {
    const rows = ctx.txn.rows(table.name);
    const first = rows.next();
    if (!first.done && rows.next().done) return first.value;
  }
  const rule = RECORD_ID_RULES[table.name];
  if (rule) {
    const row = findByName(ctx, table, rule, id);
    if (row) return row;
  }
  if (/^[0-9a-fA-F]{4}/.test(id) && /^[0-9a-fA-F-]+$/.test(id)) {
    const prefix = id.toLowerCase();
    const rows = [...ctx.txn.rows(table.name)].filter((r) => r.uuid.startsWith(prefix));
    if (rows.length > 1) throw new VsctlError('VSCTL_AMBIGUOUS_RECORD', `${table.name} contains 2 or more rows whose UUIDs begin with ${id}: at least ${rows[0].uuid} and ${rows[1].uuid}`);
    return rows[0];
  }
  return undefined;
}

function findByName(ctx: Context, table: TableSchema, rule: RecordIdRule, id: string): IdlRow | undefined {
  const nameType = ctx.schema.tables.get(rule.table)!.columns.get(rule.nameColumn)!.type.key.type;
  // Integer names (Flow_Sample_Collector_Set's id) are given in decimal digits only.
  if (nameType === 'integer' && !/^\d+$/.test(id)) return undefined;
  let found: IdlRow | undefined;
  for (const row of ctx.txn.rows(rule.table)) {
    const names = row.get(rule.nameColumn).keys;
    if (names.length !== 1) continue;
    const name = names[0];
    const equal = nameType === 'integer' ? name === Number(id) : name === id || (id.length >= 4 && isUuid(name) && (name as string).startsWith(id));
    if (!equal) continue;
    if (found) throw new VsctlError('VSCTL_AMBIGUOUS_RECORD', `multiple rows in ${rule.table} match "${id}"`);
    found = row;
  }
  if (!found || !rule.refColumn) return found;
  ctx.txn.verify(found, rule.refColumn);
  const ref = found.get(rule.refColumn).keys;
  return ref.length === 1 ? ctx.txn.get(table.name, ref[0] as string) : undefined;
}

/** The parts of `column[:key][op value]`, key and value as written. */
export interface ColumnArg {
  column: ColumnSchema;
  key?: string;
  op?: string;
  value?: string;
}

/**
 * Splits `column[:key]` and, when `ops` is given, an operator (the longest
 * of `ops` that a non-empty value follows) and the value. Without `ops`,
 * nothing may follow the column and key.
 */
export function parseColumnKeyValue(table: TableSchema, arg: string, ops?: readonly string[]): ColumnArg {
  const name = parseToken(arg, 0);
  if (name.token === '') throw new VsctlError('VSCTL_BAD_ARG', `${arg}: missing column name`);
  const column = findColumn(table, name.token);
  let p = name.end;
  let key: string | undefined;
  if (arg[p] === ':') {
    const k = parseToken(arg, p + 1);
    key = k.token;
    p = k.end;
  }
  if (!ops) {
    if (p < arg.length) throw new VsctlError('VSCTL_BAD_ARG', `${arg}: trailing garbage "${arg.slice(p)}" in argument`);
    return { column, key };
  }
  const allowed = ops.length ? ops : ['='];
  let op: string | undefined;
  for (const o of allowed) if ((op === undefined || o.length > op.length) && arg.startsWith(o, p) && p + o.length < arg.length) op = o;
  if (op === undefined) throw new VsctlError('VSCTL_BAD_ARG', missingOperator(arg, allowed));
  return { column, key, op, value: arg.slice(p + op.length) };
}

function missingOperator(arg: string, ops: readonly string[]): string {
  const quoted = ops.map((o) => `"${o}"`);
  const list = quoted.length === 1 ? quoted[0] : quoted.length === 2 ? `${quoted[0]} or ${quoted[1]}` : `${quoted.slice(0, -1).join(', ')}, or ${quoted[quoted.length - 1]}`;
  return `${arg}: argument does not end in ${list} followed by a value.`;
}

/** The column name of `column[:key]...` (for the checks before any command runs). */
export function columnOfArg(table: TableSchema, arg: string): ColumnSchema {
  const name = parseToken(arg, 0);
  if (name.token === '') throw new VsctlError('VSCTL_BAD_ARG', `${arg}: missing column name`);
  return findColumn(table, name.token);
}
