//! The segment header: the fixed, `#[repr(C)]` layout that two processes agree on.
//!
//! Everything in it is an atomic: a peer may write any word at any time, and a plain read racing
//! with a write would be undefined behaviour. Identity fields are written once by the creator and
//! published by the magic number (stored last, with Release); readers copy and validate them at
//! attach and never trust them again. Offsets and positions only, never pointers.
//!
//! ```text
//! offset  line          written by          read by
//!      0  identity      creator (once)      attachers
//!    128  roles         each attacher       the peer (liveness)
//!    256  positions[0]  producer            (re-attach, monitoring)
//!    384  positions[1]  consumer            producer, only when the ring looks full
//!    512  bells[0]      consumer (sleeps)   producer, after each commit
//!    640  bells[1]      producer (sleeps)   consumer, after each release
//!    768  data          ...
//! ```

use crate::error::{Error, Result};
use crate::sync::{AtomicU32, AtomicU64, Ordering};
use crate::wait::Doorbell;

/// "RINGPORT" in little-endian.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"RINGPORT");

/// Bumped on every incompatible change of this file or of the frame format.
pub(crate) const LAYOUT_VERSION: u32 = 3;

/// Ring kinds, stored in the header.
pub(crate) const KIND_SPSC: u32 = 1;
/// A multi-producer multi-consumer ring of fixed-size slots (see `mpmc`).
pub(crate) const KIND_MPMC: u32 = 2;

/// Header flag: notifiers use full fences (the creator could not register for `membarrier`).
pub(crate) const FLAG_SYMMETRIC_FENCES: u32 = 1;

/// Where the data area starts: right after the header, cache-line aligned.
pub(crate) const DATA_OFFSET: usize = 768;

/// One cache-line pair. Our own type rather than `crossbeam_utils::CachePadded` because this is a
/// cross-process ABI: `repr(C)` fixes the layout whatever compiler built each peer. 128 bytes
/// because the adjacent-line prefetcher on x86_64 pulls lines in pairs.
#[repr(C, align(128))]
pub(crate) struct Line<T>(pub T);

impl<T> std::ops::Deref for Line<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Written once by the creator.
#[repr(C)]
pub(crate) struct Identity {
    pub magic: AtomicU64,
    pub version: AtomicU32,
    pub kind: AtomicU32,
    pub flags: AtomicU32,
    pub max_frame: AtomicU32,
    pub capacity: AtomicU64,
    pub data_offset: AtomicU64,
    pub segment_len: AtomicU64,
    pub creator_pid: AtomicU32,
    pub reserved: AtomicU32,
    /// The inode of the creator's pid namespace (0: unknown). Pids recorded in the segment mean
    /// something only to processes in that namespace.
    pub creator_pid_ns: AtomicU64,
}

/// Who holds a role. `owner` packs the holder's pid (low 32 bits), a state (bits 32..40) and an
/// epoch bumped on every claim (bits 40..64), so that a claim is one compare-and-swap.
#[repr(C)]
pub(crate) struct RoleSlot {
    pub owner: AtomicU64,
    pub start_time: AtomicU64,
    pub pid_ns: AtomicU64,
    pub reserved: AtomicU64,
}

/// The whole header.
#[repr(C)]
pub(crate) struct SegmentHeader {
    pub identity: Line<Identity>,
    /// Indexed by [`role_index`].
    pub roles: Line<[RoleSlot; 2]>,
    /// `[producer position, consumer position]`, each on its own line.
    pub positions: [Line<AtomicU64>; 2],
    /// `[data bell (consumer sleeps), space bell (producer sleeps)]`.
    pub bells: [Line<Doorbell>; 2],
}

#[cfg(not(loom))]
mod checks {
    use super::*;
    use core::mem::{align_of, offset_of, size_of};
    use static_assertions::const_assert_eq;

    const_assert_eq!(size_of::<Identity>(), 64);
    const_assert_eq!(offset_of!(Identity, creator_pid_ns), 56);
    const_assert_eq!(offset_of!(Identity, version), 8);
    const_assert_eq!(offset_of!(Identity, kind), 12);
    const_assert_eq!(offset_of!(Identity, flags), 16);
    const_assert_eq!(offset_of!(Identity, max_frame), 20);
    const_assert_eq!(offset_of!(Identity, capacity), 24);
    const_assert_eq!(offset_of!(Identity, data_offset), 32);
    const_assert_eq!(offset_of!(Identity, segment_len), 40);
    const_assert_eq!(offset_of!(Identity, creator_pid), 48);
    const_assert_eq!(size_of::<RoleSlot>(), 32);
    const_assert_eq!(size_of::<Doorbell>(), 12);
    const_assert_eq!(offset_of!(SegmentHeader, identity), 0);
    const_assert_eq!(offset_of!(SegmentHeader, roles), 128);
    const_assert_eq!(offset_of!(SegmentHeader, positions), 256);
    const_assert_eq!(offset_of!(SegmentHeader, bells), 512);
    const_assert_eq!(size_of::<SegmentHeader>(), DATA_OFFSET);
    const_assert_eq!(align_of::<SegmentHeader>(), 128);
}

/// The index of a role's slot, position and the bell it sleeps on.
pub(crate) const fn role_index(role: crate::Role) -> usize {
    match role {
        crate::Role::Producer => 0,
        crate::Role::Consumer => 1,
    }
}

/// The bell (index into `bells`) that consumers sleep on: the producing side rings it after a
/// commit.
pub(crate) const DATA_BELL: usize = 0;
/// The bell that producers sleep on: the consuming side rings it after a release.
pub(crate) const SPACE_BELL: usize = 1;

/// The ring parameters fixed at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RingParams {
    pub kind: u32,
    pub capacity: u64,
    pub max_frame: u32,
    pub flags: u32,
}

impl RingParams {
    pub(crate) fn segment_len(&self) -> u64 {
        DATA_OFFSET as u64 + self.capacity
    }
}

impl SegmentHeader {
    /// A zeroed header, as a fresh segment holds.
    pub(crate) fn new() -> SegmentHeader {
        let slot = || RoleSlot {
            owner: AtomicU64::new(0),
            start_time: AtomicU64::new(0),
            pid_ns: AtomicU64::new(0),
            reserved: AtomicU64::new(0),
        };
        SegmentHeader {
            identity: Line(Identity {
                magic: AtomicU64::new(0),
                version: AtomicU32::new(0),
                kind: AtomicU32::new(0),
                flags: AtomicU32::new(0),
                max_frame: AtomicU32::new(0),
                capacity: AtomicU64::new(0),
                data_offset: AtomicU64::new(0),
                segment_len: AtomicU64::new(0),
                creator_pid: AtomicU32::new(0),
                reserved: AtomicU32::new(0),
                creator_pid_ns: AtomicU64::new(0),
            }),
            roles: Line([slot(), slot()]),
            positions: [Line(AtomicU64::new(0)), Line(AtomicU64::new(0))],
            bells: [Line(Doorbell::new()), Line(Doorbell::new())],
        }
    }

    /// Fills in a zeroed header and publishes it: the magic goes last, with Release, so that an
    /// attacher that sees the magic sees every other field.
    pub(crate) fn initialize(&self, params: &RingParams, creator_pid_ns: u64) {
        let id = &self.identity;
        id.version.store(LAYOUT_VERSION, Ordering::Relaxed);
        id.kind.store(params.kind, Ordering::Relaxed);
        id.flags.store(params.flags, Ordering::Relaxed);
        id.max_frame.store(params.max_frame, Ordering::Relaxed);
        id.capacity.store(params.capacity, Ordering::Relaxed);
        id.data_offset.store(DATA_OFFSET as u64, Ordering::Relaxed);
        id.segment_len
            .store(params.segment_len(), Ordering::Relaxed);
        id.creator_pid.store(std::process::id(), Ordering::Relaxed);
        id.creator_pid_ns.store(creator_pid_ns, Ordering::Relaxed);
        id.magic.store(MAGIC, Ordering::Release);
    }

    /// Reads and checks the identity of a segment of `segment_len` bytes; `kind` is the kind
    /// the caller wants. Returns the parameters, which the caller keeps: they are never re-read.
    pub(crate) fn validate(&self, kind: u32, segment_len: u64) -> Result<RingParams> {
        let id = &self.identity;
        let magic = id.magic.load(Ordering::Acquire);
        if magic != MAGIC {
            return Err(Error::BadMagic { found: magic });
        }
        let version = id.version.load(Ordering::Relaxed);
        if version != LAYOUT_VERSION {
            return Err(Error::VersionMismatch {
                found: version,
                expected: LAYOUT_VERSION,
            });
        }
        let found = id.kind.load(Ordering::Relaxed);
        if found != kind {
            return Err(Error::WrongKind {
                found,
                expected: kind,
            });
        }
        let params = RingParams {
            kind,
            capacity: id.capacity.load(Ordering::Relaxed),
            max_frame: id.max_frame.load(Ordering::Relaxed),
            flags: id.flags.load(Ordering::Relaxed),
        };
        let data_offset = id.data_offset.load(Ordering::Relaxed);
        if data_offset != DATA_OFFSET as u64 {
            return Err(Error::corrupted("data offset", data_offset, 16));
        }
        let geometry = match kind {
            KIND_MPMC => check_mpmc_geometry(params.capacity, params.max_frame),
            _ => check_geometry(params.capacity, params.max_frame),
        };
        geometry
            .map_err(|what| Error::corrupted(what, params.capacity, u64::from(params.max_frame)))?;
        let claimed = id.segment_len.load(Ordering::Relaxed);
        if claimed != params.segment_len() {
            return Err(Error::corrupted("segment length", claimed, 40));
        }
        if segment_len < claimed {
            return Err(Error::TooSmall {
                len: segment_len,
                needed: claimed,
            });
        }
        Ok(params)
    }
}

/// The smallest data area.
pub(crate) const MIN_CAPACITY: u64 = 64;
/// The largest data area (1 TiB): positions are u64 byte counts and never wrap in practice.
pub(crate) const MAX_CAPACITY: u64 = 1 << 40;

/// Positions are byte counts since the ring was made: at 10 GB/s, 2^62 bytes take 14 years.
/// A position beyond this, read from shared memory, is corrupt (and its arithmetic could
/// overflow).
pub(crate) const MAX_POSITION: u64 = 1 << 62;

/// The largest frame payload that `check_geometry` allows for `capacity`.
pub(crate) fn largest_frame(capacity: u64) -> u64 {
    // frame_size(len) + 8 <= capacity / 2, with frame_size(len) = 8 + len rounded up to 8.
    (capacity / 2).saturating_sub(16)
}

/// Checks capacity and maximum frame length; returns what is wrong.
pub(crate) fn check_geometry(capacity: u64, max_frame: u32) -> Result<(), &'static str> {
    if !capacity.is_power_of_two() || !(MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity) {
        return Err("capacity must be a power of two from 64 bytes to 1 TiB");
    }
    // With a frame (plus the zeroed slot after it) no larger than half the ring, an empty ring
    // takes any frame even when it must first pad to the end of the lap: wrapping happens only
    // at an offset past capacity - size, which leaves at least size + 8 bytes at the start.
    // So a producer never waits on a consumer that has nothing to read.
    if max_frame == 0 || crate::frame::frame_size(max_frame as usize) as u64 + 8 > capacity / 2 {
        return Err(
            "max frame must be at least 1, and its frame plus 8 bytes at most half the capacity",
        );
    }
    Ok(())
}

/// The most slots an MPMC ring has: slot stamps keep 30 bits of lap, and with at least 2^30 laps
/// between two positions that share a slot, a stale stamp can never pass for a current one.
pub(crate) const MAX_SLOTS: u64 = 1 << 30;

/// Bytes an MPMC slot of `slot_size` payload bytes occupies: an 8-byte stamp, then the payload
/// padded to 8.
pub(crate) const fn slot_stride(slot_size: u32) -> u64 {
    8 + ((slot_size as u64 + 7) & !7)
}

/// Checks an MPMC data area of `capacity` bytes holding slots of `slot_size` payload bytes: a
/// power-of-two number of slots from 2 to [`MAX_SLOTS`], in at most [`MAX_CAPACITY`] bytes.
pub(crate) fn check_mpmc_geometry(capacity: u64, slot_size: u32) -> Result<(), &'static str> {
    if slot_size == 0 || slot_size > u32::MAX - 8 {
        return Err("slot size must be from 1 byte to 4 GiB less 8");
    }
    let stride = slot_stride(slot_size);
    let slots = capacity / stride;
    if capacity % stride != 0
        || !slots.is_power_of_two()
        || !(2..=MAX_SLOTS).contains(&slots)
        || capacity > MAX_CAPACITY
    {
        return Err("slot count must be a power of two from 2 to 2^30, in at most 1 TiB");
    }
    Ok(())
}
