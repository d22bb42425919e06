//! The model starts no process (see the Linux implementation).

use std::os::fd::BorrowedFd;
use std::process::{Child, Command};

use crate::error::Result;

/// Unsupported under the model.
pub(crate) fn spawn_inheriting(_command: &mut Command, _fds: &[BorrowedFd<'_>]) -> Result<Child> {
    Err(super::unsupported())
}

/// Unsupported under the model.
pub(crate) fn adopt_inherited(_fd: std::os::fd::RawFd) -> Result<std::os::fd::OwnedFd> {
    Err(super::unsupported())
}
