//! `cargo bench --bench harness`: fuzzing-harness execs/s, ringport's harness against the same
//! protocol over a pipe pair, an AFL++-style persistent forkserver, and AFL++ itself where it is
//! installed (see `support/harness.rs`). `ringport bench --harness` runs the same.
//!
//! Add `-- --quick` for fewer and shorter rounds, `-- --no-afl` to skip AFL++, `-- --json FILE`
//! to write the results as JSON.

#[path = "support/harness.rs"]
mod harness;

use std::time::Duration;

fn main() {
    harness::child_if_asked();
    ringport_measure::pin::pin_to_wrapping(0);
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| args.iter().any(|a| a == name);
    let quick = flag("--quick");
    let (rounds, budget, kills, afl) = if quick {
        (2, Duration::from_millis(100), 10, 5)
    } else {
        (5, Duration::from_millis(300), 20, 20)
    };
    let afl = if flag("--no-afl") { 0 } else { afl };
    let report = harness::run(rounds, budget, kills, Some((0, 1)), afl, true);
    print!("{}", report.table());
    if let Some(at) = args.iter().position(|a| a == "--json") {
        let path = args.get(at + 1).expect("--json FILE");
        std::fs::write(path, report.json() + "\n").expect("write the JSON");
    }
}
