//! `ringport ls`, `ringport rm` and `ringport gc`: what lives in `/dev/shm` and System V
//! shared memory, as `ipcs` and `ipcrm` show System V objects (see `ringport::segments`), and
//! `ringport send` and `recv`.

use std::io::Write;
use std::time::SystemTime;

use ringport::segments::{self, Holder, HolderState, RingKind, SegmentInfo};
use ringport::{Location, Role};

use crate::bench::json_string;

#[derive(clap::Args, Debug)]
pub struct LsArgs {
    /// Every segment in /dev/shm and System V, not only ringport's
    #[arg(long)]
    all: bool,
    /// One JSON object a segment (JSON Lines) instead of a table
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
pub struct RmArgs {
    /// The segments to remove: NAME, sysv:KEY or file:PATH
    #[arg(required = true, value_name = "NAME")]
    names: Vec<String>,
    /// Remove a segment even if a process uses it (its mappings stay; only the name goes)
    #[arg(long)]
    force: bool,
}

#[derive(clap::Args, Debug)]
pub struct GcArgs {
    /// Say what would be removed, and remove nothing
    #[arg(long)]
    dry_run: bool,
    /// Only segments whose names start with this (sysv: for the System V ones)
    #[arg(value_name = "PREFIX", default_value = "")]
    prefix: String,
}

fn kind(info: &SegmentInfo) -> String {
    match (&info.ring, info.ringport_version) {
        (Some(ring), _) => {
            let kind = match ring.kind {
                RingKind::Spsc => "spsc",
                RingKind::Mpmc => "mpmc",
                RingKind::PubSub => "pubsub",
            };
            match &ring.message_type {
                Some(name) => format!("{kind}<{name}>"),
                None => kind.into(),
            }
        }
        (None, Some(version)) => format!("ringport v{version}"),
        (None, None) => "-".into(),
    }
}

fn holders(info: &SegmentInfo) -> String {
    info.ring
        .as_ref()
        .map_or("-".into(), |ring| holder_list(&ring.holders))
}

/// The holders of a ring's roles, as "producer 123 alive, consumer none".
pub(crate) fn holder_list(holders: &[Holder]) -> String {
    if holders.is_empty() {
        return "-".into();
    }
    holders
        .iter()
        .map(|h| {
            let role = match h.role {
                Role::Producer => "producer",
                Role::Consumer => "consumer",
            };
            let state = match h.state {
                HolderState::Never => "none",
                HolderState::Alive => "alive",
                HolderState::Dead => "dead",
                HolderState::Detached => "detached",
                HolderState::Unknown => "unknown",
            };
            match h.pid {
                Some(pid) => format!("{role} {pid} {state}"),
                None => format!("{role} {state}"),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn status(info: &SegmentInfo) -> &'static str {
    if info.is_stale() {
        "stale"
    } else if info.in_use() {
        "in use"
    } else {
        "-"
    }
}

fn age_seconds(info: &SegmentInfo) -> u64 {
    SystemTime::now()
        .duration_since(info.modified)
        .map_or(0, |d| d.as_secs())
}

/// How full a ring is, from its counters (`ringport::segments::stat`); None if it is not a
/// ring of this build's or cannot be read.
fn fill(info: &SegmentInfo) -> Option<f64> {
    info.ring.as_ref()?;
    segments::stat(info.location.clone())
        .ok()
        .map(|stats| stats.fill())
}

fn json(info: &SegmentInfo) -> String {
    let ring = info.ring.as_ref();
    format!(
        "{{\"name\":{},\"kind\":{},\"bytes\":{},\"capacity\":{},\"fill\":{},\"holders\":{},\
         \"users\":{:?},\"uid\":{},\"mode\":\"{:o}\",\"age_s\":{},\"status\":{}}}",
        json_string(&info.name),
        json_string(&kind(info)),
        info.len,
        ring.map_or("null".into(), |r| r.capacity.to_string()),
        fill(info).map_or("null".into(), |f| format!("{f:.6}")),
        json_string(&holders(info)),
        info.users,
        info.uid,
        info.mode,
        age_seconds(info),
        json_string(status(info)),
    )
}

pub fn ls(args: &LsArgs) -> Result<(), Box<dyn std::error::Error>> {
    let all = segments::list()?;
    let shown: Vec<&SegmentInfo> = all
        .iter()
        .filter(|s| args.all || s.ringport_version.is_some())
        .collect();
    let mut out = std::io::stdout().lock();
    if args.json {
        for info in shown {
            writeln!(out, "{}", json(info))?;
        }
        return Ok(());
    }
    writeln!(
        out,
        "{:<28} {:<6} {:>10} {:>6} {:<40} {:>7} {:>6}  status",
        "name", "kind", "bytes", "fill", "holders", "age", "uid"
    )?;
    for info in shown {
        writeln!(
            out,
            "{:<28} {:<6} {:>10} {:>6} {:<40} {:>6}s {:>6}  {}",
            info.name,
            kind(info),
            info.len,
            fill(info).map_or("-".into(), |f| format!("{:.1}%", f * 100.0)),
            holders(info),
            age_seconds(info),
            info.uid,
            status(info)
        )?;
    }
    Ok(())
}

pub fn rm(args: &RmArgs) -> Result<(), Box<dyn std::error::Error>> {
    for name in &args.names {
        let location = Location::parse(name).map_err(|e| format!("{name}: {e}"))?;
        let info = segments::inspect(location.clone()).map_err(|e| format!("{name}: {e}"))?;
        if info.in_use() && !args.force {
            return Err(format!(
                "{name} is in use (users {:?}; holders: {}): not removed (--force removes it)",
                info.users,
                holders(&info)
            )
            .into());
        }
        ringport::remove_segment(location).map_err(|e| format!("{name}: {e}"))?;
        println!("removed {name}");
    }
    Ok(())
}

pub fn gc(args: &GcArgs) -> Result<(), Box<dyn std::error::Error>> {
    let stale = segments::collect_matching(&args.prefix, args.dry_run)?;
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    for info in &stale {
        println!(
            "{verb} {} ({} bytes; {})",
            info.name,
            info.len,
            holders(info)
        );
    }
    println!("{} stale segment(s) {verb}", stale.len());
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct SendArgs {
    /// The SPSC ring to send into (its producer): NAME, sysv:KEY or file:PATH
    name: String,
    /// Create the ring (1 MiB) instead of opening it
    #[arg(long)]
    create: bool,
    /// Frames on standard input are a u32 little-endian length then the bytes, instead of a
    /// line each (the newline not sent)
    #[arg(long)]
    length_prefixed: bool,
    /// How long to wait for the ring to exist, in milliseconds
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    wait: u64,
}

#[derive(clap::Args, Debug)]
pub struct RecvArgs {
    /// The SPSC ring to receive from (its consumer): NAME, sysv:KEY or file:PATH
    name: String,
    /// Create the ring (1 MiB) instead of opening it
    #[arg(long)]
    create: bool,
    /// Write each frame as a u32 little-endian length then the bytes, instead of a line each
    #[arg(long)]
    length_prefixed: bool,
    /// Stop after this many frames (default: when the producer has gone and the ring is empty)
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// How long to wait for the ring to exist, in milliseconds
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    wait: u64,
}

/// Retries `open` while the ring does not exist yet, or is being made (its size not set or its
/// header not published yet), for up to `wait_ms`.
fn open_when_there<T>(
    wait_ms: u64,
    mut open: impl FnMut() -> ringport::Result<T>,
) -> ringport::Result<T> {
    let until = std::time::Instant::now() + std::time::Duration::from_millis(wait_ms);
    loop {
        match open() {
            Err(
                ringport::Error::NotFound
                | ringport::Error::TooSmall { .. }
                | ringport::Error::BadMagic { found: 0 },
            ) if std::time::Instant::now() < until => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

pub fn send(args: &SendArgs) -> Result<(), Box<dyn std::error::Error>> {
    use std::io::{BufRead, Read};
    let options = ringport::SpscOptions::new();
    let location = Location::parse(&args.name)?;
    let mut producer = if args.create {
        options.keep_segment(true).create_producer(&location)?
    } else {
        open_when_there(args.wait, || options.open_producer(&location))?
    };
    let mut input = std::io::stdin().lock();
    let mut sent = 0u64;
    let mut send_one = |frame: &[u8], sent: &mut u64| -> Result<(), Box<dyn std::error::Error>> {
        if frame.is_empty() {
            return Err(format!(
                "frame {} is empty: a ring frame holds at least one byte ({sent} sent before it)",
                *sent + 1
            )
            .into());
        }
        producer.send(frame)?;
        *sent += 1;
        Ok(())
    };
    if args.length_prefixed {
        let mut len = [0u8; 4];
        let mut frame = Vec::new();
        while input.read_exact(&mut len).is_ok() {
            frame.resize(u32::from_le_bytes(len) as usize, 0);
            input.read_exact(&mut frame)?;
            send_one(&frame, &mut sent)?;
        }
    } else {
        for line in input.split(b'\n') {
            send_one(&line?, &mut sent)?;
        }
    }
    eprintln!("sent {sent} frames to {}", args.name);
    Ok(())
}

pub fn recv(args: &RecvArgs) -> Result<(), Box<dyn std::error::Error>> {
    let options = ringport::SpscOptions::new();
    let location = Location::parse(&args.name)?;
    let mut consumer = if args.create {
        options.create_consumer(&location)?
    } else {
        open_when_there(args.wait, || options.open_consumer(&location))?
    };
    let mut out = std::io::stdout().lock();
    let mut received = 0u64;
    while args.count.is_none_or(|n| received < n) {
        let frame = match consumer.recv() {
            Ok(frame) => frame,
            Err(ringport::Error::PeerGone(_)) => break,
            Err(e) => return Err(e.into()),
        };
        if args.length_prefixed {
            out.write_all(&(frame.len() as u32).to_le_bytes())?;
            out.write_all(&frame)?;
        } else {
            out.write_all(&frame)?;
            out.write_all(b"\n")?;
        }
        received += 1;
    }
    out.flush()?;
    Ok(())
}
