//! The batch forms of the SPSC ring (`try_send_many`, `send_many`, `write_batch`, `try_recv_many`,
//! `recv_many`):
//! what they hand over, where a batch stops, and their errors.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use ringport::{Error, Role, SpscOptions};

fn frame_size(len: usize) -> usize {
    8 + len.div_ceil(8) * 8
}

/// A ring of `capacity` bytes for frames up to 64 bytes, in this process.
fn small_ring(capacity: usize) -> (ringport::spsc::Producer, ringport::spsc::Consumer) {
    SpscOptions::new()
        .capacity(capacity)
        .max_frame(64)
        .in_process()
        .unwrap()
}

fn drain_all(consumer: &mut ringport::spsc::Consumer) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    while consumer
        .try_recv_many(usize::MAX, |frame| got.push(frame.to_vec()))
        .is_ok()
    {}
    got
}

#[test]
fn try_send_many_sends_what_fits_and_says_how_many() {
    // 1024 bytes: 63 frames of 8 bytes (16 each) leave exactly the 8-byte slot after the last
    // and 8 bytes over, too few for another frame and its slot.
    let (mut producer, mut consumer) = small_ring(1024);
    let frames: Vec<[u8; 8]> = (0..100u64).map(u64::to_le_bytes).collect();
    let sent = producer.try_send_many(&frames).unwrap();
    assert_eq!(sent, (1024 - 8) / frame_size(8));
    assert!(matches!(
        producer.try_send_many(&frames[sent..]),
        Err(Error::Full)
    ));
    let got = drain_all(&mut consumer);
    assert_eq!(got.len(), sent);
    assert!(got.iter().zip(&frames).all(|(a, b)| a[..] == b[..]));
    // The consumer caught up, so the whole ring is free again.
    assert_eq!(producer.try_send_many(&frames[sent..]).unwrap(), 100 - sent);
    assert_eq!(drain_all(&mut consumer).len(), 100 - sent);
    assert_eq!(producer.try_send_many::<&[u8]>(&[]).unwrap(), 0);
}

#[test]
fn an_invalid_length_anywhere_sends_nothing() {
    let (mut producer, mut consumer) = SpscOptions::new()
        .capacity(4096)
        .max_frame(64)
        .in_process()
        .unwrap();
    let frames: [&[u8]; 3] = [b"ok", &[0; 65], b"fine"];
    for result in [
        producer.try_send_many(&frames).map(drop),
        producer.send_many(&frames),
        producer.send_many(&[b"ok".as_slice(), b""]),
    ] {
        assert!(matches!(result, Err(Error::InvalidLength { .. })));
    }
    assert!(matches!(
        consumer.try_recv_many(usize::MAX, |_| ()),
        Err(Error::Empty)
    ));
}

#[test]
fn batches_wrap_around_with_random_sizes() {
    let (mut producer, mut consumer) = SpscOptions::new()
        .capacity(4096)
        .max_frame(700)
        .in_process()
        .unwrap();
    let mut rng = SmallRng::seed_from_u64(11);
    let mut next_sent = 0u32;
    let mut next_read = 0u32;
    for _ in 0..2_000 {
        let batch: Vec<Vec<u8>> = (0..rng.random_range(1..40))
            .map(|i| {
                let seq = next_sent + i;
                let len = rng.random_range(4..=700);
                let mut frame = vec![seq as u8; len];
                frame[..4].copy_from_slice(&seq.to_le_bytes());
                frame
            })
            .collect();
        match producer.try_send_many(&batch) {
            Ok(n) => next_sent += n as u32,
            Err(Error::Full) => {}
            Err(e) => panic!("try_send_many: {e}"),
        }
        let max = rng.random_range(1..50);
        match consumer.try_recv_many(max, |frame| {
            assert_eq!(
                u32::from_le_bytes(frame[..4].try_into().unwrap()),
                next_read
            );
            assert!(frame[4..].iter().all(|&b| b == next_read as u8));
            next_read += 1;
        }) {
            Ok(n) => assert!((1..=max).contains(&n)),
            Err(Error::Empty) => assert_eq!(next_read, next_sent),
            Err(e) => panic!("try_recv_many: {e}"),
        }
    }
    assert!(
        next_sent > 10_000,
        "the ring should have wrapped many times"
    );
}

#[test]
fn a_batch_stops_at_max() {
    let (mut producer, mut consumer) = SpscOptions::new().in_process().unwrap();
    producer.send_many(&[b"a", b"b", b"c", b"d"]).unwrap();
    let mut got = Vec::new();
    assert_eq!(consumer.try_recv_many(0, |f| got.push(f[0])).unwrap(), 0);
    assert_eq!(consumer.try_recv_many(3, |f| got.push(f[0])).unwrap(), 3);
    assert_eq!(consumer.recv_many(3, |f| got.push(f[0])).unwrap(), 1);
    assert_eq!(got, b"abcd");
}

#[test]
fn a_panic_in_the_handler_consumes_only_the_frames_it_was_given() {
    let (mut producer, mut consumer) = SpscOptions::new().in_process().unwrap();
    producer.send_many(&[b"1", b"2", b"3", b"4"]).unwrap();
    let mut seen = Vec::new();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        consumer.try_recv_many(usize::MAX, |frame| {
            seen.push(frame[0]);
            assert_ne!(frame, b"2", "the handler fails on the second frame");
        })
    }));
    assert!(outcome.is_err());
    assert_eq!(seen, b"12");
    assert_eq!(&*consumer.try_recv().unwrap(), b"3");
}

#[test]
fn send_many_waits_for_room_across_threads() {
    const N: u64 = 200_000;
    let (mut producer, mut consumer) = small_ring(2048);
    let writer = std::thread::spawn(move || {
        let frames: Vec<[u8; 8]> = (0..N).map(u64::to_le_bytes).collect();
        for chunk in frames.chunks(300) {
            producer.send_many(chunk).unwrap();
        }
    });
    let mut next = 0u64;
    while next < N {
        consumer
            .recv_many(usize::MAX, |frame| {
                assert_eq!(frame, next.to_le_bytes());
                next += 1;
            })
            .unwrap();
    }
    writer.join().unwrap();
    assert!(matches!(
        consumer.recv_many(1, |_| ()),
        Err(Error::PeerGone(Role::Producer))
    ));
}

#[test]
fn frames_sent_before_the_producer_left_are_delivered_then_peer_gone() {
    let (mut producer, mut consumer) = SpscOptions::new().in_process().unwrap();
    producer.send_many(&[b"last".as_slice(), b"words"]).unwrap();
    drop(producer);
    let mut got = Vec::new();
    assert_eq!(
        consumer
            .try_recv_many(usize::MAX, |f| got.push(f.to_vec()))
            .unwrap(),
        2
    );
    assert_eq!(got, [b"last".to_vec(), b"words".to_vec()]);
    assert!(matches!(
        consumer.try_recv_many(usize::MAX, |_| ()),
        Err(Error::PeerGone(Role::Producer))
    ));
}

#[test]
fn a_consumer_that_left_is_reported_to_a_full_producer() {
    let (mut producer, consumer) = small_ring(1024);
    drop(consumer);
    let frames = vec![[0u8; 64]; 100];
    assert!(producer.try_send_many(&frames).unwrap() > 0);
    assert!(matches!(
        producer.try_send_many(&frames),
        Err(Error::PeerGone(Role::Consumer))
    ));
    assert!(matches!(
        producer.send_many(&frames),
        Err(Error::PeerGone(Role::Consumer))
    ));
}

#[test]
fn recv_many_timeout_gives_up_after_about_the_time() {
    let (_producer, mut consumer) = SpscOptions::new().in_process().unwrap();
    let started = Instant::now();
    let result = consumer.recv_many_timeout(usize::MAX, |_| (), Duration::from_millis(50));
    let waited = started.elapsed();
    assert!(matches!(result, Err(Error::Timeout)), "{result:?}");
    assert!(waited >= Duration::from_millis(50), "{waited:?}");
    assert!(waited < Duration::from_secs(10), "{waited:?}");
}

/// A frame whose `as_ref` panics on its `fail_on`-th call (counted over all frames).
struct Fragile<'a> {
    bytes: &'static [u8],
    calls: &'a Cell<u32>,
    fail_on: u32,
}

impl AsRef<[u8]> for Fragile<'_> {
    fn as_ref(&self) -> &[u8] {
        self.calls.set(self.calls.get() + 1);
        assert_ne!(self.calls.get(), self.fail_on, "as_ref fails");
        self.bytes
    }
}

#[test]
fn a_batch_cut_short_by_a_panic_publishes_the_frames_written() {
    let (mut producer, mut consumer) = SpscOptions::new().in_process().unwrap();
    let calls = Cell::new(0);
    // The lengths are checked first (calls 1-3); the batch then fails on its third frame.
    let frames = [b"one".as_slice(), b"two", b"six"].map(|bytes| Fragile {
        bytes,
        calls: &calls,
        fail_on: 6,
    });
    let outcome = catch_unwind(AssertUnwindSafe(|| producer.try_send_many(&frames)));
    assert!(outcome.is_err());
    assert_eq!(drain_all(&mut consumer), [b"one".to_vec(), b"two".to_vec()]);
    producer.send_many(&[b"after"]).unwrap();
    assert_eq!(drain_all(&mut consumer), [b"after".to_vec()]);
}

/// Frame `seq` of `len` bytes: its number, then its low byte repeated.
fn fill(frame: &mut [u8], seq: u32) {
    frame.fill(seq as u8);
    frame[..4].copy_from_slice(&seq.to_le_bytes());
}

fn check(frame: &[u8], seq: u32) {
    assert_eq!(u32::from_le_bytes(frame[..4].try_into().unwrap()), seq);
    assert!(frame[4..].iter().all(|&b| b == seq as u8), "frame {seq}");
}

#[test]
fn in_place_batches_wrap_around_and_aborted_ones_leave_nothing() {
    let (mut producer, mut consumer) = SpscOptions::new()
        .capacity(4096)
        .max_frame(700)
        .in_process()
        .unwrap();
    let mut rng = SmallRng::seed_from_u64(12);
    let (mut next_sent, mut next_read, mut aborted) = (0u32, 0u32, 0);
    for _ in 0..4_000 {
        let mut batch = producer.write_batch();
        let mut seq = next_sent;
        for _ in 0..rng.random_range(1..40) {
            match batch.try_push(rng.random_range(4..=700)) {
                Ok(frame) => fill(frame, seq),
                Err(Error::Full) => break,
                Err(e) => panic!("try_push: {e}"),
            }
            seq += 1;
        }
        assert_eq!(batch.len() as u32, seq - next_sent);
        if rng.random_bool(0.2) {
            // Garbage where the aborted frames were, then nothing sent.
            drop(batch);
            aborted += 1;
        } else {
            assert_eq!(batch.commit() as u32, seq - next_sent);
            next_sent = seq;
        }
        let max = rng.random_range(1..50);
        match consumer.try_recv_many(max, |frame| {
            check(frame, next_read);
            next_read += 1;
        }) {
            Ok(n) => assert!((1..=max).contains(&n)),
            Err(Error::Empty) => assert_eq!(next_read, next_sent),
            Err(e) => panic!("try_recv_many: {e}"),
        }
    }
    while consumer
        .try_recv_many(usize::MAX, |frame| {
            check(frame, next_read);
            next_read += 1;
        })
        .is_ok()
    {}
    assert_eq!(next_read, next_sent);
    assert!(
        next_sent > 10_000 && aborted > 500,
        "{next_sent} sent, {aborted} aborted"
    );
}

#[test]
fn an_in_place_batch_checks_lengths_and_reports_a_full_ring() {
    let (mut producer, mut consumer) = small_ring(1024);
    let mut batch = producer.write_batch();
    assert!(batch.is_empty());
    for len in [0, 65] {
        assert!(matches!(
            batch.try_push(len),
            Err(Error::InvalidLength { max: 64, .. })
        ));
    }
    // 72-byte frames: 14 in 1024 bytes with the slot after the last.
    let mut pushed = 0u32;
    while let Ok(frame) = batch.try_push(64) {
        fill(frame, pushed);
        pushed += 1;
    }
    assert!(matches!(batch.try_push(64), Err(Error::Full)));
    assert_eq!((pushed, batch.commit()), (14, 14));
    assert!(matches!(
        producer.write_batch().try_push(1),
        Err(Error::Full)
    ));
    let mut read = 0;
    consumer
        .try_recv_many(usize::MAX, |frame| {
            check(frame, read);
            read += 1;
        })
        .unwrap();
    assert_eq!(read, 14);
    // An empty batch commits nothing, and the consumer, gone, is reported once full.
    assert_eq!(producer.write_batch().commit(), 0);
    drop(consumer);
    let mut batch = producer.write_batch();
    while batch.try_push(64).is_ok() {}
    assert!(matches!(
        batch.try_push(64),
        Err(Error::PeerGone(Role::Consumer))
    ));
}

#[test]
fn in_place_batches_stream_across_threads() {
    const N: u32 = 300_000;
    let (mut producer, mut consumer) = small_ring(2048);
    let writer = std::thread::spawn(move || {
        let mut seq = 0;
        while seq < N {
            let mut batch = producer.write_batch();
            while seq < N {
                let Ok(frame) = batch.try_push(8 + (seq % 7) as usize) else {
                    break;
                };
                fill(frame, seq);
                seq += 1;
            }
            if batch.commit() == 0 {
                std::thread::yield_now();
            }
        }
    });
    let mut next = 0;
    while next < N {
        consumer
            .recv_many(usize::MAX, |frame| {
                check(frame, next);
                next += 1;
            })
            .unwrap();
    }
    writer.join().unwrap();
}
