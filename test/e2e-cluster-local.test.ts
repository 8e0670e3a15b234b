// One host in a cluster, no root needed: `nvs start --redis … --system-id …
// --tunnel-ip …` writes Open_vSwitch external_ids, nvs-vswitchd joins a real
// redis-server, and dummy ports with Interface external_ids:nvs-vni get the
// cluster's rules: a broadcast floods to the ports of its own network only,
// a known MAC goes straight to its port, a wrong nvs-vni is reported by
// cluster/show (through the real ovs-appctl too) while the others work, and
// the host's locations are in Redis.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { TestRedis, until } from '../packages/cluster/test/redis-server.ts';
import { NvsRun } from './e2e-harness.ts';
import { needsOvs } from './ovs-tools.ts';

const skipOvs = needsOvs('test/e2e-cluster-local', ['ovs-vsctl', 'ovs-appctl']);
const nvs = new NvsRun();
let redis: TestRedis;

beforeAll(async () => {
  redis = await TestRedis.start();
});
afterAll(async () => {
  await nvs.nvs('nvs', ['stop']);
  await nvs.cleanup();
  await redis.close();
});

const MAC = (n: number) => `02:00:00:00:01:0${n}`;

it.skipIf(skipOvs)('joins a cluster from nvs start flags and forwards by network', async () => {
  const start = await nvs.nvs('nvs', ['--rundir', nvs.rundir, 'start', '--redis', redis.url, '--system-id', 'solo', '--tunnel-ip', '192.0.2.10']);
  expect(start.code, start.stderr).toBe(0);
  const ids = await nvs.vsctl('get', 'Open_vSwitch', '.', 'external_ids');
  expect(ids.stdout).toContain(`nvs-redis="${redis.url}"`);
  expect(ids.stdout).toContain('system-id=solo');
  expect(ids.stdout).toContain('nvs-tunnel-ip="192.0.2.10"');
  const ports = [1, 2, 3].flatMap((n) => ['--', 'add-port', 'br-int', `p${n}`, '--', 'set', 'Interface', `p${n}`, 'type=dummy', `ofport_request=${n}`, `external_ids:nvs-vni=${n === 3 ? 200 : 100}`, `external_ids:attached-mac=${MAC(n)}`]);
  const add = await nvs.vsctl('add-br', 'br-int', '--', 'set', 'Bridge', 'br-int', 'datapath_type=dummy', 'fail_mode=secure', ...ports, '--', 'add-port', 'br-int', 'p4', '--', 'set', 'Interface', 'p4', 'type=dummy', 'external_ids:nvs-vni=abc');
  expect(add.code, add.stderr).toBe(0);

  await until(async () => (await nvs.ovsAppctl('cluster/show')).stdout.includes(`${MAC(2)} local p2 published`), 10_000, 'p2 published');
  const text = (await nvs.ovsAppctl('cluster/show')).stdout;
  expect(text).toContain('host solo: tunnel ip 192.0.2.10, vxlan, bridge br-int');
  expect(text).toMatch(/redis redis:\/\/127\.0\.0\.1:\d+: connected/);
  expect(text).toContain('problem: p4: nvs-vni: "abc" is not a network id');
  expect(text).toContain('network 100:');
  expect(text).toContain('network 200:');

  // Broadcast from p1 reaches p2 (same network), not p3 (network 200); a known MAC goes to its port only.
  // (OpenFlow outputs as the trace shows them: datapath actions name datapath port numbers.)
  const outputs = (trace: string) => [...trace.matchAll(/^ {4}output:(\d+)$(?!\n\s+>> skipping)/gm)].map((m) => Number(m[1]));
  const flood = await nvs.appctl('ofproto/trace', 'br-int', `in_port=1,dl_src=${MAC(1)},dl_dst=ff:ff:ff:ff:ff:ff`);
  expect(outputs(flood.stdout), flood.stdout).toEqual([2]);
  const unicast = await nvs.appctl('ofproto/trace', 'br-int', `in_port=2,dl_src=${MAC(2)},dl_dst=${MAC(1)}`);
  expect(outputs(unicast.stdout), unicast.stdout).toEqual([1]);
  const alone = await nvs.appctl('ofproto/trace', 'br-int', `in_port=3,dl_src=${MAC(3)},dl_dst=ff:ff:ff:ff:ff:ff`);
  expect(alone.stdout).toMatch(/^Datapath actions: drop$/m);

  // The locations are in Redis, written by this host.
  const locs = await redis.cli('hgetall', 'nvs:{net:100}:locs');
  expect(locs).toContain(MAC(1));
  expect(locs).toMatch(/solo 192\.0\.2\.10 \d+/);
  // A port that leaves withdraws its location.
  expect((await nvs.vsctl('del-port', 'br-int', 'p2')).code).toBe(0);
  await until(async () => !(await redis.cli('hkeys', 'nvs:{net:100}:locs')).includes(MAC(2)), 10_000, 'p2 withdrawn');
}, 60_000);
