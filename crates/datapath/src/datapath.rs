//! The datapath: polling threads, ports, the master megaflow table, upcalls.
//!
//! This is the one object a host (the napi binding, a benchmark) drives:
//! - **Ports**: `add_port` opens a back end and numbers it (lowest free number
//!   from 1); rx queues are spread over the polling threads round-robin in
//!   port-number order and reassigned whenever ports come and go.
//! - **Flow table**: `flow_put` (create and/or modify), `flow_get`,
//!   `flow_del`, `flow_dump`, `flow_flush`, and their batched forms
//!   (`flow_put_batch`, `flow_del_batch`, `flow_visit`). A megaflow is
//!   identified by its mask and masked key. The master table lives here
//!   behind a mutex touched only by control calls; each polling thread keeps
//!   its own classifier, fed through its command queue (see `pmd`). A batch
//!   of puts or deletes is one command per thread and one wake-up, not one
//!   per flow; puts never wait for the threads (a thread applies its queue
//!   after each rx burst and before looking its packets up, so a packet
//!   injected after `flow_put_batch` returned sees the flows).
//! - **Upcalls**: misses and `userspace` actions land in one bounded queue;
//!   `recv_upcalls` pops them in batches, `wait_upcalls` blocks for more.
//! - **Execute**: runs actions on a packet from the slow path, on the caller's
//!   thread (`execute_batch`: many packets under one lock).
//! - **Threads**: `set_pmd_cores` replaces the polling threads (new cores,
//!   new count) while running: ports, flows and flow counters stay, each new
//!   thread starts with every flow and an empty exact-match cache.
//!
//! Closing (or dropping) stops and joins the threads, then closes every port.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use foldhash::fast::RandomState;
use hashbrown::HashTable;

use crate::actions::Action;
use crate::flow::{FlowStats, FlowStatsSnapshot, Megaflow};
use crate::frame::{Pool, PoolError};
use crate::key::FlowKey;
use crate::pmd::{copy_pool, Clock, Command, Pmd, PmdShared, PmdStats, PortEntry, PortMap};
use crate::port::{DeviceState, NetDevice, Port, PortError, PortOptions, PortStats};
use crate::ports::open_port;
use crate::upcall::{Upcall, UpcallQueue, UPCALL_QUEUE_LEN};

/// How to build a datapath.
#[derive(Clone, Debug)]
pub struct DatapathConfig {
    /// Number of polling threads (0: none; only `execute` moves packets).
    pub threads: usize,
    /// Cores to pin the threads to, thread `i` on `cores[i % cores.len()]`; empty: no pinning.
    pub cores: Vec<usize>,
    /// Capacity of the upcall queue.
    pub upcall_queue_len: usize,
    /// Slots of each thread's exact-match cache.
    pub emc_entries: usize,
}

impl Default for DatapathConfig {
    fn default() -> Self {
        DatapathConfig {
            threads: 1,
            cores: Vec::new(),
            upcall_queue_len: UPCALL_QUEUE_LEN,
            emc_entries: crate::emc::EMC_ENTRIES,
        }
    }
}

/// Largest number of polling threads accepted.
pub const MAX_THREADS: usize = 64;

/// Errors of datapath operations. `code()` gives a stable identifier for hosts.
#[derive(Debug, thiserror::Error)]
pub enum DpError {
    /// A configuration value is out of range.
    #[error("invalid datapath configuration: {0}")]
    BadConfig(String),
    /// Pinning a polling thread to a core failed.
    #[error("cannot pin polling thread {thread} to core {core}: {source}")]
    Pin {
        thread: usize,
        core: usize,
        source: std::io::Error,
    },
    /// A polling thread could not be started.
    #[error("cannot start polling thread: {0}")]
    Spawn(std::io::Error),
    /// `flow_put` without `modify` found the flow already installed.
    #[error("flow already exists (put it with modify to change its actions)")]
    FlowExists,
    /// The flow is not installed (`flow_del`, or `flow_put` without `create`).
    #[error("flow not found")]
    FlowNotFound,
    /// No port has this number.
    #[error("no port number {0}")]
    NoSuchPort(u32),
    /// A port with this name already exists.
    #[error("a port named '{0}' already exists")]
    PortExists(String),
    /// The port back end refused.
    #[error(transparent)]
    Port(#[from] PortError),
    /// Memory for a frame pool could not be had.
    #[error(transparent)]
    Memory(#[from] PoolError),
    /// The datapath was closed.
    #[error("datapath is closed")]
    Closed,
}

impl DpError {
    /// Stable machine-readable code (the binding passes it to JavaScript).
    pub fn code(&self) -> &'static str {
        match self {
            DpError::BadConfig(_) => "DP_BAD_CONFIG",
            DpError::Pin { .. } => "DP_PIN_FAILED",
            DpError::Spawn(_) => "DP_SPAWN_FAILED",
            DpError::FlowExists => "DP_FLOW_EXISTS",
            DpError::FlowNotFound => "DP_FLOW_NOT_FOUND",
            DpError::NoSuchPort(_) => "DP_NO_SUCH_PORT",
            DpError::PortExists(_) => "DP_PORT_EXISTS",
            DpError::Port(PortError::Unsupported { .. }) => "DP_PORT_UNSUPPORTED",
            DpError::Port(PortError::UnknownType { .. }) => "DP_PORT_UNKNOWN_TYPE",
            DpError::Port(PortError::BadOption { .. }) => "DP_PORT_BAD_OPTION",
            DpError::Port(PortError::BadMtu { .. }) => "DP_PORT_BAD_MTU",
            DpError::Port(PortError::BadPacket(_)) => "DP_BAD_PACKET",
            DpError::Port(PortError::Closed) => "DP_PORT_CLOSED",
            DpError::Port(PortError::Io(_)) => "DP_PORT_IO",
            DpError::Port(PortError::BadName { .. }) => "DP_PORT_BAD_NAME",
            DpError::Port(e @ PortError::Os { .. }) if e.lacks_privilege() => {
                "DP_PORT_NO_PRIVILEGE"
            }
            // A pool's memory that cannot be mapped is an OS refusal too.
            DpError::Port(PortError::Os { .. } | PortError::Pool(_)) => "DP_PORT_OS",
            DpError::Memory(_) => "DP_NO_MEMORY",
            DpError::Closed => "DP_CLOSED",
        }
    }
}

/// What `flow_put` may do (OVS's `DPIF_FP_CREATE` / `MODIFY` / `ZERO_STATS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PutFlags {
    /// Install the flow if it is absent.
    pub create: bool,
    /// Replace the actions if it is present.
    pub modify: bool,
    /// Zero the counters of a modified flow.
    pub zero_stats: bool,
}

impl PutFlags {
    pub const CREATE: PutFlags = PutFlags {
        create: true,
        modify: false,
        zero_stats: false,
    };
    pub const MODIFY: PutFlags = PutFlags {
        create: false,
        modify: true,
        zero_stats: false,
    };
    pub const CREATE_OR_MODIFY: PutFlags = PutFlags {
        create: true,
        modify: true,
        zero_stats: false,
    };
}

/// One flow as dumped.
#[derive(Clone, Debug)]
pub struct FlowInfo {
    pub key: FlowKey,
    pub mask: FlowKey,
    pub actions: Box<[Action]>,
    pub stats: FlowStatsSnapshot,
}

/// One port as listed.
#[derive(Clone, Debug)]
pub struct PortInfo {
    pub no: u32,
    pub name: String,
    pub kind: &'static str,
    /// The polling thread that receives on it, if any.
    pub thread: Option<usize>,
    pub stats: PortStats,
    /// What is wrong with the port now (`Port::error`).
    pub error: Option<String>,
}

/// One polling thread's counters.
#[derive(Clone, Debug)]
pub struct ThreadInfo {
    pub id: usize,
    pub core: Option<usize>,
    pub ports: Vec<u32>,
    pub stats: PmdStats,
}

/// Datapath-wide counters.
#[derive(Clone, Debug)]
pub struct DatapathStats {
    pub flows: usize,
    pub upcalls_queued: usize,
    /// Upcalls dropped because the queue was full (threads and `execute`).
    pub lost_upcalls: u64,
    pub threads: Vec<ThreadInfo>,
    /// Final counters of the threads `set_pmd_cores` replaced, summed: add
    /// them to the running threads' for totals that never go back.
    pub retired: PmdStats,
    pub ports: Vec<PortInfo>,
}

struct PmdHandle {
    shared: Arc<PmdShared>,
    thread: Option<JoinHandle<()>>,
    core: Option<usize>,
    rx: Vec<u32>,
}

struct State {
    ports: BTreeMap<u32, Arc<PortEntry>>,
    port_map: Arc<PortMap>,
    flows: FlowTable,
    pmds: Vec<PmdHandle>,
    sync_seq: u64,
    closed: bool,
    /// Lost upcalls from `execute` (threads count their own).
    exec_lost: u64,
    /// Final counters of the threads replaced by `set_pmd_cores`, summed.
    retired: PmdStats,
    /// Slots of each thread's exact-match cache (for threads started later).
    emc_entries: usize,
}

/// The fast path. All methods take `&self`; control calls serialise on one mutex.
pub struct Datapath {
    state: Mutex<State>,
    upcalls: Arc<UpcallQueue>,
    /// Where `execute` copies the slow path's packets.
    copies: Pool,
    clock: Clock,
}

impl Datapath {
    /// Starts `config.threads` polling threads (pinned if `config.cores` is set).
    pub fn new(config: &DatapathConfig) -> Result<Self, DpError> {
        if config.threads > MAX_THREADS {
            return Err(DpError::BadConfig(format!(
                "threads must be at most {MAX_THREADS}, got {}",
                config.threads
            )));
        }
        if config.upcall_queue_len == 0 || config.emc_entries == 0 {
            return Err(DpError::BadConfig(
                "upcall_queue_len and emc_entries must be positive".into(),
            ));
        }
        let upcalls = Arc::new(UpcallQueue::new(config.upcall_queue_len));
        let clock = Clock::new();
        let dp = Datapath {
            state: Mutex::new(State {
                ports: BTreeMap::new(),
                port_map: Arc::new(Vec::new()),
                flows: FlowTable::default(),
                pmds: Vec::new(),
                sync_seq: 0,
                closed: false,
                exec_lost: 0,
                retired: PmdStats::default(),
                emc_entries: config.emc_entries,
            }),
            upcalls,
            copies: copy_pool()?,
            clock,
        };
        for id in 0..config.threads {
            let core = (!config.cores.is_empty()).then(|| config.cores[id % config.cores.len()]);
            let handle = dp.spawn(id, core, config.emc_entries)?;
            dp.lock().pmds.push(handle);
        }
        Ok(dp)
    }

    fn spawn(
        &self,
        id: usize,
        core: Option<usize>,
        emc_entries: usize,
    ) -> Result<PmdHandle, DpError> {
        let shared = Arc::new(PmdShared::default());
        let mut pmd = Pmd::new(
            id,
            emc_entries,
            shared.clone(),
            self.upcalls.clone(),
            self.clock,
        )?;
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(format!("nvs-pmd{id}"))
            .spawn(move || {
                let pinned = match core {
                    Some(c) => pin_to_core(c),
                    None => Ok(()),
                };
                let ok = pinned.is_ok();
                let _ = ready_tx.send(pinned);
                if ok {
                    pmd.run();
                }
            })
            .map_err(DpError::Spawn)?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(PmdHandle {
                shared,
                thread: Some(thread),
                core,
                rx: Vec::new(),
            }),
            Ok(Err(source)) => {
                let _ = thread.join();
                Err(DpError::Pin {
                    thread: id,
                    core: core.unwrap_or(0),
                    source,
                })
            }
            Err(_) => Err(DpError::Spawn(std::io::Error::other(
                "polling thread died at start",
            ))),
        }
    }

    /// Replaces the polling threads: one per entry of `cores`, pinned to it,
    /// or one unpinned thread when `cores` is empty (OVS re-creates its PMD
    /// threads when `pmd-cpu-mask` changes). Ports, flows and counters of
    /// flows and ports are kept; each new thread starts with every flow in
    /// its classifier and an empty exact-match cache.
    ///
    /// The new threads are started (and pinned) first: if one cannot be, they
    /// are stopped again and the old ones go on as before. Otherwise the old
    /// threads finish the batch they are in (its packets go out) and stop,
    /// then the rx ports are spread over the new ones; packets that arrive
    /// meanwhile wait in their port's rx queue. Per-thread counters start
    /// from zero; the old threads' final counters go to `DatapathStats::retired`.
    pub fn set_pmd_cores(&self, cores: &[usize]) -> Result<(), DpError> {
        if cores.len() > MAX_THREADS {
            return Err(DpError::BadConfig(format!(
                "threads must be at most {MAX_THREADS}, got {}",
                cores.len()
            )));
        }
        let mut st = self.open_state()?;
        let wanted: Vec<Option<usize>> = if cores.is_empty() {
            vec![None]
        } else {
            cores.iter().map(|&c| Some(c)).collect()
        };
        let mut fresh = Vec::with_capacity(wanted.len());
        for (id, core) in wanted.into_iter().enumerate() {
            match self.spawn(id, core, st.emc_entries) {
                Ok(h) => fresh.push(h),
                Err(e) => {
                    stop_threads(&mut fresh);
                    return Err(e);
                }
            }
        }
        // Every flow, queued before any port: a new thread classifies nothing without them.
        let flows: Arc<[Arc<Megaflow>]> = st.flows.iter().cloned().collect();
        for h in &fresh {
            h.shared.commands.push(Command::InsertBatch(flows.clone()));
        }
        let mut old = std::mem::replace(&mut st.pmds, fresh);
        stop_threads(&mut old);
        for p in &old {
            let final_counts = p.shared.counters.snapshot();
            st.retired.add(&final_counts);
        }
        reassign(&mut st);
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn open_state(&self) -> Result<MutexGuard<'_, State>, DpError> {
        let st = self.lock();
        if st.closed {
            return Err(DpError::Closed);
        }
        Ok(st)
    }

    /// Opens a port of type `kind`; returns its number.
    pub fn add_port(&self, name: &str, kind: &str, options: &PortOptions) -> Result<u32, DpError> {
        self.add_port_as(name, kind, options, None)
    }

    /// Opens a port as `add_port` does, numbered `wanted` when that number
    /// is free (OVS's dummy datapath numbers ports after their names, and
    /// scripts written for it rely on that), else the lowest free number.
    pub fn add_port_as(
        &self,
        name: &str,
        kind: &str,
        options: &PortOptions,
        wanted: Option<u32>,
    ) -> Result<u32, DpError> {
        let mut st = self.open_state()?;
        if st.ports.values().any(|p| p.name == name) {
            return Err(DpError::PortExists(name.to_string()));
        }
        let port = open_port(kind, name, options)?;
        let no = wanted
            .filter(|n| *n != 0 && !st.ports.contains_key(n))
            .or_else(|| (1..).find(|n| !st.ports.contains_key(n)))
            .expect("fewer than u32::MAX ports");
        let entry = Arc::new(PortEntry {
            no,
            name: name.to_string(),
            kind: port.kind(),
            port: Mutex::new(port),
        });
        st.ports.insert(no, entry);
        reassign(&mut st);
        Ok(no)
    }

    /// Closes port `no` once no polling thread uses it any more.
    pub fn remove_port(&self, no: u32) -> Result<(), DpError> {
        let mut st = self.open_state()?;
        let entry = st.ports.remove(&no).ok_or(DpError::NoSuchPort(no))?;
        reassign(&mut st);
        sync(&mut st);
        entry.lock().close();
        Ok(())
    }

    /// The MAC address of port `no`'s device, for back ends that have one (tap).
    pub fn port_mac(&self, no: u32) -> Result<Option<[u8; 6]>, DpError> {
        self.with_port(no, |p| Ok(p.mac()))
    }

    /// How port `no` reaches its device (Interface.status); empty for most back ends.
    pub fn port_status(&self, no: u32) -> Result<PortOptions, DpError> {
        self.with_port(no, |p| Ok(p.status()))
    }

    /// Sets the MTU of port `no`'s device (ports with a kernel device: tap).
    pub fn set_port_mtu(&self, no: u32, mtu: u32) -> Result<(), DpError> {
        Ok(self.port_device(no)?.set_mtu(mtu)?)
    }

    /// The MTU and link state of port `no`'s device (ports with a kernel device: tap).
    pub fn port_device_state(&self, no: u32) -> Result<DeviceState, DpError> {
        Ok(self.port_device(no)?.state()?)
    }

    /// Port `no`'s device handle: the port's lock is held only to take it, so
    /// the device calls made with it never keep the polling thread waiting.
    fn port_device(&self, no: u32) -> Result<Box<dyn NetDevice>, DpError> {
        self.with_port(no, |p| p.device())
    }

    /// Runs `f` on port `no` under its lock, the datapath's own lock released
    /// first (a device call may take a while; other control calls go on).
    fn with_port<T>(
        &self,
        no: u32,
        f: impl FnOnce(&mut dyn Port) -> Result<T, PortError>,
    ) -> Result<T, DpError> {
        let entry = {
            let st = self.open_state()?;
            Arc::clone(st.ports.get(&no).ok_or(DpError::NoSuchPort(no))?)
        };
        let mut port = entry.lock();
        Ok(f(port.as_mut())?)
    }

    /// Every port with its counters.
    pub fn ports(&self) -> Vec<PortInfo> {
        let st = self.lock();
        port_infos(&st)
    }

    /// Installs or changes a megaflow; `key` is masked here.
    pub fn flow_put(
        &self,
        key: &FlowKey,
        mask: &FlowKey,
        actions: Box<[Action]>,
        flags: PutFlags,
    ) -> Result<(), DpError> {
        let op = FlowPutOp {
            key: *key,
            mask: *mask,
            actions,
            flags,
        };
        self.flow_put_batch(std::iter::once(op))?.remove(0)
    }

    /// Installs or changes megaflows; one result per operation, in order.
    /// One lock, and one command and wake-up per polling thread for the
    /// whole batch; does not wait for the threads (see the module doc).
    pub fn flow_put_batch(
        &self,
        ops: impl IntoIterator<Item = FlowPutOp>,
    ) -> Result<Vec<Result<(), DpError>>, DpError> {
        let mut st = self.open_state()?;
        let mut inserted = Vec::new();
        let results = ops
            .into_iter()
            .map(|op| put_one(&mut st.flows, op, &mut inserted))
            .collect();
        if !inserted.is_empty() {
            let batch: Arc<[Arc<Megaflow>]> = inserted.into();
            broadcast(&st, || Command::InsertBatch(batch.clone()));
        }
        Ok(results)
    }

    /// The flow with this mask and (masked) key.
    pub fn flow_get(&self, key: &FlowKey, mask: &FlowKey) -> Option<FlowInfo> {
        let st = self.lock();
        st.flows
            .get(&crate::flow::mask_key(key, mask), mask)
            .map(|f| flow_info(f))
    }

    /// Deletes a flow; returns its final counters.
    pub fn flow_del(&self, key: &FlowKey, mask: &FlowKey) -> Result<FlowInfo, DpError> {
        self.flow_del_batch(&[(*key, *mask)])?.remove(0)
    }

    /// Deletes flows given as (key, mask); one result per flow, each with the
    /// flow's final counters. Waits once for the polling threads to let go of
    /// all of them (so the counters are final), not once per flow.
    pub fn flow_del_batch(
        &self,
        flows: &[(FlowKey, FlowKey)],
    ) -> Result<Vec<Result<FlowInfo, DpError>>, DpError> {
        let mut st = self.open_state()?;
        let removed: Vec<Option<Arc<Megaflow>>> = flows
            .iter()
            .map(|(key, mask)| {
                let flow = st.flows.remove(&crate::flow::mask_key(key, mask), mask)?;
                flow.kill();
                Some(flow)
            })
            .collect();
        let gone: Arc<[Arc<Megaflow>]> = removed.iter().flatten().cloned().collect();
        if !gone.is_empty() {
            broadcast(&st, || Command::RemoveBatch(gone.clone()));
            sync(&mut st);
        }
        Ok(removed
            .into_iter()
            .map(|f| f.map(|f| flow_info(&f)).ok_or(DpError::FlowNotFound))
            .collect())
    }

    /// Every flow with its counters.
    pub fn flow_dump(&self) -> Vec<FlowInfo> {
        let st = self.lock();
        st.flows.iter().map(|f| flow_info(f)).collect()
    }

    /// Calls `f` with every flow's (masked) key, mask and counters, under
    /// the lock and without copying actions: what a stats dump needs.
    pub fn flow_visit(&self, mut f: impl FnMut(&FlowKey, &FlowKey, FlowStatsSnapshot)) {
        let st = self.lock();
        for flow in st.flows.iter() {
            f(&flow.key, &flow.mask, flow.stats.snapshot());
        }
    }

    /// Number of installed megaflows.
    pub fn flow_count(&self) -> usize {
        self.lock().flows.len()
    }

    /// Deletes every flow.
    pub fn flow_flush(&self) -> Result<(), DpError> {
        let mut st = self.open_state()?;
        for f in st.flows.iter() {
            f.kill();
        }
        st.flows.clear();
        broadcast(&st, || Command::Flush);
        sync(&mut st);
        Ok(())
    }

    /// Runs `actions` on `packet` as if received on `in_port`, on the caller's thread.
    pub fn execute(&self, in_port: u32, packet: &[u8], actions: &[Action]) -> Result<(), DpError> {
        self.execute_batch(std::iter::once((in_port, packet, actions)))?
            .remove(0)
    }

    /// Runs each `(in_port, packet, actions)` as `execute` does, under one
    /// lock; one result per packet, in order.
    pub fn execute_batch<'a>(
        &self,
        items: impl IntoIterator<Item = (u32, &'a [u8], &'a [Action])>,
    ) -> Result<Vec<Result<(), DpError>>, DpError> {
        let mut st = self.open_state()?;
        let ports = st.port_map.clone();
        let mut lost = 0;
        let results = items
            .into_iter()
            .map(|(in_port, packet, actions)| {
                if in_port != 0 && !st.ports.contains_key(&in_port) {
                    return Err(DpError::NoSuchPort(in_port));
                }
                lost += crate::pmd::execute_one(
                    &ports,
                    &self.upcalls,
                    &self.copies,
                    in_port,
                    packet,
                    actions,
                );
                Ok(())
            })
            .collect();
        st.exec_lost += lost;
        Ok(results)
    }

    /// Pops up to `max` upcalls.
    pub fn recv_upcalls(&self, max: usize) -> Vec<Upcall> {
        let mut out = Vec::new();
        self.upcalls.pop_batch(max, &mut out);
        out
    }

    /// Pops up to `max` upcalls into `out`; returns how many.
    pub fn recv_upcalls_into(&self, max: usize, out: &mut Vec<Upcall>) -> usize {
        self.upcalls.pop_batch(max, out)
    }

    /// Blocks until an upcall is queued or `timeout` passes (may return early).
    pub fn wait_upcalls(&self, timeout: Duration) {
        self.upcalls.wait(timeout);
    }

    /// Makes `packet` arrive on port `no` (back ends with `inject`, e.g. dummy).
    pub fn port_inject(&self, no: u32, packets: &[&[u8]]) -> Result<(), DpError> {
        let st = self.open_state()?;
        let entry = st.ports.get(&no).ok_or(DpError::NoSuchPort(no))?;
        {
            let mut port = entry.lock();
            for p in packets {
                port.inject(p)?;
            }
        }
        // Wake the thread that polls it, which may be parked while idle.
        if let Some(pmd) = st.pmds.iter().find(|p| p.rx.contains(&no)) {
            if let Some(t) = &pmd.thread {
                t.thread().unpark();
            }
        }
        Ok(())
    }

    /// Takes up to `max` packets sent out of port `no` (back ends with `drain`).
    pub fn port_drain(&self, no: u32, max: usize) -> Result<Vec<Vec<u8>>, DpError> {
        self.with_port(no, |p| p.drain(max))
    }

    /// Counters of the whole datapath, each thread and each port.
    pub fn stats(&self) -> DatapathStats {
        let st = self.lock();
        let threads: Vec<ThreadInfo> = st
            .pmds
            .iter()
            .enumerate()
            .map(|(id, p)| ThreadInfo {
                id,
                core: p.core,
                ports: p.rx.clone(),
                stats: p.shared.counters.snapshot(),
            })
            .collect();
        DatapathStats {
            flows: st.flows.len(),
            upcalls_queued: self.upcalls.len(),
            lost_upcalls: st.exec_lost
                + st.retired.lost_upcalls
                + threads.iter().map(|t| t.stats.lost_upcalls).sum::<u64>(),
            threads,
            retired: st.retired,
            ports: port_infos(&st),
        }
    }

    /// Milliseconds since the datapath started (the clock of `FlowStatsSnapshot::used`, which adds 1).
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Stops and joins the polling threads, then closes every port. Idempotent.
    pub fn close(&self) {
        let mut st = self.lock();
        if st.closed {
            return;
        }
        st.closed = true;
        stop_threads(&mut st.pmds);
        for entry in st.ports.values() {
            entry.lock().close();
        }
        st.ports.clear();
        st.port_map = Arc::new(Vec::new());
        st.flows.clear();
    }
}

/// One operation of `flow_put_batch`.
#[derive(Debug)]
pub struct FlowPutOp {
    /// The match (masked on insertion).
    pub key: FlowKey,
    pub mask: FlowKey,
    pub actions: Box<[Action]>,
    pub flags: PutFlags,
}

/// The master megaflow table: each flow once, found by (masked key, mask)
/// without storing that pair a second time as a map key.
#[derive(Default)]
struct FlowTable {
    table: HashTable<Arc<Megaflow>>,
    state: RandomState,
}

impl FlowTable {
    fn hash(&self, key: &FlowKey, mask: &FlowKey) -> u64 {
        let mut h = self.state.build_hasher();
        h.write(key.as_bytes());
        h.write(mask.as_bytes());
        h.finish()
    }

    /// The flow with this masked key and mask.
    fn get(&self, key: &FlowKey, mask: &FlowKey) -> Option<&Arc<Megaflow>> {
        self.table.find(self.hash(key, mask), |f| {
            f.key.words() == key.words() && f.mask.words() == mask.words()
        })
    }

    /// Inserts `flow`, replacing (and returning) the one with its match.
    fn insert(&mut self, flow: Arc<Megaflow>) -> Option<Arc<Megaflow>> {
        let hash = self.hash(&flow.key, &flow.mask);
        let same = |f: &Arc<Megaflow>| {
            f.key.words() == flow.key.words() && f.mask.words() == flow.mask.words()
        };
        if let Some(slot) = self.table.find_mut(hash, same) {
            return Some(std::mem::replace(slot, flow));
        }
        let state = &self.state;
        self.table.insert_unique(hash, flow, |f| {
            let mut h = state.build_hasher();
            h.write(f.key.as_bytes());
            h.write(f.mask.as_bytes());
            h.finish()
        });
        None
    }

    fn remove(&mut self, key: &FlowKey, mask: &FlowKey) -> Option<Arc<Megaflow>> {
        let hash = self.hash(key, mask);
        self.table
            .find_entry(hash, |f| {
                f.key.words() == key.words() && f.mask.words() == mask.words()
            })
            .ok()
            .map(|e| e.remove().0)
    }

    fn len(&self) -> usize {
        self.table.len()
    }

    fn iter(&self) -> impl Iterator<Item = &Arc<Megaflow>> {
        self.table.iter()
    }

    fn clear(&mut self) {
        self.table.clear();
    }
}

/// One put of a batch: updates the master table, collects what the threads must insert.
fn put_one(
    flows: &mut FlowTable,
    op: FlowPutOp,
    inserted: &mut Vec<Arc<Megaflow>>,
) -> Result<(), DpError> {
    let key = crate::flow::mask_key(&op.key, &op.mask);
    let stats = match flows.get(&key, &op.mask) {
        Some(_) if !op.flags.modify => return Err(DpError::FlowExists),
        None if !op.flags.create => return Err(DpError::FlowNotFound),
        Some(old) => {
            // Dead first: from here on no EMC hit may use the old actions.
            old.kill();
            if op.flags.zero_stats {
                old.stats.clear();
            }
            old.stats.clone()
        }
        None => Arc::new(FlowStats::default()),
    };
    let flow = Arc::new(Megaflow::new(&key, &op.mask, op.actions, stats));
    flows.insert(flow.clone());
    inserted.push(flow);
    Ok(())
}

impl Drop for Datapath {
    fn drop(&mut self) {
        self.close();
    }
}

fn flow_info(f: &Megaflow) -> FlowInfo {
    FlowInfo {
        key: f.key,
        mask: f.mask,
        actions: f.actions.clone(),
        stats: f.stats.snapshot(),
    }
}

fn port_infos(st: &State) -> Vec<PortInfo> {
    st.ports
        .values()
        .map(|p| {
            let port = p.lock();
            PortInfo {
                no: p.no,
                name: p.name.clone(),
                kind: p.kind,
                thread: st.pmds.iter().position(|t| t.rx.contains(&p.no)),
                stats: port.stats(),
                error: port.error(),
            }
        })
        .collect()
}

/// Tells every thread of `pmds` to stop, then joins them (each finishes the batch it is in).
fn stop_threads(pmds: &mut [PmdHandle]) {
    for p in pmds.iter() {
        p.shared.stop.store(true, Ordering::Release);
    }
    for p in pmds.iter_mut() {
        if let Some(t) = p.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// Sends a command to every polling thread and wakes it.
fn broadcast(st: &State, mut make: impl FnMut() -> Command) {
    for p in &st.pmds {
        p.shared.commands.push(make());
        if let Some(t) = &p.thread {
            t.thread().unpark();
        }
    }
}

/// Waits until every polling thread has applied the commands sent so far.
fn sync(st: &mut State) {
    st.sync_seq += 1;
    let seq = st.sync_seq;
    broadcast(st, || Command::Sync(seq));
    for p in &st.pmds {
        while p.shared.applied.load(Ordering::Acquire) < seq {
            match &p.thread {
                Some(t) if !t.is_finished() => {
                    t.thread().unpark();
                    std::thread::sleep(Duration::from_micros(20));
                }
                _ => break,
            }
        }
    }
}

/// Round-robin assignment of rx ports to threads, in port-number order; pushes
/// the new port set to every thread.
fn reassign(st: &mut State) {
    let max = st.ports.keys().next_back().copied().unwrap_or(0) as usize;
    let mut map: PortMap = vec![None; max + 1];
    for (no, e) in &st.ports {
        map[*no as usize] = Some(e.clone());
    }
    let map = Arc::new(map);
    st.port_map = map.clone();
    let n = st.pmds.len();
    if n == 0 {
        return;
    }
    let mut rx: Vec<Vec<Arc<PortEntry>>> = vec![Vec::new(); n];
    for (i, e) in st.ports.values().enumerate() {
        rx[i % n].push(e.clone());
    }
    for (p, rx) in st.pmds.iter_mut().zip(rx) {
        p.rx = rx.iter().map(|e| e.no).collect();
        p.shared.commands.push(Command::Ports {
            all: map.clone(),
            rx,
        });
        if let Some(t) = &p.thread {
            t.thread().unpark();
        }
    }
}

/// Pins the calling thread to `core`.
fn pin_to_core(core: usize) -> Result<(), std::io::Error> {
    if core >= libc::CPU_SETSIZE as usize {
        return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: cpu_set_t is plain bits, valid when zeroed; CPU_SET writes inside
    // it for core < CPU_SETSIZE (checked above); sched_setaffinity(0, …) only
    // reads the set we pass with its exact size.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
