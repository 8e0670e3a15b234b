// Each OpenFlow action through xlate: the datapath actions it yields (with
// pending rewrites committed before each output), the megaflow it leaves,
// and its side effects (controller queue, learned rules).

import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { addFlows, bridge, flowOf, ovsPorts, type RealOvs, startOvs } from './helpers.ts';
import { formatDumpFlows } from '../src/format.ts';
import { formatDpActions, formatMegaflow } from '../src/dpif.ts';
import { parseFlows } from '../src/syntax/parser.ts';
import type { Ofproto } from '../src/ofproto.ts';
import { trace } from '../src/trace.ts';
import { type Flow, Slot } from '../src/fields.ts';
import { needsOvs } from '../../../test/ovs-tools.ts';

const skipOvs = needsOvs('ofproto learn against ovs-vswitchd', ['ovsdb-tool', 'ovsdb-server', 'ovs-vsctl', 'ovs-vswitchd', 'ovs-appctl', 'ovs-ofctl']);

function run(of: Ofproto, flow: string): { actions: string; megaflow: string } {
  const r = of.xlate(flowOf(flow));
  return { actions: formatDpActions(r.actions), megaflow: formatMegaflow(r.megaflow) };
}

function oneRule(rule: string, flow: string, dialect: 'of10' | 'of13' = 'of10'): string {
  const { of } = bridge();
  of.applyFlowMods(parseFlows(rule, { dialect }));
  return run(of, flow).actions;
}

describe('outputs', () => {
  test('output:N, IN_PORT, LOCAL, FLOOD, ALL, drop', () => {
    expect(oneRule('actions=output:2', 'in_port=1')).toBe('2');
    expect(oneRule('actions=output:2,output:3', 'in_port=1')).toBe('2,3');
    expect(oneRule('actions=IN_PORT', 'in_port=1')).toBe('1');
    expect(oneRule('actions=LOCAL', 'in_port=1')).toBe('100');
    expect(oneRule('actions=FLOOD', 'in_port=2')).toBe('1,3,4');
    expect(oneRule('actions=ALL', 'in_port=2')).toBe('1,3,4');
    expect(oneRule('actions=drop', 'in_port=1')).toBe('drop');
    expect(oneRule('actions=output:9', 'in_port=1')).toBe('drop');
  });

  test('output:reg outputs to the port held in a register', () => {
    expect(oneRule('actions=load:3->NXM_NX_REG1[0..15],output:NXM_NX_REG1[0..15]', 'in_port=1')).toBe('3');
    expect(oneRule('actions=move:NXM_OF_IN_PORT[]->NXM_NX_REG2[0..15],output:NXM_NX_REG2[0..15]', 'in_port=1')).toBe('drop');
  });

  test('CONTROLLER is a userspace action; packets are counted and queued up to a bound', () => {
    const { of } = bridge({ controllerQueueSize: 2 });
    addFlows(of, 'cookie=0x9,actions=CONTROLLER:64,output:2');
    const packet = new Uint8Array(100).fill(7);
    const r = of.xlate(flowOf('in_port=1'), { packet });
    expect(formatDpActions(r.actions)).toBe(
      'userspace(pid=0,controller(reason=1,dont_send=0,continuation=0,recirc_id=0,rule_cookie=0x9,controller_id=0,max_len=64)),2',
    );
    of.xlate(flowOf('in_port=1'), { packet });
    of.xlate(flowOf('in_port=1'), { packet });
    expect(of.stats.controllerQueued).toBe(2);
    expect(of.stats.controllerDropped).toBe(1);
    const q = of.takeControllerPackets();
    expect(q).toHaveLength(2);
    expect(q[0].packet?.length).toBe(64);
    expect(q[0].reasonName).toBe('action');
    expect(of.takeControllerPackets()).toHaveLength(0);
    // Trace has no side effects.
    trace(of, 'in_port=1');
    expect(of.takeControllerPackets()).toHaveLength(0);
  });
});

describe('controller actions (as OVS)', () => {
  const userspace = (reason: number, cookie: string, maxLen: number) =>
    `userspace(pid=0,controller(reason=${reason},dont_send=0,continuation=0,recirc_id=0,rule_cookie=${cookie},controller_id=0,max_len=${maxLen}))`;

  test('CONTROLLER in a table-miss rule (priority 0, matching everything) is an explicit miss, reason 6', () => {
    const { of } = bridge();
    addFlows(of, 'priority=0,actions=CONTROLLER:64\npriority=1,in_port=2,actions=CONTROLLER:64');
    const miss = of.xlate(flowOf('in_port=1'));
    expect(formatDpActions(miss.actions)).toBe(userspace(6, '0', 64));
    expect(miss.controller.map((c) => c.reasonName)).toEqual(['explicit_miss']);
    expect(formatDpActions(of.xlate(flowOf('in_port=2')).actions)).toBe(userspace(1, '0', 64));
  });

  test('controller(reason=…) gives that reason; a cookie prints in hex, 0 as 0', () => {
    const { of } = bridge();
    addFlows(of, 'cookie=0x1f,in_port=1,actions=controller(reason=no_match,max_len=100)');
    expect(formatDpActions(of.xlate(flowOf('in_port=1')).actions)).toBe(userspace(0, '0x1f', 100));
  });
});

describe('VLAN actions', () => {
  test('mod_vlan_vid pushes on an untagged packet and rewrites a tagged one', () => {
    expect(oneRule('actions=mod_vlan_vid:10,output:2', 'in_port=1')).toBe('push_vlan(vid=10,pcp=0),2');
    expect(oneRule('actions=mod_vlan_vid:10,output:2', 'in_port=1,dl_vlan=5,dl_vlan_pcp=3')).toBe('pop_vlan,push_vlan(vid=10,pcp=3),2');
    expect(oneRule('actions=mod_vlan_pcp:5,output:2', 'in_port=1')).toBe('push_vlan(vid=0,pcp=5),2');
  });

  test('strip_vlan, push_vlan, and set_field on vlan_vid', () => {
    expect(oneRule('actions=strip_vlan,output:2', 'in_port=1,dl_vlan=5')).toBe('pop_vlan,2');
    expect(oneRule('actions=strip_vlan,output:2', 'in_port=1')).toBe('2');
    expect(oneRule('actions=push_vlan:0x88a8,set_field:4102->vlan_vid,output:2', 'in_port=1', 'of13')).toBe(
      'push_vlan(tpid=0x88a8,vid=6,pcp=0),2',
    );
    // Output before and after a change: each output sees the packet as it is then.
    expect(oneRule('actions=output:2,mod_vlan_vid:7,output:3,strip_vlan,output:4', 'in_port=1')).toBe(
      '2,push_vlan(vid=7,pcp=0),3,pop_vlan,4',
    );
  });
});

describe('double-tagged packets (the inner tag no rule matches)', () => {
  /** A packet with an outer and an inner VLAN tag (VIDs). */
  function qinq(text: string, outer: number, inner: number): Flow {
    const f = flowOf(`${text},dl_vlan=${outer}`);
    f[Slot.VLAN_TCI1] = 0x1000 | inner;
    return f;
  }

  test('pop_vlan brings the inner tag out, and the megaflow keys on it', () => {
    const { of } = bridge();
    of.applyFlowMods(parseFlows('table=0,dl_vlan=10,actions=pop_vlan,resubmit(,1)\ntable=1,dl_vlan=20,actions=output:2\ntable=1,priority=0,actions=output:3'));
    const a = of.xlate(qinq('in_port=1', 10, 20));
    expect(formatDpActions(a.actions)).toBe('pop_vlan,2');
    expect(a.megaflow.mask.cvlan_tci).toBe(0xffff);
    expect(a.megaflow.key.cvlan_tci).toBe(0x1000 | 20);
    // Same outer tag, another inner one: another megaflow and other actions.
    expect(formatDpActions(of.xlate(qinq('in_port=1', 10, 30)).actions)).toBe('pop_vlan,3');
    // A single-tagged packet's megaflow after a pop pins the inner slot empty.
    const single = of.xlate(flowOf('in_port=1,dl_vlan=10'));
    expect(formatDpActions(single.actions)).toBe('pop_vlan,3');
    expect([single.megaflow.mask.cvlan_tci, single.megaflow.key.cvlan_tci]).toEqual([0xffff, 0]);
  });

  test('a rule that never touches the tags leaves the inner one out of the megaflow', () => {
    const { of } = bridge();
    of.applyFlowMods(parseFlows('dl_vlan=10,actions=output:2'));
    expect(of.xlate(qinq('in_port=1', 10, 20)).megaflow.mask.cvlan_tci).toBe(0);
  });

  test('tags are committed as a stack: popped and pushed only above what both share', () => {
    expect(oneQinq('actions=pop_vlan,pop_vlan,output:2')).toBe('pop_vlan,pop_vlan,2');
    expect(oneQinq('actions=mod_vlan_vid:7,output:2')).toBe('pop_vlan,push_vlan(vid=7,pcp=0),2');
    expect(oneQinq('actions=pop_vlan,mod_vlan_vid:7,output:2')).toBe('pop_vlan,pop_vlan,push_vlan(vid=7,pcp=0),2');
    // A third tag does not fit the flow (two at most, as OVS's): that push is ignored.
    expect(oneQinq('actions=push_vlan:0x8100,output:2', 'of13')).toBe('2');
    const { of } = bridge();
    of.applyFlowMods(parseFlows('actions=push_vlan:0x88a8,set_field:4102->vlan_vid,output:2', { dialect: 'of13' }));
    expect(formatDpActions(of.xlate(flowOf('in_port=1,dl_vlan=5')).actions)).toBe('push_vlan(tpid=0x88a8,vid=6,pcp=0),2');
  });

  test('an 802.1ad outer tag keeps its TPID in the megaflow key and through a VID rewrite', () => {
    const { of } = bridge();
    of.applyFlowMods(parseFlows('actions=mod_vlan_vid:7,output:2'));
    const f = flowOf('in_port=1,dl_vlan=10');
    f[Slot.VLAN_TPID] = 0x88a8;
    const r = of.xlate(f);
    expect([r.megaflow.key.vlan_tpid, r.megaflow.mask.vlan_tpid]).toEqual([0x88a8, 0xffff]);
    expect(formatDpActions(r.actions)).toBe('pop_vlan,push_vlan(tpid=0x88a8,vid=7,pcp=0),2');
  });

  function oneQinq(rule: string, dialect: 'of10' | 'of13' = 'of10'): string {
    const { of } = bridge();
    of.applyFlowMods(parseFlows(rule, { dialect }));
    return formatDpActions(of.xlate(qinq('in_port=1', 10, 20)).actions);
  }
});

describe('field rewrites', () => {
  test('mod_dl_*, mod_nw_*, mod_tp_* commit as masked sets before the output', () => {
    expect(oneRule('actions=mod_dl_src:00:11:22:33:44:55,mod_dl_dst:00:00:00:00:00:02,output:2', 'in_port=1')).toBe(
      'set(eth(src=00:11:22:33:44:55,dst=00:00:00:00:00:02)),2',
    );
    expect(oneRule('ip,actions=mod_nw_src:1.1.1.1,mod_nw_dst:2.2.2.2,mod_nw_tos:16,mod_nw_ttl:9,output:2', 'in_port=1,udp,nw_ttl=64')).toBe(
      'set(ipv4(src=1.1.1.1,dst=2.2.2.2,tos=0x10/0xfc,ttl=9)),2',
    );
    expect(oneRule('tcp,actions=mod_tp_src:1000,mod_tp_dst:2000,output:2', 'in_port=1,tcp,tp_src=1,tp_dst=2')).toBe(
      'set(tcp(src=1000,dst=2000)),2',
    );
    expect(oneRule('udp,actions=mod_tp_dst:53,output:2', 'in_port=1,udp,tp_dst=5353')).toBe('set(udp(dst=53)),2');
  });

  test('a rewrite to the value the packet already has emits nothing, and the megaflow pins that value', () => {
    const { of } = bridge();
    addFlows(of, 'ip,actions=mod_nw_dst:2.2.2.2,output:2');
    const same = run(of, 'in_port=1,udp,nw_dst=2.2.2.2');
    expect(same.actions).toBe('2');
    expect(same.megaflow).toBe('recirc_id=0,eth,ip,in_port=1,nw_dst=2.2.2.2,nw_frag=no');
    expect(run(of, 'in_port=1,udp,nw_dst=3.3.3.3').actions).toBe('set(ipv4(dst=2.2.2.2)),2');
  });

  test('a set carries the bits of a changed field that the megaflow matches, read or written (as OVS)', () => {
    const { of } = bridge();
    addFlows(of, `priority=10,udp,nw_dst=10.0.0.0/8,actions=load:0x7->NXM_OF_IP_DST[0..7],output:2
priority=10,udp,nw_src=10.0.0.0/8,actions=mod_nw_dst:1.2.3.4,output:2`);
    expect(run(of, 'in_port=1,udp,nw_dst=10.1.2.3')).toEqual({
      actions: 'set(ipv4(dst=10.0.0.7/255.0.0.255)),2',
      megaflow: 'recirc_id=0,eth,udp,in_port=1,nw_dst=10.0.0.3/255.0.0.255,nw_frag=no',
    });
    // nw_src is matched but unchanged: not in the set.
    expect(run(of, 'in_port=1,udp,nw_src=10.1.2.3,nw_dst=9.9.9.9').actions).toBe('set(ipv4(dst=1.2.3.4)),2');
  });

  test('the order of a commit is Ethernet, L3, L4, then the VLAN tag (as OVS)', () => {
    expect(oneRule('actions=mod_vlan_vid:10,mod_tp_dst:80,mod_nw_tos:16,mod_dl_src:00:00:00:00:00:09,output:2', 'in_port=1,tcp')).toBe(
      'set(eth(src=00:00:00:00:00:09)),set(ipv4(tos=0x10/0xfc)),set(tcp(dst=80)),push_vlan(vid=10,pcp=0),2',
    );
  });

  test('a packet with nw_proto 0 is not taken to have an L3 header: its rewrites are not committed (as OVS)', () => {
    const { of } = bridge();
    addFlows(of, 'ip,actions=mod_nw_dst:2.2.2.2,dec_ttl,output:2,resubmit(,1)\ntable=1,ip,nw_dst=2.2.2.2,nw_ttl=63,actions=output:3');
    // The flow is rewritten all the same: a later table sees the new values.
    expect(run(of, 'in_port=1,ip,nw_dst=3.3.3.3,nw_ttl=64').actions).toBe('2,3');
    expect(run(of, 'in_port=1,ip,nw_proto=47,nw_dst=3.3.3.3,nw_ttl=64').actions).toBe('set(ipv4(dst=2.2.2.2,ttl=63)),2,3');
  });

  test('mod_tp_src/dst rewrite any IP packet but a later fragment, whatever its protocol; ICMP takes the low 8 bits (as OVS)', () => {
    const rule = 'actions=mod_tp_src:1000,output:2';
    expect(oneRule(rule, 'in_port=1,udp,udp_src=53')).toBe('set(udp(src=1000)),2');
    expect(oneRule(rule, 'in_port=1,icmp,icmp_type=8')).toBe('set(icmp(type=232,code=0)),2');
    expect(oneRule(rule, 'in_port=1,tcp,nw_frag=later')).toBe('2');
    expect(oneRule(rule, 'in_port=1,arp')).toBe('2');
  });

  test('set_field, load and move', () => {
    expect(oneRule('ipv6,actions=set_field:2001:db8::1->ipv6_dst,output:2', 'in_port=1,udp6', 'of13')).toBe('set(ipv6(dst=2001:db8::1)),2');
    expect(oneRule('actions=load:0x0a0b0c0d0e0f->NXM_OF_ETH_DST[],output:2', 'in_port=1')).toBe('set(eth(dst=0a:0b:0c:0d:0e:0f)),2');
    expect(oneRule('actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],output:2', 'in_port=1,dl_src=00:00:00:00:00:05')).toBe(
      'set(eth(dst=00:00:00:00:00:05)),2',
    );
  });

  test('dec_ttl decrements, and at TTL 1 sends to the controller and stops the action list', () => {
    expect(oneRule('ip,actions=dec_ttl,output:2', 'in_port=1,icmp,nw_ttl=64')).toBe('set(ipv4(ttl=63)),2');
    expect(oneRule('ipv6,actions=dec_ttl,output:2', 'in_port=1,tcp6,nw_ttl=2')).toBe('set(ipv6(hlimit=1)),2');
    const { of } = bridge();
    addFlows(of, 'ip,actions=output:3,dec_ttl,output:2');
    const r = of.xlate(flowOf('in_port=1,ip,nw_ttl=1'));
    expect(formatDpActions(r.actions)).toBe(
      '3,userspace(pid=0,controller(reason=2,dont_send=0,continuation=0,recirc_id=0,rule_cookie=0,controller_id=0,max_len=65535))',
    );
    expect(r.controller.map((c) => c.reasonName)).toEqual(['invalid_ttl']);
    expect(formatMegaflow(r.megaflow)).toBe('recirc_id=0,eth,ip,in_port=1,nw_ttl=1,nw_frag=no');
  });
});

describe('pipeline actions', () => {
  test('resubmit looks up another table, with in_port replaced for that lookup only', () => {
    const { of } = bridge();
    addFlows(of, `table=0,in_port=1,actions=resubmit(3,1),resubmit(,2),output:4
table=1,in_port=3,actions=output:2
table=1,in_port=1,actions=output:3
table=2,in_port=1,actions=output:3`);
    expect(run(of, 'in_port=1').actions).toBe('2,3,4');
  });

  test('resubmit loops stop at depth 64 and drop the packet, saying why', () => {
    const { of } = bridge();
    addFlows(of, 'in_port=1,actions=output:2,resubmit(,0)');
    const r = of.xlate(flowOf('in_port=1'));
    expect(r.actions).toEqual([]);
    expect(r.error).toBe('Recursion too deep');
    const t = trace(of, 'in_port=1').text;
    expect(t).toContain('>>>> over max translation depth 64 <<<<');
    // The first lookup and 64 resubmits (OVS traces 65 too).
    expect(t.split('\n').filter((l) => l.startsWith(' 0. in_port=1')).length).toBe(65);
    expect(t.endsWith('Datapath actions: drop\nTranslation failed (Recursion too deep), packet is dropped.')).toBe(true);
  });

  test('a resubmit to a later table does not deepen: a chain through 100 tables is translated (as OVS)', () => {
    const { of } = bridge();
    const chain = Array.from({ length: 100 }, (_, t) => `table=${t},actions=resubmit(,${t + 1})`);
    addFlows(of, [...chain, 'table=100,actions=output:2'].join('\n'));
    expect(run(of, 'in_port=1').actions).toBe('2');
  });

  test('resubmit with a port changes in_port for its lookup only; the rule it finds acts on the real one (as OVS)', () => {
    const { of } = bridge();
    addFlows(of, `table=0,in_port=1,actions=resubmit(2,1)
table=1,in_port=2,actions=output:1,IN_PORT,move:NXM_OF_IN_PORT[]->NXM_NX_REG0[0..15],resubmit(,2)
table=2,reg0=1,actions=output:3`);
    // output:1 is the input port (skipped), IN_PORT is port 1, and reg0 gets 1.
    expect(run(of, 'in_port=1').actions).toBe('1,3');
  });

  test('a later fragment has no TCP/UDP ports to set or move, but an ICMP type may be set (as OVS)', () => {
    const { of } = bridge();
    addFlows(of, `in_port=1,tcp,actions=load:5->NXM_NX_REG0[],move:NXM_OF_TCP_DST[]->NXM_NX_REG0[0..15],set_field:80->tcp_src,move:NXM_OF_TCP_SRC[]->NXM_NX_REG1[0..15],resubmit(,1)
table=1,reg0=5,reg1=0,actions=output:2
table=1,priority=0,actions=output:3
in_port=2,icmp,actions=set_field:3->icmp_type,output:3`);
    expect(run(of, 'in_port=1,tcp,nw_frag=later').actions).toBe('2');
    expect(run(of, 'in_port=1,tcp,tcp_dst=7').actions).toBe('set(tcp(src=80)),3');
    expect(run(of, 'in_port=2,icmp,nw_frag=later').actions).toBe('set(icmp(type=3,code=0)),3');
  });

  test('a fragment, first or later, is looked up without transport ports (OVS\'s "normal" fragment handling)', () => {
    const { of } = bridge();
    addFlows(of, 'priority=10,tcp,tp_dst=80,actions=output:2\npriority=5,tcp,tp_dst=0,actions=output:3');
    expect(run(of, 'in_port=1,tcp,tp_dst=80').actions).toBe('2');
    expect(run(of, 'in_port=1,tcp,tp_dst=80,nw_frag=first').actions).toBe('3');
    expect(run(of, 'in_port=1,tcp,nw_frag=later').actions).toBe('3');
  });

  test('goto_table and write_metadata carry state to a later table', () => {
    const { of } = bridge();
    of.applyFlowMods(
      parseFlows(
        `table=0,in_port=1,actions=write_metadata:0x5/0xff,goto_table:4
table=4,metadata=0x5/0xff,actions=output:2
table=4,priority=0,actions=output:3`,
        { dialect: 'of13' },
      ),
    );
    expect(run(of, 'in_port=1').actions).toBe('2');
  });

  test('registers loaded in one table are matched in the next; note does nothing', () => {
    const { of } = bridge();
    addFlows(of, `table=0,actions=note:01.02,load:7->NXM_NX_REG3[],resubmit(,1)
table=1,reg3=7,actions=output:2
table=1,priority=0,actions=output:3`);
    expect(run(of, 'in_port=1').actions).toBe('2');
  });

  test('conjunctive matches pick the conj_id rule only when every clause matches', () => {
    const { of } = bridge();
    addFlows(of, `priority=100,ip,nw_src=10.0.0.0/24,actions=conjunction(5,1/2)
priority=100,ip,nw_src=10.0.1.0/24,actions=conjunction(5,1/2)
priority=100,tcp,tp_dst=22,actions=conjunction(5,2/2)
priority=100,tcp,tp_dst=80,actions=conjunction(5,2/2)
priority=100,conj_id=5,actions=output:2
priority=1,actions=output:3`);
    expect(run(of, 'in_port=1,tcp,nw_src=10.0.1.9,tp_dst=80').actions).toBe('2');
    expect(run(of, 'in_port=1,tcp,nw_src=10.0.0.9,tp_dst=22').actions).toBe('2');
    expect(run(of, 'in_port=1,tcp,nw_src=10.0.2.9,tp_dst=22').actions).toBe('3');
    expect(run(of, 'in_port=1,tcp,nw_src=10.0.0.9,tp_dst=23').actions).toBe('3');
    expect(run(of, 'in_port=1,udp,nw_src=10.0.0.9,tp_dst=22').actions).toBe('3');
  });

  test('learn installs the MAC-learning rule, which later packets use; re-learning does not churn', () => {
    const { of } = bridge();
    addFlows(of, `table=0,actions=learn(table=10,NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:NXM_OF_IN_PORT[]->NXM_NX_REG0[0..15],output:NXM_OF_IN_PORT[]),resubmit(,10)
table=10,priority=0,actions=FLOOD`);
    const r1 = of.xlate(flowOf('in_port=3,dl_vlan=7,dl_src=00:00:00:00:00:aa,dl_dst=00:00:00:00:00:bb'));
    expect(formatDpActions(r1.actions)).toBe('1,2,4');
    expect(r1.learned).toHaveLength(1);
    const learned = of.dumpFlows({ table: 10 });
    expect(learned).toHaveLength(2);
    expect(learned[0].match.priority).toBe(32768);
    // The learned rule forwards replies to port 3.
    const r2 = of.xlate(flowOf('in_port=1,dl_vlan=7,dl_src=00:00:00:00:00:bb,dl_dst=00:00:00:00:00:aa'), { trace: true });
    expect(formatDpActions(r2.actions)).toBe('3');
    expect(r2.finalFlow?.[Slot.REG0]).toBe(3);
    // Learning the same rule again changes nothing.
    of.takeInvalidations();
    of.xlate(flowOf('in_port=3,dl_vlan=7,dl_src=00:00:00:00:00:aa,dl_dst=00:00:00:00:00:bb'));
    expect(of.takeInvalidations().has('table:10')).toBe(false);
    expect(of.dumpFlows({ table: 10 })).toHaveLength(3);
  });
});

describe('megaflows', () => {
  test('a miss consults only the prefix bits the trie needed (as OVS: nw_dst=11.0.0.0/8)', () => {
    const { of } = bridge();
    addFlows(of, 'priority=100,ip,nw_dst=10.0.0.0/8,actions=output:2');
    expect(run(of, 'in_port=3,tcp,nw_dst=11.1.2.3,tp_dst=80').megaflow).toBe('recirc_id=0,eth,ip,in_port=3,nw_dst=11.0.0.0/8,nw_frag=no');
    expect(run(of, 'in_port=3,tcp,nw_dst=10.1.2.3,tp_dst=80').megaflow).toBe('recirc_id=0,eth,ip,in_port=3,nw_dst=10.0.0.0/8,nw_frag=no');
  });

  test('staged lookup: a subtable rejected at in_port leaves L3/L4 wildcarded', () => {
    const { of } = bridge();
    addFlows(of, 'priority=100,in_port=1,tcp,nw_dst=10.0.0.1,tp_dst=80,actions=output:2');
    expect(run(of, 'in_port=3,tcp,nw_dst=10.0.0.1,tp_dst=80').megaflow).toBe('recirc_id=0,eth,ip,in_port=3,nw_frag=no');
    expect(run(of, 'in_port=1,tcp,nw_dst=10.0.0.1,tp_dst=81').megaflow).toBe(
      'recirc_id=0,eth,tcp,in_port=1,nw_dst=10.0.0.1,nw_frag=no,tp_dst=81',
    );
  });
});

describe.skipIf(skipOvs)('learn against a real ovs-vswitchd', () => {
  let ovs: RealOvs;
  beforeAll(() => {
    ovs = startOvs(['fail_mode=secure', ...ovsPorts([1, 2, 3].map((n) => ({ n })))]);
  });
  afterAll(() => ovs?.stop());

  test('the learned rules are the same', () => {
    const rules = `table=0,ip,actions=learn(table=10,idle_timeout=60,priority=5,cookie=0x7,NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:NXM_OF_IN_PORT[]->NXM_NX_REG0[0..15],output:NXM_OF_IN_PORT[]),learn(table=11,hard_timeout=30,eth_type=0x800,NXM_OF_IP_DST[]=NXM_OF_IP_SRC[],load:0x5->NXM_NX_REG1[]),resubmit(,10)
table=10,priority=0,actions=FLOOD`;
    ovs.run('ovs-ofctl', ['add-flows', ovs.mgmt, '-'], `${rules}\n`);
    const { of } = bridge({ ports: [1, 2, 3].map((n) => ({ ofport: n, name: `p${n}` })) });
    addFlows(of, rules);
    const flows = ['in_port=3,dl_vlan=7,dl_src=00:00:00:00:00:aa,ip,nw_src=10.0.0.3', 'in_port=1,dl_src=00:00:00:00:00:bb,ip,nw_src=10.0.0.1'];
    for (const f of flows) {
      ovs.trace(f, '-generate');
      of.xlate(flowOf(f));
    }
    // Compare everything but the time-dependent columns.
    const strip = (l: string) => l.replace(/ duration=[^,]*,/, '').replace(/ idle_age=\d+,/, '').replace(/ hard_age=\d+,/, '').trim();
    const real = ovs
      .run('ovs-ofctl', ['dump-flows', ovs.mgmt])
      .split('\n')
      .filter((l) => /, table=1\d,/.test(l))
      .map(strip)
      .sort();
    const ours = formatDumpFlows(of, of.dumpFlows().filter((r) => r.table >= 10)).map(strip).sort();
    expect(ours.length).toBe(5);
    expect(ours).toEqual(real);
  });
});

describe('tunnel ports', () => {
  // Port 3 is a remote_ip=flow key=flow tunnel, port 4 one with a fixed remote and key.
  const ports = [
    { ofport: 1, name: 'vm1' },
    { ofport: 2, name: 'vm2' },
    { ofport: 3, name: 'tun0', tunnel: { remoteIp: 'flow' as const, localIp: 0x0a000001, outKey: 'flow' as const, dstPort: 4789 } },
    { ofport: 4, name: 'tun1', tunnel: { remoteIp: 0x0a000009, localIp: 0, outKey: 7, dstPort: 6081, ttl: 10, tos: 0x10 } },
  ];

  test('an output to a flow tunnel takes tun_id and tun_dst from the flow; one set per change, replication to two hosts', () => {
    const { of } = bridge({ ports });
    addFlows(of, 'in_port=1,actions=set_field:42->tun_id,set_field:10.0.0.2->tun_dst,output:3,set_field:10.0.0.3->tun_dst,output:3,output:2');
    const r = run(of, 'in_port=1,ip');
    expect(r.actions).toBe(
      'set(tunnel(tun_id=0x2a,src=10.0.0.1,dst=10.0.0.2,ttl=64,tp_dst=4789,flags(key))),3,' +
        'set(tunnel(tun_id=0x2a,src=10.0.0.1,dst=10.0.0.3,ttl=64,tp_dst=4789,flags(key))),3,2',
    );
  });

  test('a fixed tunnel ignores the flow; a flow tunnel without tun_dst drops the output', () => {
    const { of } = bridge({ ports });
    addFlows(of, 'in_port=1,actions=set_tunnel:5,output:4\nin_port=2,actions=output:3,output:1');
    expect(run(of, 'in_port=1').actions).toBe('set(tunnel(tun_id=0x7,dst=10.0.0.9,tos=0x10,ttl=10,tp_dst=6081,flags(key))),4');
    expect(run(of, 'in_port=2').actions).toBe('1');
  });

  test('a packet from a tunnel matches on tun_id, and the megaflow keys on it', () => {
    const { of } = bridge({ ports });
    addFlows(of, 'in_port=3,tun_id=42,actions=output:1\nin_port=3,tun_id=43,actions=output:2');
    expect(run(of, 'in_port=3,tun_id=42,tun_src=10.0.0.2,tun_dst=10.0.0.1,ip')).toEqual({ actions: '1', megaflow: 'recirc_id=0,eth,ip,tun_id=0x2a,in_port=3,nw_frag=no' });
    expect(run(of, 'in_port=3,tun_id=43,ip').actions).toBe('2');
    expect(run(of, 'in_port=3,tun_id=44,ip').actions).toBe('drop');
  });

  test('forwarding a tunnel packet to another flow tunnel carries its tun_id and tun_dst over, and keys on them', () => {
    const { of } = bridge({ ports });
    addFlows(of, 'in_port=4,actions=output:3');
    const r = run(of, 'in_port=4,tun_id=9,tun_src=10.0.0.9,tun_dst=10.0.0.1,ip');
    expect(r.actions).toBe('set(tunnel(tun_id=0x9,src=10.0.0.1,dst=10.0.0.1,ttl=64,tp_dst=4789,flags(key))),3');
    expect(r.megaflow).toBe('recirc_id=0,eth,ip,tun_id=0x9,tun_dst=10.0.0.1,in_port=4,nw_frag=no');
  });
});
