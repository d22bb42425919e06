//! The counters each side of a ring publishes in its segment, for a process that is not
//! attached to read (`segments::stat`, `ringport stat`): what passed, how often the side
//! waited and slept, how often its role was taken over.
//!
//! Nothing here costs the hot path a store. The SPSC producer counts nothing: what it committed
//! is what the consumer received plus the frames still unread, which a reader walks. The SPSC
//! consumer counts runs of frames of one length from two positions, when the run ends, and
//! writes its counts with the position they count up to, under a sequence word: with every
//! sixteenth of the ring it hands back, before a blocking receive waits, and when it goes (not
//! when a `try_` form catches up, which a consumer that keeps up does about every frame). MPMC messages are counted by the ring's own tail and head; their bytes are
//! not counted (counting them cost MPMC threads a fifth of their rate: docs/PERFORMANCE.md,
//! "Counters in the segment"). MPMC handles keep their wait counts and add them to the shared
//! words before they sleep and when they go, so that a wait that ends in its spin takes no
//! locked instruction on a line every handle of the side writes. The SPSC sides write their
//! wait counts as the waits happen, with plain stores: each side has one writer.
//!
//! The words are written here and read by outside processes only; the ring's protocol never
//! reads them, so a hostile value misleads a reader and harms nothing.

use crate::error::Role;
use crate::layout::{role_index, Counters, SegmentHeader};
use crate::sync::{fence, AtomicU64, Ordering};

/// One side's counters in a segment, as the side writes them.
#[derive(Clone, Copy)]
pub(crate) struct Tally<'a> {
    line: &'a Counters,
    /// The side has one writer (SPSC): plain stores of a loaded value, no locked instruction.
    sole: bool,
}

impl<'a> Tally<'a> {
    /// The counters of `role`'s side of an SPSC ring (one writer each).
    #[inline(always)]
    pub(crate) fn sole(header: &'a SegmentHeader, role: Role) -> Tally<'a> {
        Tally {
            line: &header.counters[role_index(role)],
            sole: true,
        }
    }

    /// The counters of `role`'s side of an MPMC ring (any number of writers).
    #[inline(always)]
    pub(crate) fn shared(header: &'a SegmentHeader, role: Role) -> Tally<'a> {
        Tally {
            line: &header.counters[role_index(role)],
            sole: false,
        }
    }

    #[inline]
    fn add(self, word: &AtomicU64, n: u64) {
        // Relaxed: a count for outside readers, ordered with nothing.
        if self.sole {
            word.store(
                word.load(Ordering::Relaxed).wrapping_add(n),
                Ordering::Relaxed,
            );
        } else {
            word.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// A blocking call began to wait.
    #[inline]
    pub(crate) fn waited(self) {
        self.add(&self.line.waits, 1);
    }

    /// A wait went to sleep on the futex.
    #[inline]
    pub(crate) fn slept(self) {
        self.add(&self.line.sleeps, 1);
    }

    /// A wait's way to sleep took a membarrier.
    #[inline]
    pub(crate) fn barrier(self) {
        self.add(&self.line.barriers, 1);
    }

    /// A wait began with a stream pause.
    #[inline]
    pub(crate) fn paused(self) {
        self.add(&self.line.stream_pauses, 1);
    }

    /// The side's role was taken over from a holder that died.
    pub(crate) fn took_over(self) {
        self.add(&self.line.takeovers, 1);
    }

    /// MPMC: a handle's waits, sleeps and barriers since it last added them.
    pub(crate) fn add_waits(self, waits: u64, sleeps: u64, barriers: u64) {
        for (word, n) in [
            (&self.line.waits, waits),
            (&self.line.sleeps, sleeps),
            (&self.line.barriers, barriers),
        ] {
            if n != 0 {
                self.add(word, n);
            }
        }
    }

    /// SPSC consumer (the line's one writer): `frames` frames of `bytes` payload bytes were
    /// received and released in all, up to ring position `at`. Under the sequence word, odd
    /// while the three change, so that a reader takes them from one moment or sees that it did
    /// not ([`Passed::from_copies`]).
    #[inline]
    pub(crate) fn set_passed(self, passed: Passed) {
        debug_assert!(self.sole);
        let line = self.line;
        // Relaxed: our own word. Made odd even if a hostile peer left it odd.
        let seq = line.seq.load(Ordering::Relaxed) | 1;
        line.seq.store(seq, Ordering::Relaxed);
        // Release fence: a reader that sees any of the stores below sees the odd word (or a
        // later one), and so knows they were changing.
        fence(Ordering::Release);
        line.frames.store(passed.frames, Ordering::Relaxed);
        line.bytes.store(passed.bytes, Ordering::Relaxed);
        line.at.store(passed.at, Ordering::Relaxed);
        // Release: a reader that sees the even word sees the three values it closes.
        line.seq.store(seq.wrapping_add(1), Ordering::Release);
    }

    /// What the line says passed (its last writer's values, for a successor to go on from).
    pub(crate) fn passed(self) -> Passed {
        // Relaxed: the previous holder let go of the role before we claimed it (its Release,
        // our Acquire), or died, and its stores had reached memory by the time it was judged
        // dead.
        Passed {
            frames: self.line.frames.load(Ordering::Relaxed),
            bytes: self.line.bytes.load(Ordering::Relaxed),
            at: self.line.at.load(Ordering::Relaxed),
        }
    }
}

/// Frames passed and their payload bytes, and for the SPSC consumer the position they count
/// up to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Passed {
    pub frames: u64,
    pub bytes: u64,
    pub at: u64,
}

impl Passed {
    /// The values of `first`, two copies of a counters line taken one after the other (read
    /// with `pread`, so not atomically): if the sequence word is even in the first and the
    /// same in the second, no write began between the two, and the first copy's values are
    /// from one moment. `None` if a write was under way.
    pub(crate) fn from_copies(first: &Counters, second: &Counters) -> Option<Passed> {
        // Relaxed: copies in our own memory, which nobody writes.
        let seq = first.seq.load(Ordering::Relaxed);
        if seq % 2 == 1 || second.seq.load(Ordering::Relaxed) != seq {
            return None;
        }
        Some(
            Tally {
                line: first,
                sole: true,
            }
            .passed(),
        )
    }
}

/// Wait counts of one side, as the segment holds them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Waits {
    pub waits: u64,
    pub sleeps: u64,
    pub barriers: u64,
    pub stream_pauses: u64,
    pub takeovers: u64,
}

impl Waits {
    /// What a copy of a counters line says.
    pub(crate) fn of(line: &Counters) -> Waits {
        // Relaxed: a copy in our own memory.
        let load = |word: &AtomicU64| word.load(Ordering::Relaxed);
        Waits {
            waits: load(&line.waits),
            sleeps: load(&line.sleeps),
            barriers: load(&line.barriers),
            stream_pauses: load(&line.stream_pauses),
            takeovers: load(&line.takeovers),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_taken_while_the_counts_change_is_refused() {
        let (first, second) = (SegmentHeader::new(), SegmentHeader::new());
        let passed = Passed {
            frames: 3,
            bytes: 24,
            at: 48,
        };
        Tally::sole(&first, Role::Consumer).set_passed(passed);
        Tally::sole(&second, Role::Consumer).set_passed(passed);
        let (a, b) = (&first.counters[1], &second.counters[1]);
        assert_eq!(Passed::from_copies(a, b), Some(passed));
        // A write began after the first copy: the second's word moved on.
        Tally::sole(&second, Role::Consumer).set_passed(passed);
        assert_eq!(Passed::from_copies(a, b), None);
        // A write under way when the first copy was taken: its word is odd.
        first.counters[1].seq.store(7, Ordering::Relaxed);
        second.counters[1].seq.store(7, Ordering::Relaxed);
        assert_eq!(Passed::from_copies(a, b), None);
    }

    #[test]
    fn a_shared_side_adds_and_a_sole_side_goes_on_from_its_predecessor() {
        let header = SegmentHeader::new();
        let shared = Tally::shared(&header, Role::Producer);
        shared.add_waits(2, 1, 0);
        shared.add_waits(1, 0, 1);
        let waits = Waits::of(&header.counters[0]);
        assert_eq!((waits.waits, waits.sleeps, waits.barriers), (3, 1, 1));
        let sole = Tally::sole(&header, Role::Consumer);
        sole.waited();
        sole.waited();
        sole.took_over();
        let waits = Waits::of(&header.counters[1]);
        assert_eq!((waits.waits, waits.takeovers), (2, 1));
    }
}
