//! Roles: which process holds the producer and the consumer end, and whether it is still there.
//!
//! A role slot's `owner` word packs pid (bits 0..32), state (bits 32..40) and an epoch bumped by
//! every claim (bits 40..64), so that taking a role is one compare-and-swap. A role held by a
//! process that has died may be taken over; a live holder gets [`Error::RoleTaken`].

use crate::error::{Error, Result, Role};
use crate::layout::{RoleSlot, SegmentHeader};
use crate::os::{Kernel, Liveness, Notice, ProcessIdentity, Watched};
use crate::sync::Ordering;
use crate::wait::{Look, Peer};

pub(crate) use crate::layout::role_index;

const NEVER: u64 = 0;
const CLAIMING: u64 = 1;
const ATTACHED: u64 = 2;
const DETACHED: u64 = 3;
/// Marked departed by a death notice (or by a claim that found the holder dead), not by the
/// holder itself.
const DIED: u64 = 4;
/// A subscriber slot whose holder the publisher dropped for stalling: still the holder's (it may
/// be reading a frame) until it lets go or dies, but no longer waited for.
const DROPPED: u64 = 5;

/// Who held a role before this endpoint claimed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Predecessor {
    /// Nobody: the role was never held.
    None,
    /// A holder that let go of it (dropped its endpoint).
    Detached,
    /// A holder that died holding it: process `pid`.
    Died { pid: u32 },
}

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
pub(crate) struct RoleHold<K: Kernel> {
    role: Role,
    owner: u64,
    /// Who held the role before us.
    predecessor: Predecessor,
    /// What checks of the peer's process keep between them.
    check: K::Check,
    /// The death notice set up for the peer's holder, if any.
    watch: PeerWatch<K::Watch>,
    kernel: K,
}

/// What an endpoint has set up to hear of its peer's death, and for which holder (the peer's
/// owner word, which a new holder, or a new claim, changes).
#[derive(Debug)]
enum PeerWatch<W> {
    Nothing,
    /// A notice will mark the holder departed and ring our bell when it dies.
    Watching {
        word: u64,
        _watch: W,
    },
    /// The kernel cannot watch this holder: its process is looked at now and then instead.
    Unwatchable {
        word: u64,
    },
}

/// Marks `role` departed whoever holds it, or that no one will come if no one has: for a role
/// whose only possible holder is known to be gone (a channel's peer that hung up).
pub(crate) fn mark_role_departed(header: &SegmentHeader, role: Role) {
    let slot = &header.roles[role_index(role)];
    // Relaxed: the CAS below decides; a failure means the word moved, and we look again.
    let mut word = slot.owner.load(Ordering::Relaxed);
    while !matches!(unpack(word).1, DETACHED | DIED) && !mark_departed(header, role, word) {
        word = slot.owner.load(Ordering::Relaxed);
    }
}

/// Marks the holder of `role` departed on its behalf (as died), if it still holds the role
/// under `word`: what a death notice does (a dead process cannot detach itself). Returns whether
/// it did. A new holder that has claimed the role since keeps it: the word is compared first.
pub(crate) fn mark_departed(header: &SegmentHeader, role: Role, word: u64) -> bool {
    many::mark_died(&header.roles[role_index(role)], word)
}

impl<K: Kernel> RoleHold<K> {
    /// Takes `role` in the segment for this process.
    pub(crate) fn claim(header: &SegmentHeader, role: Role, kernel: K) -> Result<RoleHold<K>> {
        let me = kernel.current_process();
        let slot = &header.roles[role_index(role)];
        let mut check = K::Check::default();
        // A handful of tries: each failure means another claimer moved the word meanwhile.
        for _ in 0..16 {
            // Acquire: pairs with the holder's Release below, so its identity words are visible.
            let current = slot.owner.load(Ordering::Acquire);
            let (pid, state, _) = unpack(current);
            let predecessor = match state {
                NEVER => Predecessor::None,
                CLAIMING | ATTACHED => {
                    let holder = holder_identity(slot, pid, state);
                    if pid == me.pid || kernel.liveness(&mut check, holder) != Liveness::Dead {
                        return Err(Error::RoleTaken { role, pid });
                    }
                    Predecessor::Died { pid }
                }
                DIED => Predecessor::Died { pid },
                // DETACHED, or garbage: nobody holds the role.
                _ => Predecessor::Detached,
            };
            if let Some(owner) = take(slot, current, &me) {
                return Ok(RoleHold {
                    role,
                    owner,
                    predecessor,
                    check: K::Check::default(),
                    watch: PeerWatch::Nothing,
                    kernel,
                });
            }
        }
        let (pid, _, _) = unpack(slot.owner.load(Ordering::Relaxed));
        Err(Error::RoleTaken { role, pid })
    }

    /// A hold on no role, for an endpoint that only watches the holder of `watched` (a
    /// subscriber, watching the publisher's producer role): never claimed, never released.
    pub(crate) fn observer(watched: Role, kernel: K) -> RoleHold<K> {
        RoleHold {
            role: watched.peer(),
            owner: 0,
            predecessor: Predecessor::None,
            check: K::Check::default(),
            watch: PeerWatch::Nothing,
            kernel,
        }
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

    /// This holder's identity, as the segment records it.
    #[cfg(feature = "testing")]
    pub(crate) fn identity(&self, header: &SegmentHeader) -> ProcessIdentity {
        let (pid, state, _) = unpack(self.owner);
        holder_identity(&header.roles[role_index(self.role)], pid, state)
    }

    /// The role this hold is on.
    pub(crate) fn role(&self) -> Role {
        self.role
    }

    /// Who held the role before this hold claimed it.
    pub(crate) fn predecessor(&self) -> Predecessor {
        self.predecessor
    }

    /// Whether a peer holds its role now, from its role word alone (no liveness check): for a
    /// wait for a peer (the first, or a replacement) to attach.
    pub(crate) fn peer_attached(&self, header: &SegmentHeader) -> bool {
        // Acquire: pairs with the peer's Release in `claim`, so what it published as it
        // attached is visible once we see it there.
        let word = header.roles[role_index(self.role.peer())]
            .owner
            .load(Ordering::Acquire);
        matches!(unpack(word).1, CLAIMING | ATTACHED)
    }

    /// Whether the peer is the holder a cheap look already settled (watched, or found
    /// unwatchable), from its role word alone: the first look of an empty (or full) `try_`
    /// path, one load and a compare where `peer` would build its answer. A holder that dies or
    /// leaves changes the word (its notice or its release marks it), so a match means what
    /// `peer(Look::Cheap)` would say, here; anything else takes that full look.
    #[inline(always)]
    pub(crate) fn peer_is_settled(&self, header: &SegmentHeader) -> bool {
        // Relaxed: a match only answers "here" (the caller reports empty or full), so nothing
        // the peer published is read on its strength; `peer`, which can answer "gone", loads
        // with Acquire.
        let word = header.roles[role_index(self.role.peer())]
            .owner
            .load(Ordering::Relaxed);
        match self.watch {
            PeerWatch::Watching { word: w, .. } | PeerWatch::Unwatchable { word: w } => w == word,
            PeerWatch::Nothing => false,
        }
    }

    /// The peer, as a wait (or an empty or full `try_` path) sees it: gone if it detached or a
    /// death notice marked it so, else here. Unless `look` is a glance (the role's word alone),
    /// for a holder with no notice yet, sets one up (a few system calls, once per holder):
    /// `notice(word)` makes what it runs, which must mark the holder departed (`mark_departed`
    /// with `word`) and ring our bell. A holder the kernel cannot watch (another pid namespace,
    /// no pidfds) is looked at by a thorough look, as before notices.
    pub(crate) fn peer(
        &mut self,
        header: &SegmentHeader,
        look: Look,
        notice: impl FnOnce(u64) -> Notice,
    ) -> Peer {
        let slot = &header.roles[role_index(self.role.peer())];
        // Acquire: pairs with the peer's Release in `claim` and `release` (or a death notice's
        // `mark_departed`), so what it published before it left is visible once we see it gone.
        let word = slot.owner.load(Ordering::Acquire);
        let (pid, state, _) = unpack(word);
        let gone = Peer::Gone(Error::PeerGone(self.role.peer()));
        match state {
            // An attaching peer rings our bell: nothing to watch until then.
            NEVER => return Peer::Here { watched: true },
            // Briefly, while its start time is being published.
            CLAIMING => return Peer::Here { watched: false },
            ATTACHED => {}
            _ => return gone,
        }
        if look == Look::Glance {
            let watched = matches!(self.watch, PeerWatch::Watching { word: w, .. } if w == word);
            return Peer::Here { watched };
        }
        match self.watch {
            PeerWatch::Watching { word: watched, .. } if watched == word => {
                return Peer::Here { watched: true }
            }
            PeerWatch::Unwatchable { word: watched } if watched == word => {}
            _ => {
                let holder = holder_identity(slot, pid, state);
                match self.kernel.watch_process(holder, notice(word)) {
                    Watched::Watching(watch) => {
                        self.watch = PeerWatch::Watching {
                            word,
                            _watch: watch,
                        };
                        return Peer::Here { watched: true };
                    }
                    Watched::Already => {
                        mark_departed(header, self.role.peer(), word);
                        return gone;
                    }
                    Watched::Unwatchable => self.watch = PeerWatch::Unwatchable { word },
                }
            }
        }
        if look == Look::Thorough
            && self
                .kernel
                .liveness(&mut self.check, holder_identity(slot, pid, state))
                == Liveness::Dead
        {
            return gone;
        }
        Peer::Here { watched: false }
    }

    /// The peer's status, checking that its process lives (a `poll` on a cached pidfd).
    pub(crate) fn peer_status(&mut self, header: &SegmentHeader) -> PeerStatus {
        let slot = &header.roles[role_index(self.role.peer())];
        // Acquire: pairs with the peer's Release in `claim` and `release` (or a death notice's
        // `mark_departed`), so what it published before it left is visible once we see it gone.
        let (pid, state, _) = unpack(slot.owner.load(Ordering::Acquire));
        match state {
            NEVER => PeerStatus::Absent,
            CLAIMING | ATTACHED => match self
                .kernel
                .liveness(&mut self.check, holder_identity(slot, pid, state))
            {
                Liveness::Dead => PeerStatus::Gone,
                Liveness::Alive | Liveness::Unknown => PeerStatus::Present,
            },
            // DETACHED, DIED, or a state no ringport writes: a peer we cannot wait for.
            _ => PeerStatus::Gone,
        }
    }
}

/// Takes `slot`, whose owner word was `current`, for `me`: one compare-and-swap to CLAIMING
/// with the next epoch, then the identity, then ATTACHED. None if the word moved meanwhile.
fn take(slot: &RoleSlot, current: u64, me: &ProcessIdentity) -> Option<u64> {
    let epoch = unpack(current).2;
    let claiming = pack(me.pid, CLAIMING, epoch + 1);
    // AcqRel: acquire what the previous holder published (its final position, stored before
    // its release CAS); release nothing yet, the identity follows.
    slot.owner
        .compare_exchange(current, claiming, Ordering::AcqRel, Ordering::Relaxed)
        .ok()?;
    // Relaxed: read only after the Release store of ATTACHED below publishes them.
    slot.start_time.store(me.start_time, Ordering::Relaxed);
    slot.pid_ns.store(me.pid_ns, Ordering::Relaxed);
    let owner = pack(me.pid, ATTACHED, epoch + 1);
    slot.owner.store(owner, Ordering::Release);
    Some(owner)
}

/// Slots of which a segment has many, each held by at most one process: publish-subscribe's
/// subscriber slots. The same owner word as a role's, with one more state (DROPPED).
pub(crate) mod many {
    use super::*;

    /// What a slot's owner word says of its holder.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Holder {
        /// Nobody holds it.
        Free,
        /// Held under `word` (ATTACHED, CLAIMING, or DROPPED if `dropped`).
        Held { word: u64, dropped: bool },
    }

    /// The slot's holder now. Acquire: pairs with the holder's Release stores of its owner word,
    /// so that what it published before (its cursor) is visible.
    pub(crate) fn holder(slot: &RoleSlot) -> Holder {
        let word = slot.owner.load(Ordering::Acquire);
        match unpack(word).1 {
            CLAIMING | ATTACHED => Holder::Held {
                word,
                dropped: false,
            },
            DROPPED => Holder::Held {
                word,
                dropped: true,
            },
            // NEVER, DETACHED, DIED, or garbage.
            _ => Holder::Free,
        }
    }

    /// The identity of the process that holds the slot under `word`.
    pub(crate) fn identity(slot: &RoleSlot, word: u64) -> ProcessIdentity {
        let (pid, state, _) = unpack(word);
        // A dropped holder had attached: its start time is there.
        let state = if state == DROPPED { ATTACHED } else { state };
        holder_identity(slot, pid, state)
    }

    /// Takes `slot` for this process if nobody holds it, or, if `judge`, if its holder's
    /// process is dead (`check` keeps the liveness checks' state between calls). Returns the
    /// owner word and who held it before.
    pub(crate) fn claim<K: Kernel>(
        slot: &RoleSlot,
        kernel: K,
        check: &mut K::Check,
        judge: bool,
    ) -> Option<(u64, Predecessor)> {
        let me = kernel.current_process();
        // Acquire: as in `RoleHold::claim`.
        let current = slot.owner.load(Ordering::Acquire);
        let (pid, state, _) = unpack(current);
        let predecessor = match state {
            NEVER => Predecessor::None,
            CLAIMING | ATTACHED | DROPPED => {
                if !judge
                    || pid == me.pid
                    || kernel.liveness(check, identity(slot, current)) != Liveness::Dead
                {
                    return None;
                }
                Predecessor::Died { pid }
            }
            DIED => Predecessor::Died { pid },
            _ => Predecessor::Detached,
        };
        take(slot, current, &me).map(|owner| (owner, predecessor))
    }

    /// Lets go of the slot held under `owner`, dropped since or not. Release: what the holder
    /// stored before (its cursor) is visible to whoever sees the slot free.
    pub(crate) fn release(slot: &RoleSlot, owner: u64) {
        let (pid, _, epoch) = unpack(owner);
        let detached = pack(pid, DETACHED, epoch);
        for from in [owner, pack(pid, DROPPED, epoch)] {
            // AcqRel, Relaxed: a failure means another state (or holder) is there.
            if slot
                .owner
                .compare_exchange(from, detached, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
    }

    /// Marks the holder under `word` (attached or dropped) as died: a death notice's work, or a
    /// liveness check's. Returns whether it did (false: the word had moved on).
    pub(crate) fn mark_died(slot: &RoleSlot, word: u64) -> bool {
        let (pid, _, epoch) = unpack(word);
        // AcqRel, Relaxed: as a holder's own `release`; a failure means the word moved on.
        slot.owner
            .compare_exchange(
                word,
                pack(pid, DIED, epoch),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// Marks the attached holder under `word` dropped. Returns whether it did.
    pub(crate) fn mark_dropped(slot: &RoleSlot, word: u64) -> bool {
        let (pid, state, epoch) = unpack(word);
        // AcqRel, Relaxed: as `mark_died`.
        state == ATTACHED
            && slot
                .owner
                .compare_exchange(
                    word,
                    pack(pid, DROPPED, epoch),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_ok()
    }

    /// Whether the holder under `owner` still holds the slot undropped (the holder's own
    /// check). Relaxed: the caller orders it (see `pubsub::table`).
    #[inline(always)]
    pub(crate) fn still_attached(slot: &RoleSlot, owner: u64) -> bool {
        slot.owner.load(Ordering::Relaxed) == owner
    }
}

/// What a role's slot says, for a tool that looks at a segment from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotState {
    /// Never held.
    Never,
    /// Held (or being claimed) by this process.
    Held(ProcessIdentity),
    /// Let go of by process `pid`.
    Detached { pid: u32 },
    /// Marked dead, process `pid`.
    Died { pid: u32 },
    /// A state no ringport writes.
    Garbled,
}

/// The state of `role`'s slot in `header` (a copy of a segment's header: nothing is claimed).
pub(crate) fn slot_state(header: &SegmentHeader, role: Role) -> SlotState {
    let slot = &header.roles[role_index(role)];
    // Relaxed: a copy in our own memory, which nobody else writes; what it says of the holder
    // is judged by liveness, never trusted.
    let (pid, state, _) = unpack(slot.owner.load(Ordering::Relaxed));
    match state {
        NEVER => SlotState::Never,
        CLAIMING | ATTACHED => SlotState::Held(holder_identity(slot, pid, state)),
        DETACHED => SlotState::Detached { pid },
        DIED => SlotState::Died { pid },
        _ => SlotState::Garbled,
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::os::fake::FakeKernel;
    use crate::sync::AtomicU32;

    /// A fake kernel for another process, `pid`, in the same pid namespace.
    fn process(pid: u32) -> FakeKernel {
        let kernel = FakeKernel::new();
        kernel.me.set(ProcessIdentity {
            pid,
            start_time: u64::from(pid) * 10,
            pid_ns: 7,
        });
        kernel
    }

    fn epoch(header: &SegmentHeader, role: Role) -> u64 {
        unpack(header.roles[role_index(role)].owner.load(Ordering::Relaxed)).2
    }

    #[test]
    fn a_role_has_one_live_holder_and_a_dead_one_is_taken_over() {
        let header = SegmentHeader::new();
        let (us, them) = (process(100), process(200));
        let theirs = RoleHold::claim(&header, Role::Consumer, &them).unwrap();
        assert_eq!(theirs.predecessor(), Predecessor::None);
        assert!(matches!(
            RoleHold::claim(&header, Role::Consumer, &us),
            Err(Error::RoleTaken {
                role: Role::Consumer,
                pid: 200
            })
        ));
        // Nor can the holder's own process take it twice.
        assert!(matches!(
            RoleHold::claim(&header, Role::Consumer, &them),
            Err(Error::RoleTaken { pid: 200, .. })
        ));
        let before = epoch(&header, Role::Consumer);
        us.dead.borrow_mut().push(200);
        let ours = RoleHold::claim(&header, Role::Consumer, &us).unwrap();
        assert_eq!(epoch(&header, Role::Consumer), before + 1);
        assert_eq!(ours.predecessor(), Predecessor::Died { pid: 200 });
        // The dead holder's late release does not undo the takeover.
        theirs.release(&header);
        let (pid, state, _) = unpack(
            header.roles[role_index(Role::Consumer)]
                .owner
                .load(Ordering::Relaxed),
        );
        assert_eq!((pid, state), (100, ATTACHED));
        ours.release(&header);
        // Released, it is free for anyone.
        let next = RoleHold::claim(&header, Role::Consumer, &them).unwrap();
        assert_eq!(next.predecessor(), Predecessor::Detached);
        // Marked departed by a death notice, it was held by one that died.
        let word = header.roles[role_index(Role::Consumer)]
            .owner
            .load(Ordering::Relaxed);
        assert!(mark_departed(&header, Role::Consumer, word));
        let after = RoleHold::claim(&header, Role::Consumer, &us).unwrap();
        assert_eq!(after.predecessor(), Predecessor::Died { pid: 200 });
    }

    /// A notice that marks the peer departed, as the endpoints' do (and counts its runs).
    fn marking(
        header: &Arc<SegmentHeader>,
        role: Role,
        runs: &Arc<AtomicU32>,
    ) -> impl FnOnce(u64) -> Notice {
        let (header, runs) = (Arc::clone(header), Arc::clone(runs));
        move |word| {
            Arc::new(move || {
                mark_departed(&header, role, word);
                runs.fetch_add(1, Ordering::Relaxed);
            })
        }
    }

    fn is_gone(peer: Peer) -> bool {
        matches!(peer, Peer::Gone(Error::PeerGone(_)))
    }

    #[test]
    fn the_peer_is_absent_then_watched_then_gone_by_detach_or_by_death() {
        let header = Arc::new(SegmentHeader::new());
        let (us, them) = (process(100), process(200));
        let runs = Arc::new(AtomicU32::new(0));
        let mut producer = RoleHold::claim(&header, Role::Producer, &us).unwrap();
        assert_eq!(producer.peer_status(&header), PeerStatus::Absent);
        // Absent: its attach rings us, so nothing to watch.
        let peer = producer.peer(
            &header,
            Look::Thorough,
            marking(&header, Role::Consumer, &runs),
        );
        assert!(matches!(peer, Peer::Here { watched: true }));
        assert_eq!(us.watches(), 0);

        let consumer = RoleHold::claim(&header, Role::Consumer, &them).unwrap();
        assert_eq!(producer.peer_status(&header), PeerStatus::Present);
        for _ in 0..3 {
            let peer = producer.peer(
                &header,
                Look::Cheap,
                marking(&header, Role::Consumer, &runs),
            );
            assert!(matches!(peer, Peer::Here { watched: true }));
        }
        assert_eq!(
            us.watches(),
            1,
            "one notice per holder, however often it is asked"
        );
        consumer.release(&header);
        assert!(is_gone(producer.peer(
            &header,
            Look::Cheap,
            marking(&header, Role::Consumer, &runs)
        )));
        assert_eq!(producer.peer_status(&header), PeerStatus::Gone);

        // A new consumer, which dies without detaching: the notice marks it, and a look with
        // no system call (not thorough) sees it gone.
        let _consumer = RoleHold::claim(&header, Role::Consumer, &them).unwrap();
        let peer = producer.peer(
            &header,
            Look::Cheap,
            marking(&header, Role::Consumer, &runs),
        );
        assert!(matches!(peer, Peer::Here { watched: true }));
        let checks = us.liveness_checks.get();
        us.kill(200);
        assert_eq!(runs.load(Ordering::Relaxed), 1);
        assert!(is_gone(producer.peer(
            &header,
            Look::Cheap,
            marking(&header, Role::Consumer, &runs)
        )));
        assert_eq!(
            us.liveness_checks.get(),
            checks,
            "no liveness check was needed"
        );
        // Marked departed, the role is free for a replacement.
        RoleHold::claim(&header, Role::Consumer, &process(300)).unwrap();
    }

    #[test]
    fn a_peer_dead_before_its_watch_is_gone_and_one_we_cannot_watch_is_looked_at() {
        let header = Arc::new(SegmentHeader::new());
        let (us, them) = (process(100), process(200));
        let runs = Arc::new(AtomicU32::new(0));
        let mut producer = RoleHold::claim(&header, Role::Producer, &us).unwrap();
        let _consumer = RoleHold::claim(&header, Role::Consumer, &them).unwrap();
        us.dead.borrow_mut().push(200);
        assert!(is_gone(producer.peer(
            &header,
            Look::Cheap,
            marking(&header, Role::Consumer, &runs)
        )));
        assert_eq!(producer.peer_status(&header), PeerStatus::Gone);

        // No watch to be had: a thorough look checks the process, a cheap one does not.
        let header = Arc::new(SegmentHeader::new());
        us.dead.borrow_mut().clear();
        us.watchable.set(false);
        let mut producer = RoleHold::claim(&header, Role::Producer, &us).unwrap();
        let _consumer = RoleHold::claim(&header, Role::Consumer, &them).unwrap();
        let peer = producer.peer(
            &header,
            Look::Thorough,
            marking(&header, Role::Consumer, &runs),
        );
        assert!(matches!(peer, Peer::Here { watched: false }));
        us.dead.borrow_mut().push(200);
        let peer = producer.peer(
            &header,
            Look::Cheap,
            marking(&header, Role::Consumer, &runs),
        );
        assert!(matches!(peer, Peer::Here { watched: false }));
        let checks = us.liveness_checks.get();
        assert!(is_gone(producer.peer(
            &header,
            Look::Thorough,
            marking(&header, Role::Consumer, &runs)
        )));
        assert_eq!(us.liveness_checks.get(), checks + 1);
        assert_eq!(runs.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_hung_up_channel_peer_is_marked_departed_attached_or_not() {
        let header = Arc::new(SegmentHeader::new());
        let us = process(100);
        let mut producer = RoleHold::claim(&header, Role::Producer, &us).unwrap();
        mark_role_departed(&header, Role::Consumer);
        let runs = Arc::new(AtomicU32::new(0));
        assert!(is_gone(producer.peer(
            &header,
            Look::Cheap,
            marking(&header, Role::Consumer, &runs)
        )));
        mark_role_departed(&header, Role::Consumer);
        assert_eq!(producer.peer_status(&header), PeerStatus::Gone);
    }

    #[test]
    fn a_holder_in_another_pid_namespace_is_never_judged_dead() {
        let header = SegmentHeader::new();
        let us = process(100);
        let elsewhere = process(200);
        elsewhere.me.set(ProcessIdentity {
            pid: 200,
            start_time: 2000,
            pid_ns: 9,
        });
        let _theirs = RoleHold::claim(&header, Role::Consumer, &elsewhere).unwrap();
        // Pid 200 is dead here, but it names another process there.
        us.dead.borrow_mut().push(200);
        assert!(matches!(
            RoleHold::claim(&header, Role::Consumer, &us),
            Err(Error::RoleTaken { pid: 200, .. })
        ));
        let mut producer = RoleHold::claim(&header, Role::Producer, &us).unwrap();
        assert_eq!(producer.peer_status(&header), PeerStatus::Present);
    }

    #[test]
    fn a_holder_caught_claiming_is_judged_by_its_pid_and_garbage_reads_gone() {
        let header = SegmentHeader::new();
        let us = process(100);
        let slot = &header.roles[role_index(Role::Consumer)];
        // A claimer that stored CLAIMING and died before it published its start time.
        slot.owner.store(pack(300, CLAIMING, 1), Ordering::Relaxed);
        slot.start_time.store(12345, Ordering::Relaxed);
        assert_eq!(holder_identity(slot, 300, CLAIMING).start_time, 0);
        let mut producer = RoleHold::claim(&header, Role::Producer, &us).unwrap();
        assert_eq!(producer.peer_status(&header), PeerStatus::Present);
        us.dead.borrow_mut().push(300);
        assert_eq!(producer.peer_status(&header), PeerStatus::Gone);
        RoleHold::claim(&header, Role::Consumer, &us).unwrap();
        // A state no ringport writes: a peer we cannot wait for.
        slot.owner.store(pack(300, 0x7F, 9), Ordering::Relaxed);
        assert_eq!(producer.peer_status(&header), PeerStatus::Gone);
    }

    #[test]
    fn the_inline_look_agrees_with_a_cheap_look_and_yields_to_it_when_the_word_moves() {
        let header = Arc::new(SegmentHeader::new());
        let (us, them) = (process(100), process(200));
        let runs = Arc::new(AtomicU32::new(0));
        let mut producer = RoleHold::claim(&header, Role::Producer, &us).unwrap();
        // Nothing settled yet: absent, then attached but not looked at.
        assert!(!producer.peer_is_settled(&header));
        let consumer = RoleHold::claim(&header, Role::Consumer, &them).unwrap();
        assert!(!producer.peer_is_settled(&header));
        // A cheap look watches it: settled, for as long as its word stays.
        let peer = producer.peer(
            &header,
            Look::Cheap,
            marking(&header, Role::Consumer, &runs),
        );
        assert!(matches!(peer, Peer::Here { watched: true }));
        assert!(producer.peer_is_settled(&header));
        // It leaves: the word moves, and the full look says gone.
        consumer.release(&header);
        assert!(!producer.peer_is_settled(&header));
        assert!(is_gone(producer.peer(
            &header,
            Look::Cheap,
            marking(&header, Role::Consumer, &runs)
        )));
        // A replacement that dies: its notice marks it, and the inline look yields at once.
        let _consumer = RoleHold::claim(&header, Role::Consumer, &them).unwrap();
        producer.peer(
            &header,
            Look::Cheap,
            marking(&header, Role::Consumer, &runs),
        );
        assert!(producer.peer_is_settled(&header));
        us.kill(200);
        assert!(!producer.peer_is_settled(&header));
        assert!(is_gone(producer.peer(
            &header,
            Look::Cheap,
            marking(&header, Role::Consumer, &runs)
        )));
    }
}
