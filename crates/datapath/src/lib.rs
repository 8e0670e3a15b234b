//! nvs datapath: the fast path of the switch, pure Rust and unaware of Node.
//!
//! A packet's way: port rx batch → flow key extraction → exact-match cache →
//! megaflow classifier → actions → per-port tx batches; misses go to a bounded
//! upcall queue for the slow path (see the repository's `ARCHITECTURE.md`).
//! [`datapath::Datapath`] is the entry point for hosts (the napi binding, benches).

pub mod actions;
pub mod checksum;
pub mod classifier;
pub mod datapath;
pub mod emc;
pub mod flow;
pub mod frame;
pub mod key;
pub mod layout;
pub mod netdev;
pub mod parse;
pub mod pmd;
pub mod port;
pub mod ports;
pub mod records;
pub mod upcall;
