//! A 64-byte ping-pong between two processes pinned to two cores, under criterion: ringport's
//! SPSC rings (busy-polling and blocking) beside the raw cache-line ping-pong that bounds them.
//! The peer process lives across criterion's iterations; each iteration is one round trip.
//! `ringport bench` gives the whole picture; this is the regression alarm for `cargo bench`.
//!
//! `cargo bench --bench cross_process`.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use ringport::{Error, SpscOptions};

use ringport_measure::pin::pin_to_wrapping as pin_to;
use ringport_measure::raw::{self, PING, PING_PONG_LEN, PONG};
use ringport_measure::shm::{SegmentName, SharedMap};

const CHILD_ENV: &str = "RINGPORT_CROSS_PROCESS_CHILD";
const MSG: usize = 64;
/// The tag that ends the peer.
const STOP: u64 = u64::MAX;

fn options(blocking: bool) -> SpscOptions {
    let options = SpscOptions::new().capacity(64 << 10);
    if blocking {
        options.spin(Duration::ZERO)
    } else {
        options
    }
}

fn spawn(kind: &str, name: &str) -> std::process::Child {
    std::process::Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENV, format!("{kind}:{name}"))
        .spawn()
        .unwrap()
}

fn send(tx: &mut ringport::spsc::Producer, msg: &[u8], blocking: bool) {
    if blocking {
        return tx.send(msg).unwrap();
    }
    loop {
        match tx.try_send(msg) {
            Ok(()) => return,
            Err(Error::Full) => std::hint::spin_loop(),
            Err(e) => panic!("{e}"),
        }
    }
}

fn recv(rx: &mut ringport::spsc::Consumer, blocking: bool) -> u64 {
    let tag = |frame: &[u8]| u64::from_le_bytes(frame[..8].try_into().unwrap());
    if blocking {
        return tag(&rx.recv().unwrap());
    }
    loop {
        match rx.try_recv() {
            Ok(frame) => return tag(&frame),
            Err(Error::Empty) => std::hint::spin_loop(),
            Err(e) => panic!("{e}"),
        }
    }
}

/// The peer: echo until the stop tag.
fn child(spec: &str) {
    pin_to(1);
    let (kind, name) = spec.split_once(':').unwrap();
    if kind == "raw" {
        let shm = SharedMap::open_named(name).unwrap();
        let (ping, pong) = (shm.u64_at(PING), shm.u64_at(PONG));
        let mut seen = 0;
        loop {
            let v = ping.load(Ordering::Acquire);
            if v == seen {
                std::hint::spin_loop();
                continue;
            }
            seen = v;
            pong.store(v, Ordering::Release);
            if v == STOP {
                return;
            }
        }
    }
    let blocking = kind == "blocking";
    let mut rx = options(blocking)
        .open_consumer(format!("{name}-ping"))
        .unwrap();
    let mut tx = options(blocking)
        .open_producer(format!("{name}-pong"))
        .unwrap();
    let mut msg = [0u8; MSG];
    loop {
        let tag = recv(&mut rx, blocking);
        msg[..8].copy_from_slice(&tag.to_le_bytes());
        send(&mut tx, &msg, blocking);
        if tag == STOP {
            return;
        }
    }
}

fn raw(c: &mut Criterion) {
    let name = SegmentName::new("cross-raw");
    let shm = SharedMap::create_named(name.as_str(), PING_PONG_LEN).unwrap();
    let mut peer = spawn("raw", name.as_str());
    let mut seq = 0u64;
    c.bench_function("round_trip_64B/raw_cache_line", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                seq += 1;
                raw::spin_ping(&shm, seq);
            }
            start.elapsed()
        })
    });
    shm.u64_at(PING).store(STOP, Ordering::Release);
    assert!(peer.wait().unwrap().success());
}

fn ringport_spsc(c: &mut Criterion) {
    for (kind, blocking) in [("busy", false), ("blocking", true)] {
        let name = SegmentName::new("cross-spsc");
        let mut tx = options(blocking)
            .create_producer(format!("{}-ping", name.as_str()))
            .unwrap();
        let mut rx = options(blocking)
            .create_consumer(format!("{}-pong", name.as_str()))
            .unwrap();
        let mut peer = spawn(kind, name.as_str());
        let mut msg = [0u8; MSG];
        let mut seq = 0u64;
        c.bench_function(&format!("round_trip_64B/ringport_spsc_{kind}"), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    msg[..8].copy_from_slice(&seq.to_le_bytes());
                    send(&mut tx, &msg, blocking);
                    assert_eq!(recv(&mut rx, blocking), seq);
                    seq += 1;
                }
                start.elapsed()
            })
        });
        msg[..8].copy_from_slice(&STOP.to_le_bytes());
        send(&mut tx, &msg, blocking);
        assert!(peer.wait().unwrap().success());
    }
}

criterion_group!(benches, raw, ringport_spsc);

fn main() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        return child(&spec);
    }
    pin_to(0);
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
