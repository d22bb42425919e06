//! The fuzz targets' bodies on stable: every input in the checked-in corpus (`fuzz/corpus/`) and
//! every crash input found (`fuzz/regressions/`) is replayed, then a few thousand seeded random
//! inputs per target. The bodies panic on a bug, so a bad input fails here as it did in the fuzzer.

use std::path::Path;

use rand::{Rng, SeedableRng};
use ringport::fuzzing;

/// Replays the corpus and the regressions of `target`; returns how many inputs ran.
fn replay(target: &str, body: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut count = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        let mut paths: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        paths.sort();
        for path in paths {
            let bytes = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| body(&bytes));
            assert!(outcome.is_ok(), "{target}: input {} fails", path.display());
            count += 1;
        }
    }
    count
}

/// Random programs: lengths up to 512 bytes, seeded, so that a failure reproduces.
fn random(body: fn(&[u8]), seed: u64, runs: usize) {
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    for run in 0..runs {
        let len = rng.random_range(0..512);
        let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        let outcome = std::panic::catch_unwind(|| body(&bytes));
        assert!(outcome.is_ok(), "seed {seed}, run {run}: input {bytes:?}");
    }
}

#[test]
fn spsc_ops() {
    assert!(replay("spsc_ops", fuzzing::spsc_ops) > 0, "no corpus");
    random(fuzzing::spsc_ops, 1, 2000);
}

#[test]
fn mpmc_ops() {
    assert!(replay("mpmc_ops", fuzzing::mpmc_ops) > 0, "no corpus");
    random(fuzzing::mpmc_ops, 2, 2000);
}

#[test]
fn pubsub_ops() {
    assert!(replay("pubsub_ops", fuzzing::pubsub_ops) > 0, "no corpus");
    random(fuzzing::pubsub_ops, 5, 2000);
}

#[test]
fn attach() {
    assert!(replay("attach", fuzzing::attach) > 0, "no corpus");
    // Random bytes seldom pass the magic: mutate valid images instead.
    let mut rng = rand::rngs::SmallRng::seed_from_u64(3);
    for kind in ["spsc", "mpmc"] {
        let image = fuzzing::seed_image(kind, &[b"one", &[7; 40], b"three"]);
        for run in 0..500 {
            let mut bytes = image.clone();
            for _ in 0..rng.random_range(1..8) {
                let i = rng.random_range(1..bytes.len());
                bytes[i] = rng.random();
            }
            if rng.random_bool(0.1) {
                bytes.truncate(rng.random_range(1..bytes.len()));
            }
            let outcome = std::panic::catch_unwind(|| fuzzing::attach(&bytes));
            assert!(outcome.is_ok(), "{kind} run {run}");
        }
    }
}

#[test]
fn hostile_peer() {
    assert!(
        replay("hostile_peer", fuzzing::hostile_peer) > 0,
        "no corpus"
    );
    random(fuzzing::hostile_peer, 4, 300);
}

/// Writes the seed corpus (run by hand: `cargo test --release --test fuzz_replay -- --ignored`);
/// the checked-in corpus is these seeds plus what the fuzzer kept, minimized.
#[test]
#[ignore = "writes fuzz/corpus; run by hand"]
fn write_seed_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    };
    write(
        "attach",
        "seed-spsc",
        &fuzzing::seed_image("spsc", &[b"one", &[7; 40], b"three"]),
    );
    write(
        "attach",
        "seed-mpmc",
        &fuzzing::seed_image("mpmc", &[b"one", &[7; 40], b"three"]),
    );
    // Send, receive, wrap: op bytes as the bodies read them.
    let ops: Vec<u8> = [2u8, 40, 0]
        .into_iter()
        .chain((0..200).flat_map(|i| [0, (i * 7) as u8, 0, 0, 3]))
        .collect();
    write("spsc_ops", "seed-wrap", &ops);
    let ops: Vec<u8> = [1u8, 8]
        .into_iter()
        .chain((0..100).flat_map(|i: u8| [i.wrapping_mul(16), 5, 0, 3 | (i << 6)]))
        .collect();
    write("mpmc_ops", "seed-fill", &ops);
    let ops: Vec<u8> = [1u8, 30]
        .into_iter()
        .chain((0..50).flat_map(|i: u8| [0, i, 6, 1, i, 0, 0xFF, 0, 0, 0, 0, 0, 0, 0, 8]))
        .collect();
    write("hostile_peer", "seed-scribble", &ops);
}
