//! Where a ring that processes find by name lives: a POSIX shared-memory name, a System V key,
//! or a file.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Where a named ring lives. Every kind holds the same ring; they differ in how another
/// process finds it, what outlives a crash, and what the system limits.
///
/// | kind | found by | left by a killed creator | listed by `ringport ls` |
/// |---|---|---|---|
/// | [`Shm`](Location::Shm) | a name in `/dev/shm` | the name | yes |
/// | [`SysV`](Location::SysV) | a key (`ftok` or chosen) | the segment (`ipcs -m`) | yes |
/// | [`File`](Location::File) | a path (tmpfs, hugetlbfs, disk) | the file | no |
/// | [`Served`](Location::Served) | a name its creator serves | nothing | yes |
///
/// A served ring is the one kind that no one can truncate and that leaves nothing behind: its
/// memory is a sealed memfd, handed to openers by its creator on an abstract Unix socket, and
/// both go with the creator however it dies.
///
/// A `&str` or `String` converts to [`Location::Shm`]; [`parse`](Location::parse) reads the
/// forms `ringport`'s commands take (`NAME`, `sysv:KEY`, `file:PATH`, `@NAME`).
///
/// ```
/// use ringport::Location;
/// assert_eq!(Location::from("my-ring"), Location::Shm("my-ring".into()));
/// assert_eq!(Location::parse("sysv:0x2a").unwrap(), Location::SysV(42));
/// assert_eq!(Location::parse("file:/tmp/ring").unwrap(), Location::File("/tmp/ring".into()));
/// assert_eq!(Location::parse("@feed").unwrap(), Location::Served("feed".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Location {
    /// A POSIX shared-memory segment (`shm_open`): a name in `/dev/shm`, unlinked by the
    /// creator when it goes (unless kept).
    Shm(String),
    /// A System V segment (`shmget`, `shmat`) with this key, marked for removal
    /// (`IPC_RMID`) by the creator when it goes (unless kept). Its size is bound by
    /// `kernel.shmmax` and `kernel.shmall`, not by `/dev/shm`.
    SysV(i32),
    /// A file at this path, mapped shared: on a tmpfs it is memory, on hugetlbfs huge pages
    /// (its size rounded up to the page), on a disk it is written back. Removed by the creator
    /// when it goes (unless kept).
    File(PathBuf),
    /// A sealed memfd that the creator's process serves under this name, on an abstract Unix
    /// socket (`@ringport-ring/NAME`), to processes of its uid (or its group, when shared with
    /// one); an opener takes it only from a server of its own uid (or one it trusts). The name
    /// goes when the creator's endpoint goes (or, if kept, when its process exits, however it
    /// exits); the ring stays with those that have it.
    Served(String),
}

impl Location {
    /// A System V key made from an existing path and a project id, as `ftok(3)` makes it:
    /// the same path and id give every process the same key.
    ///
    /// # Errors
    /// [`Error::NotFound`] if the path does not exist; [`Error::InvalidName`] if it holds a
    /// NUL byte; [`Error::Os`].
    pub fn sysv_from_path(path: impl AsRef<Path>, project: u8) -> Result<Location> {
        super::sysv_key(path.as_ref(), project).map(Location::SysV)
    }

    /// Reads `NAME` (a POSIX name), `sysv:KEY` (decimal, or hexadecimal after `0x`),
    /// `file:PATH` or `@NAME` (a served ring).
    ///
    /// # Errors
    /// [`Error::InvalidName`] if a key does not parse or a form is empty.
    pub fn parse(text: &str) -> Result<Location> {
        let bad = |reason| Error::InvalidName { reason };
        if let Some(key) = text.strip_prefix("sysv:") {
            let parsed = match key.strip_prefix("0x").or_else(|| key.strip_prefix("0X")) {
                Some(hex) => u32::from_str_radix(hex, 16).map(|k| k as i32),
                None => key.parse::<i32>(),
            };
            return parsed
                .map(Location::SysV)
                .map_err(|_| bad("a System V key is a number (decimal, or hexadecimal after 0x)"));
        }
        if let Some(path) = text.strip_prefix("file:") {
            if path.is_empty() {
                return Err(bad("a file location needs a path"));
            }
            return Ok(Location::File(PathBuf::from(path)));
        }
        if let Some(name) = text.strip_prefix('@') {
            if name.is_empty() {
                return Err(bad("a served ring needs a name"));
            }
            return Ok(Location::Served(name.to_string()));
        }
        Ok(Location::Shm(text.to_string()))
    }
}

impl std::fmt::Display for Location {
    /// The form [`Location::parse`] reads.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Shm(name) => f.write_str(name),
            Location::SysV(key) => write!(f, "sysv:{:#x}", *key as u32),
            Location::File(path) => write!(f, "file:{}", path.display()),
            Location::Served(name) => write!(f, "@{name}"),
        }
    }
}

impl From<&str> for Location {
    fn from(name: &str) -> Location {
        Location::Shm(name.to_string())
    }
}

impl From<String> for Location {
    fn from(name: String) -> Location {
        Location::Shm(name)
    }
}

impl From<&String> for Location {
    fn from(name: &String) -> Location {
        Location::Shm(name.clone())
    }
}

impl From<&Location> for Location {
    fn from(location: &Location) -> Location {
        location.clone()
    }
}
