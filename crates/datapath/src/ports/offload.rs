//! Offloads a kernel device leaves to whoever takes its frames: checksums a
//! sender left partial and GSO super-frames, for the kernel-device back ends
//! (`system` over AF_PACKET, `afxdp`). Nothing here allocates per packet;
//! every function reads only within the slice it is given and leaves a frame
//! it cannot read as it is (never a panic).
//!
//! - AF_PACKET with `PACKET_VNET_HDR` hands a [`VnetHdr`] with every frame:
//!   `csum_start`/`csum_offset` say exactly where a partial checksum lies
//!   ([`complete_at`]), `gso_type`/`gso_size` how a super-frame is to be cut
//!   ([`segment`]: TCP over IPv4 and IPv6, and UDP GSO, each segment with its
//!   own lengths, sequence number, IPv4 id and checksums, as the kernel's
//!   software GSO makes them).
//! - XDP hands no such mark (kernel 6.x has no rx-checksum metadata), so
//!   [`repair_partial`] infers it: a TCP/UDP checksum that is wrong and holds
//!   exactly the pseudo-header sum (what Linux leaves for the hardware) is
//!   finished; any other wrong checksum is left for the receiver to drop.

use crate::checksum;

/// Bytes of the `virtio_net_hdr` AF_PACKET puts before each frame.
pub const VNET_HDR_LEN: usize = 10;
/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum at `csum_start + csum_offset` is partial.
const F_NEEDS_CSUM: u8 = 1;
const GSO_NONE: u8 = 0;
const GSO_TCPV4: u8 = 1;
const GSO_TCPV6: u8 = 4;
const GSO_UDP_L4: u8 = 5;
/// `VIRTIO_NET_HDR_GSO_ECN`: a flag beside the type.
const GSO_ECN: u8 = 0x80;

/// The virtio-net header of a frame (little-endian fields on this host).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VnetHdr {
    pub flags: u8,
    pub gso_type: u8,
    pub hdr_len: u16,
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
}

impl VnetHdr {
    pub fn parse(b: &[u8; VNET_HDR_LEN]) -> VnetHdr {
        let u = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u(2),
            gso_size: u(4),
            csum_start: u(6),
            csum_offset: u(8),
        }
    }

    /// Whether the checksum is left partial.
    pub fn needs_csum(&self) -> bool {
        self.flags & F_NEEDS_CSUM != 0
    }

    /// Whether the frame is a super-frame to cut.
    pub fn is_gso(&self) -> bool {
        self.gso_type & !GSO_ECN != GSO_NONE
    }
}

/// Finishes a checksum left partial: the one's-complement sum of the frame
/// from `start` to its end (the field already holds the pseudo-header sum)
/// is written at `start + offset`. False when those offsets do not fit.
pub fn complete_at(frame: &mut [u8], start: usize, offset: usize) -> bool {
    let field = start.saturating_add(offset);
    if start >= frame.len() || field.saturating_add(2) > frame.len() {
        return false;
    }
    let c = match checksum::finish(checksum::sum(&frame[start..], 0)) {
        0 => 0xffff,
        c => c,
    };
    frame[field..field + 2].copy_from_slice(&c.to_be_bytes());
    true
}

/// Where a frame's IP packet and transport segment lie.
#[derive(Clone, Copy, Debug)]
struct L4 {
    /// Offset of the IP header.
    ip: usize,
    v4: bool,
    proto: u8,
    /// Offset of the transport header.
    l4: usize,
    /// End of the IP packet (Ethernet padding after it is not part of it).
    end: usize,
}

impl L4 {
    /// The pseudo-header sum for a transport segment of `len` bytes.
    fn pseudo(&self, frame: &[u8], len: usize) -> u32 {
        let ip = &frame[self.ip..];
        if self.v4 {
            let src = [ip[12], ip[13], ip[14], ip[15]];
            let dst = [ip[16], ip[17], ip[18], ip[19]];
            checksum::pseudo_ipv4(src, dst, self.proto, len as u16)
        } else {
            let src: [u8; 16] = ip[8..24].try_into().expect("16 bytes");
            let dst: [u8; 16] = ip[24..40].try_into().expect("16 bytes");
            checksum::pseudo_ipv6(&src, &dst, self.proto, len as u32)
        }
    }

    /// Offset of the TCP or UDP checksum field, if the segment holds one.
    fn csum_field(&self) -> Option<usize> {
        let len = self.end - self.l4;
        match self.proto {
            6 if len >= 20 => Some(self.l4 + 16),
            17 if len >= 8 => Some(self.l4 + 6),
            _ => None,
        }
    }
}

/// Finds the transport segment of an Ethernet frame (VLAN tags allowed, IPv4
/// unfragmented, IPv6 without extension headers).
fn locate(frame: &[u8]) -> Option<L4> {
    let mut off = 12;
    let mut ethertype = 0;
    while off + 2 <= frame.len() {
        ethertype = u16::from_be_bytes([frame[off], frame[off + 1]]);
        if ethertype == 0x8100 || ethertype == 0x88a8 {
            off += 4;
        } else {
            break;
        }
    }
    let l3 = off + 2;
    match ethertype {
        0x0800 if frame.len() >= l3 + 20 => {
            let ip = &frame[l3..];
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            let fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0;
            if ip[0] >> 4 != 4 || ihl < 20 || total < ihl || l3 + total > frame.len() || fragment {
                return None;
            }
            Some(L4 {
                ip: l3,
                v4: true,
                proto: ip[9],
                l4: l3 + ihl,
                end: l3 + total,
            })
        }
        0x86dd if frame.len() >= l3 + 40 => {
            let ip = &frame[l3..];
            let len = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
            if ip[0] >> 4 != 6 || l3 + 40 + len > frame.len() {
                return None;
            }
            Some(L4 {
                ip: l3,
                v4: false,
                proto: ip[6],
                l4: l3 + 40,
                end: l3 + 40 + len,
            })
        }
        _ => None,
    }
}

/// Writes the TCP or UDP checksum of the segment `l` describes, from scratch.
fn fill_l4_checksum(frame: &mut [u8], l: &L4) {
    let Some(field) = l.csum_field() else {
        return;
    };
    frame[field..field + 2].fill(0);
    let len = l.end - l.l4;
    let mut c = checksum::finish(checksum::sum(&frame[l.l4..l.end], l.pseudo(frame, len)));
    if l.proto == 17 && c == 0 {
        c = 0xffff;
    }
    frame[field..field + 2].copy_from_slice(&c.to_be_bytes());
}

/// Finishes a TCP or UDP checksum that a sender with checksum offload left
/// partial, on a frame that came with no mark saying so (XDP): the checksum
/// must be wrong and hold exactly the pseudo-header sum. A correct checksum,
/// a UDP one left out (0), or any other wrong value is left as it is.
pub fn repair_partial(frame: &mut [u8]) {
    let Some(l) = locate(frame) else {
        return;
    };
    let Some(field) = l.csum_field() else {
        return;
    };
    let stored = u16::from_be_bytes([frame[field], frame[field + 1]]);
    if l.proto == 17 && stored == 0 {
        return;
    }
    let pseudo = l.pseudo(frame, l.end - l.l4);
    if stored != checksum::fold(pseudo) {
        return;
    }
    if checksum::fold(checksum::sum(&frame[l.l4..l.end], pseudo)) == 0xffff {
        return;
    }
    fill_l4_checksum(frame, &l);
}

/// Why a super-frame was not cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentError {
    /// Not TCP over IPv4/IPv6 nor UDP GSO, or headers that do not parse.
    Unreadable,
    /// A segment size of 0, or segments that would not fit `max_frame`.
    BadSize,
}

/// Cuts a GSO super-frame of type `gso_type` into segments of at most
/// `gso_size` payload bytes, each built in `scratch` and handed to `emit`
/// with correct lengths and checksums; returns how many. A frame whose
/// payload already fits one segment comes out whole (its checksum filled).
pub fn segment(
    frame: &[u8],
    gso_type: u8,
    gso_size: usize,
    max_frame: usize,
    scratch: &mut Vec<u8>,
    mut emit: impl FnMut(&[u8]),
) -> Result<usize, SegmentError> {
    let l = locate(frame).ok_or(SegmentError::Unreadable)?;
    let tcp = match (gso_type & !GSO_ECN, l.proto, l.v4) {
        (GSO_TCPV4, 6, true) | (GSO_TCPV6, 6, false) => true,
        (GSO_UDP_L4, 17, _) => false,
        _ => return Err(SegmentError::Unreadable),
    };
    let l4_hdr = if tcp {
        if l.end - l.l4 < 20 {
            return Err(SegmentError::Unreadable);
        }
        usize::from(frame[l.l4 + 12] >> 4) * 4
    } else {
        8
    };
    let hdrs = l.l4 + l4_hdr;
    if l4_hdr < 8 || hdrs > l.end {
        return Err(SegmentError::Unreadable);
    }
    if gso_size == 0 || hdrs + gso_size > max_frame {
        return Err(SegmentError::BadSize);
    }
    let payload = &frame[hdrs..l.end];
    let seq0 = u32::from_be_bytes(frame[l.l4 + 4..l.l4 + 8].try_into().expect("4 bytes"));
    let id0 = u16::from_be_bytes([frame[l.ip + 4], frame[l.ip + 5]]);
    let flags0 = frame[l.l4 + 13];
    let count = payload.len().div_ceil(gso_size).max(1);
    for i in 0..count {
        let chunk =
            &payload[(i * gso_size).min(payload.len())..((i + 1) * gso_size).min(payload.len())];
        scratch.clear();
        scratch.extend_from_slice(&frame[..hdrs]);
        scratch.extend_from_slice(chunk);
        let end = hdrs + chunk.len();
        if l.v4 {
            let total = (end - l.ip) as u16;
            scratch[l.ip + 2..l.ip + 4].copy_from_slice(&total.to_be_bytes());
            if count > 1 {
                let id = id0.wrapping_add(i as u16);
                scratch[l.ip + 4..l.ip + 6].copy_from_slice(&id.to_be_bytes());
            }
            let ihl = l.l4 - l.ip;
            scratch[l.ip + 10..l.ip + 12].fill(0);
            let c = checksum::finish(checksum::sum(&scratch[l.ip..l.ip + ihl], 0));
            scratch[l.ip + 10..l.ip + 12].copy_from_slice(&c.to_be_bytes());
        } else {
            let plen = (end - l.ip - 40) as u16;
            scratch[l.ip + 4..l.ip + 6].copy_from_slice(&plen.to_be_bytes());
        }
        if tcp {
            let seq = seq0.wrapping_add((i * gso_size) as u32);
            scratch[l.l4 + 4..l.l4 + 8].copy_from_slice(&seq.to_be_bytes());
            let mut flags = flags0;
            if i + 1 < count {
                flags &= !(0x01 | 0x08); // FIN and PSH only on the last segment
            }
            if i > 0 {
                flags &= !0x80; // CWR only on the first
            }
            scratch[l.l4 + 13] = flags;
        } else {
            let ulen = (end - l.l4) as u16;
            scratch[l.l4 + 4..l.l4 + 6].copy_from_slice(&ulen.to_be_bytes());
        }
        fill_l4_checksum(scratch, &L4 { end, ..l });
        emit(scratch);
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet frame holding TCP (or UDP) over IPv4 or IPv6 with `payload`,
    /// its checksum partial (the pseudo-header sum only), as a sender with offload leaves it.
    fn frame(v4: bool, proto: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
        let l4_len = if proto == 6 { 20 } else { 8 } + payload.len();
        if v4 {
            f.extend_from_slice(&[0x08, 0x00]);
            let total = (20 + l4_len) as u16;
            f.extend_from_slice(&[
                0x45,
                0,
                (total >> 8) as u8,
                total as u8,
                0x12,
                0x34,
                0x40,
                0,
                64,
                proto,
                0,
                0,
            ]);
            f.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
            let c = checksum::finish(checksum::sum(&f[14..34], 0));
            f[24..26].copy_from_slice(&c.to_be_bytes());
        } else {
            f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
            f.extend_from_slice(&(l4_len as u16).to_be_bytes());
            f.extend_from_slice(&[proto, 64]);
            f.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
            f.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        }
        let l4 = f.len();
        if proto == 6 {
            f.extend_from_slice(&[
                0x30, 0x39, 0x14, 0x51, 0, 0, 0x10, 0, 0, 0, 0, 0, 0x50, 0x19, 0xff, 0xff, 0, 0, 0,
                0,
            ]);
        } else {
            f.extend_from_slice(&[0x30, 0x39, 0x14, 0x51]);
            f.extend_from_slice(&(l4_len as u16).to_be_bytes());
            f.extend_from_slice(&[0, 0]);
        }
        f.extend_from_slice(payload);
        let l = locate(&f).unwrap();
        let partial = checksum::fold(l.pseudo(&f, l4_len));
        let field = l.csum_field().unwrap();
        f[field..field + 2].copy_from_slice(&partial.to_be_bytes());
        assert_eq!(field - l4, if proto == 6 { 16 } else { 6 });
        f
    }

    /// Whether the frame's IPv4 header (if any) and TCP/UDP checksums are correct.
    fn valid(f: &[u8]) -> bool {
        let l = locate(f).unwrap();
        let ip_ok = !l.v4 || checksum::fold(checksum::sum(&f[l.ip..l.l4], 0)) == 0xffff;
        let l4_ok =
            checksum::fold(checksum::sum(&f[l.l4..l.end], l.pseudo(f, l.end - l.l4))) == 0xffff;
        ip_ok && l4_ok
    }

    #[test]
    fn a_partial_checksum_is_completed_from_csum_start() {
        for (v4, proto) in [(true, 6), (false, 6), (true, 17), (false, 17)] {
            let mut f = frame(v4, proto, b"partial checksum, odd length!");
            assert!(!valid(&f));
            let l = locate(&f).unwrap();
            let off = if proto == 6 { 16 } else { 6 };
            assert!(complete_at(&mut f, l.l4, off));
            assert!(valid(&f), "v4={v4} proto={proto}");
        }
        let mut short = vec![0u8; 20];
        assert!(!complete_at(&mut short, 19, 6));
        assert!(!complete_at(&mut short, 40, 0));
    }

    #[test]
    fn a_partial_checksum_is_inferred_and_nothing_else_is_touched() {
        for (v4, proto) in [(true, 6), (false, 6), (true, 17), (false, 17)] {
            let mut f = frame(v4, proto, b"0123456789");
            repair_partial(&mut f);
            assert!(valid(&f));
            // A correct checksum stays; a damaged one stays damaged.
            let good = f.clone();
            repair_partial(&mut f);
            assert_eq!(f, good);
            let n = f.len();
            f[n - 1] ^= 0x40;
            let damaged = f.clone();
            repair_partial(&mut f);
            assert_eq!(f, damaged);
            assert!(!valid(&f));
        }
        // Every cut of a frame is left alone or mended, never a panic.
        let f = frame(true, 6, b"abcdefgh");
        for n in 0..f.len() {
            let mut cut = f[..n].to_vec();
            repair_partial(&mut cut);
        }
    }

    #[test]
    fn a_tcp_super_frame_is_cut_into_valid_segments() {
        let payload: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
        for (v4, gso) in [(true, GSO_TCPV4), (false, GSO_TCPV6)] {
            let f = frame(v4, 6, &payload);
            let mut scratch = Vec::new();
            let mut segs: Vec<Vec<u8>> = Vec::new();
            let n = segment(&f, gso, 1448, 9238, &mut scratch, |s| segs.push(s.to_vec())).unwrap();
            assert_eq!(n, 7);
            assert_eq!(segs.len(), 7);
            let mut joined = Vec::new();
            for (i, s) in segs.iter().enumerate() {
                assert!(valid(s), "segment {i} v4={v4}");
                let l = locate(s).unwrap();
                let seq = u32::from_be_bytes(s[l.l4 + 4..l.l4 + 8].try_into().unwrap());
                assert_eq!(seq, 0x1000u32.wrapping_add((i * 1448) as u32));
                let flags = s[l.l4 + 13];
                assert_eq!(flags & 0x09 != 0, i == 6, "FIN/PSH only on the last");
                if v4 {
                    assert_eq!(
                        u16::from_be_bytes([s[l.ip + 4], s[l.ip + 5]]),
                        0x1234 + i as u16
                    );
                }
                joined.extend_from_slice(&s[l.l4 + 20..l.end]);
            }
            assert_eq!(joined, payload);
        }
    }

    #[test]
    fn a_udp_super_frame_is_cut_into_datagrams() {
        let payload = vec![0xabu8; 3000];
        let f = frame(true, 17, &payload);
        let mut scratch = Vec::new();
        let mut segs: Vec<Vec<u8>> = Vec::new();
        assert_eq!(
            segment(&f, GSO_UDP_L4, 1200, 9238, &mut scratch, |s| segs
                .push(s.to_vec())),
            Ok(3)
        );
        let lens: Vec<usize> = segs.iter().map(|s| s.len() - 42).collect();
        assert_eq!(lens, [1200, 1200, 600]);
        assert!(segs.iter().all(|s| valid(s)));
    }

    #[test]
    fn garbage_is_refused_never_a_panic() {
        let f = frame(true, 6, &[1u8; 3000]);
        let mut scratch = Vec::new();
        assert_eq!(
            segment(&f, GSO_TCPV6, 1448, 9238, &mut scratch, |_| {}),
            Err(SegmentError::Unreadable)
        );
        assert_eq!(
            segment(&f, GSO_TCPV4, 0, 9238, &mut scratch, |_| {}),
            Err(SegmentError::BadSize)
        );
        assert_eq!(
            segment(&f, GSO_TCPV4, 9200, 9238, &mut scratch, |_| {}),
            Err(SegmentError::BadSize)
        );
        for n in 0..f.len() {
            let _ = segment(&f[..n], GSO_TCPV4, 100, 9238, &mut scratch, |s| {
                assert!(s.len() <= 9238)
            });
        }
        let mut rng = 0x1234_5678u32;
        for _ in 0..2000 {
            let mut g = f.clone();
            for _ in 0..4 {
                rng = rng.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let at = (rng as usize >> 8) % g.len().min(80);
                g[at] = (rng >> 24) as u8;
            }
            let _ = segment(&g, GSO_TCPV4, 536, 9238, &mut scratch, |s| {
                assert!(s.len() <= 9238)
            });
            repair_partial(&mut g);
        }
    }

    #[test]
    fn vnet_header_fields() {
        let h = VnetHdr::parse(&[1, 0x81, 66, 0, 0xa8, 5, 34, 0, 16, 0]);
        assert!(h.needs_csum() && h.is_gso());
        assert_eq!(
            (
                h.gso_type & !GSO_ECN,
                h.gso_size,
                h.csum_start,
                h.csum_offset,
                h.hdr_len
            ),
            (GSO_TCPV4, 1448, 34, 16, 66)
        );
        assert!(!VnetHdr::default().is_gso());
    }
}
