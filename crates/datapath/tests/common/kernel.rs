//! The kernel side of tap tests: tap devices, `ip`, and an AF_PACKET socket
//! that sends frames into a device and sees the frames it transmits.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;

use nvs_datapath::port::{Port, PortOptions};
use nvs_datapath::ports::open_port;

/// An EtherType for local experiments (IEEE 802): the host stack ignores it.
pub const ETH_TEST: u16 = 0x88b5;

/// A device name unique to this process and `tag`.
pub fn dev_name(tag: &str) -> String {
    format!("nvt{}{tag}", std::process::id() % 100_000)
}

/// Opens a tap port, or `None` when this process may not create one (see `cannot_run`).
pub fn open_tap(name: &str) -> Option<Box<dyn Port>> {
    match open_port("tap", name, &PortOptions::new()) {
        Ok(p) => Some(p),
        Err(e) if e.lacks_privilege() => {
            super::cannot_run("CAP_NET_ADMIN to create tap devices", &e);
            None
        }
        Err(e) => panic!("opening tap {name}: {e}"),
    }
}

/// Runs `ip ARGS`, which must succeed.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("running ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Brings device `name` up with IPv6 off, so the kernel sends nothing of its own on it.
pub fn up_and_quiet(name: &str) {
    std::fs::write(format!("/proc/sys/net/ipv6/conf/{name}/disable_ipv6"), "1")
        .expect("turning IPv6 off on the device");
    ip(&["link", "set", "dev", name, "up"]);
}

pub fn device_exists(name: &str) -> bool {
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
pub fn packet_socket(name: &str) -> OwnedFd {
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

/// Sends `frame` on the packet socket: the kernel transmits it on the device,
/// so it arrives on the tap port's rx side.
pub fn send(sock: &OwnedFd, frame: &[u8]) {
    // SAFETY: the buffer is valid for its length.
    let n = unsafe { libc::send(sock.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
    assert_eq!(
        n,
        frame.len() as isize,
        "{}",
        std::io::Error::last_os_error()
    );
}

/// Frames waiting on the packet socket (what the device received from the
/// tap port), test frames only (EtherType [`ETH_TEST`]).
pub fn recv_test_frames(sock: &OwnedFd) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 16_384];
    loop {
        // SAFETY: the buffer is valid for its length.
        let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n <= 0 {
            return out;
        }
        let f = &buf[..n as usize];
        if f.len() >= 14 && f[12..14] == ETH_TEST.to_be_bytes() {
            out.push(f.to_vec());
        }
    }
}

/// A test frame of `len` bytes (at least 15): EtherType [`ETH_TEST`], then `marker`.
pub fn frame(dst: [u8; 6], src: [u8; 6], marker: u8, len: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ETH_TEST.to_be_bytes());
    f.resize(len, marker);
    f
}

pub fn is_test_frame(f: &[u8], marker: u8) -> bool {
    f.len() > 14 && f[12..14] == ETH_TEST.to_be_bytes() && f[14] == marker
}

/// A veth pair `NAMEa`/`NAMEb`, both up and quiet, deleted when dropped.
pub struct Veth {
    pub name: String,
    pub peer: String,
}

impl Veth {
    /// Creates the pair, or `None` when this process may not (see `cannot_run`).
    pub fn new(base: &str) -> Option<Veth> {
        let (name, peer) = (format!("{base}a"), format!("{base}b"));
        let out = Command::new("ip")
            .args(["link", "add", &name, "type", "veth", "peer", "name", &peer])
            .output()
            .expect("running ip");
        if !out.status.success() {
            super::cannot_run(
                "CAP_NET_ADMIN to create veth pairs",
                &String::from_utf8_lossy(&out.stderr),
            );
            return None;
        }
        let veth = Veth { name, peer };
        up_and_quiet(&veth.name);
        up_and_quiet(&veth.peer);
        Some(veth)
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.name])
            .output();
    }
}
