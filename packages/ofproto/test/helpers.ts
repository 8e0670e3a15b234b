// Shared fixtures for the engine tests: a bridge with a fake clock and a
// silent logger, flows written in ovs-ofctl match syntax, and an independent
// Flow <-> datapath key conversion used to check megaflows from outside.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { identityOdpPorts, type DpFlowKey, type Megaflow, newDpFlowKey } from '../src/dpif.ts';
import { type Flow, newFlow, Slot } from '../src/fields.ts';
import { Ofproto, type OfprotoOptions } from '../src/ofproto.ts';
import { parseFlow, parseFlows } from '../src/syntax/parser.ts';
import type { PortConfig } from '../src/bridge-ports.ts';

/** A clock the test moves by hand. */
export class FakeClock {
  t = 1_000_000;
  now(): number {
    return this.t;
  }
  advance(seconds: number): void {
    this.t += seconds * 1000;
  }
}

export function bridge(opts: Partial<OfprotoOptions> & { ports?: readonly PortConfig[] } = {}): { of: Ofproto; clock: FakeClock } {
  const clock = new FakeClock();
  const ports = opts.ports ?? [1, 2, 3, 4].map((n) => ({ ofport: n, name: `p${n}` }));
  // Datapath ports equal OpenFlow ports, LOCAL is 100 (as in OVS's dummy datapath); others do not exist.
  const known = new Set(ports.map((p) => p.ofport));
  const id = identityOdpPorts(100);
  const of = new Ofproto({
    name: 'br0',
    odpPorts: { odpPort: (p) => (known.has(p) || p === 0xfffe ? id.odpPort(p) : undefined), ofPort: id.ofPort },
    logger: pino({ level: 'silent' }),
    clock,
    failMode: 'secure',
    ...opts,
    ports,
  });
  return { of, clock };
}

/** Adds rules written as an ovs-ofctl rule file. */
export function addFlows(of: Ofproto, text: string): void {
  of.applyFlowMods(parseFlows(text));
}

/** A packet's flow from ovs-ofctl match text (`in_port=1,tcp,tp_dst=80`); unspecified fields are 0. */
export function flowOf(text: string): Flow {
  const m = parseFlow(text, { command: 'delete' }).match;
  return Uint32Array.from(m.value);
}

const DP: [keyof DpFlowKey, number, number][] = [
  ['eth_dst', Slot.DL_DST, 2], ['eth_src', Slot.DL_SRC, 2], ['eth_type', Slot.DL_TYPE, 1],
  ['vlan_tci', Slot.VLAN_TCI, 1], ['cvlan_tci', Slot.VLAN_TCI1, 1], ['nw_proto', Slot.NW_PROTO, 1], ['nw_tos', Slot.NW_TOS, 1],
  ['nw_ttl', Slot.NW_TTL, 1], ['nw_frag', Slot.NW_FRAG, 1], ['tp_src', Slot.TP_SRC, 1], ['tp_dst', Slot.TP_DST, 1],
  ['tcp_flags', Slot.TCP_FLAGS, 1], ['nw_src', Slot.NW_SRC, 1], ['nw_dst', Slot.NW_DST, 1],
  ['ipv6_src', Slot.IPV6_SRC, 4], ['ipv6_dst', Slot.IPV6_DST, 4], ['nd_target', Slot.ND_TARGET, 4],
  ['ipv6_label', Slot.IPV6_LABEL, 1], ['arp_sha', Slot.ARP_SHA, 2], ['arp_tha', Slot.ARP_THA, 2],
];

/** The datapath key of a packet (identity port numbering). */
export function toDpKey(f: Flow): DpFlowKey {
  const k = newDpFlowKey() as unknown as Record<string, number | bigint>;
  k.in_port = f[Slot.IN_PORT];
  for (const [name, slot, words] of DP) {
    let v = 0n;
    for (let i = 0; i < words; i++) v = (v << 32n) | BigInt(f[slot + i]);
    k[name] = words === 4 ? v : Number(v);
  }
  k.vlan_tpid = f[Slot.VLAN_TCI] & 0x1000 ? 0x8100 : 0;
  return k as unknown as DpFlowKey;
}

/** The packet of a datapath key. */
export function fromDpKey(k: DpFlowKey): Flow {
  const f = newFlow();
  f[Slot.IN_PORT] = k.in_port;
  for (const [name, slot, words] of DP) {
    let v = BigInt(k[name]);
    for (let i = words - 1; i >= 0; i--) {
      f[slot + i] = Number(v & 0xffffffffn);
      v >>= 32n;
    }
  }
  return f;
}

/** True when a datapath key lies in the megaflow (key under mask). */
export function inMegaflow(m: Megaflow, k: DpFlowKey): boolean {
  for (const name of Object.keys(m.mask) as (keyof DpFlowKey)[]) {
    const mask = BigInt(m.mask[name]);
    if ((BigInt(k[name]) & mask) !== BigInt(m.key[name])) return false;
  }
  return true;
}

/** A key that agrees with `m` under its mask and takes other bits from `other`. */
export function mixUnderMask(m: Megaflow, other: DpFlowKey): DpFlowKey {
  const out = { ...other } as unknown as Record<string, number | bigint>;
  for (const name of Object.keys(m.mask) as (keyof DpFlowKey)[]) {
    const mask = BigInt(m.mask[name]);
    const v = (BigInt(m.key[name]) & mask) | (BigInt(other[name]) & ~mask);
    out[name] = typeof other[name] === 'bigint' ? v : Number(BigInt.asUintN(64, v));
  }
  return out as unknown as DpFlowKey;
}

/** A real ovs-vswitchd on a dummy datapath with its ovsdb-server, in a temp dir. */
export interface RealOvs {
  /** Runs an OVS tool with this instance's environment; returns stdout. */
  run(cmd: string, args: string[], input?: string): string;
  /** `ovs-appctl ofproto/trace br0 <flow> [extra]` output lines. */
  trace(flow: string, ...extra: string[]): string[];
  /** `unix:` address of br0's management socket, for ovs-ofctl. */
  readonly mgmt: string;
  /** ovs-vswitchd's control socket, for ovs-appctl -t. */
  readonly ctl: string;
  stop(): void;
}

/**
 * Starts ovsdb-server and ovs-vswitchd (--enable-dummy) and creates bridge
 * br0 (netdev datapath) with `bridgeArgs` appended to the add-br command
 * (ports, fail_mode…). Datapath port numbers follow the order ports are
 * added; LOCAL is datapath port 100.
 */
export function startOvs(bridgeArgs: string[]): RealOvs {
  const dir = mkdtempSync(join(tmpdir(), 'nvs-ofproto-ovs-'));
  const env = { ...process.env, OVS_RUNDIR: dir, OVS_LOGDIR: dir, OVS_DBDIR: dir };
  const run = (cmd: string, args: string[], input?: string) =>
    execFileSync(cmd, args, { env, encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
  const db = `unix:${join(dir, 'db.sock')}`;
  run('ovsdb-tool', ['create', join(dir, 'conf.db'), '/usr/share/openvswitch/vswitch.ovsschema']);
  run('ovsdb-server', [join(dir, 'conf.db'), `--remote=punix:${join(dir, 'db.sock')}`, `--pidfile=${join(dir, 'ovsdb.pid')}`, '--detach', `--log-file=${join(dir, 'ovsdb.log')}`]);
  const stop = () => {
    for (const pid of ['vswitchd.pid', 'ovsdb.pid']) {
      try {
        process.kill(Number(readFileSync(join(dir, pid), 'utf8').trim()));
      } catch {
        // not running
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    run('ovs-vsctl', [`--db=${db}`, '--no-wait', 'init']);
    run('ovs-vswitchd', ['--enable-dummy=override', db, `--pidfile=${join(dir, 'vswitchd.pid')}`, '--detach', `--log-file=${join(dir, 'vswitchd.log')}`]);
    run('ovs-vsctl', [`--db=${db}`, 'add-br', 'br0', '--', 'set', 'bridge', 'br0', 'datapath_type=netdev', ...bridgeArgs]);
  } catch (e) {
    stop();
    throw e;
  }
  const ctl = join(dir, readdirSync(dir).find((f) => f.startsWith('ovs-vswitchd.') && f.endsWith('.ctl'))!);
  return {
    run,
    trace: (flow, ...extra) => run('ovs-appctl', ['-t', ctl, 'ofproto/trace', 'br0', flow, ...extra]).trim().split('\n'),
    mgmt: `unix:${join(dir, 'br0.mgmt')}`,
    ctl,
    stop,
  };
}

/** `add-port` arguments for dummy ports with fixed OpenFlow numbers and extra Port settings. */
export function ovsPorts(ports: { n: number; port?: string[] }[]): string[] {
  return ports.flatMap(({ n, port = [] }) => [
    '--', 'add-port', 'br0', `p${n}`, ...port, '--', 'set', 'Interface', `p${n}`, 'type=dummy', `ofport_request=${n}`,
  ]);
}
