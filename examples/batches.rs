//! Small frames go fastest in batches: `send_many` publishes a slice of frames at once,
//! `write_batch` hands out each frame's bytes to fill in place and publishes them at once, and
//! `recv_many` hands each frame that is ready to a closure, in place. Two threads here; the ring
//! works the same between processes.
//!
//! `cargo run --release --example batches`

use ringport::{Error, SpscOptions};

const NUMBERS: u64 = 1_000_000;
const BATCH: u64 = 64;

fn main() -> Result<(), Error> {
    let (mut producer, mut consumer) = SpscOptions::new().capacity(1 << 16).in_process()?;
    let writer = std::thread::spawn(move || -> Result<(), Error> {
        let mut copies = Vec::with_capacity(BATCH as usize);
        for start in (0..NUMBERS).step_by(BATCH as usize) {
            let end = (start + BATCH).min(NUMBERS);
            if start / BATCH % 2 == 0 {
                // Copied from a slice; waits for room as `send` does.
                copies.clear();
                copies.extend((start..end).map(u64::to_le_bytes));
                producer.send_many(&copies)?;
                continue;
            }
            // Written in place: each frame is filled where it lies, then all are published.
            let mut next = start;
            while next < end {
                let mut batch = producer.write_batch();
                while next < end {
                    match batch.try_push(8) {
                        Ok(frame) => frame.copy_from_slice(&next.to_le_bytes()),
                        Err(Error::Full) => break,
                        Err(e) => return Err(e),
                    }
                    next += 1;
                }
                if batch.commit() == 0 {
                    // The ring is full: let the reader catch up.
                    std::thread::yield_now();
                }
            }
        }
        Ok(())
    });
    let (mut sum, mut received) = (0u64, 0u64);
    while received < NUMBERS {
        received += consumer.recv_many(usize::MAX, |frame| {
            sum += u64::from_le_bytes(frame.try_into().expect("8-byte frames"));
        })? as u64;
    }
    writer.join().expect("the writer panicked")?;
    assert_eq!(sum, NUMBERS * (NUMBERS - 1) / 2);
    println!("{received} numbers in batches of up to {BATCH}, sum {sum}");
    Ok(())
}

#[test]
fn runs() {
    main().unwrap();
}
