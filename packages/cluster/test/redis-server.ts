// Starts a real redis-server (Debian's) for a test: a free port, its own
// temporary directory, no persistence, on 127.0.0.1 or (as root) on an
// address inside a network namespace; `stop` kills it, `start` again brings
// it back on the same port (empty, as after a crash without persistence).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function answers(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(port, host);
    c.once('connect', () => {
      c.end();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

export class TestRedis {
  private proc: ChildProcess | undefined;
  readonly dir = mkdtempSync(join(tmpdir(), 'nvs-cluster-redis-'));

  private constructor(
    readonly port: number,
    readonly bind: string,
    readonly netns: string | undefined,
  ) {}

  /** `netns`: run inside this network namespace, listening on `bind` there (the readiness check goes through redis-cli in it). */
  static async start(opts: { bind?: string; netns?: string } = {}): Promise<TestRedis> {
    const r = new TestRedis(await freePort(), opts.bind ?? '127.0.0.1', opts.netns);
    await r.start();
    return r;
  }

  get url(): string {
    return `redis://${this.bind}:${this.port}`;
  }

  /** Runs redis-cli against this server (in its namespace); resolves with its output. */
  async cli(...args: string[]): Promise<string> {
    const argv = ['redis-cli', '-h', this.bind, '-p', String(this.port), ...args];
    const [cmd, ...rest] = this.netns ? ['ip', 'netns', 'exec', this.netns, ...argv] : argv;
    return new Promise((resolve, reject) => {
      execFile(cmd, rest, { timeout: 5000 }, (err, stdout) => (err ? reject(err) : resolve(String(stdout))));
    });
  }

  async start(): Promise<void> {
    // Inside a test namespace, other namespaces connect over the underlay: no protected mode (it admits loopback only).
    const argv = ['redis-server', '--port', String(this.port), '--bind', this.bind, '--save', '', '--appendonly', 'no', '--dir', this.dir, '--protected-mode', this.netns ? 'no' : 'yes'];
    const [cmd, ...rest] = this.netns ? ['ip', 'netns', 'exec', this.netns, ...argv] : argv;
    this.proc = spawn(cmd, rest, { stdio: 'ignore' });
    for (let i = 0; i < 100; i++) {
      const up = this.netns ? await this.cli('ping').then((o) => o.trim() === 'PONG', () => false) : await answers(this.bind, this.port);
      if (up) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    await this.stop();
    throw new Error(`redis-server did not start on port ${this.port}`);
  }

  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = undefined;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });
  }

  async close(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Polls `check` until it returns true (or throws the last failure after `ms`). */
export async function until(check: () => boolean | Promise<boolean>, ms = 5000, what = 'condition'): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    if (await check()) return Date.now() - t0;
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A real redis-sentinel (Debian's) watching `master` under the name `mymaster`, quorum 1. */
export class TestSentinel {
  private proc: ChildProcess | undefined;

  private constructor(
    readonly port: number,
    readonly dir: string,
  ) {}

  static async start(master: TestRedis): Promise<TestSentinel> {
    const dir = mkdtempSync(join(tmpdir(), 'nvs-cluster-sentinel-'));
    const s = new TestSentinel(await freePort(), dir);
    // Sentinel rewrites its configuration file: it must be its own, writable.
    const conf = join(dir, 'sentinel.conf');
    writeFileSync(conf, `port ${s.port}\nbind 127.0.0.1\ndir ${dir}\nsentinel monitor mymaster 127.0.0.1 ${master.port} 1\n`);
    s.proc = spawn('redis-sentinel', [conf], { stdio: 'ignore' });
    await until(() => answers('127.0.0.1', s.port), 5000, 'redis-sentinel to listen');
    return s;
  }

  get url(): string {
    return `redis-sentinel://127.0.0.1:${this.port}/mymaster`;
  }

  async close(): Promise<void> {
    const p = this.proc;
    if (p && p.exitCode === null) {
      await new Promise<void>((resolve) => {
        p.once('exit', () => resolve());
        p.kill('SIGKILL');
      });
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
