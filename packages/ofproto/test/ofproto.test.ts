// The bridge object: fail modes, port configuration errors, the LOCAL port.

import { describe, expect, test } from 'vitest';
import { addFlows, bridge, flowOf } from './helpers.ts';
import { BadPortConfigError } from '../src/errors.ts';
import { formatDumpFlows } from '../src/format.ts';
import { formatDpActions } from '../src/dpif.ts';

describe('fail mode', () => {
  test('standalone starts with priority=0,actions=NORMAL; secure with nothing; switching adds or removes it', () => {
    const { of } = bridge({ failMode: 'standalone' });
    expect(formatDumpFlows(of).map((l) => l.replace(/duration=[^,]*, /, ''))).toEqual([
      ' cookie=0x0, table=0, n_packets=0, n_bytes=0, idle_age=0, priority=0 actions=NORMAL',
    ]);
    expect(formatDpActions(of.xlate(flowOf('in_port=1,dl_dst=ff:ff:ff:ff:ff:ff')).actions)).toBe('2,3,4');
    of.setFailMode('secure');
    expect(of.dumpFlows()).toEqual([]);
    expect(formatDpActions(of.xlate(flowOf('in_port=1,dl_dst=ff:ff:ff:ff:ff:ff')).actions)).toBe('drop');
    addFlows(of, 'priority=5,actions=output:2');
    of.setFailMode('standalone');
    expect(of.dumpFlows().map((r) => r.match.priority)).toEqual([5, 0]);
  });
});

describe('ports', () => {
  test('bad port configurations are refused with a code and a message naming the port', () => {
    const { of } = bridge();
    const bad = [
      [{ ofport: 1, name: 'a' }, { ofport: 1, name: 'b' }],
      [{ ofport: 1, name: 'a', vlanMode: 'access' as const }],
      [{ ofport: 1, name: 'a', tag: 4096 }],
      [{ ofport: 1, name: 'a', trunks: [10, -1] }],
      [{ ofport: 0, name: 'a' }],
    ];
    for (const ports of bad) {
      let err: unknown;
      try {
        of.setPorts(ports);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(BadPortConfigError);
      expect((err as BadPortConfigError).code).toBe('OFPROTO_BAD_PORT_CONFIG');
      expect((err as Error).message).toMatch(/ofport|port a/);
    }
    // Nothing changed: the four default ports are still there.
    expect(of.ports.map((p) => p.ofport)).toEqual([1, 2, 3, 4]);
  });

  test('LOCAL is a port like the others, flooded last', () => {
    const { of } = bridge({ failMode: 'standalone', ports: [{ ofport: 1, name: 'p1' }, { ofport: 0xfffe, name: 'br0' }, { ofport: 2, name: 'p2' }] });
    expect(formatDpActions(of.xlate(flowOf('in_port=1,dl_dst=ff:ff:ff:ff:ff:ff')).actions)).toBe('2,100');
    expect(formatDpActions(of.xlate(flowOf('in_port=LOCAL,dl_dst=ff:ff:ff:ff:ff:ff')).actions)).toBe('1,2');
  });
});

test('a flow of the wrong size is refused with a code, not half-used', () => {
  const { of } = bridge();
  expect(() => of.xlate(new Uint32Array(3))).toThrow(expect.objectContaining({ code: 'OFPROTO_BAD_FLOW' }));
});
