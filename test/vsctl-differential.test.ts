// Differential test of nvs-vsctl against the real ovs-vsctl: a seeded
// generator writes random command lines from ovs-vsctl's vocabulary —
// bridges (fake ones too), ports, bonds, interfaces, external ids, the
// database commands over Bridge/Port/Interface/Open_vSwitch/QoS/Queue,
// --may-exist/--if-exists, chains joined by `--`, output formats, and
// mistakes (unknown names, columns and tables, bad values, wrong argument
// counts). Each line runs with ovs-vsctl against one database and with
// nvs-vsctl against another, and the two must agree on the exit status,
// stdout, stderr and then the whole database. Both databases are
// in-process nvs-dbservers, so that only the CLIs differ (the servers have
// their own differential test), and nvs-vsctl runs in-process too, through
// runVsctl as its bin does (the bundled bin is run by vsctl-compat.test.ts):
// a step then costs about what ovs-vsctl's process does.
//
// UUIDs are replaced by row labels (vsctl-harness.ts), and output whose
// order ovs-vsctl leaves to its hash tables is sorted. Names come from
// small pools, so commands often meet what earlier ones made, or just
// missed. Where ovs-vsctl's behaviour is an accident of its IDL or of uuid
// order, the generator steers clear of it, and says so where it does.
// Seeds are fixed; a failure names its seed, step and command line.
// VSCTL_DIFF_SEEDS=1-500 runs other seeds; VSCTL_DIFF_TRACE=1 prints each
// step's line and ovs-vsctl's exit status and error.
import { afterEach, describe, expect, it } from 'vitest';
import { Rng } from './prng.ts';
import { canonical, dumpDatabase, firstCommand, labelUuids, normaliseStderr, nvsVsctl, ovsVsctl, rowLabels, startSide, stopSide, type Result, type Side } from './vsctl-harness.ts';
import { needsOvs } from './ovs-tools.ts';

const skipOvs = needsOvs('test/vsctl-differential', ['ovs-vsctl']);

const SEEDS = seedsFromEnv(process.env.VSCTL_DIFF_SEEDS) ?? Array.from({ length: 32 }, (_, i) => i + 1);
const STEPS = 60;

function seedsFromEnv(spec: string | undefined): number[] | undefined {
  if (!spec) return undefined;
  return spec.split(',').flatMap((part) => {
    const [lo, hi] = part.split('-').map(Number);
    return Array.from({ length: (hi ?? lo) - lo + 1 }, (_, i) => lo + i);
  });
}

const BRIDGES = ['br0', 'br1', 'br2'];
const FAKES = ['fb5', 'fb6'];
const PORTS = ['p1', 'p2', 'p3', 'bond0'];
const IFACES = ['p1', 'p2', 'e1', 'e2', 'e3'];
const KEYS = ['k1', 'k2', '"a b"', 'k\\:1'];
const VALUES = ['v1', 'v2', '"x y"', '1', 'a\\,b'];
const VLANS = ['5', '6', '0', '4095'];

/** Values to try per column: mostly good ones, some of the wrong type or out of range. */
const COLUMNS: Record<string, Record<string, readonly string[]>> = {
  Bridge: {
    fail_mode: ['secure', 'standalone', 'bogus', '[]'],
    stp_enable: ['true', 'false', 'yes'],
    datapath_type: ['netdev', 'system', '""'],
    flood_vlans: ['[1,2]', '5', '[]', '4096'],
    protocols: ['OpenFlow13', '[OpenFlow10,OpenFlow13]', 'OpenFlow99'],
    mcast_snooping_enable: ['true', 'false'],
    name: ['brX'],
    ports: ['[]'],
    external_ids: [],
    other_config: [],
  },
  // No fake_bridge here, and set/add/remove/clear never name a fake
  // bridge's port (Generator.record): that could make two fake bridges of
  // one VLAN, and which of them ovs-vsctl then takes for the VLAN's depends
  // on the order of their uuids. (add-br refuses a second one.)
  Port: {
    tag: ['5', '6', '10', '4096', 'abc', '[]'],
    trunks: ['[1,2]', '1,2,10-12', '[]', '3', '[1,x]'],
    vlan_mode: ['access', 'trunk', 'native-tagged', 'bogus'],
    lacp: ['active', 'off', 'sometimes'],
    bond_mode: ['balance-slb', 'active-backup', 'round-robin'],
    bond_fake_iface: ['true'],
    mac: ['"00:11:22:33:44:55"', 'aa'],
    bond_updelay: ['100', 'x'],
    qos: ['[]'],
    name: ['pX'],
    external_ids: [],
    other_config: [],
  },
  Interface: {
    type: ['internal', 'patch', '""', 'dummy'],
    mtu_request: ['1500', '0', 'x'],
    ofport_request: ['5', '70000'],
    admin_state: ['up', 'sideways'],
    mac: ['"00:11:22:33:44:55"'],
    ingress_policing_rate: ['100', '-1'],
    error: ['"oops"'],
    name: ['eX'],
    options: [],
    external_ids: [],
    other_config: [],
  },
  Open_vSwitch: {
    ovs_version: ['"3.1.0"', '[]'],
    next_cfg: ['5', 'x'],
    system_type: ['xenial'],
    external_ids: [],
    other_config: [],
  },
  QoS: {
    type: ['linux-htb', 'linux-hfsc'],
    queues: ['{}'],
    external_ids: [],
    other_config: [],
  },
  Queue: {
    dscp: ['5', '64'],
    external_ids: [],
    other_config: [],
  },
};
const MAP_COLUMNS = new Set(['external_ids', 'other_config', 'options']);
const TABLES = Object.keys(COLUMNS);

/** find conditions per table, good and bad. */
const CONDITIONS: Record<string, readonly string[]> = {
  Bridge: ['name=br0', 'fail_mode=secure', 'stp_enable=true', 'external_ids:k1=v1', 'external_ids:k1!=v1', 'flood_vlans{>=}5', 'ports=[]', 'datapath_type=""'],
  Port: ['tag=5', 'tag>=5', 'tag<6', 'tag!=5', 'trunks{>=}[1]', 'trunks{<=}[1,2,3]', 'trunks{in}[1,2]', 'tag{not-in}[5]', 'trunks=[]', 'vlan_mode=access', 'fake_bridge=true', 'other_config:k1=v1', 'other_config:k1{not-in}[v1]', 'name=p1', 'tag=abc', 'tag'],
  Interface: ['type=internal', 'type=""', 'options:peer=p1', 'name=e1', 'mtu_request>1000', 'external_ids:k1=v1', 'nosuch=1'],
  Open_vSwitch: ['external_ids:k1=v1', 'next_cfg=0', 'other_config:k2!=v2'],
  QoS: ['type=linux-htb', 'other_config:max-rate=1000'],
  Queue: ['dscp=5', 'other_config:min-rate=1000', 'dscp<10'],
};

/** One command: its options and words, as on the command line. */
type Command = string[];

class Generator {
  constructor(private readonly r: Rng) {}

  private bridge(): string {
    const r = this.r;
    if (r.chance(0.45)) return 'br0';
    return r.chance(0.7) ? r.pick(BRIDGES) : r.chance(0.8) ? r.pick(FAKES) : r.pick(['p1', 'e1', 'nobr', '']);
  }

  private port(): string {
    const r = this.r;
    return r.chance(0.8) ? r.pick(PORTS) : r.pick([...BRIDGES, ...FAKES, 'e1', 'e2']);
  }

  private iface(): string {
    const r = this.r;
    return r.chance(0.85) ? r.pick(IFACES) : r.pick([...BRIDGES, 'bond0', 'fb5']);
  }

  private key(): string {
    return this.r.pick(KEYS);
  }

  private value(): string {
    return this.r.pick(VALUES);
  }

  /** How a table is named on the command line: exactly, mostly. */
  private tableName(table: string): string {
    const r = this.r;
    if (r.chance(0.9)) return table;
    return r.pick([table.toLowerCase(), table.slice(0, 3), 'Nosuch']);
  }

  private record(table: string): string {
    const r = this.r;
    // `.` names a table's only row.
    if (r.chance(0.03)) return '.';
    switch (table) {
      case 'Bridge':
        return this.bridge();
      case 'Port':
        // Not a fake bridge's port: see COLUMNS.Port.
        return this.r.chance(0.85) ? this.r.pick(PORTS) : this.r.pick([...BRIDGES, 'e1']);
      case 'Interface':
        return this.iface();
      case 'Open_vSwitch':
        return r.chance(0.9) ? '.' : 'x';
      case 'QoS':
        // A QoS row is named by the port that uses it.
        return this.port();
      default:
        return 'nosuch';
    }
  }

  private column(table: string): string {
    const r = this.r;
    const name = r.pick(Object.keys(COLUMNS[table]));
    if (r.chance(0.05)) return r.pick(['nosuch', name.replace('_', '-'), name.slice(0, 4)]);
    return name;
  }

  /** `column=value` or `column:key=value`, for set, create and add-port. */
  setting(table: string): string {
    const r = this.r;
    const col = this.column(table);
    const values = COLUMNS[table][col];
    if (MAP_COLUMNS.has(col) || values === undefined) {
      if (r.chance(0.7)) return `${col}:${this.key()}=${this.value()}`;
      return `${col}=${r.pick([`{${this.key()}=${this.value()}}`, '{}', `{k1=v1, k2=v2}`, '{k1}'])}`;
    }
    if (values.length === 0) return `${col}=x`;
    // The first two values of each list are good ones.
    return `${col}=${r.chance(0.75) ? r.pick(values.slice(0, 2)) : r.pick(values)}`;
  }

  private settings(table: string, max: number): string[] {
    const out: string[] = [];
    for (let n = this.r.int(max + 1); n > 0; n--) out.push(this.setting(table));
    return out;
  }

  private formatOptions(): string[] {
    const r = this.r;
    if (r.chance(0.6)) return [];
    const out: string[] = [];
    if (r.chance(0.6)) out.push(`--format=${r.pick(['table', 'list', 'json', 'csv'])}`);
    if (r.chance(0.3)) out.push(`--data=${r.pick(['bare', 'json', 'string'])}`);
    if (r.chance(0.15)) out.push('--bare');
    if (r.chance(0.2)) out.push('--no-headings');
    return out;
  }

  private columnsOption(table: string): string[] {
    const r = this.r;
    if (!r.chance(0.4)) return [];
    const cols = new Set<string>();
    for (let n = 1 + r.int(3); n > 0; n--) cols.add(r.chance(0.15) ? r.pick(['_uuid', 'nosuch']) : r.pick(Object.keys(COLUMNS[table])));
    return [`--columns=${[...cols].join(',')}`];
  }

  /** One command and the global options it would like (formats for list/find). */
  command(chained = false): { cmd: Command; globals: string[] } {
    const r = this.r;
    const may = (opt: string, p = 0.3): string[] => (r.chance(p) ? [opt] : []);
    const table = r.pick(TABLES);
    const k = r.int(100);
    // Bridges and ports first: they make the database the rest works on.
    if (k < 12) {
      if (r.chance(0.3)) {
        const parent = r.chance(0.8) ? r.pick(BRIDGES) : this.bridge();
        // Fake bridges are named from FAKES only, real ones never: if a real
        // bridge made with create (below) took a fake bridge's name, which of
        // the two ovs-vsctl sees would depend on the order of their uuids.
        return { cmd: [...may('--may-exist'), 'add-br', r.pick(FAKES), parent, r.chance(0.9) ? r.pick(VLANS) : r.pick(['4096', '-1', 'x'])], globals: [] };
      }
      if (r.chance(0.03)) return { cmd: ['add-br', 'br0', 'br1'], globals: [] };
      return { cmd: [...may('--may-exist'), 'add-br', r.chance(0.5) ? 'br0' : r.chance(0.8) ? r.pick(BRIDGES) : r.pick(['p1', 'e1', ''])], globals: [] };
    }
    if (k < 24) return { cmd: [...may('--may-exist', 0.2), 'add-port', this.bridge(), r.chance(0.03) ? '' : this.port(), ...this.settings('Port', 2)], globals: [] };
    if (k < 28) {
      const ifaces = [this.iface(), this.iface()];
      if (r.chance(0.3)) ifaces.push(this.iface());
      if (r.chance(0.05)) ifaces.length = 1;
      return { cmd: [...may('--may-exist', 0.2), ...may('--fake-iface', 0.2), 'add-bond', this.bridge(), this.port(), ...ifaces, ...this.settings('Port', 1)], globals: [] };
    }
    if (k < 31) return { cmd: [...may('--if-exists'), 'del-br', this.bridge()], globals: [] };
    if (k < 36) {
      const words = r.chance(0.5) ? [this.bridge(), this.port()] : [r.chance(0.8) ? this.port() : this.iface()];
      return { cmd: [...may('--if-exists'), ...may('--with-iface'), 'del-port', ...words], globals: [] };
    }
    if (k < 39) return { cmd: [...(r.chance(0.2) ? [r.pick(['--real', '--fake'])] : []), 'list-br'], globals: [] };
    if (k < 41) return { cmd: [r.pick(['br-exists', 'br-to-vlan', 'br-to-parent']), this.bridge()], globals: [] };
    if (k < 43) return { cmd: ['br-set-external-id', this.bridge(), this.key().replace(/"/g, ''), ...(r.chance(0.7) ? [this.value().replace(/"/g, '')] : [])], globals: [] };
    if (k < 45) return { cmd: ['br-get-external-id', this.bridge(), ...(r.chance(0.5) ? [this.key().replace(/"/g, '')] : [])], globals: [] };
    if (k < 48) return { cmd: [r.pick(['list-ports', 'list-ifaces']), this.bridge()], globals: [] };
    if (k < 50) return { cmd: ['port-to-br', this.port()], globals: [] };
    if (k < 52) return { cmd: ['iface-to-br', this.iface()], globals: [] };
    if (k < 58) {
      const cols: string[] = [];
      for (let n = 1 + r.int(2); n > 0; n--) {
        const c = this.column(table);
        cols.push(MAP_COLUMNS.has(c) && r.chance(0.6) ? `${c}:${this.key()}` : r.chance(0.05) ? '_uuid' : c);
      }
      return { cmd: [...may('--if-exists', 0.2), 'get', this.tableName(table), this.record(table), ...cols], globals: [] };
    }
    if (k < 66) return { cmd: [...may('--if-exists', 0.1), 'set', this.tableName(table), this.record(table), this.setting(table), ...this.settings(table, 1)], globals: [] };
    if (k < 70) return { cmd: this.addRemove(), globals: [] };
    if (k < 72) {
      const cols = [this.column(table)];
      if (r.chance(0.3)) cols.push(this.column(table));
      return { cmd: [...may('--if-exists', 0.1), 'clear', this.tableName(table), this.record(table), ...cols], globals: [] };
    }
    if (k < 78) {
      const recs = r.chance(0.4) ? [this.record(table)] : [];
      if (recs.length && r.chance(0.3)) recs.push(this.record(table));
      return { cmd: [...(recs.length ? may('--if-exists', 0.2) : []), ...this.columnsOption(table), 'list', this.tableName(table), ...recs], globals: this.formatOptions() };
    }
    if (k < 83) {
      const conds = [r.pick(CONDITIONS[table])];
      if (r.chance(0.2)) conds.push(r.pick(CONDITIONS[table]));
      return { cmd: [...this.columnsOption(table), 'find', this.tableName(table), ...conds], globals: this.formatOptions() };
    }
    if (k < 89) return this.createDestroy();
    if (k < 92) return { cmd: this.controllerOrFailMode(), globals: [] };
    if (k < 94 || chained) return { cmd: [r.chance(0.8) ? 'show' : 'init'], globals: [] };
    return { cmd: this.mistake(), globals: [] };
  }

  private addRemove(): Command {
    const r = this.r;
    const add = r.chance(0.5);
    const verb = add ? 'add' : 'remove';
    const choice = r.int(8);
    switch (choice) {
      case 0:
        return [verb, 'Port', this.port(), 'trunks', ...(add ? ['1', '2'] : ['1'])];
      case 1:
        return [verb, 'Bridge', this.bridge(), 'external_ids', add ? `${this.key()}=${this.value()}` : r.pick([this.key(), `${this.key()}=${this.value()}`])];
      case 2:
        return [verb, 'Port', this.port(), 'tag', r.pick(['5', '6'])];
      case 3:
        return [verb, 'Bridge', this.bridge(), 'flood_vlans', r.pick(['3', '4096', 'x'])];
      case 4:
        return [verb, 'Interface', this.iface(), 'options', add ? `peer=${this.iface()}` : 'peer'];
      case 5:
        return [verb, 'Bridge', this.bridge(), 'name', 'x'];
      case 6:
        return [verb, 'Open_vSwitch', '.', 'other_config', `${this.key()}=${this.value()}`];
      default:
        return [verb, 'Port', this.port(), r.pick(['trunks', 'nosuch', 'tag']), ...(r.chance(0.5) ? [] : ['x'])];
    }
  }

  private createDestroy(): { cmd: Command; globals: string[] } {
    const r = this.r;
    const port = this.port();
    switch (r.int(10)) {
      case 0:
        return { cmd: ['--id=@q', 'create', 'QoS', `type=${r.pick(['linux-htb', 'linux-hfsc'])}`, 'other_config:max-rate=1000', '--', 'set', 'Port', port, 'qos=@q'], globals: [] };
      case 1:
        return {
          cmd: ['--id=@q0', 'create', 'Queue', `dscp=${r.pick(['1', '2'])}`, '--', '--id=@q', 'create', 'QoS', 'type=linux-htb', 'queues:0=@q0', '--', 'set', 'Port', port, 'qos=@q'],
          globals: [],
        };
      case 2:
        return { cmd: ['create', r.pick(['Queue', 'QoS']), ...this.settings(r.pick(['Queue', 'QoS']), 1)], globals: [] };
      case 3:
        return { cmd: ['create', 'Bridge', `name=${r.pick(BRIDGES)}`], globals: [] };
      case 4:
        return { cmd: ['--id=@b', 'create', 'Bridge', `name=${r.pick(BRIDGES)}`, '--', 'add', 'Open_vSwitch', '.', 'bridges', '@b'], globals: [] };
      case 5:
        return { cmd: [...(r.chance(0.3) ? ['--if-exists'] : []), 'destroy', r.pick(['QoS', 'Bridge', 'Port']), r.pick([port, this.bridge()])], globals: [] };
      case 6:
        return { cmd: ['--all', 'destroy', r.pick(['Queue', 'QoS'])], globals: [] };
      case 7:
        return { cmd: ['create', r.pick(['Nosuch', 'Port']), 'name=x'], globals: [] };
      case 8:
        // A bridge taken out of Open_vSwitch (the server then drops it and all it holds).
        return { cmd: ['--id=@b', 'get', 'Bridge', this.bridge(), '--', 'remove', 'Open_vSwitch', '.', 'bridges', '@b'], globals: [] };
      default:
        return { cmd: ['--id=@x', 'create', 'Queue', 'dscp=3', '--', 'set', 'QoS', port, 'queues:1=@x'], globals: [] };
    }
  }

  private controllerOrFailMode(): Command {
    const r = this.r;
    const br = this.bridge();
    return r.pick<Command>([
      ['set-fail-mode', br, r.pick(['secure', 'standalone', 'bogus'])],
      ['get-fail-mode', br],
      ['del-fail-mode', br],
      ['set-controller', br, 'tcp:127.0.0.1:6653'],
      ['--inactivity-probe=5000', 'set-controller', br, 'tcp:127.0.0.1:6653', 'ptcp:6654'],
      ['get-controller', br],
      ['del-controller', br],
      ['set-manager', 'ptcp:6640', ...(r.chance(0.5) ? ['tcp:127.0.0.1:6641'] : [])],
      ['get-manager'],
      ['del-manager'],
      ['comment', 'a', 'b'],
    ]);
  }

  private mistake(): Command {
    return this.r.pick<Command>([
      ['frob'],
      ['add-br'],
      ['list-br', 'extra'],
      ['del-port'],
      ['get', 'Bridge'],
      ['add-port', 'br0'],
      ['--may-exist', 'del-br', 'br0'],
      ['--frob', 'list-br'],
      ['br-set-external-id', 'br0'],
      ['set', 'Bridge', 'br0'],
      ['destroy', 'QoS'],
      ['--all', '--if-exists', 'destroy', 'QoS'],
      ['--all', 'destroy', 'QoS', 'p1'],
      ['--if-exists', '--id=@x', 'get', 'Bridge', 'br0'],
      ['--id=x', 'create', 'Queue'],
      ['get', 'Port', 'p1', 'tag:1'],
      ['set', 'Port', 'p1', 'tag'],
    ]);
  }

  /** A whole command line: --no-wait, maybe other global options, one to three commands joined by `--`. */
  commandLine(): { args: string[]; commands: Command[]; globals: string[] } {
    const r = this.r;
    // A unit is a command, or a few that only make sense together (create … -- set …).
    const units: Command[][] = [];
    const globals = new Set<string>(['--no-wait']);
    const n = r.chance(0.25) ? 2 + r.int(2) : 1;
    for (let i = 0; i < n; i++) {
      // (Outright mistakes, such as unknown commands, only alone: in a chain they would hide the rest.)
      const { cmd, globals: g } = this.command(n > 1);
      units.push(splitChain(cmd));
      for (const o of g) globals.add(o);
    }
    if (units.length > 1) {
      // ovs-vsctl prints the rows of list and find in its hash order, so they
      // are sorted before comparing; in a chain, the one table a line may
      // hold comes last, and --oneline puts each other command's output on
      // one line, so where each command's output starts is known. And the
      // table comes after no command that inserts rows: ovs-vsctl would
      // print those rows' provisional uuids, which never exist (the server
      // gives the rows others); nvs-vsctl prints the real ones.
      const table = units.find((u) => u.some(isTableCommand));
      // Some commands must end a chain (see endsChain); one at most.
      const ender = units.find((u) => u.some(endsChain));
      const rest = units.filter((u) => !u.some(isTableCommand) && !u.some(endsChain));
      units.splice(0, units.length, ...rest);
      if (ender) units.push(ender);
      else if (table && !rest.flat().some(insertsRows)) units.push(table);
    }
    const commands = units.flat();
    if ((commands.length > 1 && commands.some((c) => isTableCommand(c) || firstCommand(c) === 'show')) || r.chance(0.05)) globals.add('--oneline');
    if (r.chance(0.03)) globals.add('--dry-run');
    const g = [...globals];
    const args = [...g, ...commands.flatMap((c, i) => (i === 0 ? c : ['--', ...c]))];
    return { args, commands, globals: g };
  }
}

/** A command line split at each `--`. */
function splitChain(words: Command): Command[] {
  const out: Command[] = [[]];
  for (const w of words) {
    if (w === '--') out.push([]);
    else out[out.length - 1].push(w);
  }
  return out.filter((c) => c.length > 0);
}

/**
 * Commands after which ovs-vsctl's behaviour in the same transaction is an
 * accident of its IDL, so they end a chain:
 *  - destroy of a Bridge, Port or Interface row: OVS's IDL keeps showing a
 *    deleted row through the references to it (list-br still lists the
 *    bridge, --may-exist add-br finds it), and aborts (an assertion, exit
 *    134) on any later verify or write of it;
 *  - a Bridge row made with create and added to Open_vSwitch's bridges
 *    (which may duplicate a name): which of two same-named bridges the
 *    bridge commands then act on depends on the order of their uuids.
 */
function endsChain(cmd: Command): boolean {
  const name = firstCommand(cmd);
  const table = cmd[cmd.indexOf(name ?? '') + 1]?.toLowerCase() ?? '';
  if (name === 'destroy') return ['bri', 'bridge', 'port', 'por', 'interface', 'int'].includes(table);
  return name === 'add' && table === 'open_vswitch' && cmd.includes('bridges');
}

/** list and find print a table (which --oneline leaves as it is). */
function isTableCommand(cmd: Command): boolean {
  const name = firstCommand(cmd);
  return name === 'list' || name === 'find';
}

/** Commands that may insert rows. */
function insertsRows(cmd: Command): boolean {
  return ['add-br', 'add-port', 'add-bond', 'create', 'set-controller', 'set-manager'].includes(firstCommand(cmd) ?? '');
}

function shellQuote(args: readonly string[]): string {
  return args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** Un-escapes one line of --oneline output. */
function unOneline(line: string): string {
  return line.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
}

/**
 * What must match: stdout with labels for uuids, sorted where ovs-vsctl's
 * order is its hash order (per command, under --oneline); stderr with the
 * program name (and ovs-vsctl's log prefix on warnings) made the same.
 */
function normalise(r: Result, line: { commands: Command[]; globals: string[] }, labels: ReadonlyMap<string, string>[]): Result {
  const text = labelUuids(r.stdout, ...labels);
  let stdout: string;
  if (line.globals.includes('--oneline')) {
    const lines = text.split('\n');
    stdout = line.commands
      .map((cmd, i) => {
        const args = [...line.globals, ...cmd];
        if (isTableCommand(cmd)) return canonical(args, lines.slice(i).join('\n'));
        return JSON.stringify(canonical(args, unOneline(lines[i] ?? '(missing)')));
      })
      .join('\n');
  } else {
    stdout = canonical([...line.globals, ...line.commands[0]], text);
  }
  const stderr = normaliseStderr(labelUuids(r.stderr, ...labels));
  return { stdout, stderr, code: r.code };
}

const PREAMBLE: Command[] = [['init'], ['add-br', 'br0']];

function fixedLine(cmd: Command): { args: string[]; commands: Command[]; globals: string[] } {
  return { args: ['--no-wait', ...cmd], commands: [cmd], globals: ['--no-wait'] };
}

const sides: Side[] = [];

afterEach(async () => {
  await Promise.all(sides.splice(0).map(stopSide));
});

describe.skipIf(skipOvs)('nvs-vsctl and ovs-vsctl agree', () => {
  it.each(SEEDS)('on random command lines, seed %i', async (seed) => {
    // Each seed starts from two empty databases.
    const [ovsSide, nvsSide] = await Promise.all([startSide(), startSide()]);
    sides.push(ovsSide, nvsSide);
    const gen = new Generator(new Rng(seed));
    // Labels of the rows before the step too: output may name rows the step deleted.
    let ovsBefore = rowLabels(ovsSide.db);
    let nvsBefore = rowLabels(nvsSide.db);
    let succeeded = 0;
    for (let step = 0; step < STEPS; step++) {
      // Each seed starts with init, then a bridge: before the first commit
      // there is no Open_vSwitch row, and ovs-vsctl's list and find then
      // print the provisional uuid of the row it is about to insert, which
      // never exists (nvs-vsctl prints the real one): not a behaviour to copy.
      const line = step < PREAMBLE.length ? fixedLine(PREAMBLE[step]) : gen.commandLine();
      const [want, got] = await Promise.all([ovsVsctl(ovsSide, line.args), nvsVsctl(nvsSide, line.args)]);
      const ovsAfter = rowLabels(ovsSide.db);
      const nvsAfter = rowLabels(nvsSide.db);
      const where = `seed ${seed} step ${step}: vsctl ${shellQuote(line.args)}\n ovs-vsctl: ${JSON.stringify(want)}\n nvs-vsctl: ${JSON.stringify(got)}`;
      expect(normalise(got, line, [nvsAfter, nvsBefore]), where).toEqual(normalise(want, line, [ovsAfter, ovsBefore]));
      expect(dumpDatabase(nvsSide.db, nvsAfter), where).toBe(dumpDatabase(ovsSide.db, ovsAfter));
      if (want.code === 0) succeeded++;
      if (process.env.VSCTL_DIFF_TRACE) console.log(`seed ${seed} step ${step}: ${shellQuote(line.args)} => ${want.code} ${want.stderr.trim()}`);
      ovsBefore = ovsAfter;
      nvsBefore = nvsAfter;
    }
    // Useful only if a fair share of the lines succeeds, and a fair share fails.
    expect(succeeded).toBeGreaterThan(STEPS / 10);
    expect(succeeded).toBeLessThan(STEPS);
  });
});
