//! See `ringport::fuzzing::mpmc_ops`: the body lives in the library, so that `cargo test` replays
//! the corpus on stable.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ringport::fuzzing::mpmc_ops(data));
