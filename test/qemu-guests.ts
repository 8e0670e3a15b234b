// QEMU guests for the end-to-end tests (TCG: KVM is not usable here): a
// Debian kernel and a busybox initramfs built here, with the virtio-net
// modules loaded in dependency order. Each guest takes an address and pings
// its peers over and over, printing `PING_OK <peer>` or `PING_FAIL <peer>`
// on its serial console (a file), so a test waits for a line there. The
// network device is the caller's: a tap QEMU opens, or a vhost-user socket.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventually, run } from './e2e-harness.ts';

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

/** A kernel and an initramfs, built once in `work`; guests started from them. */
export class Guests {
  private kver = '';
  private readonly procs = new Map<number, ChildProcess>();

  constructor(private readonly work: string) {}

  /** Builds the initramfs (the kernel is the host's Debian one). */
  async build(): Promise<void> {
    const kver = existsSync('/lib/modules') ? readdirSync('/lib/modules').find((v) => v.endsWith('amd64') && existsSync(`/boot/vmlinuz-${v}`)) : undefined;
    if (!kver) throw new Error('no Debian kernel (linux-image-amd64) installed: scripts/setup.sh installs it');
    this.kver = kver;
    const root = join(this.work, 'root');
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
    const cpio = await run('sh', ['-c', `cd ${root} && find . | cpio -o -H newc 2>/dev/null | gzip > ${join(this.work, 'initrd.gz')}`]);
    if (cpio.code !== 0) throw new Error(`building the initramfs: ${cpio.stderr}`);
  }

  /**
   * Starts guest `id` with address `ip` pinging `peers`; `qemuNet` are the
   * QEMU options of its network device (netdev and device, or more).
   */
  start(id: number, ip: string, peers: string[], qemuNet: string[]): void {
    writeFileSync(this.logPath(id), '');
    this.procs.set(id, spawn('qemu-system-x86_64', [
      '-accel', 'tcg', '-m', '256', '-smp', '1', '-nodefaults', '-display', 'none', '-no-reboot',
      '-serial', `file:${this.logPath(id)}`,
      '-kernel', `/boot/vmlinuz-${this.kver}`, '-initrd', join(this.work, 'initrd.gz'),
      '-append', `console=ttyS0 quiet vmip=${ip} peers=${peers.join(',')}`,
      ...qemuNet,
    ], { stdio: 'ignore' }));
  }

  /** Kills guest `id` (as a crash would) and waits until it is gone. */
  async stop(id: number): Promise<void> {
    const g = this.procs.get(id);
    if (!g) return;
    this.procs.delete(id);
    if (g.exitCode !== null || g.signalCode !== null) return;
    const gone = new Promise((r) => g.once('exit', r));
    g.kill('SIGKILL');
    await gone;
  }

  async stopAll(): Promise<void> {
    for (const id of [...this.procs.keys()]) await this.stop(id);
  }

  private logPath(id: number): string {
    return join(this.work, `vm${id}.log`);
  }

  /** Guest `id`'s serial console so far. */
  log(id: number): string {
    try {
      return readFileSync(this.logPath(id), 'utf8');
    } catch {
      return '';
    }
  }

  /** Waits until guest `id`'s console shows a successful ping of `peer` after `from` bytes of it. */
  async pinged(id: number, peer: string, from = 0): Promise<void> {
    await eventually(async () => this.log(id).slice(from).includes(`PING_OK ${peer}`), `guest ${id} pinging ${peer}: ${this.log(id).slice(-300)}`, 1200);
  }
}
