/**
 * nvs-ofctl: flow-table management of a running nvs bridge, in the habits
 * of ovs-ofctl. It talks JSON-RPC to the bridge's management socket
 * `<rundir>/<bridge>.mgmt` (or `unix:PATH`); the switch parses rule text and
 * prints rules, so errors name `file:line:column` exactly as the rule parser
 * found them and nothing of a bad file is applied. `parse-pcap` needs no
 * switch: it runs the datapath's key extraction here (parsePcapFiles).
 */
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import pino from 'pino';
import { ovsDirs, programName, resolveRundir } from '@nvs/daemon';
import { JsonRpcConnection, JsonRpcRemoteError } from '@nvs/jsonrpc';
import type { CliIo } from '../appctl/main.ts';
import { ProgressBar } from './progress.ts';

const USAGE = `nvs-ofctl: flow management of nvs bridges
usage: nvs-ofctl [OPTIONS] COMMAND [ARG...]
  show BRIDGE                 show OpenFlow information
  dump-tables BRIDGE          print table stats
  dump-ports BRIDGE [PORT]    print port statistics
  dump-flows BRIDGE [FLOW]    print all (or matching) flow entries
  add-flow BRIDGE FLOW        add flow described by FLOW
  add-flows BRIDGE FILE       add flows from FILE ('-' for stdin)
  mod-flows BRIDGE FLOW       modify actions of matching FLOWs
  del-flows BRIDGE [FLOW]     delete matching FLOWs
  replace-flows BRIDGE FILE   replace flows with those in FILE
  diff-flows BRIDGE FILE      compare the bridge's flows with FILE
  parse-pcap FILE...          print the flow of each packet in FILE
BRIDGE is a bridge name (socket <rundir>/BRIDGE.mgmt) or unix:PATH.
Options:
  --strict                    use strict match for mod-flows and del-flows
  --bundle                    apply the whole file atomically (always the case in nvs)
  --no-stats                  dump-flows without statistics
  --sort[=FIELD]              sort dump-flows by FIELD (default priority), ascending
  --rsort[=FIELD]             sort dump-flows by FIELD (default priority), descending
  -O, --protocols=VERSIONS    OpenFlow versions the rules may use (default OpenFlow10;
                              OpenFlow11 to OpenFlow15 allow push_vlan, write_actions, …)
  --rundir=DIR                run directory (default: $NVS_RUNDIR or /run/nvs)
  -h, --help                  display this help message
`;

/** Thrown for a usage mistake or a failed request; the message is what the user sees. */
export class OfctlError extends Error {
  constructor(
    readonly code: 'OFCTL_USAGE' | 'OFCTL_CONNECT' | 'OFCTL_REMOTE' | 'OFCTL_IO',
    message: string,
  ) {
    super(message);
    this.name = 'OfctlError';
  }
}

interface Options {
  /** What -O allows the rules to use: OpenFlow 1.0 (+ Nicira extensions), or 1.1 and later. */
  dialect: 'of10' | 'of13';
  strict: boolean;
  noStats: boolean;
  sort?: { field: string; reverse: boolean };
  rundir?: string;
}

/** The management socket of a bridge argument. */
export function mgmtSocket(target: string, rundir: string): string {
  return target.startsWith('unix:') ? target.slice(5) : join(rundir, `${target}.mgmt`);
}

async function request(socketPath: string, method: string, params: Record<string, unknown>, io: CliIo): Promise<Record<string, unknown>> {
  const socket = connect(socketPath);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', (err: NodeJS.ErrnoException) =>
      reject(new OfctlError('OFCTL_CONNECT', `${socketPath}: failed to connect to the bridge (${err.code ?? err.message}); is nvs-vswitchd running and the bridge created?`)),
    );
  });
  const conn = new JsonRpcConnection(socket, { log: pino({ level: 'silent' }), name: socketPath });
  const bar = new ProgressBar(io.stderr as { write(s: string): unknown; isTTY?: boolean }, method);
  conn.onNotification('progress', (p) => {
    const { done, total } = (p[0] ?? {}) as { done?: number; total?: number };
    if (typeof done === 'number' && typeof total === 'number') bar.update(done, total);
  });
  try {
    return (await conn.request(method, [params])) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof JsonRpcRemoteError) {
      const remote = err.remote as { details?: string; error?: string };
      throw new OfctlError('OFCTL_REMOTE', remote?.details ?? remote?.error ?? String(err.remote));
    }
    throw err;
  } finally {
    bar.done();
    conn.close();
  }
}

function readRuleFile(file: string): string {
  try {
    return readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    throw new OfctlError('OFCTL_IO', `${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'No such file or directory' : (err as Error).message}`);
  }
}

function parseOptions(argv: string[]): { opts: Options; args: string[]; help: boolean } {
  const opts: Options = { dialect: 'of10', strict: false, noStats: false };
  const args: string[] = [];
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('-') || arg === '-') {
      args.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    const value = eq > 0 ? arg.slice(eq + 1) : undefined;
    switch (name) {
      case '--strict':
        opts.strict = true;
        break;
      case '--bundle':
        break;
      case '--no-stats':
        opts.noStats = true;
        break;
      case '--sort':
      case '--rsort':
        opts.sort = { field: value ?? 'priority', reverse: name === '--rsort' };
        break;
      case '-O':
      case '--protocols': {
        const list = value ?? argv[++i];
        if (list === undefined) throw new OfctlError('OFCTL_USAGE', `${name} needs a list of OpenFlow versions`);
        opts.dialect = dialectOf(list);
        break;
      }
      case '--rundir':
        opts.rundir = value ?? argv[++i];
        if (opts.rundir === undefined) throw new OfctlError('OFCTL_USAGE', '--rundir needs a directory');
        break;
      case '-h':
      case '--help':
        help = true;
        break;
      default:
        if (/^-O\S+/.test(arg)) {
          opts.dialect = dialectOf(arg.slice(2));
          break;
        }
        throw new OfctlError('OFCTL_USAGE', `unrecognized option '${arg}' (use --help for help)`);
    }
  }
  return { opts, args, help };
}

/** OpenFlow version names as ovs-ofctl -O takes them. */
const OF_VERSIONS: ReadonlyMap<string, number> = new Map([
  ['OpenFlow10', 10], ['OpenFlow11', 11], ['OpenFlow12', 12], ['OpenFlow13', 13], ['OpenFlow14', 14], ['OpenFlow15', 15],
]);

/**
 * The rule dialect of an -O list (`OpenFlow10,OpenFlow13`): the newest
 * version listed decides, as it is the one a switch that speaks them all
 * negotiates.
 */
export function dialectOf(list: string): 'of10' | 'of13' {
  let newest = 0;
  for (const name of list.split(',')) {
    const v = OF_VERSIONS.get(name.trim());
    if (v === undefined) throw new OfctlError('OFCTL_USAGE', `${name}: unknown OpenFlow version (expected ${[...OF_VERSIONS.keys()].join(', ')})`);
    newest = Math.max(newest, v);
  }
  return newest >= 11 ? 'of13' : 'of10';
}

function need(args: string[], min: number, max: number, usage: string): void {
  if (args.length - 1 < min || args.length - 1 > max) throw new OfctlError('OFCTL_USAGE', `'${args[0]}' command ${usage}`);
}

export async function runOfctl(argv: string[], io: CliIo): Promise<number> {
  try {
    const { opts, args, help } = parseOptions(argv);
    if (help) {
      io.stdout.write(USAGE);
      return 0;
    }
    if (args.length === 0) throw new OfctlError('OFCTL_USAGE', 'missing command name; use --help for help');
    const [command] = args;
    if (command === 'parse-pcap') {
      need(args, 1, Infinity, 'requires at least 1 argument (a pcap file)');
      io.stdout.write(await parsePcapFiles(args.slice(1), (m) => io.stderr.write(`nvs-ofctl: ${m}\n`)));
      return 0;
    }
    // Run as ovs-ofctl (a link of that name, standing in for OVS's), the switch's sockets are in OVS's run directory.
    const asOvs = programName('nvs-ofctl', 'ovs-ofctl') === 'ovs-ofctl';
    const rundir = resolveRundir(opts.rundir ?? (asOvs ? ovsDirs(io.env).rundir : undefined), io.env);
    const sock = (b: string) => mgmtSocket(b, rundir);
    const bridgeOf = (b: string) => (b.startsWith('unix:') ? '' : b);
    let reply: Record<string, unknown>;
    switch (command) {
      case 'show':
      case 'dump-tables':
        need(args, 1, 1, 'requires exactly 1 argument (a bridge)');
        reply = await request(sock(args[1]), command, { bridge: bridgeOf(args[1]) }, io);
        break;
      case 'dump-ports':
        need(args, 1, 2, 'requires 1 or 2 arguments (a bridge and optionally a port)');
        reply = await request(sock(args[1]), command, { bridge: bridgeOf(args[1]), port: args[2] }, io);
        break;
      case 'dump-flows':
        need(args, 1, 2, 'requires 1 or 2 arguments (a bridge and optionally a flow)');
        reply = await request(sock(args[1]), command, { bridge: bridgeOf(args[1]), filter: args[2] ?? '', noStats: opts.noStats, sort: opts.sort }, io);
        break;
      case 'add-flow':
      case 'mod-flows':
        need(args, 2, 2, 'requires exactly 2 arguments (a bridge and a flow)');
        reply = await request(
          sock(args[1]),
          'flow-mod',
          { bridge: bridgeOf(args[1]), command: command === 'add-flow' ? 'add' : opts.strict ? 'modify_strict' : 'modify', file: '(command line)', text: args[2], dialect: opts.dialect },
          io,
        );
        break;
      case 'del-flows':
        need(args, 1, 2, 'requires 1 or 2 arguments (a bridge and optionally a flow)');
        reply = await request(
          sock(args[1]),
          'flow-mod',
          { bridge: bridgeOf(args[1]), command: opts.strict ? 'delete_strict' : 'delete', file: '(command line)', text: args[2] ?? '', allowEmpty: true, dialect: opts.dialect },
          io,
        );
        break;
      case 'add-flows':
      case 'replace-flows':
      case 'diff-flows':
        need(args, 2, 2, 'requires exactly 2 arguments (a bridge and a file)');
        reply = await request(
          sock(args[1]),
          command === 'add-flows' ? 'flow-mod' : command,
          { bridge: bridgeOf(args[1]), command: 'add', file: args[2] === '-' ? '(stdin)' : args[2], text: readRuleFile(args[2]), dialect: opts.dialect },
          io,
        );
        break;
      default:
        throw new OfctlError('OFCTL_USAGE', `unknown command '${command}'; use --help for help`);
    }
    if (typeof reply.text === 'string') io.stdout.write(reply.text);
    return command === 'diff-flows' && reply.text ? 2 : 0;
  } catch (err) {
    io.stderr.write(`nvs-ofctl: ${(err as Error).message}\n`);
    return 1;
  }
}

/**
 * `parse-pcap FILE...`, answered in this process with no daemon, as
 * ovs-ofctl's is: reading a capture offline needs no switch. The flows come
 * from the datapath's own key extraction, printed as `ovs-ofctl parse-pcap`
 * prints them. vswitchd's pcap reader (and through it the addon) is loaded
 * here only: every other command talks to the daemons.
 */
async function parsePcapFiles(files: readonly string[], warn: (message: string) => void): Promise<string> {
  const { parsePcapFile, PcapError, NvsDpif } = await import('@nvs/vswitchd');
  const dpif = NvsDpif.open({ threads: 0 });
  try {
    return files
      .map((file) => {
        try {
          return parsePcapFile(file, dpif, warn);
      } catch (err) {
        if (err instanceof PcapError) throw new OfctlError('OFCTL_IO', err.message);
        const e = err as NodeJS.ErrnoException;
        if (e.syscall === 'open') throw new OfctlError('OFCTL_IO', `${file}: open failed (${e.code === 'ENOENT' ? 'No such file or directory' : e.code})`);
          throw err;
        }
      })
      .join('');
  } finally {
    dpif.close();
  }
}
