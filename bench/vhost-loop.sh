#!/bin/bash
# vhost-user loop: testpmd's two net_virtio_user ports (mac forwarding, 64-byte
# frames, 1,024 in flight after `start tx_first 32`, lcore 0) looping through
# a switch's two vhost-user ports, whose polling thread is pinned to core 1.
# Runs nvs with in_port → output flows and with NORMAL, alternating round by
# round with the anchors of /work/shared/anchors/vhost-loop.sh (OVS-DPDK
# flows and NORMAL, the testpmd wire) when that script is there, and prints
# the medians, the ratios, and nvs's cycles per packet (pmd-stats-show).
#
# usage: bench/vhost-loop.sh [ROUNDS=3] [MEASURE_S=10]     (as root; needs dpdk-dev)
#        bench/vhost-loop.sh [--rounds N] [--quick] [--json FILE]   (the benchmark contract, bench/README.md)
set -u
JSON=; QUICK=; POS=()
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) ROUNDS_OPT=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --json) JSON=$2; shift 2 ;;
    *) POS+=("$1"); shift ;;
  esac
done
ROUNDS=${ROUNDS_OPT:-${POS[0]:-$([ -n "$QUICK" ] && echo 1 || echo 3)}}
MEAS=${POS[1]:-$([ -n "$QUICK" ] && echo 5 || echo 10)}
LOAD0=$(cut -d' ' -f1 /proc/loadavg)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ANCHOR=${NVS_ANCHORS:-$ROOT/bench/anchors}/vhost-loop.sh
OUT=$(mktemp -d /tmp/nvs-vhost-bench-XXXX)
MAC0=02:00:00:00:00:01; MAC1=02:00:00:00:00:02
# A bridge name of our own: its LOCAL port is a tap device, and the host is shared.
BR=vhb$$
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  rm -rf /var/run/dpdk/nvsbg /dev/hugepages/nvsbgmap_* 2>/dev/null
}
trap cleanup EXIT

if [ "$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)" -lt 512 ]; then
  echo 1024 > /proc/sys/vm/nr_hugepages
  mkdir -p /dev/hugepages; mountpoint -q /dev/hugepages || mount -t hugetlbfs nodev /dev/hugepages
fi

# One nvs round: MODE flows|normal; prints "total_mpps cycles_per_packet".
nvs_round() {
  local mode=$1 R=$OUT/nvs-$1-$2; mkdir -p $R
  local V="ovs-vsctl --db=unix:$R/db.sock --timeout=30"
  export NVS_RUNDIR=$R
  node $ROOT/dist/nvs-dbserver.js --rundir $R --pidfile --remote=punix:$R/db.sock $R/conf.db >$R/db.out 2>&1 &
  PIDS+=($!)
  for i in $(seq 100); do [ -S $R/db.sock ] && break; sleep 0.1; done
  $V --no-wait init
  $V --no-wait set Open_vSwitch . other_config:pmd-cpu-mask=0x2
  node $ROOT/dist/nvs-vswitchd.js --rundir $R --pidfile --enable-dummy --disable-system unix:$R/db.sock >$R/vswitchd.out 2>&1 &
  PIDS+=($!)
  for i in $(seq 100); do [ -S $R/nvs-vswitchd.ctl ] && break; sleep 0.1; done
  $V add-br $BR -- set bridge $BR datapath_type=netdev \
     -- add-port $BR vh0 -- set Interface vh0 type=dpdkvhostuser ofport_request=1 \
     -- add-port $BR vh1 -- set Interface vh1 type=dpdkvhostuser ofport_request=2
  local OFC="node $ROOT/dist/nvs-ofctl.js"
  $OFC del-flows $BR
  if [ $mode = normal ]; then $OFC add-flow $BR actions=NORMAL
  else $OFC add-flow $BR in_port=1,actions=output:2; $OFC add-flow $BR in_port=2,actions=output:1; fi
  { sleep 3; echo "start tx_first 32"; sleep 4; echo "show port stats all"
    node $ROOT/dist/nvs-appctl.js dpif-netdev/pmd-stats-clear >/dev/null
    sleep $MEAS; echo "show port stats all"
    node $ROOT/dist/nvs-appctl.js dpif-netdev/pmd-stats-show > $R/pmd-stats.txt
    echo stop; sleep 1; echo quit; } | \
  timeout $((MEAS+60)) dpdk-testpmd -l 0,1 --main-lcore 1 --no-pci --file-prefix=nvsbg -m 512 --single-file-segments \
    --vdev "net_virtio_user0,path=$R/vh0,queues=1,mac=$MAC0" --vdev "net_virtio_user1,path=$R/vh1,queues=1,mac=$MAC1" -- \
    -i --forward-mode=mac --eth-peer=0,$MAC1 --eth-peer=1,$MAC0 --nb-cores=1 --txpkts=64 --burst=32 >$R/gen.log 2>&1
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; PIDS=()
  local tot cyc
  tot=$(grep -E 'Rx-pps:' $R/gen.log | tail -2 | awk '{s+=$2} END {printf "%.3f", s/1e6}')
  cyc=$(awk '/avg processing cycles per packet/ {print $6}' $R/pmd-stats.txt)
  echo "$tot ${cyc:-NA}"
}

anchor_round() {
  [ -x "$ANCHOR" ] || [ -f "$ANCHOR" ] || { echo NA; return; }
  WORK=$OUT/anchor bash "$ANCHOR" "$1" 32 "$MEAS" 2>/dev/null | awk -F'total_mpps=' '/RESULT/ {print $2}'
}

median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "NA"; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

declare -A RES
for r in $(seq $ROUNDS); do
  for m in flows normal; do
    read -r mpps cyc < <(nvs_round $m $r)
    echo "round $r nvs-$m: $mpps Mpps, $cyc processing cycles/packet"
    RES[nvs-$m]+="$mpps "; RES[cyc-$m]+="$cyc "
  done
  for a in ovs-flows ovs-normal perfect; do
    v=$(anchor_round $a); v=${v:-NA}
    echo "round $r $a: $v Mpps"
    RES[$a]+="$v "
  done
done
med() { echo ${RES[$1]} | tr ' ' '\n' | grep -v NA | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "NA" || b == "NA" || b == 0) print "NA"; else printf "%.2f", a/b}'; }
F=$(med nvs-flows); N=$(med nvs-normal); OF=$(med ovs-flows); ON=$(med ovs-normal); W=$(med perfect)
echo "median of $ROUNDS rounds, total Mpps through the switch (both directions):"
echo "  nvs flows  $F  ($(med cyc-flows) cycles/packet)  vs OVS-DPDK $OF: $(ratio $F $OF)x   vs wire $W: $(ratio $F $W)x"
echo "  nvs NORMAL $N  ($(med cyc-normal) cycles/packet)  vs OVS-DPDK $ON: $(ratio $N $ON)x"
echo "logs: $OUT"

# The contract's JSON: per-round values; NA rounds left out; a system with none is absent.
if [ -n "$JSON" ]; then
  arr() { local v out=; for v in ${RES[$1]}; do [ "$v" = NA ] || [ -z "$v" ] || out+="${out:+,}$v"; done; [ -n "$out" ] && echo "[$out]" || echo "\"absent: $2\""; }
  WHY="no result (see the anchor's log; needs openvswitch-switch-dpdk and hugepages)"
  cat > "$JSON" <<EOF2
{"scenario": "vhost-loop", "title": "vhost-user loop: testpmd's two virtio-user ports through the switch and back, 64 B",
 "rounds": $ROUNDS, "quick": $([ -n "$QUICK" ] && echo true || echo false), "load": [$LOAD0, $(cut -d' ' -f1 /proc/loadavg)],
 "metrics": [
  {"name": "loop-flows", "label": "port-to-port flows, total both directions", "unit": "Mpps", "better": "higher",
   "nvs": {"vhost": $(arr nvs-flows "no result")}, "anchors": {"ovs-dpdk": $(arr ovs-flows "$WHY"), "testpmd wire": $(arr perfect "$WHY")},
   "goal": {"variant": "vhost", "anchor": "ovs-dpdk", "ratio": 1.25}},
  {"name": "loop-normal", "label": "NORMAL, total both directions", "unit": "Mpps", "better": "higher",
   "nvs": {"vhost": $(arr nvs-normal "no result")}, "anchors": {"ovs-dpdk": $(arr ovs-normal "$WHY")}},
  {"name": "cycles-flows", "label": "nvs processing cycles per packet, flows", "unit": "cycles", "better": "lower",
   "nvs": {"vhost": $(arr cyc-flows "no result")}, "anchors": {}}
 ]}
EOF2
fi
