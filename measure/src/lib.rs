//! What ringport's benches, the `ringport` command and the integration tests share to measure:
//! pinning to a core, raw shared mappings and futexes, the raw baselines that bound ringport,
//! and medians. None of it uses ringport, so a baseline carries none of ringport's costs.
//!
//! This crate holds all the unsafe code of the measurements (in `pin`, `futex`, `shm`, `fds` and
//! the forkserver's fork in `harness`).

#![deny(unsafe_op_in_unsafe_fn)]

pub mod fds;
pub mod futex;
pub mod harness;
pub mod pin;
pub mod raw;
pub mod shm;

/// The median of `values` (the upper one of an even count).
///
/// # Panics
/// If `values` is empty.
#[must_use]
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
