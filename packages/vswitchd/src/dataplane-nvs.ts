/**
 * The Dataplane over nvs's Rust datapath (@nvs/datapath): the one place
 * where the slow path's vocabulary (ofproto's DpFlowKey with snake_case
 * numbers and bigints, DpAction with header/field names) is turned into the
 * datapath's (camelCase FlowKey with byte arrays, DpAction with wire field
 * names) and back. Internal ports (each bridge's LOCAL port too) open as
 * the datapath's tap ports when `internalPorts` is 'tap' (nvs-vswitchd
 * decides: see internal-ports.ts), else as dummy ports; dummy interfaces are
 * always dummy ports, tap interfaces always tap ports (no fallback: a user
 * who asks for a kernel device gets it or an error saying why not).
 *
 * Controller-bound `userspace` actions carry a small integer cookie here;
 * the cookie → metadata table lives in this object.
 *
 * The hot calls (upcalls, puts, executes, deletes, stats dumps) use the
 * datapath's raw record forms: keys go straight between DpFlowKey and the
 * binary layout (KeyBytes below), a megaflow's identity is its masked key
 * and mask bytes as a latin1 string, and each batch is one addon call.
 */
import { endianness } from 'node:os';
import {
  Datapath,
  encodeActions,
  forEachUpcall,
  PUT_CREATE,
  PUT_MODIFY,
  readCounter,
  RecordWriter,
  STATS_RECORD,
  writeExecuteRecord,
  writePutRecord,
  type DpAction as WireAction,
  type FlowKey as WireKey,
  type SetFieldName,
} from '@nvs/datapath';
import { newDpFlowKey, Slot, type ControllerCookie, type DpAction, type DpFlowKey, type DpSetField, type DpSetHeader, type Flow } from '@nvs/ofproto';
import { KEY_SLOTS, type KeySlotKind } from './keyflow.ts';
import type { DeviceState, PortBackend, PortType } from './bridge.ts';
import type { Dataplane, DpExecute, DpFlowEntry, DpFlowPut, DpStats, DpUpcall } from './dataplane.ts';
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

interface KeyField {
  name: keyof DpFlowKey;
  offset: number;
  size: number;
  /** num: unsigned integer (little-endian); mac: 6 bytes ↔ 48-bit number; wide: 16 bytes ↔ bigint. */
  kind: 'num' | 'mac' | 'wide';
}

/** A key field that fills Flow words (KEY_SLOTS), with where it sits in the encoded key. */
interface FlowField {
  offset: number;
  size: number;
  slot: number;
  kind: KeySlotKind;
}

/**
 * DpFlowKey ↔ the datapath's binary key, directly (no intermediate object),
 * with the layout the addon publishes. Integers are little-endian: the
 * layout is machine order and nvs builds for little-endian targets only.
 */
export class KeyBytes {
  readonly size: number;
  private readonly fields: KeyField[];
  private readonly flowFields: FlowField[];
  private readonly scratch: Buffer;

  constructor(layout: readonly { name: string; offset: number; size: number; kind: string }[]) {
    if (endianness() !== 'LE') throw new Error('nvs-vswitchd needs a little-endian machine (the datapath key layout is machine order)');
    const names = new Set(Object.keys(newDpFlowKey()));
    this.fields = layout
      .filter((f) => f.kind !== 'pad')
      .map((f) => {
        if (!names.has(f.name)) throw new Error(`datapath key field ${f.name} is unknown to vswitchd: rebuild the addon and vswitchd together`);
        const kind = f.kind === 'uint' ? 'num' : f.size === 6 ? 'mac' : 'wide';
        return { name: f.name as keyof DpFlowKey, offset: f.offset, size: f.size, kind };
      });
    this.size = layout.reduce((end, f) => Math.max(end, f.offset + f.size), 0);
    this.scratch = Buffer.alloc(2 * this.size);
    this.flowFields = KEY_SLOTS.map(([name, slot, kind]) => {
      const f = this.fields.find((x) => x.name === name);
      if (!f) throw new Error(`the datapath key has no field ${name}: rebuild the addon and vswitchd together`);
      return { offset: f.offset, size: f.size, slot, kind };
    });
  }

  /**
   * The Flow of an encoded key (as `flowFromKey` makes from a decoded one),
   * written over `into`, without decoding the key into an object first.
   */
  toFlow(key: string, ofport: number, into: Flow): Flow {
    const b = this.scratch;
    b.write(key, 0, this.size, 'latin1');
    into.fill(0);
    into[Slot.IN_PORT] = ofport;
    for (const f of this.flowFields) {
      const o = f.offset;
      if (f.kind === 'word') into[f.slot] = f.size === 1 ? b[o] : f.size === 2 ? b[o] | (b[o + 1] << 8) : b.readUInt32LE(o);
      else if (f.kind === 'mac') {
        into[f.slot] = (b[o] << 8) | b[o + 1];
        into[f.slot + 1] = b.readUInt32BE(o + 2);
      } else for (let i = 0; i < 4; i++) into[f.slot + i] = b.readUInt32BE(o + 4 * i);
    }
    return into;
  }

  /** Writes `k` at `off` (the `size` bytes there must be zero). */
  write(k: DpFlowKey, b: Buffer, off: number): void {
    for (const f of this.fields) {
      const o = off + f.offset;
      const v = k[f.name];
      if (f.kind === 'num') {
        const n = (v as number) >>> 0;
        if (n === 0) continue;
        b[o] = n;
        if (f.size > 1) b[o + 1] = n >>> 8;
        if (f.size > 2) {
          b[o + 2] = n >>> 16;
          b[o + 3] = n >>> 24;
        }
      } else if (f.kind === 'mac') {
        const n = v as number;
        if (n === 0) continue;
        const hi = Math.floor(n / 0x1_0000_0000);
        b[o] = hi >>> 8;
        b[o + 1] = hi;
        b.writeUInt32BE(n >>> 0, o + 2);
      } else {
        const x = BigInt(v);
        if (x === 0n) continue;
        b.writeBigUInt64BE(BigInt.asUintN(64, x >> 64n), o);
        b.writeBigUInt64BE(BigInt.asUintN(64, x), o + 8);
      }
    }
  }

  /** The identity of a megaflow: masked key bytes then mask bytes, as a latin1 string. */
  id(key: DpFlowKey, mask: DpFlowKey): string {
    const b = this.scratch;
    const n = this.size;
    b.fill(0);
    this.write(key, b, 0);
    this.write(mask, b, n);
    for (let i = 0; i < n; i++) b[i] &= b[n + i];
    return b.toString('latin1', 0, 2 * n);
  }
}

export class NvsDataplane implements Dataplane {
  private readonly cookies = new Map<bigint, ControllerCookie>();
  private readonly cookieOf = new Map<string, bigint>();
  private readonly kb: KeyBytes;
  /** Encoded actions per action list (a put and an execute of one upcall share the list). */
  private readonly encoded = new WeakMap<readonly DpAction[], Buffer>();
  /** Encoded output-only action lists (most of NORMAL's), by their port list. */
  private readonly outputs = new Map<string, Buffer>();
  private readonly records = new RecordWriter();

  /** The back end each open port was opened with. */
  private readonly backends = new Map<number, PortBackend>();

  private constructor(
    readonly dp: Datapath,
    private readonly internalPorts: PortBackend,
  ) {
    this.kb = new KeyBytes(dp.keys.layout);
  }

  static open(o: DataplaneOptions = {}): NvsDataplane {
    const cores = o.cores && o.cores.length > 0 ? o.cores : undefined;
    return new NvsDataplane(Datapath.open({ threads: cores ? cores.length : 1, cores }), o.internalPorts ?? 'dummy');
  }

  setPmdCores(cores: readonly number[]): void {
    this.dp.setPmdCores(cores);
  }

  addPort(name: string, type: PortType): number {
    const backend = type === 'internal' ? this.internalPorts : type === 'tap' ? 'tap' : 'dummy';
    const no = this.dp.addPort(name, backend);
    this.backends.set(no, backend);
    return no;
  }

  portDevice(no: number): { backend: PortBackend; mac?: string } {
    const backend = this.backends.get(no) ?? 'dummy';
    return backend === 'tap' ? { backend, mac: this.dp.portMac(no) } : { backend };
  }

  deviceState(no: number): DeviceState | undefined {
    if (this.backends.get(no) !== 'tap') return undefined;
    try {
      return this.dp.portDeviceState(no);
    } catch {
      // Gone (deleted from outside) or out of reach (another namespace without CAP_SYS_ADMIN): unknown.
      return undefined;
    }
  }

  setDeviceMtu(no: number, mtu: number): void {
    this.dp.setPortMtu(no, mtu);
  }

  removePort(no: number): void {
    this.dp.removePort(no);
    this.backends.delete(no);
  }

  flowId(key: DpFlowKey, mask: DpFlowKey): string {
    return this.kb.id(key, mask);
  }

  keyFlow(key: string, ofport: number, into: Flow): Flow {
    return this.kb.toFlow(key, ofport, into);
  }

  private wireId(key: WireKey, mask: WireKey): string {
    return this.dp.keys.encode(key).toString('latin1') + this.dp.keys.encode(mask).toString('latin1');
  }

  /** The encoded form of an action list (cached per list object). */
  private encode(actions: readonly DpAction[]): Buffer {
    let e = this.encoded.get(actions);
    if (e) return e;
    let ports = '';
    for (const a of actions) {
      if (a.type !== 'output') {
        ports = '';
        break;
      }
      ports += `${a.port},`;
    }
    if (ports !== '' || actions.length === 0) {
      e = this.outputs.get(ports);
      if (!e) {
        if (this.outputs.size >= 4096) this.outputs.clear();
        this.outputs.set(ports, (e = encodeActions(this.toWireActions(actions))));
      }
    } else {
      e = encodeActions(this.toWireActions(actions));
    }
    this.encoded.set(actions, e);
    return e;
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

  /** Installs what it can, in one batch; then throws the first failure (other than "already installed"). */
  put(flows: readonly DpFlowPut[]): void {
    let error: unknown;
    const w = this.records;
    w.reset();
    for (const f of flows) {
      try {
        const actions = this.encode(f.actions);
        writePutRecord(w, f.modify ? PUT_MODIFY : PUT_CREATE, f.id ?? this.kb.id(f.key, f.mask), actions);
      } catch (err) {
        error ??= err;
      }
    }
    if (w.count > 0) {
      for (const r of this.dp.flowPutRaw(w.take())) if (r.error.code !== 'DP_FLOW_EXISTS') error ??= r.error;
    }
    if (error) throw error;
  }

  del(ids: readonly string[]): void {
    if (ids.length === 0) return;
    const n = 2 * this.kb.size;
    const b = Buffer.allocUnsafe(ids.length * n);
    for (let i = 0; i < ids.length; i++) b.write(ids[i], i * n, n, 'latin1');
    this.dp.flowDelRaw(b);
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
    const b = this.dp.flowDumpStatsRaw();
    const km = 2 * this.kb.size;
    const rec = km + STATS_RECORD;
    const out = new Array<Pick<DpFlowEntry, 'id' | 'packets' | 'bytes' | 'usedAt'>>(Math.floor(b.length / rec));
    for (let i = 0, o = 0; o + rec <= b.length; i++, o += rec) {
      out[i] = { id: b.toString('latin1', o, o + km), packets: readCounter(b, o + km), bytes: readCounter(b, o + km + 8), usedAt: b.readDoubleLE(o + km + 16) };
    }
    return out;
  }

  execute(inPort: number, packet: Uint8Array, actions: readonly DpAction[]): void {
    this.dp.execute(inPort, packet, this.toWireActions(actions));
  }

  executeBatch(items: readonly DpExecute[]): Array<{ index: number; error: Error }> {
    const failed: Array<{ index: number; error: Error }> = [];
    const w = this.records;
    w.reset();
    const sent: number[] = [];
    for (let i = 0; i < items.length; i++) {
      const e = items[i];
      try {
        writeExecuteRecord(w, e.inPort, e.packet, this.encode(e.actions));
        sent.push(i);
      } catch (err) {
        failed.push({ index: i, error: err as Error });
      }
    }
    if (w.count > 0) for (const r of this.dp.executeRaw(w.take())) failed.push({ index: sent[r.index], error: r.error });
    return failed;
  }

  onUpcalls(handler: (batch: DpUpcall[]) => void, onError: (err: unknown) => void): void {
    const size = this.kb.size;
    this.dp.onUpcallsRaw((b) => {
      const batch: DpUpcall[] = [];
      forEachUpcall(b, size, (u) => {
        if (u.reason === 0) batch.push({ inPort: u.inPort, key: b.toString('latin1', u.keyOffset, u.keyOffset + size), packet: b.subarray(u.packetOffset, u.packetOffset + u.packetLength) });
      });
      handler(batch);
    }, onError);
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
      retired: { ...s.retired },
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
