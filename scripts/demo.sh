#!/usr/bin/env bash
# Runs `nvs demo` from the build in dist/ (npm run build must have run):
# starts nvs-dbserver and nvs-vswitchd, builds a bridge on dummy ports, shows
# traffic crossing it, and stops them again. No root needed: unless
# NVS_RUNDIR is set, everything lives in a fresh temporary run directory.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f dist/nvs.js ]; then
  echo "demo: dist/nvs.js is missing: run 'bash scripts/setup.sh' (or 'npm run build') first" >&2
  exit 1
fi
rundir="${NVS_RUNDIR:-$(mktemp -d "${TMPDIR:-/tmp}/nvs-demo.XXXXXX")}"
exec node dist/nvs.js --rundir "$rundir" demo "$@"
