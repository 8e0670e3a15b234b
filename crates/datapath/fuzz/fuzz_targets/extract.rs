//! Fuzzes flow key extraction: any input must parse without panicking, and
//! the offsets it reports must lie inside the frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nvs_datapath::key::FlowKey;
use nvs_datapath::parse::{extract, L3, L4};

fuzz_target!(|data: &[u8]| {
    let mut key = FlowKey::default();
    let l = extract(data, 1, &mut key);
    if l.l3_kind != L3::None {
        assert!((l.l3 as usize) < data.len());
    }
    if l.l4_kind != L4::None {
        assert!(l.l4 > l.l3 && (l.l4 as usize) < data.len());
    }
});
