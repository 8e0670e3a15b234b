/**
 * What internal ports (Interface type `internal`, and so each bridge's LOCAL
 * port) open as: Linux tap devices named after the port when this process
 * may create them, otherwise in-memory dummy ports. Decided once at start-up,
 * with the reason, which nvs-vswitchd logs in one line.
 *
 * As in ovs-vswitchd, `--enable-dummy=override` turns every port into a
 * dummy port, internal ones included (scenario tests inject packets into
 * LOCAL with netdev-dummy/receive); plain `--enable-dummy` and
 * `--enable-dummy=system` leave internal ports real.
 */
import { closeSync, openSync, readFileSync } from 'node:fs';
import type { PortBackend } from './bridge.ts';

/** CAP_NET_ADMIN's bit in the capability sets of /proc/self/status. */
const CAP_NET_ADMIN = 12n;

export interface InternalPortsChoice {
  backend: PortBackend;
  /** Why, in words for the log. */
  reason: string;
}

/** Why this process cannot create tap devices, or undefined when it can. */
export function tapUnavailable(status = '/proc/self/status', tun = '/dev/net/tun'): string | undefined {
  let capEff: bigint | undefined;
  try {
    const line = readFileSync(status, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('CapEff:'));
    if (line) capEff = BigInt(`0x${line.slice('CapEff:'.length).trim()}`);
  } catch {
    // No /proc: fall back to the user id.
  }
  const admin = capEff !== undefined ? ((capEff >> CAP_NET_ADMIN) & 1n) === 1n : process.getuid?.() === 0;
  if (!admin) return 'this process lacks CAP_NET_ADMIN (run as root to get tap devices)';
  try {
    closeSync(openSync(tun, 'r+'));
  } catch (err) {
    return `${tun} cannot be opened (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
  }
  return undefined;
}

export function chooseInternalPorts(o: { dummyOverride: boolean; probe?: () => string | undefined }): InternalPortsChoice {
  if (o.dummyOverride) return { backend: 'dummy', reason: '--enable-dummy=override makes every port a dummy port' };
  const why = (o.probe ?? tapUnavailable)();
  if (why) return { backend: 'dummy', reason: why };
  return { backend: 'tap', reason: 'this process may create tap devices' };
}
