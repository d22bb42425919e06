//! Kernel crossings, counted: the system calls each mechanism makes per round trip and per
//! streamed message, in a pass of its own (never in the timed samples), with the kernel's
//! `raw_syscalls:sys_enter` tracepoint counted by `perf_event_open` on the bench's measuring
//! thread and on every thread of its peer. Where perf events or the tracepoint are refused (not
//! root, `kernel.perf_event_paranoid`, no tracefs), the reason is reported instead.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::BoxError;

/// `PERF_TYPE_TRACEPOINT`.
const PERF_TYPE_TRACEPOINT: u32 = 2;
/// `PERF_FLAG_FD_CLOEXEC`.
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
/// The `inherit` bit of the attribute flags: threads made later are counted too.
const INHERIT: u64 = 1 << 1;

/// `struct perf_event_attr` as of its first version (64 bytes), which every kernel takes.
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    kind: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
}

const _: () = assert!(std::mem::size_of::<PerfEventAttr>() == 64);

/// Where tracefs may already be mounted.
const TRACEFS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];
const SYS_ENTER: &str = "events/raw_syscalls/sys_enter/id";

/// The id of the `raw_syscalls:sys_enter` tracepoint: from a mounted tracefs, or (as root) from
/// one mounted for the moment on a directory of our own.
///
/// # Errors
/// Why it cannot be had.
pub fn tracepoint() -> Result<u64, String> {
    let parse = |text: String| text.trim().parse::<u64>().ok();
    for dir in TRACEFS {
        if let Some(id) = std::fs::read_to_string(format!("{dir}/{SYS_ENTER}"))
            .ok()
            .and_then(parse)
        {
            return Ok(id);
        }
    }
    let dir = std::env::temp_dir().join(format!("ringport-tracefs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("no tracefs, and none to mount: {e}"))?;
    let target = CString::new(dir.as_os_str().as_encoded_bytes()).map_err(|e| e.to_string())?;
    // SAFETY: valid C strings; no mount data.
    let mounted = unsafe {
        libc::mount(
            c"nodev".as_ptr(),
            target.as_ptr(),
            c"tracefs".as_ptr(),
            0,
            std::ptr::null(),
        )
    } == 0;
    let id = if mounted {
        let id = std::fs::read_to_string(dir.join(SYS_ENTER))
            .ok()
            .and_then(parse);
        // SAFETY: the mount made above.
        unsafe { libc::umount2(target.as_ptr(), 0) };
        id
    } else {
        None
    };
    let _ = std::fs::remove_dir(&dir);
    id.ok_or_else(|| {
        if mounted {
            "this kernel has no raw_syscalls tracepoint (CONFIG_FTRACE_SYSCALLS)".to_string()
        } else {
            format!(
                "no tracefs mounted, and mounting one was refused ({}): run as root",
                std::io::Error::last_os_error()
            )
        }
    })
}

/// A count of the system calls one thread (and the threads it makes) enters.
pub struct Counter(OwnedFd);

impl Counter {
    /// Counts thread `tid` (0: the calling thread) from now on.
    ///
    /// # Errors
    /// Why perf refused (the reason, with `kernel.perf_event_paranoid`).
    pub fn open(tracepoint: u64, tid: i32) -> Result<Counter, String> {
        let attr = PerfEventAttr {
            kind: PERF_TYPE_TRACEPOINT,
            size: 64,
            config: tracepoint,
            flags: INHERIT,
            ..PerfEventAttr::default()
        };
        // SAFETY: a valid attribute struct of the size it says; pid `tid`, any cpu, no group.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_perf_event_open,
                &raw const attr,
                tid,
                -1i32,
                -1i32,
                PERF_FLAG_FD_CLOEXEC,
            )
        };
        if fd < 0 {
            let paranoid =
                std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid").unwrap_or_default();
            return Err(format!(
                "perf_event_open refused: {} (kernel.perf_event_paranoid = {})",
                std::io::Error::last_os_error(),
                paranoid.trim()
            ));
        }
        // SAFETY: a new descriptor that nothing else owns.
        Ok(Counter(unsafe { OwnedFd::from_raw_fd(fd as i32) }))
    }

    /// System calls entered so far.
    pub fn read(&self) -> u64 {
        let mut count = [0u8; 8];
        // SAFETY: 8 bytes into a live buffer.
        let n = unsafe { libc::read(self.0.as_raw_fd(), count.as_mut_ptr().cast(), 8) };
        if n == 8 {
            u64::from_ne_bytes(count)
        } else {
            0
        }
    }
}

/// Counters on this thread and on every thread of process `peer`.
pub struct Counters(Vec<Counter>);

impl Counters {
    /// # Errors
    /// As [`Counter::open`], or if the peer's threads cannot be listed.
    pub fn attach(tracepoint: u64, peer: u32) -> Result<Counters, BoxError> {
        let mut counters = vec![Counter::open(tracepoint, 0)?];
        for task in std::fs::read_dir(format!("/proc/{peer}/task"))? {
            let tid: i32 = task?.file_name().to_string_lossy().parse()?;
            counters.push(Counter::open(tracepoint, tid)?);
        }
        Ok(Counters(counters))
    }

    /// Every count, this thread's last: the reads of the others are then not in it.
    pub fn before(&self) -> u64 {
        self.0.iter().rev().map(Counter::read).sum()
    }

    /// Every count, this thread's first: the reads of the others are then not in it.
    pub fn after(&self) -> u64 {
        self.0.iter().map(Counter::read).sum()
    }
}
