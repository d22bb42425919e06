//! The MPMC ring's behaviour: waiting and waking, timeouts, aborts, typed errors, and recovery
//! from a handle killed in the middle of a write or a read.

mod common;

use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{
    child_arg, kill9, offsets, spawn_child_ready, thread_id, wait_until_asleep_in_futex, SharedMap,
    ShmName,
};
use ringport::{Error, MpmcOptions, SpscOptions};

fn small() -> MpmcOptions {
    MpmcOptions::new().slots(4).slot_size(32)
}

#[test]
fn try_forms_report_full_and_empty() {
    let ring = small().in_process().unwrap();
    let (mut producer, mut consumer) = (ring.producer(), ring.consumer());
    assert!(matches!(consumer.try_recv(), Err(Error::Empty)));
    for i in 0..4u8 {
        producer.try_send(&[i; 3]).unwrap();
    }
    assert!(matches!(producer.try_send(&[9]), Err(Error::Full)));
    let mut buf = Vec::new();
    for i in 0..4u8 {
        assert_eq!(consumer.try_recv_into(&mut buf).unwrap(), 3);
        assert_eq!(buf, [i; 3]);
    }
    assert!(matches!(consumer.try_recv(), Err(Error::Empty)));
}

#[test]
fn aborted_grants_are_skipped_and_partial_commits_shorten() {
    let ring = small().in_process().unwrap();
    let (mut producer, mut consumer) = (ring.producer(), ring.consumer());
    let mut grant = producer.try_reserve(32).unwrap();
    grant.fill(1);
    drop(grant);
    let mut grant = producer.try_reserve(32).unwrap();
    grant[..2].copy_from_slice(b"ok");
    grant.commit_len(2);
    producer.try_reserve(5).unwrap().commit_len(0);
    assert_eq!(&*consumer.try_recv().unwrap(), b"ok");
    assert!(matches!(consumer.try_recv(), Err(Error::Empty)));
    // The skipped slots were freed: the ring takes four more.
    for _ in 0..4 {
        producer.try_send(b"x").unwrap();
    }
}

/// How often a sleeper of `small()` wakes to look at the slot in its way.
const LIVENESS: Duration = Duration::from_millis(20);

#[test]
fn full_and_empty_rings_block_and_wake() {
    let ring = small().spin(Duration::ZERO).in_process().unwrap();
    let mut consumer = ring.consumer();
    let mut producer = ring.producer();
    std::thread::scope(|s| {
        let (tid_tx, tid_rx) = mpsc::channel();
        let waiter = s.spawn(move || {
            tid_tx.send(thread_id()).unwrap();
            let got = consumer.recv().unwrap().to_vec();
            (got, consumer)
        });
        wait_until_asleep_in_futex(tid_rx.recv().unwrap());
        producer.send(b"wake").unwrap();
        let (got, consumer) = waiter.join().unwrap();
        assert_eq!(got, b"wake");
        assert!(
            consumer.stats().sleeps >= 1,
            "the consumer should have slept"
        );
    });
    let mut consumer = ring.consumer();
    for _ in 0..4 {
        producer.send(b"fill").unwrap();
    }
    std::thread::scope(|s| {
        let (tid_tx, tid_rx) = mpsc::channel();
        let waiter = s.spawn(move || {
            tid_tx.send(thread_id()).unwrap();
            producer.send(b"room").unwrap();
            producer
        });
        wait_until_asleep_in_futex(tid_rx.recv().unwrap());
        drop(consumer.recv().unwrap());
        let producer = waiter.join().unwrap();
        assert!(
            producer.stats().sleeps >= 1,
            "the producer should have slept"
        );
    });
    let mut buf = Vec::new();
    for expected in [b"fill", b"fill", b"fill", b"room"] {
        consumer.recv_into(&mut buf).unwrap();
        assert_eq!(buf, expected);
    }
}

#[test]
fn timeouts_return_after_the_time() {
    let ring = small().in_process().unwrap();
    let (mut producer, mut consumer) = (ring.producer(), ring.consumer());
    let start = Instant::now();
    assert!(matches!(
        consumer.recv_timeout(Duration::from_millis(50)),
        Err(Error::Timeout)
    ));
    let waited = start.elapsed();
    // The upper bound is a hang guard, not a rate.
    assert!(waited >= Duration::from_millis(50) && waited < Duration::from_secs(10));
    while producer.try_send(b"x").is_ok() {}
    let start = Instant::now();
    assert!(matches!(
        producer.send_timeout(b"x", Duration::from_millis(50)),
        Err(Error::Timeout)
    ));
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(50) && waited < Duration::from_secs(10));
}

#[test]
fn a_blocked_consumer_sleeps_between_looks() {
    let ring = small().liveness_interval(LIVENESS).in_process().unwrap();
    let mut consumer = ring.consumer();
    let start = Instant::now();
    assert!(matches!(
        consumer.recv_timeout(10 * LIVENESS),
        Err(Error::Timeout)
    ));
    let (waited, stats) = (start.elapsed(), consumer.stats());
    // Each sleep lasts a liveness interval (or what is left of the timeout): a spinning wait
    // would show none, one woken over and over many more.
    let most = (waited.as_millis() / LIVENESS.as_millis()) as u64 + 2;
    assert!(
        (1..=most).contains(&stats.sleeps),
        "{stats:?} in {waited:?}"
    );
}

/// A fresh segment's bells are zero, which tells a sleeper that the notifiers do not fence:
/// it must take the membarrier. (The MPMC notifiers never fence, and before layout version 4 a
/// zeroed bell said the opposite, so sleepers on a named MPMC ring went without one.)
#[test]
fn a_sleeper_on_a_named_ring_takes_the_barrier_its_notifiers_leave_to_it() {
    let name = ShmName::new("mpmc-barrier");
    let ring = small().spin(Duration::ZERO).create(name.as_str()).unwrap();
    let mut consumer = ring.consumer();
    assert!(matches!(
        consumer.recv_timeout(Duration::from_millis(1)),
        Err(Error::Timeout)
    ));
    let stats = consumer.stats();
    assert!(stats.barriers >= 1, "slept without the barrier: {stats:?}");
}

#[test]
fn many_threads_each_message_once() {
    let ring = MpmcOptions::new()
        .slots(8)
        .slot_size(8)
        .in_process()
        .unwrap();
    let per_producer = 50_000u64;
    let received: Vec<Vec<u64>> = std::thread::scope(|s| {
        for p in 0..3u64 {
            let mut producer = ring.producer();
            s.spawn(move || {
                for i in 0..per_producer {
                    producer.send(&(p << 32 | i).to_le_bytes()).unwrap();
                }
            });
        }
        let consumers: Vec<_> = (0..3)
            .map(|_| {
                let mut consumer = ring.consumer();
                s.spawn(move || {
                    let mut got = Vec::new();
                    while let Ok(m) = consumer.recv_timeout(Duration::from_millis(300)) {
                        got.push(u64::from_le_bytes(m[..8].try_into().unwrap()));
                    }
                    got
                })
            })
            .collect();
        consumers.into_iter().map(|c| c.join().unwrap()).collect()
    });
    for got in &received {
        for p in 0..3u64 {
            let mine: Vec<u64> = got.iter().filter(|v| *v >> 32 == p).copied().collect();
            assert!(
                mine.windows(2).all(|w| w[0] < w[1]),
                "producer {p} out of order"
            );
        }
    }
    let mut all: Vec<u64> = received.concat();
    all.sort_unstable();
    let expected: Vec<u64> = (0..3u64)
        .flat_map(|p| (0..per_producer).map(move |i| p << 32 | i))
        .collect();
    assert_eq!(all.len(), expected.len());
    assert!(all == expected, "lost or duplicated messages");
}

#[test]
fn bad_options_and_lengths_are_refused() {
    for options in [
        MpmcOptions::new().slots(3),
        MpmcOptions::new().slots(1),
        MpmcOptions::new().slot_size(0),
        MpmcOptions::new().slots(1 << 31),
    ] {
        assert!(matches!(options.in_process(), Err(Error::InvalidConfig(_))));
    }
    let ring = small().in_process().unwrap();
    let mut producer = ring.producer();
    assert!(matches!(
        producer.try_send(&[0; 33]),
        Err(Error::InvalidLength { len: 33, max: 32 })
    ));
    assert!(matches!(
        producer.try_send(&[]),
        Err(Error::InvalidLength { len: 0, .. })
    ));
}

#[test]
fn bad_segments_give_typed_errors() {
    let missing = ShmName::new("mpmc-missing");
    assert!(matches!(
        small().open(missing.as_str()),
        Err(Error::NotFound)
    ));

    let spsc = ShmName::new("mpmc-spsc");
    let _producer = SpscOptions::new()
        .capacity(4096)
        .create_producer(spsc.as_str())
        .unwrap();
    assert!(matches!(
        small().open(spsc.as_str()),
        Err(Error::WrongKind {
            found: 1,
            expected: 2
        })
    ));

    let mpmc = ShmName::new("mpmc-kind");
    let _ring = small().create(mpmc.as_str()).unwrap();
    assert!(matches!(
        SpscOptions::new().open_consumer(mpmc.as_str()),
        Err(Error::WrongKind {
            found: 2,
            expected: 1
        })
    ));
    // Capacity that is no whole number of slots.
    let raw = SharedMap::open_named(mpmc.as_str()).unwrap();
    raw.u64_at(offsets::CAPACITY)
        .store(4 * 40 + 8, Ordering::Relaxed);
    assert!(matches!(
        small().open(mpmc.as_str()),
        Err(Error::Corrupted { .. })
    ));
}

#[test]
fn a_garbage_stamp_is_corrupted_not_a_hang() {
    let name = ShmName::new("mpmc-stamp");
    let ring = small().create(name.as_str()).unwrap();
    let (mut producer, mut consumer) = (ring.producer(), ring.consumer());
    let raw = SharedMap::open_named(name.as_str()).unwrap();
    // READY on lap 0 with a length beyond the slot.
    raw.u64_at(offsets::DATA)
        .store(2 << 32 | 1000, Ordering::Relaxed);
    assert!(matches!(
        consumer.recv_timeout(Duration::from_secs(5)),
        Err(Error::Corrupted { .. })
    ));
    // A lap far behind the tail's.
    raw.u64_at(offsets::DATA)
        .store(0x3FFF_FFF0 << 34, Ordering::Relaxed);
    assert!(matches!(
        producer.send_timeout(b"x", Duration::from_secs(5)),
        Err(Error::Corrupted { .. })
    ));
}

// ---------------------------------------------------------------- kill -9

fn recovering() -> MpmcOptions {
    small().liveness_interval(Duration::from_millis(20))
}

#[test]
#[ignore = "child process of the kill -9 tests"]
fn child_mpmc_hold_and_hang() {
    let Some(arg) = child_arg() else { return };
    let (what, name) = arg.split_once(':').unwrap();
    let ring = recovering().open(name).unwrap();
    if what == "write" {
        let mut producer = ring.producer();
        let mut grant = producer.reserve(32).unwrap();
        grant.fill(0xEE);
        println!("ready");
        std::thread::sleep(Duration::from_secs(60));
        grant.commit();
    } else {
        let mut consumer = ring.consumer();
        let message = consumer.recv().unwrap();
        println!("ready");
        std::thread::sleep(Duration::from_secs(60));
        drop(message);
    }
}

#[test]
fn a_producer_killed_mid_write_does_not_wedge_the_ring() {
    let name = ShmName::new("mpmc-kill-producer");
    let ring = recovering().create(name.as_str()).unwrap();
    let (mut producer, mut consumer) = (ring.producer(), ring.consumer());
    let mut child = spawn_child_ready(
        "child_mpmc_hold_and_hang",
        &format!("write:{}", name.as_str()),
    );
    producer.send(b"behind the stuck slot").unwrap();
    // The child's claimed slot comes first: nothing can be read past it while the child lives.
    assert!(matches!(
        consumer.recv_timeout(Duration::from_millis(100)),
        Err(Error::Timeout)
    ));
    kill9(&mut child);
    let killed = Instant::now();
    let message = consumer.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(&*message, b"behind the stuck slot");
    assert!(
        killed.elapsed() < Duration::from_secs(2),
        "{:?}",
        killed.elapsed()
    );
}

#[test]
fn a_consumer_killed_mid_read_does_not_wedge_the_ring() {
    let name = ShmName::new("mpmc-kill-consumer");
    let ring = recovering().create(name.as_str()).unwrap();
    let (mut producer, mut consumer) = (ring.producer(), ring.consumer());
    producer.send(b"taken by the child").unwrap();
    let mut child = spawn_child_ready(
        "child_mpmc_hold_and_hang",
        &format!("read:{}", name.as_str()),
    );
    for i in 0..3u8 {
        producer.send(&[i]).unwrap();
    }
    for i in 0..3u8 {
        assert_eq!(&*consumer.recv().unwrap(), &[i]);
    }
    // Three slots are free, but the producer's next one is the slot the child holds.
    assert!(matches!(
        producer.send_timeout(b"more", Duration::from_millis(100)),
        Err(Error::Timeout)
    ));
    kill9(&mut child);
    let killed = Instant::now();
    producer
        .send_timeout(b"more", Duration::from_secs(10))
        .unwrap();
    assert!(
        killed.elapsed() < Duration::from_secs(2),
        "{:?}",
        killed.elapsed()
    );
    assert_eq!(&*consumer.recv().unwrap(), b"more");
    assert!(matches!(consumer.try_recv(), Err(Error::Empty)));
}
