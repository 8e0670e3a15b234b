// The Datapath class: the typed face of the addon's datapath. Flows,
// executions and upcalls cross in their record forms (raw.ts), one Buffer
// per batch, as the binding takes them; keys are written and read with the
// one codec (`keys`, flow-key.ts). Nothing here runs per packet: flow
// operations and upcalls are batched, stats are pulled.

import { callAddon, datapathError, type DatapathError } from './errors.ts';
import { KeyCodec, type FlowKey } from './flow-key.ts';
import {
  loadAddon,
  type DeviceState,
  type NativeAddon,
  type NativeDatapath,
  type NativeFailedOp,
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

/** A port and its counters (the addon's form, with absent values undefined rather than null). */
export interface PortStats extends Omit<NativePortStats, 'thread' | 'error'> {
  /** Polling thread receiving on the port, if any. */
  thread?: number;
  error?: string;
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

function dropNulls<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null && v !== undefined)) as T;
}

/** A failed operation of a raw batch, by its position in the batch. */
export interface BatchFailure {
  index: number;
  error: DatapathError;
}

function failures(f: NativeFailedOp[]): BatchFailure[] {
  return f.map((x) => ({ index: x.index, error: datapathError(x.code, x.message) }));
}

/** The fast path: polling threads, ports, megaflows, upcalls. See the package doc for an example. */
export class Datapath {
  /** Encodes and decodes flow keys with the addon's layout. */
  readonly keys: KeyCodec;
  private readonly native: NativeDatapath;
  private readonly addon: NativeAddon;

  private constructor(addon: NativeAddon, native: NativeDatapath) {
    this.addon = addon;
    this.native = native;
    this.keys = new KeyCodec(addon.flowKeyLayout());
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
   * Opens a port; returns its number (`portNo` when given and free, else the
   * lowest free, from 1). Types: 'dummy' (in-memory, for tests) and 'tap' (a
   * Linux tap device named after the port; needs CAP_NET_ADMIN, else a
   * PortError with code DP_PORT_NO_PRIVILEGE).
   */
  addPort(name: string, type: string, options: Record<string, string> = {}, portNo?: number): number {
    return callAddon(() => this.native.addPort(name, type, options, portNo));
  }

  /** The MAC address of a port's device (`aa:bb:cc:dd:ee:ff`), undefined for ports without one (dummy). */
  /** How a port reaches its device (Interface.status): `transport`, an afxdp port's `xdp-mode`; empty for dummy and tap ports. */
  portStatus(portNo: number): Record<string, string> {
    return callAddon(() => this.native.portStatus(portNo));
  }

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

  /** Installs or modifies megaflows given as put records; returns the operations that failed. */
  flowPut(records: Buffer): BatchFailure[] {
    return failures(callAddon(() => this.native.flowPut(records)));
  }

  /** Deletes the flows of (key, mask) records; returns their final counters (STATS_RECORD bytes each, zero when not found) and the failures. */
  flowDel(matches: Buffer): { stats: Buffer; failed: BatchFailure[] } {
    const r = callAddon(() => this.native.flowDel(matches));
    return { stats: r.stats, failed: failures(r.failed) };
  }

  /** Every megaflow as flow records (read them with `forEachFlow`); without their actions unless `actions`. */
  flowDump(actions = true): Buffer {
    return callAddon(() => this.native.flowDump(actions));
  }

  /** Deletes every megaflow. */
  flowFlush(): void {
    callAddon(() => this.native.flowFlush());
  }

  /** Runs each execute record's actions on its packet, as if received on its in_port (0: from no port); returns the packets that failed. */
  execute(records: Buffer): BatchFailure[] {
    return failures(callAddon(() => this.native.execute(records)));
  }

  /** Pops up to `max` queued upcalls as upcall records (read them with `forEachUpcall`); never blocks. */
  recvUpcalls(max = 64): Buffer {
    return callAddon(() => this.native.recvUpcalls(max));
  }

  /**
   * Calls `handler` with each batch of upcalls (at most 64, as upcall
   * records) as they arrive, until `offUpcalls()` or `close()`. Does not
   * keep the process alive. An exception from `handler` is reported to
   * `onError` (default: ignored, the stream goes on). Use either this or
   * `recvUpcalls`, not both.
   */
  onUpcalls(handler: (batch: Buffer) => void, onError: (e: unknown) => void = () => {}): void {
    callAddon(() =>
      this.native.onUpcalls((batch) => {
        try {
          handler(batch);
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
}
