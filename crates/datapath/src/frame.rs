//! Frames: packet memory that knows its home.
//!
//! A [`Frame`] is the owned storage of one packet in flight. It is either a
//! heap region or a chunk of a [`Pool`]: one memory area carved into
//! fixed-size chunks addressed by their offset from its start, which is the
//! shape of an AF_XDP UMEM (shared by its fill, rx, tx and completion rings)
//! and of the copy target of a vhost-user queue. Dropping a frame gives it
//! back to its home: a pool chunk goes back on its pool's free ring from any
//! thread, whichever port or thread took it. So a packet received on port A
//! and sent out of (or dropped by) port B goes home to A without B knowing
//! where it came from.
//!
//! Back ends whose rings speak offsets lend a chunk out of its frame with
//! [`Pool::lend`] (a fill ring, or a tx ring when the frame already lives in
//! the port's own pool: no copy) and take it back with [`Pool::reclaim`]
//! (rx ring, completion ring). Two ports that share a pool (two AF_XDP sockets
//! on one UMEM) thus pass frames without a copy; a frame from elsewhere is
//! copied into a chunk of the port's pool, and the original goes home.
//!
//! # Cost
//! Several polling threads use one pool: a frame may be freed on another
//! thread than the one that took it. The free list is a bounded lock-free
//! ring of offsets (`crossbeam_queue::ArrayQueue`): taking or freeing a chunk
//! there is one compare-and-swap on it, plus one reference-count increment or
//! decrement on the pool (which keeps the memory alive while frames are out).
//! Together about 24 ns per frame on these machines (`benches/datapath.rs`,
//! group "pool").
//!
//! A polling thread mostly frees the frames it took itself (a vhost-user
//! packet is copied into a frame on rx and out of it on tx, in one
//! iteration), so a thread that calls [`keep_freed_frames`] keeps up to
//! [`CACHE_FRAMES`] freed frames per pool for its own next allocations,
//! whole (with their reference to the pool): reusing one costs no atomic at
//! all. Cached frames are in use as far as [`Pool::free_count`] can tell;
//! the thread gives them back with [`flush_thread_cache`] (the polling loop
//! does when it goes idle, when its ports change and when it is dropped)
//! and when it ends.
//!
//! # Safety
//! The pool's memory is written through raw pointers. The invariant that
//! makes it sound: each chunk offset is, at any time, in exactly one place —
//! the free ring, one live `Frame` (a thread cache holds live frames), or
//! lent out (owned by a ring, until `reclaim`). So no two `Frame`s ever
//! alias a chunk.

use std::cell::RefCell;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;
use std::sync::Arc;

use crossbeam_queue::ArrayQueue;

use crate::actions::{PacketBuf, HEADROOM};

/// Packet storage: a heap region or a chunk of a pool (see the module doc).
///
/// The region's start and length are kept in the frame itself, so reading a
/// packet costs no branch and no look-up in its pool (that showed in the
/// forwarding bench); the home is needed only when the frame is dropped.
pub struct Frame {
    /// Start of the region: a heap allocation of `len` bytes (a `Box<[u8]>`
    /// taken apart), or the chunk at `offset` in `pool`. Never null, but not
    /// a `NonNull`: with that niche, `Option<Packet>` (what draining a batch
    /// yields) was copied in pieces that the next 16-byte load could not
    /// forward from — a stall that cost the forwarding bench about 10%.
    ptr: *mut u8,
    len: u32,
    offset: u32,
    /// `None`: a heap frame.
    pool: Option<Pool>,
}

// SAFETY: a frame owns its region alone (a heap allocation, or a chunk no
// other frame holds: the module invariant), so it may move to another thread;
// the pool handle is itself Send.
unsafe impl Send for Frame {}
// SAFETY: `&Frame` gives only `&[u8]` of the region.
unsafe impl Sync for Frame {}

impl Frame {
    /// A heap frame of `len` zero bytes.
    pub fn heap(len: usize) -> Frame {
        let len32 = u32::try_from(len).expect("a frame is smaller than 4 GiB");
        let raw = Box::into_raw(vec![0u8; len].into_boxed_slice());
        Frame {
            ptr: raw.cast::<u8>(),
            len: len32,
            offset: 0,
            pool: None,
        }
    }

    /// The chunk at `offset` of `pool`, owned by the new frame.
    fn chunk(pool: &Pool, offset: u32) -> Frame {
        Frame {
            ptr: pool.0.chunk_ptr(offset).as_ptr(),
            len: pool.0.chunk as u32,
            offset,
            pool: Some(pool.clone()),
        }
    }

    /// The pool this frame belongs to and its chunk's offset there, or `None` for a heap frame.
    pub fn pool(&self) -> Option<(&Pool, u32)> {
        self.pool.as_ref().map(|p| (p, self.offset))
    }
}

impl AsRef<[u8]> for Frame {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `ptr` and `len` describe the frame's own region (a live heap
        // allocation, or a chunk of a pool kept alive by `pool`), which no one
        // else writes while the frame holds it.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len as usize) }
    }
}

impl AsMut<[u8]> for Frame {
    fn as_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_ref`; `&mut self` makes this the only access to the region.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len as usize) }
    }
}

impl Frame {
    /// Gives a pool frame's chunk back to its pool's free ring (a heap frame is freed).
    fn go_home(self) {
        let mut f = ManuallyDrop::new(self);
        match f.pool.take() {
            Some(pool) => pool.0.give_back(f.offset),
            None => drop(ManuallyDrop::into_inner(f)),
        }
    }
}

impl Drop for Frame {
    fn drop(&mut self) {
        match self.pool.take() {
            Some(pool) => {
                let home = Arc::as_ptr(&pool.0);
                cache_keep(
                    Frame {
                        ptr: self.ptr,
                        len: self.len,
                        offset: self.offset,
                        pool: Some(pool),
                    },
                    home,
                )
            }
            // SAFETY: a heap frame's `ptr`/`len` come from `Box::into_raw` of a
            // `Box<[u8]>` of that length (in `heap`), given back once, here.
            None => unsafe {
                drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                    self.ptr,
                    self.len as usize,
                )))
            },
        }
    }
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.pool {
            None => write!(f, "Frame::Heap({} bytes)", self.len),
            Some(_) => write!(f, "Frame::Pool(offset {})", self.offset),
        }
    }
}

/// A pool of fixed-size chunks in one memory area; cloning shares it.
#[derive(Clone)]
pub struct Pool(Arc<Shared>);

struct Shared {
    /// Start of the area: `count * chunk` bytes, page-aligned, from `mmap`.
    base: NonNull<u8>,
    chunk: usize,
    count: usize,
    /// Offsets of the free chunks.
    free: ArrayQueue<u32>,
}

// SAFETY: `base` is memory owned by `Shared` (unmapped only in its Drop); the
// chunks are reached only through `Frame`s, each owning its chunk alone (the
// module invariant), and the free ring is a thread-safe queue.
unsafe impl Send for Shared {}
// SAFETY: as above: shared references give no access to chunk bytes.
unsafe impl Sync for Shared {}

/// Why a pool could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The chunk size or count is zero, or the area would pass 4 GiB (offsets are 32-bit).
    #[error("a pool of {count} chunks of {chunk} bytes is not possible: {why}")]
    BadSize {
        count: usize,
        chunk: usize,
        why: &'static str,
    },
    /// The memory could not be mapped.
    #[error("mapping a pool's memory failed: {0}")]
    Map(#[source] std::io::Error),
}

impl Shared {
    fn chunk_ptr(&self, offset: u32) -> NonNull<u8> {
        debug_assert!((offset as usize) < self.count * self.chunk);
        // SAFETY: offsets handed out are multiples of `chunk` below `count * chunk`,
        // so the result stays inside the mapped area (and is not null).
        unsafe { self.base.add(offset as usize) }
    }

    fn give_back(&self, offset: u32) {
        // The ring holds `count` slots and every offset at most once, so it
        // has room unless a chunk was given back twice (a broken `reclaim`).
        assert!(
            self.free.push(offset).is_ok(),
            "pool chunk {offset} freed twice"
        );
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // SAFETY: `base` was mapped with this length in `Pool::new` and every
        // frame holds the pool alive, so no chunk is in use any more.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.count * self.chunk);
        }
    }
}

impl Pool {
    /// A pool of `count` chunks of `chunk` bytes each (rounded up to a cache
    /// line), all free. The memory is an anonymous private mapping: zeroed,
    /// page-aligned (as an AF_XDP UMEM must be), and committed only as
    /// chunks are first written, so a large pool costs little until used.
    pub fn new(count: usize, chunk: usize) -> Result<Pool, PoolError> {
        let chunk = chunk.div_ceil(64) * 64;
        let bad = |why| PoolError::BadSize { count, chunk, why };
        if count == 0 || chunk == 0 {
            return Err(bad("count and chunk size must be positive"));
        }
        let len = count
            .checked_mul(chunk)
            .filter(|&l| l <= u32::MAX as usize)
            .ok_or_else(|| bad("the area must stay below 4 GiB (32-bit offsets)"))?;
        // SAFETY: an anonymous mapping at an address of the kernel's choosing;
        // the result is checked before use.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(PoolError::Map(std::io::Error::last_os_error()));
        }
        let base = NonNull::new(p.cast::<u8>()).expect("mmap never returns null on success");
        let free = ArrayQueue::new(count);
        for i in 0..count {
            let _ = free.push((i * chunk) as u32);
        }
        Ok(Pool(Arc::new(Shared {
            base,
            chunk,
            count,
            free,
        })))
    }

    /// A free chunk as a frame, or `None` when every chunk is in use.
    pub fn alloc(&self) -> Option<Frame> {
        if let Some(f) = cache_take(self) {
            return Some(f);
        }
        let offset = self.0.free.pop()?;
        Some(Frame::chunk(self, offset))
    }

    /// Takes `frame`'s chunk out of it for a ring that speaks offsets (an
    /// AF_XDP fill or tx ring): returns the offset, and the chunk stays in
    /// use until [`Pool::reclaim`]. A frame of another home is handed back.
    pub fn lend(&self, frame: Frame) -> Result<u32, Frame> {
        let Some((pool, offset)) = frame.pool() else {
            return Err(frame);
        };
        if !self.same(pool) {
            return Err(frame);
        }
        let mut frame = std::mem::ManuallyDrop::new(frame);
        // The frame's reference to the pool goes; its chunk stays in use until
        // `reclaim` (the frame is never dropped, so the chunk is not given back).
        drop(frame.pool.take());
        Ok(offset)
    }

    /// The frame of a chunk lent with [`Pool::lend`] and now handed back by its ring.
    ///
    /// # Safety
    /// `offset` must have come from `lend` on this pool and not been
    /// reclaimed since: otherwise two frames would own one chunk.
    pub unsafe fn reclaim(&self, offset: u32) -> Frame {
        Frame::chunk(self, offset)
    }

    /// Whether `other` is this pool (same memory): frames pass between their
    /// users without a copy.
    pub fn same(&self, other: &Pool) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Bytes per chunk.
    pub fn chunk_size(&self) -> usize {
        self.0.chunk
    }

    /// Number of chunks.
    pub fn capacity(&self) -> usize {
        self.0.count
    }

    /// Chunks free now (in use: `capacity() - free_count()`).
    pub fn free_count(&self) -> usize {
        self.0.free.len()
    }

    /// The area's start and length, to register it with the kernel (an
    /// AF_XDP UMEM). The bytes may be written only through frames.
    pub fn area(&self) -> (NonNull<u8>, usize) {
        (self.0.base, self.0.count * self.0.chunk)
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Pool({} of {} chunks of {} bytes free)",
            self.free_count(),
            self.capacity(),
            self.chunk_size()
        )
    }
}

/// Frames a thread keeps per pool (see "Cost" in the module doc): two bursts.
pub const CACHE_FRAMES: usize = 64;
/// Pools a thread keeps frames of; frames of further pools go to their rings.
const CACHE_POOLS: usize = 8;

/// One thread's freed frames, per pool (by the address of its shared part).
struct ThreadCache {
    on: bool,
    pools: Vec<(*const Shared, Vec<Frame>)>,
}

thread_local! {
    static CACHE: RefCell<ThreadCache> = const {
        RefCell::new(ThreadCache { on: false, pools: Vec::new() })
    };
}

/// Whether pool frames the calling thread frees from now on are kept for
/// its own next allocations (a polling loop turns it on for the span of one
/// iteration). Kept frames are reused whatever this says, until
/// [`flush_thread_cache`], which the thread must call when it stops for a
/// while, or they stay out of their pools.
pub fn keep_freed_frames(on: bool) {
    let _ = CACHE.try_with(|c| {
        if let Ok(mut c) = c.try_borrow_mut() {
            c.on = on;
        }
    });
}

/// Gives every frame the calling thread keeps back to its pool.
pub fn flush_thread_cache() {
    let pools = CACHE
        .try_with(|c| {
            c.try_borrow_mut()
                .map(|mut c| std::mem::take(&mut c.pools))
                .unwrap_or_default()
        })
        .unwrap_or_default();
    for (_, frames) in pools {
        frames.into_iter().for_each(Frame::go_home);
    }
}

/// Keeps `frame` (of the pool at `home`) in the calling thread's cache if
/// it has one with room; else its ring takes it.
fn cache_keep(frame: Frame, home: *const Shared) {
    let mut left = Some(frame);
    // (When the thread is ending its cache is gone: the ring takes the frame.)
    let _ = CACHE.try_with(|c| {
        let Ok(mut c) = c.try_borrow_mut() else {
            return;
        };
        if !c.on {
            return;
        }
        let at = match c.pools.iter().position(|(p, _)| *p == home) {
            Some(i) => i,
            None if c.pools.len() < CACHE_POOLS => {
                c.pools.push((home, Vec::with_capacity(CACHE_FRAMES)));
                c.pools.len() - 1
            }
            None => return,
        };
        let frames = &mut c.pools[at].1;
        if frames.len() < CACHE_FRAMES {
            frames.push(left.take().expect("set above"));
        }
    });
    if let Some(f) = left {
        f.go_home();
    }
}

/// A frame of `pool` from the calling thread's cache, if it keeps one.
fn cache_take(pool: &Pool) -> Option<Frame> {
    let home = Arc::as_ptr(&pool.0);
    CACHE
        .try_with(|c| {
            let mut c = c.try_borrow_mut().ok()?;
            let (_, frames) = c.pools.iter_mut().find(|(p, _)| *p == home)?;
            frames.pop()
        })
        .ok()
        .flatten()
}

/// A chunk size of at least `bytes` for [`Pool::new`]: an odd number of
/// cache lines. Packets start at the same offset in every chunk, so with a
/// power-of-two stride every packet header of a pool would fall in the same
/// few cache sets and evict each other. (An AF_XDP UMEM in aligned mode needs
/// power-of-two chunks; in unaligned mode it takes any size.)
pub const fn spread_chunk(bytes: usize) -> usize {
    (bytes.div_ceil(64) | 1) * 64
}

/// A copy of `bytes` as a packet with [`HEADROOM`] in front: in a chunk of
/// `pool` when one is free and large enough, else on the heap. This is the
/// one copy a packet gets on its way in (a vhost-user queue, an injected
/// test packet) or when it is replicated (flood, mirror).
pub fn copy_packet(pool: &Pool, bytes: &[u8]) -> PacketBuf<Frame> {
    match pool.alloc() {
        Some(f) if pool.chunk_size() >= HEADROOM + bytes.len() => {
            PacketBuf::from_frame(f, HEADROOM, bytes).expect("the chunk was checked to fit")
        }
        // Too large for a chunk (the unused chunk goes back), or none free.
        _ => heap_packet(bytes),
    }
}

/// A copy of `bytes` as a packet in a heap frame with [`HEADROOM`] in front.
pub fn heap_packet(bytes: &[u8]) -> PacketBuf<Frame> {
    PacketBuf::from_frame(Frame::heap(HEADROOM + bytes.len()), HEADROOM, bytes)
        .expect("the frame was sized for the packet")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_go_home_when_dropped_from_any_thread() {
        assert_eq!(
            (spread_chunk(2048), spread_chunk(2112), spread_chunk(1)),
            (2112, 2112, 64)
        );
        let pool = Pool::new(4, 100).unwrap();
        assert_eq!(pool.chunk_size(), 128);
        let frames: Vec<Frame> = (0..4).map(|_| pool.alloc().unwrap()).collect();
        assert!(pool.alloc().is_none());
        let mut offsets: Vec<u32> = frames.iter().map(|f| f.pool().unwrap().1).collect();
        offsets.sort();
        assert_eq!(offsets, vec![0, 128, 256, 384]);
        std::thread::spawn(move || drop(frames)).join().unwrap();
        assert_eq!(pool.free_count(), 4);
    }

    #[test]
    fn a_caching_thread_reuses_its_frames_and_gives_them_back() {
        let pool = Pool::new(4, 64).unwrap();
        let p = pool.clone();
        std::thread::spawn(move || {
            keep_freed_frames(true);
            let a = p.alloc().unwrap();
            let offset = a.pool().unwrap().1;
            drop(a);
            // Kept by this thread: out of the ring, and the next one taken here.
            assert_eq!(p.free_count(), 3);
            let b = p.alloc().unwrap();
            assert_eq!(b.pool().unwrap().1, offset);
            drop(b);
            flush_thread_cache();
            assert_eq!(p.free_count(), 4);
            // Kept again, then given back when the thread ends.
            drop(p.alloc());
            assert_eq!(p.free_count(), 3);
            // Not kept once the thread says so (a kept one is still reused).
            keep_freed_frames(false);
            let (c, d) = (p.alloc().unwrap(), p.alloc().unwrap());
            drop((c, d));
            assert_eq!(p.free_count(), 4);
        })
        .join()
        .unwrap();
        assert_eq!(pool.free_count(), 4);
        // A thread that does not cache gives frames straight back.
        drop(pool.alloc());
        assert_eq!(pool.free_count(), 4);
    }

    #[test]
    fn chunks_do_not_overlap() {
        let pool = Pool::new(3, 64).unwrap();
        let mut frames: Vec<Frame> = (0..3).map(|_| pool.alloc().unwrap()).collect();
        for (i, f) in frames.iter_mut().enumerate() {
            f.as_mut().fill(i as u8 + 1);
        }
        for (i, f) in frames.iter().enumerate() {
            assert!(f.as_ref().iter().all(|&b| b == i as u8 + 1));
        }
    }

    #[test]
    fn lend_and_reclaim_keep_the_chunk_in_use() {
        let pool = Pool::new(2, 64).unwrap();
        let other = Pool::new(1, 64).unwrap();
        let mut f = pool.alloc().unwrap();
        f.as_mut()[0] = 42;
        let offset = pool.lend(f).unwrap();
        assert_eq!(pool.free_count(), 1);
        // A frame from another pool is not ours to lend.
        let foreign = other.alloc().unwrap();
        assert!(pool.lend(foreign).is_err());
        assert_eq!(other.free_count(), 1);
        // SAFETY: `offset` was lent just above and not reclaimed.
        let back = unsafe { pool.reclaim(offset) };
        assert_eq!(back.as_ref()[0], 42);
        drop(back);
        assert_eq!(pool.free_count(), 2);
        // The pool outlives its handles while a frame is out.
        let last = pool.alloc().unwrap();
        drop(pool);
        assert_eq!(last.as_ref().len(), 64);
    }

    #[test]
    fn copies_use_the_pool_then_the_heap() {
        let pool = Pool::new(1, HEADROOM + 64).unwrap();
        let a = copy_packet(&pool, &[1; 60]);
        assert!(a.into_parts().0.pool().is_some());
        let held = copy_packet(&pool, &[2; 60]);
        let b = copy_packet(&pool, &[3; 60]);
        assert_eq!(b.data(), &[3; 60]);
        let (frame, start, _) = b.into_parts();
        assert!(frame.pool().is_none(), "pool empty: heap");
        assert_eq!(start, HEADROOM);
        drop(held);
        let big = copy_packet(&pool, &[4; 200]);
        assert!(big.into_parts().0.pool().is_none(), "too large: heap");
        assert_eq!(pool.free_count(), 1);
        assert!(Pool::new(0, 64).is_err());
        assert!(Pool::new(1 << 20, 1 << 13).is_err());
    }
}
