// What the tests that hold nvs-vsctl beside the real ovs-vsctl share: an
// in-process nvs-dbserver per side (so each CLI has its own database of the
// same kind), the two CLIs run against one (ovs-vsctl as a process,
// nvs-vsctl through runVsctl, the function its bin calls), and the
// normalising of what they print where ovs-vsctl's order is its hash
// tables' and not something to match: records of list/find, sibling blocks
// of show, the rows of a table, sets of references.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Database, OvsdbServer, parseSchema, refsOf, type Datum, type Row } from '@nvs/ovsdb';
import { runVsctl } from '@nvs/cli';

export const SCHEMA = JSON.parse(readFileSync(new URL('../configs/vswitch.ovsschema', import.meta.url), 'utf8'));
export const UUID_RE = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;

export interface Result {
  stdout: string;
  stderr: string;
  code: number;
}

export interface Side {
  dir: string;
  sock: string;
  server: OvsdbServer;
  db: Database;
}

/** A fresh, empty database served on a unix socket in a new temp directory. */
export async function startSide(): Promise<Side> {
  const dir = mkdtempSync(join(tmpdir(), 'nvs-vsctl-'));
  const server = new OvsdbServer({ log: pino({ level: 'silent' }) });
  const db = new Database(parseSchema(SCHEMA));
  server.addDatabase(db);
  const sock = join(dir, 'db.sock');
  await server.listen(`punix:${sock}`);
  return { dir, sock, server, db };
}

export async function stopSide(side: Side): Promise<void> {
  await side.server.close();
  rmSync(side.dir, { recursive: true, force: true });
}

export function ovsVsctl(side: Pick<Side, 'sock'>, args: string[]): Promise<Result> {
  return new Promise((done) => {
    execFile('ovs-vsctl', [`--db=unix:${side.sock}`, ...args], (err, stdout, stderr) => {
      const code = err ? (err as { code?: unknown }).code : 0;
      done({ stdout, stderr, code: typeof code === 'number' ? code : 1 });
    });
  });
}

export async function nvsVsctl(side: Pick<Side, 'sock'>, args: string[]): Promise<Result> {
  let stdout = '';
  let stderr = '';
  const code = await runVsctl([`--db=unix:${side.sock}`, ...args], { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), env: {} });
  return { stdout, stderr, code };
}

/** The command a command line runs first (its first word that is not an option). */
export function firstCommand(args: readonly string[]): string | undefined {
  return args.find((a) => !a.startsWith('-'));
}

/**
 * One command's output with uuids already replaced by labels (`<Port p1>`),
 * in an order that does not depend on uuids or hash tables: sets of
 * references sorted, records of list/find and blocks of show sorted, the
 * rows of table, csv and json output sorted.
 */
export function canonical(args: readonly string[], text: string): string {
  // Sets of references are sorted by uuid, which differ between the two databases.
  text = text.replace(/\[(<[^\]]+>(?:, <[^\]]+>)+)\]/g, (_, refs: string) => `[${refs.split(', ').sort().join(', ')}]`);
  // In JSON (also inside a CSV cell, its quotes doubled).
  for (const q of ['"', '""']) {
    const ref = `\\[${q}uuid${q},${q}<[^>]+>${q}\\]`;
    text = text.replace(new RegExp(`\\[(${ref}(?:,${ref})+)\\]`, 'g'), (_, refs: string) => `[${refs.split('],[').map((r) => r.replace(/^\[|\]$/g, '')).sort().map((r) => `[${r}]`).join(',')}]`);
  }
  // --data=bare: references separated by spaces.
  text = text.replace(/<[^<>\n]+>(?: <[^<>\n]+>)+/g, (refs) => (refs.match(/<[^<>\n]+>/g) ?? []).sort().join(' '));
  const cmd = firstCommand(args);
  if (cmd === 'show') return sortBlocks(text.split('\n'), 0).join('\n');
  if (cmd !== 'list' && cmd !== 'find') return text;
  // The table style, as the options set it in order.
  let format = 'list';
  let headings = true;
  for (const a of args) {
    if (a.startsWith('--format=')) format = a.slice('--format='.length);
    if (a === '--bare') [format, headings] = ['list', false];
    if (a === '--no-headings') headings = false;
  }
  if (format === 'json') return text.replace(/^\{"data":(\[.*\]),"headings":/gm, (_, data: string) => `{"data":${sortedJsonRows(data)},"headings":`);
  if (format === 'table' || format === 'csv') return text.split('\n').sort().join('\n');
  if (headings) return text.split('\n\n').map((r) => r.replace(/\n$/, '')).sort().join('\n\n');
  // Without headings a record is as many lines as there are columns (some may be empty), then a blank line.
  const n = columnCount(args);
  const lines = text.replace(/\n$/, '').split('\n');
  const records: string[] = [];
  for (let i = 0; i < lines.length; i += n + 1) records.push(lines.slice(i, i + n).join('\n'));
  return records.sort().join('\n\n');
}

/** How many columns list or find prints: those of --columns, or _uuid and every column of the table. */
function columnCount(args: readonly string[]): number {
  const spec = args.find((a) => a.startsWith('--columns='));
  if (spec) return spec.slice('--columns='.length).split(/[, ]/).filter((c) => c !== '').length;
  const given = args[args.indexOf(firstCommand(args)!) + 1]?.toLowerCase() ?? '';
  const tables = Object.keys(SCHEMA.tables as object);
  const table = tables.find((t) => t.toLowerCase() === given) ?? tables.find((t) => t.toLowerCase().startsWith(given));
  return table ? Object.keys((SCHEMA.tables as Record<string, { columns: object }>)[table].columns).length + 1 : 1;
}

function sortedJsonRows(data: string): string {
  try {
    return JSON.stringify((JSON.parse(data) as unknown[]).map((r) => JSON.stringify(r)).sort().map((r) => JSON.parse(r) as unknown));
  } catch {
    return data;
  }
}

function indentOf(line: string): number {
  return line.length - line.trimStart().length;
}

/** Sorts the blocks (a line and its deeper-indented lines) at each level of an indented tree. */
export function sortBlocks(lines: string[], level: number): string[] {
  const blocks: string[][] = [];
  for (const line of lines) {
    if (blocks.length === 0 || indentOf(line) <= level) blocks.push([line]);
    else blocks[blocks.length - 1].push(line);
  }
  return blocks.map((b) => [b[0], ...sortBlocks(b.slice(1), level + 4)].join('\n')).sort();
}

/** Tables whose rows have a unique name (a schema index): such a row is labelled by it, `<Port p1>`. */
const NAMED_BY: Record<string, string> = { Bridge: 'name', Port: 'name', Interface: 'name', Manager: 'target' };

/**
 * A label for every row of `db` that the same history gives the same row in
 * another database: its table and unique name, `<Open_vSwitch>` for the one
 * row of that table, and for rows without a name (QoS, Queue, Controller…)
 * `<QoS#n>`, numbered in the order of their contents and of the rows that
 * point at them (with references written as labels, worked out in rounds
 * since nameless rows point at nameless rows).
 */
export function rowLabels(db: Database): Map<string, string> {
  const labels = new Map<string, string>();
  const incoming = new Map<string, Array<{ from: string; column: string }>>();
  const nameless: Array<[string, Row[]]> = [];
  for (const [table, rows] of db.tables) {
    const by = NAMED_BY[table];
    const single = table === 'Open_vSwitch' && rows.size === 1;
    if (!by && !single && rows.size > 0) nameless.push([table, [...rows.values()]]);
    for (const row of rows.values()) {
      if (single) labels.set(row.uuid, '<Open_vSwitch>');
      else if (by) labels.set(row.uuid, `<${table} ${String(row.values.get(by)!.keys[0])}>`);
      for (const ref of db.info.get(table)!.refColumns) {
        for (const to of refsOf(row, ref)) {
          const list = incoming.get(to) ?? [];
          list.push({ from: row.uuid, column: ref.column.name });
          incoming.set(to, list);
        }
      }
    }
  }
  for (let round = 0; round < 3; round++) {
    for (const [table, rows] of nameless) {
      const keyed = rows.map((row) => {
        const refs = (incoming.get(row.uuid) ?? []).map((r) => `${labels.get(r.from) ?? '?'}.${r.column}`).sort();
        return { row, key: `${[...row.values].map(([c, d]) => `${c}=${datumText(d, labels)}`).join(' ')} <- ${refs.join(' ')}` };
      });
      keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      keyed.forEach(({ row }, i) => labels.set(row.uuid, `<${table}#${i + 1}>`));
    }
  }
  return labels;
}

/** A value as text with its references labelled and its elements sorted. */
function datumText(d: Datum, labels: ReadonlyMap<string, string>): string {
  const atom = (a: unknown): string => (typeof a === 'string' ? JSON.stringify(a).replace(UUID_RE, (u) => labels.get(u) ?? '?') : String(a));
  if (d.values) return `{${d.keys.map((k, i) => `${atom(k)}=${atom(d.values![i])}`).sort().join(', ')}}`;
  return `[${d.keys.map(atom).sort().join(', ')}]`;
}

/** Every row of every table as text, rows sorted, each with its label and the columns that differ from their default. */
export function dumpDatabase(db: Database, labels: ReadonlyMap<string, string>): string {
  const out: string[] = [];
  for (const table of [...db.tables.keys()].sort()) {
    const defaults = db.info.get(table)!.defaults;
    const rows = [...db.tables.get(table)!.values()].map((row) => {
      const cols = [...row.values].filter(([c, d]) => datumText(d, labels) !== datumText(defaults.get(c)!, labels)).map(([c, d]) => `${c}=${datumText(d, labels)}`);
      return `  ${labels.get(row.uuid) ?? '?'} ${cols.join(' ')}`;
    });
    if (rows.length > 0) out.push(table, ...rows.sort());
  }
  return out.join('\n');
}

/** Replaces each uuid in `text` by its label in the first of `labels` that has it (`<gone>` when none has). */
export function labelUuids(text: string, ...labels: ReadonlyMap<string, string>[]): string {
  return text.replace(UUID_RE, (u) => labels.find((l) => l.has(u))?.get(u) ?? '<gone>');
}

/**
 * stderr with what legitimately differs made the same: the program name,
 * and ovs-vsctl's log lines — warnings it logs as
 * `<time>|<seq>|<module>|WARN|<message>` (nvs-vsctl prints them as its
 * other messages), and a failed transaction logged once more before its
 * error message.
 */
export function normaliseStderr(text: string): string {
  return text
    .replace(/^\S+\|\d+\|ovsdb_idl\|WARN\|transaction error: .*\n/gm, '')
    .replace(/^\S+\|\d+\|\w+\|(WARN|ERR)\|/gm, 'vsctl: ')
    .replace(/^(ovs|nvs)-vsctl: /gm, 'vsctl: ');
}
