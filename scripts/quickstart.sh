#!/usr/bin/env bash
# The README's first command: install everything, build, and run the switch with its demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/demo.sh
