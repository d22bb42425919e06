//! The C ABI from C and C++: `tests/c/suite.c` compiled with the system's C compiler (C11,
//! warnings as errors, under AddressSanitizer and UBSan where the compiler has them) against
//! the static library this crate builds, and run; the header compiled as C11 and as C++17; the
//! examples in `examples/c` and `examples/cpp` built through `ffi/ringport.pc` and run.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The directory the library was built into: beside this test in `deps` (where `cargo test`
/// leaves it), or above it (where `cargo build` puts it).
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let found = [deps, deps.parent().unwrap()]
        .into_iter()
        .find(|dir| dir.join("libringport_c.a").exists())
        .unwrap_or_else(|| panic!("no libringport_c.a in or above {}", deps.display()))
        .to_path_buf();
    found
}

fn compiler(cpp: bool) -> String {
    let (var, default) = if cpp { ("CXX", "c++") } else { ("CC", "cc") };
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{command:?} failed:\n{text}");
    text
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ringport-ffi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Whether the C compiler can build and run a program under these sanitizers.
fn sanitizers_work(flags: &str) -> bool {
    let source = scratch("probe.c");
    std::fs::write(&source, "int main(void) { return 0; }\n").unwrap();
    let exe = scratch("probe");
    Command::new(compiler(false))
        .arg(flags)
        .arg(&source)
        .arg("-o")
        .arg(&exe)
        .status()
        .is_ok_and(|s| s.success())
        && Command::new(&exe).status().is_ok_and(|s| s.success())
        && std::fs::remove_file(&exe).is_ok()
        && std::fs::remove_file(&source).is_ok()
}

#[test]
fn the_c_suite_passes_under_the_sanitizers() {
    let root = root();
    let exe = scratch("suite");
    let sanitize = "-fsanitize=address,undefined";
    let mut cc = Command::new(compiler(false));
    cc.args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-g"])
        .arg("-I")
        .arg(root.join("include"));
    if sanitizers_work(sanitize) {
        cc.args([sanitize, "-fno-sanitize-recover=all"]);
    } else {
        eprintln!("the C compiler cannot build with {sanitize} here: the suite runs without");
    }
    cc.arg(root.join("ffi/tests/c/suite.c"))
        .arg(lib_dir().join("libringport_c.a"))
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(&exe);
    run(&mut cc);
    let shm_before = shm();
    let out = run(Command::new(&exe).env("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1"));
    for test in [
        "handles_are_checked",
        "frames_in_one_process",
        "stream_between_processes",
        "producer_killed",
        "mpmc_between_processes",
        "channel_echo",
    ] {
        assert!(
            out.contains(&format!("ok {test}\n")),
            "{test} did not pass:\n{out}"
        );
    }
    assert_eq!(shm(), shm_before, "the C suite left segments in /dev/shm");
    let _ = std::fs::remove_file(&exe);
    let _ = std::fs::remove_dir(exe.parent().unwrap());
}

fn shm() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("ringport-ctest-"))
        .collect();
    names.sort();
    names
}

#[test]
fn the_header_compiles_as_c11_and_as_cpp17() {
    let header = root().join("include/ringport.h");
    for (cpp, standard) in [(false, "-std=c11"), (true, "-std=c++17")] {
        run(Command::new(compiler(cpp))
            .args([
                standard,
                "-Wall",
                "-Wextra",
                "-Wpedantic",
                "-Werror",
                "-fsyntax-only",
                "-x",
            ])
            .arg(if cpp { "c++" } else { "c" })
            .arg(&header));
    }
}

/// The flags `pkg-config` gives for `ffi/ringport.pc` in this build tree.
fn pkg_config() -> Option<Vec<String>> {
    let root = root();
    let output = Command::new("pkg-config")
        .arg(format!("--define-variable=prefix={}", root.display()))
        .arg(format!("--define-variable=libdir={}", lib_dir().display()))
        .args(["--cflags", "--libs", "--static"])
        .arg(root.join("ffi/ringport.pc"))
        .output()
        .ok()?;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(
        String::from_utf8(output.stdout)
            .unwrap()
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
    )
}

#[test]
fn the_c_and_cpp_examples_build_through_pkg_config_and_run() {
    let Some(flags) = pkg_config() else {
        eprintln!("skipped: no pkg-config on this machine");
        return;
    };
    // Linked statically: the .so would need LD_LIBRARY_PATH.
    let flags: Vec<String> = flags
        .into_iter()
        .map(|f| {
            if f == "-lringport_c" {
                lib_dir().join("libringport_c.a").display().to_string()
            } else {
                f
            }
        })
        .collect();
    for (cpp, source, says) in [
        (false, "examples/c/spsc.c", "consumer: 100000 frames"),
        (
            true,
            "examples/cpp/channel.cpp",
            "client: 1000 requests answered",
        ),
    ] {
        let exe = scratch(if cpp { "channel" } else { "spsc" });
        run(Command::new(compiler(cpp))
            .args([
                if cpp { "-std=c++17" } else { "-std=c11" },
                "-Wall",
                "-Wextra",
                "-Werror",
            ])
            .arg(root().join(source))
            .args(&flags)
            .arg("-o")
            .arg(&exe));
        let out = run(&mut Command::new(&exe));
        let _ = std::fs::remove_file(&exe);
        assert!(out.contains(says), "{source}: {out}");
    }
    let _ = std::fs::remove_dir(scratch("x").parent().unwrap());
}

#[test]
fn a_target_in_c_answers_each_case_and_its_crashes_are_blamed_on_their_cases() {
    use ringport::harness::{HarnessOptions, Verdict};
    let root = root();
    let exe = scratch("target");
    run(Command::new(compiler(false))
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-O2"])
        .arg("-I")
        .arg(root.join("include"))
        .arg(root.join("ffi/tests/c/target.c"))
        .arg(lib_dir().join("libringport_c.a"))
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(&exe));
    let mut driver = HarnessOptions::new()
        .max_case(64)
        .coverage(1024)
        .spawn(Command::new(&exe))
        .unwrap();
    let cases = 2_000u64;
    let mut crashed = Vec::new();
    for id in 0..cases {
        let case = if id % 500 == 499 {
            format!("crash {id}")
        } else {
            format!("case {id}")
        };
        driver.submit(case.as_bytes()).unwrap();
        match driver.next_verdict().unwrap() {
            Verdict::Ok { id: judged, result } => {
                assert_eq!(judged, id);
                assert_eq!(result, (case.len() as u32).to_le_bytes());
            }
            Verdict::Crashed { id: judged, .. } => crashed.push(judged),
            Verdict::TimedOut { id } => panic!("case {id} timed out"),
        }
    }
    assert_eq!(crashed, [499, 999, 1499, 1999]);
    let mut map = vec![0u8; 1024];
    driver.coverage().unwrap().take(&mut map);
    // Cases of 6 to 9 bytes ("case 0" .. "case 1998") marked their lengths.
    assert!(map[6..=9].iter().all(|&b| b == 1), "{:?}", &map[..16]);
    drop(driver);
    let _ = std::fs::remove_file(&exe);
}
