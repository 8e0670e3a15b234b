// The value notation of ovs-vsctl's command line and output: atoms written
// bare (`br0`, `10`, `true`) or as JSON-quoted strings (`"52:54:00:aa:bb:cc"`),
// sets as `[a, b]` (brackets optional on input), maps as `{k=v, k2=v2}`,
// uuids as text and `@name` for rows named earlier in the same invocation.
//
// Parsing checks atomic types and the column's constraints, so a bad value
// is refused before anything is sent, with ovs-vsctl's wording.
// Deep imports keep the bundle (and nvs-vsctl's cold start) free of the server.
import type { Atom, BaseType, ColumnType } from '@nvs/ovsdb/src/schema.ts';
import { checkAtom, checkDatum, isUuid, makeMap, makeSet, type Datum } from '@nvs/ovsdb/src/datum.ts';
import { VsctlError } from './errors.ts';

/** Resolves `@name` to the uuid of a row created (or captured) earlier in the invocation. */
export type SymbolResolver = (name: string) => string;

/** Characters that end an unquoted token inside a set or map. */
const DELIMITERS = new Set([':', ',', ' ', '\t', '\n', '=', '{', '}', '[', ']']);

function parseQuoted(s: string, whole: string): { value: string; rest: string } {
  // A JSON string: find the closing quote, honoring escapes.
  let i = 1;
  while (i < s.length && s[i] !== '"') i += s[i] === '\\' ? 2 : 1;
  if (i >= s.length) throw new VsctlError('VSCTL_BAD_VALUE', `${whole}: missing quote at end of quoted string`);
  let value: string;
  try {
    value = JSON.parse(s.slice(0, i + 1)) as string;
  } catch {
    throw new VsctlError('VSCTL_BAD_VALUE', `${whole}: invalid escape in quoted string`);
  }
  return { value, rest: s.slice(i + 1) };
}

/** Converts one token to an atom of base type `b` (checks the type, not the constraints). */
function atomFromToken(token: string, quoted: boolean, b: BaseType, resolve: SymbolResolver): Atom {
  switch (b.type) {
    case 'integer': {
      if (quoted || !/^[-+]?\d+$/.test(token)) throw new VsctlError('VSCTL_BAD_VALUE', `"${token}" is not a valid integer`);
      const n = Number(token);
      if (!Number.isSafeInteger(n)) throw new VsctlError('VSCTL_BAD_VALUE', `"${token}" is out of the integer range`);
      return n;
    }
    case 'real': {
      const n = Number(token);
      if (quoted || token.trim() === '' || !Number.isFinite(n)) throw new VsctlError('VSCTL_BAD_VALUE', `"${token}" is not a valid real number`);
      return n;
    }
    case 'boolean':
      if (!quoted && token === 'true') return true;
      if (!quoted && token === 'false') return false;
      throw new VsctlError('VSCTL_BAD_VALUE', `"${token}" is not a valid boolean (use "true" or "false")`);
    case 'string':
      return token;
    case 'uuid':
      if (!quoted && token.startsWith('@')) return resolve(token);
      if (!quoted && isUuid(token)) return token.toLowerCase();
      throw new VsctlError('VSCTL_BAD_VALUE', `"${token}" is not a valid UUID`);
  }
}

function checked(a: Atom, b: BaseType): Atom {
  if (b.enum && !b.enum.includes(a)) {
    const allowed = b.enum.map((e) => atomToString(e, b));
    const list = allowed.length === 1 ? allowed[0] : `[${allowed.join(', ')}]`;
    throw new VsctlError('VSCTL_CONSTRAINT', `constraint violation: ${atomToString(a, b)} is not one of the allowed values (${list})`);
  }
  if (b.type === 'integer' && b.minInteger !== undefined && b.maxInteger !== undefined && ((a as number) < b.minInteger || (a as number) > b.maxInteger)) {
    throw new VsctlError('VSCTL_CONSTRAINT', `constraint violation: ${a} is not in the valid range ${b.minInteger} to ${b.maxInteger} (inclusive)`);
  }
  try {
    checkAtom(a, b);
  } catch (err) {
    throw new VsctlError('VSCTL_CONSTRAINT', `constraint violation: ${(err as Error).message}`);
  }
  return a;
}

/**
 * Parses a whole string as one atom, as after `column:key=` — no
 * tokenizing, so `a:b` or `a b` is one string; `"..."` is a quoted string.
 */
export function parseAtomString(s: string, b: BaseType, resolve: SymbolResolver): Atom {
  if (b.type === 'string' && s.startsWith('"')) {
    const { value, rest } = parseQuoted(s, s);
    if (rest !== '') throw new VsctlError('VSCTL_BAD_VALUE', `${s}: missing quote at end of quoted string`);
    return checked(value, b);
  }
  return checked(atomFromToken(s, false, b, resolve), b);
}

/** A scanner over the text of a set or map. */
class Tokens {
  pos = 0;
  constructor(readonly text: string) {}

  skipSpace(): void {
    while (this.pos < this.text.length && /\s/.test(this.text[this.pos])) this.pos++;
  }

  peek(): string | undefined {
    return this.text[this.pos];
  }

  /** The next atom token (quoted or bare). */
  token(): { token: string; quoted: boolean } {
    this.skipSpace();
    const rest = this.text.slice(this.pos);
    if (rest.startsWith('"')) {
      const { value, rest: after } = parseQuoted(rest, this.text);
      this.pos = this.text.length - after.length;
      return { token: value, quoted: true };
    }
    let end = this.pos;
    while (end < this.text.length && !DELIMITERS.has(this.text[end])) end++;
    const token = this.text.slice(this.pos, end);
    if (token === '') {
      const c = this.text[this.pos];
      throw new VsctlError('VSCTL_BAD_VALUE', c === undefined ? `${this.text}: unexpected end of input` : `${this.text.slice(this.pos)}: syntax error at "${c}"`);
    }
    this.pos = end;
    return { token, quoted: false };
  }
}

/**
 * Parses the text of a whole column value: `[a, b]`, `a,b`, `{k=v}`,
 * `k=v`, `[]`, `{}` or one atom. Checks the cardinality and constraints
 * unless `partial` (the arguments of `add`/`remove` are parts of a value).
 */
export function parseDatumString(text: string, type: ColumnType, resolve: SymbolResolver, partial = false): Datum {
  const isMapType = type.value !== undefined;
  const t = new Tokens(text);
  t.skipSpace();
  let close: string | undefined;
  if (t.peek() === (isMapType ? '{' : '[')) {
    close = isMapType ? '}' : ']';
    t.pos++;
  }
  const keys: Atom[] = [];
  const pairs: Array<[Atom, Atom]> = [];
  for (;;) {
    t.skipSpace();
    const c = t.peek();
    if (c === undefined || c === close) break;
    const start = t.pos;
    const k = t.token();
    if (isMapType) {
      const key = checked(atomFromToken(k.token, k.quoted, type.key, resolve), type.key);
      t.skipSpace();
      if (t.peek() !== '=') throw new VsctlError('VSCTL_BAD_VALUE', `${text.slice(start)}: syntax error${t.peek() ? ` at "${t.peek()}"` : ''} expecting "="`);
      t.pos++;
      const v = t.token();
      pairs.push([key, checked(atomFromToken(v.token, v.quoted, type.value!, resolve), type.value!)]);
    } else if (type.key.type === 'integer') {
      keys.push(...integerOrRange(k.token, k.quoted, type.key));
    } else {
      keys.push(checked(atomFromToken(k.token, k.quoted, type.key, resolve), type.key));
    }
    // Elements are separated by a comma, white space, or both.
    const before = t.pos;
    t.skipSpace();
    if (t.peek() === ',') t.pos++;
    else if (t.peek() !== undefined && t.peek() !== close && t.pos === before) {
      throw new VsctlError('VSCTL_BAD_VALUE', `${text}: unexpected "${t.peek()}" parsing ${describeType(type)}`);
    }
  }
  if (close) {
    if (t.peek() !== close) throw new VsctlError('VSCTL_BAD_VALUE', `${text}: missing "${close}" at end of value`);
    t.pos++;
    t.skipSpace();
    if (t.pos < text.length) throw new VsctlError('VSCTL_BAD_VALUE', `${text}: trailing garbage after "${close}"`);
  }
  const n = isMapType ? pairs.length : keys.length;
  if (isMapType && new Set(pairs.map((p) => p[0])).size !== pairs.length) throw new VsctlError('VSCTL_BAD_VALUE', `${text}: map contains duplicate key`);
  if (!isMapType && new Set(keys).size !== keys.length) throw new VsctlError('VSCTL_BAD_VALUE', `${text}: set contains duplicate value`);
  if (!partial && n > type.max) throw new VsctlError('VSCTL_BAD_VALUE', `${text}: ${n} value(s) specified but the maximum number is ${type.max}`);
  if (!partial && n < type.min) throw new VsctlError('VSCTL_BAD_VALUE', `${text}: ${n} value(s) specified but the minimum number is ${type.min}`);
  return isMapType ? makeMap(pairs) : makeSet(keys);
}

/** An integer set element: `5` or a range `10-20` (as in trunks=1,2,10-20). */
function integerOrRange(token: string, quoted: boolean, b: BaseType): Atom[] {
  const m = quoted ? null : /^([-+]?\d+)(?:-([-+]?\d+))?$/.exec(token);
  if (!m) throw new VsctlError('VSCTL_BAD_VALUE', `"${token}" is not a valid integer or range`);
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  if (!Number.isSafeInteger(lo) || !Number.isSafeInteger(hi) || hi < lo || hi - lo > 65535) throw new VsctlError('VSCTL_BAD_VALUE', `"${token}" is not a valid integer or range`);
  const out: Atom[] = [];
  for (let n = lo; n <= hi; n++) out.push(checked(n, b));
  return out;
}

function describeType(type: ColumnType): string {
  const what = type.value ? `${type.key.type}-${type.value.type} pairs` : `${type.key.type}s`;
  if (type.max === 1 && !type.value) return `set of up to 1 ${what}`;
  return type.max === Infinity ? `set of ${what}` : `set of up to ${type.max} ${what}`;
}

/** Checks a finished value against the column type (cardinality and constraints). */
export function checkValue(d: Datum, type: ColumnType, what: string): void {
  try {
    checkDatum(d, type, what);
  } catch (err) {
    throw new VsctlError('VSCTL_CONSTRAINT', `constraint violation: ${(err as Error).message}`);
  }
}

/** Whether a string must be quoted to read back as the same string. */
function needsQuotes(s: string): boolean {
  if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(s)) return true;
  return s === 'true' || s === 'false' || isUuid(s);
}

/** An atom in ovs-vsctl's string notation. */
export function atomToString(a: Atom, b: BaseType): string {
  if (b.type === 'string') return needsQuotes(a as string) ? JSON.stringify(a) : (a as string);
  return String(a);
}

/** An atom in bare notation (`--data=bare`): strings unquoted. */
function atomToBare(a: Atom): string {
  return String(a);
}

/** A datum in ovs-vsctl's string notation: `10`, `[]`, `[a, b]`, `{k=v}`. */
export function datumToString(d: Datum, type: ColumnType): string {
  if (type.value) {
    const parts = d.keys.map((k, i) => `${atomToString(k, type.key)}=${atomToString(d.values![i], type.value!)}`);
    return `{${parts.join(', ')}}`;
  }
  if (type.max === 1 && d.keys.length === 1) return atomToString(d.keys[0], type.key);
  return `[${d.keys.map((k) => atomToString(k, type.key)).join(', ')}]`;
}

/** A datum in bare notation: elements separated by spaces, map pairs as `k=v`. */
export function datumToBare(d: Datum): string {
  if (d.values) return d.keys.map((k, i) => `${atomToBare(k)}=${atomToBare(d.values![i])}`).join(' ');
  return d.keys.map(atomToBare).join(' ');
}
