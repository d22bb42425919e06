//! A fuzzing harness: the driver sends 200,000 cases to a persistent target (this program,
//! started again as the target) that crashes on every case starting with "boom". Each crash is
//! attributed to its case, the target is restarted, and the run goes on; nothing is lost or run
//! twice, and nothing is left in /dev/shm.
//!
//! `cargo run --release --example harness_driver`

use std::process::Command;
use std::time::Instant;

use ringport::harness::{HarnessOptions, Target, Verdict};

/// Set in the target (the driver sets `ringport::harness::TARGET_ENV` too).
const ROLE_ENV: &str = "RINGPORT_EXAMPLE_TARGET";
const CASES: u64 = 200_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os(ROLE_ENV).is_some() {
        // The target: a persistent loop, each case read in place.
        Target::from_env()?.run(|case| {
            if case.starts_with(b"boom") {
                std::process::abort();
            }
            // The result: the case's length.
            (case.len() as u32).to_le_bytes()
        })?;
        return Ok(());
    }
    let mut target = Command::new(std::env::current_exe()?);
    target.env(ROLE_ENV, "1");
    let mut driver = HarnessOptions::new()
        .max_case(64)
        .in_flight(8)
        .spawn(target)?;
    let started = Instant::now();
    let (mut sent, mut crashes) = (0u64, Vec::new());
    for judged in 0..CASES {
        // Keep 8 cases in flight: verdicts come back in order.
        while sent < CASES && driver.in_flight() < 8 {
            let case = if sent % 10_000 == 9_999 {
                format!("boom {sent}")
            } else {
                format!("case {sent}")
            };
            driver.submit(case.as_bytes())?;
            sent += 1;
        }
        match driver.next_verdict()? {
            Verdict::Ok { id, result } => {
                assert_eq!(id, judged);
                assert!(u32::from_le_bytes(result[..4].try_into()?) >= 6);
            }
            Verdict::Crashed { id, status } => crashes.push((id, status)),
            Verdict::TimedOut { id } => return Err(format!("case {id} hung").into()),
        }
    }
    let elapsed = started.elapsed();
    println!(
        "{CASES} cases in {elapsed:.2?} ({:.0} execs/s), {} crashes, each on its case: {:?}",
        CASES as f64 / elapsed.as_secs_f64(),
        crashes.len(),
        crashes.iter().map(|(id, _)| id).collect::<Vec<_>>()
    );
    assert!(crashes.iter().all(|(id, _)| id % 10_000 == 9_999));
    assert_eq!(crashes.len() as u64, CASES / 10_000);
    // A target is started when a case needs one: none after the last case's crash.
    assert_eq!(driver.stats().restarts, CASES / 10_000 - 1);
    Ok(())
}

#[test]
fn runs() {
    main().unwrap();
}
