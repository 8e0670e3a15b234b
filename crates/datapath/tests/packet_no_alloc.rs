//! The per-packet work of the packet side — `extract` and `execute` — must
//! not allocate. A counting global allocator (this test binary only) checks
//! it for every kind of frame and every action kind, including pushes that
//! use the headroom and ones that fall back to moving the tail.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use nvs_datapath::actions::{execute, Action, ActionSink, Field, PacketBuf, SetField};
use nvs_datapath::key::FlowKey;
use nvs_datapath::parse::extract;

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; the only
// addition is a thread-local counter, which itself never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCS.with(|c| c.get())
}

/// Sums what it is shown, as a batching core would note it, without copying.
struct Tally(u64);

impl ActionSink for Tally {
    fn output(&mut self, port: u32, pkt: &[u8], _last: bool) {
        self.0 += port as u64 + pkt.len() as u64;
    }
    fn userspace(&mut self, cookie: u64, pkt: &[u8], _last: bool) {
        self.0 += cookie + pkt.len() as u64;
    }
}

fn frames() -> Vec<Vec<u8>> {
    let macs = [2u8, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    let ip4 = |proto: u8, l4: &[u8]| {
        let mut h = vec![
            0x45,
            0,
            0,
            (20 + l4.len()) as u8,
            0,
            0,
            0,
            0,
            64,
            proto,
            0,
            0,
            10,
            0,
            0,
            1,
            10,
            0,
            0,
            2,
        ];
        h.extend_from_slice(l4);
        h
    };
    let tcp = [
        0u8, 1, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x12, 0xff, 0xff, 0, 0, 0, 0,
    ];
    let udp = [0u8, 1, 0, 2, 0, 8, 0x12, 0x34];
    let mut ip6 = vec![0x60, 0, 0, 0, 0, 20, 6, 64];
    ip6.extend_from_slice(&[1; 32]);
    ip6.extend_from_slice(&tcp);
    vec![
        [&macs[..], &[0x08, 0x00], &ip4(17, &udp)].concat(),
        [&macs[..], &[0x81, 0x00, 0, 5, 0x08, 0x00], &ip4(6, &tcp)].concat(),
        [&macs[..], &[0x86, 0xdd], &ip6].concat(),
        [
            &macs[..],
            &[0x08, 0x06],
            &[0, 1, 8, 0, 6, 4, 0, 1],
            &[0; 20],
        ]
        .concat(),
        macs[..10].to_vec(),
    ]
}

fn lists() -> Vec<Vec<Action>> {
    let set = |f: Field, v: &[u8]| Action::Set(SetField::new(f, v).unwrap());
    vec![
        vec![
            set(Field::Ipv4Dst, &[1, 2, 3, 4]),
            set(Field::TpSrc, &[9, 9]),
            Action::Output(1),
        ],
        vec![
            set(Field::Ipv6Src, &[7; 16]),
            set(Field::EthDst, &[1; 6]),
            Action::Output(2),
        ],
        vec![
            Action::PushVlan {
                tpid: 0x88a8,
                tci: 3,
            },
            Action::PushVlan {
                tpid: 0x8100,
                tci: 4,
            },
            Action::Output(3),
        ],
        vec![
            Action::PopVlan,
            Action::Truncate(20),
            Action::Output(4),
            Action::Userspace(5),
        ],
        vec![Action::Output(6), Action::Drop, Action::Output(7)],
    ]
}

#[test]
fn extract_and_execute_do_not_allocate() {
    let frames = frames();
    let lists = lists();
    // Regions set up front, as a back end would: one with headroom, one
    // without (pushes move the tail instead).
    let mut with_headroom = vec![0u8; 64 + 128];
    let mut no_headroom = vec![0u8; 128];
    let mut key = FlowKey::default();
    let mut sink = Tally(0);

    let before = allocations();
    for f in &frames {
        for list in &lists {
            for (region, headroom) in [(&mut with_headroom, 64usize), (&mut no_headroom, 0)] {
                region[headroom..headroom + f.len()].copy_from_slice(f);
                let Ok(mut buf) = PacketBuf::new(&mut region[..], headroom, f.len()) else {
                    panic!("frame fits its region");
                };
                let mut layers = extract(buf.data(), 1, &mut key);
                execute(list, &mut buf, &mut layers, &mut sink);
            }
        }
    }
    let after = allocations();
    assert_eq!(after - before, 0, "per-packet path allocated");
    assert!(sink.0 > 0, "the sink saw the outputs");
}
