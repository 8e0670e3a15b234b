// Packets built from flow fields, checked by the real `ovs-ofctl parse-pcap`.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { buildPacket, parseHexPacket } from '../src/packet.ts';
import { writePcap } from '../src/pcap.ts';
import { needsOvs } from '../../../test/ovs-tools.ts';

const skipOvs = needsOvs('vswitchd packets read back by ovs-ofctl parse-pcap', ['ovs-ofctl']);

it.skipIf(skipOvs)('builds packets that ovs-ofctl parse-pcap reads back field by field', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nvs-packet-'));
  const file = join(dir, 'p.pcap');
  const mac1 = 0x0a0000000001;
  const mac2 = 0x0a0000000002;
  writeFileSync(
    file,
    writePcap([
      buildPacket({ eth_src: mac1, eth_dst: mac2, nw_src: 0x0a000001, nw_dst: 0x0a000002, nw_proto: 6, tp_src: 1234, tp_dst: 80 }),
      buildPacket({ eth_src: mac1, eth_dst: mac2, vlan_tci: 0x1000 | 10, nw_src: 0xc0a80001, nw_dst: 0xc0a80002, nw_proto: 17, tp_src: 53, tp_dst: 5353, nw_ttl: 7 }),
      buildPacket({ eth_src: mac1, eth_dst: 0xffffffffffff, eth_type: 0x0806, nw_proto: 1, nw_src: 0x0a000001, nw_dst: 0x0a000002 }),
      buildPacket({ eth_src: mac1, eth_dst: mac2, eth_type: 0x86dd, ipv6_src: 0xfe80n << 112n | 1n, ipv6_dst: 0x20010db8n << 96n | 2n, nw_proto: 58, tp_src: 128, tp_dst: 0 }),
      buildPacket({ eth_src: mac1, eth_dst: mac2, nw_src: 0x0a000001, nw_dst: 0x0a000002, nw_proto: 1, tp_src: 8, tp_dst: 0 }),
    ]),
  );
  const lines = execFileSync('ovs-ofctl', ['parse-pcap', file], { encoding: 'utf8' }).trim().split('\n');
  rmSync(dir, { recursive: true, force: true });
  expect(lines).toHaveLength(5);
  expect(lines[0]).toContain('tcp,in_port=ANY,vlan_tci=0x0000,dl_src=0a:00:00:00:00:01,dl_dst=0a:00:00:00:00:02,nw_src=10.0.0.1,nw_dst=10.0.0.2');
  expect(lines[0]).toContain('tp_src=1234,tp_dst=80,tcp_flags=syn');
  expect(lines[1]).toMatch(/^udp,in_port=ANY,dl_vlan=10,dl_vlan_pcp=0,.*nw_src=192\.168\.0\.1,nw_dst=192\.168\.0\.2,.*nw_ttl=7.*tp_src=53,tp_dst=5353/);
  expect(lines[2]).toMatch(/^arp,in_port=ANY,.*dl_dst=ff:ff:ff:ff:ff:ff,arp_spa=10\.0\.0\.1,arp_tpa=10\.0\.0\.2,arp_op=1,arp_sha=0a:00:00:00:00:01/);
  expect(lines[3]).toMatch(/^icmp6,in_port=ANY,.*ipv6_src=fe80::1,ipv6_dst=2001:db8::2,.*icmp_type=128,icmp_code=0/);
  expect(lines[4]).toMatch(/^icmp,in_port=ANY,.*nw_src=10\.0\.0\.1,nw_dst=10\.0\.0\.2,.*icmp_type=8,icmp_code=0/);
});

it('parses hex packets and rejects what is not hex', () => {
  expect(parseHexPacket('0x0a0b 0c')).toEqual(Uint8Array.from([10, 11, 12]));
  expect(parseHexPacket('abc')).toBeUndefined();
  expect(parseHexPacket('in_port=1')).toBeUndefined();
});
