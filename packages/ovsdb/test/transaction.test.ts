// Transact semantics (RFC 7047 section 5.2) on the in-memory engine: every
// operation, every commit check, and every error object, on a small schema
// built to exercise each constraint.
import { describe, expect, it, beforeEach } from 'vitest';
import { Database, newUuid } from '../src/database.ts';
import { parseSchema } from '../src/schema.ts';
import { executeTransaction, type TxnContext } from '../src/transaction.ts';
import { convertDatabase } from '../src/convert.ts';

const SCHEMA = {
  name: 'Test',
  version: '1.0.0',
  tables: {
    Root: {
      isRoot: true,
      maxRows: 3,
      indexes: [['name']],
      columns: {
        name: { type: 'string' },
        fixed: { type: { key: 'string', min: 0 }, mutable: false },
        kids: { type: { key: { type: 'uuid', refTable: 'Kid' }, min: 0, max: 'unlimited' } },
        weak: { type: { key: { type: 'uuid', refTable: 'Kid', refType: 'weak' }, min: 0, max: 'unlimited' } },
        num: { type: { key: { type: 'integer', minInteger: 0, maxInteger: 10 }, min: 0, max: 1 } },
        big: { type: { key: 'integer', min: 0, max: 1 } },
        nums: { type: { key: 'integer', min: 0, max: 'unlimited' } },
        e: { type: { key: { type: 'string', enum: ['set', ['a', 'b']] }, min: 0, max: 1 } },
        s: { type: { key: { type: 'string', minLength: 1, maxLength: 5 }, min: 0, max: 1 } },
        two: { type: { key: 'string', min: 0, max: 2 } },
        m: { type: { key: 'string', value: 'string', min: 0, max: 'unlimited' } },
        r: { type: { key: 'real', min: 0, max: 1 } },
      },
    },
    Kid: { columns: { name: { type: 'string' }, n: { type: 'integer' } } },
    Needy: { isRoot: true, columns: { w: { type: { key: { type: 'uuid', refTable: 'Kid', refType: 'weak' } } } } },
  },
};

let db: Database;
let locks: Set<string>;
const ctx = (): TxnContext => ({ hasLock: (n) => locks.has(n), now: 1000, started: 1000 });

/** Runs a transaction and applies it if it committed; returns the results array. */
function tx(...ops: unknown[]): any[] {
  const out = executeTransaction(db, ops, ctx());
  if (out.kind !== 'done') throw new Error('transaction blocked');
  if (out.commit) db.apply(out.commit.changes, out.log);
  return out.results as any[];
}

function rows(table: string, where: unknown[] = []): any[] {
  return tx({ op: 'select', table, where })[0].rows;
}

function uuidOf(r: any): string {
  return r.uuid[1];
}

beforeEach(() => {
  db = new Database(parseSchema(SCHEMA));
  locks = new Set();
});

describe('insert and select', () => {
  it('inserts with defaults and selects every column, _uuid and _version included', () => {
    const [r] = tx({ op: 'insert', table: 'Root', row: { name: 'x', m: ['map', [['k', 'v']]] } });
    expect(r.uuid[0]).toBe('uuid');
    const [row] = rows('Root');
    expect(row._uuid).toEqual(r.uuid);
    expect(row._version[0]).toBe('uuid');
    expect(row.name).toBe('x');
    expect(row.nums).toEqual(['set', []]);
    expect(row.m).toEqual(['map', [['k', 'v']]]);
  });

  it('honours a caller-chosen uuid and refuses a duplicate one', () => {
    const u = '11111111-2222-3333-4444-555555555555';
    expect(tx({ op: 'insert', table: 'Root', row: { name: 'a' }, uuid: u })[0]).toEqual({ uuid: ['uuid', u] });
    const r = tx({ op: 'insert', table: 'Root', row: { name: 'b' }, uuid: u });
    expect(r[0]).toMatchObject({ error: 'duplicate uuid', syntax: JSON.stringify(u) });
    expect(rows('Root')).toHaveLength(1);
  });

  it('resolves named-uuids, including forward references', () => {
    const r = tx(
      { op: 'insert', table: 'Root', row: { name: 'a', kids: ['named-uuid', 'k'] } },
      { op: 'insert', table: 'Kid', row: { name: 'k1', n: 1 }, 'uuid-name': 'k' },
    );
    expect(rows('Root')[0].kids).toEqual(r[1].uuid);
  });

  it('selects only the named columns, with where conditions', () => {
    tx({ op: 'insert', table: 'Root', row: { name: 'a', num: 3 } }, { op: 'insert', table: 'Root', row: { name: 'b', num: 7 } });
    const r = tx({ op: 'select', table: 'Root', where: [['num', '>', 4]], columns: ['name'] });
    expect(r[0]).toEqual({ rows: [{ name: 'b' }] });
    expect(rows('Root', [['num', '<=', 3], ['name', '!=', 'zz']]).map((x) => x.name)).toEqual(['a']);
    expect(rows('Root', [['nums', 'includes', ['set', []]]])).toHaveLength(2);
  });

  it('reports the RFC errors: unknown table, unknown column, bad type, unknown operation', () => {
    expect(tx({ op: 'insert', table: 'Nope', row: {} })[0].error).toBe('syntax error');
    expect(tx({ op: 'insert', table: 'Root', row: { nope: 1 } })[0].error).toBe('unknown column');
    expect(tx({ op: 'insert', table: 'Root', row: { name: 1 } })[0].error).toBe('syntax error');
    expect(tx({ op: 'frob', table: 'Root' })[0].error).toBe('syntax error');
    expect(tx({ op: 'select', table: 'Root', where: [['name', '<', 'a']] })[0].error).toBe('syntax error');
    expect(tx('not an object')[0].error).toBe('syntax error');
    // A condition's value must have the column's cardinality, as ovsdb-server requires.
    expect(tx({ op: 'select', table: 'Root', where: [['name', 'includes', ['set', ['a', 'b']]]] })[0]).toMatchObject({ error: 'syntax error', details: 'set must have exactly one member but 2 are present' });
    expect(tx({ op: 'select', table: 'Root', where: [['name', '==', ['set', []]]] })[0].error).toBe('syntax error');
  });

  it('refuses a duplicate uuid-name and fills later results with null', () => {
    const r = tx(
      { op: 'insert', table: 'Kid', row: { name: 'a' }, 'uuid-name': 'x' },
      { op: 'insert', table: 'Kid', row: { name: 'b' }, 'uuid-name': 'x' },
      { op: 'comment', comment: 'never reached' },
    );
    expect(r[1].error).toBe('duplicate uuid-name');
    expect(r[2]).toBeNull();
    expect(r).toHaveLength(3);
  });
});

describe('constraints abort the whole transaction', () => {
  const bad: Array<[string, Record<string, unknown>]> = [
    ['enum', { e: 'c' }],
    ['integer range', { num: 11 }],
    ['string too short', { s: '' }],
    ['string too long', { s: 'abcdef' }],
  ];
  for (const [what, row] of bad) {
    it(`${what} is a constraint violation`, () => {
      const r = tx({ op: 'insert', table: 'Kid', row: { name: 'ok' }, 'uuid-name': 'k' }, { op: 'insert', table: 'Root', row: { name: 'x', ...row } });
      expect(r[1].error).toBe('constraint violation');
      expect(typeof r[1].details).toBe('string');
      expect(rows('Root')).toHaveLength(0);
      expect(rows('Kid')).toHaveLength(0);
    });
  }

  it('a written value with too many elements is a syntax error, as in ovsdb-server', () => {
    const r = tx({ op: 'insert', table: 'Root', row: { name: 'x', two: ['set', ['a', 'b', 'c']] } });
    expect(r[0]).toMatchObject({ error: 'syntax error', details: 'set must have 0 to 2 members but 3 are present' });
    expect(rows('Root')).toHaveLength(0);
  });

  it('a repeated set element or map key is an "ovsdb error", as ovsdb-server(7) says', () => {
    expect(tx({ op: 'insert', table: 'Root', row: { name: 'x', nums: ['set', [1, 1]] } })[0].error).toBe('ovsdb error');
    expect(tx({ op: 'insert', table: 'Root', row: { name: 'x', m: ['map', [['k', 'a'], ['k', 'b']]] } })[0].error).toBe('ovsdb error');
    expect(rows('Root')).toHaveLength(0);
  });

  it('maxRows is checked at commit (error appended after the results)', () => {
    const r = tx(...['a', 'b', 'c', 'd'].map((name) => ({ op: 'insert', table: 'Root', row: { name } })));
    expect(r).toHaveLength(5);
    expect(r[4].error).toBe('constraint violation');
    expect(r[4].details).toMatch(/greater than the schema-defined limit of 3/);
    expect(rows('Root')).toHaveLength(0);
  });

  it('indexes are unique, but a swap inside one transaction is fine', () => {
    tx({ op: 'insert', table: 'Root', row: { name: 'a' } }, { op: 'insert', table: 'Root', row: { name: 'b' } });
    const dup = tx({ op: 'insert', table: 'Root', row: { name: 'a' } });
    expect(dup[1].error).toBe('constraint violation');
    const swap = tx(
      { op: 'update', table: 'Root', where: [['name', '==', 'a']], row: { name: 'tmp' } },
      { op: 'update', table: 'Root', where: [['name', '==', 'b']], row: { name: 'a' } },
      { op: 'update', table: 'Root', where: [['name', '==', 'tmp']], row: { name: 'b' } },
    );
    expect(swap).toEqual([{ count: 1 }, { count: 1 }, { count: 1 }]);
    expect(rows('Root').map((x) => x.name).sort()).toEqual(['a', 'b']);
    const clash = tx({ op: 'update', table: 'Root', where: [['name', '==', 'a']], row: { name: 'b' } });
    expect(clash[1].error).toBe('constraint violation');
  });

  it("names both rows of an index clash as ovsdb-server does, greater row first", () => {
    const [a] = tx({ op: 'insert', table: 'Root', row: { name: 'x', num: 1 } });
    const [b] = tx({ op: 'insert', table: 'Root', row: { name: 'y', num: 2 } });
    const ins = tx({ op: 'insert', table: 'Root', row: { name: 'x', num: 3 } });
    expect(ins[1].details).toBe(
      `Transaction causes multiple rows in "Root" table to have identical values (x) for index on column "name".  First row, with UUID ${ins[0].uuid[1]}, was inserted by this transaction.  Second row, with UUID ${a.uuid[1]}, existed in the database before this transaction and was not modified by the transaction.`,
    );
    const upd = tx({ op: 'update', table: 'Root', where: [['name', '==', 'y']], row: { name: 'x' } });
    expect(upd[1].details).toMatch(new RegExp(`First row, with UUID ${b.uuid[1]}, had the following index values before the transaction: y\\.  Second row, with UUID ${a.uuid[1]}, existed`));
  });

  it('select sorts by the "sort" columns (an ovsdb-server extension)', () => {
    for (const [name, num] of [['c', 2], ['a', 9], ['b', 0]] as const) tx({ op: 'insert', table: 'Root', row: { name, num } });
    const sorted = (sort: string[]) => tx({ op: 'select', table: 'Root', where: [], columns: ['name'], sort })[0].rows.map((r: any) => r.name);
    expect(sorted(['num'])).toEqual(['b', 'c', 'a']);
    expect(sorted(['name'])).toEqual(['a', 'b', 'c']);
    expect(tx({ op: 'select', table: 'Root', where: [], sort: ['nope'] })[0].error).toBe('unknown column');
  });

  it('a row whose indexed columns a transaction leaves alone still holds its key', () => {
    tx({ op: 'insert', table: 'Root', row: { name: 'a' } });
    const clash = tx({ op: 'mutate', table: 'Root', where: [['name', '==', 'a']], mutations: [['nums', 'insert', 1]] }, { op: 'insert', table: 'Root', row: { name: 'a' } });
    expect(clash[2].error).toBe('constraint violation');
    const clash2 = tx({ op: 'insert', table: 'Root', row: { name: 'a' } }, { op: 'mutate', table: 'Root', where: [['name', '==', 'a']], mutations: [['nums', 'insert', 2]] });
    expect(clash2[2].error).toBe('constraint violation');
    expect(tx({ op: 'mutate', table: 'Root', where: [['name', '==', 'a']], mutations: [['nums', 'insert', 3]] })).toEqual([{ count: 1 }]);
    // The index still finds the row after commits that left its name alone.
    expect(tx({ op: 'insert', table: 'Root', row: { name: 'a' } })[1].error).toBe('constraint violation');
    tx({ op: 'update', table: 'Root', where: [['name', '==', 'a']], row: { name: 'c' } });
    expect(tx({ op: 'insert', table: 'Root', row: { name: 'a' } })).toHaveLength(1);
    expect(rows('Root').map((x) => x.name).sort()).toEqual(['a', 'c']);
  });

  it('immutable columns cannot be updated or mutated', () => {
    tx({ op: 'insert', table: 'Root', row: { name: 'a', fixed: 'f' } });
    expect(tx({ op: 'update', table: 'Root', where: [], row: { fixed: 'g' } })[0].error).toBe('constraint violation');
    expect(tx({ op: 'update', table: 'Root', where: [], row: { _uuid: ['uuid', '11111111-2222-3333-4444-555555555555'] } })[0].error).toBe('constraint violation');
    expect(tx({ op: 'mutate', table: 'Root', where: [], mutations: [['fixed', 'insert', 'g']] })[0].error).toBe('constraint violation');
  });
});

describe('update, mutate, delete', () => {
  beforeEach(() => {
    tx({ op: 'insert', table: 'Root', row: { name: 'a', num: 4, big: 5, nums: ['set', [1, 2]], m: ['map', [['k', 'v'], ['x', 'y']]], r: 1.5 } });
  });

  it('update counts matching rows and changes only the given columns', () => {
    expect(tx({ op: 'update', table: 'Root', where: [['name', '==', 'a']], row: { e: 'b' } })).toEqual([{ count: 1 }]);
    expect(rows('Root')[0]).toMatchObject({ e: 'b', num: 4 });
    expect(tx({ op: 'update', table: 'Root', where: [['name', '==', 'zz']], row: { e: 'a' } })).toEqual([{ count: 0 }]);
  });

  it('arithmetic mutators, on scalars and element-wise on sets', () => {
    tx({ op: 'mutate', table: 'Root', where: [], mutations: [['num', '+=', 3], ['big', '*=', 4], ['big', '-=', 1], ['nums', '*=', 10], ['r', '/=', 2]] });
    expect(rows('Root')[0]).toMatchObject({ num: 7, big: 19, nums: ['set', [10, 20]], r: 0.75 });
    tx({ op: 'mutate', table: 'Root', where: [], mutations: [['big', '/=', 2], ['num', '%=', 4]] });
    expect(rows('Root')[0]).toMatchObject({ num: 3, big: 9 });
  });

  it('division by zero is a domain error, 64-bit overflow a range error, leaving the column range a constraint violation', () => {
    expect(tx({ op: 'mutate', table: 'Root', where: [], mutations: [['big', '/=', 0]] })[0].error).toBe('domain error');
    expect(tx({ op: 'mutate', table: 'Root', where: [], mutations: [['big', '+=', 2 ** 62], ['big', '*=', 4]] })[0].error).toBe('range error');
    expect(tx({ op: 'mutate', table: 'Root', where: [], mutations: [['num', '+=', 10]] })[0].error).toBe('constraint violation');
    expect(tx({ op: 'mutate', table: 'Root', where: [], mutations: [['nums', '*=', 0]] })[0].error).toBe('constraint violation');
    expect(rows('Root')[0]).toMatchObject({ num: 4, big: 5 });
  });

  it('set and map insert/delete', () => {
    tx({ op: 'mutate', table: 'Root', where: [], mutations: [['nums', 'insert', ['set', [3, 1]]], ['m', 'insert', ['map', [['k', 'IGNORED'], ['n', 'new']]]]] });
    expect(rows('Root')[0]).toMatchObject({ nums: ['set', [1, 2, 3]], m: ['map', [['k', 'v'], ['n', 'new'], ['x', 'y']]] });
    tx({ op: 'mutate', table: 'Root', where: [], mutations: [['nums', 'delete', 2], ['m', 'delete', ['set', ['k']]], ['m', 'delete', ['map', [['x', 'not-y'], ['n', 'new']]]]] });
    expect(rows('Root')[0]).toMatchObject({ nums: ['set', [1, 3]], m: ['map', [['x', 'y']]] });
    // An inserted value may not have more elements than the column; a result with too many is a constraint violation.
    expect(tx({ op: 'mutate', table: 'Root', where: [], mutations: [['two', 'insert', ['set', ['a', 'b', 'c']]]] })[0].error).toBe('syntax error');
    tx({ op: 'mutate', table: 'Root', where: [], mutations: [['two', 'insert', 'a']] });
    expect(tx({ op: 'mutate', table: 'Root', where: [], mutations: [['two', 'insert', ['set', ['b', 'c']]]] })[0].error).toBe('constraint violation');
  });

  it('delete counts rows', () => {
    expect(tx({ op: 'delete', table: 'Root', where: [['name', '==', 'a']] })).toEqual([{ count: 1 }]);
    expect(rows('Root')).toHaveLength(0);
  });
});

describe('referential integrity and garbage collection', () => {
  it('a strong reference to a missing row aborts', () => {
    const r = tx({ op: 'insert', table: 'Root', row: { name: 'a', kids: ['uuid', '11111111-2222-3333-4444-555555555555'] } });
    expect(r[1].error).toBe('referential integrity violation');
    expect(rows('Root')).toHaveLength(0);
  });

  it('deleting a strongly referenced row aborts', () => {
    tx({ op: 'insert', table: 'Kid', row: { name: 'k', n: 1 }, 'uuid-name': 'k' }, { op: 'insert', table: 'Root', row: { name: 'a', kids: ['named-uuid', 'k'] } });
    const r = tx({ op: 'delete', table: 'Kid', where: [] });
    expect(r[1].error).toBe('referential integrity violation');
    expect(r[1].details).toMatch(/1 remaining reference/);
    expect(rows('Kid')).toHaveLength(1);
  });

  it('unreferenced non-root rows are collected, at insert and when their last reference goes', () => {
    tx({ op: 'insert', table: 'Kid', row: { name: 'orphan', n: 0 } });
    expect(rows('Kid')).toHaveLength(0);
    tx({ op: 'insert', table: 'Kid', row: { name: 'k', n: 1 }, 'uuid-name': 'k' }, { op: 'insert', table: 'Root', row: { name: 'a', kids: ['named-uuid', 'k'] } });
    expect(rows('Kid')).toHaveLength(1);
    tx({ op: 'update', table: 'Root', where: [], row: { kids: ['set', []] } });
    expect(rows('Kid')).toHaveLength(0);
  });

  it('weak references to deleted rows are removed, and a min of 1 then aborts', () => {
    const r = tx(
      { op: 'insert', table: 'Kid', row: { name: 'k', n: 1 }, 'uuid-name': 'k' },
      { op: 'insert', table: 'Kid', row: { name: 'j', n: 2 }, 'uuid-name': 'j' },
      { op: 'insert', table: 'Root', row: { name: 'a', kids: ['set', [['named-uuid', 'k'], ['named-uuid', 'j']]], weak: ['named-uuid', 'k'] } },
    );
    const k = uuidOf(r[0]);
    tx({ op: 'mutate', table: 'Root', where: [], mutations: [['kids', 'delete', ['uuid', k]]] });
    expect(rows('Kid').map((x) => x.name)).toEqual(['j']);
    expect(rows('Root')[0].weak).toEqual(['set', []]);
    const j = uuidOf(r[1]);
    tx({ op: 'insert', table: 'Needy', row: { w: ['uuid', j] } });
    const del = tx({ op: 'mutate', table: 'Root', where: [], mutations: [['kids', 'delete', ['uuid', j]]] });
    expect(del[1].error).toBe('constraint violation');
    expect(rows('Kid')).toHaveLength(1);
  });
});

describe('wait, commit, abort, comment, assert', () => {
  beforeEach(() => {
    tx({ op: 'insert', table: 'Root', row: { name: 'a', num: 1 } });
  });

  it('wait succeeds when the rows match (==) or differ (!=)', () => {
    expect(tx({ op: 'wait', table: 'Root', where: [], columns: ['name', 'num'], until: '==', rows: [{ name: 'a', num: 1 }], timeout: 0 })).toEqual([{}]);
    expect(tx({ op: 'wait', table: 'Root', where: [], columns: ['name'], until: '!=', rows: [{ name: 'b' }], timeout: 0 })).toEqual([{}]);
  });

  it('wait compares a column a row leaves out as its default, as ovsdb-server does', () => {
    expect(tx({ op: 'wait', table: 'Root', where: [], columns: ['name'], until: '==', rows: [{}], timeout: 0 })[0].error).toBe('timed out');
    expect(tx({ op: 'wait', table: 'Root', where: [], columns: ['name', 'e'], until: '==', rows: [{ name: 'a' }], timeout: 0 })).toEqual([{}]);
    // Without "columns", every column counts, _uuid included.
    expect(tx({ op: 'wait', table: 'Root', where: [], until: '==', rows: [{ name: 'a', num: 1 }], timeout: 0 })[0].error).toBe('timed out');
  });

  it('wait with timeout 0 fails with "timed out"; a longer timeout blocks until a later try', () => {
    const r = tx({ op: 'wait', table: 'Root', where: [], columns: ['name'], until: '==', rows: [{ name: 'b' }], timeout: 0 });
    expect(r[0].error).toBe('timed out');
    const blocked = executeTransaction(db, [{ op: 'wait', table: 'Root', where: [], columns: ['name'], until: '==', rows: [{ name: 'b' }], timeout: 500 }], ctx());
    expect(blocked).toEqual({ kind: 'blocked', deadline: 1500 });
    const late = executeTransaction(db, [{ op: 'wait', table: 'Root', where: [], columns: ['name'], until: '==', rows: [{ name: 'b' }], timeout: 500 }], { ...ctx(), now: 1500 });
    expect(late.kind === 'done' && (late.results[0] as any).error).toBe('timed out');
  });

  it('abort undoes earlier operations', () => {
    const r = tx({ op: 'insert', table: 'Root', row: { name: 'b' } }, { op: 'abort' });
    expect(r[1]).toMatchObject({ error: 'aborted' });
    expect(rows('Root')).toHaveLength(1);
  });

  it('commit durable and comments reach the commit', () => {
    const out = executeTransaction(db, [{ op: 'insert', table: 'Root', row: { name: 'b' } }, { op: 'commit', durable: true }, { op: 'comment', comment: 'hello' }], ctx());
    expect(out.kind).toBe('done');
    if (out.kind !== 'done') return;
    expect(out.results).toEqual([{ uuid: expect.any(Array) }, {}, {}]);
    expect(out.commit?.durable).toBe(true);
    expect(out.commit?.comment).toBe('hello');
  });

  it('assert checks lock ownership', () => {
    expect(tx({ op: 'assert', lock: 'l' })[0]).toMatchObject({ error: 'not owner' });
    locks.add('l');
    expect(tx({ op: 'assert', lock: 'l' })).toEqual([{}]);
  });
});

describe('row uuids', () => {
  it('newUuid gives distinct RFC 4122 version 4 uuids across refills of its batch', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const u = newUuid();
      expect(u).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      seen.add(u);
    }
    expect(seen.size).toBe(2000);
  });
});

describe('convertDatabase', () => {
  beforeEach(() => {
    db = new Database(parseSchema(SCHEMA));
    locks = new Set();
  });

  it('keeps uuids and shared columns, drops the rest, and refuses values the new schema does not allow', () => {
    const [a] = tx({ op: 'insert', table: 'Root', row: { name: 'a', num: 7, nums: ['set', [1, 2]] } });
    const narrower = (maxInteger: number) =>
      parseSchema({ name: 'Test', tables: { Root: { isRoot: true, columns: { name: { type: 'string' }, num: { type: { key: { type: 'integer', maxInteger }, min: 0, max: 1 } }, extra: { type: 'boolean' } } } } });
    const out = convertDatabase(db, narrower(10));
    const row = out.table('Root')!.get(a.uuid[1])!;
    expect([...row.values.keys()]).toEqual(['name', 'num', 'extra']);
    expect([row.values.get('name')!.keys, row.values.get('num')!.keys, row.values.get('extra')!.keys]).toEqual([['a'], [7], [false]]);
    expect(out.table('Kid')).toBeUndefined();
    expect(() => convertDatabase(db, narrower(5))).toThrow(/7 is greater than maximum allowed value 5/);
    expect(() => convertDatabase(db, parseSchema({ name: 'Other', tables: { T: { columns: { c: { type: 'string' } } } } }))).toThrow(/new schema name \(Other\) does not match database name \(Test\)/);
  });
});
