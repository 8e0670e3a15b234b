/**
 * The flow-table commands of a bridge (what nvs-ofctl asks for), kept apart
 * from any transport: today they are reached over JSON-RPC on
 * `<rundir>/<bridge>.mgmt` (mgmt.ts), next over the OpenFlow wire protocol.
 * Requests and answers here are typed (FlowMod in, Rule out); parsing and
 * printing belong to the transports.
 *
 * Every change goes through `commit` or `replace`, which apply a batch all
 * or nothing and then tell the owner (revalidation, saving the rules).
 */
import { type Action, OFPP, OfprotoError, type FlowMod, type FlowModOutcome, type FlowTables, type Rule, type TableStats } from '@nvs/ofproto';
import type { BridgePort } from './bridge.ts';
import type { PortCounters } from './dpif.ts';
import type { OfBridge } from './ofbridge.ts';

/** Thrown when a flow request cannot be served (unknown bridge, refused flow-mod). */
export class FlowServiceError extends Error {
  constructor(
    readonly code: 'FLOW_NO_SUCH_BRIDGE' | 'FLOW_MOD_FAILED' | 'FLOW_NO_SUCH_PORT',
    message: string,
  ) {
    super(message);
    this.name = 'FlowServiceError';
  }
}

export interface FlowServiceDeps {
  bridge(name: string): OfBridge | undefined;
  portCounters(port: BridgePort): PortCounters;
  /** Called after rules changed: revalidate megaflows, save the rules. */
  changed(bridge: OfBridge, outcome: FlowModOutcome): void;
  /** Sends a packet through `actions` as if received on OpenFlow port `inPort` (a packet-out). */
  execute(bridge: OfBridge, inPort: number, actions: readonly Action[], packet: Uint8Array): void;
}

export type DumpFilter = Parameters<FlowTables['dump']>[0];

export class FlowService {
  constructor(private readonly deps: FlowServiceDeps) {}

  bridge(name: string): OfBridge {
    const b = this.deps.bridge(name);
    if (!b) throw new FlowServiceError('FLOW_NO_SUCH_BRIDGE', `${name} is not a bridge`);
    return b;
  }

  /** Applies flow-mods (add, modify, delete, in order) atomically: all of them or none. */
  commit(bridgeName: string, mods: readonly FlowMod[]): FlowModOutcome {
    const b = this.bridge(bridgeName);
    return this.changed(b, () => b.ofproto.applyFlowMods(mods));
  }

  /** Makes the tables hold exactly `adds` (replace-flows); unchanged rules keep their counters. */
  replace(bridgeName: string, adds: readonly FlowMod[]): FlowModOutcome {
    const b = this.bridge(bridgeName);
    return this.changed(b, () => b.ofproto.replaceFlows(adds));
  }

  /** A packet-out: `packet` through `actions` (output:TABLE runs the pipeline) with `inPort` as its input port. */
  packetOut(bridgeName: string, inPort: number, actions: readonly Action[], packet: Uint8Array): void {
    const b = this.bridge(bridgeName);
    const special = inPort === OFPP.CONTROLLER || inPort === OFPP.LOCAL || inPort === OFPP.NONE;
    if (!special && b.odpPort(inPort) === undefined) throw new FlowServiceError('FLOW_NO_SUCH_PORT', `packet-out: in_port ${inPort} is not a port of ${bridgeName}`);
    this.deps.execute(b, inPort, actions, packet);
  }

  dump(bridgeName: string, filter?: DumpFilter): Rule[] {
    return this.bridge(bridgeName).ofproto.dumpFlows(filter);
  }

  tables(bridgeName: string): TableStats[] {
    return this.bridge(bridgeName).ofproto.dumpTables();
  }

  /** Ports in OpenFlow number order with their counters; one port when `port` (name or number) is given. */
  ports(bridgeName: string, port?: string): Array<{ port: BridgePort; counters: PortCounters }> {
    const b = this.bridge(bridgeName);
    let ports = [...b.ports.values()].sort((x, y) => x.ofport - y.ofport);
    if (port !== undefined) {
      ports = ports.filter((p) => p.name === port || String(p.ofport) === port || (port === 'LOCAL' && p.ofport === 0xfffe));
      if (ports.length === 0) throw new FlowServiceError('FLOW_NO_SUCH_PORT', `${port}: no such port on bridge ${bridgeName}`);
    }
    return ports.map((p) => ({ port: p, counters: this.deps.portCounters(p) }));
  }

  private changed(b: OfBridge, apply: () => FlowModOutcome): FlowModOutcome {
    let outcome: FlowModOutcome;
    try {
      outcome = apply();
    } catch (err) {
      if (err instanceof OfprotoError) throw new FlowServiceError('FLOW_MOD_FAILED', err.message);
      throw err;
    }
    if (outcome.added.length + outcome.modified.length + outcome.removed.length > 0) this.deps.changed(b, outcome);
    return outcome;
  }
}
