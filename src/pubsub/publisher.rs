//! The publisher: writes frames as the SPSC producer does, and, when the ring looks full,
//! reclaims the oldest frames that the subscribers let it have (`table`).

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::table::{self, Overflow, Scan, NEWEST, OLDEST};
use super::{overflow_of, History, PubSubOptions, Subscriber, SEQ_LEN};
use crate::error::{Error, Result, Role};
use crate::frame::{self, frame_size, HEADER_LEN};
use crate::layout::{RingParams, MAX_POSITION};
use crate::os::{Host, Kernel, Liveness, RingMemory, Watched, HOST};
use crate::role::many;
use crate::role::RoleHold;
use crate::segment::Segment;
use crate::sync::{fence, Ordering};
use crate::wait::{Doorbell, Fences, Limit, Look, Notifier, Peer, WaitPolicy, WaitStats, Waiter};

/// The end of a publish-subscribe ring that writes messages; every subscriber reads each one.
///
/// Write in place with [`reserve`](Self::reserve) (zero copy) or copy with
/// [`send`](Self::send); each has a `try_` form that fails at once with [`Error::Full`] and a
/// `_timeout` form. With no subscriber attached a message goes to nobody (and may be read by a
/// subscriber that joins at the oldest message while the ring still holds it).
///
/// Dropping the publisher detaches it: subscribers read what was published, then get
/// [`Error::PeerGone`]. A publisher that opens the ring after one that detached or died writes
/// on after its last message, with the next sequence number.
pub struct Publisher {
    mem: RingMemory,
    capacity: u64,
    max_frame: u32,
    overflow: Overflow,
    fences: Fences,
    notifier: Notifier<Host>,
    policy: WaitPolicy,
    stall_timeout: Option<Duration>,
    hold: RoleHold<Host>,
    stats: WaitStats,
    /// Where the next frame goes.
    position: u64,
    /// A frame that ends (with the header slot after it) at or before this fits without a look
    /// at the table: the lap's end, or the floor of the last scan plus the capacity.
    limit: u64,
    /// The lowest position a subscriber needed at the last scan.
    floor: u64,
    /// `OLDEST` as we last stored it.
    oldest: u64,
    /// The sequence number of the next message.
    seq: u64,
    /// Per slot: the attached cursor that held us back, and since when (for the stall timeout).
    stalls: Vec<Option<(u64, u64, Instant)>>,
    /// The death notice on the holder of the slot that held us back last, if one is set up.
    blocker_watch: Option<BlockerWatch>,
    /// The slot that held us back at the last failed scan (index, owner word, and whether by
    /// its cursor rather than a frame in hand).
    blocker: Option<(usize, u64, bool)>,
    /// For [`subscriber`](Self::subscriber).
    options: PubSubOptions,
    params: RingParams,
}

/// A death notice on a subscriber that held the publisher back.
struct BlockerWatch {
    slot: usize,
    word: u64,
    /// None where the kernel cannot watch it: then its process is checked once a liveness
    /// interval. Held for its drop, which cancels the notice.
    watch: Option<<Host as Kernel>::Watch>,
}

impl Publisher {
    pub(super) fn attach(segment: &Segment, options: &PubSubOptions) -> Result<Publisher> {
        let mem = RingMemory::new(Arc::clone(&segment.memory));
        let params = segment.params;
        let fences = Fences::for_ring(params.flags, HOST)?;
        let header = mem.header();
        let hold = RoleHold::claim(header, Role::Producer, HOST)?;
        Doorbell::space(header).reset_sleepers();
        let notifier = Notifier::sole(Doorbell::data(header), fences, HOST);
        let mut publisher = Publisher {
            capacity: params.capacity,
            max_frame: params.max_frame,
            overflow: overflow_of(params.flags),
            fences,
            notifier,
            policy: options.policy(),
            stall_timeout: options.stall_timeout,
            hold,
            stats: WaitStats::default(),
            position: 0,
            limit: 0,
            floor: 0,
            oldest: 0,
            seq: 0,
            stalls: vec![None; mem.subscriber_slots()],
            blocker_watch: None,
            blocker: None,
            options: options.clone(),
            params,
            mem,
        };
        publisher.resume()?;
        Ok(publisher)
    }

    /// Finds where the last publisher stopped: the first free header slot after `OLDEST`, and
    /// the sequence number after the last frame before it (or, if the ring holds none, the one
    /// recorded with `OLDEST`). Bounded: at most one lap of frames.
    fn resume(&mut self) -> Result<()> {
        let header = self.mem.header();
        let oldest = table::oldest(&self.mem)?;
        // Relaxed: written before the Release store of OLDEST that `oldest` acquired.
        let mut seq = header.ledger.received.load(Ordering::Relaxed);
        let mask = self.capacity - 1;
        let mut last = None;
        let (end, broken) = frame::walk(
            oldest,
            oldest + self.capacity,
            self.capacity,
            self.max_frame,
            // Acquire: a frame's payload is visible once its header is.
            |at| {
                Some(
                    self.mem
                        .frame_word((at & mask) as usize)
                        .load(Ordering::Acquire),
                )
            },
            |at, len| last = Some((at, len)),
        );
        if let Some(e) = broken {
            return Err(e);
        }
        if let Some((at, len)) = last {
            seq = read_seq(&self.mem, at, len, mask)?.wrapping_add(1);
        }
        self.position = end;
        self.oldest = oldest;
        self.seq = seq;
        self.floor = oldest;
        self.refresh_limit();
        Ok(())
    }

    /// Makes a subscriber of this ring, in this process, starting where `history` says.
    ///
    /// # Errors
    /// [`Error::NoFreeSlot`] if every subscriber slot is held.
    pub fn subscriber(&self, history: History) -> Result<Subscriber> {
        Subscriber::attach_memory(
            self.mem.share(),
            &self.params,
            history,
            self.options.policy(),
        )
    }

    /// The largest message payload.
    #[must_use]
    pub fn max_message(&self) -> usize {
        self.max_frame as usize - SEQ_LEN
    }

    /// The data area's size in bytes.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.capacity as usize
    }

    /// Subscribers attached now (dropped ones not counted).
    #[must_use]
    pub fn subscribers(&self) -> usize {
        table::attached(&self.mem)
    }

    /// The sequence number the next message will carry (messages published so far, by this
    /// publisher and those before it on the ring).
    #[must_use]
    pub fn next_seq(&self) -> u64 {
        self.seq
    }

    /// How often this publisher had to wait.
    #[must_use]
    pub fn stats(&self) -> WaitStats {
        self.stats
    }

    /// Reserves room for a message of `len` bytes, written in place, or fails at once with
    /// [`Error::Full`].
    ///
    /// # Errors
    /// [`Error::InvalidLength`] unless `len <= max_message()`; [`Error::Full`];
    /// [`Error::Corrupted`] if a subscriber's cursor (or a frame) in shared memory breaks the
    /// ring's rules.
    #[inline]
    pub fn try_reserve(&mut self, len: usize) -> Result<Grant<'_>> {
        let size = self.checked(len)?;
        if self.position + size <= self.limit || self.make_room_slow(size)? {
            return Ok(self.grant(len));
        }
        self.full_slow()
    }

    /// [`try_reserve`](Self::try_reserve), waiting for room as long as it takes.
    ///
    /// # Errors
    /// As `try_reserve`, but never [`Error::Full`].
    pub fn reserve(&mut self, len: usize) -> Result<Grant<'_>> {
        self.reserve_until(len, Limit::Forever)
    }

    /// [`try_reserve`](Self::try_reserve), waiting for room up to `timeout`.
    ///
    /// # Errors
    /// As `try_reserve`, with [`Error::Timeout`] instead of [`Error::Full`].
    pub fn reserve_timeout(&mut self, len: usize, timeout: Duration) -> Result<Grant<'_>> {
        self.reserve_until(len, Limit::After(timeout))
    }

    /// Publishes a copy of `bytes`, or fails at once with [`Error::Full`].
    ///
    /// # Errors
    /// As [`try_reserve`](Self::try_reserve).
    #[inline]
    pub fn try_send(&mut self, bytes: &[u8]) -> Result<()> {
        let mut grant = self.try_reserve(bytes.len())?;
        grant.copy_from_slice(bytes);
        grant.commit();
        Ok(())
    }

    /// Publishes a copy of `bytes`, waiting for room as long as it takes.
    ///
    /// # Errors
    /// As [`reserve`](Self::reserve).
    pub fn send(&mut self, bytes: &[u8]) -> Result<()> {
        let mut grant = self.reserve(bytes.len())?;
        grant.copy_from_slice(bytes);
        grant.commit();
        Ok(())
    }

    /// Publishes a copy of `bytes`, waiting for room up to `timeout`.
    ///
    /// # Errors
    /// As [`reserve_timeout`](Self::reserve_timeout).
    pub fn send_timeout(&mut self, bytes: &[u8], timeout: Duration) -> Result<()> {
        let mut grant = self.reserve_timeout(bytes.len(), timeout)?;
        grant.copy_from_slice(bytes);
        grant.commit();
        Ok(())
    }

    #[inline(always)]
    fn checked(&self, len: usize) -> Result<u64> {
        if len > self.max_message() {
            return Err(Error::InvalidLength {
                len,
                max: self.max_message(),
            });
        }
        Ok(frame_size(len + SEQ_LEN) as u64)
    }

    #[inline(always)]
    fn grant(&mut self, len: usize) -> Grant<'_> {
        let offset = (self.position & (self.capacity - 1)) as usize;
        Grant {
            publisher: self,
            offset,
            len,
        }
    }

    /// The full path of a `try_` form: sets up the death notice on the subscriber in the way.
    #[cold]
    #[inline(never)]
    fn full_slow<T>(&mut self) -> Result<T> {
        self.look_at_blocker(Look::Cheap);
        Err(Error::Full)
    }

    fn reserve_until(&mut self, len: usize, limit: Limit) -> Result<Grant<'_>> {
        let size = self.checked(len)?;
        if !(self.position + size <= self.limit || self.make_room_slow(size)?) {
            self.wait_for_room(size, limit)?;
        }
        Ok(self.grant(len))
    }

    #[cold]
    #[inline(never)]
    fn wait_for_room(&mut self, size: u64, limit: Limit) -> Result<()> {
        let mem = self.mem.share();
        let (fences, policy) = (self.fences, self.policy);
        let mut stats = self.stats;
        // The wait asks one closure at a time: the cell never sees two borrows.
        let this = std::cell::RefCell::new(&mut *self);
        let result = Waiter::new(
            Doorbell::space(mem.header()),
            fences,
            policy,
            &mut stats,
            HOST,
        )
        .wait(
            limit,
            || Ok(this.borrow_mut().make_room_slow(size)?.then_some(())),
            |look| this.borrow_mut().look_at_blocker(look),
        );
        // Copied back: the closures above borrow the rest of `self`.
        self.stats = stats;
        result
    }

    /// Refreshes `limit` from `position` and `floor`.
    fn refresh_limit(&mut self) {
        let lap_end = (self.position | (self.capacity - 1)) + 1;
        let room_end = self.floor + self.capacity - HEADER_LEN as u64;
        self.limit = lap_end.min(room_end);
    }

    /// Finds room for a frame of `size` bytes at `position`, padding to the next lap first if
    /// it would not fit in this one; false if the subscribers do not let us have it now.
    #[cold]
    #[inline(never)]
    fn make_room_slow(&mut self, size: u64) -> Result<bool> {
        let offset = self.position & (self.capacity - 1);
        if offset + size > self.capacity {
            let lap_end = self.position + (self.capacity - offset);
            if !self.room_up_to(lap_end + HEADER_LEN as u64)? {
                return Ok(false);
            }
            // As the SPSC producer's padding: the zeroed slot first, then the padding header
            // with Release. No wake: the next frame follows at once, or a wait rings on commit.
            self.mem.frame_word(0).store(0, Ordering::Relaxed);
            self.mem
                .frame_word(offset as usize)
                .store(frame::pad_header(self.position), Ordering::Release);
            self.position = lap_end;
        }
        self.refresh_limit();
        Ok(self.position + size <= self.limit
            || self.room_up_to(self.position + size + HEADER_LEN as u64)?)
    }

    /// Whether everything up to ring position `end` may be written, reclaiming frames and
    /// scanning the table as needed (see `table`).
    fn room_up_to(&mut self, end: u64) -> Result<bool> {
        if end <= self.floor + self.capacity {
            return Ok(true);
        }
        let (target, seq) = self.target(end)?;
        if target > self.oldest {
            let header = self.mem.header();
            // Relaxed: published by the Release store of OLDEST after it.
            header.ledger.received.store(seq, Ordering::Relaxed);
            // Release: a subscriber that starts at OLDEST sees the frames from it on.
            header.positions[OLDEST].store(target, Ordering::Release);
            self.oldest = target;
            match self.overflow {
                // Subscribers check OLDEST on every frame, with a light fence.
                Overflow::Overwrite => table::heavy_fence(self.fences, HOST),
                // Only joiners read it, and they fence for real (`table::join`).
                Overflow::Block => fence(Ordering::SeqCst),
            }
        }
        let mut scan = table::scan(&self.mem, self.overflow, self.oldest, self.position)?;
        if scan.floor + self.capacity < end && self.drop_stalled(&scan, end)? {
            table::heavy_fence(self.fences, HOST);
            scan = table::scan(&self.mem, self.overflow, self.oldest, self.position)?;
        }
        self.floor = scan.floor;
        self.refresh_limit();
        let room = end <= scan.floor + self.capacity;
        self.blocker = if room { None } else { scan.blocker };
        Ok(room)
    }

    /// Where to reclaim up to for a write up to `end`: the first frame boundary at or after
    /// `end - capacity`, but a quarter ring past the present `OLDEST` if the frames allow (so
    /// that the barrier and the scan come once a quarter lap), and never past the tail. Returns
    /// it with the sequence number of the frame there (or of the next message, at the tail).
    ///
    /// # Errors
    /// [`Error::Corrupted`] if a header between `OLDEST` and the tail is not one we wrote.
    fn target(&self, end: u64) -> Result<(u64, u64)> {
        let need = end.saturating_sub(self.capacity);
        let goal = need.max(self.oldest + self.capacity / 4).min(self.position);
        let mask = self.capacity - 1;
        // Acquire: our own stores, but a subscriber could have written anything here (the walk
        // checks every header).
        let word = |at: u64| {
            Some(
                self.mem
                    .frame_word((at & mask) as usize)
                    .load(Ordering::Acquire),
            )
        };
        let walk =
            |from, end, word: &dyn Fn(u64) -> Option<u64>, each: &mut dyn FnMut(u64, usize)| {
                frame::walk(from, end, self.capacity, self.max_frame, word, each)
            };
        let (at, broken) = walk(self.oldest, goal, &word, &mut |_, _| {});
        if let Some(e) = broken {
            return Err(e);
        }
        if at < goal {
            // An empty slot before the tail: not a ring we wrote.
            return Err(Error::corrupted("reclaimed frame", 0, at));
        }
        if at >= self.position {
            return Ok((self.position, self.seq));
        }
        // The sequence number of the first message from `at` on (padding may come first): the
        // walk stops once it has one.
        let first = std::cell::Cell::new(None);
        let (stop, broken) = walk(
            at,
            self.position,
            &|p| first.get().is_none().then(|| word(p)).flatten(),
            &mut |p, len| first.set(Some((p, len))),
        );
        if let Some(e) = broken {
            return Err(e);
        }
        match first.get() {
            Some((p, len)) => Ok((at, read_seq(&self.mem, p, len, mask)?)),
            None if stop < self.position => Err(Error::corrupted("reclaimed frame", 0, stop)),
            None => Ok((self.position, self.seq)),
        }
    }

    /// Drops the attached subscribers that have held us back from `end`, without moving, for
    /// the stall timeout. Returns whether it dropped any.
    fn drop_stalled(&mut self, scan: &Scan, end: u64) -> Result<bool> {
        let Some(timeout) = self.stall_timeout else {
            return Ok(false);
        };
        if !matches!(scan.blocker, Some((_, _, true))) {
            return Ok(false);
        }
        let now = HOST.now();
        let floor = end - self.capacity;
        let mut stalled = false;
        for index in 0..self.mem.subscriber_slots() {
            let slot = self.mem.subscriber(index);
            let many::Holder::Held {
                word,
                dropped: false,
            } = many::holder(&slot.holder)
            else {
                self.stalls[index] = None;
                continue;
            };
            // Relaxed: a stall clock; `drop_below` rereads what it acts on.
            let cursor = slot.cursor.load(Ordering::Relaxed) & !table::IN_HAND;
            if cursor >= floor {
                self.stalls[index] = None;
                continue;
            }
            match self.stalls[index] {
                Some((w, c, since)) if w == word && c == cursor => {
                    if now.duration_since(since) >= timeout
                        && many::mark_dropped(&slot.holder, word)
                    {
                        stalled = true;
                        self.stalls[index] = None;
                    }
                }
                _ => self.stalls[index] = Some((word, cursor, now)),
            }
        }
        Ok(stalled)
    }

    /// The subscriber that holds us back, as a wait sees it: a death notice set up on its
    /// holder (once per holder) that marks its slot free and rings our bell; where the kernel
    /// cannot watch it, its process is checked on a thorough look.
    fn look_at_blocker(&mut self, look: Look) -> Peer {
        let Some((index, word, by_cursor)) = self.blocker else {
            return Peer::Here { watched: true };
        };
        // A stall timeout runs out with nobody to ring: sleep no longer than a liveness
        // interval at a time, and drop the stalled one at the first look after its time.
        let stalling = by_cursor && self.stall_timeout.is_some();
        if look == Look::Glance {
            return Peer::Here {
                watched: !stalling && self.blocker_watch.as_ref().is_some_and(|w| w.word == word),
            };
        }
        let slot = self.mem.subscriber(index);
        let identity = many::identity(&slot.holder, word);
        let watched = match &self.blocker_watch {
            Some(watch) if watch.slot == index && watch.word == word => watch.watch.is_some(),
            _ => {
                let memory = self.mem.share();
                let notice = Arc::new(move || {
                    many::mark_died(&memory.subscriber(index).holder, word);
                    Doorbell::space(memory.header()).ring_fixed(Fences::Symmetric, HOST);
                });
                let watch = match HOST.watch_process(identity, notice) {
                    Watched::Watching(watch) => Some(watch),
                    Watched::Already => {
                        many::mark_died(&slot.holder, word);
                        None
                    }
                    Watched::Unwatchable => None,
                };
                let watched = watch.is_some();
                self.blocker_watch = Some(BlockerWatch {
                    slot: index,
                    word,
                    watch,
                });
                watched
            }
        };
        if !watched && look == Look::Thorough {
            let mut check = <Host as Kernel>::Check::default();
            if HOST.liveness(&mut check, identity) == Liveness::Dead {
                many::mark_died(&slot.holder, word);
            }
        }
        // The wait's attempt sees a slot marked free: the publisher itself is never gone.
        Peer::Here {
            watched: watched && !stalling,
        }
    }

    /// Publishes the frame of `len` payload bytes written at `offset`: the sequence number
    /// into its first word, the next header slot zeroed, then the header with Release; the
    /// newest frame's position for joining subscribers; the data bell rung.
    #[inline(always)]
    fn publish(&mut self, offset: usize, len: usize) {
        let position = self.position;
        let frame_len = len + SEQ_LEN;
        let size = frame_size(frame_len);
        // SAFETY: our claim gave us the frame's range, bounded by the capacity, and no
        // subscriber reads it before its header is published below.
        unsafe { self.mem.slice_mut_unchecked(offset + HEADER_LEN, SEQ_LEN) }
            .copy_from_slice(&self.seq.to_le_bytes());
        self.mem
            .frame_word(offset + size)
            .store(0, Ordering::Relaxed);
        // Release: the payload, its sequence number and the zeroed slot are visible to whoever
        // acquires the header.
        self.mem.frame_word(offset).store(
            frame::data_header(frame_len as u32, position),
            Ordering::Release,
        );
        // Relaxed: a joining subscriber validates the frame it names.
        self.mem.header().positions[NEWEST].store(position + 1, Ordering::Relaxed);
        self.position = position + size as u64;
        self.seq = self.seq.wrapping_add(1);
        Doorbell::data(self.mem.header()).ring(&mut self.notifier);
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let header = self.mem.header();
        self.hold.release(header);
        // Subscribers asleep wake and see the publisher gone.
        Doorbell::data(header).ring(&mut self.notifier);
    }
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("capacity", &self.capacity)
            .field("position", &self.position)
            .field("oldest", &self.oldest)
            .field("next_seq", &self.seq)
            .finish_non_exhaustive()
    }
}

/// Reads the sequence number at the start of the frame of `len` bytes at `at`.
fn read_seq(mem: &RingMemory, at: u64, len: usize, mask: u64) -> Result<u64> {
    if len < SEQ_LEN || at > MAX_POSITION {
        return Err(Error::corrupted("frame length", len as u64, at));
    }
    let offset = (at & mask) as usize + HEADER_LEN;
    // SAFETY: a published frame's first bytes, inside the data area (`slice` checks); we do
    // not write them while the slice lives.
    let bytes = unsafe { mem.slice(offset, SEQ_LEN) };
    Ok(u64::from_le_bytes(bytes.try_into().expect("eight bytes")))
}

/// Room for one message, written in place. Derefs to its payload bytes.
///
/// [`commit`](Self::commit) publishes it to every subscriber; dropping the grant uncommitted
/// abandons it (nothing is published).
#[must_use = "a grant publishes nothing unless committed"]
pub struct Grant<'a> {
    publisher: &'a mut Publisher,
    offset: usize,
    len: usize,
}

impl Grant<'_> {
    /// Publishes the message.
    #[inline]
    pub fn commit(self) {
        let (offset, len) = (self.offset, self.len);
        self.publisher.publish(offset, len);
    }

    /// Publishes the first `len` bytes only.
    ///
    /// # Panics
    /// If `len` is larger than the reserved length.
    #[inline]
    pub fn commit_len(mut self, len: usize) {
        assert!(len <= self.len, "commit_len beyond the reservation");
        self.len = len;
        self.commit();
    }

    /// The sequence number the message will carry.
    #[must_use]
    #[inline]
    pub fn seq(&self) -> u64 {
        self.publisher.seq
    }
}

impl Deref for Grant<'_> {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        // SAFETY: the claimed range is ours alone until commit, and inside the data area.
        unsafe {
            self.publisher
                .mem
                .slice(self.offset + HEADER_LEN + SEQ_LEN, self.len)
        }
    }
}

impl DerefMut for Grant<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference to the range.
        unsafe {
            self.publisher
                .mem
                .slice_mut(self.offset + HEADER_LEN + SEQ_LEN, self.len)
        }
    }
}

impl std::fmt::Debug for Grant<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant").field("len", &self.len).finish()
    }
}
