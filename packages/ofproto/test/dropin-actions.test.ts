// The actions, fields and trace input OVS's own ofproto-dpif.at relies on
// (issue 12): the action set (write_actions/clear_actions), push/pop, exit,
// output(port=,max_len=), debug_slow, xreg/xxreg, the OVS resource limits,
// patch ports between two bridges in one translation, and traces written in
// the datapath's flow syntax. Expected datapath actions are those the same
// rules give in OVS's tests.

import pino from 'pino';
import { describe, expect, test } from 'vitest';
import { addFlows, bridge, FakeClock, flowOf } from './helpers.ts';
import { formatDpActions, identityOdpPorts } from '../src/dpif.ts';
import { Slot } from '../src/fields.ts';
import { Ofproto } from '../src/ofproto.ts';
import { MacLearningTable } from '../src/mac-learning.ts';
import { OdpFlowSyntaxError, parseOdpFlow } from '../src/odp-flow-parser.ts';
import { parseFlows } from '../src/syntax/parser.ts';
import { RuleError } from '../src/syntax/errors.ts';
import { trace } from '../src/trace.ts';

const ICMP = 'in_port=1,icmp,dl_src=50:54:00:00:00:05,dl_dst=50:54:00:00:00:07,nw_src=192.168.0.1,nw_dst=192.168.0.2,nw_ttl=128,icmp_type=8';

function withPorts(n: number[]): ReturnType<typeof bridge> {
  return bridge({ ports: n.map((p) => ({ ofport: p, name: `p${p}` })) });
}

function actions(rules: string, flow: string, ports: number[], dialect: 'of10' | 'of13' = 'of10'): string {
  const { of } = withPorts(ports);
  of.applyFlowMods(parseFlows(rules, { dialect }));
  return formatDpActions(of.xlate(flowOf(flow)).actions);
}

describe('the action set (write_actions, clear_actions)', () => {
  test('runs when the pipeline ends, one action per kind, later writes replacing earlier ones', () => {
    const rules = `table=0 in_port=1,ip actions=output(10),write_actions(set_field:192.168.3.90->ip_src,output(12)),goto_table(1)
table=1 ip actions=write_actions(output(13)),goto_table(2)
table=2 ip actions=set_field:192.168.3.91->ip_src,output(11)`;
    expect(actions(rules, ICMP, [1, 10, 11, 12, 13], 'of13')).toBe('10,set(ipv4(src=192.168.3.91)),11,set(ipv4(src=192.168.3.90)),13');
  });

  test('clear_actions empties it', () => {
    const rules = `table=0 in_port=1,ip actions=output(10),write_actions(set_field:192.168.3.90->ip_src,output(12)),goto_table(1)
table=1 tcp actions=set_field:91->tp_src,output(11),clear_actions`;
    expect(actions(rules, 'in_port=1,tcp,nw_src=192.168.0.1,tp_src=8,tp_dst=9', [1, 10, 11, 12], 'of13')).toBe('10,set(tcp(src=91)),11');
  });

  test('needs OpenFlow 1.1 or later; instructions cannot be written into it', () => {
    expect(() => parseFlows('actions=write_actions(output:2)')).toThrow(/needs OpenFlow 1.1 or later/);
    expect(() => parseFlows('actions=clear_actions')).toThrow(RuleError);
    expect(() => parseFlows('actions=write_actions(goto_table:2)', { dialect: 'of13' })).toThrow(/instruction/);
    expect(() => parseFlows('actions=goto_table:2,write_actions(output:2)', { dialect: 'of13' })).toThrow(/before/);
  });
});

describe('push, pop, exit, output(port=,max_len=)', () => {
  test('push/pop move register bits through the stack (ofproto-dpif.at "push-pop")', () => {
    const rules = `in_port=90 actions=load:20->NXM_NX_REG0[0..7],load:21->NXM_NX_REG1[0..7],load:22->NXM_NX_REG2[0..7],load:33->NXM_NX_REG3[0..7],push:NXM_NX_REG0[],push:NXM_NX_REG1[0..7],push:NXM_NX_REG2[0..15],push:NXM_NX_REG3[],resubmit:2,resubmit:3,resubmit:4,resubmit:5
in_port=2 actions=pop:NXM_NX_REG0[0..7],output:NXM_NX_REG0[]
in_port=3 actions=pop:NXM_NX_REG1[0..7],output:NXM_NX_REG1[]
in_port=4 actions=pop:NXM_NX_REG2[0..15],output:NXM_NX_REG2[]
in_port=5 actions=pop:NXM_NX_REG3[],output:NXM_NX_REG3[]`;
    expect(actions(rules, 'in_port=90', [20, 21, 22, 33, 90])).toBe('33,22,21,20');
  });

  test('exit stops every action list, also those that resubmitted', () => {
    const rules = `in_port=1 actions=output:10,exit,output:11
in_port=2 actions=output:12,resubmit:1,output:12
in_port=3 actions=output:13,resubmit:2,output:14`;
    const ports = [1, 2, 3, 10, 11, 12, 13, 14];
    expect(actions(rules, 'in_port=1', ports)).toBe('10');
    expect(actions(rules, 'in_port=2', ports)).toBe('12,10');
    expect(actions(rules, 'in_port=3', ports)).toBe('13,12,10');
  });

  test('output(port=,max_len=) truncates for that output only; output(N) is plain output', () => {
    expect(actions('actions=output(port=2,max_len=100),output(3)', 'in_port=1', [1, 2, 3])).toBe('trunc(100),2,3');
  });

  test('debug_slow keeps the flow in the slow path and says so in the trace', () => {
    const { of } = withPorts([1, 2]);
    addFlows(of, 'in_port=1,actions=debug_slow,2');
    const t = trace(of, 'in_port=1').text.split('\n');
    expect(t.slice(-3)).toEqual(['Datapath actions: 2', 'This flow is handled by the userspace slow path because it:', '  - Uses action(s) not supported by datapath.']);
  });

  test('64 kB of stack fails the translation as in OVS', () => {
    const { of } = withPorts([1]);
    const lines = Array.from({ length: 12 }, (_, i) => `in_port=${i + 1}, actions=resubmit:${i + 2}, resubmit:${i + 2}, local`);
    lines.push(`in_port=13, actions=${Array(8).fill('push:NXM_NX_REG0[]').join(',')}`);
    addFlows(of, lines.join('\n'));
    const t = trace(of, 'in_port=1').text;
    expect(t.split('\n').at(-1)).toBe('Translation failed (Stack too deep), packet is dropped.');
    expect(t.match(/resubmits yielded over 64 kB of stack/g)).toHaveLength(1);
  });
});

describe('xreg and xxreg (OXM_OF_PKT_REGn, NXM_NX_XXREGn)', () => {
  test('are the 32-bit registers, the lower-numbered one most significant', () => {
    const rules = `table=0 actions=load:0xfedcba9876543210->OXM_OF_PKT_REG1[],load:0x0123456789abcdeffedcba9876543210->NXM_NX_XXREG2[],resubmit(,1)
table=1,reg2=0xfedcba98,reg3=0x76543210,reg8=0x01234567,reg11=0x76543210 actions=2
table=1,priority=0 actions=3`;
    expect(actions(rules, 'in_port=1', [1, 2, 3])).toBe('2');
  });

  test('can be matched and moved into', () => {
    const rules = `table=0 actions=move:OXM_OF_ETH_SRC[0..47]->OXM_OF_PKT_REG0[0..47],goto_table(1)
table=1,xreg0=0x0000505400000005 actions=2
table=1,priority=0 actions=3`;
    expect(actions(rules, ICMP, [1, 2, 3], 'of13')).toBe('2');
  });
});

describe('32-bit port numbers of OpenFlow 1.1+', () => {
  test('0xffffff00 and up are the reserved ports; others above 65535 are refused', () => {
    const [fm] = parseFlows('in_port=4294967294,actions=output:4294967292,4294967290', { dialect: 'of13' });
    expect(fm.match.value[Slot.IN_PORT]).toBe(0xfffe);
    expect(fm.actions).toEqual([{ type: 'output', port: 0xfffc }, { type: 'output', port: 0xfffa }]);
    expect(() => parseFlows('in_port=4294967039,actions=1')).toThrow(/outside the supported range/);
  });
});

describe('patch ports', () => {
  /** br0 (ports 1, 3, patch 10) joined to br1 (patch 20, port 2); br1's datapath ports are its OpenFlow ports + 1000. */
  function pair(): { br0: Ofproto; br1: Ofproto } {
    const mk = (name: string, ports: number[], base: number) => {
      const id = identityOdpPorts(base + 100);
      return new Ofproto({
        name,
        logger: pino({ level: 'silent' }),
        clock: new FakeClock(),
        failMode: 'secure',
        odpPorts: { odpPort: (p) => (p === 10 || p === 20 ? undefined : (id.odpPort(p) as number) + base), ofPort: (p) => p - base },
        ports: ports.map((p) => ({ ofport: p, name: `p${p}` })),
      });
    };
    const br0 = mk('br0', [1, 3, 10], 0);
    const br1 = mk('br1', [2, 20], 1000);
    br0.setPatchPeers((p) => (p === 10 ? { ofproto: br1, ofport: 20 } : undefined));
    br1.setPatchPeers((p) => (p === 20 ? { ofproto: br0, ofport: 10 } : undefined));
    return { br0, br1 };
  }

  test('output to a patch port continues in the peer in the same translation, with its action set', () => {
    const { br0, br1 } = pair();
    br1.applyFlowMods(parseFlows('ip actions=write_actions(pop_vlan,output:2)', { dialect: 'of13' }));
    br0.applyFlowMods(parseFlows('ip actions=output:10,output:3', { dialect: 'of13' }));
    const flow = flowOf('in_port=1,dl_vlan=100,icmp');
    const r = br0.xlate(flow);
    // One pass: the peer's output and br0's own, the VLAN put back for the latter.
    expect(formatDpActions(r.actions)).toBe('pop_vlan,1002,push_vlan(vid=100,pcp=0),3');
    expect(r.rules.length).toBe(2);
    const t = trace(br0, 'in_port=1,dl_vlan=100,icmp').text;
    expect(t).toContain('    bridge("br1")');
  });

  test('registers do not leak into the peer, and exit there does not stop this bridge', () => {
    const { br0, br1 } = pair();
    br1.applyFlowMods(parseFlows('reg0=0 actions=output:2,exit\nreg0=5 actions=drop'));
    br0.applyFlowMods(parseFlows('actions=load:5->NXM_NX_REG0[],output:10,output:3'));
    expect(formatDpActions(br0.xlate(flowOf('in_port=1')).actions)).toBe('1002,3');
  });

  test('tunnel metadata does not leak into the peer either, as in OVS', () => {
    const { br0, br1 } = pair();
    br1.applyFlowMods(parseFlows('tun_id=0 actions=output:2\ntun_id=0x2a actions=drop'));
    br0.applyFlowMods(parseFlows('actions=set_field:0x2a->tun_id,output:10,output:3'));
    expect(formatDpActions(br0.xlate(flowOf('in_port=1')).actions)).toBe('1002,3');
  });

  test('output(port=,max_len=) to a patch port is refused, as in OVS', () => {
    const { br0, br1 } = pair();
    br1.applyFlowMods(parseFlows('actions=NORMAL'));
    br0.applyFlowMods(parseFlows('actions=output(port=10,max_len=100),output:3'));
    const t = trace(br0, 'in_port=1').text;
    expect(t).toMatch(/output_trunc does not support patch port 10/);
    expect(t.split('\n').at(-1)).toBe('Datapath actions: 3');
  });
});

describe('datapath flow syntax (ofproto/trace DP FLOW)', () => {
  test('reads the headers OVS tests write', () => {
    const f = parseOdpFlow('in_port(90),eth(src=50:54:00:00:00:05,dst=50:54:00:00:00:07),eth_type(0x0800),ipv4(src=192.168.0.1,dst=192.168.0.2,proto=1,tos=0,ttl=128,frag=no),icmp(type=8,code=0)');
    expect(f.odpInPort).toBe(90);
    expect(f.flow[Slot.DL_TYPE]).toBe(0x0800);
    expect(f.flow[Slot.NW_SRC]).toBe(0xc0a80001);
    expect(f.flow[Slot.NW_TTL]).toBe(128);
    expect(f.flow[Slot.TP_SRC]).toBe(8);
  });

  test('VLAN tags nest the rest in encap(), and masks are read past', () => {
    const f = parseOdpFlow('in_port(1),eth(src=00:11:22:33:44:55,dst=00:22:44:66:88:00),eth_type(0x8100),vlan(vid=16,pcp=0),encap(eth_type(0x8100),vlan(vid=17,pcp=0),encap(eth_type(0xabcd))),skb_mark(0/0)');
    expect(f.flow[Slot.VLAN_TCI]).toBe(0x1010);
    expect(f.flow[Slot.VLAN_TCI1]).toBe(0x1011);
    expect(f.flow[Slot.DL_TYPE]).toBe(0xabcd);
    expect(parseOdpFlow('in_port(p1)', (n) => (n === 'p1' ? 7 : undefined)).odpInPort).toBe(7);
  });

  test('an OpenFlow match, garbage or an unknown attribute is an error, never a crash', () => {
    expect(() => parseOdpFlow('in_port=1,dl_src=50:54:00:00:00:01')).toThrow('syntax error at in_port=1,dl_src=50:54:00:00:00:01');
    expect(() => parseOdpFlow('in_port(1),eth(src=zz)')).toThrow(OdpFlowSyntaxError);
    expect(() => parseOdpFlow('bogus(1)')).toThrow(/unknown datapath flow attribute/);
    expect(() => parseOdpFlow('ipv4(src=1.2.3.4,frog=1)')).toThrow(/unknown field 'frog'/);
    expect(() => parseOdpFlow('in_port(1')).toThrow(/unbalanced/);
  });
});

describe('MAC table', () => {
  test('when full, the port with the most entries gives up its oldest, ties broken as OVS breaks them', () => {
    const t = new MacLearningTable({ maxEntries: 10 });
    let now = 0;
    for (let i = 0; i < 10; i++) t.learn(0, 0x505400000000 + i, Math.floor(i / 2) + 1, (now += 1000));
    for (let i = 0; i < 16; i++) t.learn(0, 0x5054000000ff + i * 0x100, 6, (now += 1000));
    const left = [...t].map((e) => `${e.port} ${e.mac.toString(16)}`).sort();
    // ofproto-dpif.at "MAC table overflow fairness": ports 1, 2 and 4 lose one each, port 6 keeps its newest 3.
    expect(left).toEqual(['1 505400000001', '2 505400000003', '3 505400000004', '3 505400000005', '4 505400000007', '5 505400000008', '5 505400000009', '6 505400000dff', '6 505400000eff', '6 505400000fff']);
  });

  test('static entries are neither aged, moved nor flushed, and can be deleted', () => {
    const t = new MacLearningTable({ agingTime: 5 });
    t.learn(0, 1, 1, 0);
    expect(t.addStatic(0, 1, 2, 0)).toEqual({ port: 1, isStatic: false });
    expect(t.learn(0, 1, 3, 1000)).toBe(false);
    t.expire(60_000);
    t.flush();
    expect([...t].map((e) => [e.port, e.isStatic])).toEqual([[2, true]]);
    expect(t.deleteStatic(0, 1)).toBe(true);
    expect(t.deleteStatic(0, 1)).toBe(false);
    expect(t.size).toBe(0);
  });
});
