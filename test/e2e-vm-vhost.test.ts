// VMs as OpenStack and libvirt attach them to OVS-DPDK: two QEMU guests
// (TCG; the kernel and initramfs of ./qemu-guests.ts) whose virtio-net
// devices are vhost-user netdevs, QEMU the socket's server, on an nvs
// bridge's `dpdkvhostuserclient` ports. The guests ping each other through
// nvs; then one guest is killed and started again (its socket goes and comes
// back) and nvs reconnects by itself: the pings resume with no command given
// to nvs. QEMU 7.2 under TCG needs `vectors=0` (no MSI-X) with any vhost-user
// back end, and guest memory must be shared (memfd, share=on).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, NvsRun } from './e2e-harness.ts';
import { needsOvs } from './ovs-tools.ts';
import { privilegesMissing } from './privileges.ts';
import { Guests } from './qemu-guests.ts';

const skipOvs = needsOvs('test/e2e-vm-vhost', ['ovs-vsctl']);
const skipWhy = privilegesMissing('test/e2e-vm-vhost: QEMU guests on vhost-user ports');

const BR = `vu${process.pid % 100000}`;
const IPS = ['10.235.0.1', '10.235.0.2'];

let work: string;
let guests: Guests;
let nvs: NvsRun;

const socket = (i: number) => join(work, `q${i}.sock`);

/** Starts guest i, QEMU listening on its vhost-user socket. */
function startGuest(i: number): void {
  guests.start(i, IPS[i], [IPS[1 - i]], [
    '-object', 'memory-backend-memfd,id=mem,size=256M,share=on', '-numa', 'node,memdev=mem',
    '-chardev', `socket,id=c0,path=${socket(i)},server=on,wait=off`,
    '-netdev', 'vhost-user,id=n0,chardev=c0',
    '-device', `virtio-net-pci,netdev=n0,mac=52:54:00:00:01:0${i + 1},vectors=0`,
  ]);
}

/** Port `name`'s counters from the Interface table. */
async function statistics(name: string): Promise<Record<string, number>> {
  const r = await nvs.vsctl('get', 'Interface', name, 'statistics');
  return Object.fromEntries([...r.stdout.matchAll(/(\w+)=(\d+)/g)].map((m) => [m[1], Number(m[2])]));
}

beforeAll(async () => {
  if (skipWhy || skipOvs) return;
  work = mkdtempSync(join(tmpdir(), 'nvs-vmvu-'));
  guests = new Guests(work);
  await guests.build();
  nvs = new NvsRun();
  await nvs.startDb();
  await nvs.startSwitch([], { dummy: 'plain' });
}, 120_000);

afterAll(async () => {
  await guests?.stopAll();
  await nvs?.cleanup();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe.skipIf(skipOvs || skipWhy !== undefined)('QEMU guests on dpdkvhostuserclient ports', () => {
  it('the guests ping each other through nvs', async () => {
    for (const i of [0, 1]) startGuest(i);
    const add = await nvs.vsctl('add-br', BR, '--', 'set', 'Bridge', BR, 'datapath_type=netdev',
      ...[0, 1].flatMap((i) => ['--', 'add-port', BR, `vm${i}`, '--', 'set', 'Interface', `vm${i}`, 'type=dpdkvhostuserclient', `options:vhost-server-path=${socket(i)}`]));
    expect(add.code, add.stderr).toBe(0);
    for (const i of [0, 1]) expect((await nvs.vsctl('get', 'Interface', `vm${i}`, 'error')).stdout.trim()).toBe('[]');
    await guests.pinged(0, IPS[1]);
    await guests.pinged(1, IPS[0]);
    // The pings went through the vhost-user ports, both ways (the Interface
    // table's statistics are refreshed every few seconds).
    for (const i of [0, 1]) {
      await eventually(async () => {
        const s = await statistics(`vm${i}`);
        return s.rx_packets > 0 && s.tx_packets > 0;
      }, `vm${i} statistics counting the pings`, 400);
    }
  }, 240_000);

  it('reconnects to a guest killed and started again, with no command to nvs', async () => {
    await guests.stop(1);
    const before = (await statistics('vm1')).rx_packets;
    const mark = guests.log(0).length;
    // While guest 2 is gone, guest 1's pings fail.
    await eventually(async () => guests.log(0).slice(mark).includes(`PING_FAIL ${IPS[1]}`), 'guest 1 failing to ping the stopped guest', 1200);
    startGuest(1);
    await guests.pinged(1, IPS[0]);
    await guests.pinged(0, IPS[1], guests.log(0).lastIndexOf(`PING_FAIL ${IPS[1]}`));
    await eventually(async () => (await statistics('vm1')).rx_packets > before, 'vm1 counting packets again', 400);
    expect((await nvs.vsctl('get', 'Interface', 'vm1', 'error')).stdout.trim()).toBe('[]');
  }, 240_000);
});
