// The in-memory database: tables of immutable rows keyed by uuid, plus the
// bookkeeping a transaction needs to check a commit quickly — inbound strong
// reference counts per row and the unique indexes of each table.
//
// A Database changes only through `apply`, with a list of row changes that
// a Transaction has already checked (or that storage replays from a file).
// Rows are never mutated in place: a change installs a new Row object, so a
// transaction copies only the rows it touches (copy-on-write).
import { createHash, randomFillSync } from 'node:crypto';
import { checkDatum, defaultDatum, type Datum, type DeltaLog } from './datum.ts';
import { rootTables, type ColumnSchema, type DatabaseSchema, type TableSchema } from './schema.ts';

/** Column name → position in a table's value arrays (user columns in schema order). */
export type ColumnLayout = ReadonlyMap<string, number>;

/**
 * A row's column values: one array in the table's column order, read by
 * name like a Map. An array rather than a Map per row keeps rows small and
 * makes the copy a changed row needs a plain slice.
 */
export class RowValues {
  constructor(
    readonly layout: ColumnLayout,
    readonly data: readonly Datum[],
  ) {}

  get size(): number {
    return this.data.length;
  }

  get(column: string): Datum | undefined {
    const i = this.layout.get(column);
    return i === undefined ? undefined : this.data[i];
  }

  has(column: string): boolean {
    return this.layout.has(column);
  }

  /** A copy with the given columns replaced. */
  with(changes: Iterable<readonly [string, Datum]>): RowValues {
    const data = this.data.slice();
    for (const [c, d] of changes) data[this.layout.get(c)!] = d;
    return new RowValues(this.layout, data);
  }

  *entries(): IterableIterator<[string, Datum]> {
    for (const [c, i] of this.layout) yield [c, this.data[i]];
  }

  keys(): IterableIterator<string> {
    return this.layout.keys();
  }

  [Symbol.iterator](): IterableIterator<[string, Datum]> {
    return this.entries();
  }
}

/** One row: its uuid, its version (new on every change), and every user column's value. */
export interface Row {
  readonly uuid: string;
  readonly version: string;
  readonly values: RowValues;
}

/** One row's change in a commit; `old` null for an insert, `new` null for a delete. */
export interface RowChange {
  readonly table: TableSchema;
  readonly uuid: string;
  readonly old: Row | null;
  readonly new: Row | null;
}

/** A committed transaction as monitors and storage see it. */
export interface Commit {
  /** Transaction id (a uuid), used by monitor_cond_since. */
  readonly id: string;
  readonly changes: readonly RowChange[];
  readonly comment?: string;
  readonly durable: boolean;
  /** Commit time in ms since the epoch (the `_date` of the file record). */
  readonly date: number;
}

/** A reference column: where it points and how strongly. */
export interface RefColumn {
  readonly column: ColumnSchema;
  readonly refTable: string;
  readonly strong: boolean;
  /** Which half of a map holds the references. */
  readonly side: 'key' | 'value';
}

/** Per-table facts derived once from the schema. */
export interface TableInfo {
  readonly schema: TableSchema;
  readonly refColumns: readonly RefColumn[];
  readonly isRoot: boolean;
  /** Whether any of refColumns is weak. */
  readonly hasWeakRefs: boolean;
  /** Default value of every user column: a new row starts from these. */
  readonly defaults: RowValues;
  /**
   * User columns whose default value breaks the column's own constraints (an
   * integer column with minInteger 1 defaults to 0): an insert must set them.
   * Found once here rather than checked on every insert.
   */
  readonly badDefaults: readonly ColumnSchema[];
}

/** Yields the uuids a row references through `ref`. */
export function refsOf(row: Row, ref: RefColumn): readonly (string)[] {
  const d = row.values.get(ref.column.name);
  if (!d) return [];
  return (ref.side === 'key' ? d.keys : d.values ?? []) as readonly string[];
}

/**
 * Calls `visit` for each reference that differs between two states of a row
 * (`old` or `neu` null for an insert or a delete): +1 for a reference only
 * the new state holds, -1 for one only the old state holds. Unchanged
 * columns are skipped by identity, so a row whose big set of references did
 * not change costs nothing — the transaction path relies on this.
 */
export function forEachRefChange(
  info: TableInfo,
  old: Row | null,
  neu: Row | null,
  visitRef: (ref: RefColumn, uuid: string, delta: number) => void,
  log?: DeltaLog,
): void {
  // As in ovsdb-server, a row's strong reference to its own uuid is neither counted nor checked.
  const self = (neu ?? old)?.uuid;
  const visit = (ref: RefColumn, uuid: string, delta: number): void => {
    if (!(ref.strong && uuid === self)) visitRef(ref, uuid, delta);
  };
  for (const ref of info.refColumns) {
    const a = old?.values.get(ref.column.name);
    const b = neu?.values.get(ref.column.name);
    if (a === b) continue;
    const known = b && log?.get(b);
    if (known && known.base === a && ref.side === 'key') {
      for (const u of known.removed) visit(ref, u as string, -1);
      for (const u of known.added) visit(ref, u as string, 1);
      continue;
    }
    const as = (a ? (ref.side === 'key' ? a.keys : a.values ?? []) : []) as readonly string[];
    const bs = (b ? (ref.side === 'key' ? b.keys : b.values ?? []) : []) as readonly string[];
    if (ref.side === 'key') {
      // Keys are sorted and unique: one merge pass.
      let i = 0;
      let j = 0;
      while (i < as.length || j < bs.length) {
        if (j >= bs.length || (i < as.length && as[i] < bs[j])) visit(ref, as[i++], -1);
        else if (i >= as.length || bs[j] < as[i]) visit(ref, bs[j++], 1);
        else {
          i++;
          j++;
        }
      }
    } else {
      const counts = new Map<string, number>();
      for (const u of as) counts.set(u, (counts.get(u) ?? 0) - 1);
      for (const u of bs) counts.set(u, (counts.get(u) ?? 0) + 1);
      for (const [u, n] of counts) if (n !== 0) visit(ref, u, n);
    }
  }
}

/** The value of any column of a row, including `_uuid` and `_version`. */
export function columnValue(row: Row, column: string): Datum {
  if (column === '_uuid') return { keys: [row.uuid] };
  if (column === '_version') return { keys: [row.version] };
  return row.values.get(column)!;
}

/**
 * The key of a row in one unique index. A one-column index on a one-atom
 * string value (every `name` index of Open_vSwitch) is keyed by the string
 * itself behind a marker JSON text never starts with; anything else by the
 * JSON of the indexed values. Runs several times per commit.
 */
export function indexKey(row: Row, columns: readonly string[]): string {
  if (columns.length === 1) {
    const d = columnValue(row, columns[0]);
    if (d.keys.length === 1 && !d.values && typeof d.keys[0] === 'string') return '\u0001' + d.keys[0];
  }
  let key = '';
  for (const c of columns) {
    const d = columnValue(row, c);
    key += JSON.stringify(d.keys) + (d.values ? JSON.stringify(d.values) : '') + '|';
  }
  return key;
}

/**
 * Whether a row's key in an index is the same in two of its states, judged
 * by identity of the column values (a change installs new datums only for
 * the columns it changes). Lets commits skip index work for rows whose
 * indexed columns they did not touch (Bridge.name when ports change).
 */
export function indexUnchanged(old: Row, neu: Row, columns: readonly string[]): boolean {
  for (const c of columns) {
    if (c === '_uuid') continue;
    if (c === '_version' || old.values.get(c) !== neu.values.get(c)) return false;
  }
  return true;
}

export class Database {
  readonly schema: DatabaseSchema;
  readonly info: ReadonlyMap<string, TableInfo>;
  /** table name → uuid → row. Read freely; change only through apply(). */
  readonly tables: ReadonlyMap<string, Map<string, Row>>;
  /** Tables that hold references to each table (for weak-ref cleanup on delete). */
  readonly referrers: ReadonlyMap<string, readonly string[]>;
  /** uuid → number of strong references to it from any row. */
  private readonly strongRefs = new Map<string, number>();
  /** table → one map per schema index: index key → uuid. */
  private readonly indexMaps = new Map<string, Map<string, string>[]>();

  constructor(schema: DatabaseSchema) {
    this.schema = schema;
    const roots = rootTables(schema);
    const info = new Map<string, TableInfo>();
    const tables = new Map<string, Map<string, Row>>();
    const referrers = new Map<string, string[]>();
    for (const t of schema.tables.values()) {
      const refColumns: RefColumn[] = [];
      const layout = new Map<string, number>();
      const defaults: Datum[] = [];
      for (const c of t.userColumns) {
        layout.set(c.name, defaults.length);
        defaults.push(defaultDatum(c.type));
        for (const side of ['key', 'value'] as const) {
          const b = side === 'key' ? c.type.key : c.type.value;
          if (b?.refTable) {
            refColumns.push({ column: c, refTable: b.refTable, strong: b.refType !== 'weak', side });
            const list = referrers.get(b.refTable) ?? [];
            if (!list.includes(t.name)) list.push(t.name);
            referrers.set(b.refTable, list);
          }
        }
      }
      const badDefaults = t.userColumns.filter((c, i) => {
        try {
          checkDatum(defaults[i], c.type);
          return false;
        } catch {
          return true;
        }
      });
      info.set(t.name, { schema: t, refColumns, isRoot: roots.has(t.name), hasWeakRefs: refColumns.some((r) => !r.strong), defaults: new RowValues(layout, defaults), badDefaults });
      tables.set(t.name, new Map());
      this.indexMaps.set(t.name, t.indexes.map(() => new Map()));
    }
    this.info = info;
    this.tables = tables;
    this.referrers = referrers;
  }

  get name(): string {
    return this.schema.name;
  }

  table(name: string): Map<string, Row> | undefined {
    return this.tables.get(name);
  }

  /** Number of strong references to a row, from committed rows. */
  strongRefCount(uuid: string): number {
    return this.strongRefs.get(uuid) ?? 0;
  }

  /** The uuid holding `key` in index `i` of `table`, if any. */
  indexHolder(table: string, i: number, key: string): string | undefined {
    return this.indexMaps.get(table)![i].get(key);
  }

  /** Total rows in all tables (for logs and metrics). */
  rowCount(): number {
    let n = 0;
    for (const t of this.tables.values()) n += t.size;
    return n;
  }

  /** Installs already-checked changes: rows, reference counts and indexes (`log`: set deltas of the commit, if known). */
  apply(changes: readonly RowChange[], log?: DeltaLog): void {
    for (const ch of changes) {
      const name = ch.table.name;
      const rows = this.tables.get(name)!;
      const info = this.info.get(name)!;
      const idx = this.indexMaps.get(name)!;
      forEachRefChange(info, ch.old, ch.new, (ref, u, delta) => {
        if (!ref.strong) return;
        const n = (this.strongRefs.get(u) ?? 0) + delta;
        if (n === 0) this.strongRefs.delete(u);
        else this.strongRefs.set(u, n);
      }, log);
      for (let i = 0; i < idx.length; i++) {
        const cols = ch.table.indexes[i];
        if (ch.old && ch.new && indexUnchanged(ch.old, ch.new, cols)) continue;
        if (ch.old) {
          const k = indexKey(ch.old, cols);
          if (idx[i].get(k) === ch.uuid) idx[i].delete(k);
        }
        if (ch.new) idx[i].set(indexKey(ch.new, cols), ch.uuid);
      }
      if (ch.new) rows.set(ch.uuid, ch.new);
      else rows.delete(ch.uuid);
    }
  }
}

const UUID_BATCH = 256;
const HEX = Buffer.from('0123456789abcdef', 'latin1');
/** Random bytes for the next UUID_BATCH uuids, and their text (36 bytes each). */
const uuidRandom = Buffer.alloc(16 * UUID_BATCH);
const uuidText = Buffer.alloc(36 * UUID_BATCH);
let uuidNext = UUID_BATCH;
/** Set by seedUuids: the uuids then come from this seed, the same in every run. */
let uuidSeed: { seed: Buffer; batches: number } | undefined;

/**
 * Makes every later uuid a function of `seed` and of how many came before,
 * so that a replayed run (--replay) names rows as its recording did.
 */
export function seedUuids(seed: Buffer): void {
  uuidSeed = { seed, batches: 0 };
  uuidNext = UUID_BATCH;
}

function refillUuids(): void {
  if (uuidSeed) {
    const batch = Buffer.alloc(4);
    batch.writeUInt32BE(uuidSeed.batches++);
    createHash('shake256', { outputLength: uuidRandom.length }).update(uuidSeed.seed).update(batch).digest().copy(uuidRandom);
  } else randomFillSync(uuidRandom);
  for (let u = 0; u < UUID_BATCH; u++) {
    const r = u * 16;
    uuidRandom[r + 6] = (uuidRandom[r + 6] & 0x0f) | 0x40; // version 4
    uuidRandom[r + 8] = (uuidRandom[r + 8] & 0x3f) | 0x80; // RFC 4122 variant
    let t = u * 36;
    for (let i = 0; i < 16; i++) {
      if (i === 4 || i === 6 || i === 8 || i === 10) uuidText[t++] = 0x2d;
      const b = uuidRandom[r + i];
      uuidText[t++] = HEX[b >> 4];
      uuidText[t++] = HEX[b & 15];
    }
  }
  uuidNext = 0;
}

/**
 * A fresh (version 4) uuid for a row, a version or a transaction. Made as
 * one flat string: crypto.randomUUID() builds its result by concatenation,
 * and every row keeps two uuids, which as rope strings cost about four
 * times the memory (and are slower to hash as Map keys).
 */
export function newUuid(): string {
  if (uuidNext === UUID_BATCH) refillUuids();
  const at = 36 * uuidNext++;
  return uuidText.toString('latin1', at, at + 36);
}
