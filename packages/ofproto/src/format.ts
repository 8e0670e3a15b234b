// Text forms of engine state in the layouts of the OVS tools, for the CLIs
// and appctl: `ovs-ofctl dump-flows` lines, `dump-tables`, `ovs-appctl
// fdb/show` and `ovs-ofctl diff-flows`.

import type { FlowMod } from './flow-mod.ts';
import { diffRuleSets, formatDiffRule, formatRuleDiffs } from './flow-diff.ts';
import { formatMac } from './dpif.ts';
import type { Ofproto, TableStats } from './ofproto.ts';
import { printActions, printMatch, printPort, type PrintOptions } from './syntax/printer.ts';
import type { Rule } from './tables.ts';

/** One `dump-flows` line: ` cookie=0x5, duration=1.5s, table=0, n_packets=0, n_bytes=0, idle_age=1, priority=50,in_port=2 actions=output:3`. */
export function formatFlowStats(r: Rule, now: number, opts: PrintOptions = {}): string {
  const parts = [
    `cookie=0x${r.cookie.toString(16)}`,
    `duration=${formatSeconds(now - r.createdAt)}s`,
    `table=${r.table}`,
    `n_packets=${r.packets}`,
    `n_bytes=${r.bytes}`,
  ];
  if (r.flags.sendFlowRem) parts.push('send_flow_rem');
  if (r.flags.resetCounts) parts.push('reset_counts');
  if (r.flags.noPacketCounts) parts.push('no_packet_counts');
  if (r.flags.noByteCounts) parts.push('no_byte_counts');
  if (r.idleTimeout) parts.push(`idle_timeout=${r.idleTimeout}`);
  if (r.hardTimeout) parts.push(`hard_timeout=${r.hardTimeout}`);
  if (r.importance) parts.push(`importance=${r.importance}`);
  parts.push(`idle_age=${Math.floor((now - r.usedAt) / 1000)}`);
  if (r.modifiedAt !== r.createdAt) parts.push(`hard_age=${Math.floor((now - r.modifiedAt) / 1000)}`);
  const m = printMatch(r.match);
  return ` ${parts.join(', ')}, ${m ? `${m} ` : ''}actions=${printActions(r.actions, r.match, opts)}`;
}

/** Every rule of the bridge as dump-flows lines. */
export function formatDumpFlows(of: Ofproto, rules: readonly Rule[] = of.dumpFlows(), opts: PrintOptions = {}): string[] {
  const now = of.now();
  return rules.map((r) => formatFlowStats(r, now, opts));
}

/** `dump-tables`-style lines for tables that hold rules or saw lookups. */
export function formatDumpTables(stats: readonly TableStats[]): string[] {
  const lines: string[] = [];
  for (const t of stats) {
    if (t.active === 0 && t.lookups === 0 && t.table !== 0) continue;
    lines.push(`  ${t.table}: active=${t.active}, lookup=${t.lookups}, matched=${t.matched}`);
  }
  return lines;
}

/** `fdb/show`: ` port  VLAN  MAC                Age` then one line per entry. */
export function formatFdb(of: Ofproto): string[] {
  const lines = [' port  VLAN  MAC                Age'];
  for (const e of of.fdb()) {
    const port = printPort(e.port);
    lines.push(`${port.padStart(5)}  ${String(e.vlan).padStart(4)}  ${formatMac(e.mac)}  ${e.isStatic ? 'static' : String(e.age).padStart(3)}`);
  }
  return lines;
}

/** `ovs-ofctl diff-flows` output lines (empty when the sets are equal). */
export function formatDiffFlows(a: readonly FlowMod[], b: readonly FlowMod[], opts: PrintOptions = {}): string[] {
  return formatRuleDiffs(diffRuleSets(a, b), (fm) => formatDiffRule(fm, printMatch(fm.match), printActions(fm.actions, fm.match, opts)));
}

function formatSeconds(ms: number): string {
  return (Math.max(0, ms) / 1000).toFixed(3);
}
