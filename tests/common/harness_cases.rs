//! The harness tests' cases, their target and their checks, shared by `tests/harness.rs` (a
//! process for each target) and `tests/harness_fork.rs` (targets forked by a fork server).
//!
//! A case's first byte says what the target does with it; the target logs each case's id before
//! it runs it, so that the test can tell that no case was lost or run twice.

use std::collections::VecDeque;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use ringport::harness::{HarnessOptions, HarnessStats, Target, Verdict};
use ringport::Error;

/// What a case asks of the target, in its first byte (modulo the count).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Answer with the case's checksum.
    Answer,
    Abort,
    Segfault,
    KillSelf,
    /// `exit(3)`.
    Exit,
    /// Sleep until killed.
    Hang,
}

impl Action {
    pub const ALL: [Action; 6] = [
        Action::Answer,
        Action::Abort,
        Action::Segfault,
        Action::KillSelf,
        Action::Exit,
        Action::Hang,
    ];

    fn of(case: &[u8]) -> Action {
        Action::ALL[usize::from(case[0]) % Action::ALL.len()]
    }
}

/// A first byte outside the actions' range: kill the target's parent (a fork server), then wait
/// for the death that follows it.
pub const KILL_PARENT: u8 = 255;

pub fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// The target: becomes a fork server first if asked (`fork`), logs each case's id to the file
/// `log` before it runs it, then does what the case's first byte says. An answer is the case's
/// checksum, how many cases this process has answered, and the pid of the process that set the
/// target up (the fork server, in that mode).
pub fn run_target(log: &str, fork: bool) {
    let set_up_by = u64::from(std::process::id());
    if fork {
        ringport::harness::fork_server().unwrap();
    }
    let mut log = std::fs::OpenOptions::new().append(true).open(log).unwrap();
    let mut target = Target::from_env().unwrap();
    let mut answered = 0u64;
    loop {
        let case = match target.next_case() {
            Ok(case) => case,
            Err(Error::PeerGone(_)) => return,
            Err(e) => panic!("{e}"),
        };
        // One write a case, to a file opened for appending: it lands whole even if we die next.
        log.write_all(format!("{}\n", case.id()).as_bytes())
            .unwrap();
        let data = case.data();
        if data[0] == KILL_PARENT {
            // SAFETY: kill(2) of our parent; no memory is touched.
            unsafe { libc::kill(libc::getppid(), libc::SIGKILL) };
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        match Action::of(data) {
            Action::Answer => {
                answered += 1;
                let mut result = [0u8; 24];
                result[..8].copy_from_slice(&checksum(data).to_le_bytes());
                result[8..16].copy_from_slice(&answered.to_le_bytes());
                result[16..].copy_from_slice(&set_up_by.to_le_bytes());
                case.finish(&result).unwrap();
            }
            Action::Abort => std::process::abort(),
            // SAFETY: none: this is the crash the case asks for, a write through a null pointer
            // (volatile, so that it is not optimized away). Rust's SIGSEGV handler, finding no
            // guard page there, restores the default action, and the write faults again.
            Action::Segfault => unsafe {
                std::ptr::write_volatile(std::ptr::null_mut::<u8>(), 1);
            },
            // SAFETY: as above.
            Action::KillSelf => unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            },
            Action::Exit => std::process::exit(3),
            Action::Hang => loop {
                std::thread::sleep(Duration::from_secs(1));
            },
        }
    }
}

/// A log file for the target, removed when dropped.
pub struct Log(pub std::path::PathBuf);

impl Log {
    pub fn new(tag: &str) -> Log {
        let path =
            std::env::temp_dir().join(format!("ringport-harness-{tag}-{}.log", std::process::id()));
        std::fs::write(&path, b"").unwrap();
        Log(path)
    }

    pub fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }

    /// The ids the target started, in order.
    pub fn started(&self) -> Vec<u64> {
        std::fs::read_to_string(&self.0)
            .unwrap()
            .lines()
            .map(|l| l.parse().unwrap())
            .collect()
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// An answer's fields: how many cases the answering process had answered, and who set it up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    pub answered: u64,
    pub set_up_by: u64,
}

/// Checks a verdict against the action of the case it names; an answer's fields.
pub fn check(verdict: &Verdict, case: &[u8]) -> Option<Answer> {
    if case[0] == KILL_PARENT {
        let Verdict::Crashed { status, .. } = verdict else {
            panic!("verdict {verdict:?} for a case that kills the fork server");
        };
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        return None;
    }
    match (verdict, Action::of(case)) {
        (Verdict::Ok { result, .. }, Action::Answer) => {
            assert_eq!(result[..8], checksum(case).to_le_bytes());
            let word = |at: usize| u64::from_le_bytes(result[at..at + 8].try_into().unwrap());
            return Some(Answer {
                answered: word(8),
                set_up_by: word(16),
            });
        }
        (Verdict::Crashed { status, .. }, Action::Abort) => {
            assert_eq!(status.signal(), Some(libc::SIGABRT));
        }
        (Verdict::Crashed { status, .. }, Action::Segfault) => {
            assert_eq!(status.signal(), Some(libc::SIGSEGV));
        }
        (Verdict::Crashed { status, .. }, Action::KillSelf) => {
            assert_eq!(status.signal(), Some(libc::SIGKILL));
        }
        (Verdict::Crashed { status, .. }, Action::Exit) => assert_eq!(status.code(), Some(3)),
        (Verdict::TimedOut { .. }, Action::Hang) => {}
        (verdict, action) => panic!("verdict {verdict:?} for a case that asks {action:?}"),
    }
    None
}

/// A case of `len` bytes that asks for `action`.
pub fn case(rng: &mut SmallRng, action: Action, len: usize) -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..len.max(1)).map(|_| rng.random()).collect();
    let at = Action::ALL.iter().position(|a| *a == action).unwrap();
    bytes[0] = (at + Action::ALL.len() * usize::from(bytes[0] / 8)) as u8;
    bytes
}

/// What a run of random cases saw.
pub struct Run {
    pub stats: HarnessStats,
    pub crashes: u64,
    pub hangs: u64,
    /// Each answer's fields, in order, with the verdicts that were not answers as None.
    pub answers: Vec<Option<Answer>>,
}

/// Runs `n` random cases (one crash in about `crash_every`, one hang in about `hang_every`,
/// and a kill of the target's parent in about `kill_parent_every`, 0 for never) with the
/// options' cases in flight against `command` (the target, or a fork server of it), and checks
/// every verdict and the target's log.
pub fn random_cases(
    options: &HarnessOptions,
    command: Command,
    log: &Log,
    in_flight: usize,
    (n, crash_every, hang_every, kill_parent_every): (u64, u32, u32, u32),
    seed: u64,
) -> Run {
    let mut driver = options
        .clone()
        .max_case(512)
        .in_flight(in_flight)
        .case_timeout(Duration::from_millis(200))
        .spawn(command)
        .unwrap();
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut sent = VecDeque::new();
    let (mut judged, mut crashes, mut hangs) = (0u64, 0, 0);
    let mut answers = Vec::new();
    while judged < n {
        while (sent.len() as u64) < (n - judged).min(in_flight as u64) {
            let action = if rng.random_ratio(1, hang_every) {
                Action::Hang
            } else if rng.random_ratio(1, crash_every) {
                Action::ALL[rng.random_range(1..5)]
            } else {
                Action::Answer
            };
            let len = rng.random_range(1..=512);
            let mut bytes = case(&mut rng, action, len);
            if kill_parent_every > 0 && rng.random_ratio(1, kill_parent_every) {
                bytes[0] = KILL_PARENT;
            }
            let id = driver.submit(&bytes).unwrap();
            sent.push_back((id, bytes));
        }
        let verdict = driver.next_verdict().unwrap();
        let (id, bytes) = sent.pop_front().unwrap();
        assert_eq!(verdict.id(), id, "verdicts come in order");
        answers.push(check(&verdict, &bytes));
        match verdict {
            Verdict::Crashed { .. } => crashes += 1,
            Verdict::TimedOut { .. } => hangs += 1,
            Verdict::Ok { .. } => {}
        }
        judged += 1;
    }
    let stats = driver.stats();
    drop(driver);
    // Every case was started exactly once, in order.
    assert_eq!(
        log.started(),
        (0..n).collect::<Vec<_>>(),
        "each case run once, in order"
    );
    assert_eq!((stats.crashes, stats.timeouts), (crashes, hangs));
    assert_eq!(stats.unattributed, 0, "every death was running a case");
    assert_eq!(stats.restarts, crashes + hangs);
    eprintln!("{n} cases, {in_flight} in flight: {crashes} crashes, {hangs} hangs");
    Run {
        stats,
        crashes,
        hangs,
        answers,
    }
}
