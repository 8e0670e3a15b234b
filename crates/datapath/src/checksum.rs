//! Internet checksum (RFC 1071) arithmetic for the actions that rewrite
//! headers: a full one's-complement sum, used by tests and by the rare full
//! recomputation, and the incremental update of RFC 1624 (eqn. 3,
//! `HC' = ~(~HC + ~m + m')`), used per packet so that rewriting an address
//! costs a few additions instead of a pass over the payload.
//!
//! Sums are carried as `u32` "partial sums" (unfolded); `fold` reduces one to
//! 16 bits. Every function is pure and allocation-free.

/// One's-complement sum of `data` read as big-endian 16-bit words (an odd
/// trailing byte is padded with zero), added to `initial`. The result is a
/// partial sum: fold it with [`fold`] before use.
#[inline]
pub fn sum(data: &[u8], initial: u32) -> u32 {
    let mut acc = initial as u64;
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        acc += u16::from_be_bytes([w[0], w[1]]) as u64;
    }
    if let [last] = words.remainder() {
        acc += (*last as u64) << 8;
    }
    // Fold the 64-bit accumulator so the partial sum fits u32 again.
    while acc >> 32 != 0 {
        acc = (acc & 0xffff_ffff) + (acc >> 32);
    }
    acc as u32
}

/// Folds a partial sum to 16 bits (end-around carry). Two rounds suffice
/// for any `u32`: the first leaves at most 0x1fffe, the second at most 0xffff.
#[inline]
pub fn fold(s: u32) -> u16 {
    let s = (s & 0xffff) + (s >> 16);
    let s = (s & 0xffff) + (s >> 16);
    s as u16
}

/// The checksum field value for data whose partial sum is `s`.
pub fn finish(s: u32) -> u16 {
    !fold(s)
}

/// Incrementally updates checksum `csum` after bytes whose partial sum was
/// `old_sum` were replaced by bytes whose partial sum is `new_sum` (both sums
/// taken over the same 16-bit-aligned span).
#[inline]
pub fn adjust(csum: u16, old_sum: u32, new_sum: u32) -> u16 {
    let s = (!csum) as u32 + (!fold(old_sum)) as u32 + fold(new_sum) as u32;
    !fold(s)
}

/// Incrementally updates `csum` for one 16-bit word changing from `old` to
/// `new`.
pub fn adjust16(csum: u16, old: u16, new: u16) -> u16 {
    adjust(csum, old as u32, new as u32)
}

/// Partial sum of the IPv4 pseudo-header (RFC 793/768) for a transport
/// segment of `len` bytes.
pub fn pseudo_ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, len: u16) -> u32 {
    sum(&src, sum(&dst, proto as u32 + len as u32))
}

/// Partial sum of the IPv6 pseudo-header (RFC 8200 §8.1).
pub fn pseudo_ipv6(src: &[u8; 16], dst: &[u8; 16], next_header: u8, len: u32) -> u32 {
    let s = sum(src, sum(dst, next_header as u32));
    sum(&len.to_be_bytes(), s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1071 §3 worked example: the words 0001 f203 f4f5 f6f7 sum to ddf2.
    #[test]
    fn rfc1071_example() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&data, 0)), 0xddf2);
        assert_eq!(finish(sum(&data, 0)), !0xddf2);
    }

    /// A real IPv4 header (checksum 0xb861) verifies to zero and recomputes.
    #[test]
    fn ipv4_header_checksum() {
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(finish(sum(&h, 0)), 0);
        h[10] = 0;
        h[11] = 0;
        assert_eq!(finish(sum(&h, 0)), 0xb861);
    }

    #[test]
    fn fold_extremes() {
        assert_eq!(fold(0xffff_ffff), 0xffff);
        assert_eq!(fold(0x0001_fffe), 0xffff);
        assert_eq!(fold(0x0001_0000), 0x0001);
        assert_eq!(fold(0), 0);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(sum(&[0x12, 0x34, 0x56], 0), 0x1234 + 0x5600);
    }

    /// Incremental update agrees with recomputation for every single-word
    /// change of a sample header (exhaustive over one word's values would be
    /// slow; a stride covers the carry cases including 0x0000/0xffff).
    #[test]
    fn adjust_matches_recompute() {
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        let c = finish(sum(&h, 0));
        h[10..12].copy_from_slice(&c.to_be_bytes());
        for new in (0u32..=0xffff).step_by(257).chain([0xffff, 0x0000, 0xfffe]) {
            let mut g = h;
            let old = u16::from_be_bytes([g[12], g[13]]);
            g[12..14].copy_from_slice(&(new as u16).to_be_bytes());
            let inc = adjust16(c, old, new as u16);
            g[10..12].copy_from_slice(&inc.to_be_bytes());
            assert_eq!(fold(sum(&g, 0)), 0xffff, "new word {new:#06x}");
        }
    }
}
