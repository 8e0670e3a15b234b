// NORMAL as a VLAN-aware learning switch: access, trunk and native modes,
// flooding within the VLAN except the ingress port, learning then unicast,
// MAC moves, aging and size-limited eviction, and the invalidation tags that
// let the owner revalidate megaflows when the MAC table changes.

import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { bridge, flowOf, ovsPorts, type RealOvs, startOvs } from './helpers.ts';
import { formatDpActions, formatMegaflow } from '../src/dpif.ts';
import type { Ofproto } from '../src/ofproto.ts';
import { MacLearningTable, macTag } from '../src/mac-learning.ts';
import { formatFdb } from '../src/format.ts';
import { needsOvs } from '../../../test/ovs-tools.ts';

const skipOvs = needsOvs('ofproto NORMAL against ovs-vswitchd', ['ovsdb-tool', 'ovsdb-server', 'ovs-vsctl', 'ovs-vswitchd', 'ovs-appctl', 'ovs-ofctl']);

const A = '00:00:00:00:00:0a';
const B = '00:00:00:00:00:0b';
const BCAST = 'ff:ff:ff:ff:ff:ff';

/** Ports: 1,2 access VLAN 10; 3 access VLAN 20; 4 trunk (all); 5 trunk 10,20; 6 native-untagged 20 (only); 7 native-tagged 10 (+30). */
function vlanBridge(opts: { macTableSize?: number; macAgingTime?: number } = {}) {
  return bridge({
    failMode: 'standalone',
    ...opts,
    ports: [
      { ofport: 1, name: 'a1', tag: 10 },
      { ofport: 2, name: 'a2', tag: 10 },
      { ofport: 3, name: 'a3', tag: 20 },
      { ofport: 4, name: 't4' },
      { ofport: 5, name: 't5', trunks: [10, 20] },
      { ofport: 6, name: 'n6', vlanMode: 'native-untagged', tag: 20, trunks: [20] },
      { ofport: 7, name: 'n7', vlanMode: 'native-tagged', tag: 10, trunks: [10, 30] },
    ],
  });
}

function send(of: Ofproto, inPort: number, src: string, dst: string, vlan?: number): string {
  const tag = vlan === undefined ? '' : `,dl_vlan=${vlan}`;
  return formatDpActions(of.xlate(flowOf(`in_port=${inPort},dl_src=${src},dl_dst=${dst}${tag}`)).actions);
}

describe('NORMAL flooding per VLAN', () => {
  test('from an access port: untagged to access/native-untagged ports, tagged to trunks', () => {
    const { of } = vlanBridge();
    expect(send(of, 1, A, BCAST)).toBe('2,push_vlan(vid=10,pcp=0),4,5,7');
    expect(send(of, 3, A, BCAST)).toBe('push_vlan(vid=20,pcp=0),4,5,pop_vlan,6');
  });

  test('from a trunk: the tag picks the VLAN; untagged is VLAN 0', () => {
    const { of } = vlanBridge();
    expect(send(of, 4, A, BCAST, 20)).toBe('pop_vlan,3,push_vlan(vid=20,pcp=0),5,pop_vlan,6');
    expect(send(of, 4, A, BCAST)).toBe('drop'); // VLAN 0: no other port carries it
    expect(send(of, 4, A, BCAST, 30)).toBe('7');
    // A trunk limited to 10,20 drops VLAN 30 and untagged input.
    expect(send(of, 5, A, BCAST, 30)).toBe('drop');
    expect(send(of, 5, A, BCAST)).toBe('drop');
  });

  test('an access port drops tagged input but takes priority-tagged (VID 0) frames', () => {
    const { of } = vlanBridge();
    expect(send(of, 1, A, BCAST, 10)).toBe('drop');
    expect(send(of, 1, A, BCAST, 0)).toBe('pop_vlan,2,push_vlan(vid=10,pcp=0),4,5,7');
  });

  test('native ports: untagged input joins the native VLAN; native-tagged sends it tagged', () => {
    const { of } = vlanBridge();
    expect(send(of, 6, A, BCAST)).toBe('3,push_vlan(vid=20,pcp=0),4,5');
    expect(send(of, 7, A, BCAST)).toBe('1,2,push_vlan(vid=10,pcp=0),4,5');
    expect(send(of, 7, A, BCAST, 30)).toBe('4');
    expect(send(of, 7, A, BCAST, 20)).toBe('drop'); // not in n7's trunks
  });
});

describe('NORMAL and VLAN 0 (as OVS)', () => {
  const ports = [
    { ofport: 1, name: 't1' },
    { ofport: 2, name: 'n2', vlanMode: 'native-untagged' as const, tag: 20 },
    { ofport: 3, name: 'n3', vlanMode: 'native-tagged' as const, tag: 30 },
    { ofport: 4, name: 't4' },
    { ofport: 5, name: 'a5', tag: 10 },
  ];

  test('a native port without trunks carries every VLAN but 0: a trunk\'s untagged traffic stays off it', () => {
    const { of } = bridge({ failMode: 'standalone', ports });
    expect(send(of, 1, A, BCAST)).toBe('4');
    expect(send(of, 1, A, BCAST, 7)).toBe('2,3,4');
  });

  test('a priority tag (VID 0) with a PCP leaves trunks in a priority tag; without a PCP, untagged', () => {
    const { of } = bridge({ failMode: 'standalone', ports });
    const flood = (pcp: number) => formatDpActions(of.xlate(flowOf(`in_port=1,dl_vlan=0,dl_vlan_pcp=${pcp},dl_src=${A},dl_dst=${BCAST}`)).actions);
    expect(flood(5)).toBe('4');
    expect(flood(0)).toBe('pop_vlan,4');
    // From an access port the PCP goes with the access VLAN's tag. (All three as ovs-vswitchd 3.1 does.)
    expect(formatDpActions(of.xlate(flowOf(`in_port=5,dl_vlan=0,dl_vlan_pcp=5,dl_src=${A},dl_dst=${BCAST}`)).actions)).toBe(
      'pop_vlan,push_vlan(vid=10,pcp=5),1,2,3,4',
    );
  });
});

describe('NORMAL learning', () => {
  test('learn then unicast; a destination on the input port is dropped', () => {
    const { of } = vlanBridge();
    expect(send(of, 1, A, B)).toBe('2,push_vlan(vid=10,pcp=0),4,5,7');
    expect(send(of, 4, B, A, 10)).toBe('pop_vlan,1');
    expect(send(of, 1, A, B)).toBe('push_vlan(vid=10,pcp=0),4');
    expect(send(of, 2, B, A)).toBe('1'); // B moved to port 2
    expect(send(of, 1, A, B)).toBe('2');
    expect(send(of, 2, A, B)).toBe('drop'); // A moved to 2 as well: B is on the input port
  });

  test('the same MAC in another VLAN is another entry', () => {
    const { of } = vlanBridge();
    send(of, 1, A, BCAST); // A on 1 in VLAN 10
    expect(send(of, 3, B, A)).toBe('push_vlan(vid=20,pcp=0),4,5,pop_vlan,6'); // A unknown in VLAN 20: flood
  });

  test("megaflow pins in_port, the tag (with PCP, which is kept), source and destination", () => {
    const { of } = vlanBridge();
    const r = of.xlate(flowOf(`in_port=4,dl_vlan=10,dl_src=${A},dl_dst=${B},ip,nw_dst=1.2.3.4`));
    expect(formatMegaflow(r.megaflow)).toBe(`recirc_id=0,eth,ip,in_port=4,dl_vlan=10,dl_vlan_pcp=0,dl_src=${A},dl_dst=${B},nw_frag=no`);
  });

  test('tags: a learned entry, a move and an expiry invalidate megaflows that used it', () => {
    const { of, clock } = vlanBridge({ macAgingTime: 60 });
    of.takeInvalidations();
    const r1 = of.xlate(flowOf(`in_port=1,dl_src=${A},dl_dst=${B}`));
    expect(r1.tags).toContain(macTag(10, 0x0b));
    expect(r1.tags).toContain('table:0');
    expect(of.takeInvalidations()).toEqual(new Set([macTag(10, 0x0a)]));
    // A flow towards A depended on A's (missing) entry; B learns, then A moves.
    const r2 = of.xlate(flowOf(`in_port=2,dl_src=${B},dl_dst=${A}`));
    expect(r2.tags).toContain(macTag(10, 0x0a));
    of.takeInvalidations();
    of.xlate(flowOf(`in_port=2,dl_src=${A},dl_dst=${B}`));
    expect(of.takeInvalidations()).toEqual(new Set([macTag(10, 0x0a)]));
    clock.advance(61);
    of.run();
    expect(of.takeInvalidations()).toEqual(new Set([macTag(10, 0x0a), macTag(10, 0x0b)]));
    expect(of.fdb()).toEqual([]);
  });

  test('aging: traffic credited to a megaflow keeps its MAC alive, silence ages it out', () => {
    const { of, clock } = vlanBridge({ macAgingTime: 300 });
    const r = of.xlate(flowOf(`in_port=1,dl_src=${A},dl_dst=${B}`));
    clock.advance(200);
    of.credit(r, 5, 500, clock.now());
    clock.advance(200);
    of.run();
    expect(of.fdb().map((e) => [e.port, e.vlan, e.age])).toEqual([[1, 10, 200]]);
    expect(formatFdb(of)).toEqual([' port  VLAN  MAC                Age', `    1    10  ${A}  200`]);
    clock.advance(101);
    of.run();
    expect(of.fdb()).toEqual([]);
  });

  test('credited traffic learns an evicted source again, but stale stats do not undo a newer move', () => {
    const { of, clock } = vlanBridge({ macTableSize: 1 });
    const fromA = of.xlate(flowOf(`in_port=1,dl_src=${A},dl_dst=${BCAST}`));
    // The source's entry is learned, not depended on: its changes need not revalidate this flow.
    expect(fromA.tags).not.toContain(macTag(10, 0x0a));
    send(of, 2, B, BCAST); // evicts A
    expect(of.fdb().map((e) => e.port)).toEqual([2]);
    clock.advance(1);
    of.credit(fromA, 3, 300, clock.now());
    expect(of.fdb().map((e) => [e.port, e.vlan])).toEqual([[1, 10]]);
    // A moves to port 2 now; packets counted on the old megaflow a second ago must not move it back.
    clock.advance(1);
    send(of, 2, A, BCAST);
    of.credit(fromA, 1, 100, clock.now() - 1000);
    expect(of.fdb().map((e) => e.port)).toEqual([2]);
  });

  test('the table holds at most macTableSize entries, evicting the least recently seen', () => {
    const { of, clock } = vlanBridge({ macTableSize: 3 });
    const mac = (n: number) => `00:00:00:00:01:${n.toString(16).padStart(2, '0')}`;
    for (let n = 1; n <= 3; n++) {
      send(of, 1, mac(n), BCAST);
      clock.advance(1);
    }
    send(of, 2, mac(1), BCAST); // mac 1 seen again (and moved): now the youngest
    send(of, 3, mac(4), BCAST); // evicts mac 2
    expect(of.fdb().map((e) => e.mac & 0xff)).toEqual([3, 1, 4]);
    of.setMacLearning(300, 1);
    expect(of.fdb().map((e) => e.mac & 0xff)).toEqual([4]);
  });

  test('removing or reconfiguring a port forgets the MACs learned on it', () => {
    const { of } = vlanBridge();
    send(of, 1, A, BCAST);
    send(of, 2, B, BCAST);
    of.setPorts(of.ports.filter((p) => p.ofport !== 1).map((p) => ({ ...p, trunks: p.trunks ? [...p.trunks] : undefined, vlanMode: p.mode, tunnel: p.tunnel ?? undefined })));
    expect(of.fdb().map((e) => e.port)).toEqual([2]);
    expect(of.takeInvalidations()).toContain('ports');
  });
});

describe('MacLearningTable', () => {
  test('learn reports changes only for new entries and moves', () => {
    const t = new MacLearningTable({ agingTime: 10, maxEntries: 2 });
    expect(t.learn(1, 0xa, 1, 0)).toBe(true);
    expect(t.learn(1, 0xa, 1, 5_000)).toBe(false);
    expect(t.learn(1, 0xa, 2, 6_000)).toBe(true);
    expect(t.stats).toEqual({ learned: 1, moved: 1, expired: 0, evicted: 0 });
    expect(t.expire(15_000)).toBe(0);
    expect(t.expire(16_000)).toBe(1);
    expect(t.size).toBe(0);
  });

  test('one MAC in several VLANs: separate entries, evicted and flushed one by one', () => {
    const t = new MacLearningTable({ maxEntries: 3 });
    for (const [vlan, port, now] of [[10, 1, 1], [20, 2, 2], [30, 3, 3]]) t.learn(vlan, 0xa, port, now);
    expect([10, 20, 30].map((v) => t.lookup(v, 0xa)?.port)).toEqual([1, 2, 3]);
    t.learn(20, 0xa, 2, 4); // VLAN 20's entry is now the youngest
    t.learn(40, 0xb, 4, 5); // evicts VLAN 10's entry of 0xa
    expect([10, 20, 30].map((v) => t.lookup(v, 0xa)?.port)).toEqual([undefined, 2, 3]);
    t.flush(3);
    expect([...t].map((e) => [e.vlan, e.mac, e.port])).toEqual([[20, 0xa, 2], [40, 0xb, 4]]);
    expect(t.takeChangedTags()).toEqual(new Set(['mac:10:a', 'mac:20:a', 'mac:30:a', 'mac:40:b']));
  });
});

/**
 * Where each output of a datapath action list goes and with which VLAN tag:
 * `{ '3': 10, '1': null }`. The order of outputs is left out (OVS floods in
 * hash order, we in port order); a port output twice shows as a list.
 */
function outputsOf(datapathActions: string, inputVid: number | null): Record<string, string> {
  const out: Record<string, string[]> = {};
  let vid = inputVid;
  const text = datapathActions.replace(/^Datapath actions: /, '');
  if (text === 'drop') return {};
  for (const a of text.split(/,(?![^(]*\))/)) {
    const push = /^push_vlan\((?:tpid=[^,]+,)?vid=(\d+),pcp=\d+\)$/.exec(a);
    if (push) vid = Number(push[1]);
    else if (a === 'pop_vlan') vid = null;
    else if (/^\d+$/.test(a)) (out[a] ??= []).push(vid === null ? 'untagged' : `vlan ${vid}`);
    else throw new Error(`unexpected datapath action ${a}`);
  }
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.join('+')]));
}

describe.skipIf(skipOvs)('NORMAL against a real ovs-vswitchd', () => {
  // p1 access 10, p2 trunk 10,20, p3 native-untagged 20 (+10), p4 native-tagged 10 (+30), p5 trunk (all), LOCAL trunk.
  const PORTS = [
    { n: 1, port: ['tag=10'], cfg: { tag: 10 } },
    { n: 2, port: ['trunks=10,20'], cfg: { trunks: [10, 20] } },
    { n: 3, port: ['tag=20', 'vlan_mode=native-untagged', 'trunks=10'], cfg: { tag: 20, vlanMode: 'native-untagged' as const, trunks: [10] } },
    { n: 4, port: ['tag=10', 'vlan_mode=native-tagged', 'trunks=30'], cfg: { tag: 10, vlanMode: 'native-tagged' as const, trunks: [30] } },
    { n: 5, port: [], cfg: {} },
  ];
  const MAC = (n: number) => `00:00:00:00:00:${n.toString(16).padStart(2, '0')}`;
  // [in_port, vid or null, src, dst]; learning carries over from one step to the next.
  const STEPS: [number, number | null, number, number][] = [
    [1, null, 1, 0xff],
    [2, 10, 2, 1],
    [1, null, 1, 2],
    [3, null, 3, 0xff],
    [3, 10, 4, 0xff],
    [4, null, 5, 0xff],
    [4, 30, 6, 0xff],
    [5, 30, 7, 6],
    [5, null, 8, 0xff],
    [1, 5, 9, 0xff],
    [2, 30, 10, 0xff],
    [5, 20, 11, 3],
    [1, 0, 12, 2],
    [5, 10, 1, 0xff],
    [2, 10, 13, 1],
  ];
  let ovs: RealOvs;
  beforeAll(() => {
    ovs = startOvs(ovsPorts(PORTS));
  });
  afterAll(() => ovs?.stop());

  test('the same outputs with the same tags for access, trunk and native ports, flooding, learning and moves', () => {
    const { of } = bridge({
      failMode: 'standalone',
      ports: [...PORTS.map((p) => ({ ofport: p.n, name: `p${p.n}`, ...p.cfg })), { ofport: 0xfffe, name: 'br0' }],
    });
    for (const [inPort, vid, src, dst] of STEPS) {
      const dstMac = dst === 0xff ? 'ff:ff:ff:ff:ff:ff' : MAC(dst);
      const flow = `in_port=${inPort},${vid === null ? '' : `dl_vlan=${vid},`}dl_src=${MAC(src)},dl_dst=${dstMac}`;
      const real = ovs.trace(flow, '-generate').find((l) => l.startsWith('Datapath actions:'))!;
      const ours = formatDpActions(of.xlate(flowOf(flow)).actions);
      expect({ flow, outputs: outputsOf(ours, vid || null) }).toEqual({ flow, outputs: outputsOf(real, vid || null) });
    }
    // The learned table is the same too (ages aside: the two clocks differ).
    const noAge = (lines: string[]) => [lines[0], ...lines.slice(1).map((l) => l.replace(/\s+\d+$/, '')).sort()];
    const realFdb = ovs.run('ovs-appctl', ['-t', ovs.ctl, 'fdb/show', 'br0']).trimEnd().split('\n');
    expect(noAge(formatFdb(of))).toEqual(noAge(realFdb));
    expect(realFdb.length).toBeGreaterThan(8);
  });
});
