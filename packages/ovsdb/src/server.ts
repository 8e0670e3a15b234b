// The OVSDB server (RFC 7047 plus OVS's extensions): serves one or more
// databases over JSON-RPC sessions — list_dbs, get_schema, transact, cancel,
// the monitor family (update, update2, update3 with transaction history),
// locks, echo, get_server_id, set_db_change_aware — and the `_Server`
// database describing them, which ovs-vsctl reads first.
//
// Group commit: a transaction is checked and applied to memory at once (the
// next one sees it), and its commit's file record and monitor updates are
// encoded then; but the records of all commits to a database during one turn
// of the event loop go to its file in one write at the turn's end, and only
// after that write do the updates and replies of that turn leave (each
// session's in one socket write, as ovsdb-server flushes each session once
// per pass of its main loop). So every reply still waits for its commit to
// be in the file (a killed process loses nothing acknowledged), monitors see
// commits in commit order, and nobody is shown a commit the file lacks: a
// request that reads the database while a turn's commits are unwritten is
// answered after the write too. If the write fails, the turn's commits are
// undone in reverse order and their transactions answered with an I/O error.
// A transaction blocked on `wait` is re-run after each commit to its
// database and when its timeout expires.
//
// Fan-out: a commit's updates are encoded once per monitor shape (monitors
// of the same tables, columns, conditions and version share one JSON text).
// A session whose unread output passes `maxBacklogBytes` (a peer that
// stopped reading) is disconnected; the others never wait for it (sockets
// are written without blocking).
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { existsSync, unlinkSync } from 'node:fs';
import type { Logger } from 'pino';
import { Database, newUuid, type Commit, type Row, type RowChange } from './database.ts';
import { datumSize, makeAtom, type DeltaLog } from './datum.ts';
import { JsonRpcConnection, JsonRpcProtocolError, REPLY_LATER } from '@nvs/jsonrpc';
import { NotSupportedError, OvsdbError, OvsdbIoError, OvsdbSyntaxError, UnknownDatabaseError } from './errors.ts';
import { convertDatabase } from './convert.ts';
import { Monitor, type MonitorVersion } from './monitor.ts';
import { parseSchema } from './schema.ts';
import { commitRecordText, type DbFile } from './storage.ts';
import { executeTransaction } from './transaction.ts';
import type { StreamRecorder, StreamReplay } from './stream-journal.ts';

const ZERO_UUID = '00000000-0000-0000-0000-000000000000';

/** The `_Server` schema, as OVS 3.1 publishes it. */
export const SERVER_SCHEMA_JSON = {
  name: '_Server',
  version: '1.2.0',
  cksum: '3009684573 744',
  tables: {
    Database: {
      columns: {
        name: { type: 'string' },
        model: { type: { key: { type: 'string', enum: ['set', ['clustered', 'relay', 'standalone']] } } },
        connected: { type: 'boolean' },
        leader: { type: 'boolean' },
        schema: { type: { key: 'string', min: 0 } },
        sid: { type: { key: 'uuid', min: 0 } },
        cid: { type: { key: 'uuid', min: 0 } },
        index: { type: { key: 'integer', min: 0 } },
      },
    },
  },
};

/**
 * What `pssl:` remotes serve with (PEM text): the private key, the
 * certificate (followed by any CA certificates to send with it, so that a
 * client can bootstrap its CA certificate from the chain) and the CA that
 * clients' certificates must be signed by; as ovsdb-server, a client without
 * a valid certificate is refused.
 */
export interface TlsConfig {
  key: string;
  cert: string;
  ca: string;
}

export interface OvsdbServerOptions {
  log: Logger;
  /** Where TLS connections are logged (the `stream_ssl` module of ovsdb-server); default `log`. */
  tlsLog?: Logger;
  /** Largest JSON-RPC message accepted from a client. */
  maxMessageBytes?: number;
  /** Commits kept for monitor_cond_since (at most; default 100). */
  historySize?: number;
  /**
   * Bound on what that history holds alive: the atoms of the old values it
   * keeps (columns a commit changed, rows it deleted). Default 50,000. A
   * commit that grows a 10,000-element set keeps the old set alive as long
   * as it is in the history; without this bound 100 such copies would live
   * on, be promoted to the old generation and make every GC slow.
   */
  historyAtoms?: number;
  /** Clock (ms); tests may pass their own. */
  now?: () => number;
  /** --record: listen outcomes and accepted sockets are written down (stream-journal.ts). */
  recorder?: StreamRecorder;
  /** --replay: listen outcomes come from the recording and no socket is opened. */
  replay?: StreamReplay;
  /**
   * Inactivity probe, as OVS's: a session silent this long gets an `echo`
   * request, and is closed if still silent after as long again. 0 disables;
   * default 5000 ms.
   */
  probeIntervalMs?: number;
  /**
   * Bound on what a session has been sent but not read (bytes queued on its
   * socket beyond the kernel's buffer): when an update is due and the backlog
   * is past it, the session is closed (logged), so a client that stops
   * reading costs at most about this much memory plus one turn's updates.
   * Default 64 MiB.
   */
  maxBacklogBytes?: number;
}

interface DbEntry {
  db: Database;
  file?: DbFile;
  readOnly: boolean;
  /** Recent commits, oldest first, for monitor_cond_since. */
  history: Commit[];
  /** historyWeight() of each commit in `history`, and their sum. */
  historyWeights: number[];
  historyAtoms: number;
  lastTxnId: string;
  /** Transactions blocked on `wait`, in arrival order. */
  blocked: TxnRequest[];
  /** This database's row in `_Server.Database`. */
  serverRow?: string;
  /** Commits made this turn, not yet written (see endTurn). */
  turn?: Turn;
}

/** A `transact` request. */
interface TxnRequest {
  session: Session;
  entry: DbEntry;
  ops: unknown[];
  started: number;
  id: unknown;
  /** Its `wait` timeout, while blocked. */
  timer?: NodeJS.Timeout;
}

/**
 * One database's commits during one turn of the event loop, and the output
 * they hold back until their records are written.
 */
interface Turn {
  /** The commits, in order, with their file records (when the database has a file). */
  commits: Array<{ commit: Commit; record?: string }>;
  /** A transaction asked for fsync. */
  durable: boolean;
  /** Each session's held output: updates and replies, in order. */
  out: Map<Session, string>;
  /** The transactions answered in `out`; `committed`: its own commit is in this turn. */
  answers: Array<{ txn: TxnRequest; results: unknown[]; committed: boolean }>;
  /** Other requests that read the database, handled after the write. */
  after: Array<() => void>;
}

interface Session {
  conn: JsonRpcConnection;
  /** The remote it came in on (`punix:…`, `ptcp:…`; `socket` for one handed to accept()). */
  remote: string;
  /** Transactions may only read (its remote's Manager row says read_only). */
  readOnly: boolean;
  /** set_db_change_aware: the session is told of databases coming and going instead of being disconnected. */
  dbChangeAware: boolean;
  /** An echo probe is outstanding. */
  probing: boolean;
  monitors: Map<string, SessionMonitor>;
  locks: Set<string>;
  log: Logger;
}

interface SessionMonitor {
  monitor: Monitor;
  entry: DbEntry;
  monid: unknown;
  /** The start of this monitor's update notifications, up to its updates: `{"method":"update2","params":[<monid>,`. */
  prefix: string;
}

/** What the server keeps of a listening socket (a replayed one has no socket). */
interface Listener {
  address(): ReturnType<Server['address']>;
  close(done: () => void): void;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export class OvsdbServer {
  readonly serverId = newUuid();
  private readonly log: Logger;
  private readonly opts: OvsdbServerOptions;
  private readonly now: () => number;
  private readonly dbs = new Map<string, DbEntry>();
  private readonly sessions = new Set<Session>();
  /** lock name → sessions wanting it; the first owns it. */
  private readonly locks = new Map<string, Session[]>();
  private readonly listeners = new Map<string, Listener>();
  private readonly readOnlyRemotes = new Set<string>();
  private tls: TlsConfig | undefined;
  private readonly commitHooks: Array<(db: Database, commit: Commit) => void> = [];
  private nextSession = 0;
  private probeTimer: NodeJS.Timeout | undefined;
  /** Databases with a turn of unwritten commits, in the order their turns began. */
  private readonly turns: DbEntry[] = [];

  constructor(opts: OvsdbServerOptions) {
    this.opts = opts;
    this.log = opts.log;
    this.now = opts.now ?? Date.now;
    const probe = opts.probeIntervalMs ?? 5000;
    if (probe > 0) {
      this.probeTimer = setInterval(() => this.probeSessions(probe), Math.max(10, probe / 2));
      this.probeTimer.unref();
    }
    const serverDb = new Database(parseSchema(SERVER_SCHEMA_JSON));
    this.dbs.set('_Server', { db: serverDb, readOnly: true, history: [], historyWeights: [], historyAtoms: 0, lastTxnId: ZERO_UUID, blocked: [] });
    this.addServerRow(this.dbs.get('_Server')!);
  }

  /** Serves `db` (its name is the schema's); `file`, when given, receives every commit. */
  addDatabase(db: Database, file?: DbFile): void {
    if (this.dbs.has(db.name)) throw new OvsdbSyntaxError(`database ${db.name} is already served`);
    const entry: DbEntry = { db, file, readOnly: false, history: [], historyWeights: [], historyAtoms: 0, lastTxnId: ZERO_UUID, blocked: [] };
    this.dbs.set(db.name, entry);
    this.addServerRow(entry);
    if (this.sessions.size > 0) this.disconnectUnaware(`adding ${db.name} database`);
  }

  /**
   * Stops serving database `name` (not `_Server`), as ovsdb-server/remove-db:
   * its monitors are canceled (db-change-aware sessions are told with
   * `monitor_canceled`), transactions waiting on it are canceled, its row
   * leaves `_Server.Database`, its file is closed, and sessions that are not
   * db-change-aware are disconnected (they reconnect and see the new set).
   * Returns false if no such database is served.
   */
  removeDatabase(name: string): boolean {
    const entry = this.dbs.get(name);
    if (!entry || name === '_Server') return false;
    this.endTurns();
    this.dropClients(entry);
    this.dbs.delete(name);
    const serverEntry = this.dbs.get('_Server')!;
    const old = entry.serverRow ? serverEntry.db.table('Database')!.get(entry.serverRow) : undefined;
    if (old) {
      const table = serverEntry.db.schema.tables.get('Database')!;
      this.commit(serverEntry, { id: newUuid(), changes: [{ table, uuid: old.uuid, old, new: null }], durable: false, date: this.now() });
    }
    entry.file?.close();
    this.disconnectUnaware(`removing ${name} database`);
    return true;
  }

  /** Cancels the monitors on `entry` (telling db-change-aware sessions with `monitor_canceled`) and the transactions waiting on it. */
  private dropClients(entry: DbEntry): void {
    for (const s of this.sessions) {
      for (const [key, m] of s.monitors) {
        if (m.entry !== entry) continue;
        s.monitors.delete(key);
        if (s.dbChangeAware) s.conn.notify('monitor_canceled', [m.monid]);
      }
    }
    for (const b of entry.blocked) {
      if (b.timer) clearTimeout(b.timer);
      // A session that is not db-change-aware is about to be disconnected instead.
      if (b.session.dbChangeAware) replyCanceled(b.session, b.id);
    }
    entry.blocked = [];
  }

  /** As ovsdb-server when its set of databases changes: sessions that did not ask to be told are disconnected. */
  private disconnectUnaware(reason: string): void {
    for (const s of [...this.sessions]) {
      if (s.dbChangeAware) continue;
      s.log.info(`disconnecting (${reason})`);
      s.conn.close();
    }
  }

  /** The database named `name`, if served. */
  database(name: string): Database | undefined {
    return this.dbs.get(name)?.db;
  }

  /** Names of the served databases, `_Server` included. */
  databaseNames(): string[] {
    return [...this.dbs.keys()].sort();
  }

  /** Counts in the spirit of ovsdb-server's `memory/show`, plus the JS heap. */
  memoryStats(): Record<string, number> {
    let cells = 0;
    let rows = 0;
    for (const e of this.dbs.values()) {
      for (const [t, table] of e.db.tables) {
        rows += table.size;
        cells += table.size * e.db.info.get(t)!.schema.userColumns.length;
      }
    }
    let monitors = 0;
    for (const s of this.sessions) monitors += s.monitors.size;
    const mem = process.memoryUsage();
    return { rows, cells, monitors, sessions: this.sessions.size, 'heap-used-kB': Math.round(mem.heapUsed / 1024), 'rss-kB': Math.round(mem.rss / 1024) };
  }

  /** Called after each commit (after storage and monitors); used for `db:` remotes. */
  onCommit(hook: (db: Database, commit: Commit) => void): void {
    this.commitHooks.push(hook);
  }

  /** Compacts the file of `name` (every database with a file when omitted). */
  compact(name?: string): void {
    for (const [n, e] of this.dbs) {
      if (name !== undefined && n !== name) continue;
      e.file?.compact(e.db);
    }
    if (name !== undefined && !this.dbs.get(name)) throw new UnknownDatabaseError(name);
  }

  private addServerRow(entry: DbEntry): void {
    const serverEntry = this.dbs.get('_Server')!;
    const table = serverEntry.db.schema.tables.get('Database')!;
    const uuid = newUuid();
    const values = serverEntry.db.info.get('Database')!.defaults.with([
      ['name', makeAtom(entry.db.name)],
      ['model', makeAtom('standalone')],
      ['connected', makeAtom(true)],
      ['leader', makeAtom(true)],
      ['schema', makeAtom(JSON.stringify(entry.db.schema.json))],
    ]);
    const row: Row = { uuid, version: newUuid(), values };
    entry.serverRow = uuid;
    this.commit(serverEntry, { id: newUuid(), changes: [{ table, uuid, old: null, new: row }], durable: false, date: this.now() });
  }

  // ------------------------------------------------------------- listening

  /** The key, certificate and CA that `pssl:` remotes listen with from now on (undefined: no `pssl:`). */
  setTls(tls: TlsConfig | undefined): void {
    this.tls = tls;
  }

  /** Listens on a passive remote: `punix:PATH`, `ptcp:PORT[:IP]` or `pssl:PORT[:IP]`. Resolves when listening. */
  async listen(remote: string, opts: { readOnly?: boolean } = {}): Promise<void> {
    this.setReadOnly(remote, opts.readOnly ?? false);
    if (this.listeners.has(remote)) return;
    const inet = /^p(tcp|ssl):(\d+)(?::(.+))?$/.exec(remote);
    if (inet?.[1] === 'ssl' && !this.tls) {
      throw new OvsdbSyntaxError(`${remote}: pssl: needs --private-key, --certificate and --ca-cert`);
    }
    const listener = this.opts.replay ? this.replayedListener(remote, inet?.[3]) : await this.openListener(remote, inet);
    this.listeners.set(remote, listener);
    const a = listener.address();
    // OVS's words (scripts read the port of a ptcp:0 remote from this line).
    if (inet && a && typeof a === 'object') this.log.info(`${remote}: listening on port ${a.port}`);
    else this.log.info({ remote }, 'listening');
  }

  /** A listener standing for the recorded one: its port as recorded, no socket. */
  private replayedListener(remote: string, ip: string | undefined): Listener {
    const port = this.opts.replay!.listened(remote);
    return {
      address: () => (port === undefined ? remote : { port, address: ip ?? '0.0.0.0', family: 'IPv4' }),
      close: (done) => done(),
    };
  }

  /** Opens the socket of a passive remote; with --record, writes down how that went. */
  private async openListener(remote: string, inet: RegExpExecArray | null): Promise<Server> {
    const server =
      inet?.[1] === 'ssl'
        ? createTlsServer({ ...this.tls!, requestCert: true, rejectUnauthorized: true }, (socket: TLSSocket) => {
            if (typeof socket.servername === 'string') (this.opts.tlsLog ?? this.log).debug(`connection indicated server name ${socket.servername}`);
            this.accept(socket, remote);
          })
        : createServer((socket) => this.accept(socket, remote));
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        if (remote.startsWith('punix:')) {
          const path = remote.slice('punix:'.length);
          if (existsSync(path)) unlinkSync(path);
          server.listen(path, () => resolve());
        } else if (inet) {
          server.listen(Number(inet[2]), inet[3] ?? '0.0.0.0', () => resolve());
        } else {
          reject(new OvsdbSyntaxError(`unsupported remote "${remote}" (use punix:PATH, ptcp:PORT[:IP] or pssl:PORT[:IP])`));
        }
      });
    } catch (err) {
      this.opts.recorder?.listened(remote, { error: err as Error });
      throw err;
    }
    const a = server.address();
    this.opts.recorder?.listened(remote, { port: a && typeof a === 'object' ? a.port : undefined });
    server.on('error', (err) => this.log.error({ remote, err: err.message }, 'listener error'));
    server.on('tlsClientError', (err) => (this.opts.tlsLog ?? this.log).info({ remote, err: err.message }, 'TLS handshake failed'));
    return server;
  }

  /** Makes the sessions of `remote`, present and future, read-only or not. */
  setReadOnly(remote: string, readOnly: boolean): void {
    if (readOnly) this.readOnlyRemotes.add(remote);
    else this.readOnlyRemotes.delete(remote);
    for (const s of this.sessions) if (s.remote === remote) s.readOnly = readOnly;
  }

  /** Number of sessions connected through `remote` now (a Manager row's `is_connected`). */
  sessionCount(remote: string): number {
    let n = 0;
    for (const s of this.sessions) if (s.remote === remote) n++;
    return n;
  }

  /**
   * Runs a transaction of the server's own (ovsdb-server writes the status
   * columns of Manager rows this way) and returns its results.
   */
  transactInternal(dbName: string, ops: unknown[]): unknown[] {
    const entry = this.entry(dbName);
    const outcome = executeTransaction(entry.db, ops, { hasLock: () => false, now: this.now(), started: this.now() });
    if (outcome.kind !== 'done') return [];
    if (outcome.commit) this.commit(entry, outcome.commit, outcome.log);
    return outcome.results;
  }

  /** Stops listening on `remote`. */
  async unlisten(remote: string): Promise<void> {
    const server = this.listeners.get(remote);
    if (!server) return;
    this.listeners.delete(remote);
    await new Promise<void>((resolve) => server.close(() => resolve()));
    this.log.info({ remote }, 'stopped listening');
  }

  /** Remotes listened on now; with `ptcp:0` the real port is shown. */
  remotes(): string[] {
    return [...this.listeners.entries()].map(([r, s]) => {
      const a = s.address();
      return /^p(tcp|ssl):/.test(r) && a && typeof a === 'object' ? `${r.slice(0, 5)}${a.port}:${a.address}` : r;
    });
  }

  /** Sends `echo` to sessions silent for `interval`; closes those silent for twice that. */
  private probeSessions(interval: number): void {
    const now = performance.now();
    for (const s of this.sessions) {
      const idle = now - s.conn.lastReceived;
      if (idle >= 2 * interval && s.probing) {
        s.log.warn({ idleMs: Math.round(idle) }, 'no response to inactivity probe, disconnecting');
        s.conn.close();
      } else if (idle >= interval && !s.probing) {
        s.probing = true;
        s.conn.request('echo', []).then(
          () => (s.probing = false),
          () => undefined,
        );
      }
    }
  }

  /** Stops listening, closes every session, syncs and closes files. */
  async close(): Promise<void> {
    if (this.probeTimer) clearInterval(this.probeTimer);
    this.endTurns();
    // Sessions first: a listener's close() waits for its connections to end.
    for (const s of [...this.sessions]) s.conn.close();
    await Promise.all([...this.listeners.keys()].map((r) => this.unlisten(r)));
    for (const e of this.dbs.values()) {
      for (const b of e.blocked) if (b.timer) clearTimeout(b.timer);
      e.blocked = [];
      e.file?.close();
    }
  }

  /** Serves one connected socket (any stream): used by listeners and by tests. */
  accept(socket: Socket, remote = 'socket'): JsonRpcConnection {
    this.opts.recorder?.accepted('ovsdb', remote, socket);
    const name = `${remote}#${this.nextSession++}`;
    const log = this.log.child({ session: name });
    const conn = new JsonRpcConnection(socket, { log, name, maxMessageBytes: this.opts.maxMessageBytes });
    const session: Session = { conn, remote, readOnly: this.readOnlyRemotes.has(remote), dbChangeAware: false, probing: false, monitors: new Map(), locks: new Set(), log };
    this.sessions.add(session);
    log.debug('connection opened');
    conn.on('close', () => this.endSession(session));
    this.registerMethods(session);
    return conn;
  }

  private endSession(session: Session): void {
    if (!this.sessions.delete(session)) return;
    session.log.debug('connection closed');
    for (const e of this.dbs.values()) {
      e.blocked = e.blocked.filter((b) => {
        if (b.session !== session) return true;
        if (b.timer) clearTimeout(b.timer);
        return false;
      });
    }
    for (const name of [...session.locks]) this.unlock(session, name);
    session.monitors.clear();
  }

  private entry(name: unknown): DbEntry {
    const e = typeof name === 'string' ? this.dbs.get(name) : undefined;
    if (!e) throw new UnknownDatabaseError(String(name));
    return e;
  }

  private registerMethods(session: Session): void {
    const { conn } = session;
    conn.handle('list_dbs', () => this.databaseNames());
    conn.handle('get_schema', (p) => this.entry(p[0]).db.schema.json);
    conn.handle('get_server_id', () => this.serverId);
    conn.handle('set_db_change_aware', (p) => {
      session.dbChangeAware = p[0] === true;
      return {};
    });
    conn.handle('transact', (p, _c, id) => this.transact(session, p, id));
    conn.handle('convert', (p) => this.convert(p));
    conn.onNotification('cancel', (p) => this.cancel(session, p[0]));
    // Monitor requests read the database: while a turn's commits are unwritten they are answered after the
    // write (and monitor_cancel too, so that no update held for the monitor follows its reply).
    const db = (name: unknown) => (typeof name === 'string' ? this.dbs.get(name) : undefined);
    const dbOfMonitor = (monid: unknown) => session.monitors.get(JSON.stringify(monid ?? null))?.entry;
    conn.handle('monitor', (p, _c, id) => this.whenSettled(session, id, db(p[0]), () => this.monitor(session, 1, p[0], p[1], p[2])));
    conn.handle('monitor_cond', (p, _c, id) => this.whenSettled(session, id, db(p[0]), () => this.monitor(session, 2, p[0], p[1], p[2])));
    conn.handle('monitor_cond_since', (p, _c, id) => this.whenSettled(session, id, db(p[0]), () => this.monitorSince(session, p)));
    conn.handle('monitor_cond_change', (p, _c, id) => this.whenSettled(session, id, dbOfMonitor(p[0]), () => this.monitorChange(session, p)));
    conn.handle('monitor_cancel', (p, _c, id) => this.whenSettled(session, id, dbOfMonitor(p[0]), () => this.monitorCancel(session, p[0])));
    conn.handle('lock', (p) => this.lock(session, p[0], false));
    conn.handle('steal', (p) => this.lock(session, p[0], true));
    conn.handle('unlock', (p) => {
      this.unlock(session, this.lockName(p[0]));
      return {};
    });
  }

  // ------------------------------------------------------------- convert

  /**
   * `convert` [DB, SCHEMA]: converts a database online (see convert.ts) and
   * serves the result: the file is rewritten under the new schema (schema
   * and rows, one record each) before anything changes in memory, then the
   * database's monitors and waiting transactions are canceled (as when it is
   * removed), its `_Server` row takes the new schema, and sessions that are
   * not db-change-aware are disconnected.
   */
  private convert(params: unknown[]): unknown {
    if (params.length !== 2) throw new OvsdbSyntaxError('array expected');
    const entry = this.entry(params[0]);
    if (entry.readOnly) throw new NotSupportedError(`database ${entry.db.name} cannot be converted`);
    const converted = convertDatabase(entry.db, parseSchema(params[1]));
    this.endTurns();
    entry.file?.compact(converted);
    this.dropClients(entry);
    entry.db = converted;
    entry.history = [];
    entry.historyWeights = [];
    entry.historyAtoms = 0;
    const serverEntry = this.dbs.get('_Server')!;
    const old = entry.serverRow ? serverEntry.db.table('Database')!.get(entry.serverRow) : undefined;
    if (old) {
      const row: Row = { uuid: old.uuid, version: newUuid(), values: old.values.with([['schema', makeAtom(JSON.stringify(converted.schema.json))]]) };
      this.commit(serverEntry, { id: newUuid(), changes: [{ table: serverEntry.db.schema.tables.get('Database')!, uuid: old.uuid, old, new: row }], durable: false, date: this.now() });
    }
    this.disconnectUnaware(`converting ${converted.name} database`);
    return {};
  }

  // ------------------------------------------------------------- transact

  private transact(session: Session, params: unknown[], id: unknown): unknown {
    if (params.length === 0) throw new JsonRpcProtocolError('transact needs a database name', 'syntax error');
    const entry = this.entry(params[0]);
    this.execute({ session, entry, ops: params.slice(1), started: this.now(), id });
    return REPLY_LATER;
  }

  private armTimer(txn: TxnRequest, deadline: number): void {
    if (txn.timer) clearTimeout(txn.timer);
    txn.timer = undefined;
    if (deadline === Infinity) return;
    txn.timer = setTimeout(() => this.retry(txn), Math.max(0, deadline - this.now()));
  }

  /**
   * Executes a transaction and answers it: at once if its database has no
   * unwritten commits, else (its own commit included) after the turn's
   * write. A transaction blocked on `wait` is parked instead. Throws only on
   * a bug (executeTransaction turns bad requests into error results).
   */
  private execute(txn: TxnRequest): void {
    const { session, entry } = txn;
    const outcome = executeTransaction(entry.db, txn.ops, {
      hasLock: (name) => this.locks.get(name)?.[0] === session,
      now: this.now(),
      started: txn.started,
      readOnly: entry.readOnly,
      readOnlySession: session.readOnly,
    });
    if (outcome.kind === 'blocked') {
      entry.blocked.push(txn);
      this.armTimer(txn, outcome.deadline);
      return;
    }
    let { results } = outcome;
    if (outcome.commit) this.commit(entry, outcome.commit, outcome.log);
    else if (outcome.durable && entry.turn) entry.turn.durable = true;
    else if (outcome.durable && entry.file) {
      try {
        entry.file.syncNow();
      } catch (err) {
        results = [...results, this.ioError(entry, err).toJson()];
      }
    }
    const turn = entry.turn;
    if (!turn) {
      session.conn.reply(txn.id, results);
      return;
    }
    turn.answers.push({ txn, results, committed: outcome.commit !== undefined });
    this.queue(turn, session, JSON.stringify({ result: results, error: null, id: txn.id }));
  }

  private ioError(entry: DbEntry, err: unknown): OvsdbError {
    const ioErr = err instanceof OvsdbError ? err : new OvsdbIoError(`writing ${entry.file?.path}: ${(err as Error).message}`);
    this.log.error({ db: entry.db.name, err: ioErr.message }, 'commit failed');
    return ioErr;
  }

  private retry(txn: TxnRequest): void {
    const i = txn.entry.blocked.indexOf(txn);
    if (i < 0) return;
    txn.entry.blocked.splice(i, 1);
    if (txn.timer) clearTimeout(txn.timer);
    txn.timer = undefined;
    this.executeLater(txn);
  }

  /** execute() outside the request's handler: a thrown error becomes the error reply. */
  private executeLater(txn: TxnRequest): void {
    try {
      this.execute(txn);
    } catch (err) {
      txn.session.conn.replyError(txn.id, err, 'transact');
    }
  }

  private cancel(session: Session, id: unknown): void {
    for (const e of this.dbs.values()) {
      const txn = e.blocked.find((x) => x.session === session && JSON.stringify(x.id) === JSON.stringify(id));
      if (!txn) continue;
      e.blocked.splice(e.blocked.indexOf(txn), 1);
      if (txn.timer) clearTimeout(txn.timer);
      replyCanceled(session, txn.id);
      return;
    }
  }

  /**
   * Applies a checked commit to memory and adds it to this turn of its
   * database: its file record and its updates, encoded now (once per monitor
   * shape), leave at the turn's end. Waiters on `wait` are re-run after it.
   */
  private commit(entry: DbEntry, commit: Commit, log?: DeltaLog): void {
    const record = entry.file ? commitRecordText(entry.db, commit.changes, commit.date, commit.comment, log) : undefined;
    entry.db.apply(commit.changes, log);
    let turn = entry.turn;
    if (!turn) {
      turn = entry.turn = { commits: [], durable: false, out: new Map(), answers: [], after: [] };
      if (this.turns.length === 0) setImmediate(() => this.endTurns());
      this.turns.push(entry);
    }
    turn.commits.push({ commit, record });
    if (commit.durable) turn.durable = true;
    // Shape → the notification's text after the prefix (null: nothing for that shape).
    const encoded = new Map<string, string | null>();
    for (const s of this.sessions) {
      for (const m of s.monitors.values()) {
        if (m.entry !== entry) continue;
        let tail = encoded.get(m.monitor.shape);
        if (tail === undefined) {
          const u = m.monitor.updatesText(commit.changes, log);
          tail = u === null ? null : notificationTail(m.monitor.version, commit.id, u);
          encoded.set(m.monitor.shape, tail);
        }
        if (tail !== null) this.queue(turn, s, m.prefix + tail);
      }
    }
    if (entry.blocked.length > 0) {
      // Re-run waiters after this call stack: their commits must follow this one's notifications.
      const waiting = [...entry.blocked];
      setImmediate(() => {
        for (const b of waiting) this.retry(b);
      });
    }
  }

  /** Ends the turn of every database with unwritten commits. */
  private endTurns(): void {
    for (const entry of this.turns.splice(0)) this.endTurn(entry);
  }

  /**
   * Writes the turn's records in one write, then sends each session its held
   * output. If the write fails, undoes the turn's commits (newest first),
   * drops their updates, answers their transactions with the I/O error and
   * re-runs the others that were answered from the undone state.
   */
  private endTurn(entry: DbEntry): void {
    const turn = entry.turn!;
    entry.turn = undefined;
    let failure: OvsdbError | undefined;
    if (entry.file) {
      try {
        entry.file.append(turn.commits.map((c) => c.record!), turn.durable);
      } catch (err) {
        failure = this.ioError(entry, err);
      }
    }
    if (failure) {
      for (let i = turn.commits.length - 1; i >= 0; i--) entry.db.apply(inverse(turn.commits[i].commit.changes));
      for (const a of turn.answers) {
        if (a.committed) a.txn.session.conn.reply(a.txn.id, [...a.results, failure.toJson()]);
        else this.executeLater(a.txn);
      }
    } else {
      for (const { commit } of turn.commits) {
        this.remember(entry, commit);
        entry.lastTxnId = commit.id;
        for (const hook of this.commitHooks) hook(entry.db, commit);
      }
      for (const [s, text] of turn.out) s.conn.sendText(text);
      if (entry.file?.shouldCompact()) {
        try {
          entry.file.compact(entry.db);
        } catch (err) {
          this.log.error({ db: entry.db.name, err: (err as Error).message }, 'automatic compaction failed');
        }
      }
    }
    for (const handle of turn.after) handle();
  }

  /** Adds a commit to the history, dropping the oldest past either bound (the newest always stays). */
  private remember(entry: DbEntry, commit: Commit): void {
    const w = historyWeight(commit);
    entry.history.push(commit);
    entry.historyWeights.push(w);
    entry.historyAtoms += w;
    const maxCommits = this.opts.historySize ?? 100;
    const maxAtoms = this.opts.historyAtoms ?? 50_000;
    while (entry.history.length > 1 && (entry.history.length > maxCommits || entry.historyAtoms > maxAtoms)) {
      entry.history.shift();
      entry.historyAtoms -= entry.historyWeights.shift()!;
    }
  }

  /**
   * Adds `text` to what `s` is sent at the end of `turn`; but closes `s`
   * instead when what it was sent before is still unread past the bound.
   */
  private queue(turn: Turn, s: Session, text: string): void {
    if (s.conn.isClosed) return;
    const backlog = s.conn.backlog;
    if (backlog > (this.opts.maxBacklogBytes ?? 64 * 1024 * 1024)) {
      s.log.warn({ backlog }, 'peer is not reading its updates: disconnecting');
      s.conn.close();
      return;
    }
    const held = turn.out.get(s);
    turn.out.set(s, held === undefined ? text : held + text);
  }

  /**
   * Handles a request that reads `entry` now, or, while its turn holds
   * unwritten commits, after the turn's write (so its answer never shows a
   * commit that may yet be undone).
   */
  private whenSettled(session: Session, id: unknown, entry: DbEntry | undefined, handle: () => unknown): unknown {
    const turn = entry?.turn;
    if (!turn) return handle();
    turn.after.push(() => {
      try {
        session.conn.reply(id, handle());
      } catch (err) {
        session.conn.replyError(id, err);
      }
    });
    return REPLY_LATER;
  }

  // ------------------------------------------------------------- monitors

  private addMonitor(session: Session, version: MonitorVersion, dbName: unknown, monid: unknown, requests: unknown): { monitor: Monitor; entry: DbEntry } {
    const entry = this.entry(dbName);
    const key = JSON.stringify(monid ?? null);
    if (session.monitors.has(key)) throw new OvsdbSyntaxError(`duplicate monitor ID ${key}`, 'duplicate monitor ID');
    const monitor = new Monitor(entry.db, monid, version, requests);
    session.monitors.set(key, { monitor, entry, monid, prefix: notificationPrefix(version, monid) });
    return { monitor, entry };
  }

  private monitor(session: Session, version: MonitorVersion, dbName: unknown, monid: unknown, requests: unknown): unknown {
    return this.addMonitor(session, version, dbName, monid, requests).monitor.initial();
  }

  private monitorSince(session: Session, p: unknown[]): unknown {
    const { monitor, entry } = this.addMonitor(session, 3, p[0], p[1], p[2]);
    const since = p[3];
    const at = typeof since === 'string' ? entry.history.findIndex((c) => c.id === since) : -1;
    if (since === entry.lastTxnId && since !== ZERO_UUID) return [true, entry.lastTxnId, {}];
    if (at < 0) return [false, entry.lastTxnId, monitor.initial()];
    return [true, entry.lastTxnId, JSON.parse(monitor.updatesText(collapse(entry.history.slice(at + 1))) ?? '{}')];
  }

  private monitorChange(session: Session, p: unknown[]): unknown {
    const [monid, newMonid, requests] = p;
    const key = JSON.stringify(monid ?? null);
    const m = session.monitors.get(key);
    if (!m) throw new OvsdbSyntaxError(`unknown monitor ${key}`, 'unknown monitor');
    const newKey = JSON.stringify(newMonid ?? null);
    if (newKey !== key && session.monitors.has(newKey)) throw new OvsdbSyntaxError(`duplicate monitor ID ${newKey}`, 'duplicate monitor ID');
    const updates = m.monitor.changeConditions(requests);
    session.monitors.delete(key);
    m.monid = newMonid;
    m.prefix = notificationPrefix(m.monitor.version, newMonid);
    session.monitors.set(newKey, m);
    // ovsdb-server(7): the update a condition change causes goes out before the reply.
    if (Object.keys(updates).length > 0) session.conn.sendText(m.prefix + notificationTail(m.monitor.version, m.entry.lastTxnId, JSON.stringify(updates)));
    return {};
  }

  private monitorCancel(session: Session, monid: unknown): unknown {
    const key = JSON.stringify(monid ?? null);
    if (!session.monitors.delete(key)) throw new OvsdbSyntaxError(`unknown monitor ${key}`, 'unknown monitor');
    return {};
  }

  // ------------------------------------------------------------- locks

  private lockName(v: unknown): string {
    if (typeof v !== 'string' || v.length === 0) throw new OvsdbSyntaxError('lock name must be a non-empty string');
    return v;
  }

  private lock(session: Session, raw: unknown, steal: boolean): unknown {
    const name = this.lockName(raw);
    let queue = this.locks.get(name);
    if (!queue) this.locks.set(name, (queue = []));
    if (!steal && session.locks.has(name)) throw new OvsdbSyntaxError(`lock "${name}" already requested by this session`, 'duplicate lock');
    if (steal) {
      const owner = queue[0];
      const rest = queue.filter((s) => s !== session && s !== owner);
      if (owner && owner !== session) {
        owner.locks.delete(name);
        owner.conn.notify('stolen', [name]);
      }
      queue.splice(0, queue.length, session, ...rest);
      session.locks.add(name);
      return { locked: true };
    }
    queue.push(session);
    session.locks.add(name);
    return { locked: queue[0] === session };
  }

  private unlock(session: Session, name: string): void {
    const queue = this.locks.get(name);
    session.locks.delete(name);
    if (!queue) return;
    const wasOwner = queue[0] === session;
    const i = queue.indexOf(session);
    if (i >= 0) queue.splice(i, 1);
    if (queue.length === 0) this.locks.delete(name);
    else if (wasOwner) queue[0].conn.notify('locked', [name]);
  }
}

/** RFC 7047's answer to a canceled transaction: an error reply whose error is the bare string "canceled" (ovsdb-server's form). */
function replyCanceled(session: Session, id: unknown): void {
  session.conn.sendText(JSON.stringify({ result: null, error: 'canceled', id }));
}

const UPDATE_METHODS = { 1: 'update', 2: 'update2', 3: 'update3' } as const;

/** The JSON text of an update notification up to its updates (the part one monitor's notifications share). */
function notificationPrefix(version: MonitorVersion, monid: unknown): string {
  return `{"method":"${UPDATE_METHODS[version]}","params":[${JSON.stringify(monid ?? null)},`;
}

/** The rest of an update notification (`updates`: the table-updates' JSON text): the same for every monitor of one shape. */
function notificationTail(version: MonitorVersion, lastTxnId: string, updates: string): string {
  return `${version === 3 ? `"${lastTxnId}",` : ''}${updates}],"id":null}`;
}

/** The changes that undo `changes`, in the order to apply them. */
function inverse(changes: readonly RowChange[]): RowChange[] {
  const out: RowChange[] = [];
  for (let i = changes.length - 1; i >= 0; i--) {
    const ch = changes[i];
    out.push({ table: ch.table, uuid: ch.uuid, old: ch.new, new: ch.old });
  }
  return out;
}

/** What a commit in the history keeps alive beyond the current rows: the atoms of the old values it replaced. */
function historyWeight(commit: Commit): number {
  let n = 1;
  for (const ch of commit.changes) {
    if (!ch.old) continue;
    const old = ch.old.values.data;
    const neu = ch.new?.values.data;
    for (let i = 0; i < old.length; i++) if (old[i] !== neu?.[i]) n += datumSize(old[i]);
  }
  return n;
}

/** Collapses a run of commits into one net change per row (for monitor_cond_since). */
function collapse(commits: readonly Commit[]): RowChange[] {
  const net = new Map<string, RowChange>();
  for (const c of commits) {
    for (const ch of c.changes) {
      const prev = net.get(ch.uuid);
      net.set(ch.uuid, prev ? { table: ch.table, uuid: ch.uuid, old: prev.old, new: ch.new } : ch);
    }
  }
  return [...net.values()].filter((ch) => ch.old !== null || ch.new !== null);
}
