//! Placeholder until the baseline comparison lands.
fn main() {}
