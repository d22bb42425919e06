//! The hardware baseline: the least a shared-memory message path can do, from
//! `ringport_measure::raw`, with no header, no frames and no checks.
//! - Round trips: the slot ring, one slot each way, a stamp word and the message per slot (a
//!   64-byte message and its commit are 72 bytes, as a ringport frame). Busy: both spin.
//!   Blocking: both wait in FUTEX_WAIT on the stamp and wake the peer with FUTEX_WAKE after
//!   every store, unconditionally (the raw futex ping-pong).
//! - Streams: the index ring, messages packed end to end, a head and a tail index each cached
//!   by the other side, a Release store after every message (busy only).
//!
//! The same rings run over the shared memory each textbook mechanism gives (a memfd, a System V
//! segment, a mapped file on a tmpfs or a disk), and blocking round trips may wake by an
//! eventfd each way instead of a futex: once mapped, the memory's kind should not matter.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

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

/// The shared memory the rings live in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Memory {
    Memfd,
    SysV,
    /// An unnamed file (`O_TMPFILE`) on the tmpfs of `/dev/shm`.
    FileTmpfs,
    /// An unnamed file in the working directory.
    FileDisk,
}

/// How a blocking round trip wakes the peer.
enum Wake {
    /// FUTEX_WAKE on the slot's stamp after every store.
    Futex,
    /// A write to the peer's eventfd after every store; a reader asleep in `read` of its own.
    EventFd { tx: OwnedFd, rx: OwnedFd },
}

/// One end of the raw baseline.
pub struct RawLink {
    map: SharedMap,
    size: usize,
    mode: Mode,
    path: Path,
    wake: Wake,
    /// A System V segment's id, removed once the peer has attached (the bench's end).
    sysv: Option<i32>,
}

impl RawLink {
    /// The bench's end over `memory`; `eventfd`: blocking round trips wake by eventfds.
    pub fn create(
        memory: Memory,
        eventfd: bool,
        mode: Mode,
        metric: Metric,
        size: usize,
        handoff: &mut Handoff,
    ) -> Result<RawLink, BoxError> {
        let len = map_len(metric, size);
        let mut sysv = None;
        let map = match memory {
            Memory::Memfd => SharedMap::create(len)?,
            Memory::SysV => {
                let (map, id) = SharedMap::create_sysv(len).map_err(|e| {
                    format!("a System V segment of {len} bytes: {e} (kernel.shmmax, shmall)")
                })?;
                handoff.peer.names.push(id.to_string());
                sysv = Some(id);
                map
            }
            Memory::FileTmpfs => {
                SharedMap::create_unnamed_file(std::path::Path::new("/dev/shm"), len)
                    .map_err(|e| format!("an unnamed file on /dev/shm: {e}"))?
            }
            Memory::FileDisk => SharedMap::create_unnamed_file(&std::env::current_dir()?, len)
                .map_err(|e| format!("an unnamed file in the working directory: {e}"))?,
        };
        if memory != Memory::SysV {
            handoff.pass_fd(map.fd())?;
        }
        let wake = if eventfd {
            // Ours to read, then the peer's: each side reads its own and writes the other's.
            let (ours, theirs) = (event_fd()?, event_fd()?);
            handoff.pass_fd(ours.as_fd())?;
            handoff.pass_fd(theirs.as_fd())?;
            Wake::EventFd {
                tx: theirs,
                rx: ours,
            }
        } else {
            Wake::Futex
        };
        Ok(RawLink::new(map, metric, size, mode, false, wake, sysv))
    }

    pub fn open(
        memory: Memory,
        eventfd: bool,
        mode: Mode,
        metric: Metric,
        size: usize,
        end: &PeerEnd,
    ) -> Result<RawLink, BoxError> {
        let len = map_len(metric, size);
        let mut fds = end.fds.iter().copied();
        let map = if memory == Memory::SysV {
            let id = end
                .names
                .first()
                .and_then(|n| n.parse().ok())
                .ok_or("raw: no System V segment id passed")?;
            SharedMap::attach_sysv(id)?
        } else {
            SharedMap::map(adopt_inherited(
                fds.next().ok_or("raw: no descriptor passed")?,
            )?)?
        };
        // A System V segment's size is whole pages.
        if map.len() < len || (memory != Memory::SysV && map.len() != len) {
            return Err(format!("raw: the mapping is {} bytes, not {len}", map.len()).into());
        }
        let wake = if eventfd {
            let mut next = || -> Result<OwnedFd, BoxError> {
                Ok(adopt_inherited(
                    fds.next().ok_or("raw: no eventfd passed")?,
                )?)
            };
            let (bench, peer) = (next()?, next()?);
            Wake::EventFd {
                tx: bench,
                rx: peer,
            }
        } else {
            Wake::Futex
        };
        Ok(RawLink::new(map, metric, size, mode, true, wake, None))
    }

    /// Removes the System V segment once the peer has attached it: nothing is left, however
    /// the run ends.
    pub fn forget_names(&mut self) {
        if let Some(id) = self.sysv.take() {
            ringport_measure::shm::remove_sysv(id);
        }
    }

    fn new(
        map: SharedMap,
        metric: Metric,
        size: usize,
        mode: Mode,
        peer: bool,
        wake: Wake,
        sysv: Option<i32>,
    ) -> RawLink {
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
            wake,
            sysv,
        }
    }
}

impl Drop for RawLink {
    fn drop(&mut self) {
        self.forget_names();
    }
}

/// A new eventfd (a counter: a write adds, a read takes it all, or sleeps while it is 0).
fn event_fd() -> Result<OwnedFd, BoxError> {
    // SAFETY: plain values; a new descriptor that nothing else owns.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(format!("eventfd: {}", std::io::Error::last_os_error()).into());
    }
    // SAFETY: `fd` was just made, and is ours alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Adds 1 to an eventfd (wakes a reader).
fn signal(fd: &OwnedFd) {
    let one = 1u64.to_ne_bytes();
    // SAFETY: 8 bytes from a live buffer.
    unsafe { libc::write(fd.as_raw_fd(), one.as_ptr().cast(), 8) };
}

/// Sleeps in `read` of an eventfd until it is signalled, or `SLICE` passes (a `poll` first,
/// so that a dead peer is noticed).
fn await_signal(fd: &OwnedFd) {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    if unsafe { libc::poll(&mut pfd, 1, SLICE.as_millis() as i32) } > 0 {
        let mut count = [0u8; 8];
        // SAFETY: 8 bytes into a live buffer.
        unsafe { libc::read(fd.as_raw_fd(), count.as_mut_ptr().cast(), 8) };
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
                    match &self.wake {
                        Wake::Futex => ringport_measure::futex::wake(stamp, 1),
                        Wake::EventFd { tx, .. } => signal(tx),
                    }
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
                let wake = &self.wake;
                rx.recv(&self.map, self.size, |stamp| match mode {
                    Mode::Spin => patience.spin(),
                    Mode::Block => {
                        match wake {
                            Wake::Futex => ringport_measure::futex::wait(stamp, 0, Some(SLICE)),
                            Wake::EventFd { rx, .. } => await_signal(rx),
                        }
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
