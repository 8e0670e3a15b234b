// Existing kernel devices as ports (Interface type system, and no type as
// libvirt adds a VM's tap): namespaces joined through an nvs bridge over veth
// pairs. The real ovs-vsctl adds one end of each pair, the other end lives in
// a namespace of its own. Checked: ping, iperf3 TCP with the namespaces'
// checksum offload left on (so frames arrive with partial checksums that nvs
// must complete), NORMAL learning, VLAN isolation (access ports on two tags,
// a trunk carrying both), an OpenFlow rule that drops one TCP port, the
// bridge's internal port with a host address reaching a namespace, the MTU
// set and shown, and hot unplug: a veth deleted under traffic takes the port
// down with Interface.error set, the rest keeps working, and the device
// coming back is picked up. A missing device is an error, never a dummy port.
// Needs root (veth pairs, namespaces); skipped with a message without it
// unless NVS_REQUIRE_PRIVILEGED=1 (CI).
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, NvsRun, run } from './e2e-harness.ts';
import { needsOvs } from './ovs-tools.ts';
import { privilegesMissing } from './privileges.ts';

const skipOvs = needsOvs('test/e2e-system', ['ovs-vsctl']);
const skipWhy = privilegesMissing('test/e2e-system: veth pairs across network namespaces');

// Names unique to this run: devices and namespaces are global to the host.
const tag = String(process.pid % 100000);
const BR = `sb${tag}`;
/** One host: the bridge-side veth end (the port) and its namespace. */
interface Host {
  port: string;
  ns: string;
}
const host = (s: string): Host => ({ port: `sv${tag}${s}`, ns: `nvssys${tag}${s}` });
const H1 = host('1');
const H2 = host('2');
const VA = host('a');
const VB = host('b');
const X1 = host('x');
const X2 = host('y');
const ALL = [H1, H2, VA, VB, X1, X2];
/** The trunk: a veth pair from BR to a second bridge BR2 with internal ports on tags 10 and 20, each in a namespace. */
const BR2 = `sc${tag}`;
const TRUNK = [`sv${tag}t`, `sv${tag}u`];
const FAR = [
  { port: `sc${tag}x`, ns: `nvssys${tag}x`, vid: 10, addr: '10.232.10.3/24' },
  { port: `sc${tag}y`, ns: `nvssys${tag}y`, vid: 20, addr: '10.232.20.3/24' },
];

async function ip(...args: string[]): Promise<void> {
  const r = await run('ip', args);
  if (r.code !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
}

function inNs(ns: string, cmd: string[], timeoutMs = 20_000) {
  return run('ip', ['netns', 'exec', ns, ...cmd], { timeoutMs });
}

/** A veth pair: `h.port` on the host, `eth0` in namespace `h.ns` with `addrs`, both up. */
async function plug(h: Host, addrs: string[], offload: 'tso off' | 'tx off' = 'tso off'): Promise<void> {
  await run('ip', ['link', 'del', h.port]);
  await run('ip', ['netns', 'add', h.ns]);
  await ip('link', 'add', h.port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.ns);
  await ip('link', 'set', 'dev', h.port, 'up');
  for (const a of addrs) await ip('-n', h.ns, 'addr', 'add', a, 'dev', 'eth0');
  await ip('-n', h.ns, 'link', 'set', 'dev', 'eth0', 'up');
  // Checksum offload stays on (frames reach nvs with partial checksums); TSO
  // off, because nvs does not segment GSO super-frames (they are counted and dropped).
  const r = await inNs(h.ns, ['ethtool', '-K', 'eth0', ...offload.split(' ')]);
  if (r.code !== 0) throw new Error(`ethtool: ${r.stderr}`);
}

async function expectPing(ns: string, to: string, count = 3): Promise<void> {
  const ping = await inNs(ns, ['ping', '-c', String(count), '-i', '0.2', '-W', '2', to]);
  expect(ping.code, `${ns} -> ${to}: ${ping.stdout}${ping.stderr}`).toBe(0);
}

async function expectNoPing(ns: string, to: string): Promise<void> {
  const ping = await inNs(ns, ['ping', '-c', '2', '-i', '0.2', '-W', '1', to]);
  expect(ping.code, `${ns} -> ${to} must not get through: ${ping.stdout}`).not.toBe(0);
}

async function iface(name: string, col: string): Promise<string> {
  return (await nvs.vsctl('get', 'Interface', name, col)).stdout.trim();
}

/** iperf3 from H1 to H2 on `port` for 2 s: its JSON result, or the failure. */
async function iperf(port: number, from = H1, to = H2, addr = '10.232.0.2'): Promise<{ code: number; bps?: number; out: string }> {
  const server = inNs(to.ns, ['timeout', '12', 'iperf3', '-s', '-1', '-p', String(port)], 30_000);
  await new Promise((r) => setTimeout(r, 300));
  const c = await inNs(from.ns, ['timeout', '8', 'iperf3', '-c', addr, '-p', String(port), '-t', '2', '-J', '--connect-timeout', '2000'], 30_000);
  if (c.code !== 0) {
    await inNs(to.ns, ['pkill', '-f', `iperf3 -s -1 -p ${port}`]);
    await server;
    return { code: c.code, out: c.stdout + c.stderr };
  }
  await server;
  const bps = (JSON.parse(c.stdout) as { end?: { sum_received?: { bits_per_second?: number } } }).end?.sum_received?.bits_per_second;
  return bps === undefined ? { code: -1, out: c.stdout } : { code: 0, bps, out: '' };
}

let nvs: NvsRun;
beforeAll(async () => {
  nvs = new NvsRun();
  await nvs.startDb();
  await nvs.startSwitch([], { dummy: 'plain' });
});
afterAll(async () => {
  await nvs?.cleanup();
  if (!skipWhy) {
    for (const h of ALL) {
      await run('ip', ['link', 'del', h.port]);
      await run('ip', ['netns', 'del', h.ns]);
    }
    await run('ip', ['link', 'del', TRUNK[0]]);
    for (const f of FAR) await run('ip', ['netns', 'del', f.ns]);
  }
});

describe.skipIf(skipOvs || skipWhy !== undefined)('existing kernel devices as ports (AF_PACKET)', () => {
  it('a port of no type whose device does not exist is an Interface error, not a dummy port', async () => {
    const add = await nvs.vsctl('add-br', BR, '--', 'set', 'Bridge', BR, 'datapath_type=netdev', '--', 'add-port', BR, `sv${tag}none`);
    expect(add.code).toBe(0);
    expect(await iface(`sv${tag}none`, 'error')).toContain('no network device of that name exists here');
    expect(await iface(`sv${tag}none`, 'ofport')).toBe('-1');
    expect((await nvs.vsctl('del-port', BR, `sv${tag}none`)).code).toBe(0);
  });

  it('joins two namespaces: a port of no type (as libvirt adds it) and a type=system one; ping, NORMAL learning, iperf3 TCP with checksum offload on', async () => {
    await plug(H1, ['10.232.0.1/24']);
    await plug(H2, ['10.232.0.2/24']);
    const add = await nvs.vsctl(
      '--may-exist', 'add-port', BR, H1.port, '--', 'set', 'Interface', H1.port, 'external-ids:iface-id=vm1', 'external-ids:attached-mac=02:00:00:00:00:01',
      '--', 'add-port', BR, H2.port, '--', 'set', 'Interface', H2.port, 'type=system',
    );
    expect(add.code, add.stderr).toBe(0);
    for (const h of [H1, H2]) {
      expect(await iface(h.port, 'error'), h.port).toBe('[]');
      expect(await iface(h.port, 'link_state')).toBe('up');
    }
    expect(await iface(H1.port, 'type')).toBe('""');
    expect(await iface(H1.port, 'status')).toContain('transport="af_packet (tpacket_v2 rx ring)"');
    await expectPing(H1.ns, '10.232.0.2');
    const fdb = (await nvs.appctl('fdb/show', BR)).stdout;
    for (const h of [H1, H2]) {
      const mac = (await inNs(h.ns, ['cat', '/sys/class/net/eth0/address'])).stdout.trim();
      expect(fdb, `${h.port}'s MAC learned`).toContain(mac);
    }
    const show = (await nvs.appctl('dpif/show')).stdout;
    expect(show, show).toMatch(new RegExp(`${H1.port} 1/\\d+: \\(system\\)`));
    const tcp = await iperf(5201);
    expect(tcp.code, tcp.out).toBe(0);
    expect(tcp.bps).toBeGreaterThan(0);
    console.log(`iperf3 TCP through nvs (AF_PACKET, checksum offload on): ${(tcp.bps! / 1e9).toFixed(2)} Gbit/s`);
  });

  it('drops one TCP port with an OpenFlow rule and carries the others', async () => {
    const add = await nvs.ofctl('add-flow', BR, 'priority=100,tcp,tp_dst=5202,actions=drop');
    expect(add.code, add.stderr).toBe(0);
    const dropped = await iperf(5202);
    expect(dropped.code, 'TCP to port 5202 is dropped').not.toBe(0);
    const carried = await iperf(5203);
    expect(carried.code, carried.out).toBe(0);
    expect((await nvs.ofctl('del-flows', BR, 'tcp,tp_dst=5202')).code).toBe(0);
  });

  it('reaches a namespace from the host through the bridge internal port', async () => {
    await ip('addr', 'add', '10.232.0.254/24', 'dev', BR);
    await ip('link', 'set', 'dev', BR, 'up');
    const ping = await run('ping', ['-c', '3', '-i', '0.2', '-W', '2', '10.232.0.1'], { timeoutMs: 15_000 });
    expect(ping.code, ping.stdout + ping.stderr).toBe(0);
  });

  it('isolates access ports on different VLANs and carries both on a trunk', async () => {
    await plug(VA, ['10.232.10.1/24']);
    // B also holds an address in A's subnet: only the tags keep them apart.
    await plug(VB, ['10.232.20.2/24', '10.232.10.2/24']);
    // The trunk: a veth pair between this bridge and a second one (no 8021q
    // module here for VLAN devices), whose internal ports on tags 10 and 20
    // sit in namespaces of their own. Tagged frames cross the veth both ways.
    await run('ip', ['link', 'del', TRUNK[0]]);
    await ip('link', 'add', TRUNK[0], 'type', 'veth', 'peer', 'name', TRUNK[1]);
    for (const dev of TRUNK) await ip('link', 'set', 'dev', dev, 'up');
    const add = await nvs.vsctl(
      'add-port', BR, VA.port, 'tag=10', '--', 'add-port', BR, VB.port, 'tag=20',
      '--', 'add-port', BR, TRUNK[0], 'trunks=10,20', '--', 'set', 'Interface', TRUNK[0], 'type=system',
      '--', 'add-br', BR2, '--', 'set', 'Bridge', BR2, 'datapath_type=netdev',
      '--', 'add-port', BR2, TRUNK[1], 'trunks=10,20',
      ...FAR.flatMap((f) => ['--', 'add-port', BR2, f.port, `tag=${f.vid}`, '--', 'set', 'Interface', f.port, 'type=internal']),
    );
    expect(add.code, add.stderr).toBe(0);
    for (const f of FAR) {
      await run('ip', ['netns', 'add', f.ns]);
      await ip('link', 'set', 'dev', f.port, 'netns', f.ns);
      await ip('-n', f.ns, 'addr', 'add', f.addr, 'dev', f.port);
      await ip('-n', f.ns, 'link', 'set', 'dev', f.port, 'up');
    }
    await expectPing(VA.ns, '10.232.10.3');
    await expectPing(VB.ns, '10.232.20.3');
    await expectNoPing(VA.ns, '10.232.10.2');
    await expectNoPing(VB.ns, '10.232.10.3');
  });

  it('sets the device MTU from mtu_request and shows it', async () => {
    expect((await nvs.vsctl('set', 'Interface', H2.port, 'mtu_request=1400')).code).toBe(0);
    expect(readFileSync(`/sys/class/net/${H2.port}/mtu`, 'utf8').trim()).toBe('1400');
    expect(await iface(H2.port, 'mtu')).toBe('1400');
    expect((await nvs.vsctl('set', 'Interface', H2.port, 'mtu_request=1500')).code).toBe(0);
  });

  it('takes the port down with Interface.error when its device is deleted, keeps the others, and picks the device up again', async () => {
    const ping = inNs(H1.ns, ['ping', '-c', '30', '-i', '0.1', '10.232.0.2'], 30_000);
    await new Promise((r) => setTimeout(r, 500));
    await ip('link', 'del', H2.port);
    await ping;
    await eventually(async () => (await iface(H2.port, 'error')).includes('the device is gone'), `${H2.port}'s Interface.error`, 300);
    expect(await iface(H2.port, 'link_state')).toBe('down');
    // The switch and the other ports keep going.
    await expectPing(VA.ns, '10.232.10.3');
    // The device comes back (as a tap comes back when QEMU starts again): no command to nvs.
    await run('ip', ['netns', 'del', H2.ns]);
    await plug(H2, ['10.232.0.2/24']);
    await eventually(async () => (await inNs(H1.ns, ['ping', '-c', '1', '-W', '1', '10.232.0.2'])).code === 0, 'ping over the device that came back', 60);
    await eventually(async () => (await iface(H2.port, 'error')) === '[]', `${H2.port}'s Interface.error cleared`, 300);
    expect(await iface(H2.port, 'link_state')).toBe('up');
  });
});

describe.skipIf(skipOvs || skipWhy !== undefined)('existing kernel devices as ports (AF_XDP, type=afxdp)', () => {
  it('joins two namespaces over afxdp ports: ping, NORMAL learning, iperf3 TCP', async () => {
    // Checksum offload off in these namespaces: frames taken by XDP carry no
    // mark of a checksum left partial, so nvs cannot complete it (see the README).
    await plug(X1, ['10.232.5.1/24'], 'tx off');
    await plug(X2, ['10.232.5.2/24'], 'tx off');
    const add = await nvs.vsctl(
      '--may-exist', 'add-br', BR, '--', 'set', 'Bridge', BR, 'datapath_type=netdev',
      ...[X1, X2].flatMap((h) => ['--', 'add-port', BR, h.port, '--', 'set', 'Interface', h.port, 'type=afxdp']),
    );
    expect(add.code, add.stderr).toBe(0);
    for (const h of [X1, X2]) {
      expect(await iface(h.port, 'error'), h.port).toBe('[]');
      expect(await iface(h.port, 'link_state')).toBe('up');
    }
    expect((await nvs.appctl('dpif/show')).stdout).toMatch(new RegExp(`${X1.port} \\d+/\\d+: \\(afxdp\\)`));
    // best-effort on a veth: native XDP in copy mode (veths have no zero-copy).
    expect(await iface(X1.port, 'status')).toMatch(/transport=af_xdp.*xdp-mode=(native|generic)/);
    await expectPing(X1.ns, '10.232.5.2');
    const fdb = (await nvs.appctl('fdb/show', BR)).stdout;
    for (const h of [X1, X2]) {
      const mac = (await inNs(h.ns, ['cat', '/sys/class/net/eth0/address'])).stdout.trim();
      expect(fdb, `${h.port}'s MAC learned`).toContain(mac);
    }
    const tcp = await iperf(5211, X1, X2, '10.232.5.2');
    expect(tcp.code, tcp.out).toBe(0);
    console.log(`iperf3 TCP through nvs (AF_XDP): ${(tcp.bps! / 1e9).toFixed(2)} Gbit/s`);
  });

  it('refuses an xdp-mode it does not know, in Interface.error', async () => {
    const bad = `sv${tag}z`;
    expect((await nvs.vsctl('--may-exist', 'add-br', BR, '--', 'add-port', BR, bad, '--', 'set', 'Interface', bad, 'type=afxdp', 'options:xdp-mode=turbo')).code).toBe(0);
    expect(await iface(bad, 'error')).toContain('xdp-mode is native-with-zerocopy, native, generic or best-effort');
    expect(await iface(bad, 'ofport')).toBe('-1');
  });
});
