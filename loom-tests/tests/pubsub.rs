//! Publish-subscribe: the subscriber cursors, the frame in hand, overwriting and joining (the
//! exchange in `pubsub::table`), under every interleaving loom explores. Symmetric fences: the
//! model cannot run a membarrier, so the exchange is a SeqCst fence on both sides.
//!
//! A frame the publisher wrote over while a subscriber had it in hand shows twice over: the
//! payload read no longer derives from its sequence number, and loom's cells report the
//! write racing the read. Without the subscriber's pin (its `IN_HAND` store before it reads
//! `OLDEST`), or without the publisher's fence between storing `OLDEST` and scanning the
//! cursors, the overwrite model fails; without the joiner's fence between publishing its cursor
//! and reading `OLDEST` again, the join model does.
#![cfg(loom)]

mod support;

use loom::thread;
use ringport::pubsub::{History, Overflow, PubSubOptions, Publisher, Subscriber};
use ringport::testing::SharedPubSub;
use ringport::Error;
use support::{frame, model};

/// 128 bytes of ring and 8-byte messages: 24-byte frames, five to a lap. A reclaim takes a
/// quarter ring: two frames at a time.
fn tiny(overflow: Overflow) -> PubSubOptions {
    PubSubOptions::new()
        .capacity(128)
        .max_message(8)
        .subscribers(2)
        .overflow(overflow)
        .symmetric_fences(true)
}

fn send(publisher: &mut Publisher, seq: u8) {
    loop {
        match publisher.try_send(&frame(seq, 8)) {
            Ok(()) => return,
            Err(Error::Full) => thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
    }
}

/// Receives until `last` has come (or the publisher has gone), checking every payload against
/// its sequence number while the sample is in hand, and that sequence numbers only rise, by
/// one unless messages were lost (and then by one more than the loss). Returns the sequence
/// numbers received.
fn receive_until(subscriber: &mut Subscriber, last: u64) -> Vec<u64> {
    let mut got: Vec<u64> = Vec::new();
    loop {
        match subscriber.try_recv() {
            Ok(sample) => {
                let seq = sample.seq();
                // Read the payload twice, with a chance for the publisher to run between.
                let before = sample.to_vec();
                thread::yield_now();
                assert_eq!(before, frame(seq as u8, 8), "message {seq} overwritten");
                assert_eq!(&*sample, &before[..], "message {seq} overwritten in hand");
                if let Some(&previous) = got.last() {
                    assert_eq!(
                        seq,
                        previous + 1 + sample.lost_before(),
                        "{got:?} then {seq}"
                    );
                }
                got.push(seq);
                if seq == last {
                    return got;
                }
            }
            Err(Error::Empty) => thread::yield_now(),
            Err(Error::PeerGone(_)) => return got,
            Err(e) => panic!("{e}"),
        }
    }
}

/// The publisher laps a subscriber that reads slowly: never over the frame in hand, and the
/// subscriber's sequence numbers account for every message it lost.
#[test]
fn overwrite_never_touches_a_frame_in_hand() {
    model("pubsub overwrite", || {
        let mut publisher = tiny(Overflow::Overwrite).in_process().unwrap();
        let mut subscriber = publisher.subscriber(History::Oldest).unwrap();
        let writer = thread::spawn(move || {
            for seq in 0..8 {
                send(&mut publisher, seq);
            }
        });
        let got = receive_until(&mut subscriber, 7);
        writer.join().unwrap();
        assert!(!got.is_empty());
    });
}

/// Back-pressure: the subscriber sees every message, in order, though the ring holds fewer.
#[test]
fn blocking_delivers_every_message_in_order() {
    model("pubsub block", || {
        let mut publisher = tiny(Overflow::Block).in_process().unwrap();
        let mut subscriber = publisher.subscriber(History::Oldest).unwrap();
        let writer = thread::spawn(move || {
            for seq in 0..7 {
                send(&mut publisher, seq);
            }
        });
        let got = receive_until(&mut subscriber, 6);
        writer.join().unwrap();
        assert_eq!(got, (0..7).collect::<Vec<u64>>());
    });
}

/// A subscriber joins while the publisher is reclaiming: whatever it starts at, it then sees a
/// run of consecutive messages to the end, none overwritten under it.
#[test]
fn a_joiner_is_never_lapped_under_back_pressure() {
    model("pubsub join", || {
        let ring = std::sync::Arc::new(SharedPubSub::new(&tiny(Overflow::Block)).unwrap());
        let mut publisher = ring.publisher().unwrap();
        for seq in 0..4 {
            send(&mut publisher, seq);
        }
        let writer = thread::spawn(move || {
            for seq in 4..7 {
                send(&mut publisher, seq);
            }
        });
        let mut joiner = ring.subscriber(History::Oldest).unwrap();
        let got = receive_until(&mut joiner, 6);
        writer.join().unwrap();
        let first = got[0];
        assert_eq!(got, (first..7).collect::<Vec<u64>>());
    });
}
