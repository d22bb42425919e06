//! Shared by the integration tests: unique segment names that are removed even when a test fails
//! and raw access to a segment (to corrupt it), both from `ringport-measure`, and child processes
//! made by re-running this binary.
#![allow(dead_code)]

use std::process::{Child, Command};

pub mod harness_cases;

#[allow(unused_imports)]
pub use ringport_measure::shm::{shm_entries, SharedMap};

/// A unique segment name, unlinked when dropped (also while unwinding from a failed assertion).
pub type ShmName = ringport_measure::shm::SegmentName;

/// Layout offsets of the segment header (see src/layout.rs), for tests that corrupt it.
pub mod offsets {
    pub const MAGIC: usize = 0;
    pub const VERSION: usize = 8;
    pub const KIND: usize = 12;
    pub const CAPACITY: usize = 24;
    pub const PRODUCER_POS: usize = 256;
    pub const CONSUMER_POS: usize = 384;
    pub const LEDGER_RECEIVED: usize = 768;
    pub const DATA: usize = 1152;
}

/// The environment variable that tells a re-run test binary which child role to play.
pub const CHILD_ENV: &str = "RINGPORT_TEST_CHILD";

/// The command that runs the `#[ignore]`d test `test_name` of this binary in a child process,
/// with `arg` in [`CHILD_ENV`]. The child test reads it with [`child_arg`].
pub fn child_command(test_name: &str, arg: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--ignored",
            "--exact",
            test_name,
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, arg);
    command
}

/// Runs the `#[ignore]`d test `test_name` of this binary in a child process (see
/// [`child_command`]).
pub fn spawn_child(test_name: &str, arg: &str) -> Child {
    child_command(test_name, arg)
        .spawn()
        .expect("spawn child test process")
}

/// As [`spawn_child`], with the child's standard output piped to the parent (children report
/// results on lines starting with `RESULT `; see [`result_lines`]).
pub fn spawn_child_piped(test_name: &str, arg: &str) -> Child {
    child_command(test_name, arg)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn child test process")
}

/// Waits for a child made by [`spawn_child_piped`], asserts that it succeeded, and returns the
/// text after `RESULT ` on each of its result lines.
pub fn result_lines(guard: ChildGuard) -> Vec<String> {
    let mut guard = guard;
    let child = guard.0.take().unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "child failed: {}", output.status);
    String::from_utf8_lossy(&output.stdout)
        .lines()
        // Not `strip_prefix`: the harness writes "test name ... " before the first line.
        .filter_map(|l| l.find("RESULT ").map(|i| l[i + 7..].to_owned()))
        .collect()
}

/// As [`spawn_child_piped`], then waits until the child prints a line ending in "ready".
pub fn spawn_child_ready(test_name: &str, arg: &str) -> ChildGuard {
    let mut child = spawn_child_piped(test_name, arg);
    let stdout = child.stdout.take().unwrap();
    let guard = ChildGuard(Some(child));
    let mut reader = std::io::BufReader::new(stdout);
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            std::io::BufRead::read_line(&mut reader, &mut line).unwrap() > 0,
            "child died before it was ready"
        );
        // The harness prints "test name ... " before the child's own output.
        if line.trim_end().ends_with("ready") {
            return guard;
        }
    }
}

/// Sends SIGKILL to a child, and reaps it (a zombie would still look alive).
pub fn kill9(child: &mut ChildGuard) {
    let mut process = child.0.take().unwrap();
    process.kill().unwrap();
    process.wait().unwrap();
}

/// The argument of a child process, or None when the test runs on its own (then it does nothing).
pub fn child_arg() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}

/// Kills a child on drop unless it was waited for, so that a failing test leaves no process.
pub struct ChildGuard(pub Option<Child>);

impl ChildGuard {
    pub fn wait_success(mut self) {
        let status = self.0.take().unwrap().wait().unwrap();
        assert!(status.success(), "child failed: {status}");
    }

    pub fn id(&self) -> u32 {
        self.0.as_ref().unwrap().id()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The calling thread's kernel id, for [`wait_until_asleep_in_futex`].
pub fn thread_id() -> i32 {
    nix::unistd::gettid().as_raw()
}

/// Whether thread `tid` of this process is asleep in a shared `FUTEX_WAIT`: what a blocked
/// ringport endpoint does, and what a spinning one never does. (The standard library's and
/// glibc's own locks wait on private futexes, so they do not count.)
pub fn asleep_in_futex(tid: i32) -> bool {
    let task = format!("/proc/self/task/{tid}");
    let state = std::fs::read_to_string(format!("{task}/stat")).unwrap_or_default();
    let state = state
        .rfind(')')
        .and_then(|i| state[i + 1..].split_whitespace().next().map(str::to_owned));
    // "number arg1 arg2 ...": for futex, arg1 is the word's address and arg2 the operation.
    let syscall = std::fs::read_to_string(format!("{task}/syscall")).unwrap_or_default();
    let fields: Vec<&str> = syscall.split_whitespace().collect();
    state.as_deref() == Some("S")
        && fields.first() == Some(&libc::SYS_futex.to_string().as_str())
        && fields
            .get(2)
            .and_then(|op| i64::from_str_radix(op.trim_start_matches("0x"), 16).ok())
            == Some(i64::from(libc::FUTEX_WAIT))
}

/// Waits until thread `tid` sleeps in the futex (it has announced itself to its peer and is
/// waiting to be woken), so that a test can then wake it knowing it slept.
///
/// # Panics
/// If it does not within a minute: the thread is stuck elsewhere.
pub fn wait_until_asleep_in_futex(tid: i32) {
    let start = std::time::Instant::now();
    while !asleep_in_futex(tid) {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "thread {tid} never went to sleep in the futex"
        );
        std::thread::sleep(std::time::Duration::from_micros(100));
    }
}
