#!/usr/bin/env node
// `npm run bench`: every scenario script of bench/ (the contract: bench/README.md),
// each running nvs and its installed anchors alternately; then the raw results
// (bench/results/<date>-<host>.json), a Markdown summary and SVG charts
// (bench/results/latest/). Resumable: the state file bench/results/state.json
// records each finished scenario, and running again continues where it
// stopped, trying again what failed (--fresh starts over). Scenarios not listed below but present in
// bench/ as *.mjs or *.sh are run too, after the listed ones.
// Usage: npm run bench -- [--quick] [--fresh] [--only a,b] [--skip a,b] [--rounds N] [--report FILE.json] [--dir DIR]
// (--dir: another directory of scenario scripts, its results under DIR/results; for the runner's own test)
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync, createWriteStream } from 'node:fs';
import { cpus, hostname, loadavg, release, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { barChart, lineChart, markdown, summarize } from './lib/report.mjs';

const { values: opt } = parseArgs({
  options: {
    dir: { type: 'string' },
    quick: { type: 'boolean', default: false },
    fresh: { type: 'boolean', default: false },
    only: { type: 'string' },
    skip: { type: 'string' },
    rounds: { type: 'string' },
    report: { type: 'string' },
  },
});
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BENCH = opt.dir ?? join(ROOT, 'bench');
const RESULTS = join(BENCH, 'results');
const STATE = join(RESULTS, 'state.json');

/**
 * The scenarios in the order they run, by file name (a missing file is
 * reported as not there yet), with the most minutes each may take in the full
 * and the quick run; past it the script is stopped and the scenario reported
 * as timed out. `quick: false` leaves a scenario out of --quick.
 */
const SCENARIOS = [
  { file: 'criterion.mjs', full: 12, quick: 4 },
  { file: 'datapath-forward.mjs', full: 3, quick: 1 },
  { file: 'scaling.mjs', full: 25, quick: 4 },
  { file: 'ofproto-parse.mjs', full: 5, quick: 2 },
  { file: 'ofproto-flows.mjs', full: 10, quick: 3 },
  { file: 'ofproto-xlate.mjs', full: 5, quick: 1 },
  { file: 'vswitchd-setup.mjs', full: 6, quick: 2 },
  { file: 'flow-setup.mjs', full: 12, quick: 4 },
  { file: 'ovsdb.mjs', full: 6, quick: 2 },
  { file: 'ovsdb-load.mjs', full: 15, quick: 3 },
  { file: 'vsctl.mjs', full: 4, quick: 2 },
  { file: 'veth-tcp.mjs', full: 8, quick: 3 },
  { file: 'veth-pps.mjs', full: 8, quick: 3 },
  { file: 'openflow.mjs', full: 10, quick: 3 },
  { file: 'tunnel.mjs', full: 8, quick: 3 },
  { file: 'cluster-scale.mjs', full: 15, quick: 3 },
  { file: 'vhost-loop.sh', full: 15, quick: 4 },
];
const DEFAULT_MINUTES = { full: 10, quick: 3 };

function scenarioList() {
  const listed = new Set(SCENARIOS.map((s) => s.file));
  const extra = readdirSync(BENCH)
    .filter((f) => /\.(mjs|sh)$/.test(f) && f !== 'run.mjs' && !listed.has(f))
    .sort()
    .map((file) => ({ file, ...DEFAULT_MINUTES }));
  const only = opt.only?.split(',');
  const skip = opt.skip?.split(',') ?? [];
  const name = (s) => s.file.replace(/\.(mjs|sh)$/, '');
  return [...SCENARIOS, ...extra].filter((s) => (!only || only.includes(name(s))) && !skip.includes(name(s)) && (!opt.quick || s.quick !== false));
}

const isoNow = () => new Date().toISOString();
const tty = process.stdout.isTTY;

function machine() {
  const c = cpus();
  return { cpu: c[0]?.model.trim() ?? '?', cpus: c.length, memGiB: Math.round(totalmem() / 2 ** 30), kernel: release(), node: process.version };
}

function commit() {
  try {
    const head = execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['-C', ROOT, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).trim();
    return dirty ? `${head} (with uncommitted changes)` : head;
  } catch {
    return '?';
  }
}

/** Runs one scenario script under the contract; resolves with its JSON object or an error. */
function runScenario(s, logDir, onTick) {
  const name = s.file.replace(/\.(mjs|sh)$/, '');
  const json = join(logDir, `${name}.json`);
  rmSync(json, { force: true });
  const args = ['--json', json, ...(opt.quick ? ['--quick'] : []), ...(opt.rounds ? ['--rounds', opt.rounds] : [])];
  const [cmd, argv] = s.file.endsWith('.sh') ? ['bash', [join(BENCH, s.file), ...args]] : [process.execPath, [join(BENCH, s.file), ...args]];
  const log = createWriteStream(join(logDir, `${name}.log`));
  const minutes = opt.quick ? s.quick : s.full;
  const t0 = Date.now();
  // Its own process group, so a timeout stops the generators and daemons it started too.
  const child = spawn(cmd, argv, { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let last = '';
  const take = (chunk) => {
    log.write(chunk);
    const lines = chunk.toString().split('\n').filter((l) => l.trim());
    if (lines.length) last = lines.at(-1);
    if (!tty) process.stdout.write(chunk.toString().replace(/^(?=.)/gm, `  ${name} | `));
  };
  child.stdout.on('data', take);
  child.stderr.on('data', take);
  const tick = setInterval(() => onTick(Math.round((Date.now() - t0) / 1000), last), 1000);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      process.kill(-child.pid, 'SIGTERM');
      setTimeout(() => {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }, 15000).unref();
    } catch {
      // gone already
    }
  }, minutes * 60000);
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearInterval(tick);
      clearTimeout(timer);
      log.end();
      const seconds = (Date.now() - t0) / 1000;
      let doc;
      try {
        doc = JSON.parse(readFileSync(json, 'utf8'));
      } catch {
        // no JSON written
      }
      if (doc && code === 0) return resolve({ ...doc, seconds });
      const why = timedOut
        ? `stopped after its ${minutes}-minute bound`
        : code !== 0
          ? `exited with ${code ?? signal}: ${last.slice(0, 200)}`
          : 'wrote no JSON (not converted to the contract yet)';
      resolve({ scenario: name, ...(doc ?? {}), error: why, seconds, log: join(logDir, `${name}.log`) });
    });
  });
}

/** Writes the raw JSON, the Markdown summary and the charts of a finished run. */
function writeReport(run, scenarios) {
  const stamp = run.started.slice(0, 16).replace(/[:T]/g, '-');
  const raw = join(RESULTS, `${stamp}-${run.host}.json`);
  writeFileSync(raw, `${JSON.stringify({ run, scenarios }, null, 1)}\n`);
  const latest = join(RESULTS, 'latest');
  rmSync(latest, { recursive: true, force: true });
  mkdirSync(latest, { recursive: true });
  const rows = summarize(scenarios);
  const charts = {};
  for (const sc of scenarios) {
    const mine = rows.filter((r) => r.scenario === sc.scenario);
    if (mine.length) {
      writeFileSync(join(latest, `${sc.scenario}.svg`), barChart(`${sc.scenario}: ${sc.title ?? ''}`, mine));
      charts[sc.scenario] = `${sc.scenario}.svg`;
    }
    for (const s of sc.series ?? []) {
      writeFileSync(join(latest, `${sc.scenario}-${s.name}.svg`), lineChart(s));
      charts[`${sc.scenario}/${s.name}`] = `${sc.scenario}-${s.name}.svg`;
    }
  }
  const md = markdown(run, scenarios, charts);
  writeFileSync(join(latest, 'README.md'), md);
  writeFileSync(raw.replace(/\.json$/, '.md'), md.replace(/\]\((?!http)([^)]+\.svg)\)/g, '](latest/$1)'));
  return { raw, summary: join(latest, 'README.md') };
}

if (opt.report) {
  const { run, scenarios } = JSON.parse(readFileSync(opt.report, 'utf8'));
  const out = writeReport(run, scenarios);
  console.log(`report: ${out.summary}`);
  process.exit(0);
}

mkdirSync(RESULTS, { recursive: true });
let state;
if (!opt.fresh && existsSync(STATE)) {
  state = JSON.parse(readFileSync(STATE, 'utf8'));
  if (state.run.quick !== opt.quick) {
    console.log(`state file ${STATE} is from a ${state.run.quick ? 'quick' : 'full'} run; starting a new ${opt.quick ? 'quick' : 'full'} run`);
    state = undefined;
  } else {
    console.log(`resuming the run started ${state.run.started} (${Object.keys(state.done).length} scenarios done; --fresh starts over)`);
  }
}
state ??= { run: { started: isoNow(), host: hostname(), quick: opt.quick, machine: machine(), load: [], seconds: 0, commit: commit() }, done: {} };
const logDir = join(RESULTS, 'logs');
mkdirSync(logDir, { recursive: true });
const save = () => writeFileSync(STATE, `${JSON.stringify(state, null, 1)}\n`);

// The scripts run the built switch: build once first (the Rust addon and the dist bundles).
if (!process.env.NVS_BENCH_NO_BUILD) {
  console.log('building (npm run build; NVS_BENCH_NO_BUILD=1 skips it)…');
  execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
}

const list = scenarioList();
const runStart = Date.now();
const loadTimer = setInterval(() => state.run.load.push(loadavg()[0]), 30000);
state.run.load.push(loadavg()[0]);
for (const [i, s] of list.entries()) {
  const name = s.file.replace(/\.(mjs|sh)$/, '');
  const head = `[${i + 1}/${list.length}] ${name}`;
  // Resuming: what was measured stays; what failed, timed out or was not there yet is tried again.
  if (state.done[name] && !state.done[name].error) {
    console.log(`${head}: done earlier`);
    continue;
  }
  if (!existsSync(join(BENCH, s.file))) {
    state.done[name] = { scenario: name, error: `bench/${s.file} is not there yet` };
    console.log(`${head}: not there yet`);
    save();
    continue;
  }
  console.log(`${head}: running (bound ${opt.quick ? s.quick : s.full} min; log ${join(logDir, `${name}.log`)})`);
  const result = await runScenario(s, logDir, (secs, last) => {
    if (tty) process.stdout.write(`\r\x1b[K  ${head} ${secs} s, load ${loadavg()[0].toFixed(1)} | ${last.slice(0, Math.max(20, (process.stdout.columns ?? 100) - 40))}`);
  });
  if (tty) process.stdout.write('\r\x1b[K');
  console.log(`${head}: ${result.error ? `not measured: ${result.error}` : `${result.metrics?.length ?? 0} metrics, ${result.series?.length ?? 0} series`} in ${Math.round(result.seconds)} s`);
  // The build each scenario measured (a resumed run may have a newer one).
  state.done[name] = { ...result, commit: commit() };
  save();
}
clearInterval(loadTimer);
state.run.load.push(loadavg()[0]);
state.run.seconds += (Date.now() - runStart) / 1000;
const scenarios = list.map((s) => state.done[s.file.replace(/\.(mjs|sh)$/, '')]).filter(Boolean);
const out = writeReport(state.run, scenarios);
const failed = scenarios.filter((s) => s.error && !s.error.endsWith('is not there yet'));
if (failed.length) {
  save();
  console.log(`${failed.length} scenarios not measured (${failed.map((s) => s.scenario).join(', ')}): the state file stays, so running the same command again retries them into this run; --fresh starts over`);
} else {
  rmSync(STATE, { force: true });
}
console.log(`raw results: ${out.raw}\nsummary and charts: ${out.summary}`);
for (const r of summarize(scenarios).filter((x) => x.goal)) {
  const g = r.goal;
  console.log(`goal ${r.scenario}/${r.metric.name}: ${g.variant} vs ${g.anchor} ${g.measured === undefined ? 'not measured' : `${g.measured.toFixed(2)}×`} (goal ≥ ${g.ratio}×)`);
}
