//! `ringport bench`: IPC mechanisms side by side, against the hardware limit, in one run.
//!
//! The bench starts a peer process of this same program for every sample, hands it its end of
//! the mechanism (inherited descriptors, names or a port), pins the two to different cores, and
//! times ping-pong round trips (a histogram) or a one-way stream (a rate). Samples of all the
//! mechanisms are interleaved, round after round, so that the machine's drift hits them alike;
//! every figure is then divided by the raw baseline's from the same run.

mod chart;
mod fanout;
#[path = "../../../benches/support/harness.rs"]
mod harness;
mod links;
mod measure;
#[path = "../../../benches/support/crash_notice.rs"]
mod notice;
mod plan;
mod report;
mod rpc;
mod setup;
mod syscalls;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub use fanout::{peer as fanout_peer, PeerArgs as FanoutPeerArgs};
pub use harness::child_if_asked as harness_child_if_asked;
pub use measure::{peer, PeerArgs};
use measure::{Budget, Sample};
pub use notice::child_if_asked;
use plan::{parse_size, show_size, Case, Contender, Mechanism, Metric, Mode};
pub(crate) use report::json_string;
use report::{Crossings, Machine, Notices, Outcome, Results};
pub use rpc::{peer as rpc_peer, PeerArgs as RpcPeerArgs};
pub use setup::{peer as setup_peer, PeerArgs as SetupPeerArgs};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Message sizes measured unless `--sizes` says otherwise.
const DEFAULT_SIZES: [usize; 7] = [8, 64, 512, 4 << 10, 32 << 10, 256 << 10, 1 << 20];

/// Options of `ringport bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Fewer and shorter samples: the default set in about a minute.
    #[arg(long)]
    quick: bool,
    /// Message sizes, comma-separated (8 B to 64 MiB; K and M are binary units).
    #[arg(long, value_delimiter = ',', value_parser = parse_size)]
    sizes: Vec<usize>,
    /// Mechanisms, comma-separated (default: all in this build).
    #[arg(long, value_delimiter = ',', value_enum)]
    mechanisms: Vec<Mechanism>,
    /// How the ends wait: spin (busy-polling), block, or both (default).
    #[arg(long, value_delimiter = ',', value_enum)]
    modes: Vec<Mode>,
    /// What to measure: round-trip, throughput, or both (default).
    #[arg(long, value_delimiter = ',', value_enum)]
    metrics: Vec<Metric>,
    /// Messages in each sample (round trips, or messages streamed), instead of a duration.
    #[arg(long, conflicts_with = "duration")]
    iterations: Option<u64>,
    /// How long each sample runs, in milliseconds (default 200; 50 with --quick).
    #[arg(long, value_name = "MS")]
    duration: Option<u64>,
    /// Rounds: each runs every case once (default 5; 3 with --quick).
    #[arg(long)]
    rounds: Option<usize>,
    /// The cores for the bench and its peer (default: 0,1 when there are two or more).
    #[arg(long, value_delimiter = ',', num_args = 1, value_name = "A,B")]
    cpus: Option<Vec<usize>>,
    /// Do not pin the processes to cores.
    #[arg(long, conflicts_with = "cpus")]
    no_pin: bool,
    /// Write the results as JSON to this file (`-`: standard output).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write the results as CSV to this file (`-`: standard output).
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
    /// Draw latency and throughput against message size to this file (.svg or .png).
    #[arg(long, value_name = "FILE")]
    chart: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
    /// Skip the crash-notice and idle measurements that follow the table.
    #[arg(long, conflicts_with = "notice_only")]
    no_notice: bool,
    /// Only the crash-notice and idle measurements: kill -9 to the survivor's notice against a
    /// pipe's end-of-file, and the CPU of endpoints blocked with no traffic.
    #[arg(long)]
    notice_only: bool,
    /// Only the fuzzing-harness measurement: execs/s of ringport's harness against the same
    /// protocol over pipes, an AFL++-style forkserver and, where installed, AFL++ itself.
    #[arg(long, conflicts_with_all = ["notice_only", "no_notice", "chart", "csv"])]
    harness: bool,
    /// Say what each mechanism does, in one line each, and measure nothing.
    #[arg(long)]
    list: bool,
    /// Only count the system calls of each case (both processes, per round trip or message
    /// streamed), in a pass of --iterations messages (default 10,000), with the raw_syscalls
    /// tracepoint (needs root or a permissive kernel.perf_event_paranoid).
    #[arg(long, conflicts_with_all = ["harness", "notice_only", "chart", "csv", "no_syscalls"])]
    syscalls: bool,
    /// Skip the untimed pass that counts each case's system calls for the calls column.
    #[arg(long)]
    no_syscalls: bool,
    /// Only copy versus map: the set-up of each kind of shared memory (create, size, map,
    /// fault in, first message) against sending the bytes through a socket, at each size, and
    /// after how many messages mapping pays (--sizes, --rounds, --json, --quick apply).
    #[arg(long, conflicts_with_all = ["harness", "notice_only", "chart", "csv", "syscalls", "mechanisms", "modes", "metrics"])]
    setup: bool,
    /// Only publish-subscribe: one publisher to 1, 2 and 4 subscriber processes (or
    /// --subscribers), at 64 B and 1 MiB (or --sizes), busy and blocking, fan-out round trip
    /// and stream, against an SPSC ring per subscriber and, with the `iceoryx2` feature,
    /// iceoryx2's publish-subscribe (--rounds, --duration, --json, --quick apply).
    #[arg(long, conflicts_with_all = ["harness", "notice_only", "chart", "csv", "syscalls", "mechanisms", "metrics", "setup"])]
    pubsub: bool,
    /// Only request-response: a call and its response (as long as the request) between the
    /// bench and a server process, at 64 B and 1 MiB (or --sizes), busy and blocking, against
    /// a ringport Channel ping-pong and, with the `iceoryx2` feature, iceoryx2's
    /// request-response (--rounds, --duration, --json, --quick apply).
    #[arg(long, conflicts_with_all = ["harness", "notice_only", "chart", "csv", "syscalls", "mechanisms", "metrics", "setup", "pubsub"])]
    rpc: bool,
    /// Subscriber counts for --pubsub, comma-separated (default 1,2,4).
    #[arg(long, value_delimiter = ',', requires = "pubsub")]
    subscribers: Vec<u32>,
}

/// Sizes of `--setup` unless `--sizes` says otherwise: the table's, and up to 8 MiB, where a
/// single message may pay for a mapping.
const SETUP_SIZES: [usize; 9] = [
    8,
    64,
    512,
    4 << 10,
    32 << 10,
    256 << 10,
    1 << 20,
    4 << 20,
    8 << 20,
];

/// A bar of samples done, for a bench that learns its length as it goes (none with
/// `--no-progress`).
fn samples_bar(args: &BenchArgs) -> ProgressBar {
    if args.no_progress {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} samples, {elapsed} {msg}")
            .expect("a valid template"),
    );
    bar
}

/// `ringport bench --pubsub` (see `fanout`) and `--rpc` (see `rpc`).
fn patterns_only(args: &BenchArgs) -> Result<(), BoxError> {
    let sizes = if args.sizes.is_empty() {
        vec![64, 1 << 20]
    } else {
        args.sizes.iter().map(|&s| s.max(8)).collect()
    };
    let cpus = args.cpus()?;
    if let Some((mine, _)) = cpus {
        ringport_measure::pin::pin_to(mine).map_err(|e| format!("pinning to core {mine}: {e}"))?;
    }
    let rounds = args.rounds.unwrap_or(if args.quick { 1 } else { 3 }).max(1);
    let sample = Duration::from_millis(args.duration.unwrap_or(if args.quick { 50 } else { 200 }));
    let progress = samples_bar(args);
    let peer = cpus.map(|(_, p)| p);
    let modes = if args.modes.is_empty() {
        vec![Mode::Spin, Mode::Block]
    } else {
        args.modes.clone()
    };
    let mut m = machine(args, cpus, args.budget(), rounds);
    m.settings = format!(
        "{rounds} interleaved rounds of {} ms samples{}",
        sample.as_millis(),
        if args.rpc {
            ""
        } else {
            "; subscribers all on the peer core"
        }
    );
    let header = format!(
        "{} ({} cores), Linux {}, {}; {}\n{}",
        m.cpu, m.cores, m.kernel, m.date, m.pinning, m.settings
    );
    let (table, json) = if args.rpc {
        let rows = rpc::run(&sizes, &modes, rounds, sample, peer, &progress)?;
        (rpc::table(&rows, &header), rpc::json(&rows, &m.json()))
    } else {
        let fanouts = if args.subscribers.is_empty() {
            vec![1, 2, 4]
        } else {
            args.subscribers.clone()
        };
        let rows = fanout::run(&sizes, &fanouts, &modes, rounds, sample, peer, &progress)?;
        (
            fanout::table(&rows, &header),
            fanout::json(&rows, &m.json()),
        )
    };
    progress.finish_and_clear();
    if args.json.as_deref() != Some(Path::new("-")) {
        print!("{table}");
    }
    if let Some(path) = &args.json {
        write_output(path, &json)?;
    }
    Ok(())
}

/// `ringport bench --setup` (see `setup`).
fn setup_only(args: &BenchArgs) -> Result<(), BoxError> {
    let sizes = if args.sizes.is_empty() {
        SETUP_SIZES.to_vec()
    } else {
        args.sizes.iter().map(|&s| s.max(8)).collect()
    };
    let cpus = args.cpus()?;
    if let Some((mine, _)) = cpus {
        ringport_measure::pin::pin_to(mine).map_err(|e| format!("pinning to core {mine}: {e}"))?;
    }
    // Each round runs every kind at every size under both waits, three samples of each.
    let rounds = args
        .rounds
        .unwrap_or(if args.quick { 3 } else { 15 })
        .max(1);
    let progress = samples_bar(args);
    let rows = setup::run(&sizes, rounds, args.quick, cpus.map(|(_, p)| p), &progress)?;
    progress.finish_and_clear();
    let mut m = machine(args, cpus, args.budget(), rounds);
    m.settings = format!(
        "{rounds} interleaved rounds, each kind at each size once busy and once blocking a round"
    );
    let header = format!(
        "{} ({} cores), Linux {}, {}; {}\n{}",
        m.cpu, m.cores, m.kernel, m.date, m.pinning, m.settings
    );
    let to_stdout = args.json.as_deref() == Some(Path::new("-"));
    if !to_stdout {
        print!("{}", setup::table(&rows, &header));
    }
    if let Some(path) = &args.json {
        let machine = m.json();
        write_output(path, &setup::json(&rows, &machine))?;
    }
    Ok(())
}

/// Messages of the untimed pass that counts system calls for the table (and three times as
/// many: see `measure::syscalls_per_message`): up to this many, fewer for large messages (64 MiB
/// a pass, at least 100), whose counts are large and steady.
const COUNTED_MESSAGES: u64 = 1_000;
const COUNTED_MESSAGES_QUICK: u64 = 300;
const COUNTED_BYTES: u64 = 64 << 20;

fn counted_messages(most: u64, size: usize) -> u64 {
    (COUNTED_BYTES / size as u64).clamp(100, most)
}

/// Counts the system calls of every case that ran, in an untimed pass after the timed rounds,
/// into its outcome; returns how, or why not.
fn count_crossings(
    outcomes: &mut BTreeMap<Case, Outcome>,
    most: u64,
    cpus: Option<(usize, usize)>,
    watchdog: &Watchdog,
    progress: &ProgressBar,
) -> Crossings {
    let tracepoint = match syscalls::tracepoint() {
        Ok(id) => id,
        Err(why) => return Crossings::Refused(why),
    };
    // Whether perf lets us count at all, asked once (it answers every case alike).
    if let Err(why) = syscalls::Counter::open(tracepoint, 0) {
        return Crossings::Refused(why);
    }
    let runnable: Vec<Case> = outcomes
        .iter()
        .filter(|(_, o)| o.error.is_none())
        .map(|(c, _)| *c)
        .collect();
    progress.set_length(runnable.len() as u64);
    progress.set_position(0);
    for case in runnable {
        progress.inc(1);
        progress.set_message(format!(
            "system calls: {} {} {}",
            case.contender,
            case.metric.name(),
            show_size(case.size)
        ));
        watchdog.arm(
            Budget::Messages(most).limit(),
            format!("counting the system calls of {}", case.contender),
        );
        let messages = counted_messages(most, case.size);
        let counted =
            measure::syscalls_per_message(case, messages, cpus.map(|(_, p)| p), tracepoint)
                .map_err(|e| e.to_string());
        watchdog.disarm();
        outcomes
            .get_mut(&case)
            .expect("every case has an outcome")
            .syscalls = Some(counted);
    }
    Crossings::Counted {
        method: format!(
            "perf_event_open on the raw_syscalls:sys_enter tracepoint, untimed passes of n and \
             3n messages a case, the difference; n = {most}, or 64 MiB of messages if fewer, \
             at least 100"
        ),
    }
}

/// The crash-notice and idle measurements (see `benches/support/crash_notice.rs`): as many
/// rounds as the table's, 20 kills of each kind a round (5 with --quick), and a 10 s idle
/// sample (2 s).
fn notices(args: &BenchArgs, rounds: usize, cpus: Option<(usize, usize)>) -> Notices {
    let kills = if args.quick { 5 } else { 20 };
    let idle_sample = Duration::from_secs(if args.quick { 2 } else { 10 });
    let child_core = cpus.map(|(_, peer)| peer);
    if !args.no_progress {
        eprintln!("crash notice: {rounds} rounds of {kills} kills of each kind, then {idle_sample:?} idle");
    }
    Notices {
        rounds,
        kills,
        crash: notice::crash(rounds, kills, child_core),
        idle_sample,
        idle: notice::idle(idle_sample, child_core),
    }
}

/// A name no other sample or run uses (for segments and queues).
pub fn unique_name(what: &str) -> String {
    // Relaxed: only uniqueness matters, which the atomic add gives whatever the order.
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "ringport-bench-{}-{what}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

impl BenchArgs {
    fn budget(&self) -> Budget {
        match (self.iterations, self.duration) {
            (Some(n), _) => Budget::Messages(n.max(1)),
            (None, Some(ms)) => Budget::Time(Duration::from_millis(ms.max(1))),
            (None, None) => Budget::Time(Duration::from_millis(if self.quick { 50 } else { 200 })),
        }
    }

    fn rounds(&self) -> usize {
        self.rounds.unwrap_or(if self.quick { 3 } else { 5 }).max(1)
    }

    /// The cores to pin the bench and its peer to, if any.
    fn cpus(&self) -> Result<Option<(usize, usize)>, BoxError> {
        if self.no_pin {
            return Ok(None);
        }
        match self.cpus.as_deref() {
            Some([a, b]) => Ok(Some((*a, *b))),
            Some(_) => Err("--cpus takes two cores: the bench's and its peer's".into()),
            None if ringport_measure::pin::online_cores() >= 2 => Ok(Some((0, 1))),
            None => Ok(None),
        }
    }

    /// Every case, grouped by metric and size (the contenders of a group interleave).
    fn cases(&self) -> Result<Vec<Case>, BoxError> {
        let sizes = if self.sizes.is_empty() {
            DEFAULT_SIZES.to_vec()
        } else {
            self.sizes.clone()
        };
        let mechanisms: Vec<Mechanism> = if self.mechanisms.is_empty() {
            Mechanism::ALL.into_iter().filter(|m| m.built()).collect()
        } else {
            if let Some(m) = self.mechanisms.iter().find(|m| !m.built()) {
                return Err(format!(
                    "{} is not in this build: cargo run --release --features iceoryx2 -- bench",
                    m.name()
                )
                .into());
            }
            self.mechanisms.clone()
        };
        let modes = if self.modes.is_empty() {
            vec![Mode::Spin, Mode::Block]
        } else {
            self.modes.clone()
        };
        let metrics = if self.metrics.is_empty() {
            vec![Metric::RoundTrip, Metric::Throughput]
        } else {
            self.metrics.clone()
        };
        let mut cases = Vec::new();
        for &metric in &metrics {
            for &size in &sizes {
                for &mechanism in &mechanisms {
                    for &mode in &modes {
                        let contender = Contender { mechanism, mode };
                        if contender.measures(metric) {
                            cases.push(Case {
                                metric,
                                size,
                                contender,
                            });
                        }
                    }
                }
            }
        }
        cases.sort();
        cases.dedup();
        if cases.is_empty() {
            return Err("nothing to measure with these options".into());
        }
        Ok(cases)
    }
}

/// Ends the process if a sample hangs (a peer that died while the bench sleeps in a blocking
/// call of a mechanism that does not notice, such as a message queue).
struct Watchdog {
    deadline: Arc<Mutex<Option<(Instant, String)>>>,
}

impl Watchdog {
    fn start() -> Watchdog {
        let deadline: Arc<Mutex<Option<(Instant, String)>>> = Arc::default();
        let watched = Arc::clone(&deadline);
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(500));
            if let Some((at, what)) = &*watched.lock().expect("not poisoned") {
                if Instant::now() > *at {
                    eprintln!("ringport bench: {what} hung; giving up");
                    std::process::exit(2);
                }
            }
        });
        Watchdog { deadline }
    }

    fn arm(&self, limit: Duration, what: String) {
        *self.deadline.lock().expect("not poisoned") = Some((Instant::now() + limit, what));
    }

    fn disarm(&self) {
        *self.deadline.lock().expect("not poisoned") = None;
    }
}

fn machine(
    args: &BenchArgs,
    cpus: Option<(usize, usize)>,
    budget: Budget,
    rounds: usize,
) -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split(':').nth(1))
        })
        .map_or_else(|| "unknown CPU".to_owned(), |s| s.trim().to_owned());
    let kernel = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let pinning = match cpus {
        Some((a, b)) => format!("bench on core {a}, peer on core {b}"),
        None => "not pinned".to_owned(),
    };
    let budget = match budget {
        Budget::Time(t) => format!("{} ms a sample", t.as_millis()),
        Budget::Messages(n) => format!("{n} messages a sample"),
    };
    let quick = if args.quick { " (--quick)" } else { "" };
    Machine {
        cpu,
        cores: ringport_measure::pin::online_cores(),
        kernel,
        date: today(),
        pinning,
        settings: format!("{rounds} interleaved rounds, {budget}{quick}; round trips: all rounds merged; rates: median of rounds"),
    }
}

/// Today's date (UTC), from the system clock.
fn today() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

fn write_output(path: &Path, text: &str) -> Result<(), BoxError> {
    if path == Path::new("-") {
        print!("{text}");
        Ok(())
    } else {
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()).into())
    }
}

/// Runs `ringport bench`.
pub fn run(args: &BenchArgs) -> Result<(), BoxError> {
    if args.list {
        for mechanism in Mechanism::ALL {
            let built = if mechanism.built() {
                ""
            } else {
                " (not in this build)"
            };
            println!(
                "{:<16} {}{built}",
                mechanism.name(),
                mechanism.description()
            );
        }
        return Ok(());
    }
    if args.harness {
        return harness_only(args);
    }
    if args.syscalls {
        return syscalls_only(args);
    }
    if args.setup {
        return setup_only(args);
    }
    if args.pubsub || args.rpc {
        return patterns_only(args);
    }
    let cases = if args.notice_only {
        Vec::new()
    } else {
        args.cases()?
    };
    let budget = args.budget();
    let rounds = args.rounds();
    let cpus = args.cpus()?;
    if let Some(path) = &args.chart {
        chart::check_path(path)?;
    }
    let watchdog = Watchdog::start();
    if let Some((mine, _)) = cpus {
        ringport_measure::pin::pin_to(mine).map_err(|e| format!("pinning to core {mine}: {e}"))?;
    }
    // The sizes streamed, for the memcpy reference.
    let sizes: BTreeSet<usize> = cases
        .iter()
        .filter(|c| c.metric == Metric::Throughput)
        .map(|c| c.size)
        .collect();
    let progress = if args.no_progress {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::with_draw_target(
            Some((rounds * cases.len()) as u64),
            ProgressDrawTarget::stderr(),
        );
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:30} {pos}/{len} samples, {elapsed} (eta {eta}) {msg}",
            )
            .expect("a valid template"),
        );
        bar
    };
    let mut outcomes: BTreeMap<Case, Outcome> =
        cases.iter().map(|c| (*c, Outcome::default())).collect();
    let mut memcpy: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    for round in 0..rounds {
        for size in &sizes {
            memcpy
                .entry(*size)
                .or_default()
                .push(measure::memcpy_rate(*size, budget));
        }
        for case in plan::round_order(&cases, round) {
            progress.inc(1);
            let outcome = outcomes.get_mut(&case).expect("every case has an outcome");
            if outcome.error.is_some() {
                continue;
            }
            progress.set_message(format!(
                "round {}/{rounds}: {} {} {}",
                round + 1,
                case.contender,
                case.metric.name(),
                show_size(case.size)
            ));
            watchdog.arm(
                budget.limit(),
                format!(
                    "{} {} at {}",
                    case.contender,
                    case.metric.name(),
                    show_size(case.size)
                ),
            );
            let sample = measure::sample(case, budget, cpus.map(|(_, peer)| peer));
            watchdog.disarm();
            match sample {
                Ok(Sample::RoundTrips(h)) => match &mut outcome.histogram {
                    Some(all) => all.add(&h)?,
                    None => outcome.histogram = Some(h),
                },
                Ok(Sample::Rate(r)) => outcome.rates.push(r),
                Err(e) => outcome.error = Some(e.to_string()),
            }
        }
    }
    let crossings = if args.no_syscalls || outcomes.is_empty() {
        Crossings::Skipped
    } else {
        let messages = if args.quick {
            COUNTED_MESSAGES_QUICK
        } else {
            COUNTED_MESSAGES
        };
        count_crossings(&mut outcomes, messages, cpus, &watchdog, &progress)
    };
    progress.finish_and_clear();
    let notices = (!args.no_notice).then(|| notices(args, rounds, cpus));
    let results = Results {
        outcomes,
        memcpy,
        notices,
        crossings,
        machine: machine(args, cpus, budget, rounds),
    };
    let to_stdout = |p: &Option<PathBuf>| p.as_deref() == Some(Path::new("-"));
    if !to_stdout(&args.json) && !to_stdout(&args.csv) {
        print!("{}", report::table(&results));
    }
    if let Some(path) = &args.json {
        write_output(path, &report::json(&results))?;
    }
    if let Some(path) = &args.csv {
        write_output(path, &report::csv(&results))?;
    }
    if let Some(path) = &args.chart {
        chart::draw(&results, path)?;
        eprintln!("chart written to {}", path.display());
    }
    Ok(())
}

/// `ringport bench --syscalls`: the system calls of every case, counted (see `syscalls`).
fn syscalls_only(args: &BenchArgs) -> Result<(), BoxError> {
    let cases = args.cases()?;
    let cpus = args.cpus()?;
    if let Some((mine, _)) = cpus {
        ringport_measure::pin::pin_to(mine).map_err(|e| format!("pinning to core {mine}: {e}"))?;
    }
    let messages = args.iterations.unwrap_or(10_000).max(10);
    let tracepoint =
        syscalls::tracepoint().map_err(|why| format!("cannot count system calls: {why}"))?;
    let mut lines = Vec::new();
    let mut json = Vec::new();
    for case in cases {
        let counted =
            measure::syscalls_per_message(case, messages, cpus.map(|(_, p)| p), tracepoint);
        let (shown, value) = match counted {
            Ok(n) => (format!("{n:.2}"), format!("{n:.4}")),
            Err(e) => (format!("n/a: {e}"), "null".to_string()),
        };
        let copies = report::copies(&case);
        lines.push(format!(
            "{:<8} {:<16} {:<6} {:<11} {:>8} {:>7}",
            show_size(case.size),
            case.contender.mechanism.name(),
            case.contender.mode.name(),
            match case.metric {
                Metric::RoundTrip => "round trip",
                Metric::Throughput => "one way",
            },
            shown,
            copies
        ));
        json.push(format!(
            "{{\"metric\":\"{}\",\"mechanism\":\"{}\",\"mode\":\"{}\",\"size\":{},\"syscalls_per_message\":{value},\"copies_by_design\":{copies}}}",
            case.metric.name(),
            case.contender.mechanism.name(),
            case.contender.mode.name(),
            case.size
        ));
    }
    if let Some(path) = &args.json {
        let body = format!(
            "{{\"method\":\"perf_event_open on the raw_syscalls:sys_enter tracepoint, the bench's thread and every thread of its peer, {messages} messages a case, not timed\",\"records\":[\n{}\n]}}\n",
            json.join(",\n")
        );
        write_output(path, &body)?;
        if path.as_os_str() == "-" {
            return Ok(());
        }
    }
    println!(
        "System calls per round trip or message, both processes ({messages} messages a case; \
         perf_event_open on the raw_syscalls:sys_enter tracepoint, not timed), and the copies \
         of the messages that each mechanism makes by design"
    );
    println!(
        "{:<8} {:<16} {:<6} {:<11} {:>8} {:>7}",
        "size", "mechanism", "mode", "metric", "calls", "copies"
    );
    for line in lines {
        println!("{line}");
    }
    Ok(())
}

/// `ringport bench --harness` (see `benches/support/harness.rs`): 5 rounds of 300 ms samples and
/// 20 s of AFL++ (2 rounds of 100 ms and 5 s with --quick).
fn harness_only(args: &BenchArgs) -> Result<(), BoxError> {
    let cpus = args.cpus()?;
    if let Some((mine, _)) = cpus {
        ringport_measure::pin::pin_to(mine).map_err(|e| format!("pinning to core {mine}: {e}"))?;
    }
    let (rounds, budget, kills, afl) = if args.quick {
        (2, Duration::from_millis(100), 10, 5)
    } else {
        (args.rounds(), Duration::from_millis(300), 20, 20)
    };
    let report = harness::run(rounds, budget, kills, cpus, afl, !args.no_progress);
    print!("{}", report.table());
    match args.json.as_deref() {
        Some(path) if path == Path::new("-") => println!("{}", report.json()),
        Some(path) => std::fs::write(path, report.json() + "\n")?,
        None => {}
    }
    Ok(())
}
