//! System V shared memory: `ftok`, `shmget`, `shmat`, `shmctl(IPC_STAT, IPC_SET, IPC_RMID)`,
//! `shmdt`, and `/proc/sysvipc/shm` for what exists.
//!
//! A System V segment has a fixed size (no one can truncate it under a mapping) and lives until
//! it is marked removed and the last process detaches; a creator killed before it marks it
//! leaves it, with no process attached (`ipcs -m` shows it; `ringport gc` removes it).

use std::ffi::CString;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::Arc;

use nix::errno::Errno;

use super::shm::{check_access, Creation};
use crate::error::{Error, Result};
use crate::layout::{DATA_OFFSET, MAGIC};
use crate::options::Access;

/// A key made from a path and a project id (`ftok(3)`).
///
/// # Errors
/// [`Error::NotFound`] if the path does not exist; [`Error::InvalidName`]; [`Error::Os`].
pub(crate) fn key(path: &Path, project: u8) -> Result<i32> {
    let path =
        CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| Error::InvalidName {
            reason: "contains a NUL byte",
        })?;
    if project == 0 {
        return Err(Error::InvalidConfig("an ftok project id is not 0"));
    }
    // SAFETY: `path` is a valid C string for the call's duration.
    let key = unsafe { libc::ftok(path.as_ptr(), i32::from(project)) };
    if key == -1 {
        return Err(match Errno::last() {
            Errno::ENOENT => Error::NotFound,
            e => super::os_error("ftok", e),
        });
    }
    Ok(key)
}

/// An attachment of a segment (`shmat`), detached when its last handle goes.
#[derive(Clone)]
pub(crate) struct Attached(Arc<Attachment>);

struct Attachment {
    base: NonNull<u8>,
    len: usize,
    id: i32,
}

// SAFETY: the attachment is an address range and an id; what is read and written through it is
// atomics (see `SharedMemory`), from any thread.
unsafe impl Send for Attachment {}
// SAFETY: as for Send: nothing in it is mutated after it is made.
unsafe impl Sync for Attachment {}

impl Drop for Attachment {
    fn drop(&mut self) {
        // SAFETY: `base` is what `shmat` returned, attached once and detached here once, after
        // every reference into it (which borrow a handle) has gone.
        unsafe { libc::shmdt(self.base.as_ptr().cast()) };
    }
}

impl Attached {
    pub(crate) fn base(&self) -> NonNull<u8> {
        self.0.base
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len
    }

    /// Marks the segment removed (`IPC_RMID`): the key is free at once, the memory goes with
    /// the last detach.
    pub(crate) fn remove(&self) {
        // SAFETY: IPC_RMID takes no buffer.
        unsafe { libc::shmctl(self.0.id, libc::IPC_RMID, std::ptr::null_mut()) };
    }
}

/// `shmctl(IPC_STAT)`.
fn stat(id: i32) -> Result<libc::shmid_ds> {
    // SAFETY: shmid_ds is plain data; zeroes are a valid value, and IPC_STAT fills it.
    let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: `ds` is a valid, writable shmid_ds.
    if unsafe { libc::shmctl(id, libc::IPC_STAT, &raw mut ds) } == -1 {
        return Err(super::os_error("shmctl(IPC_STAT)", Errno::last()));
    }
    Ok(ds)
}

/// `shmat` of segment `id`, `len` bytes, read-only if `read_only`.
fn attach(id: i32, len: usize, read_only: bool) -> Result<Attached> {
    let flags = if read_only { libc::SHM_RDONLY } else { 0 };
    // SAFETY: a null address lets the kernel place the attachment; nothing of ours is there.
    let base = unsafe { libc::shmat(id, std::ptr::null(), flags) };
    if base as isize == -1 {
        return Err(super::os_error("shmat", Errno::last()));
    }
    Ok(Attached(Arc::new(Attachment {
        base: NonNull::new(base.cast()).expect("shmat returned an address"),
        len,
        id,
    })))
}

/// Creates the segment of `key` (exclusive), sized, with its group and mode, attached.
pub(crate) fn create(key: i32, creation: &Creation) -> Result<Attached> {
    if key == libc::IPC_PRIVATE {
        return Err(Error::InvalidName {
            reason: "System V key 0 is IPC_PRIVATE, which no other process can find",
        });
    }
    let mut flags = libc::IPC_CREAT | libc::IPC_EXCL | 0o600;
    if creation.huge_pages {
        flags |= libc::SHM_HUGETLB;
    }
    let len = creation.len;
    // SAFETY: shmget takes plain values.
    let id = unsafe { libc::shmget(key, len, flags) };
    if id == -1 {
        return Err(match Errno::last() {
            Errno::EEXIST => match is_ringport(key) {
                Ok(true) => Error::AlreadyExists,
                _ => Error::KeyInUse { key },
            },
            Errno::EINVAL => Error::SystemLimit {
                limit: "kernel.shmmax",
                len: len as u64,
            },
            Errno::ENOSPC => Error::SystemLimit {
                limit: "kernel.shmall (or kernel.shmmni)",
                len: len as u64,
            },
            Errno::ENOMEM if creation.huge_pages => Error::NoHugePages { len: len as u64 },
            Errno::ENOMEM => Error::NoSpace { len: len as u64 },
            Errno::EPERM if creation.huge_pages => Error::Unsupported(
                "huge System V segments need CAP_IPC_LOCK or vm.hugetlb_shm_group",
            ),
            e => super::os_error("shmget", e),
        });
    }
    let remove = |e: Error| {
        // SAFETY: IPC_RMID takes no buffer.
        unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
        e
    };
    if let Some(gid) = creation.group {
        let mut ds = stat(id).map_err(remove)?;
        ds.shm_perm.gid = gid;
        ds.shm_perm.mode = 0o660;
        // SAFETY: `ds` is a valid shmid_ds, read by IPC_SET.
        if unsafe { libc::shmctl(id, libc::IPC_SET, &raw mut ds) } == -1 {
            return Err(remove(super::os_error("shmctl(IPC_SET)", Errno::last())));
        }
    }
    attach(id, len, false).map_err(remove)
}

/// Opens the segment of `key`: it must belong to us (or a trusted owner), be writable by its
/// owner alone (unless accepted), and hold at least a header.
pub(crate) fn open(key: i32, access: &Access) -> Result<Attached> {
    let id = find(key)?;
    let ds = stat(id)?;
    check_access(ds.shm_perm.uid, u32::from(ds.shm_perm.mode), access)?;
    let len = ds.shm_segsz;
    if len < DATA_OFFSET {
        return Err(Error::TooSmall {
            len: len as u64,
            needed: DATA_OFFSET as u64,
        });
    }
    attach(id, len, false)
}

/// The id of the segment of `key`.
fn find(key: i32) -> Result<i32> {
    if key == libc::IPC_PRIVATE {
        return Err(Error::NotFound);
    }
    // SAFETY: shmget takes plain values.
    let id = unsafe { libc::shmget(key, 0, 0) };
    if id == -1 {
        return Err(match Errno::last() {
            Errno::ENOENT => Error::NotFound,
            e => super::os_error("shmget", e),
        });
    }
    Ok(id)
}

/// A read-only attachment of segment `id`, for reading it whole without a descriptor (a System
/// V segment cannot shrink, so reads through it cannot fault).
pub(crate) fn attach_to_read(id: i32) -> Result<Attached> {
    let size = stat(id)?.shm_segsz;
    attach(id, size, true)
}

impl Attached {
    /// Copies into `buf` from byte `offset`; returns how many bytes there were.
    pub(crate) fn read(&self, offset: usize, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.len().saturating_sub(offset));
        // SAFETY: offset + n <= the attachment's size, alive as long as `self`. Another process
        // may write these bytes meanwhile: they are copied as bytes, and the caller validates
        // what it makes of them.
        unsafe {
            std::ptr::copy_nonoverlapping(self.base().as_ptr().add(offset), buf.as_mut_ptr(), n);
        }
        n
    }
}

/// Whether the segment of `key` starts with ringport's magic.
fn is_ringport(key: i32) -> Result<bool> {
    let mut magic = [0u8; 8];
    let n = attach_to_read(find(key)?)?.read(0, &mut magic);
    Ok(n == 8 && u64::from_le_bytes(magic) == MAGIC)
}

/// Removes the segment of `key` (marks it removed: it goes with its last detach), if it is a
/// ringport ring.
///
/// # Errors
/// [`Error::NotFound`]; [`Error::KeyInUse`] if it is not ringport's; [`Error::Os`].
pub(crate) fn remove(key: i32) -> Result<()> {
    let id = find(key)?;
    if !is_ringport(key)? {
        return Err(Error::KeyInUse { key });
    }
    // SAFETY: IPC_RMID takes no buffer.
    if unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) } == -1 {
        return Err(super::os_error("shmctl(IPC_RMID)", Errno::last()));
    }
    Ok(())
}

/// A System V segment as `/proc/sysvipc/shm` lists it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Listed {
    pub key: i32,
    pub id: i32,
    pub mode: u32,
    pub size: u64,
    pub attached: u64,
    pub uid: u32,
    /// Last change, in seconds since the epoch.
    pub changed: u64,
}

/// Every System V segment with a key (private ones cannot be found, so cannot be ours).
pub(crate) fn list() -> Vec<Listed> {
    let Ok(text) = std::fs::read_to_string("/proc/sysvipc/shm") else {
        return Vec::new();
    };
    // key shmid perms size cpid lpid nattch uid gid cuid cgid atime dtime ctime ...
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let num = |i: usize| f.get(i)?.parse::<i64>().ok();
            let listed = Listed {
                key: num(0)? as i32,
                id: num(1)? as i32,
                mode: u32::from_str_radix(f.get(2)?, 8).ok()?,
                size: num(3)? as u64,
                attached: num(6)? as u64,
                uid: num(7)? as u32,
                changed: num(13)? as u64,
            };
            (listed.key != libc::IPC_PRIVATE).then_some(listed)
        })
        .collect()
}

/// The id of the segment of `key`, for reading (see [`read`]).
pub(crate) fn id_of(key: i32) -> Result<i32> {
    find(key)
}
