// The benchmark contract's side in a scenario script (bench/README.md): the
// options every script takes (--rounds N, --quick, --json FILE; flags win
// over the environment) and the JSON object it writes for bench/run.mjs.
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { basename } from 'node:path';

/** parseArgs options every scenario takes; spread them into the script's own. */
export const contractOptions = {
  rounds: { type: 'string' },
  quick: { type: 'boolean', default: false },
  json: { type: 'string' },
};

/**
 * Rounds from --rounds, else NVS_BENCH_ROUNDS, else the script's default
 * (`quickRounds` under --quick).
 */
export function roundsOf(opt, full, quick = full) {
  const n = Number(opt.rounds ?? process.env.NVS_BENCH_ROUNDS ?? (opt.quick ? quick : full));
  if (!Number.isInteger(n) || n < 1) throw new Error(`--rounds must be a positive integer, not ${opt.rounds}`);
  return n;
}

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * Collects one run's metrics and series; `write()` puts them in the --json
 * file (nothing without --json). The load average is read now and at write().
 */
export class Results {
  constructor(scriptUrl, title, opt, rounds) {
    this.doc = { scenario: basename(new URL(scriptUrl).pathname).replace(/\.(mjs|sh)$/, ''), title, rounds, quick: !!opt.quick, load: [loadavg()[0]], metrics: [], series: [] };
    this.file = opt.json;
  }

  /**
   * A metric: `nvs` maps nvs variants to per-round values, `anchors` maps
   * anchors to per-round values or "absent: why".
   */
  metric({ name, label, unit, better, nvs, anchors = {}, goal }) {
    if (better !== 'higher' && better !== 'lower') throw new Error(`metric ${name}: better must be "higher" or "lower"`);
    this.doc.metrics.push({ name, label, unit, better, nvs, anchors, ...(goal ? { goal } : {}) });
  }

  /** A scaling study: `lines` maps a name (nvs, ovs, …) to [x, y] points. */
  series({ name, title, x, y, better, lines }) {
    this.doc.series.push({ name, title, x, y, better, lines });
  }

  /** Writes what was collected so far (a long script may write after each part, so a stop keeps them). */
  write() {
    const doc = { ...this.doc, load: [this.doc.load[0], loadavg()[0]] };
    if (this.file) writeFileSync(this.file, `${JSON.stringify(doc, null, 1)}\n`);
  }
}
