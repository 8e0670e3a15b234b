// Datapath actions and megaflows printed in OVS's syntax, the identity
// port mapping, and dump-tables text.

import { describe, expect, test } from 'vitest';
import { type DpAction, formatDpActions, formatIpv6, formatMegaflow, identityOdpPorts, newDpFlowKey } from '../src/dpif.ts';
import { formatDumpTables } from '../src/format.ts';
import { addFlows, bridge, flowOf } from './helpers.ts';

describe('formatDpActions', () => {
  test('outputs, VLANs, truncate, userspace, and merged masked sets', () => {
    const actions: DpAction[] = [
      { type: 'push_vlan', tpid: 0x8100, tci: 0x1000 | (5 << 13) | 42 },
      { type: 'output', port: 3 },
      { type: 'pop_vlan' },
      { type: 'set', header: 'ipv4', field: 'nw_dst', value: 0x0a000001, mask: 0xffffffff },
      { type: 'set', header: 'ipv4', field: 'nw_tos', value: 0x20, mask: 0xfc },
      { type: 'set', header: 'tcp', field: 'tp_dst', value: 8080, mask: 0xffff },
      { type: 'truncate', maxLen: 100 },
      { type: 'output', port: 1 },
      { type: 'userspace', controller: { reason: 1, maxLen: 128, ruleCookie: 0xabn, controllerId: 0, tableId: 3 } },
    ];
    expect(formatDpActions(actions)).toBe(
      'push_vlan(vid=42,pcp=5),3,pop_vlan,set(ipv4(dst=10.0.0.1,tos=0x20/0xfc)),set(tcp(dst=8080)),trunc(100),1,' +
        'userspace(pid=0,controller(reason=1,dont_send=0,continuation=0,recirc_id=0,rule_cookie=0xab,controller_id=0,max_len=128))',
    );
    expect(formatDpActions([])).toBe('drop');
    expect(formatDpActions([{ type: 'push_vlan', tpid: 0x88a8, tci: 0x1007 }])).toBe('push_vlan(tpid=0x88a8,vid=7,pcp=0)');
    expect(formatDpActions([{ type: 'set', header: 'ipv6', field: 'ipv6_src', value: 1n, mask: (1n << 128n) - 1n }])).toBe('set(ipv6(src=::1))');
  });

  test('IPv6 text is RFC 5952', () => {
    expect(formatIpv6(0x20010db8000000000000000000000001n)).toBe('2001:db8::1');
    expect(formatIpv6(0n)).toBe('::');
    expect(formatIpv6(0x20010db8000100000001000000000001n)).toBe('2001:db8:1:0:1::1');
  });
});

describe('formatMegaflow', () => {
  test('protocol shorthands, prefixes, masks and per-protocol field names', () => {
    const key = newDpFlowKey();
    const mask = newDpFlowKey();
    Object.assign(key, { in_port: 2, eth_type: 0x0806, nw_src: 0x0a000000, nw_proto: 1 });
    Object.assign(mask, { in_port: 0xffffffff, recirc_id: 0xffffffff, eth_type: 0xffff, nw_src: 0xff000000, nw_proto: 0xff });
    expect(formatMegaflow({ key, mask })).toBe('recirc_id=0,eth,arp,in_port=2,arp_spa=10.0.0.0/8,arp_op=1');
    Object.assign(key, { eth_type: 0x86dd, nw_proto: 58, ipv6_dst: 0x20010db8n << 96n, tp_src: 135, nd_target: 1n });
    Object.assign(mask, { nw_src: 0, ipv6_dst: 0xffffffffn << 96n, tp_src: 0xffff, nd_target: (1n << 128n) - 1n, nw_frag: 3 });
    expect(formatMegaflow({ key, mask })).toBe('recirc_id=0,eth,icmp6,in_port=2,ipv6_dst=2001:db8::/32,nw_frag=no,icmp_type=135,nd_target=::1');
    Object.assign(key, { eth_type: 0x0800, nw_proto: 6, tp_src: 0, tp_dst: 0x50, eth_src: 0x020000000000, vlan_tci: 0x1005 });
    Object.assign(mask, { ipv6_dst: 0n, nd_target: 0n, tp_src: 0, tp_dst: 0xfff0, eth_src: 0x020000000000, vlan_tci: 0x1fff });
    expect(formatMegaflow({ key, mask })).toBe('recirc_id=0,eth,tcp,in_port=2,dl_vlan=5,dl_src=02:00:00:00:00:00/02:00:00:00:00:00,nw_frag=no,tp_dst=0x50/0xfff0');
  });
});

describe('ports and tables', () => {
  test('identityOdpPorts maps OpenFlow ports to themselves and LOCAL to the given port', () => {
    const d = identityOdpPorts(100);
    expect([d.odpPort(7), d.odpPort(0xfffe), d.odpPort(0xfffa), d.ofPort(100), d.ofPort(7)]).toEqual([7, 100, undefined, 0xfffe, 7]);
  });

  test('dump-tables counts active rules, lookups and matches (not for traces)', () => {
    const { of } = bridge();
    addFlows(of, 'table=0,in_port=1,actions=resubmit(,3)\ntable=3,priority=0,tcp,actions=output:2');
    of.xlate(flowOf('in_port=1,tcp'));
    of.xlate(flowOf('in_port=1,udp'));
    of.xlate(flowOf('in_port=2'));
    expect(formatDumpTables(of.dumpTables())).toEqual(['  0: active=1, lookup=3, matched=2', '  3: active=1, lookup=2, matched=1']);
  });
});
