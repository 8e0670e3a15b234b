//! Tunnel ports: VXLAN (RFC 7348) and Geneve (RFC 8926) over IPv4.
//!
//! # Underlay: a kernel UDP socket
//! Every tunnel port of one type, UDP port and local address (in one
//! network namespace) shares one [`Endpoint`]: a kernel UDP socket bound to
//! `local_ip:dst_port` (`0.0.0.0` without `local_ip`). nvs pushes only the
//! 8-byte VXLAN or Geneve header into the frame's headroom (no copy of the
//! frame) and hands the datagram to the kernel with `sendmmsg`, in batches;
//! the kernel routes, resolves neighbours, writes the outer IP and UDP
//! headers, computes the outer UDP checksum (`csum=true`; off by default, as
//! OVS and Linux leave it for VXLAN over IPv4) and fragments an outer packet
//! larger than the underlay's MTU. Receive is `recvmmsg` into frames of the
//! endpoint's pool, 8 bytes short of the headroom so the inner frame keeps
//! the full headroom after the header is stripped. The receiving kernel
//! reassembles outer fragments, so an inner frame larger than the underlay
//! MTU minus the overhead (50 bytes for VXLAN or Geneve without options)
//! still arrives whole, at the cost of two outer packets.
//!
//! The alternative, OVS's native tunnelling (userspace writes the full outer
//! Ethernet/IP/UDP headers and sends through a kernel-device port, with its
//! own route table, ARP/ND cache and `tnl_push`/`tnl_pop` datapath
//! actions), saves the socket layer's per-datagram cost (a few hundred ns
//! per packet of system-call and UDP work) and can run without the kernel
//! stack (AF_XDP, DPDK). It costs a userspace ARP and route cache that
//! must follow the kernel's (snooping replies, `ovs-appctl tnl/*`), outer
//! checksums and fragmentation done by hand, and a kernel-device port for
//! the underlay. The socket needs none of that and works on any interface
//! the kernel can route through; a native path can be added behind the same
//! port type later.
//!
//! # Demux
//! A datagram is delivered to the member port whose (remote_ip, in_key)
//! matches it exactly, else one with a fixed remote_ip and `key=flow`, else
//! one with `remote_ip=flow` and a fixed key, else one with both `flow`
//! (OVS's order). Whichever member polls the socket reads for all: a packet
//! for another member waits in that member's bounded queue (a full queue is
//! a counted drop). The packet carries the tunnel metadata (VNI, outer
//! source and destination) into the flow key.
//!
//! # Hostile input
//! A datagram shorter than its header plus an Ethernet header, a Geneve
//! header whose option length overruns the datagram, a version other than 0,
//! a protocol other than Ethernet, a critical option (which nvs cannot
//! process), a VXLAN header without the I flag, or a datagram cut to the
//! buffer is counted in `rx_errors` of the polling port and dropped; one
//! that no member takes is counted in `rx_dropped`.
//!
//! # Transmit
//! The destination is the port's `remote_ip`, or with `remote_ip=flow` the
//! packet's tunnel metadata (`SetTunnel`); the VNI is `out_key`, or with
//! `key=flow` the metadata's ID. A packet with no destination is a
//! `tx_errors`; one the kernel refuses (no route, full buffer) `tx_dropped`.
//! The outer source address is the socket's: a `tun_src` set by a rule is
//! not applied (use `local_ip`).
//!
//! Options: `remote_ip` (IPv4 or `flow`, required), `local_ip` (IPv4),
//! `key`, `in_key`, `out_key` (a number below 2^24, or `flow`; default 0),
//! `dst_port` (default 4789 for VXLAN, 6081 for Geneve), `csum`
//! (`true`/`false`), `ttl` (1 to 255; the kernel's default otherwise) and
//! `tos` (a byte; 0 by default), given per datagram to the kernel in control
//! messages so ports sharing a socket may differ. Any other option is refused.

mod udp;

use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use crossbeam_queue::ArrayQueue;

use crate::actions::{PacketBuf, HEADROOM};
use crate::frame::{spread_chunk, Frame, Pool};
use crate::key::Tunnel;
use crate::port::{Batch, Packet, Port, PortError, PortOptions, PortStats, BURST};
use crate::ports::tap::MAX_FRAME;
use udp::{Datagram, Received, UdpSocket};

/// The two encapsulations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Proto {
    Vxlan,
    Geneve,
}

impl Proto {
    pub fn name(self) -> &'static str {
        match self {
            Proto::Vxlan => "vxlan",
            Proto::Geneve => "geneve",
        }
    }

    /// The IANA UDP port.
    pub fn default_port(self) -> u16 {
        match self {
            Proto::Vxlan => 4789,
            Proto::Geneve => 6081,
        }
    }
}

/// Bytes of the header nvs pushes (no Geneve options).
pub const HEADER_LEN: usize = 8;
/// Geneve's protocol type for an Ethernet payload (Transparent Ethernet Bridging).
const ETH_BRIDGING: u16 = 0x6558;
/// Largest tunnel key VXLAN and Geneve carry.
pub const MAX_KEY: u32 = 0x00ff_ffff;

/// Why a received datagram is not a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    /// Shorter than the header plus an Ethernet header.
    Short,
    /// VXLAN: the I flag (a valid VNI) is not set.
    NoVni,
    /// Geneve: a version other than 0.
    Version,
    /// Geneve: the options run past the datagram.
    OptionsOverrun,
    /// Geneve: the payload is not Ethernet.
    NotEthernet,
    /// Geneve: a critical option nvs cannot process.
    Critical,
}

/// The VNI and header length of a datagram, or why it is refused.
pub fn decap(proto: Proto, d: &[u8]) -> Result<(u32, usize), Malformed> {
    if d.len() < HEADER_LEN {
        return Err(Malformed::Short);
    }
    let vni = u32::from_be_bytes([0, d[4], d[5], d[6]]);
    let len = match proto {
        Proto::Vxlan => {
            if d[0] & 0x08 == 0 {
                return Err(Malformed::NoVni);
            }
            HEADER_LEN
        }
        Proto::Geneve => {
            if d[0] >> 6 != 0 {
                return Err(Malformed::Version);
            }
            let len = HEADER_LEN + 4 * usize::from(d[0] & 0x3f);
            if u16::from_be_bytes([d[2], d[3]]) != ETH_BRIDGING {
                return Err(Malformed::NotEthernet);
            }
            if d[1] & 0x40 != 0 {
                return Err(Malformed::Critical);
            }
            if len > d.len() {
                return Err(Malformed::OptionsOverrun);
            }
            len
        }
    };
    if d.len() < len + 14 {
        return Err(Malformed::Short);
    }
    Ok((vni, len))
}

/// Writes the header for `vni` into `h` (8 bytes).
pub fn encap_header(proto: Proto, vni: u32, h: &mut [u8]) {
    let [_, a, b, c] = (vni & MAX_KEY).to_be_bytes();
    let first = match proto {
        Proto::Vxlan => [0x08, 0, 0, 0],
        Proto::Geneve => {
            let [p, q] = ETH_BRIDGING.to_be_bytes();
            [0, 0, p, q]
        }
    };
    h[..4].copy_from_slice(&first);
    h[4..8].copy_from_slice(&[a, b, c, 0]);
}

/// A tunnel port's configuration, from its options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TunnelConfig {
    pub proto: Proto,
    /// `None`: `remote_ip=flow`.
    pub remote: Option<u32>,
    /// 0: any local address.
    pub local: u32,
    /// `None`: `in_key=flow` (any VNI).
    pub in_key: Option<u32>,
    /// `None`: `out_key=flow` (the packet's tunnel ID).
    pub out_key: Option<u32>,
    pub dst_port: u16,
    pub csum: bool,
    /// Outer TTL; `None`: the kernel's default (64).
    pub ttl: Option<u8>,
    /// Outer TOS byte (DSCP and ECN); 0 by default.
    pub tos: u8,
}

fn bad(port: &str, key: &str, value: &str, why: impl Into<String>) -> PortError {
    PortError::BadOption {
        port: port.to_string(),
        key: key.to_string(),
        value: value.to_string(),
        why: why.into(),
    }
}

fn parse_ip(port: &str, key: &str, v: &str) -> Result<u32, PortError> {
    v.parse::<std::net::Ipv4Addr>()
        .map(u32::from)
        .map_err(|_| bad(port, key, v, "expected an IPv4 address"))
}

fn parse_key(port: &str, key: &str, v: &str) -> Result<Option<u32>, PortError> {
    if v == "flow" {
        return Ok(None);
    }
    let n = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => v.parse::<u64>(),
    }
    .map_err(|_| bad(port, key, v, "expected a number or 'flow'"))?;
    if n > u64::from(MAX_KEY) {
        return Err(bad(
            port,
            key,
            v,
            "VXLAN and Geneve carry 24-bit keys (at most 16777215)",
        ));
    }
    Ok(Some(n as u32))
}

impl TunnelConfig {
    /// Reads and checks the options of port `name`.
    pub fn from_options(proto: Proto, name: &str, o: &PortOptions) -> Result<Self, PortError> {
        const KNOWN: [&str; 9] = [
            "remote_ip",
            "local_ip",
            "key",
            "in_key",
            "out_key",
            "dst_port",
            "csum",
            "ttl",
            "tos",
        ];
        if let Some((k, v)) = o.iter().find(|(k, _)| !KNOWN.contains(&k.as_str())) {
            return Err(bad(
                name,
                k,
                v,
                format!(
                    "not an option nvs's {} ports take (known: {})",
                    proto.name(),
                    KNOWN.join(", ")
                ),
            ));
        }
        let remote = match o.get("remote_ip").map(String::as_str) {
            None => {
                return Err(bad(
                    name,
                    "remote_ip",
                    "",
                    "a tunnel port needs remote_ip (an IPv4 address or 'flow')",
                ))
            }
            Some("flow") => None,
            Some(v) => Some(parse_ip(name, "remote_ip", v)?),
        };
        let local = match o.get("local_ip") {
            None => 0,
            Some(v) => parse_ip(name, "local_ip", v)?,
        };
        let key = match o.get("key") {
            None => Some(0),
            Some(v) => parse_key(name, "key", v)?,
        };
        let in_key = match o.get("in_key") {
            None => key,
            Some(v) => parse_key(name, "in_key", v)?,
        };
        let out_key = match o.get("out_key") {
            None => key,
            Some(v) => parse_key(name, "out_key", v)?,
        };
        let dst_port = match o.get("dst_port") {
            None => proto.default_port(),
            Some(v) => match v.parse::<u16>() {
                Ok(p) if p != 0 => p,
                _ => return Err(bad(name, "dst_port", v, "expected a UDP port (1 to 65535)")),
            },
        };
        let csum = match o.get("csum").map(String::as_str) {
            None | Some("false") => false,
            Some("true") => true,
            Some(v) => return Err(bad(name, "csum", v, "expected true or false")),
        };
        let ttl = match o.get("ttl") {
            None => None,
            Some(v) => match v.parse::<u8>() {
                Ok(t) if t != 0 => Some(t),
                _ => return Err(bad(name, "ttl", v, "expected a TTL from 1 to 255")),
            },
        };
        let tos = match o.get("tos") {
            None => 0,
            Some(v) => match parse_key(name, "tos", v) {
                Ok(Some(t)) if t <= 0xff => t as u8,
                _ => {
                    return Err(bad(
                        name,
                        "tos",
                        v,
                        "expected a TOS byte from 0 to 255 ('inherit' is not supported)",
                    ))
                }
            },
        };
        Ok(TunnelConfig {
            proto,
            remote,
            local,
            in_key,
            out_key,
            dst_port,
            csum,
            ttl,
            tos,
        })
    }
}

/// Frames of an endpoint's receive pool.
const POOL_FRAMES: usize = 1024;
/// Bytes of a pool frame: headroom and the largest frame with a Geneve header and its options.
const CHUNK: usize = spread_chunk(HEADROOM + MAX_FRAME + HEADER_LEN + 252);
/// Where a datagram is received in a frame: the header lands just before the headroom ends.
const RX_OFFSET: usize = HEADROOM - HEADER_LEN;
/// Packets that may wait for a member that is not polling the socket.
const MEMBER_QUEUE: usize = 1024;

/// One tunnel port as the endpoint's demux sees it.
struct Member {
    remote: Option<u32>,
    in_key: Option<u32>,
    queue: ArrayQueue<Packet>,
    queue_drops: AtomicU64,
}

impl Member {
    /// How well it takes a datagram from `src` with `vni`: 0 (exact) to 3 (both flow); None when it does not.
    fn rank(&self, src: u32, vni: u32) -> Option<u8> {
        let r = match self.remote {
            Some(ip) if ip == src => 0,
            Some(_) => return None,
            None => 2,
        };
        let k = match self.in_key {
            Some(k) if k == vni => 0,
            Some(_) => return None,
            None => 1,
        };
        Some(r + k)
    }
}

/// What identifies a shared socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct EndpointKey {
    netns: u64,
    proto: Proto,
    port: u16,
    local: u32,
}

/// A shared underlay socket and the ports that use it.
struct Endpoint {
    key: EndpointKey,
    sock: UdpSocket,
    pool: Pool,
    members: Mutex<Vec<Arc<Member>>>,
    /// Held by the member reading the socket: `BURST` frames kept ready for
    /// the next read (an empty poll takes none from the pool and gives none back).
    reading: Mutex<Vec<Frame>>,
    /// Members that asked for the outer checksum.
    csum_users: AtomicU64,
}

/// Every open endpoint (a weak reference: the last port closing closes it).
static ENDPOINTS: Mutex<Vec<Weak<Endpoint>>> = Mutex::new(Vec::new());

fn current_netns() -> u64 {
    std::fs::metadata("/proc/thread-self/ns/net")
        .map(|m| m.ino())
        .unwrap_or(0)
}

impl Endpoint {
    /// The endpoint for `cfg`, opened when none is.
    fn get(name: &str, cfg: &TunnelConfig) -> Result<Arc<Endpoint>, PortError> {
        let key = EndpointKey {
            netns: current_netns(),
            proto: cfg.proto,
            port: cfg.dst_port,
            local: cfg.local,
        };
        let mut all = ENDPOINTS.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|w| w.strong_count() > 0);
        if let Some(e) = all.iter().filter_map(Weak::upgrade).find(|e| e.key == key) {
            return Ok(e);
        }
        let sock = UdpSocket::bind(cfg.local, cfg.dst_port).map_err(|source| PortError::Os {
            port: name.to_string(),
            what: "binding the tunnel's UDP socket",
            source,
        })?;
        sock.set_checksum(false)?;
        let e = Arc::new(Endpoint {
            key,
            sock,
            pool: Pool::new(POOL_FRAMES, CHUNK)?,
            members: Mutex::new(Vec::new()),
            reading: Mutex::new(Vec::with_capacity(BURST)),
            csum_users: AtomicU64::new(0),
        });
        all.push(Arc::downgrade(&e));
        Ok(e)
    }

    fn members(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Member>>> {
        self.members.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A VXLAN or Geneve port (see the module doc).
pub struct TunnelPort {
    cfg: TunnelConfig,
    endpoint: Option<Arc<Endpoint>>,
    member: Arc<Member>,
    stats: PortStats,
}

impl TunnelPort {
    /// Opens a tunnel port of `proto`.
    pub fn open_proto(proto: Proto, name: &str, options: &PortOptions) -> Result<Self, PortError> {
        let cfg = TunnelConfig::from_options(proto, name, options)?;
        let endpoint = Endpoint::get(name, &cfg)?;
        let member = Arc::new(Member {
            remote: cfg.remote,
            in_key: cfg.in_key,
            queue: ArrayQueue::new(MEMBER_QUEUE),
            queue_drops: AtomicU64::new(0),
        });
        {
            let mut members = endpoint.members();
            if members
                .iter()
                .any(|m| m.remote == cfg.remote && m.in_key == cfg.in_key)
            {
                let show = |v: Option<u32>, ip: bool| match v {
                    None => "flow".to_string(),
                    Some(x) if ip => std::net::Ipv4Addr::from(x).to_string(),
                    Some(x) => x.to_string(),
                };
                return Err(bad(
                    name,
                    "remote_ip",
                    &show(cfg.remote, true),
                    format!(
                        "another {} port on UDP port {} already receives remote_ip={} with key={}",
                        proto.name(),
                        cfg.dst_port,
                        show(cfg.remote, true),
                        show(cfg.in_key, false)
                    ),
                ));
            }
            members.push(member.clone());
        }
        if cfg.csum && endpoint.csum_users.fetch_add(1, Ordering::Relaxed) == 0 {
            endpoint.sock.set_checksum(true)?;
        }
        Ok(TunnelPort {
            cfg,
            endpoint: Some(endpoint),
            member,
            stats: PortStats::default(),
        })
    }

    /// The port's configuration.
    pub fn config(&self) -> &TunnelConfig {
        &self.cfg
    }

    /// Reads the socket once, keeping this member's packets in `batch` and
    /// queueing the others'.
    fn read_socket(&mut self, ep: &Endpoint, batch: &mut Batch) {
        let Ok(mut frames) = ep.reading.try_lock() else {
            return;
        };
        refill(&mut frames, &ep.pool);
        let mut got = [Received::default(); BURST];
        let ready = frames.len().min(batch.room());
        let n = ep
            .sock
            .recv_batch(&mut frames[..ready], RX_OFFSET, &mut got);
        if n == 0 {
            return;
        }
        let members = ep.members();
        for (frame, r) in frames.drain(..n).zip(&got[..n]) {
            let data = &frame.as_ref()[RX_OFFSET..RX_OFFSET + r.len];
            let (vni, hlen) = match decap(self.cfg.proto, data) {
                Ok(v) if !r.truncated => v,
                _ => {
                    self.stats.rx_errors += 1;
                    continue;
                }
            };
            let Some(target) = members
                .iter()
                .filter_map(|m| m.rank(r.src, vni).map(|k| (k, m)))
                .min_by_key(|(k, _)| *k)
                .map(|(_, m)| m)
            else {
                self.stats.rx_dropped += 1;
                continue;
            };
            let dst = if r.dst != 0 { r.dst } else { ep.key.local };
            let Ok(mut pkt) = PacketBuf::new(frame, RX_OFFSET + hlen, r.len - hlen) else {
                self.stats.rx_errors += 1;
                continue;
            };
            pkt.tunnel = Tunnel {
                id: vni,
                src: r.src,
                dst,
            };
            if Arc::ptr_eq(target, &self.member) {
                self.stats.rx_packets += 1;
                self.stats.rx_bytes += pkt.len() as u64;
                batch.pkts.push(pkt);
            } else if target.queue.push(pkt).is_err() {
                target.queue_drops.fetch_add(1, Ordering::Relaxed);
            }
        }
        drop(members);
        refill(&mut frames, &ep.pool);
    }
}

/// Tops the frames kept for the next read up to `BURST` (fewer when the pool is short).
fn refill(frames: &mut Vec<Frame>, pool: &Pool) {
    while frames.len() < BURST {
        match pool.alloc() {
            Some(f) => frames.push(f),
            None => break,
        }
    }
}

impl Port for TunnelPort {
    /// Opens a VXLAN port (`open_proto` opens either type).
    fn open(name: &str, options: &PortOptions) -> Result<Self, PortError> {
        TunnelPort::open_proto(Proto::Vxlan, name, options)
    }

    fn kind(&self) -> &'static str {
        self.cfg.proto.name()
    }

    fn rx_burst(&mut self, batch: &mut Batch) -> Result<usize, PortError> {
        let Some(ep) = self.endpoint.clone() else {
            return Ok(0);
        };
        let before = batch.len();
        while batch.room() > 0 {
            let Some(pkt) = self.member.queue.pop() else {
                break;
            };
            self.stats.rx_packets += 1;
            self.stats.rx_bytes += pkt.len() as u64;
            batch.pkts.push(pkt);
        }
        if batch.room() > 0 {
            self.read_socket(&ep, batch);
        }
        self.stats.rx_dropped += self.member.queue_drops.swap(0, Ordering::Relaxed);
        Ok(batch.len() - before)
    }

    fn tx_burst(&mut self, batch: &mut Batch) -> Result<usize, PortError> {
        let Some(ep) = self.endpoint.clone() else {
            self.stats.tx_dropped += batch.len() as u64;
            batch.pkts.clear();
            return Ok(0);
        };
        let mut dsts = [0u32; BURST];
        let mut ready = 0;
        for pkt in batch.pkts.iter_mut() {
            let dst = self.cfg.remote.unwrap_or(pkt.tunnel.dst);
            let vni = self.cfg.out_key.unwrap_or(pkt.tunnel.id);
            if dst == 0 || !pkt.insert(0, HEADER_LEN) {
                // No destination (remote_ip=flow without a tunnel set) or no room.
                pkt.truncate(0);
                continue;
            }
            encap_header(self.cfg.proto, vni, &mut pkt.data_mut()[..HEADER_LEN]);
            dsts[ready] = dst;
            ready += 1;
        }
        let errors = (batch.len() - ready) as u64;
        let (ttl, tos) = (self.cfg.ttl.unwrap_or(0), self.cfg.tos);
        let mut grams = [Datagram {
            bytes: &[],
            dst: 0,
            ttl,
            tos,
        }; BURST];
        for ((g, p), dst) in grams
            .iter_mut()
            .zip(batch.pkts.iter().filter(|p| !p.is_empty()))
            .zip(dsts)
        {
            *g = Datagram {
                bytes: p.data(),
                dst,
                ttl,
                tos,
            };
        }
        let (sent, sent_bytes) = ep.sock.send_batch(&grams[..ready], self.cfg.dst_port);
        self.stats.tx_errors += errors;
        self.stats.tx_dropped += (ready - sent) as u64;
        self.stats.tx_packets += sent as u64;
        self.stats.tx_bytes += (sent_bytes - sent * HEADER_LEN) as u64;
        batch.pkts.clear();
        Ok(sent)
    }

    fn stats(&self) -> PortStats {
        self.stats
    }

    fn close(&mut self) {
        if let Some(ep) = self.endpoint.take() {
            ep.members().retain(|m| !Arc::ptr_eq(m, &self.member));
            if self.cfg.csum && ep.csum_users.fetch_sub(1, Ordering::Relaxed) == 1 {
                let _ = ep.sock.set_checksum(false);
            }
            while self.member.queue.pop().is_some() {}
        }
    }

    fn status(&self) -> PortOptions {
        let mut s = PortOptions::new();
        s.insert(
            "tunnel_transport".into(),
            format!("kernel UDP socket, port {}", self.cfg.dst_port),
        );
        if let Some(remote) = self.cfg.remote {
            let src = if self.cfg.local != 0 {
                Some(self.cfg.local)
            } else {
                UdpSocket::source_for(remote)
            };
            if let Some(iface) = src.and_then(udp::interface_with) {
                s.insert("tunnel_egress_iface".into(), iface);
            }
        }
        s
    }

    fn pool(&self) -> Option<&Pool> {
        self.endpoint.as_ref().map(|e| &e.pool)
    }
}

impl Drop for TunnelPort {
    fn drop(&mut self) {
        self.close();
    }
}

/// Opens a VXLAN port (the registry's opener for `vxlan`).
pub fn open_vxlan(name: &str, options: &PortOptions) -> Result<Box<dyn Port>, PortError> {
    Ok(Box::new(TunnelPort::open_proto(
        Proto::Vxlan,
        name,
        options,
    )?))
}

/// Opens a Geneve port (the registry's opener for `geneve`).
pub fn open_geneve(name: &str, options: &PortOptions) -> Result<Box<dyn Port>, PortError> {
    Ok(Box::new(TunnelPort::open_proto(
        Proto::Geneve,
        name,
        options,
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::heap_packet;
    use proptest::prelude::*;

    /// A frame with a recognisable 14-byte Ethernet header and `n` bytes after it.
    fn frame(n: usize) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
        f.extend((0..n).map(|i| i as u8));
        f
    }

    fn wrapped(proto: Proto, vni: u32, inner: &[u8]) -> Vec<u8> {
        let mut d = vec![0u8; HEADER_LEN];
        encap_header(proto, vni, &mut d);
        d.extend_from_slice(inner);
        d
    }

    #[test]
    fn headers_round_trip() {
        for proto in [Proto::Vxlan, Proto::Geneve] {
            let d = wrapped(proto, 0x00ab_cdef, &frame(50));
            assert_eq!(decap(proto, &d), Ok((0x00ab_cdef, HEADER_LEN)));
            assert_eq!(&d[HEADER_LEN..], &frame(50)[..]);
        }
        // RFC 7348: flags 0x08, VNI in bytes 4..7; RFC 8926: protocol 0x6558.
        assert_eq!(
            wrapped(Proto::Vxlan, 42, &[])[..],
            [0x08, 0, 0, 0, 0, 0, 42, 0]
        );
        assert_eq!(
            wrapped(Proto::Geneve, 42, &[])[..],
            [0, 0, 0x65, 0x58, 0, 0, 42, 0]
        );
    }

    #[test]
    fn geneve_options_are_skipped() {
        // Two words of (non-critical) options between the header and the frame.
        let mut d = wrapped(Proto::Geneve, 9, &[]);
        d[0] = 2;
        d.extend_from_slice(&[0x01, 0x02, 0x03, 0x01, 0xaa, 0xbb, 0xcc, 0xdd]);
        d.extend_from_slice(&frame(10));
        assert_eq!(decap(Proto::Geneve, &d), Ok((9, 16)));
    }

    #[test]
    fn hostile_headers_are_refused() {
        for proto in [Proto::Vxlan, Proto::Geneve] {
            let whole = wrapped(proto, 1, &frame(0));
            for cut in 0..whole.len() {
                assert_eq!(
                    decap(proto, &whole[..cut]),
                    Err(Malformed::Short),
                    "{proto:?} cut at {cut}"
                );
            }
        }
        let mut d = wrapped(Proto::Vxlan, 1, &frame(10));
        d[0] = 0;
        assert_eq!(decap(Proto::Vxlan, &d), Err(Malformed::NoVni));
        let good = wrapped(Proto::Geneve, 1, &frame(10));
        let mut d = good.clone();
        d[0] = 0x3f; // 63 words of options: 252 bytes, past the datagram
        assert_eq!(decap(Proto::Geneve, &d), Err(Malformed::OptionsOverrun));
        let mut d = good.clone();
        d[0] = 0x40;
        assert_eq!(decap(Proto::Geneve, &d), Err(Malformed::Version));
        let mut d = good.clone();
        d[3] = 0x00;
        assert_eq!(decap(Proto::Geneve, &d), Err(Malformed::NotEthernet));
        let mut d = good.clone();
        d[1] = 0x40;
        assert_eq!(decap(Proto::Geneve, &d), Err(Malformed::Critical));
        // Options that fit but leave no room for an Ethernet header.
        let mut d = wrapped(Proto::Geneve, 1, &[0; 16]);
        d[0] = 2;
        assert_eq!(decap(Proto::Geneve, &d), Err(Malformed::Short));
    }

    proptest! {
        #[test]
        fn decap_never_panics_and_stays_inside(d in proptest::collection::vec(any::<u8>(), 0..400)) {
            for proto in [Proto::Vxlan, Proto::Geneve] {
                if let Ok((vni, len)) = decap(proto, &d) {
                    prop_assert!(len + 14 <= d.len());
                    prop_assert!(vni <= MAX_KEY);
                }
            }
        }
    }

    #[test]
    fn options_are_checked() {
        let open = |kvs: &[(&str, &str)]| {
            let o: PortOptions = kvs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            TunnelConfig::from_options(Proto::Vxlan, "t", &o)
        };
        let c = open(&[
            ("remote_ip", "flow"),
            ("key", "flow"),
            ("local_ip", "10.0.0.1"),
        ])
        .unwrap();
        assert_eq!(
            (c.remote, c.in_key, c.out_key, c.local, c.dst_port),
            (None, None, None, 0x0a00_0001, 4789)
        );
        let c = open(&[
            ("remote_ip", "1.2.3.4"),
            ("in_key", "0x10"),
            ("out_key", "7"),
            ("csum", "true"),
            ("ttl", "9"),
            ("tos", "0x10"),
        ])
        .unwrap();
        assert_eq!(
            (c.remote, c.in_key, c.out_key, c.csum, c.ttl, c.tos),
            (Some(0x0102_0304), Some(16), Some(7), true, Some(9), 16)
        );
        for (kvs, says) in [
            (&[("key", "1")][..], "needs remote_ip"),
            (&[("remote_ip", "1.2.3")][..], "IPv4"),
            (&[("remote_ip", "flow"), ("key", "16777216")][..], "24-bit"),
            (
                &[("remote_ip", "flow"), ("key", "x")][..],
                "number or 'flow'",
            ),
            (&[("remote_ip", "flow"), ("dst_port", "0")][..], "UDP port"),
            (
                &[("remote_ip", "flow"), ("csum", "yes")][..],
                "true or false",
            ),
            (
                &[("remote_ip", "flow"), ("tos", "inherit")][..],
                "'inherit' is not supported",
            ),
            (
                &[("remote_ip", "flow"), ("ttl", "0")][..],
                "TTL from 1 to 255",
            ),
            (
                &[("remote_ip", "flow"), ("df_default", "true")][..],
                "not an option",
            ),
        ] {
            let err = open(kvs).unwrap_err().to_string();
            assert!(err.contains(says), "{kvs:?}: {err}");
        }
    }

    fn opts(kvs: &[(&str, String)]) -> PortOptions {
        kvs.iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn rx_all(port: &mut TunnelPort, want: usize) -> Vec<Packet> {
        let mut batch = Batch::new();
        for _ in 0..500 {
            port.rx_burst(&mut batch).unwrap();
            if batch.len() >= want {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        std::mem::take(&mut batch.pkts)
    }

    /// Two ports on one socket: the exact (remote_ip, key) one and a flow
    /// one; datagrams go to the right one, bad ones are counted, and a flow
    /// port sends where the packet's tunnel metadata says.
    #[test]
    fn one_socket_demuxes_and_counts_hostile_datagrams() {
        let udp = 40000 + (std::process::id() % 10000) as u16;
        let local = ("local_ip", "127.0.0.1".to_string());
        let port = ("dst_port", udp.to_string());
        let mut exact = TunnelPort::open_proto(
            Proto::Vxlan,
            "exact",
            &opts(&[
                ("remote_ip", "127.0.0.3".into()),
                ("key", "5".into()),
                local.clone(),
                port.clone(),
            ]),
        )
        .unwrap();
        let mut flow = TunnelPort::open_proto(
            Proto::Vxlan,
            "flow",
            &opts(&[
                ("remote_ip", "flow".into()),
                ("key", "flow".into()),
                local.clone(),
                port.clone(),
            ]),
        )
        .unwrap();
        // The same (remote_ip, key) twice on one socket is refused.
        let dup = TunnelPort::open_proto(
            Proto::Vxlan,
            "dup",
            &opts(&[
                ("remote_ip", "flow".into()),
                ("key", "flow".into()),
                local,
                port,
            ]),
        );
        assert!(dup.err().unwrap().to_string().contains("already receives"));

        let peer3 = std::net::UdpSocket::bind(("127.0.0.3", udp)).unwrap();
        let peer4 = std::net::UdpSocket::bind(("127.0.0.4", udp)).unwrap();
        let to = ("127.0.0.1", udp);
        peer3
            .send_to(&wrapped(Proto::Vxlan, 5, &frame(1)), to)
            .unwrap(); // exact
        peer3
            .send_to(&wrapped(Proto::Vxlan, 6, &frame(2)), to)
            .unwrap(); // other key: flow port
        peer4
            .send_to(&wrapped(Proto::Vxlan, 5, &frame(3)), to)
            .unwrap(); // other remote: flow port
        peer4.send_to(&[0x08, 0, 0], to).unwrap(); // truncated header
        peer4
            .send_to(&wrapped(Proto::Vxlan, 5, &frame(0))[..20], to)
            .unwrap(); // no whole Ethernet header
        let mut no_i = wrapped(Proto::Vxlan, 5, &frame(4));
        no_i[0] = 0;
        peer4.send_to(&no_i, to).unwrap();

        // Whichever port reads the socket, each packet ends at its own port.
        let got = rx_all(&mut flow, 2);
        let mut seen: Vec<(u32, u32, usize)> = got
            .iter()
            .map(|p| (p.tunnel.id, p.tunnel.src, p.len()))
            .collect();
        seen.sort();
        assert_eq!(seen, vec![(5, 0x7f00_0004, 17), (6, 0x7f00_0003, 16)]);
        assert!(got.iter().all(|p| p.tunnel.dst == 0x7f00_0001));
        let got = rx_all(&mut exact, 1);
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].tunnel.id, got[0].data()), (5, &frame(1)[..]));
        assert_eq!(flow.stats().rx_errors + exact.stats().rx_errors, 3);

        // remote_ip=flow: the destination and VNI come from the packet's metadata.
        let mut batch = Batch::new();
        let mut p = heap_packet(&frame(5));
        p.tunnel = Tunnel {
            id: 77,
            src: 0,
            dst: 0x7f00_0004,
        };
        batch.pkts.push(p);
        batch.pkts.push(heap_packet(&frame(6))); // no destination: a tx error
        assert_eq!(flow.tx_burst(&mut batch).unwrap(), 1);
        assert_eq!((flow.stats().tx_packets, flow.stats().tx_errors), (1, 1));
        let mut buf = [0u8; 2048];
        peer4
            .set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let (n, from) = peer4.recv_from(&mut buf).unwrap();
        assert_eq!(from, std::net::SocketAddr::from(([127, 0, 0, 1], udp)));
        assert_eq!(decap(Proto::Vxlan, &buf[..n]), Ok((77, HEADER_LEN)));
        assert_eq!(&buf[HEADER_LEN..n], &frame(5)[..]);
    }

    /// `ttl` and `tos` reach the outer IP header (read back with IP_RECVTTL/IP_RECVTOS).
    #[test]
    fn ttl_and_tos_are_applied_per_datagram() {
        use std::os::fd::AsRawFd;
        let udp = 30000 + (std::process::id() % 10000) as u16;
        let mut port = TunnelPort::open_proto(
            Proto::Geneve,
            "ttl",
            &opts(&[
                ("remote_ip", "127.0.0.5".into()),
                ("local_ip", "127.0.0.1".into()),
                ("dst_port", udp.to_string()),
                ("ttl", "9".into()),
                ("tos", "0x10".into()),
            ]),
        )
        .unwrap();
        let peer = std::net::UdpSocket::bind(("127.0.0.5", udp)).unwrap();
        for opt in [libc::IP_RECVTTL, libc::IP_RECVTOS] {
            let one: libc::c_int = 1;
            // SAFETY: a c_int option on a live socket.
            let rc = unsafe {
                libc::setsockopt(
                    peer.as_raw_fd(),
                    libc::IPPROTO_IP,
                    opt,
                    &one as *const _ as *const libc::c_void,
                    4,
                )
            };
            assert_eq!(rc, 0);
        }
        let mut batch = Batch::new();
        batch.pkts.push(heap_packet(&frame(8)));
        assert_eq!(port.tx_burst(&mut batch).unwrap(), 1);
        let mut buf = [0u8; 256];
        let mut control = [0u64; 16];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: msghdr is plain data; the pointers set below outlive the call.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control);
        peer.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        // SAFETY: `msg` points at live buffers of the sizes given.
        let n = unsafe { libc::recvmsg(peer.as_raw_fd(), &mut msg, 0) };
        assert_eq!(
            decap(Proto::Geneve, &buf[..n as usize]),
            Ok((0, HEADER_LEN))
        );
        let (mut ttl, mut tos) = (None, None);
        // SAFETY: walking the control buffer recvmsg filled, within msg_controllen.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                let data = libc::CMSG_DATA(c);
                match ((*c).cmsg_level, (*c).cmsg_type) {
                    (libc::IPPROTO_IP, libc::IP_TTL) => {
                        ttl = Some(std::ptr::read_unaligned(data as *const libc::c_int))
                    }
                    (libc::IPPROTO_IP, libc::IP_TOS) => tos = Some(*data),
                    _ => {}
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        assert_eq!((ttl, tos), (Some(9), Some(0x10)));
    }
}
