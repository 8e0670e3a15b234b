// What every nvs-vsctl command works with: the transaction's view of the
// database, the invocation's `@name` symbols, and ovs-vsctl's rules for
// naming tables, columns and records on the command line.
import { provisionalUuid, type IdlRow, type IdlTransaction } from '@nvs/ovsdb/src/idl.ts';
import type { ColumnSchema, ColumnType, DatabaseSchema, TableSchema } from '@nvs/ovsdb/src/schema.ts';
import { isUuid, type Atom, type Datum } from '@nvs/ovsdb/src/datum.ts';
import { VsctlError } from './errors.ts';
import { parseAtomString, parseDatumString } from './notation.ts';
import type { OutputStyle } from './output.ts';

/** `@name` rows of one invocation: referenced ones get a uuid first, `--id=@name` then creates or captures the row. */
export class Symbols {
  private readonly table = new Map<string, { uuid: string; defined: boolean }>();

  /** The uuid `@name` stands for (allocated on first reference). */
  resolve = (name: string): string => {
    let s = this.table.get(name);
    if (!s) this.table.set(name, (s = { uuid: provisionalUuid(), defined: false }));
    return s.uuid;
  };

  /** Declares `@name` (from `--id`); returns the uuid the new row must take, or binds it to an existing row's `uuid`. */
  define(name: string, uuid?: string): string {
    if (!name.startsWith('@') || name.length < 2) throw new VsctlError('VSCTL_BAD_ID', `row id "${name}" does not begin with "@"`);
    const s = this.table.get(name);
    if (s?.defined) throw new VsctlError('VSCTL_BAD_ID', `row id "${name}" may only be specified on one --id option`);
    if (s && uuid) throw new VsctlError('VSCTL_BAD_ID', `row id "${name}" is referenced before "get" gives it a value`);
    const entry = s ?? { uuid: uuid ?? provisionalUuid(), defined: false };
    entry.defined = true;
    this.table.set(name, entry);
    return entry.uuid;
  }

  /** The uuid of a defined `@name`, for record arguments. */
  lookup(name: string): string | undefined {
    const s = this.table.get(name);
    return s?.defined ? s.uuid : undefined;
  }

  /** Fails on a `@name` used but never created. */
  checkAllDefined(): void {
    for (const [name, s] of this.table) {
      if (!s.defined) throw new VsctlError('VSCTL_BAD_ID', `row id "${name}" is referenced but never created (e.g. with "-- --id=${name} create ...")`);
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
  /** Prints a warning to stderr at once. */
  warn: (message: string) => void;
  /** Output of the current command; a function runs after commit, when real uuids are known. */
  out: Array<string | ((realUuid: (provisional: string) => string) => string)>;
}

/** Lower-case with `-` for `_`: ovs-vsctl matches names that way. */
function normalize(s: string): string {
  return s.toLowerCase().replace(/-/g, '_');
}

/** Finds a table by exact name, then case-insensitively, then by unique prefix. */
export function findTable(schema: DatabaseSchema, name: string): TableSchema {
  const exact = schema.tables.get(name);
  if (exact) return exact;
  const n = normalize(name);
  const all = [...schema.tables.values()];
  const same = all.filter((t) => normalize(t.name) === n);
  if (same.length === 1) return same[0];
  const prefixed = all.filter((t) => normalize(t.name).startsWith(n));
  if (prefixed.length === 1 && n.length > 0) return prefixed[0];
  if (prefixed.length > 1) throw new VsctlError('VSCTL_AMBIGUOUS_TABLE', `multiple table names match "${name}"`);
  throw new VsctlError('VSCTL_UNKNOWN_TABLE', `unknown table "${name}"`);
}

/**
 * Finds a column the same way (`external-ids` finds `external_ids`). `_uuid`
 * is found only for reading; writing a column (`forWrite`) also requires it
 * to be mutable, as ovs-vsctl does.
 */
export function findColumn(table: TableSchema, name: string, forWrite = false): ColumnSchema {
  const col = matchColumn(table, name, forWrite);
  if (forWrite && !col.mutable) throw new VsctlError('VSCTL_READ_ONLY', `cannot modify read-only column ${col.name} in table ${table.name}`);
  return col;
}

function matchColumn(table: TableSchema, name: string, forWrite: boolean): ColumnSchema {
  const hidden = (c: string): boolean => c === '_version' || (forWrite && c === '_uuid');
  const exact = table.columns.get(name);
  if (exact && !hidden(name)) return exact;
  const n = normalize(name);
  const all = [...table.columns.values()].filter((c) => !hidden(c.name));
  const same = all.filter((c) => normalize(c.name) === n);
  if (same.length === 1) return same[0];
  const prefixed = all.filter((c) => normalize(c.name).startsWith(n));
  if (prefixed.length === 1 && n.length > 0) return prefixed[0];
  if (prefixed.length > 1) throw new VsctlError('VSCTL_AMBIGUOUS_COLUMN', `${table.name} contains more than one column whose name matches "${name}"`);
  throw new VsctlError('VSCTL_UNKNOWN_COLUMN', `${table.name} does not contain a column whose name matches "${name}"`);
}

/**
 * How users name records of a table: by a name column of the table itself,
 * or of another table whose row points at it (`Controller br0` is the
 * controller of bridge br0), or `.` for the one Open_vSwitch row.
 */
interface RecordIdRule {
  table: string;
  /** Column holding the name; undefined means the record is named `.`. */
  nameColumn?: string;
  /** Column of `table` that points at the wanted record. */
  refColumn?: string;
}

const RECORD_ID_RULES: Record<string, RecordIdRule[]> = {
  Open_vSwitch: [{ table: 'Open_vSwitch' }],
  Bridge: [{ table: 'Bridge', nameColumn: 'name' }],
  Port: [{ table: 'Port', nameColumn: 'name' }],
  Interface: [{ table: 'Interface', nameColumn: 'name' }],
  Controller: [{ table: 'Bridge', nameColumn: 'name', refColumn: 'controller' }],
  Manager: [{ table: 'Manager', nameColumn: 'target' }],
  Mirror: [{ table: 'Mirror', nameColumn: 'name' }],
  NetFlow: [{ table: 'Bridge', nameColumn: 'name', refColumn: 'netflow' }],
  QoS: [{ table: 'Port', nameColumn: 'name', refColumn: 'qos' }],
  SSL: [{ table: 'Open_vSwitch', refColumn: 'ssl' }],
  sFlow: [{ table: 'Bridge', nameColumn: 'name', refColumn: 'sflow' }],
  IPFIX: [{ table: 'Bridge', nameColumn: 'name', refColumn: 'ipfix' }],
  Flow_Table: [{ table: 'Flow_Table', nameColumn: 'name' }],
  AutoAttach: [{ table: 'Bridge', nameColumn: 'name', refColumn: 'auto_attach' }],
};

/** The tables a record of `table` may be looked up through (for the monitor). */
export function recordIdTables(table: string): string[] {
  return [table, ...(RECORD_ID_RULES[table] ?? []).map((r) => r.table)];
}

/** Finds a record by uuid, `@name`, or the table's naming rules; undefined when absent. */
export function findRecord(ctx: Context, table: TableSchema, id: string): IdlRow | undefined {
  const byUuid: boolean = isUuid(id);
  if (byUuid) return ctx.txn.get(table.name, id.toLowerCase());
  if (id.startsWith('@')) {
    const uuid = ctx.symbols.lookup(id);
    return uuid ? ctx.txn.get(table.name, uuid) : undefined;
  }
  for (const rule of RECORD_ID_RULES[table.name] ?? []) {
    let matches: IdlRow[];
    if (rule.nameColumn === undefined) {
      const first = id === '.' ? ctx.txn.first(rule.table) : undefined;
      matches = first ? [first] : [];
    } else {
      matches = [...ctx.txn.rows(rule.table)].filter((r) => r.get(rule.nameColumn!).keys[0] === id);
    }
    if (matches.length > 1) throw new VsctlError('VSCTL_AMBIGUOUS_RECORD', `multiple rows in ${rule.table} match "${id}"`);
    if (matches.length === 0) continue;
    if (!rule.refColumn) return matches[0];
    const ref = matches[0].get(rule.refColumn).keys;
    if (ref.length === 1) return ctx.txn.get(table.name, ref[0] as string);
  }
  // Last, a uuid prefix of at least 4 hex digits, as ovs-vsctl accepts.
  if (/^[0-9a-fA-F][0-9a-fA-F-]{3,}$/.test(id)) {
    const prefix = id.toLowerCase();
    const rows = [...ctx.txn.rows(table.name)].filter((r) => r.uuid.startsWith(prefix));
    if (rows.length > 1) throw new VsctlError('VSCTL_AMBIGUOUS_RECORD', `multiple rows in ${table.name} match "${id}"`);
    return rows[0];
  }
  return undefined;
}

/** The parts of `column[:key][op value]`. */
export interface ColumnArg {
  column: ColumnSchema;
  key?: Atom;
  op?: string;
  value?: Datum;
}

const OPERATORS = ['{>=}', '{<=}', '{!=}', '{=}', '{<}', '{>}', '!=', '<=', '>=', '=', '<', '>'];

/**
 * Parses `column[:key]` followed by an operator from `ops` and a value (or
 * nothing, when `ops` is empty). The value after `:key=` is one atom taken
 * whole; after `column=` it is a whole value in set/map notation.
 */
export function parseColumnArg(ctx: Context, table: TableSchema, arg: string, ops: readonly string[], valueRequired: boolean, forWrite = false): ColumnArg {
  const m = /^[^:=!<>{]+/.exec(arg);
  if (!m) throw new VsctlError('VSCTL_BAD_ARG', `${arg}: missing column name`);
  const column = findColumn(table, m[0], forWrite);
  let rest = arg.slice(m[0].length);
  let key: Atom | undefined;
  if (rest.startsWith(':')) {
    if (!column.type.value) throw new VsctlError('VSCTL_NOT_A_MAP', `cannot specify key to ${ops.length ? 'set' : 'get'} for non-map column ${column.name}`);
    rest = rest.slice(1);
    let keyText: string;
    if (rest.startsWith('"')) {
      const end = closingQuote(rest);
      keyText = rest.slice(0, end + 1);
    } else {
      keyText = /^[^=!<>{]*/.exec(rest)![0];
    }
    rest = rest.slice(keyText.length);
    key = parseAtomString(keyText, column.type.key, ctx.symbols.resolve);
  }
  if (ops.length === 0) {
    if (rest !== '') throw new VsctlError('VSCTL_BAD_ARG', `${arg}: trailing garbage "${rest}" in argument`);
    return { column, key };
  }
  const op = OPERATORS.find((o) => rest.startsWith(o));
  if (!op || !ops.includes(op) || rest.length === op.length) {
    if (!valueRequired && rest === '') return { column, key };
    throw new VsctlError('VSCTL_BAD_ARG', `${arg}: argument does not end in ${ops.length === 1 ? `"${ops[0]}"` : `one of ${ops.map((o) => `"${o}"`).join(', ')}`} followed by a value.`);
  }
  const text = rest.slice(op.length);
  const value: Datum =
    key !== undefined
      ? { keys: [parseAtomString(text, column.type.value!, ctx.symbols.resolve)] }
      : parseDatumString(text, column.type, ctx.symbols.resolve, op.startsWith('{') || ops.length > 1);
  return { column, key, op, value };
}

function closingQuote(s: string): number {
  let i = 1;
  while (i < s.length && s[i] !== '"') i += s[i] === '\\' ? 2 : 1;
  if (i >= s.length) throw new VsctlError('VSCTL_BAD_VALUE', `${s}: missing quote at end of quoted string`);
  return i;
}

/** The type of the value stored under one key of a map column: zero or one atom. */
export function keyValueType(type: ColumnType): ColumnType {
  return { key: type.value!, min: 0, max: 1 };
}
