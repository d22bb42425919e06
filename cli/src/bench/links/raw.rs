//! The hardware baseline: the least a shared-memory message path can do, from
//! `ringport_measure::raw`, with no header, no frames and no checks.
//! - Round trips: the slot ring, one slot each way, a stamp word and the message per slot (a
//!   64-byte message and its commit are 72 bytes, as a ringport frame). Busy: both spin.
//!   Blocking: both wait in FUTEX_WAIT on the stamp and wake the peer with FUTEX_WAKE after
//!   every store, unconditionally (the raw futex ping-pong).
//! - Streams: the index ring, messages packed end to end, a head and a tail index each cached
//!   by the other side, a Release store after every message (busy only).

use std::time::Duration;

use ringport_measure::fds::adopt_inherited;
use ringport_measure::raw::{IndexRing, Slots};
use ringport_measure::shm::SharedMap;

use super::{Handoff, Patience, PeerEnd, STALL};
use crate::bench::plan::{Metric, Mode};
use crate::bench::BoxError;

/// Bytes of messages a stream's ring holds (at least four messages), as ringport's rings here.
const STREAM_BYTES: usize = 256 << 10;
/// A sleep on the futex is cut into slices this long, so that a dead peer is noticed.
const SLICE: Duration = Duration::from_millis(100);

/// What the link moves messages through.
enum Path {
    /// One slot each way.
    RoundTrip { tx: Slots, rx: Slots },
    /// One way, bench to peer; each side has its end of the ring.
    Stream(IndexRing),
}

fn stream_count(size: usize) -> usize {
    (STREAM_BYTES / size.next_multiple_of(8)).max(4)
}

/// The mapping's length for `metric` at `size`.
fn map_len(metric: Metric, size: usize) -> usize {
    match metric {
        Metric::RoundTrip => 2 * Slots::stride_for(size),
        Metric::Throughput => IndexRing::len_for(size, stream_count(size)),
    }
}

/// One end of the raw baseline.
pub struct RawLink {
    map: SharedMap,
    size: usize,
    mode: Mode,
    path: Path,
}

impl RawLink {
    pub fn create(
        mode: Mode,
        metric: Metric,
        size: usize,
        handoff: &mut Handoff,
    ) -> Result<RawLink, BoxError> {
        let map = SharedMap::create(map_len(metric, size))?;
        handoff.pass_fd(map.fd())?;
        Ok(RawLink::new(map, metric, size, mode, false))
    }

    pub fn open(
        mode: Mode,
        metric: Metric,
        size: usize,
        end: &PeerEnd,
    ) -> Result<RawLink, BoxError> {
        let len = map_len(metric, size);
        let fd = adopt_inherited(*end.fds.first().ok_or("raw: no memfd passed")?)?;
        let map = SharedMap::map(fd)?;
        if map.len() != len {
            return Err(format!("raw: the memfd is {} bytes, not {len}", map.len()).into());
        }
        Ok(RawLink::new(map, metric, size, mode, true))
    }

    fn new(map: SharedMap, metric: Metric, size: usize, mode: Mode, peer: bool) -> RawLink {
        let path = match metric {
            Metric::RoundTrip => {
                let stride = Slots::stride_for(size);
                let (ping, pong) = (Slots::new(0, stride, 1), Slots::new(stride, stride, 1));
                let (tx, rx) = if peer { (pong, ping) } else { (ping, pong) };
                Path::RoundTrip { tx, rx }
            }
            Metric::Throughput => Path::Stream(IndexRing::new(size, stream_count(size))),
        };
        RawLink {
            map,
            size,
            mode,
            path,
        }
    }
}

impl super::Link for RawLink {
    #[inline]
    fn send(&mut self, msg: &[u8]) -> Result<(), BoxError> {
        let mut patience = Patience::new();
        match &mut self.path {
            Path::RoundTrip { tx, .. } => {
                // The slot is free once its last message was read, which in a ping-pong it is:
                // the receiver wakes nobody when it frees a slot, which keeps the blocking
                // round trip at one FUTEX_WAKE a message.
                let stamp = tx.send(&self.map, msg, || patience.spin())?;
                if self.mode == Mode::Block {
                    ringport_measure::futex::wake(stamp, 1);
                }
            }
            Path::Stream(ring) => {
                while !ring.try_send(&self.map, msg) {
                    patience.spin()?;
                }
            }
        }
        Ok(())
    }

    #[inline]
    fn recv(&mut self) -> Result<u64, BoxError> {
        let mode = self.mode;
        let mut patience = Patience::new();
        match &mut self.path {
            Path::RoundTrip { rx, .. } => {
                let mut slices = 0u32;
                rx.recv(&self.map, self.size, |stamp| match mode {
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
            Path::Stream(ring) => loop {
                if let Some(first) = ring.try_recv(&self.map) {
                    return Ok(first);
                }
                patience.spin()?;
            },
        }
    }
}
