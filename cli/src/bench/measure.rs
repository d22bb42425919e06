//! One sample: start the peer, time round trips or a stream over a link, stop the peer.
//! Both halves (the bench's and the peer's) live here, so that the protocol between them is in
//! one place: the peer prints `ready` once its end is open, echoes every message back (round
//! trip) or counts them (throughput) until the stop tag, and then prints `done <count>`.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::links::{open_peer, with_link, AnyLink, Handoff, Link, PeerEnd, Pending};
use super::plan::{Case, Contender, Mechanism, Metric, Mode};
use super::BoxError;

/// The tag of the message that ends a sample.
const STOP: u64 = u64::MAX;
/// The share of a round-trip sample spent warming up, not recorded.
const WARM_UP: u32 = 10;

/// How long a sample runs.
#[derive(Clone, Copy, Debug)]
pub enum Budget {
    Time(Duration),
    Messages(u64),
}

impl Budget {
    /// The warm-up part of a round-trip sample.
    fn warm_up(self) -> Budget {
        match self {
            Budget::Time(t) => Budget::Time(t / WARM_UP),
            Budget::Messages(n) => Budget::Messages(n / u64::from(WARM_UP)),
        }
    }

    fn done(self, started: Instant, now: Instant, messages: u64) -> bool {
        match self {
            Budget::Time(t) => now - started >= t,
            Budget::Messages(n) => messages >= n,
        }
    }

    /// A generous bound on how long a sample may take, for the watchdog.
    pub fn limit(self) -> Duration {
        match self {
            Budget::Time(t) => 2 * t + Duration::from_secs(30),
            Budget::Messages(_) => Duration::from_secs(600),
        }
    }
}

/// What one sample measured.
pub enum Sample {
    /// Nanoseconds per round trip.
    RoundTrips(Histogram<u64>),
    /// Messages a second.
    Rate(f64),
}

/// A message of `size` bytes with some content (not all zeros, so nothing can skip the work).
pub(super) fn message(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i % 251) as u8).collect()
}

/// How the command line spells `value` (what the peer's parser takes back).
fn cli_name(value: impl clap::ValueEnum) -> String {
    let value = value.to_possible_value().expect("no variant is skipped");
    value.get_name().to_owned()
}

/// The peer process, killed if the bench leaves a sample early.
struct Peer {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Peer {
    fn spawn(case: Case, cpu: Option<usize>, end: &PeerEnd) -> Result<Peer, BoxError> {
        let mut command = Command::new(std::env::current_exe()?);
        command
            .arg("bench-peer")
            .args(["--mechanism", &cli_name(case.contender.mechanism)])
            .args(["--mode", &cli_name(case.contender.mode)])
            .args(["--metric", &cli_name(case.metric)])
            .args(["--size", &case.size.to_string()]);
        if let Some(cpu) = cpu {
            command.args(["--cpu", &cpu.to_string()]);
        }
        for fd in &end.fds {
            command.args(["--fd", &fd.to_string()]);
        }
        for name in &end.names {
            command.args(["--name", name]);
        }
        if let Some(port) = end.port {
            command.args(["--port", &port.to_string()]);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let out = BufReader::new(child.stdout.take().expect("piped"));
        Ok(Peer { child, out })
    }

    /// The peer's next line; on its end, what it wrote to stderr.
    fn line(&mut self) -> Result<String, BoxError> {
        let mut line = String::new();
        if self.out.read_line(&mut line)? == 0 {
            let mut why = String::new();
            if let Some(err) = self.child.stderr.as_mut() {
                let _ = err.read_to_string(&mut why);
            }
            let status = self.child.wait()?;
            let why = why.trim().trim_start_matches("ringport: ");
            return Err(if why.is_empty() {
                format!("the peer ended ({status})")
            } else {
                why.to_owned()
            }
            .into());
        }
        Ok(line.trim().to_owned())
    }

    fn finish(mut self) -> Result<(), BoxError> {
        let status = self.child.wait()?;
        if !status.success() {
            return Err(format!("the peer ended with {status}").into());
        }
        Ok(())
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Sets `case` up: the bench's end, and the peer (pinned to `cpu`) once it has said it is
/// ready, with the names it opened its end by removed.
fn start(case: Case, cpu: Option<usize>) -> Result<(AnyLink, Peer), BoxError> {
    let mut handoff = Handoff::default();
    let pending = Pending::create(case.contender, case.metric, case.size, &mut handoff)?;
    let mut peer = Peer::spawn(case, cpu, &handoff.peer)?;
    drop(handoff);
    let mut link = pending.connect()?;
    let ready = peer.line()?;
    if ready != "ready" {
        return Err(format!("the peer said {ready:?}, not ready").into());
    }
    link.forget_names();
    Ok((link, peer))
}

/// Runs one sample of `case`, with the peer pinned to `cpu`.
pub fn sample(case: Case, budget: Budget, cpu: Option<usize>) -> Result<Sample, BoxError> {
    let (mut link, mut peer) = start(case, cpu)?;
    let result = with_link!(&mut link, l => match case.metric {
        Metric::RoundTrip => round_trips(l, case.size, budget, || {}).map(Sample::RoundTrips),
        Metric::Throughput => stream(l, &mut peer, case.size, budget, || {}).map(Sample::Rate),
    })?;
    peer.finish()?;
    Ok(result)
}

/// The system calls of both processes per message of `case` (per round trip, or per message
/// streamed), not timed: counted over a sample of `messages` and over one of three times as
/// many, and their difference divided by the difference of messages, so that what a sample
/// does once (a death notice set up at the first empty poll, the set-up of a connection) falls
/// out.
pub fn syscalls_per_message(
    case: Case,
    messages: u64,
    cpu: Option<usize>,
    tracepoint: u64,
) -> Result<f64, BoxError> {
    let (few, calls_few) = syscalls_of_sample(case, messages, cpu, tracepoint)?;
    let (many, calls_many) = syscalls_of_sample(case, 3 * messages, cpu, tracepoint)?;
    Ok(calls_many.saturating_sub(calls_few) as f64 / (many - few) as f64)
}

/// One sample of `messages` under the counters: how many messages passed, and the system calls
/// of both processes meanwhile.
fn syscalls_of_sample(
    case: Case,
    messages: u64,
    cpu: Option<usize>,
    tracepoint: u64,
) -> Result<(u64, u64), BoxError> {
    let (mut link, mut peer) = start(case, cpu)?;
    let counters = super::syscalls::Counters::attach(tracepoint, peer.child.id())?;
    let before = counters.before();
    let budget = Budget::Messages(messages);
    // Up to the stop message of a round trip, up to the peer's word of a stream: the peer's
    // exit after them is no message's.
    let mut calls = 0;
    let at_stop = || calls = counters.after() - before;
    let passed = with_link!(&mut link, l => match case.metric {
        Metric::RoundTrip => round_trips(l, case.size, budget, at_stop)
            .map(|_| messages + messages / u64::from(WARM_UP)),
        Metric::Throughput => {
            stream(l, &mut peer, case.size, budget, at_stop).map(|_| messages.next_multiple_of(64))
        }
    })?;
    peer.finish()?;
    Ok((passed, calls))
}

/// Ping-pong: sends a message, waits for its echo, records the time between successive
/// arrivals (one clock read per round trip); `at_stop` runs before the stop message.
fn round_trips<L: Link>(
    link: &mut L,
    size: usize,
    budget: Budget,
    at_stop: impl FnOnce(),
) -> Result<Histogram<u64>, BoxError> {
    let mut msg = message(size);
    let mut histogram = Histogram::<u64>::new(3)?;
    let mut seq = 0u64;
    for (phase, budget) in [budget.warm_up(), budget].into_iter().enumerate() {
        let started = Instant::now();
        let mut last = started;
        let mut count = 0u64;
        loop {
            msg[..8].copy_from_slice(&seq.to_le_bytes());
            link.send(&msg)?;
            let echo = link.recv()?;
            if echo != seq {
                return Err(format!("echo of message {seq} came back as {echo}").into());
            }
            let now = Instant::now();
            if phase == 1 {
                histogram.record((now - last).as_nanos().max(1) as u64)?;
            }
            last = now;
            seq += 1;
            count += 1;
            if budget.done(started, now, count) {
                break;
            }
        }
    }
    at_stop();
    msg[..8].copy_from_slice(&STOP.to_le_bytes());
    link.send(&msg)?;
    link.recv()?;
    Ok(histogram)
}

/// One-way: sends messages until the budget is spent, then the stop tag; the rate counts from
/// the first send to the peer's word that it has received them all. `at_stop` runs once the
/// peer has said so (its word is one write).
fn stream<L: Link>(
    link: &mut L,
    peer: &mut Peer,
    size: usize,
    budget: Budget,
    at_stop: impl FnOnce(),
) -> Result<f64, BoxError> {
    let mut msg = message(size);
    let started = Instant::now();
    let mut seq = 0u64;
    loop {
        // Read the clock once in a while only: a small message costs less than a clock read.
        for _ in 0..64 {
            msg[..8].copy_from_slice(&seq.to_le_bytes());
            link.send(&msg)?;
            seq += 1;
        }
        if budget.done(started, Instant::now(), seq) {
            break;
        }
    }
    msg[..8].copy_from_slice(&STOP.to_le_bytes());
    link.send(&msg)?;
    let done = peer.line()?;
    at_stop();
    let elapsed = started.elapsed();
    let counted: u64 = done
        .strip_prefix("done ")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("the peer said {done:?}"))?;
    if counted != seq {
        return Err(format!("sent {seq} messages, the peer counted {counted}").into());
    }
    Ok(seq as f64 / elapsed.as_secs_f64())
}

/// Options of the hidden peer process.
#[derive(clap::Args, Debug)]
pub struct PeerArgs {
    #[arg(long, value_enum)]
    mechanism: Mechanism,
    #[arg(long, value_enum)]
    mode: Mode,
    #[arg(long, value_enum)]
    metric: Metric,
    #[arg(long)]
    size: usize,
    #[arg(long)]
    cpu: Option<usize>,
    #[command(flatten)]
    end: PeerEnd,
}

/// The peer: opens its end, says `ready`, then echoes or counts until the stop tag.
pub fn peer(args: &PeerArgs) -> Result<(), BoxError> {
    // If the bench dies, so does its peer (it might otherwise wait forever in a blocking call).
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
    if let Some(cpu) = args.cpu {
        ringport_measure::pin::pin_to(cpu)?;
    }
    let contender = Contender {
        mechanism: args.mechanism,
        mode: args.mode,
    };
    let mut link = open_peer(contender, args.metric, args.size, &args.end)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    let count = with_link!(&mut link, l => match args.metric {
        Metric::RoundTrip => echo(l, args.size),
        Metric::Throughput => count(l),
    })?;
    if args.metric == Metric::Throughput {
        writeln!(out, "done {count}")?;
        out.flush()?;
    }
    Ok(())
}

fn echo<L: Link>(link: &mut L, size: usize) -> Result<u64, BoxError> {
    let mut msg = message(size);
    let mut expected = 0u64;
    loop {
        let tag = link.recv()?;
        if tag != expected && tag != STOP {
            return Err(format!("message {tag} arrived when {expected} was due").into());
        }
        msg[..8].copy_from_slice(&tag.to_le_bytes());
        link.send(&msg)?;
        if tag == STOP {
            return Ok(expected);
        }
        expected += 1;
    }
}

fn count<L: Link>(link: &mut L) -> Result<u64, BoxError> {
    let mut expected = 0u64;
    loop {
        match link.recv()? {
            STOP => return Ok(expected),
            tag if tag == expected => expected += 1,
            tag => return Err(format!("message {tag} arrived when {expected} was due").into()),
        }
    }
}

/// Bytes a second that one thread copies with `copy_from_slice` (one memcpy, both buffers of
/// `size` bytes, warm in cache when they fit): the cost of the one copy a message must take.
///
/// Both buffers start on a page boundary: on some CPUs (AMD Zen 3 here) `rep movsb` copies
/// several times slower when source and destination sit at unrelated offsets in their pages,
/// and the baseline is the copy at its best.
pub fn memcpy_rate(size: usize, budget: Budget) -> f64 {
    const PAGE: usize = 4096;
    let mut area = vec![0u8; 2 * size.next_multiple_of(PAGE) + PAGE];
    let skip = area.as_ptr().align_offset(PAGE);
    let (src, dst) = area[skip..].split_at_mut(size.next_multiple_of(PAGE));
    let (src, dst) = (&mut src[..size], &mut dst[..size]);
    src.copy_from_slice(&message(size));
    let started = Instant::now();
    let mut copies = 0u64;
    loop {
        for _ in 0..16 {
            dst.copy_from_slice(std::hint::black_box(&*src));
            std::hint::black_box(&mut *dst);
        }
        copies += 16;
        if budget.done(started, Instant::now(), copies) {
            break;
        }
    }
    (copies * size as u64) as f64 / started.elapsed().as_secs_f64()
}
