//! Roles: which process holds the producer and the consumer end, and whether it is still there.
//!
//! A role slot's `owner` word packs pid (bits 0..32), state (bits 32..40) and an epoch bumped by
//! every claim (bits 40..64), so that taking a role is one compare-and-swap. A role held by a
//! process that has died may be taken over; a live holder gets [`Error::RoleTaken`].

use crate::error::{Error, Result, Role};
use crate::layout::{role_index, SegmentHeader};
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
            let current = slot.owner.load(Ordering::Acquire);
            let (pid, state, epoch) = unpack(current);
            if state == CLAIMING || state == ATTACHED {
                let holder = ProcessIdentity {
                    pid,
                    start_time: if state == ATTACHED {
                        slot.start_time.load(Ordering::Relaxed)
                    } else {
                        0
                    },
                    pid_ns: slot.pid_ns.load(Ordering::Relaxed),
                };
                if pid == me.pid || watch.check(holder) != Liveness::Dead {
                    return Err(Error::RoleTaken { role, pid });
                }
            }
            let claiming = pack(me.pid, CLAIMING, epoch + 1);
            if slot
                .owner
                .compare_exchange(current, claiming, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
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
        let _ = header.roles[role_index(self.role)].owner.compare_exchange(
            self.owner,
            pack(pid, DETACHED, epoch),
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
    }

    /// Whether the peer detached cleanly: one atomic load, for the fast paths.
    #[inline]
    pub(crate) fn peer_detached(&self, header: &SegmentHeader) -> bool {
        let word = header.roles[role_index(self.role.peer())]
            .owner
            .load(Ordering::Acquire);
        unpack(word).1 == DETACHED
    }

    /// The peer's status, checking that its process lives (a `poll` on a cached pidfd).
    pub(crate) fn peer_status(&mut self, header: &SegmentHeader) -> PeerStatus {
        let slot = &header.roles[role_index(self.role.peer())];
        let (pid, state, _) = unpack(slot.owner.load(Ordering::Acquire));
        match state {
            NEVER => PeerStatus::Absent,
            CLAIMING | ATTACHED => {
                let holder = ProcessIdentity {
                    pid,
                    start_time: if state == ATTACHED {
                        slot.start_time.load(Ordering::Relaxed)
                    } else {
                        0
                    },
                    pid_ns: slot.pid_ns.load(Ordering::Relaxed),
                };
                match self.watch.check(holder) {
                    Liveness::Dead => PeerStatus::Gone,
                    Liveness::Alive | Liveness::Unknown => PeerStatus::Present,
                }
            }
            // DETACHED, or a state no ringport writes: a peer we cannot wait for.
            _ => PeerStatus::Gone,
        }
    }
}
