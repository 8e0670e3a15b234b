#!/usr/bin/env bash
# Runs `nvs demo` from the build in dist/ (npm run build must have run):
# starts nvs-dbserver and nvs-vswitchd, builds a bridge, shows traffic
# crossing it, and stops them again. As root the traffic is a ping between
# two network namespaces on tap ports; without root (or with --dummy), packets
# injected into dummy ports. Unless NVS_RUNDIR is set, everything lives in a
# fresh temporary run directory.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f dist/nvs.js ]; then
  echo "demo: dist/nvs.js is missing: run 'bash scripts/setup.sh' (or 'npm run build') first" >&2
  exit 1
fi
if [ -n "${NVS_RUNDIR:-}" ]; then
  exec node dist/nvs.js --rundir "$NVS_RUNDIR" demo "$@"
fi
rundir="$(mktemp -d "${TMPDIR:-/tmp}/nvs-demo.XXXXXX")"
# The temporary run directory goes when the demo ends, unless it was asked to keep nvs running.
case " $* " in *" --keep "*) ;; *) trap 'rm -rf "$rundir"' EXIT ;; esac
node dist/nvs.js --rundir "$rundir" demo "$@"
