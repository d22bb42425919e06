//! A Channel between a server and a client process: small messages go through the Unix socket,
//! a stream or a large message moves the sender onto a sealed shared-memory ring, and every
//! message arrives in the order sent, whichever path it took.
//!
//! `cargo run --release --example channel`

use std::process::Command;

use ringport::{Channel, Listener};

/// Set in the client: the address to connect to.
const ADDRESS_ENV: &str = "RINGPORT_EXAMPLE_CHANNEL";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if let Ok(address) = std::env::var(ADDRESS_ENV) {
        return client(&address);
    }
    // '@': an abstract socket name, gone with the listener (even after a crash).
    let address = format!("@ringport-example-{}", std::process::id());
    let listener = Listener::bind(&address)?;
    let mut client = Command::new(std::env::current_exe()?)
        .env(ADDRESS_ENV, &address)
        .spawn()?;
    // Only processes of our own uid get in, by default.
    let mut channel = listener.accept()?;
    let mut buf = Vec::new();
    let mut total = 0;
    for _ in 0..1002 {
        total += channel.recv(&mut buf)?;
    }
    channel.send(&total.to_le_bytes())?;
    assert!(client.wait()?.success(), "the client failed");
    let received = channel.received();
    println!(
        "received {total} bytes in 1002 messages: {} through the socket, {} through the ring \
         ({} path changes)",
        received.socket, received.ring, received.switches
    );
    Ok(())
}

fn client(address: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut channel = Channel::connect(address)?;
    // One small message: the socket. A stream of them: the ring, once it pays for its set-up.
    channel.send(b"hello")?;
    for i in 0..1000u32 {
        channel.send(&i.to_le_bytes())?;
    }
    // A large message: the ring, in chunks, reassembled by the receiver.
    channel.send(&vec![7u8; 8 << 20])?;
    let mut buf = Vec::new();
    channel.recv(&mut buf)?;
    let total = usize::from_le_bytes(buf[..].try_into()?);
    assert_eq!(total, 5 + 4 * 1000 + (8 << 20));
    Ok(())
}

#[test]
fn runs() {
    main().unwrap();
}
