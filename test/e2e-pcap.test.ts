// nvs-ofctl parse-pcap, answered by nvs-vswitchd's datapath key extraction,
// against the real `ovs-ofctl parse-pcap` on the same file; and its errors.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildPacket, writePcap } from '@nvs/vswitchd';
import { NvsRun } from './e2e-harness.ts';
import { needsOvs } from './ovs-tools.ts';

const skipOvs = needsOvs('test/e2e-pcap', ['ovs-vsctl', 'ovs-ofctl']);

let nvs: NvsRun;
beforeAll(async () => {
  nvs = new NvsRun();
  await nvs.startDb();
  await nvs.startSwitch();
});
afterAll(async () => nvs?.cleanup());

it.skipIf(skipOvs)('parse-pcap prints each packet flow exactly as ovs-ofctl parse-pcap does', async () => {
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
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toBe(oracle);
});

// The switch is set up with ovs-vsctl (NvsRun.startDb), so this test needs it too.
it.skipIf(skipOvs)('says what is wrong with a file that is not a capture, and the switch keeps answering', async () => {
  const notPcap = join(nvs.rundir, 'text.pcap');
  writeFileSync(notPcap, 'this is not a capture file at all');
  const r = await nvs.ofctl('parse-pcap', notPcap);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain('not a pcap file');
  expect((await nvs.appctl('version')).code).toBe(0);
});
