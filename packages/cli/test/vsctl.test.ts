// nvs-vsctl's parsers without a server: the command line (global options,
// command options, `--` chains) and the value notation, whose printer and
// parser must round-trip any value (property test).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { makeMap, makeSet, type ColumnType, type Datum } from '@nvs/ovsdb';
import { parseCommandLine } from '../src/vsctl/args.ts';
import { checkCommand } from '../src/vsctl/commands.ts';
import { VsctlError } from '../src/vsctl/errors.ts';
import { datumToBare, datumToString, parseAtomString, parseDatumString } from '../src/vsctl/notation.ts';

const noSymbols = (name: string): string => {
  throw new Error(`unexpected symbol ${name}`);
};

describe('command line', () => {
  it('reads global options, then commands separated by --, each with its own options', () => {
    const { global, commands } = parseCommandLine(
      ['--no-wait', '--timeout=5', '-f', 'table', '--may-exist', 'add-br', 'br0', '--', '--if-exists', 'del-port', 'p1', '--', 'list-br'],
      {},
    );
    expect(global).toMatchObject({ wait: false, timeout: 5, format: 'table', data: 'string', headings: true, db: 'unix:/run/nvs/db.sock' });
    expect(commands.map((c) => [c.name, c.args, Object.fromEntries(c.options)])).toEqual([
      ['add-br', ['br0'], { '--may-exist': true }],
      ['del-port', ['p1'], { '--if-exists': true }],
      ['list-br', [], {}],
    ]);
  });

  it('takes the run directory from --rundir, then NVS_RUNDIR; --db wins', () => {
    expect(parseCommandLine(['list-br'], { NVS_RUNDIR: '/tmp/r' }).global.db).toBe('unix:/tmp/r/db.sock');
    expect(parseCommandLine(['--rundir=/x', 'list-br'], { NVS_RUNDIR: '/tmp/r' }).global.db).toBe('unix:/x/db.sock');
    expect(parseCommandLine(['--db=tcp:127.0.0.1:6640', 'list-br'], {}).global.db).toBe('tcp:127.0.0.1:6640');
  });

  it('--bare means list format, bare data, no headings; a leading -- is allowed', () => {
    const { global, commands } = parseCommandLine(['--bare', '--', '--columns=name', 'list', 'Bridge'], {});
    expect(global).toMatchObject({ format: 'list', data: 'bare', headings: false });
    expect(commands[0].options.get('--columns')).toBe('name');
  });

  it('reads global options in order, as ovs-vsctl does: a later --format or --data overrides --bare', () => {
    expect(parseCommandLine(['--bare', '--format=table', 'list', 'Bridge'], {}).global).toMatchObject({ format: 'table', data: 'bare', headings: false });
    expect(parseCommandLine(['--format=table', '--bare', 'list', 'Bridge'], {}).global).toMatchObject({ format: 'list', data: 'bare', headings: false });
    expect(parseCommandLine(['--bare', '-d', 'json', 'list', 'Bridge'], {}).global).toMatchObject({ data: 'json' });
    // Command options before the first command, with their values; long options by unambiguous prefix.
    const { global, commands } = parseCommandLine(['--no-w', '--columns', 'name', 'list', 'Bridge'], {});
    expect(global.wait).toBe(false);
    expect(commands[0].options.get('--columns')).toBe('name');
  });

  it('refuses bad input with VSCTL_USAGE and a clear message', () => {
    const usage = (argv: string[]): string => {
      try {
        parseCommandLine(argv, {}).commands.forEach(checkCommand);
      } catch (err) {
        expect(err).toBeInstanceOf(VsctlError);
        expect((err as VsctlError).code).toBe('VSCTL_USAGE');
        return (err as Error).message;
      }
      throw new Error('expected an error');
    };
    expect(usage(['--frob', 'list-br'])).toBe("unrecognized option '--frob'");
    expect(usage(['-x', 'list-br'])).toBe("invalid option -- 'x'");
    expect(usage(['--db'])).toBe("option '--db' requires an argument");
    expect(usage(['--may-exist=1', 'add-br', 'br0'])).toBe("option '--may-exist' doesn't allow an argument");
    expect(usage(['--no-wait'])).toBe('missing command name (use --help for help)');
    expect(usage(['frob'])).toBe("unknown command 'frob'; use --help for help");
    expect(usage(['add-br'])).toBe("'add-br' command requires at least 1 arguments");
    expect(usage(['list-br', 'x'])).toBe("'list-br' command takes at most 0 arguments");
    expect(usage(['list-br', '--', 'del-br', 'x', '--if-exists'])).toBe('\'del-br\' command takes at most 1 arguments (note that options must precede command names and follow a "--" argument)');
    expect(usage(['--if-exists', 'add-br', 'br0'])).toBe("'add-br' command has no '--if-exists' option");
    expect(usage(['--', '--if-exists', '--if-exists', 'del-br', 'x'])).toBe("'--if-exists' option specified multiple times");
    expect(usage(['--', '--columns', 'list', 'Bridge'])).toBe("missing argument to '--columns' option on 'list' command");
    expect(usage(['--', '--may-exist=1', 'add-br', 'br0'])).toBe("'--may-exist' option on 'add-br' does not accept an argument");
    expect(usage(['--timeout=soon', 'list-br'])).toBe('value soon on -t or --timeout is invalid');
    expect(usage(['--timeout=0', 'list-br'])).toBe('value 0 on -t or --timeout is invalid');
    expect(usage(['--format=xml', 'list-br'])).toBe('unknown output format "xml"');
    expect(usage(['--format=TABLE', 'list-br'])).toBe('unknown output format "TABLE"');
  });
});

const STRING_SET: ColumnType = { key: { type: 'string' }, min: 0, max: Infinity };
const STRING_MAP: ColumnType = { key: { type: 'string' }, value: { type: 'string' }, min: 0, max: Infinity };
const INT_SET: ColumnType = { key: { type: 'integer' }, min: 0, max: Infinity };
const OPTIONAL_INT: ColumnType = { key: { type: 'integer', minInteger: 0, maxInteger: 4095 }, min: 0, max: 1 };

describe('value notation', () => {
  it('prints as ovs-vsctl does', () => {
    expect(datumToString(makeSet([]), OPTIONAL_INT)).toBe('[]');
    expect(datumToString(makeSet([10]), OPTIONAL_INT)).toBe('10');
    expect(datumToString(makeSet(['b', 'a']), STRING_SET)).toBe('[a, b]');
    expect(datumToString(makeMap([['attached-mac', '52:54:00:aa:bb:cc'], ['x', 'true'], ['y', '1a'], ['z', 'é']]), STRING_MAP)).toBe(
      '{attached-mac="52:54:00:aa:bb:cc", x="true", y="1a", z="é"}',
    );
    expect(datumToBare(makeMap([['a', 'b c']]), STRING_MAP)).toBe('a=b c');
  });

  it('parses sets, maps, ranges and quoted strings', () => {
    expect(parseDatumString('1,2, 10-12', INT_SET, noSymbols)).toEqual(makeSet([1, 2, 10, 11, 12]));
    expect(parseDatumString('[7 8]', INT_SET, noSymbols)).toEqual(makeSet([7, 8]));
    expect(parseDatumString('{a=1, "b c"="x y"}', STRING_MAP, noSymbols)).toEqual(makeMap([['a', '1'], ['b c', 'x y']]));
    expect(parseDatumString('[]', OPTIONAL_INT, noSymbols)).toEqual(makeSet([]));
    // After `column:key=` the whole text is one atom.
    expect(parseAtomString('a:b c', { type: 'string' }, noSymbols)).toBe('a:b c');
    expect(parseAtomString('"x\\"y"', { type: 'string' }, noSymbols)).toBe('x"y');
  });

  it("refuses bad values with ovs-vsctl's wording", () => {
    expect(() => parseDatumString('abc', OPTIONAL_INT, noSymbols)).toThrow('"abc" is not a valid integer or range');
    expect(() => parseDatumString('5000', OPTIONAL_INT, noSymbols)).toThrow('constraint violation: 5000 is not in the valid range 0 to 4095 (inclusive)');
    expect(() => parseDatumString('1,2', OPTIONAL_INT, noSymbols)).toThrow('1,2: 2 value(s) specified but the maximum number is 1');
    expect(() => parseDatumString('00:11', { key: { type: 'string' }, min: 0, max: 1 }, noSymbols)).toThrow('00:11: unexpected ":" parsing set of up to 1 strings');
    expect(() => parseDatumString('{a:b}', STRING_MAP, noSymbols)).toThrow('a:b}: syntax error at ":" expecting "="');
    expect(() => parseAtomString('"x"y', { type: 'string' }, noSymbols)).toThrow('"x"y: missing quote at end of quoted string');
  });

  it('reads back whatever it prints (strings of any content, integers)', () => {
    const str = fc.string({ unit: 'grapheme', maxLength: 12 });
    fc.assert(
      fc.property(fc.array(str, { maxLength: 6 }), fc.array(fc.tuple(str, str), { maxLength: 6 }), fc.array(fc.integer({ min: -1e9, max: 1e9 }), { maxLength: 6 }), (set, pairs, ints) => {
        const roundTrip = (d: Datum, t: ColumnType): void => expect(parseDatumString(datumToString(d, t), t, noSymbols)).toEqual(d);
        roundTrip(makeSet(set), STRING_SET);
        roundTrip(makeMap(pairs), STRING_MAP);
        roundTrip(makeSet(ints), INT_SET);
      }),
      { numRuns: 300 },
    );
  });
});
