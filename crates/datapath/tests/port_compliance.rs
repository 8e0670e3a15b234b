//! The suite every port back end must pass (run here for `dummy`; vhost-user
//! and AF_XDP add themselves to `backends()` next round; `tap`, whose packets
//! come from the kernel, has its own kernel-side tests in `tests/tap.rs`).
//! It checks the contract written in `port.rs`: batches of at most `BURST`,
//! `tx_burst` consumes the whole batch, counters match what moved, bytes are
//! not changed.

use nvs_datapath::actions::{PacketBuf, HEADROOM};
use nvs_datapath::datapath::open_port;
use nvs_datapath::port::{Batch, Packet, Port, PortError, PortOptions, BURST};

/// A back end under test and how to open it. Packets are fed and collected
/// through the optional `inject`/`drain` abilities; a back end without them
/// will add its own feed/collect functions here.
struct Backend {
    name: &'static str,
    open: fn() -> Box<dyn Port>,
}

fn backends() -> Vec<Backend> {
    vec![Backend {
        name: "dummy",
        open: || open_port("dummy", "c0", &PortOptions::new()).unwrap(),
    }]
}

fn packet(n: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| n.wrapping_add(i as u8)).collect()
}

fn heap(bytes: &[u8]) -> Packet {
    PacketBuf::from_frame(
        vec![0; HEADROOM + bytes.len()].into_boxed_slice(),
        HEADROOM,
        bytes,
    )
    .unwrap()
}

#[test]
fn rx_is_batched_and_preserves_bytes() {
    for b in backends() {
        let mut port = (b.open)();
        let mut batch = Batch::new();
        assert_eq!(
            port.rx_burst(&mut batch).unwrap(),
            0,
            "{}: idle port gives nothing",
            b.name
        );
        let sent: Vec<Vec<u8>> = (0..BURST as u8 + 5)
            .map(|n| packet(n, 60 + n as usize))
            .collect();
        for p in &sent {
            port.inject(p).unwrap();
        }
        assert_eq!(
            port.rx_burst(&mut batch).unwrap(),
            BURST,
            "{}: a burst is at most BURST",
            b.name
        );
        assert_eq!(batch.len(), BURST);
        let mut got: Vec<Vec<u8>> = batch.pkts.iter().map(|p| p.data().to_vec()).collect();
        port.recycle(&mut batch);
        assert!(
            batch.is_empty(),
            "{}: recycle takes the packets back",
            b.name
        );
        assert_eq!(port.rx_burst(&mut batch).unwrap(), 5);
        got.extend(batch.pkts.iter().map(|p| p.data().to_vec()));
        assert_eq!(got, sent, "{}: bytes and order preserved", b.name);
        let s = port.stats();
        assert_eq!(s.rx_packets, sent.len() as u64);
        assert_eq!(s.rx_bytes, sent.iter().map(|p| p.len() as u64).sum::<u64>());
    }
}

#[test]
fn tx_consumes_the_batch_and_counts() {
    for b in backends() {
        let mut port = (b.open)();
        let sent: Vec<Vec<u8>> = (0..10u8).map(|n| packet(n, 64)).collect();
        let mut batch = Batch::new();
        batch.pkts.extend(sent.iter().map(|p| heap(p)));
        assert_eq!(port.tx_burst(&mut batch).unwrap(), 10);
        assert!(batch.is_empty(), "{}: tx_burst takes every packet", b.name);
        assert_eq!(port.drain(100).unwrap(), sent);
        let s = port.stats();
        assert_eq!((s.tx_packets, s.tx_bytes, s.tx_dropped), (10, 640, 0));
    }
}

#[test]
fn closed_port_moves_nothing() {
    for b in backends() {
        let mut port = (b.open)();
        port.close();
        let mut batch = Batch::new();
        batch.pkts.push(heap(&packet(1, 64)));
        assert_eq!(port.tx_burst(&mut batch).unwrap(), 0);
        assert!(batch.is_empty());
        assert_eq!(port.stats().tx_dropped, 1);
        assert_eq!(port.rx_burst(&mut batch).unwrap(), 0);
        assert!(matches!(
            port.inject(&packet(1, 64)),
            Err(PortError::Closed)
        ));
    }
}

#[test]
fn dummy_queues_are_bounded_and_loopback_returns_tx() {
    let mut opts = PortOptions::new();
    opts.insert("txq_len".into(), "4".into());
    let mut port = open_port("dummy", "bounded", &opts).unwrap();
    let mut batch = Batch::new();
    batch.pkts.extend((0..6u8).map(|n| heap(&packet(n, 64))));
    assert_eq!(port.tx_burst(&mut batch).unwrap(), 4);
    assert_eq!(port.stats().tx_dropped, 2);

    opts.clear();
    opts.insert("loopback".into(), "true".into());
    let mut lo = open_port("dummy", "lo", &opts).unwrap();
    batch.pkts.push(heap(&packet(7, 64)));
    lo.tx_burst(&mut batch).unwrap();
    assert_eq!(lo.rx_burst(&mut batch).unwrap(), 1);
    assert_eq!(batch.pkts[0].data(), &packet(7, 64)[..]);

    opts.insert("loopback".into(), "maybe".into());
    let err = open_port("dummy", "bad", &opts).err().unwrap();
    assert!(err.to_string().contains("true or false"), "{err}");
}
