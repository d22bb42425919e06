//! How soon a survivor hears that its peer died, and what an idle endpoint costs: shared by
//! `cargo bench --bench crash_notice` and `ringport bench` (included by path in both).
//!
//! - **Crash notice**: a child process attaches to a ring or channel and is killed with
//!   SIGKILL while the parent waits on it; the time from just before `kill` to the parent's
//!   `PeerGone` (or, for MPMC, to the message behind the dead producer's slot), against the
//!   time to a pipe's end-of-file after the same kill of a pipe's writer, in the same rounds.
//!   Kinds: an SPSC consumer asleep in `recv` and one spinning on `try_recv`, an MPMC consumer
//!   behind a slot the dead producer held, a Channel receiver on the socket path and on the
//!   ring path.
//! - **Idle**: an endpoint blocked for the whole sample with no traffic, against a pipe reader
//!   blocked in `read`: the CPU time of the blocked thread, as a share of the wall time, and the
//!   times it woke.
//!
//! The child is the program itself, run again with [`CHILD_ENV`] set: its `main` calls
//! [`child_if_asked`] first.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ringport::channel::{Channel, ChannelOptions};
use ringport::{Error, MpmcOptions, Policy, SpscOptions};
use ringport_measure::median;
use ringport_measure::pin::pin_to_wrapping as pin_to;
use ringport_measure::shm::SegmentName;

/// Set in a child: what it plays, on what, on which core.
pub const CHILD_ENV: &str = "RINGPORT_CRASH_CHILD";

/// What is killed, and how the parent waits on it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Pipe,
    SpscSleeping,
    SpscSpinning,
    MpmcBehindSlot,
    ChannelSocket,
    ChannelRing,
}

const KINDS: [Kind; 6] = [
    Kind::Pipe,
    Kind::SpscSleeping,
    Kind::SpscSpinning,
    Kind::MpmcBehindSlot,
    Kind::ChannelSocket,
    Kind::ChannelRing,
];

impl Kind {
    fn tag(self) -> &'static str {
        match self {
            Kind::Pipe => "pipe EOF",
            Kind::SpscSleeping => "spsc recv (asleep)",
            Kind::SpscSpinning => "spsc try_recv (spinning)",
            Kind::MpmcBehindSlot => "mpmc recv behind the slot",
            Kind::ChannelSocket => "channel, socket path",
            Kind::ChannelRing => "channel, ring path",
        }
    }

    fn from_tag(tag: &str) -> Kind {
        KINDS.into_iter().find(|k| k.tag() == tag).unwrap()
    }
}

fn spsc() -> SpscOptions {
    SpscOptions::new().capacity(64 << 10)
}

fn mpmc() -> MpmcOptions {
    MpmcOptions::new().slots(8).slot_size(64)
}

/// The core the children run on (`usize::MAX`: not pinned).
static CHILD_CORE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);

fn child_spec(kind: Kind, name: &str) -> String {
    let core = CHILD_CORE.load(std::sync::atomic::Ordering::Relaxed);
    format!("{}|{name}|{core}", kind.tag())
}

/// Starts a child playing `kind` on `name`.
fn spawn(kind: Kind, name: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENV, child_spec(kind, name))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until `child` says it has attached; keep the returned pipe until the child dies.
/// A channel peer of `kind` on the abstract socket `path`, accepted, that has sent its first
/// message (5 bytes) and said it is ready: the channel, the peer, and the peer's output.
fn channel_peer(kind: Kind, path: &str) -> (Channel, Child, BufReader<std::process::ChildStdout>) {
    let listener = ChannelOptions::new().bind(path).unwrap();
    let mut child = spawn(kind, path);
    let mut channel = listener.accept().unwrap();
    let out = await_ready(&mut child);
    let mut buf = Vec::new();
    assert_eq!(channel.recv(&mut buf).unwrap(), 5);
    (channel, child, out)
}

fn await_ready(child: &mut Child) -> BufReader<std::process::ChildStdout> {
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready", "the child did not attach");
    out
}

/// If this process is a child of a measurement, plays its part (attach, say ready, hang until
/// killed) and never returns; otherwise returns at once.
pub fn child_if_asked() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        child(&spec);
        std::process::exit(0);
    }
}

fn child(spec: &str) {
    let mut parts = spec.split('|');
    let (kind, name, core) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    if let Ok(core) = core.parse::<usize>() {
        if core != usize::MAX {
            pin_to(core);
        }
    }
    let kind = Kind::from_tag(kind);
    let ready = || {
        let mut out = std::io::stdout();
        writeln!(out, "ready").unwrap();
        out.flush().unwrap();
    };
    // Each arm keeps what it attached alive until the kill.
    let _held: Box<dyn std::any::Any> = match kind {
        // The write end is inherited as descriptor 3 (see `pipe_round`).
        Kind::Pipe => Box::new(()),
        Kind::SpscSleeping | Kind::SpscSpinning => {
            let mut producer = spsc().open_producer(name).unwrap();
            producer.send(b"hello").unwrap();
            Box::new(producer)
        }
        Kind::MpmcBehindSlot => {
            let ring = mpmc().open(name).unwrap();
            let mut stuck = ring.producer();
            let mut behind = ring.producer();
            // A slot claimed and never committed, and a message behind it.
            let grant = Box::leak(Box::new(stuck.reserve(8).unwrap()));
            let _ = grant;
            behind.send(b"behind").unwrap();
            Box::new(ring)
        }
        Kind::ChannelSocket | Kind::ChannelRing => {
            let policy = if kind == Kind::ChannelRing {
                Policy::Ring
            } else {
                Policy::Socket
            };
            let mut channel = ChannelOptions::new().policy(policy).connect(name).unwrap();
            channel.send(b"hello").unwrap();
            Box::new(channel)
        }
    };
    ready();
    std::thread::sleep(Duration::from_secs(600));
}

/// Kills `child` on another thread once `settle` has passed, and returns the instant just
/// before the kill.
fn kill_later(mut child: Child, settle: Duration) -> std::thread::JoinHandle<Instant> {
    std::thread::spawn(move || {
        // On the child's core, idle until the kill: on ours, a spinning survivor could hold the
        // kill back, after the instant was taken, until the scheduler preempted it.
        let core = CHILD_CORE.load(std::sync::atomic::Ordering::Relaxed);
        if core != usize::MAX {
            pin_to(core);
        }
        std::thread::sleep(settle);
        let at = Instant::now();
        child.kill().unwrap();
        child.wait().unwrap();
        at
    })
}

/// A pipe whose write end only a child holds (as descriptor 3), once the child is ready.
fn pipe_with_writer_child() -> (std::fs::File, Child) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two descriptors; we own both.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: fresh descriptors from pipe2, owned here once each.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let write_raw = write_end.as_raw_fd();
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .env(CHILD_ENV, child_spec(Kind::Pipe, "-"))
        .stdout(Stdio::piped());
    // SAFETY: between fork and exec only async-signal-safe calls (dup2).
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, move || {
            if libc::dup2(write_raw, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().unwrap();
    drop(write_end);
    // The ready line is the child's only output; its pipe may close with the child.
    drop(await_ready(&mut child));
    (std::fs::File::from(read_end), child)
}

/// Time from the kill to the parent's notice.
fn crash_round(kind: Kind) -> Duration {
    let settle = Duration::from_millis(5);
    let name = SegmentName::new("crash");
    let noticed;
    let killed;
    match kind {
        Kind::Pipe => {
            let (mut read_end, child) = pipe_with_writer_child();
            let killer = kill_later(child, settle);
            let mut byte = [0u8; 1];
            assert_eq!(read_end.read(&mut byte).unwrap(), 0, "end of file");
            noticed = Instant::now();
            killed = killer.join().unwrap();
        }
        Kind::SpscSleeping | Kind::SpscSpinning => {
            let mut consumer = spsc().create_consumer(name.as_str()).unwrap();
            let mut child = spawn(kind, name.as_str());
            let _out = await_ready(&mut child);
            assert_eq!(&*consumer.recv().unwrap(), b"hello");
            let killer = kill_later(child, settle);
            let gone = if kind == Kind::SpscSleeping {
                consumer.recv().map(drop)
            } else {
                loop {
                    match consumer.try_recv() {
                        Err(Error::Empty) => std::hint::spin_loop(),
                        other => break other.map(drop),
                    }
                }
            };
            noticed = Instant::now();
            assert!(matches!(gone, Err(Error::PeerGone(_))), "{gone:?}");
            killed = killer.join().unwrap();
        }
        Kind::MpmcBehindSlot => {
            let ring = mpmc().create(name.as_str()).unwrap();
            let mut consumer = ring.consumer();
            let mut child = spawn(kind, name.as_str());
            let _out = await_ready(&mut child);
            let killer = kill_later(child, settle);
            let got = consumer.recv_with(|m| m.to_vec()).unwrap();
            noticed = Instant::now();
            assert_eq!(got, b"behind");
            killed = killer.join().unwrap();
        }
        Kind::ChannelSocket | Kind::ChannelRing => {
            let (mut channel, child, _out) = channel_peer(kind, &format!("@{}", name.as_str()));
            let mut buf = Vec::new();
            let killer = kill_later(child, settle);
            let gone = channel.recv(&mut buf);
            noticed = Instant::now();
            assert!(matches!(gone, Err(Error::PeerGone(_))), "{gone:?}");
            killed = killer.join().unwrap();
        }
    }
    noticed.saturating_duration_since(killed)
}

/// One kind's notices: the median and the largest time from kill to notice, and the median of
/// each round's ratio to the pipe's median.
pub struct NoticeRow {
    pub kind: &'static str,
    pub median: Duration,
    pub max: Duration,
    pub ratio: f64,
}

/// `rounds` rounds of `kills` kills of each kind, interleaved (the order reversed every other
/// round); children run on `child_core` if given.
pub fn crash(rounds: usize, kills: usize, child_core: Option<usize>) -> Vec<NoticeRow> {
    CHILD_CORE.store(
        child_core.unwrap_or(usize::MAX),
        std::sync::atomic::Ordering::Relaxed,
    );
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); KINDS.len()];
    let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); KINDS.len()];
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..KINDS.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        let mut this_round = vec![Vec::new(); KINDS.len()];
        for _ in 0..kills {
            for &k in &order {
                this_round[k].push(crash_round(KINDS[k]).as_secs_f64());
            }
        }
        let pipe = median(this_round[0].clone());
        for (k, samples) in this_round.into_iter().enumerate() {
            ratios[k].push(median(samples.clone()) / pipe);
            times[k].extend(samples.into_iter().map(Duration::from_secs_f64));
        }
    }
    KINDS
        .iter()
        .enumerate()
        .map(|(k, kind)| {
            let mut all = times[k].clone();
            all.sort();
            NoticeRow {
                kind: kind.tag(),
                median: all[all.len() / 2],
                max: all[all.len() - 1],
                ratio: median(ratios[k].clone()),
            }
        })
        .collect()
}

/// The rows of [`crash`] as a table.
pub fn notice_table(rows: &[NoticeRow], rounds: usize, kills: usize) -> String {
    let mut out = format!(
        "kill -9 to the survivor's notice, {rounds} rounds of {kills} kills of each, median \
         (max), and the median of the rounds' ratios to the pipe's median:\n"
    );
    for row in rows {
        out += &format!(
            "  {:28} {:>9.1?} (max {:>9.1?})   {:.2}x\n",
            row.kind, row.median, row.max, row.ratio
        );
    }
    out
}

/// CPU time the calling thread has used, and how many times it has gone to sleep.
fn thread_usage() -> (Duration, i64) {
    // SAFETY: getrusage writes into the struct we pass.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_THREAD, &mut u), 0);
        u
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (tv(usage.ru_utime) + tv(usage.ru_stime), usage.ru_nvcsw)
}

/// One idle case: the blocked thread's CPU time over the wall time, and how often it woke.
pub struct IdleRow {
    pub case: &'static str,
    pub cpu_share: f64,
    pub wakes: i64,
}

/// Each idle case blocks one thread for `sample`, all at once, on a peer in another process
/// (MPMC: on an empty ring, which has no peer to watch). The waits end with the peers' deaths,
/// the MPMC one with a message.
pub fn idle(sample: Duration, child_core: Option<usize>) -> Vec<IdleRow> {
    CHILD_CORE.store(
        child_core.unwrap_or(usize::MAX),
        std::sync::atomic::Ordering::Relaxed,
    );
    let (mut pipe_rx, pipe_writer) = pipe_with_writer_child();

    let spsc_name = SegmentName::new("idle");
    let mut spsc_rx = spsc().create_consumer(spsc_name.as_str()).unwrap();
    let mut spsc_peer = spawn(Kind::SpscSleeping, spsc_name.as_str());
    let _spsc_out = await_ready(&mut spsc_peer);
    drop(spsc_rx.recv().unwrap());

    let mpmc_ring = mpmc().in_process().unwrap();
    let mut mpmc_rx = mpmc_ring.consumer();

    let channel =
        |kind: Kind| channel_peer(kind, &format!("@{}", SegmentName::new("idle").as_str()));
    let (mut warm_rx, warm_peer, _warm_out) = channel(Kind::ChannelRing);
    assert_eq!(
        warm_rx.received().ring,
        1,
        "the warm channel is on its ring"
    );
    let (mut fresh_rx, fresh_peer, _fresh_out) = channel(Kind::ChannelSocket);

    type Case<'a> = (&'static str, Box<dyn FnOnce() + Send + 'a>);
    let gone = |r: Result<(), Error>| match r {
        Ok(()) | Err(Error::PeerGone(_)) => {}
        Err(e) => panic!("{e}"),
    };
    let cases: Vec<Case<'_>> = vec![
        (
            "pipe reader in read",
            Box::new(move || {
                assert_eq!(pipe_rx.read(&mut [0u8; 1]).unwrap(), 0);
            }),
        ),
        (
            "spsc consumer in recv",
            Box::new(move || gone(spsc_rx.recv().map(drop))),
        ),
        (
            "mpmc consumer in recv",
            Box::new(move || drop(mpmc_rx.recv().unwrap())),
        ),
        (
            "channel, warm (ring path)",
            Box::new(move || gone(warm_rx.recv(&mut Vec::new()).map(drop))),
        ),
        (
            "channel, fresh (socket path)",
            Box::new(move || gone(fresh_rx.recv(&mut Vec::new()).map(drop))),
        ),
    ];
    let shares: Vec<(&str, f64, i64)> = std::thread::scope(|s| {
        let handles: Vec<_> = cases
            .into_iter()
            .map(|(tag, case)| {
                s.spawn(move || {
                    let ((cpu, sleeps), wall) = (thread_usage(), Instant::now());
                    case();
                    let (cpu_after, sleeps_after) = thread_usage();
                    let share = (cpu_after - cpu).as_secs_f64() / wall.elapsed().as_secs_f64();
                    // The last sleep is the one the ending event ends.
                    (tag, share, sleeps_after - sleeps - 1)
                })
            })
            .collect();
        std::thread::sleep(sample);
        for mut peer in [pipe_writer, spsc_peer, warm_peer, fresh_peer] {
            peer.kill().unwrap();
            peer.wait().unwrap();
        }
        mpmc_ring.producer().send(b"x").unwrap();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    shares
        .into_iter()
        .map(|(case, cpu_share, wakes)| IdleRow {
            case,
            cpu_share,
            wakes,
        })
        .collect()
}

/// The rows of [`idle`] as a table.
pub fn idle_table(rows: &[IdleRow], sample: Duration) -> String {
    let mut out = format!(
        "blocked {sample:?} with no traffic: CPU of the blocked thread, and the times it woke \
         before the event that ends the wait:\n"
    );
    for row in rows {
        out += &format!(
            "  {:28} {:.4} % of a CPU, {} wake-ups\n",
            row.case,
            row.cpu_share * 100.0,
            row.wakes
        );
    }
    out
}
