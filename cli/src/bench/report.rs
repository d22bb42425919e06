//! What a run found: per-case summaries, their ratios to the hardware baseline, and the table,
//! JSON and CSV made from them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;

use super::notice::{idle_table, notice_table, IdleRow, NoticeRow};
use super::plan::{show_size, Case, Contender, Metric};

/// Everything the samples of one case gave.
#[derive(Default)]
pub struct Outcome {
    /// Round trips, all rounds merged.
    pub histogram: Option<Histogram<u64>>,
    /// Messages a second, one per round.
    pub rates: Vec<f64>,
    /// Why the case could not run (the first failure; the case is then dropped).
    pub error: Option<String>,
    /// System calls of both processes per round trip or message streamed, from the untimed
    /// counting pass (None: not counted; the reason is in [`Crossings`]).
    pub syscalls: Option<Result<f64, String>>,
}

/// How the system calls were counted, or why they were not.
pub enum Crossings {
    /// Counted as `method` says, each case's in its outcome.
    Counted { method: String },
    /// The machine refused (the reason); the run went on without them.
    Refused(String),
    /// `--no-syscalls`.
    Skipped,
}

/// The copies of the messages that `case`'s mechanism makes by design, per round trip (two
/// messages) or per message streamed.
pub fn copies(case: &Case) -> u32 {
    case.contender.mechanism.copies()
        * match case.metric {
            Metric::RoundTrip => 2,
            Metric::Throughput => 1,
        }
}

fn show_calls(calls: Option<&Result<f64, String>>) -> String {
    match calls {
        Some(Ok(n)) if *n < 0.005 => "0".to_owned(),
        Some(Ok(n)) if *n < 10.0 => format!("{n:.2}"),
        Some(Ok(n)) => format!("{n:.1}"),
        Some(Err(_)) => "n/a".to_owned(),
        None => "-".to_owned(),
    }
}

/// Where and when the figures were taken.
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub kernel: String,
    pub date: String,
    pub pinning: String,
    pub settings: String,
}

impl Machine {
    /// The machine as a JSON object.
    pub fn json(&self) -> String {
        format!(
            "{{\"cpu\":{},\"cores\":{},\"kernel\":{},\"date\":{},\"pinning\":{},\"settings\":{}}}",
            json_string(&self.cpu),
            self.cores,
            json_string(&self.kernel),
            json_string(&self.date),
            json_string(&self.pinning),
            json_string(&self.settings)
        )
    }
}

/// The percentiles reported for round trips.
pub const PERCENTILES: [(&str, f64); 5] = [
    ("p50", 50.0),
    ("p90", 90.0),
    ("p99", 99.0),
    ("p99.9", 99.9),
    ("max", 100.0),
];

/// One row of the report.
pub struct Record {
    pub case: Case,
    pub figures: Figures,
    /// System calls per round trip or message (see [`Outcome::syscalls`]).
    pub syscalls: Option<Result<f64, String>>,
}

pub enum Figures {
    RoundTrip {
        count: u64,
        /// Nanoseconds at each of [`PERCENTILES`].
        nanos: [u64; 5],
        /// Each over the baseline's figure at the same percentile.
        ratios: [Option<f64>; 5],
    },
    Throughput {
        /// Median over rounds.
        messages_per_s: f64,
        /// Over the baseline's rate (the same for bytes, at one size).
        ratio: Option<f64>,
        /// Bytes a second over one memcpy's.
        memcpy_ratio: Option<f64>,
    },
    Failed(String),
}

fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

pub struct Results {
    pub outcomes: BTreeMap<Case, Outcome>,
    /// memcpy bytes a second, one per round, by size.
    pub memcpy: BTreeMap<usize, Vec<f64>>,
    /// The crash-notice and idle measurements, unless skipped.
    pub notices: Option<Notices>,
    pub crossings: Crossings,
    pub machine: Machine,
}

/// What the crash-notice and idle measurements found.
pub struct Notices {
    pub rounds: usize,
    pub kills: usize,
    pub crash: Vec<NoticeRow>,
    pub idle_sample: std::time::Duration,
    pub idle: Vec<IdleRow>,
}

impl Notices {
    fn table(&self) -> String {
        format!(
            "\n{}\n{}",
            notice_table(&self.crash, self.rounds, self.kills),
            idle_table(&self.idle, self.idle_sample)
        )
    }

    fn json(&self) -> String {
        let crash: Vec<String> = self
            .crash
            .iter()
            .map(|r| {
                format!(
                    "    {{\"kind\":{},\"median_ns\":{},\"max_ns\":{},\"ratio_to_pipe\":{:.3}}}",
                    json_string(r.kind),
                    r.median.as_nanos(),
                    r.max.as_nanos(),
                    r.ratio
                )
            })
            .collect();
        let idle: Vec<String> = self
            .idle
            .iter()
            .map(|r| {
                format!(
                    "    {{\"case\":{},\"cpu_percent\":{:.5},\"wake_ups\":{}}}",
                    json_string(r.case),
                    r.cpu_share * 100.0,
                    r.wakes
                )
            })
            .collect();
        format!(
            ",\n  \"crash_notice\":{{\"rounds\":{},\"kills_a_round\":{},\"kinds\":[\n{}\n  ]}},\n  \"idle\":{{\"seconds\":{},\"cases\":[\n{}\n  ]}}",
            self.rounds,
            self.kills,
            crash.join(",\n"),
            self.idle_sample.as_secs_f64(),
            idle.join(",\n")
        )
    }
}

impl Results {
    fn percentiles(&self, case: &Case) -> Option<[u64; 5]> {
        let h = self.outcomes.get(case)?.histogram.as_ref()?;
        (!h.is_empty()).then(|| {
            PERCENTILES.map(|(_, q)| {
                if q >= 100.0 {
                    h.max()
                } else {
                    h.value_at_quantile(q / 100.0)
                }
            })
        })
    }

    fn rate(&self, case: &Case) -> Option<f64> {
        median(&self.outcomes.get(case)?.rates)
    }

    pub fn memcpy_rate(&self, size: usize) -> Option<f64> {
        median(self.memcpy.get(&size)?)
    }

    /// The rows, in case order, with their ratios.
    pub fn records(&self) -> Vec<Record> {
        self.outcomes
            .iter()
            .map(|(case, outcome)| {
                let baseline = Case {
                    contender: case.contender.baseline(case.metric),
                    ..*case
                };
                let figures = if let Some(error) = &outcome.error {
                    Figures::Failed(error.clone())
                } else {
                    match case.metric {
                        Metric::RoundTrip => match self.percentiles(case) {
                            Some(nanos) => {
                                let base = self.percentiles(&baseline);
                                let ratios = std::array::from_fn(|i| {
                                    base.map(|b| nanos[i] as f64 / b[i] as f64)
                                });
                                let count = outcome.histogram.as_ref().map_or(0, Histogram::len);
                                Figures::RoundTrip {
                                    count,
                                    nanos,
                                    ratios,
                                }
                            }
                            None => Figures::Failed("no sample".into()),
                        },
                        Metric::Throughput => match self.rate(case) {
                            Some(rate) => Figures::Throughput {
                                messages_per_s: rate,
                                ratio: self.rate(&baseline).map(|b| rate / b),
                                memcpy_ratio: self
                                    .memcpy_rate(case.size)
                                    .map(|m| rate * case.size as f64 / m),
                            },
                            None => Figures::Failed("no sample".into()),
                        },
                    }
                };
                Record {
                    case: *case,
                    figures,
                    syscalls: outcome.syscalls.clone(),
                }
            })
            .collect()
    }
}

/// A duration for people.
pub fn show_nanos(ns: u64) -> String {
    let ns = ns as f64;
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.3} us", ns / 1e3)
    } else {
        format!("{:.3} ms", ns / 1e6)
    }
}

/// A rate for people (decimal prefixes).
pub fn show_rate(per_s: f64, unit: &str) -> String {
    let (value, prefix) = if per_s >= 1e9 {
        (per_s / 1e9, "G")
    } else if per_s >= 1e6 {
        (per_s / 1e6, "M")
    } else if per_s >= 1e3 {
        (per_s / 1e3, "k")
    } else {
        (per_s, "")
    };
    format!("{value:.2} {prefix}{unit}")
}

fn show_ratio(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| "-".to_owned(), |r| format!("x{r:.2}"))
}

/// The size column: the size on the first row of its block, blank on the others.
fn size_cell(size: usize, last: &mut usize) -> String {
    if std::mem::replace(last, size) == size {
        String::new()
    } else {
        show_size(size)
    }
}

/// The terminal table: round trips by mode, then throughput, each size a block.
pub fn table(results: &Results) -> String {
    let records = results.records();
    let m = &results.machine;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} ({} cores), Linux {}, {}; {}",
        m.cpu, m.cores, m.kernel, m.date, m.pinning
    );
    let _ = writeln!(out, "{}", m.settings);
    let _ = match &results.crossings {
        Crossings::Counted { method } => writeln!(
            out,
            "calls: system calls of both processes per round trip or message ({method}); \
             copies: of the message, by design"
        ),
        Crossings::Refused(why) => writeln!(out, "calls: not counted: {why}"),
        Crossings::Skipped => writeln!(out, "calls: not counted (--no-syscalls)"),
    };
    for mode in [super::plan::Mode::Spin, super::plan::Mode::Block] {
        let rows: Vec<&Record> = records
            .iter()
            .filter(|r| r.case.metric == Metric::RoundTrip && r.case.contender.mode == mode)
            .collect();
        if rows.is_empty() {
            continue;
        }
        let (title, base) = match mode {
            super::plan::Mode::Spin => ("busy-polling", "raw slot ring, one slot each way,"),
            super::plan::Mode::Block => ("blocking", "raw futex ping-pong"),
        };
        let _ = writeln!(
            out,
            "\nRound trip, {title} (x: over the {base} at the same size and percentile)"
        );
        let _ = write!(
            out,
            "{:<8} {:<16} {:>6} {:>6}",
            "size", "mechanism", "calls", "copies"
        );
        for (name, _) in PERCENTILES {
            let _ = write!(out, " {name:>10} {:>7}", "x");
        }
        out.push('\n');
        let mut last_size = 0;
        for r in rows {
            let size = size_cell(r.case.size, &mut last_size);
            let _ = write!(
                out,
                "{size:<8} {:<16} {:>6} {:>6}",
                r.case.contender.mechanism.name(),
                show_calls(r.syscalls.as_ref()),
                copies(&r.case)
            );
            match &r.figures {
                Figures::RoundTrip { nanos, ratios, .. } => {
                    for (ns, ratio) in nanos.iter().zip(ratios) {
                        let _ = write!(out, " {:>10} {:>7}", show_nanos(*ns), show_ratio(*ratio));
                    }
                }
                Figures::Failed(why) => {
                    let _ = write!(out, " n/a: {why}");
                }
                Figures::Throughput { .. } => unreachable!(),
            }
            out.push('\n');
        }
    }
    let rows: Vec<&Record> = records
        .iter()
        .filter(|r| r.case.metric == Metric::Throughput)
        .collect();
    if !rows.is_empty() {
        let _ = writeln!(
            out,
            "\nThroughput, one way (x: over the raw index ring at the same size; memcpy: bytes/s over one memcpy in one process)"
        );
        let _ = writeln!(
            out,
            "{:<8} {:<22} {:>6} {:>6} {:>13} {:>13} {:>7} {:>7}",
            "size", "mechanism", "calls", "copies", "messages/s", "bytes/s", "x", "memcpy"
        );
        let mut last_size = 0;
        for r in rows {
            let mut size = size_cell(r.case.size, &mut last_size);
            // Each size's block opens with the memcpy reference, when there is one.
            if let Some(copy) = results
                .memcpy_rate(r.case.size)
                .filter(|_| !size.is_empty())
            {
                let _ = writeln!(
                    out,
                    "{size:<8} {:<22} {:>6} {:>6} {:>13} {:>13} {:>7} {:>7}",
                    "memcpy",
                    "0",
                    "1",
                    "",
                    show_rate(copy, "B/s"),
                    "",
                    "x1.00"
                );
                size.clear();
            }
            let _ = write!(
                out,
                "{size:<8} {:<22} {:>6} {:>6}",
                r.case.contender.to_string(),
                show_calls(r.syscalls.as_ref()),
                copies(&r.case)
            );
            match &r.figures {
                Figures::Throughput {
                    messages_per_s,
                    ratio,
                    memcpy_ratio,
                } => {
                    let _ = write!(
                        out,
                        " {:>13} {:>13} {:>7} {:>7}",
                        show_rate(*messages_per_s, "/s"),
                        show_rate(messages_per_s * r.case.size as f64, "B/s"),
                        show_ratio(*ratio),
                        show_ratio(*memcpy_ratio)
                    );
                }
                Figures::Failed(why) => {
                    let _ = write!(out, " n/a: {why}");
                }
                Figures::RoundTrip { .. } => unreachable!(),
            }
            out.push('\n');
        }
    }
    if let Some(notices) = &results.notices {
        out += &notices.table();
    }
    out
}

pub(crate) fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_number(x: Option<f64>) -> String {
    match x {
        Some(x) if x.is_finite() => format!("{x:.4}"),
        _ => "null".into(),
    }
}

fn contender_fields(c: Contender) -> String {
    format!(
        "\"mechanism\":{},\"mode\":{}",
        json_string(c.mechanism.name()),
        json_string(c.mode.name())
    )
}

/// One JSON document: the machine, then one record per mechanism, mode, size and metric.
pub fn json(results: &Results) -> String {
    let m = &results.machine;
    let mut records = Vec::new();
    for r in results.records() {
        let head = format!(
            "\"metric\":{},{},\"size\":{}",
            json_string(r.case.metric.name()),
            contender_fields(r.case.contender),
            r.case.size
        );
        let baseline = format!(
            ",\"baseline\":{}",
            json_string(&r.case.contender.baseline(r.case.metric).to_string())
        );
        let crossings = format!(
            ",\"syscalls_per_message\":{},\"copies_by_design\":{}",
            json_number(r.syscalls.as_ref().and_then(|c| c.as_ref().ok()).copied()),
            copies(&r.case)
        );
        let body = match &r.figures {
            Figures::RoundTrip { count, nanos, ratios } => {
                let mut s = format!(",\"round_trips\":{count}");
                for (i, (name, _)) in PERCENTILES.iter().enumerate() {
                    let key = name.replace('.', "");
                    let _ = write!(s, ",\"{key}_ns\":{},\"{key}_ratio\":{}", nanos[i], json_number(ratios[i]));
                }
                s + &baseline
            }
            Figures::Throughput { messages_per_s, ratio, memcpy_ratio } => format!(
                ",\"messages_per_s\":{:.1},\"bytes_per_s\":{:.1},\"ratio\":{},\"memcpy_ratio\":{}{baseline}",
                messages_per_s,
                messages_per_s * r.case.size as f64,
                json_number(*ratio),
                json_number(*memcpy_ratio)
            ),
            Figures::Failed(why) => format!(",\"error\":{}", json_string(why)),
        };
        records.push(format!("    {{{head}{body}{crossings}}}"));
    }
    for size in results.memcpy.keys() {
        if let Some(rate) = results.memcpy_rate(*size) {
            records.push(format!(
                "    {{\"metric\":\"throughput\",\"mechanism\":\"memcpy\",\"mode\":\"one process\",\"size\":{size},\"messages_per_s\":{:.1},\"bytes_per_s\":{rate:.1}}}",
                rate / *size as f64
            ));
        }
    }
    let notices = results
        .notices
        .as_ref()
        .map(Notices::json)
        .unwrap_or_default();
    let syscalls = match &results.crossings {
        Crossings::Counted { method } => {
            format!("{{\"counted\":true,\"method\":{}}}", json_string(method))
        }
        Crossings::Refused(why) => format!("{{\"counted\":false,\"why\":{}}}", json_string(why)),
        Crossings::Skipped => "{\"counted\":false,\"why\":\"--no-syscalls\"}".to_owned(),
    };
    format!(
        "{{\n  \"machine\":{},\n  \"syscalls\":{syscalls},\n  \"records\":[\n{}\n  ]{notices}\n}}\n",
        m.json(),
        records.join(",\n")
    )
}

/// CSV: a header, then one line per mechanism, mode, size and metric.
pub fn csv(results: &Results) -> String {
    let mut out = String::from(
        "metric,mechanism,mode,size,round_trips,p50_ns,p90_ns,p99_ns,p999_ns,max_ns,messages_per_s,bytes_per_s,baseline,ratio,memcpy_ratio,syscalls_per_message,copies_by_design,error\n",
    );
    let num = |x: Option<f64>| x.map_or(String::new(), |x| format!("{x:.4}"));
    for r in results.records() {
        let c = r.case.contender;
        let _ = write!(
            out,
            "{},{},{},{},",
            r.case.metric.name(),
            c.mechanism.name(),
            c.mode.name(),
            r.case.size
        );
        let baseline = c.baseline(r.case.metric).to_string();
        let mut error = String::new();
        match &r.figures {
            Figures::RoundTrip {
                count,
                nanos,
                ratios,
            } => {
                let n = nanos.map(|n| n.to_string()).join(",");
                let _ = write!(out, "{count},{n},,,{baseline},{},", num(ratios[0]));
            }
            Figures::Throughput {
                messages_per_s,
                ratio,
                memcpy_ratio,
            } => {
                let _ = write!(
                    out,
                    ",,,,,,{messages_per_s:.1},{:.1},{baseline},{},{}",
                    messages_per_s * r.case.size as f64,
                    num(*ratio),
                    num(*memcpy_ratio)
                );
            }
            Figures::Failed(why) => {
                out.push_str(",,,,,,,,,,");
                error = format!("\"{}\"", why.replace('"', "\"\""));
            }
        }
        let calls = num(r.syscalls.as_ref().and_then(|c| c.as_ref().ok()).copied());
        let _ = writeln!(out, ",{calls},{},{error}", copies(&r.case));
    }
    for size in results.memcpy.keys() {
        if let Some(rate) = results.memcpy_rate(*size) {
            let _ = writeln!(
                out,
                "throughput,memcpy,one process,{size},,,,,,,{:.1},{rate:.1},,,,0,1,",
                rate / *size as f64
            );
        }
    }
    out
}
