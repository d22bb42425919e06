//! The fuzzing harness (`ringport::harness`) against a target that crashes in every way a target
//! can: abort, SIGSEGV, kill -9 of itself, exit, and hangs. Every verdict must name the case that
//! caused it, no case may be lost or run twice (the target logs each case it starts), and the
//! driver must never hang.

mod common;

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use ringport::harness::{HarnessOptions, Target, Verdict};
use ringport::Error;

/// What a case asks of the target, in its first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
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
    const ALL: [Action; 6] = [
        Action::Answer,
        Action::Abort,
        Action::Segfault,
        Action::KillSelf,
        Action::Exit,
        Action::Hang,
    ];
}

fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// The target: logs each case's id to the file named in its argument before it runs it, then
/// does what the case's first byte says.
#[test]
#[ignore = "child process of the harness tests"]
fn harness_target() {
    let Some(log) = common::child_arg() else {
        return;
    };
    let mut log = std::fs::OpenOptions::new().append(true).open(log).unwrap();
    let mut target = Target::from_env().unwrap();
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
        match Action::ALL[usize::from(data[0]) % Action::ALL.len()] {
            Action::Answer => {
                let sum = checksum(data);
                case.finish(&sum.to_le_bytes()).unwrap();
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
struct Log(std::path::PathBuf);

impl Log {
    fn new(tag: &str) -> Log {
        let path =
            std::env::temp_dir().join(format!("ringport-harness-{tag}-{}.log", std::process::id()));
        std::fs::write(&path, b"").unwrap();
        Log(path)
    }

    /// The ids the target started, in order.
    fn started(&self) -> Vec<u64> {
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

/// Checks a verdict against the action of the case it names.
fn check(verdict: &Verdict, case: &[u8]) {
    let action = Action::ALL[usize::from(case[0]) % Action::ALL.len()];
    match (verdict, action) {
        (Verdict::Ok { result, .. }, Action::Answer) => {
            assert_eq!(result[..], checksum(case).to_le_bytes());
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
}

/// A case of `len` bytes that asks for `action`.
fn case(rng: &mut SmallRng, action: Action, len: usize) -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..len.max(1)).map(|_| rng.random()).collect();
    let at = Action::ALL.iter().position(|a| *a == action).unwrap();
    bytes[0] = (at + Action::ALL.len() * usize::from(bytes[0] / 8)) as u8;
    bytes
}

/// Runs `n` random cases (one crash or hang in about `crash_every`, one hang in about
/// `hang_every`) with `in_flight` cases in flight, and checks every verdict and the target's log.
fn random_cases(n: u64, crash_every: u32, hang_every: u32, in_flight: usize, seed: u64) {
    let log = Log::new(&format!("{seed}"));
    let command = common::child_command("harness_target", log.0.to_str().unwrap());
    let mut driver = HarnessOptions::new()
        .max_case(512)
        .in_flight(in_flight)
        .case_timeout(Duration::from_millis(200))
        .spawn(command)
        .unwrap();
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut sent = std::collections::VecDeque::new();
    let mut judged = 0u64;
    let (mut crashes, mut hangs) = (0, 0);
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
            let bytes = case(&mut rng, action, len);
            let id = driver.submit(&bytes).unwrap();
            sent.push_back((id, bytes));
        }
        let verdict = driver.next_verdict().unwrap();
        let (id, bytes) = sent.pop_front().unwrap();
        assert_eq!(verdict.id(), id, "verdicts come in order");
        check(&verdict, &bytes);
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
    let started = log.started();
    assert_eq!(
        started,
        (0..n).collect::<Vec<_>>(),
        "each case run once, in order"
    );
    assert_eq!((stats.crashes, stats.timeouts), (crashes, hangs));
    assert_eq!(stats.unattributed, 0, "every death was running a case");
    assert_eq!(stats.restarts, crashes + hangs);
    eprintln!("{n} cases, {in_flight} in flight: {crashes} crashes, {hangs} hangs");
}

#[test]
fn every_verdict_names_its_case_in_100_000_one_at_a_time() {
    random_cases(100_000, 500, 20_000, 1, 1);
}

#[test]
fn every_verdict_names_its_case_with_four_in_flight() {
    random_cases(20_000, 200, 5_000, 4, 2);
}

#[test]
fn a_case_too_long_and_too_many_in_flight_are_typed_errors() {
    let log = Log::new("limits");
    let command = common::child_command("harness_target", log.0.to_str().unwrap());
    let mut driver = HarnessOptions::new()
        .max_case(16)
        .in_flight(2)
        .spawn(command)
        .unwrap();
    let mut rng = SmallRng::seed_from_u64(3);
    assert!(matches!(
        driver.submit(&[0; 17]),
        Err(Error::InvalidLength { len: 17, max: 16 })
    ));
    assert!(matches!(driver.next_verdict(), Err(Error::Empty)));
    let ok = case(&mut rng, Action::Answer, 16);
    driver.submit(&ok).unwrap();
    driver.submit(&ok).unwrap();
    assert!(matches!(driver.submit(&ok), Err(Error::Full)));
    assert!(matches!(driver.run(&ok), Err(Error::InvalidConfig(_))));
    for _ in 0..2 {
        check(&driver.next_verdict().unwrap(), &ok);
    }
    check(&driver.run(&ok).unwrap(), &ok);
}

/// A target that takes cases and answers none of them.
#[test]
#[ignore = "child process of the harness tests"]
fn harness_target_that_drops_cases() {
    if common::child_arg().is_none() {
        return;
    }
    let mut target = Target::from_env().unwrap();
    while let Ok(case) = target.next_case() {
        drop(case);
    }
}

#[test]
fn a_target_that_drops_its_cases_is_an_error_not_a_hang() {
    let command = common::child_command("harness_target_that_drops_cases", "-");
    let mut driver = HarnessOptions::new()
        .case_timeout(Duration::from_millis(50))
        .spawn(command)
        .unwrap();
    driver.submit(b"\0 never answered").unwrap();
    assert!(matches!(driver.next_verdict(), Err(Error::Protocol(_))));
}

#[test]
fn a_target_that_never_attaches_is_an_error_not_a_hang() {
    // `true` exits at once, three times.
    let err = HarnessOptions::new()
        .spawn(std::process::Command::new("true"))
        .unwrap_err();
    assert!(matches!(err, Error::Protocol(_)), "{err}");
    // A target that never attaches and never exits.
    let mut sleeper = std::process::Command::new("sleep");
    sleeper.arg("30");
    let err = HarnessOptions::new()
        .start_timeout(Duration::from_millis(200))
        .spawn(sleeper)
        .unwrap_err();
    assert!(matches!(err, Error::Timeout), "{err}");
    // No such command.
    let err = HarnessOptions::new()
        .spawn(std::process::Command::new("/nonexistent/target"))
        .unwrap_err();
    assert!(matches!(err, Error::Os { .. }), "{err}");
}
