// Test support: nvs's own OvsdbServer holding the Open_vSwitch schema,
// listening on a unix socket in a temp directory, in the test's process.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Database } from '../../src/database.ts';
import { parseSchema } from '../../src/schema.ts';
import { OvsdbServer } from '../../src/server.ts';
import { SCHEMA } from './dbserver.ts';

export const VSWITCH_SCHEMA = JSON.parse(readFileSync(SCHEMA, 'utf8'));

/** Starts a server on `punix:<dir>/db.sock` in a new temp directory named after `prefix`. */
export async function startServer(prefix: string): Promise<{ dir: string; server: OvsdbServer }> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const server = new OvsdbServer({ log: pino({ level: 'silent' }) });
  server.addDatabase(new Database(parseSchema(VSWITCH_SCHEMA)));
  await server.listen(`punix:${join(dir, 'db.sock')}`);
  return { dir, server };
}

/** Closes the server and removes its directory. */
export async function stopServer(dir: string, server: OvsdbServer): Promise<void> {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
}
