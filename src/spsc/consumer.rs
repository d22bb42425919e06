//! The reading end of an SPSC ring.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use super::{Endpoint, CONSUMER_POS, DATA_BELL, SPACE_BELL};
use crate::error::{Error, Result, Role};
use crate::frame::{self, frame_size, Frame, HEADER_LEN};
use crate::layout::{RingParams, MAX_POSITION};
use crate::region::{Region, RingMemory};
use crate::role::PeerStatus;
use crate::sync::Ordering;
use crate::wait::{block_on, Limit, Notifier, WaitPolicy, WaitStats};

/// The consumer's private view: where the next frame starts, and how much of what it has read
/// it has told the producer about.
struct Cursor {
    position: u64,
    /// The position last stored for the producer; frames before it are free space.
    published: u64,
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
    /// length, but deriving them on every frame cost the 8-byte streams 4-10 %
    /// (`spsc_baselines -- --stream-only`, both forms run in one session).
    last_head: u64,
    last_size: u64,
    last_fit: u64,
    /// Where the last blocking wait began: a wait that begins more than one frame past it
    /// follows the draining of a stream (see `Consumer::wait_for_frame`).
    waited_at: u64,
}

impl Cursor {
    fn new(position: u64, capacity: u64, max_frame: u32) -> Cursor {
        // At least one 8-byte slot: few stores, little space held.
        let release_every = (capacity / 16).max(8);
        let mut cursor = Cursor {
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
        };
        cursor.remember(1);
        cursor
    }

    fn capacity(&self) -> u64 {
        self.mask + 1
    }

    fn remember(&mut self, len: usize) {
        // Valid lengths fit in u32: `decode` checked len <= max_frame.
        self.last_head = frame::data_header(len as u32, 0);
        self.last_size = frame_size(len) as u64;
        self.last_fit = self.capacity() - self.last_size;
    }

    /// The payload length of the next frame if one is published.
    #[inline(always)]
    fn poll(&mut self, region: &RingMemory, notifier: &mut Notifier) -> Result<Option<usize>> {
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
            return Ok(Some(expected as u32 as usize));
        }
        match frame::decode(word, position, self.capacity(), self.max_frame) {
            Ok(Frame::Data(len)) => {
                self.remember(len);
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
    fn drain(
        &mut self,
        region: &RingMemory,
        notifier: &mut Notifier,
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
                self.publish(region, notifier);
                release_at = self.release_at;
            }
        }
        Ok(handed)
    }

    /// Empty, padding or an error.
    #[cold]
    #[inline(never)]
    fn poll_slow(
        &mut self,
        region: &RingMemory,
        notifier: &mut Notifier,
        first: Result<Frame>,
    ) -> Result<Option<usize>> {
        let mut frame = first?;
        if frame == Frame::Pad {
            let skipped = self.capacity() - (self.position & self.mask);
            self.position += skipped;
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
    fn release(&mut self, region: &RingMemory, notifier: &mut Notifier) {
        self.position += self.last_size;
        if self.position >= self.release_at {
            self.publish(region, notifier);
        }
    }

    /// Frees everything before our position to the producer.
    #[inline]
    fn publish(&mut self, region: &RingMemory, notifier: &mut Notifier) {
        if self.published == self.position {
            return;
        }
        self.published = self.position;
        self.release_at = self.position + self.release_every;
        // Release: our reads of the freed frames happen before the producer's reuse of them.
        region.header().positions[CONSUMER_POS].store(self.position, Ordering::Release);
        region.header().bells[SPACE_BELL].ring(notifier);
    }
}

/// The end of an SPSC ring that reads frames.
///
/// Read in place with [`recv`](Self::recv) (zero copy: the guard borrows the frame in the ring,
/// and frees it when dropped) or copy with [`recv_into`](Self::recv_into). Each has a `try_` form
/// that fails at once with [`Error::Empty`] and a `_timeout` form. Blocking forms spin briefly,
/// then sleep until the producer publishes.
///
/// Space is handed back to the producer in batches of a sixteenth of the capacity, and whenever
/// the consumer finds the ring empty (and when it is dropped): publishing the read position on
/// every frame would bounce its cache line between the cores.
///
/// Frames committed before the producer detached or died are still delivered; after them,
/// blocking forms return [`Error::PeerGone`]. `try_` forms notice only a clean detach (one
/// atomic load, so that busy-polling stays cheap); [`peer_status`](Self::peer_status) checks
/// that the producer's process is alive.
pub struct Consumer {
    cursor: Cursor,
    ep: Endpoint,
    /// The pause a wait that follows the draining of a stream begins with (see
    /// `wait_for_frame`).
    stream_pause: Duration,
}

impl Consumer {
    pub(crate) fn attach(
        region: Arc<Region>,
        params: RingParams,
        policy: WaitPolicy,
        stream_pause: Duration,
    ) -> Result<Self> {
        let ep = Endpoint::attach(region, params, Role::Consumer, policy)?;
        // Acquire: the previous consumer's last store before it let go of the role.
        let position = ep.region.header().positions[CONSUMER_POS].load(Ordering::Acquire);
        if position % 8 != 0 || position > MAX_POSITION {
            return Err(Error::corrupted("consumer position", position, 0));
        }
        Ok(Consumer {
            cursor: Cursor::new(position, params.capacity, params.max_frame),
            ep,
            stream_pause,
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
    /// For the fuzz bodies' invariant checks: our position and the one last published.
    pub(crate) fn positions(&self) -> (u64, u64) {
        (self.cursor.position, self.cursor.published)
    }

    /// Whether the producer is attached and alive (checks its process: a system call).
    pub fn peer_status(&mut self) -> PeerStatus {
        self.ep.hold.peer_status(self.ep.region.header())
    }

    /// The next frame, if one is published now.
    ///
    /// # Errors
    /// [`Error::Empty`] if none is; [`Error::PeerGone`] if none is and the producer detached;
    /// [`Error::Corrupted`] if the ring breaks its invariants.
    // Always inlined, with everything but a ready frame out of line: busy-polling loops call
    // this at every turn, and a call that returns the guard through memory cost streaming
    // throughput (measured in one harness: 155 against 180 M/s of 8-byte frames).
    #[inline(always)]
    pub fn try_recv(&mut self) -> Result<ReadGuard<'_>> {
        match self.cursor.poll(&self.ep.region, &mut self.ep.notifier)? {
            Some(len) => Ok(ReadGuard {
                consumer: self,
                len,
            }),
            None => self.try_recv_none(),
        }
    }

    #[cold]
    #[inline(never)]
    fn try_recv_none(&mut self) -> Result<ReadGuard<'_>> {
        if !self.ep.hold.peer_detached(self.ep.region.header()) {
            return Err(Error::Empty);
        }
        // The detach may have landed after our look: look once more.
        match self.cursor.poll(&self.ep.region, &mut self.ep.notifier)? {
            Some(len) => Ok(ReadGuard {
                consumer: self,
                len,
            }),
            None => Err(Error::PeerGone(Role::Producer)),
        }
    }

    /// The next frame, waiting for one.
    ///
    /// # Errors
    /// [`Error::PeerGone`] once the ring is empty and the producer detached or died;
    /// [`Error::Corrupted`].
    #[inline(always)]
    pub fn recv(&mut self) -> Result<ReadGuard<'_>> {
        self.recv_until(Limit::Forever)
    }

    /// As [`recv`](Self::recv), giving up after `timeout`.
    ///
    /// # Errors
    /// As [`recv`](Self::recv), and [`Error::Timeout`].
    #[inline]
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<ReadGuard<'_>> {
        self.recv_until(Limit::After(timeout))
    }

    /// A ready frame is taken inline, as by `try_recv`; waiting is out of line.
    #[inline(always)]
    fn recv_until(&mut self, limit: Limit) -> Result<ReadGuard<'_>> {
        let len = match self.cursor.poll(&self.ep.region, &mut self.ep.notifier)? {
            Some(len) => len,
            None => self.wait_for_frame(limit)?,
        };
        Ok(ReadGuard {
            consumer: self,
            len,
        })
    }

    /// Waits for a frame, with the stream pause first if we drained more than one frame since
    /// the last wait (see [`SpscOptions::stream_pause`](crate::SpscOptions::stream_pause)). One
    /// frame per wait is a request and its reply, or a producer slower than we are: pausing
    /// would only delay it. More than one, and the producer is writing as fast as we read: a
    /// look at the empty ring now would take back the line it is filling.
    #[inline(never)]
    fn wait_for_frame(&mut self, limit: Limit) -> Result<usize> {
        let ep = &mut self.ep;
        let cursor = &mut self.cursor;
        let region = &ep.region;
        // `last_size` is the size of the last frame read (of a 1-byte frame before any): past
        // `waited_at` by more than that, we read at least two.
        let streamed = cursor.position - cursor.waited_at > cursor.last_size;
        cursor.waited_at = cursor.position;
        let policy = WaitPolicy {
            pause: if streamed {
                self.stream_pause
            } else {
                Duration::ZERO
            },
            ..ep.policy
        };
        if !policy.pause.is_zero() && !policy.spin.is_zero() {
            ep.stats.stream_pauses += 1;
        }
        block_on(
            &region.header().bells[DATA_BELL],
            ep.fences,
            &policy,
            limit,
            || cursor.poll(region, &mut ep.notifier),
            |thorough| ep.hold.departure(region.header(), thorough),
            &mut ep.stats,
        )
    }

    /// Hands each frame that is published now, up to `max` of them, to `f` in order, freeing
    /// each when `f` returns; returns how many. The frames are read in place, as by
    /// [`try_recv`](Self::try_recv), but the position stays in registers from one frame to the
    /// next: the fastest way to drain a stream of small frames.
    ///
    /// If `f` panics, the frame it was given counts as read.
    ///
    /// ```
    /// # fn main() -> Result<(), ringport::Error> {
    /// let (mut producer, mut consumer) = ringport::SpscOptions::new().in_process()?;
    /// producer.send_many(&[b"one", b"two", b"six"])?;
    /// let mut seen = Vec::new();
    /// let n = consumer.try_recv_many(usize::MAX, |frame| seen.push(frame.to_vec()))?;
    /// assert_eq!((n, &seen[2][..]), (3, &b"six"[..]));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`try_recv`](Self::try_recv), only when no frame is handed: an error met after some
    /// frames ends the batch, and the next call returns it. `max == 0` returns `Ok(0)` at once.
    #[inline]
    pub fn try_recv_many<F: FnMut(&[u8])>(&mut self, max: usize, mut f: F) -> Result<usize> {
        if max == 0 {
            return Ok(0);
        }
        let (region, notifier) = (&self.ep.region, &mut self.ep.notifier);
        match self.cursor.drain(region, notifier, max, &mut f)? {
            0 if self.ep.hold.peer_detached(region.header()) => {
                // The detach may have landed after our look: look once more.
                match self.cursor.drain(region, notifier, max, &mut f)? {
                    0 => Err(Error::PeerGone(Role::Producer)),
                    n => Ok(n),
                }
            }
            0 => Err(Error::Empty),
            n => Ok(n),
        }
    }

    /// As [`try_recv_many`](Self::try_recv_many), but waits for the first frame as
    /// [`recv`](Self::recv) does.
    ///
    /// # Errors
    /// As [`recv`](Self::recv), only when no frame is handed.
    #[inline]
    pub fn recv_many<F: FnMut(&[u8])>(&mut self, max: usize, f: F) -> Result<usize> {
        self.recv_many_until(max, f, Limit::Forever)
    }

    /// As [`recv_many`](Self::recv_many), giving up after `timeout` if no frame came.
    ///
    /// # Errors
    /// As [`recv_timeout`](Self::recv_timeout), only when no frame is handed.
    #[inline]
    pub fn recv_many_timeout<F: FnMut(&[u8])>(
        &mut self,
        max: usize,
        f: F,
        timeout: Duration,
    ) -> Result<usize> {
        self.recv_many_until(max, f, Limit::After(timeout))
    }

    #[inline(always)]
    fn recv_many_until<F: FnMut(&[u8])>(
        &mut self,
        max: usize,
        mut f: F,
        limit: Limit,
    ) -> Result<usize> {
        if max == 0 {
            return Ok(0);
        }
        loop {
            match self
                .cursor
                .drain(&self.ep.region, &mut self.ep.notifier, max, &mut f)?
            {
                // The wait leaves a frame ready, unless a hostile producer took it back.
                0 => self.wait_for_frame(limit).map(drop)?,
                n => return Ok(n),
            }
        }
    }

    /// Copies the next frame into `buf` (replacing its contents), waiting for one; returns its
    /// length.
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    #[inline(always)]
    pub fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        copy_out(self.recv()?, buf)
    }

    /// Copies the next frame into `buf` if one is published now.
    ///
    /// # Errors
    /// As [`try_recv`](Self::try_recv).
    // Always inlined, like every hot public form here: a hint was not enough. With a second
    // call site in one binary the compiler made this a call, and the copying reader of an
    // 8-byte stream fell from 260 to 174 M/s (`spsc_baselines -- --sides`).
    #[inline(always)]
    pub fn try_recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        copy_out(self.try_recv()?, buf)
    }

    /// Copies the next frame into `buf`, waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`recv_timeout`](Self::recv_timeout).
    #[inline]
    pub fn recv_into_timeout(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<usize> {
        copy_out(self.recv_timeout(timeout)?, buf)
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        // A consumer that attaches after us resumes from the published position.
        self.cursor.publish(&self.ep.region, &mut self.ep.notifier);
    }
}

#[inline(always)]
fn copy_out(frame: ReadGuard<'_>, buf: &mut Vec<u8>) -> Result<usize> {
    crate::region::copy_frame(&frame, buf);
    Ok(frame.len)
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("capacity", &self.ep.capacity)
            .field("max_frame", &self.ep.max_frame)
            .field("position", &self.cursor.position)
            .finish_non_exhaustive()
    }
}

/// A received frame, read in place. Derefs to its bytes; dropping it frees the space.
#[must_use = "dropping the guard releases the frame at once"]
pub struct ReadGuard<'a> {
    consumer: &'a mut Consumer,
    len: usize,
}

impl Deref for ReadGuard<'_> {
    type Target = [u8];
    #[inline(always)]
    fn deref(&self) -> &[u8] {
        let cursor = &self.consumer.cursor;
        let offset = (cursor.position & cursor.mask) as usize + HEADER_LEN;
        // SAFETY: `poll` validated that the frame lies inside the data area and saw its header
        // published (Acquire); the producer does not write it until we publish our position in
        // `drop`, and the `&mut Consumer` borrow keeps our side from doing anything else.
        unsafe { self.consumer.ep.region.slice_unchecked(offset, self.len) }
    }
}

impl Drop for ReadGuard<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        let consumer = &mut *self.consumer;
        consumer
            .cursor
            .release(&consumer.ep.region, &mut consumer.ep.notifier);
    }
}

impl std::fmt::Debug for ReadGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadGuard").field("len", &self.len).finish()
    }
}
