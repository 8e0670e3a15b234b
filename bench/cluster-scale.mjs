// Scale simulation of the cluster state on Redis (no datapath): H hosts with
// P ports each (1,000 × 100 = 100,000 ports at full size), every host a real
// ClusterAgent (@nvs/cluster, two ioredis connections each) whose rule sink
// records when a remote MAC's rule arrives. Hosts are spread over W worker
// processes (default 4, so 250 hosts and 500 connections per process), one
// real redis-server started here.
//
// Topology: N = H × netsPerHost / hostsPerNet networks, each served by
// exactly hostsPerNet hosts; a host's ports are spread over its networks.
// After the population is in, churn runs at a fixed rate: half the changes
// add a port (new MAC) on a host already serving that network, half move a
// port's MAC to another host of its network (claimed at the new host, then
// dropped at the old one, as a live migration does).
//
// Measured per change: the time from the change at its host to the MAC's
// rule at every other interested host (the network's hosts, minus the ones
// making the change), p50/p99/max over the changes; and Redis CPU per change
// (INFO cpu, user+sys, during churn, minus the idle rate of the same system:
// heartbeats and reaping), and the messages Redis delivered per change.
//
// Series: Redis CPU per change and messages per change against total hosts
// at a fixed interest (should stay flat: cost follows changes × interested
// hosts), and against hosts per network (should grow linearly).
//
// There is no anchor to run: OVN is not installed here (and its scale
// figures come from other hardware); the README compares with OVN's
// published figures and says where the comparison is not like for like.
//
// Usage: node bench/cluster-scale.mjs [--hosts 1000] [--ports-per-host 100] [--nets-per-host 10]
//        [--hosts-per-net 5] [--changes 1000] [--rate 50] [--workers 4] [--heartbeat-ms 5000] [--ttl-ms 60000]
//        [--rounds 1] [--quick] [--no-series | --series-only] [--json FILE]
import { fork, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Bundles @nvs/cluster (with ioredis) into one CommonJS file, loadable from a plain .mjs. */
async function loadCluster(dir) {
  const { build } = await import('esbuild');
  const out = join(dir, 'cluster.cjs');
  if (!existsSync(out)) {
    await build({ entryPoints: [join(root, 'packages/cluster/src/index.ts')], bundle: true, platform: 'node', format: 'cjs', target: 'node20', outfile: out, logLevel: 'warning' });
  }
  return createRequire(import.meta.url)(out);
}

// ------------------------------------------------------------------ worker

// ------------------------------------------------------------------ parent

async function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

function mac(kind, id) {
  const h = (n) => n.toString(16).padStart(2, '0');
  return `02:${h(kind)}:00:${h((id >> 16) & 255)}:${h((id >> 8) & 255)}:${h(id & 255)}`;
}

const pct = (xs, p) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] : NaN);

class Redis {
  constructor(dir, port) {
    this.port = port;
    this.dir = dir;
  }
  async start() {
    this.proc = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir, '--maxclients', '20000'], { stdio: 'ignore' });
    for (let i = 0; i < 100; i++) {
      if ((await this.cli('ping').catch(() => '')).trim() === 'PONG') return;
      await sleep(50);
    }
    throw new Error('redis-server did not start');
  }
  cli(...args) {
    return new Promise((resolve, reject) => {
      const p = spawn('redis-cli', ['-p', String(this.port), ...args]);
      let out = '';
      p.stdout.on('data', (d) => (out += d));
      p.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`redis-cli ${args.join(' ')}: ${code}`))));
    });
  }
  async stats() {
    const text = await this.cli('info', 'all');
    const get = (k) => Number(new RegExp(`^${k}:([\\d.]+)`, 'm').exec(text)?.[1] ?? NaN);
    // Messages delivered by PUBLISH: the publish calls and, per channel subscriber, one write; Redis counts commands.
    const publishCalls = Number(/^cmdstat_publish:calls=(\d+)/m.exec(text)?.[1] ?? 0);
    // Bytes Redis wrote to its clients: the fan-out of each change, counted, not timed, so a loaded machine does
    // not blur it (CPU and time inside commands both grow when Redis is preempted).
    return { cpu: get('used_cpu_user') + get('used_cpu_sys'), outBytes: get('total_net_output_bytes'), publishCalls, clients: get('connected_clients'), memory: get('used_memory') };
  }
  stop() {
    this.proc?.kill('SIGKILL');
  }
}

/** One simulated cluster: start, populate, idle, churn; returns its figures. */
async function runPoint(cfg, dir) {
  const { hosts: H, portsPerHost: P, netsPerHost: K, hostsPerNet: S, changes: C, rate, workers: W } = cfg;
  const nets = Math.floor((H * K) / S);
  if ((H * K) % S !== 0) throw new Error('hosts × nets-per-host must be a multiple of hosts-per-net');
  // A host serves a network by having a port on it: fewer ports than networks would leave some unserved.
  if (P < K) throw new Error('ports-per-host must be at least nets-per-host');
  // Net n is served by hosts n·S … n·S+S-1 (mod H): every net has S distinct hosts, every host K nets.
  const netHosts = Array.from({ length: nets }, (_, n) => Array.from({ length: S }, (_, i) => (n * S + i) % H));
  const hostNets = Array.from({ length: H }, () => []);
  netHosts.forEach((hs, n) => hs.forEach((h) => hostNets[h].push(n + 1)));
  let nextPort = 0;
  const hostId = (h) => `h${h}`;
  const hostIp = (h) => `10.${(h >> 16) & 255}.${(h >> 8) & 255}.${h & 255}`;
  const hostPorts = Array.from({ length: H }, (_, h) => Array.from({ length: P }, (_, j) => ({ name: `p${nextPort}`, ofport: j + 1, vni: hostNets[h][j % K], macs: [mac(0, nextPort++)] })));
  const redis = new Redis(dir, await freePort());
  await redis.start();
  const children = [];
  try {
    // Workers: hosts dealt round robin.
    for (let w = 0; w < W; w++) {
      const c = fork(fileURLToPath(import.meta.url), ['--worker', dir], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: ['--max-old-space-size=4096'] });
      c.inbox = [];
      c.waiters = [];
      c.on('message', (m) => {
        const i = c.waiters.findIndex((x) => x.cmd === m.cmd);
        if (i >= 0) c.waiters.splice(i, 1)[0].resolve(m);
        else c.inbox.push(m);
      });
      children.push(c);
    }
    const expect = (c, cmd) =>
      new Promise((resolve) => {
        const i = c.inbox.findIndex((m) => m.cmd === cmd);
        if (i >= 0) resolve(c.inbox.splice(i, 1)[0]);
        else c.waiters.push({ cmd, resolve });
      });
    const workerOf = (h) => children[h % W];
    await Promise.all(children.map((c) => expect(c, 'loaded')));
    const t0 = now();
    children.forEach((c, w) => {
      const hs = [];
      for (let h = w; h < H; h += W) hs.push({ id: hostId(h), ip: hostIp(h), ports: hostPorts[h].map((p) => ({ ...p })) });
      c.send({ cmd: 'init', redis: `redis://127.0.0.1:${redis.port}`, hosts: hs, heartbeatMs: cfg.heartbeatMs, ttlMs: cfg.ttlMs });
    });
    await Promise.all(children.map((c) => expect(c, 'ready')));
    // Populated when Redis holds every location and the hosts' rule changes have stopped.
    for (;;) {
      const n = Number((await redis.cli('eval', "local n = 0 for _, k in ipairs(redis.call('keys', 'nvs:{net:*}:locs')) do n = n + redis.call('hlen', k) end return n", '0')).trim());
      if (n >= H * P) break;
      await sleep(500);
    }
    /** Waits until the hosts' rule changes have stopped for `ms`: everything has spread as far as it will. */
    const quiet = async (ms) => {
      for (let last = -1; ; await sleep(ms)) {
        children.forEach((c) => c.send({ cmd: 'applies' }));
        const total = (await Promise.all(children.map((c) => expect(c, 'applies')))).reduce((s, m) => s + m.applies, 0);
        if (total === last) return;
        last = total;
      }
    };
    await quiet(1000);
    const populateS = (now() - t0) / 1000;
    // Idle: heartbeats and reaping only.
    // Two heartbeat periods, so that every host beats in it as often as in any other window.
    const idleMs = Math.min(2 * cfg.heartbeatMs, 10_000);
    const i0 = await redis.stats();
    await sleep(idleMs);
    const i1 = await redis.stats();
    const idleCpuPerS = (i1.cpu - i0.cpu) / (idleMs / 1000);
    const idleBytesPerS = (i1.outBytes - i0.outBytes) / (idleMs / 1000);
    // Churn at a fixed rate.
    const ops = [];
    let seed = 12345;
    const rnd = (n) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const c0 = await redis.stats();
    const tc0 = now();
    const pending = [];
    const touched = new Map();
    for (let i = 0; i < C; i++) {
      const due = tc0 + (i * 1000) / rate;
      const wait = due - now();
      if (wait > 1) await sleep(wait);
      const id = i;
      // A move takes a MAC of the churn untouched for 10 s, so that no later change overtakes it before it has
      // spread (an overtaken change never shows everywhere); when there is none, the change is an add.
      let prev;
      for (let tries = 0; i % 2 === 1 && !prev && tries < 20; tries++) {
        const cand = ops[rnd(ops.length)];
        if (now() - (touched.get(cand.mac) ?? 0) > 10_000) prev = cand;
      }
      if (!prev) {
        // Add a port on a host of a random network.
        const n = rnd(nets);
        const h = netHosts[n][rnd(S)];
        const port = { name: `c${i}`, ofport: 5000 + i, vni: n + 1, macs: [mac(1, i)] };
        hostPorts[h].push(port);
        ops.push({ id, mac: port.macs[0], net: n + 1, interested: netHosts[n].filter((x) => x !== h).map(hostId), target: hostIp(h) });
        workerOf(h).send({ cmd: 'add', id, host: hostId(h), port });
        pending.push(expect(workerOf(h), 'done'));
      } else {
        // Move a MAC added earlier in the churn (a port of ours, so its host is known) to another host of its network.
        const n = prev.net - 1;
        const from = netHosts[n].find((x) => hostPorts[x].some((p) => p.macs[0] === prev.mac));
        const choices = netHosts[n].filter((x) => x !== from);
        const to = choices[rnd(choices.length)];
        const port = { name: `m${i}`, ofport: 5000 + i, vni: prev.net, macs: [prev.mac] };
        hostPorts[to].push(port);
        hostPorts[from] = hostPorts[from].filter((p) => p.macs[0] !== prev.mac);
        ops.push({ id, mac: prev.mac, net: prev.net, interested: netHosts[n].filter((x) => x !== from && x !== to).map(hostId), target: hostIp(to), move: true });
        workerOf(to).send({ cmd: 'add', id, host: hostId(to), port });
        pending.push(expect(workerOf(to), 'done'));
        workerOf(from).send({ cmd: 'remove', host: hostId(from), mac: prev.mac });
      }
      touched.set(ops[ops.length - 1].mac, now());
    }
    const dones = await Promise.all(pending);
    const startOf = new Map(dones.map((d) => [d.id, d.t]));
    await quiet(2000);
    const c1 = await redis.stats();
    const churnS = (now() - tc0) / 1000;
    children.forEach((c) => c.send({ cmd: 'report' }));
    const arrivals = (await Promise.all(children.map((c) => expect(c, 'report')))).flatMap((m) => m.arrivals);
    // Per change: the latest arrival of its MAC, pointing at its new host, at each interested host, after it started.
    const byKey = new Map();
    for (const [m, h, ip, t] of arrivals) {
      const k = `${m} ${h} ${ip}`;
      (byKey.get(k) ?? byKey.set(k, []).get(k)).push(t);
    }
    const lat = [];
    let missing = 0;
    for (const op of ops) {
      const t = startOf.get(op.id);
      let worst = 0;
      let ok = true;
      for (const h of op.interested) {
        const at = (byKey.get(`${op.mac} ${h} ${op.target}`) ?? []).filter((x) => x >= t).sort((a, b) => a - b)[0];
        if (at === undefined) ok = false;
        else worst = Math.max(worst, at - t);
      }
      if (ok) lat.push(worst);
      else missing++;
    }
    const cpuPerChange = (c1.cpu - c0.cpu - idleCpuPerS * churnS) / C;
    const bytesPerChange = (c1.outBytes - c0.outBytes - idleBytesPerS * churnS) / C;
    const messagesPerChange = (c1.publishCalls - c0.publishCalls) / C;
    const deliveriesPerChange = ops.reduce((s, o) => s + o.interested.length, 0) / C;
    children.forEach((c) => c.send({ cmd: 'stop' }));
    await Promise.all(children.map((c) => expect(c, 'stopped')));
    return {
      hosts: H, ports: H * P, nets, hostsPerNet: S, populateS, idleCpuPerS, churnS, changes: C, moves: ops.filter((x) => x.move).length,
      p50: pct(lat, 50), p99: pct(lat, 99), max: pct(lat, 100), missing,
      cpuPerChangeUs: cpuPerChange * 1e6, bytesPerChange, publishesPerChange: messagesPerChange, interestedPerChange: deliveriesPerChange,
      clients: c1.clients, memoryMiB: c1.memory / 2 ** 20,
    };
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    redis.stop();
  }
}

async function main() {
  const { values: o } = parseArgs({
    options: {
      hosts: { type: 'string' }, 'ports-per-host': { type: 'string' }, 'nets-per-host': { type: 'string' }, 'hosts-per-net': { type: 'string' },
      changes: { type: 'string' }, rate: { type: 'string' }, workers: { type: 'string' }, rounds: { type: 'string' },
      'heartbeat-ms': { type: 'string' }, 'ttl-ms': { type: 'string' },
      quick: { type: 'boolean' }, 'no-series': { type: 'boolean' }, 'series-only': { type: 'boolean' }, json: { type: 'string' },
    },
  });
  const quick = o.quick ?? false;
  const base = {
    hosts: Number(o.hosts ?? (quick ? 200 : 1000)),
    portsPerHost: Number(o['ports-per-host'] ?? (quick ? 20 : 100)),
    netsPerHost: Number(o['nets-per-host'] ?? 10),
    hostsPerNet: Number(o['hosts-per-net'] ?? 5),
    changes: Number(o.changes ?? (quick ? 300 : 1000)),
    rate: Number(o.rate ?? 50),
    workers: Number(o.workers ?? 4),
    // Hundreds of hosts share each process here: a longer heartbeat and TTL than a real host's (1 s, 5 s) keep a
    // starved process's hosts from being reaped, which would measure the machine, not the design.
    heartbeatMs: Number(o['heartbeat-ms'] ?? 5000),
    ttlMs: Number(o['ttl-ms'] ?? 60000),
  };
  const rounds = Number(o.rounds ?? 1);
  const dir = mkdtempSync(join(tmpdir(), 'nvs-cluster-scale-'));
  const load = [loadavg()[0]];
  const print = (r, cfg = base) =>
    console.log(
      `  ${r.hosts} hosts, ${r.ports.toLocaleString('en-US')} ports, ${r.nets} networks × ${r.hostsPerNet} hosts: populated in ${r.populateS.toFixed(1)} s; ` +
        `${r.changes} changes (${r.moves} moves) at ${cfg.rate}/s, spread after ${r.churnS.toFixed(1)} s: to every interested host p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms, max ${r.max.toFixed(1)} ms` +
        `${r.missing ? `, ${r.missing} never arrived everywhere` : ''}; Redis CPU ${r.cpuPerChangeUs.toFixed(0)} µs per change (idle ${(r.idleCpuPerS * 100).toFixed(1)}% of a core), ${r.bytesPerChange.toFixed(0)} bytes sent, ` +
        `${r.publishesPerChange.toFixed(2)} publishes and ${r.interestedPerChange.toFixed(2)} interested hosts per change; ${r.clients} clients, ${r.memoryMiB.toFixed(0)} MiB`,
    );
  try {
    await loadCluster(dir);
    console.log(
      `cluster scale simulation (${base.workers} worker processes, one redis-server; heartbeat ${base.heartbeatMs} ms, TTL ${base.ttlMs} ms), load average ${loadavg()[0].toFixed(2)}`,
    );
    const main = [];
    for (let r = 0; r < (o['series-only'] ? 0 : rounds); r++) {
      const res = await runPoint(base, dir);
      print(res);
      main.push(res);
    }
    const series = [];
    if (!o['no-series']) {
      // The cost per change does not depend on how many ports exist: one port per network of a host (so that it
      // serves each of them) keeps each point short.
      // Heartbeats every 30 s: the idle rate, subtracted, is then small beside the changes' cost.
      const small = { ...base, portsPerHost: Math.min(base.portsPerHost, base.netsPerHost), heartbeatMs: 30_000, ttlMs: 600_000, rate: Math.max(base.rate, 100), changes: Math.max(base.changes, 1000) };
      console.log(`series: total hosts at ${base.hostsPerNet} hosts per network (cost should stay flat)`);
      const byHosts = [];
      for (const h of quick ? [50, 100, 200] : [250, 500, 1000]) {
        const r = await runPoint({ ...small, hosts: h }, dir);
        print(r, small);
        byHosts.push(r);
      }
      console.log(`series: hosts per network at ${base.hosts} hosts (cost should grow linearly)`);
      const byInterest = [];
      for (const s of [2, 5, 10, 20]) {
        const r = await runPoint({ ...small, hostsPerNet: s }, dir);
        print(r, small);
        byInterest.push(r);
      }
      series.push(
        { name: 'redis-cpu-vs-hosts', x: 'hosts', y: 'Redis CPU µs per change', better: 'lower', lines: { nvs: byHosts.map((r) => [r.hosts, r.cpuPerChangeUs]) } },
        { name: 'redis-cpu-vs-hosts-per-net', x: 'hosts per network', y: 'Redis CPU µs per change', better: 'lower', lines: { nvs: byInterest.map((r) => [r.hostsPerNet, r.cpuPerChangeUs]) } },
        { name: 'redis-bytes-vs-hosts', x: 'hosts', y: 'bytes Redis sends per change', better: 'lower', lines: { nvs: byHosts.map((r) => [r.hosts, r.bytesPerChange]) } },
        { name: 'redis-bytes-vs-hosts-per-net', x: 'hosts per network', y: 'bytes Redis sends per change', better: 'lower', lines: { nvs: byInterest.map((r) => [r.hostsPerNet, r.bytesPerChange]) } },
        { name: 'latency-p99-vs-hosts', x: 'hosts', y: 'p99 ms to every interested host', better: 'lower', lines: { nvs: byHosts.map((r) => [r.hosts, r.p99]) } },
        { name: 'latency-p99-vs-hosts-per-net', x: 'hosts per network', y: 'p99 ms to every interested host', better: 'lower', lines: { nvs: byInterest.map((r) => [r.hostsPerNet, r.p99]) } },
      );
    }
    load.push(loadavg()[0]);
    console.log(`load average at the end ${load[1].toFixed(2)}`);
    if (o.json) {
      const absent = 'absent: OVN (ovn-northd/ovn-controller) is not installed; its published figures are compared in the README';
      const metric = (name, label, unit, key) => ({ name, label, unit, better: 'lower', nvs: { redis: main.map((r) => r[key]) }, anchors: { ovn: absent } });
      writeFileSync(
        o.json,
        JSON.stringify(
          {
            scenario: 'cluster-scale',
            title: `Cluster state on Redis: ${base.hosts} hosts, ${(base.hosts * base.portsPerHost).toLocaleString('en-US')} ports, churn of adds and moves`,
            rounds,
            load,
            metrics: [
              metric('location-p50', 'change to every interested host, p50', 'ms', 'p50'),
              metric('location-p99', 'change to every interested host, p99', 'ms', 'p99'),
              metric('redis-cpu-per-change', 'Redis CPU per change (idle rate subtracted)', 'µs', 'cpuPerChangeUs'),
              metric('redis-bytes-per-change', 'bytes Redis sends per change (idle rate subtracted)', 'B', 'bytesPerChange'),
              metric('populate', 'time to publish and spread every port', 's', 'populateS'),
            ],
            series,
          },
          null,
          2,
        ),
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function worker() {
  const dir = process.argv[3];
  const { ClusterAgent, parseRedisAddress } = await loadCluster(dir);
  const silent = { info() {}, warn() {}, error() {} };
  const agents = new Map();
  const ports = new Map(); // host → LocalPort[]
  let arrivals = [];
  let applies = 0;
  const RULE = /reg0=(\d+),dl_dst=([0-9a-f:]+),actions=set_field:\d+->tun_id,set_field:([\d.]+)->tun_dst/;
  const state = (h) => ({ ports: ports.get(h), tunnel: { name: 'tun0', ofport: 1000 }, problems: [] });
  process.on('message', async (m) => {
    if (m.cmd === 'init') {
      for (const h of m.hosts) {
        ports.set(h.id, h.ports);
        const sink = {
          apply(_b, add) {
            applies++;
            const t = now();
            for (const line of add) {
              const r = RULE.exec(line);
              // Only the churn's MACs (second byte 01) are timed.
              if (r && r[2].startsWith('02:01:')) arrivals.push([r[2], h.id, r[3], t]);
            }
          },
        };
        const a = new ClusterAgent({
          settings: { redis: parseRedisAddress(m.redis), hostId: h.id, tunnelIp: h.ip, encap: 'vxlan', bridge: 'br-int' },
          log: silent,
          sink,
          heartbeatMs: m.heartbeatMs,
          ttlMs: m.ttlMs,
        });
        agents.set(h.id, a);
        a.start();
      }
      // Wait until every agent is connected before publishing anything.
      for (;;) {
        let up = 0;
        for (const a of agents.values()) if (a.connected) up++;
        if (up === agents.size) break;
        await sleep(200);
      }
      for (const [id, a] of agents) a.setLocal(state(id));
      process.send({ cmd: 'ready' });
    } else if (m.cmd === 'applies') {
      process.send({ cmd: 'applies', applies });
    } else if (m.cmd === 'add') {
      const t = now();
      ports.get(m.host).push(m.port);
      agents.get(m.host).setLocal(state(m.host));
      process.send({ cmd: 'done', id: m.id, t });
    } else if (m.cmd === 'remove') {
      ports.set(m.host, ports.get(m.host).filter((p) => p.macs[0] !== m.mac));
      agents.get(m.host).setLocal(state(m.host));
    } else if (m.cmd === 'report') {
      process.send({ cmd: 'report', arrivals });
      arrivals = [];
    } else if (m.cmd === 'stop') {
      for (const a of agents.values()) await a.stop();
      process.send({ cmd: 'stopped' });
      process.exit(0);
    }
  });
  process.send({ cmd: 'loaded' });
}


if (process.argv[2] === '--worker') await worker();
else await main();
