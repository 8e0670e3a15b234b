// `nvs start|status|demo|stop` as a user runs them, in a temp run directory:
// start returns once both daemons answer (pid files and logs in the run
// directory), the demo shows traffic crossing a bridge (between namespaces as
// root, and on dummy ports), stop ends both.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { NvsRun, run } from './e2e-harness.ts';
import { privilegesMissing } from './privileges.ts';
import { needsOvs } from './ovs-tools.ts';

const skipOvs = needsOvs('test/e2e-nvs', ['ovs-vsctl']);

// The demo between namespaces over tap ports needs privileges; the --dummy demo runs anyway.
const namespaceDemo = privilegesMissing('test/e2e-nvs: nvs demo between network namespaces') === undefined;

const nvs = new NvsRun();
afterAll(() => nvs.cleanup());

it.skipIf(skipOvs)('starts, reports, demonstrates and stops nvs', async () => {
  const start = await nvs.nvs('nvs', ['--rundir', nvs.rundir, 'start']);
  expect(start.code, start.stderr).toBe(0);
  expect(start.stdout).toMatch(/nvs-dbserver: running \(pid \d+\)\nnvs-vswitchd: running \(pid \d+\)/);
  for (const f of ['nvs-dbserver.pid', 'nvs-vswitchd.pid', 'nvs-dbserver.log', 'nvs-vswitchd.log', 'db.sock', 'nvs-vswitchd.ctl']) {
    expect(existsSync(join(nvs.rundir, f)), f).toBe(true);
  }
  // NVS_RUNDIR works as well as --rundir.
  const status = await nvs.nvs('nvs', ['status']);
  expect(status.code).toBe(0);
  expect(status.stdout).toMatch(/nvs-vswitchd: running \(pid \d+, nvs-vswitchd \(nvs\) [\d.]+\)/);
  // A second start leaves the running daemons alone.
  const pid = nvs.pid('nvs-vswitchd');
  expect((await nvs.nvs('nvs', ['start'])).code).toBe(0);
  expect(nvs.pid('nvs-vswitchd')).toBe(pid);

  // As root, `nvs demo` pings between two namespaces over tap ports (e2e-tap.test.ts covers that path
  // in detail); --dummy, and any run without root, injects packets into dummy ports.
  if (namespaceDemo) {
    const real = await nvs.nvs('nvs', ['demo']);
    expect(real.code, real.stderr + real.stdout).toBe(0);
    expect(real.stdout).toContain('3 packets transmitted, 3 received');
    expect(real.stdout).toMatch(/demo-h1 1\/\d+: \(tap\)/);
    expect((await run('ip', ['netns', 'list'])).stdout).not.toContain('nvs-demo-h');
  }
  const demo = await nvs.nvs('nvs', ['demo', '--dummy']);
  expect(demo.code, demo.stderr).toBe(0);
  expect(demo.stdout).toContain('nvs is running in');
  // h1's web packets reached h3 (p3) and the monitor (p4); ssh was dropped by its rule.
  expect(demo.stdout).toMatch(/n_packets=3, n_bytes=180, idle_age=\d+, priority=100,tcp,nw_dst=10\.0\.0\.3,tp_dst=80 actions=output:3,output:4/);
  expect(demo.stdout).toMatch(/n_packets=1, n_bytes=60, idle_age=\d+, priority=200,tcp,tp_dst=22 actions=drop/);
  expect(demo.stdout).toMatch(/port {2}4: rx pkts=0, [^\n]*\n\s+tx pkts=4,/);
  expect(demo.stdout).toContain('Datapath actions: drop');
  // The demo removed its bridge and, since nvs was already running, left it running.
  expect((await nvs.vsctl('list-br')).stdout).toBe('');
  expect((await nvs.nvs('nvs', ['status'])).code).toBe(0);

  const stop = await nvs.nvs('nvs', ['stop']);
  expect(stop.code, stop.stderr).toBe(0);
  expect(stop.stdout).toBe('stopped nvs-vswitchd, nvs-dbserver\n');
  expect(existsSync(join(nvs.rundir, 'nvs-vswitchd.pid'))).toBe(false);
  const after = await nvs.nvs('nvs', ['status']);
  expect(after.code).toBe(3);
  expect(after.stdout).toBe('nvs-dbserver: not running\nnvs-vswitchd: not running\n');
});
