//! Zero-copy inter-process communication on Linux.
//!
//! ringport puts lock-free rings in shared memory and gives them the ease of message passing:
//! a producer reserves space, writes in place and commits; a consumer borrows the frame in place
//! and releases it on drop. Waiting spins briefly, then sleeps on a shared futex; while the other
//! side is awake no system call is made. Every value read from shared memory is checked before
//! use: a corrupted segment or a hostile peer yields [`Error::Corrupted`], never a panic, an
//! out-of-bounds access or a hang.
//!
//! ```no_run
//! use ringport::SpscOptions;
//!
//! # fn main() -> Result<(), ringport::Error> {
//! // Process A
//! let mut producer = SpscOptions::new().capacity(1 << 20).create_producer("my-ring")?;
//! producer.send(b"hello")?;
//!
//! // Process B
//! let mut consumer = SpscOptions::new().open_consumer("my-ring")?;
//! let frame = consumer.recv()?;
//! assert_eq!(&*frame, b"hello");
//! # Ok(()) }
//! ```
//!
//! Layers, from the bottom: `os` (the one boundary to the system: every system call, the
//! memory accessors, and a model of them for loom), `layout` (the header's words), the
//! algorithms (`frame`, `wait`, `role`, and the cursors and slots of [`spsc`] and [`mpmc`]),
//! which make no system call of their own, then where memory comes from (`segment`) and the
//! endpoints in [`spsc`], [`mpmc`] and [`channel`].

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod channel;
mod counters;
mod error;
mod frame;
/// The fuzz targets' bodies, for ringport's own fuzz crate and tests (feature `testing`; not
/// part of the API).
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod harness;
mod layout;
pub mod mpmc;
mod options;
mod os;
pub mod pubsub;
mod role;
pub mod rpc;
mod segment;
pub mod segments;
pub mod spsc;
mod sync;
/// Hooks for ringport's own tests and loom models (feature `testing`; not part of the API).
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod testing;
pub mod typed;
mod wait;

pub use channel::{Channel, ChannelOptions, Listener, Policy};
pub use error::{Error, Result, Role};
pub use mpmc::MpmcOptions;
pub use os::remove_segment;
pub use os::Location;
pub use pubsub::PubSubOptions;
pub use role::PeerStatus;
pub use spsc::SpscOptions;
pub use wait::WaitStats;
