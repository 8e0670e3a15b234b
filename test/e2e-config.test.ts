// What nvs-vswitchd acts on from the database, and the flow-table commands
// of nvs-ofctl, end to end with dummy ports: Port tag/trunks (VLAN-aware
// NORMAL), Bridge fail_mode, mac-aging-time and mac-table-size, Open_vSwitch
// other_config max-idle, pmd-cpu-mask and stats-update-interval, Interface
// statistics written back;
// replace-flows, diff-flows, del-flows, mod-flows --strict, dump-flows
// filters and sorting, dump-tables.
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, NvsRun } from './e2e-harness.ts';
import { needsOvs } from './ovs-tools.ts';

const skipOvs = needsOvs('test/e2e-config', ['ovs-vsctl', 'ovs-appctl']);

const MAC = (n: number) => `0a:00:00:00:00:0${n}`;
const flow = (port: string, a: number, b: number) =>
  `in_port=${port},dl_src=${MAC(a)},dl_dst=${MAC(b)},udp,nw_src=10.0.0.${a},nw_dst=10.0.0.${b},tp_src=7,tp_dst=9`;

describe.skipIf(skipOvs)('configuration and flow tables end to end', () => {
  let nvs: NvsRun;
  const drain = async (port: string) => (await nvs.appctl('netdev-dummy/drain', port)).stdout.split('\n').filter(Boolean);
  const send = async (port: string, f: string) => expect((await nvs.appctl('netdev-dummy/receive', port, f)).code).toBe(0);
  const settle = async () => expect((await nvs.appctl('revalidator/wait')).code).toBe(0);

  beforeAll(async () => {
    nvs = new NvsRun();
    await nvs.startDb();
    // Polling threads take their cores from the database when the switch starts (the last core here).
    const mask = `0x${(1 << (Math.min(availableParallelism(), 31) - 1)).toString(16)}`;
    expect((await nvs.vsctl('--no-wait', 'set', 'Open_vSwitch', '.', `other_config:pmd-cpu-mask=${mask}`)).code).toBe(0);
    await nvs.startSwitch();
    const ports = [
      ['p1', 'tag=10'],
      ['p2', 'tag=10'],
      ['p3', 'tag=20'],
      ['p4', 'trunks=10,20'],
    ].flatMap(([p, vlan], i) => ['--', 'add-port', 'br1', p, vlan, '--', 'set', 'Interface', p, 'type=dummy', `ofport_request=${i + 1}`]);
    const r = await nvs.vsctl('add-br', 'br1', ...ports);
    expect(r.code, r.stderr).toBe(0);
  });
  afterAll(async () => {
    await nvs?.cleanup();
  });

  it('pins the polling thread to the core of pmd-cpu-mask', async () => {
    const s = await nvs.appctl('dpif-netdev/pmd-stats-show');
    expect(s.stdout).toContain(`pmd thread numa_id 0 core_id ${Math.min(availableParallelism(), 31) - 1}:`);
  });

  it('floods within the access VLAN and tags toward the trunk', async () => {
    await send('p1', flow('p1', 1, 9));
    await settle();
    const p2 = await drain('p2');
    const p4 = await drain('p4');
    expect(p2).toHaveLength(1);
    expect(p2[0].slice(24, 28)).toBe('0800'); // untagged on the access port
    expect(p4).toHaveLength(1);
    expect(p4[0].slice(24, 32)).toBe('8100000a'); // VLAN 10 on the trunk
    expect(await drain('p3')).toHaveLength(0); // VLAN 20
    // A tagged frame from the trunk in VLAN 20 reaches only p3, untagged.
    await send('p4', `${flow('p4', 4, 8)},dl_vlan=20`);
    await settle();
    expect((await drain('p3')).map((h) => h.slice(24, 28))).toEqual(['0800']);
    expect(await drain('p1')).toHaveLength(0);
  });

  it('fail_mode secure drops without rules; standalone brings NORMAL back', async () => {
    expect((await nvs.vsctl('set-fail-mode', 'br1', 'secure')).code).toBe(0);
    expect((await nvs.ofctl('--no-stats', 'dump-flows', 'br1')).stdout).toBe('NXST_FLOW reply (xid=0x4):\n');
    await send('p1', flow('p1', 1, 2));
    await settle();
    expect(await drain('p2')).toHaveLength(0);
    expect((await nvs.vsctl('set-fail-mode', 'br1', 'standalone')).code).toBe(0);
    expect((await nvs.ofctl('--no-stats', 'dump-flows', 'br1')).stdout).toContain(' priority=0 actions=NORMAL');
    await send('p1', flow('p1', 1, 2));
    await settle();
    expect(await drain('p2')).toHaveLength(1);
  });

  it('applies mac-table-size and mac-aging-time', async () => {
    expect((await nvs.appctl('fdb/flush', 'br1')).code).toBe(0);
    expect((await nvs.vsctl('set', 'Bridge', 'br1', 'other_config:mac-table-size=2')).code).toBe(0);
    for (const [p, n] of [['p1', 1], ['p2', 2], ['p1', 3]] as const) await send(p, flow(p, n, 9));
    await settle();
    const fdb = (await nvs.appctl('fdb/show', 'br1')).stdout.trim().split('\n');
    expect(fdb).toHaveLength(3); // header + 2 entries: the oldest was evicted
    expect((await nvs.appctl('fdb/stats-show', 'br1')).stdout).toContain('Current/maximum MAC entries in the table: 2/2');
    expect((await nvs.vsctl('set', 'Bridge', 'br1', 'other_config:mac-aging-time=1')).code).toBe(0);
    await eventually(async () => {
      await settle();
      return (await nvs.appctl('fdb/show', 'br1')).stdout.trim().split('\n').length === 1;
    }, 'learned MACs to age out');
    expect((await nvs.vsctl('remove', 'Bridge', 'br1', 'other_config', 'mac-aging-time', '--', 'remove', 'Bridge', 'br1', 'other_config', 'mac-table-size')).code).toBe(0);
  });

  it('expires idle megaflows after other_config:max-idle and writes Interface statistics', async () => {
    expect((await nvs.vsctl('set', 'Open_vSwitch', '.', 'other_config:max-idle=300')).code).toBe(0);
    await send('p1', flow('p1', 1, 5));
    await eventually(async () => (await nvs.appctl('dpif/dump-flows', 'br1')).stdout === '', 'idle megaflows to expire');
    const stats = await eventually(async () => {
      const s = (await nvs.vsctl('get', 'Interface', 'p1', 'statistics')).stdout;
      return /rx_packets=[1-9]/.test(s) && s;
    }, 'statistics of p1');
    expect(stats).toMatch(/rx_bytes=\d+/);
    expect(stats).toMatch(/tx_packets=\d+/);
  });

  it('writes Interface statistics every other_config:stats-update-interval, and at the default period again once it is removed', async () => {
    const rxInDb = async () => Number(/rx_packets=(\d+)/.exec((await nvs.vsctl('get', 'Interface', 'p1', 'statistics')).stdout)?.[1]);
    // OpenFlow port statistics are read live from the datapath (the way OVS's documentation points to for fresher figures).
    const rxLive = async () => Number(/rx pkts=(\d+)/.exec((await nvs.ofctl('dump-ports', 'br1', 'p1')).stdout)?.[1]);
    const changes = () => nvs.log('nvs-vswitchd').split('\n').filter((l) => l.includes('statsUpdateIntervalMs')).length;
    expect((await nvs.vsctl('set', 'Open_vSwitch', '.', 'other_config:stats-update-interval=3600000')).code).toBe(0);
    // A new period writes once at once, as in ovs-vswitchd; then nothing for an hour.
    const before = await rxLive();
    await eventually(async () => (await rxInDb()) === before, 'the write a new period makes');
    for (let i = 0; i < 3; i++) await send('p1', flow('p1', 1, 6));
    await settle();
    expect(await rxLive()).toBe(before + 3);
    // The same value again changes nothing (no extra write, no log line).
    expect((await nvs.vsctl('set', 'Open_vSwitch', '.', 'other_config:stats-update-interval=3600000')).code).toBe(0);
    await new Promise((r) => setTimeout(r, 5500)); // past the default period of 5 s
    expect(await rxInDb()).toBe(before);
    expect(changes()).toBe(1);
    expect(nvs.log('nvs-vswitchd')).toMatch(/statsUpdateIntervalMs[^\n]*3600000/);
    // Removed: back to the default period, starting with a write at once.
    expect((await nvs.vsctl('remove', 'Open_vSwitch', '.', 'other_config', 'stats-update-interval')).code).toBe(0);
    await eventually(async () => (await rxInDb()) === before + 3, 'the statistics to catch up within the default period', 100);
    expect(changes()).toBe(2);
    await drain('p2');
    await drain('p4');
  });

  it('replace-flows, diff-flows, del-flows, mod-flows --strict, dump-flows filters and dump-tables', async () => {
    const file = join(nvs.rundir, 'set.rules');
    writeFileSync(file, 'priority=10,udp,actions=output:2\npriority=20,tcp,tp_dst=80,actions=drop\ntable=1,priority=5,actions=NORMAL\n');
    expect((await nvs.ofctl('replace-flows', 'br1', file)).code).toBe(0);
    expect((await nvs.ofctl('--no-stats', 'dump-flows', 'br1')).stdout).toBe(
      'NXST_FLOW reply (xid=0x4):\n priority=20,tcp,tp_dst=80 actions=drop\n priority=10,udp actions=output:2\n table=1, priority=5 actions=NORMAL\n',
    );
    const same = await nvs.ofctl('diff-flows', 'br1', file);
    expect(same.code).toBe(0);
    expect(same.stdout).toBe('');
    writeFileSync(file, 'priority=10,udp,actions=output:3\ntable=1,priority=5,actions=NORMAL\n');
    const diff = await nvs.ofctl('diff-flows', 'br1', file);
    expect(diff.code).toBe(2);
    expect(diff.stdout).toBe('-priority=20,tcp,tp_dst=80 actions=drop\n-priority=10,udp actions=output:2\n+priority=10,udp actions=output:3\n');
    // Filters: a table, a match; sorting by priority.
    expect((await nvs.ofctl('--no-stats', 'dump-flows', 'br1', 'table=1')).stdout).toBe('NXST_FLOW reply (xid=0x4):\n table=1, priority=5 actions=NORMAL\n');
    expect((await nvs.ofctl('--no-stats', 'dump-flows', 'br1', 'tcp')).stdout).toBe('NXST_FLOW reply (xid=0x4):\n priority=20,tcp,tp_dst=80 actions=drop\n');
    expect((await nvs.ofctl('--no-stats', '--sort', 'dump-flows', 'br1')).stdout).toBe(
      ' table=1, priority=5 actions=NORMAL\n priority=10,udp actions=output:2\n priority=20,tcp,tp_dst=80 actions=drop\n',
    );
    // mod-flows --strict touches only the exact rule; del-flows with a match removes what it covers.
    expect((await nvs.ofctl('--strict', 'mod-flows', 'br1', 'priority=10,udp,actions=output:4')).code).toBe(0);
    expect((await nvs.ofctl('--no-stats', 'dump-flows', 'br1', 'udp')).stdout).toContain(' priority=10,udp actions=output:4\n');
    expect((await nvs.ofctl('del-flows', 'br1', 'tcp')).code).toBe(0);
    expect((await nvs.ofctl('--no-stats', 'dump-flows', 'br1', 'tcp')).stdout).toBe('NXST_FLOW reply (xid=0x4):\n');
    const tables = (await nvs.ofctl('dump-tables', 'br1')).stdout;
    expect(tables).toMatch(/^OFPST_TABLE reply \(xid=0x2\):\n {2}table 0:\n {4}active=1, lookup=\d+, matched=\d+\n/);
    expect(tables).toMatch(/ {2}table 1:\n {4}active=1, /);
    expect((await nvs.ofctl('del-flows', 'br1')).code).toBe(0);
    expect((await nvs.ofctl('--no-stats', 'dump-flows', 'br1')).stdout).toBe('NXST_FLOW reply (xid=0x4):\n');
  });

  it('answers bad input with clear errors and keeps running', async () => {
    const garbage = await nvs.appctl('netdev-dummy/receive', 'p1', 'in_port=1,dl_src=zz');
    expect(garbage.code).toBe(2);
    expect(garbage.stderr).toContain('in_port=1,dl_src=zz: neither hex bytes nor a flow');
    const noPort = await nvs.ovsAppctl('netdev-dummy/receive', 'nosuch', '00');
    expect(noPort.code).toBe(2);
    expect(noPort.stderr).toContain("no such dummy netdev 'nosuch'");
    const ct = await nvs.ofctl('add-flow', 'br1', 'ip,actions=ct(commit)');
    expect(ct.code).toBe(1);
    expect(ct.stderr).toMatch(/\(command line\):1:\d+: .*not supported/);
    // Garbage on the management socket closes that connection only.
    const s = connect(join(nvs.rundir, 'br1.mgmt'));
    await new Promise((r) => s.once('connect', r));
    s.write('}}}} not json {{{{');
    await new Promise((r) => s.once('close', r));
    expect((await nvs.ofctl('--no-stats', 'dump-flows', 'br1')).code).toBe(0);
    expect((await nvs.ovsAppctl('version')).stdout).toMatch(/^nvs-vswitchd \(nvs\) /);
  });
});
