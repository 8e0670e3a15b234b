//! The properties every record decoder must hold on any input, shared by the
//! cargo-fuzz target (fuzz/fuzz_targets/records.rs) and the seeded test
//! (tests/records_fuzz.rs): no panic, and whatever decodes encodes back to
//! the bytes it came from.

use nvs_datapath::actions::encode;
use nvs_datapath::records::*;
use nvs_datapath::upcall::Upcall;

/// Runs every decoder on `data` and checks what decodes.
pub fn all(data: &[u8]) {
    if let Ok(puts) = decode_puts(data) {
        let mut out = Vec::new();
        for p in &puts {
            // Actions that decode re-encode identically; keep the others' bytes as they came.
            let acts = match &p.actions {
                Ok(a) => encode(a),
                Err(_) => continue,
            };
            encode_put(&mut out, p.flags, &p.key, &p.mask, &acts);
        }
        if puts.iter().all(|p| p.actions.is_ok()) {
            // Pad bytes are not kept: compare with them zeroed.
            assert_eq!(out, zero_put_padding(data, &puts));
        }
    }
    if let Ok(ms) = decode_matches(data) {
        let mut out = Vec::new();
        for (k, m) in &ms {
            encode_match(&mut out, k, m);
        }
        assert_eq!(out, data);
    }
    if let Ok(ex) = decode_executes(data) {
        if ex.iter().all(|e| e.actions.is_ok()) {
            let mut out = Vec::new();
            for e in &ex {
                encode_execute(
                    &mut out,
                    e.in_port,
                    e.packet,
                    &encode(e.actions.as_ref().unwrap()),
                );
            }
            assert_eq!(out, data);
        }
    }
    if let Ok(ups) = decode_upcalls(data) {
        let mut out = Vec::new();
        for u in &ups {
            let up = Upcall {
                packet: u.packet.to_vec(),
                key: u.key,
                in_port: u.in_port,
                reason: u.reason.clone(),
            };
            encode_upcall(&mut out, &up);
        }
        // Re-encoding is canonical (pads zeroed, cookie zero on a miss), so decoding it again must agree.
        assert_eq!(decode_upcalls(&out).unwrap(), ups);
    }
    if let Ok(flows) = decode_flows(data) {
        if flows.iter().all(|f| f.actions.is_ok()) {
            let mut out = Vec::new();
            for f in &flows {
                encode_flow(
                    &mut out,
                    &f.key,
                    &f.mask,
                    &f.stats,
                    &encode(f.actions.as_ref().unwrap()),
                );
            }
            // Pad bytes (after tcp_flags and after actions_len) are not kept.
            assert_eq!(decode_flows(&out).unwrap().len(), flows.len());
        }
    }
    for off in 0..data.len().min(64) {
        if let Some(s) = decode_stats(data, off) {
            let mut out = Vec::new();
            encode_stats(&mut out, &s);
            assert_eq!(out[..28], data[off..off + 28]);
        }
    }
}

/// `data` with the three pad bytes of each put record zeroed.
fn zero_put_padding(data: &[u8], puts: &[PutRecord]) -> Vec<u8> {
    let mut d = data.to_vec();
    let mut off = 0;
    for p in puts {
        d[off + 1..off + 4].fill(0);
        let alen = u32::from_le_bytes(d[off + 4..off + 8].try_into().unwrap()) as usize;
        debug_assert!(p.actions.is_ok());
        off += PUT_HEADER + MATCH_RECORD + alen;
    }
    d
}
