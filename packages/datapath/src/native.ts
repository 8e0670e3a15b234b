// Finds and loads the compiled addon (packages/datapath/nvs-datapath.node) and
// declares its raw interface. The path is resolved so that the caller may be
// this package's source (tests), or a bundle made by scripts/bundle.mjs in
// dist/ (the nvs-* commands): NVS_DATAPATH_ADDON wins, else we walk up from
// this module's URL and from the main script looking for the file.

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AddonNotFoundError } from './errors.ts';

/** File name of the addon, as built by `npm run build:addon`. */
export const ADDON_FILE = 'nvs-datapath.node';

export interface NativeKeyField {
  name: string;
  offset: number;
  size: number;
  kind: 'uint' | 'bytes' | 'pad';
}

export interface NativePortStats {
  portNo: number;
  name: string;
  type: string;
  thread?: number | null;
  rxPackets: number;
  rxBytes: number;
  rxDropped: number;
  rxErrors: number;
  txPackets: number;
  txBytes: number;
  txDropped: number;
  txErrors: number;
  /** What is wrong with the port now (a vhost-user queue disabled), for Interface.error. */
  error?: string | null;
}

export interface NativePmdCounters {
  packets: number;
  emcHits: number;
  megaflowHits: number;
  misses: number;
  lostUpcalls: number;
  parseErrors: number;
  /** Packets output to a port that no longer exists. */
  txDropped: number;
  /** Time spent processing packets (ns); busyNs / packets is the cost per packet. */
  busyNs: number;
  iterations: number;
  /** CPU cycles (TSC) of polling iterations that moved packets (rx to tx) and of those that found none, as OVS's pmd-stats-show. */
  busyCycles: number;
  idleCycles: number;
}

export interface NativeThreadStats extends NativePmdCounters {
  id: number;
  core?: number | null;
  ports: number[];
}

export interface NativeStats {
  flows: number;
  upcallsQueued: number;
  lostUpcalls: number;
  bridgeLostUpcalls: number;
  threads: NativeThreadStats[];
  retired: NativePmdCounters;
  ports: NativePortStats[];
}

/** A failed operation of a raw batch (operations not listed succeeded). */
export interface NativeFailedOp {
  index: number;
  code: string;
  message: string;
}

/** The state of a port's device, as `ip link` shows it. */
export interface DeviceState {
  mtu: number;
  /** Administratively up (`ip link set dev X up`). */
  adminUp: boolean;
  /** Up with carrier: frames can pass. */
  carrier: boolean;
}

export interface NativeDatapath {
  close(): void;
  addPort(name: string, kind: string, options?: Record<string, string> | null, portNo?: number | null): number;
  removePort(portNo: number): void;
  setPmdCores(cores: number[]): void;
  portMac(portNo: number): string | null;
  portStatus(portNo: number): Record<string, string>;
  setPortMtu(portNo: number, mtu: number): void;
  portDeviceState(portNo: number): DeviceState;
  /** Put records; returns the operations that failed. */
  flowPut(batch: Buffer): NativeFailedOp[];
  /** (key, mask) records; returns one counters record per flow and the deletions that failed. */
  flowDel(matches: Buffer): { stats: Buffer; failed: NativeFailedOp[] };
  /** Every flow as flow records (without their actions unless `actions`). */
  flowDump(actions: boolean): Buffer;
  flowFlush(): void;
  /** Execute records; returns the packets that failed. */
  execute(batch: Buffer): NativeFailedOp[];
  /** Up to `max` queued upcalls as upcall records. */
  recvUpcalls(max: number): Buffer;
  onUpcalls(callback: (batch: Buffer) => void): void;
  offUpcalls(): void;
  inject(portNo: number, packets: Buffer[]): void;
  drain(portNo: number, max: number): Buffer[];
  stats(): NativeStats;
}

export interface NativeAddon {
  Datapath: new (options?: { threads?: number; cores?: number[]; upcallQueueLen?: number; emcEntries?: number }) => NativeDatapath;
  flowKeyLayout(): NativeKeyField[];
  flowKeySize(): number;
  flowKeyDebug(key: Buffer): Record<string, string>;
  actionsRoundTrip(actions: Buffer): Buffer;
  actionsDebug(actions: Buffer): string;
  extractKey(packet: Buffer, inPort: number): Buffer;
}

/** Where the addon is: `explicit`, else $NVS_DATAPATH_ADDON, else found by walking up. */
export function findAddon(explicit?: string): string {
  const override = explicit ?? process.env.NVS_DATAPATH_ADDON;
  if (override) {
    if (!existsSync(override)) {
      throw new AddonNotFoundError('DP_ADDON_NOT_FOUND', `datapath addon not found at ${override} (NVS_DATAPATH_ADDON)`);
    }
    return resolve(override);
  }
  const starts = [dirname(fileURLToPath(import.meta.url))];
  if (process.argv[1]) starts.push(dirname(resolve(process.argv[1])));
  for (const start of starts) {
    for (let dir = start; ; dir = dirname(dir)) {
      for (const candidate of [join(dir, ADDON_FILE), join(dir, 'packages', 'datapath', ADDON_FILE)]) {
        if (existsSync(candidate)) return candidate;
      }
      if (dirname(dir) === dir) break;
    }
  }
  throw new AddonNotFoundError(
    'DP_ADDON_NOT_FOUND',
    `datapath addon ${ADDON_FILE} not found above ${starts.join(' or ')}: build it with 'npm run build:addon' or set NVS_DATAPATH_ADDON`,
  );
}

/** Loads the addon (Node caches it: loading twice returns the same module). */
export function loadAddon(explicit?: string): NativeAddon {
  const path = findAddon(explicit);
  try {
    return createRequire(import.meta.url)(path) as NativeAddon;
  } catch (e) {
    throw new AddonNotFoundError('DP_ADDON_NOT_FOUND', `cannot load datapath addon ${path}: ${(e as Error).message}`);
  }
}
