// Daemon start-up: argument parsing, pid files, vlog routing, and --detach
// (a real child process bundled with esbuild from a tiny entry point).
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ovsLogLine, parseDaemonArgs, programName, readPidfile, resolveRundir, unixctlPath, VLog, writePidfile } from '../src/daemon.ts';
import { unixctlCall } from '../src/unixctl.ts';

const run = promisify(execFile);

describe('daemon options', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'nvs-daemon-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('takes the shared options out and leaves the rest in order', () => {
    const { options, rest } = parseDaemonArgs(
      'nvs-x',
      ['--rundir', dir, 'unix:db.sock', '--pidfile', '--log-file=my.log', '-vconsole:off', '--verbose=bridge:dbg', '-v', '--detach', '--no-chdir', '--other'],
      {},
    );
    expect(rest).toEqual(['unix:db.sock', '--other']);
    expect(options).toEqual({
      name: 'nvs-x',
      rundir: dir,
      pidfile: join(dir, 'nvs-x.pid'),
      overwritePidfile: false,
      logFile: join(dir, 'my.log'),
      detach: true,
      monitor: false,
      noChdir: true,
      verbose: ['console:off', 'bridge:dbg', 'dbg'],
    });
  });

  it("takes OVS's directories and file names under an OVS name", () => {
    const env = { OVS_RUNDIR: join(dir, 'run'), OVS_LOGDIR: join(dir, 'log'), OVS_SYSCONFDIR: join(dir, 'etc'), NVS_RUNDIR: join(dir, 'nvs') };
    const { options } = parseDaemonArgs('ovsdb-server', ['--pidfile', '--log-file', '--overwrite-pidfile', '--monitor', '--user=nobody'], env);
    expect(options).toMatchObject({
      rundir: join(dir, 'run'),
      pidfile: join(dir, 'run', 'ovsdb-server.pid'),
      logFile: join(dir, 'log', 'ovsdb-server.log'),
      ovs: { dbdir: join(dir, 'etc', 'openvswitch'), pkgdatadir: '/usr/share/openvswitch' },
      overwritePidfile: true,
      monitor: true,
      user: 'nobody',
    });
    expect(unixctlPath(options)).toBe(join(dir, 'run', `ovsdb-server.${process.pid}.ctl`));
    expect(unixctlPath(options, 'x.ctl')).toBe(join(dir, 'run', 'x.ctl'));
    // Under its own name the same environment leaves OVS's variables alone.
    expect(parseDaemonArgs('nvs-dbserver', ['--pidfile'], env).options.pidfile).toBe(join(dir, 'nvs', 'nvs-dbserver.pid'));
    expect(programName('nvs-dbserver', 'ovsdb-server', '/usr/sbin/ovsdb-server')).toBe('ovsdb-server');
    expect(programName('nvs-dbserver', 'ovsdb-server', '/opt/nvs/dist/nvs-dbserver.js')).toBe('nvs-dbserver');
  });

  it('takes the run directory from NVS_RUNDIR and creates it', () => {
    const want = join(dir, 'a', 'b');
    expect(resolveRundir(undefined, { NVS_RUNDIR: want })).toBe(want);
    expect(existsSync(want)).toBe(true);
    expect(resolveRundir(join(dir, 'c'), { NVS_RUNDIR: want })).toBe(join(dir, 'c'));
    expect(parseDaemonArgs('p', ['--pidfile=/abs/p.pid'], { NVS_RUNDIR: want }).options.pidfile).toBe('/abs/p.pid');
  });

  it('rejects a pid file of a live process and replaces a stale one', () => {
    const pidfile = join(dir, 'x.pid');
    writeFileSync(pidfile, '1\n'); // init is always alive
    expect(() => writePidfile(pidfile)).toThrow(expect.objectContaining({ code: 'DAEMON_ALREADY_RUNNING' }));
    writeFileSync(pidfile, '999999999\n');
    writePidfile(pidfile);
    expect(readPidfile(pidfile)).toBe(process.pid);
  });
});

describe('VLog', () => {
  it("writes OVS's log lines under format 'ovs'", () => {
    const line = ovsLogLine('{"level":40,"time":1796676389000,"pid":7,"name":"ovs-vswitchd","module":"bridge","port":"p1","msg":"could not create interface p1"}', 3);
    expect(line).toBe('2026-12-07T20:46:29.000Z|00003|bridge|WARN|could not create interface p1 {"port":"p1"}\n');
    const lines: string[] = [];
    const vlog = new VLog('x', { console: { write: (l: string) => lines.push(l) }, format: 'ovs' });
    vlog.logger('a').warn('careful');
    vlog.logger('a').info('fine');
    expect(lines).toEqual([expect.stringMatching(/^\d{4}-\d\d-\d\dT[\d:.]+Z\|00001\|a\|WARN\|careful\n$/), expect.stringMatching(/\|00002\|a\|INFO\|fine\n$/)]);
  });

  it('routes by module and destination and rejects bad specs', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nvs-vlog-'));
    const console: string[] = [];
    const file = join(dir, 'log', 'x.log');
    const vlog = new VLog('x', { console: { write: (l: string) => console.push(l) }, file });
    const a = vlog.logger('a');
    const b = vlog.logger('b');
    vlog.set('console:off');
    vlog.set('a:file:dbg');
    a.debug('a-debug');
    b.debug('b-debug');
    b.info('b-info');
    expect(console).toEqual([]);
    const text = readFileSync(file, 'utf8');
    expect(text).toContain('"msg":"a-debug"');
    expect(text).toContain('"module":"a"');
    expect(text).not.toContain('b-debug');
    expect(text).toContain('b-info');
    expect(vlog.list()).toMatch(/a\s+OFF\s+DBG/);
    expect(() => vlog.set('a:loud')).toThrow(expect.objectContaining({ code: 'VLOG_BAD_SPEC' }));
    // Command-line specs may name modules that appear later.
    expect(() => vlog.set('later:file:dbg')).toThrow(expect.objectContaining({ code: 'VLOG_BAD_SPEC' }));
    vlog.set('later:file:dbg', true);
    vlog.logger('later').debug('late-debug');
    expect(readFileSync(file, 'utf8')).toContain('late-debug');
    vlog.close();
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('--detach', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'nvs-detach-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('returns once the child is ready, leaving it serving with a pid file; reports start-up errors', async () => {
    const src = resolve(import.meta.dirname, '../src');
    const entry = join(dir, 'entry.ts');
    writeFileSync(
      entry,
      `import { parseDaemonArgs, startDaemon } from ${JSON.stringify(join(src, 'daemon.ts'))};
import { UnixctlServer } from ${JSON.stringify(join(src, 'unixctl.ts'))};
const { options, rest } = parseDaemonArgs('toy', process.argv.slice(2));
const daemon = await startDaemon(options);
try {
  if (rest.includes('--fail')) throw new Error('cannot open the database');
  const log = daemon.vlog.logger('toy');
  const server = new UnixctlServer({ path: options.rundir + '/toy.ctl', log, version: 'toy 1', vlog: daemon.vlog,
    onExit: async () => { await server.close(); daemon.close(); process.exit(0); } });
  await server.listen();
  log.info('ready');
  daemon.ready();
} catch (err) { daemon.fail(err); daemon.close(); process.exit(1); }
`,
    );
    const out = join(dir, 'toy.mjs');
    await build({ entryPoints: [entry], outfile: out, bundle: true, platform: 'node', format: 'esm', logLevel: 'silent',
      banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" } });
    const rundir = join(dir, 'run');
    await run(process.execPath, [out, '--rundir', rundir, '--detach', '--pidfile', '--log-file']);
    const pid = readPidfile(join(rundir, 'toy.pid'));
    expect(pid).toBeGreaterThan(0);
    expect(await unixctlCall(join(rundir, 'toy.ctl'), 'version', [])).toBe('toy 1\n');
    await unixctlCall(join(rundir, 'toy.ctl'), 'exit', []);
    for (let i = 0; i < 100 && existsSync(join(rundir, 'toy.pid')); i++) await new Promise((r) => setTimeout(r, 20));
    expect(existsSync(join(rundir, 'toy.pid'))).toBe(false);
    expect(readFileSync(join(rundir, 'toy.log'), 'utf8')).toContain('"msg":"ready"');

    const failed = await run(process.execPath, [out, '--rundir', rundir, '--detach', '--fail']).catch((e) => e);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('error: cannot open the database');
  });
});
