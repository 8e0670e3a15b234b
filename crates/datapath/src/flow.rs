//! Megaflows: the unit the slow path installs in the fast path.
//!
//! A megaflow is `(key, mask, actions)`: it matches every packet whose key,
//! ANDed with `mask`, equals `key` (stored pre-masked). Megaflows are shared
//! as `Arc<Megaflow>` between the datapath's master flow table, every polling
//! thread's classifier and every exact-match-cache entry that points at it.
//!
//! Invalidation: a megaflow is never changed in place. Deleting or modifying
//! one sets its `dead` flag (readers check it on every cache hit) and removes
//! it from the classifiers; a modification installs a fresh `Megaflow` that
//! shares the old one's `FlowStats`, so counters survive an action change.

use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::Arc;

use crate::actions::Action;
use crate::key::FlowKey;

/// Counters of one megaflow. Polling threads add to them once per batch
/// (never per packet), so there is no lock and only a few atomics per batch.
#[derive(Debug, Default)]
pub struct FlowStats {
    packets: AtomicU64,
    bytes: AtomicU64,
    /// Datapath clock (ms since the datapath started, +1) of the last hit; 0 = never.
    used: AtomicU64,
    tcp_flags: AtomicU16,
}

/// A point-in-time copy of a megaflow's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowStatsSnapshot {
    pub packets: u64,
    pub bytes: u64,
    /// Datapath clock of the last hit (ms since the datapath started, +1); 0 = never used.
    pub used: u64,
    /// OR of the TCP flags of every packet counted.
    pub tcp_flags: u16,
}

impl FlowStats {
    /// Adds one batch's worth of hits.
    pub fn add(&self, packets: u64, bytes: u64, tcp_flags: u16, now: u64) {
        self.packets.fetch_add(packets, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        if tcp_flags != 0 {
            self.tcp_flags.fetch_or(tcp_flags, Ordering::Relaxed);
        }
        self.used.fetch_max(now, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> FlowStatsSnapshot {
        FlowStatsSnapshot {
            packets: self.packets.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            used: self.used.load(Ordering::Relaxed),
            tcp_flags: self.tcp_flags.load(Ordering::Relaxed),
        }
    }

    /// Zeroes the counters (put with `clear_stats`).
    pub fn clear(&self) {
        self.packets.store(0, Ordering::Relaxed);
        self.bytes.store(0, Ordering::Relaxed);
        self.used.store(0, Ordering::Relaxed);
        self.tcp_flags.store(0, Ordering::Relaxed);
    }
}

/// One installed megaflow.
#[derive(Debug)]
pub struct Megaflow {
    /// The match, already ANDed with `mask`.
    pub key: FlowKey,
    pub mask: FlowKey,
    pub actions: Box<[Action]>,
    pub stats: Arc<FlowStats>,
    dead: AtomicBool,
}

impl Megaflow {
    /// A new megaflow; `key` is masked here so callers may pass a full packet key.
    pub fn new(
        key: &FlowKey,
        mask: &FlowKey,
        actions: Box<[Action]>,
        stats: Arc<FlowStats>,
    ) -> Self {
        Megaflow {
            key: mask_key(key, mask),
            mask: *mask,
            actions,
            stats,
            dead: AtomicBool::new(false),
        }
    }

    /// Whether `key` (a packet's full key) falls in this megaflow.
    #[inline]
    pub fn matches(&self, key: &FlowKey) -> bool {
        let (k, m, f) = (key.words(), self.mask.words(), self.key.words());
        (0..FlowKey::WORDS).all(|i| k[i] & m[i] == f[i])
    }

    /// True once the flow was deleted or replaced: caches must not use it.
    #[inline]
    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Acquire)
    }

    pub(crate) fn kill(&self) {
        self.dead.store(true, Ordering::Release);
    }
}

/// `key & mask`, word by word.
pub fn mask_key(key: &FlowKey, mask: &FlowKey) -> FlowKey {
    let mut out = *key;
    for (o, m) in out.words_mut().iter_mut().zip(mask.words()) {
        *o &= m;
    }
    out
}

/// Whether some key could match both megaflows: they agree on every bit both masks care about.
pub fn overlaps(a: &Megaflow, b: &Megaflow) -> bool {
    let (ak, am, bk, bm) = (a.key.words(), a.mask.words(), b.key.words(), b.mask.words());
    (0..FlowKey::WORDS).all(|i| (ak[i] ^ bk[i]) & am[i] & bm[i] == 0)
}
