#!/usr/bin/env node
// Rule-file parsing benchmark (issue 4): parse 100,000 simple flows
// (`priority=100,ip,nw_dst=10.x.y.z,actions=output:N`, the add-flows anchor's
// scenario) with nvs's parser, and print the canonical form of all of them;
// where ovs-ofctl is installed, time `ovs-ofctl parse-flows` on the same file
// (parsing only, no switch) in alternating rounds and print the ratio of medians.
// Usage: node bench/ofproto-parse.mjs [--flows N] [--rounds N] [--quick] [--json FILE]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { contractOptions, Results, roundsOf } from './lib/contract.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: opt } = parseArgs({ options: { ...contractOptions, flows: { type: 'string' } } });
const N = Number(opt.flows ?? (opt.quick ? 20000 : 100000));
const ROUNDS = roundsOf(opt, 3);
const results = new Results(import.meta.url, `Parsing ${N.toLocaleString('en-US')} simple rules from a file`, opt, ROUNDS);

const dir = mkdtempSync(join(tmpdir(), 'nvs-parse-bench-'));
try {
  // The parser is TypeScript; bundle it once for plain Node.
  const entry = join(dir, 'entry.ts');
  writeFileSync(
    entry,
    `export { parseFlows } from ${JSON.stringify(join(root, 'packages/ofproto/src/syntax/parser.ts'))};\n` +
      `export { printFlowMod } from ${JSON.stringify(join(root, 'packages/ofproto/src/syntax/printer.ts'))};\n`,
  );
  const out = join(dir, 'syntax.mjs');
  await build({ entryPoints: [entry], bundle: true, platform: 'node', format: 'esm', outfile: out, logLevel: 'warning' });
  const { parseFlows, printFlowMod } = await import(pathToFileURL(out).href);

  const lines = [];
  for (let i = 0; i < N; i++) {
    lines.push(`priority=100,ip,nw_dst=10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255},actions=output:${(i % 48) + 1}`);
  }
  const text = lines.join('\n') + '\n';
  const file = join(dir, 'flows.txt');
  writeFileSync(file, text);

  let ovs = true;
  try {
    execFileSync('ovs-ofctl', ['--version'], { stdio: 'ignore' });
  } catch {
    ovs = false;
  }

  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const nvsParse = [];
  const nvsParseCpu = [];
  const nvsPrint = [];
  const ovsTimes = [];
  for (let r = 0; r < ROUNDS; r++) {
    let t = process.hrtime.bigint();
    const cpu = process.cpuUsage();
    const rules = parseFlows(text, { file: 'flows.txt' });
    nvsParse.push(Number(process.hrtime.bigint() - t) / 1e9);
    const used = process.cpuUsage(cpu);
    nvsParseCpu.push((used.user + used.system) / 1e6);
    if (rules.length !== N) throw new Error(`parsed ${rules.length} rules, expected ${N}`);
    t = process.hrtime.bigint();
    let bytes = 0;
    for (const fm of rules) bytes += printFlowMod(fm).length;
    nvsPrint.push(Number(process.hrtime.bigint() - t) / 1e9);
    if (bytes === 0) throw new Error('printed nothing');
    if (ovs) {
      t = process.hrtime.bigint();
      execFileSync('ovs-ofctl', ['parse-flows', file], { stdio: 'ignore', maxBuffer: 1 << 30 });
      ovsTimes.push(Number(process.hrtime.bigint() - t) / 1e9);
    }
  }
  const p = median(nvsParse);
  console.log(`nvs parseFlows: ${N} flows in ${p.toFixed(3)} s = ${Math.round(N / p).toLocaleString('en')} flows/s (median of ${ROUNDS}; rounds ${nvsParse.map((x) => x.toFixed(3)).join(', ')})`);
  // CPU time is steadier than wall time on this shared machine (it includes GC threads).
  console.log(`nvs parseFlows CPU time: median ${median(nvsParseCpu).toFixed(3)} s (rounds ${nvsParseCpu.map((x) => x.toFixed(3)).join(', ')})`);
  console.log(`nvs printFlowMod: ${N} flows in ${median(nvsPrint).toFixed(3)} s`);
  if (ovs) {
    const o = median(ovsTimes);
    console.log(`ovs-ofctl parse-flows (parse + print, one process): ${o.toFixed(3)} s; nvs parse is ${(o / p).toFixed(1)}x faster`);
  } else {
    console.log('ovs-ofctl not installed: no anchor');
  }
  results.metric({
    name: 'parse-flows',
    label: `parse ${N.toLocaleString('en-US')} rules (nvs: parseFlows in process; OVS: ovs-ofctl parse-flows, which also prints them)`,
    unit: 's',
    better: 'lower',
    nvs: { parseFlows: nvsParse },
    anchors: { 'ovs-ofctl': ovs ? ovsTimes : 'absent: ovs-ofctl not installed' },
  });
  results.write();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
