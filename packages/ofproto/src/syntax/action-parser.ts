/**
 * The action list of a rule line (everything after `actions=`): each action
 * in ovs-ofctl's spelling to an `Action` (values written in their field's
 * match notation), then the whole list checked for consistency with the
 * match (checks.ts).
 */

import type { Action, ControllerReason, LearnAction, LearnSpec } from '../actions.ts';
import { EthType, type Field, type FieldRange, fieldByName, IpProto, mustField, OFPP, Slot, VLAN_CFI } from '../fields.ts';
import { DEFAULT_PRIORITY, type Match, newMatch } from '../match.ts';
import { checkActions, requirePrereqs } from './checks.ts';
import { RuleUnsupportedError } from './errors.ts';
import { type LineCtx, parsePort, portNumber, RESERVED_PORTS, wrap } from './line-context.ts';
import { parseValueMask } from './match-parser.ts';
import { type KvScanner, splitArgs } from './scanner.ts';
import { parseIpv4Masked, parseMac, parseU64, parseUint, parseUintN, ValueError } from './values.ts';

/** Real OVS actions nvs does not implement yet: a clear "not supported" error. */
const UNSUPPORTED_ACTIONS = new Set([
  'ct', 'ct_clear', 'nat', 'group', 'meter', 'enqueue', 'set_queue', 'pop_queue',
  'push_mpls', 'pop_mpls', 'set_mpls_label', 'set_mpls_tc', 'set_mpls_ttl', 'dec_mpls_ttl',
  'fin_timeout', 'multipath', 'bundle', 'bundle_load', 'sample',
  'clone', 'check_pkt_larger', 'encap', 'decap', 'dec_nsh_ttl', 'delete_field',
]);

/** Actions without an argument, as they are written. */
const BARE_ACTIONS: ReadonlyMap<string, Action> = new Map<string, Action>([
  ['exit', { type: 'exit' }],
  ['debug_recirc', { type: 'debug_recirc' }],
  ['debug_slow', { type: 'debug_slow' }],
  ['clear_actions', { type: 'clear_actions' }],
]);

/** Names a `set_field`/`load`/`move` target may use beyond the registry's own. */
const ACTION_FIELD_ALIASES: ReadonlyMap<string, string> = new Map([
  ['tp_src', 'tcp_src'],
  ['tp_dst', 'tcp_dst'],
]);

/**
 * `actionSet`: the list is the argument of write_actions (checked as an
 * action set: OVS lets pop_vlan there go unchecked against the match).
 */
export function parseActions(ctx: LineCtx, start: number, end: number, match: Match, table: number | null, actionSet = false): Action[] {
  const { src } = ctx;
  const out: Action[] = [];
  let sawDrop = -1;
  const sc = ctx.scanner.reset(start, end);
  while (sc.next()) {
    const key = sc.key;
    const name = key.toLowerCase();
    const at = sc.keyAt;
    const v = sc.value;
    const hasValue = sc.delim !== '';
    try {
      switch (name) {
        case 'drop':
          sawDrop = at;
          continue;
        case 'output':
          out.push(parseOutput(ctx, needValue(sc), sc.valueAt, sc.delim === '('));
          continue;
        case 'set_tunnel':
        case 'set_tunnel64': {
          // As ovs-ofctl: set_tunnel with a value beyond 32 bits is set_tunnel64.
          const value = parseU64(needValue(sc), 'tunnel ID');
          const form = name === 'set_tunnel64' || value > 0xffffffffn ? 'set_tunnel64' : 'set_tunnel';
          out.push({ type: 'set_field', field: mustField('tun_id'), value, mask: (1n << 64n) - 1n, form });
          continue;
        }
        case 'controller':
          out.push(parseController(ctx, hasValue ? v : null, sc.valueAt, sc.delim === '('));
          continue;
        case 'mod_vlan_vid':
        case 'set_vlan_vid': {
          const vid = parseUintN(needValue(sc), 16, 'VLAN VID');
          if (vid > 4095) throw src.error(sc.valueAt, `'${v}' is not a valid VLAN VID (0 to 4095)`);
          out.push({ type: 'set_vlan_vid', vid, pushIfNeeded: true });
          continue;
        }
        case 'mod_vlan_pcp':
        case 'set_vlan_pcp': {
          const pcp = parseUintN(needValue(sc), 8, 'VLAN PCP');
          if (pcp > 7) throw src.error(sc.valueAt, `'${v}' is not a valid VLAN PCP (0 to 7)`);
          out.push({ type: 'set_vlan_pcp', pcp, pushIfNeeded: true });
          continue;
        }
        case 'strip_vlan':
        case 'pop_vlan':
          out.push({ type: 'pop_vlan' });
          continue;
        case 'push_vlan': {
          const et = parseUintN(needValue(sc), 16, 'ethertype');
          if (et !== EthType.VLAN && et !== EthType.VLAN_8021AD) {
            throw src.error(sc.valueAt, `'${v}' is not a VLAN ethertype (expected 0x8100 or 0x88a8)`);
          }
          out.push({ type: 'push_vlan', ethertype: et });
          continue;
        }
        case 'mod_dl_src':
        case 'mod_dl_dst':
        case 'mod_nw_src':
        case 'mod_nw_dst':
        case 'mod_tp_src':
        case 'mod_tp_dst':
        case 'mod_nw_ttl':
        case 'mod_nw_ecn':
        case 'mod_nw_tos':
          out.push(parseMod(ctx, name, needValue(sc), sc.valueAt, match));
          continue;
        case 'dec_ttl':
          out.push(parseDecTtl(ctx, hasValue ? v : null, sc.valueAt));
          continue;
        case 'set_field':
          out.push(parseSetField(ctx, needValue(sc), sc.valueAt));
          continue;
        case 'load':
          out.push(parseLoad(ctx, needValue(sc), sc.valueAt));
          continue;
        case 'move':
          out.push(parseMove(ctx, needValue(sc), sc.valueAt));
          continue;
        case 'resubmit':
          out.push(parseResubmit(ctx, needValue(sc), sc.valueAt, sc.delim === '('));
          continue;
        case 'goto_table': {
          const table = parseUintN(needValue(sc), 8, 'table');
          if (table > 254) throw src.error(sc.valueAt, `goto_table:${v}: tables are 0 to 254`);
          out.push({ type: 'goto_table', table });
          continue;
        }
        case 'write_metadata': {
          const val = needValue(sc);
          const slash = val.indexOf('/');
          const value = parseU64(slash < 0 ? val : val.slice(0, slash), 'metadata');
          const mask = slash < 0 ? (1n << 64n) - 1n : parseU64(val.slice(slash + 1), 'metadata mask');
          out.push({ type: 'write_metadata', value, mask });
          continue;
        }
        case 'note':
          out.push({ type: 'note', data: parseNote(ctx, hasValue ? v : '', sc.valueAt) });
          continue;
        case 'conjunction':
          out.push(parseConjunction(ctx, needValue(sc), sc.valueAt));
          continue;
        case 'learn':
          out.push(parseLearn(ctx, needValue(sc), sc.valueAt, match));
          continue;
        case 'push':
          out.push({ type: 'stack_push', src: parseFieldRange(ctx, needValue(sc), sc.valueAt) });
          continue;
        case 'pop': {
          const dst = parseFieldRange(ctx, needValue(sc), sc.valueAt);
          if (!dst.field.writable) throw src.error(sc.valueAt, `field '${dst.field.name}' cannot be written`);
          out.push({ type: 'stack_pop', dst });
          continue;
        }
        case 'write_actions': {
          // The nested list is checked as an action set: no instructions inside.
          const innerAt = sc.valueAt;
          const resume = innerAt + needValue(sc).length + 1;
          const inner = parseActions(ctx, innerAt, innerAt + v.length, match, table, true);
          const bad = inner.find((a) => INSTRUCTIONS.has(a.type));
          if (bad) throw src.error(innerAt, `${bad.type} is an instruction and cannot be written into the action set`);
          out.push({ type: 'write_actions', actions: inner });
          sc.reset(resume, end);
          continue;
        }
      }
      const bare = BARE_ACTIONS.get(name);
      if (bare && !hasValue) {
        out.push(bare);
        continue;
      }
      if (UNSUPPORTED_ACTIONS.has(name)) {
        throw new RuleUnsupportedError(src.pos(at), `action '${key}' is not supported yet`);
      }
      if (!hasValue) {
        // A bare word is an output port: a number, a reserved name or a port name.
        const port = parsePortOrNull(ctx, key);
        if (port !== null) {
          out.push(outputTo(ctx, port, at));
          continue;
        }
      }
      throw src.error(at, `unknown action '${key}' (expected e.g. output:N, NORMAL, drop, resubmit(,T), set_field:V->F)`);
    } catch (e) {
      throw wrap(ctx, sc.valueAt, e);
    }
  }
  if (sawDrop >= 0 && out.length > 0) {
    throw src.error(sawDrop, "'drop' must be the only action (an empty action list also drops)");
  }
  checkActions(ctx, out, match, table, start, actionSet);
  return out;
}

/** The current action's argument; an error if it has none (`output` instead of `output:1`). */
function needValue(sc: KvScanner): string {
  if (sc.delim === '') throw sc.src.error(sc.keyAt + sc.key.length, `expected ':' and an argument after '${sc.key}'`);
  return sc.value;
}

function parsePortOrNull(ctx: LineCtx, text: string): number | null {
  if (/^[0-9]+$/.test(text)) return portNumber(text);
  const reserved = RESERVED_PORTS.get(text.toLowerCase());
  if (reserved !== undefined) return reserved;
  return ctx.opts.portByName?.(text) ?? null;
}

/** An output to a port; output to CONTROLLER becomes the controller action. */
function outputTo(ctx: LineCtx, port: number, at: number): Action {
  if (port === OFPP.CONTROLLER) {
    return { type: 'controller', maxLen: 65535, reason: 'action', controllerId: 0 };
  }
  if (port === OFPP.NONE) throw ctx.src.error(at, 'cannot output to port NONE/ANY');
  if (port > OFPP.MAX && port < OFPP.IN_PORT) throw ctx.src.error(at, `cannot output to reserved port number ${port}`);
  return { type: 'output', port };
}

/** The instructions of OpenFlow 1.1+, which a write_actions list may not hold. */
const INSTRUCTIONS: ReadonlySet<string> = new Set(['goto_table', 'write_metadata', 'clear_actions', 'write_actions']);

function parseOutput(ctx: LineCtx, v: string, at: number, parens: boolean): Action {
  if (parens && v.includes('=')) return parseOutputTrunc(ctx, v, at);
  if (v.includes('[') || (fieldByName(v) && !/^[0-9]/.test(v) && !RESERVED_PORTS.has(v.toLowerCase()))) {
    const src = parseFieldRange(ctx, v, at);
    return { type: 'output_reg', src, maxLen: 65535 };
  }
  const port = parsePortOrNull(ctx, v);
  if (port === null) throw ctx.src.error(at, `unknown port '${v}' for output`);
  return outputTo(ctx, port, at);
}

/** `output(port=N,max_len=M)`: both are required, and the port must be a real one or LOCAL/IN_PORT. */
function parseOutputTrunc(ctx: LineCtx, v: string, at: number): Action {
  let port: number | null = null;
  let maxLen: number | null = null;
  for (const arg of splitArgs(v, at)) {
    const eq = arg.text.indexOf('=');
    const k = eq < 0 ? arg.text : arg.text.slice(0, eq);
    const val = eq < 0 ? '' : arg.text.slice(eq + 1);
    if (k === 'port') {
      port = parsePortOrNull(ctx, val);
      if (port === null) throw ctx.src.error(arg.at, `unknown port '${val}' for output`);
    } else if (k === 'max_len') {
      maxLen = parseUintN(val, 32, 'max_len');
    } else throw ctx.src.error(arg.at, `unknown output option '${k}' (expected port= and max_len=)`);
  }
  if (port === null || maxLen === null) throw ctx.src.error(at, `output(${v}) needs both port= and max_len=`);
  if (port > OFPP.MAX && port !== OFPP.LOCAL && port !== OFPP.IN_PORT) {
    throw ctx.src.error(at, `output to unsupported truncate port: ${v}`);
  }
  return { type: 'output_trunc', port, maxLen };
}

const CONTROLLER_REASONS: readonly ControllerReason[] = ['action', 'no_match', 'invalid_ttl', 'action_set', 'group', 'packet_out'];

function parseController(ctx: LineCtx, v: string | null, at: number, parens: boolean): Action {
  let maxLen = 65535;
  let reason: ControllerReason = 'action';
  let controllerId = 0;
  if (v !== null && !parens) {
    maxLen = parseUintN(v, 16, 'max_len');
  } else if (v !== null) {
    for (const arg of splitArgs(v, at)) {
      if (arg.text === '') continue;
      const eq = arg.text.indexOf('=');
      const k = eq < 0 ? arg.text : arg.text.slice(0, eq);
      const val = eq < 0 ? '' : arg.text.slice(eq + 1);
      if (k === 'max_len') maxLen = parseUintN(val, 16, 'max_len');
      else if (k === 'id') controllerId = parseUintN(val, 16, 'controller id');
      else if (k === 'reason') {
        if (!(CONTROLLER_REASONS as readonly string[]).includes(val)) {
          throw ctx.src.error(arg.at, `'${val}' is not a controller reason (expected ${CONTROLLER_REASONS.join(', ')})`);
        }
        reason = val as ControllerReason;
      } else if (k === 'userdata' || k === 'pause' || k === 'meter_id') {
        throw new RuleUnsupportedError(ctx.src.pos(arg.at), `controller option '${k}' is not supported yet`);
      } else throw ctx.src.error(arg.at, `unknown controller option '${k}' (expected reason, max_len or id)`);
    }
  }
  return { type: 'controller', maxLen, reason, controllerId };
}

/** The `mod_*` rewrites: a set_field in 'mod' form (or a VLAN action). */
function parseMod(ctx: LineCtx, name: string, v: string, at: number, match: Match): Action {
  const mk = (field: string, value: bigint): Action => {
    const f = mustField(field);
    return { type: 'set_field', field: f, value, mask: (1n << BigInt(f.bits)) - 1n, form: 'mod' };
  };
  switch (name) {
    case 'mod_dl_src':
      return mk('dl_src', parseMac(v));
    case 'mod_dl_dst':
      return mk('dl_dst', parseMac(v));
    case 'mod_nw_src':
      return mk('nw_src', BigInt(parseIpv4Strict(v)));
    case 'mod_nw_dst':
      return mk('nw_dst', BigInt(parseIpv4Strict(v)));
    case 'mod_tp_src':
    case 'mod_tp_dst': {
      const port = BigInt(parseUintN(v, 16, 'transport port'));
      const proto = match.mask[Slot.NW_PROTO] ? match.value[Slot.NW_PROTO] : -1;
      const l4 = proto === IpProto.UDP ? 'udp' : proto === IpProto.SCTP ? 'sctp' : 'tcp';
      return mk(`${l4}_${name.slice(7)}`, port);
    }
    case 'mod_nw_ttl':
      return mk('nw_ttl', BigInt(parseUintN(v, 8, 'TTL')));
    case 'mod_nw_ecn': {
      const ecn = parseUintN(v, 8, 'ECN');
      if (ecn > 3) throw ctx.src.error(at, `'${v}' is not a valid ECN value (0 to 3)`);
      return mk('nw_ecn', BigInt(ecn));
    }
    default: {
      // mod_nw_tos takes the ToS byte; only its DSCP bits may be set.
      const tos = parseUintN(v, 8, 'ToS');
      if (tos & 3) throw ctx.src.error(at, `'${v}' is not a valid ToS for mod_nw_tos (the low two ECN bits must be 0)`);
      return mk('ip_dscp', BigInt(tos >> 2));
    }
  }
}

function parseIpv4Strict(v: string): number {
  const r = parseIpv4Masked(v);
  if (r.mask !== 0xffffffff) throw new ValueError(`'${v}' must be a plain IPv4 address here`);
  return r.value;
}

function parseDecTtl(ctx: LineCtx, v: string | null, at: number): Action {
  if (v === null) return { type: 'dec_ttl', controllerIds: [] };
  const ids = splitArgs(v, at).map((a) => {
    try {
      return parseUintN(a.text, 16, 'controller id');
    } catch (e) {
      throw wrap(ctx, a.at, e);
    }
  });
  return { type: 'dec_ttl', controllerIds: ids };
}

/** Resolves a field name used in an action (`eth_dst`, `NXM_OF_ETH_DST`, `reg0`, `tp_src`). */
function actionField(ctx: LineCtx, name: string, at: number): Field {
  const f = fieldByName(ACTION_FIELD_ALIASES.get(name) ?? name);
  if (!f || f.name === 'dl_vlan' || f.name === 'dl_vlan_pcp') {
    throw ctx.src.error(at, `unknown field '${name}' (expected e.g. eth_dst, ip_src, reg0, NXM_NX_REG0)`);
  }
  return f;
}

/** `NXM_NX_REG0[0..15]`, `reg0[3]`, `reg0[]`, `reg0`. */
function parseFieldRange(ctx: LineCtx, text: string, at: number): FieldRange {
  const br = text.indexOf('[');
  const name = br < 0 ? text : text.slice(0, br);
  const field = actionField(ctx, name, at);
  if (br < 0) return { field, ofs: 0, nBits: field.bits };
  if (!text.endsWith(']')) throw ctx.src.error(at + text.length, `expected ']' to end '${text}'`);
  const inner = text.slice(br + 1, -1);
  if (inner === '') return { field, ofs: 0, nBits: field.bits };
  const m = /^([0-9]+)(?:\.\.([0-9]+))?$/.exec(inner);
  if (!m) throw ctx.src.error(at + br + 1, `expected a bit range like [0..15] or [3] in '${text}'`);
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  if (lo > hi) throw ctx.src.error(at + br + 1, `in '${text}' the starting bit ${lo} is after the ending bit ${hi}`);
  if (hi >= field.bits) throw ctx.src.error(at + br + 1, `in '${text}' bit ${hi} is beyond the ${field.bits}-bit field`);
  return { field, ofs: lo, nBits: hi - lo + 1 };
}

/** `set_field:value[/mask]->field`. */
function parseSetField(ctx: LineCtx, v: string, at: number): Action {
  const arrow = v.lastIndexOf('->');
  if (arrow < 0) throw ctx.src.error(at + v.length, `expected '->field' in set_field:${v}`);
  const name = v.slice(arrow + 2);
  const f = actionField(ctx, name, at + arrow + 2);
  if (!f.writable) throw ctx.src.error(at + arrow + 2, `field '${name}' cannot be written by set_field`);
  const text = v.slice(0, arrow);
  if (f.name === 'vlan_vid' || f.name === 'vlan_pcp') {
    const n = parseUintN(text, 16, f.name);
    if (f.name === 'vlan_pcp') {
      if (n > 7) throw ctx.src.error(at, `'${text}' is not a valid VLAN PCP (0 to 7)`);
      return { type: 'set_vlan_pcp', pcp: n, pushIfNeeded: false };
    }
    if ((n & 0xfff) !== n && (n & ~0x1fff) !== 0) throw ctx.src.error(at, `'${text}' is not a valid vlan_vid`);
    if (ctx.dialect === 'of13' && !(n & VLAN_CFI)) {
      throw ctx.src.error(at, `set_field:${text}->vlan_vid: OpenFlow 1.3 needs the tag-present bit, write ${n | VLAN_CFI} (0x1000 + VID)`);
    }
    return { type: 'set_vlan_vid', vid: n & 0xfff, pushIfNeeded: false };
  }
  let vm: { value: bigint; mask: bigint };
  if (f.format === 'port') {
    vm = { value: BigInt(parsePort(ctx, text, at)), mask: 0xffffn };
  } else {
    vm = parseValueMaskAnyField(f, text);
  }
  const all = (1n << BigInt(f.bits)) - 1n;
  const bytes = Math.ceil(f.bits / 8);
  if (vm.value >= 1n << BigInt(bytes * 8)) throw ctx.src.error(at, `value '${text}' is too large for ${bytes}-byte field ${f.name}`);
  if ((vm.value & ~f.usable & all) !== 0n || vm.value > all) {
    throw ctx.src.error(at, `${text} is not a valid value for field ${name}`);
  }
  return { type: 'set_field', field: f, value: vm.value & vm.mask, mask: vm.mask & all, form: 'set_field' };
}

/** Like parseValueMask but allows masks on any writable field (set_field:V/M->F). */
function parseValueMaskAnyField(f: Field, text: string): { value: bigint; mask: bigint } {
  if (f.maskable || !text.includes('/')) return parseValueMask(f, text);
  return parseValueMask({ ...f, maskable: true }, text);
}

/** `load:value->dst[range]`. */
function parseLoad(ctx: LineCtx, v: string, at: number): Action {
  const arrow = v.indexOf('->');
  if (arrow < 0) throw ctx.src.error(at + v.length, `expected '->field[range]' in load:${v}`);
  const dst = parseFieldRange(ctx, v.slice(arrow + 2), at + arrow + 2);
  if (!dst.field.writable) throw ctx.src.error(at + arrow + 2, `field '${dst.field.name}' cannot be written`);
  const value = parseUint(v.slice(0, arrow));
  if (value >= 1n << BigInt(dst.nBits)) {
    throw ctx.src.error(at, `value ${v.slice(0, arrow)} does not fit into ${dst.nBits} bits`);
  }
  const ones = (1n << BigInt(dst.nBits)) - 1n;
  return {
    type: 'set_field',
    field: dst.field,
    value: value << BigInt(dst.ofs),
    mask: ones << BigInt(dst.ofs),
    form: 'load',
  };
}

/** `move:src[range]->dst[range]`. */
function parseMove(ctx: LineCtx, v: string, at: number): Action {
  const arrow = v.indexOf('->');
  if (arrow < 0) throw ctx.src.error(at + v.length, `expected '->field[range]' in move:${v}`);
  const src = parseFieldRange(ctx, v.slice(0, arrow), at);
  const dst = parseFieldRange(ctx, v.slice(arrow + 2), at + arrow + 2);
  if (src.nBits !== dst.nBits) {
    throw ctx.src.error(at, `move:${v}: the source is ${src.nBits} bits wide but the destination is ${dst.nBits} bits wide`);
  }
  if (!dst.field.writable) throw ctx.src.error(at + arrow + 2, `field '${dst.field.name}' cannot be written`);
  return { type: 'move', src, dst };
}

/** `resubmit:port`, `resubmit(port)`, `resubmit(port,table)`, `resubmit(,table)`. */
function parseResubmit(ctx: LineCtx, v: string, at: number, parens: boolean): Action {
  const args = parens ? splitArgs(v, at) : [{ text: v, at }];
  if (args.length > 3) throw ctx.src.error(at, `resubmit takes at most (port,table): '${v}'`);
  if (args.length === 3) {
    throw new RuleUnsupportedError(ctx.src.pos(args[2].at), 'resubmit(port,table,ct) is not supported yet');
  }
  let port: number | null = null;
  let table: number | null = null;
  if (args[0].text !== '') {
    const p = parsePortOrNull(ctx, args[0].text);
    if (p === null) throw ctx.src.error(args[0].at, `unknown port '${args[0].text}' in resubmit`);
    port = p === OFPP.IN_PORT ? null : p;
  }
  if (args.length > 1 && args[1].text !== '') {
    const t = parseUintN(args[1].text, 16, 'table');
    if (t > 255) throw ctx.src.error(args[1].at, `resubmit to table ${t}: tables are 0 to 254`);
    table = t === 255 ? null : t;
  }
  if (port === null && table === null) {
    throw ctx.src.error(at, 'resubmit needs a port or a table (e.g. resubmit(,3) or resubmit:2)');
  }
  return { type: 'resubmit', port, table };
}

/** `note:01.02.ab` — hex bytes, optionally separated by dots. */
function parseNote(ctx: LineCtx, v: string, at: number): Uint8Array {
  const bytes: number[] = [];
  let i = 0;
  while (i < v.length) {
    if (v[i] === '.') {
      i++;
      continue;
    }
    const pair = v.slice(i, i + 2);
    if (!/^[0-9a-fA-F]{2}$/.test(pair)) throw ctx.src.error(at + i, `bad hex digit in note:${v} (expected pairs of hex digits like 01.ab)`);
    bytes.push(parseInt(pair, 16));
    i += 2;
  }
  return Uint8Array.from(bytes);
}

/** `conjunction(id,k/n)`. */
function parseConjunction(ctx: LineCtx, v: string, at: number): Action {
  const m = /^([^,]+),([0-9]+)\/([0-9]+)$/.exec(v);
  if (!m) throw ctx.src.error(at, `expected conjunction(id,k/n), got conjunction(${v})`);
  const id = Number(parseUint(m[1]) & 0xffffffffn);
  const clause = Number(m[2]);
  const nClauses = Number(m[3]);
  if (nClauses < 2 || nClauses > 64) throw ctx.src.error(at, `conjunction(${v}): the number of clauses must be 2 to 64`);
  if (clause < 1 || clause > nClauses) throw ctx.src.error(at, `conjunction(${v}): the clause must be 1 to ${nClauses}`);
  return { type: 'conjunction', id, clause, nClauses };
}

/** `learn(table=…,…,specs)`. */
function parseLearn(ctx: LineCtx, v: string, at: number, match: Match): LearnAction {
  const l = {
    type: 'learn' as const,
    table: 1,
    priority: DEFAULT_PRIORITY,
    idleTimeout: 0,
    hardTimeout: 0,
    finIdleTimeout: 0,
    finHardTimeout: 0,
    cookie: 0n,
    sendFlowRem: false,
    deleteLearned: false,
    specs: [] as LearnSpec[],
  };
  // dl_type / nw_proto the learned rule will match, for its prerequisite checks.
  const learned = newMatch();
  for (const arg of splitArgs(v, at)) {
    const t = arg.text;
    if (t === '') continue;
    const eq = t.indexOf('=');
    const colon = t.indexOf(':');
    const key = eq >= 0 && (colon < 0 || eq < colon) ? t.slice(0, eq) : colon >= 0 ? t.slice(0, colon) : t;
    const val = t.slice(key.length + 1);
    const numArg = (bits: number): number => {
      try {
        return parseUintN(val, bits, key);
      } catch (e) {
        throw wrap(ctx, arg.at + key.length + 1, e);
      }
    };
    switch (key) {
      case 'table': {
        const n = numArg(8);
        if (n > 254) throw ctx.src.error(arg.at, `learn: table ${n} is out of range (0 to 254)`);
        l.table = n;
        continue;
      }
      case 'priority':
        l.priority = numArg(16);
        continue;
      case 'idle_timeout':
        l.idleTimeout = numArg(16);
        continue;
      case 'hard_timeout':
        l.hardTimeout = numArg(16);
        continue;
      case 'fin_idle_timeout':
        l.finIdleTimeout = numArg(16);
        continue;
      case 'fin_hard_timeout':
        l.finHardTimeout = numArg(16);
        continue;
      case 'cookie':
        l.cookie = parseU64(val, 'cookie');
        continue;
      case 'send_flow_rem':
        l.sendFlowRem = true;
        continue;
      case 'delete_learned':
        l.deleteLearned = true;
        continue;
      case 'limit':
      case 'result_dst':
        throw new RuleUnsupportedError(ctx.src.pos(arg.at), `learn option '${key}' is not supported yet`);
    }
    if (key === 'load' && colon >= 0) {
      const arrow = val.indexOf('->');
      if (arrow < 0) throw ctx.src.error(arg.at, `expected load:SRC->DST in learn, got '${t}'`);
      const dst = parseFieldRange(ctx, val.slice(arrow + 2), arg.at + 5 + arrow + 2);
      const srcText = val.slice(0, arrow);
      const src = /^[0-9]/.test(srcText)
        ? { value: immediate(ctx, srcText, dst, arg.at + 5) }
        : parseFieldRange(ctx, srcText, arg.at + 5);
      if ('field' in src && src.nBits !== dst.nBits) {
        throw ctx.src.error(arg.at, `learn: ${t}: the source is ${src.nBits} bits wide but the destination is ${dst.nBits}`);
      }
      if ('field' in src) requirePrereqs(ctx, src.field, match, arg.at);
      l.specs.push({ kind: 'load', dst, src });
      continue;
    }
    if (key === 'output' && colon >= 0) {
      const src = parseFieldRange(ctx, val, arg.at + 7);
      requirePrereqs(ctx, src.field, match, arg.at);
      l.specs.push({ kind: 'output', src });
      continue;
    }
    // A match spec: DST=SRC, DST=value, or DST alone (SRC = DST).
    const dstText = eq >= 0 ? t.slice(0, eq) : t;
    const dst = parseLearnDst(ctx, dstText, arg.at);
    let src: FieldRange | { value: bigint };
    if (eq < 0) src = dst;
    else {
      const s = t.slice(eq + 1);
      // A field reference (`dl_src`, `NXM_NX_REG1[0..11]`) or else an immediate in dst's notation.
      const ref = /^([A-Za-z_][A-Za-z0-9_]*)(\[[0-9.]*\])?$/.exec(s);
      if (ref && fieldByName(ref[1])) src = parseFieldRange(ctx, s, arg.at + eq + 1);
      else {
        if (dst.ofs !== 0 || dst.nBits !== dst.field.bits) {
          src = { value: immediate(ctx, s, dst, arg.at + eq + 1) };
        } else {
          try {
            const vm = parseValueMask(dst.field, s);
            if (vm.mask !== (1n << BigInt(dst.field.bits)) - 1n) throw new ValueError(`learn: '${s}' cannot be masked here`);
            src = { value: vm.value };
          } catch (e) {
            throw wrap(ctx, arg.at + eq + 1, e);
          }
        }
      }
    }
    if ('field' in src && src.nBits !== dst.nBits) {
      throw ctx.src.error(arg.at, `learn: ${t}: the source is ${src.nBits} bits wide but the destination is ${dst.nBits}`);
    }
    if ('field' in src) requirePrereqs(ctx, src.field, match, arg.at);
    requirePrereqs(ctx, dst.field, learned, arg.at);
    if (!('field' in src) && dst.ofs === 0 && dst.nBits === dst.field.bits) {
      if (dst.field.slot === Slot.DL_TYPE || dst.field.slot === Slot.NW_PROTO) {
        learned.value[dst.field.slot] = Number(src.value);
        learned.mask[dst.field.slot] = dst.field.slot === Slot.DL_TYPE ? 0xffff : 0xff;
      }
    }
    l.specs.push({ kind: 'match', dst, src });
  }
  return l;
}

/** A learn match destination: a field (range) that can be matched (not the OF1.0 VLAN views). */
function parseLearnDst(ctx: LineCtx, text: string, at: number): FieldRange {
  const name = text.includes('[') ? text.slice(0, text.indexOf('[')) : text;
  const f = fieldByName(name);
  if (f && (f.name === 'dl_vlan' || f.name === 'dl_vlan_pcp' || f.name === 'vlan_pcp')) {
    throw ctx.src.error(at, `learn cannot match on '${name}' (use NXM_OF_VLAN_TCI[0..11] instead)`);
  }
  if (!f) throw ctx.src.error(at, `unknown learn argument '${text}' (expected table=, priority=, a field, load:… or output:…)`);
  return parseFieldRange(ctx, text, at);
}

function immediate(ctx: LineCtx, text: string, dst: FieldRange, at: number): bigint {
  let v: bigint;
  try {
    v = parseUint(text);
  } catch (e) {
    throw wrap(ctx, at, e);
  }
  if (v >= 1n << BigInt(dst.nBits)) throw ctx.src.error(at, `value ${text} does not fit into ${dst.nBits} bits`);
  return v;
}
