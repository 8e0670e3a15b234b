//! Flow key extraction: one pass over an Ethernet frame that fills a
//! [`FlowKey`] and records where each layer starts, for the actions.
//!
//! # API
//! `extract(pkt, in_port, &mut key) -> Layers`. The key is reset first (every
//! field zero, `in_port` set; a recirculating caller sets `recirc_id`
//! afterwards). The returned [`Layers`] holds the L3/L4 header offsets and
//! kinds (L2 always starts at offset 0) and `error`: `None` for a frame
//! parsed in full, or the [`ParseError`] that stopped the parse. On error the
//! key holds what was parsed before the bad header — a *partial key*, still a
//! valid lookup key — and the caller counts the error (see
//! [`ParseError::index`]). Never panics, never allocates.
//!
//! # What the key holds (OVS's conventions, checked against `ovs-ofctl
//! parse-pcap` by `tests/pcap_oracle.rs`)
//! - Frames shorter than 14 bytes leave the whole key zero (MACs included).
//! - Up to two VLAN tags (TPID 0x8100 or 0x88a8) are parsed, each only if
//!   the tag and the EtherType after it are present; a third tag's TPID
//!   becomes `eth_type`. A length field (< 0x600) is looked through an
//!   LLC/SNAP header with OUI 0; any other 802.3 frame gets `eth_type` 0x05ff.
//! - IPv4 needs IHL ≥ 5 and header and total length within the frame
//!   (otherwise no L3 field is set); the version nibble is not checked. Bytes
//!   past the total length (Ethernet padding) are ignored. Fragments set
//!   `FRAG_ANY`, non-first ones also `FRAG_LATER` and get no L4 fields.
//! - IPv6 needs a 40-byte header and payload within the frame (otherwise no L3
//!   field is set). Hop-by-hop, routing, destination options, AH and fragment
//!   headers are skipped; if one is truncated, only the addresses are kept. A
//!   non-first fragment stops the walk with `nw_proto` 44 (the fragment
//!   header); a first fragment sets `FRAG_ANY`; an atomic fragment (offset, flags
//!   and reserved bits all 0) is no fragment. `nw_tos` holds the whole traffic class.
//! - ARP/RARP for Ethernet/IPv4 only: opcode in `nw_proto` (0 if > 255), SPA/TPA
//!   in `nw_src`/`nw_dst`, SHA/THA in `arp_sha`/`arp_tha`.
//! - TCP (a full header per its data offset), UDP (8 bytes), SCTP (12),
//!   ICMP, IGMP and ICMPv6 (8 bytes; type and code in `tp_src`/`tp_dst`;
//!   the key has no IGMP group), chosen by the protocol number alone, over
//!   either IP version: a shorter L4 header
//!   leaves the L4 fields zero. `tcp_flags` holds the 12 flag bits.
//! - ND (ICMPv6 135/136, code 0, in IPv6): `nd_target`, and the source/target
//!   link-layer address options (8 bytes long) into `arp_sha`/`arp_tha`. A
//!   zero-length or overlong option ends the option walk (fields found so far
//!   kept); a truncated target or a repeated address option makes all three
//!   zero. Both count as `NdInvalid`.

use crate::key::{FlowKey, FRAG_ANY, FRAG_LATER};

/// Why extraction stopped before the end of the headers. The key holds the
/// fields parsed before this point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[repr(u8)]
pub enum ParseError {
    /// The frame is shorter than an Ethernet header (14 bytes).
    #[error("frame shorter than an Ethernet header")]
    EthTruncated,
    /// A VLAN tag, or the EtherType after it, is cut off.
    #[error("truncated VLAN tag")]
    VlanTruncated,
    /// An ARP/RARP packet is truncated or not Ethernet/IPv4 ARP.
    #[error("truncated or non-Ethernet/IPv4 ARP packet")]
    ArpInvalid,
    /// IPv4 header shorter than 20 bytes or than its IHL, or total length
    /// beyond the frame or below the header length.
    #[error("invalid IPv4 header or length")]
    Ipv4Invalid,
    /// IPv6 header shorter than 40 bytes or payload length beyond the frame.
    #[error("invalid IPv6 header or length")]
    Ipv6Invalid,
    /// An IPv6 extension header is truncated.
    #[error("truncated IPv6 extension header")]
    Ipv6ExtHeader,
    /// The TCP, UDP, SCTP, ICMP, IGMP or ICMPv6 header is shorter than its
    /// minimum (or, for TCP, than its data offset says).
    #[error("truncated transport header")]
    L4Truncated,
    /// A neighbour discovery message is truncated or has bad options.
    #[error("malformed neighbour discovery message")]
    NdInvalid,
}

impl ParseError {
    /// Number of variants, for arrays of per-error counters.
    pub const COUNT: usize = 8;

    /// Dense index in `0..COUNT`, for counter arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Kind of the header at [`Layers::l3`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum L3 {
    #[default]
    None,
    Ipv4,
    Ipv6,
    Arp,
}

/// Kind of the header at [`Layers::l4`]; set only when that header was
/// present in full (so actions may rewrite it without bounds surprises).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum L4 {
    #[default]
    None,
    Tcp,
    Udp,
    Sctp,
    Icmp,
    Igmp,
    Icmpv6,
}

/// Where the headers of a parsed frame start (L2 is always at offset 0).
/// Offsets are meaningful only when the matching kind is not `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Layers {
    /// Offset of the L3 header (IPv4, IPv6 or ARP).
    pub l3: u16,
    /// Offset of the L4 header.
    pub l4: u16,
    pub l3_kind: L3,
    pub l4_kind: L4,
    /// The error that stopped the parse, if any.
    pub error: Option<ParseError>,
}

const ETH_TYPE_IPV4: u16 = 0x0800;
const ETH_TYPE_ARP: u16 = 0x0806;
const ETH_TYPE_RARP: u16 = 0x8035;
const ETH_TYPE_IPV6: u16 = 0x86dd;
const ETH_TYPE_VLAN: u16 = 0x8100;
const ETH_TYPE_QINQ: u16 = 0x88a8;
/// Smallest EtherType; smaller values are 802.3 lengths.
const ETH_TYPE_MIN: u16 = 0x0600;
/// `eth_type` for 802.3 frames without an LLC/SNAP EtherType (OVS's value).
pub const ETH_TYPE_NONE: u16 = 0x05ff;

const IPPROTO_HOPOPTS: u8 = 0;
const IPPROTO_ICMP: u8 = 1;
const IPPROTO_IGMP: u8 = 2;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_ROUTING: u8 = 43;
const IPPROTO_FRAGMENT: u8 = 44;
const IPPROTO_AH: u8 = 51;
const IPPROTO_ICMPV6: u8 = 58;
const IPPROTO_DSTOPTS: u8 = 60;
const IPPROTO_SCTP: u8 = 132;

const ND_NEIGHBOR_SOLICIT: u8 = 135;
const ND_NEIGHBOR_ADVERT: u8 = 136;
const ND_OPT_SOURCE_LL: u8 = 1;
const ND_OPT_TARGET_LL: u8 = 2;

#[inline(always)]
fn be16(b: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([b[off], b[off + 1]])
}

#[inline(always)]
fn be32(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn is_vlan(ty: u16) -> bool {
    ty == ETH_TYPE_VLAN || ty == ETH_TYPE_QINQ
}

/// Extracts the flow key of Ethernet frame `pkt` received on `in_port` into
/// `key` (reset first) and returns the header offsets; see the module doc.
pub fn extract(pkt: &[u8], in_port: u32, key: &mut FlowKey) -> Layers {
    *key = FlowKey {
        in_port,
        ..FlowKey::default()
    };
    let mut layers = Layers::default();
    layers.error = extract_into(pkt, key, &mut layers).err();
    layers
}

fn extract_into(pkt: &[u8], key: &mut FlowKey, layers: &mut Layers) -> Result<(), ParseError> {
    if pkt.len() < 14 {
        return Err(ParseError::EthTruncated);
    }
    key.eth_dst.copy_from_slice(&pkt[0..6]);
    key.eth_src.copy_from_slice(&pkt[6..12]);

    // `off` points at the current EtherType/TPID field.
    let mut off = 12;
    let mut ty = be16(pkt, off);
    let mut tags = 0;
    while is_vlan(ty) && tags < 2 {
        // A tag counts only with the EtherType after it (6 bytes).
        if pkt.len() < off + 6 {
            key.eth_type = ty;
            return Err(ParseError::VlanTruncated);
        }
        let tci = be16(pkt, off + 2) | 0x1000;
        if tags == 0 {
            key.vlan_tci = tci;
            key.vlan_tpid = ty;
        } else {
            key.cvlan_tci = tci;
        }
        tags += 1;
        off += 4;
        ty = be16(pkt, off);
    }
    off += 2;
    if ty < ETH_TYPE_MIN {
        // 802.3 length field: only LLC/SNAP with OUI 0 carries an EtherType.
        let snap = pkt.get(off..off + 8);
        match snap {
            Some(&[0xaa, 0xaa, 0x03, 0, 0, 0, hi, lo])
                if u16::from_be_bytes([hi, lo]) >= ETH_TYPE_MIN =>
            {
                ty = u16::from_be_bytes([hi, lo]);
                off += 8;
            }
            _ => {
                key.eth_type = ETH_TYPE_NONE;
                return Ok(());
            }
        }
    }
    key.eth_type = ty;

    let rest = &pkt[off..];
    match ty {
        ETH_TYPE_IPV4 => ipv4(rest, off, key, layers),
        ETH_TYPE_IPV6 => ipv6(rest, off, key, layers),
        ETH_TYPE_ARP | ETH_TYPE_RARP => arp(rest, off, key, layers),
        _ => Ok(()),
    }
}

fn arp(rest: &[u8], off: usize, key: &mut FlowKey, layers: &mut Layers) -> Result<(), ParseError> {
    let Some(a) = rest.get(..28) else {
        return Err(ParseError::ArpInvalid);
    };
    if be16(a, 0) != 1 || be16(a, 2) != ETH_TYPE_IPV4 || a[4] != 6 || a[5] != 4 {
        return Err(ParseError::ArpInvalid);
    }
    let op = be16(a, 6);
    // Only the low 8 bits of the opcode fit the key (as in OVS).
    if op <= 0xff {
        key.nw_proto = op as u8;
    }
    key.arp_sha.copy_from_slice(&a[8..14]);
    key.nw_src = be32(a, 14);
    key.arp_tha.copy_from_slice(&a[18..24]);
    key.nw_dst = be32(a, 24);
    layers.l3 = off as u16;
    layers.l3_kind = L3::Arp;
    Ok(())
}

fn ipv4(rest: &[u8], off: usize, key: &mut FlowKey, layers: &mut Layers) -> Result<(), ParseError> {
    let Some(h) = rest.get(..20) else {
        return Err(ParseError::Ipv4Invalid);
    };
    let ihl = (h[0] & 0x0f) as usize * 4;
    let tot = be16(h, 2) as usize;
    if ihl < 20 || rest.len() < ihl || tot > rest.len() || tot < ihl {
        return Err(ParseError::Ipv4Invalid);
    }
    key.nw_tos = h[1];
    key.nw_ttl = h[8];
    key.nw_proto = h[9];
    key.nw_src = be32(h, 12);
    key.nw_dst = be32(h, 16);
    let frag = be16(h, 6);
    if frag & 0x3fff != 0 {
        key.nw_frag = FRAG_ANY;
        if frag & 0x1fff != 0 {
            key.nw_frag |= FRAG_LATER;
        }
    }
    layers.l3 = off as u16;
    layers.l3_kind = L3::Ipv4;
    if key.nw_frag & FRAG_LATER != 0 {
        return Ok(());
    }
    l4(&rest[ihl..tot], off + ihl, key, layers)
}

fn ipv6(rest: &[u8], off: usize, key: &mut FlowKey, layers: &mut Layers) -> Result<(), ParseError> {
    let Some(h) = rest.get(..40) else {
        return Err(ParseError::Ipv6Invalid);
    };
    let end = 40 + be16(h, 4) as usize;
    if end > rest.len() {
        return Err(ParseError::Ipv6Invalid);
    }
    key.ipv6_src.copy_from_slice(&h[8..24]);
    key.ipv6_dst.copy_from_slice(&h[24..40]);
    layers.l3 = off as u16;
    layers.l3_kind = L3::Ipv6;

    // Walk the extension headers first: OVS keeps only the addresses when
    // one is truncated, so the other L3 fields are set after the walk.
    let mut nxt = h[6];
    let mut pos = 40;
    let mut frag = 0;
    loop {
        let ext = &rest[pos..end];
        let len = match nxt {
            IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS if ext.len() >= 8 => {
                (ext[1] as usize + 1) * 8
            }
            IPPROTO_AH if ext.len() >= 8 => (ext[1] as usize + 2) * 4,
            IPPROTO_FRAGMENT if ext.len() >= 8 => {
                let offlg = be16(ext, 2);
                if offlg & 0xfff8 != 0 {
                    // Later fragment: what follows is not a header.
                    frag = FRAG_ANY | FRAG_LATER;
                    break;
                }
                // An all-zero offset/flags word (an atomic fragment) is no
                // fragment; any other bit, reserved ones too, makes a first.
                if offlg != 0 {
                    frag = FRAG_ANY;
                }
                8
            }
            IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS | IPPROTO_AH | IPPROTO_FRAGMENT => {
                return Err(ParseError::Ipv6ExtHeader)
            }
            _ => break,
        };
        if ext.len() < len {
            return Err(ParseError::Ipv6ExtHeader);
        }
        nxt = ext[0];
        pos += len;
    }
    let flow = be32(h, 0);
    key.ipv6_label = flow & 0x000f_ffff;
    key.nw_tos = (flow >> 20) as u8;
    key.nw_ttl = h[7];
    key.nw_proto = nxt;
    key.nw_frag = frag;
    if frag & FRAG_LATER != 0 {
        return Ok(());
    }
    l4(&rest[pos..end], off + pos, key, layers)
}

// Inlined into both IP parsers: one dispatch on the protocol, no call. As
// in OVS, the protocol alone decides (ICMP over IPv6 and ICMPv6 over IPv4
// are parsed too).
#[inline(always)]
fn l4(p: &[u8], off: usize, key: &mut FlowKey, layers: &mut Layers) -> Result<(), ParseError> {
    let kind = match key.nw_proto {
        IPPROTO_TCP => {
            let doff = match p.get(12) {
                Some(b) => (b >> 4) as usize * 4,
                None => return Err(ParseError::L4Truncated),
            };
            if doff < 20 || p.len() < doff {
                return Err(ParseError::L4Truncated);
            }
            ports(p, key);
            key.tcp_flags = be16(p, 12) & 0x0fff;
            L4::Tcp
        }
        IPPROTO_UDP if p.len() >= 8 => {
            ports(p, key);
            L4::Udp
        }
        IPPROTO_SCTP if p.len() >= 12 => {
            ports(p, key);
            L4::Sctp
        }
        IPPROTO_ICMP if p.len() >= 8 => {
            key.tp_src = p[0] as u16;
            key.tp_dst = p[1] as u16;
            L4::Icmp
        }
        IPPROTO_IGMP if p.len() >= 8 => {
            key.tp_src = p[0] as u16;
            key.tp_dst = p[1] as u16;
            L4::Igmp
        }
        IPPROTO_ICMPV6 if p.len() >= 8 => {
            key.tp_src = p[0] as u16;
            key.tp_dst = p[1] as u16;
            layers.l4 = off as u16;
            layers.l4_kind = L4::Icmpv6;
            // ND fields exist in IPv6 flows only (OVS prints none for IPv4).
            let is_nd = p[0] == ND_NEIGHBOR_SOLICIT || p[0] == ND_NEIGHBOR_ADVERT;
            return if is_nd && p[1] == 0 && key.eth_type == ETH_TYPE_IPV6 {
                nd(&p[8..], key)
            } else {
                Ok(())
            };
        }
        IPPROTO_UDP | IPPROTO_SCTP | IPPROTO_ICMP | IPPROTO_IGMP | IPPROTO_ICMPV6 => {
            return Err(ParseError::L4Truncated)
        }
        _ => return Ok(()),
    };
    layers.l4 = off as u16;
    layers.l4_kind = kind;
    Ok(())
}

#[inline(always)]
fn ports(p: &[u8], key: &mut FlowKey) {
    let w = be32(p, 0);
    key.tp_src = (w >> 16) as u16;
    key.tp_dst = w as u16;
}

/// Target address and link-layer options of an NS/NA body (after the 8-byte
/// ICMPv6 header). As in OVS, an option with a bad length ends the option
/// walk keeping what was found, while a truncated target or a repeated
/// address option voids all three ND fields.
fn nd(body: &[u8], key: &mut FlowKey) -> Result<(), ParseError> {
    let void = |key: &mut FlowKey| {
        key.nd_target = [0; 16];
        key.arp_sha = [0; 6];
        key.arp_tha = [0; 6];
        Err(ParseError::NdInvalid)
    };
    let Some(target) = body.get(..16) else {
        return void(key);
    };
    key.nd_target.copy_from_slice(target);
    let mut opts = &body[16..];
    while opts.len() >= 8 {
        let len = opts[1] as usize * 8;
        if len == 0 || len > opts.len() {
            return Err(ParseError::NdInvalid);
        }
        if len == 8 {
            let slot = match opts[0] {
                ND_OPT_SOURCE_LL => Some(&mut key.arp_sha),
                ND_OPT_TARGET_LL => Some(&mut key.arp_tha),
                _ => None,
            };
            if let Some(slot) = slot {
                if *slot != [0; 6] {
                    return void(key);
                }
                slot.copy_from_slice(&opts[2..8]);
            }
        }
        opts = &opts[len..];
    }
    Ok(())
}

#[cfg(test)]
mod tests;
