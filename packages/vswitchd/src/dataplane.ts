/**
 * What nvs-vswitchd needs from the datapath, in the slow path's terms
 * (DpFlowKey, DpAction from @nvs/ofproto's Dpif vocabulary). One
 * implementation exists, over the Rust datapath (dataplane-nvs.ts); the seam
 * keeps the binary encodings in one file, as OVS keeps them behind dpif.
 *
 * Ownership: packets handed in are copied by the datapath; packets and keys
 * handed out are the caller's.
 */
import type { DpAction, DpFlowKey, Flow } from '@nvs/ofproto';
import type { DatapathPorts, DeviceState, PortBackend } from './bridge.ts';

export interface DpUpcall {
  /** Datapath port the packet came in on. */
  inPort: number;
  /** The packet's full key in the dataplane's encoding (read it with `keyFlow`; kept as is by ukeys: compact). */
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

export interface Dataplane extends DatapathPorts {
  portDevice(odpPort: number): { backend: PortBackend; mac?: string };
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
  execute(inPort: number, packet: Uint8Array, actions: readonly DpAction[]): void;
  /** Executes many packets in one call; returns the failures (the other packets went through). */
  executeBatch(items: readonly DpExecute[]): Array<{ index: number; error: Error }>;
  /** Delivers miss upcalls in batches as they arrive; a throwing handler is reported to `onError`. */
  onUpcalls(handler: (batch: DpUpcall[]) => void, onError: (err: unknown) => void): void;
  inject(port: number, packets: readonly Uint8Array[]): void;
  drain(port: number, max: number): Uint8Array[];
  stats(): DpStats;
  /** Re-creates the polling threads, pinned one per core (none: one unpinned thread); ports and flows stay. Throws when a core cannot be had (the old threads go on). */
  setPmdCores(cores: readonly number[]): void;
  /** Datapath clock (ms), the time base of `usedAt`. */
  now(): number;
  close(): void;
}
