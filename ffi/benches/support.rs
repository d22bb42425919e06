//! What the C ABI's benches share: compiling their C side against the static library.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Compiles `ffi/benches/{source}` (C11, -O2, warnings as errors) against `libringport_c.a`,
/// which `cargo bench -p ringport-ffi` builds beside the bench; returns the program's path, in
/// the temporary directory, for the caller to remove.
pub fn c_program(source: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let lib = [deps, deps.parent().unwrap()]
        .into_iter()
        .map(|d| d.join("libringport_c.a"))
        .find(|p| p.exists())
        .expect("libringport_c.a (cargo build --release -p ringport-ffi)");
    let out = std::env::temp_dir().join(format!(
        "ringport-{}-{}",
        source.trim_end_matches(".c"),
        std::process::id()
    ));
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(cc)
        .args(["-std=c11", "-O2", "-Wall", "-Werror", "-I"])
        .arg(root.join("include"))
        .arg(root.join("ffi/benches").join(source))
        .arg(lib)
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success(), "{source} did not compile");
    out
}
