// The benchmark runner and its report (bench/run.mjs, bench/lib/report.mjs):
// ratios point the right way for both kinds of metric, absent anchors stay
// absent, goals are judged, the charts carry axes, units, legend and which
// way is better, and an interrupted run resumes without redoing what was done.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');
// Plain .mjs modules without type declarations: loaded by URL.
const report = await import(pathToFileURL(join(ROOT, 'bench/lib/report.mjs')).href);

const scenario = {
  scenario: 'demo',
  title: 'a demo',
  rounds: 3,
  load: [0.5, 0.7],
  metrics: [
    { name: 'rate', label: 'rate', unit: 'flows/s', better: 'higher', nvs: { afxdp: [30, 10, 20], system: [5, 5, 5] }, anchors: { 'ovs-afxdp': [10, 10, 10], 'ovs-system': [10, 10, 10], 'ovs-dpdk': 'absent: not installed' }, goal: { variant: 'afxdp', anchor: 'ovs-afxdp', ratio: 1.5 } },
    { name: 'mem', label: 'memory', unit: 'MiB', better: 'lower', nvs: { afxdp: [200] }, anchors: { 'ovs-afxdp': [100] }, goal: { variant: 'afxdp', anchor: 'ovs-afxdp', ratio: 1 } },
  ],
  series: [{ name: 'growth', title: 'cost as rules grow', x: 'rules', y: 'seconds', better: 'lower', lines: { nvs: [[1000, 1], [10000, 10], [100000, 100]], ovs: [[1000, 1], [10000, 100]], 'ovs-dpdk': 'absent: not installed' } }],
};

describe('benchmark report', () => {
  const rows = report.summarize([scenario]);

  it('gives nvs/anchor where higher is better and anchor/nvs where lower is better, pairing a variant with its own kind of anchor', () => {
    const rate = rows.find((r: { metric: { name: string } }) => r.metric.name === 'rate');
    expect(rate.nvs.afxdp).toEqual({ median: 20, min: 10, max: 30, n: 3 });
    expect(rate.ratios).toEqual([
      { variant: 'afxdp', anchor: 'ovs-afxdp', ratio: 2 },
      { variant: 'system', anchor: 'ovs-system', ratio: 0.5 },
    ]);
    expect(rate.anchors['ovs-dpdk']).toEqual({ absent: 'not installed' });
    expect(rate.goal).toMatchObject({ measured: 2, met: true });
    const mem = rows.find((r: { metric: { name: string } }) => r.metric.name === 'mem');
    expect(mem.ratios[0].ratio).toBe(0.5);
    expect(mem.goal).toMatchObject({ measured: 0.5, met: false });
  });

  it('measures growth: 1 for linear, 2 for quadratic', () => {
    expect(report.exponents([[1000, 1], [10000, 10]])[0].k).toBeCloseTo(1);
    expect(report.exponents([[1000, 1], [10000, 100]])[0].k).toBeCloseTo(2);
  });

  it('writes a summary with the goals, the spreads and the absent anchors', () => {
    const run = { started: '2026-12-07T23:00:00.000Z', host: 'h', quick: false, machine: { cpu: 'c', cpus: 2, memGiB: 24, kernel: 'k', node: 'v20' }, load: [0.5, 3], seconds: 600, commit: 'abc' };
    const md = report.markdown(run, [scenario], { demo: 'demo.svg', 'demo/growth': 'demo-growth.svg' });
    expect(md).toContain('| demo | rate (flows/s, higher is better) | afxdp: 20.0 (10.0–30.0) | ovs-afxdp: 10.0 (10.0–10.0) | 2.00× | ≥ 1.5× | **yes** |');
    expect(md).toContain('| demo | memory (MiB, lower is better) | afxdp: 200 | ovs-afxdp: 100 | 0.50× | ≥ 1× | **no** |');
    expect(md).toContain('ovs-dpdk: absent (not installed)');
    expect(md).toContain('Load average (1 min) seen during the run: 0.5–3.0 on 2 cores');
    expect(md).toMatch(/- ovs: 1000 → 1.00, 10000 → 100; exponents 2.00/);
    expect(md).toContain('![demo](demo.svg)');
  });

  it('draws bars and lines with axis labels, units, a legend and which way is better', () => {
    const bars = report.barChart('demo', rows);
    const lines = report.lineChart(scenario.series[0]);
    for (const svg of [bars, lines]) {
      expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
      // Every element opened is closed (the charts are XML).
      expect((svg.match(/<text[ >]/g) ?? []).length).toBe((svg.match(/<\/text>/g) ?? []).length);
    }
    expect(bars).toContain('flows/s, higher is better');
    expect(bars).toContain('MiB, lower is better');
    expect(bars).toContain('absent: not installed');
    for (const name of ['nvs afxdp', 'nvs system', 'ovs-afxdp', 'ovs-system']) expect(bars).toContain(`>${name}</text>`);
    expect(lines).toContain('>rules</text>');
    expect(lines).toContain('>seconds</text>');
    expect(lines).toContain('lower is better');
    expect(lines).toContain('stroke-dasharray'); // the linear-growth guide
    expect(lines).toContain('ovs-dpdk: absent: not installed');
  });
});

describe('benchmark runner', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nvs-bench-runner-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('runs each scenario under the contract, resumes after an interruption, retries what failed, and writes raw results, summary and charts', () => {
    // Each counts its runs; "b" stops the runner the first time (an interrupted run), "c" fails the first time.
    const writer = (name: string) => `
import { writeFileSync, appendFileSync, existsSync } from 'node:fs';
const json = process.argv[process.argv.indexOf('--json') + 1];
appendFileSync(${JSON.stringify(join(dir, `${name}.count`))}, 'x');
${name === 'c' ? `if (!existsSync(${JSON.stringify(join(dir, 'c.once'))})) { writeFileSync(${JSON.stringify(join(dir, 'c.once'))}, ''); process.exit(1); }` : ''}
${name === 'b' ? `if (!existsSync(${JSON.stringify(join(dir, 'b.once'))})) { writeFileSync(${JSON.stringify(join(dir, 'b.once'))}, ''); process.kill(process.ppid, 'SIGKILL'); process.exit(0); }` : ''}
writeFileSync(json, JSON.stringify({ scenario: '${name}', title: '${name}', rounds: 2, load: [0, 0],
  metrics: [{ name: 'm', label: 'm', unit: 's', better: 'lower', nvs: { x: [1, 2] }, anchors: { ovs: [2, 4] } }] }));
`;
    writeFileSync(join(dir, 'a.mjs'), writer('a'));
    writeFileSync(join(dir, 'b.mjs'), writer('b'));
    writeFileSync(join(dir, 'c.mjs'), writer('c'));
    const run = () => spawnSync(process.execPath, [join(ROOT, 'bench/run.mjs'), '--dir', dir, '--only', 'a,b,c'], { env: { ...process.env, NVS_BENCH_NO_BUILD: '1' }, encoding: 'utf8' });
    const first = run();
    expect(first.signal).toBe('SIGKILL');
    expect(existsSync(join(dir, 'results/state.json'))).toBe(true);
    const second = run();
    expect(second.status).toBe(0);
    expect(second.stdout).toContain('[1/3] a: done earlier');
    expect(second.stdout).toContain('1 scenarios not measured (c)');
    expect(existsSync(join(dir, 'results/state.json'))).toBe(true);
    const third = run();
    expect(third.stdout).toContain('[2/3] b: done earlier');
    expect(readFileSync(join(dir, 'a.count'), 'utf8')).toBe('x'); // not run again
    expect(readFileSync(join(dir, 'b.count'), 'utf8')).toBe('xx');
    expect(readFileSync(join(dir, 'c.count'), 'utf8')).toBe('xx');
    expect(existsSync(join(dir, 'results/state.json'))).toBe(false);
    const raw = readdirSync(join(dir, 'results')).find((f) => f.endsWith('.json'));
    const doc = JSON.parse(readFileSync(join(dir, 'results', raw!), 'utf8'));
    expect(doc.scenarios.map((s: { scenario: string }) => s.scenario)).toEqual(['a', 'b', 'c']);
    expect(doc.scenarios.every((s: { error?: string }) => !s.error)).toBe(true);
    const md = readFileSync(join(dir, 'results/latest/README.md'), 'utf8');
    expect(md).toContain('| m (s, lower is better) | x: 1.50 (1.00–2.00) | ovs: 3.00 (2.00–4.00) | vs ovs: 2.00× |');
    expect(existsSync(join(dir, 'results/latest/a.svg'))).toBe(true);
  });
});
