#!/usr/bin/env bash
# The switches the benchmarks compare, started and stopped the same way
# (as root; every file of one switch lives under DIR):
#
#   switch.sh install                 apt packages of the anchors (OVS userspace and DPDK, DPDK's testpmd, iperf3, ethtool)
#   switch.sh hugepages [N]           N 2 MiB hugepages (default 1024) and a hugetlbfs mount at /dev/hugepages
#   switch.sh start KIND DIR [k=v…]   KIND: nvs | ovs (userspace, netdev datapath) | ovs-dpdk (OVS-DPDK, one PMD);
#                                     k=v pairs go into Open_vSwitch other_config before the switch starts.
#                                     Prints the environment a caller needs: DB, CTL (the switch's unixctl
#                                     socket), PID (the switch's), VSWITCHD (pid file). With NETNS=name
#                                     set, the switch daemon runs in that network namespace (its
#                                     bridge's tap devices then cannot clash with another switch's).
#   switch.sh stop DIR                stops what `start` started under DIR and removes DIR
#   switch.sh bridge-add NAME IF…     a Linux bridge NAME with the interfaces IF… (the kernel anchor)
#   switch.sh bridge-del NAME
#   switch.sh cleanup                 stops every switch started under /tmp/nvs-bench-* and removes the
#                                     namespaces and links the benches create (names starting with "nb")
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OVS_DPDK=/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk

wait_for() { # wait_for PATH TENTHS
  for _ in $(seq "$2"); do [ -S "$1" ] && return 0; sleep 0.1; done
  echo "switch.sh: $1 did not appear" >&2
  return 1
}

stop_dir() {
  local d=$1 f pid
  for f in "$d/vswitchd.pid" "$d/db.pid"; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -rf /var/run/dpdk/"$(basename "$d")" /dev/hugepages/"$(basename "$d")"map_* 2>/dev/null || true
  rm -rf "$d"
}

cmd=${1:-}
shift || true
case $cmd in
install)
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openvswitch-switch openvswitch-switch-dpdk dpdk dpdk-dev iperf3 ethtool iproute2 python3 ;;
hugepages)
  n=${1:-1024}
  [ "$(cat /proc/sys/vm/nr_hugepages)" -ge "$n" ] || echo "$n" > /proc/sys/vm/nr_hugepages
  mkdir -p /dev/hugepages
  mountpoint -q /dev/hugepages || mount -t hugetlbfs nodev /dev/hugepages
  grep -E 'HugePages_(Total|Free)' /proc/meminfo ;;
start)
  kind=$1 d=$2
  shift 2
  IN_NS=()
  [ -n "${NETNS:-}" ] && IN_NS=(ip netns exec "$NETNS")
  rm -rf "$d"
  mkdir -p "$d"
  # From here on a failure leaves nothing running.
  trap 'stop_dir "$d"' ERR
  case $kind in
  nvs)
    node "$ROOT/dist/nvs-dbserver.js" --rundir "$d" --detach --pidfile="$d/db.pid" --log-file="$d/db.log" --remote=punix:"$d/db.sock" "$d/conf.db" ;;
  ovs | ovs-dpdk)
    ovsdb-tool create "$d/conf.db" /usr/share/openvswitch/vswitch.ovsschema
    OVS_RUNDIR=$d OVS_LOGDIR=$d OVS_DBDIR=$d ovsdb-server "$d/conf.db" --remote=punix:"$d/db.sock" --pidfile="$d/db.pid" \
      --unixctl="$d/db.ctl" --log-file="$d/db.log" -vconsole:off --detach ;;
  *) echo "switch.sh: KIND is nvs, ovs or ovs-dpdk, not $kind" >&2; exit 2 ;;
  esac
  wait_for "$d/db.sock" 100
  V="ovs-vsctl --timeout=30 --db=unix:$d/db.sock"
  $V --no-wait init
  [ $# -gt 0 ] && $V --no-wait set Open_vSwitch . "${@/#/other_config:}"
  case $kind in
  nvs)
    "${IN_NS[@]}" node "$ROOT/dist/nvs-vswitchd.js" --rundir "$d" --detach --pidfile="$d/vswitchd.pid" --log-file="$d/vswitchd.log" \
      --unixctl="$d/vswitchd.ctl" unix:"$d/db.sock" ;;
  ovs)
    OVS_RUNDIR=$d OVS_LOGDIR=$d OVS_DBDIR=$d "${IN_NS[@]}" ovs-vswitchd unix:"$d/db.sock" --pidfile="$d/vswitchd.pid" \
      --unixctl="$d/vswitchd.ctl" --log-file="$d/vswitchd.log" -vconsole:off --detach ;;
  ovs-dpdk)
    [ -x $OVS_DPDK ] || { echo "switch.sh: $OVS_DPDK is not installed (switch.sh install)" >&2; exit 3; }
    $V --no-wait set Open_vSwitch . other_config:dpdk-init=true other_config:dpdk-socket-mem=512 \
      "other_config:dpdk-extra=--single-file-segments --no-pci --file-prefix=$(basename "$d")"
    OVS_RUNDIR=$d OVS_LOGDIR=$d OVS_DBDIR=$d "${IN_NS[@]}" $OVS_DPDK unix:"$d/db.sock" --pidfile="$d/vswitchd.pid" \
      --unixctl="$d/vswitchd.ctl" --log-file="$d/vswitchd.log" -vconsole:off --detach ;;
  esac
  wait_for "$d/vswitchd.ctl" 300
  echo "DB=unix:$d/db.sock"
  echo "CTL=$d/vswitchd.ctl"
  echo "PID=$(cat "$d/vswitchd.pid")"
  echo "VSWITCHD=$d/vswitchd.pid" ;;
stop)
  stop_dir "$1" ;;
bridge-add)
  name=$1
  shift
  ip link add "$name" type bridge
  for i in "$@"; do ip link set "$i" master "$name"; done
  ip link set "$name" up ;;
bridge-del)
  ip link del "$1" 2>/dev/null || true ;;
cleanup)
  for d in /tmp/nvs-bench-*/sw-*; do [ -d "$d" ] && stop_dir "$d"; done
  for n in $(ip netns list | awk '/^nb/ {print $1}'); do ip netns del "$n"; done
  for l in $(ip -o link show | awk -F': ' '$2 ~ /^nb/ {sub(/@.*/, "", $2); print $2}'); do ip link del "$l" 2>/dev/null || true; done ;;
*)
  sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
  exit 2 ;;
esac
