//! A channel's handshake: whom a channel accepts, and the hellos each side sends and checks
//! (protocol version, and the largest message the sender of the hello accepts). A listener that
//! does not accept the peer's credentials answers with a refusal instead.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, OwnedFd};
use std::time::Instant;

use super::wire;
use crate::error::{Error, Result, Role};
use crate::os::seqpacket::{self, Packet};
use crate::os::Credentials;

/// Whose connections a channel accepts, judged by the peer's credentials (`SO_PEERCRED`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PeerFilter {
    /// Only processes of our effective uid.
    #[default]
    SameUser,
    /// Processes of our uid or of one of these.
    Users(Vec<u32>),
    /// Anyone who can reach the socket (its file mode or namespace is then the only guard).
    AnyUser,
}

impl PeerFilter {
    /// Whether a peer with these credentials may have a channel with this process.
    pub(super) fn accepts(&self, peer: &Credentials) -> bool {
        self.admits(peer.uid, nix::unistd::geteuid().as_raw())
    }

    fn admits(&self, uid: u32, ours: u32) -> bool {
        match self {
            PeerFilter::SameUser => uid == ours,
            PeerFilter::Users(uids) => uid == ours || uids.contains(&uid),
            PeerFilter::AnyUser => true,
        }
    }
}

/// Sends our hello, then reads and checks the peer's; returns the largest message the peer
/// accepts.
pub(super) fn shake_hands(fd: &OwnedFd, max_message: u32, deadline: Instant) -> Result<usize> {
    // A listener that refuses us answers and closes at once, so our hello may fail with
    // PeerGone while its answer waits to be read: read it before giving up.
    let sent = match send_hello(fd, max_message, deadline) {
        Err(e) if !matches!(e, Error::PeerGone(_)) => return Err(e),
        sent => sent,
    };
    match (sent, read_hello(fd, deadline)) {
        (Err(e), Err(Error::PeerGone(_))) => Err(e),
        (_, r) => r,
    }
}

/// Sends our hello: the protocol version, and the largest message we accept.
pub(super) fn send_hello(fd: &OwnedFd, max_message: u32, deadline: Instant) -> Result<()> {
    let prefix = wire::prefix(wire::HELLO, wire::PROTOCOL_VERSION);
    let payload = wire::hello_payload(max_message);
    let parts = [IoSlice::new(&prefix), IoSlice::new(&payload)];
    seqpacket::send(fd.as_fd(), &parts, None, Some(deadline))
}

/// Reads the peer's hello and checks it; returns the largest message the peer accepts.
pub(super) fn read_hello(fd: &OwnedFd, deadline: Instant) -> Result<usize> {
    let mut prefix = [0u8; wire::PREFIX_LEN];
    let mut payload = [0u8; wire::HELLO_LEN];
    let mut bufs = [IoSliceMut::new(&mut prefix), IoSliceMut::new(&mut payload)];
    let len = match seqpacket::recv(fd.as_fd(), &mut bufs, Some(deadline))? {
        Packet::Data { len, passed: None } => len,
        Packet::Data { .. } => return Err(Error::Protocol("a descriptor in the handshake")),
        Packet::Closed => return Err(Error::PeerGone(Role::Producer)),
    };
    check_hello(len, &prefix, &payload)
}

/// Tells a connecting process that its credentials are not accepted (the listener then closes
/// the connection). Best effort: the peer may already be gone.
pub(super) fn refuse(fd: &OwnedFd) {
    let prefix = wire::prefix(wire::REFUSED, 0);
    let _ = seqpacket::try_send(fd.as_fd(), &[IoSlice::new(&prefix)], None);
}

/// Checks a hello of `len` bytes, read as its prefix and payload; returns the largest message
/// its sender accepts.
fn check_hello(
    len: usize,
    prefix: &[u8; wire::PREFIX_LEN],
    payload: &[u8; wire::HELLO_LEN],
) -> Result<usize> {
    let (kind, version) = wire::parse(prefix);
    if kind == wire::REFUSED {
        return Err(Error::Refused);
    }
    if kind != wire::HELLO
        || len != wire::PREFIX_LEN + wire::HELLO_LEN
        || payload[..8] != wire::MAGIC
    {
        return Err(Error::Protocol("not a ringport channel hello"));
    }
    if version != wire::PROTOCOL_VERSION {
        return Err(Error::VersionMismatch {
            found: version,
            expected: wire::PROTOCOL_VERSION,
        });
    }
    Ok(u32::from_le_bytes(payload[8..12].try_into().expect("4 bytes")) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEN: usize = wire::PREFIX_LEN + wire::HELLO_LEN;

    fn hello(version: u32, max: u32) -> ([u8; wire::PREFIX_LEN], [u8; wire::HELLO_LEN]) {
        (wire::prefix(wire::HELLO, version), wire::hello_payload(max))
    }

    #[test]
    fn a_hello_tells_the_peers_limit_and_anything_else_is_refused_or_a_breach() {
        let (prefix, payload) = hello(wire::PROTOCOL_VERSION, 4096);
        assert_eq!(check_hello(LEN, &prefix, &payload).unwrap(), 4096);
        assert!(matches!(
            check_hello(wire::PREFIX_LEN, &wire::prefix(wire::REFUSED, 0), &payload),
            Err(Error::Refused)
        ));
        let (old, payload) = hello(wire::PROTOCOL_VERSION + 1, 1);
        assert!(matches!(
            check_hello(LEN, &old, &payload),
            Err(Error::VersionMismatch { .. })
        ));
        let mut bad_magic = payload;
        bad_magic[0] ^= 1;
        for (len, prefix, payload) in [
            (LEN - 1, prefix, payload),
            (
                LEN,
                wire::prefix(wire::WHOLE, wire::PROTOCOL_VERSION),
                payload,
            ),
            (LEN, prefix, bad_magic),
        ] {
            assert!(matches!(
                check_hello(len, &prefix, &payload),
                Err(Error::Protocol(_))
            ));
        }
    }

    #[test]
    fn filters_admit_our_uid_the_listed_ones_or_anyone() {
        assert!(PeerFilter::SameUser.admits(1000, 1000));
        assert!(!PeerFilter::SameUser.admits(0, 1000));
        let listed = PeerFilter::Users(vec![33, 34]);
        assert!(listed.admits(1000, 1000) && listed.admits(34, 1000));
        assert!(!listed.admits(35, 1000));
        assert!(PeerFilter::AnyUser.admits(65534, 0));
    }
}
