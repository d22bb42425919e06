//! The settings that SPSC and MPMC rings share, written once for both option builders.

/// Adds the shared setters to an options builder whose fields are named `spin`, `prefault` and
/// `symmetric_fences`.
macro_rules! shared_ring_setters {
    () => {
        /// How long a blocking call spins before it sleeps (zero: sleep at once).
        #[must_use]
        pub fn spin(mut self, spin: Duration) -> Self {
            self.spin = spin;
            self
        }

        /// Fault the ring's pages in when it is created or opened (the default), so that
        /// sending and receiving never take a page fault, and so that a segment the system
        /// cannot back (a full `/dev/shm`) is an error here rather than a SIGBUS later. It costs
        /// the first touch of every page up front (microseconds a page: docs/PERFORMANCE.md,
        /// "Faulting pages in"). With `false`, pages fault in as the first lap reaches them.
        #[must_use]
        pub fn prefault(mut self, prefault: bool) -> Self {
            self.prefault = prefault;
            self
        }

        /// Use SeqCst fences on both sides of the wait handshake instead of `membarrier`
        /// (slower publishes; for kernels or sandboxes without
        /// `MEMBARRIER_CMD_GLOBAL_EXPEDITED`).
        #[must_use]
        pub fn symmetric_fences(mut self, symmetric: bool) -> Self {
            self.symmetric_fences = symmetric;
            self
        }
    };
}

pub(crate) use shared_ring_setters;
