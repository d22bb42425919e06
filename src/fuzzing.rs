//! The bodies of the fuzz targets, in one place: the `fuzz/` crate's targets call them, and so
//! does `tests/fuzz_replay.rs`, which replays the checked-in corpus and every crash input found
//! on stable. Not part of the API: hidden, and free to change.
//!
//! Each body reads its input as a little program (a byte picks an operation, the next bytes its
//! arguments), runs it against a ring over heap memory, and panics on anything a serious user
//! would call a bug: a result that differs from a model, a broken invariant, a frame out of
//! bounds. A typed error for a corrupt segment is the right answer and passes.

use std::collections::VecDeque;
use std::time::Duration;

use crate::error::Error;
use crate::mpmc::MpmcOptions;
use crate::spsc::SpscOptions;
use crate::sync::Ordering;
use crate::wait::Doorbell;

/// Operations per input at most: keeps every input's run short.
const MAX_OPS: usize = 2048;

/// The input, read a byte or a word at a time; zeros once it runs out.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }
    fn u64(&mut self) -> u64 {
        (0..8).fold(0, |v, i| v | u64::from(self.byte()) << (8 * i))
    }
    fn done(&self) -> bool {
        self.0.is_empty()
    }
}

/// The bytes of the `seq`th frame a body writes.
fn pattern(seq: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (seq as usize).wrapping_mul(131).wrapping_add(i) as u8)
        .collect()
}

/// How much of a `len`-byte grant to commit, as the byte `how` says: all, part, or none
/// (an abort).
fn commit_len(how: u8, len: usize) -> usize {
    match how % 3 {
        0 => len,
        1 => usize::from(how) % (len + 1),
        _ => 0,
    }
}

/// SPSC operations against a `VecDeque` model, compared after every step, with the positions'
/// invariants checked.
pub fn spsc_ops(data: &[u8]) {
    let mut input = Input(data);
    let capacity = 64usize << (input.byte() % 6);
    let largest = capacity / 2 - 16;
    let max_frame = 1 + usize::from(input.u16()) % largest;
    let (mut producer, mut consumer) = SpscOptions::new()
        .capacity(capacity)
        .max_frame(max_frame)
        .in_process()
        .expect("valid geometry");
    let mut model: VecDeque<Vec<u8>> = VecDeque::new();
    // Whether the consumer has found the ring empty since it last read (it then frees all).
    let mut caught_up = true;
    let mut seq = 0u32;
    for _ in 0..MAX_OPS {
        if input.done() {
            break;
        }
        match input.byte() % 6 {
            0 | 1 => {
                let len = 1 + usize::from(input.u16()) % max_frame;
                let how = input.byte();
                match producer.try_reserve(len) {
                    Ok(mut grant) => {
                        let bytes = pattern(seq, len);
                        grant.copy_from_slice(&bytes);
                        let n = commit_len(how, len);
                        grant.commit_len(n);
                        if n > 0 {
                            model.push_back(bytes[..n].to_vec());
                        }
                        seq += 1;
                    }
                    Err(Error::Full) => assert!(
                        !(model.is_empty() && caught_up),
                        "an empty ring refused a frame of {len} bytes"
                    ),
                    Err(e) => panic!("try_reserve({len}): {e}"),
                }
            }
            2 => {
                assert!(matches!(
                    producer.try_reserve(0),
                    Err(Error::InvalidLength { .. })
                ));
                assert!(matches!(
                    producer.try_send(&vec![0; max_frame + 1]),
                    Err(Error::InvalidLength { .. })
                ));
                let batch: Vec<Vec<u8>> = (0..input.byte() % 8)
                    .map(|i| {
                        pattern(
                            seq + u32::from(i),
                            1 + usize::from(input.byte()) % max_frame,
                        )
                    })
                    .collect();
                match producer.try_send_many(&batch) {
                    Ok(n) => {
                        assert!(n > 0 || batch.is_empty());
                        model.extend(batch.into_iter().take(n));
                        seq += n as u32;
                    }
                    Err(Error::Full) => assert!(!(model.is_empty() && caught_up)),
                    Err(e) => panic!("try_send_many: {e}"),
                }
            }
            4 => {
                let max = usize::from(input.byte() % 8);
                let mut handed = 0;
                let result = consumer.try_recv_many(max, |frame| {
                    let expected = model.pop_front().expect("a frame the model lacks");
                    assert_eq!(frame, &expected[..]);
                    handed += 1;
                });
                match result {
                    Ok(n) => {
                        assert!(n == handed && n <= max && (n > 0 || max == 0));
                        // Fewer than asked for: the batch ended on an empty ring.
                        caught_up = n < max;
                    }
                    Err(Error::Empty) => {
                        assert!(model.is_empty() && max > 0);
                        caught_up = true;
                    }
                    Err(e) => panic!("try_recv_many: {e}"),
                }
            }
            3 => match (consumer.try_recv(), model.pop_front()) {
                (Ok(frame), Some(expected)) => {
                    assert_eq!(&*frame, &expected[..]);
                    caught_up = false;
                }
                (Err(Error::Empty), None) => caught_up = true,
                (got, expected) => {
                    panic!("try_recv: {:?}, model {expected:?}", got.map(|g| g.len()))
                }
            },
            _ => {
                let len = 1 + usize::from(input.byte()) % max_frame;
                let bytes = pattern(seq, len);
                match producer.try_send(&bytes) {
                    Ok(()) => {
                        model.push_back(bytes);
                        seq += 1;
                    }
                    Err(Error::Full) => assert!(!(model.is_empty() && caught_up)),
                    Err(e) => panic!("try_send: {e}"),
                }
                let mut buf = Vec::new();
                match (consumer.try_recv_into(&mut buf), model.pop_front()) {
                    (Ok(n), Some(expected)) => {
                        assert_eq!((n, &buf), (expected.len(), &expected));
                        caught_up = false;
                    }
                    (Err(Error::Empty), None) => caught_up = true,
                    (got, expected) => panic!("try_recv_into: {got:?}, model {expected:?}"),
                }
            }
        }
        let (written, cached) = producer.positions();
        let (read, freed) = consumer.positions();
        assert!(
            cached <= freed && freed <= read && read <= written,
            "positions out of order: {cached} {freed} {read} {written}"
        );
        assert!(
            written - freed <= capacity as u64,
            "producer past the consumer's lap"
        );
        assert!([cached, freed, read, written].iter().all(|p| p % 8 == 0));
    }
}

/// MPMC operations by three producer and three consumer handles, interleaved in one thread,
/// against a FIFO model (aborted slots are kept as `None` until a consumer skips them).
pub fn mpmc_ops(data: &[u8]) {
    let mut input = Input(data);
    let slots = 2usize << (input.byte() % 4);
    let slot_size = 1 + usize::from(input.byte() % 64);
    let ring = MpmcOptions::new()
        .slots(slots)
        .slot_size(slot_size)
        .in_process()
        .expect("valid geometry");
    let mut producers: Vec<_> = (0..3).map(|_| ring.producer()).collect();
    let mut consumers: Vec<_> = (0..3).map(|_| ring.consumer()).collect();
    let mut model: VecDeque<Option<Vec<u8>>> = VecDeque::new();
    let mut seq = 0u32;
    for _ in 0..MAX_OPS {
        if input.done() {
            break;
        }
        let op = input.byte();
        let producer = &mut producers[usize::from(op >> 4) % 3];
        let consumer = &mut consumers[usize::from(op >> 6) % 3];
        match op % 5 {
            0 | 1 => {
                let len = 1 + usize::from(input.byte()) % slot_size;
                let how = input.byte();
                match producer.try_reserve(len) {
                    Ok(mut grant) => {
                        assert!(model.len() < slots, "a full ring took a message");
                        let bytes = pattern(seq, len);
                        grant.copy_from_slice(&bytes);
                        let n = commit_len(how, len);
                        grant.commit_len(n);
                        model.push_back((n > 0).then(|| bytes[..n].to_vec()));
                        seq += 1;
                    }
                    Err(Error::Full) => assert_eq!(model.len(), slots, "refused with room"),
                    Err(e) => panic!("try_reserve({len}): {e}"),
                }
            }
            2 => {
                assert!(matches!(
                    producer.try_send(&vec![0; slot_size + 1]),
                    Err(Error::InvalidLength { .. })
                ));
            }
            _ => {
                while model.front() == Some(&None) {
                    model.pop_front();
                }
                let mut buf = Vec::new();
                match (consumer.try_recv_into(&mut buf), model.pop_front()) {
                    (Ok(_), Some(Some(expected))) => assert_eq!(buf, expected),
                    (Err(Error::Empty), None) => {}
                    (got, expected) => panic!("try_recv: {got:?}, model {expected:?}"),
                }
            }
        }
    }
}

/// Arbitrary bytes presented as a segment (the first byte picks SPSC or MPMC): attaching either
/// fails with a typed error, or reading yields frames within bounds until a typed error or the
/// end; the producer end never panics either.
pub fn attach(data: &[u8]) {
    let Some((&which, image)) = data.split_first() else {
        return;
    };
    if which % 2 == 0 {
        let Ok((mut producer, mut consumer)) = SpscOptions::new().attach_image(image) else {
            return;
        };
        let max = consumer.max_frame();
        for _ in 0..MAX_OPS {
            match consumer.try_recv() {
                Ok(frame) => assert!(!frame.is_empty() && frame.len() <= max),
                Err(_) => break,
            }
        }
        for i in 0..64u8 {
            if producer.try_send(&[i; 8]).is_err() {
                break;
            }
        }
        for _ in 0..64 {
            if consumer.try_recv().is_err() {
                break;
            }
        }
    } else {
        let Ok(ring) = MpmcOptions::new().attach_image(image) else {
            return;
        };
        let (mut producer, mut consumer) = (ring.producer(), ring.consumer());
        let max = ring.slot_size();
        for _ in 0..MAX_OPS {
            match consumer.try_recv() {
                Ok(message) => assert!(message.len() <= max),
                Err(_) => break,
            }
        }
        for _ in 0..64 {
            if producer.try_send(&[7]).is_err() {
                break;
            }
        }
    }
}

/// Handles work while arbitrary values are written into the words their peers own, between
/// their operations. SPSC (first byte even): frame headers, the producer's position, role and
/// bell words (against the consumer), or the consumer's position (against the producer). MPMC
/// (odd): slot stamps, the counters and the bells. Every result is a frame within bounds or a
/// typed error; nothing panics or hangs.
pub fn hostile_peer(data: &[u8]) {
    let mut input = Input(data);
    if input.byte() % 2 == 1 {
        hostile_mpmc(input);
        return;
    }
    let capacity = 64usize << (input.byte() % 5);
    let max_frame = 1 + usize::from(input.byte()) % (capacity / 2 - 16);
    let (mut producer, mut consumer, memory) = SpscOptions::new()
        .capacity(capacity)
        .max_frame(max_frame)
        .spin(Duration::ZERO)
        .liveness_interval(Duration::from_micros(100))
        .in_process_exposed()
        .expect("valid geometry");
    let header = memory.header();
    let mut seq = 0u32;
    for _ in 0..MAX_OPS {
        if input.done() {
            break;
        }
        match input.byte() % 10 {
            0 => {
                let len = 1 + usize::from(input.byte()) % max_frame;
                if len % 2 == 0 {
                    let _ = producer.try_send(&pattern(seq, len));
                } else {
                    let _ = producer.try_send_many(&[pattern(seq, len), pattern(seq, 1)]);
                }
                seq += 1;
            }
            1 => {
                let offset = (usize::from(input.u16()) % capacity) & !7;
                memory.word(offset).store(input.u64(), Ordering::Relaxed);
            }
            2 => header.positions[0].store(input.u64(), Ordering::Relaxed),
            3 => header.roles[0].owner.store(input.u64(), Ordering::Relaxed),
            4 => header.roles[0]
                .start_time
                .store(input.u64(), Ordering::Relaxed),
            5 => bell(header, input.byte()).scribble(input.u64()),
            6 => match consumer.try_recv() {
                Ok(frame) => assert!(!frame.is_empty() && frame.len() <= max_frame),
                Err(Error::Empty | Error::PeerGone(_) | Error::Corrupted { .. }) => {}
                Err(e) => panic!("try_recv: {e}"),
            },
            7 => {
                let max = 1 + usize::from(input.byte() % 16);
                let mut handed = 0;
                match consumer.try_recv_many(max, |frame| {
                    assert!(!frame.is_empty() && frame.len() <= max_frame);
                    handed += 1;
                }) {
                    Ok(n) => assert!(n == handed && (1..=max).contains(&n)),
                    Err(Error::Empty | Error::PeerGone(_) | Error::Corrupted { .. }) => {
                        assert_eq!(handed, 0);
                    }
                    Err(e) => panic!("try_recv_many: {e}"),
                }
            }
            8 => match consumer.recv_timeout(Duration::from_micros(20)) {
                Ok(frame) => assert!(!frame.is_empty() && frame.len() <= max_frame),
                Err(Error::Timeout | Error::PeerGone(_) | Error::Corrupted { .. }) => {}
                Err(e) => panic!("recv_timeout: {e}"),
            },
            _ => {
                header.positions[1].store(input.u64(), Ordering::Relaxed);
                match producer.send_timeout(&[1; 1], Duration::from_micros(20)) {
                    Ok(()) | Err(Error::Timeout | Error::PeerGone(_) | Error::Corrupted { .. }) => {
                    }
                    Err(e) => panic!("send_timeout: {e}"),
                }
            }
        }
    }
}

/// One of the header's two bells, as the input's `byte` picks it.
fn bell(header: &crate::layout::SegmentHeader, byte: u8) -> Doorbell<'_> {
    if byte % 2 == 0 {
        Doorbell::data(header)
    } else {
        Doorbell::space(header)
    }
}

fn hostile_mpmc(mut input: Input<'_>) {
    let slots = 2usize << (input.byte() % 4);
    let slot_size = 1 + usize::from(input.byte() % 64);
    let ring = MpmcOptions::new()
        .slots(slots)
        .slot_size(slot_size)
        .spin(Duration::ZERO)
        .liveness_interval(Duration::from_micros(100))
        .in_process()
        .expect("valid geometry");
    let (mut producer, mut consumer) = (ring.producer(), ring.consumer());
    let memory = ring.memory();
    let header = memory.header();
    let stride = crate::mpmc::slot::slot_stride(slot_size as u32) as usize;
    for _ in 0..MAX_OPS {
        if input.done() {
            break;
        }
        match input.byte() % 7 {
            0 => {
                let len = 1 + usize::from(input.byte()) % slot_size;
                match producer.try_send(&pattern(0, len)) {
                    Ok(()) | Err(Error::Full | Error::Corrupted { .. }) => {}
                    Err(e) => panic!("try_send: {e}"),
                }
            }
            1 => {
                let slot = usize::from(input.byte()) % slots;
                memory
                    .word(slot * stride)
                    .store(input.u64(), Ordering::Relaxed);
            }
            2 => header.positions[usize::from(input.byte() % 2)]
                .store(input.u64(), Ordering::Relaxed),
            3 => bell(header, input.byte()).scribble(input.u64()),
            4 => match consumer.try_recv() {
                Ok(message) => assert!(message.len() <= slot_size),
                Err(Error::Empty | Error::Corrupted { .. }) => {}
                Err(e) => panic!("try_recv: {e}"),
            },
            5 => match consumer.recv_timeout(Duration::from_micros(20)) {
                Ok(message) => assert!(message.len() <= slot_size),
                Err(Error::Timeout | Error::Corrupted { .. }) => {}
                Err(e) => panic!("recv_timeout: {e}"),
            },
            _ => match producer.send_timeout(&[1], Duration::from_micros(20)) {
                Ok(()) | Err(Error::Timeout | Error::Corrupted { .. }) => {}
                Err(e) => panic!("send_timeout: {e}"),
            },
        }
    }
}

/// A valid segment image of `kind` ("spsc" or "mpmc") holding `frames`, with its first byte set
/// for [`attach`]: seeds for the corpus.
///
/// # Panics
/// If a frame does not fit.
pub fn seed_image(kind: &str, frames: &[&[u8]]) -> Vec<u8> {
    let (which, memory) = if kind == "mpmc" {
        let ring = MpmcOptions::new()
            .slots(8)
            .slot_size(64)
            .in_process()
            .unwrap();
        let mut producer = ring.producer();
        for frame in frames {
            producer.try_send(frame).unwrap();
        }
        (1, ring.memory())
    } else {
        let (mut producer, consumer, memory) = SpscOptions::new()
            .capacity(1024)
            .max_frame(256)
            .in_process_exposed()
            .unwrap();
        for frame in frames {
            producer.try_send(frame).unwrap();
        }
        // Detached ends, as a segment whose users have gone.
        drop((producer, consumer));
        (0, memory)
    };
    let mut image = vec![which];
    image.extend_from_slice(&memory.image());
    image
}

/// What a publish-subscribe body's model knows of one subscriber.
struct ModelSubscriber {
    subscriber: crate::pubsub::Subscriber,
    /// The sequence number of its next message, once it has received one.
    next: Option<u64>,
    /// The publisher's next sequence number when it joined.
    joined_at: u64,
    history: crate::pubsub::History,
}

/// Publish-subscribe operations by one publisher and up to four subscribers, interleaved in one
/// thread, against a model of what each subscriber may see: in order, every message with the
/// bytes committed, none skipped under back-pressure, skips only with a loss count under
/// overwriting. Then, if the input says so, the segment is scribbled on as a hostile peer
/// would (a cursor, `OLDEST`, `NEWEST`, the data): from there on every call must return (only
/// `try_` forms are used) with a value or a typed error, never panic.
pub fn pubsub_ops(data: &[u8]) {
    use crate::pubsub::{History, Overflow, PubSubOptions};
    let mut input = Input(data);
    let first = input.byte();
    let overflow = if first % 2 == 0 {
        Overflow::Block
    } else {
        Overflow::Overwrite
    };
    let capacity = 128usize << (input.byte() % 5);
    let max_message = 1 + usize::from(input.u16()) % (capacity / 2 - 24);
    let options = PubSubOptions::new()
        .capacity(capacity)
        .max_message(max_message)
        .subscribers(4)
        .overflow(overflow)
        .spin(Duration::ZERO);
    let segment = options.heap_segment().expect("valid geometry");
    let memory = crate::os::RingMemory::new(std::sync::Arc::clone(&segment.memory));
    let mut publisher = options.publisher(&segment).expect("a fresh ring");
    let mut committed: Vec<usize> = Vec::new();
    let mut subscribers: Vec<ModelSubscriber> = Vec::new();
    let mut hostile = false;
    for _ in 0..MAX_OPS {
        if input.done() {
            break;
        }
        let op = input.byte();
        match op % 8 {
            0..=2 => {
                let len = usize::from(input.u16()) % (max_message + 1);
                let how = input.byte();
                let seq = publisher.next_seq();
                match publisher.try_reserve(len) {
                    Ok(mut grant) => {
                        assert_eq!(grant.seq(), seq);
                        let bytes = pattern(seq as u32, len);
                        grant.copy_from_slice(&bytes);
                        match how % 3 {
                            0 => grant.commit(),
                            1 => grant.commit_len(usize::from(how) % (len + 1)),
                            _ => drop(grant),
                        }
                        if how % 3 != 2 {
                            let n = if how % 3 == 0 {
                                len
                            } else {
                                usize::from(how) % (len + 1)
                            };
                            committed.push(n);
                        }
                        assert_eq!(publisher.next_seq(), committed.len() as u64);
                    }
                    Err(Error::Full) => {
                        // Nobody has a sample in hand between operations: only back-pressure
                        // from a subscriber that has not read everything refuses a message.
                        assert!(
                            hostile
                                || overflow == Overflow::Block
                                    && subscribers
                                        .iter()
                                        .any(|s| s.next.is_none_or(|n| n < committed.len() as u64)),
                            "refused with nobody behind"
                        );
                    }
                    Err(Error::Corrupted { .. }) if hostile => {}
                    Err(e) => panic!("try_reserve({len}): {e}"),
                }
            }
            3 | 4 => {
                let Some(model) = subscribers.get_mut(usize::from(op >> 4) % 4) else {
                    continue;
                };
                let published = committed.len() as u64;
                match model.subscriber.try_recv() {
                    Ok(sample) => {
                        let seq = sample.seq();
                        if hostile {
                            continue;
                        }
                        assert!(seq < published, "message {seq} of {published}");
                        let len = committed[seq as usize];
                        assert_eq!(&*sample, &pattern(seq as u32, len)[..len], "message {seq}");
                        match model.next {
                            Some(next) => {
                                assert_eq!(seq, next + sample.lost_before(), "after {next}");
                                assert!(
                                    overflow == Overflow::Overwrite || sample.lost_before() == 0
                                );
                            }
                            None if model.history == History::Newest => {
                                assert!(
                                    seq + 1 >= model.joined_at,
                                    "joined at {}",
                                    model.joined_at
                                );
                            }
                            None => {}
                        }
                        model.next = Some(seq + 1);
                    }
                    Err(Error::Empty) => assert!(
                        hostile
                            || overflow == Overflow::Overwrite
                            || model.next.is_none_or(|n| n == published),
                        "empty with messages to read"
                    ),
                    Err(Error::Corrupted { .. } | Error::Dropped) if hostile => {}
                    Err(e) => panic!("try_recv: {e}"),
                }
            }
            5 => {
                let index = usize::from(op >> 4) % 5;
                if index < subscribers.len() {
                    subscribers.swap_remove(index);
                } else {
                    let history = if op & 0x80 == 0 {
                        History::Newest
                    } else {
                        History::Oldest
                    };
                    match options.clone().history(history).subscriber(&segment) {
                        Ok(subscriber) => subscribers.push(ModelSubscriber {
                            subscriber,
                            next: None,
                            joined_at: publisher.next_seq(),
                            history,
                        }),
                        Err(Error::NoFreeSlot { .. }) => assert!(hostile || subscribers.len() == 4),
                        Err(Error::Corrupted { .. }) if hostile => {}
                        Err(e) => panic!("subscribe: {e}"),
                    }
                }
            }
            6 if first & 0x80 != 0 => {
                hostile = true;
                let value = input.u64();
                match input.byte() % 4 {
                    0 => memory
                        .subscriber(usize::from(op >> 4) % 4)
                        .cursor
                        .store(value, Ordering::Relaxed),
                    1 => memory.header().positions[1].store(value, Ordering::Relaxed),
                    2 => memory.header().positions[0].store(value, Ordering::Relaxed),
                    _ => {
                        let offset = (usize::from(input.u16()) % capacity) & !7;
                        memory.word(offset).store(value, Ordering::Relaxed);
                    }
                }
            }
            _ => {
                assert!(matches!(
                    publisher.try_send(&vec![0; max_message + 1]),
                    Err(Error::InvalidLength { .. })
                ));
            }
        }
    }
}
