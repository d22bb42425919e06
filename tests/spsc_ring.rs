//! The ring's behaviour through the public API, in one process: grants, partial commits, aborts,
//! wrap-around at every boundary, and a randomized comparison with a `VecDeque` model.

use std::collections::VecDeque;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use ringport::{Error, SpscOptions};

fn frame_size(len: usize) -> usize {
    8 + len.div_ceil(8) * 8
}

#[test]
fn a_grant_is_written_in_place_and_committed() {
    let (mut producer, mut consumer) = SpscOptions::new()
        .capacity(4096)
        .max_frame(1024)
        .in_process()
        .unwrap();
    let mut grant = producer.reserve(300).unwrap();
    assert_eq!(grant.len(), 300);
    for (i, b) in grant.iter_mut().enumerate() {
        *b = i as u8;
    }
    grant.commit();
    let frame = consumer.recv().unwrap();
    assert_eq!(frame.len(), 300);
    assert!(frame.iter().enumerate().all(|(i, &b)| b == i as u8));
}

#[test]
fn a_partial_commit_publishes_only_the_prefix() {
    let (mut producer, mut consumer) = SpscOptions::new()
        .capacity(4096)
        .max_frame(1024)
        .in_process()
        .unwrap();
    let mut grant = producer.reserve(1024).unwrap();
    grant[..5].copy_from_slice(b"short");
    grant.commit_len(5);
    producer.send(b"next").unwrap();
    assert_eq!(&*consumer.recv().unwrap(), b"short");
    assert_eq!(&*consumer.recv().unwrap(), b"next");
}

#[test]
#[should_panic(expected = "more than the 4 bytes reserved")]
fn committing_more_than_reserved_panics() {
    let (mut producer, _consumer) = SpscOptions::new().in_process().unwrap();
    producer.reserve(4).unwrap().commit_len(5);
}

#[test]
fn an_aborted_grant_leaves_nothing() {
    let (mut producer, mut consumer) = SpscOptions::new()
        .capacity(4096)
        .max_frame(1024)
        .in_process()
        .unwrap();
    let mut grant = producer.reserve(100).unwrap();
    grant.fill(0xEE);
    drop(grant);
    producer.reserve(10).unwrap().commit_len(0);
    assert!(matches!(consumer.try_recv(), Err(Error::Empty)));
    producer.send(b"after").unwrap();
    assert_eq!(&*consumer.try_recv().unwrap(), b"after");
    assert!(matches!(consumer.try_recv(), Err(Error::Empty)));
}

#[test]
fn a_full_ring_refuses_until_a_frame_is_released() {
    let (mut producer, mut consumer) = SpscOptions::new()
        .capacity(1024)
        .max_frame(256)
        .in_process()
        .unwrap();
    let mut sent = 0;
    while producer.try_send(&[sent as u8; 100]).is_ok() {
        sent += 1;
    }
    // 1024 bytes hold 9 frames of 112 bytes plus the 8-byte slot that must stay free.
    assert_eq!(sent, 9);
    assert!(matches!(producer.try_reserve(100), Err(Error::Full)));
    let frame = consumer.try_recv().unwrap();
    assert!(
        matches!(producer.try_reserve(1), Err(Error::Full)),
        "space is freed on release, not on recv"
    );
    drop(frame);
    // The next frame wraps to the start, where 112 bytes are free: a frame must also leave the
    // 8-byte slot after it free, so 96 bytes (a 104-byte frame) fit and 100 do not.
    assert!(matches!(producer.try_reserve(100), Err(Error::Full)));
    producer.try_send(&[42; 96]).expect("room after release");
    drop(consumer.try_recv().unwrap());
    producer
        .try_send(&[43; 100])
        .expect("room after two releases");
}

#[test]
fn frames_ending_exactly_at_the_end_of_the_lap_and_wrapping_frames() {
    // Every frame size from 1 to 200 bytes against a 512-byte ring hits every alignment of the
    // lap's end: exact fits, padding of every length, and frames at offset 0.
    let (mut producer, mut consumer) = SpscOptions::new()
        .capacity(512)
        .max_frame(200)
        .in_process()
        .unwrap();
    for round in 0..3 {
        for len in 1..=200usize {
            let fill = (len + round) as u8;
            producer.try_send(&vec![fill; len]).unwrap();
            let frame = consumer.try_recv().unwrap();
            assert_eq!(frame.len(), len);
            assert!(frame.iter().all(|&b| b == fill));
        }
    }
}

#[test]
fn the_largest_frame_always_fits_an_empty_ring() {
    let max = 512 - 16;
    let (mut producer, mut consumer) = SpscOptions::new()
        .capacity(1024)
        .max_frame(max)
        .in_process()
        .unwrap();
    for len in [1, 7, 300, max, 5, max, max] {
        producer
            .try_send(&vec![9; len])
            .unwrap_or_else(|e| panic!("{len}: {e}"));
        assert_eq!(consumer.try_recv().unwrap().len(), len);
    }
}

#[test]
fn copying_helpers_round_trip() {
    let (mut producer, mut consumer) = SpscOptions::new().in_process().unwrap();
    let mut buf = vec![1, 2, 3];
    producer.send(b"abc").unwrap();
    producer.try_send(b"defgh").unwrap();
    assert_eq!(consumer.recv_into(&mut buf).unwrap(), 3);
    assert_eq!(buf, b"abc");
    assert_eq!(consumer.try_recv_into(&mut buf).unwrap(), 5);
    assert_eq!(buf, b"defgh");
    assert!(matches!(
        consumer.try_recv_into(&mut buf),
        Err(Error::Empty)
    ));
}

/// Small frames are copied out as overlapping words, not by `memcpy`: every length around
/// those word sizes, into a buffer that already holds a longer frame, must come out exact.
#[test]
fn recv_into_copies_every_small_length_exactly() {
    let (mut producer, mut consumer) = SpscOptions::new().in_process().unwrap();
    let mut buf = vec![0xAA; 100];
    for len in 1..=48 {
        let frame: Vec<u8> = (0..len as u8)
            .map(|i| i.wrapping_mul(37) ^ len as u8)
            .collect();
        producer.send(&frame).unwrap();
        assert_eq!(consumer.recv_into(&mut buf).unwrap(), len);
        assert_eq!(buf, frame, "a frame of {len} bytes");
    }
}

/// Random operations on the ring and on a model, compared after every step.
#[test]
fn random_operations_match_a_model() {
    const CAPACITY: usize = 2048;
    const MAX: usize = 700;
    let mut rng = SmallRng::seed_from_u64(0x51c0);
    let (mut producer, mut consumer) = SpscOptions::new()
        .capacity(CAPACITY)
        .max_frame(MAX)
        .in_process()
        .unwrap();
    let mut model: VecDeque<Vec<u8>> = VecDeque::new();
    let mut next = 0u32;
    for step in 0..200_000 {
        let used: usize = model.iter().map(|f| frame_size(f.len())).sum();
        match rng.random_range(0..10) {
            0..=4 => {
                let len = rng.random_range(1..=MAX);
                match producer.try_reserve(len) {
                    Ok(mut grant) => {
                        let keep = match rng.random_range(0..6) {
                            0 => 0,
                            1 => rng.random_range(1..=len),
                            _ => len,
                        };
                        let bytes: Vec<u8> = (0..keep).map(|i| (next as usize + i) as u8).collect();
                        grant[..keep].copy_from_slice(&bytes);
                        grant.commit_len(keep);
                        if keep > 0 {
                            model.push_back(bytes);
                            next += 1;
                        }
                    }
                    Err(Error::Full) => {
                        // Full is only allowed when the frame, the zeroed slot after it, the
                        // worst padding (a frame's worth) and the space the consumer has read
                        // but not yet handed back (less than a sixteenth of the capacity) do
                        // not fit beside what is queued.
                        assert!(
                            used + frame_size(len) + 8 + CAPACITY / 16 > CAPACITY - frame_size(MAX),
                            "step {step}: Full with {used} bytes queued, asked {len}"
                        );
                    }
                    Err(e) => panic!("step {step}: {e}"),
                }
            }
            _ => match consumer.try_recv() {
                Ok(frame) => {
                    let want = model
                        .pop_front()
                        .expect("ring had a frame the model did not");
                    assert!(*frame == want[..], "step {step}: wrong frame");
                }
                Err(Error::Empty) => assert!(
                    model.is_empty(),
                    "step {step}: Empty but model has {}",
                    model.len()
                ),
                Err(e) => panic!("step {step}: {e}"),
            },
        }
    }
}

/// Two threads, random sizes, partial commits and aborts: order and content survive.
#[test]
fn two_threads_random_sizes() {
    const N: u32 = 300_000;
    let (mut producer, mut consumer) = SpscOptions::new()
        .capacity(8192)
        .max_frame(1500)
        .in_process()
        .unwrap();
    let writer = std::thread::spawn(move || {
        let mut rng = SmallRng::seed_from_u64(7);
        let mut seq = 0u32;
        while seq < N {
            let len = rng.random_range(4..=1500);
            let mut grant = producer.reserve(len).unwrap();
            if rng.random_range(0..20) == 0 {
                continue; // abort
            }
            let keep = if rng.random_bool(0.2) {
                rng.random_range(4..=len)
            } else {
                len
            };
            grant[..4].copy_from_slice(&seq.to_le_bytes());
            grant[4..keep].fill(seq as u8);
            grant.commit_len(keep);
            seq += 1;
        }
    });
    for seq in 0..N {
        let frame = consumer.recv().unwrap();
        assert_eq!(u32::from_le_bytes(frame[..4].try_into().unwrap()), seq);
        assert!(frame[4..].iter().all(|&b| b == seq as u8));
    }
    writer.join().unwrap();
    assert!(matches!(consumer.recv(), Err(Error::PeerGone(_))));
}
