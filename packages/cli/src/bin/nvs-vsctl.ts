#!/usr/bin/env node
// nvs-vsctl: configure nvs through its database, in the habits of ovs-vsctl.
// Kept to one import so the bundle starts fast.
import { runVsctl } from '../vsctl/main.ts';

process.exitCode = await runVsctl(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
});
