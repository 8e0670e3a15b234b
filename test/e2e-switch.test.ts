// nvs as a switch, end to end with dummy ports: the real ovs-vsctl builds
// the bridge through nvs-dbserver (and waits for nvs-vswitchd's cur_cfg),
// nvs-ofctl loads rules, packets injected with netdev-dummy/receive come out
// where the rules and NORMAL say, rule changes reach established flows
// within one revalidation round, traces work through both appctl clients,
// and a restart rebuilds everything from the database and the saved rules.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, NvsRun } from './e2e-harness.ts';
import { needsOvs } from './ovs-tools.ts';

const skipOvs = needsOvs('test/e2e-switch', ['ovs-vsctl', 'ovs-appctl']);

const MAC = (n: number) => `0a:00:00:00:00:0${n}`;
const IP = (n: number) => `10.0.0.${n}`;
/** A flow in ovs-ofctl syntax from host a (port pa) to host b. */
const flow = (pa: string, a: number, b: number, l4 = 'udp,tp_src=1000,tp_dst=2000') =>
  `in_port=${pa},dl_src=${MAC(a)},dl_dst=${MAC(b)},${l4},nw_src=${IP(a)},nw_dst=${IP(b)}`;

describe.skipIf(skipOvs)('nvs switch end to end', () => {
  let nvs: NvsRun;

  /** Packets sent out of a port since the last drain, as hex strings. */
  async function drain(port: string): Promise<string[]> {
    const r = await nvs.appctl('netdev-dummy/drain', port);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout.split('\n').filter(Boolean);
  }

  async function send(port: string, ...flows: string[]): Promise<void> {
    const r = await nvs.appctl('netdev-dummy/receive', port, ...flows);
    expect(r.code, r.stderr).toBe(0);
  }

  /** Waits until the switch has handled what was sent: a full revalidation round after the upcalls. */
  async function settle(): Promise<void> {
    const r = await nvs.appctl('revalidator/wait');
    expect(r.code, r.stderr).toBe(0);
  }

  beforeAll(async () => {
    nvs = new NvsRun();
    await nvs.startDb();
    await nvs.startSwitch();
  });
  afterAll(async () => {
    await nvs?.cleanup();
  });

  it('builds the bridge with the real ovs-vsctl (no --no-wait) and reports ports back', async () => {
    const add = await nvs.vsctl(
      'add-br', 'br0', '--', 'set', 'Bridge', 'br0', 'datapath_type=netdev',
      '--', 'add-port', 'br0', 'p1', '--', 'set', 'Interface', 'p1', 'type=dummy', 'ofport_request=1',
      '--', 'add-port', 'br0', 'p2', '--', 'set', 'Interface', 'p2', 'type=dummy', 'ofport_request=2',
      '--', 'add-port', 'br0', 'p3', '--', 'set', 'Interface', 'p3', 'type=dummy', 'ofport_request=3',
    );
    expect(add.code, add.stderr).toBe(0);
    const ofports = await nvs.vsctl('--bare', '--columns=name,ofport,link_state,admin_state', 'list', 'Interface');
    const text = ofports.stdout;
    for (const [name, ofport] of [['p1', 1], ['p2', 2], ['p3', 3], ['br0', 65534]] as const) {
      expect(text).toMatch(new RegExp(`${name}\\n${ofport}\\nup\\nup`));
    }
    const mac = await nvs.vsctl('get', 'Interface', 'p1', 'mac_in_use');
    expect(mac.stdout.trim()).toMatch(/^"([0-9a-f]{2}:){5}[0-9a-f]{2}"$/);
    const cfg = await nvs.vsctl('get', 'Open_vSwitch', '.', 'next_cfg', 'cur_cfg');
    const [next, cur] = cfg.stdout.trim().split('\n');
    expect(cur).toBe(next);
  });

  // (Types nvs cannot open yet are errors without --enable-dummy=override: e2e-tap.test.ts checks that.)
  it('sets Interface.error for an unknown type or bad option and keeps the other ports working', async () => {
    const add = await nvs.vsctl(
      'add-port', 'br0', 'w1', '--', 'set', 'Interface', 'w1', 'type=warp-drive',
      '--', 'add-port', 'br0', 'p9', '--', 'set', 'Interface', 'p9', 'type=dummy', 'options:color=blue',
    );
    // ovs-vsctl itself reports the interface errors it finds after the change.
    expect(add.stderr).toContain('unknown interface type');
    const err = (name: string) => nvs.vsctl('get', 'Interface', name, 'error').then((r) => r.stdout);
    expect(await err('w1')).toContain('unknown interface type \\"warp-drive\\"');
    expect(await err('p9')).toContain('does not accept option \\"color\\"');
    expect((await nvs.vsctl('get', 'Interface', 'w1', 'ofport')).stdout.trim()).toBe('-1');
    // The working ports still forward (NORMAL floods an unknown destination).
    await send('p1', flow('p1', 1, 9));
    await settle();
    expect(await drain('p2')).toHaveLength(1);
    expect(await drain('p3')).toHaveLength(1);
    const del = await nvs.vsctl('del-port', 'w1', '--', 'del-port', 'p9');
    expect(del.code, del.stderr).toBe(0);
    const flush = await nvs.appctl('fdb/flush', 'br0');
    expect(flush.stdout).toBe('table successfully flushed\n');
  });

  it('NORMAL floods an unknown destination, learns, then unicasts', async () => {
    await nvs.appctl('revalidator/purge');
    await send('p1', flow('p1', 1, 2));
    await settle();
    expect(await drain('p2')).toHaveLength(1);
    expect(await drain('p3')).toHaveLength(1); // flooded
    await send('p2', flow('p2', 2, 1));
    await settle();
    expect(await drain('p1')).toHaveLength(1); // h1 was learned on p1
    expect(await drain('p3')).toHaveLength(0);
    await send('p1', flow('p1', 1, 2));
    await settle();
    expect(await drain('p2')).toHaveLength(1); // now unicast
    expect(await drain('p3')).toHaveLength(0);
    const fdb = await nvs.appctl('fdb/show', 'br0');
    expect(fdb.stdout).toMatch(/\n\s+1\s+0\s+0a:00:00:00:00:01\s+\d+/);
    expect(fdb.stdout).toMatch(/\n\s+2\s+0\s+0a:00:00:00:00:02\s+\d+/);
  });

  it('loads a rule file with nvs-ofctl add-flows; packets go where the rules say and count on the rules', async () => {
    const rules = join(nvs.rundir, 'rules.txt');
    writeFileSync(
      rules,
      ['# web to 10.0.0.3 goes to p3 only; ssh is dropped', 'priority=200,tcp,tp_dst=22,actions=drop', 'priority=100,tcp,nw_dst=10.0.0.3,tp_dst=80,actions=output:3', ''].join('\n'),
    );
    const load = await nvs.ofctl('add-flows', 'br0', rules);
    expect(load.code, load.stderr).toBe(0);
    await send('p1', flow('p1', 1, 3, 'tcp,tp_src=4000,tp_dst=80'), flow('p1', 1, 3, 'tcp,tp_src=4001,tp_dst=80'));
    await send('p2', flow('p2', 2, 1, 'tcp,tp_src=4002,tp_dst=22'));
    await settle();
    expect(await drain('p3')).toHaveLength(2);
    expect(await drain('p1')).toHaveLength(0);
    expect(await drain('p2')).toHaveLength(0);
    const dump = await nvs.ofctl('dump-flows', 'br0');
    expect(dump.stdout).toMatch(/n_packets=2, n_bytes=120, .*priority=100,tcp,nw_dst=10\.0\.0\.3,tp_dst=80 actions=output:3/);
    expect(dump.stdout).toMatch(/n_packets=1, n_bytes=60, .*priority=200,tcp,tp_dst=22 actions=drop/);
    const ports = await nvs.ofctl('dump-ports', 'br0', 'p3');
    expect(ports.stdout).toMatch(/port {2}3: rx pkts=0, .*\n\s+tx pkts=\d+/);
  });

  it('a rule file with an error changes nothing and says where', async () => {
    const before = (await nvs.ofctl('--no-stats', 'dump-flows', 'br0')).stdout;
    const bad = join(nvs.rundir, 'bad.txt');
    writeFileSync(bad, 'priority=10,ip,actions=output:2\npriority=11,ip,nw_dst=10.0.0.1,actoins=drop\n');
    const r = await nvs.ofctl('add-flows', 'br0', bad);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2:\\d+: `));
    expect((await nvs.ofctl('--no-stats', 'dump-flows', 'br0')).stdout).toBe(before);
  });

  it('changing a rule changes an established flow within one revalidation round', async () => {
    const web = flow('p1', 1, 3, 'tcp,tp_src=5000,tp_dst=80');
    await send('p1', web);
    await settle();
    expect(await drain('p3')).toHaveLength(1);
    // The megaflow is installed: the next packet is a datapath hit, no upcall.
    const dp = await nvs.appctl('dpif/dump-flows', 'br0');
    expect(dp.stdout).toMatch(/eth_type\(0x0800\),ipv4\(.*dst=10\.0\.0\.3,proto=6,.*\),tcp\(dst=80\).*actions:/);
    const mod = await nvs.ofctl('mod-flows', 'br0', 'tcp,nw_dst=10.0.0.3,tp_dst=80,actions=output:2');
    expect(mod.code, mod.stderr).toBe(0);
    await settle();
    await send('p1', web);
    await settle();
    expect(await drain('p2')).toHaveLength(1);
    expect(await drain('p3')).toHaveLength(0);
    // The revalidator fixed the installed megaflow in place: the packet was a datapath hit on the new actions.
    const odp2 = (await nvs.appctl('dpif/show')).stdout.match(/p2 2\/(\d+):/)![1];
    const after = (await nvs.appctl('dpif/dump-flows', 'br0')).stdout;
    expect(after).toMatch(new RegExp(`ipv4\\(.*dst=10\\.0\\.0\\.3,proto=6,.*\\),tcp\\(dst=80\\), packets:[1-9]\\d*, .*actions:${odp2}\\n`));
    expect((await nvs.appctl('coverage/show')).stdout).toMatch(/revalidate_modify\s+[\d.]+\/sec\s+total: [1-9]/);
  });

  it('upcall/show counts the installed megaflows and the time per miss by phase; n-handler-threads is reported as not acted on', async () => {
    await send('p1', flow('p1', 1, 3, 'tcp,tp_src=5002,tp_dst=80'));
    await settle();
    const show = await nvs.ovsAppctl('upcall/show');
    expect(show.code, show.stderr).toBe(0);
    const current = Number(show.stdout.match(/^ {2}flows {9}: \(current (\d+)\) \(avg \d+\) \(max \d+\) \(limit 200000\)$/m)![1]);
    const dumped = (await nvs.appctl('dpif/dump-flows', 'br0')).stdout.trim().split('\n').length;
    expect(current).toBe(dumped);
    expect(show.stdout).toMatch(/^ {2}dump duration : \d+ms$/m);
    expect(show.stdout).toMatch(/^ {2}handlers {6}: 1$/m);
    // Misses were translated, so translation took time; every phase is printed.
    const phases = show.stdout.match(/^ {2}upcall time per miss \(µs, ([1-9]\d*) misses\): xlate ([\d.]+) install ([\d.]+) execute ([\d.]+) other ([\d.]+)$/m);
    expect(phases, show.stdout).not.toBeNull();
    expect(Number(phases![2])).toBeGreaterThan(0);
    const set = await nvs.vsctl('set', 'Open_vSwitch', '.', 'other_config:n-handler-threads=4');
    expect(set.code, set.stderr).toBe(0);
    expect((await nvs.appctl('upcall/show')).stdout).toMatch(/^ {2}handlers {6}: 1 \(n-handler-threads=4 is not acted on: .*\)$/m);
    expect((await nvs.appctl('memory/show')).stdout).toMatch(/ handlers:1 /);
    await nvs.vsctl('remove', 'Open_vSwitch', '.', 'other_config', 'n-handler-threads');
  });

  it('dpctl/show, dpctl/dump-flows and dpctl/del-flows work on the one datapath, also by the name OVS gives its datapath', async () => {
    await send('p1', flow('p1', 1, 3, 'tcp,tp_src=5003,tp_dst=80'));
    await settle();
    const perBridge = (await nvs.appctl('dpif/dump-flows', 'br0')).stdout;
    expect(perBridge).not.toBe('');
    // One bridge: the datapath's flows are the bridge's.
    const all = await nvs.ovsAppctl('dpctl/dump-flows');
    expect(all.code, all.stderr).toBe(0);
    const sorted = (text: string) => text.replace(/used:[\d.]+s/g, 'used:*').split('\n').sort();
    expect(sorted(all.stdout)).toEqual(sorted(perBridge));
    expect((await nvs.ovsAppctl('dpctl/dump-flows', 'netdev@ovs-netdev')).stdout.split('\n')).toHaveLength(perBridge.split('\n').length);
    const show = (await nvs.ovsAppctl('dpctl/show')).stdout;
    expect(show).toMatch(/^nvs@nvs-netdev:\n {2}lookups: hit:\d+ missed:[1-9]\d* lost:\d+\n {2}flows: [1-9]\d*\n/);
    for (const p of ['br0', 'p1', 'p2', 'p3']) expect(show).toMatch(new RegExp(`^ {2}port \\d+: ${p} \\((dummy|dummy-internal|tap)\\)$`, 'm'));
    const bad = await nvs.ovsAppctl('dpctl/show', 'system@ovs-system');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('no such datapath');
    expect((await nvs.ovsAppctl('dpctl/del-flows')).code).toBe(0);
    expect((await nvs.appctl('dpctl/dump-flows')).stdout).toBe('');
    expect((await nvs.appctl('dpctl/show')).stdout).toMatch(/\n {2}flows: 0\n/);
  });

  it('dpif-netdev/pmd-stats-clear starts the polling-thread counters again from zero', async () => {
    const received = async () => {
      const r = await nvs.ovsAppctl('dpif-netdev/pmd-stats-show');
      expect(r.code, r.stderr).toBe(0);
      return [...r.stdout.matchAll(/^ {2}packets received: (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
    };
    expect(await received()).toBeGreaterThan(0);
    expect((await nvs.ovsAppctl('dpif-netdev/pmd-stats-clear')).code).toBe(0);
    expect(await received()).toBe(0);
    await send('p1', flow('p1', 1, 3), flow('p1', 1, 2));
    await settle();
    await drain('p2');
    await drain('p3');
    expect(await received()).toBe(2);
  });

  it('other_config:flow-limit caps the installed megaflows; packets past it are still forwarded', async () => {
    await nvs.appctl('revalidator/purge');
    expect((await nvs.vsctl('set', 'Open_vSwitch', '.', 'other_config:flow-limit=2')).code).toBe(0);
    expect((await nvs.appctl('upcall/show')).stdout).toMatch(/\(limit 2\)/);
    // Four new hosts behind p1 send to h3 through NORMAL (a megaflow each: it keeps the MACs): all forwarded, two installed.
    await send('p1', ...[5, 6, 7, 8].map((host) => flow('p1', host, 3)));
    await settle();
    expect(await drain('p3')).toHaveLength(4);
    await drain('p2');
    const flows = (await nvs.appctl('dpif/dump-flows', 'br0')).stdout.trim().split('\n');
    expect(flows).toHaveLength(2);
    expect((await nvs.appctl('coverage/show')).stdout).toMatch(/upcall_flow_limit_hit\s+[\d.]+\/sec\s+total: 2\b/);
    await nvs.vsctl('remove', 'Open_vSwitch', '.', 'other_config', 'flow-limit');
    await nvs.appctl('revalidator/purge');
  });

  it('traces through nvs-appctl and the real ovs-appctl alike', async () => {
    const f = flow('p1', 1, 3, 'tcp,tp_src=5000,tp_dst=80');
    const ours = await nvs.appctl('ofproto/trace', 'br0', f);
    const theirs = await nvs.ovsAppctl('ofproto/trace', 'br0', f);
    expect(ours.code, ours.stderr).toBe(0);
    expect(theirs.code, theirs.stderr).toBe(0);
    expect(theirs.stdout).toBe(ours.stdout);
    expect(ours.stdout).toMatch(/^Flow: tcp,in_port=1,/);
    expect(ours.stdout).toMatch(/\nMegaflow: recirc_id=0,eth,tcp,in_port=\d+,.*nw_dst=10\.0\.0\.3.*tp_dst=80/);
    // p2 is datapath port 3 (the LOCAL port br0 took 1).
    const odp = (await nvs.appctl('dpif/show')).stdout.match(/p2 2\/(\d+):/)![1];
    expect(ours.stdout).toMatch(new RegExp(`\\nDatapath actions: ${odp}\\n?$`));
    const bad = await nvs.ovsAppctl('ofproto/trace', 'nobr', f);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('nobr: unknown bridge'); // ovs-vswitchd's words
  });

  it('a restart rebuilds everything from the database and the saved rules', async () => {
    const rulesBefore = (await nvs.ofctl('--no-stats', 'dump-flows', 'br0')).stdout;
    const pid = nvs.pid('nvs-vswitchd');
    await nvs.kill('nvs-vswitchd');
    await nvs.startSwitch();
    expect(nvs.pid('nvs-vswitchd')).not.toBe(pid);
    expect((await nvs.ofctl('--no-stats', 'dump-flows', 'br0')).stdout).toBe(rulesBefore);
    const show = await nvs.appctl('dpif/show');
    for (const p of ['p1 1/', 'p2 2/', 'p3 3/', 'br0 65534/']) expect(show.stdout).toContain(p);
    // Forwarding resumed with the restored rules (web to h3 now goes to p2).
    await send('p1', flow('p1', 1, 3, 'tcp,tp_src=5001,tp_dst=80'));
    await settle();
    expect(await drain('p2')).toHaveLength(1);
    // And the database still drives it: a new port appears, ovs-vsctl waits for it.
    const add = await nvs.vsctl('add-port', 'br0', 'p4', '--', 'set', 'Interface', 'p4', 'type=dummy', 'ofport_request=4');
    expect(add.code, add.stderr).toBe(0);
    await eventually(async () => (await nvs.vsctl('get', 'Interface', 'p4', 'ofport')).stdout.trim() === '4', 'p4 to get ofport 4');
  });

  it('--no-restore starts with the default rules only', async () => {
    await nvs.kill('nvs-vswitchd');
    await nvs.startSwitch(['--no-restore']);
    const dump = await nvs.ofctl('--no-stats', 'dump-flows', 'br0');
    expect(dump.stdout).toBe('NXST_FLOW reply (xid=0x4):\n priority=0 actions=NORMAL\n');
  });
});
