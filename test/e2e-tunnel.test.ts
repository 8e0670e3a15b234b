// Tunnel ports (VXLAN, Geneve) across network namespaces standing in for
// hosts joined by a veth underlay. Two set-ups:
// - interop with the Linux kernel as the peer nobody here wrote: a
//   namespace holding kernel `vxlan` devices (VNIs 42 and 43); nvs, in a
//   namespace of its own, has a tunnel port with a fixed remote_ip and key.
//   Ping both ways; VNI 43 is not reachable through the VNI 42 port.
// - OVS 3.1 userspace (native tunnelling) as the Geneve and VXLAN peer: this
//   kernel has no `geneve` module, so the other implementation is OVS's.
// - two nvs instances, each in its own "host" namespace, each with two
//   "VM" namespaces on VNIs 42 and 43, one `remote_ip=flow key=flow` port per
//   host and set_field:…->tun_id / set_field:IP->tun_dst rules: same-VNI VMs
//   ping, other-VNI ones do not; iperf3 TCP with the VMs' checksum offload on;
//   an inner frame larger than the underlay MTU minus 50 gets through (the
//   kernel fragments the outer packet); trace and datapath flows show the
//   tunnel; a bad option is an Interface.error that harms no other port;
//   the same VMs over a Geneve port.
// Needs root (namespaces, veths); fails instead of skipping under
// NVS_REQUIRE_PRIVILEGED=1 (CI).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, NvsRun, run } from './e2e-harness.ts';
import { needsOvs } from './ovs-tools.ts';
import { privilegesMissing } from './privileges.ts';

const skipOvs = needsOvs('test/e2e-tunnel', ['ovs-vsctl', 'ovsdb-tool', 'ovsdb-server', 'ovs-vswitchd']);
const skipWhy = privilegesMissing('test/e2e-tunnel: network namespaces joined by veths');

// Names unique to this run: namespaces and devices are global to the machine.
const tag = String(process.pid % 100000);
const ns = (s: string) => `nvstn${tag}${s}`;
const dev = (s: string) => `tn${tag}${s}`;
const NAMESPACES = ['oh', 'ov', 'nh', 'nv', 'nvg', 'ovg', 'k', 'k43', 'kh', 'kv', 'a', 'b', 'a1', 'a2', 'b1', 'b2'].map(ns);

async function sh(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args, { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}
const ip = (...args: string[]) => sh('ip', args);
const inNs = (n: string, cmd: string[], timeoutMs = 20_000) => run('ip', ['netns', 'exec', n, ...cmd], { timeoutMs });

async function expectPing(from: string, to: string, extra: string[] = []): Promise<void> {
  // The first packets may wait for ARP and flow setup on both sides.
  const r = await inNs(from, ['ping', '-c', '3', '-i', '0.2', '-W', '2', ...extra, to]);
  expect(r.code, `${from} -> ${to}: ${r.stdout}${r.stderr}`).toBe(0);
}

async function expectNoPing(from: string, to: string): Promise<void> {
  const r = await inNs(from, ['ping', '-c', '2', '-i', '0.2', '-W', '1', to]);
  expect(r.code, `${from} -> ${to} must not get through: ${r.stdout}`).not.toBe(0);
}

/** A namespace holding `eth0` (with `addr`), the other end `port` in namespace `host`; checksum offload stays on, TSO off (nvs does not segment). */
async function vm(name: string, host: string, port: string, addr: string): Promise<void> {
  await ip('netns', 'add', name);
  await ip('link', 'add', port, 'netns', host, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', name);
  await ip('-n', host, 'link', 'set', port, 'up');
  await ip('-n', name, 'addr', 'add', addr, 'dev', 'eth0');
  await ip('-n', name, 'link', 'set', 'eth0', 'up');
  await sh('ip', ['netns', 'exec', name, 'ethtool', '-K', 'eth0', 'tso', 'off']);
}

/** Two namespaces joined by a veth underlay, addresses 192.168.`net`.1 and .2. */
async function underlay(a: string, b: string, net: number): Promise<void> {
  for (const n of [a, b]) {
    await ip('netns', 'add', n);
    await ip('-n', n, 'link', 'set', 'lo', 'up');
  }
  await ip('link', 'add', dev(`u${net}`), 'netns', a, 'type', 'veth', 'peer', 'name', dev(`w${net}`), 'netns', b);
  await ip('-n', a, 'addr', 'add', `192.168.${net}.1/24`, 'dev', dev(`u${net}`));
  await ip('-n', b, 'addr', 'add', `192.168.${net}.2/24`, 'dev', dev(`w${net}`));
  await ip('-n', a, 'link', 'set', dev(`u${net}`), 'up');
  await ip('-n', b, 'link', 'set', dev(`w${net}`), 'up');
}

async function startNvs(host: string): Promise<NvsRun> {
  const nvs = new NvsRun();
  await nvs.startDb();
  await nvs.startSwitch([], { dummy: 'plain', wrap: ['ip', 'netns', 'exec', host] });
  return nvs;
}

async function ok(p: Promise<{ code: number; stdout: string; stderr: string }>): Promise<string> {
  const r = await p;
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
}

const runs: NvsRun[] = [];
/** Stops the OVS daemons started here (by their pid files). */
const ovsStops: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const stop of ovsStops) await stop();
  for (const r of runs) await r.cleanup();
  if (!skipWhy) for (const n of NAMESPACES) await run('ip', ['netns', 'del', n]);
});

describe.skipIf(skipOvs || skipWhy !== undefined)('tunnels with OVS userspace as the peer', () => {
  const [OH, OV, NH, NV] = ['oh', 'ov', 'nh', 'nv'].map(ns);
  let nvs: NvsRun;
  let ovsVsctl: (...a: string[]) => Promise<string>;
  beforeAll(async () => {
    for (const n of NAMESPACES) await run('ip', ['netns', 'del', n]);
    await underlay(NH, OH, 84);
    await vm(NV, NH, dev('nv'), '10.84.0.1/24');
    await vm(OV, OH, dev('ov'), '10.84.0.2/24');
    await vm(`${NV}g`, NH, dev('ng'), '10.84.1.1/24');
    await vm(`${OV}g`, OH, dev('og'), '10.84.1.2/24');
    // OVS in its host namespace: native tunnelling needs the underlay device
    // in a bridge whose internal port holds the host address.
    const dir = (await sh('mktemp', ['-d', '/tmp/nvs-tnl-ovs-XXXXXX'])).trim();
    const db = `unix:${dir}/db.sock`;
    await sh('ovsdb-tool', ['create', `${dir}/conf.db`, '/usr/share/openvswitch/vswitch.ovsschema']);
    await sh('ovsdb-server', [`${dir}/conf.db`, `--remote=punix:${dir}/db.sock`, `--pidfile=${dir}/ovsdb.pid`, '--detach', `--log-file=${dir}/ovsdb.log`, `--unixctl=${dir}/ovsdb.ctl`]);
    ovsStops.push(async () => {
      for (const p of ['vswitchd', 'ovsdb']) await run('sh', ['-c', `kill $(cat ${dir}/${p}.pid)`]);
      await run('rm', ['-rf', dir]);
    });
    ovsVsctl = (...a: string[]) => sh('ovs-vsctl', [`--db=${db}`, '--timeout=20', ...a]);
    await ovsVsctl('--no-wait', 'init', '--', 'set', 'Open_vSwitch', '.', 'other_config:pmd-cpu-mask=0x1');
    await sh('ip', ['netns', 'exec', OH, 'ovs-vswitchd', db, `--pidfile=${dir}/vswitchd.pid`, '--detach', `--log-file=${dir}/vswitchd.log`, `--unixctl=${dir}/vswitchd.ctl`]);
    const ul = dev('w84');
    const mac = (await ip('-n', OH, '-br', 'link', 'show', ul)).split(/\s+/)[2];
    await ovsVsctl('add-br', 'br-phy', '--', 'set', 'Bridge', 'br-phy', 'datapath_type=netdev', `other_config:hwaddr=${mac}`, '--', 'add-port', 'br-phy', ul);
    await ip('-n', OH, 'addr', 'flush', 'dev', ul);
    await ip('-n', OH, 'addr', 'add', '192.168.84.2/24', 'dev', 'br-phy');
    await ip('-n', OH, 'link', 'set', 'br-phy', 'up');
    await ovsVsctl(
      'add-br', 'br-int', '--', 'set', 'Bridge', 'br-int', 'datapath_type=netdev',
      '--', 'add-port', 'br-int', dev('ov'), '--', 'add-port', 'br-int', 'gnv0', '--', 'set', 'Interface', 'gnv0', 'type=geneve', 'options:remote_ip=192.168.84.1', 'options:key=7',
      '--', 'add-br', 'br-vx', '--', 'set', 'Bridge', 'br-vx', 'datapath_type=netdev',
      '--', 'add-port', 'br-vx', dev('og'), '--', 'add-port', 'br-vx', 'vx0', '--', 'set', 'Interface', 'vx0', 'type=vxlan', 'options:remote_ip=192.168.84.1', 'options:key=9',
    );
    nvs = await startNvs(NH);
    runs.push(nvs);
    await ok(
      nvs.vsctl(
        'add-br', 'br-int', '--', 'set', 'Bridge', 'br-int', 'datapath_type=netdev',
        '--', 'add-port', 'br-int', dev('nv'), '--', 'add-port', 'br-int', 'gnv0', '--', 'set', 'Interface', 'gnv0', 'type=geneve', 'options:remote_ip=192.168.84.2', 'options:key=7',
        '--', 'add-br', 'br-vx', '--', 'set', 'Bridge', 'br-vx', 'datapath_type=netdev',
        '--', 'add-port', 'br-vx', dev('ng'), '--', 'add-port', 'br-vx', 'vx0', '--', 'set', 'Interface', 'vx0', 'type=vxlan', 'options:remote_ip=192.168.84.2', 'options:key=9',
      ),
    );
  }, 90_000);

  it('pings OVS both ways over Geneve (VNI 7)', async () => {
    await expectPing(NV, '10.84.0.2');
    await expectPing(OV, '10.84.0.1');
  }, 40_000);

  it('pings OVS both ways over VXLAN (VNI 9)', async () => {
    await expectPing(`${NV}g`, '10.84.1.2');
    await expectPing(`${OV}g`, '10.84.1.1');
  }, 40_000);
});

describe.skipIf(skipOvs || skipWhy !== undefined)('tunnels with the Linux kernel as the peer', () => {
  const [K, K43, KH, KV] = ['k', 'k43', 'kh', 'kv'].map(ns);
  let nvs: NvsRun;
  beforeAll(async () => {
    await underlay(KH, K, 81);
    await ip('netns', 'add', K43);
    // The kernel's side: VXLAN VNI 42 and 43, towards nvs's host.
    for (const [name, id, addr] of [
      ['vx42', '42', '10.81.0.2/24'],
      ['vx43', '43', '10.81.0.3/24'],
    ] as const) {
      await ip('-n', K, 'link', 'add', name, 'type', 'vxlan', 'id', id, 'remote', '192.168.81.1', 'local', '192.168.81.2', 'dstport', '4789');
      // VNI 43's device moves to a namespace of its own (its UDP socket stays
      // in K), so that K's stack cannot answer for 10.81.0.3 through vx42.
      const home = id === '43' ? K43 : K;
      if (home !== K) await ip('-n', K, 'link', 'set', name, 'netns', home);
      await ip('-n', home, 'addr', 'add', addr, 'dev', name);
      await ip('-n', home, 'link', 'set', name, 'up');
    }
    await vm(KV, KH, dev('pv'), '10.81.0.1/24');
    nvs = await startNvs(KH);
    runs.push(nvs);
    await ok(
      nvs.vsctl(
        'add-br', 'tbr', '--', 'set', 'Bridge', 'tbr', 'datapath_type=netdev',
        '--', 'add-port', 'tbr', dev('pv'),
        '--', 'add-port', 'tbr', 'vx0', '--', 'set', 'Interface', 'vx0', 'type=vxlan', 'options:remote_ip=192.168.81.2', 'options:key=42',
      ),
    );
  }, 60_000);

  it('opens the tunnel port with no error and says which interface the tunnel leaves by', async () => {
    expect((await nvs.vsctl('get', 'Interface', 'vx0', 'error')).stdout.trim()).toBe('[]');
    expect((await nvs.vsctl('get', 'Interface', 'vx0', 'link_state')).stdout.trim()).toBe('up');
    expect((await nvs.vsctl('get', 'Interface', 'vx0', 'status')).stdout).toContain(`tunnel_egress_iface=${dev('u81')}`);
  });

  it('pings a kernel vxlan device both ways on VNI 42', async () => {
    await expectPing(KV, '10.81.0.2');
    await expectPing(K, '10.81.0.1');
  }, 30_000);

  it('does not reach the kernel device on VNI 43 through the VNI 42 port', async () => {
    await expectNoPing(KV, '10.81.0.3');
    await expectNoPing(K43, '10.81.0.1');
  }, 30_000);

});

describe.skipIf(skipOvs || skipWhy !== undefined)('two nvs hosts, one remote_ip=flow port each', () => {
  const [A, B, A1, A2, B1, B2] = ['a', 'b', 'a1', 'a2', 'b1', 'b2'].map(ns);
  const hosts = [
    { ns: A, me: '192.168.82.1', peer: '192.168.82.2', vms: [[A1, dev('a1'), '10.82.0.1', 42], [A2, dev('a2'), '10.82.0.3', 43]] as const },
    { ns: B, me: '192.168.82.2', peer: '192.168.82.1', vms: [[B1, dev('b1'), '10.82.0.2', 42], [B2, dev('b2'), '10.82.0.4', 43]] as const },
  ];
  const nvsOf = new Map<string, NvsRun>();
  beforeAll(async () => {
    await underlay(A, B, 82);
    for (const h of hosts) {
      for (const [name, port, addr] of h.vms) await vm(name, h.ns, port, `${addr}/24`);
      const nvs = await startNvs(h.ns);
      runs.push(nvs);
      nvsOf.set(h.ns, nvs);
      await ok(
        nvs.vsctl(
          'add-br', 'br-int', '--', 'set', 'Bridge', 'br-int', 'datapath_type=netdev',
          '--', 'add-port', 'br-int', h.vms[0][1], '--', 'add-port', 'br-int', h.vms[1][1],
          '--', 'add-port', 'br-int', 'tun0', '--', 'set', 'Interface', 'tun0', 'type=vxlan',
          'options:remote_ip=flow', 'options:key=flow', `options:local_ip=${h.me}`,
        ),
      );
      const rules = ['priority=0,actions=drop'];
      for (const [, port, , vni] of h.vms) {
        rules.push(`in_port=${port},actions=set_field:${vni}->tun_id,set_field:${h.peer}->tun_dst,output:tun0`);
        rules.push(`in_port=tun0,tun_id=${vni},actions=output:${port}`);
      }
      await ok(nvs.nvs('nvs-ofctl', ['add-flows', 'br-int', '-'], { input: `${rules.join('\n')}\n` }));
    }
  }, 60_000);

  it('pings between VMs on the same VNI, not across VNIs', async () => {
    await expectPing(A1, '10.82.0.2');
    await expectPing(A2, '10.82.0.4');
    await expectPing(B1, '10.82.0.1');
    await expectNoPing(A1, '10.82.0.4');
    await expectNoPing(A2, '10.82.0.2');
  }, 60_000);

  it('carries an inner frame larger than the underlay MTU minus the 50-byte overhead (outer IP fragments)', async () => {
    // 1472 bytes of ICMP data: a 1514-byte inner frame, a 1564-byte outer packet on a 1500-byte underlay.
    await expectPing(A1, '10.82.0.2', ['-s', '1472', '-M', 'do']);
  }, 30_000);

  it('runs iperf3 TCP across with the VMs checksum offload on', async () => {
    const server = inNs(B1, ['timeout', '15', 'iperf3', '-s', '-1', '-p', '5311'], 30_000);
    await new Promise((r) => setTimeout(r, 300));
    const c = await inNs(A1, ['timeout', '10', 'iperf3', '-c', '10.82.0.2', '-p', '5311', '-t', '2', '-J', '--connect-timeout', '2000'], 30_000);
    await server;
    expect(c.code, c.stdout + c.stderr).toBe(0);
    const bps = (JSON.parse(c.stdout) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second;
    expect(bps).toBeGreaterThan(0);
  }, 40_000);

  it('shows the tunnel in the trace and the datapath flows', async () => {
    const nvs = nvsOf.get(A)!;
    const trace = await ok(nvs.appctl('ofproto/trace', 'br-int', `in_port=${dev('a1')},ip,nw_dst=10.82.0.2`));
    expect(trace).toMatch(/Datapath actions: set\(tunnel\(tun_id=0x2a,src=192\.168\.82\.1,dst=192\.168\.82\.2,ttl=64,tp_dst=4789,flags\(key\)\)\),\d+/);
    const back = await ok(nvs.appctl('ofproto/trace', 'br-int', 'in_port=tun0,tun_id=0x2a,tun_src=192.168.82.2,tun_dst=192.168.82.1,ip'));
    expect(back).toContain('Flow: ip,tun_id=0x2a,tun_src=192.168.82.2,tun_dst=192.168.82.1,in_port=');
    await expectPing(B1, '10.82.0.1');
    const flows = await ok(nvs.appctl('dpif/dump-flows', 'br-int'));
    expect(flows).toMatch(/tunnel\(tun_id=0x2a\),in_port\(\d+\)/);
  }, 30_000);

  it('takes tunnel rules from the real ovs-ofctl over OpenFlow and dumps them as ovs-ofctl prints them', async () => {
    const nvs = nvsOf.get(A)!;
    const mgmt = `unix:${nvs.rundir}/br-int.mgmt`;
    const rules = ['priority=5,tun_id=0x5/0xff,tun_src=10.9.0.0/16,actions=set_tunnel:0x7,output:1', 'priority=6,actions=set_tunnel64:0x123456789,set_field:10.1.2.3->tun_dst,output:1'];
    for (const r of rules) await ok(run('ovs-ofctl', ['add-flow', mgmt, r]));
    const dump = await ok(run('ovs-ofctl', ['dump-flows', mgmt, '--no-stats']));
    expect(dump).toContain('priority=5,tun_id=0x5/0xff,tun_src=10.9.0.0/16 actions=set_tunnel:0x7,output:1');
    expect(dump).toContain('priority=6 actions=set_tunnel64:0x123456789,load:0xa010203->NXM_NX_TUN_IPV4_DST[],output:1');
    for (const r of rules) await ok(run('ovs-ofctl', ['--strict', 'del-flows', mgmt, r.replace(/,actions=.*/, '')]));
  }, 30_000);

  it('reports a bad tunnel option in Interface.error and keeps the other ports working', async () => {
    const nvs = nvsOf.get(A)!;
    await ok(nvs.vsctl('add-port', 'br-int', 'bad0', '--', 'set', 'Interface', 'bad0', 'type=vxlan', 'options:key=5'));
    expect((await nvs.vsctl('get', 'Interface', 'bad0', 'error')).stdout).toContain('needs remote_ip');
    await ok(nvs.vsctl('set', 'Interface', 'bad0', 'options:remote_ip=flow', 'options:key=99999999'));
    await eventually(async () => (await nvs.vsctl('get', 'Interface', 'bad0', 'error')).stdout.includes('24-bit'), 'key range error');
    // The same remote_ip/key as tun0 on the same socket is refused too.
    await ok(nvs.vsctl('set', 'Interface', 'bad0', 'options:key=flow', 'options:local_ip=192.168.82.1'));
    await eventually(async () => (await nvs.vsctl('get', 'Interface', 'bad0', 'error')).stdout.includes('already receives'), 'duplicate error');
    await expectPing(A1, '10.82.0.2');
    await ok(nvs.vsctl('del-port', 'br-int', 'bad0'));
  }, 40_000);

  it('carries the same VMs over a Geneve port (remote_ip=flow, key=flow) when rules send them there', async () => {
    for (const h of hosts) {
      const nvs = nvsOf.get(h.ns)!;
      await ok(nvs.vsctl('add-port', 'br-int', 'gnv0', '--', 'set', 'Interface', 'gnv0', 'type=geneve', 'options:remote_ip=flow', 'options:key=flow'));
      const [, port, , vni] = h.vms[0];
      const rules = [
        `priority=40000,in_port=${port},actions=set_field:${vni}->tun_id,set_field:${h.peer}->tun_dst,output:gnv0`,
        `priority=40000,in_port=gnv0,tun_id=${vni},actions=output:${port}`,
      ];
      await ok(nvs.nvs('nvs-ofctl', ['add-flows', 'br-int', '-'], { input: `${rules.join('\n')}\n` }));
    }
    await expectPing(A1, '10.82.0.2');
    // Interface statistics are written back every 5 s.
    const rx = async () => Number(/rx_packets=(\d+)/.exec((await nvsOf.get(B)!.vsctl('get', 'Interface', 'gnv0', 'statistics')).stdout)?.[1] ?? 0);
    await eventually(async () => (await rx()) >= 3, 'packets received on the Geneve port', 300);
    await expectNoPing(A1, '10.82.0.4');
  }, 40_000);
});
