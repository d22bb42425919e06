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
    (0..len)
        .map(|i| seq.wrapping_mul(31).wrapping_add(i as u8))
        .collect()
}

/// Sends `bytes` with the `try_` form, yielding to the model while the ring is full.
pub fn try_send(producer: &mut ringport::spsc::Producer, bytes: &[u8]) {
    loop {
        match producer.try_send(bytes) {
            Ok(()) => return,
            Err(ringport::Error::Full) => loom::thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
    }
}

/// Receives the next frame with the `try_` form, yielding while the ring is empty, and checks
/// that it is `expected`.
pub fn try_recv_expect(consumer: &mut ringport::spsc::Consumer, expected: &[u8]) {
    loop {
        match consumer.try_recv() {
            Ok(got) => {
                assert_eq!(&*got, expected);
                return;
            }
            Err(ringport::Error::Empty) => loom::thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
    }
}
