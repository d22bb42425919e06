//! Pinning threads to cores.

use std::io;

/// Cores online (not this process's affinity mask, which a pinned parent passes to its child).
#[must_use]
pub fn online_cores() -> usize {
    // SAFETY: sysconf takes a plain integer and has no other effect.
    usize::try_from(unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) })
        .unwrap_or(1)
        .max(1)
}

/// Pins the calling thread to `core`.
///
/// # Errors
/// If the core number is out of range or the kernel refuses.
pub fn pin_to(core: usize) -> io::Result<()> {
    // SAFETY: an all-zero cpu_set_t is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    if core >= 8 * std::mem::size_of::<libc::cpu_set_t>() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "core number too large",
        ));
    }
    // SAFETY: `core` is below the set's capacity (checked above).
    unsafe { libc::CPU_SET(core, &mut set) };
    // SAFETY: the set lives across the call, which only reads it.
    if unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Pins the calling thread to `core` modulo the online cores (on a one-core machine every
/// thread shares core 0), for benches that know no other answer to a refusal than to stop.
///
/// # Panics
/// If the kernel refuses.
pub fn pin_to_wrapping(core: usize) {
    pin_to(core % online_cores()).expect("pinning to a core");
}
