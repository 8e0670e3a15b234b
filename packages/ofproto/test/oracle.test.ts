// The oracle for the rule-file syntax: the real `ovs-ofctl parse-flows` must
// print, for every line of test/flows/corpus.txt, exactly what nvs prints; it
// must reject every line of test/flows/invalid.txt as nvs does; and the lines of
// test/flows/stricter.txt are ones it accepts while nvs deliberately rejects
// them (each justified in that file). Fails, never skips, when ovs-ofctl is
// missing, unless NVS_SKIP_OVS=1.

import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RuleError } from '../src/syntax/errors.ts';
import { type Dialect, parseFlow } from '../src/syntax/parser.ts';
import { printFlowMod } from '../src/syntax/printer.ts';
import { needsOvs } from '../../../test/ovs-tools.ts';

const skipOvs = needsOvs('ofproto parse-flows oracle', ['ovs-ofctl']);

const run = promisify(execFile);
const FLOWS = join(import.meta.dirname, '../../../test/flows');

interface Entry {
  readonly text: string;
  readonly lineNo: number;
  readonly dialect: Dialect;
  /** stricter.txt only: the error code nvs must give. */
  readonly code?: string;
}

/** Reads a corpus file: flow lines, `#` comments, `#! dialect=…` and `#! code=…` directives. */
function readCorpus(name: string): Entry[] {
  const out: Entry[] = [];
  let dialect: Dialect = 'of10';
  let code: string | undefined;
  readFileSync(join(FLOWS, name), 'utf8')
    .split('\n')
    .forEach((raw, i) => {
      const d = /^#!\s*(dialect|code)=(\S+)/.exec(raw);
      if (d) {
        if (d[1] === 'dialect') dialect = d[2] as Dialect;
        else code = d[2];
        return;
      }
      if (raw.trim() === '' || raw.trimStart().startsWith('#')) return;
      out.push({ text: raw, lineNo: i + 1, dialect, code });
    });
  return out;
}

function ovsArgs(dialect: Dialect, file: string): string[] {
  return dialect === 'of10' ? ['-F', 'nxm+table_id', 'parse-flows', file] : ['-O', 'OpenFlow13', 'parse-flows', file];
}

/** Runs ovs-ofctl on a batch of lines; the printed rules (after `ADD `), or the error text. */
async function ovsParse(dir: string, dialect: Dialect, lines: string[]): Promise<{ ok: true; rules: string[] } | { ok: false; error: string }> {
  const file = join(dir, `batch-${dialect}-${Math.random().toString(36).slice(2)}.txt`);
  writeFileSync(file, lines.join('\n') + '\n');
  try {
    const { stdout } = await run('ovs-ofctl', ovsArgs(dialect, file), { maxBuffer: 64 << 20 });
    if (stdout.includes('decode error')) return { ok: false, error: stdout };
    const rules = stdout
      .split('\n')
      .map((l) => /^(?:OFPT|NXT)_FLOW_MOD .*?: ADD (.*)$/.exec(l)?.[1])
      .filter((l): l is string => l !== undefined);
    return { ok: true, rules };
  } catch (e) {
    return { ok: false, error: String((e as { stderr?: string }).stderr ?? e) };
  }
}

function ours(e: Entry): { ok: true; text: string } | { ok: false; error: RuleError } {
  try {
    return { ok: true, text: printFlowMod(parseFlow(e.text, { dialect: e.dialect, file: 'corpus' }), { dialect: e.dialect }) };
  } catch (err) {
    if (err instanceof RuleError) return { ok: false, error: err };
    throw err;
  }
}

describe.skipIf(skipOvs)('ovs-ofctl parse-flows oracle', () => {
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nvs-oracle-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('corpus: nvs prints every line exactly as ovs-ofctl does', async () => {
    const corpus = readCorpus('corpus.txt');
    expect(corpus.length).toBeGreaterThanOrEqual(300);
    const problems: string[] = [];
    for (const dialect of ['of10', 'of13'] as const) {
      const entries = corpus.filter((e) => e.dialect === dialect);
      const res = await ovsParse(dir, dialect, entries.map((e) => e.text));
      if (!res.ok) {
        // Name every offending line, not just the first one ovs-ofctl stopped at.
        const bad = await Promise.all(entries.map(async (e) => ((await ovsParse(dir, dialect, [e.text])).ok ? null : e)));
        const list = bad.filter((e) => e !== null).map((e) => `corpus.txt:${e.lineNo}: ${e.text}`);
        throw new Error(`ovs-ofctl rejects these ${dialect} corpus lines:\n${list.join('\n')}`);
      }
      expect(res.rules.length, `${dialect}: one printed rule per corpus line`).toBe(entries.length);
      entries.forEach((e, i) => {
        const mine = ours(e);
        const text = mine.ok ? mine.text : `error: ${mine.error.message}`;
        if (text !== res.rules[i]) problems.push(`corpus.txt:${e.lineNo} [${dialect}] ${e.text}\n  ovs-ofctl: ${res.rules[i]}\n  nvs:       ${text}`);
      });
    }
    expect(problems, problems.join('\n')).toEqual([]);
  });

  it('invalid: every line ovs-ofctl rejects, nvs rejects with RULE_SYNTAX', async () => {
    const invalid = readCorpus('invalid.txt');
    expect(invalid.length).toBeGreaterThanOrEqual(40);
    const problems: string[] = [];
    // One process per line: ovs-ofctl stops at the first bad line of a file.
    await Promise.all(
      invalid.map(async (e) => {
        const res = await ovsParse(dir, e.dialect, [e.text]);
        if (res.ok) problems.push(`invalid.txt:${e.lineNo}: ovs-ofctl accepts '${e.text}' (prints ${res.rules[0]})`);
        const mine = ours(e);
        if (mine.ok) problems.push(`invalid.txt:${e.lineNo}: nvs accepts '${e.text}' (prints ${mine.text})`);
        else if (mine.error.code !== 'RULE_SYNTAX') problems.push(`invalid.txt:${e.lineNo}: nvs gives ${mine.error.code}, want RULE_SYNTAX`);
      }),
    );
    expect(problems, problems.join('\n')).toEqual([]);
  });

  it('stricter: lines ovs-ofctl accepts that nvs rejects on purpose, with the documented code', async () => {
    const stricter = readCorpus('stricter.txt');
    const problems: string[] = [];
    for (const dialect of ['of10', 'of13'] as const) {
      const entries = stricter.filter((e) => e.dialect === dialect);
      if (entries.length === 0) continue;
      const res = await ovsParse(dir, dialect, entries.map((e) => e.text));
      if (!res.ok) problems.push(`ovs-ofctl rejects part of stricter.txt (${dialect}); move those lines to invalid.txt: ${res.error}`);
      for (const e of entries) {
        const mine = ours(e);
        if (mine.ok) problems.push(`stricter.txt:${e.lineNo}: nvs accepts '${e.text}'`);
        else if (mine.error.code !== (e.code ?? 'RULE_SYNTAX')) {
          problems.push(`stricter.txt:${e.lineNo}: nvs gives ${mine.error.code}, want ${e.code}: ${mine.error.message}`);
        }
      }
    }
    expect(problems, problems.join('\n')).toEqual([]);
  });
});
