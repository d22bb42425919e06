//! The writing end of an SPSC ring.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use super::{Endpoint, CONSUMER_POS, DATA_BELL, PRODUCER_POS, SPACE_BELL};
use crate::error::{Error, Result, Role};
use crate::frame::{self, frame_size, Frame, HEADER_LEN};
use crate::layout::{RingParams, MAX_POSITION};
use crate::region::{Region, RingMemory};
use crate::role::PeerStatus;
use crate::sync::Ordering;
use crate::wait::{block_on, Limit, WaitPolicy, WaitStats};

/// How far past the next header slot a publish prefetches for writing (see
/// `RingMemory::prefetch_for_write`): four lines, so that the line is ours before the frames
/// reach it. Between two cores that hand lines over slowly, this alone took 8-byte streams from
/// about 60-90 to about 140 M/s (a copy of the bench's two-thread stream, builds with and without
/// it run alternately; rtrb made 80-115 M/s meanwhile); where lines move fast it changed nothing.
const PREFETCH_AHEAD: usize = 256;

/// The producer's private view of the ring: where it writes next, and the consumer's position as
/// last read. Kept in the endpoint, never in shared memory.
struct Cursor {
    position: u64,
    cached_consumer: u64,
    capacity: u64,
    /// A frame that ends at or before `limit` may be written at `position` without a second
    /// look: it fits in this lap, and the header slot after it is free by `cached_consumer`.
    /// Refreshed whenever either moves other than by publishing, so that the fast path of
    /// `claim` is one compare.
    limit: u64,
}

impl Cursor {
    fn new(position: u64, cached_consumer: u64, capacity: u64) -> Cursor {
        let mut cursor = Cursor {
            position,
            cached_consumer,
            capacity,
            limit: 0,
        };
        cursor.refresh_limit();
        cursor
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
    /// draining (see `more_than_reserved`).
    #[inline(always)]
    fn claim(&mut self, region: &RingMemory, len: usize) -> Result<bool> {
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
            // Relaxed, then Release: as in `publish_at`, the zeroed slot is visible to whoever
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
}

/// The end of an SPSC ring that writes frames.
///
/// Write in place with [`reserve`](Self::reserve) (zero copy) or copy with
/// [`send`](Self::send). Each has a `try_` form that fails at once with [`Error::Full`] and a
/// `_timeout` form. Blocking forms spin briefly, then sleep until the consumer frees space.
///
/// Dropping the producer detaches it: the consumer receives what was committed, then
/// [`Error::PeerGone`].
pub struct Producer {
    cursor: Cursor,
    ep: Endpoint,
}

impl Producer {
    pub(crate) fn attach(
        region: Arc<Region>,
        params: RingParams,
        policy: WaitPolicy,
    ) -> Result<Self> {
        let ep = Endpoint::attach(region, params, Role::Producer, policy)?;
        let header = ep.region.header();
        // Acquire (both): the previous holders' last stores before they let go of their roles.
        let consumer = header.positions[CONSUMER_POS].load(Ordering::Acquire);
        if consumer % 8 != 0 || consumer > MAX_POSITION {
            return Err(Error::corrupted("consumer position", consumer, 0));
        }
        let published = header.positions[PRODUCER_POS].load(Ordering::Acquire);
        if published % 8 != 0 || published > consumer + params.capacity {
            return Err(Error::corrupted("producer position", published, consumer));
        }
        // The producer position is published once a lap and on detach, so it may lag, even
        // behind the consumer: walk forward over published frames from whichever is further
        // (both are frame boundaries). Bounded: at most one lap.
        let mut position = published.max(consumer);
        while position - consumer < params.capacity {
            let word = ep
                .region
                .frame_word((position & (params.capacity - 1)) as usize);
            match frame::decode(
                word.load(Ordering::Acquire),
                position,
                params.capacity,
                params.max_frame,
            )? {
                Frame::Empty => break,
                Frame::Data(len) => position += frame_size(len) as u64,
                Frame::Pad => position += params.capacity - (position & (params.capacity - 1)),
            }
        }
        Ok(Producer {
            cursor: Cursor::new(position, consumer, params.capacity),
            ep,
        })
    }

    /// The data area's size in bytes.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.ep.capacity as usize
    }

    /// The largest frame payload this ring takes.
    #[must_use]
    pub fn max_frame(&self) -> usize {
        self.ep.max_frame as usize
    }

    /// How often this endpoint's blocking calls had to wait and sleep.
    #[must_use]
    pub fn stats(&self) -> WaitStats {
        self.ep.stats
    }

    #[cfg(feature = "testing")]
    /// For the fuzz bodies' invariant checks: our position and the consumer's as last read.
    pub(crate) fn positions(&self) -> (u64, u64) {
        (self.cursor.position, self.cursor.cached_consumer)
    }

    /// Whether the consumer is attached and alive (checks its process: a system call).
    pub fn peer_status(&mut self) -> PeerStatus {
        self.ep.hold.peer_status(self.ep.region.header())
    }

    fn check_len(&self, len: usize) -> Result<()> {
        if len == 0 || len > self.ep.max_frame as usize {
            return Err(Error::InvalidLength {
                len,
                max: self.ep.max_frame as usize,
            });
        }
        Ok(())
    }

    /// Reserves a frame of `len` bytes to write in place, if there is room now.
    ///
    /// # Errors
    /// [`Error::InvalidLength`] unless `1 <= len <= max_frame`; [`Error::Full`] if there is no
    /// room now; [`Error::PeerGone`] if the consumer detached; [`Error::Corrupted`].
    // Always inlined, as the consumer's hot forms are (see `Consumer::try_recv_into`).
    #[inline(always)]
    pub fn try_reserve(&mut self, len: usize) -> Result<WriteGrant<'_>> {
        self.try_claim(len)?;
        Ok(self.grant(len))
    }

    /// Reserves a frame of `len` bytes to write in place, waiting for room.
    ///
    /// ```
    /// # fn main() -> Result<(), ringport::Error> {
    /// let (mut producer, mut consumer) = ringport::SpscOptions::new().in_process()?;
    /// let mut grant = producer.reserve(64)?;
    /// let n = 11;
    /// grant[..n].copy_from_slice(b"fewer bytes");
    /// grant.commit_len(n);
    /// assert_eq!(consumer.recv()?.len(), 11);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidLength`]; [`Error::PeerGone`] if the consumer detached or died while the
    /// ring is full; [`Error::Corrupted`].
    #[inline(always)]
    pub fn reserve(&mut self, len: usize) -> Result<WriteGrant<'_>> {
        self.reserve_until(len, Limit::Forever)
    }

    /// As [`reserve`](Self::reserve), giving up after `timeout`.
    ///
    /// # Errors
    /// As [`reserve`](Self::reserve), and [`Error::Timeout`].
    #[inline]
    pub fn reserve_timeout(&mut self, len: usize, timeout: Duration) -> Result<WriteGrant<'_>> {
        self.reserve_until(len, Limit::After(timeout))
    }

    #[inline(always)]
    fn reserve_until(&mut self, len: usize, limit: Limit) -> Result<WriteGrant<'_>> {
        self.claim_until(len, limit)?;
        Ok(self.grant(len))
    }

    /// The grant for the frame of `len` bytes just claimed at the cursor's position.
    #[inline(always)]
    fn grant(&mut self, len: usize) -> WriteGrant<'_> {
        let position = self.cursor.position;
        let offset = (position & (self.cursor.capacity - 1)) as usize;
        WriteGrant {
            producer: self,
            position,
            offset,
            len,
        }
    }

    /// Claims a frame of `len` bytes at the cursor's position if there is room now (false if
    /// not).
    #[inline(always)]
    fn claim_now(&mut self, len: usize) -> Result<bool> {
        self.check_len(len)?;
        self.cursor.claim(&self.ep.region, len)
    }

    /// Claims a frame of `len` bytes at the cursor's position if there is room now, or says
    /// why not.
    #[inline(always)]
    fn try_claim(&mut self, len: usize) -> Result<()> {
        if self.claim_now(len)? {
            Ok(())
        } else if self.ep.hold.peer_detached(self.ep.region.header()) {
            Err(Error::PeerGone(Role::Consumer))
        } else {
            Err(Error::Full)
        }
    }

    /// Claims a frame of `len` bytes at the cursor's position: room that is there now is taken
    /// inline, waiting is out of line.
    #[inline(always)]
    fn claim_until(&mut self, len: usize, limit: Limit) -> Result<()> {
        if self.claim_now(len)? {
            Ok(())
        } else {
            self.wait_for_room(len, limit)
        }
    }

    #[inline(never)]
    fn wait_for_room(&mut self, len: usize, limit: Limit) -> Result<()> {
        let ep = &mut self.ep;
        let cursor = &mut self.cursor;
        let region = &ep.region;
        block_on(
            &region.header().bells[SPACE_BELL],
            ep.fences,
            &ep.policy,
            limit,
            || Ok(cursor.claim(region, len)?.then_some(())),
            |thorough| ep.hold.departure(region.header(), thorough),
            &mut ep.stats,
        )
    }

    /// Copies `data` into one frame, waiting for room.
    ///
    /// # Errors
    /// As [`reserve`](Self::reserve).
    #[inline(always)]
    pub fn send(&mut self, data: &[u8]) -> Result<()> {
        self.reserve(data.len())?.commit_copy(data);
        Ok(())
    }

    /// Copies `data` into one frame if there is room now.
    ///
    /// # Errors
    /// As [`try_reserve`](Self::try_reserve).
    #[inline(always)]
    pub fn try_send(&mut self, data: &[u8]) -> Result<()> {
        self.try_reserve(data.len())?.commit_copy(data);
        Ok(())
    }

    /// Copies `data` into one frame, waiting at most `timeout` for room.
    ///
    /// # Errors
    /// As [`reserve_timeout`](Self::reserve_timeout).
    #[inline]
    pub fn send_timeout(&mut self, data: &[u8], timeout: Duration) -> Result<()> {
        self.reserve_timeout(data.len(), timeout)?.commit_copy(data);
        Ok(())
    }

    /// Copies as many of `frames` as there is room for now into frames of their own, in order;
    /// returns how many. The position stays in registers from one frame to the next, and the
    /// consumer's bell is checked once for the lot.
    ///
    /// ```
    /// # fn main() -> Result<(), ringport::Error> {
    /// let (mut producer, mut consumer) = ringport::SpscOptions::new().in_process()?;
    /// let numbers: Vec<[u8; 8]> = (0..100u64).map(u64::to_le_bytes).collect();
    /// let mut rest = &numbers[..];
    /// while !rest.is_empty() {
    ///     let sent = producer.try_send_many(rest)?;
    ///     rest = &rest[sent..];
    /// #   while consumer.try_recv_many(usize::MAX, |_| ()).is_ok() {}
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidLength`] if any of `frames` has an invalid length (checked before any is
    /// sent); [`Error::Full`] if not even the first fits now; [`Error::PeerGone`] if the consumer
    /// detached and none fits; [`Error::Corrupted`] if none was sent. An error met after some
    /// frames ends the batch, and the next call returns it. An empty slice returns `Ok(0)`.
    pub fn try_send_many<T: AsRef<[u8]>>(&mut self, frames: &[T]) -> Result<usize> {
        self.check_lens(frames)?;
        match self.push_many(frames)? {
            0 if frames.is_empty() => Ok(0),
            0 if self.ep.hold.peer_detached(self.ep.region.header()) => {
                Err(Error::PeerGone(Role::Consumer))
            }
            0 => Err(Error::Full),
            n => Ok(n),
        }
    }

    /// Copies all of `frames` into frames of their own, in order, waiting for room as
    /// [`send`](Self::send) does; batches as [`try_send_many`](Self::try_send_many).
    ///
    /// # Errors
    /// As [`send`](Self::send); lengths are all checked before any frame is sent, and after any
    /// other error, the frames before the failing one were sent.
    pub fn send_many<T: AsRef<[u8]>>(&mut self, frames: &[T]) -> Result<()> {
        self.check_lens(frames)?;
        let mut rest = frames;
        loop {
            rest = &rest[self.push_many(rest)?..];
            let Some((next, tail)) = rest.split_first() else {
                return Ok(());
            };
            // No room for it now: wait as `send` does, then batch again.
            self.send(next.as_ref())?;
            rest = tail;
        }
    }

    fn check_lens<T: AsRef<[u8]>>(&self, frames: &[T]) -> Result<()> {
        frames
            .iter()
            .try_for_each(|frame| self.check_len(frame.as_ref().len()))
    }

    /// The batch loop of `try_send_many`: lengths are already checked. Stops at the first frame
    /// without room; an error after the first frame also stops it, and recurs on the next call.
    ///
    /// The batch is published at once: every frame but the first is written whole, header and
    /// all, with plain stores, and the first frame's header is stored last, with Release. A
    /// consumer that keeps up would otherwise follow us frame by frame through the very lines we
    /// are writing, and each line would cross between the cores once per frame instead of once
    /// (8-byte frames in batches of 64 between two threads: 205 -> 305 M/s). Only the header
    /// slot after the whole batch is zeroed, not the one after each frame (305 -> 378 M/s).
    #[inline]
    fn push_many<T: AsRef<[u8]>>(&mut self, frames: &[T]) -> Result<usize> {
        let region = &self.ep.region;
        let cursor = &mut self.cursor;
        let capacity = cursor.capacity;
        let mut position = cursor.position;
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
            if position + size > cursor.limit {
                let claimed = cursor.claim(region, bytes.len());
                // Past any padding `claim` wrote (whatever it returns), whose header must stay.
                batch.end = cursor.position;
                match claimed {
                    Ok(true) => position = cursor.position,
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
            cursor.position = position;
            batch.end = position;
            sent += 1;
        }
        drop(batch);
        if sent > 0 {
            region.header().bells[DATA_BELL].ring(&mut self.ep.notifier);
        }
        match result {
            Err(e) if sent == 0 => Err(e),
            _ => Ok(sent),
        }
    }

    /// Publishes the frame of `len` bytes written at ring `position`, data-area `offset`.
    #[inline(always)]
    fn publish_at(&mut self, position: u64, offset: usize, len: usize) {
        let size = frame_size(len) as u64;
        let region = &self.ep.region;
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
        self.cursor.position = position + size;
        region.header().bells[DATA_BELL].ring(&mut self.ep.notifier);
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
        // The header slot after the batch, zeroed as in `publish_at` (inside the batch, each
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

impl Drop for Producer {
    fn drop(&mut self) {
        // Relaxed: the Release of our role word, when the endpoint lets go of it right after,
        // publishes this to the next producer.
        let header = self.ep.region.header();
        header.positions[PRODUCER_POS].store(self.cursor.position, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("capacity", &self.ep.capacity)
            .field("max_frame", &self.ep.max_frame)
            .field("position", &self.cursor.position)
            .finish_non_exhaustive()
    }
}

/// Room for one frame, written in place. Derefs to the frame's bytes.
///
/// [`commit`](Self::commit) publishes it; [`commit_len`](Self::commit_len) publishes a shorter
/// prefix; dropping the grant without committing aborts it: the consumer sees nothing.
#[must_use = "a grant that is dropped is aborted; call commit()"]
pub struct WriteGrant<'a> {
    producer: &'a mut Producer,
    /// Where the frame is: the producer's position (which stays put while we borrow it), and
    /// its offset in the data area. Copied here when the grant is made, before the caller's
    /// stores into the ring: read from the producer after them, the compiler would load them
    /// again (the ring might alias the producer, for all it knows), and those loads took an
    /// 8-byte writer from 440 down to 350 M/s.
    position: u64,
    offset: usize,
    len: usize,
}

impl WriteGrant<'_> {
    /// The copying forms' write: `data`, of exactly the reserved length, then the commit.
    #[inline(always)]
    fn commit_copy(mut self, data: &[u8]) {
        self.copy_from_slice(data);
        self.commit();
    }

    /// Publishes the whole frame.
    #[inline(always)]
    pub fn commit(self) {
        let len = self.len;
        self.commit_len(len);
    }

    /// Publishes the first `len` bytes as the frame; `len == 0` aborts it.
    ///
    /// # Panics
    /// If `len` is larger than the reserved length.
    #[inline(always)]
    pub fn commit_len(self, len: usize) {
        if len > self.len {
            more_than_reserved(len, self.len);
        }
        if len > 0 {
            self.producer.publish_at(self.position, self.offset, len);
        }
    }
}

/// The panic of [`WriteGrant::commit_len`], out of line and on copies: formatting the grant's
/// own field would take its address, and a grant with its address taken lives on the stack,
/// which costs the commit four stores. Stores are what a streaming producer runs short of: its
/// stores to lines the consumer is reading drain slowly, and every store queues behind them.
#[cold]
#[inline(never)]
#[track_caller]
fn more_than_reserved(len: usize, reserved: usize) -> ! {
    panic!("commit_len({len}) is more than the {reserved} bytes reserved")
}

impl Deref for WriteGrant<'_> {
    type Target = [u8];
    #[inline(always)]
    fn deref(&self) -> &[u8] {
        // SAFETY: `claim` gave this range to the producer, which we borrow mutably, and bounded
        // it by the capacity; the consumer does not read it before `publish_at`.
        unsafe {
            self.producer
                .ep
                .region
                .slice_unchecked(self.offset + HEADER_LEN, self.len)
        }
    }
}

impl DerefMut for WriteGrant<'_> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`; the `&mut self` borrow makes this the only reference.
        unsafe {
            self.producer
                .ep
                .region
                .slice_mut_unchecked(self.offset + HEADER_LEN, self.len)
        }
    }
}

impl std::fmt::Debug for WriteGrant<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteGrant")
            .field("position", &self.position)
            .field("len", &self.len)
            .finish()
    }
}
