//! Channels in one process: paths, order across switches, chunking, timeouts, handshake.

use std::time::{Duration, Instant};

use ringport::channel::{Channel, ChannelOptions, Policy};
use ringport::{Error, SpscOptions};

fn message(seq: u32, len: usize) -> Vec<u8> {
    let mut m: Vec<u8> = (0..len)
        .map(|i| (i as u32).wrapping_mul(31).wrapping_add(seq) as u8)
        .collect();
    if len >= 4 {
        m[..4].copy_from_slice(&seq.to_le_bytes());
    }
    m
}

fn small_rings() -> ChannelOptions {
    ChannelOptions::new().ring(SpscOptions::new().capacity(64 << 10))
}

#[test]
fn every_policy_carries_every_size_in_order() {
    for policy in [Policy::Socket, Policy::Ring, Policy::Auto] {
        let (mut a, mut b) = small_rings().policy(policy).pair().unwrap();
        let sizes = [0usize, 1, 7, 64, 4096, 65_536, 65_537, 300_000, 8 << 20, 3];
        let receiver = std::thread::spawn(move || {
            let mut buf = Vec::new();
            for (seq, &len) in sizes.iter().enumerate() {
                assert_eq!(b.recv(&mut buf).unwrap(), len);
                assert!(
                    buf == message(seq as u32, len),
                    "{policy:?}: message {seq} ({len} B) differs"
                );
            }
            b.received()
        });
        for (seq, &len) in sizes.iter().enumerate() {
            a.send(&message(seq as u32, len)).unwrap();
        }
        let received = receiver.join().unwrap();
        let sent = a.sent();
        assert_eq!(sent.socket + sent.ring, sizes.len() as u64);
        assert_eq!((received.socket, received.ring), (sent.socket, sent.ring));
        match policy {
            Policy::Socket => assert_eq!(sent.ring, 0),
            Policy::Ring => assert_eq!(sent.socket, 0),
            Policy::Auto => assert!(sent.socket > 0 && sent.ring > 0, "{sent:?}"),
        }
    }
}

#[test]
fn auto_moves_to_the_ring_on_a_burst_and_back_when_quiet_keeping_order() {
    let options = small_rings()
        .inline_limit(1 << 20)
        .ring_after(8, 1 << 30, Duration::from_secs(10))
        .fall_back_after(Some(Duration::from_millis(30)));
    let (mut a, mut b) = options.pair().unwrap();
    let mut seq = 0u32;
    let mut buf = Vec::new();
    for round in 0..3 {
        for _ in 0..20 {
            a.send(&message(seq, 16)).unwrap();
            seq += 1;
        }
        std::thread::sleep(Duration::from_millis(40));
        a.send(&message(seq, 16)).unwrap(); // after a quiet spell: back on the socket
        seq += 1;
        let sent = a.sent();
        assert!(sent.switches >= 2 * round + 2, "round {round}: {sent:?}");
    }
    for expect in 0..seq {
        b.recv(&mut buf).unwrap();
        assert_eq!(buf, message(expect, 16));
    }
    assert_eq!(
        b.try_recv(&mut buf).unwrap_err().to_string(),
        Error::Empty.to_string()
    );
    let (sent, received) = (a.sent(), b.received());
    assert!(sent.socket > 0 && sent.ring > 0, "{sent:?}");
    assert_eq!(sent, received);
}

#[test]
fn chunks_are_handed_over_in_place_and_in_order() {
    let (mut a, mut b) = small_rings().policy(Policy::Ring).pair().unwrap();
    let big = message(9, 1 << 20);
    let sender = std::thread::spawn(move || {
        a.send(&big).unwrap();
        a
    });
    let mut seen = Vec::new();
    let mut pieces = 0;
    let len = b
        .recv_chunks(|chunk| {
            assert_eq!(chunk.offset, seen.len());
            assert_eq!(chunk.total, 1 << 20);
            seen.extend_from_slice(chunk.bytes);
            pieces += 1;
        })
        .unwrap();
    sender.join().unwrap();
    assert_eq!(len, 1 << 20);
    assert!(
        pieces > 1,
        "a 1 MiB message through a 64 KiB ring came in one piece"
    );
    assert_eq!(seen, message(9, 1 << 20));
}

#[test]
fn a_send_that_times_out_half_way_is_abandoned_whole() {
    for policy in [Policy::Socket, Policy::Ring] {
        let (mut a, mut b) = small_rings().policy(policy).pair().unwrap();
        let t = Instant::now();
        let r = a.send_timeout(&message(1, 8 << 20), Duration::from_millis(100));
        assert!(matches!(r, Err(Error::Timeout)), "{policy:?}: {r:?}");
        // A hang guard, not a rate.
        assert!(t.elapsed() < Duration::from_secs(10));
        let receiver = std::thread::spawn(move || {
            let mut buf = Vec::new();
            b.recv(&mut buf).unwrap();
            buf
        });
        a.send(&message(2, 100)).unwrap();
        assert_eq!(receiver.join().unwrap(), message(2, 100), "{policy:?}");
    }
}

#[test]
fn receives_time_out_and_a_closed_peer_is_gone_after_its_messages() {
    for policy in [Policy::Socket, Policy::Ring] {
        let (mut a, mut b) = small_rings().policy(policy).pair().unwrap();
        let mut buf = Vec::new();
        let t = Instant::now();
        assert!(matches!(
            b.recv_timeout(&mut buf, Duration::from_millis(60)),
            Err(Error::Timeout)
        ));
        assert!(t.elapsed() >= Duration::from_millis(60));
        a.send(b"last").unwrap();
        drop(a);
        assert_eq!(b.recv(&mut buf).unwrap(), 4);
        assert!(
            matches!(b.recv(&mut buf), Err(Error::PeerGone(_))),
            "{policy:?}"
        );
        assert!(
            matches!(b.send(b"x"), Err(Error::PeerGone(_))),
            "{policy:?}"
        );
    }
}

#[test]
fn a_split_channel_works_both_ways_from_two_threads() {
    let (a, b) = small_rings().policy(Policy::Auto).pair().unwrap();
    let (mut a_tx, mut a_rx) = a.split();
    let (mut b_tx, mut b_rx) = b.split();
    let n = 20_000u32;
    let echo = std::thread::spawn(move || {
        let mut buf = Vec::new();
        for _ in 0..n {
            b_rx.recv(&mut buf).unwrap();
            b_tx.send(&buf).unwrap();
        }
    });
    let pump = std::thread::spawn(move || {
        for seq in 0..n {
            a_tx.send(&message(seq, 8 + (seq as usize % 300))).unwrap();
        }
        a_tx
    });
    let mut buf = Vec::new();
    for seq in 0..n {
        a_rx.recv(&mut buf).unwrap();
        assert_eq!(buf, message(seq, 8 + (seq as usize % 300)));
    }
    let a_tx = pump.join().unwrap();
    echo.join().unwrap();
    assert!(
        a_tx.counts().ring > 0,
        "a steady stream stayed on the socket"
    );
}

#[test]
fn messages_above_the_peers_limit_are_refused_before_sending() {
    let (mut a, _b) = ChannelOptions::new().max_message(1000).pair().unwrap();
    let refused = a.send(&[0; 1001]);
    assert!(
        matches!(
            refused,
            Err(Error::MessageTooLong {
                len: 1001,
                max: 1000
            })
        ),
        "{refused:?}"
    );
    assert!(refused.unwrap_err().to_string().contains("max_message"));
    a.send(&[0; 1000]).unwrap();
}

fn socket_path(tag: &str) -> String {
    format!(
        "@ringport-test-{tag}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    )
}

#[test]
fn listener_and_connect_shake_hands_with_credentials() {
    let path = socket_path("hs");
    let listener = ChannelOptions::new().bind(&path).unwrap();
    assert!(matches!(
        ChannelOptions::new().bind(&path),
        Err(Error::AlreadyExists)
    ));
    let client = std::thread::spawn({
        let path = path.clone();
        move || {
            let mut c = Channel::connect(&path).unwrap();
            c.send(b"hi").unwrap();
            c
        }
    });
    let mut server = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    let client = client.join().unwrap();
    assert_eq!(server.peer_credentials().pid, std::process::id() as i32);
    assert_eq!(client.peer_credentials().uid, server.peer_credentials().uid);
    let mut buf = Vec::new();
    server.recv(&mut buf).unwrap();
    assert_eq!(buf, b"hi");
    assert!(matches!(
        listener.accept_timeout(Duration::from_millis(20)),
        Err(Error::Timeout)
    ));
    assert!(matches!(
        Channel::connect(&socket_path("nobody")),
        Err(Error::NotFound)
    ));
}

#[test]
fn a_blocked_send_ends_when_the_peer_closes_without_ever_reading() {
    for policy in [Policy::Socket, Policy::Ring] {
        let (mut a, b) = small_rings().policy(policy).pair().unwrap();
        let chunk = vec![1u8; 4000];
        while a.send_timeout(&chunk, Duration::from_millis(20)).is_ok() {}
        let closer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            drop(b);
        });
        let t = Instant::now();
        let r = a.send(&chunk);
        closer.join().unwrap();
        assert!(matches!(r, Err(Error::PeerGone(_))), "{policy:?}: {r:?}");
        // A hang guard, not a rate.
        assert!(t.elapsed() < Duration::from_secs(10), "{policy:?}");
    }
}
