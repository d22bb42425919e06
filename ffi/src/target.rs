//! A fuzzing harness's target in C: the next case in place, its verdict, the coverage map.
//! The driver (Rust, or `ringport harness -- TARGET`) starts the target with its rings in the
//! environment; a target that crashes mid-case is blamed for that case alone.

use ringport::harness::{Case, CoverageMap, Target};

use crate::common::Holder;
use crate::cptr::{bytes, out};
use crate::handles::{self, Handled, Kind};
use crate::status::{fail, guard, OrStatus, RpStatus};

/// A harness target handle.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RpTarget {
    /// The id (0: no handle).
    pub id: u64,
}

/// The target and the case it holds.
pub type TargetHolder = Holder<Target, Case<'static>>;

impl Handled for TargetHolder {
    const KIND: Kind = Kind::Target;
    const NAME: &'static str = "harness target";
}

/// Takes the rings the driver passed in the environment (`RINGPORT_HARNESS`).
///
/// # Safety
/// `out_target` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn rp_target_from_env(out_target: *mut RpTarget) -> RpStatus {
    guard(|| {
        // SAFETY: valid for a write, by the caller's contract.
        let out = unsafe { out(out_target, "out_target")? };
        out.id = handles::insert(TargetHolder::new(Target::from_env().or_status()?))?;
        Ok(())
    })
}

/// Waits for the next case: its bytes, in place, valid until `rp_target_finish`, and its id.
/// `RP_STATUS_PEER_GONE` when the driver is done.
///
/// # Safety
/// The out-pointers valid for writes (`out_id` may be null).
#[no_mangle]
pub unsafe extern "C" fn rp_target_next_case(
    target: RpTarget,
    out_data: *mut *const u8,
    out_len: *mut usize,
    out_id: *mut u64,
) -> RpStatus {
    guard(|| {
        // SAFETY: valid for writes, by the caller's contract.
        let (data, len) = unsafe { (out(out_data, "out_data")?, out(out_len, "out_len")?) };
        handles::with::<TargetHolder, _>(target.id, |h| {
            let case = h.lend(|inner| inner.next_case().or_status())?;
            let bytes = case.data();
            *data = bytes.as_ptr();
            *len = bytes.len();
            // SAFETY: null or valid for a write, by the caller's contract.
            if let Some(id) = unsafe { out_id.as_mut() } {
                *id = case.id();
            }
            Ok(())
        })?
    })
}

/// The verdict of the case held: `len` bytes of result (may be 0) to the driver.
///
/// # Safety
/// `result` valid for reads of `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn rp_target_finish(
    target: RpTarget,
    result: *const u8,
    len: usize,
) -> RpStatus {
    guard(|| {
        // SAFETY: valid for `len` bytes, by the caller's contract.
        let result = unsafe { bytes(result, len)? };
        handles::with::<TargetHolder, _>(target.id, |h| {
            let Some(case) = h.grant.take() else {
                return Err(fail(
                    RpStatus::NoGrant,
                    "no case is held: call rp_target_next_case",
                ));
            };
            case.finish(result).or_status()
        })?
    })
}

/// The coverage map the driver shares, if it gave one: `*out_map` and `*out_len` (null and 0
/// if none). Its bytes stay valid while the handle lives; set them with plain stores.
///
/// # Safety
/// The out-pointers valid for writes.
#[no_mangle]
pub unsafe extern "C" fn rp_target_coverage(
    target: RpTarget,
    out_map: *mut *mut u8,
    out_len: *mut usize,
) -> RpStatus {
    guard(|| {
        // SAFETY: valid for writes, by the caller's contract.
        let (map, len) = unsafe { (out(out_map, "out_map")?, out(out_len, "out_len")?) };
        handles::with::<TargetHolder, _>(target.id, |h| {
            let coverage: Option<CoverageMap> = h.endpoint()?.coverage();
            (*map, *len) =
                coverage.map_or((std::ptr::null_mut(), 0), |c| (c.as_mut_ptr(), c.len()));
            Ok(())
        })?
    })
}

/// Frees the target handle (a case held gets no verdict: the driver times it out).
#[no_mangle]
pub extern "C" fn rp_target_free(target: RpTarget) -> RpStatus {
    guard(|| handles::remove::<TargetHolder>(target.id).map(drop))
}
