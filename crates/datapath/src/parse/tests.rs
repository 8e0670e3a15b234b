//! Tests of `extract`: one static frame per protocol (decoded by hand from
//! the bytes), the error variants, and property tests: no input panics, the
//! offsets stay inside the frame, and keys agree with `etherparse` on random
//! well-formed frames.

use super::*;
use etherparse::{IpNumber, PacketBuilder};
use proptest::prelude::*;

const MACS: [u8; 12] = [
    0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb,
];

fn parse(frame: &[u8]) -> (FlowKey, Layers) {
    let mut k = FlowKey::default();
    let l = extract(frame, 3, &mut k);
    (k, l)
}

fn frame(rest: &[u8]) -> Vec<u8> {
    [&MACS[..], rest].concat()
}

/// 802.1Q-tagged IPv4/TCP SYN from 192.0.2.1:49152 to 198.51.100.7:443.
#[rustfmt::skip]
const TCP4_VLAN: [u8; 58] = [
    0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb,
    0x81, 0x00, 0x60, 0x64,             // PCP 3, VID 100
    0x08, 0x00,
    0x45, 0x10, 0x00, 0x28, 0xab, 0xcd, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00,
    192, 0, 2, 1, 198, 51, 100, 7,
    0xc0, 0x00, 0x01, 0xbb, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0,
];

#[test]
fn tcp4_in_vlan() {
    let (k, l) = parse(&TCP4_VLAN);
    assert_eq!(l.error, None);
    assert_eq!(k.in_port, 3);
    assert_eq!(k.eth_dst, [0, 0x11, 0x22, 0x33, 0x44, 0x55]);
    assert_eq!(k.eth_src, [0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb]);
    assert_eq!((k.vlan_tci, k.vlan_tpid, k.cvlan_tci), (0x7064, 0x8100, 0));
    assert_eq!(
        (k.eth_type, k.nw_proto, k.nw_tos, k.nw_ttl, k.nw_frag),
        (0x0800, 6, 0x10, 64, 0)
    );
    assert_eq!((k.nw_src, k.nw_dst), (0xc000_0201, 0xc633_6407));
    assert_eq!((k.tp_src, k.tp_dst, k.tcp_flags), (49152, 443, 0x002));
    assert_eq!(
        (l.l3, l.l3_kind, l.l4, l.l4_kind),
        (18, L3::Ipv4, 38, L4::Tcp)
    );
}

#[test]
fn qinq_tags() {
    let f = frame(&[
        0x88, 0xa8, 0x00, 0x0a, 0x81, 0x00, 0xe0, 0x14, 0x88, 0xcc, 1, 2,
    ]);
    let (k, l) = parse(&f);
    assert_eq!(l.error, None);
    assert_eq!(
        (k.vlan_tci, k.vlan_tpid, k.cvlan_tci, k.eth_type),
        (0x100a, 0x88a8, 0xf014, 0x88cc)
    );
    assert_eq!(l.l3_kind, L3::None);
}

#[test]
fn udp6_through_extension_headers() {
    #[rustfmt::skip]
    let ip6 = [
        0x6a, 0xb1, 0x23, 0x45, 0x00, 0x28, 0x00, 0x40, // tclass 0xab, label 0x12345, plen 40, hop-by-hop, hlim 64
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
        43, 0, 1, 4, 0, 0, 0, 0,               // hop-by-hop → routing
        60, 0, 0, 0, 0, 0, 0, 0,               // routing → dest options
        44, 0, 1, 4, 0, 0, 0, 0,               // dest options → fragment
        17, 0, 0x00, 0x01, 0, 0, 0, 5,         // fragment: offset 0, M → UDP
        0x12, 0x34, 0x56, 0x78, 0, 8, 0, 0,    // UDP
    ];
    let f = frame(&[&[0x86, 0xdd][..], &ip6].concat());
    let (k, l) = parse(&f);
    assert_eq!(l.error, None);
    assert_eq!(
        (k.eth_type, k.nw_proto, k.nw_tos, k.nw_ttl, k.ipv6_label),
        (0x86dd, 17, 0xab, 64, 0x12345)
    );
    assert_eq!(k.nw_frag, FRAG_ANY);
    assert_eq!(k.ipv6_src[15], 1);
    assert_eq!(k.ipv6_dst[15], 2);
    assert_eq!((k.tp_src, k.tp_dst), (0x1234, 0x5678));
    assert_eq!((l.l3, l.l4, l.l4_kind), (14, 14 + 40 + 32, L4::Udp));
}

#[test]
fn neighbour_advertisement() {
    let mut icmp = vec![136, 0, 0, 0, 0xe0, 0, 0, 0];
    icmp.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]);
    icmp.extend_from_slice(&[2, 1, 1, 2, 3, 4, 5, 6]);
    let mut ip6 = vec![0x60, 0, 0, 0, 0, icmp.len() as u8, 58, 255];
    ip6.extend_from_slice(&[0; 32]);
    let f = frame(&[&[0x86, 0xdd][..], &ip6, &icmp].concat());
    let (k, l) = parse(&f);
    assert_eq!(l.error, None);
    assert_eq!((k.nw_proto, k.tp_src, k.tp_dst), (58, 136, 0));
    assert_eq!(k.nd_target[15], 9);
    assert_eq!((k.arp_sha, k.arp_tha), ([0; 6], [1, 2, 3, 4, 5, 6]));
    assert_eq!(l.l4_kind, L4::Icmpv6);
}

#[test]
fn arp_reply() {
    let arp = [
        0, 1, 8, 0, 6, 4, 0, 2, 1, 1, 1, 1, 1, 1, 10, 0, 0, 1, 2, 2, 2, 2, 2, 2, 10, 0, 0, 2,
    ];
    let (k, l) = parse(&frame(&[&[0x08, 0x06][..], &arp].concat()));
    assert_eq!(l.error, None);
    assert_eq!(
        (k.eth_type, k.nw_proto, k.nw_src, k.nw_dst),
        (0x0806, 2, 0x0a00_0001, 0x0a00_0002)
    );
    assert_eq!((k.arp_sha, k.arp_tha), ([1; 6], [2; 6]));
    assert_eq!((l.l3, l.l3_kind), (14, L3::Arp));
}

#[test]
fn icmp4_and_sctp4() {
    let ip = |proto: u8, l4: &[u8]| {
        let mut h = vec![
            0x45,
            0,
            0,
            (20 + l4.len()) as u8,
            0,
            0,
            0,
            0,
            9,
            proto,
            0,
            0,
            1,
            2,
            3,
            4,
            5,
            6,
            7,
            8,
        ];
        h.extend_from_slice(l4);
        frame(&[&[0x08, 0x00][..], &h].concat())
    };
    let (k, l) = parse(&ip(1, &[0, 0, 0xff, 0xff, 0, 1, 0, 1]));
    assert_eq!(
        (k.nw_proto, k.tp_src, k.tp_dst, l.l4_kind, l.error),
        (1, 0, 0, L4::Icmp, None)
    );
    let (k, l) = parse(&ip(132, &[0x0b, 0x59, 0x0b, 0x5a, 0, 0, 0, 1, 0, 0, 0, 0]));
    assert_eq!((k.tp_src, k.tp_dst, l.l4_kind), (2905, 2906, L4::Sctp));
}

#[test]
fn ipv4_later_fragment_has_no_l4() {
    let mut f = TCP4_VLAN;
    f[24] = 0x00;
    f[25] = 0x10; // offset 16 × 8
    let (k, l) = parse(&f);
    assert_eq!(l.error, None);
    assert_eq!(k.nw_frag, FRAG_ANY | FRAG_LATER);
    assert_eq!((k.nw_proto, k.tp_src, k.tp_dst), (6, 0, 0));
    assert_eq!(l.l4_kind, L4::None);
}

#[test]
fn errors_leave_partial_keys() {
    assert_eq!(
        parse(&MACS[..10]),
        (
            FlowKey {
                in_port: 3,
                ..FlowKey::default()
            },
            Layers {
                error: Some(ParseError::EthTruncated),
                ..Layers::default()
            }
        )
    );

    let (k, l) = parse(&TCP4_VLAN[..16]);
    assert_eq!(
        (l.error, k.eth_type, k.vlan_tci),
        (Some(ParseError::VlanTruncated), 0x8100, 0)
    );

    let (k, l) = parse(&TCP4_VLAN[..30]);
    assert_eq!(
        (l.error, k.eth_type, k.vlan_tci, k.nw_src),
        (Some(ParseError::Ipv4Invalid), 0x0800, 0x7064, 0)
    );

    let mut f = TCP4_VLAN;
    f[50] = 0x30; // TCP data offset 3
    let (k, l) = parse(&f);
    assert_eq!(
        (l.error, k.nw_src, k.tp_src, l.l4_kind),
        (Some(ParseError::L4Truncated), 0xc000_0201, 0, L4::None)
    );
    assert_eq!(l.l3_kind, L3::Ipv4);

    let (k, l) = parse(&frame(&[0x08, 0x06, 0, 1, 8, 0]));
    assert_eq!(
        (l.error, k.eth_type),
        (Some(ParseError::ArpInvalid), 0x0806)
    );

    let (_, l) = parse(&frame(&[&[0x86, 0xdd][..], &[0x60; 39]].concat()));
    assert_eq!(l.error, Some(ParseError::Ipv6Invalid));

    let mut ip6 = vec![0x60, 0, 0, 0, 0, 4, 0, 64];
    ip6.extend_from_slice(&[7; 32]);
    ip6.extend_from_slice(&[17, 0, 0, 0]);
    let (k, l) = parse(&frame(&[&[0x86, 0xdd][..], &ip6].concat()));
    assert_eq!(
        (l.error, k.ipv6_src, k.nw_ttl, k.nw_proto),
        (Some(ParseError::Ipv6ExtHeader), [7; 16], 0, 0)
    );

    let mut ip6 = vec![0x60, 0, 0, 0, 0, 12, 58, 64];
    ip6.extend_from_slice(&[0; 32]);
    ip6.extend_from_slice(&[135, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
    let (k, l) = parse(&frame(&[&[0x86, 0xdd][..], &ip6].concat()));
    assert_eq!(
        (l.error, k.tp_src, k.nd_target),
        (Some(ParseError::NdInvalid), 135, [0; 16])
    );
}

#[test]
fn llc_snap_and_8023() {
    let snap = frame(&[0, 20, 0xaa, 0xaa, 3, 0, 0, 0, 0x08, 0x06]);
    let (k, l) = parse(&snap);
    assert_eq!(
        (k.eth_type, l.error),
        (0x0806, Some(ParseError::ArpInvalid))
    );
    let (k, l) = parse(&frame(&[0, 20, 0x42, 0x42, 3, 0, 0, 0, 0, 0]));
    assert_eq!((k.eth_type, l.error), (ETH_TYPE_NONE, None));
}

#[test]
fn error_indexes_are_dense() {
    use ParseError::*;
    let all = [
        EthTruncated,
        VlanTruncated,
        ArpInvalid,
        Ipv4Invalid,
        Ipv6Invalid,
        Ipv6ExtHeader,
        L4Truncated,
        NdInvalid,
    ];
    assert_eq!(all.len(), ParseError::COUNT);
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e.index(), i);
        assert!(!e.to_string().is_empty());
    }
}

/// Offsets are inside the frame and the header kinds fit the key.
fn check_invariants(f: &[u8], k: &FlowKey, l: &Layers) {
    if l.l3_kind != L3::None {
        assert!((l.l3 as usize) < f.len());
    }
    if l.l4_kind != L4::None {
        assert!(l.l3_kind == L3::Ipv4 || l.l3_kind == L3::Ipv6);
        assert!(l.l4 > l.l3 && (l.l4 as usize) < f.len());
        assert_eq!(k.nw_frag & FRAG_LATER, 0);
    }
    assert_eq!(
        (k._pad0, k._pad1, k._pad2, k._pad3, k.recirc_id),
        (0, 0, 0, 0, 0)
    );
}

#[derive(Debug, Clone)]
enum L4Gen {
    Tcp(u16, u16),
    Udp(u16, u16),
    Icmp,
}

/// A well-formed frame built by etherparse, with the values it encodes.
#[derive(Debug, Clone)]
struct Gen {
    frame: Vec<u8>,
    vid: Option<u16>,
    v6: bool,
    src: [u8; 16],
    dst: [u8; 16],
    ttl: u8,
    l4: L4Gen,
    payload_len: usize,
}

fn arb_frame() -> impl Strategy<Value = Gen> {
    let l4 = prop_oneof![
        (any::<u16>(), any::<u16>()).prop_map(|(a, b)| L4Gen::Tcp(a, b)),
        (any::<u16>(), any::<u16>()).prop_map(|(a, b)| L4Gen::Udp(a, b)),
        Just(L4Gen::Icmp),
    ];
    (
        proptest::option::of(0u16..4095),
        any::<bool>(),
        any::<[u8; 16]>(),
        any::<[u8; 16]>(),
        any::<u8>(),
        l4,
        proptest::collection::vec(any::<u8>(), 0..40),
    )
        .prop_map(|(vid, v6, src, dst, ttl, l4, payload)| {
            let eth = PacketBuilder::ethernet2([1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]);
            let mut out = Vec::new();
            macro_rules! finish {
                ($b:expr) => {{
                    let b = $b;
                    match &l4 {
                        L4Gen::Tcp(s, d) => {
                            b.tcp(*s, *d, 1, 100).write(&mut out, &payload).unwrap()
                        }
                        L4Gen::Udp(s, d) => b.udp(*s, *d).write(&mut out, &payload).unwrap(),
                        L4Gen::Icmp if v6 => b
                            .icmpv6_echo_request(1, 2)
                            .write(&mut out, &payload)
                            .unwrap(),
                        L4Gen::Icmp => b
                            .icmpv4_echo_request(1, 2)
                            .write(&mut out, &payload)
                            .unwrap(),
                    }
                }};
            }
            let s4: [u8; 4] = src[..4].try_into().unwrap();
            let d4: [u8; 4] = dst[..4].try_into().unwrap();
            match (vid, v6) {
                (Some(v), true) => {
                    finish!(eth.single_vlan(v.try_into().unwrap()).ipv6(src, dst, ttl))
                }
                (Some(v), false) => {
                    finish!(eth.single_vlan(v.try_into().unwrap()).ipv4(s4, d4, ttl))
                }
                (None, true) => finish!(eth.ipv6(src, dst, ttl)),
                (None, false) => finish!(eth.ipv4(s4, d4, ttl)),
            }
            Gen {
                frame: out,
                vid,
                v6,
                src,
                dst,
                ttl,
                l4,
                payload_len: payload.len(),
            }
        })
}

proptest! {
    #[test]
    fn random_bytes_never_panic(f in proptest::collection::vec(any::<u8>(), 0..200)) {
        let (k, l) = parse(&f);
        check_invariants(&f, &k, &l);
    }

    /// Random Ethernet headers in front of random bytes, so the parser gets
    /// past L2 far more often than with uniform random bytes.
    #[test]
    fn random_l3_never_panics(
        ty in prop_oneof![Just(0x0800u16), Just(0x86dd), Just(0x0806), Just(0x8100), Just(0x88a8), any::<u16>()],
        body in proptest::collection::vec(any::<u8>(), 0..120),
    ) {
        let f = frame(&[&ty.to_be_bytes()[..], &body].concat());
        let (k, l) = parse(&f);
        check_invariants(&f, &k, &l);
    }

    /// Truncations and byte mutations of well-formed frames never panic.
    #[test]
    fn mutated_frames_never_panic(
        g in arb_frame(),
        cut in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
    ) {
        let mut f = g.frame;
        for (i, b) in edits {
            let at = i.index(f.len());
            f[at] = b;
        }
        let f = &f[..cut.index(f.len() + 1)];
        let (k, l) = parse(f);
        check_invariants(f, &k, &l);
    }

    /// On well-formed frames our key agrees with what etherparse encoded.
    #[test]
    fn agrees_with_etherparse(g in arb_frame()) {
        let Gen { frame: f, vid, v6, src, dst, ttl, l4, payload_len } = g;
        let (k, l) = parse(&f);
        prop_assert_eq!(l.error, None);
        check_invariants(&f, &k, &l);
        prop_assert_eq!(k.eth_src, [1, 2, 3, 4, 5, 6]);
        prop_assert_eq!(k.eth_dst, [7, 8, 9, 10, 11, 12]);
        prop_assert_eq!(k.vlan_tci, vid.map_or(0, |v| v | 0x1000));
        prop_assert_eq!(k.nw_ttl, ttl);
        if v6 {
            prop_assert_eq!((k.eth_type, k.ipv6_src, k.ipv6_dst), (0x86dd, src, dst));
        } else {
            let a = |b: &[u8; 16]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            prop_assert_eq!((k.eth_type, k.nw_src, k.nw_dst), (0x0800, a(&src), a(&dst)));
        }
        let hdr = f.len() - payload_len;
        match l4 {
            L4Gen::Tcp(s, d) => {
                prop_assert_eq!((k.nw_proto, k.tp_src, k.tp_dst, l.l4_kind), (IpNumber::TCP.0, s, d, L4::Tcp));
                prop_assert_eq!(l.l4 as usize, hdr - 20);
            }
            L4Gen::Udp(s, d) => {
                prop_assert_eq!((k.nw_proto, k.tp_src, k.tp_dst, l.l4_kind), (IpNumber::UDP.0, s, d, L4::Udp));
                prop_assert_eq!(l.l4 as usize, hdr - 8);
            }
            L4Gen::Icmp if v6 => prop_assert_eq!((k.nw_proto, k.tp_src, k.tp_dst), (58, 128, 0)),
            L4Gen::Icmp => prop_assert_eq!((k.nw_proto, k.tp_src, k.tp_dst), (1, 8, 0)),
        }
    }
}
