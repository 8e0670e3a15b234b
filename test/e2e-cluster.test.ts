// Many hosts on Redis, for real: three "hosts" as network namespaces, each
// running its own nvs (own run directory, nvs-vswitchd inside the host's
// namespace), joined by an underlay of veth links to a Linux bridge in a
// fourth namespace, where one real redis-server (Debian's) runs. Each host's
// br-int has a VXLAN port with remote_ip=flow key=flow and VM-like ports:
// veth pairs whose far end sits in a namespace of its own, with Interface
// external_ids nvs-vni and attached-mac as libvirt would set them.
// Checked: VMs on different hosts ping on the same VNI and not across VNIs;
// a VM moved to another host (its veth moved between host namespaces) is
// reached again, and the outage is measured; killing redis-server keeps
// established traffic flowing, and a restarted (empty) Redis is refilled by
// the hosts' reconciliation. Needs root; everything is deleted after.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestRedis, until } from '../packages/cluster/test/redis-server.ts';
import { NvsRun, run } from './e2e-harness.ts';
import { needsOvs } from './ovs-tools.ts';
import { privilegesMissing } from './privileges.ts';

const skipOvs = needsOvs('test/e2e-cluster', ['ovs-vsctl']);
const skipWhy = privilegesMissing('test/e2e-cluster: three hosts in network namespaces');

// Names unique to this run (namespaces and devices are global): prefix nvcl.
const tag = String(process.pid % 10000);
const UNDERLAY = `nvcl${tag}ul`;
const REDIS_IP = '10.77.0.254';
const hostNs = (i: number) => `nvcl${tag}h${i}`;
const hostIp = (i: number) => `10.77.0.${i}`;

interface Vm {
  ns: string;
  /** The host-side veth end: the bridge port. */
  port: string;
  mac: string;
  ip: string;
  vni: number;
}
const vm = (n: number, vni: number): Vm => ({ ns: `nvcl${tag}v${n}`, port: `nvcl${tag}p${n}`, mac: `02:88:00:00:00:0${n}`, ip: `10.88.0.${n}`, vni });
const V1 = vm(1, 100); // on h1
const V2 = vm(2, 100); // on h2
const V3 = vm(3, 100); // on h3, moves to h2
const V4 = vm(4, 200); // on h3, another network, same subnet

async function ip(...args: string[]): Promise<void> {
  const r = await run('ip', args);
  if (r.code !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
}

function inNs(ns: string, cmd: string[], timeoutMs = 30_000) {
  return run('ip', ['netns', 'exec', ns, ...cmd], { timeoutMs });
}

async function ping(from: Vm, to: Vm, count = 3) {
  return inNs(from.ns, ['ping', '-c', String(count), '-i', '0.2', '-W', '2', to.ip]);
}

describe.skipIf(skipWhy !== undefined || skipOvs)('three hosts, VXLAN between them, state in Redis', () => {
  const hosts: NvsRun[] = [];
  let redis: TestRedis;

  async function cleanupNamespaces(): Promise<void> {
    for (const ns of [UNDERLAY, hostNs(1), hostNs(2), hostNs(3), V1.ns, V2.ns, V3.ns, V4.ns]) await run('ip', ['netns', 'del', ns]);
  }

  /** The VM's namespace and veth pair; its port end goes into host `h`'s namespace. */
  async function plugVm(v: Vm, h: number): Promise<void> {
    await ip('netns', 'add', v.ns);
    await ip('-n', hostNs(h), 'link', 'add', v.port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', v.ns);
    await ip('-n', v.ns, 'link', 'set', 'eth0', 'address', v.mac);
    await ip('-n', v.ns, 'addr', 'add', `${v.ip}/24`, 'dev', 'eth0');
    await ip('-n', v.ns, 'link', 'set', 'eth0', 'up');
    await ip('-n', v.ns, 'link', 'set', 'lo', 'up');
    // nvs does not segment GSO frames nor needs the offloads here: plain frames only.
    await inNs(v.ns, ['ethtool', '-K', 'eth0', 'tx', 'off', 'tso', 'off']);
    await ip('-n', hostNs(h), 'link', 'set', v.port, 'up');
  }

  /** Adds the VM's port to host `h`'s br-int as libvirt would (attached-mac), on its network. */
  async function attach(v: Vm, h: number): Promise<void> {
    const r = await hosts[h - 1].vsctl('add-port', 'br-int', v.port, '--', 'set', 'Interface', v.port, `external_ids:nvs-vni=${v.vni}`, `external_ids:attached-mac=${v.mac}`);
    if (r.code !== 0) throw new Error(`add-port ${v.port} on h${h}: ${r.stderr}`);
  }

  const show = async (h: number) => (await hosts[h - 1].appctl('cluster/show')).stdout;

  beforeAll(async () => {
    await cleanupNamespaces();
    // Underlay: a bridge in its own namespace, one veth to each host, Redis on the bridge's address.
    await ip('netns', 'add', UNDERLAY);
    await ip('-n', UNDERLAY, 'link', 'add', 'br0', 'type', 'bridge');
    await ip('-n', UNDERLAY, 'addr', 'add', `${REDIS_IP}/24`, 'dev', 'br0');
    await ip('-n', UNDERLAY, 'link', 'set', 'br0', 'up');
    await ip('-n', UNDERLAY, 'link', 'set', 'lo', 'up');
    for (const i of [1, 2, 3]) {
      await ip('netns', 'add', hostNs(i));
      await ip('-n', UNDERLAY, 'link', 'add', `u${i}`, 'type', 'veth', 'peer', 'name', 'ul0', 'netns', hostNs(i));
      await ip('-n', UNDERLAY, 'link', 'set', `u${i}`, 'master', 'br0', 'up');
      await ip('-n', hostNs(i), 'addr', 'add', `${hostIp(i)}/24`, 'dev', 'ul0');
      await ip('-n', hostNs(i), 'link', 'set', 'ul0', 'up');
      await ip('-n', hostNs(i), 'link', 'set', 'lo', 'up');
    }
    redis = await TestRedis.start({ netns: UNDERLAY, bind: REDIS_IP });
    for (const i of [1, 2, 3]) {
      const h = new NvsRun();
      hosts.push(h);
      await h.startDb();
      await h.startSwitch([], { dummy: 'plain', wrap: ['ip', 'netns', 'exec', hostNs(i)] });
      const r = await h.vsctl(
        'set', 'Open_vSwitch', '.', `external_ids:system-id=h${i}`, `external_ids:nvs-redis=${redis.url}`, `external_ids:nvs-tunnel-ip=${hostIp(i)}`, 'external_ids:nvs-encap=vxlan',
        '--', 'add-br', 'br-int', '--', 'set', 'Bridge', 'br-int', 'datapath_type=netdev', 'fail_mode=secure',
        '--', 'add-port', 'br-int', 'tun0', '--', 'set', 'Interface', 'tun0', 'type=vxlan', 'options:remote_ip=flow', 'options:key=flow', `options:local_ip=${hostIp(i)}`,
      );
      if (r.code !== 0) throw new Error(`h${i}: ${r.stderr}`);
    }
    await plugVm(V1, 1);
    await plugVm(V2, 2);
    await plugVm(V3, 3);
    await plugVm(V4, 3);
    await attach(V1, 1);
    await attach(V2, 2);
    await attach(V3, 3);
    await attach(V4, 3);
    // Every host has heard of every location of its networks.
    await until(async () => (await show(1)).includes(`${V3.mac} h3 ${hostIp(3)}`) && (await show(1)).includes(`${V2.mac} h2`), 20_000, 'h1 knows V2 and V3');
    await until(async () => (await show(3)).includes(`${V1.mac} h1 ${hostIp(1)}`), 20_000, 'h3 knows V1');
  }, 120_000);

  afterAll(async () => {
    for (const h of hosts) await h.cleanup();
    await redis?.close();
    await cleanupNamespaces();
  }, 60_000);

  it('VMs on different hosts ping on the same VNI, and not across VNIs', async () => {
    for (const [a, b] of [[V1, V2], [V1, V3], [V2, V3], [V3, V1]]) {
      const r = await ping(a, b);
      expect(r.code, `${a.ip} -> ${b.ip}: ${r.stdout}${r.stderr}\n${await show(1)}`).toBe(0);
    }
    const across = await inNs(V1.ns, ['ping', '-c', '3', '-i', '0.2', '-W', '1', V4.ip]);
    expect(across.code, `VNI 100 must not reach VNI 200: ${across.stdout}`).not.toBe(0);
    // h1 serves only network 100: it knows nothing of 200, and floods 100 to h2 and h3 only.
    const s1 = await show(1);
    expect(s1).not.toContain('network 200');
    expect(s1).not.toContain(V4.mac);
    const flows = (await hosts[0].ofctl('dump-flows', 'br-int', 'table=40,reg0=100')).stdout;
    expect(flows).toMatch(/priority=10,reg0=0x64 actions=output:\d+,load:0x64->NXM_NX_TUN_ID\[\],load:0xa4d0002->NXM_NX_TUN_IPV4_DST\[\],output:\d+,load:0xa4d0003->NXM_NX_TUN_IPV4_DST\[\],output:\d+/);
  }, 60_000);

  it('a VM that moves to another host is reached again (outage measured)', async () => {
    // V1 pings V3 every 50 ms with timestamps while V3's port moves from h3 to h2.
    const pinger = inNs(V1.ns, ['ping', '-D', '-i', '0.05', '-W', '1', '-w', '14', V3.ip], 30_000);
    await new Promise((r) => setTimeout(r, 2000));
    const t0 = Date.now() / 1000;
    expect((await hosts[2].vsctl('del-port', 'br-int', V3.port)).code).toBe(0);
    await ip('-n', hostNs(3), 'link', 'set', V3.port, 'netns', hostNs(2));
    await ip('-n', hostNs(2), 'link', 'set', V3.port, 'up');
    await attach(V3, 2);
    const t1 = Date.now() / 1000;
    const out = (await pinger).stdout;
    const replies = [...out.matchAll(/^\[(\d+\.\d+)\] \d+ bytes from/gm)].map((m) => Number(m[1]));
    const after = replies.filter((t) => t > t1);
    expect(after.length, `no reply after the move:\n${out}\n${await show(1)}`).toBeGreaterThan(10);
    const firstAfterMove = replies.find((t) => t > t0)!;
    const lastBefore = replies.filter((t) => t <= t0).pop()!;
    console.log(
      `VM move: moving took ${(t1 - t0).toFixed(2)} s (del-port, veth to the other host, add-port); ` +
        `replies stopped ${(lastBefore - t0).toFixed(2)} s after the start and resumed ${(firstAfterMove - t1).toFixed(2)} s after add-port returned ` +
        `(outage ${(firstAfterMove - lastBefore).toFixed(2)} s)`,
    );
    // h1 now finds V3 at h2.
    expect(await show(1)).toContain(`${V3.mac} h2 ${hostIp(2)}`);
  }, 60_000);

  it('killing redis-server keeps established traffic flowing; a restarted Redis is refilled by reconciliation', async () => {
    await redis.stop();
    await until(async () => (await show(1)).includes('unreachable'), 10_000, 'h1 sees Redis gone');
    for (const [a, b] of [[V1, V2], [V1, V3]]) {
      const r = await ping(a, b, 5);
      expect(r.code, `${a.ip} -> ${b.ip} without Redis: ${r.stdout}`).toBe(0);
    }
    const flowsBefore = (await hosts[0].ofctl('dump-flows', 'br-int', 'cookie=0x6e76730001/-1')).stdout.replace(/duration=[^,]+, |n_packets=\d+, |n_bytes=\d+, |idle_age=\d+, /g, '');
    await redis.start();
    // Redis came back empty: each host republishes its own share.
    await until(async () => {
      const locs = await redis.cli('hkeys', 'nvs:{net:100}:locs').catch(() => '');
      return [V1, V2, V3].every((v) => locs.includes(v.mac));
    }, 20_000, 'locations republished');
    expect(await redis.cli('zcard', 'nvs:{hosts}')).toMatch(/^3\s*$/);
    for (const i of [1, 2, 3]) await until(async () => (await show(i)).includes('connected for'), 10_000, `h${i} reconnected`);
    // Nothing was flushed: h1's cluster rules are the ones it had.
    const flowsAfter = (await hosts[0].ofctl('dump-flows', 'br-int', 'cookie=0x6e76730001/-1')).stdout.replace(/duration=[^,]+, |n_packets=\d+, |n_bytes=\d+, |idle_age=\d+, /g, '');
    expect(flowsAfter).toBe(flowsBefore);
    const r = await ping(V2, V1);
    expect(r.code, r.stdout).toBe(0);
  }, 90_000);
});
