//! A job queue: many producers and consumers share an MPMC ring of fixed-size slots, and each
//! job goes to exactly one consumer. Threads here; open the ring by name from other processes
//! (`MpmcOptions::create` / `open`) to share it between them.
//!
//! `cargo run --release --example mpmc_jobs`

use std::time::Duration;

use ringport::MpmcOptions;

const PRODUCERS: u64 = 2;
const CONSUMERS: usize = 3;
const JOBS_EACH: u64 = 10_000;
/// The job that tells a consumer to stop.
const STOP: u64 = u64::MAX;

fn main() -> Result<(), ringport::Error> {
    let ring = MpmcOptions::new().slots(256).slot_size(16).in_process()?;
    let done: Vec<(u64, u64)> = std::thread::scope(|s| {
        let consumers: Vec<_> = (0..CONSUMERS)
            .map(|_| {
                let mut consumer = ring.consumer();
                s.spawn(move || {
                    let (mut count, mut sum) = (0u64, 0u64);
                    loop {
                        let job = consumer.recv().expect("recv");
                        let id = u64::from_le_bytes(job[..8].try_into().expect("8 bytes"));
                        if id == STOP {
                            return (count, sum);
                        }
                        count += 1;
                        sum += id;
                    }
                })
            })
            .collect();
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let mut producer = ring.producer();
                s.spawn(move || {
                    for i in 0..JOBS_EACH {
                        let id = p * JOBS_EACH + i;
                        producer
                            .send_timeout(&id.to_le_bytes(), Duration::from_secs(10))
                            .expect("send");
                    }
                })
            })
            .collect();
        for producer in producers {
            producer.join().expect("a producer panicked");
        }
        // Every job is in the ring before these: each consumer takes one and stops.
        let mut stopper = ring.producer();
        for _ in 0..CONSUMERS {
            stopper.send(&STOP.to_le_bytes()).expect("send");
        }
        consumers
            .into_iter()
            .map(|c| c.join().expect("a consumer panicked"))
            .collect()
    });
    let jobs = PRODUCERS * JOBS_EACH;
    let (count, sum) = done
        .iter()
        .fold((0, 0), |(c, s), (count, sum)| (c + count, s + sum));
    assert_eq!(
        (count, sum),
        (jobs, jobs * (jobs - 1) / 2),
        "a job lost or done twice"
    );
    let shares: Vec<u64> = done.iter().map(|(count, _)| *count).collect();
    println!("{jobs} jobs, each done once; shares of the {CONSUMERS} consumers: {shares:?}");
    Ok(())
}

#[test]
fn runs() {
    main().unwrap();
}
