//! Two real processes stream a million frames of random sizes through a ring far smaller than
//! the data: every frame must arrive complete, in order and intact, across ten thousand laps.
//! The two sides dawdle in turns, so that both waits (consumer on empty, producer on full)
//! happen often; how often depends on the schedule, so it is shown, not asserted (the waits
//! themselves are tested in spsc_waiting.rs, where the test knows the other side sleeps).

mod common;

use std::time::Duration;

use common::{child_arg, spawn_child, ChildGuard, ShmName};
use ringport::SpscOptions;

const FRAMES: u64 = 1_000_000;
const MAX_LEN: usize = 4096;
const CAPACITY: usize = 64 << 10;
/// Frames are sent in phases of this many; in even phases the consumer dawdles (so the producer
/// fills the ring and waits), in odd ones the producer does (so the consumer finds it empty).
const PHASE: u64 = 1000;
const PAUSE_EVERY: u64 = 64;

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn frame_len(seq: u64) -> usize {
    1 + (splitmix(seq ^ 0x5eed) % MAX_LEN as u64) as usize
}

fn checksum(bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        h = splitmix(h ^ u64::from_le_bytes(c.try_into().unwrap()));
    }
    for &b in chunks.remainder() {
        h = splitmix(h ^ u64::from(b));
    }
    h
}

/// Frame `seq`: its sequence number (bytes 0..8), a checksum of bytes 16.. (bytes 8..16), then
/// pseudo-random words; short frames carry what fits.
fn build_frame(seq: u64, buf: &mut Vec<u8>) {
    let len = frame_len(seq);
    buf.clear();
    buf.resize(len.max(16), 0);
    for (i, word) in buf[16..].chunks_mut(8).enumerate() {
        let v = splitmix(seq.wrapping_mul(4099).wrapping_add(i as u64)).to_le_bytes();
        word.copy_from_slice(&v[..word.len()]);
    }
    let sum = checksum(&buf[16..]);
    buf[0..8].copy_from_slice(&seq.to_le_bytes());
    buf[8..16].copy_from_slice(&sum.to_le_bytes());
    buf.truncate(len);
}

fn dawdle(seq: u64, my_phase: u64) {
    if (seq / PHASE) % 2 == my_phase && seq % PAUSE_EVERY == 0 {
        std::thread::sleep(Duration::from_micros(50));
    }
}

fn options() -> SpscOptions {
    SpscOptions::new()
        .capacity(CAPACITY)
        .max_frame(MAX_LEN)
        .spin(Duration::from_micros(5))
}

#[test]
#[ignore = "child process of million_frames_two_processes"]
fn child_producer() {
    let Some(name) = child_arg() else { return };
    let mut producer = options().open_producer(&name).expect("open producer");
    let mut buf = Vec::with_capacity(MAX_LEN);
    for seq in 0..FRAMES {
        build_frame(seq, &mut buf);
        let mut grant = producer
            .reserve_timeout(buf.len(), Duration::from_secs(30))
            .expect("reserve");
        grant.copy_from_slice(&buf);
        grant.commit();
        dawdle(seq, 1);
    }
    // How often it waited depends on the schedule (on a loaded machine, far less often):
    // shown, and checked only for what holds on any schedule.
    let stats = producer.stats();
    eprintln!("producer: {stats:?}");
    assert_consistent(&stats);
}

/// What a wait's counts obey whatever the schedule: a wait begins with at most one stream
/// pause, and takes a membarrier only when it announces itself, which it does once before
/// each sleep and once more before it ends.
fn assert_consistent(stats: &ringport::WaitStats) {
    assert!(stats.stream_pauses <= stats.waits, "{stats:?}");
    assert!(stats.barriers <= stats.sleeps + stats.waits, "{stats:?}");
    assert!(stats.waits > 0 || stats.sleeps == 0, "{stats:?}");
}

#[test]
fn million_frames_two_processes() {
    let name = ShmName::new("stream");
    let mut consumer = options().create_consumer(name.as_str()).expect("create");
    let child = ChildGuard(Some(spawn_child("child_producer", name.as_str())));

    let mut expected = Vec::with_capacity(MAX_LEN);
    let mut bytes = 0u64;
    for seq in 0..FRAMES {
        let frame = consumer
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("frame {seq}: {e}"));
        build_frame(seq, &mut expected);
        assert_eq!(frame.len(), expected.len(), "length of frame {seq}");
        if frame.len() >= 16 {
            let got_seq = u64::from_le_bytes(frame[0..8].try_into().unwrap());
            assert_eq!(got_seq, seq, "frame out of order");
            let sum = u64::from_le_bytes(frame[8..16].try_into().unwrap());
            assert_eq!(sum, checksum(&frame[16..]), "checksum of frame {seq}");
        }
        assert!(*frame == expected[..], "content of frame {seq}");
        bytes += frame.len() as u64 + 8;
        drop(frame);
        dawdle(seq, 0);
    }
    child.wait_success();
    // The producer is gone and everything was read: the ring says so rather than waiting.
    assert!(matches!(
        consumer.recv_timeout(Duration::from_secs(5)),
        Err(ringport::Error::PeerGone(ringport::Role::Producer))
    ));
    let stats = consumer.stats();
    eprintln!("consumer: {stats:?}, {} laps", bytes / CAPACITY as u64);
    assert!(
        bytes / CAPACITY as u64 > 10_000,
        "the ring wrapped too rarely"
    );
    assert_consistent(&stats);
}
