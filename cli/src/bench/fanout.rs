//! `ringport bench --pubsub`: one publisher to 1, 2 and 4 subscriber processes. Each sample
//! starts the subscribers (pinned to the other core), and times either a fan-out round trip (a
//! message out to every subscriber, and each one's 8-byte answer back on a path of its own: the
//! time until the last answer) or a stream (messages out as fast as every subscriber takes them,
//! until each one's count is back). Contenders, interleaved in each round:
//!
//! - `ringport-pubsub`: a publish-subscribe ring out, one back from each subscriber;
//! - `spsc-fanout`: the hand-rolled alternative, an SPSC ring to each subscriber, the publisher
//!   copying the message into every one, and one back from each;
//! - `iceoryx2` (with its feature): a publish-subscribe service out, one back from each, and in
//!   the blocking form an event service along each, notified after every send.
//!
//! Busy: `try_` forms in a loop. Blocking: the blocking forms with no spin (iceoryx2's listener
//! wait), so that the figure is the futex path's.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use ringport::pubsub::{History, PubSubOptions};
use ringport::spsc::{Consumer, Producer};
use ringport::{Error, SpscOptions};

use super::links::{look_at, wait_by_mode, Patience};
use super::measure::message;
use super::plan::{show_size, Metric, Mode};
use super::report::{json_string, show_nanos};
use super::BoxError;

/// The tag that ends a sample.
const STOP: u64 = u64::MAX;
/// Bytes of ring each way, at least.
const RING_BYTES: usize = 256 << 10;

/// What carries the messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Carrier {
    RingportPubsub,
    SpscFanout,
    #[cfg(feature = "iceoryx2")]
    Iceoryx2,
}

impl Carrier {
    pub fn name(self) -> &'static str {
        match self {
            Carrier::RingportPubsub => "ringport-pubsub",
            Carrier::SpscFanout => "spsc-fanout",
            #[cfg(feature = "iceoryx2")]
            Carrier::Iceoryx2 => "iceoryx2",
        }
    }

    fn all() -> Vec<Carrier> {
        vec![
            Carrier::RingportPubsub,
            Carrier::SpscFanout,
            #[cfg(feature = "iceoryx2")]
            Carrier::Iceoryx2,
        ]
    }
}

fn spin_for(mode: Mode) -> Duration {
    match mode {
        Mode::Spin => Duration::from_micros(20),
        Mode::Block => Duration::ZERO,
    }
}

/// Room for four messages at least, as iceoryx2's subscriber buffer holds (`iox::buffer`).
fn capacity(size: usize) -> usize {
    let frame = 16 + size.next_multiple_of(8);
    RING_BYTES.max(4 * (frame + 8)).next_power_of_two()
}

fn pubsub_options(mode: Mode, size: usize, subscribers: u32) -> PubSubOptions {
    PubSubOptions::new()
        .capacity(capacity(size))
        .max_message(size.max(8))
        .subscribers(subscribers)
        .history(History::Oldest)
        .spin(spin_for(mode))
}

fn spsc_options(mode: Mode, size: usize) -> SpscOptions {
    SpscOptions::new()
        .capacity(capacity(size))
        .max_frame(size.max(8))
        .spin(spin_for(mode))
}

/// The publisher's side: out to every subscriber, and each one's answers back. (One per
/// sample, never moved on the timed path: the sizes of the variants do not matter.)
#[allow(clippy::large_enum_variant)]
enum Hub {
    Pubsub {
        out: ringport::pubsub::Publisher,
        back: Vec<ringport::pubsub::Subscriber>,
    },
    Spsc {
        out: Vec<Producer>,
        back: Vec<Consumer>,
    },
    #[cfg(feature = "iceoryx2")]
    Iox(iox::Hub),
}

impl Hub {
    fn publish(&mut self, mode: Mode, msg: &[u8]) -> Result<(), BoxError> {
        match self {
            Hub::Pubsub { out, .. } => {
                wait_by_mode!(mode, out.try_send(msg), out.send(msg), Error::Full);
            }
            Hub::Spsc { out, .. } => {
                for ring in out {
                    wait_by_mode!(mode, ring.try_send(msg), ring.send(msg), Error::Full);
                }
            }
            #[cfg(feature = "iceoryx2")]
            Hub::Iox(hub) => hub.publish(mode, msg)?,
        }
        Ok(())
    }

    /// The next answer of subscriber `index`.
    fn answer(&mut self, mode: Mode, index: usize) -> Result<u64, BoxError> {
        Ok(match self {
            Hub::Pubsub { back, .. } => {
                let ring = &mut back[index];
                let sample = wait_by_mode!(mode, ring.try_recv(), ring.recv(), Error::Empty);
                look_at(&sample)?
            }
            Hub::Spsc { back, .. } => {
                let ring = &mut back[index];
                let frame = wait_by_mode!(mode, ring.try_recv(), ring.recv(), Error::Empty);
                look_at(&frame)?
            }
            #[cfg(feature = "iceoryx2")]
            Hub::Iox(hub) => hub.answer(mode, index)?,
        })
    }
}

/// A subscriber's side: the messages in, its answers out.
#[allow(clippy::large_enum_variant)]
enum Leaf {
    Pubsub {
        input: ringport::pubsub::Subscriber,
        back: ringport::pubsub::Publisher,
    },
    Spsc {
        input: Consumer,
        back: Producer,
    },
    #[cfg(feature = "iceoryx2")]
    Iox(iox::Leaf),
}

impl Leaf {
    fn next(&mut self, mode: Mode) -> Result<u64, BoxError> {
        Ok(match self {
            Leaf::Pubsub { input, .. } => {
                let sample = wait_by_mode!(mode, input.try_recv(), input.recv(), Error::Empty);
                look_at(&sample)?
            }
            Leaf::Spsc { input, .. } => {
                let frame = wait_by_mode!(mode, input.try_recv(), input.recv(), Error::Empty);
                look_at(&frame)?
            }
            #[cfg(feature = "iceoryx2")]
            Leaf::Iox(leaf) => leaf.next(mode)?,
        })
    }

    fn answer(&mut self, mode: Mode, value: u64) -> Result<(), BoxError> {
        let bytes = value.to_le_bytes();
        match self {
            Leaf::Pubsub { back, .. } => {
                wait_by_mode!(mode, back.try_send(&bytes), back.send(&bytes), Error::Full);
            }
            Leaf::Spsc { back, .. } => {
                wait_by_mode!(mode, back.try_send(&bytes), back.send(&bytes), Error::Full);
            }
            #[cfg(feature = "iceoryx2")]
            Leaf::Iox(leaf) => leaf.answer(mode, &bytes)?,
        }
        Ok(())
    }
}

/// The subscriber process's arguments (`ringport bench-fanout-peer`).
#[derive(clap::Args, Debug)]
pub struct PeerArgs {
    #[arg(long, value_enum)]
    contender: Carrier,
    #[arg(long, value_enum)]
    mode: Mode,
    #[arg(long, value_enum)]
    metric: Metric,
    #[arg(long)]
    size: usize,
    #[arg(long)]
    subscribers: u32,
    #[arg(long)]
    index: usize,
    #[arg(long)]
    stem: String,
    #[arg(long)]
    cpu: Option<usize>,
}

/// A subscriber process: opens its end, says `ready`, answers every message (round trip) or
/// counts them and answers the count (stream) until the stop tag.
pub fn peer(args: &PeerArgs) -> Result<(), BoxError> {
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
    if let Some(cpu) = args.cpu {
        ringport_measure::pin::pin_to(cpu)?;
    }
    let (mode, size, stem) = (args.mode, args.size, &args.stem);
    let mut leaf = match args.contender {
        Carrier::RingportPubsub => Leaf::Pubsub {
            input: pubsub_options(mode, size, args.subscribers)
                .open_subscriber(format!("{stem}-out").as_str())?,
            back: pubsub_options(mode, 8, 1)
                .create_publisher(format!("{stem}-back-{}", args.index).as_str())?,
        },
        Carrier::SpscFanout => Leaf::Spsc {
            input: spsc_options(mode, size)
                .open_consumer(format!("{stem}-out-{}", args.index).as_str())?,
            back: spsc_options(mode, 8)
                .open_producer(format!("{stem}-back-{}", args.index).as_str())?,
        },
        #[cfg(feature = "iceoryx2")]
        Carrier::Iceoryx2 => Leaf::Iox(iox::Leaf::open(
            mode,
            size,
            args.subscribers,
            stem,
            args.index,
        )?),
    };
    println!("ready");
    let mut count = 0u64;
    loop {
        let seq = leaf.next(mode)?;
        if seq == STOP {
            break;
        }
        count += 1;
        if args.metric == Metric::RoundTrip {
            leaf.answer(mode, seq)?;
        }
    }
    if args.metric == Metric::Throughput {
        leaf.answer(mode, count)?;
    }
    // Stay until the publisher has the answer: a ring's creator unlinks it when it goes.
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    Ok(())
}

/// A peer process of a pattern bench (a subscriber here, a server in `rpc`), killed if the
/// sample ends early; it says `ready` once its end is open.
pub(super) struct Sub {
    pub(super) child: Child,
    out: BufReader<ChildStdout>,
}

impl Sub {
    /// Starts `command` (this program, a hidden peer command) with its standard streams piped.
    pub(super) fn spawn(mut command: Command) -> Result<Sub, BoxError> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let out = BufReader::new(child.stdout.take().expect("piped"));
        Ok(Sub { child, out })
    }

    /// Waits for the peer's `ready`.
    pub(super) fn ready(&mut self) -> Result<(), BoxError> {
        let line = self.line()?;
        if line != "ready" {
            return Err(format!("a peer said {line:?}").into());
        }
        Ok(())
    }

    /// Tells the peer to finish (its standard input closes) and waits for it.
    pub(super) fn finish(mut self) -> Result<(), BoxError> {
        drop(self.child.stdin.take());
        self.child.wait()?;
        Ok(())
    }

    fn line(&mut self) -> Result<String, BoxError> {
        let mut line = String::new();
        if self.out.read_line(&mut line)? == 0 {
            let mut why = String::new();
            if let Some(err) = self.child.stderr.as_mut() {
                let _ = err.read_to_string(&mut why);
            }
            return Err(format!("a subscriber ended: {}", why.trim()).into());
        }
        Ok(line.trim().to_owned())
    }
}

impl Drop for Sub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One case: a contender, a number of subscribers, a size, a wait, a metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Case {
    pub subscribers: u32,
    pub size: usize,
    pub mode: Mode,
    pub metric: Metric,
    pub contender: Carrier,
}

/// What a sample measured: nanoseconds per fan-out round trip (median), or messages a second.
fn sample(case: Case, budget: Duration, cpu: Option<usize>) -> Result<f64, BoxError> {
    let stem = super::unique_name("fan");
    let (mode, size, n) = (case.mode, case.size, case.subscribers);
    // What the publisher makes before the subscribers come.
    let mut hub = match case.contender {
        Carrier::RingportPubsub => Hub::Pubsub {
            out: pubsub_options(mode, size, n).create_publisher(format!("{stem}-out").as_str())?,
            back: Vec::new(),
        },
        Carrier::SpscFanout => {
            let mut out = Vec::new();
            let mut back = Vec::new();
            for i in 0..n {
                out.push(
                    spsc_options(mode, size).create_producer(format!("{stem}-out-{i}").as_str())?,
                );
                back.push(
                    spsc_options(mode, 8).create_consumer(format!("{stem}-back-{i}").as_str())?,
                );
            }
            Hub::Spsc { out, back }
        }
        #[cfg(feature = "iceoryx2")]
        Carrier::Iceoryx2 => Hub::Iox(iox::Hub::create(mode, size, n, &stem)?),
    };
    let mut subs = Vec::new();
    for index in 0..n as usize {
        let mut command = Command::new(std::env::current_exe()?);
        command
            .arg("bench-fanout-peer")
            .args([
                "--contender",
                clap::ValueEnum::to_possible_value(&case.contender)
                    .unwrap()
                    .get_name(),
            ])
            .args([
                "--mode",
                clap::ValueEnum::to_possible_value(&mode)
                    .unwrap()
                    .get_name(),
            ])
            .args([
                "--metric",
                clap::ValueEnum::to_possible_value(&case.metric)
                    .unwrap()
                    .get_name(),
            ])
            .args(["--size", &size.to_string()])
            .args(["--subscribers", &n.to_string()])
            .args(["--index", &index.to_string()])
            .args(["--stem", &stem]);
        if let Some(cpu) = cpu {
            command.args(["--cpu", &cpu.to_string()]);
        }
        subs.push(Sub::spawn(command)?);
    }
    for sub in &mut subs {
        sub.ready()?;
    }
    if let Hub::Pubsub { back, .. } = &mut hub {
        for index in 0..n {
            back.push(
                pubsub_options(mode, 8, 1)
                    .open_subscriber(format!("{stem}-back-{index}").as_str())?,
            );
        }
    }
    let mut msg = message(size.max(8));
    let result = match case.metric {
        Metric::RoundTrip => {
            let mut times = Vec::new();
            let started = Instant::now();
            let mut seq = 0u64;
            while started.elapsed() < budget || times.len() < 10 {
                msg[..8].copy_from_slice(&seq.to_le_bytes());
                let t0 = Instant::now();
                hub.publish(mode, &msg)?;
                for index in 0..n as usize {
                    let got = hub.answer(mode, index)?;
                    if got != seq {
                        return Err(format!("answer {got} came when {seq} was due").into());
                    }
                }
                let elapsed = t0.elapsed().as_nanos() as f64;
                // The first tenth warms up.
                if started.elapsed() > budget / 10 {
                    times.push(elapsed);
                }
                seq += 1;
            }
            times.sort_by(f64::total_cmp);
            times[times.len() / 2]
        }
        Metric::Throughput => {
            let started = Instant::now();
            let mut sent = 0u64;
            while started.elapsed() < budget {
                for _ in 0..64 {
                    msg[..8].copy_from_slice(&sent.to_le_bytes());
                    hub.publish(mode, &msg)?;
                    sent += 1;
                }
            }
            msg[..8].copy_from_slice(&STOP.to_le_bytes());
            hub.publish(mode, &msg)?;
            for index in 0..n as usize {
                let got = hub.answer(mode, index)?;
                if got != sent {
                    return Err(format!("subscriber {index} counted {got} of {sent}").into());
                }
            }
            sent as f64 / started.elapsed().as_secs_f64()
        }
    };
    if case.metric == Metric::RoundTrip {
        msg[..8].copy_from_slice(&STOP.to_le_bytes());
        hub.publish(mode, &msg)?;
    }
    for sub in subs {
        sub.finish()?;
    }
    Ok(result)
}

/// One row of the table: a case's median over the rounds, and its ratio to iceoryx2's (and to
/// the SPSC fan-out's) in the same rounds.
pub struct Row {
    pub case: Case,
    pub median: f64,
    pub vs: Vec<(Carrier, f64)>,
}

/// Runs every case `rounds` times, contenders interleaved (their order rotating each round).
pub fn run(
    sizes: &[usize],
    fanouts: &[u32],
    modes: &[Mode],
    rounds: usize,
    budget: Duration,
    cpu: Option<usize>,
    progress: &indicatif::ProgressBar,
) -> Result<Vec<Row>, BoxError> {
    let contenders = Carrier::all();
    let mut groups = Vec::new();
    for &subscribers in fanouts {
        for &size in sizes {
            for &mode in modes {
                for metric in [Metric::RoundTrip, Metric::Throughput] {
                    groups.push((subscribers, size, mode, metric));
                }
            }
        }
    }
    progress.set_length((groups.len() * contenders.len() * rounds) as u64);
    // Per case, a value per round.
    let mut values: std::collections::BTreeMap<Case, Vec<f64>> = Default::default();
    for round in 0..rounds {
        for &(subscribers, size, mode, metric) in &groups {
            let mut order = contenders.clone();
            let turn = round % order.len();
            order.rotate_left(turn);
            for contender in order {
                let case = Case {
                    subscribers,
                    size,
                    mode,
                    metric,
                    contender,
                };
                let value = sample(case, budget, cpu).map_err(|e| {
                    format!(
                        "{} {} subscribers {}: {e}",
                        contender.name(),
                        subscribers,
                        show_size(size)
                    )
                })?;
                values.entry(case).or_default().push(value);
                progress.inc(1);
            }
        }
    }
    let mut rows = Vec::new();
    for (&case, samples) in &values {
        let mut vs = Vec::new();
        for other in &contenders {
            if *other == case.contender {
                continue;
            }
            let theirs = &values[&Case {
                contender: *other,
                ..case
            }];
            let ratios: Vec<f64> = samples.iter().zip(theirs).map(|(a, b)| a / b).collect();
            vs.push((*other, median(ratios)));
        }
        rows.push(Row {
            case,
            median: median(samples.clone()),
            vs,
        });
    }
    Ok(rows)
}

/// The median of one case's values over the rounds (of a pattern bench).
pub(super) fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn show(case: Case, value: f64) -> String {
    match case.metric {
        Metric::RoundTrip => show_nanos(value as u64),
        Metric::Throughput if value >= 1e6 => format!("{:.2} M/s", value / 1e6),
        Metric::Throughput if value >= 1e3 => format!("{:.1} k/s", value / 1e3),
        Metric::Throughput => format!("{value:.0} /s"),
    }
}

/// The table: latency (median fan-out round trip) and throughput per case, with ratios.
pub fn table(rows: &[Row], header: &str) -> String {
    let mut out = format!("{header}\n\n");
    out += &format!(
        "{:<5} {:>7} {:<6} {:<11} {:<16} {:>11}  ratios (same rounds)\n",
        "subs", "size", "wait", "metric", "contender", "median"
    );
    for row in rows {
        let c = row.case;
        let ratios = ratios_text(row.vs.iter().map(|(other, r)| (other.name(), *r)));
        out += &format!(
            "{:<5} {:>7} {:<6} {:<11} {:<16} {:>11}  {}\n",
            c.subscribers,
            show_size(c.size),
            c.mode.name(),
            c.metric.name(),
            c.contender.name(),
            show(c, row.median),
            ratios
        );
    }
    out
}

/// The rows as JSON, with the machine's description.
pub fn json(rows: &[Row], machine: &str) -> String {
    let rows: Vec<String> = rows
        .iter()
        .map(|row| {
            let c = row.case;
            let vs = ratios_json(row.vs.iter().map(|(other, r)| (other.name(), *r)));
            format!(
                "{{\"subscribers\": {}, \"size\": {}, \"mode\": {}, \"metric\": {}, \"contender\": {}, \"median\": {:.1}, \"ratio_to\": {{{}}}}}",
                c.subscribers,
                c.size,
                json_string(c.mode.name()),
                json_string(c.metric.name()),
                json_string(c.contender.name()),
                row.median,
                vs
            )
        })
        .collect();
    json_doc(machine, &rows)
}

/// A row's ratios to the other contenders, as JSON members.
pub(super) fn ratios_json<'a>(vs: impl Iterator<Item = (&'a str, f64)>) -> String {
    vs.map(|(other, r)| format!("{}: {r:.4}", json_string(other)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A row's ratios to the other contenders, for the table.
pub(super) fn ratios_text<'a>(vs: impl Iterator<Item = (&'a str, f64)>) -> String {
    vs.map(|(other, r)| format!("{r:.2}x {other}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A pattern bench's JSON document: the machine, then the rows.
pub(super) fn json_doc(machine: &str, rows: &[String]) -> String {
    format!(
        "{{\"machine\": {machine},\n \"rows\": [\n  {}\n ]}}\n",
        rows.join(",\n  ")
    )
}

#[cfg(feature = "iceoryx2")]
mod iox {
    //! iceoryx2's side: a publish-subscribe service out (up to the subscribers), one back from
    //! each subscriber; in the blocking form an event service along each.

    use std::time::Duration;

    use iceoryx2::port::listener::Listener;
    use iceoryx2::port::notifier::Notifier;
    use iceoryx2::port::publisher::Publisher;
    use iceoryx2::port::subscriber::Subscriber;
    use iceoryx2::prelude::*;

    use super::super::links::{look_at, Patience, STALL};
    use super::super::plan::Mode;
    use super::super::BoxError;

    type Service = ipc::Service;
    const SLICE: Duration = Duration::from_millis(100);

    fn buffer(size: usize) -> usize {
        ((256usize << 10) / size.max(8)).clamp(4, 1024)
    }

    fn node() -> Result<Node<Service>, BoxError> {
        set_log_level(LogLevel::Error);
        Ok(NodeBuilder::new()
            .signal_handling_mode(SignalHandlingMode::Disabled)
            .create::<Service>()?)
    }

    fn topic(
        node: &Node<Service>,
        name: &str,
        size: usize,
        subscribers: usize,
    ) -> Result<
        iceoryx2::service::port_factory::publish_subscribe::PortFactory<Service, [u8], ()>,
        BoxError,
    > {
        Ok(node
            .service_builder(&ServiceName::new(name)?)
            .publish_subscribe::<[u8]>()
            .enable_safe_overflow(false)
            .subscriber_max_buffer_size(buffer(size))
            .history_size(0)
            .max_publishers(1)
            .max_subscribers(subscribers)
            .open_or_create()?)
    }

    fn event(
        node: &Node<Service>,
        name: &str,
        listeners: usize,
    ) -> Result<iceoryx2::service::port_factory::event::PortFactory<Service>, BoxError> {
        Ok(node
            .service_builder(&ServiceName::new(&format!("{name}-event"))?)
            .event()
            .max_listeners(listeners)
            .open_or_create()?)
    }

    fn receive(
        rx: &Subscriber<Service, [u8], ()>,
        listener: Option<&Listener<Service>>,
        mode: Mode,
    ) -> Result<u64, BoxError> {
        let mut patience = Patience::new();
        let mut slices = 0u32;
        loop {
            if let Some(sample) = rx.receive()? {
                return look_at(sample.payload());
            }
            match (mode, listener) {
                (Mode::Block, Some(listener)) => {
                    listener.timed_wait(|_| {}, SLICE)?;
                    slices += 1;
                    if SLICE * slices > STALL {
                        return Err("iceoryx2: no progress".into());
                    }
                }
                _ => patience.spin()?,
            }
        }
    }

    fn send(
        tx: &Publisher<Service, [u8], ()>,
        notifier: Option<&Notifier<Service>>,
        msg: &[u8],
    ) -> Result<(), BoxError> {
        let sample = tx.loan_slice_uninit(msg.len())?;
        sample.write_from_slice(msg).send()?;
        if let Some(notifier) = notifier {
            notifier.notify()?;
        }
        Ok(())
    }

    /// A subscriber's answers, and (blocking) their wake-ups.
    type Back = (Subscriber<Service, [u8], ()>, Option<Listener<Service>>);

    pub struct Hub {
        tx: Publisher<Service, [u8], ()>,
        notifier: Option<Notifier<Service>>,
        back: Vec<Back>,
        _node: Node<Service>,
    }

    impl Hub {
        pub fn create(mode: Mode, size: usize, n: u32, stem: &str) -> Result<Hub, BoxError> {
            let node = node()?;
            let n = n as usize;
            let tx = topic(&node, &format!("{stem}/out"), size, n)?
                .publisher_builder()
                .initial_max_slice_len(size.max(8))
                .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
                .create()?;
            let notifier = match mode {
                Mode::Block => Some(
                    event(&node, &format!("{stem}/out"), n)?
                        .notifier_builder()
                        .create()?,
                ),
                Mode::Spin => None,
            };
            let mut back = Vec::new();
            for i in 0..n {
                let name = format!("{stem}/back-{i}");
                let rx = topic(&node, &name, 8, 1)?
                    .subscriber_builder()
                    .buffer_size(buffer(8))
                    .create()?;
                let listener = match mode {
                    Mode::Block => Some(event(&node, &name, 1)?.listener_builder().create()?),
                    Mode::Spin => None,
                };
                back.push((rx, listener));
            }
            Ok(Hub {
                tx,
                notifier,
                back,
                _node: node,
            })
        }

        pub fn publish(&mut self, _mode: Mode, msg: &[u8]) -> Result<(), BoxError> {
            send(&self.tx, self.notifier.as_ref(), msg)
        }

        pub fn answer(&mut self, mode: Mode, index: usize) -> Result<u64, BoxError> {
            let (rx, listener) = &self.back[index];
            receive(rx, listener.as_ref(), mode)
        }
    }

    pub struct Leaf {
        rx: Subscriber<Service, [u8], ()>,
        listener: Option<Listener<Service>>,
        tx: Publisher<Service, [u8], ()>,
        notifier: Option<Notifier<Service>>,
        _node: Node<Service>,
    }

    impl Leaf {
        pub fn open(
            mode: Mode,
            size: usize,
            n: u32,
            stem: &str,
            index: usize,
        ) -> Result<Leaf, BoxError> {
            let node = node()?;
            let n = n as usize;
            let rx = topic(&node, &format!("{stem}/out"), size, n)?
                .subscriber_builder()
                .buffer_size(buffer(size))
                .create()?;
            let name = format!("{stem}/back-{index}");
            let tx = topic(&node, &name, 8, 1)?
                .publisher_builder()
                .initial_max_slice_len(8)
                .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
                .create()?;
            let (listener, notifier) = match mode {
                Mode::Block => (
                    Some(
                        event(&node, &format!("{stem}/out"), n)?
                            .listener_builder()
                            .create()?,
                    ),
                    Some(event(&node, &name, 1)?.notifier_builder().create()?),
                ),
                Mode::Spin => (None, None),
            };
            Ok(Leaf {
                rx,
                listener,
                tx,
                notifier,
                _node: node,
            })
        }

        pub fn next(&mut self, mode: Mode) -> Result<u64, BoxError> {
            receive(&self.rx, self.listener.as_ref(), mode)
        }

        pub fn answer(&mut self, _mode: Mode, bytes: &[u8]) -> Result<(), BoxError> {
            send(&self.tx, self.notifier.as_ref(), bytes)
        }
    }
}
