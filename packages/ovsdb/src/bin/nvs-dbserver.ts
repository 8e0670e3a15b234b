#!/usr/bin/env -S -u NODE_EXTRA_CA_CERTS node
// (nvs makes no TLS connections: without the variable, node does not load those certificates at start, about 75 ms on a machine that sets it.)
// nvs-dbserver: the OVSDB server of nvs, a drop-in for ovsdb-server (see ../dbserver.ts).
import { main } from '../dbserver.ts';

void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
