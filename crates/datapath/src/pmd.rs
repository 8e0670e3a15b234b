//! Polling threads ("PMD" threads in OVS): the fast path's loop.
//!
//! Each [`Pmd`] owns its exact-match cache and its classifier (no locks on
//! lookup) and polls the rx side of the ports assigned to it. One iteration
//! per port: rx batch → apply pending control commands → extract keys → EMC →
//! classifier → actions → per-port tx batches (flushed per batch); a miss
//! copies the packet into the bounded upcall queue (full → counted as lost).
//!
//! Commands are applied *after* each rx burst and before its packets are
//! looked up: so a packet injected after `flow_put`/`flow_del` returned is
//! always classified with that change applied.
//!
//! A packet the datapath drops (a miss, an empty action list) is simply
//! dropped: its frame goes back to its home (see `frame`); one freed during
//! an iteration is kept by the thread for its next allocations, with no
//! atomic (given back after `FLUSH_AFTER_IDLE` empty polls). An output that
//! is not a packet's last (flood, mirror) gets a copy in a frame of the
//! thread's own pool, not a fresh heap buffer.
//!
//! Counters are kept in locals and published to atomics once per batch.
//! An idle thread spins `IDLE_SPINS` empty iterations, then parks for up to
//! `IDLE_PARK`; the datapath unparks it when it queues a command or a test
//! injects a packet. (Real NIC back ends will want a tunable, like OVS's
//! `pmd-sleep-max`; on these shared 2-core machines sleeping when idle matters.)

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_queue::SegQueue;

use crate::actions::{self, Action, ActionSink};
use crate::classifier::Classifier;
use crate::emc::Emc;
use crate::flow::{FlowStats, Megaflow};
use crate::frame::{
    copy_packet, flush_thread_cache, keep_freed_frames, spread_chunk, Pool, PoolError,
};
use crate::key::{FlowKey, Tunnel};
use crate::parse::{self, Layers};
use crate::port::{Batch, Packet, Port, BURST};
use crate::upcall::{Upcall, UpcallQueue, UpcallReason};

const IDLE_SPINS: u32 = 2048;
/// Empty polls in a row after which the thread's cached frames go back to
/// their pools (see `frame`: a thread keeps frames it freed for reuse).
const FLUSH_AFTER_IDLE: u32 = 16;
const IDLE_PARK: Duration = Duration::from_millis(1);
/// Frames of a copy pool (one per polling thread, one for `execute`): 2 MiB
/// of address space, committed only as used; when every frame is out, copies
/// go to the heap.
pub const COPY_POOL_FRAMES: usize = 1024;
/// Bytes per copy-pool frame: headroom and a 1500-byte MTU frame with tags.
pub const COPY_POOL_CHUNK: usize = spread_chunk(2048);

/// The CPU's time-stamp counter (cycles at its nominal rate, as OVS counts
/// them); elsewhere nanoseconds since the first call.
fn cycles() -> u64 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: RDTSC has no preconditions on x86_64.
    return unsafe { std::arch::x86_64::_rdtsc() };
    #[cfg(not(target_arch = "x86_64"))]
    {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}

/// A pool for the copies one thread makes (see the module doc).
pub fn copy_pool() -> Result<Pool, PoolError> {
    Pool::new(COPY_POOL_FRAMES, COPY_POOL_CHUNK)
}

/// A port as the datapath holds it: its number, name and back end behind a
/// per-port lock (held for one batch at a time).
pub struct PortEntry {
    pub no: u32,
    pub name: String,
    pub kind: &'static str,
    pub port: Mutex<Box<dyn Port>>,
}

impl PortEntry {
    /// Locks the back end (a poisoned lock still gives access: ports keep no invariants across a panic).
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Box<dyn Port>> {
        self.port.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Every port by number (index), as a snapshot replaced whole when ports change.
pub type PortMap = Vec<Option<Arc<PortEntry>>>;

/// Control-path changes a polling thread applies between batches.
pub enum Command {
    Insert(Arc<Megaflow>),
    Remove(Arc<Megaflow>),
    /// Many inserts at once, shared by every thread (one command per put batch).
    InsertBatch(Arc<[Arc<Megaflow>]>),
    /// Many removals at once, shared by every thread (one command per delete batch).
    RemoveBatch(Arc<[Arc<Megaflow>]>),
    Flush,
    /// New port set: every port (for tx) and the ones this thread polls.
    Ports {
        all: Arc<PortMap>,
        rx: Vec<Arc<PortEntry>>,
    },
    /// Acknowledge: the thread stores this sequence number in `applied`.
    Sync(u64),
}

/// Counters of one polling thread (published once per batch).
#[derive(Debug, Default)]
pub struct PmdCounters {
    pub packets: AtomicU64,
    pub emc_hits: AtomicU64,
    pub megaflow_hits: AtomicU64,
    pub misses: AtomicU64,
    pub lost_upcalls: AtomicU64,
    pub parse_errors: AtomicU64,
    /// Packets output to a port that does not exist (any more).
    pub tx_dropped: AtomicU64,
    /// Nanoseconds spent processing non-empty batches.
    pub busy_ns: AtomicU64,
    /// Loop iterations (polls of all its ports), busy or idle.
    pub iterations: AtomicU64,
    /// CPU cycles (TSC) of iterations that moved packets, rx to tx, as OVS's "processing cycles".
    pub busy_cycles: AtomicU64,
    /// CPU cycles (TSC) of iterations that found nothing.
    pub idle_cycles: AtomicU64,
}

/// A snapshot of [`PmdCounters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PmdStats {
    pub packets: u64,
    pub emc_hits: u64,
    pub megaflow_hits: u64,
    pub misses: u64,
    pub lost_upcalls: u64,
    pub parse_errors: u64,
    pub tx_dropped: u64,
    pub busy_ns: u64,
    pub iterations: u64,
    pub busy_cycles: u64,
    pub idle_cycles: u64,
}

impl PmdStats {
    /// Adds `other` counter by counter (totals over threads).
    pub fn add(&mut self, other: &PmdStats) {
        self.packets += other.packets;
        self.emc_hits += other.emc_hits;
        self.megaflow_hits += other.megaflow_hits;
        self.misses += other.misses;
        self.lost_upcalls += other.lost_upcalls;
        self.parse_errors += other.parse_errors;
        self.tx_dropped += other.tx_dropped;
        self.busy_ns += other.busy_ns;
        self.iterations += other.iterations;
        self.busy_cycles += other.busy_cycles;
        self.idle_cycles += other.idle_cycles;
    }
}

impl PmdCounters {
    pub fn snapshot(&self) -> PmdStats {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        PmdStats {
            packets: l(&self.packets),
            emc_hits: l(&self.emc_hits),
            megaflow_hits: l(&self.megaflow_hits),
            misses: l(&self.misses),
            lost_upcalls: l(&self.lost_upcalls),
            parse_errors: l(&self.parse_errors),
            tx_dropped: l(&self.tx_dropped),
            busy_ns: l(&self.busy_ns),
            iterations: l(&self.iterations),
            busy_cycles: l(&self.busy_cycles),
            idle_cycles: l(&self.idle_cycles),
        }
    }
}

/// What the control path shares with one polling thread.
#[derive(Default)]
pub struct PmdShared {
    pub commands: SegQueue<Command>,
    pub counters: PmdCounters,
    /// Last `Sync` sequence number applied.
    pub applied: AtomicU64,
    pub stop: AtomicBool,
}

/// The datapath clock: milliseconds since `start`, plus one (0 means "never").
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    pub fn new() -> Self {
        Clock {
            start: Instant::now(),
        }
    }

    pub fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64 + 1
    }

    pub fn start(&self) -> Instant {
        self.start
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// Per-batch local counters, published at the end of the batch.
#[derive(Default)]
struct Local {
    packets: u64,
    emc_hits: u64,
    megaflow_hits: u64,
    misses: u64,
    lost: u64,
    parse_errors: u64,
}

/// Per-flow hits within one batch.
struct FlowAcc {
    stats: Arc<FlowStats>,
    packets: u64,
    bytes: u64,
    tcp_flags: u16,
}

/// Outputs of one batch, grouped per destination port.
#[derive(Default)]
pub struct TxBatches {
    /// (port number, its pending batch); a handful of ports per batch at most.
    pending: Vec<(u32, Batch)>,
    /// Empty batches kept for reuse.
    spare: Vec<Batch>,
}

impl TxBatches {
    fn push(&mut self, ports: &PortMap, port: u32, pkt: Packet, dropped: &mut u64) {
        let i = match self.pending.iter().position(|(p, _)| *p == port) {
            Some(i) => i,
            None => {
                self.pending
                    .push((port, self.spare.pop().unwrap_or_default()));
                self.pending.len() - 1
            }
        };
        let batch = &mut self.pending[i].1;
        batch.pkts.push(pkt);
        if batch.pkts.len() >= BURST {
            send(ports, port, batch, dropped);
        }
    }

    /// Sends every pending batch.
    pub fn flush(&mut self, ports: &PortMap, dropped: &mut u64) {
        for (port, mut batch) in self.pending.drain(..) {
            if !batch.is_empty() {
                send(ports, port, &mut batch, dropped);
            }
            self.spare.push(batch);
        }
    }
}

fn send(ports: &PortMap, port: u32, batch: &mut Batch, dropped: &mut u64) {
    match ports.get(port as usize).and_then(|p| p.as_ref()) {
        Some(entry) => {
            // A failing back end has counted its own errors; the batch is consumed either way.
            let _ = entry.lock().tx_burst(batch);
            batch.pkts.clear();
        }
        None => {
            // Output to a port that no longer exists: a drop, like OVS.
            *dropped += batch.len() as u64;
            batch.pkts.clear();
        }
    }
}

/// Where one packet's actions report outputs and userspace actions.
struct Sink<'a> {
    ports: &'a PortMap,
    tx: &'a mut TxBatches,
    upcalls: &'a UpcallQueue,
    /// Where copies for outputs other than the last go.
    copies: &'a Pool,
    key: &'a FlowKey,
    in_port: u32,
    /// Port of the list's final output: the packet buffer itself moves there.
    final_port: Option<u32>,
    /// The packet's tunnel metadata as the actions left it (copies carry it).
    tunnel: Tunnel,
    dropped: u64,
    lost: u64,
    queued: bool,
}

impl ActionSink for Sink<'_> {
    fn output(&mut self, port: u32, pkt: &[u8], last: bool) {
        if last {
            self.final_port = Some(port);
            return;
        }
        // Not the last action: the packet may still change, so this output gets a copy.
        let mut copy = copy_packet(self.copies, pkt);
        copy.tunnel = self.tunnel;
        self.tx.push(self.ports, port, copy, &mut self.dropped);
    }

    fn userspace(&mut self, cookie: u64, pkt: &[u8], _last: bool) {
        let up = Upcall {
            packet: pkt.to_vec(),
            key: *self.key,
            in_port: self.in_port,
            reason: UpcallReason::Userspace { cookie },
        };
        if !self.upcalls.push(up) {
            self.lost += 1;
        } else {
            self.queued = true;
        }
    }

    fn set_tunnel(&mut self, tunnel: Tunnel) {
        self.tunnel = tunnel;
    }
}

/// Runs `actions` on one packet from the slow path (`Datapath::execute`):
/// outputs are sent at once; returns the number of upcalls lost.
pub fn execute_one(
    ports: &PortMap,
    upcalls: &UpcallQueue,
    copies: &Pool,
    in_port: u32,
    packet: &[u8],
    actions: &[Action],
) -> u64 {
    let mut pkt = copy_packet(copies, packet);
    let mut key = FlowKey::default();
    let mut layers = parse::extract(pkt.data(), in_port, &mut key);
    let mut tx = TxBatches::default();
    let mut sink = Sink {
        ports,
        tx: &mut tx,
        upcalls,
        copies,
        key: &key,
        in_port,
        final_port: None,
        tunnel: Tunnel::default(),
        dropped: 0,
        lost: 0,
        queued: false,
    };
    actions::execute(actions, &mut pkt, &mut layers, &mut sink);
    if let Some(port) = sink.final_port.take() {
        sink.tx.push(ports, port, pkt, &mut sink.dropped);
    }
    let (mut dropped, lost, queued) = (sink.dropped, sink.lost, sink.queued);
    tx.flush(ports, &mut dropped);
    if queued {
        upcalls.notify();
    }
    lost
}

/// One polling thread's state; `poll_once` is the whole loop body, so
/// benchmarks can drive it without a thread.
pub struct Pmd {
    pub id: usize,
    emc: Emc,
    cls: Classifier,
    ports: Arc<PortMap>,
    rx_ports: Vec<Arc<PortEntry>>,
    shared: Arc<PmdShared>,
    upcalls: Arc<UpcallQueue>,
    clock: Clock,
    batch: Batch,
    copies: Pool,
    keys: Vec<FlowKey>,
    layers: Vec<Layers>,
    tx: TxBatches,
    acc: Vec<FlowAcc>,
    /// Polls in a row that found nothing.
    idle_polls: u32,
}

impl Pmd {
    pub fn new(
        id: usize,
        emc_entries: usize,
        shared: Arc<PmdShared>,
        upcalls: Arc<UpcallQueue>,
        clock: Clock,
    ) -> Result<Self, PoolError> {
        Ok(Pmd {
            id,
            emc: Emc::new(emc_entries),
            cls: Classifier::new(),
            ports: Arc::new(Vec::new()),
            rx_ports: Vec::new(),
            shared,
            upcalls,
            clock,
            batch: Batch::new(),
            copies: copy_pool()?,
            keys: vec![FlowKey::default(); BURST],
            layers: vec![Layers::default(); BURST],
            tx: TxBatches::default(),
            acc: Vec::with_capacity(BURST),
            idle_polls: 0,
        })
    }

    /// The pool this thread copies replicated packets into.
    pub fn copy_pool(&self) -> &Pool {
        &self.copies
    }

    /// Applies queued control commands.
    pub fn apply_commands(&mut self) {
        while let Some(cmd) = self.shared.commands.pop() {
            match cmd {
                Command::Insert(f) => {
                    if let Some(old) = self.cls.insert(f) {
                        old.kill();
                    }
                }
                Command::Remove(f) => {
                    self.cls.remove(&f);
                }
                Command::InsertBatch(flows) => {
                    for f in flows.iter() {
                        if let Some(old) = self.cls.insert(f.clone()) {
                            old.kill();
                        }
                    }
                }
                Command::RemoveBatch(flows) => {
                    for f in flows.iter() {
                        self.cls.remove(f);
                    }
                }
                Command::Flush => {
                    self.cls.clear();
                    self.emc.clear();
                }
                Command::Ports { all, rx } => {
                    self.ports = all;
                    self.rx_ports = rx;
                    // Frames kept for reuse may be of a port just removed: its pool can go.
                    flush_thread_cache();
                }
                Command::Sync(seq) => self.shared.applied.store(seq, Ordering::Release),
            }
        }
    }

    /// Polls each assigned port once; returns the number of packets processed.
    pub fn poll_once(&mut self) -> usize {
        let t0 = cycles();
        // Frames freed in this iteration are reused by the next, with no atomic.
        keep_freed_frames(true);
        self.apply_commands();
        let mut total = 0;
        for i in 0..self.rx_ports.len() {
            let entry = self.rx_ports[i].clone();
            // A failing back end counts its own errors; an error is an empty burst here.
            let n = entry.lock().rx_burst(&mut self.batch).unwrap_or(0);
            if n == 0 {
                continue;
            }
            self.apply_commands();
            let start = Instant::now();
            self.process_batch(&entry);
            let busy = start.elapsed().as_nanos() as u64;
            self.shared
                .counters
                .busy_ns
                .fetch_add(busy, Ordering::Relaxed);
            total += n;
        }
        let c = &self.shared.counters;
        c.iterations.fetch_add(1, Ordering::Relaxed);
        keep_freed_frames(false);
        let spent = cycles().wrapping_sub(t0);
        if total > 0 {
            self.idle_polls = 0;
        } else {
            self.idle_polls = self.idle_polls.saturating_add(1);
            if self.idle_polls == FLUSH_AFTER_IDLE {
                flush_thread_cache();
            }
        }
        if total > 0 {
            &c.busy_cycles
        } else {
            &c.idle_cycles
        }
        .fetch_add(spent, Ordering::Relaxed);
        total
    }

    /// Runs until `shared.stop` is set.
    pub fn run(&mut self) {
        while !self.shared.stop.load(Ordering::Acquire) {
            if self.poll_once() == 0 && self.idle_polls >= IDLE_SPINS {
                std::thread::park_timeout(IDLE_PARK);
            }
        }
        self.apply_commands();
    }

    fn process_batch(&mut self, entry: &Arc<PortEntry>) {
        let in_port = entry.no;
        let now = self.clock.now();
        let mut local = Local::default();
        // Extract every key first, so the lookups below run over a dense array.
        for ((pkt, key), layers) in self
            .batch
            .pkts
            .iter()
            .zip(self.keys.iter_mut())
            .zip(self.layers.iter_mut())
        {
            *layers = parse::extract(pkt.data(), in_port, key);
            key.tun_id = pkt.tunnel.id;
            key.tun_src = pkt.tunnel.src;
            key.tun_dst = pkt.tunnel.dst;
            local.parse_errors += u64::from(layers.error.is_some());
        }
        let mut sink = Sink {
            ports: &self.ports,
            tx: &mut self.tx,
            upcalls: &self.upcalls,
            copies: &self.copies,
            key: &self.keys[0],
            in_port,
            final_port: None,
            tunnel: Tunnel::default(),
            dropped: 0,
            lost: 0,
            queued: false,
        };
        for (i, mut pkt) in self.batch.pkts.drain(..).enumerate() {
            let key = &self.keys[i];
            local.packets += 1;
            let hash = self.emc.hash(key);
            let slot = match self.emc.find(hash, key) {
                Some(slot) => {
                    local.emc_hits += 1;
                    slot
                }
                None => match self.cls.lookup(key) {
                    Some(flow) => {
                        local.megaflow_hits += 1;
                        self.emc.insert(hash, key, flow)
                    }
                    None => {
                        local.misses += 1;
                        let up = Upcall {
                            packet: pkt.data().to_vec(),
                            key: *key,
                            in_port,
                            reason: UpcallReason::Miss,
                        };
                        if !self.upcalls.push(up) {
                            local.lost += 1;
                        } else {
                            sink.queued = true;
                        }
                        // Dropped: the frame goes home.
                        continue;
                    }
                },
            };
            let flow = self.emc.flow_at(slot);
            let stats = &flow.stats;
            let acc = match self.acc.iter().position(|a| Arc::ptr_eq(&a.stats, stats)) {
                Some(j) => &mut self.acc[j],
                None => {
                    self.acc.push(FlowAcc {
                        stats: stats.clone(),
                        packets: 0,
                        bytes: 0,
                        tcp_flags: 0,
                    });
                    self.acc.last_mut().expect("just pushed")
                }
            };
            acc.packets += 1;
            acc.bytes += pkt.len() as u64;
            acc.tcp_flags |= key.tcp_flags;
            sink.key = key;
            sink.tunnel = pkt.tunnel;
            actions::execute(&flow.actions, &mut pkt, &mut self.layers[i], &mut sink);
            // Without an output the packet is dropped here and its frame goes home.
            if let Some(port) = sink.final_port.take() {
                sink.tx.push(sink.ports, port, pkt, &mut sink.dropped);
            }
        }
        let (mut dropped, lost, queued) = (sink.dropped, sink.lost, sink.queued);
        local.lost += lost;
        self.tx.flush(&self.ports, &mut dropped);
        for a in self.acc.drain(..) {
            a.stats.add(a.packets, a.bytes, a.tcp_flags, now);
        }
        if queued {
            self.upcalls.notify();
        }
        let c = &self.shared.counters;
        c.packets.fetch_add(local.packets, Ordering::Relaxed);
        c.emc_hits.fetch_add(local.emc_hits, Ordering::Relaxed);
        c.megaflow_hits
            .fetch_add(local.megaflow_hits, Ordering::Relaxed);
        c.misses.fetch_add(local.misses, Ordering::Relaxed);
        c.lost_upcalls.fetch_add(local.lost, Ordering::Relaxed);
        c.parse_errors
            .fetch_add(local.parse_errors, Ordering::Relaxed);
        c.tx_dropped.fetch_add(dropped, Ordering::Relaxed);
    }
}

impl Drop for Pmd {
    fn drop(&mut self) {
        // Frames this loop kept for reuse go home (on the thread that ran it).
        flush_thread_cache();
    }
}
