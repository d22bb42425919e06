//! The hardware baseline: the least a shared-memory message path can do. Each direction is an
//! array of slots in a shared memfd; a slot is a 32-bit stamp and the message, padded to whole
//! cache lines. The sender waits for the stamp to be 0, copies the message in and stores the
//! message's stamp (Release); the receiver waits for that stamp (Acquire), reads the message
//! and stores 0 (Release). With one message in flight (ping-pong) this is a cache-line
//! ping-pong (a round trip uses one slot each way: the cache-line ping-pong); with many
//! (streaming) it is a minimal ring with no header, no frames, no checks.
//! Busy: both wait by spinning. Blocking: both wait in FUTEX_WAIT on the stamp and wake the peer
//! with FUTEX_WAKE after every store, unconditionally (the raw futex ping-pong).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::{Handoff, Patience, PeerEnd, STALL};
use crate::bench::plan::{Metric, Mode};
use crate::bench::sys::{adopt_inherited, SharedMap};
use crate::bench::BoxError;

/// Bytes of slots in each direction when streaming (at least four slots), as in ringport's
/// rings here.
const DIRECTION_BYTES: usize = 256 << 10;
/// A sleep on the futex is cut into slices this long, so that a dead peer is noticed.
const SLICE: Duration = Duration::from_millis(100);

/// The slots of both directions, as laid out in the memfd.
#[derive(Clone, Copy)]
struct Geometry {
    stride: usize,
    slots: usize,
}

impl Geometry {
    fn new(metric: Metric, size: usize) -> Geometry {
        let stride = (8 + size).next_multiple_of(64);
        let slots = match metric {
            Metric::RoundTrip => 1,
            Metric::Throughput => (DIRECTION_BYTES / stride).max(4),
        };
        Geometry { stride, slots }
    }
    fn direction_bytes(self) -> usize {
        self.stride * self.slots
    }
}

/// One direction's end: which slot is next, counted in messages.
struct Cursor {
    base: usize,
    next: u64,
}

impl Cursor {
    fn slot(&self, geometry: Geometry) -> usize {
        self.base + (self.next % geometry.slots as u64) as usize * geometry.stride
    }
    /// The stamp of the next message: never 0 (0 marks a free slot).
    fn stamp(&self) -> u32 {
        (self.next % (1 << 31)) as u32 + 1
    }
}

/// One end of the raw baseline.
pub struct RawLink {
    map: SharedMap,
    geometry: Geometry,
    size: usize,
    mode: Mode,
    tx: Cursor,
    rx: Cursor,
}

impl RawLink {
    pub fn create(
        mode: Mode,
        metric: Metric,
        size: usize,
        handoff: &mut Handoff,
    ) -> Result<RawLink, BoxError> {
        let geometry = Geometry::new(metric, size);
        let map = SharedMap::create(2 * geometry.direction_bytes())?;
        handoff.pass_fd(map.fd())?;
        Ok(RawLink::new(map, geometry, size, mode, false))
    }

    pub fn open(
        mode: Mode,
        metric: Metric,
        size: usize,
        end: &PeerEnd,
    ) -> Result<RawLink, BoxError> {
        let geometry = Geometry::new(metric, size);
        let fd = adopt_inherited(*end.fds.first().ok_or("raw: no memfd passed")?)?;
        let map = SharedMap::map(fd)?;
        if map.len() != 2 * geometry.direction_bytes() {
            return Err(format!(
                "raw: the memfd is {} bytes, not {}",
                map.len(),
                2 * geometry.direction_bytes()
            )
            .into());
        }
        Ok(RawLink::new(map, geometry, size, mode, true))
    }

    fn new(map: SharedMap, geometry: Geometry, size: usize, mode: Mode, peer: bool) -> RawLink {
        let (ping, pong) = (0, geometry.direction_bytes());
        let (tx, rx) = if peer { (pong, ping) } else { (ping, pong) };
        RawLink {
            map,
            geometry,
            size,
            mode,
            tx: Cursor { base: tx, next: 0 },
            rx: Cursor { base: rx, next: 0 },
        }
    }

    /// Waits until `stamp` holds `want` (the next message; anything else than it or 0 is a
    /// breach of the protocol), spinning or sleeping by the mode.
    #[inline]
    fn wait_for_message(&self, stamp: &AtomicU32, want: u32) -> Result<(), BoxError> {
        let mut patience = Patience::new();
        let mut slices = 0u32;
        loop {
            // Acquire: pairs with the sender's Release of the stamp; the message is visible.
            match stamp.load(Ordering::Acquire) {
                seen if seen == want => return Ok(()),
                0 => {}
                seen => return Err(format!("raw: stamp {seen}, expected {want}").into()),
            }
            match self.mode {
                Mode::Spin => patience.spin()?,
                Mode::Block => {
                    ringport::futex::wait(stamp, 0, Some(SLICE));
                    slices += 1;
                    if SLICE * slices > STALL {
                        return Err("raw: no progress: the peer is stuck or gone".into());
                    }
                }
            }
        }
    }
}

impl super::Link for RawLink {
    #[inline]
    fn send(&mut self, msg: &[u8]) -> Result<(), BoxError> {
        let slot = self.tx.slot(self.geometry);
        let stamp = self.map.word(slot);
        let mine = self.tx.stamp();
        // The slot is free once its last message was read. Only a stream fills the slots, and
        // streams are busy, so this wait always spins: the receiver wakes nobody when it frees
        // a slot, which keeps the blocking round trip at one FUTEX_WAKE a message.
        let mut patience = Patience::new();
        // Acquire: pairs with the receiver's Release of 0, so its reads of the old message
        // happen before the copy below overwrites it.
        while stamp.load(Ordering::Acquire) != 0 {
            patience.spin()?;
        }
        self.map.write(slot + 8, msg);
        // Release: the message is in place before the receiver can see its stamp.
        stamp.store(mine, Ordering::Release);
        if self.mode == Mode::Block {
            ringport::futex::wake(stamp, 1);
        }
        self.tx.next += 1;
        Ok(())
    }

    #[inline]
    fn recv(&mut self) -> Result<u64, BoxError> {
        let slot = self.rx.slot(self.geometry);
        let stamp = self.map.word(slot);
        self.wait_for_message(stamp, self.rx.stamp())?;
        let tag = self.map.touch(slot + 8, self.size);
        // Release: the reads above are done before the sender may reuse the slot.
        stamp.store(0, Ordering::Release);
        self.rx.next += 1;
        Ok(tag)
    }
}
