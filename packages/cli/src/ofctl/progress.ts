/**
 * A one-line progress bar for long operations, drawn on a terminal only
 * (nothing is written when stderr is not a TTY, so scripts and logs stay clean).
 */
export class ProgressBar {
  private last = -1;

  constructor(
    private readonly out: { write(s: string): unknown; isTTY?: boolean },
    private readonly label: string,
  ) {}

  update(done: number, total: number): void {
    if (!this.out.isTTY || total <= 0) return;
    const pct = Math.min(100, Math.floor((done / total) * 100));
    if (pct === this.last) return;
    this.last = pct;
    const width = 30;
    const filled = Math.round((pct / 100) * width);
    this.out.write(`\r${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${pct}% (${done}/${total})`);
  }

  done(): void {
    if (this.out.isTTY && this.last >= 0) this.out.write('\n');
  }
}
