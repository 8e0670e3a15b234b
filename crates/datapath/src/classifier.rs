//! The megaflow classifier: tuple space search.
//!
//! One subtable per distinct mask; each subtable is a hash table of the
//! megaflows with that mask, keyed by the masked key words (only the words the
//! mask touches are hashed or compared). A lookup probes subtables in rank
//! order and returns the first match. Subtables are ranked by hit count,
//! re-sorted every `RESORT_INTERVAL` lookups (counts are then halved, so the
//! ranking follows recent traffic).
//!
//! Megaflows installed by the slow path never overlap (each is the
//! un-wildcarded image of one OpenFlow decision), so "first match" is "the
//! match". If overlapping megaflows are installed anyway, a packet in the
//! overlap gets one of them, and which one may change when the subtables are
//! re-ranked; within one subtable two megaflows cannot overlap (same mask,
//! different masked keys).
//!
//! Each polling thread owns its own classifier (no locks on lookup); the
//! datapath keeps them in step through per-thread command queues.

use std::cell::Cell;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use foldhash::fast::RandomState;
use hashbrown::HashTable;

use crate::flow::Megaflow;
use crate::key::FlowKey;

/// Lookups between two re-rankings of the subtables.
const RESORT_INTERVAL: u32 = 1 << 14;

struct Subtable {
    mask: FlowKey,
    /// Indices of the mask's non-zero words (the only ones hashed and
    /// compared), inline so a probe touches one cache line less.
    idx: [u8; FlowKey::WORDS],
    n: u8,
    flows: HashTable<Arc<Megaflow>>,
    /// Hits since the last re-ranking; a Cell so lookups need only `&self` per subtable.
    hits: Cell<u64>,
}

impl Subtable {
    #[inline]
    fn words(&self) -> &[u8] {
        &self.idx[..self.n as usize]
    }

    #[inline]
    fn hash(&self, state: &RandomState, key: &FlowKey) -> u64 {
        masked_hash(state, self.words(), &self.mask, key)
    }

    #[inline]
    fn find(&self, hash: u64, key: &FlowKey) -> Option<&Arc<Megaflow>> {
        let (k, m) = (key.words(), self.mask.words());
        self.flows.find(hash, |f| {
            let fk = f.key.words();
            self.words()
                .iter()
                .all(|&i| k[i as usize] & m[i as usize] == fk[i as usize])
        })
    }
}

/// Tuple-space-search classifier over megaflows.
pub struct Classifier {
    subtables: Vec<Subtable>,
    state: RandomState,
    lookups: u32,
    len: usize,
}

impl Default for Classifier {
    fn default() -> Self {
        Self::new()
    }
}

impl Classifier {
    /// An empty classifier with a freshly seeded hash (keys come from packets).
    pub fn new() -> Self {
        Classifier {
            subtables: Vec::new(),
            state: RandomState::default(),
            lookups: 0,
            len: 0,
        }
    }

    /// Number of megaflows.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of subtables (distinct masks).
    pub fn subtables(&self) -> usize {
        self.subtables.len()
    }

    /// Inserts `flow`, replacing a megaflow with the same mask and masked key.
    /// Returns the replaced one.
    pub fn insert(&mut self, flow: Arc<Megaflow>) -> Option<Arc<Megaflow>> {
        let idx = match self.subtables.iter().position(|s| s.mask == flow.mask) {
            Some(i) => i,
            None => {
                let (mut idx, mut n) = ([0u8; FlowKey::WORDS], 0u8);
                for i in (0..FlowKey::WORDS).filter(|&i| flow.mask.words()[i] != 0) {
                    idx[n as usize] = i as u8;
                    n += 1;
                }
                self.subtables.push(Subtable {
                    mask: flow.mask,
                    idx,
                    n,
                    flows: HashTable::new(),
                    hits: Cell::new(0),
                });
                self.subtables.len() - 1
            }
        };
        let state = &self.state;
        let st = &mut self.subtables[idx];
        let hash = st.hash(state, &flow.key);
        let replaced = match st.flows.find_mut(hash, |f| f.key == flow.key) {
            Some(slot) => Some(std::mem::replace(slot, flow)),
            None => {
                let (words, mask) = (&st.idx[..st.n as usize], &st.mask);
                st.flows
                    .insert_unique(hash, flow, |f| masked_hash(state, words, mask, &f.key));
                None
            }
        };
        if replaced.is_none() {
            self.len += 1;
        }
        replaced
    }

    /// Removes the megaflow with `flow`'s mask and key if it is `flow` itself
    /// (a newer megaflow with the same match is left alone). Returns whether removed.
    pub fn remove(&mut self, flow: &Arc<Megaflow>) -> bool {
        let Some(idx) = self.subtables.iter().position(|s| s.mask == flow.mask) else {
            return false;
        };
        let st = &mut self.subtables[idx];
        let hash = st.hash(&self.state, &flow.key);
        let Ok(entry) = st.flows.find_entry(hash, |f| Arc::ptr_eq(f, flow)) else {
            return false;
        };
        entry.remove();
        self.len -= 1;
        if st.flows.is_empty() {
            self.subtables.remove(idx);
        }
        true
    }

    /// Removes every megaflow.
    pub fn clear(&mut self) {
        self.subtables.clear();
        self.len = 0;
    }

    /// The first megaflow (in subtable rank order) that matches `key`.
    #[inline]
    pub fn lookup(&mut self, key: &FlowKey) -> Option<&Arc<Megaflow>> {
        self.lookups += 1;
        if self.lookups >= RESORT_INTERVAL {
            self.rerank();
        }
        for st in &self.subtables {
            if let Some(flow) = st.find(st.hash(&self.state, key), key) {
                st.hits.set(st.hits.get() + 1);
                return Some(flow);
            }
        }
        None
    }

    /// Sorts subtables by recent hits, most hit first.
    pub fn rerank(&mut self) {
        self.lookups = 0;
        self.subtables
            .sort_by_key(|st| std::cmp::Reverse(st.hits.get()));
        for st in &self.subtables {
            st.hits.set(st.hits.get() / 2);
        }
    }

    /// Every megaflow, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Megaflow>> {
        self.subtables.iter().flat_map(|st| st.flows.iter())
    }
}

#[inline]
fn masked_hash(state: &RandomState, words: &[u8], mask: &FlowKey, key: &FlowKey) -> u64 {
    let (k, m) = (key.words(), mask.words());
    let mut h = state.build_hasher();
    for &i in words {
        h.write_u64(k[i as usize] & m[i as usize]);
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{overlaps, FlowStats};
    use proptest::prelude::*;

    /// A key from word values; few distinct values per word make matches likely.
    fn key_from(words: &[u64]) -> FlowKey {
        let mut k = FlowKey::default();
        for (w, v) in k.words_mut().iter_mut().zip(words) {
            *w = *v;
        }
        k
    }

    fn flow(key: &FlowKey, mask: &FlowKey, tag: u32) -> Arc<Megaflow> {
        let actions = vec![crate::actions::Action::Output(tag)].into_boxed_slice();
        Arc::new(Megaflow::new(
            key,
            mask,
            actions,
            Arc::new(FlowStats::default()),
        ))
    }

    fn word() -> impl Strategy<Value = u64> {
        prop_oneof![
            Just(0u64),
            Just(1),
            Just(0xff00),
            Just(u64::MAX),
            any::<u64>()
        ]
    }

    fn mask_word() -> impl Strategy<Value = u64> {
        prop_oneof![3 => Just(0u64), 1 => Just(u64::MAX), 1 => Just(0xffff), 1 => Just(0xff00_0000_0000_00ff)]
    }

    fn words() -> impl Strategy<Value = Vec<u64>> {
        proptest::collection::vec(word(), FlowKey::WORDS)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// The classifier returns exactly what a linear scan over the
        /// (non-overlapping) megaflows finds, before and after removals.
        #[test]
        fn agrees_with_linear_scan(
            masks in proptest::collection::vec(proptest::collection::vec(mask_word(), FlowKey::WORDS), 1..8),
            flows in proptest::collection::vec((any::<prop::sample::Index>(), words()), 1..120),
            probes in proptest::collection::vec((any::<prop::sample::Index>(), words(), words()), 1..200),
            removals in proptest::collection::vec(any::<prop::sample::Index>(), 0..40),
        ) {
            let masks: Vec<FlowKey> = masks.iter().map(|m| key_from(m)).collect();
            let mut installed: Vec<Arc<Megaflow>> = Vec::new();
            let mut cls = Classifier::new();
            for (i, (mi, kw)) in flows.iter().enumerate() {
                let f = flow(&key_from(kw), mi.get(&masks), i as u32);
                // The slow path never installs overlapping megaflows: skip those.
                if installed.iter().any(|g| overlaps(g, &f)) {
                    continue;
                }
                prop_assert!(cls.insert(f.clone()).is_none());
                installed.push(f);
            }
            prop_assert_eq!(cls.len(), installed.len());
            let check = |cls: &mut Classifier, installed: &[Arc<Megaflow>]| -> Result<(), TestCaseError> {
                for (fi, base, noise) in &probes {
                    // Half the probes start from an installed flow's key with noise in its wildcarded bits.
                    let key = if installed.is_empty() || noise[0] & 1 == 0 {
                        key_from(base)
                    } else {
                        let f = fi.get(installed);
                        let mut k = f.key;
                        for ((w, m), n) in k.words_mut().iter_mut().zip(f.mask.words()).zip(noise) {
                            *w |= n & !m;
                        }
                        k
                    };
                    let expect = installed.iter().find(|f| f.matches(&key));
                    let got = cls.lookup(&key);
                    prop_assert_eq!(got.map(Arc::as_ptr), expect.map(Arc::as_ptr));
                }
                Ok(())
            };
            check(&mut cls, &installed)?;
            cls.rerank();
            check(&mut cls, &installed)?;
            for r in &removals {
                if installed.is_empty() {
                    break;
                }
                let i = r.index(installed.len());
                let f = installed.swap_remove(i);
                prop_assert!(cls.remove(&f));
                prop_assert!(!cls.remove(&f));
            }
            prop_assert_eq!(cls.len(), installed.len());
            check(&mut cls, &installed)?;
        }
    }

    #[test]
    fn insert_replaces_same_match_and_remove_spares_newer() {
        let mask = FlowKey {
            eth_type: 0xffff,
            ..FlowKey::default()
        };
        let key = FlowKey {
            eth_type: 0x0800,
            ..FlowKey::default()
        };
        let mut cls = Classifier::new();
        let old = flow(&key, &mask, 1);
        let new = flow(&key, &mask, 2);
        assert!(cls.insert(old.clone()).is_none());
        assert!(Arc::ptr_eq(&cls.insert(new.clone()).unwrap(), &old));
        assert_eq!(cls.len(), 1);
        // Removing the replaced flow must not remove its successor.
        assert!(!cls.remove(&old));
        let mut pkt = key;
        pkt.tp_src = 80;
        assert!(Arc::ptr_eq(cls.lookup(&pkt).unwrap(), &new));
        assert!(cls.remove(&new));
        assert!(cls.lookup(&pkt).is_none());
        assert_eq!(cls.subtables(), 0);
    }

    #[test]
    fn most_hit_subtable_is_probed_first() {
        let mut cls = Classifier::new();
        let m1 = FlowKey {
            eth_type: 0xffff,
            ..FlowKey::default()
        };
        let m2 = FlowKey {
            tp_dst: 0xffff,
            ..FlowKey::default()
        };
        let k1 = FlowKey {
            eth_type: 0x86dd,
            ..FlowKey::default()
        };
        let k2 = FlowKey {
            tp_dst: 53,
            ..FlowKey::default()
        };
        cls.insert(flow(&k1, &m1, 1));
        cls.insert(flow(&k2, &m2, 2));
        for _ in 0..10 {
            assert!(cls.lookup(&k2).is_some());
        }
        cls.rerank();
        assert_eq!(cls.subtables[0].mask, m2);
    }
}
