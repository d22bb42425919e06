//! The wait protocol: a side that is going to sleep announces itself, fences, re-checks, then
//! sleeps on the futex; the other side publishes, fences, and wakes only if a sleeper is
//! announced. loom's futex model wakes only a thread that is really waiting and sleeps have no
//! timeout here, so a lost wake-up is a deadlock that loom reports.
//!
//! The rings here use symmetric fences (see `tiny`); the data models in spsc.rs use the default
//! asymmetric ones, under which loom sees no fence on the publish path at all.
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
