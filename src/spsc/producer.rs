//! The writing end of an SPSC ring: the API forms over the write cursor.

use std::ops::{Deref, DerefMut};
use std::time::Duration;

use super::takeover::RecoveredFrame;
use super::write_cursor::{InPlaceBatch, WriteCursor};
use super::{peer_of, Endpoint, PRODUCER_POS};
use crate::counters::Tally;
use crate::error::{Error, Result, Role};
use crate::frame::HEADER_LEN;
use crate::os::HOST;
use crate::role::{PeerStatus, Predecessor};
use crate::segment::Segment;
use crate::sync::Ordering;
use crate::wait::{Doorbell, Limit, WaitPolicy, WaitStats, Waiter};

/// The end of an SPSC ring that writes frames.
///
/// Write in place with [`reserve`](Self::reserve) (zero copy) or copy with
/// [`send`](Self::send). Each has a `try_` form that fails at once with [`Error::Full`] and a
/// `_timeout` form. Blocking forms spin briefly, then sleep until the consumer frees space.
///
/// Dropping the producer detaches it: the consumer receives what was committed, then
/// [`Error::PeerGone`]. A producer whose consumer has gone gets `PeerGone` once the ring is full;
/// it stays usable, and once a replacement consumer attaches, that consumer reads on from where
/// the last one stopped, and sends succeed again ([`wait_for_peer`](Self::wait_for_peer)).
///
/// A producer that attaches where another one was (one that detached, or died: its role is
/// taken over) writes after the last frame that one committed, and can read that frame with
/// [`last_committed`](Self::last_committed), to know where its predecessor stopped.
pub struct Producer {
    cursor: WriteCursor,
    ep: Endpoint,
    /// The last frame committed before we attached, if the ring still held it.
    last_committed: Option<RecoveredFrame>,
}

impl Producer {
    pub(crate) fn attach(segment: &Segment, policy: WaitPolicy) -> Result<Self> {
        let ep = Endpoint::attach(segment, Role::Producer, policy)?;
        let (cursor, last) = WriteCursor::resume(&ep.region, &segment.params)?;
        let capacity = segment.params.capacity;
        let last_committed =
            last.map(|(at, len)| RecoveredFrame::copy(&ep.region, capacity, at, len));
        Ok(Producer {
            cursor,
            ep,
            last_committed,
        })
    }

    /// The last frame committed to the ring before this producer attached, by whichever
    /// producer committed it, copied at attach; `None` if there was none. A producer that takes
    /// over from one that died learns from it where that one stopped, so that it sends nothing
    /// twice: a frame the dead producer was writing and had not committed is not in the ring.
    /// Found unread in the ring, or, if everything was read, as the last frame the consumer
    /// received (its ledger records that).
    ///
    /// ```
    /// # fn main() -> Result<(), ringport::Error> {
    /// let (producer, _consumer) = ringport::SpscOptions::new().in_process()?;
    /// assert!(producer.last_committed().is_none());
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn last_committed(&self) -> Option<&RecoveredFrame> {
        self.last_committed.as_ref()
    }

    /// The process that held the producer role and died, if this producer took it over from
    /// it; `None` if the role was free (never held, or its holder detached).
    #[must_use]
    pub fn took_over_from(&self) -> Option<u32> {
        match self.ep.hold.predecessor() {
            Predecessor::Died { pid } => Some(pid),
            Predecessor::None | Predecessor::Detached => None,
        }
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

    /// For the fuzz bodies' invariant checks: our position and the consumer's as last read.
    #[cfg(feature = "testing")]
    pub(crate) fn positions(&self) -> (u64, u64) {
        (self.cursor.position, self.cursor.cached_consumer)
    }

    /// Whether the consumer is attached and alive (checks its process: a system call). Where
    /// the kernel cannot check it (another pid namespace), a live-looking peer is `Present`.
    pub fn peer_status(&mut self) -> PeerStatus {
        self.ep.hold.peer_status(self.ep.region.header())
    }

    /// Waits until a consumer holds its role, at most `timeout`; returns at once if one does. (A
    /// blocking call on a ring whose peer never attached waits for it as long as its own limit
    /// says: this is the way to bound that wait.) After [`Error::PeerGone`], it waits for a
    /// replacement: a consumer that takes the role over.
    ///
    /// # Errors
    /// [`Error::Timeout`] if none came in time.
    pub fn wait_for_peer(&mut self, timeout: Duration) -> Result<()> {
        self.ep.wait_for_peer(timeout)
    }

    /// See `Endpoint::watch_hangup` (for a channel's ring).
    pub(crate) fn watch_hangup(&mut self, link: std::os::fd::BorrowedFd<'_>) -> bool {
        self.ep.watch_hangup(link)
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
        let (position, offset) = (self.cursor.position, self.cursor.offset());
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
        } else if self.ep.peer_gone() {
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
        let (ep, cursor) = (&mut self.ep, &mut self.cursor);
        let region = &ep.region;
        let bell = Doorbell::space(region.header());
        Waiter::new(bell, ep.fences, ep.policy, &mut ep.stats, HOST)
            .tallied(Tally::sole(region.header(), Role::Producer))
            .wait(
                limit,
                || Ok(cursor.claim(region, len)?.then_some(())),
                |look| peer_of(region, &mut ep.hold, look),
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
    /// returns how many. The position stays in registers from one frame to the next, the batch
    /// is published at once, and the consumer's bell is checked once for the lot.
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
            0 if self.ep.peer_gone() => Err(Error::PeerGone(Role::Consumer)),
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

    /// Starts a batch of frames written in place: each [`WriteBatch::try_push`] gives the next
    /// frame's bytes to fill, and [`WriteBatch::commit`] publishes them all at once, ringing the
    /// consumer's bell once (as rtrb's `write_chunk_uninit`, with frames of any length). Until
    /// the commit the consumer sees none of them, so one that keeps up does not follow the
    /// writes line by line.
    ///
    /// ```
    /// # fn main() -> Result<(), ringport::Error> {
    /// let (mut producer, mut consumer) = ringport::SpscOptions::new().in_process()?;
    /// let mut batch = producer.write_batch();
    /// for i in 0..10u64 {
    ///     batch.try_push(8)?.copy_from_slice(&i.to_le_bytes());
    /// }
    /// assert_eq!(batch.commit(), 10);
    /// let mut sum = 0;
    /// consumer.try_recv_many(usize::MAX, |frame| {
    ///     sum += u64::from_le_bytes(frame.try_into().unwrap())
    /// })?;
    /// assert_eq!(sum, 45);
    /// # Ok(()) }
    /// ```
    #[inline(always)]
    pub fn write_batch(&mut self) -> WriteBatch<'_> {
        WriteBatch {
            batch: InPlaceBatch::new(&self.cursor, &self.ep.region, self.ep.max_frame as usize),
            producer: self,
        }
    }

    fn check_lens<T: AsRef<[u8]>>(&self, frames: &[T]) -> Result<()> {
        frames
            .iter()
            .try_for_each(|frame| self.check_len(frame.as_ref().len()))
    }

    /// The batch loop of the `send_many` forms (lengths already checked): writes what fits
    /// now, then rings the consumer's bell once.
    #[inline]
    fn push_many<T: AsRef<[u8]>>(&mut self, frames: &[T]) -> Result<usize> {
        let sent = self.cursor.write_batch(&self.ep.region, frames)?;
        if sent > 0 {
            Doorbell::data(self.ep.region.header()).ring(&mut self.ep.notifier);
        }
        Ok(sent)
    }

    /// Publishes the frame of `len` bytes written at ring `position`, data-area `offset`, and
    /// rings the consumer's bell.
    #[inline(always)]
    fn publish_at(&mut self, position: u64, offset: usize, len: usize) {
        self.cursor.publish(&self.ep.region, position, offset, len);
        Doorbell::data(self.ep.region.header()).ring(&mut self.ep.notifier);
    }
}

impl Producer {
    /// Ends the producer as a kill -9 of its process would (no detach, no last position), and
    /// returns its holder (for `ringport::testing`).
    #[cfg(feature = "testing")]
    pub(crate) fn abandon(mut self) -> crate::os::ProcessIdentity {
        self.ep.abandon()
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        if self.ep.abandoned {
            return;
        }
        // Relaxed: the Release of our role word, when the endpoint lets go of it right after,
        // publishes this to the next producer.
        self.ep.region.header().positions[PRODUCER_POS]
            .store(self.cursor.position, Ordering::Relaxed);
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
    /// again (the ring might alias the producer, for all it knows), which cost an 8-byte writer
    /// a fifth of its rate (docs/PERFORMANCE.md, "A grant that carries its frame").
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

/// Frames written in place and published together: from [`Producer::write_batch`].
///
/// [`try_push`](Self::try_push) claims each frame; [`commit`](Self::commit) publishes them all.
/// Dropping the batch without committing aborts it: the consumer sees none of its frames.
#[must_use = "a batch that is dropped is aborted; call commit()"]
pub struct WriteBatch<'a> {
    producer: &'a mut Producer,
    batch: InPlaceBatch,
}

impl WriteBatch<'_> {
    /// Claims the next frame of the batch, `len` bytes, and returns them to fill (they hold
    /// whatever the ring held there before). The frame is published with the batch, whole: to
    /// send fewer bytes, claim fewer.
    ///
    /// # Errors
    /// [`Error::InvalidLength`] unless `1 <= len <= max_frame`; [`Error::Full`] if there is no
    /// room for it now (commit what the batch holds, then start another); [`Error::PeerGone`]
    /// if the consumer detached and there is no room; [`Error::Corrupted`]. The frames claimed
    /// before stay in the batch.
    #[inline(always)]
    pub fn try_push(&mut self, len: usize) -> Result<&mut [u8]> {
        let max = self.batch.max_frame();
        if len == 0 || len > max {
            return Err(Error::InvalidLength { len, max });
        }
        let producer = &mut *self.producer;
        let Some(offset) = self
            .batch
            .claim(&mut producer.cursor, &producer.ep.region, len)?
        else {
            return Err(if producer.ep.peer_gone() {
                Error::PeerGone(Role::Consumer)
            } else {
                Error::Full
            });
        };
        // SAFETY: the claim gave this range to the producer, which we borrow mutably, and
        // bounded it by the capacity; the consumer does not read it before the batch is
        // published; the producer keeps the memory alive; and the returned borrow of `self`
        // ends before the next claim or the commit.
        Ok(unsafe { self.batch.payload(offset, len) })
    }

    /// How many frames the batch holds.
    #[must_use]
    #[inline]
    pub fn len(&self) -> usize {
        self.batch.frames()
    }

    /// Whether the batch holds no frame.
    #[must_use]
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.batch.frames() == 0
    }

    /// Publishes every frame of the batch, in order, and rings the consumer's bell once;
    /// returns how many there were (an empty batch publishes nothing).
    #[inline(always)]
    pub fn commit(self) -> usize {
        // Not dropped: the drop aborts.
        let mut this = std::mem::ManuallyDrop::new(self);
        let WriteBatch { producer, batch } = &mut *this;
        if batch.publish(&mut producer.cursor, &producer.ep.region) {
            Doorbell::data(producer.ep.region.header()).ring(&mut producer.ep.notifier);
        }
        batch.frames()
    }
}

impl Drop for WriteBatch<'_> {
    fn drop(&mut self) {
        self.batch.abort(&mut self.producer.cursor);
    }
}

impl std::fmt::Debug for WriteBatch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteBatch")
            .field("frames", &self.batch.frames())
            .finish_non_exhaustive()
    }
}
