//! The `system` port: an existing kernel network device (a NIC, a veth, a
//! tap that QEMU holds), reached through an AF_PACKET socket, as OVS's
//! netdev-linux reaches it. nvs-vswitchd opens Interface type `system`, and
//! no type at all (what libvirt's `ovs-vsctl add-port br0 vnet0` leaves), as
//! this port. The device must exist: a missing one fails `open`, it is never
//! replaced by something else.
//!
//! Receive: a `TPACKET_V2` ring mapped once (`PACKET_RX_RING`): the kernel
//! writes each frame into a slot and flips its status to `TP_STATUS_USER`;
//! `rx_burst` copies the frame once into a frame of the port's [`Pool`] and
//! hands the slot back. What the kernel keeps apart from the bytes is put
//! back: a VLAN tag it took out (`TP_STATUS_VLAN_VALID`) is written back into
//! the frame, and a frame whose transport checksum is left for the hardware
//! to finish (`TP_STATUS_CSUMNOTREADY`: a local sender or a guest with
//! checksum offload) gets its TCP or UDP checksum computed here, so it leaves
//! nvs with a correct one whichever port it goes out of. Frames nvs sent
//! itself are not seen (`PACKET_IGNORE_OUTGOING`). Frames shorter than an
//! Ethernet header, longer than the slot or than [`MAX_FRAME`] (a GSO
//! super-frame from a sender with TSO on: segmentation is not done here) are
//! counted in `rx_errors` and dropped.
//!
//! Transmit: one `send` per frame on the bound socket (non-blocking): a full
//! queue (`EAGAIN`, `ENOBUFS`) or a device that is down or gone drops the
//! packet (`tx_dropped`); a frame the device refuses (larger than its MTU:
//! `EMSGSIZE`) or of a bad length is a `tx_errors`.
//!
//! Hot unplug: the port looks the device up by name every [`RECHECK_POLLS`]
//! empty polls. When it has gone (deleted, or moved to another namespace)
//! the port stops moving packets (`attached()` is false, and `device()`'s
//! state fails, so nvs-vswitchd reports it in Interface.error); when a
//! device of that name is back, the socket is bound to it again.
//!
//! Needs `CAP_NET_RAW`; without it `open` fails with [`PortError::Os`], whose
//! `lacks_privilege()` says so. No options.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::actions::{PacketBuf, HEADROOM};
use crate::checksum;
use crate::frame::{spread_chunk, Frame, Pool};
use crate::netdev::{Control, MAX_NAME};
use crate::port::{Batch, DeviceState, NetDevice, Port, PortError, PortOptions, PortStats};
use crate::ports::tap::{MAX_FRAME, MAX_MTU, MIN_FRAME};

/// Bytes of one ring slot: the kernel's header, the address, and a frame of [`MAX_FRAME`].
const SLOT: usize = 16 * 1024;
/// Slots per ring block (a block is what the kernel allocates in one piece).
const SLOTS_PER_BLOCK: usize = 4;
/// Ring slots: 256 × 16 KiB = 4 MiB mapped per port.
const SLOTS: usize = 256;
/// Frames of the port's pool.
const POOL_FRAMES: usize = 256;
/// Empty polls between two look-ups of the device by name.
pub const RECHECK_POLLS: u32 = 4096;
/// Buffer size of a pool frame: headroom, a frame and a VLAN tag put back.
const BUF_LEN: usize = HEADROOM + MAX_FRAME + 4;

/// A kernel device port over AF_PACKET.
pub struct SystemPort {
    name: String,
    sock: Option<OwnedFd>,
    ring: Ring,
    /// The ifindex the socket is bound to; 0 while the device is gone.
    ifindex: u32,
    mac: [u8; 6],
    pool: Pool,
    idle_polls: u32,
    stats: PortStats,
}

/// The mapped receive ring.
struct Ring {
    base: NonNull<u8>,
    next: usize,
}

// SAFETY: the ring's memory is owned by the port (unmapped in Drop) and used
// only through `&mut SystemPort`.
unsafe impl Send for Ring {}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: `base` was mapped with this length in `open` and is unmapped once, here.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), SLOTS * SLOT);
        }
    }
}

fn os_error(port: &str, what: &'static str, source: std::io::Error) -> PortError {
    PortError::Os {
        port: port.to_string(),
        what,
        source,
    }
}

/// The ifindex of device `name` in this namespace, 0 when there is none.
fn ifindex_of(name: &str) -> u32 {
    match CString::new(name) {
        // SAFETY: a NUL-terminated string that lives for the call.
        Ok(c) => unsafe { libc::if_nametoindex(c.as_ptr()) },
        Err(_) => 0,
    }
}

fn setsockopt(fd: &OwnedFd, opt: libc::c_int, val: &impl Sized) -> std::io::Result<()> {
    // SAFETY: `val` is a plain value of the size passed, living for the call.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            opt,
            val as *const _ as *const libc::c_void,
            std::mem::size_of_val(val) as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Binds `fd` to device `ifindex`, every EtherType.
fn bind(fd: &OwnedFd, ifindex: u32) -> std::io::Result<()> {
    // SAFETY: sockaddr_ll is plain data; all-zero is valid.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: `sll` is a valid sockaddr_ll and its size is passed.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

pub(crate) fn read_mac(name: &str) -> [u8; 6] {
    let text =
        std::fs::read_to_string(format!("/sys/class/net/{name}/address")).unwrap_or_default();
    let mut mac = [0u8; 6];
    for (m, part) in mac.iter_mut().zip(text.trim().split(':')) {
        *m = u8::from_str_radix(part, 16).unwrap_or(0);
    }
    mac
}

impl SystemPort {
    /// Whether the port is bound to its device now.
    pub fn attached(&self) -> bool {
        self.ifindex != 0
    }

    /// Looks the device up by name; binds again to a device that came back.
    fn recheck(&mut self) {
        let Some(sock) = self.sock.as_ref() else {
            return;
        };
        let now = ifindex_of(&self.name);
        if now == self.ifindex {
            return;
        }
        self.ifindex = 0;
        if now != 0 && bind(sock, now).is_ok() {
            self.ifindex = now;
            self.mac = read_mac(&self.name);
        }
    }

    fn buffer(&self) -> Frame {
        self.pool.alloc().unwrap_or_else(|| Frame::heap(BUF_LEN))
    }
}

impl Port for SystemPort {
    fn open(name: &str, options: &PortOptions) -> Result<Self, PortError> {
        if name.is_empty() || name.len() > MAX_NAME {
            return Err(PortError::BadName {
                name: name.to_string(),
                why: "a kernel device name has 1 to 15 bytes",
            });
        }
        if let Some((k, v)) = options.iter().next() {
            return Err(PortError::BadOption {
                port: name.to_string(),
                key: k.clone(),
                value: v.clone(),
                why: "a system port takes no options".into(),
            });
        }
        let ifindex = ifindex_of(name);
        if ifindex == 0 {
            return Err(os_error(
                name,
                "finding the device (no network device of that name exists here)",
                std::io::Error::from_raw_os_error(libc::ENODEV),
            ));
        }
        // Protocol 0: nothing is queued before the ring and the binding are in place.
        // SAFETY: plain socket(2) call; the result is checked before use.
        let fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        if fd < 0 {
            let e = std::io::Error::last_os_error();
            return Err(os_error(
                name,
                "opening an AF_PACKET socket (needs CAP_NET_RAW)",
                e,
            ));
        }
        // SAFETY: `fd` was just opened and nothing else owns it.
        let sock = unsafe { OwnedFd::from_raw_fd(fd) };
        setsockopt(
            &sock,
            libc::PACKET_VERSION,
            &(libc::tpacket_versions::TPACKET_V2 as libc::c_int),
        )
        .map_err(|e| os_error(name, "choosing TPACKET_V2", e))?;
        setsockopt(&sock, libc::PACKET_IGNORE_OUTGOING, &1 as &libc::c_int)
            .map_err(|e| os_error(name, "ignoring outgoing frames (PACKET_IGNORE_OUTGOING)", e))?;
        let req = libc::tpacket_req {
            tp_block_size: (SLOT * SLOTS_PER_BLOCK) as u32,
            tp_block_nr: (SLOTS / SLOTS_PER_BLOCK) as u32,
            tp_frame_size: SLOT as u32,
            tp_frame_nr: SLOTS as u32,
        };
        setsockopt(&sock, libc::PACKET_RX_RING, &req)
            .map_err(|e| os_error(name, "making the receive ring (PACKET_RX_RING)", e))?;
        // SAFETY: maps the ring the kernel just made for this socket, of its size.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                SLOTS * SLOT,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                sock.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            let e = std::io::Error::last_os_error();
            return Err(os_error(name, "mapping the receive ring", e));
        }
        let ring = Ring {
            base: NonNull::new(base.cast()).expect("mmap succeeded"),
            next: 0,
        };
        bind(&sock, ifindex).map_err(|e| os_error(name, "binding to the device", e))?;
        Ok(SystemPort {
            name: name.to_string(),
            sock: Some(sock),
            ring,
            ifindex,
            mac: read_mac(name),
            pool: Pool::new(POOL_FRAMES, spread_chunk(BUF_LEN))?,
            idle_polls: 0,
            stats: PortStats::default(),
        })
    }

    fn kind(&self) -> &'static str {
        "system"
    }

    fn rx_burst(&mut self, batch: &mut Batch) -> Result<usize, PortError> {
        if self.sock.is_none() {
            return Ok(0);
        }
        let mut got = 0;
        while batch.room() > 0 {
            // SAFETY: `next < SLOTS`, so the slot lies inside the mapped ring.
            let slot = unsafe { self.ring.base.as_ptr().add(self.ring.next * SLOT) };
            let hdr = slot.cast::<libc::tpacket2_hdr>();
            // SAFETY: tp_status is the slot header's first word, aligned; the
            // kernel writes it concurrently, so it is read atomically (acquire:
            // the frame's bytes are visible once it says TP_STATUS_USER).
            let status_word = unsafe { &*(hdr.cast::<AtomicU32>()) };
            let status = status_word.load(Ordering::Acquire);
            if status & libc::TP_STATUS_USER == 0 {
                break;
            }
            // SAFETY: the kernel gave the slot to us (TP_STATUS_USER) and its header is written.
            let h = unsafe { std::ptr::read(hdr) };
            let (snap, len, mac_off) =
                (h.tp_snaplen as usize, h.tp_len as usize, h.tp_mac as usize);
            let tag = (status & libc::TP_STATUS_VLAN_VALID != 0).then(|| {
                let tpid = if status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                    h.tp_vlan_tpid
                } else {
                    0x8100
                };
                (tpid, h.tp_vlan_tci)
            });
            if snap != len || !(MIN_FRAME..=MAX_FRAME).contains(&len) || mac_off + snap > SLOT {
                self.stats.rx_errors += 1;
            } else {
                // SAFETY: the frame's bytes lie in the slot (checked above) and are ours until released.
                let data = unsafe { std::slice::from_raw_parts(slot.add(mac_off), snap) };
                let mut frame = self.buffer();
                let buf = &mut frame.as_mut()[HEADROOM..];
                let total = match tag {
                    None => {
                        buf[..snap].copy_from_slice(data);
                        snap
                    }
                    Some((tpid, tci)) => {
                        buf[..12].copy_from_slice(&data[..12]);
                        buf[12..14].copy_from_slice(&tpid.to_be_bytes());
                        buf[14..16].copy_from_slice(&tci.to_be_bytes());
                        buf[16..snap + 4].copy_from_slice(&data[12..]);
                        snap + 4
                    }
                };
                if status & libc::TP_STATUS_CSUMNOTREADY != 0 {
                    complete_checksum(&mut buf[..total]);
                }
                match PacketBuf::new(frame, HEADROOM, total) {
                    Ok(pkt) => {
                        self.stats.rx_packets += 1;
                        self.stats.rx_bytes += total as u64;
                        batch.pkts.push(pkt);
                        got += 1;
                    }
                    Err(_) => self.stats.rx_errors += 1,
                }
            }
            status_word.store(libc::TP_STATUS_KERNEL, Ordering::Release);
            self.ring.next = (self.ring.next + 1) % SLOTS;
        }
        if got == 0 {
            self.idle_polls += 1;
            if self.idle_polls >= RECHECK_POLLS {
                self.idle_polls = 0;
                self.recheck();
            }
        }
        Ok(got)
    }

    fn tx_burst(&mut self, batch: &mut Batch) -> Result<usize, PortError> {
        let mut sent = 0;
        for pkt in batch.pkts.drain(..) {
            let len = pkt.len();
            let sock = match self.sock.as_ref() {
                Some(s) if self.ifindex != 0 => s,
                _ => {
                    self.stats.tx_dropped += 1;
                    continue;
                }
            };
            if !(MIN_FRAME..=MAX_FRAME).contains(&len) {
                self.stats.tx_errors += 1;
                continue;
            }
            loop {
                // SAFETY: the packet's bytes are valid for `len`.
                let n = unsafe {
                    libc::send(
                        sock.as_raw_fd(),
                        pkt.data().as_ptr().cast(),
                        len,
                        libc::MSG_DONTWAIT,
                    )
                };
                if n >= 0 {
                    self.stats.tx_packets += 1;
                    self.stats.tx_bytes += len as u64;
                    sent += 1;
                    break;
                }
                match std::io::Error::last_os_error().raw_os_error() {
                    Some(libc::EINTR) => continue,
                    Some(
                        libc::EAGAIN | libc::ENOBUFS | libc::ENETDOWN | libc::ENXIO | libc::ENODEV,
                    ) => self.stats.tx_dropped += 1,
                    _ => self.stats.tx_errors += 1,
                }
                break;
            }
        }
        Ok(sent)
    }

    fn stats(&self) -> PortStats {
        self.stats
    }

    fn close(&mut self) {
        self.sock = None;
        self.ifindex = 0;
    }

    fn status(&self) -> PortOptions {
        PortOptions::from([("transport".into(), "af_packet (tpacket_v2 rx ring)".into())])
    }

    fn pool(&self) -> Option<&Pool> {
        Some(&self.pool)
    }

    fn mac(&self) -> Option<[u8; 6]> {
        Some(self.mac)
    }

    fn device(&self) -> Result<Box<dyn NetDevice>, PortError> {
        if self.sock.is_none() {
            return Err(PortError::Closed);
        }
        Ok(Box::new(SystemDevice {
            name: self.name.clone(),
            max_mtu: MAX_MTU,
        }))
    }
}

/// A kernel device port's device (system, afxdp), by name in nvs-vswitchd's namespace.
pub(crate) struct SystemDevice {
    pub(crate) name: String,
    /// The largest MTU the port's buffers carry.
    pub(crate) max_mtu: u32,
}

impl SystemDevice {
    fn control(&self) -> Result<Control, PortError> {
        if ifindex_of(&self.name) == 0 {
            return Err(os_error(
                &self.name,
                "finding the device (it was deleted or moved to another namespace)",
                std::io::Error::from_raw_os_error(libc::ENODEV),
            ));
        }
        Control::here().map_err(|e| os_error(&self.name, "opening a control socket", e))
    }
}

impl NetDevice for SystemDevice {
    fn state(&self) -> Result<DeviceState, PortError> {
        let control = self.control()?;
        let mtu = control
            .mtu(&self.name)
            .map_err(|e| os_error(&self.name, "reading the device MTU (SIOCGIFMTU)", e))?;
        let flags = control
            .flags(&self.name)
            .map_err(|e| os_error(&self.name, "reading the device flags (SIOCGIFFLAGS)", e))?;
        Ok(DeviceState {
            mtu,
            admin_up: flags & libc::IFF_UP != 0,
            carrier: flags & libc::IFF_RUNNING != 0,
        })
    }

    fn set_mtu(&self, mtu: u32) -> Result<(), PortError> {
        if mtu > self.max_mtu {
            return Err(PortError::BadMtu {
                port: self.name.clone(),
                mtu,
                why: format!("this port carries frames of an MTU up to {}", self.max_mtu),
            });
        }
        self.control()?
            .set_mtu(&self.name, mtu)
            .map_err(|e| os_error(&self.name, "setting the device MTU (SIOCSIFMTU)", e))
    }
}

/// Fills in the TCP or UDP checksum of an Ethernet frame (VLAN tags allowed,
/// IPv4 unfragmented or IPv6 without extension headers) whose sender left it
/// for the hardware to finish: the whole segment is summed again with its
/// pseudo-header. Frames it cannot read are left as they are.
pub fn complete_checksum(frame: &mut [u8]) {
    let mut off = 12;
    let mut ethertype = 0;
    while off + 2 <= frame.len() {
        ethertype = u16::from_be_bytes([frame[off], frame[off + 1]]);
        if ethertype == 0x8100 || ethertype == 0x88a8 {
            off += 4;
        } else {
            break;
        }
    }
    let l3 = off + 2;
    let (proto, l4, l4_len, pseudo) = match ethertype {
        0x0800 if frame.len() >= l3 + 20 => {
            let ip = &frame[l3..];
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            let fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0;
            if ihl < 20 || total < ihl || l3 + total > frame.len() || fragment {
                return;
            }
            let len = total - ihl;
            let src = [ip[12], ip[13], ip[14], ip[15]];
            let dst = [ip[16], ip[17], ip[18], ip[19]];
            (
                ip[9],
                l3 + ihl,
                len,
                checksum::pseudo_ipv4(src, dst, ip[9], len as u16),
            )
        }
        0x86dd if frame.len() >= l3 + 40 => {
            let ip = &frame[l3..];
            let len = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
            if l3 + 40 + len > frame.len() {
                return;
            }
            let src: [u8; 16] = ip[8..24].try_into().expect("16 bytes");
            let dst: [u8; 16] = ip[24..40].try_into().expect("16 bytes");
            (
                ip[6],
                l3 + 40,
                len,
                checksum::pseudo_ipv6(&src, &dst, ip[6], len as u32),
            )
        }
        _ => return,
    };
    let field = match proto {
        6 if l4_len >= 20 => l4 + 16,
        17 if l4_len >= 8 => l4 + 6,
        _ => return,
    };
    frame[field..field + 2].fill(0);
    let mut c = checksum::finish(checksum::sum(&frame[l4..l4 + l4_len], pseudo));
    if proto == 17 && c == 0 {
        c = 0xffff;
    }
    frame[field..field + 2].copy_from_slice(&c.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_device_is_an_error_not_another_port() {
        let err = SystemPort::open("nvs-no-such0", &PortOptions::new())
            .err()
            .unwrap();
        assert!(err.to_string().contains("no network device"), "{err}");
        let mut opts = PortOptions::new();
        opts.insert("n_rxq".into(), "2".into());
        assert!(matches!(
            SystemPort::open("lo", &opts),
            Err(PortError::BadOption { .. })
        ));
    }

    /// A TCP/IPv4 segment in a VLAN tag, its checksum left as a sender with
    /// offload leaves it (the pseudo-header sum only), is finished correctly.
    #[test]
    fn partial_checksums_are_completed() {
        let payload = b"hello, checksum";
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x81, 0x00, 0x00, 0x05, 0x08, 0x00]);
        let tcp_len = 20 + payload.len();
        let total = (20 + tcp_len) as u16;
        let (src, dst) = ([10, 0, 0, 1], [10, 0, 0, 2]);
        f.extend_from_slice(&[
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            1,
            0x40,
            0,
            64,
            6,
            0,
            0,
        ]);
        f.extend_from_slice(&src);
        f.extend_from_slice(&dst);
        let l4 = f.len();
        f.extend_from_slice(&[
            0x30, 0x39, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff,
        ]);
        f.extend_from_slice(&[0, 0, 0, 0]);
        f.extend_from_slice(payload);
        let partial = checksum::fold(checksum::pseudo_ipv4(src, dst, 6, tcp_len as u16));
        f[l4 + 16..l4 + 18].copy_from_slice(&partial.to_be_bytes());
        complete_checksum(&mut f);
        let check = checksum::sum(&f[l4..], checksum::pseudo_ipv4(src, dst, 6, tcp_len as u16));
        assert_eq!(
            checksum::fold(check),
            0xffff,
            "a correct checksum sums to all ones"
        );
        // Garbage is left alone, never a panic.
        for n in 0..f.len() {
            let mut cut = f[..n].to_vec();
            complete_checksum(&mut cut);
        }
    }
}
