// other_config:pmd-cpu-mask applies live, end to end with dummy ports: the
// real ovs-vsctl changes the mask while nvs-vswitchd runs, the polling
// threads move to the new cores (pmd-rxq-show and pmd-stats-show say so),
// ports and megaflows stay, packets go on being forwarded by the datapath
// (hits, not upcalls), a burst injected as the mask changes is not lost, and a
// mask naming a core the machine lacks leaves the threads where they were.
import { availableParallelism } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, NvsRun } from './e2e-harness.ts';
import { needsOvs } from './ovs-tools.ts';

const skipOvs = needsOvs('test/e2e-pmd', ['ovs-vsctl', 'ovs-appctl']);

const MAC = (n: number) => `0a:00:00:00:00:0${n}`;
const flow = (port: string, a: number, b: number) =>
  `in_port=${port},dl_src=${MAC(a)},dl_dst=${MAC(b)},udp,nw_src=10.0.0.${a},nw_dst=10.0.0.${b},tp_src=7,tp_dst=9`;
const TWO_CORES = availableParallelism() >= 2;

/** `pmd thread numa_id 0 core_id N:` headers → [core, port names] per thread, from pmd-rxq-show. */
function rxq(text: string): [string, string[]][] {
  return text
    .split(/^pmd thread /m)
    .slice(1)
    .map((block) => [block.match(/core_id (\S+):/)![1], [...block.matchAll(/port: (\S+)/g)].map((m) => m[1]).sort()]);
}

describe.skipIf(skipOvs)('pmd-cpu-mask changes apply live', () => {
  let nvs: NvsRun;
  const drain = async (port: string) => (await nvs.appctl('netdev-dummy/drain', port)).stdout.split('\n').filter(Boolean);
  const send = async (port: string, ...f: string[]) => {
    const r = await nvs.appctl('netdev-dummy/receive', port, ...f);
    expect(r.code, r.stderr).toBe(0);
  };
  const settle = async () => expect((await nvs.appctl('revalidator/wait')).code).toBe(0);
  const setMask = async (mask: string) => {
    // Without --no-wait: ovs-vsctl returns once nvs-vswitchd has applied it (cur_cfg).
    const r = await nvs.vsctl('set', 'Open_vSwitch', '.', `other_config:pmd-cpu-mask=${mask}`);
    expect(r.code, r.stderr).toBe(0);
  };
  const rxqShow = async () => rxq((await nvs.ovsAppctl('dpif-netdev/pmd-rxq-show')).stdout);
  const megaflows = async () => (await nvs.appctl('dpif/dump-flows', 'br0')).stdout.split('\n').filter(Boolean).map((l) => l.replace(/, packets:.*, actions:/, ', actions:')).sort();
  /** Sum of one pmd-stats-show counter over the threads. */
  const counter = async (name: string) =>
    [...(await nvs.appctl('dpif-netdev/pmd-stats-show')).stdout.matchAll(new RegExp(`  ${name}: (\\d+)`, 'g'))].reduce((n, m) => n + Number(m[1]), 0);

  beforeAll(async () => {
    nvs = new NvsRun();
    await nvs.startDb();
    expect((await nvs.vsctl('--no-wait', 'set', 'Open_vSwitch', '.', 'other_config:pmd-cpu-mask=0x1')).code).toBe(0);
    await nvs.startSwitch();
    const ports = [1, 2, 3].flatMap((n) => ['--', 'add-port', 'br0', `p${n}`, '--', 'set', 'Interface', `p${n}`, 'type=dummy', `ofport_request=${n}`]);
    const r = await nvs.vsctl('add-br', 'br0', '--', 'set', 'Bridge', 'br0', 'datapath_type=netdev', ...ports);
    expect(r.code, r.stderr).toBe(0);
    // Learn both hosts, so that p1 <-> p2 is unicast with installed megaflows.
    await send('p1', flow('p1', 1, 2));
    await send('p2', flow('p2', 2, 1));
    await settle();
    await send('p1', flow('p1', 1, 2));
    await settle();
    for (const p of ['p1', 'p2', 'p3']) await drain(p);
  });
  afterAll(async () => {
    await nvs?.cleanup();
  });

  it('starts on the core of the mask', async () => {
    expect(await rxqShow()).toEqual([['0', ['br0', 'p1', 'p2', 'p3']]]);
  });

  it.runIf(TWO_CORES)('moves the polling thread to another core; ports, megaflows and forwarding stay', async () => {
    const before = await megaflows();
    expect(before.length).toBeGreaterThan(0);
    await setMask('0x2');
    expect(await rxqShow()).toEqual([['1', ['br0', 'p1', 'p2', 'p3']]]);
    expect((await nvs.appctl('dpif-netdev/pmd-stats-show')).stdout).toMatch(/^pmd thread numa_id 0 core_id 1:\n {2}packets received: 0\n/);
    expect(await megaflows()).toEqual(before);
    // Forwarded by the new thread from the megaflows it was handed: hits, no upcall.
    await send('p1', flow('p1', 1, 2), flow('p1', 1, 2));
    await send('p2', flow('p2', 2, 1));
    await settle();
    expect(await drain('p2')).toHaveLength(2);
    expect(await drain('p1')).toHaveLength(1);
    expect(await drain('p3')).toHaveLength(0);
    expect(await counter('miss with success upcall')).toBe(0);
    expect((await counter('megaflow hits')) + (await counter('emc hits'))).toBe(3);
    expect((await nvs.appctl('coverage/show')).stdout).toMatch(/pmd_reconfigure\s+[\d.]+\/sec\s+total: 1\b/);
  });

  it.runIf(TWO_CORES)('spreads the ports over two threads, and loses no packet of a burst sent while the mask changes', async () => {
    const burst = Array.from({ length: 100 }, () => flow('p1', 1, 2));
    await Promise.all([send('p1', ...burst), setMask('0x3')]);
    const threads = await rxqShow();
    expect(threads.map(([core]) => core)).toEqual(['0', '1']);
    expect(threads.flatMap(([, ports]) => ports).sort()).toEqual(['br0', 'p1', 'p2', 'p3']);
    expect(threads.every(([, ports]) => ports.length === 2)).toBe(true);
    let out = 0;
    await eventually(async () => (out += (await drain('p2')).length) >= 100, 'the burst out of p2');
    await settle();
    expect(out + (await drain('p2')).length).toBe(100);
    await send('p2', flow('p2', 2, 1));
    await send('p1', flow('p1', 1, 2));
    await settle();
    expect(await drain('p1')).toHaveLength(1);
    expect(await drain('p2')).toHaveLength(1);
  });

  it('keeps the threads where they are when the mask names a core this machine lacks', async () => {
    const threads = await rxqShow();
    await setMask(`0x1${'0'.repeat(250)}`);
    expect(await rxqShow()).toEqual(threads);
    expect(nvs.log('nvs-vswitchd')).toContain('cannot pin polling threads as pmd-cpu-mask asks; keeping the current threads');
    await send('p1', flow('p1', 1, 2));
    await settle();
    expect(await drain('p2')).toHaveLength(1);
    // Removing the mask: one unpinned thread.
    expect((await nvs.vsctl('remove', 'Open_vSwitch', '.', 'other_config', 'pmd-cpu-mask')).code).toBe(0);
    expect(await rxqShow()).toEqual([['?', ['br0', 'p1', 'p2', 'p3']]]);
    await send('p2', flow('p2', 2, 1));
    await settle();
    expect(await drain('p1')).toHaveLength(1);
  });
});
