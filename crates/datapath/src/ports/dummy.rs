//! The `dummy` port: in-memory packet queues, fed and drained by tests.
//!
//! Like OVS's netdev-dummy it lets the whole pipeline run without root or
//! NICs. `inject` queues a packet for the rx side; packets the datapath sends
//! wait in a tx queue until `drain`. With option `loopback=true`, whatever
//! the datapath sends out of the port arrives on it again (benchmarks use a
//! pair of loopback ports to keep packets circulating with no allocation).
//!
//! `inject` copies a packet into a frame of the port's own [`Pool`] (on the
//! heap when the pool is used up or the packet is larger than a chunk);
//! wherever the packet ends, its frame comes back to the pool, so steady
//! traffic allocates nothing. Packets sent out of the port keep whatever
//! frame they came in (no copy) until `drain` or `close` drops them.
//!
//! Options: `loopback` (`true`/`false`, default false), `rxq_len` and
//! `txq_len` (queue bounds in packets, default 65536; beyond, packets are
//! dropped and counted).

use std::collections::VecDeque;

use crate::frame::{copy_packet, spread_chunk, Pool};
use crate::port::{Batch, Packet, Port, PortError, PortOptions, PortStats};

const DEFAULT_QUEUE_LEN: usize = 65536;
/// Frames of a dummy port's pool: 2 MiB of address space, committed only as used.
const POOL_FRAMES: usize = 1024;
/// Bytes per pool frame (headroom, a 1500-byte MTU frame with tags, tailroom).
const POOL_CHUNK: usize = spread_chunk(2048);

/// In-memory port.
pub struct DummyPort {
    rxq: VecDeque<Packet>,
    txq: VecDeque<Packet>,
    /// Where `inject` copies packets to.
    pool: Pool,
    rxq_len: usize,
    txq_len: usize,
    loopback: bool,
    closed: bool,
    stats: PortStats,
}

fn parse_option<T: std::str::FromStr>(
    name: &str,
    options: &PortOptions,
    key: &str,
    default: T,
    expected: &str,
) -> Result<T, PortError> {
    match options.get(key) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| PortError::BadOption {
            port: name.to_string(),
            key: key.to_string(),
            value: v.clone(),
            why: format!("expected {expected}"),
        }),
    }
}

impl DummyPort {
    /// Packets waiting on the rx side.
    pub fn rx_queued(&self) -> usize {
        self.rxq.len()
    }

    /// Packets waiting on the tx side.
    pub fn tx_queued(&self) -> usize {
        self.txq.len()
    }
}

impl Port for DummyPort {
    fn open(name: &str, options: &PortOptions) -> Result<Self, PortError> {
        if let Some(k) = options
            .keys()
            .find(|k| !matches!(k.as_str(), "loopback" | "rxq_len" | "txq_len"))
        {
            return Err(PortError::BadOption {
                port: name.to_string(),
                key: k.clone(),
                value: options[k].clone(),
                why: "unknown option for a dummy port (known: loopback, rxq_len, txq_len)".into(),
            });
        }
        let rxq_len = parse_option(
            name,
            options,
            "rxq_len",
            DEFAULT_QUEUE_LEN,
            "a number of packets",
        )?;
        let txq_len = parse_option(
            name,
            options,
            "txq_len",
            DEFAULT_QUEUE_LEN,
            "a number of packets",
        )?;
        Ok(DummyPort {
            rxq: VecDeque::new(),
            txq: VecDeque::new(),
            pool: Pool::new(POOL_FRAMES, POOL_CHUNK)?,
            rxq_len,
            txq_len,
            loopback: parse_option(name, options, "loopback", false, "true or false")?,
            closed: false,
            stats: PortStats::default(),
        })
    }

    fn kind(&self) -> &'static str {
        "dummy"
    }

    fn rx_burst(&mut self, batch: &mut Batch) -> Result<usize, PortError> {
        let n = batch.room().min(self.rxq.len());
        self.stats.rx_packets += n as u64;
        self.stats.rx_bytes += self.rxq.range(..n).map(|p| p.len() as u64).sum::<u64>();
        // Moved as a block, not packet by packet through the stack.
        batch.pkts.extend(self.rxq.drain(..n));
        Ok(n)
    }

    fn tx_burst(&mut self, batch: &mut Batch) -> Result<usize, PortError> {
        let (queue, limit) = if self.loopback {
            (&mut self.rxq, self.rxq_len)
        } else {
            (&mut self.txq, self.txq_len)
        };
        // What fits is queued as a block; the rest (or all, when closed) is dropped.
        let sent = if self.closed {
            0
        } else {
            limit.saturating_sub(queue.len()).min(batch.len())
        };
        self.stats.tx_packets += sent as u64;
        self.stats.tx_bytes += batch.pkts[..sent]
            .iter()
            .map(|p| p.len() as u64)
            .sum::<u64>();
        self.stats.tx_dropped += (batch.len() - sent) as u64;
        queue.extend(batch.pkts.drain(..sent));
        batch.pkts.clear();
        Ok(sent)
    }

    fn stats(&self) -> PortStats {
        self.stats
    }

    fn close(&mut self) {
        self.closed = true;
        self.rxq.clear();
        self.txq.clear();
    }

    fn pool(&self) -> Option<&Pool> {
        Some(&self.pool)
    }

    fn inject(&mut self, packet: &[u8]) -> Result<(), PortError> {
        if self.closed {
            return Err(PortError::Closed);
        }
        if self.rxq.len() >= self.rxq_len {
            self.stats.rx_dropped += 1;
            return Ok(());
        }
        let pkt = copy_packet(&self.pool, packet);
        self.rxq.push_back(pkt);
        Ok(())
    }

    fn drain(&mut self, max: usize) -> Result<Vec<Vec<u8>>, PortError> {
        let n = max.min(self.txq.len());
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let pkt = self.txq.pop_front().expect("counted above");
            out.push(pkt.data().to_vec());
        }
        Ok(out)
    }
}
