/**
 * The `Match` type: what an OpenFlow rule matches, as a value flow and a mask
 * flow (same layout as `Flow`, see fields.ts) plus the rule's priority.
 *
 * Invariant: `value` has no bit set outside `mask` (callers may rely on
 * `(flow[i] & mask[i]) === value[i]` as the match test). A field whose mask
 * bits are all zero is wildcarded. Which named field a masked region was
 * written as (e.g. `nw_src` or `arp_spa`) is not stored: the printer derives
 * it from `dl_type`/`nw_proto`, exactly as ovs-ofctl does.
 */

import { type Field, type Flow, FLOW_WORDS, lowMask32, newFlow, readField, writeField } from './fields.ts';

/** OpenFlow's default priority for a rule that gives none. */
export const DEFAULT_PRIORITY = 32768;

/** A rule's match: per-word value and mask, and the priority. */
export interface Match {
  priority: number;
  readonly value: Flow;
  readonly mask: Flow;
}

/** A match that matches every packet, at the default priority. */
export function newMatch(priority: number = DEFAULT_PRIORITY): Match {
  return { priority, value: newFlow(), mask: newFlow() };
}

/**
 * Allocates matches whose value and mask flows are views into shared
 * buffers, so that loading 100,000 rules allocates a few hundred arrays
 * instead of 200,000 small ones (typed-array allocation dominates parsing
 * otherwise). A chunk lives as long as any match carved from it.
 */
export class MatchArena {
  private buf = new Uint32Array(0);
  private at = 0;

  constructor(private readonly chunkMatches = 512) {}

  /** Like `newMatch`, from the arena. */
  newMatch(priority: number = DEFAULT_PRIORITY): Match {
    if (this.at + 2 * FLOW_WORDS > this.buf.length) {
      this.buf = new Uint32Array(2 * FLOW_WORDS * this.chunkMatches);
      this.at = 0;
    }
    const value = this.buf.subarray(this.at, this.at + FLOW_WORDS);
    const mask = this.buf.subarray(this.at + FLOW_WORDS, this.at + 2 * FLOW_WORDS);
    this.at += 2 * FLOW_WORDS;
    return { priority, value, mask };
  }
}

/** True when `flow` satisfies the match (priority is not considered). */
export function matchesFlow(m: Match, flow: Flow): boolean {
  const v = m.value;
  const k = m.mask;
  for (let i = 0; i < FLOW_WORDS; i++) {
    if (((flow[i] & k[i]) >>> 0) !== v[i]) return false;
  }
  return true;
}

/** Sets a field's value under `mask` (bits outside the mask stay as they were). */
export function setMatchField(m: Match, f: Field, value: bigint, mask: bigint): void {
  const ones = fieldOnes(f);
  writeField(m.mask, f, mask & ones, ones);
  writeField(m.value, f, value & mask & ones, ones);
}

/** The field's value and mask in the match. */
export function getMatchField(m: Match, f: Field): { value: bigint; mask: bigint } {
  return { value: readField(m.value, f), mask: readField(m.mask, f) };
}

/** True when every bit of the field is matched exactly. */
export function isExact(m: Match, f: Field): boolean {
  return readField(m.mask, f) === fieldOnes(f);
}

/** True when no bit of the field is matched. */
export function isWild(m: Match, f: Field): boolean {
  return readField(m.mask, f) === 0n;
}

/** Structural equality of two matches (priority included). */
export function matchEquals(a: Match, b: Match): boolean {
  if (a.priority !== b.priority) return false;
  for (let i = 0; i < FLOW_WORDS; i++) {
    if (a.value[i] !== b.value[i] || a.mask[i] !== b.mask[i]) return false;
  }
  return true;
}

/** All-ones mask of a field's width. */
export function fieldOnes(f: Field): bigint {
  return f.words === 1 ? BigInt(lowMask32(f.bits)) : (1n << BigInt(f.bits)) - 1n;
}
