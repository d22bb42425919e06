//! The raw baselines: the least a shared-memory message path can do, with none of ringport's
//! code. Both run over a [`SharedMap`] that the two processes map.
//!
//! - The ping-pong: two words on separate cache-line pairs, each written by one side. Busy, it
//!   is a cache-line round trip, the hardware's limit for a message; blocking, it is a futex
//!   ping-pong with a `FUTEX_WAKE` after every store.
//! - The slot ring: each direction an array of slots, a slot a stamp word followed by the
//!   message, packed end to end (as crossbeam's `ArrayQueue` keeps a stamp beside each value):
//!   the least a ring of opaque messages with a commit can do. A 64-byte message and its stamp
//!   are 72 bytes, two lines, as a 64-byte ringport frame with its header. The sender waits for
//!   the stamp to be 0, copies the message in and stores the stamp (Release); the receiver waits
//!   for the stamp (Acquire), reads the message and stores 0 (Release). One slot each way is the
//!   ping-pong with a message: the round trip's limit.
//! - The index ring: the minimal SPSC ring of fixed-size messages packed end to end (as
//!   rigtorp's SPSCQueue, or a u64 ring for 8-byte ones): a head and a tail index on lines of
//!   their own, each side caching the other's and rereading it only when the ring looks full
//!   (empty), a Release store of its own index after every message. The stream's limit.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::shm::SharedMap;

/// Where the pinger's word is, in a ping-pong mapping.
pub const PING: usize = 0;
/// Where the ponger's word is: 128 bytes on, past the adjacent-line prefetcher's pair.
pub const PONG: usize = 128;
/// The length of a ping-pong mapping.
pub const PING_PONG_LEN: usize = 4096;

/// The raw busy ping-pong, the pinger's side of round trip `i` (from 1): store `i`, spin until
/// the ponger answers with it.
pub fn spin_ping(map: &SharedMap, i: u64) {
    let (ping, pong) = (map.u64_at(PING), map.u64_at(PONG));
    // Release/Acquire: the pair that any message path needs at the least.
    ping.store(i, Ordering::Release);
    while pong.load(Ordering::Acquire) != i {
        std::hint::spin_loop();
    }
}

/// The raw busy ping-pong, the ponger's side of round trip `i`: spin until the ping holds `i`,
/// answer with it.
pub fn spin_pong(map: &SharedMap, i: u64) {
    let (ping, pong) = (map.u64_at(PING), map.u64_at(PONG));
    while ping.load(Ordering::Acquire) != i {
        std::hint::spin_loop();
    }
    pong.store(i, Ordering::Release);
}

/// The raw futex ping-pong, the pinger's side of round trip `i` (from 1): store `i` and wake,
/// sleep until the ponger answers.
pub fn futex_ping(map: &SharedMap, i: u32) {
    let (ping, pong) = (map.u32_at(PING), map.u32_at(PONG));
    ping.store(i, Ordering::Release);
    crate::futex::wake(ping, 1);
    while pong.load(Ordering::Acquire) != i {
        crate::futex::wait(pong, i - 1, None);
    }
}

/// The raw futex ping-pong, the ponger's side of round trip `i`.
pub fn futex_pong(map: &SharedMap, i: u32) {
    let (ping, pong) = (map.u32_at(PING), map.u32_at(PONG));
    while ping.load(Ordering::Acquire) != i {
        crate::futex::wait(ping, i - 1, None);
    }
    pong.store(i, Ordering::Release);
    crate::futex::wake(pong, 1);
}

/// One direction of the slot ring: which slot is next, counted in messages.
#[derive(Debug, Clone, Copy)]
pub struct Slots {
    /// Where the direction's first slot is in the mapping.
    base: usize,
    stride: usize,
    count: usize,
    next: u64,
}

impl Slots {
    /// Bytes a slot takes for messages of `size` bytes (at least 8: the first word is the
    /// sequence number the receiver returns): the stamp word and the message, rounded up to
    /// 8 bytes.
    #[must_use]
    pub fn stride_for(size: usize) -> usize {
        (STAMP + size.max(8)).next_multiple_of(8)
    }

    /// The direction of `count` slots of `stride` bytes at `base` in the mapping.
    #[must_use]
    pub fn new(base: usize, stride: usize, count: usize) -> Slots {
        Slots {
            base,
            stride,
            count,
            next: 0,
        }
    }

    /// Bytes the direction takes in the mapping.
    #[must_use]
    pub fn len(&self) -> usize {
        self.stride * self.count
    }

    /// Whether the direction has no slot.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    #[inline]
    fn slot(&self) -> usize {
        self.base + (self.next % self.count as u64) as usize * self.stride
    }

    /// Sends `msg` (at least 8 bytes, its first word its sequence number) in the next slot,
    /// calling `wait` while that slot still holds an unread message. Returns the slot's stamp
    /// word, for a blocking sender to wake its peer on.
    ///
    /// # Errors
    /// What `wait` returns.
    ///
    /// # Panics
    /// If the message is shorter than 8 bytes or does not fit the slot, or the slot is outside
    /// `map`.
    #[inline]
    pub fn send<'m, E>(
        &mut self,
        map: &'m SharedMap,
        msg: &[u8],
        mut wait: impl FnMut() -> Result<(), E>,
    ) -> Result<&'m AtomicU32, E> {
        assert!(msg.len() >= 8 && STAMP + msg.len() <= self.stride);
        let slot = self.slot();
        let stamp = map.u32_at(slot);
        // Acquire: pairs with the receiver's Release of 0, so its reads of the old message
        // happen before the copy below overwrites it.
        while stamp.load(Ordering::Acquire) != 0 {
            wait()?;
        }
        map.write(slot + STAMP, msg);
        // Release: the message is in place before the receiver can see its stamp.
        stamp.store(FULL, Ordering::Release);
        self.next += 1;
        Ok(stamp)
    }

    /// Receives the next message, `size` bytes, reading one word of each of its cache lines,
    /// and returns its first word, its sequence number. `wait` is called with the slot's stamp
    /// word while the message is not there (a blocking receiver sleeps on it while it holds 0).
    ///
    /// # Errors
    /// What `wait` returns.
    ///
    /// # Panics
    /// If `size` is below 8 or above the slot's room, or the slot is outside `map`.
    #[inline]
    pub fn recv<E: From<String>>(
        &mut self,
        map: &SharedMap,
        size: usize,
        mut wait: impl FnMut(&AtomicU32) -> Result<(), E>,
    ) -> Result<u64, E> {
        assert!(size >= 8 && STAMP + size <= self.stride);
        let slot = self.slot();
        let stamp = map.u32_at(slot);
        // Acquire: pairs with the sender's Release of the stamp; the message is visible.
        while stamp.load(Ordering::Acquire) == 0 {
            wait(stamp)?;
        }
        let first = map.touch(slot + STAMP, size);
        // Release: the reads above are done before the sender may reuse the slot.
        stamp.store(0, Ordering::Release);
        self.next += 1;
        Ok(first)
    }
}

/// The bytes of a slot's stamp, before its message (a u32 for the futex, padded to 8 so that the
/// message's words are aligned, as ringport's frame header).
const STAMP: usize = 8;
/// A slot's stamp while it holds a message (0: free).
const FULL: u32 = 1;

/// The index ring's layout: the tail (the producer's) at 0, the head (the consumer's) on its
/// own line pair at 128, the messages from 256.
const TAIL: usize = 0;
const HEAD: usize = 128;
const MESSAGES: usize = 256;

/// One side of the index ring: its own index and its cached copy of the other's.
#[derive(Debug, Clone, Copy)]
pub struct IndexRing {
    size: usize,
    /// The message size rounded up to 8 bytes: where each message starts.
    stride: usize,
    count: u64,
    own: u64,
    cached: u64,
    /// Where the slot of `own` is: stepped and wrapped by hand, with no division.
    at: usize,
    end: usize,
}

impl IndexRing {
    /// Bytes the mapping needs for `count` messages of `size` bytes.
    #[must_use]
    pub fn len_for(size: usize, count: usize) -> usize {
        MESSAGES + size.next_multiple_of(8) * count
    }

    /// One side of a ring of `count` messages of `size` bytes (at least 8: the first word is
    /// the sequence number) at the start of its mapping.
    #[must_use]
    pub fn new(size: usize, count: usize) -> IndexRing {
        assert!(size >= 8 && count > 0);
        IndexRing {
            size,
            stride: size.next_multiple_of(8),
            count: count as u64,
            own: 0,
            cached: 0,
            at: MESSAGES,
            end: MESSAGES + size.next_multiple_of(8) * count,
        }
    }

    #[inline]
    fn step(&mut self) {
        self.own += 1;
        self.at += self.stride;
        if self.at == self.end {
            self.at = MESSAGES;
        }
    }

    #[inline]
    fn word(map: &SharedMap, offset: usize) -> &AtomicU64 {
        map.u64_at(offset)
    }

    /// The producer's side: copies `msg` in if there is room, and publishes it. Returns
    /// whether it did (false: the ring is full).
    ///
    /// # Panics
    /// If `msg` is not the ring's message size, or the ring is outside `map`.
    #[inline]
    pub fn try_send(&mut self, map: &SharedMap, msg: &[u8]) -> bool {
        assert_eq!(msg.len(), self.size);
        if self.own - self.cached == self.count {
            // Acquire: pairs with the consumer's Release of its head, so its reads of the slot
            // happen before the copy below overwrites it.
            self.cached = Self::word(map, HEAD).load(Ordering::Acquire);
            if self.own - self.cached == self.count {
                return false;
            }
        }
        map.write(self.at, msg);
        self.step();
        // Release: the message is in place before the consumer can see the new tail.
        Self::word(map, TAIL).store(self.own, Ordering::Release);
        true
    }

    /// The consumer's side: the next message's first word (its sequence number), reading one
    /// word of each of its cache lines, if one is there, and frees it.
    ///
    /// # Panics
    /// If the ring is outside `map`.
    #[inline]
    pub fn try_recv(&mut self, map: &SharedMap) -> Option<u64> {
        if self.own == self.cached {
            // Acquire: pairs with the producer's Release of its tail; the message is visible.
            self.cached = Self::word(map, TAIL).load(Ordering::Acquire);
            if self.own == self.cached {
                return None;
            }
        }
        let first = map.touch(self.at, self.size);
        self.step();
        // Release: the reads above are done before the producer may reuse the slot.
        Self::word(map, HEAD).store(self.own, Ordering::Release);
        Some(first)
    }
}
