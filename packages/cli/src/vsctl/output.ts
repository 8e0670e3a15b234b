// Renders the records of list/find in ovs-vsctl's layouts: `list`
// (`name<padded to 20>: value`, records separated by a blank line), `table`
// (aligned columns under a dashed rule), `csv`, `json`
// (`{"data":[...],"headings":[...]}`), and `--bare` (values only). As in
// ovs-vsctl, a second table printed by the same invocation is set off from
// the first by a blank line (except in json).
import { datumToJson, type ColumnType, type Datum } from '@nvs/ovsdb';
import { datumToBare, datumToString } from './notation.ts';

export type TableFormat = 'list' | 'table' | 'csv' | 'json';
/** How a cell is written in list and table formats. */
export type DataFormat = 'string' | 'bare' | 'json';

export interface OutputStyle {
  format: TableFormat;
  data: DataFormat;
  headings: boolean;
}

/** One value to print, with the type that says how. */
export interface Cell {
  datum: Datum;
  type: ColumnType;
}

function cellText(c: Cell, data: DataFormat): string {
  switch (data) {
    case 'string':
      return datumToString(c.datum, c.type);
    case 'bare':
      return datumToBare(c.datum, c.type);
    case 'json':
      return JSON.stringify(datumToJson(c.datum, c.type));
  }
}

/** Renders rows of cells under `headings`; `first` says whether it is the invocation's first table. */
export function renderTable(headings: string[], rows: Cell[][], style: OutputStyle, first = true): string {
  if (style.format === 'json') {
    const data = rows.map((r) => r.map((c) => datumToJson(c.datum, c.type)));
    return `${JSON.stringify({ data, headings })}\n`;
  }
  const lead = first ? '' : '\n';
  const text = rows.map((r) => r.map((c) => cellText(c, style.data)));
  if (style.format === 'list') {
    const records = text.map((r) => r.map((t, i) => (style.headings ? `${headings[i].padEnd(20)}: ${t}` : t)).join('\n') + '\n');
    return lead + records.join('\n');
  }
  if (style.format === 'csv') {
    // A cell with a comma, quote or newline is quoted, its quotes doubled.
    const field = (t: string): string => (/[,"\n]/.test(t) ? `"${t.replace(/"/g, '""')}"` : t);
    const rowsText = style.headings ? [headings, ...text] : text;
    return lead + rowsText.map((r) => r.map(field).join(',') + '\n').join('');
  }
  const lines: string[][] = [];
  if (style.headings) {
    lines.push(headings);
    lines.push(headings.map(() => ''));
  }
  lines.push(...text);
  // Widths in bytes of UTF-8, as ovs-vsctl counts them.
  const widths = headings.map((_, i) => Math.max(0, ...lines.map((l) => Buffer.byteLength(l[i]))));
  if (style.headings) lines[1] = widths.map((w) => '-'.repeat(w));
  const pad = (t: string, w: number): string => t + ' '.repeat(Math.max(0, w - Buffer.byteLength(t)));
  // Columns padded to their width, and each line's trailing spaces dropped, as ovs-vsctl does.
  return lead + lines.map((l) => l.map((t, i) => pad(t, widths[i])).join(' ').replace(/ +$/, '') + '\n').join('');
}
