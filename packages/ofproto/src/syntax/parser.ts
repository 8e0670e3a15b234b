/**
 * The rule-file parser: ovs-ofctl `add-flow`/`add-flows` lines to `FlowMod`s.
 *
 * A line is `[keywords and match fields], actions=<action list>` with items
 * separated by commas or blanks (see scanner.ts). `#` starts a comment;
 * blank lines are skipped. `parseFlows` parses a whole file and returns
 * every rule or throws the first error: nothing partial ever escapes.
 *
 * What is accepted, and what a line means, follows ovs-ofctl (the oracle
 * test compares the two line by line), including its normalisations: a
 * match field whose prerequisites are not met is dropped (`tp_src=80`
 * without `tcp`), later fields override earlier ones, `dl_vlan=4096` keeps
 * the low 12 bits. Deliberate differences are listed in
 * test/flows/stricter.txt.
 *
 * `dialect` says which OpenFlow version the rules must be expressible in
 * ('of10': OpenFlow 1.0 with Nicira extensions, ovs-ofctl's default;
 * 'of13': `-O OpenFlow13`); a few actions exist only in one of them, and
 * in 'of13' a VLAN match keeps only what OXM can say (see vlanAsOxm in match-parser.ts).
 *
 * The work is split by what it reads: line-context.ts (what one line is
 * parsed with), match-parser.ts (the match part), action-parser.ts (the
 * action list) and checks.ts (prerequisites and action-list consistency).
 */

import type { FlowMod } from '../flow-mod.ts';
import { MatchArena } from '../match.ts';
import { parseActions } from './action-parser.ts';
import { isBlank, type LineCtx, newCtx, type ParseOptions } from './line-context.ts';
import { parseMatchPart } from './match-parser.ts';
import { LineSource } from './scanner.ts';

export type { Dialect, ParseOptions } from './line-context.ts';

/** Parses every rule of a rule file; throws the first error (nothing is returned then). */
export function parseFlows(text: string, opts: ParseOptions = {}): FlowMod[] {
  const out: FlowMod[] = [];
  const file = opts.file ?? '<input>';
  const ctx = newCtx(new LineSource(text, file, 1), opts, new MatchArena());
  let lineNo = 0;
  let at = 0;
  while (at <= text.length) {
    let nl = text.indexOf('\n', at);
    if (nl < 0) nl = text.length;
    lineNo++;
    ctx.src.moveTo(lineNo, at, nl);
    const fm = parseLine(ctx);
    at = nl + 1;
    if (fm) out.push(fm);
    if (nl === text.length) break;
  }
  return out;
}

/** Parses one rule (comments allowed); throws if the line is blank or invalid. */
export function parseFlow(line: string, opts: ParseOptions = {}): FlowMod {
  const src = new LineSource(line, opts.file ?? '<input>', 1);
  const fm = parseLine(newCtx(src, opts, null));
  if (!fm) throw src.error(0, 'expected a rule, got an empty line');
  return fm;
}

function parseLine(ctx: LineCtx): FlowMod | null {
  const { src, finders } = ctx;
  const text = src.text;
  // Searches stay within the line: `text` may be a whole file.
  const hash = finders.hash.find(src.start, src.end);
  let end = hash >= 0 ? hash : src.end;
  let start = src.start;
  while (end > start && isBlank(text.charCodeAt(end - 1))) end--;
  while (start < end && isBlank(text.charCodeAt(start))) start++;
  if (start >= end) return null;
  const isDelete = ctx.command === 'delete' || ctx.command === 'delete_strict';

  // Like ovs-ofctl, the action list is everything after the first "action…=".
  const actAt = finders.action.find(start, end);
  let matchEnd = end;
  let actionsAt = -1;
  if (actAt >= 0) {
    const eq = text.indexOf('=', actAt);
    if (eq < 0 || eq >= end) throw src.error(actAt, "expected '=' after 'actions' (write actions=<action list>)");
    matchEnd = actAt;
    actionsAt = eq + 1;
  } else if (!isDelete) {
    throw src.error(end, "expected 'actions=' (every rule needs an action list; use actions=drop to drop)");
  }
  if (isDelete && actionsAt >= 0) throw src.error(actAt, `'actions' is not allowed when deleting rules`);

  const st = parseMatchPart(ctx, start, matchEnd);
  const actions = actionsAt >= 0 ? parseActions(ctx, actionsAt, end, st.match, st.table) : [];
  return {
    command: ctx.command,
    table: st.table,
    match: st.match,
    cookie: st.cookie,
    cookieMask: st.cookieMask,
    idleTimeout: st.idleTimeout,
    hardTimeout: st.hardTimeout,
    importance: st.importance,
    flags: st.flags,
    outPort: st.outPort,
    actions,
  };
}
