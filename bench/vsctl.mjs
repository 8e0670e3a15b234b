#!/usr/bin/env node
// nvs-vsctl benchmark beside the real ovs-vsctl, same run, alternating runs
// (A B A B…) and comparing medians, since this machine's speed varies:
//   1. cold start: `--no-wait list-br`, both tools against the same nvs-dbserver,
//      each run as installed (nvs-vsctl through its #! line, as its npm bin
//      link runs it); `node -e 0` is printed too, as the floor any Node
//      program pays, and without NODE_EXTRA_CA_CERTS when that is set (node
//      then loads those certificates at start; nvs's #! line unsets it);
//   2. `show` on 1,000 ports: nvs-vsctl and ovs-vsctl against nvs-dbserver,
//      and each against the real ovsdb-server.
// Usage: npm run build:ts && node bench/vsctl.mjs [--runs N] [--ports N] [--quick] [--json FILE]  (--rounds is --runs)
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { contractOptions, Results } from './lib/contract.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: opt } = parseArgs({ options: { ...contractOptions, runs: { type: 'string' }, ports: { type: 'string', default: '1000' } } });
const RUNS = Number(opt.runs ?? opt.rounds ?? (opt.quick ? 8 : 20));
const results = new Results(import.meta.url, 'nvs-vsctl beside ovs-vsctl: cold start, and show on a bridge of many ports', opt, RUNS);
/** Every run's time (ms) by case name, from race(). */
const raw = {};
const PORTS = Number(opt.ports);
const nvsVsctl = join(root, 'dist', 'nvs-vsctl.js');
const nvsDbserver = join(root, 'dist', 'nvs-dbserver.js');
for (const f of [nvsVsctl, nvsDbserver]) {
  if (!existsSync(f)) {
    console.error(`${f} is missing: run "npm run build:ts" first`);
    process.exit(1);
  }
}

const dir = mkdtempSync(join(tmpdir(), 'nvs-bench-vsctl-'));
const children = [];

/** Starts a server in the foreground and resolves once its socket accepts a command. */
async function startServer(name, cmd, args, sock) {
  const child = spawn(cmd, args, { stdio: 'ignore' });
  children.push(child);
  for (let i = 0; i < 200; i++) {
    if (spawnSync('ovs-vsctl', [`--db=unix:${sock}`, '--no-wait', 'init']).status === 0) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${name} did not start`);
}

function timeMs(cmd, args) {
  const t = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return Number(process.hrtime.bigint() - t) / 1e6;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Runs each named command `runs` times, interleaved, and returns the medians. */
function race(cases, runs) {
  const times = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
  for (let i = 0; i < runs; i++) for (const [k, [cmd, args]] of Object.entries(cases)) times[k].push(timeMs(cmd, args));
  Object.assign(raw, times);
  return Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
}

/** One transaction adding `n` ports to br0 (ovs-vsctl's own bulk form). */
function addPorts(sock, n) {
  const args = [`--db=unix:${sock}`, '--no-wait', 'add-br', 'br0'];
  for (let i = 0; i < n; i++) args.push('--', 'add-port', 'br0', `p${i}`, `tag=${(i % 4094) + 1}`);
  execFileSync('ovs-vsctl', args, { maxBuffer: 64 << 20 });
}

try {
  const nvsSock = join(dir, 'nvs.sock');
  const ovsSock = join(dir, 'ovs.sock');
  await startServer('nvs-dbserver', 'node', [nvsDbserver, join(dir, 'nvs.db'), `--remote=punix:${nvsSock}`, `--unixctl=${join(dir, 'nvs.ctl')}`, '--no-chdir'], nvsSock);
  execFileSync('ovsdb-tool', ['create', join(dir, 'ovs.db'), '/usr/share/openvswitch/vswitch.ovsschema']);
  await startServer('ovsdb-server', 'ovsdb-server', [join(dir, 'ovs.db'), `--remote=punix:${ovsSock}`, `--unixctl=${join(dir, 'ovs.ctl')}`, '--no-chdir'], ovsSock);

  console.log(`cold start, --no-wait list-br against nvs-dbserver (median of ${RUNS}, interleaved):`);
  const caCerts = process.env.NODE_EXTRA_CA_CERTS !== undefined;
  const bare = caCerts ? 'node -e 0, no NODE_EXTRA_CA_CERTS' : 'node -e 0';
  const cold = race({
    ...(caCerts ? { 'node -e 0': ['node', ['-e', '0']] } : {}),
    [bare]: ['env', ['-u', 'NODE_EXTRA_CA_CERTS', 'node', '-e', '0']],
    'nvs-vsctl': [nvsVsctl, [`--db=unix:${nvsSock}`, '--no-wait', 'list-br']],
    'ovs-vsctl': ['ovs-vsctl', [`--db=unix:${nvsSock}`, '--no-wait', 'list-br']],
  }, RUNS);
  if (caCerts) console.log(`  (NODE_EXTRA_CA_CERTS is set here: ${process.env.NODE_EXTRA_CA_CERTS})`);
  for (const [k, v] of Object.entries(cold)) console.log(`  ${k.padEnd(12)} ${v.toFixed(1)} ms`);
  console.log(`  ratio nvs-vsctl / ovs-vsctl: ${(cold['nvs-vsctl'] / cold['ovs-vsctl']).toFixed(2)} (goal <= 2)`);
  console.log(`  nvs-vsctl beyond a bare node start: ${(cold['nvs-vsctl'] - cold[bare]).toFixed(1)} ms`);

  addPorts(nvsSock, PORTS);
  addPorts(ovsSock, PORTS);
  const showRuns = Math.max(3, Math.round(RUNS / 4));
  console.log(`show on ${PORTS} ports (median of ${showRuns}, interleaved):`);
  const show = race({
    'nvs-vsctl @ nvs-dbserver': [nvsVsctl, [`--db=unix:${nvsSock}`, '--no-wait', 'show']],
    'ovs-vsctl @ nvs-dbserver': ['ovs-vsctl', [`--db=unix:${nvsSock}`, '--no-wait', 'show']],
    'nvs-vsctl @ ovsdb-server': [nvsVsctl, [`--db=unix:${ovsSock}`, '--no-wait', 'show']],
    'ovs-vsctl @ ovsdb-server': ['ovs-vsctl', [`--db=unix:${ovsSock}`, '--no-wait', 'show']],
  }, showRuns);
  for (const [k, v] of Object.entries(show)) console.log(`  ${k.padEnd(26)} ${v.toFixed(1)} ms`);
  console.log(`  ratio nvs-vsctl / ovs-vsctl, same server (nvs-dbserver): ${(show['nvs-vsctl @ nvs-dbserver'] / show['ovs-vsctl @ nvs-dbserver']).toFixed(2)}`);
  console.log(`  ratio nvs-vsctl / ovs-vsctl, same server (ovsdb-server): ${(show['nvs-vsctl @ ovsdb-server'] / show['ovs-vsctl @ ovsdb-server']).toFixed(2)}`);
  console.log(`  ratio all-nvs / all-OVS (nvs-vsctl @ nvs-dbserver vs ovs-vsctl @ ovsdb-server): ${(show['nvs-vsctl @ nvs-dbserver'] / show['ovs-vsctl @ ovsdb-server']).toFixed(2)}`);
  results.metric({ name: 'cold-start', label: '--no-wait list-br, cold start (same nvs-dbserver)', unit: 'ms', better: 'lower', nvs: { 'nvs-vsctl': raw['nvs-vsctl'] }, anchors: { 'ovs-vsctl': raw['ovs-vsctl'] }, goal: { variant: 'nvs-vsctl', anchor: 'ovs-vsctl', ratio: 0.5 } });
  results.metric({ name: 'node-floor', label: 'a bare `node -e 0` (the floor of any Node program)', unit: 'ms', better: 'lower', nvs: { node: raw[bare] }, anchors: {} });
  results.metric({ name: 'show', label: `show on ${PORTS} ports, each tool against its own server`, unit: 'ms', better: 'lower', nvs: { 'nvs-vsctl @ nvs-dbserver': raw['nvs-vsctl @ nvs-dbserver'] }, anchors: { 'ovs-vsctl @ ovsdb-server': raw['ovs-vsctl @ ovsdb-server'] } });
  results.write();
} finally {
  for (const c of children) c.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}
