//! Every way of opening or using a ring wrongly gives its own typed error.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{offsets, SharedMap, ShmName};
use ringport::{Error, Role, SpscOptions};

fn small() -> SpscOptions {
    SpscOptions::new().capacity(4096).max_frame(1024)
}

#[test]
fn opening_a_missing_name_is_not_found() {
    let name = ShmName::new("missing");
    assert!(matches!(
        small().open_consumer(name.as_str()),
        Err(Error::NotFound)
    ));
    assert!(matches!(
        small().open_producer(name.as_str()),
        Err(Error::NotFound)
    ));
}

#[test]
fn bad_names_are_refused() {
    let long = "x".repeat(255);
    for name in ["", "/", "a/b", "..", long.as_str()] {
        assert!(
            matches!(
                small().create_producer(name),
                Err(Error::InvalidName { .. })
            ),
            "{name:?} accepted"
        );
    }
    assert!(matches!(
        small().open_consumer("nul\0byte"),
        Err(Error::InvalidName { .. })
    ));
}

#[test]
fn creating_twice_is_already_exists() {
    let name = ShmName::new("twice");
    let _producer = small().create_producer(name.as_str()).unwrap();
    assert!(matches!(
        small().create_consumer(name.as_str()),
        Err(Error::AlreadyExists)
    ));
}

#[test]
fn invalid_geometry_is_invalid_config() {
    let name = ShmName::new("geometry");
    for options in [
        SpscOptions::new().capacity(1000),
        SpscOptions::new().capacity(32),
        SpscOptions::new().capacity(4096).max_frame(0),
        SpscOptions::new().capacity(4096).max_frame(4096),
    ] {
        assert!(matches!(
            options.create_producer(name.as_str()),
            Err(Error::InvalidConfig(_))
        ));
        assert!(
            !name.exists(),
            "a refused configuration must not leave a segment"
        );
    }
}

#[test]
fn a_segment_that_is_not_ours_is_bad_magic() {
    let name = ShmName::new("foreign");
    let raw = SharedMap::create_named(name.as_str(), 8192).unwrap();
    raw.fill(0xAB);
    assert!(matches!(
        small().open_consumer(name.as_str()),
        Err(Error::BadMagic {
            found: 0xABAB_ABAB_ABAB_ABAB
        })
    ));
}

#[test]
fn a_segment_too_small_for_its_header_is_too_small() {
    let name = ShmName::new("tiny");
    let _raw = SharedMap::create_named(name.as_str(), 100).unwrap();
    assert!(matches!(
        small().open_consumer(name.as_str()),
        Err(Error::TooSmall {
            len: 100,
            needed,
        }) if needed == offsets::DATA as u64
    ));
    let name = ShmName::new("empty");
    let _raw = SharedMap::create_named(name.as_str(), 0).unwrap();
    assert!(matches!(
        small().open_producer(name.as_str()),
        Err(Error::TooSmall { len: 0, .. })
    ));
}

#[test]
fn a_segment_shorter_than_its_header_claims_is_too_small() {
    let name = ShmName::new("truncated");
    let _producer = small()
        .keep_segment(true)
        .create_producer(name.as_str())
        .unwrap();
    let path = std::path::Path::new("/dev/shm").join(name.as_str());
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(2048)
        .unwrap();
    assert!(matches!(
        small().open_consumer(name.as_str()),
        Err(Error::TooSmall { len: 2048, needed }) if needed == offsets::DATA as u64 + 4096
    ));
}

#[test]
fn another_version_is_version_mismatch() {
    let name = ShmName::new("version");
    let _producer = small().create_producer(name.as_str()).unwrap();
    let raw = SharedMap::open_named(name.as_str()).unwrap();
    raw.u32_at(offsets::VERSION).store(99, Ordering::Relaxed);
    assert!(matches!(
        small().open_consumer(name.as_str()),
        Err(Error::VersionMismatch {
            found: 99,
            expected: 6
        })
    ));
}

#[test]
fn another_kind_is_wrong_kind() {
    let name = ShmName::new("kind");
    let _producer = small().create_producer(name.as_str()).unwrap();
    SharedMap::open_named(name.as_str())
        .unwrap()
        .u32_at(offsets::KIND)
        .store(2, Ordering::Relaxed);
    assert!(matches!(
        small().open_consumer(name.as_str()),
        Err(Error::WrongKind {
            found: 2,
            expected: 1
        })
    ));
}

#[test]
fn a_role_taken_twice_is_role_taken() {
    let name = ShmName::new("roles");
    let _producer = small().create_producer(name.as_str()).unwrap();
    let me = std::process::id();
    assert!(matches!(
        small().open_producer(name.as_str()),
        Err(Error::RoleTaken { role: Role::Producer, pid }) if pid == me
    ));
    let consumer = small().open_consumer(name.as_str()).unwrap();
    assert!(matches!(
        small().open_consumer(name.as_str()),
        Err(Error::RoleTaken {
            role: Role::Consumer,
            ..
        })
    ));
    // A role given up can be taken again.
    drop(consumer);
    small()
        .open_consumer(name.as_str())
        .expect("consumer role is free again");
}

#[test]
fn frame_lengths_outside_the_limits_are_invalid_length() {
    let (mut producer, _consumer) = small().in_process().unwrap();
    assert!(matches!(
        producer.try_reserve(0),
        Err(Error::InvalidLength { len: 0, max: 1024 })
    ));
    assert!(matches!(
        producer.reserve(1025),
        Err(Error::InvalidLength { len: 1025, .. })
    ));
    assert!(matches!(
        producer.try_send(&[0; 2000]),
        Err(Error::InvalidLength { .. })
    ));
}

#[test]
fn a_hostile_consumer_position_is_corrupted_not_a_hang() {
    let name = ShmName::new("hostile-pos");
    let mut producer = small().create_producer(name.as_str()).unwrap();
    let raw = SharedMap::open_named(name.as_str()).unwrap();
    // Fill the ring so the producer must reread the consumer's position.
    while producer.try_send(&[1; 512]).is_ok() {}
    raw.u64_at(offsets::CONSUMER_POS)
        .store(u64::MAX - 7, Ordering::Relaxed);
    assert!(matches!(
        producer.reserve_timeout(512, Duration::from_secs(5)),
        Err(Error::Corrupted {
            what: "consumer position",
            ..
        })
    ));
}

#[test]
fn a_garbage_frame_header_is_corrupted() {
    let name = ShmName::new("hostile-frame");
    let mut consumer = small().create_consumer(name.as_str()).unwrap();
    let raw = SharedMap::open_named(name.as_str()).unwrap();
    for garbage in [u64::MAX, 1, 0xFFFF_FFFF, 1 << 32 | 5000] {
        raw.u64_at(offsets::DATA).store(garbage, Ordering::Relaxed);
        assert!(
            matches!(consumer.try_recv(), Err(Error::Corrupted { .. })),
            "header {garbage:#x} accepted"
        );
        assert!(matches!(
            consumer.recv_timeout(Duration::from_millis(10)),
            Err(Error::Corrupted { .. })
        ));
    }
}

#[test]
fn a_hostile_producer_position_is_refused_at_attach() {
    let name = ShmName::new("hostile-attach");
    let consumer = small().create_consumer(name.as_str()).unwrap();
    SharedMap::open_named(name.as_str())
        .unwrap()
        .u64_at(offsets::PRODUCER_POS)
        .store(1 << 40, Ordering::Relaxed);
    assert!(matches!(
        small().open_producer(name.as_str()),
        Err(Error::Corrupted {
            what: "producer position",
            ..
        })
    ));
    drop(consumer);
}

#[test]
fn a_forged_repeat_of_the_last_length_past_the_end_is_corrupted() {
    // The consumer's fast path trusts a header equal to the one a frame of the last length would
    // have here; it must still refuse one that would run past the end of the data area.
    let name = ShmName::new("hostile-repeat");
    let mut consumer = small().create_consumer(name.as_str()).unwrap();
    let raw = SharedMap::open_named(name.as_str()).unwrap();
    let header = |len: u64, position: u64| len | 1 << 32 | ((position >> 3) & 0xFF_FFFF) << 40;
    let len = 1000;
    let size = 1008;
    let mut position = 0;
    while position + size <= 4096 {
        raw.u64_at(offsets::DATA + position as usize)
            .store(header(len, position), Ordering::Release);
        assert_eq!(consumer.try_recv().unwrap().len(), len as usize);
        position += size;
    }
    raw.u64_at(offsets::DATA + position as usize)
        .store(header(len, position), Ordering::Release);
    assert!(matches!(
        consumer.try_recv(),
        Err(Error::Corrupted {
            what: "frame length",
            ..
        })
    ));
}

/// A ring larger than what `/dev/shm` can back fails at creation, with an error that says so,
/// and leaves no segment behind. Run in a child process with a private mount namespace, whose
/// `/dev/shm` is a 1 MiB tmpfs (root only).
#[test]
fn a_full_dev_shm_is_no_space_at_creation() {
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } != 0 {
        println!("skipped: mounting a small /dev/shm in a private namespace needs root");
        return;
    }
    let child = common::spawn_child("child_in_a_small_dev_shm", "4M");
    let status = common::ChildGuard(Some(child));
    status.wait_success();
}

#[test]
#[ignore = "child process of a_full_dev_shm_is_no_space_at_creation"]
fn child_in_a_small_dev_shm() {
    if common::child_arg().is_none() {
        return;
    }
    // SAFETY: unshare and mount take valid C strings and flags; this process is the test's own
    // child, whose mounts no one else sees once it has its own namespace.
    unsafe {
        assert_eq!(libc::unshare(libc::CLONE_NEWNS), 0, "unshare");
        assert_eq!(
            libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null()
            ),
            0,
            "make mounts private"
        );
        assert_eq!(
            libc::mount(
                c"tmpfs".as_ptr(),
                c"/dev/shm".as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                c"size=1m".as_ptr().cast()
            ),
            0,
            "mount a 1 MiB tmpfs"
        );
    }
    let name = ShmName::new("no-space");
    let result = SpscOptions::new()
        .capacity(4 << 20)
        .create_producer(name.as_str());
    let error = result.expect_err("a 4 MiB ring in a 1 MiB /dev/shm");
    assert!(
        matches!(error, Error::NoSpace { len } if len >= 4 << 20),
        "{error:?}"
    );
    assert!(error.to_string().contains("/dev/shm"), "{error}");
    assert!(!name.exists(), "the failed segment was left behind");
    // A ring that fits is fine.
    drop(
        SpscOptions::new()
            .capacity(256 << 10)
            .create_producer(name.as_str())
            .unwrap(),
    );
}

#[test]
fn a_ring_larger_than_dev_shm_has_room_for_is_no_space_even_unfaulted() {
    let fs = nix::sys::statvfs::statvfs("/dev/shm").unwrap();
    if fs.blocks() == 0 {
        eprintln!("skipped: /dev/shm has no size limit to exceed");
        return;
    }
    let available = fs.blocks_available() * fs.fragment_size();
    let capacity = (available + 1).next_power_of_two();
    if capacity > 1 << 40 {
        eprintln!("skipped: /dev/shm has more room than the largest ring");
        return;
    }
    let name = ShmName::new("nospace");
    let result = SpscOptions::new()
        .capacity(capacity as usize)
        .prefault(false)
        .create_producer(name.as_str());
    assert!(
        matches!(result, Err(Error::NoSpace { len }) if len > available),
        "{result:?}"
    );
    assert!(!name.exists(), "the name is removed with the refusal");
}
