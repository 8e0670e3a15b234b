//! Fuzzes the record decoders of `nvs_datapath::records` (flow put, match,
//! execute, upcall and counters batches): none may panic on any input, and
//! what decodes must encode back to the same bytes. The checks live in
//! `records_fuzz::check` (tests/records_fuzz.rs runs the same checks over a
//! seeded random generator where cargo-fuzz is not installed).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/records_fuzz/check.rs"]
mod check;

fuzz_target!(|data: &[u8]| check::all(data));
