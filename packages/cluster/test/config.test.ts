import { describe, expect, it } from 'vitest';
import { ClusterConfigError, formatRedisAddress, parseRedisAddress, readAttachedMac, readClusterSettings, readVni } from '../src/index.ts';

describe('nvs-redis addresses', () => {
  it('reads one server, with database and password', () => {
    expect(parseRedisAddress('redis://10.0.0.1:6380/2')).toEqual({ kind: 'server', host: '10.0.0.1', port: 6380, db: 2, tls: false });
    expect(parseRedisAddress('rediss://:s%40cret@redis.example')).toEqual({ kind: 'server', host: 'redis.example', port: 6379, db: 0, tls: true, password: 's@cret' });
    expect(parseRedisAddress('redis://[fd00::1]:7000')).toMatchObject({ host: 'fd00::1', port: 7000 });
  });

  it('reads Sentinel addresses with the master name, default port 26379', () => {
    const a = parseRedisAddress('redis-sentinel://10.0.0.1,10.0.0.2:26380,10.0.0.3/mymaster/1');
    expect(a).toEqual({
      kind: 'sentinel',
      sentinels: [
        { host: '10.0.0.1', port: 26379 },
        { host: '10.0.0.2', port: 26380 },
        { host: '10.0.0.3', port: 26379 },
      ],
      name: 'mymaster',
      db: 1,
    });
    expect(formatRedisAddress(a)).toBe('redis-sentinel://10.0.0.1:26379,10.0.0.2:26380,10.0.0.3:26379/mymaster/1');
  });

  it('reads Cluster seed nodes', () => {
    expect(parseRedisAddress('redis-cluster://a:7000,b:7001')).toEqual({
      kind: 'cluster',
      nodes: [
        { host: 'a', port: 7000 },
        { host: 'b', port: 7001 },
      ],
    });
  });

  it.each([
    ['http://x:1', 'is not redis://'],
    ['redis://a:1,b:2', 'takes one server'],
    ['redis-sentinel://a:1', "needs the master's name"],
    ['redis-cluster://a:1/3', 'takes no path'],
    ['redis://a:99999', 'out of range'],
    ['redis://a:1/x', 'is not a number'],
  ])('refuses %s', (text, why) => {
    expect(() => parseRedisAddress(text)).toThrow(why);
    expect(() => parseRedisAddress(text)).toThrow(ClusterConfigError);
  });
});

describe('Open_vSwitch external_ids', () => {
  const ids = { 'nvs-redis': 'redis://127.0.0.1:6379', 'system-id': 'host-1', 'nvs-tunnel-ip': '192.0.2.1' };

  it('is off without nvs-redis, and defaults to vxlan on br-int', () => {
    expect(readClusterSettings({})).toBeUndefined();
    expect(readClusterSettings(ids)).toMatchObject({ hostId: 'host-1', tunnelIp: '192.0.2.1', encap: 'vxlan', bridge: 'br-int' });
    expect(readClusterSettings({ ...ids, 'nvs-encap': 'geneve', 'nvs-bridge': 'br0' })).toMatchObject({ encap: 'geneve', bridge: 'br0' });
  });

  it('names the key that is wrong', () => {
    expect(() => readClusterSettings({ ...ids, 'system-id': '' })).toThrow('system-id is not set');
    expect(() => readClusterSettings({ ...ids, 'system-id': 'a b' })).toThrow('system-id');
    expect(() => readClusterSettings({ ...ids, 'nvs-tunnel-ip': '300.1.1.1' })).toThrow('nvs-tunnel-ip');
    expect(() => readClusterSettings({ ...ids, 'nvs-encap': 'gre' })).toThrow('nvs-encap');
  });

  it('reads a port network and attached MAC', () => {
    expect(readVni({ 'nvs-vni': '100' })).toBe(100);
    expect(readVni({})).toBeUndefined();
    expect(() => readVni({ 'nvs-vni': '0' })).toThrow('1 to 16777215');
    expect(() => readVni({ 'nvs-vni': '16777216' })).toThrow(ClusterConfigError);
    expect(() => readVni({ 'nvs-vni': '1e3' })).toThrow(ClusterConfigError);
    expect(readAttachedMac({ 'attached-mac': '52:54:00:AB:CD:EF' })).toBe('52:54:00:ab:cd:ef');
    expect(() => readAttachedMac({ 'attached-mac': '01:00:5e:00:00:01' })).toThrow('unicast');
  });
});
