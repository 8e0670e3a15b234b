//! A split virtqueue (virtio 1.x, section 2.7) served from guest memory.
//!
//! The three rings are translated once, when the queue starts, through the
//! memory table; descriptors name guest-physical buffers, which are
//! translated (and bounds-checked) at each copy by [`GuestMemory`]. A chain
//! is walked with a budget of at most the table's size (no loop can run
//! forever), an indirect table may not nest, and the bytes a chain names may
//! not pass [`MAX_CHAIN_BYTES`]: a chain that breaks a rule is a
//! [`RingError`], and the port disables the queue.

use std::sync::atomic::{fence, AtomicU16, AtomicU32, Ordering};

use super::mem::{Fault, GuestMemory};

const DESC_F_NEXT: u16 = 1;
const DESC_F_WRITE: u16 = 2;
const DESC_F_INDIRECT: u16 = 4;
const AVAIL_F_NO_INTERRUPT: u16 = 1;
const USED_F_NO_NOTIFY: u16 = 1;
/// Largest queue size virtio allows.
pub const MAX_QUEUE_SIZE: u16 = 32768;
/// Largest indirect table (descriptors).
const MAX_INDIRECT: u32 = 1024;
/// Most bytes one chain may name: a 64 KiB packet and its header, with room.
pub const MAX_CHAIN_BYTES: u64 = 1 << 17;

/// The front end's virtual addresses of a queue's rings (`SET_VRING_ADDR`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingAddrs {
    pub desc: u64,
    pub avail: u64,
    pub used: u64,
}

/// Why a queue was disabled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RingError {
    #[error(transparent)]
    Fault(#[from] Fault),
    #[error("malformed ring: {0}")]
    Malformed(&'static str),
}

/// One buffer of a descriptor chain: guest-physical address, length, and
/// whether the device writes it (guest rx) or reads it (guest tx).
#[derive(Clone, Copy, Debug)]
pub struct Seg {
    pub addr: u64,
    pub len: u32,
    pub write: bool,
}

/// A started split queue. Its pointers are valid while the memory table it
/// was made from lives (the port drops queues before replacing a table).
pub struct SplitQueue {
    size: u16,
    desc: *mut u8,
    avail: *mut u8,
    used: *mut u8,
    /// Next avail entry to take.
    pub last_avail: u16,
    /// Next used entry to fill (published by `publish_used`).
    used_idx: u16,
    /// The used index the guest last saw published.
    published: u16,
    event_idx: bool,
}

// SAFETY: the pointers are into the guest's shared mapping, used only by the
// holder of the port's lock; the queue moves with the port between threads.
unsafe impl Send for SplitQueue {}

impl SplitQueue {
    /// Starts a queue of `size` entries whose rings are at `addrs`, taking
    /// avail entries from `base` on.
    pub fn new(
        mem: &GuestMemory,
        size: u16,
        addrs: RingAddrs,
        base: u16,
        event_idx: bool,
    ) -> Result<SplitQueue, RingError> {
        if size == 0 || !size.is_power_of_two() || size > MAX_QUEUE_SIZE {
            return Err(RingError::Malformed(
                "queue size is not a power of two up to 32768",
            ));
        }
        if !addrs.desc.is_multiple_of(16)
            || !addrs.avail.is_multiple_of(2)
            || !addrs.used.is_multiple_of(4)
        {
            return Err(RingError::Malformed("ring addresses are not aligned"));
        }
        let n = size as u64;
        Ok(SplitQueue {
            size,
            desc: mem.uva(addrs.desc, 16 * n)?,
            // flags, idx, ring[size], used_event
            avail: mem.uva(addrs.avail, 6 + 2 * n)?,
            // flags, idx, ring[size] of {id, len}, avail_event
            used: mem.uva(addrs.used, 6 + 8 * n)?,
            last_avail: base,
            used_idx: base,
            published: base,
            event_idx,
        })
    }

    fn u16_at(p: *mut u8, off: usize) -> &'static AtomicU16 {
        // SAFETY: every offset used is inside the ring translated in `new`
        // (whose mapping outlives the queue) and 2-aligned (checked there).
        unsafe { &*(p.add(off) as *const AtomicU16) }
    }

    fn u32_at(p: *mut u8, off: usize) -> &'static AtomicU32 {
        // SAFETY: as `u16_at`; used entries are 4-aligned.
        unsafe { &*(p.add(off) as *const AtomicU32) }
    }

    /// Avail entries the guest has made ready and we have not taken.
    pub fn pending(&self) -> Result<u16, RingError> {
        let idx = Self::u16_at(self.avail, 2).load(Ordering::Acquire);
        let n = idx.wrapping_sub(self.last_avail);
        if n > self.size {
            return Err(RingError::Malformed(
                "avail index ran ahead of the queue size",
            ));
        }
        Ok(n)
    }

    /// Takes the next avail entry: the head of its chain.
    pub fn pop(&mut self) -> u16 {
        let slot = (self.last_avail % self.size) as usize;
        self.last_avail = self.last_avail.wrapping_add(1);
        Self::u16_at(self.avail, 4 + 2 * slot).load(Ordering::Relaxed)
    }

    /// Gives back the last `n` entries taken (a packet that did not fit).
    pub fn unpop(&mut self, n: u16) {
        self.last_avail = self.last_avail.wrapping_sub(n);
    }

    /// The buffers of the chain at `head`, into `segs`; their total length.
    pub fn chain(
        &self,
        mem: &GuestMemory,
        head: u16,
        segs: &mut Vec<Seg>,
    ) -> Result<u64, RingError> {
        segs.clear();
        let mut table = self.desc;
        let mut table_len = self.size as u32;
        let mut budget = table_len;
        let mut idx = head as u32;
        let mut indirect = false;
        let mut total = 0u64;
        loop {
            if idx >= table_len {
                return Err(RingError::Malformed("descriptor index out of its table"));
            }
            if budget == 0 {
                return Err(RingError::Malformed("descriptor chain loops"));
            }
            budget -= 1;
            let off = 16 * idx as usize;
            // SAFETY: `table` holds `table_len` descriptors (translated whole
            // in `new`, or below for an indirect table) and idx < table_len.
            let (addr, len, flags, next) = unsafe {
                let d = table.add(off);
                (
                    std::ptr::read_unaligned(d as *const u64),
                    std::ptr::read_unaligned(d.add(8) as *const u32),
                    std::ptr::read_unaligned(d.add(12) as *const u16),
                    std::ptr::read_unaligned(d.add(14) as *const u16),
                )
            };
            if flags & DESC_F_INDIRECT != 0 {
                if indirect || flags & DESC_F_NEXT != 0 || !segs.is_empty() {
                    return Err(RingError::Malformed("indirect descriptor inside a chain"));
                }
                if len == 0 || !len.is_multiple_of(16) || len / 16 > MAX_INDIRECT {
                    return Err(RingError::Malformed("bad indirect table length"));
                }
                table = mem.gpa(addr, len as u64)?;
                table_len = len / 16;
                budget = table_len;
                idx = 0;
                indirect = true;
                continue;
            }
            // (So offsets inside a buffer never overflow an address.)
            if addr.checked_add(len as u64).is_none() {
                return Err(RingError::Malformed("buffer wraps the address space"));
            }
            total += len as u64;
            if total > MAX_CHAIN_BYTES {
                return Err(RingError::Malformed("descriptor chain too long"));
            }
            segs.push(Seg {
                addr,
                len,
                write: flags & DESC_F_WRITE != 0,
            });
            if flags & DESC_F_NEXT == 0 {
                return Ok(total);
            }
            idx = next as u32;
        }
    }

    /// Returns the chain at `head` to the guest, `len` bytes written into it.
    pub fn push_used(&mut self, head: u16, len: u32) {
        let slot = (self.used_idx % self.size) as usize;
        Self::u32_at(self.used, 4 + 8 * slot).store(head as u32, Ordering::Relaxed);
        Self::u32_at(self.used, 8 + 8 * slot).store(len, Ordering::Relaxed);
        self.used_idx = self.used_idx.wrapping_add(1);
    }

    /// Takes back the last `n` used entries pushed and not yet published.
    pub fn unpush(&mut self, n: u16) {
        self.used_idx = self.used_idx.wrapping_sub(n);
    }

    /// Makes the used entries pushed so far visible; whether the guest asked
    /// to be told (its call eventfd is written only then).
    pub fn publish_used(&mut self) -> bool {
        let old = self.published;
        let new = self.used_idx;
        if old == new {
            return false;
        }
        Self::u16_at(self.used, 2).store(new, Ordering::Release);
        self.published = new;
        // The guest's suppression flag or event index must be read after the
        // index is seen written (as the drivers' full barrier on their side).
        fence(Ordering::SeqCst);
        if self.event_idx {
            let event =
                Self::u16_at(self.avail, 4 + 2 * self.size as usize).load(Ordering::Relaxed);
            new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
        } else {
            Self::u16_at(self.avail, 0).load(Ordering::Relaxed) & AVAIL_F_NO_INTERRUPT == 0
        }
    }

    /// Tells the guest not to kick: the queue is polled.
    pub fn suppress_kicks(&self) {
        if self.event_idx {
            // Kick only after passing an index half the index space away: never, in practice.
            let far = self.last_avail.wrapping_add(0x7fff);
            Self::u16_at(self.used, 4 + 8 * self.size as usize).store(far, Ordering::Relaxed);
        } else {
            Self::u16_at(self.used, 0).store(USED_F_NO_NOTIFY, Ordering::Relaxed);
        }
    }
}
