// @nvs/ovsdb: the OVSDB (RFC 7047) stack of nvs — JSON-RPC framing, the data
// model (schemas, atoms, sets, maps), the database engine and its durable
// store, the server behind nvs-dbserver, and the client + IDL used by
// nvs-vswitchd and nvs-vsctl.
//
//   import { JsonRpcConnection, parseSchema, parseDatum } from '@nvs/ovsdb';
//   const conn = new JsonRpcConnection(net.connect('/run/nvs/db.sock'), { log });
//   const dbs = await conn.request('list_dbs', []);
export * from './errors.ts';
export * from './schema.ts';
export * from './datum.ts';
export * from './client.ts';
export * from './idl.ts';
// The server side (nvs-dbserver): engine, storage, server.
export * from './database.ts';
export * from './condition.ts';
export * from './mutation.ts';
export * from './transaction.ts';
export * from './convert.ts';
export { Monitor, type MonitorVersion, type TableMonitor } from './monitor.ts';
export * from './storage.ts';
export * from './server.ts';
export * from './stream-journal.ts';
