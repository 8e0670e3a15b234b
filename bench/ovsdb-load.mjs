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
// Usage: npm run build:ts && node bench/ovsdb-load.mjs [--clients 1,10,50,200] [--rounds N] [--txns N] [--warmup N]
//          [--nvs-bin FILE] [--nvs-node-args="--cpu-prof --cpu-prof-dir=DIR"] [--servers nvs,ovs] [--ports N]
// (--txns: transactions per run, split over the K clients; --servers nvs: nvs-dbserver alone, e.g. to profile it;
// --ports N: the bridge keeps N ports through every run, so each mutation of Bridge.ports meets a big set.)
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { contractOptions, Results, roundsOf } from './lib/contract.mjs';
import { addPortOps, cpuSeconds, median, ROOT as root, rssKiB, startServer } from './lib/ovsdb-servers.mjs';

const { values: opt } = parseArgs({
  options: {
    ...contractOptions,
    clients: { type: 'string' },
    txns: { type: 'string' },
    warmup: { type: 'string' },
    'nvs-bin': { type: 'string' },
    'nvs-node-args': { type: 'string', default: '' },
    servers: { type: 'string', default: 'nvs,ovs' },
    ports: { type: 'string', default: '0' },
  },
});
// --quick: 1, 10 and 50 clients, 1,000 transactions per run.
const KS = (opt.clients ?? (opt.quick ? '1,10,50' : '1,10,50,200')).split(',').map(Number);
const KINDS = opt.servers.split(',');
const PORTS = Number(opt.ports);
const ROUNDS = roundsOf(opt, 3, 2);
const TXNS = Number(opt.txns ?? (opt.quick ? 1000 : 3000));
const WARMUP = Number(opt.warmup ?? (opt.quick ? 1000 : 3000));
const results = new Results(import.meta.url, `OVSDB under load: K clients each monitoring, committing add-port transactions (bridge of ${PORTS} ports)`, opt, ROUNDS);
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
  const { child, sock } = await startServer(kind, dir, { nvsBin, nodeArgs: opt['nvs-node-args'].split(' ').filter(Boolean) });
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

/** Gives the bridge PORTS ports that stay for every run (a deployment's bridge is not empty), 100 per transaction. */
async function preloadPorts(server) {
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
  };
}

/** The same for both servers: the scenario itself with 10 clients (a daemon serves warm: V8 has compiled the commit and update paths). */
async function warmUp(server) {
  await runLoad(server, 10, Math.ceil(WARMUP / 10), 'warm');
  await clearPorts(server);
}

const dir = mkdtempSync(join(tmpdir(), 'nvs-bench-ovsdb-load-'));
const rows = [];
try {
  console.log(`ovsdb under load: K clients each with a monitor on Interface and Port (name), ${TXNS} add-port transactions per run split over them, on a bridge with ${PORTS} ports; ${ROUNDS} alternating rounds per K, medians (spread in brackets)`);
  for (const K of KS) {
    const M = Math.max(1, Math.round(TXNS / K));
    const servers = [];
    for (const kind of KINDS) servers.push(await startBenchServer(kind, join(dir, `${kind}-${K}`)));
    for (const s of servers) {
      await warmUp(s);
      await preloadPorts(s);
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
      const name = kind === 'nvs' ? 'nvs-dbserver' : 'ovsdb-server';
      console.log(
        `  K=${String(K).padStart(3)} ${name}  ${stat(kind, (r) => r.rate).toFixed(0).padStart(6)} txn/s [${spread(kind, (r) => r.rate)}]` +
          `  reply p50 ${stat(kind, (r) => r.p50).toFixed(2)} p99 ${stat(kind, (r) => r.p99).toFixed(2)} ms [${spread(kind, (r) => r.p99, 2)}]` +
          `  last notification p99 ${stat(kind, (r) => r.fanout99).toFixed(2)} ms` +
          `  CPU ${stat(kind, (r) => r.cpuUs).toFixed(0)} us/txn  RSS ${stat(kind, (r) => r.rssPerConnKiB).toFixed(0)} KiB/conn` +
          `  client CPU ${(stat(kind, (r) => r.clientCpu) * 100).toFixed(0)}%`,
      );
    }
    const per = (kind, f) => (runs[kind].length ? runs[kind].map(f) : 'absent: not run (--servers)');
    const pair = (name, label, unit, better, f, goal) =>
      results.metric({ name, label, unit, better, nvs: { 'nvs-dbserver': per('nvs', f) }, anchors: { 'ovsdb-server': per('ovs', f) }, ...(goal ? { goal } : {}) });
    const goal = K === 10 || K === 50 ? { variant: 'nvs-dbserver', anchor: 'ovsdb-server', ratio: 2 } : undefined;
    pair(`txn-rate-${K}`, `aggregate transactions, ${K} clients`, 'txn/s', 'higher', (r) => r.rate, goal);
    pair(`reply-p99-${K}`, `reply latency p99, ${K} clients`, 'ms', 'lower', (r) => r.p99);
    pair(`notify-p99-${K}`, `last notification p99, ${K} clients`, 'ms', 'lower', (r) => r.fanout99);
    if (KINDS.length < 2) continue;
    const ratio = stat('nvs', (r) => r.rate) / stat('ovs', (r) => r.rate);
    const ratios = runs.nvs.map((r, i) => r.rate / runs.ovs[i].rate);
    console.log(`  K=${String(K).padStart(3)} ratio nvs/ovs ${ratio.toFixed(2)}x (per round: ${ratios.map((x) => x.toFixed(2)).join(', ')})`);
    rows.push({ K, ratio });
  }
  console.log(`| clients | ratio nvs/ovs txn/s |\n|---|---|\n${rows.map((r) => `| ${r.K} | ${r.ratio.toFixed(2)}× |`).join('\n')}`);
  results.write();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
