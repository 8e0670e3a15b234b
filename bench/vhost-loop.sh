#!/bin/bash
# vhost-user loop: testpmd's two net_virtio_user ports (mac forwarding, 64-byte
# frames, 1,024 in flight after `start tx_first 32`, lcore 0) looping through
# a switch's two vhost-user ports, whose polling thread is pinned to core 1.
# Runs nvs with in_port → output flows and with NORMAL, alternating round by
# round with the anchors of /work/shared/anchors/vhost-loop.sh (OVS-DPDK
# flows and NORMAL, the testpmd wire), and prints the medians, the ratios,
# and each switch's cycles per packet (pmd-stats-show: nvs's over the
# measured window, OVS-DPDK's over its whole run).
#
# usage: bench/vhost-loop.sh [--rounds N] [--quick] [--json FILE] [--measure SECONDS]
#   (as root; needs dpdk-dev and hugepages, which it allocates if short)
#   --quick: one round of 3-second windows (each run still takes ~15 s to set up)
#   env NVS_BENCH_ROUNDS / NVS_BENCH_SECS: defaults that flags override
set -u
ROUNDS=${NVS_BENCH_ROUNDS:-3}; MEAS=${NVS_BENCH_SECS:-10}; JSON=
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --quick) ROUNDS=1; MEAS=3; shift ;;
    --json) JSON=$2; shift 2 ;;
    --measure) MEAS=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds N] [--quick] [--json FILE] [--measure SECONDS]" >&2; exit 2 ;;
  esac
done
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

# One anchor round: MODE as the anchor script takes it; prints "total_mpps cycles_per_packet".
anchor_round() {
  local W=$OUT/anchor-$1-$2 tot cyc
  WORK=$W bash "$ANCHOR" "$1" 32 "$MEAS" >$OUT/anchor-$1-$2.out 2>&1
  tot=$(awk -F'total_mpps=' '/RESULT/ {print $2}' $OUT/anchor-$1-$2.out)
  cyc=$(awk '/avg processing cycles per packet/ {print $6}' $W/run-vhost-$1/pmd-stats.txt 2>/dev/null)
  echo "${tot:-NA} ${cyc:-NA}"
}

median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "NA"; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

declare -A RES
LOAD0=$(cut -d' ' -f1 /proc/loadavg)
have_anchor=1; [ -f "$ANCHOR" ] || have_anchor=0
# Each round alternates nvs and the anchors: nvs flows, OVS flows, nvs NORMAL, OVS NORMAL, the wire.
for r in $(seq $ROUNDS); do
  for run in nvs-flows ovs-flows nvs-normal ovs-normal perfect; do
    case $run in
      nvs-*) read -r mpps cyc < <(nvs_round ${run#nvs-} $r) ;;
      *) if [ $have_anchor = 1 ]; then read -r mpps cyc < <(anchor_round $run $r); else mpps=NA; cyc=NA; fi ;;
    esac
    echo "round $r $run: $mpps Mpps, ${cyc} processing cycles/packet (load $(cut -d' ' -f1 /proc/loadavg))"
    RES[$run]+="$mpps "; RES[cyc-$run]+="$cyc "
  done
done
LOAD1=$(cut -d' ' -f1 /proc/loadavg)
med() { echo ${RES[$1]} | tr ' ' '\n' | grep -v NA | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "NA" || b == "NA" || b == 0) print "NA"; else printf "%.2f", a/b}'; }
F=$(med nvs-flows); N=$(med nvs-normal); OF=$(med ovs-flows); ON=$(med ovs-normal); W=$(med perfect)
CF=$(med cyc-nvs-flows); CN=$(med cyc-nvs-normal); COF=$(med cyc-ovs-flows); CON=$(med cyc-ovs-normal)
echo "median of $ROUNDS rounds (load average $LOAD0 -> $LOAD1), total Mpps through the switch (both directions):"
echo "  nvs flows  $F  ($CF cycles/packet)  vs OVS-DPDK $OF ($COF): $(ratio $F $OF)x   vs wire $W: $(ratio $F $W)x"
echo "  nvs NORMAL $N  ($CN cycles/packet)  vs OVS-DPDK $ON ($CON): $(ratio $N $ON)x"
echo "logs: $OUT"

# The bench contract's JSON: per-round values; a run that gave nothing is left out,
# an anchor with no value at all is "absent: why".
values() { # KEY ABSENT_WHY
  local v; v=$(echo ${RES[$1]} | tr ' ' '\n' | grep -v '^NA$' | paste -sd, -)
  if [ -n "$v" ]; then echo "[$v]"; else echo "\"absent: $2\""; fi
}
if [ -n "$JSON" ]; then
  why="the run gave no figure (see $OUT)"; [ $have_anchor = 1 ] || why="$ANCHOR not found"
  cat > "$JSON" <<JSON
{
  "scenario": "vhost-loop",
  "title": "testpmd's two virtio-user ports looping through the switch's vhost-user ports, 64-byte frames, 1,024 in flight",
  "rounds": $ROUNDS,
  "load": [$LOAD0, $LOAD1],
  "metrics": [
    { "name": "flows-mpps", "label": "in_port→output flows, total both directions", "unit": "Mpps", "better": "higher",
      "nvs": { "vhost": $(values nvs-flows "$why") },
      "anchors": { "ovs-dpdk": $(values ovs-flows "$why"), "testpmd-wire": $(values perfect "$why") },
      "goal": { "variant": "vhost", "anchor": "ovs-dpdk", "ratio": 1.25 } },
    { "name": "normal-mpps", "label": "NORMAL (MAC learning), total both directions", "unit": "Mpps", "better": "higher",
      "nvs": { "vhost": $(values nvs-normal "$why") },
      "anchors": { "ovs-dpdk": $(values ovs-normal "$why") },
      "goal": { "variant": "vhost", "anchor": "ovs-dpdk", "ratio": 1.3 } },
    { "name": "flows-cycles", "label": "processing cycles per packet (pmd-stats-show), flows", "unit": "cycles/packet", "better": "lower",
      "nvs": { "vhost": $(values cyc-nvs-flows "$why") },
      "anchors": { "ovs-dpdk": $(values cyc-ovs-flows "$why") } },
    { "name": "normal-cycles", "label": "processing cycles per packet (pmd-stats-show), NORMAL", "unit": "cycles/packet", "better": "lower",
      "nvs": { "vhost": $(values cyc-nvs-normal "$why") },
      "anchors": { "ovs-dpdk": $(values cyc-ovs-normal "$why") } }
  ]
}
JSON
  echo "json: $JSON"
fi
