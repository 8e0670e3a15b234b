// The database file, both ways with OVS's own tools, and durability under
// kill -9: a file made by ovsdb-tool and written by the real ovsdb-server
// opens in nvs-dbserver with every row; a file nvs-dbserver wrote passes
// ovsdb-tool and opens in the real ovsdb-server; a torn tail is dropped; and
// every transaction acknowledged before a kill -9 is there after restart.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { appendFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { bundleDbServer, DbServer, run } from '../packages/ovsdb/test/helpers/dbserver.ts';
import { JsonRpcConnection } from '@nvs/jsonrpc';
import { needsOvs } from './ovs-tools.ts';

const skipOvs = needsOvs('test/ovsdb-storage', ['ovs-vsctl', 'ovsdb-client', 'ovsdb-tool', 'ovsdb-server', 'ovs-appctl']);

const REAL_SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema';
let bundle: { bin: string; root: string };
const cleanup: Array<() => Promise<void> | void> = [];

beforeAll(async () => {
  bundle = await bundleDbServer();
});
afterAll(() => rmSync(bundle.root, { recursive: true, force: true }));
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** Runs the real ovsdb-server on `db` in `dir` until the returned stop() is called. */
async function realServer(dir: string, db: string): Promise<{ remote: string; stop: () => Promise<void> }> {
  const sock = join(dir, 'ovs.sock');
  const ctl = join(dir, 'ovs.ctl');
  const r = await run('ovsdb-server', [db, `--remote=punix:${sock}`, `--unixctl=${ctl}`, `--pidfile=${join(dir, 'ovs.pid')}`, '--detach', '--no-chdir', `--log-file=${join(dir, 'ovs.log')}`]);
  expect(r.code, r.stderr).toBe(0);
  const stop = async () => {
    await run('ovs-appctl', ['-t', ctl, 'exit']);
  };
  cleanup.push(stop);
  return { remote: `unix:${sock}`, stop };
}

const vsctl = (remote: string, ...args: string[]) => run('ovs-vsctl', [`--db=${remote}`, '--no-wait', '--timeout=10', ...args]);
const dump = async (remote: string) => {
  const d = await run('ovsdb-client', ['dump', remote, 'Open_vSwitch']);
  expect(d.code, d.stderr).toBe(0);
  return d.stdout;
};

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'nvs-storage-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function populate(remote: string): Promise<void> {
  for (const args of [
    ['init'],
    ['add-br', 'br0'],
    ['add-port', 'br0', 'p1', '--', 'set', 'Interface', 'p1', 'options:remote_ip=192.0.2.7', 'type=geneve'],
    ['add-port', 'br0', 'p2', 'tag=20'],
    ['br-set-external-id', 'br0', 'owner', 'test'],
    ['set', 'Port', 'p2', 'tag=30'],
    ['add-br', 'br1'],
    ['del-port', 'p1'],
  ]) {
    const r = await vsctl(remote, ...args);
    expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
  }
}

describe.skipIf(skipOvs)('file format, both ways', () => {
  it('a database from ovsdb-tool create + the real ovsdb-server opens in nvs-dbserver with every row', async () => {
    const dir = tempDir();
    const db = join(dir, 'conf.db');
    expect((await run('ovsdb-tool', ['create', db, REAL_SCHEMA])).code).toBe(0);
    const real = await realServer(dir, db);
    await populate(real.remote);
    const before = await dump(real.remote);
    await real.stop();
    const srv = new DbServer(bundle.bin, dir);
    cleanup.push(() => srv.stop());
    await srv.start([db]);
    expect(await dump(srv.remote)).toBe(before);
    expect((await srv.vsctl('list-ports', 'br0')).stdout).toBe('p2\n');
  });

  it('a file nvs-dbserver wrote passes ovsdb-tool and opens in the real ovsdb-server', async () => {
    const dir = tempDir();
    const srv = new DbServer(bundle.bin, dir);
    cleanup.push(() => srv.stop());
    await srv.start();
    await populate(srv.remote);
    const ours = await dump(srv.remote);
    await srv.stop();
    expect((await run('ovsdb-tool', ['db-name', srv.dbPath])).stdout).toBe('Open_vSwitch\n');
    expect((await run('ovsdb-tool', ['db-version', srv.dbPath])).stdout).toBe('8.3.1\n');
    const log = await run('ovsdb-tool', ['show-log', srv.dbPath]);
    expect(log.code, log.stderr).toBe(0);
    expect(log.stdout).toMatch(/^record 0: "Open_vSwitch" schema, version="8\.3\.1"/);
    expect(log.stdout).toMatch(/add-port br0 p1/);
    const real = await realServer(dir, srv.dbPath);
    expect(await dump(real.remote)).toBe(ours);
    // And the real server can keep writing to it.
    expect((await vsctl(real.remote, 'add-port', 'br1', 'p9')).code).toBe(0);
  });

  it('a torn last record is dropped with a log line and the file truncated to valid records', async () => {
    const dir = tempDir();
    const srv = new DbServer(bundle.bin, dir);
    cleanup.push(() => srv.stop());
    await srv.start();
    await populate(srv.remote);
    const before = await dump(srv.remote);
    await srv.stop();
    const good = statSync(srv.dbPath).size;
    appendFileSync(srv.dbPath, 'OVSDB JSON 900 0123456789abcdef0123456789abcdef01234567\n{"Bridge":{"');
    await srv.start();
    expect(srv.stderr).toMatch(/record at offset \d+ is truncated \(\d+ of 900 bytes\)/);
    expect(srv.stderr).toMatch(/dropped the torn or corrupt tail/);
    expect(await dump(srv.remote)).toBe(before);
    expect(statSync(srv.dbPath).size).toBe(good);
    await srv.stop();
    expect((await run('ovsdb-tool', ['show-log', srv.dbPath])).code).toBe(0);
  });
});

describe.skipIf(skipOvs)('crash safety', () => {
  it('after kill -9 during a commit loop, every acknowledged transaction is in the file', async () => {
    const dir = tempDir();
    const srv = new DbServer(bundle.bin, dir);
    cleanup.push(() => srv.stop());
    await srv.start();
    expect((await srv.vsctl('init')).code).toBe(0);
    const sock = connect(srv.sock);
    await new Promise((r) => sock.once('connect', r));
    sock.on('error', () => {});
    const conn = new JsonRpcConnection(sock, { log: pino({ level: 'silent' }) });
    const acked: number[] = [];
    let stop = false;
    const loop = (async () => {
      for (let i = 0; !stop; i++) {
        try {
          const r = (await conn.request('transact', [
            'Open_vSwitch',
            { op: 'mutate', table: 'Open_vSwitch', where: [], mutations: [['external_ids', 'insert', ['map', [[`k${i}`, `v${i}`]]]]] },
          ])) as Array<{ count?: number }>;
          if (r[0].count === 1) acked.push(i);
        } catch {
          return;
        }
      }
    })();
    while (acked.length < 200) await new Promise((r) => setTimeout(r, 5));
    srv.proc!.kill('SIGKILL');
    stop = true;
    await loop;
    await new Promise<void>((r) => (srv.proc!.signalCode !== null ? r() : srv.proc!.once('exit', () => r())));
    const log = await run('ovsdb-tool', ['show-log', srv.dbPath]);
    expect(log.code, log.stderr).toBe(0);
    await srv.start();
    const ids = (await srv.vsctl('get', 'Open_vSwitch', '.', 'external_ids')).stdout;
    const missing = acked.filter((i) => !ids.includes(`k${i}=v${i}`));
    expect(missing).toEqual([]);
    expect(acked.length).toBeGreaterThanOrEqual(200);
  });
});
