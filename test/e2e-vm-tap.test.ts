// VMs as libvirt attaches them: two QEMU guests (TCG; a Debian kernel and a
// busybox initramfs built here) each on a tap device QEMU opens itself
// (`-netdev tap,ifname=…,script=no,vhost=off`: no vhost-net on these
// machines), added to an nvs bridge with libvirt's own line (`--may-exist
// add-port br vnetN -- set Interface vnetN external-ids:…`, no type) and a
// namespace on a veth beside them. The guests ping each other and the
// namespace; then one guest is stopped (its tap goes) and started again (the
// tap comes back), and it pings again with no command given to nvs. Needs
// root, qemu-system-x86, linux-image-amd64 and busybox-static (scripts/setup.sh
// installs them); skipped with a message without root unless
// NVS_REQUIRE_PRIVILEGED=1.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, NvsRun, run } from './e2e-harness.ts';
import { needsOvs } from './ovs-tools.ts';
import { privilegesMissing } from './privileges.ts';
import { Guests } from './qemu-guests.ts';

const skipOvs = needsOvs('test/e2e-vm-tap', ['ovs-vsctl']);
const skipWhy = privilegesMissing('test/e2e-vm-tap: QEMU guests on tap devices');

const tag = String(process.pid % 100000);
const BR = `vb${tag}`;
const TAPS = [`vnet${tag}a`, `vnet${tag}b`];
const NS = `nvsvm${tag}`;
const VETH = `vv${tag}`;
const IPS = ['10.234.0.1', '10.234.0.2'];
const NS_IP = '10.234.0.9';

let work: string;
let guests: Guests;
let nvs: NvsRun;

/** Starts guest i on its tap (QEMU creates the tap); libvirt brings it up and adds it to the bridge. */
async function startGuest(i: number): Promise<void> {
  guests.start(i, IPS[i], [IPS[1 - i], NS_IP], [
    '-netdev', `tap,id=n0,ifname=${TAPS[i]},script=no,downscript=no,vhost=off`,
    '-device', `virtio-net-pci,netdev=n0,mac=52:54:00:00:00:0${i + 1}`,
  ]);
  await eventually(async () => existsSync(`/sys/class/net/${TAPS[i]}`), `${TAPS[i]} created by QEMU`);
  const up = await run('ip', ['link', 'set', 'dev', TAPS[i], 'up']);
  expect(up.code, up.stderr).toBe(0);
}

beforeAll(async () => {
  if (skipWhy || skipOvs) return;
  work = mkdtempSync(join(tmpdir(), 'nvs-vm-'));
  guests = new Guests(work);
  await guests.build();
  nvs = new NvsRun();
  await nvs.startDb();
  await nvs.startSwitch([], { dummy: 'plain' });
  // The namespace beside the guests, on a veth.
  await run('ip', ['netns', 'del', NS]);
  await run('ip', ['link', 'del', VETH]);
  for (const args of [['netns', 'add', NS], ['link', 'add', VETH, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', NS], ['-n', NS, 'addr', 'add', `${NS_IP}/24`, 'dev', 'eth0'], ['-n', NS, 'link', 'set', 'eth0', 'up'], ['link', 'set', VETH, 'up']]) {
    const r = await run('ip', args);
    if (r.code !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
  }
  await run('ip', ['netns', 'exec', NS, 'ethtool', '-K', 'eth0', 'tso', 'off']);
}, 120_000);

afterAll(async () => {
  await guests?.stopAll();
  await nvs?.cleanup();
  if (!skipWhy) {
    await run('ip', ['link', 'del', VETH]);
    await run('ip', ['netns', 'del', NS]);
  }
  if (work) rmSync(work, { recursive: true, force: true });
});

describe.skipIf(skipOvs || skipWhy !== undefined)('QEMU guests on taps QEMU opens, added as libvirt adds them', () => {
  it('the guests ping each other and a namespace on the same bridge', async () => {
    expect((await nvs.vsctl('add-br', BR, '--', 'set', 'Bridge', BR, 'datapath_type=netdev', '--', 'add-port', BR, VETH)).code).toBe(0);
    for (const i of [0, 1]) {
      await startGuest(i);
      // libvirt's line for <interface type='bridge'><virtualport type='openvswitch'/>.
      const add = await nvs.vsctl('--', '--may-exist', 'add-port', BR, TAPS[i], '--', 'set', 'Interface', TAPS[i], `external-ids:attached-mac="52:54:00:00:00:0${i + 1}"`, `external-ids:iface-id=vm${i}`, 'external-ids:iface-status=active', `external-ids:vm-id=vm${i}`);
      expect(add.code, add.stderr).toBe(0);
      expect((await nvs.vsctl('get', 'Interface', TAPS[i], 'error')).stdout.trim()).toBe('[]');
    }
    await guests.pinged(0, IPS[1]);
    await guests.pinged(1, IPS[0]);
    await guests.pinged(0, NS_IP);
    await guests.pinged(1, NS_IP);
  }, 180_000);

  it('recovers a guest stopped and started again (its tap goes and comes back) without touching nvs', async () => {
    await guests.stop(1);
    await eventually(async () => !existsSync(`/sys/class/net/${TAPS[1]}`), 'the tap gone with QEMU');
    await eventually(async () => (await nvs.vsctl('get', 'Interface', TAPS[1], 'error')).stdout.includes('the device is gone'), 'Interface.error while the guest is stopped', 400);
    const mark = guests.log(0).length;
    await startGuest(1);
    await guests.pinged(1, IPS[0]);
    await guests.pinged(0, IPS[1], mark);
    await guests.pinged(1, NS_IP);
  }, 240_000);
});
