//! Rings fault their pages in when they are mapped, unless told not to: the resident size of each
//! mapping, read from /proc/self/smaps, shows it.

mod common;

use common::ShmName;
use ringport::{MpmcOptions, SpscOptions};

const KIB: u64 = 1024;

/// The resident kilobytes of every mapping of `/dev/shm/<name>` in this process.
fn resident_kib(name: &ShmName) -> Vec<u64> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let path = format!("/dev/shm/{}", name.as_str());
    let mut found = Vec::new();
    let mut in_mapping = false;
    for line in smaps.lines() {
        if let Some(rss) = line.strip_prefix("Rss:") {
            if in_mapping {
                let kib = rss.trim().trim_end_matches("kB").trim();
                found.push(kib.parse().unwrap());
            }
            in_mapping = false;
        } else if line.ends_with(&path) {
            in_mapping = true;
        }
    }
    found
}

#[test]
fn spsc_rings_are_resident_from_the_start_at_both_ends() {
    let name = ShmName::new("prefault-spsc");
    let options = SpscOptions::new().capacity(4 << 20);
    let _producer = options.create_producer(name.as_str()).unwrap();
    let _consumer = options.open_consumer(name.as_str()).unwrap();
    let resident = resident_kib(&name);
    assert_eq!(resident.len(), 2, "one mapping per end: {resident:?}");
    for kib in resident {
        assert!(kib >= 4 * KIB, "only {kib} KiB of a 4 MiB ring resident");
    }
}

#[test]
fn without_prefault_pages_come_with_use() {
    let name = ShmName::new("prefault-off");
    let options = SpscOptions::new().capacity(4 << 20).prefault(false);
    let mut producer = options.create_producer(name.as_str()).unwrap();
    let before = resident_kib(&name);
    assert_eq!(before.len(), 1);
    assert!(before[0] < 64, "{} KiB resident before any use", before[0]);
    for _ in 0..16 {
        producer.send(&[7; 60 << 10]).unwrap();
    }
    let after = resident_kib(&name)[0];
    assert!(after >= 960, "{after} KiB resident after writing 960 KiB");
    assert!(
        after < 4 * KIB,
        "{after} KiB resident: the rest was never touched"
    );
}

#[test]
fn mpmc_rings_are_resident_from_the_start() {
    let name = ShmName::new("prefault-mpmc");
    let _ring = MpmcOptions::new()
        .slots(4096)
        .slot_size(1024)
        .create(name.as_str())
        .unwrap();
    let resident = resident_kib(&name);
    assert_eq!(resident.len(), 1);
    assert!(resident[0] >= 4 * KIB, "{} KiB resident", resident[0]);
}
