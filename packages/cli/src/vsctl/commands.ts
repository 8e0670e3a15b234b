// The commands of nvs-vsctl: the bridge/port/interface commands that keep
// Open_vSwitch → Bridge → Port → Interface consistent (fake VLAN bridges
// included), the controller, fail-mode and manager commands, and the
// database commands (db-commands.ts). Each command reads and writes through
// the invocation's transaction, so later commands see earlier ones' changes
// and all of them commit together.
import { datumDifference, datumUnion, makeAtom, makeMap, makeSet, type IdlRow, type IdlTables } from '@nvs/ovsdb';
import { VsctlError } from './errors.ts';
import type { CommandLine } from './args.ts';
import type { Context } from './context.ts';
import { dbCommands, setColumn, type CommandSpec } from './db-commands.ts';
import { show, SHOW_TABLES } from './show.ts';
import {
  addIfaceToView,
  addPortToView,
  addRef,
  bridgeRow,
  checkConflicts,
  current,
  deleteBridge,
  deletePort,
  findBridge,
  findIface,
  findPort,
  findRealBridge,
  switchView,
  verifyPorts,
  type VsctlBridge,
} from './switch.ts';

export type { CommandSpec } from './db-commands.ts';

/** The columns the bridge commands read (ovs-vsctl's pre_get_info): replicating only these keeps large databases quick. */
const BRIDGE_TABLES: IdlTables = {
  Open_vSwitch: ['bridges'],
  Bridge: ['name', 'ports', 'external_ids', 'controller', 'fail_mode'],
  Port: ['name', 'fake_bridge', 'tag', 'interfaces', 'external_ids'],
  Interface: ['name', 'ofport', 'error'],
  Flow_Sample_Collector_Set: ['bridge'],
};
const bridgeTables = (): IdlTables => BRIDGE_TABLES;
/** Commands that only look at bridges (real and fake) skip interfaces: thousands of rows on a big switch. */
const BRIDGE_ONLY: IdlTables = { Open_vSwitch: ['bridges'], Bridge: ['name', 'ports', 'external_ids'], Port: ['name', 'fake_bridge', 'tag', 'external_ids'] };
const bridgeOnly = (): IdlTables => BRIDGE_ONLY;

function print(ctx: Context, lines: string[]): void {
  for (const l of lines) ctx.out.push(`${l}\n`);
}

/** Sorted as ovs-vsctl sorts names (byte order). */
function sorted(names: string[]): string[] {
  return names.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

/** The command as ovs-vsctl repeats it in an error: options, then words, each quoted when it holds spaces or quotes. */
function commandString(cmd: CommandLine): string {
  const words = [...cmd.options.keys(), cmd.name, ...cmd.args];
  return words.map((w) => (/[ \t\r\n\v\\'"]/.test(w) ? `"${w.replace(/[\\"]/g, '\\$&')}"` : w)).join(' ');
}

function addBr(ctx: Context, cmd: CommandLine): void {
  const [name, parentName, vlanText] = cmd.args;
  if (name === '') throw new VsctlError('VSCTL_BAD_ARG', 'bridge name must not be empty string');
  if (cmd.args.length === 2) throw new VsctlError('VSCTL_USAGE', "'add-br' command takes exactly 1 or 3 arguments");
  // The VLAN is read as C's atoi reads it: leading digits, 0 if none.
  const vlan = vlanText === undefined ? 0 : Number(/^\s*[+-]?\d+/.exec(vlanText)?.[0] ?? 0);
  if (vlan < 0 || vlan > 4095) throw new VsctlError('VSCTL_BAD_VALUE', 'add-br: vlan must be between 0 and 4095');
  if (cmd.options.has('--may-exist')) {
    const br = findBridge(ctx, name, false);
    if (br) {
      if (parentName === undefined) {
        if (br.parent) throw new VsctlError('VSCTL_EXISTS', `"--may-exist add-br ${name}" but ${name} is a VLAN bridge for VLAN ${br.vlan}`);
      } else if (!br.parent) {
        throw new VsctlError('VSCTL_EXISTS', `"--may-exist add-br ${name} ${parentName} ${vlan}" but ${name} is not a VLAN bridge`);
      } else if (br.parent.name !== parentName) {
        throw new VsctlError('VSCTL_EXISTS', `"--may-exist add-br ${name} ${parentName} ${vlan}" but ${name} has the wrong parent ${br.parent.name}`);
      } else if (br.vlan !== vlan) {
        throw new VsctlError('VSCTL_EXISTS', `"--may-exist add-br ${name} ${parentName} ${vlan}" but ${name} is a VLAN bridge for the wrong VLAN ${br.vlan}`);
      }
      return;
    }
  }
  checkConflicts(ctx, name, `cannot create a bridge named ${name}`);
  const iface = ctx.txn.insert('Interface', { name: makeAtom(name), type: makeAtom('internal') });
  if (parentName === undefined) {
    const port = ctx.txn.insert('Port', { name: makeAtom(name), interfaces: makeAtom(iface.uuid) });
    const br = ctx.txn.insert('Bridge', { name: makeAtom(name), ports: makeAtom(port.uuid) });
    addRef(ctx, ctx.ovs, 'bridges', br.uuid);
  } else {
    const parent = findBridge(ctx, parentName, false);
    if (parent?.parent) throw new VsctlError('VSCTL_FAKE_BRIDGE', 'cannot create bridge with fake bridge as parent');
    if (!parent) throw new VsctlError('VSCTL_NO_BRIDGE', `parent bridge ${parentName} does not exist`);
    const conflict = parent.children.get(vlan);
    if (conflict) throw new VsctlError('VSCTL_EXISTS', `bridge ${parentName} already has a child VLAN bridge ${conflict.name} on VLAN ${vlan}`);
    const port = ctx.txn.insert('Port', { name: makeAtom(name), interfaces: makeAtom(iface.uuid), fake_bridge: makeAtom(true), tag: makeAtom(vlan) });
    addRef(ctx, parent.row!, 'ports', port.uuid);
  }
  ctx.view = undefined;
}

function delBr(ctx: Context, cmd: CommandLine): void {
  const br = findBridge(ctx, cmd.args[0], !cmd.options.has('--if-exists'));
  if (br) deleteBridge(ctx, switchView(ctx), br);
}

function listBr(ctx: Context, cmd: CommandLine): void {
  let real = cmd.options.has('--real');
  let fake = cmd.options.has('--fake');
  if (!real && !fake) real = fake = true;
  const names = [...switchView(ctx).bridges.values()].filter((b) => (b.parent ? fake : real)).map((b) => b.name);
  print(ctx, sorted(names));
}

/** A fake bridge keeps its external ids on its port, under `fake-bridge-<key>`. */
function externalIdsOf(ctx: Context, br: VsctlBridge): { row: IdlRow; prefix: string } {
  if (br.row) return { row: current(ctx, br.row), prefix: '' };
  return { row: current(ctx, switchView(ctx).ports.get(br.name)!.row), prefix: 'fake-bridge-' };
}

function brSetExternalId(ctx: Context, cmd: CommandLine): void {
  const [name, key, value] = cmd.args;
  const { row, prefix } = externalIdsOf(ctx, findBridge(ctx, name, true)!);
  const ids = row.get('external_ids');
  const without = datumDifference(ids, makeSet([prefix + key]));
  ctx.txn.verify(row, 'external_ids');
  ctx.txn.set(row, 'external_ids', value === undefined ? without : datumUnion(makeMap([[prefix + key, value]]), without));
}

function brGetExternalId(ctx: Context, cmd: CommandLine): void {
  const [name, key] = cmd.args;
  const { row, prefix } = externalIdsOf(ctx, findBridge(ctx, name, true)!);
  ctx.txn.verify(row, 'external_ids');
  const ids = row.map('external_ids');
  if (key !== undefined) {
    const v = ids.get(prefix + key);
    if (v !== undefined) print(ctx, [String(v)]);
    return;
  }
  const keys = sorted([...ids.keys()].map(String).filter((k) => k.startsWith(prefix)));
  print(ctx, keys.map((k) => `${k.slice(prefix.length)}=${String(ids.get(k))}`));
}

function listPorts(ctx: Context, cmd: CommandLine): void {
  const br = findBridge(ctx, cmd.args[0], true)!;
  ctx.txn.verify(current(ctx, bridgeRow(br)), 'ports');
  print(ctx, sorted(br.ports.map((p) => p.name).filter((n) => n !== br.name)));
}

function addPort(ctx: Context, cmd: CommandLine, ifaceNames: readonly string[], settings: readonly string[]): void {
  const [brName, portName] = cmd.args;
  if (portName === '') throw new VsctlError('VSCTL_BAD_ARG', 'port name must not be empty string');
  if (ifaceNames.includes('')) throw new VsctlError('VSCTL_BAD_ARG', 'interface name must not be empty string');
  if (cmd.options.has('--may-exist')) {
    const existing = findPort(ctx, portName, false);
    if (existing) {
      const want = sorted([...ifaceNames]);
      const have = sorted(existing.row.set('interfaces').map((u) => ctx.txn.get('Interface', u as string)?.string('name') ?? ''));
      if (existing.bridge.name !== brName) throw new VsctlError('VSCTL_EXISTS', `"${commandString(cmd)}" but ${portName} is actually attached to bridge ${existing.bridge.name}`);
      if (want.join('\0') !== have.join('\0')) throw new VsctlError('VSCTL_EXISTS', `"${commandString(cmd)}" but ${portName} actually has interface(s) ${have.join(', ')}`);
      return;
    }
  }
  checkConflicts(ctx, portName, `cannot create a port named ${portName}`);
  for (const n of ifaceNames) checkConflicts(ctx, n, `cannot create an interface named ${n}`);
  const br = findBridge(ctx, brName, true)!;
  const ifaces = ifaceNames.map((n) => ctx.txn.insert('Interface', { name: makeAtom(n) }));
  let port = ctx.txn.insert('Port', { name: makeAtom(portName), interfaces: makeSet(ifaces.map((i) => i.uuid)), bond_fake_iface: makeAtom(cmd.options.has('--fake-iface')) });
  if (br.parent) ctx.txn.set(port, 'tag', makeAtom(br.vlan));
  const table = ctx.schema.tables.get('Port')!;
  for (const s of settings) setColumn(ctx, table, port, s);
  port = current(ctx, port);
  const view = switchView(ctx);
  addRef(ctx, bridgeRow(br), 'ports', port.uuid);
  const p = addPortToView(view, br, port);
  for (const i of ifaces) addIfaceToView(view, p, i);
}

function addBond(ctx: Context, cmd: CommandLine): void {
  const rest = cmd.args.slice(2);
  const n = rest.findIndex((a) => a.includes('='));
  const ifaces = n < 0 ? rest : rest.slice(0, n);
  if (ifaces.length < 2) throw new VsctlError('VSCTL_USAGE', `add-bond requires at least 2 interfaces, but only ${ifaces.length} were specified`);
  addPort(ctx, cmd, ifaces, rest.slice(ifaces.length));
}

function delPort(ctx: Context, cmd: CommandLine): void {
  const mustExist = !cmd.options.has('--if-exists');
  const target = cmd.args[cmd.args.length - 1];
  let port;
  if (findBridge(ctx, target, false)) {
    if (mustExist) throw new VsctlError('VSCTL_LOCAL_PORT', `cannot delete port ${target} because it is the local port for bridge ${target} (deleting this port requires deleting the entire bridge)`);
  } else if (!cmd.options.has('--with-iface')) {
    port = findPort(ctx, target, mustExist);
  } else {
    port = findPort(ctx, target, false) ?? findIface(ctx, target, false)?.port;
    if (mustExist && !port) throw new VsctlError('VSCTL_NO_PORT', `no port or interface named ${target}`);
  }
  if (!port) return;
  if (cmd.args.length === 2) {
    const br = findBridge(ctx, cmd.args[0], true)!;
    if (port.bridge !== br) {
      if (port.bridge.parent === br) throw new VsctlError('VSCTL_NO_PORT', `bridge ${cmd.args[0]} does not have a port ${target} (although its child bridge ${port.bridge.name} does)`);
      throw new VsctlError('VSCTL_NO_PORT', `bridge ${cmd.args[0]} does not have a port ${target}`);
    }
  }
  deletePort(ctx, switchView(ctx), port);
}

function listIfaces(ctx: Context, cmd: CommandLine): void {
  const br = findBridge(ctx, cmd.args[0], true)!;
  verifyPorts(ctx);
  print(ctx, sorted(br.ports.flatMap((p) => p.ifaces.map((i) => i.name)).filter((n) => n !== br.name)));
}

// ---------------------------------------------------------------- controllers, fail mode, managers

const MANAGER_TABLES: IdlTables = { Open_vSwitch: ['manager_options'], Manager: ['target', 'inactivity_probe'] };
const CONTROLLER_TABLES: IdlTables = { ...BRIDGE_TABLES, Controller: ['target', 'inactivity_probe'] };

/** The controllers or managers of `owner`, verified. */
function targets(ctx: Context, owner: IdlRow, column: string, table: string): IdlRow[] {
  ctx.txn.verify(owner, column);
  const rows = current(ctx, owner)
    .set(column)
    .map((u) => ctx.txn.get(table, u as string))
    .filter((r): r is IdlRow => r !== undefined);
  for (const r of rows) ctx.txn.verify(r, 'target');
  return rows;
}

/** Replaces the rows `owner.column` points at with new rows of `table`, one per target. */
function replaceTargets(ctx: Context, cmd: CommandLine, owner: IdlRow, column: string, table: string, names: readonly string[]): void {
  for (const old of targets(ctx, owner, column, table)) ctx.txn.delete(old);
  const probe = cmd.options.get('--inactivity-probe');
  const rows = names.map((t) => {
    const values: Record<string, ReturnType<typeof makeAtom>> = { target: makeAtom(t) };
    // As atoll reads it: leading digits, 0 if none.
    if (typeof probe === 'string') values.inactivity_probe = makeAtom(Number(/^\s*[+-]?\d+/.exec(probe)?.[0] ?? 0));
    return ctx.txn.insert(table, values);
  });
  ctx.txn.set(current(ctx, owner), column, makeSet(rows.map((r) => r.uuid)));
}

function printTargets(ctx: Context, rows: IdlRow[], unique = false): void {
  const names = sorted(rows.map((r) => r.string('target') ?? ''));
  print(ctx, unique ? names.filter((n, i) => i === 0 || n !== names[i - 1]) : names);
}

/** A fake bridge's controllers and fail mode are its parent's. */
function realBridgeRow(ctx: Context, name: string): IdlRow {
  const br = findBridge(ctx, name, true)!;
  return current(ctx, (br.parent ?? br).row!);
}

// ---------------------------------------------------------------- the table

type Spec = CommandSpec;
const simple = (minArgs: number, maxArgs: number, run: Spec['run'], options: readonly string[] = [], tables: () => IdlTables = bridgeTables): Spec => ({
  minArgs,
  maxArgs,
  options,
  prerequisites: tables,
  run,
});

export const COMMANDS: Record<string, Spec> = {
  init: simple(0, 0, () => {}, [], () => ({})),
  show: simple(0, 0, (ctx) => ctx.out.push(show(ctx)), [], () => SHOW_TABLES),
  'add-br': simple(1, 3, addBr, ['--may-exist']),
  'del-br': simple(1, 1, delBr, ['--if-exists']),
  'list-br': simple(0, 0, listBr, ['--real', '--fake'], bridgeOnly),
  'br-exists': simple(
    1,
    1,
    (ctx, cmd) => {
      if (!findBridge(ctx, cmd.args[0], false)) throw new VsctlError('VSCTL_NO_BRIDGE', '', 2);
    },
    [],
    bridgeOnly,
  ),
  'br-to-vlan': simple(1, 1, (ctx, cmd) => print(ctx, [String(findBridge(ctx, cmd.args[0], true)!.vlan)]), [], bridgeOnly),
  'br-to-parent': simple(
    1,
    1,
    (ctx, cmd) => {
      const br = findBridge(ctx, cmd.args[0], true)!;
      print(ctx, [(br.parent ?? br).name]);
    },
    [],
    bridgeOnly,
  ),
  'br-set-external-id': simple(2, 3, brSetExternalId, [], bridgeOnly),
  'br-get-external-id': simple(1, 2, brGetExternalId, [], bridgeOnly),
  'list-ports': simple(1, 1, listPorts),
  'add-port': simple(2, Infinity, (ctx, cmd) => addPort(ctx, cmd, [cmd.args[1]], cmd.args.slice(2)), ['--may-exist']),
  'add-bond': simple(4, Infinity, addBond, ['--may-exist', '--fake-iface']),
  'del-port': simple(1, 2, delPort, ['--if-exists', '--with-iface']),
  'port-to-br': simple(1, 1, (ctx, cmd) => print(ctx, [findPort(ctx, cmd.args[0], true)!.bridge.name])),
  'list-ifaces': simple(1, 1, listIfaces),
  'iface-to-br': simple(1, 1, (ctx, cmd) => print(ctx, [findIface(ctx, cmd.args[0], true)!.port.bridge.name])),
  'get-controller': simple(1, 1, (ctx, cmd) => printTargets(ctx, targets(ctx, realBridgeRow(ctx, cmd.args[0]), 'controller', 'Controller')), [], () => CONTROLLER_TABLES),
  'del-controller': simple(
    1,
    1,
    (ctx, cmd) => {
      const br = current(ctx, findRealBridge(ctx, cmd.args[0]).row!);
      const old = targets(ctx, br, 'controller', 'Controller');
      for (const r of old) ctx.txn.delete(r);
      if (old.length > 0 || br.set('controller').length > 0) ctx.txn.set(br, 'controller', makeSet([]));
    },
    [],
    () => CONTROLLER_TABLES,
  ),
  'set-controller': simple(
    1,
    Infinity,
    (ctx, cmd) => replaceTargets(ctx, cmd, current(ctx, findRealBridge(ctx, cmd.args[0]).row!), 'controller', 'Controller', cmd.args.slice(1)),
    ['--inactivity-probe='],
    () => CONTROLLER_TABLES,
  ),
  'get-fail-mode': simple(1, 1, (ctx, cmd) => {
    const br = realBridgeRow(ctx, cmd.args[0]);
    ctx.txn.verify(br, 'fail_mode');
    const mode = br.string('fail_mode');
    if (mode) print(ctx, [mode]);
  }),
  'del-fail-mode': simple(1, 1, (ctx, cmd) => ctx.txn.set(current(ctx, findRealBridge(ctx, cmd.args[0]).row!), 'fail_mode', makeSet([]))),
  'set-fail-mode': simple(2, 2, (ctx, cmd) => {
    const br = findRealBridge(ctx, cmd.args[0]);
    const mode = cmd.args[1];
    if (mode !== 'standalone' && mode !== 'secure') throw new VsctlError('VSCTL_BAD_VALUE', 'fail-mode must be "standalone" or "secure"');
    ctx.txn.set(current(ctx, br.row!), 'fail_mode', makeAtom(mode));
  }),
  'get-manager': simple(0, 0, (ctx) => printTargets(ctx, targets(ctx, ctx.ovs, 'manager_options', 'Manager'), true), [], () => MANAGER_TABLES),
  'del-manager': simple(0, 0, (ctx, cmd) => replaceTargets(ctx, cmd, ctx.ovs, 'manager_options', 'Manager', []), [], () => MANAGER_TABLES),
  'set-manager': simple(1, Infinity, (ctx, cmd) => replaceTargets(ctx, cmd, ctx.ovs, 'manager_options', 'Manager', cmd.args), ['--inactivity-probe='], () => MANAGER_TABLES),
  ...dbCommands(),
};

/**
 * Checks a command's name, options and number of arguments, as ovs-vsctl
 * does while reading the command line (before connecting).
 */
export function checkCommand(cmd: CommandLine): CommandSpec {
  const spec = Object.hasOwn(COMMANDS, cmd.name) ? COMMANDS[cmd.name] : undefined;
  if (!spec) throw new VsctlError('VSCTL_USAGE', `unknown command '${cmd.name}'; use --help for help`);
  for (const [opt, value] of cmd.options) {
    const accepted = spec.options.find((o) => o.replace(/=$/, '') === opt);
    if (accepted === undefined) throw new VsctlError('VSCTL_USAGE', `'${cmd.name}' command has no '${opt}' option`);
    const takesValue = accepted.endsWith('=');
    if (takesValue && value === true) throw new VsctlError('VSCTL_USAGE', `missing argument to '${opt}' option on '${cmd.name}' command`);
    if (!takesValue && value !== true) throw new VsctlError('VSCTL_USAGE', `'${opt}' option on '${cmd.name}' does not accept an argument`);
  }
  if (cmd.args.length < spec.minArgs) throw new VsctlError('VSCTL_USAGE', `'${cmd.name}' command requires at least ${spec.minArgs} arguments`);
  if (cmd.args.length > spec.maxArgs) {
    const note = cmd.args.some((a) => a.startsWith('-')) ? ' (note that options must precede command names and follow a "--" argument)' : '';
    throw new VsctlError('VSCTL_USAGE', `'${cmd.name}' command takes at most ${spec.maxArgs} arguments${note}`);
  }
  return spec;
}
