// nvs-vswitchd's command line: ovs-vswitchd's options as scripts use them.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { parseVswitchdArgs } from '../src/args.ts';

const dir = mkdtempSync(join(tmpdir(), 'nvs-args-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('takes an ovs-vswitchd command line', () => {
  const a = parseVswitchdArgs(
    ['unix:/var/run/x/db.sock', '--pidfile', '--detach', '--no-chdir', '--log-file=/tmp/v.log', '--unixctl=ctl.sock', '--enable-dummy=override', '--disable-system', '-vconsole:off', '--verbose=udpif:dbg'],
    { NVS_RUNDIR: dir },
  );
  expect(a).toMatchObject({
    remote: 'unix:/var/run/x/db.sock',
    unixctlPath: join(dir, 'ctl.sock'),
    dummyOverride: true,
    noRestore: false,
    daemon: { rundir: dir, pidfile: join(dir, 'nvs-vswitchd.pid'), detach: true, noChdir: true, logFile: '/tmp/v.log', verbose: ['console:off', 'udpif:dbg'] },
  });
});

it('defaults under the run directory', () => {
  const a = parseVswitchdArgs(['--rundir', dir, '--no-restore'], {});
  expect(a.remote).toBe(`unix:${join(dir, 'db.sock')}`);
  expect(a.unixctlPath).toBe(join(dir, 'nvs-vswitchd.ctl'));
  expect(a.noRestore).toBe(true);
  expect(a.daemon.pidfile).toBeUndefined();
});

it('refuses what it does not understand, with the reason', () => {
  expect(() => parseVswitchdArgs(['--frobnicate'], { NVS_RUNDIR: dir })).toThrow("unrecognized option '--frobnicate'");
  expect(() => parseVswitchdArgs(['tcp:1.2.3.4:6640'], { NVS_RUNDIR: dir })).toThrow('database remote must be unix:PATH');
  expect(() => parseVswitchdArgs(['--enable-dummy=maybe'], { NVS_RUNDIR: dir })).toThrow('--enable-dummy takes "override" or "system"');
  expect(parseVswitchdArgs(['--help'], { NVS_RUNDIR: dir }).print).toContain('usage: nvs-vswitchd [OPTIONS] [DATABASE]');
  expect(parseVswitchdArgs(['-V'], { NVS_RUNDIR: dir }, 'nvs-vswitchd (nvs) 0.1.0').print).toBe('nvs-vswitchd (nvs) 0.1.0');
});
