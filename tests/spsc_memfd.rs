//! Anonymous segments: a sealed memfd, passed as a descriptor, that no one can resize.

mod common;

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use common::shm_entries;
use ringport::{Error, SpscOptions};

fn small() -> SpscOptions {
    SpscOptions::new().capacity(4096).max_frame(1024)
}

/// A memfd of `len` bytes, with `seals` added (0 for none).
fn raw_memfd(len: i64, seals: i32) -> OwnedFd {
    // SAFETY: plain system calls on a descriptor we own from here on.
    unsafe {
        let fd = libc::memfd_create(
            c"test".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        );
        assert!(fd >= 0);
        let fd = OwnedFd::from_raw_fd(fd);
        assert_eq!(libc::ftruncate(fd.as_raw_fd(), len), 0);
        if seals != 0 {
            assert_eq!(libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals), 0);
        }
        fd
    }
}

#[test]
fn a_memfd_ring_carries_frames_and_leaves_no_name() {
    let before = shm_entries();
    let (mut producer, fd) = small().create_producer_memfd().unwrap();
    let mut consumer = small().open_consumer_fd(&fd).unwrap();
    assert_eq!(shm_entries(), before, "a memfd segment shows in /dev/shm");
    drop(fd); // the mappings keep the memory
    for i in 0..1000u32 {
        producer.send(&i.to_le_bytes()).unwrap();
        assert_eq!(&*consumer.recv().unwrap(), &i.to_le_bytes());
    }
    assert!(matches!(
        small().open_consumer_fd(raw_memfd(8192, libc::F_SEAL_SHRINK)),
        Err(Error::BadMagic { .. })
    ));
}

#[test]
fn a_memfd_segment_cannot_be_resized() {
    let (_consumer, fd) = small().create_consumer_memfd().unwrap();
    // SAFETY: system calls on a descriptor we own.
    let (shrink, grow) = unsafe {
        (
            libc::ftruncate(fd.as_raw_fd(), 0),
            libc::ftruncate(fd.as_raw_fd(), 1 << 20),
        )
    };
    assert_eq!((shrink, grow), (-1, -1), "a sealed segment was resized");
    assert_eq!(
        std::io::Error::last_os_error().raw_os_error(),
        Some(libc::EPERM)
    );
    // SAFETY: as above.
    let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
    let wanted = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
    assert_eq!(seals & wanted, wanted);
    // The producer side attaches through a duplicate as another process would.
    small().open_producer_fd(fd.try_clone().unwrap()).unwrap();
}

#[test]
fn a_descriptor_that_could_shrink_is_refused() {
    assert!(matches!(
        small().open_producer_fd(raw_memfd(8192, 0)),
        Err(Error::Unsealed)
    ));
    assert!(matches!(
        small().open_consumer_fd(raw_memfd(8192, libc::F_SEAL_GROW)),
        Err(Error::Unsealed)
    ));
    // A regular file cannot be sealed at all.
    let file = File::open("/proc/self/exe").unwrap();
    assert!(matches!(
        small().open_consumer_fd(&file),
        Err(Error::Unsealed)
    ));
    // Sealed but shorter than a header.
    assert!(matches!(
        small().open_consumer_fd(raw_memfd(100, libc::F_SEAL_SHRINK)),
        Err(Error::TooSmall { len: 100, .. })
    ));
}
