//! See `ringport::fuzzing::pubsub_ops`: the body lives in the library, so that `cargo test`
//! replays the corpus on stable.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ringport::fuzzing::pubsub_ops(data));
