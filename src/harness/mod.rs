//! Fuzzing-harness mode: a driver that sends test cases to a target process that may crash at any
//! moment, and gets one verdict per case, with the crash attributed to the case that caused it.
//!
//! The driver ([`Driver`], made by [`HarnessOptions::spawn`]) starts the target command with two
//! SPSC rings in sealed memfds inherited by descriptor (no name in `/dev/shm`: a crash leaves
//! nothing): cases go one way, results the other. The target ([`Target::from_env`]) reads each
//! case in place and answers it ([`Case::finish`]); while the driver keeps up, neither side makes
//! a system call.
//!
//! When the target dies (its death is an event: see the crate's death notices), the driver reads
//! the results it sent, then the cases ring's ledger, which names the one case the target had
//! received last: if that case has no result, the target died running it, and its verdict is
//! [`Verdict::Crashed`] (or [`Verdict::TimedOut`], when the driver killed a target that ran a
//! case too long). The driver starts a new target, which reads on after that case: no case is
//! lost, and none is run twice. A crash outside any case (while starting, or between two cases)
//! blames none ([`HarnessStats::unattributed`]).
//!
//! ```no_run
//! # fn main() -> Result<(), ringport::Error> {
//! use std::process::Command;
//! use ringport::harness::{HarnessOptions, Verdict};
//!
//! let mut driver = HarnessOptions::new().spawn(Command::new("./my-target"))?;
//! match driver.run(b"a test case")? {
//!     Verdict::Ok { result, .. } => println!("ok: {} bytes back", result.len()),
//!     Verdict::Crashed { status, .. } => println!("crashed: {status}"),
//!     Verdict::TimedOut { .. } => println!("hung"),
//! }
//! # Ok(()) }
//! ```
//!
//! The target side, in the target's `main`:
//!
//! ```no_run
//! # fn main() -> Result<(), ringport::Error> {
//! ringport::harness::Target::from_env()?.run(|case| {
//!     // Run the case; what this returns goes back to the driver.
//!     case.len().to_le_bytes()
//! })
//! # }
//! ```

mod coverage;
mod driver;
mod target;
mod wire;

pub use coverage::{CoverageMap, DEFAULT_COVERAGE_LEN};
pub use driver::{Driver, HarnessOptions, HarnessStats, Verdict};
pub use target::{fork_server, Case, Target};

/// The environment variable that tells a target its inherited descriptors and settings (a list
/// of `key=value`: the rings, the spin, the coverage map).
pub const TARGET_ENV: &str = "RINGPORT_HARNESS";

/// The environment variable that asks a target to be a fork server (see [`fork_server`]): the
/// descriptor of its socket to the driver.
pub const FORK_SERVER_ENV: &str = "RINGPORT_HARNESS_FORK_SERVER";
