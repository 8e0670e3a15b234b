/**
 * The one interface between the slow path (vswitchd's upcall handler and
 * revalidator, ofproto's xlate through them) and the datapath, in the slow
 * path's terms: keys are the datapath's `FlowKey` (ofproto's `DpFlowKey`),
 * actions ofproto's `DpAction`. Its implementation over nvs's Rust datapath
 * is `NvsDpif` (dpif-nvs.ts), the one place that knows the binary encodings.
 *
 * It is called `Dpif` because that is what OVS calls this seam (lib/dpif.h:
 * "datapath interface", the provider table `dpif_class` that ofproto-dpif
 * drives: port add/del, flow put/del/dump, execute, upcall receive), and a
 * reader who knows OVS looks for it under that name; nvs's `Datapath` is
 * the engine behind it (the Rust crate and the addon's TypeScript handle).
 *
 * Ownership: packets handed in are copied by the datapath; packets and keys
 * handed out are the caller's.
 */
import type { ControllerCookie, DpAction, DpFlowKey, Flow } from '@nvs/ofproto';
import type { DatapathPorts, DeviceState, PortBackend } from './bridge.ts';

/** How vswitchd opens its datapath. */
export interface DpifOptions {
  /** Cores to pin polling threads to (one thread per core); undefined: one unpinned thread. */
  cores?: number[];
  /** Polling threads when no cores are given: 1 by default; 0 for a datapath that only executes and extracts keys (offline parse-pcap). */
  threads?: number;
  /** What internal ports (and LOCAL ports) open as: tap devices, or dummy ports (the default). */
  internalPorts?: PortBackend;
}

export interface DpUpcall {
  /** A miss (no megaflow matched), or a `userspace` action of an installed megaflow. */
  reason: 'miss' | 'userspace';
  /** For a userspace upcall: the controller metadata its action carried, undefined when the cookie is unknown. */
  controller?: ControllerCookie;
  /** Datapath port the packet came in on. */
  inPort: number;
  /** The packet's full key in the datapath's encoding (read it with `keyFlow`; kept as is by ukeys: compact). */
  key: string;
  packet: Uint8Array;
}

export interface DpFlowEntry {
  key: DpFlowKey;
  mask: DpFlowKey;
  /** The megaflow's identity (masked key and mask bytes), as used by `put`/`del`. */
  id: string;
  actions: DpAction[];
  packets: number;
  bytes: number;
  /** Datapath clock (ms) of the last hit, 0 when never hit. */
  usedAt: number;
  tcpFlags: number;
}

/** A port's counters (also what dump-ports and Interface statistics show). */
export interface PortCounters {
  rxPackets: number;
  rxBytes: number;
  rxDropped: number;
  txPackets: number;
  txBytes: number;
  txDropped: number;
}

export interface DpPortStats extends PortCounters {
  no: number;
  name: string;
  /** What is wrong with the port now (a vhost-user queue disabled), for Interface.error. */
  error?: string;
}

export interface DpThreadStats {
  id: number;
  core?: number;
  ports: number[];
  /** Counter name → value, as the datapath reports them (packets, hits, misses, cycles…). */
  counters: Record<string, number>;
}

export interface DpStats {
  flows: number;
  lostUpcalls: number;
  threads: DpThreadStats[];
  /** Counters of polling threads since replaced (a pmd-cpu-mask change), summed: add them for totals. */
  retired: Record<string, number>;
  ports: DpPortStats[];
}

export interface DpFlowPut {
  key: DpFlowKey;
  mask: DpFlowKey;
  /** `flowId(key, mask)` when the caller has it (spares encoding the key and mask again). */
  id?: string;
  actions: readonly DpAction[];
  /** Replace the actions of an installed megaflow with the same key and mask. */
  modify?: boolean;
}

export interface DpExecute {
  inPort: number;
  packet: Uint8Array;
  actions: readonly DpAction[];
}

export interface Dpif extends DatapathPorts {
  portDevice(odpPort: number): { backend: PortBackend; mac?: string; status?: Record<string, string> };
  deviceState(odpPort: number): DeviceState | undefined;
  setDeviceMtu(odpPort: number, mtu: number): void;
  /** The identity of a megaflow (what `del` and dumped entries are keyed by); cheap: no per-call allocation but the string. */
  flowId(key: DpFlowKey, mask: DpFlowKey): string;
  /** The Flow of an upcall's encoded key, with `ofport` as in_port, written over `into`. */
  keyFlow(key: string, ofport: number, into: Flow): Flow;
  put(flows: readonly DpFlowPut[]): void;
  /** Deletes megaflows by identity; unknown ones are ignored. */
  del(ids: readonly string[]): void;
  dump(): DpFlowEntry[];
  /** Identities and counters only: what a revalidation round needs, without converting keys and actions. */
  dumpStats(): Array<Pick<DpFlowEntry, 'id' | 'packets' | 'bytes' | 'usedAt'>>;
  /** Executes many packets in one call; returns the failures (the other packets went through). */
  executeBatch(items: readonly DpExecute[]): Array<{ index: number; error: Error }>;
  /** Delivers upcalls (misses and userspace actions) in batches as they arrive; a throwing handler is reported to `onError`. */
  onUpcalls(handler: (batch: DpUpcall[]) => void, onError: (err: unknown) => void): void;
  inject(port: number, packets: readonly Uint8Array[]): void;
  drain(port: number, max: number): Uint8Array[];
  stats(): DpStats;
  /** Re-creates the polling threads, pinned one per core (none: one unpinned thread); ports and flows stay. Throws when a core cannot be had (the old threads go on). */
  setPmdCores(cores: readonly number[]): void;
  /** The key the datapath extracts from `packet` received on `inPort` (what its fast path would match on). */
  extractKey(packet: Uint8Array, inPort: number): DpFlowKey;
  /** Datapath clock (ms), the time base of `usedAt`. */
  now(): number;
  close(): void;
}
