//! A subscriber: its slot in the table, its cursor, and the frames it borrows in place.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use super::table::{self, Overflow, IN_HAND, NEWEST};
use super::{overflow_of, History, SEQ_LEN};
use crate::error::{Error, Result, Role};
use crate::frame::{self, frame_size, Frame, HEADER_LEN};
use crate::layout::RingParams;
use crate::os::{Host, Kernel, RingMemory, HOST};
use crate::role::many;
use crate::role::{mark_departed, PeerStatus, RoleHold};
use crate::segment::Segment;
use crate::sync::Ordering;
use crate::wait::{Doorbell, Fences, Limit, Look, Notifier, Peer, WaitPolicy, WaitStats, Waiter};

/// How many jumps (a lap, padding) one receive follows before it calls the ring empty for now:
/// a publisher that laps us again and again would otherwise keep it going.
const MAX_JUMPS: u32 = 64;

/// One of a publish-subscribe ring's readers: it sees every message from where it joined, in
/// order, each borrowed in place ([`Sample`]) until dropped.
///
/// [`recv`](Self::recv) waits (spinning, then asleep on a futex) until a message comes;
/// [`try_recv`](Self::try_recv) fails at once with [`Error::Empty`]; `recv_timeout` gives up
/// after a while. Once the publisher has gone and everything it published has been read, they
/// fail with [`Error::PeerGone`]. A sample in hand holds back the publisher at that frame:
/// drop it promptly.
///
/// Dropping the subscriber frees its slot: the publisher no longer waits for it.
pub struct Subscriber {
    reader: Reader,
    publisher: RoleHold<Host>,
    policy: WaitPolicy,
    stats: WaitStats,
}

/// What a receive touches (the rest of the subscriber is for waiting).
struct Reader {
    mem: RingMemory,
    index: usize,
    owner: u64,
    capacity: u64,
    max_frame: u32,
    overflow: Overflow,
    fences: Fences,
    /// Where the next frame is.
    position: u64,
    /// The position our cursor says, and whether with `IN_HAND`. Under back-pressure the
    /// cursor is published lazily, a sixteenth of the ring at a time and whenever the ring
    /// runs dry, and stays pinned while frames keep coming (`table`); under overwriting it is
    /// pinned at each frame and moved on at each release.
    published: u64,
    pinned: bool,
    /// How far the cursor may lag under back-pressure.
    lag: u64,
    /// The sequence number of the next message, once one has been received.
    expected: Option<u64>,
    /// Lapped since the last message: the next one may skip sequence numbers.
    lapped: bool,
    /// Messages lost to overwriting, in all.
    lost: u64,
    notifier: Notifier<Host>,
}

/// A received message, borrowed in place. Derefs to its payload bytes.
///
/// The frame stays in the ring, untouched, until the sample is dropped; then the subscriber
/// moves on to the next one.
#[must_use = "a sample is released when dropped"]
pub struct Sample<'a> {
    reader: &'a mut Reader,
    offset: usize,
    len: usize,
    seq: u64,
    lost_before: u64,
}

impl Subscriber {
    pub(super) fn attach(
        segment: &Segment,
        history: History,
        policy: WaitPolicy,
    ) -> Result<Subscriber> {
        let mem = RingMemory::new(Arc::clone(&segment.memory));
        Subscriber::attach_memory(mem, &segment.params, history, policy)
    }

    pub(super) fn attach_memory(
        mem: RingMemory,
        params: &RingParams,
        history: History,
        policy: WaitPolicy,
    ) -> Result<Subscriber> {
        let fences = Fences::for_ring(params.flags, HOST)?;
        let (index, owner) = claim_slot(&mem, params.subscriber_slots)?;
        let slot = mem.subscriber(index);
        // Relaxed: a count for outside readers.
        slot.lost.store(0, Ordering::Relaxed);
        let start =
            start(&mem, params.capacity, history).and_then(|start| table::join(&mem, slot, start));
        let position = match start {
            Ok(position) => position,
            Err(e) => {
                many::release(&slot.holder, owner);
                return Err(e);
            }
        };
        Ok(Subscriber {
            reader: Reader {
                index,
                owner,
                capacity: params.capacity,
                max_frame: params.max_frame,
                overflow: overflow_of(params.flags),
                fences,
                position,
                published: position,
                pinned: false,
                lag: params.capacity / 16,
                expected: None,
                lapped: false,
                lost: 0,
                notifier: Notifier::fixed(fences, HOST),
                mem,
            },
            publisher: RoleHold::observer(Role::Producer, HOST),
            policy,
            stats: WaitStats::default(),
        })
    }

    /// The next message, or [`Error::Empty`] at once if none has come.
    ///
    /// # Errors
    /// [`Error::Empty`]; [`Error::PeerGone`] once the publisher has gone and everything it
    /// published has been read; [`Error::Dropped`] if a blocking publisher dropped this
    /// subscriber for stalling it; [`Error::Corrupted`] if the ring breaks its rules.
    #[inline]
    pub fn try_recv(&mut self) -> Result<Sample<'_>> {
        if let Some(found) = self.reader.next()? {
            return Ok(self.reader.sample(found));
        }
        // A busy poll's usual answer, from the publisher's role word alone (as SPSC's).
        if self.publisher.peer_is_settled(self.reader.mem.header()) {
            return Err(Error::Empty);
        }
        self.try_recv_none()
    }

    /// The empty path of `try_recv`: is the publisher gone?
    #[cold]
    #[inline(never)]
    fn try_recv_none(&mut self) -> Result<Sample<'_>> {
        if let Peer::Gone(gone) = peer_of(&self.reader.mem, &mut self.publisher, Look::Cheap) {
            // What it published before it left is still delivered.
            return match self.reader.next()? {
                Some(found) => Ok(self.reader.sample(found)),
                None => Err(gone),
            };
        }
        Err(Error::Empty)
    }

    /// The next message, waiting as long as it takes.
    ///
    /// # Errors
    /// As [`try_recv`](Self::try_recv), but never [`Error::Empty`].
    pub fn recv(&mut self) -> Result<Sample<'_>> {
        self.recv_until(Limit::Forever)
    }

    /// The next message, waiting up to `timeout`.
    ///
    /// # Errors
    /// As [`try_recv`](Self::try_recv), with [`Error::Timeout`] instead of [`Error::Empty`].
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Sample<'_>> {
        self.recv_until(Limit::After(timeout))
    }

    fn recv_until(&mut self, limit: Limit) -> Result<Sample<'_>> {
        let found = match self.reader.next()? {
            Some(found) => found,
            None => self.wait(limit)?,
        };
        Ok(self.reader.sample(found))
    }

    #[cold]
    #[inline(never)]
    fn wait(&mut self, limit: Limit) -> Result<Found> {
        let Subscriber {
            reader,
            publisher,
            policy,
            stats,
        } = self;
        let mem = reader.mem.share();
        let bell = Doorbell::data(mem.header());
        Waiter::new(bell, reader.fences, *policy, stats, HOST).wait(
            limit,
            || reader.next(),
            |look| peer_of(&mem, publisher, look),
        )
    }

    /// Copies the next message into `buf` (replacing its contents), waiting as long as it
    /// takes; returns its length.
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    pub fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        let sample = self.recv()?;
        buf.clear();
        buf.extend_from_slice(&sample);
        Ok(sample.len())
    }

    /// Messages this subscriber lost to an overwriting publisher, in all.
    #[must_use]
    pub fn lost(&self) -> u64 {
        self.reader.lost
    }

    /// The publisher's status: absent (never attached), present, or gone.
    pub fn publisher_status(&mut self) -> PeerStatus {
        self.publisher.peer_status(self.reader.mem.header())
    }

    /// How often this subscriber had to wait.
    #[must_use]
    pub fn stats(&self) -> WaitStats {
        self.stats
    }

    /// The largest message payload.
    #[must_use]
    pub fn max_message(&self) -> usize {
        self.reader.max_frame as usize - SEQ_LEN
    }

    /// This subscriber's slot in the segment's table.
    #[must_use]
    pub fn slot(&self) -> usize {
        self.reader.index
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let reader = &mut self.reader;
        many::release(&reader.mem.subscriber(reader.index).holder, reader.owner);
        // A publisher waiting for us looks again.
        Doorbell::space(reader.mem.header()).ring(&mut reader.notifier);
    }
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("slot", &self.reader.index)
            .field("position", &self.reader.position)
            .field("lost", &self.reader.lost)
            .finish_non_exhaustive()
    }
}

/// A frame found: its payload's data-area offset and length, its sequence number, and how many
/// messages were lost just before it.
type Found = (usize, usize, u64, u64);

impl Reader {
    /// Looks for the next frame once (following padding and laps): `None` if there is none yet.
    #[inline]
    fn next(&mut self) -> Result<Option<Found>> {
        let mask = self.capacity - 1;
        for _ in 0..MAX_JUMPS {
            let at = self.position;
            let slot = self.mem.subscriber(self.index);
            let overwrite = self.overflow == Overflow::Overwrite;
            if overwrite {
                // The frame at `at` pinned before OLDEST is read: then a reclaim that our load
                // misses sees the pin (`table`).
                if !self.pinned {
                    self.published = at;
                    // Relaxed: the light fence below orders it before the load of OLDEST.
                    slot.cursor.store(at | IN_HAND, Ordering::Relaxed);
                    self.pinned = true;
                }
                table::light_fence(self.fences);
                let oldest = table::oldest(&self.mem)?;
                if at < oldest {
                    self.position = oldest;
                    self.pinned = false;
                    self.lapped = true;
                    continue;
                }
            }
            // Acquire: the payload is visible once the header is.
            let word = self
                .mem
                .frame_word((at & mask) as usize)
                .load(Ordering::Acquire);
            let found = frame::decode(word, at, self.capacity, self.max_frame);
            // Under back-pressure the pin (everything from the published cursor on) goes up
            // once there is a frame to read, so that polling an empty ring stores nothing, and
            // the owner word is read after it: attached then, we are protected by the cursor
            // until now and by the pin from now on (`table`). A dropped subscriber's frame may
            // be overwritten: whatever its header says, the drop is what to report.
            if !overwrite && found != Ok(Frame::Empty) {
                if !self.pinned {
                    // Relaxed: the light fence in `still_attached` orders it before the load.
                    slot.cursor
                        .store(self.published | IN_HAND, Ordering::Relaxed);
                    self.pinned = true;
                }
                if !table::still_attached(slot, self.owner, self.fences) {
                    self.unpin();
                    return Err(Error::Dropped);
                }
            }
            match found? {
                Frame::Empty => {
                    // Not pinned while away: an idle pin would hold back the publisher once it
                    // comes round again.
                    let dropped = self.overflow == Overflow::Block
                        && !many::still_attached(&slot.holder, self.owner);
                    self.unpin();
                    return if dropped {
                        Err(Error::Dropped)
                    } else {
                        Ok(None)
                    };
                }
                Frame::Pad => {
                    self.position = at + self.capacity - (at & mask);
                    // Under back-pressure the pin from the published cursor covers the next
                    // lap too.
                    self.pinned &= self.overflow == Overflow::Block;
                }
                Frame::Data(len) => return self.data(at, len).map(Some),
            }
        }
        Ok(None)
    }

    /// Publishes the cursor at `position`, unpinned: the ring ran dry (or we were dropped).
    /// A publisher waiting for room looks again if it moved.
    #[inline(always)]
    fn unpin(&mut self) {
        if self.pinned || self.published != self.position {
            let moved = self.published != self.position;
            self.published = self.position;
            // Release: our reads of the frames behind it come before the publisher's writes
            // over them.
            self.mem
                .subscriber(self.index)
                .cursor
                .store(self.position, Ordering::Release);
            self.pinned = false;
            if moved {
                Doorbell::space(self.mem.header()).ring(&mut self.notifier);
            }
        }
    }

    /// The data frame of `len` bytes at `at`: its sequence number checked against the last.
    #[inline(always)]
    fn data(&mut self, at: u64, len: usize) -> Result<Found> {
        if len < SEQ_LEN {
            return Err(Error::corrupted("message frame length", len as u64, at));
        }
        let offset = (at & (self.capacity - 1)) as usize + HEADER_LEN;
        // SAFETY: a published frame, inside the data area (its header was checked against the
        // capacity), which no publisher writes while our pin holds it.
        let bytes = unsafe { self.mem.slice_unchecked(offset, SEQ_LEN) };
        let seq = u64::from_le_bytes(bytes.try_into().expect("eight bytes"));
        let mut lost_before = 0;
        if let Some(expected) = self.expected {
            if seq != expected {
                if !(self.lapped && seq > expected) {
                    return Err(Error::corrupted("message sequence", seq, at));
                }
                lost_before = seq - expected;
                self.lost += lost_before;
                // Relaxed: a count for outside readers.
                self.mem
                    .subscriber(self.index)
                    .lost
                    .store(self.lost, Ordering::Relaxed);
            }
        }
        self.lapped = false;
        Ok((offset + SEQ_LEN, len - SEQ_LEN, seq, lost_before))
    }

    #[inline(always)]
    fn sample(&mut self, (offset, len, seq, lost_before): Found) -> Sample<'_> {
        Sample {
            reader: self,
            offset,
            len,
            seq,
            lost_before,
        }
    }

    /// Lets the frame at the cursor go: the cursor moves past it (under overwriting at once and
    /// unpinned; under back-pressure once it lags a sixteenth of the ring, still pinned), with
    /// Release (our reads of the frames behind it come before the publisher's writes over
    /// them), and a publisher that waits for room looks again.
    #[inline(always)]
    fn release(&mut self, len: usize, seq: u64) {
        let next = self.position + frame_size(len + SEQ_LEN) as u64;
        self.position = next;
        self.expected = Some(seq.wrapping_add(1));
        if self.overflow == Overflow::Block && next - self.published < self.lag {
            return;
        }
        self.publish_cursor_slow(next);
    }

    /// `release`'s store of the cursor and ring of the publisher's bell: every frame under
    /// overwriting, a sixteenth of the ring at a time under back-pressure. Out of line, so that
    /// a sample's drop stays small enough to inline.
    #[inline(never)]
    fn publish_cursor_slow(&mut self, next: u64) {
        let cursor = match self.overflow {
            Overflow::Overwrite => {
                self.pinned = false;
                next
            }
            Overflow::Block => next | IN_HAND,
        };
        self.published = next;
        self.mem
            .subscriber(self.index)
            .cursor
            .store(cursor, Ordering::Release);
        Doorbell::space(self.mem.header()).ring(&mut self.notifier);
    }
}

impl Sample<'_> {
    /// The message's sequence number: its place among everything the publishers of this ring
    /// have published, from 0.
    #[must_use]
    #[inline]
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// How many messages this subscriber lost to overwriting just before this one (0 but
    /// under [`Overflow::Overwrite`](super::Overflow::Overwrite)).
    #[must_use]
    #[inline]
    pub fn lost_before(&self) -> u64 {
        self.lost_before
    }
}

impl Deref for Sample<'_> {
    type Target = [u8];
    #[inline(always)]
    fn deref(&self) -> &[u8] {
        // SAFETY: a published frame's payload, inside the data area, pinned by our cursor:
        // the publisher does not write it while the sample lives.
        unsafe { self.reader.mem.slice_unchecked(self.offset, self.len) }
    }
}

impl Drop for Sample<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        self.reader.release(self.len, self.seq);
    }
}

impl std::fmt::Debug for Sample<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sample")
            .field("seq", &self.seq)
            .field("len", &self.len)
            .field("lost_before", &self.lost_before)
            .finish()
    }
}

/// Claims a free subscriber slot: one pass taking only free ones, then one judging holders.
fn claim_slot(mem: &RingMemory, slots: u32) -> Result<(usize, u64)> {
    let mut check = <Host as Kernel>::Check::default();
    for judge in [false, true] {
        for index in 0..mem.subscriber_slots() {
            if let Some((owner, _)) =
                many::claim(&mem.subscriber(index).holder, HOST, &mut check, judge)
            {
                return Ok((index, owner));
            }
        }
    }
    Err(Error::NoFreeSlot { slots })
}

/// Where a new subscriber would like to start.
fn start(mem: &RingMemory, capacity: u64, history: History) -> Result<u64> {
    let oldest = table::oldest(mem)?;
    if history == History::Oldest {
        return Ok(oldest);
    }
    // Relaxed: the frame it names is validated when it is read.
    let newest = mem.header().positions[NEWEST].load(Ordering::Relaxed);
    match newest.checked_sub(1) {
        Some(at) if at % 8 == 0 && at >= oldest && at < oldest + capacity => Ok(at),
        _ => Ok(oldest),
    }
}

/// The publisher as a subscriber's wait sees it (see `RoleHold::peer`): the notice marks its
/// role departed and rings the data bell.
fn peer_of(mem: &RingMemory, publisher: &mut RoleHold<Host>, look: Look) -> Peer {
    publisher.peer(mem.header(), look, |word| {
        let memory = mem.share();
        Arc::new(move || {
            let header = memory.header();
            mark_departed(header, Role::Producer, word);
            Doorbell::data(header).ring_fixed(Fences::Symmetric, HOST);
        })
    })
}
