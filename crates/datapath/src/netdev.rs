//! Kernel network devices by name, reached as OVS's netdev-linux reaches
//! them: the MTU (`SIOCGIFMTU`, `SIOCSIFMTU`) and the interface flags
//! (`SIOCGIFFLAGS`) through ioctls on a datagram socket.
//!
//! A socket answers for the network namespace it was created in, so a
//! [`Control`] socket is made in the namespace of the device it is for: a
//! device moved with `ip link set dev X netns N` is reached in N. Joining N
//! takes a short-lived thread (`setns` changes only the calling thread, and
//! the socket keeps its namespace after the thread ends) and CAP_SYS_ADMIN;
//! without it, `Control::in_namespace` fails with `EPERM`.
//!
//! These are control-path calls of one or two system calls each (plus a
//! thread for a device in another namespace), never made per packet.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Longest device name Linux accepts (`IFNAMSIZ` less the terminating NUL).
pub const MAX_NAME: usize = libc::IFNAMSIZ - 1;

/// An `ifreq` naming `name` (cut to [`MAX_NAME`] bytes), all else zero.
pub fn ifreq_for(name: &str) -> libc::ifreq {
    // SAFETY: `ifreq` is plain old data (a byte array and a union of integers
    // and plain structs); all-zero bytes are a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    // At most MAX_NAME bytes, whatever the caller checked: the last byte stays NUL.
    for (dst, src) in ifr.ifr_name[..MAX_NAME].iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    ifr
}

/// The name an `ifreq` filled by the kernel holds.
pub fn ifreq_name(ifr: &libc::ifreq) -> String {
    let bytes: Vec<u8> = ifr
        .ifr_name
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A datagram socket for device ioctls, bound to one network namespace.
pub struct Control(OwnedFd);

/// The identity (device, inode) of an nsfs file.
fn ns_id(st: &libc::stat) -> (u64, u64) {
    (st.st_dev, st.st_ino)
}

impl Control {
    /// A control socket in the calling thread's network namespace.
    pub fn here() -> io::Result<Control> {
        // SAFETY: plain socket(2) call; the result is checked before use.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just opened and nothing else owns it.
        Ok(Control(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// A control socket in the network namespace `ns` (an nsfs descriptor) refers to.
    pub fn in_namespace(ns: &OwnedFd) -> io::Result<Control> {
        // SAFETY: `stat` is plain data; fstat fills it for an open descriptor.
        let mut theirs: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `ns` is open and `theirs` lives for the call.
        if unsafe { libc::fstat(ns.as_raw_fd(), &mut theirs) } < 0 {
            return Err(io::Error::last_os_error());
        }
        let ours = std::fs::metadata("/proc/thread-self/ns/net")?;
        {
            use std::os::unix::fs::MetadataExt;
            if (ours.dev(), ours.ino()) == ns_id(&theirs) {
                return Control::here();
            }
        }
        let fd = ns.as_raw_fd();
        std::thread::scope(|s| {
            s.spawn(|| {
                // SAFETY: `fd` is an open nsfs descriptor (borrowed for the
                // scope); setns changes only this thread, which ends here.
                if unsafe { libc::setns(fd, libc::CLONE_NEWNET) } < 0 {
                    return Err(io::Error::last_os_error());
                }
                Control::here()
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("namespace helper thread panicked")))
        })
    }

    fn ioctl(&self, request: libc::Ioctl, ifr: &mut libc::ifreq) -> io::Result<()> {
        // SAFETY: the socket is open; the SIOC[GS]IF* requests used here read
        // and write one `ifreq`, which lives for the call, and its name is
        // NUL-terminated (ifreq_for leaves the last byte zero).
        if unsafe { libc::ioctl(self.0.as_raw_fd(), request, ifr as *mut libc::ifreq) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// The MTU of device `name`.
    pub fn mtu(&self, name: &str) -> io::Result<u32> {
        let mut ifr = ifreq_for(name);
        self.ioctl(libc::SIOCGIFMTU, &mut ifr)?;
        // SAFETY: SIOCGIFMTU succeeded, so the union holds `ifru_mtu`.
        let mtu = unsafe { ifr.ifr_ifru.ifru_mtu };
        Ok(mtu.max(0) as u32)
    }

    /// Sets the MTU of device `name`; the kernel refuses values outside the device's range (`EINVAL`).
    pub fn set_mtu(&self, name: &str, mtu: u32) -> io::Result<()> {
        let mut ifr = ifreq_for(name);
        ifr.ifr_ifru.ifru_mtu =
            i32::try_from(mtu).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        self.ioctl(libc::SIOCSIFMTU, &mut ifr)
    }

    /// The interface flags of device `name` (`IFF_UP`, `IFF_RUNNING`, …; the low 16 bits).
    pub fn flags(&self, name: &str) -> io::Result<i32> {
        let mut ifr = ifreq_for(name);
        self.ioctl(libc::SIOCGIFFLAGS, &mut ifr)?;
        // SAFETY: SIOCGIFFLAGS succeeded, so the union holds `ifru_flags`.
        let flags = unsafe { ifr.ifr_ifru.ifru_flags };
        Ok(i32::from(flags as u16))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loopback_device_is_up_and_has_an_mtu() {
        let c = Control::here().unwrap();
        let flags = c.flags("lo").unwrap();
        assert_ne!(flags & libc::IFF_UP, 0);
        assert_ne!(flags & libc::IFF_LOOPBACK, 0);
        assert!(c.mtu("lo").unwrap() >= 1500);
        let err = c.flags("no-such-dev0").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENODEV));
    }

    #[test]
    fn names_round_trip_through_an_ifreq() {
        assert_eq!(ifreq_name(&ifreq_for("br-int")), "br-int");
        let long = ifreq_for("a-name-longer-than-sixteen");
        assert_eq!(long.ifr_name[MAX_NAME], 0);
        assert_eq!(ifreq_name(&long).len(), MAX_NAME);
    }
}
