//! vhost-user ports: a VM's (or DPDK virtio-user's) virtio-net device, served
//! by nvs as the vhost-user back end.
//!
//! Two types, as OVS names them: `dpdkvhostuser` (nvs listens on the Unix
//! socket at option `vhost-server-path`; vswitchd puts it in the run
//! directory) and `dpdkvhostuserclient` (nvs connects to the front end's
//! socket at `vhost-server-path`, and again whenever it goes away).
//!
//! A control thread per port speaks the protocol (features, memory table,
//! vring setup) and keeps the device state behind a mutex; the polling thread
//! takes that mutex once per burst and serves the split virtqueues: the
//! guest's tx rings (odd indices) are `rx_burst`, its rx rings (even) are
//! `tx_burst`. A guest packet is copied once into a frame of the port's pool
//! on the way in, and once into the guest's buffers on the way out. Guest
//! memory is touched only through `mem` (bounds-checked per access); a ring
//! that breaks the rules disables its queue and is counted in the errors,
//! with the reason kept for `error()`; a malformed message is counted and
//! refused.
//!
//! rust-vmm's crates (`vhost`, `virtio-queue`, `vm-memory`) were not used:
//! `vhost-user-backend` is kick-driven with a lock per vring, and the
//! generic memory and queue layers cost per access what this polling loop
//! does once per burst; the protocol subset a net back end needs is small.

mod mem;
mod virtq;

use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use mem::{GuestMemory, RegionDesc};
use virtq::{RingAddrs, RingError, Seg, SplitQueue};

use crate::actions::{PacketBuf, HEADROOM};
use crate::frame::{spread_chunk, Pool};
use crate::port::{Batch, Port, PortError, PortOptions, PortStats};

/// Queue pairs offered (`GET_QUEUE_NUM`).
pub const MAX_QUEUE_PAIRS: usize = 8;
const POOL_FRAMES: usize = 4096;
const POOL_CHUNK: usize = spread_chunk(HEADROOM + 2048);

// Feature bits (virtio 1.x; vhost-user).
const F_MRG_RXBUF: u64 = 1 << 15;
const F_MQ: u64 = 1 << 22;
const F_INDIRECT_DESC: u64 = 1 << 28;
const F_EVENT_IDX: u64 = 1 << 29;
const F_PROTOCOL_FEATURES: u64 = 1 << 30;
const F_VERSION_1: u64 = 1 << 32;
const FEATURES: u64 =
    F_MRG_RXBUF | F_MQ | F_INDIRECT_DESC | F_EVENT_IDX | F_PROTOCOL_FEATURES | F_VERSION_1;
const PF_MQ: u64 = 1 << 0;
const PF_REPLY_ACK: u64 = 1 << 3;
const PROTOCOL_FEATURES: u64 = PF_MQ | PF_REPLY_ACK;

// Requests.
const GET_FEATURES: u32 = 1;
const SET_FEATURES: u32 = 2;
const SET_OWNER: u32 = 3;
const RESET_OWNER: u32 = 4;
const SET_MEM_TABLE: u32 = 5;
const SET_VRING_NUM: u32 = 8;
const SET_VRING_ADDR: u32 = 9;
const SET_VRING_BASE: u32 = 10;
const GET_VRING_BASE: u32 = 11;
const SET_VRING_KICK: u32 = 12;
const SET_VRING_CALL: u32 = 13;
const SET_VRING_ERR: u32 = 14;
const GET_PROTOCOL_FEATURES: u32 = 15;
const SET_PROTOCOL_FEATURES: u32 = 16;
const GET_QUEUE_NUM: u32 = 17;
const SET_VRING_ENABLE: u32 = 18;

const FLAG_VERSION: u32 = 1;
const FLAG_REPLY: u32 = 1 << 2;
const FLAG_NEED_REPLY: u32 = 1 << 3;
/// Largest payload accepted (a full memory table is 8 + 8 * 32 bytes).
const MAX_PAYLOAD: usize = 4096;
const MAX_FDS: usize = mem::MAX_REGIONS;

/// One vring as the front end has set it up.
#[derive(Default)]
struct Vring {
    num: u16,
    addrs: Option<RingAddrs>,
    base: u16,
    kick: Option<OwnedFd>,
    call: Option<OwnedFd>,
    err: Option<OwnedFd>,
    /// A kick fd (or its absence, for polling) was given: the ring runs.
    started: bool,
    enabled: bool,
    /// The live queue: started, enabled, memory mapped.
    q: Option<SplitQueue>,
    /// Disabled for breaking the rules, until the front end sets it up again.
    broken: bool,
}

/// The device as the protocol has set it up.
#[derive(Default)]
struct Device {
    features: u64,
    protocol_features: u64,
    /// Declared before `mem`: queues point into it and are dropped first.
    vrings: Vec<Vring>,
    mem: Option<GuestMemory>,
    connected: bool,
    /// Broken rings and refused messages.
    errors: u64,
    last_error: Option<String>,
}

impl Device {
    fn new() -> Device {
        Device {
            vrings: (0..2 * MAX_QUEUE_PAIRS).map(|_| Vring::default()).collect(),
            ..Device::default()
        }
    }

    /// Back to the state of a fresh connection (the error count is kept;
    /// the reason of the last one goes with the connection it was about).
    fn reset(&mut self) {
        let errors = self.errors;
        *self = Device::new();
        self.errors = errors;
    }

    fn fail(&mut self, why: String) {
        self.errors += 1;
        self.last_error = Some(why);
    }

    /// Virtio-net header bytes in front of every packet.
    fn hdr_len(&self) -> usize {
        if self.features & (F_VERSION_1 | F_MRG_RXBUF) != 0 {
            12
        } else {
            10
        }
    }

    /// Starts or stops vring `i` after a change to it or to the memory table.
    fn refresh(&mut self, i: usize) {
        let event_idx = self.features & F_EVENT_IDX != 0;
        let v = &mut self.vrings[i];
        let ready = v.started && v.enabled && !v.broken;
        match (&self.mem, v.addrs, ready) {
            (Some(mem), Some(addrs), true) if v.q.is_none() => {
                match SplitQueue::new(mem, v.num, addrs, v.base, event_idx) {
                    Ok(q) => {
                        q.suppress_kicks();
                        v.q = Some(q);
                    }
                    Err(e) => {
                        v.broken = true;
                        self.fail(format!("vring {i}: {e}"));
                    }
                }
            }
            (_, _, false) => {
                if let Some(q) = v.q.take() {
                    v.base = q.last_avail;
                }
            }
            _ => {}
        }
    }

    fn break_ring(&mut self, i: usize, e: RingError) {
        let v = &mut self.vrings[i];
        v.q = None;
        v.broken = true;
        self.fail(format!("vring {i}: {e}; queue disabled"));
    }
}

/// Writes the eventfd `fd`: the guest is told its used ring moved.
fn signal(fd: &Option<OwnedFd>) {
    if let Some(fd) = fd {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a local to an eventfd we own; a full
        // counter (EAGAIN) means the guest has a signal pending anyway.
        unsafe { libc::write(fd.as_raw_fd(), one.as_ptr().cast(), 8) };
    }
}

/// A message of the protocol: request, flags, payload, fds that came with it.
struct Msg {
    request: u32,
    flags: u32,
    payload: Vec<u8>,
    fds: Vec<OwnedFd>,
}

impl Msg {
    fn u64_at(&self, off: usize) -> Option<u64> {
        Some(u64::from_le_bytes(
            self.payload.get(off..off + 8)?.try_into().ok()?,
        ))
    }
    fn u32_at(&self, off: usize) -> Option<u32> {
        Some(u32::from_le_bytes(
            self.payload.get(off..off + 4)?.try_into().ok()?,
        ))
    }
}

/// Reads one message, or `None` when the peer is gone or broke the framing.
fn read_msg(stream: &mut UnixStream) -> Option<Msg> {
    let mut hdr = [0u8; 12];
    let mut cmsg = [0u8; 256];
    let mut iov = [IoSliceMut::new(&mut hdr)];
    // SAFETY: a msghdr over our own buffers, filled by recvmsg.
    let mut mh: libc::msghdr = unsafe { std::mem::zeroed() };
    mh.msg_iov = iov.as_mut_ptr().cast();
    mh.msg_iovlen = 1;
    mh.msg_control = cmsg.as_mut_ptr().cast();
    mh.msg_controllen = cmsg.len();
    // SAFETY: the buffers outlive the call.
    let n = unsafe { libc::recvmsg(stream.as_raw_fd(), &mut mh, libc::MSG_CMSG_CLOEXEC) };
    if n <= 0 {
        return None;
    }
    let mut fds = Vec::new();
    // SAFETY: walking the control buffer recvmsg filled, with the libc macros.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&mh);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c) as *const RawFd;
                let count = ((*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / 4;
                for k in 0..count {
                    fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(k))));
                }
            }
            c = libc::CMSG_NXTHDR(&mh, c);
        }
    }
    let n = n as usize;
    if n < 12 && stream.read_exact(&mut hdr[n..]).is_err() {
        return None;
    }
    let size = u32::from_le_bytes(hdr[8..12].try_into().unwrap()) as usize;
    if size > MAX_PAYLOAD || fds.len() > MAX_FDS {
        return None;
    }
    let mut payload = vec![0u8; size];
    stream.read_exact(&mut payload).ok()?;
    Some(Msg {
        request: u32::from_le_bytes(hdr[0..4].try_into().unwrap()),
        flags: u32::from_le_bytes(hdr[4..8].try_into().unwrap()),
        payload,
        fds,
    })
}

fn reply(stream: &mut UnixStream, request: u32, payload: &[u8]) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(12 + payload.len());
    out.extend_from_slice(&request.to_le_bytes());
    out.extend_from_slice(&(FLAG_VERSION | FLAG_REPLY).to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    stream.write_all(&out)
}

/// What handling a request gives back: a reply payload, or success/failure
/// (acknowledged only when REPLY_ACK was asked for).
enum Outcome {
    Reply(Vec<u8>),
    Done(Result<(), String>),
}

fn vring_index(v: Option<u64>) -> Result<usize, String> {
    let i = v.ok_or("payload too short")? as usize & 0xff;
    if i >= 2 * MAX_QUEUE_PAIRS {
        return Err(format!("vring {i} does not exist"));
    }
    Ok(i)
}

/// Applies one request to the device.
fn handle(dev: &mut Device, msg: Msg) -> Outcome {
    use Outcome::{Done, Reply};
    let short = || "payload too short".to_string();
    match msg.request {
        GET_FEATURES => Reply(FEATURES.to_le_bytes().to_vec()),
        GET_PROTOCOL_FEATURES => Reply(PROTOCOL_FEATURES.to_le_bytes().to_vec()),
        GET_QUEUE_NUM => Reply((MAX_QUEUE_PAIRS as u64).to_le_bytes().to_vec()),
        SET_FEATURES => Done(match msg.u64_at(0) {
            Some(f) if f & !FEATURES == 0 => {
                dev.features = f;
                Ok(())
            }
            Some(f) => Err(format!("features {f:#x} were not offered")),
            None => Err(short()),
        }),
        SET_PROTOCOL_FEATURES => Done(match msg.u64_at(0) {
            Some(f) if f & !PROTOCOL_FEATURES == 0 => {
                dev.protocol_features = f;
                Ok(())
            }
            Some(f) => Err(format!("protocol features {f:#x} were not offered")),
            None => Err(short()),
        }),
        SET_OWNER => Done(Ok(())),
        RESET_OWNER => {
            dev.reset();
            dev.connected = true;
            Done(Ok(()))
        }
        SET_MEM_TABLE => Done(set_mem_table(dev, &msg)),
        SET_VRING_NUM | SET_VRING_BASE | SET_VRING_ENABLE => Done((|| {
            let i = vring_index(msg.u32_at(0).map(u64::from))?;
            let num = msg.u32_at(4).ok_or_else(short)?;
            let v = &mut dev.vrings[i];
            match msg.request {
                SET_VRING_NUM => {
                    if num == 0 || num > virtq::MAX_QUEUE_SIZE as u32 || !num.is_power_of_two() {
                        return Err(format!(
                            "vring {i}: size {num} is not a power of two up to 32768"
                        ));
                    }
                    v.num = num as u16;
                    v.broken = false;
                }
                SET_VRING_BASE => v.base = num as u16,
                _ => v.enabled = num != 0,
            }
            dev.refresh(i);
            Ok(())
        })()),
        SET_VRING_ADDR => Done((|| {
            let i = vring_index(msg.u32_at(0).map(u64::from))?;
            let a = |k: usize| msg.u64_at(8 + 8 * k).ok_or_else(short);
            dev.vrings[i].addrs = Some(RingAddrs {
                desc: a(0)?,
                used: a(1)?,
                avail: a(2)?,
            });
            dev.vrings[i].broken = false;
            dev.refresh(i);
            Ok(())
        })()),
        GET_VRING_BASE => match vring_index(msg.u32_at(0).map(u64::from)) {
            Ok(i) => {
                let v = &mut dev.vrings[i];
                v.started = false;
                v.kick = None;
                dev.refresh(i);
                let mut out = (i as u32).to_le_bytes().to_vec();
                out.extend_from_slice(&(dev.vrings[i].base as u32).to_le_bytes());
                Reply(out)
            }
            Err(e) => Done(Err(e)),
        },
        SET_VRING_KICK | SET_VRING_CALL | SET_VRING_ERR => Done((|| {
            let word = msg.u64_at(0).ok_or_else(short)?;
            let i = vring_index(Some(word))?;
            // Bit 8: no fd (polling mode); otherwise exactly one came with the message.
            let fd = if word & 0x100 != 0 {
                None
            } else {
                Some(
                    msg.fds
                        .into_iter()
                        .next()
                        .ok_or("no file descriptor sent")?,
                )
            };
            let v = &mut dev.vrings[i];
            match msg.request {
                SET_VRING_KICK => {
                    v.kick = fd;
                    v.started = true;
                    // Without protocol features a ring is enabled when it starts.
                    if dev.features & F_PROTOCOL_FEATURES == 0 {
                        v.enabled = true;
                    }
                }
                SET_VRING_CALL => v.call = fd,
                _ => v.err = fd,
            }
            dev.refresh(i);
            Ok(())
        })()),
        other => Done(Err(format!("request {other} is not supported"))),
    }
}

fn set_mem_table(dev: &mut Device, msg: &Msg) -> Result<(), String> {
    let n = msg.u32_at(0).ok_or("payload too short")? as usize;
    if n > mem::MAX_REGIONS || msg.payload.len() < 8 + 32 * n {
        return Err(format!(
            "memory table of {n} regions in {} bytes",
            msg.payload.len()
        ));
    }
    let regions: Vec<RegionDesc> = (0..n)
        .map(|k| {
            let f = |j: usize| msg.u64_at(8 + 32 * k + 8 * j).expect("length checked");
            RegionDesc {
                guest_phys_addr: f(0),
                size: f(1),
                user_addr: f(2),
                mmap_offset: f(3),
            }
        })
        .collect();
    let mem = GuestMemory::map(&regions, &msg.fds)?;
    // Queues point into the old table: stop them, then start them on the new one.
    for v in &mut dev.vrings {
        if let Some(q) = v.q.take() {
            v.base = q.last_avail;
        }
    }
    dev.mem = Some(mem);
    for i in 0..dev.vrings.len() {
        dev.refresh(i);
    }
    Ok(())
}

/// Serves one connection until the peer goes or `stop` is set.
fn serve(mut stream: UnixStream, dev: &Mutex<Device>, stop: &AtomicBool) {
    dev.lock().unwrap().connected = true;
    while !stop.load(Ordering::Relaxed) {
        if !readable(stream.as_raw_fd()) {
            continue;
        }
        let Some(msg) = read_msg(&mut stream) else {
            break;
        };
        let (request, need_ack) = (msg.request, msg.flags & FLAG_NEED_REPLY != 0);
        let outcome = {
            let mut d = dev.lock().unwrap();
            let outcome = handle(&mut d, msg);
            if let Outcome::Done(Err(e)) = &outcome {
                d.fail(format!("request {request}: {e}"));
            }
            (outcome, d.protocol_features & PF_REPLY_ACK != 0)
        };
        let sent = match outcome {
            (Outcome::Reply(p), _) => reply(&mut stream, request, &p),
            (Outcome::Done(r), true) if need_ack => {
                reply(&mut stream, request, &u64::from(r.is_err()).to_le_bytes())
            }
            _ => Ok(()),
        };
        if sent.is_err() {
            break;
        }
    }
    // The front end went away: its memory and rings with it.
    dev.lock().unwrap().reset();
}

/// Waits up to 100 ms for `fd` to be readable (so `stop` is seen soon).
fn readable(fd: RawFd) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: polls one pollfd of ours.
    unsafe { libc::poll(&mut p, 1, 100) > 0 }
}

/// The control thread of a server-mode port: accepts one front end at a time.
fn listen(listener: UnixListener, dev: Arc<Mutex<Device>>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        if !readable(listener.as_raw_fd()) {
            continue;
        }
        if let Ok((s, _)) = listener.accept() {
            let _ = s.set_nonblocking(false);
            serve(s, &dev, &stop);
        }
    }
}

/// The control thread of a client-mode port: connects, and reconnects after the front end goes.
fn connect(path: PathBuf, dev: Arc<Mutex<Device>>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        match UnixStream::connect(&path) {
            Ok(s) => serve(s, &dev, &stop),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// A vhost-user port (either mode).
pub struct VhostUserPort {
    kind: &'static str,
    dev: Arc<Mutex<Device>>,
    stop: Arc<AtomicBool>,
    control: Option<JoinHandle<()>>,
    /// The socket nvs created (server mode), removed at close.
    created: Option<PathBuf>,
    pool: Pool,
    segs: Vec<Seg>,
    first: Vec<Seg>,
    /// Per live guest rx queue: its share of a tx batch (multi-queue guests).
    spread: Vec<Batch>,
    stats: PortStats,
    closed: bool,
}

impl VhostUserPort {
    fn open_mode(name: &str, options: &PortOptions, server: bool) -> Result<Self, PortError> {
        let kind = if server {
            "dpdkvhostuser"
        } else {
            "dpdkvhostuserclient"
        };
        let bad = |key: &str, value: &str, why: &str| PortError::BadOption {
            port: name.to_string(),
            key: key.to_string(),
            value: value.to_string(),
            why: why.to_string(),
        };
        if let Some(k) = options.keys().find(|k| k.as_str() != "vhost-server-path") {
            return Err(bad(
                k,
                &options[k],
                "unknown option for a vhost-user port (known: vhost-server-path)",
            ));
        }
        let path = PathBuf::from(
            options
                .get("vhost-server-path")
                .filter(|p| !p.is_empty())
                .ok_or_else(|| bad("vhost-server-path", "", "the socket's path is required"))?,
        );
        let dev = Arc::new(Mutex::new(Device::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (d, s) = (dev.clone(), stop.clone());
        let os = |what| {
            move |source| PortError::Os {
                port: name.to_string(),
                what,
                source,
            }
        };
        let (control, created) = if server {
            // A socket left by an earlier run is ours to replace; anything else is not.
            if std::fs::symlink_metadata(&path)
                .map(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
                .unwrap_or(false)
            {
                let _ = std::fs::remove_file(&path);
            }
            let listener =
                UnixListener::bind(&path).map_err(os("binding the vhost-user socket"))?;
            let t = std::thread::Builder::new()
                .name(format!("vhost-{name}"))
                .spawn(move || listen(listener, d, s))
                .map_err(os("starting the control thread"))?;
            (t, Some(path))
        } else {
            let t = std::thread::Builder::new()
                .name(format!("vhost-{name}"))
                .spawn(move || connect(path, d, s))
                .map_err(os("starting the control thread"))?;
            (t, None)
        };
        Ok(VhostUserPort {
            kind,
            dev,
            stop,
            control: Some(control),
            created,
            pool: Pool::new(POOL_FRAMES, POOL_CHUNK)?,
            segs: Vec::new(),
            first: Vec::new(),
            spread: (0..MAX_QUEUE_PAIRS).map(|_| Batch::new()).collect(),
            stats: PortStats::default(),
            closed: false,
        })
    }

    /// Whether a front end is connected now.
    pub fn connected(&self) -> bool {
        self.dev.lock().unwrap().connected
    }

    /// Why the port last refused a message or disabled a queue, if it did.
    pub fn last_error(&self) -> Option<String> {
        self.dev.lock().unwrap().last_error.clone()
    }
}

/// `batch` into guest rx ring `ring`; a ring that breaks the rules is disabled.
fn send_to(
    dev: &mut Device,
    ring: usize,
    batch: &mut Batch,
    segs: &mut Vec<Seg>,
    first: &mut Vec<Seg>,
    stats: &mut PortStats,
) {
    if let Err(e) = enqueue(dev, ring, segs, first, batch, stats) {
        stats.tx_errors += batch.len() as u64;
        batch.pkts.clear();
        dev.break_ring(ring, e);
    }
}

/// A hash of a frame's flow (IPv4 addresses and, for TCP/UDP, ports; else
/// the MAC addresses): which guest rx queue it goes to.
fn flow_hash(f: &[u8]) -> u32 {
    let word = |at: usize| {
        f.get(at..at + 4)
            .map_or(0, |b| u32::from_be_bytes(b.try_into().unwrap()))
    };
    let mut h = if f.get(12..14) == Some(&[0x08, 0x00]) {
        let ihl = f.get(14).map_or(5, |b| (b & 0xf) as usize);
        let ports = match f.get(23) {
            Some(6) | Some(17) => word(14 + 4 * ihl),
            _ => 0,
        };
        word(26) ^ word(30).rotate_left(16) ^ ports
    } else {
        word(0) ^ word(4) ^ word(8)
    };
    // A multiply-shift mix: nearby addresses spread over the queues.
    h = h.wrapping_mul(0x9e37_79b1);
    h ^ (h >> 16)
}

/// Guest tx ring `i` → packets in `batch`. Stops at the first broken chain.
fn dequeue(
    dev: &mut Device,
    i: usize,
    pool: &Pool,
    segs: &mut Vec<Seg>,
    batch: &mut Batch,
    stats: &mut PortStats,
) -> Result<(), RingError> {
    let hdr = dev.hdr_len() as u64;
    let Device { vrings, mem, .. } = dev;
    let (Some(mem), Some(q)) = (mem.as_ref(), vrings[i].q.as_mut()) else {
        return Ok(());
    };
    let n = q.pending()?.min(batch.room() as u16);
    for _ in 0..n {
        let head = q.pop();
        let total = q.chain(mem, head, segs)?;
        q.push_used(head, 0);
        let len = total.saturating_sub(hdr) as usize;
        let mut frame = match pool.alloc() {
            Some(f) if f.as_ref().len() >= HEADROOM + len && total >= hdr => f,
            _ => {
                stats.rx_dropped += 1;
                continue;
            }
        };
        let buf = &mut frame.as_mut()[HEADROOM..HEADROOM + len];
        let (mut skip, mut at) = (hdr, 0usize);
        for s in segs.iter() {
            if s.write {
                return Err(RingError::Malformed("device-writable buffer in a tx chain"));
            }
            let cut = skip.min(s.len as u64);
            skip -= cut;
            let take = s.len as usize - cut as usize;
            mem.read(s.addr + cut, &mut buf[at..at + take])?;
            at += take;
        }
        stats.rx_packets += 1;
        stats.rx_bytes += len as u64;
        batch
            .pkts
            .push(PacketBuf::new(frame, HEADROOM, len).expect("the frame was checked to fit"));
    }
    q.suppress_kicks();
    if q.publish_used() {
        signal(&vrings[i].call);
    }
    Ok(())
}

/// Writes `bytes` into the device-writable buffers `segs` from byte `at` on; the new position.
fn write_chain(
    mem: &GuestMemory,
    segs: &[Seg],
    mut at: u64,
    bytes: &[u8],
) -> Result<u64, RingError> {
    let mut src = bytes;
    let mut start = 0u64;
    for s in segs {
        let end = start + s.len as u64;
        if !s.write {
            return Err(RingError::Malformed(
                "device-readable buffer in an rx chain",
            ));
        }
        if at < end && !src.is_empty() {
            let n = ((end - at) as usize).min(src.len());
            mem.write(s.addr + (at - start), &src[..n])?;
            src = &src[n..];
            at += n as u64;
        }
        start = end;
    }
    Ok(at)
}

/// Packets of `batch` → guest rx ring `i`. Packets that find no room are dropped and counted.
fn enqueue(
    dev: &mut Device,
    i: usize,
    segs: &mut Vec<Seg>,
    first: &mut Vec<Seg>,
    batch: &mut Batch,
    stats: &mut PortStats,
) -> Result<(), RingError> {
    let hdr_len = dev.hdr_len();
    let mergeable = dev.features & F_MRG_RXBUF != 0;
    let Device { vrings, mem, .. } = dev;
    let (Some(mem), Some(q)) = (mem.as_ref(), vrings[i].q.as_mut()) else {
        stats.tx_dropped += batch.len() as u64;
        batch.pkts.clear();
        return Ok(());
    };
    let mut avail = q.pending()?;
    'packets: for pkt in batch.pkts.drain(..) {
        let data = pkt.data();
        let need = (hdr_len + data.len()) as u64;
        // The first buffer gets the header (num_buffers patched once known).
        let mut header = [0u8; 12];
        let mut left = data;
        let mut buffers = 0u16;
        let mut placed = false;
        while avail > 0 {
            let head = q.pop();
            avail -= 1;
            let cap = q.chain(mem, head, segs)?;
            if buffers == 0 && segs.len() == 1 && cap >= need {
                // The usual case: one buffer takes header and packet.
                if !segs[0].write {
                    return Err(RingError::Malformed(
                        "device-readable buffer in an rx chain",
                    ));
                }
                header[10] = 1; // num_buffers (the rest of the header stays 0)
                mem.write2(segs[0].addr, &header[..hdr_len], data)?;
                q.push_used(head, need as u32);
                stats.tx_packets += 1;
                stats.tx_bytes += data.len() as u64;
                continue 'packets;
            }
            let mut at = 0;
            if buffers == 0 {
                if !mergeable && cap < need {
                    // Too small for the packet: the buffer stays the guest's.
                    q.unpop(1);
                    avail += 1;
                    break;
                }
                at = write_chain(mem, segs, 0, &header[..hdr_len])?;
                first.clone_from(segs);
            }
            let before = at;
            at = write_chain(mem, segs, at, left)?;
            left = &left[(at - before) as usize..];
            buffers += 1;
            q.push_used(head, at as u32);
            if left.is_empty() {
                placed = true;
                break;
            }
        }
        if placed {
            if hdr_len == 12 {
                header[10..12].copy_from_slice(&buffers.to_le_bytes());
                write_chain(mem, first, 10, &header[10..12])?;
            }
            stats.tx_packets += 1;
            stats.tx_bytes += data.len() as u64;
        } else {
            // Out of guest buffers: what this packet took is given back.
            q.unpop(buffers);
            q.unpush(buffers);
            stats.tx_dropped += 1;
            avail = 0;
        }
    }
    if q.publish_used() {
        signal(&vrings[i].call);
    }
    Ok(())
}

impl Port for VhostUserPort {
    fn open(name: &str, options: &PortOptions) -> Result<Self, PortError> {
        Self::open_mode(name, options, true)
    }

    fn kind(&self) -> &'static str {
        self.kind
    }

    fn rx_burst(&mut self, batch: &mut Batch) -> Result<usize, PortError> {
        if self.closed {
            return Ok(0);
        }
        let before = batch.len();
        let mut dev = self.dev.lock().unwrap();
        for pair in 0..MAX_QUEUE_PAIRS {
            let i = 2 * pair + 1;
            if batch.room() == 0 {
                break;
            }
            if let Err(e) = dequeue(
                &mut dev,
                i,
                &self.pool,
                &mut self.segs,
                batch,
                &mut self.stats,
            ) {
                self.stats.rx_errors += 1;
                dev.break_ring(i, e);
            }
        }
        Ok(batch.len() - before)
    }

    fn tx_burst(&mut self, batch: &mut Batch) -> Result<usize, PortError> {
        let sent_before = self.stats.tx_packets;
        if self.closed {
            self.stats.tx_dropped += batch.len() as u64;
            batch.pkts.clear();
            return Ok(0);
        }
        let VhostUserPort {
            dev,
            segs,
            first,
            spread,
            stats,
            ..
        } = self;
        let mut dev = dev.lock().unwrap();
        // The guest's live rx queues (even vrings).
        let mut live = [0usize; MAX_QUEUE_PAIRS];
        let mut n = 0;
        for pair in 0..MAX_QUEUE_PAIRS {
            if dev.vrings[2 * pair].q.is_some() {
                live[n] = 2 * pair;
                n += 1;
            }
        }
        if n == 0 {
            stats.tx_dropped += batch.len() as u64;
            batch.pkts.clear();
        } else if n == 1 {
            send_to(&mut dev, live[0], batch, segs, first, stats);
        } else {
            // Spread over the queues by flow, so a flow keeps its order.
            for pkt in batch.pkts.drain(..) {
                spread[flow_hash(pkt.data()) as usize % n].pkts.push(pkt);
            }
            for (share, &ring) in spread.iter_mut().zip(&live[..n]) {
                if !share.is_empty() {
                    send_to(&mut dev, ring, share, segs, first, stats);
                }
            }
        }
        Ok((stats.tx_packets - sent_before) as usize)
    }

    fn stats(&self) -> PortStats {
        let mut s = self.stats;
        s.rx_errors += self.dev.lock().unwrap().errors;
        s
    }

    fn close(&mut self) {
        self.closed = true;
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.control.take() {
            let _ = t.join();
        }
        if let Some(p) = self.created.take() {
            let _ = std::fs::remove_file(p);
        }
        self.dev.lock().unwrap().reset();
    }

    fn pool(&self) -> Option<&Pool> {
        Some(&self.pool)
    }

    fn error(&self) -> Option<String> {
        self.last_error()
    }
}

impl Drop for VhostUserPort {
    fn drop(&mut self) {
        self.close();
    }
}

/// The client-mode type: the same port, connecting instead of listening.
pub struct VhostUserClientPort(VhostUserPort);

impl Port for VhostUserClientPort {
    fn open(name: &str, options: &PortOptions) -> Result<Self, PortError> {
        VhostUserPort::open_mode(name, options, false).map(VhostUserClientPort)
    }
    fn kind(&self) -> &'static str {
        self.0.kind()
    }
    fn rx_burst(&mut self, batch: &mut Batch) -> Result<usize, PortError> {
        self.0.rx_burst(batch)
    }
    fn tx_burst(&mut self, batch: &mut Batch) -> Result<usize, PortError> {
        self.0.tx_burst(batch)
    }
    fn stats(&self) -> PortStats {
        self.0.stats()
    }
    fn close(&mut self) {
        self.0.close()
    }
    fn pool(&self) -> Option<&Pool> {
        self.0.pool()
    }
    fn error(&self) -> Option<String> {
        self.0.error()
    }
}
