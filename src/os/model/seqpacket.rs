//! Unix sockets under the model: there are none. Making or reaching one fails, so the calls
//! that would use one can never be reached.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::time::Instant;

use super::unsupported;
use crate::error::Result;
use crate::os::Credentials;

/// One packet received (as the Linux implementation's). The channel code matches on it; the
/// model never makes one.
#[derive(Debug)]
#[allow(dead_code)]
pub(crate) enum Packet {
    Data { len: usize, passed: Option<OwnedFd> },
    Closed,
}

pub(crate) fn listen(_path: &str) -> Result<OwnedFd> {
    Err(unsupported())
}

pub(crate) fn accept(_listener: BorrowedFd<'_>, _deadline: Option<Instant>) -> Result<OwnedFd> {
    Err(unsupported())
}

pub(crate) fn connect(_path: &str) -> Result<OwnedFd> {
    Err(unsupported())
}

pub(crate) fn pair() -> Result<(OwnedFd, OwnedFd)> {
    Err(unsupported())
}

pub(crate) fn peer_credentials(_fd: BorrowedFd<'_>) -> Result<Credentials> {
    Err(unsupported())
}

pub(crate) fn try_send(
    _fd: BorrowedFd<'_>,
    _parts: &[IoSlice<'_>],
    _passing: Option<BorrowedFd<'_>>,
) -> Result<bool> {
    Err(unsupported())
}

pub(crate) fn send(
    _fd: BorrowedFd<'_>,
    _parts: &[IoSlice<'_>],
    _passing: Option<BorrowedFd<'_>>,
    _deadline: Option<Instant>,
) -> Result<()> {
    Err(unsupported())
}

pub(crate) fn recv(
    _fd: BorrowedFd<'_>,
    _bufs: &mut [IoSliceMut<'_>],
    _deadline: Option<Instant>,
) -> Result<Packet> {
    Err(unsupported())
}

pub(crate) fn shutdown_send(_fd: BorrowedFd<'_>) {}

pub(crate) fn peer_hung_up(_fd: BorrowedFd<'_>) -> bool {
    true
}
