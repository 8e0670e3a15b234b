//! What the kernel-device back ends (`system` over AF_PACKET, `afxdp`)
//! share: finding a device by name, its MAC, and the handle nvs-vswitchd
//! reads its MTU and link state through.

use std::ffi::CString;

use crate::netdev::{Control, MAX_NAME};
use crate::port::{DeviceState, NetDevice, PortError};

/// Empty polls between two look-ups of the device by name (hot unplug).
pub const RECHECK_POLLS: u32 = 4096;

pub(crate) fn os_error(port: &str, what: &'static str, source: std::io::Error) -> PortError {
    PortError::Os {
        port: port.to_string(),
        what,
        source,
    }
}

/// The ifindex of device `name` in this namespace, 0 when there is none.
pub(crate) fn ifindex_of(name: &str) -> u32 {
    match CString::new(name) {
        // SAFETY: a NUL-terminated string that lives for the call.
        Ok(c) => unsafe { libc::if_nametoindex(c.as_ptr()) },
        Err(_) => 0,
    }
}

/// The index of an existing device `name`, or the error that says it is missing.
pub(crate) fn existing_device(name: &str) -> Result<u32, PortError> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(PortError::BadName {
            name: name.to_string(),
            why: "a kernel device name has 1 to 15 bytes",
        });
    }
    match ifindex_of(name) {
        0 => Err(os_error(
            name,
            "finding the device (no network device of that name exists here)",
            std::io::Error::from_raw_os_error(libc::ENODEV),
        )),
        ifindex => Ok(ifindex),
    }
}

/// The device's MAC address (all zero when it cannot be read).
pub(crate) fn read_mac(name: &str) -> [u8; 6] {
    let text =
        std::fs::read_to_string(format!("/sys/class/net/{name}/address")).unwrap_or_default();
    let mut mac = [0u8; 6];
    for (m, part) in mac.iter_mut().zip(text.trim().split(':')) {
        *m = u8::from_str_radix(part, 16).unwrap_or(0);
    }
    mac
}

/// A kernel device port's device (system, afxdp), by name in nvs-vswitchd's namespace.
pub(crate) struct SystemDevice {
    pub(crate) name: String,
    /// The largest MTU the port's buffers carry.
    pub(crate) max_mtu: u32,
}

impl SystemDevice {
    fn control(&self) -> Result<Control, PortError> {
        if ifindex_of(&self.name) == 0 {
            return Err(os_error(
                &self.name,
                "finding the device (it was deleted or moved to another namespace)",
                std::io::Error::from_raw_os_error(libc::ENODEV),
            ));
        }
        Control::here().map_err(|e| os_error(&self.name, "opening a control socket", e))
    }
}

impl NetDevice for SystemDevice {
    fn state(&self) -> Result<DeviceState, PortError> {
        let control = self.control()?;
        let mtu = control
            .mtu(&self.name)
            .map_err(|e| os_error(&self.name, "reading the device MTU (SIOCGIFMTU)", e))?;
        let flags = control
            .flags(&self.name)
            .map_err(|e| os_error(&self.name, "reading the device flags (SIOCGIFFLAGS)", e))?;
        Ok(DeviceState {
            mtu,
            admin_up: flags & libc::IFF_UP != 0,
            carrier: flags & libc::IFF_RUNNING != 0,
        })
    }

    fn set_mtu(&self, mtu: u32) -> Result<(), PortError> {
        if mtu > self.max_mtu {
            return Err(PortError::BadMtu {
                port: self.name.clone(),
                mtu,
                why: format!("this port carries frames of an MTU up to {}", self.max_mtu),
            });
        }
        self.control()?
            .set_mtu(&self.name, mtu)
            .map_err(|e| os_error(&self.name, "setting the device MTU (SIOCSIFMTU)", e))
    }
}
