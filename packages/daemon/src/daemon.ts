/**
 * What every nvs daemon (nvs-dbserver, nvs-vswitchd) shares on its command
 * line and at start-up, in the habits of OVS's daemons:
 *
 * - the run directory (`--rundir DIR`, else `NVS_RUNDIR`, else /run/nvs),
 *   created when missing;
 * - `--pidfile[=FILE]` (default `<rundir>/<name>.pid`): a pid file naming a
 *   live process is an error, a stale one is replaced; it is removed on exit;
 * - `--detach`: the process re-spawns itself in a new session and returns only
 *   once the child says it is ready (over an inherited pipe, fd 3), or with the
 *   child's error if it failed to start;
 * - `--monitor`: a monitor process runs the daemon as its child and starts it
 *   again when it dies of a crash signal (SIGSEGV, SIGABRT, …), as OVS's
 *   monitor does; state the daemon saves ({@link Daemon.saveState}) carries
 *   over to the restarted daemon;
 * - `--log-file[=FILE]` (default `<rundir>/<name>.log`), `--no-chdir`,
 *   `-v`/`--verbose[=SPEC]` with OVS's vlog spec syntax (`module:dest:level`);
 * - {@link VLog}: a pino root logger writing to stderr and the log file, a child
 *   logger per module, and levels per module and destination that `vlog/set`
 *   changes at run time.
 *
 * Invoked under OVS's own names (`ovsdb-server`, `ovs-vswitchd`: a link or a
 * wrapper named so, see {@link programName}), a daemon behaves as OVS's does
 * so that OVS's tools and scripts find it: directories from `OVS_RUNDIR`,
 * `OVS_LOGDIR`, `OVS_DBDIR`, `OVS_SYSCONFDIR`, `OVS_PKGDATADIR` (and OVS's
 * defaults), the log file in the log directory, the control socket at
 * `<rundir>/<program>.<pid>.ctl`, and a pid file that the daemon holds an
 * fcntl write lock on for as long as it lives (OVS's `read_pidfile`, used by
 * `ovs-appctl -t`, takes an unlocked pid file for a dead daemon). Under its
 * own names a daemon keeps nvs's defaults.
 *
 * Options are parsed by hand because OVS's optional values only ever come as
 * `--opt=VALUE`: a generic parser would swallow the next positional argument.
 */
import { spawn } from 'node:child_process';
import { constants, tmpdir } from 'node:os';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import pino, { type Logger } from 'pino';

/** Thrown when a daemon's command line or start-up environment is unusable. */
export class DaemonError extends Error {
  constructor(
    readonly code: 'DAEMON_USAGE' | 'DAEMON_ALREADY_RUNNING' | 'DAEMON_START_FAILED' | 'VLOG_BAD_SPEC',
    message: string,
  ) {
    super(message);
    this.name = 'DaemonError';
  }
}

export const DEFAULT_RUNDIR = '/run/nvs';

/** The OVS daemons nvs's daemons stand in for: under these names they take OVS's directories and file names. */
const OVS_PROGRAMS = new Set(['ovsdb-server', 'ovs-vswitchd']);

/**
 * The name this program was invoked as: `ovsName` when the script was run
 * through a link or file of that name (process.argv[1]; a `#!` script's
 * argv[0] never reaches node), else `nvsName`.
 */
export function programName(nvsName: string, ovsName: string, argv1: string | undefined = process.argv[1]): string {
  return argv1 !== undefined && basename(argv1).replace(/\.js$/, '') === ovsName ? ovsName : nvsName;
}

/** Whether `name` is one of OVS's daemon names (and so takes OVS's directories and file names). */
export function isOvsName(name: string): boolean {
  return OVS_PROGRAMS.has(name);
}

/** OVS's directories, from its environment variables or its (Debian) defaults, as OVS's lib/dirs.c reads them. */
export interface OvsDirs {
  rundir: string;
  logdir: string;
  dbdir: string;
  pkgdatadir: string;
}

export function ovsDirs(env: NodeJS.ProcessEnv = process.env): OvsDirs {
  const sysconfdir = env.OVS_SYSCONFDIR;
  return {
    rundir: resolve(env.OVS_RUNDIR ?? '/var/run/openvswitch'),
    logdir: resolve(env.OVS_LOGDIR ?? '/var/log/openvswitch'),
    dbdir: resolve(env.OVS_DBDIR ?? (sysconfdir ? `${sysconfdir}/openvswitch` : '/etc/openvswitch')),
    pkgdatadir: resolve(env.OVS_PKGDATADIR ?? '/usr/share/openvswitch'),
  };
}

/** The run directory: `--rundir` wins over `NVS_RUNDIR`, then /run/nvs. Created when missing. */
export function resolveRundir(option?: string, env: NodeJS.ProcessEnv = process.env): string {
  const dir = resolve(option ?? env.NVS_RUNDIR ?? DEFAULT_RUNDIR);
  mkdirSync(dir, { recursive: true });
  return dir;
}

export interface DaemonOptions {
  /** Program name, used for default file names (`<name>.pid`, `<name>.log`). */
  name: string;
  /** OVS's directories when invoked under an OVS name ({@link isOvsName}), else undefined. */
  ovs?: OvsDirs;
  rundir: string;
  /** Absolute pid file path, or undefined when no pid file was asked for. */
  pidfile?: string;
  /** `--overwrite-pidfile`: replace the pid file even if a live daemon holds it. */
  overwritePidfile: boolean;
  detach: boolean;
  /** `--monitor`: a monitor process restarts the daemon when it crashes (see {@link startDaemon}). */
  monitor: boolean;
  /** `--user=USER[:GROUP]`: the user (and group) to run as once started. */
  user?: string;
  /** Absolute log file path, or undefined for stderr only. */
  logFile?: string;
  noChdir: boolean;
  /** vlog specs in command-line order (`-v` alone is `dbg`). */
  verbose: string[];
}

/**
 * Takes the shared daemon options out of `argv` and returns them with the
 * arguments left for the program. `--rundir` is resolved first so that the
 * default file names can live in it.
 */
export function parseDaemonArgs(
  name: string,
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): { options: DaemonOptions; rest: string[] } {
  let rundirOpt: string | undefined;
  let pidfile: string | true | undefined;
  let logFile: string | true | undefined;
  let detach = false;
  let noChdir = false;
  let overwritePidfile = false;
  let monitor = false;
  let user: string | undefined;
  const verbose: string[] = [];
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const eq = arg.indexOf('=');
    const flag = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    const value = arg.startsWith('--') && eq > 0 ? arg.slice(eq + 1) : undefined;
    switch (flag) {
      case '--rundir':
        if (value !== undefined) rundirOpt = value;
        else if (i + 1 < argv.length) rundirOpt = argv[++i];
        else throw new DaemonError('DAEMON_USAGE', '--rundir needs a directory');
        break;
      case '--pidfile':
        pidfile = value ?? true;
        break;
      case '--log-file':
        logFile = value ?? true;
        break;
      case '--detach':
        detach = true;
        break;
      case '--overwrite-pidfile':
        overwritePidfile = true;
        break;
      case '--monitor':
        monitor = true;
        break;
      case '--user':
        if (value !== undefined) user = value;
        else if (i + 1 < argv.length) user = argv[++i];
        else throw new DaemonError('DAEMON_USAGE', '--user needs a user name');
        break;
      case '--no-chdir':
        noChdir = true;
        break;
      case '--verbose':
        verbose.push(value ?? 'dbg');
        break;
      default:
        if (arg === '-v') verbose.push('dbg');
        else if (arg.startsWith('-v') && !arg.startsWith('--')) verbose.push(arg.slice(2));
        else rest.push(arg);
    }
  }
  const ovs = isOvsName(name) ? ovsDirs(env) : undefined;
  const rundir = ovs ? resolveRundir(rundirOpt ?? ovs.rundir, env) : resolveRundir(rundirOpt, env);
  const inDir = (dir: string, opt: string | true | undefined, suffix: string): string | undefined =>
    opt === undefined ? undefined : opt === true ? resolve(dir, `${name}.${suffix}`) : resolve(dir, opt);
  return {
    options: {
      name,
      ...(ovs ? { ovs } : {}),
      rundir,
      pidfile: inDir(rundir, pidfile, 'pid'),
      overwritePidfile,
      detach,
      monitor,
      ...(user !== undefined ? { user } : {}),
      logFile: inDir(ovs?.logdir ?? rundir, logFile, 'log'),
      noChdir,
      verbose,
    },
    rest,
  };
}

/**
 * The control socket: `given` (relative to the run directory), else
 * `<rundir>/<name>.<pid>.ctl` under an OVS name (where ovs-appctl looks for
 * it, with the pid from the pid file) or `<rundir>/<name>.ctl`.
 */
export function unixctlPath(options: DaemonOptions, given?: string): string {
  if (given !== undefined) return resolve(options.rundir, given);
  return resolve(options.rundir, options.ovs ? `${options.name}.${process.pid}.ctl` : `${options.name}.ctl`);
}

/** The usage lines for the options {@link parseDaemonArgs} understands. */
export const DAEMON_USAGE = `Daemon options:
  --rundir DIR            run directory (default: $NVS_RUNDIR or ${DEFAULT_RUNDIR};
                          as ovsdb-server/ovs-vswitchd: $OVS_RUNDIR or /var/run/openvswitch)
  --pidfile[=FILE]        create pidfile (default: <rundir>/<program>.pid)
  --overwrite-pidfile     with --pidfile, replace the pid file of a running daemon
  --detach                run in background as daemon
  --monitor               creates a process to monitor this daemon (restarts it when it crashes)
  --user=USER[:GROUP]     run as USER (and GROUP) once started
  --no-chdir              do not chdir to '/'
  --log-file[=FILE]       log to FILE (default: <rundir>/<program>.log;
                          as ovsdb-server/ovs-vswitchd: $OVS_LOGDIR or /var/log/openvswitch)
  -v, --verbose[=SPEC]    set logging levels: [module][:console|file][:off|emer|err|warn|info|dbg]`;

// ---------------------------------------------------------------- logging

/** OVS level names and pino's, mapped to pino's numeric levels ('off' is above all). */
const LEVELS: Record<string, number> = {
  off: Infinity,
  emer: 60,
  err: 50,
  warn: 40,
  info: 30,
  dbg: 20,
  fatal: 60,
  error: 50,
  debug: 20,
  trace: 10,
  silent: Infinity,
};
const LEVEL_NAMES: [number, string][] = [
  [Infinity, 'OFF'],
  [60, 'EMER'],
  [50, 'ERR'],
  [40, 'WARN'],
  [30, 'INFO'],
  [20, 'DBG'],
  [10, 'TRACE'],
];
const DESTINATIONS = ['console', 'file'] as const;
type Destination = (typeof DESTINATIONS)[number];

function levelName(n: number): string {
  return LEVEL_NAMES.find(([v]) => v === n)?.[1] ?? String(n);
}

function pinoLevel(n: number): string {
  if (n === Infinity) return 'silent';
  return pino.levels.labels[n] ?? 'info';
}

/** Where log lines go; a test passes its own sinks. */
export interface VLogSinks {
  console?: { write(line: string): unknown };
  /** Log file path; created (with its directory) when given. */
  file?: string;
  /**
   * `ovs`: lines as OVS writes them (`2026-12-07T20:46:29.186Z|00001|bridge|WARN|text`,
   * other fields appended as JSON), for the tools and scripts that read OVS's
   * logs; default: pino's JSON lines.
   */
  format?: 'json' | 'ovs';
}

/** OVS's default log line pattern. */
const OVS_PATTERN = '%D{%Y-%m-%dT%H:%M:%S.###Z}|%05N|%c|%p|%m';

/**
 * One pino JSON line as OVS writes a log line, after `pattern` (OVS's
 * `-vPATTERN:DEST:PATTERN` conversions: %c module, %p level, %m message, %N
 * sequence number, %D/%d date, %A program, %P pid, %n newline, %% and an
 * optional width, `-` for left alignment); fields besides the message are
 * appended to it as JSON.
 */
export function ovsLogLine(json: string, seq: number, pattern = OVS_PATTERN): string {
  const { level, time, module, msg, pid, name, hostname: _host, ...rest } = JSON.parse(json) as Record<string, unknown>;
  const extra = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : '';
  const when = new Date(typeof time === 'number' ? time : Date.now()).toISOString();
  const fields: Record<string, () => string> = {
    c: () => String(module ?? 'main'),
    p: () => levelName(Number(level)),
    m: () => `${String(msg ?? '')}${extra}`,
    N: () => String(seq),
    D: () => when,
    d: () => when,
    A: () => String(name ?? ''),
    P: () => String(pid ?? ''),
    n: () => '\n',
    '%': () => '%',
  };
  const line = pattern.replace(/%(-?)(0?)(\d*)([a-zA-Z%])(\{[^}]*\})?/g, (all, left: string, zero: string, width: string, conv: string) => {
    const f = fields[conv];
    if (!f) return all;
    const v = f();
    const w = Number(width || 0);
    return left ? v.padEnd(w) : v.padStart(w, zero ? '0' : ' ');
  });
  return `${line}\n`;
}

/**
 * Logging with OVS's vlog model on top of pino: one child logger per module,
 * and a level per (module, destination). The pino child runs at the most
 * verbose of its destinations, so disabled calls stay cheap; a metadata
 * stream then routes each line to the destinations whose level it meets.
 */
export class VLog {
  readonly root: Logger;
  private readonly modules = new Map<string, { logger: Logger; levels: Record<Destination, number> }>();
  private readonly moduleOf = new WeakMap<object, string>();
  private readonly defaults: Record<Destination, number> = { console: 30, file: 30 };
  /** Levels set (on the command line) for modules that do not exist yet: applied when they appear. */
  private readonly pending = new Map<string, Partial<Record<Destination, number>>>();
  private fileFd: number | undefined;
  private seq = 0;
  /** Line patterns per destination (`-vPATTERN:DEST:PATTERN`), used in the `ovs` format. */
  private readonly patterns: Partial<Record<Destination, string>> = {};

  constructor(
    name: string,
    private readonly sinks: VLogSinks = { console: process.stderr },
  ) {
    if (sinks.file) {
      mkdirSync(dirname(sinks.file), { recursive: true });
      this.fileFd = openSync(sinks.file, 'a');
    }
    const route = {
      [Symbol.for('pino.metadata')]: true,
      lastLevel: 0,
      lastLogger: undefined as object | undefined,
      write: (line: string) => this.route(route.lastLevel, route.lastLogger, line),
    };
    this.root = pino({ name, level: 'trace', base: { pid: process.pid } }, route);
  }

  /** The logger for `module` (created on first use at the current default levels). */
  logger(module: string): Logger {
    let m = this.modules.get(module);
    if (!m) {
      const logger = this.root.child({ module });
      m = { logger, levels: { ...this.defaults, ...this.pending.get(module) } };
      this.modules.set(module, m);
      this.moduleOf.set(logger, module);
      this.apply(m);
    }
    return m.logger;
  }

  /**
   * Applies one vlog spec: words separated by ':' naming a module (or `ANY`),
   * a destination (`console`, `file`, `syslog` — accepted, nvs has no syslog —
   * or `ANY`) and a level; omitted parts mean all. Throws VLOG_BAD_SPEC; with
   * `future`, an unknown word is taken as a module created later (modules
   * appear as components start, after the command line is read).
   */
  set(spec: string, future = false): void {
    const pattern = /^pattern:(console|file|syslog|any):(.*)$/i.exec(spec);
    if (pattern) {
      const d = pattern[1].toLowerCase();
      for (const dest of DESTINATIONS) if (d === dest || d === 'any') this.patterns[dest] = pattern[2];
      return;
    }
    let futureModule: string | undefined;
    let module: string | undefined;
    let dest: Destination | 'syslog' | undefined;
    let level: number | undefined;
    for (const word of spec.split(':')) {
      const w = word.toLowerCase();
      if (w === '' || w === 'any') continue;
      if (w in LEVELS) level = LEVELS[w];
      else if (w === 'console' || w === 'file' || w === 'syslog') dest = w;
      else if (this.modules.has(word)) module = word;
      else if (future && /^[a-z][a-z0-9_-]*$/i.test(word)) futureModule = word;
      else
        throw new DaemonError(
          'VLOG_BAD_SPEC',
          `unknown module, destination or level "${word}" in "${spec}" (modules: ${[...this.modules.keys()].join(', ')})`,
        );
    }
    if (dest === 'syslog') return;
    const newLevel = level ?? LEVELS.dbg;
    const dests = dest ? [dest] : DESTINATIONS;
    if (futureModule) {
      const p = this.pending.get(futureModule) ?? {};
      for (const d of dests) p[d] = newLevel;
      this.pending.set(futureModule, p);
      return;
    }
    const targets = module ? [this.modules.get(module)!] : [...this.modules.values()];
    for (const d of dests) if (!module) this.defaults[d] = newLevel;
    for (const m of targets) {
      for (const d of dests) m.levels[d] = newLevel;
      this.apply(m);
    }
  }

  /** The `vlog/list` table. */
  list(): string {
    const rows = [...this.modules.entries()].sort(([a], [b]) => a.localeCompare(b));
    const pad = (s: string, n: number) => s.padEnd(n);
    const lines = [`${pad('', 20)}console    file`, `${pad('', 20)}-------    ------`];
    for (const [name, m] of rows) {
      lines.push(`${pad(name, 20)}${pad(levelName(m.levels.console), 11)}${levelName(m.levels.file)}`);
    }
    return lines.join('\n') + '\n';
  }

  /** Closes the log file; later lines go to the console only. */
  close(): void {
    if (this.fileFd !== undefined) closeSync(this.fileFd);
    this.fileFd = undefined;
  }

  private apply(m: { logger: Logger; levels: Record<Destination, number> }): void {
    const active = DESTINATIONS.filter((d) => d === 'console' || this.fileFd !== undefined);
    m.logger.level = pinoLevel(Math.min(...active.map((d) => m.levels[d])));
  }

  private route(level: number, logger: object | undefined, line: string): void {
    const module = logger ? this.moduleOf.get(logger) : undefined;
    const levels = module ? this.modules.get(module)!.levels : this.defaults;
    const toConsole = level >= levels.console && this.sinks.console !== undefined;
    const toFile = this.fileFd !== undefined && level >= levels.file;
    if (!toConsole && !toFile) return;
    const ovs = this.sinks.format === 'ovs';
    const seq = ++this.seq;
    if (toConsole) this.sinks.console!.write(ovs ? ovsLogLine(line, seq, this.patterns.console) : line);
    if (toFile) writeSync(this.fileFd!, ovs ? ovsLogLine(line, seq, this.patterns.file) : line);
  }
}

// ---------------------------------------------------------------- process life

/** The environment variable naming the fd on which a detached child reports readiness. */
const READY_FD_ENV = 'NVS_DAEMON_READY_FD';

/**
 * A running daemon's process-level state: its logger, pid file and the
 * readiness handshake with a detaching parent. Create it with {@link startDaemon}.
 */
export class Daemon {
  private readyFd: number | undefined;
  private closed = false;

  constructor(
    readonly options: DaemonOptions,
    readonly vlog: VLog,
  ) {
    const fd = process.env[READY_FD_ENV];
    if (fd !== undefined) {
      this.readyFd = Number(fd);
      delete process.env[READY_FD_ENV];
    }
  }

  /**
   * What the daemon saved with {@link saveState} before a crash, when this is
   * a daemon restarted by its `--monitor` process; undefined otherwise.
   */
  savedState(): unknown {
    const path = process.env[MONITOR_STATE_ENV];
    if (path === undefined || !existsSync(path)) return undefined;
    try {
      return JSON.parse(readFileSync(path, 'utf8'));
    } catch {
      return undefined;
    }
  }

  /** Keeps `state` (JSON) for the daemon its `--monitor` process starts after a crash; does nothing without `--monitor`. */
  saveState(state: unknown): void {
    const path = process.env[MONITOR_STATE_ENV];
    if (path === undefined) return;
    writeFileSync(`${path}.tmp`, JSON.stringify(state));
    renameSync(`${path}.tmp`, path);
  }

  /** Tells a waiting parent (under `--detach`) that start-up is complete, then leaves the directory. */
  ready(): void {
    this.report('ready\n');
    if (this.options.detach && !this.options.noChdir) process.chdir('/');
  }

  /** Tells a waiting parent that start-up failed, with the message it should print. */
  fail(err: unknown): void {
    this.report(`error: ${err instanceof Error ? err.message : String(err)}\n`);
  }

  /** Removes the pid file and closes the log; idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.options.pidfile) removePidfile(this.options.pidfile);
    this.vlog.close();
  }

  private report(text: string): void {
    if (this.readyFd === undefined) return;
    try {
      writeSync(this.readyFd, text);
      closeSync(this.readyFd);
    } catch {
      // The parent has gone away; nothing is waiting for the message.
    }
    this.readyFd = undefined;
  }
}

/**
 * Starts the process side of a daemon. Under `--detach` in the parent this
 * re-spawns the program and never resolves: it exits with 0 once the child is
 * ready, or prints the child's error and exits with 1. In the child (or
 * without `--detach`) it sets up logging and the pid file and returns.
 *
 * Under an OVS name the pid file must be fcntl-locked by the daemon's own
 * process, which node cannot do: the daemon is then run through
 * {@link PIDFILE_LOCKER} (perl, present on every Debian host), which writes
 * and locks the pid file and execs node with the locked descriptor kept open
 * (a POSIX record lock survives exec, and the pid stays the same). Without
 * `--detach` the first process waits for that child and exits as it does.
 */
export async function startDaemon(options: DaemonOptions, console: VLogSinks['console'] = process.stderr): Promise<Daemon> {
  const lockedByLocker = process.env[PIDFILE_FD_ENV] !== undefined;
  delete process.env[PIDFILE_FD_ENV];
  const needLocker = options.ovs !== undefined && options.pidfile !== undefined && !lockedByLocker;
  const monitored = process.env[MONITOR_STATE_ENV] !== undefined;
  if (options.detach && process.env[READY_FD_ENV] === undefined && !monitored) {
    // Under --monitor the detached process is the monitor, which holds no pid file.
    await detachAndWait(needLocker && !options.monitor ? options : undefined);
  } else if (options.monitor && !monitored) {
    await monitorDaemon(needLocker ? options : undefined);
  } else if (needLocker) {
    await runLockedAndWait(options);
  }
  const detachedChild = options.detach;
  const vlog = new VLog(options.name, { console: detachedChild ? undefined : console, file: options.logFile, format: options.ovs ? 'ovs' : 'json' });
  for (const spec of options.verbose) vlog.set(spec, true);
  if (options.pidfile && !lockedByLocker) writePidfile(options.pidfile, options.overwritePidfile);
  if (options.user !== undefined) switchUser(options.user);
  return new Daemon(options, vlog);
}

/** The command that runs this program again with the same arguments, through the pid file locker when `lock` is given. */
function respawnCommand(lock: DaemonOptions | undefined): [string, string[]] {
  const self = [process.execPath, ...process.execArgv, process.argv[1], ...process.argv.slice(2)];
  if (!lock) return [self[0], self.slice(1)];
  return ['perl', ['-e', PIDFILE_LOCKER, lock.pidfile!, lock.overwritePidfile ? '1' : '0', ...self]];
}

async function detachAndWait(lock: DaemonOptions | undefined): Promise<never> {
  const [cmd, args] = respawnCommand(lock);
  const child = spawn(cmd, args, {
    detached: true,
    stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
    env: { ...process.env, [READY_FD_ENV]: '3' },
  });
  const pipe = child.stdio[3] as Readable;
  let text = '';
  pipe.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
  const status = await new Promise<number>((resolveStatus) => {
    pipe.on('end', () => resolveStatus(text.startsWith('ready') ? 0 : 1));
    child.on('exit', () => resolveStatus(text.startsWith('ready') ? 0 : 1));
  });
  if (status !== 0) {
    process.stderr.write(text || `${process.argv[1]}: the detached daemon exited before it was ready\n`);
  }
  child.unref();
  pipe.destroy();
  process.exit(status);
}

/** The environment variable naming the file where a monitored daemon keeps state for its successor. */
const MONITOR_STATE_ENV = 'NVS_MONITOR_STATE';

/** Deaths that OVS's monitor takes for a crash and answers with a restart. */
const CRASH_SIGNALS = new Set(['SIGABRT', 'SIGALRM', 'SIGBUS', 'SIGFPE', 'SIGILL', 'SIGPIPE', 'SIGSEGV', 'SIGXCPU', 'SIGXFSZ']);

/**
 * `--monitor`: runs the daemon as a child (through the pid file locker when
 * `lock` is given, so the pid file names the daemon, not the monitor) and
 * starts it again whenever it dies of a crash signal; any other exit ends the
 * monitor with the daemon's status. A daemon that crashes within 10 s of its
 * start is restarted after 1 s, so a crash loop does not spin. Under
 * `--detach` the first daemon reports readiness to the waiting parent through
 * the monitor's inherited pipe; later ones report to nobody.
 */
async function monitorDaemon(lock: DaemonOptions | undefined): Promise<never> {
  const stateDir = mkdtempSync(join(tmpdir(), 'nvs-monitor-'));
  const env: NodeJS.ProcessEnv = { ...process.env, [MONITOR_STATE_ENV]: join(stateDir, 'state.json') };
  let readyFd = process.env[READY_FD_ENV] !== undefined ? Number(process.env[READY_FD_ENV]) : undefined;
  let child: ReturnType<typeof spawn> | undefined;
  let stopping = false;
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.on(sig, () => {
      stopping = true;
      child?.kill(sig);
    });
  }
  const [cmd, args] = respawnCommand(lock);
  for (;;) {
    const started = Date.now();
    const stdio: Array<'inherit' | 'ignore' | number> = readyFd === undefined ? ['inherit', 'inherit', 'inherit'] : ['ignore', 'ignore', 'ignore', readyFd];
    const childEnv = { ...env };
    if (readyFd === undefined) delete childEnv[READY_FD_ENV];
    else childEnv[READY_FD_ENV] = '3';
    child = spawn(cmd, args, { stdio, env: childEnv });
    if (readyFd !== undefined) {
      // Only the daemon holds the pipe now: the parent sees its end when the daemon reports.
      closeSync(readyFd);
      readyFd = undefined;
    }
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((r) => child!.on('exit', (c, sg) => r([c, sg])));
    if (stopping || signal === null || !CRASH_SIGNALS.has(signal)) {
      rmSync(stateDir, { recursive: true, force: true });
      process.exit(code ?? (signal ? 128 + (constants.signals[signal] ?? 0) : 1));
    }
    process.stderr.write(`${process.argv[1]}: daemon (pid ${child.pid}) died, killed (${signal}), restarting\n`);
    if (Date.now() - started < 10_000) await new Promise((r) => setTimeout(r, 1000));
  }
}

/** Runs the daemon as a child holding the locked pid file, passes signals on, and exits with its status. */
async function runLockedAndWait(options: DaemonOptions): Promise<never> {
  const [cmd, args] = respawnCommand(options);
  const child = spawn(cmd, args, { stdio: 'inherit' });
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, () => child.kill(sig));
  const status = await new Promise<number>((r) => child.on('exit', (code, signal) => r(code ?? (signal ? 128 + (constants.signals[signal] ?? 0) : 1))));
  process.exit(status);
}

/** `--user=USER[:GROUP]`: drops to that user (and its groups) as OVS's daemons do after start-up. */
function switchUser(spec: string): void {
  const [user, group] = spec.split(':');
  if (process.getuid?.() !== 0) {
    throw new DaemonError('DAEMON_START_FAILED', `--user=${spec}: only root can switch users`);
  }
  (process as unknown as { initgroups(u: string, g: string): void }).initgroups(user, group || user);
  process.setgid!(group || user);
  process.setuid!(user);
}

/** The environment variable naming the descriptor on which the locker holds the pid file's lock. */
const PIDFILE_FD_ENV = 'NVS_PIDFILE_FD';

/**
 * Perl run as `perl -e LOCKER PIDFILE OVERWRITE CMD...`: refuses a pid file
 * another live process holds locked (unless OVERWRITE is 1), writes its own
 * pid to a temporary file, takes an fcntl write lock on it, renames it into
 * place (as OVS does: the pid file never exists unlocked) and execs CMD with
 * the descriptor left open and named in NVS_PIDFILE_FD. `struct flock` is
 * packed for 64-bit Linux: l_type, l_whence (shorts), l_start, l_len (off_t),
 * l_pid (pid_t).
 */
export const PIDFILE_LOCKER = `
use strict; use Fcntl;
my ($path, $overwrite, @cmd) = @ARGV;
sub refuse {
  my ($msg) = @_;
  print STDERR $msg;
  # A detaching parent waits for its answer on the readiness descriptor.
  my $fd = $ENV{'${READY_FD_ENV}'};
  if (defined $fd && open(my $ready, '>&=', $fd)) { print $ready "error: $msg"; }
  exit 1;
}
my $flock = sub { pack('s s x4 q q i x4', $_[0], 0, 0, 0, 0) };
if ($overwrite ne '1' && open(my $old, '+<', $path)) {
  my $q = $flock->(F_WRLCK);
  if (fcntl($old, F_GETLK, $q)) {
    my ($type, $pid) = (unpack('s s x4 q q i x4', $q))[0, 4];
    refuse("$path: already running as pid $pid, aborting\n") if $type != F_UNLCK;
  }
  close($old);
}
my $tmp = "$path.tmp$$";
sysopen(my $fh, $tmp, O_RDWR | O_CREAT | O_TRUNC, 0644) or refuse("$tmp: $!\n");
fcntl($fh, F_SETLK, $flock->(F_WRLCK)) or refuse("$tmp: cannot lock: $!\n");
syswrite($fh, "$$\n") or refuse("$tmp: $!\n");
rename($tmp, $path) or refuse("$path: $!\n");
fcntl($fh, F_SETFD, 0) or refuse("$path: $!\n");
$ENV{'${PIDFILE_FD_ENV}'} = fileno($fh);
exec { $cmd[0] } @cmd or refuse("$cmd[0]: $!\n");
`;

/** Whether a process with this pid exists (EPERM means it exists but is not ours). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Reads the pid in a pid file, or undefined when the file is missing or unreadable. */
export function readPidfile(path: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Writes our pid, replacing a stale file; a file naming another live process is an error unless `overwrite`. */
export function writePidfile(path: string, overwrite = false): void {
  const old = readPidfile(path);
  if (!overwrite && old !== undefined && old !== process.pid && processAlive(old)) {
    throw new DaemonError('DAEMON_ALREADY_RUNNING', `${path}: already running as pid ${old}, aborting`);
  }
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${process.pid}\n`);
}

/** Removes our pid file (reading it drops the fcntl lock on it, which no longer matters once we are exiting). */
function removePidfile(path: string): void {
  if (readPidfile(path) === process.pid && existsSync(path)) unlinkSync(path);
}
