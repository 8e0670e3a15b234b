// Unit tests of the rule-file syntax: error positions and codes, whole-file
// all-or-nothing parsing, what each notation means in the model (values,
// masks, action fields), port names, commands, and the lossless printRule.
// What ovs-ofctl prints is checked separately by oracle.test.ts.

import { describe, expect, it } from 'vitest';
import type { Action, LearnAction, SetFieldAction } from '../src/actions.ts';
import { mustField, OFPP, Slot } from '../src/fields.ts';
import { getMatchField, matchesFlow } from '../src/match.ts';
import { RuleError, RuleSyntaxError, RuleUnsupportedError } from '../src/syntax/errors.ts';
import { parseFlow, parseFlows } from '../src/syntax/parser.ts';
import { printFlowMod, printMatch, printRule } from '../src/syntax/printer.ts';
import { formatIpv6, parseIpv6 } from '../src/syntax/values.ts';

function errorOf(f: () => unknown): RuleError {
  try {
    f();
  } catch (e) {
    if (e instanceof RuleError) return e;
    throw e;
  }
  throw new Error('expected a RuleError');
}

describe('errors name file:line:column and what was expected', () => {
  it('an unclosed resubmit( at the end of line 12', () => {
    const lines = Array.from({ length: 11 }, (_, i) => (i % 3 === 0 ? `# comment ${i}` : `priority=${i},actions=drop`));
    lines.push('table=0,ip,actions=output:1,resubmit(,3');
    const e = errorOf(() => parseFlows(lines.join('\n'), { file: 'rules.txt' }));
    expect(e).toBeInstanceOf(RuleSyntaxError);
    expect(e.code).toBe('RULE_SYNTAX');
    expect(e.message).toBe("rules.txt:12:40: expected ',' or ')' after 'resubmit(,3'");
    expect([e.file, e.line, e.column]).toEqual(['rules.txt', 12, 40]);
  });

  it('points at the bad value, not the line start', () => {
    const e = errorOf(() => parseFlow('ip,nw_dst=10.0.0.300,actions=drop', { file: 'x' }));
    expect(e.message).toMatch(/^x:1:11: '10\.0\.0\.300' is not an IPv4 address/);
  });

  it('points at an unknown field and says what would be valid', () => {
    const e = errorOf(() => parseFlow('ip,nw_dts=1.2.3.4,actions=drop', { file: 'x' }));
    expect(e.column).toBe(4);
    expect(e.reason).toMatch(/unknown field or keyword 'nw_dts'/);
  });

  it('points at an unknown action', () => {
    const e = errorOf(() => parseFlow('actions=output:1,frobnicate', { file: 'x' }));
    expect(e.column).toBe(18);
    expect(e.reason).toMatch(/unknown action 'frobnicate'/);
  });

  it('says a rule without actions needs actions=', () => {
    const e = errorOf(() => parseFlow('ip,nw_dst=1.2.3.4'));
    expect(e.reason).toMatch(/expected 'actions='/);
  });

  it('bad field ranges name the range', () => {
    expect(errorOf(() => parseFlow('actions=load:1->NXM_NX_REG0[0..32]')).reason).toMatch(/bit 32 is beyond the 32-bit field/);
    expect(errorOf(() => parseFlow('actions=load:16->NXM_NX_REG0[0..3]')).reason).toMatch(/does not fit into 4 bits/);
    expect(errorOf(() => parseFlow('actions=move:reg0[0..3]->reg1[0..4]')).reason).toMatch(/4 bits wide but the destination is 5/);
  });

  it('a transport field of later fragments is refused; mod_tp_* only in OpenFlow 1.3 (ovs-ofctl -O OpenFlow13 add-flows refuses it too)', () => {
    expect(errorOf(() => parseFlow('tcp,nw_frag=later,actions=load:80->NXM_OF_TCP_DST[]')).reason).toBe(
      "set_field/load of 'tcp_dst' needs a match on dl_type=0x0800|dl_type=0x86dd,nw_proto=6 (not nw_frag=later)",
    );
    expect(parseFlow('tcp,nw_frag=later,actions=mod_tp_dst:80').actions).toHaveLength(1);
    expect(errorOf(() => parseFlow('tcp,nw_frag=later,actions=mod_tp_dst:80', { dialect: 'of13' })).reason).toMatch(
      /^mod_tp_dst needs a match on .*\(not nw_frag=later\) in OpenFlow 1\.3$/,
    );
    expect(parseFlow('tcp,nw_frag=first,actions=mod_tp_dst:80', { dialect: 'of13' }).actions).toHaveLength(1);
  });

  it('recognised but unbuilt actions and fields are RULE_UNSUPPORTED, unknown ones RULE_SYNTAX', () => {
    for (const line of ['ip,actions=ct(commit)', 'actions=group:1', 'actions=meter:1', 'ct_state=+trk,actions=drop']) {
      const e = errorOf(() => parseFlow(line));
      expect(e, line).toBeInstanceOf(RuleUnsupportedError);
      expect(e.code).toBe('RULE_UNSUPPORTED');
      expect(e.reason).toMatch(/not supported yet/);
    }
    expect(errorOf(() => parseFlow('actions=ctt(commit)')).code).toBe('RULE_SYNTAX');
  });
});

describe('files', () => {
  it('skips comments and blank lines and returns every rule', () => {
    const rules = parseFlows('# header\n\npriority=1,actions=drop  # why\n\t\ntcp,actions=NORMAL\n# end', { file: 'f' });
    expect(rules.map((r) => printFlowMod(r))).toEqual(['table:255 priority=1 actions=drop', 'table:255 tcp actions=NORMAL']);
  });

  it('is all or nothing: one bad line anywhere means no rules and an error naming it', () => {
    const good = Array.from({ length: 50 }, (_, i) => `priority=${i},ip,actions=output:${i + 1}`);
    good.splice(37, 0, 'priority=1,ip,actions=output:bogus_port');
    const e = errorOf(() => parseFlows(good.join('\n'), { file: 'big.txt' }));
    expect(e.line).toBe(38);
    expect(e.message.startsWith('big.txt:38:')).toBe(true);
  });

  it('accepts CRLF line ends and an empty file', () => {
    expect(parseFlows('ip,actions=drop\r\narp,actions=NORMAL\r\n')).toHaveLength(2);
    expect(parseFlows('')).toEqual([]);
  });
});

describe('what the notations mean', () => {
  it('IPv4 prefixes and masks become value/mask words', () => {
    const m = parseFlow('ip,nw_dst=10.1.2.3/8,nw_src=1.2.3.4/255.0.255.0,actions=drop').match;
    expect([m.value[Slot.NW_DST], m.mask[Slot.NW_DST]]).toEqual([0x0a000000, 0xff000000]);
    expect([m.value[Slot.NW_SRC], m.mask[Slot.NW_SRC]]).toEqual([0x01000300, 0xff00ff00]);
    expect([m.value[Slot.DL_TYPE], m.mask[Slot.DL_TYPE]]).toEqual([0x0800, 0xffff]);
  });

  it('MACs and IPv6 addresses span words, most significant first', () => {
    const m = parseFlow('ipv6,dl_src=00:11:22:33:44:55/ff:ff:ff:00:00:00,ipv6_dst=2001:db8::1/32,actions=drop').match;
    expect(Array.from(m.value.subarray(Slot.DL_SRC, Slot.DL_SRC + 2))).toEqual([0x0011, 0x22000000]);
    expect(Array.from(m.mask.subarray(Slot.DL_SRC, Slot.DL_SRC + 2))).toEqual([0xffff, 0xff000000]);
    expect(Array.from(m.value.subarray(Slot.IPV6_DST, Slot.IPV6_DST + 4))).toEqual([0x20010db8, 0, 0, 0]);
    expect(Array.from(m.mask.subarray(Slot.IPV6_DST, Slot.IPV6_DST + 4))).toEqual([0xffffffff, 0, 0, 0]);
  });

  it('dl_vlan implies a tag (CFI bit); dl_vlan=0xffff means no tag', () => {
    const tagged = parseFlow('dl_vlan=10,actions=drop').match;
    expect([tagged.value[Slot.VLAN_TCI], tagged.mask[Slot.VLAN_TCI]]).toEqual([0x100a, 0x1fff]);
    const untagged = parseFlow('dl_vlan=0xffff,actions=drop').match;
    expect([untagged.value[Slot.VLAN_TCI], untagged.mask[Slot.VLAN_TCI]]).toEqual([0, 0xffff]);
  });

  it('a match matches the flows it should', () => {
    const m = parseFlow('tcp,nw_dst=10.0.0.0/8,tp_dst=0x0050/0xfff0,actions=drop').match;
    const flow = new Uint32Array(m.value.length);
    flow[Slot.DL_TYPE] = 0x0800;
    flow[Slot.NW_PROTO] = 6;
    flow[Slot.NW_DST] = 0x0a010203;
    flow[Slot.TP_DST] = 0x0055;
    expect(matchesFlow(m, flow)).toBe(true);
    flow[Slot.TP_DST] = 0x0065;
    expect(matchesFlow(m, flow)).toBe(false);
  });

  it('fields without their prerequisites are dropped, as ovs-ofctl does', () => {
    const m = parseFlow('tp_dst=80,nw_src=1.2.3.4,actions=drop').match;
    expect(m.mask.every((w) => w === 0)).toBe(true);
  });

  it('later fields override earlier ones', () => {
    const m = parseFlow('ip,nw_src=1.1.1.1,nw_src=2.2.2.2,actions=drop').match;
    expect(getMatchField(m, mustField('nw_src')).value).toBe(0x02020202n);
  });

  it('tcp_flags in both notations', () => {
    const a = parseFlow('tcp,tcp_flags=+syn-ack,actions=drop').match;
    expect([a.value[Slot.TCP_FLAGS], a.mask[Slot.TCP_FLAGS]]).toEqual([0x002, 0x012]);
    const b = parseFlow('tcp,tcp_flags=syn|ack,actions=drop').match;
    expect([b.value[Slot.TCP_FLAGS], b.mask[Slot.TCP_FLAGS]]).toEqual([0x012, 0xfff]);
  });

  it('IPv6 text both ways', () => {
    for (const [text, canon] of [
      ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
      ['::', '::'],
      ['::1', '::1'],
      ['1:0:0:4:0:0:0:8', '1:0:0:4::8'],
      ['::ffff:10.0.0.1', '::ffff:10.0.0.1'],
      ['fe80::1:2', 'fe80::1:2'],
      ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
    ]) {
      expect(formatIpv6(parseIpv6(text)), text).toBe(canon);
    }
  });
});

describe('actions in the model', () => {
  const acts = (line: string, dialect: 'of10' | 'of13' = 'of10'): readonly Action[] => parseFlow(line, { dialect }).actions;

  it('reserved ports and CONTROLLER', () => {
    expect(acts('actions=NORMAL,output:LOCAL,in_port,3')).toEqual([
      { type: 'output', port: OFPP.NORMAL },
      { type: 'output', port: OFPP.LOCAL },
      { type: 'output', port: OFPP.IN_PORT },
      { type: 'output', port: 3 },
    ]);
    expect(acts('actions=CONTROLLER:128')).toEqual([{ type: 'controller', maxLen: 128, reason: 'action', controllerId: 0 }]);
    expect(acts('actions=drop')).toEqual([]);
  });

  it('load and set_field are masked writes of a field', () => {
    const [a] = acts('actions=load:0x5->NXM_NX_REG1[4..7]') as SetFieldAction[];
    expect([a.field.name, a.value, a.mask, a.form]).toEqual(['reg1', 0x50n, 0xf0n, 'load']);
    const [b] = acts('ip,actions=set_field:10.0.0.1->ip_dst') as SetFieldAction[];
    expect([b.field.name, b.value, b.mask, b.form]).toEqual(['nw_dst', 0x0a000001n, 0xffffffffn, 'set_field']);
    const [c] = acts('ip,actions=mod_nw_tos:16') as SetFieldAction[];
    expect([c.field.name, c.value, c.form]).toEqual(['ip_dscp', 4n, 'mod']);
  });

  it('move, output:reg, resubmit and goto_table', () => {
    expect(acts('actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[]')).toMatchObject([
      { type: 'move', src: { field: { name: 'dl_src' }, ofs: 0, nBits: 48 }, dst: { field: { name: 'dl_dst' }, ofs: 0, nBits: 48 } },
    ]);
    expect(acts('actions=output:NXM_NX_REG0[0..15]')).toMatchObject([{ type: 'output_reg', src: { field: { name: 'reg0' }, ofs: 0, nBits: 16 } }]);
    expect(acts('actions=resubmit(,3),resubmit:2,resubmit(LOCAL,4)')).toEqual([
      { type: 'resubmit', port: null, table: 3 },
      { type: 'resubmit', port: 2, table: null },
      { type: 'resubmit', port: OFPP.LOCAL, table: 4 },
    ]);
    expect(acts('table=1,actions=write_metadata:0x1/0x1,goto_table:2', 'of13')).toEqual([
      { type: 'write_metadata', value: 1n, mask: 1n },
      { type: 'goto_table', table: 2 },
    ]);
  });

  it('learn for MAC learning over tunnels', () => {
    const [l] = acts(
      'actions=learn(table=99,priority=1,hard_timeout=60,NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:NXM_OF_IN_PORT[])',
    ) as LearnAction[];
    expect([l.table, l.priority, l.hardTimeout]).toEqual([99, 1, 60]);
    expect(l.specs.map((s) => s.kind)).toEqual(['match', 'match', 'load', 'output']);
    expect(l.specs[0]).toMatchObject({ dst: { field: { name: 'vlan_tci' }, ofs: 0, nBits: 12 }, src: { field: { name: 'vlan_tci' } } });
    expect(l.specs[1]).toMatchObject({ dst: { field: { name: 'dl_dst' } }, src: { field: { name: 'dl_src' } } });
  });

  it('conjunction stands alone (notes aside)', () => {
    expect(acts('actions=conjunction(7,2/3)')).toEqual([{ type: 'conjunction', id: 7, clause: 2, nClauses: 3 }]);
    expect(errorOf(() => parseFlow('actions=conjunction(7,2/3),output:1')).reason).toMatch(/only with note/);
  });
});

describe('options and commands', () => {
  it('resolves port names through the resolver', () => {
    const ports = new Map([['eth0', 1], ['vm-7', 7]]);
    const fm = parseFlow('in_port=eth0,actions=output:vm-7,vm-7', { portByName: (n) => ports.get(n) });
    expect(fm.match.value[Slot.IN_PORT]).toBe(1);
    expect(fm.actions).toEqual([{ type: 'output', port: 7 }, { type: 'output', port: 7 }]);
    expect(errorOf(() => parseFlow('in_port=eth9,actions=drop', { portByName: (n) => ports.get(n) })).reason).toMatch(/unknown port 'eth9'/);
  });

  it('cookie masks and out_port are for modify/delete only', () => {
    expect(errorOf(() => parseFlow('cookie=0x1/0xff,actions=drop')).reason).toMatch(/only selects rules/);
    const del = parseFlow('cookie=0x1/0xff,out_port=3,ip', { command: 'delete' });
    expect([del.cookie, del.cookieMask, del.outPort, del.actions]).toEqual([1n, 0xffn, 3, []]);
    expect(parseFlow('cookie=0x1/0xff,ip,actions=NORMAL', { command: 'modify' }).cookieMask).toBe(0xffn);
    expect(errorOf(() => parseFlow('ip,actions=drop', { command: 'delete' })).reason).toMatch(/not allowed when deleting/);
  });

  it('table=255 means "not given"', () => {
    expect(parseFlow('table=255,actions=drop').table).toBeNull();
    expect(parseFlow('actions=drop').table).toBeNull();
    expect(parseFlow('table=0,actions=drop').table).toBe(0);
  });
});

describe('printRule is lossless', () => {
  it.each([
    'table=3, cookie=0x5, idle_timeout=5, hard_timeout=6, importance=2, send_flow_rem, check_overlap, priority=7,ip actions=output:1',
    'priority=100,ip,nw_dst=10.0.0.0/8 actions=goto_table:2',
    'dl_vlan=5 actions=set_field:4102->vlan_vid,mod_vlan_pcp:3,strip_vlan',
    'ipv6 actions=note:01.02.03,load:0x1->NXM_NX_IPV6_SRC[],output:NXM_NX_REG0[0..15]',
    'ip actions=set_field:10.0.0.0/255.0.0.0->ip_dst,mod_nw_tos:16,mod_nw_ttl:3,dec_ttl(0),dec_ttl',
    'actions=learn(table=1,hard_timeout=10,NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],output:NXM_OF_IN_PORT[])',
  ])('%s', (line) => {
    const fm = parseFlow(line);
    expect(printRule(fm)).toBe(line);
    expect(printRule(parseFlow(printRule(fm)))).toBe(line);
  });

  it('printMatch is empty for a catch-all', () => {
    expect(printMatch(parseFlow('actions=drop').match)).toBe('');
  });
});

describe('field access helpers', () => {
  it('readField and writeField handle the top bit, multi-word fields and sub-word views', async () => {
    const { newFlow, readField, writeField } = await import('../src/fields.ts');
    const f = newFlow();
    writeField(f, mustField('reg3'), 0xffffffffn, 0xffffffffn);
    expect(readField(f, mustField('reg3'))).toBe(0xffffffffn);
    writeField(f, mustField('dl_dst'), 0x0011_2233_4455n, 0xffff_ffff_ffffn);
    expect(Array.from(f.subarray(Slot.DL_DST, Slot.DL_DST + 2))).toEqual([0x0011, 0x22334455]);
    expect(readField(f, mustField('dl_dst'))).toBe(0x0011_2233_4455n);
    writeField(f, mustField('ip_dscp'), 0x3fn, 0x3fn);
    expect(f[Slot.NW_TOS]).toBe(0xfc);
    writeField(f, mustField('nw_ecn'), 1n, 3n);
    expect([f[Slot.NW_TOS], readField(f, mustField('ip_dscp')), readField(f, mustField('nw_ecn'))]).toEqual([0xfd, 0x3fn, 1n]);
    writeField(f, mustField('ipv6_src'), 1n << 127n, (1n << 128n) - 1n);
    expect(f[Slot.IPV6_SRC]).toBe(0x80000000);
    expect(readField(f, mustField('ipv6_src'))).toBe(1n << 127n);
  });
});
