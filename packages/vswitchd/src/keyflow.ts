/**
 * Conversions between the datapath's key (DpFlowKey, what upcalls carry)
 * and ofproto's Flow words (what xlate and the classifier read), and back
 * for the fields a packet can carry (to build packets from an ofctl flow).
 * The slow-path-only words (metadata, registers, conj_id) start at zero.
 * KEY_SLOTS is the one table of which key field fills which Flow words; the
 * upcall path reads encoded keys with it directly (KeyFlowReader), so an
 * upcall's key goes from the datapath's bytes to Flow words in one step.
 */
import type { KeyCodec } from '@nvs/datapath';
import { newDpFlowKey, newFlow, Slot, type DpFlowKey, type Flow } from '@nvs/ofproto';

/** How a key field sits in Flow words: one word; a MAC (two: high 16 bits, low 32); 128 bits (four, most significant first). */
export type KeySlotKind = 'word' | 'mac' | 'wide';

/** Each packet field of a key, with the first Flow word it fills. */
export const KEY_SLOTS: readonly (readonly [keyof DpFlowKey, number, KeySlotKind])[] = [
  ['eth_type', Slot.DL_TYPE, 'word'],
  ['vlan_tci', Slot.VLAN_TCI, 'word'],
  ['cvlan_tci', Slot.VLAN_TCI1, 'word'],
  ['vlan_tpid', Slot.VLAN_TPID, 'word'],
  ['nw_src', Slot.NW_SRC, 'word'],
  ['nw_dst', Slot.NW_DST, 'word'],
  ['nw_proto', Slot.NW_PROTO, 'word'],
  ['nw_tos', Slot.NW_TOS, 'word'],
  ['nw_ttl', Slot.NW_TTL, 'word'],
  ['nw_frag', Slot.NW_FRAG, 'word'],
  ['tp_src', Slot.TP_SRC, 'word'],
  ['tp_dst', Slot.TP_DST, 'word'],
  ['tcp_flags', Slot.TCP_FLAGS, 'word'],
  ['ipv6_label', Slot.IPV6_LABEL, 'word'],
  // The tunnel ID's low word: the datapath holds 32 bits (VXLAN and Geneve carry 24).
  ['tun_id', Slot.TUN_ID + 1, 'word'],
  ['tun_src', Slot.TUN_SRC, 'word'],
  ['tun_dst', Slot.TUN_DST, 'word'],
  ['eth_dst', Slot.DL_DST, 'mac'],
  ['eth_src', Slot.DL_SRC, 'mac'],
  ['arp_sha', Slot.ARP_SHA, 'mac'],
  ['arp_tha', Slot.ARP_THA, 'mac'],
  ['ipv6_src', Slot.IPV6_SRC, 'wide'],
  ['ipv6_dst', Slot.IPV6_DST, 'wide'],
  ['nd_target', Slot.ND_TARGET, 'wide'],
];

/** The Flow of a datapath key, with `ofport` (OpenFlow numbering) as in_port. */
export function flowFromKey(key: DpFlowKey, ofport: number): Flow {
  const f = newFlow();
  f[Slot.IN_PORT] = ofport;
  for (const [name, slot, kind] of KEY_SLOTS) {
    const v = key[name];
    if (kind === 'word') f[slot] = v as number;
    else if (kind === 'mac') {
      f[slot] = Math.floor((v as number) / 0x1_0000_0000);
      f[slot + 1] = (v as number) >>> 0;
    } else {
      let x = BigInt(v);
      for (let i = 3; i >= 0; i--) {
        f[slot + i] = Number(x & 0xffffffffn);
        x >>= 32n;
      }
    }
  }
  return f;
}

/** The datapath key fields of a Flow (in_port left 0: the caller maps ports). */
export function keyFromFlow(f: Flow): DpFlowKey {
  const key = newDpFlowKey();
  const k = key as unknown as Record<string, number | bigint>;
  for (const [name, slot, kind] of KEY_SLOTS) {
    if (kind === 'word') k[name] = f[slot];
    else if (kind === 'mac') k[name] = f[slot] * 0x1_0000_0000 + f[slot + 1];
    else {
      let v = 0n;
      for (let i = 0; i < 4; i++) v = (v << 32n) | BigInt(f[slot + i]);
      k[name] = v;
    }
  }
  if (key.vlan_tci & 0x1000 && !key.vlan_tpid) key.vlan_tpid = 0x8100;
  return key;
}

/** A key field that fills Flow words, with where it sits in the encoded key. */
interface FlowField {
  offset: number;
  size: number;
  slot: number;
  kind: KeySlotKind;
}

/**
 * Reads an encoded key (as an upcall carries it) straight into Flow words,
 * as `flowFromKey` does from a decoded one, without decoding the key into an
 * object first: the per-upcall path. Offsets come from the datapath's codec.
 */
export class KeyFlowReader {
  private readonly fields: FlowField[];
  private readonly scratch: Buffer;
  private readonly size: number;

  constructor(codec: KeyCodec) {
    this.size = codec.size;
    this.scratch = Buffer.alloc(codec.size);
    this.fields = KEY_SLOTS.map(([name, slot, kind]) => {
      const f = codec.field(name);
      return { offset: f.offset, size: f.size, slot, kind };
    });
  }

  /** The Flow of `key` (encoded, as a latin1 string) with `ofport` as in_port, written over `into`. */
  toFlow(key: string, ofport: number, into: Flow): Flow {
    const b = this.scratch;
    b.write(key, 0, this.size, 'latin1');
    into.fill(0);
    into[Slot.IN_PORT] = ofport;
    for (const f of this.fields) {
      const o = f.offset;
      if (f.kind === 'word') into[f.slot] = f.size === 1 ? b[o] : f.size === 2 ? b[o] | (b[o + 1] << 8) : b.readUInt32LE(o);
      else if (f.kind === 'mac') {
        into[f.slot] = (b[o] << 8) | b[o + 1];
        into[f.slot + 1] = b.readUInt32BE(o + 2);
      } else for (let i = 0; i < 4; i++) into[f.slot + i] = b.readUInt32BE(o + 4 * i);
    }
    return into;
  }
}
