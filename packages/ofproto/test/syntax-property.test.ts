// Property tests of the rule-file syntax (fast-check):
// - for random rules (random match fields, masks, keywords and actions),
//   parse(printRule(rule)) equals the rule, and the canonical ovs-ofctl form
//   printed from either is the same;
// - the same random rules (a fixed sample) against the real ovs-ofctl: each is
//   accepted by both or rejected by both, and printed identically (needs
//   ovs-ofctl; fails without it unless NVS_SKIP_OVS=1);
// - the parser, fed random text or randomly damaged rules, only ever throws
//   RuleError (never a TypeError, RangeError, …).

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RuleError, RuleSyntaxError } from '../src/syntax/errors.ts';
import { type Dialect, parseFlow, parseFlows } from '../src/syntax/parser.ts';
import { printFlowMod, printRule } from '../src/syntax/printer.ts';
import { KvScanner, LineSource } from '../src/syntax/scanner.ts';
import { needsOvs } from '../../../test/ovs-tools.ts';

const skipOvs = needsOvs('ofproto random rules against ovs-ofctl', ['ovs-ofctl']);

const hex = (n: number | bigint): string => `0x${n.toString(16)}`;
const byte = fc.integer({ min: 0, max: 255 });
const mac = fc.tuple(byte, byte, byte, byte, byte, byte).map((b) => b.map((x) => x.toString(16).padStart(2, '0')).join(':'));
const ipv4 = fc.tuple(byte, byte, byte, byte).map((b) => b.join('.'));
const ipv6 = fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 }).map((g) => g.map((x) => x.toString(16)).join(':'));
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });

const masked = (v: fc.Arbitrary<string>, m: fc.Arbitrary<string>): fc.Arbitrary<string> =>
  fc.oneof(v, fc.tuple(v, m).map(([a, b]) => `${a}/${b}`));

/** One `field=value` item of a match. */
const matchItem: fc.Arbitrary<string> = fc.oneof(
  fc.oneof(u16.filter((p) => p < 0xff00).map(String), fc.constantFrom('LOCAL', 'CONTROLLER', 'NORMAL')).map((p) => `in_port=${p}`),
  masked(mac, mac).map((v) => `dl_src=${v}`),
  masked(mac, mac).map((v) => `dl_dst=${v}`),
  fc.oneof(fc.integer({ min: 0, max: 4095 }).map(String), fc.constant('0xffff')).map((v) => `dl_vlan=${v}`),
  fc.integer({ min: 0, max: 7 }).map((v) => `dl_vlan_pcp=${v}`),
  fc.tuple(u16, u16).map(([v, m]) => `vlan_tci=${hex(v)}/${hex(m)}`),
  masked(ipv4, fc.oneof(fc.integer({ min: 0, max: 32 }).map(String), ipv4)).map((v) => `nw_src=${v}`),
  masked(ipv4, fc.integer({ min: 0, max: 32 }).map(String)).map((v) => `nw_dst=${v}`),
  fc.integer({ min: 0, max: 63 }).map((v) => `nw_tos=${v * 4}`),
  fc.integer({ min: 0, max: 3 }).map((v) => `nw_ecn=${v}`),
  byte.map((v) => `nw_ttl=${v}`),
  fc.constantFrom('no', 'yes', 'first', 'later', 'not_later').map((v) => `nw_frag=${v}`),
  masked(u16.map(String), u16.map(hex)).map((v) => `tp_src=${v}`),
  masked(u16.map(String), u16.map(hex)).map((v) => `tp_dst=${v}`),
  fc.subarray(['fin', 'syn', 'rst', 'ack'], { minLength: 1 }).chain((fl) =>
    fc.array(fc.boolean(), { minLength: fl.length, maxLength: fl.length }).map((on) => `tcp_flags=${fl.map((f, i) => (on[i] ? '+' : '-') + f).join('')}`),
  ),
  byte.map((v) => `icmp_type=${v}`),
  byte.map((v) => `icmp_code=${v}`),
  fc.integer({ min: 1, max: 4 }).map((v) => `arp_op=${v}`),
  masked(ipv4, fc.integer({ min: 0, max: 32 }).map(String)).map((v) => `arp_spa=${v}`),
  mac.map((v) => `arp_sha=${v}`),
  mac.map((v) => `arp_tha=${v}`),
  masked(ipv6, fc.integer({ min: 0, max: 128 }).map(String)).map((v) => `ipv6_src=${v}`),
  masked(ipv6, ipv6).map((v) => `ipv6_dst=${v}`),
  fc.integer({ min: 0, max: 0xfffff }).map((v) => `ipv6_label=${hex(v)}`),
  ipv6.map((v) => `nd_target=${v}`),
  mac.map((v) => `nd_sll=${v}`),
  mac.map((v) => `nd_tll=${v}`),
  fc.tuple(u64, u64).map(([v, m]) => `metadata=${hex(v)}/${hex(m)}`),
  fc.tuple(fc.integer({ min: 0, max: 15 }), u32, u32).map(([r, v, m]) => `reg${r}=${hex(v)}/${hex(m)}`),
  u64.map((v) => `tun_id=${hex(v)}`),
  ipv4.map((v) => `tun_src=${v}`),
  u32.map((v) => `conj_id=${v}`),
);

const proto = fc.constantFrom('', 'ip', 'tcp', 'udp', 'sctp', 'icmp', 'ipv6', 'tcp6', 'udp6', 'sctp6', 'icmp6', 'arp', 'rarp');

/** Actions valid whatever the match (in both dialects). */
const anyAction: fc.Arbitrary<string> = fc.oneof(
  fc.integer({ min: 1, max: 65279 }).map((p) => `output:${p}`),
  fc.constantFrom('NORMAL', 'FLOOD', 'ALL', 'IN_PORT', 'LOCAL', 'CONTROLLER', 'dec_ttl', 'output:NXM_NX_REG0[0..15]'),
  u16.map((n) => `CONTROLLER:${n}`),
  u16.map((n) => `controller(reason=no_match,max_len=${n})`),
  fc.integer({ min: 0, max: 4095 }).map((v) => `mod_vlan_vid:${v}`),
  fc.integer({ min: 0, max: 7 }).map((v) => `mod_vlan_pcp:${v}`),
  mac.map((v) => `mod_dl_src:${v}`),
  mac.map((v) => `set_field:${v}->eth_dst`),
  fc.tuple(fc.integer({ min: 0, max: 15 }), u32).map(([r, v]) => `set_field:${hex(v)}->reg${r}`),
  fc.tuple(u64, u64).map(([v, m]) => `set_field:${hex(v & m)}/${hex(m)}->metadata`).filter((s) => !s.includes('/0x0->')),
  u64.map((v) => `set_field:${hex(v)}->tun_id`),
  fc
    .tuple(fc.integer({ min: 0, max: 15 }), fc.integer({ min: 0, max: 31 }), fc.integer({ min: 0, max: 31 }))
    .map(([r, a, b]) => [r, Math.min(a, b), Math.max(a, b)] as const)
    .chain(([r, lo, hi]) => fc.bigInt({ min: 0n, max: (1n << BigInt(hi - lo + 1)) - 1n }).map((v) => `load:${hex(v)}->NXM_NX_REG${r}[${lo}..${hi}]`)),
  fc.tuple(fc.integer({ min: 0, max: 15 }), fc.integer({ min: 0, max: 15 }), fc.integer({ min: 1, max: 16 })).map(([a, b, n]) => `move:NXM_NX_REG${a}[0..${n - 1}]->NXM_NX_REG${b}[16..${15 + n}]`),
  fc.integer({ min: 0, max: 254 }).map((t) => `resubmit(,${t})`),
  fc.integer({ min: 1, max: 100 }).map((p) => `resubmit:${p}`),
  fc.array(byte, { maxLength: 12 }).map((b) => `note:${b.map((x) => x.toString(16).padStart(2, '0')).join('.')}`),
  fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 1, maxLength: 3 }).map((ids) => `dec_ttl(${ids.join(',')})`),
  fc.constant('learn(table=1,hard_timeout=10,NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:NXM_OF_IN_PORT[])'),
  fc
    .record({
      table: fc.integer({ min: 0, max: 254 }),
      idle: fc.option(u16, { nil: undefined }),
      prio: fc.option(u16, { nil: undefined }),
      cookie: fc.option(u64, { nil: undefined }),
      reg: fc.integer({ min: 0, max: 15 }),
      imm: u32,
      flags: fc.subarray(['send_flow_rem', 'delete_learned']),
    })
    .map((l) => {
      const p = [`table=${l.table}`];
      if (l.idle !== undefined) p.push(`idle_timeout=${l.idle}`);
      if (l.prio !== undefined) p.push(`priority=${l.prio}`);
      if (l.cookie !== undefined) p.push(`cookie=${hex(l.cookie)}`);
      p.push(...l.flags, 'NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[]', `reg${l.reg}=${hex(l.imm)}`, `load:${hex(l.imm)}->NXM_NX_REG${l.reg}[]`, 'load:NXM_OF_IN_PORT[]->NXM_NX_REG1[0..15]');
      return `learn(${p.join(',')})`;
    }),
  fc.tuple(fc.option(fc.constantFrom('no_match', 'invalid_ttl', 'action'), { nil: undefined }), fc.option(u16, { nil: undefined }), fc.option(u16, { nil: undefined })).map(
    ([r, m, id]) => `controller(${[r && `reason=${r}`, m !== undefined && `max_len=${m}`, id !== undefined && `id=${id}`].filter(Boolean).join(',')})`,
  ),
  fc.tuple(fc.oneof(fc.integer({ min: 1, max: 65279 }).map(String), fc.constantFrom('LOCAL', 'IN_PORT', '')), fc.integer({ min: 0, max: 254 })).map(([p, t]) => `resubmit(${p},${t})`),
  fc.tuple(u64, u64).map(([v, m]) => `write_metadata:${hex(v)}/${hex(m)}`),
  fc.tuple(u32, fc.integer({ min: 2, max: 64 })).chain(([id, n]) => fc.integer({ min: 1, max: n }).map((k) => `conjunction(${id},${k}/${n})`)),
  fc.constantFrom('NXM_NX_TUN_ID[]', 'OXM_OF_METADATA[]', 'NXM_OF_ETH_SRC[]', 'NXM_OF_ETH_DST[0..31]', 'NXM_OF_IN_PORT[]', 'NXM_OF_VLAN_TCI[]').chain((src) => {
    const bits = src === 'NXM_OF_IN_PORT[]' || src === 'NXM_OF_VLAN_TCI[]' ? 16 : src === 'NXM_OF_ETH_DST[0..31]' ? 32 : src.startsWith('NXM_OF_ETH') ? 48 : 64;
    const dst = bits === 64 ? 'NXM_NX_TUN_ID[]' : bits === 48 ? 'NXM_OF_ETH_DST[]' : bits === 32 ? 'NXM_NX_REG5[]' : 'NXM_NX_REG6[8..23]';
    return fc.constant(`move:${src}->${dst}`);
  }),
  fc.tuple(fc.constantFrom('NXM_OF_ETH_SRC', 'NXM_OF_ETH_DST', 'NXM_NX_TUN_ID', 'OXM_OF_METADATA', 'NXM_OF_VLAN_TCI', 'NXM_OF_IN_PORT'), fc.nat({ max: 15 })).map(([f, bit]) => `load:0x1->${f}[${bit}]`),
  u16.filter((p) => p < 0xff00).map((p) => `set_field:${p}->in_port`),
  ipv4.map((v) => `set_field:${v}->tun_dst`),
);

/** Actions that need an IPv4 match. */
const ipAction: fc.Arbitrary<string> = fc.oneof(
  ipv4.map((v) => `mod_nw_src:${v}`),
  ipv4.map((v) => `set_field:${v}->ip_dst`),
  fc.integer({ min: 0, max: 63 }).map((v) => `mod_nw_tos:${v * 4}`),
  byte.map((v) => `mod_nw_ttl:${v}`),
);

const rule = (dialect: Dialect): fc.Arbitrary<string> =>
  fc
    .record({
      table: fc.option(fc.integer({ min: 0, max: 253 }), { nil: undefined }),
      priority: fc.option(u16, { nil: undefined }),
      cookie: fc.option(u64.filter((c) => c !== (1n << 64n) - 1n), { nil: undefined }),
      idle: fc.option(u16, { nil: undefined }),
      flags: fc.subarray(dialect === 'of13' ? ['send_flow_rem', 'check_overlap', 'reset_counts'] : ['send_flow_rem', 'check_overlap']),
      proto,
      fields: fc.array(matchItem, { maxLength: 6 }),
      actions: fc.array(anyAction, { maxLength: 6 }),
      ipActions: fc.array(ipAction, { maxLength: 2 }),
      gotoTable: fc.boolean(),
    })
    .map((r) => {
      const head: string[] = [];
      if (r.table !== undefined) head.push(`table=${r.table}`);
      if (r.priority !== undefined) head.push(`priority=${r.priority}`);
      if (r.cookie !== undefined) head.push(`cookie=${hex(r.cookie)}`);
      if (r.idle !== undefined) head.push(`idle_timeout=${r.idle}`);
      head.push(...r.flags);
      if (r.proto) head.push(r.proto);
      head.push(...r.fields);
      // conjunction may only be combined with note.
      const conj = r.actions.filter((x) => x.startsWith('conjunction('));
      const acts = conj.length ? conj : [...r.actions];
      if (['ip', 'tcp', 'udp', 'sctp', 'icmp'].includes(r.proto)) acts.push(...r.ipActions);
      if (r.gotoTable && r.table !== undefined) acts.push(`goto_table:${r.table + 1}`);
      return `${head.join(',')}${head.length ? ',' : ''}actions=${acts.join(',') || 'drop'}`;
    });

describe.each(['of10', 'of13'] as const)('random rules (%s)', (dialect) => {
  it('parse(printRule(rule)) equals the rule, and both print the same canonical text', () => {
    fc.assert(
      fc.property(rule(dialect), (text) => {
        let fm: ReturnType<typeof parseFlow>;
        try {
          fm = parseFlow(text, { dialect });
        } catch (e) {
          // Some random combinations are invalid (checked against ovs-ofctl below); skip those.
          fc.pre(!(e instanceof RuleError));
          throw e;
        }
        // The Match invariant: no value bit outside the mask.
        expect(fm.match.value.every((w, i) => (w & ~fm.match.mask[i]) === 0)).toBe(true);
        const again = parseFlow(printRule(fm), { dialect });
        expect(again).toEqual(fm);
        expect(printFlowMod(again, { dialect })).toBe(printFlowMod(fm, { dialect }));
      }),
      { numRuns: 400 },
    );
  });
});

const run = promisify(execFile);

describe.skipIf(skipOvs).each(['of10', 'of13'] as const)('random rules against ovs-ofctl (%s)', (dialect) => {
  it('both accept or both reject each rule, and print accepted ones identically', async () => {
    const lines = fc.sample(rule(dialect), { numRuns: 300, seed: dialect === 'of10' ? 4242 : 1313 });
    const dir = mkdtempSync(join(tmpdir(), 'nvs-syntax-'));
    const args = (file: string): string[] =>
      dialect === 'of10' ? ['-F', 'nxm+table_id', 'parse-flows', file] : ['-O', 'OpenFlow13', 'parse-flows', file];
    const ovs = async (batch: string[]): Promise<string[] | null> => {
      const file = join(dir, `${Math.random().toString(36).slice(2)}.txt`);
      writeFileSync(file, batch.join('\n') + '\n');
      try {
        const { stdout } = await run('ovs-ofctl', args(file), { maxBuffer: 64 << 20 });
        if (stdout.includes('decode error')) return null;
        return stdout.split('\n').flatMap((l) => /^(?:OFPT|NXT)_FLOW_MOD .*?: ADD (.*)$/.exec(l)?.slice(1) ?? []);
      } catch {
        return null;
      }
    };
    try {
      const ours = lines.map((l) => {
        try {
          return printFlowMod(parseFlow(l, { dialect }), { dialect });
        } catch (e) {
          if (e instanceof RuleError) return null;
          throw e;
        }
      });
      const accepted = lines.filter((_, i) => ours[i] !== null);
      const rejected = lines.filter((_, i) => ours[i] === null);
      // Most random rules are valid; the sample must exercise both outcomes.
      expect(accepted.length).toBeGreaterThan(150);
      const printed = await ovs(accepted);
      if (printed === null) {
        const bad = await Promise.all(accepted.map(async (l) => ((await ovs([l])) === null ? l : null)));
        throw new Error(`ovs-ofctl rejects rules nvs accepts:\n${bad.filter((l) => l !== null).join('\n')}`);
      }
      const mine = ours.filter((o): o is string => o !== null);
      const diffs = accepted.flatMap((l, i) => (printed[i] === mine[i] ? [] : [`${l}\n  ovs-ofctl: ${printed[i]}\n  nvs:       ${mine[i]}`]));
      expect(diffs, diffs.join('\n')).toEqual([]);
      const alsoAccepted = (await Promise.all(rejected.map(async (l) => ((await ovs([l])) === null ? null : l)))).filter((l) => l !== null);
      expect(alsoAccepted, `ovs-ofctl accepts rules nvs rejects:\n${alsoAccepted.join('\n')}`).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** Text built from the syntax's own characters, so the parser gets deep before failing. */
const syntaxy = fc
  .array(
    fc.oneof(
      fc.constantFrom(',', '=', ':', '(', ')', '[', ']', '->', '/', '.', '..', ' ', '\t', '#', '\n', '0x', '+', '-', '|'),
      fc.constantFrom('ip', 'tcp', 'actions', 'output', 'learn', 'resubmit', 'load', 'move', 'set_field', 'nw_src', 'dl_vlan', 'reg0', 'NXM_NX_REG0', 'in_port', 'table', 'priority', 'cookie', 'note', 'conjunction', 'controller', 'tcp_flags', 'ipv6_src', 'dl_src', 'dec_ttl'),
      fc.integer({ min: 0, max: 70000 }).map(String),
      fc.string({ maxLength: 3 }),
    ),
    { maxLength: 30 },
  )
  .map((parts) => parts.join(''));

const onlyRuleErrors = (text: string): void => {
  try {
    parseFlows(text, { file: 'fuzz' });
  } catch (e) {
    if (!(e instanceof RuleError)) throw e;
    expect(e.message.startsWith('fuzz:')).toBe(true);
  }
};

describe('the tokenizer and parser never throw anything but RuleError', () => {
  it('the tokenizer alone: items tile the input, errors are RuleSyntaxError', () => {
    fc.assert(
      fc.property(fc.oneof(syntaxy, fc.string({ maxLength: 80 })), (text) => {
        const sc = new KvScanner(new LineSource(text, 'fuzz', 1), 0, text.length);
        try {
          let last = -1;
          while (sc.next()) {
            // Every item starts after the previous one and its value lies inside the text.
            expect(sc.keyAt).toBeGreaterThan(last);
            expect(sc.valueAt + sc.value.length).toBeLessThanOrEqual(text.length);
            expect(text.startsWith(sc.key, sc.keyAt)).toBe(true);
            last = sc.keyAt;
          }
        } catch (e) {
          if (!(e instanceof RuleSyntaxError)) throw e;
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('on text made of syntax pieces', () => {
    fc.assert(fc.property(syntaxy, onlyRuleErrors), { numRuns: 3000 });
  });

  it('on arbitrary strings', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 200 }), onlyRuleErrors), { numRuns: 500 });
  });

  it('on valid rules with random damage (characters deleted, inserted or replaced)', () => {
    const damaged = fc
      .tuple(rule('of10'), fc.array(fc.tuple(fc.nat(), fc.nat({ max: 2 }), fc.constantFrom(',', '=', '(', ')', '[', ']', '/', ':', '-', '>', 'x', '9', ' ')), { minLength: 1, maxLength: 4 }))
      .map(([text, edits]) => {
        let s = text;
        for (const [pos, kind, ch] of edits) {
          const i = pos % (s.length + 1);
          s = kind === 0 ? s.slice(0, i) + s.slice(i + 1) : kind === 1 ? s.slice(0, i) + ch + s.slice(i) : s.slice(0, i) + ch + s.slice(i + 1);
        }
        return s;
      });
    fc.assert(fc.property(damaged, onlyRuleErrors), { numRuns: 2000 });
  });
});
