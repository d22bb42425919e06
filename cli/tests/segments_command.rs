//! `ringport ls`, `rm` and `gc` on a live ring: listed with its holders, refused by `rm`, left by
//! `gc`, removed by `rm --force`.

use std::process::Command;

use ringport::SpscOptions;
use ringport_measure::shm::SegmentName;

fn ringport(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ringport"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn a_live_ring_is_listed_refused_by_rm_left_by_gc_and_removed_by_rm_force() {
    let name = SegmentName::new("cli-seg");
    let _producer = SpscOptions::new()
        .capacity(4096)
        .create_producer(name.as_str())
        .unwrap();
    let ls = ringport(&["ls", "--json"]);
    assert!(ls.status.success());
    let listed = String::from_utf8(ls.stdout).unwrap();
    let line = listed
        .lines()
        .find(|l| l.contains(name.as_str()))
        .unwrap_or_else(|| panic!("{} not in {listed}", name.as_str()));
    assert!(line.contains(r#""kind":"spsc""#), "{line}");
    assert!(
        line.contains(&format!("producer {} alive", std::process::id())),
        "{line}"
    );
    assert!(line.contains(r#""status":"in use""#), "{line}");

    let rm = ringport(&["rm", name.as_str()]);
    assert_eq!(rm.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&rm.stderr).contains("in use"));
    assert!(name.exists());

    let gc = ringport(&["gc", name.as_str()]);
    assert!(gc.status.success());
    assert!(String::from_utf8_lossy(&gc.stdout).contains("0 stale segment(s) removed"));
    assert!(name.exists());

    let rm = ringport(&["rm", "--force", name.as_str()]);
    assert!(
        rm.status.success(),
        "{}",
        String::from_utf8_lossy(&rm.stderr)
    );
    assert!(!name.exists());
}
