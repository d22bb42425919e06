//! The MPMC slot protocol: claims by compare-and-swap on the stamp, counters advanced by
//! helping, commits and releases by Release stores. Payload accesses are registered with loom's
//! race detector, so a producer writing a slot before its previous reader is done, or a
//! consumer reading before the commit is visible, fails the model.
#![cfg(loom)]

mod support;

use loom::thread;
use ringport::mpmc::{Consumer, Producer, Ring};
use ringport::{Error, MpmcOptions};
use support::{frame, model};

/// Two slots of 8 bytes; symmetric fences (see wait.rs) for the blocking models.
fn ring() -> Ring {
    MpmcOptions::new()
        .slots(2)
        .slot_size(8)
        .symmetric_fences(true)
        .in_process()
        .unwrap()
}

fn send_retrying(producer: &mut Producer, bytes: &[u8]) {
    loop {
        match producer.try_send(bytes) {
            Ok(()) => return,
            Err(Error::Full) => thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
    }
}

fn recv_retrying(consumer: &mut Consumer) -> Vec<u8> {
    loop {
        match consumer.try_recv() {
            Ok(m) => return m.to_vec(),
            Err(Error::Empty) => thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
    }
}

/// Two producers and two consumers, one message each way, on the ring's second lap: every
/// message is received exactly once, whichever consumer gets it.
#[test]
fn two_producers_two_consumers_each_message_once() {
    model("mpmc: 2 producers, 2 consumers", || {
        let ring = ring();
        let (mut producer, mut consumer) = (ring.producer(), ring.consumer());
        // Go round once so that the threads work on lap 1, over stamps of lap 0.
        for seq in 0..2 {
            producer.try_send(&frame(seq, 8)).unwrap();
            assert_eq!(consumer.try_recv().unwrap().to_vec(), frame(seq, 8));
        }
        let producers: Vec<_> = [10u8, 20]
            .into_iter()
            .map(|seq| {
                let mut p = ring.producer();
                thread::spawn(move || p.try_send(&frame(seq, 8)).unwrap())
            })
            .collect();
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                let mut c = ring.consumer();
                thread::spawn(move || c.try_recv().ok().map(|m| m.to_vec()))
            })
            .collect();
        for p in producers {
            p.join().unwrap();
        }
        let mut got: Vec<Vec<u8>> = consumers
            .into_iter()
            .filter_map(|c| c.join().unwrap())
            .collect();
        while let Ok(m) = consumer.try_recv() {
            got.push(m.to_vec());
        }
        got.sort();
        let mut expected = vec![frame(10, 8), frame(20, 8)];
        expected.sort();
        assert_eq!(got, expected);
    });
}

/// One producer laps a two-slot ring while a consumer drains it: each slot is reused only after
/// its reader released it, and messages arrive in order. An aborted grant is skipped.
#[test]
fn slots_are_reused_only_after_release() {
    model("mpmc: reuse and abort", || {
        let ring = ring();
        let mut producer = ring.producer();
        let mut consumer = ring.consumer();
        let reader = thread::spawn(move || {
            for seq in [1, 3, 4] {
                assert_eq!(recv_retrying(&mut consumer), frame(seq, 8));
            }
        });
        send_retrying(&mut producer, &frame(1, 8));
        loop {
            match producer.try_reserve(8) {
                Ok(grant) => {
                    drop(grant);
                    break;
                }
                Err(Error::Full) => thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        }
        send_retrying(&mut producer, &frame(3, 8));
        send_retrying(&mut producer, &frame(4, 8));
        reader.join().unwrap();
    });
}

/// Two consumers sleep on an empty ring; one producer sends two messages: both must wake.
#[test]
fn sleeping_consumers_are_woken() {
    model("mpmc: wait, 2 sleepers", || {
        let ring = ring();
        let sleepers: Vec<_> = (0..2)
            .map(|_| {
                let mut c = ring.consumer();
                thread::spawn(move || c.recv().unwrap().to_vec())
            })
            .collect();
        let mut producer = ring.producer();
        producer.send(&frame(1, 8)).unwrap();
        producer.send(&frame(2, 8)).unwrap();
        let mut got: Vec<_> = sleepers.into_iter().map(|t| t.join().unwrap()).collect();
        got.sort();
        assert_eq!(got, vec![frame(1, 8), frame(2, 8)]);
    });
}

/// A producer sleeps on a full ring while a consumer frees a slot: it must wake.
#[test]
fn a_sleeping_producer_is_woken() {
    model("mpmc: wait, full", || {
        let ring = ring();
        let mut producer = ring.producer();
        producer.send(&frame(1, 8)).unwrap();
        producer.send(&frame(2, 8)).unwrap();
        let mut consumer = ring.consumer();
        let reader = thread::spawn(move || {
            assert_eq!(consumer.recv().unwrap().to_vec(), frame(1, 8));
            consumer
        });
        producer.send(&frame(3, 8)).unwrap();
        let mut consumer = reader.join().unwrap();
        assert_eq!(consumer.try_recv().unwrap().to_vec(), frame(2, 8));
        assert_eq!(consumer.try_recv().unwrap().to_vec(), frame(3, 8));
    });
}
