// RFC 7047 values (section 5.1): atoms, sets and maps, and their JSON
// notation — `["uuid", "..."]`, `["named-uuid", "name"]`, `["set", [...]]`,
// `["map", [[k, v], ...]]` — converted to and from typed values and checked
// against a column type. A Datum keeps its keys sorted and unique, so equal
// values have equal representations and set operations are merges.
import { ConstraintViolationError, DuplicateElementError, OvsdbSyntaxError } from './errors.ts';
import type { Atom, AtomicType, BaseType, ColumnType } from './schema.ts';

export type { Atom } from './schema.ts';

/**
 * A column value: a set of `keys`, or a map when `values` is present
 * (`values[i]` belongs to `keys[i]`). Keys are sorted by compareAtoms and
 * unique. Treat a Datum as immutable: operations return new ones.
 */
export interface Datum {
  readonly keys: readonly Atom[];
  readonly values?: readonly Atom[];
}

/** Resolves a `["named-uuid", name]` to a uuid; throws when the name is unknown. */
export type NamedUuidResolver = (name: string) => string;

const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const INT64_MIN = -(2 ** 63);
const INT64_MAX = 2 ** 63 - 1;

/** Whether `s` is a uuid in the 8-4-4-4-12 hex form. */
export function isUuid(s: unknown): s is string {
  return typeof s === 'string' && UUID_RE.test(s);
}

/** Total order on atoms of one type (false < true; uuids as canonical strings). */
export function compareAtoms(a: Atom, b: Atom): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Total order on datums of one type, as ovsdb-server's: fewer elements first, then keys, then values, element by element. */
export function compareDatums(a: Datum, b: Datum): number {
  if (a.keys.length !== b.keys.length) return a.keys.length < b.keys.length ? -1 : 1;
  for (let i = 0; i < a.keys.length; i++) {
    const c = compareAtoms(a.keys[i], b.keys[i]);
    if (c !== 0) return c;
  }
  if (!a.values || !b.values) return 0;
  for (let i = 0; i < a.values.length; i++) {
    const c = compareAtoms(a.values[i], b.values[i]);
    if (c !== 0) return c;
  }
  return 0;
}

export const EMPTY_SET: Datum = Object.freeze({ keys: Object.freeze([]) as readonly Atom[] });
export const EMPTY_MAP: Datum = Object.freeze({ keys: Object.freeze([]) as readonly Atom[], values: Object.freeze([]) as readonly Atom[] });

/** A set datum from atoms (sorted and de-duplicated here). */
export function makeSet(atoms: Atom[]): Datum {
  const keys = [...atoms].sort(compareAtoms);
  let n = 0;
  for (let i = 0; i < keys.length; i++) if (i === 0 || keys[i] !== keys[n - 1]) keys[n++] = keys[i];
  keys.length = n;
  return { keys };
}

/** A one-atom datum. */
export function makeAtom(a: Atom): Datum {
  return { keys: [a] };
}

/** A map datum from pairs; a later pair with the same key wins. */
export function makeMap(pairs: Array<[Atom, Atom]>): Datum {
  const byKey = new Map<Atom, Atom>(pairs);
  const keys = [...byKey.keys()].sort(compareAtoms);
  return { keys, values: keys.map((k) => byKey.get(k)!) };
}

function atomDefault(t: AtomicType): Atom {
  switch (t) {
    case 'integer':
    case 'real':
      return 0;
    case 'boolean':
      return false;
    case 'string':
      return '';
    case 'uuid':
      return '00000000-0000-0000-0000-000000000000';
  }
}

/** The default value of a column type (RFC 7047: empty when min is 0, else the atom default). */
export function defaultDatum(type: ColumnType): Datum {
  if (type.min === 0) return type.value ? EMPTY_MAP : EMPTY_SET;
  const key = atomDefault(type.key.type);
  return type.value ? { keys: [key], values: [atomDefault(type.value.type)] } : { keys: [key] };
}

/** Parses one atom of atomic type `t`; `resolve` handles named-uuids (absent: named-uuid is a syntax error). */
export function parseAtom(json: unknown, t: AtomicType, resolve?: NamedUuidResolver): Atom {
  switch (t) {
    case 'integer':
      if (typeof json !== 'number' || !Number.isInteger(json)) throw new OvsdbSyntaxError(`expected integer, got ${brief(json)}`);
      if (json < INT64_MIN || json > INT64_MAX) throw new OvsdbSyntaxError(`integer ${json} is out of the 64-bit range`);
      return json;
    case 'real':
      if (typeof json !== 'number') throw new OvsdbSyntaxError(`expected real, got ${brief(json)}`);
      return json;
    case 'boolean':
      if (typeof json !== 'boolean') throw new OvsdbSyntaxError(`expected boolean, got ${brief(json)}`);
      return json;
    case 'string':
      if (typeof json !== 'string') throw new OvsdbSyntaxError(`expected string, got ${brief(json)}`);
      return json;
    case 'uuid':
      if (Array.isArray(json) && json.length === 2 && typeof json[1] === 'string') {
        if (json[0] === 'uuid') {
          if (!UUID_RE.test(json[1])) throw new OvsdbSyntaxError(`"${json[1]}" is not a valid UUID`);
          return json[1].toLowerCase();
        }
        if (json[0] === 'named-uuid') {
          if (!resolve) throw new OvsdbSyntaxError(`named-uuid "${json[1]}" is not allowed here`);
          return resolve(json[1]);
        }
      }
      throw new OvsdbSyntaxError(`expected ["uuid", "<uuid>"] or ["named-uuid", "<name>"], got ${brief(json)}`);
  }
}

/** The JSON notation of an atom. */
export function atomToJson(a: Atom, t: AtomicType): unknown {
  return t === 'uuid' ? ['uuid', a] : a;
}

function brief(json: unknown): string {
  const s = JSON.stringify(json) ?? String(json);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/**
 * Parses a datum in the JSON notation. `checked` (a value a client writes)
 * also checks, in ovsdb-server's order: the element count (a syntax error),
 * then each atom's constraints as it is read, then duplicates.
 */
export function parseDatum(json: unknown, type: ColumnType, resolve?: NamedUuidResolver, checked = false): Datum {
  if (type.value) {
    if (!Array.isArray(json) || json.length !== 2 || json[0] !== 'map' || !Array.isArray(json[1])) {
      throw new OvsdbSyntaxError(`expected ["map", [[key, value], ...]], got ${brief(json)}`);
    }
    if (checked) checkCount(json, json[1].length, type);
    const pairs: Array<[Atom, Atom]> = [];
    for (const p of json[1] as unknown[]) {
      if (!Array.isArray(p) || p.length !== 2) throw new OvsdbSyntaxError(`map element ${brief(p)} is not a [key, value] pair`);
      pairs.push([parseCheckedAtom(p[0], type.key, resolve, checked), parseCheckedAtom(p[1], type.value, resolve, checked)]);
    }
    pairs.sort((a, b) => compareAtoms(a[0], b[0]));
    for (let i = 1; i < pairs.length; i++) {
      if (pairs[i][0] === pairs[i - 1][0]) throw new DuplicateElementError(`map contains duplicate key ${brief(atomToJson(pairs[i][0], type.key.type))}`);
    }
    return { keys: pairs.map((p) => p[0]), values: pairs.map((p) => p[1]) };
  }
  if (!Array.isArray(json) || json[0] !== 'set') {
    // A bare atom, the common case: no intermediate array to sort.
    if (checked) checkCount(json, 1, type);
    return { keys: [parseCheckedAtom(json, type.key, resolve, checked)] };
  }
  if (json.length !== 2 || !Array.isArray(json[1])) throw new OvsdbSyntaxError(`expected ["set", [...]], got ${brief(json)}`);
  const elements = json[1] as unknown[];
  if (checked) checkCount(json, elements.length, type);
  const atoms: Atom[] = new Array(elements.length);
  for (let i = 0; i < elements.length; i++) atoms[i] = parseCheckedAtom(elements[i], type.key, resolve, checked);
  if (atoms.length > 1) atoms.sort(compareAtoms);
  for (let i = 1; i < atoms.length; i++) {
    if (atoms[i] === atoms[i - 1]) throw new DuplicateElementError(`set contains duplicate value ${brief(atomToJson(atoms[i], type.key.type))}`);
  }
  return { keys: atoms };
}

/** One atom of a datum being parsed, checked against its base type's constraints when `checked`. */
function parseCheckedAtom(json: unknown, b: BaseType, resolve: NamedUuidResolver | undefined, checked: boolean): Atom {
  const x = parseAtom(json, b.type, resolve);
  if (checked) checkAtom(x, b);
  return x;
}

/** A client's datum must have a count its type allows: ovsdb-server's wording, with the datum in "syntax" (UINT_MAX stands for "unlimited"). */
function checkCount(json: unknown, n: number, type: ColumnType): void {
  if (n >= type.min && n <= type.max) return;
  const kind = type.value ? 'map' : 'set';
  const want = type.min === 1 && type.max === 1 ? 'exactly one member' : `${type.min} to ${type.max === Infinity ? 4294967295 : type.max} members`;
  throw new OvsdbSyntaxError(`${kind} must have ${want} but ${n} are present`, 'syntax error', json);
}

/** The JSON notation of a datum (a one-element set is written as its bare atom, as OVS does). */
export function datumToJson(d: Datum, type: ColumnType): unknown {
  const kt = type.key.type;
  if (d.values) {
    const vt = type.value!.type;
    const pairs = new Array(d.keys.length);
    for (let i = 0; i < d.keys.length; i++) pairs[i] = [atomToJson(d.keys[i], kt), atomToJson(d.values[i], vt)];
    return ['map', pairs];
  }
  if (d.keys.length === 1) return atomToJson(d.keys[0], kt);
  return ['set', d.keys.map((a) => atomToJson(a, kt))];
}

/** The JSON text of one atom (schema identifiers and uuids never need escaping; other strings do). */
function atomText(a: Atom, t: AtomicType): string {
  if (t === 'uuid') return `["uuid","${a as string}"]`;
  if (t === 'string') return JSON.stringify(a);
  return String(a);
}

/**
 * The JSON text of a datum, as JSON.stringify(datumToJson(d, type)) writes it,
 * without building the JSON value first (file records and monitor updates are
 * written this way on every commit).
 */
export function datumText(d: Datum, type: ColumnType): string {
  const kt = type.key.type;
  const keys = d.keys;
  if (d.values) {
    const vt = type.value!.type;
    let s = '["map",[';
    for (let i = 0; i < keys.length; i++) s += `${i === 0 ? '' : ','}[${atomText(keys[i], kt)},${atomText(d.values[i], vt)}]`;
    return s + ']]';
  }
  if (keys.length === 1) return atomText(keys[0], kt);
  let s = '["set",[';
  for (let i = 0; i < keys.length; i++) s += (i === 0 ? '' : ',') + atomText(keys[i], kt);
  return s + ']]';
}

// ---- ovs-vsctl's string notation (also the values in ovsdb-server's error messages)

/** Whether a string must be quoted to read back as the same string. */
function needsQuotes(s: string): boolean {
  if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(s)) return true;
  return s === 'true' || s === 'false' || isUuid(s);
}

/** A real as C's `%.15g` writes it. */
export function formatReal(x: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'nan' : x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  const [mantissa, e] = x.toExponential(14).split('e');
  const exp = Number(e);
  const trim = (t: string): string => (t.includes('.') ? t.replace(/0+$/, '').replace(/\.$/, '') : t);
  if (exp < -4 || exp >= 15) return `${trim(mantissa)}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  return trim(x.toFixed(14 - exp));
}

/** An atom in ovs-vsctl's string notation. */
export function atomToString(a: Atom, b: BaseType): string {
  if (b.type === 'string') return needsQuotes(a as string) ? JSON.stringify(a) : (a as string);
  if (b.type === 'real') return formatReal(a as number);
  return String(a);
}

/** A datum in ovs-vsctl's string notation: `10`, `[]`, `[a, b]`, `{k=v}`. */
export function datumToString(d: Datum, type: ColumnType): string {
  const parts = d.keys.map((k, i) => (type.value ? `${atomToString(k, type.key)}=${atomToString(d.values![i], type.value)}` : atomToString(k, type.key)));
  if (type.max > 1 || d.keys.length === 0) return type.value ? `{${parts.join(', ')}}` : `[${parts.join(', ')}]`;
  return parts.join(', ');
}

/** Checks one atom against its base type's constraints; throws ConstraintViolationError. */
export function checkAtom(a: Atom, b: BaseType): void {
  if (b.enum && !b.enum.includes(a)) {
    throw new ConstraintViolationError(`${brief(a)} is not one of the allowed values (${b.enum.map((e) => brief(e)).join(', ')})`);
  }
  switch (b.type) {
    case 'integer':
      if (b.minInteger !== undefined && (a as number) < b.minInteger) throw new ConstraintViolationError(`${a} is less than minimum allowed value ${b.minInteger}`);
      if (b.maxInteger !== undefined && (a as number) > b.maxInteger) throw new ConstraintViolationError(`${a} is greater than maximum allowed value ${b.maxInteger}`);
      break;
    case 'real':
      if (b.minReal !== undefined && (a as number) < b.minReal) throw new ConstraintViolationError(`${a} is less than minimum allowed value ${b.minReal}`);
      if (b.maxReal !== undefined && (a as number) > b.maxReal) throw new ConstraintViolationError(`${a} is greater than maximum allowed value ${b.maxReal}`);
      break;
    case 'string': {
      if (b.minLength === undefined && b.maxLength === undefined) break;
      // Lengths count Unicode code points, as OVS counts UTF-8 characters.
      const len = [...(a as string)].length;
      if (b.minLength !== undefined && len < b.minLength) throw new ConstraintViolationError(`"${brief(a)}" length ${len} is less than minimum allowed length ${b.minLength}`);
      if (b.maxLength !== undefined && len > b.maxLength) throw new ConstraintViolationError(`"${brief(a)}" length ${len} is greater than maximum allowed length ${b.maxLength}`);
      break;
    }
    default:
      break;
  }
}

/**
 * Checks every atom's constraints, then the datum's cardinality, against
 * `type`; `what` is 'mutation' for a mutation's result (reported in
 * ovsdb-server's words, "Attempted to store N elements in set of 1 to 2 integers.").
 */
export function checkDatum(d: Datum, type: ColumnType, what = 'value'): void {
  const kb = type.key;
  if (kb.enum || kb.minInteger !== undefined || kb.maxInteger !== undefined || kb.minReal !== undefined || kb.maxReal !== undefined || kb.minLength !== undefined || kb.maxLength !== undefined) {
    for (const a of d.keys) checkAtom(a, kb);
  }
  const vb = type.value;
  if (vb && d.values && (vb.enum || vb.minInteger !== undefined || vb.maxInteger !== undefined || vb.minReal !== undefined || vb.maxReal !== undefined || vb.minLength !== undefined || vb.maxLength !== undefined)) {
    for (const a of d.values) checkAtom(a, vb);
  }
  const n = datumSize(d);
  if (n < type.min || n > type.max) {
    if (what === 'mutation') throw new ConstraintViolationError(`Attempted to store ${n} elements in ${typeInEnglish(type)}.`);
    throw new ConstraintViolationError(`${what} has ${n} element${n === 1 ? '' : 's'} but must have ${sizeRange(type)}`);
  }
}

/** A column type in ovsdb-server's words: "integer", "set of 1 to 2 integers", "map of up to 5 (string, uuid) pairs". */
function typeInEnglish(type: ColumnType): string {
  if (!type.value && type.min === 1 && type.max === 1) return type.key.type;
  const count =
    type.max === Infinity ? (type.min > 0 ? ` of ${type.min} or more` : ' of') : type.min > 0 ? ` of ${type.min} to ${type.max}` : ` of up to ${type.max}`;
  return type.value ? `map${count} (${type.key.type}, ${type.value.type}) pairs` : `set${count} ${type.key.type}s`;
}

/** How many elements a column type takes, in words: "exactly 1", "at least 0", "between 0 and 2". */
function sizeRange(type: ColumnType): string {
  return type.max === Infinity ? `at least ${type.min}` : type.min === type.max ? `exactly ${type.min}` : `between ${type.min} and ${type.max}`;
}

/** Whether two datums are equal (same keys and, for maps, same values). */
export function datumEquals(a: Datum, b: Datum): boolean {
  if (a === b) return true;
  if (datumSize(a) !== datumSize(b)) return false;
  for (let i = 0; i < a.keys.length; i++) if (a.keys[i] !== b.keys[i]) return false;
  if (a.values && b.values) {
    for (let i = 0; i < a.values.length; i++) if (a.values[i] !== b.values[i]) return false;
  }
  return true;
}

/** Index of `key` in sorted `keys`, or -1. */
export function findKey(keys: readonly Atom[], key: Atom): number {
  let lo = 0;
  let hi = keys.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const k = keys[mid];
    if (k === key) return mid;
    if (k < key) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

/** Whether every key (and, for maps, key-value pair) of `a` is in `b`. */
export function datumIncludes(b: Datum, a: Datum): boolean {
  for (let i = 0; i < a.keys.length; i++) {
    const j = findKey(b.keys, a.keys[i]);
    if (j < 0) return false;
    if (a.values && b.values && a.values[i] !== b.values[j]) return false;
  }
  return true;
}

/** Set/map union: keys of `add` absent from `base` are added (existing map keys keep their value). */
export function datumUnion(base: Datum, add: Datum): Datum {
  const keys: Atom[] = [];
  const values: Atom[] | undefined = base.values ? [] : undefined;
  let i = 0;
  let j = 0;
  while (i < base.keys.length || j < add.keys.length) {
    const c = i >= base.keys.length ? 1 : j >= add.keys.length ? -1 : compareAtoms(base.keys[i], add.keys[j]);
    if (c <= 0) {
      keys.push(base.keys[i]);
      values?.push(base.values![i]);
      i++;
      if (c === 0) j++;
    } else {
      keys.push(add.keys[j]);
      values?.push(add.values![j]);
      j++;
    }
  }
  return values ? { keys, values } : { keys };
}

/**
 * Removes from `base` the keys of `del`. For a map, `del` may be a set of
 * keys (removes those keys) or a map (removes only pairs matching exactly).
 */
export function datumDifference(base: Datum, del: Datum): Datum {
  const keys: Atom[] = [];
  const values: Atom[] | undefined = base.values ? [] : undefined;
  for (let i = 0; i < base.keys.length; i++) {
    const j = findKey(del.keys, base.keys[i]);
    const remove = j >= 0 && (!del.values || !base.values || del.values[j] === base.values[i]);
    if (!remove) {
      keys.push(base.keys[i]);
      values?.push(base.values![i]);
    }
  }
  return values ? { keys, values } : { keys };
}

/**
 * The update2 "modify" diff of a column (RFC 7047bis, also OVS's `_is_diff`
 * file records): the new value for a scalar column, the symmetric difference
 * for a set, and for a map the removed pairs (old value), added pairs and
 * changed pairs (new value).
 */
export function datumDiff(oldD: Datum, newD: Datum, scalar: boolean): Datum {
  if (scalar) return newD;
  if (!oldD.values) {
    const keys: Atom[] = [];
    let i = 0;
    let j = 0;
    while (i < oldD.keys.length || j < newD.keys.length) {
      const c = i >= oldD.keys.length ? 1 : j >= newD.keys.length ? -1 : compareAtoms(oldD.keys[i], newD.keys[j]);
      if (c < 0) keys.push(oldD.keys[i++]);
      else if (c > 0) keys.push(newD.keys[j++]);
      else {
        i++;
        j++;
      }
    }
    return { keys };
  }
  const pairs: Array<[Atom, Atom]> = [];
  for (let i = 0; i < oldD.keys.length; i++) {
    if (findKey(newD.keys, oldD.keys[i]) < 0) pairs.push([oldD.keys[i], oldD.values[i]]);
  }
  for (let j = 0; j < newD.keys.length; j++) {
    const i = findKey(oldD.keys, newD.keys[j]);
    if (i < 0 || oldD.values[i] !== newD.values![j]) pairs.push([newD.keys[j], newD.values![j]]);
  }
  return makeMap(pairs);
}

/** Applies a diff made by datumDiff (the inverse operation). */
export function applyDiff(oldD: Datum, diff: Datum, scalar: boolean): Datum {
  if (scalar) return diff;
  if (!oldD.values) {
    const removed = datumDifference(oldD, diff);
    const added = datumDifference(diff, oldD);
    return datumUnion(removed, added);
  }
  const m = new Map<Atom, Atom>();
  for (let i = 0; i < oldD.keys.length; i++) m.set(oldD.keys[i], oldD.values[i]);
  for (let i = 0; i < diff.keys.length; i++) {
    const k = diff.keys[i];
    const v = diff.values![i];
    if (m.has(k) && m.get(k) === v) m.delete(k);
    else m.set(k, v);
  }
  return makeMap([...m]);
}

/**
 * How a set datum was derived from another by insert/delete mutations: lets
 * diffs and reference counting of a big set (Bridge.ports) cost O(changes)
 * instead of O(size). A transaction keeps these in a DeltaLog for the
 * duration of its commit only.
 */
export interface SetDelta {
  readonly base: Datum;
  readonly added: readonly Atom[];
  readonly removed: readonly Atom[];
}
export type DeltaLog = Map<Datum, SetDelta>;

function insertionPoint(keys: readonly Atom[], k: Atom): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (keys[mid] < k) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Sets this big are kept as chunks by insert/delete mutations (see ChunkedSet). */
const CHUNKED_FROM = 512;
/** Length of the chunks a set is cut into; a chunk that grows to twice this is split. */
const CHUNK = 128;

/**
 * A big set (Bridge.ports) held as sorted chunks, so that an insert or delete
 * mutation copies one chunk and the list of chunks — O(√size)-ish — instead
 * of the whole set, and successive versions share their untouched chunks
 * (cheap for the GC and for the monitor history). It is an ordinary Datum to
 * every reader: `keys` is the flat sorted array, built on first read and
 * kept. The commit path reads only `size` (datumSize) and the delta its
 * mutation logged, so a commit that adds a port never builds it.
 */
export class ChunkedSet implements Datum {
  readonly chunks: readonly (readonly Atom[])[];
  readonly size: number;
  #flat: readonly Atom[] | undefined;

  /** `flat`, when the caller has it, is the keys array (saves building it on first read). */
  constructor(chunks: readonly (readonly Atom[])[], size: number, flat?: readonly Atom[]) {
    this.chunks = chunks;
    this.size = size;
    this.#flat = flat;
  }

  get keys(): readonly Atom[] {
    return (this.#flat ??= this.chunks.flat());
  }

  /** The plain form, so JSON.stringify (the `wait` comparison) sees what it sees for any other set. */
  toJSON(): Datum {
    return { keys: this.keys };
  }
}

/** Number of keys (pairs, for a map) of a datum, without flattening a ChunkedSet. */
export function datumSize(d: Datum): number {
  return d instanceof ChunkedSet ? d.size : d.keys.length;
}

/** Index of the chunk that holds `k` or would: the first whose last key is >= k, else the last. */
function chunkIndex(chunks: readonly (readonly Atom[])[], k: Atom): number {
  let lo = 0;
  let hi = chunks.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const c = chunks[mid];
    if (c[c.length - 1] < k) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function setHas(d: Datum, k: Atom): boolean {
  if (d instanceof ChunkedSet) return d.chunks.length > 0 && findKey(d.chunks[chunkIndex(d.chunks, k)], k) >= 0;
  return findKey(d.keys, k) >= 0;
}

function chunksOf(d: Datum): Array<readonly Atom[]> {
  if (d instanceof ChunkedSet) return d.chunks.slice();
  const out: Array<readonly Atom[]> = [];
  for (let i = 0; i < d.keys.length; i += CHUNK) out.push(copyRange(d.keys, i, Math.min(i + CHUNK, d.keys.length)));
  return out;
}

/**
 * Copies keys[from, to) into a new array. Every chunk is made this way or by
 * copyWith (`new Array(n)`, then stores), so all chunks share one V8
 * elements kind: a chunk sliced from a differently built array (a bulk
 * insert's merge) would make the chunk functions polymorphic and deoptimize
 * them mid-run.
 */
function copyRange(keys: readonly Atom[], from: number, to: number): Atom[] {
  const out = new Array<Atom>(to - from);
  for (let i = from; i < to; i++) out[i - from] = keys[i];
  return out;
}

/** A set big enough to chunk, as a ChunkedSet (after a bulk insert or delete); anything else as is. */
function chunkedIfBig(d: Datum): Datum {
  if (d.values || d instanceof ChunkedSet || d.keys.length < CHUNKED_FROM) return d;
  return new ChunkedSet(chunksOf(d), d.keys.length, d.keys);
}

/** Copies `keys` with `k` inserted in order, or with the element at `del` left out. */
function copyWith(keys: readonly Atom[], at: number, k: Atom | undefined, del: boolean): Atom[] {
  const n = keys.length;
  const out = new Array<Atom>(del ? n - 1 : n + 1);
  let to = 0;
  for (let i = 0; i < at; i++) out[to++] = keys[i];
  if (del) {
    for (let i = at + 1; i < n; i++) out[to++] = keys[i];
  } else {
    out[to++] = k!;
    for (let i = at; i < n; i++) out[to++] = keys[i];
  }
  return out;
}

/**
 * `insert` mutation on a set or map: like datumUnion, recording set deltas in
 * `log`. A big set becomes (or stays) a ChunkedSet, so the insert copies a
 * chunk, not the set; a small one is copied once at its exact size.
 */
export function setInsert(base: Datum, add: Datum, log?: DeltaLog): Datum {
  if (base.values || add.keys.length > 16) return chunkedIfBig(datumUnion(base, add));
  let out: Datum;
  const added: Atom[] = [];
  if (!(base instanceof ChunkedSet) && base.keys.length + add.keys.length < CHUNKED_FROM) {
    // add.keys is sorted, so the insertion points ascend: one search per key, then one merge.
    const old = base.keys;
    const at: number[] = [];
    for (const k of add.keys) {
      const i = insertionPoint(old, k);
      if (old[i] === k) continue;
      added.push(k);
      at.push(i);
    }
    if (added.length === 0) return base;
    const keys = new Array<Atom>(old.length + added.length);
    let from = 0;
    let to = 0;
    for (let j = 0; j < added.length; j++) {
      while (from < at[j]) keys[to++] = old[from++];
      keys[to++] = added[j];
    }
    while (from < old.length) keys[to++] = old[from++];
    out = { keys };
  } else {
    // One search per key finds both whether it is present and where it goes; the chunk list is copied on the first insert.
    const src = base instanceof ChunkedSet ? base.chunks : chunksOf(base);
    let chunks: Array<readonly Atom[]> | undefined;
    for (const k of add.keys) {
      const cur = chunks ?? src;
      if (cur.length === 0) {
        chunks ??= [];
        chunks.push([k]);
        added.push(k);
        continue;
      }
      const c = chunkIndex(cur, k);
      const i = insertionPoint(cur[c], k);
      if (cur[c][i] === k) continue;
      chunks ??= src.slice();
      added.push(k);
      const grown = copyWith(chunks[c], i, k, false);
      if (grown.length >= 2 * CHUNK) chunks.splice(c, 1, copyRange(grown, 0, CHUNK), copyRange(grown, CHUNK, grown.length));
      else chunks[c] = grown;
    }
    if (!chunks) return base;
    out = new ChunkedSet(chunks, datumSize(base) + added.length);
  }
  log?.set(out, { base, added, removed: [] });
  return out;
}

/** `delete` mutation on a set or map: like datumDifference, recording set deltas in `log` (copies as setInsert does). */
export function setDelete(base: Datum, del: Datum, log?: DeltaLog): Datum {
  if (base.values || del.keys.length > 16) return chunkedIfBig(datumDifference(base, del));
  const removed: Atom[] = [];
  for (const k of del.keys) if (setHas(base, k)) removed.push(k);
  if (removed.length === 0) return base;
  let out: Datum;
  const size = datumSize(base) - removed.length;
  if (!(base instanceof ChunkedSet)) {
    const old = base.keys;
    const keys = new Array<Atom>(size);
    let from = 0;
    let to = 0;
    for (const k of removed) {
      const i = findKey(old, k);
      while (from < i) keys[to++] = old[from++];
      from++;
    }
    while (from < old.length) keys[to++] = old[from++];
    out = { keys };
  } else if (size < CHUNKED_FROM / 2) {
    // Small again: back to a plain array.
    out = datumDifference(base, { keys: removed });
  } else {
    const chunks = chunksOf(base);
    for (const k of removed) {
      const c = chunkIndex(chunks, k);
      const shrunk = copyWith(chunks[c], findKey(chunks[c], k), undefined, true);
      if (shrunk.length === 0) chunks.splice(c, 1);
      else chunks[c] = shrunk;
    }
    out = new ChunkedSet(chunks, size);
  }
  log?.set(out, { base, added: [], removed });
  return out;
}

/** datumDiff, in O(changes) when `log` knows how `newD` came from `oldD`. */
export function datumDiffFast(oldD: Datum, newD: Datum, scalar: boolean, log?: DeltaLog): Datum {
  const d = log?.get(newD);
  if (d && d.base === oldD && !scalar) return { keys: [...d.added, ...d.removed].sort(compareAtoms) };
  return datumDiff(oldD, newD, scalar);
}
