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
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, NvsRun, run } from './e2e-harness.ts';
import { needsOvs } from './ovs-tools.ts';
import { privilegesMissing } from './privileges.ts';

const skipOvs = needsOvs('test/e2e-vm-tap', ['ovs-vsctl']);
const skipWhy = privilegesMissing('test/e2e-vm-tap: QEMU guests on tap devices');

const tag = String(process.pid % 100000);
const BR = `vb${tag}`;
const TAPS = [`vnet${tag}a`, `vnet${tag}b`];
const NS = `nvsvm${tag}`;
const VETH = `vv${tag}`;
const IPS = ['10.234.0.1', '10.234.0.2'];
const NS_IP = '10.234.0.9';
const MODULES = ['drivers/virtio/virtio_ring', 'drivers/virtio/virtio', 'drivers/virtio/virtio_pci_modern_dev', 'drivers/virtio/virtio_pci_legacy_dev', 'drivers/virtio/virtio_pci', 'net/core/failover', 'drivers/net/net_failover', 'drivers/net/virtio_net'];

// The guest's init: virtio modules in dependency order, an address, then it
// pings the addresses on its command line over and over, printing each result.
const INIT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in ${MODULES.map((m) => m.split('/').pop()).join(' ')}; do insmod /lib/modules/$m.ko; done
IP=$(sed -n 's/.*vmip=\\([^ ]*\\).*/\\1/p' /proc/cmdline); PEERS=$(sed -n 's/.*peers=\\([^ ]*\\).*/\\1/p' /proc/cmdline | tr , ' ')
ip link set eth0 up; ip addr add $IP/24 dev eth0
echo "VM $IP up"
while true; do for p in $PEERS; do if ping -c 1 -W 1 $p >/dev/null; then echo "PING_OK $p"; else echo "PING_FAIL $p"; fi; done; sleep 0.5; done
`;

let work: string;
let kver: string | undefined;
const guests: Array<ChildProcess | undefined> = [undefined, undefined];
let nvs: NvsRun;

function buildInitramfs(): string {
  const root = join(work, 'root');
  for (const d of ['bin', 'proc', 'sys', 'dev', 'lib/modules']) mkdirSync(join(root, d), { recursive: true });
  copyFileSync('/bin/busybox', join(root, 'bin/busybox'));
  writeFileSync(join(root, 'init'), INIT);
  chmodSync(join(root, 'init'), 0o755);
  chmodSync(join(root, 'bin/busybox'), 0o755);
  const kdir = `/lib/modules/${kver}/kernel`;
  for (const m of MODULES) {
    const ko = ['.ko', '.ko.xz'].map((e) => join(kdir, m + e)).find(existsSync);
    if (!ko) throw new Error(`module ${m} missing in ${kdir}`);
    copyFileSync(ko, join(root, 'lib/modules', ko.split('/').pop()!));
  }
  return root;
}

function log(i: number): string {
  try {
    return readFileSync(join(work, `vm${i}.log`), 'utf8');
  } catch {
    return '';
  }
}

/** Starts guest i on its tap (QEMU creates the tap); libvirt brings it up and adds it to the bridge. */
async function startGuest(i: number): Promise<void> {
  writeFileSync(join(work, `vm${i}.log`), '');
  const peers = [IPS[1 - i], NS_IP].join(',');
  guests[i] = spawn('qemu-system-x86_64', [
    '-accel', 'tcg', '-m', '256', '-smp', '1', '-nodefaults', '-display', 'none', '-no-reboot',
    '-serial', `file:${join(work, `vm${i}.log`)}`,
    '-kernel', `/boot/vmlinuz-${kver}`, '-initrd', join(work, 'initrd.gz'),
    '-append', `console=ttyS0 quiet vmip=${IPS[i]} peers=${peers}`,
    '-netdev', `tap,id=n0,ifname=${TAPS[i]},script=no,downscript=no,vhost=off`,
    '-device', `virtio-net-pci,netdev=n0,mac=52:54:00:00:00:0${i + 1}`,
  ], { stdio: 'ignore' });
  await eventually(async () => existsSync(`/sys/class/net/${TAPS[i]}`), `${TAPS[i]} created by QEMU`);
  const up = await run('ip', ['link', 'set', 'dev', TAPS[i], 'up']);
  expect(up.code, up.stderr).toBe(0);
}

async function stopGuest(i: number): Promise<void> {
  const g = guests[i];
  if (!g) return;
  const gone = new Promise((r) => g.once('exit', r));
  g.kill('SIGKILL');
  await gone;
  guests[i] = undefined;
}

/** Waits until guest i's log shows a successful ping of `peer` after `from` bytes of log. */
async function pinged(i: number, peer: string, from = 0): Promise<void> {
  await eventually(async () => log(i).slice(from).includes(`PING_OK ${peer}`), `guest ${i + 1} pinging ${peer}: ${log(i).slice(-300)}`, 1200);
}

beforeAll(async () => {
  if (skipWhy || skipOvs) return;
  work = mkdtempSync(join(tmpdir(), 'nvs-vm-'));
  kver = existsSync('/lib/modules') ? readdirSync('/lib/modules').find((v) => v.endsWith('amd64') && existsSync(`/boot/vmlinuz-${v}`)) : undefined;
  if (!kver) throw new Error('no Debian kernel (linux-image-amd64) installed: scripts/setup.sh installs it');
  const root = buildInitramfs();
  const cpio = await run('sh', ['-c', `cd ${root} && find . | cpio -o -H newc 2>/dev/null | gzip > ${join(work, 'initrd.gz')}`]);
  expect(cpio.code, cpio.stderr).toBe(0);
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
  for (const i of [0, 1]) await stopGuest(i);
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
    await pinged(0, IPS[1]);
    await pinged(1, IPS[0]);
    await pinged(0, NS_IP);
    await pinged(1, NS_IP);
  }, 180_000);

  it('recovers a guest stopped and started again (its tap goes and comes back) without touching nvs', async () => {
    await stopGuest(1);
    await eventually(async () => !existsSync(`/sys/class/net/${TAPS[1]}`), 'the tap gone with QEMU');
    await eventually(async () => (await nvs.vsctl('get', 'Interface', TAPS[1], 'error')).stdout.includes('the device is gone'), 'Interface.error while the guest is stopped', 400);
    const mark = log(0).length;
    await startGuest(1);
    await pinged(1, IPS[0]);
    await pinged(0, IPS[1], mark);
    await pinged(1, NS_IP);
  }, 240_000);
});
