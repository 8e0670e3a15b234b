// `dpif/dump-flows` against the real ovs-vswitchd: the same bridge (dummy
// ports, one access port in VLAN 10, the others untagged/trunk), the same
// rules and the same packets go to a real ovs-vswitchd (netdev datapath) and
// to nvs-vswitchd, and the megaflow dumps must read alike, line for line.
//
// Compared after normalizing, and why each normalization is legitimate:
// - `used:` times: wall clocks differ; only `never` versus a time must agree.
// - Line order: both dump in hash order.
// - Port numbers: datapath port numbers are each datapath's own (nvs gives
//   the LOCAL port a low number, OVS's dummy datapath 100+), so the dumps are
//   compared with `--names`; a separate check says the numeric form is the
//   named form with each name's datapath number (per `dpif/show`).
// - Bits outside a partial mask: OVS prints the installing packet's bits
//   (`dst=192.168.3.4/255.255.0.0`, a VLAN `pcp=3/0x0`), nvs stores keys
//   masked (its megaflows are identified by masked key and mask), so it
//   prints `dst=192.168.0.0/255.255.0.0` and leaves out a subfield whose
//   value and mask are then both 0. OVS's values are masked before comparing.
// - `-m`: the ufid is OVS's random id versus a digest of nvs's flow
//   identity; OVS lists every header of the installing packet while nvs can
//   list only the headers its masked key still determines (no `tcp(src=1000/0,…)`
//   when nw_proto is wildcarded). So `-m` is checked on each side to be the
//   same flows as the short form once wildcarded subfields are dropped, and
//   to open with the same always-wildcarded metadata.
// Megaflow masks themselves are not normalized: in these scenarios nvs and
// OVS unwildcard the same fields.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ovsPorts, type RealOvs, startOvs } from '../packages/ofproto/test/helpers.ts';
import { buildPacket, type PacketFields } from '@nvs/vswitchd';
import { NvsRun } from './e2e-harness.ts';
import { needsOvs } from './ovs-tools.ts';

const skipOvs = needsOvs('test/e2e-dpif-dump', ['ovsdb-tool', 'ovsdb-server', 'ovs-vsctl', 'ovs-vswitchd', 'ovs-appctl', 'ovs-ofctl']);

const MAC = (n: number) => 0x0a0000000000 + n;
const IP = (s: string) => s.split('.').reduce((a, b) => a * 256 + Number(b), 0);
const hex = (f: Partial<PacketFields>) => Buffer.from(buildPacket(f)).toString('hex');
/** An IPv4 TCP packet from host a to host b. */
const tcp = (a: number, b: number, extra: Partial<PacketFields> = {}) =>
  hex({ eth_src: MAC(a), eth_dst: MAC(b), eth_type: 0x0800, nw_src: IP(`10.0.0.${a}`), nw_dst: IP(`10.0.0.${b}`), nw_proto: 6, nw_ttl: 64, tp_src: 1000, tp_dst: 80, ...extra });

/** p1: access port in VLAN 10; p2: trunk (all VLANs); p3, p4: untagged (VLAN 0). */
const PORTS = [{ n: 1, port: ['tag=10'] }, { n: 2 }, { n: 3 }, { n: 4 }];

interface Scenario {
  name: string;
  /** OpenFlow rules (ovs-ofctl syntax). */
  rules: string;
  /** Packets, in order: [port, hex]; each is followed by a revalidation round on both switches. */
  packets: [string, string][];
}

const SCENARIOS: Scenario[] = [
  {
    name: 'NORMAL unicast (flood first, learned unicast after, hits counted)',
    rules: 'actions=NORMAL',
    packets: [['p4', tcp(4, 3)], ['p3', tcp(3, 4)], ['p3', tcp(3, 4)], ['p4', tcp(4, 3)], ['p4', tcp(4, 3)]],
  },
  {
    name: 'VLAN access to trunk: push_vlan one way, pop_vlan the other',
    rules: 'actions=NORMAL',
    packets: [['p2', tcp(2, 1, { vlan_tci: 0x1000 | 10 })], ['p1', tcp(1, 2)], ['p1', tcp(1, 2)], ['p2', tcp(2, 1, { vlan_tci: 0x1000 | 10 })]],
  },
  {
    name: 'a 5-tuple rule, and the megaflow of a packet that misses it',
    rules: `priority=100,tcp,nw_src=10.0.0.3,nw_dst=10.0.0.4,tp_src=1000,tp_dst=80,actions=output:4
priority=0,actions=drop`,
    packets: [['p3', tcp(3, 4)], ['p3', tcp(3, 4)], ['p3', tcp(3, 4, { tp_dst: 81 })]],
  },
  {
    name: 'drop by in_port',
    rules: `priority=10,in_port=3,actions=drop
priority=5,actions=output:2`,
    packets: [['p3', tcp(3, 4)], ['p3', tcp(3, 4)]],
  },
  {
    name: 'a prefix match with set actions and several outputs; TCP flags seen',
    rules: `priority=20,tcp,nw_dst=192.168.0.0/16,actions=mod_dl_src:00:11:22:33:44:55,dec_ttl,output:2,output:4
priority=0,actions=drop`,
    packets: [['p3', tcp(3, 4, { nw_dst: IP('192.168.3.4'), tcp_flags: 0x02 })], ['p3', tcp(3, 4, { nw_dst: IP('192.168.3.4'), tcp_flags: 0x12 })]],
  },
  {
    name: 'IPv6, ARP and ICMP headers',
    rules: `priority=20,ipv6,ipv6_dst=2001:db8::/32,actions=output:2
priority=15,udp6,tp_dst=53,actions=output:4
priority=10,arp,arp_op=1,actions=output:3
priority=5,icmp,icmp_type=8,actions=output:4
priority=0,actions=drop`,
    packets: [
      ['p3', hex({ eth_src: MAC(3), eth_dst: MAC(4), eth_type: 0x86dd, ipv6_src: 0x20010db9n << 96n, ipv6_dst: 0x20010db8n << 96n, nw_proto: 17, tp_src: 5, tp_dst: 6 })],
      ['p3', hex({ eth_src: MAC(3), eth_dst: MAC(4), eth_type: 0x86dd, ipv6_src: 0x20010db9n << 96n, ipv6_dst: 0x20020000n << 96n, nw_proto: 17, tp_src: 5, tp_dst: 53 })],
      ['p4', hex({ eth_src: MAC(4), eth_dst: 0xffffffffffff, eth_type: 0x0806, nw_proto: 1, nw_src: IP('10.0.0.4'), nw_dst: IP('10.0.0.3') })],
      ['p4', hex({ eth_src: MAC(4), eth_dst: 0xffffffffffff, eth_type: 0x0806, nw_proto: 2, nw_src: IP('10.0.0.4'), nw_dst: IP('10.0.0.3') })],
      ['p2', hex({ eth_src: MAC(2), eth_dst: MAC(3), eth_type: 0x0800, nw_src: IP('10.0.0.2'), nw_dst: IP('10.0.0.3'), nw_proto: 1, tp_src: 8, tp_dst: 0 })],
      ['p2', hex({ eth_src: MAC(2), eth_dst: MAC(3), eth_type: 0x0800, nw_src: IP('10.0.0.2'), nw_dst: IP('10.0.0.3'), nw_proto: 1, tp_src: 0, tp_dst: 0 })],
    ],
  },
];

/** Masks a printed value with its printed mask, in the value's own notation. */
function maskValue(value: string, mask: string): [string, string] | null {
  if (/^\d+\.\d+\.\d+\.\d+$/.test(value)) {
    const v = value.split('.').map(Number);
    const m = mask.split('.').map(Number);
    return [v.map((x, i) => x & m[i]).join('.'), mask];
  }
  if (/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(value)) {
    const v = value.split(':').map((x) => Number.parseInt(x, 16));
    const m = mask.split(':').map((x) => Number.parseInt(x, 16));
    return [v.map((x, i) => (x & m[i]).toString(16).padStart(2, '0')).join(':'), mask];
  }
  if (/^(\d+|0x[0-9a-f]+)$/.test(value) && /^(\d+|0x[0-9a-f]+)$/.test(mask)) {
    const v = Number(value) & Number(mask);
    return [value.startsWith('0x') ? (v ? `0x${v.toString(16)}` : '0') : String(v), mask];
  }
  return [value, mask];
}

const ZERO_MASK = /^(0|0x0|0\.0\.0\.0|00:00:00:00:00:00|::)$/;

/**
 * A dump line with OVS's unmasked values masked, `used:` times blurred, and
 * (for `-m` lines, `reduce`) the ufid, the always-wildcarded metadata and
 * every wildcarded subfield dropped, so it reads as the short form.
 */
function normalize(line: string, reduce = false): string {
  const at = line.indexOf(', packets:');
  let key = line.slice(0, at);
  const rest = line.slice(at).replace(/used:\d+\.\d+s/, 'used:<t>');
  if (reduce) {
    key = key.replace(/^ufid:[0-9a-f-]{36} /, '').replace(/[a-z_]+\(0\/0\)/g, '');
  }
  key = key.replace(/([a-z_]+)=([^,()/]+)\/([^,()]+)/g, (all, name: string, value: string, mask: string) => {
    const r = maskValue(value, mask);
    if (!r) return all;
    const zero = ZERO_MASK.test(r[1]);
    if (zero && (reduce || ZERO_MASK.test(r[0]))) return '';
    return `${name}=${r[0]}/${r[1]}`;
  });
  // Tidy the commas of what was dropped, then drop attributes left empty (twice: encap nests).
  const tidy = (t: string) => t.replace(/,{2,}/g, ',').replace(/\(,/g, '(').replace(/,\)/g, ')').replace(/^,|,$/g, '');
  for (let i = 0; i < 2; i++) key = tidy(tidy(key).replace(/[a-z0-9_]+\(\)/g, ''));
  return `${key}${rest}`;
}

const lines = (text: string) => text.split('\n').filter(Boolean);

describe.skipIf(skipOvs)('dpif/dump-flows reads like a real ovs-vswitchd', () => {
  let ovs: RealOvs;
  let nvs: NvsRun;

  beforeAll(async () => {
    ovs = startOvs(['fail_mode=secure', ...ovsPorts(PORTS)]);
    nvs = new NvsRun();
    await nvs.startDb();
    await nvs.startSwitch();
    const add = await nvs.vsctl('add-br', 'br0', '--', 'set', 'bridge', 'br0', 'datapath_type=netdev', 'fail_mode=secure', ...ovsPorts(PORTS));
    expect(add.code, add.stderr).toBe(0);
  }, 60_000);
  afterAll(async () => {
    ovs?.stop();
    await nvs?.cleanup();
  });

  async function both(...args: string[]): Promise<[string, string]> {
    const ours = await nvs.appctl(...args);
    expect(ours.code, `nvs ${args.join(' ')}: ${ours.stderr}`).toBe(0);
    return [ovs.run('ovs-appctl', ['-t', ovs.ctl, ...args]), ours.stdout];
  }

  async function load(rules: string): Promise<void> {
    const file = join(nvs.rundir, 'rules.txt');
    writeFileSync(file, `${rules}\n`);
    ovs.run('ovs-ofctl', ['del-flows', ovs.mgmt]);
    ovs.run('ovs-ofctl', ['add-flows', ovs.mgmt, file]);
    for (const cmd of [['del-flows', 'br0'], ['add-flows', 'br0', file]]) {
      const r = await nvs.ofctl(...cmd);
      expect(r.code, r.stderr).toBe(0);
    }
    await both('fdb/flush', 'br0');
    await both('revalidator/purge');
    await both('revalidator/wait');
  }

  /** Port name → datapath number, from `dpif/show` (`    p1 1/3: (dummy)`). */
  const portNumbers = (show: string) => new Map([...show.matchAll(/^ {4}(\S+) \d+\/(\d+):/gm)].map((m) => [m[1], m[2]]));

  /** The numeric dump is the named dump with each port's datapath number. */
  function numericMatchesNames(numeric: string, named: string, show: string): void {
    const no = portNumbers(show);
    const renumber = (l: string) =>
      normalize(l)
        .replace(/in_port\(([^)]+)\)/, (_a, p: string) => `in_port(${no.get(p) ?? p})`)
        .replace(/actions:(.*)$/, (_a, acts: string) => `actions:${acts.split(',').map((a) => no.get(a) ?? a).join(',')}`);
    expect(lines(numeric).map((l) => normalize(l)).sort()).toEqual(lines(named).map(renumber).sort());
  }

  it.each(SCENARIOS.map((s) => [s.name, s] as const))('%s', async (_name, s) => {
    await load(s.rules);
    for (const [port, packet] of s.packets) {
      await both('netdev-dummy/receive', port, packet);
      await both('revalidator/wait');
    }
    const [theirs, ours] = await both('dpif/dump-flows', '--names', 'br0');
    expect(lines(ours).length, ours).toBeGreaterThan(0);
    expect({ scenario: s.name, flows: lines(ours).map((l) => normalize(l)).sort() }).toEqual({
      scenario: s.name,
      flows: lines(theirs).map((l) => normalize(l)).sort(),
    });

    const [theirsNumeric, oursNumeric] = await both('dpif/dump-flows', 'br0');
    const [theirsShow, oursShow] = await both('dpif/show');
    numericMatchesNames(theirsNumeric, theirs, theirsShow);
    numericMatchesNames(oursNumeric, ours, oursShow);

    const [theirsMore, oursMore] = await both('dpif/dump-flows', '-m', 'br0');
    const opening = /^ufid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12} skb_priority\(0\/0\),skb_mark\(0\/0\),ct_state\(0\/0\),ct_zone\(0\/0\),ct_mark\(0\/0\),ct_label\(0\/0\),recirc_id\(0\),dp_hash\(0\/0\),in_port\(p\d\),packet_type\(ns=0,id=0\),/;
    for (const [more, short] of [[theirsMore, theirs], [oursMore, ours]]) {
      for (const l of lines(more)) expect(l).toMatch(opening);
      expect(lines(more).map((l) => normalize(l, true)).sort()).toEqual(lines(short).map((l) => normalize(l, true)).sort());
    }
  });
});
