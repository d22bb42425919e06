//! Hooks for ringport's own tests and loom models (feature `testing`; not part of the API).

use crate::error::Result;
use crate::spsc::{Consumer, Producer};

/// Ends `producer` as a kill -9 of its process would: it does not detach or publish its
/// position, and its process is reported dead, to liveness checks and to the death notices on
/// it (which run on this thread). Only the loom model can report a death that did not happen.
///
/// # Errors
/// [`Error::Unsupported`](crate::error::Error::Unsupported) outside the loom model, where a test
/// kills a real process instead (the endpoint is abandoned all the same).
pub fn kill_producer(producer: Producer) -> Result<()> {
    crate::os::declare_dead(producer.abandon())
}

/// As [`kill_producer`], for a consumer.
///
/// # Errors
/// As [`kill_producer`].
pub fn kill_consumer(consumer: Consumer) -> Result<()> {
    crate::os::declare_dead(consumer.abandon())
}
