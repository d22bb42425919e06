//! `ringport harness` end to end: the real command, its demo target, cases from a directory and
//! from standard input, the crashing cases saved, and the exit codes.

use std::io::Write;
use std::process::{Command, Stdio};

fn ringport() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ringport"))
}

/// A directory under the temporary one, removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("ringport-harness-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn cases_from_a_directory_get_a_verdict_each_and_the_crashes_are_kept() {
    run_a_directory(&[], "plain");
}

#[test]
fn the_same_with_a_fork_server() {
    run_a_directory(&["--fork-server"], "fork");
}

/// Runs the demo target over four cases (an answer, a crash, a hang, an answer) with the
/// options `extra`, and checks the verdicts and the kept cases.
fn run_a_directory(extra: &[&str], tag: &str) {
    let cases = TempDir::new(&format!("cases-{tag}"));
    let crashes = TempDir::new(&format!("crashes-{tag}"));
    for (name, bytes) in [
        ("a", &b"fine"[..]),
        ("b", b"crash here"),
        ("c", b"hang"),
        ("d", b"ok"),
    ] {
        std::fs::write(cases.0.join(name), bytes).unwrap();
    }
    let target = env!("CARGO_BIN_EXE_ringport");
    let output = ringport()
        .args(["harness", "--json", "--timeout", "200", "--cases"])
        .arg(&cases.0)
        .arg("--crashes")
        .arg(&crashes.0)
        .args(extra)
        .args(["--", target, "harness-target"])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(
        lines[0],
        r#"{"id":0,"case":"a","verdict":"ok","detail":"8 bytes back"}"#
    );
    // The status may add "(core dumped)", as the machine's core limit says.
    assert!(
        lines[1]
            .starts_with(r#"{"id":1,"case":"b","verdict":"crashed","detail":"signal: 6 (SIGABRT)"#),
        "{}",
        lines[1]
    );
    assert_eq!(
        lines[2],
        r#"{"id":2,"case":"c","verdict":"timed out","detail":"over 200 ms"}"#
    );
    assert_eq!(
        lines[3],
        r#"{"id":3,"case":"d","verdict":"ok","detail":"8 bytes back"}"#
    );
    let mut kept: Vec<String> = std::fs::read_dir(&crashes.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    kept.sort();
    assert_eq!(kept, ["1-b", "2-c"]);
    assert_eq!(std::fs::read(crashes.0.join("1-b")).unwrap(), b"crash here");
}

#[test]
fn cases_from_standard_input_and_a_clean_run_exits_0() {
    let target = env!("CARGO_BIN_EXE_ringport");
    let mut child = ringport()
        .args(["harness", "--", target, "harness-target"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"one\ntwo\nthree\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let table = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        table.lines().filter(|l| l.contains(" ok ")).count(),
        3,
        "{table}"
    );
    assert!(table.contains("line 3"), "{table}");
}

#[test]
fn a_target_that_cannot_start_is_an_error() {
    let output = ringport()
        .args(["harness", "--", "/nonexistent/target"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("start the target"));
}
