// Internal ports as tap devices (nvs-vswitchd with plain --enable-dummy, as
// root): the real ovs-vsctl builds a bridge with two internal ports, each is
// moved into its own network namespace, ping crosses the switch, NORMAL
// learns both MACs, the LOCAL port is a kernel device named after the bridge
// while the bridge exists, and del-br removes the devices. mtu_request sets
// the device's MTU (a refused one is an Interface error, the port goes on),
// admin_state/link_state follow `ip link set`, and type=tap interfaces are
// tap devices too (an error, not a dummy port, without privilege). Needs
// CAP_NET_ADMIN, /dev/net/tun and `ip netns`; without them that part is
// skipped with a message (CI runs as root and sets NVS_REQUIRE_PRIVILEGED=1,
// which makes a missing capability fail instead: see privileges.ts).
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, NvsRun, run } from './e2e-harness.ts';
import { needsOvs } from './ovs-tools.ts';
import { privilegesMissing } from './privileges.ts';

const skipOvs = needsOvs('test/e2e-tap', ['ovs-vsctl']);

// Names unique to this run: tap devices and namespaces are global to the host.
const tag = String(process.pid % 100000);
const BR = `tb${tag}`;
const PORTS = [`tb${tag}a`, `tb${tag}b`];
const NETNS = [`nvstap${tag}a`, `nvstap${tag}b`];
const IPS = ['10.231.0.1', '10.231.0.2'];
const TAPS = [`tb${tag}t1`, `tb${tag}t2`];
const TAP_NETNS = [`nvstap${tag}c`, `nvstap${tag}d`];
const TAP_IPS = ['10.231.1.1', '10.231.1.2'];

const skipWhy = privilegesMissing('test/e2e-tap: tap devices across network namespaces');

async function ip(...args: string[]): Promise<void> {
  const r = await run('ip', args);
  if (r.code !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
}

/** Moves a device into a fresh namespace of its own, with an address, up. */
async function intoNetns(dev: string, ns: string, addr: string): Promise<void> {
  await run('ip', ['netns', 'del', ns]);
  await ip('netns', 'add', ns);
  await ip('link', 'set', 'dev', dev, 'netns', ns);
  await ip('-n', ns, 'addr', 'add', `${addr}/24`, 'dev', dev);
  await ip('-n', ns, 'link', 'set', 'dev', dev, 'up');
}

/** Pings `to` from namespace `ns` `count` times and expects every reply. */
async function expectPing(ns: string, to: string, count: number): Promise<void> {
  const ping = await run('ip', ['netns', 'exec', ns, 'ping', '-c', String(count), '-i', '0.2', '-W', '2', to], { timeoutMs: 15_000 });
  expect(ping.code, ping.stdout + ping.stderr).toBe(0);
  expect(ping.stdout).toContain(`${count} received`);
}

/** A device's MAC as sysfs has it. */
function sysMac(dev: string): string {
  return readFileSync(`/sys/class/net/${dev}/address`, 'utf8').trim();
}

// One switch for the file, started as a user would: plain --enable-dummy.
let nvs: NvsRun;
beforeAll(async () => {
  nvs = new NvsRun();
  await nvs.startDb();
  await nvs.startSwitch([], { dummy: 'plain' });
});
afterAll(async () => {
  await nvs?.cleanup();
  if (!skipWhy) for (const ns of [...NETNS, ...TAP_NETNS]) await run('ip', ['netns', 'del', ns]);
});

describe.skipIf(skipOvs || skipWhy !== undefined)('internal ports as tap devices, across namespaces', () => {
  it('builds the bridge with tap ports, pings across it and learns both MACs', async () => {
    const add = await nvs.vsctl(
      'add-br', BR, '--', 'set', 'Bridge', BR, 'datapath_type=netdev',
      ...PORTS.flatMap((p, i) => ['--', 'add-port', BR, p, '--', 'set', 'Interface', p, 'type=internal', `ofport_request=${i + 1}`]),
    );
    expect(add.code, add.stderr).toBe(0);
    // The LOCAL port and both internal ports are kernel devices, and their MACs are written back.
    for (const dev of [BR, ...PORTS]) {
      expect(existsSync(`/sys/class/net/${dev}`), dev).toBe(true);
      const mac = (await nvs.vsctl('get', 'Interface', dev, 'mac_in_use')).stdout.trim();
      expect(mac).toBe(`"${sysMac(dev)}"`);
    }
    expect(nvs.log('nvs-vswitchd')).toContain('internal and LOCAL ports are tap devices');
    expect((await nvs.appctl('dpif/show')).stdout).toMatch(new RegExp(`${BR} 65534/\\d+: \\(tap\\)`));
    const macs = PORTS.map(sysMac);

    // Each port into its own namespace: nvs keeps its descriptors, which go on working.
    for (const [i, p] of PORTS.entries()) await intoNetns(p, NETNS[i], IPS[i]);
    expect(existsSync(`/sys/class/net/${PORTS[0]}`)).toBe(false);
    await expectPing(NETNS[0], IPS[1], 3);

    const fdb = (await nvs.appctl('fdb/show', BR)).stdout;
    expect(fdb).toMatch(new RegExp(`^\\s*1\\s+0\\s+${macs[0]}\\s`, 'm'));
    expect(fdb).toMatch(new RegExp(`^\\s*2\\s+0\\s+${macs[1]}\\s`, 'm'));
    const flows = (await nvs.appctl('dpif/dump-flows', BR)).stdout;
    expect(flows).toContain('actions:');
    // Port 2 received at least the three echo replies (the counters come from the tap back end).
    const ports = (await nvs.ofctl('dump-ports', BR, '2')).stdout;
    expect(Number(/rx pkts=(\d+)/.exec(ports)?.[1])).toBeGreaterThanOrEqual(3);

    // netdev-dummy/receive cannot feed a tap: a clear error, and the switch carries on.
    const recv = await nvs.appctl('netdev-dummy/receive', PORTS[0], '00');
    expect(recv.code).not.toBe(0);
    expect(recv.stderr).toContain(`'${PORTS[0]}' is a tap device, not a dummy netdev`);
    expect((await nvs.appctl('version')).code).toBe(0);
  });

  it('applies mtu_request to the device and reports its real MTU and state', async () => {
    const [p] = PORTS;
    const ns = NETNS[0];
    const field = async (col: string) => (await nvs.vsctl('get', 'Interface', p, col)).stdout.trim();
    // The LOCAL port is in this namespace, created down and left down for the user, as in OVS.
    expect(await field('mtu')).toBe('1500');
    expect((await nvs.vsctl('get', 'Interface', BR, 'admin_state')).stdout.trim()).toBe('down');
    expect((await nvs.vsctl('get', 'Interface', BR, 'link_state')).stdout.trim()).toBe('down');
    // PORTS[0] was moved to its namespace and brought up there: nvs reaches it in that namespace,
    // and the periodic refresh (every 5 s) reports it up.
    await eventually(async () => (await field('admin_state')) === 'up', `admin_state of ${p} to read up`, 300);
    expect(await field('link_state')).toBe('up');

    const set = await nvs.vsctl('set', 'Interface', p, 'mtu_request=9000');
    expect(set.code, set.stderr).toBe(0);
    expect((await run('ip', ['-n', ns, 'link', 'show', p])).stdout).toContain(' mtu 9000 ');
    expect(await field('mtu')).toBe('9000');
    // The LOCAL port too, in this namespace.
    expect((await nvs.vsctl('set', 'Interface', BR, 'mtu_request=9000')).code).toBe(0);
    expect((await run('ip', ['link', 'show', BR])).stdout).toContain(' mtu 9000 ');
    expect((await nvs.vsctl('get', 'Interface', BR, 'mtu')).stdout.trim()).toBe('9000');

    // An MTU the kernel refuses: a clear error on the Interface, the device keeps its MTU, the port keeps forwarding.
    expect((await nvs.vsctl('set', 'Interface', p, 'mtu_request=50')).code).toBe(0);
    expect(await field('error')).toMatch(new RegExp(`^"${p}: could not set MTU 50: .*the kernel refuses it`));
    expect(await field('mtu')).toBe('9000');
    expect(await field('ofport')).toBe('1');
    // One nvs cannot carry (the kernel would take it): refused by nvs, just as clearly.
    expect((await nvs.vsctl('set', 'Interface', p, 'mtu_request=70000')).code).toBe(0);
    expect(await field('error')).toMatch(/could not set MTU 70000: .*MTU 70000 is not possible: a tap port carries frames of an MTU up to 9216/);
    await expectPing(NETNS[0], IPS[1], 2);
    // A good request again clears the error.
    expect((await nvs.vsctl('set', 'Interface', p, 'mtu_request=1500')).code).toBe(0);
    expect(await field('error')).toBe('[]');
    expect(await field('mtu')).toBe('1500');

    // ip link set down: admin_state and link_state follow with the periodic refresh (every 5 s).
    await ip('-n', ns, 'link', 'set', 'dev', p, 'down');
    await eventually(async () => (await field('admin_state')) === 'down', `admin_state of ${p} to read down`, 300);
    expect(await field('link_state')).toBe('down');
    await ip('-n', ns, 'link', 'set', 'dev', p, 'up');
    await eventually(async () => (await field('link_state')) === 'up', `link_state of ${p} to read up`, 300);
  });

  it('opens a type=tap interface as a kernel tap device that forwards', async () => {
    const [t1, t2] = TAPS;
    const add = await nvs.vsctl(...TAPS.flatMap((t, i) => ['--', 'add-port', BR, t, '--', 'set', 'Interface', t, 'type=tap', `ofport_request=${i + 10}`]));
    expect(add.code, add.stderr).toBe(0);
    for (const t of TAPS) {
      expect((await run('ip', ['link', 'show', t])).code).toBe(0);
      expect((await nvs.vsctl('get', 'Interface', t, 'error')).stdout.trim()).toBe('[]');
      expect((await nvs.vsctl('get', 'Interface', t, 'mac_in_use')).stdout.trim()).toBe(`"${sysMac(t)}"`);
    }
    expect((await nvs.appctl('dpif/show')).stdout).toMatch(new RegExp(`${t1} 10/\\d+: \\(tap\\)`));
    // Not tied to the bridge: the bridge's devices are unchanged, and the taps forward between two namespaces.
    for (const [i, t] of TAPS.entries()) await intoNetns(t, TAP_NETNS[i], TAP_IPS[i]);
    await expectPing(TAP_NETNS[0], TAP_IPS[1], 3);
    // Removing the port deletes the device.
    expect((await nvs.vsctl('del-port', BR, t2)).code).toBe(0);
    await eventually(async () => (await run('ip', ['-n', TAP_NETNS[1], 'link', 'show', t2])).code !== 0, `device ${t2} to go`);
  });

  it('deletes the devices with the bridge', async () => {
    const del = await nvs.vsctl('del-br', BR);
    expect(del.code, del.stderr).toBe(0);
    await eventually(async () => !existsSync(`/sys/class/net/${BR}`), `device ${BR} to go`);
    for (const [i, p] of PORTS.entries()) {
      await eventually(async () => (await run('ip', ['-n', NETNS[i], 'link', 'show', p])).code !== 0, `device ${p} to go from ${NETNS[i]}`);
    }
  });
});

describe.skipIf(skipOvs)('plain --enable-dummy, whatever the privileges', () => {
  const br = `tc${tag}`;

  it('says in one log line what internal ports are, and types nvs cannot open yet are errors', async () => {
    const add = await nvs.vsctl('add-br', br, '--', 'add-port', br, 'v1', '--', 'set', 'Interface', 'v1', 'type=gre');
    // ovs-vsctl itself reports the interface errors it finds after the change.
    expect(add.stderr).toContain('not supported yet');
    expect((await nvs.vsctl('get', 'Interface', 'v1', 'error')).stdout).toContain('interface type \\"gre\\" is not supported yet');
    expect((await nvs.vsctl('get', 'Interface', 'v1', 'ofport')).stdout.trim()).toBe('-1');
    expect((await nvs.vsctl('get', 'Interface', br, 'ofport')).stdout.trim()).toBe('65534');
    const lines = nvs.log('nvs-vswitchd').split('\n').filter((l) => l.includes('internal and LOCAL ports are'));
    expect(lines).toHaveLength(1);
    expect(existsSync(`/sys/class/net/${br}`)).toBe(skipWhy === undefined);
    expect((await nvs.vsctl('del-br', br)).code).toBe(0);
  });
});

// type=tap asks for a kernel device by name: without the privilege to create
// one it is an error on the Interface (internal ports fall back to dummy ports
// instead, as the log says). As root the switch runs with CAP_NET_ADMIN
// dropped (setpriv); as another user it lacks it anyway.
const setprivMissing = skipWhy === undefined && (await run('setpriv', ['--version'])).code !== 0;
describe.skipIf(skipOvs || setprivMissing)('type=tap without CAP_NET_ADMIN', () => {
  const br = `td${tag}`;
  let weak: NvsRun | undefined;
  afterAll(async () => weak?.cleanup());

  it('reports a clear Interface error instead of a silent dummy port', async () => {
    weak = new NvsRun();
    await weak.startDb();
    await weak.startSwitch([], { dummy: 'plain', wrap: skipWhy ? [] : ['setpriv', '--bounding-set=-net_admin', '--inh-caps=-net_admin'] });
    const add = await weak.vsctl('add-br', br, '--', 'add-port', br, `${br}t`, '--', 'set', 'Interface', `${br}t`, 'type=tap');
    expect(add.stderr).toContain(`Error detected while setting up '${br}t'`);
    const error = (await weak.vsctl('get', 'Interface', `${br}t`, 'error')).stdout;
    expect(error).toMatch(/could not add to the datapath: .*(needs CAP_NET_ADMIN|not permitted|cannot be opened)/);
    expect((await weak.vsctl('get', 'Interface', `${br}t`, 'ofport')).stdout.trim()).toBe('-1');
    expect(existsSync(`/sys/class/net/${br}t`)).toBe(false);
    // The LOCAL port falls back to a dummy port, which is always up.
    expect(weak.log('nvs-vswitchd')).toContain('internal and LOCAL ports are dummy ports');
    expect((await weak.vsctl('get', 'Interface', br, 'admin_state')).stdout.trim()).toBe('up');
  });
});
