//! A busy 64 B ping-pong between two processes through the C ABI, against the same through the
//! Rust API: `cargo bench -p ringport-ffi --bench ping_pong [-- ROUNDS]`. Both over two named SPSC
//! rings, the two processes pinned to cores 0 and 1, in two forms: in place (`try_reserve` /
//! commit, `try_recv` / release: four C calls a message) and copying (`try_send` from a buffer,
//! and in C `rp_consumer_try_next`, the release and the receive in one call: two calls a
//! message; in Rust `try_recv` and the frame's drop). 64 bytes written, the first 8 read. Each
//! round runs the four in turn, C and Rust alternating which goes first, and the ratio of each
//! form is taken within the round (the machine drifts between states for seconds at a time).

use std::process::Command;

#[path = "support.rs"]
mod support;
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

fn send64_copy(p: &mut Producer, seq: u64) {
    let mut message = [0x5a; 64];
    message[..8].copy_from_slice(&seq.to_le_bytes());
    loop {
        match p.try_send(&message) {
            Ok(()) => return,
            Err(ringport::Error::Full) => {}
            Err(e) => panic!("{e}"),
        }
    }
}

/// The two forms, as the C program names them.
#[derive(Clone, Copy)]
enum Form {
    Grant,
    Copy,
}

impl Form {
    fn name(self) -> &'static str {
        match self {
            Form::Grant => "grant",
            Form::Copy => "copy",
        }
    }

    fn send(self, p: &mut Producer, seq: u64) {
        match self {
            Form::Grant => send64(p, seq),
            Form::Copy => send64_copy(p, seq),
        }
    }
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
fn rust_round(form: Form, n: u64) -> f64 {
    let base = format!("ringport-bench-rust-{}-{}", std::process::id(), n);
    let (ping, pong) = (format!("{base}-ping"), format!("{base}-pong"));
    let options = SpscOptions::new().capacity(1 << 16);
    let mut out = options.create_producer(ping.as_str()).unwrap();
    let mut inn = options.create_consumer(pong.as_str()).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(CHILD, format!("{base} {n} {}", form.name()))
        .spawn()
        .unwrap();
    form.send(&mut out, 0);
    recv64(&mut inn);
    let started = Instant::now();
    for i in 1..=n {
        form.send(&mut out, i);
        assert_eq!(recv64(&mut inn), i);
    }
    let ns = started.elapsed().as_nanos() as f64 / n as f64;
    drop((out, inn));
    assert!(child.wait().unwrap().success());
    ns
}

fn child(spec: &str) {
    pin(1);
    let mut words = spec.split(' ');
    let (base, n, form) = (
        words.next().unwrap(),
        words.next().unwrap(),
        words.next().unwrap(),
    );
    let n: u64 = n.parse().unwrap();
    let form = if form == "copy" {
        Form::Copy
    } else {
        Form::Grant
    };
    let mut inn = SpscOptions::new()
        .open_consumer(format!("{base}-ping").as_str())
        .unwrap();
    let mut out = SpscOptions::new()
        .open_producer(format!("{base}-pong").as_str())
        .unwrap();
    for _ in 0..=n {
        let seq = recv64(&mut inn);
        form.send(&mut out, seq);
    }
}

fn c_round(program: &std::path::Path, form: Form, n: u64) -> f64 {
    let output = Command::new(program)
        .arg(n.to_string())
        .arg(form.name())
        .output()
        .unwrap();
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
    let program = support::c_program("ping_pong.c");
    let forms = [(Form::Grant, "in place"), (Form::Copy, "copying")];
    let mut figures: Vec<(Vec<f64>, Vec<f64>, Vec<f64>)> = vec![Default::default(); forms.len()];
    for round in 0..rounds {
        let mut line = format!("round {round:2}:");
        for (&(form, label), (c, rust, ratios)) in forms.iter().zip(figures.iter_mut()) {
            // Alternate which goes first, so that neither always follows the other.
            let (a, b) = if round % 2 == 0 {
                let a = c_round(&program, form, ROUND_TRIPS);
                (a, rust_round(form, ROUND_TRIPS))
            } else {
                let b = rust_round(form, ROUND_TRIPS);
                (c_round(&program, form, ROUND_TRIPS), b)
            };
            line += &format!("  {label}: C {a:6.1} ns, Rust {b:6.1} ns, {:.3}", a / b);
            c.push(a);
            rust.push(b);
            ratios.push(a / b);
        }
        println!("{line}");
    }
    let _ = std::fs::remove_file(&program);
    for ((_, label), (c, rust, ratios)) in forms.iter().zip(figures) {
        println!(
            "busy 64 B round trip, {label}, medians of {rounds} rounds of {ROUND_TRIPS}: C {:.1} ns, Rust {:.1} ns; C / Rust {:.3} (median of the rounds' ratios)",
            median(c),
            median(rust),
            median(ratios)
        );
    }
}
