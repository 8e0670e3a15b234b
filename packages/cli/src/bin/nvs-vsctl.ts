#!/usr/bin/env -S -u NODE_EXTRA_CA_CERTS node
// (nvs makes no TLS connections: without the variable, node does not load those certificates at start, about 75 ms on a machine that sets it.)
// nvs-vsctl: configure nvs through its database, in the habits of ovs-vsctl.
// Kept to one import so the bundle starts fast.
import { runVsctl } from '../vsctl/main.ts';

void runVsctl(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
}).then((code) => {
  process.exitCode = code;
});
