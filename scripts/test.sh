#!/usr/bin/env bash
# The whole default test run: Rust checks and tests, TypeScript type check, vitest.
# Tests against real OVS tools need Debian's openvswitch-common (installed by .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all --check
cargo clippy --workspace --all-targets --release -- -D warnings
cargo test --workspace --release
npm run build
npx tsc --noEmit -p tsconfig.json
npx vitest run
