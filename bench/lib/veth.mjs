// What the veth benches share (veth-tcp, veth-pps): two namespaces joined
// over veth pairs through a switch — nvs, OVS userspace, or the Linux bridge —
// set up as /work/shared/anchors/veth-*.sh set them up (checksum offload off
// inside the namespaces), the bench contract's options, and its JSON file.
// Every name carries this process's id, so runs beside others do not collide.
import { execSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { contractOptions, roundsOf } from './contract.mjs';

const ROOT = resolve(import.meta.dirname, '..', '..');
const DIST = join(ROOT, 'dist');

export const sh = (cmd, opts = {}) => execSync(cmd, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts });
export const quiet = (cmd) => {
  try {
    return sh(cmd);
  } catch {
    return '';
  }
};
export const have = (bin) => quiet(`command -v ${bin}`).trim() !== '';
export const sleep = (s) => execSync(`sleep ${s}`);
export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** The bench contract's options (bench/lib/contract.mjs): --rounds N, --quick (one round), --json FILE. */
export function benchOptions(defaultRounds) {
  const { values } = parseArgs({ options: contractOptions });
  return { rounds: roundsOf(values, defaultRounds, 1), quick: values.quick, json: values.json, load: [loadavg()[0]] };
}

/** Writes the contract's JSON object when --json was given. */
export function writeJson(opts, body) {
  if (!opts.json) return;
  writeFileSync(opts.json, JSON.stringify({ ...body, rounds: opts.rounds, load: [...opts.load, loadavg()[0]] }, null, 2));
}

/** Two namespaces `ns[i]`, each holding `eth0` (10.233.0.i+1) of a veth pair whose host end is `veth[i]`. */
export function vethPair(prefix) {
  const ns = [`${prefix}a`, `${prefix}b`];
  const veth = [`${prefix}v1`, `${prefix}v2`];
  const bridge = `${prefix}br`;
  const teardown = () => {
    for (const v of veth) quiet(`ip link del ${v}`);
    for (const n of ns) quiet(`ip netns del ${n}`);
    quiet(`ip link del ${bridge}`);
  };
  const setup = () => {
    teardown();
    ns.forEach((n, i) => {
      sh(`ip netns add ${n}`);
      sh(`ip link add ${veth[i]} type veth peer name eth0 netns ${n}`);
      sh(`ip -n ${n} addr add 10.233.0.${i + 1}/24 dev eth0`);
      sh(`ip -n ${n} link set eth0 up`);
      sh(`ip -n ${n} link set lo up`);
      sh(`ip netns exec ${n} ethtool -K eth0 tx off`);
      sh(`ip link set ${veth[i]} up`);
    });
  };
  return { ns, veth, bridge, setup, teardown };
}

/**
 * Starts switch `mode` over the pair's host ends: 'bridge' (Linux bridge),
 * 'ovs-afxdp' (OVS userspace, type=afxdp), or 'nvs-<type>' with the
 * Interface settings `ifaceArgs` (e.g. 'type=afxdp'); the polling thread on
 * core 1 (pmd-cpu-mask 0x2). Returns its stop function.
 */
export function startSwitch(mode, pair, ifaceArgs) {
  if (mode === 'bridge') {
    sh(`ip link add ${pair.bridge} type bridge`);
    for (const v of pair.veth) sh(`ip link set ${v} master ${pair.bridge}`);
    sh(`ip link set ${pair.bridge} up`);
    return () => quiet(`ip link del ${pair.bridge}`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'nvs-bench-'));
  const db = `unix:${dir}/db.sock`;
  const vsctl = `ovs-vsctl --db=${db} --timeout=20`;
  let pids;
  if (mode.startsWith('ovs')) {
    const env = { ...process.env, OVS_RUNDIR: dir, OVS_LOGDIR: dir, OVS_DBDIR: dir };
    sh(`ovsdb-tool create ${dir}/conf.db /usr/share/openvswitch/vswitch.ovsschema`);
    sh(`ovsdb-server ${dir}/conf.db --remote=punix:${dir}/db.sock --pidfile=${dir}/ovsdb.pid --detach --log-file=${dir}/ovsdb.log`, { env });
    sh(`${vsctl} --no-wait init -- set Open_vSwitch . other_config:pmd-cpu-mask=0x2`);
    sh(`ovs-vswitchd ${db} --pidfile=${dir}/vswitchd.pid --detach --log-file=${dir}/vswitchd.log`, { env });
    pids = [`${dir}/vswitchd.pid`, `${dir}/ovsdb.pid`];
  } else {
    const env = { ...process.env, NVS_RUNDIR: dir };
    sh(`${DIST}/nvs-dbserver.js --rundir ${dir} --detach --pidfile --log-file --remote=punix:${dir}/db.sock ${dir}/conf.db`, { env });
    sh(`${vsctl} --no-wait init -- set Open_vSwitch . other_config:pmd-cpu-mask=0x2`);
    sh(`${DIST}/nvs-vswitchd.js --rundir ${dir} --detach --pidfile --log-file ${db}`, { env });
    pids = [`${dir}/nvs-vswitchd.pid`, `${dir}/nvs-dbserver.pid`];
  }
  const stop = () => {
    for (const p of pids) quiet(`kill $(cat ${p})`);
    sleep(0.5);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    sh(`${vsctl} add-br br0 -- set Bridge br0 datapath_type=netdev ${pair.veth.map((v) => `-- add-port br0 ${v} -- set Interface ${v} ${ifaceArgs}`).join(' ')}`);
    const err = sh(`${vsctl} get Interface ${pair.veth[0]} error`).trim();
    if (err !== '[]') throw new Error(`${mode}: ${err}`);
  } catch (e) {
    stop();
    throw e;
  }
  return stop;
}

export const loadNow = () => quiet('cat /proc/loadavg').split(' ')[0];

/**
 * Runs `measure()` for each mode in turn, `rounds` times (nvs, anchors, nvs,
 * …), each on a fresh pair and switch (`ifaceArgs[mode]`, else type=afxdp);
 * returns each mode's per-round results and prints each round with `show`.
 */
export function alternate(pair, modes, ifaceArgs, rounds, measure, show) {
  const results = Object.fromEntries(modes.map((m) => [m, []]));
  try {
    for (let r = 0; r < rounds; r++) {
      for (const mode of modes) {
        pair.setup();
        const stop = startSwitch(mode, pair, ifaceArgs[mode] ?? 'type=afxdp');
        try {
          const m = measure();
          results[mode].push(m);
          console.log(`round ${r + 1} ${mode}: ${show(m)} (load ${loadNow()})`);
        } finally {
          stop();
        }
      }
    }
  } finally {
    pair.teardown();
  }
  console.log(`\nmedians over ${rounds} rounds (alternated), load average now ${loadNow()}:`);
  return results;
}
