//! Shared-memory segments: named POSIX ones (`shm_open`, `ftruncate`, `mmap`, `shm_unlink`)
//! and anonymous memfd ones, sealed so that no process can shrink them under a mapping.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;

use memmap2::{MmapOptions, MmapRaw};
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::sys::mman::{madvise, MmapAdvise};
use nix::sys::stat::Mode;

use super::os_error;
use crate::error::{Error, Result};
use crate::layout::{SegmentHeader, DATA_OFFSET};
use crate::options::Access;
use crate::sync::{AtomicU64, AtomicU8};

/// The longest name `shm_open` accepts here: NAME_MAX (255) less the leading '/'.
const MAX_NAME_LEN: usize = 254;

/// Checks a segment name and returns it as `shm_open` wants it: with one leading '/'.
///
/// A name may be given with or without its leading '/'; otherwise it must be non-empty, at most
/// [`MAX_NAME_LEN`] bytes, and hold neither '/' nor NUL, nor be `.` or `..`.
fn shm_path(name: &str) -> Result<CString> {
    let bad = |reason| Error::InvalidName { reason };
    let bare = name.strip_prefix('/').unwrap_or(name);
    if bare.is_empty() {
        return Err(bad("empty"));
    }
    if bare.len() > MAX_NAME_LEN {
        return Err(bad("longer than 254 bytes"));
    }
    if bare.contains('/') {
        return Err(bad("contains '/'"));
    }
    if bare == "." || bare == ".." {
        return Err(bad("'.' and '..' are not names"));
    }
    CString::new(format!("/{bare}")).map_err(|_| bad("contains a NUL byte"))
}

/// A mapped shared-memory segment.
///
/// The mapping lives as long as this value (it outlives the file descriptor, closed once
/// mapped); a named segment's name is unlinked on drop when `unlink_on_drop`.
pub(crate) struct SharedMemory {
    map: MmapRaw,
    /// The name to unlink on drop (None: anonymous, or not ours to unlink).
    unlink_on_drop: Option<CString>,
}

/// The seals every memfd segment carries: its size can never change, so a mapping of it can
/// never fault with SIGBUS, and no one can lift the seals.
const MEMFD_SEALS: SealFlag = SealFlag::F_SEAL_SHRINK
    .union(SealFlag::F_SEAL_GROW)
    .union(SealFlag::F_SEAL_SEAL);

impl SharedMemory {
    /// Creates a new segment of `len` bytes (exclusive: fails if the name exists), mode 0600 (or
    /// 0660 and group `group`), zero-filled, mapped shared.
    pub(crate) fn create(
        name: &str,
        len: usize,
        unlink_on_drop: bool,
        group: Option<u32>,
    ) -> Result<SharedMemory> {
        assert!(len >= DATA_OFFSET, "a segment holds at least its header");
        let path = shm_path(name)?;
        let fd = nix::sys::mman::shm_open(
            path.as_c_str(),
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR,
            Mode::S_IRUSR | Mode::S_IWUSR,
        )
        .map_err(|e| match e {
            Errno::EEXIST => Error::AlreadyExists,
            e => os_error("shm_open", e),
        })?;
        let unlink = |e: Error| {
            let _ = nix::sys::mman::shm_unlink(path.as_c_str());
            e
        };
        if let Some(gid) = group {
            // The group first, then the mode (set outright: the umask shaped the one above).
            nix::unistd::fchown(&fd, None, Some(nix::unistd::Gid::from_raw(gid)))
                .map_err(|e| unlink(os_error("fchown", e)))?;
            nix::sys::stat::fchmod(&fd, Mode::from_bits_truncate(0o660))
                .map_err(|e| unlink(os_error("fchmod", e)))?;
        }
        check_space(&fd, len).map_err(unlink)?;
        set_len(&fd, len).map_err(unlink)?;
        let map = map_shared(&fd, len).map_err(unlink)?;
        Ok(SharedMemory {
            map,
            unlink_on_drop: unlink_on_drop.then_some(path),
        })
    }

    /// Creates an anonymous segment of `len` bytes (`memfd_create`), zero-filled, sealed against
    /// any change of size, and maps it. The descriptor is what another process maps (passed over
    /// a Unix socket); the memory goes when the last mapping and descriptor go, so a crash leaves
    /// nothing behind.
    pub(crate) fn create_memfd(len: usize) -> Result<(SharedMemory, OwnedFd)> {
        assert!(len >= DATA_OFFSET, "a segment holds at least its header");
        let fd = sealed_memfd(c"ringport", len)?;
        let map = map_shared(&fd, len)?;
        Ok((
            SharedMemory {
                map,
                unlink_on_drop: None,
            },
            fd,
        ))
    }

    /// Maps a segment received as a descriptor (from a peer, so untrusted): it must be a memfd
    /// sealed against shrinking (or the peer could make our reads fault) and hold at least a
    /// header.
    pub(crate) fn from_fd(fd: BorrowedFd<'_>) -> Result<SharedMemory> {
        check_sealed(fd)?;
        let len = checked_len(fd)?;
        Ok(SharedMemory {
            map: map_shared(fd, len)?,
            unlink_on_drop: None,
        })
    }

    /// Opens and maps an existing segment whole; it must hold at least a header, belong to the
    /// caller's effective uid or a trusted one, and be writable by its owner alone unless
    /// `access` accepts shared write.
    pub(crate) fn open(name: &str, access: &Access) -> Result<SharedMemory> {
        let path = shm_path(name)?;
        let fd = nix::sys::mman::shm_open(path.as_c_str(), OFlag::O_RDWR, Mode::empty()).map_err(
            |e| match e {
                Errno::ENOENT => Error::NotFound,
                e => os_error("shm_open", e),
            },
        )?;
        let st = nix::sys::stat::fstat(&fd).map_err(|e| os_error("fstat", e))?;
        let owner = st.st_uid;
        if owner != nix::unistd::geteuid().as_raw() && !access.trusted_owners.contains(&owner) {
            return Err(Error::NotOwner { owner });
        }
        let mode = st.st_mode & 0o7777;
        if mode & 0o022 != 0 && !access.shared_write {
            return Err(Error::SharedWritable { mode });
        }
        let len = checked_len(&fd)?;
        Ok(SharedMemory {
            map: map_shared(&fd, len)?,
            unlink_on_drop: None,
        })
    }

    /// The start of the mapping (page-aligned).
    pub(super) fn base(&self) -> NonNull<u8> {
        NonNull::new(self.map.as_mut_ptr()).expect("mmap never returns null")
    }

    /// The segment header at the start of the mapping, to validate before the ring is used.
    pub(crate) fn header(&self) -> &SegmentHeader {
        // SAFETY: every constructor checked that the mapping holds at least DATA_OFFSET bytes
        // (the header's size); it is page-aligned, and a SegmentHeader is made of atomics, for
        // which any bit pattern is valid. The mapping lives as long as `self`.
        unsafe { self.base().cast::<SegmentHeader>().as_ref() }
    }

    /// The mapping's length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Faults in the first `len` bytes of the mapping, writable, as if each page had been
    /// written (`MADV_POPULATE_WRITE`, Linux 5.14), without touching their contents.
    ///
    /// A ring's hot path then never takes a page fault: a first lap that faulted page by page
    /// cost a 4 KiB ping-pong a third more a message (docs/PERFORMANCE.md, "Faulting pages
    /// in"). And a segment that the system cannot back (a full tmpfs, such as a container's
    /// small /dev/shm) fails here with an error instead of killing the process with SIGBUS in
    /// the middle of a write. On older kernels, which refuse the advice, the pages fault in on
    /// first use as before.
    ///
    /// # Errors
    /// [`Error::NoSpace`] if the system cannot back the pages; [`Error::Os`] otherwise.
    pub(crate) fn populate(&self, len: usize) -> Result<()> {
        let len = len.min(self.len());
        let base = self.base().cast::<std::ffi::c_void>();
        // SAFETY: the range lies inside this mapping, which lives as long as `self`; populating
        // changes no byte of it and no mapping attribute, so no reference into it is affected.
        match unsafe { madvise(base, len, MmapAdvise::MADV_POPULATE_WRITE) } {
            Ok(()) | Err(Errno::EINVAL) => Ok(()),
            // The pages cannot be had: a tmpfs out of space gives EFAULT (the fault that
            // populating takes fails), a memory limit ENOMEM.
            Err(Errno::EFAULT | Errno::ENOMEM | Errno::ENOSPC) => {
                Err(Error::NoSpace { len: len as u64 })
            }
            Err(e) => Err(os_error("madvise(MADV_POPULATE_WRITE)", e)),
        }
    }
}

impl Drop for SharedMemory {
    fn drop(&mut self) {
        if let Some(path) = &self.unlink_on_drop {
            let _ = nix::sys::mman::shm_unlink(path.as_c_str());
        }
    }
}

/// A sealed memfd of plain bytes with no ring header (the harness's coverage map), seen as
/// atomics: another process writes it while we read it.
pub(crate) struct SharedBytes {
    map: MmapRaw,
}

impl SharedBytes {
    /// Creates one of `len` bytes (at least 1), zero-filled, sealed against any change of size,
    /// mapped; the descriptor is for the process it is shared with.
    pub(crate) fn create_memfd(len: usize) -> Result<(SharedBytes, OwnedFd)> {
        if len == 0 {
            return Err(Error::InvalidConfig("a shared map of no bytes"));
        }
        let fd = sealed_memfd(c"ringport-map", len)?;
        let map = map_shared(&fd, len)?;
        Ok((SharedBytes { map }, fd))
    }

    /// Maps one received as a descriptor (untrusted): it must be a memfd sealed against
    /// shrinking, and exactly `len` bytes long.
    pub(crate) fn from_fd(fd: BorrowedFd<'_>, len: usize) -> Result<SharedBytes> {
        check_sealed(fd)?;
        let st = nix::sys::stat::fstat(fd).map_err(|e| os_error("fstat", e))?;
        if u64::try_from(st.st_size).ok() != Some(len as u64) || len == 0 {
            return Err(Error::Protocol(
                "a shared map is not the size it was announced",
            ));
        }
        Ok(SharedBytes {
            map: map_shared(fd, len)?,
        })
    }

    /// The bytes, one atomic each.
    pub(crate) fn bytes(&self) -> &[AtomicU8] {
        // SAFETY: the mapping is `len` bytes, lives as long as `self`, and is only ever read or
        // written through atomics here (another process may write it any time: any value is a
        // valid u8).
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().cast::<AtomicU8>(), self.map.len()) }
    }

    /// The bytes as words, for reading and clearing a word at a time; the tail that is not a
    /// whole word is in [`bytes`](Self::bytes) past `words().len() * 8`.
    pub(crate) fn words(&self) -> &[AtomicU64] {
        // SAFETY: the mapping is page-aligned, so word-aligned; `len / 8` words lie inside it.
        // Within one process a map is read either as bytes (the target) or as words (the
        // driver), never both.
        unsafe {
            std::slice::from_raw_parts(self.map.as_ptr().cast::<AtomicU64>(), self.map.len() / 8)
        }
    }

    /// The start of the mapping, for instrumentation that writes it as plain memory.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.map.as_mut_ptr()
    }
}

/// A new memfd of `len` zero bytes, close-on-exec, sealed against any change of size.
fn sealed_memfd(name: &std::ffi::CStr, len: usize) -> Result<OwnedFd> {
    let fd = memfd_create(name, MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING)
        .map_err(|e| os_error("memfd_create", e))?;
    set_len(&fd, len)?;
    fcntl(&fd, FcntlArg::F_ADD_SEALS(MEMFD_SEALS)).map_err(|e| os_error("F_ADD_SEALS", e))?;
    Ok(fd)
}

/// Checks that a descriptor from a peer is a memfd sealed against shrinking (or the peer could
/// make our reads fault).
fn check_sealed(fd: BorrowedFd<'_>) -> Result<()> {
    let seals = fcntl(fd, FcntlArg::F_GET_SEALS).map_err(|e| match e {
        Errno::EINVAL => Error::Unsealed,
        e => os_error("F_GET_SEALS", e),
    })?;
    if SealFlag::from_bits_retain(seals).contains(SealFlag::F_SEAL_SHRINK) {
        Ok(())
    } else {
        Err(Error::Unsealed)
    }
}

/// Checks that the filesystem of a new named segment (the tmpfs of `/dev/shm`) has room for
/// `len` bytes now, whether or not its pages are faulted in at once: a sparse segment larger
/// than the space would be accepted, and kill a peer with SIGBUS at the first page that the
/// system cannot back. (Space taken by others later can still run out: faulting in, which
/// rings do by default, takes it at creation.)
fn check_space(fd: &OwnedFd, len: usize) -> Result<()> {
    let fs = nix::sys::statvfs::fstatvfs(fd).map_err(|e| os_error("fstatvfs", e))?;
    // A tmpfs mounted without a size limit reports no blocks: nothing to check against.
    if fs.blocks() == 0 {
        return Ok(());
    }
    let available = fs.blocks_available().saturating_mul(fs.fragment_size());
    if len as u64 > available {
        return Err(Error::NoSpace { len: len as u64 });
    }
    Ok(())
}

/// Sizes a new segment (zero-filled).
fn set_len(fd: &OwnedFd, len: usize) -> Result<()> {
    let size = libc::off_t::try_from(len)
        .map_err(|_| Error::InvalidConfig("segment larger than a file offset holds"))?;
    nix::unistd::ftruncate(fd, size).map_err(|e| os_error("ftruncate", e))
}

/// The segment's size (fstat), which must be at least a header's.
fn checked_len(fd: impl AsFd) -> Result<usize> {
    let st = nix::sys::stat::fstat(fd).map_err(|e| os_error("fstat", e))?;
    let len = u64::try_from(st.st_size).unwrap_or(0);
    let too_small = Error::TooSmall {
        len,
        needed: DATA_OFFSET as u64,
    };
    match usize::try_from(len) {
        Ok(len) if len >= DATA_OFFSET => Ok(len),
        _ => Err(too_small),
    }
}

fn map_shared(fd: impl AsFd, len: usize) -> Result<MmapRaw> {
    MmapOptions::new()
        .len(len)
        .map_raw(fd.as_fd().as_raw_fd())
        // memmap2 reports the kernel's errno.
        .map_err(|e| {
            os_error(
                "mmap",
                e.raw_os_error()
                    .map_or(Errno::UnknownErrno, Errno::from_raw),
            )
        })
}

/// Removes a named segment (see `os::remove_segment`).
pub(crate) fn remove_segment(name: &str) -> Result<()> {
    let path = shm_path(name)?;
    nix::sys::mman::shm_unlink(path.as_c_str()).map_err(|e| match e {
        Errno::ENOENT => Error::NotFound,
        e => os_error("shm_unlink", e),
    })
}
