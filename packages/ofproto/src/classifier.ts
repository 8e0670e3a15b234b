// The slow-path classifier of one OpenFlow table: finds the highest-priority
// rule matching a flow and records, in a wildcard mask, every bit the answer
// depended on, so that the megaflow built from that mask is exactly as
// general as the decision (see OVS's lib/classifier.h for the ideas).
//
// Rules are grouped into subtables, one per distinct mask (tuple space
// search); a subtable is a hash of masked values. Three things keep the
// un-wildcarded bits few:
// - subtables are visited in order of their highest priority, and the search
//   stops as soon as no remaining subtable can beat the rule already found;
// - staged lookup: a subtable's fields are split into stages (metadata, L2,
//   L3, L4); when the flow's values up to a stage match no rule's, the
//   subtable is rejected having consulted only those stages;
// - prefix tracking: for IPv4 source and destination, a binary trie of the
//   table's CIDR prefixes tells, with only as many address bits as the trie
//   walk needed, that no rule of a subtable's prefix length can match.
// Conjunctive matches (`conjunction(id,k/n)` rules, matched with `conj_id=`)
// are resolved here too: if all n clauses of a conjunction match at one
// priority above the best ordinary rule, the rule matching `conj_id=id` wins.
//
// Soundness is the contract: any flow that equals the looked-up flow on the
// bits set in the wildcard mask gets the same answer.

import { FLOW_WORDS, type Flow, Slot } from './fields.ts';
import type { Match } from './match.ts';
import type { ConjunctionAction } from './actions.ts';

/** What the classifier needs of a rule. */
export interface ClassifierRule {
  readonly match: Match;
  /** Non-empty for a conjunctive clause rule (its `conjunction` actions). */
  readonly conjunctions: readonly ConjunctionAction[] | null;
}

/** Lookup stage of each flow word: 0 metadata/port, 1 L2, 2 L3, 3 L4. */
const STAGE_OF_WORD: number[] = (() => {
  const st = new Array<number>(FLOW_WORDS).fill(0);
  const set = (from: number, n: number, s: number) => {
    for (let i = 0; i < n; i++) st[from + i] = s;
  };
  set(Slot.DL_DST, 6, 1);
  set(Slot.NW_SRC, 6, 2);
  set(Slot.ARP_SHA, 4, 2);
  set(Slot.IPV6_SRC, 9, 2);
  set(Slot.TP_SRC, 3, 3);
  set(Slot.ND_TARGET, 4, 3);
  return st;
})();
const N_STAGES = 4;
const L3_STAGE = 2;

/** Appends one masked word to a hash key (two UTF-16 units, no allocation of numbers as text). */
function enc(v: number): string {
  return String.fromCharCode(v & 0xffff, v >>> 16);
}

class Subtable<R extends ClassifierRule> {
  readonly mask: Uint32Array;
  /** Words with a nonzero mask, in stage order. */
  readonly words: number[];
  /** `words[0..stageEnd[s])` are the words of stages 0..s (only stages that have words). */
  readonly stageEnds: number[];
  /** Stage of each entry of stageEnds. */
  readonly stageIds: number[];
  /** Per non-final stage: how many rules have each key prefix up to that stage. */
  readonly stageKeys: Map<string, number>[];
  readonly buckets = new Map<string, R[]>();
  readonly priorities = new Map<number, number>();
  maxPriority = -1;
  n = 0;
  /** CIDR length of the subtable's nw_src / nw_dst mask when it is a prefix, else -1. */
  readonly srcPlen: number;
  readonly dstPlen: number;

  constructor(mask: Uint32Array) {
    this.mask = mask;
    const words: number[] = [];
    for (let s = 0; s < N_STAGES; s++) {
      for (let i = 0; i < FLOW_WORDS; i++) if (mask[i] !== 0 && STAGE_OF_WORD[i] === s) words.push(i);
    }
    this.words = words;
    this.stageEnds = [];
    this.stageIds = [];
    for (let i = 0; i < words.length; i++) {
      const s = STAGE_OF_WORD[words[i]];
      if (i + 1 === words.length || STAGE_OF_WORD[words[i + 1]] !== s) {
        this.stageEnds.push(i + 1);
        this.stageIds.push(s);
      }
    }
    this.stageKeys = this.stageEnds.slice(0, -1).map(() => new Map());
    this.srcPlen = mask[Slot.NW_SRC] ? cidrLength(mask[Slot.NW_SRC]) : -1;
    this.dstPlen = mask[Slot.NW_DST] ? cidrLength(mask[Slot.NW_DST]) : -1;
    const ports = portsWord(mask, mask);
    this.portsLen = ports ? 32 - ctz32(ports) : 0;
    this.portsTrie = ports ? new PrefixTrie() : null;
  }

  /** Length of the L4 ports mask (tp_src:tp_dst as one word) up to its last one bit; 0 if none. */
  readonly portsLen: number;
  /** The rules' port words, so that a miss un-wildcards only the port bits that told it apart. */
  readonly portsTrie: PrefixTrie | null;

  /** Hash key of a (masked) value flow, and its stage prefixes. */
  keys(value: Flow): { full: string; prefixes: string[] } {
    const prefixes: string[] = [];
    let key = '';
    let si = 0;
    for (let s = 0; s < this.stageEnds.length; s++) {
      for (; si < this.stageEnds[s]; si++) key += enc(value[this.words[si]]);
      if (s < this.stageEnds.length - 1) prefixes.push(key);
    }
    return { full: key, prefixes };
  }

  recomputeMax(): void {
    let m = -1;
    for (const p of this.priorities.keys()) if (p > m) m = p;
    this.maxPriority = m;
  }
}

/** A binary trie of IPv4 prefixes with the number of rules ending at each node. */
class PrefixTrie {
  private readonly root: TrieNode = { c0: null, c1: null, n: 0 };

  insert(addr: number, plen: number): void {
    let node = this.root;
    for (let d = 0; d < plen; d++) {
      const bit = (addr >>> (31 - d)) & 1;
      let next = bit ? node.c1 : node.c0;
      if (!next) {
        next = { c0: null, c1: null, n: 0 };
        if (bit) node.c1 = next;
        else node.c0 = next;
      }
      node = next;
    }
    node.n++;
  }

  remove(addr: number, plen: number): void {
    const path: TrieNode[] = [this.root];
    let node = this.root;
    for (let d = 0; d < plen; d++) {
      const next = (addr >>> (31 - d)) & 1 ? node.c1 : node.c0;
      if (!next) return;
      node = next;
      path.push(node);
    }
    node.n--;
    // Prune nodes that no longer lead to any prefix.
    for (let d = plen; d > 0; d--) {
      const n = path[d];
      if (n.n > 0 || n.c0 || n.c1) break;
      const parent = path[d - 1];
      if (parent.c0 === n) parent.c0 = null;
      else parent.c1 = null;
    }
  }

  /**
   * Walks the trie along `addr`. Returns the prefix lengths found on the
   * path as a bit set (bit i: length i, bit 32 as `FOUND_32`), and sets
   * `consulted` to how many leading address bits the walk looked at: any
   * address sharing them gets the same answer.
   */
  lookup(addr: number): number {
    let found = this.root.n ? 1 : 0;
    let node = this.root;
    let d = 0;
    for (; d < 32; d++) {
      if (!node.c0 && !node.c1) break;
      const next = (addr >>> (31 - d)) & 1 ? node.c1 : node.c0;
      if (!next) {
        d++;
        break;
      }
      node = next;
      if (node.n) found = d + 1 === 32 ? found + FOUND_32 : (found | (1 << (d + 1))) >>> 0;
    }
    this.consulted = d;
    return found;
  }
  consulted = 0;
}

/** Bit of a trie answer meaning "a /32 is on the path" (beyond the 32 bits of an int). */
const FOUND_32 = 2 ** 32;

function hasLen(found: number, plen: number): boolean {
  return plen === 32 ? found >= FOUND_32 : ((found % FOUND_32) & (1 << plen)) !== 0;
}

interface TrieNode {
  c0: TrieNode | null;
  c1: TrieNode | null;
  n: number;
}

/** Number of leading ones when `m` is a CIDR mask, else -1. */
export function cidrLength(m: number): number {
  const inv = ~m >>> 0;
  return (inv & (inv + 1)) === 0 ? Math.clz32(inv) : -1;
}

/** The CIDR mask with `len` leading ones. */
export function prefixMask(len: number): number {
  return len <= 0 ? 0 : len >= 32 ? 0xffffffff : (0xffffffff << (32 - len)) >>> 0;
}

export class Classifier<R extends ClassifierRule> {
  private readonly subtables = new Map<string, Subtable<R>>();
  private ordered: Subtable<R>[] = [];
  private dirty = false;
  private readonly srcTrie = new PrefixTrie();
  private readonly dstTrie = new PrefixTrie();
  private count = 0;
  private lastSubtable: Subtable<R> | null = null;

  get size(): number {
    return this.count;
  }

  /**
   * Inserts a rule. A rule with the identical match and priority (OpenFlow's
   * "identical" rule) is replaced in place and returned.
   */
  insert(rule: R): R | undefined {
    const m = rule.match;
    let st = this.subtableFor(m.mask);
    if (!st) {
      st = new Subtable<R>(Uint32Array.from(m.mask));
      this.subtables.set(maskKey(m.mask), st);
      this.dirty = true;
    }
    const { full, prefixes } = st.keys(m.value);
    const bucket = st.buckets.get(full);
    if (!bucket) {
      st.buckets.set(full, [rule]);
    } else {
      const same = bucket.findIndex((r) => r.match.priority === m.priority);
      if (same >= 0) {
        const old = bucket[same];
        bucket[same] = rule;
        return old;
      }
      // Keep buckets sorted by priority, highest first, older rules first among equals.
      let i = bucket.length;
      while (i > 0 && bucket[i - 1].match.priority < m.priority) i--;
      bucket.splice(i, 0, rule);
    }
    for (let s = 0; s < prefixes.length; s++) {
      st.stageKeys[s].set(prefixes[s], (st.stageKeys[s].get(prefixes[s]) ?? 0) + 1);
    }
    st.priorities.set(m.priority, (st.priorities.get(m.priority) ?? 0) + 1);
    if (m.priority > st.maxPriority) {
      st.maxPriority = m.priority;
      this.dirty = true;
    }
    st.n++;
    st.portsTrie?.insert(portsWord(m.value, st.mask), st.portsLen);
    if (st.srcPlen > 0) this.srcTrie.insert(m.value[Slot.NW_SRC], st.srcPlen);
    if (st.dstPlen > 0) this.dstTrie.insert(m.value[Slot.NW_DST], st.dstPlen);
    this.count++;
    return undefined;
  }

  /** Removes a rule previously inserted (by identity); returns false if absent. */
  remove(rule: R): boolean {
    const m = rule.match;
    const st = this.subtableFor(m.mask);
    if (!st) return false;
    const { full, prefixes } = st.keys(m.value);
    const bucket = st.buckets.get(full);
    const i = bucket ? bucket.indexOf(rule) : -1;
    if (!bucket || i < 0) return false;
    bucket.splice(i, 1);
    if (bucket.length === 0) st.buckets.delete(full);
    for (let s = 0; s < prefixes.length; s++) {
      const c = (st.stageKeys[s].get(prefixes[s]) ?? 1) - 1;
      if (c === 0) st.stageKeys[s].delete(prefixes[s]);
      else st.stageKeys[s].set(prefixes[s], c);
    }
    const pc = (st.priorities.get(m.priority) ?? 1) - 1;
    if (pc === 0) {
      st.priorities.delete(m.priority);
      if (m.priority === st.maxPriority) {
        st.recomputeMax();
        this.dirty = true;
      }
    } else {
      st.priorities.set(m.priority, pc);
    }
    st.n--;
    st.portsTrie?.remove(portsWord(m.value, st.mask), st.portsLen);
    if (st.n === 0) {
      this.subtables.delete(maskKey(m.mask));
      if (this.lastSubtable === st) this.lastSubtable = null;
      this.dirty = true;
    }
    if (st.srcPlen > 0) this.srcTrie.remove(m.value[Slot.NW_SRC], st.srcPlen);
    if (st.dstPlen > 0) this.dstTrie.remove(m.value[Slot.NW_DST], st.dstPlen);
    this.count--;
    return true;
  }

  /** The rule with exactly this match and priority, if any (OpenFlow's "identical" rule). */
  findExact(match: Match): R | undefined {
    const st = this.subtableFor(match.mask);
    if (!st) return undefined;
    const bucket = st.buckets.get(st.keys(match.value).full);
    return bucket?.find((r) => r.match.priority === match.priority);
  }

  /**
   * The subtable of a mask. Bulk loads add many rules with one mask, so the
   * last subtable found is checked first (a word compare, no key string).
   */
  private subtableFor(mask: Flow): Subtable<R> | undefined {
    const last = this.lastSubtable;
    if (last && sameWords(last.mask, mask)) return last;
    const st = this.subtables.get(maskKey(mask));
    if (st) this.lastSubtable = st;
    return st;
  }

  /** Every rule, in no particular order. */
  *rules(): IterableIterator<R> {
    for (const st of this.subtables.values()) for (const b of st.buckets.values()) yield* b;
  }

  /**
   * The highest-priority rule matching `flow`, or null. Every flow bit the
   * answer depended on is OR-ed into `wc`.
   */
  lookup(flow: Flow, wc: Flow): R | null {
    if (this.dirty) this.reorder();
    const tries = new TrieCache(this.srcTrie, this.dstTrie, flow);
    let best: R | null = null;
    let softs: R[] | null = null;
    for (const st of this.ordered) {
      if (best && st.maxPriority <= best.match.priority) break;
      const bucket = this.findInSubtable(st, flow, wc, tries);
      if (!bucket) continue;
      for (const r of bucket) {
        if (best && r.match.priority <= best.match.priority) break;
        if (r.conjunctions) {
          (softs ??= []).push(r);
        } else {
          best = r;
          break;
        }
      }
    }
    if (softs) {
      const conj = this.resolveConjunctions(softs, best, flow, wc, tries);
      if (conj) return conj;
    }
    return best;
  }

  private resolveConjunctions(softs: R[], best: R | null, flow: Flow, wc: Flow, tries: TrieCache): R | null {
    const floor = best ? best.match.priority : -1;
    const byPriority = new Map<number, R[]>();
    for (const r of softs) {
      if (r.match.priority <= floor) continue;
      const list = byPriority.get(r.match.priority);
      if (list) list.push(r);
      else byPriority.set(r.match.priority, [r]);
    }
    for (const p of [...byPriority.keys()].sort((a, b) => b - a)) {
      // id -> [clauses required, bit set of clauses seen]
      const seen = new Map<number, [number, number]>();
      for (const r of byPriority.get(p)!) {
        for (const c of r.conjunctions!) {
          const e = seen.get(c.id);
          if (!e) seen.set(c.id, [c.nClauses, 1 << (c.clause - 1)]);
          else if (e[0] === c.nClauses) e[1] |= 1 << (c.clause - 1);
        }
      }
      const complete = [...seen.entries()].filter(([, [n, bits]]) => bits === 2 ** n - 1).map(([id]) => id);
      for (const id of complete.sort((a, b) => a - b)) {
        const saved = flow[Slot.CONJ_ID];
        flow[Slot.CONJ_ID] = id;
        const r = this.lookupConjId(flow, wc, tries);
        flow[Slot.CONJ_ID] = saved;
        if (r) return r;
      }
    }
    return null;
  }

  /** Highest-priority ordinary rule that matches on conj_id (the target of a conjunction). */
  private lookupConjId(flow: Flow, wc: Flow, tries: TrieCache): R | null {
    let best: R | null = null;
    for (const st of this.ordered) {
      if (best && st.maxPriority <= best.match.priority) break;
      if (st.mask[Slot.CONJ_ID] !== 0xffffffff) continue;
      const bucket = this.findInSubtable(st, flow, wc, tries);
      const r = bucket?.find((x) => !x.conjunctions);
      if (r && (!best || r.match.priority > best.match.priority)) best = r;
    }
    return best;
  }

  private findInSubtable(st: Subtable<R>, flow: Flow, wc: Flow, tries: TrieCache): R[] | null {
    const { words, mask } = st;
    let key = '';
    let wi = 0;
    const last = st.stageEnds.length - 1;
    for (let s = 0; s <= last; s++) {
      if (st.stageIds[s] === L3_STAGE && (st.srcPlen > 0 || st.dstPlen > 0)) {
        // Prefix tracking: skip the subtable if no rule of its prefix length can match.
        if (st.dstPlen > 0 && !tries.dstHas(st.dstPlen)) {
          unwildcard(words, mask, wi, wc);
          wc[Slot.NW_DST] |= prefixMask(tries.dstBits);
          return null;
        }
        if (st.srcPlen > 0 && !tries.srcHas(st.srcPlen)) {
          unwildcard(words, mask, wi, wc);
          wc[Slot.NW_SRC] |= prefixMask(tries.srcBits);
          return null;
        }
      }
      const end = st.stageEnds[s];
      for (; wi < end; wi++) key += enc(flow[words[wi]] & mask[words[wi]]);
      if (s < last && !st.stageKeys[s].has(key)) {
        unwildcard(words, mask, wi, wc);
        return null;
      }
    }
    const bucket = st.buckets.get(key);
    if (bucket || !st.portsTrie) {
      unwildcard(words, mask, wi, wc);
      return bucket ?? null;
    }
    // A miss: the port bits up to where the flow left every rule's ports suffice (as OVS's ports trie).
    const savedSrc = wc[Slot.TP_SRC];
    const savedDst = wc[Slot.TP_DST];
    unwildcard(words, mask, wi, wc);
    st.portsTrie.lookup(portsWord(flow, mask));
    const bits = prefixMask(st.portsTrie.consulted);
    wc[Slot.TP_SRC] = savedSrc | (mask[Slot.TP_SRC] & (bits >>> 16));
    wc[Slot.TP_DST] = savedDst | (mask[Slot.TP_DST] & bits & 0xffff);
    return null;
  }

  private reorder(): void {
    this.ordered = [...this.subtables.values()].sort((a, b) => b.maxPriority - a.maxPriority);
    this.dirty = false;
  }
}

function unwildcard(words: number[], mask: Uint32Array, n: number, wc: Flow): void {
  for (let i = 0; i < n; i++) wc[words[i]] |= mask[words[i]];
}

/** The trie walks of one lookup, done at most once each and only when a subtable needs them. */
class TrieCache {
  srcBits = -1;
  dstBits = -1;
  private src = -1;
  private dst = -1;
  constructor(
    private readonly srcTrie: PrefixTrie,
    private readonly dstTrie: PrefixTrie,
    private readonly flow: Flow,
  ) {}

  srcHas(plen: number): boolean {
    if (this.src < 0) {
      this.src = this.srcTrie.lookup(this.flow[Slot.NW_SRC]);
      this.srcBits = this.srcTrie.consulted;
    }
    return hasLen(this.src, plen);
  }

  dstHas(plen: number): boolean {
    if (this.dst < 0) {
      this.dst = this.dstTrie.lookup(this.flow[Slot.NW_DST]);
      this.dstBits = this.dstTrie.consulted;
    }
    return hasLen(this.dst, plen);
  }
}

function maskKey(mask: Flow): string {
  let k = '';
  for (let i = 0; i < FLOW_WORDS; i++) k += enc(mask[i]);
  return k;
}

function sameWords(a: Flow, b: Flow): boolean {
  for (let i = 0; i < FLOW_WORDS; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** tp_src and tp_dst under a mask as one word, source in the high half. */
function portsWord(flow: Flow, mask: Flow): number {
  return (((flow[Slot.TP_SRC] & mask[Slot.TP_SRC] & 0xffff) << 16) | (flow[Slot.TP_DST] & mask[Slot.TP_DST] & 0xffff)) >>> 0;
}

/** Number of trailing zero bits of a nonzero word. */
function ctz32(x: number): number {
  return 31 - Math.clz32(x & -x);
}
