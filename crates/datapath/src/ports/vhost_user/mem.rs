//! The guest's memory, as the front end shares it (`SET_MEM_TABLE`): the one
//! place that turns a guest address into a host pointer.
//!
//! Every access the vhost-user port makes to guest memory goes through here,
//! and every one is checked to lie wholly inside one mapped region: a guest
//! (or a hostile front end) that names an address outside its regions gets a
//! [`Fault`], never an access outside them. The guest writes this memory
//! while we read it, so no Rust reference to it is ever made: bytes are
//! copied through raw pointers, ring fields read and written as atomics.

use std::os::fd::{AsRawFd, OwnedFd};

/// One region as `SET_MEM_TABLE` describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegionDesc {
    pub guest_phys_addr: u64,
    pub size: u64,
    /// The front end's own virtual address of the region (ring addresses use it).
    pub user_addr: u64,
    /// Where the region starts in the shared file.
    pub mmap_offset: u64,
}

/// A guest address the memory table does not cover (in full).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("guest address {addr:#x}+{len} is outside the guest's memory")]
pub struct Fault {
    pub addr: u64,
    pub len: u64,
}

struct Region {
    desc: RegionDesc,
    /// The mapping: from the file's start to the region's end.
    map: *mut u8,
    map_len: usize,
}

/// The mapped regions of one guest.
pub struct GuestMemory {
    regions: Vec<Region>,
}

// SAFETY: the mappings belong to this value alone (unmapped in Drop); what
// is read or written through them is checked per access, and shared memory
// may be touched from any thread.
unsafe impl Send for GuestMemory {}
// SAFETY: `&GuestMemory` hands out no references into the mappings.
unsafe impl Sync for GuestMemory {}

/// How many regions a front end may share (as the vhost-user spec's limit).
pub const MAX_REGIONS: usize = 8;

impl GuestMemory {
    /// Maps `regions`, the i-th from `fds[i]`. Fails, mapping nothing, on a
    /// region that is empty, overflows, or does not fit its file.
    pub fn map(regions: &[RegionDesc], fds: &[OwnedFd]) -> Result<GuestMemory, String> {
        if regions.len() > MAX_REGIONS || regions.len() != fds.len() {
            return Err(format!(
                "{} regions with {} file descriptors (at most {MAX_REGIONS})",
                regions.len(),
                fds.len()
            ));
        }
        let mut mem = GuestMemory {
            regions: Vec::new(),
        };
        for (d, fd) in regions.iter().zip(fds) {
            let end = d.mmap_offset.checked_add(d.size);
            if d.size == 0
                || end.is_none()
                || d.guest_phys_addr.checked_add(d.size).is_none()
                || d.user_addr.checked_add(d.size).is_none()
            {
                return Err(format!("bad memory region {d:?}"));
            }
            // SAFETY: fstat fills a plain struct; the fd is open (owned).
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
                return Err(format!(
                    "fstat of a region's fd: {}",
                    std::io::Error::last_os_error()
                ));
            }
            let end = end.expect("checked") as usize;
            if st.st_size >= 0 && (st.st_size as u64) < end as u64 {
                return Err(format!(
                    "region {d:?} passes the end of its file ({} bytes)",
                    st.st_size
                ));
            }
            // A hugetlbfs file is mapped in whole pages.
            let page = (st.st_blksize as usize).max(4096);
            let map_len = end.div_ceil(page) * page;
            // SAFETY: a shared mapping of the front end's file at an address
            // of the kernel's choosing; the result is checked.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    map_len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED | libc::MAP_POPULATE,
                    fd.as_raw_fd(),
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                return Err(format!(
                    "mmap of region {d:?}: {}",
                    std::io::Error::last_os_error()
                ));
            }
            mem.regions.push(Region {
                desc: *d,
                map: p.cast(),
                map_len,
            });
        }
        Ok(mem)
    }

    /// The host pointer of `len` bytes at guest-physical `addr`, if one region holds them all.
    pub fn gpa(&self, addr: u64, len: u64) -> Result<*mut u8, Fault> {
        self.lookup(addr, len, |d| d.guest_phys_addr)
    }

    /// The host pointer of `len` bytes at the front end's virtual `addr` (ring addresses).
    pub fn uva(&self, addr: u64, len: u64) -> Result<*mut u8, Fault> {
        self.lookup(addr, len, |d| d.user_addr)
    }

    fn lookup(
        &self,
        addr: u64,
        len: u64,
        start: impl Fn(&RegionDesc) -> u64,
    ) -> Result<*mut u8, Fault> {
        let fault = Fault { addr, len };
        for r in &self.regions {
            let base = start(&r.desc);
            let Some(off) = addr.checked_sub(base) else {
                continue;
            };
            if off < r.desc.size && len <= r.desc.size - off {
                // SAFETY: mmap_offset + off + len <= mmap_offset + size <= map_len
                // (checked in `map`), so the pointer stays in the mapping.
                return Ok(unsafe { r.map.add((r.desc.mmap_offset + off) as usize) });
            }
        }
        Err(fault)
    }

    /// Copies `dst.len()` bytes from guest-physical `addr`.
    pub fn read(&self, addr: u64, dst: &mut [u8]) -> Result<(), Fault> {
        let src = self.gpa(addr, dst.len() as u64)?;
        // SAFETY: `src` covers dst.len() bytes of a live mapping (checked by
        // `gpa`); the guest may write them meanwhile, which only makes the
        // copy's bytes stale, and `dst` is ours.
        unsafe { std::ptr::copy_nonoverlapping(src, dst.as_mut_ptr(), dst.len()) };
        Ok(())
    }

    /// Copies `head` then `tail` to guest-physical `addr` (a virtio-net
    /// header and its packet: one translation for both).
    pub fn write2(&self, addr: u64, head: &[u8], tail: &[u8]) -> Result<(), Fault> {
        let dst = self.gpa(addr, (head.len() + tail.len()) as u64)?;
        // SAFETY: as in `read`, the other way: `dst` covers both parts.
        unsafe {
            std::ptr::copy_nonoverlapping(head.as_ptr(), dst, head.len());
            std::ptr::copy_nonoverlapping(tail.as_ptr(), dst.add(head.len()), tail.len());
        }
        Ok(())
    }

    /// Copies `src` to guest-physical `addr`.
    pub fn write(&self, addr: u64, src: &[u8]) -> Result<(), Fault> {
        let dst = self.gpa(addr, src.len() as u64)?;
        // SAFETY: as in `read`, the other way.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len()) };
        Ok(())
    }
}

impl Drop for GuestMemory {
    fn drop(&mut self) {
        for r in &self.regions {
            // SAFETY: mapped with this length in `map`; no pointer into it
            // outlives the memory table (queues re-translate on a new table).
            unsafe { libc::munmap(r.map.cast(), r.map_len) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memfd(len: usize) -> OwnedFd {
        use std::os::fd::FromRawFd;
        // SAFETY: memfd_create with a static name; checked below.
        let fd = unsafe { libc::memfd_create(c"guest".as_ptr(), 0) };
        assert!(fd >= 0);
        // SAFETY: fd is a fresh fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        assert_eq!(unsafe { libc::ftruncate(fd.as_raw_fd(), len as i64) }, 0);
        fd
    }

    #[test]
    fn addresses_outside_the_regions_fault() {
        let d = RegionDesc {
            guest_phys_addr: 0x10000,
            size: 0x2000,
            user_addr: 0x7000_0000,
            mmap_offset: 0x1000,
        };
        let mem = GuestMemory::map(&[d], &[memfd(0x3000)]).unwrap();
        mem.write(0x10000, b"abc").unwrap();
        let mut b = [0u8; 3];
        mem.read(0x10000, &mut b).unwrap();
        assert_eq!(&b, b"abc");
        assert_eq!(
            mem.uva(0x7000_0000, 3).unwrap(),
            mem.gpa(0x10000, 3).unwrap()
        );
        assert!(mem.gpa(0x11fff, 1).is_ok());
        for (addr, len) in [
            (0x11fff, 2),
            (0xffff, 1),
            (0x12000, 1),
            (u64::MAX, 2),
            (0x10000, u64::MAX),
        ] {
            assert_eq!(mem.gpa(addr, len).err(), Some(Fault { addr, len }));
        }
        // A region larger than its file is refused.
        let big = RegionDesc { size: 0x4000, ..d };
        assert!(GuestMemory::map(&[big], &[memfd(0x3000)]).is_err());
    }
}
