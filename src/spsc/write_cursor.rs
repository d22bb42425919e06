//! The producer's private view of an SPSC ring: where it writes next and the consumer's
//! position as last read, and the arithmetic of claiming room, padding to the next lap,
//! publishing one frame or a batch. Kept in the endpoint, never in shared memory; no system
//! call (the caller rings the bell).

use super::{CONSUMER_POS, PRODUCER_POS};
use crate::error::{Error, Result};
use crate::frame::{self, frame_size, Frame, HEADER_LEN};
use crate::layout::{RingParams, MAX_POSITION};
use crate::os::{DataArea, RingMemory};
use crate::sync::Ordering;

/// How far past the next header slot a publish prefetches for writing (see
/// `RingMemory::prefetch_for_write`): four lines, so that the line is ours before the frames
/// reach it (docs/PERFORMANCE.md, "Prefetching for writing").
const PREFETCH_AHEAD: usize = 256;

/// Where the producer writes next, and the consumer's position as last read.
pub(super) struct WriteCursor {
    pub(super) position: u64,
    pub(super) cached_consumer: u64,
    pub(super) capacity: u64,
    /// A frame that ends at or before `limit` may be written at `position` without a second
    /// look: it fits in this lap, and the header slot after it is free by `cached_consumer`.
    /// Refreshed whenever either moves other than by publishing, so that the fast path of
    /// `claim` is one compare.
    limit: u64,
}

impl WriteCursor {
    fn new(position: u64, cached_consumer: u64, capacity: u64) -> WriteCursor {
        let mut cursor = WriteCursor {
            position,
            cached_consumer,
            capacity,
            limit: 0,
        };
        cursor.refresh_limit();
        cursor
    }

    /// Where a producer that attaches to `region` writes: after the last frame published,
    /// whoever published it; and where that last frame is, with its length, if the ring still
    /// holds it (for `Producer::last_committed`).
    ///
    /// # Errors
    /// [`Error::Corrupted`] if the positions or the frames after them break the ring's rules.
    pub(super) fn resume(
        region: &RingMemory,
        params: &RingParams,
    ) -> Result<(WriteCursor, Option<(u64, usize)>)> {
        let header = region.header();
        let capacity = params.capacity;
        // Acquire (both): the previous holders' last stores before they let go of their roles.
        let consumer = header.positions[CONSUMER_POS].load(Ordering::Acquire);
        if consumer % 8 != 0 || consumer > MAX_POSITION {
            return Err(Error::corrupted("consumer position", consumer, 0));
        }
        let published = header.positions[PRODUCER_POS].load(Ordering::Acquire);
        if published % 8 != 0 || published > consumer + capacity {
            return Err(Error::corrupted("producer position", published, consumer));
        }
        // The producer position is published once a lap and on detach, so it is only a hint:
        // walk forward over published frames from the consumer's position (a frame boundary;
        // every frame from it on is intact, as no producer writes behind it), noting the last.
        // Bounded: at most one lap.
        let mut last = None;
        let (position, broken) =
            super::walk_published(region, params, consumer, consumer + capacity, |at, len| {
                last = Some((at, len));
            });
        if let Some(e) = broken {
            return Err(e);
        }
        // A producer position beyond the walk's end is from a producer that died in a batch
        // (its padding published, its first header not): the batch was never published, and
        // we write over it.
        // Nothing unread: the last frame is the last one the consumer received, which no
        // producer has written over since (we are the first after it).
        if last.is_none() {
            // Relaxed: see `ReadCursor::resume`; the frame's header is validated here.
            let received = header.ledger.received.load(Ordering::Relaxed);
            if let Some(at) = received.checked_sub(1) {
                if at % 8 == 0 && at < position && position - at <= capacity {
                    let word = region.frame_word((at & (capacity - 1)) as usize);
                    let head = word.load(Ordering::Acquire);
                    if let Ok(Frame::Data(len)) =
                        frame::decode(head, at, capacity, params.max_frame)
                    {
                        if at + frame_size(len) as u64 <= position {
                            last = Some((at, len));
                        }
                    }
                }
            }
        }
        Ok((WriteCursor::new(position, consumer, capacity), last))
    }

    /// The data-area offset of the cursor's position.
    #[inline(always)]
    pub(super) fn offset(&self) -> usize {
        (self.position & (self.capacity - 1)) as usize
    }

    /// Recomputes `limit` from `position` and `cached_consumer`. Publishing moves `position`
    /// up to `limit` at most, which keeps it in the same lap (or exactly at its end, where
    /// every frame fails the compare), so only the slow path needs to call this.
    #[inline]
    fn refresh_limit(&mut self) {
        let lap_end = (self.position | (self.capacity - 1)) + 1;
        // The header slot after the frame must be free too (it is zeroed at commit).
        let room_end = self.cached_consumer + self.capacity - HEADER_LEN as u64;
        self.limit = lap_end.min(room_end);
    }

    /// Whether everything up to ring position `end` is free, rereading the consumer's position
    /// only if the cached one says no.
    #[inline]
    fn has_room(&mut self, region: &RingMemory, end: u64) -> Result<bool> {
        if end <= self.cached_consumer + self.capacity {
            return Ok(true);
        }
        // Acquire: pairs with the consumer's Release after it finished reading the frames it
        // frees, so our writes into that space come after its reads.
        let consumer = region.header().positions[CONSUMER_POS].load(Ordering::Acquire);
        if consumer < self.cached_consumer || consumer > self.position || consumer % 8 != 0 {
            return Err(Error::corrupted(
                "consumer position",
                consumer,
                self.position,
            ));
        }
        self.cached_consumer = consumer;
        self.refresh_limit();
        Ok(end <= consumer + self.capacity)
    }

    /// Finds room for a frame of `len` bytes at `position` (after padding to the next lap if it
    /// would not fit in this one); false if the ring is full.
    ///
    /// Inline only the common case (the frame ends within `limit`): a call on the streaming
    /// path costs its register saves, and those stores queue behind the ring stores still
    /// draining (docs/PERFORMANCE.md, "Stores are the writer's budget").
    #[inline(always)]
    pub(super) fn claim(&mut self, region: &RingMemory, len: usize) -> Result<bool> {
        if self.position + frame_size(len) as u64 <= self.limit {
            return Ok(true);
        }
        self.claim_slow(region, len)
    }

    /// `claim` for a frame that wraps, or a ring that looks full.
    ///
    /// If the frame would cross the end of the data area, first publishes padding to the end of
    /// the lap (harmless if the grant is then aborted: the consumer skips it).
    #[cold]
    #[inline(never)]
    fn claim_slow(&mut self, region: &RingMemory, len: usize) -> Result<bool> {
        let size = frame_size(len) as u64;
        let offset = self.position & (self.capacity - 1);
        if offset + size > self.capacity {
            let lap_end = self.position + (self.capacity - offset);
            // The padding and the zeroed header slot at the start of the next lap.
            if !self.has_room(region, lap_end + HEADER_LEN as u64)? {
                return Ok(false);
            }
            // Relaxed, then Release: as in `publish`, the zeroed slot is visible to whoever
            // acquires the padding header. No wake: a consumer that sleeps has read everything,
            // and the geometry rule lets the next frame fit beside the padding without it.
            region.frame_word(0).store(0, Ordering::Relaxed);
            region
                .frame_word(offset as usize)
                .store(frame::pad_header(self.position), Ordering::Release);
            self.position = lap_end;
            // Once a lap, for a producer that attaches after us (it walks forward from here):
            // storing it on every commit would cost a store per frame for nobody's benefit.
            // Relaxed: that producer reads it after acquiring our role word, and walks the
            // frames (validated) from there.
            region.header().positions[PRODUCER_POS].store(lap_end, Ordering::Relaxed);
        }
        // The position may be in a new lap since `limit` was computed: by the padding, or by
        // frames that ended exactly at the end of the last one.
        self.refresh_limit();
        // The frame, and the header slot after it, which we zero at commit.
        Ok(self.position + size <= self.limit
            || self.has_room(region, self.position + size + HEADER_LEN as u64)?)
    }

    /// Publishes the frame of `len` bytes written at ring `position`, data-area `offset` (the
    /// cursor's own, claimed): the header slot after it is zeroed first, then the header is
    /// stored with Release, then the cursor moves past the frame.
    #[inline(always)]
    pub(super) fn publish(
        &mut self,
        region: &RingMemory,
        position: u64,
        offset: usize,
        len: usize,
    ) {
        let size = frame_size(len) as u64;
        region.prefetch_for_write(offset + size as usize + PREFETCH_AHEAD);
        // Zero the next header slot first (it is ours: `claim` checked the room), so that the
        // consumer, once it sees this frame, cannot read a stale header there.
        region
            .frame_word(offset + size as usize)
            .store(0, Ordering::Relaxed);
        // Release: the payload and the zeroed slot are visible to whoever acquires this word.
        region
            .frame_word(offset)
            .store(frame::data_header(len as u32, position), Ordering::Release);
        self.position = position + size;
    }

    /// Writes as many of `frames` (lengths already checked) as there is room for now, in order,
    /// and publishes them at once; returns how many. Stops at the first frame without room; an
    /// error after the first frame also stops it, and recurs on the next call.
    ///
    /// Every frame but the first is written whole, header and all, with plain stores, and the
    /// first frame's header is stored last, with Release. A consumer that keeps up would
    /// otherwise follow us frame by frame through the very lines we are writing, and each line
    /// would cross between the cores once per frame instead of once. Only the header slot after
    /// the whole batch is zeroed, not the one after each frame (docs/PERFORMANCE.md,
    /// "Batches").
    #[inline]
    pub(super) fn write_batch<T: AsRef<[u8]>>(
        &mut self,
        region: &RingMemory,
        frames: &[T],
    ) -> Result<usize> {
        let capacity = self.capacity;
        let mut position = self.position;
        let mut sent = 0;
        let mut result = Ok(());
        // Publishes the batch when it goes out of scope: also if `as_ref` panics, so that no
        // frame written is left unpublished.
        let mut batch = PublishOnDrop {
            region,
            first: None,
            end: position,
        };
        for bytes in frames {
            let bytes = bytes.as_ref();
            let size = frame_size(bytes.len()) as u64;
            // Past the lap's end, or into a next header slot not known to be free: the general
            // claim (padding, a fresh look at the consumer).
            if position + size > self.limit {
                let claimed = self.claim(region, bytes.len());
                // Past any padding `claim` wrote (whatever it returns), whose header must stay.
                batch.end = self.position;
                match claimed {
                    Ok(true) => position = self.position,
                    Ok(false) => break,
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
            let offset = (position & (capacity - 1)) as usize;
            region.prefetch_for_write(offset + size as usize + PREFETCH_AHEAD);
            // SAFETY: the limit (or `claim`) gave this range to us and bounded it by the
            // capacity; the consumer does not read it before the batch is published, and
            // `&mut self` makes this the only reference.
            unsafe { region.slice_mut_unchecked(offset + HEADER_LEN, bytes.len()) }
                .copy_from_slice(bytes);
            let header = frame::data_header(bytes.len() as u32, position);
            if sent == 0 {
                batch.first = Some((offset, header));
            } else {
                // Relaxed: the first header's Release publishes the lot.
                region.frame_word(offset).store(header, Ordering::Relaxed);
            }
            position += size;
            // Stored every frame: should `as_ref` panic, no written frame lies past them.
            self.position = position;
            batch.end = position;
            sent += 1;
        }
        drop(batch);
        match result {
            Err(e) if sent == 0 => Err(e),
            _ => Ok(sent),
        }
    }
}

/// A batch written in place (`Producer::write_batch`), with its own copy of what the loop over
/// its frames needs: the data area, the position and the limit. The caller's writes into each
/// frame go through pointers that could, for all the compiler knows, point at the cursor, so
/// state kept there would be loaded again after every frame; kept here, in a value that never
/// has its address taken, it stays in registers. The cursor is brought up to date on the slow
/// path and at the end.
pub(super) struct InPlaceBatch {
    area: DataArea,
    mask: u64,
    position: u64,
    limit: u64,
    /// The first frame's position, offset and header: stored last, with Release, to publish
    /// the lot. Meaningful once `frames > 0`.
    start: u64,
    first_offset: usize,
    first_header: u64,
    frames: usize,
    max_frame: usize,
}

impl InPlaceBatch {
    /// Starts a batch at `cursor`'s position over `region`, whose memory must outlive it, of
    /// frames up to `max_frame` bytes.
    #[inline(always)]
    pub(super) fn new(cursor: &WriteCursor, region: &RingMemory, max_frame: usize) -> InPlaceBatch {
        InPlaceBatch {
            area: region.data_area(),
            mask: cursor.capacity - 1,
            position: cursor.position,
            limit: cursor.limit,
            start: cursor.position,
            first_offset: 0,
            first_header: 0,
            frames: 0,
            max_frame,
        }
    }

    /// The largest frame the ring takes.
    #[inline(always)]
    pub(super) fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// How many frames the batch holds.
    #[inline(always)]
    pub(super) fn frames(&self) -> usize {
        self.frames
    }

    /// Claims the next frame, of `len` bytes (already checked), and writes its header,
    /// unpublished (the first frame's is kept for [`publish`](Self::publish)); returns the
    /// data-area offset of its payload, or `None` if there is no room now. As in
    /// `WriteCursor::write_batch`, nothing of the batch is visible before it is published, so
    /// a consumer that keeps up does not follow the producer line by line.
    #[inline(always)]
    pub(super) fn claim(
        &mut self,
        cursor: &mut WriteCursor,
        region: &RingMemory,
        len: usize,
    ) -> Result<Option<usize>> {
        let size = frame_size(len);
        if self.position + size as u64 > self.limit {
            let (claimed, position, limit) =
                InPlaceBatch::claim_slow(cursor, region, self.position, len);
            (self.position, self.limit) = (position, limit);
            if !claimed? {
                return Ok(None);
            }
        }
        let position = self.position;
        let offset = (position & self.mask) as usize;
        // Once a line, when the frame reaches the next one.
        if (offset & 63) + size >= 64 {
            self.area.prefetch_for_write(offset + size + PREFETCH_AHEAD);
        }
        let header = frame::data_header(len as u32, position);
        if self.frames == 0 {
            // After any padding the claim published to reach it: an abort comes back here,
            // not behind padding that the consumer may have passed already.
            self.start = position;
            self.first_offset = offset;
            self.first_header = header;
        } else {
            // SAFETY: the producer that holds the batch keeps the memory alive.
            let word = unsafe { self.area.frame_word(offset) };
            // Relaxed: the first header's Release publishes the lot.
            word.store(header, Ordering::Relaxed);
        }
        self.position = position + size as u64;
        self.frames += 1;
        Ok(Some(offset + HEADER_LEN))
    }

    /// The payload bytes of a frame this batch claimed at data-area `offset`.
    ///
    /// # Safety
    /// As `RingMemory::slice_mut_unchecked`, and the memory must outlive the slice.
    #[inline(always)]
    pub(super) unsafe fn payload<'a>(&self, offset: usize, len: usize) -> &'a mut [u8] {
        // SAFETY: the caller's contract.
        unsafe { self.area.slice_mut_unchecked(offset, len) }
    }

    /// A frame past the limit: the cursor's general claim (padding, a fresh look at the
    /// consumer) from the batch's `position`; returns what it returned, and the position and
    /// limit after it (past any padding it published, whatever it returned). By value, not
    /// through `&mut self`: a batch whose address is taken lives in memory, not registers.
    #[cold]
    #[inline(never)]
    fn claim_slow(
        cursor: &mut WriteCursor,
        region: &RingMemory,
        position: u64,
        len: usize,
    ) -> (Result<bool>, u64, u64) {
        // Within the limit the cursor computed: its limit holds for this position too.
        cursor.position = position;
        let claimed = cursor.claim(region, len);
        (claimed, cursor.position, cursor.limit)
    }

    /// Publishes every frame of the batch: zeroes the header slot after the last, then stores
    /// the first header with Release, and moves the cursor past the batch. Returns whether
    /// there was anything to publish.
    #[inline(always)]
    pub(super) fn publish(&self, cursor: &mut WriteCursor, region: &RingMemory) -> bool {
        cursor.position = self.position;
        if self.frames == 0 {
            return false;
        }
        drop(PublishOnDrop {
            region,
            first: Some((self.first_offset, self.first_header)),
            end: self.position,
        });
        true
    }

    /// Forgets every frame of the batch: the cursor goes back to the first frame, and the
    /// consumer, which stops at that frame's header slot (still zero), never saw them. Padding
    /// published for a later frame that wrapped stays: it is past that slot, and is written
    /// over like any other byte there.
    #[inline]
    pub(super) fn abort(&self, cursor: &mut WriteCursor) {
        cursor.position = if self.frames == 0 {
            self.position
        } else {
            self.start
        };
        cursor.refresh_limit();
    }
}

/// A batch being written, published when it is dropped: the first frame's header, and the ring
/// position where the batch ends (after its last frame, or after padding written behind it).
struct PublishOnDrop<'a> {
    region: &'a RingMemory,
    first: Option<(usize, u64)>,
    end: u64,
}

impl Drop for PublishOnDrop<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        let Some((offset, header)) = self.first else {
            return;
        };
        // The header slot after the batch, zeroed as in `publish` (inside the batch, each
        // frame's header covers the slot after the frame before). `frame_word` takes offsets
        // modulo the capacity.
        self.region
            .frame_word(self.end as usize)
            .store(0, Ordering::Relaxed);
        // Release: every frame of the batch, and the zeroed slot after it, are visible to
        // whoever acquires this word; the consumer reads no further before it does.
        self.region
            .frame_word(offset)
            .store(header, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::layout::KIND_SPSC;
    use crate::os::Memory;

    const CAPACITY: u64 = 256;

    fn ring() -> (RingMemory, RingParams) {
        let params = RingParams {
            kind: KIND_SPSC,
            capacity: CAPACITY,
            max_frame: 100,
            flags: 0,
            subscriber_slots: 0,
            message: Default::default(),
        };
        let memory = RingMemory::new(Arc::new(Memory::heap(CAPACITY as usize)));
        (memory, params)
    }

    fn header_at(region: &RingMemory, position: u64) -> Frame {
        let word = region.frame_word((position % CAPACITY) as usize);
        frame::decode(word.load(Ordering::Relaxed), position, CAPACITY, 100).unwrap()
    }

    fn write(cursor: &mut WriteCursor, region: &RingMemory, len: usize) -> bool {
        if !cursor.claim(region, len).unwrap() {
            return false;
        }
        let (position, offset) = (cursor.position, cursor.offset());
        cursor.publish(region, position, offset, len);
        true
    }

    fn free_up_to(region: &RingMemory, position: u64) {
        region.header().positions[CONSUMER_POS].store(position, Ordering::Relaxed);
    }

    #[test]
    fn frames_fill_the_ring_then_wait_for_the_consumer() {
        let (region, params) = ring();
        let mut cursor = WriteCursor::resume(&region, &params).unwrap().0;
        // 24-byte frames (8 of header): room for 10 in 256 bytes with the slot after the last.
        let mut written = 0;
        while write(&mut cursor, &region, 16) {
            assert_eq!(header_at(&region, cursor.position - 24), Frame::Data(16));
            assert_eq!(header_at(&region, cursor.position), Frame::Empty);
            written += 1;
        }
        assert_eq!((written, cursor.position), (10, 240));
        // The consumer frees the first two frames: the next one pads to the lap's end (16 bytes
        // are left) and goes at the start of the next lap.
        free_up_to(&region, 48);
        assert!(write(&mut cursor, &region, 16));
        assert_eq!(header_at(&region, 240), Frame::Pad);
        assert_eq!(
            (cursor.position, header_at(&region, 256)),
            (280, Frame::Data(16))
        );
        assert_eq!(
            region.header().positions[PRODUCER_POS].load(Ordering::Relaxed),
            256,
            "the lap's end is published for a later producer"
        );
        // Until the consumer moves again, the frame over its position does not fit.
        assert!(write(&mut cursor, &region, 1));
        assert!(!write(&mut cursor, &region, 1));
    }

    #[test]
    fn a_consumer_position_that_breaks_the_rules_is_corrupted() {
        for bad in [8 * 1000, 4, 2] {
            let (region, params) = ring();
            let mut cursor = WriteCursor::resume(&region, &params).unwrap().0;
            while write(&mut cursor, &region, 16) {}
            // Ahead of the producer, unaligned, or (after a good one) behind the cached one.
            if bad == 2 {
                free_up_to(&region, 48);
                assert!(write(&mut cursor, &region, 16));
                while write(&mut cursor, &region, 16) {}
                free_up_to(&region, 24);
            } else {
                free_up_to(&region, bad);
            }
            assert!(matches!(
                cursor.claim(&region, 16),
                Err(Error::Corrupted {
                    what: "consumer position",
                    ..
                })
            ));
        }
    }

    #[test]
    fn a_resumed_cursor_walks_past_what_the_last_producer_published() {
        let (region, params) = ring();
        let mut first = WriteCursor::resume(&region, &params).unwrap().0;
        // 48-byte frames: five, up to 240.
        while write(&mut first, &region, 40) {}
        assert_eq!(first.position, 240);
        free_up_to(&region, 144);
        // Padding at 240, two frames in the next lap.
        assert!(write(&mut first, &region, 40) && write(&mut first, &region, 40));
        assert_eq!(first.position, 352);
        // The published producer position lags (it is stored once a lap): the walk finds the
        // rest.
        let (resumed, last) = WriteCursor::resume(&region, &params).unwrap();
        assert_eq!((resumed.position, resumed.cached_consumer), (352, 144));
        // And the last frame committed: the second of the new lap.
        assert_eq!(last, Some((304, 40)));
        // With everything read, it is the last frame the consumer received (the ledger's).
        free_up_to(&region, 352);
        assert_eq!(WriteCursor::resume(&region, &params).unwrap().1, None);
        region
            .header()
            .ledger
            .received
            .store(304 + 1, Ordering::Relaxed);
        assert_eq!(
            WriteCursor::resume(&region, &params).unwrap().1,
            Some((304, 40))
        );
        // A ledger entry that is not a frame's header is no frame.
        region
            .header()
            .ledger
            .received
            .store(312 + 1, Ordering::Relaxed);
        assert_eq!(WriteCursor::resume(&region, &params).unwrap().1, None);
        // A header that breaks the rules stops a resume with a typed error.
        region
            .frame_word(352 % 256)
            .store(u64::MAX, Ordering::Relaxed);
        assert!(matches!(
            WriteCursor::resume(&region, &params),
            Err(Error::Corrupted { .. })
        ));
    }

    #[test]
    fn a_batch_is_published_by_its_first_header_and_stops_where_room_ends() {
        let (region, params) = ring();
        let mut cursor = WriteCursor::resume(&region, &params).unwrap().0;
        let frames: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 8]).collect();
        // 16-byte frames: 15 fit with the slot after the last.
        assert_eq!(cursor.write_batch(&region, &frames).unwrap(), 15);
        for i in 0..15 {
            assert_eq!(header_at(&region, i * 16), Frame::Data(8));
        }
        assert_eq!(header_at(&region, 240), Frame::Empty);
        assert_eq!(cursor.write_batch(&region, &frames).unwrap(), 0);
        free_up_to(&region, 240);
        // The first frame fills the lap exactly (no padding), the second starts the next one.
        assert_eq!(cursor.write_batch(&region, &frames[..2]).unwrap(), 2);
        assert_eq!(cursor.position, 272);
        assert_eq!(header_at(&region, 240), Frame::Data(8));
        assert_eq!(header_at(&region, 256), Frame::Data(8));
        assert_eq!(header_at(&region, 272), Frame::Empty);
    }

    fn push(cursor: &mut WriteCursor, region: &RingMemory, batch: &mut InPlaceBatch) -> bool {
        batch.claim(cursor, region, 8).unwrap().is_some()
    }

    #[test]
    fn an_in_place_batch_is_invisible_until_published_and_stops_where_room_ends() {
        let (region, params) = ring();
        let mut cursor = WriteCursor::resume(&region, &params).unwrap().0;
        let mut batch = InPlaceBatch::new(&cursor, &region, 100);
        // 16-byte frames: 15 fit with the slot after the last.
        while push(&mut cursor, &region, &mut batch) {}
        assert_eq!((batch.frames(), batch.position), (15, 240));
        // The later headers are written, the first is not: the consumer stops at it.
        assert_eq!(header_at(&region, 0), Frame::Empty);
        assert_eq!(header_at(&region, 16), Frame::Data(8));
        region.frame_word(240).store(u64::MAX, Ordering::Relaxed);
        assert!(batch.publish(&mut cursor, &region));
        assert_eq!(cursor.position, 240);
        for i in 0..15 {
            assert_eq!(header_at(&region, i * 16), Frame::Data(8));
        }
        assert_eq!(
            header_at(&region, 240),
            Frame::Empty,
            "the slot after is zeroed"
        );
        // An empty batch publishes nothing.
        assert!(!InPlaceBatch::new(&cursor, &region, 100).publish(&mut cursor, &region));
    }

    #[test]
    fn an_aborted_batch_leaves_nothing_and_the_next_frame_takes_its_place() {
        let (region, params) = ring();
        let mut cursor = WriteCursor::resume(&region, &params).unwrap().0;
        assert!(write(&mut cursor, &region, 8));
        let mut batch = InPlaceBatch::new(&cursor, &region, 100);
        assert!(push(&mut cursor, &region, &mut batch) && push(&mut cursor, &region, &mut batch));
        batch.abort(&mut cursor);
        assert_eq!(cursor.position, 16);
        assert_eq!(header_at(&region, 16), Frame::Empty);
        assert!(write(&mut cursor, &region, 40));
        assert_eq!(header_at(&region, 16), Frame::Data(40));
        assert_eq!(header_at(&region, 64), Frame::Empty);
    }

    #[test]
    fn a_batch_aborted_after_padding_resumes_past_the_padding() {
        let (region, params) = ring();
        let mut cursor = WriteCursor::resume(&region, &params).unwrap().0;
        // 48-byte frames up to 240; the consumer reads them all.
        while write(&mut cursor, &region, 40) {}
        free_up_to(&region, 240);
        // The batch's first frame does not fit in the 16 bytes left: padding is published at
        // 240 and the frame goes at 256.
        let mut batch = InPlaceBatch::new(&cursor, &region, 100);
        assert!(batch.claim(&mut cursor, &region, 40).unwrap().is_some());
        assert_eq!(header_at(&region, 240), Frame::Pad);
        batch.abort(&mut cursor);
        assert_eq!(cursor.position, 256);
        // The consumer passes the padding; the producer goes on from 256 without calling that
        // position corrupt.
        free_up_to(&region, 256);
        assert!(write(&mut cursor, &region, 40));
        assert_eq!(header_at(&region, 256), Frame::Data(40));
    }
}
