// The Datapath class: the typed face of the addon's datapath. Keys and
// actions go in and come out as objects (FlowKey, DpAction[]); the binary
// encodings stay inside this package. Nothing here runs per packet: flow
// operations and upcalls are batched, stats are pulled.

import { decodeActions, encodeActions, type DpAction } from './actions.ts';
import { callAddon, datapathError, fromAddon, type DatapathError } from './errors.ts';
import { FlowKeyCodec, type FlowKey } from './flow-key.ts';
import {
  loadAddon,
  type DeviceState,
  type NativeAddon,
  type NativeDatapath,
  type NativeFailedOp,
  type NativeFlowEntry,
  type NativeFlowStats,
  type NativeOpResult,
  type NativePmdCounters,
  type NativePortStats,
} from './native.ts';

export interface DatapathOptions {
  /** Polling threads (default 1; 0: none, only `execute` moves packets). */
  threads?: number;
  /** Cores to pin the threads to (thread i on cores[i % length]); default: no pinning. */
  cores?: number[];
  /** Capacity of the upcall queue; when full, upcalls are dropped and counted (default 4096). */
  upcallQueueLen?: number;
  /** Exact-match cache slots per thread (default 8192). */
  emcEntries?: number;
  /** Path of the addon; default: $NVS_DATAPATH_ADDON, else found near this package. */
  addonPath?: string;
}

/** Counters of one megaflow. */
export interface FlowStats {
  packets: number;
  bytes: number;
  /** Wall-clock time of the last hit in ms since the epoch; 0 = never used. */
  usedMs: number;
  /** OR of the TCP flags seen. */
  tcpFlags: number;
}

/** One megaflow: packets whose key AND mask equals key (stored masked). */
export interface DpFlow {
  key: FlowKey;
  mask: FlowKey;
  actions: DpAction[];
  stats: FlowStats;
}

export interface FlowPutRequest {
  key: Partial<FlowKey>;
  mask: Partial<FlowKey>;
  actions: readonly DpAction[];
  /** Install the flow if absent (default true). */
  create?: boolean;
  /** Replace the actions if present (default false). */
  modify?: boolean;
  /** Zero the counters of a modified flow (default false). */
  zeroStats?: boolean;
}

export interface FlowMatch {
  key: Partial<FlowKey>;
  mask: Partial<FlowKey>;
}

/** The outcome of one operation of a batch. */
export type FlowOpResult = { ok: true; stats?: FlowStats } | { ok: false; error: DatapathError };

/** A packet the fast path sent up: a miss, or a `userspace` action. */
export interface Upcall {
  /** The packet's bytes (a copy). */
  packet: Buffer;
  key: FlowKey;
  inPort: number;
  reason: 'miss' | 'userspace';
  /** The userspace action's cookie. */
  cookie?: bigint;
}

/** A port and its counters (the addon's form, with absent values undefined rather than null). */
export interface PortStats extends Omit<NativePortStats, 'thread'> {
  /** Polling thread receiving on the port, if any. */
  thread?: number;
}

/** The counters of a polling thread. */
export type PmdCounters = NativePmdCounters;

export interface ThreadStats extends PmdCounters {
  id: number;
  core?: number;
  /** Ports whose rx this thread polls. */
  ports: number[];
}

export interface DatapathStats {
  flows: number;
  upcallsQueued: number;
  /** Upcalls dropped because the queue was full. */
  lostUpcalls: number;
  /** Upcalls dropped because the JS callback of `onUpcalls` fell behind. */
  bridgeLostUpcalls: number;
  threads: ThreadStats[];
  /** Final counters of the threads `setPmdCores` replaced, summed (add them for totals). */
  retired: PmdCounters;
  ports: PortStats[];
}

function flowStats(s: NativeFlowStats): FlowStats {
  return { packets: s.packets, bytes: s.bytes, usedMs: s.usedMs, tcpFlags: s.tcpFlags };
}

function opResult(r: NativeOpResult): FlowOpResult {
  if (r.error) return { ok: false, error: datapathError(r.error.code, r.error.message) };
  return r.stats ? { ok: true, stats: flowStats(r.stats) } : { ok: true };
}

function dropNulls<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null && v !== undefined)) as T;
}

/** A failed operation of a raw batch, by its position in the batch. */
export interface RawFailure {
  index: number;
  error: DatapathError;
}

function failures(f: NativeFailedOp[]): RawFailure[] {
  return f.map((x) => ({ index: x.index, error: datapathError(x.code, x.message) }));
}

/** The fast path: polling threads, ports, megaflows, upcalls. See the package doc for an example. */
export class Datapath {
  /** Encodes and decodes flow keys with the addon's layout. */
  readonly keys: FlowKeyCodec;
  private readonly native: NativeDatapath;
  private readonly addon: NativeAddon;

  private constructor(addon: NativeAddon, native: NativeDatapath) {
    this.addon = addon;
    this.native = native;
    this.keys = new FlowKeyCodec(addon.flowKeyLayout());
  }

  /** Loads the addon and starts a datapath with its polling threads. */
  static open(options: DatapathOptions = {}): Datapath {
    const addon = loadAddon(options.addonPath);
    const { addonPath: _, ...rest } = options;
    const native = callAddon(() => new addon.Datapath(rest));
    return new Datapath(addon, native);
  }

  /** Stops the threads and closes every port. Idempotent. */
  close(): void {
    callAddon(() => this.native.close());
  }

  /**
   * Replaces the polling threads: one pinned to each of `cores`, or one
   * unpinned thread when empty. Ports, flows and their counters are kept; each
   * new thread starts with an empty exact-match cache. On failure (a core that
   * cannot be had) the old threads go on unchanged.
   */
  setPmdCores(cores: readonly number[]): void {
    callAddon(() => this.native.setPmdCores([...cores]));
  }

  /**
   * Opens a port; returns its number (lowest free, from 1). Types: 'dummy'
   * (in-memory, for tests) and 'tap' (a Linux tap device named after the
   * port; needs CAP_NET_ADMIN, else a PortError with code DP_PORT_NO_PRIVILEGE).
   */
  addPort(name: string, type: string, options: Record<string, string> = {}): number {
    return callAddon(() => this.native.addPort(name, type, options));
  }

  /** The MAC address of a port's device (`aa:bb:cc:dd:ee:ff`), undefined for ports without one (dummy). */
  portMac(portNo: number): string | undefined {
    return callAddon(() => this.native.portMac(portNo)) ?? undefined;
  }

  /**
   * Sets the MTU of a port's device (tap ports). Throws a PortError:
   * DP_PORT_BAD_MTU above what the port carries, DP_PORT_OS with the
   * kernel's reason when it refuses (below 68, for one).
   */
  setPortMtu(portNo: number, mtu: number): void {
    callAddon(() => this.native.setPortMtu(portNo, mtu));
  }

  /** The MTU and link state of a port's device, read now (tap ports; others throw a PortError, DP_PORT_UNSUPPORTED). */
  portDeviceState(portNo: number): DeviceState {
    return callAddon(() => this.native.portDeviceState(portNo));
  }

  /** Closes a port once no polling thread uses it. */
  removePort(portNo: number): void {
    callAddon(() => this.native.removePort(portNo));
  }

  /** Installs or modifies megaflows; one result per request, in order. */
  flowPut(flows: readonly FlowPutRequest[]): FlowOpResult[] {
    const native = flows.map((f) => ({
      key: this.keys.encode(f.key),
      mask: this.keys.encode(f.mask),
      actions: encodeActions(f.actions),
      create: f.create ?? true,
      modify: f.modify ?? false,
      zeroStats: f.zeroStats ?? false,
    }));
    return callAddon(() => this.native.flowPut(native)).map(opResult);
  }

  /** Deletes megaflows; one result per flow (with its final counters), in order. */
  flowDel(flows: readonly FlowMatch[]): FlowOpResult[] {
    const native = flows.map((f) => ({ key: this.keys.encode(f.key), mask: this.keys.encode(f.mask) }));
    return callAddon(() => this.native.flowDel(native)).map(opResult);
  }

  /** The megaflow with this key and mask, if installed. */
  flowGet(key: Partial<FlowKey>, mask: Partial<FlowKey>): DpFlow | undefined {
    const f = callAddon(() => this.native.flowGet(this.keys.encode(key), this.keys.encode(mask)));
    return f ? this.flow(f) : undefined;
  }

  /** Every megaflow with its counters. */
  flowDump(): DpFlow[] {
    return callAddon(() => this.native.flowDump()).map((f) => this.flow(f));
  }

  /**
   * Raw forms (see raw.ts for the record layouts): for hosts that keep keys
   * as bytes and move many flows or packets per call. Each returns the
   * operations that failed; the others succeeded.
   */
  flowPutRaw(records: Buffer): RawFailure[] {
    return failures(callAddon(() => this.native.flowPutRaw(records)));
  }

  /** Deletes the flows of a Buffer of (key, mask) records; returns their final counters (STATS_RECORD bytes each). */
  flowDelRaw(matches: Buffer): { stats: Buffer; failed: RawFailure[] } {
    const r = callAddon(() => this.native.flowDelRaw(matches));
    return { stats: r.stats, failed: failures(r.failed) };
  }

  /** Every megaflow's masked key, mask and counters as one Buffer of records (key, mask, STATS_RECORD). */
  flowDumpStatsRaw(): Buffer {
    return callAddon(() => this.native.flowDumpStatsRaw());
  }

  /** Runs many packets' actions in one call (records of raw.ts's `writeExecuteRecord`). */
  executeRaw(records: Buffer): RawFailure[] {
    return failures(callAddon(() => this.native.executeRaw(records)));
  }

  /** Like `onUpcalls`, but each batch arrives as one Buffer of records (read it with `forEachUpcall`). */
  onUpcallsRaw(handler: (batch: Buffer) => void, onError: (e: unknown) => void = () => {}): void {
    callAddon(() =>
      this.native.onUpcallsRaw((batch) => {
        try {
          handler(batch);
        } catch (e) {
          onError(e);
        }
      }),
    );
  }

  /** Deletes every megaflow. */
  flowFlush(): void {
    callAddon(() => this.native.flowFlush());
  }

  /** Runs `actions` on `packet` as if received on `inPort` (0: from no port), e.g. after an upcall. */
  execute(inPort: number, packet: Uint8Array, actions: readonly DpAction[]): void {
    const encoded = encodeActions(actions);
    callAddon(() => this.native.execute(inPort, Buffer.from(packet), encoded));
  }

  /** Pops up to `max` queued upcalls; never blocks. */
  recvUpcalls(max = 64): Upcall[] {
    return callAddon(() => this.native.recvUpcalls(max)).map((u) => this.upcall(u));
  }

  /**
   * Calls `handler` with each batch of upcalls (at most 64) as they arrive,
   * until `offUpcalls()` or `close()`. Does not keep the process alive. An
   * exception from `handler` is reported to `onError` (default: ignored, the
   * stream goes on). Use either this or `recvUpcalls`, not both.
   */
  onUpcalls(handler: (upcalls: Upcall[]) => void, onError: (e: unknown) => void = () => {}): void {
    callAddon(() =>
      this.native.onUpcalls((batch) => {
        try {
          handler(batch.map((u) => this.upcall(u)));
        } catch (e) {
          onError(e);
        }
      }),
    );
  }

  /** Stops calling the `onUpcalls` handler. */
  offUpcalls(): void {
    callAddon(() => this.native.offUpcalls());
  }

  /** Makes packets arrive on a port (dummy ports). */
  inject(portNo: number, packets: readonly Uint8Array[]): void {
    const bufs = packets.map((p) => Buffer.from(p));
    callAddon(() => this.native.inject(portNo, bufs));
  }

  /** Takes up to `max` packets sent out of a port (dummy ports). */
  drain(portNo: number, max = 1024): Buffer[] {
    return callAddon(() => this.native.drain(portNo, max));
  }

  /** Counters of the datapath, each polling thread and each port. */
  stats(): DatapathStats {
    const s = callAddon(() => this.native.stats());
    return {
      flows: s.flows,
      upcallsQueued: s.upcallsQueued,
      lostUpcalls: s.lostUpcalls,
      bridgeLostUpcalls: s.bridgeLostUpcalls,
      threads: s.threads.map((t) => dropNulls({ ...t }) as ThreadStats),
      retired: { ...s.retired },
      ports: s.ports.map((p) => dropNulls({ ...p }) as PortStats),
    };
  }

  /** The flow key the datapath extracts from `packet` received on `inPort`. */
  extractKey(packet: Uint8Array, inPort: number): FlowKey {
    return this.keys.decode(callAddon(() => this.addon.extractKey(Buffer.from(packet), inPort)));
  }

  private flow(f: NativeFlowEntry): DpFlow {
    return { key: this.keys.decode(f.key), mask: this.keys.decode(f.mask), actions: decodeActions(f.actions), stats: flowStats(f.stats) };
  }

  private upcall(u: { packet: Buffer; key: Buffer; inPort: number; reason: string; cookie?: bigint | null }): Upcall {
    if (u.reason !== 'miss' && u.reason !== 'userspace') throw fromAddon(new Error(`unknown upcall reason ${u.reason}`));
    const up: Upcall = { packet: u.packet, key: this.keys.decode(u.key), inPort: u.inPort, reason: u.reason };
    if (u.cookie !== undefined && u.cookie !== null) up.cookie = u.cookie;
    return up;
  }
}
