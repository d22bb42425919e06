//! ringport SPSC against the baselines that bound it, measured interleaved in one run.
//!
//! - 64-byte ping-pong, both sides busy-polling, across two processes pinned to two cores,
//!   against a raw ping-pong of two atomics on separate cache lines in the same kind of mapping
//!   (the hardware limit).
//! - Blocking ping-pong (both sides sleep: no spinning), against a raw futex ping-pong.
//! - 8-byte frames streamed one way between two threads: in place (`try_reserve`/`try_recv`, and
//!   the blocking `reserve`/`recv`), copying (`try_send`/`try_recv_into`, `send`/`recv_into`) and
//!   in batches (`try_send_many`/`try_recv_many`), against rtrb 0.4 moving u64s (the issue's
//!   baseline), u128s (the 16 bytes a message that an 8-byte frame with its header takes) and
//!   chunks.
//!
//! Each round runs every contender once, in turn, so that machine drift hits them alike; the
//! figures are medians over rounds, and each is also given as a ratio to its baseline.
//! `cargo bench --bench spsc_baselines` (add `-- --quick` for fewer rounds, `-- --process-streams`
//! for five rounds of the cross-process streams alone, `-- --stream-only`
//! for five rounds of the streams alone, `-- --sides` for each side of a stream alone (what bounds
//! a stream one at a time), or `-- --block-only` for the blocking round trips in many short
//! rounds), `-- --only NAME` for one stream contender five times, as named in `--stream-only`'s
//! output (for a profiler). `--pause N` makes each side of a stream run N `spin_loop` hints whenever it finds
//! the ring empty (or full) before it looks again, as a polling loop may (see `stream`).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringport::{Error, SpscOptions};

use ringport_measure::median;
use ringport_measure::pin::{online_cores, pin_to_wrapping as pin_to};
use ringport_measure::raw::{self, PING_PONG_LEN};
use ringport_measure::shm::{SegmentName, SharedMap};

const CHILD_ENV: &str = "RINGPORT_BENCH_CHILD";

// ---------------------------------------------------------------- contenders, both sides

/// Which ping-pong, and the segment names it uses.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum PingPong {
    RawSpin,
    /// The 64-byte message in one slot each way, after the slot's stamp: the message and its
    /// commit in 72 bytes, as a ringport frame and its header (`ringport_measure::raw::Slots`).
    RawSlot,
    RingportSpin,
    RawFutex,
    RingportBlocking,
    RingportBlockingSymmetric,
}

impl PingPong {
    fn tag(self) -> &'static str {
        match self {
            PingPong::RawSpin => "raw-spin",
            PingPong::RawSlot => "raw-slot",
            PingPong::RingportSpin => "ringport-spin",
            PingPong::RawFutex => "raw-futex",
            PingPong::RingportBlocking => "ringport-blocking",
            PingPong::RingportBlockingSymmetric => "ringport-blocking-symmetric",
        }
    }
    fn from_tag(tag: &str) -> PingPong {
        [
            PingPong::RawSpin,
            PingPong::RawSlot,
            PingPong::RingportSpin,
            PingPong::RawFutex,
            PingPong::RingportBlocking,
            PingPong::RingportBlockingSymmetric,
        ]
        .into_iter()
        .find(|p| p.tag() == tag)
        .unwrap()
    }
}

const MSG: usize = 64;

fn ring_options(kind: PingPong) -> SpscOptions {
    let options = SpscOptions::new().capacity(64 << 10).max_frame(1024);
    match kind {
        PingPong::RingportBlocking => options.spin(Duration::ZERO),
        // The creator's choice is recorded in the segment; the opener follows it.
        PingPong::RingportBlockingSymmetric => options.spin(Duration::ZERO).symmetric_fences(true),
        _ => options,
    }
}

fn spin_send(producer: &mut ringport::spsc::Producer, msg: &[u8]) {
    loop {
        match producer.try_reserve(msg.len()) {
            Ok(mut grant) => {
                grant.copy_from_slice(msg);
                grant.commit();
                return;
            }
            Err(Error::Full) => std::hint::spin_loop(),
            Err(e) => panic!("{e}"),
        }
    }
}

fn spin_recv(consumer: &mut ringport::spsc::Consumer, check: u64) {
    loop {
        match consumer.try_recv() {
            Ok(frame) => {
                debug_assert_eq!(u64::from_le_bytes(frame[..8].try_into().unwrap()), check);
                std::hint::black_box(read_lines(&frame));
                return;
            }
            Err(Error::Empty) => std::hint::spin_loop(),
            Err(e) => panic!("{e}"),
        }
    }
}

/// Reads the first word of `frame` and a byte of each other cache line it spans, as the raw
/// rings' receivers do (`SharedMap::touch`).
fn read_lines(frame: &[u8]) -> u64 {
    let start = frame.as_ptr() as usize;
    let mut sum = number(frame);
    let mut line = (start | 63) + 1;
    while line < start + frame.len() {
        sum ^= u64::from(frame[line - start]);
        line += 64;
    }
    sum
}

/// The raw slot ping-pong's two directions, one slot each (a stamp and the 64-byte message),
/// in the ping-pong mapping:
/// (ping, pong), on line pairs of their own.
fn slot_pair() -> (raw::Slots, raw::Slots) {
    let stride = raw::Slots::stride_for(MSG);
    (
        raw::Slots::new(0, stride, 1),
        raw::Slots::new(256, stride, 1),
    )
}

fn spin_slot_send(slots: &mut raw::Slots, shm: &SharedMap, msg: &[u8]) {
    slots
        .send(shm, msg, || -> Result<(), String> {
            std::hint::spin_loop();
            Ok(())
        })
        .unwrap();
}

/// The child's half: answer `n` pings.
fn pong(kind: PingPong, base: &str, n: u64) {
    pin_to(1);
    match kind {
        PingPong::RawSpin => {
            let shm = SharedMap::open_named(base).unwrap();
            for i in 1..=n {
                raw::spin_pong(&shm, i);
            }
        }
        PingPong::RawFutex => {
            let shm = SharedMap::open_named(base).unwrap();
            for i in 1..=n as u32 {
                raw::futex_pong(&shm, i);
            }
        }
        PingPong::RawSlot => {
            let shm = SharedMap::open_named(base).unwrap();
            let (mut rx, mut tx) = slot_pair();
            let mut msg = [7u8; MSG];
            for i in 0..n {
                let got = rx
                    .recv(&shm, MSG, |_| -> Result<(), String> {
                        std::hint::spin_loop();
                        Ok(())
                    })
                    .unwrap();
                debug_assert_eq!(got, i);
                msg[..8].copy_from_slice(&i.to_le_bytes());
                spin_slot_send(&mut tx, &shm, &msg);
            }
        }
        PingPong::RingportSpin
        | PingPong::RingportBlocking
        | PingPong::RingportBlockingSymmetric => {
            let blocking = kind != PingPong::RingportSpin;
            let mut rx = ring_options(kind)
                .open_consumer(format!("{base}-ping"))
                .unwrap();
            let mut tx = ring_options(kind)
                .open_producer(format!("{base}-pong"))
                .unwrap();
            let mut msg = [0u8; MSG];
            for i in 0..n {
                if blocking {
                    let frame = rx.recv().unwrap();
                    msg.copy_from_slice(&frame);
                    drop(frame);
                    tx.send(&msg).unwrap();
                } else {
                    spin_recv(&mut rx, i);
                    msg[..8].copy_from_slice(&i.to_le_bytes());
                    spin_send(&mut tx, &msg);
                }
            }
        }
    }
}

/// The parent's half: `n` round trips; returns nanoseconds per round trip.
fn ping(kind: PingPong, n: u64) -> f64 {
    let base = format!("ringport-bench-{}-{}", std::process::id(), kind.tag());
    let spawn = || {
        std::process::Command::new(std::env::current_exe().unwrap())
            .env(CHILD_ENV, format!("{}:{base}:{n}", kind.tag()))
            .spawn()
            .unwrap()
    };
    pin_to(0);
    let started;
    let mut child;
    match kind {
        PingPong::RawSpin => {
            let _remove = SegmentName::adopt(base.clone());
            let shm = SharedMap::create_named(&base, PING_PONG_LEN).unwrap();
            child = spawn();
            // The first round trip also waits for the child to start: time from it on.
            raw::spin_ping(&shm, 1);
            started = Instant::now();
            for i in 2..=n {
                raw::spin_ping(&shm, i);
            }
        }
        PingPong::RawFutex => {
            let _remove = SegmentName::adopt(base.clone());
            let shm = SharedMap::create_named(&base, PING_PONG_LEN).unwrap();
            child = spawn();
            raw::futex_ping(&shm, 1);
            started = Instant::now();
            for i in 2..=n as u32 {
                raw::futex_ping(&shm, i);
            }
        }
        PingPong::RawSlot => {
            let _remove = SegmentName::adopt(base.clone());
            let shm = SharedMap::create_named(&base, PING_PONG_LEN).unwrap();
            child = spawn();
            let (mut tx, mut rx) = slot_pair();
            let mut msg = [7u8; MSG];
            let mut t = None;
            for i in 0..n {
                if i == 1 {
                    t = Some(Instant::now());
                }
                msg[..8].copy_from_slice(&i.to_le_bytes());
                spin_slot_send(&mut tx, &shm, &msg);
                let echo = rx
                    .recv(&shm, MSG, |_| -> Result<(), String> {
                        std::hint::spin_loop();
                        Ok(())
                    })
                    .unwrap();
                debug_assert_eq!(echo, i);
            }
            started = t.unwrap();
        }
        PingPong::RingportSpin
        | PingPong::RingportBlocking
        | PingPong::RingportBlockingSymmetric => {
            let blocking = kind != PingPong::RingportSpin;
            let mut tx = ring_options(kind)
                .create_producer(format!("{base}-ping"))
                .unwrap();
            let mut rx = ring_options(kind)
                .create_consumer(format!("{base}-pong"))
                .unwrap();
            child = spawn();
            let mut msg = [0u8; MSG];
            let mut t = None;
            for i in 0..n {
                if i == 1 {
                    t = Some(Instant::now());
                }
                msg[..8].copy_from_slice(&i.to_le_bytes());
                if blocking {
                    tx.send(&msg).unwrap();
                    drop(rx.recv().unwrap());
                } else {
                    spin_send(&mut tx, &msg);
                    spin_recv(&mut rx, i);
                }
            }
            started = t.unwrap();
        }
    }
    let elapsed = started.elapsed();
    assert!(child.wait().unwrap().success());
    elapsed.as_nanos() as f64 / (n - 1) as f64
}

// ---------------------------------------------------------------- streaming, two threads

const STREAM: u64 = 50_000_000;

/// The ring every ringport stream runs through: 4096 frames of 8 bytes (16 with the header), as
/// many in flight as rtrb's 4096 slots.
fn stream_ring() -> (ringport::spsc::Producer, ringport::spsc::Consumer) {
    stream_ring_options().in_process().unwrap()
}

fn stream_ring_options() -> SpscOptions {
    SpscOptions::new().capacity(64 << 10).max_frame(64)
}

/// Streams 0..STREAM from this thread (core 0) to a reader thread (core 1) and returns messages
/// a second, once the reader has summed them all correctly (`read` and `write` as in [`Drive`]).
fn stream(
    mut read: impl FnMut(&mut u64) -> u64 + Send + 'static,
    mut write: impl FnMut(u64) -> u64,
) -> f64 {
    let pause = STREAM_PAUSE.load(Ordering::Relaxed);
    let reader = std::thread::spawn(move || {
        pin_to(1);
        let (mut sum, mut n) = (0u64, 0);
        while n < STREAM {
            let got = read(&mut sum);
            n += got;
            if got == 0 {
                idle(pause);
            }
        }
        sum
    });
    pin_to(0);
    let start = Instant::now();
    let mut i = 0;
    while i < STREAM {
        let sent = write(i);
        i += sent;
        if sent == 0 {
            idle(pause);
        }
    }
    let sum = reader.join().unwrap();
    let rate = STREAM as f64 / start.elapsed().as_secs_f64();
    assert_eq!(sum, STREAM * (STREAM - 1) / 2);
    rate
}

/// `spin_loop` hints a side of a stream runs when it finds nothing to do (`--pause N`; 0 by
/// default). A reader that looks again at once, as soon as it has caught up, takes the cache
/// line back from the writer while the writer is still filling it, every time; each such theft
/// stalls the writer's stores. A pause lets the writer run ahead first.
static STREAM_PAUSE: AtomicU32 = AtomicU32::new(0);

fn idle(pauses: u32) {
    for _ in 0..pauses {
        std::hint::spin_loop();
    }
}

/// The number an 8-byte frame carries.
fn number(frame: &[u8]) -> u64 {
    u64::from_le_bytes(frame[..8].try_into().unwrap())
}

/// How a contender's two sides run: [`Together`] as a stream (`stream`), or [`Apart`], each
/// alone (`sides`). Each contender is written once, as its two sides, and handed to either.
/// `read` takes what is there, adds it to the sum and says how many it took; `write` sends from
/// `i` on and says how many it sent.
trait Drive {
    type Rates;
    fn run(
        self,
        read: impl FnMut(&mut u64) -> u64 + Send + 'static,
        write: impl FnMut(u64) -> u64,
    ) -> Self::Rates;
}

/// Both sides at once: messages a second.
struct Together;

impl Drive for Together {
    type Rates = f64;
    fn run(
        self,
        read: impl FnMut(&mut u64) -> u64 + Send + 'static,
        write: impl FnMut(u64) -> u64,
    ) -> f64 {
        stream(read, write)
    }
}

/// Each side alone: the writer's and the reader's messages a second.
struct Apart;

impl Drive for Apart {
    type Rates = (f64, f64);
    fn run(
        self,
        read: impl FnMut(&mut u64) -> u64 + Send + 'static,
        write: impl FnMut(u64) -> u64,
    ) -> (f64, f64) {
        sides(read, write)
    }
}

/// rtrb streaming items of type `T` (made from and summed back to a u64).
fn stream_rtrb<T: Copy + Send + 'static, D: Drive>(
    make: fn(u64) -> T,
    value: fn(T) -> u64,
    drive: D,
) -> D::Rates {
    let (mut tx, mut rx) = rtrb::RingBuffer::<T>::new(4096);
    drive.run(
        move |sum| match rx.pop() {
            Ok(v) => {
                *sum = sum.wrapping_add(value(v));
                1
            }
            Err(_) => 0,
        },
        move |i| u64::from(tx.push(make(i)).is_ok()),
    )
}

/// The minimal ring of u64s in a shared mapping (`ringport_measure::raw::IndexRing`): a head
/// and a tail index, each cached by the other side, a Release store after every item; the
/// design that a cross-process u64 ring needs at the least.
fn stream_raw_u64<D: Drive>(drive: D) -> D::Rates {
    use ringport_measure::raw::IndexRing;
    const COUNT: usize = 4096;
    let map = SharedMap::create(IndexRing::len_for(8, COUNT)).unwrap();
    // The reader maps the memfd again, as a peer process would: each side's handle is its own
    // (one shared handle put the reader's state beside the writer's on one line of the heap).
    let reader_map = SharedMap::map(map.fd().try_clone_to_owned().unwrap()).unwrap();
    let (mut tx, mut rx) = (IndexRing::new(8, COUNT), IndexRing::new(8, COUNT));
    drive.run(
        move |sum| match rx.try_recv(&reader_map) {
            Some(v) => {
                *sum = sum.wrapping_add(v);
                1
            }
            None => 0,
        },
        move |i| u64::from(tx.try_send(&map, &i.to_le_bytes())),
    )
}

/// The baseline: rtrb moving u64s, 8 bytes a slot.
fn stream_rtrb_u64<D: Drive>(drive: D) -> D::Rates {
    stream_rtrb(|i| i, |v| v, drive)
}

/// The same bytes per message as ringport moves: an 8-byte frame takes 16 with its header.
fn stream_rtrb_u128<D: Drive>(drive: D) -> D::Rates {
    stream_rtrb(u128::from, |v| v as u64, drive)
}

/// ringport streaming 8-byte frames, busy-polling with the `try_` forms or through the blocking
/// forms (which spin, then sleep).
fn stream_ringport<const BLOCKING: bool, D: Drive>(drive: D) -> D::Rates {
    let (mut tx, mut rx) = stream_ring();
    drive.run(
        move |sum| {
            let frame = if BLOCKING { rx.recv() } else { rx.try_recv() };
            match frame {
                Ok(frame) => {
                    *sum = sum.wrapping_add(number(&frame));
                    1
                }
                Err(_) => 0,
            }
        },
        move |i| {
            let grant = if BLOCKING {
                tx.reserve(8)
            } else {
                tx.try_reserve(8)
            };
            match grant {
                Ok(mut grant) => {
                    grant.copy_from_slice(&i.to_le_bytes());
                    grant.commit();
                    1
                }
                Err(_) => 0,
            }
        },
    )
}

/// ringport streaming 8-byte frames through the copying forms (`try_send`/`try_recv_into`
/// busy, or `send`/`recv_into` blocking): what an 8-byte message most naturally goes through.
fn stream_ringport_copy<const BLOCKING: bool, D: Drive>(drive: D) -> D::Rates {
    let (mut tx, mut rx) = stream_ring();
    let mut buf = Vec::with_capacity(64);
    drive.run(
        move |sum| {
            let got = if BLOCKING {
                rx.recv_into(&mut buf)
            } else {
                rx.try_recv_into(&mut buf)
            };
            match got {
                Ok(_) => {
                    *sum = sum.wrapping_add(number(&buf));
                    1
                }
                Err(_) => 0,
            }
        },
        move |i| {
            let sent = if BLOCKING {
                tx.send(&i.to_le_bytes())
            } else {
                tx.try_send(&i.to_le_bytes())
            };
            u64::from(sent.is_ok())
        },
    )
}

/// How many messages a batch moves at most, on both sides, for the batch rows.
const BATCH: usize = 64;

/// rtrb's chunk API: the batch baseline for ringport's batch forms.
fn stream_rtrb_chunks<D: Drive>(drive: D) -> D::Rates {
    let (mut tx, mut rx) = rtrb::RingBuffer::<u64>::new(4096);
    drive.run(
        move |sum| {
            let ready = rx.slots().min(BATCH);
            let Ok(chunk) = rx.read_chunk(ready) else {
                return 0;
            };
            let (a, b) = chunk.as_slices();
            *sum = a.iter().chain(b).fold(*sum, |s, &v| s.wrapping_add(v));
            chunk.commit_all();
            ready as u64
        },
        move |i| {
            let room = tx.slots().min(BATCH).min((STREAM - i) as usize);
            tx.write_chunk_uninit(room)
                .map_or(0, |chunk| chunk.fill_from_iter(i..) as u64)
        },
    )
}

/// ringport's batch forms: `try_send_many` of up to `BATCH` frames, `try_recv_many`.
fn stream_ringport_batches<D: Drive>(drive: D) -> D::Rates {
    let (mut tx, mut rx) = stream_ring();
    let mut batch = Vec::with_capacity(BATCH);
    drive.run(
        move |sum| {
            rx.try_recv_many(BATCH, |frame| *sum = sum.wrapping_add(number(frame)))
                .map_or(0, |n| n as u64)
        },
        move |i| {
            batch.clear();
            batch.extend((i..STREAM.min(i + BATCH as u64)).map(u64::to_le_bytes));
            let mut rest = &batch[..];
            while !rest.is_empty() {
                if let Ok(sent) = tx.try_send_many(rest) {
                    rest = &rest[sent..];
                }
            }
            batch.len() as u64
        },
    )
}

/// ringport's in-place batch: `write_batch` of up to `BATCH` frames, each filled where it lies,
/// and `try_recv_many`.
fn stream_ringport_write_batch<D: Drive>(drive: D) -> D::Rates {
    let (mut tx, mut rx) = stream_ring();
    drive.run(
        move |sum| {
            rx.try_recv_many(BATCH, |frame| *sum = sum.wrapping_add(number(frame)))
                .map_or(0, |n| n as u64)
        },
        move |i| {
            let mut batch = tx.write_batch();
            for n in i..STREAM.min(i + BATCH as u64) {
                let Ok(frame) = batch.try_push(8) else {
                    break;
                };
                frame.copy_from_slice(&n.to_le_bytes());
            }
            batch.commit() as u64
        },
    )
}

/// `BATCH` u64s in one frame, written in place (`try_reserve` of 512 bytes) and read in place
/// (`try_recv`): the batch as one message, for messages that need no frame each.
fn stream_ringport_one_frame<D: Drive>(drive: D) -> D::Rates {
    let (mut tx, mut rx) = SpscOptions::new()
        .capacity(64 << 10)
        .max_frame(8 * BATCH)
        .in_process()
        .unwrap();
    drive.run(
        move |sum| {
            let Ok(frame) = rx.try_recv() else {
                return 0;
            };
            *sum = frame
                .chunks_exact(8)
                .fold(*sum, |s, word| s.wrapping_add(number(word)));
            (frame.len() / 8) as u64
        },
        move |i| {
            let n = (STREAM - i).min(BATCH as u64) as usize;
            let Ok(mut grant) = tx.try_reserve(8 * n) else {
                return 0;
            };
            for (word, value) in grant.chunks_exact_mut(8).zip(i..) {
                word.copy_from_slice(&value.to_le_bytes());
            }
            grant.commit();
            n as u64
        },
    )
}

// ---------------------------------------------------------------- streaming, two processes

/// 8-byte messages a cross-process stream moves.
const PROCESS_STREAM: u64 = 20_000_000;

/// A one-way 8-byte stream from this process (core 0) to a child (core 1).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ProcessStream {
    /// The raw u64 ring (`ringport_measure::raw::IndexRing`).
    RawU64,
    /// `try_reserve`/`try_recv`, both spinning.
    InPlace,
    /// `try_send`/`try_recv_into`, both spinning.
    Copy,
    /// `send`/`recv_into`, the blocking forms with their default spin.
    Blocking,
}

impl ProcessStream {
    const ALL: [ProcessStream; 4] = [
        ProcessStream::RawU64,
        ProcessStream::InPlace,
        ProcessStream::Copy,
        ProcessStream::Blocking,
    ];

    fn tag(self) -> &'static str {
        match self {
            ProcessStream::RawU64 => "stream-raw",
            ProcessStream::InPlace => "stream-in-place",
            ProcessStream::Copy => "stream-copy",
            ProcessStream::Blocking => "stream-blocking",
        }
    }

    fn from_tag(tag: &str) -> Option<ProcessStream> {
        ProcessStream::ALL.into_iter().find(|k| k.tag() == tag)
    }
}

/// The raw u64 ring's messages, as many as ringport's ring of 64 KiB holds 8-byte frames.
const RAW_STREAM_COUNT: usize = 4096;

/// The child's half of a cross-process stream: reads `n` messages, checks their sum and prints
/// the nanoseconds from its first message to its last.
fn stream_reader(kind: ProcessStream, name: &str, n: u64) {
    pin_to(1);
    let mut sum = 0u64;
    let mut start = None;
    let mut got = |v: u64, sum: &mut u64| {
        start.get_or_insert_with(Instant::now);
        *sum = sum.wrapping_add(v);
    };
    match kind {
        ProcessStream::RawU64 => {
            let map = SharedMap::open_named(name).unwrap();
            let mut rx = raw::IndexRing::new(8, RAW_STREAM_COUNT);
            for _ in 0..n {
                let v = loop {
                    if let Some(v) = rx.try_recv(&map) {
                        break v;
                    }
                    std::hint::spin_loop();
                };
                got(v, &mut sum);
            }
        }
        ProcessStream::InPlace | ProcessStream::Copy | ProcessStream::Blocking => {
            let mut rx = SpscOptions::new().open_consumer(name).unwrap();
            let mut buf = Vec::with_capacity(64);
            for _ in 0..n {
                let v = loop {
                    let v = match kind {
                        ProcessStream::InPlace => rx.try_recv().map(|frame| number(&frame)),
                        ProcessStream::Copy => rx.try_recv_into(&mut buf).map(|_| number(&buf)),
                        _ => rx.recv_into(&mut buf).map(|_| number(&buf)),
                    };
                    match v {
                        Ok(v) => break v,
                        Err(Error::Empty) => std::hint::spin_loop(),
                        Err(e) => panic!("{e}"),
                    }
                };
                got(v, &mut sum);
            }
        }
    }
    let elapsed = start.unwrap().elapsed();
    assert_eq!(sum, n * (n - 1) / 2);
    println!("{}", elapsed.as_nanos());
}

/// The parent's half: streams `PROCESS_STREAM` messages to a child; returns messages a second,
/// as the child timed them.
fn stream_processes(kind: ProcessStream) -> f64 {
    pin_to(0);
    let n = PROCESS_STREAM;
    let name = format!("ringport-bench-{}-{}", std::process::id(), kind.tag());
    let spawn = || {
        std::process::Command::new(std::env::current_exe().unwrap())
            .env(CHILD_ENV, format!("{}:{name}:{n}", kind.tag()))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let child = match kind {
        ProcessStream::RawU64 => {
            let _remove = SegmentName::adopt(name.clone());
            let len = raw::IndexRing::len_for(8, RAW_STREAM_COUNT);
            let map = SharedMap::create_named(&name, len).unwrap();
            let child = spawn();
            let mut tx = raw::IndexRing::new(8, RAW_STREAM_COUNT);
            for i in 0..n {
                while !tx.try_send(&map, &i.to_le_bytes()) {
                    std::hint::spin_loop();
                }
            }
            child
        }
        ProcessStream::InPlace | ProcessStream::Copy | ProcessStream::Blocking => {
            let mut tx = stream_ring_options().create_producer(&name).unwrap();
            let child = spawn();
            for i in 0..n {
                let bytes = i.to_le_bytes();
                loop {
                    let sent = match kind {
                        ProcessStream::InPlace => tx.try_reserve(8).map(|mut grant| {
                            grant.copy_from_slice(&bytes);
                            grant.commit();
                        }),
                        ProcessStream::Copy => tx.try_send(&bytes),
                        _ => tx.send(&bytes),
                    };
                    match sent {
                        Ok(()) => break,
                        Err(Error::Full) => std::hint::spin_loop(),
                        Err(e) => panic!("{e}"),
                    }
                }
            }
            child
        }
    };
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let nanos: f64 = String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (n - 1) as f64 / (nanos / 1e9)
}

/// One round of the cross-process streams, in `round`'s order, into `rates` (by
/// `ProcessStream::ALL`'s order).
fn process_stream_round(round: usize, rates: &mut [Vec<f64>; 4]) {
    let mut order = [0, 1, 2, 3];
    if round % 2 == 1 {
        order.reverse();
    }
    for i in order {
        rates[i].push(stream_processes(ProcessStream::ALL[i]));
    }
}

/// The cross-process streams' medians, and each ringport form's median ratio (taken within each
/// round) to the raw u64 ring.
fn report_process_streams(rates: &[Vec<f64>; 4]) {
    let rounds = rates[0].len();
    let ratio = |of: usize| median((0..rounds).map(|r| rates[of][r] / rates[0][r]).collect());
    let m = rates.clone().map(median);
    println!(
        "8 B streamed, processes:    raw u64 ring {:6.1} M/s   try_reserve/try_recv {:6.1} M/s ({:.2}x)   \
         try_send/try_recv_into {:6.1} M/s ({:.2}x)   send/recv_into {:6.1} M/s ({:.2}x) (medians of the rounds' ratios)",
        m[0] / 1e6,
        m[1] / 1e6,
        ratio(1),
        m[2] / 1e6,
        ratio(2),
        m[3] / 1e6,
        ratio(3)
    );
}

/// `--process-streams`: the cross-process streams alone, `rounds` rounds.
fn print_process_streams(rounds: usize) {
    let mut rates: [Vec<f64>; 4] = Default::default();
    for round in 0..rounds {
        process_stream_round(round, &mut rates);
    }
    report_process_streams(&rates);
}

// ---------------------------------------------------------------- each side alone

/// Frames a side moves alone in one turn: fewer than either ring holds (4,096 8-byte frames of 16
/// bytes in 64 KiB, 4,096 rtrb slots), so that neither side ever waits within a turn, and whole
/// batches (54 of `BATCH`), so that the batch writers end each turn exactly.
const TURN: u64 = 54 * BATCH as u64;
/// Turns in a `--sides` measurement: 13.8 M frames each way.
const TURNS: u64 = 4_000;

/// Each side of a stream alone, across the two cores: the writer fills `TURN` frames while the
/// reader waits, then the reader drains them while the writer waits, `TURNS` times. Returns the
/// writer's and the reader's rates in messages a second, each over its own turns only. The lines
/// still travel between the cores as in a stream (the writer writes lines the reader read last,
/// and the reader reads lines the writer wrote), but the two sides never touch a line at the same
/// time, so each runs at its own ceiling. A one-at-a-time stream cannot beat the slower of the
/// two, and runs fastest when the writer is the faster: the ring then stays full, and the reader
/// reads lines the writer left long before.
fn sides(
    mut read: impl FnMut(&mut u64) -> u64 + Send + 'static,
    mut write: impl FnMut(u64) -> u64,
) -> (f64, f64) {
    let turn = Arc::new(AtomicU64::new(0));
    let reader_turn = turn.clone();
    let reader = std::thread::spawn(move || {
        pin_to(1);
        let (mut sum, mut busy) = (0u64, Duration::ZERO);
        for t in 0..TURNS {
            // Acquire: pairs with the writer's Release; not that the ring needs it.
            while reader_turn.load(Ordering::Acquire) != 2 * t + 1 {
                std::hint::spin_loop();
            }
            let start = Instant::now();
            let mut n = 0;
            while n < TURN {
                n += read(&mut sum);
            }
            busy += start.elapsed();
            reader_turn.store(2 * t + 2, Ordering::Release);
        }
        (sum, busy)
    });
    pin_to(0);
    let mut busy = Duration::ZERO;
    for t in 0..TURNS {
        let start = Instant::now();
        let mut i = 0;
        while i < TURN {
            i += write(i);
        }
        busy += start.elapsed();
        turn.store(2 * t + 1, Ordering::Release);
        while turn.load(Ordering::Acquire) != 2 * t + 2 {
            std::hint::spin_loop();
        }
    }
    let (sum, read_busy) = reader.join().unwrap();
    assert_eq!(sum, TURNS * (TURN * (TURN - 1) / 2));
    let frames = (TURNS * TURN) as f64;
    (
        frames / busy.as_secs_f64(),
        frames / read_busy.as_secs_f64(),
    )
}

/// `--sides`: each contender's sides alone, in interleaved rounds; medians, and ratios to rtrb
/// u64's sides.
fn print_sides() {
    type Sides = (&'static str, fn() -> (f64, f64));
    const SIDES: [Sides; 8] = [
        ("rtrb u64", || stream_rtrb_u64(Apart)),
        ("rtrb u128", || stream_rtrb_u128(Apart)),
        ("ringport try_reserve/try_recv", || {
            stream_ringport::<false, _>(Apart)
        }),
        ("ringport try_send/try_recv_into", || {
            stream_ringport_copy::<false, _>(Apart)
        }),
        ("rtrb chunks", || stream_rtrb_chunks(Apart)),
        ("ringport try_send_many/try_recv_many", || {
            stream_ringport_batches(Apart)
        }),
        ("ringport write_batch/try_recv_many", || {
            stream_ringport_write_batch(Apart)
        }),
        ("ringport 64 a frame", || stream_ringport_one_frame(Apart)),
    ];
    const ROUNDS: usize = 5;
    let mut rates: [[Vec<f64>; 2]; 8] = Default::default();
    for _ in 0..ROUNDS {
        for (i, (_, run)) in SIDES.iter().enumerate() {
            let (writer, reader) = run();
            rates[i][0].push(writer);
            rates[i][1].push(reader);
        }
    }
    let rates = rates.map(|sides| sides.map(median));
    let [writer0, reader0] = rates[0];
    println!("each side of an 8 B stream alone, across the cores ({ROUNDS} rounds, medians):");
    for ((name, _), [writer, reader]) in SIDES.iter().zip(rates) {
        println!(
            "  {name:37} writer {:6.1} M/s ({:.2}x)   reader {:6.1} M/s ({:.2}x)",
            writer / 1e6,
            writer / writer0,
            reader / 1e6,
            reader / reader0
        );
    }
}

// ---------------------------------------------------------------- driver

/// A streaming contender: its name, and a run that returns messages a second.
type Stream = (&'static str, fn() -> f64);

/// The streaming contenders, in the order of `--stream-only`'s columns.
const STREAMS: [Stream; 11] = [
    ("rtrb u64", || stream_rtrb_u64(Together)),
    ("rtrb u128", || stream_rtrb_u128(Together)),
    ("ringport busy", || stream_ringport::<false, _>(Together)),
    ("blocking", || stream_ringport::<true, _>(Together)),
    ("try_send", || stream_ringport_copy::<false, _>(Together)),
    ("send", || stream_ringport_copy::<true, _>(Together)),
    ("rtrb chunks", || stream_rtrb_chunks(Together)),
    ("ringport batches", || stream_ringport_batches(Together)),
    ("raw u64 ring", || stream_raw_u64(Together)),
    ("ringport write_batch", || {
        stream_ringport_write_batch(Together)
    }),
    ("ringport 64 a frame", || {
        stream_ringport_one_frame(Together)
    }),
];

/// One round of the blocking contenders (raw futex, ringport, ringport with symmetric fences),
/// `n` round trips each, pushed to `block` in that order; every other round runs them backwards,
/// so that none always runs on a warmer machine.
fn block_round(round: usize, n: u64, block: &mut [Vec<f64>; 3]) {
    const KINDS: [PingPong; 3] = [
        PingPong::RawFutex,
        PingPong::RingportBlocking,
        PingPong::RingportBlockingSymmetric,
    ];
    let order = if round % 2 == 0 { [0, 1, 2] } else { [2, 1, 0] };
    for i in order {
        block[i].push(ping(KINDS[i], n));
    }
}

fn main() {
    if let Ok(arg) = std::env::var(CHILD_ENV) {
        let mut parts = arg.splitn(3, ':');
        let tag = parts.next().unwrap();
        let base = parts.next().unwrap().to_owned();
        let n = parts.next().unwrap().parse().unwrap();
        match ProcessStream::from_tag(tag) {
            Some(kind) => stream_reader(kind, &base, n),
            None => pong(PingPong::from_tag(tag), &base, n),
        }
        return;
    }
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| args.iter().any(|a| a == name);
    let quick = flag("--quick");
    if let Some(at) = args.iter().position(|a| a == "--pause") {
        let pauses = args.get(at + 1).and_then(|n| n.parse().ok());
        STREAM_PAUSE.store(pauses.expect("--pause takes a count"), Ordering::Relaxed);
    }
    if let Some(at) = args.iter().position(|a| a == "--only") {
        // One stream contender, five times: for a profiler.
        let name = args.get(at + 1).expect("--only takes a contender's name");
        let (_, run) = STREAMS
            .into_iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no stream contender {name:?}"));
        for _ in 0..5 {
            print!("{name} {:.1} M/s  ", run() / 1e6);
        }
        println!();
        return;
    }
    if flag("--process-streams") {
        print_process_streams(5);
        return;
    }
    if flag("--stream-only") {
        for _ in 0..5 {
            for (name, run) in STREAMS {
                print!("{name} {:.1} M/s  ", run() / 1e6);
            }
            println!();
        }
        return;
    }
    if flag("--sides") {
        print_sides();
        return;
    }
    if flag("--block-only") {
        // The blocking rows alone, in many short rounds: a sleeping round trip swings 2-3x on a
        // VM from one second to the next, so each round's contenders run back to back and the
        // ratio is taken within the round.
        const ROUNDS: usize = 41;
        let mut block: [Vec<f64>; 3] = Default::default();
        for round in 0..ROUNDS {
            block_round(round, 4_000, &mut block);
        }
        let ratios = |of: usize| median((0..ROUNDS).map(|r| block[of][r] / block[0][r]).collect());
        let (ours, symmetric) = (ratios(1), ratios(2));
        let [raw_ns, ours_ns, symmetric_ns] = block.map(median);
        println!(
            "both sleep, {ROUNDS} rounds, medians: raw futex {raw_ns:.0} ns  ringport {ours_ns:.0} ns  \
             symmetric fences {symmetric_ns:.0} ns; median ratio in a round: ringport {ours:.2}x  \
             symmetric {symmetric:.2}x"
        );
        return;
    }
    let rounds = if quick { 3 } else { 9 };
    println!(
        "ringport SPSC against its baselines: {rounds} interleaved rounds, medians ({} cores)",
        online_cores()
    );

    let mut spin: [Vec<f64>; 3] = Default::default();
    let mut block: [Vec<f64>; 3] = Default::default();
    let mut streams: [Vec<f64>; 11] = Default::default();
    let mut process_streams: [Vec<f64>; 4] = Default::default();
    let mut spin_ratios = Vec::new();
    for round in 0..rounds {
        // Alternate which contender goes first, so neither always runs on a warmer machine.
        let order = if round % 2 == 0 { [0, 1, 2] } else { [2, 1, 0] };
        for &i in &order {
            spin[i].push(ping(
                [PingPong::RawSpin, PingPong::RawSlot, PingPong::RingportSpin][i],
                200_000,
            ));
        }
        spin_ratios.push(spin[2][round] / spin[1][round]);
        block_round(round, 20_000, &mut block);
        let mut stream_order = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        if round % 2 == 1 {
            stream_order.reverse();
        }
        for &i in &stream_order {
            streams[i].push(STREAMS[i].1());
        }
        process_stream_round(round, &mut process_streams);
        eprint!(".");
    }
    eprintln!();
    let [raw, slot, ours] = spin.map(median);
    println!("64 B round trip, busy-poll:   raw atomics {raw:8.0} ns   ringport {ours:8.0} ns   ratio {:.2}x", ours / raw);
    println!(
        "  over the message in its slot: raw slot {slot:8.0} ns   ringport {ours:8.0} ns   ratio {:.2}x (median of the rounds' ratios {:.2}x)",
        ours / slot,
        median(spin_ratios)
    );
    let [raw, ours, symmetric] = block.map(median);
    println!("64 B round trip, both sleep:  raw futex   {raw:8.0} ns   ringport {ours:8.0} ns   ratio {:.2}x", ours / raw);
    println!("  the same, symmetric fences: raw futex   {raw:8.0} ns   ringport {symmetric:8.0} ns   ratio {:.2}x", symmetric / raw);
    report_process_streams(&process_streams);
    let [u64s, u128s, ours, blocking, try_send, send, chunks, batches, raw_u64, in_place, one_frame] =
        streams.map(median);
    println!(
        "8 B frames streamed, threads: rtrb u64  {:8.1} M/s   ringport {:8.1} M/s   ratio {:.2}x",
        u64s / 1e6,
        ours / 1e6,
        ours / u64s
    );
    println!(
        "  the same bytes a message:   rtrb u128 {:8.1} M/s   ringport {:8.1} M/s   ratio {:.2}x",
        u128s / 1e6,
        ours / 1e6,
        ours / u128s
    );
    println!(
        "  ringport's blocking forms:  rtrb u64  {:8.1} M/s   ringport {:8.1} M/s   ratio {:.2}x",
        u64s / 1e6,
        blocking / 1e6,
        blocking / u64s
    );
    println!(
        "  copying, try_send/try_recv_into: rtrb u64 {:5.1} M/s   ringport {:8.1} M/s   ratio {:.2}x",
        u64s / 1e6,
        try_send / 1e6,
        try_send / u64s
    );
    println!(
        "  copying, send/recv_into:     rtrb u64  {:8.1} M/s   ringport {:8.1} M/s   ratio {:.2}x",
        u64s / 1e6,
        send / 1e6,
        send / u64s
    );
    println!(
        "  batches of {BATCH}:             rtrb chunks {:6.1} M/s   ringport {:8.1} M/s   ratio {:.2}x (against rtrb u64 one at a time {:.2}x)",
        chunks / 1e6,
        batches / 1e6,
        batches / chunks,
        batches / u64s
    );
    println!(
        "  batches in place (write_batch): rtrb chunks {:6.1} M/s   ringport {:8.1} M/s   ratio {:.2}x",
        chunks / 1e6,
        in_place / 1e6,
        in_place / chunks
    );
    println!(
        "  {BATCH} u64s in one frame:      rtrb chunks {:6.1} M/s   ringport {:8.1} M/s   ratio {:.2}x",
        chunks / 1e6,
        one_frame / 1e6,
        one_frame / chunks
    );
    println!(
        "  over a raw u64 ring:        raw u64   {:8.1} M/s   ringport {:8.1} M/s   ratio {:.2}x (try_send {:.2}x, send {:.2}x)",
        raw_u64 / 1e6,
        ours / 1e6,
        ours / raw_u64,
        try_send / raw_u64,
        send / raw_u64
    );
}
