// Internal ports as tap devices (nvs-vswitchd with plain --enable-dummy, as
// root): the real ovs-vsctl builds a bridge with two internal ports, each is
// moved into its own network namespace, ping crosses the switch, NORMAL
// learns both MACs, the LOCAL port is a kernel device named after the bridge
// while the bridge exists, and del-br removes the devices. Needs
// CAP_NET_ADMIN, /dev/net/tun and `ip netns`; without them that part is
// skipped with a message (CI runs as root, where it must run).
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tapUnavailable } from '@nvs/vswitchd';
import { eventually, NvsRun, run } from './e2e-harness.ts';

// Names unique to this run: tap devices and namespaces are global to the host.
const tag = String(process.pid % 100000);
const BR = `tb${tag}`;
const PORTS = [`tb${tag}a`, `tb${tag}b`];
const NETNS = [`nvstap${tag}a`, `nvstap${tag}b`];
const IPS = ['10.231.0.1', '10.231.0.2'];

async function whyNoNetns(): Promise<string | undefined> {
  const tap = tapUnavailable();
  if (tap) return tap;
  const r = await run('ip', ['netns', 'list']);
  return r.code === 0 ? undefined : `ip netns does not work here: ${r.stderr.trim()}`;
}
const skipWhy = await whyNoNetns();
if (skipWhy) console.warn(`e2e-tap: SKIPPING the tap tests: ${skipWhy}`);

async function ip(...args: string[]): Promise<void> {
  const r = await run('ip', args);
  if (r.code !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
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
  if (!skipWhy) for (const ns of NETNS) await run('ip', ['netns', 'del', ns]);
});

describe.skipIf(skipWhy !== undefined)('internal ports as tap devices, across namespaces', () => {
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
      expect(mac).toBe(`"${readFileSync(`/sys/class/net/${dev}/address`, 'utf8').trim()}"`);
    }
    expect(nvs.log('nvs-vswitchd')).toContain('internal and LOCAL ports are tap devices');
    expect((await nvs.appctl('dpif/show')).stdout).toMatch(new RegExp(`${BR} 65534/\\d+: \\(tap\\)`));
    const macs = PORTS.map((p) => readFileSync(`/sys/class/net/${p}/address`, 'utf8').trim());

    // Each port into its own namespace: nvs keeps its descriptors, which go on working.
    for (const [i, p] of PORTS.entries()) {
      await run('ip', ['netns', 'del', NETNS[i]]);
      await ip('netns', 'add', NETNS[i]);
      await ip('link', 'set', 'dev', p, 'netns', NETNS[i]);
      await ip('-n', NETNS[i], 'addr', 'add', `${IPS[i]}/24`, 'dev', p);
      await ip('-n', NETNS[i], 'link', 'set', 'dev', p, 'up');
    }
    expect(existsSync(`/sys/class/net/${PORTS[0]}`)).toBe(false);

    const ping = await run('ip', ['netns', 'exec', NETNS[0], 'ping', '-c', '3', '-i', '0.2', '-W', '2', IPS[1]], { timeoutMs: 15_000 });
    expect(ping.code, ping.stdout + ping.stderr).toBe(0);
    expect(ping.stdout).toContain('3 received');

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

  it('deletes the devices with the bridge', async () => {
    const del = await nvs.vsctl('del-br', BR);
    expect(del.code, del.stderr).toBe(0);
    await eventually(async () => !existsSync(`/sys/class/net/${BR}`), `device ${BR} to go`);
    for (const [i, p] of PORTS.entries()) {
      await eventually(async () => (await run('ip', ['-n', NETNS[i], 'link', 'show', p])).code !== 0, `device ${p} to go from ${NETNS[i]}`);
    }
  });
});

describe('plain --enable-dummy, whatever the privileges', () => {
  const br = `tc${tag}`;

  it('says in one log line what internal ports are, and types nvs cannot open yet are errors', async () => {
    const add = await nvs.vsctl('add-br', br, '--', 'add-port', br, 'v1', '--', 'set', 'Interface', 'v1', 'type=dpdkvhostuser');
    // ovs-vsctl itself reports the interface errors it finds after the change.
    expect(add.stderr).toContain('not supported yet');
    expect((await nvs.vsctl('get', 'Interface', 'v1', 'error')).stdout).toContain('interface type \\"dpdkvhostuser\\" is not supported yet');
    expect((await nvs.vsctl('get', 'Interface', 'v1', 'ofport')).stdout.trim()).toBe('-1');
    expect((await nvs.vsctl('get', 'Interface', br, 'ofport')).stdout.trim()).toBe('65534');
    const lines = nvs.log('nvs-vswitchd').split('\n').filter((l) => l.includes('internal and LOCAL ports are'));
    expect(lines).toHaveLength(1);
    expect(existsSync(`/sys/class/net/${br}`)).toBe(skipWhy === undefined);
    expect((await nvs.vsctl('del-br', br)).code).toBe(0);
  });
});
