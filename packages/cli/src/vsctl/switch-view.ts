// The model of ovs-vsctl's bridge commands: bridges (real and fake), their
// ports and interfaces, built by switch.ts. Kept apart from switch.ts so the
// command context can hold a view without importing the code that builds it.
import type { IdlRow } from '@nvs/ovsdb';

export interface VsctlBridge {
  name: string;
  /** The Bridge row of a real bridge; undefined for a fake one. */
  row?: IdlRow;
  /** A fake bridge's real parent. */
  parent?: VsctlBridge;
  /** A fake bridge's VLAN; 0 for a real bridge. */
  vlan: number;
  ports: VsctlPort[];
  /** A real bridge's fake bridges by VLAN. */
  children: Map<number, VsctlBridge>;
}

export interface VsctlPort {
  row: IdlRow;
  name: string;
  /** The bridge the port is on: the fake bridge of its VLAN when there is one. */
  bridge: VsctlBridge;
  ifaces: VsctlIface[];
}

export interface VsctlIface {
  row: IdlRow;
  name: string;
  port: VsctlPort;
}

export class SwitchView {
  readonly bridges = new Map<string, VsctlBridge>();
  readonly ports = new Map<string, VsctlPort>();
  readonly ifaces = new Map<string, VsctlIface>();
  /** Whether the verifies of find_port's kind were made in this transaction. */
  portsVerified = false;
}
