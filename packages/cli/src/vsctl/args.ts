// nvs-vsctl's command line, in ovs-vsctl's shape:
//
//   nvs-vsctl [GLOBAL-OPTIONS] [--] [CMD-OPTIONS] COMMAND [ARG...] [-- [CMD-OPTIONS] COMMAND [ARG...]]...
//
// Global options come first; command options (`--may-exist`, `--if-exists`,
// `--id=@name`, `--columns=…`, …) come right before their command, and any
// given before the first command belong to it. A lone `--` separates
// commands. Written by hand: no option framework knows chained commands.
import { VsctlError } from './errors.ts';
import type { DataFormat, TableFormat } from './output.ts';

// Same default as the daemons (ovsdb/src/daemon.ts), not imported from there to keep pino out of the bundle.
export const DEFAULT_RUNDIR = '/run/nvs';

export interface GlobalOptions {
  /** Database remote (`unix:PATH` or `tcp:IP:PORT`). */
  db: string;
  /** Wait for nvs-vswitchd to apply the change (cur_cfg reaching next_cfg). */
  wait: boolean;
  /** Seconds before giving up; undefined waits forever, as ovs-vsctl does. */
  timeout?: number;
  format: TableFormat;
  data: DataFormat;
  headings: boolean;
  /** Each command's output on one line, newlines escaped. */
  oneline: boolean;
  /** Keep trying to connect while the server is not up (bounded by timeout). */
  retry: boolean;
  /** Run the commands but commit nothing. */
  dryRun: boolean;
  help: boolean;
  version: boolean;
}

/** One command of the chain. */
export interface CommandLine {
  name: string;
  args: string[];
  /** Command options given, without the leading `--` (`may-exist` → true, `id` → `@x`). */
  options: Map<string, string | true>;
}

export interface ParsedCommandLine {
  global: GlobalOptions;
  commands: CommandLine[];
}

function splitOption(arg: string): { name: string; value?: string } {
  const eq = arg.indexOf('=');
  return eq < 0 ? { name: arg.slice(2) } : { name: arg.slice(2, eq), value: arg.slice(eq + 1) };
}

const FORMATS: readonly string[] = ['list', 'table', 'csv', 'json'];
const DATA_FORMATS: readonly string[] = ['string', 'bare', 'json'];

/**
 * Parses argv (without node and script). `env` supplies NVS_RUNDIR for the
 * default database `unix:<rundir>/db.sock`.
 */
export function parseCommandLine(argv: readonly string[], env: NodeJS.ProcessEnv): ParsedCommandLine {
  let db: string | undefined;
  let rundir: string | undefined;
  let bare = false;
  let data: DataFormat | undefined;
  const g: Omit<GlobalOptions, 'db' | 'data'> = { wait: true, format: 'list', headings: true, oneline: false, retry: false, dryRun: false, help: false, version: false };
  const firstOptions = new Map<string, string | true>();
  let i = 0;
  const needValue = (name: string, value: string | undefined): string => {
    if (value !== undefined) return value;
    if (i + 1 >= argv.length) throw new VsctlError('VSCTL_USAGE', `option '--${name}' requires an argument`);
    return argv[++i];
  };
  for (; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--' || !arg.startsWith('-')) break;
    if (arg === '-h') {
      g.help = true;
      continue;
    }
    if (arg === '-V') {
      g.version = true;
      continue;
    }
    if (arg === '-t' || arg === '-f' || arg === '-d') {
      const value = needValue(arg, undefined);
      if (arg === '-t') g.timeout = parseTimeout(value);
      else if (arg === '-f') g.format = parseChoice('format', value, FORMATS) as TableFormat;
      else data = parseChoice('data', value, DATA_FORMATS) as DataFormat;
      continue;
    }
    if (!arg.startsWith('--')) throw new VsctlError('VSCTL_USAGE', `unrecognized option '${arg}' (use --help for help)`);
    const { name, value } = splitOption(arg);
    switch (name) {
      case 'db':
        db = needValue(name, value);
        break;
      case 'rundir':
        rundir = needValue(name, value);
        break;
      case 'no-wait':
        g.wait = false;
        break;
      case 'timeout':
        g.timeout = parseTimeout(needValue(name, value));
        break;
      case 'format':
        g.format = parseChoice('format', needValue(name, value), FORMATS) as TableFormat;
        break;
      case 'data':
        data = parseChoice('data', needValue(name, value), DATA_FORMATS) as DataFormat;
        break;
      case 'bare':
        bare = true;
        break;
      case 'no-headings':
        g.headings = false;
        break;
      case 'oneline':
        g.oneline = true;
        break;
      case 'help':
        g.help = true;
        break;
      case 'version':
        g.version = true;
        break;
      case 'retry':
        g.retry = true;
        break;
      case 'dry-run':
        g.dryRun = true;
        break;
      // Accepted for compatibility with scripts written for ovs-vsctl; nothing to do here.
      case 'no-syslog':
      case 'pretty':
        break;
      default:
        if (!COMMAND_OPTIONS.has(name)) throw new VsctlError('VSCTL_USAGE', `unrecognized option '${arg}' (use --help for help)`);
        firstOptions.set(name, value ?? true);
    }
  }
  if (bare) {
    data = 'bare';
    g.headings = false;
  }
  const commands = splitCommands(argv.slice(i), firstOptions);
  if (commands.length === 0 && !g.help && !g.version) throw new VsctlError('VSCTL_USAGE', 'missing command name (use --help for help)');
  const dir = rundir ?? env.NVS_RUNDIR ?? DEFAULT_RUNDIR;
  return { global: { ...g, db: db ?? `unix:${dir}/db.sock`, data: data ?? 'string' }, commands };
}

/** Command options, all commands together; each command says which it accepts. */
const COMMAND_OPTIONS = new Set(['may-exist', 'if-exists', 'id', 'columns', 'all', 'with-iface', 'fake-iface']);

function splitCommands(rest: readonly string[], firstOptions: Map<string, string | true>): CommandLine[] {
  const commands: CommandLine[] = [];
  let options = firstOptions;
  let current: CommandLine | undefined;
  for (const arg of rest) {
    if (arg === '--') {
      if (current) commands.push(current);
      current = undefined;
      if (commands.length > 0) options = new Map();
      continue;
    }
    if (current) {
      current.args.push(arg);
    } else if (arg.startsWith('--')) {
      const { name, value } = splitOption(arg);
      if (!COMMAND_OPTIONS.has(name)) throw new VsctlError('VSCTL_USAGE', `unrecognized option '${arg}' (use --help for help)`);
      options.set(name, value ?? true);
    } else {
      current = { name: arg, args: [], options };
    }
  }
  if (current) commands.push(current);
  else if (options.size > 0) throw new VsctlError('VSCTL_USAGE', 'missing command name after options (use --help for help)');
  return commands;
}

function parseTimeout(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n)) throw new VsctlError('VSCTL_USAGE', `value ${v} on --timeout is invalid`);
  // ovs-vsctl treats 0 as "no timeout".
  return n;
}

function parseChoice(option: string, v: string, choices: readonly string[]): string {
  const lower = v.toLowerCase();
  if (!choices.includes(lower)) throw new VsctlError('VSCTL_USAGE', `unknown --${option} "${v}" (use one of: ${choices.join(', ')})`);
  return lower;
}

export const USAGE = `nvs-vsctl: nvs (Open vSwitch compatible) configuration utility
usage: nvs-vsctl [OPTIONS] COMMAND [ARG...] [-- [OPTIONS] COMMAND [ARG...]]...

Open vSwitch commands:
  init                        initialize database, if not yet initialized
  show                        print overview of database contents

Bridge commands:
  add-br BRIDGE               create a new bridge named BRIDGE
  del-br BRIDGE               delete BRIDGE and all of its ports
  list-br                     print the names of all the bridges
  br-exists BRIDGE            exit 2 if BRIDGE does not exist
  br-to-vlan BRIDGE           print the VLAN which BRIDGE is on (always 0)
  br-to-parent BRIDGE         print the parent of BRIDGE (itself)
  br-set-external-id BRIDGE KEY VALUE  set KEY on BRIDGE to VALUE
  br-set-external-id BRIDGE KEY  unset KEY on BRIDGE
  br-get-external-id BRIDGE KEY  print value of KEY on BRIDGE
  br-get-external-id BRIDGE   list key-value pairs on BRIDGE

Port commands:
  list-ports BRIDGE           print the names of all the ports on BRIDGE
  add-port BRIDGE PORT [COLUMN[:KEY]=VALUE]...  add network device PORT to BRIDGE
  add-bond BRIDGE PORT IFACE...  add bonded port PORT in BRIDGE from IFACES
  del-port [BRIDGE] PORT      delete PORT (which may be bonded) from BRIDGE
  port-to-br PORT             print name of bridge that contains PORT

Controller commands:
  get-controller BRIDGE      print the controllers for BRIDGE
  del-controller BRIDGE      delete the controllers for BRIDGE
  set-controller BRIDGE TARGET...  set the controllers for BRIDGE
  get-fail-mode BRIDGE       print the fail-mode for BRIDGE
  del-fail-mode BRIDGE       delete the fail-mode for BRIDGE
  set-fail-mode BRIDGE MODE  set the fail-mode for BRIDGE to MODE

Manager commands:
  get-manager                print the managers
  del-manager                delete the managers
  set-manager TARGET...      set the list of managers to TARGET...

Interface commands:
  list-ifaces BRIDGE          print the names of all interfaces on BRIDGE
  iface-to-br IFACE           print name of bridge that contains IFACE

Database commands:
  list TBL [REC]              list RECord (or all records) in TBL
  find TBL CONDITION...       list records satisfying CONDITION in TBL
  get TBL REC COL[:KEY]       print values of COLumns in RECord in TBL
  set TBL REC COL[:KEY]=VALUE set COLumn values in RECord in TBL
  add TBL REC COL [KEY=]VALUE add (KEY=)VALUE to COLumn in RECord in TBL
  remove TBL REC COL [KEY=]VALUE  remove (KEY=)VALUE from COLumn
  clear TBL REC COL           clear values from COLumn in RECord in TBL
  create TBL COL[:KEY]=VALUE  create and initialize new record
  destroy TBL REC             delete RECord from TBL
  wait-until TBL REC [COL[:KEY]=VALUE]  wait until condition is true

Options:
  --db=DATABASE               connect to DATABASE (default: unix:<rundir>/db.sock)
  --rundir=DIR                run directory (default: $NVS_RUNDIR or /run/nvs)
  --no-wait                   do not wait for nvs-vswitchd to reconfigure
  -t, --timeout=SECS          wait at most SECS seconds (0: forever)
  -f, --format=FORMAT         set output format: list, table, csv or json
  -d, --data=FORMAT           set table cell output format: string, bare or json
  --bare                      print only values (--format=list --data=bare --no-headings)
  --no-headings               omit table headings
  --columns=COL,...           (before list or find) print only these columns
  --oneline                   print exactly one line of output per command
  --retry                     keep trying to connect until the database is up
  --dry-run                   do not commit changes to the database
  -h, --help                  display this help message
  -V, --version               display version information
`;
