//! ringport's own rings: an SPSC ring (sealed memfd, passed down) or an MPMC ring (a named
//! segment, unlinked as soon as the peer has opened it) in each direction.
//!
//! Busy: `try_reserve` / `try_recv` in a loop. Blocking: `reserve` / `recv` with no spin before
//! sleeping, so that the figure is the futex path's own.

use std::time::Duration;

use ringport::spsc::{Consumer, Producer};
use ringport::{mpmc, Error, MpmcOptions, SpscOptions};

use super::{look_at, Handoff, Patience, PeerEnd};
use crate::bench::plan::Mode;
use crate::bench::BoxError;
use ringport_measure::fds::adopt_inherited;

/// Data bytes of a ring in each direction, at least: room for many small messages, and for at
/// least a few of the largest.
const RING_BYTES: usize = 256 << 10;

fn spin_for(mode: Mode) -> Duration {
    match mode {
        // Unused by the busy form, which never calls a blocking method.
        Mode::Spin => Duration::from_micros(20),
        Mode::Block => Duration::ZERO,
    }
}

fn spsc_options(mode: Mode, size: usize) -> SpscOptions {
    // A frame is an 8-byte header and the payload padded to 8; it must fit in half the ring.
    let frame = 8 + size.next_multiple_of(8);
    SpscOptions::new()
        .capacity(RING_BYTES.max(2 * (frame + 8)).next_power_of_two())
        .max_frame(size)
        .spin(spin_for(mode))
}

/// One end of a pair of SPSC rings.
pub struct SpscLink {
    tx: Producer,
    rx: Consumer,
    mode: Mode,
}

impl SpscLink {
    pub fn create(mode: Mode, size: usize, handoff: &mut Handoff) -> Result<SpscLink, BoxError> {
        let options = spsc_options(mode, size);
        let (tx, ping) = options.create_producer_memfd()?;
        let (rx, pong) = options.create_consumer_memfd()?;
        handoff.pass_fd(std::os::fd::AsFd::as_fd(&ping))?;
        handoff.pass_fd(std::os::fd::AsFd::as_fd(&pong))?;
        Ok(SpscLink { tx, rx, mode })
    }

    pub fn open(mode: Mode, size: usize, end: &PeerEnd) -> Result<SpscLink, BoxError> {
        let [ping, pong] = end.fds[..] else {
            return Err("ringport-spsc: expected two descriptors".into());
        };
        let options = spsc_options(mode, size);
        let rx = options.open_consumer_fd(adopt_inherited(ping)?)?;
        let tx = options.open_producer_fd(adopt_inherited(pong)?)?;
        Ok(SpscLink { tx, rx, mode })
    }
}

/// Waits by `mode` for `try_op` to succeed: busy, retrying while it fails with `busy`; blocking,
/// through `blocking_op`. (A macro, not a function: the result borrows the endpoint, which a
/// closure could not hand back.)
macro_rules! wait_by_mode {
    ($mode:expr, $try_op:expr, $blocking_op:expr, $busy:pat) => {{
        let mut patience = Patience::new();
        loop {
            match $mode {
                Mode::Block => break $blocking_op?,
                Mode::Spin => match $try_op {
                    Ok(done) => break done,
                    Err($busy) => patience.spin()?,
                    Err(e) => return Err(e.into()),
                },
            }
        }
    }};
}
pub(crate) use wait_by_mode;

/// The `Link` of a pair of rings: both ring kinds have the same reserve / commit and receive
/// calls, so one body serves both.
macro_rules! ring_link {
    ($link:ty) => {
        impl super::Link for $link {
            #[inline]
            fn send(&mut self, msg: &[u8]) -> Result<(), BoxError> {
                let mut grant = wait_by_mode!(
                    self.mode,
                    self.tx.try_reserve(msg.len()),
                    self.tx.reserve(msg.len()),
                    Error::Full
                );
                grant.copy_from_slice(msg);
                grant.commit();
                Ok(())
            }

            #[inline]
            fn recv(&mut self) -> Result<u64, BoxError> {
                let message =
                    wait_by_mode!(self.mode, self.rx.try_recv(), self.rx.recv(), Error::Empty);
                look_at(&message)
            }
        }
    };
}

ring_link!(SpscLink);

fn mpmc_options(mode: Mode, size: usize) -> MpmcOptions {
    let slots = (RING_BYTES / (size + 8)).max(4).next_power_of_two();
    MpmcOptions::new()
        .slots(slots)
        .slot_size(size)
        .spin(spin_for(mode))
}

/// One end of a pair of MPMC rings (one producer and one consumer on each).
pub struct MpmcLink {
    tx: mpmc::Producer,
    rx: mpmc::Consumer,
    mode: Mode,
    /// The segments' names while the peer may still need them (the bench's end only).
    names: Vec<String>,
}

impl MpmcLink {
    pub fn create(mode: Mode, size: usize, handoff: &mut Handoff) -> Result<MpmcLink, BoxError> {
        let options = mpmc_options(mode, size);
        let stem = crate::bench::unique_name("mpmc");
        let names = vec![format!("{stem}-ping"), format!("{stem}-pong")];
        // The creator unlinks the names when dropped, too, in case the peer never starts.
        let ping = options.create(&names[0])?;
        let pong = options.create(&names[1])?;
        handoff.peer.names.clone_from(&names);
        Ok(MpmcLink {
            tx: ping.producer(),
            rx: pong.consumer(),
            mode,
            names,
        })
    }

    pub fn open(mode: Mode, size: usize, end: &PeerEnd) -> Result<MpmcLink, BoxError> {
        let [ping, pong] = &end.names[..] else {
            return Err("ringport-mpmc: expected two segment names".into());
        };
        let options = mpmc_options(mode, size);
        Ok(MpmcLink {
            rx: options.open(ping)?.consumer(),
            tx: options.open(pong)?.producer(),
            mode,
            names: Vec::new(),
        })
    }

    /// Unlinks the names once the peer has mapped the segments: from then on nothing is left
    /// in /dev/shm, however the run ends.
    pub fn forget_names(&mut self) {
        for name in self.names.drain(..) {
            let _ = ringport::remove_segment(&name);
        }
    }
}

ring_link!(MpmcLink);
