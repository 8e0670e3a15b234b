/**
 * The Dataplane over nvs's Rust datapath (@nvs/datapath): the one place
 * where the slow path's vocabulary (ofproto's DpFlowKey with snake_case
 * numbers and bigints, DpAction with header/field names) is turned into the
 * datapath's (camelCase FlowKey with byte arrays, DpAction with wire field
 * names) and back. Internal ports are dummy ports for now (the tap form
 * needs a tap back end in the datapath).
 *
 * Controller-bound `userspace` actions carry a small integer cookie here;
 * the cookie → metadata table lives in this object.
 */
import { Datapath, type DpAction as WireAction, type FlowKey as WireKey, type SetFieldName, type Upcall } from '@nvs/datapath';
import { newDpFlowKey, type ControllerCookie, type DpAction, type DpFlowKey, type DpSetField, type DpSetHeader } from '@nvs/ofproto';
import type { Dataplane, DpFlowEntry, DpFlowPut, DpStats, DpUpcall } from './dataplane.ts';
import type { DataplaneOptions } from './vswitchd.ts';

/** Thrown when a translation produced an action the datapath cannot carry. */
export class DataplaneError extends Error {
  constructor(
    readonly code: 'DATAPLANE_UNSUPPORTED_ACTION',
    message: string,
  ) {
    super(message);
    this.name = 'DataplaneError';
  }
}

const MAC_FIELDS = ['eth_dst', 'eth_src', 'arp_sha', 'arp_tha'] as const;
const V6_FIELDS = ['ipv6_src', 'ipv6_dst', 'nd_target'] as const;
const NUM_FIELDS = ['in_port', 'recirc_id', 'eth_type', 'vlan_tci', 'vlan_tpid', 'cvlan_tci', 'nw_proto', 'nw_tos', 'nw_ttl', 'nw_frag', 'tp_src', 'tp_dst', 'tcp_flags', 'nw_src', 'nw_dst', 'ipv6_label'] as const;

function camel(s: string): string {
  return s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}
const CAMEL = new Map<string, string>([...MAC_FIELDS, ...V6_FIELDS, ...NUM_FIELDS].map((f) => [f, camel(f)]));

function bytesOf(v: number | bigint, size: number): Uint8Array {
  const out = new Uint8Array(size);
  // Most keys are IPv4: their 128-bit fields are zero, and BigInt work is not free.
  if (v === 0 || v === 0n) return out;
  if (typeof v === 'number' && size <= 6) {
    for (let i = size - 1; i >= 0; i--) {
      out[i] = v % 256;
      v = Math.floor(v / 256);
    }
    return out;
  }
  let x = BigInt(v);
  for (let i = size - 1; i >= 0; i--) {
    out[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  return out;
}

function numOf(b: Uint8Array): bigint {
  if (b.every((x) => x === 0)) return 0n;
  let v = 0n;
  for (const x of b) v = (v << 8n) | BigInt(x);
  return v;
}

/** ofproto's key → the datapath's. */
export function toWireKey(k: DpFlowKey): WireKey {
  const out: Record<string, number | Uint8Array> = {};
  for (const f of NUM_FIELDS) out[CAMEL.get(f)!] = k[f] >>> 0;
  for (const f of MAC_FIELDS) out[CAMEL.get(f)!] = bytesOf(k[f], 6);
  for (const f of V6_FIELDS) out[CAMEL.get(f)!] = bytesOf(k[f], 16);
  return out as unknown as WireKey;
}

/** The datapath's key → ofproto's. */
export function fromWireKey(w: WireKey): DpFlowKey {
  const k = newDpFlowKey() as unknown as Record<string, number | bigint>;
  const src = w as unknown as Record<string, number | Uint8Array>;
  for (const f of NUM_FIELDS) k[f] = src[CAMEL.get(f)!] as number;
  for (const f of MAC_FIELDS) {
    const b = src[CAMEL.get(f)!] as Uint8Array;
    k[f] = ((b[0] * 256 + b[1]) * 256 + b[2]) * 16777216 + ((b[3] << 16) | (b[4] << 8) | b[5]);
  }
  for (const f of V6_FIELDS) k[f] = numOf(src[CAMEL.get(f)!] as Uint8Array);
  return k as unknown as DpFlowKey;
}

/** Which wire field a set of (header, key field) writes, and its size. */
function wireSetField(header: DpSetHeader, field: DpSetField): { name: SetFieldName; size: number } | undefined {
  switch (field) {
    case 'eth_src':
    case 'eth_dst':
      return { name: field, size: 6 };
    case 'nw_src':
      return header === 'ipv4' ? { name: 'ipv4_src', size: 4 } : undefined;
    case 'nw_dst':
      return header === 'ipv4' ? { name: 'ipv4_dst', size: 4 } : undefined;
    case 'nw_tos':
      return header === 'ipv4' ? { name: 'ipv4_tos', size: 1 } : header === 'ipv6' ? { name: 'ipv6_tclass', size: 1 } : undefined;
    case 'nw_ttl':
      return header === 'ipv4' ? { name: 'ipv4_ttl', size: 1 } : header === 'ipv6' ? { name: 'ipv6_hlimit', size: 1 } : undefined;
    case 'ipv6_src':
    case 'ipv6_dst':
      return { name: field, size: 16 };
    case 'ipv6_label':
      return { name: 'ipv6_label', size: 4 };
    case 'tp_src':
    case 'tp_dst':
      return header === 'tcp' || header === 'udp' ? { name: field, size: 2 } : undefined;
    default:
      return undefined;
  }
}

const HEADER_OF_WIRE: Record<SetFieldName, [DpSetHeader, DpSetField]> = {
  eth_src: ['eth', 'eth_src'],
  eth_dst: ['eth', 'eth_dst'],
  ipv4_src: ['ipv4', 'nw_src'],
  ipv4_dst: ['ipv4', 'nw_dst'],
  ipv4_tos: ['ipv4', 'nw_tos'],
  ipv4_ttl: ['ipv4', 'nw_ttl'],
  ipv6_src: ['ipv6', 'ipv6_src'],
  ipv6_dst: ['ipv6', 'ipv6_dst'],
  ipv6_label: ['ipv6', 'ipv6_label'],
  ipv6_tclass: ['ipv6', 'nw_tos'],
  ipv6_hlimit: ['ipv6', 'nw_ttl'],
  tp_src: ['tcp', 'tp_src'],
  tp_dst: ['tcp', 'tp_dst'],
};

export class NvsDataplane implements Dataplane {
  private readonly cookies = new Map<bigint, ControllerCookie>();
  /** Wire forms computed by flowId, reused by the put that usually follows. */
  private readonly wire = new WeakMap<DpFlowKey, WireKey>();
  private readonly cookieOf = new Map<string, bigint>();

  private constructor(readonly dp: Datapath) {}

  static open(o: DataplaneOptions = {}): NvsDataplane {
    const cores = o.cores && o.cores.length > 0 ? o.cores : undefined;
    return new NvsDataplane(Datapath.open({ threads: cores ? cores.length : 1, cores }));
  }

  addPort(name: string, _type: 'dummy' | 'internal'): number {
    return this.dp.addPort(name, 'dummy');
  }

  removePort(no: number): void {
    this.dp.removePort(no);
  }

  flowId(key: DpFlowKey, mask: DpFlowKey): string {
    return this.wireId(this.toWire(key), this.toWire(mask));
  }

  private toWire(k: DpFlowKey): WireKey {
    let w = this.wire.get(k);
    if (!w) this.wire.set(k, (w = toWireKey(k)));
    return w;
  }

  private wireId(key: WireKey, mask: WireKey): string {
    return this.dp.keys.encode(key).toString('latin1') + this.dp.keys.encode(mask).toString('latin1');
  }

  toWireActions(actions: readonly DpAction[]): WireAction[] {
    const out: WireAction[] = [];
    for (const a of actions) {
      switch (a.type) {
        case 'output':
          out.push({ type: 'output', port: a.port });
          break;
        case 'pop_vlan':
          out.push({ type: 'pop_vlan' });
          break;
        case 'push_vlan':
          // ofproto marks a present tag with 0x1000; on the wire that bit is DEI and stays clear.
          out.push({ type: 'push_vlan', tpid: a.tpid === 0x88a8 ? 0x88a8 : 0x8100, tci: a.tci & ~0x1000 & 0xffff });
          break;
        case 'truncate':
          out.push({ type: 'truncate', maxLen: a.maxLen });
          break;
        case 'userspace':
          out.push({ type: 'userspace', cookie: this.cookieFor(a.controller) });
          break;
        case 'set': {
          const w = wireSetField(a.header, a.field);
          if (!w) throw new DataplaneError('DATAPLANE_UNSUPPORTED_ACTION', `set(${a.header}(${a.field})) is not supported by the nvs datapath yet`);
          const value = bytesOf(a.value, w.size);
          const mask = bytesOf(a.mask, w.size);
          out.push({ type: 'set', field: w.name, value, mask });
          break;
        }
      }
    }
    return out;
  }

  fromWireActions(actions: readonly WireAction[]): DpAction[] {
    const out: DpAction[] = [];
    for (const a of actions) {
      switch (a.type) {
        case 'output':
        case 'pop_vlan':
        case 'truncate':
          out.push(a);
          break;
        case 'push_vlan':
          out.push({ type: 'push_vlan', tpid: a.tpid, tci: a.tci | 0x1000 });
          break;
        case 'userspace': {
          const c = this.cookies.get(a.cookie);
          if (c) out.push({ type: 'userspace', controller: c });
          break;
        }
        case 'set': {
          const [header, field] = HEADER_OF_WIRE[a.field];
          const size = a.value.length;
          const toNum = (b: Uint8Array) => (size > 6 ? numOf(b) : Number(numOf(b)));
          out.push({ type: 'set', header, field, value: toNum(a.value), mask: toNum(a.mask ?? new Uint8Array(size).fill(0xff)) });
          break;
        }
        case 'drop':
          break;
      }
    }
    return out;
  }

  /** The controller metadata behind a userspace cookie (for userspace upcalls). */
  controllerCookie(cookie: bigint): ControllerCookie | undefined {
    return this.cookies.get(cookie);
  }

  private cookieFor(c: ControllerCookie): bigint {
    const k = `${c.reason}|${c.maxLen}|${c.ruleCookie}|${c.controllerId}|${c.tableId}`;
    let id = this.cookieOf.get(k);
    if (id === undefined) {
      id = BigInt(this.cookieOf.size + 1);
      this.cookieOf.set(k, id);
      this.cookies.set(id, c);
    }
    return id;
  }

  /** Installs what it can; then throws the first failure (other than "already installed"). */
  put(flows: readonly DpFlowPut[]): void {
    let error: unknown;
    const requests = [];
    for (const f of flows) {
      try {
        requests.push({ key: this.toWire(f.key), mask: this.toWire(f.mask), actions: this.toWireActions(f.actions), create: !f.modify, modify: f.modify === true });
      } catch (err) {
        error ??= err;
      }
    }
    for (const r of this.dp.flowPut(requests)) if (!r.ok && r.error.code !== 'DP_FLOW_EXISTS') error ??= r.error;
    if (error) throw error;
  }

  del(ids: readonly string[]): void {
    if (ids.length === 0) return;
    const size = this.dp.keys.size;
    this.dp.flowDel(
      ids.map((id) => {
        const b = Buffer.from(id, 'latin1');
        return { key: this.dp.keys.decode(b.subarray(0, size)), mask: this.dp.keys.decode(b.subarray(size)) };
      }),
    );
  }

  dump(): DpFlowEntry[] {
    return this.dp.flowDump().map((f) => ({
      key: fromWireKey(f.key),
      mask: fromWireKey(f.mask),
      id: this.wireId(f.key, f.mask),
      actions: this.fromWireActions(f.actions),
      packets: f.stats.packets,
      bytes: f.stats.bytes,
      usedAt: f.stats.usedMs,
      tcpFlags: f.stats.tcpFlags,
    }));
  }

  dumpStats(): Array<Pick<DpFlowEntry, 'id' | 'packets' | 'bytes' | 'usedAt'>> {
    return this.dp.flowDump().map((f) => ({ id: this.wireId(f.key, f.mask), packets: f.stats.packets, bytes: f.stats.bytes, usedAt: f.stats.usedMs }));
  }

  execute(inPort: number, packet: Uint8Array, actions: readonly DpAction[]): void {
    this.dp.execute(inPort, packet, this.toWireActions(actions));
  }

  private upcall(u: Upcall): DpUpcall {
    return { inPort: u.inPort, key: fromWireKey(u.key), packet: u.packet };
  }

  onUpcalls(handler: (batch: DpUpcall[]) => void, onError: (err: unknown) => void): void {
    this.dp.onUpcalls((batch) => handler(batch.filter((u) => u.reason === 'miss').map((u) => this.upcall(u))), onError);
  }

  inject(port: number, packets: readonly Uint8Array[]): void {
    this.dp.inject(port, packets);
  }

  drain(port: number, max: number): Uint8Array[] {
    return this.dp.drain(port, max);
  }

  stats(): DpStats {
    const s = this.dp.stats();
    return {
      flows: s.flows,
      lostUpcalls: s.lostUpcalls + s.bridgeLostUpcalls,
      threads: s.threads.map(({ id, core, ports, ...counters }) => ({ id, core, ports, counters })),
      ports: s.ports.map((p) => ({
        no: p.portNo,
        name: p.name,
        rxPackets: p.rxPackets,
        rxBytes: p.rxBytes,
        rxDropped: p.rxDropped,
        txPackets: p.txPackets,
        txBytes: p.txBytes,
        txDropped: p.txDropped,
      })),
    };
  }

  now(): number {
    return Date.now();
  }

  close(): void {
    this.dp.offUpcalls();
    this.dp.close();
  }
}
