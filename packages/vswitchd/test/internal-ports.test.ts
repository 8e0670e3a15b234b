// What internal ports open as: --enable-dummy=override keeps them dummy; otherwise
// taps when the process has CAP_NET_ADMIN and /dev/net/tun opens, with the reason
// when not. The Dpif opens internal ports with the chosen back end and
// reports a tap's MAC (as root; a non-root run checks the refusal instead).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { chooseInternalPorts, tapUnavailable } from '../src/internal-ports.ts';
import { NvsDpif } from '../src/dpif-nvs.ts';

const cleanup: Array<() => void> = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

function statusFile(capEff: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'nvs-caps-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'status');
  writeFileSync(path, `Name:\tnode\nCapInh:\t0000000000000000\nCapEff:\t${capEff}\nCapBnd:\t000001ffffffffff\n`);
  return path;
}

it('keeps internal ports dummy under --enable-dummy=override, whatever the privileges', () => {
  expect(chooseInternalPorts({ dummyOverride: true, probe: () => undefined })).toEqual({ backend: 'dummy', reason: '--enable-dummy=override makes every port a dummy port' });
  expect(chooseInternalPorts({ dummyOverride: false, probe: () => undefined }).backend).toBe('tap');
  expect(chooseInternalPorts({ dummyOverride: false, probe: () => 'no tun here' })).toEqual({ backend: 'dummy', reason: 'no tun here' });
});

it('needs CAP_NET_ADMIN and an openable /dev/net/tun', () => {
  // CapEff with every bit but 12 (CAP_NET_ADMIN) set.
  expect(tapUnavailable(statusFile('000001ffffffefff'), '/dev/null')).toContain('lacks CAP_NET_ADMIN');
  expect(tapUnavailable(statusFile('0000000000001000'), '/nonexistent/tun')).toMatch(/\/nonexistent\/tun cannot be opened \(ENOENT\)/);
  expect(tapUnavailable(statusFile('0000000000001000'), '/dev/null')).toBeUndefined();
});

it('opens internal ports as taps when told to, dummy ports stay dummy', () => {
  const dp = NvsDpif.open({ internalPorts: 'tap' });
  cleanup.push(() => dp.close());
  const name = `nvi${process.pid % 100000}`;
  const d = dp.addPort('d0', 'dummy');
  expect(dp.portDevice(d)).toEqual({ backend: 'dummy' });
  if (tapUnavailable()) {
    expect(() => dp.addPort(name, 'internal')).toThrow(expect.objectContaining({ code: 'DP_PORT_NO_PRIVILEGE' }));
    return;
  }
  const t = dp.addPort(name, 'internal');
  expect(dp.portDevice(t)).toEqual({ backend: 'tap', mac: expect.stringMatching(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/) });
  expect(() => dp.addPort('a-name-too-long-for-linux', 'internal')).toThrow(/at most 15 bytes/);
  expect(() => dp.inject(t, [Buffer.alloc(60)])).toThrow(/does not support inject/);
});
