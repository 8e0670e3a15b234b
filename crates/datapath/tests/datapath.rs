//! The whole fast path on dummy ports: misses, upcalls, flow put/modify/del,
//! stats, EMC invalidation, the bounded upcall queue, execute, port removal.

mod common;

use std::time::Duration;

use nvs_datapath::actions::Action;
use nvs_datapath::datapath::{Datapath, DatapathConfig, DpError, PutFlags};
use nvs_datapath::key::FlowKey;
use nvs_datapath::parse;
use nvs_datapath::port::PortOptions;
use nvs_datapath::upcall::{Upcall, UpcallReason};

/// A 64-byte Ethernet/IPv4/UDP frame from 10.0.0.1:`sport` to 10.0.0.2:53.
fn udp_frame(sport: u16) -> Vec<u8> {
    let mut f = vec![0u8; 64];
    f[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&50u16.to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&[10, 0, 0, 1]);
    ip[16..20].copy_from_slice(&[10, 0, 0, 2]);
    let udp = &mut f[34..42];
    udp[0..2].copy_from_slice(&sport.to_be_bytes());
    udp[2..4].copy_from_slice(&53u16.to_be_bytes());
    udp[4..6].copy_from_slice(&30u16.to_be_bytes());
    f
}

/// Waits for `cond` (the polling thread works asynchronously); panics only if it never comes.
fn eventually<T>(what: &str, cond: impl FnMut() -> Option<T>) -> T {
    common::eventually(what, Duration::from_secs(20), cond)
}

fn upcalls(dp: &Datapath, n: usize) -> Vec<Upcall> {
    let mut got = Vec::new();
    eventually("upcalls", || {
        got.extend(dp.recv_upcalls(64));
        (got.len() >= n).then_some(())
    });
    got
}

/// Mask: in_port, eth_type, nw_proto and tp_src exact.
fn mask() -> FlowKey {
    FlowKey {
        in_port: u32::MAX,
        eth_type: 0xffff,
        nw_proto: 0xff,
        tp_src: 0xffff,
        ..FlowKey::default()
    }
}

/// Installs a megaflow (under `mask()`) sending `pkt`'s flow from `in_port` out of `out`; returns its key.
fn put_output(dp: &Datapath, pkt: &[u8], in_port: u32, out: u32) -> FlowKey {
    let mut key = FlowKey::default();
    parse::extract(pkt, in_port, &mut key);
    dp.flow_put(
        &key,
        &mask(),
        Box::new([Action::Output(out)]),
        PutFlags::CREATE,
    )
    .unwrap();
    key
}

fn two_ports(threads: usize) -> (Datapath, u32, u32) {
    let dp = Datapath::new(&DatapathConfig {
        threads,
        ..DatapathConfig::default()
    })
    .unwrap();
    let p1 = dp.add_port("p1", "dummy", &PortOptions::new()).unwrap();
    let p2 = dp.add_port("p2", "dummy", &PortOptions::new()).unwrap();
    (dp, p1, p2)
}

#[test]
fn miss_upcall_put_hit_dump_del_miss() {
    let (dp, p1, p2) = two_ports(1);
    assert_eq!((p1, p2), (1, 2));
    let pkt = udp_frame(1000);

    dp.port_inject(p1, &[&pkt]).unwrap();
    let up = upcalls(&dp, 1).remove(0);
    assert_eq!(up.packet, pkt);
    assert_eq!(up.in_port, p1);
    assert_eq!(up.reason, UpcallReason::Miss);
    let mut key = FlowKey::default();
    parse::extract(&pkt, p1, &mut key);
    assert_eq!(up.key, key);

    dp.flow_put(
        &up.key,
        &mask(),
        Box::new([Action::Output(p2)]),
        PutFlags::CREATE,
    )
    .unwrap();
    assert!(matches!(
        dp.flow_put(
            &up.key,
            &mask(),
            Box::new([Action::Output(p2)]),
            PutFlags::CREATE
        ),
        Err(DpError::FlowExists)
    ));
    dp.port_inject(p1, &[&pkt, &pkt, &pkt]).unwrap();
    let out = eventually("3 packets out of p2", || {
        let s = dp.ports().into_iter().find(|p| p.no == p2).unwrap().stats;
        (s.tx_packets == 3).then(|| dp.port_drain(p2, 10).unwrap())
    });
    assert_eq!(out, vec![pkt.clone(); 3]);

    let dump = dp.flow_dump();
    assert_eq!(dump.len(), 1);
    assert_eq!(dump[0].stats.packets, 3);
    assert_eq!(dump[0].stats.bytes, 3 * pkt.len() as u64);
    assert!(dump[0].stats.used > 0);
    assert_eq!(&*dump[0].actions, &[Action::Output(p2)]);
    let t = &dp.stats().threads[0].stats;
    assert_eq!((t.misses, t.megaflow_hits, t.emc_hits), (1, 1, 2));

    let final_stats = dp.flow_del(&key, &mask()).unwrap();
    assert_eq!(final_stats.stats.packets, 3);
    assert!(dp.flow_dump().is_empty());
    dp.port_inject(p1, &[&pkt]).unwrap();
    assert_eq!(upcalls(&dp, 1)[0].reason, UpcallReason::Miss);
    assert_eq!(dp.port_drain(p2, 10).unwrap().len(), 0);
    assert!(matches!(
        dp.flow_del(&key, &mask()),
        Err(DpError::FlowNotFound)
    ));
}

#[test]
fn modify_invalidates_emc_and_keeps_stats() {
    let (dp, p1, p2) = two_ports(1);
    let p3 = dp.add_port("p3", "dummy", &PortOptions::new()).unwrap();
    let pkt = udp_frame(7);
    let key = put_output(&dp, &pkt, p1, p2);
    dp.port_inject(p1, &[&pkt, &pkt]).unwrap();
    eventually("2 out of p2", || {
        (dp.port_drain(p2, 10).unwrap().len() == 2).then_some(())
    });
    // The EMC now holds the flow; a modify must take effect on the very next packet.
    assert!(matches!(
        dp.flow_put(
            &key,
            &mask(),
            Box::new([Action::Output(p3)]),
            PutFlags::MODIFY
        ),
        Ok(())
    ));
    dp.port_inject(p1, &[&pkt]).unwrap();
    eventually("1 out of p3", || {
        (dp.port_drain(p3, 10).unwrap().len() == 1).then_some(())
    });
    assert_eq!(dp.port_drain(p2, 10).unwrap().len(), 0);
    let f = dp.flow_get(&key, &mask()).unwrap();
    assert_eq!(f.stats.packets, 3);
    assert_eq!(&*f.actions, &[Action::Output(p3)]);
    let mut other = key;
    other.tp_src = 8;
    assert!(matches!(
        dp.flow_put(&other, &mask(), Box::new([]), PutFlags::MODIFY),
        Err(DpError::FlowNotFound)
    ));
}

#[test]
fn full_upcall_queue_drops_and_counts() {
    let dp = Datapath::new(&DatapathConfig {
        threads: 1,
        upcall_queue_len: 4,
        ..DatapathConfig::default()
    })
    .unwrap();
    let p1 = dp.add_port("p1", "dummy", &PortOptions::new()).unwrap();
    let frames: Vec<Vec<u8>> = (0..10).map(udp_frame).collect();
    let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
    dp.port_inject(p1, &refs).unwrap();
    eventually("10 misses", || {
        (dp.stats().threads[0].stats.misses == 10).then_some(())
    });
    let stats = dp.stats();
    assert_eq!(stats.lost_upcalls, 6);
    assert_eq!(stats.threads[0].stats.lost_upcalls, 6);
    assert_eq!(stats.upcalls_queued, 4);
    let got = dp.recv_upcalls(100);
    assert_eq!(got.len(), 4);
    assert_eq!(got[0].packet, frames[0]);
}

#[test]
fn execute_outputs_and_userspace() {
    let (dp, p1, p2) = two_ports(0);
    let pkt = udp_frame(9);
    dp.execute(
        p1,
        &pkt,
        &[
            Action::Userspace(42),
            Action::Output(p2),
            Action::Output(p1),
        ],
    )
    .unwrap();
    assert_eq!(dp.port_drain(p2, 10).unwrap(), vec![pkt.clone()]);
    assert_eq!(dp.port_drain(p1, 10).unwrap(), vec![pkt.clone()]);
    let up = dp.recv_upcalls(10);
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].reason, UpcallReason::Userspace { cookie: 42 });
    assert!(matches!(
        dp.execute(99, &pkt, &[]),
        Err(DpError::NoSuchPort(99))
    ));
}

#[test]
fn ports_are_spread_and_reassigned() {
    let dp = Datapath::new(&DatapathConfig {
        threads: 2,
        ..DatapathConfig::default()
    })
    .unwrap();
    let a = dp.add_port("a", "dummy", &PortOptions::new()).unwrap();
    let b = dp.add_port("b", "dummy", &PortOptions::new()).unwrap();
    let c = dp.add_port("c", "dummy", &PortOptions::new()).unwrap();
    let threads: Vec<Vec<u32>> = dp.stats().threads.iter().map(|t| t.ports.clone()).collect();
    assert_eq!(threads, vec![vec![a, c], vec![b]]);
    dp.remove_port(a).unwrap();
    let threads: Vec<Vec<u32>> = dp.stats().threads.iter().map(|t| t.ports.clone()).collect();
    assert_eq!(threads, vec![vec![b], vec![c]]);
    assert!(matches!(
        dp.add_port("b", "dummy", &PortOptions::new()),
        Err(DpError::PortExists(_))
    ));
    assert_eq!(
        dp.add_port("d", "dummy", &PortOptions::new()).unwrap(),
        a,
        "lowest free number is reused"
    );
    assert_eq!(
        dp.add_port("x", "vhost", &PortOptions::new())
            .unwrap_err()
            .code(),
        "DP_PORT_UNKNOWN_TYPE"
    );
    let mut bad = PortOptions::new();
    bad.insert("colour".into(), "blue".into());
    assert_eq!(
        dp.add_port("y", "dummy", &bad).unwrap_err().code(),
        "DP_PORT_BAD_OPTION"
    );
    assert!(matches!(dp.remove_port(77), Err(DpError::NoSuchPort(77))));
    dp.close();
    assert!(matches!(
        dp.add_port("z", "dummy", &PortOptions::new()),
        Err(DpError::Closed)
    ));
}

#[test]
fn pinned_thread_forwards() {
    let dp = Datapath::new(&DatapathConfig {
        threads: 1,
        cores: vec![0],
        ..DatapathConfig::default()
    })
    .unwrap();
    assert_eq!(dp.stats().threads[0].core, Some(0));
    let p1 = dp.add_port("p1", "dummy", &PortOptions::new()).unwrap();
    let p2 = dp.add_port("p2", "dummy", &PortOptions::new()).unwrap();
    let pkt = udp_frame(1000);
    put_output(&dp, &pkt, p1, p2);
    dp.port_inject(p1, &[&pkt, &pkt]).unwrap();
    let mut out = Vec::new();
    eventually("two packets out of p2", || {
        out.extend(dp.port_drain(p2, 8).unwrap());
        (out.len() >= 2).then_some(())
    });
    assert_eq!(out, vec![pkt.clone(), pkt]);
    let bad = Datapath::new(&DatapathConfig {
        threads: 1,
        cores: vec![100_000],
        ..DatapathConfig::default()
    });
    assert_eq!(bad.err().unwrap().code(), "DP_PIN_FAILED");
}

/// A 64-byte Ethernet/IPv4/TCP frame 10.0.0.1:1000 → 10.0.0.2:80 with `flags`.
fn tcp_frame(flags: u8) -> Vec<u8> {
    let mut f = udp_frame(1000);
    f[16..18].copy_from_slice(&40u16.to_be_bytes());
    f[23] = 6;
    let tcp = &mut f[34..54];
    tcp[0..2].copy_from_slice(&1000u16.to_be_bytes());
    tcp[2..4].copy_from_slice(&80u16.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = flags;
    f
}

#[test]
fn stats_or_tcp_flags_and_zero_on_request() {
    let (dp, p1, p2) = two_ports(1);
    let mask = FlowKey {
        in_port: u32::MAX,
        eth_type: 0xffff,
        nw_proto: 0xff,
        ..FlowKey::default()
    };
    let mut key = FlowKey::default();
    parse::extract(&tcp_frame(0x02), p1, &mut key);
    assert_eq!(key.tcp_flags, 0x02);
    dp.flow_put(
        &key,
        &mask,
        Box::new([Action::Output(p2)]),
        PutFlags::CREATE,
    )
    .unwrap();
    dp.port_inject(p1, &[&tcp_frame(0x02), &tcp_frame(0x10), &tcp_frame(0x18)])
        .unwrap();
    eventually("3 out", || {
        (dp.flow_dump()[0].stats.packets == 3).then_some(())
    });
    assert_eq!(dp.flow_dump()[0].stats.tcp_flags, 0x02 | 0x10 | 0x18);
    let zero = PutFlags {
        zero_stats: true,
        ..PutFlags::MODIFY
    };
    dp.flow_put(&key, &mask, Box::new([Action::Output(p2)]), zero)
        .unwrap();
    assert_eq!(dp.flow_dump()[0].stats.packets, 0);
    assert_eq!(dp.port_drain(p2, 10).unwrap().len(), 3);
}

#[test]
fn batch_delete_reports_each_flow() {
    let (dp, p1, p2) = two_ports(2);
    let keys: Vec<FlowKey> = (0..3)
        .map(|i| {
            let mut k = FlowKey::default();
            parse::extract(&udp_frame(i), p1, &mut k);
            k
        })
        .collect();
    for k in &keys[..2] {
        dp.flow_put(k, &mask(), Box::new([Action::Output(p2)]), PutFlags::CREATE)
            .unwrap();
    }
    let batch: Vec<(FlowKey, FlowKey)> = keys.iter().map(|k| (*k, mask())).collect();
    let results = dp.flow_del_batch(&batch).unwrap();
    assert!(results[0].is_ok() && results[1].is_ok());
    assert!(matches!(results[2], Err(DpError::FlowNotFound)));
    assert!(dp.flow_dump().is_empty());
}

#[test]
fn batch_put_is_seen_by_the_next_packet_and_reports_each_flow() {
    use nvs_datapath::datapath::FlowPutOp;
    let (dp, p1, p2) = two_ports(2);
    let keys: Vec<FlowKey> = (0..40)
        .map(|i| {
            let mut k = FlowKey::default();
            parse::extract(&udp_frame(2000 + i), p1, &mut k);
            k
        })
        .collect();
    let op = |k: &FlowKey, flags| FlowPutOp {
        key: *k,
        mask: mask(),
        actions: Box::new([Action::Output(p2)]),
        flags,
    };
    let results = dp
        .flow_put_batch(keys.iter().map(|k| op(k, PutFlags::CREATE)))
        .unwrap();
    assert!(results.iter().all(Result::is_ok));
    // Again: every flow exists now; a modify of an absent flow fails.
    let mut absent = keys[0];
    absent.tp_src = 9;
    let again = dp
        .flow_put_batch([
            op(&keys[0], PutFlags::CREATE),
            op(&absent, PutFlags::MODIFY),
        ])
        .unwrap();
    assert!(matches!(again[0], Err(DpError::FlowExists)));
    assert!(matches!(again[1], Err(DpError::FlowNotFound)));
    // No waiting: packets injected right after the batch returned all hit.
    let frames: Vec<Vec<u8>> = (0..40).map(|i| udp_frame(2000 + i)).collect();
    let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    dp.port_inject(p1, &refs).unwrap();
    eventually("40 packets out of p2", || {
        let s = dp.ports().into_iter().find(|p| p.no == p2).unwrap().stats;
        (s.tx_packets == 40).then_some(())
    });
    assert!(dp.recv_upcalls(64).is_empty());
    let mut visited = 0;
    dp.flow_visit(|_, m, s| {
        assert_eq!(*m, mask());
        assert_eq!(s.packets, 1);
        visited += 1;
    });
    assert_eq!((visited, dp.flow_count()), (40, 40));
}

#[test]
fn batch_execute_sends_each_packet_and_reports_bad_ports() {
    let (dp, p1, p2) = two_ports(0);
    let a = udp_frame(1);
    let b = udp_frame(2);
    let out = [Action::Output(p2)];
    let results = dp
        .execute_batch([
            (p1, &a[..], &out[..]),
            (99, &b[..], &out[..]),
            (p1, &b[..], &out[..]),
        ])
        .unwrap();
    assert!(results[0].is_ok() && results[2].is_ok());
    assert!(matches!(results[1], Err(DpError::NoSuchPort(99))));
    assert_eq!(dp.port_drain(p2, 10).unwrap(), vec![a, b]);
}

#[test]
fn changing_the_cores_keeps_ports_flows_and_packets() {
    let (dp, p1, p2) = two_ports(1);
    let pkt = udp_frame(1000);
    put_output(&dp, &pkt, p1, p2);
    let tx = |dp: &Datapath| {
        dp.ports()
            .into_iter()
            .find(|p| p.no == p2)
            .unwrap()
            .stats
            .tx_packets
    };
    let many = vec![pkt.as_slice(); 50];

    // Packets injected just before the change go out, on whichever threads.
    dp.port_inject(p1, &many).unwrap();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cores: Vec<usize> = if cpus >= 2 {
        vec![0, 1]
    } else {
        // One core still changes the threads, but not their number.
        common::cannot_run(
            "two cores to pin two polling threads to",
            &format!("{cpus} available"),
        );
        vec![0]
    };
    dp.set_pmd_cores(&cores).unwrap();
    let s = dp.stats();
    let pinned: Vec<Option<usize>> = s.threads.iter().map(|t| t.core).collect();
    assert_eq!(pinned, cores.iter().map(|&c| Some(c)).collect::<Vec<_>>());
    let mut polled: Vec<u32> = s.threads.iter().flat_map(|t| t.ports.clone()).collect();
    polled.sort();
    assert_eq!(
        polled,
        vec![p1, p2],
        "every port is polled by one new thread"
    );
    dp.port_inject(p1, &many).unwrap();
    eventually("100 packets out of p2", || (tx(&dp) == 100).then_some(()));
    // The new threads had the flow from the start: no upcall, and the flow's counters went on.
    assert!(dp.recv_upcalls(64).is_empty());
    assert_eq!(
        dp.stats()
            .threads
            .iter()
            .map(|t| t.stats.misses)
            .sum::<u64>(),
        0
    );
    assert_eq!(dp.flow_dump()[0].stats.packets, 100);
    // Totals never go back: the old thread's counters are kept as retired.
    let s = dp.stats();
    let now: u64 = s.threads.iter().map(|t| t.stats.packets).sum();
    assert_eq!(s.retired.packets + now, 100);

    // A core that cannot be had leaves the running threads alone.
    assert_eq!(
        dp.set_pmd_cores(&[100_000]).unwrap_err().code(),
        "DP_PIN_FAILED"
    );
    assert_eq!(dp.stats().threads.len(), cores.len());
    dp.port_inject(p1, &[&pkt]).unwrap();
    eventually("101 packets out of p2", || (tx(&dp) == 101).then_some(()));

    // No cores: one unpinned thread polls everything.
    dp.set_pmd_cores(&[]).unwrap();
    let s = dp.stats();
    assert_eq!(s.threads.len(), 1);
    assert_eq!(s.threads[0].core, None);
    assert_eq!(s.threads[0].ports, vec![p1, p2]);
    dp.port_inject(p1, &[&pkt]).unwrap();
    eventually("102 packets out of p2", || (tx(&dp) == 102).then_some(()));
    dp.close();
    assert!(matches!(dp.set_pmd_cores(&[0]), Err(DpError::Closed)));
}

#[test]
fn a_port_takes_the_number_asked_for_when_it_is_free() {
    let (dp, p1, p2) = two_ports(0);
    let opts = Default::default();
    assert_eq!(dp.add_port_as("p20", "dummy", &opts, Some(20)).unwrap(), 20);
    // Taken, or 0 (never a port number): the lowest free number instead.
    let taken = dp.add_port_as("again20", "dummy", &opts, Some(20)).unwrap();
    assert!(![p1, p2, 20, 0].contains(&taken));
    assert_ne!(dp.add_port_as("zero", "dummy", &opts, Some(0)).unwrap(), 0);
    dp.remove_port(20).unwrap();
    assert_eq!(
        dp.add_port_as("p20b", "dummy", &opts, Some(20)).unwrap(),
        20
    );
}
