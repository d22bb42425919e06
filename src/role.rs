//! Roles: which process holds the producer and the consumer end, and whether it is still there.
//!
//! A role slot's `owner` word packs pid (bits 0..32), state (bits 32..40) and an epoch bumped by
//! every claim (bits 40..64), so that taking a role is one compare-and-swap. A role held by a
//! process that has died may be taken over; a live holder gets [`Error::RoleTaken`].

use crate::error::{Error, Result, Role};
use crate::layout::{role_index, RoleSlot, SegmentHeader};
use crate::os::process::{Liveness, ProcessIdentity, ProcessWatch};
use crate::sync::Ordering;

const NEVER: u64 = 0;
const CLAIMING: u64 = 1;
const ATTACHED: u64 = 2;
const DETACHED: u64 = 3;

fn pack(pid: u32, state: u64, epoch: u64) -> u64 {
    u64::from(pid) | state << 32 | (epoch & 0xFF_FFFF) << 40
}

fn unpack(word: u64) -> (u32, u64, u64) {
    (word as u32, (word >> 32) & 0xFF, word >> 40)
}

/// What an endpoint can tell about its peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerStatus {
    /// No peer has attached yet.
    Absent,
    /// A peer is attached and its process is alive (or cannot be checked: another pid namespace).
    Present,
    /// The peer detached, or its process died.
    Gone,
}

/// An endpoint's hold on its role and its view of the peer's.
#[derive(Debug)]
pub(crate) struct RoleHold {
    role: Role,
    owner: u64,
    watch: ProcessWatch,
}

impl RoleHold {
    /// Takes `role` in the segment for this process.
    pub(crate) fn claim(header: &SegmentHeader, role: Role) -> Result<RoleHold> {
        let me = ProcessIdentity::current();
        let slot = &header.roles[role_index(role)];
        let mut watch = ProcessWatch::default();
        // A handful of tries: each failure means another claimer moved the word meanwhile.
        for _ in 0..16 {
            // Acquire: pairs with the holder's Release below, so its identity words are visible.
            let current = slot.owner.load(Ordering::Acquire);
            let (pid, state, epoch) = unpack(current);
            if state == CLAIMING || state == ATTACHED {
                let holder = holder_identity(slot, pid, state);
                if pid == me.pid || watch.check(holder) != Liveness::Dead {
                    return Err(Error::RoleTaken { role, pid });
                }
            }
            let claiming = pack(me.pid, CLAIMING, epoch + 1);
            // AcqRel: acquire what the previous holder published (its final position, stored
            // before its release CAS); release nothing yet, the identity follows.
            if slot
                .owner
                .compare_exchange(current, claiming, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                // Relaxed: read only after the Release store of ATTACHED below publishes them.
                slot.start_time.store(me.start_time, Ordering::Relaxed);
                slot.pid_ns.store(me.pid_ns, Ordering::Relaxed);
                let owner = pack(me.pid, ATTACHED, epoch + 1);
                slot.owner.store(owner, Ordering::Release);
                return Ok(RoleHold {
                    role,
                    owner,
                    watch: ProcessWatch::default(),
                });
            }
        }
        let (pid, _, _) = unpack(slot.owner.load(Ordering::Relaxed));
        Err(Error::RoleTaken { role, pid })
    }

    /// Gives the role up (the peer then sees [`PeerStatus::Gone`]).
    pub(crate) fn release(&self, header: &SegmentHeader) {
        let (pid, _, epoch) = unpack(self.owner);
        // If the CAS fails, someone took the role over from us (they thought us dead): leave it.
        // Release: what we stored before leaving (our final position) is visible to the next
        // holder's Acquire, and to a peer that sees us detached.
        let _ = header.roles[role_index(self.role)].owner.compare_exchange(
            self.owner,
            pack(pid, DETACHED, epoch),
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
    }

    /// The role this hold is on.
    pub(crate) fn role(&self) -> Role {
        self.role
    }

    /// Whether the peer detached cleanly: one atomic load, for the fast paths.
    #[inline]
    pub(crate) fn peer_detached(&self, header: &SegmentHeader) -> bool {
        // Acquire: pairs with the peer's Release in `release`, so what it published before it
        // left is visible once we see it gone.
        let word = header.roles[role_index(self.role.peer())]
            .owner
            .load(Ordering::Acquire);
        unpack(word).1 == DETACHED
    }

    /// The error to end a wait with if the peer has gone, else None. `thorough` also checks
    /// that the peer's process lives (a system call); otherwise only a clean detach is seen.
    pub(crate) fn departure(&mut self, header: &SegmentHeader, thorough: bool) -> Option<Error> {
        let gone = if thorough {
            self.peer_status(header) == PeerStatus::Gone
        } else {
            self.peer_detached(header)
        };
        gone.then_some(Error::PeerGone(self.role.peer()))
    }

    /// The peer's status, checking that its process lives (a `poll` on a cached pidfd).
    pub(crate) fn peer_status(&mut self, header: &SegmentHeader) -> PeerStatus {
        let slot = &header.roles[role_index(self.role.peer())];
        // Acquire: as in `peer_detached`.
        let (pid, state, _) = unpack(slot.owner.load(Ordering::Acquire));
        match state {
            NEVER => PeerStatus::Absent,
            CLAIMING | ATTACHED => match self.watch.check(holder_identity(slot, pid, state)) {
                Liveness::Dead => PeerStatus::Gone,
                Liveness::Alive | Liveness::Unknown => PeerStatus::Present,
            },
            // DETACHED, or a state no ringport writes: a peer we cannot wait for.
            _ => PeerStatus::Gone,
        }
    }
}

/// The identity of the process holding `slot` (its owner word already read: `pid`, `state`).
/// While the holder is still CLAIMING its start time may not be written yet: 0 means unknown,
/// and liveness then rests on the pid alone.
fn holder_identity(slot: &RoleSlot, pid: u32, state: u64) -> ProcessIdentity {
    ProcessIdentity {
        pid,
        // Relaxed: these were published by the Release store of ATTACHED that the caller's
        // Acquire load of the owner word read; values from a hostile peer only mislead liveness.
        start_time: if state == ATTACHED {
            slot.start_time.load(Ordering::Relaxed)
        } else {
            0
        },
        pid_ns: slot.pid_ns.load(Ordering::Relaxed),
    }
}
