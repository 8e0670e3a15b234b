/**
 * Keeps each bridge's OpenFlow rules in the run directory
 * (`<rundir>/<bridge>.rules`, a rule file nvs-ofctl add-flows could read), so
 * that they survive a restart of nvs-vswitchd and are restored before the
 * bridge forwards again. Saves are coalesced (one write per burst of changes)
 * and atomic (write a temporary file, then rename), so a crash leaves the
 * old or the new file, never half of one.
 */
import { existsSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { parseFlows, type FlowMod } from '@nvs/ofproto';
import type { OfBridge } from './ofbridge.ts';
import { printRuleLine } from './mgmt.ts';

export class RuleStore {
  private readonly pending = new Map<string, OfBridge>();
  private timer: NodeJS.Immediate | NodeJS.Timeout | undefined;
  /** When the last save ended and how long it took (ms): the next waits 10x that, so saving stays under a tenth of the time. */
  private lastSaveEnd = 0;
  private lastSaveCost = 0;

  constructor(
    private readonly rundir: string,
    private readonly log: Logger,
  ) {}

  path(bridge: string): string {
    return join(this.rundir, `${bridge}.rules`);
  }

  /** The saved rules of a bridge (none when there is no file); a damaged file is logged and ignored. */
  load(bridge: OfBridge): FlowMod[] | undefined {
    const file = this.path(bridge.name);
    if (!existsSync(file)) return undefined;
    try {
      return parseFlows(readFileSync(file, 'utf8'), { file, portByName: (n) => bridge.ports.get(n)?.ofport });
    } catch (err) {
      this.log.error({ bridge: bridge.name, err: (err as Error).message }, 'saved rules unreadable; starting with the default rules');
      return undefined;
    }
  }

  /** Saves a bridge's rules soon (coalesced). */
  schedule(bridge: OfBridge): void {
    this.pending.set(bridge.name, bridge);
    if (this.timer) return;
    // A client that changes one rule per round trip (ovs-ofctl add-flows sends a barrier after each) would
    // otherwise rewrite the whole table once per rule.
    const wait = this.lastSaveEnd + Math.min(1000, 10 * this.lastSaveCost) - performance.now();
    this.timer = wait > 0 ? setTimeout(() => this.flush(), wait) : setImmediate(() => this.flush());
  }

  /** Writes every pending save now (also at shutdown). */
  flush(): void {
    clearTimeout(this.timer as NodeJS.Timeout);
    clearImmediate(this.timer as NodeJS.Immediate);
    this.timer = undefined;
    const start = performance.now();
    for (const b of this.pending.values()) this.save(b);
    this.pending.clear();
    this.lastSaveEnd = performance.now();
    this.lastSaveCost = this.lastSaveEnd - start;
  }

  /** Forgets a deleted bridge's rules. */
  remove(bridge: string): void {
    this.pending.delete(bridge);
    if (existsSync(this.path(bridge))) unlinkSync(this.path(bridge));
  }

  private save(b: OfBridge): void {
    const file = this.path(b.name);
    const text = b.ofproto.dumpFlows().map((r) => `${printRuleLine(r)}\n`).join('');
    try {
      writeFileSync(`${file}.tmp`, text);
      renameSync(`${file}.tmp`, file);
    } catch (err) {
      this.log.error({ bridge: b.name, err: (err as Error).message }, 'saving rules failed');
    }
  }
}
