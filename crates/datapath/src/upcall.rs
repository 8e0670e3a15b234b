//! The upcall queue: packets the fast path hands to the slow path.
//!
//! A miss (no megaflow matched) or a `userspace` action makes an `Upcall`
//! carrying a copy of the packet, its flow key and why it came up. Polling
//! threads push into one bounded lock-free queue; the slow path pops them in
//! batches. The queue never grows: when it is full the upcall is dropped and
//! counted (as a "lost" upcall in the pushing thread's stats), so a slow or
//! stalled slow path can never block or balloon a polling thread.

use std::sync::Mutex;
use std::thread::Thread;
use std::time::Duration;

use crossbeam_queue::ArrayQueue;

use crate::key::FlowKey;

/// Default capacity of the upcall queue.
pub const UPCALL_QUEUE_LEN: usize = 4096;

/// Why a packet went up to the slow path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpcallReason {
    /// No megaflow matched.
    Miss,
    /// A `userspace` action, with its opaque cookie.
    Userspace { cookie: u64 },
}

/// One packet for the slow path.
#[derive(Clone, Debug)]
pub struct Upcall {
    /// The packet as received (after actions before a `userspace` action).
    pub packet: Vec<u8>,
    /// Its flow key (partial if the packet was malformed).
    pub key: FlowKey,
    pub in_port: u32,
    pub reason: UpcallReason,
}

/// Bounded multi-producer queue of upcalls with an optional waiting consumer.
pub struct UpcallQueue {
    queue: ArrayQueue<Upcall>,
    /// The thread blocked in `wait`, unparked when producers push.
    waiter: Mutex<Option<Thread>>,
}

impl UpcallQueue {
    pub fn new(capacity: usize) -> Self {
        UpcallQueue {
            queue: ArrayQueue::new(capacity.max(1)),
            waiter: Mutex::new(None),
        }
    }

    /// Queues `up`; false if the queue is full and `up` was dropped (the caller counts the loss).
    pub fn push(&self, up: Upcall) -> bool {
        self.queue.push(up).is_ok()
    }

    /// Wakes a consumer blocked in `wait`; producers call it once per batch that queued something.
    pub fn notify(&self) {
        if let Some(t) = self
            .waiter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            t.unpark();
        }
    }

    /// Pops up to `max` upcalls.
    pub fn pop_batch(&self, max: usize, out: &mut Vec<Upcall>) -> usize {
        let before = out.len();
        while out.len() - before < max {
            match self.queue.pop() {
                Some(u) => out.push(u),
                None => break,
            }
        }
        out.len() - before
    }

    /// Blocks the calling thread until the queue is non-empty, `notify` is
    /// called, or `timeout` passes (spurious wakeups are possible: re-check).
    pub fn wait(&self, timeout: Duration) {
        *self.waiter.lock().unwrap_or_else(|e| e.into_inner()) = Some(std::thread::current());
        if self.queue.is_empty() {
            std::thread::park_timeout(timeout);
        }
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.queue.capacity()
    }
}
