#!/usr/bin/env -S -u NODE_EXTRA_CA_CERTS node
// (nvs makes no TLS connections: without the variable, node does not load those certificates at start, about 75 ms on a machine that sets it.)
// nvs: see ../nvs/main.ts.
import { runNvs } from '../nvs/main.ts';

void runNvs(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env }).then((code) => {
  process.exitCode = code;
});
