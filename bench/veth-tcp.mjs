// iperf3 TCP through the switch: two namespaces joined over veth pairs (as
// /work/shared/anchors/veth-tcp.sh sets them up: checksum offload off inside
// the namespaces), through nvs (type=system, which takes AF_XDP on a veth;
// type=system with transport=af_packet), OVS userspace with type=afxdp, and
// the Linux bridge, alternated for several rounds in one run. Prints each
// round and the medians with the nvs/OVS afxdp ratio; needs root, iperf3,
// ethtool, and ovs-vswitchd for the OVS row. Fails on nothing.
// Usage: node bench/veth-tcp.mjs [--rounds N] [--quick] [--json FILE]
import { alternate, benchOptions, have, median, quiet, sh, sleep, vethPair, writeJson } from './lib/veth.mjs';

const opts = benchOptions(3);
const SECS = opts.quick ? 2 : Number(process.env.NVS_BENCH_SECS ?? 4);
const pair = vethPair(`nbt${process.pid % 10000}`);
const [NS1, NS2] = pair.ns;

function measure() {
  quiet(`ip netns exec ${NS1} ping -c 3 -i 0.2 -W 2 10.233.0.2`);
  sh(`ip netns exec ${NS2} iperf3 -s -1 -D -p 5201`);
  sleep(0.3);
  const tcp = JSON.parse(quiet(`ip netns exec ${NS1} timeout ${SECS + 10} iperf3 -c 10.233.0.2 -p 5201 -t ${SECS} -J`) || '{}');
  return (tcp.end?.sum_received?.bits_per_second ?? 0) / 1e9;
}

if (process.getuid?.() !== 0 || !have('iperf3') || !have('ethtool')) {
  console.log('veth-tcp: needs root, iperf3 and ethtool; skipped');
  process.exit(0);
}
const variants = { 'nvs-system': 'type=system', 'nvs-af_packet': 'type=system options:transport=af_packet' };
const ovsAbsent = have('ovs-vswitchd') ? undefined : 'absent: ovs-vswitchd not installed';
const modes = [...Object.keys(variants), ...(ovsAbsent ? [] : ['ovs-afxdp']), 'bridge'];
console.log(`veth-tcp: ${opts.rounds} rounds of ${SECS} s, load average ${opts.load[0].toFixed(2)}`);
const results = alternate(pair, modes, variants, opts.rounds, measure, (gbps) => `TCP ${gbps.toFixed(2)} Gbit/s`);
for (const mode of modes) {
  const g = median(results[mode]);
  const vs = !ovsAbsent && mode.startsWith('nvs') ? ` (${(g / median(results['ovs-afxdp'])).toFixed(2)}x OVS afxdp)` : '';
  console.log(`  ${mode.padEnd(13)} TCP ${g.toFixed(2)} Gbit/s${vs}`);
}
writeJson(opts, {
  scenario: 'veth-tcp',
  title: 'TCP through the switch, two namespaces over veths',
  metrics: [
    {
      name: 'tcp-throughput',
      label: 'iperf3 TCP, 1 stream',
      unit: 'Gbit/s',
      better: 'higher',
      nvs: { system: results['nvs-system'], af_packet: results['nvs-af_packet'] },
      anchors: { 'ovs-afxdp': ovsAbsent ?? results['ovs-afxdp'], 'linux-bridge': results.bridge },
      goal: { variant: 'system', anchor: 'ovs-afxdp', ratio: 1.0 },
    },
  ],
});
