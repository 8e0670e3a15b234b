#!/usr/bin/env bash
# The vhost-user loop's anchors (run by bench/vhost-loop.sh, or alone as root):
# testpmd's two net_virtio_user ports (mac forwarding, 64-byte frames) loop
# through a switch's two vhost-user ports and back.
#   MODE perfect      a second testpmd with two net_vhost ports in io mode: a wire, the ceiling here
#        ovs-flows    OVS-DPDK with in_port=1,actions=output:2 and back, one PMD core
#        ovs-normal   OVS-DPDK with NORMAL (learned unicast)
# usage: vhost-loop.sh MODE [SEED_BURSTS=32] [MEASURE_S=10]
# prints: RESULT mode=MODE total_mpps=N   (both directions through the switch)
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
MODE=${1:-perfect}; SEED=${2:-32}; MEAS=${3:-10}
D=$(mktemp -d /tmp/nvs-bench-vhanchor-XXXX)
NS=nbvh$$
MAC0=02:00:00:00:00:01; MAC1=02:00:00:00:00:02
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  [ -d "$D/sw" ] && bash "$HERE/switch.sh" stop "$D/sw"
  ip netns del $NS 2>/dev/null
  rm -rf /var/run/dpdk/nbvhg$$ /var/run/dpdk/nbvhs$$ /dev/hugepages/nbvh*$$map_* "$D"
}
trap cleanup EXIT
bash "$HERE/switch.sh" hugepages >/dev/null

case $MODE in
perfect)
  S0=$D/vh0.sock; S1=$D/vh1.sock
  timeout $((MEAS + 60)) dpdk-testpmd -l 0,1 --no-pci --file-prefix=nbvhs$$ -m 512 --single-file-segments \
    --vdev "net_vhost0,iface=$S0,queues=1" --vdev "net_vhost1,iface=$S1,queues=1" -- \
    --forward-mode=io --nb-cores=1 --stats-period 30 </dev/null >$D/switch.log 2>&1 &
  PIDS+=($!) ;;
ovs-flows | ovs-normal)
  # The switch in a namespace of its own: its bridge's tap device cannot clash with another switch on this host.
  ip netns add $NS
  NETNS=$NS bash "$HERE/switch.sh" start ovs-dpdk "$D/sw" dpdk-lcore-mask=0x1 pmd-cpu-mask=0x2 >/dev/null || exit 1
  V="ovs-vsctl --timeout=60 --db=unix:$D/sw/db.sock"
  $V add-br br0 -- set bridge br0 datapath_type=netdev \
     -- add-port br0 vh0 -- set Interface vh0 type=dpdkvhostuser ofport_request=1 \
     -- add-port br0 vh1 -- set Interface vh1 type=dpdkvhostuser ofport_request=2
  OFC=unix:$D/sw/br0.mgmt
  ovs-ofctl del-flows $OFC
  if [ $MODE = ovs-normal ]; then ovs-ofctl add-flow $OFC actions=NORMAL
  else ovs-ofctl add-flow $OFC in_port=1,actions=output:2; ovs-ofctl add-flow $OFC in_port=2,actions=output:1; fi
  S0=$D/sw/vh0; S1=$D/sw/vh1 ;;
*) echo "vhost-loop.sh: MODE is perfect, ovs-flows or ovs-normal" >&2; exit 2 ;;
esac
for _ in $(seq 100); do [ -S $S1 ] && break; sleep 0.1; done
# The generator: interactive testpmd driven through a pipe; two 'show port stats' MEAS s apart.
{ sleep 3; echo "start tx_first $SEED"; sleep 4; echo "show port stats all"; sleep $MEAS; echo "show port stats all"; echo stop; sleep 1; echo quit; } | \
timeout $((MEAS + 60)) dpdk-testpmd -l 0,1 --main-lcore 1 --no-pci --file-prefix=nbvhg$$ -m 512 --single-file-segments \
  --vdev "net_virtio_user0,path=$S0,queues=1,mac=$MAC0" --vdev "net_virtio_user1,path=$S1,queues=1,mac=$MAC1" -- \
  -i --forward-mode=mac --eth-peer=0,$MAC1 --eth-peer=1,$MAC0 --nb-cores=1 --txpkts=64 --burst=32 >$D/gen.log 2>&1
TOT=$(grep -E 'Rx-pps:' $D/gen.log | tail -2 | awk '{s += $2} END {printf "%.3f", s / 1e6}')
echo "RESULT mode=$MODE total_mpps=$TOT"
