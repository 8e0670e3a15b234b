//! Cost per packet of flow key extraction and of the commonest rewrite
//! actions, in ns/packet (Criterion's time per iteration, one packet each).
//! The pipeline target is parse + EMC hit ≤ 40 ns/packet, so parsing should
//! take about 15–20 ns. `cargo bench -p nvs-datapath --bench parse`.
//!
//! Every case runs twice: `wall/…` is elapsed time (Criterion's default);
//! `cpu/…` is the benchmark thread's CPU time, which leaves out the time the
//! thread spends descheduled — on these time-shared 2-core machines the
//! steadier figure of what a packet costs the polling core.

#[path = "common/cpu.rs"]
mod cpu;

use std::hint::black_box;

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use nvs_datapath::actions::{execute, Action, ActionSink, Field, PacketBuf, SetField, HEADROOM};
use nvs_datapath::key::FlowKey;
use nvs_datapath::parse::extract;

/// 64-byte Ethernet/IPv4/UDP frame (60 bytes without FCS, as a NIC hands it).
fn udp4_64() -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[..12].copy_from_slice(&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14..34].copy_from_slice(&[
        0x45, 0, 0, 46, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ]);
    let c = nvs_datapath::checksum::finish(nvs_datapath::checksum::sum(&f[14..34], 0));
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f[34..42].copy_from_slice(&[0x04, 0xd2, 0x16, 0x2e, 0, 26, 0x12, 0x34]);
    f
}

/// Ethernet/IPv6/TCP frame (ACK, no payload): 74 bytes.
fn tcp6() -> Vec<u8> {
    let mut f = vec![0u8; 74];
    f[..12].copy_from_slice(&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]);
    f[12..14].copy_from_slice(&[0x86, 0xdd]);
    f[14..22].copy_from_slice(&[0x60, 0, 0, 0, 0, 20, 6, 64]);
    f[22] = 0x20;
    f[37] = 1;
    f[38] = 0x20;
    f[53] = 2;
    f[54..74].copy_from_slice(&[
        0x01, 0xbb, 0xc3, 0x50, 0, 0, 0, 1, 0, 0, 0, 1, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0,
    ]);
    f
}

/// CPU time of the calling thread (`CLOCK_THREAD_CPUTIME_ID`), in ns.
struct ThreadCpu;

fn thread_cpu_ns() -> u64 {
    cpu::thread_cpu_now().as_nanos() as u64
}

impl Measurement for ThreadCpu {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns() - start
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuNs
    }
}

/// Formats CPU nanoseconds (the figures here are all in the ns range).
struct CpuNs;

impl ValueFormatter for CpuNs {
    fn scale_values(&self, _typical: f64, _values: &mut [f64]) -> &'static str {
        "ns (cpu)"
    }
    fn scale_throughputs(&self, _typical: f64, t: &Throughput, values: &mut [f64]) -> &'static str {
        let per_iter = match *t {
            Throughput::Elements(n) | Throughput::ElementsAndBytes { elements: n, .. } => n as f64,
            Throughput::Bytes(n) | Throughput::BytesDecimal(n) => n as f64,
            Throughput::Bits(n) => n as f64,
        };
        for v in values {
            *v = per_iter * 1e3 / *v;
        }
        "M/s (cpu)"
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

/// Counts outputs, as the core's per-port batching would, without copying.
struct Count(u64);

impl ActionSink for Count {
    fn output(&mut self, port: u32, pkt: &[u8], _last: bool) {
        self.0 += port as u64 + pkt.len() as u64;
    }
    fn userspace(&mut self, _cookie: u64, _pkt: &[u8], _last: bool) {}
}

fn bench_extract<M: Measurement>(c: &mut Criterion<M>, clock: &str) {
    let mut g = c.benchmark_group(format!("{clock}/extract"));
    g.throughput(Throughput::Elements(1));
    for (name, frame) in [("udp4_64B", udp4_64()), ("tcp6_74B", tcp6())] {
        let mut key = FlowKey::default();
        g.bench_function(name, |b| {
            b.iter(|| {
                let l = extract(black_box(&frame), 1, &mut key);
                black_box(key.tp_src);
                black_box(l)
            })
        });
    }
    g.finish();
}

fn bench_actions<M: Measurement>(c: &mut Criterion<M>, clock: &str) {
    let mut g = c.benchmark_group(format!("{clock}/actions"));
    g.throughput(Throughput::Elements(1));
    let frame = udp4_64();
    let mut key = FlowKey::default();
    let layers = extract(&frame, 1, &mut key);
    let mut storage = vec![0u8; HEADROOM + frame.len() + 64];
    storage[HEADROOM..HEADROOM + frame.len()].copy_from_slice(&frame);
    let mut sink = Count(0);

    // Alternate two addresses so every run really rewrites the field and
    // both checksums (IPv4 header and UDP).
    let sets = [[10u8, 1, 2, 3], [192, 168, 0, 1]].map(|a| {
        [
            Action::Set(SetField::new(Field::Ipv4Dst, &a).unwrap()),
            Action::Output(2),
        ]
    });
    {
        let mut buf = PacketBuf::new(&mut storage[..], HEADROOM, frame.len()).unwrap();
        let mut i = 0;
        g.bench_function("set_ipv4_dst+output", |b| {
            b.iter(|| {
                let mut l = layers;
                i ^= 1;
                black_box(execute(black_box(&sets[i]), &mut buf, &mut l, &mut sink))
            })
        });
    }

    // Each run starts from a fresh view of the same region (what a back end
    // does per received frame), then pushes one tag into the headroom.
    let push = [
        Action::PushVlan {
            tpid: 0x8100,
            tci: 0x0064,
        },
        Action::Output(2),
    ];
    g.bench_function("push_vlan+output", |b| {
        b.iter(|| {
            let mut buf = PacketBuf::new(&mut storage[..], HEADROOM, frame.len()).unwrap();
            let mut l = layers;
            black_box(execute(black_box(&push), &mut buf, &mut l, &mut sink))
        })
    });
    g.finish();
    black_box(sink.0);
}

fn wall(c: &mut Criterion) {
    bench_extract(c, "wall");
    bench_actions(c, "wall");
}

fn cpu(c: &mut Criterion<ThreadCpu>) {
    bench_extract(c, "cpu");
    bench_actions(c, "cpu");
}

criterion_group!(wall_time, wall);
criterion_group! {
    name = cpu_time;
    config = Criterion::default().with_measurement(ThreadCpu);
    targets = cpu
}
criterion_main!(wall_time, cpu_time);
