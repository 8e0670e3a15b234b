//! Datapath actions: what a megaflow does to the packets it matches, how an
//! action list runs on a packet, and the binary encoding that carries action
//! lists across napi.
//!
//! # Execution
//! [`execute`]`(actions, &mut PacketBuf, &mut Layers, &mut sink)` runs the
//! list in order on the packet in place. `Layers` comes from
//! [`crate::parse::extract`] and is kept in step when VLAN tags move the
//! headers. Nothing is allocated. Outputs and userspace actions are reported
//! to the caller's [`ActionSink`] with the packet's bytes as they are at that
//! point, so the core batches them per port; the sink copies the bytes if it
//! needs them later, except for the list's final action (`last == true`),
//! after which the packet is never touched again: the caller may then move
//! the `PacketBuf` itself to the port's tx batch (OVS likewise clones for
//! every output but the last). Actions that do not apply to the packet (a
//! set of an IPv4 field on an ARP frame, a push with no room, a pop on an
//! untagged frame) are skipped and counted in the returned number.
//!
//! - `Output(port)`: report to the sink.
//! - `Drop`: stop; later actions do not run.
//! - `Userspace(cookie)`: report to the sink (send up to the slow path).
//! - `Truncate(max_len)`: the *next* output or userspace action sees at most
//!   `max_len` bytes; the packet itself is unchanged for later actions (as in
//!   OVS), except that a final output leaves it truncated.
//! - `PushVlan { tpid, tci }`: inserts a tag after the MAC addresses; `tci`
//!   is written as is (PCP | DEI | VID, no "present" bit).
//! - `PopVlan`: removes the outer tag, if the frame has one.
//! - `SetTunnel(Tunnel)`: sets the tunnel metadata a tunnel port sends the
//!   packet with (ID, outer source and destination); the bytes are unchanged.
//! - `Set(SetField)`: `field = (field & !mask) | value` on the packet, with
//!   checksums updated incrementally: the IPv4 header checksum for IPv4
//!   fields; the TCP, UDP and ICMPv6 checksums for address changes (the
//!   pseudo-header) and port changes. A UDP checksum of zero (none) stays
//!   zero; a computed zero is sent as 0xffff. `TpSrc`/`TpDst` apply to TCP
//!   and UDP (the megaflow's match says which); SCTP ports are not settable.
//!
//! # Binary encoding (`encode` / `decode`)
//! An action list is the concatenation of its actions; the empty list is
//! zero bytes (and drops the packet). Each action is
//! `kind: u8, len: u8, payload: [u8; len]`; every integer is big-endian.
//!
//! | kind | action      | len    | payload                                   |
//! |------|-------------|--------|-------------------------------------------|
//! | 1    | output      | 4      | port: u32                                 |
//! | 2    | drop        | 0      |                                           |
//! | 3    | userspace   | 8      | cookie: u64                               |
//! | 4    | truncate    | 4      | max_len: u32                              |
//! | 5    | push_vlan   | 4      | tpid: u16 (0x8100 or 0x88a8), tci: u16    |
//! | 6    | pop_vlan    | 0      |                                           |
//! | 7    | set         | 1 + 2n | field: u8, value: [u8; n], mask: [u8; n]  |
//! | 8    | set_tunnel  | 12     | id: u32, src: u32 (IPv4), dst: u32 (IPv4) |
//!
//! A set's value and mask are the field's bytes as they appear in the packet
//! (network order); a plain set has a mask of all ones; `value & !mask` must
//! be zero. Fields (id, n): 1 eth_src (6), 2 eth_dst (6), 3 ipv4_src (4),
//! 4 ipv4_dst (4), 5 ipv4_tos (1, the whole byte: DSCP and ECN), 6 ipv4_ttl
//! (1), 7 ipv6_src (16), 8 ipv6_dst (16), 9 ipv6_label (4, the low 20 bits;
//! the high 12 bits of value and mask must be zero), 10 ipv6_tclass (1),
//! 11 ipv6_hlimit (1), 12 tp_src (2), 13 tp_dst (2).
//! `decode` rejects unknown kinds and fields, wrong lengths, a list cut off
//! inside an action, a bad TPID and value bits outside the mask or field,
//! each with the byte offset of the action at fault; `decode(encode(l)) == l`.
//! A byte-by-byte example list is the test `golden_encoding` (in
//! `actions/tests.rs`), the reference vector for other implementations.
//! Errors carry a stable `code()` (`ACTION_TRUNCATED`, …) for the napi layer.

mod buf;
mod codec;

pub use buf::{BufError, PacketBuf, HEADROOM};
pub use codec::{decode, encode, kind};

use crate::checksum;
use crate::key::Tunnel;
use crate::parse::{Layers, L3, L4};

/// One datapath action (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Output(u32),
    Drop,
    Userspace(u64),
    Truncate(u32),
    PushVlan { tpid: u16, tci: u16 },
    PopVlan,
    Set(SetField),
    SetTunnel(Tunnel),
}

/// A header field that `Set` can write; the discriminant is its wire id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Field {
    EthSrc = 1,
    EthDst = 2,
    Ipv4Src = 3,
    Ipv4Dst = 4,
    Ipv4Tos = 5,
    Ipv4Ttl = 6,
    Ipv6Src = 7,
    Ipv6Dst = 8,
    Ipv6Label = 9,
    Ipv6Tclass = 10,
    Ipv6Hlimit = 11,
    TpSrc = 12,
    TpDst = 13,
}

impl Field {
    /// Every field, in wire-id order.
    pub const ALL: [Field; 13] = [
        Field::EthSrc,
        Field::EthDst,
        Field::Ipv4Src,
        Field::Ipv4Dst,
        Field::Ipv4Tos,
        Field::Ipv4Ttl,
        Field::Ipv6Src,
        Field::Ipv6Dst,
        Field::Ipv6Label,
        Field::Ipv6Tclass,
        Field::Ipv6Hlimit,
        Field::TpSrc,
        Field::TpDst,
    ];

    /// Width of the field's value (and mask) in bytes.
    pub const fn width(self) -> usize {
        match self {
            Field::EthSrc | Field::EthDst => 6,
            Field::Ipv4Src | Field::Ipv4Dst | Field::Ipv6Label => 4,
            Field::Ipv6Src | Field::Ipv6Dst => 16,
            Field::TpSrc | Field::TpDst => 2,
            Field::Ipv4Tos | Field::Ipv4Ttl | Field::Ipv6Tclass | Field::Ipv6Hlimit => 1,
        }
    }

    /// The field with wire id `id`.
    pub fn from_u8(id: u8) -> Option<Field> {
        Field::ALL.get((id as usize).wrapping_sub(1)).copied()
    }
}

/// A validated (masked) set: `value` and `mask` are `field.width()` bytes in
/// network order, with no value bit outside the mask (or outside the 20 bits
/// of an IPv6 label). Unused array bytes are zero so equality is structural.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SetField {
    field: Field,
    value: [u8; 16],
    mask: [u8; 16],
}

impl SetField {
    /// Sets the whole field to `value`.
    pub fn new(field: Field, value: &[u8]) -> Result<SetField, ActionError> {
        let mut mask = [0xffu8; 16];
        if field == Field::Ipv6Label {
            mask[..4].copy_from_slice(&0x000f_ffffu32.to_be_bytes());
        }
        SetField::masked(field, value, &mask[..field.width()])
    }

    /// Sets the bits of the field that are 1 in `mask` to those of `value`.
    pub fn masked(field: Field, value: &[u8], mask: &[u8]) -> Result<SetField, ActionError> {
        let n = field.width();
        if value.len() != n || mask.len() != n {
            return Err(ActionError::BadLength {
                offset: 0,
                kind: kind::SET,
                len: 1 + value.len() + mask.len(),
            });
        }
        let outside_field = field == Field::Ipv6Label && (mask[0] | (mask[1] & 0xf0)) != 0;
        if outside_field || value.iter().zip(mask).any(|(v, m)| v & !m != 0) {
            return Err(ActionError::BadValue { offset: 0, field });
        }
        let mut s = SetField {
            field,
            value: [0; 16],
            mask: [0; 16],
        };
        s.value[..n].copy_from_slice(value);
        s.mask[..n].copy_from_slice(mask);
        Ok(s)
    }

    pub fn field(&self) -> Field {
        self.field
    }

    pub fn value(&self) -> &[u8] {
        &self.value[..self.field.width()]
    }

    pub fn mask(&self) -> &[u8] {
        &self.mask[..self.field.width()]
    }
}

/// Why an encoded action list (or a `SetField`) was refused. `offset` is the
/// byte offset of the action at fault in the encoded list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    /// The list ends inside an action's header or payload.
    #[error("action list truncated inside the action at byte {offset}")]
    Truncated { offset: usize },
    /// The action kind is not one of those in the format.
    #[error("unknown action kind {kind} at byte {offset}")]
    UnknownKind { offset: usize, kind: u8 },
    /// The payload length does not match the kind (or the set's field).
    #[error("action kind {kind} at byte {offset} has a payload of {len} bytes, which does not fit its format")]
    BadLength { offset: usize, kind: u8, len: usize },
    /// The set action names an unknown field.
    #[error("set action at byte {offset} names unknown field {field}")]
    UnknownField { offset: usize, field: u8 },
    /// A value bit is set outside the mask, or a mask bit outside the field.
    #[error("set of {field:?} at byte {offset} has value bits outside its mask or mask bits outside the field")]
    BadValue { offset: usize, field: Field },
    /// push_vlan with a TPID other than 0x8100 and 0x88a8.
    #[error("push_vlan at byte {offset} has TPID {tpid:#06x}; expected 0x8100 or 0x88a8")]
    BadTpid { offset: usize, tpid: u16 },
}

impl ActionError {
    /// Stable code for the napi boundary (mapped to error classes in JS).
    pub fn code(&self) -> &'static str {
        match self {
            ActionError::Truncated { .. } => "ACTION_TRUNCATED",
            ActionError::UnknownKind { .. } => "ACTION_UNKNOWN_KIND",
            ActionError::BadLength { .. } => "ACTION_BAD_LENGTH",
            ActionError::UnknownField { .. } => "ACTION_UNKNOWN_FIELD",
            ActionError::BadValue { .. } => "ACTION_BAD_VALUE",
            ActionError::BadTpid { .. } => "ACTION_BAD_TPID",
        }
    }

    /// The same error, placed at `offset`.
    fn at(self, offset: usize) -> ActionError {
        match self {
            ActionError::Truncated { .. } => ActionError::Truncated { offset },
            ActionError::UnknownKind { kind, .. } => ActionError::UnknownKind { offset, kind },
            ActionError::BadLength { kind, len, .. } => {
                ActionError::BadLength { offset, kind, len }
            }
            ActionError::UnknownField { field, .. } => ActionError::UnknownField { offset, field },
            ActionError::BadValue { field, .. } => ActionError::BadValue { offset, field },
            ActionError::BadTpid { tpid, .. } => ActionError::BadTpid { offset, tpid },
        }
    }
}

/// Receives what an action list emits. `pkt` is the packet as it is at that
/// point; `last` is true when this is the list's final action (the packet
/// will not change again, so the caller may move the buffer instead of
/// copying `pkt`).
pub trait ActionSink {
    /// `Output(port)`.
    fn output(&mut self, port: u32, pkt: &[u8], last: bool);
    /// `Userspace(cookie)`: the packet goes up to the slow path.
    fn userspace(&mut self, cookie: u64, pkt: &[u8], last: bool);
    /// `SetTunnel`: the tunnel metadata for the outputs after it (the packet
    /// itself carries it too; a sink that copies for outputs needs it).
    fn set_tunnel(&mut self, _tunnel: Tunnel) {}
}

const VLAN_TPIDS: [u16; 2] = [0x8100, 0x88a8];

/// Runs `actions` on `pkt` (see the module doc). Returns how many actions
/// were skipped because they did not apply to the packet.
pub fn execute<B, S>(
    actions: &[Action],
    pkt: &mut PacketBuf<B>,
    layers: &mut Layers,
    sink: &mut S,
) -> u32
where
    B: AsRef<[u8]> + AsMut<[u8]>,
    S: ActionSink + ?Sized,
{
    let mut skipped = 0;
    let mut cut = usize::MAX;
    for (i, a) in actions.iter().enumerate() {
        let last = i + 1 == actions.len();
        let applied = match a {
            Action::Output(port) => {
                emit(pkt, cut, last, |d| sink.output(*port, d, last));
                cut = usize::MAX;
                true
            }
            Action::Userspace(cookie) => {
                emit(pkt, cut, last, |d| sink.userspace(*cookie, d, last));
                cut = usize::MAX;
                true
            }
            Action::Drop => return skipped,
            Action::Truncate(max_len) => {
                cut = cut.min(*max_len as usize);
                true
            }
            Action::PushVlan { tpid, tci } => push_vlan(pkt, layers, *tpid, *tci),
            Action::PopVlan => pop_vlan(pkt, layers),
            Action::Set(s) => set_field(pkt.data_mut(), layers, s),
            Action::SetTunnel(t) => {
                pkt.tunnel = *t;
                sink.set_tunnel(*t);
                true
            }
        };
        skipped += u32::from(!applied);
    }
    skipped
}

/// Hands the packet (cut to `cut` bytes) to `f`; a final output keeps the
/// cut, any other leaves the packet whole for the actions after it.
fn emit<B: AsRef<[u8]> + AsMut<[u8]>>(
    pkt: &mut PacketBuf<B>,
    cut: usize,
    last: bool,
    f: impl FnOnce(&[u8]),
) {
    if last {
        pkt.truncate(cut);
    }
    let d = pkt.data();
    f(&d[..d.len().min(cut)]);
}

fn push_vlan<B: AsRef<[u8]> + AsMut<[u8]>>(
    pkt: &mut PacketBuf<B>,
    layers: &mut Layers,
    tpid: u16,
    tci: u16,
) -> bool {
    if pkt.len() < 14 || !pkt.insert(12, 4) {
        return false;
    }
    let [a, b] = tpid.to_be_bytes();
    let [c, d] = tci.to_be_bytes();
    pkt.data_mut()[12..16].copy_from_slice(&[a, b, c, d]);
    shift_layers(layers, 4);
    true
}

fn pop_vlan<B: AsRef<[u8]> + AsMut<[u8]>>(pkt: &mut PacketBuf<B>, layers: &mut Layers) -> bool {
    let d = pkt.data();
    if d.len() < 18 || !VLAN_TPIDS.contains(&u16::from_be_bytes([d[12], d[13]])) {
        return false;
    }
    pkt.remove(12, 4);
    shift_layers(layers, -4);
    true
}

fn shift_layers(layers: &mut Layers, by: i32) {
    if layers.l3_kind != L3::None {
        layers.l3 = (layers.l3 as i32 + by) as u16;
    }
    if layers.l4_kind != L4::None {
        layers.l4 = (layers.l4 as i32 + by) as u16;
    }
}

/// A checksum to keep right while bytes change: its offset in the packet,
/// and whether it is a UDP checksum (where zero means "none").
#[derive(Clone, Copy, PartialEq, Eq)]
struct Csum {
    at: usize,
    udp: bool,
}

/// The L4 checksum covering the pseudo-header, if the packet has one.
fn l4_csum(layers: &Layers) -> Option<Csum> {
    let l4 = layers.l4 as usize;
    match layers.l4_kind {
        L4::Tcp => Some(Csum {
            at: l4 + 16,
            udp: false,
        }),
        L4::Udp => Some(Csum {
            at: l4 + 6,
            udp: true,
        }),
        L4::Icmpv6 => Some(Csum {
            at: l4 + 2,
            udp: false,
        }),
        _ => None,
    }
}

fn set_field(d: &mut [u8], layers: &Layers, s: &SetField) -> bool {
    let l3 = layers.l3 as usize;
    let l4 = layers.l4 as usize;
    let ip_csum = Some(Csum {
        at: l3 + 10,
        udp: false,
    });
    let (v4, v6) = (layers.l3_kind == L3::Ipv4, layers.l3_kind == L3::Ipv6);
    let tp = matches!(layers.l4_kind, L4::Tcp | L4::Udp);
    let tp_csum = if tp { l4_csum(layers) } else { None };
    let (v, m) = (&s.value, &s.mask);
    match s.field {
        Field::EthDst => write::<6>(d, 0, v, m, [None, None]),
        Field::EthSrc => write::<6>(d, 6, v, m, [None, None]),
        Field::Ipv4Src if v4 => write::<4>(d, l3 + 12, v, m, [ip_csum, l4_csum(layers)]),
        Field::Ipv4Dst if v4 => write::<4>(d, l3 + 16, v, m, [ip_csum, l4_csum(layers)]),
        // Single bytes are written as the 16-bit word the checksum sees:
        // TOS is the low byte of word 0, TTL the high byte of word 4.
        Field::Ipv4Tos if v4 => write::<2>(d, l3, &[0, v[0]], &[0, m[0]], [ip_csum, None]),
        Field::Ipv4Ttl if v4 => write::<2>(d, l3 + 8, &[v[0], 0], &[m[0], 0], [ip_csum, None]),
        Field::Ipv6Src if v6 => write::<16>(d, l3 + 8, v, m, [l4_csum(layers), None]),
        Field::Ipv6Dst if v6 => write::<16>(d, l3 + 24, v, m, [l4_csum(layers), None]),
        Field::Ipv6Hlimit if v6 => write::<1>(d, l3 + 7, v, m, [None, None]),
        Field::Ipv6Label | Field::Ipv6Tclass if v6 => {
            // Version, traffic class and label share the first word; no
            // checksum covers them.
            let (v, m) = if s.field == Field::Ipv6Label {
                (*v, *m)
            } else {
                let (v, m) = ((v[0] as u32) << 20, (m[0] as u32) << 20);
                let mut b = ([0; 16], [0; 16]);
                b.0[..4].copy_from_slice(&v.to_be_bytes());
                b.1[..4].copy_from_slice(&m.to_be_bytes());
                b
            };
            write::<4>(d, l3, &v, &m, [None, None])
        }
        Field::TpSrc if tp => write::<2>(d, l4, v, m, [tp_csum, None]),
        Field::TpDst if tp => write::<2>(d, l4 + 2, v, m, [tp_csum, None]),
        _ => false,
    }
}

/// Writes `(old & !mask) | value` over the `N` bytes at packet offset `at`
/// (value and mask are the first `N` bytes given) and updates `csums`
/// incrementally. Checksummed fields start on a 16-bit boundary of their
/// header and have an even width, so the old and new bytes are summed as
/// whole words. False, changing nothing, if anything lies outside the packet.
#[inline(always)]
fn write<const N: usize>(
    d: &mut [u8],
    at: usize,
    value: &[u8],
    mask: &[u8],
    csums: [Option<Csum>; 2],
) -> bool {
    let (Some(value), Some(mask)) = (value.first_chunk::<N>(), mask.first_chunk::<N>()) else {
        return false;
    };
    if csums.iter().flatten().any(|c| c.at + 2 > d.len()) {
        return false;
    }
    let Some(field) = d.get_mut(at..).and_then(|d| d.first_chunk_mut::<N>()) else {
        return false;
    };
    let old = *field;
    let mut new = [0u8; N];
    for i in 0..N {
        new[i] = (old[i] & !mask[i]) | value[i];
    }
    *field = new;
    if csums == [None, None] {
        return true;
    }
    let (old_sum, new_sum) = (checksum::sum(&old, 0), checksum::sum(&new, 0));
    for c in csums.into_iter().flatten() {
        let cur = u16::from_be_bytes([d[c.at], d[c.at + 1]]);
        if c.udp && cur == 0 {
            continue;
        }
        let mut upd = checksum::adjust(cur, old_sum, new_sum);
        if c.udp && upd == 0 {
            upd = 0xffff;
        }
        d[c.at..c.at + 2].copy_from_slice(&upd.to_be_bytes());
    }
    true
}

#[cfg(test)]
mod tests;
