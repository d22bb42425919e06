//! The consumer's private view of an SPSC ring: where the next frame starts, and how much of
//! what it has read it has told the producer about; the arithmetic of polling a frame's header,
//! skipping padding, draining a batch and handing space back. Kept in the endpoint, never in
//! shared memory; no system call but the wake of a sleeping producer, through the notifier.

use super::CONSUMER_POS;
use crate::counters::{Passed, Tally};
use crate::error::{Error, Result, Role};
use crate::frame::{self, frame_size, Frame, HEADER_LEN};
use crate::layout::{RingParams, MAX_POSITION};
use crate::os::{Kernel, RingMemory};
use crate::sync::Ordering;
use crate::wait::{Doorbell, Notifier};

/// The consumer's private view: where the next frame starts, and how much of what it has read
/// it has told the producer about.
pub(super) struct ReadCursor {
    pub(super) position: u64,
    /// The position last stored for the producer; frames before it are free space.
    pub(super) published: u64,
    /// Once `position` reaches this, we publish: `published + release_every`, kept as a sum
    /// so that the check on every frame is one compare.
    release_at: u64,
    /// The capacity less one: what every frame's offset needs.
    mask: u64,
    max_frame: u32,
    /// How far `position` runs ahead of `published` before we publish (a sixteenth of the ring).
    release_every: u64,
    /// The last frame read: its header word without the stamp (its low half is the length),
    /// its size in the ring, and the last offset at which a frame of that size fits in the lap
    /// (a 1-byte frame before the first: any valid length will do). Both derive from the
    /// length, but deriving them on every frame cost the 8-byte streams some percent
    /// (docs/PERFORMANCE.md, "The reader's cached frame").
    last_head: u64,
    last_size: u64,
    last_fit: u64,
    /// Where the last blocking wait began: a wait that begins more than one frame past it
    /// follows the draining of a stream (see [`ReadCursor::drained_a_stream`]).
    waited_at: u64,
    /// Frames received and released over the ring's life, up to `run_start`, and their payload
    /// bytes: written to the segment's counters with each publish (see `counters`).
    frames: u64,
    bytes: u64,
    /// Where the run of frames of the last length began: every frame from here to `position`
    /// has that length, so the run is counted from the two positions when it ends (a new
    /// length, padding, a publish) and the frames cost nothing each ([`ReadCursor::fold`]).
    run_start: u64,
    /// The position the segment's counts were last written at.
    counted_at: u64,
}

impl ReadCursor {
    fn new(position: u64, capacity: u64, max_frame: u32) -> ReadCursor {
        // At least one 8-byte slot: few stores, little space held.
        let release_every = (capacity / 16).max(8);
        let mut cursor = ReadCursor {
            position,
            published: position,
            release_at: position + release_every,
            mask: capacity - 1,
            max_frame,
            release_every,
            last_head: 0,
            last_size: 0,
            last_fit: 0,
            waited_at: position,
            frames: 0,
            bytes: 0,
            run_start: position,
            counted_at: position,
        };
        cursor.remember(1);
        cursor
    }

    /// Where a consumer that attaches to `region` reads: right after the last frame the last
    /// consumer received, and that frame, with its length, if the last consumer may have had it
    /// in hand when it went: handed out, and not known to be released (it released it for sure
    /// once it received another frame or handed its space back). `redeliver`: start at that
    /// frame rather than after it. The caller publishes the position (`publish`), which may be
    /// ahead of the one published: a consumer publishes in batches, but records in the ledger
    /// every frame it hands out.
    ///
    /// # Errors
    /// [`Error::Corrupted`] if the positions or the frame in hand break the ring's rules.
    pub(super) fn resume(
        region: &RingMemory,
        params: &RingParams,
        redeliver: bool,
    ) -> Result<(ReadCursor, Option<(u64, usize)>)> {
        let header = region.header();
        // Acquire: the previous consumer's last store before it let go of the role.
        let published = header.positions[CONSUMER_POS].load(Ordering::Acquire);
        if published % 8 != 0 || published > MAX_POSITION {
            return Err(Error::corrupted("consumer position", published, 0));
        }
        // Relaxed: written by the previous consumer alone, which let go of the role before we
        // claimed it (its Release, our Acquire) or died: then the kernel saw it die before
        // anyone could judge it dead, and its stores had reached memory.
        let received = header.ledger.received.load(Ordering::Relaxed);
        let in_hand = match received.checked_sub(1) {
            Some(at) if at >= published => {
                if at % 8 != 0 || at - published >= params.capacity {
                    return Err(Error::corrupted("received position", received, published));
                }
                let word = region.frame_word((at & (params.capacity - 1)) as usize);
                match frame::decode(
                    word.load(Ordering::Acquire),
                    at,
                    params.capacity,
                    params.max_frame,
                )? {
                    Frame::Data(len) => Some((at, len)),
                    _ => return Err(Error::corrupted("received frame", received, published)),
                }
            }
            _ => None,
        };
        let start = match in_hand {
            Some((at, _)) if redeliver => at,
            Some((at, len)) => at + frame_size(len) as u64,
            None => published,
        };
        let mut cursor = ReadCursor::new(start, params.capacity, params.max_frame);
        cursor.published = published;
        let counted = counted_up_to(region, params, start);
        (cursor.frames, cursor.bytes) = (counted.frames, counted.bytes);
        // Not where the segment's counts stand (unless nothing was received since): the caller
        // writes them.
        cursor.counted_at = counted.at.wrapping_sub(1);
        Ok((cursor, in_hand))
    }

    /// The data-area offset of the next frame's payload (of the frame `poll` just found).
    #[inline(always)]
    pub(super) fn payload_offset(&self) -> usize {
        (self.position & self.mask) as usize + HEADER_LEN
    }

    /// Called as a blocking receive begins to wait: whether more than one frame was received
    /// since the last wait began, that is, whether we are keeping up with a stream (one frame
    /// per wait is a request and its reply, or a producer slower than we are).
    pub(super) fn drained_a_stream(&mut self) -> bool {
        // `last_size` is the size of the last frame read (of a 1-byte frame before any): past
        // `waited_at` by more than that, we read at least two.
        let streamed = self.position - self.waited_at > self.last_size;
        self.waited_at = self.position;
        streamed
    }

    fn capacity(&self) -> u64 {
        self.mask + 1
    }

    /// Counts the run of frames of the last length that ends at `position` (see `run_start`).
    /// Counting each frame as it went cost the 8-byte streams' reader a tenth of its rate
    /// (docs/PERFORMANCE.md, "Counters in the segment").
    #[inline(always)]
    fn fold(&mut self) {
        let span = self.position - self.run_start;
        // One frame (a stream of changing lengths) needs no division.
        // Wrapping: the counts a successor goes on from came from shared memory, and a hostile
        // value must not make an add overflow.
        if span == self.last_size {
            self.frames = self.frames.wrapping_add(1);
            // The low half of the header word is the length.
            self.bytes = self.bytes.wrapping_add(u64::from(self.last_head as u32));
            self.run_start = self.position;
        } else if span != 0 {
            self.fold_run_slow(span);
        }
    }

    /// `fold` for a run of more than one frame.
    #[cold]
    #[inline(never)]
    fn fold_run_slow(&mut self, span: u64) {
        let frames = span / self.last_size;
        self.frames = self.frames.wrapping_add(frames);
        self.bytes = self
            .bytes
            .wrapping_add(frames.wrapping_mul(u64::from(self.last_head as u32)));
        self.run_start = self.position;
    }

    #[inline(always)]
    fn remember(&mut self, len: usize) {
        self.fold();
        // Valid lengths fit in u32: `decode` checked len <= max_frame.
        self.last_head = frame::data_header(len as u32, 0);
        self.last_size = frame_size(len) as u64;
        self.last_fit = self.capacity() - self.last_size;
    }

    /// The payload length of the next frame if one is published.
    #[inline(always)]
    pub(super) fn poll<K: Kernel>(
        &mut self,
        region: &RingMemory,
        notifier: &mut Notifier<K>,
    ) -> Result<Option<usize>> {
        // In locals, read before the Acquire load: after it, the compiler would read them again.
        let position = self.position;
        let offset = position & self.mask;
        let expected = self.last_head | frame::stamp(position);
        // Acquire: pairs with the producer's Release of this word; the payload and the zeroed
        // next header are visible once we see it.
        let word = region.frame_word(offset as usize).load(Ordering::Acquire);
        // Streams mostly repeat one length. If this frame has the last one's, the length we
        // return, and so the address of the next header, come from our own state, not from the
        // loaded word: the word only decides a well-predicted branch. The CPU then runs ahead
        // into the next frames while this load is still in flight, instead of chasing one
        // header at a time. The checks are those of `decode` for a length already validated.
        if word == expected && offset <= self.last_fit {
            received(region, position);
            return Ok(Some(expected as u32 as usize));
        }
        match frame::decode(word, position, self.capacity(), self.max_frame) {
            Ok(Frame::Data(len)) => {
                self.remember(len);
                received(region, position);
                Ok(Some(len))
            }
            other => self.poll_slow(region, notifier, other),
        }
    }

    /// Hands up to `max` frames that are published now to `f`, in order, each freed when `f`
    /// returns; returns how many. An error is returned only if no frame came before it: after
    /// one, the batch ends there and the next call meets the error again.
    ///
    /// The loop keeps the position and the expected header in locals: the cursor sits behind a
    /// pointer, and every Acquire load would make the compiler reload it from memory. The one
    /// store per frame puts the position back, so that a panic in `f` loses nothing.
    #[inline(always)]
    pub(super) fn drain<K: Kernel>(
        &mut self,
        region: &RingMemory,
        notifier: &mut Notifier<K>,
        max: usize,
        f: &mut impl FnMut(&[u8]),
    ) -> Result<usize> {
        let mask = self.mask;
        let mut position = self.position;
        let mut release_at = self.release_at;
        let (mut head, mut last_fit) = (self.last_head, self.last_fit);
        let mut handed = 0;
        while handed < max {
            // Acquire: as in `poll`.
            let word = region
                .frame_word((position & mask) as usize)
                .load(Ordering::Acquire);
            let len = if word == head | frame::stamp(position) && position & mask <= last_fit {
                received(region, position);
                head as u32 as usize
            } else {
                // Anything but another frame of the last length: the general path, on the
                // cursor itself.
                self.position = position;
                let len = match self.poll(region, notifier) {
                    Ok(Some(len)) => len,
                    Ok(None) => break,
                    Err(e) if handed == 0 => return Err(e),
                    Err(_) => break,
                };
                position = self.position;
                release_at = self.release_at;
                (head, last_fit) = (self.last_head, self.last_fit);
                len
            };
            let offset = (position & mask) as usize + HEADER_LEN;
            // SAFETY: the frame was validated as in `poll` (published, inside the data area);
            // the producer does not write it before we publish a position past it, which we do
            // only after `f` returns, and `&mut self` keeps our side from doing anything else.
            let frame = unsafe { region.slice_unchecked(offset, len) };
            position += frame_size(len) as u64;
            self.position = position;
            f(frame);
            handed += 1;
            if position >= release_at {
                self.hand_back_slow(region, notifier);
                release_at = self.release_at;
            }
        }
        Ok(handed)
    }

    /// Empty, padding or an error.
    #[cold]
    #[inline(never)]
    fn poll_slow<K: Kernel>(
        &mut self,
        region: &RingMemory,
        notifier: &mut Notifier<K>,
        first: Result<Frame>,
    ) -> Result<Option<usize>> {
        let mut frame = first?;
        if frame == Frame::Pad {
            self.fold();
            let skipped = self.capacity() - (self.position & self.mask);
            self.position += skipped;
            self.run_start = self.position;
            // Padding is not a frame received: a request and its reply across the lap's end are
            // still one frame per wait.
            self.waited_at += skipped;
            let word = region.frame_word(0).load(Ordering::Acquire);
            // Padding cannot start a lap, so `decode` refuses a second one: no loop here.
            frame = frame::decode(word, self.position, self.capacity(), self.max_frame)?;
        }
        match frame {
            Frame::Data(len) => {
                self.remember(len);
                received(region, self.position);
                Ok(Some(len))
            }
            Frame::Empty | Frame::Pad => {
                // Caught up: free everything, so the producer never waits on space we hold.
                self.publish(region, notifier);
                Ok(None)
            }
        }
    }

    /// Frees the frame just read (`poll` remembered its size). Space is handed back in batches:
    /// publishing our position on every frame would bounce its cache line, and in a full ring
    /// the producer would write the very line we are reading (it trails us by one frame).
    /// Batches keep it lines away.
    #[inline(always)]
    pub(super) fn release<K: Kernel>(&mut self, region: &RingMemory, notifier: &mut Notifier<K>) {
        self.position += self.last_size;
        if self.position >= self.release_at {
            self.hand_back_slow(region, notifier);
        }
    }

    /// What a release or a drain does once a sixteenth of the ring is read: counts it in the
    /// segment and hands it back. Out of line: once per sixteenth.
    #[cold]
    #[inline(never)]
    fn hand_back_slow<K: Kernel>(&mut self, region: &RingMemory, notifier: &mut Notifier<K>) {
        self.count_slow(region);
        self.publish(region, notifier);
    }

    /// Writes what was received up to our position to the segment's counters (see
    /// `counters`), if anything was since the last time: with the hand-back of every
    /// sixteenth of the ring, before a blocking receive waits, and when the consumer goes. Not
    /// when a `try_` form catches up, which a consumer that keeps up with a stream does about
    /// every frame. Out of line, so that the release that calls it stays small enough to
    /// inline.
    #[cold]
    #[inline(never)]
    pub(super) fn count_slow(&mut self, region: &RingMemory) {
        if self.counted_at == self.position {
            return;
        }
        self.counted_at = self.position;
        self.fold();
        Tally::sole(region.header(), Role::Consumer).set_passed(Passed {
            frames: self.frames,
            bytes: self.bytes,
            at: self.position,
        });
    }

    /// Frees everything before our position to the producer.
    #[inline]
    pub(super) fn publish<K: Kernel>(&mut self, region: &RingMemory, notifier: &mut Notifier<K>) {
        if self.published == self.position {
            return;
        }
        self.published = self.position;
        self.release_at = self.position + self.release_every;
        // Release: our reads of the freed frames happen before the producer's reuse of them.
        region.header().positions[CONSUMER_POS].store(self.position, Ordering::Release);
        Doorbell::space(region.header()).ring(notifier);
    }
}

/// What the segment's counters say passed up to ring position `start`, where a consumer that
/// attaches begins: the last consumer's counts, as of the position it last published them at,
/// and the frames from there to `start` (which it received but did not count in the segment:
/// it died first). Those frames are intact, as the producer writes nothing past the position
/// published. Counts are for outside readers alone: a walk that meets anything but a frame
/// stops, and the counts go on from there.
fn counted_up_to(region: &RingMemory, params: &RingParams, start: u64) -> Passed {
    let mut counted = Tally::sole(region.header(), Role::Consumer).passed();
    let capacity = params.capacity;
    if counted.at > start || start - counted.at > capacity || counted.at % 8 != 0 {
        return counted;
    }
    super::walk_published(
        region,
        params,
        counted.at,
        start,
        // Wrapping: the counts came from shared memory.
        |_, len| {
            counted.frames = counted.frames.wrapping_add(1);
            counted.bytes = counted.bytes.wrapping_add(len as u64);
        },
    );
    counted
}

/// Records in the ledger that the frame at `position` is handed out, and so that every frame
/// before it is released: for a successor, should we die (see `ReadCursor::resume`). The one
/// store per frame that takeover costs; a second, at release, to know whether a frame was still
/// in hand, cost a busy reader too much (docs/PERFORMANCE.md, "The ledger").
#[inline(always)]
fn received(region: &RingMemory, position: u64) {
    // Relaxed: read only by a successor (see `resume`). A store to a line nobody else reads
    // stays in our cache: no traffic between the cores (docs/PERFORMANCE.md, "The ledger").
    region
        .header()
        .ledger
        .received
        .store(position + 1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::layout::KIND_SPSC;
    use crate::os::fake::FakeKernel;
    use crate::os::Memory;
    use crate::spsc::write_cursor::WriteCursor;
    use crate::wait::Fences;

    fn ring(capacity: u64) -> (RingMemory, RingParams) {
        let params = RingParams {
            kind: KIND_SPSC,
            capacity,
            max_frame: 100,
            flags: 0,
            subscriber_slots: 0,
            message: Default::default(),
        };
        let memory = RingMemory::new(Arc::new(Memory::heap(capacity as usize)));
        (memory, params)
    }

    /// Writes a frame of `len` bytes, each `byte`, as the producer does; false if it is full.
    fn send(writer: &mut WriteCursor, region: &RingMemory, len: usize, byte: u8) -> bool {
        if !writer.claim(region, len).unwrap() {
            return false;
        }
        let (position, offset) = (writer.position, writer.offset());
        // SAFETY: claimed by the writer, not yet published.
        unsafe { region.slice_mut(offset + HEADER_LEN, len) }.fill(byte);
        writer.publish(region, position, offset, len);
        true
    }

    fn freed(region: &RingMemory) -> u64 {
        region.header().positions[CONSUMER_POS].load(Ordering::Relaxed)
    }

    #[test]
    fn frames_arrive_in_order_and_space_goes_back_in_sixteenths_and_when_caught_up() {
        let kernel = FakeKernel::new();
        let mut notifier = Notifier::fixed(Fences::Symmetric, &kernel);
        let (region, params) = ring(4096);
        let mut writer = WriteCursor::resume(&region, &params).unwrap().0;
        let mut reader = ReadCursor::resume(&region, &params, false).unwrap().0;
        assert_eq!(reader.poll(&region, &mut notifier).unwrap(), None);
        for i in 0..20u8 {
            assert!(send(&mut writer, &region, 8, i));
        }
        for i in 0..20u8 {
            assert_eq!(reader.poll(&region, &mut notifier).unwrap(), Some(8));
            // SAFETY: the frame was published and found by `poll`.
            let frame = unsafe { region.slice(reader.payload_offset(), 8) };
            assert_eq!(frame, &[i; 8]);
            reader.release(&region, &mut notifier);
            // 16-byte frames, and a sixteenth of 4 KiB is 256 bytes: every 16th frame.
            let expected = if i >= 15 { 256 } else { 0 };
            assert_eq!(freed(&region), expected, "after frame {i}");
        }
        // Caught up: everything read is handed back.
        assert_eq!(reader.poll(&region, &mut notifier).unwrap(), None);
        assert_eq!(freed(&region), 320);
    }

    #[test]
    fn padding_is_skipped_and_does_not_count_as_a_frame() {
        let kernel = FakeKernel::new();
        let mut notifier = Notifier::fixed(Fences::Symmetric, &kernel);
        let (region, params) = ring(256);
        let mut writer = WriteCursor::resume(&region, &params).unwrap().0;
        let mut reader = ReadCursor::resume(&region, &params, false).unwrap().0;
        // A request and its reply, one frame per wait, across the lap's end: 96-byte frames,
        // so the third pads from 192.
        for round in 0..3u8 {
            assert!(!reader.drained_a_stream());
            assert!(send(&mut writer, &region, 88, round));
            assert_eq!(reader.poll(&region, &mut notifier).unwrap(), Some(88));
            reader.release(&region, &mut notifier);
            assert_eq!(reader.poll(&region, &mut notifier).unwrap(), None);
        }
        assert_eq!(reader.position, 256 + 96);
        // Two frames between waits: a stream.
        assert!(!reader.drained_a_stream());
        for round in 0..2u8 {
            assert!(send(&mut writer, &region, 8, round));
            assert_eq!(reader.poll(&region, &mut notifier).unwrap(), Some(8));
            reader.release(&region, &mut notifier);
        }
        assert!(reader.drained_a_stream());
    }

    #[test]
    fn a_drain_hands_at_most_its_limit_in_order() {
        let kernel = FakeKernel::new();
        let mut notifier = Notifier::fixed(Fences::Symmetric, &kernel);
        let (region, params) = ring(1024);
        let mut writer = WriteCursor::resume(&region, &params).unwrap().0;
        let mut reader = ReadCursor::resume(&region, &params, false).unwrap().0;
        for i in 0..10u8 {
            assert!(send(&mut writer, &region, 1 + usize::from(i), i));
        }
        let mut seen = Vec::new();
        let mut take = |frame: &[u8]| seen.push(frame.to_vec());
        assert_eq!(
            reader.drain(&region, &mut notifier, 4, &mut take).unwrap(),
            4
        );
        assert_eq!(
            reader
                .drain(&region, &mut notifier, 100, &mut take)
                .unwrap(),
            6
        );
        assert_eq!(
            reader
                .drain(&region, &mut notifier, 100, &mut take)
                .unwrap(),
            0
        );
        let expected: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 1 + usize::from(i)]).collect();
        assert_eq!(seen, expected);
        assert_eq!(freed(&region), writer.position);
    }

    #[test]
    fn a_successor_starts_after_the_last_frame_handed_out_and_finds_it_in_hand() {
        let kernel = FakeKernel::new();
        let mut notifier = Notifier::fixed(Fences::Symmetric, &kernel);
        let (region, params) = ring(4096);
        let mut writer = WriteCursor::resume(&region, &params).unwrap().0;
        let mut reader = ReadCursor::resume(&region, &params, false).unwrap().0;
        let successor = |redeliver| {
            ReadCursor::resume(&region, &params, redeliver)
                .map(|(cursor, in_hand)| (cursor.position, in_hand))
        };
        assert_eq!(successor(false).unwrap(), (0, None));
        for i in 0..6u8 {
            assert!(send(&mut writer, &region, 8, i));
        }
        // Three frames read and released (none published: a sixteenth is 256 bytes), the
        // fourth handed out, then the reader is gone.
        for _ in 0..3 {
            assert_eq!(reader.poll(&region, &mut notifier).unwrap(), Some(8));
            reader.release(&region, &mut notifier);
        }
        assert_eq!(reader.poll(&region, &mut notifier).unwrap(), Some(8));
        assert_eq!(freed(&region), 0);
        assert_eq!(successor(false).unwrap(), (64, Some((48, 8))));
        assert_eq!(successor(true).unwrap(), (48, Some((48, 8))));
        // Released, it is in hand until the next receive: the fifth frame is then.
        reader.release(&region, &mut notifier);
        assert_eq!(successor(false).unwrap(), (64, Some((48, 8))));
        assert_eq!(reader.poll(&region, &mut notifier).unwrap(), Some(8));
        reader.release(&region, &mut notifier);
        assert_eq!(successor(false).unwrap(), (80, Some((64, 8))));
        // A look at an empty ring hands every frame's space back: nothing is in hand.
        assert_eq!(reader.poll(&region, &mut notifier).unwrap(), Some(8));
        reader.release(&region, &mut notifier);
        assert_eq!(reader.poll(&region, &mut notifier).unwrap(), None);
        assert_eq!(successor(true).unwrap(), (96, None));
        // A ledger that points at no frame, off the 8-byte grid, or past a lap, is corrupt.
        for received in [96 + 1, 100 + 1, 96 + 4096 + 1] {
            region
                .header()
                .ledger
                .received
                .store(received, Ordering::Relaxed);
            assert!(matches!(successor(false), Err(Error::Corrupted { .. })));
        }
    }

    #[test]
    fn a_frame_in_hand_across_padding_is_found_at_the_next_lap() {
        let kernel = FakeKernel::new();
        let mut notifier = Notifier::fixed(Fences::Symmetric, &kernel);
        let (region, params) = ring(256);
        let mut writer = WriteCursor::resume(&region, &params).unwrap().0;
        let mut reader = ReadCursor::resume(&region, &params, false).unwrap().0;
        // 96-byte frames: the third pads from 192 and lands at 256.
        for round in 0..2u8 {
            assert!(send(&mut writer, &region, 88, round));
            assert_eq!(reader.poll(&region, &mut notifier).unwrap(), Some(88));
            reader.release(&region, &mut notifier);
        }
        assert!(send(&mut writer, &region, 88, 2));
        assert_eq!(reader.poll(&region, &mut notifier).unwrap(), Some(88));
        let (next, in_hand) = ReadCursor::resume(&region, &params, false).unwrap();
        assert_eq!((next.position, in_hand), (256 + 96, Some((256, 88))));
    }

    #[test]
    fn a_header_that_breaks_the_rules_is_corrupted() {
        let kernel = FakeKernel::new();
        let mut notifier = Notifier::fixed(Fences::Symmetric, &kernel);
        let (region, params) = ring(256);
        let mut reader = ReadCursor::resume(&region, &params, false).unwrap().0;
        // A data frame longer than the ring allows, with the right stamp.
        region
            .frame_word(0)
            .store(frame::data_header(101, 0), Ordering::Relaxed);
        assert!(matches!(
            reader.poll(&region, &mut notifier),
            Err(Error::Corrupted { .. })
        ));
        // And a position published by a hostile peer.
        region.header().positions[CONSUMER_POS].store(3, Ordering::Relaxed);
        assert!(matches!(
            ReadCursor::resume(&region, &params, false),
            Err(Error::Corrupted { .. })
        ));
    }
}
