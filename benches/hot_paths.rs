//! The in-process hot paths, under criterion, so that `cargo bench` shows a regression: one
//! message written and read back on the same thread (no cross-core traffic: the cost of the
//! code itself), zero-copy and copying, on the SPSC and the MPMC ring.
//!
//! `cargo bench --bench hot_paths` (criterion's options follow `--`).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ringport::{MpmcOptions, SpscOptions};
use std::hint::black_box;

const SIZES: [usize; 3] = [8, 64, 1024];

/// One message written and read back, zero-copy and copying, on a producer and consumer pair
/// (a macro: the SPSC and MPMC endpoints share the method names, not a trait).
macro_rules! write_and_read {
    ($group:expr, $size:expr, $tx:expr, $rx:expr) => {{
        let (size, tx, rx) = ($size, &mut $tx, &mut $rx);
        $group.throughput(Throughput::Bytes(size as u64));
        $group.bench_function(BenchmarkId::new("reserve_commit_recv_release", size), |b| {
            b.iter(|| {
                let mut grant = tx.try_reserve(size).unwrap();
                grant[0] = 1;
                grant.commit();
                let message = rx.try_recv().unwrap();
                black_box(message[0]);
            })
        });
        let msg = vec![7u8; size];
        let mut buf = Vec::with_capacity(size);
        $group.bench_function(BenchmarkId::new("send_recv_into", size), |b| {
            b.iter(|| {
                tx.try_send(black_box(&msg)).unwrap();
                black_box(rx.try_recv_into(&mut buf).unwrap());
            })
        });
    }};
}

fn spsc(c: &mut Criterion) {
    let mut group = c.benchmark_group("spsc");
    for size in SIZES {
        let (mut tx, mut rx) = SpscOptions::new().capacity(64 << 10).in_process().unwrap();
        write_and_read!(group, size, tx, rx);
    }
    group.finish();
}

fn mpmc(c: &mut Criterion) {
    let mut group = c.benchmark_group("mpmc");
    for size in SIZES {
        let ring = MpmcOptions::new()
            .slots(256)
            .slot_size(size)
            .in_process()
            .unwrap();
        let (mut tx, mut rx) = (ring.producer(), ring.consumer());
        write_and_read!(group, size, tx, rx);
    }
    group.finish();
}

criterion_group!(benches, spsc, mpmc);
criterion_main!(benches);
