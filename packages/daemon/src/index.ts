// @nvs/daemon: what every nvs daemon shares, in the habits of OVS's daemons —
// the run directory, pid files, `--detach`, logging with per-module levels
// (VLog, which `vlog/set` changes at run time), and the unixctl control
// socket: its server, which nvs-dbserver and nvs-vswitchd serve, and the
// client the nvs CLIs call it with. It sits on @nvs/jsonrpc and knows nothing
// of databases or switches.
//
//   import { parseDaemonArgs, startDaemon, UnixctlServer } from '@nvs/daemon';
//   const daemon = await startDaemon(parseDaemonArgs('nvs-x', process.argv.slice(2)).options);
//   const unixctl = new UnixctlServer({ path: `${daemon.options.rundir}/nvs-x.ctl`, log: daemon.vlog.logger('unixctl') });
export * from './daemon.ts';
export * from './unixctl.ts';
