//! `PacketBuf`: a packet's bytes inside a fixed-capacity region with
//! headroom, so that actions that grow the front of a frame (push VLAN, and
//! later encapsulation) write in place instead of copying the frame.
//!
//! The region is any `B: AsRef<[u8]> + AsMut<[u8]>`: a `Frame` (module `frame`)
//! for packets in flight (a heap region or a pool chunk, such as an AF_XDP
//! UMEM chunk, used without a copy), a `Vec<u8>` or `&mut [u8]` in tests and
//! benches. The packet occupies `region[start .. start + len]`;
//! the bytes before are headroom, the bytes after tailroom. The region's size
//! never changes (`B` is held privately), so `start + len <= capacity` always
//! holds and no accessor can panic. Back ends should leave [`HEADROOM`] bytes
//! in front of a received frame when their layout allows it; when the
//! headroom is used up, growing the front moves the bytes after the insertion
//! point into the tailroom instead (a `memmove`, still no allocation).

use crate::key::Tunnel;

/// Headroom a back end should reserve in front of each received frame.
///
/// Enough to push a tunnel header in place: VXLAN or Geneve over IPv6 with
/// an outer VLAN tag is 14 + 4 + 40 + 8 + 8 = 74 bytes before Geneve
/// options, so 192 leaves 118 bytes of options (three cache lines in all).
/// A larger header still fits by moving the tail (see `insert`), without
/// allocating. A 2048-byte pool chunk keeps 1856 bytes after it: a 1500-byte
/// MTU frame with two VLAN tags and room to spare.
pub const HEADROOM: usize = 192;

/// Returned by [`PacketBuf::new`] when the requested layout does not fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("packet of {len} bytes at offset {start} does not fit a {capacity}-byte buffer")]
pub struct BufError {
    pub start: usize,
    pub len: usize,
    pub capacity: usize,
}

/// A packet inside a region with headroom and tailroom (see the module doc).
#[derive(Clone, Debug)]
pub struct PacketBuf<B> {
    storage: B,
    start: usize,
    len: usize,
    /// Tunnel metadata: as received through a tunnel port, or as set by
    /// `SetTunnel` for the tunnel port the packet is sent out of.
    pub tunnel: Tunnel,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> PacketBuf<B> {
    /// A packet of `len` bytes already at `storage[start..]`.
    pub fn new(storage: B, start: usize, len: usize) -> Result<Self, BufError> {
        let capacity = storage.as_ref().len();
        match start.checked_add(len) {
            Some(end) if end <= capacity => Ok(PacketBuf {
                storage,
                start,
                len,
                tunnel: Tunnel::default(),
            }),
            _ => Err(BufError {
                start,
                len,
                capacity,
            }),
        }
    }

    /// Copies `frame` into `storage` after `headroom` bytes (for tests and
    /// back ends that copy anyway, like the dummy port).
    pub fn from_frame(mut storage: B, headroom: usize, frame: &[u8]) -> Result<Self, BufError> {
        let capacity = storage.as_ref().len();
        let err = BufError {
            start: headroom,
            len: frame.len(),
            capacity,
        };
        let end = headroom.checked_add(frame.len()).ok_or(err)?;
        storage
            .as_mut()
            .get_mut(headroom..end)
            .ok_or(err)?
            .copy_from_slice(frame);
        Ok(PacketBuf {
            storage,
            start: headroom,
            len: frame.len(),
            tunnel: Tunnel::default(),
        })
    }

    /// The packet's bytes.
    pub fn data(&self) -> &[u8] {
        &self.storage.as_ref()[self.start..self.start + self.len]
    }

    /// The packet's bytes, writable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        let (s, l) = (self.start, self.len);
        &mut self.storage.as_mut()[s..s + l]
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Offset of the packet's first byte in the region (= free headroom).
    pub fn headroom(&self) -> usize {
        self.start
    }

    /// Free bytes after the packet.
    pub fn tailroom(&self) -> usize {
        self.storage.as_ref().len() - self.start - self.len
    }

    /// Shortens the packet to at most `len` bytes.
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// The region the packet lives in (a back end asks a frame for its home).
    pub fn storage(&self) -> &B {
        &self.storage
    }

    /// Gives the region back, with the packet's offset and length in it.
    pub fn into_parts(self) -> (B, usize, usize) {
        (self.storage, self.start, self.len)
    }

    /// Opens `n` bytes at packet offset `at` (contents unspecified: the
    /// caller writes them). Moves the `at` bytes in front into the headroom
    /// when there is room (cheap for `at` = 12, the MAC addresses), else the
    /// bytes after `at` into the tailroom. Returns false, changing nothing,
    /// if `at > len` or neither has room.
    pub fn insert(&mut self, at: usize, n: usize) -> bool {
        if at > self.len {
            return false;
        }
        let (start, len) = (self.start, self.len);
        if start >= n {
            self.storage
                .as_mut()
                .copy_within(start..start + at, start - n);
            self.start -= n;
        } else if self.tailroom() >= n {
            self.storage
                .as_mut()
                .copy_within(start + at..start + len, start + at + n);
        } else {
            return false;
        }
        self.len += n;
        true
    }

    /// Removes `n` bytes at packet offset `at` by moving the `at` bytes in
    /// front forward (freeing headroom). Returns false, changing nothing, if
    /// the range is not inside the packet.
    pub fn remove(&mut self, at: usize, n: usize) -> bool {
        match at.checked_add(n) {
            Some(end) if end <= self.len => {
                let start = self.start;
                self.storage
                    .as_mut()
                    .copy_within(start..start + at, start + n);
                self.start += n;
                self.len -= n;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_checks_layout() {
        assert!(PacketBuf::new(vec![0u8; 10], 4, 6).is_ok());
        assert_eq!(
            PacketBuf::new(vec![0u8; 10], 4, 7).unwrap_err(),
            BufError {
                start: 4,
                len: 7,
                capacity: 10
            }
        );
        assert!(PacketBuf::new(vec![0u8; 10], usize::MAX, 2).is_err());
        assert!(PacketBuf::from_frame(vec![0u8; 4], 2, &[1, 2, 3]).is_err());
    }

    #[test]
    fn insert_uses_headroom_then_tailroom() {
        let mut p = PacketBuf::from_frame(vec![0u8; 12], 2, &[1, 2, 3, 4]).unwrap();
        assert!(p.insert(1, 2));
        assert_eq!(p.headroom(), 0);
        p.data_mut()[1..3].copy_from_slice(&[8, 9]);
        assert_eq!(p.data(), &[1, 8, 9, 2, 3, 4]);
        // No headroom left: the tail moves instead.
        assert!(p.insert(2, 3));
        p.data_mut()[2..5].copy_from_slice(&[7, 7, 7]);
        assert_eq!(p.data(), &[1, 8, 7, 7, 7, 9, 2, 3, 4]);
        assert_eq!(p.tailroom(), 3);
        assert!(!p.insert(0, 4));
        assert!(!p.insert(10, 1));
        assert_eq!(p.data(), &[1, 8, 7, 7, 7, 9, 2, 3, 4]);
    }

    #[test]
    fn remove_and_truncate() {
        let mut p = PacketBuf::from_frame([0u8; 8], 1, &[1, 2, 3, 4, 5]).unwrap();
        assert!(p.remove(1, 2));
        assert_eq!(p.data(), &[1, 4, 5]);
        assert_eq!(p.headroom(), 3);
        assert!(!p.remove(2, 2));
        p.truncate(2);
        assert_eq!(p.data(), &[1, 4]);
        p.truncate(10);
        assert_eq!(p.len(), 2);
        let (_, start, len) = p.into_parts();
        assert_eq!((start, len), (3, 2));
    }
}
