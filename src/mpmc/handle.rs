//! What every MPMC handle holds, and the claim that producers and consumers share: one try
//! with recovery, or a wait on the bell that the other end rings.

use std::cell::Cell;
use std::sync::Arc;

use super::recovery::{Recovery, Ring};
use super::slot::{Claim, Slots, Stamp};
use crate::counters::Tally;
use crate::error::{Result, Role};
use crate::layout::{RingParams, SegmentHeader};
use crate::os::{Host, Kernel, Notice, RingMemory, HOST};
use crate::segment::Segment;
use crate::sync::{AtomicU32, Ordering};
use crate::wait::{Doorbell, Fences, Limit, Notifier, Peer, WaitPolicy, WaitStats, Waiter};

/// Index of the tail counter in the header's position lines.
const TAIL: usize = 0;
/// Index of the head counter.
const HEAD: usize = 1;

/// Where a handle claims slots: producers at the tail, consumers at the head.
#[derive(Debug, Clone, Copy)]
pub(super) enum End {
    Tail,
    Head,
}

/// The ring a handle's recovery works on (from the fields, so that the others stay free).
#[inline]
fn recovery_ring<'a>(
    mem: &'a RingMemory,
    slots: &'a Slots,
    fences: Fences,
    policy: &WaitPolicy,
) -> Ring<'a> {
    Ring {
        mem,
        slots,
        fences,
        interval: policy.liveness_interval,
    }
}

/// What every handle holds.
pub(super) struct Handle {
    pub(super) mem: RingMemory,
    pub(super) slots: Slots,
    fences: Fences,
    policy: WaitPolicy,
    /// What our claims record: our pid, or 0 if other processes cannot judge it.
    pid: u32,
    recovery: Recovery<<Host as Kernel>::Watch>,
    pub(super) stats: WaitStats,
    /// Its wait counts as last added to the segment's counters.
    unpublished: Unpublished,
}

/// A handle's wait counts as last added to the segment's counters (see `counters`): added
/// before each sleep and when the handle goes (one locked add per word then, on a line every
/// handle of the side writes), so that a wait that ends in its spin adds nothing. A cell, so that a waiter's sleep can
/// add them while the waiter holds the statistics. (Messages are not counted here: the
/// segment's tail and head count them, and counting their bytes cost MPMC threads a fifth of
/// their rate: docs/PERFORMANCE.md, "Counters in the segment".)
#[derive(Default)]
struct Unpublished {
    published_waits: Cell<WaitStats>,
}

impl Unpublished {
    /// Adds the wait counts of `stats` since they were last added to the segment's counters
    /// of `end`'s side.
    fn publish(&self, mem: &RingMemory, end: End, stats: &WaitStats) {
        let before = self.published_waits.get();
        if *stats != before {
            Tally::shared(mem.header(), end.role()).add_waits(
                stats.waits - before.waits,
                stats.sleeps - before.sleeps,
                stats.barriers - before.barriers,
            );
            self.published_waits.set(*stats);
        }
    }
}

impl End {
    /// The side of the ring that claims at this end.
    fn role(self) -> Role {
        match self {
            End::Tail => Role::Producer,
            End::Head => Role::Consumer,
        }
    }
}

impl Handle {
    /// The first handle of a ring over `segment`: the template that the ring's handles copy.
    pub(super) fn new(segment: &Segment, policy: WaitPolicy) -> Result<Handle> {
        let kernel = HOST;
        let RingParams {
            capacity,
            max_frame,
            flags,
            ..
        } = segment.params;
        let fences = Fences::for_ring(flags, kernel)?;
        let mem = RingMemory::new(std::sync::Arc::clone(&segment.memory));
        let me = kernel.current_process();
        // Relaxed: validated (or written) with the identity, which the magic published.
        let creator_ns = mem.header().identity.creator_pid_ns.load(Ordering::Relaxed);
        // Our pids mean something to the others only in the creator's namespace, and theirs to
        // us only there.
        let judge = me.pid_ns != 0 && me.pid_ns == creator_ns;
        Ok(Handle {
            mem,
            slots: Slots::new(capacity, max_frame),
            fences,
            policy,
            pid: if judge { me.pid } else { 0 },
            recovery: Recovery::new(judge),
            stats: WaitStats::default(),
            unpublished: Unpublished::default(),
        })
    }

    /// One claim at `end`, with recovery: the position won and, at the head, the message's
    /// length. The first try is inline; a miss (the ring full or empty, or a slot in the way)
    /// goes to the recovery, out of line.
    #[inline(always)]
    pub(super) fn try_claim(&mut self, end: End) -> Result<Option<(u64, usize)>> {
        match claim(&self.mem, &self.slots, end, self.pid)? {
            Claim::Won { position, len } => {
                self.recovery.won();
                Ok(Some((position, len)))
            }
            Claim::NotReady { blocker } => self.try_claim_missed(end, blocker),
        }
    }

    /// `try_claim` after a first try that found `blocker` (or nothing) in the way: the
    /// recovery's [`attempt`](Recovery::attempt) from there.
    #[cold]
    #[inline(never)]
    fn try_claim_missed(
        &mut self,
        end: End,
        blocker: Option<(u64, Stamp)>,
    ) -> Result<Option<(u64, usize)>> {
        let notice = owner_notice(&self.mem);
        let ring = recovery_ring(&self.mem, &self.slots, self.fences, &self.policy);
        let mut first = Some(Claim::NotReady { blocker });
        self.recovery
            .attempt(ring, HOST, &notice, || match first.take() {
                Some(missed) => Ok(missed),
                None => claim(&self.mem, &self.slots, end, self.pid),
            })
    }

    /// A claim at `end`, waiting on the bell that the other end rings.
    pub(super) fn claim_until(&mut self, end: End, limit: Limit) -> Result<(u64, usize)> {
        if let Some(won) = self.try_claim(end)? {
            return Ok(won);
        }
        let header = self.mem.header();
        let bell = match end {
            End::Tail => Doorbell::space(header),
            End::Head => Doorbell::data(header),
        };
        let notice = owner_notice(&self.mem);
        let ring = recovery_ring(&self.mem, &self.slots, self.fences, &self.policy);
        // Whether the last attempt left nothing in the way that a death notice does not cover.
        let covered = Cell::new(false);
        // The attempt is `try_claim`'s, on the fields the waiter does not hold.
        let (mem, unpublished) = (&self.mem, &self.unpublished);
        let publish = |stats: &WaitStats| unpublished.publish(mem, end, stats);
        Waiter::new(bell, self.fences, self.policy, &mut self.stats, HOST)
            .before_sleep(&publish)
            .wait(
                limit,
                || {
                    let got = self.recovery.attempt(ring, HOST, &notice, || {
                        claim(&self.mem, &self.slots, end, self.pid)
                    });
                    covered.set(self.recovery.covered());
                    got
                },
                // Handles come and go freely: no peer to be gone. A sleep lasts until a wake when
                // a commit or release will ring, or the owner of the slot in the way is watched.
                |_| Peer::Here {
                    watched: covered.get(),
                },
            )
    }

    /// Rings `bell` (picked from the header) after a commit or a release. Many handles notify
    /// each bell, so none may switch its fencing (see `wait::Notifier::fixed`).
    #[inline(always)]
    pub(super) fn ring(&self, bell: fn(&SegmentHeader) -> Doorbell<'_>) {
        bell(self.mem.header()).ring(&mut Notifier::fixed(self.fences, HOST));
    }

    /// Another handle on the same ring, with nothing of this one's history (stuck slot seen,
    /// wait statistics).
    pub(super) fn clone_handle(&self) -> Handle {
        Handle {
            mem: self.mem.share(),
            slots: self.slots,
            fences: self.fences,
            policy: self.policy,
            pid: self.pid,
            recovery: self.recovery.fresh(),
            stats: WaitStats::default(),
            unpublished: Unpublished::default(),
        }
    }

    /// Adds what this handle counted at `end` to the segment's counters (see
    /// [`Unpublished`]).
    #[cold]
    #[inline(never)]
    pub(super) fn flush_counts_slow(&mut self, end: End) {
        self.unpublished.publish(&self.mem, end, &self.stats);
    }
}

/// The death notice for the owner of a slot in the way: marks it dead, and rings both bells
/// (fenced: the watcher thread is no bell's sole notifier).
#[inline]
fn owner_notice(mem: &RingMemory) -> impl Fn(Arc<AtomicU32>) -> Notice + '_ {
    move |died| {
        let memory = mem.share();
        Arc::new(move || {
            // Release: pairs with the Acquire in `Recovery::recover`, after the wake.
            died.store(1, Ordering::Release);
            let header = memory.header();
            Doorbell::data(header).ring(&mut Notifier::fixed(Fences::Symmetric, HOST));
            Doorbell::space(header).ring(&mut Notifier::fixed(Fences::Symmetric, HOST));
        })
    }
}

/// The producer's (tail) or the consumer's (head) half of the slot protocol, tried once.
#[inline(always)]
fn claim(mem: &RingMemory, slots: &Slots, end: End, pid: u32) -> Result<Claim> {
    match end {
        End::Tail => slots.try_claim_write(mem, &mem.header().positions[TAIL], pid),
        End::Head => slots.try_claim_read(mem, &mem.header().positions[HEAD], pid),
    }
}
