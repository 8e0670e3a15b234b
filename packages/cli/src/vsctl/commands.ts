// The commands of nvs-vsctl: the bridge/port/interface commands that keep
// Open_vSwitch → Bridge → Port → Interface consistent, and the generic
// database commands (get/set/add/remove/clear/list/find/create/destroy/
// wait-until) over any table. Each command reads and writes through the
// invocation's transaction, so later commands see earlier ones' changes and
// all of them commit together.
import type { IdlRow, IdlTables } from '@nvs/ovsdb/src/idl.ts';
import { TryAgain } from '@nvs/ovsdb/src/idl.ts';
import type { ColumnType, TableSchema } from '@nvs/ovsdb/src/schema.ts';
import { datumDifference, datumEquals, datumIncludes, datumUnion, defaultDatum, findKey, makeAtom, makeMap, makeSet, type Datum } from '@nvs/ovsdb/src/datum.ts';
import { VsctlError } from './errors.ts';
import type { CommandLine } from './args.ts';
import { checkValue, datumToString, atomToString, parseDatumString } from './notation.ts';
import { findColumn, findRecord, findTable, keyValueType, parseColumnArg, recordIdTables, type Context } from './context.ts';
import { renderTable, type Cell } from './output.ts';
import { show, SHOW_TABLES } from './show.ts';

export interface CommandSpec {
  /** Fewest and most arguments (Infinity: any). */
  minArgs: number;
  maxArgs: number;
  /** Command options accepted (`may-exist`, `if-exists`, …). */
  options: readonly string[];
  /** Tables the command reads or writes, for the monitor. */
  tables: (cmd: CommandLine, tableName: (name: string) => string) => IdlTables;
  run: (ctx: Context, cmd: CommandLine) => void;
}

/** The columns the bridge commands read: replicating only these keeps large databases quick. */
const BRIDGE_TABLES: IdlTables = {
  Open_vSwitch: ['bridges'],
  Bridge: ['name', 'ports', 'external_ids'],
  Port: ['name', 'interfaces'],
  Interface: ['name', 'ofport'],
};
const bridgeTables = (): IdlTables => BRIDGE_TABLES;
/** Commands that only look at bridges skip Port and Interface (thousands of rows on a big switch). */
const BRIDGE_ONLY: IdlTables = { Open_vSwitch: ['bridges'], Bridge: ['name', 'ports', 'external_ids'] };
const bridgeOnly = (): IdlTables => BRIDGE_ONLY;
const PORT_NAMES: IdlTables = { ...BRIDGE_ONLY, Port: ['name'] };
/** A database command's tables, whole: its table argument and those its records may be named through. */
const dbTables = (cmd: CommandLine, tableName: (name: string) => string): IdlTables =>
  Object.fromEntries((cmd.args.length > 0 ? recordIdTables(tableName(cmd.args[0])) : []).map((t) => [t, 'all']));

// ---------------------------------------------------------------- bridges, ports, interfaces

function names(rows: Iterable<IdlRow>): string[] {
  return [...rows].map((r) => r.string('name') ?? '').sort();
}

function refs(ctx: Context, row: IdlRow, column: string, table: string): IdlRow[] {
  // Rows are snapshots: read the transaction's current version, which
  // includes what earlier commands of this invocation changed.
  const current = ctx.txn.get(row.table, row.uuid) ?? row;
  const out: IdlRow[] = [];
  for (const uuid of current.set(column)) {
    const r = ctx.txn.get(table, uuid as string);
    if (r) out.push(r);
  }
  return out;
}

function bridges(ctx: Context): IdlRow[] {
  ctx.txn.verify(ctx.ovs, 'bridges');
  return refs(ctx, ctx.ovs, 'bridges', 'Bridge');
}

function findBridge(ctx: Context, name: string): IdlRow | undefined {
  return bridges(ctx).find((b) => b.string('name') === name);
}

function mustFindBridge(ctx: Context, name: string): IdlRow {
  const br = findBridge(ctx, name);
  if (!br) throw new VsctlError('VSCTL_NO_BRIDGE', `no bridge named ${name}`);
  return br;
}

function ports(ctx: Context, br: IdlRow): IdlRow[] {
  ctx.txn.verify(br, 'ports');
  return refs(ctx, br, 'ports', 'Port');
}

/** The port named `name` and its bridge, over all bridges. */
function findPort(ctx: Context, name: string): { port: IdlRow; bridge: IdlRow } | undefined {
  for (const bridge of bridges(ctx)) {
    const port = ports(ctx, bridge).find((p) => p.string('name') === name);
    if (port) return { port, bridge };
  }
  return undefined;
}

/** The interface named `name`, its port and bridge. */
function findIface(ctx: Context, name: string): { iface: IdlRow; port: IdlRow; bridge: IdlRow } | undefined {
  for (const bridge of bridges(ctx)) {
    for (const port of ports(ctx, bridge)) {
      const iface = refs(ctx, port, 'interfaces', 'Interface').find((i) => i.string('name') === name);
      if (iface) return { iface, port, bridge };
    }
  }
  return undefined;
}

function addRef(ctx: Context, row: IdlRow, column: string, uuid: string): void {
  const cur = ctx.txn.get(row.table, row.uuid)!;
  ctx.txn.set(cur, column, datumUnion(cur.get(column), makeAtom(uuid)));
}

function removeRef(ctx: Context, row: IdlRow, column: string, uuid: string): void {
  const cur = ctx.txn.get(row.table, row.uuid)!;
  ctx.txn.set(cur, column, datumDifference(cur.get(column), makeAtom(uuid)));
}

function deletePort(ctx: Context, bridge: IdlRow, port: IdlRow): void {
  for (const iface of refs(ctx, port, 'interfaces', 'Interface')) ctx.txn.delete(iface);
  removeRef(ctx, bridge, 'ports', port.uuid);
  ctx.txn.delete(port);
}

function addBr(ctx: Context, cmd: CommandLine): void {
  const [name, parent] = cmd.args;
  if (findBridge(ctx, name)) {
    if (cmd.options.has('may-exist') && parent === undefined) return;
    throw new VsctlError('VSCTL_EXISTS', `cannot create a bridge named ${name} because a bridge named ${name} already exists`);
  }
  if (parent !== undefined) throw new VsctlError('VSCTL_NOT_SUPPORTED', `cannot create fake bridge ${name}: nvs does not support fake (VLAN) bridges`);
  const p = findPort(ctx, name);
  if (p) throw new VsctlError('VSCTL_EXISTS', `cannot create a bridge named ${name} because a port named ${name} already exists on bridge ${p.bridge.string('name')}`);
  const i = findIface(ctx, name);
  if (i) throw new VsctlError('VSCTL_EXISTS', `cannot create a bridge named ${name} because an interface named ${name} already exists on bridge ${i.bridge.string('name')}`);
  const iface = ctx.txn.insert('Interface', { name: makeAtom(name), type: makeAtom('internal') });
  const port = ctx.txn.insert('Port', { name: makeAtom(name), interfaces: makeAtom(iface.uuid) });
  const br = ctx.txn.insert('Bridge', { name: makeAtom(name), ports: makeAtom(port.uuid) });
  addRef(ctx, ctx.ovs, 'bridges', br.uuid);
}

function delBr(ctx: Context, cmd: CommandLine): void {
  const br = findBridge(ctx, cmd.args[0]);
  if (!br) {
    if (cmd.options.has('if-exists')) return;
    throw new VsctlError('VSCTL_NO_BRIDGE', `no bridge named ${cmd.args[0]}`);
  }
  for (const port of ports(ctx, br)) deletePort(ctx, br, port);
  removeRef(ctx, ctx.ovs, 'bridges', br.uuid);
  ctx.txn.delete(ctx.txn.get('Bridge', br.uuid)!);
}

/** Applies `column[:key]=value` settings (add-port's trailing arguments, set's arguments) to a row. */
function applySettings(ctx: Context, table: TableSchema, row: IdlRow, settings: readonly string[]): void {
  for (const arg of settings) {
    // Immutable columns can be given a value only when the row is created.
    const { column, key, value } = parseColumnArg(ctx, table, arg, ['='], true, !ctx.txn.isNew(row.uuid));
    const cur = ctx.txn.get(row.table, row.uuid)!;
    if (key !== undefined) {
      const merged = datumUnion(makeMap([[key, value!.keys[0]]]), cur.get(column.name));
      checkValue(merged, column.type, `${column.name} column`);
      ctx.txn.set(cur, column.name, merged);
    } else {
      checkValue(value!, column.type, `${column.name} column`);
      ctx.txn.set(cur, column.name, value!);
    }
  }
}

function addPort(ctx: Context, cmd: CommandLine, ifaceNames: readonly string[], settings: readonly string[]): void {
  const [brName, portName] = cmd.args;
  const br = mustFindBridge(ctx, brName);
  const existing = findPort(ctx, portName);
  if (existing) {
    const on = existing.bridge.string('name');
    if (!cmd.options.has('may-exist')) throw new VsctlError('VSCTL_EXISTS', `cannot create a port named ${portName} because a port named ${portName} already exists on bridge ${on}`);
    if (on !== brName) throw new VsctlError('VSCTL_EXISTS', `"--may-exist ${cmd.name} ${cmd.args.join(' ')}" but ${portName} is actually attached to bridge ${on}`);
    const have = names(refs(ctx, existing.port, 'interfaces', 'Interface'));
    const want = [...ifaceNames].sort();
    if (have.join('\0') !== want.join('\0')) {
      throw new VsctlError('VSCTL_EXISTS', `"--may-exist ${cmd.name} ${cmd.args.join(' ')}" but ${portName} actually has interface(s) ${have.join(', ')}`);
    }
    return;
  }
  const ifaces: IdlRow[] = [];
  for (const n of ifaceNames) {
    const other = findIface(ctx, n);
    if (other) throw new VsctlError('VSCTL_EXISTS', `cannot create an interface named ${n} because an interface named ${n} already exists on bridge ${other.bridge.string('name')}`);
    ifaces.push(ctx.txn.insert('Interface', { name: makeAtom(n) }));
  }
  const port = ctx.txn.insert('Port', { name: makeAtom(portName), interfaces: makeSet(ifaces.map((i) => i.uuid)) });
  if (cmd.options.has('fake-iface')) ctx.txn.set(port, 'bond_fake_iface', makeAtom(true));
  applySettings(ctx, ctx.schema.tables.get('Port')!, port, settings);
  addRef(ctx, br, 'ports', port.uuid);
}

function delPort(ctx: Context, cmd: CommandLine): void {
  const [brName, target] = cmd.args.length === 2 ? cmd.args : [undefined, cmd.args[0]];
  let found = findPort(ctx, target);
  if (!found && cmd.options.has('with-iface')) {
    const i = findIface(ctx, target);
    if (i) found = { port: i.port, bridge: i.bridge };
  }
  if (!found) {
    if (cmd.options.has('if-exists')) return;
    throw new VsctlError('VSCTL_NO_PORT', `no port named ${target}`);
  }
  const on = found.bridge.string('name');
  if (brName !== undefined) {
    mustFindBridge(ctx, brName);
    if (on !== brName) throw new VsctlError('VSCTL_NO_PORT', `bridge ${brName} does not have a port ${target}`);
  }
  if (found.port.string('name') === on) {
    throw new VsctlError('VSCTL_LOCAL_PORT', `cannot delete port ${target} because it is the local port for bridge ${on} (deleting this port requires deleting the entire bridge)`);
  }
  deletePort(ctx, found.bridge, found.port);
}

function print(ctx: Context, lines: string[]): void {
  if (lines.length > 0) ctx.out.push(lines.join('\n') + '\n');
}

function brSetExternalId(ctx: Context, cmd: CommandLine): void {
  const [name, key, value] = cmd.args;
  const br = mustFindBridge(ctx, name);
  ctx.txn.verify(br, 'external_ids');
  const ids = br.get('external_ids');
  const without = datumDifference(ids, makeSet([key]));
  ctx.txn.set(br, 'external_ids', value === undefined ? without : datumUnion(makeMap([[key, value]]), without));
}

function brGetExternalId(ctx: Context, cmd: CommandLine): void {
  const [name, key] = cmd.args;
  const br = mustFindBridge(ctx, name);
  ctx.txn.verify(br, 'external_ids');
  const ids = br.map('external_ids');
  if (key === undefined) print(ctx, [...ids].map(([k, v]) => `${k}=${v}`));
  else if (ids.has(key)) print(ctx, [String(ids.get(key))]);
}

// ---------------------------------------------------------------- controllers, fail mode, managers

const CONTROLLER_TABLES: IdlTables = { ...BRIDGE_TABLES, Bridge: ['name', 'ports', 'controller', 'fail_mode'], Controller: ['target'] };
const MANAGER_TABLES: IdlTables = { Open_vSwitch: ['manager_options'], Manager: ['target'] };

/** Replaces the rows `owner.column` points at with new rows of `table`, one per target. */
function replaceTargets(ctx: Context, owner: IdlRow, column: string, table: string, targets: readonly string[]): void {
  ctx.txn.verify(owner, column);
  for (const old of refs(ctx, owner, column, table)) ctx.txn.delete(old);
  const rows = targets.map((t) => ctx.txn.insert(table, { target: makeAtom(t) }));
  ctx.txn.set(ctx.txn.get(owner.table, owner.uuid)!, column, makeSet(rows.map((r) => r.uuid)));
}

function printTargets(ctx: Context, owner: IdlRow, column: string, table: string): void {
  ctx.txn.verify(owner, column);
  print(ctx, refs(ctx, owner, column, table).map((r) => r.string('target') ?? '').sort());
}

function setFailMode(ctx: Context, cmd: CommandLine): void {
  const [name, mode] = cmd.args;
  const br = mustFindBridge(ctx, name);
  if (mode !== 'standalone' && mode !== 'secure') throw new VsctlError('VSCTL_BAD_VALUE', 'fail-mode must be "standalone" or "secure"');
  ctx.txn.set(br, 'fail_mode', makeAtom(mode));
}

// ---------------------------------------------------------------- database commands

function tableArg(ctx: Context, name: string): TableSchema {
  return findTable(ctx.schema, name);
}

/** The record, or undefined when absent and `--if-exists` was given. */
function recordArg(ctx: Context, table: TableSchema, id: string, cmd: CommandLine): IdlRow | undefined {
  const row = findRecord(ctx, table, id);
  if (!row && !cmd.options.has('if-exists')) throw new VsctlError('VSCTL_NO_ROW', `no row "${id}" in table ${table.name}`);
  return row;
}

function cmdGet(ctx: Context, cmd: CommandLine): void {
  const table = tableArg(ctx, cmd.args[0]);
  const row = recordArg(ctx, table, cmd.args[1], cmd);
  const id = cmd.options.get('id');
  if (!row) return;
  if (typeof id === 'string') ctx.symbols.define(id, row.uuid);
  const lines: string[] = [];
  for (const arg of cmd.args.slice(2)) {
    const { column, key } = parseColumnArg(ctx, table, arg, [], false);
    if (column.name !== '_uuid') ctx.txn.verify(row, column.name);
    const d = row.get(column.name);
    if (key === undefined) {
      lines.push(datumToString(d, column.type));
      continue;
    }
    const i = findKey(d.keys, key);
    if (i < 0) {
      if (cmd.options.has('if-exists')) {
        lines.push('');
        continue;
      }
      throw new VsctlError('VSCTL_NO_KEY', `no key "${String(key)}" in ${table.name} record "${cmd.args[1]}" column ${column.name}`);
    }
    lines.push(atomToString(d.values![i], column.type.value!));
  }
  print(ctx, lines);
}

function cmdSet(ctx: Context, cmd: CommandLine): void {
  const table = tableArg(ctx, cmd.args[0]);
  const row = recordArg(ctx, table, cmd.args[1], cmd);
  if (row) applySettings(ctx, table, row, cmd.args.slice(2));
}

function cmdAddRemove(ctx: Context, cmd: CommandLine, remove: boolean): void {
  const table = tableArg(ctx, cmd.args[0]);
  const row = recordArg(ctx, table, cmd.args[1], cmd);
  if (!row) return;
  const column = findColumn(table, cmd.args[2], true);
  const type = column.type;
  let d = ctx.txn.get(row.table, row.uuid)!.get(column.name);
  for (const text of cmd.args.slice(3)) {
    let part: Datum;
    if (remove && type.value) {
      // A map's entries are removed by key=value or by key alone.
      try {
        part = parseDatumString(text, type, ctx.symbols.resolve, true);
      } catch {
        part = parseDatumString(text, { key: type.key, min: 0, max: Infinity }, ctx.symbols.resolve, true);
      }
    } else {
      part = parseDatumString(text, type, ctx.symbols.resolve, true);
    }
    d = remove ? datumDifference(d, part) : datumUnion(d, part);
  }
  checkValue(d, type, `"${column.name}" column`);
  ctx.txn.set(ctx.txn.get(row.table, row.uuid)!, column.name, d);
}

function cmdClear(ctx: Context, cmd: CommandLine): void {
  const table = tableArg(ctx, cmd.args[0]);
  const row = recordArg(ctx, table, cmd.args[1], cmd);
  if (!row) return;
  for (const name of cmd.args.slice(2)) {
    const column = findColumn(table, name, true);
    if (column.type.min > 0) throw new VsctlError('VSCTL_CONSTRAINT', `"clear" operation cannot be applied to column ${column.name} of table ${table.name}, which is not allowed to be empty`);
    ctx.txn.set(ctx.txn.get(row.table, row.uuid)!, column.name, defaultDatum(column.type));
  }
}

/** The columns to print: `--columns=a,b` in that order, or _uuid then every column by name. */
function listColumns(table: TableSchema, cmd: CommandLine): Array<{ name: string; type: ColumnType }> {
  const spec = cmd.options.get('columns');
  if (typeof spec === 'string') {
    return spec.split(',').map((n) => {
      const c = findColumn(table, n.trim());
      return { name: c.name, type: c.type };
    });
  }
  const cols = [...table.userColumns].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return [{ name: '_uuid', type: table.columns.get('_uuid')!.type }, ...cols.map((c) => ({ name: c.name, type: c.type }))];
}

function printRecords(ctx: Context, table: TableSchema, cmd: CommandLine, rows: IdlRow[]): void {
  const cols = listColumns(table, cmd);
  const cells: Cell[][] = rows.map((r) => cols.map((c) => ({ datum: r.get(c.name), type: c.type })));
  for (const r of rows) for (const c of cols) if (c.name !== '_uuid') ctx.txn.verify(r, c.name);
  // Inserted rows print after commit, when their real uuid is known.
  if (rows.some((r) => ctx.txn.isNew(r.uuid))) {
    ctx.out.push((real) => renderTable(cols.map((c) => c.name), cells.map((row, i) => row.map((cell, j) => (cols[j].name === '_uuid' ? { ...cell, datum: makeAtom(real(rows[i].uuid)) } : cell))), ctx.style));
  } else {
    ctx.out.push(renderTable(cols.map((c) => c.name), cells, ctx.style));
  }
}

function cmdList(ctx: Context, cmd: CommandLine): void {
  const table = tableArg(ctx, cmd.args[0]);
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

/** Whether a row's value satisfies `op value` (find and wait-until conditions). */
function compare(have: Datum, op: string, want: Datum): boolean {
  switch (op) {
    case '=':
    case '{=}':
      return datumEquals(have, want);
    case '!=':
    case '{!=}':
      return !datumEquals(have, want);
    case '{<=}':
      return datumIncludes(want, have);
    case '{>=}':
      return datumIncludes(have, want);
    case '{<}':
      return datumIncludes(want, have) && !datumEquals(have, want);
    case '{>}':
      return datumIncludes(have, want) && !datumEquals(have, want);
    default: {
      // < <= > >= compare single numbers; anything else does not match.
      if (have.keys.length !== 1 || want.keys.length !== 1) return false;
      const a = have.keys[0];
      const b = want.keys[0];
      if (typeof a !== 'number' || typeof b !== 'number') return false;
      return op === '<' ? a < b : op === '<=' ? a <= b : op === '>' ? a > b : a >= b;
    }
  }
}

const FIND_OPS = ['=', '!=', '<', '>', '<=', '>=', '{=}', '{!=}', '{<}', '{>}', '{<=}', '{>=}'];

function matches(ctx: Context, table: TableSchema, row: IdlRow, conditions: readonly string[]): boolean {
  for (const arg of conditions) {
    const { column, key, op, value } = parseColumnArg(ctx, table, arg, FIND_OPS, true);
    let have = row.get(column.name);
    if (key !== undefined) {
      const i = findKey(have.keys, key);
      have = i < 0 ? defaultDatum(keyValueType(column.type)) : makeAtom(have.values![i]);
    }
    if (!compare(have, op!, value!)) return false;
  }
  return true;
}

function cmdFind(ctx: Context, cmd: CommandLine): void {
  const table = tableArg(ctx, cmd.args[0]);
  const rows = [...ctx.txn.rows(table.name)].filter((r) => matches(ctx, table, r, cmd.args.slice(1)));
  printRecords(ctx, table, cmd, rows);
}

function cmdCreate(ctx: Context, cmd: CommandLine): void {
  const table = tableArg(ctx, cmd.args[0]);
  const id = cmd.options.get('id');
  const uuid = typeof id === 'string' ? ctx.symbols.define(id) : undefined;
  if (uuid === undefined && !table.isRoot) ctx.warn(`applying "create" command to table ${table.name} without --id option will have no effect`);
  const row = ctx.txn.insert(table.name, {}, uuid);
  applySettings(ctx, table, row, cmd.args.slice(1));
  ctx.out.push((real) => `${real(row.uuid)}\n`);
}

function cmdDestroy(ctx: Context, cmd: CommandLine): void {
  const table = tableArg(ctx, cmd.args[0]);
  if (cmd.options.has('all')) {
    if (cmd.args.length > 1) throw new VsctlError('VSCTL_USAGE', '--all and records argument should not be specified together');
    for (const row of [...ctx.txn.rows(table.name)]) ctx.txn.delete(row);
    return;
  }
  if (cmd.args.length < 2) throw new VsctlError('VSCTL_USAGE', 'either --all or records argument should be specified');
  for (const id of cmd.args.slice(1)) {
    const row = recordArg(ctx, table, id, cmd);
    if (row) ctx.txn.delete(row);
  }
}

function cmdWaitUntil(ctx: Context, cmd: CommandLine): void {
  const table = tableArg(ctx, cmd.args[0]);
  const row = findRecord(ctx, table, cmd.args[1]);
  // Not there yet, or not yet as asked: run again after the next change.
  if (!row || !matches(ctx, table, row, cmd.args.slice(2))) throw new TryAgain();
}

// ---------------------------------------------------------------- the table

const ifExists = ['if-exists'];

export const COMMANDS: Record<string, CommandSpec> = {
  init: { minArgs: 0, maxArgs: 0, options: [], tables: () => ({}), run: () => {} },
  show: { minArgs: 0, maxArgs: 0, options: [], tables: () => SHOW_TABLES, run: (ctx) => ctx.out.push(show(ctx)) },
  'add-br': { minArgs: 1, maxArgs: 3, options: ['may-exist'], tables: bridgeTables, run: addBr },
  'del-br': { minArgs: 1, maxArgs: 1, options: ifExists, tables: bridgeTables, run: delBr },
  'list-br': { minArgs: 0, maxArgs: 0, options: [], tables: bridgeOnly, run: (ctx) => print(ctx, names(bridges(ctx))) },
  'br-exists': {
    minArgs: 1,
    maxArgs: 1,
    options: [],
    tables: bridgeOnly,
    run: (ctx, cmd) => {
      if (!findBridge(ctx, cmd.args[0])) throw new VsctlError('VSCTL_NO_BRIDGE', '', 2);
    },
  },
  'br-to-vlan': { minArgs: 1, maxArgs: 1, options: [], tables: bridgeOnly, run: (ctx, cmd) => (mustFindBridge(ctx, cmd.args[0]), print(ctx, ['0'])) },
  'br-to-parent': { minArgs: 1, maxArgs: 1, options: [], tables: bridgeOnly, run: (ctx, cmd) => print(ctx, [mustFindBridge(ctx, cmd.args[0]).string('name')!]) },
  'br-set-external-id': { minArgs: 2, maxArgs: 3, options: [], tables: bridgeOnly, run: brSetExternalId },
  'br-get-external-id': { minArgs: 1, maxArgs: 2, options: [], tables: bridgeOnly, run: brGetExternalId },
  'list-ports': {
    minArgs: 1,
    maxArgs: 1,
    options: [],
    tables: () => PORT_NAMES,
    run: (ctx, cmd) => {
      const br = mustFindBridge(ctx, cmd.args[0]);
      print(ctx, names(ports(ctx, br)).filter((n) => n !== cmd.args[0]));
    },
  },
  'add-port': {
    minArgs: 2,
    maxArgs: Infinity,
    options: ['may-exist'],
    tables: bridgeTables,
    run: (ctx, cmd) => addPort(ctx, cmd, [cmd.args[1]], cmd.args.slice(2)),
  },
  'add-bond': {
    minArgs: 4,
    maxArgs: Infinity,
    options: ['may-exist', 'fake-iface'],
    tables: bridgeTables,
    run: (ctx, cmd) => {
      const rest = cmd.args.slice(2);
      const ifaces = rest.filter((a) => !a.includes('='));
      if (ifaces.length < 2) throw new VsctlError('VSCTL_USAGE', `add-bond: a bond needs at least two interfaces`);
      addPort(ctx, cmd, ifaces, rest.filter((a) => a.includes('=')));
    },
  },
  'del-port': { minArgs: 1, maxArgs: 2, options: ['if-exists', 'with-iface'], tables: bridgeTables, run: delPort },
  'port-to-br': {
    minArgs: 1,
    maxArgs: 1,
    options: [],
    tables: bridgeTables,
    run: (ctx, cmd) => {
      const p = findPort(ctx, cmd.args[0]);
      if (!p) throw new VsctlError('VSCTL_NO_PORT', `no port named ${cmd.args[0]}`);
      print(ctx, [p.bridge.string('name')!]);
    },
  },
  'list-ifaces': {
    minArgs: 1,
    maxArgs: 1,
    options: [],
    tables: bridgeTables,
    run: (ctx, cmd) => {
      const br = mustFindBridge(ctx, cmd.args[0]);
      const ifaces = ports(ctx, br).flatMap((p) => refs(ctx, p, 'interfaces', 'Interface'));
      print(ctx, names(ifaces).filter((n) => n !== cmd.args[0]));
    },
  },
  'iface-to-br': {
    minArgs: 1,
    maxArgs: 1,
    options: [],
    tables: bridgeTables,
    run: (ctx, cmd) => {
      const i = findIface(ctx, cmd.args[0]);
      if (!i) throw new VsctlError('VSCTL_NO_IFACE', `no interface named ${cmd.args[0]}`);
      print(ctx, [i.bridge.string('name')!]);
    },
  },
  'set-controller': {
    minArgs: 1,
    maxArgs: Infinity,
    options: [],
    tables: () => CONTROLLER_TABLES,
    run: (ctx, cmd) => replaceTargets(ctx, mustFindBridge(ctx, cmd.args[0]), 'controller', 'Controller', cmd.args.slice(1)),
  },
  'del-controller': { minArgs: 1, maxArgs: 1, options: [], tables: () => CONTROLLER_TABLES, run: (ctx, cmd) => replaceTargets(ctx, mustFindBridge(ctx, cmd.args[0]), 'controller', 'Controller', []) },
  'get-controller': { minArgs: 1, maxArgs: 1, options: [], tables: () => CONTROLLER_TABLES, run: (ctx, cmd) => printTargets(ctx, mustFindBridge(ctx, cmd.args[0]), 'controller', 'Controller') },
  'set-fail-mode': { minArgs: 2, maxArgs: 2, options: [], tables: () => CONTROLLER_TABLES, run: setFailMode },
  'del-fail-mode': { minArgs: 1, maxArgs: 1, options: [], tables: () => CONTROLLER_TABLES, run: (ctx, cmd) => ctx.txn.set(mustFindBridge(ctx, cmd.args[0]), 'fail_mode', makeSet([])) },
  'get-fail-mode': {
    minArgs: 1,
    maxArgs: 1,
    options: [],
    tables: () => CONTROLLER_TABLES,
    run: (ctx, cmd) => {
      const br = mustFindBridge(ctx, cmd.args[0]);
      ctx.txn.verify(br, 'fail_mode');
      const mode = br.string('fail_mode');
      if (mode !== undefined) print(ctx, [mode]);
    },
  },
  'set-manager': { minArgs: 0, maxArgs: Infinity, options: [], tables: () => MANAGER_TABLES, run: (ctx, cmd) => replaceTargets(ctx, ctx.ovs, 'manager_options', 'Manager', cmd.args) },
  'del-manager': { minArgs: 0, maxArgs: 0, options: [], tables: () => MANAGER_TABLES, run: (ctx) => replaceTargets(ctx, ctx.ovs, 'manager_options', 'Manager', []) },
  'get-manager': { minArgs: 0, maxArgs: 0, options: [], tables: () => MANAGER_TABLES, run: (ctx) => printTargets(ctx, ctx.ovs, 'manager_options', 'Manager') },
  get: { minArgs: 2, maxArgs: Infinity, options: ['if-exists', 'id'], tables: dbTables, run: cmdGet },
  set: { minArgs: 3, maxArgs: Infinity, options: ifExists, tables: dbTables, run: cmdSet },
  add: { minArgs: 4, maxArgs: Infinity, options: ifExists, tables: dbTables, run: (ctx, cmd) => cmdAddRemove(ctx, cmd, false) },
  remove: { minArgs: 4, maxArgs: Infinity, options: ifExists, tables: dbTables, run: (ctx, cmd) => cmdAddRemove(ctx, cmd, true) },
  clear: { minArgs: 3, maxArgs: Infinity, options: ifExists, tables: dbTables, run: cmdClear },
  list: { minArgs: 1, maxArgs: Infinity, options: ['if-exists', 'columns'], tables: dbTables, run: cmdList },
  find: { minArgs: 1, maxArgs: Infinity, options: ['columns'], tables: dbTables, run: cmdFind },
  create: { minArgs: 2, maxArgs: Infinity, options: ['id'], tables: dbTables, run: cmdCreate },
  destroy: { minArgs: 1, maxArgs: Infinity, options: ['if-exists', 'all'], tables: dbTables, run: cmdDestroy },
  'wait-until': { minArgs: 2, maxArgs: Infinity, options: [], tables: dbTables, run: cmdWaitUntil },
};

/** Checks a command's name, argument count and options before anything is sent. */
export function checkCommand(cmd: CommandLine): CommandSpec {
  const spec = COMMANDS[cmd.name];
  if (!spec) throw new VsctlError('VSCTL_USAGE', `unknown command '${cmd.name}'; use --help for help`);
  if (cmd.args.length < spec.minArgs) throw new VsctlError('VSCTL_USAGE', `'${cmd.name}' command requires at least ${spec.minArgs} arguments`);
  if (cmd.args.length > spec.maxArgs) throw new VsctlError('VSCTL_USAGE', `'${cmd.name}' command takes at most ${spec.maxArgs} arguments`);
  for (const opt of cmd.options.keys()) {
    if (!spec.options.includes(opt)) throw new VsctlError('VSCTL_USAGE', `'${cmd.name}' command has no '--${opt}' option`);
  }
  return spec;
}

