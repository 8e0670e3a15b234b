// nvs-vsctl's driver: parse the command line, connect, replicate the tables
// the commands need, run every command inside one transaction (rerun when a
// verified column changed or wait-until is not yet true), commit, then —
// unless --no-wait — wait until nvs-vswitchd reports the new configuration
// (Open_vSwitch.cur_cfg reaching the next_cfg this transaction bumped).
// Output is printed only once all of that succeeded, as ovs-vsctl does.
import { JsonRpcError } from '@nvs/jsonrpc';
import { ConnectFailedError, Idl, OvsdbClient, TransactionError, type Atom, type CommitResult, type IdlTables, type IdlTransaction } from '@nvs/ovsdb';
import { parseCommandLine, USAGE, type GlobalOptions } from './args.ts';
import { checkCommand } from './commands.ts';
import { Symbols, type Context } from './context.ts';
import { renderTable } from './output.ts';
import { VsctlError } from './errors.ts';

const DB = 'Open_vSwitch';
export const VERSION = '0.1.0';

export interface VsctlIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: NodeJS.ProcessEnv;
}

/** Runs one nvs-vsctl invocation; resolves with the exit status. Never throws. */
export async function runVsctl(argv: readonly string[], io: VsctlIo): Promise<number> {
  let client: OvsdbClient | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    const { global, commands } = parseCommandLine(argv, io.env);
    if (global.help) {
      io.stdout(USAGE);
      return 0;
    }
    if (global.version) {
      io.stdout(`nvs-vsctl (nvs) ${VERSION}\n`);
      return 0;
    }
    const specs = commands.map(checkCommand);
    const phase: Phase = { waitUntil: commands.some((c) => c.name === 'wait-until') };
    const warn = (m: string): void => io.stderr(`nvs-vsctl: ${m}\n`);
    const work = async (): Promise<string> => {
      client = await connect(global);
      const schema = await client.getSchema(DB);
      // next_cfg and cur_cfg for the wait; then what each command reads,
      // once each command's table and column names are found good.
      let tables: IdlTables = { [DB]: ['next_cfg', 'cur_cfg'] };
      for (let i = 0; i < commands.length; i++) tables = mergeTables(tables, specs[i].prerequisites(commands[i], schema, warn));
      const idl = await Idl.create(client, DB, tables, { schema });
      const build = (txn: IdlTransaction): CommandOutput[] => {
        const ovs = txn.first(DB) ?? txn.insert(DB);
        const ctx: Context = { txn, schema, symbols: new Symbols(), style: global, ovs, out: [], warn, hasTable: (t) => idl.has(t) };
        const outputs: CommandOutput[] = [];
        for (let i = 0; i < commands.length; i++) {
          ctx.out = [];
          ctx.table = undefined;
          specs[i].run(ctx, commands[i], i === commands.length - 1);
          outputs.push({ text: ctx.out, table: ctx.table });
        }
        ctx.symbols.check(warn);
        if (global.wait && !txn.isEmpty) txn.increment(txn.get(DB, ovs.uuid)!, 'next_cfg');
        txn.comment(`nvs-vsctl: nvs-vsctl ${argv.join(' ')}`);
        return outputs;
      };
      // --dry-run builds once over the replica and commits nothing.
      const { value: outputs, commit } = global.dryRun
        ? { value: build(idl.transaction()), commit: { status: 'unchanged', inserted: new Map<string, string>() } as CommitResult }
        : await idl.transact(build);
      const text = printOutputs(outputs, commit, global);
      if (global.wait && commit.incremented !== undefined) {
        const next = commit.incremented;
        const cur = (): number => idl.first(DB)?.number('cur_cfg') ?? 0;
        phase.waitingFor = { next, cur };
        while (cur() < next) await idl.waitForChange();
        // As ovs-vsctl does: point at interfaces nvs-vswitchd could not set up.
        if (idl.has('Interface')) {
          for (const uuid of commit.inserted.values()) {
            const iface = idl.get('Interface', uuid);
            const ofport = iface?.number('ofport');
            if (!iface || (ofport !== undefined && ofport !== -1)) continue;
            const error = iface.string('error');
            io.stderr(`nvs-vsctl: Error detected while setting up '${iface.string('name')}'${error ? `: ${error}` : ''}.  See nvs-vswitchd log for details.\n`);
          }
        }
      }
      return text;
    };
    const out = global.timeout ? await withTimeout(work(), global, phase, (t) => (timer = t)) : await work();
    io.stdout(out);
    return 0;
  } catch (err) {
    const { message, code } = describe(err);
    if (message) io.stderr(`nvs-vsctl: ${message}\n`);
    return code;
  } finally {
    if (timer) clearTimeout(timer);
    (client as OvsdbClient | undefined)?.close();
  }
}

/** What one command printed: text, or (list, find) a table. */
interface CommandOutput {
  text: Context['out'];
  table: Context['table'];
}

/**
 * The invocation's output, once committed (so rows it inserted print with
 * their real uuids): each command's text — on one line with --oneline —
 * or its table, which --oneline leaves as it is, as ovs-vsctl does.
 */
function printOutputs(outputs: CommandOutput[], commit: CommitResult, global: GlobalOptions): string {
  const real = (uuid: string): string => commit.inserted.get(uuid) ?? uuid;
  let first = true;
  return outputs
    .map(({ text, table }) => {
      if (table) {
        // References to rows this invocation inserted, by their real uuids.
        const realAtoms = (atoms: readonly Atom[] | undefined, t: string | undefined): Atom[] | undefined => atoms && (t === 'uuid' ? atoms.map((u) => real(u as string)) : [...atoms]);
        const rows = table.rows.map((row) => row.map((c) => ({ ...c, datum: { keys: realAtoms(c.datum.keys, c.type.key.type)!, values: realAtoms(c.datum.values, c.type.value?.type) } })));
        const out = renderTable(table.headings, rows, global, first);
        first = false;
        return out;
      }
      const t = text.map((p) => (typeof p === 'string' ? p : p(real))).join('');
      return global.oneline ? `${t.replace(/\n$/, '').replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}\n` : t;
    })
    .join('');
}

/** Connects; with --retry, keeps trying while the server is not there yet (the timeout bounds it). */
async function connect(global: GlobalOptions): Promise<OvsdbClient> {
  for (;;) {
    try {
      return await OvsdbClient.connect(global.db);
    } catch (err) {
      if (!global.retry || !(err instanceof ConnectFailedError)) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Union of two column selections ('all' wins). */
function mergeTables(a: IdlTables, b: IdlTables): IdlTables {
  const out: IdlTables = { ...a };
  for (const [t, cols] of Object.entries(b)) {
    const have = out[t];
    out[t] = have === 'all' || cols === 'all' ? 'all' : [...new Set([...(have ?? []), ...cols])];
  }
  return out;
}

/** What the invocation is waiting for, to say so on timeout. */
interface Phase {
  waitUntil: boolean;
  waitingFor?: { next: number; cur: () => number };
}

function withTimeout<T>(work: Promise<T>, global: GlobalOptions, phase: Phase, setTimer: (t: NodeJS.Timeout) => void): Promise<T> {
  const timeout = new Promise<never>((_, reject) => {
    setTimer(
      setTimeout(() => {
        const w = phase.waitingFor;
        const message = w
          ? `timed out after ${global.timeout} s waiting for nvs-vswitchd to apply the change (Open_vSwitch cur_cfg ${w.cur()}, next_cfg ${w.next}); the change is committed — is nvs-vswitchd running? (--no-wait skips this wait)`
          : phase.waitUntil
            ? `timed out after ${global.timeout} s: the wait-until condition did not become true`
            : `timed out after ${global.timeout} s talking to the database at ${global.db}`;
        reject(new VsctlError('VSCTL_TIMEOUT', message, 142));
      }, global.timeout! * 1000),
    );
  });
  return Promise.race([work, timeout]);
}

/** The message (without the program name) and exit status for anything thrown. */
function describe(err: unknown): { message: string; code: number } {
  if (err instanceof VsctlError) return { message: err.message, code: err.exitCode };
  if (err instanceof TransactionError) {
    // ovs-vsctl prints the server's error object as JSON.
    const obj = { ...(err.details !== undefined ? { details: err.details } : {}), error: err.rfcError, ...(err.syntax !== undefined ? { syntax: err.syntax } : {}) };
    return { message: `transaction error: ${JSON.stringify(obj)}`, code: 1 };
  }
  if (err instanceof JsonRpcError) return { message: err.message, code: 1 };
  return { message: `internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`, code: 1 };
}
