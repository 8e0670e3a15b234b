// The bridge layer over the real datapath: configuration read from database
// rows, ofport assignment (ofport_request honoured, LOCAL for the bridge's
// own interface), errors that leave the other ports working, and the
// reconciliation order — every deletion before any addition, which the
// datapath itself enforces (it refuses a second port with the same name).
import pino from 'pino';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { makeAtom, makeMap, makeSet, type Datum } from '@nvs/ovsdb';
import { Switch, type BridgeChanges, type DatapathPorts } from '../src/bridge.ts';
import { readConfig, parseCpuMask, type DbSnapshot, type RowReader } from '../src/config.ts';
import { NvsDpif } from '../src/dpif-nvs.ts';

const log = pino({ level: 'silent' });
let dp: NvsDpif;
let calls: string[];
let ports: DatapathPorts;

beforeEach(() => {
  dp = NvsDpif.open({});
  calls = [];
  // The real datapath, with each call noted so the order can be checked.
  ports = {
    addPort: (name, type) => {
      calls.push(`add ${name}`);
      return dp.addPort(name, type);
    },
    removePort: (no) => {
      calls.push(`del ${dp.stats().ports.find((p) => p.no === no)?.name}`);
      dp.removePort(no);
    },
  };
});
afterEach(() => dp.close());

/** Builds the database rows of a small configuration. */
interface IfaceSpec {
  type?: string;
  ofportRequest?: number;
  options?: Record<string, string>;
  tag?: number;
}

function db(bridges: Record<string, Record<string, IfaceSpec>>, other: Record<string, string> = {}): DbSnapshot {
  const row = (cols: Record<string, Datum>): RowReader => (c) => cols[c] ?? makeSet([]);
  const snap: DbSnapshot = { openVswitch: new Map(), bridge: new Map(), port: new Map(), iface: new Map() };
  const brUuids: string[] = [];
  let n = 0;
  const uuid = () => `00000000-0000-0000-0000-${String(++n).padStart(12, '0')}`;
  for (const [br, ifaces] of Object.entries(bridges)) {
    const portUuids: string[] = [];
    for (const [name, i] of Object.entries<IfaceSpec>({ [br]: { type: 'internal' }, ...ifaces })) {
      const iu = uuid();
      const pu = uuid();
      snap.iface.set(iu, row({ name: makeAtom(name), type: makeAtom(i.type ?? 'dummy'), options: makeMap(Object.entries(i.options ?? {})), ofport_request: makeSet(i.ofportRequest ? [i.ofportRequest] : []) }));
      snap.port.set(pu, row({ name: makeAtom(name), interfaces: makeSet([iu]), tag: makeSet(i.tag !== undefined ? [i.tag] : []) }));
      portUuids.push(pu);
    }
    const bu = uuid();
    snap.bridge.set(bu, row({ name: makeAtom(br), ports: makeSet(portUuids) }));
    brUuids.push(bu);
  }
  snap.openVswitch.set(uuid(), row({ bridges: makeSet(brUuids), next_cfg: makeAtom(3), other_config: makeMap(Object.entries(other)) }));
  return snap;
}

function statusOf(sw: Switch, snap: DbSnapshot, name: string) {
  const uuid = [...snap.iface.entries()].find(([, r]) => r('name').keys[0] === name)![0];
  return sw.status.get(uuid);
}

it('assigns ofports, honours ofport_request and gives the bridge interface LOCAL', () => {
  const sw = new Switch(log, ports);
  const snap = db({ br0: { a: { ofportRequest: 7 }, b: {}, c: { ofportRequest: 7 } } });
  sw.reconcile(readConfig(snap)!);
  expect(statusOf(sw, snap, 'br0')).toMatchObject({ ofport: 65534, linkState: 'up', adminState: 'up', mtu: 1500 });
  expect(statusOf(sw, snap, 'a')!.ofport).toBe(7);
  // b and c: lowest free numbers (c's request collides with a).
  expect([statusOf(sw, snap, 'b')!.ofport, statusOf(sw, snap, 'c')!.ofport].sort()).toEqual([1, 2]);
  expect(dp.stats().ports.map((p) => p.name).sort()).toEqual(['a', 'b', 'br0', 'c']);
});

it('reports unknown types and bad options in Interface.error and keeps the other ports', () => {
  const sw = new Switch(log, ports);
  const snap = db({ br0: { good: {}, tunnel: { type: 'gre' }, vm: { type: 'dpdkvhostuserclient' }, odd: { type: 'quantum' }, opt: { options: { colour: 'red' } } } });
  sw.reconcile(readConfig(snap)!);
  expect(statusOf(sw, snap, 'tunnel')).toEqual({ ofport: -1, error: 'tunnel: interface type "gre" is not supported yet by nvs (use "dummy", "internal", "tap", "system", "afxdp", "dpdkvhostuser", "dpdkvhostuserclient", "vxlan" or "geneve")' });
  expect(statusOf(sw, snap, 'vm')!.error).toBe('vm: dpdkvhostuserclient interface needs options:vhost-server-path');
  expect(statusOf(sw, snap, 'odd')!.error).toBe('odd: unknown interface type "quantum" (nvs supports "dummy", "internal", "tap", "system", "afxdp", "dpdkvhostuser", "dpdkvhostuserclient", "vxlan" and "geneve")');
  expect(statusOf(sw, snap, 'opt')!.error).toBe('opt: dummy interface does not accept option "colour"');
  expect(statusOf(sw, snap, 'good')).toMatchObject({ ofport: 1, linkState: 'up' });
  expect(dp.stats().ports.map((p) => p.name).sort()).toEqual(['br0', 'good']);
  // --enable-dummy=override turns the types nvs cannot open yet into dummy ports.
  const sw2 = new Switch(log, ports);
  dp.close();
  dp = NvsDpif.open({});
  sw2.reconcile(readConfig(snap, { dummyOverride: true })!);
  expect(statusOf(sw2, snap, 'tunnel')).toMatchObject({ linkState: 'up' });
  expect(statusOf(sw2, snap, 'vm')).toMatchObject({ linkState: 'up' });
  // So does it for type=tap, as ovs-vswitchd's override does: no kernel device is made.
  const taps = db({ br0: { t0: { type: 'tap' } } });
  expect(readConfig(taps, { dummyOverride: true })!.bridges[0].ports.find((p) => p.name === 't0')!.interfaces[0].type).toBe('dummy');
  const t0 = readConfig(taps)!.bridges[0].ports.find((p) => p.name === 't0')!.interfaces[0];
  expect([t0.type, t0.error]).toEqual(['tap', undefined]);
});

it('does every deletion before any addition when a port moves between bridges', () => {
  const sw = new Switch(log, ports);
  const names = (c: BridgeChanges) => ({ added: c.added.map((b) => b.name), removed: c.removed.map((b) => b.name), changed: [...c.changed].map((b) => b.name).sort() });
  expect(names(sw.reconcile(readConfig(db({ br0: { p1: {}, p2: {} }, br1: {} }))!))).toEqual({ added: ['br0', 'br1'], removed: [], changed: [] });
  calls.length = 0;
  // The caller learns which bridges changed, to carry it on to ofproto: the model calls nothing back.
  expect(names(sw.reconcile(readConfig(db({ br0: { p2: {} }, br1: { p1: {} } }))!))).toEqual({ added: [], removed: [], changed: ['br0', 'br1'] });
  expect(calls).toEqual(['del p1', 'add p1']);
  calls.length = 0;
  // The whole of br0 goes and its ports come back under br1: again deletions first.
  expect(names(sw.reconcile(readConfig(db({ br1: { p1: {}, p2: {} } }))!))).toEqual({ added: [], removed: ['br0'], changed: ['br1'] });
  expect(calls.indexOf('add p2')).toBeGreaterThan(calls.lastIndexOf('del br0'));
  expect(calls.filter((c) => c.startsWith('del'))).toEqual(['del br0', 'del p2']);
  // Nothing new: nothing changed.
  expect(names(sw.reconcile(readConfig(db({ br1: { p1: {}, p2: {} } }))!))).toEqual({ added: [], removed: [], changed: [] });
});

it('reads other_config: polling cores, handlers and max-idle', () => {
  const cfg = readConfig(db({}, { 'pmd-cpu-mask': '0x6', 'n-handler-threads': '3', 'max-idle': '2500' }))!;
  expect(cfg).toMatchObject({ pmdCpus: [1, 2], handlers: 3, maxIdleMs: 2500, nextCfg: 3 });
  expect(parseCpuMask('zz')).toBeUndefined();
  expect(readConfig(db({}, { 'max-idle': 'soon' }))!.maxIdleMs).toBe(10_000);
});

it('reads other_config:stats-update-interval as ovs-vswitchd does: an integer, at least 5000 ms', () => {
  const period = (v?: string) => readConfig(db({}, v === undefined ? {} : { 'stats-update-interval': v }))!.statsUpdateIntervalMs;
  // Unset or not an integer: the daemon's default (5000 ms, or the period it was started with).
  expect(period()).toBeUndefined();
  expect(period('abc')).toBeUndefined();
  expect(period('7000ms')).toBeUndefined();
  expect(period('99999999999')).toBeUndefined(); // beyond a C int
  expect(period('7000')).toBe(7000);
  expect(period(' +7000')).toBe(7000);
  expect(period('100')).toBe(5000);
  expect(period('-1')).toBe(5000);
});

it('takes an interface of no type as an existing kernel device (type system), never silently as a dummy port', () => {
  const sw = new Switch(log, ports);
  const snap = db({ br0: { vnet9: { type: '' }, sys9: { type: 'system' }, lo: { type: '' } } });
  sw.reconcile(readConfig(snap)!);
  for (const name of ['vnet9', 'sys9']) {
    const st = statusOf(sw, snap, name)!;
    expect(st.ofport).toBe(-1);
    expect(st.error).toContain(`${name}: could not add to the datapath: port '${name}': finding the device (no network device of that name exists here)`);
  }
  // A device that exists (the loopback here) is opened as a system port.
  expect(dp.portDevice(dp.stats().ports.find((p) => p.name === 'lo')!.no).backend).toBe('system');
  // --enable-dummy=override makes them dummy ports, as in OVS.
  const sw2 = new Switch(log, ports);
  const cfg = readConfig(snap, { dummyOverride: true })!;
  expect(cfg.bridges[0].ports.find((p) => p.name === 'vnet9')!.interfaces[0].type).toBe('dummy');
  expect(sw2).toBeDefined();
});
