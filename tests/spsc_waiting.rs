//! Blocking, timeouts, idle CPU and peers that leave: observable behaviour of the wait protocol.

mod common;

use std::time::{Duration, Instant};

use common::{child_arg, kill9, spawn_child_ready, thread_cpu_time, ChildGuard, ShmName};
use ringport::{Error, PeerStatus, Role, SpscOptions};

fn options() -> SpscOptions {
    SpscOptions::new().capacity(4096).max_frame(1024)
}

#[test]
fn a_blocked_consumer_uses_almost_no_cpu() {
    let (mut producer, mut consumer) = options().in_process().unwrap();
    let waiter = std::thread::spawn(move || {
        let before = thread_cpu_time();
        let started = Instant::now();
        let frame = consumer.recv().expect("recv");
        assert_eq!(&*frame, b"late");
        drop(frame);
        (
            started.elapsed(),
            thread_cpu_time() - before,
            consumer.stats(),
        )
    });
    std::thread::sleep(Duration::from_millis(200));
    producer.send(b"late").unwrap();
    let (waited, cpu, stats) = waiter.join().unwrap();
    assert!(
        waited >= Duration::from_millis(190),
        "recv returned after {waited:?}"
    );
    assert!(
        cpu < Duration::from_millis(20),
        "blocked recv used {cpu:?} of CPU in {waited:?}"
    );
    assert!(stats.sleeps >= 1);
}

#[test]
fn a_blocked_producer_uses_almost_no_cpu_and_wakes_on_space() {
    let (mut producer, mut consumer) = options().in_process().unwrap();
    while producer.try_send(&[7; 1000]).is_ok() {}
    assert!(matches!(producer.try_send(&[7; 1000]), Err(Error::Full)));
    let waiter = std::thread::spawn(move || {
        let before = thread_cpu_time();
        producer.send(&[8; 1000]).expect("send");
        thread_cpu_time() - before
    });
    std::thread::sleep(Duration::from_millis(200));
    // Free everything: the next frame wraps, so it needs more than one frame's worth.
    let mut freed = 0;
    while freed < 4096 {
        freed += consumer.recv().unwrap().len() + 8;
    }
    let cpu = waiter.join().unwrap();
    assert!(
        cpu < Duration::from_millis(20),
        "blocked send used {cpu:?} of CPU"
    );
}

/// In a blocking exchange one side sleeps nearly every round (the pinger, its answer needing
/// the other thread's whole turn; under a tracer, the roles can flip), and its peer, finding it
/// asleep, fences its publishes from then on: after the first, those sleeps pay for no
/// membarrier. (Without the switch, every sleep takes one.)
#[test]
fn a_steady_blocking_exchange_sleeps_without_membarriers() {
    const ROUNDS: u64 = 500;
    let sleepy = || options().spin(Duration::ZERO);
    let (mut ping_tx, mut ping_rx) = sleepy().in_process().unwrap();
    let (mut pong_tx, mut pong_rx) = sleepy().in_process().unwrap();
    let echo = std::thread::spawn(move || {
        for _ in 0..ROUNDS {
            let ping = ping_rx.recv().unwrap();
            pong_tx.send(&ping).unwrap();
        }
        ping_rx.stats()
    });
    for i in 0..ROUNDS {
        ping_tx.send(&i.to_le_bytes()).unwrap();
        assert_eq!(&*pong_rx.recv().unwrap(), &i.to_le_bytes());
    }
    let (pinger, echoer) = (pong_rx.stats(), echo.join().unwrap());
    let sleeper = if pinger.sleeps >= echoer.sleeps {
        pinger
    } else {
        echoer
    };
    let both = format!("pinger {pinger:?}, echo {echoer:?}");
    assert!(sleeper.sleeps >= ROUNDS / 2, "{both}");
    assert!(sleeper.barriers * 10 <= sleeper.sleeps, "{both}");
}

#[test]
fn only_a_consumer_that_drained_a_stream_pauses_and_the_pause_does_not_look() {
    let pause = Duration::from_millis(40);
    let (mut producer, mut consumer) = options()
        .stream_pause(pause)
        .spin(Duration::from_secs(1))
        .in_process()
        .unwrap();
    // Requests of many sizes, each answered before the next: one frame per wait, never a
    // pause, also across the ends of laps (about 30 of them, each with its padding).
    for i in 0..200usize {
        let request = vec![i as u8; 1 + i * 37 % 1000];
        producer.send(&request).unwrap();
        assert_eq!(&*consumer.recv().unwrap(), &request[..]);
        assert!(matches!(
            consumer.recv_timeout(Duration::ZERO),
            Err(Error::Timeout)
        ));
    }
    assert_eq!(consumer.stats().stream_pauses, 0);
    // Three frames drained, then a wait: it pauses, and a frame published meanwhile is not
    // seen before the pause ends.
    for i in 0..3u8 {
        producer.send(&[i]).unwrap();
    }
    for i in 0..3u8 {
        assert_eq!(&*consumer.recv().unwrap(), &[i]);
    }
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(5));
        producer.send(b"late").unwrap();
        producer
    });
    let start = Instant::now();
    assert_eq!(&*consumer.recv().unwrap(), b"late");
    let waited = start.elapsed();
    assert!(waited >= pause, "received after {waited:?}");
    assert_eq!(consumer.stats().stream_pauses, 1);
    // That wait was followed by one frame: the next one does not pause.
    assert!(matches!(
        consumer.recv_timeout(Duration::ZERO),
        Err(Error::Timeout)
    ));
    assert_eq!(consumer.stats().stream_pauses, 1);
    let mut producer = sender.join().unwrap();
    // A deadline cuts the pause short.
    for i in 0..3u8 {
        producer.send(&[i]).unwrap();
        drop(consumer.recv().unwrap());
    }
    let start = Instant::now();
    assert!(matches!(
        consumer.recv_timeout(Duration::ZERO),
        Err(Error::Timeout)
    ));
    assert!(start.elapsed() < pause, "{:?}", start.elapsed());
    assert_eq!(consumer.stats().stream_pauses, 2);
}

fn assert_about(elapsed: Duration, asked: Duration) {
    assert!(
        elapsed >= asked,
        "returned after {elapsed:?}, before {asked:?}"
    );
    assert!(
        elapsed < asked + Duration::from_millis(500),
        "returned after {elapsed:?}, asked {asked:?}"
    );
}

#[test]
fn timeouts_return_timeout_after_about_the_time_asked() {
    let (mut producer, mut consumer) = options().in_process().unwrap();
    for asked in [
        Duration::ZERO,
        Duration::from_millis(30),
        Duration::from_millis(150),
    ] {
        let start = Instant::now();
        assert!(matches!(consumer.recv_timeout(asked), Err(Error::Timeout)));
        assert_about(start.elapsed(), asked);
        let mut buf = Vec::new();
        assert!(matches!(
            consumer.recv_into_timeout(&mut buf, asked),
            Err(Error::Timeout)
        ));
    }
    let mut sent = 0;
    while producer.try_send(&[1; 1000]).is_ok() {
        sent += 1;
    }
    for asked in [Duration::from_millis(30), Duration::from_millis(150)] {
        let start = Instant::now();
        assert!(matches!(
            producer.reserve_timeout(1000, asked),
            Err(Error::Timeout)
        ));
        assert_about(start.elapsed(), asked);
        assert!(matches!(
            producer.send_timeout(&[2; 1000], asked),
            Err(Error::Timeout)
        ));
    }
    // Nothing was lost or added by the failed calls.
    let mut n = 0;
    while let Ok(frame) = consumer.try_recv() {
        assert_eq!(&*frame, &[1; 1000][..]);
        n += 1;
    }
    assert_eq!(n, sent);
}

#[test]
fn frames_sent_before_a_clean_detach_are_delivered_then_peer_gone() {
    let (mut producer, mut consumer) = options().in_process().unwrap();
    for i in 0..3u8 {
        producer.send(&[i; 10]).unwrap();
    }
    drop(producer);
    for i in 0..3u8 {
        assert_eq!(&*consumer.try_recv().unwrap(), &[i; 10]);
    }
    assert!(matches!(
        consumer.try_recv(),
        Err(Error::PeerGone(Role::Producer))
    ));
    assert!(matches!(
        consumer.recv(),
        Err(Error::PeerGone(Role::Producer))
    ));
    assert_eq!(consumer.peer_status(), PeerStatus::Gone);
}

#[test]
fn a_detach_wakes_a_sleeping_peer_at_once() {
    let (producer, mut consumer) = options()
        .liveness_interval(Duration::from_secs(60))
        .in_process()
        .unwrap();
    let waiter = std::thread::spawn(move || {
        let start = Instant::now();
        let result = consumer.recv().map(|_| ());
        (result, start.elapsed())
    });
    std::thread::sleep(Duration::from_millis(100));
    drop(producer);
    let (result, waited) = waiter.join().unwrap();
    assert!(matches!(result, Err(Error::PeerGone(Role::Producer))));
    assert!(
        waited < Duration::from_secs(5),
        "woke only after {waited:?}"
    );
}

#[test]
fn a_consumer_waits_for_a_producer_that_has_not_attached_yet() {
    let name = ShmName::new("late-producer");
    let mut consumer = options().create_consumer(name.as_str()).unwrap();
    assert_eq!(consumer.peer_status(), PeerStatus::Absent);
    assert!(matches!(
        consumer.recv_timeout(Duration::from_millis(50)),
        Err(Error::Timeout)
    ));
    let mut producer = options().open_producer(name.as_str()).unwrap();
    assert_eq!(consumer.peer_status(), PeerStatus::Present);
    assert_eq!(producer.peer_status(), PeerStatus::Present);
    producer.send(b"hi").unwrap();
    assert_eq!(&*consumer.recv().unwrap(), b"hi");
}

#[test]
#[ignore = "child process of the kill -9 tests"]
fn child_attach_and_hang() {
    let Some(arg) = child_arg() else { return };
    let (role, name) = arg.split_once(':').unwrap();
    let options = options();
    if role == "producer" {
        let mut producer = options.open_producer(name).unwrap();
        producer.send(b"last words").unwrap();
        // Start a grant and never finish it: a crash mid-write.
        let mut grant = producer.reserve(100).unwrap();
        grant.fill(0xEE);
        println!("ready");
        std::thread::sleep(Duration::from_secs(60));
        grant.commit();
    } else {
        let _consumer = options.open_consumer(name).unwrap();
        println!("ready");
        std::thread::sleep(Duration::from_secs(60));
    }
}

fn spawn_and_wait_ready(role: &str, name: &ShmName) -> ChildGuard {
    spawn_child_ready(
        "child_attach_and_hang",
        &format!("{role}:{}", name.as_str()),
    )
}

#[test]
fn a_killed_producer_is_reported_to_a_blocked_consumer() {
    let name = ShmName::new("kill-producer");
    let interval = Duration::from_millis(20);
    let mut consumer = options()
        .liveness_interval(interval)
        .create_consumer(name.as_str())
        .unwrap();
    let mut child = spawn_and_wait_ready("producer", &name);
    assert_eq!(&*consumer.recv().unwrap(), b"last words");
    assert_eq!(consumer.peer_status(), PeerStatus::Present);
    kill9(&mut child);
    let killed = Instant::now();
    let result = consumer.recv_timeout(Duration::from_secs(10)).map(|_| ());
    let noticed = killed.elapsed();
    assert!(
        matches!(result, Err(Error::PeerGone(Role::Producer))),
        "{result:?}"
    );
    assert!(
        noticed < Duration::from_secs(2),
        "noticed after {noticed:?}"
    );
    drop(child);
    // The role of the dead producer can be taken over, and the aborted grant left nothing.
    let mut producer = options()
        .open_producer(name.as_str())
        .expect("take over a dead role");
    producer.send(b"new life").unwrap();
    assert_eq!(&*consumer.recv().unwrap(), b"new life");
}

#[test]
fn a_killed_consumer_is_reported_to_a_blocked_producer() {
    let name = ShmName::new("kill-consumer");
    let mut producer = options()
        .liveness_interval(Duration::from_millis(20))
        .create_producer(name.as_str())
        .unwrap();
    let mut child = spawn_and_wait_ready("consumer", &name);
    while producer.try_send(&[3; 1000]).is_ok() {}
    kill9(&mut child);
    let killed = Instant::now();
    let result = producer.send_timeout(&[4; 1000], Duration::from_secs(10));
    assert!(
        matches!(result, Err(Error::PeerGone(Role::Consumer))),
        "{result:?}"
    );
    assert!(killed.elapsed() < Duration::from_secs(2));
}
