// vhost-user ports with DPDK's testpmd as the front end (Debian dpdk-dev):
// two net_virtio_user ports on an nvs bridge's dpdkvhostuser ports, with
// in_port → output flows between them. testpmd sends in txonly mode, drains
// in rxonly mode and loops packets in io mode; at the end every packet is
// accounted for: what testpmd sent on a port is what nvs received on it,
// what nvs sent on a port is what testpmd received there, and what nvs
// received is what it forwarded or dropped (counted). Memory is memfd-backed
// (--no-huge), so no hugepages are needed.
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, NvsRun } from './e2e-harness.ts';
import { needsOvs } from './ovs-tools.ts';

const skipOvs = needsOvs('test/e2e-vhost-testpmd', ['ovs-vsctl']);
if (spawnSync('dpdk-testpmd', ['--version']).error) throw new Error('dpdk-testpmd not found on PATH: apt-get install dpdk-dev (scripts/setup.sh does)');

const BR = 'vhbr';
const MACS = ['02:00:00:00:00:01', '02:00:00:00:00:02'];

/** Interactive testpmd driven through its prompt. */
class Testpmd {
  private out = '';
  private readonly proc: ChildProcessWithoutNullStreams;

  constructor(rundir: string) {
    const vdevs = [0, 1].flatMap((i) => ['--vdev', `net_virtio_user${i},path=${join(rundir, `vh${i}`)},queues=1,mac=${MACS[i]}`]);
    // Unbuffered: testpmd's printf output to a pipe would otherwise wait for a full buffer.
    this.proc = spawn('stdbuf', ['-o0', 'dpdk-testpmd',
      '-l', '0,1', '--main-lcore', '1', '--no-pci', `--file-prefix=nvsvh${process.pid}`, '--no-huge', '-m', '512', '--single-file-segments',
      ...vdevs, '--',
      '-i', '--nb-cores=1', '--total-num-mbufs=16384', '--txpkts=64', '--burst=32', `--eth-peer=0,${MACS[1]}`, `--eth-peer=1,${MACS[0]}`,
    ]);
    this.proc.stdout.on('data', (d: Buffer) => (this.out += d.toString()));
    this.proc.stderr.on('data', (d: Buffer) => (this.out += d.toString()));
  }

  /** Commands given so far: each ends with one prompt. */
  private given = 0;

  /** The output of `line` (empty: the first prompt), once the prompt is back. */
  async cmd(line: string): Promise<string> {
    if (line) {
      this.given++;
      this.proc.stdin.write(`${line}\n`);
    }
    const n = this.given;
    const parts = await eventually(async () => {
      const p = this.out.split('testpmd> ');
      return p.length >= n + 2 && p;
    }, `testpmd: ${line || 'prompt'}\n${this.out.slice(-2000)}`, 600);
    return parts[n];
  }

  /** Cumulative RX and TX packets per port. */
  async stats(): Promise<{ rx: number; tx: number }[]> {
    const text = await this.cmd('show port stats all');
    return text
      .split('NIC statistics for port')
      .slice(1)
      .map((s) => ({ rx: Number(/RX-packets:\s+(\d+)/.exec(s)![1]), tx: Number(/TX-packets:\s+(\d+)/.exec(s)![1]) }));
  }

  /** Runs forwarding mode `mode` for `ms`, then stops. */
  async run(mode: string, ms: number, start = 'start'): Promise<void> {
    await this.cmd(`set fwd ${mode}`);
    await this.cmd(start);
    await new Promise((r) => setTimeout(r, ms));
    await this.cmd('stop');
  }

  async quit(): Promise<void> {
    this.proc.stdin.write('quit\n');
    const exited = new Promise((r) => this.proc.once('exit', r));
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }

  log(): string {
    return this.out;
  }
}

interface PortCounts {
  rx: number;
  tx: number;
  txDrop: number;
}

/** nvs's counters of the bridge's ports 1 and 2 (nvs-ofctl dump-ports). */
async function nvsCounts(nvs: NvsRun): Promise<PortCounts[]> {
  const r = await nvs.ofctl('dump-ports', BR);
  expect(r.code, r.stderr).toBe(0);
  return [1, 2].map((no) => {
    const m = new RegExp(`port\\s+${no}: rx pkts=(\\d+),.*\\n\\s+tx pkts=(\\d+), bytes=\\d+, drop=(\\d+)`).exec(r.stdout);
    if (!m) throw new Error(`port ${no} not in:\n${r.stdout}`);
    return { rx: Number(m[1]), tx: Number(m[2]), txDrop: Number(m[3]) };
  });
}

let nvs: NvsRun;
beforeAll(async () => {
  nvs = new NvsRun();
  await nvs.startDb();
  // Plain --enable-dummy: under =override vhost-user ports would be dummy ports, as in ovs-vswitchd.
  await nvs.startSwitch([], { dummy: 'plain' });
});
afterAll(async () => {
  await nvs?.cleanup();
  // testpmd's runtime directory (its --file-prefix).
  rmSync(`/var/run/dpdk/nvsvh${process.pid}`, { recursive: true, force: true });
});

describe.skipIf(skipOvs)('vhost-user ports with dpdk-testpmd (net_virtio_user)', () => {
  it('carries txonly, rxonly and io traffic through a bridge and counts every packet', async () => {
    const add = await nvs.vsctl(
      'add-br', BR, '--', 'set', 'Bridge', BR, 'datapath_type=netdev',
      ...[0, 1].flatMap((i) => ['--', 'add-port', BR, `vh${i}`, '--', 'set', 'Interface', `vh${i}`, 'type=dpdkvhostuser', `ofport_request=${i + 1}`]),
    );
    expect(add.code, add.stderr).toBe(0);
    for (const i of [0, 1]) {
      expect((await nvs.vsctl('get', 'Interface', `vh${i}`, 'error')).stdout.trim()).toBe('[]');
      expect(existsSync(join(nvs.rundir, `vh${i}`)), 'the socket is in the run directory').toBe(true);
    }
    for (const f of ['in_port=1,actions=output:2', 'in_port=2,actions=output:1']) expect((await nvs.ofctl('add-flow', BR, f)).code).toBe(0);

    const pmd = new Testpmd(nvs.rundir);
    try {
      await pmd.cmd('');
      // txonly: both ports send; nvs takes every packet and forwards it into the other guest's rx ring (full: dropped, counted).
      await pmd.run('txonly', 1000);
      const sent = await pmd.stats();
      expect(sent[0].tx).toBeGreaterThan(1000);
      await eventually(async () => (await nvsCounts(nvs)).every((c, i) => c.rx === sent[i].tx), 'nvs received all testpmd sent');
      // rxonly: testpmd drains what nvs put in its rx rings.
      await pmd.run('rxonly', 500);
      // io: packets seeded with tx_first loop port 0 → nvs → port 1 → port 0 ….
      await pmd.run('io', 2000, 'start tx_first 32');
      await pmd.run('rxonly', 500);
      const t = await pmd.stats();
      const n = await eventually(async () => {
        const c = await nvsCounts(nvs);
        return c.every((p, i) => p.rx === t[i].tx) && c;
      }, 'nvs received all testpmd sent');
      const looped = t[0].tx + t[1].tx - (sent[0].tx + sent[1].tx);
      expect(looped, 'io mode looped packets').toBeGreaterThan(10_000);
      for (const i of [0, 1]) {
        expect(n[i].tx, `port ${i}: testpmd received all nvs sent`).toBe(t[i].rx);
      }
      // What nvs received it sent on or dropped (guest ring full), or lost as an upcall.
      const stats = (await nvs.appctl('dpif-netdev/pmd-stats-show')).stdout;
      // (Misses while the flows' megaflows are being installed queue upcalls; a full queue drops them, counted.)
      const lost = Number(/upcalls lost \(queue full\): (\d+)/.exec(stats)![1]);
      const ports = (await nvs.ofctl('dump-ports', BR)).stdout;
      expect(n[0].tx + n[0].txDrop + n[1].tx + n[1].txDrop + lost, `${stats}\n${ports}`).toBe(n[0].rx + n[1].rx);
      // The cost per packet as OVS reports it, on the polling thread that served both ports.
      const perPacket = Number(/avg processing cycles per packet: ([\d.]+)/.exec(stats)?.[1]);
      expect(perPacket, stats).toBeGreaterThan(0);
      console.log(`vhost-user through nvs: ${perPacket} processing cycles per packet`);
      expect((await nvs.vsctl('get', 'Interface', 'vh0', 'error')).stdout.trim()).toBe('[]');
    } finally {
      await pmd.quit();
    }
  }, 120_000);

  it('says in Interface.error when a front end sends a malformed message, while it stays connected', async () => {
    // SET_VRING_NUM (8) of vring 0 with 3 entries: not a power of two.
    const msg = Buffer.alloc(20);
    msg.writeUInt32LE(8, 0);
    msg.writeUInt32LE(1, 4);
    msg.writeUInt32LE(8, 8);
    msg.writeUInt32LE(0, 12);
    msg.writeUInt32LE(3, 16);
    const sock = createConnection(join(nvs.rundir, 'vh1'));
    await new Promise((r) => sock.once('connect', r));
    sock.write(msg);
    const error = async () => (await nvs.vsctl('get', 'Interface', 'vh1', 'error')).stdout.trim();
    // Written back with the statistics (every 5 s).
    expect(await eventually(async () => (await error()).includes('not a power of two') && (await error()), 'Interface.error', 300)).toContain('vring 0');
    expect((await nvs.vsctl('get', 'Interface', 'vh0', 'error')).stdout.trim()).toBe('[]');
    sock.destroy();
    await eventually(async () => (await error()) === '[]', 'Interface.error cleared', 300);
  }, 60_000);
});
