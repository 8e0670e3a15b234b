// fast-check generators shared by the property tests: random rule sets
// (priorities, prefixes and arbitrary masks, VLANs, registers, several tables
// with resubmit and goto, rewrites, dec_ttl, NORMAL, conjunctions), random
// packets written as ovs-ofctl flow text, and the bridge's four ports with
// their VLAN configuration (for nvs and for a real ovs-vswitchd alike).

import fc from 'fast-check';
import type { PortConfig } from '../src/bridge-ports.ts';
import type { FlowMod } from '../src/flow-mod.ts';
import { RuleError } from '../src/syntax/errors.ts';
import { parseFlow } from '../src/syntax/parser.ts';

/** p1 trunk (all VLANs), p2 access 10, p3 trunk 10 and 20, p4 native-untagged 20. */
export const PORTS: readonly { readonly cfg: PortConfig; readonly ovs: string[] }[] = [
  { cfg: { ofport: 1, name: 'p1' }, ovs: [] },
  { cfg: { ofport: 2, name: 'p2', tag: 10 }, ovs: ['tag=10'] },
  { cfg: { ofport: 3, name: 'p3', trunks: [10, 20] }, ovs: ['trunks=10,20'] },
  { cfg: { ofport: 4, name: 'p4', vlanMode: 'native-untagged', tag: 20 }, ovs: ['tag=20', 'vlan_mode=native-untagged'] },
];

/** The dialect a line parses in (OpenFlow 1.0 first, then 1.3), or null when neither takes it. */
export function dialectOf(line: string): 'of10' | 'of13' | null {
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
  // Spaced apart: ruleSet adds an offset to make each table's priorities unique.
  priority: fc.constantFrom(0, 100, 1000, 2000, 10000),
  parts: fc.array(matchPart, { maxLength: 3 }),
  actions: fc.array(action, { minLength: 0, maxLength: 3 }),
});

/** Rules whose IP fields need the ip prerequisite get it: the parser would drop them otherwise. */
function ruleLine(r: RuleSpec): string {
  const matches = r.parts.filter((p) => p);
  let actions = r.actions.filter((a) => a !== 'drop');
  // push_vlan only on an untagged packet: a second tag (802.1ad) is a known
  // difference from OVS (README). The rule matches untagged packets only and
  // pushes before any other action.
  if (actions.includes('push_vlan:0x8100')) {
    actions = actions.filter((a) => a !== 'push_vlan:0x8100');
    if (!matches.some((m) => m.includes('vlan'))) {
      matches.push('vlan_tci=0/0x1000');
      actions.unshift('push_vlan:0x8100');
    }
  }
  const parts = matches.join(',');
  // Resubmits only go forward so that random sets do not all hit the depth limit.
  const acts = actions
    .filter((a) => !a.startsWith('resubmit') || Number(a.slice(-2, -1)) > r.table)
    .filter((a) => !a.startsWith('goto_table') || r.table < 2);
  // Instructions go last, write_metadata before goto_table, as OpenFlow 1.1+ orders them.
  const rank = (a: string) => (a.startsWith('goto_table') ? 2 : a.startsWith('write_metadata') ? 1 : 0);
  acts.sort((a, b) => rank(a) - rank(b));
  return `table=${r.table},priority=${r.priority}${parts ? `,${parts}` : ''},actions=${acts.join(',') || 'drop'}`;
}

/**
 * No two rules of a table share a priority: when overlapping rules of one
 * priority both match, OpenFlow leaves the choice undefined and OVS takes
 * whichever its classifier visits first, which nvs need not copy.
 */
function uniquePriorities(rules: readonly RuleSpec[]): RuleSpec[] {
  const seen = new Map<string, number>();
  return rules.map((r) => {
    const key = `${r.table}/${r.priority}`;
    const n = seen.get(key) ?? 0;
    seen.set(key, n + 1);
    return { ...r, priority: r.priority + n };
  });
}

/** One rule line with the dialect it parses in. */
export interface RandomRule {
  readonly line: string;
  readonly dialect: 'of10' | 'of13';
}

/** The flow-mods of a rule set. */
export function flowMods(rules: readonly RandomRule[]): FlowMod[] {
  return rules.map((r) => parseFlow(r.line, { dialect: r.dialect }));
}

/**
 * Random rule sets. Combinations the parser refuses (e.g. nw_frag=later with
 * tp_dst) are left out, so a set may be empty.
 */
export const ruleSet: fc.Arbitrary<RandomRule[]> = fc.array(rule, { minLength: 1, maxLength: 25 }).map((rules) =>
  uniquePriorities(rules).map(ruleLine).flatMap((line) => {
    const dialect = dialectOf(line);
    return dialect ? [{ line, dialect }] : [];
  }),
);

/** Conjunctive matches to add to a set, or none. */
export const conjunctionRules: fc.Arbitrary<RandomRule[]> = fc
  .constantFrom(
    [],
    ['priority=300,ip,nw_src=10.1.0.0/16,actions=conjunction(7,1/2)', 'priority=300,tcp,tp_dst=80,actions=conjunction(7,2/2)', 'priority=300,conj_id=7,ip,actions=output:4'],
    ['priority=50,in_port=1,actions=conjunction(9,1/2)', 'priority=50,dl_vlan=10,actions=conjunction(9,2/2)', 'priority=50,conj_id=9,actions=output:3'],
  )
  .map((lines) => lines.map((line) => ({ line, dialect: 'of10' as const })));

/** A random packet as ovs-ofctl flow text (`in_port=1,dl_src=…,tcp,…`); build its Flow with `flowOf`. */
export const packet: fc.Arbitrary<string> = fc
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
      // (ovs-appctl ofproto/trace takes tp_src only for TCP.)
      if ((p.kind === 'tcp' || p.kind === 'udp') && p.frag !== 'later') parts.push(`${p.kind}_src=${p.tp}`, `${p.kind}_dst=${p.tp}`);
    }
    return parts.join(',');
  });
