// nvs-vsctl beside the real ovs-vsctl: each scenario runs twice, once with
// the real ovs-vsctl and once with nvs-vsctl, each against its own fresh
// nvs-dbserver, and every step's stdout, stderr and exit status must match.
// UUIDs legitimately differ between the two databases, so each is replaced
// by the table and name of the row it stands for; records and `show` blocks
// whose order ovs-vsctl leaves to its hash tables are compared as sets.
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Database, Idl, makeAtom, OvsdbClient, OvsdbServer, parseSchema } from '@nvs/ovsdb';
import { canonical, labelUuids, normaliseStderr, nvsVsctl, ovsVsctl, rowLabels, SCHEMA, startSide, stopSide, type Result, type Side } from './vsctl-harness.ts';
import { needsOvs } from './ovs-tools.ts';

const skipOvs = needsOvs('test/vsctl-compat', ['ovs-vsctl', 'ovsdb-tool', 'ovsdb-server']);

const run = promisify(execFile);

let sides: Side[] = [];

async function startServer(): Promise<Side> {
  const side = await startSide();
  sides.push(side);
  return side;
}

beforeEach(() => {
  sides = [];
});

afterEach(async () => {
  for (const s of sides) await stopSide(s);
});

/** Runs each step on both sides and expects the same normalized result. */
async function compareScenario(steps: string[][]): Promise<void> {
  const ovsSide = await startServer();
  const nvsSide = await startServer();
  for (const args of steps) {
    const want = await ovsVsctl(ovsSide, args);
    const got = await nvsVsctl(nvsSide, args);
    const norm = (side: Side, r: Result): Result => {
      const labels = rowLabels(side.db);
      return { stdout: canonical(args, labelUuids(r.stdout, labels)), stderr: normaliseStderr(labelUuids(r.stderr, labels)), code: r.code };
    };
    expect({ args, ...norm(nvsSide, got) }).toEqual({ args, ...norm(ovsSide, want) });
  }
}

const W = '--no-wait';

describe.skipIf(skipOvs)('nvs-vsctl matches ovs-vsctl', () => {
  it('bridges and ports: init, add-br, add-port with Interface options, set tag, get, list, find, del-port, show', async () => {
    await compareScenario([
      [W, 'init'],
      [W, 'add-br', 'br0'],
      [W, 'add-br', 'br1'],
      [W, 'list-br'],
      [W, 'br-exists', 'br0'],
      [W, 'br-exists', 'br9'],
      [W, 'add-port', 'br0', 'p1', '--', 'set', 'Interface', 'p1', 'type=internal', 'options:peer=p2', 'mtu_request=1400'],
      [W, 'add-port', 'br0', 'p2', 'tag=10', 'other_config:stp-enable=false'],
      [W, 'add-port', 'br1', 'p3', '--', 'set', 'Interface', 'p3', 'type=patch', 'options:peer=p1'],
      [W, 'set', 'Port', 'p1', 'tag=20', 'trunks=1,2,10-12'],
      [W, 'get', 'Port', 'p1', 'tag', 'trunks', 'name'],
      [W, 'get', 'Interface', 'p1', 'options:peer', 'type', 'mtu_request'],
      [W, 'get', 'Open_vSwitch', '.', 'bridges'],
      [W, 'list', 'Port', 'p1'],
      [W, 'list', 'Interface'],
      [W, 'list', 'Bridge', 'br0', 'br1'],
      [W, 'find', 'Port', 'tag=10'],
      [W, 'find', 'Interface', 'type=patch'],
      [W, '--columns=name,tag', 'find', 'Port', 'tag>=10'],
      [W, 'find', 'Interface', 'options:peer=p2'],
      [W, 'list-ports', 'br0'],
      [W, 'list-ifaces', 'br0'],
      [W, 'port-to-br', 'p3'],
      [W, 'iface-to-br', 'p2'],
      [W, 'br-set-external-id', 'br0', 'bridge-id', 'br0'],
      [W, 'br-set-external-id', 'br0', 'zz', 'top'],
      [W, 'br-get-external-id', 'br0'],
      [W, 'br-get-external-id', 'br0', 'bridge-id'],
      [W, 'br-set-external-id', 'br0', 'zz'],
      [W, 'br-get-external-id', 'br0'],
      [W, 'show'],
      [W, 'del-port', 'br0', 'p2'],
      [W, 'del-port', 'p3'],
      [W, 'list-ports', 'br0'],
      [W, 'show'],
      [W, 'set-controller', 'br0', 'tcp:127.0.0.1:6653', 'ptcp:6654'],
      [W, 'get-controller', 'br0'],
      [W, 'set-fail-mode', 'br0', 'secure'],
      [W, 'get-fail-mode', 'br0'],
      [W, 'set-fail-mode', 'br0', 'closed'],
      [W, 'set-manager', 'ptcp:6640', 'unix:/tmp/x.sock'],
      [W, 'get-manager'],
      [W, 'show'],
      [W, 'set-controller', 'br0', 'tcp:10.0.0.1:6653'],
      [W, 'list', 'Controller'],
      [W, 'del-controller', 'br0', '--', 'del-fail-mode', 'br0', '--', 'del-manager'],
      [W, 'get-controller', 'br0', '--', 'get-fail-mode', 'br0', '--', 'get-manager'],
      [W, 'list', 'Controller'],
      [W, 'add-bond', 'br0', 'bond0', 'e1', 'e2', 'lacp=active', 'bond_mode=balance-tcp'],
      [W, '--columns=name,lacp,bond_mode', 'list', 'Port', 'bond0'],
      [W, 'list-ifaces', 'br0'],
      [W, '--with-iface', 'del-port', 'br0', 'e2'],
      [W, 'list-ports', 'br0'],
      [W, '--dry-run', 'del-br', 'br1', '--', 'list-br'],
      [W, 'del-br', 'br1'],
      [W, 'list-br'],
      [W, 'show'],
    ]);
  });

  it('output formats: table, json, bare, --columns, --data', async () => {
    await compareScenario([
      [W, 'show'],
      [W, 'list', 'Open_vSwitch'],
      [W, 'add-br', 'br0'],
      [W, 'add-port', 'br0', 'vnet0', 'tag=10', '--', 'set', 'Interface', 'vnet0', 'external_ids={a=1, "b c"="x y", mac="52:54:00:aa:bb:cc"}'],
      [W, '--format=table', 'list', 'Port', 'vnet0'],
      [W, '--format=table', '--columns=name,tag,interfaces', 'list', 'Port'],
      [W, '--format=json', 'list', 'Bridge', 'br0'],
      [W, '--format=json', '--columns=name,external_ids', 'list', 'Interface', 'vnet0'],
      [W, '--bare', '--columns=name,tag', 'list', 'Port', 'vnet0'],
      [W, '--data=bare', '--columns=external_ids,tag', 'list', 'Interface', 'vnet0'],
      [W, '--data=json', '--format=table', '--columns=name,external_ids,ofport', 'list', 'Interface', 'vnet0'],
      [W, '--no-headings', '--format=table', '--columns=name', 'list', 'Bridge'],
      [W, '--format=csv', '--columns=name,external_ids,ofport,statistics', 'list', 'Interface', 'vnet0'],
      [W, '--format=csv', '--data=json', '--columns=name,external_ids', 'list', 'Interface', 'vnet0'],
      [W, '--format=csv', '--no-headings', '--columns=name', 'list', 'Bridge'],
      [W, 'get', 'Interface', 'vnet0', 'external_ids', 'external-ids:mac', 'external_ids:"b c"'],
      [W, '--oneline', 'list-br', '--', 'list-ports', 'br0', '--', 'get', 'Port', 'vnet0', 'tag'],
    ]);
  });

  it('the libvirt-style attach, and the QoS pattern with forward @name references', async () => {
    await compareScenario([
      [W, 'add-br', 'br0'],
      [
        '--timeout=5', W, '--', '--may-exist', 'add-port', 'br0', 'vnet0', 'tag=10',
        '--', 'set', 'Interface', 'vnet0', 'external-ids:attached-mac="52:54:00:aa:bb:cc"',
        '--', 'set', 'Interface', 'vnet0', 'external-ids:iface-id="9f6f8e3a-0b3d-4a53-9a5e-6e5b1c7f2d10"',
        '--', 'set', 'Interface', 'vnet0', 'external-ids:vm-id="5d1bd6d2-4a63-4c8e-b8f7-3a1f0d2e9c44"',
        '--', 'set', 'Interface', 'vnet0', 'external-ids:iface-status=active',
      ],
      [W, '--may-exist', 'add-port', 'br0', 'vnet0', 'tag=99'],
      [W, 'list', 'Interface', 'vnet0'],
      [W, 'get', 'Port', 'vnet0', 'tag'],
      [
        W, 'set', 'Port', 'vnet0', 'qos=@newqos',
        '--', '--id=@newqos', 'create', 'QoS', 'type=linux-htb', 'other-config:max-rate=1000000', 'queues:0=@q0',
        '--', '--id=@q0', 'create', 'Queue', 'other-config:min-rate=1000',
      ],
      [W, 'list', 'QoS'],
      [W, 'list', 'Queue'],
      [W, '--id=@p', 'get', 'Port', 'vnet0', '--', 'find', 'Port', 'qos!=[]'],
      [W, 'clear', 'Port', 'vnet0', 'qos'],
      [W, 'list', 'QoS'],
      [W, 'add', 'Port', 'vnet0', 'trunks', '5', '6'],
      [W, 'remove', 'Port', 'vnet0', 'trunks', '5'],
      [W, 'add', 'Interface', 'vnet0', 'external_ids', 'k1=v1', 'k2=v2'],
      [W, 'remove', 'Interface', 'vnet0', 'external_ids', 'k1', 'k2=nope'],
      [W, 'get', 'Port', 'vnet0', 'trunks', '--', 'get', 'Interface', 'vnet0', 'external_ids'],
      [W, '--', '--id=@m', 'create', 'Manager', 'target="ptcp:6640"', 'is_connected=true', '--', 'add', 'Open_vSwitch', '.', 'manager_options', '@m'],
      [W, 'set', 'Bridge', 'br0', 'fail_mode=secure', 'datapath_type=netdev', '--', 'set', 'Open_vSwitch', '.', 'ovs_version="3.1.0"'],
      [W, '--id=@c1', 'create', 'Controller', 'target="tcp:127.0.0.1:6653"', '--', '--id=@c2', 'create', 'Controller', 'target="ptcp:6654"', 'is_connected=true', '--', 'set', 'Bridge', 'br0', 'controller=[@c1, @c2]'],
      [W, 'set', 'Interface', 'vnet0', 'error="could not open network device vnet0 (No such device)"', 'type=dpdkvhostuserclient', 'options:vhost-server-path=/run/vm1.sock'],
      [W, 'list', 'Controller'],
      [W, 'get', 'Controller', 'br0', 'target'],
      [W, 'show'],
      [W, 'destroy', 'Manager', 'ptcp:6640', '--', 'clear', 'Open_vSwitch', '.', 'manager_options'],
      [W, 'wait-until', 'Port', 'vnet0', 'tag=10'],
    ]);
  });

  it('errors: same messages and exit statuses', async () => {
    await compareScenario([
      [W, 'add-br', 'br0'],
      [W, 'add-port', 'br0', 'vnet0'],
      [W, 'add-br', 'br1'],
      [W, 'add-br', 'br0'],
      [W, '--may-exist', 'add-br', 'br0'],
      [W, 'del-br', 'br9'],
      [W, '--if-exists', 'del-br', 'br9'],
      [W, 'add-port', 'br9', 'p'],
      [W, 'add-port', 'br1', 'vnet0'],
      [W, '--may-exist', 'add-port', 'br1', 'vnet0'],
      [W, 'del-port', 'br0', 'nope'],
      [W, '--if-exists', 'del-port', 'br0', 'nope'],
      [W, 'del-port', 'br1', 'vnet0'],
      [W, 'port-to-br', 'nope'],
      [W, 'iface-to-br', 'nope'],
      [W, 'list-ports', 'nope'],
      [W, 'get', 'Bridge', 'br0', 'nosuch'],
      [W, 'get', 'Nosuch', 'x', 'y'],
      [W, 'get', 'Bridge', 'br9', 'name'],
      [W, 'get', 'Port', 'vnet0', 'tag:foo'],
      [W, 'get', 'Interface', 'vnet0', 'external_ids:nokey'],
      [W, '--if-exists', 'get', 'Interface', 'vnet0', 'external_ids:nokey'],
      [W, 'set', 'Port', 'vnet0', 'tag=abc'],
      [W, 'set', 'Port', 'vnet0', 'tag=5000'],
      [W, 'set', 'Interface', 'vnet0', 'mac=00:11:22:33:44:55'],
      [W, 'set', 'Interface', 'vnet0', 'mac=a b'],
      [W, 'set', 'Interface', 'vnet0', 'type='],
      [W, 'set', 'Interface', 'vnet0', 'admin_state=sideways'],
      [W, 'set', 'Interface', 'vnet0', 'external_ids={a:b}'],
      [W, 'frob'],
      [W, 'set', 'Interface', 'vnet0', 'name=foo'],
      [W, 'set', 'Bridge', 'br0', '_uuid=00000000-0000-0000-0000-000000000000'],
      [W, 'clear', 'Bridge', 'br0', 'name'],
      [W, 'add', 'Bridge', 'br0', 'name', 'x'],
      [W, 'add', 'Port', 'vnet0', 'trunks', '5000'],
      // A still-referenced non-root row: destroy is a no-op, as in OVS's IDL.
      [W, 'destroy', 'Bridge', 'br1'],
      [W, 'list-br'],
      [W, '--all', 'destroy', 'Mirror'],
      [W, 'list', 'Interface', 'vnet0'],
    ]);
  });
});

describe.skipIf(skipOvs)('nvs-vsctl matches ovs-vsctl where the differential test found them apart', () => {
  it('fake (VLAN) bridges: add-br BR PARENT VLAN, their ports, external ids, limits, deletion', async () => {
    await compareScenario([
      [W, 'add-br', 'br0'],
      [W, 'add-br', 'fb5', 'br0', '5'],
      [W, 'list-br'],
      [W, '--fake', 'list-br'],
      [W, '--real', 'list-br'],
      [W, 'br-to-vlan', 'fb5', '--', 'br-to-parent', 'fb5', '--', 'br-to-vlan', 'br0', '--', 'br-exists', 'fb5'],
      [W, 'add-port', 'fb5', 'p1', '--', 'add-port', 'br0', 'p2', 'tag=5', '--', 'add-port', 'br0', 'p3'],
      [W, 'get', 'Port', 'p1', 'tag', '--', 'port-to-br', 'p1', '--', 'port-to-br', 'p2', '--', 'iface-to-br', 'p3'],
      [W, 'list-ports', 'fb5', '--', 'list-ports', 'br0', '--', 'list-ifaces', 'fb5'],
      [W, 'br-set-external-id', 'fb5', 'k', 'v', '--', 'br-get-external-id', 'fb5', '--', 'get', 'Port', 'fb5', 'external_ids'],
      [W, '--may-exist', 'add-br', 'fb5', 'br0', '5'],
      [W, '--may-exist', 'add-br', 'fb5', 'br0', '6'],
      [W, '--may-exist', 'add-br', 'fb5'],
      [W, '--may-exist', 'add-br', 'br0', 'br0', '7'],
      [W, 'add-br', 'fb6', 'br0', '5'],
      [W, 'add-br', 'fb7', 'fb5', '7'],
      [W, 'add-br', 'fb7', 'nobr', '7'],
      [W, 'add-br', 'fb7', 'br0', '4096'],
      [W, 'add-br', 'fb7', 'br0'],
      [W, 'del-port', 'br0', 'p1'],
      [W, 'del-port', 'fb5'],
      [W, 'get-fail-mode', 'fb5', '--', 'set-fail-mode', 'fb5', 'secure'],
      [W, 'show'],
      [W, 'del-br', 'fb5'],
      [W, 'list-ports', 'br0', '--', 'list-br'],
    ]);
  });

  it('names: a bridge, port or interface name is taken once; a bridge\'s own port is not a port', async () => {
    await compareScenario([
      [W, 'add-br', 'br0'],
      [W, 'add-port', 'br0', 'br0'],
      [W, '--may-exist', 'add-port', 'br0', 'br0'],
      [W, 'add-bond', 'br0', 'b0', 'br0', 'e1'],
      [W, 'add-bond', 'br0', 'b0', 'e1', 'lacp=active'],
      [W, 'add-port', 'nobr', ''],
      [W, 'add-br', ''],
      [W, 'del-port', 'br0'],
      [W, '--if-exists', 'del-port', 'br0'],
      [W, '--with-iface', 'del-port', 'nope'],
      [W, 'port-to-br', 'br0'],
      [W, 'iface-to-br', 'br0'],
      [W, '--id=@b', 'create', 'Bridge', 'name=br0', '--', 'add', 'Open_vSwitch', '.', 'bridges', '@b', '--', 'list-br'],
      // A row the line destroys is gone from the database commands' view, and from its checks.
      [W, '--if-exists', 'set', 'Bridge', 'nobr', 'stp_enable=true', '--', 'list-br'],
    ]);
  });

  it('the last command writes sets and map keys as mutations, as ovs-vsctl\'s IDL does', async () => {
    await compareScenario([
      [W, 'add-br', 'br0', '--', 'add-port', 'br0', 'p1', 'tag=5'],
      // Last: a key given again takes the new value; before that, it keeps the old.
      [W, 'add', 'Bridge', 'br0', 'external_ids', 'k=1'],
      [W, 'add', 'Bridge', 'br0', 'external_ids', 'k=2'],
      [W, 'add', 'Bridge', 'br0', 'external_ids', 'k=3', '--', 'get', 'Bridge', 'br0', 'external_ids'],
      // Last: the server refuses a second tag; before that, nvs-vsctl does.
      [W, 'add', 'Port', 'p1', 'tag', '6'],
      [W, 'add', 'Port', 'p1', 'tag', '6', '--', 'list-br'],
      [W, 'set', 'Bridge', 'br0', 'external_ids:k=a', 'external_ids:k=b'],
      [W, 'set', 'Bridge', 'br0', 'external_ids={a=1}', 'external_ids:b=2', '--', 'get', 'Bridge', 'br0', 'external_ids'],
      [W, 'add-br', 'br1', '--', 'add', 'Bridge', 'br1', 'name', 'x'],
      [W, 'get', 'Bridge', 'br0', 'external_ids', '--', 'get', 'Port', 'p1', 'tag'],
    ]);
  });

  it('values, names and conditions read as ovs-vsctl reads them', async () => {
    await compareScenario([
      [W, 'add-br', 'br0', '--', 'add-port', 'br0', 'p1', '--', 'add-port', 'br0', 'p2', 'tag=7', 'trunks=1-3,10'],
      [W, 'set', 'Bridge', 'br0', 'external_ids:k\\:1=a\\,b', 'stp_enable=yes', 'other_config={x=a\\,b}'],
      [W, 'get', 'Bridge', 'br0', 'external_ids', 'other_config', 'stp_enable', '-uuid'],
      // Values refused, each in ovs-vsctl's words.
      ...['trunks=5-1', 'tag=1-3', 'tag='].map((setting) => [W, 'set', 'Port', 'p1', setting]),
      ...['external_ids={k=}', 'external_ids={k1}', 'flood_vlans=[1,,2]', 'fail_mode=bogus'].map((setting) => [W, 'set', 'Bridge', 'br0', setting]),
      // An ambiguous table or column name, a key of a column that is not a map.
      [W, 'list', 'Q', '--', 'get', 'Bridge', 'br0', 'data', '--', 'get', 'Port', 'p1', 'tag:x'],
      // Names are checked for every command before any runs.
      [W, 'get', 'Bridge', 'nobr', 'name', '--', 'get', 'Bridge', 'br0', 'nosuch'],
      [W, 'find', 'Port', 'tag<6'],
      [W, '--columns=name', 'find', 'Port', 'trunks{in}[1,2,3,4]'],
      [W, '--columns=name', 'find', 'Port', 'tag{not-in}[7]'],
      [W, '--columns=name tag', 'list', 'Port', 'p2'],
      [W, 'list', 'Bridge', '.'],
      [W, 'destroy', 'QoS'],
      [W, '--all', '--if-exists', 'destroy', 'QoS'],
      [W, 'create', 'Port', 'name=x'],
      [W, '--format=table', '--data=bare', '--columns=name,tag', 'list', 'Port'],
      [W, '--bare', '--format=table', '--columns=name', 'list', 'Bridge', '--', '--columns=name', 'list', 'Port', 'p1'],
      [W, '--oneline', 'list-br', '--', '--columns=name', 'list', 'Port', 'p1'],
    ]);
  });
});

/** A stand-in for nvs-vswitchd: gives new interfaces an ofport and copies next_cfg to cur_cfg. */
async function fakeVswitchd(side: Side): Promise<OvsdbClient> {
  const client = await OvsdbClient.connect(`unix:${side.sock}`);
  const idl = await Idl.create(client, 'Open_vSwitch', { Open_vSwitch: ['next_cfg', 'cur_cfg'], Interface: ['ofport'] });
  let ofport = 0;
  const catchUp = (): void => {
    const ovs = idl.first('Open_vSwitch');
    if (!ovs || ovs.number('cur_cfg') === ovs.number('next_cfg')) return;
    idl
      .transact((txn) => {
        for (const iface of txn.rows('Interface')) if (iface.number('ofport') === undefined) txn.set(iface, 'ofport', makeAtom(++ofport));
        const row = txn.first('Open_vSwitch')!;
        txn.verify(row, 'next_cfg');
        txn.set(row, 'cur_cfg', row.get('next_cfg'));
      })
      .catch(() => undefined);
  };
  idl.on('change', catchUp);
  catchUp();
  return client;
}

describe.skipIf(skipOvs)('waiting for nvs-vswitchd (no --no-wait)', () => {
  it('bumps next_cfg in the same transaction and returns once cur_cfg catches up, like ovs-vsctl', async () => {
    for (const vsctl of [ovsVsctl, nvsVsctl]) {
      const side = await startServer();
      expect((await vsctl(side, [W, 'init'])).code).toBe(0);
      const vswitchd = await fakeVswitchd(side);
      try {
        const r = await vsctl(side, ['--timeout=20', 'add-br', 'br0', '--', 'add-port', 'br0', 'p1']);
        expect(r).toEqual({ stdout: '', stderr: '', code: 0 });
        const cfg = await vsctl(side, [W, 'get', 'Open_vSwitch', '.', 'next_cfg', 'cur_cfg']);
        expect(cfg.stdout).toBe('1\n1\n');
      } finally {
        vswitchd.close();
      }
    }
  });

  it('names the interfaces nvs-vswitchd could not set up (no ofport), like ovs-vsctl', async () => {
    const side = await startServer();
    await nvsVsctl(side, [W, 'init']);
    const client = await OvsdbClient.connect(`unix:${side.sock}`);
    // A vswitchd that applies the configuration but opens no interface.
    const idl = await Idl.create(client, 'Open_vSwitch', { Open_vSwitch: ['next_cfg', 'cur_cfg'] });
    idl.on('change', () => {
      const ovs = idl.first('Open_vSwitch')!;
      if (ovs.number('cur_cfg') !== ovs.number('next_cfg')) void idl.transact((txn) => txn.set(txn.first('Open_vSwitch')!, 'cur_cfg', ovs.get('next_cfg'))).catch(() => undefined);
    });
    try {
      const r = await nvsVsctl(side, ['--timeout=20', 'add-br', 'br0', '--', 'add-port', 'br0', 'p1']);
      expect(r.code).toBe(0);
      expect(r.stderr.split('\n').sort()).toEqual([
        '',
        "nvs-vsctl: Error detected while setting up 'br0'.  See nvs-vswitchd log for details.",
        "nvs-vsctl: Error detected while setting up 'p1'.  See nvs-vswitchd log for details.",
      ]);
    } finally {
      client.close();
    }
  });

  it('wait-until blocks until the condition holds, like ovs-vsctl', async () => {
    for (const vsctl of [ovsVsctl, nvsVsctl]) {
      const side = await startServer();
      await vsctl(side, [W, 'add-br', 'br0']);
      let done = false;
      const waiting = vsctl(side, ['--timeout=20', 'wait-until', 'Bridge', 'br0', 'other_config:ready=yes', '--', 'get', 'Bridge', 'br0', 'other_config:step']).then((r) => {
        done = true;
        return r;
      });
      await vsctl(side, [W, 'set', 'Bridge', 'br0', 'other_config:step=1']);
      expect(done).toBe(false);
      await vsctl(side, [W, 'set', 'Bridge', 'br0', 'other_config:ready=yes', 'other_config:step=2']);
      expect(await waiting).toEqual({ stdout: '"2"\n', stderr: '', code: 0 });
    }
  });

  it('names records by uuid (any case) as well as by name', async () => {
    const side = await startServer();
    const created = await nvsVsctl(side, [W, '--id=@m', 'create', 'Manager', 'target="ptcp:6640"', '--', 'add', 'Open_vSwitch', '.', 'manager_options', '@m']);
    const uuid = created.stdout.trim();
    expect(uuid).toMatch(/^[0-9a-f-]{36}$/);
    expect(await nvsVsctl(side, [W, 'get', 'Manager', uuid.toUpperCase(), 'target'])).toEqual({ stdout: '"ptcp:6640"\n', stderr: '', code: 0 });
    expect((await nvsVsctl(side, [W, 'get', 'Open_vSwitch', '.', 'manager_options'])).stdout).toBe(`[${uuid}]\n`);
    // A prefix of 4 or more hex digits will do, as with ovs-vsctl; 3 will not.
    expect((await nvsVsctl(side, [W, 'get', 'Manager', uuid.slice(0, 4), 'target'])).stdout).toBe('"ptcp:6640"\n');
    expect((await nvsVsctl(side, [W, 'get', 'Manager', uuid.slice(0, 3), 'target'])).code).toBe(1);
    expect((await nvsVsctl(side, [W, 'get', 'Manager', '00000000-0000-0000-0000-000000000000', 'target'])).stderr).toBe(
      'nvs-vsctl: no row "00000000-0000-0000-0000-000000000000" in table Manager\n',
    );
  });

  it('commands that change nothing do not wait, like ovs-vsctl', async () => {
    for (const vsctl of [ovsVsctl, nvsVsctl]) {
      const side = await startServer();
      await vsctl(side, [W, 'add-br', 'br0', '--', 'set', 'Bridge', 'br0', 'fail_mode=secure']);
      expect(await vsctl(side, ['--timeout=5', 'list-br'])).toEqual({ stdout: 'br0\n', stderr: '', code: 0 });
      expect(await vsctl(side, ['--timeout=5', 'set', 'Bridge', 'br0', 'fail_mode=secure'])).toEqual({ stdout: '', stderr: '', code: 0 });
      expect(await vsctl(side, ['--timeout=5', '--may-exist', 'add-br', 'br0'])).toEqual({ stdout: '', stderr: '', code: 0 });
    }
  });

  it('gives up after --timeout with a message saying what it waited for', async () => {
    const side = await startServer();
    await nvsVsctl(side, [W, 'init']);
    const r = await nvsVsctl(side, ['--timeout=1', 'add-br', 'br0']);
    expect(r.code).toBe(142);
    expect(r.stderr).toMatch(/^nvs-vsctl: timed out after 1 s waiting for nvs-vswitchd to apply the change \(Open_vSwitch cur_cfg 0, next_cfg 1\)/);
    // The change itself is committed.
    expect((await nvsVsctl(side, [W, 'list-br'])).stdout).toBe('br0\n');
    expect(await nvsVsctl(side, ['--timeout=1', W, 'wait-until', 'Bridge', 'br0', 'fail_mode=secure'])).toEqual({
      stdout: '',
      stderr: 'nvs-vsctl: timed out after 1 s: the wait-until condition did not become true\n',
      code: 142,
    });
  });

  it('--retry waits for the database to come up', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nvs-vsctl-retry-'));
    const sock = join(dir, 'db.sock');
    const pending = nvsVsctl({ sock } as Side, ['--retry', '--timeout=20', W, 'list-br']);
    await new Promise((r) => setTimeout(r, 300));
    const server = new OvsdbServer({ log: pino({ level: 'silent' }) });
    server.addDatabase(new Database(parseSchema(SCHEMA)));
    await server.listen(`punix:${sock}`);
    try {
      expect(await pending).toEqual({ stdout: '', stderr: '', code: 0 });
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reports an unreachable database as ovs-vsctl does', async () => {
    const r = await nvsVsctl({ sock: '/nonexistent/db.sock' } as Side, [W, 'list-br']);
    expect(r).toEqual({ stdout: '', stderr: 'nvs-vsctl: unix:/nonexistent/db.sock: database connection failed (No such file or directory)\n', code: 1 });
  });
});

describe.skipIf(skipOvs)('nvs-vsctl against the real ovsdb-server', () => {
  it('writes transactions the real server accepts (named-uuids, waits, next_cfg increment), read back by ovs-vsctl', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nvs-vsctl-real-'));
    const sock = join(dir, 'db.sock');
    await run('ovsdb-tool', ['create', join(dir, 'conf.db'), '/usr/share/openvswitch/vswitch.ovsschema']);
    const server = spawn('ovsdb-server', [join(dir, 'conf.db'), `--remote=punix:${sock}`, `--unixctl=${join(dir, 'ctl')}`, '--no-chdir'], { stdio: 'ignore' });
    try {
      const side = { sock } as Side;
      expect((await nvsVsctl(side, ['--retry', '--timeout=20', W, 'init'])).code).toBe(0);
      const steps = [
        [W, 'add-br', 'br0'],
        [W, '--may-exist', 'add-port', 'br0', 'vnet0', 'tag=10', '--', 'set', 'Interface', 'vnet0', 'external-ids:attached-mac="52:54:00:aa:bb:cc"', 'type=internal'],
        [W, 'set', 'Port', 'vnet0', 'qos=@q', '--', '--id=@q', 'create', 'QoS', 'type=linux-htb', 'other-config:max-rate=1000000'],
        ['--timeout=1', 'set', 'Bridge', 'br0', 'fail_mode=secure'],
      ];
      const results = [];
      for (const args of steps) results.push(await nvsVsctl(side, args));
      expect(results.map((r) => r.code)).toEqual([0, 0, 0, 142]);
      const ovs = async (...args: string[]): Promise<string> => (await run('ovs-vsctl', [`--db=unix:${sock}`, W, ...args])).stdout;
      expect(await ovs('list-ports', 'br0')).toBe('vnet0\n');
      expect(await ovs('get', 'Port', 'vnet0', 'tag')).toBe('10\n');
      expect(await ovs('get', 'Interface', 'vnet0', 'external_ids:attached-mac', 'type')).toBe('"52:54:00:aa:bb:cc"\ninternal\n');
      expect(await ovs('--columns=type,other_config', 'list', 'QoS')).toBe('type                : linux-htb\nother_config        : {max-rate="1000000"}\n');
      // The timed-out step committed, with next_cfg bumped by one.
      expect(await ovs('get', 'Bridge', 'br0', 'fail_mode', '--', 'get', 'Open_vSwitch', '.', 'next_cfg')).toBe('secure\n1\n');
      expect(canonical(['show'], (await nvsVsctl(side, [W, 'show'])).stdout)).toBe(canonical(['show'], await ovs('show')));
    } finally {
      server.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the bundled command', () => {
  it('dist/nvs-vsctl.js runs (npm run build:ts makes it)', async () => {
    const bundle = new URL('../dist/nvs-vsctl.js', import.meta.url).pathname;
    expect(existsSync(bundle), 'dist/nvs-vsctl.js is missing: run npm run build:ts').toBe(true);
    const side = await startServer();
    const env = { ...process.env, NVS_RUNDIR: side.dir };
    await run('node', [bundle, W, 'add-br', 'br0'], { env });
    const { stdout } = await run('node', [bundle, W, 'list-br'], { env });
    expect(stdout).toBe('br0\n');
  });
});
