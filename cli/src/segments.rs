//! `ringport ls`, `ringport rm` and `ringport gc`: what lives in `/dev/shm`, as `ipcs` and
//! `ipcrm` show System V objects (see `ringport::segments`).

use std::io::Write;
use std::time::SystemTime;

use ringport::segments::{self, HolderState, RingKind, SegmentInfo};
use ringport::Role;

use crate::bench::json_string;

#[derive(clap::Args, Debug)]
pub struct LsArgs {
    /// Every segment in /dev/shm, not only ringport's
    #[arg(long)]
    all: bool,
    /// One JSON object a segment (JSON Lines) instead of a table
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
pub struct RmArgs {
    /// The segments to remove
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
    /// Only segments whose names start with this
    #[arg(value_name = "PREFIX", default_value = "")]
    prefix: String,
}

fn kind(info: &SegmentInfo) -> String {
    match (&info.ring, info.ringport_version) {
        (Some(ring), _) => match ring.kind {
            RingKind::Spsc => "spsc".into(),
            RingKind::Mpmc => "mpmc".into(),
        },
        (None, Some(version)) => format!("ringport v{version}"),
        (None, None) => "-".into(),
    }
}

fn holders(info: &SegmentInfo) -> String {
    let Some(ring) = &info.ring else {
        return "-".into();
    };
    if ring.holders.is_empty() {
        return "-".into();
    }
    ring.holders
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

fn json(info: &SegmentInfo) -> String {
    let ring = info.ring.as_ref();
    format!(
        "{{\"name\":{},\"kind\":{},\"bytes\":{},\"capacity\":{},\"holders\":{},\
         \"users\":{:?},\"uid\":{},\"mode\":\"{:o}\",\"age_s\":{},\"status\":{}}}",
        json_string(&info.name),
        json_string(&kind(info)),
        info.len,
        ring.map_or("null".into(), |r| r.capacity.to_string()),
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
        "{:<28} {:<6} {:>10} {:<40} {:>7} {:>6}  status",
        "name", "kind", "bytes", "holders", "age", "uid"
    )?;
    for info in shown {
        writeln!(
            out,
            "{:<28} {:<6} {:>10} {:<40} {:>6}s {:>6}  {}",
            info.name,
            kind(info),
            info.len,
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
        let info = segments::inspect(name).map_err(|e| format!("{name}: {e}"))?;
        if info.in_use() && !args.force {
            return Err(format!(
                "{name} is in use (users {:?}; holders: {}): not removed (--force removes it)",
                info.users,
                holders(&info)
            )
            .into());
        }
        ringport::remove_segment(name).map_err(|e| format!("{name}: {e}"))?;
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
