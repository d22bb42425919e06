//! Publish-subscribe: one publisher's frames, each read in place by every subscriber, in order.
//!
//! One segment holds one ring of variable-size frames (the SPSC ring's format, each payload
//! led by its sequence number) and, after the data area, a table of subscriber slots: each
//! subscriber claims one and keeps its cursor there. Subscribers come and go in any process
//! while the publisher runs; each sees every message from where it joined (the newest message,
//! or the oldest still in the ring: [`History`]).
//!
//! When the slowest subscriber is a whole ring behind, the publisher either waits for it
//! ([`Overflow::Block`], back-pressure, optionally dropping a subscriber that stalls it for
//! longer than a timeout) or reclaims the oldest frames anyway ([`Overflow::Overwrite`]), a
//! quarter ring at a time; a subscriber that was lapped skips to the oldest frame left and
//! learns how many it lost. Neither ever writes over a frame a subscriber has in hand.
//!
//! A subscriber that dies is forgotten as soon as the publisher's death notice for it runs (or
//! its process is found gone): it never blocks the publisher for longer. Waiting spins, then
//! sleeps on the segment's futexes; nobody makes a system call while nobody sleeps.
//!
//! ```
//! use ringport::pubsub::{PubSubOptions, History};
//!
//! # fn main() -> Result<(), ringport::Error> {
//! let mut publisher = PubSubOptions::new().capacity(1 << 16).in_process()?;
//! let mut early = publisher.subscriber(History::Oldest)?;
//! publisher.send(b"first")?;
//! let mut late = publisher.subscriber(History::Newest)?;
//! publisher.send(b"second")?;
//!
//! assert_eq!(&*early.recv()?, b"first");
//! assert_eq!(&*early.recv()?, b"second");
//! // The late subscriber starts at the newest message when it joined.
//! assert_eq!(&*late.recv()?, b"first");
//! assert_eq!(&*late.recv()?, b"second");
//! # Ok(()) }
//! ```

mod publisher;
mod subscriber;
mod table;

use std::time::Duration;

pub use publisher::{Grant, Publisher};
pub use subscriber::{Sample, Subscriber};

use crate::error::{Error, Result};
use crate::frame::{check_geometry, largest_frame};
use crate::layout::{
    MessageType, RingParams, KIND_PUBSUB, MAX_SUBSCRIBER_SLOTS, SUBSCRIBER_SLOT_LEN,
};
use crate::options::Access;
use crate::os::{Location, HOST};
use crate::segment::Segment;
use crate::wait::{Fences, WaitPolicy};

/// Bytes of sequence number before each message's payload in its frame.
const SEQ_LEN: usize = 8;

/// Set in the segment's flags: the publisher overwrites (else it blocks).
const FLAG_OVERWRITE: u32 = 1 << 8;

/// What the publisher does when the slowest subscriber is a whole ring behind. Fixed when the
/// ring is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// Wait for it (back-pressure): every subscriber sees every message. With a
    /// [`stall_timeout`](PubSubOptions::stall_timeout), a subscriber that has held the
    /// publisher back for that long without moving is dropped, and its next receive says
    /// [`Error::Dropped`].
    #[default]
    Block,
    /// Reclaim the oldest frames anyway, a quarter ring at a time: a subscriber that falls
    /// that far behind skips to the oldest frame left, and [`Sample::lost_before`] says how
    /// many it lost. The publisher never waits but for a frame a subscriber has in hand.
    Overwrite,
}

/// Where a new subscriber starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum History {
    /// At the newest message published before it joined (or the first after, if none was).
    #[default]
    Newest,
    /// At the oldest message the ring still holds.
    Oldest,
}

/// How to make or join a publish-subscribe ring, and how its endpoints wait.
///
/// The geometry (capacity, largest message, subscriber slots) and the overflow policy apply
/// when creating; an opener uses the segment's own.
#[derive(Debug, Clone)]
pub struct PubSubOptions {
    capacity: u64,
    max_message: Option<u64>,
    subscribers: u32,
    overflow: Overflow,
    stall_timeout: Option<Duration>,
    history: History,
    spin: Duration,
    liveness_interval: Duration,
    keep_segment: bool,
    symmetric_fences: bool,
    access: Access,
    prefault: bool,
    huge_pages: bool,
    lock_in_memory: bool,
    /// The message type of typed endpoints (see `typed`).
    pub(crate) message: Option<MessageType>,
}

impl Default for PubSubOptions {
    fn default() -> Self {
        PubSubOptions {
            capacity: 1 << 20,
            max_message: None,
            subscribers: 64,
            overflow: Overflow::Block,
            stall_timeout: None,
            history: History::Newest,
            spin: Duration::from_micros(20),
            liveness_interval: Duration::from_millis(20),
            keep_segment: false,
            symmetric_fences: false,
            access: Access::default(),
            prefault: true,
            huge_pages: false,
            lock_in_memory: false,
            message: None,
        }
    }
}

impl PubSubOptions {
    /// The defaults: 1 MiB of data, messages up to the largest the capacity allows, 64
    /// subscriber slots, back-pressure with no stall timeout, subscribers start at the newest
    /// message, spin 20 us before sleeping, unlink the segment when the publisher that made it
    /// drops, fault the pages in.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Size of the data area in bytes: a power of two from 128 bytes to 1 TiB.
    #[must_use]
    pub fn capacity(mut self, bytes: usize) -> Self {
        self.capacity = bytes as u64;
        self
    }

    /// Largest message payload in bytes. Its frame (16 bytes of header and sequence number,
    /// the payload padded to 8) plus 8 bytes must fit in half the capacity.
    #[must_use]
    pub fn max_message(mut self, bytes: usize) -> Self {
        self.max_message = Some(bytes as u64);
        self
    }

    /// How many subscribers may be attached at once (1 to 4096; default 64). Each slot is 128
    /// bytes of the segment, and the publisher reads every attached one's cursor when the ring
    /// looks full.
    #[must_use]
    pub fn subscribers(mut self, slots: u32) -> Self {
        self.subscribers = slots;
        self
    }

    /// What the publisher does when the slowest subscriber is a ring behind (default: block).
    #[must_use]
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.overflow = overflow;
        self
    }

    /// For a blocking publisher: drop a subscriber that has held it back, without moving, for
    /// this long (default: never). The publisher's own setting, not the segment's.
    #[must_use]
    pub fn stall_timeout(mut self, timeout: Duration) -> Self {
        self.stall_timeout = Some(timeout);
        self
    }

    /// Where a subscriber opened with these options starts (default: the newest message).
    #[must_use]
    pub fn history(mut self, history: History) -> Self {
        self.history = history;
        self
    }

    /// How often a sleeping endpoint checks that a process it waits on is alive where the
    /// kernel cannot tell it of the death (see
    /// [`SpscOptions::liveness_interval`](crate::SpscOptions::liveness_interval)).
    #[must_use]
    pub fn liveness_interval(mut self, interval: Duration) -> Self {
        self.liveness_interval = interval.max(Duration::from_micros(100));
        self
    }

    /// Keep the segment's name when the creating publisher drops (default: unlink it).
    #[must_use]
    pub fn keep_segment(mut self, keep: bool) -> Self {
        self.keep_segment = keep;
        self
    }

    crate::options::shared_ring_setters!();

    fn params(&self) -> Result<RingParams> {
        if !(1..=MAX_SUBSCRIBER_SLOTS).contains(&self.subscribers) {
            return Err(Error::InvalidConfig(
                "subscriber slots must be from 1 to 4096",
            ));
        }
        if self.capacity < SUBSCRIBER_SLOT_LEN {
            return Err(Error::InvalidConfig(
                "a publish-subscribe ring's capacity must be at least 128 bytes",
            ));
        }
        let largest = largest_frame(self.capacity).min(u64::from(u32::MAX));
        let max_frame = match self.max_message {
            Some(bytes) => bytes.saturating_add(SEQ_LEN as u64),
            None => largest,
        };
        let max_frame = u32::try_from(max_frame)
            .map_err(|_| Error::InvalidConfig("max message above 4 GiB"))?;
        check_geometry(self.capacity, max_frame).map_err(Error::InvalidConfig)?;
        let overwrite = if self.overflow == Overflow::Overwrite {
            FLAG_OVERWRITE
        } else {
            0
        };
        Ok(RingParams {
            kind: KIND_PUBSUB,
            capacity: self.capacity,
            max_frame,
            flags: Fences::creation_flags(self.symmetric_fences, HOST) | overwrite,
            subscriber_slots: self.subscribers,
            message: self.message.unwrap_or_default(),
        })
    }

    fn policy(&self) -> WaitPolicy {
        WaitPolicy {
            spin: self.spin,
            liveness_interval: self.liveness_interval,
        }
    }

    fn prepare(&self, segment: &Segment) -> Result<()> {
        segment.params.check_message(self.message)?;
        segment.prepare(self.prefault, self.lock_in_memory)
    }

    pub(crate) fn publisher(&self, segment: &Segment) -> Result<Publisher> {
        self.prepare(segment)?;
        Publisher::attach(segment, self)
    }

    pub(crate) fn subscriber(&self, segment: &Segment) -> Result<Subscriber> {
        self.prepare(segment)?;
        Subscriber::attach(segment, self.history, self.policy())
    }

    /// For `ringport::testing`: a heap segment that endpoints attach to.
    #[cfg(feature = "testing")]
    pub(crate) fn heap_segment(&self) -> Result<Segment> {
        Ok(Segment::heap(&self.params()?))
    }

    /// A ring on the heap, its publisher in this process; [`Publisher::subscriber`] makes its
    /// subscribers (threads, tests).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if the geometry is invalid.
    pub fn in_process(&self) -> Result<Publisher> {
        self.publisher(&Segment::heap(&self.params()?))
    }

    /// Creates the ring's segment at `location` (see [`Location`]) and becomes its publisher.
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::InvalidConfig`], [`Error::AlreadyExists`],
    /// [`Error::KeyInUse`], [`Error::NoSpace`], [`Error::SystemLimit`],
    /// [`Error::NoHugePages`], [`Error::MemoryLock`], [`Error::Os`].
    pub fn create_publisher(&self, location: impl Into<Location>) -> Result<Publisher> {
        let segment = Segment::create_at(
            &location.into(),
            &self.params()?,
            !self.keep_segment,
            &self.access,
            self.huge_pages,
        )?;
        self.publisher(&segment)
    }

    /// Opens the ring at `location` and becomes its publisher: after one that detached, or
    /// one that died (its role is taken over), writing on after its last message.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::TooSmall`], [`Error::BadMagic`], [`Error::VersionMismatch`],
    /// [`Error::WrongKind`], [`Error::Corrupted`], [`Error::NotOwner`],
    /// [`Error::SharedWritable`], [`Error::RoleTaken`], [`Error::MemoryLock`],
    /// [`Error::Unsupported`].
    pub fn open_publisher(&self, location: impl Into<Location>) -> Result<Publisher> {
        self.publisher(&self.open_at(&location.into())?)
    }

    /// Opens the ring at `location` and becomes one of its subscribers, starting where
    /// [`history`](Self::history) says.
    ///
    /// # Errors
    /// As [`open_publisher`](Self::open_publisher), and [`Error::NoFreeSlot`] where
    /// `open_publisher` has `RoleTaken`.
    pub fn open_subscriber(&self, location: impl Into<Location>) -> Result<Subscriber> {
        self.subscriber(&self.open_at(&location.into())?)
    }

    fn open_at(&self, location: &Location) -> Result<Segment> {
        Segment::open_at(location, KIND_PUBSUB, check_pubsub_geometry, &self.access)
    }
}

/// The geometry rule of a publish-subscribe segment: the SPSC ring's, a frame long enough for
/// its sequence number, and a data area that keeps the table after it aligned.
fn check_pubsub_geometry(capacity: u64, max_frame: u32) -> Result<(), &'static str> {
    check_geometry(capacity, max_frame)?;
    if capacity < SUBSCRIBER_SLOT_LEN || (max_frame as usize) < SEQ_LEN {
        return Err("a publish-subscribe ring needs 128 bytes and frames of 8 bytes at least");
    }
    Ok(())
}

/// The overflow policy a segment's flags say.
fn overflow_of(flags: u32) -> table::Overflow {
    if flags & FLAG_OVERWRITE != 0 {
        table::Overflow::Overwrite
    } else {
        table::Overflow::Block
    }
}
