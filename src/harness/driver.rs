//! The driver's side: starts the target, sends cases, turns results and deaths into verdicts,
//! restarts the target.

use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::frame::frame_size;
use crate::os::child::{ChildProcess, ForkServer};
use crate::os::shm::SharedBytes;
use crate::spsc::{Consumer, Producer, SpscOptions};

use super::coverage::CoverageMap;
use super::wire::{self, TargetEnv, ID_LEN};
use super::{FORK_SERVER_ENV, TARGET_ENV};

/// How a harness runs its target: the largest case and result, how many cases may be in flight,
/// and how long a case and a start may take.
#[derive(Debug, Clone)]
pub struct HarnessOptions {
    max_case: usize,
    max_result: usize,
    in_flight: usize,
    case_timeout: Duration,
    start_timeout: Duration,
    spin: Duration,
    coverage: usize,
    fork_server: bool,
}

impl Default for HarnessOptions {
    fn default() -> Self {
        HarnessOptions {
            max_case: 1 << 20,
            max_result: 64 << 10,
            in_flight: 1,
            case_timeout: Duration::from_secs(1),
            start_timeout: Duration::from_secs(10),
            spin: Duration::from_micros(20),
            coverage: 0,
            fork_server: false,
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
    /// 10 s to start, waits that spin 20 us before they sleep, no coverage map, a new process
    /// for each target.
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

    /// How long the driver's and the target's waits spin before they sleep on the futex. While
    /// the other side answers within it, neither makes a system call; a wait that sleeps costs
    /// a wake-up (tens of microseconds) on both sides. Spinning for longer than a case takes keeps
    /// a core busy with nothing to do while the other side is idle.
    #[must_use]
    pub fn spin(mut self, spin: Duration) -> Self {
        self.spin = spin;
        self
    }

    /// A coverage map of `bytes` bytes shared with the target (0: none, the default;
    /// [`DEFAULT_COVERAGE_LEN`](super::DEFAULT_COVERAGE_LEN) is AFL++'s size), in a sealed memfd
    /// as the rings are: see [`Driver::coverage`] and [`Target::coverage`](super::Target::coverage).
    #[must_use]
    pub fn coverage(mut self, bytes: usize) -> Self {
        self.coverage = bytes;
        self
    }

    /// Run the command once, as a fork server ([`fork_server`](super::fork_server)), and take
    /// each target (the first, and each after a crash) as a fork of it: a fresh copy of the
    /// state it had built, for the cost of a fork instead of a new process.
    #[must_use]
    pub fn fork_server(mut self, fork_server: bool) -> Self {
        self.fork_server = fork_server;
        self
    }

    /// Starts `command` as the target, with the two rings' descriptors (and the coverage map's)
    /// inherited and named in its environment ([`TARGET_ENV`]), and waits for it to attach.
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
                .max_frame(ID_LEN + largest)
                .spin(self.spin))
        };
        let (cases, cases_fd) = ring(self.max_case)?.create_producer_memfd()?;
        let (results, results_fd) = ring(self.max_result)?.create_consumer_memfd()?;
        let (coverage, coverage_fd) = match self.coverage {
            0 => (None, None),
            len => {
                let (map, fd) = SharedBytes::create_memfd(len)?;
                (Some(CoverageMap::new(map)), Some(fd))
            }
        };
        let env = TargetEnv {
            cases: cases_fd.as_raw_fd(),
            results: results_fd.as_raw_fd(),
            spin: self.spin,
            coverage: coverage_fd
                .as_ref()
                .map(|fd| (fd.as_raw_fd(), self.coverage)),
        };
        command.env(TARGET_ENV, env.encode());
        let mut driver = Driver {
            options: self.clone(),
            target: None,
            server: None,
            command,
            cases,
            cases_fd,
            results,
            results_fd,
            coverage,
            coverage_fd,
            ready: VecDeque::new(),
            unjudged: 0,
            next_id: 0,
            oldest_since: Instant::now(),
            stats: HarnessStats::default(),
            barren_deaths: 0,
            launched: false,
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

/// A running target: a process of its own, or a fork server's child (which the server reaps).
#[derive(Debug)]
enum TargetProcess {
    Exec(ChildProcess),
    Forked(u32),
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
    /// Targets started after the first (processes, or forks of the fork server).
    pub restarts: u64,
    /// Fork servers started after the first (after one died).
    pub server_restarts: u64,
}

/// The driver's end of a harness: sends cases to a target process and gives one verdict per
/// case, in order, restarting the target whenever it dies.
pub struct Driver {
    options: HarnessOptions,
    /// The target process, while one runs; None after a death until the next is needed.
    target: Option<TargetProcess>,
    /// The fork server, in that mode, while it lives.
    server: Option<ForkServer>,
    command: Command,
    cases: Producer,
    cases_fd: OwnedFd,
    results: Consumer,
    results_fd: OwnedFd,
    coverage: Option<CoverageMap>,
    coverage_fd: Option<OwnedFd>,
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
    /// Whether a target has been started (the next is a restart).
    launched: bool,
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
        if self.target.is_none() {
            self.start_target()?;
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
    /// crash or its timeout. After a crash or a timeout the next target is started when a case
    /// needs it: the verdict does not wait for it.
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
            if self.target.is_none() {
                self.start_target()?;
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
        match self.target.as_ref()? {
            TargetProcess::Exec(child) => Some(child.id()),
            TargetProcess::Forked(pid) => Some(*pid),
        }
    }

    /// The coverage map, if one was asked for ([`HarnessOptions::coverage`]): take it after a
    /// verdict for that case's coverage ([`CoverageMap::take`]).
    #[must_use]
    pub fn coverage(&self) -> Option<&CoverageMap> {
        self.coverage.as_ref()
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
        // It may be gone already; either way `after_death` reaps it.
        match &mut self.target {
            Some(TargetProcess::Exec(child)) => child.kill(),
            Some(TargetProcess::Forked(_)) => {
                if let Some(server) = &mut self.server {
                    server.kill_target();
                }
            }
            None => {}
        }
    }

    /// Whether the target has exited (a fork server's child: whether the server said so).
    fn target_has_exited(&mut self) -> bool {
        match &mut self.target {
            Some(TargetProcess::Exec(child)) => child.has_exited(),
            Some(TargetProcess::Forked(_)) => match &mut self.server {
                Some(server) => !matches!(server.target_status(Instant::now()), Ok(None)),
                None => true,
            },
            None => true,
        }
    }

    /// Waits up to `grace` for the target to finish exiting, kills it if it has not, and
    /// returns how it ended. A fork server that dies takes its child with it (the child's
    /// parent-death signal is SIGKILL), which is what this then says; the server is started
    /// again with the next target.
    fn reap_target(&mut self, grace: Duration) -> Result<ExitStatus> {
        match self.target.take() {
            Some(TargetProcess::Exec(mut child)) => {
                child.exits_within(grace);
                child.kill_and_reap()
            }
            Some(TargetProcess::Forked(_)) => {
                let Some(server) = &mut self.server else {
                    return Ok(killed());
                };
                let status = match server.target_status(Instant::now() + grace) {
                    Ok(None) => {
                        server.kill_target();
                        server.target_status(Instant::now() + FORK_SERVER_ANSWER)
                    }
                    answer => answer,
                };
                if let Ok(Some(status)) = status {
                    return Ok(status);
                }
                // It died, or stopped answering: it is replaced.
                if let Some(server) = self.server.take() {
                    server.stop();
                }
                Ok(killed())
            }
            None => Ok(killed()),
        }
    }

    /// The target died (or was killed: `timed_out`): takes the results it sent, and blames the
    /// case it had in hand if that case has none. The next target is started when a case needs
    /// it.
    fn after_death(&mut self, timed_out: bool) -> Result<()> {
        if self.target.is_none() {
            return Ok(());
        }
        // The rings may say it is gone a moment before its process has finished exiting (its
        // status is then still to come): give it that moment. A target that let go of its rings
        // and goes on running is of no more use, and is killed.
        let status = self.reap_target(EXIT_GRACE)?;
        // What it answered before it died.
        while let Ok(result) = self.results.try_recv_with(owned_result) {
            let (id, bytes) = result?;
            self.accept(id, bytes)?;
        }
        // The case it had received last, from the cases ring's ledger: taking its consumer role
        // over (and letting it go at once) also moves the ring on past that case, so the next
        // target starts at the one after.
        let in_hand = {
            // Not prefaulted: the takeover reads the header and one frame, and faulting in the
            // whole mapping cost milliseconds a crash for a large ring.
            let taker = SpscOptions::new()
                .prefault(false)
                .open_consumer_fd(self.cases_fd.as_fd())?;
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
        Ok(())
    }

    /// Starts the target (a process, or a fork of the fork server) and waits for its hello,
    /// which it sends once it holds both rings (and which comes after anything the target
    /// before it sent, all taken by now).
    fn start_target(&mut self) -> Result<()> {
        let mut failed = 0;
        loop {
            let deadline = Instant::now() + self.options.start_timeout;
            match self.launch(deadline) {
                Ok(target) => self.target = Some(target),
                Err(Error::Protocol(_)) if self.options.fork_server => {
                    // The fork server died before it forked: it is started again, three times.
                    self.stats.unattributed += 1;
                    failed += 1;
                    if failed == FAILED_STARTS {
                        return Err(Error::Protocol(
                            "the fork server dies before it forks a target (three starts \
                             running): does the target call ringport::harness::fork_server()?",
                        ));
                    }
                    continue;
                }
                Err(e) => return Err(e),
            }
            if self.launched {
                self.stats.restarts += 1;
            }
            self.launched = true;
            loop {
                // Asked before the wait: a target that sent its hello and then died (in its
                // first case, already in the ring) did attach, and its hello is found below.
                let exited = self.target_has_exited();
                let wait = if exited {
                    Duration::ZERO
                } else {
                    Duration::from_millis(2)
                };
                match self.results.recv_with_timeout(owned_result, wait) {
                    Ok(Ok((wire::HELLO, bytes))) if bytes.is_empty() => {
                        self.oldest_since = Instant::now();
                        return Ok(());
                    }
                    Ok(_) => {
                        self.reap_target(Duration::ZERO)?;
                        return Err(Error::Protocol(
                            "a new target's first result was not its hello",
                        ));
                    }
                    // The target before it is gone and this one has not attached yet: sleep
                    // until its attach rings our bell (bounded, to look at its exit and the
                    // deadline). Not a spin: a new process runs on our core until it moves
                    // itself, and spinning here starved it.
                    Err(Error::PeerGone(_)) if !exited => {
                        let _ = self.results.wait_for_peer(Duration::from_millis(2));
                    }
                    Err(Error::PeerGone(_) | Error::Timeout) => {}
                    Err(e) => {
                        self.reap_target(Duration::ZERO)?;
                        return Err(e);
                    }
                }
                if exited {
                    break;
                }
                if Instant::now() >= deadline {
                    self.reap_target(Duration::ZERO)?;
                    return Err(Error::Timeout);
                }
            }
            // It died before it attached (reaped here, so that it leaves no zombie).
            self.reap_target(Duration::ZERO)?;
            self.stats.unattributed += 1;
            failed += 1;
            if failed == FAILED_STARTS {
                return Err(Error::Protocol(
                    "the target dies before it attaches to its rings (three starts running)",
                ));
            }
        }
    }

    /// Starts a target process: the command, or (in that mode) a fork of the fork server,
    /// which is started first if it is not running.
    fn launch(&mut self, deadline: Instant) -> Result<TargetProcess> {
        let mut fds = vec![self.cases_fd.as_fd(), self.results_fd.as_fd()];
        if let Some(fd) = &self.coverage_fd {
            fds.push(fd.as_fd());
        }
        if !self.options.fork_server {
            return ChildProcess::spawn(&mut self.command, &fds).map(TargetProcess::Exec);
        }
        if self.server.is_none() {
            if self.launched {
                self.stats.server_restarts += 1;
            }
            self.server = Some(ForkServer::spawn(&mut self.command, &fds, FORK_SERVER_ENV)?);
        }
        let server = self.server.as_mut().expect("started just above");
        match server.fork_target(deadline) {
            Ok(pid) => Ok(TargetProcess::Forked(pid)),
            Err(e) => {
                if let Some(server) = self.server.take() {
                    server.stop();
                }
                Err(e)
            }
        }
    }
}

/// How long a fork server may take to report a target it was told to kill.
const FORK_SERVER_ANSWER: Duration = Duration::from_secs(5);

/// The status of a process killed by SIGKILL.
fn killed() -> ExitStatus {
    std::os::unix::process::ExitStatusExt::from_raw(libc::SIGKILL)
}

/// A result frame, decoded and copied out.
fn owned_result(frame: &[u8]) -> Result<(u64, Vec<u8>)> {
    wire::decode(frame).map(|(id, bytes)| (id, bytes.to_vec()))
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(TargetProcess::Exec(child)) = self.target.take() {
            let _ = child.kill_and_reap();
        }
        if let Some(server) = self.server.take() {
            server.stop();
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
