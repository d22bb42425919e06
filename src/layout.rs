//! The segment header: the fixed, `#[repr(C)]` layout that two processes agree on.
//!
//! Everything in it is an atomic: a peer may write any word at any time, and a plain read racing
//! with a write would be undefined behaviour. Identity fields are written once by the creator and
//! published by the magic number (stored last, with Release); readers copy and validate them at
//! attach and never trust them again. Offsets and positions only, never pointers.
//!
//! ```text
//! offset  line          written by          read by
//!      0  identity      creator (once)      attachers
//!    128  roles         each attacher       the peer (liveness)
//!    256  positions[0]  producer            (re-attach, monitoring)
//!    384  positions[1]  consumer            producer, only when the ring looks full
//!    512  bells[0]      consumer (sleeps)   producer, after each commit
//!    640  bells[1]      producer (sleeps)   consumer, after each release
//!    768  ledger        consumer (SPSC,     a successor, at attach
//!                       every frame); any
//!                       handle (MPMC)
//!    896  counters[0]   producing side      outside readers (`segments::stat`)
//!   1024  counters[1]   consuming side      outside readers
//!   1152  data          (the ring's)        ...
//!   1152 + capacity     subscriber slots    (publish-subscribe only: a line pair each,
//!                                            written by its subscriber, read by the publisher)
//! ```
//!
//! This file is a leaf: it holds the words and their places, not what they mean to the
//! protocols (the bells' words are the wait protocol's, in `wait`; the role words are `role`'s;
//! the geometry rules of each ring kind are the ring's own, passed to [`SegmentHeader::validate`]).

use crate::error::{Error, Result, Role};
use crate::sync::{AtomicU32, AtomicU64, Ordering};

/// "RINGPORT" in little-endian.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"RINGPORT");

/// Bumped on every incompatible change of this file or of the frame format. (4: a bell's third
/// word says "fenced" where it said "unfenced", so that a zeroed bell is the safe state. 5: the
/// ledger line, and a role state for a holder marked departed by its death notice. 6: the
/// counters lines and the creation time.)
pub(crate) const LAYOUT_VERSION: u32 = 6;

/// Ring kinds, stored in the header.
pub(crate) const KIND_SPSC: u32 = 1;
/// A multi-producer multi-consumer ring of fixed-size slots (see `mpmc`).
pub(crate) const KIND_MPMC: u32 = 2;
/// A publish-subscribe ring: one publisher's frames, read by every subscriber (see `pubsub`).
pub(crate) const KIND_PUBSUB: u32 = 3;

/// Where the data area starts: right after the header, cache-line aligned.
pub(crate) const DATA_OFFSET: usize = 1152;

/// One cache-line pair. Our own type rather than `crossbeam_utils::CachePadded` because this is a
/// cross-process ABI: `repr(C)` fixes the layout whatever compiler built each peer. 128 bytes
/// because the adjacent-line prefetcher on x86_64 pulls lines in pairs.
#[repr(C, align(128))]
pub(crate) struct Line<T>(pub T);

impl<T> std::ops::Deref for Line<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Written once by the creator.
#[repr(C)]
pub(crate) struct Identity {
    pub magic: AtomicU64,
    pub version: AtomicU32,
    pub kind: AtomicU32,
    pub flags: AtomicU32,
    pub max_frame: AtomicU32,
    pub capacity: AtomicU64,
    pub data_offset: AtomicU64,
    pub segment_len: AtomicU64,
    pub creator_pid: AtomicU32,
    /// The number of subscriber slots after the data area (publish-subscribe; 0 otherwise).
    pub subscriber_slots: AtomicU32,
    /// The inode of the creator's pid namespace (0: unknown). Pids recorded in the segment mean
    /// something only to processes in that namespace.
    pub creator_pid_ns: AtomicU64,
    /// When the ring was made, in nanoseconds since the Unix epoch (for monitoring alone).
    pub created_ns: AtomicU64,
    /// The typed endpoints' message type (all zero: bytes): its layout fingerprint's hash,
    /// size and alignment, and the first 32 bytes of its name (for monitoring).
    pub message_hash: AtomicU64,
    pub message_size: AtomicU32,
    pub message_align: AtomicU32,
    pub message_name: [AtomicU64; 4],
}

/// The message type a ring was made for (see `typed`); the default is bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct MessageType {
    pub hash: u64,
    pub size: u32,
    pub align: u32,
    pub name: [u8; 32],
}

/// Who holds a role. `owner` packs the holder's pid (low 32 bits), a state (bits 32..40) and an
/// epoch bumped on every claim (bits 40..64), so that a claim is one compare-and-swap.
#[repr(C)]
pub(crate) struct RoleSlot {
    pub owner: AtomicU64,
    pub start_time: AtomicU64,
    pub pid_ns: AtomicU64,
    pub reserved: AtomicU64,
}

/// The words of one doorbell: what they mean is the wait protocol's (`wait::Doorbell`).
#[derive(Debug)]
#[repr(C)]
pub(crate) struct BellWords {
    /// The futex word.
    pub seq: AtomicU32,
    /// Announced sleepers.
    pub sleepers: AtomicU32,
    /// The notifying side's fencing state.
    pub fenced: AtomicU32,
}

impl Counters {
    fn zeroed() -> Counters {
        let zero = || AtomicU64::new(0);
        Counters {
            seq: zero(),
            frames: zero(),
            bytes: zero(),
            at: zero(),
            waits: zero(),
            sleeps: zero(),
            barriers: zero(),
            stream_pauses: zero(),
            takeovers: zero(),
        }
    }
}

impl BellWords {
    fn zeroed() -> BellWords {
        BellWords {
            seq: AtomicU32::new(0),
            sleepers: AtomicU32::new(0),
            fenced: AtomicU32::new(0),
        }
    }
}

/// Words a successor reads when it takes a role over: the last frame the SPSC consumer handed
/// out, recorded frame by frame (its published position lags, by design), and how many MPMC
/// slots were recovered. On a line of their own, which only the consumer writes (SPSC) and nobody
/// reads while it lives, so the per-frame stores stay in its cache. What they mean is the
/// rings' (`spsc::read_cursor`, `mpmc::recovery`).
#[repr(C)]
pub(crate) struct Ledger {
    /// The position of the last frame handed out, plus one (0: none yet).
    pub received: AtomicU64,
    /// MPMC: slots completed on behalf of dead owners since the ring was made.
    pub recovered: AtomicU64,
}

/// What one side of a ring publishes for outside readers (`segments::stat`): never read by
/// the ring's own protocol, so a hostile value misleads a reader and harms nothing. Each side
/// writes its own line; cumulative over the ring's life (a successor adds to its predecessor's).
#[repr(C)]
pub(crate) struct Counters {
    /// A sequence word over `frames`, `bytes` and `at`: odd while they change (see
    /// `counters::Snapshot`), so that a reader gets the three from one moment.
    pub seq: AtomicU64,
    /// SPSC consumer: frames received and released, as of `at` (MPMC: unused; its tail and
    /// head count its messages).
    pub frames: AtomicU64,
    /// Their payload bytes.
    pub bytes: AtomicU64,
    /// SPSC consumer: the ring position `frames` and `bytes` count up to (its published one).
    pub at: AtomicU64,
    /// Blocking calls that had to wait.
    pub waits: AtomicU64,
    /// Sleeps on the futex.
    pub sleeps: AtomicU64,
    /// Sleeps that took a membarrier first.
    pub barriers: AtomicU64,
    /// SPSC consumer: waits that began with a stream pause.
    pub stream_pauses: AtomicU64,
    /// Times the side's role was taken over from a holder that died.
    pub takeovers: AtomicU64,
}

/// The whole header.
#[repr(C)]
pub(crate) struct SegmentHeader {
    pub identity: Line<Identity>,
    /// Indexed by [`role_index`].
    pub roles: Line<[RoleSlot; 2]>,
    /// `[producer position, consumer position]`, each on its own line.
    pub positions: [Line<AtomicU64>; 2],
    /// `[data bell (consumer sleeps), space bell (producer sleeps)]`.
    pub bells: [Line<BellWords>; 2],
    pub ledger: Line<Ledger>,
    /// Indexed by [`role_index`]: the producing side's, the
    /// consuming side's.
    pub counters: [Line<Counters>; 2],
}

/// The index of a role's slot, position and counters in the header.
pub(crate) const fn role_index(role: Role) -> usize {
    match role {
        Role::Producer => 0,
        Role::Consumer => 1,
    }
}

/// The bell (index into `bells`) that consumers sleep on: the producing side rings it after a
/// commit.
pub(crate) const DATA_BELL: usize = 0;
/// The bell that producers sleep on: the consuming side rings it after a release.
pub(crate) const SPACE_BELL: usize = 1;

/// The ring parameters fixed at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RingParams {
    pub kind: u32,
    pub capacity: u64,
    pub max_frame: u32,
    pub flags: u32,
    /// Subscriber slots after the data area (publish-subscribe; 0 for the other kinds).
    pub subscriber_slots: u32,
    /// The message type of typed endpoints (default: bytes).
    pub message: MessageType,
}

impl RingParams {
    /// Whether the ring carries `expected` (None: an endpoint of bytes, which opens any).
    pub(crate) fn check_message(&self, expected: Option<MessageType>) -> Result<()> {
        match expected {
            Some(expected) if self.message != expected => Err(Error::TypeMismatch {
                found: self.message.hash,
                expected: expected.hash,
            }),
            _ => Ok(()),
        }
    }

    pub(crate) fn segment_len(&self) -> u64 {
        DATA_OFFSET as u64 + self.capacity + u64::from(self.subscriber_slots) * SUBSCRIBER_SLOT_LEN
    }
}

/// Bytes of one subscriber slot: a line pair of its own, which only its holder writes on the
/// hot path.
pub(crate) const SUBSCRIBER_SLOT_LEN: u64 = 128;

/// One subscriber's words in a publish-subscribe segment, in a table after the data area (at
/// `DATA_OFFSET + capacity`). What they mean is `pubsub::table`'s.
#[repr(C, align(128))]
pub(crate) struct SubscriberSlot {
    /// Who holds the slot: the role word and identity, as a role's (see `role`).
    pub holder: RoleSlot,
    /// The ring position of the next frame the subscriber reads, with bit 0 set while it may
    /// be reading the frame there.
    pub cursor: AtomicU64,
    /// Frames the subscriber lost to overwriting (for outside readers).
    pub lost: AtomicU64,
    pub reserved: [AtomicU64; 2],
}

impl SubscriberSlot {
    pub(crate) fn new() -> SubscriberSlot {
        SubscriberSlot {
            holder: RoleSlot::new(),
            cursor: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            reserved: [AtomicU64::new(0), AtomicU64::new(0)],
        }
    }
}

impl RoleSlot {
    pub(crate) fn new() -> RoleSlot {
        RoleSlot {
            owner: AtomicU64::new(0),
            start_time: AtomicU64::new(0),
            pid_ns: AtomicU64::new(0),
            reserved: AtomicU64::new(0),
        }
    }
}

impl SegmentHeader {
    /// A zeroed header, as a fresh segment holds.
    pub(crate) fn new() -> SegmentHeader {
        let slot = RoleSlot::new;
        SegmentHeader {
            identity: Line(Identity {
                magic: AtomicU64::new(0),
                version: AtomicU32::new(0),
                kind: AtomicU32::new(0),
                flags: AtomicU32::new(0),
                max_frame: AtomicU32::new(0),
                capacity: AtomicU64::new(0),
                data_offset: AtomicU64::new(0),
                segment_len: AtomicU64::new(0),
                creator_pid: AtomicU32::new(0),
                subscriber_slots: AtomicU32::new(0),
                creator_pid_ns: AtomicU64::new(0),
                created_ns: AtomicU64::new(0),
                message_hash: AtomicU64::new(0),
                message_size: AtomicU32::new(0),
                message_align: AtomicU32::new(0),
                message_name: [
                    AtomicU64::new(0),
                    AtomicU64::new(0),
                    AtomicU64::new(0),
                    AtomicU64::new(0),
                ],
            }),
            roles: Line([slot(), slot()]),
            positions: [Line(AtomicU64::new(0)), Line(AtomicU64::new(0))],
            bells: [Line(BellWords::zeroed()), Line(BellWords::zeroed())],
            ledger: Line(Ledger {
                received: AtomicU64::new(0),
                recovered: AtomicU64::new(0),
            }),
            counters: [Line(Counters::zeroed()), Line(Counters::zeroed())],
        }
    }

    /// Fills in a zeroed header and publishes it: the magic goes last, with Release, so that an
    /// attacher that sees the magic sees every other field. The creator's pid and pid namespace
    /// are recorded for whoever judges pids found in the segment.
    pub(crate) fn initialize(
        &self,
        params: &RingParams,
        creator_pid: u32,
        creator_pid_ns: u64,
        created_ns: u64,
    ) {
        let id = &self.identity;
        id.version.store(LAYOUT_VERSION, Ordering::Relaxed);
        id.kind.store(params.kind, Ordering::Relaxed);
        id.flags.store(params.flags, Ordering::Relaxed);
        id.max_frame.store(params.max_frame, Ordering::Relaxed);
        id.capacity.store(params.capacity, Ordering::Relaxed);
        id.data_offset.store(DATA_OFFSET as u64, Ordering::Relaxed);
        id.segment_len
            .store(params.segment_len(), Ordering::Relaxed);
        id.creator_pid.store(creator_pid, Ordering::Relaxed);
        id.subscriber_slots
            .store(params.subscriber_slots, Ordering::Relaxed);
        id.creator_pid_ns.store(creator_pid_ns, Ordering::Relaxed);
        id.created_ns.store(created_ns, Ordering::Relaxed);
        let message = &params.message;
        id.message_hash.store(message.hash, Ordering::Relaxed);
        id.message_size.store(message.size, Ordering::Relaxed);
        id.message_align.store(message.align, Ordering::Relaxed);
        for (word, bytes) in id.message_name.iter().zip(message.name.chunks(8)) {
            word.store(
                u64::from_le_bytes(bytes.try_into().expect("8 bytes")),
                Ordering::Relaxed,
            );
        }
        id.magic.store(MAGIC, Ordering::Release);
    }

    /// The message type recorded at creation (what it means is `typed`'s: any value is safe,
    /// since typed endpoints only compare it).
    pub(crate) fn message_type(&self) -> MessageType {
        // Relaxed throughout: read at attach after the magic's Acquire (in `validate`), or from
        // a copy of the header, like every identity field.
        let id = &self.identity;
        let mut name = [0u8; 32];
        for (bytes, word) in name.chunks_mut(8).zip(&id.message_name) {
            bytes.copy_from_slice(&word.load(Ordering::Relaxed).to_le_bytes());
        }
        MessageType {
            hash: id.message_hash.load(Ordering::Relaxed),
            size: id.message_size.load(Ordering::Relaxed),
            align: id.message_align.load(Ordering::Relaxed),
            name,
        }
    }

    /// Reads and checks the identity of a segment of `segment_len` bytes; `kind` is the kind
    /// the caller wants, and `geometry` its rule for capacity and maximum frame (returning what
    /// is wrong). Returns the parameters, which the caller keeps: they are never re-read.
    pub(crate) fn validate(
        &self,
        kind: u32,
        segment_len: u64,
        geometry: fn(u64, u32) -> Result<(), &'static str>,
    ) -> Result<RingParams> {
        let id = &self.identity;
        let magic = id.magic.load(Ordering::Acquire);
        if magic != MAGIC {
            return Err(Error::BadMagic { found: magic });
        }
        let version = id.version.load(Ordering::Relaxed);
        if version != LAYOUT_VERSION {
            return Err(Error::VersionMismatch {
                found: version,
                expected: LAYOUT_VERSION,
            });
        }
        let found = id.kind.load(Ordering::Relaxed);
        if found != kind {
            return Err(Error::WrongKind {
                found,
                expected: kind,
            });
        }
        let params = RingParams {
            kind,
            capacity: id.capacity.load(Ordering::Relaxed),
            max_frame: id.max_frame.load(Ordering::Relaxed),
            flags: id.flags.load(Ordering::Relaxed),
            subscriber_slots: id.subscriber_slots.load(Ordering::Relaxed),
            message: self.message_type(),
        };
        if (kind == KIND_PUBSUB) != (params.subscriber_slots != 0)
            || params.subscriber_slots > MAX_SUBSCRIBER_SLOTS
        {
            return Err(Error::corrupted(
                "subscriber slots",
                u64::from(params.subscriber_slots),
                52,
            ));
        }
        let data_offset = id.data_offset.load(Ordering::Relaxed);
        if data_offset != DATA_OFFSET as u64 {
            return Err(Error::corrupted("data offset", data_offset, 16));
        }
        geometry(params.capacity, params.max_frame)
            .map_err(|what| Error::corrupted(what, params.capacity, u64::from(params.max_frame)))?;
        let claimed = id.segment_len.load(Ordering::Relaxed);
        if claimed != params.segment_len() {
            return Err(Error::corrupted("segment length", claimed, 40));
        }
        if segment_len < claimed {
            return Err(Error::TooSmall {
                len: segment_len,
                needed: claimed,
            });
        }
        Ok(params)
    }
}

/// The most subscriber slots a segment may have.
pub(crate) const MAX_SUBSCRIBER_SLOTS: u32 = 4096;

/// The smallest data area.
pub(crate) const MIN_CAPACITY: u64 = 64;
/// The largest data area (1 TiB): positions are u64 byte counts and never wrap in practice.
pub(crate) const MAX_CAPACITY: u64 = 1 << 40;

/// Positions are byte counts since the ring was made: at ten gigabytes a second, 2^62 bytes
/// take 14 years.
/// A position beyond this, read from shared memory, is corrupt (and its arithmetic could
/// overflow).
pub(crate) const MAX_POSITION: u64 = 1 << 62;
