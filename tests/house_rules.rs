//! Rules of the house that the compiler does not check: where atomics and loom may appear, and
//! how the library's modules may depend on each other.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, with its text.
fn rust_files(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path, text));
            }
        }
    }
    assert!(out.len() > 20, "found only {out:?}");
    out
}

/// The code of a line, without its `//` comment (and so without doc comments).
fn code(line: &str) -> &str {
    line.split("//").next().unwrap_or("")
}

/// The library's top-level module a file belongs to (`wait` for src/wait.rs, `os` for
/// src/os/linux/futex.rs).
fn top_module(file: &Path) -> String {
    let relative = file.strip_prefix(src()).unwrap();
    let first = relative.components().next().unwrap().as_os_str();
    first.to_string_lossy().trim_end_matches(".rs").to_owned()
}

/// Every atomic and shared cell of the library comes from `src/sync.rs`, so that `--cfg loom`
/// swaps them all: an atomic imported anywhere else would escape the model checker unseen. The
/// OS model's own bookkeeping (its clock) is the one exception: it must stay outside the model.
#[test]
fn atomics_and_cells_come_only_from_the_sync_module() {
    let (src, mut offenders) = (src(), Vec::new());
    for (file, text) in rust_files(&src) {
        if file == src.join("sync.rs") || file.starts_with(src.join("os/model")) {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            if code(line).contains("sync::atomic") || code(line).contains("UnsafeCell") {
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

/// loom is the business of the OS boundary (its model) and of the sync module alone: above
/// them the code is one program, whatever it runs over.
#[test]
fn only_the_os_boundary_and_the_sync_module_mention_loom() {
    let (src, mut offenders) = (src(), Vec::new());
    for (file, text) in rust_files(&src) {
        if file == src.join("sync.rs") || file.starts_with(src.join("os")) {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            if code(line).contains("cfg(loom)")
                || code(line).contains("cfg(not(loom))")
                || code(line).contains("loom::")
                || code(line).contains("cfg!(loom)")
            {
                offenders.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(offenders.is_empty(), "{}", offenders.join("\n"));
}

/// The modules `file` names through `crate::` paths (not the crate root's re-exports: a path
/// must name the module that owns the item).
fn crate_references(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines().map(code) {
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            names.insert(name);
        }
    }
    names
}

#[test]
fn paths_name_the_owning_module_and_the_modules_form_no_circle() {
    let src = src();
    let modules: BTreeSet<String> = rust_files(&src)
        .iter()
        .map(|(file, _)| top_module(file))
        .filter(|m| m != "lib")
        .collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut through_root = Vec::new();
    for (file, text) in rust_files(&src) {
        let from = top_module(&file);
        for name in crate_references(&text) {
            if modules.contains(&name) {
                if name != from {
                    graph.entry(from.clone()).or_default().insert(name);
                }
            } else {
                // `crate::Error`, `crate::SpscOptions`: through the root's re-exports.
                through_root.push(format!("{}: crate::{name}", file.display()));
            }
        }
    }
    assert!(
        through_root.is_empty(),
        "name the owning module:\n{}",
        through_root.join("\n")
    );
    // The leaves: the header's words and the errors know nothing above them.
    for leaf in ["layout", "error", "sync"] {
        let above: Vec<&String> = graph
            .get(leaf)
            .into_iter()
            .flatten()
            .filter(|m| !["error", "sync"].contains(&m.as_str()))
            .collect();
        assert!(above.is_empty(), "{leaf} depends on {above:?}");
    }
    // No circle: a depth-first walk never meets a module it is still inside.
    fn walk(
        module: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if done.contains(module) {
            return;
        }
        if let Some(at) = path.iter().position(|m| m == module) {
            panic!("import circle: {} -> {module}", path[at..].join(" -> "));
        }
        path.push(module.to_owned());
        for next in graph.get(module).into_iter().flatten() {
            walk(next, graph, path, done);
        }
        path.pop();
        done.insert(module.to_owned());
    }
    let mut done = BTreeSet::new();
    for module in &modules {
        walk(module, &graph, &mut Vec::new(), &mut done);
    }
}

/// The algorithms make no system call of their own: they get a `Kernel` (and ring memory) from
/// the OS boundary as values, and name nothing else of it.
#[test]
fn the_algorithms_take_the_kernel_as_a_value() {
    let src = src();
    let algorithms = [
        "frame.rs",
        "layout.rs",
        "role.rs",
        "wait.rs",
        "mpmc/recovery.rs",
        "mpmc/slot.rs",
        "pubsub/table.rs",
        "spsc/read_cursor.rs",
        "spsc/write_cursor.rs",
    ];
    let allowed = [
        "Kernel",
        "Liveness",
        "Notice",
        "ProcessIdentity",
        "RingMemory",
        // Ring memory's data area by value, for loops that keep it in registers.
        "DataArea",
        "Watched",
        // Their unit tests build heap memory and a fake kernel.
        "Memory",
        "fake",
    ];
    let mut offenders = Vec::new();
    for name in algorithms {
        let file = src.join(name);
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let line = code(line);
            for (at, _) in line.match_indices("os::") {
                let rest = &line[at + 4..];
                let used: Vec<&str> = if let Some(list) = rest.strip_prefix('{') {
                    list.split('}').next().unwrap().split(',').collect()
                } else {
                    vec![rest]
                };
                for item in used {
                    let item = item.trim();
                    if !allowed.iter().any(|a| item.starts_with(a)) {
                        offenders.push(format!("{}:{}: os::{item}", file.display(), n + 1));
                    }
                }
            }
            for call in ["libc::", "nix::", "std::process::", "Instant::now"] {
                if line.contains(call) {
                    offenders.push(format!("{}:{}: {call}", file.display(), n + 1));
                }
            }
        }
    }
    assert!(offenders.is_empty(), "{}", offenders.join("\n"));
}
