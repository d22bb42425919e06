//! The driver's side: starts the target, sends cases, turns results and deaths into verdicts,
//! restarts the target.

use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::frame::frame_size;
use crate::os::child::ChildProcess;
use crate::spsc::{Consumer, Producer, SpscOptions};

use super::wire::{self, ID_LEN};
use super::TARGET_ENV;

/// How a harness runs its target: the largest case and result, how many cases may be in flight,
/// and how long a case and a start may take.
#[derive(Debug, Clone)]
pub struct HarnessOptions {
    max_case: usize,
    max_result: usize,
    in_flight: usize,
    case_timeout: Duration,
    start_timeout: Duration,
}

impl Default for HarnessOptions {
    fn default() -> Self {
        HarnessOptions {
            max_case: 1 << 20,
            max_result: 64 << 10,
            in_flight: 1,
            case_timeout: Duration::from_secs(1),
            start_timeout: Duration::from_secs(10),
        }
    }
}

/// How long a target that its rings say is gone may take to finish exiting before the driver
/// kills it.
const EXIT_GRACE: Duration = Duration::from_millis(500);

/// Consecutive target starts that die before the target attaches, after which the driver gives
/// up on the command.
const FAILED_STARTS: u32 = 3;

impl HarnessOptions {
    /// The defaults: cases up to 1 MiB, results up to 64 KiB, one case in flight, 1 s a case,
    /// 10 s to start.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The largest case in bytes.
    #[must_use]
    pub fn max_case(mut self, bytes: usize) -> Self {
        self.max_case = bytes;
        self
    }

    /// The largest result a target may send back, in bytes (0: none).
    #[must_use]
    pub fn max_result(mut self, bytes: usize) -> Self {
        self.max_result = bytes;
        self
    }

    /// How many cases may be sent before the verdict of the first is taken (at least 1).
    #[must_use]
    pub fn in_flight(mut self, cases: usize) -> Self {
        self.in_flight = cases;
        self
    }

    /// How long a case may run before the driver kills the target and calls it hung, counted
    /// from when the case before it was answered (or the target started).
    #[must_use]
    pub fn case_timeout(mut self, timeout: Duration) -> Self {
        self.case_timeout = timeout;
        self
    }

    /// How long a new target may take to attach to its rings.
    #[must_use]
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// Starts `command` as the target, with the two rings' descriptors inherited and named in
    /// its environment ([`TARGET_ENV`]), and waits for it to attach.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for sizes the rings cannot hold or no case in flight;
    /// [`Error::Os`] if the command cannot be started; [`Error::Protocol`] if it dies before it
    /// attaches, three times running; [`Error::Timeout`] if it does not attach in the start
    /// timeout.
    pub fn spawn(&self, mut command: Command) -> Result<Driver> {
        if self.in_flight == 0 {
            return Err(Error::InvalidConfig(
                "a harness needs at least one case in flight",
            ));
        }
        let ring = |largest: usize| -> Result<SpscOptions> {
            let frame = frame_size(ID_LEN + largest) + 8;
            // Room for every case in flight, the padding of a wrap, and the rule that a frame
            // is at most half the ring.
            let capacity = frame
                .checked_mul(2 * (self.in_flight + 1))
                .and_then(usize::checked_next_power_of_two)
                .ok_or(Error::InvalidConfig("harness cases or results too large"))?;
            Ok(SpscOptions::new()
                .capacity(capacity.max(4096))
                .max_frame(ID_LEN + largest))
        };
        let (cases, cases_fd) = ring(self.max_case)?.create_producer_memfd()?;
        let (results, results_fd) = ring(self.max_result)?.create_consumer_memfd()?;
        command.env(
            TARGET_ENV,
            format!("{},{}", cases_fd.as_raw_fd(), results_fd.as_raw_fd()),
        );
        let mut driver = Driver {
            options: self.clone(),
            child: None,
            command,
            cases,
            cases_fd,
            results,
            results_fd,
            ready: VecDeque::new(),
            unjudged: 0,
            next_id: 0,
            oldest_since: Instant::now(),
            stats: HarnessStats::default(),
            barren_deaths: 0,
        };
        driver.start_target()?;
        Ok(driver)
    }
}

/// What became of a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The target answered it, with these bytes.
    Ok {
        /// The case's id.
        id: u64,
        /// What the target sent back (empty for nothing).
        result: Vec<u8>,
    },
    /// The target died running it.
    Crashed {
        /// The case's id.
        id: u64,
        /// How the target ended: the signal, or the exit code.
        status: ExitStatus,
    },
    /// The target ran it longer than the case timeout, and the driver killed it.
    TimedOut {
        /// The case's id.
        id: u64,
    },
}

impl Verdict {
    /// The id of the case this is the verdict of.
    #[must_use]
    pub fn id(&self) -> u64 {
        match self {
            Verdict::Ok { id, .. } | Verdict::Crashed { id, .. } | Verdict::TimedOut { id } => *id,
        }
    }
}

/// What a driver has seen so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HarnessStats {
    /// Cases sent.
    pub cases: u64,
    /// Verdicts [`Verdict::Crashed`].
    pub crashes: u64,
    /// Verdicts [`Verdict::TimedOut`].
    pub timeouts: u64,
    /// Deaths of the target outside any case (starting, or between two cases): no case is
    /// blamed, and the cases after are run by the next target.
    pub unattributed: u64,
    /// Targets started after the first.
    pub restarts: u64,
}

/// The driver's end of a harness: sends cases to a target process and gives one verdict per
/// case, in order, restarting the target whenever it dies.
pub struct Driver {
    options: HarnessOptions,
    child: Option<ChildProcess>,
    command: Command,
    cases: Producer,
    cases_fd: OwnedFd,
    results: Consumer,
    results_fd: OwnedFd,
    /// Verdicts judged and not yet taken.
    ready: VecDeque<Verdict>,
    /// The id of the oldest case sent and not yet judged: the cases from it to `next_id` are
    /// pending (ids are given in order and judged in order).
    unjudged: u64,
    next_id: u64,
    /// Since when the oldest pending case may have been running: its case timeout counts from
    /// here.
    oldest_since: Instant,
    stats: HarnessStats,
    /// Deaths in a row that judged no case while cases were waiting.
    barren_deaths: u32,
}

impl Driver {
    /// Sends `case` to the target; returns its id. Its verdict comes from
    /// [`next_verdict`](Self::next_verdict), in order.
    ///
    /// # Errors
    /// [`Error::InvalidLength`] if the case is longer than the largest case;
    /// [`Error::Full`] if the cases in flight are as many as allowed, or the target stopped
    /// taking cases (take a verdict first: that judges, and restarts, a dead or hung target).
    pub fn submit(&mut self, case: &[u8]) -> Result<u64> {
        if case.len() > self.options.max_case {
            return Err(Error::InvalidLength {
                len: case.len(),
                max: self.options.max_case,
            });
        }
        if self.in_flight() >= self.options.in_flight {
            return Err(Error::Full);
        }
        let id = self.next_id;
        // The ring holds every case in flight; a target that stopped reading is timed out by
        // `next_verdict`, so the wait for room is bounded by the case timeout.
        let mut grant = match self
            .cases
            .reserve_timeout(ID_LEN + case.len(), self.options.case_timeout)
        {
            Ok(grant) => grant,
            Err(Error::PeerGone(_) | Error::Timeout) => return Err(Error::Full),
            Err(e) => return Err(e),
        };
        wire::encode(&mut grant, id, case);
        grant.commit();
        if self.pending() == 0 {
            self.oldest_since = Instant::now();
        }
        self.next_id += 1;
        self.stats.cases += 1;
        Ok(id)
    }

    /// The verdict of the oldest case sent and not yet judged: waits for its result, its
    /// crash or its timeout. A crash or a timeout restarts the target first.
    ///
    /// # Errors
    /// [`Error::Empty`] if no case is in flight; [`Error::Protocol`] if the target answered a
    /// case it was not running (the target is killed; a result over the largest is refused by
    /// the results ring itself, whose frames are at most that long);
    /// the errors of restarting it (as [`HarnessOptions::spawn`]'s).
    pub fn next_verdict(&mut self) -> Result<Verdict> {
        loop {
            if let Some(verdict) = self.ready.pop_front() {
                return Ok(verdict);
            }
            if self.pending() == 0 {
                return Err(Error::Empty);
            }
            let deadline = self.oldest_since + self.options.case_timeout;
            let wait = deadline.saturating_duration_since(Instant::now());
            match self.results.recv_with_timeout(owned_result, wait) {
                Ok(Ok((id, result))) => self.accept(id, result)?,
                Ok(Err(e)) => {
                    self.kill_target();
                    return Err(e);
                }
                Err(Error::Timeout) => {
                    self.kill_target();
                    self.after_death(true)?;
                }
                Err(Error::PeerGone(_)) => self.after_death(false)?,
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends `case` and waits for its verdict.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if other cases are in flight (take their verdicts first); as
    /// [`submit`](Self::submit) and [`next_verdict`](Self::next_verdict).
    pub fn run(&mut self, case: &[u8]) -> Result<Verdict> {
        if self.in_flight() > 0 {
            return Err(Error::InvalidConfig(
                "run() with cases in flight: take their verdicts first",
            ));
        }
        self.submit(case)?;
        self.next_verdict()
    }

    /// Cases sent whose verdicts have not been taken.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.pending() + self.ready.len()
    }

    /// Cases sent and not yet judged.
    fn pending(&self) -> usize {
        (self.next_id - self.unjudged) as usize
    }

    /// What the driver has seen so far.
    #[must_use]
    pub fn stats(&self) -> HarnessStats {
        self.stats
    }

    /// The target's pid, while one runs.
    #[must_use]
    pub fn target_pid(&self) -> Option<u32> {
        self.child.as_ref().map(ChildProcess::id)
    }

    /// A result for the oldest pending case.
    fn accept(&mut self, id: u64, result: Vec<u8>) -> Result<()> {
        if self.pending() == 0 || id != self.unjudged {
            self.kill_target();
            return Err(Error::Protocol(
                "the target answered a case it was not running",
            ));
        }
        self.unjudged += 1;
        self.oldest_since = Instant::now();
        self.barren_deaths = 0;
        self.ready.push_back(Verdict::Ok { id, result });
        Ok(())
    }

    fn kill_target(&mut self) {
        if let Some(child) = &mut self.child {
            // It may be gone already; either way `after_death` reaps it.
            child.kill();
        }
    }

    /// The target died (or was killed: `timed_out`): takes the results it sent, blames the
    /// case it had in hand if that case has none, and starts another target.
    fn after_death(&mut self, timed_out: bool) -> Result<()> {
        // The rings may say it is gone a moment before its process has finished exiting (its
        // status is then still to come): give it that moment. A target that let go of its rings
        // and goes on running is of no more use, and is killed.
        let status = match self.child.take() {
            Some(mut child) => {
                child.exits_within(EXIT_GRACE);
                child.kill_and_reap()?
            }
            None => return self.start_target(),
        };
        // What it answered before it died.
        while let Ok(result) = self.results.try_recv_with(owned_result) {
            let (id, bytes) = result?;
            self.accept(id, bytes)?;
        }
        // The case it had received last, from the cases ring's ledger: taking its consumer role
        // over (and letting it go at once) also moves the ring on past that case, so the next
        // target starts at the one after.
        let in_hand = {
            let taker = SpscOptions::new().open_consumer_fd(self.cases_fd.as_fd())?;
            taker
                .takeover()
                .and_then(|t| t.in_hand.as_ref())
                .and_then(|frame| wire::decode(&frame.bytes).ok().map(|(id, _)| id))
        };
        let judged_before = self.ready.len();
        match in_hand {
            Some(id) if self.pending() > 0 && id == self.unjudged => {
                self.unjudged += 1;
                self.ready.push_back(if timed_out {
                    self.stats.timeouts += 1;
                    Verdict::TimedOut { id }
                } else {
                    self.stats.crashes += 1;
                    Verdict::Crashed { id, status }
                });
            }
            _ => self.stats.unattributed += 1,
        }
        // Deaths that judge nothing while cases wait: a target that takes a case and drops it
        // unanswered (or dies before it takes one) would otherwise be restarted for ever.
        if self.ready.len() > judged_before || self.pending() == 0 {
            self.barren_deaths = 0;
        } else {
            self.barren_deaths += 1;
            if self.barren_deaths == FAILED_STARTS {
                return Err(Error::Protocol(
                    "the target died three times running without answering its next case \
                     or dying in it: it drops cases, or dies before it takes one",
                ));
            }
        }
        self.stats.restarts += 1;
        self.start_target()
    }

    /// Starts the target and waits for its hello, which it sends once it holds both rings (and
    /// which comes after anything the target before it sent, all taken by now).
    fn start_target(&mut self) -> Result<()> {
        let mut failed = 0;
        loop {
            let mut child = ChildProcess::spawn(
                &mut self.command,
                &[self.cases_fd.as_fd(), self.results_fd.as_fd()],
            )?;
            let deadline = Instant::now() + self.options.start_timeout;
            loop {
                match self
                    .results
                    .recv_with_timeout(owned_result, Duration::from_millis(2))
                {
                    Ok(Ok((wire::HELLO, bytes))) if bytes.is_empty() => {
                        self.child = Some(child);
                        self.oldest_since = Instant::now();
                        return Ok(());
                    }
                    Ok(_) => {
                        child.kill_and_reap()?;
                        return Err(Error::Protocol(
                            "a new target's first result was not its hello",
                        ));
                    }
                    // The target before it is gone and this one has not attached yet.
                    Err(Error::PeerGone(_)) => std::thread::sleep(Duration::from_micros(200)),
                    Err(Error::Timeout) => {}
                    Err(e) => {
                        child.kill_and_reap()?;
                        return Err(e);
                    }
                }
                if child.has_exited() {
                    break;
                }
                if Instant::now() >= deadline {
                    child.kill_and_reap()?;
                    return Err(Error::Timeout);
                }
            }
            // It died before it attached (reaped here, so that it leaves no zombie).
            child.kill_and_reap()?;
            self.stats.unattributed += 1;
            failed += 1;
            if failed == FAILED_STARTS {
                return Err(Error::Protocol(
                    "the target dies before it attaches to its rings (three starts running)",
                ));
            }
        }
    }
}

/// A result frame, decoded and copied out.
fn owned_result(frame: &[u8]) -> Result<(u64, Vec<u8>)> {
    wire::decode(frame).map(|(id, bytes)| (id, bytes.to_vec()))
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            let _ = child.kill_and_reap();
        }
    }
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("target", &self.target_pid())
            .field("in_flight", &self.in_flight())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}
