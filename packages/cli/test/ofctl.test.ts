// nvs-ofctl without a switch: parse-pcap against the real `ovs-ofctl
// parse-pcap` (keys from the datapath's extractor), usage errors, and a
// clear message when the bridge's socket is absent. The commands that talk
// to a bridge are exercised end to end in test/e2e-*.test.ts.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildPacket, writePcap } from '@nvs/vswitchd';
import { runOfctl } from '../src/ofctl/main.ts';
import { ProgressBar } from '../src/ofctl/progress.ts';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'nvs-ofctl-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function io() {
  const out = { stdout: '', stderr: '' };
  return { out, io: { stdout: { write: (s: string) => (out.stdout += s) }, stderr: { write: (s: string) => (out.stderr += s) }, env: { NVS_RUNDIR: dir } } };
}

it('parse-pcap prints each packet flow exactly as ovs-ofctl parse-pcap does', async () => {
  const m1 = 0x0a0000000001;
  const m2 = 0x0a0000000002;
  const file = join(dir, 'mix.pcap');
  writeFileSync(
    file,
    writePcap([
      buildPacket({ eth_src: m1, eth_dst: m2, nw_src: 0x0a000001, nw_dst: 0x0a000002, nw_proto: 6, tp_src: 1234, tp_dst: 80 }),
      buildPacket({ eth_src: m1, eth_dst: m2, nw_src: 0x0a000001, nw_dst: 0x0a000002, nw_proto: 6, tp_src: 1, tp_dst: 2, tcp_flags: 0x012 }),
      buildPacket({ eth_src: m1, eth_dst: m2, vlan_tci: 0x1000 | (3 << 13) | 5, nw_src: 1, nw_dst: 2, nw_proto: 17, tp_src: 53, tp_dst: 53, nw_ttl: 9 }),
      buildPacket({ eth_src: m1, eth_dst: 0xffffffffffff, eth_type: 0x0806, nw_proto: 1, nw_src: 0x0a000001, nw_dst: 0x0a000002 }),
      buildPacket({ eth_src: m1, eth_dst: m2, eth_type: 0x86dd, ipv6_src: 1n, ipv6_dst: 2n, nw_proto: 17, tp_src: 5, tp_dst: 6, ipv6_label: 7 }),
      buildPacket({ eth_src: m1, eth_dst: m2, nw_src: 1, nw_dst: 2, nw_proto: 1, tp_src: 8, tp_dst: 0 }),
      buildPacket({ eth_src: m1, eth_dst: m2, nw_src: 1, nw_dst: 2, nw_proto: 47 }),
      buildPacket({ eth_src: m1, eth_dst: m2, eth_type: 0x88cc }),
    ]),
  );
  const oracle = execFileSync('ovs-ofctl', ['parse-pcap', file], { encoding: 'utf8' });
  const { out, io: cli } = io();
  expect(await runOfctl(['parse-pcap', file], cli)).toBe(0);
  expect(out.stdout).toBe(oracle);
});

it('says what is wrong with a bad pcap file, a missing bridge or a bad command line', async () => {
  const notPcap = join(dir, 'text.pcap');
  writeFileSync(notPcap, 'this is not a capture file at all');
  const a = io();
  expect(await runOfctl(['parse-pcap', notPcap], a.io)).toBe(1);
  expect(a.out.stderr).toContain('not a pcap file');
  const b = io();
  expect(await runOfctl(['dump-flows', 'br9'], b.io)).toBe(1);
  expect(b.out.stderr).toContain(`${join(dir, 'br9.mgmt')}: failed to connect to the bridge`);
  const c = io();
  expect(await runOfctl(['add-flow', 'br0'], c.io)).toBe(1);
  expect(c.out.stderr).toContain("'add-flow' command requires exactly 2 arguments");
  const d = io();
  expect(await runOfctl(['frobnicate', 'br0'], d.io)).toBe(1);
  expect(d.out.stderr).toContain("unknown command 'frobnicate'");
  const e = io();
  expect(await runOfctl(['--bogus', 'show', 'br0'], e.io)).toBe(1);
  expect(e.out.stderr).toContain("unrecognized option '--bogus'");
});

it('draws a progress bar only on a terminal', () => {
  const tty = { text: '', isTTY: true, write(s: string) { this.text += s; } };
  const pipe = { text: '', isTTY: false, write(s: string) { this.text += s; } };
  for (const out of [tty, pipe]) {
    const bar = new ProgressBar(out, 'add-flows');
    bar.update(50, 100);
    bar.update(100, 100);
    bar.done();
  }
  expect(tty.text).toContain('add-flows [###############...............] 50% (50/100)');
  expect(tty.text).toContain('100% (100/100)\n');
  expect(pipe.text).toBe('');
});
