//! The hardware baseline: `ringport_measure::raw`'s slot ring, the least a shared-memory
//! message path can do (a 32-bit stamp and the message per slot, no header, no frames, no
//! checks). With one message in flight (ping-pong) a round trip uses one slot each way: the
//! cache-line ping-pong; with many (streaming) it is a minimal ring.
//! Busy: both wait by spinning. Blocking: both wait in FUTEX_WAIT on the stamp and wake the peer
//! with FUTEX_WAKE after every store, unconditionally (the raw futex ping-pong).

use std::time::Duration;

use ringport_measure::fds::adopt_inherited;
use ringport_measure::raw::Slots;
use ringport_measure::shm::SharedMap;

use super::{Handoff, Patience, PeerEnd, STALL};
use crate::bench::plan::{Metric, Mode};
use crate::bench::BoxError;

/// Bytes of slots in each direction when streaming (at least four slots), as in ringport's
/// rings here.
const DIRECTION_BYTES: usize = 256 << 10;
/// A sleep on the futex is cut into slices this long, so that a dead peer is noticed.
const SLICE: Duration = Duration::from_millis(100);

/// One direction's slots, at `base` in the memfd.
fn direction(metric: Metric, size: usize, base: usize) -> Slots {
    let stride = Slots::stride_for(size);
    let count = match metric {
        Metric::RoundTrip => 1,
        Metric::Throughput => (DIRECTION_BYTES / stride).max(4),
    };
    Slots::new(base, stride, count)
}

/// One end of the raw baseline.
pub struct RawLink {
    map: SharedMap,
    size: usize,
    mode: Mode,
    tx: Slots,
    rx: Slots,
}

impl RawLink {
    pub fn create(
        mode: Mode,
        metric: Metric,
        size: usize,
        handoff: &mut Handoff,
    ) -> Result<RawLink, BoxError> {
        let len = direction(metric, size, 0).len();
        let map = SharedMap::create(2 * len)?;
        handoff.pass_fd(map.fd())?;
        Ok(RawLink::new(map, metric, size, mode, false))
    }

    pub fn open(
        mode: Mode,
        metric: Metric,
        size: usize,
        end: &PeerEnd,
    ) -> Result<RawLink, BoxError> {
        let len = direction(metric, size, 0).len();
        let fd = adopt_inherited(*end.fds.first().ok_or("raw: no memfd passed")?)?;
        let map = SharedMap::map(fd)?;
        if map.len() != 2 * len {
            return Err(format!("raw: the memfd is {} bytes, not {}", map.len(), 2 * len).into());
        }
        Ok(RawLink::new(map, metric, size, mode, true))
    }

    fn new(map: SharedMap, metric: Metric, size: usize, mode: Mode, peer: bool) -> RawLink {
        let len = direction(metric, size, 0).len();
        let (ping, pong) = (direction(metric, size, 0), direction(metric, size, len));
        let (tx, rx) = if peer { (pong, ping) } else { (ping, pong) };
        RawLink {
            map,
            size,
            mode,
            tx,
            rx,
        }
    }
}

impl super::Link for RawLink {
    #[inline]
    fn send(&mut self, msg: &[u8]) -> Result<(), BoxError> {
        // The slot is free once its last message was read. Only a stream fills the slots, and
        // streams are busy, so this wait always spins: the receiver wakes nobody when it frees
        // a slot, which keeps the blocking round trip at one FUTEX_WAKE a message.
        let mut patience = Patience::new();
        let stamp = self.tx.send(&self.map, msg, || patience.spin())?;
        if self.mode == Mode::Block {
            ringport_measure::futex::wake(stamp, 1);
        }
        Ok(())
    }

    #[inline]
    fn recv(&mut self) -> Result<u64, BoxError> {
        let mode = self.mode;
        let mut patience = Patience::new();
        let mut slices = 0u32;
        self.rx.recv(&self.map, self.size, |stamp| match mode {
            Mode::Spin => patience.spin(),
            Mode::Block => {
                ringport_measure::futex::wait(stamp, 0, Some(SLICE));
                slices += 1;
                if SLICE * slices > STALL {
                    return Err("raw: no progress: the peer is stuck or gone".into());
                }
                Ok(())
            }
        })
    }
}
