/**
 * Joins nvs-vswitchd to a cluster when `Open_vSwitch` `external_ids` say so
 * (`nvs-redis`, `system-id`, `nvs-tunnel-ip`, `nvs-encap`, `nvs-bridge`):
 * runs one ClusterAgent (@nvs/cluster) in this process, hands it the
 * cluster bridge's ports after every reconfiguration and applies the rules
 * it asks for through the FlowService, like any other flow-mod (so they are
 * revalidated, saved and shown by dump-flows). Settings that change restart
 * the agent; settings that are wrong are reported by `cluster/show` and in
 * the log, and the switch goes on locally.
 *
 * Why in-process rather than a daemon beside it (as ovn-controller is): the
 * agent needs the bridge's ports and OpenFlow numbers after each
 * reconfiguration and a way to install rules, both of which vswitchd has
 * in hand; a separate process would need a second database client and a
 * flow-management client for the same facts.
 */
import type { Logger } from 'pino';
import { ClusterAgent, ClusterConfigError, CLUSTER_COOKIE, readAttachedMac, readClusterSettings, readVni, type ClusterSettings, type LocalPort, type LocalState } from '@nvs/cluster';
import { parseFlow, type FlowMod } from '@nvs/ofproto';
import type { Switch } from './bridge.ts';
import type { SwitchConfig } from './config.ts';
import type { FlowService } from './flow-service.ts';

export interface ClusterLinkDeps {
  log: Logger;
  flows: FlowService;
  /** Options for tests (a short heartbeat); default the agent's own. */
  agent?: { heartbeatMs?: number; ttlMs?: number };
}

export class ClusterLink {
  private agent: ClusterAgent | undefined;
  private settingsText: string | undefined;
  private configError: string | undefined;

  constructor(private readonly d: ClusterLinkDeps) {}

  /** After each reconfiguration: (re)start or stop the agent as the settings say, then give it the bridge's ports. */
  update(cfg: SwitchConfig, sw: Switch): void {
    let settings: ClusterSettings | undefined;
    try {
      settings = readClusterSettings(cfg.externalIds);
      this.configError = undefined;
    } catch (err) {
      if (!(err instanceof ClusterConfigError)) throw err;
      if (this.configError !== err.message) this.d.log.error({ err: err.message }, 'cluster settings cannot be used: this host stays out of the cluster');
      this.configError = err.message;
    }
    const text = settings && JSON.stringify(settings);
    if (text !== this.settingsText) {
      void this.stopAgent();
      this.settingsText = text;
      if (settings) this.startAgent(settings);
    }
    if (this.agent && settings) this.agent.setLocal(localState(cfg, sw, settings));
  }

  async stop(): Promise<void> {
    await this.stopAgent();
    this.settingsText = undefined;
  }

  /** `cluster/show`. */
  async show(): Promise<string> {
    if (this.configError) return `cluster settings cannot be used: ${this.configError}\n`;
    if (!this.agent) return 'not in a cluster (Open_vSwitch external_ids:nvs-redis is not set)\n';
    return this.agent.show();
  }

  private startAgent(settings: ClusterSettings): void {
    const log = this.d.log;
    this.agent = new ClusterAgent({
      settings,
      log,
      ...this.d.agent,
      sink: { apply: (bridge, add, del, fresh) => this.applyRules(bridge, add, del, fresh) },
    });
    this.agent.start();
    log.info({ host: settings.hostId, bridge: settings.bridge, tunnelIp: settings.tunnelIp }, 'cluster agent started');
  }

  private async stopAgent(): Promise<void> {
    const a = this.agent;
    this.agent = undefined;
    await a?.stop();
  }

  private applyRules(bridge: string, add: string[], del: string[], fresh: boolean): void {
    const mods: FlowMod[] = [];
    if (fresh) mods.push(parseFlow(`cookie=0x${CLUSTER_COOKIE.toString(16)}/0xffffffffffffffff`, { command: 'delete' }));
    for (const id of del) mods.push(parseFlow(id, { command: 'delete_strict' }));
    for (const line of add) mods.push(parseFlow(line, { command: 'add' }));
    this.d.flows.commit(bridge, mods);
  }
}

/** The cluster bridge's ports with a network, its tunnel port, and what keeps the rest out. */
export function localState(cfg: SwitchConfig, sw: Switch, s: ClusterSettings): LocalState {
  const problems: string[] = [];
  const bridgeCfg = cfg.bridges.find((b) => b.name === s.bridge);
  const model = sw.bridges.get(s.bridge);
  if (!bridgeCfg || !model) return { ports: [], problems: [`bridge ${s.bridge} does not exist (Open_vSwitch external_ids:nvs-bridge)`] };
  const ports: LocalPort[] = [];
  let tunnel: LocalState['tunnel'];
  for (const p of bridgeCfg.ports) {
    const iface = p.interfaces[0];
    const bp = iface && model.ports.get(iface.name);
    if (!iface) continue;
    if (iface.type === s.encap && iface.options.remote_ip === 'flow') {
      if (iface.options.key !== 'flow') problems.push(`${iface.name}: the tunnel port needs options:key=flow`);
      else if (!bp) problems.push(`${iface.name}: the tunnel port is not working${iface.error ? `: ${iface.error}` : ''}`);
      else tunnel = { name: iface.name, ofport: bp.ofport };
      continue;
    }
    try {
      const vni = readVni(iface.externalIds);
      if (vni === undefined) continue;
      if (!bp) continue; // a port that does not work has Interface.error already
      const mac = readAttachedMac(iface.externalIds);
      ports.push({ name: iface.name, ofport: bp.ofport, vni, macs: mac ? [mac] : [] });
    } catch (err) {
      if (!(err instanceof ClusterConfigError)) throw err;
      problems.push(`${iface.name}: ${err.message}`);
    }
  }
  if (!tunnel) problems.push(`no ${s.encap} port with options:remote_ip=flow options:key=flow on ${s.bridge}: traffic stays on this host`);
  return { ports, tunnel, problems };
}
