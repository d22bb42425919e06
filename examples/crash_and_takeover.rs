//! A producer process dies with `kill -9` in the middle of a write: the consumer receives what
//! was committed before, then hears that its peer is gone; a new producer takes the dead one's
//! role over, and the half-written frame has left nothing behind.
//!
//! `cargo run --release --example crash_and_takeover`

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use ringport::{Error, Role, SpscOptions};

/// Set in the child: the ring's name.
const RING_ENV: &str = "RINGPORT_EXAMPLE_RING";

fn options() -> SpscOptions {
    // A peer's death is delivered as it happens (a watch on its process); the liveness
    // interval bounds the notice only where the kernel cannot watch it (another pid namespace).
    SpscOptions::new()
        .capacity(1 << 16)
        .liveness_interval(Duration::from_millis(20))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if let Ok(name) = std::env::var(RING_ENV) {
        return doomed_producer(&name);
    }
    let name = format!("ringport-example-{}", std::process::id());
    let mut consumer = options().create_consumer(&name)?;
    let mut child = Command::new(std::env::current_exe()?)
        .env(RING_ENV, &name)
        .stdout(Stdio::piped())
        .spawn()?;
    // Wait until the child has committed its frames and started one it will never finish.
    let mut line = String::new();
    let mut child_out = BufReader::new(child.stdout.take().expect("piped"));
    while !line.trim_end().ends_with("mid-write") {
        line.clear();
        if child_out.read_line(&mut line)? == 0 {
            return Err("the producer died early".into());
        }
    }
    child.kill()?; // SIGKILL: no destructor runs in the child.
    child.wait()?;
    let mut received = 0;
    loop {
        match consumer.recv_timeout(Duration::from_secs(10)) {
            Ok(frame) => {
                assert_eq!(&*frame, format!("frame {received}").as_bytes());
                received += 1;
            }
            Err(Error::PeerGone(Role::Producer)) => break,
            Err(e) => return Err(e.into()),
        }
    }
    println!("{received} committed frames received, then: the producer has gone");
    // The dead producer's role can be taken over; its aborted grant is not delivered.
    let mut producer = options().open_producer(&name)?;
    producer.send(b"a new producer")?;
    assert_eq!(&*consumer.recv()?, b"a new producer");
    println!("a new producer took the role over");
    Ok(())
}

fn doomed_producer(name: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut producer = options().open_producer(name)?;
    for i in 0..10 {
        producer.send(format!("frame {i}").as_bytes())?;
    }
    let mut grant = producer.reserve(100)?;
    grant.fill(0xEE);
    // Straight to stdout, not through `println!`, which a test harness would capture.
    let mut out = std::io::stdout();
    writeln!(out, "mid-write")?;
    out.flush()?;
    std::thread::sleep(Duration::from_secs(60));
    grant.commit();
    Ok(())
}

#[test]
fn runs() {
    main().unwrap();
}
