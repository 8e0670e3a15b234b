// Two and three agents against a real redis-server, each with a sink that
// records the bridge's rules: what each host installs follows what the
// others publish, only for the networks it serves.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ClusterAgent, computeFlows, diffFlows, parseRedisAddress, type LocalState } from '../src/index.ts';
import { TestRedis, TestSentinel, until } from './redis-server.ts';

const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** A bridge's cluster rules as the agent leaves them: identity → rule. */
class Rules {
  readonly table = new Map<string, string>();
  applied = 0;
  apply(_bridge: string, add: string[], del: string[], fresh: boolean): void {
    if (fresh) this.table.clear();
    for (const id of del) this.table.delete(id);
    for (const line of add) this.table.set(line.replace(/^cookie=[^,]+,/, '').replace(/,actions=.*$/, ''), line);
    this.applied++;
  }
  actions(id: string): string | undefined {
    return this.table.get(id)?.replace(/^.*,actions=/, '');
  }
}

function agent(redis: { url: string }, hostId: string, ip: string, opts: { ttlMs?: number } = {}) {
  const rules = new Rules();
  const a = new ClusterAgent({
    settings: { redis: parseRedisAddress(redis.url), hostId, tunnelIp: ip, encap: 'vxlan', bridge: 'br-int' },
    log: silent,
    sink: rules,
    heartbeatMs: 100,
    ttlMs: opts.ttlMs ?? 600,
  });
  a.start();
  return { a, rules };
}

const TUN = { name: 'tun0', ofport: 9 };
const state = (ports: LocalState['ports']): LocalState => ({ ports, tunnel: TUN, problems: [] });
const toHost = (vni: number, ip: string) => `set_field:${vni}->tun_id,set_field:${ip}->tun_dst,output:9`;

describe('flow rules from the state', () => {
  it('sends known MACs straight, floods to the network hosts only, and keeps tunnel traffic local', () => {
    const f = computeFlows({
      tunnelPort: 9,
      nets: new Map([
        [100, { ports: [{ ofport: 1, macs: ['02:00:00:00:00:01'] }, { ofport: 2, macs: [] }], hosts: new Map([['h2', '192.0.2.2'], ['h3', '192.0.2.3']]), remote: new Map([['02:00:00:00:00:02', '192.0.2.2']]) }],
      ]),
    });
    expect(f.get('table=0,priority=100,in_port=1')).toContain('actions=set_field:100->reg0,resubmit(,40)');
    expect(f.get('table=0,priority=100,in_port=9,tun_id=100')).toContain('actions=set_field:100->reg0,resubmit(,41)');
    expect(f.get('table=0,priority=99,in_port=9')).toMatch(/actions=drop$/);
    expect(f.get('table=40,priority=100,reg0=100,dl_dst=02:00:00:00:00:01')).toMatch(/actions=output:1$/);
    expect(f.get('table=40,priority=100,reg0=100,dl_dst=02:00:00:00:00:02')).toMatch(/actions=set_field:100->tun_id,set_field:192.0.2.2->tun_dst,output:9$/);
    expect(f.get('table=40,priority=10,reg0=100')).toMatch(
      /actions=output:1,output:2,set_field:100->tun_id,set_field:192.0.2.2->tun_dst,output:9,set_field:192.0.2.3->tun_dst,output:9$/,
    );
    // Split horizon: from the tunnel, never back out of it.
    expect(f.get('table=41,priority=10,reg0=100')).toMatch(/actions=output:1,output:2$/);
    expect(f.get('table=41,priority=100,reg0=100,dl_dst=02:00:00:00:00:01')).toMatch(/actions=output:1$/);
    for (const line of f.values()) expect(line.startsWith('cookie=0x6e76730001,')).toBe(true);
  });

  it('diffs two sets into adds and strict deletes', () => {
    const a = new Map([['x', 'X1'], ['y', 'Y']]);
    const b = new Map([['x', 'X2'], ['z', 'Z']]);
    expect(diffFlows(a, b)).toEqual({ add: ['X2', 'Z'], del: ['y'] });
    expect(diffFlows(b, b)).toEqual({ add: [], del: [] });
  });
});

describe('agents over a real redis-server', () => {
  let redis: TestRedis;
  const running: ClusterAgent[] = [];
  const start = (...args: Parameters<typeof agent>) => {
    const r = agent(...args);
    running.push(r.a);
    return r;
  };

  beforeAll(async () => {
    redis = await TestRedis.start();
  });
  afterEach(async () => {
    for (const a of running.splice(0)) await a.stop();
    await redis.stop();
    await redis.start();
  });
  afterAll(async () => {
    await redis.close();
  });

  const M1 = '02:00:00:00:00:01';
  const M2 = '02:00:00:00:00:02';
  const M3 = '02:00:00:00:00:03';

  it('each host learns the others of its networks, and nothing of the others', async () => {
    const h1 = start(redis, 'h1', '192.0.2.1');
    const h2 = start(redis, 'h2', '192.0.2.2');
    const h3 = start(redis, 'h3', '192.0.2.3');
    h1.a.setLocal(state([{ name: 'vm1', ofport: 1, vni: 100, macs: [M1] }]));
    h2.a.setLocal(state([{ name: 'vm2', ofport: 1, vni: 100, macs: [M2] }]));
    h3.a.setLocal(state([{ name: 'vm3', ofport: 1, vni: 200, macs: [M3] }]));
    await until(() => h1.rules.actions(`table=40,priority=100,reg0=100,dl_dst=${M2}`) === toHost(100, '192.0.2.2'), 5000, 'h1 knows M2');
    await until(() => h2.rules.actions(`table=40,priority=100,reg0=100,dl_dst=${M1}`) === toHost(100, '192.0.2.1'), 5000, 'h2 knows M1');
    // Floods of network 100 go to h2 only from h1; h3 (network 200) hears nothing of 100 and floods nowhere.
    expect(h1.rules.actions('table=40,priority=10,reg0=100')).toBe(`output:1,${toHost(100, '192.0.2.2')}`);
    await until(() => h3.rules.actions('table=40,priority=10,reg0=200') === 'output:1', 2000, 'h3 floods locally only');
    expect([...h3.rules.table.keys()].some((k) => k.includes('reg0=100') || k.includes(M1) || k.includes(M2))).toBe(false);
    expect([...h1.rules.table.keys()].some((k) => k.includes('200') || k.includes(M3))).toBe(false);
    const show = await h1.a.show();
    expect(show).toMatch(/hosts \(3\):/);
    expect(show).toContain(`${M2} h2 192.0.2.2 version`);
    expect(show).toContain(`${M1} local vm1 published`);
  });

  it('a MAC that moves is found at its newest host, and the old host republishing does not take it back', async () => {
    const h1 = start(redis, 'h1', '192.0.2.1');
    const h2 = start(redis, 'h2', '192.0.2.2');
    const h3 = start(redis, 'h3', '192.0.2.3');
    h1.a.setLocal(state([{ name: 'vm1', ofport: 1, vni: 100, macs: [M1] }]));
    h2.a.setLocal(state([{ name: 'other', ofport: 3, vni: 100, macs: [M2] }]));
    h3.a.setLocal(state([{ name: 'vm3', ofport: 1, vni: 100, macs: [M3] }]));
    const at = (ip: string) => () => h3.rules.actions(`table=40,priority=100,reg0=100,dl_dst=${M1}`) === toHost(100, ip);
    await until(at('192.0.2.1'), 5000, 'h3 finds M1 at h1');
    // The VM comes up on h2 before h1 lets go of it (as a live migration does).
    h2.a.setLocal(state([{ name: 'other', ofport: 3, vni: 100, macs: [M2] }, { name: 'vm1', ofport: 4, vni: 100, macs: [M1] }]));
    await until(at('192.0.2.2'), 5000, 'h3 finds M1 at h2');
    // h1 republishes (as after an outage) with its old version: it loses.
    await redis.stop();
    await until(async () => !(await h1.a.show()).includes('connected for'), 5000, 'h1 sees Redis down');
    await redis.start();
    await until(async () => (await h1.a.show()).includes(`${M1} local vm1 moved to h2`), 8000, 'h1 sees the move');
    await until(at('192.0.2.2'), 5000, 'M1 still at h2');
    // h1 lets go: nothing changes for the others.
    h1.a.setLocal(state([]));
    await new Promise((r) => setTimeout(r, 300));
    expect(at('192.0.2.2')()).toBe(true);
  });

  it('forwarding stays while Redis is down; on return each host reconciles without flushing', async () => {
    const h1 = start(redis, 'h1', '192.0.2.1');
    const h2 = start(redis, 'h2', '192.0.2.2');
    h1.a.setLocal(state([{ name: 'vm1', ofport: 1, vni: 100, macs: [M1] }]));
    h2.a.setLocal(state([{ name: 'vm2', ofport: 1, vni: 100, macs: [M2] }]));
    const known = `table=40,priority=100,reg0=100,dl_dst=${M2}`;
    await until(() => h1.rules.actions(known) === toHost(100, '192.0.2.2'), 5000, 'h1 knows M2');
    const before = new Map(h1.rules.table);
    await redis.stop();
    await new Promise((r) => setTimeout(r, 800));
    expect(h1.rules.table).toEqual(before);
    // A port added while Redis is away switches locally at once; other hosts reach it by flooding until Redis is back.
    h1.a.setLocal(state([{ name: 'vm1', ofport: 1, vni: 100, macs: [M1] }, { name: 'vm5', ofport: 5, vni: 100, macs: [M3] }]));
    await until(() => h1.rules.actions(`table=40,priority=100,reg0=100,dl_dst=${M3}`) === 'output:5', 2000, 'local rule while Redis is down');
    const applied = h1.rules.applied;
    await redis.start();
    await until(() => h2.rules.actions(`table=40,priority=100,reg0=100,dl_dst=${M3}`) === toHost(100, '192.0.2.1'), 8000, 'h2 hears of M3 after the outage');
    // h1's rules did not change on reconnect: nothing to install, so nothing was applied.
    await new Promise((r) => setTimeout(r, 300));
    expect(h1.rules.applied).toBe(applied);
    expect(h1.rules.actions(known)).toBe(toHost(100, '192.0.2.2'));
  });

  it('a host that stops heartbeating is reaped: its locations are withdrawn at the others', async () => {
    const h1 = start(redis, 'h1', '192.0.2.1', { ttlMs: 500 });
    const h2 = agent(redis, 'h2', '192.0.2.2', { ttlMs: 500 });
    h1.a.setLocal(state([{ name: 'vm1', ofport: 1, vni: 100, macs: [M1] }]));
    h2.a.setLocal(state([{ name: 'vm2', ofport: 1, vni: 100, macs: [M2] }]));
    await until(() => h1.rules.actions(`table=40,priority=100,reg0=100,dl_dst=${M2}`) !== undefined, 5000, 'h1 knows M2');
    const t0 = Date.now();
    await h2.a.stop(); // no goodbye: as a host that dies
    await until(() => h1.rules.actions(`table=40,priority=100,reg0=100,dl_dst=${M2}`) === undefined, 5000, 'M2 withdrawn');
    expect(h1.rules.actions('table=40,priority=10,reg0=100')).toBe('output:1');
    // Within ttl + one heartbeat (+ scheduling slack on a loaded machine).
    expect(Date.now() - t0).toBeLessThan(500 + 100 + 1500);
    expect(await h1.a.show()).toMatch(/hosts \(1\):/);
  });
});

describe('through a real redis-sentinel', () => {
  it('finds the master by name and works as with the server itself', async () => {
    const master = await TestRedis.start();
    const sentinel = await TestSentinel.start(master);
    const h1 = agent(sentinel, 'h1', '192.0.2.1');
    const h2 = agent(sentinel, 'h2', '192.0.2.2');
    try {
      h1.a.setLocal(state([{ name: 'vm1', ofport: 1, vni: 7, macs: ['02:00:00:00:07:01'] }]));
      h2.a.setLocal(state([{ name: 'vm2', ofport: 1, vni: 7, macs: ['02:00:00:00:07:02'] }]));
      await until(() => h1.rules.actions('table=40,priority=100,reg0=7,dl_dst=02:00:00:00:07:02') === toHost(7, '192.0.2.2'), 10_000, 'h1 knows vm2 via Sentinel');
      expect(await h1.a.show()).toMatch(/^redis redis-sentinel:\/\/127\.0\.0\.1:\d+\/mymaster: connected/m);
      // The state is in the master Sentinel named.
      expect(await master.cli('hkeys', 'nvs:{net:7}:locs')).toContain('02:00:00:00:07:01');
    } finally {
      await h1.a.stop();
      await h2.a.stop();
      await sentinel.close();
      await master.close();
    }
  }, 30_000);
});
