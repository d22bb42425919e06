//! How to make or join an MPMC ring.

use std::time::Duration;

use super::handle::Handle;
use super::slot::{check_geometry, slot_stride};
use super::Ring;
use crate::error::{Error, Result};
use crate::layout::{RingParams, KIND_MPMC};
use crate::options::Access;
use crate::os::Location;
use crate::os::HOST;
use crate::segment::Segment;
use crate::wait::{Fences, WaitPolicy};

/// How to make or join an MPMC ring, and how its handles wait.
///
/// The geometry (slot count and size) applies when creating; when opening, the segment's own
/// geometry is used. Waiting settings apply to the handles made from the ring.
#[derive(Debug, Clone)]
pub struct MpmcOptions {
    slots: u64,
    slot_size: u64,
    spin: Duration,
    liveness_interval: Duration,
    keep_segment: bool,
    symmetric_fences: bool,
    access: Access,
    prefault: bool,
    huge_pages: bool,
    lock_in_memory: bool,
}

impl Default for MpmcOptions {
    fn default() -> Self {
        MpmcOptions {
            slots: 1024,
            slot_size: 256,
            spin: Duration::from_micros(20),
            liveness_interval: Duration::from_millis(20),
            keep_segment: false,
            symmetric_fences: false,
            access: Access::default(),
            prefault: true,
            huge_pages: false,
            lock_in_memory: false,
        }
    }
}

impl MpmcOptions {
    /// The defaults: 1024 slots of 256 bytes, spin 20 us before sleeping, check a stuck slot's
    /// owner after 20 ms, unlink the segment when the last handle of the creator drops, fault the
    /// pages in when mapping.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of slots: a power of two from 2 to 2^30.
    #[must_use]
    pub fn slots(mut self, slots: usize) -> Self {
        self.slots = slots as u64;
        self
    }

    /// Largest message in bytes (each slot holds one).
    #[must_use]
    pub fn slot_size(mut self, bytes: usize) -> Self {
        self.slot_size = bytes as u64;
        self
    }

    /// Where the kernel cannot tell a handle that the owner of a slot in its way died (the
    /// owner is in another pid namespace, or pidfds are unavailable): how long the slot may stay
    /// claimed before its owner's process is checked, and the longest a sleeper sleeps between
    /// checks. Elsewhere the owner's death wakes the handle at once.
    #[must_use]
    pub fn liveness_interval(mut self, interval: Duration) -> Self {
        self.liveness_interval = interval.max(Duration::from_micros(100));
        self
    }

    /// Keep the segment's name when the creator's ring and handles drop (default: unlink it).
    #[must_use]
    pub fn keep_segment(mut self, keep: bool) -> Self {
        self.keep_segment = keep;
        self
    }

    crate::options::shared_ring_setters!();

    fn params(&self) -> Result<RingParams> {
        let slot_size = u32::try_from(self.slot_size)
            .map_err(|_| Error::InvalidConfig("slot size above 4 GiB"))?;
        let capacity = self
            .slots
            .checked_mul(slot_stride(slot_size))
            .ok_or(Error::InvalidConfig("ring too large"))?;
        check_geometry(capacity, slot_size).map_err(Error::InvalidConfig)?;
        Ok(RingParams {
            kind: KIND_MPMC,
            capacity,
            max_frame: slot_size,
            flags: Fences::creation_flags(self.symmetric_fences, HOST),
            subscriber_slots: 0,
            message: Default::default(),
        })
    }

    fn ring(&self, segment: Segment) -> Result<Ring> {
        segment.prepare(self.prefault, self.lock_in_memory)?;
        let policy = WaitPolicy {
            spin: self.spin,
            liveness_interval: self.liveness_interval,
        };
        Ok(Ring {
            template: Handle::new(&segment, policy)?,
        })
    }

    /// A ring on the heap, for threads of this process.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if the geometry is invalid.
    pub fn in_process(&self) -> Result<Ring> {
        self.ring(Segment::heap(&self.params()?))
    }

    /// Creates the ring's segment at `location`: a POSIX name (a `&str`), a System V key or
    /// a file (see [`Location`]).
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::InvalidConfig`], [`Error::AlreadyExists`],
    /// [`Error::KeyInUse`], [`Error::NoSpace`], [`Error::SystemLimit`],
    /// [`Error::NoHugePages`], [`Error::MemoryLock`], [`Error::Os`].
    pub fn create(&self, location: impl Into<Location>) -> Result<Ring> {
        self.ring(Segment::create_at(
            &location.into(),
            &self.params()?,
            !self.keep_segment,
            &self.access,
            self.huge_pages,
        )?)
    }

    /// Creates an anonymous segment (a memfd sealed against any change of size) for the ring;
    /// the descriptor is for the other processes ([`open_fd`](Self::open_fd)).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`], [`Error::Os`].
    pub fn create_memfd(&self) -> Result<(Ring, std::os::fd::OwnedFd)> {
        let (segment, fd) = Segment::create_memfd(&self.params()?, self.huge_pages)?;
        Ok((self.ring(segment)?, fd))
    }

    /// Maps a ring's segment received as a descriptor.
    ///
    /// # Errors
    /// [`Error::Unsealed`] if it is not a memfd sealed against shrinking; otherwise as
    /// [`open`](Self::open).
    pub fn open_fd(&self, fd: impl std::os::fd::AsFd) -> Result<Ring> {
        self.ring(Segment::open_fd(fd.as_fd(), KIND_MPMC, check_geometry)?)
    }

    /// For the fuzz bodies: a ring over a copy of a segment image, attached as to a mapping.
    #[cfg(feature = "testing")]
    pub(crate) fn attach_image(&self, bytes: &[u8]) -> Result<Ring> {
        self.ring(Segment::from_image(bytes, KIND_MPMC, check_geometry)?)
    }

    /// Opens the ring's segment at `location`.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::TooSmall`], [`Error::BadMagic`], [`Error::VersionMismatch`],
    /// [`Error::WrongKind`], [`Error::Corrupted`], [`Error::NotOwner`],
    /// [`Error::SharedWritable`], [`Error::Unsupported`].
    pub fn open(&self, location: impl Into<Location>) -> Result<Ring> {
        self.ring(Segment::open_at(
            &location.into(),
            KIND_MPMC,
            check_geometry,
            &self.access,
        )?)
    }
}
