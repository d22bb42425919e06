//! A ring's traffic, fill and waits, read from outside it ([`stat`], `ringport stat`): from the
//! counters each side publishes in the segment (see the crate's `counters` module), the frames
//! still unread, and the bells' words, without attaching and without mapping the segment (its
//! bytes are read with `pread`).

use std::time::{Duration, SystemTime};

use super::{checked, holder, Holder, RingKind};
use crate::counters::{Passed, Waits};
#[allow(unused_imports, reason = "named by the docs' links")]
use crate::error::Error;
use crate::error::{Result, Role};
use crate::frame;
use crate::layout::{role_index, SegmentHeader, DATA_OFFSET, KIND_MPMC, KIND_SPSC};
use crate::os::inventory::SegmentFile;
use crate::os::Location;
use crate::os::Memory;
use crate::sync::Ordering;

/// A count of frames (messages) and of their payload bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Frames (SPSC) or messages (MPMC).
    pub frames: u64,
    /// Their payload bytes; `None` where they are not counted (MPMC: counting each message's
    /// bytes would cost its hot path).
    pub bytes: Option<u64>,
}

impl Traffic {
    /// Frames of `bytes` payload bytes in all.
    #[must_use]
    pub fn new(frames: u64, bytes: u64) -> Traffic {
        Traffic {
            frames,
            bytes: Some(bytes),
        }
    }

    /// Messages whose bytes are not counted.
    #[must_use]
    pub fn frames(frames: u64) -> Traffic {
        Traffic {
            frames,
            bytes: None,
        }
    }
}

impl std::ops::Add for Traffic {
    type Output = Traffic;
    fn add(self, other: Traffic) -> Traffic {
        Traffic {
            frames: self.frames.wrapping_add(other.frames),
            bytes: self.bytes.zip(other.bytes).map(|(a, b)| a.wrapping_add(b)),
        }
    }
}

/// How one side of a ring waited, over the ring's life (every holder of the side, every MPMC
/// handle of it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SideCounts {
    /// Blocking calls that found the ring not ready and waited.
    pub waits: u64,
    /// Sleeps on the futex.
    pub sleeps: u64,
    /// Ways to sleep that took a `membarrier`.
    pub barriers: u64,
    /// SPSC consumer: waits that began with a stream pause.
    pub stream_pauses: u64,
    /// Times the side's role was taken over from a holder that died (SPSC).
    pub takeovers: u64,
    /// Wake-ups the other side sent to this side's sleepers (a 32-bit count: it wraps).
    pub wakes: u32,
    /// This side's sleepers now.
    pub sleeping: u32,
}

/// What a ring did and holds, read from outside ([`stat`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingStats {
    /// The segment's name, as [`Location`]'s display gives it.
    pub name: String,
    /// The kind of ring.
    pub kind: RingKind,
    /// The data area in bytes.
    pub capacity: u64,
    /// The largest frame (SPSC) or the slot size (MPMC).
    pub max_frame: u32,
    /// When the ring was made (as its creator's clock said).
    pub created: SystemTime,
    /// The producer's and the consumer's holders (SPSC; MPMC handles come and go unrecorded).
    pub holders: Vec<Holder>,
    /// Everything committed since the ring was made: what was received and what is unread.
    /// MPMC: the slots claimed (the tail), an aborted reservation's too.
    pub committed: Traffic,
    /// Received and released by consumers. SPSC: as the consumer last wrote its counts (with
    /// every sixteenth of the ring it hands back, before each blocking receive waits, and when
    /// it goes; a consumer that polls with the `try_` forms may be up to a sixteenth of the
    /// ring behind); the frames after it are in `unread`. MPMC: the slots taken (the head),
    /// exact, bytes not counted.
    pub received: Traffic,
    /// In the ring and not yet received (the fill). SPSC: frames past the consumer's counted
    /// position (some it may have received since). MPMC: slots claimed and not yet taken.
    pub unread: Traffic,
    /// The bytes of the data area that unread frames take (their headers and padding too).
    pub occupied: u64,
    /// The producing side's waits.
    pub producing: SideCounts,
    /// The consuming side's waits.
    pub consuming: SideCounts,
    /// MPMC: slots completed on behalf of handles that died.
    pub recovered: u64,
    /// Whether the figures are from one moment: false if the consumer kept handing space back
    /// while they were read (each figure is still one it held).
    pub steady: bool,
}

impl RingStats {
    /// How full the data area is, from 0 to 1.
    #[must_use]
    pub fn fill(&self) -> f64 {
        self.occupied as f64 / self.capacity as f64
    }
}

/// How many times [`stat`] reads again a ring whose consumer moved on while it was read.
const ATTEMPTS: usize = 8;

/// The traffic, fill and waits of the ring at `location` (a POSIX name, with or without its
/// leading '/', a System V key, or a mapped file), read without attaching to it: its header and
/// its unread frames are read with `pread` (never mapped: a segment truncated meanwhile cannot
/// fault the caller; a System V segment, which cannot shrink, through a read-only attachment), so the peers are not
/// disturbed beyond the cache lines read. An SPSC ring's unread frames are walked, at most one
/// lap: the cost of a look grows with the fill.
///
/// ```no_run
/// # fn main() -> Result<(), ringport::Error> {
/// let stats = ringport::segments::stat("my-ring")?;
/// println!("{} frames in, {} unread ({:.0}% full)", stats.committed.frames,
///          stats.unread.frames, stats.fill() * 100.0);
/// # Ok(()) }
/// ```
///
/// # Errors
/// [`Error::InvalidName`]; [`Error::NotFound`]; [`Error::BadMagic`] if it is not a ringport
/// segment; [`Error::VersionMismatch`] if another build's layout; [`Error::WrongKind`] for a
/// kind this build does not know; [`Error::Corrupted`] or [`Error::TooSmall`] if its header
/// breaks the rules; [`Error::Os`] if it cannot be read (another user's, mode 0600).
pub fn stat(location: impl Into<Location>) -> Result<RingStats> {
    let location = checked(location.into())?;
    let file = SegmentFile::open(&location)?;
    let name = location.to_string();
    let name = name.as_str();
    let mut last = None;
    for _ in 0..ATTEMPTS {
        let first = read_header(&file)?;
        let (stats, walked) = describe(name, &file, &first)?;
        let second = read_header(&file)?;
        let consumer = role_index(Role::Consumer);
        let steady = match stats.kind {
            // The walk began at the position the consumer's counts were read at; if the
            // consumer wrote them again meanwhile, the frames walked may have been reused.
            RingKind::Spsc => {
                walked
                    && Passed::from_copies(&first.counters[consumer], &second.counters[consumer])
                        .is_some()
            }
            // `describe` validates as SPSC or MPMC: a publish-subscribe ring is `WrongKind`
            // there, before this.
            RingKind::Mpmc | RingKind::PubSub => true,
        };
        if steady {
            return Ok(RingStats { steady, ..stats });
        }
        last = Some(stats);
        std::thread::sleep(Duration::from_micros(100));
    }
    Ok(last.expect("ATTEMPTS > 0"))
}

/// A copy of the segment's header.
fn read_header(file: &SegmentFile) -> Result<Box<SegmentHeader>> {
    let mut bytes = vec![0u8; DATA_OFFSET];
    let got = file.read_at(0, &mut bytes)?;
    Memory::image_header(&bytes[..got])
}

/// The stats a header copy gives (with the SPSC ring's unread frames walked), and whether the
/// consumer's counts in it were steady (not being written).
fn describe(name: &str, file: &SegmentFile, header: &SegmentHeader) -> Result<(RingStats, bool)> {
    // Relaxed: the magic, as every other word here, is a copy in our own memory.
    let kind = header.identity.kind.load(Ordering::Relaxed);
    let geometry = match kind {
        KIND_MPMC => crate::mpmc::slot::check_geometry,
        // Any other kind is validated as SPSC: magic and version first (a foreign segment is
        // not a wrong kind), then `WrongKind`.
        _ => frame::check_geometry,
    };
    let expected = if kind == KIND_MPMC {
        KIND_MPMC
    } else {
        KIND_SPSC
    };
    let params = header.validate(expected, file.facts().len, geometry)?;
    let side = |role: Role| side_counts(header, role);
    let id = &header.identity;
    let created =
        SystemTime::UNIX_EPOCH + Duration::from_nanos(id.created_ns.load(Ordering::Relaxed));
    let consumer = &header.counters[role_index(Role::Consumer)];
    let mut stats = RingStats {
        name: name.to_string(),
        kind: RingKind::Spsc,
        capacity: params.capacity,
        max_frame: params.max_frame,
        created,
        holders: Vec::new(),
        committed: Traffic::default(),
        received: Traffic::default(),
        unread: Traffic::default(),
        occupied: 0,
        producing: side(Role::Producer),
        consuming: side(Role::Consumer),
        recovered: header.ledger.recovered.load(Ordering::Relaxed),
        steady: false,
    };
    let mut walked = true;
    if kind == KIND_SPSC {
        stats.holders = [Role::Producer, Role::Consumer]
            .into_iter()
            .map(|role| holder(header, role))
            .collect();
        let passed = Passed::from_copies(consumer, consumer);
        walked = passed.is_some();
        let passed = passed.unwrap_or_default();
        stats.received = Traffic::new(passed.frames, passed.bytes);
        (stats.unread, stats.occupied) = walk_unread(file, &params, passed.at)?;
    } else {
        stats.kind = RingKind::Mpmc;
        let tail = header.positions[0].load(Ordering::Relaxed);
        let head = header.positions[1].load(Ordering::Relaxed);
        let slots = crate::mpmc::slot::Slots::new(params.capacity, params.max_frame);
        let unread = tail.saturating_sub(head).min(slots.count());
        stats.committed = Traffic::frames(tail);
        stats.received = Traffic::frames(head);
        stats.unread = Traffic::frames(unread);
        stats.occupied = unread * (params.capacity / slots.count());
        return Ok((stats, walked));
    }
    stats.committed = stats.received + stats.unread;
    Ok((stats, walked))
}

fn side_counts(header: &SegmentHeader, role: Role) -> SideCounts {
    let waits = Waits::of(&header.counters[role_index(role)]);
    // The bell this side sleeps on: the consumer's is the data bell, the producer's the space
    // bell (see `layout`).
    let bell = &header.bells[match role {
        Role::Consumer => crate::layout::DATA_BELL,
        Role::Producer => crate::layout::SPACE_BELL,
    }];
    SideCounts {
        waits: waits.waits,
        sleeps: waits.sleeps,
        barriers: waits.barriers,
        stream_pauses: waits.stream_pauses,
        takeovers: waits.takeovers,
        wakes: bell.seq.load(Ordering::Relaxed),
        sleeping: bell.sleepers.load(Ordering::Relaxed),
    }
}

/// The frames published past ring position `from` (a frame boundary: where the consumer's
/// counts stop), walked over at most one lap, and the bytes of the ring they take. The walk
/// stops at the first word that is not a published frame's header.
fn walk_unread(
    file: &SegmentFile,
    params: &crate::layout::RingParams,
    from: u64,
) -> Result<(Traffic, u64)> {
    let capacity = params.capacity;
    let mut window = Window::new(file, capacity);
    let mut unread = Traffic::new(0, 0);
    // A hostile position: no walk (and no arithmetic that could overflow).
    if from % 8 != 0 || from > crate::layout::MAX_POSITION {
        return Ok((unread, 0));
    }
    let mut failed = None;
    let (end, _) = frame::walk(
        from,
        from + capacity,
        capacity,
        params.max_frame,
        |at| match window.word(at & (capacity - 1)) {
            Ok(word) => word,
            Err(e) => {
                failed = Some(e);
                None
            }
        },
        |_, len| unread = unread + Traffic::new(1, len as u64),
    );
    if let Some(e) = failed {
        return Err(e);
    }
    Ok((unread, (end - from).min(capacity)))
}

/// The data area read a window at a time, so that a walk over small frames takes one `pread`
/// per window rather than one per frame.
struct Window<'a> {
    file: &'a SegmentFile,
    capacity: u64,
    /// Where the bytes held start, as a data-area offset.
    start: u64,
    bytes: Vec<u8>,
}

impl<'a> Window<'a> {
    const LEN: u64 = 64 << 10;

    fn new(file: &'a SegmentFile, capacity: u64) -> Window<'a> {
        Window {
            file,
            capacity,
            start: 0,
            bytes: Vec::new(),
        }
    }

    /// The 8-byte word at data-area `offset`; `None` past the end of the file.
    fn word(&mut self, offset: u64) -> Result<Option<u64>> {
        let held = offset >= self.start && offset + 8 <= self.start + self.bytes.len() as u64;
        if !held {
            let len = Window::LEN.min(self.capacity - offset);
            self.bytes.resize(len as usize, 0);
            let got = self
                .file
                .read_at(DATA_OFFSET as u64 + offset, &mut self.bytes)?;
            self.bytes.truncate(got);
            self.start = offset;
            if got < 8 {
                return Ok(None);
            }
        }
        let at = (offset - self.start) as usize;
        let word: [u8; 8] = self.bytes[at..at + 8].try_into().expect("8 bytes");
        Ok(Some(u64::from_le_bytes(word)))
    }
}
