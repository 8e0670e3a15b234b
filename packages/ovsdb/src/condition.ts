// `where` conditions (RFC 7047 section 5.1 <condition>) parsed against a
// table schema and evaluated on rows; used by transact operations and by
// conditional monitors (where a bare `true`/`false` is also a condition).
import { columnValue, type Row } from './database.ts';
import { checkAtom, compareAtoms, datumEquals, findKey, parseAtom, parseDatum, type Datum, type NamedUuidResolver } from './datum.ts';
import { OvsdbSyntaxError } from './errors.ts';
import type { ColumnSchema, ColumnType, TableSchema } from './schema.ts';

export type ConditionFunction = '<' | '<=' | '==' | '!=' | '>=' | '>' | 'includes' | 'excludes';
const FUNCTIONS: readonly string[] = ['<', '<=', '==', '!=', '>=', '>', 'includes', 'excludes'];

export type Condition =
  | { kind: 'const'; value: boolean }
  | { kind: 'column'; column: string; fn: ConditionFunction; arg: Datum };

/** Looks up a column (including `_uuid`/`_version`) or throws the RFC's `unknown column`. */
export function lookupColumn(table: TableSchema, name: unknown): ColumnSchema {
  const col = typeof name === 'string' ? table.columns.get(name) : undefined;
  if (!col) throw new OvsdbSyntaxError(`No column ${String(name)} in table ${table.name}.`, 'unknown column');
  return col;
}

/** Relaxed copy of a column type: any number of elements (for condition and mutation arguments). */
export function relaxed(type: ColumnType): ColumnType {
  return { ...type, min: 0, max: Infinity };
}

/** Parses one condition; `allowConst` admits the bare booleans of monitor_cond. */
export function parseCondition(table: TableSchema, json: unknown, resolve?: NamedUuidResolver, allowConst = false): Condition {
  if (allowConst && typeof json === 'boolean') return { kind: 'const', value: json };
  if (!Array.isArray(json) || json.length !== 3 || typeof json[1] !== 'string') {
    throw new OvsdbSyntaxError(`condition must be [column, function, value], got ${JSON.stringify(json)}`);
  }
  const col = lookupColumn(table, json[0]);
  const fn = json[1];
  if (!FUNCTIONS.includes(fn)) throw new OvsdbSyntaxError(`unknown condition function "${fn}"`);
  const t = col.type;
  if (fn === '<' || fn === '<=' || fn === '>' || fn === '>=') {
    if ((t.key.type !== 'integer' && t.key.type !== 'real') || t.max !== 1 || t.value) {
      throw new OvsdbSyntaxError(`Type mismatch: "${fn}" operator may not be applied to column ${col.name} of type ${t.key.type}.`);
    }
    const a = parseAtom(json[2], t.key.type, resolve);
    checkAtom(a, t.key);
    return { kind: 'column', column: col.name, fn, arg: { keys: [a] } };
  }
  // As in ovsdb-server: the value has the column's own type, except that for a column
  // that is not a single atom, includes takes fewer elements and excludes any number.
  const scalar = t.min === 1 && t.max === 1 && !t.value;
  const argType = scalar ? t : fn === 'includes' ? { ...t, min: 0 } : fn === 'excludes' ? relaxed(t) : t;
  const arg = parseDatum(json[2], argType, resolve, true);
  return { kind: 'column', column: col.name, fn: fn as ConditionFunction, arg };
}

/** Parses a `where` array (transact operations: conditions are ANDed). */
export function parseWhere(table: TableSchema, json: unknown, resolve?: NamedUuidResolver): Condition[] {
  if (json === undefined) return [];
  if (!Array.isArray(json)) throw new OvsdbSyntaxError('"where" must be an array of conditions');
  return json.map((c) => parseCondition(table, c, resolve));
}

function includes(have: Datum, want: Datum): boolean {
  for (let i = 0; i < want.keys.length; i++) {
    const j = findKey(have.keys, want.keys[i]);
    if (j < 0) return false;
    if (want.values && have.values && want.values[i] !== have.values[j]) return false;
  }
  return true;
}

function excludes(have: Datum, want: Datum): boolean {
  for (let i = 0; i < want.keys.length; i++) {
    const j = findKey(have.keys, want.keys[i]);
    if (j >= 0 && (!want.values || !have.values || want.values[i] === have.values[j])) return false;
  }
  return true;
}

/** Evaluates one condition on a row. */
export function evaluate(row: Row, c: Condition): boolean {
  if (c.kind === 'const') return c.value;
  const v = columnValue(row, c.column);
  switch (c.fn) {
    case '==':
      return datumEquals(v, c.arg);
    case '!=':
      return !datumEquals(v, c.arg);
    case 'includes':
      return includes(v, c.arg);
    case 'excludes':
      return excludes(v, c.arg);
    default: {
      // Ordering functions on an empty optional column are false, as in OVS.
      if (v.keys.length === 0) return false;
      const cmp = compareAtoms(v.keys[0], c.arg.keys[0]);
      return c.fn === '<' ? cmp < 0 : c.fn === '<=' ? cmp <= 0 : c.fn === '>' ? cmp > 0 : cmp >= 0;
    }
  }
}

/** Whether a row satisfies every condition (transact semantics). */
export function matchesAll(row: Row, conds: readonly Condition[]): boolean {
  for (const c of conds) if (!evaluate(row, c)) return false;
  return true;
}

/** Whether a row satisfies any condition (monitor_cond semantics; as in OVS, an empty list matches every row). */
export function matchesAny(row: Row, conds: readonly Condition[]): boolean {
  if (conds.length === 0) return true;
  for (const c of conds) if (evaluate(row, c)) return true;
  return false;
}

/** If the conditions pin `_uuid` with `==`, that uuid (so a lookup replaces a scan). */
export function uuidLookup(conds: readonly Condition[]): string | undefined {
  for (const c of conds) {
    if (c.kind === 'column' && c.column === '_uuid' && c.fn === '==' && c.arg.keys.length === 1) return c.arg.keys[0] as string;
  }
  return undefined;
}
