// OVSDB schema model (RFC 7047 section 3.2): parses a schema's JSON into
// typed tables, columns and column types, and checks it (identifiers, type
// constraints, refTable targets, indexes). The original JSON is kept so
// `get_schema` returns exactly what was loaded.
import { SchemaError } from './errors.ts';

export type AtomicType = 'integer' | 'real' | 'boolean' | 'string' | 'uuid';
export const ATOMIC_TYPES: readonly AtomicType[] = ['integer', 'real', 'boolean', 'string', 'uuid'];

/** An atom's value: integers and reals are numbers, uuids are canonical lowercase strings. */
export type Atom = number | boolean | string;

/** An atomic type with its optional constraints (RFC 7047 <base-type>). */
export interface BaseType {
  type: AtomicType;
  /** Allowed values, sorted; undefined when unconstrained. */
  enum?: Atom[];
  minInteger?: number;
  maxInteger?: number;
  minReal?: number;
  maxReal?: number;
  minLength?: number;
  maxLength?: number;
  refTable?: string;
  refType?: 'strong' | 'weak';
}

/** A column type (RFC 7047 <type>): a set of keys, or a map when `value` is set. */
export interface ColumnType {
  key: BaseType;
  value?: BaseType;
  min: number;
  /** Infinity for "unlimited". */
  max: number;
}

export interface ColumnSchema {
  name: string;
  type: ColumnType;
  ephemeral: boolean;
  mutable: boolean;
}

export interface TableSchema {
  name: string;
  /** Columns of the schema plus the implicit `_uuid` and `_version`. */
  columns: Map<string, ColumnSchema>;
  /** Columns declared by the schema, in declaration order (no `_uuid`/`_version`). */
  userColumns: ColumnSchema[];
  maxRows: number;
  isRoot: boolean;
  indexes: string[][];
}

export interface DatabaseSchema {
  name: string;
  version: string;
  cksum?: string;
  tables: Map<string, TableSchema>;
  /** The schema JSON as loaded. */
  json: Record<string, unknown>;
}

const ID_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const VERSION_RE = /^\d+\.\d+\.\d+$/;

const UUID_COLUMN_TYPE: ColumnType = { key: { type: 'uuid' }, min: 1, max: 1 };

/** Whether a column type is a map. */
export function isMap(t: ColumnType): boolean {
  return t.value !== undefined;
}

/**
 * Whether a diff of this column (update2 "modify", `_is_diff` file records)
 * is its new value rather than a set difference: true for columns holding
 * at most one atom, as OVS does (an optional column's diff is its new value,
 * the empty set when cleared).
 */
export function diffIsNewValue(t: ColumnType): boolean {
  return t.max === 1 && t.value === undefined;
}

/** Whether a column holds exactly one atom (min = max = 1, not a map). */
export function isScalar(t: ColumnType): boolean {
  return t.min === 1 && t.max === 1 && t.value === undefined;
}

function fail(where: string, what: string): never {
  throw new SchemaError(`${where}: ${what}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseAtomicType(where: string, v: unknown): AtomicType {
  if (typeof v !== 'string' || !(ATOMIC_TYPES as readonly string[]).includes(v)) {
    fail(where, `unknown atomic type ${JSON.stringify(v)} (expected one of ${ATOMIC_TYPES.join(', ')})`);
  }
  return v as AtomicType;
}

function parseEnum(where: string, type: AtomicType, v: unknown): Atom[] {
  // The enum is a <set> of atoms: a bare atom or ["set", [...]].
  const items = Array.isArray(v) && v[0] === 'set' && Array.isArray(v[1]) ? (v[1] as unknown[]) : [v];
  return items
    .map((a) => {
      if (type === 'integer' || type === 'real') {
        if (typeof a !== 'number') fail(where, `enum value ${JSON.stringify(a)} is not a number`);
        return a;
      }
      if (type === 'boolean') {
        if (typeof a !== 'boolean') fail(where, `enum value ${JSON.stringify(a)} is not a boolean`);
        return a;
      }
      if (type === 'string') {
        if (typeof a !== 'string') fail(where, `enum value ${JSON.stringify(a)} is not a string`);
        return a;
      }
      fail(where, 'enum is not allowed on uuid columns');
    })
    .sort(compareAtomsRaw);
}

function compareAtomsRaw(a: Atom, b: Atom): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function num(where: string, v: unknown, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number') fail(where, `${name} must be a number`);
  return v;
}

function parseBaseType(where: string, v: unknown): BaseType {
  if (typeof v === 'string') return { type: parseAtomicType(where, v) };
  if (!isObject(v)) fail(where, 'base type must be a string or an object');
  const type = parseAtomicType(where, v.type);
  const bt: BaseType = { type };
  for (const key of Object.keys(v)) {
    if (!['type', 'enum', 'minInteger', 'maxInteger', 'minReal', 'maxReal', 'minLength', 'maxLength', 'refTable', 'refType'].includes(key)) {
      fail(where, `unknown member "${key}" in base type`);
    }
  }
  if (v.enum !== undefined) bt.enum = parseEnum(where, type, v.enum);
  if (type === 'integer') {
    bt.minInteger = num(where, v.minInteger, 'minInteger');
    bt.maxInteger = num(where, v.maxInteger, 'maxInteger');
    if (bt.minInteger !== undefined && bt.maxInteger !== undefined && bt.minInteger > bt.maxInteger) fail(where, 'minInteger exceeds maxInteger');
  } else if (type === 'real') {
    bt.minReal = num(where, v.minReal, 'minReal');
    bt.maxReal = num(where, v.maxReal, 'maxReal');
    if (bt.minReal !== undefined && bt.maxReal !== undefined && bt.minReal > bt.maxReal) fail(where, 'minReal exceeds maxReal');
  } else if (type === 'string') {
    bt.minLength = num(where, v.minLength, 'minLength');
    bt.maxLength = num(where, v.maxLength, 'maxLength');
    if (bt.minLength !== undefined && bt.maxLength !== undefined && bt.minLength > bt.maxLength) fail(where, 'minLength exceeds maxLength');
  } else if (type === 'uuid') {
    if (v.refTable !== undefined) {
      if (typeof v.refTable !== 'string') fail(where, 'refTable must be a string');
      bt.refTable = v.refTable;
      if (v.refType !== undefined && v.refType !== 'strong' && v.refType !== 'weak') fail(where, 'refType must be "strong" or "weak"');
      bt.refType = (v.refType as 'strong' | 'weak' | undefined) ?? 'strong';
    }
  }
  return bt;
}

/** Parses an RFC 7047 <type>. `where` prefixes error messages. */
export function parseColumnType(where: string, v: unknown): ColumnType {
  if (typeof v === 'string') return { key: { type: parseAtomicType(where, v) }, min: 1, max: 1 };
  if (!isObject(v)) fail(where, 'type must be a string or an object');
  for (const key of Object.keys(v)) {
    if (!['key', 'value', 'min', 'max'].includes(key)) fail(where, `unknown member "${key}" in type`);
  }
  const key = parseBaseType(where, v.key);
  const value = v.value === undefined ? undefined : parseBaseType(where, v.value);
  const min = v.min === undefined ? 1 : v.min;
  if (typeof min !== 'number' || !Number.isInteger(min) || min < 0 || min > 1) fail(where, 'min must be 0 or 1');
  const max = v.max === undefined ? 1 : v.max === 'unlimited' ? Infinity : v.max;
  if (typeof max !== 'number' || max < 1 || (max !== Infinity && !Number.isInteger(max))) fail(where, 'max must be a positive integer or "unlimited"');
  if (min > max) fail(where, 'min exceeds max');
  return value === undefined ? { key, min, max } : { key, value, min, max };
}

/** Serializes a column type back to RFC 7047 JSON (for `_Server` and generated schemas). */
export function columnTypeToJson(t: ColumnType): unknown {
  const base = (b: BaseType): unknown => {
    const o: Record<string, unknown> = { type: b.type };
    if (b.enum) o.enum = b.enum.length === 1 ? b.enum[0] : ['set', b.enum];
    for (const k of ['minInteger', 'maxInteger', 'minReal', 'maxReal', 'minLength', 'maxLength', 'refTable', 'refType'] as const) {
      if (b[k] !== undefined) o[k] = b[k];
    }
    return Object.keys(o).length === 1 ? b.type : o;
  };
  const o: Record<string, unknown> = { key: base(t.key) };
  if (t.value) o.value = base(t.value);
  if (t.min !== 1) o.min = t.min;
  if (t.max !== 1) o.max = t.max === Infinity ? 'unlimited' : t.max;
  return o;
}

/** Parses and checks a database schema (RFC 7047 <database-schema>). Throws SchemaError. */
export function parseSchema(json: unknown): DatabaseSchema {
  if (!isObject(json)) fail('schema', 'must be a JSON object');
  const { name, version, cksum, tables } = json;
  if (typeof name !== 'string' || !ID_RE.test(name)) fail('schema', 'name must be an identifier');
  // Optional, as in ovsdb-server (RFC 7047 requires it; OVS's own test schemas leave it out).
  if (version !== undefined && (typeof version !== 'string' || !VERSION_RE.test(version))) fail('schema', 'version must look like "x.y.z"');
  if (cksum !== undefined && typeof cksum !== 'string') fail('schema', 'cksum must be a string');
  if (!isObject(tables) || Object.keys(tables).length === 0) fail('schema', 'tables must be a non-empty object');
  const out = new Map<string, TableSchema>();
  for (const [tname, tjson] of Object.entries(tables)) {
    out.set(tname, parseTable(tname, tjson));
  }
  for (const t of out.values()) {
    for (const c of t.userColumns) {
      for (const b of [c.type.key, c.type.value]) {
        if (b?.refTable !== undefined && !out.has(b.refTable)) {
          fail(`table ${t.name} column ${c.name}`, `refTable "${b.refTable}" is not a table of this schema`);
        }
      }
    }
  }
  return { name, version: version ?? '', cksum: cksum as string | undefined, tables: out, json };
}

function parseTable(name: string, v: unknown): TableSchema {
  const where = `table ${name}`;
  if (!ID_RE.test(name) || name.startsWith('_')) fail(where, 'table name must be an identifier not starting with "_"');
  if (!isObject(v)) fail(where, 'must be an object');
  for (const key of Object.keys(v)) {
    if (!['columns', 'maxRows', 'isRoot', 'indexes'].includes(key)) fail(where, `unknown member "${key}"`);
  }
  if (!isObject(v.columns)) fail(where, 'columns must be an object');
  const columns = new Map<string, ColumnSchema>();
  columns.set('_uuid', { name: '_uuid', type: UUID_COLUMN_TYPE, ephemeral: false, mutable: false });
  columns.set('_version', { name: '_version', type: UUID_COLUMN_TYPE, ephemeral: false, mutable: false });
  const userColumns: ColumnSchema[] = [];
  for (const [cname, cjson] of Object.entries(v.columns)) {
    const cwhere = `${where} column ${cname}`;
    if (!ID_RE.test(cname) || cname.startsWith('_')) fail(cwhere, 'column name must be an identifier not starting with "_"');
    if (!isObject(cjson)) fail(cwhere, 'must be an object');
    for (const key of Object.keys(cjson)) {
      if (!['type', 'ephemeral', 'mutable'].includes(key)) fail(cwhere, `unknown member "${key}"`);
    }
    const col: ColumnSchema = {
      name: cname,
      type: parseColumnType(cwhere, cjson.type),
      ephemeral: cjson.ephemeral === true,
      mutable: cjson.mutable !== false,
    };
    columns.set(cname, col);
    userColumns.push(col);
  }
  let maxRows = Infinity;
  if (v.maxRows !== undefined) {
    if (typeof v.maxRows !== 'number' || !Number.isInteger(v.maxRows) || v.maxRows < 1) fail(where, 'maxRows must be a positive integer');
    maxRows = v.maxRows;
  }
  if (v.isRoot !== undefined && typeof v.isRoot !== 'boolean') fail(where, 'isRoot must be a boolean');
  const indexes: string[][] = [];
  if (v.indexes !== undefined) {
    if (!Array.isArray(v.indexes)) fail(where, 'indexes must be an array');
    for (const idx of v.indexes) {
      if (!Array.isArray(idx) || idx.length === 0) fail(where, 'each index must be a non-empty array of column names');
      for (const c of idx) {
        if (typeof c !== 'string' || !columns.has(c)) fail(where, `index names unknown column ${JSON.stringify(c)}`);
        const col = columns.get(c)!;
        if (col.ephemeral) fail(where, `index column "${c}" is ephemeral`);
      }
      indexes.push(idx as string[]);
    }
  }
  // RFC 7047: isRoot defaults to false, but a schema without any isRoot
  // means every table is a root (the rule that predates isRoot).
  return { name, columns, userColumns, maxRows, isRoot: v.isRoot === true, indexes };
}

/**
 * Applies the RFC's compatibility rule: if no table of the schema sets
 * isRoot, every table is a root. Called once by parseSchema's users that
 * garbage-collect (the database engine).
 */
export function rootTables(schema: DatabaseSchema): Set<string> {
  const roots = [...schema.tables.values()].filter((t) => t.isRoot).map((t) => t.name);
  return new Set(roots.length > 0 ? roots : schema.tables.keys());
}
