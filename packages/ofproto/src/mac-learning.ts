// The MAC learning table of the NORMAL action: which port a (VLAN, MAC) was
// last seen on. Entries age out after `agingTime` seconds without being seen
// again, and the table holds at most `maxEntries`, evicting the least recently
// seen entry when full. Every change (learned, moved, expired, evicted,
// flushed) records the invalidation tag `mac:<vlan>:<hex mac>`, so the owner can
// revalidate the megaflows whose translation looked that entry up (xlate tags
// a flow with the entry of the destination it looked up; a source is learned,
// not depended on, and learned again from the flow's credited stats). Time
// comes from the injected clock (ms).


export interface MacEntry {
  readonly vlan: number;
  readonly mac: number;
  port: number;
  /** Clock time (ms) the source address was last seen. */
  seenAt: number;
  /** Its invalidation tag, `macTag(vlan, mac)`, made once when learned (not per packet). */
  readonly tag: string;
  /** Added by hand (fdb/add): never ages, is never evicted, moved or flushed. */
  readonly isStatic: boolean;
}

export interface MacLearningOptions {
  /** Seconds an entry lives without being seen (OVS's default: 300). */
  agingTime?: number;
  /** Largest number of entries (OVS's default: 8192). */
  maxEntries?: number;
}

export const DEFAULT_MAC_AGING_TIME = 300;
export const DEFAULT_MAC_TABLE_SIZE = 8192;

/** The invalidation tag of one (VLAN, MAC): `mac:<vlan>:<mac in hex>` (made on every NORMAL upcall, so kept cheap). */
export function macTag(vlan: number, mac: number): string {
  return `mac:${vlan}:${mac.toString(16)}`;
}

/** An entry with its links: the seen-order list and other VLANs' entries for the same MAC. */
interface Node extends MacEntry {
  older: Node | undefined;
  newer: Node | undefined;
  sameMac: Node | undefined;
}

export class MacLearningTable {
  agingTime: number;
  maxEntries: number;
  // Entries by MAC address (a number: no string key per packet), chained
  // across VLANs, and linked in seen order: the oldest is the first to age
  // out or be evicted, and a sighting moves an entry to the newest end.
  private readonly byMac = new Map<number, Node>();
  /** Entries per port, for fair eviction. */
  private readonly usage = new PortUsage();
  /** Static entries, outside the seen order (they never age). */
  private readonly statics = new Set<Node>();
  private oldest: Node | undefined;
  private newest: Node | undefined;
  private count = 0;
  private changed = new Set<string>();
  /** Counters for appctl/metrics. */
  readonly stats = { learned: 0, moved: 0, expired: 0, evicted: 0 };

  constructor(opts: MacLearningOptions = {}) {
    this.agingTime = opts.agingTime ?? DEFAULT_MAC_AGING_TIME;
    this.maxEntries = opts.maxEntries ?? DEFAULT_MAC_TABLE_SIZE;
  }

  get size(): number {
    return this.count;
  }

  /** The port a MAC was learned on in a VLAN, if any (does not refresh it). */
  lookup(vlan: number, mac: number): MacEntry | undefined {
    return this.find(vlan, mac);
  }

  private find(vlan: number, mac: number): Node | undefined {
    let e = this.byMac.get(mac);
    while (e !== undefined && e.vlan !== vlan) e = e.sameMac;
    return e;
  }

  /**
   * Records that `mac` was seen on `port` in `vlan` at `now`. Returns true
   * when this changed the table (a new entry or a move), i.e. when megaflows
   * tagged with this entry must be revalidated.
   */
  learn(vlan: number, mac: number, port: number, now: number): boolean {
    const e = this.find(vlan, mac);
    if (e?.isStatic) return false;
    if (e) {
      // Older evidence (stats credited late) neither refreshes nor moves a newer sighting.
      if (e.seenAt > now || (e.port === port && e.seenAt === now)) return false;
      this.unlink(e);
      this.append(e);
      e.seenAt = now;
      if (e.port === port) return false;
      this.usage.detach(e);
      e.port = port;
      this.usage.attach(e);
      this.stats.moved++;
      this.changed.add(e.tag);
      return true;
    }
    if (this.maxEntries <= 0) return false;
    // Full: the port with the most entries gives up its oldest (OVS's fairness).
    while (this.count >= this.maxEntries) {
      const victim = this.usage.victim() ?? this.oldest;
      if (!victim) break;
      this.remove(victim);
      this.stats.evicted++;
    }
    const n: Node = { vlan, mac, port, seenAt: now, tag: macTag(vlan, mac), isStatic: false, older: undefined, newer: undefined, sameMac: this.byMac.get(mac) };
    this.byMac.set(mac, n);
    this.append(n);
    this.usage.attach(n);
    this.count++;
    this.stats.learned++;
    this.changed.add(n.tag);
    return true;
  }

  /** Removes entries not seen for `agingTime` seconds; returns how many. */
  expire(now: number): number {
    const limit = now - this.agingTime * 1000;
    let n = 0;
    // In seen order, so the first young entry ends the scan.
    while (this.oldest && this.oldest.seenAt <= limit) {
      this.remove(this.oldest);
      n++;
    }
    this.stats.expired += n;
    return n;
  }

  /**
   * Forgets the learned entries on `port` (port deleted or reconfigured), or
   * all learned entries (static ones stay, as in OVS), and returns them.
   */
  flush(port?: number): MacEntry[] {
    const gone: MacEntry[] = [];
    for (const e of [...this.nodes()]) {
      if (!e.isStatic && (port === undefined || e.port === port)) {
        this.remove(e);
        gone.push(e);
      }
    }
    return gone;
  }

  /** Forgets one learned (vlan, mac), if present (another bridge's port that had it is gone). */
  forget(vlan: number, mac: number): void {
    const e = this.find(vlan, mac);
    if (e && !e.isStatic) this.remove(e);
  }

  /**
   * Adds a static entry (fdb/add), replacing a learned or static one for the
   * same (vlan, mac); returns what it replaced, if anything.
   */
  addStatic(vlan: number, mac: number, port: number, now: number): { port: number; isStatic: boolean } | undefined {
    const old = this.find(vlan, mac);
    const replaced = old && { port: old.port, isStatic: old.isStatic };
    if (old) this.remove(old);
    const n: Node = { vlan, mac, port, seenAt: now, tag: macTag(vlan, mac), isStatic: true, older: undefined, newer: undefined, sameMac: this.byMac.get(mac) };
    this.byMac.set(mac, n);
    this.statics.add(n);
    this.usage.attach(n);
    this.count++;
    this.changed.add(n.tag);
    return replaced;
  }

  /** Removes a static entry (fdb/del); false when there is none for (vlan, mac). */
  deleteStatic(vlan: number, mac: number): boolean {
    const e = this.find(vlan, mac);
    if (!e?.isStatic) return false;
    this.remove(e);
    return true;
  }

  get staticCount(): number {
    return this.statics.size;
  }

  /** Applies a new size limit, evicting the least recently seen entries if needed. */
  setMaxEntries(n: number): void {
    this.maxEntries = n;
    while (this.count > n && this.oldest) {
      this.remove(this.oldest);
      this.stats.evicted++;
    }
  }

  /** Entries in least-recently-seen-first order. */
  *[Symbol.iterator](): IterableIterator<MacEntry> {
    for (const e of this.nodes()) yield { vlan: e.vlan, mac: e.mac, port: e.port, seenAt: e.seenAt, tag: e.tag, isStatic: e.isStatic };
  }

  /** Returns and clears the tags changed since the last call. */
  takeChangedTags(): Set<string> {
    const c = this.changed;
    this.changed = new Set();
    return c;
  }

  private *nodes(): IterableIterator<Node> {
    for (let e = this.oldest; e !== undefined; e = e.newer) yield e;
    yield* this.statics;
  }

  private append(e: Node): void {
    e.older = this.newest;
    e.newer = undefined;
    if (this.newest) this.newest.newer = e;
    else this.oldest = e;
    this.newest = e;
  }

  private unlink(e: Node): void {
    if (e.older) e.older.newer = e.newer;
    else this.oldest = e.newer;
    if (e.newer) e.newer.older = e.older;
    else this.newest = e.older;
  }

  private remove(e: Node): void {
    if (e.isStatic) this.statics.delete(e);
    else this.unlink(e);
    this.usage.detach(e);
    const head = this.byMac.get(e.mac);
    if (head === e) {
      if (e.sameMac) this.byMac.set(e.mac, e.sameMac);
      else this.byMac.delete(e.mac);
    } else {
      let p = head;
      while (p && p.sameMac !== e) p = p.sameMac;
      if (p) p.sameMac = e.sameMac;
    }
    this.count--;
    this.changed.add(e.tag);
  }
}

/**
 * Which port gives up an entry when the table is full: the port with the
 * most entries loses the one it got first, as in OVS's mac-learning. Ports
 * are kept in a binary max-heap by entry count that moves nodes exactly as
 * OVS's lib/heap.c does, so that among ports with equally many entries the
 * same one is chosen (OVS's tests spell out which).
 */
class PortUsage {
  /** 1-based heap of ports; heap[0] unused. */
  private readonly heap: PortSlot[] = [undefined as unknown as PortSlot];
  private readonly byPort = new Map<number, PortSlot>();

  /** The entry to evict: the first-assigned learned entry of the fullest port. */
  victim(): Node | undefined {
    const top = this.heap[1];
    if (!top) return undefined;
    for (const e of top.entries) if (!e.isStatic) return e;
    return undefined;
  }

  attach(e: Node): void {
    let slot = this.byPort.get(e.port);
    if (!slot) {
      slot = { port: e.port, entries: new Set(), idx: this.heap.length };
      this.byPort.set(e.port, slot);
      this.heap.push(slot);
      slot.entries.add(e);
      this.floatUp(slot.idx);
      return;
    }
    slot.entries.add(e);
    this.floatUpOrDown(slot.idx);
  }

  detach(e: Node): void {
    const slot = this.byPort.get(e.port);
    if (!slot || !slot.entries.delete(e)) return;
    if (slot.entries.size > 0) {
      this.floatUpOrDown(slot.idx);
      return;
    }
    this.byPort.delete(e.port);
    const i = slot.idx;
    const last = this.heap.pop() as PortSlot;
    if (last !== slot) {
      this.put(last, i);
      this.floatUpOrDown(i);
    }
  }

  private put(s: PortSlot, i: number): void {
    this.heap[i] = s;
    s.idx = i;
  }

  private prio(i: number): number {
    return this.heap[i].entries.size;
  }

  private swap(i: number, j: number): void {
    const a = this.heap[i];
    this.put(this.heap[j], i);
    this.put(a, j);
  }

  private floatUp(i: number): boolean {
    let moved = false;
    while (i > 1) {
      const parent = i >> 1;
      if (this.prio(parent) >= this.prio(i)) break;
      this.swap(parent, i);
      i = parent;
      moved = true;
    }
    return moved;
  }

  private floatDown(i: number): void {
    const n = this.heap.length - 1;
    while (i * 2 <= n) {
      const left = i * 2;
      const right = left + 1;
      let max = i;
      if (this.prio(left) > this.prio(max)) max = left;
      if (right <= n && this.prio(right) > this.prio(max)) max = right;
      if (max === i) break;
      this.swap(max, i);
      i = max;
    }
  }

  private floatUpOrDown(i: number): void {
    if (!this.floatUp(i)) this.floatDown(i);
  }
}

interface PortSlot {
  readonly port: number;
  /** The port's entries in the order they came to it. */
  readonly entries: Set<Node>;
  idx: number;
}
