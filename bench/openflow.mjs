#!/usr/bin/env node
// OpenFlow wire benchmark (issue 15): the real `ovs-ofctl add-flows` of
// 100,000 flows (`priority=100,ip,nw_dst=10.x.y.z,actions=output:N`) over
// each switch's `<bridge>.mgmt`, plain (a flow mod and a barrier each, as
// ovs-ofctl sends them) and `--bundle` (one OpenFlow 1.4 bundle, committed
// atomically), against nvs-vswitchd and a real ovs-vswitchd (dummy
// datapath), alternating nvs and OVS every round. Prints seconds per load,
// the nvs/OVS speed-up (OVS time / nvs time: above 1 means nvs is faster),
// each daemon's RSS and the load average.
// Usage: node bench/openflow.mjs [--flows N] [--rounds N] [--quick] [--json FILE]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: opt } = parseArgs({
  options: {
    flows: { type: 'string' },
    rounds: { type: 'string', default: '3' },
    quick: { type: 'boolean', default: false },
    json: { type: 'string' },
  },
});
const N = Number(opt.flows ?? (opt.quick ? 10_000 : 100_000));
const ROUNDS = Number(opt.rounds);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const load = [loadavg()[0]];
const dir = mkdtempSync(join(tmpdir(), 'nvs-openflow-bench-'));
const pidfiles = [];

function rssMB(pidfile) {
  const pid = readFileSync(pidfile, 'utf8').trim();
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

function startOvs() {
  const od = join(dir, 'ovs');
  mkdirSync(od);
  const env = { ...process.env, OVS_RUNDIR: od, OVS_LOGDIR: od, OVS_DBDIR: od };
  const run = (cmd, args) => execFileSync(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  run('ovsdb-tool', ['create', join(od, 'conf.db'), '/usr/share/openvswitch/vswitch.ovsschema']);
  run('ovsdb-server', [join(od, 'conf.db'), `--remote=punix:${join(od, 'db.sock')}`, `--pidfile=${join(od, 'ovsdb.pid')}`, '--detach', `--log-file=${join(od, 'ovsdb.log')}`]);
  pidfiles.push(join(od, 'ovsdb.pid'));
  const vsctl = (...a) => run('ovs-vsctl', [`--db=unix:${join(od, 'db.sock')}`, ...a]);
  vsctl('--no-wait', 'init');
  run('ovs-vswitchd', ['--enable-dummy=override', `unix:${join(od, 'db.sock')}`, `--pidfile=${join(od, 'vswitchd.pid')}`, '--detach', `--log-file=${join(od, 'vswitchd.log')}`]);
  pidfiles.push(join(od, 'vswitchd.pid'));
  vsctl('add-br', 'br0', '--', 'set', 'bridge', 'br0', 'datapath_type=netdev', 'fail_mode=secure', '--', 'add-port', 'br0', 'p1', '--', 'set', 'Interface', 'p1', 'type=dummy', '--', 'add-port', 'br0', 'p2', '--', 'set', 'Interface', 'p2', 'type=dummy');
  return { mgmt: `unix:${join(od, 'br0.mgmt')}`, pidfile: join(od, 'vswitchd.pid') };
}

function startNvs() {
  const nd = join(dir, 'nvs');
  mkdirSync(nd);
  const env = { ...process.env, NVS_RUNDIR: nd };
  const node = (bin, args) => execFileSync(process.execPath, [join(root, 'dist', `${bin}.js`), ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  node('nvs-dbserver', ['--rundir', nd, '--detach', '--pidfile', '--log-file', `--remote=punix:${join(nd, 'db.sock')}`, join(nd, 'conf.db')]);
  pidfiles.push(join(nd, 'nvs-dbserver.pid'));
  const db = `unix:${join(nd, 'db.sock')}`;
  node('nvs-vsctl', [`--db=${db}`, '--no-wait', 'init']);
  node('nvs-vswitchd', ['--rundir', nd, '--detach', '--pidfile', '--log-file', '--enable-dummy=override', '--disable-system', db]);
  pidfiles.push(join(nd, 'nvs-vswitchd.pid'));
  node('nvs-vsctl', [`--db=${db}`, 'add-br', 'br0', '--', 'set', 'bridge', 'br0', 'fail_mode=secure', '--', 'add-port', 'br0', 'p1', '--', 'set', 'Interface', 'p1', 'type=dummy', '--', 'add-port', 'br0', 'p2', '--', 'set', 'Interface', 'p2', 'type=dummy']);
  return { mgmt: `unix:${join(nd, 'br0.mgmt')}`, pidfile: join(nd, 'nvs-vswitchd.pid') };
}

/** Seconds for one add-flows of the file into an emptied table (`--bundle` when asked). */
function addFlows(mgmt, file, bundle) {
  execFileSync('ovs-ofctl', ['del-flows', mgmt]);
  const t = process.hrtime.bigint();
  execFileSync('ovs-ofctl', [...(bundle ? ['--bundle'] : []), 'add-flows', mgmt, file], { stdio: ['ignore', 'pipe', 'pipe'] });
  const s = Number(process.hrtime.bigint() - t) / 1e9;
  const n = execFileSync('ovs-ofctl', ['dump-aggregate', mgmt], { encoding: 'utf8' });
  if (!n.includes(`flow_count=${N}`)) throw new Error(`${mgmt}: expected ${N} flows after add-flows, got: ${n.trim()}`);
  return s;
}

try {
  for (const bin of ['nvs-dbserver', 'nvs-vswitchd', 'nvs-vsctl']) if (!existsSync(join(root, 'dist', `${bin}.js`))) throw new Error('dist/ is missing: run "npm run build" first');
  const file = join(dir, 'flows.txt');
  const lines = [];
  for (let i = 0; i < N; i++) lines.push(`priority=100,ip,nw_dst=10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255},actions=output:${1 + (i % 2)}`);
  writeFileSync(file, `${lines.join('\n')}\n`);

  const nvs = startNvs();
  let ovs;
  let ovsAbsent;
  try {
    execFileSync('ovs-vswitchd', ['--version'], { stdio: 'ignore' });
    ovs = startOvs();
  } catch (err) {
    ovsAbsent = `absent: ovs-vswitchd cannot run (${err.message.split('\n')[0]})`;
  }
  const res = { nvs: { plain: [], bundle: [] }, ovs: { plain: [], bundle: [] } };
  for (let r = 0; r < ROUNDS; r++) {
    for (const mode of ['plain', 'bundle']) {
      res.nvs[mode].push(addFlows(nvs.mgmt, file, mode === 'bundle'));
      if (ovs) res.ovs[mode].push(addFlows(ovs.mgmt, file, mode === 'bundle'));
    }
  }
  const rss = { nvs: rssMB(nvs.pidfile), ovs: ovs ? rssMB(ovs.pidfile) : NaN };
  load.push(loadavg()[0]);
  const f = (x) => x.toFixed(2);
  console.log(`openflow: ovs-ofctl add-flows of ${N} flows over <bridge>.mgmt, ${ROUNDS} rounds alternating nvs and OVS, medians (load average ${load.map((l) => l.toFixed(1)).join(' -> ')})`);
  for (const mode of ['plain', 'bundle']) {
    const n = median(res.nvs[mode]);
    const line = `  ${mode.padEnd(6)}  nvs ${f(n)} s (${res.nvs[mode].map(f).join(', ')})`;
    if (!ovs) console.log(`${line}; OVS ${ovsAbsent}`);
    else {
      const o = median(res.ovs[mode]);
      console.log(`${line}   OVS ${f(o)} s (${res.ovs[mode].map(f).join(', ')})   nvs speed-up ${(o / n).toFixed(2)}x`);
    }
  }
  console.log(`  RSS after the loads: nvs-vswitchd ${rss.nvs.toFixed(0)} MB, ovs-vswitchd ${ovs ? `${rss.ovs.toFixed(0)} MB` : 'absent'}`);
  if (opt.json) {
    const metric = (mode, goal) => ({
      name: `add-flows-${mode}`,
      label: `ovs-ofctl ${mode === 'bundle' ? '--bundle ' : ''}add-flows, ${N} flows`,
      unit: 's',
      better: 'lower',
      nvs: { nvs: res.nvs[mode] },
      anchors: { ovs: ovs ? res.ovs[mode] : ovsAbsent },
      goal: { variant: 'nvs', anchor: 'ovs', ratio: goal },
    });
    const out = {
      scenario: basename(fileURLToPath(import.meta.url), '.mjs'),
      title: 'OpenFlow flow mods from the real ovs-ofctl, plain and bundled',
      rounds: ROUNDS,
      load,
      metrics: [
        metric('plain', 5),
        metric('bundle', 2),
        { name: 'vswitchd-rss', label: 'vswitchd RSS after the loads', unit: 'MB', better: 'lower', nvs: { nvs: [rss.nvs] }, anchors: { ovs: ovs ? [rss.ovs] : ovsAbsent } },
      ],
    };
    writeFileSync(opt.json, `${JSON.stringify(out, null, 2)}\n`);
  }
} finally {
  for (const p of pidfiles) {
    try {
      process.kill(Number(readFileSync(p, 'utf8').trim()));
    } catch {
      // not running
    }
  }
  rmSync(dir, { recursive: true, force: true });
}
