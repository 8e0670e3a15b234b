// OpenFlow table semantics: priorities and overlaps, add/modify/delete in
// strict and loose forms with cookie and out_port filters, counters,
// atomic batches, timeouts on a fake clock, replace-flows and diff-flows
// (the latter checked against the real `ovs-ofctl diff-flows`).

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { addFlows, bridge, flowOf, ovsPorts, type RealOvs, startOvs } from './helpers.ts';
import type { FlowModCommand } from '../src/flow-mod.ts';
import { parseFlow, parseFlows } from '../src/syntax/parser.ts';
import { formatDiffFlows, formatDumpFlows } from '../src/format.ts';
import { FlowModBatchError } from '../src/errors.ts';
import { formatDpActions } from '../src/dpif.ts';
import { type Ofproto, ruleToFlowMod } from '../src/ofproto.ts';
import { needsOvs } from '../../../test/ovs-tools.ts';

const skipOvs = needsOvs('ofproto tables against ovs-ofctl and ovs-vswitchd', ['ovsdb-tool', 'ovsdb-server', 'ovs-vsctl', 'ovs-vswitchd', 'ovs-appctl', 'ovs-ofctl']);

function actionsFor(of: Ofproto, flow: string): string {
  return formatDpActions(of.xlate(flowOf(flow)).actions);
}

function dump(of: Ofproto): string[] {
  // Drop the time-dependent columns; keep table, counters, match and actions.
  return formatDumpFlows(of).map((l) => l.replace(/ duration=[^,]*,/, '').replace(/ idle_age=\d+,/, ''));
}

describe('lookup', () => {
  test('the highest priority matching rule wins, across overlapping rules', () => {
    const { of } = bridge();
    addFlows(of, `priority=10,ip,actions=output:1
priority=20,ip,nw_dst=10.0.0.0/8,actions=output:2
priority=30,tcp,nw_dst=10.1.0.0/16,tp_dst=80,actions=output:3
priority=5,actions=output:4`);
    expect(actionsFor(of, 'in_port=1,tcp,nw_dst=10.1.2.3,tp_dst=80')).toBe('3');
    expect(actionsFor(of, 'in_port=1,tcp,nw_dst=10.1.2.3,tp_dst=81')).toBe('2');
    expect(actionsFor(of, 'in_port=2,udp,nw_dst=11.1.2.3')).toBe('1');
    // Output to the input port is skipped, as OpenFlow says (IN_PORT must be named).
    expect(actionsFor(of, 'in_port=1,udp,nw_dst=11.1.2.3')).toBe('drop');
    expect(actionsFor(of, 'in_port=1,arp')).toBe('4');
  });

  test('a table miss drops', () => {
    const { of } = bridge();
    addFlows(of, 'priority=10,in_port=2,actions=output:1');
    expect(actionsFor(of, 'in_port=1')).toBe('drop');
  });
});

describe('add, modify, delete', () => {
  test('adding an identical match and priority replaces the rule and resets its counters', () => {
    const { of, clock } = bridge();
    addFlows(of, 'priority=10,in_port=1,actions=output:2');
    const r = of.xlate(flowOf('in_port=1'));
    of.credit(r, 3, 300, clock.now());
    expect(of.dumpFlows()[0].packets).toBe(3);
    addFlows(of, 'priority=10,in_port=1,actions=output:3');
    expect(of.dumpFlows()).toHaveLength(1);
    expect(of.dumpFlows()[0].packets).toBe(0);
    expect(actionsFor(of, 'in_port=1')).toBe('3');
    // Same match, other priority: a second rule.
    addFlows(of, 'priority=11,in_port=1,actions=output:4');
    expect(of.dumpFlows()).toHaveLength(2);
  });

  test('modify replaces actions of every rule at least as specific and keeps counters unless reset_counts', () => {
    const { of, clock } = bridge();
    addFlows(of, `priority=10,ip,nw_dst=10.0.0.1,actions=output:1
priority=20,ip,nw_dst=10.0.0.2,actions=output:1
priority=30,in_port=1,actions=output:1`);
    for (const f of ['in_port=2,ip,nw_dst=10.0.0.1', 'in_port=2,ip,nw_dst=10.0.0.2']) of.credit(of.xlate(flowOf(f)), 1, 60, clock.now());
    clock.advance(1);
    of.applyFlowMods([parseFlow('ip,actions=output:2', { command: 'modify' })]);
    expect(dump(of)).toEqual([
      ' cookie=0x0, table=0, n_packets=0, n_bytes=0, priority=30,in_port=1 actions=output:1',
      ' cookie=0x0, table=0, n_packets=1, n_bytes=60, hard_age=0, priority=20,ip,nw_dst=10.0.0.2 actions=output:2',
      ' cookie=0x0, table=0, n_packets=1, n_bytes=60, hard_age=0, priority=10,ip,nw_dst=10.0.0.1 actions=output:2',
    ]);
    of.applyFlowMods([parseFlow('reset_counts,priority=20,ip,nw_dst=10.0.0.2,actions=output:3', { command: 'modify_strict', dialect: 'of13' })]);
    const rules = of.dumpFlows();
    expect(rules.map((r) => [r.match.priority, r.packets])).toEqual([[30, 0], [20, 0], [10, 1]]);
    // modify-strict needs the exact match and priority: this one selects nothing, and with a
    // cookie mask it changes nothing; without one it adds the rule (OpenFlow 1.0, as OVS).
    of.applyFlowMods([parseFlow('cookie=0x1/0x1,priority=21,ip,nw_dst=10.0.0.2,actions=output:4', { command: 'modify_strict' })]);
    expect(of.dumpFlows()).toHaveLength(3);
    expect(actionsFor(of, 'in_port=2,ip,nw_dst=10.0.0.2')).toBe('3');
    of.applyFlowMods([parseFlow('priority=21,ip,nw_dst=10.0.0.2,actions=output:4', { command: 'modify_strict' })]);
    expect(of.dumpFlows()).toHaveLength(4);
    expect(actionsFor(of, 'in_port=2,ip,nw_dst=10.0.0.2')).toBe('4');
  });

  test('delete selects loosely, delete-strict exactly, with cookie masks and out_port', () => {
    const { of } = bridge();
    const base = `table=0,cookie=0x11,priority=10,ip,nw_dst=10.0.0.1,actions=output:1
table=0,cookie=0x12,priority=20,ip,nw_dst=10.0.0.2,actions=output:2
table=1,cookie=0x21,priority=10,ip,actions=output:1
table=1,cookie=0x22,priority=10,arp,actions=output:2`;
    addFlows(of, base);
    of.applyFlowMods([parseFlow('cookie=0x10/0xf0', { command: 'delete' })]);
    expect(of.dumpFlows().map((r) => r.cookie)).toEqual([0x21n, 0x22n]);
    addFlows(of, base);
    of.applyFlowMods([parseFlow('out_port=2', { command: 'delete' })]);
    expect(of.dumpFlows().map((r) => r.cookie)).toEqual([0x11n, 0x21n]);
    addFlows(of, base);
    of.applyFlowMods([parseFlow('table=1,priority=10,ip', { command: 'delete_strict' })]);
    expect(of.dumpFlows().map((r) => r.cookie)).toEqual([0x12n, 0x11n, 0x22n]);
    // Loose delete of `ip` takes every IP rule in every table, not ARP.
    of.applyFlowMods([parseFlow('ip', { command: 'delete' })]);
    expect(of.dumpFlows().map((r) => r.cookie)).toEqual([0x22n]);
    // Strict delete at the wrong priority removes nothing.
    of.applyFlowMods([parseFlow('table=1,priority=11,arp', { command: 'delete_strict' })]);
    expect(of.dumpFlows()).toHaveLength(1);
  });

  test('check_overlap refuses an overlapping rule at the same priority', () => {
    const { of } = bridge();
    addFlows(of, 'priority=10,ip,actions=output:1');
    expect(() => addFlows(of, 'check_overlap,priority=10,tcp,actions=output:2')).toThrow(/overlaps/);
    addFlows(of, 'check_overlap,priority=10,arp,actions=output:2');
    addFlows(of, 'check_overlap,priority=11,tcp,actions=output:2');
    expect(of.dumpFlows()).toHaveLength(3);
  });
});

describe('atomic batches', () => {
  test('a failing flow-mod leaves every table as it was', () => {
    const { of } = bridge();
    addFlows(of, 'priority=10,ip,actions=output:1\npriority=5,actions=output:2');
    const before = dump(of);
    const mods = parseFlows(`priority=10,ip,actions=output:3
priority=7,arp,actions=output:4
priority=5,actions=output:1`);
    mods.push(parseFlow('check_overlap,priority=7,arp,arp_op=1,actions=output:2'));
    const tags = of.takeInvalidations();
    expect(tags.size).toBeGreaterThan(0);
    let err: unknown;
    try {
      of.applyFlowMods(mods);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FlowModBatchError);
    expect((err as FlowModBatchError).index).toBe(3);
    expect((err as FlowModBatchError).message).toMatch(/^flow-mod 4: .*nothing was applied/);
    expect(dump(of)).toEqual(before);
    expect(of.takeInvalidations().size).toBe(0);
  });

  test('a failed batch restores rules it replaced or modified, with their counters', () => {
    const { of, clock } = bridge();
    addFlows(of, 'priority=10,in_port=1,actions=output:2\npriority=10,in_port=2,actions=output:1');
    of.credit(of.xlate(flowOf('in_port=1')), 4, 400, clock.now());
    const mods = [
      ...parseFlows('priority=10,in_port=1,actions=output:3'),
      parseFlow('in_port=2,actions=output:4', { command: 'modify' }),
      parseFlow('priority=10', { command: 'delete' }),
      { ...parseFlow('actions=drop'), table: 400 },
    ];
    expect(() => of.applyFlowMods(mods)).toThrow(FlowModBatchError);
    // Validation caught the bad table before anything ran; now a failure in the middle of applying:
    const late = [...mods.slice(0, 3), parseFlow('check_overlap,priority=7,actions=output:2'), parseFlow('check_overlap,priority=7,ip,actions=output:3')];
    expect(() => of.applyFlowMods(late)).toThrow(/overlaps/);
    expect(dump(of)).toEqual([
      ' cookie=0x0, table=0, n_packets=4, n_bytes=400, priority=10,in_port=1 actions=output:2',
      ' cookie=0x0, table=0, n_packets=0, n_bytes=0, priority=10,in_port=2 actions=output:1',
    ]);
    expect(actionsFor(of, 'in_port=1')).toBe('2');
    expect(actionsFor(of, 'in_port=2')).toBe('1');
  });

  test('bad goto_table and conjunction mixes are rejected with a code before anything is applied', () => {
    const { of } = bridge();
    // Flow-mods built in code (not parsed) get the same checks as parsed ones.
    const goto = parseFlow('table=3,actions=goto_table:4', { dialect: 'of13' });
    const mods = [parseFlow('table=3,actions=output:1'), { ...goto, table: 5 }];
    expect(() => of.applyFlowMods(mods)).toThrow(expect.objectContaining({ code: 'OFPROTO_BAD_FLOW_MOD', index: 1 }));
    const conj = parseFlow('actions=conjunction(1,1/2)');
    const mixed = { ...conj, actions: [...conj.actions, ...parseFlow('actions=output:1').actions] };
    expect(() => of.applyFlowMods([parseFlow('actions=output:2'), mixed])).toThrow(/conjunction/);
    expect(() => of.applyFlowMods([{ ...conj, table: 300 }])).toThrow(expect.objectContaining({ code: 'OFPROTO_BAD_TABLE' }));
    expect(of.dumpFlows()).toHaveLength(0);
  });

  test('every change reports the tag of its table', () => {
    const { of } = bridge();
    of.takeInvalidations();
    addFlows(of, 'table=3,actions=output:1\ntable=7,actions=output:2');
    expect(of.takeInvalidations()).toEqual(new Set(['table:3', 'table:7']));
    of.applyFlowMods([parseFlow('table=7', { command: 'delete' })]);
    expect(of.takeInvalidations()).toEqual(new Set(['table:7']));
  });
});

describe('timeouts and counters', () => {
  test('hard timeouts expire on time, idle timeouts only without traffic', () => {
    const { of, clock } = bridge();
    addFlows(of, `priority=1,in_port=1,hard_timeout=10,actions=output:2
priority=1,in_port=2,idle_timeout=5,actions=output:1
priority=1,in_port=3,actions=output:1`);
    clock.advance(4);
    const r = of.xlate(flowOf('in_port=2'));
    of.credit(r, 1, 64, clock.now());
    clock.advance(4); // idle rule last used 4 s ago
    expect(of.run()).toEqual([]);
    clock.advance(1.5); // idle for 5.5 s now, hard rule at 9.5 s
    expect(of.run().map((g) => [g.rule.match.value[0], g.reason])).toEqual([[2, 'idle_timeout']]);
    clock.advance(0.5);
    expect(of.run().map((g) => [g.rule.match.value[0], g.reason])).toEqual([[1, 'hard_timeout']]);
    expect(of.dumpFlows().map((x) => x.match.value[0])).toEqual([3]);
    expect(of.takeInvalidations()).toContain('table:0');
  });

  test('credit adds packets and bytes, duration and idle age follow the clock', () => {
    const { of, clock } = bridge();
    addFlows(of, 'in_port=1,actions=output:2');
    const r = of.xlate(flowOf('in_port=1'));
    clock.advance(2);
    of.credit(r, 10, 1500, clock.now());
    clock.advance(3);
    const line = formatDumpFlows(of)[0];
    expect(line).toBe(' cookie=0x0, duration=5.000s, table=0, n_packets=10, n_bytes=1500, idle_age=3, in_port=1 actions=output:2');
  });
});

describe('replace-flows and diff-flows', () => {
  let dir: string | null = null;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = null;
  });

  const A = `priority=5,ip,actions=drop
table=1,cookie=0x3,in_port=1,actions=output:2
in_port=3,idle_timeout=10,actions=NORMAL
in_port=4 actions=output:1
table=1,cookie=0x3,priority=7,in_port=1,hard_timeout=5,idle_timeout=3,importance=2,actions=output:2
`;
  const B = `priority=5,ip,actions=output:3
table=1,cookie=0x3,in_port=1,actions=output:2
in_port=4 actions=output:1
table=2,tcp,tp_dst=80,actions=drop
priority=0,actions=drop
`;

  test.skipIf(skipOvs)('diff-flows prints what ovs-ofctl diff-flows prints (same lines, any order)', () => {
    dir = mkdtempSync(join(tmpdir(), 'nvs-diff-'));
    writeFileSync(join(dir, 'a.txt'), A);
    writeFileSync(join(dir, 'b.txt'), B);
    let real = '';
    try {
      execFileSync('ovs-ofctl', ['diff-flows', join(dir, 'a.txt'), join(dir, 'b.txt')], { encoding: 'utf8' });
    } catch (e) {
      // ovs-ofctl exits 2 when the sets differ.
      real = (e as { stdout: string }).stdout;
    }
    const ours = formatDiffFlows(parseFlows(A), parseFlows(B));
    expect(real.trim().split('\n').sort()).toEqual([...ours].sort());
    expect(ours.length).toBeGreaterThan(3);
    expect(formatDiffFlows(parseFlows(A), parseFlows(A))).toEqual([]);
  });

  test('replace-flows changes only what differs; unchanged rules keep their counters', () => {
    const { of, clock } = bridge();
    addFlows(of, A);
    of.credit(of.xlate(flowOf('in_port=4')), 2, 120, clock.now());
    const out = of.replaceFlows(parseFlows(B));
    expect(out.added.length).toBe(3); // changed priority=5,ip + table=2 + priority=0
    expect(out.removed.length).toBe(3); // in_port=3, table 1 priority 7, and the old priority=5,ip
    const after = of.dumpFlows();
    expect(after.find((r) => r.match.value[0] === 4 && r.table === 0)?.packets).toBe(2);
    expect(formatDiffFlows(after.map(ruleToFlowMod), parseFlows(B))).toEqual([]);
  });
});

describe.skipIf(skipOvs)('flow-mods against a real ovs-vswitchd', () => {
  let ovs: RealOvs;
  beforeAll(() => {
    ovs = startOvs(['fail_mode=secure', 'protocols=OpenFlow10,OpenFlow13', ...ovsPorts([1, 2, 3].map((n) => ({ n })))]);
  });
  afterAll(() => ovs?.stop());

  // [ovs-ofctl command, its options, rule text]; our flow-mod command for each.
  const STEPS: [string, string[], string, FlowModCommand][] = [
    ['add-flows', [], `priority=10,ip,nw_dst=10.0.0.0/8,actions=output:1
cookie=0x11,priority=20,tcp,tp_dst=80,actions=output:2
cookie=0x12,priority=20,tcp,tp_dst=443,actions=output:2
cookie=0x21,table=1,in_port=1,actions=output:3
table=1,priority=5,actions=drop
priority=10,ip,nw_dst=10.0.0.0/8,idle_timeout=30,actions=output:3`, 'add'],
    ['mod-flows', [], 'tcp,actions=output:3', 'modify'],
    ['mod-flows', ['--strict'], 'priority=10,ip,nw_dst=10.0.0.0/8,actions=output:2,output:1', 'modify_strict'],
    ['mod-flows', [], 'cookie=0x10/0xf0,tcp,actions=output:1', 'modify'],
    ['mod-flows', [], 'cookie=0x31,tp_dst=443,tcp,actions=output:1', 'modify'],
    ['mod-flows', [], 'priority=7,udp,actions=output:2', 'modify'],
    ['del-flows', [], 'cookie=0x10/0xf0', 'delete'],
    ['del-flows', ['--strict'], 'table=1,priority=5', 'delete_strict'],
    ['add-flows', [], 'table=1,priority=6,actions=output:2\ncookie=0x22,table=1,in_port=2,actions=output:1', 'add'],
    ['del-flows', [], 'out_port=1', 'delete'],
    ['del-flows', [], 'table=1,in_port=1', 'delete'],
  ];

  test('each step leaves the same dump-flows', () => {
    const { of } = bridge({ ports: [1, 2, 3].map((n) => ({ ofport: n, name: `p${n}` })) });
    const strip = (l: string) => l.replace(/ duration=[^,]*,/, '').replace(/ idle_age=\d+,/, '').replace(/ hard_age=\d+,/, '').trim();
    for (const [cmd, opts, text, command] of STEPS) {
      ovs.run('ovs-ofctl', [...opts, cmd, ovs.mgmt, '-'], `${text}\n`);
      of.applyFlowMods(parseFlows(text, { command }));
      const real = ovs.run('ovs-ofctl', ['dump-flows', ovs.mgmt]).split('\n').filter((l) => l.includes('cookie=')).map(strip).sort();
      const ours = formatDumpFlows(of).map(strip).sort();
      expect({ step: `${cmd} ${opts.join(' ')} ${text}`, ours }).toEqual({ step: `${cmd} ${opts.join(' ')} ${text}`, ours: real });
    }
    expect(of.dumpFlows().length).toBeGreaterThan(0);
    // replace-flows then leaves both with exactly the new set.
    const next = `cookie=0x22,table=1,in_port=2,actions=output:1
priority=30,arp,actions=NORMAL
cookie=0x31,priority=20,tcp,tp_dst=443,actions=output:2`;
    const file = join(mkdtempSync(join(tmpdir(), 'nvs-replace-')), 'flows.txt');
    writeFileSync(file, `${next}\n`);
    // Rules in several tables need table ids, which OpenFlow 1.3 has.
    ovs.run('ovs-ofctl', ['-O', 'OpenFlow13', 'replace-flows', ovs.mgmt, file]);
    rmSync(dirname(file), { recursive: true, force: true });
    of.replaceFlows(parseFlows(next));
    const real = ovs.run('ovs-ofctl', ['dump-flows', ovs.mgmt]).split('\n').filter((l) => l.includes('cookie=')).map(strip).sort();
    expect(formatDumpFlows(of).map(strip).sort()).toEqual(real);
    expect(real).toHaveLength(3);
  });
});
