/**
 * Event counters for `coverage/show` (OVS's lib/coverage.c idea): each
 * component counts what happened to it (upcalls, flow puts, revalidations,
 * reconciliations…) in one Coverage instance passed in, and appctl prints
 * the totals together with the rate over the last few seconds.
 */
export class Coverage {
  private readonly counts = new Map<string, number>();
  private readonly window: Array<{ at: number; counts: Map<string, number> }> = [];

  constructor(private readonly now: () => number = Date.now) {}

  inc(event: string, n = 1): void {
    this.counts.set(event, (this.counts.get(event) ?? 0) + n);
  }

  /** Takes a sample for the rate column; the daemon calls it every few seconds. */
  sample(): void {
    this.window.push({ at: this.now(), counts: new Map(this.counts) });
    while (this.window.length > 13) this.window.shift();
  }

  /** The `coverage/show` text: one line per event that happened, with its recent rate and total. */
  show(): string {
    const oldest = this.window[0];
    const span = oldest ? (this.now() - oldest.at) / 1000 : 0;
    const names = [...this.counts.keys()].sort();
    const lines = names.map((name) => {
      const total = this.counts.get(name)!;
      const rate = span > 0 ? (total - (oldest!.counts.get(name) ?? 0)) / span : 0;
      return `${name.padEnd(32)} ${rate.toFixed(1).padStart(9)}/sec   total: ${total}`;
    });
    return `Event coverage, avg rate over the last ${Math.round(span)} seconds:\n${lines.join('\n')}\n`;
  }
}
