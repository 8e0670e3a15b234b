#!/usr/bin/env node
// New flows per second, nvs beside OVS's userspace datapath fed by the same
// generator on the same device (issue 18): namespace A sends 64-byte TCP
// frames, each a new flow (its own source MAC, address and port; see
// bench/lib/flowgen.py), over a veth into port 1 of the switch; port 2 is a
// veth to namespace B, whose MAC the switch learned first. Both switches run
// in userspace (netdev datapath) with the same port type — afxdp, and
// system (AF_PACKET) — and the same bridge: NORMAL, or a 1,000-rule table of
// exact 5-tuple drop rules above NORMAL that every packet is looked up
// against and misses. The generator sends the set of N flows again and again
// (a packet dropped while the switch is busy comes back next pass) until
// every megaflow is in the datapath or the count stops growing.
// Printed per switch: flows set up per second (megaflows installed over the
// time from the first packet to the last new megaflow), RSS growth per
// 100,000 megaflows, and for nvs the event-loop time per upcall by phase
// (upcall/show). Rounds alternate the switches (nvs, OVS, nvs, OVS …), each
// round with fresh switches.
// Usage (root; needs ovs-vswitchd for the anchor, python3, and `npm run build`):
//   node bench/flow-setup.mjs [--flows N] [--types afxdp,system] [--rounds N] [--quick] [--json FILE]
import { spawn, execSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { contractOptions, median, Results, roundsOf } from './lib/contract.mjs';
import { haveOvs, onStop, startSwitch } from './lib/switches.mjs';

const { values: opt } = parseArgs({ options: { ...contractOptions, flows: { type: 'string' }, types: { type: 'string', default: 'afxdp,system' } } });
const ROUNDS = roundsOf(opt, 3, 2);
const FLOWS = Number(opt.flows ?? (opt.quick ? 20000 : 100000));
const TYPES = opt.types.split(',');
const GEN = join(dirname(fileURLToPath(import.meta.url)), 'lib', 'flowgen.py');
const tag = `nbf${process.pid % 10000}`;
const NS = [`${tag}a`, `${tag}b`];
const V = [`${tag}v1`, `${tag}v2`];
// The switch under test runs in a namespace of its own, with its two veth ends: its tap
// devices (OVS's ovs-netdev, the bridge's LOCAL port) cannot clash with another switch on this host.
const SWNS = `${tag}s`;
const dir = mkdtempSync(join(tmpdir(), 'nvs-bench-flowsetup-'));
const sh = (cmd) => execSync(cmd, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const quiet = (cmd) => {
  try {
    return sh(cmd);
  } catch {
    return '';
  }
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function topology() {
  teardown();
  sh(`ip netns add ${SWNS}`);
  NS.forEach((ns, i) => {
    sh(`ip netns add ${ns}`);
    sh(`ip link add ${V[i]} netns ${SWNS} type veth peer name eth0 netns ${ns}`);
    sh(`ip -n ${ns} link set eth0 up`);
    sh(`ip -n ${ns} addr add 10.255.0.${i + 1}/24 dev eth0`);
    sh(`ip -n ${SWNS} link set ${V[i]} up`);
  });
  return sh(`ip -n ${NS[1]} -o link show eth0`).match(/link\/ether ([0-9a-f:]+)/)[1];
}
function teardown() {
  for (const ns of [...NS, SWNS]) quiet(`ip netns del ${ns}`);
}

// 1,000 exact 5-tuple rules that the generator's packets never match (as bench/vswitchd-setup.mjs).
const aclFile = join(dir, 'acl.rules');
writeFileSync(
  aclFile,
  `${Array.from({ length: 1000 }, (_, i) => `priority=100,tcp,nw_src=192.168.${i >> 8}.${i & 255},nw_dst=11.0.0.1,tp_src=${2000 + i},tp_dst=${1000 + i},actions=drop`).join('\n')}\nactions=NORMAL\n`,
);

const flowsOf = (text) => Number(/flows: (\d+)/.exec(text)?.[1] ?? NaN);

/** One measurement: a fresh `kind` switch with `type` ports and `table`; returns rates, memory and nvs's phases. */
async function measure(kind, type, table, first, bMac) {
  const sw = startSwitch(kind, join(dir, `sw-${kind}`), { 'pmd-cpu-mask': '0x2', 'max-idle': '600000', 'flow-limit': String(4 * FLOWS) }, { netns: SWNS });
  try {
    // A bridge name of our own: its LOCAL port is a tap device, and the host is shared.
    const br = `${tag}${kind[0]}`;
    sw.vsctl('add-br', br, '--', 'set', 'Bridge', br, 'datapath_type=netdev', `other_config:mac-table-size=${4 * FLOWS}`,
      ...V.flatMap((v, i) => ['--', 'add-port', br, v, '--', 'set', 'Interface', v, `type=${type}`, `ofport_request=${i + 1}`]));
    const err = sw.vsctl('get', 'Interface', V[0], 'error').trim();
    if (err !== '[]') throw new Error(`${kind} ${type} port: ${err}`);
    if (table === 'acl') execSync(`ovs-ofctl add-flows unix:${sw.dir}/${br}.mgmt ${aclFile}`);
    // B speaks first (ARP requests), so NORMAL knows where its MAC is and unicasts to it.
    quiet(`ip netns exec ${NS[1]} ping -c 2 -i 0.2 -W 1 10.255.0.1`);
    await sleep(500);
    const base = flowsOf(await sw.appctl('dpctl/show'));
    const rss0 = sw.rssKiB();
    const cpu0 = sw.kind === 'nvs' ? cpuSeconds(sw.pid) : 0;
    const gen = spawn('ip', ['netns', 'exec', NS[0], 'python3', GEN, 'eth0', bMac, String(FLOWS), String(first), '120'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const genOut = [];
    gen.stdout.on('data', (d) => genOut.push(String(d)));
    while (!genOut.join('').includes('go')) await sleep(10);
    const t0 = performance.now();
    let count = base;
    let tLast = t0;
    // Poll until every flow is in or nothing new came for 5 s (or 100 s passed). OVS can stop short:
    // its revalidators lower the flow limit when a dump takes long (a busy machine), and then it
    // installs no more megaflows; the megaflows reached are reported beside the rate.
    while (performance.now() - tLast < 5000 && performance.now() - t0 < 100000) {
      await sleep(100);
      const c = flowsOf(await sw.appctl('dpctl/show'));
      if (c > count) {
        count = c;
        tLast = performance.now();
      }
      if (count - base >= FLOWS) break;
    }
    gen.kill('SIGTERM');
    await new Promise((r) => gen.once('close', r));
    const flows = count - base;
    const secs = (tLast - t0) / 1000;
    const rss1 = sw.rssKiB();
    const out = { flows, secs, rate: flows / secs, mibPer100k: ((rss1 - rss0) / 1024) * (100000 / flows), sent: genOut.join('').match(/sent (\d+)/)?.[1] };
    if (sw.kind === 'nvs') {
      out.cpuPerFlowUs = ((cpuSeconds(sw.pid) - cpu0) / flows) * 1e6;
      const m = /upcall time per miss \(µs, (\d+) misses\): xlate ([\d.]+) install ([\d.]+) execute ([\d.]+) other ([\d.]+)/.exec(await sw.appctl('upcall/show'));
      if (m) out.phases = { misses: Number(m[1]), xlate: Number(m[2]), install: Number(m[3]), execute: Number(m[4]), other: Number(m[5]) };
    }
    return out;
  } finally {
    sw.stop();
  }
}

/** CPU time (user + system, all threads) of a process, in seconds. */
function cpuSeconds(pid) {
  const f = sh(`cat /proc/${pid}/stat`).split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

const results = new Results(import.meta.url, 'New flows per second through the userspace datapath, veth in and out, each packet a new flow', opt, ROUNDS);
const TABLES = { normal: 'NORMAL', acl: '1,000-rule table above NORMAL' };
const ovsAbsent = haveOvs() ? undefined : 'absent: ovs-vswitchd not installed (bench/anchors/switch.sh install)';
const rows = {}; // `${table}/${system}` → [{rate, mibPer100k, …}]
let first = 0;
// Registered first, so a stop undoes it last: the switches (which hold the veths) go before their namespaces.
onStop(teardown);
try {
  if (process.getuid?.() !== 0) throw new Error('needs root (namespaces, veths, AF_XDP)');
  const bMac = topology();
  for (let round = 0; round < ROUNDS; round++) {
    for (const table of Object.keys(TABLES)) {
      for (const type of TYPES) {
        for (const kind of ['nvs', 'ovs']) {
          if (kind === 'ovs' && ovsAbsent) continue;
          const key = `${table}/${kind}-${type}`;
          let r;
          try {
            r = await measure(kind, type, table, first, bMac);
          } catch (e) {
            console.log(`round ${round + 1} ${TABLES[table]} ${kind} ${type}: failed: ${e.message.split('\n')[0]}`);
            rows[key] ??= [];
            rows[key].error = e.message.split('\n')[0];
            continue;
          }
          // Each measurement its own flows (MACs), so no switch meets another's or an earlier round's hosts.
          first += FLOWS;
          (rows[key] ??= []).push(r);
          const ph = r.phases ? `; per upcall ${r.cpuPerFlowUs.toFixed(1)} µs of process CPU, event loop: xlate ${r.phases.xlate} install ${r.phases.install} execute ${r.phases.execute} other ${r.phases.other} µs` : '';
          console.log(`round ${round + 1} ${TABLES[table]} ${kind} ${type}: ${r.flows} megaflows in ${r.secs.toFixed(2)} s = ${Math.round(r.rate)} flows/s, RSS +${r.mibPer100k.toFixed(0)} MiB per 100,000${ph}`);
        }
      }
    }
  }
} finally {
  teardown();
  rmSync(dir, { recursive: true, force: true });
}

const pick = (table, system, f) => {
  const v = rows[`${table}/${system}`];
  if (!v) return undefined;
  return v.length ? v.map(f) : `absent: ${v.error}`;
};
for (const table of Object.keys(TABLES)) {
  const nvs = Object.fromEntries(TYPES.map((t) => [t, pick(table, `nvs-${t}`, (r) => r.rate) ?? 'absent: not run']));
  const anchors = Object.fromEntries(TYPES.map((t) => [`ovs-${t}`, ovsAbsent ?? pick(table, `ovs-${t}`, (r) => r.rate) ?? 'absent: not run']));
  results.metric({ name: `new-flows-${table}`, label: `new flows/s, ${TABLES[table]}`, unit: 'flows/s', better: 'higher', nvs, anchors, goal: { variant: TYPES[0], anchor: `ovs-${TYPES[0]}`, ratio: 1.5 } });
  const nvsMem = Object.fromEntries(TYPES.map((t) => [t, pick(table, `nvs-${t}`, (r) => r.mibPer100k) ?? 'absent: not run']));
  const ovsMem = Object.fromEntries(TYPES.map((t) => [`ovs-${t}`, ovsAbsent ?? pick(table, `ovs-${t}`, (r) => r.mibPer100k) ?? 'absent: not run']));
  results.metric({ name: `rss-per-100k-${table}`, label: `RSS growth per 100,000 megaflows, ${TABLES[table]}`, unit: 'MiB', better: 'lower', nvs: nvsMem, anchors: ovsMem, goal: { variant: TYPES[0], anchor: `ovs-${TYPES[0]}`, ratio: 1.0 } });
  for (const ph of ['xlate', 'install', 'execute', 'other']) {
    const v = Object.fromEntries(TYPES.map((t) => [t, pick(table, `nvs-${t}`, (r) => r.phases?.[ph] ?? NaN) ?? 'absent: not run']));
    results.metric({ name: `upcall-${ph}-${table}`, label: `nvs event-loop time per upcall: ${ph}, ${TABLES[table]}`, unit: 'µs', better: 'lower', nvs: v, anchors: {} });
  }
  const reached = (kind) => Object.fromEntries(TYPES.map((t) => [kind === 'nvs' ? t : `ovs-${t}`, (kind === 'ovs' && ovsAbsent) || (pick(table, `${kind}-${t}`, (r) => r.flows) ?? 'absent: not run')]));
  results.metric({ name: `megaflows-reached-${table}`, label: `megaflows installed of ${FLOWS.toLocaleString('en-US')} offered, ${TABLES[table]}`, unit: 'megaflows', better: 'higher', nvs: reached('nvs'), anchors: reached('ovs') });
  const cpu = Object.fromEntries(TYPES.map((t) => [t, pick(table, `nvs-${t}`, (r) => r.cpuPerFlowUs) ?? 'absent: not run']));
  results.metric({ name: `cpu-per-flow-${table}`, label: `nvs process CPU per new flow (all threads, incl. busy polling), ${TABLES[table]}`, unit: 'µs', better: 'lower', nvs: cpu, anchors: {} });
}
results.write();

console.log(`\nmedians over ${ROUNDS} alternated rounds, ${FLOWS} flows each:`);
for (const m of results.doc.metrics.filter((x) => !x.name.startsWith('upcall-'))) {
  const fmt = (v) => (typeof v === 'string' ? v : median(v).toFixed(1));
  console.log(`  ${m.label}: ${Object.entries(m.nvs).map(([k, v]) => `nvs ${k} ${fmt(v)}`).join(', ')}${Object.entries(m.anchors).map(([k, v]) => `, ${k} ${fmt(v)}`).join('')} ${m.unit}`);
}
