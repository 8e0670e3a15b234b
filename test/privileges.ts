// The one place that decides about tests that need privileges: tap devices
// (root or CAP_NET_ADMIN, and /dev/net/tun) and network namespaces (`ip
// netns`). Without them such tests skip, saying why — unless
// NVS_REQUIRE_PRIVILEGED=1 (set by .ci/run), where CI must run everything it
// can: then a missing capability fails the test file instead.
//
//   const why = await privilegesMissing('test/e2e-tap: tap devices across namespaces');
//   describe.skipIf(why !== undefined)('…', () => { … });
import { spawnSync } from 'node:child_process';
import { tapUnavailable } from '@nvs/vswitchd';

/** Why tap devices and network namespaces cannot be made here, or undefined when they can. */
function whyUnprivileged(): string | undefined {
  const tap = tapUnavailable();
  if (tap) return tap;
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return r.status === 0 ? undefined : `ip netns does not work here: ${(r.stderr || r.error?.message || '').trim()}`;
}

/**
 * Undefined when the tests of `what` can run; otherwise the reason, logged,
 * for the caller to skip them — or, under NVS_REQUIRE_PRIVILEGED=1, an
 * error thrown, which fails the file.
 */
export function privilegesMissing(what: string): string | undefined {
  const why = whyUnprivileged();
  if (why === undefined) return undefined;
  if (process.env.NVS_REQUIRE_PRIVILEGED === '1') {
    throw new Error(`${what}: cannot run (${why}), and NVS_REQUIRE_PRIVILEGED=1 forbids skipping it`);
  }
  console.warn(`${what}: SKIPPED: ${why}`);
  return why;
}
