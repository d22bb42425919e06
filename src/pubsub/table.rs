//! The subscriber table's protocol: how a subscriber says where it reads and which frame it has
//! in hand, and how the publisher learns from it how far it may write. No system call of its
//! own (the publisher's barrier is the kernel's).
//!
//! Each subscriber slot has a `cursor` word: the ring position of the next frame its holder
//! reads, with bit 0 ([`IN_HAND`]) set while the holder may be reading the frame there. The
//! header's `positions[OLDEST]` is the publisher's: the oldest frame it has not reclaimed.
//!
//! **Back-pressure** (block on the slowest): the publisher never writes over a frame at or after
//! the cursor of an attached subscriber, which therefore never checks `OLDEST` on its way.
//! **Overwrite**: the publisher reclaims frames a quarter ring at a time whoever has not read
//! them, except a frame in hand. Both rest on one exchange, a store-then-load on each side:
//!
//! ```text
//! subscriber (receive)                  publisher (reclaim up to `target`)
//!   cursor = R | IN_HAND                  OLDEST = target
//!   light fence                           barrier
//!   load OLDEST: R < it? lapped           load every cursor: in hand below target? keep it
//! ```
//!
//! The barrier is a membarrier where the ring's fences are asymmetric (then the subscriber's
//! fence is a compiler fence: nothing on its hot path) and a SeqCst fence where they are
//! symmetric (then the subscriber's is one too). Either way, a subscriber whose load missed the
//! new `OLDEST` stored its pin before the publisher's barrier, so the publisher's load sees it.
//!
//! A stalled subscriber is dropped the same way: the publisher marks its slot DROPPED, takes
//! the barrier, then reads its cursor; the subscriber, having found a frame, sets `IN_HAND`
//! (under back-pressure it then covers everything from the cursor on, and stays set while frames
//! keep coming, the cursor itself published a sixteenth of the ring at a time), takes the
//! light fence and checks its owner word before handing the frame out. Attached at that check,
//! it was protected by its cursor until then, and the publisher's scan after any later drop
//! sees the pin. A frame it already has in hand stays protected until it lets go of it.
//!
//! A joining subscriber publishes its cursor, fences, and reads `OLDEST` again until its cursor
//! is not behind it: from then on every reclaim sees it (see [`join`]).

use crate::error::{Error, Result};
use crate::layout::{SubscriberSlot, MAX_POSITION};
use crate::os::{Kernel, RingMemory};
use crate::role::many::{self, Holder};
use crate::sync::{compiler_fence, fence, Ordering};
use crate::wait::Fences;

/// Bit 0 of a cursor: the frame at the cursor may be in its holder's hands.
pub(super) const IN_HAND: u64 = 1;

/// The index of the newest frame's position (plus one; 0: none yet) in the header's positions.
pub(super) const NEWEST: usize = 0;
/// The index of the oldest frame not reclaimed.
pub(super) const OLDEST: usize = 1;

/// The subscriber's side of the exchange: orders its pin before its next load. A compiler fence
/// where the publisher takes a membarrier, a SeqCst fence where it cannot.
#[inline(always)]
pub(super) fn light_fence(fences: Fences) {
    match fences {
        Fences::Asymmetric => compiler_fence(Ordering::SeqCst),
        Fences::Symmetric => fence(Ordering::SeqCst),
    }
}

/// The publisher's side of the exchange.
pub(super) fn heavy_fence(fences: Fences, kernel: impl Kernel) {
    match fences {
        Fences::Asymmetric => kernel.global_barrier(),
        Fences::Symmetric => fence(Ordering::SeqCst),
    }
}

/// Reads `OLDEST`, checked.
///
/// # Errors
/// [`Error::Corrupted`] if it is not a position.
#[inline(always)]
pub(super) fn oldest(mem: &RingMemory) -> Result<u64> {
    // Acquire: the publisher stores it after the frames from it on are written (its walk read
    // them), so a subscriber that starts there sees them published.
    let oldest = mem.header().positions[OLDEST].load(Ordering::Acquire);
    if oldest % 8 != 0 || oldest > MAX_POSITION {
        return Err(Error::corrupted("oldest position", oldest, 0));
    }
    Ok(oldest)
}

/// Where a joining subscriber starts, and its cursor published so that every later reclaim
/// respects it: `start` is where it would like to begin (the newest frame, or the oldest); it
/// begins there unless the publisher has reclaimed it meanwhile, then at `OLDEST`. The fences
/// here are real on both sides (a join is rare): the exchange above, with `publish` for the
/// subscriber's pin.
///
/// # Errors
/// [`Error::Corrupted`] if `OLDEST` does not settle (a hostile publisher moving it on and on).
pub(super) fn join(mem: &RingMemory, slot: &SubscriberSlot, start: u64) -> Result<u64> {
    let mut position = start;
    for _ in 0..64 {
        // Relaxed: the fence below orders it before the load of OLDEST.
        slot.cursor.store(position, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        let oldest = oldest(mem)?;
        if position >= oldest {
            return Ok(position);
        }
        position = oldest;
    }
    Err(Error::corrupted("oldest position", position, 0))
}

/// A subscriber's check, after reading a header and before handing its frame out, that the
/// publisher has not dropped it (see the module documentation).
#[inline(always)]
pub(super) fn still_attached(slot: &SubscriberSlot, owner: u64, fences: Fences) -> bool {
    // The header's Acquire load came first, and the light fence (a compiler fence where the
    // publisher's barrier does the rest) keeps this load after it.
    light_fence(fences);
    many::still_attached(&slot.holder, owner)
}

/// How the publisher reclaims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Overflow {
    /// Never past an attached subscriber's cursor.
    Block,
    /// Past anyone's, but never over a frame in hand.
    Overwrite,
}

/// What one scan of the table found: where the publisher may write up to, and the slot that
/// holds it back most (its index and owner word), if any does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Scan {
    /// The lowest position that a subscriber still needs: the publisher may write up to it
    /// plus the capacity.
    pub floor: u64,
    /// The slot that set `floor` below the target, with its owner word and whether it is an
    /// attached subscriber's cursor (true) or a frame in hand (false).
    pub blocker: Option<(usize, u64, bool)>,
    /// Attached subscribers seen.
    pub attached: u32,
}

/// The publisher's scan after it has published `target` as `OLDEST` and taken the barrier:
/// the floor is the lowest attached cursor (back-pressure) and the lowest frame in hand, taken
/// at `target` if none is lower. `tail` is where the publisher writes next: a cursor beyond it
/// is a hostile one.
///
/// # Errors
/// [`Error::Corrupted`] for a cursor that is no position or lies beyond the tail.
pub(super) fn scan(mem: &RingMemory, overflow: Overflow, target: u64, tail: u64) -> Result<Scan> {
    let mut found = Scan {
        floor: target,
        blocker: None,
        attached: 0,
    };
    for index in 0..mem.subscriber_slots() {
        let slot = mem.subscriber(index);
        let Holder::Held { word, dropped } = many::holder(&slot.holder) else {
            continue;
        };
        // Acquire: pairs with the subscriber's Release when it lets a frame go, so its reads of
        // that frame come before our writes over it.
        let cursor = slot.cursor.load(Ordering::Acquire);
        let position = cursor & !IN_HAND;
        if position > tail || position > MAX_POSITION {
            return Err(Error::corrupted("subscriber cursor", cursor, tail));
        }
        if !dropped {
            found.attached += 1;
        }
        let waited_for = overflow == Overflow::Block && !dropped;
        let in_hand = cursor & IN_HAND != 0;
        if (waited_for || in_hand) && position < found.floor {
            found.floor = position;
            found.blocker = Some((index, word, waited_for));
        }
    }
    Ok(found)
}

/// Attached subscribers now, for whoever asks.
pub(super) fn attached(mem: &RingMemory) -> usize {
    (0..mem.subscriber_slots())
        .filter(|&index| {
            matches!(
                many::holder(&mem.subscriber(index).holder),
                Holder::Held { dropped: false, .. }
            )
        })
        .count()
}
