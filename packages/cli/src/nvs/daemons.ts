/**
 * Starting, stopping and checking the two nvs daemons as background
 * processes in one run directory — what `nvs start|stop|status` do.
 *
 * Start launches each daemon with `--detach --pidfile --log-file`, which
 * returns only once the daemon is ready (see @nvs/ovsdb daemon.ts), then
 * checks that it answers on its unixctl socket. Stop asks each daemon to
 * `exit` over unixctl (a clean shutdown), falling back to SIGTERM via its
 * pid file, and waits until the process is gone.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { readPidfile, unixctlCall } from '@nvs/daemon';

const run = promisify(execFile);

/** Thrown when a daemon cannot be started or stopped; the message says what to look at. */
export class NvsControlError extends Error {
  constructor(
    readonly code: 'NVS_START_FAILED' | 'NVS_STOP_FAILED' | 'NVS_NO_BUILD',
    message: string,
  ) {
    super(message);
    this.name = 'NvsControlError';
  }
}

export const DAEMONS = ['nvs-dbserver', 'nvs-vswitchd'] as const;
export type DaemonName = (typeof DAEMONS)[number];

/** Where the bundled commands live: next to this bundle in dist/, or the repository's dist/ when run from source. */
export function binDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  if (existsSync(join(here, 'nvs-vswitchd.js'))) return here;
  return join(here, '..', '..', '..', '..', 'dist');
}

export function binPath(name: string): string {
  const p = join(binDir(), `${name}.js`);
  if (!existsSync(p)) throw new NvsControlError('NVS_NO_BUILD', `${p} is missing: build nvs first (npm run build)`);
  return p;
}

export function ctlSocket(rundir: string, name: DaemonName): string {
  return join(rundir, `${name}.ctl`);
}

export interface DaemonStatus {
  name: DaemonName;
  pid?: number;
  running: boolean;
  version?: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function status(rundir: string): Promise<DaemonStatus[]> {
  const out: DaemonStatus[] = [];
  for (const name of DAEMONS) {
    const pid = readPidfile(join(rundir, `${name}.pid`));
    let version: string | undefined;
    try {
      version = (await unixctlCall(ctlSocket(rundir, name), 'version', [])).trim();
    } catch {
      version = undefined;
    }
    out.push({ name, pid: pid !== undefined && alive(pid) ? pid : undefined, running: version !== undefined, version });
  }
  return out;
}

async function launch(name: DaemonName, args: string[]): Promise<void> {
  try {
    await run(process.execPath, [binPath(name), ...args], { timeout: 60_000 });
  } catch (err) {
    if (err instanceof NvsControlError) throw err;
    const e = err as { stderr?: string; message: string };
    throw new NvsControlError('NVS_START_FAILED', `${name} did not start: ${(e.stderr || e.message).trim()}`);
  }
}

/**
 * Starts whichever daemons are not running; resolves once both answer.
 * `verbose` specs go to nvs-vswitchd; `externalIds` (the cluster flags) are
 * written to Open_vSwitch external_ids, where nvs-vswitchd reads them, as
 * `ovs-vsctl set Open_vSwitch . external_ids:KEY=VALUE` would.
 */
export async function start(rundir: string, extra: { verbose?: string[]; externalIds?: Record<string, string> } = {}): Promise<DaemonStatus[]> {
  const common = ['--rundir', rundir, '--detach', '--pidfile', '--log-file'];
  const before = await status(rundir);
  if (!before[0].running) {
    await launch('nvs-dbserver', [...common, `--remote=punix:${join(rundir, 'db.sock')}`, join(rundir, 'conf.db')]);
    // The database needs its Open_vSwitch row before vswitchd has anything to follow.
    await run(process.execPath, [binPath('nvs-vsctl'), `--db=unix:${join(rundir, 'db.sock')}`, '--no-wait', 'init']).catch((err) => {
      throw new NvsControlError('NVS_START_FAILED', `initialising the database failed: ${(err.stderr || err.message).trim()}`);
    });
  }
  const ids = Object.entries(extra.externalIds ?? {});
  if (ids.length > 0) {
    await run(process.execPath, [binPath('nvs-vsctl'), `--db=unix:${join(rundir, 'db.sock')}`, '--no-wait', 'set', 'Open_vSwitch', '.', ...ids.map(([k, v]) => `external_ids:${k}=${v}`)]).catch((err) => {
      throw new NvsControlError('NVS_START_FAILED', `writing the cluster settings failed: ${(err.stderr || err.message).trim()}`);
    });
  }
  // Log levels name nvs-vswitchd's modules (nvs-dbserver takes its own with nvs-dbserver -v).
  const verbose = (extra.verbose ?? []).map((v) => `--verbose=${v}`);
  if (!before[1].running) await launch('nvs-vswitchd', [...common, ...verbose, `unix:${join(rundir, 'db.sock')}`]);
  const after = await status(rundir);
  for (const s of after) {
    if (!s.running) throw new NvsControlError('NVS_START_FAILED', `${s.name} does not answer on ${ctlSocket(rundir, s.name)}; see ${join(rundir, `${s.name}.log`)}`);
  }
  return after;
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  for (let waited = 0; waited < ms; waited += 50) {
    if (!alive(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !alive(pid);
}

/** Stops vswitchd, then the database server. Returns the names of the daemons it stopped. */
export async function stop(rundir: string): Promise<string[]> {
  const stopped: string[] = [];
  for (const name of [...DAEMONS].reverse()) {
    const pid = readPidfile(join(rundir, `${name}.pid`));
    const answered = await unixctlCall(ctlSocket(rundir, name), 'exit', []).then(
      () => true,
      () => false,
    );
    if (pid === undefined || !alive(pid)) {
      if (answered) stopped.push(name);
      continue;
    }
    if (!(await waitGone(pid, answered ? 10_000 : 0))) {
      process.kill(pid, 'SIGTERM');
      if (!(await waitGone(pid, 10_000))) throw new NvsControlError('NVS_STOP_FAILED', `${name} (pid ${pid}) did not stop after SIGTERM`);
    }
    stopped.push(name);
  }
  return stopped;
}
