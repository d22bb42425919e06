//! An SPSC ring between two processes: this one creates it by name and writes frames in place,
//! a child process (this program again) opens it and reads them in place.
//!
//! `cargo run --release --example spsc_in_place`

use std::process::Command;

use ringport::SpscOptions;

/// Set in the child: the ring's name.
const RING_ENV: &str = "RINGPORT_EXAMPLE_RING";
const FRAMES: u64 = 100_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if let Ok(name) = std::env::var(RING_ENV) {
        return consume(&name);
    }
    // The creator unlinks the name when it drops its end.
    let name = format!("ringport-example-{}", std::process::id());
    let mut producer = SpscOptions::new()
        .capacity(1 << 16)
        .create_producer(&name)?;
    let mut child = Command::new(std::env::current_exe()?)
        .env(RING_ENV, &name)
        .spawn()?;
    for seq in 0..FRAMES {
        // Reserve room for the largest frame we might write, fill what we need, commit that.
        let mut grant = producer.reserve(64)?;
        grant[..8].copy_from_slice(&seq.to_le_bytes());
        let len = 8 + (seq % 56) as usize;
        grant[8..len].fill(seq as u8);
        grant.commit_len(len);
    }
    // Dropping the producer detaches it: the consumer reads what was committed, then hears
    // that the producer has gone.
    drop(producer);
    assert!(child.wait()?.success(), "the consumer failed");
    println!("{FRAMES} frames written in place and read in place by another process");
    Ok(())
}

fn consume(name: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut consumer = SpscOptions::new().open_consumer(name)?;
    let mut seq = 0u64;
    loop {
        let frame = match consumer.recv() {
            Ok(frame) => frame,
            Err(ringport::Error::PeerGone(_)) => break,
            Err(e) => return Err(e.into()),
        };
        // The frame is read where the producer wrote it, and released when `frame` drops.
        assert_eq!(u64::from_le_bytes(frame[..8].try_into()?), seq);
        assert_eq!(frame.len(), 8 + (seq % 56) as usize);
        assert!(frame[8..].iter().all(|&b| b == seq as u8));
        seq += 1;
    }
    assert_eq!(seq, FRAMES);
    Ok(())
}

#[test]
fn runs() {
    main().unwrap();
}
