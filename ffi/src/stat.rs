//! A ring's counters from outside (`ringport stat`), in C.

use std::ffi::c_char;

use ringport::segments;

use crate::cptr::out;
use crate::spsc::location;
use crate::status::{guard, OrStatus, RpStatus};

/// What a ring did and holds, read from its segment without joining it.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct RpRingStats {
    /// 1: SPSC, 2: MPMC.
    pub kind: u32,
    /// The largest frame (SPSC) or the slot size (MPMC).
    pub max_frame: u32,
    /// The data area in bytes.
    pub capacity: u64,
    /// Frames (messages) committed since the ring was made.
    pub committed_frames: u64,
    /// Frames received and released.
    pub received_frames: u64,
    /// Frames in the ring, not yet received.
    pub unread_frames: u64,
    /// The committed frames' payload bytes; -1 where not counted (MPMC).
    pub committed_bytes: i64,
    /// The received frames' payload bytes; -1 where not counted.
    pub received_bytes: i64,
    /// The unread frames' payload bytes; -1 where not counted.
    pub unread_bytes: i64,
    /// Bytes of the data area that unread frames take.
    pub occupied: u64,
    /// Blocking calls of the producing side that waited.
    pub producer_waits: u64,
    /// Its sleeps on the futex.
    pub producer_sleeps: u64,
    /// Blocking calls of the consuming side that waited.
    pub consumer_waits: u64,
    /// Its sleeps on the futex.
    pub consumer_sleeps: u64,
}

/// Reads the counters of the ring at `location` (`NAME`, `sysv:KEY`, `file:PATH`).
///
/// # Safety
/// `location` a NUL-terminated string; `out_stats` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn rp_ring_stat(
    location: *const c_char,
    out_stats: *mut RpRingStats,
) -> RpStatus {
    guard(|| {
        // SAFETY: forwarded from the caller's contract.
        let (loc, out) = unsafe { (self::location(location)?, out(out_stats, "out_stats")?) };
        let s = segments::stat(loc).or_status()?;
        let bytes = |b: Option<u64>| b.map_or(-1, |b| i64::try_from(b).unwrap_or(i64::MAX));
        *out = RpRingStats {
            kind: match s.kind {
                segments::RingKind::Spsc => 1,
                segments::RingKind::Mpmc => 2,
                segments::RingKind::PubSub => 3,
            },
            max_frame: s.max_frame,
            capacity: s.capacity,
            committed_frames: s.committed.frames,
            received_frames: s.received.frames,
            unread_frames: s.unread.frames,
            committed_bytes: bytes(s.committed.bytes),
            received_bytes: bytes(s.received.bytes),
            unread_bytes: bytes(s.unread.bytes),
            occupied: s.occupied,
            producer_waits: s.producing.waits,
            producer_sleeps: s.producing.sleeps,
            consumer_waits: s.consuming.waits,
            consumer_sleeps: s.consuming.sleeps,
        };
        Ok(())
    })
}
