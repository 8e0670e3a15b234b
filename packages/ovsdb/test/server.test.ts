// OvsdbServer methods beyond transact, over real unix sockets: the monitor
// family (update, update2, update3 with history), monitor_cond_change,
// monitor_cancel, locks with locked/stolen notifications, wait re-evaluated
// on commits, cancel, get_server_id, set_db_change_aware and `_Server`;
// a session that stops reading is dropped at its backlog bound; group commit
// (one file write per turn, nothing sent before it, a failed write undone).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Database } from '../src/database.ts';
import { JsonRpcConnection } from '@nvs/jsonrpc';
import { parseSchema } from '../src/schema.ts';
import { OvsdbServer } from '../src/server.ts';
import { DbFile } from '../src/storage.ts';
import { SCHEMA } from './helpers/dbserver.ts';

const log = pino({ level: 'silent' });
let dir: string;
let server: OvsdbServer;
let sock: string;
const conns: JsonRpcConnection[] = [];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nvs-server-'));
  sock = join(dir, 'db.sock');
  server = new OvsdbServer({ log });
  server.addDatabase(new Database(parseSchema(JSON.parse(readFileSync(SCHEMA, 'utf8')))));
  await server.listen(`punix:${sock}`);
});

afterEach(async () => {
  for (const c of conns.splice(0)) c.close();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

async function client(): Promise<{ conn: JsonRpcConnection; notes: Array<[string, unknown[]]>; next: (method: string) => Promise<unknown[]> }> {
  const s = connect(sock);
  await new Promise((r) => s.once('connect', r));
  const conn = new JsonRpcConnection(s, { log });
  conns.push(conn);
  const notes: Array<[string, unknown[]]> = [];
  const waiters: Array<{ method: string; resolve: (p: unknown[]) => void }> = [];
  for (const m of ['update', 'update2', 'update3', 'locked', 'stolen']) {
    conn.onNotification(m, (p) => {
      const w = waiters.findIndex((x) => x.method === m);
      if (w >= 0) waiters.splice(w, 1)[0].resolve(p);
      else notes.push([m, p]);
    });
  }
  const next = (method: string): Promise<unknown[]> => {
    const i = notes.findIndex(([m]) => m === method);
    if (i >= 0) return Promise.resolve(notes.splice(i, 1)[0][1]);
    return new Promise((resolve) => waiters.push({ method, resolve }));
  };
  return { conn, notes, next };
}

const tx = (c: JsonRpcConnection, ...ops: unknown[]) => c.request('transact', ['Open_vSwitch', ...ops]) as Promise<any[]>;
const addBridge = (c: JsonRpcConnection, name: string) =>
  tx(c, { op: 'insert', table: 'Bridge', row: { name }, 'uuid-name': 'b' }, { op: 'mutate', table: 'Open_vSwitch', where: [], mutations: [['bridges', 'insert', ['named-uuid', 'b']]] });

describe('server methods', () => {
  beforeEach(async () => {
    const { conn } = await client();
    await tx(conn, { op: 'insert', table: 'Open_vSwitch', row: {} });
  });

  it('list_dbs, get_schema, get_server_id, set_db_change_aware and the _Server database', async () => {
    const { conn } = await client();
    expect(await conn.request('list_dbs', [])).toEqual(['Open_vSwitch', '_Server']);
    expect(((await conn.request('get_schema', ['_Server'])) as any).name).toBe('_Server');
    expect(await conn.request('get_server_id', [])).toBe(server.serverId);
    expect(await conn.request('set_db_change_aware', [true])).toEqual({});
    const init = (await conn.request('monitor_cond', ['_Server', 'm', { Database: [{ columns: ['name', 'model', 'connected', 'leader', 'schema'] }] }])) as any;
    const rows = Object.values(init.Database).map((r: any) => r.initial);
    expect(rows.map((r: any) => r.name).sort()).toEqual(['Open_vSwitch', '_Server']);
    expect(rows.every((r: any) => r.model === 'standalone' && r.connected && r.leader)).toBe(true);
    expect(JSON.parse(rows.find((r: any) => r.name === 'Open_vSwitch').schema).version).toBe('8.3.1');
    const write = await conn.request('transact', ['_Server', { op: 'delete', table: 'Database', where: [] }]);
    expect((write as any[])[1].error).toBe('not supported');
  });

  it('remove-db cancels monitors (monitor_canceled to db-change-aware sessions), drops the _Server row and disconnects unaware sessions', async () => {
    const aware = await client();
    const canceled = new Promise<unknown[]>((r) => aware.conn.onNotification('monitor_canceled', r));
    await aware.conn.request('set_db_change_aware', [true]);
    await aware.conn.request('monitor_cond', ['_Server', 's', { Database: [{ columns: ['name'] }] }]);
    await aware.conn.request('monitor_cond', ['Open_vSwitch', 'o', { Bridge: [{ columns: ['name'] }] }]);
    const unaware = await client();
    const closed = new Promise((r) => unaware.conn.on('close', r));
    expect(server.removeDatabase('Open_vSwitch')).toBe(true);
    expect(server.removeDatabase('Open_vSwitch')).toBe(false);
    expect(await canceled).toEqual(['o']);
    await closed;
    const [, update] = await aware.next('update2');
    expect(Object.values((update as any).Database)).toEqual([{ delete: null }]);
    expect(await aware.conn.request('list_dbs', [])).toEqual(['_Server']);
  });

  it('a read-only remote answers reads and refuses changes with "not allowed"', async () => {
    const roSock = join(dir, 'ro.sock');
    await server.listen(`punix:${roSock}`, { readOnly: true });
    const s = connect(roSock);
    await new Promise((r) => s.once('connect', r));
    const conn = new JsonRpcConnection(s, { log });
    conns.push(conn);
    expect(await tx(conn, { op: 'select', table: 'Bridge', where: [] }, { op: 'comment', comment: 'x' })).toEqual([{ rows: [] }, {}]);
    expect(await tx(conn, { op: 'insert', table: 'Bridge', row: { name: 'br0' } })).toEqual([
      { error: 'not allowed', details: 'insert operation not allowed when database server is in read only mode' },
    ]);
    server.setReadOnly(`punix:${roSock}`, false);
    expect((await tx(conn, { op: 'insert', table: 'Bridge', row: { name: 'br0' } }))[0].uuid).toBeDefined();
  });

  it('monitor (update): initial, insert, modify with old values, delete; select flags honoured', async () => {
    const { conn, next } = await client();
    const init = (await conn.request('monitor', ['Open_vSwitch', 'm1', { Bridge: { columns: ['name', 'external_ids'] }, Open_vSwitch: { columns: ['bridges'], select: { initial: false } } }])) as any;
    expect(init).toEqual({});
    const [r] = await addBridge(conn, 'br0');
    const u1 = (await next('update')) as any[];
    expect(u1[0]).toBe('m1');
    expect(u1[1].Bridge[r.uuid[1]]).toEqual({ new: { name: 'br0', external_ids: ['map', []] } });
    expect(Object.values(u1[1].Open_vSwitch)[0]).toMatchObject({ old: { bridges: ['set', []] }, new: { bridges: r.uuid } });
    await tx(conn, { op: 'mutate', table: 'Bridge', where: [], mutations: [['external_ids', 'insert', ['map', [['k', 'v']]]]] });
    const u2 = (await next('update')) as any[];
    expect(u2[1].Bridge[r.uuid[1]]).toEqual({ old: { external_ids: ['map', []] }, new: { name: 'br0', external_ids: ['map', [['k', 'v']]] } });
    await tx(conn, { op: 'mutate', table: 'Open_vSwitch', where: [], mutations: [['bridges', 'delete', ['set', [r.uuid]]]] });
    const u3 = (await next('update')) as any[];
    expect(u3[1].Bridge[r.uuid[1]]).toEqual({ old: { name: 'br0', external_ids: ['map', [['k', 'v']]] } });
    expect(await conn.request('monitor_cancel', ['m1'])).toEqual({});
    await expect(conn.request('monitor_cancel', ['m1'])).rejects.toMatchObject({ remote: { error: 'unknown monitor' } });
  });

  it('monitor_cond (update2) with conditions, and monitor_cond_change moving rows in and out', async () => {
    const { conn } = await client();
    await addBridge(conn, 'br0');
    await addBridge(conn, 'br1');
    const w = await client();
    const init = (await w.conn.request('monitor_cond', ['Open_vSwitch', 'c', { Bridge: [{ columns: ['name', 'stp_enable', 'flood_vlans'], where: [['name', '==', 'br0']] }] }])) as any;
    expect(Object.values(init.Bridge)).toEqual([{ initial: { name: 'br0' } }]);
    await tx(conn, { op: 'update', table: 'Bridge', where: [], row: { stp_enable: true, flood_vlans: ['set', [1, 2]] } });
    const u = (await w.next('update2')) as any[];
    expect(Object.values(u[1].Bridge)).toEqual([{ modify: { stp_enable: true, flood_vlans: ['set', [1, 2]] } }]);
    await tx(conn, { op: 'mutate', table: 'Bridge', where: [], mutations: [['flood_vlans', 'delete', 1]] });
    expect(Object.values(((await w.next('update2')) as any[])[1].Bridge)).toEqual([{ modify: { flood_vlans: 1 } }]);
    expect(await w.conn.request('monitor_cond_change', ['c', 'c2', { Bridge: [{ where: [['name', '==', 'br1']] }] }])).toEqual({});
    const moved = (await w.next('update2')) as any[];
    expect(moved[0]).toBe('c2');
    expect(Object.values(moved[1].Bridge).sort((a: any) => (a.delete === null ? -1 : 1))).toEqual([{ delete: null }, { insert: { name: 'br1', stp_enable: true, flood_vlans: 2 } }]);
  });

  it('monitor_cond_since: found=true with the changes since a known transaction, found=false otherwise', async () => {
    const a = await client();
    const first = (await a.conn.request('monitor_cond_since', ['Open_vSwitch', 'm', { Bridge: [{ columns: ['name'] }] }, '00000000-0000-0000-0000-000000000000'])) as any[];
    expect(first[0]).toBe(false);
    const [r] = await addBridge(a.conn, 'br0');
    const u = (await a.next('update3')) as any[];
    const lastId = u[1] as string;
    expect(lastId).toMatch(/^[0-9a-f-]{36}$/);
    expect(u[2].Bridge[r.uuid[1]]).toEqual({ insert: { name: 'br0' } });
    await addBridge(a.conn, 'br1');
    const b = await client();
    const since = (await b.conn.request('monitor_cond_since', ['Open_vSwitch', 'm', { Bridge: [{ columns: ['name'] }] }, lastId])) as any[];
    expect(since[0]).toBe(true);
    expect(Object.values(since[2].Bridge)).toEqual([{ insert: { name: 'br1' } }]);
    const unknown = (await b.conn.request('monitor_cond_since', ['Open_vSwitch', 'n', { Bridge: [{ columns: ['name'] }] }, '11111111-2222-3333-4444-555555555555'])) as any[];
    expect(unknown[0]).toBe(false);
    expect(Object.keys(unknown[2].Bridge)).toHaveLength(2);
  });

  it('monitor_cond_since history is bounded by the old values it keeps alive, not only by its length', async () => {
    // A server whose history may hold 25 atoms of replaced values.
    await server.close();
    server = new OvsdbServer({ log, historyAtoms: 25 });
    server.addDatabase(new Database(parseSchema(JSON.parse(readFileSync(SCHEMA, 'utf8')))));
    await server.listen(`punix:${sock}`);
    const a = await client();
    const req = { Bridge: [{ columns: ['name', 'flood_vlans', 'stp_enable'] }] };
    await a.conn.request('monitor_cond_since', ['Open_vSwitch', 'm', req, '00000000-0000-0000-0000-000000000000']);
    const ids: string[] = [];
    const commit = async (...ops: unknown[]): Promise<void> => {
      const r = await tx(a.conn, ...ops);
      expect(r.filter((x) => x?.error)).toEqual([]);
      ids.push(((await a.next('update3')) as any[])[1]);
    };
    const vlans = (op: string, v: number[]) => ({ op: 'mutate', table: 'Bridge', where: [], mutations: [['flood_vlans', op, ['set', v]]] });
    // 0: replaces nothing (the Open_vSwitch row keeps the bridge from being collected)
    await commit({ op: 'insert', table: 'Bridge', row: { name: 'br0' }, 'uuid-name': 'b' }, { op: 'insert', table: 'Open_vSwitch', row: { bridges: ['named-uuid', 'b'] } });
    await commit(vlans('insert', Array.from({ length: 20 }, (_, i) => i + 1))); // 1: replaces an empty set
    await commit(vlans('insert', [21])); // 2: replaces 20 vlans
    await commit(vlans('insert', [22])); // 3: replaces 21 vlans: commits 0-2 must go
    await commit(vlans('delete', [1])); // 4: replaces 22 vlans: commit 3 must go
    await commit({ op: 'update', table: 'Bridge', where: [], row: { stp_enable: true } }); // 5: replaces one boolean
    const b = await client();
    const gone = (await b.conn.request('monitor_cond_since', ['Open_vSwitch', 'm', req, ids[2]])) as any[];
    expect(gone[0]).toBe(false);
    expect(Object.values(gone[2].Bridge)).toEqual([{ initial: { name: 'br0', flood_vlans: ['set', Array.from({ length: 21 }, (_, i) => i + 2)], stp_enable: true } }]);
    const kept = (await b.conn.request('monitor_cond_since', ['Open_vSwitch', 'n', req, ids[4]])) as any[];
    expect(kept[0]).toBe(true);
    expect(kept[1]).toBe(ids[5]);
    expect(Object.values(kept[2].Bridge)).toEqual([{ modify: { stp_enable: true } }]);
  });

  it('lock, steal and unlock with locked/stolen notifications; assert follows ownership', async () => {
    const a = await client();
    const b = await client();
    expect(await a.conn.request('lock', ['L'])).toEqual({ locked: true });
    expect(await b.conn.request('lock', ['L'])).toEqual({ locked: false });
    expect((await tx(b.conn, { op: 'assert', lock: 'L' }))[0].error).toBe('not owner');
    expect(await a.conn.request('unlock', ['L'])).toEqual({});
    expect(await b.next('locked')).toEqual(['L']);
    expect(await tx(b.conn, { op: 'assert', lock: 'L' })).toEqual([{}]);
    expect(await a.conn.request('steal', ['L'])).toEqual({ locked: true });
    expect(await b.next('stolen')).toEqual(['L']);
    // A closed session gives its lock to the next in line.
    const c = await client();
    expect(await c.conn.request('lock', ['L'])).toEqual({ locked: false });
    a.conn.close();
    expect(await c.next('locked')).toEqual(['L']);
  });

  it('a blocked wait is re-evaluated on commits and answered in order; cancel ends one', async () => {
    const a = await client();
    const waiting = tx(
      a.conn,
      { op: 'wait', table: 'Bridge', where: [['name', '==', 'br0']], columns: ['name'], until: '==', rows: [{ name: 'br0' }], timeout: 30_000 },
      { op: 'mutate', table: 'Open_vSwitch', where: [], mutations: [['next_cfg', '+=', 1]] },
    );
    const b = await client();
    await addBridge(b.conn, 'br0');
    expect(await waiting).toEqual([{}, { count: 1 }]);
    const cancelled = a.conn.request('transact', ['Open_vSwitch', { op: 'wait', table: 'Bridge', where: [], columns: ['name'], until: '==', rows: [], timeout: 30_000 }]);
    await new Promise((r) => setTimeout(r, 20));
    a.conn.notify('cancel', [a.conn['nextId'] - 1]);
    // As ovsdb-server: the error is the bare string "canceled" (RFC 7047 4.1.4).
    await expect(cancelled).rejects.toMatchObject({ remote: 'canceled' });
  });
});

describe('inactivity probe', () => {
  it('echoes idle sessions, keeps those that answer and drops those that do not', async () => {
    const probeSock = join(dir, 'probe.sock');
    const probing = new OvsdbServer({ log, probeIntervalMs: 250 });
    await probing.listen(`punix:${probeSock}`);
    try {
      const answering = connect(probeSock);
      const polite = new JsonRpcConnection(answering, { log });
      const mute = connect(probeSock);
      let heard = '';
      mute.on('data', (d: Buffer) => (heard += d.toString()));
      const muteClosed = new Promise((r) => mute.once('close', r));
      await muteClosed;
      expect(heard).toMatch(/"method":"echo"/);
      expect(polite.isClosed).toBe(false);
      expect(await polite.request('list_dbs', [])).toEqual(['_Server']);
      polite.close();
    } finally {
      await probing.close();
    }
  });
});

describe('a client that stops reading', () => {
  it('does not stall the others, and is disconnected once its unsent updates pass maxBacklogBytes', async () => {
    const slowSock = join(dir, 'slow.sock');
    const maxBacklogBytes = 256 * 1024;
    const bounded = new OvsdbServer({ log, maxBacklogBytes });
    bounded.addDatabase(new Database(parseSchema(JSON.parse(readFileSync(SCHEMA, 'utf8')))));
    await bounded.listen(`punix:${slowSock}`);
    try {
      const open = async (): Promise<JsonRpcConnection> => {
        const s = connect(slowSock);
        await new Promise((r) => s.once('connect', r));
        return new JsonRpcConnection(s, { log });
      };
      const requests = { QoS: { columns: ['external_ids'] } };
      // The slow client: a monitor, then it never reads again.
      const slow = connect(slowSock);
      await new Promise((r) => slow.once('connect', r));
      slow.write(JSON.stringify({ method: 'monitor', params: ['Open_vSwitch', 'm', requests], id: 0 }));
      await new Promise((r) => slow.once('data', r));
      slow.pause();
      const slowClosed = new Promise((r) => slow.once('close', r));
      // Two others insert rows of 10 kB (4 MB of updates to each monitor in all) and watch them arrive.
      const others = [await open(), await open()];
      const seen = [0, 0];
      others.forEach((c, i) => c.onNotification('update', () => seen[i]++));
      for (const c of others) await c.request('monitor', ['Open_vSwitch', 'm', requests]);
      const big = 'x'.repeat(10_000);
      await Promise.all(
        others.map(async (c, k) => {
          for (let i = 0; i < 200; i++) await tx(c, { op: 'insert', table: 'QoS', row: { type: 'linux-htb', external_ids: ['map', [[`k${k}-${i}`, big]]] } });
        }),
      );
      // Each other client had every commit's update when its last reply came (updates precede replies).
      expect(seen).toEqual([400, 400]);
      // The slow one, which read nothing since its monitor reply, was dropped at the bound rather than buffered without end:
      // the server has let it go, and what it can still read (from its kernel buffer) ends short of the 400 updates.
      for (let i = 0; i < 100 && bounded.memoryStats().sessions > 2; i++) await new Promise((r) => setTimeout(r, 20));
      expect(bounded.memoryStats().sessions).toBe(2);
      let unread = '';
      slow.on('data', (d: Buffer) => (unread += d.toString()));
      slow.resume();
      await slowClosed;
      expect(unread.split('"method":"update"').length - 1).toBeLessThan(400);
      for (const c of others) c.close();
    } finally {
      await bounded.close();
    }
  });
});

describe('storage failure', () => {
  it('a commit whose record cannot be written fails with "I/O error" and changes nothing', async () => {
    const { DbFile } = await import('../src/storage.ts');
    const path = join(dir, 'io.db');
    DbFile.create(path, JSON.parse(readFileSync(SCHEMA, 'utf8')));
    const { file, db } = DbFile.open(path, { log }, (s) => new Database(s));
    const ioSock = join(dir, 'io.sock');
    const ioServer = new OvsdbServer({ log });
    ioServer.addDatabase(db, file);
    await ioServer.listen(`punix:${ioSock}`);
    try {
      const s = connect(ioSock);
      await new Promise((r) => s.once('connect', r));
      const c = new JsonRpcConnection(s, { log });
      expect(await tx(c, { op: 'insert', table: 'Open_vSwitch', row: {} })).toEqual([{ uuid: expect.any(Array) }]);
      file.close(); // the descriptor is gone: the next append fails
      const r = await tx(c, { op: 'mutate', table: 'Open_vSwitch', where: [], mutations: [['next_cfg', '+=', 1]] });
      expect(r).toEqual([{ count: 1 }, { error: 'I/O error', details: expect.stringMatching(/appending to .*io\.db failed/) }]);
      const sel = await tx(c, { op: 'select', table: 'Open_vSwitch', where: [], columns: ['next_cfg'] });
      expect(sel).toEqual([{ rows: [{ next_cfg: 0 }] }]);
      c.close();
    } finally {
      await ioServer.close();
    }
  });
});

describe('group commit', () => {
  /** A server on a real database file; `writes` counts the file's appends and the records in each. */
  async function fileServer(): Promise<{ path: string; file: DbFile; srv: OvsdbServer; sock: string; writes: number[] }> {
    const path = join(dir, 'group.db');
    DbFile.create(path, JSON.parse(readFileSync(SCHEMA, 'utf8')));
    const { file, db } = DbFile.open(path, { log }, (s) => new Database(s));
    const writes: number[] = [];
    const append = file.append.bind(file);
    file.append = (bodies, durable) => {
      writes.push(bodies.length);
      append(bodies, durable);
    };
    const srv = new OvsdbServer({ log });
    srv.addDatabase(db, file);
    const groupSock = join(dir, 'group.sock');
    await srv.listen(`punix:${groupSock}`);
    return { path, file, srv, sock: groupSock, writes };
  }

  /** A connection whose requests made in `batch` leave in one write, so the server reads them in one turn. */
  async function corkedClient(path: string): Promise<{ conn: JsonRpcConnection; batch: <T>(send: () => T) => T }> {
    const s = connect(path);
    await new Promise((r) => s.once('connect', r));
    const conn = new JsonRpcConnection(s, { log });
    conns.push(conn);
    return {
      conn,
      batch: (send) => {
        s.cork();
        try {
          return send();
        } finally {
          s.uncork();
        }
      },
    };
  }

  it("the commits of one turn reach the file in one write, and every reply and update follows it", async () => {
    const { path, srv, sock: groupSock, writes } = await fileServer();
    try {
      const { conn, batch } = await corkedClient(groupSock);
      await tx(conn, { op: 'insert', table: 'Open_vSwitch', row: {} });
      const watcher = await corkedClient(groupSock);
      const updates: unknown[] = [];
      watcher.conn.onNotification('update', (p) => updates.push(p[1]));
      await watcher.conn.request('monitor', ['Open_vSwitch', null, { Bridge: { columns: ['name'] } }]);
      writes.length = 0;
      const replies = await batch(() => Promise.all(['a', 'b', 'c', 'd', 'e'].map((n) => addBridge(conn, n))));
      expect(replies.every((r) => r.length === 2 && r[1].count === 1)).toBe(true);
      expect(writes).toEqual([5]);
      await watcher.conn.request('echo', []);
      expect(updates.map((u: any) => Object.values(u.Bridge).map((r: any) => r.new.name)).flat()).toEqual(['a', 'b', 'c', 'd', 'e']);
      await srv.close();
      const reopened = DbFile.open(path, { log }, (s) => new Database(s));
      reopened.file.close();
      expect([...reopened.db.table('Bridge')!.values()].map((r) => r.values.get('name')!.keys[0]).sort()).toEqual(['a', 'b', 'c', 'd', 'e']);
    } finally {
      await srv.close();
    }
  });

  it('a failed write undoes every commit of its turn: each gets "I/O error", reads and monitors in the turn see none of them', async () => {
    const { file, srv, sock: groupSock } = await fileServer();
    try {
      const { conn, batch } = await corkedClient(groupSock);
      await tx(conn, { op: 'insert', table: 'Open_vSwitch', row: {} });
      await addBridge(conn, 'kept');
      const watcher = await corkedClient(groupSock);
      const updates: unknown[] = [];
      watcher.conn.onNotification('update', (p) => updates.push(p[1]));
      await watcher.conn.request('monitor', ['Open_vSwitch', null, { Bridge: { columns: ['name'] } }]);
      file.close(); // the descriptor is gone: the turn's write fails
      const [first, second, read, monitored] = await batch(() => [
        addBridge(conn, 'x'),
        // Depends on the first: it changes the bridge the first inserted.
        tx(conn, { op: 'mutate', table: 'Bridge', where: [['name', '==', 'x']], mutations: [['external_ids', 'insert', ['map', [['k', 'v']]]]] }),
        tx(conn, { op: 'select', table: 'Bridge', where: [], columns: ['name'] }),
        conn.request('monitor', ['Open_vSwitch', 'late', { Bridge: { columns: ['name'] } }]),
      ]);
      const ioError = { error: 'I/O error', details: expect.stringMatching(/appending to .*group\.db failed/) };
      expect(await first).toEqual([{ uuid: expect.any(Array) }, { count: 1 }, ioError]);
      expect(await second).toEqual([{ count: 1 }, ioError]);
      expect(await read).toEqual([{ rows: [{ name: 'kept' }] }]);
      expect(Object.values((await monitored) as any).flatMap((t: any) => Object.values(t).map((r: any) => r.new.name))).toEqual(['kept']);
      await watcher.conn.request('echo', []);
      expect(updates).toEqual([]);
    } finally {
      await srv.close();
    }
  });
});
