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
import { formatDpActions, formatFdb, formatOdpFlowKey, formatTcpFlagLetters, parseTraceFlow, trace } from '@nvs/ofproto';
import type { UnixctlServer } from '@nvs/daemon';
import type { BridgePort } from './bridge.ts';
import type { Coverage } from './coverage.ts';
import type { Dpif, DpStats } from './dpif.ts';
import { keyFromFlow } from './keyflow.ts';
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

export function registerAppctl(server: UnixctlServer, ctx: AppctlContext): void {
  /** Packets injected per datapath port, for revalidator/wait. */
  const injected = new Map<number, number>();

  server.register('ofproto/trace', '[bridge] flow', 1, 2, (args) => {
    const bridges = ctx.bridges();
    let bridge: OfBridge;
    let flow: string;
    if (args.length === 2) {
      bridge = findBridge(ctx, args[0]);
      flow = args[1];
    } else {
      if (bridges.length !== 1) throw new AppctlError('APPCTL_NO_BRIDGE', 'must specify a bridge (there is not exactly one)');
      bridge = bridges[0];
      flow = args[0];
    }
    return `${trace(bridge.ofproto, flow, (n) => bridge.ports.get(n)?.ofport).text}\n`;
  });

  server.register('fdb/show', 'bridge', 1, 1, (args) => `${formatFdb(findBridge(ctx, args[0]).ofproto).join('\n')}\n`);

  server.register('fdb/flush', '[bridge]', 0, 1, (args) => {
    const targets = args.length ? [findBridge(ctx, args[0])] : ctx.bridges();
    for (const b of targets) b.ofproto.fdbFlush();
    ctx.udpif()?.scheduleTargeted();
    return 'table successfully flushed\n';
  });

  server.register('fdb/stats-show', 'bridge', 1, 1, (args) => {
    const b = findBridge(ctx, args[0]);
    return (
      `Statistics for bridge "${b.name}":\n` +
      `  Current/maximum MAC entries in the table: ${b.ofproto.fdb().length}/${b.model.config.macTableSize}\n` +
      `  Current static MAC entries in the table : 0\n` +
      `  MAC aging time (seconds)                : ${b.model.config.macAgingTime}\n`
    );
  });

  server.register('dpif/show', '', 0, 0, () => {
    const dp = needDp(ctx);
    const s = dp.stats();
    const out = [`${DP_NAME}: hit:${pmdTotal(s, 'emcHits') + pmdTotal(s, 'megaflowHits')} missed:${pmdTotal(s, 'misses')}`];
    for (const b of ctx.bridges()) {
      out.push(`  ${b.name}:`);
      const ports = [...b.ports.values()].sort((x, y) => x.ofport - y.ofport);
      for (const p of ports) out.push(`    ${p.name} ${p.ofport}/${p.odpPort}: (${portKind(p)})`);
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
