//! The underlay socket of tunnel ports: one kernel UDP socket bound to
//! `local_ip:dst_port`, read with `recvmmsg` and written with `sendmmsg`
//! in batches. Every raw system call of the tunnel back end lives here.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::frame::Frame;
use crate::port::BURST;

/// Room for one `IP_PKTINFO` control message (8-byte aligned).
type Cmsg = [u64; 8];

/// A non-blocking UDP socket bound to `local:port` (host-order IPv4).
pub struct UdpSocket {
    fd: OwnedFd,
}

/// One received datagram: its length, source, the outer destination
/// address the kernel reports, and whether it was cut to the buffer.
#[derive(Clone, Copy, Debug, Default)]
pub struct Received {
    pub len: usize,
    pub src: u32,
    pub dst: u32,
    pub truncated: bool,
}

/// One datagram to send: its bytes, its destination, and the outer TTL and
/// TOS (0: the socket's defaults).
#[derive(Clone, Copy)]
pub struct Datagram<'a> {
    pub bytes: &'a [u8],
    pub dst: u32,
    pub ttl: u8,
    pub tos: u8,
}

/// Writes the IP_TTL / IP_TOS control messages `g` asks for into `buf`;
/// returns their length (0 when none).
fn put_cmsgs(g: &Datagram<'_>, buf: &mut Cmsg) -> usize {
    let mut at = 0;
    for (kind, value) in [(libc::IP_TTL, g.ttl), (libc::IP_TOS, g.tos)] {
        if value == 0 {
            continue;
        }
        // SAFETY: CMSG_SPACE/CMSG_LEN are size computations; the header and
        // its int payload are written inside `buf` (8 u64 = 64 bytes, two
        // 16-byte messages at most), which is 8-byte aligned as cmsghdr needs.
        unsafe {
            let space = libc::CMSG_SPACE(std::mem::size_of::<libc::c_int>() as u32) as usize;
            let base = (buf.as_mut_ptr() as *mut u8).add(at);
            let hdr = base as *mut libc::cmsghdr;
            (*hdr).cmsg_level = libc::IPPROTO_IP;
            (*hdr).cmsg_type = kind;
            (*hdr).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<libc::c_int>() as u32) as _;
            std::ptr::write_unaligned(
                libc::CMSG_DATA(hdr) as *mut libc::c_int,
                libc::c_int::from(value),
            );
            at += space;
        }
    }
    at
}

fn sockaddr(ip: u32, port: u16) -> libc::sockaddr_in {
    // SAFETY: sockaddr_in is plain data; all-zero is valid.
    let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    sa.sin_family = libc::AF_INET as u16;
    sa.sin_port = port.to_be();
    sa.sin_addr.s_addr = ip.to_be();
    sa
}

fn setsockopt(
    fd: &OwnedFd,
    level: libc::c_int,
    opt: libc::c_int,
    val: libc::c_int,
) -> std::io::Result<()> {
    // SAFETY: `val` is a c_int living for the call; its size is passed.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            opt,
            &val as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

impl UdpSocket {
    /// Opens and binds the socket. Outer packets are sent without DF
    /// (`IP_PMTUDISC_DONT`), so an inner frame too large for the underlay's
    /// MTU goes out as IP fragments, as a Linux vxlan device sends it by
    /// default; the receiving kernel reassembles them before `recvmmsg`.
    pub fn bind(local: u32, port: u16) -> std::io::Result<UdpSocket> {
        // SAFETY: plain socket(2) call; the descriptor is owned at once.
        let raw = unsafe {
            libc::socket(
                libc::AF_INET,
                libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        if raw < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        setsockopt(&fd, libc::IPPROTO_IP, libc::IP_PKTINFO, 1)?;
        setsockopt(
            &fd,
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            libc::IP_PMTUDISC_DONT,
        )?;
        // Deep buffers absorb bursts between polls; FORCE needs CAP_NET_ADMIN, the plain one is capped.
        for (force, plain) in [
            (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF),
            (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF),
        ] {
            if setsockopt(&fd, libc::SOL_SOCKET, force, 4 << 20).is_err() {
                let _ = setsockopt(&fd, libc::SOL_SOCKET, plain, 4 << 20);
            }
        }
        let sa = sockaddr(local, port);
        // SAFETY: `sa` is a valid sockaddr_in and its size is passed.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &sa as *const libc::sockaddr_in as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(UdpSocket { fd })
    }

    /// Turns the outer UDP checksum on or off (`SO_NO_CHECK`); the kernel computes it.
    pub fn set_checksum(&self, on: bool) -> std::io::Result<()> {
        setsockopt(
            &self.fd,
            libc::SOL_SOCKET,
            libc::SO_NO_CHECK,
            i32::from(!on),
        )
    }

    /// Receives up to `frames.len()` (at most `BURST`) datagrams, each into
    /// a frame from byte `offset` on, without blocking; fills `out` and
    /// returns how many arrived.
    pub fn recv_batch(
        &self,
        frames: &mut [Frame],
        offset: usize,
        out: &mut [Received; BURST],
    ) -> usize {
        let n = frames.len().min(BURST);
        if n == 0 {
            return 0;
        }
        // SAFETY: these are plain C structs; all-zero is a valid value of each.
        let mut hdrs: [libc::mmsghdr; BURST] = unsafe { std::mem::zeroed() };
        let mut iovs: [libc::iovec; BURST] = unsafe { std::mem::zeroed() };
        let mut addrs: [libc::sockaddr_in; BURST] = unsafe { std::mem::zeroed() };
        let mut cmsgs: [Cmsg; BURST] = [[0; 8]; BURST];
        for i in 0..n {
            let buf = &mut frames[i].as_mut()[offset..];
            iovs[i] = libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: buf.len(),
            };
            let h = &mut hdrs[i].msg_hdr;
            h.msg_name = (&mut addrs[i] as *mut libc::sockaddr_in).cast();
            h.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
            h.msg_iov = &mut iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = cmsgs[i].as_mut_ptr().cast();
            h.msg_controllen = std::mem::size_of::<Cmsg>();
        }
        // SAFETY: every header points at arrays above that outlive the call,
        // each buffer is a live frame region of the length given.
        let got = unsafe {
            libc::recvmmsg(
                self.fd.as_raw_fd(),
                hdrs.as_mut_ptr(),
                n as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if got <= 0 {
            return 0;
        }
        let got = got as usize;
        for i in 0..got {
            let h = &hdrs[i].msg_hdr;
            out[i] = Received {
                len: hdrs[i].msg_len as usize,
                src: u32::from_be(addrs[i].sin_addr.s_addr),
                dst: pktinfo_dst(h),
                truncated: h.msg_flags & libc::MSG_TRUNC != 0,
            };
        }
        got
    }

    /// Sends the datagrams to `port` on their destinations, as many as the
    /// kernel takes; a datagram it refuses (no route, a full buffer) is
    /// skipped. Returns how many were sent and their bytes.
    pub fn send_batch(&self, grams: &[Datagram<'_>], port: u16) -> (usize, usize) {
        let n = grams.len().min(BURST);
        // SAFETY: plain C structs; all-zero is valid.
        let mut hdrs: [libc::mmsghdr; BURST] = unsafe { std::mem::zeroed() };
        let mut iovs: [libc::iovec; BURST] = unsafe { std::mem::zeroed() };
        let mut addrs: [libc::sockaddr_in; BURST] = unsafe { std::mem::zeroed() };
        let mut cmsgs: [Cmsg; BURST] = [[0; 8]; BURST];
        for i in 0..n {
            iovs[i] = libc::iovec {
                iov_base: grams[i].bytes.as_ptr() as *mut libc::c_void,
                iov_len: grams[i].bytes.len(),
            };
            addrs[i] = sockaddr(grams[i].dst, port);
            let control = put_cmsgs(&grams[i], &mut cmsgs[i]);
            let h = &mut hdrs[i].msg_hdr;
            h.msg_name = (&mut addrs[i] as *mut libc::sockaddr_in).cast();
            h.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
            h.msg_iov = &mut iovs[i];
            h.msg_iovlen = 1;
            if control > 0 {
                h.msg_control = cmsgs[i].as_mut_ptr().cast();
                h.msg_controllen = control;
            }
        }
        let (mut at, mut sent, mut bytes) = (0, 0, 0);
        while at < n {
            // SAFETY: headers point at the arrays above and at the caller's
            // byte slices, all alive for the call; the kernel only reads them.
            let rc = unsafe {
                libc::sendmmsg(
                    self.fd.as_raw_fd(),
                    hdrs[at..].as_mut_ptr(),
                    (n - at) as u32,
                    libc::MSG_DONTWAIT,
                )
            };
            if rc > 0 {
                bytes += grams[at..at + rc as usize]
                    .iter()
                    .map(|g| g.bytes.len())
                    .sum::<usize>();
                at += rc as usize;
                sent += rc as usize;
            } else {
                // The datagram at `at` was refused: skip it.
                at += 1;
            }
        }
        (sent, bytes)
    }

    /// The local address the kernel would send from to reach `dst` (a
    /// route lookup through a throw-away connected socket), or None.
    pub fn source_for(dst: u32) -> Option<u32> {
        let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
        s.connect((std::net::Ipv4Addr::from(dst), 9)).ok()?;
        match s.local_addr().ok()? {
            std::net::SocketAddr::V4(a) => Some(u32::from(*a.ip())),
            _ => None,
        }
    }
}

/// The destination address of a received datagram, from its IP_PKTINFO.
fn pktinfo_dst(h: &libc::msghdr) -> u32 {
    // SAFETY: `h` was filled by recvmmsg with a control buffer we own; the
    // CMSG_* walkers stay inside `msg_controllen`.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(h);
        while !c.is_null() {
            if (*c).cmsg_level == libc::IPPROTO_IP && (*c).cmsg_type == libc::IP_PKTINFO {
                let info = libc::CMSG_DATA(c) as *const libc::in_pktinfo;
                return u32::from_be(std::ptr::read_unaligned(info).ipi_addr.s_addr);
            }
            c = libc::CMSG_NXTHDR(h, c);
        }
    }
    0
}

/// The name of the interface holding address `ip` (host order), if any.
pub fn interface_with(ip: u32) -> Option<String> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list`, freed below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return None;
    }
    let mut found = None;
    let mut at = list;
    while !at.is_null() {
        // SAFETY: `at` walks the list getifaddrs returned, still allocated.
        let ifa = unsafe { &*at };
        if !ifa.ifa_addr.is_null()
            // SAFETY: ifa_addr is non-null and points at a sockaddr.
            && unsafe { (*ifa.ifa_addr).sa_family } == libc::AF_INET as u16
        {
            // SAFETY: an AF_INET address is a sockaddr_in.
            let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
            if u32::from_be(sin.sin_addr.s_addr) == ip {
                // SAFETY: ifa_name is a NUL-terminated string in the list.
                let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) };
                found = Some(name.to_string_lossy().into_owned());
                break;
            }
        }
        at = ifa.ifa_next;
    }
    // SAFETY: `list` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
    found
}
