//! The single-producer single-consumer ring of variable-size frames.
//!
//! One segment holds one ring: a header (see `layout`) and a data area whose size is a power of
//! two. Frames are contiguous: a frame that would straddle the end of the data area is preceded
//! by a padding frame that fills the rest of the lap (a bip-buffer, as in bbqueue), so a grant or
//! a received frame is always one plain slice. A double-mapped ring would waste no tail, but it
//! needs page-sized capacities and a second mapping, and could not run over heap memory (loom,
//! fuzzing, in-process rings); the padding costs at most one maximum frame per lap.
//!
//! ```text
//!   consumer position                      producer position
//!        v                                        v
//!  ... | hdr payload | hdr payload | hdr payload | 0 | (free) ...
//!                                                 ^ zeroed before the frame before it was published
//! ```
//!
//! The producer owns `[producer position, consumer position + capacity)` and keeps the first
//! header word after its last frame at zero, so the consumer polls one word: the header of the
//! next frame. Neither side reads the other's position on its fast path: the consumer never needs
//! the producer's (the header word is the commit), and the producer rereads the consumer's only
//! when the ring looks full by its cached copy.
//!
//! # Example
//!
//! ```
//! # fn main() -> Result<(), ringport::Error> {
//! let (mut producer, mut consumer) = ringport::SpscOptions::new().capacity(4096).in_process()?;
//!
//! let mut grant = producer.reserve(5)?;
//! grant.copy_from_slice(b"hello");
//! grant.commit();
//!
//! let frame = consumer.recv()?;
//! assert_eq!(&*frame, b"hello");
//! # Ok(()) }
//! ```

mod consumer;
mod producer;
mod read_cursor;
mod takeover;
mod write_cursor;

use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

pub use consumer::{Consumer, ReadGrant};
pub use producer::{Producer, WriteBatch, WriteGrant};
pub use takeover::{RecoveredFrame, Takeover};

use crate::counters::Tally;
use crate::error::{Error, Result, Role};
use crate::frame::{check_geometry, largest_frame};
use crate::layout::{MessageType, RingParams, KIND_SPSC};
use crate::options::Access;
use crate::os::Location;
use crate::os::{Host, Kernel, RingMemory, HOST};
use crate::role::{mark_departed, mark_role_departed, role_index, Predecessor, RoleHold};
use crate::segment::Segment;
use crate::sync::Ordering;
use crate::wait::{Doorbell, Fences, Limit, Look, Notifier, Peer, WaitPolicy, WaitStats, Waiter};

/// Index of the producer's published position.
const PRODUCER_POS: usize = role_index(Role::Producer);
/// Index of the consumer's published position.
const CONSUMER_POS: usize = role_index(Role::Consumer);

/// How to make or join an SPSC ring, and how its endpoint waits.
///
/// The geometry (capacity, maximum frame) applies when creating; when opening, the segment's own
/// geometry is used. Waiting settings apply to the endpoint made.
#[derive(Debug, Clone)]
pub struct SpscOptions {
    capacity: u64,
    max_frame: Option<u64>,
    spin: Duration,
    stream_pause: Duration,
    liveness_interval: Duration,
    keep_segment: bool,
    symmetric_fences: bool,
    access: Access,
    prefault: bool,
    huge_pages: bool,
    lock_in_memory: bool,
    redeliver_in_hand: bool,
    /// The message type of typed endpoints (see `typed`): written at creation, checked at
    /// attach.
    pub(crate) message: Option<MessageType>,
}

impl Default for SpscOptions {
    fn default() -> Self {
        SpscOptions {
            capacity: 1 << 20,
            max_frame: None,
            spin: Duration::from_micros(20),
            stream_pause: Duration::from_micros(1),
            liveness_interval: Duration::from_millis(20),
            keep_segment: false,
            symmetric_fences: false,
            access: Access::default(),
            prefault: true,
            huge_pages: false,
            lock_in_memory: false,
            redeliver_in_hand: false,
            message: None,
        }
    }
}

impl SpscOptions {
    /// The defaults: 1 MiB of data, frames up to the largest the capacity allows (half of it,
    /// less 16 bytes), spin 20 us before sleeping, pause 1 us after draining a stream, check the
    /// peer's liveness every 20 ms while asleep where its death cannot be watched, unlink the
    /// segment when the creator drops, fault the pages in when mapping, start after a dead
    /// consumer's frame in hand.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Size of the data area in bytes: a power of two from 64 bytes to 1 TiB.
    #[must_use]
    pub fn capacity(mut self, bytes: usize) -> Self {
        self.capacity = bytes as u64;
        self
    }

    /// Largest frame payload in bytes. Its frame (8-byte header, payload padded to 8) plus 8
    /// bytes must fit in half the capacity, so that an empty ring always takes any frame.
    #[must_use]
    pub fn max_frame(mut self, bytes: usize) -> Self {
        self.max_frame = Some(bytes as u64);
        self
    }

    /// How often a sleeping endpoint wakes to check that its peer's process is alive, where the
    /// kernel cannot tell it of the death (the peer is in another pid namespace, or pidfds are
    /// unavailable: then a death is noticed within this interval). Elsewhere a death notice
    /// wakes it within microseconds of the death, and it sleeps without waking until then; a
    /// peer that detaches cleanly wakes it at once.
    #[must_use]
    pub fn liveness_interval(mut self, interval: Duration) -> Self {
        self.liveness_interval = interval.max(Duration::from_micros(100));
        self
    }

    /// How long a consumer's blocking receive waits, without looking at the ring, when it finds
    /// the ring empty having received more than one frame since it last waited (default 1 us;
    /// zero: look at once). Such a consumer is keeping up with a stream, and each look at an
    /// empty ring takes back the cache line the producer is filling, so that it streams at
    /// well under either side's own rate (docs/PERFORMANCE.md, "The stream pause"). A consumer
    /// that answers each frame (a request and its
    /// reply) receives one frame per wait and never pauses; in a burst, a frame that comes
    /// within the pause after the consumer drained the rest waits for the pause's end. Part of
    /// the spin: a zero spin budget skips it, and so does a shorter deadline. The `try_` forms
    /// never pause.
    #[must_use]
    pub fn stream_pause(mut self, pause: Duration) -> Self {
        self.stream_pause = pause;
        self
    }

    /// For a consumer that takes over from one that died with a frame in hand (the last one it
    /// received; see [`Consumer`]): deliver that frame again, first (default: no, start after
    /// it). Either way it is reported by [`Consumer::takeover`]. Whether the dead consumer had
    /// finished with it is the application's to know: redeliver if handling a frame twice is
    /// harmless and losing one is not (at least once); don't if the reverse (at most once).
    #[must_use]
    pub fn redeliver_in_hand(mut self, redeliver: bool) -> Self {
        self.redeliver_in_hand = redeliver;
        self
    }

    /// Keep the segment's name when the creating endpoint drops (default: unlink it).
    #[must_use]
    pub fn keep_segment(mut self, keep: bool) -> Self {
        self.keep_segment = keep;
        self
    }

    crate::options::shared_ring_setters!();

    fn params(&self) -> Result<RingParams> {
        let largest = largest_frame(self.capacity).min(u64::from(u32::MAX));
        let max_frame = u32::try_from(self.max_frame.unwrap_or(largest))
            .map_err(|_| Error::InvalidConfig("max frame above 4 GiB"))?;
        check_geometry(self.capacity, max_frame).map_err(Error::InvalidConfig)?;
        Ok(RingParams {
            kind: KIND_SPSC,
            capacity: self.capacity,
            max_frame,
            flags: Fences::creation_flags(self.symmetric_fences, HOST),
            subscriber_slots: 0,
            message: self.message.unwrap_or_default(),
        })
    }

    fn policy(&self) -> WaitPolicy {
        WaitPolicy {
            spin: self.spin,
            liveness_interval: self.liveness_interval,
        }
    }

    /// The producer of `segment`, faulted in first if these options say so.
    fn producer(&self, segment: &Segment) -> Result<Producer> {
        segment.params.check_message(self.message)?;
        self.populate(segment)?;
        Producer::attach(segment, self.policy())
    }

    /// The consumer of `segment`, waiting as these options say (the stream pause is only its).
    fn consumer(&self, segment: &Segment) -> Result<Consumer> {
        segment.params.check_message(self.message)?;
        self.populate(segment)?;
        Consumer::attach(
            segment,
            self.policy(),
            self.stream_pause,
            self.redeliver_in_hand,
        )
    }

    fn populate(&self, segment: &Segment) -> Result<()> {
        segment.prepare(self.prefault, self.lock_in_memory)
    }

    /// A ring on the heap with both ends in this process (threads, tests).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if the geometry is invalid.
    pub fn in_process(&self) -> Result<(Producer, Consumer)> {
        let segment = Segment::heap(&self.params()?);
        Ok((self.producer(&segment)?, self.consumer(&segment)?))
    }

    /// For `ringport::testing`: a heap segment that endpoints attach to (and attach to again).
    #[cfg(feature = "testing")]
    pub(crate) fn heap_segment(&self) -> Result<Segment> {
        Ok(Segment::heap(&self.params()?))
    }

    /// For `ringport::testing`: the producer of `segment`.
    #[cfg(feature = "testing")]
    pub(crate) fn attach_producer(&self, segment: &Segment) -> Result<Producer> {
        self.producer(segment)
    }

    /// For `ringport::testing`: the consumer of `segment`.
    #[cfg(feature = "testing")]
    pub(crate) fn attach_consumer(&self, segment: &Segment) -> Result<Consumer> {
        self.consumer(segment)
    }

    /// For the fuzz bodies: an in-process ring, with its memory for writing to as a peer would.
    #[cfg(feature = "testing")]
    pub(crate) fn in_process_exposed(&self) -> Result<(Producer, Consumer, RingMemory)> {
        let segment = Segment::heap(&self.params()?);
        let memory = RingMemory::new(std::sync::Arc::clone(&segment.memory));
        Ok((self.producer(&segment)?, self.consumer(&segment)?, memory))
    }

    /// For the fuzz bodies: both ends over a copy of a segment image, attached as to a mapping.
    #[cfg(feature = "testing")]
    pub(crate) fn attach_image(&self, bytes: &[u8]) -> Result<(Producer, Consumer)> {
        let segment = Segment::from_image(bytes, KIND_SPSC, check_geometry)?;
        let consumer = self.consumer(&segment)?;
        Ok((self.producer(&segment)?, consumer))
    }

    /// Creates the ring's segment at `location` and becomes its producer: a POSIX name (a
    /// `&str`), a System V key or a file (see [`Location`]).
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::InvalidConfig`], [`Error::AlreadyExists`],
    /// [`Error::KeyInUse`], [`Error::NoSpace`], [`Error::SystemLimit`],
    /// [`Error::NoHugePages`], [`Error::MemoryLock`], [`Error::Os`].
    pub fn create_producer(&self, location: impl Into<Location>) -> Result<Producer> {
        self.producer(&self.create_at(&location.into())?)
    }

    /// Creates the ring's segment at `location` and becomes its consumer.
    ///
    /// # Errors
    /// As [`create_producer`](Self::create_producer).
    pub fn create_consumer(&self, location: impl Into<Location>) -> Result<Consumer> {
        self.consumer(&self.create_at(&location.into())?)
    }

    /// Opens the ring's segment at `location` and becomes its producer.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::TooSmall`], [`Error::BadMagic`], [`Error::VersionMismatch`],
    /// [`Error::WrongKind`], [`Error::Corrupted`], [`Error::NotOwner`],
    /// [`Error::SharedWritable`], [`Error::RoleTaken`], [`Error::MemoryLock`],
    /// [`Error::Unsupported`].
    pub fn open_producer(&self, location: impl Into<Location>) -> Result<Producer> {
        self.producer(&self.open_at(&location.into())?)
    }

    /// Opens the ring's segment at `location` and becomes its consumer.
    ///
    /// # Errors
    /// As [`open_producer`](Self::open_producer).
    pub fn open_consumer(&self, location: impl Into<Location>) -> Result<Consumer> {
        self.consumer(&self.open_at(&location.into())?)
    }

    fn create_at(&self, location: &Location) -> Result<Segment> {
        Segment::create_at(
            location,
            &self.params()?,
            !self.keep_segment,
            &self.access,
            self.huge_pages,
        )
    }

    fn open_at(&self, location: &Location) -> Result<Segment> {
        Segment::open_at(location, KIND_SPSC, check_geometry, &self.access)
    }
}

/// Anonymous segments: a memfd sealed so that its size can never change, passed to the other
/// process as a descriptor (over a Unix socket with `SCM_RIGHTS`, or inherited). No name appears
/// in `/dev/shm`, and the memory goes with the last process that holds it, even after a crash.
impl SpscOptions {
    /// Creates an anonymous sealed segment and becomes its producer; the descriptor is for the
    /// consumer's process.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`], [`Error::Os`].
    pub fn create_producer_memfd(&self) -> Result<(Producer, OwnedFd)> {
        let (segment, fd) = Segment::create_memfd(&self.params()?, self.huge_pages)?;
        Ok((self.producer(&segment)?, fd))
    }

    /// Creates an anonymous sealed segment and becomes its consumer; the descriptor is for the
    /// producer's process.
    ///
    /// # Errors
    /// As [`create_producer_memfd`](Self::create_producer_memfd).
    pub fn create_consumer_memfd(&self) -> Result<(Consumer, OwnedFd)> {
        let (segment, fd) = Segment::create_memfd(&self.params()?, self.huge_pages)?;
        Ok((self.consumer(&segment)?, fd))
    }

    /// Maps a segment received as a descriptor and becomes its producer. The descriptor may be
    /// closed afterwards; the mapping stays.
    ///
    /// # Errors
    /// [`Error::Unsealed`] if it is not a memfd sealed against shrinking; otherwise as
    /// [`open_producer`](Self::open_producer).
    pub fn open_producer_fd(&self, fd: impl AsFd) -> Result<Producer> {
        self.producer(&Segment::open_fd(fd.as_fd(), KIND_SPSC, check_geometry)?)
    }

    /// Maps a segment received as a descriptor and becomes its consumer.
    ///
    /// # Errors
    /// As [`open_producer_fd`](Self::open_producer_fd).
    pub fn open_consumer_fd(&self, fd: impl AsFd) -> Result<Consumer> {
        self.consumer(&Segment::open_fd(fd.as_fd(), KIND_SPSC, check_geometry)?)
    }
}

/// What both endpoints share: the memory, the fixed geometry, the role and how to wait.
struct Endpoint {
    region: RingMemory,
    capacity: u64,
    max_frame: u32,
    /// How this endpoint fences its sleeps (on its own bell).
    fences: Fences,
    /// How this endpoint fences its publishes (on its peer's bell).
    notifier: Notifier<Host>,
    policy: WaitPolicy,
    hold: RoleHold<Host>,
    stats: WaitStats,
    /// A hang-up notice on a socket that stands for the peer (a channel's), if one was set up.
    hangup: Option<<Host as Kernel>::Watch>,
    /// Dropped as a killed process's endpoint is: no detach, no last position (test hooks).
    abandoned: bool,
}

impl Endpoint {
    fn attach(segment: &Segment, role: Role, policy: WaitPolicy) -> Result<Self> {
        let region = RingMemory::new(std::sync::Arc::clone(&segment.memory));
        let fences = Fences::for_ring(segment.params.flags, HOST)?;
        let header = region.header();
        let hold = RoleHold::claim(header, role, HOST)?;
        if matches!(hold.predecessor(), Predecessor::Died { .. }) {
            Tally::sole(header, role).took_over();
        }
        // A previous holder of this role may have died asleep and left its count behind.
        bell_of(header, role).reset_sleepers();
        let mut notifier = Notifier::sole(bell_of(header, role.peer()), fences, HOST);
        // A peer that waits for us to attach (or sleeps on an empty ring before we came) looks
        // again now.
        bell_of(header, role.peer()).ring(&mut notifier);
        Ok(Endpoint {
            capacity: segment.params.capacity,
            max_frame: segment.params.max_frame,
            region,
            fences,
            notifier,
            policy,
            hold,
            stats: WaitStats::default(),
            hangup: None,
            abandoned: false,
        })
    }
}

impl Endpoint {
    /// The peer, as a wait or an empty (or full) `try_` path sees it, with a death notice set
    /// up for its holder the first time (see `RoleHold::peer`): the notice marks the dead
    /// holder departed and rings our bell, so that a sleeper wakes, and a busy-polling `try_`
    /// form sees it gone, within microseconds of the death.
    fn peer(&mut self, look: Look) -> Peer {
        peer_of(&self.region, &mut self.hold, look)
    }

    /// Has the peer's role marked departed, and our bell rung, when the peer of the connected
    /// socket `link` hangs up: for a channel's ring, whose peer may be in another pid
    /// namespace, where its death cannot be watched, or may die before it attaches, but whose
    /// socket's end always reports it. The ring has no other peer than the socket's, so its role
    /// is marked whatever holds it then. Returns whether the notice is set up.
    pub(crate) fn watch_hangup(&mut self, link: std::os::fd::BorrowedFd<'_>) -> bool {
        let (ours, theirs) = (self.hold.role(), self.hold.role().peer());
        let memory = self.region.share();
        let notice = std::sync::Arc::new(move || {
            let header = memory.header();
            mark_role_departed(header, theirs);
            bell_of(header, ours).ring_fixed(Fences::Symmetric, HOST);
        });
        match HOST.watch_hangup(link, notice) {
            crate::os::Watched::Watching(watch) => {
                self.hangup = Some(watch);
                true
            }
            _ => false,
        }
    }

    /// Marks the endpoint abandoned, as a killed process leaves it, and returns who held it
    /// (for the test hooks in `ringport::testing`).
    #[cfg(feature = "testing")]
    fn abandon(&mut self) -> crate::os::ProcessIdentity {
        self.abandoned = true;
        self.hold.identity(self.region.header())
    }

    /// Whether the peer has gone, for an empty (or full) `try_` path: a busy-polling loop asks
    /// at every turn, so the settled peer's word is compared inline, and only a change takes
    /// the full look.
    #[inline(always)]
    fn peer_gone(&mut self) -> bool {
        !self.hold.peer_is_settled(self.region.header()) && self.peer_gone_look()
    }

    #[cold]
    #[inline(never)]
    fn peer_gone_look(&mut self) -> bool {
        matches!(self.peer(Look::Cheap), Peer::Gone(_))
    }

    /// Waits until a peer holds its role (at once if one does): the first, or a replacement for
    /// one that left; sleeping on our own bell, which an attaching peer rings.
    fn wait_for_peer(&mut self, timeout: Duration) -> Result<()> {
        let header = self.region.header();
        if self.hold.peer_attached(header) {
            return Ok(());
        }
        let bell = bell_of(header, self.hold.role());
        let hold = &self.hold;
        Waiter::new(bell, self.fences, self.policy, &mut self.stats, HOST)
            .tallied(Tally::sole(header, hold.role()))
            .wait(
                Limit::After(timeout),
                || Ok(hold.peer_attached(header).then_some(())),
                // An attaching peer rings this bell.
                |_| Peer::Here { watched: true },
            )
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        if self.abandoned {
            return;
        }
        let header = self.region.header();
        self.hold.release(header);
        // Wake the peer if it sleeps, so that it sees us gone now rather than at its next check.
        bell_of(header, self.hold.role().peer()).ring(&mut self.notifier);
    }
}

/// [`Endpoint::peer`] on the two fields it needs, for a wait that holds the others.
fn peer_of(region: &RingMemory, hold: &mut RoleHold<Host>, look: Look) -> Peer {
    let (ours, theirs) = (hold.role(), hold.role().peer());
    hold.peer(region.header(), look, |word| {
        let memory = region.share();
        std::sync::Arc::new(move || {
            let header = memory.header();
            mark_departed(header, theirs, word);
            // Fenced: the watcher thread is not this bell's sole notifier, and a sleeper that
            // skipped its membarrier relies on a fence on our side.
            bell_of(header, ours).ring_fixed(Fences::Symmetric, HOST);
        })
    })
}

/// `frame::walk` over the frames published in `region` from `from` to `end` (see there).
fn walk_published(
    region: &RingMemory,
    params: &RingParams,
    from: u64,
    end: u64,
    each: impl FnMut(u64, usize),
) -> (u64, Option<Error>) {
    let mask = params.capacity - 1;
    // Acquire: a frame's payload is visible once its header is.
    let word = |at: u64| {
        Some(
            region
                .frame_word((at & mask) as usize)
                .load(Ordering::Acquire),
        )
    };
    crate::frame::walk(from, end, params.capacity, params.max_frame, word, each)
}

/// The bell a role sleeps on.
fn bell_of(header: &crate::layout::SegmentHeader, role: Role) -> Doorbell<'_> {
    match role {
        Role::Consumer => Doorbell::data(header),
        Role::Producer => Doorbell::space(header),
    }
}
