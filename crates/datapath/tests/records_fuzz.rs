//! The record decoders under random and mutated inputs, for machines
//! without cargo-fuzz: a seeded xorshift generator makes valid batches of
//! each kind, then flips, truncates, extends and splices them, and runs the
//! checks the fuzz target runs (records_fuzz/check.rs). By default it runs
//! briefly; `NVS_FUZZ_SECS=N` runs it for N seconds and `NVS_FUZZ_SEED`
//! picks the seed. It prints how many inputs it ran.

#[path = "records_fuzz/check.rs"]
mod check;

use std::time::{Duration, Instant};

use nvs_datapath::actions::{encode, Action};
use nvs_datapath::key::FlowKey;
use nvs_datapath::layout::{key_from_bytes, KEY_SIZE};
use nvs_datapath::records::*;
use nvs_datapath::upcall::{Upcall, UpcallReason};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn key(r: &mut Rng) -> FlowKey {
    key_from_bytes(&r.bytes(KEY_SIZE)).unwrap()
}

fn actions(r: &mut Rng) -> Vec<u8> {
    let list: Vec<Action> = (0..r.below(4))
        .map(|_| match r.below(4) {
            0 => Action::Output(r.next() as u32),
            1 => Action::PopVlan,
            2 => Action::Userspace(r.next()),
            _ => Action::Truncate(r.next() as u32),
        })
        .collect();
    encode(&list)
}

/// A valid batch of one kind of record.
fn valid_batch(r: &mut Rng) -> Vec<u8> {
    let mut b = Vec::new();
    let kind = r.below(6);
    for _ in 0..r.below(5) {
        match kind {
            0 => encode_put(&mut b, r.below(8) as u8, &key(r), &key(r), &actions(r)),
            1 => encode_match(&mut b, &key(r), &key(r)),
            2 => {
                let pkt = {
                    let n = r.below(100);
                    r.bytes(n)
                };
                encode_execute(&mut b, r.next() as u32, &pkt, &actions(r));
            }
            3 => {
                let reason = if r.below(2) == 0 {
                    UpcallReason::Miss
                } else {
                    UpcallReason::Userspace { cookie: r.next() }
                };
                let packet = {
                    let n = r.below(100);
                    r.bytes(n)
                };
                encode_upcall(
                    &mut b,
                    &Upcall {
                        packet,
                        key: key(r),
                        in_port: r.next() as u32,
                        reason,
                    },
                );
            }
            4 => {
                let s = StatsRecord {
                    packets: r.next(),
                    bytes: r.next(),
                    used_ms: r.next() as f64,
                    tcp_flags: r.next() as u32,
                };
                encode_flow(&mut b, &key(r), &key(r), &s, &actions(r));
            }
            _ => {
                let s = StatsRecord {
                    packets: r.next(),
                    bytes: r.next(),
                    used_ms: r.next() as f64,
                    tcp_flags: r.next() as u32,
                };
                encode_stats(&mut b, &s);
            }
        }
    }
    b
}

/// `b` changed in one to four random ways.
fn mutate(r: &mut Rng, mut b: Vec<u8>) -> Vec<u8> {
    for _ in 0..1 + r.below(4) {
        match r.below(5) {
            0 if !b.is_empty() => {
                let i = r.below(b.len());
                b[i] ^= 1 << r.below(8);
            }
            1 if !b.is_empty() => {
                let i = r.below(b.len());
                b[i] = [0, 0xff, 0x7f, 0x80][r.below(4)];
            }
            2 => b.truncate(r.below(b.len() + 1)),
            3 => {
                let extra = {
                    let n = r.below(16);
                    r.bytes(n)
                };
                b.extend(extra);
            }
            _ if b.len() >= 4 => {
                // A length field set to something large.
                let i = r.below(b.len() - 3);
                b[i..i + 4].copy_from_slice(&(r.next() as u32 | 0x8000_0000).to_le_bytes());
            }
            _ => {}
        }
    }
    b
}

#[test]
fn record_decoders_hold_under_random_and_mutated_input() {
    let secs: f64 = std::env::var("NVS_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let seed: u64 = std::env::var("NVS_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1234_abcd_0001);
    let mut r = Rng(seed | 1);
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let (mut inputs, mut decoded) = (0u64, 0u64);
    while Instant::now() < deadline {
        for _ in 0..256 {
            let valid = valid_batch(&mut r);
            let input = match r.below(4) {
                0 => valid,
                1 => {
                    let n = r.below(400);
                    r.bytes(n)
                }
                _ => mutate(&mut r, valid),
            };
            check::all(&input);
            decoded += u64::from(
                decode_puts(&input).is_ok()
                    || decode_executes(&input).is_ok()
                    || decode_upcalls(&input).is_ok(),
            );
            inputs += 1;
        }
    }
    println!("records fuzz: seed {seed:#x}, {inputs} inputs in {secs} s, {decoded} decoded by at least one batch decoder");
    assert!(
        decoded > 0 && decoded < inputs,
        "the generator made only valid or only invalid batches"
    );
}
