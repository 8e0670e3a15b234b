// nvs-dbserver --record / --replay: a session of the real ovs-vsctl and
// ovsdb-client recorded, then replayed with no socket onto a copy of the
// starting database, must leave the same file (same uuids; only `_date` and
// the record hashes that cover it differ); a damaged replay file is refused
// with a message naming the line.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleDbServer, DbServer, run, SCHEMA } from '../packages/ovsdb/test/helpers/dbserver.ts';
import { needsOvs } from './ovs-tools.ts';

const skipOvs = needsOvs('test/ovsdb-replay', ['ovs-vsctl', 'ovsdb-client', 'ovsdb-tool', 'ovs-appctl']);

let bundle: { bin: string; root: string };
const cleanup: Array<() => Promise<void> | void> = [];
beforeAll(async () => {
  bundle = await bundleDbServer();
});
afterAll(() => rmSync(bundle.root, { recursive: true, force: true }));
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** The file without what differs between runs by design (as OVS's test's sed does). */
const withoutDates = (path: string): string =>
  readFileSync(path, 'utf8')
    .replace(/^(OVSDB JSON \d+).*$/gm, '$1')
    .replace(/"_date":\d+/g, '"_date":0');

/** Records a short session in a fresh run directory; returns it, with `start.db` the database as it was before. */
async function recordSession(): Promise<{ dir: string; srv: DbServer }> {
  const dir = mkdtempSync(join(tmpdir(), 'nvs-replay-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const srv = new DbServer(bundle.bin, dir);
  const created = await run('ovsdb-tool', ['create', srv.dbPath, SCHEMA]);
  expect(created.code, created.stderr).toBe(0);
  copyFileSync(srv.dbPath, join(dir, 'start.db'));
  await srv.start([srv.dbPath, `--record=${dir}`]);
  cleanup.push(() => srv.stop());
  for (const args of [['init'], ['add-br', 'br0'], ['add-port', 'br0', 'p1']]) {
    const r = await srv.vsctl(...args);
    expect(r.code, r.stderr).toBe(0);
  }
  const txn = await run('ovsdb-client', ['transact', srv.remote, '["Open_vSwitch",{"op":"update","table":"Open_vSwitch","where":[],"row":{"external_ids":["map",[["recorded","yes"]]]}}]']);
  expect(txn.code, txn.stderr).toBe(0);
  const exited = new Promise((r) => srv.proc!.once('exit', r));
  await run('ovs-appctl', ['-t', srv.ctl, 'exit']);
  await exited;
  return { dir, srv };
}

/** Replays the recording of `dir` onto start.db (same run directory: the remotes must be named as recorded). */
const replay = (dir: string) =>
  run(process.execPath, [bundle.bin, '--rundir', dir, `--replay=${dir}`, join(dir, 'start.db')], { timeoutMs: 30_000 });

describe.skipIf(skipOvs)('nvs-dbserver --record / --replay', () => {
  it('replays a recorded session to the same database file, uuids included', async () => {
    const { dir, srv } = await recordSession();
    const r = await replay(dir);
    expect(r.code, r.stderr).toBe(0);
    const recorded = withoutDates(srv.dbPath);
    expect(recorded.includes('"recorded","yes"')).toBe(true);
    expect(withoutDates(join(dir, 'start.db'))).toBe(recorded);
  }, 60_000);

  it('refuses a garbled or truncated replay file, naming the line', async () => {
    const { dir } = await recordSession();
    const file = join(dir, 'nvs-dbserver.replay');
    const lines = readFileSync(file, 'utf8').split('\n');

    writeFileSync(file, lines.slice(0, 3).join('\n') + '\n{"data":0,"base6\n');
    const garbled = await replay(dir);
    expect(garbled.code).toBe(1);
    expect(garbled.stderr).toContain('nvs-dbserver.replay:4: not JSON');

    writeFileSync(file, lines.slice(0, 3).join('\n'));
    const truncated = await replay(dir);
    expect(truncated.code).toBe(1);
    expect(truncated.stderr).toContain('nvs-dbserver.replay:3: truncated');
  }, 60_000);
});
