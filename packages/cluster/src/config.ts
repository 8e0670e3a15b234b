/**
 * How a host joins the cluster, read from the database as OVS users expect:
 * `Open_vSwitch` `external_ids` (the keys below; `system-id` is the host's
 * name, as OVN uses it) and, per port, `Interface` `external_ids`
 * (`nvs-vni` puts the port on a network, `attached-mac` is the MAC libvirt
 * records for a VM's interface). Bad values are reported, never thrown past
 * the caller: a host whose cluster settings are wrong keeps switching locally.
 */

/** Where Redis is: one server, a Sentinel set (with the master's name) or Cluster seed nodes. */
export type RedisAddress =
  | { kind: 'server'; host: string; port: number; db: number; password?: string; tls: boolean }
  | { kind: 'sentinel'; sentinels: Array<{ host: string; port: number }>; name: string; db: number; password?: string }
  | { kind: 'cluster'; nodes: Array<{ host: string; port: number }>; password?: string };

export type Encap = 'vxlan' | 'geneve';

export interface ClusterSettings {
  redis: RedisAddress;
  /** This host's id in the registry (`system-id`). */
  hostId: string;
  /** This host's underlay address: what other hosts send tunnel packets to. */
  tunnelIp: string;
  encap: Encap;
  /** The bridge whose ports and tunnel port the cluster drives (`nvs-bridge`, default `br-int`). */
  bridge: string;
}

/** Thrown (and reported in `cluster/show`) when the cluster keys cannot be used. */
export class ClusterConfigError extends Error {
  readonly code = 'CLUSTER_CONFIG';
  constructor(message: string) {
    super(message);
    this.name = 'ClusterConfigError';
  }
}

/** The `external_ids` keys, also the names of `nvs start`'s flags (without the `nvs-`). */
export const KEYS = {
  redis: 'nvs-redis',
  tunnelIp: 'nvs-tunnel-ip',
  encap: 'nvs-encap',
  bridge: 'nvs-bridge',
  hostId: 'system-id',
  vni: 'nvs-vni',
  attachedMac: 'attached-mac',
} as const;

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
/** VXLAN and Geneve carry a 24-bit network identifier. */
export const MAX_VNI = 0xffffff;

function endpoint(text: string, defaultPort: number, what: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:]+\]|[^:/[\]]+)(?::(\d+))?$/.exec(text);
  if (!m) throw new ClusterConfigError(`${what}: "${text}" is not host[:port]`);
  const port = m[2] === undefined ? defaultPort : Number(m[2]);
  if (!(port > 0 && port < 65536)) throw new ClusterConfigError(`${what}: port ${m[2]} is out of range`);
  return { host: m[1].replace(/^\[|\]$/g, ''), port };
}

/**
 * Parses `nvs-redis`:
 * - `redis://[:password@]host[:port][/db]` (`rediss://` for TLS): one server;
 * - `redis-sentinel://[:password@]host[:port],host[:port]…/master-name[/db]`: ask these sentinels for `master-name`;
 * - `redis-cluster://[:password@]host[:port],host[:port]…`: a Redis Cluster, these nodes as seeds.
 */
export function parseRedisAddress(text: string): RedisAddress {
  const m = /^(redis|rediss|redis-sentinel|redis-cluster):\/\/(?:(?:[^:@/]*):([^@/]*)@)?([^/]+)(?:\/(.*))?$/.exec(text.trim());
  if (!m) throw new ClusterConfigError(`${KEYS.redis}: "${text}" is not redis://host:port, redis-sentinel://host:port,…/master or redis-cluster://host:port,…`);
  const [, scheme, password, hosts, path = ''] = m;
  const auth = password ? { password: decodeURIComponent(password) } : {};
  const db = (s: string | undefined): number => {
    if (s === undefined || s === '') return 0;
    if (!/^\d+$/.test(s)) throw new ClusterConfigError(`${KEYS.redis}: database "${s}" is not a number`);
    return Number(s);
  };
  const list = hosts.split(',').map((h) => endpoint(h, scheme === 'redis-sentinel' ? 26379 : 6379, KEYS.redis));
  if (scheme === 'redis' || scheme === 'rediss') {
    if (list.length !== 1) throw new ClusterConfigError(`${KEYS.redis}: ${scheme}:// takes one server; use redis-sentinel:// or redis-cluster:// for several`);
    return { kind: 'server', ...list[0], db: db(path), tls: scheme === 'rediss', ...auth };
  }
  if (scheme === 'redis-sentinel') {
    const [name, dbText, ...rest] = path.split('/');
    if (!name || rest.length > 0) throw new ClusterConfigError(`${KEYS.redis}: redis-sentinel:// needs the master's name after the hosts (…/mymaster)`);
    return { kind: 'sentinel', sentinels: list, name, db: db(dbText), ...auth };
  }
  if (path !== '') throw new ClusterConfigError(`${KEYS.redis}: redis-cluster:// takes no path (a cluster has one database)`);
  return { kind: 'cluster', nodes: list, ...auth };
}

/** The address as shown to users, without a password. */
export function formatRedisAddress(a: RedisAddress): string {
  const hp = (e: { host: string; port: number }) => (e.host.includes(':') ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`);
  if (a.kind === 'server') return `${a.tls ? 'rediss' : 'redis'}://${hp(a)}${a.db ? `/${a.db}` : ''}`;
  if (a.kind === 'sentinel') return `redis-sentinel://${a.sentinels.map(hp).join(',')}/${a.name}${a.db ? `/${a.db}` : ''}`;
  return `redis-cluster://${a.nodes.map(hp).join(',')}`;
}

/**
 * The cluster settings from `Open_vSwitch` `external_ids`; undefined when
 * `nvs-redis` is unset (the host is not in a cluster). Throws
 * ClusterConfigError naming the key when a value cannot be used.
 */
export function readClusterSettings(ids: Readonly<Record<string, string>>): ClusterSettings | undefined {
  const address = ids[KEYS.redis];
  if (address === undefined || address === '') return undefined;
  const redis = parseRedisAddress(address);
  const hostId = ids[KEYS.hostId];
  if (!hostId) throw new ClusterConfigError(`${KEYS.hostId} is not set: each host needs a unique id (ovs-vsctl set Open_vSwitch . external_ids:${KEYS.hostId}=NAME)`);
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(hostId)) throw new ClusterConfigError(`${KEYS.hostId}: "${hostId}" must be 1–64 letters, digits, '.', '_' or '-'`);
  const tunnelIp = ids[KEYS.tunnelIp];
  if (!tunnelIp || !IPV4.test(tunnelIp)) throw new ClusterConfigError(`${KEYS.tunnelIp}: "${tunnelIp ?? ''}" is not an IPv4 address (this host's underlay address)`);
  const encap = ids[KEYS.encap] ?? 'vxlan';
  if (encap !== 'vxlan' && encap !== 'geneve') throw new ClusterConfigError(`${KEYS.encap}: "${encap}" is not vxlan or geneve`);
  const bridge = ids[KEYS.bridge] || 'br-int';
  return { redis, hostId, tunnelIp, encap, bridge };
}

/** A port's network from `Interface` `external_ids:nvs-vni`; undefined when unset; throws when not 1–16777215. */
export function readVni(ids: Readonly<Record<string, string>>): number | undefined {
  const text = ids[KEYS.vni];
  if (text === undefined || text === '') return undefined;
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > MAX_VNI) throw new ClusterConfigError(`${KEYS.vni}: "${text}" is not a network id from 1 to ${MAX_VNI}`);
  return n;
}

/** `attached-mac` in lower case; undefined when unset; throws when it is not a unicast MAC. */
export function readAttachedMac(ids: Readonly<Record<string, string>>): string | undefined {
  const text = ids[KEYS.attachedMac];
  if (text === undefined || text === '') return undefined;
  const mac = text.toLowerCase();
  if (!MAC.test(mac) || (parseInt(mac.slice(0, 2), 16) & 1) === 1) throw new ClusterConfigError(`${KEYS.attachedMac}: "${text}" is not a unicast MAC address`);
  return mac;
}

export function isUnicastMac(mac: string): boolean {
  return MAC.test(mac) && (parseInt(mac.slice(0, 2), 16) & 1) === 0;
}
