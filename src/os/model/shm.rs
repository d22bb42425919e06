//! Shared-memory segments under the model: there are none. The type has no values, so the code
//! above that would use a mapping compiles, and every way to get one fails.

use std::os::fd::{BorrowedFd, OwnedFd};

use super::unsupported;
use crate::error::Result;
use crate::layout::SegmentHeader;
use crate::os::Location;

/// A mapped segment: under the model, never.
pub(crate) enum SharedMemory {}

/// What a new segment is to be (see the Linux layer's; the model makes none, so reads none).
#[derive(Debug, Clone, Copy)]
#[allow(dead_code)]
pub(crate) struct Creation {
    pub len: usize,
    pub remove_on_drop: bool,
    pub group: Option<u32>,
    pub huge_pages: bool,
}

impl SharedMemory {
    pub(crate) fn create(_location: &Location, _creation: &Creation) -> Result<SharedMemory> {
        Err(unsupported())
    }

    pub(crate) fn create_memfd(_len: usize, _huge: bool) -> Result<(SharedMemory, OwnedFd)> {
        Err(unsupported())
    }

    pub(crate) fn from_fd(_fd: BorrowedFd<'_>) -> Result<SharedMemory> {
        Err(unsupported())
    }

    pub(crate) fn open(
        _location: &Location,
        _access: &crate::options::Access,
    ) -> Result<SharedMemory> {
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

pub(crate) fn remove_segment(_location: &Location) -> Result<()> {
    Err(unsupported())
}

pub(crate) fn sysv_key(_path: &std::path::Path, _project: u8) -> Result<i32> {
    Err(unsupported())
}
