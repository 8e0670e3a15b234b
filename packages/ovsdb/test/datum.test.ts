// Properties of the RFC 7047 value notation and set algebra: JSON round trips
// for every atomic type as set or map, diffs that invert, and the checks a
// column type imposes.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { applyDiff, checkDatum, ChunkedSet, datumDiff, datumEquals, datumSize, datumToJson, makeMap, makeSet, parseDatum, setDelete, setInsert, datumDiffFast, type Datum, type DeltaLog } from '../src/datum.ts';
import { ConstraintViolationError, DuplicateElementError, OvsdbSyntaxError } from '../src/errors.ts';
import { parseColumnType, type AtomicType, type ColumnType } from '../src/schema.ts';

const atomOf: Record<AtomicType, fc.Arbitrary<number | boolean | string>> = {
  integer: fc.integer(),
  real: fc.double({ noNaN: true, noDefaultInfinity: true }).map((x) => (Object.is(x, -0) ? 0 : x)),
  boolean: fc.boolean(),
  string: fc.string(),
  uuid: fc.uuid().map((u) => u.toLowerCase()),
};
const atomicType = fc.constantFrom<AtomicType>('integer', 'real', 'boolean', 'string', 'uuid');

/** A column type and a value of it. */
const typedValue = fc
  .record({ key: atomicType, value: fc.option(atomicType, { nil: undefined }), max: fc.constantFrom(1, 5, Infinity) })
  .chain(({ key, value, max }) => {
    const type: ColumnType = value ? { key: { type: key }, value: { type: value }, min: 0, max } : { key: { type: key }, min: 0, max };
    const n = Math.min(max, 5);
    const datum = value
      ? fc.array(fc.tuple(atomOf[key], atomOf[value]), { maxLength: n }).map((pairs) => makeMap(pairs))
      : fc.array(atomOf[key], { maxLength: n }).map((atoms) => makeSet(atoms));
    return fc.tuple(fc.constant(type), datum);
  });

describe('datum notation', () => {
  it('datumToJson then parseDatum gives the same value', () => {
    fc.assert(
      fc.property(typedValue, ([type, d]) => {
        const back = parseDatum(JSON.parse(JSON.stringify(datumToJson(d, type))), type);
        expect(datumEquals(back, d)).toBe(true);
        expect(back.keys).toEqual(d.keys);
      }),
      { numRuns: 300 },
    );
  });

  it('applyDiff(old, datumDiff(old, new)) is new, for sets, maps and at-most-one columns', () => {
    fc.assert(
      fc.property(typedValue, ([type, a]) => {
        const b = a.keys.length > 0 ? (a.values ? makeMap([]) : makeSet(a.keys.slice(1))) : a;
        const replaces = type.max === 1 && !type.value;
        expect(datumEquals(applyDiff(a, datumDiff(a, b, replaces), replaces), b)).toBe(true);
        expect(datumEquals(applyDiff(b, datumDiff(b, a, replaces), replaces), a)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('set insert/delete deltas give the same diff as a full comparison', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 50 }), { maxLength: 30 }), fc.uniqueArray(fc.integer({ min: 0, max: 50 }), { maxLength: 10 }), (base, change) => {
        const a = makeSet(base);
        const log: DeltaLog = new Map();
        const ins = setInsert(a, makeSet(change), log);
        expect(datumDiffFast(a, ins, false, log)).toEqual(datumDiff(a, ins, false));
        const del = setDelete(a, makeSet(change), log);
        expect(datumDiffFast(a, del, false, log)).toEqual(datumDiff(a, del, false));
        expect(ins.keys).toEqual([...new Set([...base, ...change])].sort((x, y) => x - y));
        expect(del.keys).toEqual(base.filter((x) => !change.includes(x)).sort((x, y) => x - y));
      }),
    );
  });
});

describe('big sets (ChunkedSet)', () => {
  it('insert/delete mutations on a big set keep it sorted, equal to the plain set, with O(changes) diffs', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 5000 }), { minLength: 480, maxLength: 900 }),
        fc.array(fc.tuple(fc.boolean(), fc.uniqueArray(fc.integer({ min: 0, max: 5000 }), { minLength: 1, maxLength: 16 })), { maxLength: 60 }),
        (base, steps) => {
          let d: Datum = makeSet(base);
          const ref = new Set(base);
          for (const [insert, change] of steps) {
            const log: DeltaLog = new Map();
            const next = insert ? setInsert(d, makeSet(change), log) : setDelete(d, makeSet(change), log);
            for (const k of change) insert ? ref.add(k) : ref.delete(k);
            const want = [...ref].sort((x, y) => x - y);
            expect(datumSize(next)).toBe(want.length);
            expect(next.keys).toEqual(want);
            expect(datumDiffFast(d, next, false, log)).toEqual(datumDiff(d, next, false));
            expect(datumEquals(next, makeSet(want))).toBe(true);
            expect(JSON.stringify(next)).toBe(JSON.stringify(makeSet(want)));
            d = next;
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('a mutation on a big set shares the untouched chunks and leaves the old version intact', () => {
    const base = makeSet(Array.from({ length: 1000 }, (_, i) => i * 2));
    const one = setInsert(base, makeSet([7]));
    expect(one).toBeInstanceOf(ChunkedSet);
    const two = setInsert(one, makeSet([9]));
    const c1 = (one as ChunkedSet).chunks;
    const c2 = (two as ChunkedSet).chunks;
    expect(c2.filter((c) => c1.includes(c))).toHaveLength(c1.length - 1);
    const three = setDelete(two, makeSet([0, 7]));
    expect(datumSize(three)).toBe(1000);
    expect(three.keys.slice(0, 4)).toEqual([2, 4, 6, 8]);
    expect(two.keys.slice(0, 6)).toEqual([0, 2, 4, 6, 7, 8]);
    expect(one.keys.includes(9)).toBe(false);
    expect(base.keys).toHaveLength(1000);
  });
});

describe('type checks', () => {
  const t = (json: unknown) => parseColumnType('test', json);

  it('rejects wrong atoms, malformed notation and duplicates', () => {
    expect(() => parseDatum('x', t('integer'))).toThrow(OvsdbSyntaxError);
    expect(() => parseDatum(1.5, t('integer'))).toThrow(OvsdbSyntaxError);
    expect(() => parseDatum(['uuid', 'not-a-uuid'], t('uuid'))).toThrow(OvsdbSyntaxError);
    expect(() => parseDatum(['named-uuid', 'x'], t('uuid'))).toThrow(OvsdbSyntaxError);
    expect(() => parseDatum(['set', [1, 2]], t({ key: 'string', max: 2 }))).toThrow(OvsdbSyntaxError);
    expect(() => parseDatum(['map', [['a', 1]]], t({ key: 'string', value: 'string', min: 0, max: 'unlimited' }))).toThrow(OvsdbSyntaxError);
    expect(() => parseDatum(['set', [1, 1]], t({ key: 'integer', max: 2 }))).toThrow(DuplicateElementError);
    expect(parseDatum(['named-uuid', 'x'], t('uuid'), () => '00000000-0000-0000-0000-00000000000a').keys).toEqual(['00000000-0000-0000-0000-00000000000a']);
  });

  it('enforces cardinality, enums, ranges and lengths', () => {
    const enumT = t({ key: { type: 'string', enum: ['set', ['a', 'b']] }, min: 0, max: 1 });
    expect(() => checkDatum(parseDatum('c', enumT), enumT)).toThrow(ConstraintViolationError);
    const rangeT = t({ key: { type: 'integer', minInteger: 1, maxInteger: 4095 } });
    expect(() => checkDatum(parseDatum(0, rangeT), rangeT)).toThrow(ConstraintViolationError);
    expect(() => checkDatum(parseDatum(4095, rangeT), rangeT)).not.toThrow();
    const lenT = t({ key: { type: 'string', minLength: 2, maxLength: 3 } });
    expect(() => checkDatum(parseDatum('é', lenT), lenT)).toThrow(ConstraintViolationError);
    expect(() => checkDatum(parseDatum('éé', lenT), lenT)).not.toThrow();
    const twoT = t({ key: 'integer', min: 1, max: 2 });
    expect(() => checkDatum(parseDatum(['set', []], twoT), twoT)).toThrow(ConstraintViolationError);
    expect(() => checkDatum(parseDatum(['set', [1, 2, 3]], twoT), twoT)).toThrow(ConstraintViolationError);
  });
});
