//! The MPMC ring against its baselines, interleaved in one run:
//! - 1 producer and 1 consumer thread, and 2 and 2, moving 8-byte messages, against crossbeam's
//!   `ArrayQueue` with the same threads in one process (the same number of slots), every thread
//!   of both waiting with the same backoff (64 spin hints, then a yield), sharing nothing but the
//!   queue;
//! - 1 and 1 again with the producer, then the consumer, doing the same fixed work per message
//!   for both queues ([`WORK_STEPS`]): which side is faster decides whether the ring runs near
//!   full or near empty, where the two ends share cache lines;
//! - one producer and one consumer process streaming 8-byte messages, pinned to two cores,
//!   against ringport's SPSC ring.
//!
//! `cargo bench --bench mpmc_baselines` (add `-- --quick` for fewer rounds).

use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use ringport::{Error, MpmcOptions, SpscOptions};

use ringport_measure::median;
use ringport_measure::pin::pin_to_wrapping as pin_to;
use ringport_measure::shm::SegmentName;

const CHILD_ENV: &str = "RINGPORT_BENCH_CHILD";
const SLOTS: usize = 1024;
const THREAD_MESSAGES: u64 = 4_000_000;
const PROCESS_MESSAGES: u64 = 10_000_000;

// ---------------------------------------------------------------- threads

/// The wait both contenders use when the queue is full or empty: 64 spin hints, then a yield
/// (crossbeam's `Backoff` in spirit), so that neither gains from waiting differently.
#[derive(Default)]
struct Backoff {
    step: u32,
}

impl Backoff {
    fn wait(&mut self) {
        if self.step < 64 {
            std::hint::spin_loop();
            self.step += 1;
        } else {
            std::thread::yield_now();
        }
    }

    fn reset(&mut self) {
        self.step = 0;
    }
}

/// The per-message work of the slower side in the unbalanced rows: steps of a loop the
/// compiler must keep (tens of nanoseconds).
const WORK_STEPS: u32 = 30;

/// Work that one side of the unbalanced rows does per message, the same for both queues.
#[derive(Clone, Copy, Default)]
struct Work {
    producer: u32,
    consumer: u32,
}

fn busy(steps: u32) {
    for step in 0..steps {
        std::hint::black_box(step);
    }
}

/// What a consumer takes as its signal to stop: sent once per consumer, after every message.
const STOP: u64 = u64::MAX;

/// Messages per second through `THREAD_MESSAGES` sends by `producers` threads to `consumers`
/// threads (spread over the two cores), each waiting with the same [`Backoff`]; checks that the
/// sum of what arrived is the sum of what was sent. Each thread gets its own push or pop
/// function (for ringport: its own handle). Nothing else is shared: once the producers are
/// done, this thread sends one [`STOP`] per consumer, which the queue's order puts after every
/// message, and each consumer stops at its first.
fn threads<P, C>(
    producers: u64,
    consumers: usize,
    work: Work,
    make_push: impl Fn() -> P,
    make_pop: impl Fn() -> C,
) -> f64
where
    P: FnMut(u64) -> bool + Send,
    C: FnMut() -> Option<u64> + Send,
{
    let per_producer = THREAD_MESSAGES / producers;
    let total = per_producer * producers;
    let mut stopper = make_push();
    let start = Instant::now();
    let sums: Vec<u64> = std::thread::scope(|s| {
        let senders: Vec<_> = (0..producers)
            .map(|p| {
                let mut push = make_push();
                s.spawn(move || {
                    pin_to(p as usize);
                    let mut backoff = Backoff::default();
                    for i in 0..per_producer {
                        busy(work.producer);
                        while !push(p * per_producer + i) {
                            backoff.wait();
                        }
                        backoff.reset();
                    }
                })
            })
            .collect();
        let receivers: Vec<_> = (0..consumers)
            .map(|c| {
                let mut pop = make_pop();
                s.spawn(move || {
                    // The first consumer on the other core than the first producer.
                    pin_to(c + 1);
                    let mut sum = 0u64;
                    let mut backoff = Backoff::default();
                    loop {
                        match pop() {
                            Some(STOP) => return sum,
                            Some(v) => {
                                sum = sum.wrapping_add(v);
                                busy(work.consumer);
                                backoff.reset();
                            }
                            None => backoff.wait(),
                        }
                    }
                })
            })
            .collect();
        for sender in senders {
            sender.join().unwrap();
        }
        for _ in 0..consumers {
            while !stopper(STOP) {
                std::thread::yield_now();
            }
        }
        receivers.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let rate = total as f64 / start.elapsed().as_secs_f64();
    assert_eq!(sums.iter().sum::<u64>(), total * (total - 1) / 2);
    rate
}

fn threads_crossbeam(producers: u64, consumers: usize, work: Work) -> f64 {
    let queue = ArrayQueue::<u64>::new(SLOTS);
    let queue = &queue;
    threads(
        producers,
        consumers,
        work,
        || move |v| queue.push(v).is_ok(),
        || move || queue.pop(),
    )
}

fn threads_ringport(producers: u64, consumers: usize, work: Work) -> f64 {
    let ring = MpmcOptions::new()
        .slots(SLOTS)
        .slot_size(8)
        .in_process()
        .unwrap();
    threads(
        producers,
        consumers,
        work,
        || {
            let mut producer = ring.producer();
            move |v: u64| match producer.try_send(&v.to_le_bytes()) {
                Ok(()) => true,
                Err(Error::Full) => false,
                Err(e) => panic!("{e}"),
            }
        },
        || {
            let mut consumer = ring.consumer();
            move || match consumer.try_recv() {
                Ok(m) => Some(word(&m)),
                Err(Error::Empty) => None,
                Err(e) => panic!("{e}"),
            }
        },
    )
}

// ---------------------------------------------------------------- 1 x 1 processes

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ring {
    Mpmc,
    Spsc,
}

/// Retries `op` while it reports a full or an empty ring, spinning; returns its value.
fn spin<T>(mut op: impl FnMut() -> Result<T, Error>) -> T {
    loop {
        match op() {
            Ok(v) => return v,
            Err(Error::Full | Error::Empty) => std::hint::spin_loop(),
            Err(e) => panic!("{e}"),
        }
    }
}

fn word(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes[..8].try_into().unwrap())
}

/// The child: consumes `n` messages, checks their sum, prints nothing.
fn consume(ring: Ring, name: &str, n: u64) {
    pin_to(1);
    let sum = match ring {
        Ring::Mpmc => {
            let ring = MpmcOptions::new().open(name).unwrap();
            let mut consumer = ring.consumer();
            (0..n).fold(0u64, |sum, _| {
                sum.wrapping_add(spin(|| consumer.try_recv().map(|m| word(&m))))
            })
        }
        Ring::Spsc => {
            let mut consumer = SpscOptions::new().open_consumer(name).unwrap();
            (0..n).fold(0u64, |sum, _| {
                sum.wrapping_add(spin(|| consumer.try_recv().map(|m| word(&m))))
            })
        }
    };
    assert_eq!(sum, n * (n - 1) / 2);
}

/// Messages per second from this process to a child, busy-polling both sides. The ring holds
/// as many 8-byte messages either way (SLOTS).
fn processes(ring: Ring) -> f64 {
    pin_to(0);
    let name = SegmentName::new(match ring {
        Ring::Mpmc => "bench-mpmc",
        Ring::Spsc => "bench-spsc",
    });
    let n = PROCESS_MESSAGES;
    let spawn = || {
        let tag = if ring == Ring::Mpmc { "mpmc" } else { "spsc" };
        std::process::Command::new(std::env::current_exe().unwrap())
            .env(CHILD_ENV, format!("{tag}:{}:{n}", name.as_str()))
            .spawn()
            .unwrap()
    };
    // Each run is timed from the first message the child took, not from its start-up.
    let (start, mut child) = match ring {
        Ring::Mpmc => {
            let ring = MpmcOptions::new()
                .slots(SLOTS)
                .slot_size(8)
                .create(name.as_str())
                .unwrap();
            let mut producer = ring.producer();
            let child = spawn();
            producer
                .send_timeout(&0u64.to_le_bytes(), Duration::from_secs(10))
                .unwrap();
            let start = Instant::now();
            for i in 1..n {
                spin(|| producer.try_send(&i.to_le_bytes()));
            }
            (start, child)
        }
        Ring::Spsc => {
            let mut producer = SpscOptions::new()
                .capacity(SLOTS * 16)
                .max_frame(64)
                .create_producer(name.as_str())
                .unwrap();
            let child = spawn();
            producer.send(&0u64.to_le_bytes()).unwrap();
            let start = Instant::now();
            for i in 1..n {
                spin(|| producer.try_send(&i.to_le_bytes()));
            }
            (start, child)
        }
    };
    assert!(child.wait().unwrap().success());
    (n - 1) as f64 / start.elapsed().as_secs_f64()
}

// ---------------------------------------------------------------- driver

fn main() {
    if let Ok(arg) = std::env::var(CHILD_ENV) {
        let mut parts = arg.splitn(3, ':');
        let ring = if parts.next() == Some("mpmc") {
            Ring::Mpmc
        } else {
            Ring::Spsc
        };
        let name = parts.next().unwrap().to_owned();
        let n = parts.next().unwrap().parse().unwrap();
        consume(ring, &name, n);
        return;
    }
    if !std::env::args().any(|a| a == "--bench") && std::env::args().len() > 1 {
        // `cargo test --benches` passes test-harness flags: nothing to do.
        return;
    }
    let rounds = if std::env::args().any(|a| a == "--quick") {
        3
    } else {
        7
    };
    println!("ringport MPMC against its baselines: {rounds} interleaved rounds, medians");
    // crossbeam and ringport: 1 x 1, 2 x 2, 1 x 1 with a slower producer, then with a slower
    // consumer (threads); then SPSC and MPMC across processes.
    const PAIRS: usize = 4;
    let slower_producer = Work {
        producer: WORK_STEPS,
        consumer: 0,
    };
    let slower_consumer = Work {
        producer: 0,
        consumer: WORK_STEPS,
    };
    let rows: [(&str, u64, usize, Work); PAIRS] = [
        ("1 producer x 1 consumer", 1, 1, Work::default()),
        ("2 producers x 2 consumers", 2, 2, Work::default()),
        ("1 x 1, the producer slower", 1, 1, slower_producer),
        ("1 x 1, the consumer slower", 1, 1, slower_consumer),
    ];
    type Threaded = fn(u64, usize, Work) -> f64;
    const CONTENDERS: [Threaded; 2] = [threads_crossbeam, threads_ringport];
    let mut threaded: [[Vec<f64>; 2]; PAIRS] = Default::default();
    let mut ratios: [Vec<f64>; PAIRS] = Default::default();
    let mut procs: [Vec<f64>; 2] = Default::default();
    for round in 0..rounds {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for (row, &(_, producers, consumers, work)) in rows.iter().enumerate() {
            for &i in &order {
                threaded[row][i].push(CONTENDERS[i](producers, consumers, work));
            }
            let [crossbeam, ringport] = &threaded[row];
            ratios[row].push(ringport[round] / crossbeam[round]);
        }
        for &i in &order {
            procs[i].push(processes([Ring::Spsc, Ring::Mpmc][i]));
        }
        eprint!(".");
    }
    eprintln!();
    for (row, (label, ..)) in rows.iter().enumerate() {
        let [crossbeam, ringport] = threaded[row].clone().map(median);
        println!(
            "{label}, 8 B, threads, the same backoff: crossbeam ArrayQueue {:7.1} M/s   ringport MPMC {:7.1} M/s   ratio {:.2}x (median of the rounds' ratios)",
            crossbeam / 1e6,
            ringport / 1e6,
            median(ratios[row].clone()),
        );
    }
    let [spsc, mpmc] = procs.map(median);
    println!(
        "1 producer -> 1 consumer, 8 B, processes: ringport SPSC {:7.1} M/s   ringport MPMC {:7.1} M/s   ratio {:.2}x",
        spsc / 1e6,
        mpmc / 1e6,
        mpmc / spsc
    );
}
