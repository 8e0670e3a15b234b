/**
 * `nvs demo`: shows nvs forwarding. It starts the daemons when they are not
 * running and builds bridge `demo0` through the database, then:
 * - as root (and unless --dummy), with real hosts: two internal ports, which
 *   nvs-vswitchd opens as tap devices, each moved into its own network
 *   namespace with a 10.99.0.x address; one namespace pings the other, and
 *   the MAC table, megaflows and port counters show the traffic crossed nvs;
 * - otherwise, with nothing but dummy ports: loads configs/demo.rules,
 *   injects a few packets (a learning exchange, web traffic copied to a
 *   monitor, blocked ssh) and prints what crossed: port counters, the rules
 *   with their counters, the datapath's megaflows and a trace.
 * Afterwards it removes the bridge (and the namespaces) and stops what it
 * started, unless --keep; the namespaces go even when the demo fails.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runVsctl } from '../vsctl/main.ts';
import { runAppctl, type CliIo } from '../appctl/main.ts';
import { runOfctl } from '../ofctl/main.ts';
import { start, status, stop } from './daemons.ts';

const BRIDGE = 'demo0';
const HOSTS = [
  { port: 'p1', mac: '0a:00:00:00:00:01', ip: '10.0.0.1' },
  { port: 'p2', mac: '0a:00:00:00:00:02', ip: '10.0.0.2' },
  { port: 'p3', mac: '0a:00:00:00:00:03', ip: '10.0.0.3' },
];

/** The namespace demo's hosts: an internal port each, moved into its own namespace. */
const NS_HOSTS = [
  { port: 'demo-h1', netns: 'nvs-demo-h1', ip: '10.99.0.1' },
  { port: 'demo-h2', netns: 'nvs-demo-h2', ip: '10.99.0.2' },
];

/** Thrown when the namespace demo cannot run; the message says what to do. */
export class DemoError extends Error {
  constructor(
    readonly code: 'DEMO_COMMAND_FAILED' | 'DEMO_NO_TAP' | 'DEMO_INTERRUPTED',
    message: string,
  ) {
    super(message);
    this.name = 'DemoError';
  }
}

interface Output {
  code: number;
  stdout: string;
  stderr: string;
}

function sh(cmd: string, args: string[], timeout = 20_000): Promise<Output> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: err && !stderr ? err.message : String(stderr) });
    });
  });
}

/** Why the namespace demo cannot run here, or undefined when it can (root, and `ip netns` works). */
async function whyNoNamespaces(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'not root';
  const r = await sh('ip', ['netns', 'list']);
  return r.code === 0 ? undefined : `ip netns does not work here (${r.stderr.trim()})`;
}

/** configs/demo.rules, next to the bundle (dist/) or the sources. */
function rulesFile(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const p = join(dir, 'configs', 'demo.rules');
    if (existsSync(p)) return p;
    dir = dirname(dir);
  }
  throw new Error('configs/demo.rules not found next to nvs');
}

export async function runDemo(rundir: string, io: CliIo, opts: { keep: boolean; dummy?: boolean }): Promise<number> {
  const env = { ...io.env, NVS_RUNDIR: rundir };
  const say = (s: string) => io.stdout.write(`\n=== ${s}\n`);
  const captured = { stdout: io.stdout, stderr: io.stderr, env };
  const must = async (what: string, code: Promise<number>) => {
    if ((await code) !== 0) throw new Error(`${what} failed`);
  };
  const vsctl = (...args: string[]) =>
    must(`nvs-vsctl ${args.join(' ')}`, runVsctl([`--db=unix:${join(rundir, 'db.sock')}`, ...args], { stdout: (t) => io.stdout.write(t), stderr: (t) => io.stderr.write(t), env }));
  const appctl = (...args: string[]) => must(`nvs-appctl ${args[0]}`, runAppctl(args, captured));
  const ofctl = (...args: string[]) => must(`nvs-ofctl ${args[0]}`, runOfctl(args, captured));
  // Interrupted (Ctrl-C), the demo stops at its next step and cleans up as after a failure (a second signal too waits for that).
  let signal: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    signal ??= sig;
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const tools: DemoTools = { say, vsctl, appctl, ofctl, io, interrupted: () => signal };

  // Everything from here on is inside the try: a failed start must not leave the
  // handlers above installed (they stop Ctrl-C from ending the process) or a daemon running.
  let wasRunning = true;
  let up = false;
  try {
    const noNetns = opts.dummy ? '--dummy' : await whyNoNamespaces();
    wasRunning = (await status(rundir)).every((s) => s.running);
    say(wasRunning ? `nvs is running in ${rundir}` : `starting nvs in ${rundir}`);
    if (!wasRunning) for (const s of await start(rundir)) io.stdout.write(`${s.name}: running (pid ${s.pid ?? '?'})\n`);
    up = true;
    if (noNetns === undefined) await namespaceDemo(tools, opts.keep);
    else {
      if (noNetns !== '--dummy') io.stdout.write(`(${noNetns}: the demo uses dummy ports; as root it pings between two network namespaces)\n`);
      await dummyDemo(tools);
    }
  } finally {
    try {
      if (!opts.keep) {
        // Only with both daemons up: del-br waits for nvs-vswitchd to apply it.
        if (up) await vsctl('--if-exists', 'del-br', BRIDGE).catch(() => undefined);
        if (!wasRunning) {
          say('stopping nvs (use --keep to leave it running)');
          await stop(rundir);
        }
      }
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  }
  return signal ? 130 : 0;
}

interface DemoTools {
  say(s: string): void;
  vsctl(...args: string[]): Promise<void>;
  appctl(...args: string[]): Promise<void>;
  ofctl(...args: string[]): Promise<void>;
  io: CliIo;
  /** The signal that interrupted the demo, if one did. */
  interrupted(): NodeJS.Signals | undefined;
}

/** Bridge demo0 with `ports` of one Interface type (OpenFlow ports 1, 2, …), in one nvs-vsctl call (which waits until nvs-vswitchd applied it); then shows it. */
async function addBridge(vsctl: DemoTools['vsctl'], ports: string[], type: 'internal' | 'dummy'): Promise<void> {
  const adds = ports.flatMap((p, i) => ['--', '--may-exist', 'add-port', BRIDGE, p, '--', 'set', 'Interface', p, `type=${type}`, `ofport_request=${i + 1}`]);
  await vsctl('--', '--may-exist', 'add-br', BRIDGE, '--', 'set', 'Bridge', BRIDGE, 'datapath_type=netdev', ...adds);
  await vsctl('show');
}

/** Two namespaces on tap ports: a real ping crosses nvs. */
async function namespaceDemo({ say, vsctl, appctl, ofctl, io, interrupted }: DemoTools, keep: boolean): Promise<void> {
  const check = () => {
    const sig = interrupted();
    if (sig) throw new DemoError('DEMO_INTERRUPTED', `interrupted by ${sig}`);
  };
  const cmd = async (c: string, ...args: string[]) => {
    check();
    const r = await sh(c, args);
    check();
    if (r.code !== 0) throw new DemoError('DEMO_COMMAND_FAILED', `${c} ${args.join(' ')} failed: ${r.stderr.trim()}`);
    return r;
  };
  const removeNamespaces = async () => {
    for (const h of NS_HOSTS) await sh('ip', ['netns', 'del', h.netns]);
  };
  // Leftovers of an interrupted demo would make `ip netns add` fail.
  await removeNamespaces();
  try {
    say(`bridge ${BRIDGE} with internal ports ${NS_HOSTS.map((h) => h.port).join(', ')} (tap devices: nvs-vswitchd runs as root)`);
    await addBridge(vsctl, NS_HOSTS.map((h) => h.port), 'internal');
    for (const h of NS_HOSTS) {
      if (!existsSync(`/sys/class/net/${h.port}`)) {
        throw new DemoError('DEMO_NO_TAP', `${h.port} is not a kernel device: nvs-vswitchd makes internal ports dummy ports (not root, or --enable-dummy=override; see its log). Run 'nvs demo --dummy' instead.`);
      }
    }
    await appctl('dpif/show');

    say(`network namespaces ${NS_HOSTS.map((h) => h.netns).join(', ')}: each gets one port (ip link set dev PORT netns NS; nvs keeps using it)`);
    for (const h of NS_HOSTS) {
      await cmd('ip', 'netns', 'add', h.netns);
      await cmd('ip', 'link', 'set', 'dev', h.port, 'netns', h.netns);
      await cmd('ip', '-n', h.netns, 'addr', 'add', `${h.ip}/24`, 'dev', h.port);
      await cmd('ip', '-n', h.netns, 'link', 'set', 'dev', h.port, 'up');
      await cmd('ip', '-n', h.netns, 'link', 'set', 'dev', 'lo', 'up');
      io.stdout.write(`${h.netns}: ${h.port} ${h.ip}/24\n`);
    }

    const [h1, h2] = NS_HOSTS;
    say(`ping from ${h1.netns} (${h1.ip}) to ${h2.netns} (${h2.ip})`);
    const ping = await sh('ip', ['netns', 'exec', h1.netns, 'ping', '-c', '3', '-i', '0.3', '-W', '2', h2.ip]);
    io.stdout.write(ping.stdout);
    check();
    if (ping.code !== 0) throw new DemoError('DEMO_COMMAND_FAILED', `ping did not get through: ${ping.stderr.trim() || 'no replies'}`);

    say('MAC table (nvs-appctl fdb/show): NORMAL learned both hosts');
    await appctl('fdb/show', BRIDGE);
    say('megaflows in the datapath (nvs-appctl dpif/dump-flows)');
    await appctl('dpif/dump-flows', BRIDGE);
    say('port counters (nvs-ofctl dump-ports)');
    await ofctl('dump-ports', BRIDGE);
  } finally {
    if (keep) io.stdout.write(`\n(kept: namespaces ${NS_HOSTS.map((h) => h.netns).join(', ')}; remove with 'ip netns del NAME')\n`);
    else await removeNamespaces();
  }
}

/** Dummy ports: packets injected with netdev-dummy/receive, through configs/demo.rules. */
async function dummyDemo({ say, vsctl, appctl, ofctl }: DemoTools): Promise<void> {
  say(`bridge ${BRIDGE} with dummy ports p1-p4 (nvs-vsctl; waits until nvs-vswitchd applied it)`);
  await addBridge(vsctl, ['p1', 'p2', 'p3', 'p4'], 'dummy');

  const rules = rulesFile();
  say(`rules from ${rules}`);
  await ofctl('replace-flows', BRIDGE, rules);

  say('traffic: h1 and h2 talk (NORMAL floods, learns, then unicasts), h1 fetches a page from h3, h2 tries ssh to h1');
  const [h1, h2, h3] = HOSTS;
  const ip = (a: (typeof HOSTS)[number], b: (typeof HOSTS)[number], l4: string) =>
    `in_port=${a.port},dl_src=${a.mac},dl_dst=${b.mac},${l4},nw_src=${a.ip},nw_dst=${b.ip}`;
  // Each packet waits for its upcall and a revalidation round, so that what
  // NORMAL learned from one packet decides the next (as hosts pausing between
  // packets would see) and the counters below are the same on every run.
  const receive = async (port: string, flow: string) => {
    await appctl('netdev-dummy/receive', port, flow);
    await appctl('revalidator/wait');
  };
  await receive(h1.port, ip(h1, h2, 'udp,tp_src=5000,tp_dst=6000'));
  await receive(h2.port, ip(h2, h1, 'udp,tp_src=6000,tp_dst=5000'));
  await receive(h1.port, ip(h1, h2, 'udp,tp_src=5000,tp_dst=6000'));
  for (let i = 0; i < 3; i++) await receive(h1.port, ip(h1, h3, `tcp,tp_src=${40000 + i},tp_dst=80`));
  await receive(h2.port, ip(h2, h1, 'tcp,tp_src=40100,tp_dst=22'));

  say('port counters (nvs-ofctl dump-ports): p4, the monitor, got the copies of the web traffic (and the first flooded packet)');
  await ofctl('dump-ports', BRIDGE);
  say('rules with their counters (nvs-ofctl dump-flows)');
  await ofctl('dump-flows', BRIDGE);
  say('MAC table (nvs-appctl fdb/show)');
  await appctl('fdb/show', BRIDGE);
  say('megaflows in the datapath (nvs-appctl dpif/dump-flows)');
  await appctl('dpif/dump-flows', BRIDGE);
  say('why ssh from h2 is dropped (nvs-appctl ofproto/trace)');
  await appctl('ofproto/trace', BRIDGE, ip(h2, h1, 'tcp,tp_src=40100,tp_dst=22'));
}
