// nvs-ofctl parse-pcap reads captures offline, as ovs-ofctl does: no daemon
// runs here (the run directory is empty). Its output must equal the real
// `ovs-ofctl parse-pcap` line for line, on hand-built packets and on the pcap
// oracle's seeded random and garbled corpus (crates/datapath/tests/pcap_gen,
// written by the pcap_corpus example): double tags, later fragments,
// ND options, truncations and random bytes included.
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildPacket, writePcap } from '@nvs/vswitchd';
import { NvsRun, ROOT } from './e2e-harness.ts';
import { needsOvs } from './ovs-tools.ts';

const skipOvs = needsOvs('test/e2e-pcap', ['ovs-ofctl']);

let nvs: NvsRun;
beforeAll(() => {
  nvs = new NvsRun();
});
afterAll(async () => nvs?.cleanup());

function noDaemon(): void {
  expect(existsSync(join(nvs.rundir, 'nvs-vswitchd.ctl'))).toBe(false);
}

/** Lines where nvs's output differs from ovs-ofctl's, with their packet index. */
function differences(ours: string, theirs: string): string[] {
  const a = ours.split('\n');
  const b = theirs.split('\n');
  const out: string[] = [];
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) out.push(`packet ${i}:\n  nvs:       ${a[i]}\n  ovs-ofctl: ${b[i]}`);
  }
  return out;
}

it.skipIf(skipOvs)('prints hand-built packets exactly as ovs-ofctl parse-pcap does', async () => {
  const m1 = 0x0a0000000001;
  const m2 = 0x0a0000000002;
  const file = join(nvs.rundir, 'mix.pcap');
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
  const r = await nvs.ofctl('parse-pcap', file);
  noDaemon();
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toBe(oracle);
});

it.skipIf(skipOvs)('prints the random and garbled corpus exactly as ovs-ofctl parse-pcap does', { timeout: 600_000 }, async () => {
  for (const seed of [1, 2, 3]) {
    const file = join(nvs.rundir, `random-${seed}.pcap`);
    execFileSync('cargo', ['run', '--release', '-q', '-p', 'nvs-datapath', '--example', 'pcap_corpus', '--', String(seed), '4000', '16', file], { cwd: ROOT });
    const oracle = execFileSync('ovs-ofctl', ['parse-pcap', file], { encoding: 'utf8', maxBuffer: 64 << 20 });
    const r = await nvs.ofctl('parse-pcap', file);
    expect(r.code, r.stderr).toBe(0);
    const diffs = differences(r.stdout, oracle);
    expect(diffs.slice(0, 10).join('\n'), `seed ${seed}: ${diffs.length} of ${oracle.split('\n').length - 1} packets differ`).toBe('');
  }
  noDaemon();
});

it.skipIf(skipOvs)('prints the packets before a truncated or empty record, as ovs-ofctl does, and says where it stopped', async () => {
  const whole = writePcap([buildPacket({ eth_src: 1, eth_dst: 2, nw_src: 1, nw_dst: 2, nw_proto: 17, tp_src: 7, tp_dst: 9 })]);
  const record = whole.subarray(24);
  const cases = { truncated: Buffer.concat([whole, record.subarray(0, 30)]), empty: Buffer.concat([whole, Buffer.alloc(16), record]) };
  for (const [kind, bytes] of Object.entries(cases)) {
    const file = join(nvs.rundir, `${kind}.pcap`);
    writeFileSync(file, bytes);
    const oracle = execFileSync('ovs-ofctl', ['parse-pcap', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const r = await nvs.ofctl('parse-pcap', file);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(oracle);
    expect(oracle.split('\n')).toHaveLength(2);
    expect(r.stderr).toBe(`nvs-ofctl: ${file}: ${kind} packet record at byte ${whole.length}: the capture ends there\n`);
  }
});

it('says what is wrong with a missing file or one that is not a capture', async () => {
  const notPcap = join(nvs.rundir, 'text.pcap');
  writeFileSync(notPcap, 'this is not a capture file at all');
  const r = await nvs.ofctl('parse-pcap', notPcap);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain('not a pcap file');
  const missing = join(nvs.rundir, 'missing.pcap');
  const m = await nvs.ofctl('parse-pcap', missing);
  expect(m.code).toBe(1);
  expect(m.stderr).toBe(`nvs-ofctl: ${missing}: open failed (No such file or directory)\n`);
});
