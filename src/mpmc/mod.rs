//! The multi-producer multi-consumer ring of fixed-size slots.
//!
//! One segment holds one ring: the common header (see `layout`; its two position lines hold the
//! tail and the head, its two bells the "not empty" and "not full" futexes) and a power-of-two
//! array of slots, each an 8-byte stamp and `slot_size` bytes of payload. Any number of
//! [`Producer`] and [`Consumer`] handles, in any number of threads and processes, share
//! it; each message goes to exactly one consumer, and the messages of one producer reach any one
//! consumer in the order they were sent. The protocol is in `slot.rs`, the recovery of slots
//! whose owner died in `recovery.rs`, and what every handle holds in `handle.rs`.
//!
//! # Crashes
//! A slot claimed by a handle records its pid. A handle that waits behind a slot that stays
//! claimed for a whole liveness interval checks that pid, and if the process is dead completes
//! the slot for it: a message being written is dropped (consumers skip it), a message being read
//! counts as delivered to the consumer that died (at most once: a message that crashed one
//! consumer is not handed to the next). So a `kill -9` anywhere costs at most the messages in the
//! dead process's hands and one liveness interval, and never wedges the ring. Handles in another
//! pid namespace than the segment's creator record no pid; their slots cannot be recovered.
//!
//! Handles do not report [`Error::PeerGone`](crate::Error::PeerGone): producers and consumers
//! come and go freely. A blocking call ends when it succeeds or its timeout passes.
//!
//! # Example
//!
//! ```
//! # fn main() -> Result<(), ringport::Error> {
//! let ring = ringport::MpmcOptions::new().slots(64).slot_size(32).in_process()?;
//! let mut producer = ring.producer();
//! let mut consumer = ring.consumer();
//! let mut other_producer = producer.clone();
//!
//! producer.send(b"one")?;
//! other_producer.send(b"two")?;
//! assert_eq!(&*consumer.recv()?, b"one");
//! assert_eq!(&*consumer.recv()?, b"two");
//! # Ok(()) }
//! ```

mod consumer;
mod handle;
mod options;
mod producer;
mod recovery;
pub(crate) mod slot;

pub use consumer::{Consumer, ReadGrant};
pub use options::MpmcOptions;
pub use producer::{Producer, WriteGrant};

use handle::Handle;

/// An MPMC ring this process has created or opened: makes producer and consumer handles.
///
/// The segment stays mapped while the ring or any of its handles lives.
pub struct Ring {
    /// What every handle made from the ring starts as (a copy of it, with nothing of its own).
    template: Handle,
}

impl Ring {
    /// A new producer handle.
    #[must_use]
    pub fn producer(&self) -> Producer {
        Producer::new(self.template.clone_handle())
    }

    /// A new consumer handle.
    #[must_use]
    pub fn consumer(&self) -> Consumer {
        Consumer::new(self.template.clone_handle())
    }

    /// Number of slots.
    #[must_use]
    pub fn slots(&self) -> usize {
        self.template.view.slots.count() as usize
    }

    /// Largest message in bytes.
    #[must_use]
    pub fn slot_size(&self) -> usize {
        self.template.view.slots.slot_size()
    }

    /// How many slots have been recovered since the ring was made, by any handle of any
    /// process: slots whose owner died while it wrote (the slot is skipped: its message was
    /// never committed) or read them (the message counts as delivered, to the dead consumer).
    /// A count in the segment: it is not reset when a process attaches.
    #[must_use]
    pub fn recovered_slots(&self) -> u64 {
        // Relaxed: a count, ordered with nothing.
        self.template
            .view
            .mem
            .header()
            .ledger
            .recovered
            .load(crate::sync::Ordering::Relaxed)
    }

    /// For the fuzz bodies: the ring's memory.
    #[cfg(feature = "testing")]
    pub(crate) fn memory(&self) -> crate::os::RingMemory {
        self.template.view.mem.share()
    }
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("slots", &self.slots())
            .field("slot_size", &self.slot_size())
            .finish_non_exhaustive()
    }
}
