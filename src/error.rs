//! The crate's one error type.

use std::fmt;

use nix::errno::Errno;

/// Which end of a ring an endpoint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The end that writes frames.
    Producer,
    /// The end that reads frames.
    Consumer,
}

impl Role {
    /// The other end.
    #[must_use]
    pub fn peer(self) -> Role {
        match self {
            Role::Producer => Role::Consumer,
            Role::Consumer => Role::Producer,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Producer => "producer",
            Role::Consumer => "consumer",
        })
    }
}

/// Everything that can go wrong in ringport.
///
/// `Full`, `Empty` and `Timeout` are ordinary outcomes of the `try_` and `_timeout` forms;
/// `PeerGone` means the other end detached or died; `Corrupted` means a value read from shared
/// memory broke the ring's invariants (a buggy or hostile peer, or a foreign segment). No variant
/// is ever produced by a panic or an out-of-bounds access: the checks come first.
///
/// An `Error` is `Copy`: it owns no heap memory, so making one never allocates, and a hot loop
/// that drops one (`Err(_) => ...` after a `try_` form) keeps its `Result` in registers. With
/// drop glue, the `Result` of `try_reserve` lived on the stack, and its stores cost an 8-byte
/// writer a sixth of its rate (docs/PERFORMANCE.md, "A Copy error"). So the variants name what
/// went wrong, not the segment or path it went wrong with: the caller has that at hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A segment name (or socket path) that the system cannot hold.
    #[error("invalid name: {reason}")]
    InvalidName {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Options that cannot make a ring.
    #[error("invalid configuration: {0}")]
    InvalidConfig(&'static str),
    /// Nothing of that name exists (a segment, or a listening socket).
    #[error("nothing of that name exists")]
    NotFound,
    /// Something of that name exists already (creation is exclusive).
    #[error("that name is taken")]
    AlreadyExists,
    /// The segment does not start with ringport's magic number: it is not ours.
    #[error("not a ringport segment (magic {found:#018x})")]
    BadMagic {
        /// The first eight bytes found.
        found: u64,
    },
    /// The segment was laid out by another version of ringport.
    #[error("segment layout version {found}, this build reads version {expected}")]
    VersionMismatch {
        /// The version in the segment.
        found: u32,
        /// The version this build writes and reads.
        expected: u32,
    },
    /// The segment holds another kind of ring.
    #[error("segment holds ring kind {found}, expected kind {expected}")]
    WrongKind {
        /// The kind in the segment.
        found: u32,
        /// The kind asked for.
        expected: u32,
    },
    /// The segment is smaller than its header, or than the size its header claims.
    #[error("segment is {len} bytes, needs at least {needed}")]
    TooSmall {
        /// The segment's size.
        len: u64,
        /// The size it needs.
        needed: u64,
    },
    /// Another live process holds this role.
    #[error("the {role} role is already held by process {pid}")]
    RoleTaken {
        /// The role asked for.
        role: Role,
        /// The process that holds it.
        pid: u32,
    },
    /// A frame length outside `1..=max`.
    #[error("frame length {len} is outside 1..={max}")]
    InvalidLength {
        /// The length asked for.
        len: usize,
        /// The ring's maximum frame length.
        max: usize,
    },
    /// The ring has no room for the frame now (only from `try_` forms).
    #[error("ring is full")]
    Full,
    /// The ring holds no frame now (only from `try_` forms).
    #[error("ring is empty")]
    Empty,
    /// A `_timeout` form ran out of time.
    #[error("timed out")]
    Timeout,
    /// The peer detached or died, and nothing more can arrive (or be read).
    #[error("the {0} has gone")]
    PeerGone(Role),
    /// Every subscriber slot of a publish-subscribe ring is held by a live subscriber.
    #[error("all {slots} subscriber slots are held: close a subscriber, or create the ring with more (PubSubOptions::subscribers)")]
    NoFreeSlot {
        /// The ring's number of subscriber slots.
        slots: u32,
    },
    /// This subscriber fell behind a publisher that blocks on its slowest subscriber for longer
    /// than the publisher's stall timeout, and was dropped: the publisher no longer waits for
    /// it. Open a new subscriber to read on from the newest messages.
    #[error("this subscriber stalled the publisher past its stall timeout and was dropped: open a new subscriber")]
    Dropped,
    /// A typed endpoint met a ring made for another message type (or for bytes): the layout
    /// fingerprints differ.
    #[error("the ring carries another message type (layout fingerprint {found:#x}, this end's {expected:#x}): build both ends with the same type; `ringport ls` names the ring's")]
    TypeMismatch {
        /// The ring's fingerprint (0: a ring of bytes).
        found: u64,
        /// This end's.
        expected: u64,
    },
    /// A message could not be encoded or decoded (serde endpoints).
    #[error("message encoding: {0}")]
    Encoding(&'static str),
    /// A value read from shared memory broke the ring's invariants.
    #[error("shared memory corrupted: {what} (value {value:#x} at position {position})")]
    Corrupted {
        /// Which invariant broke.
        what: &'static str,
        /// The offending value.
        value: u64,
        /// The ring position (or header offset) where it was read.
        position: u64,
    },
    /// A named segment belongs to another user than ours (the caller's effective uid) and that
    /// user is not trusted: `trust_owner(uid)` on the options accepts it.
    #[error("segment owned by uid {owner}, not by us: open it with trust_owner({owner}) if that user is trusted")]
    NotOwner {
        /// The segment's owner.
        owner: u32,
    },
    /// A named segment may be written by others than its owner (its group or anyone), any of
    /// whom could corrupt it: `allow_shared_write(true)` on the options accepts it.
    #[error("segment mode {mode:o} lets others than its owner write it: open it with allow_shared_write(true) if they are trusted")]
    SharedWritable {
        /// The segment's permission bits.
        mode: u32,
    },
    /// A segment passed as a descriptor is not a memfd sealed against shrinking, so its owner
    /// could truncate it under our mapping.
    #[error("segment descriptor is not a memfd sealed against shrinking")]
    Unsealed,
    /// The peer broke the channel protocol (a malformed or unexpected message).
    #[error("channel protocol violated by the peer: {0}")]
    Protocol(&'static str),
    /// The peer's credentials are not accepted (by default only the same user is).
    #[error("peer refused: process {pid} runs as uid {uid}")]
    PeerRefused {
        /// The peer's process id.
        pid: i32,
        /// The peer's user id.
        uid: u32,
    },
    /// The listener refused our credentials.
    #[error("the listener refused this process's credentials")]
    Refused,
    /// A channel message longer than the peer accepts (the `max_message` of the receiving side's
    /// `ChannelOptions`, told in the handshake).
    #[error(
        "a message of {len} bytes is over the peer's limit of {max} bytes \
         (ChannelOptions::max_message on the receiving side)"
    )]
    MessageTooLong {
        /// The message's length.
        len: usize,
        /// The largest message the peer accepts.
        max: usize,
    },
    /// The system cannot back a shared segment this large: its `tmpfs` (`/dev/shm`, often
    /// 64 MiB in a container) or the memory limit is full.
    #[error(
        "the system cannot back a shared segment of {len} bytes: /dev/shm (or the memory \
         cgroup) is full; free space there (`df -h /dev/shm`), or ask for a smaller ring"
    )]
    NoSpace {
        /// The segment's size in bytes.
        len: u64,
    },
    /// A System V key is held by a segment that is not a ringport ring (or one we cannot
    /// read): another program's, which creating or removing ours must not touch.
    #[error(
        "System V key {key:#x} is held by a segment that is not a ringport ring: pick another          key (or ftok project id); `ipcs -m` lists them"
    )]
    KeyInUse {
        /// The key.
        key: i32,
    },
    /// A limit of the system refuses a segment this large (or one more segment).
    #[error(
        "the system's {limit} refuses a segment of {len} bytes: raise it (sysctl) or ask for a          smaller ring"
    )]
    SystemLimit {
        /// The limit, as sysctl names it.
        limit: &'static str,
        /// The segment's size in bytes.
        len: u64,
    },
    /// Huge pages were asked for and the system has too few free (or none reserved).
    #[error(
        "no {len} bytes of huge pages free: reserve them (sysctl vm.nr_hugepages, or          /sys/kernel/mm/hugepages), or create the ring without huge_pages(true)"
    )]
    NoHugePages {
        /// The segment's size in bytes, rounded up to whole huge pages.
        len: u64,
    },
    /// The ring's memory could not be locked (`mlock`): the process's lock limit is lower.
    #[error(
        "cannot lock {len} bytes in memory: the limit is {limit} bytes (raise `ulimit -l`, or          grant CAP_IPC_LOCK), or create the ring without lock_in_memory(true)"
    )]
    MemoryLock {
        /// The bytes to lock.
        len: u64,
        /// RLIMIT_MEMLOCK's soft limit (u64::MAX: unlimited).
        limit: u64,
    },
    /// The kernel lacks something ringport needs.
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
    /// A system call failed.
    #[error("{op}: {source}")]
    Os {
        /// The operation that failed.
        op: &'static str,
        /// The error the kernel returned.
        #[source]
        source: Errno,
    },
}

impl Error {
    pub(crate) fn corrupted(what: &'static str, value: u64, position: u64) -> Error {
        Error::Corrupted {
            what,
            value,
            position,
        }
    }
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
