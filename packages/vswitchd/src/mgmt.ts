/**
 * The flow-management socket of one bridge, `<rundir>/<bridge>.mgmt`: a
 * JSON-RPC transport in front of the FlowService. It parses rule text at
 * the edge (errors name file:line:column; nothing of a bad file is applied)
 * and prints answers in ovs-ofctl's layouts, so nvs-ofctl only relays text.
 *
 * The same socket speaks OpenFlow (ofconn.ts) to the real `ovs-ofctl` and
 * other OpenFlow clients: a connection is told apart by its first byte (an
 * OpenFlow header starts with its version, 0x01-0x06; JSON-RPC with `{`),
 * so nvs-ofctl keeps working unchanged while both are served.
 *
 * Methods (params: one object): `flow-mod` {command, file, text, dialect}, `replace-flows`
 * and `diff-flows` {file, text, dialect} (dialect `of10`, the default, or `of13`: OpenFlow 1.1+), `dump-flows` {filter, noStats, sort}, `dump-ports`
 * {port}, `dump-tables`, `show`. Replies are `{text}` plus counts; errors are
 * `{error: code, details: message}`. Long parses send `progress` {done,total}
 * notifications for the client's progress bar.
 */
import { existsSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { JsonRpcConnection, JsonRpcError } from '@nvs/jsonrpc';
import {
  fieldByName,
  formatDiffFlows,
  formatFlowStats,
  newMatch,
  NO_FLAGS,
  parseFlows,
  printActions,
  printMatch,
  printPort,
  printRule,
  readField,
  ruleToFlowMod,
  RuleError,
  type FlowMod,
  type FlowModCommand,
  type Rule,
} from '@nvs/ofproto';
import { FlowService, FlowServiceError } from './flow-service.ts';
import { OFPP_LOCAL } from './bridge.ts';
import type { ConnMgr } from './connmgr.ts';
import { OfConnection } from './ofconn.ts';

/** Highest OpenFlow version byte a header may start with (1.5). */
const OFP_MAX_VERSION = 0x06;

/** An error the management protocol reports with a stable code. */
class MgmtError extends JsonRpcError {
  constructor(code: string, message: string) {
    super(code, code, message);
  }
}

/** Lines parsed between progress notifications. */
const PROGRESS_CHUNK = 20_000;
const COMMANDS = new Set<FlowModCommand>(['add', 'modify', 'modify_strict', 'delete', 'delete_strict']);

function deleteAll(command: FlowModCommand): FlowMod {
  return { command, table: null, match: newMatch(), cookie: 0n, cookieMask: 0n, idleTimeout: 0, hardTimeout: 0, importance: 0, flags: NO_FLAGS, outPort: null, actions: [] };
}

function obj(params: unknown[]): Record<string, unknown> {
  const p = params[0];
  if (typeof p !== 'object' || p === null) throw new MgmtError('MGMT_BAD_REQUEST', 'request parameters must be one object');
  return p as Record<string, unknown>;
}

function str(p: Record<string, unknown>, key: string, fallback?: string): string {
  const v = p[key] ?? fallback;
  if (typeof v !== 'string') throw new MgmtError('MGMT_BAD_REQUEST', `request parameter "${key}" must be a string`);
  return v;
}

/** Formats a rule's match and actions as ovs-ofctl prints them (`priority=…,ip actions=…`). */
export function printRuleBody(r: { match: Rule['match']; actions: Rule['actions'] }): string {
  const m = printMatch(r.match);
  return `${m ? `${m} ` : ''}actions=${printActions(r.actions, r.match)}`;
}

/**
 * A rule as a line `add-flows` reads back identically (used to save the tables
 * across restarts): the lossless printer, not the OpenFlow 1.0 display form,
 * so goto_table, notes and set_field survive.
 */
export function printRuleLine(r: Rule): string {
  return printRule(ruleToFlowMod(r));
}

/** One `dump-flows --no-stats` line: only what differs from the defaults, as ovs-ofctl prints it. */
export function printNoStatsLine(r: Rule): string {
  const parts: string[] = [];
  if (r.cookie) parts.push(`cookie=0x${r.cookie.toString(16)}`);
  if (r.table) parts.push(`table=${r.table}`);
  if (r.idleTimeout) parts.push(`idle_timeout=${r.idleTimeout}`);
  if (r.hardTimeout) parts.push(`hard_timeout=${r.hardTimeout}`);
  if (r.importance) parts.push(`importance=${r.importance}`);
  return ` ${parts.map((p) => `${p}, `).join('')}${printRuleBody(r)}`;
}

function sortRules(rules: Rule[], sort: { field: string; reverse: boolean }): Rule[] {
  let key: (r: Rule) => bigint;
  if (sort.field === 'priority') key = (r) => BigInt(r.match.priority);
  else {
    const f = fieldByName(sort.field);
    if (!f) throw new MgmtError('MGMT_BAD_REQUEST', `--sort: unknown field "${sort.field}"`);
    // Rules that do not match on the field sort after those that do, as ovs-ofctl does.
    key = (r) => (readField(r.match.mask, f) === 0n ? -1n : readField(r.match.value, f));
  }
  const sign = sort.reverse ? -1 : 1;
  return [...rules].sort((a, b) => {
    const ka = key(a);
    const kb = key(b);
    if (ka === kb) return 0;
    if (ka === -1n) return 1;
    if (kb === -1n) return -1;
    return (ka < kb ? -1 : 1) * sign;
  });
}

export interface MgmtServerOptions {
  path: string;
  bridge: string;
  service: FlowService;
  log: Logger;
  /** Clock time (ms) of the rules' times. */
  now: () => number;
  /** Registry of OpenFlow connections for packet-ins. */
  connmgr?: ConnMgr;
}

export class MgmtServer {
  private server: Server | undefined;
  private readonly conns = new Set<JsonRpcConnection>();
  /** OpenFlow connections' sockets, closed with the server. */
  private readonly sockets = new Set<Socket>();

  constructor(private readonly o: MgmtServerOptions) {}

  async listen(): Promise<void> {
    if (existsSync(this.o.path)) unlinkSync(this.o.path);
    const server = createServer((s) => this.accept(s));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.o.path, () => {
        server.off('error', reject);
        resolve();
      });
    });
  }

  async close(): Promise<void> {
    for (const c of this.conns) c.close();
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private accept(socket: Socket): void {
    socket.once('data', (first: Buffer) => {
      socket.pause();
      socket.unshift(first);
      if (first[0] >= 1 && first[0] <= OFP_MAX_VERSION) {
        new OfConnection(socket, { bridge: this.o.bridge, service: this.o.service, log: this.o.log, now: this.o.now, connmgr: this.o.connmgr, kind: 'service' });
        socket.on('close', () => this.sockets.delete(socket));
        this.sockets.add(socket);
      } else this.acceptJsonRpc(socket);
      socket.resume();
    });
  }

  private acceptJsonRpc(socket: Socket): void {
    const conn = new JsonRpcConnection(socket, { log: this.o.log, name: `mgmt:${this.o.bridge}` });
    this.conns.add(conn);
    conn.on('close', () => this.conns.delete(conn));
    const handle = (method: string, fn: (p: Record<string, unknown>, conn: JsonRpcConnection) => unknown) =>
      conn.handle(method, async (params) => {
        try {
          return await fn(obj(params), conn);
        } catch (err) {
          throw this.toError(err);
        }
      });
    handle('flow-mod', (p, c) => this.flowMod(p, c));
    handle('replace-flows', async (p, c) => {
      const mods = await this.parse(p, 'add', c);
      const out = this.o.service.replace(this.o.bridge, mods);
      return { added: out.added.length, removed: out.removed.length, text: '' };
    });
    handle('diff-flows', async (p, c) => {
      const mods = await this.parse(p, 'add', c);
      const current = this.o.service.dump(this.o.bridge).map(ruleToFlowMod);
      const lines = formatDiffFlows(current, mods);
      return { text: lines.map((l) => `${l}\n`).join('') };
    });
    handle('dump-flows', (p) => this.dumpFlows(p));
    handle('dump-ports', (p) => this.dumpPorts(p));
    handle('dump-tables', () => this.dumpTables());
    handle('show', () => this.show());
  }

  private toError(err: unknown): Error {
    if (err instanceof JsonRpcError) return err;
    if (err instanceof RuleError) return new MgmtError(err.code, err.message);
    if (err instanceof FlowServiceError) return new MgmtError(err.code, err.message);
    return err as Error;
  }

  private portByName = (name: string): number | undefined => this.o.service.bridge(this.o.bridge).ports.get(name)?.ofport;

  /** Parses rule text in chunks, reporting progress; throws the first error (nothing is applied then). */
  private async parse(p: Record<string, unknown>, command: FlowModCommand, conn: JsonRpcConnection): Promise<FlowMod[]> {
    const text = str(p, 'text');
    const file = str(p, 'file', '<input>');
    // The OpenFlow version the client chose (nvs-ofctl -O): what the rules may use.
    const dialect = str(p, 'dialect', 'of10');
    if (dialect !== 'of10' && dialect !== 'of13') throw new MgmtError('MGMT_BAD_REQUEST', `unknown dialect "${dialect}" (of10 or of13)`);
    const lines = text.split('\n');
    const out: FlowMod[] = [];
    for (let start = 0; start < lines.length; start += PROGRESS_CHUNK) {
      // Leading newlines keep the parser's line numbers right for this chunk.
      const chunk = '\n'.repeat(start) + lines.slice(start, start + PROGRESS_CHUNK).join('\n');
      for (const fm of parseFlows(chunk, { file, command, dialect, portByName: this.portByName })) out.push(fm);
      if (lines.length > PROGRESS_CHUNK) {
        conn.notify('progress', [{ done: Math.min(lines.length, start + PROGRESS_CHUNK), total: lines.length }]);
        await new Promise((r) => setImmediate(r));
      }
    }
    return out;
  }

  private async flowMod(p: Record<string, unknown>, conn: JsonRpcConnection): Promise<unknown> {
    const command = str(p, 'command') as FlowModCommand;
    if (!COMMANDS.has(command)) throw new MgmtError('MGMT_BAD_REQUEST', `unknown flow-mod command "${command}"`);
    const isDelete = command === 'delete' || command === 'delete_strict';
    // `del-flows BRIDGE` with no flow deletes everything: an empty match in every table.
    const everything = isDelete && str(p, 'text').trim() === '';
    const mods = everything ? [deleteAll(command)] : await this.parse(p, command, conn);
    if (mods.length === 0) throw new MgmtError('RULE_SYNTAX', `${str(p, 'file', '<input>')}: no flows to apply`);
    const out = this.o.service.commit(this.o.bridge, mods);
    return { added: out.added.length, modified: out.modified.length, removed: out.removed.length, text: '' };
  }

  private dumpFlows(p: Record<string, unknown>): unknown {
    const filterText = str(p, 'filter', '');
    let filter: Parameters<FlowService['dump']>[1];
    if (filterText.trim()) {
      const [fm] = parseFlows(filterText, {
        file: '(filter)',
        command: 'delete',
        portByName: this.portByName,
      });
      filter = { table: fm.table, match: fm.match, cookie: fm.cookie, cookieMask: fm.cookieMask, outPort: fm.outPort };
    }
    let rules = this.o.service.dump(this.o.bridge, filter);
    const sort = p.sort as { field: string; reverse: boolean } | undefined;
    if (sort) rules = sortRules(rules, sort);
    const now = this.o.now();
    const noStats = p.noStats === true;
    const lines = rules.map((r) => (noStats ? printNoStatsLine(r) : formatFlowStats(r, now)));
    const header = sort ? '' : 'NXST_FLOW reply (xid=0x4):\n';
    return { text: header + lines.map((l) => `${l}\n`).join(''), count: rules.length };
  }

  private dumpPorts(p: Record<string, unknown>): unknown {
    const port = p.port === undefined ? undefined : str(p, 'port');
    const ports = this.o.service.ports(this.o.bridge, port);
    const out = [`OFPST_PORT reply (xid=0x2): ${ports.length} ports`];
    for (const { port: bp, counters: c } of ports) {
      const name = bp.ofport === OFPP_LOCAL ? 'LOCAL' : String(bp.ofport).padStart(2);
      out.push(`  port ${name}: rx pkts=${c.rxPackets}, bytes=${c.rxBytes}, drop=${c.rxDropped}, errs=0, frame=0, over=0, crc=0`);
      out.push(`           tx pkts=${c.txPackets}, bytes=${c.txBytes}, drop=${c.txDropped}, errs=0, coll=0`);
    }
    return { text: `${out.join('\n')}\n` };
  }

  private dumpTables(): unknown {
    const stats = this.o.service.tables(this.o.bridge).slice(0, 254);
    const out = ['OFPST_TABLE reply (xid=0x2):'];
    let i = 0;
    while (i < stats.length) {
      const s = stats[i];
      const quiet = (t: (typeof stats)[number]) => t.active === 0 && t.lookups === 0 && t.matched === 0;
      let j = i;
      if (quiet(s) && i > 0 && quiet(stats[i - 1])) {
        while (j + 1 < stats.length && quiet(stats[j + 1])) j++;
        out.push(j > i ? `  tables ${i}...${j}: ditto` : `  table ${i}: ditto`);
        i = j + 1;
        continue;
      }
      out.push(`  table ${s.table}:`, `    active=${s.active}, lookup=${s.lookups}, matched=${s.matched}`, '    max_entries=1000000', '');
      i++;
    }
    return { text: `${out.join('\n')}\n` };
  }

  private show(): unknown {
    const b = this.o.service.bridge(this.o.bridge);
    const ports = [...b.ports.values()].sort((x, y) => x.ofport - y.ofport);
    const local = ports.find((p) => p.ofport === OFPP_LOCAL);
    const dpid = `0000${(local?.mac ?? '00:00:00:00:00:00').replace(/:/g, '')}`;
    const out = [
      `OFPT_FEATURES_REPLY (xid=0x2): dpid:${dpid}`,
      'n_tables:254, n_buffers:0',
      'capabilities: FLOW_STATS TABLE_STATS PORT_STATS QUEUE_STATS ARP_MATCH_IP',
      'actions: output enqueue set_vlan_vid set_vlan_pcp strip_vlan mod_dl_src mod_dl_dst mod_nw_src mod_nw_dst mod_nw_tos mod_tp_src mod_tp_dst',
    ];
    for (const p of ports) {
      out.push(` ${printPort(p.ofport)}(${p.name}): addr:${p.mac}`, '     config:     0', '     state:      0', '     speed: 0 Mbps now, 0 Mbps max');
    }
    out.push('OFPT_GET_CONFIG_REPLY (xid=0x4): frags=normal miss_send_len=0');
    return { text: `${out.join('\n')}\n` };
  }
}
