//! What every MPMC handle holds, and the claim that producers and consumers share: one try
//! with recovery, or a wait on the bell that the other end rings.

use std::cell::Cell;
use std::sync::Arc;

use super::recovery::{Recovery, Ring};
use super::slot::{Claim, Slots, Won};
use crate::counters::Tally;
use crate::error::{Result, Role};
use crate::layout::{RingParams, SegmentHeader};
use crate::os::{Host, Kernel, Notice, RingMemory, HOST};
use crate::segment::Segment;
use crate::sync::{AtomicU32, AtomicU64, Ordering};
use crate::wait::{Doorbell, Fences, Limit, Peer, WaitPolicy, WaitStats, Waiter};

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

/// What every handle holds: its view of the ring, which its grants borrow, and its own state.
pub(super) struct Handle {
    pub(super) view: View,
    recovery: Recovery<<Host as Kernel>::Watch>,
    pub(super) stats: WaitStats,
    /// Its wait counts as last added to the segment's counters.
    unpublished: Unpublished,
}

/// What a handle reads of its ring and never changes, apart from its state: a claim hands its
/// grant a shared borrow of this while a miss's recovery takes the state mutably.
pub(super) struct View {
    pub(super) mem: RingMemory,
    pub(super) slots: Slots,
    fences: Fences,
    policy: WaitPolicy,
    /// What our claims record: our pid, or 0 if other processes cannot judge it.
    pid: u32,
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

impl View {
    /// The counter that `end` claims at.
    #[inline(always)]
    fn counter(&self, end: End) -> &AtomicU64 {
        let positions = &self.mem.header().positions;
        match end {
            End::Tail => &positions[TAIL],
            End::Head => &positions[HEAD],
        }
    }

    /// The first look at `end`, inline (see `Slots::first_write`, `Slots::first_read`).
    #[inline(always)]
    fn first(&self, end: End) -> Option<Won<'_>> {
        let (mem, counter) = (&self.mem, self.counter(end));
        match end {
            End::Tail => self.slots.first_write(mem, counter, self.pid),
            End::Head => self.slots.first_read(mem, counter, self.pid),
        }
    }

    /// The producer's (tail) or the consumer's (head) half of the slot protocol, tried once.
    #[inline(always)]
    fn claim(&self, end: End) -> Result<Claim<'_>> {
        let (mem, counter) = (&self.mem, self.counter(end));
        match end {
            End::Tail => self.slots.try_claim_write(mem, counter, self.pid),
            End::Head => self.slots.try_claim_read(mem, counter, self.pid),
        }
    }

    /// The claim of `position` (with `len` bytes), found again for a grant made from it.
    pub(super) fn won_at(&self, position: u64, len: usize) -> Won<'_> {
        Won {
            position,
            len,
            slot: self.slots.at(&self.mem, position),
        }
    }

    /// Rings `bell` (picked from the header) after a commit or a release. Many handles notify
    /// each bell, so none may switch its fencing (see `wait::Notifier::fixed`).
    #[inline(always)]
    pub(super) fn ring(&self, bell: fn(&SegmentHeader) -> Doorbell<'_>) {
        bell(self.mem.header()).ring_fixed(self.fences, HOST);
    }

    /// The ring a handle's recovery works on.
    fn recovery_ring(&self) -> Ring<'_> {
        Ring {
            mem: &self.mem,
            slots: &self.slots,
            fences: self.fences,
            interval: self.policy.liveness_interval,
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
            view: View {
                mem,
                slots: Slots::new(capacity, max_frame),
                fences,
                policy,
                pid: if judge { me.pid } else { 0 },
            },
            recovery: Recovery::new(judge),
            stats: WaitStats::default(),
            unpublished: Unpublished::default(),
        })
    }

    /// One claim at `end`, with recovery: the view that the grant borrows, and the claim won.
    /// The first try is inline; a miss (the ring full or empty, or a slot in the way) goes to the
    /// recovery, out of line.
    #[inline(always)]
    pub(super) fn try_claim(&mut self, end: End) -> Result<Option<(&View, Won<'_>)>> {
        let Handle { view, recovery, .. } = self;
        let view = &*view;
        if let Some(won) = view.first(end) {
            return Ok(Some((view, won)));
        }
        Ok(try_claim_missed(view, recovery, end)?.map(|won| (view, won)))
    }

    /// A claim at `end`, waiting on the bell that the other end rings.
    pub(super) fn claim_until(&mut self, end: End, limit: Limit) -> Result<(&View, Won<'_>)> {
        let Handle {
            view,
            recovery,
            stats,
            unpublished,
        } = self;
        let view = &*view;
        if let Some(won) = view.first(end) {
            return Ok((view, won));
        }
        if let Some(won) = try_claim_missed(view, recovery, end)? {
            return Ok((view, won));
        }
        let header = view.mem.header();
        let bell = match end {
            End::Tail => Doorbell::space(header),
            End::Head => Doorbell::data(header),
        };
        let notice = owner_notice(&view.mem);
        let ring = view.recovery_ring();
        // Whether the last attempt left nothing in the way that a death notice does not cover.
        let covered = Cell::new(false);
        let publish = |stats: &WaitStats| unpublished.publish(&view.mem, end, stats);
        let won = Waiter::new(bell, view.fences, view.policy, stats, HOST)
            .before_sleep(&publish)
            .wait(
                limit,
                || {
                    let got = recovery.attempt(ring, HOST, &notice, || view.claim(end));
                    covered.set(recovery.covered());
                    got
                },
                // Handles come and go freely: no peer to be gone. A sleep lasts until a wake when
                // a commit or release will ring, or the owner of the slot in the way is watched.
                |_| Peer::Here {
                    watched: covered.get(),
                },
            )?;
        Ok((view, won))
    }

    /// Another handle on the same ring, with nothing of this one's history (stuck slot seen,
    /// wait statistics).
    pub(super) fn clone_handle(&self) -> Handle {
        let view = &self.view;
        Handle {
            view: View {
                mem: view.mem.share(),
                slots: view.slots,
                fences: view.fences,
                policy: view.policy,
                pid: view.pid,
            },
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
        self.unpublished.publish(&self.view.mem, end, &self.stats);
    }
}

/// `try_claim` after a first look that did not win: the whole claim, with the recovery's
/// [`attempt`](Recovery::attempt).
#[cold]
#[inline(never)]
fn try_claim_missed<'v>(
    view: &'v View,
    recovery: &mut Recovery<<Host as Kernel>::Watch>,
    end: End,
) -> Result<Option<Won<'v>>> {
    let notice = owner_notice(&view.mem);
    recovery.attempt(view.recovery_ring(), HOST, &notice, || view.claim(end))
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
            Doorbell::data(header).ring_fixed(Fences::Symmetric, HOST);
            Doorbell::space(header).ring_fixed(Fences::Symmetric, HOST);
        })
    }
}
