#!/usr/bin/env node
// The Criterion micro-benchmarks of the Rust datapath (crates/datapath/benches:
// parsing, the exact-match cache, the megaflow classifier, forwarding between
// dummy ports, pool frames, actions) under the benchmark contract: each
// benchmark is a metric whose values are Criterion's samples (time per
// iteration of the benchmark thread's CPU time); the classifier's lookups are
// also a series (cost as subtables grow, per table size). No anchor: OVS's
// equivalents are C functions inside ovs-vswitchd with no harness to run them
// alone, and its dummy ports take packets one ovs-appctl call at a time.
// Usage: node bench/criterion.mjs [--quick] [--json FILE] [--filter REGEX]
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { contractOptions, median, Results } from './lib/contract.mjs';

const { values: opt } = parseArgs({ options: { ...contractOptions, filter: { type: 'string' } } });
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const timing = opt.quick ? ['--warm-up-time', '0.5', '--measurement-time', '1'] : ['--warm-up-time', '1', '--measurement-time', '3'];
const started = Date.now();
// Only the Criterion targets: the library's own test harness does not take Criterion's options.
execFileSync('cargo', ['bench', '-p', 'nvs-datapath', '--bench', '*', '--', ...timing, ...(opt.filter ? [opt.filter] : [])], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });

const target = JSON.parse(execFileSync('cargo', ['metadata', '--format-version', '1', '--no-deps'], { cwd: root, encoding: 'utf8' })).target_directory;
/** Every benchmark Criterion wrote in this run: its id and per-sample ns per iteration. */
function collect(dir, out = []) {
  if (!existsSync(dir)) return out;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (!e.isDirectory()) continue;
    const p = join(dir, e.name);
    const bench = join(p, 'new', 'benchmark.json');
    if (e.name === 'new' || e.name === 'base' || e.name === 'change' || e.name === 'report') continue;
    if (existsSync(bench) && statSync(bench).mtimeMs >= started) {
      const { full_id: id, group_id: group, function_id: fn, value_str: value } = JSON.parse(readFileSync(bench, 'utf8'));
      const s = JSON.parse(readFileSync(join(p, 'new', 'sample.json'), 'utf8'));
      out.push({ id, group, fn, value, samples: s.times.map((t, i) => t / s.iters[i]) });
    }
    collect(p, out);
  }
  return out;
}
const benches = collect(join(target, 'criterion'));
const results = new Results(import.meta.url, 'Rust datapath micro-benchmarks (Criterion, CPU time of the benchmark thread)', opt, 1);
for (const b of benches) {
  results.metric({ name: b.id.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, ''), label: b.id, unit: 'ns', better: 'lower', nvs: { rust: b.samples }, anchors: {} });
  console.log(`${b.id}: median ${median(b.samples).toFixed(1)} ns over ${b.samples.length} samples`);
}
// The classifier: lookup cost as subtables grow, one line per table size.
const lines = {};
for (const b of benches.filter((x) => x.group === 'classifier' && /_subtables$/.test(x.value ?? ''))) {
  const flows = /lookup\/(\d+)_flows/.exec(b.fn)?.[1];
  if (flows) (lines[`${Number(flows).toLocaleString('en-US')} megaflows`] ??= []).push([parseInt(b.value, 10), median(b.samples)]);
}
for (const pts of Object.values(lines)) pts.sort((a, b) => a[0] - b[0]);
if (Object.keys(lines).length) results.series({ name: 'classifier-subtables', title: 'Megaflow classifier lookup as subtables grow (Criterion)', x: 'subtables', y: 'ns per lookup', better: 'lower', lines });
if (!benches.length) throw new Error(`no Criterion results found under ${target}/criterion`);
results.write();
