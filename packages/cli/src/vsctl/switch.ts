// The bridges, ports and interfaces as ovs-vsctl's bridge commands see
// them, built from the transaction's view of Open_vSwitch → Bridge → Port →
// Interface. Besides the real bridges there are fake bridges: a port with
// fake_bridge=true and a VLAN tag stands for a bridge of that name on its
// parent, and the parent's ports with that tag belong to it (list-ports,
// port-to-br). Names are looked up as ovs-vsctl does: a bridge's own port
// and interface (named like the bridge) are not ports or interfaces to the
// port commands, and a name already taken by a bridge, port or interface
// cannot be given to a new one.
import { datumDifference, datumUnion, makeAtom, type IdlRow } from '@nvs/ovsdb';
import type { Context } from './context.ts';
import { VsctlError } from './errors.ts';
import { SwitchView, type VsctlBridge, type VsctlIface, type VsctlPort } from './switch-view.ts';

export { SwitchView, type VsctlBridge, type VsctlIface, type VsctlPort } from './switch-view.ts';

function refs(ctx: Context, row: IdlRow, column: string, table: string): IdlRow[] {
  const out: IdlRow[] = [];
  for (const uuid of row.set(column)) {
    const r = ctx.txn.get(table, uuid as string);
    if (r) out.push(r);
  }
  return out;
}

/** The current version of a row (rows are snapshots; later writes make new ones). */
export function current(ctx: Context, row: IdlRow): IdlRow {
  return ctx.txn.get(row.table, row.uuid) ?? row;
}

/** A port that stands for a fake bridge. */
function isFakeBridge(port: IdlRow): boolean {
  const tag = port.number('tag');
  return port.boolean('fake_bridge') === true && tag !== undefined && tag >= 0 && tag <= 4095;
}

function addBridge(ctx: Context, view: SwitchView, name: string, row: IdlRow | undefined, parent?: VsctlBridge, vlan = 0): VsctlBridge {
  const br: VsctlBridge = { name, row, parent, vlan, ports: [], children: new Map() };
  if (parent) {
    // A second fake bridge for one VLAN is a bridge, but not the VLAN's.
    const conflict = parent.children.get(vlan);
    if (conflict) ctx.warn(`${parent.name}: bridge has multiple VLAN bridges (${name} and ${conflict.name}) for VLAN ${vlan}, but only one is allowed`);
    else parent.children.set(vlan, br);
  }
  view.bridges.set(name, br);
  return br;
}

/** Adds a port to the view: on the fake bridge of its VLAN, if `bridge` has one. */
export function addPortToView(view: SwitchView, bridge: VsctlBridge, row: IdlRow): VsctlPort {
  const tag = row.number('tag');
  const owner = (tag !== undefined && tag >= 0 && tag <= 4095 ? bridge.children.get(tag) : undefined) ?? bridge;
  const port: VsctlPort = { row, name: row.string('name') ?? '', bridge: owner, ifaces: [] };
  owner.ports.push(port);
  view.ports.set(port.name, port);
  return port;
}

export function addIfaceToView(view: SwitchView, port: VsctlPort, row: IdlRow): void {
  const iface: VsctlIface = { row, name: row.string('name') ?? '', port };
  port.ifaces.push(iface);
  view.ifaces.set(iface.name, iface);
}

/**
 * The view of the transaction as it stands. Where the database holds
 * duplicates (a port on two bridges, two bridges of one name: possible
 * within a transaction, before the server refuses it), the first wins and
 * the rest are warned of, as in ovs-vsctl. `withIfaces` false leaves
 * interfaces out (for commands that only look at bridges).
 */
export function buildView(ctx: Context, withIfaces: boolean): SwitchView {
  const view = new SwitchView();
  const brRows = refs(ctx, current(ctx, ctx.ovs), 'bridges', 'Bridge');
  const bridgeNames = new Set<string>();
  const portNames = new Set<string>();
  for (const brRow of brRows) {
    const name = brRow.string('name') ?? '';
    if (bridgeNames.has(name)) {
      ctx.warn(`${name}: database contains duplicate bridge name`);
      continue;
    }
    bridgeNames.add(name);
    const br = addBridge(ctx, view, name, brRow);
    for (const port of refs(ctx, brRow, 'ports', 'Port')) {
      const portName = port.string('name') ?? '';
      // (A port name seen twice is warned of below.)
      if (portNames.has(portName)) continue;
      portNames.add(portName);
      if (isFakeBridge(port) && !bridgeNames.has(portName)) {
        bridgeNames.add(portName);
        addBridge(ctx, view, portName, undefined, br, port.number('tag'));
      }
    }
  }
  const seen = new Set<string>();
  for (const brRow of brRows) {
    const name = brRow.string('name') ?? '';
    if (seen.has(name)) continue;
    seen.add(name);
    const br = view.bridges.get(name)!;
    for (const portRow of refs(ctx, brRow, 'ports', 'Port')) {
      const portName = portRow.string('name') ?? '';
      const other = view.ports.get(portName);
      if (other) {
        if (other.row.uuid === portRow.uuid) ctx.warn(`${portName}: port is in multiple bridges (${name} and ${other.bridge.name})`);
        else ctx.warn(`${portName}: database contains duplicate port name`, 'ERR');
        continue;
      }
      if (isFakeBridge(portRow)) {
        if (seen.has(portName)) continue;
        seen.add(portName);
      }
      const port = addPortToView(view, br, portRow);
      if (!withIfaces) continue;
      for (const ifaceRow of refs(ctx, portRow, 'interfaces', 'Interface')) {
        const ifaceName = ifaceRow.string('name') ?? '';
        const otherIface = view.ifaces.get(ifaceName);
        if (!otherIface) addIfaceToView(view, port, ifaceRow);
        else if (otherIface.row.uuid === ifaceRow.uuid) ctx.warn(`${ifaceName}: interface is in multiple ports (${otherIface.port.name} and ${portName})`);
        else ctx.warn(`${ifaceName}: database contains duplicate interface name`, 'ERR');
      }
    }
  }
  return view;
}

/** The view for this command: the one earlier commands left, or a new one. */
export function switchView(ctx: Context): SwitchView {
  if (!ctx.view) ctx.view = buildView(ctx, ctx.hasTable('Interface'));
  return ctx.view;
}

/** Verifies the columns that say which ports and interfaces exist, once per transaction. */
export function verifyPorts(ctx: Context, view: SwitchView = switchView(ctx)): void {
  if (view.portsVerified) return;
  view.portsVerified = true;
  ctx.txn.verify(ctx.ovs, 'bridges');
  for (const br of ctx.txn.rows('Bridge')) ctx.txn.verify(br, 'ports');
  for (const port of ctx.txn.rows('Port')) ctx.txn.verify(port, 'interfaces');
}

export function findBridge(ctx: Context, name: string, mustExist: boolean): VsctlBridge | undefined {
  const br = switchView(ctx).bridges.get(name);
  if (mustExist && !br) throw new VsctlError('VSCTL_NO_BRIDGE', `no bridge named ${name}`);
  ctx.txn.verify(ctx.ovs, 'bridges');
  return br;
}

/** A bridge that must exist and must not be a fake one. */
export function findRealBridge(ctx: Context, name: string): VsctlBridge {
  const br = findBridge(ctx, name, true)!;
  if (br.parent) throw new VsctlError('VSCTL_FAKE_BRIDGE', `${name} is a fake bridge`);
  return br;
}

export function findPort(ctx: Context, name: string, mustExist: boolean): VsctlPort | undefined {
  const view = switchView(ctx);
  let port = view.ports.get(name);
  // A bridge's own port is part of the bridge, not one of its ports.
  if (port && port.bridge.name === name) port = undefined;
  if (mustExist && !port) throw new VsctlError('VSCTL_NO_PORT', `no port named ${name}`);
  verifyPorts(ctx, view);
  return port;
}

export function findIface(ctx: Context, name: string, mustExist: boolean): VsctlIface | undefined {
  const view = switchView(ctx);
  let iface = view.ifaces.get(name);
  if (iface && iface.port.bridge.name === name) iface = undefined;
  if (mustExist && !iface) throw new VsctlError('VSCTL_NO_IFACE', `no interface named ${name}`);
  verifyPorts(ctx, view);
  return iface;
}

/** Refuses `name` for a new bridge, port or interface when a bridge, port or interface has it. */
export function checkConflicts(ctx: Context, name: string, what: string): void {
  const view = switchView(ctx);
  verifyPorts(ctx, view);
  if (view.bridges.has(name)) throw new VsctlError('VSCTL_EXISTS', `${what} because a bridge named ${name} already exists`);
  const port = view.ports.get(name);
  if (port) throw new VsctlError('VSCTL_EXISTS', `${what} because a port named ${name} already exists on bridge ${port.bridge.name}`);
  const iface = view.ifaces.get(name);
  if (iface) throw new VsctlError('VSCTL_EXISTS', `${what} because an interface named ${name} already exists on bridge ${iface.port.bridge.name}`);
}

/** The Bridge row that holds a bridge's ports: its own, or a fake bridge's parent's. */
export function bridgeRow(br: VsctlBridge): IdlRow {
  return (br.parent ?? br).row!;
}

export function addRef(ctx: Context, row: IdlRow, column: string, uuid: string): void {
  const cur = current(ctx, row);
  ctx.txn.set(cur, column, datumUnion(cur.get(column), makeAtom(uuid)));
}

export function removeRef(ctx: Context, row: IdlRow, column: string, uuid: string): void {
  const cur = current(ctx, row);
  ctx.txn.set(cur, column, datumDifference(cur.get(column), makeAtom(uuid)));
}

/** Deletes a port and its interfaces, from the database and the view. */
export function deletePort(ctx: Context, view: SwitchView, port: VsctlPort): void {
  removeRef(ctx, bridgeRow(port.bridge), 'ports', port.row.uuid);
  for (const iface of port.ifaces) {
    view.ifaces.delete(iface.name);
    deleteRow(ctx, iface.row);
  }
  port.bridge.ports.splice(port.bridge.ports.indexOf(port), 1);
  view.ports.delete(port.name);
  deleteRow(ctx, port.row);
}

/** Deletes a bridge: its fake bridges, its ports, the collector sets that name it, then the bridge itself. */
export function deleteBridge(ctx: Context, view: SwitchView, br: VsctlBridge): void {
  for (const child of [...br.children.values()]) deleteBridge(ctx, view, child);
  for (const port of [...br.ports]) deletePort(ctx, view, port);
  if (br.row && ctx.schema.tables.has('Flow_Sample_Collector_Set')) {
    for (const set of [...ctx.txn.rows('Flow_Sample_Collector_Set')]) if (set.get('bridge').keys[0] === br.row.uuid) ctx.txn.delete(set);
  }
  if (br.parent) br.parent.children.delete(br.vlan);
  if (br.row) {
    removeRef(ctx, ctx.ovs, 'bridges', br.row.uuid);
    deleteRow(ctx, br.row);
  }
  view.bridges.delete(br.name);
}

function deleteRow(ctx: Context, row: IdlRow): void {
  const cur = ctx.txn.get(row.table, row.uuid);
  if (cur) ctx.txn.delete(cur);
}
