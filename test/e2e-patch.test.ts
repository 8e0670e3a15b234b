// Patch ports end to end: two bridges of one nvs-vswitchd joined by a patch
// pair (as OpenStack joins br-int to br-tun), built with the real ovs-vsctl.
// Packets injected on br0's port come out of br1's and back, each through
// one megaflow (the patch crossing is translated in one pass: the datapath
// sends from p1 straight to p2, with no second trip); the trace shows the
// crossing; a peer that is missing or does not point back is reported in
// Interface.error. The same bridges, rules and traces on a real
// ovs-vswitchd (dummy datapath, which numbers ports as nvs's dummy bridges
// do) give the same `Megaflow:` and `Datapath actions:` lines.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RealOvs, startOvs } from '../packages/ofproto/test/helpers.ts';
import { eventually, NvsRun } from './e2e-harness.ts';
import { needsOvs } from './ovs-tools.ts';

const skipOvs = needsOvs('test/e2e-patch', ['ovsdb-tool', 'ovsdb-server', 'ovs-vsctl', 'ovs-vswitchd', 'ovs-appctl', 'ovs-ofctl']);

/** br0: p1 and patch0 (to br1); br1: patch1 (to br0) and p2. Both dummy datapaths, secure (no NORMAL rule). */
const BRIDGES = [
  '--', 'set', 'bridge', 'br0', 'datapath_type=dummy', 'fail_mode=secure',
  '--', 'add-port', 'br0', 'p1', '--', 'set', 'Interface', 'p1', 'type=dummy', 'ofport_request=1',
  '--', 'add-port', 'br0', 'patch0', '--', 'set', 'Interface', 'patch0', 'type=patch', 'options:peer=patch1', 'ofport_request=10',
  '--', 'add-br', 'br1', '--', 'set', 'bridge', 'br1', 'datapath_type=dummy', 'fail_mode=secure',
  '--', 'add-port', 'br1', 'patch1', '--', 'set', 'Interface', 'patch1', 'type=patch', 'options:peer=patch0', 'ofport_request=20',
  '--', 'add-port', 'br1', 'p2', '--', 'set', 'Interface', 'p2', 'type=dummy', 'ofport_request=2',
];

/** br0 tags what comes from p1 and sends it over; br1 matches the tag, strips it and outputs; and the way back. */
const RULES = {
  br0: 'in_port=1,icmp,actions=mod_vlan_vid:5,output:10\nin_port=10,actions=output:1\n',
  br1: 'in_port=20,dl_vlan=5,icmp,actions=strip_vlan,dec_ttl,output:2\nin_port=2,actions=output:20\n',
};

const PING = 'in_port=1,icmp,dl_src=50:54:00:00:00:01,dl_dst=50:54:00:00:00:02,nw_src=10.0.0.1,nw_dst=10.0.0.2,nw_ttl=64,icmp_type=8';
const PONG = 'in_port=2,icmp,dl_src=50:54:00:00:00:02,dl_dst=50:54:00:00:00:01,nw_src=10.0.0.2,nw_dst=10.0.0.1,nw_ttl=64,icmp_type=0';

/** The two lines scripts read from a trace. */
function lastLines(trace: string): string[] {
  return trace.trim().split('\n').filter((l) => l.startsWith('Megaflow:') || l.startsWith('Datapath actions:'));
}

describe.skipIf(skipOvs)('patch ports between two bridges', () => {
  let nvs: NvsRun;
  let ovs: RealOvs | undefined;

  beforeAll(async () => {
    nvs = new NvsRun();
    await nvs.startDb();
    await nvs.startSwitch();
    const add = await nvs.vsctl('add-br', 'br0', ...BRIDGES);
    expect(add.code, add.stderr).toBe(0);
    for (const [br, text] of Object.entries(RULES)) {
      const file = join(nvs.rundir, `${br}.flows`);
      writeFileSync(file, text);
      const r = await nvs.ofctl('add-flows', br, file);
      expect(r.code, r.stderr).toBe(0);
    }
  });
  afterAll(async () => {
    ovs?.stop();
    await nvs?.cleanup();
  });

  it('has no datapath port for a patch port, and no error for a joined pair', async () => {
    const show = (await nvs.appctl('dpif/show')).stdout;
    expect(show).toContain('    patch0 10/none: (patch: peer=patch1)\n');
    expect(show).toContain('    patch1 20/none: (patch: peer=patch0)\n');
    for (const p of ['patch0', 'patch1']) {
      expect((await nvs.vsctl('get', 'Interface', p, 'error')).stdout.trim()).toBe('[]');
      expect((await nvs.vsctl('get', 'Interface', p, 'ofport')).stdout.trim()).toBe(p === 'patch0' ? '10' : '20');
    }
  });

  it('forwards a ping across both bridges and its reply back, each in one megaflow', async () => {
    const send = await nvs.appctl('netdev-dummy/receive', 'p1', PING.replace('in_port=1,', ''));
    expect(send.code, send.stderr).toBe(0);
    const out = await eventually(async () => {
      const d = (await nvs.appctl('netdev-dummy/drain', 'p2')).stdout.trim();
      return d || undefined;
    }, 'the ping on p2');
    // Untagged again (br1 stripped br0's tag), TTL decremented once by br1: one packet.
    expect(out.split('\n')).toHaveLength(1);
    expect(out.slice(24, 28)).toBe('0800');
    expect(out.slice(44, 46)).toBe('3f');
    const reply = await nvs.appctl('netdev-dummy/receive', 'p2', PONG.replace('in_port=2,', ''));
    expect(reply.code, reply.stderr).toBe(0);
    await eventually(async () => ((await nvs.appctl('netdev-dummy/drain', 'p1')).stdout.trim() ? true : undefined), 'the reply on p1');
    await nvs.appctl('revalidator/wait');
    const flows = (await nvs.appctl('dpctl/dump-flows')).stdout.trim().split('\n').filter((l) => l.includes('in_port('));
    // One megaflow per direction, entering at p1 (1) or p2 (2) and leaving from the far port directly.
    expect(flows).toHaveLength(2);
    expect(flows.find((l) => l.includes('in_port(1)'))).toMatch(/actions:set\(ipv4\(ttl=63\)\),2$/);
    expect(flows.find((l) => l.includes('in_port(2)'))).toMatch(/actions:1$/);
  });

  it('shows the crossing in ofproto/trace', async () => {
    const t = (await nvs.ovsAppctl('ofproto/trace', 'br0', PING)).stdout;
    expect(t).toContain('    bridge("br1")');
    expect(t.trim().split('\n').at(-1)).toBe('Datapath actions: set(ipv4(ttl=63)),2');
  });

  it('traces a packet written in datapath flow syntax by datapath name, with OVS\'s errors', async () => {
    const odp = 'in_port(1),eth(src=50:54:00:00:00:01,dst=50:54:00:00:00:02),eth_type(0x0800),ipv4(src=10.0.0.1,dst=10.0.0.2,proto=1,tos=0,ttl=64,frag=no),icmp(type=8,code=0)';
    const t = await nvs.ovsAppctl('ofproto/trace', 'ovs-dummy', odp);
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toContain('bridge("br0")');
    expect(t.stdout.trim().split('\n').at(-1)).toBe('Datapath actions: set(ipv4(ttl=63)),2');
    const wrong = await nvs.ovsAppctl('ofproto/trace', 'ovs-system', odp);
    expect([wrong.code, wrong.stderr.split('\n')[0]]).toEqual([2, 'Cannot find the datapath']);
    const noPort = await nvs.ovsAppctl('ofproto/trace', 'ovs-dummy', 'in_port(42)');
    expect(noPort.stderr.split('\n')[0]).toBe('no OpenFlow port for datapath port 42');
    const brFlow = await nvs.ovsAppctl('ofproto/trace', 'ovs-dummy', 'in_port=1');
    expect(brFlow.stderr.split('\n')[0]).toBe('ovs-dummy: unknown bridge');
  });

  it('reports a missing peer and a peer that does not point back in Interface.error', async () => {
    const r = await nvs.vsctl(
      'add-port', 'br1', 'patch2', '--', 'set', 'Interface', 'patch2', 'type=patch', 'options:peer=nowhere',
      '--', 'add-port', 'br1', 'patch3', '--', 'set', 'Interface', 'patch3', 'type=patch', 'options:peer=patch0',
      '--', 'add-port', 'br1', 'patch4', '--', 'set', 'Interface', 'patch4', 'type=patch',
    );
    expect(r.code, r.stderr).toBe(0);
    const error = async (p: string) => (await nvs.vsctl('get', 'Interface', p, 'error')).stdout.trim();
    expect(await error('patch2')).toBe('"patch2: patch peer nowhere does not exist"');
    expect(await error('patch3')).toBe('"patch3: patch peer patch0 is not a patch interface whose peer is patch3"');
    expect(await error('patch4')).toBe(`"patch4: patch type requires valid 'peer' argument"`);
    // The good pair is untouched.
    expect(await error('patch0')).toBe('[]');
    const t = (await nvs.ovsAppctl('ofproto/trace', 'br0', PING)).stdout;
    expect(t.trim().split('\n').at(-1)).toBe('Datapath actions: set(ipv4(ttl=63)),2');
  });

  it('nvs-ofctl takes OpenFlow 1.1+ rules (push_vlan, write_actions, 32-bit ports) only with -O, as ovs-ofctl', async () => {
    const rule = 'table=5,in_port=4294967294,actions=push_vlan:0x8100,write_actions(output:2)';
    const without = await nvs.ofctl('add-flow', 'br1', rule);
    expect(without.code).toBe(1);
    expect(without.stderr).toMatch(/needs OpenFlow 1.1 or later/);
    const withO = await nvs.ofctl('-O', 'OpenFlow13', 'add-flow', 'br1', rule);
    expect(withO.code, withO.stderr).toBe(0);
    expect((await nvs.ofctl('dump-flows', 'br1', 'table=5')).stdout).toContain('in_port=LOCAL actions=push_vlan:0x8100,write_actions(output:2)');
  });

  it('gives the Megaflow and Datapath actions lines of the real ovs-vswitchd', async () => {
    ovs = startOvs(BRIDGES);
    for (const [br, text] of Object.entries(RULES)) {
      const file = join(nvs.rundir, `ovs-${br}.flows`);
      writeFileSync(file, text);
      ovs.run('ovs-ofctl', ['add-flows', ovs.mgmt.replace('br0.mgmt', `${br}.mgmt`), file]);
    }
    for (const [br, flow] of [['br0', PING], ['br1', PONG]]) {
      const theirs = ovs.run('ovs-appctl', ['-t', ovs.ctl, 'ofproto/trace', br, flow]);
      const ours = (await nvs.ovsAppctl('ofproto/trace', br, flow)).stdout;
      expect(lastLines(ours), `${br}: ${flow}\nours:\n${ours}\ntheirs:\n${theirs}`).toEqual(lastLines(theirs));
    }
  });
});
