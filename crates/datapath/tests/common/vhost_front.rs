//! A minimal vhost-user front end for tests: the guest side of one queue
//! pair in a memfd, set up over the protocol as QEMU or virtio-user would.
//! It can also break the rules on purpose (the hostile tests).

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

pub const SIZE: u16 = 256;
const MEM_LEN: usize = 4 << 20;
/// The front end's "virtual address" of the memory (ring addresses use it; any value does).
pub const UVA: u64 = 0x7f00_0000_0000;
const BUF: u64 = 2048;
const HDR: usize = 12;
pub const F_MRG_RXBUF: u64 = 1 << 15;
pub const F_INDIRECT: u64 = 1 << 28;
pub const F_EVENT_IDX: u64 = 1 << 29;
pub const F_PROTOCOL_FEATURES: u64 = 1 << 30;
pub const F_VERSION_1: u64 = 1 << 32;
pub const NEXT: u16 = 1;
pub const WRITE: u16 = 2;
pub const INDIRECT: u16 = 4;

/// Ring offsets of queue `q` (0: guest rx, 1: guest tx) in guest memory.
fn desc(q: usize) -> u64 {
    0x10000 * q as u64
}
fn avail(q: usize) -> u64 {
    desc(q) + 0x1000
}
fn used(q: usize) -> u64 {
    desc(q) + 0x2000
}
/// Buffer `i` of queue `q`.
pub fn buf(q: usize, i: u16) -> u64 {
    0x100000 + 0x100000 * q as u64 + BUF * i as u64
}

pub struct Front {
    pub sock: UnixStream,
    mem: *mut u8,
    fd: OwnedFd,
    /// Next avail index per queue (two queue pairs at most).
    next: [u16; 4],
    /// Next used index to read per queue.
    seen: [u16; 4],
}

impl Front {
    /// Connects to a server-mode port's socket (waiting for it to appear).
    pub fn connect(path: &Path) -> Front {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match UnixStream::connect(path) {
                Ok(s) => return Front::over(s),
                Err(e) if Instant::now() > deadline => panic!("connect {path:?}: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }

    /// A front end on an established stream (a client-mode port's accepted connection).
    pub fn over(sock: UnixStream) -> Front {
        // SAFETY: test code: a fresh memfd, sized and mapped shared.
        unsafe {
            let fd = libc::memfd_create(c"front".as_ptr(), 0);
            assert!(fd >= 0);
            assert_eq!(libc::ftruncate(fd, MEM_LEN as i64), 0);
            let p = libc::mmap(
                std::ptr::null_mut(),
                MEM_LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            );
            assert_ne!(p, libc::MAP_FAILED);
            Front {
                sock,
                mem: p.cast(),
                fd: OwnedFd::from_raw_fd(fd),
                next: [0; 4],
                seen: [0; 4],
            }
        }
    }

    /// Sends one message, with `fds` as SCM_RIGHTS.
    pub fn send(&mut self, request: u32, flags: u32, payload: &[u8], fds: &[i32]) {
        let mut msg = Vec::new();
        msg.extend_from_slice(&request.to_le_bytes());
        msg.extend_from_slice(&(1 | flags).to_le_bytes());
        msg.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        msg.extend_from_slice(payload);
        let mut cbuf = [0u8; 128];
        let mut iov = libc::iovec {
            iov_base: msg.as_mut_ptr().cast(),
            iov_len: msg.len(),
        };
        // SAFETY: test code: a msghdr over local buffers.
        unsafe {
            let mut mh: libc::msghdr = std::mem::zeroed();
            mh.msg_iov = &mut iov;
            mh.msg_iovlen = 1;
            if !fds.is_empty() {
                mh.msg_control = cbuf.as_mut_ptr().cast();
                mh.msg_controllen = libc::CMSG_SPACE((4 * fds.len()) as u32) as usize;
                let c = libc::CMSG_FIRSTHDR(&mh);
                (*c).cmsg_level = libc::SOL_SOCKET;
                (*c).cmsg_type = libc::SCM_RIGHTS;
                (*c).cmsg_len = libc::CMSG_LEN((4 * fds.len()) as u32) as usize;
                std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(c).cast(), fds.len());
            }
            assert_eq!(
                libc::sendmsg(self.sock.as_raw_fd(), &mh, 0),
                msg.len() as isize
            );
        }
    }

    /// Reads a reply's payload.
    pub fn reply(&mut self) -> Vec<u8> {
        let mut hdr = [0u8; 12];
        self.sock.read_exact(&mut hdr).unwrap();
        let mut p = vec![0u8; u32::from_le_bytes(hdr[8..].try_into().unwrap()) as usize];
        self.sock.read_exact(&mut p).unwrap();
        p
    }

    pub fn get_u64(&mut self, request: u32) -> u64 {
        self.send(request, 0, &[], &[]);
        u64::from_le_bytes(self.reply()[..8].try_into().unwrap())
    }

    /// The memory table: one region over the whole memfd at guest address 0.
    pub fn mem_table_payload() -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&1u32.to_le_bytes());
        p.extend_from_slice(&0u32.to_le_bytes());
        for v in [0, MEM_LEN as u64, UVA, 0] {
            p.extend_from_slice(&v.to_le_bytes());
        }
        p
    }

    /// Sets the device up as a virtio-user front end does, with `features`;
    /// posts every guest rx buffer. Returns once the device has applied it all.
    pub fn setup(&mut self, features: u64) {
        self.send(3, 0, &[], &[]); // SET_OWNER
        let offered = self.get_u64(1);
        assert_eq!(
            offered & features,
            features,
            "features offered: {offered:#x}"
        );
        self.send(2, 0, &features.to_le_bytes(), &[]);
        if features & F_PROTOCOL_FEATURES != 0 {
            let pf = self.get_u64(15);
            self.send(16, 0, &(pf & 1).to_le_bytes(), &[]); // MQ only
        }
        let fd = self.fd.as_raw_fd();
        self.send(5, 0, &Self::mem_table_payload(), &[fd]);
        for q in 0..2 {
            self.setup_ring(q, features);
        }
        self.post_rx(SIZE);
        self.barrier();
    }

    pub fn setup_ring(&mut self, q: usize, features: u64) {
        let qs = (q as u32).to_le_bytes();
        self.send(8, 0, &[qs, (SIZE as u32).to_le_bytes()].concat(), &[]);
        let mut addr = [qs, 0u32.to_le_bytes()].concat();
        for a in [desc(q), used(q), avail(q), 0] {
            addr.extend_from_slice(&(UVA + a).to_le_bytes());
        }
        self.send(9, 0, &addr, &[]);
        self.send(10, 0, &[qs, 0u32.to_le_bytes()].concat(), &[]);
        self.send(13, 0, &(q as u64 | 0x100).to_le_bytes(), &[]); // CALL: none
        self.send(12, 0, &(q as u64 | 0x100).to_le_bytes(), &[]); // KICK: none (polling)
        if features & F_PROTOCOL_FEATURES != 0 {
            self.send(18, 0, &[qs, 1u32.to_le_bytes()].concat(), &[]);
        }
    }

    /// Waits until the device has handled every message sent before (it answers in order).
    pub fn barrier(&mut self) {
        self.get_u64(17); // GET_QUEUE_NUM
    }

    pub fn write(&self, gpa: u64, bytes: &[u8]) {
        assert!(gpa as usize + bytes.len() <= MEM_LEN);
        // SAFETY: test code: inside the mapping.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.mem.add(gpa as usize), bytes.len())
        };
    }

    pub fn read(&self, gpa: u64, len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        // SAFETY: test code: inside the mapping.
        unsafe { std::ptr::copy_nonoverlapping(self.mem.add(gpa as usize), out.as_mut_ptr(), len) };
        out
    }

    fn u16_at(&self, gpa: u64) -> &AtomicU16 {
        // SAFETY: test code: an aligned u16 inside the mapping.
        unsafe { &*(self.mem.add(gpa as usize) as *const AtomicU16) }
    }

    /// Writes descriptor `i` of queue `q`.
    pub fn set_desc(&self, q: usize, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
        self.write_desc(desc(q) + 16 * i as u64, addr, len, flags, next);
    }

    /// Writes a descriptor at guest address `at` (an indirect table's entry).
    pub fn write_desc(&self, at: u64, addr: u64, len: u32, flags: u16, next: u16) {
        let mut d = [0u8; 16];
        d[..8].copy_from_slice(&addr.to_le_bytes());
        d[8..12].copy_from_slice(&len.to_le_bytes());
        d[12..14].copy_from_slice(&flags.to_le_bytes());
        d[14..].copy_from_slice(&next.to_le_bytes());
        self.write(at, &d);
    }

    /// Makes chain head `head` available on queue `q`.
    pub fn make_avail(&mut self, q: usize, head: u16) {
        let slot = self.next[q] % SIZE;
        self.write(avail(q) + 4 + 2 * slot as u64, &head.to_le_bytes());
        self.next[q] = self.next[q].wrapping_add(1);
        self.u16_at(avail(q) + 2)
            .store(self.next[q], Ordering::Release);
    }

    /// Sets queue `q`'s avail index to any value (a hostile front end).
    pub fn set_avail_idx(&mut self, q: usize, idx: u16) {
        self.u16_at(avail(q) + 2).store(idx, Ordering::Release);
    }

    /// Posts `n` guest rx buffers (2 KiB each).
    pub fn post_rx(&mut self, n: u16) {
        self.post_rx_on(0, n);
    }

    /// Posts `n` guest rx buffers on rx queue `q` (0 or 2).
    pub fn post_rx_on(&mut self, q: usize, n: u16) {
        for _ in 0..n {
            let i = self.next[q] % SIZE;
            self.set_desc(q, i, buf(q, i), BUF as u32, WRITE, 0);
            self.make_avail(q, i);
        }
    }

    /// The guest sends `pkt` (a virtio-net header in front) in one descriptor.
    pub fn send_packet(&mut self, pkt: &[u8]) {
        let i = self.next[1] % SIZE;
        self.write(buf(1, i), &[0u8; HDR]);
        self.write(buf(1, i) + HDR as u64, pkt);
        self.set_desc(1, i, buf(1, i), (HDR + pkt.len()) as u32, 0, 0);
        self.make_avail(1, i);
    }

    /// Used entries of queue `q` not seen yet: (head, len).
    pub fn take_used(&mut self, q: usize) -> Vec<(u32, u32)> {
        let mut out = Vec::new();
        self.take_used_into(q, &mut out);
        out
    }

    /// As `take_used`, into `out` (cleared first): no allocation once it has room.
    pub fn take_used_into(&mut self, q: usize, out: &mut Vec<(u32, u32)>) {
        out.clear();
        let idx = self.u16_at(used(q) + 2).load(Ordering::Acquire);
        while self.seen[q] != idx {
            let e = used(q) + 4 + 8 * (self.seen[q] % SIZE) as u64;
            // SAFETY: test code: an used entry inside the mapping.
            let (head, len) = unsafe {
                let p = self.mem.add(e as usize);
                (
                    std::ptr::read_unaligned(p as *const u32),
                    std::ptr::read_unaligned(p.add(4) as *const u32),
                )
            };
            out.push((head, len));
            self.seen[q] = self.seen[q].wrapping_add(1);
        }
    }

    /// Packets the device put in the guest's rx buffers (header stripped,
    /// num_buffers checked to be 1), reposting each buffer.
    pub fn recv_packets(&mut self) -> Vec<Vec<u8>> {
        self.recv_packets_on(0)
    }

    /// As `recv_packets`, from rx queue `q` (0 or 2).
    pub fn recv_packets_on(&mut self, q: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for (head, len) in self.take_used(q) {
            let b = self.read(buf(q, head as u16), len as usize);
            assert_eq!(u16::from_le_bytes([b[10], b[11]]), 1, "num_buffers");
            out.push(b[HDR..].to_vec());
            self.post_rx_on(q, 1);
        }
        out
    }

    /// Writes a raw stream of bytes on the socket (a hostile front end).
    pub fn raw(&mut self, bytes: &[u8]) {
        self.sock.write_all(bytes).unwrap();
    }
}
