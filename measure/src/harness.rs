//! The baselines of the fuzzing-harness bench: the same driver protocol as ringport's harness
//! over a pipe pair, and an AFL++-style persistent forkserver. Neither uses ringport.
//!
//! - **Pipe driver** ([`PipeDriver`]): a case is a frame (`u32` length, `u64` id, the bytes)
//!   written to the target's standard input; the target reads exactly one frame (so that the
//!   frames behind it stay in the pipe for the next target), runs it and writes the id back to
//!   its standard output, a pipe of its own. A crash is that pipe's end-of-file; the case it
//!   names is the oldest unanswered one. The next target is a new process, started when a case
//!   needs it, as ringport's is.
//! - **AFL++-style** ([`AflStyle`]): as AFL++ 4 runs a persistent target with test cases in
//!   shared memory. The driver writes the case into a shared buffer (`u32` length, then the
//!   bytes, as `__AFL_SHM_FUZZ_ID`), writes 4 bytes to the control pipe, and reads the child's
//!   pid and then its `waitpid` status (4 bytes each) from the status pipe. The forkserver
//!   forks a child the first time and after a crash, and otherwise resumes the stopped child
//!   with SIGCONT; the child runs a case and stops itself with SIGSTOP. One case in flight.
//!
//! The targets are the bench program run again ([`pipe_target`], [`afl_forkserver`]).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};

use nix::sys::signal::{kill, raise, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

use crate::fds::{adopt_inherited, inheritable};
use crate::shm::SharedMap;

/// The first byte of a case that crashes the target (with `abort`).
pub const CRASH: u8 = 0xc5;

/// The work of a target on a case: crash if it says so, otherwise read a byte of each cache
/// line (an empty target, which still looks at its case).
pub fn run_case(case: &[u8]) {
    if case.first() == Some(&CRASH) {
        std::process::abort();
    }
    let sum = case.iter().step_by(64).fold(0u8, |s, &b| s ^ b);
    std::hint::black_box(sum);
}

/// Crashing targets must not write core files (a bench would write thousands).
///
/// # Panics
/// If the limit cannot be set.
pub fn no_core_dumps() {
    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0)
        .expect("setrlimit(RLIMIT_CORE)");
}

/// A harness under test: cases in, verdicts out in order.
pub trait HarnessUnderTest {
    /// How many cases may be in flight.
    fn max_in_flight(&self) -> usize;
    /// Sends a case.
    fn submit(&mut self, case: &[u8]);
    /// The verdict of the oldest case in flight: whether it crashed the target.
    fn verdict(&mut self) -> bool;
}

/// Frame header: `u32` length of the bytes, `u64` id.
const HEADER: usize = 12;

/// The pipe driver (see the module's documentation).
pub struct PipeDriver {
    command: Command,
    in_flight: usize,
    cases: File,
    /// The read end, which each target gets as its standard input.
    cases_for_target: OwnedFd,
    target: Option<(Child, File)>,
    pending: VecDeque<u64>,
    next_id: u64,
    frame: Vec<u8>,
}

impl PipeDriver {
    /// A driver of `command` (which must run [`pipe_target`]) with `in_flight` cases in flight.
    ///
    /// # Errors
    /// If the pipe cannot be made.
    pub fn new(command: Command, in_flight: usize) -> io::Result<PipeDriver> {
        let (read, write) = nix::unistd::pipe()?;
        Ok(PipeDriver {
            command,
            in_flight,
            cases: File::from(write),
            cases_for_target: read,
            target: None,
            pending: VecDeque::new(),
            next_id: 0,
            frame: Vec::new(),
        })
    }

    fn start(&mut self) -> io::Result<()> {
        let (results, theirs) = nix::unistd::pipe()?;
        let child = self
            .command
            .stdin(Stdio::from(self.cases_for_target.try_clone()?))
            .stdout(Stdio::from(theirs))
            .spawn()?;
        // The command holds the write end until the next spawn replaces it: drop it now, so
        // that the target's death is the pipe's end-of-file.
        self.command.stdout(Stdio::null()).stdin(Stdio::null());
        self.target = Some((child, File::from(results)));
        Ok(())
    }
}

impl HarnessUnderTest for PipeDriver {
    fn max_in_flight(&self) -> usize {
        self.in_flight
    }

    fn submit(&mut self, case: &[u8]) {
        if self.target.is_none() {
            self.start().expect("start the pipe target");
        }
        let id = self.next_id;
        self.next_id += 1;
        self.frame.clear();
        self.frame
            .extend_from_slice(&(case.len() as u32).to_le_bytes());
        self.frame.extend_from_slice(&id.to_le_bytes());
        self.frame.extend_from_slice(case);
        self.cases.write_all(&self.frame).expect("write a case");
        self.pending.push_back(id);
    }

    fn verdict(&mut self) -> bool {
        let oldest = self.pending.pop_front().expect("a case in flight");
        if self.target.is_none() {
            self.start().expect("start the pipe target");
        }
        let (child, results) = self.target.as_mut().expect("started");
        let mut id = [0u8; 8];
        match results.read_exact(&mut id) {
            Ok(()) => {
                assert_eq!(u64::from_le_bytes(id), oldest, "answers in order");
                false
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                let status = child.wait().expect("reap the pipe target");
                assert_eq!(status.signal(), Some(libc::SIGABRT), "a crash");
                self.target = None;
                true
            }
            Err(e) => panic!("read a result: {e}"),
        }
    }
}

impl Drop for PipeDriver {
    fn drop(&mut self) {
        if let Some((mut child, _)) = self.target.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The pipe driver's target: frames from standard input, ids to standard output, until
/// end-of-file. Never returns.
pub fn pipe_target() -> ! {
    no_core_dumps();
    let mut cases = File::from(io::stdin().as_fd().try_clone_to_owned().expect("stdin"));
    let mut results = File::from(io::stdout().as_fd().try_clone_to_owned().expect("stdout"));
    let mut header = [0u8; HEADER];
    let mut case = Vec::new();
    loop {
        if cases.read_exact(&mut header).is_err() {
            std::process::exit(0);
        }
        let len = u32::from_le_bytes(header[..4].try_into().unwrap()) as usize;
        case.resize(len, 0);
        cases.read_exact(&mut case).expect("a case's bytes");
        run_case(&case);
        if results.write_all(&header[4..]).is_err() {
            std::process::exit(0);
        }
    }
}

/// The environment of the AFL++-style forkserver: `CONTROL,STATUS,BUFFER` descriptors.
pub const AFL_ENV: &str = "RINGPORT_BENCH_AFL_FDS";

/// The AFL++-style driver (see the module's documentation).
pub struct AflStyle {
    server: Child,
    control: File,
    status: File,
    buffer: SharedMap,
    /// The child the server last reported (a stopped child outlives a killed server otherwise).
    child: Option<Pid>,
}

impl AflStyle {
    /// Starts `command` (which must run [`afl_forkserver`]) with a case buffer of `max_case`
    /// bytes.
    ///
    /// # Errors
    /// If the pipes, the buffer or the process cannot be made.
    pub fn new(mut command: Command, max_case: usize) -> io::Result<AflStyle> {
        let (control_r, control_w) = nix::unistd::pipe()?;
        let (status_r, status_w) = nix::unistd::pipe()?;
        let buffer = SharedMap::create(8 + max_case)?;
        let theirs = [
            inheritable(control_r.as_fd())?,
            inheritable(status_w.as_fd())?,
            inheritable(buffer.fd())?,
        ];
        let server = command
            .env(
                AFL_ENV,
                format!(
                    "{},{},{}",
                    theirs[0].as_raw_fd(),
                    theirs[1].as_raw_fd(),
                    theirs[2].as_raw_fd()
                ),
            )
            .spawn()?;
        drop(theirs);
        Ok(AflStyle {
            server,
            control: File::from(control_w),
            status: File::from(status_r),
            buffer,
            child: None,
        })
    }

    fn word(&mut self) -> u32 {
        let mut word = [0u8; 4];
        self.status.read_exact(&mut word).expect("the forkserver");
        u32::from_le_bytes(word)
    }
}

impl HarnessUnderTest for AflStyle {
    fn max_in_flight(&self) -> usize {
        1
    }

    fn submit(&mut self, case: &[u8]) {
        self.buffer.write(8, case);
        self.buffer
            .u32_at(0)
            .store(case.len() as u32, std::sync::atomic::Ordering::Release);
        self.control.write_all(&[0; 4]).expect("the forkserver");
        self.child = Some(Pid::from_raw(self.word() as i32));
    }

    fn verdict(&mut self) -> bool {
        let status = ExitStatus::from_raw(self.word() as i32);
        if status.stopped_signal() == Some(libc::SIGSTOP) {
            return false;
        }
        assert_eq!(status.signal(), Some(libc::SIGABRT), "a crash");
        true
    }
}

impl Drop for AflStyle {
    fn drop(&mut self) {
        if let Some(child) = self.child {
            // It may be gone (a crash) or stopped; either way it must not be left.
            let _ = kill(child, Signal::SIGKILL);
        }
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// The AFL++-style forkserver and its persistent child, on the descriptors in [`AFL_ENV`].
/// Never returns.
///
/// # Panics
/// If it was not started by [`AflStyle::new`].
pub fn afl_forkserver() -> ! {
    no_core_dumps();
    let env = std::env::var(AFL_ENV).expect("started by AflStyle");
    let fds: Vec<i32> = env.split(',').map(|fd| fd.parse().unwrap()).collect();
    let mut control = File::from(adopt_inherited(fds[0]).unwrap());
    let mut status = File::from(adopt_inherited(fds[1]).unwrap());
    let buffer = SharedMap::map(adopt_inherited(fds[2]).unwrap()).unwrap();
    let mut child: Option<Pid> = None;
    let mut word = [0u8; 4];
    loop {
        if control.read_exact(&mut word).is_err() {
            std::process::exit(0);
        }
        let pid = match child {
            Some(pid) => {
                kill(pid, Signal::SIGCONT).expect("resume the child");
                pid
            }
            // SAFETY: the forkserver has one thread (it was just exec'd and starts none).
            None => match unsafe { fork() }.expect("fork") {
                ForkResult::Child => {
                    // SAFETY: prctl(PR_SET_PDEATHSIG) sets a flag of this process: a child
                    // stopped by SIGSTOP would otherwise outlive its killed server.
                    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
                    persistent_child(&buffer)
                }
                ForkResult::Parent { child } => child,
            },
        };
        child = Some(pid);
        status
            .write_all(&(pid.as_raw() as u32).to_le_bytes())
            .expect("the driver");
        let raw = match waitpid(pid, Some(WaitPidFlag::WUNTRACED)).expect("waitpid") {
            WaitStatus::Stopped(_, signal) => 0x7f | ((signal as i32) << 8),
            WaitStatus::Signaled(_, signal, core) => {
                child = None;
                signal as i32 | if core { 0x80 } else { 0 }
            }
            WaitStatus::Exited(_, code) => {
                child = None;
                code << 8
            }
            other => panic!("unexpected wait status {other:?}"),
        };
        status
            .write_all(&(raw as u32).to_le_bytes())
            .expect("the driver");
    }
}

/// The persistent child: a case read in place from the buffer (a byte of each line, as
/// [`run_case`]; cases are at least 8 bytes), then SIGSTOP, for ever.
fn persistent_child(buffer: &SharedMap) -> ! {
    loop {
        let len = buffer.u32_at(0).load(std::sync::atomic::Ordering::Acquire) as usize;
        let first = buffer.touch(8, len.max(8)).to_le_bytes()[0];
        if first == CRASH {
            std::process::abort();
        }
        raise(Signal::SIGSTOP).expect("stop");
    }
}
