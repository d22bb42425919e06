//! Shared by the benches: CPU pinning and medians.
#![allow(dead_code)]

// Pinning is the `ringport bench` command's (its one file of unsafe code), not a copy.
#[path = "../../src/bin/ringport/bench/sys.rs"]
mod sys;
pub use sys::online_cores;

/// Pins the calling thread to `core` (modulo the online cores).
pub fn pin_to(core: usize) {
    sys::pin_to(core % online_cores()).expect("pinning to a core");
}

/// The median of `v`.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
