#!/usr/bin/env bash
# Runs Open vSwitch's own test suites (tests/*.at of OVS v3.1.0, built with
# autoconf's autotest as OVS's `make check` does, by scripts/ovs-suites/run.sh)
# with nvs's daemons swapped in under OVS's names: `ovsdb-server` and
# `ovs-vswitchd` are links to dist/nvs-dbserver.js and dist/nvs-vswitchd.js,
# so the daemons see the OVS name and take OVS's directories and file names.
# The real ovs-vsctl, ovs-appctl, ovsdb-client, ovsdb-tool and ovs-ofctl
# drive them; ovs-ofctl add-flow(s)/del-flows go to nvs-ofctl (the rule
# syntax of every OpenFlow version, -O deciding what rules may use), every
# other ovs-ofctl command to the real one over nvs's OpenFlow wire.
#
# Usage: scripts/ovs-suites.sh [SUITE[:SET] ...]   (default: ovs-vsctl ovsdb-server)
#   SUITE as scripts/ovs-suites/run.sh takes it (ovs-vsctl, ovsdb-server,
#   ofproto-dpif, ofproto); its header lists the selections.
# Environment:
#   OVS_SUITE_SRC   OVS v3.1.0 source tree (required; see scripts/ovs-suites/run.sh
#                   for how to get it). Without it the script says so and exits 0:
#                   CI reaches no repository.
#   NVS_SUITE_REAL=1  run the real OVS daemons instead (the baseline)
#   NVS_SUITE_WIRE=1  no ovs-ofctl shim: the real ovs-ofctl talks OpenFlow to nvs
#                   (for ofproto:wire and ofproto-dpif:wire)
#   OVS_SUITE_JOBS  parallel jobs (default 1: these machines have 2 cores)
# Prints one `SUITE: N passed, M failed` line per suite; exits 1 if any failed.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
if [ -z "${OVS_SUITE_SRC:-}" ] || [ ! -f "${OVS_SUITE_SRC}/tests/ovs-vsctl.at" ]; then
  echo "ovs-suites: skipped: no OVS source tree (set OVS_SUITE_SRC to an unpacked openvswitch/ovs v3.1.0)"
  exit 0
fi
for b in nvs-dbserver nvs-vswitchd nvs-ofctl; do
  [ -f "dist/$b.js" ] || { echo "ovs-suites: dist/$b.js missing: run npm run build" >&2; exit 2; }
done
NAMES=$(mktemp -d /tmp/nvs-ovs-names.XXXXXX)
trap 'rm -rf "$NAMES"' EXIT
ln -s "$ROOT/dist/nvs-dbserver.js" "$NAMES/ovsdb-server"
ln -s "$ROOT/dist/nvs-vswitchd.js" "$NAMES/ovs-vswitchd"
ln -s "$ROOT/dist/nvs-ofctl.js" "$NAMES/ovs-ofctl"
if [ "${NVS_SUITE_REAL:-0}" != 1 ]; then
  export OVSDB_SERVER_CMD="$NAMES/ovsdb-server" OVS_VSWITCHD_CMD="$NAMES/ovs-vswitchd"
  # NVS_SUITE_WIRE=1: the real ovs-ofctl speaks OpenFlow to nvs for every command (no shim).
  [ "${NVS_SUITE_WIRE:-0}" = 1 ] || export OVS_OFCTL_SHIM_CMD="$NAMES/ovs-ofctl"
fi
export OVS_SUITE_JOBS=${OVS_SUITE_JOBS:-1}
[ $# -gt 0 ] || set -- ovs-vsctl ovsdb-server
status=0
summary=()
for suite in "$@"; do
  log=$(mktemp /tmp/nvs-ovs-suite.XXXXXX.log)
  OVS_SUITE_BUILD=${OVS_SUITE_BUILD_ROOT:-/tmp/nvs-ovs-suites}/${suite%%:*} \
    bash scripts/ovs-suites/run.sh "$suite" >"$log" 2>&1
  rc=$?
  [ $rc -eq 0 ] || status=1
  grep '^failed:' "$log"
  summary+=("$suite: $(tail -n 1 "$log")   (log: $log)")
done
printf '%s\n' "${summary[@]}"
exit $status
