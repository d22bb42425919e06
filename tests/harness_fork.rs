//! The harness's fork-server mode (`HarnessOptions::fork_server`): the target command runs once
//! and each target is a fork of it. The same random crashes and hangs as `tests/harness.rs`,
//! with every verdict on its case and no case lost or run twice; each fork starts from the
//! server's state (its count of cases answered is 0 again after every crash); a target that
//! kills its server is a crash and the server is started again; a target that never becomes a
//! server is a typed error.
//!
//! A fork server must have one thread, and libtest runs each test on a thread of its own: this
//! file has its own `main` (`harness = false`), which plays the target when re-run as one.

mod common;

use std::process::Command;

use common::harness_cases::{random_cases, run_target, Log};
use ringport::harness::HarnessOptions;
use ringport::Error;

fn target(log: &Log, fork: bool) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .env(common::CHILD_ENV, log.path())
        .env("RINGPORT_TEST_FORK", if fork { "1" } else { "0" });
    command
}

fn forked_targets_start_from_the_servers_state(in_flight: usize, seed: u64) {
    let log = Log::new(&format!("fork-{seed}"));
    let run = random_cases(
        &HarnessOptions::new().fork_server(true),
        target(&log, true),
        &log,
        in_flight,
        (20_000, 200, 5_000, 0),
        seed,
    );
    assert!(run.crashes > 0 && run.hangs > 0, "the run crashed and hung");
    assert_eq!(run.stats.server_restarts, 0, "one fork server throughout");
    // One server set every target up; each target counts its answers from 1.
    let answers: Vec<_> = run.answers.iter().flatten().collect();
    let server = answers[0].set_up_by;
    assert!(answers.iter().all(|a| a.set_up_by == server));
    assert_ne!(server, u64::from(std::process::id()));
    let mut expected = 1;
    for answer in &run.answers {
        match answer {
            Some(a) => {
                assert_eq!(
                    a.answered, expected,
                    "a fork starts from the server's state"
                );
                expected += 1;
            }
            None => expected = 1,
        }
    }
}

fn a_target_that_kills_its_server_is_a_crash_and_the_server_comes_back() {
    let log = Log::new("fork-kill-parent");
    let run = random_cases(
        &HarnessOptions::new().fork_server(true),
        target(&log, true),
        &log,
        1,
        (2_000, 100, 1_000_000, 200),
        7,
    );
    assert!(run.stats.server_restarts > 0, "{:?}", run.stats);
}

fn a_target_that_is_no_fork_server_is_a_typed_error() {
    let log = Log::new("fork-refused");
    let err = HarnessOptions::new()
        .fork_server(true)
        .spawn(target(&log, false))
        .unwrap_err();
    assert!(matches!(err, Error::Protocol(_)), "{err}");
}

fn main() {
    if let Some(log) = common::child_arg() {
        let fork = std::env::var("RINGPORT_TEST_FORK").as_deref() == Ok("1");
        // A target that is asked for a fork server and does not become one fails to attach:
        // its error goes to standard error, and the driver sees it die.
        if !fork && std::env::var_os(ringport::harness::FORK_SERVER_ENV).is_some() {
            let err = ringport::harness::Target::from_env().unwrap_err();
            eprintln!("the target refuses, as it should: {err}");
            std::process::exit(1);
        }
        run_target(&log, fork);
        return;
    }
    let tests: [(&str, fn()); 4] = [
        ("forked targets, one case in flight", || {
            forked_targets_start_from_the_servers_state(1, 11);
        }),
        ("forked targets, four cases in flight", || {
            forked_targets_start_from_the_servers_state(4, 12);
        }),
        (
            "a target that kills its server",
            a_target_that_kills_its_server_is_a_crash_and_the_server_comes_back,
        ),
        (
            "a target that is no fork server",
            a_target_that_is_no_fork_server_is_a_typed_error,
        ),
    ];
    for (name, test) in tests {
        eprintln!("test {name} ...");
        test();
        eprintln!("test {name} ... ok");
    }
}
