/**
 * The slow path's side of the datapath cache (OVS: ofproto-dpif-upcall.c).
 *
 * Upcalls: misses arrive in batches; each is translated by its bridge's
 * ofproto (xlate), the resulting megaflow is installed and the packet
 * executed with the same actions. Every installed megaflow has a "ukey"
 * here: the flow it was translated from, its invalidation tags, the rules
 * it credits and the datapath counters already credited. Ukeys are indexed
 * by tag, so a change finds the megaflows it affects without a dump.
 *
 * MAC-learning changes made while a batch is translated are collected after
 * each translation, with an epoch: a ukey translated after a MAC entry
 * changed already saw the change, so only older ukeys carrying that MAC's
 * tag are translated again (without this, NORMAL re-translated every new
 * flow once, right after installing it, for the MAC it had just learned).
 *
 * Two kinds of revalidation:
 * - targeted, as soon as the event loop is free after rules, MAC entries or
 *   ports changed: only the ukeys carrying a changed tag (or all of a changed
 *   bridge's) are translated again, and their megaflow fixed in place (same
 *   mask, new actions) or deleted (the mask changed) — so a rule change
 *   reaches established flows within one round;
 * - full rounds, periodically: the datapath's flows are dumped, new packets
 *   and bytes credited to their rules (and MAC entries refreshed), flows idle
 *   for `maxIdleMs` deleted, and flows the slow path does not know removed.
 *   The period stretches to 4× the last round's duration, so a big table
 *   costs the revalidator at most a fifth of the thread.
 */
import type { Logger } from 'pino';
import { formatDpActions, newFlow, type RemovalReason, type Rule, type XlateResult } from '@nvs/ofproto';
import type { Coverage } from './coverage.ts';
import type { Dpif, DpExecute, DpFlowPut, DpUpcall } from './dpif.ts';
import type { OfBridge } from './ofbridge.ts';
import type { PacketInEvent } from './ofconn.ts';

interface Ukey {
  id: string;
  bridge: OfBridge;
  /** The full key of the packet that caused the upcall, encoded (re-translated on revalidation). */
  key: string;
  /** The datapath port that packet came in on (its key's in_port). */
  inPort: number;
  actionsText: string;
  /** Its translation's invalidation tags (an array: a Set per megaflow costs several times the memory). */
  tags: readonly string[];
  rules: Rule[];
  macs: XlateResult['macs'];
  learned: Rule[];
  packets: number;
  bytes: number;
  createdAt: number;
  /** The invalidation epoch its translation saw (see the module comment). */
  epoch: number;
  /** The last full round whose dump listed its megaflow. */
  dumped: number;
}

export interface UdpifOptions {
  dp: Dpif;
  log: Logger;
  coverage: Coverage;
  /** Finds the bridge that owns a datapath port. */
  bridgeOf: (odpPort: number) => OfBridge | undefined;
  bridges: () => Iterable<OfBridge>;
  /** Rules that timed out (for flow-removed messages). */
  expired?: (bridge: OfBridge, gone: { rule: Rule; reason: RemovalReason }[]) => void;
  /** Hands a packet sent up by a `controller` action to the bridge's controllers; false when none took it. */
  toController?: (bridge: OfBridge, ev: PacketInEvent) => boolean;
  maxIdleMs: number;
  /** Most megaflows at once (OVS's flow-limit): past it an upcall's packet is executed but no megaflow installed. */
  flowLimit: number;
  /** Shortest period of full rounds (ms, default 500). */
  intervalMs?: number;
}

/** Shortest time between two log lines about userspace upcalls (ms). */
const USERSPACE_LOG_MS = 5000;

/** The tag every translation carries; port changes are handled per bridge instead. */
const PORTS_TAG = 'ports';

export class Udpif {
  private readonly ukeys = new Map<string, Ukey>();
  /** The flow each translation starts from (xlate copies it, so one is reused). */
  private readonly flow = newFlow();
  /** Ukeys by tag: one ukey alone (most MAC tags: a host's own flows), else a Set. */
  private readonly byTag = new Map<string, Ukey | Set<Ukey>>();
  /** Changed tags → the epoch in which they changed. */
  private readonly dirtyTags = new Map<string, number>();
  private epoch = 0;
  private readonly dirtyBridges = new Set<OfBridge>();
  private timer: NodeJS.Timeout | undefined;
  private targeted: NodeJS.Immediate | undefined;
  private fullSoon = false;
  private stopped = false;
  maxIdleMs: number;
  flowLimit: number;
  /** Miss upcalls received from the datapath so far (revalidator/wait compares it with the datapath's misses). */
  handled = 0;
  /** When the last userspace upcall was logged, and how many came since without a line. */
  private readonly userspaceLog = { at: -Infinity, suppressed: 0 };
  private roundWaiters: Array<() => void> = [];
  /** Full rounds run so far. */
  private rounds = 0;
  /** For upcall/show: megaflows at the end of full rounds (running average, most), and the last round's duration. */
  readonly roundStats = { avgFlows: 0, maxFlows: 0, durationMs: 0 };
  /**
   * For upcall/show: event-loop time spent on miss upcalls by phase (ms, since start):
   * translation (key to flow, xlate, crediting rules), installing (ukey and
   * megaflow put), executing the packets, and the rest of the batch (MAC tags).
   */
  readonly phaseMs = { xlate: 0, install: 0, execute: 0, other: 0 };

  constructor(private readonly o: UdpifOptions) {
    this.maxIdleMs = o.maxIdleMs;
    this.flowLimit = o.flowLimit;
  }

  start(): void {
    this.o.dp.onUpcalls(
      (batch) => {
        if (!this.stopped && batch.length > 0) this.handleUpcalls(batch);
      },
      (err) => this.o.log.error({ err }, 'upcall handling failed'),
    );
    this.scheduleFull(this.o.intervalMs ?? 500);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.targeted) clearImmediate(this.targeted);
  }

  get flowCount(): number {
    return this.ukeys.size;
  }

  /** other_config:max-idle and flow-limit, as the database has them now. */
  setLimits(maxIdleMs: number, flowLimit: number): void {
    this.maxIdleMs = maxIdleMs;
    this.flowLimit = flowLimit;
  }

  /** Marks a bridge's megaflows for re-translation (ports or bridge settings changed). */
  bridgeChanged(bridge: OfBridge): void {
    this.dirtyBridges.add(bridge);
    this.scheduleTargeted();
  }

  /** Forgets a bridge's megaflows (the bridge is gone) and removes them from the datapath. */
  bridgeRemoved(bridge: OfBridge): void {
    const gone = [...this.ukeys.values()].filter((u) => u.bridge === bridge);
    for (const u of gone) this.forget(u);
    this.o.dp.del(gone.map((u) => u.id));
  }

  /** Re-translates what changed as soon as the event loop is free (rules, MACs, ports changed). */
  scheduleTargeted(): void {
    if (this.targeted || this.stopped) return;
    this.targeted = setImmediate(() => {
      this.targeted = undefined;
      this.revalidateChanged();
    });
  }

  /** Runs a full round as soon as possible and resolves when it is done (revalidator/wait). */
  async nextRound(): Promise<void> {
    const done = new Promise<void>((resolve) => this.roundWaiters.push(resolve));
    if (!this.fullSoon && !this.stopped) {
      this.fullSoon = true;
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.fullRound(), 0);
    }
    return done;
  }

  /** Removes every megaflow (revalidator/purge). */
  flush(): void {
    this.o.dp.del([...this.ukeys.keys()]);
    this.ukeys.clear();
    this.byTag.clear();
  }

  /** Translates a batch of upcalls, installs their megaflows and executes their packets. */
  handleUpcalls(batch: readonly DpUpcall[]): void {
    const dp = this.o.dp;
    const phase = this.phaseMs;
    const tBatch = performance.now();
    let tXlate = 0;
    const now = dp.now();
    const puts: DpFlowPut[] = [];
    const execs: DpExecute[] = [];
    for (const up of batch) {
      if (up.reason !== 'miss') {
        this.userspaceUpcall(up, now);
        continue;
      }
      this.handled++;
      this.o.coverage.inc('upcall_miss');
      const bridge = this.o.bridgeOf(up.inPort);
      const ofport = bridge?.ofPort(up.inPort);
      if (!bridge || ofport === undefined) {
        this.o.coverage.inc('upcall_no_bridge');
        continue;
      }
      const t0 = performance.now();
      const result = bridge.ofproto.xlate(dp.keyFlow(up.key, ofport, this.flow), { packet: up.packet });
      this.collectFrom(bridge);
      if (result.error) this.o.log.debug({ bridge: bridge.name, err: result.error }, 'translation failed; packet dropped');
      // The rules only: this translation has just learned the source MACs itself.
      bridge.ofproto.credit({ rules: result.rules, learned: result.learned }, 1, up.packet.length, now);
      tXlate += performance.now() - t0;
      const { key, mask } = result.megaflow;
      const id = dp.flowId(key, mask);
      if (this.ukeys.has(id)) {
        // Installed already (an earlier upcall of this batch, or one the datapath had queued).
      } else if (this.ukeys.size >= this.flowLimit) {
        this.o.coverage.inc('upcall_flow_limit_hit');
      } else {
        const u: Ukey = {
          id,
          bridge,
          key: up.key,
          inPort: up.inPort,
          actionsText: formatDpActions(result.actions),
          tags: [...result.tags],
          rules: result.rules,
          macs: result.macs,
          learned: result.learned,
          packets: 0,
          bytes: 0,
          createdAt: now,
          epoch: this.epoch,
          dumped: this.rounds,
        };
        this.ukeys.set(id, u);
        this.index(u);
        puts.push({ key, mask, id, actions: result.actions });
        this.o.coverage.inc('upcall_flow_put');
      }
      execs.push({ inPort: up.inPort, packet: up.packet, actions: result.actions });
    }
    const tPut = performance.now();
    if (puts.length > 0) {
      try {
        dp.put(puts);
      } catch (err) {
        this.o.coverage.inc('upcall_put_error');
        this.o.log.warn({ err: (err as Error).message }, 'megaflow install failed');
      }
    }
    const tExec = performance.now();
    if (execs.length > 0) {
      let failed: Array<{ error: Error }>;
      try {
        failed = dp.executeBatch(execs);
      } catch (err) {
        failed = [{ error: err as Error }];
      }
      for (const f of failed) {
        this.o.coverage.inc('upcall_execute_error');
        this.o.log.debug({ err: f.error.message }, 'execute failed');
      }
    }
    const tTags = performance.now();
    // Learning a MAC may change decisions already cached for other flows.
    if (this.collectTags()) this.scheduleTargeted();
    const tEnd = performance.now();
    phase.xlate += tXlate;
    // The loop's time beyond translation is the ukeys' bookkeeping: part of installing.
    phase.install += tExec - tBatch - tXlate;
    phase.execute += tTags - tExec;
    phase.other += tEnd - tTags;
  }

  /**
   * An upcall from a `userspace` action (a controller action, on the miss
   * path's execute or in an installed megaflow): handed to the bridge's
   * OpenFlow connections as a packet-in. One that no connection takes is
   * counted and logged, at most one line per USERSPACE_LOG_MS with the
   * number left unlogged meanwhile.
   */
  private userspaceUpcall(up: DpUpcall, now: number): void {
    this.o.coverage.inc('upcall_userspace');
    const c = up.controller;
    const bridge = this.o.bridgeOf(up.inPort);
    const ofport = bridge?.ofPort(up.inPort);
    if (c && bridge && ofport !== undefined && this.o.toController) {
      const ev = { inPort: ofport, reason: c.reason, tableId: c.tableId, cookie: c.ruleCookie, maxLen: c.maxLen, controllerId: c.controllerId, packet: up.packet };
      if (this.o.toController(bridge, ev)) {
        this.o.coverage.inc('upcall_packet_in');
        return;
      }
    }
    const rl = this.userspaceLog;
    if (now - rl.at < USERSPACE_LOG_MS) {
      rl.suppressed++;
      return;
    }
    this.o.log.warn(
      { inPort: up.inPort, reason: c?.reason, tableId: c?.tableId, suppressed: rl.suppressed },
      c ? 'userspace upcall for the controller dropped: no controller connection' : 'userspace upcall with an unknown cookie dropped',
    );
    rl.at = now;
    rl.suppressed = 0;
  }

  private index(u: Ukey): void {
    for (const t of u.tags) {
      if (t === PORTS_TAG) continue;
      const cur = this.byTag.get(t);
      if (cur === undefined) this.byTag.set(t, u);
      else if (cur instanceof Set) cur.add(u);
      else if (cur !== u) this.byTag.set(t, new Set([cur, u]));
    }
  }

  private unindex(u: Ukey): void {
    for (const t of u.tags) {
      const cur = this.byTag.get(t);
      if (cur === u) this.byTag.delete(t);
      else if (cur instanceof Set) {
        cur.delete(u);
        if (cur.size === 0) this.byTag.delete(t);
      }
    }
  }

  /** The ukeys carrying tag `t`. */
  private tagged(t: string): Iterable<Ukey> {
    const cur = this.byTag.get(t);
    return cur === undefined ? [] : cur instanceof Set ? cur : [cur];
  }

  private forget(u: Ukey): void {
    this.ukeys.delete(u.id);
    this.unindex(u);
  }

  /** Gathers the bridges' changed tags; true when anything changed. */
  private collectTags(): boolean {
    for (const b of this.o.bridges()) this.collectFrom(b);
    return this.dirtyTags.size > 0 || this.dirtyBridges.size > 0;
  }

  /** Gathers one bridge's changed tags, in a new epoch if there are any. */
  private collectFrom(b: OfBridge): void {
    const tags = b.ofproto.takeInvalidations();
    if (tags.size === 0) return;
    const epoch = ++this.epoch;
    for (const t of tags) {
      if (t === PORTS_TAG) this.dirtyBridges.add(b);
      else this.dirtyTags.set(t, epoch);
    }
  }

  /** Targeted revalidation: the ukeys whose tags or bridge changed. */
  private revalidateChanged(): void {
    if (this.stopped || !this.collectTags()) return;
    const targets = new Set<Ukey>();
    for (const [t, epoch] of this.dirtyTags) {
      // A MAC entry's change is already seen by ukeys translated after it; other tags
      // (rules, possibly added by this very translation's learn action) always count.
      const mac = t.startsWith('mac:');
      for (const u of this.tagged(t)) if (!mac || u.epoch < epoch) targets.add(u);
    }
    if (this.dirtyBridges.size > 0) for (const u of this.ukeys.values()) if (this.dirtyBridges.has(u.bridge)) targets.add(u);
    this.dirtyTags.clear();
    this.dirtyBridges.clear();
    const dels: string[] = [];
    const puts: DpFlowPut[] = [];
    for (const u of targets) this.retranslate(u, dels, puts);
    this.push(dels, puts);
  }

  /** Translates a ukey again; queues the fix (modify) or the removal of its megaflow. */
  private retranslate(u: Ukey, dels: string[], puts: DpFlowPut[]): void {
    this.o.coverage.inc('revalidate_retranslate');
    const ofport = u.bridge.ofPort(u.inPort);
    if (ofport === undefined) {
      dels.push(u.id);
      this.forget(u);
      return;
    }
    const r = u.bridge.ofproto.xlate(this.o.dp.keyFlow(u.key, ofport, this.flow), { sideEffects: false });
    const newId = this.o.dp.flowId(r.megaflow.key, r.megaflow.mask);
    if (newId !== u.id) {
      // The decision now depends on other bits: drop the flow, the next packet re-translates.
      this.o.coverage.inc('revalidate_delete');
      dels.push(u.id);
      this.forget(u);
      return;
    }
    const actionsText = formatDpActions(r.actions);
    if (actionsText !== u.actionsText) {
      this.o.coverage.inc('revalidate_modify');
      puts.push({ key: r.megaflow.key, mask: r.megaflow.mask, actions: r.actions, modify: true });
    }
    this.unindex(u);
    Object.assign(u, { actionsText, tags: [...r.tags], rules: r.rules, macs: r.macs, learned: r.learned, epoch: this.epoch });
    this.index(u);
  }

  private push(dels: string[], puts: DpFlowPut[]): void {
    if (dels.length > 0) this.o.dp.del(dels);
    if (puts.length === 0) return;
    try {
      this.o.dp.put(puts);
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, 'megaflow modify failed');
    }
  }

  private scheduleFull(delayMs: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.fullRound(), delayMs);
    this.timer.unref();
  }

  /** A full round (see the module comment). */
  private fullRound(): void {
    this.fullSoon = false;
    if (this.stopped) return;
    const t0 = performance.now();
    const dp = this.o.dp;
    const now = dp.now();
    for (const b of this.o.bridges()) {
      const expired = b.ofproto.run();
      if (expired.length) this.o.expired?.(b, expired);
    }
    this.revalidateChanged();
    const dels: string[] = [];
    const round = ++this.rounds;
    for (const f of dp.dumpStats()) {
      const u = this.ukeys.get(f.id);
      if (!u) {
        dels.push(f.id);
        continue;
      }
      u.dumped = round;
      const dPackets = f.packets - u.packets;
      if (dPackets > 0) {
        u.bridge.ofproto.credit(u, dPackets, f.bytes - u.bytes, f.usedAt);
        u.packets = f.packets;
        u.bytes = f.bytes;
      }
      if (now - Math.max(f.usedAt, u.createdAt) >= this.maxIdleMs) {
        this.o.coverage.inc('revalidate_idle_delete');
        dels.push(f.id);
        this.forget(u);
      }
    }
    // Ukeys whose flow vanished from the datapath (deleted elsewhere) are forgotten.
    // (Deleting the current entry while iterating a Map is safe.)
    for (const u of this.ukeys.values()) if (u.dumped !== round) this.forget(u);
    this.push(dels, []);
    // Expired rules and aged MACs change decisions too.
    this.revalidateChanged();
    this.o.coverage.inc('revalidate_round');
    const n = this.ukeys.size;
    const rs = this.roundStats;
    rs.avgFlows = Math.round((rs.avgFlows + n) / 2);
    rs.maxFlows = Math.max(rs.maxFlows, n);
    rs.durationMs = Math.round(performance.now() - t0);
    const waiters = this.roundWaiters;
    this.roundWaiters = [];
    for (const w of waiters) w();
    this.scheduleFull(Math.max(this.o.intervalMs ?? 500, 10 * (performance.now() - t0)));
  }
}
