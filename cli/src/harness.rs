//! `ringport harness -- TARGET ARGS`: runs a target (a program built on `ringport::harness`) over
//! cases from a directory or standard input, prints a verdict per case, and keeps the cases that
//! crashed or hung.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use ringport::harness::{HarnessOptions, Target, Verdict};

use crate::bench::json_string;

#[derive(clap::Args, Debug)]
pub struct HarnessArgs {
    /// A directory whose files are the cases, in the order of their names (default: standard
    /// input, a case a line)
    #[arg(long, value_name = "DIR")]
    cases: Option<PathBuf>,
    /// Save each case that crashed or hung the target here, as ID-NAME
    #[arg(long, value_name = "DIR")]
    crashes: Option<PathBuf>,
    /// One JSON object a verdict (JSON Lines) instead of a table
    #[arg(long)]
    json: bool,
    /// How long a case may run before the target is killed and the case called hung
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    timeout: u64,
    /// The largest case in bytes
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    max_case: usize,
    /// Cases sent ahead of their verdicts
    #[arg(long, value_name = "N", default_value_t = 8)]
    in_flight: usize,
    /// Run the target once as a fork server and fork each target from it (the target calls
    /// `ringport::harness::fork_server()`; `ringport harness-target` does)
    #[arg(long)]
    fork_server: bool,
    /// The target and its arguments (after `--`)
    #[arg(required = true, last = true, value_name = "TARGET")]
    target: Vec<String>,
}

/// A case's name (a file's, or `line N`) and bytes.
type NamedCase = (String, Vec<u8>);

/// The cases, in order.
fn cases(args: &HarnessArgs) -> Result<Vec<NamedCase>, Box<dyn std::error::Error>> {
    let Some(dir) = &args.cases else {
        let mut cases = Vec::new();
        for (n, line) in std::io::stdin().lock().split(b'\n').enumerate() {
            cases.push((format!("line {}", n + 1), line?));
        }
        return Ok(cases);
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|path| path.is_file());
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            Ok((name, bytes))
        })
        .collect()
}

pub fn run(args: &HarnessArgs) -> Result<(), Box<dyn std::error::Error>> {
    let cases = cases(args)?;
    if let Some(dir) = &args.crashes {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let mut command = Command::new(&args.target[0]);
    command.args(&args.target[1..]);
    let mut driver = HarnessOptions::new()
        .max_case(args.max_case)
        .in_flight(args.in_flight)
        .fork_server(args.fork_server)
        .case_timeout(Duration::from_millis(args.timeout))
        .spawn(command)?;
    let started = Instant::now();
    let mut out = std::io::stdout().lock();
    if !args.json {
        writeln!(out, "{:>8}  {:<10} {:<24} case", "id", "verdict", "detail")?;
    }
    let (mut next, mut bad) = (0, 0);
    for judged in 0..cases.len() {
        while next < cases.len() && driver.in_flight() < args.in_flight {
            driver.submit(&cases[next].1)?;
            next += 1;
        }
        let verdict = driver.next_verdict()?;
        let (name, bytes) = &cases[judged];
        let (kind, detail) = match &verdict {
            Verdict::Ok { result, .. } => ("ok", format!("{} bytes back", result.len())),
            Verdict::Crashed { status, .. } => ("crashed", status.to_string()),
            Verdict::TimedOut { .. } => ("timed out", format!("over {} ms", args.timeout)),
        };
        if !matches!(verdict, Verdict::Ok { .. }) {
            bad += 1;
            if let Some(dir) = &args.crashes {
                let file = dir.join(format!("{}-{}", verdict.id(), name.replace('/', "_")));
                std::fs::write(&file, bytes).map_err(|e| format!("{}: {e}", file.display()))?;
            }
        }
        if args.json {
            writeln!(
                out,
                "{{\"id\":{},\"case\":{},\"verdict\":{},\"detail\":{}}}",
                verdict.id(),
                json_string(name),
                json_string(kind),
                json_string(&detail)
            )?;
        } else {
            writeln!(out, "{:>8}  {kind:<10} {detail:<24} {name}", verdict.id())?;
        }
    }
    let stats = driver.stats();
    eprintln!(
        "{} cases in {:.2?}: {} crashed, {} timed out, {} restarts",
        cases.len(),
        started.elapsed(),
        stats.crashes,
        stats.timeouts,
        stats.restarts
    );
    if bad > 0 {
        // As a test runner does: the run worked, and found cases that break the target.
        std::process::exit(2);
    }
    Ok(())
}

/// `ringport harness-target`: a target for trying the harness, and for its tests. Answers each
/// case with its length; a case that starts with `crash` aborts, one that starts with `hang`
/// sleeps until killed. A fork server when the driver asks for one.
pub fn demo_target() -> Result<(), Box<dyn std::error::Error>> {
    ringport::harness::fork_server()?;
    Target::from_env()?.run(|case| {
        if case.starts_with(b"crash") {
            std::process::abort();
        }
        if case.starts_with(b"hang") {
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        (case.len() as u64).to_le_bytes()
    })?;
    Ok(())
}
