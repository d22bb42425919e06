//! Small frames go fastest in batches: `send_many` publishes a slice of frames at once, and
//! `recv_many` hands each frame that is ready to a closure, in place. Two threads here; the ring
//! works the same between processes.
//!
//! `cargo run --release --example batches`

use ringport::SpscOptions;

const NUMBERS: u64 = 1_000_000;
const BATCH: u64 = 64;

fn main() -> Result<(), ringport::Error> {
    let (mut producer, mut consumer) = SpscOptions::new().capacity(1 << 16).in_process()?;
    let writer = std::thread::spawn(move || -> Result<(), ringport::Error> {
        let mut batch = Vec::with_capacity(BATCH as usize);
        for start in (0..NUMBERS).step_by(BATCH as usize) {
            batch.clear();
            batch.extend((start..(start + BATCH).min(NUMBERS)).map(u64::to_le_bytes));
            // Waits for room as `send` does.
            producer.send_many(&batch)?;
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
