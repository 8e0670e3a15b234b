// Online schema conversion (the `convert` method, `ovsdb-client convert`):
// a copy of a database under a new schema of the same name. Every row keeps
// its uuid; a column present in both schemas keeps its value, converted to
// the new type through its JSON form (so a value the new type or its
// constraints refuse fails the conversion); a new column takes its default;
// tables and columns the new schema drops are dropped. The copy is made as
// one transaction of inserts, so the new schema's rules (references,
// garbage collection of unreferenced non-root rows, indexes, maxRows) are
// checked as for any commit. The source database is not touched.
import { Database } from './database.ts';
import { datumToJson } from './datum.ts';
import { ConversionError, OvsdbSyntaxError } from './errors.ts';
import type { DatabaseSchema } from './schema.ts';
import { executeTransaction } from './transaction.ts';

/** The rows of `db` under `schema`, in a new Database; throws the OvsdbError that makes the conversion fail. */
export function convertDatabase(db: Database, schema: DatabaseSchema): Database {
  if (schema.name !== db.name) {
    throw new OvsdbSyntaxError(`new schema name (${schema.name}) does not match database name (${db.name})`, 'invalid parameters');
  }
  const ops: unknown[] = [];
  for (const [tname, table] of schema.tables) {
    const old = db.schema.tables.get(tname);
    if (!old) continue;
    const kept = table.userColumns.filter((c) => old.columns.has(c.name) && !c.name.startsWith('_'));
    for (const row of db.table(tname)!.values()) {
      const values: Record<string, unknown> = {};
      for (const c of kept) values[c.name] = datumToJson(row.values.get(c.name)!, old.columns.get(c.name)!.type);
      ops.push({ op: 'insert', table: tname, uuid: row.uuid, row: values });
    }
  }
  const out = new Database(schema);
  const outcome = executeTransaction(out, ops, { hasLock: () => false, now: Date.now(), started: Date.now() });
  if (outcome.kind !== 'done') throw new OvsdbSyntaxError('conversion blocked');
  const failed = outcome.results.find((r): r is { error: string; details?: string } => typeof r === 'object' && r !== null && 'error' in r);
  if (failed) throw new ConversionError(failed.error, failed.details ?? '');
  if (outcome.commit) out.apply(outcome.commit.changes, outcome.log);
  return out;
}
