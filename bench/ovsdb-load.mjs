#!/usr/bin/env node
// OVSDB under load (issue 17): K clients at once, each on its own Unix-socket
// connection with a `monitor` on Interface and Port (name), each committing
// add-port transactions one at a time (insert Interface + insert Port, mutate
// Bridge.ports) — the scenario of /work/shared/anchors/ovsdb-many-clients.py —
// against nvs-dbserver and OVS's ovsdb-server alternately (A B A B), for
// K = 1, 10, 50, 200. Printed per K and server: aggregate txn/s, p50/p99
// commit-to-reply latency, p99 commit-to-last-notification latency (until
// every one of the K monitors has the commit), server CPU per transaction,
// server RSS per connection, and this client process's own CPU (all K
// connections live in this one process: when it is near 100% of a core, the
// client bounds the rate, not the server).
// Each K gets two fresh servers, warmed up alike (the same scenario, 10
// clients, --warmup transactions); after every run the ports
// are cleared, so every run starts from one bridge and the monitors' initial
// contents stay small.
// Usage: npm run build:ts && node bench/ovsdb-load.mjs [--clients 1,10,50,200] [--ports 0,10000] [--rounds N] [--txns N]
//          [--warmup N] [--quick] [--json FILE] [--nvs-bin FILE] [--nvs-node-args="--cpu-prof --cpu-prof-dir=DIR"]
//          [--servers nvs,ovs] [--alloc-profile]
// --ports: bridge sizes, each a separate set of runs: the bridge keeps that many ports through every run, so each
//   mutation of Bridge.ports meets a big set (default both 0 — an empty bridge — and 10,000);
// --txns: transactions per run, split over the K clients; --quick: K = 1, 10, 50, 1,000 transactions, bridges of 0 and
//   1,000 ports, 2 rounds; --json FILE: the figures in the bench contract's form (bench-contract.md);
// --servers nvs: nvs-dbserver alone, e.g. to profile it; --alloc-profile: nvs-dbserver alone under V8's sampling heap
//   profiler (bench/lib/alloc-profile.cjs), printing the bytes it allocates per commit and where.
import { mkdtempSync, readFileSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { connect } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { addPortOps, cpuSeconds, median, ROOT as root, rssKiB, startServer } from './lib/ovsdb-servers.mjs';

const { values: opt } = parseArgs({
  options: {
    clients: { type: 'string' },
    rounds: { type: 'string' },
    txns: { type: 'string' },
    warmup: { type: 'string' },
    quick: { type: 'boolean', default: false },
    json: { type: 'string' },
    'nvs-bin': { type: 'string' },
    'nvs-node-args': { type: 'string', default: '' },
    servers: { type: 'string' },
    ports: { type: 'string' },
    'alloc-profile': { type: 'boolean', default: false },
  },
});
const quick = opt.quick;
const KS = (opt.clients ?? (quick ? '1,10,50' : '1,10,50,200')).split(',').map(Number);
const PORT_COUNTS = (opt.ports ?? (quick ? '0,1000' : '0,10000')).split(',').map(Number);
const ROUNDS = Number(opt.rounds ?? (quick ? 2 : 3));
const TXNS = Number(opt.txns ?? (quick ? 1000 : 3000));
const WARMUP = Number(opt.warmup ?? (quick ? 1000 : 3000));
const ALLOC = opt['alloc-profile'];
let KINDS = (opt.servers ?? (ALLOC ? 'nvs' : 'nvs,ovs')).split(',');
/** Why ovsdb-server cannot be the anchor here, if it cannot. */
let ovsAbsent;
try {
  execFileSync('ovsdb-server', ['--version'], { stdio: 'ignore' });
} catch {
  ovsAbsent = 'absent: ovsdb-server is not installed (Debian openvswitch-switch)';
  KINDS = KINDS.filter((k) => k !== 'ovs');
}
const allocFile = join(tmpdir(), `nvs-alloc-${process.pid}.json`);
const nodeArgs = [...opt['nvs-node-args'].split(' ').filter(Boolean), ...(ALLOC ? ['--require', join(root, 'bench', 'lib', 'alloc-profile.cjs')] : [])];
if (ALLOC) process.env.NVS_ALLOC_PROFILE = allocFile;
const nvsBin = opt['nvs-bin'] ?? join(root, 'dist', 'nvs-dbserver.js');
if (!existsSync(nvsBin)) {
  console.error(`${nvsBin} is missing: run "npm run build:ts" first`);
  process.exit(1);
}

const OPEN = 0x7b;
const CLOSE = 0x7d;
const now = () => Number(process.hrtime.bigint()) / 1e6; // ms, monotonic

/**
 * One client connection, kept cheap because at 200 clients this process
 * reads every notification of every commit 200 times: messages are split by
 * counting braces (none of this scenario's strings holds one) and only
 * scanned for what is needed — a reply's id, or the port names a
 * notification carries — never JSON-parsed, except the replies asked for.
 */
class Conn {
  constructor(sock, onNotify) {
    this.sock = sock;
    this.onNotify = onNotify;
    this.waiting = new Map();
    this.next = 0;
    this.depth = 0;
    this.partial = [];
    sock.on('data', (chunk) => this.onData(chunk));
  }
  static open(path, onNotify = () => {}) {
    return new Promise((resolve, reject) => {
      const s = connect(path, () => resolve(new Conn(s, onNotify)));
      s.once('error', reject);
    });
  }
  onData(chunk) {
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i];
      if (b === OPEN) this.depth++;
      else if (b === CLOSE && --this.depth === 0) {
        let msg = chunk.subarray(start, i + 1);
        if (this.partial.length > 0) {
          this.partial.push(msg);
          msg = Buffer.concat(this.partial);
          this.partial = [];
        }
        this.onMessage(msg.toString('latin1'));
        start = i + 1;
      }
    }
    if (start < chunk.length && this.depth > 0) this.partial.push(Buffer.from(chunk.subarray(start)));
  }
  onMessage(text) {
    if (/"method":"update/.test(text)) {
      // One message may carry several commits (ovsdb-server merges updates for a session with a backlog);
      // each row of a commit carries its name (Interface and Port alike): count each name once.
      const names = new Set();
      for (const m of text.matchAll(/"name":"(l[0-9a-z-]+)"/g)) names.add(m[1]);
      for (const name of names) this.onNotify(name);
      return;
    }
    if (/"method":"echo"/.test(text)) {
      const msg = JSON.parse(text);
      this.sock.write(JSON.stringify({ result: msg.params, error: null, id: msg.id }));
      return;
    }
    const m = /"id":(\d+)/.exec(text);
    const w = m && this.waiting.get(Number(m[1]));
    if (!w) return;
    this.waiting.delete(Number(m[1]));
    w(text);
  }
  /** Sends a request; resolves with the reply's text (JSON-parsed when `parse`). */
  call(method, params, parse = true) {
    const id = this.next++;
    return new Promise((resolve) => {
      this.waiting.set(id, parse ? (t) => resolve(JSON.parse(t)) : resolve);
      this.sock.write(JSON.stringify({ method, params, id }));
    });
  }
  close() {
    this.sock.destroy();
  }
}

async function transact(c, ops) {
  const r = await c.call('transact', ['Open_vSwitch', ...ops]);
  const bad = r.error ?? r.result.find((x) => x && x.error);
  if (bad) throw new Error(`transaction failed: ${JSON.stringify(bad)}`);
  return r.result;
}

async function startBenchServer(kind, dir) {
  const { child, sock } = await startServer(kind, dir, { nvsBin, nodeArgs });
  const c = await Conn.open(sock);
  const r = await transact(c, [
    { op: 'insert', table: 'Bridge', row: { name: 'br0' }, 'uuid-name': 'b' },
    { op: 'insert', table: 'Open_vSwitch', row: { bridges: ['named-uuid', 'b'] } },
  ]);
  c.close();
  return { kind, child, sock, bridge: r[0].uuid };
}

/** Removes the ports added since the preload (Port and Interface rows go with them: they are not root tables). */
async function clearPorts(server) {
  const c = await Conn.open(server.sock);
  await transact(c, [{ op: 'update', table: 'Bridge', where: [], row: { ports: ['set', server.preloaded ?? []] } }]);
  c.close();
}

/** Gives the bridge `PORTS` ports that stay for every run (a deployment's bridge is not empty), 100 per transaction. */
async function preloadPorts(server, PORTS) {
  const c = await Conn.open(server.sock);
  for (let i = 0; i < PORTS; i += 100) {
    const ops = [];
    for (let j = i; j < Math.min(PORTS, i + 100); j++) ops.push(...addPortOps(server.bridge, `pre${j}`, `${j}`));
    await transact(c, ops);
  }
  const r = await transact(c, [{ op: 'select', table: 'Bridge', where: [], columns: ['ports'] }]);
  const ports = r[0].rows[0].ports;
  server.preloaded = ports[0] === 'set' ? ports[1] : [ports];
  c.close();
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];

/** One run: K monitoring clients, M transactions each. */
async function runLoad(server, K, M, tag) {
  // name → [sent at, notifications still to come]; each commit reaches all K monitors.
  const inflight = new Map();
  const fanout = [];
  const onNotify = (name) => {
    const f = inflight.get(name);
    if (!f) return;
    if (--f[1] === 0) {
      fanout.push(now() - f[0]);
      inflight.delete(name);
    }
  };
  const rss0 = rssKiB(server.child.pid);
  const conns = [];
  for (let k = 0; k < K; k++) {
    const c = await Conn.open(server.sock, onNotify);
    await c.call('monitor', ['Open_vSwitch', 'm', { Interface: { columns: ['name'] }, Port: { columns: ['name'] } }], false);
    conns.push(c);
  }
  // Per connection: what K sessions with their monitors added, before any transaction.
  const rssPerConnKiB = (rssKiB(server.child.pid) - rss0) / K;
  const latency = [];
  const alloc = ALLOC && server.kind === 'nvs';
  if (alloc) await dumpAllocations(server);
  const cpu0 = cpuSeconds(server.child.pid);
  const clientCpu0 = process.cpuUsage();
  const t0 = now();
  await Promise.all(
    conns.map(async (c, k) => {
      for (let i = 0; i < M; i++) {
        const name = `l${tag}-${k}-${i}`;
        const t = now();
        inflight.set(name, [t, K]);
        const text = await c.call('transact', ['Open_vSwitch', ...addPortOps(server.bridge, name)], false);
        if (text.includes('"error":{') || text.includes('"error":"')) throw new Error(`transaction failed: ${text}`);
        latency.push(now() - t);
      }
    }),
  );
  // The last notifications may trail the last reply.
  for (let i = 0; i < 200 && inflight.size > 0; i++) await new Promise((r) => setTimeout(r, 5));
  const seconds = (now() - t0) / 1000;
  const clientCpu = process.cpuUsage(clientCpu0);
  const cpu = cpuSeconds(server.child.pid) - cpu0;
  const allocated = alloc ? await dumpAllocations(server) : undefined;
  for (const c of conns) c.close();
  if (inflight.size > 0) throw new Error(`${inflight.size} commits never reached every monitor: ${JSON.stringify([...inflight].slice(0, 3))}`);
  latency.sort((a, b) => a - b);
  fanout.sort((a, b) => a - b);
  const n = K * M;
  return {
    rate: n / seconds,
    p50: pct(latency, 0.5),
    p99: pct(latency, 0.99),
    fanout99: pct(fanout, 0.99),
    cpuUs: (cpu / n) * 1e6,
    rssPerConnKiB,
    clientCpu: (clientCpu.user + clientCpu.system) / 1e6 / seconds,
    allocated: allocated && { bytesPerTxn: allocated.totalBytes / n, top: allocated.top },
  };
}

/** Asks the profiled server for what it allocated since the last ask (see bench/lib/alloc-profile.cjs). */
async function dumpAllocations(server) {
  rmSync(allocFile, { force: true });
  server.child.kill('SIGUSR2');
  for (let i = 0; i < 400 && !existsSync(allocFile); i++) await new Promise((r) => setTimeout(r, 25));
  await new Promise((r) => setTimeout(r, 50));
  return JSON.parse(readFileSync(allocFile, 'utf8'));
}

/** The same for both servers: the scenario itself with 10 clients (a daemon serves warm: V8 has compiled the commit and update paths). */
async function warmUp(server) {
  await runLoad(server, 10, Math.ceil(WARMUP / 10), 'warm');
  await clearPorts(server);
}

const dir = mkdtempSync(join(tmpdir(), 'nvs-bench-ovsdb-load-'));
const load = [loadavg()[0]];
const metrics = [];
const SERVER_NAME = { nvs: 'nvs-dbserver', ovs: 'ovsdb-server' };
/** One metric of the bench contract: per-round values of nvs-dbserver and of the ovsdb-server anchor. */
function addMetric(name, label, unit, better, runs, f, goal) {
  metrics.push({
    name,
    label,
    unit,
    better,
    nvs: { 'nvs-dbserver': runs.nvs.map(f) },
    anchors: { 'ovsdb-server': ovsAbsent ?? runs.ovs.map(f) },
    ...(goal ? { goal: { variant: 'nvs-dbserver', anchor: 'ovsdb-server', ratio: goal } } : {}),
  });
}
const table = [];
try {
  for (const PORTS of PORT_COUNTS) {
    console.log(`ovsdb under load: K clients each with a monitor on Interface and Port (name), ${TXNS} add-port transactions per run split over them, on a bridge with ${PORTS} ports; ${ROUNDS} alternating rounds per K, medians (spread in brackets); load average ${loadavg()[0].toFixed(1)}`);
    for (const K of KS) {
      const M = Math.max(1, Math.round(TXNS / K));
      const servers = [];
      for (const kind of KINDS) servers.push(await startBenchServer(kind, join(dir, `${kind}-${PORTS}-${K}`)));
      for (const s of servers) {
        await warmUp(s);
        await preloadPorts(s, PORTS);
      }
      const runs = { nvs: [], ovs: [] };
      for (let round = 0; round < ROUNDS; round++) {
        for (const s of servers) {
          runs[s.kind].push(await runLoad(s, K, M, `${round}`));
          await clearPorts(s);
        }
      }
      for (const s of servers) s.child.kill('SIGTERM');
      const stat = (kind, f) => median(runs[kind].map(f));
      const spread = (kind, f, d = 0) => {
        const xs = runs[kind].map(f);
        return `${Math.min(...xs).toFixed(d)}–${Math.max(...xs).toFixed(d)}`;
      };
      for (const kind of KINDS) {
        console.log(
          `  K=${String(K).padStart(3)} ${SERVER_NAME[kind]}  ${stat(kind, (r) => r.rate).toFixed(0).padStart(6)} txn/s [${spread(kind, (r) => r.rate)}]` +
            `  reply p50 ${stat(kind, (r) => r.p50).toFixed(2)} p99 ${stat(kind, (r) => r.p99).toFixed(2)} ms [${spread(kind, (r) => r.p99, 2)}]` +
            `  last notification p99 ${stat(kind, (r) => r.fanout99).toFixed(2)} ms` +
            `  CPU ${stat(kind, (r) => r.cpuUs).toFixed(0)} us/txn  RSS ${stat(kind, (r) => r.rssPerConnKiB).toFixed(0)} KiB/conn` +
            `  client CPU ${(stat(kind, (r) => r.clientCpu) * 100).toFixed(0)}%`,
        );
      }
      if (ALLOC) {
        const last = runs.nvs[runs.nvs.length - 1].allocated;
        console.log(`  K=${String(K).padStart(3)} nvs-dbserver allocates ${(stat('nvs', (r) => r.allocated.bytesPerTxn) / 1024).toFixed(1)} KiB per commit (median of rounds); last round's top allocators (self KiB per commit):`);
        for (const [fn, bytes] of last.top.slice(0, 30)) console.log(`      ${(bytes / (K * M) / 1024).toFixed(2).padStart(7)}  ${fn}`);
      }
      const where = `${PORTS === 0 ? 'empty bridge' : `bridge of ${PORTS} ports`}, ${K} client${K === 1 ? '' : 's'}`;
      const id = `${PORTS}ports-k${K}`;
      const goal = PORTS === 0 && (K === 10 || K === 50) ? 2 : undefined;
      addMetric(`txn-rate-${id}`, `add-port commits/s, ${where}`, 'txn/s', 'higher', runs, (r) => r.rate, goal);
      addMetric(`reply-p99-${id}`, `commit-to-reply p99, ${where}`, 'ms', 'lower', runs, (r) => r.p99, goal ? 1 : undefined);
      addMetric(`fanout-p99-${id}`, `commit-to-last-notification p99, ${where}`, 'ms', 'lower', runs, (r) => r.fanout99);
      addMetric(`cpu-per-txn-${id}`, `server CPU per commit, ${where}`, 'us', 'lower', runs, (r) => r.cpuUs);
      if (!KINDS.includes('ovs') || !KINDS.includes('nvs')) continue;
      const ratio = stat('nvs', (r) => r.rate) / stat('ovs', (r) => r.rate);
      const ratios = runs.nvs.map((r, i) => r.rate / runs.ovs[i].rate);
      console.log(`  K=${String(K).padStart(3)} ratio nvs/ovs ${ratio.toFixed(2)}x (per round: ${ratios.map((x) => x.toFixed(2)).join(', ')})`);
      table.push({ PORTS, K, ratio, p99: [stat('nvs', (r) => r.p99), stat('ovs', (r) => r.p99)] });
    }
  }
  load.push(loadavg()[0]);
  if (table.length > 0) {
    console.log(`| bridge ports | clients | txn/s nvs/ovs | p99 reply nvs / ovs (ms) |\n|---|---|---|---|`);
    for (const r of table) console.log(`| ${r.PORTS} | ${r.K} | ${r.ratio.toFixed(2)}× | ${r.p99[0].toFixed(2)} / ${r.p99[1].toFixed(2)} |`);
  }
  console.log(`load average ${load.map((x) => x.toFixed(1)).join(' → ')}`);
  if (opt.json) {
    const title = 'OVSDB under load: K clients, each with a monitor, committing add-port transactions';
    writeFileSync(opt.json, JSON.stringify({ scenario: 'ovsdb-load', title, rounds: ROUNDS, load, metrics }, null, 2) + '\n');
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
  rmSync(allocFile, { force: true });
}
