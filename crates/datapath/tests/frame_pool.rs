//! Property test of the frame contract: random forwarding, by a real polling
//! loop (`Pmd::poll_once`) with random action lists (outputs to several
//! ports, to a port that does not exist, none at all, VLAN pushes,
//! truncation; misses into a small upcall queue), through ports of random
//! kinds — dummy (plain and loopback), AF_XDP-shaped ring ports (each on its
//! own pool, or two on one shared pool) and a tap device fed from the kernel
//! side. When traffic stops, every pool is full again (no frame lost), and
//! its chunks are all distinct (no chunk freed twice: a double free leaves a
//! duplicate on the free ring and a chunk missing).

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use proptest::prelude::*;

use common::kernel;
use common::ring::RingPort;
use nvs_datapath::actions::Action;
use nvs_datapath::flow::{FlowStats, Megaflow};
use nvs_datapath::frame::Pool;
use nvs_datapath::key::FlowKey;
use nvs_datapath::pmd::{Clock, Command, Pmd, PmdShared, PortEntry, PortMap};
use nvs_datapath::port::{Port, PortOptions};
use nvs_datapath::ports::open_port;
use nvs_datapath::upcall::UpcallQueue;

#[derive(Clone, Copy, Debug)]
enum Kind {
    Dummy,
    DummyLoopback,
    Ring,
    /// A ring port on the pool every `SharedRing` port of the case uses.
    SharedRing,
    Tap,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Dummy),
        Just(Kind::DummyLoopback),
        Just(Kind::Ring),
        Just(Kind::SharedRing),
        Just(Kind::Tap),
    ]
}

/// One action of a flow's list; port numbers past the last port name none.
fn action(ports: u32) -> impl Strategy<Value = Action> {
    prop_oneof![
        4 => (1..=ports + 1).prop_map(Action::Output),
        1 => any::<u16>().prop_map(|tci| Action::PushVlan { tpid: 0x8100, tci: tci & 0x0fff }),
        1 => (14u32..200).prop_map(Action::Truncate),
    ]
}

/// A port of the case, with what feeds it.
struct Fed {
    entry: Arc<PortEntry>,
    /// For a tap: the kernel side's socket (frames sent there arrive on the port).
    kernel: Option<std::os::fd::OwnedFd>,
}

static TAPS: AtomicU32 = AtomicU32::new(0);

fn open(kind: Kind, no: u32, shared: &Pool) -> Option<Fed> {
    let mut opts = PortOptions::new();
    opts.insert("rxq_len".into(), "64".into());
    opts.insert("txq_len".into(), "64".into());
    let (port, kernel): (Box<dyn Port>, _) = match kind {
        Kind::Dummy => (open_port("dummy", "d", &opts).unwrap(), None),
        Kind::DummyLoopback => {
            opts.insert("loopback".into(), "true".into());
            (open_port("dummy", "d", &opts).unwrap(), None)
        }
        Kind::Ring => (
            Box::new(RingPort::new(
                Pool::new(48, 2048).unwrap(),
                no.is_multiple_of(2),
            )),
            None,
        ),
        Kind::SharedRing => (
            Box::new(RingPort::new(shared.clone(), no.is_multiple_of(2))),
            None,
        ),
        Kind::Tap => {
            let name = kernel::dev_name(&format!("q{}", TAPS.fetch_add(1, Ordering::Relaxed)));
            let port = kernel::open_tap(&name)?;
            kernel::up_and_quiet(&name);
            (port, Some(kernel::packet_socket(&name)))
        }
    };
    Some(Fed {
        entry: Arc::new(PortEntry {
            no,
            name: format!("p{no}"),
            kind: port.kind(),
            port: Mutex::new(port),
        }),
        kernel,
    })
}

/// Every chunk of `pool` can be taken once, and no chunk twice.
fn assert_full_and_distinct(pool: &Pool, what: &str) {
    assert_eq!(pool.free_count(), pool.capacity(), "{what}: frames lost");
    let frames: Vec<_> = std::iter::from_fn(|| pool.alloc()).collect();
    let mut offsets: Vec<u32> = frames.iter().map(|f| f.pool().unwrap().1).collect();
    offsets.sort();
    offsets.dedup();
    assert_eq!(
        offsets.len(),
        pool.capacity(),
        "{what}: a chunk is on the free ring twice"
    );
}

fn frame(n: usize, len: usize) -> Vec<u8> {
    let mut f: Vec<u8> = (0..len).map(|i| (n + i) as u8).collect();
    f[..12].copy_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, n as u8]);
    f[12..14].copy_from_slice(&kernel::ETH_TEST.to_be_bytes());
    f
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn forwarding_never_loses_or_double_frees_a_frame(
        kinds in prop::collection::vec(kind(), 2..6),
        lists in prop::collection::vec(prop::option::of(prop::collection::vec(action(6), 0..5)), 6),
        traffic in prop::collection::vec((0..6usize, 14..2300usize, 1..40usize, 0..4usize), 1..16),
    ) {
        let shared = Pool::new(64, 2048).unwrap();
        let ports: Vec<Fed> = kinds
            .iter()
            .enumerate()
            .filter_map(|(i, &k)| open(k, i as u32 + 1, &shared))
            .collect();
        let mut pools: Vec<(String, Pool)> = ports
            .iter()
            .filter_map(|p| {
                let port = p.entry.lock();
                port.pool().map(|pool| (format!("port {} ({})", p.entry.no, p.entry.kind), pool.clone()))
            })
            .collect();
        pools.push(("shared ring pool".into(), shared.clone()));

        let pmd_shared = Arc::new(PmdShared::default());
        let upcalls = Arc::new(UpcallQueue::new(16));
        let mut pmd = Pmd::new(0, 1024, pmd_shared.clone(), upcalls.clone(), Clock::new()).unwrap();
        pools.push(("the thread's copy pool".into(), pmd.copy_pool().clone()));
        let mut map: PortMap = vec![None; ports.len() + 1];
        for p in &ports {
            map[p.entry.no as usize] = Some(p.entry.clone());
        }
        pmd_shared.commands.push(Command::Ports {
            all: Arc::new(map),
            rx: ports.iter().map(|p| p.entry.clone()).collect(),
        });
        let mask = FlowKey { in_port: u32::MAX, ..FlowKey::default() };
        // A port without a list has no flow: its packets miss and go up (or are lost).
        for (no, list) in lists.iter().enumerate().take(ports.len()) {
            if let Some(list) = list {
                let key = FlowKey { in_port: no as u32 + 1, ..FlowKey::default() };
                let flow = Megaflow::new(&key, &mask, list.clone().into(), Arc::new(FlowStats::default()));
                pmd_shared.commands.push(Command::Insert(Arc::new(flow)));
            }
        }

        for (n, &(port, len, count, polls)) in traffic.iter().enumerate() {
            let p = &ports[port % ports.len()];
            for i in 0..count {
                match &p.kernel {
                    // The kernel sends at most an MTU's worth.
                    Some(sock) => kernel::send(sock, &frame(n + i, len.min(1514))),
                    None => p.entry.lock().inject(&frame(n + i, len)).unwrap(),
                }
            }
            for _ in 0..polls {
                pmd.poll_once();
            }
            let mut up = Vec::new();
            upcalls.pop_batch(8, &mut up);
        }

        // Traffic stops: no flows, so what still circulates (loopback ports)
        // misses and is dropped; then every port's tx side is emptied.
        pmd_shared.commands.push(Command::Flush);
        let mut idle = 0;
        while idle < 20 {
            idle = if pmd.poll_once() == 0 { idle + 1 } else { 0 };
            let mut up = Vec::new();
            upcalls.pop_batch(64, &mut up);
            if idle > 0 {
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
        }
        for p in &ports {
            let mut port = p.entry.lock();
            if p.kernel.is_none() {
                let _ = port.drain(usize::MAX).unwrap();
            }
        }
        for (what, pool) in &pools {
            // A tap keeps one frame as the buffer of its next read.
            let spare = usize::from(what.contains("(tap)"));
            prop_assert!(pool.capacity() - pool.free_count() <= spare, "{what}: {pool:?}");
        }
        for p in &ports {
            p.entry.lock().close();
        }
        drop(pmd);
        for (what, pool) in &pools {
            assert_full_and_distinct(pool, what);
        }
    }
}
