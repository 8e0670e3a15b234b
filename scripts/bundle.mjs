// Bundles each CLI entry point into dist/ with esbuild: one file per command
// starts far faster than resolving a tree of modules (nvs-vsctl cold start),
// and CommonJS starts faster than ES modules on Node 20 (no ESM loader: about
// 15 ms of nvs-vsctl's start here). dist/package.json marks the bundles as
// CommonJS; import.meta.url, which the sources use to find files beside
// them, becomes the bundle's own URL.
import { build } from 'esbuild';
import { readdirSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const entries = {};
for (const pkg of ['cli', 'ovsdb', 'vswitchd']) {
  const dir = join('packages', pkg, 'src', 'bin');
  if (!existsSync(dir)) continue;
  for (const f of readdirSync(dir)) {
    if (f.endsWith('.ts')) entries[f.slice(0, -3)] = join(dir, f);
  }
}
await build({
  entryPoints: entries,
  outdir: 'dist',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: true,
  external: ['*.node'],
  define: { 'import.meta.url': '__nvsBundleUrl' },
  // "use strict" first, so that it is the bundle's directive (ES modules are strict).
  banner: { js: '"use strict";\nconst __nvsBundleUrl = require("node:url").pathToFileURL(__filename).href;' },
  logLevel: 'warning',
});
mkdirSync('dist', { recursive: true });
writeFileSync(join('dist', 'package.json'), '{ "type": "commonjs" }\n');
