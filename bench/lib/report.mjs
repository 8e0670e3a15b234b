// The report of one `npm run bench` run: per metric the median, spread and
// nvs/anchor ratio (>1 always means nvs is better), a Markdown summary, and
// SVG charts drawn here (bars per scenario, lines for the scaling studies).
import { median } from './contract.mjs';

const isRounds = (v) => Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number' && Number.isFinite(x));

/** Median, spread and count of one system's per-round values, or its reason for being absent. */
export function stat(v) {
  if (typeof v === 'string') return { absent: v.replace(/^absent:\s*/, '') };
  if (!isRounds(v)) return { absent: 'no values' };
  return { median: median(v), min: Math.min(...v), max: Math.max(...v), n: v.length };
}

/** nvs/anchor as "how many times better nvs is": higher-is-better m_nvs/m_anchor, lower-is-better m_anchor/m_nvs. */
export function ratio(metric, nvsStat, anchorStat) {
  if (nvsStat.absent || anchorStat.absent || !nvsStat.median || !anchorStat.median) return undefined;
  return metric.better === 'higher' ? nvsStat.median / anchorStat.median : anchorStat.median / nvsStat.median;
}

/** Every metric of every scenario with its statistics and ratios. */
export function summarize(scenarios) {
  const rows = [];
  for (const sc of scenarios) {
    for (const m of sc.metrics ?? []) {
      const nvs = Object.fromEntries(Object.entries(m.nvs ?? {}).map(([k, v]) => [k, stat(v)]));
      const anchors = Object.fromEntries(Object.entries(m.anchors ?? {}).map(([k, v]) => [k, stat(v)]));
      const ratios = [];
      for (const [vn, vs] of Object.entries(nvs)) {
        // A variant is compared with its own kind of anchor where there is one (afxdp with ovs-afxdp), else with every anchor.
        const same = Object.keys(anchors).filter((an) => an.endsWith(`-${vn}`));
        for (const an of same.length ? same : Object.keys(anchors)) {
          const r = ratio(m, vs, anchors[an]);
          if (r !== undefined) ratios.push({ variant: vn, anchor: an, ratio: r });
        }
      }
      let goal;
      if (m.goal) {
        const r = ratios.find((x) => x.variant === m.goal.variant && x.anchor === m.goal.anchor);
        goal = { ...m.goal, measured: r?.ratio, met: r ? r.ratio >= m.goal.ratio : undefined };
      }
      rows.push({ scenario: sc.scenario, metric: m, nvs, anchors, ratios, goal });
    }
  }
  return rows;
}

const num = (x) => {
  if (x === undefined || Number.isNaN(x)) return '?';
  const a = Math.abs(x);
  if (a >= 1e5) return Math.round(x).toLocaleString('en-US');
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  return x.toPrecision(2);
};
const cell = (s) => (s.absent ? `absent (${s.absent})` : s.n > 1 ? `${num(s.median)} (${num(s.min)}–${num(s.max)})` : num(s.median));
const times = (r) => `${r.toFixed(2)}×`;

/**
 * Growth exponents between successive points of a line (log Δy / log Δx):
 * 1 is linear; a cost above 1 grows faster than linearly.
 */
export function exponents(points) {
  const out = [];
  for (let i = 1; i < points.length; i++) {
    const [x0, y0] = points[i - 1];
    const [x1, y1] = points[i];
    if (x0 > 0 && x1 > x0 && y0 > 0 && y1 > 0) out.push({ from: x0, to: x1, k: Math.log(y1 / y0) / Math.log(x1 / x0) });
  }
  return out;
}

/** The Markdown summary; `charts` maps a scenario or series name to its SVG file name (relative). */
export function markdown(run, scenarios, charts) {
  const rows = summarize(scenarios);
  const out = [];
  const load = run.load.map((x) => x.toFixed(1));
  out.push(`# nvs benchmarks: ${run.started.slice(0, 16).replace('T', ' ')} UTC on ${run.host}`);
  out.push('');
  out.push(`Machine: ${run.machine.cpus} × ${run.machine.cpu}, ${run.machine.memGiB} GiB, Linux ${run.machine.kernel}, Node ${run.machine.node}. ` +
    `Commit ${run.commit} (where a scenario ran at another, its section says so). Mode: ${run.quick ? 'quick (`npm run bench -- --quick`)' : 'full (`npm run bench`)'}; ${Math.round(run.seconds / 60)} min. ` +
    `Load average (1 min) seen during the run: ${load.length ? `${Math.min(...run.load).toFixed(1)}–${Math.max(...run.load).toFixed(1)}` : '?'} on ${run.machine.cpus} cores` +
    `${Math.max(...run.load) > 1.5 ? ' — other work was running, so absolute figures are noisy; ratios come from alternated rounds (nvs, anchor, nvs, anchor …) of one run' : ''}.`);
  out.push('');
  out.push('Each cell: median over rounds (lowest–highest). A ratio is how many times better nvs is than the anchor on the same work: nvs/anchor where higher is better, anchor/nvs where lower is better, so above 1 means nvs is ahead.');
  out.push('');
  const goals = rows.filter((r) => r.goal);
  if (goals.length) {
    out.push('## Goals as ratios against OVS');
    out.push('');
    out.push('| scenario | metric | nvs | anchor | ratio | goal | met |');
    out.push('|---|---|---|---|---|---|---|');
    for (const r of goals) {
      const g = r.goal;
      out.push(`| ${r.scenario} | ${r.metric.label} (${r.metric.unit}, ${r.metric.better} is better) | ${g.variant}: ${cell(r.nvs[g.variant] ?? { absent: 'not run' })} | ${g.anchor}: ${cell(r.anchors[g.anchor] ?? { absent: 'not run' })} | ${g.measured === undefined ? '—' : times(g.measured)} | ≥ ${g.ratio}× | ${g.met === undefined ? 'not measured' : g.met ? '**yes**' : '**no**'} |`);
    }
    out.push('');
  }
  for (const sc of scenarios) {
    out.push(`## ${sc.scenario}: ${sc.title ?? ''}`);
    out.push('');
    if (sc.error) {
      const partial = (sc.metrics?.length ?? 0) + (sc.series?.length ?? 0) > 0;
      out.push(partial ? `Stopped before the end (${sc.error}); what it measured until then:` : `Not measured: ${sc.error}`);
      out.push('');
      if (!partial) continue;
    }
    out.push(`${sc.rounds ?? '?'} rounds${sc.quick ? ' (quick size)' : ''}; load average ${(sc.load ?? []).map((x) => x.toFixed(1)).join(' → ')}; ${Math.round(sc.seconds ?? 0)} s${sc.commit && sc.commit !== run.commit ? `; commit ${sc.commit}` : ''}.`);
    out.push('');
    const mine = rows.filter((r) => r.scenario === sc.scenario);
    if (mine.length) {
      out.push('| metric | nvs | anchors | nvs/anchor |');
      out.push('|---|---|---|---|');
      for (const r of mine) {
        const nv = Object.entries(r.nvs).map(([k, s]) => `${k}: ${cell(s)}`).join('<br>');
        const an = Object.entries(r.anchors).map(([k, s]) => `${k}: ${cell(s)}`).join('<br>') || '— (no anchor)';
        const ra = r.ratios.map((x) => `${Object.keys(r.nvs).length > 1 ? `${x.variant} ` : ''}vs ${x.anchor}: ${times(x.ratio)}`).join('<br>') || '—';
        out.push(`| ${r.metric.label} (${r.metric.unit}, ${r.metric.better} is better) | ${nv} | ${an} | ${ra} |`);
      }
      out.push('');
    }
    if (charts[sc.scenario]) out.push(`![${sc.scenario}](${charts[sc.scenario]})`, '');
    for (const s of sc.series ?? []) {
      out.push(`**${s.title ?? s.name}** (${s.y} by ${s.x}, ${s.better} is better). Growth exponent between points (1 = linear; above 1 grows faster than linearly):`);
      out.push('');
      for (const [name, pts] of Object.entries(s.lines)) {
        if (typeof pts === 'string') out.push(`- ${name}: ${pts}`);
        else out.push(`- ${name}: ${pts.map(([x, y]) => `${num(x)} → ${num(y)}`).join(', ')}; exponents ${exponents(pts).map((e) => e.k.toFixed(2)).join(', ') || '—'}`);
      }
      out.push('');
      if (charts[`${sc.scenario}/${s.name}`]) out.push(`![${s.name}](${charts[`${sc.scenario}/${s.name}`]})`, '');
    }
  }
  return `${out.join('\n')}\n`;
}

// ---- SVG ----

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const PALETTE = ['#1f5fbf', '#5b9bef', '#9cc3f5', '#e07b00', '#c0392b', '#2e8b57', '#8e44ad', '#7f8c8d'];

const isAnchor = (name) => /ovs(?!-ofctl→nvs)|bridge|testpmd|wire/i.test(name) && !name.startsWith('nvs');

/** One colour per system, nvs's first (blues), anchors after (warm colours), stable within one chart. */
function colours(names) {
  const map = new Map();
  const nvs = names.filter((n) => !isAnchor(n));
  const other = names.filter(isAnchor);
  nvs.forEach((n, i) => map.set(n, PALETTE[Math.min(i, 2)]));
  // more nvs lines than blues: the greys and greens after the anchors' colours
  nvs.slice(3).forEach((n, i) => map.set(n, PALETTE[5 + (i % 3)]));
  other.forEach((n, i) => map.set(n, PALETTE[3 + (i % 5)]));
  return map;
}

/** A legend row: a swatch and a name per system, spaced by the names' lengths. */
function legend(entries, x, y) {
  let at = x;
  return entries
    .map(([name, colour]) => {
      const item = `<rect x="${at}" y="${y - 10}" width="12" height="12" fill="${colour}"/><text x="${at + 16}" y="${y}" font-size="12">${esc(name)}</text>`;
      at += 30 + 7 * name.length;
      return item;
    })
    .join('');
}

/**
 * Horizontal bars, one panel per metric of a scenario (each with its own
 * scale and unit), one bar per system with its lowest–highest whisker.
 */
export function barChart(scenario, rows) {
  const systems = [];
  for (const r of rows) for (const k of [...Object.keys(r.nvs).map((v) => `nvs ${v}`), ...Object.keys(r.anchors)]) if (!systems.includes(k)) systems.push(k);
  const col = colours(systems);
  const W = 900;
  const labelW = 190;
  const plotW = W - labelW - 210;
  const barH = 16;
  const parts = [];
  let y = 88;
  for (const r of rows) {
    const bars = [...Object.entries(r.nvs).map(([k, s]) => [`nvs ${k}`, s]), ...Object.entries(r.anchors)];
    const max = Math.max(...bars.map(([, s]) => (s.absent ? 0 : s.max)), 0) || 1;
    const many = Object.keys(r.nvs).length > 1;
    const best = r.ratios.length ? ` — nvs/anchor: ${r.ratios.map((x) => `${many ? `${x.variant} ` : ''}${times(x.ratio)} vs ${x.anchor}`).slice(0, 4).join(', ')}` : '';
    parts.push(`<text x="10" y="${y}" font-size="13" font-weight="bold">${esc(r.metric.label)}</text>`);
    parts.push(`<text x="10" y="${y + 15}" font-size="11" fill="#555">${esc(`${r.metric.unit}, ${r.metric.better} is better${best}`)}</text>`);
    y += 24;
    for (const [name, s] of bars) {
      parts.push(`<text x="${labelW - 6}" y="${y + barH - 4}" font-size="12" text-anchor="end">${esc(name)}</text>`);
      if (s.absent) {
        parts.push(`<text x="${labelW + 4}" y="${y + barH - 4}" font-size="11" fill="#888">absent: ${esc(s.absent.length > 110 ? `${s.absent.slice(0, 107)}…` : s.absent)}</text>`);
      } else {
        const w = (s.median / max) * plotW;
        parts.push(`<rect x="${labelW}" y="${y}" width="${Math.max(1, w).toFixed(1)}" height="${barH}" fill="${col.get(name)}"/>`);
        if (s.n > 1) {
          const [a, b] = [(s.min / max) * plotW + labelW, (s.max / max) * plotW + labelW];
          parts.push(`<line x1="${a.toFixed(1)}" x2="${b.toFixed(1)}" y1="${y + barH / 2}" y2="${y + barH / 2}" stroke="#222" stroke-width="1"/>`);
          parts.push(`<line x1="${a.toFixed(1)}" x2="${a.toFixed(1)}" y1="${y + 3}" y2="${y + barH - 3}" stroke="#222"/><line x1="${b.toFixed(1)}" x2="${b.toFixed(1)}" y1="${y + 3}" y2="${y + barH - 3}" stroke="#222"/>`);
        }
        parts.push(`<text x="${labelW + plotW + 8}" y="${y + barH - 4}" font-size="12">${esc(`${num(s.median)} ${r.metric.unit}`)}</text>`);
      }
      y += barH + 4;
    }
    // the value axis: 0 and the panel's largest value
    parts.push(`<line x1="${labelW}" x2="${labelW + plotW}" y1="${y}" y2="${y}" stroke="#999"/>`);
    parts.push(`<text x="${labelW}" y="${y + 12}" font-size="10" fill="#555">0</text><text x="${labelW + plotW}" y="${y + 12}" font-size="10" fill="#555" text-anchor="end">${esc(`${num(max)} ${r.metric.unit}`)}</text>`);
    y += 30;
  }
  const head =
    `<text x="10" y="20" font-size="15" font-weight="bold">${esc(scenario.length > 100 ? `${scenario.slice(0, 97)}…` : scenario)}</text>` +
    `<text x="10" y="38" font-size="12" fill="#555">bars: median over rounds; whisker: lowest–highest round; each panel has its own scale</text>${legend([...col.entries()], 10, 62)}`;
  return svg(W, y, head + parts.join(''));
}

const svg = (w, h, body) =>
  `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="sans-serif"><rect width="${w}" height="${h}" fill="white"/>${body}</svg>\n`;

/** log10 ticks covering [lo, hi]. */
function decades(lo, hi) {
  const out = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) out.push(10 ** e);
  return out;
}

/**
 * A scaling study on log-log axes, one line per system; for a cost, a dotted
 * slope-1 guide from each line's first point: a line that climbs above its
 * guide grows faster than linearly.
 */
export function lineChart(series) {
  const lines = Object.entries(series.lines).filter(([, p]) => Array.isArray(p) && p.length > 0);
  const absent = Object.entries(series.lines).filter(([, p]) => typeof p === 'string');
  const T = 60 + 12 * absent.length;
  const W = 760;
  const H = 440;
  const L = 80;
  const R = 45;
  const B = 70;
  const xs = lines.flatMap(([, p]) => p.map((q) => q[0])).filter((v) => v > 0);
  const ys = lines.flatMap(([, p]) => p.map((q) => q[1])).filter((v) => v > 0);
  if (!xs.length) return svg(W, 80, `<text x="10" y="30" font-size="14">${esc(series.title ?? series.name)}: no points</text>`);
  const xt = decades(Math.min(...xs), Math.max(...xs));
  const yt = decades(Math.min(...ys), Math.max(...ys));
  const [x0, x1, y0, y1] = [Math.log10(xt[0]), Math.log10(xt.at(-1)), Math.log10(yt[0]), Math.log10(yt.at(-1))];
  const px = (x) => L + ((Math.log10(x) - x0) / (x1 - x0 || 1)) * (W - L - R);
  const py = (y) => H - B - ((Math.log10(y) - y0) / (y1 - y0 || 1)) * (H - T - B);
  const col = colours(lines.map(([n]) => n));
  const p = [];
  p.push(`<text x="10" y="20" font-size="15" font-weight="bold">${esc(series.title ?? series.name)}</text>`);
  // A cost (lower is better) gets a linear-growth guide: a line above its guide grows faster than linearly.
  const guide = series.better === 'lower';
  p.push(`<text x="10" y="38" font-size="12" fill="#555">${esc(`${series.better} is better; log–log axes${guide ? "; dotted: linear growth from each line's first point (above it = faster than linear)" : ''}`)}</text>`);
  for (const t of xt) p.push(`<line x1="${px(t)}" x2="${px(t)}" y1="${T}" y2="${H - B}" stroke="#eee"/><text x="${px(t)}" y="${H - B + 16}" font-size="11" text-anchor="middle">${esc(num(t))}</text>`);
  for (const t of yt) p.push(`<line x1="${L}" x2="${W - R}" y1="${py(t)}" y2="${py(t)}" stroke="#eee"/><text x="${L - 6}" y="${py(t) + 4}" font-size="11" text-anchor="end">${esc(num(t))}</text>`);
  p.push(`<line x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}" stroke="#333"/><line x1="${L}" x2="${L}" y1="${T}" y2="${H - B}" stroke="#333"/>`);
  p.push(`<text x="${(L + W - R) / 2}" y="${H - B + 36}" font-size="13" text-anchor="middle">${esc(series.x)}</text>`);
  p.push(`<text transform="translate(18 ${(T + H - B) / 2}) rotate(-90)" font-size="13" text-anchor="middle">${esc(series.y)}</text>`);
  for (const [name, pts] of lines) {
    const c = col.get(name);
    const [fx, fy] = pts[0];
    const lx = pts.at(-1)[0];
    if (guide && lx > fx) p.push(`<line x1="${px(fx)}" y1="${py(fy)}" x2="${px(lx)}" y2="${py(Math.min(fy * (lx / fx), 10 ** y1))}" stroke="${c}" stroke-dasharray="2 4" stroke-width="1.5"/>`);
    p.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${pts.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ')}"/>`);
    for (const [x, y] of pts) p.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3" fill="${c}"><title>${esc(`${name}: ${num(x)} ${series.x} → ${num(y)} ${series.y}`)}</title></circle>`);
  }
  p.push(legend([...col.entries()], L, H - 12));
  absent.forEach(([name, why], i) => p.push(`<text x="10" y="${54 + i * 12}" font-size="10" fill="#888">${esc(`${name}: ${why}`.slice(0, 120))}</text>`));
  return svg(W, H, p.join(''));
}
