/**
 * The OpenFlow connections of each bridge (OVS: connmgr.c), for the
 * messages the switch sends on its own: a packet for the controller (a
 * `controller` action, reached through the datapath's userspace upcall) goes
 * to every connection of its bridge that asked for it.
 */
import type { RemovalReason, Rule } from '@nvs/ofproto';
import type { BridgePort } from './bridge.ts';
import type { ConnRegistry, OfConnection, PacketInEvent } from './ofconn.ts';

/** OpenFlow's flow-removed reasons (OFPRR_*). */
const REMOVED_REASON: Record<RemovalReason, number | undefined> = { idle_timeout: 0, hard_timeout: 1, delete: 2, replaced: undefined };

export class ConnMgr implements ConnRegistry {
  private readonly byBridge = new Map<string, Set<OfConnection>>();
  /** The largest role-request generation id seen per bridge. */
  private readonly generations = new Map<string, bigint>();

  /** Records a master/slave request's generation id; false when it is older than one seen (compared as OpenFlow says: signed 64-bit difference). */
  acceptGeneration(bridge: string, id: bigint): boolean {
    const cur = this.generations.get(bridge);
    if (cur !== undefined && BigInt.asIntN(64, id - cur) < 0n) return false;
    this.generations.set(bridge, id);
    return true;
  }

  generation(bridge: string): bigint | null {
    return this.generations.get(bridge) ?? null;
  }

  /** A connection became master: every other master of the bridge becomes a slave. */
  demoteMasters(bridge: string, master: OfConnection): void {
    for (const c of this.byBridge.get(bridge) ?? []) if (c !== master) c.demote(this.generation(bridge));
  }

  add(bridge: string, conn: OfConnection): void {
    let set = this.byBridge.get(bridge);
    if (!set) this.byBridge.set(bridge, (set = new Set()));
    set.add(conn);
  }

  remove(bridge: string, conn: OfConnection): void {
    const set = this.byBridge.get(bridge);
    set?.delete(conn);
    if (set?.size === 0) this.byBridge.delete(bridge);
  }

  /** Tells the bridge's connections about a port added (0), deleted (1) or changed (2). */
  portStatus(bridge: string, reason: number, port: BridgePort): void {
    for (const c of this.byBridge.get(bridge) ?? []) c.portStatus(reason, port);
  }

  /** Reports rules gone (deleted or expired) that asked for it (send_flow_rem) to the bridge's connections. */
  flowRemoved(bridge: string, gone: readonly { rule: Rule; reason: RemovalReason }[], now: number): void {
    const conns = this.byBridge.get(bridge);
    if (!conns) return;
    for (const { rule, reason } of gone) {
      const code = REMOVED_REASON[reason];
      if (!rule.flags.sendFlowRem || code === undefined) continue;
      for (const c of conns) c.flowRemoved(rule, code, now);
    }
  }

  /** Sends a packet-in to the bridge's connections that take it; returns how many did. */
  packetIn(bridge: string, ev: PacketInEvent): number {
    let sent = 0;
    for (const c of this.byBridge.get(bridge) ?? []) if (c.packetIn(ev)) sent++;
    return sent;
  }
}
