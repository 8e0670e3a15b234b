// nvs-dbserver's program: ovsdb-server's command line (DATABASE, --remote,
// --unixctl, and the daemon options of daemon.ts) on top of OvsdbServer,
// DbFile and the unixctl control socket. The bin file only calls `main`.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { DAEMON_USAGE, DaemonError, parseDaemonArgs, programName, startDaemon, UnixctlServer, unixctlPath } from '@nvs/daemon';
import { Database, seedUuids } from './database.ts';
import { OvsdbError } from './errors.ts';
import { OvsdbServer, type TlsConfig } from './server.ts';
import { DbFile } from './storage.ts';
import { StreamRecorder, StreamReplay } from './stream-journal.ts';

export const VERSION = 'nvs-dbserver (nvs) 0.1.0';

const USAGE = `nvs-dbserver: OVSDB server for nvs (ovsdb-server's command line)
usage: nvs-dbserver [OPTIONS] [DATABASE...]
where DATABASE is a database file (default: <rundir>/conf.db), created from
the Open_vSwitch schema when missing. Invoked as ovsdb-server, the default is
$OVS_DBDIR/conf.db, a missing file is an error and there is no default remote,
as with OVS's ovsdb-server.

Options:
  --remote=REMOTE         listen on REMOTE: punix:PATH, ptcp:PORT[:IP], or
                          db:DB,TABLE,COLUMN (targets read from the database);
                          may be repeated (default: punix:<rundir>/db.sock)
  --unixctl=SOCKET        control socket (default: <rundir>/nvs-dbserver.ctl;
                          as ovsdb-server: <rundir>/ovsdb-server.<pid>.ctl)
  --private-key=FILE      TLS: private key for pssl: remotes (FILE or db:DB,TABLE,COLUMN)
  --certificate=FILE      TLS: certificate for the private key (same forms)
  --ca-cert=FILE          TLS: CA certificate that clients' certificates must be signed by
  --peer-ca-cert=FILE     TLS: a CA certificate sent with ours, for clients to bootstrap from
  --bootstrap-ca-cert=FILE  TLS: as --ca-cert (the file must exist: the server does not bootstrap)
  --record[=DIR]          write what the streams receive to DIR/nvs-dbserver.replay
                          (default DIR: the current directory)
  --replay[=DIR]          replay that file instead of opening sockets, and exit
                          with the recorded "exit" command
  --run=COMMAND           run COMMAND (with /bin/sh -c) once serving, then exit
                          when it exits, failing if it failed
${DAEMON_USAGE}
  -h, --help              display this help message
  -V, --version           display version information`;

/** Command-line arguments of nvs-dbserver beyond the daemon options. */
/** The TLS options, each a file name or `db:DB,TABLE,COLUMN`. */
export interface TlsArgs {
  privateKey?: string;
  certificate?: string;
  caCert?: string;
  peerCaCert?: string;
  bootstrapCaCert?: string;
}

export interface DbServerArgs {
  databases: string[];
  tls: TlsArgs;
  remotes: string[];
  unixctl?: string;
  run?: string;
  /** --record: the directory of the replay file to write. */
  record?: string;
  /** --replay: the directory of the replay file to read. */
  replay?: string;
  help: boolean;
  version: boolean;
}

/** Parses what parseDaemonArgs left; throws DaemonError (DAEMON_USAGE) on anything unknown. */
export function parseDbServerArgs(rest: readonly string[]): DbServerArgs {
  const out: DbServerArgs = { databases: [], tls: {}, remotes: [], help: false, version: false };
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i];
    const eq = arg.indexOf('=');
    const flag = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    const value = (): string => {
      if (eq > 0 && arg.startsWith('--')) return arg.slice(eq + 1);
      if (i + 1 < rest.length) return rest[++i];
      throw new DaemonError('DAEMON_USAGE', `${flag} needs a value`);
    };
    if (flag === '--remote') out.remotes.push(value());
    else if (flag === '--unixctl') out.unixctl = value();
    else if (flag === '--run') out.run = value();
    // The directory is optional, so only --record=DIR names it (as in OVS).
    else if (flag === '--record') out.record = eq > 0 ? arg.slice(eq + 1) : '.';
    else if (flag === '--replay') out.replay = eq > 0 ? arg.slice(eq + 1) : '.';
    else if (flag === '--private-key') out.tls.privateKey = value();
    else if (flag === '--certificate') out.tls.certificate = value();
    else if (flag === '--ca-cert') out.tls.caCert = value();
    else if (flag === '--peer-ca-cert') out.tls.peerCaCert = value();
    else if (flag === '--bootstrap-ca-cert') out.tls.bootstrapCaCert = value();
    // Accepted as ovsdb-server's scripts pass them; Node's TLS defaults (TLS 1.2+, its cipher list) apply.
    else if (flag === '--ssl-protocols' || flag === '--ssl-ciphers') value();
    else if (flag === '-h' || flag === '--help') out.help = true;
    else if (flag === '-V' || flag === '--version') out.version = true;
    else if (arg.startsWith('-')) throw new DaemonError('DAEMON_USAGE', `unknown option "${arg}" (use --help for help)`);
    else out.databases.push(arg);
  }
  return out;
}

/** The Open_vSwitch schema shipped in configs/: found next to the bundle (dist/) or the source tree. */
export function defaultSchemaPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const rel of ['../configs', '../../../../configs', '../../../configs']) {
    const p = resolve(here, rel, 'vswitch.ovsschema');
    if (existsSync(p)) return p;
  }
  throw new DaemonError('DAEMON_START_FAILED', `cannot find configs/vswitch.ovsschema near ${here}; create the database with "ovsdb-tool create"`);
}

/**
 * Follows `db:DB,TABLE,COLUMN` remotes: the column holds target strings, or
 * references to rows whose `target` column does (as Open_vSwitch.manager_options
 * → Manager.target). Passive targets (punix:, ptcp:) are listened on; the set
 * is re-read after every commit.
 */
export class DbRemotes {
  private active = new Set<string>();
  private readonly specs: Array<{ db: string; table: string; column: string }> = [];

  constructor(
    private readonly server: OvsdbServer,
    private readonly log: Logger,
  ) {
    // Without db: remotes there is nothing to re-read: skip the per-commit work.
    server.onCommit(() => {
      if (this.specs.length > 0) void this.refresh();
    });
  }

  /** Stops following `spec` (its targets are dropped at the next refresh). */
  remove(spec: string): void {
    const i = this.specs.findIndex((s) => `db:${s.db},${s.table},${s.column}` === spec);
    if (i >= 0) this.specs.splice(i, 1);
  }

  add(spec: string): void {
    const m = /^db:([^,]+),([^,]+),([^,]+)$/.exec(spec);
    if (!m) throw new DaemonError('DAEMON_USAGE', `"${spec}": expected db:DATABASE,TABLE,COLUMN`);
    const [, db, table, column] = m;
    const d = this.server.database(db);
    if (!d) throw new DaemonError('DAEMON_USAGE', `"${spec}": no database named ${db}`);
    const t = d.schema.tables.get(table);
    if (!t?.columns.has(column)) throw new DaemonError('DAEMON_USAGE', `"${spec}": no column ${column} in table ${table}`);
    this.specs.push({ db, table, column });
  }

  /**
   * Targets named by the database now, each with its Manager-style row when
   * the column references one (whose `read_only` applies to its sessions and
   * whose `is_connected` the server keeps up to date).
   */
  targets(): Map<string, { readOnly: boolean; row?: { db: string; table: string; uuid: string } }> {
    const out = new Map<string, { readOnly: boolean; row?: { db: string; table: string; uuid: string } }>();
    for (const s of this.specs) {
      // A removed database names no targets (its remote stays listed, as in ovsdb-server).
      const db = this.server.database(s.db);
      if (!db) continue;
      // A conversion may have dropped the table or column.
      const col = db.schema.tables.get(s.table)?.columns.get(s.column);
      if (!col) continue;
      const refTable = col.type.key.refTable;
      for (const row of db.table(s.table)!.values()) {
        for (const v of row.values.get(s.column)!.keys) {
          if (refTable === undefined) {
            out.set(String(v), { readOnly: false });
            continue;
          }
          const target = db.table(refTable)!.get(v as string);
          const t = target?.values.get('target');
          if (!target || !t || t.keys.length !== 1) continue;
          const ro = target.values.get('read_only');
          out.set(String(t.keys[0]), { readOnly: ro?.keys[0] === true, row: { db: s.db, table: refTable, uuid: target.uuid } });
        }
      }
    }
    return out;
  }

  /** Listens on new passive targets and stops listening on dropped ones; then writes the rows' status. */
  async refresh(): Promise<void> {
    const targets = this.targets();
    for (const t of targets.keys()) if (!/^p(unix|tcp|ssl):/.test(t)) this.log.warn({ target: t }, 'ignoring non-passive manager target (only punix:, ptcp: and pssl: are served)');
    const want = new Map([...targets].filter(([t]) => /^p(unix|tcp|ssl):/.test(t)));
    for (const t of this.active) {
      if (!want.has(t)) {
        this.active.delete(t);
        await this.server.unlisten(t);
      }
    }
    for (const [t, { readOnly }] of want) {
      if (this.active.has(t)) {
        this.server.setReadOnly(t, readOnly);
        continue;
      }
      this.active.add(t);
      try {
        await this.server.listen(t, { readOnly });
      } catch (err) {
        this.active.delete(t);
        this.log.error({ target: t, err: (err as Error).message }, 'cannot listen on manager target');
      }
    }
    this.writeStatus(targets);
  }

  /**
   * Sets `is_connected` of each target's row (where its table has that
   * column) to whether a session is connected through it, committing only
   * what changed, as ovsdb-server's periodic status update does.
   */
  writeStatus(targets = this.targets()): void {
    for (const [t, { row }] of targets) {
      if (!row) continue;
      const db = this.server.database(row.db)!;
      const col = db.schema.tables.get(row.table)!.columns.get('is_connected');
      if (col?.type.key.type !== 'boolean' || col.type.value) continue;
      const connected = this.active.has(t) && this.server.sessionCount(t) > 0;
      const now = db.table(row.table)!.get(row.uuid)?.values.get('is_connected');
      if (!now || (now.keys.length === 1 && now.keys[0] === connected)) continue;
      this.server.transactInternal(row.db, [{ op: 'update', table: row.table, where: [['_uuid', '==', ['uuid', row.uuid]]], row: { is_connected: connected } }]);
    }
  }

  /** Keeps the status columns current: every `ms` (ovsdb-server's status interval is 2.5 s). */
  startStatusTimer(ms = 2500): void {
    setInterval(() => {
      if (this.specs.length > 0) this.writeStatus();
    }, ms).unref();
  }
}

/**
 * The PEM text a TLS option names: a file, or `db:DB,TABLE,COLUMN`, the
 * column's value in the table's first row that has one (as ovs-ctl passes
 * `db:Open_vSwitch,SSL,private_key`, the file names `ovs-vsctl set-ssl` wrote).
 * Undefined when the option is unset or names nothing yet.
 */
function readTlsFile(server: OvsdbServer, spec: string | undefined): string | undefined {
  if (spec === undefined) return undefined;
  const m = /^db:([^,]+),([^,]+),([^,]+)$/.exec(spec);
  let path: string | undefined = spec;
  if (m) {
    path = undefined;
    for (const row of server.database(m[1])?.table(m[2])?.values() ?? []) {
      const v = row.values.get(m[3]);
      if (v && v.keys.length === 1) {
        path = String(v.keys[0]);
        break;
      }
    }
  }
  return path !== undefined && existsSync(path) ? readFileSync(path, 'utf8') : undefined;
}

/** The TLS configuration of pssl: remotes, or undefined when key, certificate or CA is missing. */
export function tlsConfig(server: OvsdbServer, t: TlsArgs): TlsConfig | undefined {
  const key = readTlsFile(server, t.privateKey);
  const cert = readTlsFile(server, t.certificate);
  const ca = readTlsFile(server, t.caCert) ?? readTlsFile(server, t.bootstrapCaCert);
  if (!key || !cert || !ca) return undefined;
  return { key, cert: cert + (readTlsFile(server, t.peerCaCert) ?? ''), ca };
}

/**
 * `--run=COMMAND`: runs COMMAND with /bin/sh -c, sharing our stdio, and stops
 * the server when it exits: with status 0 if it succeeded, else 1 with the
 * reason on stderr (as ovsdb-server does).
 */
function runThenStop(command: string, log: Logger, stop: (status: number) => Promise<void>): void {
  const child = spawn('/bin/sh', ['-c', command], { stdio: 'inherit' });
  child.on('error', (err) => {
    process.stderr.write(`${command}: process failed to start (${err.message})\n`);
    void stop(1);
  });
  child.on('exit', (code, signal) => {
    log.info({ command, code, signal }, '--run command exited');
    if (code === 0) return void stop(0);
    process.stderr.write(`${command}: child exited, ${signal ? `killed (${signal})` : `exit status ${code}`}\n`);
    void stop(1);
  });
}

/**
 * Listens on a start-up remote. A port another process holds (or any other
 * failure of the system's, replayed ones included) is logged and the server
 * goes on, as ovsdb-server does; a bad remote is still fatal.
 */
async function listenOrLog(server: OvsdbServer, remote: string, log: Logger): Promise<void> {
  try {
    await server.listen(remote);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (typeof code !== 'string' || !/^E[A-Z]+$/.test(code)) throw err;
    log.error({ remote, err: (err as Error).message }, 'listen failed');
  }
}

/** Runs nvs-dbserver; resolves with the exit status once the server has stopped (or failed to start). */
export async function main(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let parsed: ReturnType<typeof parseDaemonArgs>;
  let args: DbServerArgs;
  try {
    parsed = parseDaemonArgs(programName('nvs-dbserver', 'ovsdb-server'), argv, env);
    args = parseDbServerArgs(parsed.rest);
  } catch (err) {
    process.stderr.write(`${programName('nvs-dbserver', 'ovsdb-server')}: ${(err as Error).message}\n`);
    return 1;
  }
  if (args.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (args.version) {
    process.stdout.write(VERSION + '\n');
    return 0;
  }
  const { options } = parsed;
  // Module loggers must exist before -v specs name them, so apply the specs here.
  const daemon = await startDaemon({ ...options, verbose: [] });
  const log = daemon.vlog.logger('ovsdb_server');
  const storageLog = daemon.vlog.logger('storage');
  const rpcLog = daemon.vlog.logger('jsonrpc');
  const ctlLog = daemon.vlog.logger('unixctl');
  let server: OvsdbServer | undefined;
  let recorder: StreamRecorder | undefined;
  let replay: StreamReplay | undefined;
  let unixctl: UnixctlServer | undefined;
  let stopping: Promise<void> | undefined;
  let finished!: (status: number) => void;
  const done = new Promise<number>((r) => (finished = r));
  const stop = (status: number): Promise<void> =>
    (stopping ??= (async () => {
      log.info('exiting');
      replay?.stop();
      await unixctl?.close();
      await server?.close();
      recorder?.close();
      daemon.close();
      finished(status);
    })());
  try {
    // --run makes the server a command-line tool: as ovsdb-server, it says nothing on stderr unless something goes wrong.
    if (args.run !== undefined && options.ovs) daemon.vlog.set('console:warn');
    // Under OVS's name, the module names of OVS's -v specs (vlog, reconnect, …) are not nvs's: accept them as OVS does.
    for (const spec of options.verbose) daemon.vlog.set(spec, options.ovs !== undefined);
    // Record and replay name rows alike by drawing uuids from the recorded seed.
    if (args.replay !== undefined) {
      replay = StreamReplay.load(args.replay);
      seedUuids(replay.seed());
    } else if (args.record !== undefined) {
      recorder = new StreamRecorder(args.record);
      seedUuids(recorder.seed);
    }
    const journaled = recorder !== undefined || replay !== undefined;
    server = new OvsdbServer({
      log: rpcLog,
      tlsLog: daemon.vlog.logger('stream_ssl'),
      recorder,
      replay,
      // Probes depend on the clock, which a replay does not repeat.
      ...(journaled ? { probeIntervalMs: 0 } : {}),
    });
    // A daemon restarted by --monitor serves what its predecessor did, add-db/add-remote included.
    const saved = daemon.savedState() as { databases: string[]; remotes: string[] } | undefined;
    const dbPaths = saved?.databases ?? (args.databases.length > 0 ? args.databases : [join(options.ovs?.dbdir ?? options.rundir, 'conf.db')]);
    /** Database name → the file it was opened from. */
    const files = new Map<string, string>();
    // A replay opens a copy of the recorded database file: the log names the files by position, so both runs log alike.
    const logNameOf = (p: string): string => (journaled && dbPaths.includes(p) ? `database #${dbPaths.indexOf(p) + 1}` : p);
    const openDb = (p: string, create: boolean): void => {
      const dbPath = resolve(p);
      if ([...files.values()].includes(dbPath)) throw new DaemonError('DAEMON_USAGE', `ovsdb error: ${p}: already open`);
      if (!existsSync(dbPath)) {
        if (!create) throw new DaemonError('DAEMON_START_FAILED', `I/O error: ${p}: open failed (No such file or directory)`);
        const schemaPath = defaultSchemaPath();
        DbFile.create(dbPath, JSON.parse(readFileSync(schemaPath, 'utf8')));
        log.info({ path: dbPath, schema: schemaPath }, 'database file did not exist: created it from the Open_vSwitch schema');
      }
      const { file, db } = DbFile.open(dbPath, { log: storageLog, displayName: p, logName: logNameOf(p) }, (schema) => new Database(schema));
      try {
        server!.addDatabase(db, file);
      } catch (err) {
        file.close();
        throw err;
      }
      files.set(db.name, dbPath);
    };
    for (const p of dbPaths) openDb(p, !options.ovs);
    server.setTls(tlsConfig(server, args.tls));
    const remotes = saved?.remotes ?? (args.remotes.length > 0 || options.ovs ? args.remotes : [`punix:${join(options.rundir, 'db.sock')}`]);
    const saveState = (): void => daemon.saveState({ databases: [...files.values()], remotes });
    const dbRemotes = new DbRemotes(server, log);
    for (const r of remotes) {
      if (r.startsWith('db:')) dbRemotes.add(r);
      else await listenOrLog(server, r, log);
    }
    await dbRemotes.refresh();
    dbRemotes.startStatusTimer();
    const srv = server;
    unixctl = new UnixctlServer({
      path: unixctlPath(options, args.unixctl),
      log: ctlLog,
      version: VERSION,
      vlog: daemon.vlog,
      onExit: () => void stop(0),
      onAccept: recorder ? (socket) => recorder!.accepted('unixctl', 'unixctl', socket) : undefined,
    });
    unixctl.register('ovsdb-server/compact', '[DB]', 0, 1, (a) => {
      srv.compact(a[0]);
      return '';
    });
    unixctl.register('ovsdb-server/list-dbs', '', 0, 0, () => srv.databaseNames().map((n) => `${n}\n`).join(''));
    unixctl.register('ovsdb-server/add-db', 'DB', 1, 1, ([p]) => {
      openDb(p, false);
      saveState();
      return '';
    });
    unixctl.register('ovsdb-server/remove-db', 'DB', 1, 1, ([name]) => {
      if (!srv.removeDatabase(name)) throw new DaemonError('DAEMON_USAGE', 'Failed to find the database.');
      files.delete(name);
      saveState();
      return '';
    });
    unixctl.register('memory/show', '', 0, 0, () =>
      Object.entries(srv.memoryStats())
        .map(([k, v]) => `${k}:${v}`)
        .join(' ') + '\n',
    );
    unixctl.register('ovsdb-server/list-remotes', '', 0, 0, () => [...remotes].sort().map((r) => `${r}\n`).join(''));
    unixctl.register('ovsdb-server/add-remote', 'REMOTE', 1, 1, async ([r]) => {
      if (remotes.includes(r)) return '';
      if (r.startsWith('db:')) {
        dbRemotes.add(r);
        await dbRemotes.refresh();
      } else await srv.listen(r);
      remotes.push(r);
      saveState();
      return '';
    });
    unixctl.register('ovsdb-server/remove-remote', 'REMOTE', 1, 1, async ([r]) => {
      const i = remotes.indexOf(r);
      if (i < 0) throw new DaemonError('DAEMON_USAGE', "can't find remote");
      remotes.splice(i, 1);
      if (r.startsWith('db:')) {
        dbRemotes.remove(r);
        await dbRemotes.refresh();
      } else await srv.unlisten(r);
      saveState();
      return '';
    });
    // A replay opens no socket: its connections come from the file.
    if (!replay) await unixctl.listen();
    for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, () => void stop(0));
    log.info({ version: VERSION, databases: dbPaths.map(logNameOf), remotes, pid: process.pid }, 'nvs-dbserver started');
    daemon.ready();
    if (args.run !== undefined) runThenStop(args.run, log, stop);
    if (replay) {
      const ctl = unixctl;
      replay.run((target, remote, socket) => (target === 'unixctl' ? ctl.accept(socket) : srv.accept(socket, remote))).then(
        () => {
          if (stopping) return;
          log.error('replay file ended before the recorded exit command');
          void stop(1);
        },
        (err: Error) => {
          log.error({ err: err.message }, 'replay failed');
          process.stderr.write(`${options.name}: ${err.message}\n`);
          void stop(1);
        },
      );
    }
  } catch (err) {
    const message = err instanceof OvsdbError || err instanceof DaemonError ? err.message : String((err as Error)?.stack ?? err);
    log.error({ err: message }, 'start-up failed');
    daemon.fail(err);
    process.stderr.write(`${options.name}: ${message}\n`);
    await stop(1);
  }
  return done;
}
