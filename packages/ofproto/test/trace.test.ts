// Trace output: the layout close to OVS's ofproto/trace, and the two lines
// scripts read — `Megaflow:` and `Datapath actions:` — compared with a real
// ovs-vswitchd (dummy datapath, started in a temp dir) tracing the same
// flows through the same rules.

import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { addFlows, bridge, flowOf, ovsPorts, type RealOvs, startOvs } from './helpers.ts';
import { trace } from '../src/trace.ts';
import { BadTraceRequestError } from '../src/errors.ts';
import { needsOvs } from '../../../test/ovs-tools.ts';

const skipOvs = needsOvs('ofproto trace against ovs-vswitchd', ['ovsdb-tool', 'ovsdb-server', 'ovs-vsctl', 'ovs-vswitchd', 'ovs-appctl', 'ovs-ofctl']);

describe('trace layout', () => {
  test('tables, rules with cookies, actions, notes, final flow, megaflow and datapath actions', () => {
    const { of } = bridge();
    addFlows(of, `table=0,priority=100,cookie=0x5,ip,nw_dst=10.0.0.0/8,actions=mod_vlan_vid:10,resubmit(,1)
table=1,priority=10,ip,nw_src=1.2.3.4,actions=dec_ttl,output:2
table=1,priority=5,actions=drop`);
    // What ovs-vswitchd 3.1 prints for the same rules and packet.
    expect(trace(of, 'in_port=1,icmp,nw_dst=10.1.2.3,nw_src=1.2.3.4,nw_ttl=64').text).toBe(`Flow: icmp,in_port=1,vlan_tci=0x0000,dl_src=00:00:00:00:00:00,dl_dst=00:00:00:00:00:00,nw_src=1.2.3.4,nw_dst=10.1.2.3,nw_tos=0,nw_ecn=0,nw_ttl=64,nw_frag=no,icmp_type=0,icmp_code=0

bridge("br0")
-------------
 0. ip,nw_dst=10.0.0.0/8, priority 100, cookie 0x5
    mod_vlan_vid:10
    resubmit(,1)
 1. ip,nw_src=1.2.3.4, priority 10
    dec_ttl
    output:2

Final flow: icmp,in_port=1,dl_vlan=10,dl_vlan_pcp=0,vlan_tci1=0x0000,dl_src=00:00:00:00:00:00,dl_dst=00:00:00:00:00:00,nw_src=1.2.3.4,nw_dst=10.1.2.3,nw_tos=0,nw_ecn=0,nw_ttl=63,nw_frag=no,icmp_type=0,icmp_code=0
Megaflow: recirc_id=0,eth,icmp,in_port=1,nw_src=1.2.3.4,nw_dst=10.0.0.0/8,nw_ttl=64,nw_frag=no
Datapath actions: set(ipv4(ttl=63)),push_vlan(vid=10,pcp=0),2`);
  });

  test('a miss says so; NORMAL explains its decision; learn is not executed', () => {
    const { of } = bridge({ failMode: 'standalone' });
    addFlows(of, 'priority=10,in_port=3,actions=learn(table=5,NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],output:NXM_OF_IN_PORT[]),resubmit(,5)');
    const t = trace(of, 'in_port=3,dl_src=00:00:00:00:00:07').text;
    expect(t).toContain(' 5. No match.\n    drop');
    expect(t).toContain('     >> suppressing side effects, so learn action ignored');
    expect(of.dumpFlows({ table: 5 })).toHaveLength(0);
    const n = trace(of, 'in_port=1,dl_src=00:00:00:00:00:01,dl_dst=ff:ff:ff:ff:ff:ff').text;
    expect(n).toContain(' 0. priority 0\n    NORMAL\n     -> flooding (multicast or broadcast destination)');
    expect(n.split('\n').at(-1)).toBe('Datapath actions: 2,3,4');
    // Trace never learns: the bridge has no MACs afterwards.
    expect(of.fdb()).toEqual([]);
  });

  test('a controller action in a trace says dont_send=1: the traced packet is never sent (as OVS)', () => {
    const { of } = bridge();
    addFlows(of, 'in_port=1,actions=CONTROLLER:64');
    expect(trace(of, 'in_port=1').text.split('\n').at(-1)).toBe(
      'Datapath actions: userspace(pid=0,controller(reason=1,dont_send=1,continuation=0,recirc_id=0,rule_cookie=0,controller_id=0,max_len=64))',
    );
  });

  test('a trace takes a packet Flow too, and rejects bad flow text with a code', () => {
    const { of } = bridge();
    addFlows(of, 'actions=output:2');
    expect(trace(of, flowOf('in_port=1')).text.endsWith('Datapath actions: 2')).toBe(true);
    expect(() => trace(of, 'in_port=1,nw_dst=300.1.1.1')).toThrow(BadTraceRequestError);
    expect(() => trace(of, 'in_port=1,bogus=1')).toThrow(expect.objectContaining({ code: 'OFPROTO_BAD_TRACE' }));
  });
});

/** Scenarios traced by both; each `lines` says which of the last two lines must be identical. */
const SCENARIOS: { rules: string; flows: string[] }[] = [
  {
    rules: 'priority=100,ip,nw_dst=10.0.0.0/8,actions=output:2',
    flows: ['in_port=1,ip,nw_dst=10.1.2.3', 'in_port=3,tcp,nw_dst=11.1.2.3,tp_dst=80', 'in_port=1,arp'],
  },
  {
    rules: `priority=50,cookie=0x5,in_port=2,actions=output:3
priority=40,in_port=1,actions=mod_vlan_vid:10,output:2,strip_vlan,output:3
priority=40,in_port=3,actions=mod_dl_src:00:11:22:33:44:55,output:1`,
    flows: ['in_port=2', 'in_port=1', 'in_port=1,dl_vlan=5', 'in_port=3,dl_src=00:00:00:00:00:09'],
  },
  {
    rules: `priority=30,ip,nw_src=1.1.1.1,actions=conjunction(7,1/2)
priority=30,tcp,tp_dst=80,actions=conjunction(7,2/2)
priority=30,conj_id=7,actions=output:2`,
    flows: ['in_port=3,tcp,nw_src=1.1.1.1,tp_dst=80', 'in_port=3,tcp,nw_src=1.1.1.2,tp_dst=80'],
  },
  {
    rules: `table=0,in_port=1,actions=load:0x3->NXM_NX_REG1[],resubmit(,1)
table=1,reg1=3,tcp,tp_dst=22,actions=output:3
table=1,reg1=3,actions=output:2
table=0,in_port=2,actions=resubmit(,0)`,
    flows: ['in_port=1,tcp,tp_dst=22', 'in_port=1,tcp,tp_dst=23', 'in_port=2'],
  },
  {
    rules: `priority=10,in_port=1,tcp,actions=mod_nw_tos:16,mod_nw_dst:1.1.1.1,mod_tp_dst:99,dec_ttl,output:2
priority=10,in_port=2,ip,actions=load:0x7->NXM_OF_IP_DST[0..7],output:3`,
    flows: ['in_port=1,tcp,nw_dst=10.0.0.1,tp_dst=80,nw_ttl=64', 'in_port=2,udp,nw_dst=10.0.0.1,nw_ttl=64'],
  },
  {
    rules: 'priority=10,tcp,nw_dst=192.168.0.0/16,tp_dst=0x50/0xfff0,actions=output:3',
    flows: ['in_port=1,tcp,nw_dst=192.168.3.4,tp_dst=81', 'in_port=1,tcp,nw_dst=192.168.3.4,tp_dst=8080', 'in_port=1,tcp,nw_dst=192.169.3.4,tp_dst=81'],
  },
  {
    rules: `priority=20,ipv6,ipv6_dst=2001:db8::/32,actions=output:2
priority=10,tcp6,tp_src=1000,actions=output:3
priority=5,arp,arp_tpa=10.0.0.0/24,arp_op=1,actions=output:1`,
    // (An ARP miss, arp_tpa=10.0.1.9, is where we differ: OVS also pins arp_op, we need not.)
    flows: ['in_port=1,tcp6,ipv6_dst=2001:db8::5,tp_src=1000', 'in_port=1,tcp6,ipv6_dst=2001:db9::5,tp_src=1000', 'in_port=2,arp,arp_tpa=10.0.0.9,arp_op=1'],
  },
  {
    rules: `priority=100,ip,nw_src=10.0.0.0/8,nw_dst=192.168.1.0/24,actions=output:1
priority=90,ip,nw_dst=192.168.0.0/16,actions=output:2
priority=80,ip,nw_src=172.16.0.0/12,actions=output:3
priority=70,tcp,tp_dst=53,actions=output:3`,
    flows: ['in_port=3,tcp,nw_src=10.1.1.1,nw_dst=192.168.1.7,tp_dst=53', 'in_port=3,tcp,nw_src=11.1.1.1,nw_dst=192.168.2.7,tp_dst=53', 'in_port=2,tcp,nw_src=172.17.0.1,nw_dst=8.8.8.8,tp_dst=53', 'in_port=2,tcp,nw_src=1.1.1.1,nw_dst=8.8.8.8,tp_dst=54'],
  },
];

describe.skipIf(skipOvs)('Megaflow and Datapath actions lines match a real ovs-vswitchd', () => {
  let ovs: RealOvs;
  beforeAll(() => {
    ovs = startOvs(['fail_mode=secure', ...ovsPorts([1, 2, 3].map((n) => ({ n })))]);
  });
  afterAll(() => ovs?.stop());

  test.each(SCENARIOS.map((s, i) => [i, s] as const))('scenario %i', (_i, s) => {
    ovs.run('ovs-ofctl', ['del-flows', ovs.mgmt]);
    ovs.run('ovs-ofctl', ['add-flows', ovs.mgmt, '-'], `${s.rules}\n`);
    const { of } = bridge({ ports: [1, 2, 3].map((n) => ({ ofport: n, name: `p${n}` })) });
    addFlows(of, s.rules);
    for (const flow of s.flows) {
      const pick = (lines: string[]) => lines.filter((l) => l.startsWith('Megaflow:') || l.startsWith('Datapath actions:'));
      expect({ flow, lines: pick(trace(of, flow).text.split('\n')) }).toEqual({ flow, lines: pick(ovs.trace(flow)) });
    }
  });
});
