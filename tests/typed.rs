//! Typed endpoints: plain-data messages in place on SPSC and publish-subscribe rings, the
//! layout fingerprint recorded at creation and checked at open, serde messages (feature).

mod common;

use common::ShmName;
use ringport::pubsub::{History, PubSubOptions};
use ringport::typed::Message;
use ringport::{Error, SpscOptions};

#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable, Message)]
#[repr(C)]
struct Tick {
    price: f64,
    size: u32,
    venue: u32,
}

/// `Tick` with its last two fields swapped: the same size, another layout.
mod swapped {
    #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable, ringport::typed::Message)]
    #[repr(C)]
    pub struct Tick {
        pub price: f64,
        pub venue: u32,
        pub size: u32,
    }
}

#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable, Message)]
#[repr(C)]
struct Nested {
    tick: Tick,
    flags: [u8; 8],
}

#[test]
fn fingerprints_tell_layouts_apart() {
    let ours = Tick::FINGERPRINT;
    assert_eq!((ours.name, ours.size, ours.align), ("Tick", 16, 8));
    assert_ne!(ours.hash, swapped::Tick::FINGERPRINT.hash);
    assert_ne!(ours.hash, Nested::FINGERPRINT.hash);
    assert_ne!(u64::FINGERPRINT.hash, i64::FINGERPRINT.hash);
    assert_ne!(<[u8; 8]>::FINGERPRINT.hash, <[u8; 4]>::FINGERPRINT.hash);
    assert_eq!(Tick::FINGERPRINT, Tick::FINGERPRINT);
}

#[test]
fn typed_messages_go_through_in_place() {
    let (mut tx, mut rx) = SpscOptions::new()
        .capacity(4096)
        .typed::<Tick>()
        .in_process()
        .unwrap();
    for i in 0..1000u32 {
        if i % 2 == 0 {
            tx.send(&Tick {
                price: f64::from(i),
                size: i,
                venue: 7,
            })
            .unwrap();
        } else {
            let mut grant = tx.reserve().unwrap();
            grant.price = f64::from(i);
            grant.size = i;
            grant.venue = 7;
            grant.commit();
        }
        let tick = rx.recv().unwrap();
        assert_eq!(
            *tick,
            Tick {
                price: f64::from(i),
                size: i,
                venue: 7
            }
        );
    }
    assert!(matches!(rx.try_recv(), Err(Error::Empty)));
}

#[test]
fn a_ring_opens_only_as_its_own_type() {
    let name = ShmName::new("typed-mismatch");
    let mut tx = SpscOptions::new()
        .typed::<Tick>()
        .create_producer(name.as_str())
        .unwrap();
    let err = SpscOptions::new()
        .typed::<swapped::Tick>()
        .open_consumer(name.as_str())
        .unwrap_err();
    assert_eq!(
        err,
        Error::TypeMismatch {
            found: Tick::FINGERPRINT.hash,
            expected: swapped::Tick::FINGERPRINT.hash
        }
    );
    assert!(matches!(
        SpscOptions::new()
            .typed::<u64>()
            .open_consumer(name.as_str()),
        Err(Error::TypeMismatch { .. })
    ));
    let mut rx = SpscOptions::new()
        .typed::<Tick>()
        .open_consumer(name.as_str())
        .unwrap();
    tx.send(&Tick {
        price: 1.5,
        size: 2,
        venue: 3,
    })
    .unwrap();
    assert_eq!(rx.recv().unwrap().venue, 3);
    // A ring of bytes is no typed ring either.
    let bytes = ShmName::new("typed-bytes");
    let _plain = SpscOptions::new().create_producer(bytes.as_str()).unwrap();
    assert!(matches!(
        SpscOptions::new()
            .typed::<Tick>()
            .open_consumer(bytes.as_str()),
        Err(Error::TypeMismatch { found: 0, .. })
    ));
}

#[test]
fn a_frame_of_another_size_is_refused() {
    let (mut tx, mut rx) = SpscOptions::new().typed::<Tick>().in_process().unwrap();
    tx.as_bytes().send(&[1, 2, 3]).unwrap();
    assert!(matches!(rx.recv(), Err(Error::Corrupted { .. })));
}

#[test]
fn typed_publish_subscribe() {
    let mut publisher = PubSubOptions::new()
        .capacity(1 << 12)
        .typed::<Nested>()
        .in_process()
        .unwrap();
    let mut a = publisher.subscriber(History::Oldest).unwrap();
    let mut b = publisher.subscriber(History::Oldest).unwrap();
    for i in 0..10u32 {
        publisher
            .send(&Nested {
                tick: Tick {
                    price: 0.5,
                    size: i,
                    venue: 1,
                },
                flags: [i as u8; 8],
            })
            .unwrap();
    }
    for i in 0..10u32 {
        for subscriber in [&mut a, &mut b] {
            let sample = subscriber.recv().unwrap();
            assert_eq!(
                (sample.seq(), sample.tick.size, sample.flags[7]),
                (u64::from(i), i, i as u8)
            );
        }
    }
    let name = ShmName::new("typed-pubsub");
    let _p = PubSubOptions::new()
        .typed::<Nested>()
        .create_publisher(name.as_str())
        .unwrap();
    assert!(matches!(
        PubSubOptions::new()
            .typed::<Tick>()
            .open_subscriber(name.as_str()),
        Err(Error::TypeMismatch { .. })
    ));
    PubSubOptions::new()
        .typed::<Nested>()
        .open_subscriber(name.as_str())
        .unwrap();
}

#[cfg(feature = "serde")]
#[test]
fn serde_messages_round_trip() {
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Order {
        id: u64,
        symbol: String,
        legs: Vec<(i32, f64)>,
    }
    let order = Order {
        id: 9,
        symbol: "ACME".into(),
        legs: vec![(1, 2.5), (-3, 4.0)],
    };
    let (mut tx, mut rx) = SpscOptions::new().in_process().unwrap();
    tx.send_serde(&order).unwrap();
    assert_eq!(rx.recv_serde::<Order>().unwrap(), order);
    tx.send(&[0xFF; 3]).unwrap();
    assert!(matches!(rx.recv_serde::<Order>(), Err(Error::Encoding(_))));
    let mut publisher = PubSubOptions::new().in_process().unwrap();
    let mut subscriber = publisher.subscriber(History::Oldest).unwrap();
    publisher.send_serde(&order).unwrap();
    assert_eq!(subscriber.recv_serde::<Order>().unwrap(), order);
}
