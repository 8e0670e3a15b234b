// What the OVSDB benches share: starting nvs-dbserver or OVS's ovsdb-server
// on a fresh database file, the add-port transaction, and reading a server's
// CPU time and RSS from /proc. (Kept under bench/lib/: `npm run bench` runs
// every bench/*.mjs.)
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SCHEMA = join(ROOT, 'configs', 'vswitch.ovsschema');

function canConnect(path) {
  return new Promise((resolve) => {
    const s = connect(path, () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * Starts `kind` ('nvs': the bundle `nvsBin` under this Node, with `nodeArgs`;
 * 'ovs': ovsdb-server) on a new database in `dir`; resolves once its socket
 * accepts connections.
 */
export async function startServer(kind, dir, { nvsBin, nodeArgs = [] } = {}) {
  mkdirSync(dir, { recursive: true });
  const db = join(dir, 'conf.db');
  const sock = join(dir, 'db.sock');
  execFileSync('ovsdb-tool', ['create', db, SCHEMA]);
  const child =
    kind === 'nvs'
      ? spawn(process.execPath, [...nodeArgs, nvsBin, '--rundir', dir, db, `--remote=punix:${sock}`, '-vANY:console:off'], { stdio: 'ignore' })
      : spawn('ovsdb-server', [db, `--remote=punix:${sock}`, `--unixctl=${join(dir, 'ctl')}`, '--no-chdir', '-vconsole:off'], { stdio: 'ignore' });
  for (let i = 0; i < 400; i++) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
    if (existsSync(sock) && (await canConnect(sock))) return { kind, child, sock };
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`no server socket at ${sock}`);
}

/**
 * One add-port transaction: insert Interface + insert Port, mutate Bridge.ports (as the anchors' scripts).
 * `ref` makes the uuid-names unique when several ports go in one transaction.
 */
export function addPortOps(bridge, name, ref = '') {
  return [
    { op: 'insert', table: 'Interface', row: { name, type: 'internal' }, 'uuid-name': `i${ref}` },
    { op: 'insert', table: 'Port', row: { name, interfaces: ['named-uuid', `i${ref}`] }, 'uuid-name': `p${ref}` },
    { op: 'mutate', table: 'Bridge', where: [['_uuid', '==', bridge]], mutations: [['ports', 'insert', ['set', [['named-uuid', `p${ref}`]]]]] },
  ];
}

/** CPU time (user + system) a process has used, in seconds (clock ticks of 10 ms). */
export function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

export function rssKiB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
