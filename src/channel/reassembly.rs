//! Putting a channel's messages back together from the pieces that travel (see `wire`): whole
//! messages, first chunks with the total length, further chunks, and cancels. No socket and no
//! ring: the receiver hands each piece over as it reads it, whichever path it came by.

use super::wire;
use crate::error::{Error, Result};

/// A piece of a message, as [`ChannelReceiver::recv_chunks`](super::ChannelReceiver::recv_chunks)
/// hands it over.
#[derive(Debug, Clone, Copy)]
pub struct Chunk<'a> {
    /// The bytes, borrowed in place: from the ring itself, or from the packet buffer.
    pub bytes: &'a [u8],
    /// Where they go in the message.
    pub offset: usize,
    /// The message's whole length.
    pub total: usize,
}

/// The message in progress, if a chunked one is.
#[derive(Debug, Default)]
pub(super) struct Reassembly {
    partial: Option<Partial>,
}

/// A chunked message in progress.
#[derive(Debug, Clone, Copy)]
struct Partial {
    total: usize,
    got: usize,
}

impl Reassembly {
    /// Takes one piece (its prefix's kind and value, and its payload) and hands what it holds
    /// of a message to `sink`; returns the message's length once the message is complete.
    ///
    /// # Errors
    /// [`Error::Protocol`] if the piece breaks the order of a message, or announces a message
    /// longer than `max_message` (the limit we told the peer).
    pub(super) fn piece(
        &mut self,
        kind: u8,
        value: u32,
        bytes: &[u8],
        max_message: usize,
        sink: &mut dyn FnMut(Chunk<'_>),
    ) -> Result<Option<usize>> {
        match kind {
            wire::WHOLE => {
                if self.partial.is_some() {
                    return Err(Error::Protocol("a whole message inside a chunked one"));
                }
                sink(Chunk {
                    bytes,
                    offset: 0,
                    total: bytes.len(),
                });
                Ok(Some(bytes.len()))
            }
            wire::FIRST => {
                let total = value as usize;
                if self.partial.is_some() {
                    return Err(Error::Protocol("a message begun inside another"));
                }
                if total > max_message || bytes.len() > total {
                    return Err(Error::Protocol("message length above the agreed limit"));
                }
                sink(Chunk {
                    bytes,
                    offset: 0,
                    total,
                });
                if bytes.len() == total {
                    return Ok(Some(total));
                }
                self.partial = Some(Partial {
                    total,
                    got: bytes.len(),
                });
                Ok(None)
            }
            wire::MORE => {
                let p = self
                    .partial
                    .as_mut()
                    .ok_or(Error::Protocol("a chunk with no message in progress"))?;
                if bytes.len() > p.total - p.got {
                    return Err(Error::Protocol("chunks longer than their message"));
                }
                sink(Chunk {
                    bytes,
                    offset: p.got,
                    total: p.total,
                });
                p.got += bytes.len();
                if p.got < p.total {
                    return Ok(None);
                }
                let total = p.total;
                self.partial = None;
                Ok(Some(total))
            }
            wire::CANCEL => {
                self.partial = None;
                Ok(None)
            }
            _ => Err(Error::Protocol("unknown message kind")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `pieces` through a reassembly; returns what each call returned and the chunks
    /// handed over, as (offset, total, bytes).
    #[allow(clippy::type_complexity)]
    fn feed(
        pieces: &[(u8, u32, &[u8])],
    ) -> (Vec<Result<Option<usize>>>, Vec<(usize, usize, Vec<u8>)>) {
        let mut reassembly = Reassembly::default();
        let mut chunks = Vec::new();
        let results = pieces
            .iter()
            .map(|&(kind, value, bytes)| {
                reassembly.piece(kind, value, bytes, 100, &mut |c: Chunk<'_>| {
                    chunks.push((c.offset, c.total, c.bytes.to_vec()));
                })
            })
            .collect();
        (results, chunks)
    }

    #[test]
    fn whole_messages_and_chunked_ones_come_out_whole_and_in_place() {
        let (results, chunks) = feed(&[
            (wire::WHOLE, 0, b"abc"),
            (wire::WHOLE, 0, b""),
            (wire::FIRST, 7, b"ab"),
            (wire::MORE, 0, b"cde"),
            (wire::MORE, 0, b"fg"),
            (wire::FIRST, 2, b"hi"),
        ]);
        let lengths: Vec<Option<usize>> = results.into_iter().map(Result::unwrap).collect();
        assert_eq!(lengths, [Some(3), Some(0), None, None, Some(7), Some(2)]);
        assert_eq!(chunks[3], (2, 7, b"cde".to_vec()));
        assert_eq!(chunks[4], (5, 7, b"fg".to_vec()));
    }

    #[test]
    fn a_cancel_drops_the_message_in_progress() {
        let (results, chunks) = feed(&[
            (wire::FIRST, 10, b"abcd"),
            (wire::CANCEL, 0, b""),
            (wire::FIRST, 4, b"wx"),
            (wire::MORE, 0, b"yz"),
        ]);
        assert_eq!(results[3].as_ref().unwrap(), &Some(4));
        // The next message starts again at offset 0: the receiver's cue to drop what it had.
        assert_eq!(chunks[1].0, 0);
    }

    #[test]
    fn pieces_out_of_order_or_over_the_limit_break_the_protocol() {
        for pieces in [
            &[(wire::FIRST, 10, &b"ab"[..]), (wire::WHOLE, 0, b"x")][..],
            &[(wire::FIRST, 10, b"ab"), (wire::FIRST, 10, b"ab")],
            &[(wire::MORE, 0, b"ab")],
            &[(wire::FIRST, 3, b"ab"), (wire::MORE, 0, b"cd")],
            &[(wire::FIRST, 101, b"ab")],
            &[(wire::FIRST, 1, b"ab")],
            &[(0x7F, 0, b"")],
        ] {
            let (results, _) = feed(pieces);
            assert!(
                matches!(results.last().unwrap(), Err(Error::Protocol(_))),
                "{pieces:?}"
            );
        }
    }
}
