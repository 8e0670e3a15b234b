/**
 * The tokenizer of ovs-ofctl's flow syntax: splits a span of a line into
 * `key`, `key=value`, `key:value` and `key(value)` items, the way ovs-ofctl
 * reads both the match part and the action list:
 *
 * - items are separated by commas and/or white space;
 * - a key ends at one of `= : ( ,` or white space;
 * - after `=` or `:` the value runs to the next comma or white space that
 *   is not inside parentheses (so `learn(a=b,c)` stays one value);
 * - after `(` the value runs to the matching `)`; an unclosed `(` is an
 *   error (ovs-ofctl would silently close it; we prefer to say so).
 *
 * The scanner allocates nothing per item except the key/value strings, keeps
 * absolute positions for error messages, and only ever throws
 * `RuleSyntaxError`.
 */

import { RuleSyntaxError, type SourcePos } from './errors.ts';

/** The kind of delimiter that followed a key. */
export type Delim = '' | '=' | ':' | '(';

/**
 * A line being parsed and how to name a position in it. `text` may be the
 * whole file (so parsing a big file slices no line strings): the line is
 * `text[start, end)` and every index is an index into `text`.
 */
export class LineSource {
  constructor(
    readonly text: string,
    readonly file: string,
    public line: number,
    public start: number = 0,
    public end: number = text.length,
  ) {}

  /** Moves to another line of the same text (a file parser reuses one source). */
  moveTo(line: number, start: number, end: number): void {
    this.line = line;
    this.start = start;
    this.end = end;
  }

  /** The position of character `index` of the text (column is 1-based within the line). */
  pos(index: number): SourcePos {
    return { file: this.file, line: this.line, column: index - this.start + 1 };
  }

  /** A syntax error at `index`. */
  error(index: number, reason: string): RuleSyntaxError {
    return new RuleSyntaxError(this.pos(index), reason);
  }
}

function isSep(c: number): boolean {
  // ',' ' ' '\t' '\r' '\n'
  return c === 44 || c === 32 || c === 9 || c === 13 || c === 10;
}

function endsKey(c: number): boolean {
  // ':' '=' '(' or a separator
  return c === 58 || c === 61 || c === 40 || isSep(c);
}

/** Iterates over the items of `src.text` between `start` and `end`. */
export class KvScanner {
  /** The current item's key (valid after `next()` returned true). */
  key = '';
  keyAt = 0;
  /** The current item's value ('' when the key had no delimiter). */
  value = '';
  valueAt = 0;
  delim: Delim = '';
  private at: number;

  constructor(
    readonly src: LineSource,
    start: number,
    private end: number,
  ) {
    this.at = start;
  }

  /** Restarts on another span of the same source (saves an allocation per span). */
  reset(start: number, end: number): this {
    this.at = start;
    this.end = end;
    return this;
  }

  /** Advances to the next item; false at the end of the span. */
  next(): boolean {
    const s = this.src.text;
    const end = this.end;
    let i = this.at;
    while (i < end && isSep(s.charCodeAt(i))) i++;
    if (i >= end) {
      this.at = i;
      return false;
    }
    const keyAt = i;
    while (i < end && !endsKey(s.charCodeAt(i))) i++;
    this.key = s.slice(keyAt, i);
    this.keyAt = keyAt;
    const c = i < end ? s.charCodeAt(i) : -1;
    if (c === 61 || c === 58) {
      this.delim = c === 61 ? '=' : ':';
      i++;
      const valueAt = i;
      i = this.valueEnd(i, false);
      this.value = s.slice(valueAt, i);
      this.valueAt = valueAt;
    } else if (c === 40) {
      this.delim = '(';
      i++;
      const valueAt = i;
      i = this.valueEnd(i, true);
      if (i >= end) {
        throw this.src.error(end, `expected ',' or ')' after '${s.slice(keyAt, end)}'`);
      }
      this.value = s.slice(valueAt, i);
      this.valueAt = valueAt;
      i++; // the ')'
      if (i < end && !isSep(s.charCodeAt(i))) {
        throw this.src.error(i, `expected ',' after '${s.slice(keyAt, i)}'`);
      }
    } else {
      this.delim = '';
      this.value = '';
      this.valueAt = i;
    }
    this.at = i;
    return true;
  }

  /**
   * Where a value starting at `i` ends: at a separator (or, inside `key(…)`,
   * at the closing parenthesis), skipping over nested parentheses.
   */
  private valueEnd(i: number, inParens: boolean): number {
    const s = this.src.text;
    const end = this.end;
    let depth = 0;
    for (; i < end; i++) {
      const c = s.charCodeAt(i);
      if (c === 40) depth++;
      else if (c === 41) {
        if (depth === 0) {
          if (inParens) return i;
          // A stray ')' inside a plain value is part of it; the value's parser rejects it.
          continue;
        }
        depth--;
      } else if (depth === 0 && !inParens && isSep(c)) return i;
    }
    if (depth > 0) throw this.src.error(end, `expected ')' after '${s.slice(this.keyAt, end)}'`);
    return i;
  }
}

/**
 * Splits a comma-separated argument list (the inside of `resubmit(…)`,
 * `learn(…)`, …) at top-level commas, keeping positions. Empty pieces are
 * kept (`resubmit(,3)` has an empty first argument).
 */
export function splitArgs(text: string, at: number): { text: string; at: number }[] {
  const out: { text: string; at: number }[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 40) depth++;
    else if (c === 41) depth--;
    else if (c === 44 && depth === 0) {
      out.push({ text: text.slice(start, i), at: at + start });
      start = i + 1;
    }
  }
  out.push({ text: text.slice(start), at: at + start });
  return out;
}
