// A real controller drives nvs: our os-ken learning switch (test/osken/
// learning_switch.py, OpenFlow 1.3, three tables and a Nicira register, the
// shape of Neutron's OVS agent) listens on loopback, nvs connects to it as
// the Bridge's `tcp:` controller, and packets injected on dummy ports reach
// it as packet-ins. It installs flows and packet-outs what it learned from;
// once both ends are known, traffic stays in the datapath: the packet-in
// count stops growing, packets still arrive, and datapath flows are there.
// os-ken comes from PyPI into a venv (scripts/setup.sh); NVS_OSKEN_PYTHON
// names another interpreter that has it.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ovsPorts } from '../packages/ofproto/test/helpers.ts';
import { buildPacket } from '../packages/vswitchd/src/packet.ts';
import { NvsRun } from './e2e-harness.ts';

const PYTHON = process.env.NVS_OSKEN_PYTHON ?? '/opt/nvs-osken/bin/python';
const APP = join(import.meta.dirname, 'osken', 'learning_switch.py');
const MAC_A = 0x0a00000000a1;
const MAC_B = 0x0a00000000b2;

/** A free TCP port on loopback (the controller listens there). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function frame(src: number, dst: number): string {
  const bytes = buildPacket({ eth_src: src, eth_dst: dst, eth_type: 0x0800, nw_src: 0x0a000001, nw_dst: 0x0a000002, nw_proto: 17, nw_ttl: 64, tp_src: 5000, tp_dst: 6000 });
  return Buffer.from(bytes).toString('hex');
}

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('an os-ken application controls nvs over tcp: (OpenFlow 1.3, Nicira registers)', () => {
  let nvs: NvsRun;
  let app: ChildProcess;
  let out = '';
  const packetIns = () => out.split('\n').filter((l) => l.startsWith('packet_in ')).length;

  beforeAll(async () => {
    if (!existsSync(PYTHON)) throw new Error(`${PYTHON} not found: run scripts/setup.sh (it installs os-ken into /opt/nvs-osken), or set NVS_OSKEN_PYTHON`);
    const port = await freePort();
    app = spawn(PYTHON, [APP, String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    app.stdout!.on('data', (d) => (out += String(d)));
    let err = '';
    app.stderr!.on('data', (d) => (err += String(d)));
    nvs = new NvsRun();
    await nvs.startDb();
    await nvs.startSwitch();
    const add = await nvs.vsctl('add-br', 'br0', '--', 'set', 'bridge', 'br0', 'fail_mode=secure', ...ovsPorts([{ n: 1 }, { n: 2 }]));
    expect(add.code, add.stderr).toBe(0);
    // nvs dials the controller (and keeps redialling with backoff until it listens).
    const set = await nvs.vsctl('set-controller', 'br0', `tcp:127.0.0.1:${port}`);
    expect(set.code, set.stderr).toBe(0);
    await until(`os-ken to see the switch (its stderr: ${err})`, () => out.includes('connected'));
  }, 60_000);

  afterAll(async () => {
    app?.kill();
    await nvs?.cleanup();
  });

  it('the Controller row says connected', async () => {
    await until('Controller.is_connected', async () => (await nvs.vsctl('--columns=is_connected', 'list', 'Controller')).stdout.includes('true'));
    const row = await nvs.vsctl('--columns=role,status', 'list', 'Controller');
    expect(row.stdout).toContain('state=ACTIVE');
  });

  it('learns from packet-ins, then traffic stays in the datapath', async () => {
    // Its three tables are in place (the table-miss rules it sent on connecting).
    await until('the controller flows', async () => (await nvs.ofctl('dump-flows', 'br0')).stdout.includes('table=20'));
    // A to B: B unknown, so a packet-in (A learned) and a flood; then B to A: a packet-in (B learned), sent to A.
    await nvs.appctl('netdev-dummy/receive', 'p1', frame(MAC_A, MAC_B));
    await until('the first packet-in', () => packetIns() >= 1);
    await nvs.appctl('netdev-dummy/receive', 'p2', frame(MAC_B, MAC_A));
    await until('the second packet-in', () => packetIns() >= 2);
    expect(out).toMatch(/packet_in 1 table 10 in_port 1 0a:00:00:00:00:a1 -> 0a:00:00:00:00:b2/);
    expect(out).toMatch(/packet_in 2 table 10 in_port 2 0a:00:00:00:00:b2 -> 0a:00:00:00:00:a1/);
    // The flows it installed: sources in table 10, destinations in table 20 (with reg6, the network).
    await until('the learned flows', async () => (await nvs.ofctl('dump-flows', 'br0')).stdout.split('\n').filter((l) => l.includes('reg6=0x1')).length >= 4);
    await nvs.appctl('netdev-dummy/drain', 'p1');
    await nvs.appctl('netdev-dummy/drain', 'p2');
    for (let i = 0; i < 5; i++) {
      await nvs.appctl('netdev-dummy/receive', 'p1', frame(MAC_A, MAC_B));
      await nvs.appctl('netdev-dummy/receive', 'p2', frame(MAC_B, MAC_A));
    }
    await nvs.appctl('revalidator/wait');
    // Delivered to the right ports, and no new packet-in: the switch forwarded them itself.
    const atB = (await nvs.appctl('netdev-dummy/drain', 'p2')).stdout.trim().split('\n').filter(Boolean);
    const atA = (await nvs.appctl('netdev-dummy/drain', 'p1')).stdout.trim().split('\n').filter(Boolean);
    expect(atB).toHaveLength(5);
    expect(atA).toHaveLength(5);
    expect(atB[0]).toBe(frame(MAC_A, MAC_B));
    await new Promise((r) => setTimeout(r, 300));
    expect(packetIns()).toBe(2);
    const dp = await nvs.appctl('dpif/dump-flows', 'br0');
    expect(dp.stdout).toMatch(/actions:\S+/);
  });
});
