/**
 * The OpenFlow rules that make a bridge forward by the cluster's state, as
 * rule text in ovs-ofctl's syntax, all with the cookie CLUSTER_COOKIE:
 *
 * - table 0, priority 100: a local port of network N → reg0=N, table 40;
 *   the tunnel port with tun_id=N (a network this host serves) → reg0=N, table 41;
 *   priority 99: anything else from the tunnel port is dropped.
 * - table 40 (from a local port): a MAC of N on this host → its port; a MAC of N on
 *   another host → tun_id=N, tun_dst=that host, out the tunnel port; anything else
 *   (broadcast, multicast, unknown unicast) → N's other local ports plus one copy
 *   per other host serving N.
 * - table 41 (from the tunnel): local delivery only (split horizon): a local MAC →
 *   its port, anything else → N's local ports.
 *
 * The rules are a pure function of the state; `diffFlows` turns two sets into
 * the adds and strict deletes that take one to the other, so a change touches
 * only the rules it changes.
 */

/** "nvsclstr" would not fit; 0x6e7673 is "nvs". Every cluster rule carries it. */
export const CLUSTER_COOKIE = 0x6e76730001n;
export const TABLE_FROM_LOCAL = 40;
export const TABLE_FROM_TUNNEL = 41;

export interface NetState {
  /** Local ports on the network: OpenFlow number and the MACs known behind it. */
  ports: Array<{ ofport: number; macs: string[] }>;
  /** Other hosts serving the network: host id → tunnel ip. */
  hosts: ReadonlyMap<string, string>;
  /** MACs of the network on other hosts: MAC → the host's tunnel ip. */
  remote: ReadonlyMap<string, string>;
}

export interface FlowInput {
  /** The flow-based tunnel port's OpenFlow number; undefined while there is none (local switching only). */
  tunnelPort?: number;
  nets: ReadonlyMap<number, NetState>;
}

/** Rules by identity (`table=…,priority=…,match`, what a strict delete names) → the whole rule to add. */
export type FlowSet = Map<string, string>;

const cookie = `cookie=0x${CLUSTER_COOKIE.toString(16)}`;

function put(out: FlowSet, table: number, priority: number, match: string, actions: string[]): void {
  const id = `table=${table},priority=${priority}${match ? `,${match}` : ''}`;
  out.set(id, `${cookie},${id},actions=${actions.length ? actions.join(',') : 'drop'}`);
}

/** Every rule: each network's, then the tunnel's own. */
export function computeFlows(input: FlowInput): FlowSet {
  const out: FlowSet = new Map();
  for (const [vni, net] of [...input.nets].sort((a, b) => a[0] - b[0])) for (const [id, line] of netFlows(vni, net, input.tunnelPort)) out.set(id, line);
  for (const [id, line] of tunnelFlows(input.tunnelPort)) out.set(id, line);
  return out;
}

/** What is not about one network: tunnel packets of networks this host does not serve are dropped. */
export function tunnelFlows(tun: number | undefined): FlowSet {
  const out: FlowSet = new Map();
  if (tun !== undefined) put(out, 0, 99, `in_port=${tun}`, []);
  return out;
}

/** One network's rules: a change of network N recomputes only these. */
export function netFlows(vni: number, net: NetState, tun: number | undefined): FlowSet {
  const out: FlowSet = new Map();
  const ports = [...net.ports].sort((a, b) => a.ofport - b.ofport);
  const localMacs = new Map<string, number>();
  for (const p of ports) {
    put(out, 0, 100, `in_port=${p.ofport}`, [`set_field:${vni}->reg0`, `resubmit(,${TABLE_FROM_LOCAL})`]);
    for (const mac of p.macs) localMacs.set(mac, p.ofport);
  }
  const toLocal = ports.map((p) => `output:${p.ofport}`);
  for (const [mac, ofport] of localMacs) {
    put(out, TABLE_FROM_LOCAL, 100, `reg0=${vni},dl_dst=${mac}`, [`output:${ofport}`]);
    if (tun !== undefined) put(out, TABLE_FROM_TUNNEL, 100, `reg0=${vni},dl_dst=${mac}`, [`output:${ofport}`]);
  }
  const toRemote = (ip: string) => [`set_field:${vni}->tun_id`, `set_field:${ip}->tun_dst`, `output:${tun}`];
  const flood = [...toLocal];
  if (tun !== undefined) {
    put(out, 0, 100, `in_port=${tun},tun_id=${vni}`, [`set_field:${vni}->reg0`, `resubmit(,${TABLE_FROM_TUNNEL})`]);
    put(out, TABLE_FROM_TUNNEL, 10, `reg0=${vni}`, toLocal);
    for (const [mac, ip] of net.remote) if (!localMacs.has(mac)) put(out, TABLE_FROM_LOCAL, 100, `reg0=${vni},dl_dst=${mac}`, toRemote(ip));
    // One copy per host, however many of its ports are on the network; tun_id is set once.
    const ips = [...new Set(net.hosts.values())].sort();
    if (ips.length > 0) flood.push(`set_field:${vni}->tun_id`, ...ips.flatMap((ip) => [`set_field:${ip}->tun_dst`, `output:${tun}`]));
  }
  put(out, TABLE_FROM_LOCAL, 10, `reg0=${vni}`, flood);
  return out;
}

/** What takes the installed set to the wanted one: rules to add (new or with new actions) and identities to delete strictly. */
export function diffFlows(installed: FlowSet, wanted: FlowSet): { add: string[]; del: string[] } {
  const add: string[] = [];
  const del: string[] = [];
  for (const [id, line] of wanted) if (installed.get(id) !== line) add.push(line);
  for (const id of installed.keys()) if (!wanted.has(id)) del.push(id);
  return { add, del };
}
