/**
 * What the match parser and the action parser share while reading one rule
 * line: the parsing context (the line's source and position, the options,
 * the reusable scanner), ports by number or name, and turning a value error
 * into a positioned syntax error.
 */

import { OFPP } from '../fields.ts';
import type { FlowModCommand } from '../flow-mod.ts';
import type { MatchArena } from '../match.ts';
import { KvScanner, type LineSource } from './scanner.ts';
import { ValueError } from './values.ts';

/** The OpenFlow version rules are checked against (see the module comment). */
export type Dialect = 'of10' | 'of13';

/** Options of `parseFlow` / `parseFlows`. */
export interface ParseOptions {
  /** Name used in error messages; default `<input>`. */
  readonly file?: string;
  /** What the lines are for; default 'add' (decides e.g. whether `cookie=V/M` is allowed). */
  readonly command?: FlowModCommand;
  /** Default 'of10'. */
  readonly dialect?: Dialect;
  /** Resolves a port name (`in_port=eth0`, `output:eth0`); undefined = unknown. */
  readonly portByName?: (name: string) => number | undefined;
}

/** Reserved port names accepted wherever a port is (case-insensitive). */
export const RESERVED_PORTS: ReadonlyMap<string, number> = new Map([
  ['in_port', OFPP.IN_PORT],
  ['table', OFPP.TABLE],
  ['normal', OFPP.NORMAL],
  ['flood', OFPP.FLOOD],
  ['all', OFPP.ALL],
  ['controller', OFPP.CONTROLLER],
  ['local', OFPP.LOCAL],
  ['none', OFPP.NONE],
  ['any', OFPP.NONE],
]);

/** Parsing state: one per file (or per single line); `src` moves from line to line. */
export interface LineCtx {
  readonly src: LineSource;
  readonly opts: ParseOptions;
  readonly dialect: Dialect;
  readonly command: FlowModCommand;
  /** Where matches are allocated when parsing many lines; null = one at a time. */
  readonly arena: MatchArena | null;
  readonly finders: Finders;
  /** Reused for the match part and the action list (never both at once). */
  readonly scanner: KvScanner;
}

/**
 * `text.indexOf(needle, from)` limited to matches that end by `end`; -1 if
 * none. Remembers the last hit past `end`, so scanning a whole file line by
 * line for a needle most lines lack stays linear.
 */
class Finder {
  private hit = -1;
  private from = Infinity;

  constructor(
    private readonly text: string,
    private readonly needle: string,
  ) {}

  find(from: number, end: number): number {
    if (from < this.from || (this.hit >= 0 && this.hit < from)) {
      this.from = from;
      this.hit = this.text.indexOf(this.needle, from);
    }
    return this.hit >= 0 && this.hit + this.needle.length <= end ? this.hit : -1;
  }
}

export function isBlank(c: number): boolean {
  return c === 32 || c === 9 || c === 13 || c === 10 || c === 11 || c === 12;
}

interface Finders {
  readonly hash: Finder;
  readonly action: Finder;
}

/** One parsing context per file (or per single line), reused line after line. */
export function newCtx(src: LineSource, opts: ParseOptions, arena: MatchArena | null): LineCtx {
  return {
    src,
    opts,
    dialect: opts.dialect ?? 'of10',
    command: opts.command ?? 'add',
    arena,
    finders: { hash: new Finder(src.text, '#'), action: new Finder(src.text, 'action') },
    scanner: new KvScanner(src, 0, 0),
  };
}

/** Converts a `ValueError` (no position) into a positioned syntax error. */
export function wrap(ctx: LineCtx, at: number, e: unknown): Error {
  if (e instanceof ValueError) return ctx.src.error(at, e.message);
  return e as Error;
}

/** OpenFlow 1.1+'s 32-bit reserved ports (0xffffff00 and up) sit this far above OVS's 16-bit ones. */
const OFPP11_OFFSET = 0xffff0000;

/**
 * A decimal port number in OVS's 16-bit port space: 0–65535, or one of
 * OpenFlow 1.1+'s 32-bit numbers 0xffffff00–0xffffffff (4294967294 is
 * LOCAL), as ovs-ofctl takes them; null when out of both ranges.
 */
export function portNumber(text: string): number | null {
  const n = Number(text);
  if (n <= 0xffff) return n;
  if (n >= 0xffffff00 && n <= 0xffffffff) return n - OFPP11_OFFSET;
  return null;
}

/** A port number (decimal) or a reserved/resolved port name. */
export function parsePort(ctx: LineCtx, text: string, at: number): number {
  if (/^[0-9]+$/.test(text)) {
    const n = portNumber(text);
    if (n !== null) return n;
    throw ctx.src.error(at, `port ${text} is outside the supported range 0 through ffff or 0xffffff00 through 0xffffffff`);
  }
  const reserved = RESERVED_PORTS.get(text.toLowerCase());
  if (reserved !== undefined) return reserved;
  const named = ctx.opts.portByName?.(text);
  if (named !== undefined) return named;
  throw ctx.src.error(at, `unknown port '${text}' (expected a port number, a port name, or LOCAL, IN_PORT, CONTROLLER, …)`);
}
