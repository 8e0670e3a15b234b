//! Tests of action execution and encoding. The main property runs random
//! action lists on random frames and compares the result byte for byte with
//! a frame built from scratch by `etherparse` (which computes every checksum
//! itself) from a model of what the actions should have done.

use super::*;
use crate::key::FlowKey;
use crate::parse::extract;
use etherparse::{
    IpDscp, IpEcn, IpHeaders, IpNumber, Ipv4Header, Ipv6FlowLabel, Ipv6Header, PacketBuilder,
};
use proptest::prelude::*;

/// Records what the executor reports.
#[derive(Default)]
struct Sink {
    out: Vec<(u32, Vec<u8>, bool)>,
    up: Vec<(u64, Vec<u8>, bool)>,
}

impl ActionSink for Sink {
    fn output(&mut self, port: u32, pkt: &[u8], last: bool) {
        self.out.push((port, pkt.to_vec(), last));
    }
    fn userspace(&mut self, cookie: u64, pkt: &[u8], last: bool) {
        self.up.push((cookie, pkt.to_vec(), last));
    }
}

#[derive(Clone, Debug)]
enum Ip {
    V4 {
        src: [u8; 4],
        dst: [u8; 4],
        tos: u8,
        ttl: u8,
    },
    V6 {
        src: [u8; 16],
        dst: [u8; 16],
        tclass: u8,
        label: u32,
        hlim: u8,
    },
}

#[derive(Clone, Copy, Debug)]
enum Tp {
    Tcp(u16, u16),
    Udp(u16, u16),
    Icmp,
}

/// What a frame holds; `build` turns it into bytes.
#[derive(Clone, Debug)]
struct Spec {
    dst: [u8; 6],
    src: [u8; 6],
    /// (TPID, TCI), outermost first.
    tags: Vec<(u16, u16)>,
    ip: Ip,
    tp: Tp,
    payload: Vec<u8>,
    /// UDP sent without a checksum (field zero).
    udp_no_csum: bool,
}

fn build(s: &Spec) -> Vec<u8> {
    let eth = PacketBuilder::ethernet2(s.src, s.dst);
    let proto = match s.tp {
        Tp::Tcp(..) => IpNumber::TCP,
        Tp::Udp(..) => IpNumber::UDP,
        Tp::Icmp if matches!(s.ip, Ip::V6 { .. }) => IpNumber::IPV6_ICMP,
        Tp::Icmp => IpNumber::ICMP,
    };
    let ip = match s.ip {
        Ip::V4 { src, dst, tos, ttl } => {
            let mut h = Ipv4Header::new(0, ttl, proto, src, dst).unwrap();
            h.dscp = IpDscp::try_new(tos >> 2).unwrap();
            h.ecn = IpEcn::try_new(tos & 3).unwrap();
            IpHeaders::Ipv4(h, Default::default())
        }
        Ip::V6 {
            src,
            dst,
            tclass,
            label,
            hlim,
        } => IpHeaders::Ipv6(
            Ipv6Header {
                traffic_class: tclass,
                flow_label: Ipv6FlowLabel::try_new(label).unwrap(),
                payload_length: 0,
                next_header: proto,
                hop_limit: hlim,
                source: src,
                destination: dst,
            },
            Default::default(),
        ),
    };
    let b = eth.ip(ip);
    let mut f = Vec::new();
    match s.tp {
        Tp::Tcp(a, d) => b.tcp(a, d, 7, 1000).write(&mut f, &s.payload).unwrap(),
        Tp::Udp(a, d) => b.udp(a, d).write(&mut f, &s.payload).unwrap(),
        Tp::Icmp if matches!(s.ip, Ip::V6 { .. }) => b
            .icmpv6_echo_request(1, 2)
            .write(&mut f, &s.payload)
            .unwrap(),
        Tp::Icmp => b
            .icmpv4_echo_request(1, 2)
            .write(&mut f, &s.payload)
            .unwrap(),
    }
    if s.udp_no_csum && matches!(s.tp, Tp::Udp(..)) {
        let l4 = 14
            + if matches!(s.ip, Ip::V4 { .. }) {
                20
            } else {
                40
            };
        f[l4 + 6..l4 + 8].copy_from_slice(&[0, 0]);
    }
    let tags: Vec<u8> = s
        .tags
        .iter()
        .flat_map(|(p, t)| [p.to_be_bytes(), t.to_be_bytes()].concat())
        .collect();
    [&f[..12], &tags, &f[12..]].concat()
}

fn merge(old: &mut [u8], s: &SetField) {
    for (o, (v, m)) in old.iter_mut().zip(s.value().iter().zip(s.mask())) {
        *o = (*o & !m) | v;
    }
}

/// What `Set(s)` does to the frame `spec` describes; false if it does not
/// apply (the executor must then skip it).
fn model_set(spec: &mut Spec, s: &SetField) -> bool {
    let tp = &mut spec.tp;
    match (s.field(), &mut spec.ip) {
        (Field::EthSrc, _) => merge(&mut spec.src, s),
        (Field::EthDst, _) => merge(&mut spec.dst, s),
        (Field::Ipv4Src, Ip::V4 { src, .. }) => merge(src, s),
        (Field::Ipv4Dst, Ip::V4 { dst, .. }) => merge(dst, s),
        (Field::Ipv4Tos, Ip::V4 { tos, .. }) => merge(std::slice::from_mut(tos), s),
        (Field::Ipv4Ttl, Ip::V4 { ttl, .. }) => merge(std::slice::from_mut(ttl), s),
        (Field::Ipv6Src, Ip::V6 { src, .. }) => merge(src, s),
        (Field::Ipv6Dst, Ip::V6 { dst, .. }) => merge(dst, s),
        (Field::Ipv6Tclass, Ip::V6 { tclass, .. }) => merge(std::slice::from_mut(tclass), s),
        (Field::Ipv6Hlimit, Ip::V6 { hlim, .. }) => merge(std::slice::from_mut(hlim), s),
        (Field::Ipv6Label, Ip::V6 { label, .. }) => {
            let mut b = label.to_be_bytes();
            merge(&mut b, s);
            *label = u32::from_be_bytes(b);
        }
        (Field::TpSrc | Field::TpDst, _) => {
            let (Tp::Tcp(a, d) | Tp::Udp(a, d)) = tp else {
                return false;
            };
            let port = if s.field() == Field::TpSrc { a } else { d };
            let mut b = port.to_be_bytes();
            merge(&mut b, s);
            *port = u16::from_be_bytes(b);
        }
        _ => return false,
    }
    true
}

/// Model of a whole list that ends in one output; returns the skip count.
fn model(spec: &mut Spec, actions: &[Action]) -> u32 {
    let mut skipped = 0;
    for a in actions {
        let ok = match a {
            Action::Set(s) => model_set(spec, s),
            Action::PushVlan { tpid, tci } => {
                spec.tags.insert(0, (*tpid, *tci));
                true
            }
            Action::PopVlan => {
                !spec.tags.is_empty() && {
                    spec.tags.remove(0);
                    true
                }
            }
            _ => true,
        };
        skipped += u32::from(!ok);
    }
    skipped
}

fn arb_set() -> impl Strategy<Value = SetField> {
    (
        0..Field::ALL.len(),
        any::<[u8; 16]>(),
        any::<[u8; 16]>(),
        any::<bool>(),
    )
        .prop_map(|(i, v, m, full)| {
            let f = Field::ALL[i];
            let n = f.width();
            let mut m = if full { [0xff; 16] } else { m };
            if f == Field::Ipv6Label {
                m[0] = 0;
                m[1] &= 0x0f;
            }
            let v: Vec<u8> = v[..n].iter().zip(&m).map(|(v, m)| v & m).collect();
            SetField::masked(f, &v, &m[..n]).unwrap()
        })
}

fn arb_action() -> impl Strategy<Value = Action> {
    prop_oneof![
        6 => arb_set().prop_map(Action::Set),
        1 => (prop_oneof![Just(0x8100u16), Just(0x88a8)], any::<u16>()).prop_map(|(tpid, tci)| Action::PushVlan { tpid, tci }),
        1 => Just(Action::PopVlan),
    ]
}

fn arb_spec() -> impl Strategy<Value = Spec> {
    let ip = prop_oneof![
        (any::<[u8; 4]>(), any::<[u8; 4]>(), any::<u8>(), any::<u8>())
            .prop_map(|(src, dst, tos, ttl)| Ip::V4 { src, dst, tos, ttl }),
        (
            any::<[u8; 16]>(),
            any::<[u8; 16]>(),
            any::<u8>(),
            0u32..0x10_0000,
            any::<u8>()
        )
            .prop_map(|(src, dst, tclass, label, hlim)| Ip::V6 {
                src,
                dst,
                tclass,
                label,
                hlim
            }),
    ];
    let tp = prop_oneof![
        (any::<u16>(), any::<u16>()).prop_map(|(a, b)| Tp::Tcp(a, b)),
        (any::<u16>(), any::<u16>()).prop_map(|(a, b)| Tp::Udp(a, b)),
        Just(Tp::Icmp),
    ];
    let tag = (prop_oneof![Just(0x8100u16), Just(0x88a8)], any::<u16>());
    (
        any::<[u8; 6]>(),
        any::<[u8; 6]>(),
        proptest::collection::vec(tag, 0..3),
        ip,
        tp,
        proptest::collection::vec(any::<u8>(), 0..64),
        any::<bool>(),
    )
        .prop_map(|(dst, src, tags, ip, tp, payload, udp_no_csum)| Spec {
            dst,
            src,
            tags,
            ip,
            tp,
            payload,
            udp_no_csum,
        })
}

/// Parses `frame`, runs `actions` in a buffer with `headroom` and room for
/// every push, and returns (skipped, sink).
fn run(frame: &[u8], actions: &[Action], headroom: usize) -> (u32, Sink, PacketBuf<Vec<u8>>) {
    let mut key = FlowKey::default();
    let mut layers = extract(frame, 1, &mut key);
    let room = 4 * actions.len();
    let mut buf =
        PacketBuf::from_frame(vec![0u8; headroom + frame.len() + room], headroom, frame).unwrap();
    let mut sink = Sink::default();
    let skipped = execute(actions, &mut buf, &mut layers, &mut sink);
    (skipped, sink, buf)
}

/// Verifies the IPv4 header and TCP/UDP checksums of a frame from scratch
/// with our own arithmetic (a second check besides etherparse's bytes).
fn checksums_ok(frame: &[u8]) -> bool {
    let mut key = FlowKey::default();
    let l = extract(frame, 0, &mut key);
    let (l3, l4) = (l.l3 as usize, l.l4 as usize);
    let pseudo = match l.l3_kind {
        L3::Ipv4 => {
            let ihl = (frame[l3] & 0xf) as usize * 4;
            if checksum::fold(checksum::sum(&frame[l3..l3 + ihl], 0)) != 0xffff {
                return false;
            }
            let tot = u16::from_be_bytes([frame[l3 + 2], frame[l3 + 3]]) as usize;
            let s = |o: usize| frame[l3 + o..l3 + o + 4].try_into().unwrap();
            checksum::pseudo_ipv4(s(12), s(16), key.nw_proto, (tot - ihl) as u16)
        }
        L3::Ipv6 => {
            let plen = u16::from_be_bytes([frame[l3 + 4], frame[l3 + 5]]) as u32;
            let s = |o: usize| frame[l3 + o..l3 + o + 16].try_into().unwrap();
            checksum::pseudo_ipv6(s(8), s(24), key.nw_proto, plen)
        }
        _ => return true,
    };
    let end = if l.l3_kind == L3::Ipv4 {
        l3 + u16::from_be_bytes([frame[l3 + 2], frame[l3 + 3]]) as usize
    } else {
        l3 + 40 + u16::from_be_bytes([frame[l3 + 4], frame[l3 + 5]]) as usize
    };
    match l.l4_kind {
        L4::Udp if frame[l4 + 6..l4 + 8] == [0, 0] => true,
        L4::Tcp | L4::Udp | L4::Icmpv6 => {
            checksum::fold(checksum::sum(&frame[l4..end], pseudo)) == 0xffff
        }
        _ => true,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random action lists on random frames: byte-for-byte equal to the
    /// frame etherparse builds from the modelled result.
    #[test]
    fn actions_match_independently_built_frames(
        spec in arb_spec(),
        actions in proptest::collection::vec(arb_action(), 1..6),
        headroom in 0usize..=8,
    ) {
        let input = build(&spec);
        let mut want = spec.clone();
        let mut list = actions.clone();
        list.push(Action::Output(5));
        let want_skipped = model(&mut want, &actions);
        let (skipped, sink, _) = run(&input, &list, headroom);
        prop_assert_eq!(skipped, want_skipped);
        prop_assert_eq!(sink.out.len(), 1);
        let (port, got, last) = &sink.out[0];
        prop_assert_eq!((*port, *last), (5, true));
        let expected = build(&want);
        prop_assert!(got == &expected, "actions {:?}\n got  {:02x?}\n want {:02x?}", actions, got, expected);
        prop_assert!(checksums_ok(got));
    }

    #[test]
    fn encoding_round_trips(actions in proptest::collection::vec(prop_oneof![
        arb_action(),
        any::<u32>().prop_map(Action::Output),
        any::<u64>().prop_map(Action::Userspace),
        any::<u32>().prop_map(Action::Truncate),
        (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(id, src, dst)| Action::SetTunnel(Tunnel { id, src, dst })),
        Just(Action::Drop),
    ], 0..12)) {
        prop_assert_eq!(decode(&encode(&actions)), Ok(actions));
    }

    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(actions) = decode(&bytes) {
            // What decodes re-encodes to the same bytes: one encoding each.
            prop_assert_eq!(encode(&actions), bytes);
        }
    }
}

fn udp4() -> Spec {
    Spec {
        dst: [2, 0, 0, 0, 0, 1],
        src: [2, 0, 0, 0, 0, 2],
        tags: vec![],
        ip: Ip::V4 {
            src: [10, 0, 0, 1],
            dst: [10, 0, 0, 2],
            tos: 0,
            ttl: 64,
        },
        tp: Tp::Udp(1000, 2000),
        payload: b"hello".to_vec(),
        udp_no_csum: false,
    }
}

fn set(f: Field, v: &[u8]) -> Action {
    Action::Set(SetField::new(f, v).unwrap())
}

/// Every destination port value: the incremental UDP checksum always
/// verifies from scratch and is never sent as zero.
#[test]
fn udp_checksum_every_port_value() {
    let frame = build(&udp4());
    let mut key = FlowKey::default();
    let layers0 = extract(&frame, 0, &mut key);
    let l4 = layers0.l4 as usize;
    let mut buf = PacketBuf::from_frame(vec![0u8; frame.len()], 0, &frame).unwrap();
    let mut sink = Sink::default();
    let mut saw_ffff = false;
    for port in 0..=u16::MAX {
        let mut layers = layers0;
        assert_eq!(
            execute(
                &[set(Field::TpDst, &port.to_be_bytes())],
                &mut buf,
                &mut layers,
                &mut sink
            ),
            0
        );
        let d = buf.data();
        let c = u16::from_be_bytes([d[l4 + 6], d[l4 + 7]]);
        assert_ne!(c, 0, "port {port}");
        saw_ffff |= c == 0xffff;
        assert!(checksums_ok(d), "port {port}");
    }
    assert!(
        saw_ffff,
        "some port value must compute to zero and be sent as 0xffff"
    );
    assert!(sink.out.is_empty());
}

#[test]
fn udp_zero_checksum_stays_zero() {
    let spec = Spec {
        udp_no_csum: true,
        ..udp4()
    };
    let (_, sink, _) = run(
        &build(&spec),
        &[set(Field::Ipv4Dst, &[1, 2, 3, 4]), Action::Output(1)],
        0,
    );
    let mut want = spec.clone();
    want.ip = Ip::V4 {
        src: [10, 0, 0, 1],
        dst: [1, 2, 3, 4],
        tos: 0,
        ttl: 64,
    };
    assert_eq!(sink.out[0].1, build(&want));
    assert_eq!(sink.out[0].1[14 + 20 + 6..14 + 20 + 8], [0, 0]);
}

#[test]
fn outputs_truncate_userspace_and_drop() {
    let frame = build(&udp4());
    let n = frame.len();
    let list = [
        Action::Truncate(20),
        Action::Output(1),
        Action::Output(2),
        Action::Userspace(0xdead_beef_0000_0001),
        Action::Truncate(30),
        Action::Output(3),
        Action::Drop,
        Action::Output(4),
    ];
    let (skipped, sink, buf) = run(&frame, &list, 0);
    assert_eq!(skipped, 0);
    let outs: Vec<_> = sink
        .out
        .iter()
        .map(|(p, d, last)| (*p, d.len(), *last))
        .collect();
    assert_eq!(outs, [(1, 20, false), (2, n, false), (3, 30, false)]);
    assert_eq!(sink.up, [(0xdead_beef_0000_0001, frame.clone(), false)]);
    assert_eq!(sink.out[0].1, frame[..20]);
    // Not a final output: the packet itself keeps its length.
    assert_eq!(buf.len(), n);

    // A final truncated output leaves the buffer cut, ready to be moved.
    let (_, sink, buf) = run(&frame, &[Action::Truncate(16), Action::Userspace(9)], 0);
    assert_eq!(sink.up, [(9, frame[..16].to_vec(), true)]);
    assert_eq!(buf.data(), &frame[..16]);
}

#[test]
fn skips_what_does_not_apply() {
    let arp = [&[0xff; 6][..], &[2; 6], &[0x08, 0x06], &[0; 28]].concat();
    let list = [
        set(Field::Ipv4Dst, &[1, 1, 1, 1]),
        set(Field::Ipv6Hlimit, &[1]),
        set(Field::TpSrc, &[0, 1]),
        Action::PopVlan,
        set(Field::EthDst, &[1, 2, 3, 4, 5, 6]),
    ];
    let (skipped, _, buf) = run(&arp, &list, 0);
    assert_eq!(skipped, 4);
    assert_eq!(buf.data()[..6], [1, 2, 3, 4, 5, 6]);
    assert_eq!(buf.data()[6..], arp[6..]);

    // No headroom and no tailroom: the push is skipped, the frame intact.
    let frame = build(&udp4());
    let mut key = FlowKey::default();
    let mut layers = extract(&frame, 0, &mut key);
    let mut buf = PacketBuf::from_frame(frame.clone(), 0, &frame).unwrap();
    let n = execute(
        &[Action::PushVlan {
            tpid: 0x8100,
            tci: 5,
        }],
        &mut buf,
        &mut layers,
        &mut Sink::default(),
    );
    assert_eq!((n, buf.data()), (1, &frame[..]));

    // Layers that do not fit the frame make a set a no-op, not a panic.
    let mut bogus = Layers {
        l3: 4000,
        l3_kind: L3::Ipv4,
        l4: 4020,
        l4_kind: L4::Tcp,
        error: None,
    };
    let n = execute(
        &[set(Field::Ipv4Ttl, &[1]), set(Field::TpDst, &[0, 1])],
        &mut buf,
        &mut bogus,
        &mut Sink::default(),
    );
    assert_eq!((n, buf.data()), (2, &frame[..]));
}

#[test]
fn push_and_pop_keep_layers_in_step() {
    let spec = udp4();
    let frame = build(&spec);
    let list = [
        Action::PushVlan {
            tpid: 0x8100,
            tci: 0x2005,
        },
        Action::PushVlan {
            tpid: 0x88a8,
            tci: 0x0007,
        },
        set(Field::TpSrc, &[0x12, 0x34]),
        Action::PopVlan,
        set(Field::Ipv4Ttl, &[9]),
        Action::Output(1),
    ];
    let (skipped, sink, buf) = run(&frame, &list, crate::actions::HEADROOM);
    assert_eq!(skipped, 0);
    let want = Spec {
        tags: vec![(0x8100, 0x2005)],
        ip: Ip::V4 {
            src: [10, 0, 0, 1],
            dst: [10, 0, 0, 2],
            tos: 0,
            ttl: 9,
        },
        tp: Tp::Udp(0x1234, 2000),
        ..spec
    };
    assert_eq!(sink.out[0].1, build(&want));
    assert_eq!(buf.headroom(), crate::actions::HEADROOM - 4);
}

/// The encoding of a sample list, byte by byte: the reference vector for
/// the TypeScript side.
#[test]
fn golden_encoding() {
    let list = [
        Action::PushVlan {
            tpid: 0x8100,
            tci: 0x2064,
        },
        Action::Set(SetField::masked(Field::Ipv4Dst, &[10, 0, 0, 0], &[255, 255, 0, 0]).unwrap()),
        set(Field::TpDst, &[0x01, 0xbb]),
        Action::Truncate(128),
        Action::Output(3),
        Action::Userspace(0x0102_0304_0506_0708),
        Action::PopVlan,
        Action::SetTunnel(Tunnel {
            id: 42,
            src: 0x0a00_0001,
            dst: 0x0a00_0002,
        }),
        Action::Drop,
    ];
    #[rustfmt::skip]
    let bytes = [
        5, 4, 0x81, 0x00, 0x20, 0x64,
        7, 9, 4, 10, 0, 0, 0, 255, 255, 0, 0,
        7, 5, 13, 0x01, 0xbb, 0xff, 0xff,
        4, 4, 0, 0, 0, 128,
        1, 4, 0, 0, 0, 3,
        3, 8, 1, 2, 3, 4, 5, 6, 7, 8,
        6, 0,
        8, 12, 0, 0, 0, 42, 10, 0, 0, 1, 10, 0, 0, 2,
        2, 0,
    ];
    assert_eq!(encode(&list), bytes);
    assert_eq!(decode(&bytes).unwrap(), list);
    assert_eq!(decode(&[]).unwrap(), []);
}

#[test]
fn decode_errors_name_the_offset() {
    let out = [1, 4, 0, 0, 0, 1];
    let cat = |tail: &[u8]| [&out[..], tail].concat();
    let cases: [(Vec<u8>, ActionError, &str); 8] = [
        (
            cat(&[1]),
            ActionError::Truncated { offset: 6 },
            "ACTION_TRUNCATED",
        ),
        (
            cat(&[1, 4, 0]),
            ActionError::Truncated { offset: 6 },
            "ACTION_TRUNCATED",
        ),
        (
            cat(&[99, 0]),
            ActionError::UnknownKind {
                offset: 6,
                kind: 99,
            },
            "ACTION_UNKNOWN_KIND",
        ),
        (
            cat(&[2, 1, 0]),
            ActionError::BadLength {
                offset: 6,
                kind: 2,
                len: 1,
            },
            "ACTION_BAD_LENGTH",
        ),
        (
            cat(&[7, 3, 12, 0, 1]),
            ActionError::BadLength {
                offset: 6,
                kind: 7,
                len: 3,
            },
            "ACTION_BAD_LENGTH",
        ),
        (
            cat(&[7, 3, 14, 0, 1]),
            ActionError::UnknownField {
                offset: 6,
                field: 14,
            },
            "ACTION_UNKNOWN_FIELD",
        ),
        (
            cat(&[7, 5, 12, 0, 3, 0, 1]),
            ActionError::BadValue {
                offset: 6,
                field: Field::TpSrc,
            },
            "ACTION_BAD_VALUE",
        ),
        (
            cat(&[5, 4, 0x86, 0xdd, 0, 1]),
            ActionError::BadTpid {
                offset: 6,
                tpid: 0x86dd,
            },
            "ACTION_BAD_TPID",
        ),
    ];
    for (bytes, err, code) in cases {
        let e = decode(&bytes).unwrap_err();
        assert_eq!(e, err);
        assert_eq!(e.code(), code);
        assert!(e.to_string().contains("byte 6"), "{e}");
    }
    // A label mask bit above the 20-bit label is refused.
    assert!(SetField::masked(Field::Ipv6Label, &[0, 0, 0, 0], &[0, 0x10, 0, 0]).is_err());
    assert!(SetField::new(Field::Ipv6Label, &[0, 0x0f, 0xff, 0xff]).is_ok());
    assert!(SetField::new(Field::EthSrc, &[1, 2]).is_err());
}
