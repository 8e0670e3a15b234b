#!/usr/bin/env node
// nvs-appctl: see ../appctl/main.ts.
import { runAppctl } from '../appctl/main.ts';

process.exitCode = await runAppctl(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env });
