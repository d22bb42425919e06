//! The target's side: the cases ring's consumer and the results ring's producer, on the
//! descriptors the driver passed down.

use std::os::fd::AsFd;
use std::sync::OnceLock;

use crate::error::{Error, Result, Role};
use crate::os::child::{adopt_inherited, serve_forks};
use crate::os::shm::SharedBytes;
use crate::spsc::{Consumer, Producer, ReadGrant, SpscOptions};

use super::coverage::CoverageMap;
use super::wire::{self, TargetEnv, HELLO, ID_LEN};
use super::{FORK_SERVER_ENV, TARGET_ENV};

/// Set once this process is a target forked by [`fork_server`] (or was not asked to be one).
static FORK_SERVED: OnceLock<()> = OnceLock::new();

/// Makes this process a fork server if its driver asked for one
/// ([`HarnessOptions::fork_server`](super::HarnessOptions::fork_server)): this call then
/// returns only in a forked child, each a fresh copy of the state this process had built by
/// now, which goes on to [`Target::from_env`]; the server itself waits for the driver's next
/// request and exits when the driver goes. Without the request it returns at once, and the
/// process is the target itself.
///
/// Call it once the expensive set-up is done (loading, parsing, warming caches) and before any
/// thread is started: every target starts from that state, as AFL++'s forkserver does, and a
/// crash costs a fork instead of a new process.
///
/// # Errors
/// [`Error::InvalidConfig`] if the process has more than one thread (a fork would copy one
/// thread alone, with the others' locks held for ever) or the request is malformed;
/// [`Error::Os`] if fork fails.
pub fn fork_server() -> Result<()> {
    let Ok(value) = std::env::var(FORK_SERVER_ENV) else {
        let _ = FORK_SERVED.set(());
        return Ok(());
    };
    let socket = value.trim().parse().map_err(|_| {
        Error::InvalidConfig("RINGPORT_HARNESS_FORK_SERVER must be a descriptor number")
    })?;
    if !single_threaded() {
        return Err(Error::InvalidConfig(
            "fork_server() in a process with more than one thread: call it before starting any",
        ));
    }
    // SAFETY: the process has one thread (checked just above; nothing in this call starts one).
    unsafe { serve_forks(socket) }?;
    // In the forked child.
    let _ = FORK_SERVED.set(());
    Ok(())
}

/// Whether this process has one thread (from /proc; false when that cannot be read).
fn single_threaded() -> bool {
    std::fs::read_dir("/proc/self/task").is_ok_and(|tasks| tasks.count() == 1)
}

/// A target's end of a harness: the cases it is sent, one at a time, in place.
///
/// A persistent target loops over [`next_case`](Self::next_case) (or hands a closure to
/// [`run`](Self::run)) and answers each case with [`Case::finish`]. A case it is running when it
/// crashes is the one the driver blames.
pub struct Target {
    cases: Consumer,
    results: Producer,
    coverage: Option<CoverageMap>,
}

impl Target {
    /// The target's end, on the descriptors named in [`TARGET_ENV`], which a driver sets.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if [`TARGET_ENV`] is unset or malformed (this process was not
    /// started by a harness), or if the driver asked for a fork server and [`fork_server`] was
    /// not called; [`Error::Protocol`] if its descriptors are not open, or were taken already
    /// (`from_env` is called once a process); errors of attaching to the rings and the map
    /// ([`Error::Unsealed`], [`Error::RoleTaken`], ...).
    pub fn from_env() -> Result<Target> {
        let value = std::env::var(TARGET_ENV).map_err(|_| {
            Error::InvalidConfig("RINGPORT_HARNESS is not set: start this target from a harness")
        })?;
        if std::env::var_os(FORK_SERVER_ENV).is_some() && FORK_SERVED.get().is_none() {
            return Err(Error::InvalidConfig(
                "the driver runs this target as a fork server: call \
                 ringport::harness::fork_server() before Target::from_env()",
            ));
        }
        let env = TargetEnv::decode(&value)?;
        let (cases, results) = (adopt_inherited(env.cases)?, adopt_inherited(env.results)?);
        let coverage = match env.coverage {
            Some((fd, len)) => {
                let fd = adopt_inherited(fd)?;
                Some(CoverageMap::new(SharedBytes::from_fd(fd.as_fd(), len)?))
            }
            None => None,
        };
        // Not prefaulted: the driver made the rings and faulted their pages in, so the memory is
        // there (no SIGBUS can come of a full /dev/shm), and a target touches only the part of a
        // large ring its cases use before it dies: mapping all of it each restart cost
        // milliseconds (docs/PERFORMANCE.md, "The fuzzing harness").
        let options = SpscOptions::new().spin(env.spin).prefault(false);
        let mut target = Target {
            cases: options.open_consumer_fd(&cases)?,
            results: options.open_producer_fd(&results)?,
            coverage,
        };
        target.results.send(&HELLO.to_le_bytes())?;
        Ok(target)
    }

    /// The coverage map, if the driver made one
    /// ([`HarnessOptions::coverage`](super::HarnessOptions::coverage)): a handle to keep, for
    /// the code that runs the cases.
    #[must_use]
    pub fn coverage(&self) -> Option<CoverageMap> {
        self.coverage.clone()
    }

    /// The next case, read in place: waits for one.
    ///
    /// # Errors
    /// [`Error::PeerGone`] once the driver has gone (a target then ends); [`Error::Protocol`] if
    /// a case frame is malformed; the ring's errors ([`Error::Corrupted`]).
    pub fn next_case(&mut self) -> Result<Case<'_>> {
        let frame = self.cases.recv()?;
        let (id, _) = wire::decode(&frame)?;
        Ok(Case {
            frame,
            id,
            results: &mut self.results,
        })
    }

    /// Runs `test` on every case until the driver goes, and answers each case with what it
    /// returns (as `LLVMFuzzerTestOneInput`, with a result).
    ///
    /// # Errors
    /// As [`next_case`](Self::next_case) and [`Case::finish`], except that the driver's going
    /// ends the loop with `Ok`.
    pub fn run<R: AsRef<[u8]>>(mut self, mut test: impl FnMut(&[u8]) -> R) -> Result<()> {
        loop {
            let case = match self.next_case() {
                Ok(case) => case,
                Err(Error::PeerGone(Role::Producer)) => return Ok(()),
                Err(e) => return Err(e),
            };
            let result = test(case.data());
            case.finish(result.as_ref())?;
        }
    }
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target").finish_non_exhaustive()
    }
}

/// A case being run: its bytes, in the ring, until it is finished.
#[must_use = "a case that is dropped gets no result, and the driver waits for one until its timeout"]
pub struct Case<'a> {
    frame: ReadGrant<'a>,
    id: u64,
    results: &'a mut Producer,
}

impl Case<'_> {
    /// The case's number, from 0, as the driver's verdicts name it.
    #[must_use]
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The case's bytes.
    #[must_use]
    pub fn data(&self) -> &[u8] {
        &self.frame[ID_LEN..]
    }

    /// Answers the case with `result` (empty for none), then frees it. The answer goes first: a
    /// target that dies after it is not blamed for this case.
    ///
    /// # Errors
    /// [`Error::InvalidLength`] if `result` is longer than the driver takes
    /// (`HarnessOptions::max_result`); [`Error::PeerGone`] if the driver has gone.
    pub fn finish(self, result: &[u8]) -> Result<()> {
        let mut grant = self.results.reserve(ID_LEN + result.len())?;
        wire::encode(&mut grant, self.id, result);
        grant.commit();
        drop(self.frame);
        Ok(())
    }
}

impl std::fmt::Debug for Case<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Case")
            .field("id", &self.id)
            .field("len", &self.data().len())
            .finish()
    }
}
