// nvs-appctl against a real unixctl server in a temp run directory.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { UnixctlServer } from '@nvs/daemon';
import { runAppctl } from '../src/appctl/main.ts';

let dir: string;
let server: UnixctlServer;

function io() {
  const out = { stdout: '', stderr: '' };
  return { out, io: { stdout: { write: (s: string) => (out.stdout += s) }, stderr: { write: (s: string) => (out.stderr += s) }, env: { NVS_RUNDIR: dir } } };
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nvs-appctl-'));
  server = new UnixctlServer({ path: join(dir, 'nvs-vswitchd.ctl'), log: pino({ level: 'silent' }), version: 'nvs-vswitchd (nvs) 0.1.0' });
  server.register('say', 'WORDS...', 1, Infinity, (args) => `${args.join(' ')}\n`);
  server.register('broken', '', 0, 0, () => {
    throw new Error('no such bridge "br9"');
  });
  await server.listen();
});
afterEach(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

it('finds the default target in NVS_RUNDIR and passes arguments after the command untouched', async () => {
  const { out, io: cli } = io();
  expect(await runAppctl(['say', '-v', '--x=1'], cli)).toBe(0);
  expect(out.stdout).toBe('-v --x=1\n');
});

it('accepts -t with a path or a name and --rundir', async () => {
  const a = io();
  expect(await runAppctl(['-t', join(dir, 'nvs-vswitchd.ctl'), 'version'], a.io)).toBe(0);
  expect(a.out.stdout).toBe('nvs-vswitchd (nvs) 0.1.0\n');
  const b = io();
  expect(await runAppctl(['--rundir', dir, '--target=nvs-vswitchd', 'version'], { ...b.io, env: {} })).toBe(0);
  expect(b.out.stdout).toContain('nvs-vswitchd');
});

it('exits 2 with the server error, 1 when nothing listens or on bad usage', async () => {
  const a = io();
  expect(await runAppctl(['broken'], a.io)).toBe(2);
  expect(a.out.stderr).toContain('no such bridge "br9"');
  const b = io();
  expect(await runAppctl(['-t', 'nobody', 'version'], b.io)).toBe(1);
  expect(b.out.stderr).toContain('is the daemon running?');
  const c = io();
  expect(await runAppctl(['--bogus'], c.io)).toBe(1);
  expect(c.out.stderr).toContain("unrecognized option '--bogus'");
  const d = io();
  expect(await runAppctl([], d.io)).toBe(1);
});
