//! What C passes in: pointers checked for null, strings for UTF-8, lengths with their buffers.
//! The one place where the crate turns C pointers into references.

use std::ffi::{c_char, CStr};
use std::time::Duration;

use crate::status::{fail, RpStatus};

/// The string at `ptr` (NUL-terminated, UTF-8).
///
/// # Safety
/// `ptr` is null or points to a NUL-terminated string that outlives the call.
pub unsafe fn string<'a>(ptr: *const c_char, what: &str) -> Result<&'a str, RpStatus> {
    if ptr.is_null() {
        return Err(fail(RpStatus::InvalidArgument, &format!("{what} is null")));
    }
    // SAFETY: non-null, and NUL-terminated by the caller's contract.
    let text = unsafe { CStr::from_ptr(ptr) };
    text.to_str()
        .map_err(|_| fail(RpStatus::InvalidArgument, &format!("{what} is not UTF-8")))
}

/// The object an out-parameter points to.
///
/// # Safety
/// `ptr` is null or valid for writes of a `T` for the call.
#[inline(always)]
pub unsafe fn out<'a, T>(ptr: *mut T, what: &'static str) -> Result<&'a mut T, RpStatus> {
    if ptr.is_null() {
        return Err(null(what));
    }
    // SAFETY: non-null, and valid for writes by the caller's contract.
    Ok(unsafe { &mut *ptr })
}

/// Out of line, so that a hot call's check is a test and a branch (an inline error path had
/// the compiler set up its message before the test, on every call).
#[cold]
#[inline(never)]
fn null(what: &'static str) -> RpStatus {
    fail(RpStatus::InvalidArgument, &format!("{what} is null"))
}

/// The `len` values at `ptr` (which may be null when `len` is 0).
///
/// # Safety
/// `ptr` is null or valid for reads of `len` values of `T` for the call.
#[inline]
pub unsafe fn slice<'a, T>(ptr: *const T, len: usize) -> Result<&'a [T], RpStatus> {
    if ptr.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(fail(
                RpStatus::InvalidArgument,
                "a null buffer with a length",
            ))
        };
    }
    // SAFETY: non-null, valid for `len` values by the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// The `len` bytes at `ptr` (which may be null when `len` is 0).
///
/// # Safety
/// As [`slice`].
#[inline]
pub unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> Result<&'a [u8], RpStatus> {
    // SAFETY: forwarded.
    unsafe { slice(ptr, len) }
}

/// The `len` bytes at `ptr` to write (which may be null when `len` is 0).
///
/// # Safety
/// `ptr` is null or valid for writes of `len` bytes for the call.
#[inline]
pub unsafe fn bytes_mut<'a>(ptr: *mut u8, len: usize) -> Result<&'a mut [u8], RpStatus> {
    if ptr.is_null() {
        return if len == 0 {
            Ok(&mut [])
        } else {
            Err(fail(
                RpStatus::InvalidArgument,
                "a null buffer with a length",
            ))
        };
    }
    // SAFETY: non-null, valid for writes of `len` bytes by the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
}

/// A timeout in nanoseconds.
#[inline]
pub fn nanos(ns: u64) -> Duration {
    Duration::from_nanos(ns)
}
