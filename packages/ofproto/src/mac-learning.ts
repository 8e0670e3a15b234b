// The MAC learning table of the NORMAL action: which port a (VLAN, MAC) was
// last seen on. Entries age out after `agingTime` seconds without being seen
// again, and the table holds at most `maxEntries`, evicting the least recently
// seen entry when full. Every change (learned, moved, expired, evicted,
// flushed) records the invalidation tag `mac:<vlan>:<hex mac>`, so the owner can
// revalidate the megaflows whose translation looked that entry up (xlate puts
// the same tag in its result). Time comes from the injected clock (ms).


export interface MacEntry {
  readonly vlan: number;
  readonly mac: number;
  port: number;
  /** Clock time (ms) the source address was last seen. */
  seenAt: number;
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

export class MacLearningTable {
  agingTime: number;
  maxEntries: number;
  // A Map keeps insertion order: re-inserting on every sighting makes the
  // first entry the least recently seen one, for both aging and eviction.
  private readonly entries = new Map<string, MacEntry>();
  private changed = new Set<string>();
  /** Counters for appctl/metrics. */
  readonly stats = { learned: 0, moved: 0, expired: 0, evicted: 0 };

  constructor(opts: MacLearningOptions = {}) {
    this.agingTime = opts.agingTime ?? DEFAULT_MAC_AGING_TIME;
    this.maxEntries = opts.maxEntries ?? DEFAULT_MAC_TABLE_SIZE;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The port a MAC was learned on in a VLAN, if any (does not refresh it). */
  lookup(vlan: number, mac: number): MacEntry | undefined {
    return this.entries.get(key(vlan, mac));
  }

  /**
   * Records that `mac` was seen on `port` in `vlan` at `now`. Returns true
   * when this changed the table (a new entry or a move), i.e. when megaflows
   * tagged with this entry must be revalidated.
   */
  learn(vlan: number, mac: number, port: number, now: number): boolean {
    const k = key(vlan, mac);
    const e = this.entries.get(k);
    if (e) {
      // Older evidence (stats credited late) neither refreshes nor moves a newer sighting.
      if (e.seenAt > now || (e.port === port && e.seenAt === now)) return false;
      this.entries.delete(k);
      this.entries.set(k, e);
      e.seenAt = now;
      if (e.port === port) return false;
      e.port = port;
      this.stats.moved++;
      this.changed.add(macTag(vlan, mac));
      return true;
    }
    while (this.entries.size >= this.maxEntries && this.entries.size > 0) {
      const oldest = this.entries.values().next().value as MacEntry;
      this.remove(oldest);
      this.stats.evicted++;
    }
    if (this.maxEntries <= 0) return false;
    this.entries.set(k, { vlan, mac, port, seenAt: now });
    this.stats.learned++;
    this.changed.add(macTag(vlan, mac));
    return true;
  }

  /** Removes entries not seen for `agingTime` seconds; returns how many. */
  expire(now: number): number {
    const limit = now - this.agingTime * 1000;
    let n = 0;
    for (const e of this.entries.values()) {
      // In seen order, so the first young entry ends the scan.
      if (e.seenAt > limit) break;
      this.remove(e);
      n++;
    }
    this.stats.expired += n;
    return n;
  }

  /** Forgets every entry on `port` (port deleted or reconfigured), or all entries. */
  flush(port?: number): void {
    for (const e of [...this.entries.values()]) {
      if (port === undefined || e.port === port) this.remove(e);
    }
  }

  /** Applies a new size limit, evicting the least recently seen entries if needed. */
  setMaxEntries(n: number): void {
    this.maxEntries = n;
    while (this.entries.size > n) {
      this.remove(this.entries.values().next().value as MacEntry);
      this.stats.evicted++;
    }
  }

  /** Entries in least-recently-seen-first order. */
  *[Symbol.iterator](): IterableIterator<MacEntry> {
    yield* this.entries.values();
  }

  /** Returns and clears the tags changed since the last call. */
  takeChangedTags(): Set<string> {
    const c = this.changed;
    this.changed = new Set();
    return c;
  }

  private remove(e: MacEntry): void {
    this.entries.delete(key(e.vlan, e.mac));
    this.changed.add(macTag(e.vlan, e.mac));
  }
}

function key(vlan: number, mac: number): string {
  return `${vlan}/${mac}`;
}
