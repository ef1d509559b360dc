//! PNG plots with plotters and a font shipped in the repository (no system fonts needed):
//! the fleet over time, the wait distribution, cost per day, a heatmap of waits, and the
//! Pareto front of a sweep. Each file is drawn under a temporary name and renamed when done.

use crate::core::Time;
use crate::sim::VariantResult;
use crate::sim::series::VariantSeries;
use chrono_tz::Tz;
use plotters::prelude::*;
use plotters::style::FontStyle;
use std::path::{Path, PathBuf};
use std::sync::Once;

const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
const SANS: &str = "sans-serif";

/// A plot that could not be drawn: the file it was for, and what went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub struct PlotError {
    pub path: PathBuf,
    pub reason: String,
}

/// What drawing one plot file gives.
pub type PlotResult = Result<(), PlotError>;

/// What drawing a part of a plot gives: what went wrong, as plotters says it (the file is
/// named by [`render`]).
type Drawn = Result<(), String>;

fn fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            // The font is compiled in and known to be valid.
            let _ = plotters::style::register_font(SANS, style, FONT);
        }
    });
}

const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
const GREY: RGBColor = RGBColor(120, 120, 120);
/// The keys beyond the top ones.
const OTHER: RGBColor = RGBColor(190, 190, 190);

/// The colour of the i-th variant: the ten of the palette, then hues spread by the golden
/// ratio, so no two of a report's variants share one.
fn variant_color(i: usize) -> RGBColor {
    if let Some(c) = PALETTE.get(i) {
        return *c;
    }
    let hue = (i as f64 * 0.618_033_988_75).fract();
    let (r, g, b) = HSLColor(hue, 0.65, 0.42).rgb();
    RGBColor(r, g, b)
}
const BUSY: RGBColor = RGBColor(31, 119, 180);
const IDLE: RGBColor = RGBColor(158, 202, 225);
const BOOTING: RGBColor = RGBColor(253, 174, 97);
const STORAGE: RGBColor = RGBColor(150, 150, 150);
const WAITING: RGBColor = RGBColor(214, 39, 40);
const SHADES: [RGBColor; 4] = [
    RGBColor(232, 245, 233),
    RGBColor(243, 229, 245),
    RGBColor(255, 248, 225),
    RGBColor(224, 242, 241),
];

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The legend box every plot uses.
/// How an entry of a key is drawn.
enum Mark {
    Fill(RGBColor),
    Line(RGBColor),
}

/// Room on the right of a panel for its key.
const KEY_WIDTH: u32 = 240;

/// A key drawn in its own area beside the data, so it never covers any.
fn key<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    entries: &[(String, Mark)],
) -> Drawn {
    for (i, (label, mark)) in entries.iter().enumerate() {
        let y = 55 + 22 * i as i32;
        match mark {
            Mark::Fill(c) => area.draw(&Rectangle::new([(8, y - 7), (26, y + 7)], c.filled())),
            Mark::Line(c) => area.draw(&PathElement::new(vec![(8, y), (26, y)], c.stroke_width(3))),
        }
        .map_err(err)?;
        area.draw(&Text::new(label.clone(), (34, y - 8), (SANS, 15)))
            .map_err(err)?;
    }
    Ok(())
}

fn legend<'a, 'b: 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, BitMapBackend<'b>, CT>,
    position: SeriesLabelPosition,
    font_size: u32,
) -> Drawn {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font((SANS, font_size))
        .draw()
        .map_err(err)
}

/// Draw with `draw` into `path` (a .png), atomically; an error names `path`.
fn render(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend, plotters::coord::Shift>) -> Drawn,
) -> PlotResult {
    fonts();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp: PathBuf = path.with_file_name(format!(".{name}.partial-{}.png", std::process::id()));
    let result = (|| {
        let root = BitMapBackend::new(&tmp, size).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        draw(&root)?;
        root.present().map_err(err)?;
        drop(root);
        std::fs::rename(&tmp, path).map_err(err)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    // The plot named: a report draws several at once.
    result.map_err(|reason| PlotError {
        path: path.to_path_buf(),
        reason,
    })
}

/// Labels for a time axis in `tz`: dates for long spans, dates and hours for short ones.
fn time_label(start: Time, hours: f64, span_h: f64, tz: Tz) -> String {
    let t = start.plus_millis((hours * 3.6e6) as i64);
    let Some(utc) = t.to_utc() else {
        return String::new();
    };
    let local = utc.with_timezone(&tz);
    if span_h > 72.0 {
        local.format("%b %d").to_string()
    } else {
        local.format("%b %d %H:%M").to_string()
    }
}

fn short_secs(s: f64) -> String {
    if s < 60.0 {
        format!("{s:.0}s")
    } else if s < 3600.0 {
        format!("{:.0}m", s / 60.0)
    } else {
        format!("{:.1}h", s / 3600.0)
    }
}

/// A stacked layer: its name, colour, and the top of its band.
type Layer = (
    &'static str,
    RGBColor,
    fn(&crate::sim::series::FleetPoint) -> f64,
);

/// The top of the y axis (the tallest bar and some room) and the most bars of a panel.
fn bar_scale<V: AsRef<[f64]>>(buckets: &[Vec<(V, String)>]) -> (f64, usize) {
    let ymax = buckets
        .iter()
        .flatten()
        .map(|(v, _)| v.as_ref().iter().sum::<f64>())
        .fold(0.01f64, f64::max)
        * 1.15;
    let count = buckets.iter().map(|b| b.len()).max().unwrap_or(1).max(1);
    (ymax, count)
}

/// One panel of bars per day (or week), each stacked from its layers' dollars, bottom first.
fn stacked_days<DB: DrawingBackend>(
    panel: &DrawingArea<DB, plotters::coord::Shift>,
    caption: String,
    buckets: &[(Vec<f64>, String)],
    colors: &[RGBColor],
    (count, ymax, week): (usize, f64, bool),
) -> Drawn {
    let mut chart = ChartBuilder::on(panel)
        .caption(caption, (SANS, 22))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..count as f64, 0.0..ymax)
        .map_err(err)?;
    let labels: Vec<String> = buckets.iter().map(|(_, d)| d.clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(count.min(20))
        .x_label_formatter(&|x| {
            labels
                .get(x.floor() as usize)
                .map(|d| d[5..].to_string())
                .unwrap_or_default()
        })
        .x_desc(if week {
            "week starting (month-day)"
        } else {
            "day (month-day)"
        })
        .y_desc("US dollars")
        .label_style((SANS, 14))
        .axis_desc_style((SANS, 16))
        .draw()
        .map_err(err)?;
    for (k, color) in colors.iter().enumerate() {
        let rects: Vec<Rectangle<(f64, f64)>> = buckets
            .iter()
            .enumerate()
            .map(|(i, (v, _))| {
                let below: f64 = v[..k].iter().sum();
                Rectangle::new(
                    [(i as f64 + 0.1, below), (i as f64 + 0.9, below + v[k])],
                    color.filled(),
                )
            })
            .collect();
        chart.draw_series(rects).map_err(err)?;
    }
    Ok(())
}

/// `fleet.png`: machines by state, stacked, with the jobs waiting and the active period.
pub fn fleet(
    path: &Path,
    results: &[VariantResult],
    series: &[VariantSeries],
    tz: Tz,
) -> PlotResult {
    let n = series.len().max(1) as u32;
    let height = (120 + 330 * n).max(700);
    render(path, (1600, height), |root| {
        let (title, body) = root.split_vertically(60);
        title
            .titled(
                &format!("Fleet over time by machine state, jobs waiting, active period ({tz})"),
                (SANS, 30),
            )
            .map_err(err)?;
        let panels = body.split_evenly((n as usize, 1));
        for ((panel, s), r) in panels.iter().zip(series).zip(results) {
            let Some(first) = s.fleet.first() else {
                panel
                    .draw(&Text::new(
                        format!("{}: no data", r.name),
                        (20, 20),
                        (SANS, 20),
                    ))
                    .map_err(err)?;
                continue;
            };
            let start = first.t;
            let bucket_h = s.bucket_ms as f64 / 3.6e6;
            let span_h = s
                .fleet
                .last()
                .map_or(1.0, |p| p.t.since(start) as f64 / 3.6e6 + bucket_h)
                .max(bucket_h);
            let ymax = s
                .fleet
                .iter()
                .map(|p| (p.booting + p.idle + p.busy + p.removing).max(p.waiting))
                .fold(1.0f64, f64::max)
                * 1.15;
            let (w, _) = panel.dim_in_pixel();
            let (panel, side) = panel.split_horizontally(w.saturating_sub(KEY_WIDTH));
            let mut keys: Vec<(String, Mark)> = Vec::new();
            let mut chart = ChartBuilder::on(&panel)
                .caption(format!("{} ({})", r.name, r.engine), (SANS, 22))
                .margin(10)
                .x_label_area_size(40)
                .y_label_area_size(70)
                .build_cartesian_2d(0.0..span_h, 0.0..ymax)
                .map_err(err)?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(10)
                .x_label_formatter(&|h| time_label(start, *h, span_h, tz))
                .y_desc("machines / jobs waiting (average)")
                .label_style((SANS, 15))
                .axis_desc_style((SANS, 16))
                .draw()
                .map_err(err)?;
            let x = |p: &crate::sim::series::FleetPoint| p.t.since(start) as f64 / 3.6e6;
            // The active autoscaling entry, shaded behind.
            let mut shaded = std::collections::BTreeSet::new();
            for p in &s.fleet {
                if let Some(e) = p.entry {
                    shaded.insert(e);
                    let c = SHADES[e % SHADES.len()];
                    chart
                        .draw_series(std::iter::once(Rectangle::new(
                            [(x(p), 0.0), (x(p) + bucket_h, ymax)],
                            c.filled(),
                        )))
                        .map_err(err)?;
                }
            }
            for e in shaded {
                keys.push((
                    format!("autoscaling entry {e} active"),
                    Mark::Fill(SHADES[e % SHADES.len()]),
                ));
            }
            let layers: [Layer; 3] = [
                ("booting", BOOTING, |p| {
                    p.busy + p.idle + p.removing + p.booting
                }),
                ("idle", IDLE, |p| p.busy + p.idle + p.removing),
                ("busy", BUSY, |p| p.busy),
            ];
            for (label, color, top) in layers {
                chart
                    .draw_series(AreaSeries::new(
                        s.fleet.iter().map(|p| (x(p), top(p))),
                        0.0,
                        color.filled(),
                    ))
                    .map_err(err)?;
                keys.push((format!("machines {label}"), Mark::Fill(color)));
            }
            chart
                .draw_series(LineSeries::new(
                    s.fleet.iter().map(|p| (x(p), p.waiting)),
                    WAITING.stroke_width(2),
                ))
                .map_err(err)?;
            keys.push(("jobs waiting".into(), Mark::Line(WAITING)));
            key(&side, &keys)?;
        }
        Ok(())
    })
}

/// A chart of wait distributions: waits on a log axis over `range`, shares of jobs up.
fn cdf_chart<'a, 'b: 'a>(
    area: &'a DrawingArea<BitMapBackend<'b>, plotters::coord::Shift>,
    (caption, size): (String, u32),
    range: std::ops::Range<f64>,
) -> Result<
    ChartContext<
        'a,
        BitMapBackend<'b>,
        Cartesian2d<
            plotters::coord::combinators::LogCoord<f64>,
            plotters::coord::types::RangedCoordf64,
        >,
    >,
    String,
> {
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (SANS, size))
        .margin(20)
        .x_label_area_size(55)
        .y_label_area_size(80)
        .build_cartesian_2d(range.log_scale(), 0.0..1.0)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("wait (seconds, log scale; no wait drawn at 0.1 s)")
        .y_desc("share of jobs")
        .x_label_formatter(&|v| short_secs(*v))
        .y_label_formatter(&|v| format!("{:.0}%", v * 100.0))
        .label_style((SANS, 16))
        .axis_desc_style((SANS, 18))
        .draw()
        .map_err(err)?;
    Ok(chart)
}

/// `wait.png`: the distribution of queue wait per variant (CDF, log time axis).
pub fn waits(path: &Path, results: &[VariantResult], series: &[VariantSeries]) -> PlotResult {
    render(path, (1400, 800), |root| {
        let min = 0.1f64;
        let max = series
            .iter()
            .flat_map(|s| s.wait_cdf.iter().map(|p| p.1))
            .fold(10.0f64, f64::max)
            * 1.5;
        let mut chart = cdf_chart(
            root,
            ("Queue wait: share of jobs that waited at most x".into(), 30),
            min..max,
        )?;
        for (i, (s, r)) in series.iter().zip(results).enumerate() {
            let color = variant_color(i);
            let mut pts: Vec<(f64, f64)> = vec![(min, 0.0)];
            pts.extend(s.wait_cdf.iter().map(|(q, w)| (w.max(min), *q)));
            chart
                .draw_series(LineSeries::new(pts, color.stroke_width(3)))
                .map_err(err)?
                .label(format!(
                    "{}: p50 {}, p95 {}",
                    r.name,
                    short_secs(s.wait_p50_s),
                    short_secs(s.wait_p95_s)
                ))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
                });
            // The figures are in the key; the curve carries only the dots, which cannot
            // overlap into an unreadable pile of labels when variants agree.
            for (q, w) in [(0.5, s.wait_p50_s), (0.95, s.wait_p95_s)] {
                chart
                    .draw_series([Circle::new((w.max(min), q), 6, color.filled())])
                    .map_err(err)?;
            }
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight, 16)?;
        Ok(())
    })
}

/// `cost.png`: cost per day (per week for long runs) per variant, split by what was paid for.
pub fn cost(path: &Path, results: &[VariantResult]) -> PlotResult {
    let n = results.len().max(1) as u32;
    let height = (120 + 300 * n).max(700);
    render(path, (1600, height), |root| {
        let days = results.iter().map(|r| r.per_day.len()).max().unwrap_or(0);
        let week = days > 62;
        let (title, body) = root.split_vertically(60);
        title
            .titled(
                if week {
                    "Cost per week, by what the machines were doing"
                } else {
                    "Cost per day, by what the machines were doing"
                },
                (SANS, 30),
            )
            .map_err(err)?;
        let group = if week { 7 } else { 1 };
        // Buckets of [busy, idle, booting, storage] per variant.
        let buckets: Vec<Vec<([f64; 4], String)>> = results
            .iter()
            .map(|r| {
                r.per_day
                    .chunks(group)
                    .map(|c| {
                        let mut v = [0.0; 4];
                        for d in c {
                            v[0] += d.busy_usd;
                            v[1] += d.idle_usd + d.removing_usd;
                            v[2] += d.booting_usd;
                            v[3] += d.storage_usd;
                        }
                        (v, c[0].date.clone())
                    })
                    .collect()
            })
            .collect();
        let (ymax, count) = bar_scale(&buckets);
        for ((panel, r), b) in body
            .split_evenly((n as usize, 1))
            .iter()
            .zip(results)
            .zip(&buckets)
        {
            let (w, _) = panel.dim_in_pixel();
            let (panel, side) = panel.split_horizontally(w.saturating_sub(KEY_WIDTH));
            let parts = [
                ("busy", BUSY),
                ("idle", IDLE),
                ("booting", BOOTING),
                ("storage", STORAGE),
            ];
            let colors: Vec<RGBColor> = parts.iter().map(|p| p.1).collect();
            let layers: Vec<(Vec<f64>, String)> =
                b.iter().map(|(v, d)| (v.to_vec(), d.clone())).collect();
            stacked_days(
                &panel,
                format!(
                    "{}: ${:.2} in all, {:.0}% of it on idle machines",
                    r.name,
                    r.cost_usd,
                    100.0 * r.idle_share()
                ),
                &layers,
                &colors,
                (count, ymax, week),
            )?;
            key(
                &side,
                &parts
                    .iter()
                    .map(|(l, c)| (l.to_string(), Mark::Fill(*c)))
                    .collect::<Vec<_>>(),
            )?;
        }
        Ok(())
    })
}

const OBSERVED: RGBColor = RGBColor(0, 0, 0);

/// `calibration.png`: the baseline's simulated waits against the waits the trace recorded: the
/// two distributions (CDFs on a log time axis), and the p95 of both per hour of the window.
pub fn calibration(
    path: &Path,
    name: &str,
    s: &VariantSeries,
    c: &crate::sim::calibration::Calibration,
    tz: Tz,
) -> PlotResult {
    render(path, (1400, 1100), |root| {
        let (top, bottom) = root.split_vertically(560);
        let min = 0.1f64;
        let max = s
            .wait_cdf
            .iter()
            .chain(&s.observed_cdf)
            .map(|p| p.1)
            .fold(10.0f64, f64::max)
            * 1.5;
        let mut chart = cdf_chart(
            &top,
            (
                format!(
                    "Simulated ({name}) against observed waits: p50 {:+.1}s, p95 {:+.1}s, distance {:.1}s",
                    c.p50_error_s, c.p95_error_s, c.distance
                ),
                24,
            ),
            min..max,
        )?;
        for (label, cdf, color) in [
            (format!("simulated: {name}"), &s.wait_cdf, variant_color(0)),
            (
                "observed: the trace's queued_duration".to_string(),
                &s.observed_cdf,
                OBSERVED,
            ),
        ] {
            let mut pts: Vec<(f64, f64)> = vec![(min, 0.0)];
            pts.extend(cdf.iter().map(|(q, w)| (w.max(min), *q)));
            chart
                .draw_series(LineSeries::new(pts, color.stroke_width(3)))
                .map_err(err)?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
                });
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight, 16)?;

        let hours = s.hourly_p95_s.len().max(1) as f64;
        let ymax = s
            .hourly_p95_s
            .iter()
            .flat_map(|(_, a, b)| [*a, *b])
            .flatten()
            .fold(1.0f64, f64::max)
            * 1.15;
        let start = s.hourly_p95_s.first().map_or(Time(0), |h| h.0);
        let mut chart = ChartBuilder::on(&bottom)
            .caption("p95 wait per hour of arrival", (SANS, 24))
            .margin(20)
            .x_label_area_size(55)
            .y_label_area_size(80)
            .build_cartesian_2d(0.0..hours, 0.0..ymax)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("hour of arrival")
            .y_desc("p95 wait")
            .x_labels(12)
            .x_label_formatter(&|h| time_label(start, *h, hours, tz))
            .y_label_formatter(&|v| short_secs(*v))
            .label_style((SANS, 14))
            .axis_desc_style((SANS, 18))
            .draw()
            .map_err(err)?;
        for (label, pick, color) in [
            (
                format!("simulated: {name}"),
                (|h: &(Time, Option<f64>, Option<f64>)| h.1) as fn(&_) -> Option<f64>,
                variant_color(0),
            ),
            ("observed".to_string(), |h| h.2, OBSERVED),
        ] {
            let pts: Vec<(f64, f64)> = s
                .hourly_p95_s
                .iter()
                .enumerate()
                .filter_map(|(i, h)| pick(h).map(|v| (i as f64 + 0.5, v)))
                .collect();
            chart
                .draw_series(pts.iter().map(|p| Circle::new(*p, 4, color.filled())))
                .map_err(err)?
                .label(label)
                .legend(move |(x, y)| Circle::new((x + 10, y), 5, color.filled()));
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight, 16)?;
        Ok(())
    })
}

/// Keys named in `by-key.png`; the rest are "other".
pub const TOP_KEYS: usize = 8;

/// `by-key.png`: cost per day (per week past two months) of each variant, stacked by the
/// costliest keys of the baseline, the rest as "other".
pub fn by_key(path: &Path, results: &[VariantResult]) -> PlotResult {
    let shown: Vec<&VariantResult> = results.iter().filter(|r| r.by.is_some()).collect();
    let Some(first) = shown.first().and_then(|r| r.by.as_ref()) else {
        return Ok(());
    };
    let top: Vec<String> = first
        .keys
        .iter()
        .take(TOP_KEYS)
        .map(|k| k.key.clone())
        .collect();
    let others = first.keys.len().saturating_sub(top.len());
    let n = shown.len().max(1) as u32;
    let height = (120 + 300 * n).max(700);
    render(path, (1600, height), |root| {
        let days = shown
            .iter()
            .filter_map(|r| r.by.as_ref())
            .map(|b| b.per_day.len())
            .max()
            .unwrap_or(0);
        let week = days > 62;
        let group = if week { 7 } else { 1 };
        let (title, body) = root.split_vertically(60);
        title
            .titled(
                &format!(
                    "Cost per {} by {}, the {} costliest and the rest",
                    if week { "week" } else { "day" },
                    first.by,
                    top.len()
                ),
                (SANS, 30),
            )
            .map_err(err)?;
        let layers = top.len() + 1;
        // Per variant: buckets of (dollars per layer, first date).
        let buckets: Vec<Vec<(Vec<f64>, String)>> = shown
            .iter()
            .map(|r| {
                let b = r.by.as_ref().expect("filtered");
                let layer_of: Vec<usize> = b
                    .keys
                    .iter()
                    .map(|k| top.iter().position(|t| *t == k.key).unwrap_or(top.len()))
                    .collect();
                b.per_day
                    .chunks(group)
                    .map(|c| {
                        let mut v = vec![0.0; layers];
                        for (_, costs) in c {
                            for (i, usd) in costs {
                                v[layer_of[*i]] += usd;
                            }
                        }
                        (v, c[0].0.clone())
                    })
                    .collect()
            })
            .collect();
        let (ymax, count) = bar_scale(&buckets);
        // The palette without its grey, which is the rest's.
        let color = |i: usize| {
            if i < top.len() {
                variant_color(if i >= 7 { i + 1 } else { i })
            } else {
                OTHER
            }
        };
        for ((panel, r), b) in body
            .split_evenly((n as usize, 1))
            .iter()
            .zip(&shown)
            .zip(&buckets)
        {
            let (w, _) = panel.dim_in_pixel();
            let (panel, side) = panel.split_horizontally(w.saturating_sub(KEY_WIDTH + 80));
            let colors: Vec<RGBColor> = (0..layers).map(color).collect();
            stacked_days(
                &panel,
                format!("{}: ${:.2} in all", r.name, r.cost_usd),
                b,
                &colors,
                (count, ymax, week),
            )?;
            let short = |s: &str| {
                if s.chars().count() > 30 {
                    let mut t: String = s.chars().take(29).collect();
                    t.push('…');
                    t
                } else {
                    s.to_string()
                }
            };
            let mut entries: Vec<(String, Mark)> = top
                .iter()
                .enumerate()
                .map(|(i, k)| (short(k), Mark::Fill(color(i))))
                .collect();
            if others > 0 {
                entries.push((format!("other ({others} keys)"), Mark::Fill(OTHER)));
            }
            key(&side, &entries)?;
        }
        Ok(())
    })
}

/// `heatmap.png`: p95 wait by weekday and hour of day.
pub fn heatmap(path: &Path, name: &str, s: &VariantSeries, tz: Tz) -> PlotResult {
    render(path, (1500, 700), |root| {
        let max = s
            .heat_p95_s
            .iter()
            .flatten()
            .flatten()
            .fold(1.0f64, |a, b| a.max(*b));
        let (root, side) = root.split_horizontally(1330);
        let root = &root;
        // White (no wait) to deep red (the longest), on a square-root scale.
        let shade = |v: f64| {
            let f = (v / max).sqrt().clamp(0.0, 1.0);
            RGBColor(
                255,
                (255.0 * (1.0 - 0.8 * f)) as u8,
                (255.0 * (1.0 - 0.9 * f)) as u8,
            )
        };
        heat_legend(&side, max, &shade)?;
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!("p95 queue wait by weekday and hour ({name}, {tz})"),
                (SANS, 30),
            )
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(-0.5..23.5, -0.5..6.5)
            .map_err(err)?;
        const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(48)
            .y_labels(14)
            // Cells are centred on whole numbers; label those only.
            .x_label_formatter(&|h: &f64| {
                if h.fract() == 0.0 {
                    format!("{:02}", *h as i64)
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|d: &f64| {
                let i = 6 - d.round() as i64;
                if d.fract() == 0.0 && (0..7).contains(&i) {
                    DAYS[i as usize].to_string()
                } else {
                    String::new()
                }
            })
            .x_desc("hour of day (jobs by arrival)")
            .y_desc("weekday")
            .label_style((SANS, 16))
            .axis_desc_style((SANS, 18))
            .draw()
            .map_err(err)?;
        for (d, row) in s.heat_p95_s.iter().enumerate() {
            for (h, v) in row.iter().enumerate() {
                let y = 6.0 - d as f64 - 0.5;
                let (fill, label) = match v {
                    None => (RGBColor(235, 235, 235), "-".to_string()),
                    Some(v) => (shade(*v), short_secs(*v)),
                };
                let x = h as f64 - 0.5;
                chart
                    .draw_series([Rectangle::new([(x, y), (x + 1.0, y + 1.0)], fill.filled())])
                    .map_err(err)?;
                chart
                    .draw_series([Rectangle::new(
                        [(x, y), (x + 1.0, y + 1.0)],
                        WHITE.stroke_width(1),
                    )])
                    .map_err(err)?;
                chart
                    .draw_series([Text::new(label, (x + 0.2, y + 0.6), (SANS, 14))])
                    .map_err(err)?;
            }
        }
        Ok(())
    })
}

/// The heatmap's key: the colour scale from no wait to the longest p95, and the grey of an
/// hour in which no job arrived.
fn heat_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    max: f64,
    shade: &dyn Fn(f64) -> RGBColor,
) -> Drawn {
    let mut chart = ChartBuilder::on(area)
        .caption("p95 wait", (SANS, 18))
        .margin_top(60)
        .margin_bottom(120)
        .margin_right(20)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..1.0, 0.0..max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_labels(6)
        .y_label_formatter(&|v: &f64| short_secs(*v))
        .label_style((SANS, 14))
        .draw()
        .map_err(err)?;
    let steps = 60;
    chart
        .draw_series((0..steps).map(|i| {
            let (a, b) = (
                max * i as f64 / steps as f64,
                max * (i + 1) as f64 / steps as f64,
            );
            Rectangle::new([(0.0, a), (1.0, b)], shade((a + b) / 2.0).filled())
        }))
        .map_err(err)?;
    let (_, h) = area.dim_in_pixel();
    let y = h as i32 - 90;
    area.draw(&Rectangle::new(
        [(10, y), (34, y + 24)],
        RGBColor(235, 235, 235).filled(),
    ))
    .map_err(err)?;
    area.draw(&Text::new("- no job", (40, y + 4), (SANS, 14)))
        .map_err(err)?;
    Ok(())
}

/// One point of a sweep for `pareto.png`.
pub struct ParetoPoint {
    pub label: String,
    pub cost_per_month: f64,
    pub wait_s: f64,
    pub current: bool,
    pub chosen: bool,
    /// The chosen point meets the target (else it is only the closest).
    pub meets: bool,
    /// Some jobs never finished: its wait is a lower bound; it is never on the front.
    pub unfinished: bool,
}

/// `pareto.png`: cost against wait for every combination, the Pareto front drawn, the current
/// config and the recommendation marked.
pub fn pareto(
    path: &Path,
    points: &[ParetoPoint],
    wait_name: &str,
    target: Option<f64>,
) -> PlotResult {
    render(path, (1400, 850), |root| {
        let xmax = points.iter().map(|p| p.wait_s).fold(1.0f64, f64::max) * 1.05;
        let xmin = points
            .iter()
            .map(|p| p.wait_s)
            .chain(target)
            .fold(f64::INFINITY, f64::min)
            .min(xmax)
            * 0.9;
        let ymax = points
            .iter()
            .map(|p| p.cost_per_month)
            .fold(0.01f64, f64::max)
            * 1.1;
        let ymin = points
            .iter()
            .map(|p| p.cost_per_month)
            .fold(f64::INFINITY, f64::min)
            .min(ymax)
            * 0.9;
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!("Sweep: cost against {wait_name} wait, one point per combination"),
                (SANS, 30),
            )
            .margin(20)
            .x_label_area_size(55)
            .y_label_area_size(90)
            .build_cartesian_2d(xmin..xmax, ymin..ymax)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(format!("{wait_name} queue wait (seconds)"))
            .y_desc("cost per 30 days (US dollars)")
            .label_style((SANS, 16))
            .axis_desc_style((SANS, 18))
            .draw()
            .map_err(err)?;
        chart
            .draw_series(points.iter().filter(|p| !p.unfinished).map(|p| {
                Circle::new(
                    (p.wait_s, p.cost_per_month),
                    5,
                    PALETTE[0].mix(0.6).filled(),
                )
            }))
            .map_err(err)?
            .label("combination")
            .legend(|(x, y)| Circle::new((x + 8, y), 5, PALETTE[0].filled()));
        if points.iter().any(|p| p.unfinished) {
            chart
                .draw_series(
                    points
                        .iter()
                        .filter(|p| p.unfinished)
                        .map(|p| Cross::new((p.wait_s, p.cost_per_month), 5, GREY.stroke_width(2))),
                )
                .map_err(err)?
                .label("jobs left unfinished (wait is a lower bound)")
                .legend(|(x, y)| Cross::new((x + 8, y), 5, GREY.stroke_width(2)));
        }
        let front = pareto_front(points);
        chart
            .draw_series(LineSeries::new(
                front
                    .iter()
                    .map(|&i| (points[i].wait_s, points[i].cost_per_month)),
                PALETTE[1].stroke_width(3),
            ))
            .map_err(err)?
            .label("Pareto front (nothing both cheaper and faster)")
            .legend(|(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], PALETTE[1].stroke_width(3))
            });
        if let Some(t) = target {
            chart
                .draw_series(LineSeries::new(
                    vec![(t, ymin), (t, ymax)],
                    BLACK.stroke_width(1),
                ))
                .map_err(err)?
                .label(format!("target {wait_name} {}", short_secs(t)))
                .legend(|(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(1))
                });
        }
        for p in points.iter().filter(|p| p.current || p.chosen) {
            let (color, tag) = if p.current {
                (PALETTE[3], "current")
            } else if p.meets {
                (PALETTE[2], "recommended")
            } else {
                (PALETTE[2], "closest (misses the target)")
            };
            chart
                .draw_series([Cross::new(
                    (p.wait_s, p.cost_per_month),
                    10,
                    color.stroke_width(3),
                )])
                .map_err(err)?;
            chart
                .draw_series([Text::new(
                    format!("{tag}: {}", p.label),
                    (p.wait_s, p.cost_per_month),
                    (SANS, 16).into_font().color(&color),
                )])
                .map_err(err)?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight, 16)?;
        Ok(())
    })
}

/// Indexes of the points no other point beats on both cost and wait, by rising wait.
pub fn pareto_front(points: &[ParetoPoint]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..points.len())
        .filter(|&i| !points[i].unfinished)
        .collect();
    idx.sort_by(|&a, &b| {
        points[a].wait_s.total_cmp(&points[b].wait_s).then(
            points[a]
                .cost_per_month
                .total_cmp(&points[b].cost_per_month),
        )
    });
    let mut front = Vec::new();
    let mut best = f64::INFINITY;
    for i in idx {
        if points[i].cost_per_month < best {
            best = points[i].cost_per_month;
            front.push(i);
        }
    }
    front
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plot that cannot be written is an error naming its file, with plotters' reason.
    #[test]
    fn a_plot_that_cannot_be_written_names_its_file() {
        let dir = std::env::temp_dir().join(format!("scalecast-plot-{}", std::process::id()));
        let path = dir.join("no-such-folder").join("cost.png");
        let e = cost(&path, &[]).unwrap_err();
        assert_eq!(e.path, path);
        assert!(!e.reason.is_empty());
        assert!(
            e.to_string().starts_with(&path.display().to_string()),
            "{e}"
        );
    }

    #[test]
    fn forty_variants_get_forty_distinct_colours() {
        let colours: Vec<RGBColor> = (0..40).map(variant_color).collect();
        for (i, a) in colours.iter().enumerate() {
            for b in &colours[i + 1..] {
                let d = (a.0 as i32 - b.0 as i32).abs()
                    + (a.1 as i32 - b.1 as i32).abs()
                    + (a.2 as i32 - b.2 as i32).abs();
                assert!(d >= 12, "variants {i} and another look alike: {a:?} {b:?}");
            }
        }
    }
}
