// nvs-ofctl without a switch: usage errors, and a clear message when the
// bridge's socket or a capture file is absent. The commands that talk to a
// switch, and parse-pcap (which needs none), are exercised end to end in
// test/e2e-*.test.ts.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { dialectOf, runOfctl } from '../src/ofctl/main.ts';
import { ProgressBar } from '../src/ofctl/progress.ts';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'nvs-ofctl-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function io() {
  const out = { stdout: '', stderr: '' };
  return { out, io: { stdout: { write: (s: string) => (out.stdout += s) }, stderr: { write: (s: string) => (out.stderr += s) }, env: { NVS_RUNDIR: dir } } };
}

it('says what is wrong with a missing bridge or file, or a bad command line', async () => {
  const a = io();
  expect(await runOfctl(['parse-pcap', join(dir, 'x.pcap')], a.io)).toBe(1);
  expect(a.out.stderr).toBe(`nvs-ofctl: ${join(dir, 'x.pcap')}: open failed (No such file or directory)\n`);
  const b = io();
  expect(await runOfctl(['dump-flows', 'br9'], b.io)).toBe(1);
  expect(b.out.stderr).toContain(`${join(dir, 'br9.mgmt')}: failed to connect to the bridge`);
  const c = io();
  expect(await runOfctl(['add-flow', 'br0'], c.io)).toBe(1);
  expect(c.out.stderr).toContain("'add-flow' command requires exactly 2 arguments");
  const d = io();
  expect(await runOfctl(['frobnicate', 'br0'], d.io)).toBe(1);
  expect(d.out.stderr).toContain("unknown command 'frobnicate'");
  const e = io();
  expect(await runOfctl(['--bogus', 'show', 'br0'], e.io)).toBe(1);
  expect(e.out.stderr).toContain("unrecognized option '--bogus'");
});

it('draws a progress bar only on a terminal', () => {
  const tty = { text: '', isTTY: true, write(s: string) { this.text += s; } };
  const pipe = { text: '', isTTY: false, write(s: string) { this.text += s; } };
  for (const out of [tty, pipe]) {
    const bar = new ProgressBar(out, 'add-flows');
    bar.update(50, 100);
    bar.update(100, 100);
    bar.done();
  }
  expect(tty.text).toContain('add-flows [###############...............] 50% (50/100)');
  expect(tty.text).toContain('100% (100/100)\n');
  expect(pipe.text).toBe('');
});

it('-O/--protocols decides what the rules may use: the newest version listed', async () => {
  expect(dialectOf('OpenFlow10')).toBe('of10');
  expect(dialectOf('OpenFlow13')).toBe('of13');
  expect(dialectOf('OpenFlow10,OpenFlow15')).toBe('of13');
  expect(() => dialectOf('OpenFlow16')).toThrow(/OpenFlow16: unknown OpenFlow version/);
  for (const argv of [['-O'], ['-O', 'OpenFlow99', 'show', 'br0'], ['--protocols=OF13', 'show', 'br0']]) {
    const a = io();
    expect(await runOfctl(argv, a.io)).toBe(1);
    expect(a.out.stderr).toMatch(/needs a list of OpenFlow versions|unknown OpenFlow version/);
  }
});
