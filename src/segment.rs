//! Where a ring's memory comes from: the heap, a named segment (POSIX, System V, a mapped
//! file), a sealed memfd, a descriptor received from a peer, or (for the fuzz bodies) a
//! segment image. A new segment's header is initialized and published here; an existing one's
//! is validated here, once, before any endpoint uses it. The rings above take a [`Segment`] and cannot tell where it came from.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::layout::RingParams;
use crate::options::Access;
use crate::os::shm::{Creation, SharedMemory};
use crate::os::Location;
use crate::os::{Kernel, Memory, HOST};

/// A ring kind's geometry rule: what is wrong with a capacity and maximum frame, if anything.
pub(crate) type Geometry = fn(u64, u32) -> Result<(), &'static str>;

/// A ring's memory and the parameters fixed at its creation, ready for endpoints to attach.
pub(crate) struct Segment {
    pub memory: Arc<Memory>,
    pub params: RingParams,
}

impl Segment {
    /// A fresh ring on the heap (both ends in this process).
    pub(crate) fn heap(params: &RingParams) -> Segment {
        let capacity = usize::try_from(params.capacity).expect("capacity was validated");
        let memory = Memory::heap_with_slots(capacity, params.subscriber_slots as usize);
        Segment::initialized(memory, params)
    }

    /// Creates a shared segment at `location` (exclusive, mode 0600 or as `access` says) and
    /// initializes its header; removed when the mapping goes if `remove`.
    pub(crate) fn create_at(
        location: &Location,
        params: &RingParams,
        remove: bool,
        access: &Access,
        huge_pages: bool,
    ) -> Result<Segment> {
        let creation = Creation {
            len: mapping_len(params)?,
            remove_on_drop: remove,
            group: access.group,
            huge_pages,
        };
        let shm = SharedMemory::create(location, &creation)?;
        Ok(Segment::initialized(
            Memory::mapped(
                shm,
                params.capacity as usize,
                params.subscriber_slots as usize,
            ),
            params,
        ))
    }

    /// Creates an anonymous segment (memfd) sealed against any change of size, on huge pages
    /// if asked, and initializes its header; the descriptor is for passing to the peer.
    pub(crate) fn create_memfd(
        params: &RingParams,
        huge_pages: bool,
    ) -> Result<(Segment, OwnedFd)> {
        let (shm, fd) = SharedMemory::create_memfd(mapping_len(params)?, huge_pages)?;
        let memory = Memory::mapped(
            shm,
            params.capacity as usize,
            params.subscriber_slots as usize,
        );
        Ok((Segment::initialized(memory, params), fd))
    }

    /// Opens the shared segment at `location` holding a ring of `kind`, and validates its
    /// header.
    pub(crate) fn open_at(
        location: &Location,
        kind: u32,
        geometry: Geometry,
        access: &Access,
    ) -> Result<Segment> {
        Segment::validated(SharedMemory::open(location, access)?, kind, geometry)
    }

    /// Maps a segment received as a descriptor (a sealed memfd) and validates its header.
    pub(crate) fn open_fd(fd: BorrowedFd<'_>, kind: u32, geometry: Geometry) -> Result<Segment> {
        Segment::validated(SharedMemory::from_fd(fd)?, kind, geometry)
    }

    /// A heap copy of a segment image (`bytes` as a mapping of that length would hold them),
    /// validated as a segment of `kind` is at attach.
    #[cfg(feature = "testing")]
    pub(crate) fn from_image(bytes: &[u8], kind: u32, geometry: Geometry) -> Result<Segment> {
        let header = Memory::image_header(bytes)?;
        let params = header.validate(kind, bytes.len() as u64, geometry)?;
        let memory = Memory::from_image(
            &header,
            bytes,
            params.capacity as usize,
            params.subscriber_slots as usize,
        );
        Ok(Segment {
            memory: Arc::new(memory),
            params,
        })
    }

    /// Faults the segment's pages in now (see `Memory::populate`).
    ///
    /// # Errors
    /// [`Error::Os`] if the system cannot back them.
    pub(crate) fn populate(&self) -> Result<()> {
        self.memory.populate()
    }

    /// What the options ask before an endpoint attaches: the pages faulted in (`prefault`),
    /// locked in memory (`lock`).
    ///
    /// # Errors
    /// As [`populate`](Self::populate) and [`lock`](Self::lock).
    pub(crate) fn prepare(&self, prefault: bool, lock: bool) -> Result<()> {
        if prefault {
            self.populate()?;
        }
        if lock {
            self.lock()?;
        }
        Ok(())
    }

    /// Locks the segment's pages in memory (see `Memory::lock`).
    ///
    /// # Errors
    /// [`Error::MemoryLock`]; [`Error::Os`].
    pub(crate) fn lock(&self) -> Result<()> {
        self.memory.lock()
    }

    fn initialized(memory: Memory, params: &RingParams) -> Segment {
        let creator = HOST.current_process();
        let created_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| {
                u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
            });
        memory
            .header()
            .initialize(params, creator.pid, creator.pid_ns, created_ns);
        Segment {
            memory: Arc::new(memory),
            params: *params,
        }
    }

    fn validated(shm: SharedMemory, kind: u32, geometry: Geometry) -> Result<Segment> {
        let params = shm.header().validate(kind, shm.len() as u64, geometry)?;
        Ok(Segment {
            memory: Arc::new(Memory::mapped(
                shm,
                params.capacity as usize,
                params.subscriber_slots as usize,
            )),
            params,
        })
    }
}

/// The bytes a segment for `params` needs, as a mapping length.
fn mapping_len(params: &RingParams) -> Result<usize> {
    usize::try_from(params.segment_len()).map_err(|_| Error::InvalidConfig("segment too large"))
}
