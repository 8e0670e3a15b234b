//! Seeded random and garbled Ethernet frames, and a pcap writer, for the
//! oracle tests against `ovs-ofctl parse-pcap` (`tests/pcap_oracle.rs`, and
//! through `examples/pcap_corpus.rs` the `nvs-ofctl parse-pcap` end-to-end
//! test). The same seed gives the same frames on every machine.
//!
//! Frames are built layer by layer with lengths mostly right, so the parser
//! is driven deep into each header: Ethernet with 0–3 VLAN tags (0x8100 and
//! 0x88a8 in any order), 802.3 with and without LLC/SNAP, IPv4 with options
//! and fragments, IPv6 with extension header chains and fragments, ARP/RARP,
//! ICMP, IGMP, ICMPv6 with ND and its options, TCP/UDP/SCTP; each layer is
//! sometimes cut short or given a wrong length field, whole frames are
//! sometimes cut or have bytes flipped, and some frames are random bytes.
//! Some frames are also emitted truncated at every length.
//!
//! MPLS (0x8847/0x8848) and NSH (0x894f) EtherTypes are never produced:
//! nvs's flow key has no fields for them (see the oracle's module doc).

/// splitmix64: small, seedable, and the same everywhere.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `pct`%.
    fn chance(&mut self, pct: usize) -> bool {
        self.below(100) < pct
    }

    fn u8(&mut self) -> u8 {
        self.next() as u8
    }

    fn u16(&mut self) -> u16 {
        self.next() as u16
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.u8()).collect()
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }
}

const TPIDS: [u16; 2] = [0x8100, 0x88a8];
/// EtherTypes whose payload OVS parses into fields nvs's key lacks.
const UNMODELLED: [u16; 3] = [0x8847, 0x8848, 0x894f];

/// A random EtherType (or 802.3 length) other than the unmodelled ones.
fn ether_type(rng: &mut Rng) -> u16 {
    let t = rng.u16();
    if UNMODELLED.contains(&t) {
        0x88cc
    } else {
        t
    }
}

/// One random frame.
pub fn frame(rng: &mut Rng) -> Vec<u8> {
    if rng.chance(8) {
        let n = 1 + rng.below(80);
        let mut f = rng.bytes(n);
        avoid_unmodelled(&mut f);
        return f;
    }
    let mut f = ethernet(rng);
    if rng.chance(10) {
        let n = 1 + rng.below(f.len());
        f.truncate(n);
    }
    if rng.chance(10) {
        for _ in 0..1 + rng.below(3) {
            let i = rng.below(f.len());
            f[i] = rng.u8();
        }
        avoid_unmodelled(&mut f);
    }
    if rng.chance(15) && f.len() < 60 {
        f.resize(60, 0); // Ethernet padding, as a NIC hands a short frame up.
    }
    f
}

/// Rewrites any EtherType position (after 0–3 tags) holding MPLS or NSH.
fn avoid_unmodelled(f: &mut [u8]) {
    let mut off = 12;
    while off + 2 <= f.len() {
        let t = u16::from_be_bytes([f[off], f[off + 1]]);
        if UNMODELLED.contains(&t) {
            f[off] = 0x88;
            f[off + 1] = 0xcc;
        }
        if !TPIDS.contains(&t) {
            break;
        }
        off += 4;
    }
}

fn ethernet(rng: &mut Rng) -> Vec<u8> {
    let mut f = rng.bytes(12);
    for _ in 0..rng.pick(&[0, 0, 0, 1, 1, 2, 2, 3]) {
        f.extend_from_slice(&rng.pick(&TPIDS).to_be_bytes());
        f.extend_from_slice(&rng.u16().to_be_bytes());
    }
    let (ty, payload) = match rng.below(12) {
        0..=3 => (0x0800, ipv4(rng)),
        4..=7 => (0x86dd, ipv6(rng)),
        8 => (rng.pick(&[0x0806, 0x8035]), arp(rng)),
        9 => {
            let n = rng.below(60);
            (ether_type(rng), rng.bytes(n))
        }
        _ => return [f, llc(rng)].concat(),
    };
    f.extend_from_slice(&ty.to_be_bytes());
    [f, payload].concat()
}

/// An 802.3 length field and what follows: LLC/SNAP (OUI 0 or not) or plain LLC.
fn llc(rng: &mut Rng) -> Vec<u8> {
    let (oui, ty, payload) = match rng.below(4) {
        0 => ([0, 0, 0], 0x0800, ipv4(rng)),
        1 => ([0, 0, 0], 0x0806, arp(rng)),
        2 => ([0, 0, 0], ether_type(rng), rng.bytes(20)),
        _ => ([0, 0, rng.u8()], 0x0800, ipv4(rng)),
    };
    let mut body = if rng.chance(80) {
        let mut s = vec![0xaa, 0xaa, 0x03];
        s.extend_from_slice(&oui);
        s.extend_from_slice(&ty.to_be_bytes());
        [s, payload].concat()
    } else {
        let n = rng.below(40);
        rng.bytes(n)
    };
    let len = if rng.chance(80) {
        body.len() as u16
    } else {
        rng.u16() % 0x600
    };
    let n = rng.below(body.len() + 1);
    if rng.chance(10) {
        body.truncate(n);
    }
    [len.to_be_bytes().to_vec(), body].concat()
}

fn arp(rng: &mut Rng) -> Vec<u8> {
    let mut a = Vec::new();
    a.extend_from_slice(&(if rng.chance(90) { 1 } else { rng.u16() }).to_be_bytes());
    a.extend_from_slice(&(if rng.chance(90) { 0x0800 } else { rng.u16() }).to_be_bytes());
    a.push(if rng.chance(95) { 6 } else { rng.u8() });
    a.push(if rng.chance(95) { 4 } else { rng.u8() });
    let op = rng.pick(&[1, 2, 3, 4, 0x100, 0x1ff]);
    let op = if rng.chance(20) { rng.u16() } else { op };
    a.extend_from_slice(&op.to_be_bytes());
    a.extend(rng.bytes(20));
    cut(rng, a)
}

/// Sometimes cuts a header short (the caller's lengths then follow the cut).
fn cut(rng: &mut Rng, mut p: Vec<u8>) -> Vec<u8> {
    if rng.chance(12) {
        let n = rng.below(p.len() + 1);
        p.truncate(n);
    }
    p
}

fn ipv4(rng: &mut Rng) -> Vec<u8> {
    let proto = rng.pick(&[6, 6, 17, 17, 132, 1, 1, 2, 47, 58, 0]);
    let proto = if rng.chance(5) { rng.u8() } else { proto };
    let frag: u16 = match rng.below(8) {
        0 => 0,
        1 => 0x2000,                                  // first fragment
        2 => 0x2000 | (1 + rng.below(0x1fff)) as u16, // middle
        3 => (1 + rng.below(0x1fff)) as u16,          // last
        4 => rng.u16(),
        _ => 0x4000, // don't fragment
    };
    let l4 = l4(rng, proto, false);
    let opts = if rng.chance(25) { rng.below(11) * 4 } else { 0 };
    let hl = 20 + opts;
    let ver_ihl = if rng.chance(4) {
        rng.u8()
    } else {
        0x40 | (hl / 4) as u8
    };
    let tot = if rng.chance(5) {
        rng.u16()
    } else {
        (hl + l4.len()) as u16
    };
    let mut h = vec![ver_ihl, rng.u8()];
    h.extend_from_slice(&tot.to_be_bytes());
    h.extend_from_slice(&rng.u16().to_be_bytes());
    h.extend_from_slice(&frag.to_be_bytes());
    h.extend_from_slice(&[rng.u8(), proto, rng.u8(), rng.u8()]);
    h.extend(rng.bytes(8 + opts));
    [cut(rng, h), l4].concat()
}

const EXT_HEADERS: [u8; 5] = [0, 43, 60, 51, 44];

fn ipv6(rng: &mut Rng) -> Vec<u8> {
    let exts: Vec<u8> = (0..rng.pick(&[0, 0, 1, 1, 2, 3]))
        .map(|_| rng.pick(&EXT_HEADERS))
        .collect();
    let proto = rng.pick(&[6, 17, 132, 58, 58, 58, 59, 1]);
    let proto = if rng.chance(5) { rng.u8() } else { proto };
    let mut payload = l4(rng, proto, true);
    let mut nxt = proto;
    for &ext in exts.iter().rev() {
        let h = match ext {
            44 => {
                let offlg: u16 = match rng.below(4) {
                    0 => 1,                                   // first fragment
                    1 => 0,                                   // atomic
                    2 => (rng.below(0x2000) as u16) << 3 | 1, // later, more
                    _ => rng.u16(),
                };
                [
                    vec![nxt, rng.u8()],
                    offlg.to_be_bytes().to_vec(),
                    rng.bytes(4),
                ]
                .concat()
            }
            51 => {
                let len = 1 + rng.below(4);
                [vec![nxt, len as u8], rng.bytes((len + 2) * 4 - 2)].concat()
            }
            _ => {
                let len = rng.below(3);
                [vec![nxt, len as u8], rng.bytes((len + 1) * 8 - 2)].concat()
            }
        };
        payload = [cut(rng, h), payload].concat();
        nxt = ext;
    }
    let plen = if rng.chance(5) {
        rng.u16()
    } else {
        payload.len() as u16
    };
    let vtf = if rng.chance(5) {
        rng.next() as u32
    } else {
        0x6000_0000 | (rng.next() as u32 & 0x0fff_ffff)
    };
    let mut h = vtf.to_be_bytes().to_vec();
    h.extend_from_slice(&plen.to_be_bytes());
    h.extend_from_slice(&[nxt, rng.u8()]);
    h.extend(rng.bytes(32));
    [cut(rng, h), payload].concat()
}

fn l4(rng: &mut Rng, proto: u8, v6: bool) -> Vec<u8> {
    let p = match proto {
        6 => {
            let opts = if rng.chance(30) { rng.below(11) * 4 } else { 0 };
            let doff = if rng.chance(8) {
                rng.below(16)
            } else {
                5 + opts / 4
            };
            let mut t = rng.bytes(12);
            t.extend_from_slice(&((doff as u16) << 12 | rng.u16() & 0x0fff).to_be_bytes());
            t.extend(rng.bytes(6 + opts));
            t
        }
        17 | 132 => {
            let n = if proto == 17 { 8 } else { 12 } + rng.below(20);
            rng.bytes(n)
        }
        58 if v6 && rng.chance(50) => nd(rng),
        1 | 58 | 2 => {
            let ty = if rng.chance(50) {
                rng.pick(&[0, 3, 8, 11, 128, 129, 133, 134, 135, 136, 137, 0x11, 0x16])
            } else {
                rng.u8()
            };
            let n = 6 + rng.below(30);
            [vec![ty, rng.pick(&[0, 0, 1, 3]) as u8], rng.bytes(n)].concat()
        }
        _ => {
            let n = rng.below(40);
            rng.bytes(n)
        }
    };
    cut(rng, p)
}

/// A neighbour solicitation or advertisement with random options.
fn nd(rng: &mut Rng) -> Vec<u8> {
    let ty = rng.pick(&[135, 136]);
    let code = if rng.chance(8) { 1 } else { 0 };
    let mut m = vec![ty, code, rng.u8(), rng.u8()];
    m.extend(rng.bytes(20)); // flags/reserved and target
    for _ in 0..rng.below(4) {
        match rng.below(7) {
            0 | 1 => m.extend([vec![1, 1], rng.bytes(6)].concat()),
            2 | 3 => m.extend([vec![2, 1], rng.bytes(6)].concat()),
            4 => m.extend([vec![rng.pick(&[1, 2, 5, 14]), 2], rng.bytes(14)].concat()),
            5 => m.extend([vec![rng.u8(), 0], rng.bytes(6)].concat()),
            _ => m.extend([vec![rng.u8(), 1 + rng.u8() % 8], rng.bytes(6)].concat()),
        }
    }
    m
}

/// `count` random frames from `seed`, then every prefix of the first
/// `prefixed` of them (truncation at every length). No frame is empty:
/// `ovs-ofctl parse-pcap` takes an empty record for the end of the file.
pub fn corpus(seed: u64, count: usize, prefixed: usize) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(seed);
    let frames: Vec<Vec<u8>> = (0..count).map(|_| frame(&mut rng)).collect();
    let prefixes: Vec<Vec<u8>> = frames
        .iter()
        .take(prefixed)
        .flat_map(|f| (1..f.len()).map(|n| f[..n].to_vec()))
        .collect();
    [frames, prefixes].concat()
}

/// A classic pcap file (little-endian, microsecond stamps, LINKTYPE_ETHERNET).
pub fn pcap<'a>(frames: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for w in [
        0xa1b2_c3d4u32.to_le_bytes(),
        [2, 0, 4, 0],
        [0; 4],
        [0; 4],
        65535u32.to_le_bytes(),
        1u32.to_le_bytes(),
    ] {
        out.extend_from_slice(&w);
    }
    for (i, f) in frames.into_iter().enumerate() {
        let len = (f.len() as u32).to_le_bytes();
        for w in [(i as u32).to_le_bytes(), [0; 4], len, len] {
            out.extend_from_slice(&w);
        }
        out.extend_from_slice(f);
    }
    out
}
