// @nvs/cli: the nvs-* commands. Each command's program lives in its own
// directory (vsctl/, ofctl/, appctl/, nvs/) and its entry point in bin/,
// which esbuild bundles into dist/<name>.js for a fast start.
//
//   import { runVsctl } from '@nvs/cli';
//   const status = await runVsctl(['--no-wait', 'add-br', 'br0'], { stdout: (t) => out.push(t), stderr: (t) => err.push(t), env: process.env });
export { runVsctl, type VsctlIo } from './vsctl/main.ts';
