//! `cargo bench --bench crash_notice`: how soon a survivor hears that its peer died (kill -9
//! to `PeerGone`, against a pipe's end-of-file in the same rounds), and what an endpoint blocked
//! with no traffic costs (against a blocked pipe reader). `ringport bench` runs the same
//! measurements (see `support/crash_notice.rs`).
//!
//! Add `-- --quick` for fewer kills and a shorter idle sample; `-- --idle-only` or
//! `-- --crash-only` for one half.

#[path = "support/crash_notice.rs"]
mod notice;

use std::time::Duration;

fn main() {
    notice::child_if_asked();
    ringport_measure::pin::pin_to_wrapping(0);
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| args.iter().any(|a| a == name);
    let quick = flag("--quick");
    if !flag("--idle-only") {
        let (rounds, kills) = if quick { (2, 5) } else { (5, 20) };
        let rows = notice::crash(rounds, kills, Some(1));
        print!("{}", notice::notice_table(&rows, rounds, kills));
    }
    if !flag("--crash-only") {
        let sample = Duration::from_secs(if quick { 2 } else { 10 });
        let rows = notice::idle(sample, Some(1));
        print!("{}", notice::idle_table(&rows, sample));
    }
}
