//! Named POSIX shared-memory segments: `shm_open`, `ftruncate`, `mmap`, `shm_unlink`.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::ptr::NonNull;

use memmap2::{MmapOptions, MmapRaw};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::error::{Error, Result};

/// The longest name `shm_open` accepts here: NAME_MAX (255) less the leading '/'.
pub const MAX_NAME_LEN: usize = 254;

/// Checks a segment name and returns it as `shm_open` wants it: with one leading '/'.
///
/// A name may be given with or without its leading '/'; otherwise it must be non-empty, at most
/// [`MAX_NAME_LEN`] bytes, and hold neither '/' nor NUL, nor be `.` or `..`.
pub(crate) fn shm_path(name: &str) -> Result<CString> {
    let bad = |reason| Error::InvalidName {
        name: name.to_owned(),
        reason,
    };
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
/// mapped); the name is unlinked on drop when `unlink_on_drop`.
pub(crate) struct SharedMemory {
    map: MmapRaw,
    path: CString,
    unlink_on_drop: bool,
}

impl SharedMemory {
    /// Creates a new segment of `len` bytes (exclusive: fails if the name exists), mode 0600,
    /// zero-filled, mapped shared.
    pub(crate) fn create(name: &str, len: usize, unlink_on_drop: bool) -> Result<SharedMemory> {
        let path = shm_path(name)?;
        let fd = nix::sys::mman::shm_open(
            path.as_c_str(),
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR,
            Mode::S_IRUSR | Mode::S_IWUSR,
        )
        .map_err(|e| match e {
            Errno::EEXIST => Error::AlreadyExists(name.to_owned()),
            e => Error::os("shm_open", e),
        })?;
        let unlink = |e: Error| {
            let _ = nix::sys::mman::shm_unlink(path.as_c_str());
            e
        };
        let size = libc::off_t::try_from(len)
            .map_err(|_| unlink(Error::InvalidConfig(format!("segment of {len} bytes"))))?;
        nix::unistd::ftruncate(&fd, size).map_err(|e| unlink(Error::os("ftruncate", e)))?;
        let map = map_shared(&fd, len).map_err(unlink)?;
        Ok(SharedMemory {
            map,
            path,
            unlink_on_drop,
        })
    }

    /// Opens and maps an existing segment whole; `min_len` is the least size worth mapping.
    pub(crate) fn open(name: &str, min_len: usize) -> Result<SharedMemory> {
        let path = shm_path(name)?;
        let fd = nix::sys::mman::shm_open(path.as_c_str(), OFlag::O_RDWR, Mode::empty()).map_err(
            |e| match e {
                Errno::ENOENT => Error::NotFound(name.to_owned()),
                e => Error::os("shm_open", e),
            },
        )?;
        let len = segment_len(&fd)?;
        if len < min_len as u64 {
            return Err(Error::TooSmall {
                len,
                needed: min_len as u64,
            });
        }
        let len = usize::try_from(len).map_err(|_| Error::TooSmall {
            len,
            needed: min_len as u64,
        })?;
        Ok(SharedMemory {
            map: map_shared(&fd, len)?,
            path,
            unlink_on_drop: false,
        })
    }

    /// The start of the mapping (page-aligned).
    pub(crate) fn base(&self) -> NonNull<u8> {
        NonNull::new(self.map.as_mut_ptr()).expect("mmap never returns null")
    }

    /// The mapping's length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

impl Drop for SharedMemory {
    fn drop(&mut self) {
        if self.unlink_on_drop {
            let _ = nix::sys::mman::shm_unlink(self.path.as_c_str());
        }
    }
}

fn segment_len(fd: &OwnedFd) -> Result<u64> {
    let st = nix::sys::stat::fstat(fd).map_err(|e| Error::os("fstat", e))?;
    Ok(u64::try_from(st.st_size).unwrap_or(0))
}

fn map_shared(fd: &OwnedFd, len: usize) -> Result<MmapRaw> {
    MmapOptions::new()
        .len(len)
        .map_raw(fd.as_raw_fd())
        .map_err(|e| Error::os("mmap", e))
}

/// Removes a named segment (`shm_unlink`). Mappings that exist stay valid until unmapped.
///
/// # Errors
/// [`Error::InvalidName`], [`Error::NotFound`] if no segment has that name, or [`Error::Os`].
pub fn remove_segment(name: &str) -> Result<()> {
    let path = shm_path(name)?;
    nix::sys::mman::shm_unlink(path.as_c_str()).map_err(|e| match e {
        Errno::ENOENT => Error::NotFound(name.to_owned()),
        e => Error::os("shm_unlink", e),
    })
}
