//! Ports: the one trait every packet I/O back end implements.
//!
//! The polling loop knows only this trait (dummy and tap today; vhost-user,
//! AF_XDP and AF_PACKET next). I/O is in batches of up to [`BURST`] packets.
//!
//! # Who owns a packet
//! - `rx_burst` appends packets to the caller's [`Batch`]. From then on the
//!   batch owns them, but their storage is the back end's: a back end with its
//!   own memory (a vring's guest buffers, an AF_XDP UMEM) lends frames to the
//!   batch without copying, and gets them back either through `tx_burst` (a
//!   packet sent out of the same port, or copied into another port's memory)
//!   or through `recycle` (a packet the datapath dropped or sent to the slow
//!   path). A packet is never handed to JavaScript: upcalls copy the bytes.
//! - `tx_burst` takes every packet out of the batch, whether it sent it or
//!   dropped it (counted in `tx_dropped`, or in `tx_errors` when the packet
//!   or the device was at fault); the caller's batch is empty after.
//! - `recycle` takes back packets the datapath is done with; the default just
//!   drops them (right for back ends whose buffers are plain heap memory; the
//!   tap port keeps them on a free list for its next reads).
//!
//! Ports are used under a per-port lock held for one batch, never per packet:
//! the owning polling thread locks for `rx_burst`, any thread for `tx_burst`.
//!
//! Optional abilities (`inject`, `drain`, and for ports with a kernel device
//! `device`, whose handle reads and sets the MTU and reads the link state
//! without the port's lock) are default methods that return
//! [`PortError::Unsupported`] (`mac` returns `None`); a back end overrides
//! what it can do.

use std::collections::BTreeMap;

use crate::actions::PacketBuf;

/// Packets per rx/tx batch (as OVS's `NETDEV_MAX_BURST`).
pub const BURST: usize = 32;

/// The storage a packet in flight lives in. Today every back end (dummy)
/// uses heap frames; vhost-user and AF_XDP will make this an enum with a
/// variant per borrowed frame kind (descriptor chain, UMEM chunk) so their
/// packets travel through the pipeline without a copy.
pub type Frame = Box<[u8]>;

/// A packet in flight through the datapath.
pub type Packet = PacketBuf<Frame>;

/// Key/value options given when a port is opened (as OVSDB `Interface:options`).
pub type PortOptions = BTreeMap<String, String>;

/// A batch of up to `BURST` packets; allocated once per user and reused.
#[derive(Default)]
pub struct Batch {
    pub pkts: Vec<Packet>,
}

impl Batch {
    pub fn new() -> Self {
        Batch {
            pkts: Vec::with_capacity(BURST),
        }
    }

    pub fn len(&self) -> usize {
        self.pkts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pkts.is_empty()
    }

    /// Room left before the batch is full.
    pub fn room(&self) -> usize {
        BURST.saturating_sub(self.pkts.len())
    }
}

/// Counters of one port, as the back end sees them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub rx_dropped: u64,
    pub rx_errors: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub tx_dropped: u64,
    pub tx_errors: u64,
}

/// The state of a port's device, as `ip link` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceState {
    pub mtu: u32,
    /// Administratively up (`IFF_UP`: `ip link set dev X up`).
    pub admin_up: bool,
    /// Up with carrier (`IFF_RUNNING`): frames can pass.
    pub carrier: bool,
}

/// A port's kernel device, apart from the port: control-path calls of a few
/// system calls each, made without the port's lock.
pub trait NetDevice: Send {
    /// The device's MTU and link state, read now (through one control socket).
    fn state(&self) -> Result<DeviceState, PortError>;
    /// Sets the device's MTU.
    fn set_mtu(&self, mtu: u32) -> Result<(), PortError>;
}

/// Errors of port back ends.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// The back end does not have this optional ability.
    #[error("port type '{kind}' does not support {what}")]
    Unsupported {
        kind: &'static str,
        what: &'static str,
    },
    /// No back end of this type exists.
    #[error("unknown port type '{0}' (known: dummy, tap)")]
    UnknownType(String),
    /// The name cannot name a port of this type (a tap's device name).
    #[error("bad port name '{name}': {why}")]
    BadName { name: String, why: &'static str },
    /// An option is not understood or its value is invalid.
    #[error("port '{port}': bad option {key}={value}: {why}")]
    BadOption {
        port: String,
        key: String,
        value: String,
        why: String,
    },
    /// An MTU the port cannot carry.
    #[error("port '{port}': MTU {mtu} is not possible: {why}")]
    BadMtu { port: String, mtu: u32, why: String },
    /// A packet given to `inject` is unusable.
    #[error("bad packet: {0}")]
    BadPacket(String),
    /// The port was closed.
    #[error("port is closed")]
    Closed,
    /// An operating-system call failed.
    #[error("port I/O failed: {0}")]
    Io(#[from] std::io::Error),
    /// A system call made to open or set up a port failed.
    #[error("port '{port}': {what} failed: {source}")]
    Os {
        port: String,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl PortError {
    /// Whether the port could not be opened for lack of privilege (EPERM, EACCES):
    /// the caller may fall back to a port type that needs none.
    pub fn lacks_privilege(&self) -> bool {
        let io = match self {
            PortError::Os { source, .. } | PortError::Io(source) => source,
            _ => return false,
        };
        matches!(io.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES))
    }
}

/// A packet I/O back end. See the module doc for buffer ownership.
pub trait Port: Send {
    /// Opens a port named `name`.
    fn open(name: &str, options: &PortOptions) -> Result<Self, PortError>
    where
        Self: Sized;

    /// The back end's type name (`"dummy"`, `"tap"`).
    fn kind(&self) -> &'static str;

    /// Receives up to `batch.room()` packets into `batch`; returns how many.
    fn rx_burst(&mut self, batch: &mut Batch) -> Result<usize, PortError>;

    /// Sends every packet of `batch` (or drops and counts it); returns how many were sent.
    fn tx_burst(&mut self, batch: &mut Batch) -> Result<usize, PortError>;

    /// Takes back packets the datapath dropped or sent to the slow path.
    fn recycle(&mut self, batch: &mut Batch) {
        batch.pkts.clear();
    }

    fn stats(&self) -> PortStats;

    /// Releases the back end's resources; later rx/tx do nothing.
    fn close(&mut self) {}

    /// Optional: the MAC address the port's device has (a tap's), read at open.
    fn mac(&self) -> Option<[u8; 6]> {
        None
    }

    /// Optional: a handle on the port's kernel device (a tap's), for MTU and
    /// state calls made after the port's lock is released.
    fn device(&self) -> Result<Box<dyn NetDevice>, PortError> {
        Err(PortError::Unsupported {
            kind: self.kind(),
            what: "a kernel device (MTU, link state)",
        })
    }

    /// Optional: makes `packet` arrive on the port (test ports).
    fn inject(&mut self, _packet: &[u8]) -> Result<(), PortError> {
        Err(PortError::Unsupported {
            kind: self.kind(),
            what: "inject",
        })
    }

    /// Optional: takes up to `max` packets the port sent (test ports).
    fn drain(&mut self, _max: usize) -> Result<Vec<Vec<u8>>, PortError> {
        Err(PortError::Unsupported {
            kind: self.kind(),
            what: "drain",
        })
    }
}
