//! The tap back end against the kernel: a frame sent from the host side (an
//! AF_PACKET socket bound to the device) arrives in `rx_burst`, a frame given
//! to `tx_burst` is seen on the host side, and closing the port deletes the
//! device. Needs CAP_NET_ADMIN; without it the tests say so and pass (CI runs
//! as root, where they must run).

mod common;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::time::Duration;

use nvs_datapath::actions::{PacketBuf, HEADROOM};
use nvs_datapath::datapath::open_port;
use nvs_datapath::port::{Batch, Port, PortError, PortOptions};

/// An EtherType for local experiments (IEEE 802): the host stack ignores it.
const ETH_TEST: u16 = 0x88b5;

/// A device name unique to this process and test.
fn dev_name(tag: &str) -> String {
    format!("nvt{}{tag}", std::process::id() % 100_000)
}

/// Opens a tap port, or `None` (with a message) when this process may not create one.
fn open_tap(name: &str) -> Option<Box<dyn Port>> {
    match open_port("tap", name, &PortOptions::new()) {
        Ok(p) => Some(p),
        Err(e) if e.lacks_privilege() => {
            eprintln!("SKIPPED: cannot create tap devices here (needs CAP_NET_ADMIN): {e}");
            None
        }
        Err(e) => panic!("opening tap {name}: {e}"),
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("running ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn device_exists(name: &str) -> bool {
    std::path::Path::new(&format!("/sys/class/net/{name}")).exists()
}

fn ifindex(name: &str) -> i32 {
    std::fs::read_to_string(format!("/sys/class/net/{name}/ifindex"))
        .expect("device has an ifindex")
        .trim()
        .parse()
        .unwrap()
}

/// An AF_PACKET socket bound to device `name`, seeing every EtherType.
fn packet_socket(name: &str) -> OwnedFd {
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            proto as i32,
        )
    };
    assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
    // SAFETY: `fd` is a descriptor we just opened and own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_ll is plain data; all-zero is valid.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = ifindex(name);
    // SAFETY: `sll` is a valid sockaddr_ll and its size is passed.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    assert_eq!(rc, 0, "bind: {}", std::io::Error::last_os_error());
    fd
}

fn frame(dst: [u8; 6], src: [u8; 6], marker: u8, len: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ETH_TEST.to_be_bytes());
    f.resize(len, marker);
    f
}

fn is_test_frame(f: &[u8], marker: u8) -> bool {
    f.len() > 14 && f[12..14] == ETH_TEST.to_be_bytes() && f[14] == marker
}

fn heap(bytes: &[u8]) -> nvs_datapath::port::Packet {
    PacketBuf::from_frame(
        vec![0; HEADROOM + bytes.len()].into_boxed_slice(),
        HEADROOM,
        bytes,
    )
    .unwrap()
}

/// Polls `f` until it returns `Some`, for at most two seconds.
fn within<T>(what: &str, f: impl FnMut() -> Option<T>) -> T {
    common::eventually(what, Duration::from_secs(2), f)
}

#[test]
fn frames_cross_between_the_kernel_and_the_port() {
    let name = dev_name("a");
    let Some(mut port) = open_tap(&name) else {
        return;
    };
    assert_eq!(port.kind(), "tap");
    assert!(device_exists(&name), "the tap device {name} exists");
    let mac = port.mac().expect("a tap reports its MAC");
    let sys_mac = std::fs::read_to_string(format!("/sys/class/net/{name}/address")).unwrap();
    let hex: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(sys_mac.trim(), hex.join(":"));

    // Down: nothing arrives, and a frame sent is dropped and counted, not blocked on.
    let mut batch = Batch::new();
    assert_eq!(port.rx_burst(&mut batch).unwrap(), 0);
    batch
        .pkts
        .push(heap(&frame([0xff; 6], [2, 0, 0, 0, 0, 1], 1, 60)));
    assert_eq!(port.tx_burst(&mut batch).unwrap(), 0);
    assert!(batch.is_empty());
    assert_eq!(port.stats().tx_dropped, 1);

    ip(&["link", "set", "dev", &name, "up"]);
    let sock = packet_socket(&name);

    // Kernel → port: written on the AF_PACKET socket, the kernel transmits it on the tap.
    let sent = frame(mac, [2, 0, 0, 0, 0, 2], 0x5a, 100);
    // SAFETY: the buffer is valid for its length.
    let n = unsafe { libc::send(sock.as_raw_fd(), sent.as_ptr().cast(), sent.len(), 0) };
    assert_eq!(
        n,
        sent.len() as isize,
        "{}",
        std::io::Error::last_os_error()
    );
    let got = within("the frame on the port's rx side", || {
        let mut found = None;
        port.rx_burst(&mut batch).unwrap();
        for p in &batch.pkts {
            if is_test_frame(p.data(), 0x5a) {
                found = Some(p.data().to_vec());
            }
        }
        port.recycle(&mut batch);
        found
    });
    assert_eq!(got, sent);
    assert!(port.stats().rx_packets >= 1);

    // Port → kernel: tx_burst writes it, the kernel receives it on the tap.
    let out = frame([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 3], 0xa5, 80);
    batch.pkts.push(heap(&out));
    assert_eq!(port.tx_burst(&mut batch).unwrap(), 1);
    let s = port.stats();
    assert_eq!((s.tx_packets, s.tx_bytes), (1, 80));
    let seen = within("the frame on the kernel side", || {
        let mut buf = [0u8; 2048];
        loop {
            // SAFETY: the buffer is valid for its length.
            let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n <= 0 {
                return None;
            }
            if is_test_frame(&buf[..n as usize], 0xa5) {
                return Some(buf[..n as usize].to_vec());
            }
        }
    });
    assert_eq!(seen, out);

    // Frames too short or too long are counted errors, not panics.
    batch.pkts.push(heap(&[0u8; 10]));
    batch.pkts.push(heap(&frame(
        [2; 6],
        [4; 6],
        1,
        nvs_datapath::tap::MAX_FRAME + 1,
    )));
    assert_eq!(port.tx_burst(&mut batch).unwrap(), 0);
    assert_eq!(port.stats().tx_errors, 2);

    drop(sock);
    port.close();
    // Deleted when the last reference to the descriptor goes: a child another
    // test thread is forking (to run `ip`) may hold a copy until its exec.
    within(&format!("closing the port to delete {name}"), || {
        (!device_exists(&name)).then_some(())
    });
    batch.pkts.push(heap(&out));
    assert_eq!(port.tx_burst(&mut batch).unwrap(), 0);
    assert_eq!(port.rx_burst(&mut batch).unwrap(), 0);
}

#[test]
fn a_device_deleted_from_outside_counts_one_error_and_goes_quiet() {
    let name = dev_name("c");
    let Some(mut port) = open_tap(&name) else {
        return;
    };
    ip(&["link", "del", "dev", &name]);
    let mut batch = Batch::new();
    for _ in 0..3 {
        assert_eq!(port.rx_burst(&mut batch).unwrap(), 0);
    }
    assert_eq!(port.stats().rx_errors, 1);
    batch.pkts.push(heap(&frame([2; 6], [4; 6], 1, 60)));
    assert_eq!(port.tx_burst(&mut batch).unwrap(), 0);
    assert_eq!(port.stats().tx_dropped, 1);
}

#[test]
fn a_device_deleted_from_outside_noticed_by_tx_counts_one_error_and_goes_quiet() {
    let name = dev_name("d");
    let Some(mut port) = open_tap(&name) else {
        return;
    };
    ip(&["link", "del", "dev", &name]);
    let mut batch = Batch::new();
    for marker in 0..3 {
        batch.pkts.push(heap(&frame([2; 6], [4; 6], marker, 60)));
    }
    assert_eq!(port.tx_burst(&mut batch).unwrap(), 0);
    let s = port.stats();
    assert_eq!((s.tx_errors, s.tx_dropped), (1, 2));
    assert_eq!(port.rx_burst(&mut batch).unwrap(), 0);
    assert_eq!(port.stats().rx_errors, 0);
}

#[test]
fn a_taken_name_and_a_long_name_give_clear_errors() {
    let name = dev_name("b");
    let Some(_first) = open_tap(&name) else {
        return;
    };
    let err = open_port("tap", &name, &PortOptions::new()).err().unwrap();
    assert!(matches!(err, PortError::Os { .. }), "{err}");
    assert!(err.to_string().contains("already in use"), "{err}");
    let err = open_port("tap", "sixteen-chars-xx", &PortOptions::new())
        .err()
        .unwrap();
    assert!(err.to_string().contains("at most 15"), "{err}");
    let err = open_port("nope", "x", &PortOptions::new()).err().unwrap();
    assert!(err.to_string().contains("known: dummy, tap"), "{err}");
}

/// What `ip -o link show` says of a device (run in namespace `ns` when given).
fn ip_link_show(ns: Option<&str>, name: &str) -> String {
    let mut args = vec![];
    if let Some(ns) = ns {
        args.extend(["-n", ns]);
    }
    args.extend(["-o", "link", "show", "dev", name]);
    let out = Command::new("ip").args(&args).output().expect("running ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_device_mtu_is_set_and_read_back_and_a_bad_mtu_is_refused() {
    let name = dev_name("m");
    let Some(mut port) = open_tap(&name) else {
        return;
    };
    assert_eq!(port.device().unwrap().state().unwrap().mtu, 1500);
    port.device().unwrap().set_mtu(9000).unwrap();
    assert!(
        ip_link_show(None, &name).contains(" mtu 9000 "),
        "{}",
        ip_link_show(None, &name)
    );
    assert_eq!(port.device().unwrap().state().unwrap().mtu, 9000);

    // Below the kernel's minimum (68): the kernel's refusal, with its reason; the MTU stays.
    let err = port.device().unwrap().set_mtu(50).unwrap_err();
    assert!(
        matches!(&err, PortError::Os { source, .. } if source.raw_os_error() == Some(libc::EINVAL)),
        "{err}"
    );
    assert!(err.to_string().contains("the kernel refuses it"), "{err}");
    // Above what a tap port's buffers carry (the kernel would take up to 65521): refused before asking.
    let err = port.device().unwrap().set_mtu(70_000).unwrap_err();
    assert!(
        matches!(err, PortError::BadMtu { mtu: 70_000, .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains(&format!("up to {}", nvs_datapath::tap::MAX_MTU)),
        "{err}"
    );
    assert_eq!(port.device().unwrap().state().unwrap().mtu, 9000);
    assert!(ip_link_show(None, &name).contains(" mtu 9000 "));

    // The port still carries frames: one of the new MTU's size reaches the kernel.
    ip(&["link", "set", "dev", &name, "up"]);
    let sock = packet_socket(&name);
    let big = frame([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 3], 0x77, 9000 + 14);
    let mut batch = Batch::new();
    batch.pkts.push(heap(&big));
    assert_eq!(port.tx_burst(&mut batch).unwrap(), 1);
    let seen = within("the jumbo frame on the kernel side", || {
        let mut buf = vec![0u8; 10_000];
        loop {
            // SAFETY: the buffer is valid for its length.
            let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n <= 0 {
                return None;
            }
            if is_test_frame(&buf[..n as usize], 0x77) {
                return Some(n as usize);
            }
        }
    });
    assert_eq!(seen, big.len());

    port.close();
    assert!(matches!(port.device(), Err(PortError::Closed)));

    // A port without a kernel device has no MTU to read or set.
    let dummy = open_port("dummy", "d0", &PortOptions::new()).unwrap();
    assert!(matches!(dummy.device(), Err(PortError::Unsupported { .. })));
}

#[test]
fn the_link_state_follows_ip_link_set_up_and_down() {
    let name = dev_name("f");
    let Some(port) = open_tap(&name) else {
        return;
    };
    // Created down: nvs leaves bringing it up to the user, as OVS does.
    let s = port.device().unwrap().state().unwrap();
    assert!(!s.admin_up && !s.carrier, "{s:?}");
    ip(&["link", "set", "dev", &name, "up"]);
    let s = port.device().unwrap().state().unwrap();
    assert!(s.admin_up && s.carrier, "{s:?}");
    ip(&["link", "set", "dev", &name, "down"]);
    let s = port.device().unwrap().state().unwrap();
    assert!(!s.admin_up && !s.carrier, "{s:?}");
}

/// A network namespace of this test's own, deleted on drop.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

#[test]
fn a_device_moved_to_another_namespace_and_renamed_is_still_reached() {
    let name = dev_name("n");
    let Some(mut port) = open_tap(&name) else {
        return;
    };
    let ns = Netns(format!("nvt{}n", std::process::id() % 100_000));
    let _ = Command::new("ip").args(["netns", "del", &ns.0]).output();
    ip(&["netns", "add", &ns.0]);
    ip(&["link", "set", "dev", &name, "netns", &ns.0]);
    assert!(!device_exists(&name));
    // Renamed there: the tun descriptor still tells where and what the device is.
    let inside = format!("{name}x");
    ip(&[
        "-n", &ns.0, "link", "set", "dev", &name, "name", &inside, "up",
    ]);
    let s = port.device().unwrap().state().unwrap();
    assert!(s.admin_up && s.carrier, "{s:?}");
    port.device().unwrap().set_mtu(1400).unwrap();
    assert!(ip_link_show(Some(&ns.0), &inside).contains(" mtu 1400 "));
    assert_eq!(port.device().unwrap().state().unwrap().mtu, 1400);
    ip(&["-n", &ns.0, "link", "set", "dev", &inside, "down"]);
    assert!(!port.device().unwrap().state().unwrap().admin_up);
    port.close();
}
