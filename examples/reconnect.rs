//! A driver and a target that crashes, as in a fuzzing harness: the driver sends each case on
//! one ring and waits for its result on another. When the target dies (here it aborts on every
//! fifth case), the driver hears it at once, as `PeerGone`, starts a new target, and goes on
//! with the next case. The new target takes both of the dead one's roles over, and learns from
//! its takeover which case it was handling when it died.
//!
//! `cargo run --release --example reconnect`

use std::process::{Child, Command};
use std::time::Duration;

use ringport::{Error, SpscOptions};

/// Set in a target: the names of the two rings.
const RINGS_ENV: &str = "RINGPORT_EXAMPLE_RINGS";

fn options() -> SpscOptions {
    SpscOptions::new().capacity(1 << 16)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if let Ok(rings) = std::env::var(RINGS_ENV) {
        let (cases, results) = rings.split_once(' ').ok_or("two ring names")?;
        return target(cases, results);
    }
    let pid = std::process::id();
    let (cases_name, results_name) = (
        format!("ringport-example-cases-{pid}"),
        format!("ringport-example-results-{pid}"),
    );
    let mut cases = options().create_producer(&cases_name)?;
    let mut results = options().create_consumer(&results_name)?;
    let mut target = spawn_target(&cases_name, &results_name)?;
    let (mut passed, mut crashes) = (0, 0);
    for case in 0..20u32 {
        cases.send(&case.to_le_bytes())?;
        // The error arm borrows nothing: the loop may replace the target there.
        match results.recv_with(|r| u32::from_le_bytes(r.try_into().expect("a u32"))) {
            Ok(result) => {
                assert_eq!(result, case * 2);
                passed += 1;
            }
            Err(Error::PeerGone(_)) => {
                crashes += 1;
                println!("case {case}: the target died");
                // Reap it (judged dead, its roles can be taken) and start another.
                target.wait()?;
                target = spawn_target(&cases_name, &results_name)?;
                // Bounded: a target that cannot start would otherwise be waited for forever.
                results.wait_for_peer(Duration::from_secs(10))?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    println!("{passed} cases passed, {crashes} crashed the target");
    assert_eq!((passed, crashes), (16, 4));
    target.kill()?;
    target.wait()?;
    Ok(())
}

fn spawn_target(cases: &str, results: &str) -> std::io::Result<Child> {
    Command::new(std::env::current_exe()?)
        .env(RINGS_ENV, format!("{cases} {results}"))
        .spawn()
}

/// Doubles each case, and crashes on every fifth.
fn target(cases: &str, results: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut input = options().open_consumer(cases)?;
    let mut output = options().open_producer(results)?;
    if let Some(takeover) = input.takeover() {
        // The last case the dead target received, whether or not it had finished with it.
        let case = takeover
            .in_hand
            .as_ref()
            .map(|frame| u32::from_le_bytes(frame.bytes[..4].try_into().expect("a u32")));
        println!(
            "target: took over from pid {}, which died on case {case:?}",
            takeover.pid
        );
    }
    loop {
        let case = input.recv_with(|c| u32::from_le_bytes(c.try_into().expect("a u32")))?;
        if case % 5 == 4 {
            // A crash: no destructor runs, no role is given back.
            std::process::abort();
        }
        output.send(&(case * 2).to_le_bytes())?;
    }
}

#[test]
fn runs() {
    main().unwrap();
}
