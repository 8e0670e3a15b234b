/**
 * The bridge layer's own model of bridges and ports, and its reconciliation
 * with the configuration read from the database (OVS's vswitchd/bridge.c
 * plays this role). `reconcile` first computes and records the new model,
 * then pushes it down: every port deletion (and every removed bridge) before
 * any addition, so a port that moves between bridges, or an ofport that
 * passes from one interface to another, never collides with its old self.
 *
 * OpenFlow port numbers (ofports) are per bridge: an `ofport_request` is
 * honoured when free, otherwise the lowest free number from 1; the interface
 * named after the bridge is the bridge's LOCAL port (65534). Datapath port
 * numbers are global to the one datapath all bridges share.
 */
import type { Logger } from 'pino';
import type { TunnelConfig } from '@nvs/ofproto';
import type { BridgeConfig, InterfaceConfig, PortConfig, SwitchConfig, VlanMode } from './config.ts';
import { usesNvsDatapath } from './config.ts';

export const OFPP_LOCAL = 65534;
const OFPP_MAX = 0xff00;

/** What the bridge layer needs from the datapath to make ports exist. */
export interface DatapathPorts {
  /**
   * Creates a port and returns its datapath port number (`portNo` when given
   * and free). Throws with a user-readable message.
   */
  addPort(name: string, type: PortType, options?: Record<string, string>, portNo?: number): number;
  removePort(odpPort: number): void;
  /** May be absent: the back end a port was opened with and its device's MAC (a tap's); absent means a dummy port. */
  portDevice?(odpPort: number): { backend: PortBackend; mac?: string; status?: Record<string, string> };
  /** May be absent: the state of a port's kernel device, read now; undefined when it has none or it cannot be read. */
  deviceState?(odpPort: number): DeviceState | undefined;
  /** May be absent: sets the MTU of a port's kernel device. Throws with the reason it was refused. */
  setDeviceMtu?(odpPort: number, mtu: number): void;
}

/**
 * Interface types the bridge layer opens: `internal` and `tap` are kernel tap
 * devices, `system` (AF_PACKET) and `afxdp` (AF_XDP) an existing kernel
 * device, the vhost-user types a VM's virtio-net device, `dummy` in-memory
 * ports, and `dummy-internal` the internal ports of a `datapath_type=dummy`
 * bridge (in-memory, as in OVS's dummy datapath). A `patch` port joins two
 * bridges inside the switch and has no datapath port.
 */
export type PortType = 'dummy' | 'dummy-internal' | 'internal' | 'tap' | 'system' | 'afxdp' | 'patch' | VhostUserType | TunnelType;

/** Tunnel ports: VXLAN or Geneve over a kernel UDP socket (crates/datapath/src/ports/tunnel.rs). */
export type TunnelType = 'vxlan' | 'geneve';

/** The datapath port number of a port that has none (a patch port lives in ofproto only). */
export const NO_ODP_PORT = -1;

/** vhost-user ports (a VM's virtio-net device): nvs listens on a socket in the run directory, or connects to `options:vhost-server-path`. */
export type VhostUserType = 'dpdkvhostuser' | 'dpdkvhostuserclient';

/**
 * Names ovs-vswitchd refuses for interfaces: its datapaths' own ports
 * (`ovs-<datapath type>`) and the prefixes of its tunnel ports' kernel devices.
 */
const RESERVED_NAME = /^(ovs-(netdev|dummy|system)$|(genev|gre|vxlan|lisp|stt|erspan|ip6erspan|ip6gre|gtpu|udp)_sys)/;

/** The datapath back end behind a port: in-memory (`dummy`), a kernel tap device nvs made, an existing kernel device (`system` over AF_PACKET, `afxdp` over AF_XDP), or a vhost-user socket. */
export type PortBackend = 'dummy' | 'tap' | 'system' | 'afxdp' | VhostUserType | TunnelType;

/** A kernel device's state, as `ip link show` reports it. */
export interface DeviceState {
  mtu: number;
  /** IFF_UP: `ip link set dev X up`. */
  adminUp: boolean;
  /** Up with carrier (IFF_RUNNING): a tap has carrier while nvs holds it open. */
  carrier: boolean;
}

/**
 * What one reconciliation did to the bridges, for the caller to carry on to
 * ofproto and the caches: the model never calls back up.
 */
export interface BridgeChanges {
  added: Bridge[];
  /** Already gone from the model, their ports from the datapath. */
  removed: Bridge[];
  /** Kept bridges whose ports were added, removed or had their VLAN settings changed, or whose bridge settings changed. */
  changed: Set<Bridge>;
}

/** One working port of a bridge: one interface, as bonds are not supported. */
export interface BridgePort {
  name: string;
  ofport: number;
  odpPort: number;
  type: PortType;
  /** What the datapath opened for it (internal ports are taps when nvs-vswitchd may create them). */
  backend: PortBackend;
  tag?: number;
  trunks: number[];
  vlanMode?: VlanMode;
  mac: string;
  /** How the port reaches its device (Interface.status), as the datapath says. */
  deviceStatus?: Record<string, string>;
  /** A dummy port's MTU (mtu_request as is); a tap's is read from its device instead. */
  mtu: number;
  /** Why mtu_request could not be applied to the device, for Interface.error. */
  mtuError?: string;
  /** A tunnel port's settings, for xlate. */
  tunnel?: TunnelConfig;
  /** The options a tunnel port was opened with (a change reopens it). */
  tunnelOptions?: string;
  ifaceUuid: string;
  /** A patch port's peer interface (options:peer). */
  peer?: string;
  /** Interface.mtu_request, if set. */
  mtuRequest?: number;
}

/** What vswitchd writes back to one Interface row. */
export interface InterfaceStatus extends LinkStatus {
  ofport: number;
  error?: string;
  macInUse?: string;
  /** Interface.status: how a kernel device port reaches its device. */
  status?: Record<string, string>;
}

/** The Interface columns that follow the device (refreshed with the statistics); absent: unknown. */
export interface LinkStatus {
  adminState?: 'up' | 'down';
  linkState?: 'up' | 'down';
  mtu?: number;
  /** A system port's device error (gone): present, even undefined, when the device decides Interface.error. */
  error?: string;
}

export class Bridge {
  readonly ports = new Map<string, BridgePort>();
  constructor(
    readonly name: string,
    public config: BridgeConfig,
  ) {}

  portByOfport(ofport: number): BridgePort | undefined {
    for (const p of this.ports.values()) if (p.ofport === ofport) return p;
    return undefined;
  }
}

/** A stable, locally administered MAC derived from a port name (what `mac_in_use` reports). */
export function macForName(name: string): string {
  let h = 2166136261;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619) >>> 0;
  const bytes = [0xaa, 0x55, (h >>> 24) & 0xff, (h >>> 16) & 0xff, (h >>> 8) & 0xff, h & 0xff];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

function vlanKey(p: { tag?: number; trunks: number[]; vlanMode?: VlanMode }): string {
  return `${p.tag ?? ''}|${p.trunks.join(',')}|${p.vlanMode ?? ''}`;
}

export class Switch {
  readonly bridges = new Map<string, Bridge>();
  /** Status per Interface uuid, for the write-back transaction. */
  readonly status = new Map<string, InterfaceStatus>();
  /** Interfaces (by uuid) refused for a reserved name, warned about once, as ovs-vswitchd does, not on every reconciliation. */
  private reservedWarned = new Set<string>();
  private reservedSeen = new Set<string>();

  constructor(
    private readonly log: Logger,
    private readonly datapath: DatapathPorts,
  ) {}

  /** Brings bridges and ports in line with `cfg` and says what changed. Never throws for bad rows: they get an error status. */
  reconcile(cfg: SwitchConfig): BridgeChanges {
    const wanted = new Map<string, BridgeConfig>();
    for (const b of cfg.bridges) {
      if (!usesNvsDatapath(b)) {
        this.log.error({ bridge: b.name, datapathType: b.datapathType }, 'datapath_type is not supported by nvs (use netdev, dummy or leave it empty); bridge ignored');
        continue;
      }
      wanted.set(b.name, b);
    }
    this.status.clear();

    // Deletions first: whole bridges, then ports that left or changed type.
    const removed: Bridge[] = [];
    for (const [name, bridge] of this.bridges) {
      if (!wanted.has(name)) {
        for (const p of bridge.ports.values()) this.removePort(bridge, p);
        this.bridges.delete(name);
        removed.push(bridge);
        this.log.info({ bridge: name }, 'bridge removed');
      }
    }
    const added: Bridge[] = [];
    const changed = new Set<Bridge>();
    const plans = new Map<string, Map<string, { port: PortConfig; iface: InterfaceConfig }>>();
    for (const [name, bc] of wanted) {
      const plan = new Map<string, { port: PortConfig; iface: InterfaceConfig }>();
      for (const port of bc.ports) {
        for (const iface of port.interfaces) {
          if (iface.error) this.status.set(iface.uuid, { ofport: -1, error: iface.error });
        }
        const iface = port.interfaces[0];
        if (iface && !iface.error) plan.set(iface.name, { port, iface });
      }
      plans.set(name, plan);
      const bridge = this.bridges.get(name);
      if (!bridge) continue;
      for (const p of [...bridge.ports.values()]) {
        const next = plan.get(p.name);
        const reopen = p.tunnel !== undefined && next !== undefined && JSON.stringify(next.iface.options) !== p.tunnelOptions;
        if (!next || reopen || portType(next.iface, bc) !== p.type || !this.ofportStillValid(bridge, p, next.iface)) {
          this.removePort(bridge, p);
          changed.add(bridge);
        }
      }
    }

    // Additions: new bridges, new ports, and updated settings of kept ports.
    for (const [name, bc] of wanted) {
      let bridge = this.bridges.get(name);
      const isNew = !bridge;
      if (!bridge) {
        bridge = new Bridge(name, bc);
        this.bridges.set(name, bridge);
        added.push(bridge);
        this.log.info({ bridge: name }, 'bridge added');
      } else if (bridgeSettingsChanged(bridge.config, bc)) {
        changed.add(bridge);
      }
      bridge.config = bc;
      for (const { port, iface } of plans.get(name)!.values()) {
        const existing = bridge.ports.get(iface.name);
        if (existing) {
          if (vlanKey(existing) !== vlanKey(port)) changed.add(bridge);
          if (existing.peer !== iface.options.peer && existing.type === 'patch') changed.add(bridge);
          Object.assign(existing, { tag: port.tag, trunks: port.trunks, vlanMode: port.vlanMode, ifaceUuid: iface.uuid });
          if (existing.type === 'patch') existing.peer = iface.options.peer;
          this.status.set(iface.uuid, this.configurePort(existing, iface.mtuRequest));
          continue;
        }
        if (this.addPort(bridge, port, iface) && !isNew) changed.add(bridge);
      }
    }
    [this.reservedWarned, this.reservedSeen] = [this.reservedSeen, new Set()];
    this.checkPatchPeers();
    for (const b of this.bridges.values()) this.followBridgeMtu(b);
    return { added, removed, changed };
  }

  /**
   * As in OVS, a bridge's in-memory internal ports without an mtu_request
   * take the smallest MTU of its other ports (1500 when it has none). (Tap
   * internal ports keep their device's MTU.)
   */
  private followBridgeMtu(b: Bridge): void {
    const isInternal = (p: BridgePort) => p.type === 'dummy-internal' || p.type === 'internal';
    const others = [...b.ports.values()].filter((p) => !isInternal(p) && p.type !== 'patch');
    const mtu = others.length ? Math.min(...others.map((p) => this.linkStatus(p).mtu ?? 1500)) : 1500;
    for (const p of b.ports.values()) {
      if (!isInternal(p) || p.backend !== 'dummy' || p.mtuRequest !== undefined || p.mtu === mtu) continue;
      p.mtu = mtu;
      const st = this.status.get(p.ifaceUuid);
      if (st) this.status.set(p.ifaceUuid, { ...st, mtu });
    }
  }

  /**
   * A patch port whose peer is missing, or is not a patch port pointing back,
   * drops what is sent to it (as in OVS); its Interface row says why.
   */
  private checkPatchPeers(): void {
    for (const b of this.bridges.values()) {
      for (const p of b.ports.values()) {
        if (p.type !== 'patch') continue;
        const peer = p.peer === undefined ? undefined : this.portByName(p.peer)?.port;
        if (peer && peer.type === 'patch' && peer.peer === p.name) continue;
        const why = !peer ? 'does not exist' : `is not a patch interface whose peer is ${p.name}`;
        this.status.set(p.ifaceUuid, { ...(this.status.get(p.ifaceUuid) ?? { ofport: p.ofport }), error: `${p.name}: patch peer ${p.peer} ${why}` });
      }
    }
  }

  /**
   * Gives an in-memory port another datapath port number (OVS's testing
   * command dpif-dummy/change-port-number): the port is closed and opened
   * again under `no`. Returns its bridge, whose OpenFlow side must follow.
   */
  changeOdpPort(name: string, no: number): Bridge {
    const found = this.portByName(name);
    if (!found || found.port.odpPort === NO_ODP_PORT) throw new Error(`${name}: no such datapath port`);
    const { bridge, port } = found;
    if (port.backend !== 'dummy') throw new Error(`${name}: only in-memory (dummy) ports can be renumbered`);
    if (this.portByOdp(no)) throw new Error(`${no}: datapath port number already in use`);
    this.datapath.removePort(port.odpPort);
    port.odpPort = this.datapath.addPort(name, port.type, {}, no);
    this.log.info({ port: name, odpPort: port.odpPort }, 'datapath port renumbered');
    return bridge;
  }

  /** The patch port joined to `p` (both pointing at each other), if any. */
  patchPeer(p: BridgePort): { bridge: Bridge; port: BridgePort } | undefined {
    if (p.type !== 'patch' || p.peer === undefined) return undefined;
    const found = this.portByName(p.peer);
    return found && found.port.type === 'patch' && found.port.peer === p.name ? found : undefined;
  }

  /** Finds the bridge and port that own a datapath port. */
  portByOdp(odpPort: number): { bridge: Bridge; port: BridgePort } | undefined {
    for (const bridge of this.bridges.values()) {
      for (const port of bridge.ports.values()) if (port.odpPort === odpPort) return { bridge, port };
    }
    return undefined;
  }

  /** Finds a port by its (globally unique) name. */
  portByName(name: string): { bridge: Bridge; port: BridgePort } | undefined {
    for (const bridge of this.bridges.values()) {
      const port = bridge.ports.get(name);
      if (port) return { bridge, port };
    }
    return undefined;
  }

  /** admin_state, link_state and mtu of a working port, a tap's read from its device now (see linkStatusOf). */
  linkStatus(p: BridgePort): LinkStatus {
    return linkStatusOf(p, this.tapState(p));
  }

  /** A tap port's device state, read now; undefined for a dummy port or when it cannot be read. */
  private tapState(p: BridgePort): DeviceState | undefined {
    return p.backend !== 'dummy' ? this.datapath.deviceState?.(p.odpPort) : undefined;
  }

  /** Removes every port of every bridge from the datapath (shutdown); returns the bridges removed. */
  clear(): Bridge[] {
    const removed = [...this.bridges.values()];
    for (const bridge of removed) {
      for (const p of bridge.ports.values()) this.removePort(bridge, p);
    }
    this.bridges.clear();
    return removed;
  }

  /** Applies mtu_request to a working port and returns its Interface status (a tap's device is read once for both). */
  private configurePort(p: BridgePort, mtuRequest: number | undefined): InterfaceStatus {
    p.mtuRequest = mtuRequest;
    const dev = this.configureMtu(p, mtuRequest);
    const st: InterfaceStatus = { ofport: p.ofport, macInUse: p.mac, status: p.deviceStatus, ...linkStatusOf(p, dev) };
    st.error ??= p.mtuError;
    return st;
  }

  /**
   * Applies mtu_request. A dummy port takes it as is. A tap device is set to
   * it whenever its MTU differs, so an MTU changed behind nvs's back is put
   * back at the next reconfiguration, as ovs-vswitchd does; without a
   * request the device's MTU is left alone. A refusal leaves the port
   * working: it is reported in Interface.error and logged once. Returns a
   * tap's device state as it is afterwards (undefined: a dummy port, or the
   * device cannot be read).
   */
  private configureMtu(p: BridgePort, requested: number | undefined): DeviceState | undefined {
    if (p.backend === 'dummy') {
      p.mtu = requested ?? p.mtu;
      return undefined;
    }
    const dev = this.tapState(p);
    if (requested === undefined || dev === undefined || dev.mtu === requested) {
      p.mtuError = undefined;
      return dev;
    }
    try {
      this.datapath.setDeviceMtu?.(p.odpPort, requested);
      p.mtuError = undefined;
      this.log.info({ port: p.name, mtu: requested, was: dev.mtu }, 'device MTU set');
      return { ...dev, mtu: requested };
    } catch (err) {
      const error = `${p.name}: could not set MTU ${requested}: ${(err as Error).message}`;
      if (error !== p.mtuError) this.log.warn({ port: p.name, mtu: requested, err: (err as Error).message }, 'device MTU not set; the port keeps working');
      p.mtuError = error;
      return dev;
    }
  }

  private ofportStillValid(bridge: Bridge, p: BridgePort, iface: InterfaceConfig): boolean {
    if (iface.name === bridge.name) return p.ofport === OFPP_LOCAL;
    return iface.ofportRequest === undefined || iface.ofportRequest === p.ofport;
  }

  private removePort(bridge: Bridge, p: BridgePort): void {
    if (p.odpPort !== NO_ODP_PORT) {
      try {
        this.datapath.removePort(p.odpPort);
      } catch (err) {
        this.log.warn({ port: p.name, err: (err as Error).message }, 'removing datapath port failed');
      }
    }
    bridge.ports.delete(p.name);
    this.log.info({ bridge: bridge.name, port: p.name, ofport: p.ofport }, 'port removed');
  }

  private addPort(bridge: Bridge, port: PortConfig, iface: InterfaceConfig): boolean {
    if (RESERVED_NAME.test(iface.name)) {
      // As ovs-vswitchd: a warning in the log, no error text in the row.
      if (!this.reservedWarned.has(iface.uuid)) this.log.warn(`could not create interface ${iface.name}, name is reserved`);
      this.reservedSeen.add(iface.uuid);
      this.status.set(iface.uuid, { ofport: -1 });
      return false;
    }
    const elsewhere = this.portByName(iface.name);
    if (elsewhere) {
      this.status.set(iface.uuid, { ofport: -1, error: `${iface.name}: interface is already in bridge ${elsewhere.bridge.name}` });
      return false;
    }
    const ofport = this.chooseOfport(bridge, iface);
    if (ofport === undefined) {
      this.status.set(iface.uuid, { ofport: -1, error: `${iface.name}: no free OpenFlow port number on bridge ${bridge.name}` });
      return false;
    }
    const type = portType(iface, bridge.config);
    let odpPort = NO_ODP_PORT;
    if (type !== 'patch') {
      try {
        const wanted = bridge.config.datapathType === 'dummy' ? dummyDatapathPortNo(iface.name) : undefined;
        odpPort = this.datapath.addPort(iface.name, type, iface.options, wanted);
      } catch (err) {
        this.status.set(iface.uuid, { ofport: -1, error: `${iface.name}: could not add to the datapath: ${(err as Error).message}` });
        return false;
      }
    }
    const device = type === 'patch' ? undefined : this.datapath.portDevice?.(odpPort);
    const bp: BridgePort = {
      name: iface.name,
      ofport,
      odpPort,
      type,
      backend: device?.backend ?? 'dummy',
      tag: port.tag,
      trunks: port.trunks,
      vlanMode: port.vlanMode,
      mac: device?.mac ?? macForName(iface.name),
      deviceStatus: device?.status,
      mtu: 1500,
      tunnel: type === 'vxlan' || type === 'geneve' ? tunnelConfig(type, iface.options) : undefined,
      tunnelOptions: type === 'vxlan' || type === 'geneve' ? JSON.stringify(iface.options) : undefined,
      ifaceUuid: iface.uuid,
      peer: type === 'patch' ? iface.options.peer : undefined,
    };
    bridge.ports.set(bp.name, bp);
    this.status.set(iface.uuid, this.configurePort(bp, iface.mtuRequest));
    this.log.info({ bridge: bridge.name, port: bp.name, ofport, odpPort, type, backend: bp.backend, status: bp.deviceStatus }, 'port added');
    return true;
  }

  private chooseOfport(bridge: Bridge, iface: InterfaceConfig): number | undefined {
    if (iface.name === bridge.name) return OFPP_LOCAL;
    const used = new Set([...bridge.ports.values()].map((p) => p.ofport));
    const req = iface.ofportRequest;
    if (req !== undefined && req >= 1 && req < OFPP_MAX && !used.has(req)) return req;
    for (let n = 1; n < OFPP_MAX; n++) if (!used.has(n)) return n;
    return undefined;
  }
}

/**
 * admin_state, link_state and mtu of a working port: a dummy port is always
 * up; a tap's come from its device state `dev`, and are left unknown when it
 * could not be read (as ovs-vswitchd leaves the columns empty).
 */
function linkStatusOf(p: BridgePort, dev: DeviceState | undefined): LinkStatus {
  // A tunnel has no device of its own: it is up while its socket is open (as OVS reports tunnels).
  if (p.backend === 'dummy' || p.tunnel) return { adminState: 'up', linkState: 'up', mtu: p.mtu };
  // A kernel device port's device can go (deleted, moved away) and come back: the port says so meanwhile.
  const kernelDevice = p.backend === 'system' || p.backend === 'afxdp';
  if (!dev && kernelDevice) return { adminState: 'down', linkState: 'down', error: `${p.name}: the device is gone (deleted or moved to another network namespace); the port resumes when it is back` };
  if (!dev) return {};
  if (kernelDevice) return { adminState: dev.adminUp ? 'up' : 'down', linkState: dev.carrier ? 'up' : 'down', mtu: dev.mtu, error: p.mtuError };
  return { adminState: dev.adminUp ? 'up' : 'down', linkState: dev.carrier ? 'up' : 'down', mtu: dev.mtu };
}

/**
 * The datapath port number OVS's dummy datapath gives a port: the number in
 * its name (`p20` → 20), plus 100 for names starting `br` (a bridge's own
 * port: `br0` → 100), so that OVS's tests can write `in_port(20)`. Undefined
 * for names without digits (the lowest free number then).
 */
export function dummyDatapathPortNo(name: string): number | undefined {
  const m = /[0-9]+/.exec(name);
  if (!m) return undefined;
  const n = (name.startsWith('br') ? 100 : 0) + Number(m[0]);
  return n > 0 && n < 0xffffffff ? n : undefined;
}

function portType(iface: InterfaceConfig, bridge: BridgeConfig): PortType {
  const t = iface.type;
  if (t === 'internal') return bridge.datapathType === 'dummy' ? 'dummy-internal' : 'internal';
  return t === 'tap' || t === 'system' || t === 'afxdp' || t === 'patch' || t === 'dpdkvhostuser' || t === 'dpdkvhostuserclient' || t === 'vxlan' || t === 'geneve' ? t : 'dummy';
}

/**
 * A tunnel port's options as xlate needs them. The datapath has already
 * opened the port with these options, so they are known to be valid.
 */
function tunnelConfig(type: TunnelType, o: Record<string, string>): TunnelConfig {
  const ip = (v: string | undefined) => (v ? v.split('.').reduce((n, b) => n * 256 + Number(b), 0) : 0);
  const key = o.out_key ?? o.key ?? '0';
  return {
    remoteIp: o.remote_ip === 'flow' ? 'flow' : ip(o.remote_ip),
    localIp: ip(o.local_ip),
    outKey: key === 'flow' ? 'flow' : Number(key),
    dstPort: o.dst_port ? Number(o.dst_port) : type === 'vxlan' ? 4789 : 6081,
    ttl: o.ttl ? Number(o.ttl) : undefined,
    tos: o.tos ? Number(o.tos) : undefined,
  };
}

function bridgeSettingsChanged(a: BridgeConfig, b: BridgeConfig): boolean {
  return a.failMode !== b.failMode || a.macAgingTime !== b.macAgingTime || a.macTableSize !== b.macTableSize;
}
