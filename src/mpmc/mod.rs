//! The multi-producer multi-consumer ring of fixed-size slots.
//!
//! One segment holds one ring: the common header (see `layout`; its two position lines hold the
//! tail and the head, its two bells the "not empty" and "not full" futexes) and a power-of-two
//! array of slots, each an 8-byte stamp and `slot_size` bytes of payload. Any number of
//! [`MpmcProducer`] and [`MpmcConsumer`] handles, in any number of threads and processes, share
//! it; each message goes to exactly one consumer, and the messages of one producer reach any one
//! consumer in the order they were sent. The protocol is in `slot.rs`.
//!
//! # Crashes
//! A slot claimed by a handle records its pid. A handle that waits behind a slot that stays
//! claimed for a whole liveness interval checks that pid, and if the process is dead completes
//! the slot for it: a message being written is dropped (consumers skip it), a message being read
//! counts as delivered to the consumer that died (at most once: a message that crashed one
//! consumer is not handed to the next). So a `kill -9` anywhere costs at most the messages in the
//! dead process's hands and one liveness interval, and never wedges the ring. Handles in another
//! pid namespace than the segment's creator record no pid; their slots cannot be recovered.
//!
//! Handles do not report [`Error::PeerGone`]: producers and consumers come and go freely. A
//! blocking call ends when it succeeds or its timeout passes.
//!
//! # Example
//!
//! ```
//! # fn main() -> Result<(), ringport::Error> {
//! let ring = ringport::MpmcOptions::new().slots(64).slot_size(32).in_process()?;
//! let mut producer = ring.producer();
//! let mut consumer = ring.consumer();
//! let mut other_producer = producer.clone();
//!
//! producer.send(b"one")?;
//! other_producer.send(b"two")?;
//! assert_eq!(&*consumer.recv()?, b"one");
//! assert_eq!(&*consumer.recv()?, b"two");
//! # Ok(()) }
//! ```

mod consumer;
mod producer;
pub(crate) mod slot;

use std::sync::Arc;
use std::time::{Duration, Instant};

pub use consumer::{MpmcConsumer, SlotGuard};
pub use producer::{MpmcProducer, SlotGrant};

use crate::error::{Error, Result};
use crate::layout::{
    check_mpmc_geometry, slot_stride, RingParams, DATA_BELL, KIND_MPMC, SPACE_BELL,
};
use crate::region::{Region, RingMemory};
use crate::wait::{block_on, Fences, Limit, Notifier, WaitPolicy, WaitStats};
use slot::{Claim, Slots, Stamp};

/// Index of the tail counter in the header's position lines.
const TAIL: usize = 0;
/// Index of the head counter.
const HEAD: usize = 1;

/// How to make or join an MPMC ring, and how its handles wait.
///
/// The geometry (slot count and size) applies when creating; when opening, the segment's own
/// geometry is used. Waiting settings apply to the handles made from the ring.
#[derive(Debug, Clone)]
pub struct MpmcOptions {
    slots: u64,
    slot_size: u64,
    spin: Duration,
    liveness_interval: Duration,
    keep_segment: bool,
    symmetric_fences: bool,
    prefault: bool,
}

impl Default for MpmcOptions {
    fn default() -> Self {
        MpmcOptions {
            slots: 1024,
            slot_size: 256,
            spin: Duration::from_micros(20),
            liveness_interval: Duration::from_millis(20),
            keep_segment: false,
            symmetric_fences: false,
            prefault: true,
        }
    }
}

impl MpmcOptions {
    /// The defaults: 1024 slots of 256 bytes, spin 20 us before sleeping, check a stuck slot's
    /// owner after 20 ms, unlink the segment when the last handle of the creator drops, fault the
    /// pages in when mapping.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of slots: a power of two from 2 to 2^30.
    #[must_use]
    pub fn slots(mut self, slots: usize) -> Self {
        self.slots = slots as u64;
        self
    }

    /// Largest message in bytes (each slot holds one).
    #[must_use]
    pub fn slot_size(mut self, bytes: usize) -> Self {
        self.slot_size = bytes as u64;
        self
    }

    /// How long a slot may stay claimed by another handle, while this one waits behind it,
    /// before its owner's process is checked; also the longest a sleeper sleeps between checks.
    #[must_use]
    pub fn liveness_interval(mut self, interval: Duration) -> Self {
        self.liveness_interval = interval.max(Duration::from_micros(100));
        self
    }

    /// Keep the segment's name when the creator's ring and handles drop (default: unlink it).
    #[must_use]
    pub fn keep_segment(mut self, keep: bool) -> Self {
        self.keep_segment = keep;
        self
    }

    crate::options::shared_ring_setters!();

    fn params(&self) -> Result<RingParams> {
        let slot_size = u32::try_from(self.slot_size)
            .map_err(|_| Error::InvalidConfig("slot size above 4 GiB"))?;
        let capacity = self
            .slots
            .checked_mul(slot_stride(slot_size))
            .ok_or(Error::InvalidConfig("ring too large"))?;
        check_mpmc_geometry(capacity, slot_size).map_err(Error::InvalidConfig)?;
        Ok(RingParams {
            kind: KIND_MPMC,
            capacity,
            max_frame: slot_size,
            flags: Fences::creation_flags(self.symmetric_fences),
        })
    }

    fn ring(&self, region: Region, params: RingParams) -> Result<MpmcRing> {
        let fences = Fences::for_ring(params.flags)?;
        #[cfg(not(loom))]
        if self.prefault {
            region.populate()?;
        }
        let mem = RingMemory::new(Arc::new(region));
        #[cfg(not(loom))]
        let (pid, judge) = {
            // Acquire is not needed: validated with the identity, which the magic published.
            let creator_ns = mem
                .header()
                .identity
                .creator_pid_ns
                .load(crate::sync::Ordering::Relaxed);
            let ours = crate::os::process::pid_namespace_cached();
            // Our pids mean something to the others only in the creator's namespace.
            if ours != 0 && ours == creator_ns {
                (std::process::id(), true)
            } else {
                (0, false)
            }
        };
        #[cfg(loom)]
        let (pid, judge) = (1, false);
        Ok(MpmcRing {
            slots: Slots::new(params.capacity, params.max_frame),
            mem,
            fences,
            policy: WaitPolicy {
                spin: self.spin,
                liveness_interval: self.liveness_interval,
                pause: Duration::ZERO,
            },
            pid,
            judge,
        })
    }

    /// A ring on the heap, for threads of this process.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if the geometry is invalid.
    pub fn in_process(&self) -> Result<MpmcRing> {
        let params = self.params()?;
        self.ring(Region::heap(&params), params)
    }

    /// Creates the named segment.
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::InvalidConfig`], [`Error::AlreadyExists`], [`Error::Os`].
    #[cfg(not(loom))]
    pub fn create(&self, name: &str) -> Result<MpmcRing> {
        let params = self.params()?;
        let region = Region::create_shared(name, &params, !self.keep_segment)?;
        self.ring(region, params)
    }

    #[cfg(feature = "testing")]
    /// For the fuzz bodies: a ring over a copy of a segment image, attached as to a mapping.
    #[cfg(not(loom))]
    pub(crate) fn attach_image(&self, bytes: &[u8]) -> Result<MpmcRing> {
        let (region, params) = Region::from_image(bytes, KIND_MPMC)?;
        self.ring(region, params)
    }

    /// Opens the named segment.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::TooSmall`], [`Error::BadMagic`], [`Error::VersionMismatch`],
    /// [`Error::WrongKind`], [`Error::Corrupted`], [`Error::Unsupported`].
    #[cfg(not(loom))]
    pub fn open(&self, name: &str) -> Result<MpmcRing> {
        let (region, params) = Region::open_shared(name, KIND_MPMC)?;
        self.ring(region, params)
    }
}

/// An MPMC ring this process has created or opened: makes producer and consumer handles.
///
/// The segment stays mapped while the ring or any of its handles lives.
pub struct MpmcRing {
    mem: RingMemory,
    slots: Slots,
    fences: Fences,
    policy: WaitPolicy,
    /// What our claims record: our pid, or 0 if other processes cannot judge it.
    pid: u32,
    /// Whether we may judge the pids recorded by others (same pid namespace as the creator).
    judge: bool,
}

impl MpmcRing {
    /// A new producer handle.
    #[must_use]
    pub fn producer(&self) -> MpmcProducer {
        MpmcProducer::new(self.handle())
    }

    /// A new consumer handle.
    #[must_use]
    pub fn consumer(&self) -> MpmcConsumer {
        MpmcConsumer::new(self.handle())
    }

    /// Number of slots.
    #[must_use]
    pub fn slots(&self) -> usize {
        self.slots.count() as usize
    }

    /// Largest message in bytes.
    #[must_use]
    pub fn slot_size(&self) -> usize {
        self.slots.slot_size()
    }

    #[cfg(feature = "testing")]
    /// For the fuzz bodies: the ring's memory.
    #[cfg(not(loom))]
    pub(crate) fn memory(&self) -> RingMemory {
        self.mem.share()
    }

    fn handle(&self) -> Handle {
        Handle {
            mem: self.mem.share(),
            slots: self.slots,
            fences: self.fences,
            policy: self.policy,
            pid: self.pid,
            recovery: Recovery {
                stuck: StuckWatch::default(),
                judge: self.judge,
            },
            stats: WaitStats::default(),
        }
    }
}

impl std::fmt::Debug for MpmcRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MpmcRing")
            .field("slots", &self.slots.count())
            .field("slot_size", &self.slots.slot_size())
            .finish_non_exhaustive()
    }
}

/// What every handle holds.
struct Handle {
    mem: RingMemory,
    slots: Slots,
    fences: Fences,
    policy: WaitPolicy,
    /// What our claims record.
    pid: u32,
    recovery: Recovery,
    stats: WaitStats,
}

/// Where a handle claims slots: producers at the tail, consumers at the head.
#[derive(Debug, Clone, Copy)]
enum End {
    Tail,
    Head,
}

impl Handle {
    /// One claim at `end`, with recovery (see [`attempt`]): the position won and, at the head,
    /// the message's length.
    fn try_claim(&mut self, end: End) -> Result<Option<(u64, usize)>> {
        let Handle {
            mem,
            slots,
            fences,
            policy,
            pid,
            recovery,
            ..
        } = self;
        attempt(mem, slots, *fences, policy, recovery, || {
            claim(mem, slots, end, *pid)
        })
    }

    /// A claim at `end`, waiting on the bell that the other end rings.
    fn claim_until(&mut self, end: End, limit: Limit) -> Result<(u64, usize)> {
        if let Some(won) = self.try_claim(end)? {
            return Ok(won);
        }
        let Handle {
            mem,
            slots,
            fences,
            policy,
            pid,
            recovery,
            stats,
        } = self;
        let bell = match end {
            End::Tail => SPACE_BELL,
            End::Head => DATA_BELL,
        };
        block_on(
            &mem.header().bells[bell],
            *fences,
            policy,
            limit,
            || {
                attempt(mem, slots, *fences, policy, recovery, || {
                    claim(mem, slots, end, *pid)
                })
            },
            // Handles come and go freely: no peer to be gone.
            |_| None,
            stats,
        )
    }

    /// Another handle on the same ring, with nothing of this one's history (stuck slot seen,
    /// wait statistics).
    fn clone_handle(&self) -> Handle {
        Handle {
            mem: self.mem.share(),
            recovery: Recovery {
                stuck: StuckWatch::default(),
                judge: self.recovery.judge,
            },
            stats: WaitStats::default(),
            ..*self
        }
    }
}

/// A handle's part in recovering slots whose owner died.
struct Recovery {
    stuck: StuckWatch,
    /// Whether we may judge the pids that other handles record.
    judge: bool,
}

/// The producer's (tail) or the consumer's (head) half of the slot protocol, tried once.
fn claim(mem: &RingMemory, slots: &Slots, end: End, pid: u32) -> Result<Claim> {
    match end {
        End::Tail => slots.try_claim_write(mem, &mem.header().positions[TAIL], pid),
        End::Head => slots.try_claim_read(mem, &mem.header().positions[HEAD], pid),
    }
}

/// One attempt to claim a slot (`claim` is the producer's or the consumer's half of the slot
/// protocol), with recovery: if a slot was in the way, it is checked, and once reclaimed the
/// claim is tried once more. Returns the position won and, for a consumer, the length.
fn attempt(
    mem: &RingMemory,
    slots: &Slots,
    fences: Fences,
    policy: &WaitPolicy,
    recovery: &mut Recovery,
    mut claim: impl FnMut() -> Result<Claim>,
) -> Result<Option<(u64, usize)>> {
    for _ in 0..2 {
        match claim()? {
            Claim::Won { position, len } => return Ok(Some((position, len))),
            Claim::NotReady { blocker } => {
                if !recovery.recover(mem, slots, fences, policy.liveness_interval, blocker) {
                    break;
                }
            }
        }
    }
    Ok(None)
}

impl Recovery {
    /// Called when an attempt found the ring not ready because of `blocker` (or nothing in
    /// particular). If the same slot has been in the way for `interval` and its owner is dead,
    /// completes it for the owner and wakes everyone. Returns whether it did.
    #[cold]
    fn recover(
        &mut self,
        mem: &RingMemory,
        slots: &Slots,
        fences: Fences,
        interval: Duration,
        blocker: Option<(u64, Stamp)>,
    ) -> bool {
        let Some(blocker) = self.stuck.persisting(blocker, interval) else {
            return false;
        };
        if !self.judge {
            return false;
        }
        #[cfg(not(loom))]
        let reclaimed = slots.reclaim(mem, blocker, crate::os::process::pid_is_dead);
        // Under loom no owner dies: the models cover the protocol, unit tests the recovery.
        #[cfg(loom)]
        let reclaimed = {
            let _ = (slots, blocker);
            false
        };
        if reclaimed {
            self.stuck = StuckWatch::default();
            let header = mem.header();
            header.bells[DATA_BELL].ring(&mut Notifier::fixed(fences));
            header.bells[SPACE_BELL].ring(&mut Notifier::fixed(fences));
        }
        reclaimed
    }
}

/// Remembers the slot that blocked the last attempts, and since when.
#[derive(Default)]
struct StuckWatch {
    seen: Option<((u64, Stamp), Instant)>,
}

impl StuckWatch {
    /// Records `blocker`; returns it if it has blocked for at least `interval`.
    fn persisting(
        &mut self,
        blocker: Option<(u64, Stamp)>,
        interval: Duration,
    ) -> Option<(u64, Stamp)> {
        let Some(blocker) = blocker else {
            self.seen = None;
            return None;
        };
        match self.seen {
            Some((seen, since)) if seen == blocker => {
                (since.elapsed() >= interval).then_some(blocker)
            }
            _ => {
                self.seen = Some((blocker, Instant::now()));
                None
            }
        }
    }
}
