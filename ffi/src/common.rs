//! What the ring types share in C: how a call waits, the peer's status, wait counts.

use std::time::Duration;

use ringport::{PeerStatus, WaitStats};

use crate::status::{fail, RpStatus};

/// How a call waits: the `try_`, blocking and `_timeout` forms.
#[derive(Clone, Copy)]
pub enum Wait {
    Try,
    Block,
    For(Duration),
}

/// What an endpoint can tell about its peer.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RpPeerStatus {
    /// No peer has attached yet.
    Absent = 0,
    /// A peer is attached and alive (or cannot be checked: another pid namespace).
    Present = 1,
    /// The peer detached or died.
    Gone = 2,
}

pub fn peer_status(status: PeerStatus) -> RpPeerStatus {
    match status {
        PeerStatus::Absent => RpPeerStatus::Absent,
        PeerStatus::Present => RpPeerStatus::Present,
        PeerStatus::Gone => RpPeerStatus::Gone,
    }
}

/// How often an endpoint had to wait (counted on the slow path only).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct RpWaitStats {
    /// Blocking calls that found the ring not ready and waited.
    pub waits: u64,
    /// Sleeps on the futex.
    pub sleeps: u64,
    /// Ways to sleep that took a `membarrier`.
    pub barriers: u64,
    /// SPSC consumer: waits that began with a stream pause.
    pub stream_pauses: u64,
}

impl From<WaitStats> for RpWaitStats {
    fn from(s: WaitStats) -> RpWaitStats {
        RpWaitStats {
            waits: s.waits,
            sleeps: s.sleeps,
            barriers: s.barriers,
            stream_pauses: s.stream_pauses,
        }
    }
}

/// An endpoint behind a handle and the grant it may have outstanding (a reservation, or a
/// borrowed frame): C holds a grant across calls, which Rust's borrow of the endpoint cannot
/// say, so the endpoint lives in a box of its own that the grant borrows for as long as the
/// holder keeps it, and every other use of the endpoint waits until it is gone.
pub struct Holder<E, G> {
    /// From `Box::into_raw`, freed in `drop` after the grant.
    endpoint: *mut E,
    pub grant: Option<G>,
    /// The grant is a frame a copying receive found too large for its buffer: the next
    /// copying receive delivers it.
    pub held_for_copy: bool,
}

impl<E, G> Holder<E, G> {
    pub fn new(endpoint: E) -> Holder<E, G> {
        Holder {
            endpoint: Box::into_raw(Box::new(endpoint)),
            grant: None,
            held_for_copy: false,
        }
    }

    /// The endpoint, if no grant borrows it.
    #[inline(always)]
    pub fn endpoint(&mut self) -> Result<&mut E, RpStatus> {
        if self.grant.is_some() {
            return Err(outstanding());
        }
        // SAFETY: the box lives until `drop`; no grant borrows it (checked), and `&mut self`
        // makes this the only reference.
        Ok(unsafe { &mut *self.endpoint })
    }
}

impl<E: 'static, G> Holder<E, G> {
    /// Lends the endpoint to `make` for a grant that borrows it, and keeps the grant: every
    /// other use of the endpoint waits until it is gone (`endpoint` and `lend` refuse while it
    /// is kept, and `drop` drops it first, so the borrow ends before the box).
    ///
    /// # Errors
    /// `GrantOutstanding` if a grant is kept already; what `make` returns.
    #[inline(always)]
    pub fn lend(
        &mut self,
        make: impl FnOnce(&'static mut E) -> Result<G, RpStatus>,
    ) -> Result<&mut G, RpStatus> {
        if self.grant.is_some() {
            return Err(outstanding());
        }
        // SAFETY: the box lives until `drop`; no grant borrows it (checked), and `&mut self`
        // makes this the only reference. The 'static borrow lasts as long as the grant made
        // from it, which is kept below (or dropped with `make`'s error), by the rule above.
        let grant = make(unsafe { &mut *self.endpoint })?;
        // The slot is empty (checked above; `make` reaches the endpoint's box, never this
        // holder), so `take` finds nothing: forgetting it tells the compiler so, which would
        // otherwise drop a grant there (a release, and its wake) on every call.
        std::mem::forget(self.grant.take());
        Ok(self.grant.insert(grant))
    }
}

impl<E, G> Drop for Holder<E, G> {
    fn drop(&mut self) {
        // An outstanding reservation is aborted (a borrowed frame released) before the
        // endpoint it borrows goes.
        self.grant = None;
        // SAFETY: the box from `new`, freed once, with nothing borrowing it any more.
        drop(unsafe { Box::from_raw(self.endpoint) });
    }
}

#[cold]
pub fn outstanding() -> RpStatus {
    fail(
        RpStatus::GrantOutstanding,
        "a grant is outstanding on this handle: commit, abort or release it first",
    )
}

#[cold]
pub fn no_grant() -> RpStatus {
    fail(RpStatus::NoGrant, "no grant is outstanding on this handle")
}
