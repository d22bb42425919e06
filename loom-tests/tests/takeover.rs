//! Takeover: an endpoint killed in the middle of a stream, and the successor that takes its
//! role while the peer goes on. The consumer records in the ledger each frame it hands out; a
//! successor starts after the last one recorded (or at it, if it asks for redelivery) and
//! publishes that position to the producer. A replacement producer walks the ring to the last
//! frame committed. Every frame committed must be delivered once, in order, beyond the one the
//! dead consumer had in hand, whatever the interleaving.
//!
//! Without the ledger's store in `ReadCursor::poll`, every model fails: a successor consumer
//! finds no frame in hand and starts at the published position, which lags by design (a frame
//! comes twice), and a replacement producer finds no last frame once the consumer read it.
#![cfg(loom)]

mod support;

use loom::thread;
use ringport::testing::{kill_consumer, kill_producer, SharedRing};
use ringport::{Error, SpscOptions};
use support::{frame, model};

/// Three 8-byte frames (16 bytes each in the ring) fit with room to spare: the producer never
/// waits for the dead consumer's space, so the model's length is the takeover's. At 512 bytes
/// the consumer hands space back every 32 bytes, every second frame: a frame released without
/// handing space back is still in hand.
fn tiny() -> SpscOptions {
    SpscOptions::new()
        .capacity(512)
        .max_frame(16)
        .symmetric_fences(true)
}

const FRAMES: u8 = 3;

/// Sends with the `try_` form, yielding while the ring is full or the consumer is gone (its
/// successor will come).
fn send_through_takeover(producer: &mut ringport::spsc::Producer, bytes: &[u8]) {
    loop {
        match producer.try_send(bytes) {
            Ok(()) => return,
            Err(Error::Full | Error::PeerGone(_)) => thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
    }
}

/// Receives with the `try_` form, yielding while the ring is empty or the producer is gone.
fn recv_through_takeover(consumer: &mut ringport::spsc::Consumer) -> Vec<u8> {
    loop {
        match consumer.try_recv_with(<[u8]>::to_vec) {
            Ok(bytes) => return bytes,
            Err(Error::Empty | Error::PeerGone(_)) => thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
    }
}

/// The consumer receives `before` frames on its own thread and is killed; a successor takes
/// over on another while the producer streams. (It attaches once the killer's thread is
/// joined: the model's kernel orders a death before the verdict, as the real one does, and a
/// loop that retried until the verdict would only lengthen the model.) `redeliver`: the successor asks for the frame in
/// hand again.
fn consumer_killed_after(before: u8, redeliver: bool) {
    let ring = std::sync::Arc::new(SharedRing::new(&tiny().redeliver_in_hand(redeliver)).unwrap());
    let mut producer = ring.producer().unwrap();
    let mut first = ring.consumer().unwrap();
    let writer = thread::spawn(move || {
        for seq in 1..=FRAMES {
            send_through_takeover(&mut producer, &frame(seq, 8));
        }
        producer
    });
    let doomed = thread::spawn(move || {
        let got: Vec<Vec<u8>> = (0..before)
            .map(|_| recv_through_takeover(&mut first))
            .collect();
        kill_consumer(first).unwrap();
        got
    });
    let got_first = doomed.join().unwrap();
    let mut second = ring.consumer().unwrap();
    let takeover = second.takeover().expect("the role was taken over").clone();
    // Only the dead consumer's last frame can be in hand (not after it handed space back), and
    // only it can come twice.
    let in_hand = takeover.in_hand.map(|f| f.bytes);
    if before == 1 {
        assert_eq!(
            in_hand.as_ref(),
            got_first.last(),
            "released, no space handed back"
        );
    } else if in_hand.is_some() {
        assert_eq!(in_hand.as_ref(), got_first.last());
    }
    let again = usize::from(redeliver && in_hand.is_some());
    let rest: Vec<Vec<u8>> = (0..usize::from(FRAMES) - got_first.len() + again)
        .map(|_| recv_through_takeover(&mut second))
        .collect();
    let mut delivered = got_first;
    delivered.extend(rest.into_iter().skip(again));
    let expected: Vec<Vec<u8>> = (1..=FRAMES).map(|seq| frame(seq, 8)).collect();
    assert_eq!(delivered, expected);
    drop(writer.join().unwrap());
}

#[test]
fn a_successor_consumer_starts_after_the_last_frame_received() {
    for before in 1..=2 {
        model(
            &format!("takeover: consumer killed after {before}"),
            move || consumer_killed_after(before, false),
        );
    }
}

#[test]
fn a_successor_consumer_asked_to_gets_the_frame_in_hand_again() {
    model("takeover: consumer killed, in hand redelivered", || {
        consumer_killed_after(1, true)
    });
}

/// The producer commits `before` frames and is killed; a replacement takes over, reads the
/// last frame committed, and sends the rest, while the consumer receives.
fn producer_killed_after(before: u8) {
    let ring = std::sync::Arc::new(SharedRing::new(&tiny()).unwrap());
    let mut first = ring.producer().unwrap();
    let mut consumer = ring.consumer().unwrap();
    let reader = thread::spawn(move || {
        let got: Vec<Vec<u8>> = (0..FRAMES)
            .map(|_| recv_through_takeover(&mut consumer))
            .collect();
        got
    });
    let doomed = thread::spawn(move || {
        for seq in 1..=before {
            send_through_takeover(&mut first, &frame(seq, 8));
        }
        kill_producer(first).unwrap();
    });
    doomed.join().unwrap();
    let mut second = ring.producer().unwrap();
    assert!(second.took_over_from().is_some());
    let last = second.last_committed().map(|f| f.bytes.clone());
    assert_eq!(
        last,
        Some(frame(before, 8)),
        "where the dead producer stopped"
    );
    for seq in before + 1..=FRAMES {
        send_through_takeover(&mut second, &frame(seq, 8));
    }
    let expected: Vec<Vec<u8>> = (1..=FRAMES).map(|seq| frame(seq, 8)).collect();
    assert_eq!(reader.join().unwrap(), expected);
}

#[test]
fn a_replacement_producer_reads_the_last_frame_committed() {
    for before in 1..=2 {
        model(
            &format!("takeover: producer killed after {before}"),
            move || producer_killed_after(before),
        );
    }
}
