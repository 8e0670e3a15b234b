// The host-level drop-in: nvs's daemons put in place of OVS's under OVS's
// names (links named ovsdb-server and ovs-vswitchd to the dist bundles), and
// started as ovs-ctl starts OVS's, with OVS's directories inside a temporary
// root. The real ovs-vsctl and ovs-appctl then find them the way they find
// OVS's: by the locked pid file in OVS_RUNDIR and <program>.<pid>.ctl.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alive, ROOT } from './e2e-harness.ts';
import { needsOvs } from './ovs-tools.ts';

const run = promisify(execFile);
const skipOvs = needsOvs('ovs-dropin', ['ovs-vsctl', 'ovs-appctl', 'ovsdb-tool']);

async function waitFor(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(skipOvs)('nvs under OVS names on a host (ovs-ctl style)', () => {
  let top: string;
  let env: NodeJS.ProcessEnv;
  let dirs: { bin: string; run: string; log: string; db: string };
  const pids: number[] = [];

  beforeAll(() => {
    top = mkdtempSync(join(tmpdir(), 'nvs-dropin-'));
    dirs = { bin: join(top, 'usr/sbin'), run: join(top, 'var/run/openvswitch'), log: join(top, 'var/log/openvswitch'), db: join(top, 'etc/openvswitch') };
    for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
    symlinkSync(join(ROOT, 'dist/nvs-dbserver.js'), join(dirs.bin, 'ovsdb-server'));
    symlinkSync(join(ROOT, 'dist/nvs-vswitchd.js'), join(dirs.bin, 'ovs-vswitchd'));
    const { NVS_RUNDIR: _drop, ...rest } = process.env;
    env = { ...rest, OVS_RUNDIR: dirs.run, OVS_LOGDIR: dirs.log, OVS_DBDIR: dirs.db, PATH: `${dirs.bin}:${process.env.PATH}` };
  });

  afterAll(() => {
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
    rmSync(top, { recursive: true, force: true });
  });

  it('starts ovsdb-server then ovs-vswitchd, answers ovs-appctl -t, and stops by pid file', async () => {
    const db = join(dirs.db, 'conf.db');
    await run('ovsdb-tool', ['create', db, join(ROOT, 'configs/vswitch.ovsschema')], { env });
    // ovs-ctl's command lines (start_ovsdb, do_start_forwarding), directories left to their defaults.
    await run(
      'ovsdb-server',
      [db, '-vconsole:emer', '-vsyslog:err', '-vfile:info', `--remote=punix:${dirs.run}/db.sock`, '--private-key=db:Open_vSwitch,SSL,private_key',
        '--certificate=db:Open_vSwitch,SSL,certificate', '--bootstrap-ca-cert=db:Open_vSwitch,SSL,ca_cert', '--remote=db:Open_vSwitch,Open_vSwitch,manager_options',
        '--no-chdir', '--log-file', '--pidfile', '--detach', '--monitor'],
      { env },
    );
    pids.push(Number(readFileSync(join(dirs.run, 'ovsdb-server.pid'), 'utf8')));
    await run('ovs-vsctl', ['--no-wait', 'init'], { env });
    await run('ovs-vswitchd', ['unix:' + join(dirs.run, 'db.sock'), '-vconsole:emer', '-vsyslog:err', '-vfile:info', '--mlockall', '--no-chdir', '--log-file', '--pidfile', '--detach', '--monitor'], { env });
    const vswitchdPid = Number(readFileSync(join(dirs.run, 'ovs-vswitchd.pid'), 'utf8'));
    pids.push(vswitchdPid);

    // ovs-appctl reads the pid file, checks its lock, and connects to <rundir>/<program>.<pid>.ctl.
    expect((await run('ovs-appctl', ['-t', 'ovs-vswitchd', 'version'], { env })).stdout).toMatch(/^nvs-vswitchd \(nvs\)/);
    expect((await run('ovs-appctl', ['-t', 'ovsdb-server', 'ovsdb-server/list-dbs'], { env })).stdout.split('\n')).toContain('Open_vSwitch');
    expect(existsSync(join(dirs.run, `ovs-vswitchd.${vswitchdPid}.ctl`))).toBe(true);
    expect(existsSync(join(dirs.log, 'ovs-vswitchd.log')) && existsSync(join(dirs.log, 'ovsdb-server.log'))).toBe(true);
    // The database works through the default socket, and vswitchd applies what it is told.
    await run('ovs-vsctl', ['add-br', 'br0', '--', 'set', 'bridge', 'br0', 'datapath_type=dummy'], { env });
    expect((await run('ovs-vsctl', ['list-br'], { env })).stdout).toBe('br0\n');

    // --monitor: ovsdb-server killed as by a crash comes back (a new pid), serving the remote added at run time.
    const appctl = async (...a: string[]): Promise<string> => (await run('ovs-appctl', ['-t', 'ovsdb-server', ...a], { env })).stdout;
    await appctl('ovsdb-server/add-remote', `punix:${dirs.run}/extra.sock`);
    const serverPidfile = join(dirs.run, 'ovsdb-server.pid');
    const crashed = Number(readFileSync(serverPidfile, 'utf8'));
    process.kill(crashed, 'SIGSEGV');
    const restarted = (): number => Number(readFileSync(serverPidfile, 'utf8'));
    await waitFor('the monitor to restart ovsdb-server', () => !alive(crashed) && restarted() !== crashed && existsSync(join(dirs.run, `ovsdb-server.${restarted()}.ctl`)));
    pids.push(restarted());
    expect(await appctl('ovsdb-server/list-remotes')).toContain('extra.sock');
    await waitFor('the new server to listen on the added remote', () => existsSync(join(dirs.run, 'extra.sock')));
    expect((await run('ovs-vsctl', ['--db=unix:' + join(dirs.run, 'extra.sock'), 'list-br'], { env })).stdout).toBe('br0\n');

    // A second ovsdb-server on the same pid file is refused: the lock is held.
    await expect(run('ovsdb-server', [db, '--pidfile', '--detach', '--no-chdir', `--remote=punix:${dirs.run}/db2.sock`], { env })).rejects.toMatchObject({
      stderr: expect.stringContaining('already running'),
    });

    // ovs-ctl stops each daemon by the pid in its pid file; the pid file goes with it.
    for (const name of ['ovs-vswitchd', 'ovsdb-server']) {
      const pidfile = join(dirs.run, `${name}.pid`);
      const pid = Number(readFileSync(pidfile, 'utf8'));
      process.kill(pid, 'SIGTERM');
      await waitFor(`${name} to exit`, () => !alive(pid) && !existsSync(pidfile));
    }
    // With the pid file gone, ovs-appctl finds no daemon.
    await expect(run('ovs-appctl', ['-t', 'ovsdb-server', 'version'], { env })).rejects.toMatchObject({ stderr: expect.stringContaining('ovsdb-server.pid') });
  }, 60_000);
});
