//! napi-rs binding of the nvs datapath: a thin translation layer, no logic.
//!
//! Binary encodings cross unchanged: keys and masks are raw `FlowKey` bytes
//! (layout published by `flowKeyLayout()`), actions are the TLV list of
//! `nvs_datapath::actions`. Errors are thrown with a stable `code` (the
//! `DpError`/`ActionError` codes, or `DP_BAD_KEY`/`DP_BAD_ARGUMENT` for
//! malformed arguments); per-flow errors of batched flow calls are returned.
//!
//! Flows, executions and upcalls cross only in their record forms, one
//! Buffer per batch (`flowPut`, `flowDel`, `flowDump`, `execute`,
//! `recvUpcalls`, `onUpcalls`): the layouts and their codecs are
//! `nvs_datapath::records`, mirrored once in `packages/datapath/src/raw.ts`.
//! `onUpcalls(cb)` starts one bridge thread that waits on the upcall queue
//! and makes one non-blocking call of a weak thread-safe function per batch
//! (a full call queue drops the batch and counts it in `bridgeLostUpcalls`).
//! Threads stop on `close()` and, failing that, in an env cleanup hook.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::CleanupEnvHook;
use napi_derive::napi;

use nvs_datapath::actions::{self, Action};
use nvs_datapath::datapath::{self as dp, DatapathConfig, DpError, FlowPutOp, PutFlags};
use nvs_datapath::key::FlowKey;
use nvs_datapath::layout::{self, KEY_FIELDS};
use nvs_datapath::records::{
    self, encode_flow, encode_stats, encode_upcall, RecordError, StatsRecord, FLOW_HEADER,
    PUT_CREATE, PUT_MODIFY, PUT_ZERO_STATS, STATS_RECORD, UPCALL_HEADER,
};
use nvs_datapath::upcall::Upcall;

/// Upcalls per bridge call (as OVS's handler threads read them).
const UPCALL_BATCH: usize = 64;
/// Bridge calls waiting for the JS thread before the bridge drops batches.
const BRIDGE_QUEUE: usize = 64;

/// Errors thrown to JavaScript carry a string `code` (napi's error status).
fn fail(code: &str, message: impl ToString) -> Error<String> {
    Error::new(code.to_string(), message)
}

fn dp_err(e: DpError) -> Error<String> {
    fail(e.code(), e)
}

fn key_arg(what: &str, b: &[u8]) -> Result<FlowKey, String> {
    layout::key_from_bytes(b).ok_or_else(|| {
        fail(
            "DP_BAD_KEY",
            format!(
                "{what} must be {} bytes (a FlowKey), got {}",
                layout::KEY_SIZE,
                b.len()
            ),
        )
    })
}

fn actions_arg(b: &[u8]) -> Result<Vec<Action>, String> {
    actions::decode(b).map_err(|e| fail(e.code(), e))
}

/// One field of the flow key layout.
#[napi(object)]
pub struct KeyFieldInfo {
    pub name: String,
    pub offset: u32,
    pub size: u32,
    /// "uint" (machine byte order), "bytes" (network order) or "pad".
    pub kind: String,
}

/// The flow key layout: every field in memory order (the source of truth for the TS encoder).
#[napi]
pub fn flow_key_layout() -> Vec<KeyFieldInfo> {
    KEY_FIELDS
        .iter()
        .map(|f| KeyFieldInfo {
            name: f.name.into(),
            offset: f.offset as u32,
            size: f.size as u32,
            kind: f.kind.name().into(),
        })
        .collect()
}

/// Size of an encoded flow key in bytes.
#[napi]
pub fn flow_key_size() -> u32 {
    layout::KEY_SIZE as u32
}

/// Decodes a key and returns each field as text read from the Rust struct
/// (integers decimal, byte arrays hex): for round-trip tests.
#[napi]
pub fn flow_key_debug(key: Buffer) -> Result<BTreeMap<String, String>, String> {
    let key = key_arg("key", &key)?;
    Ok(layout::field_texts(&key)
        .into_iter()
        .map(|(n, v)| (n.to_string(), v))
        .collect())
}

/// Decodes an action list and encodes it again (for round-trip tests).
#[napi]
pub fn actions_round_trip(actions: Buffer) -> Result<Buffer, String> {
    Ok(actions::encode(&actions_arg(&actions)?).into())
}

/// Decodes an action list into its Rust debug form (for tests and traces).
#[napi]
pub fn actions_debug(actions: Buffer) -> Result<String, String> {
    Ok(format!("{:?}", actions_arg(&actions)?))
}

/// Extracts the flow key of a packet (as the polling threads would).
#[napi]
pub fn extract_key(packet: Buffer, in_port: u32) -> Buffer {
    let mut key = FlowKey::default();
    nvs_datapath::parse::extract(&packet, in_port, &mut key);
    key.as_bytes().to_vec().into()
}

#[napi(object)]
pub struct DatapathOptions {
    /// Polling threads (default 1; 0: none, only `execute` moves packets).
    pub threads: Option<u32>,
    /// Cores to pin threads to (thread i on cores[i % len]); default: no pinning.
    pub cores: Option<Vec<u32>>,
    /// Upcall queue capacity (default 4096).
    pub upcall_queue_len: Option<u32>,
    /// Exact-match cache slots per thread (default 8192).
    pub emc_entries: Option<u32>,
}

/// The state of a port's device, as `ip link` shows it.
#[napi(object)]
pub struct DeviceStateJs {
    pub mtu: u32,
    /// Administratively up (`ip link set dev X up`).
    pub admin_up: bool,
    /// Up with carrier: frames can pass.
    pub carrier: bool,
}

/// A failed operation of a raw batch (operations not listed succeeded).
#[napi(object)]
pub struct FailedOp {
    /// Position of the operation in the batch.
    pub index: u32,
    pub code: String,
    pub message: String,
}

/// The outcome of `flowDel`.
#[napi(object)]
pub struct RawDelResult {
    /// One `STATS_RECORD`-byte record per flow (zero for a flow not found).
    pub stats: Buffer,
    pub failed: Vec<FailedOp>,
}

#[napi(object)]
pub struct PortStatsJs {
    pub port_no: u32,
    pub name: String,
    #[napi(js_name = "type")]
    pub kind: String,
    /// Polling thread receiving on it, if any.
    pub thread: Option<u32>,
    pub rx_packets: i64,
    pub rx_bytes: i64,
    pub rx_dropped: i64,
    pub rx_errors: i64,
    pub tx_packets: i64,
    pub tx_bytes: i64,
    pub tx_dropped: i64,
    pub tx_errors: i64,
    /// What is wrong with the port now, for Interface.error.
    pub error: Option<String>,
}

#[napi(object)]
pub struct ThreadStatsJs {
    pub id: u32,
    pub core: Option<u32>,
    pub ports: Vec<u32>,
    pub packets: i64,
    pub emc_hits: i64,
    pub megaflow_hits: i64,
    pub misses: i64,
    pub lost_upcalls: i64,
    pub parse_errors: i64,
    pub tx_dropped: i64,
    pub busy_ns: i64,
    pub iterations: i64,
    pub busy_cycles: i64,
    pub idle_cycles: i64,
}

/// Counters of polling threads without a thread (the sum over replaced ones).
#[napi(object)]
pub struct PmdCountersJs {
    pub packets: i64,
    pub emc_hits: i64,
    pub megaflow_hits: i64,
    pub misses: i64,
    pub lost_upcalls: i64,
    pub parse_errors: i64,
    pub tx_dropped: i64,
    pub busy_ns: i64,
    pub iterations: i64,
    pub busy_cycles: i64,
    pub idle_cycles: i64,
}

#[napi(object)]
pub struct DatapathStatsJs {
    pub flows: u32,
    pub upcalls_queued: u32,
    pub lost_upcalls: i64,
    /// Upcall batches the bridge dropped because JavaScript fell behind (in upcalls).
    pub bridge_lost_upcalls: i64,
    pub threads: Vec<ThreadStatsJs>,
    /// Final counters of the threads `setPmdCores` replaced, summed.
    pub retired: PmdCountersJs,
    pub ports: Vec<PortStatsJs>,
}

/// Turns datapath clock readings into wall-clock ms (one reading of both clocks per batch).
struct WallClock {
    elapsed: Duration,
    now: Duration,
}

impl WallClock {
    fn new(dp: &dp::Datapath) -> Self {
        WallClock {
            elapsed: dp.clock().start().elapsed(),
            now: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default(),
        }
    }

    fn wall_ms(&self, used: u64) -> f64 {
        if used == 0 {
            return 0.0;
        }
        let age = self.elapsed.saturating_sub(Duration::from_millis(used - 1));
        self.now.saturating_sub(age).as_millis() as f64
    }
}

fn stats_record(clock: &WallClock, s: &nvs_datapath::flow::FlowStatsSnapshot) -> StatsRecord {
    StatsRecord {
        packets: s.packets,
        bytes: s.bytes,
        used_ms: clock.wall_ms(s.used),
        tcp_flags: u32::from(s.tcp_flags),
    }
}

fn bad_batch(e: RecordError) -> Error<String> {
    fail(e.code(), e)
}

fn failed_op(index: usize, code: &str, message: impl ToString) -> FailedOp {
    FailedOp {
        index: index as u32,
        code: code.into(),
        message: message.to_string(),
    }
}

fn put_flags(bits: u8) -> PutFlags {
    PutFlags {
        create: bits & PUT_CREATE != 0,
        modify: bits & PUT_MODIFY != 0,
        zero_stats: bits & PUT_ZERO_STATS != 0,
    }
}

type UpcallFn =
    ThreadsafeFunction<Buffer, Unknown<'static>, Buffer, Status, false, true, BRIDGE_QUEUE>;

/// The bridge thread forwarding upcalls to a JS callback.
struct Bridge {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// Shared by the JS object and the env cleanup hook.
struct Inner {
    dp: dp::Datapath,
    bridge: Mutex<Option<Bridge>>,
    bridge_lost: AtomicU64,
}

impl Inner {
    fn stop_bridge(&self) {
        let bridge = self.bridge.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(b) = bridge {
            b.stop.store(true, Ordering::Release);
            b.thread.thread().unpark();
            let _ = b.thread.join();
        }
    }

    fn shutdown(&self) {
        self.stop_bridge();
        self.dp.close();
    }
}

/// A datapath with its polling threads (see `packages/datapath` for the typed face).
#[napi(js_name = "Datapath")]
pub struct JsDatapath {
    inner: Arc<Inner>,
    hook: Option<CleanupEnvHook<Arc<Inner>>>,
}

#[napi]
impl JsDatapath {
    #[napi(constructor)]
    pub fn new(env: Env, options: Option<DatapathOptions>) -> Result<Self, String> {
        let o = options.unwrap_or(DatapathOptions {
            threads: None,
            cores: None,
            upcall_queue_len: None,
            emc_entries: None,
        });
        let d = DatapathConfig::default();
        let config = DatapathConfig {
            threads: o.threads.map_or(d.threads, |t| t as usize),
            cores: o
                .cores
                .unwrap_or_default()
                .into_iter()
                .map(|c| c as usize)
                .collect(),
            upcall_queue_len: o
                .upcall_queue_len
                .map_or(d.upcall_queue_len, |n| n as usize),
            emc_entries: o.emc_entries.map_or(d.emc_entries, |n| n as usize),
        };
        let inner = Arc::new(Inner {
            dp: dp::Datapath::new(&config).map_err(dp_err)?,
            bridge: Mutex::new(None),
            bridge_lost: AtomicU64::new(0),
        });
        // If JS never calls close(), stop the threads when the environment goes away.
        let hook = env
            .add_env_cleanup_hook(inner.clone(), |inner| inner.shutdown())
            .map_err(|e| fail("DP_NAPI", e.reason))?;
        Ok(JsDatapath {
            inner,
            hook: Some(hook),
        })
    }

    /// Stops the threads and closes every port. Idempotent.
    #[napi]
    pub fn close(&mut self, env: Env) -> Result<(), String> {
        self.inner.shutdown();
        if let Some(hook) = self.hook.take() {
            env.remove_env_cleanup_hook(hook)
                .map_err(|e| fail("DP_NAPI", e.reason))?;
        }
        Ok(())
    }

    /// Replaces the polling threads: one pinned to each of `cores`, or one
    /// unpinned thread when empty; ports and flows are kept.
    #[napi]
    pub fn set_pmd_cores(&self, cores: Vec<u32>) -> Result<(), String> {
        let cores: Vec<usize> = cores.into_iter().map(|c| c as usize).collect();
        self.inner.dp.set_pmd_cores(&cores).map_err(dp_err)
    }

    /// Opens a port; returns its number (`port_no` when given and free).
    #[napi]
    pub fn add_port(
        &self,
        name: String,
        kind: String,
        options: Option<BTreeMap<String, String>>,
        port_no: Option<u32>,
    ) -> Result<u32, String> {
        self.inner
            .dp
            .add_port_as(&name, &kind, &options.unwrap_or_default(), port_no)
            .map_err(dp_err)
    }

    /// How a port reaches its device (Interface.status); empty for most back ends.
    #[napi]
    pub fn port_status(&self, port_no: u32) -> Result<BTreeMap<String, String>, String> {
        self.inner.dp.port_status(port_no).map_err(dp_err)
    }

    /// The MAC address of a port's device (`aa:bb:…`), or null for ports without one (dummy).
    #[napi]
    pub fn port_mac(&self, port_no: u32) -> Result<Option<String>, String> {
        let mac = self.inner.dp.port_mac(port_no).map_err(dp_err)?;
        Ok(mac.map(|m| {
            m.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":")
        }))
    }

    /// Sets the MTU of a port's device (tap ports; the kernel's refusal is thrown with its reason).
    #[napi]
    pub fn set_port_mtu(&self, port_no: u32, mtu: u32) -> Result<(), String> {
        self.inner.dp.set_port_mtu(port_no, mtu).map_err(dp_err)
    }

    /// The MTU and link state of a port's device, read now (tap ports; others throw `DP_PORT_UNSUPPORTED`).
    #[napi]
    pub fn port_device_state(&self, port_no: u32) -> Result<DeviceStateJs, String> {
        let s = self.inner.dp.port_device_state(port_no).map_err(dp_err)?;
        Ok(DeviceStateJs {
            mtu: s.mtu,
            admin_up: s.admin_up,
            carrier: s.carrier,
        })
    }

    #[napi]
    pub fn remove_port(&self, port_no: u32) -> Result<(), String> {
        self.inner.dp.remove_port(port_no).map_err(dp_err)
    }

    /// Installs or modifies flows given as one Buffer of put records. One
    /// lock and one wake-up of the polling threads for the whole batch.
    /// Returns the operations that failed.
    #[napi]
    pub fn flow_put(&self, batch: Buffer) -> Result<Vec<FailedOp>, String> {
        let mut ops = Vec::new();
        let mut failed = Vec::new();
        for (i, r) in records::decode_puts(&batch)
            .map_err(bad_batch)?
            .into_iter()
            .enumerate()
        {
            match r.actions {
                Ok(actions) => ops.push((
                    i,
                    FlowPutOp {
                        key: r.key,
                        mask: r.mask,
                        actions: actions.into_boxed_slice(),
                        flags: put_flags(r.flags),
                    },
                )),
                Err(e) => failed.push(failed_op(i, e.code(), e)),
            }
        }
        let indices: Vec<usize> = ops.iter().map(|(i, _)| *i).collect();
        let results = self
            .inner
            .dp
            .flow_put_batch(ops.into_iter().map(|(_, op)| op))
            .map_err(dp_err)?;
        for (i, r) in indices.into_iter().zip(results) {
            if let Err(e) = r {
                failed.push(failed_op(i, e.code(), e));
            }
        }
        failed.sort_by_key(|f| f.index);
        Ok(failed)
    }

    /// Deletes flows given as one Buffer of (key, mask) records; waits once
    /// for the polling threads. Returns each flow's final counters (one
    /// counters record each, zero for a flow not found) and the deletions
    /// that failed.
    #[napi]
    pub fn flow_del(&self, matches: Buffer) -> Result<RawDelResult, String> {
        let list = records::decode_matches(&matches).map_err(bad_batch)?;
        let results = self.inner.dp.flow_del_batch(&list).map_err(dp_err)?;
        let clock = WallClock::new(&self.inner.dp);
        let mut stats = Vec::with_capacity(results.len() * STATS_RECORD);
        let mut failed = Vec::new();
        for (i, r) in results.into_iter().enumerate() {
            match r {
                Ok(info) => encode_stats(&mut stats, &stats_record(&clock, &info.stats)),
                Err(e) => {
                    stats.extend_from_slice(&[0; STATS_RECORD]);
                    failed.push(failed_op(i, e.code(), e));
                }
            }
        }
        Ok(RawDelResult {
            stats: stats.into(),
            failed,
        })
    }

    /// Every flow as one Buffer of flow records (masked key, mask, counters,
    /// actions); with `actions` false each record's action list is left
    /// empty, which is all a revalidation round needs.
    #[napi]
    pub fn flow_dump(&self, actions: bool) -> Buffer {
        let dp = &self.inner.dp;
        let clock = WallClock::new(dp);
        let rec = FLOW_HEADER;
        let mut out = Vec::with_capacity(dp.flow_count() * rec + rec);
        if actions {
            for f in dp.flow_dump() {
                let acts = actions::encode(&f.actions);
                encode_flow(
                    &mut out,
                    &f.key,
                    &f.mask,
                    &stats_record(&clock, &f.stats),
                    &acts,
                );
            }
        } else {
            dp.flow_visit(|key, mask, s| {
                encode_flow(&mut out, key, mask, &stats_record(&clock, &s), &[])
            });
        }
        out.into()
    }

    #[napi]
    pub fn flow_flush(&self) -> Result<(), String> {
        self.inner.dp.flow_flush().map_err(dp_err)
    }

    /// Runs many packets' actions under one lock (execute records: each
    /// packet as if received on its in_port, 0 for none). Returns the
    /// packets that failed.
    #[napi]
    pub fn execute(&self, batch: Buffer) -> Result<Vec<FailedOp>, String> {
        let mut items = Vec::new();
        let mut failed = Vec::new();
        for (i, r) in records::decode_executes(&batch)
            .map_err(bad_batch)?
            .into_iter()
            .enumerate()
        {
            match r.actions {
                Ok(a) => items.push((i, r.in_port, r.packet, a)),
                Err(e) => failed.push(failed_op(i, e.code(), e)),
            }
        }
        let results = self
            .inner
            .dp
            .execute_batch(items.iter().map(|(_, p, pkt, a)| (*p, *pkt, a.as_slice())))
            .map_err(dp_err)?;
        for ((i, ..), r) in items.iter().zip(results) {
            if let Err(e) = r {
                failed.push(failed_op(*i, e.code(), e));
            }
        }
        failed.sort_by_key(|f| f.index);
        Ok(failed)
    }

    /// Pops up to `max` queued upcalls (never blocks), as one Buffer of upcall records.
    #[napi]
    pub fn recv_upcalls(&self, max: u32) -> Buffer {
        upcall_batch(&self.inner.dp.recv_upcalls(max as usize)).into()
    }

    /// Calls `callback` with each batch of upcalls (up to 64, one Buffer of
    /// upcall records), from a bridge thread, until `close()` or
    /// `offUpcalls()`. The callback does not keep the process alive.
    #[napi(ts_args_type = "callback: (batch: Buffer) => void")]
    pub fn on_upcalls(&self, callback: UpcallFn) -> Result<(), String> {
        self.start_bridge(callback)
    }

    /// Stops delivering upcalls to the callback given to `onUpcalls`.
    #[napi]
    pub fn off_upcalls(&self) {
        self.inner.stop_bridge();
    }

    /// Makes packets arrive on a port (dummy ports).
    #[napi]
    pub fn inject(&self, port_no: u32, packets: Vec<Buffer>) -> Result<(), String> {
        let refs: Vec<&[u8]> = packets.iter().map(|b| &b[..]).collect();
        self.inner.dp.port_inject(port_no, &refs).map_err(dp_err)
    }

    /// Takes up to `max` packets sent out of a port (dummy ports).
    #[napi]
    pub fn drain(&self, port_no: u32, max: u32) -> Result<Vec<Buffer>, String> {
        let pkts = self
            .inner
            .dp
            .port_drain(port_no, max as usize)
            .map_err(dp_err)?;
        Ok(pkts.into_iter().map(Buffer::from).collect())
    }

    /// Counters of the datapath, each polling thread and each port.
    #[napi]
    pub fn stats(&self) -> DatapathStatsJs {
        let s = self.inner.dp.stats();
        DatapathStatsJs {
            flows: s.flows as u32,
            upcalls_queued: s.upcalls_queued as u32,
            lost_upcalls: s.lost_upcalls as i64,
            bridge_lost_upcalls: self.inner.bridge_lost.load(Ordering::Relaxed) as i64,
            threads: s
                .threads
                .into_iter()
                .map(|t| ThreadStatsJs {
                    id: t.id as u32,
                    core: t.core.map(|c| c as u32),
                    ports: t.ports,
                    packets: t.stats.packets as i64,
                    emc_hits: t.stats.emc_hits as i64,
                    megaflow_hits: t.stats.megaflow_hits as i64,
                    misses: t.stats.misses as i64,
                    lost_upcalls: t.stats.lost_upcalls as i64,
                    parse_errors: t.stats.parse_errors as i64,
                    tx_dropped: t.stats.tx_dropped as i64,
                    busy_ns: t.stats.busy_ns as i64,
                    iterations: t.stats.iterations as i64,
                    busy_cycles: t.stats.busy_cycles as i64,
                    idle_cycles: t.stats.idle_cycles as i64,
                })
                .collect(),
            retired: PmdCountersJs {
                packets: s.retired.packets as i64,
                emc_hits: s.retired.emc_hits as i64,
                megaflow_hits: s.retired.megaflow_hits as i64,
                misses: s.retired.misses as i64,
                lost_upcalls: s.retired.lost_upcalls as i64,
                parse_errors: s.retired.parse_errors as i64,
                tx_dropped: s.retired.tx_dropped as i64,
                busy_ns: s.retired.busy_ns as i64,
                iterations: s.retired.iterations as i64,
                busy_cycles: s.retired.busy_cycles as i64,
                idle_cycles: s.retired.idle_cycles as i64,
            },
            ports: s
                .ports
                .into_iter()
                .map(|p| PortStatsJs {
                    port_no: p.no,
                    name: p.name,
                    kind: p.kind.into(),
                    thread: p.thread.map(|t| t as u32),
                    rx_packets: p.stats.rx_packets as i64,
                    rx_bytes: p.stats.rx_bytes as i64,
                    rx_dropped: p.stats.rx_dropped as i64,
                    rx_errors: p.stats.rx_errors as i64,
                    tx_packets: p.stats.tx_packets as i64,
                    tx_bytes: p.stats.tx_bytes as i64,
                    tx_dropped: p.stats.tx_dropped as i64,
                    tx_errors: p.stats.tx_errors as i64,
                    error: p.error,
                })
                .collect(),
        }
    }
}

/// A datapath object garbage-collected without `close()` still stops its
/// threads (the cleanup hook then finds it already shut down).
impl Drop for JsDatapath {
    fn drop(&mut self) {
        self.inner.shutdown();
    }
}

impl JsDatapath {
    fn start_bridge(&self, target: UpcallFn) -> Result<(), String> {
        self.inner.stop_bridge();
        let stop = Arc::new(AtomicBool::new(false));
        let inner = Arc::downgrade(&self.inner);
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("nvs-upcall-bridge".into())
            .spawn(move || bridge_loop(inner, stop2, target))
            .map_err(|e| fail("DP_SPAWN_FAILED", e))?;
        *self.inner.bridge.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Bridge { stop, thread });
        Ok(())
    }
}

/// One batch of upcall records.
fn upcall_batch(batch: &[Upcall]) -> Vec<u8> {
    let size: usize = batch
        .iter()
        .map(|u| UPCALL_HEADER + layout::KEY_SIZE + u.packet.len() + 8)
        .sum();
    let mut out = Vec::with_capacity(size);
    for u in batch {
        encode_upcall(&mut out, u);
    }
    out
}

/// Waits for upcalls and hands them to JavaScript one batch per call.
fn bridge_loop(inner: std::sync::Weak<Inner>, stop: Arc<AtomicBool>, target: UpcallFn) {
    let mut batch = Vec::with_capacity(UPCALL_BATCH);
    while !stop.load(Ordering::Acquire) {
        let Some(inner) = inner.upgrade() else { return };
        batch.clear();
        if inner.dp.recv_upcalls_into(UPCALL_BATCH, &mut batch) == 0 {
            inner.dp.wait_upcalls(Duration::from_millis(50));
            continue;
        }
        let n = batch.len() as u64;
        let status = target.call(
            upcall_batch(&batch).into(),
            ThreadsafeFunctionCallMode::NonBlocking,
        );
        if status != Status::Ok {
            inner.bridge_lost.fetch_add(n, Ordering::Relaxed);
        }
    }
}
