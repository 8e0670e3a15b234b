// @nvs/jsonrpc: JSON-RPC 1.0 over a byte stream, as OVSDB (RFC 7047) and
// OVS's unixctl speak it — the framer that finds message boundaries, the
// connection that pairs requests with replies, and the error classes whose
// JSON an error reply carries. It knows nothing of databases or switches:
// the OVSDB client and server, the unixctl sockets and nvs-ofctl's
// management connection all sit on it.
//
//   import { JsonRpcConnection } from '@nvs/jsonrpc';
//   const conn = new JsonRpcConnection(net.connect('/run/nvs/db.sock'), { log });
//   const dbs = await conn.request('list_dbs', []);
export * from './errors.ts';
export * from './jsonrpc.ts';
