#!/usr/bin/env node
// nvs: see ../nvs/main.ts.
import { runNvs } from '../nvs/main.ts';

process.exitCode = await runNvs(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env });
