/**
 * nvs-vswitchd's link to the Open_vSwitch database: an IDL replica of the
 * tables it reads, turned into a SwitchConfig on every change (coalesced:
 * one reconciliation per burst of updates), and a write-back transaction of
 * what it learned — Interface ofport, error, admin/link state, MAC, MTU,
 * statistics — and finally `cur_cfg = next_cfg`, which is what a waiting
 * `ovs-vsctl` (without --no-wait) watches for. Statistics and the columns
 * that follow a kernel device (admin_state, link_state, mtu) are also
 * written periodically, so `ip link set X down` shows within a period: every
 * other_config:stats-update-interval when the database sets it (at least
 * 5 s), else every `statsIntervalMs` (5 s, ovs-vswitchd's default). As in
 * ovs-vswitchd, a new period writes at once and then runs from there.
 *
 * The write-back only sets columns whose value differs from the replica, so
 * our own updates coming back through the monitor converge to no-ops. When
 * the server goes away the switch keeps forwarding and the link retries.
 */
import type { Logger } from 'pino';
import type { ControllerStatus } from './controller.ts';
import { Idl, makeAtom, makeMap, makeSet, OvsdbClient, datumEquals, type Datum, type IdlRow, type IdlTransaction } from '@nvs/ovsdb';
import { DEFAULT_STATS_UPDATE_INTERVAL_MS, readConfig, type DbSnapshot, type ReadOptions, type SwitchConfig } from './config.ts';
import type { InterfaceStatus, LinkStatus } from './bridge.ts';

const TABLES = {
  Open_vSwitch: ['bridges', 'next_cfg', 'cur_cfg', 'other_config', 'external_ids'],
  Bridge: ['name', 'ports', 'datapath_type', 'fail_mode', 'other_config', 'controller'],
  Controller: ['target', 'max_backoff', 'is_connected', 'role', 'status'],
  Port: ['name', 'interfaces', 'tag', 'trunks', 'vlan_mode'],
  Interface: ['name', 'type', 'options', 'external_ids', 'ofport_request', 'mtu_request', 'ofport', 'error', 'admin_state', 'link_state', 'mac_in_use', 'mtu', 'statistics', 'status'],
} as const;

/** What is written to one Interface row every statistics period: its counters and the columns that follow its device. */
export interface InterfaceRefresh extends LinkStatus {
  statistics?: Record<string, number>;
  /** Interface.error of a working port, when given (a port's trouble found while it runs). */
  error?: string;
}

export interface DbSyncOptions {
  /** `unix:PATH` (or `tcp:IP:PORT`). */
  remote: string;
  log: Logger;
  /** Applies a configuration and returns the Interface statuses to write back. */
  apply: (cfg: SwitchConfig) => Map<string, InterfaceStatus>;
  /** Interface statistics and device state by Interface uuid, written every statistics period. */
  periodic?: () => Map<string, InterfaceRefresh>;
  /** The Controller rows' connection state, written back with each reconciliation. */
  controllerStatus?: () => Map<string, ControllerStatus>;
  /** The statistics period while the database sets none (default 5000 ms; tests shorten it). */
  statsIntervalMs?: number;
  retryMs?: number;
  read?: ReadOptions;
}

export class DbSync {
  private idl: Idl | undefined;
  private pending = false;
  private running: Promise<void> = Promise.resolve();
  private stopped = false;
  private statsTimer: NodeJS.Timeout | undefined;
  private statsPeriodMs: number;
  private retryTimer: NodeJS.Timeout | undefined;
  /** Resolves the first time a configuration has been applied. */
  readonly firstApplied: Promise<void>;
  private markApplied!: () => void;

  constructor(private readonly opts: DbSyncOptions) {
    this.firstApplied = new Promise((resolve) => (this.markApplied = resolve));
    this.statsPeriodMs = opts.statsIntervalMs ?? DEFAULT_STATS_UPDATE_INTERVAL_MS;
  }

  /** Connects (retrying until it works) and starts following the database. */
  async start(): Promise<void> {
    await this.connect();
    if (this.opts.periodic && !this.stopped) this.armStats();
  }

  /** The statistics period now in force (ms). */
  get statsIntervalMs(): number {
    return this.statsPeriodMs;
  }

  /**
   * Sets the statistics period (undefined: the default). A different period
   * writes now and re-arms the timer, as ovs-vswitchd does; the same one
   * leaves the timer running. Returns whether the period changed.
   */
  setStatsInterval(ms: number | undefined): boolean {
    const period = ms ?? this.opts.statsIntervalMs ?? DEFAULT_STATS_UPDATE_INTERVAL_MS;
    if (period === this.statsPeriodMs) return false;
    this.statsPeriodMs = period;
    if (this.statsTimer) {
      this.writePeriodic();
      this.armStats();
    }
    return true;
  }

  private armStats(): void {
    clearInterval(this.statsTimer);
    this.statsTimer = setInterval(() => this.writePeriodic(), this.statsPeriodMs);
    this.statsTimer.unref();
  }

  get connected(): boolean {
    return this.idl !== undefined;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.statsTimer);
    this.statsTimer = undefined;
    clearTimeout(this.retryTimer);
    await this.running.catch(() => undefined);
    this.idl?.client.close();
    this.idl = undefined;
  }

  /** Reconciles again now (after ports' state changed outside the database). */
  refresh(): void {
    this.schedule();
  }

  private async connect(): Promise<void> {
    const log = this.opts.log;
    while (!this.stopped) {
      try {
        const client = await OvsdbClient.connect(this.opts.remote, { log, timeoutMs: 5000 });
        const idl = await Idl.create(client, 'Open_vSwitch', TABLES);
        idl.on('change', () => this.schedule());
        idl.on('close', () => this.onClose(idl));
        this.idl = idl;
        log.info({ remote: this.opts.remote }, 'connected to the database');
        this.schedule();
        return;
      } catch (err) {
        log.warn({ remote: this.opts.remote, err: (err as Error).message }, 'database connection failed; retrying');
        await new Promise((r) => (this.retryTimer = setTimeout(r, this.opts.retryMs ?? 1000)));
      }
    }
  }

  private onClose(idl: Idl): void {
    if (this.idl !== idl) return;
    this.idl = undefined;
    if (this.stopped) return;
    this.opts.log.warn('database connection lost; forwarding continues, reconnecting');
    void this.connect();
  }

  private schedule(): void {
    if (this.pending) return;
    this.pending = true;
    setImmediate(() => {
      this.pending = false;
      // Serialise runs: a reconciliation never overlaps the previous write-back.
      this.running = this.running.then(() => this.run()).catch((err) => this.opts.log.error({ err }, 'reconciliation failed'));
    });
  }

  private snapshot(idl: Idl): DbSnapshot {
    const table = (name: string) => new Map([...idl.rows(name)].map((r) => [r.uuid, (c: string) => r.get(c)] as const));
    return { openVswitch: table('Open_vSwitch'), bridge: table('Bridge'), port: table('Port'), iface: table('Interface'), controller: table('Controller') };
  }

  private async run(): Promise<void> {
    const idl = this.idl;
    if (!idl || this.stopped) return;
    const cfg = readConfig(this.snapshot(idl), this.opts.read);
    if (!cfg) return;
    const status = this.opts.apply(cfg);
    // A working port's own trouble (a vhost-user queue disabled) outlasts reconciliations, which our own writes trigger.
    for (const [uuid, r] of this.opts.periodic?.() ?? []) {
      const st = status.get(uuid);
      if (st && st.error === undefined && r.error) status.set(uuid, { ...st, error: r.error });
    }
    this.markApplied();
    await idl.transact((txn) => {
      for (const [uuid, st] of status) {
        const row = txn.get('Interface', uuid);
        if (row) writeStatus(txn, row, st);
      }
      for (const [uuid, st] of this.opts.controllerStatus?.() ?? []) {
        const row = txn.get('Controller', uuid);
        if (!row) continue;
        setIfChanged(txn, row, 'is_connected', makeAtom(st.isConnected));
        setIfChanged(txn, row, 'role', makeSet([st.role]));
        const s: [string, string][] = [['state', st.state]];
        if (st.lastError) s.push(['last_error', st.lastError]);
        setIfChanged(txn, row, 'status', makeMap(s));
      }
      const ovs = txn.get('Open_vSwitch', cfg.uuid);
      if (ovs && ovs.number('cur_cfg') !== cfg.nextCfg) {
        // Only claim the next_cfg we actually applied: a newer one will come round again.
        txn.verify(ovs, 'next_cfg');
        if (ovs.number('next_cfg') === cfg.nextCfg) setIfChanged(txn, ovs, 'cur_cfg', makeAtom(cfg.nextCfg));
      }
    });
  }

  private writePeriodic(): void {
    const idl = this.idl;
    const rows = this.opts.periodic?.();
    if (!idl || !rows || rows.size === 0) return;
    this.running = this.running
      .then(() =>
        idl.transact((txn) => {
          for (const [uuid, r] of rows) {
            const row = txn.get('Interface', uuid);
            if (!row) continue;
            if (r.statistics) setIfChanged(txn, row, 'statistics', makeMap(Object.entries(r.statistics)));
            if ('error' in r) setIfChanged(txn, row, 'error', optional(r.error));
            writeLink(txn, row, r);
          }
        }),
      )
      .then(() => undefined)
      .catch((err) => this.opts.log.warn({ err: (err as Error).message }, 'writing statistics failed'));
  }
}

function setIfChanged(txn: IdlTransaction, row: IdlRow, column: string, value: Datum): void {
  if (!datumEquals(row.get(column), value)) txn.set(row, column, value);
}

function optional<T extends string | number>(v: T | undefined): Datum {
  return makeSet(v === undefined ? [] : [v]);
}

function writeStatus(txn: IdlTransaction, row: IdlRow, st: InterfaceStatus): void {
  setIfChanged(txn, row, 'ofport', makeSet([st.ofport]));
  setIfChanged(txn, row, 'error', optional(st.error));
  setIfChanged(txn, row, 'mac_in_use', optional(st.macInUse));
  setIfChanged(txn, row, 'status', makeMap(Object.entries(st.status ?? {})));
  writeLink(txn, row, st);
}

function writeLink(txn: IdlTransaction, row: IdlRow, st: LinkStatus): void {
  setIfChanged(txn, row, 'admin_state', optional(st.adminState));
  setIfChanged(txn, row, 'link_state', optional(st.linkState));
  setIfChanged(txn, row, 'mtu', optional(st.mtu));
  if ('error' in st) setIfChanged(txn, row, 'error', optional(st.error));
}
