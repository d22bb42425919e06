//! The reading end of an SPSC ring: the API forms over the read cursor.

use std::ops::Deref;
use std::time::Duration;

use super::read_cursor::ReadCursor;
use super::takeover::{RecoveredFrame, Takeover};
use super::{peer_of, Endpoint};
use crate::counters::Tally;
use crate::error::{Error, Result, Role};
use crate::os::{copy_frame, HOST};
use crate::role::{PeerStatus, Predecessor};
use crate::segment::Segment;
use crate::wait::{Doorbell, Limit, WaitPolicy, WaitStats, Waiter};

/// The end of an SPSC ring that reads frames.
///
/// Read in place with [`recv`](Self::recv) (zero copy: the grant borrows the frame in the ring,
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
///
/// After `PeerGone` the consumer stays usable: it keeps its role, and once a replacement
/// producer attaches (a dead producer's role can be taken over, a detached one's taken again),
/// calls succeed again, with the frames the new producer commits after the ones already read.
/// [`wait_for_peer`](Self::wait_for_peer) waits for it.
///
/// A consumer that attaches where another one was reads on from exactly where that one stopped:
/// after the last frame it received, whether it detached or died (it records each frame it hands
/// out, though it hands space back in batches). No frame it released is delivered again. If it
/// died, the last frame it received may have been in hand (being handled) when it did: that
/// frame is reported by [`takeover`](Self::takeover), and delivered again only if
/// [`SpscOptions::redeliver_in_hand`](crate::SpscOptions::redeliver_in_hand) says so. A frame
/// is in hand from the call that hands it out until the next call that receives (or finds the
/// ring empty); dropping its grant ends it only if that handed the space back.
pub struct Consumer {
    cursor: ReadCursor,
    ep: Endpoint,
    /// The pause a wait that follows the draining of a stream begins with (see
    /// `wait_for_frame`).
    stream_pause: Duration,
    /// What we found when we took the role over from a consumer that died.
    takeover: Option<Takeover>,
}

impl Consumer {
    pub(crate) fn attach(
        segment: &Segment,
        policy: WaitPolicy,
        stream_pause: Duration,
        redeliver_in_hand: bool,
    ) -> Result<Self> {
        let mut ep = Endpoint::attach(segment, Role::Consumer, policy)?;
        let params = &segment.params;
        let (mut cursor, in_hand) = ReadCursor::resume(&ep.region, params, redeliver_in_hand)?;
        let in_hand =
            in_hand.map(|(at, len)| RecoveredFrame::copy(&ep.region, params.capacity, at, len));
        // Frees what our predecessor read since it last did, and wakes a producer waiting on it.
        cursor.count_slow(&ep.region);
        cursor.publish(&ep.region, &mut ep.notifier);
        let takeover = match ep.hold.predecessor() {
            Predecessor::Died { pid } => Some(Takeover {
                pid,
                redelivered: redeliver_in_hand && in_hand.is_some(),
                in_hand,
            }),
            Predecessor::None | Predecessor::Detached => None,
        };
        Ok(Consumer {
            cursor,
            ep,
            stream_pause,
            takeover,
        })
    }

    /// What this consumer found if it took its role over from a consumer that died: which
    /// process that was, and the frame it may have had in hand, if any. `None` if the role was free (the
    /// previous consumer detached, or there was none). Frames the dead consumer released are
    /// not delivered again: this consumer starts after them.
    ///
    /// ```
    /// # fn main() -> Result<(), ringport::Error> {
    /// let (_producer, consumer) = ringport::SpscOptions::new().in_process()?;
    /// assert!(consumer.takeover().is_none());
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn takeover(&self) -> Option<&Takeover> {
        self.takeover.as_ref()
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

    /// For the fuzz bodies' invariant checks: our position and the one last published.
    #[cfg(feature = "testing")]
    pub(crate) fn positions(&self) -> (u64, u64) {
        (self.cursor.position, self.cursor.published)
    }

    /// Whether the producer is attached and alive (checks its process: a system call). Where
    /// the kernel cannot check it (another pid namespace), a live-looking peer is `Present`.
    pub fn peer_status(&mut self) -> PeerStatus {
        self.ep.hold.peer_status(self.ep.region.header())
    }

    /// Waits until a producer holds its role, at most `timeout`; returns at once if one does. (A
    /// blocking call on a ring whose peer never attached waits for it as long as its own limit
    /// says: this is the way to bound that wait.) After [`Error::PeerGone`], it waits for a
    /// replacement: a producer that takes the role over.
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

    /// The next frame, if one is published now.
    ///
    /// # Errors
    /// [`Error::Empty`] if none is; [`Error::PeerGone`] if none is and the producer detached;
    /// [`Error::Corrupted`] if the ring breaks its invariants.
    // Always inlined, with everything but a ready frame out of line: busy-polling loops call
    // this at every turn, and a call that returns the grant through memory cost streaming
    // throughput (docs/PERFORMANCE.md, "Inlining the hot forms").
    #[inline(always)]
    pub fn try_recv(&mut self) -> Result<ReadGrant<'_>> {
        match self.cursor.poll(&self.ep.region, &mut self.ep.notifier)? {
            Some(len) => Ok(ReadGrant {
                consumer: self,
                len,
            }),
            None => self.try_recv_none(),
        }
    }

    /// Empty, unless the producer has gone.
    #[inline(always)]
    fn try_recv_none(&mut self) -> Result<ReadGrant<'_>> {
        if self.ep.peer_gone() {
            return self.try_recv_gone();
        }
        Err(Error::Empty)
    }

    #[cold]
    #[inline(never)]
    fn try_recv_gone(&mut self) -> Result<ReadGrant<'_>> {
        // The detach may have landed after our look: look once more.
        match self.cursor.poll(&self.ep.region, &mut self.ep.notifier)? {
            Some(len) => Ok(ReadGrant {
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
    pub fn recv(&mut self) -> Result<ReadGrant<'_>> {
        self.recv_until(Limit::Forever)
    }

    /// As [`recv`](Self::recv), giving up after `timeout`.
    ///
    /// # Errors
    /// As [`recv`](Self::recv), and [`Error::Timeout`].
    #[inline]
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<ReadGrant<'_>> {
        self.recv_until(Limit::After(timeout))
    }

    /// For `rpc`: the next frame that `keep` accepts, waiting until `deadline` (None: as long
    /// as it takes); the refused are released unread, as a dropped grant is.
    ///
    /// # Errors
    /// As [`recv_timeout`](Self::recv_timeout).
    pub(crate) fn recv_kept(
        &mut self,
        deadline: Option<std::time::Instant>,
        mut keep: impl FnMut(&[u8]) -> bool,
    ) -> Result<ReadGrant<'_>> {
        let len = loop {
            let limit = match deadline {
                None => Limit::Forever,
                Some(d) => Limit::After(d.saturating_duration_since(std::time::Instant::now())),
            };
            let len = match self.cursor.poll(&self.ep.region, &mut self.ep.notifier)? {
                Some(len) => len,
                None => self.wait_for_frame(limit)?,
            };
            let look = ReadGrant {
                consumer: self,
                len,
            };
            let kept = keep(&look);
            // Not dropped: that would release the frame, which stays ours if it is kept.
            std::mem::forget(look);
            if kept {
                break len;
            }
            drop(ReadGrant {
                consumer: self,
                len,
            });
        };
        Ok(ReadGrant {
            consumer: self,
            len,
        })
    }

    /// A ready frame is taken inline, as by `try_recv`; waiting is out of line.
    #[inline(always)]
    fn recv_until(&mut self, limit: Limit) -> Result<ReadGrant<'_>> {
        let len = match self.cursor.poll(&self.ep.region, &mut self.ep.notifier)? {
            Some(len) => len,
            None => self.wait_for_frame(limit)?,
        };
        Ok(ReadGrant {
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
        let (ep, cursor) = (&mut self.ep, &mut self.cursor);
        let region = &ep.region;
        // What was received so far is counted in the segment before we wait, however long.
        cursor.count_slow(region);
        let pause = if cursor.drained_a_stream() {
            self.stream_pause
        } else {
            Duration::ZERO
        };
        let bell = Doorbell::data(region.header());
        Waiter::new(bell, ep.fences, ep.policy, &mut ep.stats, HOST)
            .tallied(Tally::sole(region.header(), Role::Consumer))
            .pause_first(pause)
            .wait(
                limit,
                || cursor.poll(region, &mut ep.notifier),
                |look| peer_of(region, &mut ep.hold, look),
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
        match self
            .cursor
            .drain(&self.ep.region, &mut self.ep.notifier, max, &mut f)?
        {
            0 if self.ep.peer_gone() => {
                // The departure may have landed after our look: look once more.
                match self
                    .cursor
                    .drain(&self.ep.region, &mut self.ep.notifier, max, &mut f)?
                {
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
    // 8-byte stream lost a third of its rate (docs/PERFORMANCE.md, "Inlining the hot forms").
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
    /// Hands the next frame to `f`, read in place, waiting for one, and frees it when `f`
    /// returns; returns what `f` returns. The `Result` of [`recv`](Self::recv) holds its grant,
    /// so its error arm in a `match` still borrows the consumer; this form's does not, so a loop
    /// can drop the consumer there, or attach a replacement, when the producer has gone:
    ///
    /// ```
    /// # fn main() -> Result<(), ringport::Error> {
    /// use ringport::{Error, SpscOptions};
    ///
    /// let (mut producer, mut consumer) = SpscOptions::new().in_process()?;
    /// producer.send(b"last")?;
    /// drop(producer);
    /// let mut got = Vec::new();
    /// loop {
    ///     match consumer.recv_with(|frame| frame.to_vec()) {
    ///         Ok(frame) => got.push(frame),
    ///         Err(Error::PeerGone(_)) => {
    ///             // The consumer is ours again: drop it, or wait for a new producer.
    ///             drop(consumer);
    ///             break;
    ///         }
    ///         Err(e) => return Err(e),
    ///     }
    /// }
    /// assert_eq!(got, [b"last"]);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    #[inline]
    pub fn recv_with<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> Result<R> {
        let frame = self.recv()?;
        Ok(f(&frame))
    }

    /// As [`recv_with`](Self::recv_with), if a frame is published now.
    ///
    /// # Errors
    /// As [`try_recv`](Self::try_recv).
    #[inline]
    pub fn try_recv_with<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> Result<R> {
        let frame = self.try_recv()?;
        Ok(f(&frame))
    }

    /// As [`recv_with`](Self::recv_with), waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`recv_timeout`](Self::recv_timeout).
    #[inline]
    pub fn recv_with_timeout<R>(
        &mut self,
        f: impl FnOnce(&[u8]) -> R,
        timeout: Duration,
    ) -> Result<R> {
        let frame = self.recv_timeout(timeout)?;
        Ok(f(&frame))
    }
}

impl Consumer {
    /// Ends the consumer as a kill -9 of its process would (no detach, no last position), and
    /// returns its holder (for `ringport::testing`).
    #[cfg(feature = "testing")]
    pub(crate) fn abandon(mut self) -> crate::os::ProcessIdentity {
        self.ep.abandon()
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        if self.ep.abandoned {
            return;
        }
        // A consumer that attaches after us resumes from the published position.
        self.cursor.count_slow(&self.ep.region);
        self.cursor.publish(&self.ep.region, &mut self.ep.notifier);
    }
}

#[inline(always)]
fn copy_out(frame: ReadGrant<'_>, buf: &mut Vec<u8>) -> Result<usize> {
    copy_frame(&frame, buf);
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
#[must_use = "dropping the grant releases the frame at once"]
pub struct ReadGrant<'a> {
    consumer: &'a mut Consumer,
    len: usize,
}

impl Deref for ReadGrant<'_> {
    type Target = [u8];
    #[inline(always)]
    fn deref(&self) -> &[u8] {
        let offset = self.consumer.cursor.payload_offset();
        // SAFETY: `poll` validated that the frame lies inside the data area and saw its header
        // published (Acquire); the producer does not write it until we publish our position in
        // `drop`, and the `&mut Consumer` borrow keeps our side from doing anything else.
        unsafe { self.consumer.ep.region.slice_unchecked(offset, self.len) }
    }
}

impl Drop for ReadGrant<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        let consumer = &mut *self.consumer;
        consumer
            .cursor
            .release(&consumer.ep.region, &mut consumer.ep.notifier);
    }
}

impl std::fmt::Debug for ReadGrant<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadGrant").field("len", &self.len).finish()
    }
}
