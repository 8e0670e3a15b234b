#!/usr/bin/env bash
# Installs what nvs and its tests need on Debian 12: apt peers, npm packages, the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  need=()
  for p in python3-venv openvswitch-common openvswitch-switch iproute2 iputils-ping tcpdump iperf3 ethtool qemu-system-x86 linux-image-amd64 busybox-static cpio build-essential pkg-config dpdk-dev redis-server redis-sentinel; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
  done
  if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
  fi
fi
# os-ken (OpenStack's OpenFlow controller framework) for test/e2e-osken: pinned, in a venv of Debian's Python.
OSKEN_VENV=${NVS_OSKEN_VENV:-/opt/nvs-osken}
if ! "$OSKEN_VENV/bin/python" -c 'import os_ken' >/dev/null 2>&1; then
  python3 -m venv "$OSKEN_VENV"
  "$OSKEN_VENV/bin/pip" install -q os-ken==4.2.2
fi
command -v cargo >/dev/null || { echo "setup: Rust (cargo) is required: https://rustup.rs" >&2; exit 1; }
if command -v rustup >/dev/null; then rustup component add rustfmt clippy >/dev/null 2>&1 || true; fi
npm ci --no-audit --no-fund
npm run build
