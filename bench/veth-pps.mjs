// 64-byte UDP packets per second through the switch: DPDK's testpmd
// (net_af_xdp on the veth end in the first namespace, txonly, one lcore)
// offers as many frames as it can to the second namespace's MAC; the frames
// received on that namespace's veth in 5 s are counted. Switches, alternated
// round by round in one run as /work/shared/anchors/veth-pps.sh runs them:
// nvs with type=afxdp and with type=system over AF_PACKET, OVS userspace
// with type=afxdp, and the Linux bridge (which runs in the sender's softirq).
// Needs root, dpdk-testpmd, ethtool, hugepages (allocated here if missing),
// and ovs-vswitchd for the OVS row. Fails on nothing.
// Usage: node bench/veth-pps.mjs [--rounds N] [--quick] [--json FILE]
import { readFileSync } from 'node:fs';
import { alternate, benchOptions, have, median, quiet, sh, sleep, vethPair, writeJson } from './lib/veth.mjs';

const opts = benchOptions(3);
const SECS = opts.quick ? 3 : 5;
const tag = process.pid % 10000;
const pair = vethPair(`nbp${tag}`);
const [NS1, NS2] = pair.ns;
const counter = (ns, what) => Number(quiet(`ip netns exec ${ns} cat /sys/class/net/eth0/statistics/${what}`).trim() || 0);

function hugepages() {
  if (Number(readFileSync('/proc/sys/vm/nr_hugepages', 'utf8')) < 512) sh('echo 1024 > /proc/sys/vm/nr_hugepages', { shell: '/bin/bash' });
  if (quiet('mountpoint -q /dev/hugepages && echo y').trim() !== 'y') sh('mkdir -p /dev/hugepages && mount -t hugetlbfs nodev /dev/hugepages', { shell: '/bin/bash' });
  if (quiet('mountpoint -q /sys/fs/bpf && echo y').trim() !== 'y') sh('mount -t bpf bpf /sys/fs/bpf');
}

/** Offered and received packets per second over SECS seconds, testpmd running in NS1. */
function measure() {
  sleep(1);
  quiet(`ip netns exec ${NS1} ping -c 2 -i 0.2 -W 2 10.233.0.2`);
  const peer = quiet(`ip netns exec ${NS2} cat /sys/class/net/eth0/address`).trim();
  const gen = `ip netns exec ${NS1} timeout ${SECS + 9} dpdk-testpmd -l 0,1 --main-lcore 1 --no-pci --file-prefix=nbp${tag} -m 512 --single-file-segments --vdev net_af_xdp0,iface=eth0,start_queue=0,queue_count=1 -- --forward-mode=txonly --txpkts=64 --stats-period 5 --nb-cores=1 --eth-peer=0,${peer}`;
  sh(`(${gen} > /tmp/nbp${tag}-gen.log 2>&1 &)`, { shell: '/bin/bash' });
  sleep(5);
  const [r0, t0] = [counter(NS2, 'rx_packets'), counter(NS1, 'tx_packets')];
  sleep(SECS);
  const [r1, t1] = [counter(NS2, 'rx_packets'), counter(NS1, 'tx_packets')];
  // testpmd ends itself (timeout); wait for it so the next round's generator finds its lcore free.
  for (let i = 0; i < 40 && quiet(`pgrep -f "file-prefix=nbp${tag} "`).trim() !== ''; i++) sleep(0.25);
  return { offered: (t1 - t0) / SECS, received: (r1 - r0) / SECS };
}

if (process.getuid?.() !== 0 || !have('dpdk-testpmd') || !have('ethtool')) {
  console.log('veth-pps: needs root, dpdk-testpmd and ethtool; skipped');
  process.exit(0);
}
hugepages();
const variants = { 'nvs-afxdp': 'type=afxdp', 'nvs-af_packet': 'type=system options:transport=af_packet' };
const ovsAbsent = have('ovs-vswitchd') ? undefined : 'absent: ovs-vswitchd not installed';
const modes = [...Object.keys(variants), ...(ovsAbsent ? [] : ['ovs-afxdp']), 'bridge'];
console.log(`veth-pps: ${opts.rounds} rounds of ${SECS} s, load average ${opts.load[0].toFixed(2)}`);
const rounds = alternate(pair, modes, variants, opts.rounds, measure, (m) => `${Math.round(m.received / 1000)}k pps received of ${Math.round(m.offered / 1000)}k offered`);
const results = Object.fromEntries(modes.map((m) => [m, { offered: rounds[m].map((x) => x.offered), received: rounds[m].map((x) => x.received) }]));
for (const mode of modes) {
  const p = median(results[mode].received);
  const vs = !ovsAbsent && mode.startsWith('nvs') ? ` (${(p / median(results['ovs-afxdp'].received)).toFixed(2)}x OVS afxdp)` : '';
  console.log(`  ${mode.padEnd(13)} ${Math.round(p / 1000)}k pps received of ${Math.round(median(results[mode].offered) / 1000)}k offered${vs}`);
}
writeJson(opts, {
  scenario: 'veth-pps',
  title: '64-byte UDP through the switch from testpmd (net_af_xdp, txonly), two namespaces over veths',
  metrics: [
    {
      name: 'pps-received',
      label: '64 B UDP packets per second received',
      unit: 'pps',
      better: 'higher',
      nvs: { afxdp: results['nvs-afxdp'].received, af_packet: results['nvs-af_packet'].received },
      anchors: { 'ovs-afxdp': ovsAbsent ?? results['ovs-afxdp'].received, 'linux-bridge': results.bridge.received },
      goal: { variant: 'afxdp', anchor: 'ovs-afxdp', ratio: 1.2 },
    },
  ],
});
