//! The vhost-user path per packet, in one process: two `dpdkvhostuser`
//! ports, each with an in-process front end (`tests/common/vhost_front.rs`:
//! a guest's rings in a memfd, set up over the real protocol with the
//! features virtio-user negotiates), and a polling thread's loop (driven
//! inline) forwarding with `in_port` → `output` megaflows, as
//! `bench/vhost-loop.sh` runs it with testpmd. Each guest sends 64-byte
//! frames from 128 tx buffers it posts again as soon as they are used, and
//! keeps its rx ring full.
//!
//! Only the polling loop is timed (the thread's CPU time around each
//! `poll_once`, less what reading that clock costs: it is a system call
//! here), not the guests' bookkeeping: the figure is the switch's CPU per
//! packet, what `pmd-stats-show` reports as cycles per packet (also printed,
//! from the loop's own TSC counter, which on a loaded machine includes time
//! the host gave to others). Also: the ring pieces alone (rx of a burst, tx
//! of a burst) on one port looped to itself.

#[path = "common/cpu.rs"]
mod cpu;
#[path = "common/frames.rs"]
mod frames;

#[path = "../tests/common/vhost_front.rs"]
#[allow(dead_code)]
mod vhost_front;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cpu::thread_cpu_now;
use frames::frame;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use nvs_datapath::actions::Action;
use nvs_datapath::emc::EMC_ENTRIES;
use nvs_datapath::flow::{FlowStats, Megaflow};
use nvs_datapath::frame::{flush_thread_cache, keep_freed_frames};
use nvs_datapath::key::FlowKey;
use nvs_datapath::pmd::{Clock, Command, Pmd, PmdShared, PortEntry, PortMap};
use nvs_datapath::port::{Batch, Port, PortOptions};
use nvs_datapath::ports::open_port;
use nvs_datapath::upcall::UpcallQueue;
use vhost_front::{Front, F_EVENT_IDX, F_MRG_RXBUF, F_PROTOCOL_FEATURES, F_VERSION_1};

const FEATURES: u64 = F_VERSION_1 | F_MRG_RXBUF | F_EVENT_IDX | F_PROTOCOL_FEATURES;
/// Tx buffers each guest keeps in flight.
const IN_FLIGHT: u16 = 128;

/// What reading the thread's CPU clock around nothing measures (the least of
/// many tries): taken off each timed call.
fn clock_overhead() -> Duration {
    (0..2000)
        .map(|_| {
            let t = thread_cpu_now();
            thread_cpu_now() - t
        })
        .min()
        .unwrap_or_default()
}

/// A guest: its front end, sending the same frame from `IN_FLIGHT` buffers.
struct Guest {
    front: Front,
    used: Vec<(u32, u32)>,
}

impl Guest {
    fn new(path: &std::path::Path) -> Guest {
        let mut front = Front::connect(path);
        front.setup(FEATURES);
        for _ in 0..IN_FLIGHT {
            front.send_packet(&frame(1));
        }
        Guest {
            front,
            used: Vec::with_capacity(vhost_front::SIZE as usize),
        }
    }

    /// Posts again what the switch has used: sent buffers and filled rx buffers.
    fn recycle(&mut self) {
        self.front.take_used_into(1, &mut self.used);
        for &(head, _) in &self.used {
            self.front.make_avail(1, head as u16);
        }
        self.front.take_used_into(0, &mut self.used);
        self.front.post_rx(self.used.len() as u16);
    }
}

fn port(dir: &std::path::Path, name: &str) -> (Box<dyn Port>, PathBuf) {
    let path = dir.join(name);
    let mut opts = PortOptions::new();
    opts.insert(
        "vhost-server-path".into(),
        path.to_string_lossy().into_owned(),
    );
    (open_port("dpdkvhostuser", name, &opts).unwrap(), path)
}

fn forwarding(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("nvs-vhost-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let shared = Arc::new(PmdShared::default());
    let mut pmd = Pmd::new(
        0,
        EMC_ENTRIES,
        shared.clone(),
        Arc::new(UpcallQueue::new(1024)),
        Clock::new(),
    )
    .unwrap();
    let mut map: PortMap = vec![None];
    let mut guests = Vec::new();
    for no in 1..=2u32 {
        let (p, path) = port(&dir, &format!("vh{no}"));
        map.push(Some(Arc::new(PortEntry {
            no,
            name: format!("vh{no}"),
            kind: "dpdkvhostuser",
            port: Mutex::new(p),
        })));
        guests.push(Guest::new(&path));
    }
    let entries: Vec<Arc<PortEntry>> = map.iter().flatten().cloned().collect();
    shared.commands.push(Command::Ports {
        all: Arc::new(map),
        rx: entries,
    });
    let mask = FlowKey {
        in_port: u32::MAX,
        ..FlowKey::default()
    };
    for (from, to) in [(1, 2), (2, 1)] {
        let key = FlowKey {
            in_port: from,
            ..FlowKey::default()
        };
        shared.commands.push(Command::Insert(Arc::new(Megaflow::new(
            &key,
            &mask,
            Box::new([Action::Output(to)]),
            Arc::new(FlowStats::default()),
        ))));
    }
    let overhead = clock_overhead();
    let mut g = c.benchmark_group("vhost");
    g.throughput(Throughput::Elements(1));
    g.bench_function(
        "vhost→vhost 64B, in_port→output, 1 thread (CPU ns/packet)",
        |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                let mut done = 0u64;
                while done < iters {
                    let t = thread_cpu_now();
                    done += pmd.poll_once() as u64;
                    spent += (thread_cpu_now() - t).saturating_sub(overhead);
                    for guest in &mut guests {
                        guest.recycle();
                    }
                }
                spent
            })
        },
    );
    g.finish();
    let s = shared.counters.snapshot();
    if s.packets > 0 {
        println!(
            "vhost forward: {} packets, {:.0} TSC cycles/packet by the loop's own counter (pmd-stats-show's figure; includes time the host gave to others)",
            s.packets,
            s.busy_cycles as f64 / s.packets as f64
        );
    }
    // Stop each front end before its port.
    drop(guests);
    let _ = std::fs::remove_dir_all(&dir);
}

/// One port, its guest's tx looped into its own rx: a burst in, then out.
fn ring_pieces(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("nvs-vhost-ring-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (mut p, path) = port(&dir, "vh");
    let mut guest = Guest::new(&path);
    let mut batch = Batch::new();
    // As a polling thread: frames freed here are reused here.
    keep_freed_frames(true);
    let overhead = clock_overhead();
    let mut g = c.benchmark_group("vhost ring");
    g.throughput(Throughput::Elements(1));
    g.bench_function("rx burst + tx burst of 32, 64B (CPU ns/packet)", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            let mut done = 0u64;
            while done < iters {
                let t = thread_cpu_now();
                done += p.rx_burst(&mut batch).unwrap() as u64;
                p.tx_burst(&mut batch).unwrap();
                spent += (thread_cpu_now() - t).saturating_sub(overhead);
                guest.recycle();
            }
            spent
        })
    });
    g.finish();
    keep_freed_frames(false);
    flush_thread_cache();
    drop(guest);
    let _ = std::fs::remove_dir_all(&dir);
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
}

criterion_group! { name = benches; config = config(); targets = forwarding, ring_pieces }
criterion_main!(benches);
