// Renders the records of list/find (and any table of cells) in ovs-vsctl's
// layouts: `list` (`name<padded to 20>: value`, records separated by a blank
// line), `table` (aligned columns under a dashed rule), `csv`, `json`
// (`{"data":[...],"headings":[...]}`), and `--bare` (values only).
import type { ColumnType } from '@nvs/ovsdb/src/schema.ts';
import { datumToJson, type Datum } from '@nvs/ovsdb/src/datum.ts';
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
      return datumToBare(c.datum);
    case 'json':
      return JSON.stringify(datumToJson(c.datum, c.type));
  }
}

/** Renders rows of cells under `headings`; the result ends with a newline unless empty. */
export function renderTable(headings: string[], rows: Cell[][], style: OutputStyle): string {
  if (style.format === 'json') {
    const data = rows.map((r) => r.map((c) => datumToJson(c.datum, c.type)));
    return `${JSON.stringify({ data, headings })}\n`;
  }
  const text = rows.map((r) => r.map((c) => cellText(c, style.data)));
  if (style.format === 'list') {
    const records = text.map((r) => r.map((t, i) => (style.headings ? `${headings[i].padEnd(20)}: ${t}` : t)).join('\n') + '\n');
    return records.join('\n');
  }
  if (style.format === 'csv') {
    // A cell with a comma, quote or newline is quoted, its quotes doubled.
    const field = (t: string): string => (/[,"\n]/.test(t) ? `"${t.replace(/"/g, '""')}"` : t);
    const rowsText = style.headings ? [headings, ...text] : text;
    return rowsText.map((r) => r.map(field).join(',') + '\n').join('');
  }
  const lines: string[][] = [];
  if (style.headings) {
    lines.push(headings);
    lines.push(headings.map(() => ''));
  }
  lines.push(...text);
  const widths = headings.map((_, i) => Math.max(...lines.map((l) => l[i].length)));
  if (style.headings) lines[1] = widths.map((w) => '-'.repeat(w));
  // Every column is padded to its width except the last, as ovs-vsctl does.
  return lines.map((l) => l.map((t, i) => (i === l.length - 1 ? t : t.padEnd(widths[i]))).join(' ') + '\n').join('');
}
