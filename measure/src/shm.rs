//! Raw shared mappings, addressed by byte offsets: what a baseline runs over, and what a test
//! uses to read and write a ringport segment's words as a hostile peer would.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use memmap2::MmapMut;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

/// A shared mapping of a whole memfd, named POSIX segment, file, or System V segment.
pub struct SharedMap {
    /// The mapping's first byte, taken once from the unique borrow (every access goes through
    /// it, never through a pointer derived from a shared borrow of `map`); dangling when empty.
    base: *mut u8,
    len: usize,
    /// None for an empty segment, which cannot be mapped, and for a System V attachment
    /// (detached on drop).
    _map: Option<MmapMut>,
    /// None for a System V attachment, which has no descriptor.
    fd: Option<OwnedFd>,
    /// A System V attachment's segment id.
    sysv: Option<i32>,
}

impl Drop for SharedMap {
    fn drop(&mut self) {
        if self.sysv.is_some() {
            // SAFETY: `base` is what shmat returned, detached once, here; no reference into
            // the mapping outlives `self`.
            unsafe { libc::shmdt(self.base.cast()) };
        }
    }
}

// SAFETY: the mapping is owned; every access through `base` is atomic or stays inside a range
// its caller owns by the protocol it runs (see `write` and `touch`).
unsafe impl Send for SharedMap {}
// SAFETY: as above.
unsafe impl Sync for SharedMap {}

fn shm_path(name: &str) -> io::Result<CString> {
    CString::new(format!("/{}", name.trim_start_matches('/')))
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a segment name"))
}

impl SharedMap {
    /// A new zeroed memfd of `len` bytes, mapped (close-on-exec: pass it on with
    /// [`crate::fds::inheritable`]).
    ///
    /// # Errors
    /// If the memfd cannot be made, sized or mapped.
    pub fn create(len: usize) -> io::Result<SharedMap> {
        let fd = nix::sys::memfd::memfd_create(
            c"ringport-measure",
            nix::sys::memfd::MFdFlags::MFD_CLOEXEC,
        )?;
        nix::unistd::ftruncate(&fd, len as libc::off_t)?;
        Self::map(fd)
    }

    /// A new named POSIX segment of `len` bytes (exclusive, mode 0600), mapped. Removing the
    /// name is the caller's business (a [`SegmentName`] does it).
    ///
    /// # Errors
    /// If the name exists or the segment cannot be made, sized or mapped.
    pub fn create_named(name: &str, len: usize) -> io::Result<SharedMap> {
        let fd = nix::sys::mman::shm_open(
            shm_path(name)?.as_c_str(),
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR,
            Mode::S_IRUSR | Mode::S_IWUSR,
        )?;
        nix::unistd::ftruncate(&fd, len as libc::off_t)?;
        Self::map(fd)
    }

    /// Maps an existing named POSIX segment whole.
    ///
    /// # Errors
    /// If it does not exist or cannot be mapped.
    pub fn open_named(name: &str) -> io::Result<SharedMap> {
        let fd =
            nix::sys::mman::shm_open(shm_path(name)?.as_c_str(), OFlag::O_RDWR, Mode::empty())?;
        Self::map(fd)
    }

    /// Maps a memfd or segment descriptor whole (for instance one the parent created). The
    /// processes that share it must only change its contents, never its size.
    ///
    /// # Errors
    /// If it cannot be mapped.
    pub fn map(fd: OwnedFd) -> io::Result<SharedMap> {
        let file = File::from(fd.try_clone()?);
        let len = usize::try_from(file.metadata()?.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "segment too large"))?;
        let mut map = if len == 0 {
            None
        } else {
            // SAFETY: the segment is shared only by the processes of one measurement, which
            // change its contents and never its size; every access below goes through offsets
            // checked against the length.
            Some(unsafe { MmapMut::map_mut(&file)? })
        };
        let base = map
            .as_mut()
            .map_or(std::ptr::NonNull::dangling().as_ptr(), |m| m.as_mut_ptr());
        Ok(SharedMap {
            base,
            len,
            _map: map,
            fd: Some(fd),
            sysv: None,
        })
    }

    /// A new zeroed file of `len` bytes with no name, in directory `dir` (`O_TMPFILE`: on a
    /// tmpfs it is memory, on a disk a file written back), mapped shared; nothing of it is left
    /// however the processes end. Pass the descriptor on as a memfd's.
    ///
    /// # Errors
    /// If the file system cannot make such a file, or it cannot be sized or mapped.
    pub fn create_unnamed_file(dir: &Path, len: usize) -> io::Result<SharedMap> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_TMPFILE | libc::O_CLOEXEC)
            .open(dir)?;
        file.set_len(len as u64)?;
        Self::map(OwnedFd::from(file))
    }

    /// A new zeroed System V segment of `len` bytes (`IPC_PRIVATE`, mode 0600), attached; its
    /// id is for the peer ([`SharedMap::attach_sysv`]) and for [`remove_sysv`] once the peer has
    /// attached.
    ///
    /// # Errors
    /// If the system refuses the segment (its limits) or the attachment.
    pub fn create_sysv(len: usize) -> io::Result<(SharedMap, i32)> {
        // SAFETY: plain values.
        let id = unsafe { libc::shmget(libc::IPC_PRIVATE, len, libc::IPC_CREAT | 0o600) };
        if id == -1 {
            return Err(io::Error::last_os_error());
        }
        match Self::attach_sysv(id) {
            Ok(map) => Ok((map, id)),
            Err(e) => {
                remove_sysv(id);
                Err(e)
            }
        }
    }

    /// Attaches the System V segment `id` whole.
    ///
    /// # Errors
    /// If it does not exist or cannot be attached.
    pub fn attach_sysv(id: i32) -> io::Result<SharedMap> {
        // SAFETY: shmid_ds is plain data, filled by IPC_STAT.
        let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
        // SAFETY: a valid, writable shmid_ds.
        if unsafe { libc::shmctl(id, libc::IPC_STAT, &raw mut ds) } == -1 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a null address lets the kernel place it.
        let base = unsafe { libc::shmat(id, std::ptr::null(), 0) };
        if base as isize == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(SharedMap {
            base: base.cast(),
            len: ds.shm_segsz,
            _map: None,
            fd: None,
            sysv: Some(id),
        })
    }

    /// The descriptor, to pass to the peer.
    ///
    /// # Panics
    /// For a System V attachment, which has none (pass its id).
    #[must_use]
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd
            .as_ref()
            .expect("a System V attachment has no descriptor")
            .as_fd()
    }

    /// The mapping's length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The address of byte `offset`, for objects that live in the mapping and are used only
    /// through their own calls (a process-shared mutex, condition variable or semaphore).
    ///
    /// # Panics
    /// If `offset + len` is past the mapping.
    #[must_use]
    pub fn ptr_at(&self, offset: usize, len: usize) -> *mut u8 {
        assert!(offset + len <= self.len);
        // SAFETY: in bounds (checked); an address, not a reference: no aliasing is claimed.
        unsafe { self.base.add(offset) }
    }

    /// The 32-bit word at byte `offset`.
    ///
    /// # Panics
    /// If the word is not 4-aligned and inside the mapping.
    #[must_use]
    #[inline]
    pub fn u32_at(&self, offset: usize) -> &AtomicU32 {
        assert!(offset % 4 == 0 && offset + 4 <= self.len);
        // SAFETY: in bounds and aligned (checked, on a page-aligned mapping); the mapping lives
        // as long as `self`, and every access to a shared word, by either process, is atomic.
        unsafe { AtomicU32::from_ptr(self.base.add(offset).cast::<u32>()) }
    }

    /// The 64-bit word at byte `offset`.
    ///
    /// # Panics
    /// If the word is not 8-aligned and inside the mapping.
    #[must_use]
    #[inline]
    pub fn u64_at(&self, offset: usize) -> &AtomicU64 {
        assert!(offset % 8 == 0 && offset + 8 <= self.len);
        // SAFETY: as in `u32_at`.
        unsafe { AtomicU64::from_ptr(self.base.add(offset).cast::<u64>()) }
    }

    /// Copies `bytes` to `offset`. The caller owns that range (by its protocol) until it
    /// publishes it with a Release store.
    ///
    /// # Panics
    /// If the range is not inside the mapping.
    #[inline]
    pub fn write(&self, offset: usize, bytes: &[u8]) {
        assert!(offset + bytes.len() <= self.len);
        // SAFETY: in bounds (checked); the peer does not touch the range until the caller's
        // Release store publishes it, so the plain copy races with nothing.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.base.add(offset), bytes.len());
        }
    }

    /// The first word of the `len` bytes at `offset`, after reading a word (or, from a line
    /// that holds fewer than 8 bytes of them, a byte) from each other cache line they span, as a
    /// receiver that looks at the whole message. The caller owns the range (it saw the peer's
    /// Release store with Acquire).
    ///
    /// # Panics
    /// If the range is not 8-aligned, at least 8 bytes and inside the mapping.
    #[must_use]
    #[inline]
    pub fn touch(&self, offset: usize, len: usize) -> u64 {
        assert!(offset % 8 == 0 && len >= 8 && offset + len <= self.len);
        let base = self.base.cast_const();
        let end = offset + len;
        let mut sum = 0u64;
        // The mapping is page-aligned, so offsets that are multiples of 64 start lines.
        let mut line = (offset | 63) + 1;
        while line < end {
            // SAFETY: in bounds (`line` < `end`, and 8 more bytes where read as a word) and
            // aligned (a multiple of 64); the writer is done with the range (see above).
            sum ^= unsafe {
                if line + 8 <= end {
                    std::ptr::read(base.add(line).cast::<u64>())
                } else {
                    u64::from(std::ptr::read(base.add(line)))
                }
            };
            line += 64;
        }
        std::hint::black_box(sum);
        // SAFETY: as above, for the first word.
        u64::from_le(unsafe { std::ptr::read(base.add(offset).cast::<u64>()) })
    }

    /// Sets every byte of the mapping, with relaxed atomic stores (so that a peer reading the
    /// words meanwhile races with nothing).
    pub fn fill(&self, byte: u8) {
        let word = u64::from_le_bytes([byte; 8]);
        for offset in (0..self.len / 8 * 8).step_by(8) {
            self.u64_at(offset).store(word, Ordering::Relaxed);
        }
    }
}

/// Marks the System V segment `id` removed: it goes with its last detach.
pub fn remove_sysv(id: i32) {
    // SAFETY: IPC_RMID takes no buffer.
    unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
}

/// A unique name for a named segment, removed (`shm_unlink`) when dropped, also while unwinding
/// from a failed assertion.
#[derive(Debug)]
pub struct SegmentName(String);

/// What every name a [`SegmentName`] makes starts with.
pub const PREFIX: &str = "ringport-test-";

impl SegmentName {
    /// A name no other process or call uses: [`PREFIX`], `tag`, this pid, a counter and the time.
    #[must_use]
    pub fn new(tag: &str) -> SegmentName {
        use std::sync::atomic::AtomicU32;
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        SegmentName(format!(
            "{PREFIX}{tag}-{}-{}-{nanos:x}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ))
    }

    /// Takes charge of removing `name` (made elsewhere, for instance by a child process).
    #[must_use]
    pub fn adopt(name: String) -> SegmentName {
        SegmentName(name)
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether a segment of this name exists now.
    #[must_use]
    pub fn exists(&self) -> bool {
        Path::new("/dev/shm").join(&self.0).exists()
    }
}

impl Drop for SegmentName {
    fn drop(&mut self) {
        if let Ok(path) = shm_path(&self.0) {
            let _ = nix::sys::mman::shm_unlink(path.as_c_str());
        }
    }
}

/// The names in /dev/shm now, sorted.
///
/// # Panics
/// If /dev/shm cannot be read.
#[must_use]
pub fn shm_entries() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/dev/shm")
        .expect("reading /dev/shm")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}
