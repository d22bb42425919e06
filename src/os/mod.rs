//! The one boundary to the operating system, with a model beside it.
//!
//! Everything ringport asks of the kernel goes through here: the futex, `membarrier`, the clock,
//! process identity and liveness (the [`Kernel`] trait); shared-memory segments and the memory
//! accessors that turn ring memory into references; Unix sockets. One API, two implementations,
//! as tokio's `loom/{std,mocked}` and iceoryx2's platform layer have it:
//!
//! - `linux`: the system calls, and the ring memory as raw pointers into the heap or a mapping;
//! - `model`, under `--cfg loom`: loom's atomics for the frame words, a loom cell per 8 payload
//!   bytes for its race detector, a futex that can only wake a thread that is really waiting, and
//!   a clock under which every wait ends at once. It has no sockets and no named segments: those
//!   calls fail with [`Error::Unsupported`](crate::error::Error::Unsupported).
//!
//! Above this module nothing mentions loom. The algorithms (the wait protocol, roles, the MPMC
//! recovery) take a [`Kernel`] as a value, so that their unit tests run against a fake
//! (`fake`, tests only) that counts system calls and moves time by hand.

use std::fmt::Debug;
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use crate::sync::AtomicU32;

pub(crate) mod child;
mod copy;
#[cfg(test)]
pub(crate) mod fake;
#[cfg(not(loom))]
mod linux;
mod location;
#[cfg(loom)]
mod model;

pub(crate) use copy::copy_frame;
#[cfg(not(loom))]
pub(crate) use linux::{inventory, seqpacket, shm, DataArea, Host, Memory, RingMemory, HOST};
pub use location::Location;
#[cfg(loom)]
pub(crate) use model::{inventory, seqpacket, shm, DataArea, Host, Memory, RingMemory, HOST};

#[cfg(all(loom, feature = "testing"))]
pub(crate) use model::declare_dead;

/// Declares a process dead, as if it had been killed: only the model can (for its tests).
///
/// # Errors
/// [`Error::Unsupported`](crate::error::Error::Unsupported): a real process must be killed.
#[cfg(all(not(loom), feature = "testing"))]
pub(crate) fn declare_dead(_who: ProcessIdentity) -> crate::error::Result<()> {
    Err(crate::error::Error::Unsupported(
        "only the loom model can declare a live process dead: kill a real one",
    ))
}

/// Removes a named ring's segment: its POSIX name (`shm_unlink`), its System V segment
/// (`IPC_RMID`, only a ringport ring's), or its file. Mappings that exist stay valid until
/// unmapped; a segment left by a process that crashed is removed this way. A `&str` names a
/// POSIX segment.
///
/// # Errors
/// [`Error::InvalidName`](crate::error::Error::InvalidName), [`Error::NotFound`](crate::error::Error::NotFound)
/// if there is none, [`Error::KeyInUse`](crate::error::Error::KeyInUse) for a System V segment
/// that is not a ringport ring, or [`Error::Os`](crate::error::Error::Os).
pub fn remove_segment(location: impl Into<Location>) -> crate::error::Result<()> {
    shm::remove_segment(&location.into())
}

/// A System V key from a path and a project id (`ftok`).
pub(crate) fn sysv_key(path: &std::path::Path, project: u8) -> crate::error::Result<i32> {
    shm::sysv_key(path, project)
}

/// What the algorithms ask of the operating system. Implemented by the Linux layer, by the loom
/// model and, in unit tests, by a fake; every implementation is a small `Copy` value (the real
/// ones are zero-sized), passed to the algorithms and kept by the objects that need it.
pub(crate) trait Kernel: Copy + Debug {
    /// What a liveness check keeps from one check to the next (a pidfd, on Linux).
    type Check: Default + Debug + Send;

    /// A registration for a notice (see [`watch_process`](Self::watch_process)); dropping it
    /// cancels the notice.
    type Watch: Debug + Send;

    /// Publishes in a row that find no sleeper before an adaptive notifier stops fencing (see
    /// `wait::Notifier`): a fence costs a notifier some nanoseconds a publish, the membarrier it
    /// spares a sleeper some microseconds. The model, whose runs are a few publishes long, makes
    /// it one, so that its runs switch between the two forms.
    const QUIET_PUBLISHES: u32 = 64;

    /// Sleeps while `*word == expected`, for at most `timeout` (None: until woken): `FUTEX_WAIT` on a shared word,
    /// never `FUTEX_PRIVATE_FLAG`, so that processes which map the word at different addresses
    /// meet on it. Returns when woken, when the word no longer holds `expected`, on a signal, on
    /// timeout or spuriously: the caller always re-checks its condition.
    ///
    /// `after_barrier` says that the sleeper's half of the wait handshake rests on a
    /// [`global_barrier`](Self::global_barrier) it just took; an implementation that cannot run
    /// one (the loom model) must then return at once, as a spurious wake-up.
    fn futex_wait(
        self,
        word: &AtomicU32,
        expected: u32,
        timeout: Option<Duration>,
        after_barrier: bool,
    );

    /// Wakes every thread, of any process, sleeping on `word` (`FUTEX_WAKE`).
    fn futex_wake_all(self, word: &AtomicU32);

    /// Whether this process can use [`global_barrier`](Self::global_barrier) (registering for
    /// it once, on Linux `MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED`).
    fn barrier_available(self) -> bool;

    /// A full memory barrier on every running thread of every process registered for it
    /// (`membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)`): the heavy half of an asymmetric fence.
    /// Called only after [`barrier_available`](Self::barrier_available) said yes. Should the
    /// kernel refuse it later, the implementation must keep every later futex sleep short, since
    /// the handshake has lost its guarantee.
    fn global_barrier(self);

    /// The monotonic clock.
    fn now(self) -> Instant;

    /// This process, as another process can tell it.
    fn current_process(self) -> ProcessIdentity;

    /// Whether the process with this identity still lives; `check` is what the last check of the
    /// same caller kept.
    fn liveness(self, check: &mut Self::Check, who: ProcessIdentity) -> Liveness;

    /// Has `notice` run once, on another thread of this process, as soon as the process `who`
    /// dies (on Linux: a pidfd in an epoll set that a watcher thread waits on, so that no one
    /// polls). The notice must be quick and must not block: it marks and rings.
    fn watch_process(self, who: ProcessIdentity, notice: Notice) -> Watched<Self::Watch>;

    /// Has `notice` run once, as [`watch_process`](Self::watch_process)'s, as soon as the peer
    /// of the connected socket `fd` hangs up (closes, shuts its sending side, or dies).
    fn watch_hangup(self, fd: BorrowedFd<'_>, notice: Notice) -> Watched<Self::Watch>;

    /// Whether the process `pid` (in our pid namespace) is certainly dead: no such process, or
    /// a zombie. A recycled pid reads as alive: every doubt answers "alive", since a false
    /// "dead" would corrupt a live process's work.
    fn pid_is_dead(self, pid: u32) -> bool;
}

/// What a watch runs when what it watches happens: on another thread, once.
pub(crate) type Notice = std::sync::Arc<dyn Fn() + Send + Sync>;

/// What asking for a watch gave.
#[derive(Debug)]
pub(crate) enum Watched<W> {
    /// The notice will run; keep the watch while it matters.
    Watching(W),
    /// It has happened already (the process is dead): the notice will not run.
    Already,
    /// This kernel cannot watch it (another pid namespace, no pidfds, the model): look at it
    /// now and then instead.
    Unwatchable,
}

/// Who a process is, as far as another process can tell: a pid alone is not an identity, since
/// pids are recycled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcessIdentity {
    pub pid: u32,
    /// Start time in clock ticks since boot; 0 when unknown.
    pub start_time: u64,
    /// Inode of the pid namespace; 0 when unknown. Pids mean something only inside it.
    pub pid_ns: u64,
}

/// A system call's failure, as the error `op` ran into.
pub(crate) fn os_error(op: &'static str, source: nix::errno::Errno) -> crate::error::Error {
    crate::error::Error::Os { op, source }
}

/// The same, from the standard library's form of it.
pub(crate) fn io_error(op: &'static str, e: &std::io::Error) -> crate::error::Error {
    os_error(
        op,
        nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    )
}

/// A segment file's metadata, as `os::inventory` reads it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FileFacts {
    pub len: u64,
    pub uid: u32,
    pub mode: u32,
    pub modified: std::time::SystemTime,
}

/// What a liveness check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Liveness {
    Alive,
    Dead,
    /// The process is in another pid namespace: its pid means nothing here.
    Unknown,
}

/// The peer's process credentials, as the kernel recorded them when a channel's connection was
/// made (`SO_PEERCRED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credentials {
    /// The peer's process id (in our pid namespace; 0 if it is not visible from it).
    pub pid: i32,
    /// The peer's effective user id.
    pub uid: u32,
    /// The peer's effective group id.
    pub gid: u32,
}
