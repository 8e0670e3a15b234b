// Stacked VLAN tags through nvs end to end (dummy ports, NORMAL): an
// 802.1ad-tagged frame's megaflow keys on its real TPID, so the next frame
// of that flow is a datapath hit; and a frame with two tags whose outer
// one NORMAL strips leaves with its inner tag, on a megaflow that pins that
// inner tag (another inner tag gets another megaflow).
import { afterAll, beforeAll, expect, it } from 'vitest';
import { NvsRun } from './e2e-harness.ts';

let nvs: NvsRun;
beforeAll(async () => {
  nvs = new NvsRun();
  await nvs.startDb();
  await nvs.startSwitch();
  const add = await nvs.vsctl(
    'add-br', 'br0', '--', 'set', 'Bridge', 'br0', 'datapath_type=netdev',
    '--', 'add-port', 'br0', 'p1', '--', 'set', 'Interface', 'p1', 'type=dummy', 'ofport_request=1',
    '--', 'add-port', 'br0', 'p2', 'tag=10', '--', 'set', 'Interface', 'p2', 'type=dummy', 'ofport_request=2',
    '--', 'add-port', 'br0', 'p3', '--', 'set', 'Interface', 'p3', 'type=dummy', 'ofport_request=3',
  );
  expect(add.code, add.stderr).toBe(0);
});
afterAll(async () => nvs?.cleanup());

/** An Ethernet frame (hex) from 0a:..:01 to 0a:..:02 with VLAN tags `[tpid, vid]`, outer first, carrying UDP/IPv4. */
function frame(tags: [number, number][]): string {
  const hex = (v: number, bytes: number) => v.toString(16).padStart(2 * bytes, '0');
  const ip = '4500001c0000400040110000' + '0a000001' + '0a000002';
  const udp = '04d2162e00080000';
  return '0a00000000020a0000000001' + tags.map(([tpid, vid]) => hex(tpid, 2) + hex(vid, 2)).join('') + '0800' + ip + udp;
}

async function send(port: string, hex: string): Promise<void> {
  const r = await nvs.appctl('netdev-dummy/receive', port, hex);
  expect(r.code, r.stderr).toBe(0);
  expect((await nvs.appctl('revalidator/wait')).code).toBe(0);
}

async function drain(port: string): Promise<string[]> {
  return (await nvs.appctl('netdev-dummy/drain', port)).stdout.split('\n').filter(Boolean);
}

/** The datapath flows' lines that match `re`. */
async function megaflows(re: RegExp): Promise<string[]> {
  return (await nvs.appctl('dpif/dump-flows', 'br0')).stdout.split('\n').filter((l) => re.test(l));
}

it('an 802.1ad-tagged flow is a datapath hit after its first packet', async () => {
  const f = frame([[0x88a8, 20]]);
  await send('p1', f);
  await send('p1', f);
  expect(await drain('p3')).toHaveLength(2);
  const flows = await megaflows(/eth_type\(0x88a8\),vlan\(vid=20/);
  expect(flows, (await nvs.appctl('dpif/dump-flows', 'br0')).stdout).toHaveLength(1);
  expect(flows[0]).toMatch(/packets:1,/);
});

it('stripping the outer of two tags keeps the inner one, and the megaflow keys on it', async () => {
  await send('p1', frame([[0x88a8, 10], [0x8100, 100]]));
  await send('p1', frame([[0x88a8, 10], [0x8100, 200]]));
  // p2 is an access port of VLAN 10: the outer tag goes, the inner stays.
  const out = await drain('p2');
  expect(out).toEqual([frame([[0x8100, 100]]), frame([[0x8100, 200]])]);
  expect(await megaflows(/eth_type\(0x88a8\),vlan\(vid=10.*encap\(eth_type\(0x8100\),vlan\(vid=(100|200)/)).toHaveLength(2);
});
