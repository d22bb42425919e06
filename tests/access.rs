//! Who may open a named segment: by default only its owner's processes (root too refuses
//! another user's segment), and only if no one else may write it; `trust_owner`,
//! `allow_shared_write` and `share_with_group` widen that. A path listener's socket is mode
//! 0600. The tests that change owners or drop to uid nobody need root, and skip (saying so)
//! without it.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use common::{spawn_child_piped, ChildGuard, ShmName};
use ringport::{Error, Listener, SpscOptions};

/// nobody.
const NOBODY: u32 = 65534;
/// A group no user here is in by default (for the group share).
const SHARED_GID: u32 = 4242;

fn segment_path(name: &ShmName) -> std::path::PathBuf {
    Path::new("/dev/shm").join(name.as_str())
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[test]
fn a_segment_that_others_may_write_is_refused_unless_allowed() {
    let name = ShmName::new("access-mode");
    let _producer = SpscOptions::new()
        .capacity(4096)
        .create_producer(name.as_str())
        .unwrap();
    let path = segment_path(&name);
    assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let err = SpscOptions::new().open_consumer(name.as_str()).unwrap_err();
    assert!(
        matches!(err, Error::SharedWritable { mode: 0o666 }),
        "{err}"
    );
    SpscOptions::new()
        .allow_shared_write(true)
        .open_consumer(name.as_str())
        .unwrap();
}

#[test]
fn another_users_segment_is_refused_even_by_root_unless_trusted() {
    if !is_root() {
        eprintln!("skipped: changing a segment's owner needs root");
        return;
    }
    let name = ShmName::new("access-owner");
    let _producer = SpscOptions::new()
        .capacity(4096)
        .create_producer(name.as_str())
        .unwrap();
    std::os::unix::fs::chown(segment_path(&name), Some(NOBODY), None).unwrap();
    let err = SpscOptions::new().open_consumer(name.as_str()).unwrap_err();
    assert!(matches!(err, Error::NotOwner { owner: NOBODY }), "{err}");
    assert!(err.to_string().contains("trust_owner(65534)"), "{err}");
    SpscOptions::new()
        .trust_owner(NOBODY)
        .open_consumer(name.as_str())
        .unwrap();
}

/// A child that drops to uid nobody (in group `SHARED_GID` if its argument says `in-group`),
/// opens the ring at the location after the colon (`Location::parse`) as a consumer trusting root and shared write, and
/// prints what it got.
#[test]
#[ignore = "child process of the access tests"]
fn access_child_as_nobody() {
    let Some(arg) = common::child_arg() else {
        return;
    };
    let (membership, name) = arg.split_once(':').unwrap();
    let groups: Vec<nix::unistd::Gid> = if membership == "in-group" {
        vec![nix::unistd::Gid::from_raw(SHARED_GID)]
    } else {
        Vec::new()
    };
    nix::unistd::setgroups(&groups).unwrap();
    nix::unistd::setgid(nix::unistd::Gid::from_raw(NOBODY)).unwrap();
    nix::unistd::setuid(nix::unistd::Uid::from_raw(NOBODY)).unwrap();
    let options = SpscOptions::new().trust_owner(0).allow_shared_write(true);
    match options.open_consumer(ringport::Location::parse(name).unwrap()) {
        Ok(mut consumer) => {
            let frame = consumer.recv().unwrap();
            println!("RESULT got {}", String::from_utf8_lossy(&frame));
        }
        Err(e) => println!("RESULT refused {e:?}"),
    }
}

#[test]
fn a_segment_shared_with_a_group_opens_for_its_members_and_no_one_else() {
    if !is_root() {
        eprintln!("skipped: dropping a child to uid nobody needs root");
        return;
    }
    let name = ShmName::new("access-group");
    let mut producer = SpscOptions::new()
        .capacity(4096)
        .share_with_group(SHARED_GID)
        .create_producer(name.as_str())
        .unwrap();
    let meta = std::fs::metadata(segment_path(&name)).unwrap();
    assert_eq!((meta.mode() & 0o777, meta.gid()), (0o660, SHARED_GID));
    producer.send(b"for the group").unwrap();

    let outsider = spawn_child_piped(
        "access_child_as_nobody",
        &format!("alone:{}", name.as_str()),
    );
    let lines = common::result_lines(ChildGuard(Some(outsider)));
    assert!(lines[0].starts_with("refused Os"), "{lines:?}");

    let member = spawn_child_piped(
        "access_child_as_nobody",
        &format!("in-group:{}", name.as_str()),
    );
    let lines = common::result_lines(ChildGuard(Some(member)));
    assert_eq!(lines, ["got for the group"]);
}

#[test]
fn a_served_ring_is_served_to_its_group_and_no_one_else() {
    if !is_root() {
        eprintln!("skipped: dropping a child to uid nobody needs root");
        return;
    }
    let location = ringport::Location::Served(format!("access-served-{}", std::process::id()));
    let mut producer = SpscOptions::new()
        .capacity(4096)
        .share_with_group(SHARED_GID)
        .create_producer(&location)
        .unwrap();
    producer.send(b"for the group").unwrap();
    let outsider = spawn_child_piped("access_child_as_nobody", &format!("alone:{location}"));
    let lines = common::result_lines(ChildGuard(Some(outsider)));
    assert_eq!(lines, ["refused Refused"]);
    let member = spawn_child_piped("access_child_as_nobody", &format!("in-group:{location}"));
    let lines = common::result_lines(ChildGuard(Some(member)));
    assert_eq!(lines, ["got for the group"]);
}

#[test]
fn a_path_listeners_socket_is_its_owners_alone() {
    let dir = std::env::temp_dir().join(format!("ringport-access-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("listener.sock");
    let listener = Listener::bind(path.to_str().unwrap()).unwrap();
    let mode = std::fs::metadata(&path).unwrap().mode() & 0o777;
    drop(listener);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(mode, 0o600);
}

/// A child that drops to uid nobody with a lock limit of 4 KiB and makes a memfd ring of
/// 64 KiB locked in memory; prints what it got.
#[test]
#[ignore = "child process of the access tests"]
fn access_child_lock() {
    if common::child_arg().is_none() {
        return;
    }
    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_MEMLOCK, 4096, 4096)
        .unwrap();
    nix::unistd::setgroups(&[]).unwrap();
    nix::unistd::setgid(nix::unistd::Gid::from_raw(NOBODY)).unwrap();
    nix::unistd::setuid(nix::unistd::Uid::from_raw(NOBODY)).unwrap();
    match SpscOptions::new()
        .capacity(64 << 10)
        .lock_in_memory(true)
        .create_producer_memfd()
    {
        Ok(_) => println!("RESULT locked"),
        Err(e) => println!("RESULT refused {e:?} | {e}"),
    }
}

#[test]
fn a_ring_that_cannot_be_locked_says_what_to_raise() {
    if !is_root() {
        eprintln!("skipped: dropping a child to uid nobody (and its lock limit) needs root");
        return;
    }
    let child = spawn_child_piped("access_child_lock", "go");
    let lines = common::result_lines(ChildGuard(Some(child)));
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    assert!(
        line.starts_with("refused MemoryLock { len: ") && line.contains("limit: 4096 }"),
        "{line}"
    );
    assert!(line.contains("ulimit -l"), "{line}");
}
