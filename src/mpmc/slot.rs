//! The MPMC slot protocol: stamps, claims, commits, releases and the recovery of slots whose
//! owner died. No system calls: liveness is asked of the caller.
//!
//! The ring is Vyukov's bounded queue (crossbeam's `ArrayQueue`, rigtorp's `MPMCQueue`): slots
//! in a power-of-two array, a `tail` that producers advance and a `head` that consumers advance,
//! both plain counters, and a stamp in every slot that says which lap it is on and what state it
//! is in. Position `p` lives in slot `p % slots` on lap `p / slots`.
//!
//! Unlike the textbook queue, a slot is claimed by a compare-and-swap on its *stamp*, which
//! records the claimer's pid in the same step, and the counter is advanced after (by the claimer,
//! with a plain store, or by anyone who finds the slot already claimed, with a compare-and-swap:
//! "helping"). So there is no instant at which a position is taken but its owner unknown, and a
//! process killed anywhere between reserve and
//! commit, or between receive and release, leaves a slot that names it. A waiter stuck behind
//! such a slot checks the pid and, if the process is dead, completes the slot on its behalf
//! (see [`Slots::reclaim`]). The counters are hints: the stamps alone decide.
//!
//! ```text
//! stamp bits  0..32  WRITING / READING: the owner's pid (0: unknown, never reclaimed)
//!                    READY: the payload length (0: aborted or reclaimed, consumers skip it)
//!             32..34  state: FREE 0, WRITING 1, READY 2, READING 3
//!             34..64  lap, modulo 2^30
//!
//! FREE(lap) --producer claims--> WRITING(lap, pid) --commit--> READY(lap, len)
//!    ^                                                            |
//!    +------ release ---- READING(lap - 1, pid) <--consumer claims-+    (lap + 1 on release)
//! ```
//!
//! A zeroed data area is every slot FREE on lap 0: a fresh ring.

use crate::error::{Error, Result};
use crate::layout::{MAX_CAPACITY, MAX_POSITION};
use crate::os::RingMemory;
use crate::sync::{spin_hint, spins_unless_modelled, AtomicU64, Ordering};

/// The most slots an MPMC ring has: slot stamps keep 30 bits of lap, and with at least 2^30 laps
/// between two positions that share a slot, a stale stamp can never pass for a current one.
pub(crate) const MAX_SLOTS: u64 = 1 << 30;

/// Bytes an MPMC slot of `slot_size` payload bytes occupies: an 8-byte stamp, then the payload
/// padded to 8.
pub(crate) const fn slot_stride(slot_size: u32) -> u64 {
    8 + ((slot_size as u64 + 7) & !7)
}

/// The MPMC ring's geometry rule, for a data area of `capacity` bytes holding slots of
/// `slot_size` payload bytes: a power-of-two number of slots from 2 to [`MAX_SLOTS`], in at most
/// [`MAX_CAPACITY`] bytes. Returns what is wrong.
pub(crate) fn check_geometry(capacity: u64, slot_size: u32) -> Result<(), &'static str> {
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

const FREE: u64 = 0;
const WRITING: u64 = 1;
const READY: u64 = 2;
const READING: u64 = 3;

const LAP_BITS: u32 = 30;
const LAP_MASK: u64 = (1 << LAP_BITS) - 1;

/// How many times a `try_` operation looks again at a slot that another handle is working on
/// (being written, for a consumer; being read, for a producer), spinning, before it reports the
/// ring not ready: such a slot is moments from done, and a caller told "empty" (or "full") backs
/// off, which costs more than the wait (crossbeam's queue spins there too). Bounded, as the
/// handle may have died. Under the model, none (see `spins_unless_modelled`).
const IN_PROGRESS_SPINS: u32 = spins_unless_modelled(128);

/// After losing the race for a slot for the `lost`-th time in a row, waits 2^lost spin hints (at
/// most 64) before the next try, as crossbeam's queue does: handles that retry at once keep
/// taking the contended lines from each other. Returns the new count.
///
/// Out of line: a claim that never loses (one producer and one consumer) keeps its loop as
/// before (inline, the spins cost the 1 + 1 stream a tenth of its rate).
#[cold]
#[inline(never)]
fn back_off(lost: u32) -> u32 {
    for _ in 0..spins_unless_modelled(1 << lost.min(6)) {
        spin_hint();
    }
    lost + 1
}

/// How many times a `try_` operation retries after losing a race before it reports the ring
/// not ready. Each retry means another handle made progress, so this bound is only ever reached
/// under a peer that rewrites the counters without end; it keeps a hostile peer from pinning a
/// caller in a loop.
const RETRIES: usize = 1 << 12;

#[inline]
fn pack(lap: u64, state: u64, low: u32) -> u64 {
    (lap & LAP_MASK) << 34 | state << 32 | u64::from(low)
}

/// A stamp, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub word: u64,
}

impl Stamp {
    #[inline]
    fn lap(self) -> u64 {
        self.word >> 34
    }
    #[inline]
    fn state(self) -> u64 {
        (self.word >> 32) & 3
    }
    #[inline]
    fn low(self) -> u32 {
        self.word as u32
    }
    /// The pid of the handle working on the slot, if it is being written or read.
    #[inline]
    pub(crate) fn owner(self) -> Option<u32> {
        matches!(self.state(), WRITING | READING).then_some(self.low())
    }
}

/// Where a stamp's lap stands against the lap a position expects.
enum Lap {
    Previous,
    Current,
    /// The position we read was stale: the slot is already past it.
    Later,
}

/// A claim won: the position, its slot and, for a consumer, the payload length.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Won<'m> {
    pub(crate) position: u64,
    pub(crate) len: usize,
    pub(crate) slot: SlotAt<'m>,
}

/// What a producer's or consumer's attempt found.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Claim<'m> {
    /// The slot is ours.
    Won(Won<'m>),
    /// Not now (full for a producer, empty for a consumer). `blocker` is the slot in the way,
    /// if another handle is working on it: the one to check if this persists.
    NotReady { blocker: Option<(u64, Stamp)> },
}

/// The fixed geometry of one MPMC ring, and the protocol over its memory.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slots {
    count: u64,
    shift: u32,
    /// A slot's length in words (its stamp, then its payload padded to 8 bytes).
    stride_words: u64,
    slot_size: u32,
}

/// A position's slot in the data area: its stamp, and where its payload starts. Found once per
/// claim, with one bounds check for the whole slot, so that the grant's commit or release and its
/// view of the payload reuse it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SlotAt<'m> {
    pub(crate) stamp: &'m AtomicU64,
    /// Byte offset of the payload; its `slot_size` bytes are in bounds (checked with the stamp).
    pub(crate) payload: usize,
}

impl Slots {
    /// The geometry of a data area already checked by [`check_geometry`].
    pub(crate) fn new(capacity: u64, slot_size: u32) -> Slots {
        let stride = slot_stride(slot_size);
        let count = capacity / stride;
        Slots {
            count,
            shift: count.trailing_zeros(),
            stride_words: stride / 8,
            slot_size,
        }
    }

    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    #[inline]
    pub(crate) fn slot_size(&self) -> usize {
        self.slot_size as usize
    }

    /// `position`'s slot.
    #[inline(always)]
    pub(crate) fn at<'m>(&self, mem: &'m RingMemory, position: u64) -> SlotAt<'m> {
        let word = ((position & (self.count - 1)) * self.stride_words) as usize;
        SlotAt {
            stamp: mem.record(word, self.stride_words as usize),
            payload: (word + 1) * 8,
        }
    }

    #[inline(always)]
    fn stamp<'m>(&self, mem: &'m RingMemory, position: u64) -> &'m AtomicU64 {
        self.at(mem, position).stamp
    }

    #[inline]
    fn lap_of(&self, position: u64) -> u64 {
        (position >> self.shift) & LAP_MASK
    }

    /// Compares a stamp's lap with `position`'s. Positions read from the counters may be stale
    /// (behind the truth), never ahead of it, so a stamp is on the previous lap, the current one,
    /// or any later one; a lap further behind is corruption.
    #[inline]
    fn compare(&self, stamp: Stamp, position: u64) -> Result<Lap> {
        let delta = stamp.lap().wrapping_sub(self.lap_of(position)) & LAP_MASK;
        match delta {
            0 => Ok(Lap::Current),
            LAP_MASK => Ok(Lap::Previous),
            d if d < 1 << (LAP_BITS - 1) => Ok(Lap::Later),
            _ => Err(Error::corrupted("slot lap", stamp.word, position)),
        }
    }

    /// What a first look starts from: the position `counter` gives, its lap, its slot and the
    /// slot's stamp; none for a counter beyond [`MAX_POSITION`] (the whole claim reports it).
    #[inline(always)]
    fn look<'m>(
        &self,
        mem: &'m RingMemory,
        counter: &AtomicU64,
    ) -> Option<(u64, u64, SlotAt<'m>, u64)> {
        // Relaxed: the counter is a hint; the stamp's Acquire load is what orders us (with the
        // release that freed the slot, or the commit that filled it), as in the whole claims.
        let position = counter.load(Ordering::Relaxed);
        if position > MAX_POSITION {
            return None;
        }
        let lap = self.lap_of(position);
        let slot = self.at(mem, position);
        let stamp = slot.stamp.load(Ordering::Acquire);
        Some((position, lap, slot, stamp))
    }

    /// Producer: the first look at the tail, inline: wins the slot for `pid` if it is free
    /// on the tail's lap. Anything else (full, a slot in the way, a lost race, a counter out of
    /// range) is for [`try_claim_write`](Self::try_claim_write).
    #[inline(always)]
    pub(crate) fn first_write<'m>(
        &self,
        mem: &'m RingMemory,
        tail: &AtomicU64,
        pid: u32,
    ) -> Option<Won<'m>> {
        let (position, lap, slot, stamp) = self.look(mem, tail)?;
        // Acquire on success: as the load in `look` (the CAS reads the freeing store).
        if stamp == pack(lap, FREE, 0)
            && slot
                .stamp
                .compare_exchange(
                    stamp,
                    pack(lap, WRITING, pid),
                    Ordering::Acquire,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            advance(tail, position);
            return Some(Won {
                position,
                len: 0,
                slot,
            });
        }
        None
    }

    /// Producer: claims the slot at the tail for `pid`.
    #[inline(never)]
    pub(crate) fn try_claim_write<'m>(
        &self,
        mem: &'m RingMemory,
        tail: &AtomicU64,
        pid: u32,
    ) -> Result<Claim<'m>> {
        // Relaxed: the counter is a hint; the stamp's Acquire load below is what orders us
        // after the consumer that freed the slot.
        let mut position = tail.load(Ordering::Relaxed);
        let (mut spins, mut lost) = (0, 0);
        for _ in 0..RETRIES {
            check_counter(position)?;
            let at = self.at(mem, position);
            let slot = at.stamp;
            // Acquire: pairs with the Release that freed the slot, so the previous reader's
            // reads of the payload happen before our writes.
            let stamp = Stamp {
                word: slot.load(Ordering::Acquire),
            };
            match (self.compare(stamp, position)?, stamp.state()) {
                (Lap::Current, FREE) => {
                    let claimed = pack(self.lap_of(position), WRITING, pid);
                    // Acquire on success: as the load above (the CAS reads the freeing store).
                    if slot
                        .compare_exchange(stamp.word, claimed, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
                    {
                        advance(tail, position);
                        return Ok(Claim::Won(Won {
                            position,
                            len: 0,
                            slot: at,
                        }));
                    }
                    lost = back_off(lost);
                }
                // Claimed by someone else (or long since reused): move the tail past it.
                (Lap::Current | Lap::Later, _) => help(tail, position),
                (Lap::Previous, READING) if spins < IN_PROGRESS_SPINS => {
                    // A consumer is reading the message in the way now: it is moments from
                    // free.
                    spins += 1;
                    spin_hint();
                    continue;
                }
                (Lap::Previous, WRITING | READY | READING) => {
                    return Ok(Claim::NotReady {
                        blocker: stamp.owner().map(|_| (position, stamp)),
                    })
                }
                (Lap::Previous, _) => {
                    // The tail passes a position only once its slot is claimed for that lap.
                    return Err(Error::corrupted("slot stamp", stamp.word, position));
                }
            }
            position = tail.load(Ordering::Relaxed);
        }
        Ok(Claim::NotReady { blocker: None })
    }

    /// Producer: publishes the slot it claimed at `position` with `len` payload bytes (0 aborts:
    /// consumers skip it).
    #[inline(always)]
    pub(crate) fn commit(&self, slot: SlotAt<'_>, position: u64, len: usize) {
        // Release: the payload written before this is visible to the consumer that acquires it.
        // A plain store: no one else writes a slot its live owner holds (reclaim needs the
        // owner dead).
        slot.stamp.store(
            pack(self.lap_of(position), READY, len as u32),
            Ordering::Release,
        );
    }

    /// Consumer: the first look at the head, inline: wins the slot for `pid` if it holds a
    /// message on the head's lap. Anything else is for [`try_claim_read`](Self::try_claim_read).
    #[inline(always)]
    pub(crate) fn first_read<'m>(
        &self,
        mem: &'m RingMemory,
        head: &AtomicU64,
        pid: u32,
    ) -> Option<Won<'m>> {
        let (position, lap, slot, stamp) = self.look(mem, head)?;
        let len = stamp as u32 as usize;
        // READY on this lap, with a length from 1 to the slot size (0 is an aborted slot).
        // Acquire on success: as the load in `look` (the CAS reads the commit).
        if stamp >> 32 == (lap << 2 | READY)
            && len != 0
            && len <= self.slot_size as usize
            && slot
                .stamp
                .compare_exchange(
                    stamp,
                    pack(lap, READING, pid),
                    Ordering::Acquire,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            advance(head, position);
            return Some(Won {
                position,
                len,
                slot,
            });
        }
        None
    }

    /// Consumer: claims the slot at the head for `pid`. Aborted slots are skipped (freed).
    #[inline(never)]
    pub(crate) fn try_claim_read<'m>(
        &self,
        mem: &'m RingMemory,
        head: &AtomicU64,
        pid: u32,
    ) -> Result<Claim<'m>> {
        // Relaxed: a hint, as in `try_claim_write`.
        let mut position = head.load(Ordering::Relaxed);
        let (mut spins, mut lost) = (0, 0);
        for _ in 0..RETRIES {
            check_counter(position)?;
            let at = self.at(mem, position);
            let slot = at.stamp;
            // Acquire: pairs with the commit's Release: the payload is visible.
            let stamp = Stamp {
                word: slot.load(Ordering::Acquire),
            };
            match (self.compare(stamp, position)?, stamp.state()) {
                (Lap::Current, READY) => {
                    let len = stamp.low() as usize;
                    if len > self.slot_size as usize {
                        return Err(Error::corrupted("slot length", stamp.word, position));
                    }
                    let claimed = pack(self.lap_of(position), READING, pid);
                    // Acquire on success: as the load above.
                    if slot
                        .compare_exchange(stamp.word, claimed, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
                    {
                        advance(head, position);
                        if len > 0 {
                            return Ok(Claim::Won(Won {
                                position,
                                len,
                                slot: at,
                            }));
                        }
                        self.release(at, position);
                    } else {
                        lost = back_off(lost);
                    }
                }
                (Lap::Current, WRITING) if spins < IN_PROGRESS_SPINS => {
                    // A producer is writing this slot now: it is moments from ready.
                    spins += 1;
                    spin_hint();
                    continue;
                }
                (Lap::Current, FREE | WRITING) => {
                    return Ok(Claim::NotReady {
                        blocker: stamp.owner().map(|_| (position, stamp)),
                    })
                }
                // The slot's previous reader has not let go: nothing is written here yet.
                (Lap::Previous, READING) if spins < IN_PROGRESS_SPINS => {
                    spins += 1;
                    spin_hint();
                    continue;
                }
                (Lap::Previous, READING) => {
                    return Ok(Claim::NotReady {
                        blocker: Some((position, stamp)),
                    })
                }
                (Lap::Current, _) | (Lap::Later, _) => help(head, position),
                (Lap::Previous, _) => {
                    // The head passes a position only once its slot is claimed for reading.
                    return Err(Error::corrupted("slot stamp", stamp.word, position));
                }
            }
            position = head.load(Ordering::Relaxed);
        }
        Ok(Claim::NotReady { blocker: None })
    }

    /// Consumer: frees the slot it read at `position` for the next lap's producer.
    #[inline(always)]
    pub(crate) fn release(&self, slot: SlotAt<'_>, position: u64) {
        // Release: our reads of the payload happen before the next producer's writes (it
        // acquires this). A plain store, as in `commit`.
        slot.stamp
            .store(pack(self.lap_of(position) + 1, FREE, 0), Ordering::Release);
    }

    /// Completes a slot that `blocker` found held by an owner that `is_dead` says is dead: a
    /// write in progress becomes an aborted frame (consumers skip it), a read in progress
    /// frees the slot (the message went to the consumer that died: at most once). Returns
    /// whether this call reclaimed it. The slot must still hold exactly the stamp seen, so a
    /// slot that moved on meanwhile is left alone, and of several reclaimers one wins.
    pub(crate) fn reclaim(
        &self,
        mem: &RingMemory,
        blocker: (u64, Stamp),
        is_dead: impl FnOnce(u32) -> bool,
    ) -> bool {
        let (position, stamp) = blocker;
        let Some(pid) = stamp.owner() else {
            return false;
        };
        if pid == 0 || !is_dead(pid) {
            return false;
        }
        let done = match stamp.state() {
            WRITING => pack(stamp.lap(), READY, 0),
            _ => pack(stamp.lap() + 1, FREE, 0),
        };
        // AcqRel: acquire what the dead owner wrote (nothing we read), release our decision.
        self.stamp(mem, position)
            .compare_exchange(stamp.word, done, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }
}

/// A counter read from shared memory: beyond [`MAX_POSITION`] it is corrupt (found by the
/// `attach` fuzz target: a counter of `u64::MAX` overflowed `help`).
#[inline]
fn check_counter(position: u64) -> Result<()> {
    if position > MAX_POSITION {
        return Err(Error::corrupted("ring counter", position, 0));
    }
    Ok(())
}

/// Moves a counter past `position`, whose slot we just claimed, unless someone already did:
/// a plain store, not a compare-and-swap. A store that races with a helper may set the counter
/// back to `position + 1` after it moved on; every value it takes was once the true next
/// position, so a reader of it is as a reader of a stale counter, which the protocol allows
/// (the stamps decide, and a claimed slot's stamp sends its reader on). Measured: the second
/// locked instruction of every claim was as costly as the first (see docs/PERFORMANCE.md,
/// issue 24).
#[inline]
fn advance(counter: &AtomicU64, position: u64) {
    // Relaxed: the counter is a hint, ordered with nothing.
    if counter.load(Ordering::Relaxed) == position {
        counter.store(position + 1, Ordering::Relaxed);
    }
}

/// Moves a counter from `position` to the next, unless someone already did.
#[inline]
fn help(counter: &AtomicU64, position: u64) {
    // Relaxed: the counter is a hint (see the module documentation); a failed CAS means it has
    // moved on already.
    let _ = counter.compare_exchange(position, position + 1, Ordering::Relaxed, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::Memory;
    use std::sync::Arc;

    impl Slots {
        fn commit_at(&self, mem: &RingMemory, position: u64, len: usize) {
            self.commit(self.at(mem, position), position, len);
        }
        fn release_at(&self, mem: &RingMemory, position: u64) {
            self.release(self.at(mem, position), position);
        }
    }

    fn ring(slots: u64, size: u32) -> (RingMemory, Slots, AtomicU64, AtomicU64) {
        let capacity = slots * slot_stride(size);
        let mem = RingMemory::new(Arc::new(Memory::heap(capacity as usize)));
        (
            mem,
            Slots::new(capacity, size),
            AtomicU64::new(0),
            AtomicU64::new(0),
        )
    }

    fn won(claim: Claim<'_>) -> (u64, usize) {
        match claim {
            Claim::Won(Won { position, len, .. }) => (position, len),
            other => panic!("expected a claim, got {other:?}"),
        }
    }

    #[test]
    fn fills_drains_and_laps() {
        let (mem, slots, tail, head) = ring(4, 8);
        for lap in 0..3u64 {
            for i in 0..4 {
                let (p, _) = won(slots.try_claim_write(&mem, &tail, 7).unwrap());
                assert_eq!(p, lap * 4 + i);
                slots.commit_at(&mem, p, 5);
            }
            assert!(matches!(
                slots.try_claim_write(&mem, &tail, 7).unwrap(),
                Claim::NotReady { blocker: None }
            ));
            for i in 0..4 {
                assert_eq!(
                    won(slots.try_claim_read(&mem, &head, 9).unwrap()),
                    (lap * 4 + i, 5)
                );
                slots.release_at(&mem, lap * 4 + i);
            }
            assert!(matches!(
                slots.try_claim_read(&mem, &head, 9).unwrap(),
                Claim::NotReady { blocker: None }
            ));
        }
    }

    #[test]
    fn aborted_slots_are_skipped() {
        let (mem, slots, tail, head) = ring(4, 8);
        let (a, _) = won(slots.try_claim_write(&mem, &tail, 7).unwrap());
        let (b, _) = won(slots.try_claim_write(&mem, &tail, 7).unwrap());
        slots.commit_at(&mem, a, 0);
        slots.commit_at(&mem, b, 3);
        assert_eq!(won(slots.try_claim_read(&mem, &head, 9).unwrap()), (b, 3));
    }

    #[test]
    fn a_dead_writer_is_skipped_and_a_dead_reader_freed() {
        let (mem, slots, tail, head) = ring(2, 8);
        let (stuck, _) = won(slots.try_claim_write(&mem, &tail, 1234).unwrap());
        let (next, _) = won(slots.try_claim_write(&mem, &tail, 7).unwrap());
        slots.commit_at(&mem, next, 1);
        let Claim::NotReady {
            blocker: Some(blocker),
        } = slots.try_claim_read(&mem, &head, 9).unwrap()
        else {
            panic!("the stuck slot should block");
        };
        assert_eq!(blocker.0, stuck);
        assert!(
            !slots.reclaim(&mem, blocker, |_| false),
            "live owners keep their slot"
        );
        assert!(slots.reclaim(&mem, blocker, |pid| pid == 1234));
        assert!(
            !slots.reclaim(&mem, blocker, |_| true),
            "only one reclaimer wins"
        );
        // The reader that then dies holding `next` blocks the producer a lap later.
        assert_eq!(
            won(slots.try_claim_read(&mem, &head, 4321).unwrap()),
            (next, 1)
        );
        let (p, _) = won(slots.try_claim_write(&mem, &tail, 7).unwrap());
        slots.commit_at(&mem, p, 1);
        let Claim::NotReady {
            blocker: Some(blocker),
        } = slots.try_claim_write(&mem, &tail, 7).unwrap()
        else {
            panic!("the dead reader's slot should block");
        };
        assert!(slots.reclaim(&mem, blocker, |pid| pid == 4321));
        assert!(matches!(
            slots.try_claim_write(&mem, &tail, 7).unwrap(),
            Claim::Won(_)
        ));
    }

    /// The first looks win only a slot ready for them on their lap, and leave every other case
    /// (full, empty, aborted, a slot in the way, a hostile length or counter) untouched for the
    /// whole claim.
    #[test]
    fn first_looks_win_the_plain_case_and_leave_the_rest() {
        let (mem, slots, tail, head) = ring(2, 8);
        let stamps = |mem: &RingMemory| [0, 1].map(|p| slots.stamp(mem, p).load(Ordering::Relaxed));
        assert!(slots.first_read(&mem, &head, 9).is_none(), "empty");
        let first = slots.first_write(&mem, &tail, 7).expect("a free slot");
        assert_eq!((first.position, first.len), (0, 0));
        assert_eq!(tail.load(Ordering::Relaxed), 1);
        assert!(
            slots.first_read(&mem, &head, 9).is_none(),
            "a slot being written"
        );
        slots.commit(first.slot, 0, 0);
        let aborted = stamps(&mem);
        assert!(slots.first_read(&mem, &head, 9).is_none(), "aborted");
        assert_eq!(stamps(&mem), aborted, "left for the whole claim to skip");
        assert_eq!(head.load(Ordering::Relaxed), 0);
        // The whole claim skips it (freeing it for the next lap).
        assert!(matches!(
            slots.try_claim_read(&mem, &head, 9).unwrap(),
            Claim::NotReady { blocker: None }
        ));
        let (p, _) = won(slots.try_claim_write(&mem, &tail, 7).unwrap());
        slots.commit_at(&mem, p, 8);
        let first = slots.first_read(&mem, &head, 9).expect("a message");
        assert_eq!((first.position, first.len), (1, 8));
        assert_eq!(first.slot.payload, slots.at(&mem, 1).payload);
        slots.release(first.slot, 1);
        // Full: positions 2 and 3 fill the two slots, and the first look at 4 finds the slot
        // still READY on the lap before.
        for p in 2..4 {
            let first = slots.first_write(&mem, &tail, 7).expect("room");
            assert_eq!(first.position, p);
            slots.commit(first.slot, p, 3);
        }
        let full = stamps(&mem);
        assert!(slots.first_write(&mem, &tail, 7).is_none(), "full");
        assert_eq!(stamps(&mem), full);
        // A length beyond the slot and a counter beyond MAX_POSITION: not claimed here, and the
        // whole claim reports them.
        slots
            .stamp(&mem, 2)
            .store(pack(1, READY, 9), Ordering::Relaxed);
        assert!(slots.first_read(&mem, &head, 9).is_none());
        assert!(matches!(
            slots.try_claim_read(&mem, &head, 9),
            Err(Error::Corrupted {
                what: "slot length",
                ..
            })
        ));
        head.store(MAX_POSITION + 1, Ordering::Relaxed);
        assert!(slots.first_read(&mem, &head, 9).is_none());
        assert!(matches!(
            slots.try_claim_read(&mem, &head, 9),
            Err(Error::Corrupted {
                what: "ring counter",
                ..
            })
        ));
    }

    #[test]
    fn garbage_stamps_are_corrupted() {
        let (mem, slots, tail, head) = ring(4, 8);
        // READY with a length beyond the slot.
        slots
            .stamp(&mem, 0)
            .store(pack(0, READY, 9), Ordering::Relaxed);
        assert!(matches!(
            slots.try_claim_read(&mem, &head, 9),
            Err(Error::Corrupted {
                what: "slot length",
                ..
            })
        ));
        // A lap far behind.
        slots
            .stamp(&mem, 0)
            .store(pack(LAP_MASK - 5, FREE, 0), Ordering::Relaxed);
        assert!(matches!(
            slots.try_claim_write(&mem, &tail, 7),
            Err(Error::Corrupted {
                what: "slot lap",
                ..
            })
        ));
        // A counter pushed ahead by a lap, onto slots that never were claimed.
        slots.stamp(&mem, 0).store(0, Ordering::Relaxed);
        tail.store(4, Ordering::Relaxed);
        assert!(matches!(
            slots.try_claim_write(&mem, &tail, 7),
            Err(Error::Corrupted {
                what: "slot stamp",
                ..
            })
        ));
    }
}
