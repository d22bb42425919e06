//! Shared-memory segments under the model: there are none. The type has no values, so the code
//! above that would use a mapping compiles, and every way to get one fails.

use std::os::fd::{BorrowedFd, OwnedFd};

use super::unsupported;
use crate::error::Result;
use crate::layout::SegmentHeader;

/// A mapped segment: under the model, never.
pub(crate) enum SharedMemory {}

impl SharedMemory {
    pub(crate) fn create(
        _name: &str,
        _len: usize,
        _unlink_on_drop: bool,
        _group: Option<u32>,
    ) -> Result<SharedMemory> {
        Err(unsupported())
    }

    pub(crate) fn create_memfd(_len: usize) -> Result<(SharedMemory, OwnedFd)> {
        Err(unsupported())
    }

    pub(crate) fn from_fd(_fd: BorrowedFd<'_>) -> Result<SharedMemory> {
        Err(unsupported())
    }

    pub(crate) fn open(_name: &str, _access: &crate::options::Access) -> Result<SharedMemory> {
        Err(unsupported())
    }

    pub(crate) fn header(&self) -> &SegmentHeader {
        match *self {}
    }

    pub(crate) fn len(&self) -> usize {
        match *self {}
    }
}

/// A shared map of plain bytes: under the model, never.
pub(crate) enum SharedBytes {}

impl SharedBytes {
    pub(crate) fn create_memfd(_len: usize) -> Result<(SharedBytes, OwnedFd)> {
        Err(unsupported())
    }

    pub(crate) fn from_fd(_fd: BorrowedFd<'_>, _len: usize) -> Result<SharedBytes> {
        Err(unsupported())
    }

    pub(crate) fn bytes(&self) -> &[crate::sync::AtomicU8] {
        match *self {}
    }

    pub(crate) fn words(&self) -> &[crate::sync::AtomicU64] {
        match *self {}
    }

    pub(crate) fn as_ptr(&self) -> *mut u8 {
        match *self {}
    }
}

pub(crate) fn remove_segment(_name: &str) -> Result<()> {
    Err(unsupported())
}
