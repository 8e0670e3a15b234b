//! The `tap` port: a Linux tap device, so the host's network stack sees the
//! port as an ordinary interface. nvs-vswitchd uses it for each bridge's
//! LOCAL port and for Interface type `internal` when it may create devices.
//!
//! Opening the port opens `/dev/net/tun` and asks for a tap device named
//! after the port (`TUNSETIFF` with `IFF_TAP | IFF_NO_PI`: plain Ethernet
//! frames, no packet-information prefix). The device is not persistent: it
//! exists while the file descriptor is open, so closing the port (or the
//! process ending) deletes it. The descriptor keeps working when the device
//! is moved to another network namespace (`ip link set dev X netns N`). The
//! device is created down; whoever uses it brings it up.
//!
//! I/O never blocks the polling thread: the descriptor is non-blocking.
//! `rx_burst` reads frames until the batch is full or the kernel has none
//! (`EAGAIN`). `tx_burst` writes each frame once; a full kernel queue
//! (`EAGAIN`, `ENOBUFS`) or a device that is down (`EIO`) drops the packet
//! and counts it in `tx_dropped`. Frames shorter than an Ethernet header or
//! longer than [`MAX_FRAME`] are counted as errors (`rx_errors`/`tx_errors`),
//! as are other failed reads and writes. If the device is deleted from
//! outside (`ip link del`), the port counts one error (rx or tx, whichever
//! notices first) and then behaves as closed.
//!
//! Buffers: a frame is read straight into a frame of the port's own
//! [`Pool`] with [`HEADROOM`] in front (on the heap when every pool frame is
//! out in the datapath). Wherever the packet goes — out of this port or
//! another, or dropped — its frame comes back to the pool, so steady traffic
//! allocates nothing.
//!
//! The device's MTU and state (administratively up, carrier) are read and
//! the MTU set through `netdev`, in whatever namespace and under whatever
//! name the device has now (the tun descriptor tells both), on a duplicate
//! of the descriptor (`device()`), so the port's lock is held only to take it.
//! The MTU is at most [`MAX_MTU`]: larger frames would not fit the buffers.
//!
//! Creating a tap device needs `CAP_NET_ADMIN`; without it `open` fails with
//! [`PortError::Os`], whose `lacks_privilege()` says so. No options.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;

use crate::actions::{PacketBuf, HEADROOM};
use crate::frame::{spread_chunk, Frame, Pool};
use crate::netdev::{ifreq_for, ifreq_name, Control, MAX_NAME};
use crate::port::{Batch, DeviceState, NetDevice, Port, PortError, PortOptions, PortStats};

/// Longest frame carried: a 9216-byte MTU plus an Ethernet header and one VLAN tag.
pub const MAX_FRAME: usize = 9216 + 14 + 4;
/// Shortest frame carried: an Ethernet header.
pub const MIN_FRAME: usize = 14;
/// Largest MTU a tap port accepts: the largest frame carried, less an Ethernet header and one VLAN tag.
pub const MAX_MTU: u32 = (MAX_FRAME - 14 - 4) as u32;
/// Buffer size: headroom, the longest frame, and one byte to notice a longer one.
const BUF_LEN: usize = HEADROOM + MAX_FRAME + 1;
/// Frames of a tap port's pool (2.4 MiB of address space, committed only as used).
const POOL_FRAMES: usize = 256;

/// A tap device port.
pub struct TapPort {
    /// The name the device was created with (for messages: it may be renamed since).
    name: String,
    /// The tun descriptor; `None` once closed (dropping it deletes the device).
    file: Option<File>,
    mac: [u8; 6],
    /// A buffer read into but not used (the read found nothing): the next read reuses it.
    spare: Option<Frame>,
    /// Where frames are read into.
    pool: Pool,
    stats: PortStats,
}

fn os_error(port: &str, what: &'static str, source: std::io::Error) -> PortError {
    PortError::Os {
        port: port.to_string(),
        what,
        source,
    }
}

/// Checks that `name` can name a Linux network device.
fn check_name(name: &str) -> Result<(), PortError> {
    let why = if name.is_empty() {
        "a tap device needs a name"
    } else if name.len() > MAX_NAME {
        "Linux device names are at most 15 bytes"
    } else if name == "." || name == ".." {
        "'.' and '..' cannot name a device"
    } else if name
        .bytes()
        .any(|b| b == b'/' || b == b':' || b == 0 || kernel_isspace(b))
    {
        "a device name cannot contain '/', ':', NUL or whitespace"
    } else if name.contains('%') {
        // The kernel reads '%' as a name template ("tap%d" becomes "tap0"): the
        // device would not be called what the port is.
        "a device name cannot contain '%'"
    } else {
        return Ok(());
    };
    Err(PortError::BadName {
        name: name.to_string(),
        why,
    })
}

/// Whether the kernel's `isspace` (which `dev_valid_name` uses) holds for
/// `b`: Rust's `is_ascii_whitespace` leaves out `\v`, and the kernel's
/// Latin-1 table counts 0xA0 (a byte of some UTF-8 characters) too.
fn kernel_isspace(b: u8) -> bool {
    matches!(b, b'\t'..=b'\r' | b' ' | 0xa0)
}

/// Creates the tap device `name` on `file` (an open `/dev/net/tun`) and returns its MAC.
fn attach(file: &File, name: &str) -> Result<[u8; 6], PortError> {
    let mut ifr = ifreq_for(name);
    ifr.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
    // SAFETY: the descriptor is open; TUNSETIFF reads and writes one `ifreq`,
    // which lives for the call; the name is NUL-terminated (at most 15 bytes
    // were copied into the zeroed 16-byte array).
    if unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut ifr) } < 0 {
        let err = std::io::Error::last_os_error();
        let what = match err.raw_os_error() {
            // The name is taken: by a tap another process holds, or a device of another kind.
            Some(libc::EBUSY) | Some(libc::EINVAL) => {
                "creating the tap device (is a device of that name already in use?)"
            }
            Some(libc::EPERM) => "creating the tap device (TUNSETIFF needs CAP_NET_ADMIN)",
            _ => "creating the tap device (TUNSETIFF)",
        };
        return Err(os_error(name, what, err));
    }
    // The tun descriptor answers SIOCGIFHWADDR itself, whatever namespace the device is in.
    let mut ifr = ifreq_for(name);
    // SAFETY: as above; SIOCGIFHWADDR on a tun descriptor fills `ifru_hwaddr`.
    if unsafe { libc::ioctl(file.as_raw_fd(), libc::SIOCGIFHWADDR, &mut ifr) } < 0 {
        return Err(os_error(
            name,
            "reading the tap device's MAC address (SIOCGIFHWADDR)",
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: SIOCGIFHWADDR succeeded, so the union holds `ifru_hwaddr`.
    let data = unsafe { ifr.ifr_ifru.ifru_hwaddr.sa_data };
    let mut mac = [0u8; 6];
    for (m, d) in mac.iter_mut().zip(data.iter()) {
        *m = *d as u8;
    }
    Ok(mac)
}

impl TapPort {
    fn buffer(&mut self) -> Frame {
        self.spare
            .take()
            .or_else(|| self.pool.alloc())
            .unwrap_or_else(|| Frame::heap(BUF_LEN))
    }

    /// The device was deleted under us (`ip link del`, its namespace deleted):
    /// the descriptor is dead for good (`EBADFD`), so let it go rather than
    /// count an error on every poll and every packet.
    fn let_go_if_deleted(&mut self, e: &std::io::Error) {
        if e.raw_os_error() == Some(libc::EBADFD) {
            self.file = None;
        }
    }
}

impl Port for TapPort {
    fn open(name: &str, options: &PortOptions) -> Result<Self, PortError> {
        check_name(name)?;
        if let Some((k, v)) = options.iter().next() {
            return Err(PortError::BadOption {
                port: name.to_string(),
                key: k.clone(),
                value: v.clone(),
                why: "a tap port takes no options".into(),
            });
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")
            .map_err(|e| os_error(name, "opening /dev/net/tun", e))?;
        let mac = attach(&file, name)?;
        Ok(TapPort {
            name: name.to_string(),
            file: Some(file),
            mac,
            spare: None,
            pool: Pool::new(POOL_FRAMES, spread_chunk(BUF_LEN))?,
            stats: PortStats::default(),
        })
    }

    fn kind(&self) -> &'static str {
        "tap"
    }

    fn rx_burst(&mut self, batch: &mut Batch) -> Result<usize, PortError> {
        let mut got = 0;
        while batch.room() > 0 {
            let mut frame = self.buffer();
            let Some(mut file) = self.file.as_ref() else {
                self.spare = Some(frame);
                break;
            };
            match file.read(&mut frame.as_mut()[HEADROOM..]) {
                Ok(len) if (MIN_FRAME..=MAX_FRAME).contains(&len) => {
                    match PacketBuf::new(frame, HEADROOM, len) {
                        Ok(pkt) => {
                            self.stats.rx_packets += 1;
                            self.stats.rx_bytes += len as u64;
                            batch.pkts.push(pkt);
                            got += 1;
                        }
                        // Cannot happen (the read fits the buffer); counted, not a panic.
                        Err(_) => self.stats.rx_errors += 1,
                    }
                }
                // Too short, or longer than MAX_FRAME (and maybe cut short by the buffer).
                Ok(_) => {
                    self.stats.rx_errors += 1;
                    self.spare = Some(frame);
                }
                Err(e) => {
                    self.spare = Some(frame);
                    match e.kind() {
                        ErrorKind::WouldBlock => break,
                        ErrorKind::Interrupted => continue,
                        _ => {
                            self.stats.rx_errors += 1;
                            self.let_go_if_deleted(&e);
                            break;
                        }
                    }
                }
            }
        }
        Ok(got)
    }

    fn tx_burst(&mut self, batch: &mut Batch) -> Result<usize, PortError> {
        let mut sent = 0;
        for pkt in batch.pkts.drain(..) {
            let len = pkt.len();
            match self.file.as_ref() {
                None => self.stats.tx_dropped += 1,
                Some(_) if !(MIN_FRAME..=MAX_FRAME).contains(&len) => self.stats.tx_errors += 1,
                Some(mut file) => loop {
                    match file.write(pkt.data()) {
                        Ok(_) => {
                            self.stats.tx_packets += 1;
                            self.stats.tx_bytes += len as u64;
                            sent += 1;
                        }
                        Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                        Err(e)
                            if e.kind() == ErrorKind::WouldBlock
                                || matches!(
                                    e.raw_os_error(),
                                    Some(libc::ENOBUFS) | Some(libc::EIO)
                                ) =>
                        {
                            self.stats.tx_dropped += 1
                        }
                        Err(e) => {
                            self.stats.tx_errors += 1;
                            self.let_go_if_deleted(&e);
                        }
                    }
                    break;
                },
            }
        }
        Ok(sent)
    }

    fn stats(&self) -> PortStats {
        self.stats
    }

    fn close(&mut self) {
        // Dropping the descriptor deletes the (non-persistent) device.
        self.file = None;
        self.spare = None;
    }

    fn pool(&self) -> Option<&Pool> {
        Some(&self.pool)
    }

    fn mac(&self) -> Option<[u8; 6]> {
        Some(self.mac)
    }

    fn device(&self) -> Result<Box<dyn NetDevice>, PortError> {
        let file = self.file.as_ref().ok_or(PortError::Closed)?;
        // A second descriptor of the device (close-on-exec), for calls made without the port's lock.
        let tun = file
            .try_clone()
            .map_err(|e| os_error(&self.name, "duplicating the tun descriptor", e))?;
        Ok(Box::new(TapDevice {
            name: self.name.clone(),
            tun: OwnedFd::from(tun),
        }))
    }
}

/// A tap port's device, reached through its own duplicate of the tun
/// descriptor, so that MTU and state calls (a few system calls, a thread for
/// a device in another namespace) never hold the port's lock: the polling
/// thread does not wait on them. While it lives, the device stays.
struct TapDevice {
    /// The name the device was created with (for messages).
    name: String,
    tun: OwnedFd,
}

impl TapDevice {
    /// A control socket in the device's network namespace and the device's
    /// name there, both asked of the tun descriptor: the device may have been
    /// moved to another namespace or renamed since it was created.
    fn control(&self) -> Result<(Control, String), PortError> {
        let mut ifr = ifreq_for("");
        // SAFETY: `tun` is open; TUNGETIFF fills one `ifreq`, which lives for the call.
        if unsafe { libc::ioctl(self.tun.as_raw_fd(), libc::TUNGETIFF, &mut ifr) } < 0 {
            let err = std::io::Error::last_os_error();
            return Err(os_error(
                &self.name,
                "asking the tap device's name (TUNGETIFF)",
                err,
            ));
        }
        // SAFETY: `tun` is open; TUNGETDEVNETNS takes no argument and returns a new descriptor.
        let ns = unsafe { libc::ioctl(self.tun.as_raw_fd(), libc::TUNGETDEVNETNS) };
        if ns < 0 {
            let err = std::io::Error::last_os_error();
            return Err(os_error(
                &self.name,
                "finding the tap device's network namespace (TUNGETDEVNETNS)",
                err,
            ));
        }
        // SAFETY: `ns` is a descriptor the kernel just opened for us.
        let ns = unsafe { OwnedFd::from_raw_fd(ns) };
        let control = Control::in_namespace(&ns)
            .map_err(|e| os_error(&self.name, "reaching the tap device's network namespace", e))?;
        Ok((control, ifreq_name(&ifr)))
    }
}

impl NetDevice for TapDevice {
    fn set_mtu(&self, mtu: u32) -> Result<(), PortError> {
        if mtu > MAX_MTU {
            return Err(PortError::BadMtu {
                port: self.name.clone(),
                mtu,
                why: format!("a tap port carries frames of an MTU up to {MAX_MTU}"),
            });
        }
        let (control, dev) = self.control()?;
        control.set_mtu(&dev, mtu).map_err(|e| {
            let what = if e.raw_os_error() == Some(libc::EINVAL) {
                "setting the device MTU (the kernel refuses it: out of the device's range)"
            } else {
                "setting the device MTU (SIOCSIFMTU)"
            };
            os_error(&self.name, what, e)
        })
    }

    fn state(&self) -> Result<DeviceState, PortError> {
        let (control, dev) = self.control()?;
        let mtu = control
            .mtu(&dev)
            .map_err(|e| os_error(&self.name, "reading the device MTU (SIOCGIFMTU)", e))?;
        let flags = control
            .flags(&dev)
            .map_err(|e| os_error(&self.name, "reading the device flags (SIOCGIFFLAGS)", e))?;
        // The kernel sets IFF_RUNNING only on a device that is up and has
        // carrier; a tap has carrier while its descriptor (this port) is open.
        Ok(DeviceState {
            mtu,
            admin_up: flags & libc::IFF_UP != 0,
            carrier: flags & libc::IFF_RUNNING != 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_before_any_system_call() {
        let long = "a-name-of-16-chr";
        assert_eq!(long.len(), 16);
        let err = TapPort::open(long, &PortOptions::new()).err().unwrap();
        assert!(matches!(err, PortError::BadName { .. }), "{err}");
        assert!(err.to_string().contains("at most 15"), "{err}");
        for bad in ["", "a/b", "a b", "a:1", ".."] {
            assert!(matches!(check_name(bad), Err(PortError::BadName { .. })));
        }
        assert!(check_name("br-int.15chars_").is_ok());
    }

    #[test]
    fn names_the_kernel_would_refuse_or_rename_are_refused() {
        // "tap%d" would create "tap0"; "a%b" fails in the kernel with a misleading EINVAL;
        // \v and "à" (0xC3 0xA0) are whitespace to the kernel's isspace.
        for bad in ["tap%d", "a%b", "a\u{b}b", "caf\u{e0}"] {
            let err = check_name(bad).err();
            assert!(matches!(err, Some(PortError::BadName { .. })), "{bad:?}");
        }
        assert!(check_name("caf\u{e9}").is_ok());
    }

    #[test]
    fn options_are_refused() {
        let mut opts = PortOptions::new();
        opts.insert("n_rxq".into(), "2".into());
        let err = TapPort::open("tapopt0", &opts).err().unwrap();
        assert!(matches!(err, PortError::BadOption { .. }), "{err}");
    }
}
