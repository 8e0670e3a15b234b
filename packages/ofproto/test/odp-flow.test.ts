// Megaflows in datapath flow syntax (dpif/dump-flows). The expected strings
// are what a real ovs-vswitchd 3.1 (netdev datapath) printed for megaflows
// with the same masks; test/e2e-dpif-dump.test.ts compares whole dumps live.
import { describe, expect, test } from 'vitest';
import { type DpFlowKey, formatDpActions, newDpFlowKey } from '../src/dpif.ts';
import { formatOdpFlowKey, formatTcpFlagLetters } from '../src/odp-flow.ts';

const IP = (s: string) => s.split('.').reduce((a, b) => a * 256 + Number(b), 0) >>> 0;
const MAC = (n: number) => n;

/** A megaflow from exact fields (`field: value` means value under a full mask) and explicit masks. */
function mf(exact: Partial<Record<keyof DpFlowKey, number | bigint>>, masked: Partial<Record<keyof DpFlowKey, [number | bigint, number | bigint]>> = {}) {
  const FULL: Partial<Record<keyof DpFlowKey, number | bigint>> = {
    in_port: 0xffffffff, recirc_id: 0xffffffff, eth_src: 0xffffffffffff, eth_dst: 0xffffffffffff, eth_type: 0xffff,
    vlan_tci: 0xffff, vlan_tpid: 0xffff, nw_proto: 0xff, nw_tos: 0xff, nw_ttl: 0xff, nw_frag: 0xff, tp_src: 0xffff, tp_dst: 0xffff,
    nw_src: 0xffffffff, nw_dst: 0xffffffff, ipv6_src: (1n << 128n) - 1n, ipv6_dst: (1n << 128n) - 1n, arp_sha: 0xffffffffffff,
  };
  const key = newDpFlowKey() as unknown as Record<string, number | bigint>;
  const mask = newDpFlowKey() as unknown as Record<string, number | bigint>;
  for (const [f, v] of Object.entries({ in_port: 1, recirc_id: 0, ...exact })) {
    key[f] = v;
    mask[f] = FULL[f as keyof DpFlowKey]!;
  }
  for (const [f, [v, m]] of Object.entries(masked)) {
    key[f] = v;
    mask[f] = m;
  }
  return { key: key as unknown as DpFlowKey, mask: mask as unknown as DpFlowKey };
}

describe('datapath flow syntax', () => {
  test('exact and wildcarded subfields; empty headers left out', () => {
    expect(formatOdpFlowKey(mf({ in_port: 6, eth_type: 0x0800, nw_frag: 0 }))).toBe('recirc_id(0),in_port(6),packet_type(ns=0,id=0),eth_type(0x0800),ipv4(frag=no)');
    expect(formatOdpFlowKey(mf({ in_port: 4, eth_type: 0x1234 }))).toBe('recirc_id(0),in_port(4),packet_type(ns=0,id=0),eth_type(0x1234)');
    expect(formatOdpFlowKey(mf({ eth_src: MAC(1), eth_dst: MAC(2), eth_type: 0x0806 }))).toBe(
      'recirc_id(0),in_port(1),packet_type(ns=0,id=0),eth(src=00:00:00:00:00:01,dst=00:00:00:00:00:02),eth_type(0x0806)',
    );
    expect(formatOdpFlowKey(mf({ in_port: 4, eth_type: 0x0806, nw_proto: 1 }))).toBe('recirc_id(0),in_port(4),packet_type(ns=0,id=0),eth_type(0x0806),arp(op=1)');
  });

  test('a 5-tuple, partial masks as value/mask in each field’s notation', () => {
    expect(formatOdpFlowKey(mf({ in_port: 5, eth_type: 0x0800, nw_src: IP('10.0.0.1'), nw_dst: IP('10.0.0.2'), nw_proto: 6, nw_frag: 0, tp_src: 1000, tp_dst: 80 }))).toBe(
      'recirc_id(0),in_port(5),packet_type(ns=0,id=0),eth_type(0x0800),ipv4(src=10.0.0.1,dst=10.0.0.2,proto=6,frag=no),tcp(src=1000,dst=80)',
    );
    expect(
      formatOdpFlowKey(mf({ in_port: 6, eth_src: MAC(1), eth_type: 0x0800, nw_proto: 6, nw_ttl: 64, nw_frag: 0 }, { nw_dst: [IP('192.168.0.0'), IP('255.255.0.0')], tp_dst: [80, 0xfff0] })),
    ).toBe('recirc_id(0),in_port(6),packet_type(ns=0,id=0),eth(src=00:00:00:00:00:01),eth_type(0x0800),ipv4(dst=192.168.0.0/255.255.0.0,proto=6,ttl=64,frag=no),tcp(dst=80/0xfff0)');
    expect(formatOdpFlowKey(mf({ in_port: 4, eth_type: 0x0800, nw_proto: 17, nw_frag: 0 }, { nw_tos: [0x10, 0xfc], tp_dst: [80, 0xffff] }))).toBe(
      'recirc_id(0),in_port(4),packet_type(ns=0,id=0),eth_type(0x0800),ipv4(proto=17,tos=0x10/0xfc,frag=no),udp(dst=80)',
    );
    expect(formatOdpFlowKey(mf({ in_port: 6, eth_type: 0x0800, nw_proto: 6, nw_frag: 0 }, { nw_dst: [IP('10.0.0.8'), IP('255.255.255.248')], tcp_flags: [0x002, 0x012] }))).toBe(
      'recirc_id(0),in_port(6),packet_type(ns=0,id=0),eth_type(0x0800),ipv4(dst=10.0.0.8/255.255.255.248,proto=6,frag=no),tcp_flags(+syn-ack)',
    );
  });

  test('IPv6 prefixes in address notation', () => {
    expect(formatOdpFlowKey(mf({ in_port: 6, eth_type: 0x86dd, nw_frag: 0 }, { ipv6_dst: [0x20010db8n << 96n, ((1n << 32n) - 1n) << 96n] }))).toBe(
      'recirc_id(0),in_port(6),packet_type(ns=0,id=0),eth_type(0x86dd),ipv6(dst=2001:db8::/ffff:ffff::,frag=no)',
    );
  });

  test('a VLAN tag nests the rest in encap(); a subfield shows when its value or mask is nonzero', () => {
    const tagged = mf({ in_port: 2, eth_src: MAC(2), eth_dst: MAC(1), vlan_tci: 0x1000 | 10, vlan_tpid: 0x8100, eth_type: 0x0800, nw_frag: 0 });
    expect(formatOdpFlowKey(tagged)).toBe(
      'recirc_id(0),in_port(2),packet_type(ns=0,id=0),eth(src=00:00:00:00:00:02,dst=00:00:00:00:00:01),eth_type(0x8100),vlan(vid=10,pcp=0),encap(eth_type(0x0800),ipv4(frag=no))',
    );
    expect(formatOdpFlowKey(mf({ in_port: 4, eth_type: 0x0800, nw_frag: 0 }, { vlan_tci: [0x1000 | 5, 0x1fff] }))).toBe(
      'recirc_id(0),in_port(4),packet_type(ns=0,id=0),eth_type(0x8100),vlan(vid=5),encap(eth_type(0x0800),ipv4(frag=no))',
    );
    // Untagged, even with the tag's absence pinned: nothing about VLANs.
    expect(formatOdpFlowKey(mf({ in_port: 1, vlan_tci: 0, eth_type: 0x0800, nw_frag: 0 }))).toBe('recirc_id(0),in_port(1),packet_type(ns=0,id=0),eth_type(0x0800),ipv4(frag=no)');
  });

  test('-m: every subfield, wildcarded ones as value/0, the metadata nvs never matches on, names', () => {
    const m = mf({ in_port: 3, eth_type: 0x0800, nw_src: IP('10.0.0.3'), nw_dst: IP('10.0.0.4'), nw_proto: 6, nw_frag: 0, tp_src: 1000, tp_dst: 81 });
    expect(formatOdpFlowKey(m, { verbose: true, portName: (n) => (n === 3 ? 'p3' : undefined) })).toBe(
      'skb_priority(0/0),skb_mark(0/0),ct_state(0/0),ct_zone(0/0),ct_mark(0/0),ct_label(0/0),recirc_id(0),dp_hash(0/0),in_port(p3),packet_type(ns=0,id=0),' +
        'eth(src=00:00:00:00:00:00/00:00:00:00:00:00,dst=00:00:00:00:00:00/00:00:00:00:00:00),eth_type(0x0800),' +
        'ipv4(src=10.0.0.3,dst=10.0.0.4,proto=6,tos=0/0,ttl=0/0,frag=no),tcp(src=1000,dst=81),tcp_flags(0/0)',
    );
  });

  test('actions with port names; TCP flags of the statistics', () => {
    const name = (n: number) => ({ 2: 'p2', 100: 'br0' })[n];
    expect(formatDpActions([{ type: 'pop_vlan' }, { type: 'output', port: 2 }, { type: 'output', port: 100 }, { type: 'output', port: 7 }], { portName: name })).toBe('pop_vlan,p2,br0,7');
    expect(formatDpActions([])).toBe('drop');
    expect(formatTcpFlagLetters(0x12)).toBe('S.');
    expect(formatTcpFlagLetters(0x1)).toBe('F');
  });

  test("TCP flags of the statistics in OVS's order (packet_format_tcp_flags: S F P R U . E C N), not bit order", () => {
    expect(formatTcpFlagLetters(0x1b)).toBe('SFP.'); // a short connection: SYN, FIN, PSH, ACK
    expect(formatTcpFlagLetters(0x1f)).toBe('SFPR.');
    expect(formatTcpFlagLetters(0x14)).toBe('R.');
    expect(formatTcpFlagLetters(0x1c2)).toBe('SECN');
    expect(formatTcpFlagLetters(0xe20)).toBe('U[200][400][800]');
    // The key's tcp_flags name the reserved bits as OVS's packet_tcp_flag_to_string does.
    const flags = (v: number, m: number) => formatOdpFlowKey(mf({ in_port: 6, eth_type: 0x0800, nw_proto: 6, nw_frag: 0 }, { tcp_flags: [v, m] }));
    expect(flags(0x202, 0xfff)).toContain('tcp_flags(syn|[200])');
    expect(flags(0x400, 0x402)).toContain('tcp_flags(-syn+[400])');
  });
});
