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

/// `ringport recv --create` in the background, `ringport send` into it: what goes in comes out,
/// and the receiver ends when the sender has gone.
fn round_trip(name: &SegmentName, flags: &[&str], input: &[u8]) -> Vec<u8> {
    use std::io::Write;
    use std::process::Stdio;
    let receiver = Command::new(env!("CARGO_BIN_EXE_ringport"))
        .args(["recv", "--create", name.as_str()])
        .args(flags)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut sender = Command::new(env!("CARGO_BIN_EXE_ringport"))
        .args(["send", name.as_str()])
        .args(flags)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    sender.stdin.take().unwrap().write_all(input).unwrap();
    let sent = sender.wait_with_output().unwrap();
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let output = receiver.wait_with_output().unwrap();
    assert!(output.status.success());
    assert!(!name.exists(), "the receiver made the ring and removed it");
    output.stdout
}

#[test]
fn send_and_recv_carry_lines_and_length_prefixed_frames() {
    let name = SegmentName::new("cli-lines");
    assert_eq!(
        round_trip(&name, &[], b"one\ntwo\nthree\n"),
        b"one\ntwo\nthree\n"
    );
    let name = SegmentName::new("cli-frames");
    let mut frames = Vec::new();
    for frame in [&b"with\na newline"[..], b"\n", &[0u8, 255, 10]] {
        frames.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        frames.extend_from_slice(frame);
    }
    assert_eq!(round_trip(&name, &["--length-prefixed"], &frames), frames);
}

#[test]
fn an_empty_frame_is_refused_with_a_clear_error() {
    use std::io::Write;
    use std::process::Stdio;
    let name = SegmentName::new("cli-empty");
    let _consumer = SpscOptions::new()
        .capacity(4096)
        .create_consumer(name.as_str())
        .unwrap();
    let mut sender = Command::new(env!("CARGO_BIN_EXE_ringport"))
        .args(["send", name.as_str()])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    sender.stdin.take().unwrap().write_all(b"a\n\nb\n").unwrap();
    let output = sender.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("frame 2 is empty"), "{stderr}");
}

#[test]
fn stat_shows_a_rings_counters_and_rates_between_refreshes() {
    let name = SegmentName::new("cli-stat");
    let mut producer = SpscOptions::new()
        .capacity(4096)
        .create_producer(name.as_str())
        .unwrap();
    for frame in [&b"one"[..], b"three", b"seven!!"] {
        producer.send(frame).unwrap();
    }
    let stat = ringport(&["stat", name.as_str(), "--json"]);
    assert!(
        stat.status.success(),
        "{}",
        String::from_utf8_lossy(&stat.stderr)
    );
    let line = String::from_utf8(stat.stdout).unwrap();
    assert!(
        line.contains(r#""committed":{"frames":3,"bytes":15}"#),
        "{line}"
    );
    assert!(
        line.contains(r#""unread":{"frames":3,"bytes":15}"#),
        "{line}"
    );
    assert!(line.contains(r#""occupied":48"#), "{line}");
    assert!(line.contains(r#""rates":null"#), "{line}");

    let watch = ringport(&[
        "stat",
        name.as_str(),
        "--watch",
        "0.05",
        "--count",
        "2",
        "--json",
    ]);
    assert!(watch.status.success());
    let lines: Vec<String> = String::from_utf8(watch.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[1].contains(r#""committed_frames_s":0.0"#),
        "{lines:?}"
    );

    let text = ringport(&["stat", name.as_str()]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("spsc ring, 4096 bytes"), "{text}");
    assert!(text.contains("fill: 48 of 4096 bytes (1.2%)"), "{text}");
    let ls = String::from_utf8(ringport(&["ls"]).stdout).unwrap();
    let row = ls.lines().find(|l| l.starts_with(name.as_str())).unwrap();
    assert!(row.contains(" 1.2% "), "{row}");

    let missing = ringport(&["stat", "ringport-no-such-ring"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no-such-ring"));
}

#[test]
fn a_system_v_ring_is_listed_stat_and_collected_by_its_key() {
    let key = (0x5254_0000u32 | (std::process::id() & 0xffff)) as i32;
    let location = ringport::Location::SysV(key);
    let name = location.to_string();
    struct Remove(ringport::Location);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = ringport::remove_segment(self.0.clone());
        }
    }
    let _remove = Remove(location.clone());
    let ring = ringport::MpmcOptions::new()
        .slots(64)
        .slot_size(16)
        .keep_segment(true)
        .create(&location)
        .unwrap();
    ring.producer().send(b"kept").unwrap();
    let ls = String::from_utf8(ringport(&["ls", "--json"]).stdout).unwrap();
    let line = ls
        .lines()
        .find(|l| l.contains(&format!("\"name\":\"{name}\"")))
        .unwrap_or_else(|| panic!("{name} not in {ls}"));
    assert!(line.contains(r#""kind":"mpmc""#), "{line}");
    assert!(line.contains(r#""status":"in use""#), "{line}");
    let stat = ringport(&["stat", &name, "--json"]);
    let stat = String::from_utf8(stat.stdout).unwrap();
    assert!(
        stat.contains(r#""committed":{"frames":1,"bytes":null}"#),
        "{stat}"
    );
    // Left by its creator (kept, and no longer attached): stale, and collected by its key.
    drop(ring);
    let gc = ringport(&["gc", &name]);
    let out = String::from_utf8_lossy(&gc.stdout);
    assert!(out.contains(&format!("removed {name}")), "{out}");
    let rm = ringport(&["rm", &name]);
    assert_eq!(rm.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&rm.stderr).contains("nothing of that name"));
}
