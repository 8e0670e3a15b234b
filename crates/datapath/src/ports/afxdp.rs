//! The `afxdp` port: an existing kernel device through AF_XDP sockets (XSKs),
//! as OVS's netdev-afxdp. Options as OVS's: `xdp-mode` (`best-effort`, the
//! default, tries native with zero-copy, then native, then generic),
//! `use-need-wakeup` (default true), `n_rxq` (default 1: one XSK per rx queue
//! 0..n_rxq; a `system` port that chose AF_XDP binds every rx queue the device
//! has, so no queue's traffic bypasses the switch).
//!
//! Each queue's UMEM is a [`Pool`] of its own: its chunks are lent to the
//! fill ring and come back through the rx ring as frames of the pool (no
//! copy on the way in); a frame of queue 0's pool is sent by lending its
//! chunk to queue 0's tx ring (no copy), others (from another port or queue)
//! are copied once into a chunk; sent chunks come home through the
//! completion ring. Fill rings are topped up to [`FILL_TARGET`] chunks on
//! every poll; with need-wakeup the kernel is kicked only when it asks. Rx
//! takes from the queues in turn.
//!
//! XDP hands no mark of a checksum the sender left partial (a veth's peer
//! with checksum offload on): `offload::repair_partial` infers and finishes
//! it. A veth whose far end runs XDP has the kernel turn its peer's TSO off,
//! so no GSO super-frame arrives here.
//!
//! Hot unplug: as `system` ports, the device is looked up by name every
//! `RECHECK_POLLS` empty polls; when it has gone the sockets and program go
//! (the port moves nothing, `device()`'s state fails), and when a device of
//! that name is back everything is bound again.
//!
//! The XDP program that redirects every frame of the queue to the socket is
//! six instructions assembled here (`bpf_redirect_map` on an XSKMAP keyed by
//! the rx queue, passing the frame to the stack when no socket is there) and
//! loaded with bpf(2): no compiler, no BTF, no libbpf; the kernel (6.x)
//! charges its memory to the memory cgroup, so `RLIMIT_MEMLOCK` does not
//! matter. It is attached with a BPF link, so it goes when the port closes.
//!
//! Frames shorter than an Ethernet header or longer than a chunk's room are
//! counted (`rx_errors`/`tx_errors`) and dropped.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::actions::PacketBuf;
use crate::frame::{Frame, Pool};
use crate::netdev::MAX_NAME;
use crate::port::{Batch, NetDevice, Port, PortError, PortOptions, PortStats};
use crate::ports::kernel::{self, os_error, SystemDevice, RECHECK_POLLS};
use crate::ports::offload;
use crate::ports::tap::MIN_FRAME;

/// Bytes per UMEM chunk (aligned mode wants a power of two).
const CHUNK: usize = 4096;
/// Chunks of the UMEM (16 MiB).
const CHUNKS: usize = 4096;
/// Where the kernel puts a received frame in its chunk (XDP_PACKET_HEADROOM).
const XDP_HEADROOM: usize = 256;
/// Ring sizes (powers of two).
const FILL_SIZE: u32 = 2048;
const COMP_SIZE: u32 = 2048;
const RX_SIZE: u32 = 1024;
const TX_SIZE: u32 = 1024;
/// Most rx queues a port binds (each has its own 16 MiB UMEM).
const MAX_RXQ: u32 = 16;
/// Chunks kept in the fill ring: the rest of the UMEM serves frames out in the datapath and copies for tx.
pub const FILL_TARGET: u32 = 1024;

// Linux UAPI (linux/if_xdp.h, linux/bpf.h).
const AF_XDP: libc::c_int = 44;
const SOL_XDP: libc::c_int = 283;
const XDP_MMAP_OFFSETS: libc::c_int = 1;
const XDP_RX_RING: libc::c_int = 2;
const XDP_TX_RING: libc::c_int = 3;
const XDP_UMEM_REG: libc::c_int = 4;
const XDP_UMEM_FILL_RING: libc::c_int = 5;
const XDP_UMEM_COMPLETION_RING: libc::c_int = 6;
const XDP_COPY: u16 = 1 << 1;
const XDP_ZEROCOPY: u16 = 1 << 2;
const XDP_USE_NEED_WAKEUP: u16 = 1 << 3;
const XDP_RING_NEED_WAKEUP: u32 = 1;
const PGOFF_RX: libc::off_t = 0;
const PGOFF_TX: libc::off_t = 0x8000_0000;
const PGOFF_FILL: libc::off_t = 0x1_0000_0000;
const PGOFF_COMP: libc::off_t = 0x1_8000_0000;
const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_LINK_DETACH: libc::c_long = 34;
const BPF_MAP_TYPE_XSKMAP: u32 = 17;
const BPF_PROG_TYPE_XDP: u32 = 6;
const BPF_XDP: u32 = 37;
const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct RingOffset {
    producer: u64,
    consumer: u64,
    desc: u64,
    flags: u64,
}

#[repr(C)]
#[derive(Default)]
struct MmapOffsets {
    rx: RingOffset,
    tx: RingOffset,
    fr: RingOffset,
    cr: RingOffset,
}

#[repr(C)]
struct UmemReg {
    addr: u64,
    len: u64,
    chunk_size: u32,
    headroom: u32,
    flags: u32,
    tx_metadata_len: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct XdpDesc {
    addr: u64,
    len: u32,
    options: u32,
}

#[repr(C)]
struct SockaddrXdp {
    family: u16,
    flags: u16,
    ifindex: u32,
    queue_id: u32,
    shared_umem_fd: u32,
}

/// One mapped ring: producer and consumer words shared with the kernel, and
/// its descriptors (`T`: a UMEM address for fill/completion, an [`XdpDesc`] for rx/tx).
struct Ring<T> {
    map: *mut u8,
    map_len: usize,
    producer: *const AtomicU32,
    consumer: *const AtomicU32,
    flags: *const AtomicU32,
    descs: *mut T,
    mask: u32,
}

impl<T: Copy> Ring<T> {
    /// Maps ring `pgoff` of `fd`, of `size` entries, as `off` describes it.
    fn map(
        fd: &OwnedFd,
        pgoff: libc::off_t,
        off: RingOffset,
        size: u32,
    ) -> std::io::Result<Ring<T>> {
        let map_len = off.desc as usize + size as usize * std::mem::size_of::<T>();
        // SAFETY: maps the ring the kernel made for this socket; checked below.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                pgoff,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let map = map.cast::<u8>();
        // SAFETY: the offsets come from the kernel and lie inside the mapping.
        unsafe {
            Ok(Ring {
                map,
                map_len,
                producer: map.add(off.producer as usize).cast(),
                consumer: map.add(off.consumer as usize).cast(),
                flags: map.add(off.flags as usize).cast(),
                descs: map.add(off.desc as usize).cast(),
                mask: size - 1,
            })
        }
    }

    fn producer(&self) -> &AtomicU32 {
        // SAFETY: points into the live mapping, 4-byte aligned (kernel layout).
        unsafe { &*self.producer }
    }

    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as above.
        unsafe { &*self.consumer }
    }

    fn needs_wakeup(&self) -> bool {
        // SAFETY: as above.
        unsafe { &*self.flags }.load(Ordering::Relaxed) & XDP_RING_NEED_WAKEUP != 0
    }

    /// Entries the kernel filled that we may take (rx, completion).
    fn ready(&self) -> u32 {
        self.producer()
            .load(Ordering::Acquire)
            .wrapping_sub(self.consumer().load(Ordering::Relaxed))
    }

    /// Room we may fill (fill, tx).
    fn room(&self) -> u32 {
        (self.mask + 1).wrapping_sub(
            self.producer()
                .load(Ordering::Relaxed)
                .wrapping_sub(self.consumer().load(Ordering::Acquire)),
        )
    }

    fn read(&self, idx: u32) -> T {
        // SAFETY: the index is masked into the ring's entries.
        unsafe { std::ptr::read_volatile(self.descs.add((idx & self.mask) as usize)) }
    }

    fn write(&self, idx: u32, v: T) {
        // SAFETY: as above.
        unsafe { std::ptr::write_volatile(self.descs.add((idx & self.mask) as usize), v) }
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        // SAFETY: unmaps what `map` mapped, once.
        unsafe {
            libc::munmap(self.map.cast(), self.map_len);
        }
    }
}

/// An AF_XDP port on one queue of a device.
pub struct AfxdpPort {
    name: String,
    /// The socket and its program while the device is here; None while it is gone.
    xsk: Option<Xsk>,
    /// The ifindex the socket is bound to; 0 while the device is gone.
    ifindex: u32,
    want_modes: &'static [Mode],
    need_wakeup: bool,
    /// Rx queues asked for; None: every rx queue the device has (system ports).
    n_rxq: Option<u32>,
    /// The Interface type it serves: "afxdp", or "system" when that chose AF_XDP.
    kind: &'static str,
    mac: [u8; 6],
    /// Polls that found nothing since the device was last looked up by name.
    idle_polls: u32,
    /// Closed by `close`: never bound again.
    closed: bool,
    stats: PortStats,
}

/// The device's XDP program and one XSK per rx queue.
struct Xsk {
    /// Field order is drop order: the sockets before the program's link.
    queues: Vec<Queue>,
    _link: OwnedFd,
    _prog: OwnedFd,
    _map: OwnedFd,
    /// The mode in use: "native-with-zerocopy", "native" or "generic".
    mode: &'static str,
    /// The queue the next rx burst starts with (queues take turns).
    next_rx: usize,
}

/// One XSK bound to one rx queue of a device, with its own UMEM.
struct Queue {
    /// Field order is drop order: rings before the socket.
    rx: Ring<XdpDesc>,
    tx: Ring<XdpDesc>,
    fill: Ring<u64>,
    comp: Ring<u64>,
    sock: OwnedFd,
    pool: Pool,
    /// Chunks lent to the fill ring and not yet back through rx.
    in_fill: u32,
    need_wakeup: bool,
}

// SAFETY: the rings' pointers are into mappings the socket owns alone; it is used under the port's lock.
unsafe impl Send for Queue {}

/// bpf(2) with a 128-byte attribute block.
fn bpf(cmd: libc::c_long, attr: &mut [u8; 128]) -> std::io::Result<i64> {
    // SAFETY: the kernel reads (and for some commands writes) at most the size given.
    let rc = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len() as u32) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(rc)
}

fn put32(attr: &mut [u8; 128], at: usize, v: u32) {
    attr[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}

fn put64(attr: &mut [u8; 128], at: usize, v: u64) {
    attr[at..at + 8].copy_from_slice(&v.to_ne_bytes());
}

fn fd_of(rc: i64) -> OwnedFd {
    // SAFETY: a descriptor the kernel just returned to us.
    unsafe { OwnedFd::from_raw_fd(rc as i32) }
}

/// An XSKMAP of `entries` queues.
fn xsk_map(entries: u32) -> std::io::Result<OwnedFd> {
    let mut a = [0u8; 128];
    put32(&mut a, 0, BPF_MAP_TYPE_XSKMAP);
    put32(&mut a, 4, 4);
    put32(&mut a, 8, 4);
    put32(&mut a, 12, entries);
    bpf(BPF_MAP_CREATE, &mut a).map(fd_of)
}

/// The redirect program: `return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);`
fn redirect_program(map: &OwnedFd) -> std::io::Result<OwnedFd> {
    // struct bpf_insn { u8 code; u8 dst:4, src:4; s16 off; s32 imm; }
    let insn = |code: u8, dst: u8, src: u8, off: i16, imm: i32| -> u64 {
        u64::from(code)
            | (u64::from(dst | (src << 4)) << 8)
            | (u64::from(off as u16) << 16)
            | (u64::from(imm as u32) << 32)
    };
    let prog: [u64; 6] = [
        insn(0x61, 2, 1, 16, 0), // r2 = *(u32 *)(r1 + 16): rx_queue_index
        insn(0x18, 1, 1, 0, map.as_raw_fd()), // r1 = the map (ld_imm64, BPF_PSEUDO_MAP_FD)
        insn(0x00, 0, 0, 0, 0),  //      (second half of ld_imm64)
        insn(0xb7, 3, 0, 0, 2),  // r3 = XDP_PASS (when the queue has no socket)
        insn(0x85, 0, 0, 0, 51), // call bpf_redirect_map
        insn(0x95, 0, 0, 0, 0),  // exit
    ];
    let license = c"GPL";
    let mut a = [0u8; 128];
    put32(&mut a, 0, BPF_PROG_TYPE_XDP);
    put32(&mut a, 4, prog.len() as u32);
    put64(&mut a, 8, prog.as_ptr() as u64);
    put64(&mut a, 16, license.as_ptr() as u64);
    a[48..55].copy_from_slice(b"nvs_xsk");
    put32(&mut a, 68, BPF_XDP);
    bpf(BPF_PROG_LOAD, &mut a).map(fd_of)
}

/// Attaches `prog` to device `ifindex` in mode `flags` with a BPF link.
fn attach(prog: &OwnedFd, ifindex: u32, flags: u32) -> std::io::Result<OwnedFd> {
    let mut a = [0u8; 128];
    put32(&mut a, 0, prog.as_raw_fd() as u32);
    put32(&mut a, 4, ifindex);
    put32(&mut a, 8, BPF_XDP);
    put32(&mut a, 12, flags);
    bpf(BPF_LINK_CREATE, &mut a).map(fd_of)
}

/// Detaches an XDP link now: closing its descriptor releases it later (the
/// kernel defers that), and the next mode's attach would meet it (EEXIST).
fn detach(link: &OwnedFd) -> std::io::Result<()> {
    let mut a = [0u8; 128];
    put32(&mut a, 0, link.as_raw_fd() as u32);
    bpf(BPF_LINK_DETACH, &mut a).map(|_| ())
}

fn map_set(map: &OwnedFd, key: u32, value: u32) -> std::io::Result<()> {
    let mut a = [0u8; 128];
    put32(&mut a, 0, map.as_raw_fd() as u32);
    put64(&mut a, 8, &key as *const u32 as u64);
    put64(&mut a, 16, &value as *const u32 as u64);
    bpf(BPF_MAP_UPDATE_ELEM, &mut a).map(|_| ())
}

fn setsockopt<T>(fd: &OwnedFd, opt: libc::c_int, val: &T) -> std::io::Result<()> {
    // SAFETY: `val` is a plain value of the size passed, living for the call.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            SOL_XDP,
            opt,
            val as *const T as *const libc::c_void,
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// An XDP mode: its name, attach flags, bind flags.
type Mode = (&'static str, u32, u16);
const ZC: Mode = ("native-with-zerocopy", XDP_FLAGS_DRV_MODE, XDP_ZEROCOPY);
const NATIVE: Mode = ("native", XDP_FLAGS_DRV_MODE, XDP_COPY);
const GENERIC: Mode = ("generic", XDP_FLAGS_SKB_MODE, XDP_COPY);
/// What a `system` port tries: the driver's own XDP only (generic XDP gains
/// nothing over AF_PACKET and loses the offloads its vnet header carries).
const NATIVE_MODES: &[Mode] = &[ZC, NATIVE];

/// The modes `xdp-mode` asks for, in the order to try.
fn modes(option: &str) -> Option<&'static [Mode]> {
    Some(match option {
        "best-effort" => &[ZC, NATIVE, GENERIC],
        "native-with-zerocopy" => &[ZC],
        "native" => &[NATIVE],
        "generic" => &[GENERIC],
        _ => return None,
    })
}

fn bad_option(port: &str, key: &str, value: &str, why: &str) -> PortError {
    PortError::BadOption {
        port: port.to_string(),
        key: key.to_string(),
        value: value.to_string(),
        why: why.to_string(),
    }
}

/// The rx queues device `name` has (at least 1, at most [`MAX_RXQ`]).
fn rx_queues(name: &str) -> u32 {
    let n = std::fs::read_dir(format!("/sys/class/net/{name}/queues"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                .count()
        })
        .unwrap_or(1);
    (n as u32).clamp(1, MAX_RXQ)
}

impl AfxdpPort {
    /// The XDP mode the port runs in ("gone" while its device is).
    pub fn mode(&self) -> &'static str {
        self.xsk.as_ref().map_or("gone", |x| x.mode)
    }

    /// Whether the port is bound to its device now.
    pub fn attached(&self) -> bool {
        self.xsk.is_some()
    }

    /// Opens device `name` in native XDP mode (zero-copy where the driver has
    /// it), with need-wakeup, for a port of type `kind`: how `system` ports take AF_XDP.
    pub(crate) fn open_native(name: &str, kind: &'static str) -> Result<AfxdpPort, PortError> {
        AfxdpPort::bind(name, NATIVE_MODES, true, None, kind)
    }

    /// Opens device `name`: `n_rxq` queues, or (None) every rx queue the device has.
    fn bind(
        name: &str,
        want_modes: &'static [Mode],
        need_wakeup: bool,
        n_rxq: Option<u32>,
        kind: &'static str,
    ) -> Result<AfxdpPort, PortError> {
        let ifindex = kernel::existing_device(name)?;
        let queues = n_rxq.unwrap_or_else(|| rx_queues(name));
        let xsk = Xsk::open(name, ifindex, want_modes, need_wakeup, queues)?;
        Ok(AfxdpPort {
            name: name.to_string(),
            xsk: Some(xsk),
            ifindex,
            want_modes,
            need_wakeup,
            n_rxq,
            kind,
            mac: kernel::read_mac(name),
            idle_polls: 0,
            closed: false,
            stats: PortStats::default(),
        })
    }

    /// Looks the device up by name: lets the socket go when the device has
    /// gone (or is another device of the name), binds anew when it is back.
    fn recheck(&mut self) {
        let now = kernel::ifindex_of(&self.name);
        if now == self.ifindex && self.xsk.is_some() {
            return;
        }
        // Frames of the old UMEM still in the datapath keep it alive until they are dropped.
        self.xsk = None;
        self.ifindex = 0;
        if now != 0 {
            let queues = self.n_rxq.unwrap_or_else(|| rx_queues(&self.name));
            if let Ok(xsk) = Xsk::open(&self.name, now, self.want_modes, self.need_wakeup, queues) {
                self.xsk = Some(xsk);
                self.ifindex = now;
                self.mac = kernel::read_mac(&self.name);
            }
        }
    }
}

impl Xsk {
    /// Loads the redirect program, attaches it in the first of `want_modes`
    /// in which an XSK binds on each of rx queues 0..`n_rxq` of device
    /// `ifindex`, and fills their fill rings.
    fn open(
        name: &str,
        ifindex: u32,
        want_modes: &'static [Mode],
        need_wakeup: bool,
        n_rxq: u32,
    ) -> Result<Xsk, PortError> {
        let map = xsk_map(n_rxq).map_err(|e| os_error(name, "creating the XSKMAP (bpf)", e))?;
        let prog = redirect_program(&map)
            .map_err(|e| os_error(name, "loading the XDP redirect program (bpf)", e))?;
        let mut last = std::io::Error::from_raw_os_error(libc::EOPNOTSUPP);
        for &(mode, attach_flags, bind_flags) in want_modes {
            let link = match attach(&prog, ifindex, attach_flags) {
                Ok(l) => l,
                Err(e) => {
                    last = e;
                    continue;
                }
            };
            match Queue::open_all(&map, ifindex, bind_flags, need_wakeup, n_rxq) {
                Ok(queues) => {
                    return Ok(Xsk {
                        queues,
                        _link: link,
                        _prog: prog,
                        _map: map,
                        mode,
                        next_rx: 0,
                    })
                }
                Err(PortError::Io(e)) => {
                    last = e;
                    let _ = detach(&link);
                }
                Err(e) => return Err(e),
            }
        }
        Err(os_error(
            name,
            "attaching XDP and binding an AF_XDP socket in the modes xdp-mode allows",
            last,
        ))
    }

    /// Receives from the queues in turn until the batch is full or all are empty.
    fn rx(&mut self, batch: &mut Batch, stats: &mut PortStats) -> usize {
        let n = self.queues.len();
        let mut got = 0;
        for i in 0..n {
            if batch.room() == 0 {
                break;
            }
            got += self.queues[(self.next_rx + i) % n].rx(batch, stats);
        }
        self.next_rx = (self.next_rx + 1) % n;
        got
    }

    /// Sends through queue 0's tx ring.
    fn tx(&mut self, batch: &mut Batch, stats: &mut PortStats) -> usize {
        self.queues[0].tx(batch, stats)
    }
}

impl Queue {
    /// Opens an XSK (with its own UMEM) on each of queues 0..`n_rxq`, each put in `map`.
    fn open_all(
        map: &OwnedFd,
        ifindex: u32,
        bind_flags: u16,
        need_wakeup: bool,
        n_rxq: u32,
    ) -> Result<Vec<Queue>, PortError> {
        let mut queues = Vec::with_capacity(n_rxq as usize);
        for queue_id in 0..n_rxq {
            let pool = Pool::new(CHUNKS, CHUNK)?;
            let (sock, rx, tx, fill, comp) =
                open_socket(&pool, ifindex, queue_id, bind_flags, need_wakeup)?;
            map_set(map, queue_id, sock.as_raw_fd() as u32)?;
            let mut q = Queue {
                rx,
                tx,
                fill,
                comp,
                sock,
                pool,
                in_fill: 0,
                need_wakeup,
            };
            q.refill();
            queues.push(q);
        }
        Ok(queues)
    }

    /// Gives chunks whose frames the kernel has sent back to the pool.
    fn complete(&mut self) {
        let n = self.comp.ready();
        let start = self.comp.consumer().load(Ordering::Relaxed);
        for i in 0..n {
            let addr = self.comp.read(start.wrapping_add(i));
            let chunk = (addr as usize & !(CHUNK - 1)) as u32;
            // SAFETY: the chunk was lent to the tx ring by `tx_burst` and the kernel is done with it.
            drop(unsafe { self.pool.reclaim(chunk) });
        }
        self.comp
            .consumer()
            .store(start.wrapping_add(n), Ordering::Release);
    }

    /// Tops the fill ring up to FILL_TARGET chunks.
    fn refill(&mut self) {
        let want = FILL_TARGET
            .saturating_sub(self.in_fill)
            .min(self.fill.room());
        let start = self.fill.producer().load(Ordering::Relaxed);
        let mut n = 0;
        while n < want {
            let Some(frame) = self.pool.alloc() else {
                break;
            };
            let offset = self
                .pool
                .lend(frame)
                .unwrap_or_else(|_| unreachable!("a frame of this pool"));
            self.fill.write(start.wrapping_add(n), u64::from(offset));
            n += 1;
        }
        if n > 0 {
            self.fill
                .producer()
                .store(start.wrapping_add(n), Ordering::Release);
            self.in_fill += n;
        }
        if self.need_wakeup && self.fill.needs_wakeup() {
            self.kick_rx();
        }
    }

    fn kick_rx(&self) {
        // SAFETY: a zero-length receive only wakes the kernel's rx processing.
        unsafe {
            libc::recvfrom(
                self.sock.as_raw_fd(),
                std::ptr::null_mut(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            );
        }
    }

    fn kick_tx(&self) {
        // SAFETY: a zero-length send only makes the kernel process the tx ring.
        unsafe {
            libc::sendto(
                self.sock.as_raw_fd(),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            );
        }
    }

    /// Receives up to the batch's room; counts in `stats`.
    fn rx(&mut self, batch: &mut Batch, stats: &mut PortStats) -> usize {
        self.complete();
        let n = self.rx.ready().min(batch.room() as u32);
        let start = self.rx.consumer().load(Ordering::Relaxed);
        let mut got = 0;
        for i in 0..n {
            let d = self.rx.read(start.wrapping_add(i));
            let chunk = d.addr as usize & !(CHUNK - 1);
            let at = d.addr as usize - chunk;
            // SAFETY: the chunk was lent to the fill ring and the kernel handed it back through rx.
            let frame = unsafe { self.pool.reclaim(chunk as u32) };
            match PacketBuf::new(frame, at, d.len as usize) {
                Ok(mut pkt) if pkt.len() >= MIN_FRAME => {
                    // XDP carries no mark of a checksum left partial: infer it.
                    offload::repair_partial(pkt.data_mut());
                    stats.rx_packets += 1;
                    stats.rx_bytes += u64::from(d.len);
                    batch.pkts.push(pkt);
                    got += 1;
                }
                // A runt, or a descriptor past its chunk: dropped (the frame goes home).
                _ => stats.rx_errors += 1,
            }
        }
        self.rx
            .consumer()
            .store(start.wrapping_add(n), Ordering::Release);
        self.in_fill = self.in_fill.saturating_sub(n);
        self.refill();
        got
    }

    /// Sends (or drops) every packet of the batch; counts in `stats`.
    fn tx(&mut self, batch: &mut Batch, stats: &mut PortStats) -> usize {
        self.complete();
        let mut room = self.tx.room();
        let start = self.tx.producer().load(Ordering::Relaxed);
        let mut sent = 0u32;
        for pkt in batch.pkts.drain(..) {
            let len = pkt.len();
            if !(MIN_FRAME..=CHUNK - XDP_HEADROOM).contains(&len) {
                stats.tx_errors += 1;
                continue;
            }
            if room == 0 {
                stats.tx_dropped += 1;
                continue;
            }
            let Some((offset, at, len)) = self.lend_or_copy(pkt) else {
                stats.tx_dropped += 1;
                continue;
            };
            let desc = XdpDesc {
                addr: u64::from(offset) + at as u64,
                len: len as u32,
                options: 0,
            };
            self.tx.write(start.wrapping_add(sent), desc);
            sent += 1;
            room -= 1;
            stats.tx_packets += 1;
            stats.tx_bytes += len as u64;
        }
        if sent > 0 {
            self.tx
                .producer()
                .store(start.wrapping_add(sent), Ordering::Release);
            if !self.need_wakeup || self.tx.needs_wakeup() {
                self.kick_tx();
            }
        }
        sent as usize
    }

    /// The chunk offset and data start of `pkt` in this pool, copying it in when it lives elsewhere.
    fn lend_or_copy(&self, pkt: PacketBuf<Frame>) -> Option<(u32, usize, usize)> {
        let (frame, start, len) = pkt.into_parts();
        match self.pool.lend(frame) {
            Ok(offset) => Some((offset, start, len)),
            Err(frame) => {
                let own = self.pool.alloc()?;
                let data = &frame.as_ref()[start..start + len];
                let pkt = PacketBuf::from_frame(own, XDP_HEADROOM, data).ok()?;
                let (own, start, len) = pkt.into_parts();
                let offset = self
                    .pool
                    .lend(own)
                    .unwrap_or_else(|_| unreachable!("a frame of this pool"));
                Some((offset, start, len))
            }
        }
    }
}

impl Port for AfxdpPort {
    fn open(name: &str, options: &PortOptions) -> Result<Self, PortError> {
        if name.is_empty() || name.len() > MAX_NAME {
            return Err(PortError::BadName {
                name: name.to_string(),
                why: "a kernel device name has 1 to 15 bytes",
            });
        }
        let mut want_modes = modes("best-effort").expect("known");
        let mut need_wakeup = true;
        // As OVS: one queue unless asked for more.
        let mut n_rxq = Some(1);
        for (k, v) in options {
            match k.as_str() {
                "xdp-mode" => {
                    want_modes = modes(v).ok_or_else(|| {
                        bad_option(
                            name,
                            k,
                            v,
                            "xdp-mode is native-with-zerocopy, native, generic or best-effort",
                        )
                    })?
                }
                "use-need-wakeup" => {
                    need_wakeup = match v.as_str() {
                        "true" => true,
                        "false" => false,
                        _ => {
                            return Err(bad_option(name, k, v, "use-need-wakeup is true or false"))
                        }
                    }
                }
                "n_rxq" => {
                    n_rxq = match v.parse::<u32>() {
                        Ok(n) if (1..=MAX_RXQ).contains(&n) => Some(n),
                        _ => {
                            return Err(bad_option(
                                name,
                                k,
                                v,
                                &format!("n_rxq is a number of rx queues from 1 to {MAX_RXQ}"),
                            ))
                        }
                    }
                }
                _ => {
                    return Err(bad_option(
                        name,
                        k,
                        v,
                        "not an afxdp option (xdp-mode, use-need-wakeup, n_rxq)",
                    ))
                }
            }
        }
        AfxdpPort::bind(name, want_modes, need_wakeup, n_rxq, "afxdp")
    }

    fn kind(&self) -> &'static str {
        self.kind
    }

    fn rx_burst(&mut self, batch: &mut Batch) -> Result<usize, PortError> {
        let got = match self.xsk.as_mut() {
            Some(xsk) => xsk.rx(batch, &mut self.stats),
            None => 0,
        };
        if got == 0 && !self.closed {
            self.idle_polls += 1;
            if self.idle_polls >= RECHECK_POLLS {
                self.idle_polls = 0;
                self.recheck();
            }
        }
        Ok(got)
    }

    fn tx_burst(&mut self, batch: &mut Batch) -> Result<usize, PortError> {
        match self.xsk.as_mut() {
            Some(xsk) => Ok(xsk.tx(batch, &mut self.stats)),
            None => {
                self.stats.tx_dropped += batch.pkts.len() as u64;
                batch.pkts.clear();
                Ok(0)
            }
        }
    }

    fn stats(&self) -> PortStats {
        self.stats
    }

    fn close(&mut self) {
        self.closed = true;
        self.xsk = None;
        self.ifindex = 0;
    }

    fn status(&self) -> PortOptions {
        PortOptions::from([
            ("transport".into(), "af_xdp".into()),
            ("xdp-mode".into(), self.mode().into()),
            ("use-need-wakeup".into(), self.need_wakeup.to_string()),
            (
                "n_rxq".into(),
                self.xsk.as_ref().map_or(0, |x| x.queues.len()).to_string(),
            ),
        ])
    }

    fn pool(&self) -> Option<&Pool> {
        self.xsk.as_ref().map(|x| &x.queues[0].pool)
    }

    fn mac(&self) -> Option<[u8; 6]> {
        Some(self.mac)
    }

    fn device(&self) -> Result<Box<dyn NetDevice>, PortError> {
        if self.closed {
            return Err(PortError::Closed);
        }
        Ok(Box::new(SystemDevice {
            name: self.name.clone(),
            max_mtu: (CHUNK - XDP_HEADROOM - 18) as u32,
        }))
    }
}

/// Opens an XSK on queue `queue_id` of `ifindex` with `pool` as its UMEM, and maps its four rings.
#[allow(clippy::type_complexity)]
fn open_socket(
    pool: &Pool,
    ifindex: u32,
    queue_id: u32,
    bind_flags: u16,
    need_wakeup: bool,
) -> std::io::Result<(OwnedFd, Ring<XdpDesc>, Ring<XdpDesc>, Ring<u64>, Ring<u64>)> {
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe { libc::socket(AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let sock = fd_of(i64::from(fd));
    let (base, len) = pool.area();
    let reg = UmemReg {
        addr: base.as_ptr() as u64,
        len: len as u64,
        chunk_size: CHUNK as u32,
        headroom: 0,
        flags: 0,
        tx_metadata_len: 0,
    };
    setsockopt(&sock, XDP_UMEM_REG, &reg)?;
    setsockopt(&sock, XDP_UMEM_FILL_RING, &FILL_SIZE)?;
    setsockopt(&sock, XDP_UMEM_COMPLETION_RING, &COMP_SIZE)?;
    setsockopt(&sock, XDP_RX_RING, &RX_SIZE)?;
    setsockopt(&sock, XDP_TX_RING, &TX_SIZE)?;
    let mut off = MmapOffsets::default();
    let mut olen = std::mem::size_of::<MmapOffsets>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `olen` bytes into `off`.
    if unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            SOL_XDP,
            XDP_MMAP_OFFSETS,
            (&mut off as *mut MmapOffsets).cast(),
            &mut olen,
        )
    } < 0
    {
        return Err(std::io::Error::last_os_error());
    }
    let rx = Ring::map(&sock, PGOFF_RX, off.rx, RX_SIZE)?;
    let tx = Ring::map(&sock, PGOFF_TX, off.tx, TX_SIZE)?;
    let fill = Ring::map(&sock, PGOFF_FILL, off.fr, FILL_SIZE)?;
    let comp = Ring::map(&sock, PGOFF_COMP, off.cr, COMP_SIZE)?;
    let sxdp = SockaddrXdp {
        family: AF_XDP as u16,
        flags: bind_flags | if need_wakeup { XDP_USE_NEED_WAKEUP } else { 0 },
        ifindex,
        queue_id,
        shared_umem_fd: 0,
    };
    // SAFETY: a valid sockaddr_xdp and its size.
    if unsafe {
        libc::bind(
            sock.as_raw_fd(),
            (&sxdp as *const SockaddrXdp).cast(),
            std::mem::size_of::<SockaddrXdp>() as libc::socklen_t,
        )
    } < 0
    {
        return Err(std::io::Error::last_os_error());
    }
    Ok((sock, rx, tx, fill, comp))
}
