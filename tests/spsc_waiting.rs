//! Blocking, timeouts, idle CPU and peers that leave: observable behaviour of the wait protocol.

mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{
    asleep_in_futex, child_arg, kill9, spawn_child_ready, thread_id, wait_until_asleep_in_futex,
    ChildGuard, ShmName,
};
use ringport::{Error, PeerStatus, Role, SpscOptions};

fn options() -> SpscOptions {
    SpscOptions::new()
        .capacity(4096)
        .max_frame(1024)
        .liveness_interval(LIVENESS)
}

/// The liveness interval of `options()`: how often a sleeper wakes to look at its peer.
const LIVENESS: Duration = Duration::from_millis(20);

/// At most how many sleeps a wait of `waited` may take: each lasts a liveness interval unless
/// it is woken, and one wake (the one that ends the wait) comes. A spinning wait, or one woken
/// over and over, takes more; one that never slept takes none.
fn most_sleeps(waited: Duration) -> u64 {
    (waited.as_millis() / LIVENESS.as_millis()) as u64 + 2
}

#[test]
fn a_blocked_consumer_sleeps_in_the_kernel_until_woken() {
    let (mut producer, mut consumer) = options().in_process().unwrap();
    let (tid_tx, tid_rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        tid_tx.send(thread_id()).unwrap();
        let started = Instant::now();
        let frame = consumer.recv().expect("recv");
        assert_eq!(&*frame, b"late");
        drop(frame);
        (started.elapsed(), consumer.stats())
    });
    wait_until_asleep_in_futex(tid_rx.recv().unwrap());
    // Asleep: a few liveness intervals go by before the frame comes.
    std::thread::sleep(5 * LIVENESS);
    producer.send(b"late").unwrap();
    let (waited, stats) = waiter.join().unwrap();
    assert_eq!(stats.waits, 1, "{stats:?}");
    assert!(
        (1..=most_sleeps(waited)).contains(&stats.sleeps),
        "{stats:?} in {waited:?}"
    );
}

#[test]
fn a_blocked_producer_sleeps_in_the_kernel_and_wakes_on_space() {
    let (mut producer, mut consumer) = options().in_process().unwrap();
    while producer.try_send(&[7; 1000]).is_ok() {}
    assert!(matches!(producer.try_send(&[7; 1000]), Err(Error::Full)));
    let (tid_tx, tid_rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        tid_tx.send(thread_id()).unwrap();
        let started = Instant::now();
        producer.send(&[8; 1000]).expect("send");
        (started.elapsed(), producer.stats())
    });
    wait_until_asleep_in_futex(tid_rx.recv().unwrap());
    std::thread::sleep(5 * LIVENESS);
    // Free everything: the next frame wraps, so it needs more than one frame's worth. Four
    // frames filled the ring; the fifth is the one that waited.
    let mut last = Vec::new();
    for _ in 0..5 {
        last = consumer.recv().unwrap().to_vec();
    }
    assert_eq!(last, [8; 1000]);
    let (waited, stats) = waiter.join().unwrap();
    assert_eq!(stats.waits, 1, "{stats:?}");
    assert!(
        (1..=most_sleeps(waited)).contains(&stats.sleeps),
        "{stats:?} in {waited:?}"
    );
}

/// In a blocking exchange whose every ping finds the echo asleep, the pinger fences its
/// publishes from its first wake on: after the first, the echo's sleeps pay for no membarrier.
/// (Without the switch, every sleep takes one.)
#[test]
fn a_steady_blocking_exchange_sleeps_without_membarriers() {
    const ROUNDS: u64 = 200;
    // No spin, and no liveness check cutting a sleep short (a sleep that timed out before the
    // first ping would announce itself again, and take a second membarrier).
    let sleepy = || {
        options()
            .spin(Duration::ZERO)
            .liveness_interval(Duration::from_secs(600))
    };
    let (mut ping_tx, mut ping_rx) = sleepy().in_process().unwrap();
    let (mut pong_tx, mut pong_rx) = sleepy().in_process().unwrap();
    let (tid_tx, tid_rx) = mpsc::channel();
    let echo = std::thread::spawn(move || {
        tid_tx.send(thread_id()).unwrap();
        for _ in 0..ROUNDS {
            let ping = ping_rx.recv().unwrap();
            pong_tx.send(&ping).unwrap();
        }
        ping_rx.stats()
    });
    let echo_tid = tid_rx.recv().unwrap();
    for i in 0..ROUNDS {
        wait_until_asleep_in_futex(echo_tid);
        ping_tx.send(&i.to_le_bytes()).unwrap();
        assert_eq!(&*pong_rx.recv().unwrap(), &i.to_le_bytes());
    }
    let echoer = echo.join().unwrap();
    assert!(echoer.sleeps >= ROUNDS, "{echoer:?}");
    // The first sleep takes one (none where membarrier is missing and the fences are
    // symmetric), and so may a sleeper that wakes spuriously before the first ping and announces
    // itself again; without the switch every one of the sleeps takes one.
    assert!(echoer.barriers <= 4, "{echoer:?}");
}

#[test]
fn only_a_consumer_that_drained_a_stream_pauses_and_the_pause_does_not_look() {
    let pause = Duration::from_millis(40);
    let pausing = || {
        options()
            .stream_pause(pause)
            .spin(Duration::from_secs(1))
            .in_process()
            .unwrap()
    };
    let (mut producer, mut consumer) = pausing();
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
    // taken before the pause ends. The frame comes from another thread a little later; should
    // it come before the receive even begins, nothing is waited for, and the round is run
    // again.
    let mut producer = Some(producer);
    let mut paused = false;
    for _ in 0..20 {
        let mut sender = producer.take().unwrap();
        for i in 0..3u8 {
            sender.send(&[i]).unwrap();
        }
        for i in 0..3u8 {
            assert_eq!(&*consumer.recv().unwrap(), &[i]);
        }
        let before = consumer.stats();
        let late = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(5));
            sender.send(b"late").unwrap();
            sender
        });
        let start = Instant::now();
        assert_eq!(&*consumer.recv().unwrap(), b"late");
        let waited = start.elapsed();
        let after = consumer.stats();
        producer = Some(late.join().unwrap());
        if after.waits == before.waits {
            continue;
        }
        assert_eq!(after.stream_pauses, before.stream_pauses + 1);
        assert!(waited >= pause, "received after {waited:?}");
        paused = true;
        break;
    }
    assert!(
        paused,
        "in 20 rounds the late frame never came after the receive began"
    );
    // That wait was followed by one frame: the next one does not pause.
    let pauses = consumer.stats().stream_pauses;
    assert!(matches!(
        consumer.recv_timeout(Duration::ZERO),
        Err(Error::Timeout)
    ));
    assert_eq!(consumer.stats().stream_pauses, pauses);
    // A deadline cuts the pause short (a pause of a minute, against a deadline of now).
    let (mut producer, mut consumer) = options()
        .stream_pause(Duration::from_secs(60))
        .spin(Duration::from_secs(120))
        .in_process()
        .unwrap();
    for i in 0..3u8 {
        producer.send(&[i]).unwrap();
        drop(consumer.recv().unwrap());
    }
    let start = Instant::now();
    assert!(matches!(
        consumer.recv_timeout(Duration::ZERO),
        Err(Error::Timeout)
    ));
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(consumer.stats().stream_pauses, 1);
}

fn assert_about(elapsed: Duration, asked: Duration) {
    assert!(
        elapsed >= asked,
        "returned after {elapsed:?}, before {asked:?}"
    );
    // A hang guard, not a rate: a loaded machine may run a wait long.
    assert!(
        elapsed < asked + Duration::from_secs(10),
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

/// How many times thread `tid` of this process has gone to sleep of its own accord.
fn voluntary_switches(tid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap()
}

/// Idle means idle: a consumer blocked on a ring whose producer (in another process) sends
/// nothing sleeps through many liveness intervals without a single wake-up, because its peer's
/// death is watched instead; the death then wakes it.
#[test]
fn a_consumer_blocked_on_a_silent_live_producer_never_wakes_until_it_dies() {
    let name = ShmName::new("idle");
    let mut consumer = options().create_consumer(name.as_str()).unwrap();
    let mut child = spawn_and_wait_ready("producer", &name);
    assert_eq!(&*consumer.recv().unwrap(), b"last words");
    let (tid_tx, tid_rx) = mpsc::channel();
    let blocked = std::thread::spawn(move || {
        tid_tx.send(thread_id()).unwrap();
        consumer.recv().map(drop)
    });
    let tid = tid_rx.recv().unwrap();
    wait_until_asleep_in_futex(tid);
    let before = voluntary_switches(tid);
    // Fifteen liveness intervals: a sleep sliced by the interval would wake fifteen times.
    std::thread::sleep(15 * LIVENESS);
    assert!(asleep_in_futex(tid), "still asleep");
    assert_eq!(voluntary_switches(tid), before, "the blocked consumer woke");
    kill9(&mut child);
    let result = blocked.join().unwrap();
    assert!(
        matches!(result, Err(Error::PeerGone(Role::Producer))),
        "{result:?}"
    );
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

#[test]
fn a_wait_for_the_peer_times_out_or_is_woken_by_its_attach() {
    let name = ShmName::new("wait-for-peer");
    let mut consumer = options().create_consumer(name.as_str()).unwrap();
    assert!(matches!(
        consumer.wait_for_peer(Duration::from_millis(30)),
        Err(Error::Timeout)
    ));
    let (tid_tx, tid_rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        tid_tx.send(thread_id()).unwrap();
        // The liveness interval is no part of this wait: only the attach ends it.
        let result = consumer.wait_for_peer(Duration::from_secs(60));
        (result, consumer)
    });
    wait_until_asleep_in_futex(tid_rx.recv().unwrap());
    let mut producer = options().open_producer(name.as_str()).unwrap();
    let (result, mut consumer) = waiter.join().unwrap();
    result.unwrap();
    assert!(
        consumer.wait_for_peer(Duration::ZERO).is_ok(),
        "attached already"
    );
    producer.send(b"hi").unwrap();
    drop(producer);
    assert_eq!(consumer.recv_with(|f| f.to_vec()).unwrap(), b"hi");
    assert!(matches!(
        consumer.recv_timeout(Duration::ZERO),
        Err(Error::PeerGone(Role::Producer))
    ));
    // Gone: the wait is for a replacement, which the consumer then serves.
    assert!(matches!(
        consumer.wait_for_peer(Duration::from_millis(10)),
        Err(Error::Timeout)
    ));
    let mut producer = options().open_producer(name.as_str()).unwrap();
    consumer.wait_for_peer(Duration::ZERO).unwrap();
    producer.send(b"again").unwrap();
    assert_eq!(consumer.recv_with(|f| f.to_vec()).unwrap(), b"again");
}
