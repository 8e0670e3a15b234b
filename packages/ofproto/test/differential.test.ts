// Differential test of flow translation: random rule sets (random-rules.ts,
// shared with the soundness test) go into nvs's Ofproto and into a real
// ovs-vswitchd (dummy datapath; the same four ports with the same VLAN
// configuration and LOCAL, datapath ports numbered alike on both), and
// random packets traced through each must end in the same `Datapath
// actions:` line.
//
// NORMAL sees the same MAC table on both sides: OVS's is flushed before each
// case, then the case's first two packets go through both with side effects
// (OVS: `ofproto/trace -generate`); the compared traces learn nothing.
//
// The line is compared exactly, with two exceptions. Where the translation
// floods (NORMAL to an unknown or multicast destination, FLOOD, ALL), OVS
// visits ports in the order of its hash tables (for NORMAL, hashes of
// pointers, which change from one run to the next) and nvs in port-number
// order, so there the outputs are compared as a multiset of (port, headers
// the packet leaves with). And a controller action's recirc_id is left out:
// OVS allocates a new one each time for the state it freezes, nvs freezes
// none.
//
// Megaflow lines are not compared: both are heuristics (which bits a lookup
// consults depends on each classifier's subtables and tries), and they
// differ in places without either being wrong; the soundness test checks
// nvs's.
//
// Seed and number of runs are fixed so that CI replays the same cases;
// NVS_DIFF_SEED and NVS_DIFF_RUNS try others. A failure prints the seed and
// the shrunk rule set and packets.

import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { bridge, flowOf, ovsPorts, type RealOvs, startOvs } from './helpers.ts';
import { conjunctionRules, flowMods, packet, PORTS, type RandomRule, ruleSet } from './random-rules.ts';
import { OFPP } from '../src/fields.ts';
import type { Ofproto } from '../src/ofproto.ts';
import { trace } from '../src/trace.ts';
import { needsOvs } from '../../../test/ovs-tools.ts';

const skipOvs = needsOvs('ofproto xlate differential against ovs-vswitchd', ['ovsdb-tool', 'ovsdb-server', 'ovs-vsctl', 'ovs-vswitchd', 'ovs-appctl', 'ovs-ofctl']);

const SEED = Number(process.env.NVS_DIFF_SEED ?? 20261125);
const RUNS = Number(process.env.NVS_DIFF_RUNS ?? 120);

/** Splits at top-level commas (not those inside parentheses). */
function splitTop(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '(') depth++;
    else if (text[i] === ')') depth--;
    else if (text[i] === ',' && depth === 0) {
      out.push(text.slice(start, i));
      start = i + 1;
    }
  }
  out.push(text.slice(start));
  return out;
}

/**
 * What leaves the datapath, in any order: each output or userspace action
 * with the VLAN tags and field rewrites the packet carries at that point.
 * `packet` (flow text) gives the tag it came in with.
 */
function deliveries(actions: string, packet: string): string[] {
  if (actions === 'drop') return [];
  const tag = /dl_vlan=(\d+),dl_vlan_pcp=(\d+)/.exec(packet);
  const tags: string[] = tag ? [`vid=${tag[1]},pcp=${tag[2]}`] : [];
  const sets = new Map<string, string>();
  const out: string[] = [];
  for (const a of splitTop(actions)) {
    if (a === 'pop_vlan') tags.shift();
    else if (a.startsWith('push_vlan(')) tags.unshift(a.slice('push_vlan('.length, -1));
    else if (a.startsWith('set(')) {
      const m = /^set\((\w+)\((.*)\)\)$/.exec(a);
      if (!m) throw new Error(`unexpected datapath action ${a}`);
      for (const kv of splitTop(m[2])) sets.set(`${m[1]}(${kv.split('=')[0]}`, kv);
    } else {
      const headers = [...tags.map((t) => `vlan(${t})`), ...[...sets.keys()].sort().map((k) => `${k.split('(')[0]}(${sets.get(k)})`)];
      out.push(`${a} ${headers.join(' ')}`);
    }
  }
  return out.sort();
}

/** True when nvs's translation of `packet` reached NORMAL, FLOOD or ALL. */
function floods(of: Ofproto, packet: string): boolean {
  const flooding: number[] = [OFPP.NORMAL, OFPP.FLOOD, OFPP.ALL];
  const r = of.xlate(flowOf(packet), { sideEffects: false, trace: true });
  return (r.trace ?? []).some((e) => e.kind === 'action' && e.action.type === 'output' && flooding.includes(e.action.port));
}

/** The datapath actions of a trace, recirc_id left out. */
function datapathActions(trace: readonly string[]): string {
  const line = trace.findLast((l) => l.startsWith('Datapath actions: ')) ?? 'Datapath actions: (none)';
  return line.slice('Datapath actions: '.length).replace(/,recirc_id=\d+,/g, ',recirc_id=*,');
}

/** Loads rules into the real switch in order, each run of lines in its own dialect. */
function loadOvs(ovs: RealOvs, rules: readonly RandomRule[]): void {
  ovs.run('ovs-ofctl', ['-O', 'OpenFlow13', 'del-flows', ovs.mgmt]);
  for (let i = 0; i < rules.length; ) {
    let j = i;
    while (j < rules.length && rules[j].dialect === rules[i].dialect) j++;
    const opts = rules[i].dialect === 'of10' ? ['-F', 'nxm+table_id'] : ['-O', 'OpenFlow13'];
    ovs.run('ovs-ofctl', [...opts, 'add-flows', ovs.mgmt, '-'], `${rules.slice(i, j).map((r) => r.line).join('\n')}\n`);
    i = j;
  }
}

describe.skipIf(skipOvs)('xlate against a real ovs-vswitchd', () => {
  let ovs: RealOvs;
  beforeAll(() => {
    ovs = startOvs([
      'fail_mode=secure',
      'protocols=OpenFlow10,OpenFlow13',
      ...ovsPorts(PORTS.map((p) => ({ n: p.cfg.ofport, port: p.ovs }))),
    ]);
  });
  afterAll(() => ovs?.stop());

  test('random rule sets and packets get the same Datapath actions line', () => {
    let compared = 0;
    fc.assert(
      fc.property(ruleSet, conjunctionRules, fc.array(packet, { minLength: 1, maxLength: 6 }), (rules, conj, packets) => {
        const all = [...rules, ...conj];
        loadOvs(ovs, all);
        ovs.run('ovs-appctl', ['-t', ovs.ctl, 'fdb/flush', 'br0']);
        const { of } = bridge({ ports: [...PORTS.map((p) => p.cfg), { ofport: OFPP.LOCAL, name: 'br0' }] });
        of.applyFlowMods(flowMods(all));
        for (const p of packets.slice(0, 2)) {
          ovs.trace(p, '-generate');
          of.xlate(flowOf(p));
        }
        for (const p of packets) {
          const real = datapathActions(ovs.trace(p));
          const ours = datapathActions(trace(of, p).text.split('\n'));
          if (ours !== real && floods(of, p)) {
            expect({ packet: p, outputs: deliveries(ours, p) }).toEqual({ packet: p, outputs: deliveries(real, p) });
          } else {
            expect({ packet: p, actions: ours }).toEqual({ packet: p, actions: real });
          }
          compared++;
        }
      }),
      { seed: SEED, numRuns: RUNS },
    );
    expect(compared).toBeGreaterThan(RUNS);
  });

  test('flooded outputs compare as (port, headers) whatever their order', () => {
    const packet = 'in_port=1,dl_vlan=10,dl_vlan_pcp=0,dl_dst=ff:ff:ff:ff:ff:ff';
    expect(deliveries('pop_vlan,2,push_vlan(vid=10,pcp=0),3,4', packet)).toEqual(deliveries('3,4,pop_vlan,2', packet));
    expect(deliveries('pop_vlan,2,push_vlan(vid=10,pcp=0),3', packet)).not.toEqual(deliveries('2,3', packet));
    expect(deliveries('set(ipv4(dst=1.2.3.4)),2,set(ipv4(ttl=9)),3', packet)).toEqual([
      '2 vlan(vid=10,pcp=0) ipv4(dst=1.2.3.4)',
      '3 vlan(vid=10,pcp=0) ipv4(dst=1.2.3.4) ipv4(ttl=9)',
    ]);
  });
});
