//! Shared-memory segments: named POSIX ones (`shm_open`, `ftruncate`, `mmap`, `shm_unlink`)
//! and anonymous memfd ones, sealed so that no process can shrink them under a mapping.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
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
use crate::os::Location;
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

/// What a new segment is to be: its size, whether its creator removes it when it goes, who
/// may share it, and on what pages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Creation {
    /// Bytes, header and data.
    pub len: usize,
    /// Remove the name (key, file) when this mapping goes.
    pub remove_on_drop: bool,
    /// Mode 0660 and this group (None: mode 0600).
    pub group: Option<u32>,
    /// Back it with huge pages (memfd, System V, or a file on hugetlbfs).
    pub huge_pages: bool,
}

/// A mapped shared-memory segment.
///
/// The mapping lives as long as this value (it outlives the file descriptor, closed once
/// mapped); what the creator removes when it goes (a name, a key, a file) goes on drop.
pub(crate) struct SharedMemory {
    mapping: Mapping,
    /// What to remove on drop (nothing: anonymous, opened, or kept).
    cleanup: Cleanup,
}

/// A mapping: `mmap` of a descriptor, or a System V attachment.
enum Mapping {
    Mmap(MmapRaw),
    SysV(super::sysv::Attached),
}

/// What a creator removes when it goes.
enum Cleanup {
    Nothing,
    Served(super::served::Server),
    ShmName(CString),
    SysV(super::sysv::Attached),
    File(std::path::PathBuf),
}

/// The seals every memfd segment carries: its size can never change, so a mapping of it can
/// never fault with SIGBUS, and no one can lift the seals.
const MEMFD_SEALS: SealFlag = SealFlag::F_SEAL_SHRINK
    .union(SealFlag::F_SEAL_GROW)
    .union(SealFlag::F_SEAL_SEAL);

/// hugetlbfs's `f_type`.
const HUGETLBFS_MAGIC: i64 = 0x9584_58f6;

impl SharedMemory {
    /// Creates a new segment at `location` (exclusive: fails if it exists), mode 0600 (or 0660
    /// and a group), zero-filled, mapped shared.
    pub(crate) fn create(location: &Location, creation: &Creation) -> Result<SharedMemory> {
        assert!(
            creation.len >= DATA_OFFSET,
            "a segment holds at least its header"
        );
        match location {
            Location::Shm(name) => {
                if creation.huge_pages {
                    return Err(Error::Unsupported(
                        "/dev/shm has no huge pages: use a memfd, a System V segment, or a file                          on hugetlbfs",
                    ));
                }
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
                let remove = || {
                    let _ = nix::sys::mman::shm_unlink(path.as_c_str());
                };
                let map = size_and_map(&fd, creation, false).inspect_err(|_| remove())?;
                Ok(SharedMemory {
                    mapping: Mapping::Mmap(map),
                    cleanup: if creation.remove_on_drop {
                        Cleanup::ShmName(path)
                    } else {
                        Cleanup::Nothing
                    },
                })
            }
            Location::File(path) => {
                let fd = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
                    .open(path)
                    .map_err(|e| match e.kind() {
                        std::io::ErrorKind::AlreadyExists => Error::AlreadyExists,
                        std::io::ErrorKind::NotFound => Error::NotFound,
                        _ => crate::os::io_error("open a file to map", &e),
                    })?;
                let fd = OwnedFd::from(fd);
                let remove = || {
                    let _ = std::fs::remove_file(path);
                };
                let huge = on_hugetlbfs(&fd).inspect_err(|_| remove())?;
                if creation.huge_pages && !huge {
                    remove();
                    return Err(Error::Unsupported(
                        "huge pages for a mapped file need the file on hugetlbfs",
                    ));
                }
                let map = size_and_map(&fd, creation, huge).inspect_err(|_| remove())?;
                Ok(SharedMemory {
                    mapping: Mapping::Mmap(map),
                    cleanup: if creation.remove_on_drop {
                        Cleanup::File(path.clone())
                    } else {
                        Cleanup::Nothing
                    },
                })
            }
            Location::Served(name) => {
                let (mut shm, fd) = SharedMemory::create_memfd(creation.len, creation.huge_pages)?;
                let server = super::served::Server::start(name, fd, creation.group)?;
                if creation.remove_on_drop {
                    shm.cleanup = Cleanup::Served(server);
                } else {
                    server.keep();
                }
                Ok(shm)
            }
            Location::SysV(key) => {
                let attached = super::sysv::create(*key, creation)?;
                let mapping = Mapping::SysV(attached.clone());
                Ok(SharedMemory {
                    mapping,
                    cleanup: if creation.remove_on_drop {
                        Cleanup::SysV(attached)
                    } else {
                        Cleanup::Nothing
                    },
                })
            }
        }
    }

    /// Creates an anonymous segment of `len` bytes (`memfd_create`), zero-filled, sealed against
    /// any change of size, and maps it; on huge pages if `huge_pages` (its size rounded up to
    /// whole pages). The descriptor is what another process maps (passed over a Unix socket);
    /// the memory goes when the last mapping and descriptor go, so a crash leaves nothing
    /// behind.
    pub(crate) fn create_memfd(len: usize, huge_pages: bool) -> Result<(SharedMemory, OwnedFd)> {
        assert!(len >= DATA_OFFSET, "a segment holds at least its header");
        let (fd, len) = if huge_pages {
            huge_memfd(c"ringport", len)?
        } else {
            (sealed_memfd(c"ringport", len)?, len)
        };
        let map = map_shared(&fd, len).map_err(|e| huge_refusal(e, huge_pages, len))?;
        Ok((
            SharedMemory {
                mapping: Mapping::Mmap(map),
                cleanup: Cleanup::Nothing,
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
            mapping: Mapping::Mmap(map_shared(fd, len)?),
            cleanup: Cleanup::Nothing,
        })
    }

    /// Opens and maps an existing segment whole; it must hold at least a header, belong to the
    /// caller's effective uid or a trusted one, and be writable by its owner alone unless
    /// `access` accepts shared write.
    pub(crate) fn open(location: &Location, access: &Access) -> Result<SharedMemory> {
        let fd = match location {
            Location::Shm(name) => {
                let path = shm_path(name)?;
                nix::sys::mman::shm_open(path.as_c_str(), OFlag::O_RDWR, Mode::empty()).map_err(
                    |e| match e {
                        Errno::ENOENT => Error::NotFound,
                        e => os_error("shm_open", e),
                    },
                )?
            }
            Location::File(path) => OwnedFd::from(
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
                    .open(path)
                    .map_err(|e| match e.kind() {
                        std::io::ErrorKind::NotFound => Error::NotFound,
                        _ => crate::os::io_error("open a file to map", &e),
                    })?,
            ),
            Location::SysV(key) => {
                let attached = super::sysv::open(*key, access)?;
                return Ok(SharedMemory {
                    mapping: Mapping::SysV(attached),
                    cleanup: Cleanup::Nothing,
                });
            }
            Location::Served(name) => {
                let (fd, _server) = super::served::fetch(name, access)?;
                return SharedMemory::from_fd(fd.as_fd());
            }
        };
        let st = nix::sys::stat::fstat(&fd).map_err(|e| os_error("fstat", e))?;
        check_access(st.st_uid, st.st_mode, access)?;
        let len = checked_len(&fd)?;
        Ok(SharedMemory {
            mapping: Mapping::Mmap(map_shared(&fd, len)?),
            cleanup: Cleanup::Nothing,
        })
    }

    /// The start of the mapping (page-aligned).
    pub(super) fn base(&self) -> NonNull<u8> {
        match &self.mapping {
            Mapping::Mmap(map) => NonNull::new(map.as_mut_ptr()).expect("mmap never returns null"),
            Mapping::SysV(attached) => attached.base(),
        }
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
        match &self.mapping {
            Mapping::Mmap(map) => map.len(),
            Mapping::SysV(attached) => attached.len(),
        }
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

    /// Locks the whole mapping in memory (`mlock`): its pages are faulted in and never paged
    /// out or moved to swap.
    ///
    /// # Errors
    /// [`Error::MemoryLock`] if the process may not lock that much; [`Error::Os`].
    pub(crate) fn lock(&self) -> Result<()> {
        let base = self.base().cast::<std::ffi::c_void>();
        // SAFETY: the range is this mapping, alive as long as `self`; locking changes no byte.
        match unsafe { nix::sys::mman::mlock(base, self.len()) } {
            Ok(()) => Ok(()),
            Err(Errno::ENOMEM | Errno::EPERM | Errno::EAGAIN) => Err(Error::MemoryLock {
                len: self.len() as u64,
                limit: nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_MEMLOCK)
                    .map_or(0, |(soft, _)| soft),
            }),
            Err(e) => Err(os_error("mlock", e)),
        }
    }
}

impl Drop for SharedMemory {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Nothing => {}
            // Its thread is joined when the cleanup drops, after this.
            Cleanup::Served(server) => server.stop(),
            Cleanup::ShmName(path) => {
                let _ = nix::sys::mman::shm_unlink(path.as_c_str());
            }
            Cleanup::File(path) => {
                let _ = std::fs::remove_file(path);
            }
            Cleanup::SysV(attached) => attached.remove(),
        }
        // An mmap unmaps itself when dropped; a System V attachment detaches when the last of
        // its handles (this mapping's, the cleanup's) goes.
    }
}

/// Whether a segment's owner and mode are acceptable to an opener (see `Access`).
pub(super) fn check_access(uid: u32, mode: u32, access: &Access) -> Result<()> {
    if uid != nix::unistd::geteuid().as_raw() && !access.trusted_owners.contains(&uid) {
        return Err(Error::NotOwner { owner: uid });
    }
    let mode = mode & 0o7777;
    if mode & 0o022 != 0 && !access.shared_write {
        return Err(Error::SharedWritable { mode });
    }
    Ok(())
}

/// A new segment's descriptor given its group, mode, size (checked against its filesystem's
/// space first) and mapping. `huge`: it is on hugetlbfs, whose files are sized in whole pages.
fn size_and_map(fd: &OwnedFd, creation: &Creation, huge: bool) -> Result<MmapRaw> {
    if let Some(gid) = creation.group {
        // The group first, then the mode (set outright: the umask shaped the one above).
        nix::unistd::fchown(fd, None, Some(nix::unistd::Gid::from_raw(gid)))
            .map_err(|e| os_error("fchown", e))?;
        nix::sys::stat::fchmod(fd, Mode::from_bits_truncate(0o660))
            .map_err(|e| os_error("fchmod", e))?;
    }
    let len = if huge {
        round_up(creation.len, fs_block_size(fd)?)
    } else {
        creation.len
    };
    check_space(fd, len, huge)?;
    set_len(fd, len)?;
    map_shared(fd, len).map_err(|e| huge_refusal(e, huge, len))
}

/// A mapping refused for want of memory is, on huge pages, a want of huge pages: a shared
/// hugetlb mapping takes its pages when it is made.
fn huge_refusal(e: Error, huge: bool, len: usize) -> Error {
    match e {
        Error::Os {
            source: Errno::ENOMEM,
            ..
        } if huge => Error::NoHugePages { len: len as u64 },
        e => e,
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

/// Checks that the filesystem of a new segment (the tmpfs of `/dev/shm`, or a file's) has room
/// for `len` bytes now, whether or not its pages are faulted in at once: a sparse segment larger
/// than the space would be accepted, and kill a peer with SIGBUS at the first page that the
/// system cannot back. (Space taken by others later can still run out: faulting in, which
/// rings do by default, takes it at creation.)
fn check_space(fd: &OwnedFd, len: usize, huge: bool) -> Result<()> {
    let fs = nix::sys::statvfs::fstatvfs(fd).map_err(|e| os_error("fstatvfs", e))?;
    // A tmpfs mounted without a size limit reports no blocks: nothing to check against.
    if fs.blocks() == 0 {
        return Ok(());
    }
    let available = fs.blocks_available().saturating_mul(fs.fragment_size());
    if len as u64 > available {
        return Err(if huge {
            Error::NoHugePages { len: len as u64 }
        } else {
            Error::NoSpace { len: len as u64 }
        });
    }
    Ok(())
}

/// Whether a file is on hugetlbfs.
fn on_hugetlbfs(fd: &OwnedFd) -> Result<bool> {
    let fs = nix::sys::statfs::fstatfs(fd).map_err(|e| os_error("fstatfs", e))?;
    Ok(fs.filesystem_type().0 as i64 == HUGETLBFS_MAGIC)
}

/// The block size of a file's filesystem (a huge page, on hugetlbfs).
fn fs_block_size(fd: &OwnedFd) -> Result<usize> {
    let fs = nix::sys::statfs::fstatfs(fd).map_err(|e| os_error("fstatfs", e))?;
    Ok(usize::try_from(fs.block_size()).unwrap_or(4096).max(4096))
}

fn round_up(len: usize, to: usize) -> usize {
    len.div_ceil(to) * to
}

/// A sealed memfd of at least `len` bytes on huge pages, and its length (whole pages).
fn huge_memfd(name: &std::ffi::CStr, len: usize) -> Result<(OwnedFd, usize)> {
    let fd = memfd_create(
        name,
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING | MFdFlags::MFD_HUGETLB,
    )
    .map_err(|e| match e {
        Errno::EINVAL => Error::Unsupported("this kernel has no huge pages for memfd"),
        e => os_error("memfd_create(MFD_HUGETLB)", e),
    })?;
    let len = round_up(len, fs_block_size(&fd)?);
    let refused = |e: Error| match e {
        Error::Os {
            source: Errno::ENOMEM | Errno::ENOSPC | Errno::EINVAL,
            ..
        } => Error::NoHugePages { len: len as u64 },
        e => e,
    };
    set_len(&fd, len).map_err(refused)?;
    fcntl(&fd, FcntlArg::F_ADD_SEALS(MEMFD_SEALS)).map_err(|e| os_error("F_ADD_SEALS", e))?;
    Ok((fd, len))
}

/// Sizes a new segment (zero-filled).
pub(super) fn set_len(fd: &OwnedFd, len: usize) -> Result<()> {
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
pub(crate) fn remove_segment(location: &Location) -> Result<()> {
    match location {
        Location::Shm(name) => {
            let path = shm_path(name)?;
            nix::sys::mman::shm_unlink(path.as_c_str()).map_err(|e| match e {
                Errno::ENOENT => Error::NotFound,
                e => os_error("shm_unlink", e),
            })
        }
        Location::SysV(key) => super::sysv::remove(*key),
        Location::File(path) => std::fs::remove_file(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound,
            _ => crate::os::io_error("remove a mapped file", &e),
        }),
        Location::Served(_) => Err(Error::Unsupported(
            "a served ring's name goes with its creator: it cannot be removed by another",
        )),
    }
}

/// See `os::sysv_key`.
pub(crate) fn sysv_key(path: &std::path::Path, project: u8) -> Result<i32> {
    super::sysv::key(path, project)
}
