// The real OVS tools (Debian openvswitch-common 3.1) against the real
// nvs-dbserver program: ovs-vsctl --no-wait scenarios including the
// libvirt-style attach, ovsdb-client's commands including a live monitor,
// and ovs-appctl on the control socket.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { bundleDbServer, DbServer, run, SCHEMA } from '../packages/ovsdb/test/helpers/dbserver.ts';
import { needsOvs } from './ovs-tools.ts';

const skipOvs = needsOvs('test/ovsdb-tools', ['ovs-vsctl', 'ovsdb-client', 'ovsdb-tool', 'ovs-appctl']);

let bundle: { bin: string; root: string };
let srv: DbServer;

beforeAll(async () => {
  bundle = await bundleDbServer();
  srv = new DbServer(bundle.bin);
  // No DATABASE argument: the default <rundir>/conf.db is created from configs/vswitch.ovsschema.
  await srv.start();
});

afterAll(async () => {
  await srv?.dispose();
  if (bundle) rmSync(bundle.root, { recursive: true, force: true });
});

describe.skipIf(skipOvs)('ovs-vsctl --no-wait against nvs-dbserver', () => {
  it('created the default database from the Open_vSwitch schema and said so', async () => {
    expect(existsSync(srv.dbPath)).toBe(true);
    expect(srv.stderr).toMatch(/created it from the Open_vSwitch schema/);
    const v = await run('ovsdb-tool', ['db-version', srv.dbPath]);
    expect(v.stdout.trim()).toBe('8.3.1');
  });

  it('init, add-br, add-port with Interface options, set Port tag, get, list, find', async () => {
    for (const args of [['init'], ['add-br', 'br0'], ['add-port', 'br0', 'p1', '--', 'set', 'Interface', 'p1', 'type=vxlan', 'options:remote_ip=192.0.2.1', 'options:key=5']]) {
      const r = await srv.vsctl(...args);
      expect(r, args.join(' ')).toMatchObject({ code: 0, stderr: '' });
    }
    expect((await srv.vsctl('set', 'Port', 'p1', 'tag=10')).code).toBe(0);
    expect((await srv.vsctl('get', 'Port', 'p1', 'tag')).stdout).toBe('10\n');
    expect((await srv.vsctl('get', 'Interface', 'p1', 'options:remote_ip')).stdout).toBe('"192.0.2.1"\n');
    const list = await srv.vsctl('list', 'Interface', 'p1');
    expect(list.stdout).toMatch(/^name\s+: p1$/m);
    expect(list.stdout).toMatch(/^options\s+: \{key="5", remote_ip="192.0.2.1"\}$/m);
    expect(list.stdout).toMatch(/^type\s+: vxlan$/m);
    const find = await srv.vsctl('--columns=name', 'find', 'Port', 'tag=10');
    expect(find.stdout.trim()).toBe('name                : p1');
    expect((await srv.vsctl('list-ports', 'br0')).stdout).toBe('p1\n');
    expect((await srv.vsctl('port-to-br', 'p1')).stdout).toBe('br0\n');
  });

  it('the libvirt-style attach succeeds', async () => {
    const r = await srv.vsctl(
      '--', '--may-exist', 'add-port', 'br0', 'vnet0', 'tag=10',
      '--', 'set', 'Interface', 'vnet0', 'external-ids:attached-mac="52:54:00:aa:bb:cc"',
      '--', 'set', 'Interface', 'vnet0', 'external-ids:iface-id="6f5b1c2e-2a4c-4c84-a0a7-7bb7d6fbd1a1"',
      '--', 'set', 'Interface', 'vnet0', 'external-ids:vm-id="0c0e9b2d-5a3c-4f7e-8d1b-2e3f4a5b6c7d"',
      '--', 'set', 'Interface', 'vnet0', 'external-ids:iface-status=active',
    );
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const ids = await srv.vsctl('get', 'Interface', 'vnet0', 'external-ids');
    expect(ids.stdout).toBe('{attached-mac="52:54:00:aa:bb:cc", iface-id="6f5b1c2e-2a4c-4c84-a0a7-7bb7d6fbd1a1", iface-status=active, vm-id="0c0e9b2d-5a3c-4f7e-8d1b-2e3f4a5b6c7d"}\n');
    // Running it again is a no-op thanks to --may-exist.
    expect((await srv.vsctl('--may-exist', 'add-port', 'br0', 'vnet0')).code).toBe(0);
  });

  it('show, del-port, and errors ovs-vsctl reports from the server', async () => {
    const show = await srv.vsctl('show');
    expect(show.stdout).toMatch(/Bridge br0\n(.*\n)*\s+Port p1\n\s+tag: 10\n\s+Interface p1\n\s+type: vxlan\n\s+options: \{key="5", remote_ip="192.0.2.1"\}/);
    expect((await srv.vsctl('del-port', 'p1')).code).toBe(0);
    expect((await srv.vsctl('list-ports', 'br0')).stdout).toBe('vnet0\n');
    // Unreferenced Port/Interface rows were garbage-collected with it.
    expect((await srv.vsctl('--columns=name', 'find', 'Interface', 'name=p1')).stdout).toBe('');
    const bad = await srv.vsctl('set', 'Bridge', 'br0', 'fail_mode=bogus');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/constraint violation|bogus/);
  });
});

describe.skipIf(skipOvs)('ovsdb-client against nvs-dbserver', () => {
  it('list-dbs, list-tables, get-schema', async () => {
    expect((await run('ovsdb-client', ['list-dbs', srv.remote])).stdout).toBe('Open_vSwitch\n_Server\n');
    const tables = await run('ovsdb-client', ['list-tables', srv.remote]);
    for (const t of ['Open_vSwitch', 'Bridge', 'Port', 'Interface', 'Controller', 'Manager', 'Mirror', 'QoS', 'Queue', 'Flow_Table', 'SSL']) {
      expect(tables.stdout).toMatch(new RegExp(`^${t}$`, 'm'));
    }
    const schema = JSON.parse((await run('ovsdb-client', ['get-schema', srv.remote])).stdout);
    expect(schema.name).toBe('Open_vSwitch');
    expect((await run('ovsdb-client', ['get-schema-version', srv.remote])).stdout).toBe('8.3.1\n');
    // Our schema carries a cksum computed as OVS does (POSIX cksum of the file without its cksum line).
    const cksum = (await run('ovsdb-client', ['get-schema-cksum', srv.remote])).stdout;
    expect(cksum).toMatch(/^\d+ \d+\n$/);
    expect((await run('ovsdb-tool', ['schema-cksum', SCHEMA])).stdout).toBe(cksum);
    expect((await run('sh', ['-c', `sed '/"cksum": *"[0-9]* [0-9]*",/d' '${SCHEMA}' | cksum`])).stdout).toBe(cksum);
  });

  it('dump and transact with a raw JSON transaction', async () => {
    const t = await run('ovsdb-client', ['transact', srv.remote, '["Open_vSwitch",{"op":"select","table":"Bridge","where":[["name","==","br0"]],"columns":["name"]}]']);
    expect(JSON.parse(t.stdout)).toEqual([{ rows: [{ name: 'br0' }] }]);
    const dump = await run('ovsdb-client', ['dump', srv.remote, 'Open_vSwitch', 'Port']);
    expect(dump.code).toBe(0);
    expect(dump.stdout).toMatch(/^Port table$/m);
    expect(dump.stdout).toMatch(/vnet0/);
    const err = await run('ovsdb-client', ['transact', srv.remote, '["Open_vSwitch",{"op":"update","table":"Bridge","where":[],"row":{"fail_mode":"bogus"}}]']);
    expect(err.stdout + err.stderr).toMatch(/constraint violation/);
  });

  it('monitor sees inserts, updates and deletes', async () => {
    const mon = spawn('ovsdb-client', ['monitor', srv.remote, 'Open_vSwitch', 'Bridge', 'name,external_ids'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    mon.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const waitFor = async (re: RegExp): Promise<void> => {
      for (let i = 0; i < 1200 && !re.test(out); i++) await new Promise((r) => setTimeout(r, 25));
      expect(out).toMatch(re);
    };
    try {
      await waitFor(/initial\s+br0/);
      expect((await srv.vsctl('add-br', 'brm')).code).toBe(0);
      await waitFor(/insert\s+brm/);
      expect((await srv.vsctl('br-set-external-id', 'brm', 'k', 'v')).code).toBe(0);
      await waitFor(/new\s+brm\s+\{k=v\}/);
      expect((await srv.vsctl('del-br', 'brm')).code).toBe(0);
      await waitFor(/delete\s+brm/);
    } finally {
      mon.kill();
    }
  });
});

describe.skipIf(skipOvs)('ovs-appctl against the control socket', () => {
  it('lists databases and remotes, compacts, sets log levels', async () => {
    const appctl = (...a: string[]) => run('ovs-appctl', ['-t', srv.ctl, ...a]);
    expect((await appctl('ovsdb-server/list-dbs')).stdout).toBe('Open_vSwitch\n_Server\n');
    expect((await appctl('ovsdb-server/list-remotes')).stdout).toBe(`punix:${srv.sock}\n`);
    expect((await appctl('ovsdb-server/compact')).code).toBe(0);
    const log = await run('ovsdb-tool', ['show-log', srv.dbPath]);
    expect(log.stdout).toMatch(/record 1: .*"compacting database online"/);
    expect((await appctl('memory/show')).stdout).toMatch(/^rows:\d+ cells:\d+ monitors:\d+ sessions:\d+ heap-used-kB:\d+ rss-kB:\d+\n$/);
    expect((await appctl('vlog/set', 'jsonrpc:dbg')).code).toBe(0);
    expect((await appctl('vlog/list')).stdout).toMatch(/jsonrpc\s+DBG/);
    // The database still serves after compaction.
    expect((await srv.vsctl('list-br')).stdout).toBe('br0\n');
  });

  it('exit stops the server', async () => {
    const r = await run('ovs-appctl', ['-t', srv.ctl, 'exit']);
    expect(r.code).toBe(0);
    await new Promise<void>((res) => (srv.proc!.exitCode !== null ? res() : srv.proc!.once('exit', () => res())));
    expect(srv.proc!.exitCode).toBe(0);
  });
});

describe('nvs-dbserver as a daemon', () => {
  it.skipIf(skipOvs)('--detach --pidfile --log-file, and db: remotes that follow Manager targets', async () => {
    const d = new DbServer(bundle.bin);
    const mgr = `${d.rundir}/mgr.sock`;
    try {
      const start = await run(process.execPath, [
        bundle.bin, '--rundir', d.rundir, '--detach', '--pidfile', '--log-file', '--no-chdir',
        `--remote=punix:${d.sock}`, '--remote=db:Open_vSwitch,Open_vSwitch,manager_options',
      ]);
      expect(start, start.stderr).toMatchObject({ code: 0 });
      const pid = Number((await run('cat', [`${d.rundir}/nvs-dbserver.pid`])).stdout.trim());
      expect(pid).toBeGreaterThan(0);
      expect((await d.vsctl('init')).code).toBe(0);
      expect((await d.vsctl('set-manager', `punix:${mgr}`)).code).toBe(0);
      let dbs = { code: 1, stdout: '', stderr: '' };
      for (let i = 0; i < 100 && dbs.code !== 0; i++) {
        await new Promise((r) => setTimeout(r, 25));
        dbs = await run('ovsdb-client', ['list-dbs', `unix:${mgr}`]);
      }
      expect(dbs.stdout).toBe('Open_vSwitch\n_Server\n');
      // The server keeps the row's is_connected (nobody stays connected here).
      expect((await d.vsctl('get', 'Manager', `punix:${mgr}`, 'is_connected')).stdout).toBe('false\n');
      expect((await d.vsctl('del-manager')).code).toBe(0);
      expect((await run('ovs-appctl', ['-t', d.ctl, 'exit'])).code).toBe(0);
      for (let i = 0; i < 100 && existsSync(`${d.rundir}/nvs-dbserver.pid`); i++) await new Promise((r) => setTimeout(r, 25));
      expect(existsSync(`${d.rundir}/nvs-dbserver.pid`)).toBe(false);
      expect((await run('cat', [`${d.rundir}/nvs-dbserver.log`])).stdout).toMatch(/nvs-dbserver started/);
    } finally {
      await d.dispose();
    }
  });

  it('refuses bad command lines with a clear message', async () => {
    const r = await run(process.execPath, [bundle.bin, '--frobnicate']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/unknown option "--frobnicate"/);
    const bad = await run(process.execPath, [bundle.bin, '--rundir', srv.rundir, '--remote=tcp:1.2.3.4:5', `${srv.rundir}/x.db`]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/unsupported remote "tcp:1\.2\.3\.4:5"/);
  });
});
