// The statistics write-back period of DbSync against nvs's own database
// server in this process: the default it was given, a new period written at
// once and then kept, and the same period leaving the timer's phase alone.
// Only setInterval is faked, so the database link runs on real sockets.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { Database, OvsdbServer, parseSchema } from '@nvs/ovsdb';
import { DbSync } from '../src/dbsync.ts';

const SCHEMA = resolve(import.meta.dirname, '..', '..', '..', 'configs', 'vswitch.ovsschema');
const log = pino({ level: 'silent' });
let dir: string;
let server: OvsdbServer;
let sync: DbSync | undefined;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nvs-dbsync-'));
  server = new OvsdbServer({ log });
  server.addDatabase(new Database(parseSchema(JSON.parse(readFileSync(SCHEMA, 'utf8')))));
  await server.listen(`punix:${join(dir, 'db.sock')}`);
});
afterEach(async () => {
  await sync?.stop();
  vi.useRealTimers();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

it('writes statistics at the default period until another is set, re-arming only on a change', async () => {
  vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
  let writes = 0;
  sync = new DbSync({ remote: `unix:${join(dir, 'db.sock')}`, log, apply: () => new Map(), periodic: () => (writes++, new Map()), statsIntervalMs: 200 });
  await sync.start();
  vi.advanceTimersByTime(200);
  expect(writes).toBe(1);
  expect(sync.setStatsInterval(undefined)).toBe(false); // still the default: nothing happens
  expect(writes).toBe(1);

  vi.advanceTimersByTime(100);
  expect(sync.setStatsInterval(7000)).toBe(true);
  expect(sync.statsIntervalMs).toBe(7000);
  expect(writes).toBe(2); // a new period writes at once
  vi.advanceTimersByTime(6999);
  expect(writes).toBe(2);
  vi.advanceTimersByTime(1);
  expect(writes).toBe(3);

  vi.advanceTimersByTime(3000);
  expect(sync.setStatsInterval(7000)).toBe(false); // the same period keeps the timer's phase
  vi.advanceTimersByTime(4000);
  expect(writes).toBe(4);

  expect(sync.setStatsInterval(undefined)).toBe(true); // removed: back to the default
  expect(sync.statsIntervalMs).toBe(200);
  expect(writes).toBe(5);
  vi.advanceTimersByTime(200);
  expect(writes).toBe(6);
});
