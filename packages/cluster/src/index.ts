/**
 * @nvs/cluster — many hosts, one network: each host's cluster agent keeps
 * its share of the state in Redis (a registry with heartbeats, the hosts of
 * each network, where each MAC is) and turns what it hears about its own
 * networks into OpenFlow rules that send a frame straight to the right
 * host's tunnel, or flood it to the network's hosts only.
 *
 * ```ts
 * import { ClusterAgent, readClusterSettings } from '@nvs/cluster';
 * const settings = readClusterSettings(openVswitchExternalIds);   // nvs-redis, system-id, nvs-tunnel-ip, …
 * const agent = new ClusterAgent({ settings, log, sink: { apply: (bridge, add, del, fresh) => … } });
 * agent.start();
 * agent.setLocal({ ports: [{ name: 'vm1', ofport: 1, vni: 100, macs: ['52:54:00:00:00:01'] }], tunnel: { name: 'tun0', ofport: 9 }, problems: [] });
 * console.log(await agent.show());
 * await agent.stop();
 * ```
 */
export { ClusterAgent, type AgentLog, type AgentOptions, type FlowSink, type LocalPort, type LocalState, type Store } from './agent.ts';
export {
  ClusterConfigError,
  KEYS,
  MAX_VNI,
  formatRedisAddress,
  isUnicastMac,
  parseRedisAddress,
  readAttachedMac,
  readClusterSettings,
  readVni,
  type ClusterSettings,
  type Encap,
  type RedisAddress,
} from './config.ts';
export { CLUSTER_COOKIE, TABLE_FROM_LOCAL, TABLE_FROM_TUNNEL, computeFlows, diffFlows, type FlowInput, type FlowSet, type NetState } from './flows.ts';
export { RedisStore, parseEvent, type HostEntry, type Location, type NetEvent, type StoreEvents, type StoreOptions } from './store.ts';
