//! The chart: round-trip latency (median), throughput and system calls per round trip against
//! message size (log-log, and log-linear for the calls), one line per mechanism and mode
//! (solid: busy-polling; dashed: blocking).

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use super::plan::{Mechanism, Mode};
use super::report::{Figures, Results};
use super::BoxError;

/// Where a TrueType font may be found (plotters draws text with it, for SVG too).
const FONTS: [&str; 5] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
];

/// Checks, before any sample runs, that the chart can be written where asked.
pub fn check_path(path: &Path) -> Result<(), BoxError> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("svg" | "png") => {}
        _ => return Err(format!("{}: the chart is drawn as .svg or .png", path.display()).into()),
    }
    load_font()
}

fn load_font() -> Result<(), BoxError> {
    static LOADED: OnceLock<Result<(), String>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            let candidates: Vec<String> = std::env::var("RINGPORT_FONT").into_iter().chain(FONTS.map(String::from)).collect();
            let bytes = candidates.iter().find_map(|p| std::fs::read(p).ok()).ok_or_else(|| {
                format!(
                    "the chart needs a TrueType font; none at {}: install one (Debian: fonts-dejavu-core) or set RINGPORT_FONT",
                    candidates.join(", ")
                )
            })?;
            // Registered once for the process's life, so leaking it is what 'static asks for.
            register_font("sans-serif", FontStyle::Normal, Box::leak(bytes.into_boxed_slice()))
                .map_err(|_| "the font could not be read".to_owned())
        })
        .clone()
        .map_err(Into::into)
}

/// Draws the chart to `path` (.svg or .png).
pub fn draw(results: &Results, path: &Path) -> Result<(), BoxError> {
    check_path(path)?;
    let size = (2100, 560);
    if path.extension().and_then(|e| e.to_str()) == Some("png") {
        let root = BitMapBackend::new(path, size).into_drawing_area();
        draw_on(results, &root)?;
        root.present()?;
    } else {
        let root = SVGBackend::new(path, size).into_drawing_area();
        draw_on(results, &root)?;
        root.present()?;
    }
    Ok(())
}

fn colour(mechanism: Mechanism) -> RGBColor {
    match mechanism {
        Mechanism::Raw => RGBColor(0, 0, 0),
        Mechanism::RingportSpsc => RGBColor(214, 39, 40),
        Mechanism::RingportMpmc => RGBColor(255, 127, 14),
        Mechanism::Pipe => RGBColor(31, 119, 180),
        Mechanism::UnixStream => RGBColor(44, 160, 44),
        Mechanism::UnixSeqpacket => RGBColor(23, 190, 207),
        Mechanism::Tcp => RGBColor(148, 103, 189),
        Mechanism::Mq => RGBColor(140, 86, 75),
        Mechanism::SysvMq => RGBColor(188, 189, 34),
        Mechanism::RawSysv => RGBColor(90, 90, 90),
        Mechanism::RawFileTmpfs => RGBColor(130, 130, 130),
        Mechanism::RawFileDisk => RGBColor(170, 170, 170),
        Mechanism::Eventfd => RGBColor(23, 100, 60),
        Mechanism::PthreadCond => RGBColor(120, 60, 160),
        Mechanism::SemPosix => RGBColor(60, 120, 200),
        Mechanism::SemSysv => RGBColor(200, 120, 60),
        Mechanism::MqTurns => RGBColor(160, 40, 90),
        Mechanism::Iceoryx2 => RGBColor(227, 119, 194),
    }
}

/// The points of one line: (size, value) for each size the case was measured at.
type Line = (Mechanism, Mode, Vec<(f64, f64)>);

/// What a line of the chart shows.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shown {
    Latency,
    Throughput,
    /// System calls per round trip.
    Calls,
}

fn lines(results: &Results, shown: Shown) -> Vec<Line> {
    let mut out: Vec<Line> = Vec::new();
    for record in results.records() {
        let c = record.case.contender;
        let value = match (&record.figures, shown) {
            (Figures::RoundTrip { nanos, .. }, Shown::Latency) => nanos[0] as f64 / 1e3,
            (Figures::Throughput { messages_per_s, .. }, Shown::Throughput) => {
                messages_per_s * record.case.size as f64 / 1e9
            }
            (Figures::RoundTrip { .. }, Shown::Calls) => match record.syscalls {
                Some(Ok(calls)) => calls,
                _ => continue,
            },
            _ => continue,
        };
        let point = (record.case.size as f64, value);
        match out
            .iter_mut()
            .find(|(m, mode, _)| (*m, *mode) == (c.mechanism, c.mode))
        {
            Some((_, _, points)) => points.push(point),
            None => out.push((c.mechanism, c.mode, vec![point])),
        }
    }
    for (_, _, points) in &mut out {
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

fn bounds(lines: &[Line], extra: &[(f64, f64)]) -> ((f64, f64), (f64, f64)) {
    let points = lines.iter().flat_map(|l| l.2.iter()).chain(extra);
    let (mut x, mut y) = ((f64::MAX, f64::MIN), (f64::MAX, f64::MIN));
    for &(px, py) in points {
        x = (x.0.min(px), x.1.max(px));
        y = (y.0.min(py), y.1.max(py));
    }
    if x.0 > x.1 {
        return ((1.0, 10.0), (1.0, 10.0));
    }
    ((x.0 / 1.5, x.1 * 1.5), (y.0 / 20.0, y.1 * 2.0))
}

fn size_label(x: &f64) -> String {
    super::plan::show_size(x.round() as usize)
}

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    y_label: &str,
    lines: &[Line],
    reference: Option<(&str, Vec<(f64, f64)>)>,
) -> Result<(), BoxError>
where
    DB::ErrorType: 'static,
{
    let extra = reference.as_ref().map(|r| r.1.clone()).unwrap_or_default();
    let ((x0, x1), (y0, y1)) = bounds(lines, &extra);
    let mut sizes: Vec<f64> = lines.iter().flat_map(|l| l.2.iter().map(|p| p.0)).collect();
    sizes.sort_by(f64::total_cmp);
    sizes.dedup();
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (x0..x1).log_scale().with_key_points(sizes),
            (y0..y1).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_desc("message size")
        .y_desc(y_label)
        .x_label_formatter(&size_label)
        .label_style(("sans-serif", 13))
        .draw()?;
    for (mechanism, mode, points) in lines {
        let colour = colour(*mechanism);
        let style = colour.stroke_width(2);
        let label = format!("{} {}", mechanism.name(), mode.name());
        let series = match mode {
            Mode::Spin => chart.draw_series(LineSeries::new(points.clone(), style))?,
            Mode::Block => chart.draw_series(DashedLineSeries::new(points.clone(), 6, 4, style))?,
        };
        series.label(label).legend(move |(x, y)| {
            PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
        });
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled())))?;
    }
    if let Some((name, points)) = reference {
        let grey = RGBColor(150, 150, 150);
        chart
            .draw_series(DashedLineSeries::new(points, 2, 3, grey.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], grey.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 11))
        // Latency rises and throughput falls towards large messages, so this corner is free.
        .position(SeriesLabelPosition::LowerRight)
        .draw()?;
    Ok(())
}

fn draw_on<DB: DrawingBackend>(
    results: &Results,
    root: &DrawingArea<DB, Shift>,
) -> Result<(), BoxError>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let m = &results.machine;
    let root = root.titled(
        &format!("ringport bench: {}, {}, {}", m.cpu, m.date, m.pinning),
        ("sans-serif", 16),
    )?;
    let third = root.dim_in_pixel().0 / 3;
    let (left, rest) = root.split_horizontally(third);
    let (middle, right) = rest.split_horizontally(third);
    panel(
        &left,
        "Round trip, median",
        "microseconds",
        &lines(results, Shown::Latency),
        None,
    )?;
    let memcpy: Vec<(f64, f64)> = results
        .memcpy
        .keys()
        .filter_map(|&s| results.memcpy_rate(s).map(|r| (s as f64, r / 1e9)))
        .collect();
    panel(
        &middle,
        "Throughput, one way",
        "GB/s",
        &lines(results, Shown::Throughput),
        (!memcpy.is_empty()).then_some(("memcpy, one process", memcpy)),
    )?;
    calls_panel(&right, &lines(results, Shown::Calls))
}

/// System calls per round trip (both processes) against size: a linear scale, since the
/// shared-memory mechanisms' busy forms make none.
fn calls_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    lines: &[Line],
) -> Result<(), BoxError>
where
    DB::ErrorType: 'static,
{
    let ((x0, x1), _) = bounds(lines, &[]);
    let top = lines
        .iter()
        .flat_map(|l| l.2.iter().map(|p| p.1))
        .fold(4.0f64, f64::max)
        * 1.1;
    let mut sizes: Vec<f64> = lines.iter().flat_map(|l| l.2.iter().map(|p| p.0)).collect();
    sizes.sort_by(f64::total_cmp);
    sizes.dedup();
    let caption = if lines.is_empty() {
        "System calls per round trip (not counted)"
    } else {
        "System calls per round trip, both processes"
    };
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((x0..x1).log_scale().with_key_points(sizes), -0.5..top)?;
    chart
        .configure_mesh()
        .x_desc("message size")
        .y_desc("system calls")
        .x_label_formatter(&size_label)
        .label_style(("sans-serif", 13))
        .draw()?;
    for (mechanism, mode, points) in lines {
        let colour = colour(*mechanism);
        let style = colour.stroke_width(2);
        match mode {
            Mode::Spin => chart.draw_series(LineSeries::new(points.clone(), style))?,
            Mode::Block => chart.draw_series(DashedLineSeries::new(points.clone(), 6, 4, style))?,
        };
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled())))?;
    }
    Ok(())
}
