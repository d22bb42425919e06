//! Typed messages: a `#[repr(C)]` struct of plain data, written and read in place on an SPSC
//! ring made for it. A consumer built for another layout is refused when it opens the ring.
//!
//! `cargo run --release --example typed`

use ringport::typed::Message;
use ringport::{Error, SpscOptions};

#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable, Message)]
#[repr(C)]
struct Quote {
    bid: f64,
    ask: f64,
    instrument: u32,
    venue: u32,
}

/// What a consumer built from an older version of `Quote` would have.
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable, Message)]
#[repr(C)]
struct OldQuote {
    bid: f64,
    ask: f64,
    instrument: u64,
}

fn main() -> Result<(), Error> {
    let name = format!("ringport-example-typed-{}", std::process::id());
    let options = SpscOptions::new().capacity(1 << 16);
    let mut producer = options.typed::<Quote>().create_producer(name.as_str())?;
    // The same size, another layout: refused, never misread.
    match options.typed::<OldQuote>().open_consumer(name.as_str()) {
        Err(Error::TypeMismatch { .. }) => println!("a consumer of another layout is refused"),
        other => panic!("expected a type mismatch, got {other:?}"),
    }
    let mut consumer = options.typed::<Quote>().open_consumer(name.as_str())?;
    for i in 0..1000u32 {
        let mut quote = producer.reserve()?;
        quote.bid = f64::from(i);
        quote.ask = f64::from(i) + 0.5;
        quote.instrument = i;
        quote.venue = 3;
        quote.commit();
        let got = consumer.recv()?;
        assert_eq!((got.instrument, got.ask), (i, f64::from(i) + 0.5));
    }
    println!("1000 quotes written and read in place");
    Ok(())
}

#[test]
fn runs() {
    main().unwrap();
}
