//! A handle's part in recovering slots whose owner died: a slot that stays in the way for a
//! whole liveness interval has its owner's pid checked, and if the owner is dead the slot is
//! completed for it (see `Slots::reclaim`) and everyone is woken. No system call of its own:
//! the clock and the pid check are the kernel's.

use std::time::{Duration, Instant};

use super::slot::{Claim, Slots, Stamp};
use crate::error::Result;
use crate::os::{Kernel, RingMemory};
use crate::wait::{Doorbell, Fences, Notifier};

/// A handle's view of the slots in its way.
pub(super) struct Recovery {
    stuck: StuckWatch,
    /// Whether we may judge the pids that other handles record (same pid namespace as the
    /// ring's creator).
    judge: bool,
}

impl Recovery {
    pub(super) fn new(judge: bool) -> Recovery {
        Recovery {
            stuck: StuckWatch::default(),
            judge,
        }
    }

    /// The same judgement, with no slot seen yet (for another handle).
    pub(super) fn fresh(&self) -> Recovery {
        Recovery::new(self.judge)
    }

    /// One attempt to claim a slot (`claim` is the producer's or the consumer's half of the
    /// slot protocol), with recovery: if a slot was in the way, it is checked, and once
    /// reclaimed the claim is tried once more. Returns the position won and, for a consumer,
    /// the length.
    pub(super) fn attempt<K: Kernel>(
        &mut self,
        mem: &RingMemory,
        slots: &Slots,
        fences: Fences,
        interval: Duration,
        kernel: K,
        mut claim: impl FnMut() -> Result<Claim>,
    ) -> Result<Option<(u64, usize)>> {
        for _ in 0..2 {
            match claim()? {
                Claim::Won { position, len } => return Ok(Some((position, len))),
                Claim::NotReady { blocker } => {
                    if !self.recover(mem, slots, fences, interval, blocker, kernel) {
                        break;
                    }
                }
            }
        }
        Ok(None)
    }

    /// Called when an attempt found the ring not ready because of `blocker` (or nothing in
    /// particular). If the same slot has been in the way for `interval` and its owner is dead,
    /// completes it for the owner and wakes everyone. Returns whether it did.
    #[cold]
    fn recover<K: Kernel>(
        &mut self,
        mem: &RingMemory,
        slots: &Slots,
        fences: Fences,
        interval: Duration,
        blocker: Option<(u64, Stamp)>,
        kernel: K,
    ) -> bool {
        let Some(blocker) = self.stuck.persisting(blocker, interval, kernel.now()) else {
            return false;
        };
        if !self.judge || !slots.reclaim(mem, blocker, |pid| kernel.pid_is_dead(pid)) {
            return false;
        }
        self.stuck = StuckWatch::default();
        let header = mem.header();
        Doorbell::data(header).ring(&mut Notifier::fixed(fences, kernel));
        Doorbell::space(header).ring(&mut Notifier::fixed(fences, kernel));
        true
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
    use crate::sync::{AtomicU64, Ordering};

    const INTERVAL: Duration = Duration::from_millis(20);

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

    #[test]
    fn a_slot_is_reclaimed_only_once_its_dead_owner_has_blocked_for_an_interval() {
        let kernel = FakeKernel::new();
        let (mem, slots, tail, head) = ring();
        // Pid 300 claims a slot and dies before committing; a later message waits behind it.
        let Claim::Won { position, .. } = slots.try_claim_write(&mem, &tail, 300).unwrap() else {
            panic!("an empty ring has room");
        };
        let Claim::Won { position: next, .. } = slots.try_claim_write(&mem, &tail, 7).unwrap()
        else {
            panic!("an empty ring has room");
        };
        slots.commit(&mem, next, 1);
        kernel.dead.borrow_mut().push(300);
        // A sleeper on the data bell, to see the wake.
        mem.header().bells[DATA_BELL]
            .sleepers
            .store(1, Ordering::Relaxed);
        let mut recovery = Recovery::new(true);
        let mut read = || {
            recovery.attempt(&mem, &slots, Fences::Symmetric, INTERVAL, &kernel, || {
                slots.try_claim_read(&mem, &head, 9)
            })
        };
        assert_eq!(read().unwrap(), None, "first sighting");
        kernel.advance(INTERVAL / 2);
        assert_eq!(read().unwrap(), None, "not yet an interval");
        assert_eq!(kernel.wakes.get(), 0);
        kernel.advance(INTERVAL);
        // Reclaimed (an aborted message, skipped), then the claim behind it succeeds.
        assert_eq!(read().unwrap(), Some((next, 1)));
        assert!(position < next);
        assert_eq!(kernel.wakes.get(), 1, "the data bell's sleeper is woken");
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
                let got =
                    recovery.attempt(&mem, &slots, Fences::Symmetric, INTERVAL, &kernel, || {
                        slots.try_claim_read(&mem, &head, 9)
                    });
                assert_eq!(got.unwrap(), None);
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
