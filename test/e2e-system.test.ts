// Existing kernel devices as ports (Interface type system, and no type as
// libvirt adds a VM's tap): namespaces joined through an nvs bridge over veth
// pairs. The real ovs-vsctl adds one end of each pair, the other end lives in
// a namespace of its own. Checked: a system port on a veth takes AF_XDP
// (native) and one on a tap AF_PACKET, as Interface.status shows; ping,
// iperf3 TCP with the senders' TSO and checksum offload on (so frames arrive
// as GSO super-frames and with partial checksums that nvs must cut and
// complete; the receiver's checksum-error counters stay 0), over AF_XDP and
// over AF_PACKET, IPv4 and IPv6, NORMAL learning, VLAN isolation (access ports on two tags,
// a trunk carrying both), an OpenFlow rule that drops one TCP port, the
// bridge's internal port with a host address reaching a namespace, the MTU
// set and shown, and hot unplug on both transports and on type=afxdp: a veth
// deleted under traffic takes the port down with Interface.error set, the
// rest keeps working, and the device coming back is picked up. A missing device is an error, never a dummy port.
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
const P1 = host('p');
const P2 = host('q');
const M1 = host('m');
const M2 = host('n');
const ALL = [H1, H2, VA, VB, X1, X2, P1, P2, M1, M2];
const TAP = `sv${tag}tap`;
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

/** A veth pair: `h.port` on the host, `eth0` in namespace `h.ns` with `addrs`, both up; the sender's offloads as `offload` says. */
async function plug(h: Host, addrs: string[], offload = 'tso on tx on', queues = 1): Promise<void> {
  await run('ip', ['link', 'del', h.port]);
  await run('ip', ['netns', 'add', h.ns]);
  const q = ['numrxqueues', String(queues), 'numtxqueues', String(queues)];
  await ip('link', 'add', h.port, ...q, 'type', 'veth', 'peer', 'name', 'eth0', ...q, 'netns', h.ns);
  await ip('link', 'set', 'dev', h.port, 'up');
  for (const a of addrs) {
    const [addr, ...flags] = a.split(' ');
    await ip('-n', h.ns, 'addr', 'add', addr, 'dev', 'eth0', ...flags);
  }
  await ip('-n', h.ns, 'link', 'set', 'dev', 'eth0', 'up');
  const r = await inNs(h.ns, ['ethtool', '-K', 'eth0', ...offload.split(' ')]);
  if (r.code !== 0) throw new Error(`ethtool: ${r.stderr}`);
}

/** TCP and UDP segments namespace `ns` received, and how many it dropped for a bad checksum. */
async function snmp(ns: string): Promise<{ inSegs: number; csumErrors: number }> {
  const text = (await inNs(ns, ['cat', '/proc/net/snmp'])).stdout;
  const row = (proto: string): Record<string, number> => {
    const [names, values] = text.split('\n').filter((l) => l.startsWith(`${proto}:`));
    const keys = names.split(/\s+/).slice(1);
    const vals = values.split(/\s+/).slice(1).map(Number);
    return Object.fromEntries(keys.map((k, i) => [k, vals[i]]));
  };
  const tcp = row('Tcp');
  const udp = row('Udp');
  return { inSegs: tcp.InSegs, csumErrors: tcp.InCsumErrors + udp.InCsumErrors };
}

/**
 * iperf3 TCP from `from` to `to` with the sender's checksum offload on (and
 * TSO where `tso`): carried, and no segment dropped by the receiver for a
 * bad checksum. A veth whose far end runs XDP (AF_XDP ports) has its TSO
 * turned off by the kernel, whatever was asked: GSO frames cannot enter XDP.
 */
async function expectTcpChecked(port: number, from: Host, to: Host, addr: string, what: string, tso: 'on' | 'off'): Promise<void> {
  const features = (await inNs(from.ns, ['ethtool', '-k', 'eth0'])).stdout;
  expect(features, 'the sender leaves checksums partial').toMatch(/tx-checksumming: on/);
  expect(features, `the sender's TSO is ${tso}`).toMatch(new RegExp(`tcp-segmentation-offload: ${tso}`));
  const before = await snmp(to.ns);
  const tcp = await iperf(port, from, to, addr);
  expect(tcp.code, tcp.out).toBe(0);
  const after = await snmp(to.ns);
  expect(after.inSegs - before.inSegs, 'segments received').toBeGreaterThan(1000);
  expect(after.csumErrors - before.csumErrors, 'segments dropped by the receiver for a bad checksum').toBe(0);
  console.log(`iperf3 TCP through nvs (${what}, sender checksum offload on, TSO ${tso}): ${(tcp.bps! / 1e9).toFixed(2)} Gbit/s`);
}

/** Deletes `h`'s veth under traffic from `from` to `addr`: Interface.error set and link down, `alive` still pings `aliveAddr`; the veth back: carried again, error cleared. */
async function unplugAndReplug(h: Host, addrs: string[], from: Host, addr: string, alive: Host, aliveAddr: string, offload?: string): Promise<void> {
  const ping = inNs(from.ns, ['ping', '-c', '30', '-i', '0.1', addr], 30_000);
  await new Promise((r) => setTimeout(r, 500));
  await ip('link', 'del', h.port);
  await ping;
  await eventually(async () => (await iface(h.port, 'error')).includes('the device is gone'), `${h.port}'s Interface.error`, 300);
  expect(await iface(h.port, 'link_state')).toBe('down');
  // The switch and the other ports keep going.
  await expectPing(alive.ns, aliveAddr);
  // The device comes back (as a tap comes back when QEMU starts again): no command to nvs.
  await run('ip', ['netns', 'del', h.ns]);
  await plug(h, addrs, offload);
  await eventually(async () => (await inNs(from.ns, ['ping', '-c', '1', '-W', '1', addr])).code === 0, `ping over ${h.port} that came back`, 60);
  await eventually(async () => (await iface(h.port, 'error')) === '[]', `${h.port}'s Interface.error cleared`, 300);
  expect(await iface(h.port, 'link_state')).toBe('up');
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
    await run('ip', ['link', 'del', TAP]);
    for (const f of FAR) await run('ip', ['netns', 'del', f.ns]);
  }
});

describe.skipIf(skipOvs || skipWhy !== undefined)('existing kernel devices as ports (type system: AF_XDP where it works, AF_PACKET otherwise)', () => {
  it('a port of no type whose device does not exist is an Interface error, not a dummy port', async () => {
    const add = await nvs.vsctl('add-br', BR, '--', 'set', 'Bridge', BR, 'datapath_type=netdev', '--', 'add-port', BR, `sv${tag}none`);
    expect(add.code).toBe(0);
    expect(await iface(`sv${tag}none`, 'error')).toContain('no network device of that name exists here');
    expect(await iface(`sv${tag}none`, 'ofport')).toBe('-1');
    expect((await nvs.vsctl('del-port', BR, `sv${tag}none`)).code).toBe(0);
  });

  it('joins two namespaces: a port of no type (as libvirt adds it) and a type=system one, AF_XDP on veths as status shows; ping, NORMAL learning, iperf3 TCP with checksum offload on', async () => {
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
    // A veth runs XDP in its driver: AF_XDP, native (veths have no zero-copy).
    for (const h of [H1, H2]) expect(await iface(h.port, 'status'), h.port).toMatch(/transport=af_xdp.*xdp-mode=native/);
    await expectPing(H1.ns, '10.232.0.2');
    const fdb = (await nvs.appctl('fdb/show', BR)).stdout;
    for (const h of [H1, H2]) {
      const mac = (await inNs(h.ns, ['cat', '/sys/class/net/eth0/address'])).stdout.trim();
      expect(fdb, `${h.port}'s MAC learned`).toContain(mac);
    }
    const show = (await nvs.appctl('dpif/show')).stdout;
    expect(show, show).toMatch(new RegExp(`${H1.port} 1/\\d+: \\(system\\)`));
    await expectTcpChecked(5201, H1, H2, '10.232.0.2', 'system on veths: AF_XDP', 'off');
  });

  it('takes AF_PACKET when asked (transport=af_packet): GSO super-frames cut and partial checksums completed, TCP over IPv4 and IPv6', async () => {
    await plug(P1, ['10.232.6.1/24', 'fd00:232:6::1/64 nodad']);
    await plug(P2, ['10.232.6.2/24', 'fd00:232:6::2/64 nodad']);
    const add = await nvs.vsctl(
      ...[P1, P2].flatMap((h) => ['--', 'add-port', BR, h.port, '--', 'set', 'Interface', h.port, 'type=system', 'options:transport=af_packet']),
    );
    expect(add.code, add.stderr).toBe(0);
    for (const h of [P1, P2]) {
      expect(await iface(h.port, 'error'), h.port).toBe('[]');
      expect(await iface(h.port, 'status')).toContain('transport="af_packet (tpacket_v2 rx ring, vnet headers)"');
    }
    await expectPing(P1.ns, '10.232.6.2');
    await expectTcpChecked(5221, P1, P2, '10.232.6.2', 'AF_PACKET, IPv4', 'on');
    await expectTcpChecked(5222, P1, P2, 'fd00:232:6::2', 'AF_PACKET, IPv6', 'on');
  });

  it('puts a tap on AF_PACKET (its frames carry virtio-net offloads) and says why in status', async () => {
    await run('ip', ['link', 'del', TAP]);
    await ip('tuntap', 'add', 'mode', 'tap', 'name', TAP);
    expect((await nvs.vsctl('add-port', BR, TAP)).code).toBe(0);
    expect(await iface(TAP, 'error')).toBe('[]');
    const status = await iface(TAP, 'status');
    expect(status).toContain('transport="af_packet (tpacket_v2 rx ring, vnet headers)"');
    expect(status).toContain('af_xdp="not tried: a tap (driver tun)');
    expect((await nvs.vsctl('del-port', BR, TAP)).code).toBe(0);
  });

  it('refuses a transport it does not know, in Interface.error', async () => {
    const bad = `sv${tag}w`;
    expect((await nvs.vsctl('add-port', BR, bad, '--', 'set', 'Interface', bad, 'type=system', 'options:transport=carrier-pigeon')).code).toBe(0);
    expect(await iface(bad, 'error')).toContain('transport is auto, af_xdp or af_packet');
    expect((await nvs.vsctl('del-port', BR, bad)).code).toBe(0);
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

  it('takes the port down with Interface.error when its device is deleted, keeps the others, and picks the device up again (AF_XDP and AF_PACKET)', async () => {
    await unplugAndReplug(H2, ['10.232.0.2/24'], H1, '10.232.0.2', VA, '10.232.10.3');
    await unplugAndReplug(P2, ['10.232.6.2/24', 'fd00:232:6::2/64 nodad'], P1, '10.232.6.2', VA, '10.232.10.3');
  });
});

describe.skipIf(skipOvs || skipWhy !== undefined)('existing kernel devices as ports (AF_XDP, type=afxdp)', () => {
  it('joins two namespaces over afxdp ports: ping, NORMAL learning, iperf3 TCP with checksum offload on', async () => {
    await plug(X1, ['10.232.5.1/24']);
    await plug(X2, ['10.232.5.2/24']);
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
    await expectTcpChecked(5211, X1, X2, '10.232.5.2', 'type=afxdp', 'off');
  });

  it('takes an afxdp port down when its device is deleted and picks it up again', async () => {
    await unplugAndReplug(X2, ['10.232.5.2/24'], X1, '10.232.5.2', H1, '10.232.0.2');
  });

  it('binds one socket per rx queue: n_rxq=2 on type=afxdp, every queue on type=system; 8 TCP streams spread over both queues all carried', async () => {
    await plug(M1, ['10.232.7.1/24'], undefined, 2);
    await plug(M2, ['10.232.7.2/24'], undefined, 2);
    const add = await nvs.vsctl(
      '--may-exist', 'add-br', BR, '--', 'set', 'Bridge', BR, 'datapath_type=netdev',
      '--', 'add-port', BR, M1.port, '--', 'set', 'Interface', M1.port, 'type=afxdp', 'options:n_rxq=2',
      '--', 'add-port', BR, M2.port, '--', 'set', 'Interface', M2.port, 'type=system',
    );
    expect(add.code, add.stderr).toBe(0);
    for (const h of [M1, M2]) {
      expect(await iface(h.port, 'error'), h.port).toBe('[]');
      expect(await iface(h.port, 'status'), h.port).toMatch(/n_rxq="?2"?/);
    }
    await expectPing(M1.ns, '10.232.7.2');
    // The sender's flows hash over its two tx queues, which feed the two rx
    // queues of the far end: a queue without a socket would pass its frames
    // to the host's stack and its streams would carry nothing (all 8 streams
    // on one queue: 1 chance in 128).
    const server = inNs(M2.ns, ['timeout', '12', 'iperf3', '-s', '-1', '-p', '5231'], 30_000);
    await new Promise((r) => setTimeout(r, 300));
    const c = await inNs(M1.ns, ['timeout', '10', 'iperf3', '-c', '10.232.7.2', '-p', '5231', '-t', '2', '-P', '8', '-J', '--connect-timeout', '2000'], 30_000);
    await server;
    expect(c.code, c.stdout + c.stderr).toBe(0);
    const streams = (JSON.parse(c.stdout) as { end: { streams: { receiver: { bytes: number } }[] } }).end.streams;
    expect(streams).toHaveLength(8);
    for (const st of streams) expect(st.receiver.bytes, 'every stream carried data').toBeGreaterThan(0);
  });

  it('refuses an n_rxq it cannot take, in Interface.error', async () => {
    const bad = `sv${tag}r`;
    expect((await nvs.vsctl('--may-exist', 'add-br', BR, '--', 'add-port', BR, bad, '--', 'set', 'Interface', bad, 'type=afxdp', 'options:n_rxq=0')).code).toBe(0);
    expect(await iface(bad, 'error')).toContain('n_rxq is a number of rx queues from 1 to 16');
  });

  it('refuses an xdp-mode it does not know, in Interface.error', async () => {
    const bad = `sv${tag}z`;
    expect((await nvs.vsctl('--may-exist', 'add-br', BR, '--', 'add-port', BR, bad, '--', 'set', 'Interface', bad, 'type=afxdp', 'options:xdp-mode=turbo')).code).toBe(0);
    expect(await iface(bad, 'error')).toContain('xdp-mode is native-with-zerocopy, native, generic or best-effort');
    expect(await iface(bad, 'ofport')).toBe('-1');
  });
});
