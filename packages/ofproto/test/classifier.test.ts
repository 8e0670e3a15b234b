// The classifier against a linear scan: after random inserts and removals
// (subtables, stage indexes and prefix tries must follow), a lookup returns
// a rule of the highest matching priority, and the wildcard mask it reports
// is sound — any flow agreeing on the un-wildcarded bits gets the same rule.

import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { Classifier, type ClassifierRule } from '../src/classifier.ts';
import { type Flow, FLOW_WORDS, newFlow, Slot } from '../src/fields.ts';
import { matchesFlow, newMatch } from '../src/match.ts';

interface R extends ClassifierRule {
  readonly name: number;
}

// Few words, few values: overlaps and shared prefixes are common.
const WORDS = [Slot.IN_PORT, Slot.DL_TYPE, Slot.NW_SRC, Slot.NW_DST, Slot.NW_PROTO, Slot.TP_DST, Slot.REG0] as const;
const MASKS: Record<number, number[]> = {
  [Slot.IN_PORT]: [0xffff],
  [Slot.DL_TYPE]: [0xffff],
  [Slot.NW_SRC]: [0xff000000, 0xffff0000, 0xffffff00, 0xffffffff, 0xff00ff00],
  [Slot.NW_DST]: [0x80000000, 0xfff00000, 0xffffffff, 0xfffffffe],
  [Slot.NW_PROTO]: [0xff],
  [Slot.TP_DST]: [0xffff, 0xfff0, 0xff00, 0x8000],
  [Slot.REG0]: [0xffffffff, 0x0f],
};
const VALUES: Record<number, number[]> = {
  [Slot.IN_PORT]: [1, 2],
  [Slot.DL_TYPE]: [0x0800, 0x0806],
  [Slot.NW_SRC]: [0x0a000001, 0x0a010203, 0xc0a80101, 0x0a0001ff],
  [Slot.NW_DST]: [0x0a000001, 0x0a0fffff, 0x8a000001, 0x0a000000],
  [Slot.NW_PROTO]: [6, 17],
  [Slot.TP_DST]: [80, 81, 443, 0x8050],
  [Slot.REG0]: [0, 5, 0x15],
};

const ruleSpec = fc.record({
  priority: fc.integer({ min: 0, max: 5 }),
  fields: fc.array(
    fc.constantFrom(...WORDS).chain((w) => fc.tuple(fc.constant(w), fc.constantFrom(...MASKS[w]), fc.constantFrom(...VALUES[w]))),
    { maxLength: 4 },
  ),
});

const flowSpec = fc.array(fc.integer({ min: 0, max: 99 }), { minLength: WORDS.length, maxLength: WORDS.length }).map((picks) => {
  const f = newFlow();
  WORDS.forEach((w, i) => {
    const vals = VALUES[w];
    // Mostly known values, sometimes a neighbour (one bit off) to probe prefix edges.
    const v = vals[picks[i] % vals.length];
    f[w] = picks[i] >= 80 ? (v ^ (1 << (picks[i] % 12))) >>> 0 : v;
  });
  return f;
});

function best(rules: Iterable<R>, f: Flow): number {
  let p = -1;
  for (const r of rules) if (matchesFlow(r.match, f) && r.match.priority > p) p = r.match.priority;
  return p;
}

describe('Classifier', () => {
  test('lookups after inserts and removals agree with a linear scan, and the wildcards are sound', () => {
    fc.assert(
      fc.property(
        fc.array(ruleSpec, { minLength: 1, maxLength: 30 }),
        fc.array(fc.boolean(), { minLength: 30, maxLength: 30 }),
        fc.array(flowSpec, { minLength: 1, maxLength: 8 }),
        fc.array(flowSpec, { minLength: 4, maxLength: 8 }),
        (specs, removeMask, flows, others) => {
          const cls = new Classifier<R>();
          const live = new Set<R>();
          specs.forEach((s, name) => {
            const m = newMatch(s.priority);
            for (const [w, mask, value] of s.fields) {
              m.mask[w] = mask;
              m.value[w] = (value & mask) >>> 0;
            }
            const r: R = { name, match: m, conjunctions: null };
            const replaced = cls.insert(r);
            if (replaced) live.delete(replaced);
            live.add(r);
          });
          for (const r of [...live]) {
            if (removeMask[r.name]) {
              expect(cls.remove(r)).toBe(true);
              live.delete(r);
            }
          }
          expect(cls.size).toBe(live.size);
          for (const f of flows) {
            const wc = newFlow();
            const r = cls.lookup(f, wc);
            expect(r ? r.match.priority : -1).toBe(best(live, f));
            if (r) expect(matchesFlow(r.match, f)).toBe(true);
            for (const o of others) {
              const g = newFlow();
              for (let i = 0; i < FLOW_WORDS; i++) g[i] = ((f[i] & wc[i]) | (o[i] & ~wc[i])) >>> 0;
              expect(cls.lookup(g, newFlow())).toBe(r);
            }
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  test('findExact finds the identical rule only; an identical insert replaces in place', () => {
    const cls = new Classifier<R>();
    const m = newMatch(10);
    m.mask[Slot.NW_DST] = 0xffffff00;
    m.value[Slot.NW_DST] = 0x0a000100;
    const a: R = { name: 1, match: m, conjunctions: null };
    expect(cls.insert(a)).toBeUndefined();
    expect(cls.findExact({ ...m })).toBe(a);
    expect(cls.findExact({ ...m, priority: 11 })).toBeUndefined();
    const b: R = { name: 2, match: { ...m, value: Uint32Array.from(m.value), mask: Uint32Array.from(m.mask) }, conjunctions: null };
    expect(cls.insert(b)).toBe(a);
    expect(cls.size).toBe(1);
    expect([...cls.rules()]).toEqual([b]);
    expect(cls.remove(a)).toBe(false);
    expect(cls.remove(b)).toBe(true);
    expect(cls.size).toBe(0);
    const f = newFlow();
    f[Slot.NW_DST] = 0x0a000105;
    expect(cls.lookup(f, newFlow())).toBeNull();
  });
});
