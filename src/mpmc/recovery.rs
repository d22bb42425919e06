//! A handle's part in recovering slots whose owner died. When a slot is in a handle's way, the
//! handle sets up a death notice for the slot's owner; when the owner dies, the notice marks it
//! and rings both bells, and the next attempt completes the slot for the dead owner (see
//! `Slots::reclaim`) at once. Where the kernel cannot watch the owner, a slot that stays in the
//! way for a whole liveness interval has its owner's pid checked instead. No system call of its
//! own: the clock, the notices and the pid checks are the kernel's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::slot::{Claim, Slots, Stamp, Won};
use crate::error::Result;
use crate::os::{Kernel, Notice, ProcessIdentity, RingMemory, Watched};
use crate::sync::{AtomicU32, Ordering};
use crate::wait::{Doorbell, Fences};

/// The ring a recovery works on, and how long a slot that cannot be watched may stay in the
/// way before its owner is checked.
#[derive(Clone, Copy)]
pub(super) struct Ring<'a> {
    pub mem: &'a RingMemory,
    pub slots: &'a Slots,
    pub fences: Fences,
    pub interval: Duration,
}

/// A handle's view of the slots in its way.
pub(super) struct Recovery<W> {
    stuck: StuckWatch,
    /// Whether we may judge the pids that other handles record (same pid namespace as the
    /// ring's creator).
    judge: bool,
    /// The death notice on the owner of the slot in our way, if we set one up.
    owner: Option<OwnerWatch<W>>,
    /// Whether the slot last in our way (if any) is one whose owner's death will ring us.
    covered: bool,
}

/// A death notice on a slot owner.
struct OwnerWatch<W> {
    pid: u32,
    /// Set by the notice (or at once, if the owner was dead already).
    died: Arc<AtomicU32>,
    /// None when the owner was dead already or cannot be watched.
    _watch: Option<W>,
    /// The kernel can watch it: its death will ring the bells.
    watched: bool,
}

impl<W> Recovery<W> {
    pub(super) fn new(judge: bool) -> Recovery<W> {
        Recovery {
            stuck: StuckWatch::default(),
            judge,
            owner: None,
            covered: true,
        }
    }

    /// The same judgement, with no slot seen yet (for another handle).
    pub(super) fn fresh(&self) -> Recovery<W> {
        Recovery::new(self.judge)
    }

    /// Whether a sleep after the last attempt may last until a wake: nothing was in the way
    /// (a commit or a release will ring), or the owner of what was has a death notice.
    pub(super) fn covered(&self) -> bool {
        self.covered
    }

    /// One attempt to claim a slot (`claim` is the producer's or the consumer's half of the
    /// slot protocol), with recovery: if a slot was in the way, it is checked, and once
    /// reclaimed the claim is tried once more. Returns the claim won (its position, its slot
    /// and, for a consumer, the length). `notice(died)` makes the death notice for the owner of a slot in the way:
    /// it must set `died` (Release), then ring both bells, fenced.
    pub(super) fn attempt<'m, K: Kernel<Watch = W>>(
        &mut self,
        ring: Ring<'_>,
        kernel: K,
        notice: &impl Fn(Arc<AtomicU32>) -> Notice,
        mut claim: impl FnMut() -> Result<Claim<'m>>,
    ) -> Result<Option<Won<'m>>> {
        for _ in 0..2 {
            match claim()? {
                Claim::Won(won) => {
                    self.covered = true;
                    return Ok(Some(won));
                }
                Claim::NotReady { blocker } => {
                    if !self.recover(ring, blocker, kernel, notice) {
                        break;
                    }
                }
            }
        }
        Ok(None)
    }

    /// Called when an attempt found the ring not ready because of `blocker` (or nothing in
    /// particular). If the slot's owner is dead (its notice came), or the slot has been in the
    /// way for `interval` and its owner, which we cannot watch, is dead, completes the slot for
    /// the owner and wakes everyone. Returns whether it did.
    #[cold]
    fn recover<K: Kernel<Watch = W>>(
        &mut self,
        ring: Ring<'_>,
        blocker: Option<(u64, Stamp)>,
        kernel: K,
        notice: &impl Fn(Arc<AtomicU32>) -> Notice,
    ) -> bool {
        let Ring {
            mem,
            slots,
            fences,
            interval,
        } = ring;
        let Some(blocker) = blocker else {
            self.stuck = StuckWatch::default();
            self.covered = true;
            return false;
        };
        let pid = blocker.1.owner().unwrap_or(0);
        if !self.judge || pid == 0 {
            // Nothing to watch: the slot is finished by its owner or by nobody.
            self.covered = false;
            return false;
        }
        let owner = self.watch_owner(pid, kernel, notice);
        let (watched, died) = (owner.watched, owner.died.load(Ordering::Acquire) != 0);
        self.covered = watched;
        let reclaimed = if died {
            // The process died (its pidfd said so, or it was gone when we looked): whoever
            // holds the pid now, the slot's owner is dead.
            slots.reclaim(mem, blocker, |_| true)
        } else if !watched {
            // Only a slot whose owner cannot be watched is timed (the clock is read here alone:
            // a polling loop finds a slot in its way on most misses).
            self.stuck
                .persisting(Some(blocker), interval, kernel.now())
                .is_some()
                && slots.reclaim(mem, blocker, |pid| kernel.pid_is_dead(pid))
        } else {
            false
        };
        if !reclaimed {
            return false;
        }
        self.stuck = StuckWatch::default();
        self.owner = None;
        let header = mem.header();
        // Relaxed: a count for whoever asks (`Ring::recovered_slots`), ordered with nothing.
        header.ledger.recovered.fetch_add(1, Ordering::Relaxed);
        Doorbell::data(header).ring_fixed(fences, kernel);
        Doorbell::space(header).ring_fixed(fences, kernel);
        true
    }

    /// The death notice on `pid`, set up the first time it is in our way.
    fn watch_owner<K: Kernel<Watch = W>>(
        &mut self,
        pid: u32,
        kernel: K,
        notice: &impl Fn(Arc<AtomicU32>) -> Notice,
    ) -> &OwnerWatch<W> {
        if self.owner.as_ref().is_none_or(|o| o.pid != pid) {
            let died = Arc::new(AtomicU32::new(0));
            // Slot stamps record a pid alone: the process that has it now is the one watched.
            let who = ProcessIdentity {
                pid,
                start_time: 0,
                pid_ns: 0,
            };
            let (watch, watched) = match kernel.watch_process(who, notice(Arc::clone(&died))) {
                Watched::Watching(watch) => (Some(watch), true),
                Watched::Already => {
                    died.store(1, Ordering::Relaxed);
                    (None, true)
                }
                Watched::Unwatchable => (None, false),
            };
            self.owner = Some(OwnerWatch {
                pid,
                died,
                _watch: watch,
                watched,
            });
        }
        self.owner.as_ref().expect("set above")
    }
}

/// Remembers the slot that blocked the last attempts, and since when.
#[derive(Default)]
struct StuckWatch {
    seen: Option<((u64, Stamp), Instant)>,
}

impl StuckWatch {
    /// Records `blocker`, seen `now`; returns it if it has blocked for at least `interval`.
    fn persisting(
        &mut self,
        blocker: Option<(u64, Stamp)>,
        interval: Duration,
        now: Instant,
    ) -> Option<(u64, Stamp)> {
        let Some(blocker) = blocker else {
            self.seen = None;
            return None;
        };
        match self.seen {
            Some((seen, since)) if seen == blocker => {
                (now.duration_since(since) >= interval).then_some(blocker)
            }
            _ => {
                self.seen = Some((blocker, now));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::layout::DATA_BELL;
    use crate::mpmc::slot::slot_stride;
    use crate::os::fake::FakeKernel;
    use crate::os::Memory;
    use crate::sync::AtomicU64;

    const INTERVAL: Duration = Duration::from_millis(20);

    fn on<'a>(mem: &'a RingMemory, slots: &'a Slots) -> Ring<'a> {
        Ring {
            mem,
            slots,
            fences: Fences::Symmetric,
            interval: INTERVAL,
        }
    }

    /// A death notice that only marks the owner dead (the tests ring nothing).
    fn no_notice(died: Arc<AtomicU32>) -> Notice {
        Arc::new(move || died.store(1, Ordering::Release))
    }

    fn ring() -> (RingMemory, Slots, AtomicU64, AtomicU64) {
        let capacity = 2 * slot_stride(8);
        let mem = RingMemory::new(Arc::new(Memory::heap(capacity as usize)));
        (
            mem,
            Slots::new(capacity, 8),
            AtomicU64::new(0),
            AtomicU64::new(0),
        )
    }

    /// A ring of two slots whose first is claimed for writing by pid 300, and whose second
    /// holds a committed message behind it; returns the second's position.
    fn stuck_behind_300(mem: &RingMemory, slots: &Slots, tail: &AtomicU64) -> u64 {
        let Claim::Won(_) = slots.try_claim_write(mem, tail, 300).unwrap() else {
            panic!("an empty ring has room");
        };
        let Claim::Won(Won { position: next, .. }) = slots.try_claim_write(mem, tail, 7).unwrap()
        else {
            panic!("an empty ring has room");
        };
        slots.commit(slots.at(mem, next), next, 1);
        next
    }

    #[test]
    fn a_watched_owner_s_death_frees_its_slot_at_the_next_attempt() {
        let kernel = FakeKernel::new();
        let (mem, slots, tail, head) = ring();
        let next = stuck_behind_300(&mem, &slots, &tail);
        // A sleeper on the data bell, to see the wake that follows a reclaim.
        mem.header().bells[DATA_BELL]
            .sleepers
            .store(1, Ordering::Relaxed);
        let mut recovery = Recovery::new(true);
        let read = |recovery: &mut Recovery<_>| {
            recovery
                .attempt(on(&mem, &slots), &kernel, &no_notice, || {
                    slots.try_claim_read(&mem, &head, 9)
                })
                .map(|won| won.map(|w| (w.position, w.len)))
        };
        assert_eq!(read(&mut recovery).unwrap(), None);
        assert!(recovery.covered(), "the owner's death will ring");
        assert_eq!(kernel.watches(), 1);
        kernel.advance(10 * INTERVAL);
        assert_eq!(read(&mut recovery).unwrap(), None, "alive, however long");
        kernel.kill(300);
        // Reclaimed (an aborted message, skipped) with no interval to wait, then the claim
        // behind it succeeds.
        assert_eq!(read(&mut recovery).unwrap(), Some((next, 1)));
        assert_eq!(kernel.wakes.get(), 1, "the data bell's sleeper is woken");
        assert_eq!(
            mem.header().ledger.recovered.load(Ordering::Relaxed),
            1,
            "counted in the segment"
        );
    }

    #[test]
    fn an_owner_that_cannot_be_watched_is_judged_after_an_interval() {
        let kernel = FakeKernel::new();
        kernel.watchable.set(false);
        let (mem, slots, tail, head) = ring();
        let next = stuck_behind_300(&mem, &slots, &tail);
        kernel.dead.borrow_mut().push(300);
        let mut recovery = Recovery::new(true);
        let read = |recovery: &mut Recovery<_>| {
            recovery
                .attempt(on(&mem, &slots), &kernel, &no_notice, || {
                    slots.try_claim_read(&mem, &head, 9)
                })
                .map(|won| won.map(|w| (w.position, w.len)))
        };
        assert_eq!(read(&mut recovery).unwrap(), None, "first sighting");
        assert!(
            !recovery.covered(),
            "a sleep must look again at an interval"
        );
        kernel.advance(INTERVAL / 2);
        assert_eq!(read(&mut recovery).unwrap(), None, "not yet an interval");
        kernel.advance(INTERVAL);
        assert_eq!(read(&mut recovery).unwrap(), Some((next, 1)));
    }

    #[test]
    fn a_live_owner_or_one_we_cannot_judge_keeps_its_slot() {
        let kernel = FakeKernel::new();
        for (judge, dead) in [(true, false), (false, true)] {
            let (mem, slots, tail, head) = ring();
            let _ = slots.try_claim_write(&mem, &tail, 300).unwrap();
            if dead {
                kernel.dead.borrow_mut().push(300);
            }
            let mut recovery = Recovery::new(judge);
            for _ in 0..3 {
                let got = recovery.attempt(on(&mem, &slots), &kernel, &no_notice, || {
                    slots.try_claim_read(&mem, &head, 9)
                });
                assert!(got.unwrap().is_none());
                kernel.advance(INTERVAL);
            }
        }
    }

    #[test]
    fn the_watch_starts_again_when_the_blocker_changes_or_goes() {
        let t0 = FakeKernel::new().peek();
        let (a, b) = ((1, Stamp { word: 10 }), (2, Stamp { word: 20 }));
        let mut watch = StuckWatch::default();
        assert_eq!(watch.persisting(Some(a), INTERVAL, t0), None);
        assert_eq!(watch.persisting(Some(b), INTERVAL, t0 + INTERVAL), None);
        assert_eq!(
            watch.persisting(Some(b), INTERVAL, t0 + 2 * INTERVAL),
            Some(b)
        );
        assert_eq!(watch.persisting(None, INTERVAL, t0 + 3 * INTERVAL), None);
        assert_eq!(watch.persisting(Some(b), INTERVAL, t0 + 4 * INTERVAL), None);
    }
}
