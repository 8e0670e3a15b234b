// flowFromKey and keyFromFlow both walk KEY_SLOTS: a round trip checks that
// every packet field survives (and that the table misses none of them).
import fc from 'fast-check';
import { newDpFlowKey, Slot, type DpFlowKey } from '@nvs/ofproto';
import { expect, it } from 'vitest';
import { flowFromKey, keyFromFlow } from '../src/keyflow.ts';

const u = (bits: number) => fc.integer({ min: 0, max: 2 ** bits - 1 });
const mac = fc.integer({ min: 0, max: 2 ** 48 - 1 });
const wide = fc.bigInt({ min: 0n, max: 2n ** 128n - 1n });

/** Every packet field flowFromKey carries, random; the rest as newDpFlowKey leaves them. */
const packetKey = fc
  .record({
    eth_type: u(16), vlan_tci: u(16), nw_src: u(32), nw_dst: u(32), nw_proto: u(8), nw_tos: u(8), nw_ttl: u(8), nw_frag: u(2),
    tp_src: u(16), tp_dst: u(16), tcp_flags: u(12), ipv6_label: u(20),
    eth_src: mac, eth_dst: mac, arp_sha: mac, arp_tha: mac, ipv6_src: wide, ipv6_dst: wide, nd_target: wide,
  })
  .map((fields): DpFlowKey => {
    const key = { ...newDpFlowKey(), ...fields };
    if (key.vlan_tci & 0x1000) key.vlan_tpid = 0x8100;
    return key;
  });

it('flowFromKey and keyFromFlow carry the same fields, both ways', () => {
  fc.assert(
    fc.property(packetKey, (key) => {
      expect(keyFromFlow(flowFromKey(key, 7))).toEqual(key);
    }),
  );
});

it('flowFromKey sets in_port and leaves the slow-path-only words zero', () => {
  const f = flowFromKey(newDpFlowKey(), 3);
  expect(f[Slot.IN_PORT]).toBe(3);
  expect([...f].filter((w, i) => i !== Slot.IN_PORT && w !== 0)).toEqual([]);
});
