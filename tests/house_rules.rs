//! Rules of the house that the compiler does not check.

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every atomic and shared cell of the library comes from `src/sync.rs`, so that `--cfg loom`
/// swaps them all: an atomic imported anywhere else would escape the model checker unseen.
#[test]
fn atomics_and_cells_come_only_from_the_sync_module() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 5, "found only {files:?}");
    let mut offenders = Vec::new();
    for file in files {
        if file.ends_with("sync.rs") && file.parent() == Some(src.as_path()) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if code.contains("sync::atomic") || code.contains("UnsafeCell") {
                offenders.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "use crate::sync instead:\n{}",
        offenders.join("\n")
    );
}
