// Bundles each CLI entry point into dist/ with esbuild: one file per command
// starts far faster than resolving a tree of modules (nvs-vsctl cold start).
import { build } from 'esbuild';
import { readdirSync, existsSync } from 'node:fs';
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
  format: 'esm',
  sourcemap: true,
  external: ['*.node'],
  banner: { js: "import { createRequire as __nvsCreateRequire } from 'node:module'; const require = __nvsCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});
