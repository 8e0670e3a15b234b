// Preload for a Node server under a bench (`node --require bench/lib/alloc-profile.cjs …`):
// samples every allocation (V8's sampling heap profiler, objects that minor
// and major GCs collected included, so it counts what was allocated, not what
// survived). On SIGUSR2 it writes what was allocated since the previous
// SIGUSR2 to the file named by NVS_ALLOC_PROFILE — total bytes and the
// functions that allocated most (self bytes) — and starts counting afresh.
// Used by bench/ovsdb-load.mjs --alloc-profile to report bytes per commit.
'use strict';
const { Session } = require('node:inspector');
const { writeFileSync } = require('node:fs');

const out = process.env.NVS_ALLOC_PROFILE;
const session = new Session();
session.connect();
const post = (method, params = {}) =>
  new Promise((resolve, reject) => session.post(method, params, (err, res) => (err ? reject(err) : resolve(res))));
const start = () =>
  post('HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });

/** Sums self sizes per function (name, file:line) over the profile's call tree. */
function summarize(profile) {
  const byFn = new Map();
  let total = 0;
  const name = (f) => `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\//, '')}:${f.lineNumber + 1}`;
  // Built-ins (Map, iterator next, …) are shown with the function that called them.
  const walk = (node, parent) => {
    const f = node.callFrame;
    const key = f.url === '' && parent ? `${name(f)} < ${name(parent)}` : name(f);
    byFn.set(key, (byFn.get(key) ?? 0) + node.selfSize);
    total += node.selfSize;
    for (const c of node.children) walk(c, f.url === '' && parent ? parent : f);
  };
  walk(profile.head, undefined);
  const top = [...byFn].sort((a, b) => b[1] - a[1]).slice(0, 40);
  return { totalBytes: total, top };
}

post('HeapProfiler.enable').then(start);
process.on('SIGUSR2', async () => {
  const { profile } = await post('HeapProfiler.stopSampling');
  if (out) writeFileSync(out, JSON.stringify(summarize(profile)));
  await start();
});
