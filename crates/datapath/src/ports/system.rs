//! The `system` port: an existing kernel network device (a NIC, a veth, a
//! tap that QEMU holds), as OVS's netdev-linux reaches it. nvs-vswitchd opens
//! Interface type `system`, and no type at all (what libvirt's
//! `ovs-vsctl add-port br0 vnet0` leaves), as this port. The device must
//! exist: a missing one fails `open`, it is never replaced by something else.
//!
//! Which transport ([`open`]): AF_XDP in native mode (the `afxdp` back end,
//! zero-copy where the driver has it) on a device whose driver runs XDP
//! itself (veth, virtio_net, most NICs), AF_PACKET otherwise. A tap (driver
//! `tun`) always gets AF_PACKET: what QEMU writes into it carries virtio-net
//! offloads (GSO super-frames, partial checksums) that the vnet header hands
//! over exactly and XDP would lose. A device where native XDP cannot attach
//! (no driver support, another program already there) gets AF_PACKET too.
//! The choice, and why AF_XDP was not taken, is in `status()`
//! (Interface.status), which nvs-vswitchd logs when it adds the port. Option
//! `transport` (`auto`, the default; `af_xdp`; `af_packet`) forces one: with
//! `af_xdp` a device that cannot take it is an error, never a fallback.
//!
//! AF_PACKET receive: a `TPACKET_V2` ring mapped once (`PACKET_RX_RING`) with
//! a virtio-net header before every frame (`PACKET_VNET_HDR`); `rx_burst`
//! copies each frame once into a frame of the port's [`Pool`] and hands the
//! slot back. What the kernel keeps apart from the bytes is put back: a VLAN
//! tag it took out (`TP_STATUS_VLAN_VALID`) is written back into the frame; a
//! checksum left partial (a local sender, a guest with checksum offload) is
//! finished exactly where `csum_start`/`csum_offset` say; a GSO super-frame
//! (a sender with TSO/GSO on) is cut here into segments of `gso_size` (TCP
//! over IPv4 and IPv6, UDP GSO) with their own headers and checksums, so
//! every frame leaving nvs is one the output device can send as it is.
//! Slots hold a whole 64 KiB super-frame. Frames nvs sent itself are not seen
//! (`PACKET_IGNORE_OUTGOING`). Runts, frames cut short by the slot, longer
//! than [`MAX_FRAME`] without GSO, or super-frames that do not parse are
//! counted in `rx_errors` and dropped.
//!
//! AF_PACKET transmit: one `sendmsg` per frame (a zero virtio-net header,
//! then the frame) on the bound socket (non-blocking): a full queue
//! (`EAGAIN`, `ENOBUFS`) or a device that is down or gone drops the packet
//! (`tx_dropped`); a frame the device refuses (larger than its MTU:
//! `EMSGSIZE`) or of a bad length is a `tx_errors`.
//!
//! Hot unplug: the port looks the device up by name every [`RECHECK_POLLS`]
//! empty polls. When it has gone (deleted, or moved to another namespace)
//! the port stops moving packets (`attached()` is false, and `device()`'s
//! state fails, so nvs-vswitchd reports it in Interface.error); when a
//! device of that name is back, the socket is bound to it again.
//!
//! Needs `CAP_NET_RAW`; without it `open` fails with [`PortError::Os`], whose
//! `lacks_privilege()` says so.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::actions::{PacketBuf, HEADROOM};
use crate::frame::{spread_chunk, Frame, Pool};
use crate::port::{Batch, NetDevice, Packet, Port, PortError, PortOptions, PortStats};
use crate::ports::afxdp::AfxdpPort;
use crate::ports::kernel::{
    existing_device, ifindex_of, os_error, read_mac, SystemDevice, RECHECK_POLLS,
};
use crate::ports::offload::{self, VnetHdr, VNET_HDR_LEN};
use crate::ports::tap::{MAX_FRAME, MAX_MTU, MIN_FRAME};

/// Bytes of one ring slot: the kernel's header, the address, the virtio-net
/// header and a GSO super-frame of up to 64 KiB.
const SLOT: usize = 128 * 1024;
/// Slots per ring block (a block is what the kernel allocates in one piece).
const SLOTS_PER_BLOCK: usize = 1;
/// Ring slots: 128 × 128 KiB = 16 MiB mapped per port.
const SLOTS: usize = 128;
/// Largest super-frame taken (GSO frames are at most 64 KiB of IP, plus Ethernet and a tag).
const MAX_GSO_FRAME: usize = 65536 + 14 + 8;
/// Frames of the port's pool: enough for the segments of a few super-frames in flight.
const POOL_FRAMES: usize = 512;
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
    /// Segments of a super-frame not yet handed out (a batch holds fewer).
    pending: VecDeque<Packet>,
    /// A super-frame with its VLAN tag put back, and one segment being built.
    gso_frame: Vec<u8>,
    gso_segment: Vec<u8>,
    /// Why AF_XDP was not used, for status(); None when asked for AF_PACKET.
    no_xdp: Option<String>,
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

/// Which transport a `system` port uses (option `transport`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    Auto,
    AfXdp,
    AfPacket,
}

fn transport_option(name: &str, options: &PortOptions) -> Result<Transport, PortError> {
    let mut transport = Transport::Auto;
    for (k, v) in options {
        transport = match (k.as_str(), v.as_str()) {
            ("transport", "auto") => Transport::Auto,
            ("transport", "af_xdp") => Transport::AfXdp,
            ("transport", "af_packet") => Transport::AfPacket,
            ("transport", _) => {
                return Err(PortError::BadOption {
                    port: name.to_string(),
                    key: k.clone(),
                    value: v.clone(),
                    why: "transport is auto, af_xdp or af_packet".into(),
                })
            }
            _ => {
                return Err(PortError::BadOption {
                    port: name.to_string(),
                    key: k.clone(),
                    value: v.clone(),
                    why: "a system port takes one option: transport (auto, af_xdp, af_packet)"
                        .into(),
                })
            }
        };
    }
    Ok(transport)
}

/// Whether device `name` is a tun/tap device (only those have `tun_flags`).
fn is_tap(name: &str) -> bool {
    std::path::Path::new(&format!("/sys/class/net/{name}/tun_flags")).exists()
}

/// Opens a `system` port: AF_XDP in native mode where the device's driver
/// runs XDP and it is not a tap, AF_PACKET otherwise (see the module doc).
pub fn open(name: &str, options: &PortOptions) -> Result<Box<dyn Port>, PortError> {
    let transport = transport_option(name, options)?;
    existing_device(name)?;
    let no_xdp = match transport {
        Transport::AfPacket => None,
        Transport::Auto if is_tap(name) => Some(
            "not tried: a tap (driver tun), whose frames carry virtio-net offloads".to_string(),
        ),
        _ => match AfxdpPort::open_native(name, "system") {
            Ok(port) => return Ok(Box::new(port)),
            Err(e) if transport == Transport::AfXdp => return Err(e),
            Err(e) => Some(format!("not usable: {e}")),
        },
    };
    let mut port = SystemPort::open_packet(name)?;
    port.no_xdp = no_xdp;
    Ok(Box::new(port))
}

impl SystemPort {
    /// Opens device `name` over AF_PACKET.
    fn open_packet(name: &str) -> Result<SystemPort, PortError> {
        let ifindex = existing_device(name)?;
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
        // Before the ring: the kernel refuses it once a ring exists.
        setsockopt(&sock, libc::PACKET_VNET_HDR, &1 as &libc::c_int)
            .map_err(|e| os_error(name, "asking for virtio-net headers (PACKET_VNET_HDR)", e))?;
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
            pending: VecDeque::new(),
            gso_frame: Vec::with_capacity(MAX_GSO_FRAME + 4),
            gso_segment: Vec::with_capacity(MAX_FRAME),
            no_xdp: None,
            stats: PortStats::default(),
        })
    }

    /// Takes the frame of one ring slot (`data`, its virtio-net header `vnet`,
    /// a stripped VLAN `tag`) into the batch, or into `pending` when it is
    /// cut into segments; counts what cannot be taken.
    fn take(&mut self, data: &[u8], vnet: VnetHdr, tag: Option<(u16, u16)>, batch: &mut Batch) {
        if vnet.is_gso() {
            self.gso_frame.clear();
            put_tag_back(&mut self.gso_frame, data, tag);
            let (pool, pending, stats) = (&self.pool, &mut self.pending, &mut self.stats);
            let cut = offload::segment(
                &self.gso_frame,
                vnet.gso_type,
                usize::from(vnet.gso_size),
                MAX_FRAME,
                &mut self.gso_segment,
                |seg| {
                    let frame = pool.alloc().unwrap_or_else(|| Frame::heap(BUF_LEN));
                    match PacketBuf::from_frame(frame, HEADROOM, seg) {
                        Ok(pkt) => {
                            stats.rx_packets += 1;
                            stats.rx_bytes += seg.len() as u64;
                            pending.push_back(pkt);
                        }
                        Err(_) => stats.rx_errors += 1,
                    }
                },
            );
            if cut.is_err() {
                self.stats.rx_errors += 1;
            }
            while batch.room() > 0 {
                match self.pending.pop_front() {
                    Some(pkt) => batch.pkts.push(pkt),
                    None => break,
                }
            }
            return;
        }
        if data.len() > MAX_FRAME {
            self.stats.rx_errors += 1;
            return;
        }
        let mut frame = self.buffer();
        let buf = &mut frame.as_mut()[HEADROOM..];
        let total = put_tag_back_into(buf, data, tag);
        if vnet.needs_csum() {
            // csum_start counts from the frame's first byte; a tag put back moves it.
            let shift = if tag.is_some() { 4 } else { 0 };
            let start = usize::from(vnet.csum_start) + shift;
            if !offload::complete_at(&mut buf[..total], start, usize::from(vnet.csum_offset)) {
                self.stats.rx_errors += 1;
                return;
            }
        }
        match PacketBuf::new(frame, HEADROOM, total) {
            Ok(pkt) => {
                self.stats.rx_packets += 1;
                self.stats.rx_bytes += total as u64;
                batch.pkts.push(pkt);
            }
            Err(_) => self.stats.rx_errors += 1,
        }
    }
}

/// Appends `data` to `out` with a stripped VLAN tag put back after the MAC addresses.
fn put_tag_back(out: &mut Vec<u8>, data: &[u8], tag: Option<(u16, u16)>) {
    match tag {
        None => out.extend_from_slice(data),
        Some((tpid, tci)) => {
            out.extend_from_slice(&data[..12]);
            out.extend_from_slice(&tpid.to_be_bytes());
            out.extend_from_slice(&tci.to_be_bytes());
            out.extend_from_slice(&data[12..]);
        }
    }
}

/// Copies `data` into `buf` with a stripped VLAN tag put back; returns the length.
/// `buf` holds at least `MAX_FRAME + 4` bytes and `data` at most `MAX_FRAME`.
fn put_tag_back_into(buf: &mut [u8], data: &[u8], tag: Option<(u16, u16)>) -> usize {
    let n = data.len();
    match tag {
        None => {
            buf[..n].copy_from_slice(data);
            n
        }
        Some((tpid, tci)) => {
            buf[..12].copy_from_slice(&data[..12]);
            buf[12..14].copy_from_slice(&tpid.to_be_bytes());
            buf[14..16].copy_from_slice(&tci.to_be_bytes());
            buf[16..n + 4].copy_from_slice(&data[12..]);
            n + 4
        }
    }
}

impl Port for SystemPort {
    /// Opens the AF_PACKET transport (the registry's opener, [`open`], chooses).
    fn open(name: &str, options: &PortOptions) -> Result<Self, PortError> {
        transport_option(name, options)?;
        SystemPort::open_packet(name)
    }

    fn kind(&self) -> &'static str {
        "system"
    }

    fn rx_burst(&mut self, batch: &mut Batch) -> Result<usize, PortError> {
        if self.sock.is_none() {
            return Ok(0);
        }
        let before = batch.len();
        while batch.room() > 0 {
            let Some(pkt) = self.pending.pop_front() else {
                break;
            };
            batch.pkts.push(pkt);
        }
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
            if snap != len
                || !(MIN_FRAME..=MAX_GSO_FRAME).contains(&len)
                || mac_off < VNET_HDR_LEN
                || mac_off + snap > SLOT
            {
                self.stats.rx_errors += 1;
            } else {
                // SAFETY: the frame's bytes and the virtio-net header before
                // them lie in the slot (checked above) and are ours until released.
                let (data, vnet) = unsafe {
                    let vnet = &*slot
                        .add(mac_off - VNET_HDR_LEN)
                        .cast::<[u8; VNET_HDR_LEN]>();
                    (
                        std::slice::from_raw_parts(slot.add(mac_off), snap),
                        VnetHdr::parse(vnet),
                    )
                };
                self.take(data, vnet, tag, batch);
            }
            status_word.store(libc::TP_STATUS_KERNEL, Ordering::Release);
            self.ring.next = (self.ring.next + 1) % SLOTS;
        }
        let got = batch.len() - before;
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
        // No offload asked of the kernel: every frame leaves whole, checksums done.
        let mut vnet = [0u8; VNET_HDR_LEN];
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
            let mut iov = [
                libc::iovec {
                    iov_base: vnet.as_mut_ptr().cast(),
                    iov_len: VNET_HDR_LEN,
                },
                libc::iovec {
                    iov_base: pkt.data().as_ptr() as *mut libc::c_void,
                    iov_len: len,
                },
            ];
            // SAFETY: msghdr is plain data; all-zero is valid (no address, no control).
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            msg.msg_iov = iov.as_mut_ptr();
            msg.msg_iovlen = iov.len();
            loop {
                // SAFETY: the iovecs point at the header and the packet's bytes, valid for
                // their lengths; the kernel only reads them.
                let n = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_DONTWAIT) };
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
        self.pending.clear();
        self.sock = None;
        self.ifindex = 0;
    }

    fn status(&self) -> PortOptions {
        let mut status = PortOptions::from([(
            "transport".into(),
            "af_packet (tpacket_v2 rx ring, vnet headers)".into(),
        )]);
        if let Some(why) = &self.no_xdp {
            status.insert("af_xdp".into(), why.clone());
        }
        status
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
}
