//! Publish-subscribe: one publisher, three subscribers that each see every message in order,
//! read in place. One subscriber joins late and starts at the oldest message still in the ring;
//! then an overwriting ring, where a subscriber that falls a quarter ring behind learns how many
//! messages it lost. Threads here; `PubSubOptions::create_publisher` / `open_subscriber` by name
//! share a ring between processes.
//!
//! `cargo run --release --example pubsub`

use std::time::Duration;

use ringport::pubsub::{History, Overflow, PubSubOptions};

const MESSAGES: u64 = 100_000;

fn main() -> Result<(), ringport::Error> {
    // Back-pressure: the publisher waits for the slowest subscriber.
    let mut publisher = PubSubOptions::new().capacity(1 << 16).in_process()?;
    let subscribers: Vec<_> = (0..2)
        .map(|_| publisher.subscriber(History::Oldest))
        .collect::<Result<_, _>>()?;
    let readers: Vec<_> = subscribers
        .into_iter()
        .map(|mut subscriber| {
            std::thread::spawn(move || {
                let mut sum = 0u64;
                for expected in 0..MESSAGES {
                    let sample = subscriber.recv().expect("recv");
                    assert_eq!(sample.seq(), expected, "every message, in order");
                    sum += u64::from_le_bytes(sample[..8].try_into().expect("8 bytes"));
                }
                sum
            })
        })
        .collect();
    for i in 0..MESSAGES {
        publisher.send(&i.to_le_bytes())?;
        if i == 10 {
            // A late subscriber: from the oldest message still in the ring (all of them, here).
            let mut late = publisher.subscriber(History::Oldest)?;
            assert_eq!(late.recv()?.seq(), 0);
        }
    }
    let sums: Vec<u64> = readers
        .into_iter()
        .map(|r| r.join().expect("reader"))
        .collect();
    assert!(sums.iter().all(|&s| s == MESSAGES * (MESSAGES - 1) / 2));
    println!("{MESSAGES} messages, each seen by both subscribers in order");

    // Overwriting: the publisher never waits; a subscriber that falls behind loses messages
    // and is told how many.
    let mut publisher = PubSubOptions::new()
        .capacity(1 << 12)
        .overflow(Overflow::Overwrite)
        .in_process()?;
    let mut slow = publisher.subscriber(History::Oldest)?;
    publisher.send(b"first")?;
    assert_eq!(&*slow.recv()?, b"first");
    for i in 0..1000u64 {
        publisher.try_send(&i.to_le_bytes())?;
    }
    let sample = slow.recv_timeout(Duration::from_secs(1))?;
    println!(
        "overwriting: the slow subscriber lost {} messages and goes on at message {}",
        sample.lost_before(),
        sample.seq()
    );
    Ok(())
}

#[test]
fn runs() {
    main().unwrap();
}
