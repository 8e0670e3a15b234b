/**
 * nvs-vswitchd's appctl commands (on `<rundir>/nvs-vswitchd.ctl`, reached by
 * the real ovs-appctl and by nvs-appctl), in the layouts of ovs-vswitchd's:
 * ofproto/trace, fdb/show, fdb/flush, fdb/stats-show, dpif/show,
 * dpif/dump-flows (datapath flow syntax, `-m`, `--names`), dpctl/show, dpctl/dump-flows,
 * dpctl/del-flows, dpif-netdev/pmd-stats-show, dpif-netdev/pmd-stats-clear,
 * dpif-netdev/pmd-rxq-show, memory/show, coverage/show, upcall/show,
 * netdev-dummy/receive, plus revalidator/wait and netdev-dummy/drain for
 * scenario tests. vlog/*, version, list-commands and exit come with the
 * unixctl server. Every command is a thin view over the components.
 */
import { buildPacket, parseHexPacket } from './packet.ts';
import { createHash } from 'node:crypto';
import {
  type Action, type Flow, FLOW_WORDS, formatDpActions, formatFdb, formatOdpFlowKey, formatTcpFlagLetters, type OdpFlow, OdpFlowSyntaxError, parseOdpFlow,
  parseFlow, parseTraceFlow, Slot, trace,
} from '@nvs/ofproto';
import type { UnixctlServer } from '@nvs/daemon';
import type { BridgePort } from './bridge.ts';
import type { WarpClock } from './clock.ts';
import type { Coverage } from './coverage.ts';
import type { Dpif, DpStats } from './dpif.ts';
import { flowFromKey, keyFromFlow } from './keyflow.ts';
import type { OfBridge } from './ofbridge.ts';
import type { Udpif } from './udpif.ts';

/** Thrown for a bad appctl request; the message is what ovs-appctl prints. */
export class AppctlError extends Error {
  constructor(
    readonly code: 'APPCTL_NO_BRIDGE' | 'APPCTL_NO_PORT' | 'APPCTL_NOT_DUMMY' | 'APPCTL_BAD_PACKET' | 'APPCTL_NOT_READY' | 'APPCTL_BAD_ARGS',
    message: string,
  ) {
    super(message);
    this.name = 'AppctlError';
  }
}

export interface AppctlContext {
  bridges(): OfBridge[];
  dp(): Dpif | undefined;
  udpif(): Udpif | undefined;
  coverage: Coverage;
  /** Extra `memory/show` counters (handlers, ports, …). */
  memory(): Record<string, number>;
  /** other_config:n-handler-threads when set (nvs runs one handler whatever it says). */
  requestedHandlers(): number | undefined;
  /** The clock of rule timeouts and MAC aging, for time/stop and time/warp. */
  clock: WarpClock;
  /** Gives a dummy port another datapath port number (dpif-dummy/change-port-number); throws with the reason. */
  changeOdpPort(port: string, no: number): void;
}

function findBridge(ctx: AppctlContext, name: string): OfBridge {
  const b = ctx.bridges().find((x) => x.name === name);
  if (!b) throw new AppctlError('APPCTL_NO_BRIDGE', 'no such bridge');
  return b;
}

function findPort(ctx: AppctlContext, name: string): { bridge: OfBridge; port: BridgePort } {
  for (const bridge of ctx.bridges()) {
    const port = bridge.ports.get(name);
    if (port) return { bridge, port };
  }
  throw new AppctlError('APPCTL_NO_PORT', `no such dummy netdev '${name}'`);
}

/** A port netdev-dummy/* can feed or drain: a tap has a kernel side instead. */
function findDummyPort(ctx: AppctlContext, name: string): { bridge: OfBridge; port: BridgePort } {
  const found = findPort(ctx, name);
  if (found.port.backend !== 'dummy') {
    throw new AppctlError(
      'APPCTL_NOT_DUMMY',
      `'${name}' is a ${found.port.backend} device, not a dummy netdev: send its traffic through the kernel interface (or start nvs-vswitchd with --enable-dummy=override to make internal ports dummy)`,
    );
  }
  return found;
}

function needDp(ctx: AppctlContext): Dpif {
  const dp = ctx.dp();
  if (!dp) throw new AppctlError('APPCTL_NOT_READY', 'the datapath is not open yet (no configuration from the database)');
  return dp;
}

function hexOf(p: Uint8Array): string {
  return Buffer.from(p).toString('hex');
}

/** The packet for netdev-dummy/receive: hex bytes, or a flow in ovs-ofctl syntax. */
export function packetFromText(text: string, bridge: OfBridge): Uint8Array {
  const hex = parseHexPacket(text);
  if (hex) return hex;
  try {
    return buildPacket(keyFromFlow(parseTraceFlow(text, (n) => bridge.ports.get(n)?.ofport)));
  } catch (err) {
    throw new AppctlError('APPCTL_BAD_PACKET', `${text}: neither hex bytes nor a flow (${(err as Error).message})`);
  }
}

/** A MAC address argument (`50:54:00:00:00:01`) as a number. */
function macArg(text: string): number {
  if (!/^([0-9a-fA-F]{1,2}:){5}[0-9a-fA-F]{1,2}$/.test(text)) throw new AppctlError('APPCTL_BAD_ARGS', 'bad MAC address');
  return text.split(':').reduce((n, h) => n * 256 + parseInt(h, 16), 0);
}

/** A VLAN argument (0–4095). */
function vlanArg(text: string): number {
  const v = Number(text);
  if (!/^[0-9]+$/.test(text) || v > 4095) throw new AppctlError('APPCTL_BAD_ARGS', `${text}: bad VLAN (0 to 4095)`);
  return v;
}

/** A polling-thread counter summed over every thread, those a pmd-cpu-mask change replaced included. */
function pmdTotal(s: DpStats, counter: string): number {
  return s.threads.reduce((n, t) => n + (t.counters[counter] ?? 0), s.retired[counter] ?? 0);
}

/**
 * Waits (a bounded time) until the datapath has received every packet
 * injected through netdev-dummy/receive and the slow path has taken every
 * upcall they caused, so that a following revalidation round sees them.
 */
async function quiesce(dp: Dpif, udpif: Udpif, injected: Map<number, number>): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    const s = dp.stats();
    const received = [...injected].every(([no, n]) => (s.ports.find((p) => p.no === no)?.rxPackets ?? n) >= n);
    const misses = pmdTotal(s, 'misses');
    if (received && udpif.handled + s.lostUpcalls >= misses) return;
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * `[-m] [--names | --no-names] NAME`, the options of dpif/dump-flows and
 * dpctl/dump-flows (NAME optional for dpctl): `-m` prints every field and
 * the ufid; names are shown with `-m` unless `--no-names`.
 */
function dumpFlowsArgs(args: string[], nameRequired: boolean): { more: boolean; names: boolean; name?: string } {
  let more = false;
  let names: boolean | undefined;
  const rest: string[] = [];
  for (const a of args) {
    if (a === '-m' || a === '--more') more = true;
    else if (a === '--names') names = true;
    else if (a === '--no-names') names = false;
    else if (a.startsWith('-')) throw new AppctlError('APPCTL_BAD_ARGS', `${a}: unknown option`);
    else rest.push(a);
  }
  if (nameRequired ? rest.length !== 1 : rest.length > 1) {
    throw new AppctlError('APPCTL_BAD_ARGS', nameRequired ? 'exactly one bridge name is required' : 'at most one datapath name is allowed');
  }
  return { more, names: names ?? more, name: rest[0] };
}

/** The one datapath's name, and the name OVS gives its userspace datapath (scripts written for OVS pass it to dpctl/*). */
const DP_NAME = 'nvs@nvs-netdev';
const DP_ALIASES = new Set([DP_NAME, 'netdev@ovs-netdev']);

function checkDpName(name: string | undefined): void {
  if (name !== undefined && !DP_ALIASES.has(name)) throw new AppctlError('APPCTL_BAD_ARGS', `${name}: no such datapath (there is one: ${DP_NAME})`);
}

/** Megaflows in OVS's datapath-flow syntax, those entering `ports` (datapath port → name) only. */
function dumpFlowLines(dp: Dpif, ports: Map<number, string>, more: boolean, names: boolean): string {
  const now = dp.now();
  const portName = names ? (no: number) => ports.get(no) : undefined;
  const lines: string[] = [];
  for (const f of dp.dump()) {
    if (!ports.has(f.key.in_port)) continue;
    const used = f.usedAt ? `${((now - f.usedAt) / 1000).toFixed(3)}s` : 'never';
    const flags = f.tcpFlags ? `, flags:${formatTcpFlagLetters(f.tcpFlags)}` : '';
    const key = formatOdpFlowKey({ key: f.key, mask: f.mask }, { verbose: more, portName });
    const ufid = more ? `ufid:${ufidOf(f.id)} ` : '';
    lines.push(`${ufid}${key}, packets:${f.packets}, bytes:${f.bytes}, used:${used}${flags}, actions:${formatDpActions(f.actions, { portName })}\n`);
  }
  return lines.join('');
}

/** Every bridge's ports by datapath port number. */
function allPorts(ctx: AppctlContext): Map<number, BridgePort> {
  const out = new Map<number, BridgePort>();
  for (const b of ctx.bridges()) for (const p of b.ports.values()) out.set(p.odpPort, p);
  return out;
}

function portKind(p: BridgePort): string {
  return p.backend !== 'dummy' ? p.backend : p.type === 'internal' || p.type === 'dummy-internal' ? 'dummy-internal' : 'dummy';
}

/**
 * A megaflow's ufid for `-m`: a UUID-shaped digest of its identity (masked
 * key and mask), stable for as long as the flow exists. nvs keys flows by
 * that identity, not by a ufid handed down by the slow path as OVS does.
 */
function ufidOf(id: string): string {
  const h = createHash('sha1').update(id, 'latin1').digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** What an ofproto/trace request names: the bridge, the packet's flow (in_port an OpenFlow port), and -generate. */
interface TraceRequest {
  bridge: OfBridge;
  flow: Flow;
  generate: boolean;
  /** --names: ports by name in the Flow line and the datapath actions. */
  names: boolean;
}

/**
 * The arguments of ofproto/trace as ovs-vswitchd reads them:
 * `[DP] ODP_FLOW`, or `BRIDGE BR_FLOW`, then `-generate` or a packet in hex
 * (whose headers replace the flow's). A datapath is named by its type
 * (`dummy`, `ovs-dummy`, `netdev`); with one type in use it may be left out.
 * The error texts are OVS's, which its tests compare.
 */
function traceRequest(ctx: AppctlContext, argv: string[]): TraceRequest {
  const bad = (m: string) => new AppctlError('APPCTL_BAD_ARGS', m);
  let generate = false;
  const args: string[] = [];
  let names = false;
  for (const a of argv) {
    if (a === '-generate') generate = true;
    else if (a === '--names' || a === '--no-names') names = a === '--names';
    else if (a.startsWith('-') && a.length > 1) throw bad(`${a}: unknown option`);
    else if (args.length >= 3) throw bad('too many arguments');
    else args.push(a);
  }
  let packet: Uint8Array | undefined;
  if (!generate && args.length > 1) {
    packet = parseHexPacket(args[args.length - 1]);
    if (packet) {
      if (packet.length < 14) throw bad('Packet data too short for Ethernet');
      args.pop();
    } else if (args.length > 2) throw bad('Trailing garbage in packet data');
  }
  const bridges = ctx.bridges();
  const types = new Set(bridges.map((b) => b.model.config.datapathType || 'system'));
  let dpFound = false;
  if (args.length === 2) dpFound = types.has(args[0].startsWith('ovs-') ? args[0].slice(4) : args[0]);
  else if (args.length === 1) dpFound = types.size === 1;
  else throw bad('Syntax error');
  const text = args[args.length - 1];
  let flow: Flow;
  let bridge: OfBridge;
  let odp: OdpFlow | undefined;
  let odpError: string | undefined;
  try {
    odp = parseOdpFlow(text, (name) => bridges.flatMap((b) => [...b.ports.values()]).find((p) => p.name === name)?.odpPort);
  } catch (e) {
    if (!(e instanceof OdpFlowSyntaxError)) throw e;
    odpError = e.message;
  }
  if (odp) {
    if (!dpFound) throw bad('Cannot find the datapath');
    if (odp.recircId !== 0) throw bad(`no recirculation data for recirc_id 0x${odp.recircId.toString(16)}`);
    const inPort = odp.odpInPort ?? 0xffffffff;
    const owner = bridges.find((b) => [...b.ports.values()].some((p) => p.odpPort === inPort));
    const port = owner && [...owner.ports.values()].find((p) => p.odpPort === inPort);
    if (!owner || !port) throw bad(`no OpenFlow port for datapath port ${inPort}`);
    bridge = owner;
    flow = odp.flow;
    flow[Slot.IN_PORT] = port.ofport;
  } else {
    if (args.length !== 2) throw bad(`${odpError} (or the bridge name was omitted)`);
    const b = bridges.find((x) => x.name === args[0]);
    if (!b) throw bad(`${args[0]}: unknown bridge`);
    bridge = b;
    try {
      flow = parseTraceFlow(text, (n) => b.ports.get(n)?.ofport);
    } catch (e) {
      throw bad(`Bad openflow flow syntax: ${(e as Error).message}`);
    }
  }
  if (packet) {
    // The packet's headers, with the flow's in_port and metadata.
    const dp = needDp(ctx);
    const fromPacket = flowFromKey(dp.extractKey(packet, 0), flow[Slot.IN_PORT]);
    for (let i = 0; i < FLOW_WORDS; i++) if (!METADATA_SLOTS.has(i)) flow[i] = fromPacket[i];
  }
  return { bridge, flow, generate, names };
}

/** Flow words a trace keeps from its flow when a packet gives the headers. */
const METADATA_SLOTS: ReadonlySet<number> = new Set([
  Slot.IN_PORT, Slot.METADATA, Slot.METADATA + 1, Slot.TUN_ID, Slot.TUN_ID + 1, Slot.TUN_SRC, Slot.TUN_DST, Slot.PKT_MARK, Slot.SKB_PRIORITY,
  ...Array.from({ length: 16 }, (_, i) => Slot.REG0 + i),
]);

export function registerAppctl(server: UnixctlServer, ctx: AppctlContext): void {
  /** Packets injected per datapath port, for revalidator/wait. */
  const injected = new Map<number, number>();

  server.register('ofproto/trace', '{[dp_name] odp_flow | bridge br_flow} [-generate|packet]', 1, 4, (args) => {
    const req = traceRequest(ctx, args);
    const ports = [...allPorts(ctx).values()];
    const names = req.names
      ? { ofport: (n: number) => [...req.bridge.ports.values()].find((p) => p.ofport === n)?.name, odpPort: (n: number) => ports.find((p) => p.odpPort === n)?.name }
      : undefined;
    return `${trace(req.bridge.ofproto, req.flow, undefined, { sideEffects: req.generate, names }).text}\n`;
  });

  server.register('ofproto/trace-packet-out', '[-consistent] bridge br_flow actions', 3, 4, (argv) => {
    const args = argv[0] === '-consistent' ? argv.slice(1) : argv;
    if (args.length !== 3) throw new AppctlError('APPCTL_BAD_ARGS', 'Syntax error');
    const [name, flowText, actionsText] = args;
    const b = ctx.bridges().find((x) => x.name === name);
    if (!b) throw new AppctlError('APPCTL_NO_BRIDGE', `${name}: unknown bridge`);
    const portByName = (n: string) => b.ports.get(n)?.ofport;
    let flow: Flow;
    let actions: readonly Action[];
    try {
      flow = parseTraceFlow(flowText, portByName);
      // Checked against the packet's own fields, as OVS checks a packet-out's actions.
      actions = parseFlow(`${flowText},actions=${actionsText}`, { portByName, dialect: 'of13' }).actions;
    } catch (e) {
      throw new AppctlError('APPCTL_BAD_ARGS', (e as Error).message);
    }
    return `${trace(b.ofproto, flow, undefined, { actions }).text}\n`;
  });

  server.register('time/stop', '', 0, 0, () => {
    ctx.clock.stop();
    return '';
  });

  server.register('time/warp', '[large_msecs] msecs', 1, 2, (args) => {
    const total = Number(args[0]);
    const step = args.length === 2 ? Number(args[1]) : total;
    if (!Number.isInteger(total) || total < 0 || !Number.isInteger(step) || step <= 0) throw new AppctlError('APPCTL_BAD_ARGS', 'A non-negative number of milliseconds is required');
    // In steps, as OVS does: timeouts fire at each step, not all at the end.
    for (let done = 0; done < total; done += step) {
      ctx.clock.warp(Math.min(step, total - done));
      for (const b of ctx.bridges()) b.ofproto.run();
    }
    ctx.udpif()?.scheduleTargeted();
    return 'warped\n';
  });

  server.register('dpif-dummy/change-port-number', 'dp port new_number', 3, 3, (args) => {
    const no = Number(args[2]);
    if (!Number.isInteger(no) || no <= 0 || no >= 0xffffffff) throw new AppctlError('APPCTL_BAD_ARGS', `${args[2]}: bad port number`);
    try {
      ctx.changeOdpPort(args[1], no);
    } catch (err) {
      throw new AppctlError('APPCTL_NO_PORT', (err as Error).message);
    }
    return '';
  });

  server.register('dpif/dump-dps', '', 0, 0, () =>
    ctx
      .bridges()
      .map((b) => `${b.model.config.datapathType || 'system'}@${b.name}\n`)
      .sort()
      .join(''),
  );

  server.register('fdb/show', 'bridge', 1, 1, (args) => `${formatFdb(findBridge(ctx, args[0]).ofproto).join('\n')}\n`);

  server.register('fdb/flush', '[bridge]', 0, 1, (args) => {
    const targets = args.length ? [findBridge(ctx, args[0])] : ctx.bridges();
    for (const b of targets) b.ofproto.fdbFlush();
    ctx.udpif()?.scheduleTargeted();
    return 'table successfully flushed\n';
  });

  server.register('fdb/stats-show', 'bridge', 1, 1, (args) => {
    const b = findBridge(ctx, args[0]);
    const st = b.ofproto.fdbStats();
    return (
      `Statistics for bridge "${b.name}":\n` +
      `  Current/maximum MAC entries in the table: ${st.entries}/${b.model.config.macTableSize}\n` +
      `  Current static MAC entries in the table : ${st.statics}\n` +
      `  Total number of learned MAC entries     : ${st.learned}\n` +
      `  Total number of expired MAC entries     : ${st.expired}\n` +
      `  Total number of evicted MAC entries     : ${st.evicted}\n` +
      `  Total number of port moved MAC entries  : ${st.moved}\n`
    );
  });

  server.register('fdb/add', 'bridge port vlan mac', 4, 4, (args) => {
    const b = findBridge(ctx, args[0]);
    const mac = macArg(args[3]);
    const port = b.ports.get(args[1]);
    if (!port) throw new AppctlError('APPCTL_NO_PORT', 'software error, odp port is present but no ofp port');
    const old = b.ofproto.fdbAdd(port.ofport, vlanArg(args[2]), mac);
    ctx.udpif()?.scheduleTargeted();
    return old && (old.port !== port.ofport || !old.isStatic) ? `Overriding already existing ${old.isStatic ? 'static' : 'dynamic'} entry on ${old.port}\n` : '';
  });

  server.register('fdb/del', 'bridge vlan mac', 3, 3, (args) => {
    const b = findBridge(ctx, args[0]);
    if (!b.ofproto.fdbDelete(vlanArg(args[1]), macArg(args[2]))) throw new AppctlError('APPCTL_BAD_ARGS', 'could not find static mac entry');
    ctx.udpif()?.scheduleTargeted();
    return '';
  });

  server.register('dpif/show', '', 0, 0, () => {
    const dp = needDp(ctx);
    const s = dp.stats();
    const out = [`${DP_NAME}: hit:${pmdTotal(s, 'emcHits') + pmdTotal(s, 'megaflowHits')} missed:${pmdTotal(s, 'misses')}`];
    for (const b of ctx.bridges()) {
      out.push(`  ${b.name}:`);
      const ports = [...b.ports.values()].sort((x, y) => x.ofport - y.ofport);
      for (const p of ports) {
        // A patch port has no datapath port: OVS shows it as `none` with its peer.
        out.push(p.type === 'patch' ? `    ${p.name} ${p.ofport}/none: (patch: peer=${p.peer})` : `    ${p.name} ${p.ofport}/${p.odpPort}: (${portKind(p)})`);
      }
    }
    return `${out.join('\n')}\n`;
  });

  server.register('dpif/dump-flows', '[-m] [--names | --no-names] bridge', 1, 3, (args) => {
    const { more, names, name } = dumpFlowsArgs(args, true);
    const b = findBridge(ctx, name!);
    return dumpFlowLines(needDp(ctx), new Map([...b.ports.values()].map((p) => [p.odpPort, p.name])), more, names);
  });

  // dpctl/*: the datapath itself, all bridges at once (nvs has one datapath).
  server.register('dpctl/dump-flows', '[-m] [--names | --no-names] [dp]', 0, 3, (args) => {
    const { more, names, name } = dumpFlowsArgs(args, false);
    checkDpName(name);
    const ports = new Map([...allPorts(ctx)].map(([no, p]) => [no, p.name]));
    return dumpFlowLines(needDp(ctx), ports, more, names);
  });

  server.register('dpctl/show', '[dp]', 0, 1, (args) => {
    checkDpName(args[0]);
    const s = needDp(ctx).stats();
    const out = [
      `${DP_NAME}:`,
      `  lookups: hit:${pmdTotal(s, 'emcHits') + pmdTotal(s, 'megaflowHits')} missed:${pmdTotal(s, 'misses')} lost:${s.lostUpcalls}`,
      `  flows: ${s.flows}`,
    ];
    for (const [no, p] of [...allPorts(ctx)].sort((x, y) => x[0] - y[0])) out.push(`  port ${no}: ${p.name} (${portKind(p)})`);
    return `${out.join('\n')}\n`;
  });

  server.register('dpctl/del-flows', '[dp]', 0, 1, (args) => {
    checkDpName(args[0]);
    needDp(ctx);
    ctx.udpif()?.flush();
    return '';
  });

  // Counters as dpif-netdev/pmd-stats-clear found them, per polling thread: pmd-stats-show shows what came since.
  const pmdCleared = new Map<number, Record<string, number>>();
  let lostCleared = 0;

  server.register('dpif-netdev/pmd-stats-show', '', 0, 0, () => {
    const s = needDp(ctx).stats();
    const out: string[] = [];
    for (const t of s.threads) {
      const base = pmdCleared.get(t.id) ?? {};
      const c = (name: string) => (t.counters[name] ?? 0) - (base[name] ?? 0);
      const packets = c('packets');
      out.push(`pmd thread numa_id 0 core_id ${t.core ?? '?'}:`);
      out.push(`  packets received: ${packets}`);
      out.push(`  emc hits: ${c('emcHits')}`);
      out.push(`  megaflow hits: ${c('megaflowHits')}`);
      out.push(`  miss with success upcall: ${c('misses')}`);
      out.push(`  miss with failed upcall: ${c('lostUpcalls')}`);
      out.push(`  parse errors: ${c('parseErrors')}`);
      if (packets > 0 && t.counters.busyNs !== undefined) out.push(`  processing time per packet: ${(c('busyNs') / packets).toFixed(1)} ns`);
      const [busy, idle] = [c('busyCycles'), c('idleCycles')];
      const share = (x: number) => (busy + idle > 0 ? ((100 * x) / (busy + idle)).toFixed(2) : '0.00');
      out.push(`  idle cycles: ${idle} (${share(idle)}%)`);
      out.push(`  processing cycles: ${busy} (${share(busy)}%)`);
      if (packets > 0) {
        out.push(`  avg cycles per packet: ${((busy + idle) / packets).toFixed(2)} (${busy + idle}/${packets})`);
        out.push(`  avg processing cycles per packet: ${(busy / packets).toFixed(2)} (${busy}/${packets})`);
      }
      out.push(`  polling iterations: ${c('iterations')}`);
      out.push(`  rx ports: ${t.ports.join(' ') || '(none)'}`);
    }
    out.push(`upcalls lost (queue full): ${s.lostUpcalls - lostCleared}`);
    return `${out.join('\n')}\n`;
  });

  server.register('dpif-netdev/pmd-stats-clear', '', 0, 0, () => {
    const s = needDp(ctx).stats();
    pmdCleared.clear();
    for (const t of s.threads) pmdCleared.set(t.id, { ...t.counters });
    lostCleared = s.lostUpcalls;
    return '';
  });

  // Which polling thread receives on which port, in OVS's layout (nvs keeps no per-queue usage history).
  server.register('dpif-netdev/pmd-rxq-show', '', 0, 0, () => {
    const s = needDp(ctx).stats();
    const ports = allPorts(ctx);
    const out = ['Displaying last 60 seconds pmd usage %'];
    for (const t of s.threads) {
      out.push(`pmd thread numa_id 0 core_id ${t.core ?? '?'}:`);
      out.push('  isolated : false');
      for (const no of t.ports) out.push(`  port: ${(ports.get(no)?.name ?? String(no)).padEnd(16)}  queue-id:  0 (enabled)   pmd usage: NOT AVAIL`);
      out.push('  overhead: NOT AVAIL');
    }
    return `${out.join('\n')}\n`;
  });

  server.register('memory/show', '', 0, 0, () => {
    const bridges = ctx.bridges();
    const counts: Record<string, number> = {
      bridges: bridges.length,
      ports: bridges.reduce((n, b) => n + b.ports.size, 0),
      rules: bridges.reduce((n, b) => n + b.ofproto.dumpFlows().length, 0),
      'mac-entries': bridges.reduce((n, b) => n + b.ofproto.fdb().length, 0),
      'udpif keys': ctx.udpif()?.flowCount ?? 0,
      ...ctx.memory(),
      'heap-used-kB': Math.round(process.memoryUsage().heapUsed / 1024),
      'rss-kB': Math.round(process.memoryUsage().rss / 1024),
    };
    return `${Object.entries(counts)
      .map(([k, v]) => `${k}:${v}`)
      .join(' ')}\n`;
  });

  server.register('coverage/show', '', 0, 0, () => ctx.coverage.show());

  server.register('upcall/show', '', 0, 0, () => {
    needDp(ctx);
    const udpif = ctx.udpif()!;
    const r = udpif.roundStats;
    const ph = udpif.phaseMs;
    const us = (ms: number) => (udpif.handled ? ((ms * 1000) / udpif.handled).toFixed(2) : '0.00');
    return [
      `${DP_NAME}:`,
      `  flows         : (current ${udpif.flowCount}) (avg ${r.avgFlows}) (max ${r.maxFlows}) (limit ${udpif.flowLimit})`,
      `  dump duration : ${r.durationMs}ms`,
      '  ufid enabled : true',
      `  handlers      : 1${ctx.requestedHandlers() ? ` (n-handler-threads=${ctx.requestedHandlers()} is not acted on: upcalls are translated on the daemon's event loop)` : ''}`,
      `  1: (keys ${udpif.flowCount})`,
      `  upcall time per miss (µs, ${udpif.handled} misses): xlate ${us(ph.xlate)} install ${us(ph.install)} execute ${us(ph.execute)} other ${us(ph.other)}`,
      '',
    ].join('\n');
  });

  server.register('netdev-dummy/receive', 'name packet|flow...', 2, Infinity, (args) => {
    const { bridge, port } = findDummyPort(ctx, args[0]);
    const dp = needDp(ctx);
    const packets = args.slice(1).map((t) => packetFromText(t, bridge));
    dp.inject(port.odpPort, packets);
    injected.set(port.odpPort, (injected.get(port.odpPort) ?? 0) + packets.length);
    ctx.coverage.inc('netdev_dummy_receive', packets.length);
    return '';
  });

  server.register('netdev-dummy/drain', 'name [max]', 1, 2, (args) => {
    const { port } = findDummyPort(ctx, args[0]);
    const max = args[1] ? Number(args[1]) : 1024;
    const packets = needDp(ctx).drain(port.odpPort, Number.isInteger(max) && max > 0 ? max : 1024);
    return packets.map((p) => `${hexOf(p)}\n`).join('');
  });

  server.register('revalidator/wait', '', 0, 0, async () => {
    const dp = ctx.dp();
    const udpif = ctx.udpif();
    if (!dp || !udpif) return '';
    await quiesce(dp, udpif, injected);
    await udpif.nextRound();
    return '';
  });

  server.register('revalidator/purge', '', 0, 0, () => {
    ctx.udpif()?.flush();
    return '';
  });
}
