// Durable storage in OVS's standalone database file format, so files move
// freely between nvs-dbserver and OVS's ovsdb-server/ovsdb-tool.
//
// A file is a sequence of records, each a header line
// `OVSDB JSON <length> <sha1-hex>\n` followed by <length> bytes of JSON text
// (ending in a newline) whose SHA-1 is given. The first record is the
// schema; each later one a committed transaction:
//   {"<table>": {"<uuid>": <row> | null, ...}, "_date": <ms>, "_comment": "...", "_is_diff": true}
// where <row> holds a new row's non-default columns, or a modified row's
// changed columns as diffs (OVS 2.15+ `_is_diff` records; records without it
// carry full new values, and both are read).
//
// Promise: `append` has written its records to the file (one writev(2)) when
// it returns, so a killed process loses nothing acknowledged after it; with
// `durable` it has also fsync'd. Otherwise fsync follows within `syncDelayMs`.
// `open` drops a torn or corrupt tail record (logging it) and truncates the
// file there, so the next append starts on a record boundary.
import { hash } from 'node:crypto';
import { closeSync, existsSync, fdatasync, fdatasyncSync, fsyncSync, ftruncateSync, openSync, readFileSync, realpathSync, renameSync, writeSync, writevSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { newUuid, type Database, type Row, type RowChange } from './database.ts';
import { applyDiff, datumDiffFast, datumEquals, datumText, parseDatum, type Datum, type DeltaLog } from './datum.ts';
import { OvsdbError, OvsdbIoError, StorageFormatError } from './errors.ts';
import { diffIsNewValue, parseSchema, type DatabaseSchema } from './schema.ts';

const MAGIC = 'OVSDB JSON ';
/** Room for the longest record header: magic, a 16-digit length, a space, 40 hex digits, a newline. */
const HEADER_ROOM = MAGIC.length + 16 + 1 + 40 + 1;

/** Encodes one record: header line + JSON text + newline. */
export function encodeRecord(json: unknown): string {
  return encodeRecordBuffer(json).toString('utf8');
}

/** Encodes one record holding `json` into one buffer, ready for write(2). */
export function encodeRecordBuffer(json: unknown): Buffer {
  return recordBuffer(JSON.stringify(json) + '\n');
}

/**
 * Frames one record body (JSON text ending in a newline) in `buf` at `at`:
 * the text is encoded to UTF-8 once, after room for the longest header, and
 * hashed in place with the one-shot hash (no Hash object per commit); the
 * header goes just before it. `buf` must hold `at` plus HEADER_ROOM plus the
 * body's UTF-8 length. Returns the record's bounds in `buf`.
 */
function frameRecord(buf: Buffer, at: number, body: string): [start: number, end: number] {
  const bodyAt = at + HEADER_ROOM;
  const n = buf.write(body, bodyAt, 'utf8');
  const header = `${MAGIC}${n} ${hash('sha1', buf.subarray(bodyAt, bodyAt + n), 'hex')}\n`;
  const start = bodyAt - header.length;
  buf.write(header, start, 'latin1');
  return [start, bodyAt + n];
}

/** One record in a buffer of its own. */
function recordBuffer(body: string): Buffer {
  const buf = Buffer.allocUnsafe(HEADER_ROOM + Buffer.byteLength(body, 'utf8'));
  const [start, end] = frameRecord(buf, 0, body);
  return buf.subarray(start, end);
}

export interface ParsedFile {
  schemaJson: unknown;
  /** Transaction records, in order. */
  records: Record<string, unknown>[];
  /** Where each record of `records` starts in the file. */
  offsets: number[];
  /** Length of the valid prefix of the file. */
  validBytes: number;
  /** Why reading stopped before the end of the file, if it did (in ovsdb-server's words). */
  tornReason?: string;
}

/**
 * Splits a file's bytes into records; stops at the first torn or corrupt
 * record. `name` is the file as the user named it, for the messages.
 */
export function parseFile(data: Buffer, name = 'database file'): ParsedFile {
  const records: unknown[] = [];
  const offsets: number[] = [];
  let pos = 0;
  let tornReason: string | undefined;
  while (pos < data.length) {
    let nl = data.indexOf(0x0a, pos);
    if (nl < 0) nl = data.length;
    const header = data.toString('latin1', pos, Math.min(nl, pos + 127));
    const m = /^OVSDB JSON (\d+) ([0-9a-f]{40})$/.exec(header);
    if (!m || nl === data.length) {
      tornReason = `syntax error: ${name}: parse error at offset ${pos} in header line "${header}"`;
      break;
    }
    const len = Number(m[1]);
    const start = nl + 1;
    if (start + len > data.length) {
      tornReason = `syntax error: ${name}: record at offset ${pos} is truncated (${data.length - start} of ${len} bytes)`;
      break;
    }
    const body = data.subarray(start, start + len);
    const sha1 = hash('sha1', body, 'hex');
    if (sha1 !== m[2]) {
      tornReason = `syntax error: ${name}: ${len} bytes starting at offset ${start} have SHA-1 hash ${sha1} but should have hash ${m[2]}`;
      break;
    }
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch (err) {
      tornReason = `syntax error: ${name}: ${len} bytes starting at offset ${start} are not valid JSON (${(err as Error).message})`;
      break;
    }
    if (records.length > 0 && (typeof json !== 'object' || json === null || Array.isArray(json))) {
      tornReason = `syntax error: ${name}: ${len} bytes starting at offset ${start} are not a JSON object`;
      break;
    }
    records.push(json);
    offsets.push(pos);
    pos = start + len;
  }
  if (records.length === 0) {
    throw new StorageFormatError(`not an OVSDB database file: ${tornReason ?? 'empty file'}`);
  }
  const [schemaJson, ...rest] = records;
  return { schemaJson, records: rest as Record<string, unknown>[], offsets: offsets.slice(1), validBytes: pos, tornReason };
}

/** Turns one transaction record into row changes against the database's current state. */
export function recordToChanges(db: Database, record: Record<string, unknown>): RowChange[] {
  const isDiff = record._is_diff === true;
  const changes: RowChange[] = [];
  const pending = new Map<string, Row | null>();
  for (const [tname, rows] of Object.entries(record)) {
    if (tname.startsWith('_')) continue;
    const info = db.info.get(tname);
    if (!info) throw new StorageFormatError(`syntax "${JSON.stringify(record)}": unknown table: No table named ${tname}.`);
    if (typeof rows !== 'object' || rows === null) throw new StorageFormatError(`record for table ${tname} is not an object`);
    for (const [uuid, rowJson] of Object.entries(rows as Record<string, unknown>)) {
      const old = pending.has(uuid) ? pending.get(uuid)! : db.table(tname)!.get(uuid) ?? null;
      if (rowJson === null) {
        if (old) changes.push({ table: info.schema, uuid, old, new: null });
        pending.set(uuid, null);
        continue;
      }
      const base = old ? old.values : info.defaults;
      const changed: Array<[string, Datum]> = [];
      for (const [cname, v] of Object.entries(rowJson as Record<string, unknown>)) {
        const col = info.schema.columns.get(cname);
        if (!col || cname.startsWith('_')) continue;
        const d = parseDatum(v, col.type);
        changed.push([cname, isDiff && old ? applyDiff(base.get(cname)!, d, diffIsNewValue(col.type)) : d]);
      }
      const values = base.with(changed);
      const row: Row = { uuid, version: newUuid(), values };
      changes.push({ table: info.schema, uuid, old, new: row });
      pending.set(uuid, row);
    }
  }
  return changes;
}

/**
 * The file record of a commit (diff form, as OVS 3.x writes), as JSON text
 * ending in a newline:
 *   {"<table>":{"<uuid>":<row>|null,...},...,"_date":<ms>,"_is_diff":true[,"_comment":"..."]}
 * Written as text straight from the rows, not built as objects and handed
 * to JSON.stringify: this runs on every commit, and uuid-keyed objects take
 * JSON.stringify's slow path.
 */
export function commitRecordText(db: Database, changes: readonly RowChange[], date: number, comment?: string, log?: DeltaLog): string {
  // Table → its rows' text; a commit's changes may interleave tables.
  const tables = new Map<string, string>();
  for (const ch of changes) {
    let row: string;
    if (!ch.new) {
      row = 'null';
    } else {
      row = '{';
      // Value arrays follow userColumns order, so walk them by position.
      const columns = ch.table.userColumns;
      const nv = ch.new.values.data;
      const base = (ch.old ?? { values: db.info.get(ch.table.name)!.defaults }).values.data;
      for (let i = 0; i < columns.length; i++) {
        const nd = nv[i];
        const od = base[i];
        if (nd === od || datumEquals(od, nd)) continue;
        const c = columns[i];
        const d = ch.old ? datumDiffFast(od, nd, diffIsNewValue(c.type), log) : nd;
        row += `${row.length === 1 ? '' : ','}"${c.name}":${datumText(d, c.type)}`;
      }
      row += '}';
    }
    const prev = tables.get(ch.table.name);
    tables.set(ch.table.name, `${prev === undefined ? '' : `${prev},`}"${ch.uuid}":${row}`);
  }
  let text = '{';
  for (const [name, rows] of tables) text += `"${name}":{${rows}},`;
  text += `"_date":${date},"_is_diff":true`;
  if (comment !== undefined) text += `,"_comment":${JSON.stringify(comment)}`;
  return text + '}\n';
}

export interface DbFileOptions {
  log: Logger;
  /** Compact when the file exceeds this many bytes and 4× its size after the last compaction. */
  compactThresholdBytes?: number;
  /** Delay before the batched fsync of non-durable commits. */
  syncDelayMs?: number;
  /** The file's name in messages (default: its path). */
  displayName?: string;
  /** The file's name in log lines (default: its path); --record and --replay open different files that must log alike. */
  logName?: string;
}

/** An open database file: appends commits, compacts, syncs. */
export class DbFile {
  readonly path: string;
  private fd: number;
  private size: number;
  private baseSize: number;
  private readonly log: Logger;
  private readonly threshold: number;
  private readonly syncDelayMs: number;
  private syncTimer: NodeJS.Timeout | undefined;
  /** Where append frames a turn's records (see frame): room for about 200 add-port commits. */
  private readonly scratch = Buffer.allocUnsafe(256 * 1024);

  private constructor(path: string, fd: number, size: number, opts: DbFileOptions) {
    this.path = path;
    this.fd = fd;
    this.size = size;
    this.baseSize = size;
    this.log = opts.log;
    this.threshold = opts.compactThresholdBytes ?? 10 * 1024 * 1024;
    this.syncDelayMs = opts.syncDelayMs ?? 100;
  }

  /** Creates a new database file holding only `schemaJson` (fails if the file exists). */
  static create(path: string, schemaJson: unknown): void {
    parseSchema(schemaJson);
    let fd: number;
    try {
      fd = openSync(path, 'wx', 0o640);
    } catch (err) {
      throw new OvsdbIoError(`cannot create database file ${path}: ${(err as Error).message}`);
    }
    try {
      writeSync(fd, encodeRecordBuffer(schemaJson));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  /** Opens a file, replays it into a new Database, and returns both. */
  static open(path: string, opts: DbFileOptions, makeDb: (schema: DatabaseSchema) => Database): { file: DbFile; db: Database } {
    let data: Buffer;
    try {
      data = readFileSync(path);
    } catch (err) {
      throw new OvsdbIoError(`cannot read database file ${path}: ${(err as Error).message}`);
    }
    const parsed = parseFile(data, opts.displayName ?? path);
    const db = makeDb(parseSchema(parsed.schemaJson));
    // As ovsdb-server, a record that does not fit the schema ends the file there, like a torn one.
    for (let i = 0; i < parsed.records.length; i++) {
      try {
        db.apply(recordToChanges(db, parsed.records[i]));
      } catch (err) {
        if (!(err instanceof OvsdbError)) throw err;
        parsed.tornReason = err.message;
        parsed.validBytes = parsed.offsets[i];
        parsed.records.length = i;
        break;
      }
    }
    let fd: number;
    try {
      fd = openSync(path, 'r+');
    } catch (err) {
      throw new OvsdbIoError(`cannot open database file ${path} for writing: ${(err as Error).message}`);
    }
    if (parsed.tornReason) {
      // The reason alone is the message, as ovsdb-server logs it (scripts grep for it); then what was done.
      opts.log.error(parsed.tornReason);
      opts.log.warn({ path, droppedBytes: data.length - parsed.validBytes }, 'dropped the torn or corrupt tail of the database file');
      ftruncateSync(fd, parsed.validBytes);
      fsyncSync(fd);
    }
    opts.log.info({ path: opts.logName ?? path, records: parsed.records.length, rows: db.rowCount() }, 'opened database file');
    return { file: new DbFile(path, fd, parsed.validBytes, opts), db };
  }

  /** Bytes in the file now. */
  get bytes(): number {
    return this.size;
  }

  /**
   * Writes the records (bodies from commitRecordText, in commit order) in one
   * writev(2); fsyncs before returning when `durable`. On failure the file is
   * cut back to where it was, so it still ends on a record boundary.
   */
  append(bodies: readonly string[], durable: boolean): void {
    const parts = this.frame(bodies);
    let total = 0;
    for (const p of parts) total += p.length;
    // Explicit positions: the descriptor is not in append mode (open truncates torn tails through it).
    try {
      let done = writevSync(this.fd, parts, this.size);
      if (done < total) {
        const rest = Buffer.concat(parts);
        while (done < total) done += writeSync(this.fd, rest, done, total - done, this.size + done);
      }
    } catch (err) {
      try {
        ftruncateSync(this.fd, this.size);
      } catch {
        // Reopening drops a torn tail anyway.
      }
      throw new OvsdbIoError(`appending to ${this.path} failed: ${(err as Error).message}`);
    }
    this.size += total;
    if (durable) this.syncNow();
    else this.scheduleSync();
  }

  /** Frames records side by side in this file's scratch buffer (no allocation per commit); records too big for it get buffers of their own. */
  private frame(bodies: readonly string[]): Buffer[] {
    const parts: Buffer[] = [];
    let at = 0;
    for (const body of bodies) {
      // UTF-8 takes at most 3 bytes per UTF-16 unit.
      const room = HEADER_ROOM + 3 * body.length;
      if (at + room > this.scratch.length) {
        parts.push(recordBuffer(body));
        continue;
      }
      const [start, end] = frameRecord(this.scratch, at, body);
      parts.push(this.scratch.subarray(start, end));
      at = end;
    }
    return parts;
  }

  /** Whether the file has grown enough to compact. */
  shouldCompact(): boolean {
    return this.size > this.threshold && this.size > 4 * this.baseSize;
  }

  /** Rewrites the file as the schema plus one record with every row, atomically (write, fsync, rename). */
  compact(db: Database): void {
    // Through a symbolic link to the file it names: the link stays a link (as ovsdb-server keeps it).
    const target = realpathSync(this.path);
    const tmp = `${target}.tmp~`;
    const changes: RowChange[] = [];
    for (const [tname, rows] of db.tables) {
      const table = db.info.get(tname)!.schema;
      for (const r of rows.values()) changes.push({ table, uuid: r.uuid, old: null, new: r });
    }
    const fd = openSync(tmp, 'w', 0o640);
    let size = 0;
    try {
      for (const buf of [encodeRecordBuffer(db.schema.json), recordBuffer(commitRecordText(db, changes, Date.now(), 'compacting database online'))]) {
        writeSync(fd, buf);
        size += buf.length;
      }
      fsyncSync(fd);
    } catch (err) {
      closeSync(fd);
      throw new OvsdbIoError(`compacting ${this.path} failed: ${(err as Error).message}`);
    }
    renameSync(tmp, target);
    syncDir(dirname(target));
    this.cancelSync();
    closeSync(this.fd);
    this.fd = fd;
    this.size = size;
    this.baseSize = size;
    this.log.info({ path: this.path, bytes: size, rows: changes.length }, 'compacted database file');
  }

  /** fsyncs now and cancels any pending batched sync. */
  syncNow(): void {
    this.cancelSync();
    fdatasyncSync(this.fd);
  }

  private scheduleSync(): void {
    if (this.syncTimer) return;
    // Off the event loop: a batched sync must not stall the commits behind it.
    this.syncTimer = setTimeout(() => {
      this.syncTimer = undefined;
      fdatasync(this.fd, (err) => {
        if (err && err.code !== 'EBADF') this.log.error({ err: err.message }, 'fsync of database file failed');
      });
    }, this.syncDelayMs);
    this.syncTimer.unref();
  }

  private cancelSync(): void {
    if (this.syncTimer) clearTimeout(this.syncTimer);
    this.syncTimer = undefined;
  }

  /** Syncs and closes the file (again: no-op). */
  close(): void {
    if (this.fd < 0) return;
    this.syncNow();
    closeSync(this.fd);
    this.fd = -1;
  }
}

function syncDir(dir: string): void {
  if (!existsSync(dir)) return;
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
