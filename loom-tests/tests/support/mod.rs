//! Shared by the models: a checked model run that counts the executions loom explored.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Runs `f` under loom (preemption bound from LOOM_MAX_PREEMPTIONS) and prints how many
/// executions it explored and how long that took.
pub fn model<F>(name: &str, f: F)
where
    F: Fn() + Sync + Send + 'static,
{
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    RUNS.store(0, Ordering::Relaxed);
    let start = Instant::now();
    loom::model(move || {
        RUNS.fetch_add(1, Ordering::Relaxed);
        f();
    });
    eprintln!(
        "loom model {name}: {} executions in {:.1?} (LOOM_MAX_PREEMPTIONS={})",
        RUNS.load(Ordering::Relaxed),
        start.elapsed(),
        std::env::var("LOOM_MAX_PREEMPTIONS").unwrap_or_else(|_| "unbounded".into())
    );
}

/// A frame whose every byte derives from `seq`, `len` bytes long.
pub fn frame(seq: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| seq.wrapping_mul(31).wrapping_add(i as u8)).collect()
}
