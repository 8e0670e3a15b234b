//! The exact-match cache (EMC): one per polling thread, in front of the classifier.
//!
//! A fixed-size, 2-way set-associative table indexed by a seeded hash of the
//! packet's whole flow key; each slot remembers the full key and the megaflow the
//! classifier returned for it. A hit costs one hash, one key compare and one
//! `dead` check, instead of a probe per subtable.
//!
//! Insertion policy: always, after every classifier hit, into a free one of
//! the key's two slots, else over one of them (no eviction bookkeeping).
//! With more live flows than slots this thrashes, which costs at most the
//! classifier lookup we would have paid anyway.
//!
//! Invalidation: entries are never chased down when a megaflow goes away;
//! instead a hit on a megaflow whose `dead` flag is set counts as a miss (the
//! slot is overwritten by the next insert; `clear` frees everything at once).

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use foldhash::fast::RandomState;

use crate::flow::Megaflow;
use crate::key::FlowKey;

/// Default number of slots (a power of two).
pub const EMC_ENTRIES: usize = 8192;

#[derive(Default)]
struct Slot {
    key: FlowKey,
    flow: Option<Arc<Megaflow>>,
}

/// 2-way set-associative exact-match cache.
pub struct Emc {
    slots: Box<[Slot]>,
    state: RandomState,
}

impl Emc {
    /// A cache of `entries` slots (rounded up to a power of two).
    pub fn new(entries: usize) -> Self {
        let n = entries.max(1).next_power_of_two();
        Emc {
            slots: (0..n).map(|_| Slot::default()).collect(),
            state: RandomState::default(),
        }
    }

    /// The seeded hash of a whole key; computed once per packet.
    #[inline]
    pub fn hash(&self, key: &FlowKey) -> u64 {
        // One `write` of the whole key: foldhash's long-input path mixes two
        // lanes in parallel, about twice as fast as fifteen `write_u64`s.
        let mut h = self.state.build_hasher();
        h.write(key.as_bytes());
        h.finish()
    }

    /// The two slots `hash` may live in (2-way set-associative: two keys that
    /// collide on one slot do not evict each other forever).
    #[inline]
    fn slots_of(&self, hash: u64) -> [usize; 2] {
        let m = self.slots.len() - 1;
        [hash as usize & m, (hash >> 32) as usize & m]
    }

    /// The slot holding a live megaflow cached for exactly `key`, if any
    /// (read it with [`Emc::flow_at`]). A slot whose megaflow died is a miss.
    #[inline]
    pub fn find(&self, hash: u64, key: &FlowKey) -> Option<usize> {
        self.slots_of(hash).into_iter().find(|&i| {
            let slot = &self.slots[i];
            // Compare as words: one pass of 64-bit compares, not field by field.
            matches!(&slot.flow, Some(f) if slot.key.words() == key.words() && !f.is_dead())
        })
    }

    /// The megaflow in slot `i`, as returned by `find` or `insert`.
    ///
    /// # Panics
    /// If the slot is empty (an index not returned by `find`/`insert`).
    #[inline]
    pub fn flow_at(&self, i: usize) -> &Arc<Megaflow> {
        self.slots[i]
            .flow
            .as_ref()
            .expect("EMC slot given by find/insert")
    }

    /// Remembers that `key` maps to `flow`; returns the slot. Takes a free
    /// slot (empty, dead or holding this key) of the two if there is one,
    /// else evicts one of them, chosen by a hash bit.
    #[inline]
    pub fn insert(&mut self, hash: u64, key: &FlowKey, flow: &Arc<Megaflow>) -> usize {
        let [a, b] = self.slots_of(hash);
        let free = |s: &Slot| match &s.flow {
            None => true,
            Some(f) => f.is_dead() || s.key.words() == key.words(),
        };
        let i = if free(&self.slots[a]) {
            a
        } else if free(&self.slots[b]) {
            b
        } else if hash & (1 << 31) == 0 {
            a
        } else {
            b
        };
        let slot = &mut self.slots[i];
        slot.key = *key;
        slot.flow = Some(flow.clone());
        i
    }

    /// Forgets everything (e.g. on flush, so flows are freed promptly).
    pub fn clear(&mut self) {
        for s in self.slots.iter_mut() {
            s.flow = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::FlowStats;

    fn flow(key: &FlowKey) -> Arc<Megaflow> {
        Arc::new(Megaflow::new(
            key,
            &FlowKey::default(),
            Box::new([]),
            Arc::new(FlowStats::default()),
        ))
    }

    #[test]
    fn hit_needs_the_exact_key() {
        let mut emc = Emc::new(16);
        let key = FlowKey {
            tp_src: 1234,
            ..FlowKey::default()
        };
        let f = flow(&key);
        let h = emc.hash(&key);
        assert_eq!(emc.find(h, &key), None);
        let slot = emc.insert(h, &key, &f);
        assert_eq!(emc.find(h, &key), Some(slot));
        assert!(Arc::ptr_eq(emc.flow_at(slot), &f));
        let mut other = key;
        other.tp_src = 1235;
        // Same slot forced: a different key must not hit.
        assert_eq!(emc.find(h, &other), None);
    }

    #[test]
    fn dead_megaflow_is_a_miss() {
        let mut emc = Emc::new(16);
        let key = FlowKey {
            in_port: 7,
            ..FlowKey::default()
        };
        let f = flow(&key);
        let h = emc.hash(&key);
        emc.insert(h, &key, &f);
        f.kill();
        assert_eq!(emc.find(h, &key), None);
        emc.clear();
        assert_eq!(Arc::strong_count(&f), 1);
    }
}
