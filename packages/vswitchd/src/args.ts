/**
 * nvs-vswitchd's command line, a drop-in for the ovs-vswitchd options that
 * scripts use. The shared daemon options (--rundir, --pidfile, --detach,
 * --no-chdir, --log-file, -v) are taken by @nvs/ovsdb's parseDaemonArgs; this
 * reads what is left: the database remote, --unixctl, --enable-dummy,
 * --disable-system, --no-restore, --help and --version.
 */
import { resolve } from 'node:path';
import { DAEMON_USAGE, DaemonError, parseDaemonArgs, programName, unixctlPath, type DaemonOptions } from '@nvs/daemon';

export interface VswitchdArgs {
  daemon: DaemonOptions;
  /** `unix:PATH` of the database. */
  remote: string;
  unixctlPath: string;
  /** `--enable-dummy=override`: every interface is a dummy port (internal ones too), and types nvs cannot open yet become dummy ports instead of failing. */
  dummyOverride: boolean;
  noRestore: boolean;
  /** Set for --help/--version: print it and exit. */
  print?: string;
}

export const USAGE = `nvs-vswitchd: nvs switch daemon
usage: nvs-vswitchd [OPTIONS] [DATABASE]
where DATABASE is a socket on which ovsdb-server is listening
      (default: "unix:<rundir>/db.sock").
Options:
  --unixctl=SOCKET        override default control socket name (<rundir>/nvs-vswitchd.ctl;
                          as ovs-vswitchd: <rundir>/ovs-vswitchd.<pid>.ctl)
  --enable-dummy[=override]  dummy ports are always available; "override" also
                          makes internal (and LOCAL) ports dummy instead of tap
                          devices, and tap interfaces and interfaces of types
                          nvs cannot open yet
  --disable-system        accepted for compatibility (nvs has no kernel datapath)
  --disable-system-route  accepted for compatibility (nvs reads no routing table)
  --mlockall              accepted for ovs-ctl (node cannot lock its memory; nothing is locked)
  --no-restore            start with empty OpenFlow tables instead of the saved rules
${DAEMON_USAGE}
  -h, --help              display this help message
  -V, --version           display version information`;

export function parseVswitchdArgs(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
  version = '',
  name = programName('nvs-vswitchd', 'ovs-vswitchd'),
): VswitchdArgs {
  const { options, rest } = parseDaemonArgs(name, argv, env);
  let remote: string | undefined;
  let unixctl: string | undefined;
  let dummyOverride = false;
  let noRestore = false;
  let print: string | undefined;
  for (const arg of rest) {
    const eq = arg.indexOf('=');
    const flag = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    const value = arg.startsWith('--') && eq > 0 ? arg.slice(eq + 1) : undefined;
    switch (flag) {
      case '--unixctl':
        if (!value) throw new DaemonError('DAEMON_USAGE', '--unixctl needs a socket: --unixctl=SOCKET');
        unixctl = value;
        break;
      case '--enable-dummy':
        if (value !== undefined && value !== 'override' && value !== 'system') {
          throw new DaemonError('DAEMON_USAGE', `--enable-dummy takes "override" or "system", not "${value}"`);
        }
        dummyOverride = value === 'override';
        break;
      case '--disable-system':
      case '--disable-system-route':
      case '--mlockall':
        break;
      case '--no-restore':
        noRestore = true;
        break;
      case '-h':
      case '--help':
        print = USAGE;
        break;
      case '-V':
      case '--version':
        print = version;
        break;
      default:
        if (arg.startsWith('-')) throw new DaemonError('DAEMON_USAGE', `unrecognized option '${arg}' (use --help for help)`);
        if (remote !== undefined) throw new DaemonError('DAEMON_USAGE', 'at most one database remote may be given');
        if (!arg.startsWith('unix:')) throw new DaemonError('DAEMON_USAGE', `${arg}: database remote must be unix:PATH`);
        remote = `unix:${resolve(arg.slice(5))}`;
    }
  }
  return {
    daemon: options,
    remote: remote ?? `unix:${resolve(options.rundir, 'db.sock')}`,
    unixctlPath: unixctlPath(options, unixctl),
    dummyOverride,
    noRestore,
    print,
  };
}
