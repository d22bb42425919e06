//! Shared by the benches: CPU pinning and medians.
#![allow(dead_code)]

/// Online cores. Not `available_parallelism`: it reads this process's affinity mask, which a
/// child inherits from its pinned parent (it would then see one core and pin itself beside the
/// parent).
pub fn online_cores() -> usize {
    // SAFETY: sysconf takes a plain integer.
    usize::try_from(unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) })
        .unwrap_or(1)
        .max(1)
}

/// Pins the calling thread to `core` (modulo the online cores).
pub fn pin_to(core: usize) {
    let cores = online_cores();
    // SAFETY: a zeroed cpu_set_t is valid; sched_setaffinity reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core % cores, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set);
    }
}

/// The median of `v`.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
