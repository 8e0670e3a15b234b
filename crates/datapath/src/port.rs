//! Ports: the one trait every packet I/O back end implements.
//!
//! The polling loop knows only this trait; the back ends live in the
//! `ports` module, whose registry maps a type name to its opener. I/O is
//! in batches of up to [`BURST`] packets.
//!
//! # Who owns a packet
//! A packet's storage is a [`Frame`] that knows its home (see
//! the `frame` module): the heap, or a chunk of a [`Pool`] (an AF_XDP UMEM, the
//! copy target of a vhost-user queue, a tap's receive buffers). Whoever holds
//! the packet owns it; dropping it, anywhere, on any thread, gives the frame
//! back to its home. No port needs to know where another port's frames came
//! from, and none is asked to take back what the datapath drops.
//! - `rx_burst` appends packets to the caller's [`Batch`], in frames of the
//!   back end's own memory when it has some (no copy) or copied once into a
//!   frame of its pool. From then on the batch owns them.
//! - `tx_burst` takes every packet out of the batch, whether it sent it or
//!   dropped it (counted in `tx_dropped`, or in `tx_errors` when the packet
//!   or the device was at fault); the caller's batch is empty after. A back
//!   end sends a frame of its own pool without a copy where its device allows
//!   (a UMEM's tx ring takes the chunk's offset) and copies others once into
//!   its device's memory; a sent frame goes home when the device is done with
//!   it (at once after a copy; after a completion ring hands its offset back).
//! - A packet is never handed to JavaScript: upcalls copy the bytes.
//!
//! Ports are used under a per-port lock held for one batch, never per packet:
//! the owning polling thread locks for `rx_burst`, any thread for `tx_burst`.
//!
//! Optional abilities (`inject`, `drain`, `pool`, and for ports with a kernel
//! device `device`, whose handle reads and sets the MTU and reads the link
//! state without the port's lock) are default methods that return
//! [`PortError::Unsupported`] (`mac` and `pool` return `None`); a back end
//! overrides what it can do.

use std::collections::BTreeMap;

use crate::actions::PacketBuf;
pub use crate::frame::Frame;
use crate::frame::Pool;

/// Packets per rx/tx batch (as OVS's `NETDEV_MAX_BURST`).
pub const BURST: usize = 32;

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
    #[error("unknown port type '{kind}' (known: {known})")]
    UnknownType { kind: String, known: String },
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
    /// The port's frame pool could not be made.
    #[error(transparent)]
    Pool(#[from] crate::frame::PoolError),
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

    fn stats(&self) -> PortStats;

    /// Releases the back end's resources; later rx/tx do nothing.
    fn close(&mut self) {}

    /// Optional: what is wrong with the port now, for Interface.error (a
    /// vhost-user queue disabled for breaking the rules); `None` when all is well.
    fn error(&self) -> Option<String> {
        None
    }

    /// Optional: the MAC address the port's device has (a tap's), read at open.
    fn mac(&self) -> Option<[u8; 6]> {
        None
    }

    /// Optional: how the port reaches its device, for Interface.status
    /// (a system port's socket, an afxdp port's XDP mode).
    fn status(&self) -> PortOptions {
        PortOptions::new()
    }

    /// Optional: the pool this port receives into, for its counts (how many
    /// of its frames are out in the datapath).
    fn pool(&self) -> Option<&Pool> {
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
