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
  /**
   * Command options as written, up to any `=` (`--may-exist` → true,
   * `--id=@x` → `@x`); which ones a command accepts is checked with the
   * command (checkCommand), as ovs-vsctl does.
   */
  options: Map<string, string | true>;
}

export interface ParsedCommandLine {
  global: GlobalOptions;
  commands: CommandLine[];
}

/** Long global options, and whether each takes a value. */
const GLOBAL_OPTIONS: ReadonlyMap<string, boolean> = new Map([
  ['db', true],
  ['rundir', true],
  ['no-wait', false],
  ['timeout', true],
  ['format', true],
  ['data', true],
  ['bare', false],
  ['no-headings', false],
  ['pretty', false],
  ['oneline', false],
  ['help', false],
  ['version', false],
  ['retry', false],
  ['dry-run', false],
  ['no-syslog', false],
]);

/**
 * Options of the commands (all commands together), and whether each takes a
 * value: given before the first command, they belong to it.
 */
const COMMAND_OPTIONS: ReadonlyMap<string, boolean> = new Map([
  ['may-exist', false],
  ['if-exists', false],
  ['with-iface', false],
  ['fake-iface', false],
  ['real', false],
  ['fake', false],
  ['all', false],
  ['id', true],
  ['columns', true],
  ['inactivity-probe', true],
]);

const SHORT_OPTIONS: Record<string, string> = { t: 'timeout', f: 'format', d: 'data', h: 'help', V: 'version' };

/** A long option by its name or (as getopt does) an unambiguous prefix of it. */
function longOption(name: string): string | undefined {
  if (GLOBAL_OPTIONS.has(name) || COMMAND_OPTIONS.has(name)) return name;
  const matches = [...GLOBAL_OPTIONS.keys(), ...COMMAND_OPTIONS.keys()].filter((o) => o.startsWith(name));
  if (matches.length > 1) throw new VsctlError('VSCTL_USAGE', `option '--${name}' is ambiguous`);
  return matches[0];
}

const FORMATS: readonly string[] = ['list', 'table', 'csv', 'json'];
const DATA_FORMATS: readonly string[] = ['string', 'bare', 'json'];

/**
 * Parses argv (without node and script). `env` supplies NVS_RUNDIR for the
 * default database `unix:<rundir>/db.sock`. Global options are read in
 * order (so `--bare --format=table` differs from `--format=table --bare`),
 * up to the first word that is not an option or a lone `--`.
 */
export function parseCommandLine(argv: readonly string[], env: NodeJS.ProcessEnv): ParsedCommandLine {
  let db: string | undefined;
  let rundir: string | undefined;
  const g: Omit<GlobalOptions, 'db'> = { wait: true, format: 'list', data: 'string', headings: true, oneline: false, retry: false, dryRun: false, help: false, version: false };
  const firstOptions = new Map<string, string | true>();
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--' || !arg.startsWith('-') || arg === '-') break;
    let name: string;
    let value: string | undefined;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const given = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      const found = longOption(given);
      if (!found) throw new VsctlError('VSCTL_USAGE', `unrecognized option '${eq < 0 ? arg : arg.slice(0, eq)}'`);
      name = found;
      const takesValue = GLOBAL_OPTIONS.get(name) ?? COMMAND_OPTIONS.get(name)!;
      if (eq >= 0) {
        if (!takesValue) throw new VsctlError('VSCTL_USAGE', `option '--${name}' doesn't allow an argument`);
        value = arg.slice(eq + 1);
      } else if (takesValue) {
        if (i + 1 >= argv.length) throw new VsctlError('VSCTL_USAGE', `option '--${name}' requires an argument`);
        value = argv[++i];
      }
    } else {
      const letter = arg[1];
      const long = SHORT_OPTIONS[letter];
      if (!long) throw new VsctlError('VSCTL_USAGE', `invalid option -- '${letter}'`);
      name = long;
      if (GLOBAL_OPTIONS.get(name)) {
        if (arg.length > 2) value = arg.slice(2);
        else if (i + 1 < argv.length) value = argv[++i];
        else throw new VsctlError('VSCTL_USAGE', `option requires an argument -- '${letter}'`);
      }
    }
    switch (name) {
      case 'db':
        db = value;
        break;
      case 'rundir':
        rundir = value;
        break;
      case 'no-wait':
        g.wait = false;
        break;
      case 'timeout':
        g.timeout = parseTimeout(value!);
        break;
      case 'format':
        g.format = parseChoice('output format', value!, FORMATS) as TableFormat;
        break;
      case 'data':
        g.data = parseChoice('data format', value!, DATA_FORMATS) as DataFormat;
        break;
      case 'bare':
        g.format = 'list';
        g.data = 'bare';
        g.headings = false;
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
        firstOptions.set(`--${name}`, value ?? true);
    }
  }
  const commands = splitCommands(argv.slice(i), firstOptions);
  if (commands.length === 0 && !g.help && !g.version) throw new VsctlError('VSCTL_USAGE', 'missing command name (use --help for help)');
  const dir = rundir ?? env.NVS_RUNDIR ?? DEFAULT_RUNDIR;
  return { global: { ...g, db: db ?? `unix:${dir}/db.sock` }, commands };
}

/**
 * Splits the rest of the command line at each lone `--`; in each part,
 * the words before the command name that begin with `-` are its options.
 */
function splitCommands(rest: readonly string[], firstOptions: Map<string, string | true>): CommandLine[] {
  const commands: CommandLine[] = [];
  let options = firstOptions;
  let words: string[] = [];
  const finish = (): void => {
    if (words.length === 0) {
      if (options.size > 0) throw new VsctlError('VSCTL_USAGE', 'missing command name (use --help for help)');
      return;
    }
    let j = 0;
    for (; j < words.length && words[j].startsWith('-'); j++) {
      const eq = words[j].indexOf('=');
      const key = eq < 0 ? words[j] : words[j].slice(0, eq);
      if (options.has(key)) throw new VsctlError('VSCTL_USAGE', `'${words[j]}' option specified multiple times`);
      options.set(key, eq < 0 ? true : words[j].slice(eq + 1));
    }
    if (j === words.length) throw new VsctlError('VSCTL_USAGE', 'missing command name (use --help for help)');
    commands.push({ name: words[j], args: words.slice(j + 1), options });
    options = new Map();
    words = [];
  };
  for (const arg of rest) {
    if (arg === '--') finish();
    else words.push(arg);
  }
  finish();
  return commands;
}

function parseTimeout(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n === 0) throw new VsctlError('VSCTL_USAGE', `value ${v} on -t or --timeout is invalid`);
  return n;
}

function parseChoice(what: string, v: string, choices: readonly string[]): string {
  if (!choices.includes(v)) throw new VsctlError('VSCTL_USAGE', `unknown ${what} "${v}"`);
  return v;
}

export const USAGE = `nvs-vsctl: nvs (Open vSwitch compatible) configuration utility
usage: nvs-vsctl [OPTIONS] COMMAND [ARG...] [-- [OPTIONS] COMMAND [ARG...]]...

Open vSwitch commands:
  init                        initialize database, if not yet initialized
  show                        print overview of database contents

Bridge commands:
  add-br BRIDGE               create a new bridge named BRIDGE
  add-br BRIDGE PARENT VLAN   create new fake BRIDGE in PARENT on VLAN
  del-br BRIDGE               delete BRIDGE and all of its ports
  list-br                     print the names of all the bridges
  br-exists BRIDGE            exit 2 if BRIDGE does not exist
  br-to-vlan BRIDGE           print the VLAN which BRIDGE is on
  br-to-parent BRIDGE         print the parent of BRIDGE
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
                              (--inactivity-probe=MSECS: probe interval)
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
  comment [ARG]...            do nothing (a note in the command line)

Options:
  --db=DATABASE               connect to DATABASE (default: unix:<rundir>/db.sock)
  --rundir=DIR                run directory (default: $NVS_RUNDIR or /run/nvs)
  --no-wait                   do not wait for nvs-vswitchd to reconfigure
  -t, --timeout=SECS          wait at most SECS seconds
  -f, --format=FORMAT         set output format: list, table, csv or json
  -d, --data=FORMAT           set table cell output format: string, bare or json
  --bare                      print only values (--format=list --data=bare --no-headings)
  --no-headings               omit table headings
  --columns=COL,...           (before list or find) print only these columns
  --real, --fake              (before list-br) only real or only fake bridges
  --oneline                   print exactly one line of output per command
  --retry                     keep trying to connect until the database is up
  --dry-run                   do not commit changes to the database
  -h, --help                  display this help message
  -V, --version               display version information
`;
