// The value notation of ovs-vsctl's command line and output: atoms written
// bare (`br0`, `10`, `true`) or as JSON-quoted strings (`"52:54:00:aa:bb:cc"`),
// sets as `[a, b]` (brackets optional on input), maps as `{k=v, k2=v2}`,
// integer ranges `10-12` inside sets, uuids as text and `@name` for rows
// named in the same invocation.
//
// Parsing follows ovs-vsctl's rules step for step, so that what one accepts
// the other accepts and a refusal reads the same: words end at one of
// `:=, []{}!<>` (a backslash escapes one, double quotes protect them), each
// word is then read as an atom of the column's type and checked against its
// constraints, and the whole value against the column's cardinality.
// Deep imports keep the bundle (and nvs-vsctl's cold start) free of the server.
import { atomToString, formatReal, isUuid, makeMap, makeSet, type Atom, type BaseType, type ColumnType, type Datum } from '@nvs/ovsdb';

// The string notation's writers live with the data model (ovsdb-server's error messages use them too).
export { atomToString, datumToString } from '@nvs/ovsdb';
import { VsctlError } from './errors.ts';

/** Resolves `@name` (a reference of base type `b`) to the uuid of a row created or captured in the invocation. */
export type SymbolResolver = (name: string, b: BaseType) => string;

/** Characters that end a word (outside double quotes). */
const DELIMITERS = ':=, []{}!<>';

function isDelimiter(c: string | undefined): boolean {
  return c !== undefined && DELIMITERS.includes(c);
}

/**
 * Reads one word of `s` from `pos`: up to a delimiter or the end. A
 * backslash makes the next character part of the word (and is dropped);
 * double quotes are kept, and protect delimiters and backslashes until the
 * closing one.
 */
export function parseToken(s: string, pos: number): { token: string; end: number } {
  let out = '';
  let quoted = false;
  let p = pos;
  while (p < s.length) {
    const c = s[p++];
    if (c === '\\') {
      if (quoted) out += '\\';
      if (p >= s.length) throw new VsctlError('VSCTL_BAD_VALUE', `${s.slice(pos)}: backslash at end of argument`);
      out += s[p++];
    } else if (!quoted && isDelimiter(c)) {
      p--;
      break;
    } else {
      out += c;
      if (c === '"') quoted = !quoted;
    }
  }
  if (quoted) throw new VsctlError('VSCTL_BAD_VALUE', `${s.slice(pos)}: quoted string extends past end of argument`);
  return { token: out, end: p };
}

const SPACE = /[ \t\n\v\f\r]/;

function skipSpaces(s: string, p: number): number {
  while (p < s.length && SPACE.test(s[p])) p++;
  return p;
}

/** A whole decimal integer as C's strtoll reads one (leading white space, a sign), or undefined. */
function readInteger(s: string): number | undefined {
  if (!/^[ \t\n\v\f\r]*[+-]?\d+$/.test(s)) return undefined;
  const n = Number(s.trim());
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Reads `a-b` (each an integer as above). */
function readRange(s: string): [number, number] | undefined {
  const m = /^([ \t\n\v\f\r]*[+-]?\d+)-(.*)$/s.exec(s);
  if (!m) return undefined;
  const lo = readInteger(m[1]);
  const hi = readInteger(m[2]);
  return lo === undefined || hi === undefined ? undefined : [lo, hi];
}

function readReal(s: string): number | undefined {
  if (!/^[ \t\n\v\f\r]*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s)) return undefined;
  const n = Number(s.trim());
  // -0 reads as 0, as in the JSON the server speaks.
  return Number.isFinite(n) ? n + 0 : undefined;
}

/** Largest span of an integer range in a set (`1-4096` is the most). */
const MAX_RANGE_SIZE = 4096;

/**
 * Reads one word as atoms of base type `b`: one atom, or with `range` an
 * integer range `a-b` as all of its atoms. Checks each against the
 * constraints of `b` (enum, minimum and maximum, string length).
 */
export function parseAtoms(s: string, b: BaseType, resolve: SymbolResolver, range = false): Atom[] {
  switch (b.type) {
    case 'integer': {
      const r = range ? readRange(s) : undefined;
      if (r) {
        if (r[1] < r[0]) throw new VsctlError('VSCTL_BAD_VALUE', `"${s}" is not a valid range. Range end cannot be before start.`);
        checkConstraints(r[0], b);
        if (b.enum) for (let i = r[0] + 1; i <= r[1]; i++) checkConstraints(i, b);
        else checkConstraints(r[1], b);
        if (r[1] - r[0] >= MAX_RANGE_SIZE) throw new VsctlError('VSCTL_CONSTRAINT', `constraint violation: Range "${r[0]}-${r[1]}" is too big. Maximum allowed size is ${MAX_RANGE_SIZE}.`);
        return Array.from({ length: r[1] - r[0] + 1 }, (_, i) => r[0] + i);
      }
      const n = readInteger(s);
      if (n === undefined) throw new VsctlError('VSCTL_BAD_VALUE', `"${s}" is not a valid integer or range`);
      return [checkConstraints(n, b)];
    }
    case 'real': {
      const n = readReal(s);
      if (n === undefined) throw new VsctlError('VSCTL_BAD_VALUE', `"${s}" is not a valid real number`);
      return [checkConstraints(n, b)];
    }
    case 'boolean':
      if (['true', 'yes', 'on', '1'].includes(s)) return [true];
      if (['false', 'no', 'off', '0'].includes(s)) return [false];
      throw new VsctlError('VSCTL_BAD_VALUE', `"${s}" is not a valid boolean (use "true" or "false")`);
    case 'string': {
      if (s === '') throw new VsctlError('VSCTL_BAD_VALUE', 'An empty string is not valid as input; use "" to represent the empty string');
      if (!s.startsWith('"')) return [checkConstraints(s, b)];
      if (s.length < 2 || !s.endsWith('"')) throw new VsctlError('VSCTL_BAD_VALUE', `${s}: missing quote at end of quoted string`);
      let value: string;
      try {
        value = JSON.parse(s) as string;
      } catch {
        throw new VsctlError('VSCTL_BAD_VALUE', `${s}: invalid escape in quoted string`);
      }
      return [checkConstraints(value, b)];
    }
    case 'uuid':
      if (s.startsWith('@')) return [resolve(s, b)];
      if (isUuid(s)) return [s.toLowerCase()];
      throw new VsctlError('VSCTL_BAD_VALUE', `"${s}" is not a valid UUID`);
  }
}

/** Reads a whole string as one atom, as after `column:key=` (no word splitting: `a b` is one string). */
export function parseAtomString(s: string, b: BaseType, resolve: SymbolResolver): Atom {
  return parseAtoms(s, b, resolve)[0];
}

/** Checks an atom against the constraints of its base type, in ovs-vsctl's words. */
function checkConstraints(a: Atom, b: BaseType): Atom {
  const violation = (message: string): VsctlError => new VsctlError('VSCTL_CONSTRAINT', `constraint violation: ${message}`);
  if (b.enum && !b.enum.includes(a)) {
    throw violation(`${atomToString(a, b)} is not one of the allowed values ([${b.enum.map((e) => atomToString(e, b)).join(', ')}])`);
  }
  if (b.type === 'integer' || b.type === 'real') {
    const n = a as number;
    const [min, max] = b.type === 'integer' ? [b.minInteger, b.maxInteger] : [b.minReal, b.maxReal];
    const fmt = (x: number): string => (b.type === 'integer' ? String(x) : formatReal(x));
    if ((min === undefined || n >= min) && (max === undefined || n <= max)) return a;
    if (min !== undefined && max !== undefined) throw violation(`${fmt(n)} is not in the valid range ${fmt(min)} to ${fmt(max)} (inclusive)`);
    if (min !== undefined) throw violation(`${fmt(n)} is less than minimum allowed value ${fmt(min)}`);
    throw violation(`${fmt(n)} is greater than maximum allowed value ${fmt(max!)}`);
  }
  if (b.type === 'string' && (b.minLength !== undefined || b.maxLength !== undefined)) {
    const s = a as string;
    const n = [...s].length;
    if (b.minLength !== undefined && n < b.minLength) throw violation(`"${s}" length ${n} is less than minimum allowed length ${b.minLength}`);
    if (b.maxLength !== undefined && n > b.maxLength) throw violation(`"${s}" length ${n} is greater than maximum allowed length ${b.maxLength}`);
  }
  return a;
}

/** A type in words, as ovs-vsctl names it in errors: `string`, `set of up to 1 integers`, `map of (string, string) pairs`. */
export function typeToEnglish(type: ColumnType): string {
  if (!type.value && type.min === 1 && type.max === 1) return type.key.type;
  let s = type.value ? 'map' : 'set';
  if (type.max === Infinity) s += type.min ? ` of ${type.min} or more` : ' of';
  else s += type.min ? ` of ${type.min} to ${type.max}` : ` of up to ${type.max}`;
  return type.value ? `${s} (${type.key.type}, ${type.value.type}) pairs` : `${s} ${type.key.type}s`;
}

/**
 * Parses the text of a whole value of `type`: `[a, b]`, `a,b`, `a b`,
 * `{k=v}`, `k=v`, `[]`, `{}` or one atom; integers may be ranges `10-12`.
 * Checks each atom and the number of elements against `type`.
 */
export function parseDatumString(s: string, type: ColumnType, resolve: SymbolResolver): Datum {
  const isMap = type.value !== undefined;
  let p = skipSpaces(s, 0);
  let close = '';
  if (s[p] === (isMap ? '{' : '[')) {
    close = isMap ? '}' : ']';
    p = skipSpaces(s, p + 1);
  } else if (p >= s.length) {
    throw new VsctlError('VSCTL_BAD_VALUE', isMap ? 'use "{}" to specify the empty map' : 'use "[]" to specify the empty set');
  }
  const keys: Atom[] = [];
  const values: Atom[] = [];
  while (p < s.length && s[p] !== close) {
    if (isDelimiter(s[p])) throw new VsctlError('VSCTL_BAD_VALUE', `${s}: unexpected "${s[p]}" parsing ${typeToEnglish(type)}`);
    const start = p;
    const key = parseToken(s, p);
    p = key.end;
    const atoms = parseAtoms(key.token, type.key, resolve, true);
    if (isMap) {
      p = skipSpaces(s, p);
      // (ovs-vsctl's message stops short where the text does.)
      if (s[p] !== '=') throw new VsctlError('VSCTL_BAD_VALUE', `${s.slice(start)}: syntax error at "${p < s.length ? `${s[p]}" expecting "="` : ''}`);
      p = skipSpaces(s, p + 1);
      const value = parseToken(s, p);
      p = value.end;
      const v = parseAtoms(value.token, type.value!, resolve)[0];
      for (const k of atoms) {
        keys.push(k);
        values.push(v);
      }
    } else {
      keys.push(...atoms);
    }
    p = skipSpaces(s, p);
    if (s[p] === ',') p = skipSpaces(s, p + 1);
  }
  if ((s[p] ?? '') !== close) throw new VsctlError('VSCTL_BAD_VALUE', `${s}: missing "${close}" at end of data`);
  if (close && skipSpaces(s, p + 1) < s.length) throw new VsctlError('VSCTL_BAD_VALUE', `${s}: trailing garbage after "${close}"`);
  const what = isMap ? 'pair(s)' : 'value(s)';
  if (keys.length < type.min) throw new VsctlError('VSCTL_BAD_VALUE', `${s}: ${keys.length} ${what} specified but the minimum number is ${type.min}`);
  if (keys.length > type.max) throw new VsctlError('VSCTL_BAD_VALUE', `${s}: ${keys.length} ${what} specified but the maximum number is ${type.max}`);
  if (new Set(keys).size !== keys.length) throw new VsctlError('VSCTL_BAD_VALUE', isMap ? `${s}: map contains duplicate key` : `${s}: set contains duplicate value`);
  return isMap ? makeMap(keys.map((k, i) => [k, values[i]])) : makeSet(keys);
}

/** Whether a string must be quoted to read back as the same string. */
/** An atom in bare notation (`--data=bare`): strings unquoted. */
function atomToBare(a: Atom, b: BaseType): string {
  return b.type === 'real' ? formatReal(a as number) : String(a);
}

/** A datum in bare notation: elements separated by spaces, map pairs as `k=v`. */
export function datumToBare(d: Datum, type: ColumnType): string {
  return d.keys.map((k, i) => (type.value ? `${atomToBare(k, type.key)}=${atomToBare(d.values![i], type.value)}` : atomToBare(k, type.key))).join(' ');
}
