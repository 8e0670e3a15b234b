// The unixctl server against the real ovs-appctl (Debian's openvswitch-common)
// and against our own client.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VLog } from '../src/daemon.ts';
import { UnixctlServer, unixctlCall } from '../src/unixctl.ts';
import { needsOvs } from '../../../test/ovs-tools.ts';

const skipOvs = needsOvs('daemon unixctl against ovs-appctl', ['ovs-appctl']);

const run = promisify(execFile);

async function appctl(sock: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('ovs-appctl', ['-t', sock, ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('UnixctlServer', () => {
  let dir: string;
  let server: UnixctlServer;
  let vlog: VLog;
  let exited = 0;
  const lines: string[] = [];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nvs-unixctl-'));
    vlog = new VLog('test', { console: { write: (l: string) => lines.push(l) } });
    vlog.logger('bridge');
    server = new UnixctlServer({
      path: join(dir, 'test.ctl'),
      log: vlog.logger('unixctl'),
      version: 'nvs-test (nvs) 0.1.0',
      vlog,
      onExit: () => exited++,
    });
    server.register('echo/join', 'A [B...]', 1, 3, (args) => `${args.join('+')}\n`);
    server.register('fail', '', 0, 0, () => {
      throw new Error('it went wrong');
    });
    await server.listen();
  });

  afterEach(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it.skipIf(skipOvs)('answers the real ovs-appctl: version, list-commands, a command with arguments', async () => {
    const sock = server.path;
    expect((await appctl(sock, 'version')).stdout).toBe('nvs-test (nvs) 0.1.0\n');
    const list = await appctl(sock, 'list-commands');
    expect(list.stdout).toContain('The available commands are:');
    expect(list.stdout).toMatch(/ {2}echo\/join {15}A \[B\.\.\.\]/);
    expect(list.stdout).toContain('  vlog/set');
    expect((await appctl(sock, 'echo/join', 'a', 'b c')).stdout).toBe('a+b c\n');
  });

  it.skipIf(skipOvs)('reports errors as ovs-appctl expects them (string error, exit status 2)', async () => {
    const sock = server.path;
    const unknown = await appctl(sock, 'no/such');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('"no/such" is not a valid command');
    const few = await appctl(sock, 'echo/join');
    expect(few.code).toBe(2);
    expect(few.stderr).toContain('requires at least 1 arguments');
    const many = await appctl(sock, 'echo/join', '1', '2', '3', '4');
    expect(many.stderr).toContain('at most 3 arguments');
    const failed = await appctl(sock, 'fail');
    expect(failed.code).toBe(2);
    expect(failed.stderr).toContain('it went wrong');
  });

  it.skipIf(skipOvs)('changes log levels per module with vlog/set and shows them with vlog/list', async () => {
    const sock = server.path;
    const log = vlog.logger('bridge');
    log.debug('hidden');
    expect((await appctl(sock, 'vlog/set', 'bridge:console:dbg')).code).toBe(0);
    log.debug('shown');
    expect(lines.join('')).not.toContain('hidden');
    expect(lines.join('')).toContain('shown');
    const list = (await appctl(sock, 'vlog/list')).stdout;
    expect(list).toMatch(/bridge\s+DBG\s+INFO/);
    const bad = await appctl(sock, 'vlog/set', 'nosuchmodule:dbg');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('unknown module');
  });

  it.skipIf(skipOvs)('runs exit after replying', async () => {
    expect((await appctl(server.path, 'exit')).code).toBe(0);
    await new Promise((r) => setImmediate(r));
    expect(exited).toBe(1);
  });

  it('serves our own client, which maps error replies to UNIXCTL_REMOTE', async () => {
    expect(await unixctlCall(server.path, 'echo/join', ['x', 'y'])).toBe('x+y\n');
    await expect(unixctlCall(server.path, 'fail', [])).rejects.toMatchObject({ code: 'UNIXCTL_REMOTE', message: 'it went wrong' });
    await expect(unixctlCall(join(dir, 'none.ctl'), 'version', [])).rejects.toMatchObject({ code: 'UNIXCTL_CONNECT' });
  });

  it('survives garbage on the socket and keeps serving', async () => {
    const { connect } = await import('node:net');
    const s = connect(server.path);
    await new Promise((r) => s.once('connect', r));
    s.write('this is not json');
    await new Promise((r) => s.once('close', r));
    expect(await unixctlCall(server.path, 'version', [])).toBe('nvs-test (nvs) 0.1.0\n');
  });

  it('replaces a stale socket file but refuses a live one', async () => {
    const other = new UnixctlServer({ path: server.path, log: pino({ level: 'silent' }), version: 'x' });
    await expect(other.listen()).rejects.toMatchObject({ code: 'UNIXCTL_SOCKET_IN_USE' });
    const stale = join(dir, 'stale.ctl');
    writeFileSync(stale, '');
    const third = new UnixctlServer({ path: stale, log: pino({ level: 'silent' }), version: 'third' });
    await third.listen();
    expect(await unixctlCall(stale, 'version', [])).toBe('third\n');
    await third.close();
  });
});
