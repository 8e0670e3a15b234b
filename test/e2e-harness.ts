/**
 * What the end-to-end tests share: a temp run directory with nvs-dbserver
 * and nvs-vswitchd started from the bundled commands in dist/ (as users run
 * them: `--detach --pidfile --log-file`), the real OVS tools pointed at it,
 * and a cleanup that ends every process it started (by pid file) and removes
 * the directory. The build (`npm run build`) must have run first; the full
 * test run does that.
 */
import { execFile, type ExecFileException } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '..');
export const DIST = join(ROOT, 'dist');

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion; never throws for a non-zero exit (the caller asserts). */
export function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolvePromise) => {
    const child = execFile(cmd, args, { env: { ...process.env, ...opts.env }, timeout: opts.timeoutMs ?? 30_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? ((err as ExecFileException).code as number | undefined) ?? 1 : 0;
      resolvePromise({ code: typeof code === 'number' ? code : 1, stdout: String(stdout), stderr: String(stderr) });
    });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
  });
}

/** Whether a process with this pid exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export class NvsRun {
  readonly rundir: string;
  readonly db: string;

  constructor() {
    for (const bin of ['nvs-dbserver', 'nvs-vswitchd', 'nvs-ofctl', 'nvs-appctl', 'nvs-vsctl', 'nvs']) {
      if (!existsSync(join(DIST, `${bin}.js`))) throw new Error(`${join(DIST, bin)}.js is missing: run "npm run build" first`);
    }
    this.rundir = mkdtempSync(join(tmpdir(), 'nvs-e2e-'));
    this.db = `unix:${join(this.rundir, 'db.sock')}`;
  }

  /**
   * Runs one of the bundled nvs commands with this run directory, as it is
   * installed (through its #! line), under `wrap` (a command such as
   * setpriv) when given.
   */
  nvs(bin: string, args: string[], opts: { input?: string; wrap?: string[] } = {}): Promise<RunResult> {
    const [cmd, ...pre] = [...(opts.wrap ?? []), join(DIST, `${bin}.js`)];
    return run(cmd, [...pre, ...args], { env: { NVS_RUNDIR: this.rundir }, input: opts.input });
  }

  async startDb(): Promise<void> {
    const r = await this.nvs('nvs-dbserver', ['--rundir', this.rundir, '--detach', '--pidfile', '--log-file', `--remote=punix:${join(this.rundir, 'db.sock')}`, join(this.rundir, 'conf.db')]);
    if (r.code !== 0) throw new Error(`nvs-dbserver failed: ${r.stderr}`);
    const init = await this.vsctl('--no-wait', 'init');
    if (init.code !== 0) throw new Error(`ovs-vsctl init failed: ${init.stderr}`);
  }

  /**
   * Starts nvs-vswitchd. By default with `--enable-dummy=override`, so every
   * port (LOCAL ports too) is a dummy port that netdev-dummy/receive can feed,
   * and no test creates kernel devices; `dummy: 'plain'` gives plain
   * `--enable-dummy`, where internal ports are tap devices when run as root.
   */
  async startSwitch(extra: string[] = [], opts: { dummy?: 'override' | 'plain'; wrap?: string[] } = {}): Promise<void> {
    const dummy = opts.dummy === 'plain' ? '--enable-dummy' : '--enable-dummy=override';
    const r = await this.nvs('nvs-vswitchd', ['--rundir', this.rundir, '--detach', '--pidfile', '--log-file', dummy, '--disable-system', ...extra, this.db], { wrap: opts.wrap });
    if (r.code !== 0) throw new Error(`nvs-vswitchd failed: ${r.stderr}\n${this.log('nvs-vswitchd')}`);
  }

  /** The real ovs-vsctl against our database (waits for cur_cfg unless --no-wait is passed). */
  vsctl(...args: string[]): Promise<RunResult> {
    return run('ovs-vsctl', [`--db=${this.db}`, '--timeout=20', ...args]);
  }

  /** The real ovs-appctl against nvs-vswitchd's control socket. */
  ovsAppctl(...args: string[]): Promise<RunResult> {
    return run('ovs-appctl', ['-t', join(this.rundir, 'nvs-vswitchd.ctl'), ...args]);
  }

  appctl(...args: string[]): Promise<RunResult> {
    return this.nvs('nvs-appctl', args);
  }

  ofctl(...args: string[]): Promise<RunResult> {
    return this.nvs('nvs-ofctl', args);
  }

  pid(name: string): number | undefined {
    try {
      return Number.parseInt(readFileSync(join(this.rundir, `${name}.pid`), 'utf8'), 10);
    } catch {
      return undefined;
    }
  }

  log(name: string): string {
    try {
      return readFileSync(join(this.rundir, `${name}.log`), 'utf8');
    } catch {
      return '';
    }
  }

  /** Stops a daemon: SIGTERM, then SIGKILL if it lingers; waits until it is gone. */
  async kill(name: string): Promise<void> {
    const pid = this.pid(name);
    if (pid === undefined || !alive(pid)) return;
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 200 && alive(pid); i++) await new Promise((r) => setTimeout(r, 25));
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  }

  async cleanup(): Promise<void> {
    await this.kill('nvs-vswitchd');
    await this.kill('nvs-dbserver');
    rmSync(this.rundir, { recursive: true, force: true });
  }
}

/** Polls `check` until it returns a truthy value (a condition, never a timing threshold). */
export async function eventually<T>(check: () => Promise<T | undefined | false>, what: string, tries = 200): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const v = await check();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`gave up waiting for ${what}`);
}
