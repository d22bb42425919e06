//! What every call returns: a status code, and on failure a message for this thread
//! (`rp_last_error`). No panic crosses the boundary: one is caught and becomes `RP_STATUS_PANIC`.

use std::cell::RefCell;
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use ringport::Error;

/// The outcome of a call. Zero is success; the positive codes are the ordinary outcomes of a
/// ring (full, empty, a timeout, the peer gone), the negative ones errors.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RpStatus {
    /// Done.
    Ok = 0,
    /// A `try_` form found no room (or no free slot).
    Full = 1,
    /// A `try_` form found nothing to receive.
    Empty = 2,
    /// A `_timeout` form's time ran out.
    Timeout = 3,
    /// The peer detached or died, and nothing more can arrive (or be read).
    PeerGone = 4,
    /// The frame is larger than the buffer given: nothing was taken, the frame's length is in
    /// the length out-parameter; call again with a larger buffer.
    BufferTooSmall = 5,
    /// A null pointer, a string that is not UTF-8, or options that cannot make a ring.
    InvalidArgument = -1,
    /// A null, freed or made-up handle, or one of another type.
    InvalidHandle = -2,
    /// A grant (a reservation, or a received frame) is outstanding on this handle: commit,
    /// abort or release it first.
    GrantOutstanding = -3,
    /// Commit, abort or release with no grant outstanding.
    NoGrant = -4,
    /// A frame length outside what the ring takes (1 to its largest frame).
    InvalidLength = -5,
    /// Nothing of that name exists.
    NotFound = -6,
    /// The name is taken.
    AlreadyExists = -7,
    /// The role (producer or consumer) is held by a live process.
    RoleTaken = -8,
    /// Not a ringport ring of this kind and version.
    NotARing = -9,
    /// A value read from shared memory broke the ring's invariants.
    Corrupted = -10,
    /// The segment's owner or mode, or the peer's credentials, are not trusted.
    Permission = -11,
    /// The file system has no room for the segment.
    NoSpace = -12,
    /// A system limit (System V sizes, huge pages, the locked-memory limit, message size).
    Limit = -13,
    /// The channel's peer broke the protocol.
    Protocol = -14,
    /// A system call failed.
    Os = -15,
    /// Not supported here.
    Unsupported = -16,
    /// A bug in ringport: a panic, caught at the boundary.
    Panic = -17,
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Records `message` as this thread's last error and returns `status`.
#[cold]
pub fn fail(status: RpStatus, message: &str) -> RpStatus {
    let text = CString::new(message.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|last| *last.borrow_mut() = text);
    status
}

/// The status of `error`, with its message recorded; the ordinary outcomes (full, empty, a
/// timeout) record none: a busy `try_` loop meets them on every poll, and a message each time
/// (formatted, allocated) cost such a loop more than the call itself.
#[inline]
pub fn from_error(error: Error) -> RpStatus {
    match error {
        Error::Full => RpStatus::Full,
        Error::Empty => RpStatus::Empty,
        Error::Timeout => RpStatus::Timeout,
        _ => error_status(error),
    }
}

#[cold]
fn error_status(error: Error) -> RpStatus {
    let status = match error {
        Error::PeerGone(_) => RpStatus::PeerGone,
        Error::InvalidName { .. } | Error::InvalidConfig(_) => RpStatus::InvalidArgument,
        Error::NotFound => RpStatus::NotFound,
        Error::AlreadyExists | Error::KeyInUse { .. } => RpStatus::AlreadyExists,
        Error::RoleTaken { .. } => RpStatus::RoleTaken,
        Error::BadMagic { .. }
        | Error::VersionMismatch { .. }
        | Error::WrongKind { .. }
        | Error::TooSmall { .. }
        | Error::Unsealed => RpStatus::NotARing,
        Error::InvalidLength { .. } => RpStatus::InvalidLength,
        Error::Corrupted { .. } => RpStatus::Corrupted,
        Error::NotOwner { .. }
        | Error::SharedWritable { .. }
        | Error::PeerRefused { .. }
        | Error::Refused => RpStatus::Permission,
        Error::NoSpace { .. } => RpStatus::NoSpace,
        Error::SystemLimit { .. }
        | Error::NoHugePages { .. }
        | Error::MemoryLock { .. }
        | Error::MessageTooLong { .. } => RpStatus::Limit,
        Error::Protocol(_) => RpStatus::Protocol,
        Error::Unsupported(_) => RpStatus::Unsupported,
        // A system call failed (`Error::Os`), or a variant a later version adds.
        _ => RpStatus::Os,
    };
    fail(status, &error.to_string())
}

/// The status of a call's result.
#[inline]
pub fn status_of(result: Result<(), RpStatus>) -> RpStatus {
    match result {
        Ok(()) => RpStatus::Ok,
        Err(status) => status,
    }
}

/// Runs a call's body; a panic becomes `RP_STATUS_PANIC` with its message.
#[inline(always)]
pub fn guard(body: impl FnOnce() -> Result<(), RpStatus>) -> RpStatus {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(result) => status_of(result),
        Err(payload) => panicked(payload),
    }
}

/// A caught panic's status and message: out of line, so that each call's fast path carries
/// none of its code (nor the registers it needs).
#[cold]
#[inline(never)]
fn panicked(payload: Box<dyn std::any::Any + Send>) -> RpStatus {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_owned());
    fail(RpStatus::Panic, &format!("ringport panicked: {what}"))
}

/// Turns a library result into a status result.
pub trait OrStatus<T> {
    fn or_status(self) -> Result<T, RpStatus>;
}

impl<T> OrStatus<T> for ringport::Result<T> {
    #[inline]
    fn or_status(self) -> Result<T, RpStatus> {
        self.map_err(from_error)
    }
}

/// The message of this thread's last failed call (an empty string if none failed yet). The
/// pointer is valid until this thread's next ringport call.
#[no_mangle]
pub extern "C" fn rp_last_error() -> *const c_char {
    LAST_ERROR.with(|last| last.borrow().as_ptr())
}

/// The name of a status code as the header spells it ("RP_STATUS_FULL"), as a static string;
/// "RP_STATUS_UNKNOWN" for a number that is no status.
#[no_mangle]
pub extern "C" fn rp_status_name(status: i32) -> *const c_char {
    // Any integer is taken (C may pass one that is no status): looked up, not converted.
    NAMES
        .iter()
        .find(|(s, _)| *s as i32 == status)
        .map_or(c"RP_STATUS_UNKNOWN", |(_, name)| name)
        .as_ptr()
}

/// Every status and its name in the header.
const NAMES: [(RpStatus, &std::ffi::CStr); 23] = [
    (RpStatus::Ok, c"RP_STATUS_OK"),
    (RpStatus::Full, c"RP_STATUS_FULL"),
    (RpStatus::Empty, c"RP_STATUS_EMPTY"),
    (RpStatus::Timeout, c"RP_STATUS_TIMEOUT"),
    (RpStatus::PeerGone, c"RP_STATUS_PEER_GONE"),
    (RpStatus::BufferTooSmall, c"RP_STATUS_BUFFER_TOO_SMALL"),
    (RpStatus::InvalidArgument, c"RP_STATUS_INVALID_ARGUMENT"),
    (RpStatus::InvalidHandle, c"RP_STATUS_INVALID_HANDLE"),
    (RpStatus::GrantOutstanding, c"RP_STATUS_GRANT_OUTSTANDING"),
    (RpStatus::NoGrant, c"RP_STATUS_NO_GRANT"),
    (RpStatus::InvalidLength, c"RP_STATUS_INVALID_LENGTH"),
    (RpStatus::NotFound, c"RP_STATUS_NOT_FOUND"),
    (RpStatus::AlreadyExists, c"RP_STATUS_ALREADY_EXISTS"),
    (RpStatus::RoleTaken, c"RP_STATUS_ROLE_TAKEN"),
    (RpStatus::NotARing, c"RP_STATUS_NOT_A_RING"),
    (RpStatus::Corrupted, c"RP_STATUS_CORRUPTED"),
    (RpStatus::Permission, c"RP_STATUS_PERMISSION"),
    (RpStatus::NoSpace, c"RP_STATUS_NO_SPACE"),
    (RpStatus::Limit, c"RP_STATUS_LIMIT"),
    (RpStatus::Protocol, c"RP_STATUS_PROTOCOL"),
    (RpStatus::Os, c"RP_STATUS_OS"),
    (RpStatus::Unsupported, c"RP_STATUS_UNSUPPORTED"),
    (RpStatus::Panic, c"RP_STATUS_PANIC"),
];
