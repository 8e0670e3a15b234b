// The IDL against nvs's own server: the replica follows other clients'
// inserts, updates and deletes with change events, and transactions verify
// what they read and retry when it changed underneath. One test follows
// the real ovsdb-server, written to by the real ovs-vsctl.
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OvsdbClient, TransactionError } from '../src/client.ts';
import { makeAtom, makeMap, makeSet } from '../src/datum.ts';
import { Idl, TryAgain, type IdlChanges } from '../src/idl.ts';
import { OvsdbServer } from '../src/server.ts';
import { startServer, stopServer, VSWITCH_SCHEMA as SCHEMA } from './helpers/inprocess.ts';
import { JsonRpcConnection } from '@nvs/jsonrpc';
import { createServer } from 'node:net';
import { needsOvs } from '../../../test/ovs-tools.ts';

const skipOvs = needsOvs('ovsdb Idl against ovsdb-server', ['ovsdb-tool', 'ovsdb-server', 'ovs-vsctl']);

const DB = 'Open_vSwitch';

let dir: string;
let server: OvsdbServer;
let clients: OvsdbClient[];

beforeEach(async () => {
  ({ dir, server } = await startServer('nvs-idl-'));
  clients = [];
});

afterEach(async () => {
  for (const c of clients) c.close();
  await stopServer(dir, server);
});

async function connect(): Promise<OvsdbClient> {
  const c = await OvsdbClient.connect(`unix:${join(dir, 'db.sock')}`);
  clients.push(c);
  return c;
}

const TABLES = { Open_vSwitch: 'all', Bridge: ['name', 'ports', 'external_ids'], Port: ['name', 'interfaces', 'tag'], Interface: ['name', 'type'] } as const;

/** Collects change events; `next()` resolves with the next one. */
function changes(idl: Idl): { next: () => Promise<IdlChanges> } {
  const queue: IdlChanges[] = [];
  let wake: (() => void) | undefined;
  idl.on('change', (c: IdlChanges) => {
    queue.push(c);
    wake?.();
  });
  return {
    next: async () => {
      while (queue.length === 0) await new Promise<void>((r) => (wake = r));
      return queue.shift()!;
    },
  };
}

describe.each(['monitor_cond', 'monitor'] as const)('Idl replica over %s', (method) => {
  it('follows inserts, updates and deletes made by another client, with old values', async () => {
    const writer = await connect();
    const [ovsIns] = await writer.transact(DB, [{ op: 'insert', table: 'Open_vSwitch', row: {} }]);
    const ovsUuid = (ovsIns.uuid as string[])[1];
    const idl = await Idl.create(await connect(), DB, TABLES, { method });
    expect(idl.first('Open_vSwitch')?.uuid).toBe(ovsUuid);
    const events = changes(idl);

    await writer.transact(DB, [
      { op: 'insert', table: 'Interface', row: { name: 'p1', type: 'internal' }, 'uuid-name': 'i' },
      { op: 'insert', table: 'Port', row: { name: 'p1', interfaces: ['named-uuid', 'i'], tag: 10 }, 'uuid-name': 'p' },
      { op: 'insert', table: 'Bridge', row: { name: 'br0', ports: ['named-uuid', 'p'] }, 'uuid-name': 'b' },
      { op: 'mutate', table: 'Open_vSwitch', where: [], mutations: [['bridges', 'insert', ['named-uuid', 'b']]] },
    ]);
    let c = await events.next();
    const br = c.get('Bridge')!.inserted[0];
    expect(br.string('name')).toBe('br0');
    const port = idl.get('Port', br.set('ports')[0] as string)!;
    expect(port.number('tag')).toBe(10);
    expect(idl.get('Interface', port.set('interfaces')[0] as string)?.string('type')).toBe('internal');
    expect(c.get('Open_vSwitch')!.modified[0].columns).toEqual(['bridges']);

    await writer.transact(DB, [
      { op: 'update', table: 'Port', where: [['name', '==', 'p1']], row: { tag: 20 } },
      { op: 'mutate', table: 'Bridge', where: [], mutations: [['external_ids', 'insert', ['map', [['k', 'v']]]]] },
    ]);
    c = await events.next();
    const mod = c.get('Port')!.modified[0];
    expect(mod.columns).toEqual(['tag']);
    expect(mod.old.number('tag')).toBe(10);
    expect(mod.row.number('tag')).toBe(20);
    expect(idl.get('Bridge', br.uuid)!.map('external_ids')).toEqual(new Map([['k', 'v']]));
    // The old snapshot is untouched.
    expect(br.map('external_ids').size).toBe(0);

    await writer.transact(DB, [{ op: 'mutate', table: 'Open_vSwitch', where: [], mutations: [['bridges', 'delete', ['set', []]]] }, { op: 'update', table: 'Open_vSwitch', where: [], row: { bridges: ['set', []] } }]);
    c = await events.next();
    // Unreferenced Bridge, Port and Interface rows are garbage-collected by the server.
    expect(c.get('Bridge')!.deleted.map((r) => r.string('name'))).toEqual(['br0']);
    expect(c.get('Port')!.deleted[0].number('tag')).toBe(20);
    expect([...idl.rows('Interface')]).toEqual([]);
  });

  it('refuses unknown tables and columns with codes', async () => {
    const client = await connect();
    await expect(Idl.create(client, DB, { Nope: 'all' })).rejects.toMatchObject({ code: 'OVSDB_UNKNOWN_TABLE' });
    await expect(Idl.create(client, DB, { Bridge: ['nope'] })).rejects.toMatchObject({ code: 'OVSDB_UNKNOWN_COLUMN' });
  });
});

describe('Idl transactions', () => {
  it('inserts rows that reference each other and reports their real uuids', async () => {
    const idl = await Idl.create(await connect(), DB, TABLES);
    const { commit } = await idl.transact((txn) => {
      const ovs = txn.first('Open_vSwitch') ?? txn.insert('Open_vSwitch');
      const iface = txn.insert('Interface', { name: makeAtom('br0'), type: makeAtom('internal') });
      const port = txn.insert('Port', { name: makeAtom('br0'), interfaces: makeAtom(iface.uuid) });
      const br = txn.insert('Bridge', { name: makeAtom('br0'), ports: makeAtom(port.uuid) });
      txn.set(ovs, 'bridges', makeSet([br.uuid]));
      // The transaction sees its own changes.
      expect(txn.get('Bridge', br.uuid)?.string('name')).toBe('br0');
      expect([...txn.rows('Port')].map((r) => r.string('name'))).toEqual(['br0']);
    });
    expect(commit.status).toBe('success');
    expect(commit.inserted.size).toBe(4);
    if (idl.first('Bridge') === undefined) await idl.waitForChange();
    const br = idl.first('Bridge')!;
    expect([...commit.inserted.values()]).toContain(br.uuid);
    expect(idl.first('Open_vSwitch')!.set('bridges')).toEqual([br.uuid]);
  });

  it('sends nothing when nothing changed, including sets to the current value', async () => {
    const writer = await connect();
    await writer.transact(DB, [{ op: 'insert', table: 'Open_vSwitch', row: { next_cfg: 3 } }]);
    const idl = await Idl.create(await connect(), DB, TABLES);
    const { commit } = await idl.transact((txn) => {
      const ovs = txn.first('Open_vSwitch')!;
      txn.verify(ovs, 'next_cfg');
      txn.set(ovs, 'next_cfg', makeAtom(3));
      expect(txn.isEmpty).toBe(true);
    });
    expect(commit).toEqual({ status: 'unchanged', inserted: new Map() });
  });

  it('increments a column on the server and returns the new value', async () => {
    const writer = await connect();
    await writer.transact(DB, [{ op: 'insert', table: 'Open_vSwitch', row: { next_cfg: 41 } }]);
    const idl = await Idl.create(await connect(), DB, TABLES);
    const { commit } = await idl.transact((txn) => {
      const ovs = txn.first('Open_vSwitch')!;
      txn.set(ovs, 'external_ids', makeMap([['a', 'b']]));
      txn.increment(ovs, 'next_cfg');
    });
    expect(commit.incremented).toBe(42);
  });

  it('retries when a verified column changed between read and commit', async () => {
    const writer = await connect();
    await writer.transact(DB, [{ op: 'insert', table: 'Open_vSwitch', row: { next_cfg: 1 } }]);
    const idl = await Idl.create(await connect(), DB, TABLES);
    let attempts = 0;
    const { value } = await idl.transact(async (txn) => {
      attempts++;
      const ovs = txn.first('Open_vSwitch')!;
      const seen = ovs.number('next_cfg')!;
      txn.verify(ovs, 'next_cfg');
      txn.set(ovs, 'cur_cfg', makeAtom(seen));
      if (attempts === 1) {
        // Another client moves next_cfg after we read it: our wait must fail.
        await writer.transact(DB, [{ op: 'update', table: 'Open_vSwitch', where: [], row: { next_cfg: 5 } }]);
      }
      return seen;
    });
    expect(attempts).toBe(2);
    expect(value).toBe(5);
    const [sel] = await writer.transact(DB, [{ op: 'select', table: 'Open_vSwitch', where: [], columns: ['cur_cfg'] }]);
    expect(sel.rows).toEqual([{ cur_cfg: 5 }]);
  });

  it('a verify failure surfaces as TransactionError "timed out" from a bare commit', async () => {
    const writer = await connect();
    await writer.transact(DB, [{ op: 'insert', table: 'Open_vSwitch', row: { next_cfg: 1 } }]);
    const idl = await Idl.create(await connect(), DB, TABLES);
    const txn = idl.transaction();
    const ovs = txn.first('Open_vSwitch')!;
    txn.verify(ovs, 'next_cfg');
    txn.set(ovs, 'cur_cfg', makeAtom(1));
    await writer.transact(DB, [{ op: 'update', table: 'Open_vSwitch', where: [], row: { next_cfg: 2 } }]);
    const err = await txn.commit().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransactionError);
    expect((err as TransactionError).rfcError).toBe('timed out');
  });

  it('reruns a builder that throws TryAgain once the replica changes', async () => {
    const writer = await connect();
    await writer.transact(DB, [{ op: 'insert', table: 'Open_vSwitch', row: { cur_cfg: 0 } }]);
    const idl = await Idl.create(await connect(), DB, TABLES);
    let runs = 0;
    const done = idl.transact((txn) => {
      runs++;
      const cur = txn.first('Open_vSwitch')!.number('cur_cfg')!;
      if (cur < 3) throw new TryAgain();
      return cur;
    });
    for (const v of [1, 2, 3]) await writer.transact(DB, [{ op: 'update', table: 'Open_vSwitch', where: [], row: { cur_cfg: v } }]);
    expect((await done).value).toBe(3);
    expect(runs).toBeGreaterThanOrEqual(2);
  });

  it('mutates sets and maps on the server, on existing rows and on rows it inserts, and the server checks the result', async () => {
    const writer = await connect();
    await writer.transact(DB, [{ op: 'insert', table: 'Open_vSwitch', row: { external_ids: ['map', [['a', '1'], ['b', '2']]] } }]);
    const idl = await Idl.create(await connect(), DB, TABLES);
    const { commit } = await idl.transact((txn) => {
      const ovs = txn.first('Open_vSwitch')!;
      txn.mutate(ovs, 'external_ids', 'delete', makeSet(['b']));
      txn.mutate(ovs, 'external_ids', 'insert', makeMap([['a', 'kept'], ['c', '3']]));
      const port = txn.insert('Port', { name: makeAtom('p1'), interfaces: makeAtom(txn.insert('Interface', { name: makeAtom('p1') }).uuid) });
      txn.mutate(port, 'tag', 'insert', makeAtom(7));
      const br = txn.insert('Bridge', { name: makeAtom('br0'), ports: makeAtom(port.uuid) });
      txn.set(ovs, 'bridges', makeSet([br.uuid]));
      // Not shown in the transaction's own view.
      expect(txn.get('Open_vSwitch', ovs.uuid)!.map('external_ids')).toEqual(new Map([['a', '1'], ['b', '2']]));
    });
    expect(commit.status).toBe('success');
    const [ovs, port] = await writer.transact(DB, [
      { op: 'select', table: 'Open_vSwitch', where: [], columns: ['external_ids'] },
      { op: 'select', table: 'Port', where: [], columns: ['tag'] },
    ]);
    // A map insert leaves a key that is there alone.
    expect(ovs.rows).toEqual([{ external_ids: ['map', [['a', '1'], ['c', '3']]] }]);
    expect(port.rows).toEqual([{ tag: 7 }]);
    // A second tag is more than the column holds: the server refuses the whole transaction.
    const err = await idl
      .transact((txn) => txn.mutate(txn.rows('Port').next().value!, 'tag', 'insert', makeAtom(8)))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransactionError);
    expect((err as TransactionError).rfcError).toBe('constraint violation');
  });

  it('refuses to write a column the table does not have', async () => {
    const idl = await Idl.create(await connect(), DB, TABLES);
    const txn = idl.transaction();
    expect(() => txn.insert('Bridge', { nope: makeAtom(1) })).toThrow(/no column "nope"/);
    expect(() => txn.insert('QoS')).toThrow(/unknown table "QoS"/);
  });
});

describe.skipIf(skipOvs)('Idl against the real ovsdb-server', () => {
  it('replicates what ovs-vsctl writes and commits its own transactions there', async () => {
    const sock = join(dir, 'ovs.sock');
    execFileSync('ovsdb-tool', ['create', join(dir, 'ovs.db'), '/usr/share/openvswitch/vswitch.ovsschema']);
    const ovsdb = spawn('ovsdb-server', [join(dir, 'ovs.db'), `--remote=punix:${sock}`, `--unixctl=${join(dir, 'ovs.ctl')}`, '--no-chdir'], { stdio: 'ignore' });
    try {
      const vsctl = (...args: string[]): string => execFileSync('ovs-vsctl', [`--db=unix:${sock}`, '--no-wait', ...args], { encoding: 'utf8' });
      let client: OvsdbClient | undefined;
      for (let i = 0; i < 100 && !client; i++) {
        client = await OvsdbClient.connect(`unix:${sock}`).catch(() => undefined);
        if (!client) await new Promise((r) => setTimeout(r, 50));
      }
      clients.push(client!);
      vsctl('init');
      const idl = await Idl.create(client!, DB, TABLES);
      const events = changes(idl);
      vsctl('add-br', 'br0', '--', 'add-port', 'br0', 'p1', 'tag=10');
      let c = await events.next();
      expect(c.get('Port')!.inserted.map((r) => r.string('name')).sort()).toEqual(['br0', 'p1']);
      vsctl('set', 'Port', 'p1', 'tag=20');
      c = await events.next();
      expect(c.get('Port')!.modified[0]).toMatchObject({ columns: ['tag'] });
      expect(c.get('Port')!.modified[0].row.number('tag')).toBe(20);
      expect(c.get('Port')!.modified[0].old.number('tag')).toBe(10);
      await idl.transact((txn) => {
        const port = [...txn.rows('Port')].find((p) => p.string('name') === 'p1')!;
        txn.verify(port, 'tag');
        txn.set(port, 'tag', makeSet([]));
      });
      expect(vsctl('get', 'Port', 'p1', 'tag')).toBe('[]\n');
      vsctl('del-port', 'p1');
      c = await events.next();
      if (!c.get('Port')?.deleted.length) c = await events.next();
      expect(c.get('Port')!.deleted.map((r) => r.string('name'))).toEqual(['p1']);
    } finally {
      ovsdb.kill('SIGTERM');
    }
  });
});

describe('Idl against a peer that breaks the protocol', () => {
  it('drops the connection on an update that does not fit the schema, instead of keeping a wrong replica', async () => {
    const sock = join(dir, 'bad.sock');
    // A peer that answers like a server, then sends a Bridge name that is a number.
    const bad = createServer((socket) => {
      const conn = new JsonRpcConnection(socket, { log: pino({ level: 'silent' }) });
      conn.handle('get_schema', () => SCHEMA);
      conn.handle('monitor_cond', () => {
        setImmediate(() => conn.notify('update2', ['idl', { Bridge: { '11111111-2222-3333-4444-555555555555': { insert: { name: 42 } } } }]));
        return {};
      });
    });
    await new Promise<void>((r) => bad.listen(sock, r));
    try {
      const client = await OvsdbClient.connect(`unix:${sock}`);
      const closed = new Promise((r) => client.once('close', r));
      const idl = await Idl.create(client, DB, TABLES);
      await closed;
      expect(idl.lastError?.message).toMatch(/expected string, got 42/);
      expect([...idl.rows('Bridge')]).toEqual([]);
    } finally {
      await new Promise((r) => bad.close(r));
    }
  });
});
