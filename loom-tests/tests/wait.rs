//! The wait protocol: a side that is going to sleep announces itself, fences, re-checks, then
//! sleeps on the futex; the other side publishes, fences, and wakes only if a sleeper is
//! announced. loom's futex model wakes only a thread that is really waiting and sleeps have no
//! timeout here, so a lost wake-up is a deadlock that loom reports.
//!
//! Most rings here use symmetric fences (see `tiny`). With the default asymmetric fences the
//! notifier switches between fencing its publishes and not; loom cannot model the membarrier
//! that a sleeper takes while the notifier does not fence, so such a sleep is a spurious wake-up
//! here, and `adaptive_fences_never_lose_a_wake` checks the switches themselves.
#![cfg(loom)]

mod support;

use loom::thread;
use ringport::SpscOptions;
use support::{frame, model};

/// Symmetric fences: the asymmetric pair (a compiler fence on publish, membarrier before sleep)
/// gives the handshake the guarantee of a SeqCst fence on each side, which is what loom checks.
fn tiny() -> SpscOptions {
    SpscOptions::new()
        .capacity(64)
        .max_frame(16)
        .symmetric_fences(true)
}

/// The consumer sleeps on an empty ring while the producer publishes: it must wake.
#[test]
fn consumer_sleeping_on_empty_is_woken() {
    model("wait: data", || {
        let (mut producer, mut consumer) = tiny().in_process().unwrap();
        let writer = thread::spawn(move || {
            producer.send(&frame(1, 8)).unwrap();
            // Keep the producer attached until the frame is read: a detach also wakes the
            // consumer, which would hide a lost wake-up of the publish.
            producer
        });
        assert_eq!(&*consumer.recv().unwrap(), &frame(1, 8)[..]);
        drop(writer.join().unwrap());
    });
}

/// The producer sleeps on a full ring while the consumer frees space: it must wake.
#[test]
fn producer_sleeping_on_full_is_woken() {
    model("wait: space", || {
        let (mut producer, mut consumer) = tiny().in_process().unwrap();
        // Two 16-byte frames fill the ring (the third needs the 8-byte slot after it too).
        producer.send(&frame(1, 16)).unwrap();
        producer.send(&frame(2, 16)).unwrap();
        let reader = thread::spawn(move || {
            assert_eq!(&*consumer.recv().unwrap(), &frame(1, 16)[..]);
            assert_eq!(&*consumer.recv().unwrap(), &frame(2, 16)[..]);
            consumer
        });
        producer.send(&frame(3, 16)).unwrap();
        let mut consumer = reader.join().unwrap();
        assert_eq!(&*consumer.try_recv().unwrap(), &frame(3, 16)[..]);
    });
}

/// A producer that detaches while the consumer sleeps wakes it with PeerGone, after the frame
/// it published.
#[test]
fn detach_wakes_a_sleeping_consumer() {
    model("wait: detach", || {
        let (mut producer, mut consumer) = tiny().in_process().unwrap();
        let writer = thread::spawn(move || {
            producer.send(&frame(1, 4)).unwrap();
            drop(producer);
        });
        assert_eq!(&*consumer.recv().unwrap(), &frame(1, 4)[..]);
        assert!(matches!(consumer.recv(), Err(ringport::Error::PeerGone(_))));
        writer.join().unwrap();
    });
}

/// Default (asymmetric) fences, and under loom the producer stops fencing after one quiet
/// publish: it starts unfenced, fences from the wake of a sleeping consumer, stops after a
/// publish that finds nobody asleep. A consumer that skips its membarrier because the bell says
/// "fenced" must still be woken, also when the producer stops fencing at that moment.
#[test]
fn adaptive_fences_never_lose_a_wake() {
    model("wait: adaptive fences", || {
        let (mut producer, mut consumer) = SpscOptions::new()
            .capacity(64)
            .max_frame(8)
            .in_process()
            .unwrap();
        let writer = thread::spawn(move || {
            for seq in 1..=3 {
                producer.send(&frame(seq, 4)).unwrap();
            }
            producer
        });
        for seq in 1..=3 {
            assert_eq!(&*consumer.recv().unwrap(), &frame(seq, 4)[..]);
        }
        drop(writer.join().unwrap());
    });
}

/// A producer killed while the consumer sleeps: the death notice (run by the thread that
/// declares the death, as the watcher thread would) marks the producer departed and rings the
/// consumer's bell. The consumer must wake with PeerGone, after the frame committed before the
/// death, whether the notice came before or after it set the notice up.
#[test]
fn a_death_notice_wakes_a_sleeping_consumer() {
    model("wait: death notice", || {
        let (mut producer, mut consumer) = tiny().in_process().unwrap();
        let killer = thread::spawn(move || {
            producer.send(&frame(1, 4)).unwrap();
            ringport::testing::kill_producer(producer).unwrap();
        });
        assert_eq!(&*consumer.recv().unwrap(), &frame(1, 4)[..]);
        assert!(matches!(consumer.recv(), Err(ringport::Error::PeerGone(_))));
        killer.join().unwrap();
    });
}
