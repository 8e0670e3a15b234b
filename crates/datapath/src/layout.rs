//! The flow key's binary layout, published for hosts: every field's name,
//! byte offset, size and kind, taken from the `FlowKey` struct itself, so the
//! encoding that crosses to JavaScript is defined once, here in Rust.
//!
//! Encoding: a key (or mask) crosses as the raw bytes of `FlowKey`
//! (`FlowKey::as_bytes`, [`key_from_bytes`]): integers in the machine's byte
//! order (little-endian on every target nvs builds for), address arrays in
//! network order as they appear in packets. `Pad` fields are always zero.

use core::mem::{offset_of, size_of};

use crate::key::FlowKey;

/// How a field's bytes are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// An unsigned integer of `size` bytes in machine byte order.
    Uint,
    /// A byte array (MAC or IPv6 address), network order.
    Bytes,
    /// Padding: always zero.
    Pad,
}

impl FieldKind {
    pub fn name(self) -> &'static str {
        match self {
            FieldKind::Uint => "uint",
            FieldKind::Bytes => "bytes",
            FieldKind::Pad => "pad",
        }
    }
}

/// One field of the flow key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyField {
    pub name: &'static str,
    pub offset: usize,
    pub size: usize,
    pub kind: FieldKind,
}

const fn field_size<T>(_: fn(&FlowKey) -> &T) -> usize {
    size_of::<T>()
}

/// A field value as text, for debugging forms that do not go through the layout table.
trait FieldText {
    fn text(&self) -> String;
}

macro_rules! uint_text {
    ($($t:ty),*) => {$(
        impl FieldText for $t {
            fn text(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
uint_text!(u8, u16, u32);

impl<const N: usize> FieldText for [u8; N] {
    fn text(&self) -> String {
        self.iter().map(|b| format!("{b:02x}")).collect()
    }
}

macro_rules! key_fields {
    ($($name:ident: $kind:ident),* $(,)?) => {
        /// Every field of `FlowKey`, in memory order.
        pub const KEY_FIELDS: &[KeyField] = &[$(
            KeyField {
                name: stringify!($name),
                offset: offset_of!(FlowKey, $name),
                size: field_size(|k: &FlowKey| &k.$name),
                kind: FieldKind::$kind,
            },
        )*];

        /// Each non-padding field's value as text (integers in decimal, byte
        /// arrays in hex), read straight from the struct: a check on the
        /// layout table, used by the round-trip tests of hosts.
        pub fn field_texts(key: &FlowKey) -> Vec<(&'static str, String)> {
            let mut out = Vec::new();
            $(
                if FieldKind::$kind != FieldKind::Pad {
                    out.push((stringify!($name), key.$name.text()));
                }
            )*
            out
        }
    };
}

key_fields! {
    in_port: Uint,
    recirc_id: Uint,
    eth_dst: Bytes,
    eth_type: Uint,
    eth_src: Bytes,
    vlan_tci: Uint,
    vlan_tpid: Uint,
    cvlan_tci: Uint,
    nw_proto: Uint,
    nw_tos: Uint,
    nw_ttl: Uint,
    nw_frag: Uint,
    tp_src: Uint,
    tp_dst: Uint,
    tcp_flags: Uint,
    _pad0: Pad,
    nw_src: Uint,
    nw_dst: Uint,
    ipv6_src: Bytes,
    ipv6_dst: Bytes,
    nd_target: Bytes,
    ipv6_label: Uint,
    _pad1: Pad,
    arp_sha: Bytes,
    _pad2: Pad,
    arp_tha: Bytes,
    _pad3: Pad,
    tun_id: Uint,
    tun_src: Uint,
    tun_dst: Uint,
    _pad4: Pad,
}

/// Size of an encoded key.
pub const KEY_SIZE: usize = size_of::<FlowKey>();

/// A key from its raw bytes; `None` unless exactly `KEY_SIZE` bytes.
pub fn key_from_bytes(bytes: &[u8]) -> Option<FlowKey> {
    if bytes.len() != KEY_SIZE {
        return None;
    }
    let mut key = FlowKey::default();
    for (w, chunk) in key.words_mut().iter_mut().zip(bytes.chunks_exact(8)) {
        *w = u64::from_ne_bytes(chunk.try_into().expect("chunks of 8"));
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table covers the struct exactly: fields in order, no gap, no overlap.
    /// If a field is added to `FlowKey` without being listed here, this fails.
    #[test]
    fn fields_tile_the_key() {
        let mut at = 0;
        for f in KEY_FIELDS {
            assert_eq!(
                f.offset, at,
                "field {} does not start where the previous ended",
                f.name
            );
            at += f.size;
        }
        assert_eq!(at, KEY_SIZE);
    }

    #[test]
    fn bytes_round_trip() {
        let key = FlowKey {
            in_port: 3,
            eth_src: [2, 0, 0, 0, 0, 1],
            eth_type: 0x86dd,
            vlan_tci: 0x1005,
            nw_src: 0x0a00_0001,
            ipv6_dst: [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9],
            ipv6_label: 0xfffff,
            arp_tha: [1, 2, 3, 4, 5, 6],
            ..FlowKey::default()
        };
        let back = key_from_bytes(key.as_bytes()).unwrap();
        assert_eq!(back, key);
        assert!(key_from_bytes(&key.as_bytes()[1..]).is_none());
        let texts = field_texts(&key);
        assert!(texts.contains(&("eth_type", "34525".to_string())));
        assert!(texts.contains(&("eth_src", "020000000001".to_string())));
        assert!(texts.contains(&("nw_src", "167772161".to_string())));
        assert_eq!(
            texts.len(),
            KEY_FIELDS
                .iter()
                .filter(|f| f.kind != FieldKind::Pad)
                .count()
        );
        // Integers are in machine order at their published offset.
        let f = KEY_FIELDS.iter().find(|f| f.name == "eth_type").unwrap();
        assert_eq!(
            key.as_bytes()[f.offset..f.offset + 2],
            0x86ddu16.to_ne_bytes()
        );
    }
}
