//! What a user's crate gets of ringport's hot paths: each function below is one hot form,
//! compiled here as in any crate that depends on ringport (release profile, no LTO). CI
//! disassembles this example and fails if one of them calls into ringport other than on a cold
//! path (`.ci/inline-guard`), so a hot path that stops being inlined across crates cannot land
//! unseen. Running it checks that each form does what it says.

use ringport::mpmc;
use ringport::spsc::{Consumer, Producer};

/// `spsc::Producer::try_send`.
#[no_mangle]
#[inline(never)]
pub fn probe_spsc_try_send(producer: &mut Producer, message: &[u8]) -> bool {
    producer.try_send(message).is_ok()
}

/// `spsc::Producer::try_reserve` and `WriteGrant::commit`.
#[no_mangle]
#[inline(never)]
pub fn probe_spsc_try_reserve(producer: &mut Producer, word: u64) -> bool {
    match producer.try_reserve(8) {
        Ok(mut grant) => {
            grant.copy_from_slice(&word.to_le_bytes());
            grant.commit();
            true
        }
        Err(_) => false,
    }
}

/// `spsc::Producer::write_batch`, `WriteBatch::try_push` and `WriteBatch::commit`.
#[no_mangle]
#[inline(never)]
pub fn probe_spsc_write_batch(producer: &mut Producer, from: u64, count: u64) -> usize {
    let mut batch = producer.write_batch();
    for word in from..from + count {
        let Ok(frame) = batch.try_push(8) else {
            break;
        };
        frame.copy_from_slice(&word.to_le_bytes());
    }
    batch.commit()
}

/// `spsc::Consumer::try_recv` and the grant's drop.
#[no_mangle]
#[inline(never)]
pub fn probe_spsc_try_recv(consumer: &mut Consumer) -> Option<u8> {
    consumer.try_recv().ok().map(|frame| frame[0])
}

/// `spsc::Consumer::try_recv_into`.
#[no_mangle]
#[inline(never)]
pub fn probe_spsc_try_recv_into(consumer: &mut Consumer, buf: &mut Vec<u8>) -> bool {
    consumer.try_recv_into(buf).is_ok()
}

/// `spsc::Consumer::try_recv_many`.
#[no_mangle]
#[inline(never)]
pub fn probe_spsc_try_recv_many(consumer: &mut Consumer, sum: &mut u64) -> usize {
    consumer
        .try_recv_many(64, |frame| *sum += u64::from(frame[0]))
        .unwrap_or(0)
}

/// `mpmc::Producer::try_send`.
#[no_mangle]
#[inline(never)]
pub fn probe_mpmc_try_send(producer: &mut mpmc::Producer, message: &[u8]) -> bool {
    producer.try_send(message).is_ok()
}

/// `mpmc::Consumer::try_recv` and the grant's drop.
#[no_mangle]
#[inline(never)]
pub fn probe_mpmc_try_recv(consumer: &mut mpmc::Consumer) -> Option<u8> {
    consumer.try_recv().ok().map(|message| message[0])
}

/// `pubsub::Publisher::try_send`.
#[no_mangle]
#[inline(never)]
pub fn probe_pubsub_try_send(publisher: &mut ringport::pubsub::Publisher, message: &[u8]) -> bool {
    publisher.try_send(message).is_ok()
}

/// `pubsub::Subscriber::try_recv` and the sample's drop.
#[no_mangle]
#[inline(never)]
pub fn probe_pubsub_try_recv(subscriber: &mut ringport::pubsub::Subscriber) -> Option<u8> {
    subscriber.try_recv().ok().map(|sample| sample[0])
}

fn main() -> Result<(), ringport::Error> {
    let (mut producer, mut consumer) = ringport::SpscOptions::new().in_process()?;
    assert!(probe_spsc_try_send(&mut producer, b"a"));
    assert!(probe_spsc_try_reserve(&mut producer, 2));
    assert_eq!(probe_spsc_write_batch(&mut producer, 3, 10), 10);
    assert_eq!(probe_spsc_try_recv(&mut consumer), Some(b'a'));
    let mut buf = Vec::new();
    assert!(probe_spsc_try_recv_into(&mut consumer, &mut buf) && buf == 2u64.to_le_bytes());
    let mut sum = 0;
    assert_eq!(probe_spsc_try_recv_many(&mut consumer, &mut sum), 10);
    assert_eq!(
        (sum, probe_spsc_try_recv(&mut consumer)),
        ((3..13).sum(), None)
    );

    let ring = ringport::MpmcOptions::new()
        .slots(4)
        .slot_size(8)
        .in_process()?;
    let (mut producer, mut consumer) = (ring.producer(), ring.consumer());
    assert!(probe_mpmc_try_send(&mut producer, b"m"));
    assert_eq!(probe_mpmc_try_recv(&mut consumer), Some(b'm'));
    assert_eq!(probe_mpmc_try_recv(&mut consumer), None);

    let mut publisher = ringport::pubsub::PubSubOptions::new()
        .capacity(4096)
        .in_process()?;
    let mut subscriber = publisher.subscriber(ringport::pubsub::History::Oldest)?;
    assert!(probe_pubsub_try_send(&mut publisher, b"p"));
    assert_eq!(probe_pubsub_try_recv(&mut subscriber), Some(b'p'));
    assert_eq!(probe_pubsub_try_recv(&mut subscriber), None);
    println!("every probe did what it says");
    Ok(())
}
