/**
 * The cluster agent of one host: it publishes what this host owns (its
 * heartbeat, the networks its ports are on, the MACs behind those ports),
 * listens to those networks only, and keeps the bridge's cluster rules
 * (flows.ts) equal to what it knows. It runs inside nvs-vswitchd, which
 * hands it the bridge's ports after every reconfiguration and applies the
 * rule changes it asks for (FlowSink).
 *
 * Failure, as promised to users:
 * - Redis unreachable: the rules stay as they are, so established traffic
 *   goes on; local ports added meanwhile switch locally at once, and their
 *   MACs, unknown to other hosts, reach them by flooding.
 * - Back: this host heartbeats, rejoins its networks, republishes its MACs
 *   with the versions it kept (a newer claim elsewhere still wins), re-reads
 *   each network it listens to and installs only the rules that differ.
 * - A host that stops: after `ttlMs` without a heartbeat the first live host
 *   to look (every host looks once per heartbeat) withdraws its locations and
 *   takes it off its networks; every host on those networks hears it and
 *   drops its rules for it. Bound: ttlMs + heartbeatMs.
 */
import { formatRedisAddress, type ClusterSettings } from './config.ts';
import { diffFlows, netFlows, tunnelFlows, type FlowSet, type NetState } from './flows.ts';
import { RedisStore, type HostEntry, type Location, type NetEvent, type StoreEvents } from './store.ts';

/** The subset of a pino logger the agent uses. */
export interface AgentLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** A port of the cluster bridge that is on a network. */
export interface LocalPort {
  name: string;
  ofport: number;
  vni: number;
  /** MACs behind the port (attached-mac, learned ones). */
  macs: string[];
}

/** What the bridge holds now, from vswitchd. */
export interface LocalState {
  ports: LocalPort[];
  /** The flow-based tunnel port (remote_ip=flow, key=flow) of the configured encapsulation. */
  tunnel?: { name: string; ofport: number };
  /** Why a port or the bridge cannot take part (bad nvs-vni, no tunnel port, …), for cluster/show. */
  problems: string[];
}

/**
 * Applies rule changes to the cluster bridge (vswitchd's flow table), all or
 * nothing; throws when it cannot. `fresh` asks to remove every rule with the
 * cluster cookie first: the agent's first change, when rules of an earlier
 * run (saved and restored with the bridge) may still be there.
 */
export interface FlowSink {
  apply(bridge: string, add: string[], del: string[], fresh: boolean): void;
}

/** The parts of RedisStore the agent uses (the scale bench drives the same store). */
export type Store = Pick<
  RedisStore,
  'connect' | 'close' | 'connected' | 'heartbeat' | 'join' | 'leave' | 'claim' | 'withdraw' | 'subscribe' | 'unsubscribe' | 'snapshot' | 'reap' | 'hosts'
>;

export interface AgentOptions {
  settings: ClusterSettings;
  log: AgentLog;
  sink: FlowSink;
  /** Heartbeat (and reaping) period; default 1000 ms. */
  heartbeatMs?: number;
  /** A host silent this long is reaped; default 5000 ms. */
  ttlMs?: number;
  now?: () => number;
  /** For tests: a store other than Redis. */
  openStore?: (on: StoreEvents) => Store;
}

interface RemoteLoc {
  host: string;
  ip: string;
  ver: string;
  at: number;
  /** Missing from the last re-read (Redis lost it, or its host died meanwhile): kept one TTL for its owner to republish. */
  staleSince?: number;
}

interface RemoteHost {
  ip: string;
  at: number;
  staleSince?: number;
}

interface NetView {
  hosts: Map<string, RemoteHost>;
  locs: Map<string, RemoteLoc>;
  /** Events heard while the snapshot is read; replayed on it. */
  pending?: NetEvent[];
  /** When this host joined and read the network last. */
  syncedAt?: number;
}

interface Claim {
  net: number;
  mac: string;
  port: string;
  /** The version Redis gave the first claim; kept for republishing. */
  ver?: string;
  published: boolean;
  /** A newer claim elsewhere holds this MAC now. */
  lostTo?: string;
  at: number;
}

const claimKey = (net: number, mac: string) => `${net} ${mac}`;

export class ClusterAgent {
  private readonly store: Store;
  private readonly now: () => number;
  private readonly heartbeatMs: number;
  private readonly ttlMs: number;
  private local: LocalState = { ports: [], problems: [] };
  private readonly views = new Map<number, NetView>();
  /** Networks joined and subscribed in Redis, as far as this host knows. */
  private readonly joined = new Set<number>();
  private readonly claims = new Map<string, Claim>();
  /** Claims to withdraw from Redis (the port went away). */
  private readonly withdrawals = new Map<string, { net: number; mac: string }>();
  /** Installed rules per network, and the tunnel's own: a change of one network recomputes only its rules. */
  private readonly installed = new Map<number, FlowSet>();
  private installedTunnel: FlowSet = new Map();
  /** Networks whose rules may be out of date; `allDirty` after a change of the ports. */
  private readonly dirty = new Set<number>();
  private allDirty = true;
  private fresh = true;
  private timer: NodeJS.Timeout | undefined;
  private syncing: Promise<void> | undefined;
  private again = false;
  private flowsQueued = false;
  private registered = false;
  private stopped = false;
  private connectedSince: number | undefined;
  private lastError: string | undefined;
  private lastHeartbeat: number | undefined;
  readonly counters = { events: 0, flowChanges: 0, reconciles: 0, reaped: 0, lostClaims: 0 };

  constructor(private readonly o: AgentOptions) {
    this.now = o.now ?? Date.now;
    this.heartbeatMs = o.heartbeatMs ?? 1000;
    this.ttlMs = o.ttlMs ?? 5000;
    const on: StoreEvents = {
      event: (ev) => this.onEvent(ev),
      ready: () => this.onReady(),
      down: (err) => this.onDown(err),
    };
    this.store = o.openStore ? o.openStore(on) : new RedisStore({ address: o.settings.redis, hostId: o.settings.hostId, on });
  }

  /** Whether Redis answers now. */
  get connected(): boolean {
    return this.connectedSince !== undefined;
  }

  get settings(): ClusterSettings {
    return this.o.settings;
  }

  start(): void {
    this.store.connect();
    this.timer = setInterval(() => void this.beat(), this.heartbeatMs);
    this.timer.unref();
  }

  /** Stops: leaves no rules behind and tells Redis nothing (a restart republishes; a host gone for good is reaped). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    try {
      this.clearFlows();
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, 'cluster rules could not be removed');
    }
    await this.syncing?.catch(() => undefined);
    await this.store.close();
  }

  /** The bridge's ports changed (or not): publish the difference and recompute the rules. */
  setLocal(state: LocalState): void {
    this.local = state;
    const wanted = new Map<string, Claim>();
    const now = this.now();
    for (const p of state.ports) {
      for (const mac of p.macs) {
        const k = claimKey(p.vni, mac);
        const old = this.claims.get(k);
        wanted.set(k, old && old.port === p.name ? old : { net: p.vni, mac, port: p.name, ver: old?.ver, published: false, at: old?.at ?? now });
      }
    }
    for (const [k, c] of this.claims) if (!wanted.has(k)) this.withdrawals.set(k, { net: c.net, mac: c.mac });
    for (const k of wanted.keys()) this.withdrawals.delete(k);
    this.claims.clear();
    for (const [k, c] of wanted) this.claims.set(k, c);
    for (const net of this.wantedNets()) if (!this.views.has(net)) this.views.set(net, { hosts: new Map(), locs: new Map() });
    this.allDirty = true;
    this.queueFlows();
    this.sync();
  }

  // ------------------------------------------------------------ Redis side

  private wantedNets(): Set<number> {
    return new Set(this.local.ports.map((p) => p.vni));
  }

  /** Runs `syncOnce` until nothing is left to do; one at a time. */
  private sync(): void {
    if (this.stopped) return;
    if (this.syncing) {
      this.again = true;
      return;
    }
    this.syncing = (async () => {
      do {
        this.again = false;
        if (!this.store.connected) break;
        try {
          await this.syncOnce();
        } catch (err) {
          this.lastError = (err as Error).message;
          this.o.log.warn({ err: this.lastError }, 'cluster state not written to Redis; retried when it answers');
          break;
        }
      } while (this.again && !this.stopped);
    })().finally(() => {
      this.syncing = undefined;
    });
  }

  /** Brings Redis in line with this host: networks joined and read, MACs claimed and withdrawn. */
  private async syncOnce(): Promise<void> {
    const ip = this.o.settings.tunnelIp;
    if (!this.registered) {
      await this.store.heartbeat(ip, this.o.settings.encap);
      this.registered = true;
      this.lastHeartbeat = this.now();
    }
    const nets = this.wantedNets();
    for (const net of this.joined) {
      if (nets.has(net)) continue;
      await this.store.leave(net);
      await this.store.unsubscribe(net);
      this.joined.delete(net);
      this.views.delete(net);
      for (const [k, w] of this.withdrawals) if (w.net === net) this.withdrawals.delete(k);
    }
    for (const net of nets) {
      if (this.joined.has(net)) continue;
      const view: NetView = this.views.get(net) ?? { hosts: new Map(), locs: new Map() };
      this.views.set(net, view);
      view.pending = [];
      await this.store.subscribe(net);
      await this.store.join(net, ip);
      const snap = await this.store.snapshot(net);
      this.applySnapshot(net, view, snap.hosts, snap.locs);
      this.joined.add(net);
    }
    for (const [k, w] of this.withdrawals) {
      await this.store.withdraw(w.net, w.mac);
      this.withdrawals.delete(k);
    }
    for (const c of this.claims.values()) {
      if (c.published) continue;
      const r = await this.store.claim(c.net, c.mac, ip, c.ver);
      c.ver = r.ver;
      c.published = true;
      c.lostTo = r.won ? undefined : r.owner;
      if (!r.won) this.counters.lostClaims++;
    }
  }

  /** Replaces what this host knew of `net` by Redis's view, then replays the events heard meanwhile. */
  private applySnapshot(net: number, view: NetView, hosts: Map<string, string>, locs: Location[]): void {
    const now = this.now();
    const self = this.o.settings.hostId;
    const oldHosts = view.hosts;
    const oldLocs = view.locs;
    view.hosts = new Map();
    for (const [h, ip] of hosts) if (h !== self) view.hosts.set(h, { ip, at: oldHosts.get(h)?.ip === ip ? oldHosts.get(h)!.at : now });
    view.locs = new Map();
    for (const l of locs) {
      if (l.host === self) continue;
      const old = oldLocs.get(l.mac);
      view.locs.set(l.mac, { host: l.host, ip: l.ip, ver: l.ver, at: old && old.ver === l.ver && old.host === l.host ? old.at : now });
    }
    // A re-read after an outage may come before the other hosts have republished (a Redis that
    // restarted empty): what is missing stays, marked, until its owner says it again or one TTL passes.
    if (view.syncedAt !== undefined) {
      for (const [h, e] of oldHosts) if (!view.hosts.has(h)) view.hosts.set(h, { ...e, staleSince: e.staleSince ?? now });
      for (const [mac, l] of oldLocs) if (!view.locs.has(mac)) view.locs.set(mac, { ...l, staleSince: l.staleSince ?? now });
    }
    const pending = view.pending ?? [];
    view.pending = undefined;
    view.syncedAt = now;
    for (const ev of pending) this.applyEvent(view, ev);
    this.queueFlows(net);
  }

  private onEvent(ev: NetEvent): void {
    this.counters.events++;
    const view = this.views.get(ev.net);
    if (!view) return;
    if (view.pending) {
      view.pending.push(ev);
      return;
    }
    if (this.applyEvent(view, ev)) this.queueFlows(ev.net);
  }

  /** Applies one change to a network's view; true when the view changed. */
  private applyEvent(view: NetView, ev: NetEvent): boolean {
    const self = this.o.settings.hostId;
    const now = this.now();
    switch (ev.t) {
      case 'loc': {
        if (ev.host === self) return false;
        // A newer claim of one of this host's MACs: the VM moved away from here.
        const mine = this.claims.get(claimKey(ev.net, ev.mac));
        if (mine?.ver !== undefined && BigInt(ev.ver) > BigInt(mine.ver)) mine.lostTo = ev.host;
        const cur = view.locs.get(ev.mac);
        if (cur && BigInt(cur.ver) > BigInt(ev.ver)) return false;
        if (cur && cur.ver === ev.ver && cur.host === ev.host && cur.ip === ev.ip) {
          cur.staleSince = undefined;
          return false;
        }
        view.locs.set(ev.mac, { host: ev.host, ip: ev.ip, ver: ev.ver, at: now });
        return true;
      }
      case 'unloc': {
        const cur = view.locs.get(ev.mac);
        if (!cur || cur.host !== ev.host || cur.ver !== ev.ver) return false;
        view.locs.delete(ev.mac);
        return true;
      }
      case 'join': {
        if (ev.host === self) return false;
        const cur = view.hosts.get(ev.host);
        if (cur?.ip === ev.ip) {
          cur.staleSince = undefined;
          return false;
        }
        view.hosts.set(ev.host, { ip: ev.ip, at: now });
        return true;
      }
      case 'leave': {
        if (ev.host === self) return false;
        let changed = view.hosts.delete(ev.host);
        for (const [mac, l] of view.locs) if (l.host === ev.host) changed = view.locs.delete(mac) || changed;
        return changed;
      }
    }
  }

  private onReady(): void {
    this.connectedSince = this.now();
    this.lastError = undefined;
    this.counters.reconciles++;
    this.o.log.info({ redis: formatRedisAddress(this.o.settings.redis) }, 'connected to Redis: reconciling');
    this.forgetPublished();
    this.sync();
  }

  private onDown(err: string): void {
    this.connectedSince = undefined;
    this.lastError = err;
    this.o.log.warn({ err }, 'Redis unreachable: forwarding on the last known state');
  }

  /** After an outage or a reaping: rejoin, reread and republish everything (Redis keeps what did not change). */
  private forgetPublished(): void {
    this.registered = false;
    this.joined.clear();
    for (const c of this.claims.values()) c.published = false;
  }

  private async beat(): Promise<void> {
    if (!this.store.connected || this.stopped) return;
    try {
      const absent = await this.store.heartbeat(this.o.settings.tunnelIp, this.o.settings.encap);
      this.lastHeartbeat = this.now();
      if (absent && this.registered) {
        // Reaped while away (a pause longer than the TTL): every other host dropped us.
        this.o.log.warn({}, 'this host had been reaped from the registry: republishing');
        this.forgetPublished();
        this.sync();
      }
      this.dropStale();
      const dead = await this.store.reap(this.ttlMs);
      if (dead.length > 0) {
        this.counters.reaped += dead.length;
        this.o.log.info({ hosts: dead }, 'hosts without a heartbeat reaped: their locations are withdrawn');
      }
    } catch (err) {
      this.lastError = (err as Error).message;
    }
  }

  /** Forgets what was missing from a re-read and was not said again within one TTL. */
  private dropStale(): void {
    const now = this.now();
    const old = (e: { staleSince?: number }) => e.staleSince !== undefined && now - e.staleSince > this.ttlMs;
    for (const [net, view] of this.views) {
      let changed = false;
      for (const [h, e] of view.hosts) if (old(e)) changed = view.hosts.delete(h) || changed;
      for (const [mac, l] of view.locs) if (old(l)) changed = view.locs.delete(mac) || changed;
      if (changed) this.queueFlows(net);
    }
  }

  // ------------------------------------------------------------ rules

  /** Recomputes the rules of `net` (all networks when omitted) on the next turn, with every other change of this turn. */
  private queueFlows(net?: number): void {
    if (net === undefined) this.allDirty = true;
    else this.dirty.add(net);
    if (this.flowsQueued || this.stopped) return;
    this.flowsQueued = true;
    setImmediate(() => {
      this.flowsQueued = false;
      if (this.stopped) return;
      try {
        this.updateFlows();
      } catch (err) {
        this.allDirty = true;
        this.o.log.error({ err: (err as Error).message }, 'cluster rules not installed');
      }
    });
  }

  private netState(vni: number): NetState {
    const view = this.views.get(vni);
    const hosts = new Map([...(view?.hosts ?? [])].map(([h, v]) => [h, v.ip]));
    const remote = new Map([...(view?.locs ?? [])].map(([mac, l]) => [mac, l.ip]));
    const ports = this.local.ports.filter((p) => p.vni === vni).map((p) => ({ ofport: p.ofport, macs: p.macs }));
    return { ports, hosts, remote };
  }

  /** Installs the difference between the rules of the dirty networks and what they should be. */
  private updateFlows(): void {
    const tun = this.local.tunnel?.ofport;
    const local = this.wantedNets();
    const nets = this.allDirty ? new Set([...this.installed.keys(), ...local]) : new Set(this.dirty);
    const add: string[] = [];
    const del: string[] = [];
    const next = new Map<number, FlowSet>();
    for (const n of nets) {
      const wanted = local.has(n) ? netFlows(n, this.netState(n), tun) : new Map<string, string>();
      const d = diffFlows(this.installed.get(n) ?? new Map(), wanted);
      add.push(...d.add);
      del.push(...d.del);
      next.set(n, wanted);
    }
    const tunnel = tunnelFlows(tun);
    const d = diffFlows(this.installedTunnel, tunnel);
    add.push(...d.add);
    del.push(...d.del);
    this.dirty.clear();
    this.allDirty = false;
    if (add.length > 0 || del.length > 0 || this.fresh) {
      this.o.sink.apply(this.o.settings.bridge, add, del, this.fresh);
      this.fresh = false;
      this.counters.flowChanges += add.length + del.length;
    }
    for (const [n, w] of next) {
      if (w.size > 0) this.installed.set(n, w);
      else this.installed.delete(n);
    }
    this.installedTunnel = tunnel;
  }

  /** Removes every rule this agent installed. */
  private clearFlows(): void {
    const del = [...this.installed.values(), this.installedTunnel].flatMap((f) => [...f.keys()]);
    if (del.length > 0) this.o.sink.apply(this.o.settings.bridge, [], del, false);
    this.installed.clear();
    this.installedTunnel = new Map();
  }

  /** The rules installed now (for tests and cluster/show). */
  get flows(): ReadonlyMap<string, string> {
    return new Map([...this.installed.values(), this.installedTunnel].flatMap((f) => [...f]));
  }

  // ------------------------------------------------------------ views

  /** `cluster/show`: this host, Redis, the registry (when reachable), each network's hosts and locations with their ages. */
  async show(): Promise<string> {
    const s = this.o.settings;
    const now = this.now();
    const age = (t: number | undefined) => (t === undefined ? 'never' : `${((now - t) / 1000).toFixed(1)}s ago`);
    const lines = [`host ${s.hostId}: tunnel ip ${s.tunnelIp}, ${s.encap}, bridge ${s.bridge}`];
    lines.push(`redis ${formatRedisAddress(s.redis)}: ${this.connectedSince !== undefined ? `connected for ${((now - this.connectedSince) / 1000).toFixed(1)}s` : `unreachable${this.lastError ? ` (${this.lastError})` : ''}`}`);
    lines.push(`heartbeat: ${age(this.lastHeartbeat)}, every ${this.heartbeatMs} ms, reaped after ${this.ttlMs} ms`);
    lines.push(`tunnel port: ${this.local.tunnel ? `${this.local.tunnel.name} (ofport ${this.local.tunnel.ofport})` : 'none'}`);
    for (const p of this.local.problems) lines.push(`problem: ${p}`);
    const c = this.counters;
    lines.push(`events heard ${c.events}, rules changed ${c.flowChanges}, reconciliations ${c.reconciles}, hosts reaped ${c.reaped}, claims lost to newer ones ${c.lostClaims}`);
    let registry: HostEntry[] | undefined;
    if (this.store.connected) registry = await this.store.hosts().catch(() => undefined);
    if (registry) {
      lines.push(`hosts (${registry.length}):`);
      for (const h of registry.sort((a, b) => a.host.localeCompare(b.host))) {
        lines.push(`  ${h.host} ${h.ip} ${h.encap} heartbeat ${(h.ageMs / 1000).toFixed(1)}s ago${h.host === s.hostId ? ' (this host)' : ''}`);
      }
    } else {
      lines.push('hosts: registry unavailable (Redis unreachable)');
    }
    for (const net of [...this.views.keys()].sort((a, b) => a - b)) {
      const v = this.views.get(net)!;
      lines.push(`network ${net}: ${this.joined.has(net) ? `read ${age(v.syncedAt)}` : 'not joined yet'}`);
      for (const p of this.local.ports.filter((q) => q.vni === net)) lines.push(`  port ${p.name} (ofport ${p.ofport})`);
      const stale = (e: { staleSince?: number }) => (e.staleSince !== undefined ? ` (not re-read from Redis for ${age(e.staleSince).replace(' ago', '')})` : '');
      for (const [h, e] of [...v.hosts].sort()) lines.push(`  host ${h} ${e.ip} since ${age(e.at)}${stale(e)}`);
      const locs: string[] = [];
      for (const c of this.claims.values()) {
        if (c.net !== net) continue;
        const state = c.lostTo ? `moved to ${c.lostTo}` : c.published ? 'published' : 'not published';
        locs.push(`  ${c.mac} local ${c.port} ${state}${c.ver ? ` version ${c.ver}` : ''} since ${age(c.at)}`);
      }
      for (const [mac, l] of [...v.locs].sort()) locs.push(`  ${mac} ${l.host} ${l.ip} version ${l.ver} since ${age(l.at)}${stale(l)}`);
      lines.push(...locs.sort());
    }
    return `${lines.join('\n')}\n`;
  }
}
