//! `RingPort`: an in-memory port shaped like an AF_XDP socket, to test the
//! frame contract the way that back end will use it. Its memory is a
//! [`Pool`] (the UMEM), which several ring ports may share; its queues hold
//! chunk offsets, not frames, as the kernel's rings do:
//! - rx: `inject` copies a packet into a chunk and puts the offset on the rx
//!   ring; `rx_burst` reclaims offsets from it as frames (no copy).
//! - tx: a frame of the port's own pool is lent to the tx ring as it is (no
//!   copy); any other frame is copied into a chunk and goes home at once.
//!   The "device" sends a tx entry when `drain` takes it (or, with loopback,
//!   moves it to the rx ring); a sent chunk comes back through the
//!   completion path (reclaimed, then dropped: back on the free ring).
//!
//! When the pool is used up, rx drops (`rx_dropped`) and tx of a foreign
//! frame drops (`tx_dropped`), as an AF_XDP port with an empty fill ring would.

use std::collections::VecDeque;

use nvs_datapath::actions::{PacketBuf, HEADROOM};
use nvs_datapath::frame::{Frame, Pool};
use nvs_datapath::port::{Batch, Port, PortError, PortOptions, PortStats};

/// Entries per ring (rx, tx); beyond, packets are dropped and counted.
const RING_LEN: usize = 64;

/// A lent chunk on a ring: its offset, and where the packet lies in it.
#[derive(Clone, Copy)]
struct Desc {
    offset: u32,
    start: usize,
    len: usize,
}

pub struct RingPort {
    pool: Pool,
    rx: VecDeque<Desc>,
    tx: VecDeque<Desc>,
    ring_len: usize,
    loopback: bool,
    closed: bool,
    stats: PortStats,
    /// Frames sent without a copy (they were already in this pool).
    pub zero_copy: u64,
    /// Frames copied into this pool on the way out.
    pub copied: u64,
}

impl RingPort {
    /// A ring port on `pool` (share a pool between ports as AF_XDP sockets share a UMEM).
    pub fn new(pool: Pool, loopback: bool) -> RingPort {
        RingPort {
            pool,
            rx: VecDeque::new(),
            tx: VecDeque::new(),
            ring_len: RING_LEN,
            loopback,
            closed: false,
            stats: PortStats::default(),
            zero_copy: 0,
            copied: 0,
        }
    }

    /// The frame of a descriptor's chunk.
    fn reclaim(&self, d: Desc) -> PacketBuf<Frame> {
        // SAFETY: every `Desc` on this port's rings holds an offset lent by
        // `self.pool` and is taken off its ring before it is reclaimed.
        let frame = unsafe { self.pool.reclaim(d.offset) };
        PacketBuf::new(frame, d.start, d.len).expect("a lent packet fits its chunk")
    }

    /// A packet of this pool as a ring descriptor.
    fn lend(&self, pkt: PacketBuf<Frame>) -> Result<Desc, PacketBuf<Frame>> {
        let (frame, start, len) = pkt.into_parts();
        match self.pool.lend(frame) {
            Ok(offset) => Ok(Desc { offset, start, len }),
            Err(frame) => Err(PacketBuf::new(frame, start, len).expect("unchanged")),
        }
    }

    /// `bytes` copied into a chunk of the pool, lent; `None` when the pool is used up.
    fn copy_in(&self, bytes: &[u8]) -> Option<Desc> {
        let frame = self.pool.alloc()?;
        if self.pool.chunk_size() < HEADROOM + bytes.len() {
            return None;
        }
        let pkt = PacketBuf::from_frame(frame, HEADROOM, bytes).expect("checked to fit");
        Some(
            self.lend(pkt)
                .unwrap_or_else(|_| unreachable!("a frame of this pool")),
        )
    }
}

impl Port for RingPort {
    fn open(_name: &str, options: &PortOptions) -> Result<Self, PortError> {
        let loopback = options.get("loopback").is_some_and(|v| v == "true");
        Ok(RingPort::new(Pool::new(256, 2048)?, loopback))
    }

    fn kind(&self) -> &'static str {
        "ring"
    }

    fn rx_burst(&mut self, batch: &mut Batch) -> Result<usize, PortError> {
        let n = batch.room().min(self.rx.len());
        for _ in 0..n {
            let d = self.rx.pop_front().expect("counted");
            self.stats.rx_packets += 1;
            self.stats.rx_bytes += d.len as u64;
            let pkt = self.reclaim(d);
            batch.pkts.push(pkt);
        }
        Ok(n)
    }

    fn tx_burst(&mut self, batch: &mut Batch) -> Result<usize, PortError> {
        let mut sent = 0;
        for pkt in batch.pkts.drain(..) {
            let ring_full = if self.loopback {
                self.rx.len() >= self.ring_len
            } else {
                self.tx.len() >= self.ring_len
            };
            if self.closed || ring_full {
                self.stats.tx_dropped += 1;
                continue;
            }
            let len = pkt.len();
            let desc = match self.lend(pkt) {
                Ok(d) => {
                    self.zero_copy += 1;
                    d
                }
                // Another home: copied into this pool; the original goes home here.
                Err(pkt) => match self.copy_in(pkt.data()) {
                    Some(d) => {
                        self.copied += 1;
                        d
                    }
                    None => {
                        self.stats.tx_dropped += 1;
                        continue;
                    }
                },
            };
            self.stats.tx_packets += 1;
            self.stats.tx_bytes += len as u64;
            if self.loopback {
                self.rx.push_back(desc);
            } else {
                self.tx.push_back(desc);
            }
            sent += 1;
        }
        Ok(sent)
    }

    fn stats(&self) -> PortStats {
        self.stats
    }

    fn close(&mut self) {
        self.closed = true;
        // The rings give their chunks back (as a closed socket's UMEM would be reclaimed).
        let lent: Vec<Desc> = self.rx.drain(..).chain(self.tx.drain(..)).collect();
        for d in lent {
            drop(self.reclaim(d));
        }
    }

    fn pool(&self) -> Option<&Pool> {
        Some(&self.pool)
    }

    fn inject(&mut self, packet: &[u8]) -> Result<(), PortError> {
        if self.closed {
            return Err(PortError::Closed);
        }
        match self.copy_in(packet) {
            Some(d) if self.rx.len() < self.ring_len => self.rx.push_back(d),
            Some(d) => {
                drop(self.reclaim(d));
                self.stats.rx_dropped += 1;
            }
            None => self.stats.rx_dropped += 1,
        }
        Ok(())
    }

    fn drain(&mut self, max: usize) -> Result<Vec<Vec<u8>>, PortError> {
        let n = max.min(self.tx.len());
        let sent: Vec<Desc> = self.tx.drain(..n).collect();
        // Sent: the completion ring hands each chunk back.
        Ok(sent
            .into_iter()
            .map(|d| self.reclaim(d).data().to_vec())
            .collect())
    }
}

impl Drop for RingPort {
    fn drop(&mut self) {
        self.close();
    }
}
