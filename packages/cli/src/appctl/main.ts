/**
 * nvs-appctl: sends one command to a running nvs daemon over its unixctl
 * socket and prints the reply, in the habits of ovs-appctl:
 *
 *   nvs-appctl [--rundir DIR] [-t TARGET] [-T SECS] COMMAND [ARG...]
 *
 * TARGET is a socket path (anything with a '/') or a daemon name whose
 * socket is `<rundir>/<name>.ctl` (default nvs-vswitchd). Options end at the
 * command: everything after it is passed as arguments, untouched. Exit
 * status: 0 on success, 1 on a usage or connection error, 2 when the daemon
 * answered with an error (as ovs-appctl).
 */
import { join } from 'node:path';
import { resolveRundir, unixctlCall, UnixctlError } from '@nvs/daemon';

export interface CliIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
  env: NodeJS.ProcessEnv;
}

const USAGE = `nvs-appctl, for querying and controlling nvs daemons
usage: nvs-appctl [OPTIONS] COMMAND [ARG...]
  COMMAND [ARG...]     run COMMAND with the given arguments
  list-commands        list the commands the daemon supports
Options:
  -t, --target=TARGET  daemon name (socket <rundir>/TARGET.ctl) or socket path (default: nvs-vswitchd)
  -T, --timeout=SECS   give up after SECS seconds
      --rundir=DIR     run directory (default: $NVS_RUNDIR or /run/nvs)
  -h, --help           display this help message
`;

/** Where a target's unixctl socket is. */
export function targetSocket(target: string, rundir: string): string {
  return target.includes('/') ? target : join(rundir, `${target}.ctl`);
}

export async function runAppctl(argv: string[], io: CliIo): Promise<number> {
  let target = 'nvs-vswitchd';
  let rundirOpt: string | undefined;
  let timeoutS: number | undefined;
  let i = 0;
  const value = (arg: string, name: string): string => {
    const eq = arg.indexOf('=');
    if (eq > 0) return arg.slice(eq + 1);
    if (i + 1 >= argv.length) throw new Error(`option ${name} requires an argument`);
    return argv[++i];
  };
  try {
    for (; i < argv.length && argv[i].startsWith('-'); i++) {
      const arg = argv[i];
      const name = arg.split('=')[0];
      if (name === '-t' || name === '--target') target = value(arg, name);
      else if (name === '-T' || name === '--timeout') timeoutS = Number(value(arg, name));
      else if (name === '--rundir') rundirOpt = value(arg, name);
      else if (name === '-h' || name === '--help') {
        io.stdout.write(USAGE);
        return 0;
      } else throw new Error(`unrecognized option '${arg}' (use --help for help)`);
    }
    if (i >= argv.length) throw new Error('at least one non-option argument is required (use --help for help)');
    if (timeoutS !== undefined && !(timeoutS > 0)) throw new Error('--timeout needs a positive number of seconds');
  } catch (err) {
    io.stderr.write(`nvs-appctl: ${(err as Error).message}\n`);
    return 1;
  }
  const [command, ...args] = argv.slice(i);
  const socket = targetSocket(target, resolveRundir(rundirOpt, io.env));
  let timer: NodeJS.Timeout | undefined;
  try {
    const call = unixctlCall(socket, command, args);
    const reply = timeoutS
      ? await Promise.race([
          call,
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`no reply from ${socket} within ${timeoutS} s`)), timeoutS! * 1000);
          }),
        ])
      : await call;
    io.stdout.write(reply);
    return 0;
  } catch (err) {
    if (err instanceof UnixctlError && err.code === 'UNIXCTL_REMOTE') {
      io.stderr.write(`${err.message}\nnvs-appctl: ${socket}: server returned an error\n`);
      return 2;
    }
    io.stderr.write(`nvs-appctl: ${(err as Error).message}\n`);
    return 1;
  } finally {
    clearTimeout(timer);
  }
}
