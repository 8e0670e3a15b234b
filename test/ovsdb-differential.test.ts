// Differential test: the same random transactions go to nvs-dbserver and to
// the real ovsdb-server, both serving our vswitch schema, and the two must
// agree on every one — whether it commits, the kind of error when it does
// not, the operations' results, and the whole database afterwards — and a
// monitor_cond on each must receive the same update2 notifications. The
// transactions are mostly well-formed, with wrong types, out-of-range and
// unknown values, dangling and weak references, duplicate names and uuids
// mixed in; inserts name their own uuids, so both databases can be compared
// row for row. Seeds are fixed (a failure names its seed and step).
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

class Generator {
  constructor(private readonly r: Rng) {}

  atom(b: BaseType): Json {
    const r = this.r;
    if (r.chance(0.03)) return r.pick<Json>([null, 'x', 7, true, ['set', []], {}]); // wrong type or shape
    switch (b.type) {
      case 'integer': {
        const lo = b.minInteger ?? -5;
        const hi = Math.min(b.maxInteger ?? 100, lo + 200);
        if (r.chance(0.05)) return r.pick([lo - 1, hi + 1, 4096, -1]);
        return lo + r.int(hi - lo + 1);
      }
      case 'real':
        return r.int(1000) / 8;
      case 'boolean':
        return r.chance(0.5);
      case 'string': {
        const e = b.enum as Json;
        if (Array.isArray(e) && r.chance(0.9)) {
          const opts = e[0] === 'set' ? (e[1] as string[]) : [e as unknown as string];
          return r.pick(opts);
        }
        return r.pick(NAMES.concat(['', 'internal', 'dummy', 'é', 'x y']));
      }
      case 'uuid': {
        const table = b.refTable ?? r.pick(TABLES);
        if (r.chance(0.3)) return ['named-uuid', r.pick(NAMED)];
        return ['uuid', poolUuid(TABLES.includes(table) ? table : 'QoS', r.int(POOL))];
      }
    }
    return null;
  }

  datum(t: ColumnType): Json {
    const r = this.r;
    const scalar = t.min === 1 && t.max === 1 && !t.value;
    if (scalar && r.chance(0.8)) return this.atom(t.key);
    const n = Math.min(r.int(4), t.max === Infinity ? 4 : t.max + (r.chance(0.05) ? 1 : 0));
    if (t.value) {
      const pairs: Json[] = [];
      for (let i = 0; i < n; i++) pairs.push([this.atom(t.key), this.atom(t.value)]);
      return ['map', pairs];
    }
    const elems: Json[] = [];
    for (let i = 0; i < n; i++) elems.push(this.atom(t.key));
    return n === 1 && r.chance(0.5) ? elems[0] : ['set', elems];
  }

  columns(table: string): [string, ColumnType][] {
    return Object.entries(schema.tables[table].columns).map(([c, d]) => [c, columnType(d.type)]);
  }

  row(table: string): Record<string, Json> {
    const r = this.r;
    const row: Record<string, Json> = {};
    const cols = this.columns(table);
    if ('name' in schema.tables[table].columns) row.name = r.pick(NAMES);
    for (let i = r.int(4); i > 0; i--) {
      const [c, t] = r.pick(cols);
      row[c] = this.datum(t);
    }
    if (r.chance(0.02)) row.nonexistent = 1;
    return row;
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
    const k = r.int(20);
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

const ROW_FAULTS = ['syntax error', 'constraint violation', 'ovsdb error', 'unknown column'];

/** What must agree between the servers for one transaction's reply. */
function outcome(reply: unknown, txn: Json[]): Json {
  if (!Array.isArray(reply)) return { notAnArray: true };
  const at = reply.findIndex((x) => x && typeof x === 'object' && 'error' in x);
  if (at >= 0) {
    let error = (reply[at] as { error: string }).error;
    // A row with several bad columns: ovsdb-server parses the columns in its hash order,
    // so which fault it names first is not something to match.
    const op = txn[at] as { row?: Record<string, Json> } | undefined;
    if (op?.row && Object.keys(op.row).length > 1 && ROW_FAULTS.includes(error)) error = 'bad column value';
    return { committed: false, at, error };
  }
  // Committed: the results, with select rows in a canonical order.
  return {
    committed: true,
    results: reply.map((x) => {
      if (x && typeof x === 'object' && Array.isArray((x as { rows?: Json[] }).rows)) {
        return { rows: (x as { rows: Record<string, Json>[] }).rows.map((row) => JSON.stringify(sortKeys(row))).sort() };
      }
      return sortKeys(x as Json);
    }),
  };
}

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
/** Monitors of every column of TABLES, [nvs, ovs] per kind, and the notifications they got. */
type Watcher = { conn: JsonRpcConnection; updates: string[]; initial: string };
const KINDS = { monitor: 'update', monitor_cond: 'update2' } as const;
const watchers: Record<keyof typeof KINDS, Watcher[]> = { monitor: [], monitor_cond: [] };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nvs-differential-'));
  bundle = await bundleDbServer();
  nvs = new DbServer(bundle.bin);
  await nvs.start();
  const db = join(dir, 'ovs.db');
  expect((await run('ovsdb-tool', ['create', db, SCHEMA])).code).toBe(0);
  ({ proc: ovs, conn: b } = await startOvsdbServer(db, 'ovs'));
  a = await rpc(nvs.sock);
  for (const kind of Object.keys(KINDS) as (keyof typeof KINDS)[]) {
    for (const sock of [nvs.sock, join(dir, 'ovs.sock')]) watchers[kind].push(await watch(sock, kind));
  }
});

/** Opens a monitor of `kind` on every column of TABLES; updates are kept as canonical text, in arrival order. */
async function watch(sock: string, kind: keyof typeof KINDS): Promise<Watcher> {
  const conn = await rpc(sock);
  const w: Watcher = { conn, updates: [], initial: '' };
  // Each server makes up its own _version uuids: only their presence can match.
  const text = (v: unknown): string => JSON.stringify(sortKeys(v as Json)).replace(/"_version":\["uuid","[0-9a-f-]{36}"\]/g, '"_version":"(some uuid)"');
  conn.onNotification(KINDS[kind], (params) => w.updates.push(text(params[1])));
  const requests = Object.fromEntries(TABLES.map((t) => [t, [{}]]));
  w.initial = text(await conn.request(kind, ['Open_vSwitch', 'm', requests]));
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
  for (const w of Object.values(watchers).flat()) w.conn.close();
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
  it('on the initial contents of a monitor and a monitor_cond', () => {
    for (const [nvsSide, ovsSide] of Object.values(watchers)) expect(nvsSide.initial).toBe(ovsSide.initial);
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
      const ops = txn.slice(1);
      expect(outcome(ra, ops), where).toEqual(outcome(rb, ops));
      if ((outcome(rb, ops) as { committed?: boolean }).committed) committed++;
      expect(await dump(a), where).toBe(await dump(b));
    }
    // The generator is useful only if a fair share commits (and a fair share fails).
    expect(committed).toBeGreaterThan(STEPS / 10);
    expect(committed).toBeLessThan(STEPS);
    // And the monitors of each server saw the same updates, in the same order.
    for (const [kind, pair] of Object.entries(watchers)) {
      const [nvsUpdates, ovsUpdates] = await settledUpdates(pair);
      expect(nvsUpdates.length).toBeGreaterThan(0);
      for (let i = 0; i < Math.max(nvsUpdates.length, ovsUpdates.length); i++) expect(nvsUpdates[i], `seed ${seed}, ${kind} update ${i}`).toBe(ovsUpdates[i]);
    }
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
