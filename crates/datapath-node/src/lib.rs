//! napi-rs binding of the nvs datapath: a thin translation layer, no logic.
//!
//! Binary encodings cross unchanged: keys and masks are raw `FlowKey` bytes
//! (layout published by `flowKeyLayout()`), actions are the TLV list of
//! `nvs_datapath::actions`. Errors are thrown with a stable `code` (the
//! `DpError`/`ActionError` codes, or `DP_BAD_KEY`/`DP_BAD_ARGUMENT` for
//! malformed arguments); per-flow errors of batched flow calls are returned.
//!
//! Upcalls reach JavaScript in batches: polled with `recvUpcalls(max)`, or
//! pushed by `onUpcalls(cb)`: one bridge thread waits on the upcall queue and
//! makes one non-blocking call of a weak thread-safe function per batch (a
//! full call queue drops the batch and counts it in `bridgeLostUpcalls`).
//! Threads stop on `close()` and, failing that, in an env cleanup hook.
//!
//! The hot calls also come in a "raw" form that crosses as one Buffer per
//! batch of fixed-layout records instead of an object per flow or packet
//! (`flowPutRaw`, `flowDelRaw`, `flowDumpStatsRaw`, `executeRaw`,
//! `onUpcallsRaw`); the record layouts are written down on each method and
//! mirrored once, in `packages/datapath/src/raw.ts`. Integers are
//! little-endian; a key or mask is `flowKeySize()` raw `FlowKey` bytes.

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
use nvs_datapath::upcall::{Upcall, UpcallReason};

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

#[napi(object)]
pub struct FlowPut {
    pub key: Buffer,
    pub mask: Buffer,
    pub actions: Buffer,
    /// Install if absent (default true).
    pub create: Option<bool>,
    /// Replace the actions if present (default false).
    pub modify: Option<bool>,
    /// Zero the counters of a modified flow (default false).
    pub zero_stats: Option<bool>,
}

#[napi(object)]
pub struct FlowMatch {
    pub key: Buffer,
    pub mask: Buffer,
}

#[napi(object)]
pub struct FlowStats {
    pub packets: i64,
    pub bytes: i64,
    /// Wall-clock time of the last hit, ms since the Unix epoch; 0 = never.
    pub used_ms: f64,
    pub tcp_flags: u32,
}

/// The error of one operation in a batch.
#[napi(object)]
pub struct OpError {
    pub code: String,
    pub message: String,
}

/// A failed operation of a raw batch (operations not listed succeeded).
#[napi(object)]
pub struct FailedOp {
    /// Position of the operation in the batch.
    pub index: u32,
    pub code: String,
    pub message: String,
}

/// The outcome of `flowDelRaw`.
#[napi(object)]
pub struct RawDelResult {
    /// One `STATS_RECORD`-byte record per flow (zero for a flow not found).
    pub stats: Buffer,
    pub failed: Vec<FailedOp>,
}

/// Bytes of a counters record: packets u64, bytes u64, used_ms f64 (wall
/// clock, 0 = never), tcp_flags u32, pad u32.
const STATS_RECORD: usize = 32;

/// The outcome of one operation in a batch: `error` unset on success.
#[napi(object)]
pub struct OpResult {
    pub error: Option<OpError>,
    /// Final counters of a deleted flow.
    pub stats: Option<FlowStats>,
}

#[napi(object)]
pub struct FlowEntry {
    pub key: Buffer,
    pub mask: Buffer,
    pub actions: Buffer,
    pub stats: FlowStats,
}

#[napi(object)]
pub struct UpcallJs {
    pub packet: Buffer,
    pub key: Buffer,
    pub in_port: u32,
    /// "miss" or "userspace".
    pub reason: String,
    /// The userspace action's cookie.
    pub cookie: Option<BigInt>,
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

fn stats_js(dp: &dp::Datapath, s: nvs_datapath::flow::FlowStatsSnapshot) -> FlowStats {
    // `used` is the datapath clock (ms since start, +1; 0 = never): turn it into wall-clock time.
    let used_ms = if s.used == 0 {
        0.0
    } else {
        let start = dp.clock().start();
        let age = start
            .elapsed()
            .saturating_sub(Duration::from_millis(s.used - 1));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        now.saturating_sub(age).as_millis() as f64
    };
    FlowStats {
        packets: s.packets as i64,
        bytes: s.bytes as i64,
        used_ms,
        tcp_flags: s.tcp_flags as u32,
    }
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

fn put_stats_record(
    out: &mut Vec<u8>,
    clock: &WallClock,
    s: &nvs_datapath::flow::FlowStatsSnapshot,
) {
    out.extend_from_slice(&s.packets.to_le_bytes());
    out.extend_from_slice(&s.bytes.to_le_bytes());
    out.extend_from_slice(&clock.wall_ms(s.used).to_le_bytes());
    out.extend_from_slice(&u32::from(s.tcp_flags).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
}

/// Reads little-endian u32s at `off`.
fn le_u32(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

fn bad_record(what: &str, i: usize) -> Error<String> {
    fail(
        "DP_BAD_ARGUMENT",
        format!("{what} record {i} is truncated or malformed"),
    )
}

/// Bytes of an upcall record's header (before the key and the packet).
const UPCALL_HEADER: usize = 24;

/// Appends one upcall record: in_port u32, reason u8 (0 miss, 1 userspace),
/// pad 3, cookie u64, packet_len u32, pad 4, key, packet, zero padding to 8.
fn put_upcall_record(out: &mut Vec<u8>, u: &Upcall) {
    let (reason, cookie) = match u.reason {
        UpcallReason::Miss => (0u8, 0u64),
        UpcallReason::Userspace { cookie } => (1, cookie),
    };
    out.extend_from_slice(&u.in_port.to_le_bytes());
    out.extend_from_slice(&[reason, 0, 0, 0]);
    out.extend_from_slice(&cookie.to_le_bytes());
    out.extend_from_slice(&(u.packet.len() as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(u.key.as_bytes());
    out.extend_from_slice(&u.packet);
    out.resize(out.len().next_multiple_of(8), 0);
}

fn upcall_js(u: Upcall) -> UpcallJs {
    let (reason, cookie) = match u.reason {
        UpcallReason::Miss => ("miss", None),
        UpcallReason::Userspace { cookie } => ("userspace", Some(BigInt::from(cookie))),
    };
    UpcallJs {
        packet: u.packet.into(),
        key: u.key.as_bytes().to_vec().into(),
        in_port: u.in_port,
        reason: reason.into(),
        cookie,
    }
}

type UpcallFn = ThreadsafeFunction<
    Vec<UpcallJs>,
    Unknown<'static>,
    Vec<UpcallJs>,
    Status,
    false,
    true,
    BRIDGE_QUEUE,
>;

type UpcallRawFn =
    ThreadsafeFunction<Buffer, Unknown<'static>, Buffer, Status, false, true, BRIDGE_QUEUE>;

/// What the bridge hands upcalls to: objects, or one Buffer of records per batch.
enum BridgeTarget {
    Objects(UpcallFn),
    Raw(UpcallRawFn),
}

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

    /// Opens a port; returns its number.
    #[napi]
    pub fn add_port(
        &self,
        name: String,
        kind: String,
        options: Option<BTreeMap<String, String>>,
    ) -> Result<u32, String> {
        self.inner
            .dp
            .add_port(&name, &kind, &options.unwrap_or_default())
            .map_err(dp_err)
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

    /// Installs or modifies flows; one result per flow, in order.
    #[napi]
    pub fn flow_put(&self, flows: Vec<FlowPut>) -> Result<Vec<OpResult>, String> {
        // Decode everything first, then one batch: one lock and one wake-up.
        let mut out: Vec<Option<OpError>> = Vec::with_capacity(flows.len());
        let mut ops = Vec::with_capacity(flows.len());
        for (i, f) in flows.into_iter().enumerate() {
            let key = key_arg("key", &f.key)?;
            let mask = key_arg("mask", &f.mask)?;
            let flags = PutFlags {
                create: f.create.unwrap_or(true),
                modify: f.modify.unwrap_or(false),
                zero_stats: f.zero_stats.unwrap_or(false),
            };
            match actions::decode(&f.actions) {
                Err(e) => out.push(Some(OpError {
                    code: e.code().into(),
                    message: e.to_string(),
                })),
                Ok(actions) => {
                    out.push(None);
                    ops.push((
                        i,
                        FlowPutOp {
                            key,
                            mask,
                            actions: actions.into_boxed_slice(),
                            flags,
                        },
                    ));
                }
            }
        }
        let indices: Vec<usize> = ops.iter().map(|(i, _)| *i).collect();
        let results = self
            .inner
            .dp
            .flow_put_batch(ops.into_iter().map(|(_, op)| op))
            .map_err(dp_err)?;
        for (i, r) in indices.into_iter().zip(results) {
            out[i] = r.err().map(op_error);
        }
        Ok(out
            .into_iter()
            .map(|error| OpResult { error, stats: None })
            .collect())
    }

    /// Deletes flows; one result per flow (with its final counters), in order.
    #[napi]
    pub fn flow_del(&self, flows: Vec<FlowMatch>) -> Result<Vec<OpResult>, String> {
        let matches = flows
            .iter()
            .map(|f| Ok((key_arg("key", &f.key)?, key_arg("mask", &f.mask)?)))
            .collect::<Result<Vec<_>, String>>()?;
        let results = self.inner.dp.flow_del_batch(&matches).map_err(dp_err)?;
        Ok(results
            .into_iter()
            .map(|r| match r {
                Ok(info) => OpResult {
                    error: None,
                    stats: Some(stats_js(&self.inner.dp, info.stats)),
                },
                Err(e) => OpResult {
                    error: Some(op_error(e)),
                    stats: None,
                },
            })
            .collect())
    }

    /// The flow with this key and mask, or null.
    #[napi]
    pub fn flow_get(&self, key: Buffer, mask: Buffer) -> Result<Option<FlowEntry>, String> {
        let (key, mask) = (key_arg("key", &key)?, key_arg("mask", &mask)?);
        Ok(self.inner.dp.flow_get(&key, &mask).map(|f| self.entry(f)))
    }

    /// Installs or modifies flows given as one Buffer of records: flags u8
    /// (1 create, 2 modify, 4 zero stats), pad 3, actions_len u32, key, mask,
    /// actions (the TLV list, `actions_len` bytes); records follow each
    /// other with no padding. One lock and one wake-up of the polling
    /// threads for the whole batch. Returns the operations that failed.
    #[napi]
    pub fn flow_put_raw(&self, records: Buffer) -> Result<Vec<FailedOp>, String> {
        let k = layout::KEY_SIZE;
        let b: &[u8] = &records;
        let mut ops = Vec::new();
        let mut failed = Vec::new();
        let (mut off, mut i) = (0, 0);
        while off < b.len() {
            let flags = b[off];
            let alen = le_u32(b, off + 4).ok_or_else(|| bad_record("flow put", i))? as usize;
            let body = off + 8;
            let end = body + 2 * k + alen;
            if end > b.len() {
                return Err(bad_record("flow put", i));
            }
            let key = key_arg("key", &b[body..body + k])?;
            let mask = key_arg("mask", &b[body + k..body + 2 * k])?;
            match actions::decode(&b[body + 2 * k..end]) {
                Ok(actions) => ops.push((
                    i,
                    FlowPutOp {
                        key,
                        mask,
                        actions: actions.into_boxed_slice(),
                        flags: PutFlags {
                            create: flags & 1 != 0,
                            modify: flags & 2 != 0,
                            zero_stats: flags & 4 != 0,
                        },
                    },
                )),
                Err(e) => failed.push(FailedOp {
                    index: i as u32,
                    code: e.code().into(),
                    message: e.to_string(),
                }),
            }
            off = end;
            i += 1;
        }
        let indices: Vec<usize> = ops.iter().map(|(i, _)| *i).collect();
        let results = self
            .inner
            .dp
            .flow_put_batch(ops.into_iter().map(|(_, op)| op))
            .map_err(dp_err)?;
        for (i, r) in indices.into_iter().zip(results) {
            if let Err(e) = r {
                failed.push(FailedOp {
                    index: i as u32,
                    code: e.code().into(),
                    message: e.to_string(),
                });
            }
        }
        failed.sort_by_key(|f| f.index);
        Ok(failed)
    }

    /// Deletes flows given as one Buffer of (key, mask) records; waits once
    /// for the polling threads. Returns each flow's final counters (records
    /// of 32 bytes: packets u64, bytes u64, used_ms f64, tcp_flags u32, pad)
    /// and the deletions that failed.
    #[napi]
    pub fn flow_del_raw(&self, matches: Buffer) -> Result<RawDelResult, String> {
        let k = layout::KEY_SIZE;
        if !matches.len().is_multiple_of(2 * k) {
            return Err(bad_record("flow delete", matches.len() / (2 * k)));
        }
        let list = matches
            .chunks_exact(2 * k)
            .map(|c| Ok((key_arg("key", &c[..k])?, key_arg("mask", &c[k..])?)))
            .collect::<Result<Vec<_>, String>>()?;
        let results = self.inner.dp.flow_del_batch(&list).map_err(dp_err)?;
        let clock = WallClock::new(&self.inner.dp);
        let mut stats = Vec::with_capacity(results.len() * STATS_RECORD);
        let mut failed = Vec::new();
        for (i, r) in results.into_iter().enumerate() {
            match r {
                Ok(info) => put_stats_record(&mut stats, &clock, &info.stats),
                Err(e) => {
                    stats.extend_from_slice(&[0; STATS_RECORD]);
                    failed.push(FailedOp {
                        index: i as u32,
                        code: e.code().into(),
                        message: e.to_string(),
                    });
                }
            }
        }
        Ok(RawDelResult {
            stats: stats.into(),
            failed,
        })
    }

    /// Every flow's (masked) key, mask and counters, as one Buffer of
    /// records: key, mask, then a 32-byte counters record (see `flowDelRaw`).
    #[napi]
    pub fn flow_dump_stats_raw(&self) -> Buffer {
        let dp = &self.inner.dp;
        let clock = WallClock::new(dp);
        let rec = 2 * layout::KEY_SIZE + STATS_RECORD;
        let mut out = Vec::with_capacity(dp.flow_count() * rec + rec);
        dp.flow_visit(|key, mask, s| {
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(mask.as_bytes());
            put_stats_record(&mut out, &clock, &s);
        });
        out.into()
    }

    /// Runs many packets' actions under one lock, as `execute` does each.
    /// Records: in_port u32, packet_len u32, actions_len u32, packet,
    /// actions; no padding. Returns the packets that failed.
    #[napi]
    pub fn execute_raw(&self, records: Buffer) -> Result<Vec<FailedOp>, String> {
        let b: &[u8] = &records;
        let mut items: Vec<(usize, u32, &[u8], Vec<Action>)> = Vec::new();
        let mut failed = Vec::new();
        let (mut off, mut i) = (0, 0);
        while off < b.len() {
            let (Some(in_port), Some(plen), Some(alen)) =
                (le_u32(b, off), le_u32(b, off + 4), le_u32(b, off + 8))
            else {
                return Err(bad_record("execute", i));
            };
            let body = off + 12;
            let (plen, alen) = (plen as usize, alen as usize);
            let end = body + plen + alen;
            if end > b.len() {
                return Err(bad_record("execute", i));
            }
            match actions::decode(&b[body + plen..end]) {
                Ok(a) => items.push((i, in_port, &b[body..body + plen], a)),
                Err(e) => failed.push(FailedOp {
                    index: i as u32,
                    code: e.code().into(),
                    message: e.to_string(),
                }),
            }
            off = end;
            i += 1;
        }
        let results = self
            .inner
            .dp
            .execute_batch(items.iter().map(|(_, p, pkt, a)| (*p, *pkt, a.as_slice())))
            .map_err(dp_err)?;
        for ((i, ..), r) in items.iter().zip(results) {
            if let Err(e) = r {
                failed.push(FailedOp {
                    index: *i as u32,
                    code: e.code().into(),
                    message: e.to_string(),
                });
            }
        }
        failed.sort_by_key(|f| f.index);
        Ok(failed)
    }

    /// Every flow with its counters.
    #[napi]
    pub fn flow_dump(&self) -> Vec<FlowEntry> {
        self.inner
            .dp
            .flow_dump()
            .into_iter()
            .map(|f| self.entry(f))
            .collect()
    }

    #[napi]
    pub fn flow_flush(&self) -> Result<(), String> {
        self.inner.dp.flow_flush().map_err(dp_err)
    }

    /// Runs `actions` on `packet` as received on `inPort` (0: no port).
    #[napi]
    pub fn execute(&self, in_port: u32, packet: Buffer, actions: Buffer) -> Result<(), String> {
        let actions = actions_arg(&actions)?;
        self.inner
            .dp
            .execute(in_port, &packet, &actions)
            .map_err(dp_err)
    }

    /// Pops up to `max` queued upcalls (never blocks).
    #[napi]
    pub fn recv_upcalls(&self, max: u32) -> Vec<UpcallJs> {
        self.inner
            .dp
            .recv_upcalls(max as usize)
            .into_iter()
            .map(upcall_js)
            .collect()
    }

    /// Calls `callback` with each batch of upcalls, from a bridge thread, until
    /// `close()` or `offUpcalls()`. The callback does not keep the process alive.
    #[napi(ts_args_type = "callback: (upcalls: UpcallJs[]) => void")]
    pub fn on_upcalls(&self, callback: UpcallFn) -> Result<(), String> {
        self.start_bridge(BridgeTarget::Objects(callback))
    }

    /// Like `onUpcalls`, but each batch (up to 64 upcalls) is one Buffer of
    /// records: in_port u32, reason u8 (0 miss, 1 userspace), pad 3, cookie
    /// u64, packet_len u32, pad 4, key, packet, zero padding to a multiple of 8.
    #[napi(ts_args_type = "callback: (batch: Buffer) => void")]
    pub fn on_upcalls_raw(&self, callback: UpcallRawFn) -> Result<(), String> {
        self.start_bridge(BridgeTarget::Raw(callback))
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
    fn start_bridge(&self, target: BridgeTarget) -> Result<(), String> {
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

    fn entry(&self, f: dp::FlowInfo) -> FlowEntry {
        FlowEntry {
            key: f.key.as_bytes().to_vec().into(),
            mask: f.mask.as_bytes().to_vec().into(),
            actions: actions::encode(&f.actions).into(),
            stats: stats_js(&self.inner.dp, f.stats),
        }
    }
}

fn op_error(e: DpError) -> OpError {
    OpError {
        code: e.code().into(),
        message: e.to_string(),
    }
}

/// Waits for upcalls and hands them to JavaScript one batch per call.
fn bridge_loop(inner: std::sync::Weak<Inner>, stop: Arc<AtomicBool>, target: BridgeTarget) {
    let mut batch = Vec::with_capacity(UPCALL_BATCH);
    while !stop.load(Ordering::Acquire) {
        let Some(inner) = inner.upgrade() else { return };
        batch.clear();
        if inner.dp.recv_upcalls_into(UPCALL_BATCH, &mut batch) == 0 {
            inner.dp.wait_upcalls(Duration::from_millis(50));
            continue;
        }
        let n = batch.len() as u64;
        let status = match &target {
            BridgeTarget::Objects(cb) => {
                let js: Vec<UpcallJs> = batch.drain(..).map(upcall_js).collect();
                cb.call(js, ThreadsafeFunctionCallMode::NonBlocking)
            }
            BridgeTarget::Raw(cb) => {
                let size: usize = batch
                    .iter()
                    .map(|u| UPCALL_HEADER + layout::KEY_SIZE + u.packet.len() + 8)
                    .sum();
                let mut out = Vec::with_capacity(size);
                for u in &batch {
                    put_upcall_record(&mut out, u);
                }
                cb.call(out.into(), ThreadsafeFunctionCallMode::NonBlocking)
            }
        };
        if status != Status::Ok {
            inner.bridge_lost.fetch_add(n, Ordering::Relaxed);
        }
    }
}
