//! A busy 64 B ping-pong between two processes through the C ABI, against the same through the
//! Rust API: `cargo bench -p ringport-ffi --bench ping_pong [-- ROUNDS]`. Both over two named SPSC
//! rings (`try_reserve` / commit, `try_recv` / release, 64 bytes written and the first 8 read),
//! the two processes pinned to cores 0 and 1; rounds alternate C and Rust, and the ratio is
//! taken within each round (the machine drifts between states for seconds at a time).

use std::process::Command;
use std::time::Instant;

use ringport::spsc::{Consumer, Producer};
use ringport::SpscOptions;

const CHILD: &str = "RINGPORT_FFI_PING_PONG_CHILD";
const ROUND_TRIPS: u64 = 200_000;

fn send64(p: &mut Producer, seq: u64) {
    let mut grant = loop {
        match p.try_reserve(64) {
            Ok(g) => break g,
            Err(ringport::Error::Full) => {}
            Err(e) => panic!("{e}"),
        }
    };
    grant.fill(0x5a);
    grant[..8].copy_from_slice(&seq.to_le_bytes());
    grant.commit();
}

fn recv64(c: &mut Consumer) -> u64 {
    loop {
        match c.try_recv() {
            Ok(frame) => return u64::from_le_bytes(frame[..8].try_into().unwrap()),
            Err(ringport::Error::Empty) => {}
            Err(e) => panic!("{e}"),
        }
    }
}

fn pin(core: usize) {
    ringport_measure::pin::pin_to(core).expect("pinned");
}

/// The Rust ping-pong: nanoseconds per round trip.
fn rust_round(n: u64) -> f64 {
    let base = format!("ringport-bench-rust-{}-{}", std::process::id(), n);
    let (ping, pong) = (format!("{base}-ping"), format!("{base}-pong"));
    let options = SpscOptions::new().capacity(1 << 16);
    let mut out = options.create_producer(ping.as_str()).unwrap();
    let mut inn = options.create_consumer(pong.as_str()).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(CHILD, format!("{base} {n}"))
        .spawn()
        .unwrap();
    send64(&mut out, 0);
    recv64(&mut inn);
    let started = Instant::now();
    for i in 1..=n {
        send64(&mut out, i);
        assert_eq!(recv64(&mut inn), i);
    }
    let ns = started.elapsed().as_nanos() as f64 / n as f64;
    drop((out, inn));
    assert!(child.wait().unwrap().success());
    ns
}

fn child(spec: &str) {
    pin(1);
    let (base, n) = spec.split_once(' ').unwrap();
    let n: u64 = n.parse().unwrap();
    let mut inn = SpscOptions::new()
        .open_consumer(format!("{base}-ping").as_str())
        .unwrap();
    let mut out = SpscOptions::new()
        .open_producer(format!("{base}-pong").as_str())
        .unwrap();
    for _ in 0..=n {
        let seq = recv64(&mut inn);
        send64(&mut out, seq);
    }
}

fn c_program() -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let lib = [deps, deps.parent().unwrap()]
        .into_iter()
        .map(|d| d.join("libringport_c.a"))
        .find(|p| p.exists())
        .expect("libringport_c.a (cargo build --release -p ringport-ffi)");
    let out = std::env::temp_dir().join(format!("ringport-ping-pong-{}", std::process::id()));
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(cc)
        .args(["-std=c11", "-O2", "-Wall", "-Werror", "-I"])
        .arg(root.join("include"))
        .arg(root.join("ffi/benches/ping_pong.c"))
        .arg(lib)
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    out
}

fn c_round(program: &std::path::Path, n: u64) -> f64 {
    let output = Command::new(program).arg(n.to_string()).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if let Ok(spec) = std::env::var(CHILD) {
        child(&spec);
        return;
    }
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(15);
    pin(0);
    let program = c_program();
    let (mut c, mut rust, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        // Alternate which goes first, so that neither always follows the other.
        let (a, b) = if round % 2 == 0 {
            let a = c_round(&program, ROUND_TRIPS);
            (a, rust_round(ROUND_TRIPS))
        } else {
            let b = rust_round(ROUND_TRIPS);
            (c_round(&program, ROUND_TRIPS), b)
        };
        println!(
            "round {round:2}: C {a:7.1} ns, Rust {b:7.1} ns, C / Rust {:.3}",
            a / b
        );
        c.push(a);
        rust.push(b);
        ratios.push(a / b);
    }
    let _ = std::fs::remove_file(&program);
    println!(
        "busy 64 B round trip, medians of {rounds} rounds of {ROUND_TRIPS}: C {:.1} ns, Rust {:.1} ns; C / Rust {:.3} (median of the rounds' ratios)",
        median(c),
        median(rust),
        median(ratios)
    );
}
