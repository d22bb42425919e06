//! Hooks for ringport's own tests and loom models (feature `testing`; not part of the API).

use crate::error::Result;
use crate::pubsub::{History, PubSubOptions, Publisher, Subscriber};
use crate::segment::Segment;
use crate::spsc::{Consumer, Producer, SpscOptions};

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

/// An SPSC ring on the heap whose roles can be taken again, as a named ring's can by another
/// process: for models of takeover, where a killed endpoint's successor attaches in the same
/// process (the loom model gives each attach a process of its own).
pub struct SharedRing {
    segment: Segment,
    options: SpscOptions,
}

impl SharedRing {
    /// A fresh ring made with `options`, whose endpoints wait as `options` say.
    ///
    /// # Errors
    /// As [`SpscOptions::in_process`].
    pub fn new(options: &SpscOptions) -> Result<SharedRing> {
        Ok(SharedRing {
            segment: options.heap_segment()?,
            options: options.clone(),
        })
    }

    /// Takes the producer role.
    ///
    /// # Errors
    /// As [`SpscOptions::open_producer`].
    pub fn producer(&self) -> Result<Producer> {
        self.options.attach_producer(&self.segment)
    }

    /// Takes the consumer role.
    ///
    /// # Errors
    /// As [`SpscOptions::open_consumer`].
    pub fn consumer(&self) -> Result<Consumer> {
        self.options.attach_consumer(&self.segment)
    }
}

/// A publish-subscribe ring on the heap that subscribers join from any thread, as they would
/// from other processes, with no handle on the publisher: for models of joining.
pub struct SharedPubSub {
    segment: Segment,
    options: PubSubOptions,
}

impl SharedPubSub {
    /// A fresh ring made with `options`.
    ///
    /// # Errors
    /// As [`PubSubOptions::in_process`].
    pub fn new(options: &PubSubOptions) -> Result<SharedPubSub> {
        Ok(SharedPubSub {
            segment: options.heap_segment()?,
            options: options.clone(),
        })
    }

    /// Takes the publisher role.
    ///
    /// # Errors
    /// As [`PubSubOptions::open_publisher`].
    pub fn publisher(&self) -> Result<Publisher> {
        self.options.publisher(&self.segment)
    }

    /// Joins as a subscriber starting where `history` says.
    ///
    /// # Errors
    /// As [`PubSubOptions::open_subscriber`].
    pub fn subscriber(&self, history: History) -> Result<Subscriber> {
        self.options
            .clone()
            .history(history)
            .subscriber(&self.segment)
    }
}
