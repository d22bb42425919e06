//! `/dev/shm` under the model: there is none.

use std::collections::HashMap;

use super::unsupported;
use crate::error::Result;
use crate::os::FileFacts;
use crate::os::Location;

pub(crate) fn names() -> Result<Vec<String>> {
    Err(unsupported())
}

/// A segment opened to read: there are none to open.
pub(crate) struct SegmentFile(std::convert::Infallible);

impl SegmentFile {
    pub(crate) fn open(_location: &Location) -> Result<SegmentFile> {
        Err(unsupported())
    }

    pub(crate) fn facts(&self) -> FileFacts {
        match self.0 {}
    }

    pub(crate) fn read_at(&self, _offset: u64, _buf: &mut [u8]) -> Result<usize> {
        match self.0 {}
    }
}

pub(crate) fn head(_location: &Location, _len: usize) -> Result<(Vec<u8>, FileFacts, Option<u32>)> {
    Err(unsupported())
}

pub(crate) fn served_rings() -> Vec<Location> {
    Vec::new()
}

pub(crate) fn file_users(_path: &std::path::Path) -> Vec<u32> {
    Vec::new()
}

pub(crate) fn sysv_segments() -> Vec<(Location, u64)> {
    Vec::new()
}

pub(crate) fn users() -> (HashMap<String, Vec<u32>>, usize) {
    (HashMap::new(), 0)
}
