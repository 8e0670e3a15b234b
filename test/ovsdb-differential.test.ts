// Differential test: the same random transactions go to nvs-dbserver and to
// the real ovsdb-server, both serving our vswitch schema, and the two must
// agree on every one — whether it commits, the kind of error when it does
// not, the results of the operations (those before a failed one too), and
// the whole database afterwards — and the monitors on each (monitor,
// monitor_cond with and without a condition, monitor_cond_since; most on
// two sessions, so monitors that share a shape are covered) must receive the
// same notifications. The transactions are mostly well-formed, with wrong
// types, out-of-range and unknown values, dangling and weak references,
// duplicate names and uuids, and arithmetic mutations of existing integer
// columns (division by zero, overflow) mixed in; a row holds at most one
// bad column, so the error kind is compared exactly, and each error kind must
// occur a minimum number of times over all seeds. Inserts name their own
// uuids, so both databases can be compared row for row. Seeds are fixed (a
// failure names its seed and step).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { bundleDbServer, DbServer, run, SCHEMA } from '../packages/ovsdb/test/helpers/dbserver.ts';
import { JsonRpcConnection } from '@nvs/jsonrpc';
import { Rng } from './prng.ts';
import { needsOvs } from './ovs-tools.ts';

const skipOvs = needsOvs('test/ovsdb-differential', ['ovsdb-tool', 'ovsdb-server']);

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
interface BaseType {
  type: string;
  enum?: Json;
  minInteger?: number;
  maxInteger?: number;
  refTable?: string;
  refType?: string;
}
interface ColumnType {
  key: BaseType;
  value?: BaseType;
  min: number;
  max: number;
}

const TABLES = ['Open_vSwitch', 'Bridge', 'Port', 'Interface', 'Mirror', 'QoS', 'Queue'];
const SEEDS = Array.from({ length: 40 }, (_, i) => i + 1);
const STEPS = 60;
const log = pino({ level: 'silent' });

const schema = JSON.parse(readFileSync(SCHEMA, 'utf8')) as { tables: Record<string, { columns: Record<string, { type: Json; mutable?: boolean }> }> };

function base(t: Json): BaseType {
  return typeof t === 'string' ? { type: t } : (t as unknown as BaseType);
}

function columnType(t: Json): ColumnType {
  if (typeof t === 'string') return { key: { type: t }, min: 1, max: 1 };
  const o = t as Record<string, Json>;
  return {
    key: base(o.key),
    value: o.value === undefined ? undefined : base(o.value),
    min: o.min === undefined ? 1 : (o.min as number),
    max: o.max === undefined ? 1 : o.max === 'unlimited' ? Infinity : (o.max as number),
  };
}

/** The uuid pool of a table: inserts choose from it, references point into it. */
function poolUuid(table: string, i: number): string {
  const t = TABLES.indexOf(table).toString(16).padStart(2, '0');
  return `000000${t}-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
}
const POOL = 6;
const NAMES = ['a', 'b', 'c', 'd'];
const NAMED = ['n0', 'n1', 'n2'];

/** Integer columns that are not maps, [table, column]: the targets of arithmetic mutations. */
const INTEGER_COLUMNS = TABLES.flatMap((t) =>
  Object.entries(schema.tables[t].columns)
    .filter(([, d]) => {
      const ct = columnType(d.type);
      return ct.key.type === 'integer' && !ct.value;
    })
    .map(([c]) => [t, c] as const),
);

class Generator {
  /** While set, atoms and datums are valid for their column (only references may dangle): see row(). */
  private clean = false;

  constructor(private readonly r: Rng) {}

  atom(b: BaseType): Json {
    const r = this.r;
    if (!this.clean && r.chance(0.03)) return r.pick<Json>([null, 'x', 7, true, ['set', []], {}]); // wrong type or shape
    switch (b.type) {
      case 'integer': {
        const lo = b.minInteger ?? -5;
        const hi = Math.min(b.maxInteger ?? 100, lo + 200);
        if (!this.clean && r.chance(0.05)) return r.pick([lo - 1, hi + 1, 4096, -1]);
        return lo + r.int(hi - lo + 1);
      }
      case 'real':
        return r.int(1000) / 8;
      case 'boolean':
        return r.chance(0.5);
      case 'string': {
        const e = b.enum as Json;
        if (Array.isArray(e) && (this.clean || r.chance(0.9))) {
          const opts = e[0] === 'set' ? (e[1] as string[]) : [e as unknown as string];
          return r.pick(opts);
        }
        return r.pick(NAMES.concat(['', 'internal', 'dummy', 'é', 'x y']));
      }
      case 'uuid': {
        const table = b.refTable ?? r.pick(TABLES);
        if (!this.clean && r.chance(0.3)) return ['named-uuid', r.pick(NAMED)];
        return ['uuid', poolUuid(TABLES.includes(table) ? table : 'QoS', r.int(POOL))];
      }
    }
    return null;
  }

  datum(t: ColumnType): Json {
    const r = this.r;
    const scalar = t.min === 1 && t.max === 1 && !t.value;
    if (scalar && r.chance(0.8)) return this.atom(t.key);
    let n = Math.min(r.int(4), t.max === Infinity ? 4 : t.max + (!this.clean && r.chance(0.05) ? 1 : 0));
    if (this.clean) n = Math.max(n, t.min);
    // Clean: no duplicate elements or keys (a duplicate is a fault of its own).
    const seen = new Set<string>();
    const fresh = (a: Json): boolean => !this.clean || (!seen.has(JSON.stringify(a)) && !!seen.add(JSON.stringify(a)));
    if (t.value) {
      const pairs: Json[] = [];
      for (let i = 0; i < n; i++) {
        const k = this.atom(t.key);
        const v = this.atom(t.value);
        if (fresh(k)) pairs.push([k, v]);
      }
      return ['map', pairs];
    }
    const elems: Json[] = [];
    for (let i = 0; i < n; i++) {
      const a = this.atom(t.key);
      if (fresh(a)) elems.push(a);
    }
    return n === 1 && r.chance(0.5) ? elems[0] : ['set', elems];
  }

  columns(table: string): [string, ColumnType][] {
    return Object.entries(schema.tables[table].columns).map(([c, d]) => [c, columnType(d.type)]);
  }

  /**
   * A row whose columns are valid but for at most one, which may be of the
   * wrong type or shape, out of range, too big, hold duplicates, name an
   * undefined uuid or not exist: ovsdb-server checks a row's columns in its
   * hash order, so with two bad columns the error it names is not comparable.
   */
  row(table: string): Record<string, Json> {
    const r = this.r;
    const row: Record<string, Json> = {};
    const cols = this.columns(table);
    if ('name' in schema.tables[table].columns) row.name = r.pick(NAMES);
    this.clean = true;
    for (let i = r.int(4); i > 0; i--) {
      const [c, t] = r.pick(cols);
      row[c] = this.datum(t);
    }
    this.clean = false;
    if (r.chance(0.02)) row.nonexistent = 1;
    else if (r.chance(0.3)) {
      const [c, t] = r.pick(cols);
      row[c] = this.datum(t);
    }
    return row;
  }

  /**
   * Arithmetic on an existing integer column: division by zero, or a product past int64, or past the column's range.
   * Mostly on Open_vSwitch's counters: the one table whose row usually exists (other rows
   * need references to live) and whose integer columns are never empty.
   */
  arithmetic(): Json {
    const r = this.r;
    const [table, c] = r.chance(0.6) ? ['Open_vSwitch', r.pick(['cur_cfg', 'next_cfg'])] : r.pick(INTEGER_COLUMNS);
    const mutations = r.chance(0.5)
      ? [[c, r.pick(['/=', '%=']), 0]]
      : [
          [c, '+=', 1 + r.int(9)],
          [c, '*=', 2 ** 40],
          [c, '*=', 2 ** 40],
        ];
    return { op: 'mutate', table, where: r.chance(0.7) ? [] : this.where(table), mutations };
  }

  where(table: string): Json[] {
    const r = this.r;
    switch (r.int(4)) {
      case 0:
        return [];
      case 1:
        return [['_uuid', '==', ['uuid', poolUuid(table, r.int(POOL))]]];
      case 2:
        return 'name' in schema.tables[table].columns ? [['name', r.pick(['==', '!=']), r.pick(NAMES)]] : [];
      default: {
        const [c, t] = r.pick(this.columns(table));
        return [[c, r.pick(['==', '!=', 'includes', 'excludes']), this.datum(t)]];
      }
    }
  }

  mutation(table: string): Json {
    const r = this.r;
    const [c, t] = r.pick(this.columns(table));
    if (t.min === 1 && t.max === 1 && !t.value) {
      const n = t.key.type === 'integer' && r.chance(0.1) ? 0 : this.atom(t.key);
      return [c, r.pick(t.key.type === 'integer' || t.key.type === 'real' ? ['+=', '-=', '*=', '/=', '%='] : ['+=', 'insert']), n];
    }
    if (t.value && r.chance(0.5)) {
      // Deleting map entries by key: a set of keys.
      return [c, 'delete', ['set', [this.atom(t.key)]]];
    }
    return [c, r.pick(['insert', 'delete']), this.datum(t)];
  }

  op(usedNames: Set<string>): Json {
    const r = this.r;
    const table = r.chance(0.02) ? 'Nope' : r.pick(TABLES);
    const k = r.int(22);
    if (k >= 20) return this.arithmetic();
    if (table === 'Nope' || k < 7) {
      const op: Record<string, Json> = { op: 'insert', table, row: table === 'Nope' ? {} : this.row(table) };
      op.uuid = poolUuid(table === 'Nope' ? 'QoS' : table, r.int(POOL));
      if (r.chance(0.6)) {
        const n = r.pick(NAMED);
        op['uuid-name'] = n;
        usedNames.add(n);
      }
      return op;
    }
    if (k < 10) return { op: 'update', table, where: this.where(table), row: this.row(table) };
    if (k < 14) return { op: 'mutate', table, where: this.where(table), mutations: [this.mutation(table)] };
    if (k < 16) return { op: 'delete', table, where: this.where(table) };
    if (k < 18) return { op: 'select', table, where: this.where(table), columns: ['_uuid', ...this.columns(table).slice(0, 3).map(([c]) => c)] };
    if (k < 19) {
      const [c] = r.pick(this.columns(table));
      return { op: 'wait', table, where: this.where(table), columns: [c], until: r.pick(['==', '!=']), rows: [], timeout: 0 };
    }
    return r.pick<Json>([{ op: 'comment', comment: 'differential' }, { op: 'assert', lock: 'nobody' }, { op: 'nop' }]);
  }

  /** Inserts named uuids that are never referenced are legal; references to unnamed ones are not. */
  transaction(): Json[] {
    const used = new Set<string>();
    const ops: Json[] = [];
    for (let i = 1 + this.r.int(4); i > 0; i--) ops.push(this.op(used));
    return ops;
  }
}

/** The whole database as comparable text: every row of every table, sorted by uuid, without _version. */
async function dump(c: JsonRpcConnection): Promise<string> {
  const tables = Object.keys(schema.tables).sort();
  const r = (await c.request('transact', ['Open_vSwitch', ...tables.map((table) => ({ op: 'select', table, where: [] }))])) as { rows: Record<string, Json>[] }[];
  return tables
    .map((t, i) => {
      const rows = r[i].rows.map((row) => {
        const { _version: _, ...rest } = row;
        return JSON.stringify(sortKeys(rest));
      });
      return `${t}\n${rows.sort().join('\n')}`;
    })
    .join('\n');
}

/** A value with object keys, sets and maps in a canonical order (servers may order them differently). */
function sortKeys(v: Json): Json {
  if (Array.isArray(v)) {
    if ((v[0] === 'set' || v[0] === 'map') && Array.isArray(v[1])) {
      return [v[0], (v[1] as Json[]).map(sortKeys).sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1))];
    }
    return v.map(sortKeys);
  }
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])]));
  return v;
}

/** One operation's result, with select rows in a canonical order. */
function result(x: unknown): Json {
  if (x && typeof x === 'object' && Array.isArray((x as { rows?: Json[] }).rows)) {
    return { rows: (x as { rows: Record<string, Json>[] }).rows.map((row) => JSON.stringify(sortKeys(row))).sort() };
  }
  return sortKeys(x as Json);
}

/** What must agree between the servers for one transaction's reply. */
function outcome(reply: unknown): Json {
  if (!Array.isArray(reply)) return { notAnArray: true };
  const at = reply.findIndex((x) => x && typeof x === 'object' && 'error' in x);
  // Failed: where, the error's kind, and the results of the operations before it.
  if (at >= 0) return { committed: false, at, error: (reply[at] as { error: string }).error, before: reply.slice(0, at).map(result) };
  return { committed: true, results: reply.map(result) };
}

/** Times each error kind was the outcome, over all seeds (both servers agreeing). */
const errorKinds = new Map<string, number>();
/**
 * The least each kind must occur in the 2,400 transactions (about half of
 * what the seeds give): a wrong error of a kind the generator rarely reached
 * would go unnoticed.
 */
const MIN_ERRORS: Record<string, number> = {
  'syntax error': 150,
  'constraint violation': 150,
  'referential integrity violation': 100,
  'timed out': 40,
  'duplicate uuid': 40,
  'domain error': 25,
  'range error': 25,
  'ovsdb error': 25,
  'not owner': 25,
  'unknown column': 20,
  'duplicate uuid-name': 20,
};

/** Starts the real ovsdb-server on `db` and connects to it. */
async function startOvsdbServer(db: string, name: string): Promise<{ proc: ChildProcess; conn: JsonRpcConnection }> {
  const sock = join(dir, `${name}.sock`);
  const proc = spawn('ovsdb-server', [db, `--remote=punix:${sock}`, `--unixctl=${join(dir, `${name}.ctl`)}`, '--no-chdir', '-vconsole:off'], { stdio: 'ignore' });
  for (let i = 0; i < 400; i++) {
    const conn = await rpc(sock).catch(() => undefined);
    if (conn) return { proc, conn };
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`ovsdb-server on ${db} did not start`);
}

async function rpc(sock: string): Promise<JsonRpcConnection> {
  const s = connect(sock);
  await new Promise((r, j) => {
    s.once('connect', r);
    s.once('error', j);
  });
  return new JsonRpcConnection(s, { log });
}

let dir: string;
let bundle: { bin: string; root: string };
let nvs: DbServer;
let ovs: ChildProcess;
let a: JsonRpcConnection;
let b: JsonRpcConnection;
/** A monitor of every column of TABLES and the notifications it got. */
type Watcher = { conn: JsonRpcConnection; updates: string[]; initial: string };
const NOTIFICATIONS = { monitor: 'update', monitor_cond: 'update2', monitor_cond_since: 'update3' } as const;
type MonitorMethod = keyof typeof NOTIFICATIONS;
/** The monitors opened on each server, each on a session of its own: pairs of one shape share their encoding in nvs. */
const WATCHES: Array<{ label: string; method: MonitorMethod; onlyNamed?: string[] }> = [
  { label: 'monitor #1', method: 'monitor' },
  { label: 'monitor #2', method: 'monitor' },
  { label: 'monitor_cond #1', method: 'monitor_cond' },
  { label: 'monitor_cond #2', method: 'monitor_cond' },
  { label: 'monitor_cond on rows named a or b', method: 'monitor_cond', onlyNamed: ['a', 'b'] },
  { label: 'monitor_cond_since #1', method: 'monitor_cond_since' },
  { label: 'monitor_cond_since #2', method: 'monitor_cond_since' },
];
/** [nvs, ovs] per entry of WATCHES. */
const watchers: Array<{ label: string; pair: Watcher[] }> = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nvs-differential-'));
  bundle = await bundleDbServer();
  nvs = new DbServer(bundle.bin);
  await nvs.start();
  const db = join(dir, 'ovs.db');
  expect((await run('ovsdb-tool', ['create', db, SCHEMA])).code).toBe(0);
  ({ proc: ovs, conn: b } = await startOvsdbServer(db, 'ovs'));
  a = await rpc(nvs.sock);
  for (const spec of WATCHES) {
    const pair = [];
    for (const sock of [nvs.sock, join(dir, 'ovs.sock')]) pair.push(await watch(sock, spec.method, spec.onlyNamed));
    watchers.push({ label: spec.label, pair });
  }
});

/** Opens a monitor on every column of TABLES (rows named `onlyNamed`, when given); updates are kept as canonical text, in arrival order. */
async function watch(sock: string, method: MonitorMethod, onlyNamed?: string[]): Promise<Watcher> {
  const conn = await rpc(sock);
  const w: Watcher = { conn, updates: [], initial: '' };
  // Each server makes up its own _version and transaction uuids: only their presence can match.
  const text = (v: unknown): string => JSON.stringify(sortKeys(v as Json)).replace(/"_version":\["uuid","[0-9a-f-]{36}"\]/g, '"_version":"(some uuid)"');
  // update3's params are [monitor id, last transaction id, updates]; the others' [monitor id, updates].
  conn.onNotification(NOTIFICATIONS[method], (params) => w.updates.push(text(params[method === 'monitor_cond_since' ? 2 : 1])));
  const request = (t: string): Json =>
    onlyNamed && 'name' in schema.tables[t].columns ? { where: onlyNamed.map((n) => ['name', '==', n]) } : {};
  const requests = Object.fromEntries(TABLES.map((t) => [t, [request(t)]]));
  if (method === 'monitor_cond_since') {
    // From no known transaction: found is false and the reply holds the initial contents.
    const [found, , initial] = (await conn.request(method, ['Open_vSwitch', 'm', requests, '00000000-0000-0000-0000-000000000000'])) as [boolean, string, unknown];
    w.initial = `found ${found}: ${text(initial)}`;
  } else {
    w.initial = text(await conn.request(method, ['Open_vSwitch', 'm', requests]));
  }
  return w;
}

/** The notifications a pair of monitors has received, once both have as many and nothing more comes for 100 ms. */
async function settledUpdates(pair: Watcher[]): Promise<string[][]> {
  let last = -1;
  for (let i = 0; i < 100; i++) {
    const n = pair.map((w) => w.updates.length);
    if (n[0] === n[1] && n[0] === last) break;
    last = n[0] === n[1] ? n[0] : -1;
    await new Promise((r) => setTimeout(r, 100));
  }
  return pair.map((w) => w.updates.splice(0));
}

afterAll(async () => {
  for (const w of watchers.flatMap((x) => x.pair)) w.conn.close();
  a?.close();
  b?.close();
  ovs?.kill('SIGTERM');
  await nvs?.dispose();
  if (bundle) rmSync(bundle.root, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
});

/** Empties both databases: deleting the root rows collects everything else. */
async function reset(): Promise<void> {
  const ops = ['Open_vSwitch', 'QoS', 'Queue', 'Flow_Sample_Collector_Set'].map((table) => ({ op: 'delete', table, where: [] }));
  for (const c of [a, b]) await c.request('transact', ['Open_vSwitch', ...ops]);
}

describe.skipIf(skipOvs)('nvs-dbserver and ovsdb-server agree', () => {
  it('on the initial contents of each monitor', () => {
    for (const { label, pair } of watchers) expect(pair[0].initial, label).toBe(pair[1].initial);
  });

  it.each(SEEDS)('on random transactions, seed %i', async (seed) => {
    await reset();
    expect(await dump(a)).toBe(await dump(b));
    const gen = new Generator(new Rng(seed));
    let committed = 0;
    for (let step = 0; step < STEPS; step++) {
      const txn = ['Open_vSwitch', ...gen.transaction()];
      const [ra, rb] = await Promise.all([a.request('transact', txn).catch((e) => ({ rpcError: String(e) })), b.request('transact', txn).catch((e) => ({ rpcError: String(e) }))]);
      const where = `seed ${seed} step ${step}: ${JSON.stringify(txn)}\n nvs: ${JSON.stringify(ra)}\n ovs: ${JSON.stringify(rb)}`;
      const expected = outcome(rb) as { committed?: boolean; error?: string };
      expect(outcome(ra), where).toEqual(expected);
      if (expected.committed) committed++;
      if (expected.error) errorKinds.set(expected.error, (errorKinds.get(expected.error) ?? 0) + 1);
      expect(await dump(a), where).toBe(await dump(b));
    }
    // The generator is useful only if a fair share commits (and a fair share fails).
    expect(committed).toBeGreaterThan(STEPS / 10);
    expect(committed).toBeLessThan(STEPS);
    // And the monitors of each server saw the same updates, in the same order.
    for (const { label, pair } of watchers) {
      const [nvsUpdates, ovsUpdates] = await settledUpdates(pair);
      if (!label.includes('named')) expect(nvsUpdates.length).toBeGreaterThan(0);
      for (let i = 0; i < Math.max(nvsUpdates.length, ovsUpdates.length); i++) expect(nvsUpdates[i], `seed ${seed}, ${label} update ${i}`).toBe(ovsUpdates[i]);
    }
  });

  it('on every kind of error, each reached a minimum number of times', () => {
    const counts = Object.fromEntries([...errorKinds].sort());
    for (const [kind, min] of Object.entries(MIN_ERRORS)) expect(errorKinds.get(kind) ?? 0, `${kind} in ${JSON.stringify(counts)}`).toBeGreaterThanOrEqual(min);
  });

  it('and on the file nvs-dbserver wrote: replayed by nvs-dbserver and by ovsdb-server, it gives the same database', async () => {
    const expected = await dump(b);
    a.close();
    await nvs.stop();
    const copy = join(dir, 'nvs-copy.db');
    copyFileSync(nvs.dbPath, copy);
    await nvs.start();
    a = await rpc(nvs.sock);
    expect(await dump(a)).toBe(expected);
    const reader = await startOvsdbServer(copy, 'reader');
    try {
      expect(await dump(reader.conn)).toBe(expected);
    } finally {
      reader.conn.close();
      reader.proc.kill('SIGTERM');
    }
  });
});
