// One OpenFlow bridge: its tables, ports, MAC learning table and controller
// queue, and the operations its owner (vswitchd) drives — flow-mods, xlate on
// upcalls, stats credit, timeouts, invalidation tags, dumps and trace. It
// knows the datapath only through the `OdpPortMap` port mapping and never reads
// OVSDB: the owner pushes configuration in (ports, fail mode, MAC aging).

import type { Logger } from 'pino';
import { type BridgePort, type PortConfig, toBridgePort } from './bridge-ports.ts';
import type { OdpPortMap } from './dpif.ts';
import { BadPortConfigError } from './errors.ts';
import { type Flow, OFPP } from './fields.ts';
import type { FlowMod } from './flow-mod.ts';
import { NO_FLAGS } from './flow-mod.ts';
import { newMatch } from './match.ts';
import { DEFAULT_MAC_AGING_TIME, DEFAULT_MAC_TABLE_SIZE, type MacEntry, MacLearningTable } from './mac-learning.ts';
import { type FlowModOutcome, FlowTables, type RemovalReason, type Rule } from './tables.ts';
import { type ControllerEvent, type MacRef, newXlateScratch, xlate, type XlateEnv, type XlateOptions, type XlateResult } from './xlate.ts';
import { diffRuleSets } from './flow-diff.ts';

/** Where time comes from (ms); tests pass a fake one. */
export interface Clock {
  now(): number;
}

export type FailMode = 'standalone' | 'secure';

export interface OfprotoOptions {
  /** Bridge name (`br0`), used in logs and traces. */
  readonly name: string;
  readonly odpPorts: OdpPortMap;
  /** A pino child logger for this bridge. */
  readonly logger: Logger;
  readonly clock: Clock;
  readonly ports?: readonly PortConfig[];
  /**
   * Without a controller, `standalone` installs `priority=0,actions=NORMAL`
   * in table 0 (as OVS does) and `secure` leaves the tables empty. Default standalone.
   */
  readonly failMode?: FailMode;
  /** Seconds a learned MAC lives unseen (default 300). */
  readonly macAgingTime?: number;
  /** Most MAC entries (default 8192); the least recently seen is evicted. */
  readonly macTableSize?: number;
  /** Most packets waiting for a controller connection (default 256); more are counted and dropped. */
  readonly controllerQueueSize?: number;
}

/** A packet queued for the controller. */
export interface ControllerPacket extends ControllerEvent {
  /** The packet, cut to `maxLen`, when the caller supplied it. */
  readonly packet: Uint8Array | null;
  readonly queuedAt: number;
}

/** What to credit: the rules and MACs an xlate result depended on. */
export interface CreditRefs {
  readonly rules: readonly Rule[];
  readonly macs?: readonly MacRef[];
  readonly learned?: readonly Rule[];
}

/** One line of `dump-tables`. */
export interface TableStats {
  readonly table: number;
  readonly active: number;
  readonly lookups: number;
  readonly matched: number;
}

export class Ofproto {
  readonly name: string;
  readonly odpPorts: OdpPortMap;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly tables = new FlowTables();
  private readonly mac: MacLearningTable;
  private portMap = new Map<number, BridgePort>();
  private failMode: FailMode;
  private readonly controllerQueue: ControllerPacket[] = [];
  private readonly controllerQueueSize: number;
  private readonly counters = { lookups: new Array<number>(255).fill(0), matched: new Array<number>(255).fill(0) };
  private portsChanged = false;
  /** See setVlanLimit; 0 (no limit) until the owner says otherwise. */
  private vlanLimit = 0;
  private readonly scratch = newXlateScratch();
  /** MACs learned on ports that were removed since the last takeRemovedPortMacs(). */
  private removedPortMacs: MacEntry[] = [];
  private patchPeers: ((ofport: number) => { ofproto: Ofproto; ofport: number } | undefined) | undefined;
  /** Counters for appctl `coverage/show` and metrics. */
  readonly stats = { xlates: 0, controllerQueued: 0, controllerDropped: 0, rulesExpired: 0 };

  constructor(opts: OfprotoOptions) {
    this.name = opts.name;
    this.odpPorts = opts.odpPorts;
    this.log = opts.logger;
    this.clock = opts.clock;
    this.mac = new MacLearningTable({
      agingTime: opts.macAgingTime ?? DEFAULT_MAC_AGING_TIME,
      maxEntries: opts.macTableSize ?? DEFAULT_MAC_TABLE_SIZE,
    });
    this.controllerQueueSize = opts.controllerQueueSize ?? 256;
    this.failMode = opts.failMode ?? 'standalone';
    this.setPorts(opts.ports ?? []);
    if (this.failMode === 'standalone') this.tables.apply([normalFlow()], this.clock.now());
    this.tables.takeChangedTags();
  }

  // ------------------------------------------------------------- configuration

  /** Replaces the port set. MACs learned on removed or reconfigured ports are forgotten. */
  setPorts(configs: readonly PortConfig[]): void {
    const next = new Map<number, BridgePort>();
    for (const c of configs) {
      const p = toBridgePort(c);
      if (next.has(p.ofport)) throw new BadPortConfigError(`ofport ${p.ofport} is used by both ${next.get(p.ofport)!.name} and ${p.name}`);
      next.set(p.ofport, p);
    }
    for (const [ofport, old] of this.portMap) {
      const now = next.get(ofport);
      if (!now) this.removedPortMacs.push(...this.mac.flush(ofport));
      else if (JSON.stringify(portKey(now)) !== JSON.stringify(portKey(old))) this.mac.flush(ofport);
    }
    // Flooding order: by port number, LOCAL last (it is 0xfffe).
    this.portMap = new Map([...next.entries()].sort((a, b) => a[0] - b[0]));
    this.portsChanged = true;
  }

  get ports(): BridgePort[] {
    return [...this.portMap.values()];
  }

  /** Switches fail mode; standalone (re)installs the priority-0 NORMAL rule if missing. */
  setFailMode(mode: FailMode): void {
    if (mode === this.failMode) return;
    this.failMode = mode;
    const fm = normalFlow();
    if (mode === 'standalone') {
      if (!this.tables.table(0).findExact(fm.match)) this.tables.apply([fm], this.clock.now());
    } else {
      this.tables.apply([{ ...fm, command: 'delete_strict' }], this.clock.now());
    }
  }

  /**
   * other_config:vlan-limit (1: a second tag is payload, as OVS's default;
   * 0: no limit). Returns whether it changed (every megaflow must then be
   * revalidated).
   */
  setVlanLimit(limit: number): boolean {
    if (limit === this.vlanLimit) return false;
    this.vlanLimit = limit;
    this.portsChanged = true;
    return true;
  }

  /** Changes MAC aging (seconds) and table size; a smaller size evicts at once. */
  setMacLearning(agingTime: number, maxEntries: number): void {
    this.mac.agingTime = agingTime;
    this.mac.setMaxEntries(maxEntries);
  }

  // ------------------------------------------------------------- flow-mods

  /** Applies flow-mods in order, all or nothing (throws `FlowModBatchError`, nothing applied). */
  applyFlowMods(mods: readonly FlowMod[]): FlowModOutcome {
    const out = this.tables.apply(mods, this.clock.now());
    this.log.debug({ mods: mods.length, added: out.added.length, modified: out.modified.length, removed: out.removed.length }, 'flow-mods applied');
    return out;
  }

  /**
   * Makes the tables hold exactly `rules` (add flow-mods), changing only what
   * differs, atomically (ovs-ofctl replace-flows). Unchanged rules keep their counters.
   */
  replaceFlows(rules: readonly FlowMod[]): FlowModOutcome {
    const current = this.tables.dump().map(ruleToFlowMod);
    const mods = diffRuleSets(current, rules).map((d) =>
      d.kind === 'removed' ? { ...d.old!, command: 'delete_strict' as const, outPort: null, cookieMask: 0n } : { ...d.new!, command: 'add' as const },
    );
    return this.applyFlowMods(mods);
  }

  // ------------------------------------------------------------- xlate

  /**
   * Translates a packet's flow (in_port is the OpenFlow port). With
   * `packet`, controller-bound copies are queued with the packet's bytes.
   */
  xlate(flow: Flow, opts: XlateOptions & { packet?: Uint8Array } = {}): XlateResult {
    const sideEffects = opts.sideEffects ?? true;
    const r = xlate(this.xlateEnv(sideEffects), flow, opts);
    if (sideEffects) {
      this.stats.xlates++;
      for (const c of r.controller) this.queueController(c, opts.packet ?? null);
    }
    return r;
  }

  /** What xlate reads from this bridge (also when a packet crosses into it through a patch port). */
  private xlateEnv(sideEffects: boolean): XlateEnv {
    const patch = this.patchPeers;
    return {
      tables: this.tables,
      ports: this.portMap,
      mac: this.mac,
      odpPorts: this.odpPorts,
      now: this.clock.now(),
      scratch: this.scratch,
      counters: sideEffects ? this.counters : undefined,
      vlanLimit: this.vlanLimit,
      patchPeer: patch
        ? (ofport) => {
            const peer = patch(ofport);
            return peer && { bridge: peer.ofproto.name, env: peer.ofproto.xlateEnv(sideEffects), ofport: peer.ofport };
          }
        : undefined,
    };
  }

  /**
   * Joins this bridge's patch ports to their peers: `resolve` gives the peer
   * bridge and port of a patch port's OpenFlow number (undefined for other
   * ports and for a patch port without a working peer). Set by the owner,
   * which knows every bridge.
   */
  setPatchPeers(resolve: ((ofport: number) => { ofproto: Ofproto; ofport: number } | undefined) | undefined): void {
    this.patchPeers = resolve;
  }

  /** Queues a packet for the controller (also for packets the datapath sends up through a `userspace` action). */
  queueController(c: ControllerEvent, packet: Uint8Array | null): void {
    if (this.controllerQueue.length >= this.controllerQueueSize) {
      this.stats.controllerDropped++;
      return;
    }
    const cut = packet ? packet.subarray(0, Math.min(packet.length, c.maxLen)).slice() : null;
    this.controllerQueue.push({ ...c, packet: cut, queuedAt: this.clock.now() });
    this.stats.controllerQueued++;
  }

  /** Takes the queued controller packets (for a controller connection that comes later). */
  takeControllerPackets(): ControllerPacket[] {
    return this.controllerQueue.splice(0);
  }

  /**
   * Credits traffic seen by a megaflow to the rules it was translated from,
   * refreshes the MACs and learned rules it relied on. `usedAt` in clock ms.
   */
  credit(refs: CreditRefs, packets: number, bytes: number, usedAt: number): void {
    this.tables.credit(refs.rules, packets, bytes, usedAt);
    if (refs.learned) this.tables.credit(refs.learned, 0, 0, usedAt);
    // As a packet through the slow path would: a source seen again is learned
    // again where the megaflow saw it (moved back, or evicted meanwhile).
    if (packets > 0) for (const m of refs.macs ?? []) this.mac.learn(m.vlan, m.mac, m.port, usedAt);
  }

  // ------------------------------------------------------------- time

  /**
   * Expires rules (idle/hard timeouts) and MAC entries at the clock's now.
   * Returns the expired rules; their tags join `takeInvalidations()`.
   */
  run(): { rule: Rule; reason: RemovalReason }[] {
    const now = this.clock.now();
    const gone = this.tables.expire(now);
    this.mac.expire(now);
    this.stats.rulesExpired += gone.length;
    if (gone.length) this.log.debug({ expired: gone.length }, 'rules expired');
    return gone;
  }

  /**
   * Tags changed since the last call: megaflows whose xlate result carries
   * any of them must be revalidated (`ports` means all of them).
   */
  takeInvalidations(): Set<string> {
    const tags = this.tables.takeChangedTags();
    for (const t of this.mac.takeChangedTags()) tags.add(t);
    if (this.portsChanged) {
      tags.add('ports');
      this.portsChanged = false;
    }
    return tags;
  }

  // ------------------------------------------------------------- dumps

  /** Rules in dump order, optionally filtered like `ovs-ofctl dump-flows`. */
  dumpFlows(filter?: Parameters<FlowTables['dump']>[0]): Rule[] {
    return this.tables.dump(filter);
  }

  /** Per-table counts: active rules, lookups and matches (tables with rules or traffic). */
  dumpTables(): TableStats[] {
    const sizes = this.tables.tableSizes();
    return sizes.map((active, table) => ({ table, active, lookups: this.counters.lookups[table], matched: this.counters.matched[table] }));
  }

  /** MAC table entries with their age in seconds, as `ovs-appctl fdb/show`. */
  fdb(): (MacEntry & { age: number })[] {
    const now = this.clock.now();
    return [...this.mac].map((e) => ({ ...e, age: Math.floor((now - e.seenAt) / 1000) }));
  }

  /** Forgets learned MACs (all, or those on one port), as `fdb/flush`; static entries stay. */
  fdbFlush(port?: number): void {
    this.mac.flush(port);
  }

  /** Adds a static MAC entry (fdb/add); returns the entry it replaced, if any. */
  fdbAdd(port: number, vlan: number, mac: number): { port: number; isStatic: boolean } | undefined {
    return this.mac.addStatic(vlan, mac, port, this.clock.now());
  }

  /** Removes a static MAC entry (fdb/del); false when there is none. */
  fdbDelete(vlan: number, mac: number): boolean {
    return this.mac.deleteStatic(vlan, mac);
  }

  /** The MAC table's counters, for fdb/stats-show. */
  fdbStats(): { entries: number; statics: number; learned: number; expired: number; evicted: number; moved: number } {
    return { entries: this.mac.size, statics: this.mac.staticCount, ...this.mac.stats };
  }

  /**
   * The MACs learned on ports removed since the last call. As in OVS, the
   * owner makes every bridge forget them (`forgetMacs`): a host behind a
   * deleted port may be reached anew elsewhere.
   */
  takeRemovedPortMacs(): MacEntry[] {
    return this.removedPortMacs.splice(0);
  }

  /** Forgets these learned (vlan, mac) entries. */
  forgetMacs(entries: readonly { vlan: number; mac: number }[]): void {
    for (const e of entries) this.mac.forget(e.vlan, e.mac);
  }

  /** Clock time (ms), for callers formatting durations. */
  now(): number {
    return this.clock.now();
  }
}

/** The rule a standalone bridge without controller starts with. */
function normalFlow(): FlowMod {
  return {
    command: 'add', table: 0, match: newMatch(0), cookie: 0n, cookieMask: 0n, idleTimeout: 0, hardTimeout: 0,
    importance: 0, flags: NO_FLAGS, outPort: null, actions: [{ type: 'output', port: OFPP.NORMAL }],
  };
}

/** An installed rule as the add flow-mod that would recreate it. */
export function ruleToFlowMod(r: Rule): FlowMod {
  return {
    command: 'add', table: r.table, match: r.match, cookie: r.cookie, cookieMask: 0n, idleTimeout: r.idleTimeout,
    hardTimeout: r.hardTimeout, importance: r.importance, flags: r.flags, outPort: null, actions: r.actions,
  };
}

function portKey(p: BridgePort): unknown {
  return [p.mode, p.tag, p.trunks ? [...p.trunks].sort() : null];
}
