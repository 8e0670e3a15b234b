/**
 * `nvs`: the front door. `nvs start` runs nvs-dbserver and nvs-vswitchd in
 * the background (pid files and logs in the run directory) and returns once
 * both answer; `nvs stop` ends them cleanly; `nvs status` says what runs;
 * `nvs demo` builds a small switch and shows traffic crossing it: between two
 * network namespaces on tap ports as root, on dummy ports otherwise.
 */
import { Command, CommanderError } from 'commander';
import { resolveRundir } from '@nvs/daemon';
import { start, status, stop } from './daemons.ts';
import { runDemo } from './demo.ts';
import type { CliIo } from '../appctl/main.ts';

export async function runNvs(argv: string[], io: CliIo): Promise<number> {
  const program = new Command('nvs')
    .description('nvs: a software switch modeled on Open vSwitch')
    .option('--rundir <dir>', 'run directory (default: $NVS_RUNDIR or /run/nvs)')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) });
  const rundir = () => resolveRundir(program.opts().rundir, io.env);
  let code = 0;

  program
    .command('start')
    .description('start nvs-dbserver and nvs-vswitchd in the background')
    .option('-v, --verbose <spec...>', 'log levels for nvs-vswitchd (module[:dest]:level)')
    .option('--redis <address>', 'join a cluster: redis://HOST:PORT, redis-sentinel://HOST:PORT,…/MASTER or redis-cluster://HOST:PORT,… (external_ids:nvs-redis)')
    .option('--system-id <id>', "this host's id in the cluster (external_ids:system-id)")
    .option('--tunnel-ip <ip>', "this host's underlay address for tunnels (external_ids:nvs-tunnel-ip)")
    .option('--encap <type>', 'vxlan or geneve (external_ids:nvs-encap)')
    .option('--cluster-bridge <bridge>', 'the bridge the cluster drives, default br-int (external_ids:nvs-bridge)')
    .action(async (opts: { verbose?: string[]; redis?: string; systemId?: string; tunnelIp?: string; encap?: string; clusterBridge?: string }) => {
      const dir = rundir();
      const flags: Array<[string, string | undefined]> = [
        ['nvs-redis', opts.redis],
        ['system-id', opts.systemId],
        ['nvs-tunnel-ip', opts.tunnelIp],
        ['nvs-encap', opts.encap],
        ['nvs-bridge', opts.clusterBridge],
      ];
      const externalIds = Object.fromEntries(flags.filter((f): f is [string, string] => f[1] !== undefined));
      for (const s of await start(dir, { verbose: opts.verbose, externalIds })) io.stdout.write(`${s.name}: running (pid ${s.pid ?? '?'})\n`);
      io.stdout.write(`run directory: ${dir}\n`);
    });
  program
    .command('stop')
    .description('stop both daemons cleanly')
    .action(async () => {
      const stopped = await stop(rundir());
      io.stdout.write(stopped.length ? `stopped ${stopped.join(', ')}\n` : 'nothing was running\n');
    });
  program
    .command('status')
    .description('show whether the daemons run (exit status 3 when one does not)')
    .action(async () => {
      for (const s of await status(rundir())) {
        io.stdout.write(`${s.name}: ${s.running ? `running (pid ${s.pid ?? '?'}, ${s.version})` : 'not running'}\n`);
        if (!s.running) code = 3;
      }
    });
  program
    .command('demo')
    .description('start nvs if needed, build a bridge and show traffic crossing it (namespaces with root, dummy ports without)')
    .option('--keep', 'leave the daemons, the demo bridge (and namespaces) running afterwards')
    .option('--dummy', 'use dummy ports even as root')
    .action(async (opts: { keep?: boolean; dummy?: boolean }) => {
      code = await runDemo(rundir(), io, { keep: opts.keep ?? false, dummy: opts.dummy ?? false });
    });

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    io.stderr.write(`nvs: ${(err as Error).message}\n`);
    return 1;
  }
  return code;
}
