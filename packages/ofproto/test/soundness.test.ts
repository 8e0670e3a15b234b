// The megaflow soundness property: for random rule sets and packets, every
// packet that matches the megaflow xlate computed (key under mask) gets the
// same datapath actions from a full table walk. Rule sets mix priorities,
// prefixes and arbitrary masks, several tables with resubmit and goto,
// register loads and matches, rewrites, dec_ttl, conjunctions and NORMAL
// (over a fixed MAC table, translated without side effects).

import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { addFlows, bridge, flowOf, fromDpKey, inMegaflow, mixUnderMask, toDpKey } from './helpers.ts';
import { type Flow, Slot } from '../src/fields.ts';
import { parseFlow } from '../src/syntax/parser.ts';
import { RuleError } from '../src/syntax/errors.ts';

/** The dialect a line parses in (OpenFlow 1.0 first, then 1.3), or null when neither takes it. */
function dialectOf(line: string): 'of10' | 'of13' | null {
  for (const dialect of ['of10', 'of13'] as const) {
    try {
      parseFlow(line, { dialect });
      return dialect;
    } catch (e) {
      if (!(e instanceof RuleError)) throw e;
    }
  }
  return null;
}

const ADDRS = ['10.0.0.0', '10.1.0.0', '10.1.2.0', '192.168.1.0', '0.0.0.0'];
const MACS = ['00:00:00:00:00:01', '00:00:00:00:00:02', '00:00:00:00:00:03', 'ff:ff:ff:ff:ff:ff'];

const ipPrefix = fc
  .tuple(fc.constantFrom(...ADDRS), fc.integer({ min: 0, max: 255 }), fc.constantFrom(8, 16, 23, 24, 30, 32))
  .map(([a, low, len]) => `${a.split('.').slice(0, 3).join('.')}.${low}/${len}`);

const matchPart = fc.oneof(
  fc.constantFrom('', 'in_port=1', 'in_port=2', 'in_port=3'),
  fc.constantFrom('ip', 'tcp', 'udp', 'arp', 'icmp'),
  ipPrefix.map((p) => `ip,nw_dst=${p}`),
  ipPrefix.map((p) => `ip,nw_src=${p}`),
  fc.constantFrom('tcp,tp_dst=80', 'tcp,tp_dst=0x0/0xff00', 'udp,tp_src=53', 'tcp,tp_dst=443'),
  fc.constantFrom('dl_vlan=10', 'vlan_tci=0/0x1000', 'dl_vlan=20', 'vlan_tci=0x1000/0x1000'),
  fc.constantFrom(...MACS).map((m) => `dl_dst=${m}`),
  fc.constantFrom('dl_src=00:00:00:00:00:00/01:00:00:00:00:00', 'ip,nw_ttl=1', 'ip,nw_tos=16', 'ip,nw_frag=later'),
  fc.constantFrom('reg0=1', 'reg0=2', 'reg1=0x5/0xf', 'metadata=0x1'),
  fc.constantFrom('ipv6,ipv6_dst=2001:db8::/32', 'tcp6,ipv6_src=2001:db8::1', 'ipv6,ipv6_dst=2001:db8::1:0/112', 'tcp6,tp_dst=80', 'arp,arp_tpa=10.1.0.0/16'),
);

const action = fc.oneof(
  fc.constantFrom('output:1', 'output:2', 'output:3', 'output:4', 'drop', 'NORMAL', 'FLOOD', 'IN_PORT', 'CONTROLLER:64'),
  fc.constantFrom('mod_vlan_vid:10', 'strip_vlan', 'mod_dl_src:00:00:00:00:00:09', 'dec_ttl', 'mod_vlan_pcp:3'),
  fc.constantFrom('mod_nw_dst:10.1.2.3', 'mod_nw_tos:16', 'mod_tp_dst:80', 'load:0x7->NXM_OF_IP_DST[0..7]', 'move:NXM_OF_IP_SRC[24..31]->NXM_NX_REG0[0..7]'),
  fc.constantFrom('load:1->NXM_NX_REG0[]', 'load:2->NXM_NX_REG0[]', 'move:NXM_OF_IN_PORT[]->NXM_NX_REG1[0..15]'),
  fc.constantFrom('resubmit(,1)', 'resubmit(,2)', 'resubmit(2,1)', 'output:NXM_NX_REG1[0..15]'),
  // OpenFlow 1.3 spellings (parsed in that dialect).
  fc.constantFrom('set_field:2001:db8::9->ipv6_dst', 'dec_ttl', 'mod_tp_src:1000'),
  fc.constantFrom('goto_table:2', 'write_metadata:0x1/0x1', 'push_vlan:0x8100', 'set_field:4101->vlan_vid', 'pop_vlan'),
);

interface RuleSpec {
  table: number;
  priority: number;
  parts: string[];
  actions: string[];
}

const rule: fc.Arbitrary<RuleSpec> = fc.record({
  table: fc.constantFrom(0, 0, 1, 2),
  priority: fc.constantFrom(0, 10, 100, 200, 1000),
  parts: fc.array(matchPart, { maxLength: 3 }),
  actions: fc.array(action, { minLength: 0, maxLength: 3 }),
});

/** Rules whose IP fields need the ip prerequisite get it: the parser would drop them otherwise. */
function ruleLine(r: RuleSpec): string {
  const parts = r.parts.filter((p) => p).join(',');
  const actions = r.actions.filter((a) => a !== 'drop');
  // Resubmits only go forward so that random sets do not all hit the depth limit.
  const acts = actions
    .filter((a) => !a.startsWith('resubmit') || Number(a.slice(-2, -1)) > r.table)
    .filter((a) => !a.startsWith('goto_table') || r.table < 2);
  // Instructions go last, write_metadata before goto_table, as OpenFlow 1.1+ orders them.
  const rank = (a: string) => (a.startsWith('goto_table') ? 2 : a.startsWith('write_metadata') ? 1 : 0);
  acts.sort((a, b) => rank(a) - rank(b));
  return `table=${r.table},priority=${r.priority}${parts ? `,${parts}` : ''},actions=${acts.join(',') || 'drop'}`;
}

const conjunctionRules = fc.constantFrom(
  '',
  'priority=300,ip,nw_src=10.1.0.0/16,actions=conjunction(7,1/2)\npriority=300,tcp,tp_dst=80,actions=conjunction(7,2/2)\npriority=300,conj_id=7,ip,actions=output:4',
  'priority=50,in_port=1,actions=conjunction(9,1/2)\npriority=50,dl_vlan=10,actions=conjunction(9,2/2)\npriority=50,conj_id=9,actions=output:3',
);

const packet: fc.Arbitrary<Flow> = fc
  .record({
    inPort: fc.constantFrom(1, 2, 3, 4),
    kind: fc.constantFrom('ip', 'tcp', 'udp', 'icmp', 'arp', 'none', 'ipv6', 'tcp6'),
    v6: fc.constantFrom('2001:db8::1', '2001:db8::1:5', '2001:db9::1', 'fe80::1'),
    src: fc.constantFrom(...ADDRS),
    dst: fc.constantFrom(...ADDRS),
    lowS: fc.integer({ min: 0, max: 255 }),
    lowD: fc.integer({ min: 0, max: 255 }),
    tp: fc.constantFrom(53, 80, 443, 8080),
    vlan: fc.constantFrom('', 'dl_vlan=10', 'dl_vlan=20', 'dl_vlan=0'),
    pcp: fc.integer({ min: 0, max: 7 }),
    dlSrc: fc.constantFrom(...MACS.slice(0, 3)),
    dlDst: fc.constantFrom(...MACS),
    ttl: fc.constantFrom(1, 2, 64),
    frag: fc.constantFrom('no', 'no', 'first', 'later'),
  })
  .map((p) => {
    const ip = (a: string, low: number) => `${a.split('.').slice(0, 3).join('.')}.${low}`;
    const parts = [`in_port=${p.inPort}`, `dl_src=${p.dlSrc}`, `dl_dst=${p.dlDst}`];
    if (p.vlan) parts.push(p.vlan, `dl_vlan_pcp=${p.pcp}`);
    if (p.kind === 'arp') parts.push('arp', `arp_spa=${ip(p.src, p.lowS)}`, `arp_tpa=${ip(p.dst, p.lowD)}`);
    else if (p.kind === 'ipv6' || p.kind === 'tcp6') {
      parts.push(p.kind, `ipv6_src=${p.v6}`, `ipv6_dst=${p.v6}`, `nw_ttl=${p.ttl}`);
      if (p.kind === 'tcp6') parts.push(`tp_src=${p.tp}`, `tp_dst=${p.tp}`);
    } else if (p.kind !== 'none') {
      parts.push(p.kind, `nw_src=${ip(p.src, p.lowS)}`, `nw_dst=${ip(p.dst, p.lowD)}`, `nw_ttl=${p.ttl}`, `nw_frag=${p.frag}`);
      if ((p.kind === 'tcp' || p.kind === 'udp') && p.frag !== 'later') parts.push(`tp_src=${p.tp}`, `tp_dst=${p.tp}`);
    }
    return flowOf(parts.join(','));
  });

describe('megaflow soundness', () => {
  test('every packet in the megaflow gets the same datapath actions', () => {
    fc.assert(
      fc.property(
        fc.array(rule, { minLength: 1, maxLength: 25 }),
        conjunctionRules,
        fc.array(packet, { minLength: 1, maxLength: 6 }),
        fc.array(packet, { minLength: 4, maxLength: 8 }),
        (rules, conj, packets, others) => {
          const { of } = bridge({
            ports: [
              { ofport: 1, name: 'p1' },
              { ofport: 2, name: 'p2', tag: 10 },
              { ofport: 3, name: 'p3', trunks: [10, 20] },
              { ofport: 4, name: 'p4', vlanMode: 'native-untagged', tag: 20 },
            ],
          });
          // Combinations the parser refuses (e.g. nw_frag=later with tp_dst) are left out.
          const mods = rules.map(ruleLine).flatMap((l) => {
            const dialect = dialectOf(l);
            return dialect ? [parseFlow(l, { dialect })] : [];
          });
          of.applyFlowMods(mods);
          addFlows(of, conj);
          // A fixed MAC table so that NORMAL has both known and unknown destinations.
          for (const p of packets.slice(0, 2)) of.xlate(p);
          for (const p of packets) {
            const r = of.xlate(p, { sideEffects: false });
            expect(inMegaflow(r.megaflow, toDpKey(p))).toBe(true);
            for (const o of others) {
              const q = fromDpKey(mixUnderMask(r.megaflow, toDpKey(o)));
              // A datapath key of an untagged packet has vlan_tci 0 (no PCP bits without a tag).
              if (!(q[Slot.VLAN_TCI] & 0x1000)) q[Slot.VLAN_TCI] = 0;
              // Slow-path state starts at zero for every packet.
              expect(q[Slot.REG0]).toBe(0);
              const r2 = of.xlate(q, { sideEffects: false });
              expect(r2.actions).toEqual(r.actions);
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
