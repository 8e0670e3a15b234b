// DbFile in-process: records round-trip through a reopen (diff records
// included), compaction happens past the size threshold and keeps every row,
// and a corrupt record in the middle stops replay there.
import { afterEach, describe, expect, it } from 'vitest';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Database } from '../src/database.ts';
import { parseSchema } from '../src/schema.ts';
import { commitRecordText, DbFile, encodeRecord, parseFile } from '../src/storage.ts';
import { executeTransaction } from '../src/transaction.ts';
import { StorageFormatError } from '../src/errors.ts';
import { SCHEMA } from './helpers/dbserver.ts';

const log = pino({ level: 'silent' });
const schemaJson = JSON.parse(readFileSync(SCHEMA, 'utf8'));
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function fresh(opts: { compactThresholdBytes?: number } = {}): { path: string; file: DbFile; db: Database } {
  const dir = mkdtempSync(join(tmpdir(), 'nvs-dbfile-'));
  dirs.push(dir);
  const path = join(dir, 'conf.db');
  DbFile.create(path, schemaJson);
  return { path, ...DbFile.open(path, { log, ...opts }, (s) => new Database(s)) };
}

function commit(db: Database, file: DbFile, ops: unknown[]): any[] {
  const out = executeTransaction(db, ops, { hasLock: () => false, now: Date.now(), started: Date.now() });
  if (out.kind !== 'done') throw new Error('blocked');
  if (out.commit) {
    db.apply(out.commit.changes, out.log);
    file.append([commitRecordText(db, out.commit.changes, out.commit.date, out.commit.comment, out.log)], out.commit.durable);
  }
  return out.results as any[];
}

function snapshot(db: Database): unknown {
  const out: Record<string, unknown> = {};
  for (const [t, rows] of db.tables) {
    out[t] = Object.fromEntries([...rows.values()].map((r) => [r.uuid, Object.fromEntries([...r.values].map(([k, v]) => [k, v]))]));
  }
  return out;
}

function reopen(path: string): Database {
  const { file, db } = DbFile.open(path, { log }, (s) => new Database(s));
  file.close();
  return db;
}

describe('DbFile', () => {
  it('replays inserts, set and map diffs, optional-column changes and deletes', () => {
    const { path, file, db } = fresh();
    commit(db, file, [
      { op: 'insert', table: 'Interface', row: { name: 'a', options: ['map', [['k', 'v']]] }, 'uuid-name': 'i' },
      { op: 'insert', table: 'Port', row: { name: 'a', interfaces: ['named-uuid', 'i'], tag: 5 }, 'uuid-name': 'p' },
      { op: 'insert', table: 'Bridge', row: { name: 'br0', ports: ['named-uuid', 'p'] }, 'uuid-name': 'b' },
      { op: 'insert', table: 'Open_vSwitch', row: { bridges: ['named-uuid', 'b'] } },
    ]);
    commit(db, file, [{ op: 'update', table: 'Port', where: [], row: { tag: 7, trunks: ['set', [1, 2, 3]] } }]);
    commit(db, file, [
      { op: 'mutate', table: 'Port', where: [], mutations: [['trunks', 'delete', 2], ['trunks', 'insert', 9]] },
      { op: 'mutate', table: 'Interface', where: [], mutations: [['options', 'insert', ['map', [['x', 'y']]]], ['options', 'delete', ['set', ['k']]]] },
      { op: 'update', table: 'Interface', where: [], row: { mtu_request: 1500 } },
    ]);
    commit(db, file, [{ op: 'update', table: 'Port', where: [], row: { tag: ['set', []] } }]);
    file.close();
    expect(snapshot(reopen(path))).toEqual(snapshot(db));
  });

  it('round-trips non-ASCII text, escapes and records too big for the scratch buffer (lengths and SHA-1 over UTF-8 bytes)', () => {
    const { path, file, db } = fresh();
    commit(db, file, [{ op: 'insert', table: 'Open_vSwitch', row: { external_ids: ['map', [['é😀', 'quote " back \\ nl \n'], ['k', 'ü'.repeat(10)]]] } }]);
    commit(db, file, [{ op: 'mutate', table: 'Open_vSwitch', where: [], mutations: [['external_ids', 'insert', ['map', [['big', '€'.repeat(40_000)]]]]] }]);
    commit(db, file, [{ op: 'mutate', table: 'Open_vSwitch', where: [], mutations: [['external_ids', 'delete', ['set', ['big']]]] }]);
    file.close();
    expect(parseFile(readFileSync(path)).tornReason).toBeUndefined();
    expect(snapshot(reopen(path))).toEqual(snapshot(db));
  });

  it('compacts past the threshold into schema + one record, keeping every row', () => {
    const { path, file, db } = fresh({ compactThresholdBytes: 20_000 });
    commit(db, file, [{ op: 'insert', table: 'Open_vSwitch', row: {} }]);
    let compactions = 0;
    let appended = statSync(path).size;
    for (let i = 0; i < 200; i++) {
      const before = statSync(path).size;
      commit(db, file, [{ op: 'mutate', table: 'Open_vSwitch', where: [], mutations: [['external_ids', 'insert', ['map', [[`key${i}`, 'x'.repeat(500)]]]]] }]);
      appended += statSync(path).size - before;
      // The server compacts after a commit when the file asks for it; do the same here.
      if (file.shouldCompact()) {
        file.compact(db);
        compactions++;
      }
    }
    file.close();
    const records = parseFile(readFileSync(path)).records;
    expect(compactions).toBeGreaterThan(0);
    expect(records.length).toBeLessThan(200);
    expect(statSync(path).size).toBeLessThan(appended);
    expect(snapshot(reopen(path))).toEqual(snapshot(db));
  });

  it('stops replay at a corrupt record and refuses a file with no schema', () => {
    const { path, file, db } = fresh();
    commit(db, file, [{ op: 'insert', table: 'Open_vSwitch', row: { next_cfg: 1 } }]);
    file.close();
    const good = statSync(path).size;
    const bad = encodeRecord({ Open_vSwitch: {} }).replace(/ [0-9a-f]{40}\n/, ` ${'0'.repeat(40)}\n`);
    appendFileSync(path, bad + encodeRecord({ Open_vSwitch: {} }));
    const reopened = reopen(path);
    expect([...reopened.table('Open_vSwitch')!.values()][0].values.get('next_cfg')!.keys).toEqual([1]);
    expect(statSync(path).size).toBe(good);
    writeFileSync(path, 'garbage');
    expect(() => reopen(path)).toThrow(StorageFormatError);
  });

  it("logs a corrupt tail or a record that names no table in ovsdb-server's words, and cuts the file there", () => {
    const { path, file, db } = fresh();
    commit(db, file, [{ op: 'insert', table: 'Open_vSwitch', row: { next_cfg: 1 } }]);
    file.close();
    const good = statSync(path).size;
    const open = (): string[] => {
      const lines: string[] = [];
      const capture = pino({ level: 'warn' }, { write: (l: string) => void lines.push(JSON.parse(l).msg) });
      DbFile.open(path, { log: capture, displayName: 'db' }, (s) => new Database(s)).file.close();
      return lines;
    };
    appendFileSync(path, 'xxx\n');
    expect(open()[0]).toBe(`syntax error: db: parse error at offset ${good} in header line "xxx"`);
    expect(statSync(path).size).toBe(good);
    appendFileSync(path, encodeRecord({ invalid: {} }));
    expect(open()[0]).toBe('syntax "{"invalid":{}}": unknown table: No table named invalid.');
    expect(statSync(path).size).toBe(good);
    expect(open()).toEqual([]);
  });
});
