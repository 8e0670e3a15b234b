//! The flow key: every header field the fast path can match on, in one
//! fixed-size, 8-byte-aligned record so that caches hash and compare it as
//! words and a mask is simply another `FlowKey` whose 1-bits are significant.
//!
//! Multi-byte numeric fields hold host-order values (`eth_type == 0x0800`);
//! addresses are kept as network-order byte arrays (`eth_dst`, `ipv6_src`),
//! except `nw_src`/`nw_dst`, which are host-order `u32` (so prefix masks are
//! plain shifts). Fields follow OVS's datapath conventions: ARP's opcode lives
//! in `nw_proto`, ARP's SPA/TPA in `nw_src`/`nw_dst`; ICMP type/code live in
//! `tp_src`/`tp_dst`; ND's SLL/TLL in `arp_sha`/`arp_tha`. `vlan_tci` carries
//! the outer tag with bit 0x1000 (CFI/DEI position) set when a tag is present,
//! so 0 means untagged. OpenFlow registers and metadata are slow-path state
//! only and never appear here (as in OVS's datapath flows).
//!
//! Tunnel metadata (`tun_id`, `tun_src`, `tun_dst`) is that of the tunnel a
//! packet arrived through (all zero otherwise; a received packet always has
//! a non-zero `tun_dst`). `tun_id` holds the low 32 bits of OpenFlow's
//! 64-bit tunnel ID: VXLAN and Geneve carry 24 (the VNI), so the high bits
//! of a received packet's ID are always zero and the key need not hold them.

/// One flow key (or, read as a mask, which bits of a key matter).
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub in_port: u32,
    pub recirc_id: u32,
    pub eth_dst: [u8; 6],
    pub eth_type: u16,
    pub eth_src: [u8; 6],
    /// Outer VLAN tag: VID | PCP << 13 | 0x1000 (present); 0 when untagged.
    pub vlan_tci: u16,
    /// TPID of the outer tag (0x8100 or 0x88a8); 0 when untagged.
    pub vlan_tpid: u16,
    /// Inner VLAN tag (802.1ad double tagging), same encoding as `vlan_tci`.
    pub cvlan_tci: u16,
    pub nw_proto: u8,
    pub nw_tos: u8,
    pub nw_ttl: u8,
    /// `FRAG_ANY` | `FRAG_LATER` bits.
    pub nw_frag: u8,
    pub tp_src: u16,
    pub tp_dst: u16,
    pub tcp_flags: u16,
    pub _pad0: u16,
    pub nw_src: u32,
    pub nw_dst: u32,
    pub ipv6_src: [u8; 16],
    pub ipv6_dst: [u8; 16],
    pub nd_target: [u8; 16],
    pub ipv6_label: u32,
    pub _pad1: u32,
    pub arp_sha: [u8; 6],
    pub _pad2: u16,
    pub arp_tha: [u8; 6],
    pub _pad3: u16,
    /// Tunnel ID (VNI) the packet arrived with.
    pub tun_id: u32,
    /// Outer IPv4 source (the remote tunnel end), host order.
    pub tun_src: u32,
    /// Outer IPv4 destination (this host's tunnel end), host order.
    pub tun_dst: u32,
    pub _pad4: u32,
}

/// A packet's tunnel metadata: where it came from (set by a tunnel port's
/// receive) or where it is to go (set by the `SetTunnel` action, read by a
/// tunnel port's transmit). Addresses are host-order IPv4; zero means unset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Tunnel {
    /// The tunnel ID (VNI: VXLAN and Geneve carry its low 24 bits).
    pub id: u32,
    pub src: u32,
    pub dst: u32,
}

/// `nw_frag` bit: the packet is a fragment.
pub const FRAG_ANY: u8 = 1;
/// `nw_frag` bit: the packet is a fragment other than the first.
pub const FRAG_LATER: u8 = 2;

impl FlowKey {
    /// Size of the key in 64-bit words.
    pub const WORDS: usize = core::mem::size_of::<FlowKey>() / 8;

    /// The key as words, for hashing and masking.
    pub fn words(&self) -> &[u64; Self::WORDS] {
        // SAFETY: FlowKey is repr(C), 8-byte aligned, exactly WORDS*8 bytes,
        // and made only of integer fields with explicit padding fields, so
        // every byte is initialised and any bit pattern is valid.
        unsafe { &*(self as *const FlowKey as *const [u64; Self::WORDS]) }
    }

    /// Mutable view of the key as words.
    pub fn words_mut(&mut self) -> &mut [u64; Self::WORDS] {
        // SAFETY: as in `words`; any bit pattern is a valid FlowKey.
        unsafe { &mut *(self as *mut FlowKey as *mut [u64; Self::WORDS]) }
    }

    /// The key as raw bytes (the binary encoding that crosses to JavaScript).
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: see `words`.
        unsafe {
            core::slice::from_raw_parts(
                self as *const FlowKey as *const u8,
                core::mem::size_of::<FlowKey>(),
            )
        }
    }
}

const _: () = assert!(core::mem::size_of::<FlowKey>().is_multiple_of(8));
