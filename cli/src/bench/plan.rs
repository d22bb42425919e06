//! What a bench run measures: mechanisms, modes, metrics, sizes, and the order of the samples.

use std::fmt;

/// An IPC mechanism under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Mechanism {
    /// The hardware limit, none of ringport's code: round trips through one slot each way, a
    /// stamp word and the message (busy: both spin; blocking: a futex ping-pong), streams through
    /// messages packed end to end with a head and a tail index.
    Raw,
    /// ringport's SPSC ring of frames.
    RingportSpsc,
    /// ringport's MPMC ring of slots, one producer and one consumer.
    RingportMpmc,
    /// A pair of pipes.
    Pipe,
    /// A Unix stream socket pair.
    UnixStream,
    /// A Unix seqpacket socket pair.
    UnixSeqpacket,
    /// TCP over loopback with TCP_NODELAY.
    Tcp,
    /// Two POSIX message queues.
    Mq,
    /// Two System V message queues (`msgsnd`, `msgrcv`).
    SysvMq,
    /// The raw baseline over a System V segment (`shmget`, `shmat`).
    RawSysv,
    /// The raw baseline over a mapped file on a tmpfs (`/dev/shm`, unnamed).
    RawFileTmpfs,
    /// The raw baseline over a mapped file on the disk, in the working directory (unnamed).
    RawFileDisk,
    /// The raw slot ring, woken by an eventfd each way instead of a futex (blocking only).
    Eventfd,
    /// A bounded buffer in a memfd, turns taken with a process-shared pthread mutex and
    /// condition variables (blocking only).
    PthreadCond,
    /// A bounded buffer in a memfd, turns taken with POSIX unnamed semaphores in the segment.
    SemPosix,
    /// A bounded buffer in a memfd, turns taken with a System V semaphore set.
    SemSysv,
    /// A bounded buffer in a memfd, turns taken with POSIX queues of "full" and "empty" tokens.
    MqTurns,
    /// iceoryx2 publish-subscribe (build with `--features iceoryx2`).
    Iceoryx2,
}

impl Mechanism {
    pub const ALL: [Mechanism; 18] = [
        Mechanism::Raw,
        Mechanism::RingportSpsc,
        Mechanism::RingportMpmc,
        Mechanism::Pipe,
        Mechanism::UnixStream,
        Mechanism::UnixSeqpacket,
        Mechanism::Tcp,
        Mechanism::Mq,
        Mechanism::SysvMq,
        Mechanism::RawSysv,
        Mechanism::RawFileTmpfs,
        Mechanism::RawFileDisk,
        Mechanism::Eventfd,
        Mechanism::PthreadCond,
        Mechanism::SemPosix,
        Mechanism::SemSysv,
        Mechanism::MqTurns,
        Mechanism::Iceoryx2,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Raw => "raw",
            Mechanism::RingportSpsc => "ringport-spsc",
            Mechanism::RingportMpmc => "ringport-mpmc",
            Mechanism::Pipe => "pipe",
            Mechanism::UnixStream => "unix-stream",
            Mechanism::UnixSeqpacket => "unix-seqpacket",
            Mechanism::Tcp => "tcp",
            Mechanism::Mq => "mq",
            Mechanism::SysvMq => "sysv-mq",
            Mechanism::RawSysv => "raw-sysv",
            Mechanism::RawFileTmpfs => "raw-file-tmpfs",
            Mechanism::RawFileDisk => "raw-file-disk",
            Mechanism::Eventfd => "eventfd",
            Mechanism::PthreadCond => "pthread-cond",
            Mechanism::SemPosix => "sem-posix",
            Mechanism::SemSysv => "sem-sysv",
            Mechanism::MqTurns => "mq-turns",
            Mechanism::Iceoryx2 => "iceoryx2",
        }
    }

    /// What it does, in one line (`ringport bench --list`).
    pub fn description(self) -> &'static str {
        match self {
            Mechanism::Raw => {
                "the limit: a slot ring (a stamp word and the message) or an index ring in a memfd, \
                 none of ringport's code; blocking by a raw futex ping-pong"
            }
            Mechanism::RingportSpsc => "ringport's SPSC ring of frames, in a sealed memfd",
            Mechanism::RingportMpmc => "ringport's MPMC ring of slots, one producer, one consumer",
            Mechanism::Pipe => "two pipes: a write and a read each way (copied twice)",
            Mechanism::UnixStream => "a Unix stream socket pair",
            Mechanism::UnixSeqpacket => "a Unix seqpacket socket pair (message boundaries kept)",
            Mechanism::Tcp => "TCP over loopback, TCP_NODELAY",
            Mechanism::Mq => "two POSIX message queues (mq_send, mq_receive)",
            Mechanism::SysvMq => "two System V message queues (msgsnd, msgrcv)",
            Mechanism::RawSysv => "the raw rings in a System V segment (shmget, shmat)",
            Mechanism::RawFileTmpfs => "the raw rings in a mapped file on a tmpfs (/dev/shm)",
            Mechanism::RawFileDisk => {
                "the raw rings in a mapped file on the disk of the working directory"
            }
            Mechanism::Eventfd => {
                "the raw slot ring, each side woken by an eventfd write and asleep in its read"
            }
            Mechanism::PthreadCond => {
                "slots in a memfd, turns taken with a process-shared pthread mutex and conditions"
            }
            Mechanism::SemPosix => "slots in a memfd, turns taken with POSIX semaphores in it",
            Mechanism::SemSysv => "slots in a memfd, turns taken with a System V semaphore set",
            Mechanism::MqTurns => "slots in a memfd, turns taken with POSIX queues of tokens",
            Mechanism::Iceoryx2 => "iceoryx2 publish-subscribe (build with --features iceoryx2)",
        }
    }

    /// The copies of each message the mechanism makes by design, the sender's included (the
    /// bench's rule: a sender copies its message into the mechanism; a receiver reads it in
    /// place where the mechanism lets it): through the kernel, one in and one out; through
    /// shared memory, the one into it.
    pub fn copies(self) -> u32 {
        match self {
            Mechanism::Pipe
            | Mechanism::UnixStream
            | Mechanism::UnixSeqpacket
            | Mechanism::Tcp
            | Mechanism::Mq
            | Mechanism::SysvMq => 2,
            Mechanism::Raw
            | Mechanism::RingportSpsc
            | Mechanism::RingportMpmc
            | Mechanism::RawSysv
            | Mechanism::RawFileTmpfs
            | Mechanism::RawFileDisk
            | Mechanism::Eventfd
            | Mechanism::PthreadCond
            | Mechanism::SemPosix
            | Mechanism::SemSysv
            | Mechanism::MqTurns
            | Mechanism::Iceoryx2 => 1,
        }
    }

    /// Whether this build can run it.
    pub fn built(self) -> bool {
        self != Mechanism::Iceoryx2 || cfg!(feature = "iceoryx2")
    }
}

/// How the ends wait for each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Mode {
    /// Busy-polling: non-blocking calls in a loop, no sleeping.
    Spin,
    /// Sleeping in the kernel until the peer wakes us (no spinning first).
    Block,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Spin => "spin",
            Mode::Block => "block",
        }
    }
}

/// What is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Metric {
    /// Ping-pong: the latency of each round trip.
    RoundTrip,
    /// One-way streaming: messages and bytes a second.
    Throughput,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::RoundTrip => "round_trip",
            Metric::Throughput => "throughput",
        }
    }
}

/// One mechanism waiting one way: a row of the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Contender {
    pub mechanism: Mechanism,
    pub mode: Mode,
}

impl Contender {
    /// The baseline that this contender's figures are divided by: the raw mechanism waiting the
    /// same way (a raw streaming ring has only a busy form).
    pub fn baseline(self, metric: Metric) -> Contender {
        let mode = match metric {
            Metric::RoundTrip => self.mode,
            Metric::Throughput => Mode::Spin,
        };
        Contender {
            mechanism: Mechanism::Raw,
            mode,
        }
    }

    /// Whether the mechanism supports this mode and metric: the raw rings stream busy only, an
    /// eventfd is a way to sleep, so it has only a blocking round trip, and a condition
    /// variable only blocks.
    pub fn measures(self, metric: Metric) -> bool {
        match self.mechanism {
            Mechanism::Raw
            | Mechanism::RawSysv
            | Mechanism::RawFileTmpfs
            | Mechanism::RawFileDisk => !(self.mode == Mode::Block && metric == Metric::Throughput),
            Mechanism::Eventfd => self.mode == Mode::Block && metric == Metric::RoundTrip,
            Mechanism::PthreadCond => self.mode == Mode::Block,
            _ => true,
        }
    }
}

impl fmt::Display for Contender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.mechanism.name(), self.mode.name())
    }
}

/// One cell of the report: a contender, a metric and a message size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Case {
    pub metric: Metric,
    pub size: usize,
    pub contender: Contender,
}

/// The samples of one round, in the order they run: for each size and metric, every contender
/// in turn, starting from a different one each round, so that drift over the run (the machine
/// is noisy) falls on all of them alike.
pub fn round_order(cases: &[Case], round: usize) -> Vec<Case> {
    let mut out = Vec::with_capacity(cases.len());
    let mut groups: Vec<Vec<Case>> = Vec::new();
    for case in cases {
        match groups.last_mut() {
            Some(group) if (group[0].metric, group[0].size) == (case.metric, case.size) => {
                group.push(*case)
            }
            _ => groups.push(vec![*case]),
        }
    }
    for group in groups {
        let start = round % group.len();
        out.extend(group[start..].iter().chain(&group[..start]));
    }
    out
}

/// Parses a size such as `64`, `4K`, `4KiB` or `1M` (binary units).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits);
    let number: usize = number
        .parse()
        .map_err(|_| format!("not a size: {text:?}"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        _ => return Err(format!("unknown unit in {text:?} (use B, K or M)")),
    };
    let size = number
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("size too large: {text:?}"))?;
    if !(8..=64 << 20).contains(&size) {
        return Err(format!(
            "{text:?}: sizes go from 8 B (the sequence number each message carries) to 64 MiB"
        ));
    }
    Ok(size)
}

/// A size for people: `8 B`, `4 KiB`, `1 MiB`.
pub fn show_size(size: usize) -> String {
    if size >= 1 << 20 && size % (1 << 20) == 0 {
        format!("{} MiB", size >> 20)
    } else if size >= 1 << 10 && size % (1 << 10) == 0 {
        format!("{} KiB", size >> 10)
    } else {
        format!("{size} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units_and_bounds() {
        assert_eq!(parse_size("64"), Ok(64));
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert!(parse_size("4").is_err());
        assert!(parse_size("1G").is_err());
        assert!(parse_size("x").is_err());
        assert_eq!(show_size(1 << 20), "1 MiB");
        assert_eq!(show_size(4096), "4 KiB");
        assert_eq!(show_size(100), "100 B");
    }

    #[test]
    fn each_round_starts_each_group_with_another_contender() {
        let contenders = [Mechanism::Raw, Mechanism::Pipe, Mechanism::Tcp].map(|m| Contender {
            mechanism: m,
            mode: Mode::Spin,
        });
        let cases: Vec<Case> = [8, 64]
            .into_iter()
            .flat_map(|size| {
                contenders.map(|c| Case {
                    metric: Metric::RoundTrip,
                    size,
                    contender: c,
                })
            })
            .collect();
        let first = round_order(&cases, 0);
        let second = round_order(&cases, 1);
        assert_eq!(first, cases);
        assert_eq!(second[0].contender.mechanism, Mechanism::Pipe);
        assert_eq!(second[2].contender.mechanism, Mechanism::Raw);
        assert_eq!(second[3].size, 64);
        let mut sorted = second.clone();
        sorted.sort();
        let mut all = cases.clone();
        all.sort();
        assert_eq!(sorted, all, "every case runs once a round");
    }
}
