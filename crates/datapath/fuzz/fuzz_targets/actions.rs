//! Fuzzes the action decoder and executor: the first byte splits the input
//! into an encoded action list and a frame; decoding must not panic, what
//! decodes must re-encode to the same bytes, and executing it on the parsed
//! frame must not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nvs_datapath::actions::{decode, encode, execute, ActionSink, PacketBuf, HEADROOM};
use nvs_datapath::key::FlowKey;
use nvs_datapath::parse::extract;

struct Null;

impl ActionSink for Null {
    fn output(&mut self, _port: u32, _pkt: &[u8], _last: bool) {}
    fn userspace(&mut self, _cookie: u64, _pkt: &[u8], _last: bool) {}
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let (list, frame) = rest.split_at((split as usize).min(rest.len()));
    let Ok(actions) = decode(list) else { return };
    assert_eq!(encode(&actions), list);
    let mut key = FlowKey::default();
    let mut layers = extract(frame, 1, &mut key);
    let storage = vec![0u8; HEADROOM + frame.len() + 64];
    let mut buf = PacketBuf::from_frame(storage, HEADROOM, frame).unwrap();
    execute(&actions, &mut buf, &mut layers, &mut Null);
});
