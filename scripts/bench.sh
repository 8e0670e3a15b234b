#!/usr/bin/env bash
# Runs every benchmark: Criterion benches of the Rust datapath, then each bench/*.mjs
# (which run nvs and, where installed, the OVS anchor on the same scenario and print the ratio).
# Benchmarks print figures; none of them fails on a threshold.
set -euo pipefail
cd "$(dirname "$0")/.."
npm run build
# Only the Criterion targets: the library's own test harness does not take Criterion's options.
cargo bench -p nvs-datapath --bench '*' -- --warm-up-time 1 --measurement-time 3
for b in bench/*.mjs; do
  [ -e "$b" ] || continue
  echo "== $b"
  node "$b"
done
