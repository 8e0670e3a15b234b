// The database commands of nvs-vsctl, over any table: get, set, add,
// remove, clear, list, find, create, destroy, wait-until and comment. Each
// has two steps, as in ovs-vsctl: `prerequisites` checks the table and
// column names (for every command of the line before any runs, so a
// misspelt column fails the line before anything is looked up) and says
// what to replicate; `run` then works through the invocation's transaction.
import { compareAtoms, datumDifference, datumUnion, defaultDatum, findKey, makeAtom, makeMap, TryAgain, type Atom, type ColumnSchema, type ColumnType, type DatabaseSchema, type Datum, type IdlRow, type IdlTables, type TableSchema } from '@nvs/ovsdb';
import { VsctlError } from './errors.ts';
import type { CommandLine } from './args.ts';
import { datumToString, atomToString, parseAtomString, parseDatumString } from './notation.ts';
import { checkMutable, columnOfArg, findColumn, findRecord, findTable, parseColumnKeyValue, recordIdTables, type Context } from './context.ts';
import type { Cell } from './output.ts';

export interface CommandSpec {
  /** Fewest and most arguments (Infinity: any). */
  minArgs: number;
  maxArgs: number;
  /** Options accepted, as ovs-vsctl lists them: `--may-exist`, `--id=` (takes a value). */
  options: readonly string[];
  /**
   * Checks names before anything runs (throws VsctlError), warns where
   * ovs-vsctl does at that point; returns the tables and columns the
   * command reads or writes.
   */
  prerequisites: (cmd: CommandLine, schema: DatabaseSchema, warn: (message: string) => void) => IdlTables;
  /** Runs the command; `last` is true for the command line's last command. */
  run: (ctx: Context, cmd: CommandLine, last: boolean) => void;
}

/** A database command's tables, whole: its table argument and those its records may be named through. */
function tablesOf(table: TableSchema): IdlTables {
  return Object.fromEntries(recordIdTables(table.name).map((t) => [t, 'all']));
}

function preTable(check?: (table: TableSchema, cmd: CommandLine) => void): CommandSpec['prerequisites'] {
  return (cmd, schema) => {
    const table = findTable(schema, cmd.args[0]);
    check?.(table, cmd);
    return tablesOf(table);
  };
}

/** The record, or undefined when absent and `--if-exists` was given. */
function recordArg(ctx: Context, table: TableSchema, id: string, cmd: CommandLine): IdlRow | undefined {
  const row = findRecord(ctx, table, id);
  if (!row && !cmd.options.has('--if-exists')) throw new VsctlError('VSCTL_NO_ROW', `no row "${id}" in table ${table.name}`);
  return row;
}

function tableArg(ctx: Context, cmd: CommandLine): TableSchema {
  return findTable(ctx.schema, cmd.args[0]);
}

function currentValue(ctx: Context, row: IdlRow, column: string): Datum {
  return (ctx.txn.get(row.table, row.uuid) ?? row).get(column);
}

function write(ctx: Context, row: IdlRow, column: string, value: Datum): void {
  ctx.txn.set(ctx.txn.get(row.table, row.uuid) ?? row, column, value);
}

/**
 * After a command that may have changed bridges or ports behind their
 * back, the bridge commands build their view anew (ovs-vsctl's cache
 * invalidation: after set, add, remove, clear and destroy, not create).
 */
function invalidateView(ctx: Context): void {
  ctx.view = undefined;
}

const isUuidArg = (arg: string): boolean => arg.toLowerCase() === '_uuid' || arg.toLowerCase() === '-uuid';

function cmdGet(ctx: Context, cmd: CommandLine): void {
  const id = cmd.options.get('--id');
  const mustExist = !cmd.options.has('--if-exists');
  if (id !== undefined && !mustExist) throw new VsctlError('VSCTL_USAGE', '--if-exists and --id may not be specified together');
  const table = tableArg(ctx, cmd);
  const row = recordArg(ctx, table, cmd.args[1], cmd);
  if (!row) return;
  if (typeof id === 'string') ctx.symbols.define(id, { existing: row.uuid });
  const lines: string[] = [];
  for (const arg of cmd.args.slice(2)) {
    if (isUuidArg(arg)) {
      lines.push(row.uuid);
      continue;
    }
    const { column, key } = parseColumnKeyValue(table, arg);
    ctx.txn.verify(row, column.name);
    const d = row.get(column.name);
    if (key === undefined) {
      lines.push(datumToString(d, column.type));
      continue;
    }
    if (!column.type.value) throw new VsctlError('VSCTL_NOT_A_MAP', `cannot specify key to get for non-map column ${column.name}`);
    const i = findKey(d.keys, parseAtomString(key, column.type.key, ctx.symbols.resolve));
    if (i >= 0) lines.push(atomToString(d.values![i], column.type.value));
    else if (mustExist) throw new VsctlError('VSCTL_NO_KEY', `no key "${key}" in ${table.name} record "${cmd.args[1]}" column ${column.name}`);
    else lines.push('');
  }
  for (const l of lines) ctx.out.push(`${l}\n`);
}

/**
 * A map key written by mutation, as OVS's IDL does for a partial update: an
 * insert when the column lacked the key at the time, else a replacement
 * (sent only if the value then differs).
 */
interface KeyWrite {
  value: Atom;
  replace: boolean;
}

/** Map keys set by the line's last command, per column: sent as mutations once the command is done (a later write of a key replacing an earlier one). */
type PendingKeys = Map<string, { column: ColumnSchema; keys: Map<Atom, KeyWrite> }>;

function keyWrite(ctx: Context, row: IdlRow, column: ColumnSchema, k: Atom, v: Atom): KeyWrite {
  return { value: v, replace: findKey(currentValue(ctx, row, column.name).keys, k) >= 0 };
}

/**
 * Applies one `column[:key]=value` to a row. With `pending` (the line's
 * last command), a map key is written as ovs-vsctl's IDL does then: as a
 * mutation of that key alone, not of the whole column.
 */
export function setColumn(ctx: Context, table: TableSchema, row: IdlRow, arg: string, pending?: PendingKeys): void {
  const { column, key, value } = parseColumnKeyValue(table, arg, []);
  checkMutable(ctx, row, column);
  if (key === undefined) {
    write(ctx, row, column.name, parseDatumString(value!, column.type, ctx.symbols.resolve));
    return;
  }
  if (!column.type.value) throw new VsctlError('VSCTL_NOT_A_MAP', `cannot specify key to set for non-map column ${column.name}`);
  const k = parseAtomString(key, column.type.key, ctx.symbols.resolve);
  const v = parseAtomString(value!, column.type.value, ctx.symbols.resolve);
  if (pending) {
    let p = pending.get(column.name);
    if (!p) pending.set(column.name, (p = { column, keys: new Map() }));
    p.keys.set(k, keyWrite(ctx, row, column, k, v));
    return;
  }
  ctx.txn.verify(row, column.name);
  write(ctx, row, column.name, datumUnion(makeMap([[k, v]]), currentValue(ctx, row, column.name)));
}

/** Sends key writes of a map column as one delete (of the keys replaced) and one insert mutation. */
function mutateMap(ctx: Context, row: IdlRow, column: ColumnSchema, keys: Map<Atom, KeyWrite>): void {
  const have = currentValue(ctx, row, column.name);
  const deleted: Atom[] = [];
  const inserted: Array<[Atom, Atom]> = [];
  for (const [k, { value, replace }] of keys) {
    if (replace) {
      const i = findKey(have.keys, k);
      if (i >= 0 && have.values![i] === value) continue;
      deleted.push(k);
    }
    inserted.push([k, value]);
  }
  if (deleted.length > 0) ctx.txn.mutate(row, column.name, 'delete', { keys: deleted.sort(compareAtoms) });
  if (inserted.length > 0) ctx.txn.mutate(row, column.name, 'insert', makeMap(inserted));
}

function cmdSet(ctx: Context, cmd: CommandLine, last: boolean): void {
  const table = tableArg(ctx, cmd);
  const row = recordArg(ctx, table, cmd.args[1], cmd);
  if (!row) return;
  const pending: PendingKeys | undefined = last ? new Map() : undefined;
  for (const arg of cmd.args.slice(2)) setColumn(ctx, table, row, arg, pending);
  for (const { column, keys } of pending?.values() ?? []) mutateMap(ctx, row, column, keys);
  invalidateView(ctx);
}

/** The type of one argument of add/remove: any number of elements, at least one. */
function partType(type: ColumnType): ColumnType {
  return { ...type, min: 1, max: Infinity };
}

/** add's and remove's `TABLE RECORD COLUMN`: undefined when the record is absent under --if-exists. */
function columnOfRecord(ctx: Context, cmd: CommandLine): { table: TableSchema; row: IdlRow; column: ColumnSchema; type: ColumnType } | undefined {
  const table = tableArg(ctx, cmd);
  const column = findColumn(table, cmd.args[2]);
  const row = recordArg(ctx, table, cmd.args[1], cmd);
  if (!row) return undefined;
  checkMutable(ctx, row, column);
  return { table, row, column, type: column.type };
}

function cmdAdd(ctx: Context, cmd: CommandLine, last: boolean): void {
  const target = columnOfRecord(ctx, cmd);
  if (!target) return;
  const { table, row, column, type } = target;
  // As the last command, ovs-vsctl sends the additions as mutations (the
  // server then enforces the column's maximum and mutability, and a map key
  // given again takes the new value); before that, it writes the union,
  // keeping the old value of a key given again.
  let d: Datum = last ? (type.value ? { keys: [], values: [] } : { keys: [] }) : currentValue(ctx, row, column.name);
  for (const text of cmd.args.slice(3)) d = datumUnion(d, parseDatumString(text, partType(type), ctx.symbols.resolve));
  invalidateView(ctx);
  if (last) {
    if (type.value) mutateMap(ctx, row, column, new Map(d.keys.map((k, i) => [k, keyWrite(ctx, row, column, k, d.values![i])])));
    else if (d.keys.length > 0) ctx.txn.mutate(row, column.name, 'insert', d);
    return;
  }
  if (d.keys.length > type.max) {
    throw new VsctlError('VSCTL_CONSTRAINT', `"add" operation would put ${d.keys.length} ${type.value ? 'pairs' : 'values'} in column ${column.name} of table ${table.name} but the maximum number is ${type.max}`);
  }
  ctx.txn.verify(row, column.name);
  write(ctx, row, column.name, d);
}

function cmdRemove(ctx: Context, cmd: CommandLine): void {
  const target = columnOfRecord(ctx, cmd);
  if (!target) return;
  const { table, row, column, type } = target;
  let d = currentValue(ctx, row, column.name);
  for (const text of cmd.args.slice(3)) {
    let part: Datum;
    try {
      part = parseDatumString(text, partType(type), ctx.symbols.resolve);
    } catch (err) {
      // A map's entries may also be removed by key alone.
      if (!type.value) throw err;
      part = parseDatumString(text, { key: type.key, min: 1, max: Infinity }, ctx.symbols.resolve);
    }
    d = datumDifference(d, part);
  }
  if (d.keys.length < type.min) {
    throw new VsctlError('VSCTL_CONSTRAINT', `"remove" operation would put ${d.keys.length} ${type.value ? 'pairs' : 'values'} in column ${column.name} of table ${table.name} but the minimum number is ${type.min}`);
  }
  ctx.txn.verify(row, column.name);
  write(ctx, row, column.name, d);
  invalidateView(ctx);
}

function cmdClear(ctx: Context, cmd: CommandLine): void {
  const table = tableArg(ctx, cmd);
  const row = recordArg(ctx, table, cmd.args[1], cmd);
  if (!row) return;
  for (const name of cmd.args.slice(2)) {
    const column = findColumn(table, name);
    checkMutable(ctx, row, column);
    if (column.type.min > 0) throw new VsctlError('VSCTL_CONSTRAINT', `"clear" operation cannot be applied to column ${column.name} of table ${table.name}, which is not allowed to be empty`);
    write(ctx, row, column.name, defaultDatum({ ...column.type, min: 0 }));
  }
  invalidateView(ctx);
}

/** The columns `--columns=a,b` names (commas or spaces between), in that order; or _uuid then every column. */
function listColumns(table: TableSchema, cmd: CommandLine): Array<{ name: string; type: ColumnType }> {
  const spec = cmd.options.get('--columns');
  if (typeof spec !== 'string') return [{ name: '_uuid', type: table.columns.get('_uuid')!.type }, ...table.userColumns.map((c) => ({ name: c.name, type: c.type }))];
  const names = spec.split(/[, ]/).filter((n) => n !== '');
  if (names.length === 0) throw new VsctlError('VSCTL_USAGE', 'must specify at least one column name');
  return names.map((n) => {
    if (n.toLowerCase() === '_uuid') return { name: '_uuid', type: table.columns.get('_uuid')!.type };
    const c = findColumn(table, n);
    return { name: c.name, type: c.type };
  });
}

/** list and find print a table, once the transaction is done (new rows by their real uuids). */
function printRecords(ctx: Context, table: TableSchema, cmd: CommandLine, rows: IdlRow[]): void {
  const cols = listColumns(table, cmd);
  const cells: Cell[][] = rows.map((r) => cols.map((c) => ({ datum: r.get(c.name), type: c.type })));
  ctx.table = { headings: cols.map((c) => c.name), rows: cells };
}

function cmdList(ctx: Context, cmd: CommandLine): void {
  const table = tableArg(ctx, cmd);
  let rows: IdlRow[];
  if (cmd.args.length > 1) {
    rows = [];
    for (const id of cmd.args.slice(1)) {
      const row = recordArg(ctx, table, id, cmd);
      if (row) rows.push(row);
    }
  } else {
    rows = [...ctx.txn.rows(table.name)];
  }
  printRecords(ctx, table, cmd, rows);
}

/** ovs-vsctl's order of values: by size first, then element by element. */
function compareDatums(a: Datum, b: Datum): number {
  if (a.keys.length !== b.keys.length) return a.keys.length < b.keys.length ? -1 : 1;
  for (let i = 0; i < a.keys.length; i++) {
    const c = compareAtoms(a.keys[i], b.keys[i]);
    if (c) return c;
  }
  for (let i = 0; i < (a.values?.length ?? 0); i++) {
    const c = compareAtoms(a.values![i], b.values![i]);
    if (c) return c;
  }
  return 0;
}

/** Whether every element (map pair) of `a` is in `b`. */
function includesAll(a: Datum, b: Datum): boolean {
  if (a.keys.length > b.keys.length) return false;
  return a.keys.every((k, i) => {
    const j = findKey(b.keys, k);
    return j >= 0 && (!a.values || !b.values || a.values[i] === b.values[j]);
  });
}

const RELOPS = ['=', '!=', '<', '>', '<=', '>=', '{=}', '{!=}', '{<}', '{>}', '{<=}', '{>=}', '{in}', '{not-in}'];
const SET_RELOPS = new Set(RELOPS.filter((o) => o.startsWith('{')));

function relop(a: Datum, b: Datum, op: string): boolean {
  switch (op) {
    case '=':
    case '{=}':
      return compareDatums(a, b) === 0;
    case '!=':
    case '{!=}':
      return compareDatums(a, b) !== 0;
    case '<':
      return compareDatums(a, b) < 0;
    case '>':
      return compareDatums(a, b) > 0;
    case '<=':
      return compareDatums(a, b) <= 0;
    case '>=':
      return compareDatums(a, b) >= 0;
    case '{<}':
      return b.keys.length > a.keys.length && includesAll(a, b);
    case '{>}':
      return a.keys.length > b.keys.length && includesAll(b, a);
    case '{<=}':
    case '{in}':
      return includesAll(a, b);
    case '{>=}':
      return includesAll(b, a);
    default:
      return a.keys.every((k, i) => {
        const j = findKey(b.keys, k);
        return j < 0 || (a.values !== undefined && b.values !== undefined && a.values[i] !== b.values[j]);
      });
  }
}

/** Whether a row satisfies one `column[:key]<op>value` condition of find or wait-until. */
function satisfies(ctx: Context, table: TableSchema, row: IdlRow, arg: string): boolean {
  const { column, key, op, value } = parseColumnKeyValue(table, arg, RELOPS);
  const have = row.get(column.name);
  if (key === undefined) return relop(have, parseDatumString(value!, column.type, ctx.symbols.resolve), op!);
  if (!column.type.value) throw new VsctlError('VSCTL_NOT_A_MAP', `cannot specify key to check for non-map column ${column.name}`);
  const k = parseAtomString(key, column.type.key, ctx.symbols.resolve);
  const want = parseDatumString(value!, { key: column.type.value, min: column.type.min, max: Infinity }, ctx.symbols.resolve);
  const i = findKey(have.keys, k);
  if (i < 0 && !SET_RELOPS.has(op!)) return false;
  return relop(i < 0 ? { keys: [] } : makeAtom(have.values![i]), want, op!);
}

function cmdFind(ctx: Context, cmd: CommandLine): void {
  const table = tableArg(ctx, cmd);
  const rows = [...ctx.txn.rows(table.name)].filter((r) => cmd.args.slice(1).every((arg) => satisfies(ctx, table, r, arg)));
  printRecords(ctx, table, cmd, rows);
}

function cmdCreate(ctx: Context, cmd: CommandLine): void {
  const table = tableArg(ctx, cmd);
  const id = cmd.options.get('--id');
  const uuid = typeof id === 'string' ? ctx.symbols.define(id, { root: table.isRoot }) : undefined;
  const row = ctx.txn.insert(table.name, {}, uuid);
  for (const arg of cmd.args.slice(1)) setColumn(ctx, table, row, arg);
  ctx.out.push((real) => `${real(row.uuid)}\n`);
}

function cmdDestroy(ctx: Context, cmd: CommandLine): void {
  const table = tableArg(ctx, cmd);
  const all = cmd.options.has('--all');
  if (all && cmd.args.length > 1) throw new VsctlError('VSCTL_USAGE', '--all and records argument should not be specified together');
  if (all && cmd.options.has('--if-exists')) throw new VsctlError('VSCTL_USAGE', '--all and --if-exists should not be specified together');
  if (!all && cmd.args.length < 2) {
    ctx.warn('either --all or records argument should be specified');
    return;
  }
  const rows = all ? [...ctx.txn.rows(table.name)] : cmd.args.slice(1).map((id) => recordArg(ctx, table, id, cmd));
  for (const row of rows) if (row) ctx.txn.delete(ctx.txn.get(row.table, row.uuid) ?? row);
  invalidateView(ctx);
}

function cmdWaitUntil(ctx: Context, cmd: CommandLine): void {
  const table = tableArg(ctx, cmd);
  const row = findRecord(ctx, table, cmd.args[1]);
  // Not there yet, or not yet as asked: run again after the next change.
  if (!row || !cmd.args.slice(2).every((arg) => satisfies(ctx, table, row, arg))) throw new TryAgain();
}

/** Checks `column[:key]...` arguments from index `from` (get skips `_uuid`). */
function columnArgs(from: number, skip: (arg: string) => boolean = () => false) {
  return (table: TableSchema, cmd: CommandLine): void => {
    for (const arg of cmd.args.slice(from)) if (!skip(arg)) columnOfArg(table, arg);
  };
}

/** The database commands, in ovs-vsctl's terms. */
export function dbCommands(): Record<string, CommandSpec> {
  return {
    comment: { minArgs: 0, maxArgs: Infinity, options: [], prerequisites: () => ({}), run: () => {} },
    get: { minArgs: 2, maxArgs: Infinity, options: ['--if-exists', '--id='], prerequisites: preTable(columnArgs(2, isUuidArg)), run: cmdGet },
    list: { minArgs: 1, maxArgs: Infinity, options: ['--if-exists', '--columns='], prerequisites: preTable((t, cmd) => listColumns(t, cmd)), run: cmdList },
    find: {
      minArgs: 1,
      maxArgs: Infinity,
      options: ['--columns='],
      prerequisites: preTable((t, cmd) => {
        listColumns(t, cmd);
        columnArgs(1)(t, cmd);
      }),
      run: cmdFind,
    },
    set: { minArgs: 3, maxArgs: Infinity, options: ['--if-exists'], prerequisites: preTable(columnArgs(2)), run: cmdSet },
    add: { minArgs: 4, maxArgs: Infinity, options: ['--if-exists'], prerequisites: preTable((t, cmd) => findColumn(t, cmd.args[2])), run: cmdAdd },
    remove: { minArgs: 4, maxArgs: Infinity, options: ['--if-exists'], prerequisites: preTable((t, cmd) => findColumn(t, cmd.args[2])), run: cmdRemove },
    clear: { minArgs: 3, maxArgs: Infinity, options: ['--if-exists'], prerequisites: preTable((t, cmd) => cmd.args.slice(2).forEach((c) => findColumn(t, c))), run: cmdClear },
    create: {
      minArgs: 2,
      maxArgs: Infinity,
      options: ['--id='],
      prerequisites: (cmd, schema, warn) => {
        const table = findTable(schema, cmd.args[0]);
        if (!cmd.options.has('--id') && !table.isRoot) warn(`applying "create" command to table ${table.name} without --id option will have no effect`);
        return tablesOf(table);
      },
      run: cmdCreate,
    },
    destroy: { minArgs: 1, maxArgs: Infinity, options: ['--if-exists', '--all'], prerequisites: preTable(), run: cmdDestroy },
    'wait-until': { minArgs: 2, maxArgs: Infinity, options: [], prerequisites: preTable(columnArgs(2)), run: cmdWaitUntil },
  };
}
