/**
 * The switch configuration as nvs-vswitchd wants it, parsed once from the
 * Open_vSwitch database rows (the IDL replica) into typed values. Everything
 * downstream (bridge reconciliation, ofproto, the datapath) reads these types,
 * never database rows: parse at the edge.
 *
 * Values that cannot be used are not thrown: a bad Interface becomes an
 * InterfaceConfig carrying `error`, so one wrong port never stops the others.
 */
import type { Datum } from '@nvs/ovsdb';

/** Reads one column of one row as a Datum (keys sorted, `values` for maps). */
export type RowReader = (column: string) => Datum;

/** The rows of the tables vswitchd reads, by uuid. */
/** One Controller row of a bridge. */
export interface ControllerConfig {
  uuid: string;
  target: string;
  /** Longest wait between two connection attempts (ms). */
  maxBackoffMs: number;
}

export interface DbSnapshot {
  openVswitch: Map<string, RowReader>;
  bridge: Map<string, RowReader>;
  port: Map<string, RowReader>;
  iface: Map<string, RowReader>;
  controller?: Map<string, RowReader>;
}

export type VlanMode = 'access' | 'trunk' | 'native-tagged' | 'native-untagged';

export interface InterfaceConfig {
  uuid: string;
  name: string;
  /** 'dummy' is an in-memory port; 'internal' a bridge-local port; 'tap' a kernel tap device of that name; 'system' (also for no type, as OVS) an existing kernel device over AF_PACKET; 'afxdp' one over AF_XDP. */
  type: string;
  options: Record<string, string>;
  /** Interface external_ids (the cluster reads nvs-vni and attached-mac there). */
  externalIds: Record<string, string>;
  ofportRequest?: number;
  mtuRequest?: number;
  /** Why this interface cannot be created; it is reported in Interface.error. */
  error?: string;
}

export interface PortConfig {
  uuid: string;
  name: string;
  tag?: number;
  trunks: number[];
  vlanMode?: VlanMode;
  interfaces: InterfaceConfig[];
}

export interface BridgeConfig {
  uuid: string;
  name: string;
  datapathType: string;
  failMode: 'standalone' | 'secure';
  macAgingTime: number;
  macTableSize: number;
  ports: PortConfig[];
  /** The Bridge's Controller rows. */
  controllers: ControllerConfig[];
}

export interface SwitchConfig {
  /** Open_vSwitch row uuid (there is exactly one). */
  uuid: string;
  nextCfg: number;
  curCfg: number;
  /** CPU numbers for polling threads, from other_config:pmd-cpu-mask (hex). */
  pmdCpus?: number[];
  /** other_config:n-handler-threads. */
  handlers?: number;
  /** Idle time after which an unused megaflow is removed (other_config:max-idle, ms). */
  maxIdleMs: number;
  /** Most megaflows installed at once (other_config:flow-limit); past it, upcalls are executed without installing a flow. */
  flowLimit: number;
  /** other_config:vlan-limit: VLAN tags parsed (1, OVS's default: a second tag is payload; 0: no limit). */
  vlanLimit: number;
  /** Period of the statistics write-back (other_config:stats-update-interval, ms, at least 5000); undefined when the database sets no integer, and the daemon's default applies. */
  statsUpdateIntervalMs?: number;
  bridges: BridgeConfig[];
  /** Open_vSwitch external_ids (system-id; the cluster's nvs-* keys). */
  externalIds: Record<string, string>;
}

export const DEFAULT_MAX_IDLE_MS = 10_000;
/** OVS's default other_config:flow-limit. */
export const DEFAULT_FLOW_LIMIT = 200_000;
/** ovs-vswitchd's default and smallest other_config:stats-update-interval. */
export const DEFAULT_STATS_UPDATE_INTERVAL_MS = 5000;
export const DEFAULT_MAC_AGING_S = 300;
export const DEFAULT_MAC_TABLE_SIZE = 8192;

/** Options of the tunnel types (their values are checked by the datapath when it opens the port). */
const TUNNEL_OPTIONS = ['remote_ip', 'local_ip', 'key', 'in_key', 'out_key', 'dst_port', 'csum', 'ttl', 'tos'];
/** Interface types nvs knows of but cannot open yet. */
const NOT_YET = new Set(['afxdp-nonpmd', 'dpdk', 'gre', 'stt', 'erspan', 'ip6gre', 'ip6erspan', 'lisp', 'bareudp', 'gtpu', 'srv6']);
/** Options each supported type accepts. */
const KNOWN_OPTIONS: Record<string, Set<string>> = {
  dummy: new Set(['pstream', 'stream', 'n_rxq', 'n_txq']),
  internal: new Set([]),
  tap: new Set([]),
  system: new Set(['transport']),
  afxdp: new Set(['xdp-mode', 'use-need-wakeup', 'n_rxq']),
  dpdkvhostuser: new Set([]),
  dpdkvhostuserclient: new Set(['vhost-server-path']),
  vxlan: new Set(TUNNEL_OPTIONS),
  geneve: new Set(TUNNEL_OPTIONS),
  patch: new Set(['peer']),
};
/** The supported types, quoted and joined with `conjunction` before the last, for error messages. */
function supportedTypes(conjunction: 'or' | 'and'): string {
  const q = Object.keys(KNOWN_OPTIONS).map((t) => `"${t}"`);
  return `${q.slice(0, -1).join(', ')} ${conjunction} ${q[q.length - 1]}`;
}
/** Types `--enable-dummy=override` turns into dummy ports, as ovs-vswitchd does: every type that would need the system (internal ports too, decided where the datapath is opened). */
const OVERRIDDEN = new Set([...NOT_YET, 'tap', 'system', 'afxdp', '', 'dpdkvhostuser', 'dpdkvhostuserclient', 'vxlan', 'geneve']);
const DATAPATH_TYPES = new Set(['', 'netdev', 'dummy', 'system']);

// Datum helpers: a scalar is a one-key set; optional columns are 0-or-1 sets.
function scalar(d: Datum): string | number | boolean | undefined {
  return d.keys.length > 0 ? d.keys[0] : undefined;
}
function str(d: Datum): string {
  const v = scalar(d);
  return v === undefined ? '' : String(v);
}
function int(d: Datum): number | undefined {
  const v = scalar(d);
  return typeof v === 'number' ? v : undefined;
}
function uuids(d: Datum): string[] {
  return d.keys.map(String);
}
function smap(d: Datum): Record<string, string> {
  const out: Record<string, string> = {};
  d.keys.forEach((k, i) => (out[String(k)] = String(d.values?.[i] ?? '')));
  return out;
}

function posInt(text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  return Number.isInteger(n) && n > 0 ? n : fallback;
}

/**
 * other_config:stats-update-interval as ovs-vswitchd reads it: a decimal int
 * (smap_get_int: C whitespace and a sign allowed, nothing after) raised to at
 * least 5000 ms; anything else is as if unset.
 */
function statsUpdateInterval(text: string | undefined): number | undefined {
  if (text === undefined || !/^[ \t\n\v\f\r]*[+-]?[0-9]+$/.test(text)) return undefined;
  const n = Number(text);
  return n >= -(2 ** 31) && n < 2 ** 31 ? Math.max(n, DEFAULT_STATS_UPDATE_INTERVAL_MS) : undefined;
}

/** CPU numbers whose bits are set in a hex mask (`0x6` → [1, 2]); undefined when malformed. */
export function parseCpuMask(mask: string): number[] | undefined {
  const hex = mask.replace(/^0x/i, '');
  if (!/^[0-9a-fA-F]+$/.test(hex)) return undefined;
  const bits = BigInt(`0x${hex}`);
  const cpus: number[] = [];
  for (let i = 0; (1n << BigInt(i)) <= bits; i++) if (bits & (1n << BigInt(i))) cpus.push(i);
  return cpus;
}

/** How to read the rows (from the command line). */
export interface ReadOptions {
  /** `--enable-dummy=override`: tap interfaces and types nvs cannot open yet become dummy ports (their options are ignored). Internal ports become dummy too, decided where the datapath is opened (internal-ports.ts). */
  dummyOverride?: boolean;
}

/** A `datapath_type=dummy` bridge's ports are dummy ports throughout, as in OVS's dummy datapath: tap interfaces and types nvs cannot open become dummy ports as under `--enable-dummy=override` (internal ones, in bridge.ts). */
function bridgeReadOptions(datapathType: string, ro: ReadOptions): ReadOptions {
  return datapathType === 'dummy' ? { ...ro, dummyOverride: true } : ro;
}

function interfaceConfig(uuid: string, row: RowReader, ro: ReadOptions): InterfaceConfig {
  const name = str(row('name'));
  const rawType = str(row('type'));
  const overridden = ro.dummyOverride === true && OVERRIDDEN.has(rawType);
  const type = overridden ? 'dummy' : rawType === '' ? 'system' : rawType;
  const options = overridden ? {} : smap(row('options'));
  const cfg: InterfaceConfig = { uuid, name, type, options, externalIds: smap(row('external_ids')), ofportRequest: int(row('ofport_request')), mtuRequest: int(row('mtu_request')) };
  if (NOT_YET.has(type)) {
    cfg.error = `${name}: interface type "${type}" is not supported yet by nvs (use ${supportedTypes('or')})`;
  } else if (!(type in KNOWN_OPTIONS)) {
    cfg.error = `${name}: unknown interface type "${type}" (nvs supports ${supportedTypes('and')})`;
  } else {
    const bad = Object.keys(options).filter((o) => !KNOWN_OPTIONS[type].has(o));
    // A patch port's errors in ovs-vswitchd's words.
    if (type === 'patch' && bad.length > 0) cfg.error = `${name}: patch type takes only a 'peer' argument`;
    else if (type === 'patch' && !options.peer) cfg.error = `${name}: patch type requires valid 'peer' argument`;
    else if (type === 'patch' && options.peer === name) cfg.error = `${name}: patch peer must not be self`;
    else if (bad.length > 0) cfg.error = `${name}: ${type} interface does not accept option${bad.length > 1 ? 's' : ''} ${bad.map((o) => `"${o}"`).join(', ')}`;
    else if (type === 'dpdkvhostuserclient' && !options['vhost-server-path']) cfg.error = `${name}: dpdkvhostuserclient interface needs options:vhost-server-path`;
  }
  return cfg;
}

const VLAN_MODES = new Set(['access', 'trunk', 'native-tagged', 'native-untagged']);

function portConfig(uuid: string, row: RowReader, db: DbSnapshot, ro: ReadOptions): PortConfig {
  const mode = str(row('vlan_mode'));
  const interfaces = uuids(row('interfaces'))
    .map((u) => db.iface.get(u) && interfaceConfig(u, db.iface.get(u)!, ro))
    .filter((i): i is InterfaceConfig => i !== undefined)
    .sort((a, b) => a.name.localeCompare(b.name));
  // Bonds (several interfaces in one port) are not supported yet: the first
  // interface works, the others say why they do not.
  for (const extra of interfaces.slice(1)) {
    extra.error ??= `${extra.name}: port "${str(row('name'))}" has several interfaces; bonds are not supported yet by nvs`;
  }
  return {
    uuid,
    name: str(row('name')),
    tag: int(row('tag')),
    trunks: row('trunks').keys.map(Number),
    vlanMode: VLAN_MODES.has(mode) ? (mode as VlanMode) : undefined,
    interfaces,
  };
}

function bridgeConfig(uuid: string, row: RowReader, db: DbSnapshot, ro: ReadOptions): BridgeConfig {
  const other = smap(row('other_config'));
  const portRo = bridgeReadOptions(str(row('datapath_type')), ro);
  const ports = uuids(row('ports'))
    .map((u) => db.port.get(u) && portConfig(u, db.port.get(u)!, db, portRo))
    .filter((p): p is PortConfig => p !== undefined)
    .sort((a, b) => a.name.localeCompare(b.name));
  return {
    uuid,
    name: str(row('name')),
    datapathType: str(row('datapath_type')),
    failMode: str(row('fail_mode')) === 'secure' ? 'secure' : 'standalone',
    macAgingTime: posInt(other['mac-aging-time'], DEFAULT_MAC_AGING_S),
    macTableSize: posInt(other['mac-table-size'], DEFAULT_MAC_TABLE_SIZE),
    ports,
    controllers: uuids(row('controller'))
      .map((u) => {
        const c = db.controller?.get(u);
        // OVS's default max_backoff is 8 s.
        return c && { uuid: u, target: str(c('target')), maxBackoffMs: int(c('max_backoff')) ?? 8000 };
      })
      .filter((c): c is ControllerConfig => c !== undefined && c.target !== ''),
  };
}

/** The whole configuration, or undefined while the database has no Open_vSwitch row. */
export function readConfig(db: DbSnapshot, ro: ReadOptions = {}): SwitchConfig | undefined {
  const first = [...db.openVswitch.entries()][0];
  if (!first) return undefined;
  const [uuid, row] = first;
  const other = smap(row('other_config'));
  const bridges = uuids(row('bridges'))
    .map((u) => db.bridge.get(u) && bridgeConfig(u, db.bridge.get(u)!, db, ro))
    .filter((b): b is BridgeConfig => b !== undefined)
    .sort((a, b) => a.name.localeCompare(b.name));
  return {
    uuid,
    nextCfg: int(row('next_cfg')) ?? 0,
    curCfg: int(row('cur_cfg')) ?? 0,
    pmdCpus: other['pmd-cpu-mask'] ? parseCpuMask(other['pmd-cpu-mask']) : undefined,
    handlers: other['n-handler-threads'] ? posInt(other['n-handler-threads'], 1) : undefined,
    maxIdleMs: posInt(other['max-idle'], DEFAULT_MAX_IDLE_MS),
    flowLimit: posInt(other['flow-limit'], DEFAULT_FLOW_LIMIT),
    vlanLimit: /^[0-9]+$/.test(other['vlan-limit'] ?? '') ? Number(other['vlan-limit']) : 1,
    statsUpdateIntervalMs: statsUpdateInterval(other['stats-update-interval']),
    bridges,
    externalIds: smap(row('external_ids')),
  };
}

/** Whether a bridge's datapath_type selects nvs's datapath; others get an error logged. */
export function usesNvsDatapath(b: BridgeConfig): boolean {
  return DATAPATH_TYPES.has(b.datapathType) && b.datapathType !== 'system';
}
