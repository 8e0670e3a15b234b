//! nvs datapath: the fast path of the switch, pure Rust and unaware of Node.
//!
//! A packet's way: port rx batch → flow key extraction → exact-match cache →
//! megaflow classifier → actions → per-port tx batches; misses go to a bounded
//! upcall queue for the slow path (see `../shared/ARCHITECTURE.md`).

pub mod actions;
pub mod checksum;
pub mod key;
pub mod parse;
