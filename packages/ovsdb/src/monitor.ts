// Database monitors (RFC 7047 section 4.1.5 and OVS's monitor_cond /
// monitor_cond_since extensions): which tables, columns and kinds of change
// a client watches, the initial contents it gets, and the table-updates each
// commit produces for it — `update` format (old/new) for version 1,
// `update2` format (initial/insert/delete/modify diffs) for versions 2 and 3.
import { columnValue, type Database, type Row, type RowChange } from './database.ts';
import { datumDiffFast, datumEquals, datumText, datumToJson, defaultDatum, type DeltaLog } from './datum.ts';
import { OvsdbSyntaxError } from './errors.ts';
import { lookupColumn, matchesAny, parseCondition, type Condition } from './condition.ts';
import { diffIsNewValue, type ColumnSchema, type TableSchema } from './schema.ts';

/** 1: `monitor` (update), 2: `monitor_cond` (update2), 3: `monitor_cond_since` (update3). */
export type MonitorVersion = 1 | 2 | 3;

export interface TableMonitor {
  table: TableSchema;
  columns: ColumnSchema[];
  initial: boolean;
  insert: boolean;
  delete: boolean;
  modify: boolean;
  /** Conditions (ORed); undefined: every row. Versions 2 and 3 only. */
  where?: Condition[];
}

/** JSON table-updates: table → uuid → row update. */
export type TableUpdates = Record<string, Record<string, unknown>>;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export class Monitor {
  readonly id: unknown;
  readonly version: MonitorVersion;
  readonly db: Database;
  readonly tables: Map<string, TableMonitor>;
  /**
   * Equal for two monitors of one database that produce the same updates for
   * every commit: the version and the requests, followed by every condition
   * change since. The server encodes a commit's updates once per shape.
   */
  shape: string;

  /** Parses monitor requests (`{"<table>": <request> | [<request>...]}`); throws the RFC errors. */
  constructor(db: Database, id: unknown, version: MonitorVersion, requests: unknown) {
    this.db = db;
    this.id = id;
    this.version = version;
    this.tables = new Map();
    this.shape = `${version}:${JSON.stringify(requests)}`;
    if (!isObject(requests)) throw new OvsdbSyntaxError('monitor requests must be a JSON object');
    for (const [tname, reqs] of Object.entries(requests)) {
      const table = db.schema.tables.get(tname);
      if (!table) throw new OvsdbSyntaxError(`no table named ${tname}`);
      const list = Array.isArray(reqs) ? reqs : [reqs];
      for (const req of list) this.addRequest(table, req);
    }
  }

  private addRequest(table: TableSchema, req: unknown): void {
    if (!isObject(req)) throw new OvsdbSyntaxError(`monitor request for table ${table.name} must be a JSON object`);
    // RFC 7047: without "columns", every column but _uuid (so _version too, as ovsdb-server does).
    const columns = req.columns === undefined ? [...table.userColumns, table.columns.get('_version')!] : this.columnsOf(table, req.columns);
    const select = req.select ?? {};
    if (!isObject(select)) throw new OvsdbSyntaxError('"select" must be a JSON object');
    const flag = (name: string): boolean => {
      const v = select[name];
      if (v !== undefined && typeof v !== 'boolean') throw new OvsdbSyntaxError(`"select" member "${name}" must be a boolean`);
      return v !== false;
    };
    let where: Condition[] | undefined;
    if (req.where !== undefined) {
      if (this.version === 1) throw new OvsdbSyntaxError('"where" is only allowed in monitor_cond and monitor_cond_since');
      where = this.whereOf(table, req.where);
    }
    const prev = this.tables.get(table.name);
    if (prev) {
      // Several requests for one table: watch the union.
      for (const c of columns) if (!prev.columns.includes(c)) prev.columns.push(c);
      prev.initial ||= flag('initial');
      prev.insert ||= flag('insert');
      prev.delete ||= flag('delete');
      prev.modify ||= flag('modify');
      if (where && prev.where) prev.where.push(...where);
      else prev.where = undefined;
      return;
    }
    this.tables.set(table.name, { table, columns: [...columns], initial: flag('initial'), insert: flag('insert'), delete: flag('delete'), modify: flag('modify'), where });
  }

  private columnsOf(table: TableSchema, json: unknown): ColumnSchema[] {
    if (!Array.isArray(json)) throw new OvsdbSyntaxError('"columns" must be an array');
    const out: ColumnSchema[] = [];
    for (const c of json) {
      const col = lookupColumn(table, c);
      if (!out.includes(col)) out.push(col);
    }
    return out;
  }

  private whereOf(table: TableSchema, json: unknown): Condition[] {
    if (!Array.isArray(json)) throw new OvsdbSyntaxError('"where" must be an array of conditions');
    return json.map((c) => parseCondition(table, c, undefined, true));
  }

  /** Replaces the conditions (and optionally columns) of watched tables (monitor_cond_change); returns the resulting updates. */
  changeConditions(requests: unknown): TableUpdates {
    if (!isObject(requests)) throw new OvsdbSyntaxError('monitor-cond-change requests must be a JSON object');
    this.shape += `|${JSON.stringify(requests)}`;
    const updates: TableUpdates = {};
    for (const [tname, reqs] of Object.entries(requests)) {
      const tm = this.tables.get(tname);
      if (!tm) throw new OvsdbSyntaxError(`table ${tname} is not monitored`);
      const list = Array.isArray(reqs) ? reqs : [reqs];
      for (const req of list) {
        if (!isObject(req)) throw new OvsdbSyntaxError('monitor-cond-change request must be a JSON object');
        if (req.columns !== undefined) tm.columns = this.columnsOf(tm.table, req.columns);
        if (req.where === undefined) continue;
        const before = tm.where;
        tm.where = this.whereOf(tm.table, req.where);
        const rows: Record<string, unknown> = Object.create(null);
        for (const r of this.db.table(tname)!.values()) {
          const was = before === undefined || matchesAny(r, before);
          const is = matchesAny(r, tm.where);
          if (was && !is && tm.delete) rows[r.uuid] = { delete: null };
          else if (!was && is && tm.insert) rows[r.uuid] = { insert: this.rowJson(tm, r, true) };
        }
        if (Object.keys(rows).length > 0) updates[tname] = rows;
      }
    }
    return updates;
  }

  private matches(tm: TableMonitor, r: Row): boolean {
    return tm.where === undefined || matchesAny(r, tm.where);
  }

  /** A row's monitored columns; with `skipDefaults` (update2 formats) columns at their default value are left out. */
  private rowJson(tm: TableMonitor, r: Row, skipDefaults: boolean): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const c of tm.columns) {
      const d = columnValue(r, c.name);
      if (skipDefaults && !c.name.startsWith('_') && datumEquals(d, defaultDatum(c.type))) continue;
      out[c.name] = datumToJson(d, c.type);
    }
    return out;
  }

  /** The initial contents for the reply to the monitor request. */
  initial(): TableUpdates {
    const updates: TableUpdates = {};
    for (const [tname, tm] of this.tables) {
      if (!tm.initial) continue;
      // Keyed by uuids: a dictionary-mode object, so that V8 does not grow a hidden-class transition per uuid.
      const rows: Record<string, unknown> = Object.create(null);
      let any = false;
      for (const r of this.db.table(tname)!.values()) {
        if (!this.matches(tm, r)) continue;
        rows[r.uuid] = this.version === 1 ? { new: this.rowJson(tm, r, false) } : { initial: this.rowJson(tm, r, true) };
        any = true;
      }
      if (any) updates[tname] = rows;
    }
    return updates;
  }

  /**
   * The table-updates one commit (or a collapsed run of commits, one change
   * per row) produces for this monitor, as JSON text, or null if none. Written
   * as text straight from the rows, as storage writes its records: this runs
   * once per monitor shape on every commit, and building objects for
   * JSON.stringify cost allocations (uuid-keyed ones on its slow path).
   */
  updatesText(changes: readonly RowChange[], log?: DeltaLog): string | null {
    // Table → its rows' text; a commit's changes may interleave tables.
    let tables: Map<string, string> | null = null;
    for (const ch of changes) {
      const tm = this.tables.get(ch.table.name);
      if (!tm) continue;
      const u = this.version === 1 ? this.update1(tm, ch) : this.update2(tm, ch, log);
      if (u === null) continue;
      tables ??= new Map();
      const prev = tables.get(ch.table.name);
      tables.set(ch.table.name, `${prev === undefined ? '' : `${prev},`}"${ch.uuid}":${u}`);
    }
    if (tables === null) return null;
    let text = '';
    for (const [name, rows] of tables) text += `${text === '' ? '{' : ','}"${name}":{${rows}}`;
    return text + '}';
  }

  /** A row's monitored columns as JSON text; `skipDefaults` as in rowJson. */
  private rowText(tm: TableMonitor, r: Row, skipDefaults: boolean): string {
    let text = '';
    for (const c of tm.columns) {
      const d = columnValue(r, c.name);
      if (skipDefaults && !c.name.startsWith('_') && datumEquals(d, defaultDatum(c.type))) continue;
      text += `${text === '' ? '{' : ','}"${c.name}":${datumText(d, c.type)}`;
    }
    return text === '' ? '{}' : text + '}';
  }

  private update1(tm: TableMonitor, ch: RowChange): string | null {
    if (!ch.old) return tm.insert ? `{"new":${this.rowText(tm, ch.new!, false)}}` : null;
    if (!ch.new) return tm.delete ? `{"old":${this.rowText(tm, ch.old, false)}}` : null;
    if (!tm.modify) return null;
    let old = '';
    for (const c of tm.columns) {
      const a = columnValue(ch.old, c.name);
      if (!datumEquals(a, columnValue(ch.new, c.name))) old += `${old === '' ? '{' : ','}"${c.name}":${datumText(a, c.type)}`;
    }
    return old === '' ? null : `{"old":${old}},"new":${this.rowText(tm, ch.new, false)}}`;
  }

  private update2(tm: TableMonitor, ch: RowChange, log?: DeltaLog): string | null {
    const was = ch.old !== null && this.matches(tm, ch.old);
    const is = ch.new !== null && this.matches(tm, ch.new);
    if (!was && is) return tm.insert ? `{"insert":${this.rowText(tm, ch.new!, true)}}` : null;
    if (was && !is) return tm.delete ? '{"delete":null}' : null;
    if (!was || !is || !tm.modify) return null;
    let diff = '';
    for (const c of tm.columns) {
      const a = columnValue(ch.old!, c.name);
      const b = columnValue(ch.new!, c.name);
      if (a === b || datumEquals(a, b)) continue;
      diff += `${diff === '' ? '{' : ','}"${c.name}":${datumText(datumDiffFast(a, b, diffIsNewValue(c.type), log), c.type)}`;
    }
    return diff === '' ? null : `{"modify":${diff}}}`;
  }
}
