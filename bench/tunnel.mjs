// VXLAN between two "hosts" (network namespaces joined by a veth underlay,
// 192.168.83.1 and .2), each with one "VM" namespace on a veth (10.83.0.1
// and .2, MTU 1450 as VXLAN deployments set it, checksum offload off inside
// the VMs because OVS userspace needs it). The same topology through:
// - nvs: one `remote_ip=flow key=flow` VXLAN port per host and
//   set_field:42->tun_id,set_field:<peer>->tun_dst rules (the VM ports are
//   type=system, AF_PACKET), polling thread pinned to core 0 on host A and 1 on B;
// - ovs: OVS 3.1 userspace (datapath_type=netdev), type=vxlan with its native
//   tunnelling (underlay veth in a br-phy bridge whose internal port holds the
//   host address), pmd-cpu-mask 0x1 on A and 0x2 on B;
// - kernel: a Linux bridge with a kernel vxlan device in each host.
// Runs them alternately (nvs, ovs, kernel, nvs, …) for --rounds rounds:
// iperf3 TCP throughput (1 stream) and iperf3 UDP with 64-byte payloads
// (packets per second received: a floor, iperf3 cannot offer more).
// Follows /work/wt/prompts/bench-contract.md: --rounds N, --quick, --json FILE.
// Needs root, iperf3, ethtool; ovs-vswitchd for the OVS rows (else "absent").
import { execSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const ROOT = resolve(import.meta.dirname, '..');
const DIST = join(ROOT, 'dist');
const { values: args } = parseArgs({ options: { rounds: { type: 'string' }, quick: { type: 'boolean' }, json: { type: 'string' } } });
const QUICK = args.quick ?? false;
const ROUNDS = Number(args.rounds ?? process.env.NVS_BENCH_ROUNDS ?? (QUICK ? 1 : 3));
const SECS = Number(process.env.NVS_BENCH_SECS ?? (QUICK ? 2 : 4));
const tag = String(process.pid % 10000);
const H = [`nbtn${tag}ha`, `nbtn${tag}hb`];
const VM = [`nbtn${tag}va`, `nbtn${tag}vb`];
const UL = [`bt${tag}ua`, `bt${tag}ub`];
const PORT = [`bt${tag}pa`, `bt${tag}pb`];
const UNDERLAY = ['192.168.83.1', '192.168.83.2'];

const sh = (cmd, opts = {}) => execSync(cmd, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts });
const quiet = (cmd) => {
  try {
    return sh(cmd);
  } catch {
    return '';
  }
};
const have = (bin) => quiet(`command -v ${bin}`).trim() !== '';
const inH = (i, cmd) => `ip netns exec ${H[i]} ${cmd}`;

function teardown() {
  for (const n of [...H, ...VM]) quiet(`ip netns del ${n}`);
}

/** The namespaces, underlay and VM veths; the underlay address stays on the veth (nvs, kernel) or moves to br-phy (OVS). */
function topology() {
  teardown();
  for (const n of [...H, ...VM]) {
    sh(`ip netns add ${n}`);
    sh(`ip -n ${n} link set lo up`);
  }
  sh(`ip link add ${UL[0]} netns ${H[0]} type veth peer name ${UL[1]} netns ${H[1]}`);
  for (let i = 0; i < 2; i++) {
    sh(`ip -n ${H[i]} addr add ${UNDERLAY[i]}/24 dev ${UL[i]}`);
    sh(`ip -n ${H[i]} link set ${UL[i]} up`);
    sh(`ip link add ${PORT[i]} netns ${H[i]} type veth peer name eth0 netns ${VM[i]}`);
    sh(`ip -n ${H[i]} link set ${PORT[i]} up`);
    sh(`ip -n ${VM[i]} addr add 10.83.0.${i + 1}/24 dev eth0`);
    sh(`ip -n ${VM[i]} link set eth0 mtu 1450 up`);
    sh(`ip netns exec ${VM[i]} ethtool -K eth0 tx off`);
  }
}

/** Starts an OVSDB server (nvs's or OVS's) and a switch in host i; returns [vsctl prefix, stop]. */
function daemons(kind, i) {
  const dir = mkdtempSync(join(tmpdir(), `nvs-bench-tnl-${kind}-`));
  const db = `unix:${dir}/db.sock`;
  const vsctl = `ovs-vsctl --db=${db} --timeout=20`;
  let pids;
  if (kind === 'ovs') {
    const env = { ...process.env, OVS_RUNDIR: dir, OVS_LOGDIR: dir, OVS_DBDIR: dir };
    sh(`ovsdb-tool create ${dir}/conf.db /usr/share/openvswitch/vswitch.ovsschema`);
    sh(`ovsdb-server ${dir}/conf.db --remote=punix:${dir}/db.sock --pidfile=${dir}/ovsdb.pid --detach --log-file=${dir}/ovsdb.log`, { env });
    sh(`${vsctl} --no-wait init -- set Open_vSwitch . other_config:pmd-cpu-mask=${i === 0 ? '0x1' : '0x2'}`);
    sh(inH(i, `ovs-vswitchd ${db} --pidfile=${dir}/vswitchd.pid --detach --log-file=${dir}/vswitchd.log`), { env });
    pids = [`${dir}/vswitchd.pid`, `${dir}/ovsdb.pid`];
  } else {
    const env = { ...process.env, NVS_RUNDIR: dir };
    sh(`${DIST}/nvs-dbserver.js --rundir ${dir} --detach --pidfile --log-file --remote=punix:${dir}/db.sock ${dir}/conf.db`, { env });
    sh(`${vsctl} --no-wait init -- set Open_vSwitch . other_config:pmd-cpu-mask=${i === 0 ? '0x1' : '0x2'}`);
    sh(inH(i, `${DIST}/nvs-vswitchd.js --rundir ${dir} --detach --pidfile --log-file ${db}`), { env });
    pids = [`${dir}/nvs-vswitchd.pid`, `${dir}/nvs-dbserver.pid`];
  }
  const stop = () => {
    for (const p of pids) quiet(`kill $(cat ${p})`);
    execSync('sleep 0.5');
    rmSync(dir, { recursive: true, force: true });
  };
  return { vsctl, dir, stop };
}

function checkNoError(vsctl, iface) {
  const err = sh(`${vsctl} get Interface ${iface} error`).trim();
  if (err !== '[]') throw new Error(`${iface}: ${err}`);
}

/** Starts the switches of `mode` in both hosts; returns the stop function. */
function start(mode) {
  if (mode === 'kernel') {
    for (let i = 0; i < 2; i++) {
      sh(`ip -n ${H[i]} link add br0 type bridge`);
      sh(`ip -n ${H[i]} link add vx42 type vxlan id 42 remote ${UNDERLAY[1 - i]} local ${UNDERLAY[i]} dstport 4789`);
      for (const d of ['vx42', PORT[i]]) sh(`ip -n ${H[i]} link set ${d} master br0 up`);
      sh(`ip -n ${H[i]} link set br0 up`);
    }
    return () => {};
  }
  const stops = [];
  try {
    for (let i = 0; i < 2; i++) {
      const d = daemons(mode, i);
      stops.push(d.stop);
      const { vsctl } = d;
      if (mode === 'ovs') {
        // Native tunnelling: the underlay device in br-phy, the host address on br-phy's internal port.
        const mac = sh(`ip -n ${H[i]} -br link show ${UL[i]}`).split(/\s+/)[2];
        sh(`${vsctl} add-br br-phy -- set Bridge br-phy datapath_type=netdev other_config:hwaddr=${mac} -- add-port br-phy ${UL[i]}`);
        sh(`ip -n ${H[i]} addr flush dev ${UL[i]}`);
        sh(`ip -n ${H[i]} addr add ${UNDERLAY[i]}/24 dev br-phy`);
        sh(`ip -n ${H[i]} link set br-phy up`);
        sh(`${vsctl} add-br br-int -- set Bridge br-int datapath_type=netdev -- add-port br-int ${PORT[i]} -- add-port br-int tun0 -- set Interface tun0 type=vxlan options:remote_ip=${UNDERLAY[1 - i]} options:key=42`);
        checkNoError(vsctl, UL[i]);
      } else {
        sh(`${vsctl} add-br br-int -- set Bridge br-int datapath_type=netdev -- add-port br-int ${PORT[i]} -- set Interface ${PORT[i]} type=system -- add-port br-int tun0 -- set Interface tun0 type=vxlan options:remote_ip=flow options:key=flow options:local_ip=${UNDERLAY[i]}`);
        const env = { ...process.env, NVS_RUNDIR: d.dir };
        const rules = [`in_port=${PORT[i]},actions=set_field:42->tun_id,set_field:${UNDERLAY[1 - i]}->tun_dst,output:tun0`, 'in_port=tun0,tun_id=42,actions=output:' + PORT[i]];
        sh(`${DIST}/nvs-ofctl.js add-flows br-int -`, { env, input: `${rules.join('\n')}\n`, stdio: ['pipe', 'pipe', 'pipe'] });
      }
      checkNoError(vsctl, PORT[i]);
      checkNoError(vsctl, 'tun0');
    }
  } catch (e) {
    for (const s of stops) s();
    throw e;
  }
  return () => {
    for (const s of stops) s();
  };
}

function measure() {
  // Warm up: ARP, flow setup (and OVS's tunnel ARP/route resolution).
  for (let t = 0; t < 5; t++) if (quiet(`ip netns exec ${VM[0]} ping -c 2 -i 0.2 -W 2 10.83.0.2`).includes(' 0% packet loss')) break;
  sh(`ip netns exec ${VM[1]} iperf3 -s -1 -D -p 5301`);
  execSync('sleep 0.3');
  const tcp = JSON.parse(quiet(`ip netns exec ${VM[0]} timeout ${SECS + 10} iperf3 -c 10.83.0.2 -p 5301 -t ${SECS} -J`) || '{}');
  sh(`ip netns exec ${VM[1]} iperf3 -s -1 -D -p 5302`);
  execSync('sleep 0.3');
  const udp = JSON.parse(quiet(`ip netns exec ${VM[0]} timeout ${SECS + 10} iperf3 -c 10.83.0.2 -p 5302 -u -b 0 -l 64 -t ${SECS} -J`) || '{}');
  quiet(`ip netns exec ${VM[1]} pkill -f 'iperf3 -s -1 -D -p 530'`);
  const gbps = (tcp.end?.sum_received?.bits_per_second ?? 0) / 1e9;
  const s = udp.end?.sum;
  const kpps = s ? (s.packets - s.lost_packets) / s.seconds / 1000 : 0;
  return { gbps, kpps };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

if (process.getuid?.() !== 0 || !have('iperf3') || !have('ethtool')) {
  console.log('tunnel: needs root, iperf3 and ethtool; nothing measured');
  process.exit(0);
}
const absent = {};
if (!have('ovs-vswitchd')) absent.ovs = 'absent: ovs-vswitchd not installed';
const modes = ['nvs', 'ovs', 'kernel'].filter((m) => !absent[m]);
const results = Object.fromEntries(modes.map((m) => [m, { gbps: [], kpps: [] }]));
const load = [loadavg()[0]];
console.log(`tunnel: VXLAN between two namespaces, ${ROUNDS} round(s) of ${SECS} s, load average ${load[0].toFixed(2)}`);
try {
  for (let r = 0; r < ROUNDS; r++) {
    for (const mode of modes) {
      topology();
      let stop = () => {};
      try {
        stop = start(mode);
        const m = measure();
        results[mode].gbps.push(m.gbps);
        results[mode].kpps.push(m.kpps);
        console.log(`round ${r + 1} ${mode.padEnd(6)}: TCP ${m.gbps.toFixed(2)} Gbit/s, UDP 64 B ${Math.round(m.kpps)}k pps received (load ${loadavg()[0].toFixed(2)})`);
      } catch (e) {
        console.log(`round ${r + 1} ${mode}: failed: ${e.message.split('\n')[0]}`);
        results[mode].gbps.push(0);
        results[mode].kpps.push(0);
      } finally {
        stop();
      }
    }
  }
} finally {
  teardown();
}
load.push(loadavg()[0]);
console.log(`\nmedians over ${ROUNDS} alternated round(s), load average ${load[0].toFixed(2)} → ${load[1].toFixed(2)}:`);
for (const mode of modes) {
  const g = median(results[mode].gbps);
  const p = median(results[mode].kpps);
  const ratio = (anchor) =>
    results[anchor] && mode === 'nvs' ? ` (${(g / median(results[anchor].gbps)).toFixed(2)}x / ${(p / median(results[anchor].kpps)).toFixed(2)}x ${anchor})` : '';
  console.log(`  ${mode.padEnd(6)} TCP ${g.toFixed(2)} Gbit/s, UDP 64 B ${Math.round(p)}k pps${ratio('ovs')}${ratio('kernel')}`);
}
if (args.json) {
  const anchors = (metric) => ({
    'ovs-netdev': absent.ovs ?? results.ovs[metric],
    'linux-vxlan': results.kernel[metric],
  });
  writeFileSync(
    args.json,
    JSON.stringify(
      {
        scenario: 'tunnel',
        title: 'VXLAN between two hosts (namespaces over a veth underlay), one VM each',
        rounds: ROUNDS,
        load,
        metrics: [
          { name: 'tcp-throughput', label: 'iperf3 TCP through VXLAN, 1 stream', unit: 'Gbit/s', better: 'higher', nvs: { vxlan: results.nvs.gbps }, anchors: anchors('gbps'), goal: { variant: 'vxlan', anchor: 'ovs-netdev', ratio: 1.0 } },
          { name: 'udp64-pps', label: 'iperf3 UDP 64-byte payloads through VXLAN, received', unit: 'kpps', better: 'higher', nvs: { vxlan: results.nvs.kpps }, anchors: anchors('kpps') },
        ],
      },
      null,
      2,
    ),
  );
}
