// The OVSDB server (RFC 7047 plus OVS's extensions): serves one or more
// databases over JSON-RPC sessions — list_dbs, get_schema, transact, cancel,
// the monitor family (update, update2, update3 with transaction history),
// locks, echo, get_server_id, set_db_change_aware — and the `_Server`
// database describing them, which ovs-vsctl reads first.
//
// Every commit is applied, written to the database file and sent to every
// monitor before the committing client's reply, all synchronously, so
// monitors see commits in commit order and an acknowledged transaction is
// always in the file. A transaction blocked on `wait` is re-run after each
// commit to its database and when its timeout expires.
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { existsSync, unlinkSync } from 'node:fs';
import type { Logger } from 'pino';
import { Database, newUuid, type Commit, type Row, type RowChange } from './database.ts';
import { datumSize, makeAtom, type DeltaLog } from './datum.ts';
import { JsonRpcConnection, JsonRpcProtocolError } from '@nvs/jsonrpc';
import { CanceledError, OvsdbError, OvsdbIoError, OvsdbSyntaxError, UnknownDatabaseError } from './errors.ts';
import { Monitor, type MonitorVersion, type TableUpdates } from './monitor.ts';
import { parseSchema } from './schema.ts';
import type { DbFile } from './storage.ts';
import { executeTransaction, type TxnOutcome } from './transaction.ts';

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
  /**
   * Inactivity probe, as OVS's: a session silent this long gets an `echo`
   * request, and is closed if still silent after as long again. 0 disables;
   * default 5000 ms.
   */
  probeIntervalMs?: number;
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
  blocked: BlockedTxn[];
  /** This database's row in `_Server.Database`. */
  serverRow?: string;
}

interface BlockedTxn {
  session: Session;
  entry: DbEntry;
  ops: unknown[];
  started: number;
  id: unknown;
  timer?: NodeJS.Timeout;
  resolve: (results: unknown) => void;
  reject: (err: Error) => void;
}

interface Session {
  conn: JsonRpcConnection;
  /** An echo probe is outstanding. */
  probing: boolean;
  monitors: Map<string, { monitor: Monitor; entry: DbEntry; monid: unknown }>;
  locks: Set<string>;
  log: Logger;
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
  private readonly listeners = new Map<string, Server>();
  private tls: TlsConfig | undefined;
  private readonly commitHooks: Array<(db: Database, commit: Commit) => void> = [];
  private nextSession = 0;
  private probeTimer: NodeJS.Timeout | undefined;

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
  async listen(remote: string): Promise<void> {
    if (this.listeners.has(remote)) return;
    const inet = /^p(tcp|ssl):(\d+)(?::(.+))?$/.exec(remote);
    if (inet?.[1] === 'ssl' && !this.tls) {
      throw new OvsdbSyntaxError(`${remote}: pssl: needs --private-key, --certificate and --ca-cert`);
    }
    const server =
      inet?.[1] === 'ssl'
        ? createTlsServer({ ...this.tls!, requestCert: true, rejectUnauthorized: true }, (socket: TLSSocket) => {
            if (typeof socket.servername === 'string') (this.opts.tlsLog ?? this.log).debug(`connection indicated server name ${socket.servername}`);
            this.accept(socket, remote);
          })
        : createServer((socket) => this.accept(socket, remote));
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
    server.on('error', (err) => this.log.error({ remote, err: err.message }, 'listener error'));
    server.on('tlsClientError', (err) => (this.opts.tlsLog ?? this.log).info({ remote, err: err.message }, 'TLS handshake failed'));
    this.listeners.set(remote, server);
    const a = server.address();
    // OVS's words (scripts read the port of a ptcp:0 remote from this line).
    if (inet && a && typeof a === 'object') this.log.info(`${remote}: listening on port ${a.port}`);
    else this.log.info({ remote }, 'listening');
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
    const name = `${remote}#${this.nextSession++}`;
    const log = this.log.child({ session: name });
    const conn = new JsonRpcConnection(socket, { log, name, maxMessageBytes: this.opts.maxMessageBytes });
    const session: Session = { conn, probing: false, monitors: new Map(), locks: new Set(), log };
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
    conn.handle('set_db_change_aware', () => ({}));
    conn.handle('transact', (p, _c, id) => this.transact(session, p, id));
    conn.onNotification('cancel', (p) => this.cancel(session, p[0]));
    conn.handle('monitor', (p) => this.monitor(session, 1, p[0], p[1], p[2]));
    conn.handle('monitor_cond', (p) => this.monitor(session, 2, p[0], p[1], p[2]));
    conn.handle('monitor_cond_since', (p) => this.monitorSince(session, p));
    conn.handle('monitor_cond_change', (p) => this.monitorChange(session, p));
    conn.handle('monitor_cancel', (p) => this.monitorCancel(session, p[0]));
    conn.handle('lock', (p) => this.lock(session, p[0], false));
    conn.handle('steal', (p) => this.lock(session, p[0], true));
    conn.handle('unlock', (p) => {
      this.unlock(session, this.lockName(p[0]));
      return {};
    });
  }

  // ------------------------------------------------------------- transact

  private transact(session: Session, params: unknown[], id: unknown): unknown {
    if (params.length === 0) throw new JsonRpcProtocolError('transact needs a database name', 'syntax error');
    const entry = this.entry(params[0]);
    const ops = params.slice(1);
    const started = this.now();
    const first = this.run(session, entry, ops, started);
    if (first.kind === 'done') return first.results;
    return new Promise((resolve, reject) => {
      const b: BlockedTxn = { session, entry, ops, started, id, resolve, reject };
      entry.blocked.push(b);
      this.armTimer(b, first.deadline);
    });
  }

  private armTimer(b: BlockedTxn, deadline: number): void {
    if (b.timer) clearTimeout(b.timer);
    b.timer = undefined;
    if (deadline === Infinity) return;
    b.timer = setTimeout(() => this.retry(b), Math.max(0, deadline - this.now()));
  }

  /** Executes a transaction and, if it changed anything, commits it. */
  private run(session: Session, entry: DbEntry, ops: unknown[], started: number): TxnOutcome {
    const outcome = executeTransaction(entry.db, ops, {
      hasLock: (name) => this.locks.get(name)?.[0] === session,
      now: this.now(),
      started,
      readOnly: entry.readOnly,
    });
    if (outcome.kind === 'done') {
      try {
        if (outcome.commit) this.commit(entry, outcome.commit, outcome.log);
        else if (outcome.durable) entry.file?.syncNow();
      } catch (err) {
        // The record could not be stored: the transaction did not happen (memory is untouched).
        const ioErr = err instanceof OvsdbError ? err : new OvsdbIoError(`writing ${entry.file?.path}: ${(err as Error).message}`);
        this.log.error({ db: entry.db.name, err: ioErr.message }, 'commit failed');
        return { kind: 'done', results: [...outcome.results, ioErr.toJson()], durable: false };
      }
    }
    return outcome;
  }

  private retry(b: BlockedTxn): void {
    const i = b.entry.blocked.indexOf(b);
    if (i < 0) return;
    b.entry.blocked.splice(i, 1);
    let outcome: TxnOutcome;
    try {
      outcome = this.run(b.session, b.entry, b.ops, b.started);
    } catch (err) {
      if (b.timer) clearTimeout(b.timer);
      b.reject(err as Error);
      return;
    }
    if (outcome.kind === 'done') {
      if (b.timer) clearTimeout(b.timer);
      b.resolve(outcome.results);
    } else {
      b.entry.blocked.push(b);
      this.armTimer(b, outcome.deadline);
    }
  }

  private cancel(session: Session, id: unknown): void {
    for (const e of this.dbs.values()) {
      const b = e.blocked.find((x) => x.session === session && JSON.stringify(x.id) === JSON.stringify(id));
      if (!b) continue;
      e.blocked.splice(e.blocked.indexOf(b), 1);
      if (b.timer) clearTimeout(b.timer);
      b.reject(new CanceledError());
      return;
    }
  }

  /** Applies a checked commit: memory, file, history, monitors, then blocked waiters. */
  private commit(entry: DbEntry, commit: Commit, log?: DeltaLog): void {
    // File first: if the record cannot be written, nothing changes.
    entry.file?.append(entry.db, commit.changes, commit.date, commit.comment, commit.durable, log);
    entry.db.apply(commit.changes, log);
    this.remember(entry, commit);
    entry.lastTxnId = commit.id;
    for (const s of this.sessions) {
      for (const m of s.monitors.values()) {
        if (m.entry !== entry) continue;
        const u = m.monitor.updatesFor(commit.changes, log);
        if (u) this.sendUpdate(s, m.monitor, m.monid, u, entry);
      }
    }
    for (const hook of this.commitHooks) hook(entry.db, commit);
    if (entry.file?.shouldCompact()) {
      try {
        entry.file.compact(entry.db);
      } catch (err) {
        this.log.error({ db: entry.db.name, err: (err as Error).message }, 'automatic compaction failed');
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

  private sendUpdate(s: Session, monitor: Monitor, monid: unknown, updates: TableUpdates, entry: DbEntry): void {
    if (monitor.version === 1) s.conn.notify('update', [monid, updates]);
    else if (monitor.version === 2) s.conn.notify('update2', [monid, updates]);
    else s.conn.notify('update3', [monid, entry.lastTxnId, updates]);
  }

  // ------------------------------------------------------------- monitors

  private addMonitor(session: Session, version: MonitorVersion, dbName: unknown, monid: unknown, requests: unknown): { monitor: Monitor; entry: DbEntry } {
    const entry = this.entry(dbName);
    const key = JSON.stringify(monid ?? null);
    if (session.monitors.has(key)) throw new OvsdbSyntaxError(`duplicate monitor ID ${key}`, 'duplicate monitor ID');
    const monitor = new Monitor(entry.db, monid, version, requests);
    session.monitors.set(key, { monitor, entry, monid });
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
    return [true, entry.lastTxnId, monitor.updatesFor(collapse(entry.history.slice(at + 1))) ?? {}];
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
    session.monitors.set(newKey, m);
    // ovsdb-server(7): the update a condition change causes goes out before the reply.
    if (Object.keys(updates).length > 0) this.sendUpdate(session, m.monitor, newMonid, updates, m.entry);
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
