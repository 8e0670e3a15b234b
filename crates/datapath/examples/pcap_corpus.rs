//! Writes the pcap oracle's random corpus (`tests/pcap_gen`) to a file, for
//! oracles outside Rust (the `nvs-ofctl parse-pcap` end-to-end test):
//! `cargo run --release -p nvs-datapath --example pcap_corpus -- SEED FRAMES PREFIXED OUT`.

#[path = "../tests/pcap_gen/mod.rs"]
mod pcap_gen;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [seed, count, prefixed, out] = args.as_slice() else {
        eprintln!("usage: pcap_corpus SEED FRAMES PREFIXED OUT.pcap");
        std::process::exit(2);
    };
    let number = |s: &str| {
        s.parse::<usize>()
            .unwrap_or_else(|_| panic!("not a number: {s}"))
    };
    let frames = pcap_gen::corpus(number(seed) as u64, number(count), number(prefixed));
    std::fs::write(out, pcap_gen::pcap(frames.iter().map(Vec::as_slice)))
        .expect("write the pcap file");
}
