//! One suite over every kind of segment a named ring lives in (as iceoryx2 runs one suite over
//! each backend of its shared-memory layer): a POSIX name, a System V key, a file on a tmpfs,
//! a file on a disk, a file on hugetlbfs where one is mounted, and a ring served by name (a
//! sealed memfd its creator hands out on an abstract socket). Each kind must stream frames
//! to another process intact, refuse a second holder and a wrong kind, go when its creator
//! drops it and stay when kept, be seen stale after its creator is killed and be removed, and
//! show its counters to `segments::stat`. Memfd rings, on small pages and huge, are checked
//! for the same stream.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{kill9, spawn_child_ready};
use ringport::segments::{self, HolderState};
use ringport::{Error, Location, MpmcOptions, Role, SpscOptions};

/// A unique location of each kind, removed when dropped (whatever the test left there).
struct Place {
    location: Location,
    /// Whether `segments::list` sees this kind.
    listed: bool,
}

impl Drop for Place {
    fn drop(&mut self) {
        let _ = ringport::remove_segment(self.location.clone());
    }
}

static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

fn unique(tag: &str) -> String {
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("ringport-conf-{tag}-{}-{n}", std::process::id())
}

/// The kinds, each with a fresh place; `None` (and a printed reason) where the machine has none.
fn places(tag: &str) -> Vec<(&'static str, Place)> {
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // A key of our own: "RP" in the top byte, then the pid and a counter.
    let key = (0x5250_0000u32 | ((std::process::id() & 0xfff) << 4) | (n & 0xf)) as i32;
    let mut places = vec![
        (
            "posix",
            Place {
                location: Location::Shm(unique(tag)),
                listed: true,
            },
        ),
        (
            "sysv",
            Place {
                location: Location::SysV(key),
                listed: true,
            },
        ),
        (
            "file-tmpfs",
            Place {
                // Listed too, but as the POSIX name it also is.
                location: Location::File(PathBuf::from("/dev/shm").join(unique(tag))),
                listed: false,
            },
        ),
        (
            "file-disk",
            Place {
                location: Location::File(
                    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(unique(tag)),
                ),
                listed: false,
            },
        ),
    ];
    places.push((
        "served",
        Place {
            location: Location::Served(unique(tag)),
            listed: true,
        },
    ));
    match hugetlbfs_mount() {
        Some(dir) => places.push((
            "file-hugetlbfs",
            Place {
                location: Location::File(dir.join(unique(tag))),
                listed: false,
            },
        )),
        None => eprintln!("skipped file-hugetlbfs: no hugetlbfs is mounted"),
    }
    places
}

fn hugetlbfs_mount() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    mounts
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.get(2) == Some(&"hugetlbfs"))
        .map(|f| PathBuf::from(f[1]))
}

const FRAMES: u64 = 20_000;

/// Frame `i`: 1 to 300 bytes, each a function of `i`.
fn frame(i: u64) -> Vec<u8> {
    let len = 1 + (i * 37 % 300) as usize;
    (0..len).map(|j| (i as usize * 31 + j) as u8).collect()
}

/// A child that opens the consumer of the ring at the location in its argument and checks
/// every frame of the stream.
#[test]
#[ignore = "child process of the conformance tests"]
fn conformance_consumer() {
    let Some(arg) = common::child_arg() else {
        return;
    };
    let location = Location::parse(&arg).unwrap();
    let mut consumer = SpscOptions::new().open_consumer(location).unwrap();
    for i in 0..FRAMES {
        let got = consumer.recv_timeout(Duration::from_secs(20)).unwrap();
        assert_eq!(&*got, &frame(i)[..], "frame {i}");
    }
    println!("ready");
}

#[test]
fn every_kind_streams_to_another_process_intact() {
    for (kind, place) in places("stream") {
        let options = SpscOptions::new().capacity(64 << 10);
        let mut producer = options
            .create_producer(&place.location)
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        let child = spawn_child_ready_after("conformance_consumer", &place.location, || {
            for i in 0..FRAMES {
                producer
                    .send_timeout(&frame(i), Duration::from_secs(20))
                    .unwrap_or_else(|e| panic!("{kind}, frame {i}: {e}"));
            }
        });
        child.wait_success();
        let stats = segments::stat(place.location.clone()).unwrap();
        assert_eq!(stats.committed.frames, FRAMES, "{kind}");
        assert_eq!(
            stats.received.frames, FRAMES,
            "{kind}: the consumer counted as it went"
        );
    }
}

/// Spawns the child test `name` for `location`, runs `work` while it runs, then reads its
/// output to the end (it must have said "ready") and returns it to be waited for.
fn spawn_child_ready_after(
    name: &str,
    location: &Location,
    work: impl FnOnce(),
) -> common::ChildGuard {
    let mut child = common::spawn_child_piped(name, &location.to_string());
    let mut stdout = child.stdout.take().unwrap();
    let guard = common::ChildGuard(Some(child));
    work();
    let mut output = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut output).unwrap();
    assert!(
        output.contains("ready"),
        "the child did not finish: {output}"
    );
    guard
}

#[test]
fn every_kind_refuses_a_second_holder_a_wrong_kind_and_a_second_creation() {
    for (kind, place) in places("roles") {
        let options = SpscOptions::new().capacity(4096);
        let _producer = options.create_producer(&place.location).unwrap();
        assert!(
            matches!(
                options.open_producer(&place.location),
                Err(Error::RoleTaken {
                    role: Role::Producer,
                    ..
                })
            ),
            "{kind}"
        );
        assert!(
            matches!(
                MpmcOptions::new().open(&place.location),
                Err(Error::WrongKind { .. })
            ),
            "{kind}"
        );
        assert!(
            matches!(
                options.create_consumer(&place.location),
                Err(Error::AlreadyExists)
            ),
            "{kind}"
        );
        let mut consumer = options.open_consumer(&place.location).unwrap();
        assert!(matches!(consumer.try_recv(), Err(Error::Empty)), "{kind}");
    }
}

#[test]
fn every_kind_goes_with_its_creator_unless_kept() {
    for (kind, place) in places("life") {
        let options = SpscOptions::new().capacity(4096);
        drop(options.create_producer(&place.location).unwrap());
        assert!(
            matches!(options.open_consumer(&place.location), Err(Error::NotFound)),
            "{kind}: removed with its creator"
        );
        drop(
            options
                .clone()
                .keep_segment(true)
                .create_producer(&place.location)
                .unwrap(),
        );
        let mut consumer = options.open_consumer(&place.location).unwrap();
        assert!(
            matches!(consumer.try_recv(), Err(Error::PeerGone(_))),
            "{kind}"
        );
        drop(consumer);
        if let Location::Served(_) = place.location {
            // Served until this process exits: no one else can take its name away.
            assert!(matches!(
                ringport::remove_segment(place.location.clone()),
                Err(Error::Unsupported(_))
            ));
            continue;
        }
        ringport::remove_segment(place.location.clone()).unwrap();
        assert!(
            matches!(options.open_consumer(&place.location), Err(Error::NotFound)),
            "{kind}: removed"
        );
    }
}

/// A child that creates an MPMC ring at the location in its argument, sends a message, says it
/// is ready, and waits to be killed.
#[test]
#[ignore = "child process of the conformance tests"]
fn conformance_creator() {
    let Some(arg) = common::child_arg() else {
        return;
    };
    let ring = MpmcOptions::new()
        .slots(64)
        .slot_size(32)
        .create(Location::parse(&arg).unwrap())
        .unwrap();
    ring.producer().send(b"left behind").unwrap();
    println!("ready");
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn every_kind_left_by_a_killed_creator_is_stale_and_collected() {
    for (kind, place) in places("stale") {
        let mut child = spawn_child_ready("conformance_creator", &place.location.to_string());
        let live = segments::inspect(place.location.clone()).unwrap();
        assert!(live.in_use() && !live.is_stale(), "{kind}: {live:?}");
        kill9(&mut child);
        if let Location::Served(_) = place.location {
            // Nothing is left: the name went with its server.
            assert!(matches!(
                segments::inspect(place.location.clone()),
                Err(Error::NotFound)
            ));
            assert!(matches!(
                MpmcOptions::new().open(&place.location),
                Err(Error::NotFound)
            ));
            continue;
        }
        let info = segments::inspect(place.location.clone()).unwrap();
        assert!(info.is_stale(), "{kind}: {info:?}");
        // What it left is there to read, by another process.
        let ring = MpmcOptions::new().open(&place.location).unwrap();
        assert_eq!(&*ring.consumer().recv().unwrap(), b"left behind", "{kind}");
        drop(ring);
        if place.listed {
            let listed = segments::list().unwrap();
            assert!(
                listed.iter().any(|s| s.location == place.location),
                "{kind}: not listed"
            );
            let removed = segments::collect_matching(&info.name, false).unwrap();
            assert_eq!(removed.len(), 1, "{kind}");
        } else {
            ringport::remove_segment(place.location.clone()).unwrap();
        }
        assert!(
            matches!(
                segments::inspect(place.location.clone()),
                Err(Error::NotFound)
            ),
            "{kind}"
        );
    }
}

#[test]
fn a_live_holder_is_seen_alive_in_every_kind() {
    for (kind, place) in places("holders") {
        let _producer = SpscOptions::new()
            .capacity(4096)
            .create_producer(&place.location)
            .unwrap();
        let info = segments::inspect(place.location.clone()).unwrap();
        let ring = info.ring.as_ref().expect("a ringport ring");
        assert_eq!(ring.holders[0].state, HolderState::Alive, "{kind}");
        if place.listed {
            assert!(
                segments::list()
                    .unwrap()
                    .iter()
                    .any(|s| s.location == place.location && s.in_use()),
                "{kind}: listed, in use"
            );
        }
        assert!(!segments::collect_matching(&info.name, false)
            .unwrap()
            .iter()
            .any(|s| s.location == place.location));
    }
}

#[test]
fn a_system_v_key_held_by_another_program_is_left_alone() {
    let key = (0x5251_0000u32 | (std::process::id() & 0xffff)) as i32;
    // SAFETY: shmget takes plain values.
    let id = unsafe { libc::shmget(key, 4096, libc::IPC_CREAT | libc::IPC_EXCL | 0o600) };
    assert!(id >= 0, "shmget: {}", std::io::Error::last_os_error());
    struct Foreign(i32);
    impl Drop for Foreign {
        fn drop(&mut self) {
            // SAFETY: IPC_RMID takes no buffer.
            unsafe { libc::shmctl(self.0, libc::IPC_RMID, std::ptr::null_mut()) };
        }
    }
    let _foreign = Foreign(id);
    let location = Location::SysV(key);
    assert!(matches!(
        SpscOptions::new().create_producer(&location),
        Err(Error::KeyInUse { key: k }) if k == key
    ));
    assert!(matches!(
        SpscOptions::new().open_consumer(&location),
        Err(Error::TooSmall { .. } | Error::BadMagic { .. })
    ));
    assert!(matches!(
        ringport::remove_segment(location.clone()),
        Err(Error::KeyInUse { .. })
    ));
    let info = segments::inspect(location).unwrap();
    assert!(info.ring.is_none() && !info.is_stale());
}

#[test]
fn ftok_gives_every_process_the_same_key_and_a_missing_path_is_not_found() {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let a = Location::sysv_from_path(&path, 7).unwrap();
    let b = Location::sysv_from_path(&path, 7).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, Location::sysv_from_path(&path, 8).unwrap());
    assert!(matches!(
        Location::sysv_from_path("/no/such/path", 7),
        Err(Error::NotFound)
    ));
}

fn free_huge_pages() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("HugePages_Free:")
                .map(|v| v.trim().parse::<u64>().unwrap())
        })
        .unwrap_or(0)
}

/// Streams 2,000 frames through a ring made by `options` at `location` (a memfd if `None`).
fn stream(options: &SpscOptions, location: Option<&Location>) -> ringport::Result<()> {
    let (mut producer, mut consumer) = match location {
        Some(location) => (
            options.create_producer(location)?,
            SpscOptions::new().open_consumer(location)?,
        ),
        None => {
            let (producer, fd) = options.create_producer_memfd()?;
            (producer, SpscOptions::new().open_consumer_fd(&fd)?)
        }
    };
    for i in 0..2000 {
        producer.send(&frame(i))?;
        assert_eq!(&*consumer.recv()?, &frame(i)[..]);
    }
    Ok(())
}

/// Huge pages reserved for a test, and a hugetlbfs mounted, undone on drop.
struct Reserved {
    before: String,
    mount: Option<PathBuf>,
}

impl Drop for Reserved {
    fn drop(&mut self) {
        if let Some(dir) = &self.mount {
            let _ = std::process::Command::new("umount").arg(dir).status();
            let _ = std::fs::remove_dir(dir);
        }
        let _ = std::fs::write("/proc/sys/vm/nr_hugepages", &self.before);
    }
}

#[test]
fn huge_pages_are_used_where_reserved_and_refused_clearly_where_not() {
    let options = SpscOptions::new().capacity(2 << 20).huge_pages(true);
    let posix = unique("huge");
    assert!(matches!(
        options.create_producer(posix.as_str()),
        Err(Error::Unsupported(_))
    ));
    let file = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(unique("huge"));
    assert!(matches!(
        options.create_producer(Location::File(file.clone())),
        Err(Error::Unsupported(_))
    ));
    assert!(!file.exists(), "the refused file is removed");
    if free_huge_pages() == 0 {
        // The ring and its header round up to two pages.
        assert!(matches!(
            stream(&options, None),
            Err(Error::NoHugePages { len }) if len == 4 << 20
        ));
        let key = Location::SysV((0x5252_0000u32 | (std::process::id() & 0xffff)) as i32);
        assert!(matches!(
            stream(&options, Some(&key)),
            Err(Error::NoHugePages { .. } | Error::Unsupported(_))
        ));
    }
    // Root reserves some for the rest (and gives them back); others need them reserved.
    if !nix::unistd::geteuid().is_root() && free_huge_pages() < 6 {
        eprintln!("skipped the huge-page streams: fewer than 6 huge pages free, and not root");
        return;
    }
    let before = std::fs::read_to_string("/proc/sys/vm/nr_hugepages").unwrap();
    let mut reserved = Reserved {
        before: before.clone(),
        mount: None,
    };
    if free_huge_pages() < 6 {
        let want = before.trim().parse::<u64>().unwrap() + 6;
        std::fs::write("/proc/sys/vm/nr_hugepages", want.to_string()).unwrap();
        if free_huge_pages() < 6 {
            eprintln!("skipped the huge-page streams: the kernel would not reserve 6 pages");
            return;
        }
    }
    stream(&options, None).expect("a memfd on huge pages");
    let key = Location::SysV((0x5253_0000u32 | (std::process::id() & 0xffff)) as i32);
    let _place = Place {
        location: key.clone(),
        listed: true,
    };
    stream(&options, Some(&key)).expect("a System V segment on huge pages");
    drop(_place);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(unique("hugetlbfs"));
    std::fs::create_dir_all(&dir).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "hugetlbfs", "none"])
        .arg(&dir)
        .status()
        .is_ok_and(|s| s.success());
    reserved.mount = Some(dir.clone());
    if mounted {
        let place = Place {
            location: Location::File(dir.join("ring")),
            listed: false,
        };
        // Huge pages whatever the options say: the file system's.
        stream(&SpscOptions::new().capacity(2 << 20), Some(&place.location))
            .expect("a file on hugetlbfs");
        let _producer = SpscOptions::new()
            .capacity(2 << 20)
            .create_producer(&place.location)
            .unwrap();
        let len = std::fs::metadata(dir.join("ring")).unwrap().len();
        assert_eq!(len, 4 << 20, "sized in whole huge pages");
    } else {
        eprintln!("skipped the hugetlbfs file: mount -t hugetlbfs failed");
    }
}

#[test]
fn memory_locked_rings_work_or_say_what_to_raise() {
    let place = Place {
        location: Location::Shm(unique("locked")),
        listed: true,
    };
    match SpscOptions::new()
        .capacity(64 << 10)
        .lock_in_memory(true)
        .create_producer(&place.location)
    {
        Ok(mut producer) => {
            producer.send(b"locked").unwrap();
            let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
            assert!(smaps.contains("Locked:"), "smaps shows locks");
        }
        Err(Error::MemoryLock { len, limit }) => assert!(len > limit),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn a_memfd_ring_streams_through_its_descriptor() {
    stream(&SpscOptions::new().capacity(64 << 10), None).unwrap();
}
