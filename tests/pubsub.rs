//! Publish-subscribe: every subscriber sees every message in order; back-pressure, stall
//! timeouts and overwriting; where late subscribers start; slots; subscribers and publishers
//! killed with SIGKILL in other processes.

mod common;

use std::time::{Duration, Instant};

use common::{
    child_arg, kill9, result_lines, spawn_child_piped, spawn_child_ready, ChildGuard, ShmName,
};
use ringport::pubsub::{History, Overflow, PubSubOptions};
use ringport::{Error, PeerStatus};

fn small() -> PubSubOptions {
    PubSubOptions::new()
        .capacity(4096)
        .spin(Duration::from_micros(5))
        .liveness_interval(Duration::from_millis(20))
}

/// Message `i`: its index, then bytes that depend on it; 8 to 200 bytes long.
fn message(i: u64) -> Vec<u8> {
    let len = 8 + (i * 37 % 193) as usize;
    let mut bytes = i.to_le_bytes().to_vec();
    bytes.extend((8..len).map(|k| (i as usize * 31 + k) as u8));
    bytes
}

#[test]
fn every_subscriber_sees_every_message_in_order_across_threads() {
    const COUNT: u64 = 200_000;
    let mut publisher = small().in_process().unwrap();
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let mut subscriber = publisher.subscriber(History::Oldest).unwrap();
            std::thread::spawn(move || {
                for i in 0..COUNT {
                    let sample = subscriber.recv_timeout(Duration::from_secs(20)).unwrap();
                    assert_eq!(sample.seq(), i);
                    assert_eq!(&*sample, &message(i)[..], "message {i}");
                }
                subscriber.stats()
            })
        })
        .collect();
    for i in 0..COUNT {
        if i % 2 == 0 {
            publisher.send(&message(i)).unwrap();
        } else {
            let bytes = message(i);
            let mut grant = publisher.reserve(bytes.len()).unwrap();
            assert_eq!(grant.seq(), i);
            grant.copy_from_slice(&bytes);
            grant.commit();
        }
    }
    for reader in readers {
        reader.join().unwrap();
    }
    // A 4 KiB ring and three readers: the publisher had to wait for them.
    assert!(publisher.stats().waits > 0);
    assert_eq!(publisher.next_seq(), COUNT);
}

#[test]
fn a_late_subscriber_starts_at_the_newest_or_the_oldest_message() {
    let mut publisher = small().in_process().unwrap();
    let mut none_yet = publisher.subscriber(History::Newest).unwrap();
    for i in 0..5u64 {
        publisher.send(&message(i)).unwrap();
    }
    let mut newest = publisher.subscriber(History::Newest).unwrap();
    let mut oldest = publisher.subscriber(History::Oldest).unwrap();
    assert_eq!(newest.recv().unwrap().seq(), 4);
    assert_eq!(oldest.recv().unwrap().seq(), 0);
    assert_eq!(none_yet.recv().unwrap().seq(), 0);
    assert!(matches!(newest.try_recv(), Err(Error::Empty)));
}

#[test]
fn a_blocking_publisher_waits_for_the_slowest_subscriber() {
    let mut publisher = small().in_process().unwrap();
    let mut fast = publisher.subscriber(History::Oldest).unwrap();
    let mut slow = publisher.subscriber(History::Oldest).unwrap();
    let mut sent = 0u64;
    while publisher.try_send(&[7; 100]).is_ok() {
        assert_eq!(fast.try_recv().unwrap().seq(), sent);
        sent += 1;
    }
    // A ring's worth behind the slow one: 4096 bytes of 120-byte frames.
    assert!((30..=34).contains(&sent), "{sent}");
    assert!(matches!(
        publisher.send_timeout(&[7; 100], Duration::from_millis(20)),
        Err(Error::Timeout)
    ));
    // The slow one reads a quarter ring: the publisher may go on.
    for i in 0..9 {
        assert_eq!(slow.try_recv().unwrap().seq(), i);
    }
    publisher.try_send(&[7; 100]).unwrap();
    // Dropping the slow one lets the publisher go on as far as the fast one.
    drop(slow);
    for _ in 0..20 {
        drop(fast.try_recv().unwrap());
        publisher.try_send(&[7; 100]).unwrap();
    }
    assert_eq!(publisher.subscribers(), 1);
}

#[test]
fn a_stalled_subscriber_is_dropped_and_told_so() {
    let mut publisher = small()
        .stall_timeout(Duration::from_millis(50))
        .in_process()
        .unwrap();
    let mut stalled = publisher.subscriber(History::Oldest).unwrap();
    let mut keeping_up = publisher.subscriber(History::Oldest).unwrap();
    let first = stalled.try_recv().map(|s| s.seq());
    assert!(matches!(first, Err(Error::Empty)));
    let started = Instant::now();
    for i in 0..200u64 {
        publisher
            .send_timeout(&message(i), Duration::from_secs(10))
            .unwrap();
        assert_eq!(keeping_up.recv().unwrap().seq(), i);
    }
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert_eq!(publisher.subscribers(), 1);
    assert!(matches!(stalled.try_recv(), Err(Error::Dropped)));
    assert!(matches!(stalled.recv(), Err(Error::Dropped)));
    // Its slot is not free while it holds it; dropped, it is.
    drop(stalled);
    let mut again = publisher.subscriber(History::Newest).unwrap();
    assert_eq!(again.recv().unwrap().seq(), 199);
}

#[test]
fn a_frame_in_hand_is_never_overwritten() {
    let mut publisher = small().overflow(Overflow::Overwrite).in_process().unwrap();
    let mut holder = publisher.subscriber(History::Oldest).unwrap();
    publisher.send(b"held").unwrap();
    let sample = holder.try_recv().unwrap();
    // Everything but the frame in hand may be reclaimed: the publisher stops a ring later.
    let mut sent = 1;
    while publisher.try_send(&[1; 100]).is_ok() {
        sent += 1;
        assert!(sent < 100, "the publisher wrote over a frame in hand");
    }
    assert_eq!(&*sample, b"held");
    drop(sample);
    for _ in 0..100 {
        publisher.try_send(&[2; 100]).unwrap();
    }
}

#[test]
fn an_overwritten_subscriber_learns_how_many_it_lost() {
    let mut publisher = small().overflow(Overflow::Overwrite).in_process().unwrap();
    let mut lagging = publisher.subscriber(History::Oldest).unwrap();
    // Counted from the first message it receives.
    publisher.try_send(&message(0)).unwrap();
    assert_eq!(lagging.try_recv().unwrap().seq(), 0);
    for i in 1..1000u64 {
        publisher.try_send(&message(i)).unwrap();
    }
    let first = lagging.try_recv().unwrap();
    let (seq, lost) = (first.seq(), first.lost_before());
    assert!(seq > 1 && lost == seq - 1, "seq {seq}, lost {lost}");
    assert_eq!(&*first, &message(seq)[..]);
    drop(first);
    // From there on, in order.
    let mut next = seq + 1;
    while let Ok(sample) = lagging.try_recv() {
        assert_eq!((sample.seq(), sample.lost_before()), (next, 0));
        next += 1;
    }
    assert_eq!(next, 1000);
    assert_eq!(lagging.lost(), seq - 1);
}

#[test]
fn slots_run_out_and_come_back() {
    let publisher = small().subscribers(2).in_process().unwrap();
    let a = publisher.subscriber(History::Newest).unwrap();
    let _b = publisher.subscriber(History::Newest).unwrap();
    assert!(matches!(
        publisher.subscriber(History::Newest),
        Err(Error::NoFreeSlot { slots: 2 })
    ));
    drop(a);
    publisher.subscriber(History::Newest).unwrap();
    assert!(matches!(
        small().subscribers(0).in_process(),
        Err(Error::InvalidConfig(_))
    ));
}

#[test]
fn subscribers_read_what_was_published_then_hear_the_publisher_gone() {
    let mut publisher = small().in_process().unwrap();
    let mut subscriber = publisher.subscriber(History::Oldest).unwrap();
    assert_eq!(subscriber.publisher_status(), PeerStatus::Present);
    publisher.send(b"last words").unwrap();
    drop(publisher);
    assert_eq!(&*subscriber.recv().unwrap(), b"last words");
    assert!(matches!(subscriber.recv(), Err(Error::PeerGone(_))));
    assert!(matches!(subscriber.try_recv(), Err(Error::PeerGone(_))));
}

#[test]
fn a_blocked_receive_wakes_for_a_message() {
    let mut publisher = small().spin(Duration::ZERO).in_process().unwrap();
    let mut subscriber = publisher.subscriber(History::Newest).unwrap();
    let reader = std::thread::spawn(move || {
        let bytes = subscriber
            .recv_timeout(Duration::from_secs(10))
            .unwrap()
            .to_vec();
        (bytes, subscriber.stats().sleeps)
    });
    std::thread::sleep(Duration::from_millis(50));
    publisher.send(b"wake up").unwrap();
    let (bytes, sleeps) = reader.join().unwrap();
    assert_eq!(bytes, b"wake up");
    assert!(sleeps >= 1);
}

#[test]
fn lengths_and_geometry_are_checked() {
    let mut publisher = small().max_message(100).in_process().unwrap();
    assert_eq!(publisher.max_message(), 100);
    assert!(matches!(
        publisher.try_send(&[0; 101]),
        Err(Error::InvalidLength { len: 101, max: 100 })
    ));
    publisher.try_send(&[]).unwrap();
    let mut subscriber = publisher.subscriber(History::Oldest).unwrap();
    assert!(subscriber.try_recv().unwrap().is_empty());
    assert!(matches!(
        PubSubOptions::new().capacity(64).in_process(),
        Err(Error::InvalidConfig(_))
    ));
}

// ------------------------------------------------------------ other processes

#[test]
#[ignore = "child process of the cross-process publish-subscribe tests"]
fn child_pubsub_subscriber() {
    let Some(arg) = child_arg() else { return };
    let mut words = arg.split(' ');
    let (what, name) = (words.next().unwrap(), words.next().unwrap());
    let mut subscriber = small()
        .history(History::Oldest)
        .open_subscriber(name)
        .unwrap();
    match what {
        "stall" => {
            println!("ready");
            std::thread::sleep(Duration::from_secs(60));
        }
        "hold" => {
            let sample = subscriber.recv().unwrap();
            println!("ready");
            std::thread::sleep(Duration::from_secs(60));
            drop(sample);
        }
        _ => {
            let count: u64 = words.next().unwrap().parse().unwrap();
            println!("ready");
            let mut sum = 0u64;
            for i in 0..count {
                let sample = subscriber.recv_timeout(Duration::from_secs(30)).unwrap();
                assert_eq!(sample.seq(), i);
                assert_eq!(&*sample, &message(i)[..]);
                sum = sum.wrapping_add(u64::from_le_bytes(sample[..8].try_into().unwrap()));
            }
            assert!(matches!(
                subscriber.recv_timeout(Duration::from_secs(30)),
                Err(Error::PeerGone(_))
            ));
            println!("RESULT {sum}");
        }
    }
}

#[test]
fn subscriber_processes_each_see_the_whole_stream() {
    const COUNT: u64 = 100_000;
    let name = ShmName::new("pubsub-stream");
    let mut publisher = small()
        .capacity(1 << 16)
        .create_publisher(name.as_str())
        .unwrap();
    let children: Vec<_> = (0..3)
        .map(|_| {
            ChildGuard(Some(spawn_child_piped(
                "child_pubsub_subscriber",
                &format!("read {} {COUNT}", name.as_str()),
            )))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while publisher.subscribers() < 3 {
        assert!(Instant::now() < deadline, "the subscribers did not attach");
        std::thread::sleep(Duration::from_millis(1));
    }
    for i in 0..COUNT {
        publisher
            .send_timeout(&message(i), Duration::from_secs(30))
            .unwrap();
    }
    drop(publisher);
    let expected = (0..COUNT).fold(0u64, u64::wrapping_add).to_string();
    for child in children {
        assert_eq!(result_lines(child), vec![expected.clone()]);
    }
}

#[test]
fn a_killed_subscriber_stops_holding_the_publisher_back() {
    for what in ["stall", "hold"] {
        let name = ShmName::new("pubsub-kill-subscriber");
        let mut publisher = small().create_publisher(name.as_str()).unwrap();
        if what == "hold" {
            publisher.send(b"held by the child").unwrap();
        }
        let mut child = spawn_child_ready(
            "child_pubsub_subscriber",
            &format!("{what} {}", name.as_str()),
        );
        let err = loop {
            match publisher.send_timeout(&[3; 100], Duration::from_millis(100)) {
                Ok(()) => {}
                Err(e) => break e,
            }
        };
        assert!(matches!(err, Error::Timeout), "{what}: {err:?}");
        kill9(&mut child);
        let killed = Instant::now();
        publisher
            .send_timeout(&[3; 100], Duration::from_secs(10))
            .unwrap();
        assert!(
            killed.elapsed() < Duration::from_secs(2),
            "{what}: {:?}",
            killed.elapsed()
        );
        assert_eq!(publisher.subscribers(), 0, "{what}");
    }
}

#[test]
#[ignore = "child process of a_killed_publisher_is_heard_and_replaced"]
fn child_pubsub_publisher() {
    let Some(name) = child_arg() else { return };
    let mut publisher = small().open_publisher(name.as_str()).unwrap();
    for i in 0..10u64 {
        publisher.send(&message(i)).unwrap();
    }
    println!("ready");
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn a_killed_publisher_is_heard_and_replaced() {
    let name = ShmName::new("pubsub-kill-publisher");
    // The name stays when the creator lets go (the guard removes it); the child publishes
    // in its place.
    let creator = small()
        .keep_segment(true)
        .create_publisher(name.as_str())
        .unwrap();
    let mut subscriber = small()
        .history(History::Oldest)
        .open_subscriber(name.as_str())
        .unwrap();
    drop(creator);
    let mut child = spawn_child_ready("child_pubsub_publisher", name.as_str());
    for i in 0..10u64 {
        assert_eq!(&*subscriber.recv().unwrap(), &message(i)[..]);
    }
    kill9(&mut child);
    let killed = Instant::now();
    assert!(matches!(
        subscriber.recv_timeout(Duration::from_secs(10)),
        Err(Error::PeerGone(_))
    ));
    assert!(killed.elapsed() < Duration::from_secs(2));
    // A new publisher takes the role over and numbers on.
    let mut successor = small().open_publisher(name.as_str()).unwrap();
    assert_eq!(successor.next_seq(), 10);
    successor.send(b"after").unwrap();
    let sample = subscriber.recv().unwrap();
    assert_eq!((sample.seq(), &*sample), (10, &b"after"[..]));
}

#[test]
fn a_hostile_cursor_is_corrupted_not_a_hang() {
    let name = ShmName::new("pubsub-hostile");
    let mut publisher = small().create_publisher(name.as_str()).unwrap();
    let _subscriber = small().open_subscriber(name.as_str()).unwrap();
    let raw = common::SharedMap::open_named(name.as_str()).unwrap();
    // Slot 0's cursor, after the 4096-byte data area: beyond anything published.
    raw.u64_at(common::offsets::DATA + 4096 + 32)
        .store(1 << 40, std::sync::atomic::Ordering::Relaxed);
    let started = Instant::now();
    let err = loop {
        match publisher.send_timeout(&[0; 100], Duration::from_secs(5)) {
            Ok(()) => assert!(started.elapsed() < Duration::from_secs(5)),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, Error::Corrupted { .. }), "{err:?}");
}
