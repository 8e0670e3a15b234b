/**
 * The daemon's clock for rule timeouts and MAC aging: wall time, which
 * `time/stop` freezes and `time/warp` moves forward, as ovs-vswitchd's
 * testing commands of those names do (OVS's own tests age MACs and expire
 * rules that way instead of waiting).
 */
export class WarpClock {
  private offset = 0;
  private frozenAt: number | undefined;

  now(): number {
    return this.frozenAt ?? Date.now() + this.offset;
  }

  /** Stops time where it is (time/stop); warp still moves it. */
  stop(): void {
    this.frozenAt ??= this.now();
  }

  /** Moves time forward by `ms` (time/warp). */
  warp(ms: number): void {
    if (this.frozenAt !== undefined) this.frozenAt += ms;
    else this.offset += ms;
  }
}
