// The ports of a bridge as NORMAL sees them: OpenFlow port number, name and
// 802.1Q configuration (OVS's Port vlan_mode/tag/trunks). This module says
// which VLAN a packet received on a port belongs to and how a packet of a
// VLAN leaves a port, following ovs-vswitchd.conf.db(5):
// - access: untagged traffic in VLAN `tag`; tagged input (other than
//   priority-tagged VID 0) is dropped; output is untagged.
// - trunk: tagged input in `trunks` (all VLANs when empty); untagged input
//   is VLAN 0; output is tagged, except VLAN 0 without a PCP.
// - native-tagged / native-untagged: untagged input is VLAN `tag`; tagged
//   input as for trunk; the native VLAN leaves tagged / untagged. VLAN 0 is
//   never trunked: a trunk's untagged traffic does not leave a native port.
// Without an explicit mode, a port with a tag is access, else trunk.

import { BadPortConfigError } from './errors.ts';
import { OFPP } from './fields.ts';

export type VlanMode = 'access' | 'trunk' | 'native-tagged' | 'native-untagged';

/**
 * A tunnel port's settings as xlate needs them to build the tunnel
 * metadata of an output (OVS's tunnel options, already checked).
 */
export interface TunnelConfig {
  /** Outer IPv4 destination (host-order number), or 'flow': the flow's tun_dst. */
  readonly remoteIp: number | 'flow';
  /** Outer IPv4 source (0: the kernel's choice). */
  readonly localIp: number;
  /** Tunnel ID sent (24 bits), or 'flow': the flow's tun_id. */
  readonly outKey: number | 'flow';
  /** UDP destination port. */
  readonly dstPort: number;
  /** Outer TTL (the kernel's default, 64, when unset). */
  readonly ttl?: number;
  /** Outer TOS byte (0 when unset). */
  readonly tos?: number;
}

/** A port as the owner configures it. */
export interface PortConfig {
  /** OpenFlow port number (1–0xfeff, or 0xfffe for the bridge's LOCAL port). */
  readonly ofport: number;
  readonly name: string;
  readonly vlanMode?: VlanMode;
  /** Access VLAN, or the native VLAN of native-* modes. */
  readonly tag?: number | null;
  /** VLANs a trunk carries; empty or absent: all. */
  readonly trunks?: readonly number[];
  /** Leave the port out of flooding (OpenFlow no_flood). */
  readonly noFlood?: boolean;
  /** A tunnel port's settings (absent for other ports). */
  readonly tunnel?: TunnelConfig;
}

/** A validated port. */
export interface BridgePort {
  readonly ofport: number;
  readonly name: string;
  readonly mode: VlanMode;
  readonly tag: number;
  /** null: every VLAN. */
  readonly trunks: ReadonlySet<number> | null;
  readonly noFlood: boolean;
  readonly tunnel: TunnelConfig | null;
}

export function toBridgePort(c: PortConfig): BridgePort {
  if (!Number.isInteger(c.ofport) || c.ofport < 1 || (c.ofport >= OFPP.MAX && c.ofport !== OFPP.LOCAL)) {
    throw new BadPortConfigError(`port ${c.name}: ofport ${c.ofport} is not a valid OpenFlow port number`);
  }
  const tag = c.tag ?? null;
  if (tag !== null && (!Number.isInteger(tag) || tag < 0 || tag > 4095)) {
    throw new BadPortConfigError(`port ${c.name}: tag ${tag} is not a VLAN ID (0-4095)`);
  }
  for (const t of c.trunks ?? []) {
    if (!Number.isInteger(t) || t < 0 || t > 4095) throw new BadPortConfigError(`port ${c.name}: trunk ${t} is not a VLAN ID (0-4095)`);
  }
  const mode = c.vlanMode ?? (tag !== null ? 'access' : 'trunk');
  if (mode !== 'trunk' && tag === null) {
    throw new BadPortConfigError(`port ${c.name}: vlan_mode ${mode} needs a tag`);
  }
  const trunks = c.trunks && c.trunks.length ? new Set(c.trunks) : null;
  return { ofport: c.ofport, name: c.name, mode, tag: tag ?? 0, trunks, noFlood: c.noFlood ?? false, tunnel: c.tunnel ?? null };
}

/**
 * The VLAN a packet received on `p` belongs to, or null when the port does
 * not accept it. `tagged`/`vid` describe the packet's outer tag.
 */
export function inputVlan(p: BridgePort, tagged: boolean, vid: number): number | null {
  const tagVid = tagged && vid !== 0 ? vid : null;
  switch (p.mode) {
    case 'access':
      return tagVid === null ? p.tag : null;
    case 'trunk': {
      const v = tagVid ?? 0;
      return trunkCarries(p, v) ? v : null;
    }
    default:
      if (tagVid === null) return p.tag;
      return tagVid === p.tag || trunkCarries(p, tagVid) ? tagVid : null;
  }
}

/** True when VLAN `vlan` may leave port `p`. */
export function portInVlan(p: BridgePort, vlan: number): boolean {
  switch (p.mode) {
    case 'access':
      return p.tag === vlan;
    case 'trunk':
      return trunkCarries(p, vlan);
    default:
      // A native port never trunks VLAN 0 (its untagged traffic is the native VLAN).
      return p.tag === vlan || (vlan !== 0 && trunkCarries(p, vlan));
  }
}

/**
 * The VID to tag a packet of `vlan` with on `p`, or null to send it
 * untagged. VLAN 0 gets VID 0: like OVS, the caller sends it untagged unless
 * the packet came with a PCP, which then leaves in a priority tag.
 */
export function outputTag(p: BridgePort, vlan: number): number | null {
  switch (p.mode) {
    case 'access':
      return null;
    case 'native-untagged':
      return vlan === p.tag ? null : vlan;
    default:
      return vlan;
  }
}

function trunkCarries(p: BridgePort, vlan: number): boolean {
  return p.trunks === null || p.trunks.has(vlan);
}
