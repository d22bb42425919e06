//! What `/dev/shm` and System V hold and who uses it, for `ringport::segments`: the names and
//! keys there, a segment's size, owner and first bytes (a file's read with `pread`, never
//! mapped, so that a segment truncated meanwhile cannot fault us; a System V segment's through
//! a read-only attachment: it cannot shrink), and the processes that map or hold each one open
//! (from `/proc`).

use std::collections::HashMap;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::SystemTime;

use crate::error::{Error, Result};
use crate::os::FileFacts;
use crate::os::Location;

/// Where named POSIX segments live.
const SHM_DIR: &str = "/dev/shm";

/// As `os::io_error`, with a missing file as [`Error::NotFound`].
fn io_error(op: &'static str, e: &std::io::Error) -> Error {
    match e.kind() {
        std::io::ErrorKind::NotFound => Error::NotFound,
        _ => crate::os::io_error(op, e),
    }
}

/// The names of the regular files in `/dev/shm`, sorted.
///
/// # Errors
/// [`Error::Os`] if the directory cannot be read.
pub(crate) fn names() -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(SHM_DIR).map_err(|e| io_error("read /dev/shm", &e))? {
        let Ok(entry) = entry else { continue };
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
    }
    names.sort();
    Ok(names)
}

/// A segment opened for reading alone: its facts, and its bytes by `pread` (a file: a POSIX
/// segment or a mapped file) or through a read-only attachment (System V, which cannot shrink).
pub(crate) struct SegmentFile {
    source: Source,
    facts: FileFacts,
    /// A served ring's: the process that serves it.
    server_pid: Option<u32>,
}

enum Source {
    File(std::fs::File),
    /// Attached read-only once, for every read.
    SysV(super::sysv::Attached),
}

impl SegmentFile {
    /// Opens the segment at `location` (a POSIX name checked by the caller) to read.
    ///
    /// # Errors
    /// [`Error::NotFound`], or [`Error::Os`] if it cannot be opened (another user's, mode
    /// 0600).
    pub(crate) fn open(location: &Location) -> Result<SegmentFile> {
        let path = match location {
            Location::Shm(name) => Path::new(SHM_DIR).join(name),
            Location::File(path) => path.clone(),
            Location::Served(name) => {
                let (fd, server) = super::served::fetch(name, &crate::options::Access::default())?;
                let file = std::fs::File::from(fd);
                let len = file.metadata().map_err(|e| io_error("fstat", &e))?.len();
                return Ok(SegmentFile {
                    source: Source::File(file),
                    facts: FileFacts {
                        len,
                        uid: server.uid,
                        mode: 0o600,
                        modified: SystemTime::now(),
                    },
                    server_pid: u32::try_from(server.pid).ok(),
                });
            }
            Location::SysV(key) => {
                let id = super::sysv::id_of(*key)?;
                let listed = super::sysv::list()
                    .into_iter()
                    .find(|l| l.id == id)
                    .ok_or(Error::NotFound)?;
                return Ok(SegmentFile {
                    source: Source::SysV(super::sysv::attach_to_read(id)?),
                    facts: sysv_facts(&listed),
                    server_pid: None,
                });
            }
        };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)
            .map_err(|e| io_error("open a segment to read", &e))?;
        let meta = file.metadata().map_err(|e| io_error("fstat", &e))?;
        let facts = FileFacts {
            len: meta.len(),
            uid: meta.uid(),
            mode: meta.mode() & 0o7777,
            modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        };
        Ok(SegmentFile {
            source: Source::File(file),
            facts,
            server_pid: None,
        })
    }

    /// A served ring's server process.
    pub(crate) fn server_pid(&self) -> Option<u32> {
        self.server_pid
    }

    /// Its size, owner, mode and time, as they were when it was opened.
    pub(crate) fn facts(&self) -> FileFacts {
        self.facts
    }

    /// Reads into `buf` from byte `offset`; returns how many bytes there were (fewer than
    /// asked at the end of the segment).
    ///
    /// # Errors
    /// [`Error::Os`] if the read fails.
    pub(crate) fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let file = match &self.source {
            Source::File(file) => file,
            Source::SysV(attached) => {
                let offset = usize::try_from(offset).unwrap_or(usize::MAX);
                return Ok(attached.read(offset, buf));
            }
        };
        let mut got = 0;
        while got < buf.len() {
            match file.read_at(&mut buf[got..], offset + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error("pread", &e)),
            }
        }
        Ok(got)
    }
}

fn sysv_facts(listed: &super::sysv::Listed) -> FileFacts {
    FileFacts {
        len: listed.size,
        uid: listed.uid,
        mode: listed.mode & 0o7777,
        modified: SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(listed.changed),
    }
}

/// The System V segments with a key: each one's location and how many processes attach it.
pub(crate) fn sysv_segments() -> Vec<(Location, u64)> {
    super::sysv::list()
        .into_iter()
        .map(|l| (Location::SysV(l.key), l.attached))
        .collect()
}

/// The first `len` bytes (fewer if the file is shorter), the facts of the segment at
/// `location` (a POSIX name checked by the caller), and a served ring's server.
///
/// # Errors
/// As [`SegmentFile::open`] and [`SegmentFile::read_at`].
pub(crate) fn head(location: &Location, len: usize) -> Result<(Vec<u8>, FileFacts, Option<u32>)> {
    let file = SegmentFile::open(location)?;
    let facts = file.facts();
    let mut bytes = vec![0u8; len.min(usize::try_from(facts.len).unwrap_or(usize::MAX))];
    let got = file.read_at(0, &mut bytes)?;
    bytes.truncate(got);
    Ok((bytes, facts, file.server_pid()))
}

/// The rings served on this machine (see `served`).
pub(crate) fn served_rings() -> Vec<Location> {
    super::served::names()
        .into_iter()
        .map(Location::Served)
        .collect()
}

/// Every process in `/proc`: its pid and its directory there.
fn processes() -> impl Iterator<Item = (u32, std::path::PathBuf)> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((pid, entry.path()))
        })
}

/// The processes that map the file at `path` or hold it open, as far as `/proc` shows them.
pub(crate) fn file_users(path: &Path) -> Vec<u32> {
    let Ok(path) = path.canonicalize() else {
        return Vec::new();
    };
    let Some(wanted) = path.to_str() else {
        return Vec::new();
    };
    let mut users = Vec::new();
    for (pid, dir) in processes() {
        let maps = std::fs::read_to_string(dir.join("maps")).unwrap_or_default();
        let mapped = maps.lines().any(|l| l.ends_with(wanted));
        let open = || {
            std::fs::read_dir(dir.join("fd"))
                .into_iter()
                .flatten()
                .flatten()
                .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t == path))
        };
        if mapped || open() {
            users.push(pid);
        }
    }
    users
}

/// Who uses which segment: for each name in `/dev/shm`, the pids of the processes that map it
/// or hold it open, as far as `/proc` lets us see; and how many processes could not be looked
/// at (another user's, unless we are root).
pub(crate) fn users() -> (HashMap<String, Vec<u32>>, usize) {
    let mut users: HashMap<String, Vec<u32>> = HashMap::new();
    let mut hidden = 0;
    let prefix = format!("{SHM_DIR}/");
    for (pid, dir) in processes() {
        let mut names: Vec<String> = Vec::new();
        let maps = std::fs::read_to_string(dir.join("maps"));
        let fds = std::fs::read_dir(dir.join("fd"));
        if maps.is_err() && fds.is_err() {
            hidden += 1;
            continue;
        }
        for line in maps.iter().flat_map(|m| m.lines()) {
            // The path is the sixth field; a removed file's ends with " (deleted)".
            if let Some(at) = line.find(&prefix) {
                let path = &line[at + prefix.len()..];
                if !path.ends_with(" (deleted)") {
                    names.push(path.to_string());
                }
            } else if let Some(at) = line.find(" /SYSV") {
                // A System V attachment: "/SYSV<key, 8 hex digits> (deleted)" always.
                let hex = line[at + 6..].split(' ').next().unwrap_or("");
                if let Ok(key) = u32::from_str_radix(hex, 16) {
                    names.push(Location::SysV(key as i32).to_string());
                }
            }
        }
        for fd in fds.into_iter().flatten().flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                if let Some(name) = target.to_str().and_then(|t| t.strip_prefix(&prefix)) {
                    names.push(name.to_string());
                }
            }
        }
        names.sort();
        names.dedup();
        for name in names {
            users.entry(name).or_default().push(pid);
        }
    }
    (users, hidden)
}
