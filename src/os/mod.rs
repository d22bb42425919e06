//! The thin OS layer: every system call ringport makes lives below this module.
//!
//! The algorithms above it (frames, ring positions, the wait protocol) make no system call of
//! their own; they receive what they need from here, which is also what lets loom run them.

pub(crate) mod futex;
pub(crate) mod membarrier;
pub(crate) mod process;
pub(crate) mod seqpacket;
pub(crate) mod shm;

pub use shm::remove_segment;
