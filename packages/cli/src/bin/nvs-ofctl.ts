#!/usr/bin/env node
// nvs-ofctl: see ../ofctl/main.ts.
import { runOfctl } from '../ofctl/main.ts';

process.exitCode = await runOfctl(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env });
