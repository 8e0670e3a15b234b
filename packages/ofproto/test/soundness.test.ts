// The megaflow soundness property: for random rule sets and packets, every
// packet that matches the megaflow xlate computed (key under mask) gets the
// same datapath actions from a full table walk. Rule sets mix priorities,
// prefixes and arbitrary masks, several tables with resubmit and goto,
// register loads and matches, rewrites, dec_ttl, conjunctions and NORMAL
// (over a fixed MAC table, translated without side effects). Some tagged
// packets carry a second, inner tag: no rule matches it, but pop_vlan (and
// NORMAL's untagged output) bring it out, so two packets that differ only
// there must not share a megaflow whose actions depend on it.

import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { bridge, flowOf, fromDpKey, inMegaflow, mixUnderMask, toDpKey } from './helpers.ts';
import { conjunctionRules, flowMods, packet, PORTS, ruleSet } from './random-rules.ts';
import { Slot } from '../src/fields.ts';

const flow = fc.tuple(packet, fc.constantFrom(0, 0, 0x1000 | 10, 0x1000 | (5 << 13) | 20)).map(([text, inner]) => {
  const f = flowOf(text);
  if (f[Slot.VLAN_TCI] & 0x1000) f[Slot.VLAN_TCI1] = inner;
  return f;
});

describe('megaflow soundness', () => {
  test('every packet in the megaflow gets the same datapath actions', () => {
    fc.assert(
      fc.property(
        ruleSet,
        conjunctionRules,
        fc.array(flow, { minLength: 1, maxLength: 6 }),
        fc.array(flow, { minLength: 4, maxLength: 8 }),
        (rules, conj, packets, others) => {
          const { of } = bridge({ ports: PORTS.map((p) => p.cfg) });
          of.applyFlowMods(flowMods([...rules, ...conj]));
          // A fixed MAC table so that NORMAL has both known and unknown destinations.
          for (const p of packets.slice(0, 2)) of.xlate(p);
          for (const p of packets) {
            const r = of.xlate(p, { sideEffects: false });
            expect(inMegaflow(r.megaflow, toDpKey(p))).toBe(true);
            for (const o of others) {
              const q = fromDpKey(mixUnderMask(r.megaflow, toDpKey(o)));
              // A datapath key of an untagged packet has vlan_tci 0 (no PCP bits without a tag).
              // Nor an inner tag without an outer one, nor stray bits in an absent one.
              if (!(q[Slot.VLAN_TCI] & 0x1000)) q[Slot.VLAN_TCI] = 0;
              if (!(q[Slot.VLAN_TCI] & 0x1000) || !(q[Slot.VLAN_TCI1] & 0x1000)) q[Slot.VLAN_TCI1] = 0;
              // Slow-path state starts at zero for every packet.
              expect(q[Slot.REG0]).toBe(0);
              const r2 = of.xlate(q, { sideEffects: false });
              expect(r2.actions).toEqual(r.actions);
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
