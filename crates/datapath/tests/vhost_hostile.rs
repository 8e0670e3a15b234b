//! A hostile vhost-user front end: bad descriptors and bad messages. The
//! port must survive each (no crash, no access outside the guest's memory),
//! count it, say why, disable only the queue at fault — and serve the next
//! well-behaved front end that connects.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::eventually;
use common::vhost_front::{self, buf, Front, INDIRECT, NEXT, WRITE};
use nvs_datapath::frame::{copy_packet, Pool};
use nvs_datapath::port::{Batch, Port, PortOptions};
use nvs_datapath::ports::vhost_user::VhostUserPort;

const FEATURES: u64 = vhost_front::F_VERSION_1
    | vhost_front::F_MRG_RXBUF
    | vhost_front::F_PROTOCOL_FEATURES
    | vhost_front::F_INDIRECT;

fn open(tag: &str) -> (VhostUserPort, PathBuf) {
    let dir = std::env::temp_dir().join(format!("nvs-vhost-hostile-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sock");
    let mut opts = PortOptions::new();
    opts.insert("vhost-server-path".into(), path.to_str().unwrap().into());
    (VhostUserPort::open(tag, &opts).unwrap(), path)
}

fn packet(n: u8) -> Vec<u8> {
    let mut p = vec![0u8; 64];
    p[..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
    p[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    p[12..14].copy_from_slice(&[0x88, 0xb5]);
    p[14] = n;
    p
}

/// Polls `port` until one packet has arrived; returns it.
fn receive_one<P: Port + ?Sized>(port: &mut P, what: &str) -> Batch {
    let mut batch = Batch::new();
    eventually(what, Duration::from_secs(2), || {
        port.rx_burst(&mut batch).unwrap();
        (batch.len() == 1).then_some(())
    });
    batch
}

/// A fresh front end that behaves: one packet each way gets through.
fn well_behaved_front_end_works(port: &mut VhostUserPort, path: &Path) {
    let mut f = Front::connect(path);
    f.setup(FEATURES);
    f.send_packet(&packet(7));
    let mut batch = receive_one(port, "a packet from the good front end");
    assert_eq!(batch.pkts[0].data(), &packet(7)[..]);
    port.tx_burst(&mut batch).unwrap();
    assert_eq!(f.recv_packets(), vec![packet(7)]);
}

/// The guest tx ring broken by `bad`: the port counts it, says why, moves nothing from it.
fn tx_ring_case(tag: &str, why: &str, bad: impl FnOnce(&mut Front)) {
    let (mut port, path) = open(tag);
    {
        let mut f = Front::connect(&path);
        f.setup(FEATURES);
        bad(&mut f);
        let mut batch = Batch::new();
        let errors = port.stats().rx_errors;
        eventually(
            &format!("{tag}: the broken chain is counted"),
            Duration::from_secs(2),
            || {
                port.rx_burst(&mut batch).unwrap();
                (port.stats().rx_errors > errors).then_some(())
            },
        );
        assert!(batch.is_empty(), "{tag}: nothing taken from a bad chain");
        let err = port.last_error().unwrap();
        assert!(err.contains(why), "{tag}: {err}");
        assert_eq!(
            Port::error(&port),
            Some(err),
            "{tag}: Interface.error says it"
        );
        // The queue stays disabled: more packets on it are not taken.
        f.send_packet(&packet(1));
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(port.rx_burst(&mut batch).unwrap(), 0, "{tag}");
        // The guest rx queue still works.
        batch
            .pkts
            .push(copy_packet(&Pool::new(1, 2048).unwrap(), &packet(3)));
        port.tx_burst(&mut batch).unwrap();
        assert_eq!(
            f.recv_packets(),
            vec![packet(3)],
            "{tag}: the other queue goes on"
        );
    }
    // That front end is gone; the next one is served.
    well_behaved_front_end_works(&mut port, &path);
}

#[test]
fn bad_descriptors_disable_their_queue_only() {
    tx_ring_case("loop", "loops", |f| {
        f.set_desc(1, 0, buf(1, 0), 64, NEXT, 0);
        f.make_avail(1, 0);
    });
    tx_ring_case("outside", "outside the guest's memory", |f| {
        f.set_desc(1, 0, 1 << 40, 64, 0, 0);
        f.make_avail(1, 0);
    });
    tx_ring_case("wrap", "wraps the address space", |f| {
        f.set_desc(1, 0, u64::MAX - 8, 64, 0, 0);
        f.make_avail(1, 0);
    });
    tx_ring_case("index", "out of its table", |f| {
        f.set_desc(1, 0, buf(1, 0), 64, NEXT, 999);
        f.make_avail(1, 0);
    });
    tx_ring_case("nested", "indirect descriptor inside a chain", |f| {
        let table = buf(1, 10);
        f.write_desc(table, buf(1, 11), 16, INDIRECT, 0);
        f.set_desc(1, 0, table, 16, INDIRECT, 0);
        f.make_avail(1, 0);
    });
    tx_ring_case("indirect-len", "bad indirect table length", |f| {
        f.set_desc(1, 0, buf(1, 10), 17, INDIRECT, 0);
        f.make_avail(1, 0);
    });
    tx_ring_case("huge", "too long", |f| {
        // Two descriptors whose lengths together pass any packet (and u32).
        f.set_desc(1, 0, buf(1, 0), u32::MAX, NEXT, 1);
        f.set_desc(1, 1, buf(1, 1), u32::MAX, 0, 0);
        f.make_avail(1, 0);
    });
    tx_ring_case("writable", "device-writable buffer in a tx chain", |f| {
        f.set_desc(1, 0, buf(1, 0), 64, WRITE, 0);
        f.make_avail(1, 0);
    });
    tx_ring_case("avail-idx", "avail index ran ahead", |f| {
        f.set_avail_idx(1, 1000)
    });
}

#[test]
fn indirect_descriptors_carry_packets() {
    let (mut port, path) = open("indirect-ok");
    let mut f = Front::connect(&path);
    f.setup(FEATURES);
    // Header and packet in two buffers, named by an indirect table.
    let table = buf(1, 20);
    f.write(buf(1, 21), &[0u8; 12]);
    f.write(buf(1, 22), &packet(9));
    f.write_desc(table, buf(1, 21), 12, NEXT, 1);
    f.write_desc(table + 16, buf(1, 22), 64, 0, 0);
    f.set_desc(1, 0, table, 32, INDIRECT, 0);
    f.make_avail(1, 0);
    let batch = receive_one(&mut port, "the indirect packet");
    assert_eq!(batch.pkts[0].data(), &packet(9)[..]);
    assert_eq!(port.stats().rx_errors, 0);
}

#[test]
fn bad_messages_are_refused_and_counted() {
    let (mut port, path) = open("messages");
    {
        let mut f = Front::connect(&path);
        f.setup(FEATURES);
        let before = port.stats().rx_errors;
        // A queue size that is not a power of two; a vring that does not exist;
        // a short payload; an unknown request; a memory table larger than its file.
        f.send(8, 0, &[0, 0, 0, 0, 3, 0, 0, 0], &[]);
        f.send(8, 0, &[200, 0, 0, 0, 0, 1, 0, 0], &[]);
        f.send(9, 0, &[0, 0], &[]);
        f.send(99, 0, &[], &[]);
        let mut table = Front::mem_table_payload();
        table[16..24].copy_from_slice(&(1u64 << 40).to_le_bytes());
        let memfd = {
            // SAFETY: test code: a small memfd, closed when the test ends.
            let fd = unsafe { libc::memfd_create(c"small".as_ptr(), 0) };
            assert!(fd >= 0);
            fd
        };
        f.send(5, 0, &table, &[memfd]);
        // Features not offered, acknowledged as failed (REPLY_ACK asked for by flag).
        f.barrier();
        assert_eq!(
            port.stats().rx_errors,
            before + 5,
            "{:?}",
            port.last_error()
        );
        // The device still works after all that: traffic on the old table.
        f.send_packet(&packet(4));
        receive_one(&mut port, "traffic after refused messages");
        // A header announcing a huge payload breaks the framing: the port drops the connection.
        f.raw(&[5, 0, 0, 0, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f]);
        eventually("the connection is dropped", Duration::from_secs(2), || {
            (!port.connected()).then_some(())
        });
        // SAFETY: closes the fd made above.
        unsafe { libc::close(memfd) };
    }
    well_behaved_front_end_works(&mut port, &path);
}

#[test]
fn client_mode_reconnects_when_the_front_end_restarts() {
    let dir = std::env::temp_dir().join(format!("nvs-vhost-client-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sock");
    let _ = std::fs::remove_file(&path);
    let mut opts = PortOptions::new();
    opts.insert("vhost-server-path".into(), path.to_str().unwrap().into());
    // The port comes first and waits for the front end (as QEMU started after nvs).
    let mut port = nvs_datapath::ports::open_port("dpdkvhostuserclient", "client", &opts).unwrap();
    for round in 0..2u8 {
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let mut f = Front::over(listener.accept().unwrap().0);
        f.setup(FEATURES);
        f.send_packet(&packet(round));
        let mut batch = receive_one(port.as_mut(), "a packet after (re)connecting");
        assert_eq!(batch.pkts[0].data(), &packet(round)[..]);
        port.tx_burst(&mut batch).unwrap();
        assert_eq!(f.recv_packets(), vec![packet(round)], "round {round}");
        // The front end "restarts": its socket and memory go away.
    }
}

/// A guest with two queue pairs: what nvs sends it is spread over both rx
/// queues by flow, each flow on one queue (so in order).
#[test]
fn tx_spreads_over_the_guests_rx_queues_by_flow() {
    let (mut port, path) = open("mq");
    let mut f = Front::connect(&path);
    f.setup(FEATURES);
    for q in [2, 3] {
        f.setup_ring(q, FEATURES);
    }
    f.post_rx_on(2, vhost_front::SIZE);
    f.barrier();
    // 16 UDP flows (source port n), 4 packets each, interleaved.
    let udp = |n: u8, seq: u8| {
        let mut p = vec![0u8; 64];
        p[12..14].copy_from_slice(&[0x08, 0x00]);
        p[14] = 0x45;
        p[23] = 17;
        p[26..34].copy_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        p[34..36].copy_from_slice(&(1000 + n as u16).to_be_bytes());
        p[42] = seq;
        p
    };
    let pool = Pool::new(64, 2048).unwrap();
    let mut batch = Batch::new();
    for seq in 0..4 {
        for n in 0..16 {
            batch.pkts.push(copy_packet(&pool, &udp(n, seq)));
            if batch.room() == 0 {
                port.tx_burst(&mut batch).unwrap();
            }
        }
    }
    port.tx_burst(&mut batch).unwrap();
    let queues = [f.recv_packets_on(0), f.recv_packets_on(2)];
    assert_eq!(
        queues[0].len() + queues[1].len(),
        64,
        "every packet arrived"
    );
    assert!(
        queues.iter().all(|q| !q.is_empty()),
        "both queues used: {} and {}",
        queues[0].len(),
        queues[1].len()
    );
    for (i, q) in queues.iter().enumerate() {
        for n in 0..16u16 {
            let seqs: Vec<u8> = q
                .iter()
                .filter(|p| p[34..36] == (1000 + n).to_be_bytes())
                .map(|p| p[42])
                .collect();
            assert!(
                seqs.is_empty() || seqs == [0, 1, 2, 3],
                "flow {n} on queue {i}: {seqs:?} (all of a flow, in order, on one queue)"
            );
        }
    }
}
