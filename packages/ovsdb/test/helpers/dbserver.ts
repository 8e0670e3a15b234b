// Test support for running the real nvs-dbserver program: bundles the bin
// with esbuild into a temp install layout (dist/ beside configs/, as the
// repository's own build does) so tests need no prior `npm run build`, starts
// it in a temp run directory, and runs the real OVS tools against it.
import { execFile, spawn, type ChildProcess, type ExecFileException } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';

export const REPO = resolve(import.meta.dirname, '..', '..', '..', '..');
export const SCHEMA = join(REPO, 'configs', 'vswitch.ovsschema');

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion without blocking the event loop; never throws for a non-zero exit. */
export function run(cmd: string, args: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<RunResult> {
  return new Promise((done) => {
    const child = execFile(cmd, args, { timeout: opts.timeoutMs ?? 20_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (err as ExecFileException).code : 0;
      done({ code: typeof code === 'number' ? code : 1, stdout: String(stdout), stderr: String(stderr) });
    });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
  });
}

/** Bundles nvs-dbserver once into `<tmp>/dist/nvs-dbserver.mjs` (+ `<tmp>/configs/`); returns the bundle path. */
export async function bundleDbServer(): Promise<{ bin: string; root: string }> {
  const root = mkdtempSync(join(tmpdir(), 'nvs-dbserver-bundle-'));
  mkdirSync(join(root, 'configs'));
  copyFileSync(SCHEMA, join(root, 'configs', 'vswitch.ovsschema'));
  const bin = join(root, 'dist', 'nvs-dbserver.mjs');
  await build({
    entryPoints: [join(REPO, 'packages', 'ovsdb', 'src', 'bin', 'nvs-dbserver.ts')],
    outfile: bin,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    banner: { js: "import { createRequire as __nvsCreateRequire } from 'node:module'; const require = __nvsCreateRequire(import.meta.url);" },
    logLevel: 'warning',
  });
  return { bin, root };
}

async function canConnect(path: string): Promise<boolean> {
  return new Promise((r) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      r(true);
    });
    s.once('error', () => r(false));
  });
}

/** One nvs-dbserver process in its own run directory. */
export class DbServer {
  readonly rundir: string;
  readonly sock: string;
  readonly ctl: string;
  readonly dbPath: string;
  proc: ChildProcess | undefined;
  stderr = '';

  constructor(
    private readonly bin: string,
    rundir?: string,
  ) {
    this.rundir = rundir ?? mkdtempSync(join(tmpdir(), 'nvs-dbserver-run-'));
    this.sock = join(this.rundir, 'db.sock');
    this.ctl = join(this.rundir, 'nvs-dbserver.ctl');
    this.dbPath = join(this.rundir, 'conf.db');
  }

  /** `unix:` remote string for the OVS tools. */
  get remote(): string {
    return `unix:${this.sock}`;
  }

  /** Starts the server (extra args appended) and waits until its socket and control socket accept connections. */
  async start(args: string[] = []): Promise<void> {
    this.stderr = '';
    const proc = spawn(process.execPath, [this.bin, '--rundir', this.rundir, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc = proc;
    proc.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    // Generous: on a loaded 2-core machine a cold node start can take seconds.
    for (let i = 0; i < 1200; i++) {
      if (proc.exitCode !== null) throw new Error(`nvs-dbserver exited with ${proc.exitCode}: ${this.stderr}`);
      if (existsSync(this.ctl) && (await canConnect(this.sock)) && (await canConnect(this.ctl))) return;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`nvs-dbserver did not start: ${this.stderr}`);
  }

  /** Stops the server with SIGTERM (or `signal`) and waits for it to exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill(signal);
    await exited;
  }

  /** Stops the server and removes the run directory. */
  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.rundir, { recursive: true, force: true });
  }

  vsctl(...args: string[]): Promise<RunResult> {
    return run('ovs-vsctl', [`--db=${this.remote}`, '--no-wait', '--timeout=10', ...args]);
  }
}
