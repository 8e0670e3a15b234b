#!/usr/bin/env node
// nvs-dbserver: the OVSDB server of nvs, a drop-in for ovsdb-server (see ../dbserver.ts).
import { main } from '../dbserver.ts';

process.exitCode = await main(process.argv.slice(2));
