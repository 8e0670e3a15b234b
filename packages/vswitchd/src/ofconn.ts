/**
 * One OpenFlow connection to a bridge (today: a client of
 * `<rundir>/<bridge>.mgmt`, such as the real `ovs-ofctl`), served from the
 * same FlowService as nvs-ofctl's JSON-RPC requests.
 *
 * Framing: messages are cut by their header's length; a length below the
 * header size cannot be resynchronised, so the connection is closed. A
 * message the codec or the tables refuse is answered with an OFPT_ERROR
 * (its type and code, and the request itself, as OVS sends it) and the connection carries on.
 */
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { type FlowMod, mustField, newMatch, type Rule, setMatchField } from '@nvs/ofproto';
import {
  type AsyncConfig,
  BadRequest,
  BundleCtrl,
  BundleFailed,
  NO_BUFFER,
  decode,
  encode,
  errorForVersion,
  ErrType,
  FlowModFailed,
  frameLength,
  OfError,
  OFP10_VERSION,
  OFP13_VERSION,
  OFP14_VERSION,
  OFP_HEADER_LEN,
  type Role,
  RoleRequestFailed,
  SUPPORTED_VERSIONS,
  type FlowSelect,
  type FlowStat,
  flowModFlagBits,
  type OfBody,
  type OfMessage,
  type PhyPort,
  tableFeatures,
  type TableFeatures,
  Writer,
  writeTableFeatures,
  writeFlowStat,
} from '@nvs/openflow';
import { FlowService, FlowServiceError } from './flow-service.ts';
import { type BridgePort, OFPP_LOCAL } from './bridge.ts';

/** Versions this switch negotiates (HELLO bitmap): 1.0, 1.3, 1.4, 1.5. */
const VERSIONS = [...SUPPORTED_VERSIONS];
/** Capabilities: flow, table, port and queue stats, and (1.0) ARP match on IP or (1.1+) group stats, as OVS reports. */
const CAPABILITIES_OF10 = 0xc7;
const CAPABILITIES_OF11 = 0x4f;
/** OpenFlow 1.4+ capability: bundles. */
const OFPC14_BUNDLES = 1 << 9;
/** OpenFlow 1.0 actions bitmap: OUTPUT through ENQUEUE. */
const OF10_ACTIONS = 0xfff;
const N_TABLES = 254;
/** What a table reports as its capacity (OVS: 1,000,000). */
const TABLE_MAX_ENTRIES = 1_000_000;
const OFPP_NONE = 0xffff;
/** OpenFlow 1.1+ port state bit: the port can forward (1.0 has no such bit). */
const OFPPS_LIVE = 4;
/** Bytes of the offending request an error carries: all of it, as OVS does, within one message's 64 kB. */
const ERROR_DATA = 0xffff - 12;
/** Most flow mods applied in one commit. */
const MAX_BATCH = 50_000;
/** Flow stats per reply stay under OpenFlow's 64 kB message limit. */
const REPLY_BUDGET = 60_000;

/** Where connections register for the switch's own messages and role changes (ConnMgr; declared here so the two modules do not import each other). */
export interface ConnRegistry {
  add(bridge: string, conn: OfConnection): void;
  remove(bridge: string, conn: OfConnection): void;
  acceptGeneration(bridge: string, id: bigint): boolean;
  generation(bridge: string): bigint | null;
  demoteMasters(bridge: string, master: OfConnection): void;
}

export interface OfConnOptions {
  bridge: string;
  service: FlowService;
  log: Logger;
  now: () => number;
  /** Where the connection registers for the switch's own messages (packet-ins). */
  connmgr?: ConnRegistry;
  /**
   * 'service' (`<bridge>.mgmt`, as OVS's punix: connections) takes no
   * asynchronous messages until it sets a miss_send_len; 'controller' (the
   * Bridge's controllers) takes them from the start.
   */
  kind?: 'service' | 'controller';
  /** Called when the peer changes its role (Controller.role is written back). */
  roleChanged?: () => void;
}

/** A packet for the controller as the datapath sent it up (the `controller` action's cookie and the packet then). */
export interface PacketInEvent {
  readonly inPort: number;
  /** Reason as the datapath cookie numbers it (ofproto's REASON_CODES: 6 is a table-miss rule's CONTROLLER). */
  readonly reason: number;
  readonly tableId: number;
  readonly cookie: bigint;
  readonly maxLen: number;
  readonly controllerId: number;
  readonly packet: Uint8Array;
}

/** Packet-in reasons on the wire: no_match 0, action 1, invalid_ttl 2, (1.4+) action_set 3, group 4, packet_out 5. */
const EXPLICIT_MISS = 6;

/**
 * OVS's default async config: a master (or equal) takes packet-ins of every
 * reason but invalid_ttl, port status, and flow-removed of the reasons its
 * version has; a slave only port status.
 */
function defaultAsync(version: number): AsyncConfig {
  const flowRemoved = version >= OFP14_VERSION ? 0x3f : version === OFP13_VERSION ? 0xf : 0x7;
  return { packetIn: [0x3b, 0], portStatus: [0x7, 0x7], flowRemoved: [flowRemoved, 0] };
}

function macNumber(mac: string): bigint {
  return BigInt(`0x${mac.replace(/:/g, '') || '0'}`);
}

export class OfConnection {
  private pending: Uint8Array = new Uint8Array(0);
  private version = 0;
  /** Without NXT_FLOW_MOD_TABLE_ID a flow mod's command has no table byte: add goes to table 0, the rest to every table. */
  private tableIdInFlowMods = false;
  /** Flow mods received but not yet applied, with their bytes for an error reply. */
  private queued: { fm: FlowMod; raw: Uint8Array }[] = [];
  private flushTimer: NodeJS.Timeout | undefined;
  /** A service connection gets no packet-ins until it sets one (OVS: 0 for service connections; 128 for controllers). */
  private missSendLen: number;
  private packetInFormat: 'standard' | 'nxt' | 'nxt2' = 'standard';
  /** Role (OFPT_ROLE_REQUEST / NXT_ROLE_REQUEST): a slave may not change the tables and gets no packet-ins. */
  private role: Exclude<Role, 'nochange'> = 'equal';
  private async: AsyncConfig = defaultAsync(OFP10_VERSION);
  /** OpenFlow 1.0's flow format (NXT_SET_FLOW_FORMAT): how flow-removed matches are written to a 1.0 peer. */
  private flowFormat: 'of10' | 'nxm' = 'of10';
  private readonly controllerId = 0;
  private configFlags = 0;
  /** Open (or closed, not yet committed) bundles by id: their flags and flow mods in order. */
  private readonly bundles = new Map<number, { flags: number; closed: boolean; mods: FlowMod[] }>();

  constructor(
    private readonly socket: Socket,
    private readonly o: OfConnOptions,
  ) {
    this.missSendLen = o.kind === 'controller' ? 128 : 0;
    this.send({ type: 'hello', versions: VERSIONS, version: Math.max(...VERSIONS), xid: 0 });
    o.connmgr?.add(o.bridge, this);
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', (err) => this.o.log.debug({ err: err.message }, 'openflow connection error'));
    socket.on('close', () => {
      clearTimeout(this.flushTimer);
      this.flushFlowMods();
      // Bundles not committed die with their connection.
      this.bundles.clear();
      o.connmgr?.remove(o.bridge, this);
    });
  }

  private send(m: OfMessage): void {
    this.socket.write(encode(m));
  }

  private receive(chunk: Uint8Array): void {
    const buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    let at = 0;
    while (!this.socket.destroyed) {
      const len = frameLength(buf.subarray(at));
      if (len === null || buf.length - at < Math.max(len, OFP_HEADER_LEN)) break;
      if (len < OFP_HEADER_LEN) {
        this.o.log.warn({ bridge: this.o.bridge, length: len }, 'openflow message shorter than its header: closing');
        this.socket.destroy();
        return;
      }
      const raw = buf.subarray(at, at + len);
      at += len;
      this.handleRaw(raw);
    }
    this.pending = buf.slice(at);
    // Flow mods still queued are applied once the peer pauses (or sends anything else, or the batch is full).
    if (this.queued.length >= MAX_BATCH) this.flushFlowMods();
    clearTimeout(this.flushTimer);
    if (this.queued.length) this.flushTimer = setTimeout(() => this.flushFlowMods(), 1);
  }

  private handleRaw(raw: Uint8Array): void {
    try {
      const m = decode(raw);
      if (this.role === 'slave' && ['flow_mod', 'packet_out', 'bundle_control', 'bundle_add'].includes(m.type)) {
        throw new OfError(ErrType.BAD_REQUEST, BadRequest.IS_SLAVE, `${m.type}: this connection is a slave`);
      }
      if (m.type === 'flow_mod' && this.version !== 0) {
        // A modify or delete limited to rules that output to a group selects nothing: nvs has no groups.
        if (m.outGroup !== null) return;
        const tableGiven = m.format === 'oxm' || this.tableIdInFlowMods;
        const fm = tableGiven ? m.flowMod : { ...m.flowMod, table: null };
        if (m.format === 'oxm' && (fm.command === 'modify' || fm.command === 'modify_strict') && fm.cookieMask === 0n) {
          // It must see the rules as the flow mods before it left them.
          this.flushFlowMods();
          this.queued.push(...this.keepingCookies(fm).map((one) => ({ fm: one, raw: raw.slice() })));
          return;
        }
        this.queued.push({ fm, raw: raw.slice() });
        return;
      }
      // Whatever follows flow mods sees them applied (a barrier, a dump).
      this.flushFlowMods();
      this.handle(m);
    } catch (err) {
      this.refuse(raw, err);
    }
  }

  private refuse(raw: Uint8Array, err: unknown): void {
    const xid = new DataView(raw.buffer, raw.byteOffset).getUint32(4);
    const e = this.toOfError(err);
    this.o.log.debug({ bridge: this.o.bridge, err: e.message }, 'openflow request refused');
    // A message of a version not spoken here is answered in its own version, as OVS does.
    const badVersion = e.errType === ErrType.BAD_REQUEST && e.code === BadRequest.BAD_VERSION;
    const version = badVersion ? raw[0] : this.version || Math.min(raw[0], Math.max(...VERSIONS));
    this.send({ type: 'error', ...errorForVersion(version, e.errType, e.code), data: raw.slice(0, ERROR_DATA), version, xid });
    if (e.errType === ErrType.HELLO_FAILED) this.socket.end();
  }

  /**
   * Applies the flow mods that arrived together as one commit (one
   * revalidation and one save for the lot, which is what makes `add-flows`
   * of 100,000 rules fast). Each OpenFlow flow mod stands alone, so when the
   * batch is refused (nothing of it applied) they are applied one by one and
   * only the refused ones get an error.
   */
  private flushFlowMods(): void {
    clearTimeout(this.flushTimer);
    const batch = this.queued;
    if (batch.length === 0) return;
    this.queued = [];
    try {
      this.o.service.commit(this.o.bridge, batch.map((q) => q.fm));
      return;
    } catch (err) {
      if (batch.length === 1) return this.refuse(batch[0].raw, err);
    }
    for (const q of batch) {
      try {
        this.o.service.commit(this.o.bridge, [q.fm]);
      } catch (err) {
        this.refuse(q.raw, err);
      }
    }
  }

  /**
   * An OpenFlow 1.1+ modify without a cookie mask leaves each rule's cookie
   * as it is (OVS), where ofproto's modify gives the rules the flow mod's
   * cookie: so it becomes one modify per cookie among the rules it selects,
   * each selecting exactly that cookie. Selecting none, it does nothing:
   * from OpenFlow 1.2 on a modify adds no rule (OVS).
   */
  private keepingCookies(fm: FlowMod): FlowMod[] {
    const strict = fm.command === 'modify_strict';
    const rules = this.o.service
      .dump(this.o.bridge, { table: fm.table, match: fm.match })
      .filter((r) => !strict || (r.match.priority === fm.match.priority && r.match.value.every((v, i) => v === fm.match.value[i] && r.match.mask[i] === fm.match.mask[i])));
    const cookies = [...new Set(rules.map((r) => r.cookie))];
    return cookies.map((cookie) => ({ ...fm, cookie, cookieMask: 0xffff_ffff_ffff_ffffn }));
  }

  private toOfError(err: unknown): OfError {
    if (err instanceof OfError) return err;
    if (err instanceof FlowServiceError && err.code === 'FLOW_NO_SUCH_PORT') return new OfError(ErrType.BAD_REQUEST, BadRequest.BAD_PORT, err.message);
    if (err instanceof FlowServiceError) {
      // OFPFMFC_OVERLAP for check_overlap, OFPFMFC_EPERM otherwise.
      return new OfError(ErrType.FLOW_MOD_FAILED, /overlap/i.test(err.message) ? FlowModFailed.OVERLAP : FlowModFailed.EPERM, err.message);
    }
    // A bug of ours must not take the bridge down: the peer gets OFPBRC_EPERM and the log the cause.
    this.o.log.error({ bridge: this.o.bridge, err: (err as Error).stack }, 'openflow request failed');
    return new OfError(ErrType.BAD_REQUEST, 5, (err as Error).message);
  }

  private reply(req: OfMessage, body: OfBody): void {
    this.send({ ...body, version: this.version, xid: req.xid } as OfMessage);
  }

  private handle(m: OfMessage): void {
    if (m.type === 'hello') {
      const common = VERSIONS.filter((v) => m.versions.includes(v));
      if (common.length === 0) throw new OfError(ErrType.HELLO_FAILED, 0, `no common OpenFlow version (peer offers ${m.versions.join(', ')})`);
      this.version = Math.max(...common);
      this.async = defaultAsync(this.version);
      return;
    }
    if (this.version === 0) throw new OfError(ErrType.BAD_REQUEST, 0, 'message before HELLO');
    switch (m.type) {
      case 'echo_request':
        return this.reply(m, { type: 'echo_reply', data: m.data });
      case 'echo_reply':
      case 'barrier_reply':
        return;
      case 'error':
        this.o.log.info({ bridge: this.o.bridge, errType: m.errType, code: m.code }, 'openflow peer sent an error');
        return;
      case 'features_request':
        return this.reply(m, this.features());
      case 'get_config_request':
        return this.reply(m, { type: 'get_config_reply', flags: this.configFlags, missSendLen: this.missSendLen });
      case 'set_config':
        this.configFlags = m.flags;
        this.missSendLen = m.missSendLen;
        return;
      case 'barrier_request':
        // Requests are served in order and synchronously, so everything before the barrier is done.
        return this.reply(m, { type: 'barrier_reply' });
      case 'set_flow_format':
        this.flowFormat = m.format;
        return;
      case 'role_request':
        return this.roleRequest(m);
      case 'set_async':
        this.async = m.config;
        return;
      case 'get_async_request':
        return this.reply(m, { type: 'get_async_reply', nicira: false, config: this.async });
      case 'set_packet_in_format':
        // NXT_PACKET_IN (the 1.0-era Nicira format) is not spoken: the peer then keeps the standard one.
        if (m.format === 'nxt') throw new OfError(ErrType.BAD_REQUEST, BadRequest.EPERM, 'NXT_PACKET_IN format is not supported (use NXT_PACKET_IN2)');
        this.packetInFormat = m.format;
        return;
      case 'packet_out':
        if (m.bufferId !== NO_BUFFER) throw new OfError(ErrType.BAD_REQUEST, BadRequest.BUFFER_UNKNOWN, `buffer ${m.bufferId}: nvs buffers no packets`);
        this.o.service.packetOut(this.o.bridge, m.inPort, m.actions, m.data);
        return;
      case 'bundle_control':
        return this.bundleControl(m);
      case 'bundle_add':
        return this.bundleAdd(m);
      case 'flow_mod_table_id':
        this.tableIdInFlowMods = m.enable;
        return;
      case 'desc_request':
        return this.reply(m, { type: 'desc_reply', mfr: 'nvs', hw: 'nvs', sw: 'nvs', serial: 'None', dp: 'None' });
      case 'table_stats_request':
        return this.reply(m, this.tableStats());
      case 'port_stats_request':
        return this.reply(m, this.portStats(m.portNo));
      case 'table_features_request':
        return this.tableFeatures(m);
      case 'port_desc_request':
        return this.reply(m, { type: 'port_desc_reply', ports: this.phyPorts().filter((p) => m.portNo === OFPP_NONE || p.portNo === m.portNo) });
      case 'flow_stats_request':
        return this.flowStats(m);
      case 'aggregate_request': {
        const rules = this.dumpRules(m);
        const sum = rules.reduce((acc, r) => ({ packets: acc.packets + BigInt(r.packets), bytes: acc.bytes + BigInt(r.bytes) }), { packets: 0n, bytes: 0n });
        return this.reply(m, { type: 'aggregate_reply', ...sum, flows: rules.length });
      }
      default:
        throw new OfError(ErrType.BAD_REQUEST, 1, `${m.type} is not a request here`);
    }
  }

  /**
   * Sends a packet-in when this connection takes it: negotiated, asked for
   * (a service connection only after setting a miss_send_len), addressed to
   * its controller id, and of a reason its async config lets through. The
   * data is cut to the action's max_len; nothing is buffered.
   */
  packetIn(ev: PacketInEvent): boolean {
    if (!this.takesAsync()) return false;
    if (ev.controllerId !== this.controllerId) return false;
    // A table-miss rule's CONTROLLER is "action" to 1.0 peers and "no_match" from 1.3 on; the reasons 1.4
    // added (action_set, group, packet_out) are "action" before it: as OVS reports them.
    let reason = ev.reason === EXPLICIT_MISS ? (this.version === OFP10_VERSION ? 1 : 0) : ev.reason;
    if (reason > 2 && this.version < OFP14_VERSION) reason = 1;
    if (!(this.async.packetIn[this.role === 'slave' ? 1 : 0] & (1 << reason))) return false;
    const match = newMatch(0);
    setMatchField(match, mustField('in_port'), BigInt(ev.inPort), 0xffffn);
    const data = ev.packet.subarray(0, Math.min(ev.packet.length, ev.maxLen));
    const format = this.packetInFormat === 'nxt2' ? 'nxt2' : 'standard';
    this.send({ type: 'packet_in', format, totalLen: ev.packet.length, reason, tableId: ev.tableId, cookie: ev.cookie, match, data, version: this.version, xid: 0 });
    return true;
  }

  /** The role as the Controller table spells it. */
  get dbRole(): 'other' | 'master' | 'slave' {
    return this.role === 'equal' ? 'other' : this.role;
  }

  /** Steps down to slave (another connection became master); a 1.3+ peer is told with a role status, as OVS does. */
  demote(generationId: bigint | null): void {
    if (this.role !== 'master') return;
    this.role = 'slave';
    this.o.roleChanged?.();
    if (this.version >= OFP13_VERSION && !this.socket.destroyed) {
      this.send({ type: 'role_status', role: 'slave', reason: 0, generationId: generationId ?? 0xffff_ffff_ffff_ffffn, version: this.version, xid: 0 });
    }
  }

  /**
   * A role request: 'master' makes every other master of the bridge a
   * slave; master and slave requests carry a generation id that must not go
   * back (else OFPRRFC_STALE); the reply says the role now held.
   */
  private roleRequest(m: OfMessage & { type: 'role_request' | 'role_reply' }): void {
    const mgr = this.o.connmgr;
    if (m.role !== 'nochange') {
      if ((m.role === 'master' || m.role === 'slave') && m.generationId !== null && mgr && !mgr.acceptGeneration(this.o.bridge, m.generationId)) {
        throw new OfError(ErrType.ROLE_REQUEST_FAILED, RoleRequestFailed.STALE, `generation id ${m.generationId} is stale`);
      }
      if (m.role === 'master') mgr?.demoteMasters(this.o.bridge, this);
      if (this.role !== m.role) {
        this.role = m.role;
        this.o.roleChanged?.();
      }
    }
    this.reply(m, { type: 'role_reply', nicira: m.nicira, role: this.role, generationId: m.nicira ? null : (mgr?.generation(this.o.bridge) ?? null) });
  }

  /** Whether asynchronous messages go to this connection (a service connection only once it set a miss_send_len, as in OVS). */
  private takesAsync(): boolean {
    return this.version !== 0 && !this.socket.destroyed && (this.o.kind === 'controller' || this.missSendLen !== 0);
  }

  /** Reports a port added (0), deleted (1) or changed (2), if this connection's async config takes that reason. */
  portStatus(reason: number, port: BridgePort): boolean {
    if (!this.takesAsync() || !(this.async.portStatus[this.role === 'slave' ? 1 : 0] & (1 << reason))) return false;
    this.send({ type: 'port_status', reason, port: this.phyPort(port), version: this.version, xid: 0 });
    return true;
  }

  /** Reports a rule gone that asked for it (send_flow_rem); `reason` as OpenFlow numbers it (idle 0, hard 1, delete 2). */
  flowRemoved(rule: Rule, reason: number, now: number): boolean {
    if (!this.takesAsync() || !(this.async.flowRemoved[this.role === 'slave' ? 1 : 0] & (1 << reason))) return false;
    const age = Math.max(0, now - rule.createdAt);
    const format = this.version === OFP10_VERSION && this.flowFormat === 'nxm' ? 'nxm' : 'standard';
    this.send({
      type: 'flow_removed',
      format,
      cookie: rule.cookie,
      reason,
      tableId: rule.table,
      durationSec: Math.floor(age / 1000),
      durationNsec: (age % 1000) * 1_000_000,
      idleTimeout: rule.idleTimeout,
      hardTimeout: rule.hardTimeout,
      packets: BigInt(rule.packets),
      bytes: BigInt(rule.bytes),
      match: rule.match,
      version: this.version,
      xid: 0,
    });
    return true;
  }

  /**
   * Bundle control: open, close, discard, and commit, which applies every
   * flow mod of the bundle as one commit (all or none), as OpenFlow 1.4's
   * atomic bundles (and OVS's 1.3 extension) require.
   */
  private bundleControl(m: OfMessage & { type: 'bundle_control' }): void {
    const b = this.bundles.get(m.bundleId);
    const fail = (code: number, why: string) => new OfError(ErrType.BUNDLE_FAILED, code, why);
    switch (m.ctrl) {
      case BundleCtrl.OPEN_REQUEST:
        if (b) throw fail(BundleFailed.BUNDLE_EXIST, `bundle ${m.bundleId} is already open`);
        this.bundles.set(m.bundleId, { flags: m.flags, closed: false, mods: [] });
        break;
      case BundleCtrl.CLOSE_REQUEST:
        if (!b) throw fail(BundleFailed.BAD_ID, `no bundle ${m.bundleId}`);
        if (b.closed) throw fail(BundleFailed.BUNDLE_CLOSED, `bundle ${m.bundleId} is already closed`);
        if (b.flags !== m.flags) throw fail(BundleFailed.BAD_FLAGS, `bundle ${m.bundleId} was opened with flags ${b.flags}`);
        b.closed = true;
        break;
      case BundleCtrl.COMMIT_REQUEST:
        if (!b) throw fail(BundleFailed.BAD_ID, `no bundle ${m.bundleId}`);
        if (b.flags !== m.flags) throw fail(BundleFailed.BAD_FLAGS, `bundle ${m.bundleId} was opened with flags ${b.flags}`);
        this.bundles.delete(m.bundleId);
        try {
          if (b.mods.length) this.o.service.commit(this.o.bridge, b.mods);
        } catch (err) {
          this.o.log.debug({ bridge: this.o.bridge, err: (err as Error).message }, 'bundle commit refused');
          throw fail(BundleFailed.MSG_FAILED, `bundle ${m.bundleId}: ${(err as Error).message}`);
        }
        break;
      case BundleCtrl.DISCARD_REQUEST:
        if (!b) throw fail(BundleFailed.BAD_ID, `no bundle ${m.bundleId}`);
        this.bundles.delete(m.bundleId);
        break;
      default:
        throw fail(BundleFailed.BAD_TYPE, `bundle control type ${m.ctrl} is a reply`);
    }
    this.reply(m, { type: 'bundle_control', bundleId: m.bundleId, ctrl: m.ctrl + 1, flags: m.flags });
  }

  /** Adds a flow mod to a bundle (opening it if need be); nothing is applied before the commit. */
  private bundleAdd(m: OfMessage & { type: 'bundle_add' }): void {
    const fail = (code: number, why: string) => new OfError(ErrType.BUNDLE_FAILED, code, why);
    let b = this.bundles.get(m.bundleId);
    if (!b) {
      b = { flags: m.flags, closed: false, mods: [] };
      this.bundles.set(m.bundleId, b);
    }
    if (b.closed) throw fail(BundleFailed.BUNDLE_CLOSED, `bundle ${m.bundleId} is closed`);
    if (b.flags !== m.flags) throw fail(BundleFailed.BAD_FLAGS, `bundle ${m.bundleId} was opened with flags ${b.flags}`);
    if (m.message.xid !== m.xid) throw fail(BundleFailed.MSG_BAD_XID, 'the bundled message has another xid');
    const inner = m.message;
    if (inner.type !== 'flow_mod') throw fail(BundleFailed.MSG_UNSUP, `${inner.type} cannot be bundled`);
    if (inner.outGroup !== null) return;
    b.mods.push(inner.format === 'oxm' || this.tableIdInFlowMods ? inner.flowMod : { ...inner.flowMod, table: null });
  }

  /** The rules a flow or aggregate stats request selects (none when it asks for a group's: nvs has no groups). */
  private dumpRules(m: FlowSelect) {
    if (m.outGroup !== null) return [];
    return this.o.service.dump(this.o.bridge, { table: m.table, match: m.match, outPort: m.outPort, cookie: m.cookie, cookieMask: m.cookieMask });
  }

  /** A port as OpenFlow describes it: up, and (1.1+) live, as OVS reports its ports that are up. */
  private phyPort(p: BridgePort): PhyPort {
    return { portNo: p.ofport, hwAddr: macNumber(p.mac ?? ''), name: p.name, config: 0, state: this.version === OFP10_VERSION ? 0 : OFPPS_LIVE };
  }

  private phyPorts(): PhyPort[] {
    return [...this.o.service.bridge(this.o.bridge).ports.values()].sort((x, y) => x.ofport - y.ofport).map((p) => this.phyPort(p));
  }

  /** Ports ride along in 1.0's reply; 1.1+ clients ask for them with a port-desc request. */
  private features(): OfBody {
    const ports = this.phyPorts();
    const local = ports.find((p) => p.portNo === OFPP_LOCAL);
    const of10 = this.version === OFP10_VERSION;
    return {
      type: 'features_reply',
      datapathId: local?.hwAddr ?? 0n,
      nBuffers: 0,
      nTables: N_TABLES,
      capabilities: of10 ? CAPABILITIES_OF10 : CAPABILITIES_OF11 | (this.version >= OFP14_VERSION ? OFPC14_BUNDLES : 0),
      actions: of10 ? OF10_ACTIONS : 0,
      ports: of10 ? ports : [],
    };
  }

  /** Tables have no names (ovs-ofctl then prints none, as for OVS's tables). */
  private tableStats(): OfBody {
    const stats = this.o.service.tables(this.o.bridge).slice(0, N_TABLES);
    return {
      type: 'table_stats_reply',
      tables: stats.map((s) => ({ tableId: s.table, name: '', active: s.active, lookups: BigInt(s.lookups), matched: BigInt(s.matched) })),
    };
  }

  private portStats(portNo: number): OfBody {
    const all = this.o.service.ports(this.o.bridge);
    const chosen = portNo === OFPP_NONE ? all : all.filter((p) => p.port.ofport === portNo);
    return {
      type: 'port_stats_reply',
      ports: chosen.map(({ port, counters: c }) => ({
        portNo: port.ofport,
        rxPackets: BigInt(c.rxPackets),
        txPackets: BigInt(c.txPackets),
        rxBytes: BigInt(c.rxBytes),
        txBytes: BigInt(c.txBytes),
        rxDropped: BigInt(c.rxDropped),
        txDropped: BigInt(c.txDropped),
        durationSec: 0,
        durationNsec: 0,
      })),
    };
  }

  /** All tables' features, in as many replies as they need (each under 64 kB, all but the last flagged "more"). */
  private tableFeatures(m: OfMessage): void {
    const all = tableFeatures(N_TABLES, TABLE_MAX_ENTRIES);
    let batch: TableFeatures[] = [];
    let size = 0;
    for (const t of all) {
      const w = new Writer();
      writeTableFeatures(w, t);
      if (size + w.length > REPLY_BUDGET) {
        this.reply(m, { type: 'table_features_reply', tables: batch, more: true });
        batch = [];
        size = 0;
      }
      batch.push(t);
      size += w.length;
    }
    this.reply(m, { type: 'table_features_reply', tables: batch, more: false });
  }

  /** NXST_FLOW: as many replies as the rules need, each under 64 kB, all but the last flagged "more". */
  private flowStats(m: OfMessage & FlowSelect): void {
    const now = this.o.now();
    const rules = this.dumpRules(m);
    let batch: FlowStat[] = [];
    let size = 0;
    const flush = (more: boolean) => {
      this.reply(m, { type: 'flow_stats_reply', flows: batch, more });
      batch = [];
      size = 0;
    };
    for (const r of rules) {
      const age = now - r.createdAt;
      const stat: FlowStat = {
        table: r.table,
        durationSec: Math.floor(age / 1000),
        durationNsec: (age % 1000) * 1_000_000,
        idleTimeout: r.idleTimeout,
        hardTimeout: r.hardTimeout,
        idleAge: Math.floor((now - r.usedAt) / 1000),
        hardAge: Math.floor((now - r.modifiedAt) / 1000),
        cookie: r.cookie,
        packets: BigInt(r.packets),
        bytes: BigInt(r.bytes),
        flags: flowModFlagBits(r.flags),
        importance: r.importance,
        match: r.match,
        actions: r.actions,
      };
      const w = new Writer();
      writeFlowStat(w, stat, this.version);
      if (size + w.length > REPLY_BUDGET) flush(true);
      batch.push(stat);
      size += w.length;
    }
    flush(false);
  }
}
