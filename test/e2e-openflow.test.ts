// The real ovs-ofctl over OpenFlow against nvs-vswitchd's `<bridge>.mgmt`
// and against a real ovs-vswitchd, with the same rules: each command's
// output must read alike. Normalised, and why that is legitimate: times
// (`duration=`, `idle_age=`, `hard_age=`, which is printed only when it
// differs from the duration) are each switch's own clock; MAC
// addresses and the datapath id derive from each switch's own port MACs;
// `dump-ports` blocks come in each switch's own port order (OVS's is hash
// order), so they are sorted, and its `drop=` counts: nvs's dummy ports
// count drops, OVS's report them unsupported (`?`); OVS's dummy ports add
// "CUSTOM Statistics" (1.4+) that nvs's ports do not keep; flow dumps come in
// each switch's own order (OVS's is hash order), so their lines are sorted.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ovsPorts, type RealOvs, startOvs } from '../packages/ofproto/test/helpers.ts';
import { decode, encode, type OfBody, type OfMessage } from '../packages/openflow/src/index.ts';
import { parseFlows } from '../packages/ofproto/src/index.ts';
import { buildPacket } from '../packages/vswitchd/src/packet.ts';
import { NvsRun, run } from './e2e-harness.ts';
import { needsOvs } from './ovs-tools.ts';

const skipOvs = needsOvs('test/e2e-openflow', ['ovsdb-tool', 'ovsdb-server', 'ovs-vsctl', 'ovs-vswitchd', 'ovs-ofctl']);
const PORTS = [{ n: 1 }, { n: 2 }, { n: 3 }];

const RULES = [
  'priority=5,in_port=1,ip,nw_src=10.0.0.0/8,actions=output:2',
  'table=1,reg0=5,tcp,tp_dst=80,actions=resubmit(,2),load:0x5->NXM_NX_REG1[0..7],mod_dl_src:00:11:22:33:44:55,note:aabb',
  'cookie=0x12,priority=100,arp,arp_tpa=10.0.0.1,actions=mod_vlan_vid:10,output:3',
  'priority=7,udp,udp_src=53,actions=mod_tp_dst:99,mod_nw_tos:16,dec_ttl,CONTROLLER:64',
  'table=2,priority=9,vlan_tci=0x1000/0x1000,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,actions=pop_vlan,move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],output:1',
  'table=3,metadata=0x10/0xff,ipv6,ipv6_src=2001:db8::/32,actions=set_field:0xa010203->reg3,resubmit(4,5)',
  'idle_timeout=30,hard_timeout=60,icmp,icmp_type=8,actions=drop',
];

/** `dump-ports` output with its two-line port blocks in port-number order. */
function sortPortBlocks(text: string): string {
  const lines = text.split('\n');
  const blocks: string[] = [];
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (/^ {2}port /.test(lines[i])) blocks.push(`${lines[i]}\n${lines[++i]}`);
    else out.push(lines[i]);
  }
  const key = (b: string) => (b.includes('port LOCAL') ? 0xfffe : Number(/port +(\d+)/.exec(b)![1]));
  blocks.sort((a, b) => key(a) - key(b));
  return [out[0], ...blocks, ...out.slice(1)].join('\n');
}

function sortFlowLines(text: string): string {
  if (!/^(NXST|OFPST)_FLOW/.test(text)) return text;
  const [head, ...rest] = text.split('\n');
  return [head, ...rest.filter(Boolean).sort(), ''].join('\n');
}

function normalise(text: string): string {
  const plain = sortPortBlocks(text)
    .replace(/drop=[0-9?]+/g, 'drop=X')
    .replace(/\n +CUSTOM Statistics\n( {20,}.*\n)*/g, '\n')
    .replace(/duration=?[0-9.]+s/g, 'duration=Xs')
    .replace(/idle_age=\d+/g, 'idle_age=X')
    // hard_age is printed only when it differs from the duration, which depends on each switch's clock.
    .replace(/ hard_age=\d+,/g, '')
    .replace(/dpid:[0-9a-f]{16}/g, 'dpid:X')
    .replace(/addr:[0-9a-f:]{17}/g, 'addr:X');
  return sortFlowLines(plain);
}

/** A raw OpenFlow 1.3 peer (our codec) on a switch's management socket: asks and waits for the answer with the same xid. */
class OfPeer {
  private buf = Buffer.alloc(0);
  private readonly waiting = new Map<number, (m: OfMessage) => void>();
  /** Messages the switch sent on its own (xid 0), by type. */
  readonly unsolicited: string[] = [];
  private xid = 100;
  private constructor(private readonly sock: Socket) {
    sock.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      while (this.buf.length >= 8 && this.buf.length >= this.buf.readUInt16BE(2)) {
        const len = this.buf.readUInt16BE(2);
        const m = decode(new Uint8Array(this.buf.subarray(0, len)));
        this.buf = this.buf.subarray(len);
        if (m.xid === 0) this.unsolicited.push(m.type === 'role_status' ? `role_status ${m.role} ${m.reason} ${m.generationId}` : m.type);
        this.waiting.get(m.xid)?.(m);
      }
    });
  }
  static async open(path: string): Promise<OfPeer> {
    const sock = connect(path);
    await new Promise((r) => sock.once('connect', r));
    sock.write(encode({ type: 'hello', versions: [4], version: 4, xid: 1 }));
    return new OfPeer(sock);
  }
  /** Sends a message and resolves with its reply (or error); `barrier`: a message with no reply, followed by a barrier. */
  ask(body: OfBody, barrier = false): Promise<OfMessage> {
    const xid = this.xid++;
    const p = new Promise<OfMessage>((resolve) => {
      this.waiting.set(xid, resolve);
      if (barrier) this.waiting.set(xid + 1000, resolve);
    });
    this.sock.write(encode({ ...body, version: 4, xid } as OfMessage));
    if (barrier) this.sock.write(encode({ type: 'barrier_request', version: 4, xid: xid + 1000 }));
    return p;
  }
  close(): void {
    this.sock.destroy();
  }
}

/** Each protocol ovs-ofctl is told to speak (`-O`), run against a fresh pair of switches. */
const PROTOCOLS = ['OpenFlow10', 'OpenFlow13', 'OpenFlow14', 'OpenFlow15'];

describe.skipIf(skipOvs).each(PROTOCOLS)('the real ovs-ofctl -O %s against nvs over OpenFlow, compared with a real ovs-vswitchd', (proto) => {
  let ovs: RealOvs;
  let nvs: NvsRun;
  let dir: string;
  let targets: { name: string; mgmt: string }[];

  beforeAll(async () => {
    ovs = startOvs(['fail_mode=secure', ...ovsPorts(PORTS)]);
    nvs = new NvsRun();
    await nvs.startDb();
    await nvs.startSwitch();
    const add = await nvs.vsctl('add-br', 'br0', '--', 'set', 'bridge', 'br0', 'fail_mode=secure', ...ovsPorts(PORTS));
    expect(add.code, add.stderr).toBe(0);
    dir = mkdtempSync(join(tmpdir(), 'nvs-e2e-openflow-'));
    targets = [
      { name: 'ovs', mgmt: ovs.mgmt },
      { name: 'nvs', mgmt: `unix:${join(nvs.rundir, 'br0.mgmt')}` },
    ];
  }, 60_000);
  afterAll(async () => {
    ovs?.stop();
    await nvs?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Runs `ovs-ofctl <command> <bridge> ...args` against both switches; returns both results. */
  async function both(...words: string[]): Promise<{ ovs: string; nvs: string }> {
    const options = words.filter((w, i) => w.startsWith('--') && words.slice(0, i).every((x) => x.startsWith('--')));
    const [command, ...args] = words.slice(options.length);
    const out: Record<string, string> = {};
    for (const t of targets) {
      const r = await run('ovs-ofctl', ['-O', proto, ...options, command, t.mgmt, ...args], { timeoutMs: 10_000 });
      out[t.name] = `${r.code} ${normalise(r.stdout)}${normalise(r.stderr).replace(/unix:\S+/g, 'BR')}`;
    }
    return { ovs: out.ovs, nvs: out.nvs };
  }

  async function same(...words: string[]): Promise<string> {
    const r = await both(...words);
    expect(r.nvs).toBe(r.ovs);
    return r.nvs;
  }

  it('add-flow and add-flows, then dump-flows and dump-aggregate', async () => {
    await same('add-flow', RULES[0]);
    const file = join(dir, 'rules.txt');
    writeFileSync(file, `${RULES.slice(1).join('\n')}\n`);
    expect(await same('add-flows', file)).toBe('0 ');
    const dump = await same('dump-flows');
    expect(dump).toContain('nw_src=10.0.0.0/8');
    expect(dump.split('\n').filter((l) => l.includes('actions=')).length).toBe(RULES.length);
    await same('dump-flows', 'table=1');
    await same('dump-flows', 'ip');
    await same('dump-aggregate');
    await same('dump-aggregate', 'table=0');
    // Selection by cookie: NXM_NX_COOKIE_W in 1.0's NXM requests, the cookie fields in 1.1+.
    await same('dump-flows', 'cookie=0x12/-1');
    await same('dump-aggregate', 'cookie=0x10/0xf0');
  });

  it('mod-flows, del-flows (plain and --strict, with out_port), replace-flows and diff-flows', async () => {
    await same('mod-flows', 'ip,nw_src=10.0.0.0/8,actions=output:3');
    await same('mod-flows', '--strict', 'priority=7,udp,udp_src=53,actions=output:1');
    await same('dump-flows');
    await same('mod-flows', 'cookie=0x12/-1,arp,actions=output:2');
    await same('dump-flows', 'arp');
    // Without a cookie mask: 1.0 gives the rules the flow mod's cookie (0), 1.1+ keeps theirs;
    // selecting no rule, 1.0 adds it, 1.3+ does nothing.
    await same('mod-flows', 'arp,actions=output:1');
    await same('dump-flows', 'arp');
    await same('mod-flows', 'table=9,udp,actions=output:1');
    await same('dump-flows', 'table=9');
    await same('del-flows', 'table=0,icmp');
    await same('del-flows', '--strict', 'priority=5,in_port=1,ip,nw_src=10.0.0.0/8');
    await same('del-flows', 'out_port=1');
    await same('dump-flows');
    const file = join(dir, 'replace.txt');
    writeFileSync(file, 'priority=3,tcp,actions=output:2\ntable=4,priority=1,actions=resubmit(,5)\n');
    await same('diff-flows', file);
    await same('replace-flows', file);
    await same('dump-flows');
    await same('diff-flows', file);
    await same('del-flows');
    await same('dump-flows');
  });

  it('show, dump-ports, dump-ports-desc, dump-tables', async () => {
    await same('add-flow', 'table=2,actions=drop');
    await same('show');
    await same('dump-ports-desc');
    await same('dump-ports');
    await same('dump-ports', '2');
    await same('dump-tables');
  });

  if (proto !== 'OpenFlow10') it('add-flows and replace-flows --bundle: applied as one (OpenFlow 1.4 bundles, or the ONF 1.3 extension)', async () => {
    const file = join(dir, 'bundle.txt');
    writeFileSync(file, 'table=5,priority=1,ip,actions=output:1\ntable=5,priority=2,tcp,actions=output:2\ntable=6,cookie=0x7,actions=drop\n');
    expect(await same('--bundle', 'add-flows', file)).toBe('0 ');
    await same('dump-flows', 'table=5');
    await same('dump-flows', 'cookie=0x7/-1');
    // A bundle with a refused flow mod (goto_table backwards) changes nothing.
    writeFileSync(file, 'table=7,actions=drop\ntable=8,actions=goto_table:3\n');
    await same('--bundle', 'add-flows', file);
    await same('dump-flows', 'table=7');
    writeFileSync(file, 'table=5,priority=3,actions=drop\n');
    await same('--bundle', 'replace-flows', file);
    await same('dump-flows');
    await same('del-flows');
  });

  it('packet-out through the pipeline reaches a controller rule; monitor prints the packet-ins and a flow-removed alike', async () => {
    await same('add-flow', 'cookie=0x5,priority=100,in_port=1,udp,actions=controller:200');
    await same('add-flow', 'table=3,priority=1,actions=CONTROLLER:64');
    const monitors = targets.map((t) => {
      const child = spawn('ovs-ofctl', ['-O', proto, 'monitor', t.mgmt, '65534'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d) => (out += String(d)));
      child.stderr.on('data', (d) => (out += String(d)));
      return { name: t.name, child, out: () => out };
    });
    try {
      await new Promise((r) => setTimeout(r, 800));
      const udp = Buffer.from(buildPacket({ eth_src: 0x0a0000000001, eth_dst: 0x0a0000000002, eth_type: 0x0800, nw_src: 0x0a000001, nw_dst: 0x0a000002, nw_proto: 17, nw_ttl: 64, tp_src: 1000, tp_dst: 2000 })).toString('hex');
      // Through table 0 (the rule sends it up with its cookie), then straight to a controller from the packet-out's own actions.
      expect(await same('packet-out', '1', 'table', udp)).toBe('0 ');
      expect(await same('packet-out', '2', 'resubmit(,3)', udp)).toBe('0 ');
      // A rule that asked to be reported when it goes (send_flow_rem): deleting it sends a flow-removed.
      await same('add-flow', 'send_flow_rem,cookie=0x9,table=4,priority=9,ip,nw_src=10.1.0.0/16,actions=drop');
      await same('add-flow', 'table=4,priority=8,ip,actions=drop');
      await same('del-flows', 'table=4');
      await new Promise((r) => setTimeout(r, 800));
    } finally {
      for (const m of monitors) m.child.kill();
    }
    const printed = Object.fromEntries(monitors.map((m) => [m.name, normalise(m.out())]));
    expect(printed.nvs).toContain('in_port=1');
    expect(printed.nvs).toMatch(/FLOW_REMOVED.*reason=delete/);
    expect(printed.nvs).toBe(printed.ovs);
    await same('del-flows');
  });

  if (proto === 'OpenFlow13') it('roles: a new master makes the old one a slave, which may not change the tables; a stale generation id is refused (as OVS does)', async () => {
    const results: Record<string, string[]> = {};
    for (const t of targets) {
      const a = await OfPeer.open(t.mgmt.replace(/^unix:/, ''));
      const b = await OfPeer.open(t.mgmt.replace(/^unix:/, ''));
      try {
        const seen: string[] = [];
        const show = (m: OfMessage) => (m.type === 'role_reply' ? `${m.role}:${m.generationId}` : m.type === 'error' ? `error ${m.errType}/${m.code}` : m.type);
        seen.push(show(await a.ask({ type: 'role_request', nicira: false, role: 'master', generationId: 1n })));
        seen.push(show(await b.ask({ type: 'role_request', nicira: false, role: 'master', generationId: 2n })));
        seen.push(show(await a.ask({ type: 'role_request', nicira: false, role: 'nochange', generationId: 0n })));
        const fm = parseFlows('table=9,actions=drop', { file: 'role' })[0];
        seen.push(show(await a.ask({ type: 'flow_mod', format: 'oxm', flowMod: fm, bufferId: 0xffffffff, outGroup: null }, true)));
        seen.push(show(await a.ask({ type: 'role_request', nicira: false, role: 'slave', generationId: 1n })));
        seen.push(show(await b.ask({ type: 'role_request', nicira: false, role: 'equal', generationId: 0n })));
        results[t.name] = [...seen, ...a.unsolicited.filter((u) => u.startsWith('role_status'))];
      } finally {
        a.close();
        b.close();
      }
    }
    expect(results.nvs).toEqual(['master:1', 'master:2', 'slave:2', 'error 1/10', 'error 11/0', 'equal:2', 'role_status slave 0 2']);
    expect(results.nvs).toEqual(results.ovs);
  });

  it('a refused flow-mod is an OpenFlow error printed alike, and the switch keeps serving', async () => {
    await same('add-flow', 'priority=50,ip,actions=drop');
    // check_overlap against a rule of the same priority that can match the same packets: the switch refuses (OFPFMFC_OVERLAP).
    const refused = await same('add-flow', 'check_overlap,priority=50,ip,nw_src=10.0.0.1,actions=output:1');
    expect(refused).toContain('OFPFMFC_OVERLAP');
    await same('dump-flows');
  });

  /** Sends raw bytes after a HELLO on a fresh connection; returns what came back and whether the switch closed it. */
  async function raw(hello: number[], ...messages: number[][]): Promise<{ replies: Buffer[]; closed: boolean }> {
    const sock = connect(join(nvs.rundir, 'br0.mgmt'));
    const chunks: Buffer[] = [];
    let closed = false;
    sock.on('data', (d) => chunks.push(d));
    sock.on('close', () => (closed = true));
    sock.write(Buffer.from(hello));
    for (const m of messages) sock.write(Buffer.from(m));
    // A barrier after everything: its reply says every earlier message was handled.
    sock.write(Buffer.from([1, 18, 0, 8, 0, 0, 0, 99]));
    for (let i = 0; i < 100 && !closed && !Buffer.concat(chunks).includes(Buffer.from([1, 19, 0, 8, 0, 0, 0, 99])); i++) await new Promise((r) => setTimeout(r, 20));
    sock.destroy();
    const all = Buffer.concat(chunks);
    const replies: Buffer[] = [];
    for (let at = 0; at + 8 <= all.length; at += all.readUInt16BE(at + 2)) replies.push(all.subarray(at, at + all.readUInt16BE(at + 2)));
    return { replies, closed };
  }
  const HELLO10 = [1, 0, 0, 8, 0, 0, 0, 1];
  const errorOf = (m: Buffer) => (m[1] === 1 ? [m.readUInt16BE(8), m.readUInt16BE(10)] : null);

  if (proto === 'OpenFlow10') it('bad input gets an OpenFlow error or a closed connection, and the bridge keeps serving', async () => {
    // Unknown message type: OFPET_BAD_REQUEST / OFPBRC_BAD_TYPE, and the connection carries on (the barrier is answered).
    const unknown = await raw(HELLO10, [1, 99, 0, 8, 0, 0, 0, 2]);
    expect(unknown.replies.map(errorOf).filter(Boolean)).toEqual([[1, 1]]);
    expect(unknown.replies.at(-1)![1]).toBe(19);
    // An NXT_FLOW_MOD whose match length (200) overruns the message: OFPBRC_BAD_LEN. After the Nicira header:
    // cookie(8) command(2) idle, hard, priority(6) buffer(4) out_port(2) flags(2), then match_len and 6 pad bytes.
    const nxt = [1, 4, 0, 48, 0, 0, 0, 3, 0, 0, 0x23, 0x20, 0, 0, 0, 13, ...Array(24).fill(0), 0, 200, ...Array(6).fill(0)];
    const overrun = await raw(HELLO10, nxt);
    expect(overrun.replies.map(errorOf).filter(Boolean)).toEqual([[1, 6]]);
    // A header whose length is below the header's own size cannot be framed: the switch closes the connection.
    const short = await raw(HELLO10, [1, 2, 0, 4, 0, 0, 0, 4]);
    expect(short.closed).toBe(true);
    // A peer that offers only OpenFlow 1.1 (which nvs does not speak): OFPET_HELLO_FAILED, then closed.
    const of11 = await raw([2, 0, 0, 16, 0, 0, 0, 1, 0, 1, 0, 8, 0, 0, 0, 0x04]);
    expect(of11.replies.map(errorOf).filter(Boolean)).toEqual([[0, 0]]);
    expect(of11.closed).toBe(true);
    // Still serving both protocols on the same socket.
    await same('dump-flows');
    const json = await nvs.ofctl('dump-flows', 'br0');
    expect(json.code, json.stderr).toBe(0);
    expect(json.stdout).toContain('NXST_FLOW reply');
  });
});
