// The addon must load when the caller is an esbuild bundle elsewhere in the
// repository (as dist/nvs-*.js are), and NVS_DATAPATH_ADDON must override.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { AddonNotFoundError, Datapath, findAddon } from '../src/index.ts';

const repo = resolve(fileURLToPath(import.meta.url), '../../../..');
const dir = mkdtempSync(join(repo, '.datapath-bundle-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('addon loader', () => {
  it('finds the addon from a bundle outside the package', async () => {
    const entry = join(dir, 'probe.ts');
    writeFileSync(
      entry,
      "import { Datapath } from '@nvs/datapath';\n" +
        "const dp = Datapath.open({ threads: 0 });\n" +
        "const p = dp.addPort('p', 'dummy');\n" +
        "process.stdout.write(JSON.stringify({ port: p, size: dp.keys.size }));\n" +
        'dp.close();\n',
    );
    // Same options as scripts/bundle.mjs.
    await build({
      entryPoints: [entry],
      outfile: join(dir, 'probe.js'),
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'esm',
      external: ['*.node'],
      banner: { js: "import { createRequire as __nvsCreateRequire } from 'node:module'; const require = __nvsCreateRequire(import.meta.url);" },
      logLevel: 'error',
    });
    const env = { ...process.env };
    delete env.NVS_DATAPATH_ADDON;
    const out = execFileSync(process.execPath, [join(dir, 'probe.js')], { env, encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual({ port: 1, size: 136 });
  });

  it('honours an explicit path and says what to do when it is wrong', () => {
    const found = findAddon();
    expect(findAddon(found)).toBe(found);
    expect(() => Datapath.open({ addonPath: join(dir, 'missing.node') })).toThrow(AddonNotFoundError);
    expect(() => findAddon(join(dir, 'missing.node'))).toThrow(/NVS_DATAPATH_ADDON/);
  });
});

describe('process exit', () => {
  it('exits cleanly when a datapath with threads and an upcall callback is never closed', () => {
    // The env cleanup hook must stop the polling and bridge threads; the weak
    // thread-safe function must not keep the event loop alive.
    const script = join(dir, 'forgetful.mjs');
    writeFileSync(
      script,
      `import { createRequire } from 'node:module';
const addon = createRequire(import.meta.url)(${JSON.stringify(findAddon())});
const dp = new addon.Datapath({ threads: 2 });
const p = dp.addPort('p', 'dummy');
let n = 0;
// Each upcall record of a 60-byte packet: 24-byte header, key, packet, padded to 8.
const record = (24 + addon.flowKeySize() + 60 + 7) & ~7;
dp.onUpcalls((batch) => { n += batch.length / record; });
const f = Buffer.alloc(60); f.writeUInt16BE(0x0800, 12);
dp.inject(p, [f, f, f]);
setTimeout(() => { process.stdout.write(String(n)); }, 200);
`,
    );
    const out = execFileSync(process.execPath, [script], { encoding: 'utf8', timeout: 30_000 });
    expect(out).toBe('3');
  });
});
