// `show`: the overview ovs-vsctl prints — the Open_vSwitch row's uuid, then
// managers, bridges (with controllers and fail mode), ports (tag, trunks)
// and interfaces (type, options, error), nested by reference and sorted by
// name. A column is printed only when it differs from its default.
import { datumEquals, defaultDatum, type IdlRow, type IdlTables } from '@nvs/ovsdb';
import type { Context } from './context.ts';
import { datumToString } from './notation.ts';

interface ShowSpec {
  /** Column printed after the table name; none for Open_vSwitch (its uuid heads the output). */
  nameColumn?: string;
  /** Columns in print order; references to shown tables nest those rows. */
  columns: string[];
}

const SPECS: Record<string, ShowSpec> = {
  Open_vSwitch: { columns: ['manager_options', 'bridges', 'ovs_version'] },
  Bridge: { nameColumn: 'name', columns: ['controller', 'fail_mode', 'datapath_type', 'ports'] },
  Port: { nameColumn: 'name', columns: ['tag', 'trunks', 'interfaces'] },
  Interface: { nameColumn: 'name', columns: ['type', 'options', 'error'] },
  Controller: { nameColumn: 'target', columns: ['is_connected'] },
  Manager: { nameColumn: 'target', columns: ['is_connected'] },
};

/** The columns `show` reads, per table. */
export const SHOW_TABLES: IdlTables = Object.fromEntries(
  Object.entries(SPECS).map(([t, spec]) => [t, spec.nameColumn ? [spec.nameColumn, ...spec.columns] : spec.columns]),
);

function nameOf(row: IdlRow, spec: ShowSpec): string {
  return spec.nameColumn ? String(row.get(spec.nameColumn).keys[0] ?? '') : row.uuid;
}

export function show(ctx: Context): string {
  const lines: string[] = [ctx.ovs.uuid];
  showColumns(ctx, ctx.txn.get(ctx.ovs.table, ctx.ovs.uuid) ?? ctx.ovs, SPECS.Open_vSwitch, 0, lines);
  return lines.join('\n') + '\n';
}

function showColumns(ctx: Context, row: IdlRow, spec: ShowSpec, level: number, lines: string[]): void {
  const table = ctx.schema.tables.get(row.table)!;
  const indent = ' '.repeat(4 * (level + 1));
  for (const name of spec.columns) {
    const column = table.columns.get(name);
    if (!column) continue;
    const d = row.get(name);
    const refTable = column.type.key.refTable;
    const refSpec = refTable ? SPECS[refTable] : undefined;
    if (refTable && refSpec) {
      const rows = d.keys.map((u) => ctx.txn.get(refTable, u as string)).filter((r): r is IdlRow => r !== undefined);
      // Sort on names computed once: a switch may have thousands of ports.
      const keyed = rows.map((r) => ({ r, name: nameOf(r, refSpec) }));
      keyed.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      for (const { r } of keyed) {
        const rt = ctx.schema.tables.get(refTable)!;
        const label = refSpec.nameColumn ? datumToString(r.get(refSpec.nameColumn), rt.columns.get(refSpec.nameColumn)!.type) : r.uuid;
        lines.push(`${indent}${refTable} ${label}`);
        showColumns(ctx, r, refSpec, level + 1, lines);
      }
    } else if (!datumEquals(d, defaultDatum(column.type))) {
      lines.push(`${indent}${name}: ${datumToString(d, column.type)}`);
    }
  }
}
