//! What lives in `/dev/shm`: ringport's named segments, who holds them, and which are stale, as
//! `ipcs` and `ipcrm` do for System V objects. A segment whose creator was killed stays in
//! `/dev/shm` (nothing else removes it, and a new create under its name gets `AlreadyExists`):
//! [`collect`] removes those that nobody uses any more, and never one in use.
//!
//! A segment is looked at without being attached: its header is read with `pread` (never
//! mapped, so a segment truncated meanwhile cannot fault the caller), and its users are the
//! processes that map it or hold it open, from `/proc`.
//!
//! ```no_run
//! # fn main() -> Result<(), ringport::Error> {
//! for segment in ringport::segments::list()? {
//!     println!("{}: {} bytes, in use: {}", segment.name, segment.len, segment.in_use());
//! }
//! let removed = ringport::segments::collect(false)?; // the stale ones
//! # Ok(()) }
//! ```

use std::time::SystemTime;

mod stat;

pub use stat::{stat, RingStats, SideCounts, Traffic};

use crate::error::{Error, Result, Role};
use crate::layout::{
    SegmentHeader, DATA_OFFSET, KIND_MPMC, KIND_PUBSUB, KIND_SPSC, LAYOUT_VERSION, MAGIC,
};
use crate::os::inventory;
use crate::os::Location;
use crate::os::{Kernel, Liveness, Memory, HOST};
use crate::role::{slot_state, SlotState};
use crate::sync::Ordering;

/// The kind of ring a segment holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingKind {
    /// One producer, one consumer, frames of any size.
    Spsc,
    /// Many producers and consumers, fixed-size slots.
    Mpmc,
    /// One publisher, many subscribers, each seeing every frame.
    PubSub,
}

/// What became of a role's holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HolderState {
    /// Nobody has held the role.
    Never,
    /// The holder lives.
    Alive,
    /// The holder died holding it (or its death was marked).
    Dead,
    /// The holder let go of it.
    Detached,
    /// The holder is in another pid namespace: its pid means nothing here.
    Unknown,
}

/// A role of an SPSC ring and its holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder {
    /// Which end.
    pub role: Role,
    /// The holder's pid (the last holder's, once it has gone), if any held it.
    pub pid: Option<u32>,
    /// Whether it is still there.
    pub state: HolderState,
}

/// What a ringport segment's header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingInfo {
    /// The kind of ring.
    pub kind: RingKind,
    /// The data area in bytes.
    pub capacity: u64,
    /// The largest frame (SPSC) or the slot size (MPMC).
    pub max_frame: u32,
    /// The process that created it.
    pub creator_pid: u32,
    /// The producer's and the consumer's holders (SPSC), the publisher's (publish-subscribe;
    /// its role is the producer's); none for MPMC, whose handles come and go unrecorded.
    pub holders: Vec<Holder>,
    /// The message type of a typed ring (the first 32 bytes of its name), if it is one.
    pub message_type: Option<String>,
}

/// A segment in `/dev/shm` or a System V segment (or a mapped file, when inspected).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Where it is.
    pub location: Location,
    /// Its name as `ringport`'s commands take it ([`Location`]'s display): a POSIX name
    /// without its leading '/', `sysv:KEY`, or `file:PATH`.
    pub name: String,
    /// Its size in bytes.
    pub len: u64,
    /// The uid that owns it.
    pub uid: u32,
    /// Its permission bits.
    pub mode: u32,
    /// When it was last modified (its size set, or written through `write`).
    pub modified: SystemTime,
    /// The layout version, if the segment carries ringport's magic.
    pub ringport_version: Option<u32>,
    /// The ring, if it is a ringport segment of this build's layout.
    pub ring: Option<RingInfo>,
    /// The processes that map it or hold it open (as far as `/proc` shows them).
    pub users: Vec<u32>,
    /// System V: how many attachments the kernel counts (processes we cannot look at too).
    pub attachments: Option<u64>,
    /// Whether a process we could not look at (another user's) may use it: some were hidden
    /// from us and its mode lets others than its owner open it.
    pub may_have_hidden_users: bool,
}

impl SegmentInfo {
    /// Whether anything uses it: a process that maps it or holds it open, or a live holder of
    /// one of its roles (or one we cannot judge), or a process we could not look at.
    #[must_use]
    pub fn in_use(&self) -> bool {
        let held = self.ring.as_ref().is_some_and(|ring| {
            ring.holders
                .iter()
                .any(|h| matches!(h.state, HolderState::Alive | HolderState::Unknown))
        });
        !self.users.is_empty()
            || held
            || self.may_have_hidden_users
            || self.attachments.is_some_and(|n| n > 0)
    }

    /// Whether [`collect`] removes it: a ringport segment of this layout that nothing uses.
    #[must_use]
    pub fn is_stale(&self) -> bool {
        self.ring.is_some() && !self.in_use()
    }
}

/// Every segment in `/dev/shm`, every System V segment with a key (ringport's and others'), and
/// every ring served by name, in that order, each kind sorted; those that cannot be read
/// (another user's) are left out.
///
/// # Errors
/// [`Error::Os`] if `/dev/shm` cannot be read.
pub fn list() -> Result<Vec<SegmentInfo>> {
    let (users, hidden) = inventory::users();
    let mut segments = Vec::new();
    for name in inventory::names()? {
        if let Ok(info) = describe(&Location::Shm(name), &users, hidden, None) {
            segments.push(info);
        }
    }
    let mut sysv = inventory::sysv_segments();
    sysv.sort_by_key(|(location, _)| location.to_string());
    for (location, attached) in sysv {
        if let Ok(info) = describe(&location, &users, hidden, Some(attached)) {
            segments.push(info);
        }
    }
    for location in inventory::served_rings() {
        if let Ok(info) = describe(&location, &users, hidden, None) {
            segments.push(info);
        }
    }
    Ok(segments)
}

/// The segment at `location`: a POSIX name (a `&str`, with or without its leading '/'), a
/// System V key, or a mapped file.
///
/// # Errors
/// [`Error::InvalidName`]; [`Error::NotFound`]; [`Error::Os`] if it cannot be read.
pub fn inspect(location: impl Into<Location>) -> Result<SegmentInfo> {
    let location = checked(location.into())?;
    let (users, hidden) = inventory::users();
    let attached = match &location {
        Location::SysV(key) => inventory::sysv_segments()
            .into_iter()
            .find(|(l, _)| *l == Location::SysV(*key))
            .map(|(_, n)| n),
        _ => None,
    };
    describe(&location, &users, hidden, attached)
}

/// Removes every stale segment ([`SegmentInfo::is_stale`]), or none with `dry_run`; returns
/// them. A segment that another process opens between the look and the removal keeps its
/// mapping (only the name or key goes).
///
/// # Errors
/// As [`list`]; [`Error::Os`] if a removal fails (the segments removed before it stay removed).
pub fn collect(dry_run: bool) -> Result<Vec<SegmentInfo>> {
    collect_matching("", dry_run)
}

/// As [`collect`], for the segments whose names start with `prefix` alone (an application's
/// own, say; `sysv:` for the System V ones).
///
/// # Errors
/// As [`collect`].
pub fn collect_matching(prefix: &str, dry_run: bool) -> Result<Vec<SegmentInfo>> {
    let prefix = prefix.strip_prefix('/').unwrap_or(prefix);
    let stale: Vec<SegmentInfo> = list()?
        .into_iter()
        .filter(|s| s.name.starts_with(prefix) && s.is_stale())
        .collect();
    if !dry_run {
        for segment in &stale {
            match crate::os::remove_segment(segment.location.clone()) {
                Ok(()) | Err(Error::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(stale)
}

/// A POSIX name without its leading '/', if it can name a segment; other locations as given.
fn checked(location: Location) -> Result<Location> {
    match location {
        Location::Shm(name) => bare(&name).map(|bare| Location::Shm(bare.to_string())),
        other => Ok(other),
    }
}

/// `name` without its leading '/', if it can name a segment.
fn bare(name: &str) -> Result<&str> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    if bare.is_empty() || bare.contains('/') || bare == "." || bare == ".." {
        return Err(Error::InvalidName {
            reason: "not a segment name",
        });
    }
    Ok(bare)
}

fn describe(
    location: &Location,
    users: &std::collections::HashMap<String, Vec<u32>>,
    hidden: usize,
    attachments: Option<u64>,
) -> Result<SegmentInfo> {
    let (head, facts, server) = inventory::head(location, DATA_OFFSET)?;
    let (ringport_version, ring) = read_ring(&head);
    let name = location.to_string();
    let users = match location {
        Location::File(path) => inventory::file_users(path),
        // The process that serves it, alive as long as it is listed.
        Location::Served(_) => server.into_iter().collect(),
        _ => users.get(&name).cloned().unwrap_or_default(),
    };
    Ok(SegmentInfo {
        location: location.clone(),
        users,
        name,
        len: facts.len,
        uid: facts.uid,
        mode: facts.mode,
        modified: facts.modified,
        ringport_version,
        ring,
        attachments,
        may_have_hidden_users: hidden > 0 && facts.mode & 0o077 != 0,
    })
}

/// The header's story, from a copy of its bytes: the version if the magic is ringport's, and
/// the ring if the version is this build's.
fn read_ring(head: &[u8]) -> (Option<u32>, Option<RingInfo>) {
    let Ok(header) = Memory::image_header(head) else {
        return (None, None);
    };
    // Relaxed throughout: the header is a copy in our own memory (read with pread), which
    // nobody writes while we read it; its values are checked before they are used.
    let id = &header.identity;
    if id.magic.load(Ordering::Relaxed) != MAGIC {
        return (None, None);
    }
    let version = id.version.load(Ordering::Relaxed);
    if version != LAYOUT_VERSION {
        return (Some(version), None);
    }
    let kind = match id.kind.load(Ordering::Relaxed) {
        KIND_SPSC => RingKind::Spsc,
        KIND_MPMC => RingKind::Mpmc,
        KIND_PUBSUB => RingKind::PubSub,
        _ => return (Some(version), None),
    };
    let capacity = id.capacity.load(Ordering::Relaxed);
    let holders = match kind {
        RingKind::Spsc => [Role::Producer, Role::Consumer]
            .into_iter()
            .map(|role| holder(&header, role))
            .collect(),
        RingKind::PubSub => vec![holder(&header, Role::Producer)],
        RingKind::Mpmc => Vec::new(),
    };
    let message = header.message_type();
    let message_type = (message.hash != 0).then(|| {
        let len = message.name.iter().position(|&b| b == 0).unwrap_or(32);
        String::from_utf8_lossy(&message.name[..len]).into_owned()
    });
    let ring = RingInfo {
        kind,
        capacity,
        max_frame: id.max_frame.load(Ordering::Relaxed),
        creator_pid: id.creator_pid.load(Ordering::Relaxed),
        holders,
        message_type,
    };
    (Some(version), Some(ring))
}

fn holder(header: &SegmentHeader, role: Role) -> Holder {
    let (pid, state) = match slot_state(header, role) {
        SlotState::Never | SlotState::Garbled => (None, HolderState::Never),
        SlotState::Detached { pid } => (Some(pid), HolderState::Detached),
        SlotState::Died { pid } => (Some(pid), HolderState::Dead),
        SlotState::Held(who) => {
            let mut check = Default::default();
            let state = match HOST.liveness(&mut check, who) {
                Liveness::Alive => HolderState::Alive,
                Liveness::Dead => HolderState::Dead,
                Liveness::Unknown => HolderState::Unknown,
            };
            (Some(who.pid), state)
        }
    };
    Holder { role, pid, state }
}
