//! `ringport stat NAME [--watch SECS]`: a ring's traffic, fill and waits, read from its
//! segment without attaching (see `ringport::segments::stat`), with rates between refreshes.

use std::io::Write;
use std::time::{Duration, Instant, SystemTime};

use ringport::segments::{self, RingKind, RingStats, SideCounts};

use crate::bench::json_string;
use crate::segments::holder_list;

#[derive(clap::Args, Debug)]
pub struct StatArgs {
    /// The ring's segment: NAME, sysv:KEY or file:PATH
    name: String,
    /// Refresh every SECS seconds (rates are per second between refreshes), until the segment
    /// goes or the count is reached
    #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "1")]
    watch: Option<f64>,
    /// Stop after this many refreshes (with --watch)
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// One JSON object a refresh (JSON Lines) instead of text
    #[arg(long)]
    json: bool,
}

pub fn run(args: &StatArgs) -> Result<(), Box<dyn std::error::Error>> {
    let mut out = std::io::stdout().lock();
    let mut previous: Option<(Instant, RingStats)> = None;
    let mut shown = 0u64;
    loop {
        let location = ringport::Location::parse(&args.name)?;
        let stats = match segments::stat(location) {
            Ok(stats) => stats,
            // The ring went while we watched it: that is where a watch ends.
            Err(ringport::Error::NotFound) if previous.is_some() => {
                writeln!(out, "{}: removed", args.name)?;
                return Ok(());
            }
            Err(e) => return Err(format!("{}: {e}", args.name).into()),
        };
        let now = Instant::now();
        let rates = previous
            .as_ref()
            .map(|(then, before)| Rates::between(before, &stats, now - *then));
        if args.json {
            writeln!(out, "{}", json(&stats, rates.as_ref()))?;
        } else {
            if shown > 0 {
                writeln!(out)?;
            }
            text(&mut out, &stats, rates.as_ref())?;
        }
        out.flush()?;
        shown += 1;
        let Some(every) = args.watch else {
            return Ok(());
        };
        if args.count.is_some_and(|n| shown >= n) {
            return Ok(());
        }
        previous = Some((now, stats));
        std::thread::sleep(Duration::from_secs_f64(every.max(0.01)));
    }
}

/// Frames and bytes a second, committed and received, between two looks.
struct Rates {
    committed_frames: f64,
    committed_bytes: Option<f64>,
    received_frames: f64,
    received_bytes: Option<f64>,
}

impl Rates {
    fn between(before: &RingStats, after: &RingStats, elapsed: Duration) -> Rates {
        let seconds = elapsed.as_secs_f64().max(1e-9);
        let rate = |a: u64, b: u64| b.wrapping_sub(a) as f64 / seconds;
        let bytes_rate = |a: Option<u64>, b: Option<u64>| a.zip(b).map(|(a, b)| rate(a, b));
        Rates {
            committed_frames: rate(before.committed.frames, after.committed.frames),
            committed_bytes: bytes_rate(before.committed.bytes, after.committed.bytes),
            received_frames: rate(before.received.frames, after.received.frames),
            received_bytes: bytes_rate(before.received.bytes, after.received.bytes),
        }
    }
}

fn kind(stats: &RingStats) -> &'static str {
    match stats.kind {
        RingKind::Spsc => "spsc",
        RingKind::Mpmc => "mpmc",
        RingKind::PubSub => "pubsub",
    }
}

fn age_seconds(stats: &RingStats) -> f64 {
    SystemTime::now()
        .duration_since(stats.created)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn text(out: &mut impl Write, stats: &RingStats, rates: Option<&Rates>) -> std::io::Result<()> {
    let frame = match stats.kind {
        RingKind::Spsc => "max frame",
        RingKind::Mpmc => "slot size",
        RingKind::PubSub => "max frame",
    };
    writeln!(
        out,
        "{}: {} ring, {} bytes, {frame} {}, made {:.0} s ago{}",
        stats.name,
        kind(stats),
        stats.capacity,
        stats.max_frame,
        age_seconds(stats),
        if stats.steady {
            ""
        } else {
            " (the consumer moved while read: figures from a few moments)"
        }
    )?;
    if !stats.holders.is_empty() {
        writeln!(out, "holders: {}", holder_list(&stats.holders))?;
    }
    writeln!(
        out,
        "{:<10} {:>14} {:>16} {:>14} {:>14}",
        "", "frames", "bytes", "frames/s", "bytes/s"
    )?;
    let rate = |r: Option<f64>| r.map_or("-".to_string(), |r| format!("{r:.0}"));
    let bytes = |b: Option<u64>| b.map_or("-".to_string(), |b| b.to_string());
    let rows = [
        (
            "committed",
            stats.committed,
            rates.map(|r| (r.committed_frames, r.committed_bytes)),
        ),
        (
            "received",
            stats.received,
            rates.map(|r| (r.received_frames, r.received_bytes)),
        ),
        ("unread", stats.unread, None),
    ];
    for (what, traffic, rates) in rows {
        writeln!(
            out,
            "{what:<10} {:>14} {:>16} {:>14} {:>14}",
            traffic.frames,
            bytes(traffic.bytes),
            rate(rates.map(|r| r.0)),
            rate(rates.and_then(|r| r.1))
        )?;
    }
    writeln!(
        out,
        "fill: {} of {} bytes ({:.1}%){}",
        stats.occupied,
        stats.capacity,
        stats.fill() * 100.0,
        if stats.kind == RingKind::Mpmc {
            format!("; {} slots recovered from dead handles", stats.recovered)
        } else {
            String::new()
        }
    )?;
    write!(out, "{:<10}", "")?;
    for (name, _) in side_fields(&stats.producing) {
        write!(out, " {name:>10}")?;
    }
    writeln!(out)?;
    for (side, counts) in [
        ("producing", &stats.producing),
        ("consuming", &stats.consuming),
    ] {
        write!(out, "{side:<10}")?;
        for (_, value) in side_fields(counts) {
            write!(out, " {value:>10}")?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// A side's counts, named as the table and the JSON name them.
fn side_fields(counts: &SideCounts) -> [(&'static str, u64); 7] {
    [
        ("waits", counts.waits),
        ("sleeps", counts.sleeps),
        ("barriers", counts.barriers),
        ("pauses", counts.stream_pauses),
        ("takeovers", counts.takeovers),
        ("woken", u64::from(counts.wakes)),
        ("sleeping", u64::from(counts.sleeping)),
    ]
}

fn side_json(counts: &SideCounts) -> String {
    let fields: Vec<String> = side_fields(counts)
        .iter()
        .map(|(name, value)| format!("\"{name}\":{value}"))
        .collect();
    format!("{{{}}}", fields.join(","))
}

fn json(stats: &RingStats, rates: Option<&Rates>) -> String {
    let or_null = |v: Option<String>| v.unwrap_or_else(|| "null".into());
    let traffic = |t: ringport::segments::Traffic| {
        format!(
            "{{\"frames\":{},\"bytes\":{}}}",
            t.frames,
            or_null(t.bytes.map(|b| b.to_string()))
        )
    };
    let rate = |r: Option<f64>| or_null(r.map(|r| format!("{r:.1}")));
    let rates = rates.map_or("null".to_string(), |r| {
        format!(
            "{{\"committed_frames_s\":{:.1},\"committed_bytes_s\":{},\
             \"received_frames_s\":{:.1},\"received_bytes_s\":{}}}",
            r.committed_frames,
            rate(r.committed_bytes),
            r.received_frames,
            rate(r.received_bytes)
        )
    });
    format!(
        "{{\"name\":{},\"kind\":\"{}\",\"capacity\":{},\"max_frame\":{},\"age_s\":{:.3},\
         \"holders\":{},\"committed\":{},\"received\":{},\"unread\":{},\"occupied\":{},\
         \"fill\":{:.6},\"producing\":{},\"consuming\":{},\"recovered\":{},\"steady\":{},\
         \"rates\":{}}}",
        json_string(&stats.name),
        kind(stats),
        stats.capacity,
        stats.max_frame,
        age_seconds(stats),
        json_string(&holder_list(&stats.holders)),
        traffic(stats.committed),
        traffic(stats.received),
        traffic(stats.unread),
        stats.occupied,
        stats.fill(),
        side_json(&stats.producing),
        side_json(&stats.consuming),
        stats.recovered,
        stats.steady,
        rates
    )
}
