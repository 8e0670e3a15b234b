// The OpenFlow codec: known messages round-trip; random and mutated bytes
// never crash it (every refusal is an OfError), and whatever it accepts
// encodes and decodes back to the same value. (Notes in the samples are
// six bytes: shorter ones come back padded with zeros, as from OVS.)
import { parseFlows, type FlowMod } from '@nvs/ofproto';
import { describe, expect, it } from 'vitest';
import { decode, encode, OfError, type OfMessage, tableFeatures } from '../src/index.ts';

const RULES = [
  'priority=5,in_port=1,ip,nw_src=10.0.0.0/8,actions=output:2',
  'table=1,reg0=5/0xff,tcp,tp_dst=80,tcp_flags=+syn-ack,actions=resubmit(,2),load:0x5->NXM_NX_REG1[0..7],mod_dl_src:00:11:22:33:44:55,note:aabbccddeeff',
  'cookie=0x12,priority=100,arp,arp_tpa=10.0.0.1,arp_sha=00:00:00:00:00:01,actions=mod_vlan_vid:10,mod_vlan_pcp:3,output:3',
  'udp,udp_src=53,nw_tos=16,nw_ecn=1,actions=mod_tp_dst:99,mod_nw_tos:16,dec_ttl,dec_ttl(1,2),CONTROLLER:64,controller(reason=no_match,id=3)',
  'dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,vlan_tci=0x1005/0x1fff,actions=strip_vlan,move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],output:NXM_NX_REG2[0..15]',
  'metadata=0x10/0xff,ipv6,ipv6_src=2001:db8::/32,ipv6_label=5,actions=set_field:0xa010203->reg3,set_field:2001:db8::1->ipv6_dst,resubmit(4,5),write_metadata:0x5/0xf',
  'icmp6,icmpv6_type=135,nd_target=2001:db8::2,actions=conjunction(7,1/2),note:010203040506',
  'in_port=2,dl_vlan=5,actions=set_field:4000->vlan_vid,set_field:5->vlan_pcp,output:1',
  'tun_id=0x42,ip,nw_frag=later,icmp,icmp_type=8,icmp_code=0,actions=drop',
  'conj_id=7,tcp,actions=mod_nw_src:1.2.3.4,mod_nw_dst:5.6.7.8,mod_tp_src:1',
];

function mods(): FlowMod[] {
  return parseFlows(RULES.join('\n'), { file: 'codec-test' });
}

function samples(): OfMessage[] {
  const base = { version: 1, xid: 7 };
  const out: OfMessage[] = [
    { ...base, type: 'hello', versions: [1, 4, 6] },
    { ...base, type: 'echo_request', data: new Uint8Array([1, 2, 3]) },
    { ...base, type: 'error', errType: 3, code: 1, data: new Uint8Array([1, 14, 0, 8, 0, 0, 0, 1]) },
    { ...base, type: 'features_request' },
    { ...base, type: 'features_reply', datapathId: 0xaabbn, nBuffers: 0, nTables: 254, capabilities: 0xc7, actions: 0xfff, ports: [{ portNo: 1, hwAddr: 0x0a0000000001n, name: 'p1', config: 0, state: 1 }] },
    { ...base, type: 'set_config', flags: 0, missSendLen: 128 },
    { ...base, type: 'barrier_request' },
    { ...base, type: 'set_flow_format', format: 'nxm' },
    { ...base, type: 'flow_mod_table_id', enable: true },
    { ...base, type: 'table_stats_reply', tables: [{ tableId: 0, name: '', active: 3, lookups: 10n, matched: 4n }] },
    { ...base, type: 'port_stats_request', portNo: 0xffff },
    { ...base, type: 'port_stats_reply', ports: [{ portNo: 2, rxPackets: 1n, txPackets: 2n, rxBytes: 3n, txBytes: 4n, rxDropped: 5n, txDropped: 6n, durationSec: 0, durationNsec: 0 }] },
    { ...base, type: 'aggregate_reply', packets: 9n, bytes: 99n, flows: 3 },
    { ...base, type: 'desc_reply', mfr: 'nvs', hw: 'nvs', sw: 'nvs', serial: 'None', dp: 'None' },
  ];
  const flows = mods();
  for (const fm of flows) out.push({ ...base, type: 'flow_mod', format: 'nxm', flowMod: fm, bufferId: 0xffffffff, outGroup: null });
  // A dump's selection has no priority on the wire.
  out.push({ ...base, type: 'flow_stats_request', table: 1, outPort: null, outGroup: null, cookie: 0n, cookieMask: 0n, match: { ...flows[1].match, priority: 0 } });
  out.push({
    ...base,
    type: 'flow_stats_reply',
    more: false,
    flows: flows.map((fm) => ({ table: fm.table ?? 0, durationSec: 3, durationNsec: 5, idleTimeout: fm.idleTimeout, hardTimeout: 0, idleAge: 1, hardAge: 2, cookie: fm.cookie, packets: 4n, bytes: 40n, flags: 0, importance: 0, match: fm.match, actions: fm.actions })),
  });
  out.push({ ...base, type: 'packet_out', bufferId: 0xffffffff, inPort: 0xfffd, actions: flows[0].actions, data: new Uint8Array(60).fill(9) });
  out.push({ ...base, type: 'flow_removed', format: 'nxm', cookie: 0x9n, reason: 2, tableId: 4, durationSec: 1, durationNsec: 5, idleTimeout: 3, hardTimeout: 0, packets: 2n, bytes: 120n, match: flows[1].match });
  out.push({ ...base, type: 'flow_removed', format: 'standard', cookie: 0x9n, reason: 0, tableId: 0, durationSec: 1, durationNsec: 5, idleTimeout: 3, hardTimeout: 0, packets: 2n, bytes: 120n, match: flows[0].match });
  out.push({ ...base, type: 'set_packet_in_format', format: 'nxt2' });
  out.push({ ...base, type: 'flow_mod', format: 'nxm', bufferId: 0xffffffff, outGroup: null, flowMod: { ...flows[1], command: 'delete', cookie: 0x10n, cookieMask: 0xf0n, actions: [] } });
  out.push({ ...base, type: 'aggregate_request', table: null, outPort: null, outGroup: null, cookie: 0x12n, cookieMask: 0xffn, match: { ...flows[0].match, priority: 0 } });
  out.push({ ...base, type: 'port_status', reason: 1, port: { portNo: 4, hwAddr: 0x0a0000000004n, name: 'p4', config: 0, state: 0 } });
  // The same messages in OpenFlow 1.3, 1.4 and 1.5 layouts (OXM matches, instructions, multipart), where they exist there.
  const later = out.filter((m) => !['set_flow_format', 'flow_mod_table_id'].includes(m.type));
  for (const version of [4, 5, 6]) {
    for (const m of later) {
      if (m.type === 'flow_mod') out.push({ ...m, version, format: 'oxm' });
      else if (m.type === 'features_reply') out.push({ ...m, version, actions: 0, ports: [] });
      else if (m.type === 'table_stats_reply') out.push({ ...m, version });
      else if (m.type === 'flow_stats_reply') out.push({ ...m, version, flows: m.flows.map((f) => ({ ...f, idleAge: version === 6 ? f.idleAge : 0, hardAge: 0, importance: version >= 5 ? 3 : 0, flags: 1 })) });
      else if (m.type === 'port_stats_reply') out.push({ ...m, version, ports: m.ports.map((p) => ({ ...p, durationSec: version >= 4 ? 7 : 0 })) });
      else out.push({ ...m, version });
    }
    const inner: OfMessage = { type: 'flow_mod', format: 'oxm', flowMod: flows[0], bufferId: 0xffffffff, outGroup: null, version, xid: 9 };
    out.push({ version, xid: 9, type: 'bundle_control', bundleId: 1, ctrl: 0, flags: 3 });
    out.push({ version, xid: 9, type: 'bundle_add', bundleId: 1, flags: 3, message: inner });
    out.push({ version, xid: 9, type: 'port_desc_request', portNo: 0xffff });
    out.push({ version, xid: 9, type: 'port_desc_reply', ports: [{ portNo: 0xfffe, hwAddr: 0x0a0000000001n, name: 'br0', config: 0, state: 4 }] });
    out.push({ version, xid: 9, type: 'table_features_request' });
    out.push({ version, xid: 9, type: 'role_request', nicira: false, role: 'master', generationId: 7n });
    out.push({ version, xid: 9, type: 'role_reply', nicira: true, role: 'slave', generationId: null });
    out.push({ version, xid: 0, type: 'role_status', role: 'slave', reason: 0, generationId: 7n });
    out.push({ version, xid: 9, type: 'get_async_request' });
    out.push({ version, xid: 0, type: 'port_status', reason: 0, port: { portNo: 4, hwAddr: 0x0a0000000004n, name: 'p4', config: 0, state: 4 } });
    out.push({ version, xid: 9, type: 'set_async', nicira: false, config: { packetIn: [0x3b, 1], portStatus: [7, 7], flowRemoved: [0xf, 0] } });
    out.push({ version, xid: 9, type: 'get_async_reply', nicira: false, config: { packetIn: [0x3b, 0], portStatus: [7, 5], flowRemoved: [0x3f, 2] } });
    const inPort = { ...flows[0].match, priority: 0 };
    out.push({ version, xid: 0, type: 'packet_in', format: 'standard', totalLen: 64, reason: 1, tableId: 3, cookie: 0x5n, match: inPort, data: new Uint8Array(60).fill(7) });
    out.push({ version, xid: 0, type: 'packet_in', format: 'nxt2', totalLen: 64, reason: 0, tableId: 3, cookie: 0x5n, match: inPort, data: new Uint8Array(60).fill(7) });
    out.push({ version, xid: 5, type: 'packet_out', bufferId: 0xffffffff, inPort: 1, actions: flows[0].actions, data: new Uint8Array(60).fill(9) });
    out.push({ version, xid: 0, type: 'flow_removed', format: 'standard', cookie: 0x9n, reason: 2, tableId: 4, durationSec: 1, durationNsec: 5, idleTimeout: 3, hardTimeout: 4, packets: 2n, bytes: 120n, match: flows[0].match });
    out.push({ version, xid: 9, type: 'table_features_reply', more: true, tables: tableFeatures(3, 100) });
    out.push({ version, xid: 9, type: 'aggregate_request', table: null, outPort: 2, outGroup: null, cookie: 0x10n, cookieMask: 0xf0n, match: { ...flows[0].match, priority: 0 } });
  }
  return out;
}

/** A small deterministic generator (mulberry32), so a failure names its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Decodes; an OfError is a refusal (undefined), anything else thrown fails the test. */
function tryDecode(bytes: Uint8Array): OfMessage | undefined {
  try {
    return decode(bytes);
  } catch (err) {
    if (err instanceof OfError) return undefined;
    throw new Error(`decode threw ${(err as Error).stack} on ${Buffer.from(bytes).toString('hex')}`);
  }
}

/**
 * What must survive a round trip: an OpenFlow 1.0 flow_mod re-encodes as
 * NXT_FLOW_MOD, so its format may change; an add with no table is an add to
 * table 0, which the wire spells as 0.
 */
function comparable(m: OfMessage): unknown {
  if (m.type !== 'flow_mod') return m;
  const fm = m.flowMod;
  return { ...m, format: 'any', flowMod: { ...fm, table: fm.command === 'add' ? (fm.table ?? 0) : fm.table } };
}

function expectRoundTrip(m: OfMessage): void {
  const again = decode(encode(m));
  expect(comparable(again)).toEqual(comparable(m));
}

describe('OpenFlow codec', () => {
  it('round-trips every known message, matches and actions as ofproto parsed them', () => {
    const all = samples();
    // OpenFlow 1.1+ has one spelling where 1.0 had several (mod_dl_src and mod_vlan_vid become
    // set_field, as with OVS), so a 1.3+ message round-trips from its first decoding on.
    for (const m of all) expectRoundTrip(m.version === 1 ? m : decode(encode(m)));
    const fm = all.find((m) => m.type === 'flow_mod' && m.flowMod.match.priority === 5);
    expect(fm).toBeDefined();
    // The wire form is what OVS sends: NXT_FLOW_MOD (vendor 0x2320, subtype 13).
    expect(Buffer.from(encode(fm!)).subarray(8, 16).toString('hex')).toBe('000023200000000d');
  });

  it('refuses with an OpenFlow error: truncated headers, lying lengths, unknown types and TLVs that overrun', () => {
    const code = (b: number[]) => {
      try {
        decode(new Uint8Array(b));
      } catch (err) {
        return err instanceof OfError ? [err.errType, err.code] : err;
      }
      return 'accepted';
    };
    expect(code([1, 0, 0])).toEqual([1, 6]);
    expect(code([1, 5, 0, 16, 0, 0, 0, 1])).toEqual([1, 6]);
    expect(code([1, 99, 0, 8, 0, 0, 0, 1])).toEqual([1, 1]);
    expect(code([2, 5, 0, 8, 0, 0, 0, 1])).toEqual([1, 0]);
    const fm = encode(samples().find((m) => m.type === 'flow_mod')!);
    fm[40] = 0;
    fm[41] = 200; // the NXM length: past the end of the message
    expect(code([...fm])).toEqual([1, 6]);
  });

  it('never crashes on random or mutated messages, and round-trips whatever it accepts', () => {
    const seeds = samples().map(encode);
    let accepted = 0;
    for (let seed = 1; seed <= 20_000; seed++) {
      const rnd = prng(seed);
      const pick = seeds[Math.floor(rnd() * seeds.length)];
      let bytes: Uint8Array;
      if (rnd() < 0.15) {
        bytes = new Uint8Array(8 + Math.floor(rnd() * 120)).map(() => Math.floor(rnd() * 256));
        bytes[0] = 1;
      } else {
        bytes = pick.slice();
        const flips = 1 + Math.floor(rnd() * 4);
        for (let i = 0; i < flips; i++) bytes[Math.floor(rnd() * bytes.length)] = Math.floor(rnd() * 256);
        if (rnd() < 0.3) bytes = bytes.subarray(0, Math.floor(rnd() * bytes.length));
      }
      // Mostly keep the header's length honest, so the body parsers are what gets exercised.
      if (bytes.length >= 4 && rnd() < 0.8) {
        bytes[2] = bytes.length >> 8;
        bytes[3] = bytes.length & 0xff;
      }
      const m = tryDecode(bytes);
      if (!m) continue;
      accepted++;
      let re: Uint8Array;
      try {
        re = encode(m);
      } catch (err) {
        throw new Error(`seed ${seed}: accepted but did not re-encode: ${(err as Error).message} (${Buffer.from(bytes).toString('hex')})`);
      }
      expect(comparable(decode(re)), `seed ${seed}`).toEqual(comparable(m));
    }
    // The mutations must reach the accepting paths too, not only the refusals.
    expect(accepted).toBeGreaterThan(100);
  });
});
