/**
 * One bridge's OpenFlow side as vswitchd holds it: the ofproto engine's
 * Ofproto (tables, MAC learning, xlate) plus the OdpPortMap between
 * OpenFlow and datapath port numbers, kept in step with the bridge model.
 * Configuration flows one way, model → ofproto, after each reconciliation.
 */
import type { Logger } from 'pino';
import { Ofproto, toBridgePort, type Clock, type PortConfig as OfPortConfig } from '@nvs/ofproto';
import { type Bridge, type BridgePort, type InterfaceStatus, NO_ODP_PORT } from './bridge.ts';

export class OfBridge {
  readonly ofproto: Ofproto;
  private odpByOf = new Map<number, number>();
  private ofByOdp = new Map<number, number>();
  /** The port and bridge settings last pushed into ofproto, to push only changes. */
  private applied = '';

  constructor(
    readonly model: Bridge,
    private readonly log: Logger,
    clock: Clock,
    /** The bridge and OpenFlow port at the far end of a patch port, when it has a working peer. */
    private readonly patchPeer: (port: BridgePort) => { ofproto: Ofproto; ofport: number } | undefined,
  ) {
    const cfg = model.config;
    this.ofproto = new Ofproto({
      name: model.name,
      logger: log,
      clock,
      odpPorts: { odpPort: (of) => this.odpByOf.get(of), ofPort: (odp) => this.ofByOdp.get(odp) },
      failMode: cfg.failMode,
      macAgingTime: cfg.macAgingTime,
      macTableSize: cfg.macTableSize,
    });
  }

  /** Whether the bridge has patch ports (its translations may cross into other bridges). */
  get hasPatchPorts(): boolean {
    for (const p of this.model.ports.values()) if (p.type === 'patch') return true;
    return false;
  }

  get name(): string {
    return this.model.name;
  }

  /** The bridge's ports by name (from the model). */
  get ports(): ReadonlyMap<string, BridgePort> {
    return this.model.ports;
  }

  odpPort(ofport: number): number | undefined {
    return this.odpByOf.get(ofport);
  }

  ofPort(odpPort: number): number | undefined {
    return this.ofByOdp.get(odpPort);
  }

  /**
   * Follows the model after a reconciliation: ports (a port whose VLAN
   * settings ofproto refuses stays out of forwarding, its Interface gets the
   * error in `status`), fail mode and MAC learning limits. Returns whether
   * anything changed (the bridge's megaflows must then be revalidated).
   */
  sync(status: Map<string, InterfaceStatus>): boolean {
    const cfg = this.model.config;
    const ports: OfPortConfig[] = [];
    const odpByOf = new Map<number, number>();
    const ofByOdp = new Map<number, number>();
    for (const p of this.model.ports.values()) {
      const pc: OfPortConfig = { ofport: p.ofport, name: p.name, vlanMode: p.vlanMode, tag: p.tag ?? null, trunks: p.trunks, tunnel: p.tunnel };
      try {
        toBridgePort(pc);
      } catch (err) {
        this.log.warn({ port: p.name, err: (err as Error).message }, 'port left out of forwarding');
        status.set(p.ifaceUuid, { ofport: p.ofport, error: (err as Error).message });
        continue;
      }
      ports.push(pc);
      if (p.odpPort === NO_ODP_PORT) continue;
      odpByOf.set(p.ofport, p.odpPort);
      ofByOdp.set(p.odpPort, p.ofport);
    }
    const signature = JSON.stringify([ports, [...odpByOf], cfg.failMode, cfg.macAgingTime, cfg.macTableSize]);
    if (signature === this.applied) return false;
    this.applied = signature;
    this.odpByOf = odpByOf;
    this.ofByOdp = ofByOdp;
    this.ofproto.setPorts(ports);
    const patches = new Map([...this.model.ports.values()].filter((p) => p.type === 'patch').map((p) => [p.ofport, p]));
    this.ofproto.setPatchPeers(patches.size ? (ofport) => {
      const p = patches.get(ofport);
      return p && this.patchPeer(p);
    } : undefined);
    this.ofproto.setFailMode(cfg.failMode);
    this.ofproto.setMacLearning(cfg.macAgingTime, cfg.macTableSize);
    return true;
  }
}
