//! Instructions per message through the C ABI against the same through the Rust API, counted by
//! callgrind (exact, and blind to the machine's state): `cargo bench -p ringport-ffi --bench
//! instructions` (needs valgrind). One process, one SPSC ring, each pattern run for N and 2N
//! messages, the difference over N: the cost of the loop's body alone, set-up excluded.
//!
//! - grant: `try_reserve`, commit, `try_recv`, release (four C calls);
//! - copy: `try_send` of 64 bytes, then in C `rp_consumer_try_next` (release and receive in one
//!   call), in Rust `try_recv` and the frame's drop;
//! - abort: `try_reserve` and a commit of 0;
//! - empty: `try_recv` on an empty ring (a busy poll's turn).
//!
//! `-- --check` fails if a C pattern costs more over its Rust twin than `CHECKED` allows: counts,
//! not times, so the guard holds in every machine state. The limits sit some 20 % over the
//! counts of docs/PERFORMANCE.md ("the C calls inline whole"); a body that falls out of line
//! again costs about a hundred more a call.

use std::process::Command;

use ringport::SpscOptions;

#[path = "support.rs"]
mod support;

const CHILD: &str = "RINGPORT_FFI_INSTRUCTIONS_CHILD";
const PATTERNS: [&str; 4] = ["grant", "copy", "abort", "empty"];
const N: u64 = 100_000;

/// Most instructions a message that `--check` lets a C pattern cost over its Rust twin.
const CHECKED: [(&str, f64); 2] = [("grant", 250.0), ("copy", 150.0)];

/// The Rust side: `pattern` `n` times.
fn rust_pattern(pattern: &str, n: u64) {
    let options = SpscOptions::new().capacity(1 << 16);
    let (mut p, fd) = options.create_producer_memfd().unwrap();
    let mut c = options.open_consumer_fd(&fd).unwrap();
    let message = [0x5a; 64];
    // One loop a pattern: a match a turn would be counted with the calls.
    match pattern {
        "grant" => (0..n).for_each(|_| {
            let grant = p.try_reserve(64).unwrap();
            grant.commit();
            std::hint::black_box(&*c.try_recv().unwrap());
        }),
        "copy" => (0..n).for_each(|_| {
            p.try_send(&message).unwrap();
            std::hint::black_box(&*c.try_recv().unwrap());
        }),
        "abort" => (0..n).for_each(|_| {
            let grant = p.try_reserve(64).unwrap();
            std::hint::black_box(&grant);
            grant.commit_len(0);
        }),
        _ => (0..n).for_each(|_| assert!(matches!(c.try_recv(), Err(ringport::Error::Empty)))),
    }
}

/// Instructions callgrind counts for `command`.
fn instructions(mut command: Command) -> u64 {
    let output = command
        .output()
        .expect("valgrind (apt-get install valgrind)");
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{text}");
    text.lines()
        .find_map(|line| line.split_once("I   refs:"))
        .map(|(_, count)| count.trim().replace(',', "").parse().unwrap())
        .unwrap_or_else(|| panic!("no count in {text}"))
}

fn callgrind(program: &std::path::Path, args: &[String], env: Option<String>) -> Command {
    let mut command = Command::new("valgrind");
    command
        .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
        .arg(program)
        .args(args);
    if let Some(spec) = env {
        command.env(CHILD, spec);
    }
    command
}

/// Instructions per message of `pattern`: (2N run - N run) / N.
fn per_message(count: impl Fn(u64) -> u64) -> f64 {
    (count(2 * N) as f64 - count(N) as f64) / N as f64
}

fn main() {
    if let Ok(spec) = std::env::var(CHILD) {
        let (pattern, n) = spec.split_once(' ').unwrap();
        rust_pattern(pattern, n.parse().unwrap());
        return;
    }
    if Command::new("valgrind").arg("--version").output().is_err() {
        println!("skipped: valgrind is not installed (apt-get install valgrind)");
        return;
    }
    let check = std::env::args().any(|a| a == "--check");
    let program = support::c_program("instructions.c");
    let me = std::env::current_exe().unwrap();
    let mut over = Vec::new();
    println!("instructions per message, callgrind, (2N - N) / N with N = {N}:");
    for pattern in PATTERNS {
        let c = per_message(|n| {
            instructions(callgrind(
                &program,
                &[pattern.to_owned(), n.to_string()],
                None,
            ))
        });
        let rust =
            per_message(|n| instructions(callgrind(&me, &[], Some(format!("{pattern} {n}")))));
        println!(
            "  {pattern:6} C {c:6.0}  Rust {rust:6.0}  C - Rust {:6.0}",
            c - rust
        );
        if let Some(&(_, limit)) = CHECKED.iter().find(|(p, _)| *p == pattern) {
            if c - rust > limit {
                over.push(format!(
                    "{pattern}: C costs {:.0} over Rust, at most {limit}",
                    c - rust
                ));
            }
        }
    }
    let _ = std::fs::remove_file(&program);
    if check && !over.is_empty() {
        eprintln!(
            "the C calls cost more than they did (docs/PERFORMANCE.md, \"the C calls inline \
             whole\"): {}",
            over.join("; ")
        );
        std::process::exit(1);
    }
}
