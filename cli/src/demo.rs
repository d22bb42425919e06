//! `ringport demo`: a producer here, a consumer in a child process, a checksum at both ends.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ringport::SpscOptions;

/// Options of `ringport demo`.
#[derive(clap::Args)]
pub struct DemoArgs {
    /// Messages to send.
    #[arg(long, default_value_t = 2_000_000)]
    messages: u64,
    /// Largest message in bytes (sizes are drawn from 1 up to this; at least 16).
    #[arg(long, default_value_t = 1024)]
    max_size: usize,
    /// Ring data area in bytes (a power of two).
    #[arg(long, default_value_t = 1 << 20)]
    capacity: usize,
}

/// Options of the hidden peer.
#[derive(clap::Args)]
pub struct PeerArgs {
    #[arg(long)]
    name: String,
    #[arg(long)]
    messages: u64,
}

type BoxError = Box<dyn std::error::Error>;

/// A running checksum over the frames, eight bytes at a time (a byte-wise hash would measure the
/// hash, not the ring): any lost, duplicated, reordered or altered byte changes it.
#[derive(Clone, Copy)]
struct Checksum(u64);

impl Checksum {
    fn new() -> Self {
        Checksum(0xcbf2_9ce4_8422_2325)
    }
    fn mix(&mut self, word: u64) {
        self.0 = (self.0 ^ word)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(29);
    }
    fn update(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.mix(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        }
        let mut tail = [0u8; 8];
        tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        self.mix(u64::from_le_bytes(tail) ^ (bytes.len() as u64) << 56);
    }
}

/// A cheap pseudo-random sequence (xorshift64*), the same in both processes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

pub fn run(args: &DemoArgs) -> Result<(), BoxError> {
    let max_size = args.max_size.max(16);
    let name = format!("ringport-demo-{}", std::process::id());
    let mut producer = SpscOptions::new()
        .capacity(args.capacity)
        .max_frame(max_size)
        .create_producer(&name)?;
    let mut child = Command::new(std::env::current_exe()?)
        .args([
            "demo-peer",
            "--name",
            &name,
            "--messages",
            &args.messages.to_string(),
        ])
        .stdout(Stdio::piped())
        .spawn()?;

    println!(
        "streaming {} messages of 1..={} bytes through a {} KiB ring to process {}",
        args.messages,
        max_size,
        args.capacity / 1024,
        child.id()
    );
    let mut sum = Checksum::new();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut bytes = 0u64;
    let start = Instant::now();
    for seq in 0..args.messages {
        let len = 1 + (rng.next() % max_size as u64) as usize;
        let mut grant = producer.reserve_timeout(len, Duration::from_secs(10))?;
        let tag = seq.to_le_bytes();
        let n = len.min(8);
        grant[..n].copy_from_slice(&tag[..n]);
        let fill = (seq as u8).wrapping_mul(31);
        grant[n..].fill(fill);
        sum.update(&grant);
        grant.commit();
        bytes += len as u64;
    }
    let elapsed = start.elapsed();

    let mut peer_line = String::new();
    BufReader::new(child.stdout.take().ok_or("no pipe")?).read_line(&mut peer_line)?;
    let status = child.wait()?;
    let peer_sum = peer_line
        .trim()
        .strip_prefix("checksum ")
        .and_then(|s| u64::from_str_radix(s, 16).ok());
    let secs = elapsed.as_secs_f64();
    println!(
        "{:.2} M messages/s, {:.2} GB/s ({} bytes in {:.3} s)",
        args.messages as f64 / secs / 1e6,
        bytes as f64 / secs / 1e9,
        bytes,
        secs
    );
    match peer_sum {
        Some(s) if s == sum.0 && status.success() => {
            println!("checksum {:016x} matches at both ends", sum.0);
            Ok(())
        }
        _ => Err(format!(
            "checksum mismatch: sent {:016x}, peer said {:?} ({status})",
            sum.0,
            peer_line.trim()
        )
        .into()),
    }
}

pub fn peer(args: &PeerArgs) -> Result<(), BoxError> {
    let mut consumer = SpscOptions::new().open_consumer(&args.name)?;
    let mut sum = Checksum::new();
    for seq in 0..args.messages {
        let frame = consumer.recv_timeout(Duration::from_secs(10))?;
        let n = frame.len().min(8);
        if frame[..n] != seq.to_le_bytes()[..n] {
            return Err(format!("message {seq} arrived out of order").into());
        }
        sum.update(&frame);
    }
    println!("checksum {:016x}", sum.0);
    Ok(())
}
