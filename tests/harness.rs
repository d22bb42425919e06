//! The fuzzing harness (`ringport::harness`) against a target that crashes in every way a target
//! can: abort, SIGSEGV, kill -9 of itself, exit, and hangs. Every verdict must name the case that
//! caused it, no case may be lost or run twice (the target logs each case it starts), and the
//! driver must never hang. And against hostile targets: ones that scribble on the rings, fork a
//! second reader, close their descriptors. (Fork-server targets: `tests/harness_fork.rs`.)

mod common;

use std::time::{Duration, Instant};

use common::harness_cases::{case, check, random_cases, run_target, Action, Log};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use ringport::harness::{HarnessOptions, Target, Verdict};
use ringport::Error;

/// The target (see `harness_cases::run_target`), logging to the file named in its argument.
#[test]
#[ignore = "child process of the harness tests"]
fn harness_target() {
    if let Some(log) = common::child_arg() {
        run_target(&log, false);
    }
}

fn random_target_cases(n: u64, crash_every: u32, hang_every: u32, in_flight: usize, seed: u64) {
    let log = Log::new(&format!("{seed}"));
    let command = common::child_command("harness_target", log.path());
    let run = random_cases(
        &HarnessOptions::new(),
        command,
        &log,
        in_flight,
        (n, crash_every, hang_every, 0),
        seed,
    );
    assert!(run.crashes > 0 && run.hangs > 0, "the run crashed and hung");
}

#[test]
fn every_verdict_names_its_case_in_100_000_one_at_a_time() {
    random_target_cases(100_000, 500, 20_000, 1, 1);
}

#[test]
fn every_verdict_names_its_case_with_four_in_flight() {
    random_target_cases(20_000, 200, 5_000, 4, 2);
}

#[test]
fn a_case_too_long_and_too_many_in_flight_are_typed_errors() {
    let log = Log::new("limits");
    let command = common::child_command("harness_target", log.path());
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

/// The ring descriptors a driver passed down, mapped whole (before `Target::from_env` takes
/// and closes them), for a target that scribbles on them.
fn map_inherited_rings() -> Vec<&'static mut [u8]> {
    let env = std::env::var(ringport::harness::TARGET_ENV).unwrap();
    env.split(',')
        .filter_map(|field| field.split_once('='))
        .filter(|(key, _)| *key == "cases" || *key == "results")
        .map(|(_, fd)| {
            let fd: i32 = fd.parse().unwrap();
            // SAFETY: fstat fills the struct we pass; mmap maps a descriptor we inherited, whole,
            // shared; the mapping is never unmapped, so the slice lives for ever.
            unsafe {
                let mut st: libc::stat = std::mem::zeroed();
                assert_eq!(libc::fstat(fd, &mut st), 0);
                let len = st.st_size as usize;
                let at = libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    fd,
                    0,
                );
                assert_ne!(at, libc::MAP_FAILED);
                std::slice::from_raw_parts_mut(at.cast::<u8>(), len)
            }
        })
        .collect()
}

/// A hostile target, as its argument says:
/// - `scribble:SEED`: answers five cases, then writes random words over its rings (the header
///   half the time) and goes on answering, or crashes;
/// - `second-reader`: at its third case forks a child that reads cases too and answers them
///   with nonsense, then crashes at its twentieth;
/// - `close-and-stay`: closes its descriptors and never attaches;
/// - `close-then-attach`: closes its descriptors, then tries to attach.
#[test]
#[ignore = "child process of the harness tests"]
fn harness_hostile_target() {
    let Some(mode) = common::child_arg() else {
        return;
    };
    let descriptors = || -> Vec<i32> {
        let env = std::env::var(ringport::harness::TARGET_ENV).unwrap();
        env.split(',')
            .filter_map(|f| f.split_once('='))
            .filter(|(k, _)| *k == "cases" || *k == "results")
            .map(|(_, fd)| fd.parse().unwrap())
            .collect()
    };
    match mode.split_once(':').unwrap_or((&mode, "")) {
        ("scribble", seed) => {
            let rings = map_inherited_rings();
            let mut rng = SmallRng::seed_from_u64(seed.parse().unwrap());
            // The target after a scribble meets the rings it left: that it cannot attach is
            // what the driver must handle.
            let Ok(mut target) = Target::from_env() else {
                std::process::exit(1);
            };
            for n in 0.. {
                let Ok(case) = target.next_case() else { return };
                if n == 5 {
                    let ring = &mut rings.into_iter().nth(rng.random_range(0..2)).unwrap();
                    let span = if rng.random() { 1152 } else { ring.len() };
                    for _ in 0..rng.random_range(1..8) {
                        let at = rng.random_range(0..span / 8) * 8;
                        ring[at..at + 8].copy_from_slice(&rng.random::<u64>().to_le_bytes());
                    }
                    if rng.random() {
                        std::process::abort();
                    }
                    std::process::exit(0);
                }
                if case.finish(b"ok").is_err() {
                    return;
                }
            }
        }
        ("second-reader", _) => {
            let mut target = Target::from_env().unwrap();
            for n in 0.. {
                let Ok(case) = target.next_case() else { return };
                if n == 2 {
                    // SAFETY: fork in a test process whose other threads the child never
                    // needs: it only reads the ring and writes results, then exits.
                    if unsafe { libc::fork() } == 0 {
                        // SAFETY: prctl sets a flag of this process.
                        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
                        drop(case);
                        while let Ok(case) = target.next_case() {
                            let _ = case.finish(SECOND_READER);
                        }
                        // SAFETY: _exit ends the process without running the test harness's
                        // atexit handlers in this copy of it.
                        unsafe { libc::_exit(0) };
                    }
                }
                if n == 20 {
                    std::process::abort();
                }
                if case.finish(b"ok").is_err() {
                    return;
                }
            }
        }
        ("close-and-stay", _) => {
            for fd in descriptors() {
                // SAFETY: closes descriptors we inherited and nothing here owns.
                unsafe { libc::close(fd) };
            }
            std::thread::sleep(Duration::from_secs(30));
        }
        ("close-then-attach", _) => {
            for fd in descriptors() {
                // SAFETY: as above.
                unsafe { libc::close(fd) };
            }
            let err = Target::from_env().unwrap_err();
            assert!(matches!(err, Error::Protocol(_)), "{err}");
            std::process::exit(1);
        }
        (other, _) => panic!("no such hostile target: {other}"),
    }
}

/// What the forked second reader answers.
const SECOND_READER: &[u8] = b"a second reader's nonsense";

/// How long one driver call may take against a hostile target: a case timeout, the exit grace,
/// a restart, with room for a loaded machine.
const CALL_BOUND: Duration = Duration::from_secs(5);

/// Runs up to `cases` cases against a hostile target; returns the typed error it ended with, if
/// any. Every call must return within [`CALL_BOUND`].
fn against_hostile(mode: &str, cases: usize) -> Option<Error> {
    let command = common::child_command("harness_hostile_target", mode);
    let mut driver = HarnessOptions::new()
        .case_timeout(Duration::from_millis(100))
        .start_timeout(Duration::from_secs(2))
        .spawn(command)
        .unwrap();
    let timed = |what: &str, started: Instant| {
        assert!(
            started.elapsed() < CALL_BOUND,
            "{mode}: {what} took {:?}",
            started.elapsed()
        );
    };
    for _ in 0..cases {
        let started = Instant::now();
        let verdict = driver.run(b"a case");
        timed("run", started);
        match verdict {
            // A forked second reader takes some cases and answers them under their own ids: the
            // driver cannot tell it from the target, and its answer is that case's verdict.
            Ok(Verdict::Ok { result, .. }) => assert!(
                result == b"ok" || (mode == "second-reader" && result == SECOND_READER),
                "{mode}: {result:?}"
            ),
            Ok(_) => {}
            Err(e) => {
                // Once broken, it stays broken: a typed error again, never a hang.
                let started = Instant::now();
                let again = driver.run(b"a case after the error");
                timed("the call after an error", started);
                if let Ok(Verdict::Ok { result, .. }) = again {
                    assert!(
                        result == b"ok" || (mode == "second-reader" && result == SECOND_READER),
                        "{mode}: {result:?}"
                    );
                }
                return Some(e);
            }
        }
    }
    None
}

#[test]
fn a_target_that_scribbles_on_its_rings_gets_verdicts_or_a_typed_error_and_no_hang() {
    let mut errors = Vec::new();
    for seed in 0..24 {
        if let Some(e) = against_hostile(&format!("scribble:{seed}"), 12) {
            assert!(
                matches!(
                    e,
                    Error::Corrupted { .. } | Error::Protocol(_) | Error::Timeout | Error::Full
                ),
                "seed {seed}: {e}"
            );
            errors.push(e);
        }
    }
    eprintln!(
        "scribbles: {} of 24 ended the harness: {errors:?}",
        errors.len()
    );
    assert!(
        !errors.is_empty(),
        "some scribbles on the headers are caught"
    );
}

#[test]
fn a_target_that_forks_a_second_reader_gets_verdicts_or_a_typed_error_and_no_hang() {
    if let Some(e) = against_hostile("second-reader", 60) {
        assert!(
            matches!(e, Error::Protocol(_) | Error::Corrupted { .. }),
            "{e}"
        );
    }
}

#[test]
fn a_target_that_closes_its_descriptors_is_a_typed_error() {
    let command = common::child_command("harness_hostile_target", "close-and-stay");
    let err = HarnessOptions::new()
        .start_timeout(Duration::from_millis(300))
        .spawn(command)
        .unwrap_err();
    assert!(matches!(err, Error::Timeout), "{err}");
    let command = common::child_command("harness_hostile_target", "close-then-attach");
    let err = HarnessOptions::new().spawn(command).unwrap_err();
    assert!(matches!(err, Error::Protocol(_)), "{err}");
}

/// A target that counts a hit of the coverage map at each of its case's bytes (the byte's value
/// times 7, so that a small map wraps), then aborts if the case starts with 0xff.
#[test]
#[ignore = "child process of the harness tests"]
fn harness_coverage_target() {
    if common::child_arg().is_none() {
        return;
    }
    let target = Target::from_env().unwrap();
    let map = target.coverage().expect("the driver made a map");
    target
        .run(|case| {
            for &b in case {
                map.hit(usize::from(b) * 7);
            }
            if case[0] == 0xff {
                std::process::abort();
            }
            b""
        })
        .unwrap();
}

/// What the target above leaves in a map of `len` bytes for `case`.
fn expected_coverage(case: &[u8], len: usize) -> Vec<u8> {
    let mut map = vec![0u8; len];
    for &b in case {
        let at = usize::from(b) * 7 % len;
        map[at] = map[at].wrapping_add(1);
    }
    map
}

#[test]
fn the_coverage_map_holds_each_cases_hits_and_a_crashing_cases_too() {
    for len in [ringport::harness::DEFAULT_COVERAGE_LEN, 1001] {
        let command = common::child_command("harness_coverage_target", "-");
        let mut driver = HarnessOptions::new().coverage(len).spawn(command).unwrap();
        let map = driver.coverage().unwrap();
        assert_eq!(map.len(), len);
        let mut rng = SmallRng::seed_from_u64(len as u64);
        let mut taken = vec![0u8; len];
        for n in 0..300 {
            let mut case: Vec<u8> = (0..rng.random_range(1..600))
                .map(|_| rng.random())
                .collect();
            case[0] = if n % 50 == 49 { 0xff } else { case[0] % 0xff };
            let verdict = driver.run(&case).unwrap();
            assert_eq!(matches!(verdict, Verdict::Crashed { .. }), case[0] == 0xff);
            let expected = expected_coverage(&case, len);
            let hits = driver.coverage().unwrap().take(&mut taken);
            assert_eq!(
                taken, expected,
                "case {n}: the map holds its hits, and only its"
            );
            assert_eq!(hits, expected.iter().filter(|&&b| b != 0).count());
        }
        assert_eq!(driver.stats().crashes, 6);
    }
}
