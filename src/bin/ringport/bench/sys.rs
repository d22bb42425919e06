//! Every unsafe operation of `ringport bench`: CPU pinning, inherited descriptors, and the shared
//! mapping that the hardware baseline runs over (its futex is the library's own,
//! `ringport::futex`). The rest of the bench is safe code. The benches in `benches/` pin with
//! this file too.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::AtomicU32;

use memmap2::MmapMut;

/// Cores online (not this process's affinity mask, which a pinned parent passes to its child).
pub fn online_cores() -> usize {
    // SAFETY: sysconf takes a plain integer and has no other effect.
    usize::try_from(unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) })
        .unwrap_or(1)
        .max(1)
}

/// Pins the calling thread to `core`.
pub fn pin_to(core: usize) -> io::Result<()> {
    // SAFETY: an all-zero cpu_set_t is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    if core >= 8 * std::mem::size_of::<libc::cpu_set_t>() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "core number too large",
        ));
    }
    // SAFETY: `core` is below the set's capacity (checked above).
    unsafe { libc::CPU_SET(core, &mut set) };
    // SAFETY: the set lives across the call, which only reads it.
    if unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A file descriptor that a child process inherits: a duplicate without close-on-exec.
pub fn inheritable(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD duplicates a descriptor we borrow; the new one is ours alone.
    let raw = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD, 3) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` was just returned by F_DUPFD and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Takes ownership of a descriptor number that this process inherited from its parent.
pub fn adopt_inherited(raw: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_GETFD only reads the descriptor's flags; it tells whether `raw` is open.
    if raw < 3 || unsafe { libc::fcntl(raw, libc::F_GETFD) } < 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("descriptor {raw} was not inherited"),
        ));
    }
    // SAFETY: the parent passed this number to us alone; nothing in this process owns it yet.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // Ours now: do not pass it on to anything this process starts.
    nix::fcntl::fcntl(
        &fd,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .map_err(io::Error::from)?;
    Ok(fd)
}

/// A shared mapping of a memfd, addressed by byte offsets: the raw baseline's whole world.
pub struct SharedMap {
    /// The mapping's first byte, taken once from the unique borrow (every access goes through
    /// it, never through a pointer derived from a shared borrow of `map`).
    base: *mut u8,
    map: MmapMut,
    fd: OwnedFd,
}

impl SharedMap {
    /// A new zeroed memfd of `len` bytes, mapped.
    pub fn create(len: usize) -> io::Result<SharedMap> {
        let fd = nix::sys::memfd::memfd_create(
            c"ringport-bench-raw",
            nix::sys::memfd::MFdFlags::MFD_CLOEXEC,
        )?;
        nix::unistd::ftruncate(&fd, len as libc::off_t)?;
        Self::map(fd)
    }

    /// Maps a memfd that the parent created.
    pub fn map(fd: OwnedFd) -> io::Result<SharedMap> {
        let file = File::from(fd.try_clone()?);
        // SAFETY: the memfd is private to the two bench processes, which only change its
        // contents, never its size; every access below goes through offsets checked against
        // the mapping's length.
        let mut map = unsafe { MmapMut::map_mut(&file)? };
        Ok(SharedMap {
            base: map.as_mut_ptr(),
            map,
            fd,
        })
    }

    /// The memfd, to pass to the peer.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// The 32-bit word at `offset` (4-aligned).
    pub fn word(&self, offset: usize) -> &AtomicU32 {
        assert!(offset % 4 == 0 && offset + 4 <= self.map.len());
        // SAFETY: in bounds and aligned (checked); the mapping lives as long as `self`, and all
        // access to a stamp word, by either process, is atomic.
        unsafe { AtomicU32::from_ptr(self.base.add(offset).cast::<u32>()) }
    }

    /// Copies `bytes` to `offset`. The caller owns that range (by the stamp protocol) until it
    /// publishes it with a Release store.
    pub fn write(&self, offset: usize, bytes: &[u8]) {
        assert!(offset + bytes.len() <= self.map.len());
        // SAFETY: in bounds (checked); the peer does not touch the range until the caller's
        // Release store publishes it, so the plain copy races with nothing.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.base.add(offset), bytes.len());
        }
    }

    /// The first word of the `len` bytes at `offset`, after reading one word from each cache
    /// line of them (as a receiver that looks at the whole message). The caller owns the range
    /// (it saw the peer's Release store with Acquire).
    pub fn touch(&self, offset: usize, len: usize) -> u64 {
        assert!(offset % 8 == 0 && len >= 8 && offset + len <= self.map.len());
        let base = self.base.cast_const();
        let mut sum = 0u64;
        let mut at = 64;
        while at + 8 <= len {
            // SAFETY: in bounds and 8-aligned (offset and `at` are multiples of 8); the writer
            // is done with the range (see above).
            sum ^= unsafe { std::ptr::read(base.add(offset + at) as *const u64) };
            at += 64;
        }
        std::hint::black_box(sum);
        // SAFETY: as above, for the first word.
        u64::from_le(unsafe { std::ptr::read(base.add(offset) as *const u64) })
    }
}
