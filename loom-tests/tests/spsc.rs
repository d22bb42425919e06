//! The SPSC ring's data protocol: reserve, write, commit (Release on the frame header); poll
//! (Acquire), read, release (Release on the consumer position); the producer's reread of the
//! consumer position (Acquire) before it reuses space. A 64-byte ring holds two 16-byte frames,
//! so three frames wrap around (with padding) and meet a full ring and an empty one.
//!
//! Payload bytes are registered with loom's race detector, so a read not ordered after its
//! write fails the model even if the bytes happen to be right.
#![cfg(loom)]

mod support;

use loom::thread;
use ringport::{Error, SpscOptions};
use support::{frame, model, try_recv_expect, try_send};

fn tiny() -> SpscOptions {
    SpscOptions::new().capacity(64).max_frame(16)
}

/// Frames pushed with the `try_` forms, including an aborted grant and a partial commit, arrive
/// whole, in order, once.
#[test]
fn try_forms_wrap_full_empty_abort_partial() {
    model("spsc try forms", || {
        let (mut producer, mut consumer) = tiny().in_process().unwrap();
        let writer = thread::spawn(move || {
            let plan: [(u8, usize, usize); 3] = [(1, 16, 16), (2, 16, 9), (3, 12, 12)];
            for (seq, reserve, keep) in plan {
                // An aborted grant first: it must leave no trace.
                if seq == 2 {
                    loop {
                        match producer.try_reserve(4) {
                            Ok(grant) => {
                                drop(grant);
                                break;
                            }
                            Err(Error::Full) => thread::yield_now(),
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
                loop {
                    match producer.try_reserve(reserve) {
                        Ok(mut grant) => {
                            grant[..keep].copy_from_slice(&frame(seq, keep));
                            grant.commit_len(keep);
                            break;
                        }
                        Err(Error::Full) => thread::yield_now(),
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        });
        for (seq, len) in [(1u8, 16usize), (2, 9), (3, 12)] {
            try_recv_expect(&mut consumer, &frame(seq, len));
        }
        writer.join().unwrap();
        assert!(matches!(consumer.try_recv(), Err(Error::PeerGone(_))));
    });
}

/// The producer reuses the space of the first frame as soon as that frame alone is released:
/// the consumer's Release on its position (paired with the producer's Acquire) is then the only
/// thing ordering the consumer's reads of frame 1 before the producer's writes over them.
#[test]
fn space_reused_after_the_first_release() {
    model("spsc reuse", || {
        let (mut producer, mut consumer) = tiny().in_process().unwrap();
        // Frames of 24, 24 and 16 bytes fill 0..64; the fourth (16 bytes) goes back to offset 0
        // and needs only the first frame released.
        let plan: [(u8, usize); 4] = [(1, 16), (2, 16), (3, 8), (4, 8)];
        let writer = thread::spawn(move || {
            for (seq, len) in plan {
                try_send(&mut producer, &frame(seq, len));
            }
            producer
        });
        for (seq, len) in plan {
            try_recv_expect(&mut consumer, &frame(seq, len));
        }
        drop(writer.join().unwrap());
    });
}

/// Batches: `try_send_many` writes every frame of a batch with plain stores and publishes the
/// lot with one Release on the first header; `try_recv_many` drains what it finds. Four frames
/// taking 16, 24, 16 and 16 bytes go in batches through a 64-byte ring: batches meet a full
/// ring, and the fourth frame wraps behind padding, published by a header written before it.
/// Payloads are registered with the race detector, so a frame read before its batch is
/// published fails the model.
#[test]
fn batches_publish_at_once_and_drain_in_order() {
    model("spsc batches", || {
        let (mut producer, mut consumer) = tiny().in_process().unwrap();
        // 16, 24, 16 and 16 bytes in the ring: the fourth meets the lap's end, and padding.
        let lens = [8, 16, 8, 8];
        let frames: Vec<Vec<u8>> = (1..=4u8)
            .map(|seq| frame(seq, lens[usize::from(seq) - 1]))
            .collect();
        let writer = thread::spawn(move || {
            let mut rest = &frames[..];
            while !rest.is_empty() {
                match producer.try_send_many(rest) {
                    Ok(sent) => rest = &rest[sent..],
                    Err(Error::Full) => thread::yield_now(),
                    Err(e) => panic!("{e}"),
                }
            }
        });
        let mut next = 1u8;
        while next <= 4 {
            match consumer.try_recv_many(usize::MAX, |got| {
                assert_eq!(got, &frame(next, lens[usize::from(next) - 1])[..]);
                next += 1;
            }) {
                Ok(_) => {}
                Err(Error::Empty) => thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        }
        writer.join().unwrap();
        assert!(matches!(
            consumer.try_recv_many(1, |_| ()),
            Err(Error::PeerGone(_))
        ));
    });
}
