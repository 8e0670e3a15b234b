// OvsdbClient against nvs's own server over real sockets (unix and tcp):
// every method the client offers, and its typed errors.
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConnectFailedError, InvalidRemoteError, OvsdbClient, parseRemote, TransactionError } from '../src/client.ts';
import { OvsdbServer } from '../src/server.ts';
import { startServer, stopServer } from './helpers/inprocess.ts';
import type { TableUpdates } from '../src/client.ts';


let dir: string;
let server: OvsdbServer;
let clients: OvsdbClient[];

beforeEach(async () => {
  ({ dir, server } = await startServer('nvs-client-'));
  clients = [];
});

afterEach(async () => {
  for (const c of clients) c.close();
  await stopServer(dir, server);
});

async function connect(remote = `unix:${join(dir, 'db.sock')}`): Promise<OvsdbClient> {
  const c = await OvsdbClient.connect(remote);
  clients.push(c);
  return c;
}

/** Resolves with the next update a monitor handler receives. */
function nextUpdate(): { handler: (u: TableUpdates) => void; next: () => Promise<TableUpdates> } {
  const queue: TableUpdates[] = [];
  let wake: (() => void) | undefined;
  return {
    handler: (u) => {
      queue.push(u);
      wake?.();
    },
    next: async () => {
      while (queue.length === 0) await new Promise<void>((r) => (wake = r));
      return queue.shift()!;
    },
  };
}

describe('parseRemote', () => {
  it('reads unix and tcp remotes, IPv6 in brackets', () => {
    expect(parseRemote('unix:/run/nvs/db.sock')).toEqual({ kind: 'unix', path: '/run/nvs/db.sock' });
    expect(parseRemote('tcp:127.0.0.1:6640')).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 6640 });
    expect(parseRemote('tcp:[::1]:6640')).toEqual({ kind: 'tcp', host: '::1', port: 6640 });
  });

  it('refuses anything else with a code', () => {
    for (const bad of ['unix:', 'tcp:1.2.3.4', 'tcp:1.2.3.4:0', 'tcp:1.2.3.4:70000', 'ssl:1.2.3.4:6640', '/run/db.sock']) {
      expect(() => parseRemote(bad)).toThrow(InvalidRemoteError);
    }
    try {
      parseRemote('bogus');
    } catch (err) {
      expect((err as InvalidRemoteError).code).toBe('OVSDB_INVALID_REMOTE');
      expect((err as Error).message).toContain('unix:PATH or tcp:IP:PORT');
    }
  });
});

describe('OvsdbClient', () => {
  it('lists databases, fetches the schema and echoes', async () => {
    const c = await connect();
    expect(await c.listDbs()).toContain('Open_vSwitch');
    const schema = await c.getSchema('Open_vSwitch');
    expect(schema.tables.get('Bridge')?.columns.get('ports')?.type.key.refTable).toBe('Port');
    expect(await c.echo('hello', 42)).toEqual(['hello', 42]);
  });

  it('says which socket failed and why when it cannot connect', async () => {
    const remote = `unix:${join(dir, 'nothing.sock')}`;
    const err = await OvsdbClient.connect(remote).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectFailedError);
    expect((err as ConnectFailedError).code).toBe('OVSDB_CONNECT_FAILED');
    expect((err as Error).message).toBe(`${remote}: database connection failed (No such file or directory)`);
  });

  it('transacts over tcp and reports a failed operation as TransactionError', async () => {
    await server.listen('ptcp:0:127.0.0.1');
    const port = server.remotes().find((r) => r.startsWith('ptcp:'))!.split(':')[1];
    const c = await connect(`tcp:127.0.0.1:${port}`);
    const [ins] = await c.transact('Open_vSwitch', [{ op: 'insert', table: 'Open_vSwitch', row: { next_cfg: 7 } }]);
    expect((ins.uuid as unknown[])[0]).toBe('uuid');
    const [sel] = await c.transact('Open_vSwitch', [{ op: 'select', table: 'Open_vSwitch', where: [], columns: ['next_cfg'] }]);
    expect(sel.rows).toEqual([{ next_cfg: 7 }]);
    const err = await c
      .transact('Open_vSwitch', [{ op: 'insert', table: 'Interface', row: { name: 'x', admin_state: 'sideways' } }])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransactionError);
    expect((err as TransactionError).rfcError).toBe('constraint violation');
    expect((err as TransactionError).opIndex).toBe(0);
  });

  it('routes monitor (update) and monitor_cond (update2) notifications to their monitor', async () => {
    const watcher = await connect();
    const writer = await connect();
    const m1 = nextUpdate();
    const m2 = nextUpdate();
    // Open_vSwitch is a root table: its rows live without references.
    const initial = await watcher.monitor('Open_vSwitch', 'm1', { Open_vSwitch: { columns: ['next_cfg'] } }, m1.handler);
    expect(initial).toEqual({});
    await watcher.monitorCond('Open_vSwitch', 'm2', { Open_vSwitch: [{ columns: ['next_cfg'] }] }, m2.handler);
    const [ins] = await writer.transact('Open_vSwitch', [{ op: 'insert', table: 'Open_vSwitch', row: { next_cfg: 1 } }]);
    const uuid = (ins.uuid as string[])[1];
    expect((await m1.next()).Open_vSwitch[uuid]).toEqual({ new: { next_cfg: 1 } });
    expect((await m2.next()).Open_vSwitch[uuid]).toEqual({ insert: { next_cfg: 1 } });
    await writer.transact('Open_vSwitch', [{ op: 'update', table: 'Open_vSwitch', where: [], row: { next_cfg: 2 } }]);
    expect((await m1.next()).Open_vSwitch[uuid]).toEqual({ old: { next_cfg: 1 }, new: { next_cfg: 2 } });
    expect((await m2.next()).Open_vSwitch[uuid]).toEqual({ modify: { next_cfg: 2 } });
    await watcher.monitorCancel('m1');
    await writer.transact('Open_vSwitch', [{ op: 'delete', table: 'Open_vSwitch', where: [] }]);
    expect((await m2.next()).Open_vSwitch[uuid]).toEqual({ delete: null });
  });

  it('takes, steals and releases locks with locked/stolen notifications', async () => {
    const a = await connect();
    const b = await connect();
    expect(await a.lock('vswitchd')).toBe(true);
    const lockedB = new Promise((r) => b.once('locked', r));
    expect(await b.lock('vswitchd')).toBe(false);
    await a.unlock('vswitchd');
    expect(await lockedB).toBe('vswitchd');
    const stolenB = new Promise((r) => b.once('stolen', r));
    expect(await a.steal('vswitchd')).toBe(true);
    expect(await stolenB).toBe('vswitchd');
  });
});
