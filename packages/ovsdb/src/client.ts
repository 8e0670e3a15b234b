// OVSDB client (RFC 7047) over a stream socket: connects to `unix:PATH` or
// `tcp:IP:PORT`, and offers the methods a controller needs — list_dbs,
// get_schema, transact, monitor / monitor_cond (update / update2 notifications
// routed to the monitor that asked for them), monitor_cancel, lock / steal /
// unlock (locked / stolen notifications), echo.
//
// It speaks the wire format and nothing more: values in requests and results
// are RFC 7047 JSON notation. The IDL (idl.ts) builds a typed replica on top.
// Failures are typed: ConnectFailedError when the socket cannot be opened,
// TransactionError when a transact result carries an error object,
// JsonRpcRemoteError for other error replies, ConnectionClosedError when the
// server goes away with requests outstanding.
import { EventEmitter } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { JsonRpcConnection } from '@nvs/jsonrpc';
import { OvsdbError } from './errors.ts';
import { parseSchema, type DatabaseSchema } from './schema.ts';

/** Where a server listens, as parsed from `unix:PATH` or `tcp:IP:PORT`. */
export type Remote = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

/** Thrown when a remote string is neither `unix:PATH` nor `tcp:IP:PORT`. */
export class InvalidRemoteError extends OvsdbError {
  constructor(remote: string) {
    super('OVSDB_INVALID_REMOTE', 'syntax error', `${remote}: not a valid database remote (expected unix:PATH or tcp:IP:PORT)`);
  }
}

/** Thrown when the connection to the server cannot be established. */
export class ConnectFailedError extends OvsdbError {
  readonly remote: string;
  constructor(remote: string, reason: string) {
    super('OVSDB_CONNECT_FAILED', 'I/O error', `${remote}: database connection failed (${reason})`);
    this.remote = remote;
  }
}

/**
 * Thrown by `transact` when the server reports an error for an operation or
 * for the commit. `rfcError` is the server's error string (`timed out`,
 * `constraint violation`, …); `opIndex` is the failing operation, or the
 * operation count when the commit itself failed.
 */
export class TransactionError extends OvsdbError {
  readonly opIndex: number;
  readonly details?: string;
  /** The offending JSON the server quoted, as text, when it did. */
  readonly syntax?: string;
  constructor(rfcError: string, details: string | undefined, opIndex: number, syntax?: string) {
    super('OVSDB_TRANSACTION_FAILED', rfcError, details ? `transaction failed: ${rfcError}: ${details}` : `transaction failed: ${rfcError}`);
    this.opIndex = opIndex;
    this.details = details;
    this.syntax = syntax;
  }
}

const UNIX_PREFIX = 'unix:';
const TCP_RE = /^tcp:(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+)):(\d{1,5})$/;

/** Parses `unix:PATH` or `tcp:IP:PORT` (IPv6 in brackets). */
export function parseRemote(remote: string): Remote {
  if (remote.startsWith(UNIX_PREFIX) && remote.length > UNIX_PREFIX.length) {
    return { kind: 'unix', path: remote.slice(UNIX_PREFIX.length) };
  }
  const m = TCP_RE.exec(remote);
  if (m) {
    const port = Number(m[3]);
    if (port > 0 && port < 65536) return { kind: 'tcp', host: m[1] ?? m[2], port };
  }
  throw new InvalidRemoteError(remote);
}

/** One RFC 7047 operation, in wire notation. */
export type Operation = { op: string; [member: string]: unknown };
/** One operation's result, in wire notation. */
export type OperationResult = { [member: string]: unknown };
/** `<table-updates>` (monitor) or `<table-updates2>` (monitor_cond) in wire notation. */
export type TableUpdates = Record<string, Record<string, Record<string, unknown>>>;
/** `<monitor-request>` for one table. */
export interface MonitorRequest {
  columns?: string[];
  where?: unknown[];
  select?: { initial?: boolean; insert?: boolean; delete?: boolean; modify?: boolean };
}
/** Receives a monitor's updates after the initial reply. */
export type UpdateHandler = (updates: TableUpdates) => void;

export interface ConnectOptions {
  /** pino child logger; when absent the client logs nothing (the CLI keeps pino off its start path). */
  log?: Logger;
  /** Give up connecting after this many milliseconds. */
  timeoutMs?: number;
}

/** A logger that drops everything, for callers that pass none. */
function silentLogger(): Logger {
  const noop = (): void => {};
  const log: Record<string, unknown> = { trace: noop, debug: noop, info: noop, warn: noop, error: noop, fatal: noop, level: 'silent' };
  log.child = () => log;
  return log as unknown as Logger;
}

function openSocket(remote: string, target: Remote, timeoutMs: number | undefined): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = target.kind === 'unix' ? netConnect(target.path) : netConnect(target.port, target.host);
    let timer: NodeJS.Timeout | undefined;
    const fail = (reason: string): void => {
      if (timer) clearTimeout(timer);
      socket.destroy();
      reject(new ConnectFailedError(remote, reason));
    };
    if (timeoutMs !== undefined) timer = setTimeout(() => fail('timed out'), timeoutMs);
    socket.once('error', (err: NodeJS.ErrnoException) => fail(describeErrno(err)));
    socket.once('connect', () => {
      if (timer) clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
  });
}

/** "No such file or directory" rather than "connect ENOENT /path", as OVS tools say it. */
function describeErrno(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ENOENT':
      return 'No such file or directory';
    case 'ECONNREFUSED':
      return 'Connection refused';
    case 'EACCES':
      return 'Permission denied';
    case 'ETIMEDOUT':
      return 'Connection timed out';
    default:
      return err.code ?? err.message;
  }
}

/**
 * A session with one OVSDB server.
 *
 * Events: `locked` (lockId), `stolen` (lockId), `close` (err?) once the
 * connection is gone.
 */
export class OvsdbClient extends EventEmitter {
  readonly conn: JsonRpcConnection;
  private readonly monitors = new Map<string, UpdateHandler>();

  constructor(conn: JsonRpcConnection) {
    super();
    this.conn = conn;
    const route = (params: unknown[]): void => {
      const handler = this.monitors.get(JSON.stringify(params[0]));
      if (handler && typeof params[1] === 'object' && params[1] !== null) handler(params[1] as TableUpdates);
    };
    conn.onNotification('update', route);
    conn.onNotification('update2', route);
    // update3 carries [id, last-txn-id, updates]; keep the updates.
    conn.onNotification('update3', (params) => route([params[0], params[2]]));
    conn.onNotification('locked', (params) => this.emit('locked', params[0]));
    conn.onNotification('stolen', (params) => this.emit('stolen', params[0]));
    conn.on('close', (err?: Error) => this.emit('close', err));
  }

  /** Opens a session with the server at `remote` (`unix:PATH` or `tcp:IP:PORT`). */
  static async connect(remote: string, opts: ConnectOptions = {}): Promise<OvsdbClient> {
    const target = parseRemote(remote);
    const socket = await openSocket(remote, target, opts.timeoutMs);
    const log = opts.log ?? silentLogger();
    return new OvsdbClient(new JsonRpcConnection(socket, { log, name: remote }));
  }

  get isClosed(): boolean {
    return this.conn.isClosed;
  }

  async listDbs(): Promise<string[]> {
    return (await this.conn.request('list_dbs', [])) as string[];
  }

  /** Fetches and parses the schema of `db`. */
  async getSchema(db: string): Promise<DatabaseSchema> {
    return parseSchema(await this.conn.request('get_schema', [db]));
  }

  /**
   * Runs a transaction. Resolves with one result per operation; rejects with
   * TransactionError when an operation (or the commit) failed — the server
   * has then changed nothing.
   */
  async transact(db: string, ops: Operation[]): Promise<OperationResult[]> {
    const results = (await this.conn.request('transact', [db, ...ops])) as (OperationResult | null)[];
    if (!Array.isArray(results)) throw new OvsdbError('OVSDB_BAD_REPLY', 'syntax error', `transact: the server's reply is not an array of results`);
    for (let i = 0; i < results.length; i++) {
      const r = results[i];
      if (r && typeof r.error === 'string') {
        throw new TransactionError(r.error, typeof r.details === 'string' ? r.details : undefined, i, typeof r.syntax === 'string' ? r.syntax : undefined);
      }
    }
    return results as OperationResult[];
  }

  /**
   * Starts a monitor (`update` notifications). Resolves with the initial
   * contents; later changes go to `onUpdate` in commit order.
   */
  async monitor(db: string, id: string, requests: Record<string, MonitorRequest | MonitorRequest[]>, onUpdate: UpdateHandler): Promise<TableUpdates> {
    return this.startMonitor('monitor', [db, id, requests], id, onUpdate);
  }

  /** Like `monitor`, with conditions and `<table-updates2>` (`update2` notifications). */
  async monitorCond(db: string, id: string, requests: Record<string, MonitorRequest | MonitorRequest[]>, onUpdate: UpdateHandler): Promise<TableUpdates> {
    return this.startMonitor('monitor_cond', [db, id, requests], id, onUpdate);
  }

  private async startMonitor(method: string, params: unknown[], id: string, onUpdate: UpdateHandler): Promise<TableUpdates> {
    const key = JSON.stringify(id);
    if (this.monitors.has(key)) throw new OvsdbError('OVSDB_DUPLICATE_MONITOR', 'duplicate monitor ID', `monitor "${id}" is already running on this connection`);
    // Register first: the server may send an update right after the reply.
    this.monitors.set(key, onUpdate);
    try {
      const initial = await this.conn.request(method, params);
      if (typeof initial !== 'object' || initial === null || Array.isArray(initial)) throw new OvsdbError('OVSDB_BAD_REPLY', 'syntax error', `${method}: the server's reply is not a table-updates object`);
      return initial as TableUpdates;
    } catch (err) {
      this.monitors.delete(key);
      throw err;
    }
  }

  async monitorCancel(id: string): Promise<void> {
    await this.conn.request('monitor_cancel', [id]);
    this.monitors.delete(JSON.stringify(id));
  }

  /** Asks for a lock; resolves true when granted now, false when a `locked` event will follow. */
  async lock(lockId: string): Promise<boolean> {
    return ((await this.conn.request('lock', [lockId])) as { locked: boolean }).locked;
  }

  /** Takes a lock from its owner (who gets `stolen`). */
  async steal(lockId: string): Promise<boolean> {
    return ((await this.conn.request('steal', [lockId])) as { locked: boolean }).locked;
  }

  async unlock(lockId: string): Promise<void> {
    await this.conn.request('unlock', [lockId]);
  }

  /** Round trip to the server; resolves with what it echoed. */
  async echo(...args: unknown[]): Promise<unknown[]> {
    return (await this.conn.request('echo', args)) as unknown[];
  }

  close(): void {
    this.conn.close();
  }
}
