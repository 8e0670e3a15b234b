/**
 * nvs-vswitchd as a component: wires the database link (DbSync), the bridge
 * model (Switch), the datapath (opened on the first configuration, so that
 * other_config:pmd-cpu-mask picks its cores; a later change of the mask moves
 * the polling threads live), one Ofproto per bridge, upcall
 * handling and revalidation (Udpif), the appctl socket, the per-bridge
 * management sockets and the saved rules, with an explicit start/stop.
 * Everything it uses comes in through VswitchdComponents, so tests can run
 * two switches in one process.
 */
import { WarpClock } from './clock.ts';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { type Action, type FlowModOutcome, OFPP, type Rule } from '@nvs/ofproto';
import { UnixctlServer, type VLog } from '@nvs/daemon';
import { Switch, type Bridge, type BridgePort, type DatapathPorts, type PortBackend } from './bridge.ts';
import type { ReadOptions, SwitchConfig } from './config.ts';
import { Coverage } from './coverage.ts';
import type { Dpif, DpifOptions, DpPortStats, PortCounters } from './dpif.ts';
import { ClusterLink } from './cluster-link.ts';
import { DbSync, type InterfaceRefresh } from './dbsync.ts';
import { ConnMgr } from './connmgr.ts';
import { Controllers } from './controller.ts';
import { FlowService, FlowServiceError } from './flow-service.ts';
import { flowFromKey } from './keyflow.ts';
import { MgmtServer } from './mgmt.ts';
import { OfBridge } from './ofbridge.ts';
import { registerAppctl } from './appctl.ts';
import { RuleStore } from './rulestore.ts';
import { Udpif } from './udpif.ts';

export const VERSION = '0.1.0';

/** How the datapath is opened: polling-thread cores come from the database. */
export interface VswitchdComponents {
  vlog: VLog;
  rundir: string;
  /** Database remote, `unix:PATH`. */
  remote: string;
  /** appctl socket path (default `<rundir>/nvs-vswitchd.ctl`). */
  unixctlPath?: string;
  openDpif: (o: DpifOptions) => Dpif;
  /** Restore saved rules when a bridge appears (default true; `--no-restore` turns it off). */
  restore?: boolean;
  read?: ReadOptions;
  /** Revalidation period (ms). */
  revalidateMs?: number;
  /** Statistics write-back period (ms) while other_config:stats-update-interval is unset (default 5000). */
  statsIntervalMs?: number;
  /** Called when `exit` is requested over appctl. */
  onExit?: () => void;
  /** Cluster agent timing (tests shorten it); default the agent's own (heartbeat 1 s, reaped after 5 s). */
  cluster?: { heartbeatMs?: number; ttlMs?: number };
}

/** OpenFlow port-status reasons. */
const OFPPR_ADD = 0;
const OFPPR_DELETE = 1;
const ZERO: PortCounters = { rxPackets: 0, rxBytes: 0, rxDropped: 0, txPackets: 0, txBytes: 0, txDropped: 0 };

export class Vswitchd {
  readonly coverage = new Coverage();
  readonly switch: Switch;
  readonly unixctl: UnixctlServer;
  readonly flows: FlowService;
  readonly ofbridges = new Map<string, OfBridge>();
  private readonly mgmt = new Map<string, MgmtServer>();
  /** Every bridge's OpenFlow connections, for packet-ins, flow-removed and port status. */
  private readonly connmgr = new ConnMgr();
  /** The Bridge `controller` columns' connections. */
  private readonly controllers: Controllers;
  private readonly db: DbSync;
  private readonly rules: RuleStore;
  private readonly cluster: ClusterLink;
  private readonly log: Logger;
  private dp: Dpif | undefined;
  private udpif: Udpif | undefined;
  private dpCores: string | undefined;
  private sampler: NodeJS.Timeout | undefined;
  private stopping = false;
  /** other_config:n-handler-threads, recorded for upcall/show: one handler (the event loop) translates upcalls. */
  private requestedHandlers: number | undefined;
  private readonly clock = new WarpClock();

  constructor(private readonly c: VswitchdComponents) {
    this.log = c.vlog.logger('vswitchd');
    // Every module exists from the start, so vlog/set can name it before its first bridge.
    for (const m of ['ofproto', 'mgmt', 'udpif']) c.vlog.logger(m);
    this.rules = new RuleStore(c.rundir, c.vlog.logger('rules'));
    // The bridge layer reaches the datapath through this late-bound view: it is opened on the first configuration.
    const ports: DatapathPorts = {
      // A server-mode vhost-user socket lives in the run directory, named after its interface (as OVS's).
      addPort: (name, type, options, portNo) =>
        this.requireDp().addPort(name, type, type === 'dpdkvhostuser' ? { 'vhost-server-path': join(this.c.rundir, name) } : options, portNo),
      removePort: (no) => this.requireDp().removePort(no),
      portDevice: (no) => this.requireDp().portDevice(no),
      deviceState: (no) => this.requireDp().deviceState(no),
      setDeviceMtu: (no, mtu) => this.requireDp().setDeviceMtu(no, mtu),
    };
    this.switch = new Switch(c.vlog.logger('bridge'), ports);
    this.flows = new FlowService({
      bridge: (name) => this.ofbridges.get(name),
      portCounters: (p) => this.portCounters().get(p.odpPort) ?? ZERO,
      changed: (b, outcome) => {
        this.flowsDeleted(b, outcome);
        this.coverage.inc('ofproto_flow_mod');
        this.udpif?.scheduleTargeted();
        this.rules.schedule(b);
      },
      execute: (b, inPort, actions, packet) => this.packetOut(b, inPort, actions, packet),
    });
    this.cluster = new ClusterLink({ log: c.vlog.logger('cluster'), flows: this.flows, agent: c.cluster });
    this.controllers = new Controllers({ service: this.flows, connmgr: this.connmgr, log: c.vlog.logger('connmgr'), changed: () => this.db.refresh() });
    this.db = new DbSync({
      remote: c.remote,
      log: c.vlog.logger('dbsync'),
      apply: (cfg) => this.apply(cfg),
      periodic: () => this.interfaceRefresh(),
      controllerStatus: () => this.controllers.statuses(),
      statsIntervalMs: c.statsIntervalMs,
      read: c.read,
    });
    this.unixctl = new UnixctlServer({
      path: c.unixctlPath ?? join(c.rundir, 'nvs-vswitchd.ctl'),
      log: c.vlog.logger('unixctl'),
      version: `nvs-vswitchd (nvs) ${VERSION}`,
      vlog: c.vlog,
      onExit: c.onExit,
      exitCleanup: true,
    });
    registerAppctl(this.unixctl, {
      bridges: () => [...this.ofbridges.values()],
      dp: () => this.dp,
      udpif: () => this.udpif,
      coverage: this.coverage,
      memory: () => ({ handlers: 1, revalidators: 1 }),
      requestedHandlers: () => this.requestedHandlers,
      clock: this.clock,
      changeOdpPort: (port, no) => {
        const ob = this.ofbridges.get(this.switch.changeOdpPort(port, no).name);
        if (ob?.sync(this.switch.status)) this.udpif?.bridgeChanged(ob);
      },
    });
    this.unixctl.register('cluster/show', '', 0, 0, () => this.cluster.show());
  }

  /** Opens the appctl socket, then connects to the database and applies its first configuration. */
  async start(): Promise<void> {
    await this.unixctl.listen();
    await this.db.start();
    await this.db.firstApplied;
    this.sampler = setInterval(() => this.coverage.sample(), 5000);
    this.sampler.unref();
    this.log.info({ rundir: this.c.rundir, remote: this.c.remote }, 'nvs-vswitchd started');
  }

  /** Stops cleanly: saves rules, closes sockets and the datapath. Rules files stay for the next start. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.sampler);
    // Before the rules are saved: the cluster's rules are rebuilt from Redis at the next start, not restored.
    await this.cluster.stop();
    this.rules.flush();
    await this.db.stop();
    this.controllers.stopAll();
    await this.unixctl.close();
    this.udpif?.stop();
    for (const m of this.mgmt.values()) await m.close();
    this.mgmt.clear();
    if (this.dp) {
      for (const b of this.switch.clear()) this.bridgeRemoved(b);
      this.dp.close();
      this.dp = undefined;
    }
    this.log.info('nvs-vswitchd stopped');
  }

  /** Megaflows the slow path has installed and tracks (its ukeys). */
  get megaflowCount(): number {
    return this.udpif?.flowCount ?? 0;
  }

  /** The datapath, once the first configuration opened it. */
  get dpif(): Dpif | undefined {
    return this.dp;
  }

  private requireDp(): Dpif {
    if (!this.dp) throw new Error('datapath not open');
    return this.dp;
  }

  private apply(cfg: SwitchConfig) {
    this.coverage.inc('bridge_reconfigure');
    this.openDatapath(cfg);
    if (cfg.handlers !== this.requestedHandlers && cfg.handlers !== undefined && cfg.handlers !== 1) {
      this.log.info({ nHandlerThreads: cfg.handlers }, 'n-handler-threads is recorded but not acted on: one handler (the event loop) translates upcalls');
    }
    this.requestedHandlers = cfg.handlers;
    this.udpif?.setLimits(cfg.maxIdleMs, cfg.flowLimit);
    // Control goes one way: the model reconciles and says what changed, then ofproto and the caches follow.
    const portsBefore = new Map([...this.ofbridges].map(([name, ob]) => [name, new Map([...ob.ports.values()].map((p) => [p.name, { ...p }]))]));
    const changes = this.switch.reconcile(cfg);
    for (const b of changes.removed) this.bridgeRemoved(b);
    for (const b of changes.added) this.bridgeAdded(b);
    // Every bridge re-checks its ports (errors found by ofproto, such as bad VLAN settings, are reported each
    // time) and is revalidated when its ports or settings changed.
    // A bridge joined to others by patch ports is revalidated when any bridge changes: its megaflows cross into them.
    const anyChange = changes.added.length + changes.removed.length + changes.changed.size > 0;
    for (const ob of this.ofbridges.values()) {
      const synced = ob.sync(this.switch.status);
      const limited = ob.ofproto.setVlanLimit(cfg.vlanLimit);
      if (synced || limited || changes.changed.has(ob.model) || (anyChange && ob.hasPatchPorts)) this.udpif?.bridgeChanged(ob);
      if (synced) this.portsChanged(ob, portsBefore.get(ob.name) ?? new Map());
    }
    // As in OVS, the MACs of a deleted port are forgotten by every bridge.
    const gone = [...this.ofbridges.values()].flatMap((ob) => ob.ofproto.takeRemovedPortMacs());
    if (gone.length) for (const ob of this.ofbridges.values()) ob.ofproto.forgetMacs(gone);
    this.cluster.update(cfg, this.switch);
    for (const b of cfg.bridges) this.controllers.reconcile(b.name, b.controllers);
    // Last, so that the write a new period makes at once sees the ports as now configured.
    if (this.db.setStatsInterval(cfg.statsUpdateIntervalMs)) {
      this.log.info({ statsUpdateIntervalMs: this.db.statsIntervalMs }, 'statistics are written to the database at a new period');
    }
    return this.switch.status;
  }

  private openDatapath(cfg: SwitchConfig): void {
    const cores = cfg.pmdCpus?.join(',');
    if (this.dp) {
      if (cores !== this.dpCores) this.movePollingThreads(this.dp, cfg.pmdCpus, cores);
      return;
    }
    try {
      this.dp = this.c.openDpif({ cores: cfg.pmdCpus });
    } catch (err) {
      // A mask naming cores this machine lacks must not keep the switch down: run unpinned.
      this.log.error({ pmdCpuMask: cores, err: (err as Error).message }, 'cannot pin polling threads as pmd-cpu-mask asks; running one unpinned thread');
      this.dp = this.c.openDpif({});
    }
    this.dpCores = cores;
    this.udpif = new Udpif({
      dp: this.dp,
      log: this.c.vlog.logger('udpif'),
      coverage: this.coverage,
      bridgeOf: (odp) => {
        const found = this.switch.portByOdp(odp);
        return found ? this.ofbridges.get(found.bridge.name) : undefined;
      },
      bridges: () => this.ofbridges.values(),
      toController: (b, ev) => this.connmgr.packetIn(b.name, ev) > 0,
      expired: (b, gone) => this.connmgr.flowRemoved(b.name, gone, b.ofproto.now()),
      maxIdleMs: cfg.maxIdleMs,
      flowLimit: cfg.flowLimit,
      intervalMs: this.c.revalidateMs,
    });
    this.udpif.start();
    this.log.info({ cores: cfg.pmdCpus ?? 'unpinned' }, 'datapath opened');
  }

  /**
   * A new pmd-cpu-mask takes effect at once, as in OVS: the datapath re-creates
   * its polling threads on the new cores and spreads the ports over them,
   * keeping ports and megaflows (a brief pause, no restart). A mask it cannot
   * honour leaves the threads where they are.
   */
  private movePollingThreads(dp: Dpif, cpus: number[] | undefined, text: string | undefined): void {
    try {
      dp.setPmdCores(cpus ?? []);
      this.coverage.inc('pmd_reconfigure');
      this.log.info({ cores: cpus ?? 'unpinned' }, 'pmd-cpu-mask changed: polling threads moved');
    } catch (err) {
      this.log.error({ pmdCpuMask: text, err: (err as Error).message }, 'cannot pin polling threads as pmd-cpu-mask asks; keeping the current threads');
    }
    // Not retried on every reconfiguration: only a new mask is tried again.
    this.dpCores = text;
  }

  /** Ports added to or gone from a bridge (an OpenFlow port number changing is a delete and an add), told to its OpenFlow connections. */
  private portsChanged(ob: OfBridge, before: Map<string, BridgePort>): void {
    const after = new Map([...ob.ports.values()].map((p) => [p.name, p]));
    for (const [name, p] of before) if (after.get(name)?.ofport !== p.ofport) this.connmgr.portStatus(ob.name, OFPPR_DELETE, p);
    for (const [name, p] of after) if (before.get(name)?.ofport !== p.ofport) this.connmgr.portStatus(ob.name, OFPPR_ADD, p);
  }

  /** Rules a flow mod deleted (not those an identical add replaced) are reported to the controllers that asked. */
  private flowsDeleted(b: OfBridge, outcome: FlowModOutcome): void {
    const replaced = (r: Rule) => outcome.added.some((a) => a.table === r.table && a.match.priority === r.match.priority && a.match.value.every((x, i) => x === r.match.value[i] && a.match.mask[i] === r.match.mask[i]));
    const gone = outcome.removed.filter((r) => r.flags.sendFlowRem && !replaced(r)).map((rule) => ({ rule, reason: 'delete' as const }));
    if (gone.length) this.connmgr.flowRemoved(b.name, gone, b.ofproto.now());
  }

  /**
   * A packet-out: the packet's flow (as the datapath extracts it, with the
   * OpenFlow in_port) through the given actions, and the result executed.
   * A packet-out from the controller's own port enters as from LOCAL's datapath port.
   */
  private packetOut(b: OfBridge, inPort: number, actions: readonly Action[], packet: Uint8Array): void {
    const dp = this.dp;
    if (!dp) throw new FlowServiceError('FLOW_NO_SUCH_BRIDGE', 'packet-out: the datapath is not open');
    const odp = b.odpPort(inPort) ?? b.odpPort(OFPP.LOCAL) ?? 0;
    const result = b.ofproto.xlate(flowFromKey(dp.extractKey(packet, odp), inPort), { actions, packet });
    if (result.error) this.log.debug({ bridge: b.name, err: result.error }, 'packet-out translation failed; packet dropped');
    const failed = dp.executeBatch([{ inPort: odp, packet, actions: result.actions }]);
    if (failed.length) this.log.debug({ bridge: b.name, err: failed[0].error.message }, 'packet-out execute failed');
    this.coverage.inc('ofproto_packet_out');
  }

  private portCounters(): Map<number, DpPortStats> {
    const out = new Map<number, DpPortStats>();
    for (const p of this.dp?.stats().ports ?? []) out.set(p.no, p);
    return out;
  }

  /** Each working port's counters and device state, for the periodic write-back. */
  private interfaceRefresh(): Map<string, InterfaceRefresh> {
    const counters = this.portCounters();
    const out = new Map<string, InterfaceRefresh>();
    for (const bridge of this.switch.bridges.values()) {
      for (const p of bridge.ports.values()) {
        const c = counters.get(p.odpPort);
        const statistics = c && {
          rx_packets: c.rxPackets,
          rx_bytes: c.rxBytes,
          rx_dropped: c.rxDropped,
          tx_packets: c.txPackets,
          tx_bytes: c.txBytes,
          tx_dropped: c.txDropped,
        };
        // A port's own trouble (a vhost-user queue disabled) shows while it lasts; else the MTU's.
        out.set(p.ifaceUuid, { statistics, error: c?.error ?? p.mtuError, ...this.switch.linkStatus(p) });
      }
    }
    return out;
  }

  // ------------------------------------------------ bridges come and go

  /** A new bridge: its ofproto (with its saved rules) and its management socket. */
  private bridgeAdded(bridge: Bridge): void {
    const ob = new OfBridge(bridge, this.c.vlog.logger('ofproto').child({ bridge: bridge.name }), this.clock, (port) => {
      const peer = this.switch.patchPeer(port);
      const peerBridge = peer && this.ofbridges.get(peer.bridge.name);
      return peerBridge && { ofproto: peerBridge.ofproto, ofport: peer.port.ofport };
    });
    ob.sync(this.switch.status);
    this.ofbridges.set(bridge.name, ob);
    if (this.c.restore !== false) {
      const saved = this.rules.load(ob);
      if (saved) {
        // Restored before any upcall of this bridge is handled: upcalls are processed on a later turn of the event loop.
        ob.ofproto.replaceFlows(saved);
        this.log.info({ bridge: bridge.name, rules: saved.length }, 'rules restored');
      }
    }
    this.rules.schedule(ob);
    const server = new MgmtServer({
      path: join(this.c.rundir, `${bridge.name}.mgmt`),
      bridge: bridge.name,
      service: this.flows,
      log: this.c.vlog.logger('mgmt'),
      now: () => this.clock.now(),
      connmgr: this.connmgr,
    });
    this.mgmt.set(bridge.name, server);
    server.listen().catch((err) => this.log.error({ bridge: bridge.name, err: (err as Error).message }, 'management socket failed'));
  }

  /** A bridge gone from the model: its megaflows, management socket and (unless shutting down) saved rules go too. */
  private bridgeRemoved(bridge: Bridge): void {
    const ob = this.ofbridges.get(bridge.name);
    this.ofbridges.delete(bridge.name);
    this.controllers.reconcile(bridge.name, []);
    if (ob) this.udpif?.bridgeRemoved(ob);
    const server = this.mgmt.get(bridge.name);
    this.mgmt.delete(bridge.name);
    void server?.close();
    // A bridge deleted from the database takes its rules with it; at shutdown they stay for the restart.
    if (!this.stopping) this.rules.remove(bridge.name);
  }
}
