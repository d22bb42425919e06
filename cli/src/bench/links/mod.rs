//! One `Link` per mechanism: both ends of a two-way message path between the bench and its peer.
//!
//! The rules are the same for every mechanism, so that the figures compare like with like:
//! - a sender copies the message from its own buffer into the mechanism (a `write`, or a copy
//!   into a reserved frame or slot);
//! - a receiver looks at every cache line of the message (one word each), where it lies when
//!   the mechanism lets it (shared memory) or in its own buffer after reading it (the kernel's);
//! - the first 8 bytes of a message are its sequence number, checked on arrival, so a mechanism
//!   that lost or reordered a message would fail the run, not flatter it.

#[cfg(feature = "iceoryx2")]
mod iox;
mod kernel;
mod raw;
mod rings;
mod sync;
mod sysv;

/// A `try_` operation waited on by a bench's mode (busy: retried; blocking: the blocking form).
pub(crate) use rings::wait_by_mode;

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use super::plan::{Contender, Mechanism, Metric};
use super::BoxError;

/// Both directions between the bench and its peer, as seen from one end.
pub trait Link {
    /// Sends `msg`, waiting (by the link's mode) while the path is full.
    fn send(&mut self, msg: &[u8]) -> Result<(), BoxError>;
    /// Receives the next message, waiting by the link's mode; returns its sequence number.
    fn recv(&mut self) -> Result<u64, BoxError>;
}

/// How long a wait may make no progress before the peer counts as stuck (it may have died
/// without the mechanism noticing, as with a busy-polled mapping).
pub const STALL: Duration = Duration::from_secs(10);

/// A busy wait's guard against a peer that will never answer: reads the clock only once every
/// few thousand spins.
pub struct Patience {
    spins: u32,
    since: Option<Instant>,
}

impl Patience {
    pub fn new() -> Self {
        Patience {
            spins: 0,
            since: None,
        }
    }

    /// One more spin.
    ///
    /// # Errors
    /// When the wait has lasted longer than [`STALL`].
    #[inline]
    pub fn spin(&mut self) -> Result<(), BoxError> {
        std::hint::spin_loop();
        self.spins = self.spins.wrapping_add(1);
        if self.spins % 16_384 == 0 {
            let since = *self.since.get_or_insert_with(Instant::now);
            if since.elapsed() > STALL {
                return Err(format!("no progress for {STALL:?}: the peer is stuck or gone").into());
            }
        }
        Ok(())
    }
}

/// Calls `op` (a libc call that fails with -1 and `errno`) until it succeeds, retrying on
/// `EINTR` and, spinning under a [`Patience`], on the `busy` errors (the ring or queue is not
/// ready); returns what it returned.
///
/// # Errors
/// Any other error, named after `call`; a wait with no progress for [`STALL`].
pub fn retry_busy(
    call: &str,
    busy: &[i32],
    mut op: impl FnMut() -> isize,
) -> Result<isize, BoxError> {
    let mut patience = Patience::new();
    loop {
        let rc = op();
        if rc != -1 {
            return Ok(rc);
        }
        let errno = std::io::Error::last_os_error();
        match errno.raw_os_error() {
            Some(libc::EINTR) => {}
            Some(e) if busy.contains(&e) => patience.spin()?,
            _ => return Err(format!("{call}: {errno}").into()),
        }
    }
}

/// Reads a byte of every cache line of `message` (as a receiver that uses it would) and
/// returns its sequence number.
#[inline]
pub fn look_at(message: &[u8]) -> Result<u64, BoxError> {
    let Some(head) = message.get(..8) else {
        return Err(format!(
            "a message of {} bytes has no sequence number",
            message.len()
        )
        .into());
    };
    // A byte of every other cache line the message spans, wherever it starts in its line.
    let start = message.as_ptr() as usize;
    let mut sum = 0u8;
    let mut line = (start | 63) + 1;
    while line < start + message.len() {
        sum ^= message[line - start];
        line += 64;
    }
    std::hint::black_box(sum);
    Ok(u64::from_le_bytes(head.try_into().expect("8 bytes")))
}

/// What the peer needs to open its end, given to it on its command line.
#[derive(Default, clap::Args, Debug, Clone)]
pub struct PeerEnd {
    /// Descriptors the peer inherits, in the order its mechanism expects.
    #[arg(long = "fd")]
    pub fds: Vec<i32>,
    /// Names (segments, queues, services).
    #[arg(long = "name")]
    pub names: Vec<String>,
    /// A TCP port on 127.0.0.1.
    #[arg(long)]
    pub port: Option<u16>,
}

/// What the peer must be given to open its end.
#[derive(Default)]
pub struct Handoff {
    /// Descriptors to inherit; the bench closes its copies once the peer has started.
    pub inherit: Vec<OwnedFd>,
    pub peer: PeerEnd,
}

impl Handoff {
    /// Passes `fd` down to the peer (as a duplicate that survives exec).
    pub fn pass_fd(&mut self, fd: std::os::fd::BorrowedFd<'_>) -> Result<(), BoxError> {
        let copy = ringport_measure::fds::inheritable(fd)?;
        self.peer.fds.push(std::os::fd::AsRawFd::as_raw_fd(&copy));
        self.inherit.push(copy);
        Ok(())
    }
}

/// The bench's end, made before the peer starts.
pub enum Pending {
    Ready(Box<AnyLink>),
    Tcp(kernel::TcpListening),
}

impl Pending {
    /// Sets up `contender` to measure `metric` with messages of `size` bytes.
    pub fn create(
        contender: Contender,
        metric: Metric,
        size: usize,
        handoff: &mut Handoff,
    ) -> Result<Pending, BoxError> {
        let Contender { mechanism, mode } = contender;
        if let Some((memory, eventfd)) = raw_kind(mechanism) {
            let link = raw::RawLink::create(memory, eventfd, mode, metric, size, handoff)?;
            return Ok(Pending::Ready(Box::new(AnyLink::Raw(link))));
        }
        let link = match mechanism {
            Mechanism::Raw
            | Mechanism::RawSysv
            | Mechanism::RawFileTmpfs
            | Mechanism::RawFileDisk
            | Mechanism::Eventfd => unreachable!("the raw rings are made above"),
            Mechanism::SysvMq => AnyLink::SysvMq(sysv::SysvMqLink::create(mode, size, handoff)?),
            Mechanism::PthreadCond
            | Mechanism::SemPosix
            | Mechanism::SemSysv
            | Mechanism::MqTurns => AnyLink::Sync(sync::SyncLink::create(
                turns(mechanism),
                mode,
                metric,
                size,
                handoff,
            )?),
            Mechanism::RingportSpsc => AnyLink::Spsc(rings::SpscLink::create(mode, size, handoff)?),
            Mechanism::RingportMpmc => AnyLink::Mpmc(rings::MpmcLink::create(mode, size, handoff)?),
            Mechanism::Pipe | Mechanism::UnixStream | Mechanism::UnixSeqpacket => {
                AnyLink::Fd(kernel::FdLink::create(mechanism, mode, size, handoff)?)
            }
            Mechanism::Tcp => {
                return Ok(Pending::Tcp(kernel::TcpListening::bind(
                    mode, size, handoff,
                )?))
            }
            Mechanism::Mq => AnyLink::Mq(kernel::MqLink::create(mode, size, handoff)?),
            #[cfg(feature = "iceoryx2")]
            Mechanism::Iceoryx2 => AnyLink::Iox(iox::IoxLink::create(mode, size, handoff)?),
            #[cfg(not(feature = "iceoryx2"))]
            Mechanism::Iceoryx2 => return Err(NOT_BUILT.into()),
        };
        Ok(Pending::Ready(Box::new(link)))
    }

    /// The bench's end, once the peer has started (TCP accepts the peer's connection here).
    pub fn connect(self) -> Result<AnyLink, BoxError> {
        match self {
            Pending::Ready(link) => Ok(*link),
            Pending::Tcp(listening) => Ok(AnyLink::Fd(listening.accept()?)),
        }
    }
}

/// The memory a raw-ring mechanism runs over, and whether it wakes by eventfd (None: not one).
fn raw_kind(mechanism: Mechanism) -> Option<(raw::Memory, bool)> {
    Some(match mechanism {
        Mechanism::Raw => (raw::Memory::Memfd, false),
        Mechanism::RawSysv => (raw::Memory::SysV, false),
        Mechanism::RawFileTmpfs => (raw::Memory::FileTmpfs, false),
        Mechanism::RawFileDisk => (raw::Memory::FileDisk, false),
        Mechanism::Eventfd => (raw::Memory::Memfd, true),
        _ => return None,
    })
}

/// How a bounded-buffer mechanism takes turns.
fn turns(mechanism: Mechanism) -> sync::Turns {
    match mechanism {
        Mechanism::PthreadCond => sync::Turns::PthreadCond,
        Mechanism::SemPosix => sync::Turns::SemPosix,
        Mechanism::SemSysv => sync::Turns::SemSysv,
        _ => sync::Turns::MqTokens,
    }
}

#[cfg(not(feature = "iceoryx2"))]
const NOT_BUILT: &str = "iceoryx2 is not in this build (cargo build --release --features iceoryx2)";

/// The peer's end of `contender`, from what the bench passed it.
pub fn open_peer(
    contender: Contender,
    metric: Metric,
    size: usize,
    end: &PeerEnd,
) -> Result<AnyLink, BoxError> {
    let Contender { mechanism, mode } = contender;
    if let Some((memory, eventfd)) = raw_kind(mechanism) {
        let link = raw::RawLink::open(memory, eventfd, mode, metric, size, end)?;
        return Ok(AnyLink::Raw(link));
    }
    Ok(match mechanism {
        Mechanism::Raw
        | Mechanism::RawSysv
        | Mechanism::RawFileTmpfs
        | Mechanism::RawFileDisk
        | Mechanism::Eventfd => unreachable!("the raw rings are opened above"),
        Mechanism::SysvMq => AnyLink::SysvMq(sysv::SysvMqLink::open(mode, size, end)?),
        Mechanism::PthreadCond | Mechanism::SemPosix | Mechanism::SemSysv | Mechanism::MqTurns => {
            AnyLink::Sync(sync::SyncLink::open(
                turns(mechanism),
                mode,
                metric,
                size,
                end,
            )?)
        }
        Mechanism::RingportSpsc => AnyLink::Spsc(rings::SpscLink::open(mode, size, end)?),
        Mechanism::RingportMpmc => AnyLink::Mpmc(rings::MpmcLink::open(mode, size, end)?),
        Mechanism::Pipe | Mechanism::UnixStream | Mechanism::UnixSeqpacket | Mechanism::Tcp => {
            AnyLink::Fd(kernel::FdLink::open(mechanism, mode, size, end)?)
        }
        Mechanism::Mq => AnyLink::Mq(kernel::MqLink::open(mode, size, end)?),
        #[cfg(feature = "iceoryx2")]
        Mechanism::Iceoryx2 => AnyLink::Iox(iox::IoxLink::open(mode, size, end)?),
        #[cfg(not(feature = "iceoryx2"))]
        Mechanism::Iceoryx2 => return Err(NOT_BUILT.into()),
    })
}

/// Any link, so that the measuring loops are compiled once per mechanism (no dynamic call on
/// the path being timed).
// One per sample, made once: its size does not matter, and boxing the large variants would put
// a pointer between the timed loop and its link.
#[allow(clippy::large_enum_variant)]
pub enum AnyLink {
    Raw(raw::RawLink),
    Spsc(rings::SpscLink),
    Mpmc(rings::MpmcLink),
    Fd(kernel::FdLink),
    Mq(kernel::MqLink),
    SysvMq(sysv::SysvMqLink),
    Sync(sync::SyncLink),
    #[cfg(feature = "iceoryx2")]
    Iox(iox::IoxLink),
}

impl AnyLink {
    /// Removes the names the peer opened its end by, once it has: from then on nothing of the
    /// sample is left in /dev/shm or /dev/mqueue, however the run ends.
    pub fn forget_names(&mut self) {
        match self {
            AnyLink::Mpmc(link) => link.forget_names(),
            AnyLink::Mq(link) => link.forget_names(),
            AnyLink::Raw(link) => link.forget_names(),
            AnyLink::Sync(link) => link.forget_names(),
            _ => {}
        }
    }
}

/// Runs `$body` with `$link` bound to the concrete link inside `$any`.
macro_rules! with_link {
    ($any:expr, $link:ident => $body:expr) => {
        match $any {
            $crate::bench::links::AnyLink::Raw($link) => $body,
            $crate::bench::links::AnyLink::Spsc($link) => $body,
            $crate::bench::links::AnyLink::Mpmc($link) => $body,
            $crate::bench::links::AnyLink::Fd($link) => $body,
            $crate::bench::links::AnyLink::Mq($link) => $body,
            $crate::bench::links::AnyLink::SysvMq($link) => $body,
            $crate::bench::links::AnyLink::Sync($link) => $body,
            #[cfg(feature = "iceoryx2")]
            $crate::bench::links::AnyLink::Iox($link) => $body,
        }
    };
}
pub(crate) use with_link;
