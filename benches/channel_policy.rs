//! Channel paths measured against each other: where does the ring start to beat the socket?
//!
//! Two processes pinned to different cores. For each policy (forced Socket, forced Ring, Auto)
//! and message size, interleaved:
//! - one-shot: a fresh channel, one message, a 1-byte acknowledgement (the ring's setup, under
//!   forced Ring, is part of it), the policies in turn;
//! - ping-pong: a warm channel (past its ring's first lap), a message and its 1-byte
//!   acknowledgement, many times;
//! - stream: a warm channel, many messages one way, then one acknowledgement.
//!
//! It prints medians, Auto against the better forced path, and the crossovers that
//! `ChannelOptions`' defaults come from.
//! `cargo bench --bench channel_policy [-- --quick]` (21 rounds, or 3 with `--quick`).

use std::time::{Duration, Instant};

use ringport::channel::{Channel, ChannelOptions, Listener, Policy};
use ringport_measure::median;
use ringport_measure::pin::{online_cores, pin_to_wrapping as pin_to};

const CHILD_ENV: &str = "RINGPORT_BENCH_CHANNEL_CHILD";
const POLICIES: [Policy; 3] = [Policy::Socket, Policy::Ring, Policy::Auto];
const SIZES: [usize; 10] = [
    8,
    64,
    512,
    4 << 10,
    32 << 10,
    256 << 10,
    1 << 20,
    2 << 20,
    4 << 20,
    8 << 20,
];

/// Messages of `size` bytes that fill a channel's ring (1 MiB by default; each frame adds an
/// 8-byte prefix and an 8-byte header).
fn ring_lap(size: usize) -> usize {
    (1 << 20) / (size + 16) + 1
}

/// More than the messages that `Auto` sends through the socket before it moves to the ring.
const AUTO_RAMP: usize = 64;

fn path(base: &str, policy: Policy) -> String {
    format!("@{base}-{policy:?}")
}

fn options(policy: Policy) -> ChannelOptions {
    ChannelOptions::new().policy(policy)
}

/// The child: one listener per policy, each served by its own thread; every message whose first
/// byte is 1 is acknowledged with one byte.
fn serve(base: &str) {
    pin_to(1);
    let threads: Vec<_> = POLICIES
        .iter()
        .map(|&policy| {
            let listener = options(policy).bind(&path(base, policy)).unwrap();
            std::thread::spawn(move || {
                pin_to(1);
                serve_listener(&listener)
            })
        })
        .collect();
    println!("ready");
    for t in threads {
        t.join().unwrap();
    }
}

fn serve_listener(listener: &Listener) {
    let mut buf = Vec::new();
    while let Ok(mut channel) = listener.accept() {
        loop {
            match channel.recv_chunks(|c| {
                if c.offset == 0 {
                    buf.clear();
                    buf.extend_from_slice(&c.bytes[..c.bytes.len().min(1)]);
                }
            }) {
                Ok(_) if buf.first() == Some(&1) => channel.send(&[1]).unwrap(),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        // A zero-length message asks the server to stop.
        if buf.is_empty() {
            return;
        }
    }
}

fn ack(channel: &mut Channel, buf: &mut Vec<u8>) {
    channel.recv(buf).unwrap();
}

/// Microseconds for one message and its acknowledgement on a fresh channel.
fn one_shot(base: &str, policy: Policy, msg: &[u8]) -> f64 {
    let mut channel = options(policy).connect(&path(base, policy)).unwrap();
    let mut buf = Vec::new();
    let t = Instant::now();
    channel.send(msg).unwrap();
    ack(&mut channel, &mut buf);
    t.elapsed().as_secs_f64() * 1e6
}

/// Microseconds per acknowledged message on a warm channel (after `warm` unmeasured ones).
fn ping_pong(channel: &mut Channel, msg: &[u8], n: usize) -> f64 {
    let mut buf = Vec::new();
    let t = Instant::now();
    for _ in 0..n {
        channel.send(msg).unwrap();
        ack(channel, &mut buf);
    }
    t.elapsed().as_secs_f64() * 1e6 / n as f64
}

/// Messages per second, `n` sent one way and the last acknowledged.
fn stream(channel: &mut Channel, size: usize, n: usize) -> f64 {
    let quiet = vec![0u8; size];
    let mut last = vec![0u8; size];
    last[0] = 1;
    let mut buf = Vec::new();
    let t = Instant::now();
    for _ in 1..n {
        channel.send(&quiet).unwrap();
    }
    channel.send(&last).unwrap();
    ack(channel, &mut buf);
    n as f64 / t.elapsed().as_secs_f64()
}

#[derive(Default, Clone)]
struct Samples {
    one_shot: Vec<f64>,
    ping_pong: Vec<f64>,
    stream: Vec<f64>,
}

fn main() {
    if let Ok(base) = std::env::var(CHILD_ENV) {
        serve(&base);
        return;
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = if quick { 3 } else { 21 };
    let base = format!("ringport-bench-channel-{}", std::process::id());
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENV, &base)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    pin_to(0);
    println!(
        "Channel paths: {rounds} interleaved rounds, medians, two processes on {} cores",
        online_cores()
    );

    let mut samples = vec![vec![Samples::default(); POLICIES.len()]; SIZES.len()];
    for _ in 0..rounds {
        for (si, &size) in SIZES.iter().enumerate() {
            let mut msg = vec![0u8; size];
            msg[0] = 1;
            // One-shots in turn, forwards then backwards: a channel just closed is still being
            // torn down (its rings unmapped) for a while and slows the one-shot that comes next,
            // so each policy must follow each other one equally often.
            for k in 0..4 {
                for i in 0..POLICIES.len() {
                    let pi = if k % 2 == 0 {
                        i
                    } else {
                        POLICIES.len() - 1 - i
                    };
                    let sample = one_shot(&base, POLICIES[pi], &msg);
                    samples[si][pi].one_shot.push(sample);
                }
            }
            for (pi, &policy) in POLICIES.iter().enumerate() {
                let s = &mut samples[si][pi];
                let mut channel = options(policy).connect(&path(&base, policy)).unwrap();
                let budget = (64 << 20) / size;
                let n_ping = budget.clamp(100, 2000);
                let n_stream = budget.clamp(100, 50_000);
                // Warm-up: under Auto this is the ramp onto the ring (the one-shot figures show
                // the start of a channel); the other figures are for a steady channel. A steady
                // ring has been round once: a channel's rings fault their pages in as the first
                // lap reaches them, and a policy measured halfway through its first lap would
                // pay for more of that than one measured at its end.
                let warm = match policy {
                    Policy::Socket => budget.clamp(4, 200),
                    _ => budget.clamp(4, 200).max(ring_lap(size) + AUTO_RAMP),
                };
                ping_pong(&mut channel, &msg, warm);
                s.ping_pong.push(ping_pong(&mut channel, &msg, n_ping));
                s.stream.push(stream(&mut channel, size, n_stream));
            }
        }
    }

    let fmt_size = |s: usize| match s {
        s if s >= 1 << 20 => format!("{} MiB", s >> 20),
        s if s >= 1 << 10 => format!("{} KiB", s >> 10),
        s => format!("{s} B"),
    };
    println!(
        "\n{:>8} | {:>27} | {:>27} | {:>33}",
        "size",
        "one-shot us: socket ring auto",
        "ping-pong us: socket ring auto",
        "stream msg/s: socket ring auto"
    );
    let mut worst: f64 = 0.0;
    let mut crossover_one_shot = None;
    for (si, &size) in SIZES.iter().enumerate() {
        let m = |pi: usize, f: fn(&Samples) -> &Vec<f64>| median(f(&samples[si][pi]).clone());
        let os = [0, 1, 2].map(|p| m(p, |s| &s.one_shot));
        let pp = [0, 1, 2].map(|p| m(p, |s| &s.ping_pong));
        let st = [0, 1, 2].map(|p| m(p, |s| &s.stream));
        let ratios = [
            os[2] / os[0].min(os[1]),
            pp[2] / pp[0].min(pp[1]),
            st[0].max(st[1]) / st[2],
        ];
        worst = ratios.iter().copied().fold(worst, f64::max);
        if crossover_one_shot.is_none() && os[1] < os[0] {
            crossover_one_shot = Some(size);
        }
        println!(
            "{:>8} | {:>8.1} {:>8.1} {:>8.1} | {:>8.2} {:>8.2} {:>8.2} | {:>10.0} {:>10.0} {:>10.0}   auto/best: {:.2} {:.2} {:.2}",
            fmt_size(size),
            os[0], os[1], os[2], pp[0], pp[1], pp[2], st[0], st[1], st[2],
            ratios[0], ratios[1], ratios[2]
        );
    }
    // Messages at which a ring pays back its setup: the one-shot difference (setup) over what
    // each message saves on the ring in a stream.
    let small = 0;
    let setup =
        median(samples[small][1].one_shot.clone()) - median(samples[small][0].one_shot.clone());
    let per_msg = |pi: usize| 1e6 / median(samples[small][pi].stream.clone());
    let saving = per_msg(0) - per_msg(1);
    println!(
        "\nring setup (one-shot ring - socket, 8 B): {setup:.1} us; a streamed 8 B message saves {saving:.2} us on the ring"
    );
    println!("break-even: {:.0} messages", setup / saving);
    match crossover_one_shot {
        Some(s) => println!(
            "one-shot crossover: the ring is faster from {}",
            fmt_size(s)
        ),
        None => println!("one-shot crossover: the socket was faster at every size"),
    }
    println!("worst Auto / better forced path: {worst:.2}x (goal <= 1.10x)");

    // Stop the server: a zero-length message on each policy's listener.
    for policy in POLICIES {
        let mut c = options(policy).connect(&path(&base, policy)).unwrap();
        c.send(&[]).unwrap();
    }
    wait_or_kill(&mut child);
}

/// Waits up to 5 s for the child to stop, then kills it.
fn wait_or_kill(child: &mut std::process::Child) {
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}
