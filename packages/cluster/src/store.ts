/**
 * The cluster's state in Redis, and the only code that speaks to Redis.
 *
 * Keys (hash tags keep each network's keys in one Cluster slot, so every
 * script touches one slot):
 * - `nvs:{hosts}`            sorted set: host id → last heartbeat (Redis clock, ms)
 * - `nvs:{hosts}:info`       hash: host id → "tunnel-ip encap"
 * - `nvs:{hosts}:nets:<H>`   set: the networks host H joined (read by whoever reaps H)
 * - `nvs:{net:<N>}:hosts`    hash: host id → tunnel ip, the hosts serving network N
 * - `nvs:{net:<N>}:locs`     hash: MAC → "host ip version", where each MAC of N is
 * - `nvs:{net:<N>}:owned:<H>` set: the MACs of N that host H published
 * - channel `nvs:{net:<N>}`  one message per change of N: `loc MAC HOST IP VER`,
 *                            `unloc MAC HOST VER`, `join HOST IP`, `leave HOST`
 *
 * A host writes only what it owns (its heartbeat, its networks, its MACs)
 * and subscribes only to its networks' channels, so a change costs Redis one
 * script plus one message per host serving that network.
 *
 * Versions: a location's version is the Redis server's clock (µs) when the
 * MAC was first claimed at that host; the host keeps it and republishes the
 * same version after an outage, so a VM that moved meanwhile (claimed later,
 * a larger version) keeps its newest location. Compare-and-set is one Lua
 * script; equal versions fall to the larger host id.
 *
 * Failure: commands fail at once while disconnected (no offline queue); the
 * owner (the agent) keeps its state and reconciles on `ready`. A host whose
 * heartbeat is older than the TTL is reaped by the first live host that
 * notices (every host looks once per heartbeat): its networks are left and
 * its locations withdrawn, each announced on the network's channel.
 */
import { Redis, Cluster, type RedisOptions } from 'ioredis';
import type { RedisAddress } from './config.ts';

export interface Location {
  mac: string;
  host: string;
  ip: string;
  /** Decimal µs of the Redis clock at the first claim; compared as BigInt. */
  ver: string;
}

/** One change of a network, as heard on its channel. */
export type NetEvent =
  | { t: 'loc'; net: number; mac: string; host: string; ip: string; ver: string }
  | { t: 'unloc'; net: number; mac: string; host: string; ver: string }
  | { t: 'join'; net: number; host: string; ip: string }
  | { t: 'leave'; net: number; host: string };

export interface HostEntry {
  host: string;
  ip: string;
  encap: string;
  /** Milliseconds since its last heartbeat, by the Redis clock. */
  ageMs: number;
}

export interface StoreEvents {
  event(ev: NetEvent): void;
  /** The command connection is (again) ready. */
  ready(): void;
  /** The command connection was lost. */
  down(err: string): void;
}

export interface StoreOptions {
  address: RedisAddress;
  hostId: string;
  on: StoreEvents;
  /** Reconnect delay cap (ms); default 1000. */
  maxRetryMs?: number;
}

const HOSTS = 'nvs:{hosts}';
const HOST_INFO = 'nvs:{hosts}:info';
const hostNets = (h: string) => `nvs:{hosts}:nets:${h}`;
const netKey = (n: number) => `nvs:{net:${n}}`;

// Lua 5.1 numbers are doubles: versions (16 digits) are formatted with %.0f, never tostring.
const PARSE_LOC = `local function parse(v) local h, ip, ver = string.match(v, '^(%S+) (%S+) (%d+)$'); return h, ip, ver end`;

/** KEYS: locs, owned:H. ARGV: mac, host, ip, ver ('0' = fresh), channel, owned-prefix. Returns {won, ver, owner}. */
const CLAIM = `${PARSE_LOC}
local ver = ARGV[4]
if ver == '0' then local t = redis.call('TIME'); ver = string.format('%.0f', tonumber(t[1]) * 1000000 + tonumber(t[2])) end
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then
  local h, ip, v = parse(cur)
  local nv, nver = tonumber(v), tonumber(ver)
  if nv > nver or (nv == nver and h > ARGV[2]) then return {0, v, h} end
  if v == ver and h == ARGV[2] and ip == ARGV[3] then redis.call('SADD', KEYS[2], ARGV[1]); return {1, ver, h} end
  if h ~= ARGV[2] then redis.call('SREM', ARGV[6] .. h, ARGV[1]) end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. ver)
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('PUBLISH', ARGV[5], 'loc ' .. ARGV[1] .. ' ' .. ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. ver)
return {1, ver, ARGV[2]}`;

/** KEYS: locs, owned:H. ARGV: mac, host, channel. Removes the location only while H holds it. */
const WITHDRAW = `${PARSE_LOC}
redis.call('SREM', KEYS[2], ARGV[1])
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return 0 end
local h, ip, v = parse(cur)
if h ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[3], 'unloc ' .. ARGV[1] .. ' ' .. h .. ' ' .. v)
return 1`;

/** KEYS: hosts of N. ARGV: host, ip, channel. */
const JOIN = `if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PUBLISH', ARGV[3], 'join ' .. ARGV[1] .. ' ' .. ARGV[2])
return 1`;

/** KEYS: hosts of N, locs of N, owned:H. ARGV: host, channel. Withdraws H's locations, then H. */
const LEAVE = `${PARSE_LOC}
local macs = redis.call('SMEMBERS', KEYS[3])
for _, mac in ipairs(macs) do
  local cur = redis.call('HGET', KEYS[2], mac)
  if cur then
    local h, ip, v = parse(cur)
    if h == ARGV[1] then
      redis.call('HDEL', KEYS[2], mac)
      redis.call('PUBLISH', ARGV[2], 'unloc ' .. mac .. ' ' .. h .. ' ' .. v)
    end
  end
end
redis.call('DEL', KEYS[3])
if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 then redis.call('PUBLISH', ARGV[2], 'leave ' .. ARGV[1]) end
return #macs`;

/** KEYS: hosts zset, info. ARGV: host, "ip encap". Returns 1 when the host was absent (new, or reaped meanwhile). */
const HEARTBEAT = `local t = redis.call('TIME')
local ms = string.format('%.0f', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return redis.call('ZADD', KEYS[1], ms, ARGV[1])`;

/** KEYS: hosts zset, info. ARGV: ttl ms. Removes and returns the hosts whose heartbeat is older than the TTL. */
const REAP = `local t = redis.call('TIME')
local limit = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[1])
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', limit))
for _, h in ipairs(dead) do redis.call('ZREM', KEYS[1], h); redis.call('HDEL', KEYS[2], h) end
return dead`;

/** KEYS: hosts zset, info. Returns {now ms, host, score, info, …}. */
const LIST_HOSTS = `local t = redis.call('TIME')
local out = {string.format('%.0f', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))}
local all = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #all, 2 do
  out[#out + 1] = all[i]; out[#out + 1] = all[i + 1]; out[#out + 1] = redis.call('HGET', KEYS[2], all[i]) or ''
end
return out`;

type Client = Redis | Cluster;
interface Scripted {
  nvsClaim(locs: string, owned: string, mac: string, host: string, ip: string, ver: string, channel: string, ownedPrefix: string): Promise<[number, string, string]>;
  nvsWithdraw(locs: string, owned: string, mac: string, host: string, channel: string): Promise<number>;
  nvsJoin(hosts: string, host: string, ip: string, channel: string): Promise<number>;
  nvsLeave(hosts: string, locs: string, owned: string, host: string, channel: string): Promise<number>;
  nvsHeartbeat(zset: string, info: string, host: string, infoText: string): Promise<number>;
  nvsReap(zset: string, info: string, ttlMs: number): Promise<string[]>;
  nvsListHosts(zset: string, info: string): Promise<string[]>;
}

/** ioredis options for an address: fail fast while disconnected, reconnect forever with a capped delay. */
function clientFor(a: RedisAddress, maxRetryMs: number): Client {
  const common: RedisOptions = {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 10), maxRetryMs),
    lazyConnect: true,
    connectTimeout: 2000,
    password: a.password,
  };
  if (a.kind === 'server') return new Redis({ ...common, host: a.host, port: a.port, db: a.db, tls: a.tls ? {} : undefined });
  if (a.kind === 'sentinel') return new Redis({ ...common, sentinels: a.sentinels, name: a.name, db: a.db, sentinelRetryStrategy: (t: number) => Math.min(100 * t, maxRetryMs) });
  return new Cluster(a.nodes, { enableOfflineQueue: false, lazyConnect: true, clusterRetryStrategy: (t: number) => Math.min(100 * t, maxRetryMs), redisOptions: common });
}

export class RedisStore {
  private readonly cmd: Client;
  private readonly sub: Client;
  private readonly s: Scripted;
  private readonly subscribed = new Set<number>();
  private closed = false;

  constructor(private readonly o: StoreOptions) {
    const max = o.maxRetryMs ?? 1000;
    this.cmd = clientFor(o.address, max);
    this.sub = clientFor(o.address, max);
    this.cmd.defineCommand('nvsClaim', { numberOfKeys: 2, lua: CLAIM });
    this.cmd.defineCommand('nvsWithdraw', { numberOfKeys: 2, lua: WITHDRAW });
    this.cmd.defineCommand('nvsJoin', { numberOfKeys: 1, lua: JOIN });
    this.cmd.defineCommand('nvsLeave', { numberOfKeys: 3, lua: LEAVE });
    this.cmd.defineCommand('nvsHeartbeat', { numberOfKeys: 2, lua: HEARTBEAT });
    this.cmd.defineCommand('nvsReap', { numberOfKeys: 2, lua: REAP });
    this.cmd.defineCommand('nvsListHosts', { numberOfKeys: 2, lua: LIST_HOSTS });
    this.s = this.cmd as unknown as Scripted;
    // Ready when both connections are; down once when either is lost.
    const up = { cmd: false, sub: false };
    for (const [name, c] of [['cmd', this.cmd], ['sub', this.sub]] as const) {
      c.on('ready', () => {
        up[name] = true;
        if (up.cmd && up.sub) o.on.ready();
      });
      c.on('close', () => {
        const was = up.cmd && up.sub;
        up[name] = false;
        if (was && !this.closed) o.on.down(`${name === 'cmd' ? 'command' : 'subscriber'} connection closed`);
      });
      // ioredis reports every failed attempt here; the owner hears of a loss through `down`, once.
      c.on('error', () => undefined);
    }
    this.sub.on('message', (channel: string, text: string) => {
      const ev = parseEvent(channel, text);
      if (ev) o.on.event(ev);
    });
  }

  /** Starts connecting (both connections); resolves at once: `ready` tells when the command connection works. */
  connect(): void {
    this.cmd.connect().catch(() => undefined);
    this.sub.connect().catch(() => undefined);
  }

  get connected(): boolean {
    return this.cmd.status === 'ready';
  }

  async close(): Promise<void> {
    this.closed = true;
    this.cmd.disconnect();
    this.sub.disconnect();
  }

  /** Heartbeat; true when this host was absent from the registry (first beat, or reaped while away). */
  async heartbeat(ip: string, encap: string): Promise<boolean> {
    return (await this.s.nvsHeartbeat(HOSTS, HOST_INFO, this.o.hostId, `${ip} ${encap}`)) === 1;
  }

  /** Joins network `net` (idempotent: no message when already there with this ip). */
  async join(net: number, ip: string): Promise<void> {
    await this.cmd.sadd(hostNets(this.o.hostId), String(net));
    await this.s.nvsJoin(`${netKey(net)}:hosts`, this.o.hostId, ip, netKey(net));
  }

  /** Leaves `net`, withdrawing this host's locations there. */
  async leave(net: number): Promise<void> {
    await this.leaveFor(net, this.o.hostId);
    await this.cmd.srem(hostNets(this.o.hostId), String(net));
  }

  /**
   * Claims `mac` on `net` for this host. `ver` is the version kept from an
   * earlier claim, or undefined for a fresh one. Returns the stored version
   * and whether this host holds it (false: a newer claim elsewhere won).
   */
  async claim(net: number, mac: string, ip: string, ver: string | undefined): Promise<{ won: boolean; ver: string; owner: string }> {
    const k = netKey(net);
    const [won, v, owner] = await this.s.nvsClaim(`${k}:locs`, `${k}:owned:${this.o.hostId}`, mac, this.o.hostId, ip, ver ?? '0', k, `${k}:owned:`);
    return { won: won === 1, ver: String(v), owner: String(owner) };
  }

  /** Withdraws this host's location of `mac` on `net` (nothing when another host holds it now). */
  async withdraw(net: number, mac: string): Promise<void> {
    const k = netKey(net);
    await this.s.nvsWithdraw(`${k}:locs`, `${k}:owned:${this.o.hostId}`, mac, this.o.hostId, k);
  }

  /** Starts hearing `net`'s changes. Resolves once subscribed, so a snapshot read after it misses nothing. */
  async subscribe(net: number): Promise<void> {
    this.subscribed.add(net);
    await this.sub.subscribe(netKey(net));
  }

  async unsubscribe(net: number): Promise<void> {
    this.subscribed.delete(net);
    await this.sub.unsubscribe(netKey(net));
  }

  /** The network's hosts and locations as stored now. */
  async snapshot(net: number): Promise<{ hosts: Map<string, string>; locs: Location[] }> {
    const k = netKey(net);
    const [hosts, locs] = await Promise.all([this.cmd.hgetall(`${k}:hosts`), this.cmd.hgetall(`${k}:locs`)]);
    const out: Location[] = [];
    for (const [mac, v] of Object.entries(locs)) {
      const [host, ip, ver] = v.split(' ');
      if (host && ip && ver) out.push({ mac, host, ip, ver });
    }
    return { hosts: new Map(Object.entries(hosts)), locs: out };
  }

  /** Reaps hosts whose heartbeat is older than `ttlMs`: leaves each of their networks for them. Returns the reaped ids. */
  async reap(ttlMs: number): Promise<string[]> {
    const dead = (await this.s.nvsReap(HOSTS, HOST_INFO, ttlMs)).map(String);
    for (const h of dead) {
      const nets = await this.cmd.smembers(hostNets(h));
      for (const n of nets) await this.leaveFor(Number(n), h);
      await this.cmd.del(hostNets(h));
    }
    return dead;
  }

  /** Every registered host with the age of its heartbeat. */
  async hosts(): Promise<HostEntry[]> {
    const raw = (await this.s.nvsListHosts(HOSTS, HOST_INFO)).map(String);
    const now = Number(raw[0]);
    const out: HostEntry[] = [];
    for (let i = 1; i + 2 < raw.length + 1; i += 3) {
      const [ip = '', encap = ''] = raw[i + 2].split(' ');
      out.push({ host: raw[i], ip, encap, ageMs: now - Number(raw[i + 1]) });
    }
    return out;
  }

  /** Redis's own INFO section (for the scale bench). */
  async info(section: string): Promise<string> {
    return (this.cmd as Redis).info(section);
  }

  private async leaveFor(net: number, host: string): Promise<void> {
    const k = netKey(net);
    await this.s.nvsLeave(`${k}:hosts`, `${k}:locs`, `${k}:owned:${host}`, host, k);
  }
}

/** A channel message as a typed event; undefined for anything malformed (logged by nobody: it is not ours). */
export function parseEvent(channel: string, text: string): NetEvent | undefined {
  const m = /^nvs:\{net:(\d+)\}$/.exec(channel);
  if (!m) return undefined;
  const net = Number(m[1]);
  const f = text.split(' ');
  switch (f[0]) {
    case 'loc':
      return f.length === 5 ? { t: 'loc', net, mac: f[1], host: f[2], ip: f[3], ver: f[4] } : undefined;
    case 'unloc':
      return f.length === 4 ? { t: 'unloc', net, mac: f[1], host: f[2], ver: f[3] } : undefined;
    case 'join':
      return f.length === 3 ? { t: 'join', net, host: f[1], ip: f[2] } : undefined;
    case 'leave':
      return f.length === 2 ? { t: 'leave', net, host: f[1] } : undefined;
    default:
      return undefined;
  }
}
