// Hostile and broken clients against the nvs-dbserver program: each gets an
// error reply or a closed connection, the server keeps serving the others,
// and the database is unchanged.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import pino from 'pino';
import { bundleDbServer, DbServer, run } from '../packages/ovsdb/test/helpers/dbserver.ts';
import { JsonRpcConnection } from '@nvs/jsonrpc';
import { needsOvs } from './ovs-tools.ts';

const skipOvs = needsOvs('test/ovsdb-badinput', ['ovs-vsctl', 'ovsdb-client']);

let bundle: { bin: string; root: string };
let srv: DbServer;
let snapshot: string;
const log = pino({ level: 'silent' });

async function open(): Promise<Socket> {
  const s = connect(srv.sock);
  s.on('error', () => {});
  s.resume(); // discard replies, so the stream flows and 'close' can come
  await new Promise((r) => s.once('connect', r));
  return s;
}

async function rpc(): Promise<JsonRpcConnection> {
  return new JsonRpcConnection(await open(), { log });
}

/** Resolves when the server closes `s`. */
function closedBy(s: Socket): Promise<void> {
  return new Promise((r) => {
    if (s.destroyed) r();
    s.once('close', () => r());
  });
}

async function dump(): Promise<string> {
  const d = await run('ovsdb-client', ['dump', srv.remote, 'Open_vSwitch']);
  expect(d.code, d.stderr).toBe(0);
  return d.stdout.replace(/^_version.*$/gm, '');
}

beforeAll(async () => {
  bundle = await bundleDbServer();
  srv = new DbServer(bundle.bin);
  await srv.start();
  for (const args of [['init'], ['add-br', 'br0'], ['add-port', 'br0', 'eth1', 'tag=5']]) expect((await srv.vsctl(...args)).code).toBe(0);
  snapshot = await dump();
});

afterAll(async () => {
  // Whatever happened above, the server still answers and nothing changed.
  expect(await dump()).toBe(snapshot);
  await srv?.dispose();
  if (bundle) rmSync(bundle.root, { recursive: true, force: true });
});

describe.skipIf(skipOvs)('bad input', () => {
  it('malformed JSON closes that connection only', async () => {
    const bystander = await rpc();
    const s = await open();
    s.write('{"method":"list_dbs","params":[],"id":1}{"method": nope]');
    await closedBy(s);
    expect(await bystander.request('list_dbs', [])).toEqual(['Open_vSwitch', '_Server']);
    bystander.close();
  });

  it('unknown methods, unknown databases and bad transactions get error replies', async () => {
    const c = await rpc();
    await expect(c.request('frobnicate', [])).rejects.toMatchObject({ remote: { error: 'unknown method' } });
    await expect(c.request('get_schema', ['Nope'])).rejects.toMatchObject({ remote: { error: 'unknown database' } });
    await expect(c.request('transact', ['Nope', { op: 'comment', comment: 'x' }])).rejects.toMatchObject({ remote: { error: 'unknown database' } });
    const wrongType = (await c.request('transact', ['Open_vSwitch', { op: 'update', table: 'Port', where: [['name', '==', 'eth1']], row: { tag: 'five' } }])) as any[];
    expect(wrongType[0].error).toBe('syntax error');
    const range = (await c.request('transact', ['Open_vSwitch', { op: 'update', table: 'Port', where: [['name', '==', 'eth1']], row: { tag: 4096 } }])) as any[];
    expect(range[0].error).toBe('constraint violation');
    const dangling = (await c.request('transact', [
      'Open_vSwitch',
      { op: 'mutate', table: 'Bridge', where: [['name', '==', 'br0']], mutations: [['ports', 'insert', ['uuid', '00000000-1111-2222-3333-444444444444']]] },
    ])) as any[];
    expect(dangling[1].error).toBe('referential integrity violation');
    const notArray = (await c.request('transact', ['Open_vSwitch', 42])) as any[];
    expect(notArray[0].error).toBe('syntax error');
    expect(await c.request('echo', ['still', 'here'])).toEqual(['still', 'here']);
    c.close();
  });

  it('100 MB without a delimiter closes the connection; others are served meanwhile', async () => {
    const bystander = await rpc();
    const s = await open();
    const closed = closedBy(s);
    const chunk = Buffer.alloc(1024 * 1024, 'x');
    s.write('{"method":"transact","params":["Open_vSwitch","');
    let sent = 0;
    while (sent < 100 && !s.destroyed) {
      if (!s.write(chunk)) await Promise.race([new Promise((r) => s.once('drain', r)), closed]);
      sent++;
    }
    await closed;
    expect(await bystander.request('list_dbs', [])).toEqual(['Open_vSwitch', '_Server']);
    bystander.close();
  });

  it('a client vanishing mid-transaction changes nothing', async () => {
    // Half a transaction, then gone.
    const s = await open();
    s.write('{"method":"transact","params":["Open_vSwitch",{"op":"delete","table":"Bridge","where":[]},{"op":"insert","table":"Bri');
    s.destroy();
    // A transaction blocked in a wait, then gone: it must never commit.
    const c = await rpc();
    void c
      .request('transact', [
        'Open_vSwitch',
        { op: 'wait', table: 'Bridge', where: [], columns: ['name'], until: '==', rows: [{ name: 'never' }], timeout: 60_000 },
        { op: 'delete', table: 'Port', where: [['name', '==', 'eth1']] },
      ])
      .catch(() => {});
    await new Promise((r) => setTimeout(r, 50));
    c.close();
    expect((await srv.vsctl('add-br', 'tmp')).code).toBe(0);
    expect((await srv.vsctl('del-br', 'tmp')).code).toBe(0);
    expect((await srv.vsctl('list-ports', 'br0')).stdout).toBe('eth1\n');
  });
});
