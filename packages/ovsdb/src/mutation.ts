// Mutations (RFC 7047 section 5.1 <mutation>): arithmetic on integer and
// real columns (element-wise on sets), and insert/delete on sets and maps.
// A mutation's result is checked against the column's constraints by the
// caller; errors here are the RFC's domain and range errors.
import { checkAtom, makeSet, parseAtom, parseDatum, setDelete, setInsert, type Atom, type Datum, type DeltaLog, type NamedUuidResolver } from './datum.ts';
import { ConstraintViolationError, DomainError, OvsdbSyntaxError, RangeOvsdbError } from './errors.ts';
import type { ColumnSchema, ColumnType, TableSchema } from './schema.ts';
import { lookupColumn, relaxed } from './condition.ts';

export type Mutator = '+=' | '-=' | '*=' | '/=' | '%=' | 'insert' | 'delete';

export interface Mutation {
  column: ColumnSchema;
  mutator: Mutator;
  arg: Datum;
}

const INT64_MIN = -(2 ** 63);
const INT64_MAX = 2 ** 63 - 1;

/** Parses one mutation against a table schema. */
export function parseMutation(table: TableSchema, json: unknown, resolve?: NamedUuidResolver): Mutation {
  if (!Array.isArray(json) || json.length !== 3 || typeof json[1] !== 'string') {
    throw new OvsdbSyntaxError(`mutation must be [column, mutator, value], got ${JSON.stringify(json)}`);
  }
  const column = lookupColumn(table, json[0]);
  const mutator = json[1];
  if (column.name.startsWith('_') || !column.mutable) {
    throw new ConstraintViolationError(`Cannot mutate immutable column ${column.name} in table ${table.name}.`, json);
  }
  const t = column.type;
  switch (mutator) {
    case '+=':
    case '-=':
    case '*=':
    case '/=':
    case '%=': {
      const kt = t.key.type;
      if (t.value || (kt !== 'integer' && kt !== 'real') || (mutator === '%=' && kt !== 'integer')) {
        throw new OvsdbSyntaxError(`Type mismatch: "${mutator}" mutator may not be applied to column ${column.name} of type ${kt}${t.value ? ' map' : ''}.`);
      }
      return { column, mutator, arg: { keys: [parseAtom(json[2], kt, resolve)] } };
    }
    case 'insert':
    case 'delete': {
      if (t.min === 1 && t.max === 1 && !t.value) {
        throw new OvsdbSyntaxError(`Type mismatch: "${mutator}" mutator may not be applied to scalar column ${column.name}.`);
      }
      // As in ovsdb-server: an inserted value may have fewer elements than the column
      // needs but not more, a deleted one any number; atoms meet the column's constraints.
      // Deleting from a map takes a map (exact pairs) or a set of keys: an argument that
      // is not a valid map is read as a set of keys, and that reading's error is reported.
      const argType: ColumnType = mutator === 'insert' ? { ...t, min: 0 } : relaxed(t);
      if (mutator === 'delete' && t.value) {
        try {
          return { column, mutator, arg: parseDatum(json[2], argType, resolve, true) };
        } catch {
          return { column, mutator, arg: parseDatum(json[2], { key: t.key, min: 0, max: Infinity }, resolve, true) };
        }
      }
      return { column, mutator, arg: parseDatum(json[2], argType, resolve, true) };
    }
    default:
      throw new OvsdbSyntaxError(`unknown mutator "${mutator}"`);
  }
}

function arith(mutator: Mutator, a: number, b: number, integer: boolean): number {
  let r: number;
  switch (mutator) {
    case '+=':
      r = a + b;
      break;
    case '-=':
      r = a - b;
      break;
    case '*=':
      r = a * b;
      break;
    case '/=':
      if (b === 0) throw new DomainError('Division by zero.');
      r = integer ? Math.trunc(a / b) : a / b;
      break;
    default:
      if (b === 0) throw new DomainError('Division by zero.');
      r = a % b;
      break;
  }
  if (integer ? r < INT64_MIN || r > INT64_MAX : !Number.isFinite(r)) {
    throw new RangeOvsdbError(`Result of "${mutator}" operation is out of range.`);
  }
  return r;
}

/** Applies a mutation to a column's current value and returns the new value (set deltas go to `log`). */
export function applyMutation(current: Datum, m: Mutation, log?: DeltaLog): Datum {
  const t = m.column.type;
  switch (m.mutator) {
    case 'insert':
      return setInsert(current, m.arg, log);
    case 'delete':
      return setDelete(current, m.arg, log);
    default: {
      const b = m.arg.keys[0] as number;
      const integer = t.key.type === 'integer';
      const out: Atom[] = current.keys.map((a) => arith(m.mutator, a as number, b, integer));
      for (const a of out) {
        try {
          checkAtom(a, t.key);
        } catch {
          throw new ConstraintViolationError(`Result of "${m.mutator}" operation on column ${m.column.name} is out of the column's range.`);
        }
      }
      const d = makeSet(out);
      if (d.keys.length !== out.length) throw new ConstraintViolationError(`Result of "${m.mutator}" operation on set column ${m.column.name} contains duplicate values.`);
      return d;
    }
  }
}
