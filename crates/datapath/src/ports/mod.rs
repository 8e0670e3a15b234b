//! The port back ends and their registry: a type name and how to open one.
//!
//! Adding a back end is one new file here and one line in [`BACKENDS`];
//! nothing else names a back end (the datapath opens ports with
//! [`open_port`], the compliance suite in `tests/port_compliance.rs` walks
//! the registry).

pub mod afxdp;
pub mod dummy;
pub mod kernel;
pub mod offload;
pub mod system;
pub mod tap;
pub mod tunnel;
pub mod vhost_user;

use crate::port::{Port, PortError, PortOptions};

/// Opens a port: its name and options.
pub type Opener = fn(&str, &PortOptions) -> Result<Box<dyn Port>, PortError>;

/// One back end: the Interface type it serves and its opener.
pub struct Backend {
    pub kind: &'static str,
    pub open: Opener,
}

/// Every back end, by type name.
pub const BACKENDS: &[Backend] = &[
    Backend {
        kind: "dummy",
        open: open_as::<dummy::DummyPort>,
    },
    Backend {
        kind: "tap",
        open: open_as::<tap::TapPort>,
    },
    Backend {
        kind: "system",
        open: system::open,
    },
    Backend {
        kind: "afxdp",
        open: open_as::<afxdp::AfxdpPort>,
    },
    Backend {
        kind: "dpdkvhostuser",
        open: open_as::<vhost_user::VhostUserPort>,
    },
    Backend {
        kind: "dpdkvhostuserclient",
        open: open_as::<vhost_user::VhostUserClientPort>,
    },
    Backend {
        kind: "vxlan",
        open: tunnel::open_vxlan,
    },
    Backend {
        kind: "geneve",
        open: tunnel::open_geneve,
    },
];

fn open_as<P: Port + 'static>(
    name: &str,
    options: &PortOptions,
) -> Result<Box<dyn Port>, PortError> {
    Ok(Box::new(P::open(name, options)?))
}

/// Opens a port of type `kind` named `name`.
pub fn open_port(
    kind: &str,
    name: &str,
    options: &PortOptions,
) -> Result<Box<dyn Port>, PortError> {
    match BACKENDS.iter().find(|b| b.kind == kind) {
        Some(b) => (b.open)(name, options),
        None => Err(PortError::UnknownType {
            kind: kind.to_string(),
            known: BACKENDS
                .iter()
                .map(|b| b.kind)
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}
