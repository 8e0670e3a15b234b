// Test support: frames built byte by byte (no parser of ours involved), and
// datapaths that the tests open and close again.
import { Datapath } from '../src/index.ts';

/** Opens datapaths for a test file; `closeAll` (run it in afterEach) closes every one still open. */
export function datapathPool(): { open: (options?: Parameters<typeof Datapath.open>[0]) => Datapath; closeAll: () => void } {
  const opened: Datapath[] = [];
  return {
    open: (options = {}) => {
      const dp = Datapath.open(options);
      opened.push(dp);
      return dp;
    },
    closeAll: () => {
      for (const dp of opened.splice(0)) dp.close();
    },
  };
}

/** A 64-byte Ethernet/IPv4/UDP frame 10.0.0.1:`sport` → 10.0.0.2:53. */
export function udpFrame(sport: number): Buffer {
  const f = Buffer.alloc(64);
  Buffer.from([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]).copy(f, 0);
  f.writeUInt16BE(0x0800, 12);
  f[14] = 0x45;
  f.writeUInt16BE(50, 16);
  f[22] = 64;
  f[23] = 17;
  Buffer.from([10, 0, 0, 1, 10, 0, 0, 2]).copy(f, 26);
  f.writeUInt16BE(sport, 34);
  f.writeUInt16BE(53, 36);
  f.writeUInt16BE(30, 38);
  return f;
}

/** Polls `cond` until it returns a value (the polling thread works asynchronously). */
export async function eventually<T>(what: string, cond: () => T | undefined | false): Promise<T> {
  for (let i = 0; i < 20_000; i++) {
    const v = cond();
    if (v !== undefined && v !== false) return v;
    await new Promise((r) => setTimeout(r, 1));
  }
  throw new Error(`never happened: ${what}`);
}
