// Two namespaces joined over veth pairs (as /work/shared/anchors/veth-tcp.sh
// sets them up: checksum offload off inside the namespaces), through nvs
// (type=system over AF_PACKET, and type=afxdp), OVS userspace with
// type=afxdp, and the Linux bridge, alternated for several rounds in one run:
// iperf3 TCP throughput, and iperf3 UDP with 64-byte payloads (packets per
// second received; iperf3 cannot offer as much as DPDK's testpmd, so this is
// a floor, not the pps the issue asks for). Prints medians; needs root,
// iperf3, ethtool, and ovs-vswitchd for the OVS rows. Fails on nothing.
import { execSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { contractOptions, Results, roundsOf } from './lib/contract.mjs';

const ROOT = resolve(import.meta.dirname, '..');
const DIST = join(ROOT, 'dist');
const { values: opt } = parseArgs({ options: contractOptions });
const ROUNDS = roundsOf(opt, 3, 2);
const SECS = Number(process.env.NVS_BENCH_SECS ?? (opt.quick ? 2 : 4));
const tag = String(process.pid % 10000);
const NS = [`nbt${tag}a`, `nbt${tag}b`];
const V = [`nbt${tag}v1`, `nbt${tag}v2`];
const BRX = `nbt${tag}br`;

const sh = (cmd, opts = {}) => execSync(cmd, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts });
const quiet = (cmd) => {
  try {
    return sh(cmd);
  } catch {
    return '';
  }
};
const have = (bin) => quiet(`command -v ${bin}`).trim() !== '';

function topology() {
  teardown();
  NS.forEach((ns, i) => {
    sh(`ip netns add ${ns}`);
    sh(`ip link add ${V[i]} type veth peer name eth0 netns ${ns}`);
    sh(`ip -n ${ns} addr add 10.233.0.${i + 1}/24 dev eth0`);
    sh(`ip -n ${ns} link set eth0 up`);
    sh(`ip -n ${ns} link set lo up`);
    sh(`ip netns exec ${ns} ethtool -K eth0 tx off`);
    sh(`ip link set ${V[i]} up`);
  });
}

function teardown() {
  for (const v of V) quiet(`ip link del ${v}`);
  for (const ns of NS) quiet(`ip netns del ${ns}`);
  quiet(`ip link del ${BRX}`);
}

/** Starts a switch for `mode`; returns its stop function. */
function start(mode) {
  if (mode === 'bridge') {
    sh(`ip link add ${BRX} type bridge`);
    for (const v of V) sh(`ip link set ${v} master ${BRX}`);
    sh(`ip link set ${BRX} up`);
    return () => quiet(`ip link del ${BRX}`);
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
  const type = mode.endsWith('afxdp') ? 'afxdp' : 'system';
  sh(`${vsctl} add-br br0 -- set Bridge br0 datapath_type=netdev ${V.map((v) => `-- add-port br0 ${v} -- set Interface ${v} type=${type}`).join(' ')}`);
  const err = sh(`${vsctl} get Interface ${V[0]} error`).trim();
  if (err !== '[]') throw new Error(`${mode}: ${err}`);
  return () => {
    for (const p of pids) quiet(`kill $(cat ${p})`);
    execSync('sleep 0.5');
    rmSync(dir, { recursive: true, force: true });
  };
}

function measure() {
  quiet(`ip netns exec ${NS[0]} ping -c 3 -i 0.2 -W 2 10.233.0.2`);
  sh(`ip netns exec ${NS[1]} iperf3 -s -1 -D -p 5201`);
  execSync('sleep 0.3');
  const tcp = JSON.parse(quiet(`ip netns exec ${NS[0]} timeout ${SECS + 10} iperf3 -c 10.233.0.2 -p 5201 -t ${SECS} -J`) || '{}');
  sh(`ip netns exec ${NS[1]} iperf3 -s -1 -D -p 5202`);
  execSync('sleep 0.3');
  const udp = JSON.parse(quiet(`ip netns exec ${NS[0]} timeout ${SECS + 10} iperf3 -c 10.233.0.2 -p 5202 -u -b 0 -l 64 -t ${SECS} -J`) || '{}');
  const gbps = (tcp.end?.sum_received?.bits_per_second ?? 0) / 1e9;
  const s = udp.end?.sum;
  const pps = s ? (s.packets - s.lost_packets) / s.seconds : 0;
  return { gbps, pps };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

if (process.getuid?.() !== 0 || !have('iperf3') || !have('ethtool')) {
  console.error('veth-tcp: needs root, iperf3 and ethtool');
  process.exit(1);
}
const modes = ['nvs-system', 'nvs-afxdp', ...(have('ovs-vswitchd') ? ['ovs-afxdp'] : []), 'bridge'];
const results = Object.fromEntries(modes.map((m) => [m, { gbps: [], pps: [] }]));
try {
  for (let r = 0; r < ROUNDS; r++) {
    for (const mode of modes) {
      topology();
      const stop = start(mode);
      try {
        const m = measure();
        results[mode].gbps.push(m.gbps);
        results[mode].pps.push(m.pps);
        console.log(`round ${r + 1} ${mode}: TCP ${m.gbps.toFixed(2)} Gbit/s, UDP 64 B ${Math.round(m.pps / 1000)}k pps received`);
      } finally {
        stop();
      }
    }
  }
} finally {
  teardown();
}
console.log('\nmedians over', ROUNDS, 'rounds (alternated):');
const ovs = results['ovs-afxdp'];
for (const mode of modes) {
  const g = median(results[mode].gbps);
  const p = median(results[mode].pps);
  const vs = ovs && mode.startsWith('nvs') ? ` (${(g / median(ovs.gbps)).toFixed(2)}x / ${(p / median(ovs.pps)).toFixed(2)}x OVS afxdp)` : '';
  console.log(`  ${mode.padEnd(11)} TCP ${g.toFixed(2)} Gbit/s, UDP 64 B ${Math.round(p / 1000)}k pps${vs}`);
}

const report = new Results(import.meta.url, 'Two namespaces over veths through the switch: iperf3 TCP and UDP 64 B', opt, ROUNDS);
const of = (f) => ({
  nvs: Object.fromEntries(modes.filter((m) => m.startsWith('nvs')).map((m) => [m.slice(4), results[m][f]])),
  anchors: { 'ovs-afxdp': results['ovs-afxdp']?.[f] ?? 'absent: ovs-vswitchd not installed', 'linux-bridge': results.bridge[f] },
});
report.metric({ name: 'tcp-throughput', label: 'iperf3 TCP, 1 stream', unit: 'Gbit/s', better: 'higher', ...of('gbps'), goal: { variant: 'afxdp', anchor: 'ovs-afxdp', ratio: 1 } });
report.metric({ name: 'udp64-pps', label: 'iperf3 UDP 64 B received (iperf3-bound: a floor)', unit: 'pps', better: 'higher', ...of('pps') });
report.write();
