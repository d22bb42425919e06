//! ringport's C ABI (`include/ringport.h`, generated from this crate by cbindgen): the SPSC and
//! MPMC rings, the Channel, a fuzzing harness's target and the rings' counters as C functions
//! over handles.
//!
//! - Every call returns an [`RpStatus`]: 0 on success, a positive code for a ring's ordinary
//!   outcomes (full, empty, timed out, the peer gone), a negative one for an error, whose
//!   message `rp_last_error()` gives (per thread, until the thread's next call).
//! - Handles are 64-bit ids checked on every call: a null, freed or made-up handle, or one of
//!   another type, is `RP_STATUS_INVALID_HANDLE`, never a use of freed memory. Calls on one handle must
//!   not overlap; a handle may move between threads.
//! - Grants: a reservation (or a borrowed frame) is held by its handle until committed, aborted
//!   or released; its bytes are the caller's until then and no longer.
//! - No panic crosses the boundary (`RP_STATUS_PANIC`).
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod channel;
mod common;
mod cptr;
mod endpoints;
mod handles;
mod mpmc;
mod spsc;
mod stat;
mod status;
mod target;

pub use channel::*;
pub use common::{RpPeerStatus, RpWaitStats};
pub use mpmc::*;
pub use spsc::*;
pub use stat::*;
pub use status::{rp_last_error, rp_status_name, RpStatus};
pub use target::*;
