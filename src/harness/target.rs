//! The target's side: the cases ring's consumer and the results ring's producer, on the
//! descriptors the driver passed down.

use crate::error::{Error, Result, Role};
use crate::os::child::adopt_inherited;
use crate::spsc::{Consumer, Producer, ReadGrant, SpscOptions};

use super::wire::{self, HELLO, ID_LEN};
use super::TARGET_ENV;

/// A target's end of a harness: the cases it is sent, one at a time, in place.
///
/// A persistent target loops over [`next_case`](Self::next_case) (or hands a closure to
/// [`run`](Self::run)) and answers each case with [`Case::finish`]. A case it is running when it
/// crashes is the one the driver blames.
pub struct Target {
    cases: Consumer,
    results: Producer,
}

impl Target {
    /// The target's end, on the descriptors named in [`TARGET_ENV`], which a driver sets.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if [`TARGET_ENV`] is unset or malformed (this process was not
    /// started by a harness); [`Error::Protocol`] if its descriptors are not open, or were
    /// taken already (`from_env` is called once a process); errors of attaching to the rings
    /// ([`Error::Unsealed`], [`Error::RoleTaken`], ...).
    pub fn from_env() -> Result<Target> {
        const MALFORMED: Error =
            Error::InvalidConfig("RINGPORT_HARNESS must be two descriptors, CASES,RESULTS");
        let value = std::env::var(TARGET_ENV).map_err(|_| {
            Error::InvalidConfig("RINGPORT_HARNESS is not set: start this target from a harness")
        })?;
        let fds: Vec<i32> = value
            .split(',')
            .map(|fd| fd.trim().parse())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| MALFORMED)?;
        let [cases, results] = fds[..] else {
            return Err(MALFORMED);
        };
        let (cases, results) = (adopt_inherited(cases)?, adopt_inherited(results)?);
        let options = SpscOptions::new();
        let mut target = Target {
            cases: options.open_consumer_fd(&cases)?,
            results: options.open_producer_fd(&results)?,
        };
        target.results.send(&HELLO.to_le_bytes())?;
        Ok(target)
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
