#!/usr/bin/env -S -u NODE_EXTRA_CA_CERTS node
// (nvs makes no TLS connections: without the variable, node does not load those certificates at start, about 75 ms on a machine that sets it.)
// nvs-vswitchd: the switch daemon (see ../vswitchd.ts); a drop-in for
// ovs-vswitchd's command line (see ../args.ts).
import { DaemonError, startDaemon } from '@nvs/daemon';
import { parseVswitchdArgs } from '../args.ts';
import { NvsDpif } from '../dpif-nvs.ts';
import { chooseInternalPorts } from '../internal-ports.ts';
import { VERSION, Vswitchd } from '../vswitchd.ts';

async function main(): Promise<number> {
  let args;
  try {
    args = parseVswitchdArgs(process.argv.slice(2), process.env, `nvs-vswitchd (nvs) ${VERSION}`);
  } catch (err) {
    process.stderr.write(`nvs-vswitchd: ${(err as Error).message}\n`);
    return 1;
  }
  if (args.print !== undefined) {
    process.stdout.write(`${args.print}\n`);
    return 0;
  }
  let daemon;
  try {
    daemon = await startDaemon(args.daemon);
  } catch (err) {
    process.stderr.write(`nvs-vswitchd: ${(err as Error).message}\n`);
    return err instanceof DaemonError ? 1 : 2;
  }
  const log = daemon.vlog.logger('main');
  const internal = chooseInternalPorts({ dummyOverride: args.dummyOverride });
  log.info({ internalPorts: internal.backend, why: internal.reason }, `internal and LOCAL ports are ${internal.backend === 'tap' ? 'tap devices' : 'dummy ports'}`);
  let stopping: Promise<void> | undefined;
  const shutdown = (why: string) => {
    stopping ??= (async () => {
      log.info({ why }, 'shutting down');
      await vswitchd.stop().catch((err) => log.error({ err }, 'clean shutdown failed'));
      daemon.close();
      process.exit(0);
    })();
  };
  const vswitchd = new Vswitchd({
    vlog: daemon.vlog,
    rundir: args.daemon.rundir,
    remote: args.remote,
    unixctlPath: args.unixctlPath,
    openDpif: (o) => NvsDpif.open({ ...o, internalPorts: internal.backend }),
    restore: !args.noRestore,
    read: { dummyOverride: args.dummyOverride },
    onExit: () => shutdown('exit requested over appctl'),
  });
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  // A bug in one request must not take the switch down: log it and go on.
  process.on('uncaughtException', (err) => log.error({ err }, 'uncaught exception'));
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));
  try {
    await vswitchd.start();
  } catch (err) {
    log.error({ err }, 'start-up failed');
    daemon.fail(err);
    daemon.close();
    process.stderr.write(`nvs-vswitchd: ${(err as Error).message}\n`);
    return 1;
  }
  daemon.ready();
  return 0;
}

void main().then((code) => {
  if (code !== 0) process.exit(code);
});
