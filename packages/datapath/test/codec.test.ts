// The binary encodings against the Rust side: TS encode → Rust decode → TS.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  ActionEncodingError,
  BadKeyError,
  KeyCodec,
  LayoutMismatchError,
  SET_FIELDS,
  decodeActions,
  encodeActions,
  loadAddon,
  zeroFlowKey,
  type DpAction,
  type FlowKey,
  type SetFieldName,
} from '../src/index.ts';

const addon = loadAddon();
const layout = addon.flowKeyLayout();
const codec = new KeyCodec(layout);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** An arbitrary full FlowKey with every field in range, from the published layout. */
const arbKey: fc.Arbitrary<FlowKey> = fc.record(
  Object.fromEntries(
    codec.fields.map((f) => [
      f.name,
      f.kind === 'wide' ? fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }) : fc.integer({ min: 0, max: 2 ** (8 * f.size) - 1 }),
    ]),
  ),
) as unknown as fc.Arbitrary<FlowKey>;

/** A field's value as Rust's `flowKeyDebug` prints it: integers in decimal, byte fields as network-order hex. */
function rustText(codecField: { kind: string; size: number }, v: number | bigint): string {
  return codecField.kind === 'num' ? String(v) : v.toString(16).padStart(2 * codecField.size, '0');
}

describe('flow key encoding', () => {
  it('has the size and fields Rust publishes', () => {
    expect(codec.size).toBe(addon.flowKeySize());
    expect(codec.fields.map((f) => f.name).sort()).toEqual(Object.keys(zeroFlowKey()).sort());
  });

  it('round-trips TS → Rust → TS, field by field as Rust reads them', () => {
    fc.assert(
      fc.property(arbKey, (key) => {
        const bytes = codec.encode(key);
        expect(codec.decode(bytes)).toEqual(key);
        const rust = addon.flowKeyDebug(bytes);
        expect(Object.keys(rust).sort()).toEqual(codec.fields.map((f) => f.name).sort());
        for (const f of codec.fields) expect(rust[f.name]).toBe(rustText(f, key[f.name]));
      }),
      { numRuns: 200 },
    );
  });

  it('decodes at an offset, and writes a megaflow identity as masked key then mask', () => {
    const key = { ...zeroFlowKey(), in_port: 7, eth_type: 0x0800, nw_src: 0x0a000001, eth_src: 0x020000000001, ipv6_dst: 5n };
    const mask = codec.exactMask(['in_port', 'eth_type', 'eth_src']);
    const two = Buffer.concat([Buffer.alloc(3), codec.encode(key)]);
    expect(codec.decode(two, 3)).toEqual(key);
    const id = Buffer.from(codec.id(key, mask), 'latin1');
    expect(id).toEqual(Buffer.concat([codec.encode({ in_port: 7, eth_type: 0x0800, eth_src: 0x020000000001 }), codec.encode(mask)]));
  });

  it('rejects short keys and unknown fields with BadKeyError', () => {
    expect(() => codec.decode(new Uint8Array(codec.size - 8))).toThrow(BadKeyError);
    expect(() => codec.decode(new Uint8Array(codec.size), 1)).toThrow(BadKeyError);
    expect(() => addon.flowKeyDebug(Buffer.alloc(3))).toThrow(expect.objectContaining({ code: 'DP_BAD_KEY' }));
    expect(() => codec.exactMask(['nope' as keyof FlowKey])).toThrow(BadKeyError);
  });

  it('refuses a layout that does not match the FlowKey fields', () => {
    expect(() => new KeyCodec(layout.filter((f) => f.name !== 'tp_src'))).toThrow(LayoutMismatchError);
  });

  it('matches the key Rust extracts from a packet', () => {
    const frame = Buffer.from('ffffffffffff020000000001080600010800060400010200000000010a000001000000000000c0a80001', 'hex');
    const key = codec.decode(addon.extractKey(frame, 3));
    expect(key).toMatchObject({ in_port: 3, eth_type: 0x0806, nw_proto: 1, nw_src: 0x0a000001, nw_dst: 0xc0a80001, arp_sha: 0x020000000001, eth_dst: 0xffffffffffff });
  });
});

const fieldNames = Object.keys(SET_FIELDS) as SetFieldName[];
const arbSet: fc.Arbitrary<DpAction> = fc
  .constantFrom(...fieldNames)
  .chain((field) => {
    const n = SET_FIELDS[field].size;
    return fc.tuple(fc.uint8Array({ minLength: n, maxLength: n }), fc.uint8Array({ minLength: n, maxLength: n })).map(([v, m]) => {
      const mask = Uint8Array.from(m);
      if (field === 'ipv6_label') mask.set([0, mask[1] & 0x0f], 0); // 20-bit field
      return { type: 'set' as const, field, value: v.map((b, i) => b & mask[i]), mask };
    });
  });
const arbAction: fc.Arbitrary<DpAction> = fc.oneof(
  fc.nat().map((port) => ({ type: 'output' as const, port: port >>> 0 })),
  fc.constant({ type: 'drop' as const }),
  fc.bigInt({ min: 0n, max: 0xffffffffffffffffn }).map((cookie) => ({ type: 'userspace' as const, cookie })),
  fc.nat().map((maxLen) => ({ type: 'truncate' as const, maxLen })),
  fc.tuple(fc.constantFrom(0x8100 as const, 0x88a8 as const), fc.integer({ min: 0, max: 0xffff })).map(([tpid, tci]) => ({ type: 'push_vlan' as const, tpid, tci })),
  fc.constant({ type: 'pop_vlan' as const }),
  fc.tuple(fc.nat(), fc.nat(), fc.nat()).map(([id, src, dst]) => ({ type: 'set_tunnel' as const, id: id >>> 0, src: src >>> 0, dst: dst >>> 0 })),
  arbSet,
);

describe('action encoding', () => {
  it('round-trips TS → Rust → TS for random lists', () => {
    fc.assert(
      fc.property(fc.array(arbAction, { maxLength: 12 }), (actions) => {
        const bytes = encodeActions(actions);
        const back = addon.actionsRoundTrip(bytes);
        expect(hex(back)).toBe(hex(bytes));
        expect(decodeActions(back)).toEqual(actions.map((a) => (a.type === 'set' && !a.mask ? { ...a, mask: new Uint8Array(a.value.length).fill(255) } : a)));
      }),
      { numRuns: 300 },
    );
  });

  it('accepts an unmasked set of every field (the default mask is the whole field)', () => {
    for (const field of fieldNames) {
      const { size } = SET_FIELDS[field];
      const value = new Uint8Array(size);
      value[size - 1] = 1;
      const bytes = encodeActions([{ type: 'set', field, value }]);
      expect(hex(addon.actionsRoundTrip(bytes))).toBe(hex(bytes));
    }
  });

  it('is read by Rust as the actions meant', () => {
    const bytes = encodeActions([
      { type: 'output', port: 2 },
      { type: 'userspace', cookie: 7n },
      { type: 'push_vlan', tpid: 0x8100, tci: 10 },
      { type: 'set', field: 'ipv4_ttl', value: Uint8Array.of(9) },
    ]);
    const debug = addon.actionsDebug(bytes);
    expect(debug).toMatch(/^\[Output\(2\), Userspace\(7\), PushVlan \{ tpid: 33024, tci: 10 \}, Set\(/);
    expect(debug).toContain('Ipv4Ttl');
  });

  it('gives the same error codes as Rust for malformed lists', () => {
    for (const bad of [Buffer.of(9, 0), Buffer.of(1, 4, 0), Buffer.of(1, 3, 0, 0, 0), Buffer.of(7, 3, 99, 0, 0), Buffer.of(5, 4, 0x81, 0x01, 0, 0)]) {
      let rust = '';
      try {
        addon.actionsRoundTrip(bad);
      } catch (e) {
        rust = (e as { code: string }).code;
      }
      expect(rust).toMatch(/^ACTION_/);
      expect(() => decodeActions(bad)).toThrow(expect.objectContaining({ code: rust }));
    }
    expect(() => encodeActions([{ type: 'set', field: 'tp_src', value: Uint8Array.of(1, 2), mask: Uint8Array.of(0, 0xff) }])).toThrow(ActionEncodingError);
    expect(() => encodeActions([{ type: 'output', port: -1 }])).toThrow(ActionEncodingError);
  });
});
