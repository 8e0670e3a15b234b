/**
 * `nvs demo`: shows nvs forwarding, with nothing but dummy ports (no root
 * needed). It starts the daemons when they are not running, builds bridge
 * `demo0` with four ports through the database, loads configs/demo.rules,
 * injects a few packets (a learning exchange, web traffic copied to a
 * monitor, blocked ssh) and prints what crossed: port counters, the rules
 * with their counters, the datapath's megaflows and a trace. Afterwards it
 * removes the bridge and stops what it started, unless --keep.
 */
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

export async function runDemo(rundir: string, io: CliIo, opts: { keep: boolean }): Promise<number> {
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

  const wasRunning = (await status(rundir)).every((s) => s.running);
  say(wasRunning ? `nvs is running in ${rundir}` : `starting nvs in ${rundir}`);
  if (!wasRunning) for (const s of await start(rundir)) io.stdout.write(`${s.name}: running (pid ${s.pid ?? '?'})\n`);
  try {
    say(`bridge ${BRIDGE} with dummy ports p1-p4 (nvs-vsctl; waits until nvs-vswitchd applied it)`);
    const ports = ['p1', 'p2', 'p3', 'p4'].flatMap((p, i) => ['--', '--may-exist', 'add-port', BRIDGE, p, '--', 'set', 'Interface', p, 'type=dummy', `ofport_request=${i + 1}`]);
    await vsctl('--', '--may-exist', 'add-br', BRIDGE, '--', 'set', 'Bridge', BRIDGE, 'datapath_type=netdev', ...ports);
    await vsctl('show');

    say(`rules from ${rulesFile()}`);
    await ofctl('replace-flows', BRIDGE, rulesFile());

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
  } finally {
    if (!opts.keep) {
      await vsctl('--if-exists', 'del-br', BRIDGE).catch(() => undefined);
      if (!wasRunning) {
        say('stopping nvs (use --keep to leave it running)');
        await stop(rundir);
      }
    }
  }
  return 0;
}
