//! `ringport::segments`: what lives in /dev/shm, seen from outside. A ring whose creator was
//! killed is listed with its dead holder and collected; a live one is in use and never
//! collected; a segment that is not ringport's is listed and never collected. Every test
//! collects only its own names (a prefix), so that the suite leaves others' segments alone.

mod common;

use common::{kill9, spawn_child_ready, ShmName};
use ringport::segments::{self, HolderState, RingKind};
use ringport::{Error, Role, SpscOptions};

/// A child that creates an SPSC ring (the producer) under the name in its argument, sends a
/// frame, says it is ready, and waits to be killed.
#[test]
#[ignore = "child process of the segments tests"]
fn segments_creator() {
    let Some(name) = common::child_arg() else {
        return;
    };
    let mut producer = SpscOptions::new()
        .capacity(4096)
        .create_producer(&name)
        .unwrap();
    producer.send(b"left behind").unwrap();
    println!("ready");
    std::thread::sleep(std::time::Duration::from_secs(60));
}

#[test]
fn a_ring_whose_creator_was_killed_is_stale_and_collected() {
    let name = ShmName::new("seg-stale");
    let mut child = spawn_child_ready("segments_creator", name.as_str());
    let pid = child.id();
    let live = segments::inspect(name.as_str()).unwrap();
    assert!(live.users.contains(&pid), "{live:?}");
    assert!(live.in_use() && !live.is_stale());
    kill9(&mut child);

    let info = segments::inspect(name.as_str()).unwrap();
    let ring = info.ring.as_ref().expect("a ringport ring");
    assert_eq!(ring.kind, RingKind::Spsc);
    assert_eq!(ring.capacity, 4096);
    assert_eq!(ring.creator_pid, pid);
    assert_eq!(ring.holders[0].role, Role::Producer);
    assert_eq!(ring.holders[0].pid, Some(pid));
    assert_eq!(ring.holders[0].state, HolderState::Dead);
    assert_eq!(ring.holders[1].state, HolderState::Never);
    assert!(info.users.is_empty(), "{info:?}");
    assert!(info.is_stale());
    assert!(segments::list()
        .unwrap()
        .iter()
        .any(|s| s.name == name.as_str()));

    let would = segments::collect_matching(name.as_str(), true).unwrap();
    assert_eq!(would.len(), 1);
    assert!(name.exists(), "a dry run removes nothing");
    let removed = segments::collect_matching(name.as_str(), false).unwrap();
    assert_eq!(removed[0].name, name.as_str());
    assert!(!name.exists());
    assert!(matches!(
        segments::inspect(name.as_str()),
        Err(Error::NotFound)
    ));
}

#[test]
fn a_live_ring_is_in_use_and_never_collected() {
    let name = ShmName::new("seg-live");
    let producer = SpscOptions::new()
        .capacity(4096)
        .create_producer(name.as_str())
        .unwrap();
    let consumer = SpscOptions::new().open_consumer(name.as_str()).unwrap();
    let info = segments::inspect(name.as_str()).unwrap();
    let ring = info.ring.as_ref().unwrap();
    assert!(ring.holders.iter().all(|h| h.state == HolderState::Alive));
    assert!(info.users.contains(&std::process::id()));
    assert!(info.in_use() && !info.is_stale());
    assert!(segments::collect_matching(name.as_str(), false)
        .unwrap()
        .is_empty());
    assert!(name.exists());
    // Both ends gone cleanly: the creator removed its name, and nothing is left to collect.
    drop((producer, consumer));
    assert!(matches!(
        segments::inspect(name.as_str()),
        Err(Error::NotFound)
    ));
}

#[test]
fn a_segment_that_is_not_ringports_is_listed_and_never_collected() {
    let name = ShmName::new("seg-other");
    let map = common::SharedMap::create_named(name.as_str(), 4096).unwrap();
    map.fill(0x5a);
    drop(map);
    let info = segments::inspect(name.as_str()).unwrap();
    assert_eq!((info.ringport_version, info.ring.as_ref()), (None, None));
    assert_eq!(info.len, 4096);
    assert!(!info.is_stale());
    assert!(segments::collect_matching(name.as_str(), false)
        .unwrap()
        .is_empty());
    assert!(name.exists());
    assert!(matches!(
        segments::inspect("a/b"),
        Err(Error::InvalidName { .. })
    ));
}
