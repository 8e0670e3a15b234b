/**
 * The Dpif over nvs's Rust datapath (@nvs/datapath): the one place where
 * the slow path's actions (ofproto's DpAction, with header/field names and
 * controller metadata) are turned into the datapath's (wire field names,
 * integer cookies) and back. Keys need no turning: the slow path holds the
 * datapath's own FlowKey, written and read by its one codec (`dp.keys`).
 * Internal ports (each bridge's LOCAL port too) open as the datapath's tap
 * ports when `internalPorts` is 'tap' (nvs-vswitchd decides: see
 * internal-ports.ts), else as dummy ports; dummy interfaces are always
 * dummy ports, tap interfaces always tap ports, system interfaces (and those
 * of no type) always system ports on an existing device, afxdp interfaces
 * AF_XDP ports on one (no fallback: a user
 * who asks for a kernel device gets it or an error saying why not).
 *
 * Controller-bound `userspace` actions carry a small integer cookie here;
 * the cookie → metadata table lives in this object.
 *
 * Every flow, execute and upcall batch crosses as one Buffer of records
 * (@nvs/datapath raw.ts): a megaflow's identity is its masked key and mask
 * bytes as a latin1 string, exactly the bytes of its put and delete
 * records, and an upcall's key stays in that encoding until xlate reads it
 * straight into Flow words (KeyFlowReader, keyflow.ts).
 */
import {
  Datapath,
  decodeActions,
  encodeActions,
  forEachFlow,
  forEachUpcall,
  PUT_CREATE,
  PUT_MODIFY,
  readCounter,
  readStats,
  RecordWriter,
  writeExecuteRecord,
  writePutRecord,
  type DpAction as WireAction,
  type SetFieldName,
} from '@nvs/datapath';
import type { ControllerCookie, DpAction, DpFlowKey, DpSetField, DpSetHeader, Flow } from '@nvs/ofproto';
import { KeyFlowReader } from './keyflow.ts';
import type { DeviceState, PortBackend, PortType } from './bridge.ts';
import type { Dpif, DpifOptions, DpExecute, DpFlowEntry, DpFlowPut, DpStats, DpUpcall } from './dpif.ts';

/** Thrown when a translation produced an action the datapath cannot carry. */
export class DpifError extends Error {
  constructor(
    readonly code: 'DPIF_UNSUPPORTED_ACTION',
    message: string,
  ) {
    super(message);
    this.name = 'DpifError';
  }
}

function bytesOf(v: number | bigint, size: number): Uint8Array {
  const out = new Uint8Array(size);
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
  let v = 0n;
  for (const x of b) v = (v << 8n) | BigInt(x);
  return v;
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

export class NvsDpif implements Dpif {
  private readonly cookies = new Map<bigint, ControllerCookie>();
  private readonly cookieOf = new Map<string, bigint>();
  private readonly reader: KeyFlowReader;
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
    this.reader = new KeyFlowReader(dp.keys);
  }

  static open(o: DpifOptions = {}): NvsDpif {
    const cores = o.cores && o.cores.length > 0 ? o.cores : undefined;
    return new NvsDpif(Datapath.open({ threads: cores ? cores.length : (o.threads ?? 1), cores }), o.internalPorts ?? 'dummy');
  }

  setPmdCores(cores: readonly number[]): void {
    this.dp.setPmdCores(cores);
  }

  addPort(name: string, type: PortType, options: Record<string, string> = {}, portNo?: number): number {
    if (type === 'patch') throw new Error(`${name}: a patch port has no datapath port`);
    const backend = type === 'internal' ? this.internalPorts : type === 'dummy-internal' ? 'dummy' : type;
    const no = this.dp.addPort(name, backend, backend === 'dummy' || backend === 'tap' ? {} : options, portNo);
    this.backends.set(no, backend);
    return no;
  }

  portDevice(no: number): { backend: PortBackend; mac?: string; status?: Record<string, string> } {
    const backend = this.backends.get(no) ?? 'dummy';
    if (backend === 'dummy') return { backend };
    const status = this.dp.portStatus(no);
    return Object.keys(status).length > 0 ? { backend, mac: this.dp.portMac(no), status } : { backend, mac: this.dp.portMac(no) };
  }

  deviceState(no: number): DeviceState | undefined {
    if ((this.backends.get(no) ?? 'dummy') === 'dummy') return undefined;
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
    return this.dp.keys.id(key, mask);
  }

  keyFlow(key: string, ofport: number, into: Flow): Flow {
    return this.reader.toFlow(key, ofport, into);
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
        case 'set_tunnel':
          out.push({ type: 'set_tunnel', id: a.id >>> 0, src: a.src >>> 0, dst: a.dst >>> 0 });
          break;
        case 'userspace':
          out.push({ type: 'userspace', cookie: this.cookieFor(a.controller) });
          break;
        case 'set': {
          const w = wireSetField(a.header, a.field);
          if (!w) throw new DpifError('DPIF_UNSUPPORTED_ACTION', `set(${a.header}(${a.field})) is not supported by the nvs datapath yet`);
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
        case 'set_tunnel':
          // TOS, TTL and UDP port are the port's, not the action's: unknown here.
          out.push({ type: 'set_tunnel', id: a.id, src: a.src, dst: a.dst, tos: 0, ttl: 0, dstPort: 0 });
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
        writePutRecord(w, f.modify ? PUT_MODIFY : PUT_CREATE, f.id ?? this.dp.keys.id(f.key, f.mask), actions);
      } catch (err) {
        error ??= err;
      }
    }
    if (w.count > 0) {
      for (const r of this.dp.flowPut(w.take())) if (r.error.code !== 'DP_FLOW_EXISTS') error ??= r.error;
    }
    if (error) throw error;
  }

  del(ids: readonly string[]): void {
    if (ids.length === 0) return;
    const n = 2 * this.dp.keys.size;
    const b = Buffer.allocUnsafe(ids.length * n);
    for (let i = 0; i < ids.length; i++) b.write(ids[i], i * n, n, 'latin1');
    this.dp.flowDel(b);
  }

  dump(): DpFlowEntry[] {
    const b = this.dp.flowDump(true);
    const { keys } = this.dp;
    const out: DpFlowEntry[] = [];
    forEachFlow(b, keys.size, (f) => {
      const s = readStats(b, f.statsOffset);
      out.push({
        key: keys.decode(b, f.keyOffset),
        mask: keys.decode(b, f.keyOffset + keys.size),
        id: b.toString('latin1', f.keyOffset, f.statsOffset),
        actions: this.fromWireActions(decodeActions(b.subarray(f.actionsOffset, f.actionsOffset + f.actionsLength))),
        packets: s.packets,
        bytes: s.bytes,
        usedAt: s.usedMs,
        tcpFlags: s.tcpFlags,
      });
    });
    return out;
  }

  dumpStats(): Array<Pick<DpFlowEntry, 'id' | 'packets' | 'bytes' | 'usedAt'>> {
    const b = this.dp.flowDump(false);
    const out: Array<Pick<DpFlowEntry, 'id' | 'packets' | 'bytes' | 'usedAt'>> = [];
    forEachFlow(b, this.dp.keys.size, (f) => {
      const o = f.statsOffset;
      out.push({ id: b.toString('latin1', f.keyOffset, o), packets: readCounter(b, o), bytes: readCounter(b, o + 8), usedAt: b.readDoubleLE(o + 16) });
    });
    return out;
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
    if (w.count > 0) for (const r of this.dp.execute(w.take())) failed.push({ index: sent[r.index], error: r.error });
    return failed;
  }

  onUpcalls(handler: (batch: DpUpcall[]) => void, onError: (err: unknown) => void): void {
    const size = this.dp.keys.size;
    this.dp.onUpcalls((b) => {
      const batch: DpUpcall[] = [];
      forEachUpcall(b, size, (u) => {
        const key = b.toString('latin1', u.keyOffset, u.keyOffset + size);
        const packet = b.subarray(u.packetOffset, u.packetOffset + u.packetLength);
        if (u.reason === 0) batch.push({ reason: 'miss', inPort: u.inPort, key, packet });
        else batch.push({ reason: 'userspace', controller: this.cookies.get(u.cookie), inPort: u.inPort, key, packet });
      });
      handler(batch);
    }, onError);
  }

  extractKey(packet: Uint8Array, inPort: number): DpFlowKey {
    return this.dp.extractKey(packet, inPort);
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
        error: p.error,
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
