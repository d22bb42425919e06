//! What an endpoint learns of its predecessor when it attaches: the frame a consumer that died
//! may have had in hand, the last frame a previous producer committed. Found by the cursors' `resume`
//! (from the ledger and the frames still in the ring) and copied out here, before this endpoint
//! writes anything, so the bytes are the predecessor's.

use crate::frame::HEADER_LEN;
use crate::os::RingMemory;

/// A frame found in the ring when an endpoint attached, copied out of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredFrame {
    /// Its position in the ring's stream: the bytes committed before it.
    pub position: u64,
    /// Its payload.
    pub bytes: Vec<u8>,
}

impl RecoveredFrame {
    /// Copies the frame of `len` bytes at ring `position` (validated by the caller: published,
    /// inside the data area, written by nobody now).
    pub(super) fn copy(region: &RingMemory, capacity: u64, position: u64, len: usize) -> Self {
        let offset = (position & (capacity - 1)) as usize + HEADER_LEN;
        // SAFETY: the caller decoded the frame's header at `position` (bounds checked against
        // the capacity); no producer writes it now: it is behind the consumer's published
        // position plus the capacity, and we have not written yet if we are the producer.
        let bytes = unsafe { region.slice(offset, len) }.to_vec();
        RecoveredFrame { position, bytes }
    }
}

/// How a consumer came to its role when it took it over from one that died (see
/// [`Consumer::takeover`](super::Consumer::takeover)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Takeover {
    /// The process that held the role and died.
    pub pid: u32,
    /// The frame it may have had in hand when it died: the last one it received, unless it is
    /// known to have released it (it went on to look for another frame, or its release handed
    /// the space back to the producer). `None` if there is no such frame. The dead consumer
    /// released every frame before it; it may or may not have finished with this one. This
    /// consumer starts after it, or at it if it is redelivered.
    pub in_hand: Option<RecoveredFrame>,
    /// Whether [`in_hand`](Self::in_hand) is delivered again, as this consumer's first frame
    /// (see [`SpscOptions::redeliver_in_hand`](crate::SpscOptions::redeliver_in_hand)).
    pub redelivered: bool,
}
