//! The raw baselines: the least a shared-memory message path can do, with none of ringport's
//! code. Both run over a [`SharedMap`] that the two processes map.
//!
//! - The ping-pong: two words on separate cache-line pairs, each written by one side. Busy, it
//!   is a cache-line round trip, the hardware's limit for a message; blocking, it is a futex
//!   ping-pong with a `FUTEX_WAKE` after every store.
//! - The slot ring: each direction an array of slots, a slot a 32-bit stamp and the message
//!   padded to whole cache lines. The sender waits for the stamp to be 0, copies the message in
//!   and stores the message's stamp (Release); the receiver waits for that stamp (Acquire),
//!   reads the message and stores 0 (Release). One slot each way is the ping-pong with a
//!   message; many slots are a minimal ring, with the sequence word in the slot, no header, no
//!   frames and no checks.

use std::sync::atomic::{AtomicU32, Ordering};

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
    /// Bytes a slot takes for messages of `size` bytes: the stamp (padded to 8) and the
    /// message, rounded up to whole cache lines.
    #[must_use]
    pub fn stride_for(size: usize) -> usize {
        (8 + size).next_multiple_of(64)
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

    fn slot(&self) -> usize {
        self.base + (self.next % self.count as u64) as usize * self.stride
    }

    /// The stamp of the next message: never 0 (0 marks a free slot).
    fn stamp(&self) -> u32 {
        (self.next % (1 << 31)) as u32 + 1
    }

    /// Sends `msg` in the next slot, calling `wait` while that slot still holds an unread
    /// message. Returns the slot's stamp word, for a blocking sender to wake its peer on.
    ///
    /// # Errors
    /// What `wait` returns.
    ///
    /// # Panics
    /// If the message does not fit the slot, or the slot is outside `map`.
    #[inline]
    pub fn send<'m, E>(
        &mut self,
        map: &'m SharedMap,
        msg: &[u8],
        mut wait: impl FnMut() -> Result<(), E>,
    ) -> Result<&'m AtomicU32, E> {
        assert!(8 + msg.len() <= self.stride);
        let slot = self.slot();
        let stamp = map.u32_at(slot);
        // Acquire: pairs with the receiver's Release of 0, so its reads of the old message
        // happen before the copy below overwrites it.
        while stamp.load(Ordering::Acquire) != 0 {
            wait()?;
        }
        map.write(slot + 8, msg);
        // Release: the message is in place before the receiver can see its stamp.
        stamp.store(self.stamp(), Ordering::Release);
        self.next += 1;
        Ok(stamp)
    }

    /// Receives the next message, `size` bytes, reading one word of each of its cache lines,
    /// and returns its first word (little-endian). `wait` is called with the slot's stamp word
    /// while the message is not there (a blocking receiver sleeps on it while it holds 0).
    ///
    /// # Errors
    /// What `wait` returns, or a message if the stamp is neither 0 nor the one expected.
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
        assert!(8 + size <= self.stride);
        let slot = self.slot();
        let stamp = map.u32_at(slot);
        let want = self.stamp();
        loop {
            // Acquire: pairs with the sender's Release of the stamp; the message is visible.
            match stamp.load(Ordering::Acquire) {
                seen if seen == want => break,
                0 => wait(stamp)?,
                seen => return Err(format!("raw: stamp {seen}, expected {want}").into()),
            }
        }
        let first = map.touch(slot + 8, size);
        // Release: the reads above are done before the sender may reuse the slot.
        stamp.store(0, Ordering::Release);
        self.next += 1;
        Ok(first)
    }
}
