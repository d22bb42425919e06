//! The settings that SPSC and MPMC rings share, written once for both option builders.

/// Who may share a named segment: its group when it is created, and what an opener accepts of
/// its owner and mode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Access {
    /// When creating: mode 0660 and this group (None: mode 0600).
    pub group: Option<u32>,
    /// When opening: owners trusted besides the caller's effective uid.
    pub trusted_owners: Vec<u32>,
    /// When opening: accept a segment that others than its owner may write.
    pub shared_write: bool,
}

/// Adds the shared setters to an options builder whose fields are named `spin`, `prefault`,
/// `huge_pages`, `lock_in_memory`, `symmetric_fences` and `access`.
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

        /// Back a new ring with huge pages (2 MiB on x86_64): fewer TLB misses for a large
        /// ring. For a memfd, a System V segment, or a file on hugetlbfs (which is huge pages
        /// whatever this says); the size is rounded up to whole pages. The system must have
        /// them reserved (`sysctl vm.nr_hugepages`), or creating fails with
        /// [`Error::NoHugePages`](crate::Error::NoHugePages); a POSIX name (`/dev/shm`) has
        /// none ([`Error::Unsupported`](crate::Error::Unsupported)).
        #[must_use]
        pub fn huge_pages(mut self, huge: bool) -> Self {
            self.huge_pages = huge;
            self
        }

        /// Lock the ring's memory when it is created or opened (`mlock`), so that its pages are
        /// never paged out or swapped: no major fault on the hot path however long the ring
        /// idles. The process's lock limit (`ulimit -l`) must allow the whole segment, or
        /// [`Error::MemoryLock`](crate::Error::MemoryLock) says what to raise.
        #[must_use]
        pub fn lock_in_memory(mut self, lock: bool) -> Self {
            self.lock_in_memory = lock;
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

        /// Create named segments with mode 0660 and group `gid` (by default: mode 0600, the
        /// creator's alone), so that the group's members can open them. They must also trust the
        /// creator ([`trust_owner`](Self::trust_owner)) and accept a segment their group may
        /// write ([`allow_shared_write`](Self::allow_shared_write)).
        #[must_use]
        pub fn share_with_group(mut self, gid: u32) -> Self {
            self.access.group = Some(gid);
            self
        }

        /// When opening a named segment, accept one owned by `uid` as well as by the caller's
        /// effective uid (the default: only our own; root too refuses others' segments).
        #[must_use]
        pub fn trust_owner(mut self, uid: u32) -> Self {
            self.access.trusted_owners.push(uid);
            self
        }

        /// When opening a named segment, accept one that others than its owner may write (group
        /// or other write permission; refused by default, since any of them could corrupt it).
        #[must_use]
        pub fn allow_shared_write(mut self, allow: bool) -> Self {
            self.access.shared_write = allow;
            self
        }
    };
}

pub(crate) use shared_ring_setters;
