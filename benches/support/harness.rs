//! Fuzzing-harness throughput, shared by `cargo bench --bench harness` and `ringport bench
//! --harness` (included by path in both): execs/s of ringport's harness (`ringport::harness`)
//! against the same protocol over a pipe pair and an AFL++-style persistent forkserver
//! (`ringport_measure::harness`, which uses no ringport), and, where `afl-fuzz` and
//! `afl-clang-fast` are installed, AFL++ itself on an equivalent target.
//!
//! Each round runs every contender on every cell (8-byte and 1 KiB cases, without crashes and
//! with a crash every 1,000 cases) for a fixed time, contenders interleaved within the round;
//! ratios are taken within a round and their medians reported. Every verdict is checked: a case
//! that asks for a crash must get one, and no other may. A second pass times crash to verdict:
//! from sending a case that crashes the target to its verdict (the next target is started
//! after, when a case needs it, and not counted).
//!
//! The targets are the program itself, run again with [`CHILD_ENV`] set: its `main` calls
//! [`child_if_asked`] first.

use std::fmt::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

use ringport::harness::{HarnessOptions, Target, Verdict};
use ringport_measure::harness::{
    afl_forkserver, no_core_dumps, pipe_target, run_case, AflStyle, HarnessUnderTest, PipeDriver,
    CRASH,
};
use ringport_measure::median;
use ringport_measure::pin::pin_to_wrapping as pin_to;

/// Set in a target: which one it plays, and on which core.
pub const CHILD_ENV: &str = "RINGPORT_HARNESS_BENCH_CHILD";

/// Plays the target named in [`CHILD_ENV`] and exits, if it is set.
pub fn child_if_asked() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (role, core) = spec.split_once(':').expect("ROLE:CORE");
    if let Ok(core) = core.parse() {
        pin_to(core);
    }
    match role {
        "ringport" | "ringport-fork" => {
            no_core_dumps();
            if role == "ringport-fork" {
                ringport::harness::fork_server().expect("fork server");
            }
            Target::from_env()
                .expect("attach")
                .run(|case| {
                    run_case(case);
                    b""
                })
                .expect("run");
        }
        "pipe" => pipe_target(),
        "afl" => afl_forkserver(),
        other => panic!("no such harness target: {other}"),
    }
    std::process::exit(0);
}

/// The contenders, in the table's order.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Contender {
    Ringport1,
    Ringport8,
    RingportFork8,
    Pipe1,
    /// With the target on the driver's core: a blocking round trip is cheaper there than
    /// across cores (no cross-core wake-up), so each baseline is measured at its best placement.
    Pipe1OneCore,
    Pipe8,
    AflStyle,
    AflStyleOneCore,
}

const CONTENDERS: [Contender; 8] = [
    Contender::Ringport1,
    Contender::Ringport8,
    Contender::RingportFork8,
    Contender::Pipe1,
    Contender::Pipe1OneCore,
    Contender::Pipe8,
    Contender::AflStyle,
    Contender::AflStyleOneCore,
];

impl Contender {
    fn label(self) -> &'static str {
        match self {
            Contender::Ringport1 => "ringport, 1 in flight",
            Contender::Ringport8 => "ringport, 8 in flight",
            Contender::RingportFork8 => "ringport, fork server, 8 in flight",
            Contender::Pipe1 => "pipe driver, 1 in flight",
            Contender::Pipe1OneCore => "pipe driver, 1 in flight, one core",
            Contender::Pipe8 => "pipe driver, 8 in flight",
            Contender::AflStyle => "AFL++-style forkserver (SIGSTOP/SIGCONT)",
            Contender::AflStyleOneCore => "AFL++-style forkserver, one core",
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Contender::Ringport1 => "ringport_1",
            Contender::Ringport8 => "ringport_8",
            Contender::RingportFork8 => "ringport_fork_8",
            Contender::Pipe1 => "pipe_1",
            Contender::Pipe1OneCore => "pipe_1_one_core",
            Contender::Pipe8 => "pipe_8",
            Contender::AflStyle => "afl_style",
            Contender::AflStyleOneCore => "afl_style_one_core",
        }
    }

    /// Starts it, with its target on `cores.1` (or, for the one-core forms, on the driver's,
    /// `cores.0`).
    fn start(self, max_case: usize, cores: Option<(usize, usize)>) -> Box<dyn HarnessUnderTest> {
        let one_core = matches!(self, Contender::Pipe1OneCore | Contender::AflStyleOneCore);
        let core = cores.map(|(driver, target)| if one_core { driver } else { target });
        let target = |role: &str| {
            let mut command = Command::new(std::env::current_exe().expect("this program"));
            let core = core.map_or("-".to_string(), |c| c.to_string());
            command.env(CHILD_ENV, format!("{role}:{core}"));
            command
        };
        let ringport = |in_flight: usize, fork: bool| -> Box<dyn HarnessUnderTest> {
            let role = if fork { "ringport-fork" } else { "ringport" };
            let driver = HarnessOptions::new()
                .max_case(max_case)
                .max_result(0)
                .in_flight(in_flight)
                .fork_server(fork)
                .spawn(target(role))
                .expect("start the ringport harness");
            Box::new(Ringport { driver, in_flight })
        };
        match self {
            Contender::Ringport1 => ringport(1, false),
            Contender::Ringport8 => ringport(8, false),
            Contender::RingportFork8 => ringport(8, true),
            Contender::Pipe1 | Contender::Pipe1OneCore => {
                Box::new(PipeDriver::new(target("pipe"), 1).expect("pipe"))
            }
            Contender::Pipe8 => Box::new(PipeDriver::new(target("pipe"), 8).expect("pipe")),
            Contender::AflStyle | Contender::AflStyleOneCore => {
                Box::new(AflStyle::new(target("afl"), max_case).expect("forkserver"))
            }
        }
    }
}

/// ringport's driver under the bench's interface.
struct Ringport {
    driver: ringport::harness::Driver,
    in_flight: usize,
}

impl HarnessUnderTest for Ringport {
    fn max_in_flight(&self) -> usize {
        self.in_flight
    }

    fn submit(&mut self, case: &[u8]) {
        self.driver.submit(case).expect("submit");
    }

    fn verdict(&mut self) -> bool {
        match self.driver.next_verdict().expect("a verdict") {
            Verdict::Ok { .. } => false,
            Verdict::Crashed { .. } => true,
            Verdict::TimedOut { id } => panic!("case {id} timed out"),
        }
    }
}

/// One column of the table: the case size and how often a case crashes (0: never).
#[derive(Clone, Copy, Debug)]
struct Cell {
    len: usize,
    crash_every: u64,
}

const CELLS: [Cell; 4] = [
    Cell {
        len: 8,
        crash_every: 0,
    },
    Cell {
        len: 8,
        crash_every: 1000,
    },
    Cell {
        len: 1024,
        crash_every: 0,
    },
    Cell {
        len: 1024,
        crash_every: 1000,
    },
];

impl Cell {
    fn label(self) -> String {
        let size = if self.len >= 1024 {
            format!("{} KiB", self.len / 1024)
        } else {
            format!("{} B", self.len)
        };
        if self.crash_every == 0 {
            size
        } else {
            format!("{size}, crash/{}", self.crash_every)
        }
    }
}

/// Runs cases through `harness` for `budget`, keeping as many in flight as it takes; returns
/// execs/s. Every crash verdict must be a crashing case's, and every crashing case must get one.
fn execs_per_second(harness: &mut dyn HarnessUnderTest, cell: Cell, budget: Duration) -> f64 {
    let mut ok_case = vec![0u8; cell.len];
    ok_case[1..]
        .iter_mut()
        .enumerate()
        .for_each(|(i, b)| *b = i as u8);
    let mut crash_case = ok_case.clone();
    crash_case[0] = CRASH;
    let crashes = |id: u64| cell.crash_every > 0 && id % cell.crash_every == cell.crash_every - 1;
    let mut in_flight = std::collections::VecDeque::new();
    let (mut sent, mut judged) = (0u64, 0u64);
    // A warm-up of 1,000 cases, then the timed part (whole batches of 1,000, so that a crash
    // every 1,000 counts fully).
    const WARM_UP: u64 = 1000;
    let mut timed_from = None;
    loop {
        while in_flight.len() < harness.max_in_flight() {
            let crash = crashes(sent);
            harness.submit(if crash { &crash_case } else { &ok_case });
            in_flight.push_back(crash);
            sent += 1;
        }
        let crashed = harness.verdict();
        assert_eq!(
            crashed,
            in_flight.pop_front().unwrap(),
            "case {judged}'s verdict"
        );
        judged += 1;
        if judged == WARM_UP {
            timed_from = Some(Instant::now());
        }
        if let Some(from) = timed_from {
            let timed = judged - WARM_UP;
            if timed % 1000 == 0 && from.elapsed() >= budget {
                return timed as f64 / from.elapsed().as_secs_f64();
            }
        }
    }
}

/// Times crash to verdict `kills` times: a good case first (the target is up and warm), then
/// one that crashes it, timed from its submission to its verdict. In microseconds.
fn crash_to_verdict(harness: &mut dyn HarnessUnderTest, kills: usize) -> Vec<f64> {
    let ok_case = [0u8; 8];
    let mut crash_case = [0u8; 8];
    crash_case[0] = CRASH;
    (0..kills)
        .map(|_| {
            harness.submit(&ok_case);
            assert!(!harness.verdict());
            let t = Instant::now();
            harness.submit(&crash_case);
            assert!(harness.verdict());
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect()
}

/// The bench's results.
pub struct Report {
    rounds: usize,
    /// execs/s per contender, cell and round.
    rates: Vec<Vec<Vec<f64>>>,
    /// crash to verdict per contender, all samples (us).
    crash_us: Vec<Vec<f64>>,
    afl_plus_plus: Result<f64, String>,
}

/// Runs `rounds` rounds of `budget` a sample, with the driver on `cores.0` (where the caller
/// pinned it) and the targets on `cores.1`, `kills` timed crashes a contender a round, then
/// AFL++ for `afl_seconds` (0: skip it) on the targets' core.
pub fn run(
    rounds: usize,
    budget: Duration,
    kills: usize,
    cores: Option<(usize, usize)>,
    afl_seconds: u64,
    progress: bool,
) -> Report {
    let mut rates = vec![vec![Vec::new(); CELLS.len()]; CONTENDERS.len()];
    let mut crash_us = vec![Vec::new(); CONTENDERS.len()];
    for round in 0..rounds {
        if progress {
            eprintln!("harness: round {} of {rounds}", round + 1);
        }
        for (c, cell) in CELLS.iter().enumerate() {
            // Interleaved: each contender once per cell, in an order that turns each round.
            for k in 0..CONTENDERS.len() {
                let which = (k + round) % CONTENDERS.len();
                let mut harness = CONTENDERS[which].start(1024, cores);
                rates[which][c].push(execs_per_second(harness.as_mut(), *cell, budget));
            }
        }
        for (which, contender) in CONTENDERS.iter().enumerate() {
            let mut harness = contender.start(1024, cores);
            crash_us[which].extend(crash_to_verdict(harness.as_mut(), kills));
        }
    }
    let afl_plus_plus = if afl_seconds == 0 {
        Err("skipped".to_string())
    } else {
        if progress {
            eprintln!("harness: AFL++ for {afl_seconds} s");
        }
        afl_plus_plus(afl_seconds, cores.map(|(_, target)| target))
    };
    Report {
        rounds,
        rates,
        crash_us,
        afl_plus_plus,
    }
}

fn index(contender: Contender) -> usize {
    CONTENDERS.iter().position(|&c| c == contender).unwrap()
}

impl Report {
    /// The median over rounds of `a`'s rate over `b`'s in cell `c`.
    fn ratio(&self, a: Contender, b: Contender, c: usize) -> f64 {
        let (a, b) = (&self.rates[index(a)][c], &self.rates[index(b)][c]);
        median(a.iter().zip(b).map(|(x, y)| x / y).collect())
    }

    fn rate(&self, contender: Contender, c: usize) -> f64 {
        median(self.rates[index(contender)][c].clone())
    }

    /// The table, the ratios and the crash-to-verdict times.
    #[must_use]
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\nFuzzing harness: execs/s, median of {} rounds (contenders interleaved)",
            self.rounds
        );
        let _ = write!(out, "{:<44}", "");
        for cell in CELLS {
            let _ = write!(out, "{:>19}", cell.label());
        }
        out.push('\n');
        for contender in CONTENDERS {
            let _ = write!(out, "{:<44}", contender.label());
            for c in 0..CELLS.len() {
                let _ = write!(out, "{:>19}", human(self.rate(contender, c)));
            }
            out.push('\n');
        }
        let _ = writeln!(out, "ratios (per round, median):");
        let pairs = [
            (Contender::Ringport8, Contender::Pipe8),
            (Contender::RingportFork8, Contender::Pipe8),
            (Contender::Ringport1, Contender::Pipe1OneCore),
            (Contender::Ringport1, Contender::AflStyleOneCore),
            (Contender::Ringport8, Contender::AflStyleOneCore),
            (Contender::RingportFork8, Contender::AflStyleOneCore),
        ];
        for (a, b) in pairs {
            let _ = write!(out, "  {:<42}", format!("{} / {}", a.tag(), b.tag()));
            for c in 0..CELLS.len() {
                let _ = write!(out, "{:>18.1}x", self.ratio(a, b, c));
            }
            out.push('\n');
        }
        let _ = writeln!(out, "crash to verdict, us (median, p90 of all crashes):");
        for contender in CONTENDERS {
            let mut all = self.crash_us[index(contender)].clone();
            all.sort_by(f64::total_cmp);
            let p90 = all[all.len() * 9 / 10];
            let _ = writeln!(
                out,
                "  {:<42}{:>10.0}{:>10.0}",
                contender.label(),
                median(all),
                p90
            );
        }
        match &self.afl_plus_plus {
            Ok(rate) => {
                let ours = self.rate(Contender::Ringport1, 0);
                let _ = writeln!(
                    out,
                    "AFL++ (afl-fuzz, an empty persistent shared-memory target built with \
                     afl-clang-fast; one run after the rounds): {} execs/s; ringport, 1 in \
                     flight, 8 B: {:.1}x",
                    human(*rate),
                    ours / rate
                );
            }
            Err(why) => {
                let _ = writeln!(out, "AFL++ itself: not measured ({why})");
            }
        }
        out
    }

    /// The same as JSON.
    #[must_use]
    pub fn json(&self) -> String {
        let mut out = String::from("{\"rounds\":");
        let _ = write!(out, "{},\"cells\":[", self.rounds);
        for (c, cell) in CELLS.iter().enumerate() {
            if c > 0 {
                out.push(',');
            }
            let _ = write!(
                out,
                "{{\"case_bytes\":{},\"crash_every\":{},\"execs_per_s\":",
                cell.len, cell.crash_every
            );
            out += &per_contender(|k| format!("{:.0}", self.rate(CONTENDERS[k], c)));
            out.push('}');
        }
        out.push_str("],\"crash_to_verdict_us_median\":");
        out += &per_contender(|k| format!("{:.1}", median(self.crash_us[k].clone())));
        out.push_str(",\"afl_plus_plus_execs_per_s\":");
        match &self.afl_plus_plus {
            Ok(rate) => {
                let _ = write!(out, "{rate:.0}");
            }
            Err(_) => out.push_str("null"),
        }
        out.push('}');
        out
    }
}

/// A JSON object of a value per contender, keyed by its tag.
fn per_contender(value: impl Fn(usize) -> String) -> String {
    let fields: Vec<String> = CONTENDERS
        .iter()
        .enumerate()
        .map(|(k, c)| format!("\"{}\":{}", c.tag(), value(k)))
        .collect();
    format!("{{{}}}", fields.join(","))
}

fn human(rate: f64) -> String {
    if rate >= 1e6 {
        format!("{:.2} M", rate / 1e6)
    } else {
        format!("{:.0} k", rate / 1e3)
    }
}

/// The AFL++ target: an empty persistent loop over shared-memory test cases.
const AFL_TARGET: &str = r#"
#include <unistd.h>
__AFL_FUZZ_INIT();
int main(void) {
  __AFL_INIT();
  unsigned char *buf = __AFL_FUZZ_TESTCASE_BUF;
  volatile unsigned char sink = 0;
  while (__AFL_LOOP(1000000)) {
    int len = __AFL_FUZZ_TESTCASE_LEN;
    for (int i = 0; i < len; i += 64) sink ^= buf[i];
  }
  return 0;
}
"#;

/// Runs AFL++ on [`AFL_TARGET`] for `seconds` and reads its execs/s from `fuzzer_stats`.
fn afl_plus_plus(seconds: u64, core: Option<usize>) -> Result<f64, String> {
    let found = |tool: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !found("afl-fuzz") || !found("afl-clang-fast") {
        return Err("afl-fuzz and afl-clang-fast are not installed: apt-get install afl++".into());
    }
    let dir = std::env::temp_dir().join(format!("ringport-afl-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("in")).map_err(|e| e.to_string())?;
    let result = (|| {
        std::fs::write(dir.join("target.c"), AFL_TARGET).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("in/seed"), [0u8; 8]).map_err(|e| e.to_string())?;
        let built = Command::new("afl-clang-fast")
            .args(["-O2", "-o"])
            .arg(dir.join("target"))
            .arg(dir.join("target.c"))
            .output()
            .map_err(|e| e.to_string())?;
        if !built.status.success() {
            return Err(format!(
                "afl-clang-fast failed: {}",
                String::from_utf8_lossy(&built.stderr)
            ));
        }
        let mut fuzz = Command::new("afl-fuzz");
        fuzz.args(["-i"])
            .arg(dir.join("in"))
            .arg("-o")
            .arg(dir.join("out"))
            .args(["-V", &seconds.to_string()]);
        match core {
            Some(core) => fuzz.args(["-b", &core.to_string()]),
            None => fuzz.env("AFL_NO_AFFINITY", "1"),
        };
        let ran = fuzz
            .arg("--")
            .arg(dir.join("target"))
            .env("AFL_NO_UI", "1")
            .env("AFL_SKIP_CPUFREQ", "1")
            .env("AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES", "1")
            .output()
            .map_err(|e| e.to_string())?;
        let stats =
            std::fs::read_to_string(dir.join("out/default/fuzzer_stats")).map_err(|_| {
                format!(
                    "afl-fuzz left no fuzzer_stats: {}",
                    String::from_utf8_lossy(&ran.stdout)
                        .lines()
                        .rev()
                        .take(5)
                        .collect::<Vec<_>>()
                        .join(" / ")
                )
            })?;
        let field = |name: &str| {
            stats.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == name).then(|| v.trim().parse::<f64>().ok())?
            })
        };
        // execs_per_sec is the recent rate; the whole run's is execs_done over its time.
        match (field("execs_done"), field("run_time")) {
            (Some(done), Some(time)) if time > 0.0 => Ok(done / time),
            _ => field("execs_per_sec").ok_or_else(|| "no execs_per_sec in fuzzer_stats".into()),
        }
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}
