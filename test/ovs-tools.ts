// The one place that decides about tests that run the real OVS tools
// (Debian's openvswitch-common, and openvswitch-switch for ovs-vswitchd):
// with NVS_SKIP_OVS=1 they are skipped on purpose, each saying so once;
// without it a missing tool fails them at once, naming the package to
// install, rather than letting them skip quietly. It imports nothing of
// ours, so package tests may use it too.
//
//   const skipOvs = needsOvs('ovsdb-tools', ['ovs-vsctl', 'ovsdb-client']);
//   describe.skipIf(skipOvs)('ovsdb-client against nvs-dbserver', () => { … });
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export type OvsTool = 'ovs-vsctl' | 'ovsdb-client' | 'ovsdb-tool' | 'ovsdb-server' | 'ovs-appctl' | 'ovs-ofctl' | 'ovs-vswitchd';

function onPath(tool: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, tool), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * Returns true when the tests of `what`, which run `tools`, are to be
 * skipped (NVS_SKIP_OVS=1, logged); otherwise throws when a tool is not
 * installed, which fails the test file, and returns false.
 */
export function needsOvs(what: string, tools: readonly OvsTool[]): boolean {
  if (process.env.NVS_SKIP_OVS === '1') {
    console.warn(`${what}: skipped on purpose (NVS_SKIP_OVS=1): these tests run ${tools.join(', ')}`);
    return true;
  }
  const missing = tools.filter((t) => !onPath(t));
  if (missing.length > 0) {
    const pkg = missing.includes('ovs-vswitchd') ? 'openvswitch-common openvswitch-switch' : 'openvswitch-common';
    throw new Error(`${what}: ${missing.join(', ')} not found on PATH (apt-get install ${pkg}), or set NVS_SKIP_OVS=1 to skip the tests that need the OVS tools`);
  }
  return false;
}
