// The layering of nvs, checked: who may import whom. The table below is the
// rule and its documentation at once; a package that imports what its row
// does not list fails `npm test`. Imports are read from the syntax tree
// (TypeScript's parser), so comments and strings that mention a package do
// not count, and type-only imports do: knowing a type is knowing the package.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');

/**
 * Each package (`packages/<name>`, imported as `@nvs/<name>`, only through its
 * entry point `src/index.ts`), what it holds, and which of our packages its
 * sources and tests may import. Anything not listed is refused.
 */
const LAYERS: Record<string, { holds: string; mayImport: readonly string[] }> = {
  jsonrpc: { holds: 'JSON-RPC 1.0 framing and connection, and the error objects replies carry', mayImport: [] },
  daemon: { holds: 'run dir, pid files, --detach, logging (VLog), the unixctl server and client', mayImport: ['jsonrpc'] },
  ovsdb: { holds: 'the database: data model, schema, transactions, monitors, storage, server, client + IDL', mayImport: ['jsonrpc', 'daemon'] },
  ofproto: { holds: 'flows: match/action model, rule syntax, classifier, tables, xlate, MAC learning; reaches a datapath only through its Dpif interface', mayImport: [] },
  openflow: { holds: 'the OpenFlow wire protocol: messages, NXM/OXM matches and actions to and from ofproto\'s model', mayImport: ['ofproto'] },
  datapath: { holds: "the Rust addon's TypeScript face: loader, key and action codecs", mayImport: [] },
  cluster: { holds: 'many hosts on Redis: the registry, network membership and MAC locations, and the rules that follow from them (as rule text)', mayImport: [] },
  vswitchd: { holds: 'the switch daemon: database -> bridges -> ofproto -> datapath', mayImport: ['jsonrpc', 'daemon', 'ovsdb', 'ofproto', 'openflow', 'datapath', 'cluster'] },
  cli: { holds: 'the nvs-* commands: they talk to the daemons (database client, unixctl, management socket), not to the addon', mayImport: ['jsonrpc', 'daemon', 'ovsdb'] },
};

/**
 * The one exception: `nvs-ofctl parse-pcap` loads vswitchd's pcap reader,
 * and through it the addon, lazily, for offline use, from this file only and
 * only as a dynamic `import()` (so the other commands never load it).
 */
const LAZY_ADDON = { file: 'packages/cli/src/ofctl/main.ts', pkg: 'vswitchd' };

/**
 * The one thing ofproto takes from the datapath package: the key vocabulary
 * (the datapath's flow key type and its zero value), so the slow path and
 * the fast path name key fields one way. Named imports of these only: never
 * the addon, its loader or its codecs.
 */
const KEY_VOCABULARY = { pkg: 'ofproto', from: 'datapath', names: ['FlowKey', 'zeroFlowKey'] };

/** The one file outside its package that a package's tests may import: it decides about tests needing the OVS tools, and imports nothing of ours. */
const SHARED_TEST_HELPER = 'test/ovs-tools.ts';

/** The Rust core knows nothing of Node: no napi crate among its dependencies, no napi path in its code. */
const RUST_CORE = 'crates/datapath';

interface Import {
  file: string;
  line: number;
  specifier: string;
  dynamic: boolean;
  /** The names a static `import { … }` takes; undefined for any other form (namespace, default, side effect, re-export, dynamic). */
  names?: string[];
}

function tsFiles(dir: string): string[] {
  let out: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of names) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out = out.concat(tsFiles(path));
    else if (name.endsWith('.ts')) out.push(path);
  }
  return out;
}

/** Every module a file imports: `import`/`export … from`, `import()` and `require()`. */
function importsOf(path: string): Import[] {
  const text = readFileSync(path, 'utf8');
  const sf = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true);
  const out: Import[] = [];
  const add = (node: ts.Node, spec: ts.Expression | undefined, dynamic: boolean, names?: string[]): void => {
    if (!spec || !ts.isStringLiteralLike(spec)) return;
    const line = sf.getLineAndCharacterOfPosition(node.getStart()).line + 1;
    out.push({ file: relative(ROOT, path), line, specifier: spec.text, dynamic, names });
  };
  const namedOnly = (node: ts.ImportDeclaration): string[] | undefined => {
    const clause = node.importClause;
    if (!clause || clause.name || !clause.namedBindings || !ts.isNamedImports(clause.namedBindings)) return undefined;
    return clause.namedBindings.elements.map((e) => (e.propertyName ?? e.name).text);
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) add(node, node.moduleSpecifier, false, namedOnly(node));
    else if (ts.isExportDeclaration(node)) add(node, node.moduleSpecifier, false);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) add(node, node.moduleReference.expression, false);
    else if (ts.isCallExpression(node)) {
      const callee = node.expression;
      if (callee.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(callee) && callee.text === 'require')) add(node, node.arguments[0], true);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node, node.argument.literal, false);
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

/** Breaches of the table by one package's import, as messages; none when it is allowed. */
function breaches(pkg: string, imp: Import): string[] {
  const where = `${imp.file}:${imp.line}: '${imp.specifier}'`;
  if (imp.specifier.startsWith('.')) {
    const target = resolve(ROOT, dirname(imp.file), imp.specifier);
    const home = join(ROOT, 'packages', pkg) + sep;
    const helper = imp.file.startsWith(`packages/${pkg}/test/`) && target === join(ROOT, SHARED_TEST_HELPER);
    return target.startsWith(home) || helper ? [] : [`${where} reaches outside packages/${pkg} by a relative path (import @nvs/<name> instead)`];
  }
  const m = /^@nvs\/([^/]+)(\/.*)?$/.exec(imp.specifier);
  if (!m) return [];
  const [, target, deep] = m;
  if (deep) return [`${where} imports inside @nvs/${target} (import its entry point, '@nvs/${target}')`];
  if (target === pkg || LAYERS[pkg].mayImport.includes(target)) return [];
  if (imp.file === LAZY_ADDON.file && target === LAZY_ADDON.pkg && imp.dynamic) return [];
  if (pkg === KEY_VOCABULARY.pkg && target === KEY_VOCABULARY.from && imp.names?.length && imp.names.every((n) => KEY_VOCABULARY.names.includes(n))) return [];
  return [`${where}: ${pkg} may not import @nvs/${target} (it may import: ${LAYERS[pkg].mayImport.join(', ') || 'none of ours'})`];
}

describe('layering', () => {
  it('the table names every package there is', () => {
    const dirs = readdirSync(join(ROOT, 'packages')).filter((d) => statSync(join(ROOT, 'packages', d)).isDirectory());
    expect(dirs.sort()).toEqual(Object.keys(LAYERS).sort());
  });

  it.each(Object.keys(LAYERS))('%s imports only what its row allows, and only through entry points', (pkg) => {
    const files = ['src', 'test'].flatMap((d) => tsFiles(join(ROOT, 'packages', pkg, d)));
    expect(files.length).toBeGreaterThan(0);
    const found = files.flatMap(importsOf).flatMap((imp) => breaches(pkg, imp));
    expect(found).toEqual([]);
  });

  it(`${SHARED_TEST_HELPER}, which package tests share, imports nothing of ours`, () => {
    expect(importsOf(join(ROOT, SHARED_TEST_HELPER)).filter((imp) => !imp.specifier.startsWith('node:'))).toEqual([]);
  });

  it("the exception's file exists, so the exception cannot outlive it unnoticed", () => {
    expect(statSync(join(ROOT, LAZY_ADDON.file)).isFile()).toBe(true);
  });

  it('the checker itself catches each kind of breach', () => {
    const at = (file: string, specifier: string, dynamic = false): Import => ({ file, line: 1, specifier, dynamic });
    expect(breaches('ofproto', at('packages/ofproto/src/x.ts', '@nvs/ovsdb'))).toHaveLength(1);
    expect(breaches('ovsdb', at('packages/ovsdb/src/x.ts', '@nvs/ofproto'))).toHaveLength(1);
    expect(breaches('cli', at('packages/cli/src/x.ts', '@nvs/ovsdb/src/idl.ts'))).toHaveLength(1);
    expect(breaches('cli', at('packages/cli/src/x.ts', '../../../ovsdb/src/idl.ts'))).toHaveLength(1);
    expect(breaches('cli', at(LAZY_ADDON.file, '@nvs/vswitchd'))).toHaveLength(1);
    expect(breaches('cli', at('packages/cli/src/vsctl/main.ts', '@nvs/datapath', true))).toHaveLength(1);
    expect(breaches('cli', at(LAZY_ADDON.file, '@nvs/vswitchd', true))).toEqual([]);
    expect(breaches('vswitchd', at('packages/vswitchd/src/x.ts', '@nvs/datapath'))).toEqual([]);
    const named = (names: string[]): Import => ({ ...at('packages/ofproto/src/x.ts', '@nvs/datapath'), names });
    expect(breaches('ofproto', named(['FlowKey', 'zeroFlowKey']))).toEqual([]);
    expect(breaches('ofproto', named(['FlowKey', 'Datapath']))).toHaveLength(1);
    expect(breaches('ofproto', at('packages/ofproto/src/x.ts', '@nvs/datapath'))).toHaveLength(1);
    expect(breaches('ofproto', at('packages/ofproto/test/x.test.ts', '../../../test/ovs-tools.ts'))).toEqual([]);
    expect(breaches('ofproto', at('packages/ofproto/src/x.ts', '../../../test/ovs-tools.ts'))).toHaveLength(1);
    expect(breaches('ofproto', at('packages/ofproto/test/x.test.ts', '../../../test/e2e-harness.ts'))).toHaveLength(1);
  });

  it(`the Rust core (${RUST_CORE}) knows no napi`, () => {
    const manifest = readFileSync(join(ROOT, RUST_CORE, 'Cargo.toml'), 'utf8');
    let table = '';
    const napiDeps: string[] = [];
    for (const raw of manifest.split('\n')) {
      const line = raw.trim();
      const header = /^\[(.*)\]$/.exec(line);
      if (header) table = header[1];
      else if (/dependencies/.test(table) && /^"?napi/.test(line)) napiDeps.push(`[${table}] ${line}`);
      else if (/dependencies\.napi/.test(table)) napiDeps.push(`[${table}]`);
    }
    expect(napiDeps).toEqual([]);
    const rustFiles = (dir: string): string[] =>
      readdirSync(dir).flatMap((name) => {
        const path = join(dir, name);
        if (name === 'target') return [];
        if (statSync(path).isDirectory()) return rustFiles(path);
        return name.endsWith('.rs') ? [path] : [];
      });
    const uses = rustFiles(join(ROOT, RUST_CORE)).flatMap((path) =>
      readFileSync(path, 'utf8')
        .split('\n')
        .map((line, i) => ({ line, at: `${relative(ROOT, path)}:${i + 1}` }))
        .filter(({ line }) => /\bnapi(_derive|_sys)?::|\buse\s+napi/.test(line.replace(/\/\/.*$/, '')))
        .map(({ at, line }) => `${at}: ${line.trim()}`),
    );
    expect(uses).toEqual([]);
  });
});
