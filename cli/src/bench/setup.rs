//! `ringport bench --setup`: copy versus map. What it costs to set up each kind of shared memory
//! between two processes that already share a Unix stream socket (create, size, map, fault in,
//! the first message), against sending the same bytes once through that socket, and after how
//! many messages (or from what size) the mapping pays for itself.
//!
//! One peer process serves the whole run, pinned to the other core. For each sample the bench
//! sets a fresh segment up, phase by phase on the clock; the first message is the message copied
//! into the mapping, the segment handed over the socket (its descriptor by `SCM_RIGHTS`, its name
//! or its System V id), the peer opening and mapping it and reading every line of the message,
//! and its one-byte answer. Then `steady` more messages go through the mapping, each answered
//! through it (a sequence word each way: busy-polled, or slept on with a futex), and the segment
//! is torn down on the clock. The socket's sample is the same message and answer through the
//! socket, once, then `steady` times. Kinds, sizes and waits interleave within each round.

use std::ffi::CString;
use std::io::{IoSlice, IoSliceMut, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nix::sys::socket::{self, ControlMessage, ControlMessageOwned, MsgFlags};
use ringport_measure::futex;
use ringport_measure::shm::SharedMap;

use super::links::{look_at, Patience, STALL};
use super::measure::message;
use super::plan::{show_size, Mode};
use super::report::{json_string, show_nanos};
use super::BoxError;

/// Where a segment keeps the two sequence words (the bench's, then the peer's answer on a line
/// of its own); the message starts after them.
const BELL: usize = 0;
const ANSWER: usize = 64;
const MESSAGE: usize = 128;
const PAGE: usize = 4096;
const HUGE_PAGE: usize = 2 << 20;

/// What carries the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// The Unix stream socket the two processes share: the message is copied through it.
    Socket,
    /// `shm_open` by name (exclusive, 0600), `ftruncate`, `mmap`; the name is handed over.
    PosixShm,
    /// `memfd_create`, `ftruncate`, `mmap`; the descriptor is handed over.
    Memfd,
    /// `shmget(IPC_PRIVATE)` (created at its size), `shmat`; the id is handed over.
    SysvShm,
    /// An unnamed file (`O_TMPFILE`) on the tmpfs of /dev/shm, `ftruncate`, `mmap`.
    FileTmpfs,
    /// An unnamed file in the working directory (a disk), `ftruncate`, `mmap`.
    FileDisk,
    /// A memfd of 2 MiB huge pages (`MFD_HUGETLB`), where the machine has them free.
    MemfdHuge,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Socket,
        Kind::PosixShm,
        Kind::Memfd,
        Kind::SysvShm,
        Kind::FileTmpfs,
        Kind::FileDisk,
        Kind::MemfdHuge,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Socket => "unix-socket",
            Kind::PosixShm => "posix-shm",
            Kind::Memfd => "memfd",
            Kind::SysvShm => "sysv-shm",
            Kind::FileTmpfs => "file-tmpfs",
            Kind::FileDisk => "file-disk",
            Kind::MemfdHuge => "memfd-huge",
        }
    }

    fn code(self) -> u32 {
        Kind::ALL.iter().position(|k| *k == self).expect("listed") as u32
    }

    fn from_code(code: u32) -> Result<Kind, BoxError> {
        Kind::ALL
            .get(code as usize)
            .copied()
            .ok_or_else(|| format!("no kind {code}").into())
    }

    /// The length of a segment that holds the words and a message of `size` bytes.
    fn segment_len(self, size: usize) -> usize {
        let page = if self == Kind::MemfdHuge {
            HUGE_PAGE
        } else {
            PAGE
        };
        (MESSAGE + size).next_multiple_of(page)
    }
}

/// What the bench tells the peer before each sample (sent with the descriptor, if any).
#[derive(Clone, Copy)]
struct Order {
    kind: u32,
    /// 0: answer through the mapping by spinning; 1: by futex.
    blocking: u32,
    size: u64,
    /// Messages after the first.
    steady: u64,
    /// A System V segment's id.
    sysv: i64,
    /// A POSIX segment's name, NUL-padded.
    name: [u8; 64],
}

const ORDER_LEN: usize = 96;

impl Default for Order {
    fn default() -> Order {
        Order {
            kind: 0,
            blocking: 0,
            size: 0,
            steady: 0,
            sysv: 0,
            name: [0; 64],
        }
    }
}

impl Order {
    fn bytes(&self) -> [u8; ORDER_LEN] {
        let mut out = [0u8; ORDER_LEN];
        out[0..4].copy_from_slice(&self.kind.to_ne_bytes());
        out[4..8].copy_from_slice(&self.blocking.to_ne_bytes());
        out[8..16].copy_from_slice(&self.size.to_ne_bytes());
        out[16..24].copy_from_slice(&self.steady.to_ne_bytes());
        out[24..32].copy_from_slice(&self.sysv.to_ne_bytes());
        out[32..96].copy_from_slice(&self.name);
        out
    }

    fn parse(b: &[u8; ORDER_LEN]) -> Order {
        let half = |at: usize| u32::from_ne_bytes(b[at..at + 4].try_into().expect("4 bytes"));
        let word = |at: usize| u64::from_ne_bytes(b[at..at + 8].try_into().expect("8 bytes"));
        let mut name = [0u8; 64];
        name.copy_from_slice(&b[32..96]);
        Order {
            kind: half(0),
            blocking: half(4),
            size: word(8),
            steady: word(16),
            sysv: word(24) as i64,
            name,
        }
    }

    fn name(&self) -> Result<String, BoxError> {
        let end = self.name.iter().position(|b| *b == 0).unwrap_or(64);
        Ok(std::str::from_utf8(&self.name[..end])?.to_owned())
    }
}

fn nanos(since: Instant) -> u64 {
    since.elapsed().as_nanos() as u64
}

/// The time of each phase of one sample, in nanoseconds.
#[derive(Clone, Copy, Default, Debug)]
pub struct Phases {
    pub create: u64,
    pub size: u64,
    pub map: u64,
    pub fault_in: u64,
    /// The first message: copied in, handed over, opened, mapped and read by the peer,
    /// answered (for the socket: the message and its answer through the socket).
    pub first: u64,
    /// Each message after the first, answered (the median of the sample's steady messages).
    pub per_message: u64,
    pub teardown: u64,
}

/// A segment the bench made, removed when dropped (on the clock by [`Segment::remove`]).
struct Segment {
    base: *mut u8,
    len: usize,
    fd: Option<OwnedFd>,
    sysv: Option<i32>,
    /// A POSIX segment's name, unlinked on removal.
    name: Option<CString>,
}

impl Segment {
    fn empty() -> Segment {
        Segment {
            base: std::ptr::null_mut(),
            len: 0,
            fd: None,
            sysv: None,
            name: None,
        }
    }

    /// Whether it is mapped (or attached): `base` is set once the mapping is made.
    fn attached(&self) -> bool {
        !self.base.is_null()
    }

    /// The 32-bit word at `offset` (BELL or ANSWER).
    fn word(&self, offset: usize) -> &AtomicU32 {
        assert!(self.attached() && offset + 4 <= self.len && offset % 4 == 0);
        // SAFETY: inside the live mapping (checked) and aligned (a page-aligned base, an offset
        // that is a multiple of 4); both processes reach it only through atomics.
        unsafe { AtomicU32::from_ptr(self.base.add(offset).cast()) }
    }

    /// Copies `bytes` to the message area: the peer reads it only after the bench's word says.
    fn write_message(&self, bytes: &[u8]) {
        assert!(self.attached() && MESSAGE + bytes.len() <= self.len);
        // SAFETY: inside the mapping (checked); the peer reads the range only after the
        // publication that follows (the hand-over, or a Release store of the bell).
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.base.add(MESSAGE), bytes.len())
        };
    }

    /// Writes a byte in every page, as the first touch of each would.
    fn fault_in(&self, page: usize) {
        assert!(self.attached());
        for offset in (0..self.len).step_by(page) {
            // SAFETY: inside the mapping; nobody else has it yet.
            unsafe { self.base.add(offset).write_volatile(0) };
        }
    }

    fn map_fd(&mut self, huge: bool) -> Result<(), BoxError> {
        let fd = self.fd.as_ref().expect("made with a descriptor");
        // SAFETY: a new shared mapping of the whole segment, which nothing else in this
        // process maps; unmapped once, on removal.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                self.len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            let e = std::io::Error::last_os_error();
            return Err(if huge {
                format!("mmap of {} of huge pages: {e}", show_size(self.len))
            } else {
                format!("mmap: {e}")
            }
            .into());
        }
        self.base = base.cast();
        Ok(())
    }

    /// Unmaps, closes and removes the name or id.
    fn remove(&mut self) {
        if self.attached() {
            if self.sysv.is_some() {
                // SAFETY: the address shmat gave; detached once.
                unsafe { libc::shmdt(self.base.cast()) };
            } else {
                // SAFETY: the mapping made by map_fd; unmapped once, no reference outlives it.
                unsafe { libc::munmap(self.base.cast(), self.len) };
            }
            self.base = std::ptr::null_mut();
        }
        self.fd = None;
        if let Some(id) = self.sysv.take() {
            ringport_measure::shm::remove_sysv(id);
        }
        if let Some(name) = self.name.take() {
            // SAFETY: a valid C string.
            unsafe { libc::shm_unlink(name.as_ptr()) };
        }
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        self.remove();
    }
}

fn check(rc: libc::c_int, what: &str) -> Result<libc::c_int, BoxError> {
    if rc == -1 {
        Err(format!("{what}: {}", std::io::Error::last_os_error()).into())
    } else {
        Ok(rc)
    }
}

/// Owns the descriptor a libc call just returned, or says why there is none.
fn fd_from(raw: libc::c_int, what: &str) -> Result<OwnedFd, BoxError> {
    let raw = check(raw, what)?;
    // SAFETY: a new descriptor (checked above) that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Huge pages of 2 MiB free now (HugePages_Free, when the default size is 2 MiB).
fn free_huge_pages() -> usize {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |key: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(0)
    };
    if field("Hugepagesize:") == 2048 {
        field("HugePages_Free:")
    } else {
        0
    }
}

/// Creates, sizes, maps and faults in a segment of `kind` for messages of `size` bytes, each
/// phase on the clock.
fn set_up(kind: Kind, size: usize, phases: &mut Phases) -> Result<Segment, BoxError> {
    let len = kind.segment_len(size);
    let mut segment = Segment::empty();
    segment.len = len;
    if kind == Kind::MemfdHuge {
        let free = free_huge_pages();
        if free < len / HUGE_PAGE {
            return Err(format!(
                "{} huge pages of 2 MiB needed, {free} free (vm.nr_hugepages)",
                len / HUGE_PAGE
            )
            .into());
        }
    }
    let started = Instant::now();
    match kind {
        Kind::Socket => unreachable!("a socket is not set up"),
        Kind::PosixShm => {
            let name = CString::new(format!("/{}", super::unique_name("setup")))?;
            // SAFETY: a valid C string.
            let raw = unsafe {
                libc::shm_open(
                    name.as_ptr(),
                    libc::O_CREAT | libc::O_EXCL | libc::O_RDWR | libc::O_CLOEXEC,
                    0o600,
                )
            };
            segment.fd = Some(fd_from(raw, "shm_open")?);
            segment.name = Some(name);
        }
        Kind::Memfd | Kind::MemfdHuge => {
            let flags = if kind == Kind::MemfdHuge {
                libc::MFD_CLOEXEC | libc::MFD_HUGETLB
            } else {
                libc::MFD_CLOEXEC
            };
            // SAFETY: a valid C string.
            let raw = unsafe { libc::memfd_create(c"ringport-bench-setup".as_ptr(), flags) };
            segment.fd = Some(fd_from(raw, "memfd_create")?);
        }
        Kind::SysvShm => {
            // SAFETY: plain values.
            let id = unsafe { libc::shmget(libc::IPC_PRIVATE, len, libc::IPC_CREAT | 0o600) };
            segment.sysv = Some(check(id, "shmget (kernel.shmmax, shmall)")?);
        }
        Kind::FileTmpfs | Kind::FileDisk => {
            let dir = if kind == Kind::FileTmpfs {
                std::path::PathBuf::from("/dev/shm")
            } else {
                std::env::current_dir()?
            };
            let path = CString::new(dir.as_os_str().as_encoded_bytes())?;
            // SAFETY: a valid C string; O_TMPFILE makes a file with no name in that directory.
            let raw = unsafe {
                libc::open(
                    path.as_ptr(),
                    libc::O_TMPFILE | libc::O_RDWR | libc::O_CLOEXEC,
                    0o600,
                )
            };
            segment.fd = Some(fd_from(
                raw,
                &format!("an unnamed file in {}", dir.display()),
            )?);
        }
    }
    phases.create = nanos(started);
    let started = Instant::now();
    if let Some(fd) = &segment.fd {
        check(
            // SAFETY: a descriptor we own.
            unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) },
            "ftruncate",
        )?;
    }
    phases.size = nanos(started);
    let started = Instant::now();
    if let Some(id) = segment.sysv {
        // SAFETY: a null address lets the kernel place it.
        let base = unsafe { libc::shmat(id, std::ptr::null(), 0) };
        if base as isize == -1 {
            return Err(format!("shmat: {}", std::io::Error::last_os_error()).into());
        }
        segment.base = base.cast();
    } else {
        segment.map_fd(kind == Kind::MemfdHuge)?;
    }
    phases.map = nanos(started);
    let started = Instant::now();
    segment.fault_in(if kind == Kind::MemfdHuge {
        HUGE_PAGE
    } else {
        PAGE
    });
    phases.fault_in = nanos(started);
    Ok(segment)
}

/// Sends `order` (with `fd`, if any) as one write.
fn send_order(socket: &UnixStream, order: &Order, fd: Option<RawFd>) -> Result<(), BoxError> {
    let bytes = order.bytes();
    let raw = fd.map(|f| [f]);
    let rights = raw.as_ref().map(|r| ControlMessage::ScmRights(r));
    let cmsgs: Vec<ControlMessage<'_>> = rights.into_iter().collect();
    let sent = socket::sendmsg::<()>(
        socket.as_raw_fd(),
        &[IoSlice::new(&bytes)],
        &cmsgs,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )?;
    if sent != ORDER_LEN {
        return Err("the order was cut short".into());
    }
    Ok(())
}

/// Reads an order and the descriptor sent with it.
fn recv_order(socket: &UnixStream) -> Result<Option<(Order, Option<OwnedFd>)>, BoxError> {
    let mut bytes = [0u8; ORDER_LEN];
    let mut got = 0;
    let mut passed = None;
    while got < ORDER_LEN {
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let mut iov = [IoSliceMut::new(&mut bytes[got..])];
        let msg = socket::recvmsg::<()>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )?;
        for cmsg in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(fds) = cmsg {
                for f in fds {
                    // SAFETY: the kernel installed this descriptor for us; nothing else owns it.
                    passed = Some(unsafe { OwnedFd::from_raw_fd(f) });
                }
            }
        }
        if msg.bytes == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err("the bench went mid-order".into())
            };
        }
        got += msg.bytes;
    }
    Ok(Some((Order::parse(&bytes), passed)))
}

/// Waits until `word` holds `value`, by spinning or on its futex.
fn await_word(word: &AtomicU32, value: u32, blocking: bool) -> Result<(), BoxError> {
    let mut patience = Patience::new();
    let started = Instant::now();
    loop {
        // Acquire: the message (or the answer) written before the Release store is visible.
        let now = word.load(Ordering::Acquire);
        if now == value {
            return Ok(());
        }
        if blocking {
            futex::wait(word, now, Some(Duration::from_millis(100)));
            if started.elapsed() > STALL {
                return Err(format!("no answer for {STALL:?}: the peer is stuck or gone").into());
            }
        } else {
            patience.spin()?;
        }
    }
}

/// Stores `value` (Release: the bytes written before it go with it) and wakes a sleeper.
fn ring(word: &AtomicU32, value: u32, blocking: bool) {
    word.store(value, Ordering::Release);
    if blocking {
        futex::wake(word, 1);
    }
}

/// Fills `buf` from the socket: blocking, or (`spin`) by non-blocking reads retried under a
/// [`Patience`], as the busy forms of the table's socket mechanisms.
fn read_exact(socket: &UnixStream, buf: &mut [u8], spin: bool) -> Result<(), BoxError> {
    let flags = if spin {
        MsgFlags::MSG_DONTWAIT
    } else {
        MsgFlags::empty()
    };
    let mut got = 0;
    let mut patience = Patience::new();
    while got < buf.len() {
        match socket::recv(socket.as_raw_fd(), &mut buf[got..], flags) {
            Ok(0) => return Err("the other end closed the socket".into()),
            Ok(n) => got += n,
            Err(nix::errno::Errno::EAGAIN) => patience.spin()?,
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(format!("recv: {e}").into()),
        }
    }
    Ok(())
}

/// The bench's end: the peer, its socket, and the messages by size.
pub struct Bench {
    socket: UnixStream,
    peer: Child,
}

impl Drop for Bench {
    fn drop(&mut self) {
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
        if self.peer.wait().is_err() {
            let _ = self.peer.kill();
        }
    }
}

impl Bench {
    /// Starts the peer, pinned to `cpu`.
    pub fn start(cpu: Option<usize>) -> Result<Bench, BoxError> {
        let (ours, theirs) = UnixStream::pair()?;
        let inherited = ringport_measure::fds::inheritable(theirs.as_fd())?;
        let mut command = Command::new(std::env::current_exe()?);
        command
            .arg("bench-setup-peer")
            .args(["--fd", &inherited.as_raw_fd().to_string()]);
        if let Some(cpu) = cpu {
            command.args(["--cpu", &cpu.to_string()]);
        }
        let peer = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        drop(inherited);
        drop(theirs);
        Ok(Bench { socket: ours, peer })
    }

    /// The peer's one-byte answer on the socket (spinning for it, or asleep in `recv`).
    fn answer(&mut self, spin: bool) -> Result<(), BoxError> {
        let mut byte = [0u8; 1];
        read_exact(&self.socket, &mut byte, spin)
    }

    /// After a failed sample: the peer's own words if it ended (it says what it found wrong),
    /// else `error`. The peer is stopped either way: the protocol between them is broken.
    fn failure(&mut self, error: BoxError) -> BoxError {
        let started = Instant::now();
        while matches!(self.peer.try_wait(), Ok(None))
            && started.elapsed() < Duration::from_millis(200)
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.peer.kill();
        let _ = self.peer.wait();
        let mut said = String::new();
        if let Some(err) = self.peer.stderr.as_mut() {
            let _ = std::io::Read::read_to_string(err, &mut said);
        }
        let said = said.trim().trim_start_matches("ringport: ");
        if said.is_empty() {
            error
        } else {
            format!("the peer: {said}").into()
        }
    }

    /// One sample, as [`Bench::sample`]; after a failure the peer is started afresh for the
    /// next.
    pub fn try_sample(
        &mut self,
        kind: Kind,
        size: usize,
        steady: u64,
        mode: Mode,
        cpu: Option<usize>,
    ) -> Result<Phases, BoxError> {
        match self.sample(kind, size, steady, mode) {
            Ok(phases) => Ok(phases),
            Err(e) => {
                let why = self.failure(e);
                *self = Bench::start(cpu)?;
                Err(why)
            }
        }
    }

    /// One sample of `kind` with messages of `size` bytes, `steady` after the first, waiting by
    /// `mode` between them.
    fn sample(
        &mut self,
        kind: Kind,
        size: usize,
        steady: u64,
        mode: Mode,
    ) -> Result<Phases, BoxError> {
        let mut phases = Phases::default();
        let mut msg = message(size);
        msg[..8].copy_from_slice(&0u64.to_le_bytes());
        let order = Order {
            kind: kind.code(),
            blocking: u32::from(mode == Mode::Block),
            size: size as u64,
            steady,
            ..Order::default()
        };
        if kind == Kind::Socket {
            // The order first (not timed: it tells the peer what follows), then the message.
            send_order(&self.socket, &order, None)?;
            let started = Instant::now();
            self.socket.write_all(&msg)?;
            self.answer(false)?;
            phases.first = nanos(started);
            let mut times = Vec::with_capacity(steady as usize);
            let spin = mode == Mode::Spin;
            for seq in 1..=steady {
                let started = Instant::now();
                msg[..8].copy_from_slice(&seq.to_le_bytes());
                self.socket.write_all(&msg)?;
                self.answer(spin)?;
                times.push(nanos(started));
            }
            phases.per_message = median_of(&mut times);
            return Ok(phases);
        }
        let mut segment = set_up(kind, size, &mut phases)?;
        let mut order = order;
        if let Some(id) = segment.sysv {
            order.sysv = i64::from(id);
        }
        if let Some(name) = &segment.name {
            let bytes = name.as_bytes();
            order.name[..bytes.len()].copy_from_slice(bytes);
        }
        let started = Instant::now();
        segment.write_message(&msg);
        let fd = segment.fd.as_ref().map(AsRawFd::as_raw_fd);
        send_order(&self.socket, &order, fd)?;
        self.answer(false)?;
        phases.first = nanos(started);
        let blocking = mode == Mode::Block;
        let mut times = Vec::with_capacity(steady as usize);
        for seq in 1..=steady {
            let started = Instant::now();
            msg[..8].copy_from_slice(&seq.to_le_bytes());
            segment.write_message(&msg);
            ring(segment.word(BELL), seq as u32, blocking);
            await_word(segment.word(ANSWER), seq as u32, blocking)?;
            times.push(nanos(started));
        }
        phases.per_message = median_of(&mut times);
        // The peer has unmapped and closed its end: the teardown is the bench's alone.
        self.answer(false)?;
        let started = Instant::now();
        segment.remove();
        phases.teardown = nanos(started);
        Ok(phases)
    }
}

/// Options of the hidden peer process.
#[derive(clap::Args, Debug)]
pub struct PeerArgs {
    #[arg(long)]
    fd: i32,
    #[arg(long)]
    cpu: Option<usize>,
}

/// The peer: takes orders until the bench closes the socket.
pub fn peer(args: &PeerArgs) -> Result<(), BoxError> {
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
    if let Some(cpu) = args.cpu {
        ringport_measure::pin::pin_to(cpu)?;
    }
    let mut socket = UnixStream::from(ringport_measure::fds::adopt_inherited(args.fd)?);
    let mut buffer = Vec::new();
    while let Some((order, fd)) = recv_order(&socket)? {
        let kind = Kind::from_code(order.kind)?;
        let size = usize::try_from(order.size)?;
        let blocking = order.blocking == 1;
        if kind == Kind::Socket {
            if buffer.len() < size {
                buffer.resize(size, 0);
            }
            for seq in 0..=order.steady {
                // The first message is waited for asleep, as an occasional one would be.
                read_exact(&socket, &mut buffer[..size], seq > 0 && !blocking)?;
                let got = look_at(&buffer[..size])?;
                if got != seq {
                    return Err(format!("message {got} came when {seq} was due").into());
                }
                socket.write_all(b"k")?;
            }
            continue;
        }
        let map = match kind {
            Kind::PosixShm => SharedMap::open_named(&order.name()?)?,
            Kind::SysvShm => SharedMap::attach_sysv(i32::try_from(order.sysv)?)?,
            _ => SharedMap::map(fd.ok_or("no descriptor came with the order")?)?,
        };
        check_message(&map, size, 0)?;
        socket.write_all(b"k")?;
        for seq in 1..=order.steady {
            await_word(map.u32_at(BELL), seq as u32, blocking)?;
            check_message(&map, size, seq)?;
            let answer = map.u32_at(ANSWER);
            answer.store(seq as u32, Ordering::Release);
            if blocking {
                futex::wake(answer, 1);
            }
        }
        drop(map);
        socket.write_all(b"k")?;
    }
    Ok(())
}

/// Reads every line of the message in `map` and checks its sequence number.
fn check_message(map: &SharedMap, size: usize, seq: u64) -> Result<(), BoxError> {
    let got = map.touch(MESSAGE, size);
    if got != seq {
        return Err(format!("message {got} came when {seq} was due").into());
    }
    Ok(())
}

/// The figures of one kind at one size: the median of each phase over the samples.
pub struct Row {
    pub kind: Kind,
    pub size: usize,
    pub phases: Result<Phases, String>,
    /// Each message after the first, by how the two sides wait: (spin, block).
    pub per_message: [Option<u64>; 2],
}

fn median(values: &mut [u64]) -> u64 {
    values.sort_unstable();
    values[values.len() / 2]
}

/// The median, or 0 of none.
fn median_of(values: &mut [u64]) -> u64 {
    if values.is_empty() {
        0
    } else {
        median(values)
    }
}

/// Medians of each phase over `samples`.
fn medians(samples: &[Phases]) -> Phases {
    let of = |f: fn(&Phases) -> u64| median(&mut samples.iter().map(f).collect::<Vec<_>>());
    Phases {
        create: of(|p| p.create),
        size: of(|p| p.size),
        map: of(|p| p.map),
        fault_in: of(|p| p.fault_in),
        first: of(|p| p.first),
        per_message: of(|p| p.per_message),
        teardown: of(|p| p.teardown),
    }
}

/// Steady messages a sample: 200, fewer for large messages (16 MiB a sample), at least 10.
pub fn steady_messages(size: usize, quick: bool) -> u64 {
    let most = if quick { 50 } else { 200 };
    ((16 << 20) / size as u64).clamp(10, most)
}

/// Runs `rounds` rounds of every kind at every size under both waits (the kinds' order turns
/// from round to round).
pub fn run(
    sizes: &[usize],
    rounds: usize,
    quick: bool,
    cpu: Option<usize>,
    progress: &indicatif::ProgressBar,
) -> Result<Vec<Row>, BoxError> {
    let mut bench = Bench::start(cpu)?;
    let modes = [Mode::Spin, Mode::Block];
    let cells: Vec<(usize, Kind)> = sizes
        .iter()
        .flat_map(|&s| Kind::ALL.map(|k| (s, k)))
        .collect();
    let mut samples: Vec<[Vec<Phases>; 2]> = cells.iter().map(|_| [vec![], vec![]]).collect();
    let mut errors: Vec<Option<String>> = vec![None; cells.len()];
    progress.set_length((rounds * cells.len() * modes.len()) as u64);
    for round in 0..rounds {
        let turn = round % Kind::ALL.len();
        for &size in sizes {
            for k in 0..Kind::ALL.len() {
                let kind = Kind::ALL[(k + turn) % Kind::ALL.len()];
                let cell = cells
                    .iter()
                    .position(|c| *c == (size, kind))
                    .expect("every cell is listed");
                for (m, &mode) in modes.iter().enumerate() {
                    progress.inc(1);
                    if errors[cell].is_some() {
                        continue;
                    }
                    progress.set_message(format!(
                        "{} {} {}",
                        kind.name(),
                        show_size(size),
                        mode.name()
                    ));
                    match bench.try_sample(kind, size, steady_messages(size, quick), mode, cpu) {
                        Ok(p) => samples[cell][m].push(p),
                        Err(e) => errors[cell] = Some(e.to_string()),
                    }
                }
            }
        }
    }
    Ok(cells
        .iter()
        .zip(samples)
        .zip(errors)
        .map(|((&(size, kind), by_mode), error)| {
            let per_message = [0, 1].map(|m| {
                (!by_mode[m].is_empty()).then(|| {
                    median(&mut by_mode[m].iter().map(|p| p.per_message).collect::<Vec<_>>())
                })
            });
            let all: Vec<Phases> = by_mode.concat();
            let phases = match error {
                Some(e) => Err(e),
                None if all.is_empty() => Err("no sample".into()),
                None => Ok(medians(&all)),
            };
            Row {
                kind,
                size,
                phases,
                per_message,
            }
        })
        .collect())
}

impl Row {
    /// Set-up and the first message: what a single message costs through this kind.
    fn total(&self) -> Option<u64> {
        let p = self.phases.as_ref().ok()?;
        Some(p.create + p.size + p.map + p.fault_in + p.first)
    }
}

/// After how many messages of this row's kind the mapping costs less in all than sending them
/// through the socket, waiting by mode `m` (0: spin, 1: block); None: never, at this size.
fn pays_after(row: &Row, socket: &Row, m: usize) -> Option<u64> {
    let total = row.total()? as f64;
    let once = socket.total()? as f64;
    if total <= once {
        return Some(1);
    }
    let ours = row.per_message[m]? as f64;
    let theirs = socket.per_message[m]? as f64;
    // n messages: total + (n - 1) * ours against n * theirs.
    (theirs > ours).then(|| ((total - ours) / (theirs - ours)).ceil().max(1.0) as u64)
}

fn show_pays(n: Option<u64>) -> String {
    n.map_or_else(|| "never".into(), |n| n.to_string())
}

/// The table.
pub fn table(rows: &[Row], header: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::from(header);
    let _ = writeln!(
        out,
        "\nCopy versus map: a fresh segment of each kind, set up phase by phase, against the same \
         bytes through the Unix socket the processes share.\n\
         first: the message copied in, handed over, mapped and read by the peer, answered (for \
         the socket: the message and its answer); total: set-up and first message; then each \
         message after the first, answered, busy and blocking (futex / blocking read); pays \
         after: messages from which the mapping costs less in all; medians"
    );
    let _ =
        writeln!(
        out,
        "{:<8} {:<12} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>6} {:>6}",
        "size", "kind", "create", "size", "map", "fault-in", "first", "total", "teardown",
        "msg spin", "msg block", "pays", "(blk)"
    );
    let mut last = 0;
    for row in rows {
        let size = if std::mem::replace(&mut last, row.size) == row.size {
            String::new()
        } else {
            show_size(row.size)
        };
        let _ = write!(out, "{size:<8} {:<12}", row.kind.name());
        let socket = rows
            .iter()
            .find(|r| r.size == row.size && r.kind == Kind::Socket);
        match &row.phases {
            Err(why) => {
                let _ = writeln!(out, " n/a: {why}");
            }
            Ok(p) => {
                let cell = |ns: u64, shown: bool| {
                    if shown {
                        show_nanos(ns)
                    } else {
                        "-".into()
                    }
                };
                let mapped = row.kind != Kind::Socket;
                let msg = |m: usize| row.per_message[m].map_or("-".into(), show_nanos);
                let (pays_spin, pays_block) = match (mapped, socket) {
                    (true, Some(s)) => (
                        show_pays(pays_after(row, s, 0)),
                        show_pays(pays_after(row, s, 1)),
                    ),
                    _ => ("-".into(), "-".into()),
                };
                let _ = writeln!(
                    out,
                    " {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>6} {:>6}",
                    cell(p.create, mapped),
                    cell(p.size, mapped && row.kind != Kind::SysvShm),
                    cell(p.map, mapped),
                    cell(p.fault_in, mapped),
                    show_nanos(p.first),
                    show_nanos(row.total().unwrap_or(0)),
                    cell(p.teardown, mapped),
                    msg(0),
                    msg(1),
                    pays_spin,
                    pays_block
                );
            }
        }
    }
    // From what size a single message pays for a fresh mapping, per kind.
    let _ = writeln!(out, "\nOne message pays for a fresh mapping:");
    for kind in Kind::ALL.into_iter().filter(|k| *k != Kind::Socket) {
        let pays = |r: &Row| {
            rows.iter()
                .find(|s| s.size == r.size && s.kind == Kind::Socket)
                .is_some_and(|s| matches!((r.total(), s.total()), (Some(a), Some(b)) if a <= b))
        };
        // The smallest size from which it pays at every larger size measured too.
        let ours: Vec<&Row> = rows.iter().filter(|r| r.kind == kind).collect();
        let from = match ours.iter().rposition(|r| !pays(r)) {
            None => ours.first().copied(),
            Some(i) => ours.get(i + 1).copied(),
        };
        let measured = rows.iter().any(|r| r.kind == kind && r.phases.is_ok());
        let _ = writeln!(
            out,
            "  {:<12} {}",
            kind.name(),
            match (from, measured) {
                (Some(r), _) => format!("from {}", show_size(r.size)),
                (None, true) => "at no size measured".into(),
                (None, false) => "not measured".into(),
            }
        );
    }
    out
}

/// The rows as JSON records.
pub fn json(rows: &[Row], machine: &str) -> String {
    let num = |x: Option<u64>| x.map_or("null".into(), |n| n.to_string());
    let records: Vec<String> = rows
        .iter()
        .map(|row| {
            let socket = rows
                .iter()
                .find(|r| r.size == row.size && r.kind == Kind::Socket);
            let head = format!(
                "\"kind\":{},\"size\":{}",
                json_string(row.kind.name()),
                row.size
            );
            match &row.phases {
                Err(why) => format!("    {{{head},\"error\":{}}}", json_string(why)),
                Ok(p) => {
                    let pays = |m| match (row.kind, socket) {
                        (Kind::Socket, _) | (_, None) => "null".to_owned(),
                        (_, Some(s)) => num(pays_after(row, s, m)),
                    };
                    format!(
                        "    {{{head},\"create_ns\":{},\"size_ns\":{},\"map_ns\":{},\"fault_in_ns\":{},\"first_message_ns\":{},\"total_ns\":{},\"teardown_ns\":{},\"per_message_spin_ns\":{},\"per_message_block_ns\":{},\"pays_after_spin\":{},\"pays_after_block\":{}}}",
                        p.create,
                        p.size,
                        p.map,
                        p.fault_in,
                        p.first,
                        num(row.total()),
                        p.teardown,
                        num(row.per_message[0]),
                        num(row.per_message[1]),
                        pays(0),
                        pays(1)
                    )
                }
            }
        })
        .collect();
    format!(
        "{{\n  \"machine\":{machine},\n  \"setup\":[\n{}\n  ]\n}}\n",
        records.join(",\n")
    )
}
