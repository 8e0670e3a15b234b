//! The record forms of batched datapath calls: a batch of flow puts, flow
//! deletions, packet executions, upcalls or counters crosses a process
//! boundary (the napi binding, a fuzz target) as one byte buffer of
//! fixed-layout records instead of an object per flow or packet.
//!
//! This module is the one definition of those layouts on the Rust side
//! (`packages/datapath/src/raw.ts` mirrors them for TypeScript). Integers
//! are little-endian; a key or mask is `KEY_SIZE` raw `FlowKey` bytes;
//! actions are the TLV list of [`crate::actions`].
//!
//! | batch   | one record                                                                 |
//! |---------|----------------------------------------------------------------------------|
//! | put     | flags u8 (`PUT_*`), pad 3, actions_len u32, key, mask, actions            |
//! | match   | key, mask (a deletion, or the head of a dumped counters record)            |
//! | execute | in_port u32, packet_len u32, actions_len u32, packet, actions              |
//! | upcall  | in_port u32, reason u8 (0 miss, 1 userspace), pad 3, cookie u64, packet_len u32, pad 4, key, packet, zero padding to a multiple of 8 |
//! | flow    | key, mask, a stats record, actions_len u32, pad 4, actions (a dumped megaflow) |
//! | stats   | packets u64, bytes u64, used_ms f64 (wall clock, 0 = never), tcp_flags u32, pad 4 |
//!
//! Decoders never panic on any input (a fuzz target holds them to it): a
//! record that runs past the end of the batch fails the whole batch with a
//! [`RecordError`]; a record whose actions do not decode is returned with
//! its [`ActionError`], so the caller can fail that operation alone.

use thiserror::Error;

use crate::actions::{self, Action, ActionError};
use crate::key::FlowKey;
use crate::layout::{key_from_bytes, KEY_SIZE};
use crate::upcall::{Upcall, UpcallReason};

/// Put flag: install the flow if absent.
pub const PUT_CREATE: u8 = 1;
/// Put flag: replace the actions if present.
pub const PUT_MODIFY: u8 = 2;
/// Put flag: zero the counters of a modified flow.
pub const PUT_ZERO_STATS: u8 = 4;

/// Bytes of a put record before its key.
pub const PUT_HEADER: usize = 8;
/// Bytes of an execute record before its packet.
pub const EXECUTE_HEADER: usize = 12;
/// Bytes of an upcall record before its key.
pub const UPCALL_HEADER: usize = 24;
/// Bytes of a counters record.
pub const STATS_RECORD: usize = 32;
/// Bytes of a (key, mask) record.
pub const MATCH_RECORD: usize = 2 * KEY_SIZE;
/// Bytes of a flow record before its actions.
pub const FLOW_HEADER: usize = MATCH_RECORD + STATS_RECORD + 8;

/// Why a batch of records could not be read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RecordError {
    /// Record `index` of a `batch` batch runs past the end of the buffer.
    #[error("{batch} record {index} is truncated")]
    Truncated { batch: &'static str, index: usize },
    /// Upcall record `index` names a reason other than 0 (miss) or 1 (userspace).
    #[error("upcall record {index} has unknown reason {reason}")]
    BadReason { index: usize, reason: u8 },
}

impl RecordError {
    /// The stable code the binding throws with.
    pub fn code(&self) -> &'static str {
        "DP_BAD_ARGUMENT"
    }
}

fn le_u32(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(off..off.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn le_u64(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(off..off.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// `b[off..off + len]`, or None when it runs past the end.
fn span(b: &[u8], off: usize, len: usize) -> Option<&[u8]> {
    b.get(off..off.checked_add(len)?)
}

fn key_at(b: &[u8], off: usize) -> Option<FlowKey> {
    key_from_bytes(span(b, off, KEY_SIZE)?)
}

/// One decoded put record.
#[derive(Debug)]
pub struct PutRecord {
    /// `PUT_*` bits.
    pub flags: u8,
    pub key: FlowKey,
    pub mask: FlowKey,
    pub actions: Result<Vec<Action>, ActionError>,
}

/// Appends a put record.
pub fn encode_put(out: &mut Vec<u8>, flags: u8, key: &FlowKey, mask: &FlowKey, actions: &[u8]) {
    out.extend_from_slice(&[flags, 0, 0, 0]);
    out.extend_from_slice(&(actions.len() as u32).to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(mask.as_bytes());
    out.extend_from_slice(actions);
}

/// Reads a batch of put records.
pub fn decode_puts(b: &[u8]) -> Result<Vec<PutRecord>, RecordError> {
    let mut out = Vec::new();
    let mut off = 0;
    while off < b.len() {
        let index = out.len();
        let truncated = RecordError::Truncated {
            batch: "flow put",
            index,
        };
        let rec = (|| {
            let alen = le_u32(b, off + 4)? as usize;
            let body = off + PUT_HEADER;
            let acts = span(b, body + MATCH_RECORD, alen)?;
            Some((b[off], key_at(b, body)?, key_at(b, body + KEY_SIZE)?, acts))
        })();
        let (flags, key, mask, acts) = rec.ok_or(truncated)?;
        out.push(PutRecord {
            flags,
            key,
            mask,
            actions: actions::decode(acts),
        });
        off += PUT_HEADER + MATCH_RECORD + acts.len();
    }
    Ok(out)
}

/// Appends a (key, mask) record.
pub fn encode_match(out: &mut Vec<u8>, key: &FlowKey, mask: &FlowKey) {
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(mask.as_bytes());
}

/// Reads a batch of (key, mask) records.
pub fn decode_matches(b: &[u8]) -> Result<Vec<(FlowKey, FlowKey)>, RecordError> {
    if !b.len().is_multiple_of(MATCH_RECORD) {
        return Err(RecordError::Truncated {
            batch: "flow match",
            index: b.len() / MATCH_RECORD,
        });
    }
    Ok(b.chunks_exact(MATCH_RECORD)
        .map(|c| {
            (
                key_at(c, 0).expect("whole record"),
                key_at(c, KEY_SIZE).expect("whole record"),
            )
        })
        .collect())
}

/// One decoded execute record; `packet` borrows from the batch.
#[derive(Debug)]
pub struct ExecuteRecord<'a> {
    pub in_port: u32,
    pub packet: &'a [u8],
    pub actions: Result<Vec<Action>, ActionError>,
}

/// Appends an execute record.
pub fn encode_execute(out: &mut Vec<u8>, in_port: u32, packet: &[u8], actions: &[u8]) {
    out.extend_from_slice(&in_port.to_le_bytes());
    out.extend_from_slice(&(packet.len() as u32).to_le_bytes());
    out.extend_from_slice(&(actions.len() as u32).to_le_bytes());
    out.extend_from_slice(packet);
    out.extend_from_slice(actions);
}

/// Reads a batch of execute records.
pub fn decode_executes(b: &[u8]) -> Result<Vec<ExecuteRecord<'_>>, RecordError> {
    let mut out = Vec::new();
    let mut off = 0;
    while off < b.len() {
        let index = out.len();
        let rec = (|| {
            let (in_port, plen, alen) = (le_u32(b, off)?, le_u32(b, off + 4)?, le_u32(b, off + 8)?);
            let packet = span(b, off + EXECUTE_HEADER, plen as usize)?;
            let acts = span(b, off + EXECUTE_HEADER + packet.len(), alen as usize)?;
            Some((in_port, packet, acts))
        })();
        let (in_port, packet, acts) = rec.ok_or(RecordError::Truncated {
            batch: "execute",
            index,
        })?;
        out.push(ExecuteRecord {
            in_port,
            packet,
            actions: actions::decode(acts),
        });
        off += EXECUTE_HEADER + packet.len() + acts.len();
    }
    Ok(out)
}

/// Appends an upcall record.
pub fn encode_upcall(out: &mut Vec<u8>, u: &Upcall) {
    let (reason, cookie) = match u.reason {
        UpcallReason::Miss => (0u8, 0u64),
        UpcallReason::Userspace { cookie } => (1, cookie),
    };
    out.extend_from_slice(&u.in_port.to_le_bytes());
    out.extend_from_slice(&[reason, 0, 0, 0]);
    out.extend_from_slice(&cookie.to_le_bytes());
    out.extend_from_slice(&(u.packet.len() as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(u.key.as_bytes());
    out.extend_from_slice(&u.packet);
    out.resize(out.len().next_multiple_of(8), 0);
}

/// One decoded upcall record; `packet` borrows from the batch.
#[derive(Debug, PartialEq)]
pub struct UpcallRecord<'a> {
    pub in_port: u32,
    pub reason: UpcallReason,
    pub key: FlowKey,
    pub packet: &'a [u8],
}

/// Reads a batch of upcall records (what `encode_upcall` wrote).
pub fn decode_upcalls(b: &[u8]) -> Result<Vec<UpcallRecord<'_>>, RecordError> {
    let mut out = Vec::new();
    let mut off = 0;
    while off < b.len() {
        let index = out.len();
        let rec = (|| {
            let (in_port, reason, cookie, plen) = (
                le_u32(b, off)?,
                *b.get(off + 4)?,
                le_u64(b, off + 8)?,
                le_u32(b, off + 16)?,
            );
            let key = key_at(b, off + UPCALL_HEADER)?;
            let packet = span(b, off + UPCALL_HEADER + KEY_SIZE, plen as usize)?;
            Some((in_port, reason, cookie, key, packet))
        })();
        let (in_port, reason, cookie, key, packet) = rec.ok_or(RecordError::Truncated {
            batch: "upcall",
            index,
        })?;
        let reason = match reason {
            0 => UpcallReason::Miss,
            1 => UpcallReason::Userspace { cookie },
            r => return Err(RecordError::BadReason { index, reason: r }),
        };
        out.push(UpcallRecord {
            in_port,
            reason,
            key,
            packet,
        });
        off = (off + UPCALL_HEADER + KEY_SIZE + packet.len()).next_multiple_of(8);
    }
    Ok(out)
}

/// The counters of one flow as a counters record carries them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StatsRecord {
    pub packets: u64,
    pub bytes: u64,
    /// Wall-clock ms since the Unix epoch of the last hit; 0 = never.
    pub used_ms: f64,
    pub tcp_flags: u32,
}

/// Appends a counters record.
pub fn encode_stats(out: &mut Vec<u8>, s: &StatsRecord) {
    out.extend_from_slice(&s.packets.to_le_bytes());
    out.extend_from_slice(&s.bytes.to_le_bytes());
    out.extend_from_slice(&s.used_ms.to_le_bytes());
    out.extend_from_slice(&s.tcp_flags.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
}

/// Reads the counters record at `off`, or None when it runs past the end.
pub fn decode_stats(b: &[u8], off: usize) -> Option<StatsRecord> {
    span(b, off, STATS_RECORD)?;
    Some(StatsRecord {
        packets: le_u64(b, off)?,
        bytes: le_u64(b, off + 8)?,
        used_ms: f64::from_bits(le_u64(b, off + 16)?),
        tcp_flags: le_u32(b, off + 24)?,
    })
}

/// Appends a flow record.
pub fn encode_flow(
    out: &mut Vec<u8>,
    key: &FlowKey,
    mask: &FlowKey,
    stats: &StatsRecord,
    actions: &[u8],
) {
    encode_match(out, key, mask);
    encode_stats(out, stats);
    out.extend_from_slice(&(actions.len() as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(actions);
}

/// One decoded flow record.
#[derive(Debug)]
pub struct FlowRecord {
    pub key: FlowKey,
    pub mask: FlowKey,
    pub stats: StatsRecord,
    pub actions: Result<Vec<Action>, ActionError>,
}

/// Reads a batch of flow records.
pub fn decode_flows(b: &[u8]) -> Result<Vec<FlowRecord>, RecordError> {
    let mut out = Vec::new();
    let mut off = 0;
    while off < b.len() {
        let index = out.len();
        let rec = (|| {
            let alen = le_u32(b, off + MATCH_RECORD + STATS_RECORD)? as usize;
            let acts = span(b, off + FLOW_HEADER, alen)?;
            Some((
                key_at(b, off)?,
                key_at(b, off + KEY_SIZE)?,
                decode_stats(b, off + MATCH_RECORD)?,
                acts,
            ))
        })();
        let (key, mask, stats, acts) = rec.ok_or(RecordError::Truncated {
            batch: "flow",
            index,
        })?;
        out.push(FlowRecord {
            key,
            mask,
            stats,
            actions: actions::decode(acts),
        });
        off += FLOW_HEADER + acts.len();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::encode;

    fn key(seed: u8) -> FlowKey {
        let bytes: Vec<u8> = (0..KEY_SIZE)
            .map(|i| (i as u8).wrapping_mul(seed))
            .collect();
        key_from_bytes(&bytes).unwrap()
    }

    #[test]
    fn put_records_round_trip() {
        let acts = encode(&[Action::Output(3), Action::PopVlan]);
        let mut b = Vec::new();
        encode_put(&mut b, PUT_CREATE, &key(3), &key(5), &acts);
        encode_put(&mut b, PUT_MODIFY | PUT_ZERO_STATS, &key(7), &key(9), &[]);
        let r = decode_puts(&b).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(
            (r[0].flags, r[0].key, r[0].mask),
            (PUT_CREATE, key(3), key(5))
        );
        assert_eq!(
            r[0].actions.as_ref().unwrap(),
            &[Action::Output(3), Action::PopVlan]
        );
        assert_eq!(
            (r[1].flags, r[1].key, r[1].mask),
            (PUT_MODIFY | PUT_ZERO_STATS, key(7), key(9))
        );
        assert!(r[1].actions.as_ref().unwrap().is_empty());
    }

    #[test]
    fn bad_actions_fail_one_record_and_truncation_the_batch() {
        let mut b = Vec::new();
        encode_put(&mut b, PUT_CREATE, &key(1), &key(1), &[0xee, 0]);
        encode_put(&mut b, PUT_CREATE, &key(2), &key(2), &[]);
        let r = decode_puts(&b).unwrap();
        assert!(r[0].actions.is_err());
        assert!(r[1].actions.is_ok());
        assert_eq!(
            decode_puts(&b[..b.len() - 1]).unwrap_err(),
            RecordError::Truncated {
                batch: "flow put",
                index: 1
            }
        );
        // An actions length past the end (and past usize on overflow) is truncation, not a panic.
        b[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_puts(&b).is_err());
    }

    #[test]
    fn match_records_round_trip() {
        let mut b = Vec::new();
        encode_match(&mut b, &key(1), &key(2));
        encode_match(&mut b, &key(3), &key(4));
        assert_eq!(
            decode_matches(&b).unwrap(),
            vec![(key(1), key(2)), (key(3), key(4))]
        );
        assert!(decode_matches(&b[1..]).is_err());
    }

    #[test]
    fn execute_records_round_trip() {
        let acts = encode(&[Action::Output(2)]);
        let mut b = Vec::new();
        encode_execute(&mut b, 7, &[1, 2, 3], &acts);
        encode_execute(&mut b, 0, &[], &[]);
        let r = decode_executes(&b).unwrap();
        assert_eq!((r[0].in_port, r[0].packet), (7, &[1u8, 2, 3][..]));
        assert_eq!(r[0].actions.as_ref().unwrap(), &[Action::Output(2)]);
        assert_eq!((r[1].in_port, r[1].packet.len()), (0, 0));
        assert_eq!(
            decode_executes(&b[..5]).unwrap_err(),
            RecordError::Truncated {
                batch: "execute",
                index: 0
            }
        );
    }

    #[test]
    fn upcall_records_round_trip_with_padding() {
        let ups = [
            Upcall {
                packet: vec![9; 61],
                key: key(11),
                in_port: 4,
                reason: UpcallReason::Miss,
            },
            Upcall {
                packet: vec![1; 64],
                key: key(13),
                in_port: 5,
                reason: UpcallReason::Userspace { cookie: u64::MAX },
            },
        ];
        let mut b = Vec::new();
        for u in &ups {
            encode_upcall(&mut b, u);
            assert_eq!(b.len() % 8, 0);
        }
        let r = decode_upcalls(&b).unwrap();
        assert_eq!(r.len(), 2);
        for (u, d) in ups.iter().zip(&r) {
            assert_eq!(
                (d.in_port, &d.reason, d.key, d.packet),
                (u.in_port, &u.reason, u.key, &u.packet[..])
            );
        }
        b[4] = 2;
        assert_eq!(
            decode_upcalls(&b).unwrap_err(),
            RecordError::BadReason {
                index: 0,
                reason: 2
            }
        );
    }

    #[test]
    fn flow_records_round_trip() {
        let s = StatsRecord {
            packets: 5,
            bytes: 320,
            used_ms: 1.5e12,
            tcp_flags: 2,
        };
        let acts = encode(&[Action::Output(1)]);
        let mut b = Vec::new();
        encode_flow(&mut b, &key(1), &key(2), &s, &acts);
        encode_flow(&mut b, &key(3), &key(4), &StatsRecord::default(), &[]);
        let r = decode_flows(&b).unwrap();
        assert_eq!((r[0].key, r[0].mask, r[0].stats), (key(1), key(2), s));
        assert_eq!(r[0].actions.as_ref().unwrap(), &[Action::Output(1)]);
        assert_eq!(
            (r[1].key, r[1].stats, r[1].actions.as_ref().unwrap().len()),
            (key(3), StatsRecord::default(), 0)
        );
        assert_eq!(
            decode_flows(&b[..FLOW_HEADER - 1]).unwrap_err(),
            RecordError::Truncated {
                batch: "flow",
                index: 0
            }
        );
    }

    #[test]
    fn stats_records_round_trip() {
        let s = StatsRecord {
            packets: 1 << 40,
            bytes: 3,
            used_ms: 1.7e12,
            tcp_flags: 0x12,
        };
        let mut b = vec![0xaa];
        encode_stats(&mut b, &s);
        assert_eq!(b.len(), 1 + STATS_RECORD);
        assert_eq!(decode_stats(&b, 1), Some(s));
        assert_eq!(decode_stats(&b, 2), None);
    }
}
