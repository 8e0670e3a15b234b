/**
 * The slow path's side of the datapath cache (OVS: ofproto-dpif-upcall.c).
 *
 * Upcalls: misses arrive in batches; each is translated by its bridge's
 * ofproto (xlate), the resulting megaflow is installed and the packet
 * executed with the same actions. Every installed megaflow has a "ukey"
 * here: the flow it was translated from, its invalidation tags, the rules
 * it credits and the datapath counters already credited.
 *
 * Revalidation, in rounds (every `intervalMs`, and at once when rules, MAC
 * entries or ports change): the datapath's flows are dumped; each flow's new
 * packets and bytes go to its rules' counters; a flow idle for `maxIdleMs`
 * is deleted; a flow whose tags changed (or every flow, after a port or
 * bridge change) is translated again, and fixed (same mask, new actions)
 * or deleted (the mask changed, or the bridge is gone) — so a rule change
 * reaches established flows within one round.
 */
import type { Logger } from 'pino';
import { formatDpActions, type DpAction, type DpFlowKey, type Rule, type XlateResult } from '@nvs/ofproto';
import type { Coverage } from './coverage.ts';
import type { Dataplane, DpFlowPut, DpUpcall } from './dataplane.ts';
import { flowFromKey } from './keyflow.ts';
import type { OfBridge } from './ofbridge.ts';

/** Upcalls taken per batch (OVS reads 64 at a time). */
export const UPCALL_BATCH = 64;

interface Ukey {
  id: string;
  bridge: OfBridge;
  /** The full key of the packet that caused the upcall (re-translated on revalidation). */
  key: DpFlowKey;
  actionsText: string;
  tags: Set<string>;
  rules: Rule[];
  macs: XlateResult['macs'];
  learned: Rule[];
  packets: number;
  bytes: number;
  createdAt: number;
}

export interface UdpifOptions {
  dp: Dataplane;
  log: Logger;
  coverage: Coverage;
  /** Finds the bridge that owns a datapath port. */
  bridgeOf: (odpPort: number) => OfBridge | undefined;
  bridges: () => Iterable<OfBridge>;
  maxIdleMs: number;
  intervalMs?: number;
}

export class Udpif {
  private readonly ukeys = new Map<string, Ukey>();
  private readonly dirtyTags = new Set<string>();
  private readonly dirtyBridges = new Set<OfBridge>();
  private timer: NodeJS.Timeout | undefined;
  private soon: NodeJS.Immediate | undefined;
  private stopped = false;
  maxIdleMs: number;
  /** Completed revalidation rounds (tests wait for the next one). */
  rounds = 0;
  private roundWaiters: Array<() => void> = [];

  constructor(private readonly o: UdpifOptions) {
    this.maxIdleMs = o.maxIdleMs;
  }

  start(): void {
    this.o.dp.onUpcalls(
      (batch) => {
        if (!this.stopped && batch.length > 0) this.handleUpcalls(batch);
      },
      (err) => this.o.log.error({ err }, 'upcall handling failed'),
    );
    this.timer = setInterval(() => this.revalidate(), this.o.intervalMs ?? 500);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    if (this.soon) clearImmediate(this.soon);
  }

  get flowCount(): number {
    return this.ukeys.size;
  }

  /** Marks a bridge's megaflows for re-translation (ports or bridge settings changed) and revalidates soon. */
  bridgeChanged(bridge: OfBridge): void {
    this.dirtyBridges.add(bridge);
    this.scheduleRevalidation();
  }

  /** Forgets a bridge's megaflows (the bridge is gone) and removes them from the datapath. */
  bridgeRemoved(bridge: OfBridge): void {
    const ids = [...this.ukeys.values()].filter((u) => u.bridge === bridge).map((u) => u.id);
    for (const id of ids) this.ukeys.delete(id);
    this.o.dp.del(ids);
  }

  /** Revalidates as soon as the event loop is free (after a rule change). */
  scheduleRevalidation(): void {
    if (this.soon || this.stopped) return;
    this.soon = setImmediate(() => {
      this.soon = undefined;
      this.revalidate();
    });
  }

  /** Resolves after the next complete revalidation round. */
  nextRound(): Promise<void> {
    return new Promise((resolve) => this.roundWaiters.push(resolve));
  }

  /** Removes every megaflow (fdb/flush of everything, tests). */
  flush(): void {
    this.o.dp.del([...this.ukeys.keys()]);
    this.ukeys.clear();
  }

  /** Translates a batch of upcalls, installs their megaflows and executes their packets. */
  handleUpcalls(batch: readonly DpUpcall[]): void {
    const dp = this.o.dp;
    const now = dp.now();
    const puts: DpFlowPut[] = [];
    const execs: Array<{ inPort: number; packet: Uint8Array; actions: readonly DpAction[] }> = [];
    for (const up of batch) {
      this.o.coverage.inc('upcall_miss');
      const bridge = this.o.bridgeOf(up.inPort);
      const ofport = bridge?.ofPort(up.inPort);
      if (!bridge || ofport === undefined) {
        this.o.coverage.inc('upcall_no_bridge');
        continue;
      }
      const result = bridge.ofproto.xlate(flowFromKey(up.key, ofport), { packet: up.packet });
      if (result.error) this.o.log.debug({ bridge: bridge.name, err: result.error }, 'translation failed; packet dropped');
      bridge.ofproto.credit(result, 1, up.packet.length, now);
      const { key, mask } = result.megaflow;
      const id = dp.flowId(key, mask);
      if (!this.ukeys.has(id)) {
        this.ukeys.set(id, {
          id,
          bridge,
          key: up.key,
          actionsText: formatDpActions(result.actions),
          tags: result.tags,
          rules: result.rules,
          macs: result.macs,
          learned: result.learned,
          packets: 0,
          bytes: 0,
          createdAt: now,
        });
        puts.push({ key, mask, actions: result.actions });
        this.o.coverage.inc('upcall_flow_put');
      }
      execs.push({ inPort: up.inPort, packet: up.packet, actions: result.actions });
    }
    if (puts.length > 0) {
      try {
        dp.put(puts);
      } catch (err) {
        this.o.log.warn({ err: (err as Error).message }, 'megaflow install failed');
      }
    }
    for (const e of execs) {
      try {
        dp.execute(e.inPort, e.packet, e.actions);
      } catch (err) {
        this.o.coverage.inc('upcall_execute_error');
        this.o.log.debug({ err: (err as Error).message }, 'execute failed');
      }
    }
    // Learning a MAC may change decisions already cached for other flows.
    this.collectTags();
    if (this.dirtyTags.size > 0) this.scheduleRevalidation();
  }

  private collectTags(): void {
    for (const b of this.o.bridges()) {
      const tags = b.ofproto.takeInvalidations();
      // 'ports' is in every translation: a port change re-translates the bridge's flows.
      if (tags.has('ports')) this.dirtyBridges.add(b);
      for (const t of tags) if (t !== 'ports') this.dirtyTags.add(t);
    }
  }

  /** One revalidation round (see the module comment). */
  revalidate(): void {
    if (this.stopped) return;
    const dp = this.o.dp;
    const now = dp.now();
    for (const b of this.o.bridges()) b.ofproto.run();
    this.collectTags();
    const tags = new Set(this.dirtyTags);
    const bridges = new Set(this.dirtyBridges);
    this.dirtyTags.clear();
    this.dirtyBridges.clear();
    const dels: string[] = [];
    const puts: DpFlowPut[] = [];
    const seen = new Set<string>();
    for (const f of dp.dump()) {
      seen.add(f.id);
      const u = this.ukeys.get(f.id);
      if (!u) {
        dels.push(f.id);
        continue;
      }
      const dPackets = f.packets - u.packets;
      const dBytes = f.bytes - u.bytes;
      if (dPackets > 0) {
        u.packets = f.packets;
        u.bytes = f.bytes;
        u.bridge.ofproto.credit(u, dPackets, dBytes, f.usedAt);
      }
      const lastUsed = Math.max(f.usedAt, u.createdAt);
      if (now - lastUsed >= this.maxIdleMs) {
        this.o.coverage.inc('revalidate_idle_delete');
        dels.push(f.id);
        this.ukeys.delete(f.id);
        continue;
      }
      if (!bridges.has(u.bridge) && !intersects(u.tags, tags)) continue;
      this.o.coverage.inc('revalidate_retranslate');
      const ofport = u.bridge.ofPort(u.key.in_port);
      if (ofport === undefined) {
        dels.push(f.id);
        this.ukeys.delete(f.id);
        continue;
      }
      const r = u.bridge.ofproto.xlate(flowFromKey(u.key, ofport), { sideEffects: false });
      const newId = dp.flowId(r.megaflow.key, r.megaflow.mask);
      const actionsText = formatDpActions(r.actions);
      if (newId !== u.id) {
        // The decision now depends on other bits: drop the flow, the next packet re-translates.
        this.o.coverage.inc('revalidate_delete');
        dels.push(f.id);
        this.ukeys.delete(f.id);
      } else if (actionsText !== u.actionsText) {
        this.o.coverage.inc('revalidate_modify');
        puts.push({ key: r.megaflow.key, mask: r.megaflow.mask, actions: r.actions, modify: true });
        Object.assign(u, { actionsText, tags: r.tags, rules: r.rules, macs: r.macs, learned: r.learned });
      } else {
        Object.assign(u, { tags: r.tags, rules: r.rules, macs: r.macs, learned: r.learned });
      }
    }
    // Ukeys whose flow vanished from the datapath (deleted elsewhere) are forgotten.
    for (const id of [...this.ukeys.keys()]) if (!seen.has(id)) this.ukeys.delete(id);
    if (dels.length > 0) dp.del(dels);
    if (puts.length > 0) {
      try {
        dp.put(puts);
      } catch (err) {
        this.o.log.warn({ err: (err as Error).message }, 'megaflow modify failed');
      }
    }
    this.rounds++;
    this.o.coverage.inc('revalidate_round');
    const waiters = this.roundWaiters;
    this.roundWaiters = [];
    for (const w of waiters) w();
  }
}

function intersects(a: Set<string>, b: Set<string>): boolean {
  if (b.size === 0) return false;
  for (const t of a) if (b.has(t)) return true;
  return false;
}
