//! The suite every port back end must pass, run on every back end of the
//! registry (`ports::BACKENDS`) and on the test port `ring` (an AF_XDP-shaped
//! port on a shared pool, `common::ring`). A back end added to the registry
//! without a harness here fails `every_registered_back_end_has_a_harness`.
//!
//! It checks the contract written in `port.rs`: batches of at most `BURST`,
//! bytes and order kept, `tx_burst` consumes the whole batch, counters match
//! what moved, a closed port moves nothing, and every frame goes home — to
//! the receiving port's pool when the datapath drops it, to a foreign pool
//! when the port sends it.

mod common;

use std::os::fd::OwnedFd;
use std::time::Duration;

use common::kernel;
use common::ring::RingPort;
use common::vhost_front::{self, Front};
use nvs_datapath::frame::{copy_packet, Pool};
use nvs_datapath::port::{Batch, Port, PortError, PortOptions, BURST};
use nvs_datapath::ports::tunnel::{decap, encap_header, Proto, HEADER_LEN};
use nvs_datapath::ports::{open_port, BACKENDS};

/// How packets reach a port's rx side and are seen leaving its tx side.
trait Wire {
    /// Makes `pkt` arrive on the port.
    fn feed(&mut self, port: &mut dyn Port, pkt: &[u8]);
    /// The packets the port has sent, waiting a little for `n` of them.
    fn collect(&mut self, port: &mut dyn Port, n: usize) -> Vec<Vec<u8>>;
}

/// Test ports: `inject` and `drain`.
struct Injected;

impl Wire for Injected {
    fn feed(&mut self, port: &mut dyn Port, pkt: &[u8]) {
        port.inject(pkt).unwrap();
    }
    fn collect(&mut self, port: &mut dyn Port, n: usize) -> Vec<Vec<u8>> {
        port.drain(n).unwrap()
    }
}

/// A tap: the kernel side of the device, through an AF_PACKET socket.
struct Kernel(OwnedFd);

impl Wire for Kernel {
    fn feed(&mut self, _port: &mut dyn Port, pkt: &[u8]) {
        kernel::send(&self.0, pkt);
    }
    fn collect(&mut self, _port: &mut dyn Port, n: usize) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        let _ = within_a_second(|| {
            got.extend(kernel::recv_test_frames(&self.0));
            (got.len() >= n).then_some(())
        });
        got
    }
}

/// A system port on one end of a veth pair: the kernel side is the other end.
/// The pair is deleted with the wire.
struct OverVeth {
    kernel: Kernel,
    _veth: kernel::Veth,
}

impl Wire for OverVeth {
    fn feed(&mut self, port: &mut dyn Port, pkt: &[u8]) {
        self.kernel.feed(port, pkt)
    }
    fn collect(&mut self, port: &mut dyn Port, n: usize) -> Vec<Vec<u8>> {
        self.kernel.collect(port, n)
    }
}

/// A vhost-user port: the guest side of its queues, through a test front end.
struct Guest(Front);

impl Wire for Guest {
    fn feed(&mut self, _port: &mut dyn Port, pkt: &[u8]) {
        self.0.send_packet(pkt);
    }
    fn collect(&mut self, port: &mut dyn Port, n: usize) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        let _ = within_a_second(|| {
            let _ = port;
            got.extend(self.0.recv_packets());
            (got.len() >= n).then_some(())
        });
        got
    }
}

/// A tunnel port's far end: a plain UDP socket at the port's remote_ip that
/// wraps fed frames in the tunnel header and unwraps what the port sends.
struct Underlay {
    sock: std::net::UdpSocket,
    port_addr: std::net::SocketAddr,
    proto: Proto,
}

impl Wire for Underlay {
    fn feed(&mut self, _port: &mut dyn Port, pkt: &[u8]) {
        let mut d = vec![0u8; HEADER_LEN];
        encap_header(self.proto, 7, &mut d);
        d.extend_from_slice(pkt);
        self.sock.send_to(&d, self.port_addr).unwrap();
    }
    fn collect(&mut self, _port: &mut dyn Port, n: usize) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        let mut buf = [0u8; 65536];
        let _ = within_a_second(|| {
            while let Ok(len) = self.sock.recv(&mut buf) {
                assert_eq!(decap(self.proto, &buf[..len]), Ok((7, HEADER_LEN)));
                got.push(buf[HEADER_LEN..len].to_vec());
            }
            (got.len() >= n).then_some(())
        });
        got
    }
}

/// A VXLAN or Geneve port on loopback (127.0.0.1 → 127.0.0.2, key 7) on a UDP
/// port of its own per test, so that tests running at once share no socket.
fn tunnel_harness(kind: &'static str) -> (Box<dyn Port>, Box<dyn Wire>) {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let udp = 20000
        + (std::process::id() % 2000) as u16 * 16
        + NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 16;
    let sock = std::net::UdpSocket::bind(("127.0.0.2", udp)).unwrap();
    sock.set_nonblocking(true).unwrap();
    let opts = PortOptions::from([
        ("remote_ip".to_string(), "127.0.0.2".to_string()),
        ("local_ip".to_string(), "127.0.0.1".to_string()),
        ("key".to_string(), "7".to_string()),
        ("dst_port".to_string(), udp.to_string()),
    ]);
    let port = open_port(kind, "tnl", &opts).unwrap();
    let proto = if kind == "vxlan" {
        Proto::Vxlan
    } else {
        Proto::Geneve
    };
    let port_addr = ([127, 0, 0, 1], udp).into();
    (
        port,
        Box::new(Underlay {
            sock,
            port_addr,
            proto,
        }),
    )
}

/// A vhost-user port of either mode with a test front end set up on it.
fn vhost_harness(kind: &'static str, tag: &str) -> (Box<dyn Port>, Box<dyn Wire>) {
    let dir = std::env::temp_dir().join(format!("nvs-vhost-{}-{tag}-{kind}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("sock");
    let _ = std::fs::remove_file(&path);
    let mut opts = PortOptions::new();
    opts.insert("vhost-server-path".into(), path.to_str().unwrap().into());
    let features =
        vhost_front::F_VERSION_1 | vhost_front::F_MRG_RXBUF | vhost_front::F_PROTOCOL_FEATURES;
    let (port, mut front) = if kind == "dpdkvhostuser" {
        let port = open_port(kind, tag, &opts).unwrap();
        (port, Front::connect(&path))
    } else {
        // The front end listens; the port connects to it.
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let port = open_port(kind, tag, &opts).unwrap();
        (port, Front::over(listener.accept().unwrap().0))
    };
    front.setup(features);
    (port, Box::new(Guest(front)))
}

fn within_a_second(mut f: impl FnMut() -> Option<()>) -> Option<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    while std::time::Instant::now() < deadline {
        if f().is_some() {
            return Some(());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    None
}

/// A back end under test: an open port and its wire.
struct Harness {
    kind: &'static str,
    port: Box<dyn Port>,
    wire: Box<dyn Wire>,
}

/// Back ends covered: every registered one, then the test port.
fn kinds() -> Vec<&'static str> {
    let mut kinds: Vec<&'static str> = BACKENDS.iter().map(|b| b.kind).collect();
    kinds.push("ring");
    kinds
}

/// Opens back end `kind` for a test named by `tag`; `None` when the machine
/// lacks what it needs (`common::cannot_run`: a failure under NVS_REQUIRE_PRIVILEGED=1).
fn harness(kind: &'static str, tag: &str) -> Option<Harness> {
    let (port, wire): (Box<dyn Port>, Box<dyn Wire>) = match kind {
        "dummy" => (
            open_port("dummy", tag, &PortOptions::new()).unwrap(),
            Box::new(Injected),
        ),
        "tap" => {
            let name = kernel::dev_name(tag);
            let port = kernel::open_tap(&name)?;
            kernel::up_and_quiet(&name);
            (port, Box::new(Kernel(kernel::packet_socket(&name))))
        }
        "system" | "afxdp" => {
            let veth = kernel::Veth::new(&kernel::dev_name(tag))?;
            // A system port on a veth would choose AF_XDP, which "afxdp" covers: this one is AF_PACKET.
            let mut opts = PortOptions::new();
            if kind == "system" {
                opts.insert("transport".into(), "af_packet".into());
            }
            let port = open_port(kind, &veth.name, &opts).unwrap();
            let sock = kernel::packet_socket(&veth.peer);
            (
                port,
                Box::new(OverVeth {
                    kernel: Kernel(sock),
                    _veth: veth,
                }),
            )
        }
        "ring" => (
            Box::new(RingPort::new(Pool::new(128, 2048).unwrap(), false)),
            Box::new(Injected),
        ),
        "dpdkvhostuser" | "dpdkvhostuserclient" => vhost_harness(kind, tag),
        "vxlan" | "geneve" => tunnel_harness(kind),
        other => panic!("back end '{other}' has no compliance harness: add one in harness()"),
    };
    assert_eq!(port.kind(), kind);
    Some(Harness { kind, port, wire })
}

/// Runs `check` on every back end (opened for a test named by `tag`), and
/// says on which it ran (`cargo test -- --nocapture` shows it).
fn on_every_back_end(tag: &str, mut check: impl FnMut(Harness)) {
    for kind in kinds() {
        if let Some(h) = harness(kind, tag) {
            check(h);
            let test = std::thread::current().name().unwrap_or("?").to_string();
            eprintln!("{test}: passed on {kind}");
        }
    }
}

/// A test frame every back end carries (the kernel side filters on its EtherType).
fn packet(n: u8, len: usize) -> Vec<u8> {
    kernel::frame([2, 0, 0, 0, 0, n], [2, 0, 0, 0, 1, n], n, len)
}

#[test]
fn every_registered_back_end_has_a_harness() {
    for kind in kinds() {
        // Opening fails (by panic) for a kind without one; a missing capability is cannot_run's call.
        let _ = harness(kind, "h");
    }
}

#[test]
fn rx_is_batched_and_preserves_bytes() {
    on_every_back_end("r", |mut h| {
        let kind = h.kind;
        let mut batch = Batch::new();
        assert_eq!(
            h.port.rx_burst(&mut batch).unwrap(),
            0,
            "{kind}: idle port gives nothing"
        );
        let sent: Vec<Vec<u8>> = (0..BURST as u8 + 5)
            .map(|n| packet(n, 60 + n as usize))
            .collect();
        for p in &sent {
            h.wire.feed(h.port.as_mut(), p);
        }
        // The kernel may hand the frames over a little later: fill the batch in as many bursts as it takes.
        let full = within_a_second(|| {
            h.port.rx_burst(&mut batch).unwrap();
            (batch.len() == BURST).then_some(())
        });
        assert!(
            full.is_some(),
            "{kind}: {} of {BURST} packets arrived",
            batch.len()
        );
        assert_eq!(
            h.port.rx_burst(&mut batch).unwrap(),
            0,
            "{kind}: a full batch takes no more"
        );
        let mut got: Vec<Vec<u8>> = batch.pkts.iter().map(|p| p.data().to_vec()).collect();
        batch.pkts.clear();
        let rest = within_a_second(|| {
            h.port.rx_burst(&mut batch).unwrap();
            (batch.len() == 5).then_some(())
        });
        assert!(rest.is_some(), "{kind}: the last 5 packets arrived");
        got.extend(batch.pkts.iter().map(|p| p.data().to_vec()));
        assert_eq!(got, sent, "{kind}: bytes and order preserved");
        let s = h.port.stats();
        assert_eq!(s.rx_packets, sent.len() as u64, "{kind}");
        assert_eq!(
            s.rx_bytes,
            sent.iter().map(|p| p.len() as u64).sum::<u64>(),
            "{kind}"
        );
    });
}

#[test]
fn tx_consumes_the_batch_and_counts() {
    let foreign = Pool::new(16, 2048).unwrap();
    on_every_back_end("t", |mut h| {
        let kind = h.kind;
        let sent: Vec<Vec<u8>> = (0..10u8).map(|n| packet(n, 64)).collect();
        let mut batch = Batch::new();
        batch
            .pkts
            .extend(sent.iter().map(|p| copy_packet(&foreign, p)));
        assert_eq!(h.port.tx_burst(&mut batch).unwrap(), 10, "{kind}");
        assert!(batch.is_empty(), "{kind}: tx_burst takes every packet");
        assert_eq!(
            h.wire.collect(h.port.as_mut(), 10),
            sent,
            "{kind}: bytes and order on the wire"
        );
        let s = h.port.stats();
        assert_eq!(
            (s.tx_packets, s.tx_bytes, s.tx_dropped),
            (10, 640, 0),
            "{kind}"
        );
        // Sent and seen on the other side: every frame is back in its pool.
        assert_eq!(
            foreign.free_count(),
            foreign.capacity(),
            "{kind}: sent frames went home"
        );
    });
}

#[test]
fn frames_the_datapath_drops_go_home_to_the_port() {
    on_every_back_end("g", |mut h| {
        let kind = h.kind;
        let pool = h
            .port
            .pool()
            .expect("every back end here receives into a pool")
            .clone();
        for n in 0..8u8 {
            h.wire.feed(h.port.as_mut(), &packet(n, 100));
        }
        let mut batch = Batch::new();
        let arrived = within_a_second(|| {
            h.port.rx_burst(&mut batch).unwrap();
            (batch.len() == 8).then_some(())
        });
        assert!(arrived.is_some(), "{}: 8 packets arrived", kind);
        let out = pool.capacity() - pool.free_count();
        assert!(
            out >= 8,
            "{}: the received packets are in frames of its pool ({out} out)",
            kind
        );
        // Dropped on another thread, as a polling thread other than the receiver's would.
        let pkts = std::mem::take(&mut batch.pkts);
        std::thread::spawn(move || drop(pkts)).join().unwrap();
        // (A tap keeps one spare frame for its next read; an AF_XDP port keeps its fill ring full; a tunnel's socket a burst's worth.)
        let spare = match kind {
            "tap" => 1,
            "afxdp" => nvs_datapath::ports::afxdp::FILL_TARGET as usize,
            "vxlan" | "geneve" => BURST,
            _ => 0,
        };
        assert_eq!(
            pool.free_count() + spare,
            pool.capacity(),
            "{}: every frame went home",
            kind
        );
    });
}

#[test]
fn closed_port_moves_nothing() {
    on_every_back_end("x", |mut h| {
        let kind = h.kind;
        h.port.close();
        let mut batch = Batch::new();
        batch
            .pkts
            .push(copy_packet(&Pool::new(1, 2048).unwrap(), &packet(1, 64)));
        assert_eq!(h.port.tx_burst(&mut batch).unwrap(), 0, "{kind}");
        assert!(batch.is_empty(), "{kind}");
        assert_eq!(h.port.stats().tx_dropped, 1, "{kind}");
        assert_eq!(h.port.rx_burst(&mut batch).unwrap(), 0, "{kind}");
        assert!(
            matches!(
                h.port.inject(&packet(1, 64)),
                Err(PortError::Closed | PortError::Unsupported { .. })
            ),
            "{kind}: nothing is injected into a closed port"
        );
    });
}

#[test]
fn dummy_queues_are_bounded_and_loopback_returns_tx() {
    let heap = nvs_datapath::frame::heap_packet;
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

#[test]
fn ring_ports_on_one_pool_pass_frames_without_a_copy() {
    // Two AF_XDP-shaped ports on one UMEM: a frame received on one leaves the other as it is.
    let umem = Pool::new(64, 2048).unwrap();
    let mut a = RingPort::new(umem.clone(), false);
    let mut b = RingPort::new(umem.clone(), false);
    let mut c = RingPort::new(Pool::new(64, 2048).unwrap(), false);
    for n in 0..4u8 {
        a.inject(&packet(n, 80)).unwrap();
    }
    let mut batch = Batch::new();
    a.rx_burst(&mut batch).unwrap();
    let mut to_c = Batch::new();
    to_c.pkts.extend(batch.pkts.drain(2..));
    b.tx_burst(&mut batch).unwrap();
    c.tx_burst(&mut to_c).unwrap();
    assert_eq!((b.zero_copy, b.copied), (2, 0), "same pool: no copy");
    assert_eq!((c.zero_copy, c.copied), (0, 2), "other pool: one copy");
    // The copies' originals went home at once; b's two are on its tx ring.
    assert_eq!(umem.capacity() - umem.free_count(), 2);
    assert_eq!(b.drain(10).unwrap(), vec![packet(0, 80), packet(1, 80)]);
    assert_eq!(c.drain(10).unwrap(), vec![packet(2, 80), packet(3, 80)]);
    assert_eq!(umem.free_count(), umem.capacity());
}
