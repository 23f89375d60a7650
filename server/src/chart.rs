//! Trend charts of one analyte, drawn on the server as SVG.
//!
//! What a clinician must be able to trust in the picture: a proportional time axis with its
//! ticks on calendar boundaries inside the data's span; the y axis labelled with the analyte, its
//! unit and numbers at the analyte's own precision; each laboratory's reference range drawn only
//! where that laboratory's results are, each in its own pattern; the treatment target when one
//! is set; points coloured by laboratory; censored values drawn as open triangles at their bound
//! (never as exact points); values Bioviewer derived drawn hollow; the line broken where
//! laboratory, method, range or unit change; a second analyte on its own right axis; the legend
//! below the plot, never over a point; and every point's exact value reachable by hover,
//! keyboard focus and touch (an SVG `<title>` and `aria-label` on a focusable mark).
//!
//! The SVG is written here rather than through a plotting crate: the picture needs patterns,
//! a legend outside the plot, calendar ticks and focusable marks, which are each a few lines of
//! SVG and would each be a fight with a general plotting API. Its `viewBox` is the width the page
//! measured, in CSS pixels, and it scales to its container (`width="100%"`): text is drawn at the
//! size it is read at, and a phone gets fewer ticks rather than smaller ones.

use std::fmt::Write as _;

use bioviewer_app::i18n::{Lang, Msg};
use bioviewer_core::cda::{CdaTime, Comparator, Decimal};
use bioviewer_core::normalise::{Point, PointStatus, Series};

/// Colour-blind-safe palette (Okabe–Ito), one colour per laboratory.
const PALETTE: [(u8, u8, u8); 6] = [(0, 114, 178), (213, 94, 0), (0, 158, 115), (204, 121, 167), (86, 180, 233), (230, 159, 0)];
/// The second analyte: one dark colour whatever its laboratory, so it never reads as a laboratory.
const OVERLAY: &str = "rgb(60,60,60)";
const TARGET: &str = "rgb(27,94,32)";
const INK: &str = "rgb(40,40,40)";
const MUTED: &str = "rgb(85,85,85)";
const GRID: &str = "rgb(230,230,230)";
const LINE: &str = "rgb(110,110,110)";
/// Text sizes in CSS pixels: the viewBox is the width the chart is shown at.
const FONT: f64 = 12.5;
const TITLE_FONT: f64 = 13.5;
/// A reference range is never drawn narrower than this (a single point's range would otherwise
/// be a thin vertical bar that reads as an event).
const MIN_BAND: f64 = 22.0;
const WIDTH_RANGE: (u32, u32) = (320, 1600);
const DAY: i64 = 86_400;

#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("nothing to draw: no numeric value in the display unit")]
    Empty,
}

/// A treatment target (per patient, set by a clinician): either bound may be open.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Target {
    pub low: Option<Decimal>,
    pub high: Option<Decimal>,
}

/// What to draw besides the series.
#[derive(Debug, Clone, Copy)]
pub struct ChartOptions<'a> {
    /// The width the chart is shown at, in CSS pixels (clamped to 320–1600).
    pub width: u32,
    pub target: Option<&'a Target>,
    /// A second analyte, on its own right axis.
    pub overlay: Option<&'a Series>,
}

impl Default for ChartOptions<'_> {
    fn default() -> Self {
        ChartOptions { width: 900, target: None, overlay: None }
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Rough width of a text at a font size: charts have no font metrics, and a generous estimate
/// only costs a little space (used to keep labels apart and the legend inside the picture).
fn text_width(s: &str, font: f64) -> f64 {
    s.chars().count() as f64 * font * 0.6
}

fn day_start(y: i64, m: u8, d: u8) -> i64 {
    let t = CdaTime { year: y.clamp(0, 9999) as u16, month: Some(m), day: Some(d), hour: None, minute: None, second: None, offset_minutes: None };
    t.epoch_seconds()
}

/// The date a point was taken on, as the laboratory wrote it (its local date).
fn point_date(t: &CdaTime, lang: Lang) -> String {
    let (y, m, d) = (t.year, t.month.unwrap_or(1), t.day.unwrap_or(1));
    match lang {
        Lang::Fr => format!("{d:02}/{m:02}/{y}"),
        Lang::En => format!("{y}-{m:02}-{d:02}"),
    }
}

fn month_abbrev(m: u8, lang: Lang) -> &'static str {
    const FR: [&str; 12] = ["janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc."];
    const EN: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let i = usize::from(m.clamp(1, 12) - 1);
    match lang {
        Lang::Fr => FR[i],
        Lang::En => EN[i],
    }
}

/// A step between date ticks, on calendar boundaries.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Step {
    Days(i64),
    Months(u32),
}

/// Steps from the finest to the coarsest: days, weeks, months, quarters, half-years, years.
const STEPS: [Step; 10] = [
    Step::Days(1),
    Step::Days(7),
    Step::Months(1),
    Step::Months(3),
    Step::Months(6),
    Step::Months(12),
    Step::Months(24),
    Step::Months(60),
    Step::Months(120),
    Step::Months(1200),
];

/// A date tick: where it is (epoch seconds, midnight UTC of a calendar boundary), its label and
/// the year under it where the year changes.
#[derive(Debug, Clone, PartialEq)]
struct Tick {
    at: i64,
    label: String,
    year: Option<i64>,
}

/// Calendar ticks inside `[first, last]` (epoch seconds of the first and last point): days and
/// weeks (Mondays) for short spans, then months, quarters, half-years, years and decades, the
/// finest whose labels fit the width, with at most one tick per 65 px and never more than ten.
/// Ticks never fall outside the data, so the axis never runs into a year without results and
/// no label hangs past the edge.
fn date_ticks(first: i64, last: i64, plot_width: f64, lang: Lang) -> Vec<Tick> {
    let span = (last - first).max(DAY) as f64;
    let most = (plot_width / 65.0).clamp(2.0, 10.0) as usize;
    for step in STEPS {
        let ticks: Vec<Tick> = ticks_of(step, first.div_euclid(DAY), last.div_euclid(DAY), lang)
            .into_iter()
            .filter(|t| (first..=last).contains(&t.at))
            .collect();
        if ticks.is_empty() {
            // Every point between two midnights: the first point's date is the one label.
            let day = first.div_euclid(DAY);
            let label = ticks_of(Step::Days(1), day, day, lang).pop().map(|t| t.label).unwrap_or_default();
            let (y, _, _) = bioviewer_core::cda::civil_from_days(day);
            return vec![Tick { at: first, label, year: Some(y) }];
        }
        // Room for each label plus a gap, at the spacing this step gives on this width.
        let widest = ticks.iter().map(|t| text_width(&t.label, FONT)).fold(0.0, f64::max);
        let step_seconds = match step {
            Step::Days(n) => (n * DAY) as f64,
            Step::Months(n) => f64::from(n) * 28.0 * DAY as f64,
        };
        if (ticks.len() <= most && step_seconds / span * plot_width >= widest + 14.0) || step == Step::Months(1200) {
            return ticks;
        }
    }
    Vec::new()
}

fn ticks_of(step: Step, first_day: i64, last_day: i64, lang: Lang) -> Vec<Tick> {
    let mut out = Vec::new();
    match step {
        Step::Days(n) => {
            // Weeks start on Monday (1970-01-01 was a Thursday: day 4 is a Monday); fortnights
            // on every other Monday counted from that one, so they do not move with the data.
            let mut day = first_day;
            if n >= 7 {
                day += (4 - first_day).rem_euclid(n);
            }
            while day <= last_day {
                let (_, m, d) = bioviewer_core::cda::civil_from_days(day);
                let label = match lang {
                    Lang::Fr => format!("{d} {}", month_abbrev(m, lang)),
                    Lang::En => format!("{} {d}", month_abbrev(m, lang)),
                };
                out.push(Tick { at: day * DAY, label, year: None });
                day += n;
            }
            add_years(&mut out);
        }
        Step::Months(n) => {
            let n = i64::from(n);
            let (y, m, d) = bioviewer_core::cda::civil_from_days(first_day);
            // The first boundary on or after the first day, on a multiple of the step (quarters
            // start in January, April, July and October).
            let mut index = y * 12 + i64::from(m) - 1 + i64::from(d > 1);
            index += (n - index.rem_euclid(n)) % n;
            loop {
                let (y, m) = (index.div_euclid(12), (index.rem_euclid(12) + 1) as u8);
                let at = day_start(y, m, 1);
                if at.div_euclid(DAY) > last_day {
                    break;
                }
                let label = if n >= 12 { y.to_string() } else { month_abbrev(m, lang).to_string() };
                out.push(Tick { at, label, year: None });
                index += n;
            }
            if n < 12 {
                add_years(&mut out);
            }
        }
    }
    out
}

/// Writes the year under the first label and under every label where the year changes.
fn add_years(ticks: &mut [Tick]) {
    let mut previous = None;
    for tick in ticks {
        let (y, _, _) = bioviewer_core::cda::civil_from_days(tick.at.div_euclid(DAY));
        if previous != Some(y) {
            tick.year = Some(y);
            previous = Some(y);
        }
    }
}

/// A value axis: its range, its ticks and how many decimals their labels have.
#[derive(Debug, Clone, PartialEq)]
struct ValueAxis {
    low: f64,
    high: f64,
    ticks: Vec<f64>,
    decimals: usize,
}

/// A value axis over `[lo, hi]` with about `wanted` ticks at 1, 2, 2.5 or 5 × 10ⁿ, never finer
/// than the analyte's precision (`decimals`), so a TSH axis reads 0, 5, 10, 15 and never
/// "15,000"; the range is extended to whole steps so the top and bottom are labelled.
fn value_axis(lo: f64, hi: f64, wanted: usize, decimals: usize) -> ValueAxis {
    let (mut lo, mut hi) = (lo, hi);
    // An axis of values that are never negative does not go below zero.
    let positive = lo >= 0.0;
    if hi - lo < f64::EPSILON * hi.abs().max(1.0) {
        let pad = if hi.abs() > 0.0 { hi.abs() * 0.1 } else { 1.0 };
        lo -= pad;
        hi += pad;
    }
    let pad = (hi - lo) * 0.05;
    lo -= pad;
    hi += pad;
    if positive && lo < 0.0 {
        lo = 0.0;
    }
    let raw = (hi - lo) / wanted.max(2) as f64;
    let mut step = f64::MAX;
    let mut step_decimals = 0;
    for k in -6i32..=9 {
        // 2.5 × 10ᵏ needs one decimal more than 1, 2 or 5 × 10ᵏ (25 none, 2.5 one, 0.25 two).
        for (m, extra) in [(1.0, 0), (2.0, 0), (2.5, 1), (5.0, 0)] {
            let s = m * 10f64.powi(k);
            let d = (extra - k).max(0) as usize;
            if d > decimals || s < raw {
                continue;
            }
            if s < step {
                step = s;
                step_decimals = d;
            }
        }
    }
    if step == f64::MAX {
        step = 10f64.powf(raw.log10().ceil());
    }
    let first = (lo / step + 1e-9).floor() as i64;
    let last = (hi / step - 1e-9).ceil() as i64;
    let ticks: Vec<f64> = (first..=last).map(|i| i as f64 * step).collect();
    ValueAxis { low: first as f64 * step, high: last as f64 * step, ticks, decimals: step_decimals }
}

impl ValueAxis {
    fn label(&self, v: f64, lang: Lang) -> String {
        let text = format!("{:.*}", self.decimals, v);
        // "-0" is not a value anyone measured.
        let text = if text.trim_start_matches(['-', '0', '.']).is_empty() { format!("{:.*}", self.decimals, 0.0) } else { text };
        lang.decimal(&text)
    }
}

/// One drawable point.
struct Mark<'p> {
    epoch: i64,
    value: f64,
    point: &'p Point,
    lab: usize,
}

fn marks_of<'p>(series: &'p Series, labs: &mut Vec<String>) -> Vec<Mark<'p>> {
    let mut marks = Vec::new();
    for p in &series.points {
        let (Some(time), Some(value)) = (p.time, p.value.as_ref()) else { continue };
        if p.status != PointStatus::Completed || !p.in_display_unit {
            continue;
        }
        let lab_name = p.laboratory.as_deref().unwrap_or("?").to_string();
        let lab = labs.iter().position(|l| *l == lab_name).unwrap_or_else(|| {
            labs.push(lab_name);
            labs.len() - 1
        });
        marks.push(Mark { epoch: time.epoch_seconds(), value: value.to_f64(), point: p, lab });
    }
    marks.sort_by_key(|m| m.epoch);
    marks
}

/// A reference range of one laboratory over consecutive results (in time, all laboratories
/// together) of that laboratory with the same bounds: drawn from its first to its last result
/// only, so another laboratory's results never sit on a range that is not theirs.
#[derive(Debug, Clone, PartialEq)]
struct Band {
    lab: usize,
    first: i64,
    last: i64,
    low: Option<f64>,
    high: Option<f64>,
}

fn bands_of(marks: &[Mark<'_>]) -> Vec<Band> {
    let mut bands: Vec<Band> = Vec::new();
    let mut current: Option<Band> = None;
    for m in marks {
        let low = m.point.reference_low.as_ref().map(Decimal::to_f64);
        let high = m.point.reference_high.as_ref().map(Decimal::to_f64);
        match current.as_mut() {
            Some(b) if b.lab == m.lab && b.low == low && b.high == high => b.last = m.epoch,
            _ => {
                bands.extend(current.take());
                current = Some(Band { lab: m.lab, first: m.epoch, last: m.epoch, low, high });
            }
        }
    }
    bands.extend(current);
    bands.retain(|b| b.low.is_some() || b.high.is_some());
    bands
}

fn rgb((r, g, b): (u8, u8, u8)) -> String {
    format!("rgb({r},{g},{b})")
}

/// The pattern of laboratory `lab`'s reference range: plain for the first, hatched at a different
/// angle for the next ones, so overlapping ranges stay apart.
fn band_pattern(lab: usize) -> String {
    let colour = rgb(PALETTE[lab % PALETTE.len()]);
    let angle = [0, 45, -45, 90, 0, 60][lab % 6];
    format!(
        r#"<pattern id="bv-band-{lab}" patternUnits="userSpaceOnUse" width="7" height="7" patternTransform="rotate({angle})"><rect width="7" height="7" fill="{colour}" fill-opacity="0.10"/>{}</pattern>"#,
        if lab % 6 == 0 { String::new() } else { format!(r#"<line x1="0" y1="0" x2="0" y2="7" stroke="{colour}" stroke-opacity="0.45" stroke-width="1.5"/>"#) }
    )
}

/// The plot area in SVG coordinates and the scales onto it.
struct Frame {
    left: f64,
    top: f64,
    width: f64,
    height: f64,
    x0: i64,
    x1: i64,
}

impl Frame {
    fn x(&self, epoch: i64) -> f64 {
        self.left + (epoch - self.x0) as f64 / (self.x1 - self.x0).max(1) as f64 * self.width
    }

    fn y(&self, axis: &ValueAxis, v: f64) -> f64 {
        self.top + self.height - (v - axis.low) / (axis.high - axis.low) * self.height
    }
}

fn series_name(series: &Series, lang: Lang) -> &str {
    match lang {
        Lang::Fr => &series.name_fr,
        Lang::En => &series.name_en,
    }
}

fn axis_title(series: &Series, lang: Lang) -> String {
    let unit = lang.unit(series.unit.as_deref());
    let name = series_name(series, lang);
    if unit.is_empty() { name.to_string() } else { format!("{name} ({unit})") }
}

/// A legend entry: its swatch (SVG drawn in a 24×14 box at the origin) and its text.
struct Entry {
    swatch: String,
    text: String,
    class: &'static str,
}

/// Draws the series as an SVG document (see the module documentation).
pub fn render(series: &Series, lang: Lang, options: &ChartOptions<'_>) -> Result<String, ChartError> {
    let mut labs: Vec<String> = Vec::new();
    let marks = marks_of(series, &mut labs);
    if marks.is_empty() {
        return Err(ChartError::Empty);
    }
    let mut overlay_labs = Vec::new();
    let overlay = options.overlay.filter(|o| o.analyte != series.analyte).map(|o| (o, marks_of(o, &mut overlay_labs)));
    let overlay = overlay.filter(|(_, m)| !m.is_empty());

    let width = f64::from(options.width.clamp(WIDTH_RANGE.0, WIDTH_RANGE.1));
    let narrow = width < 560.0;
    let plot_height = (width * 0.42).clamp(220.0, 360.0);
    let wanted_ticks = (plot_height / 48.0).round() as usize;

    // Value axes: the values, the reference ranges shown and the target.
    let bands = bands_of(&marks);
    let to_f = |d: &Option<Decimal>| d.as_ref().map(Decimal::to_f64);
    let target = options.target.filter(|t| t.low.is_some() || t.high.is_some());
    let extent = marks
        .iter()
        .map(|m| m.value)
        .chain(bands.iter().flat_map(|b| [b.low, b.high]).flatten())
        .chain(target.iter().flat_map(|t| [to_f(&t.low), to_f(&t.high)]).flatten());
    let (lo, hi) = extent.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    let axis = value_axis(lo, hi, wanted_ticks, series.decimals);
    let right_axis = overlay.as_ref().map(|(o, m)| {
        let (lo, hi) = m.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), m| (a.min(m.value), b.max(m.value)));
        value_axis(lo, hi, wanted_ticks, o.decimals)
    });

    // Horizontal layout: the y labels' widths decide the margins.
    let label_width = |a: &ValueAxis| a.ticks.iter().map(|v| text_width(&a.label(*v, lang), FONT)).fold(0.0, f64::max);
    let left = 10.0 + label_width(&axis) + 8.0;
    let right = right_axis.as_ref().map_or(16.0, |a| 10.0 + label_width(a) + 8.0);
    // The axis titles above the plot, side by side, or the right one on a line of its own when
    // both do not fit (a phone).
    let titles_fit = overlay.as_ref().is_none_or(|(o, _)| {
        text_width(&axis_title(series, lang), TITLE_FONT) + text_width(&axis_title(o, lang), TITLE_FONT) + 24.0 <= width - 16.0
    });
    let top = if titles_fit { 34.0 } else { 52.0 };
    let plot_width = (width - left - right).max(100.0);

    // Time: the data's span, padded so no point sits on the frame.
    let all_epochs = marks.iter().map(|m| m.epoch).chain(overlay.iter().flat_map(|(_, m)| m.iter().map(|m| m.epoch)));
    let (first, last) = all_epochs.fold((i64::MAX, i64::MIN), |(a, b), e| (a.min(e), b.max(e)));
    let span = (last - first).max(DAY);
    let pad = ((span as f64) * 16.0 / (plot_width - 32.0).max(1.0)) as i64 + if last == first { DAY } else { 0 };
    let frame = Frame { left, top, width: plot_width, height: plot_height, x0: first - pad, x1: last + pad };
    let ticks = date_ticks(first, last, plot_width, lang);

    let mut body = String::new();
    let mut defs = String::new();
    for lab in 0..labs.len() {
        defs.push_str(&band_pattern(lab));
    }
    defs.push_str(&format!(
        r#"<pattern id="bv-target" patternUnits="userSpaceOnUse" width="8" height="8"><rect width="8" height="8" fill="{TARGET}" fill-opacity="0.08"/><path d="M0 8 L8 0 M0 0 L8 8" stroke="{TARGET}" stroke-opacity="0.30" stroke-width="1"/></pattern>"#
    ));
    // The plot area, its value grid and labels.
    let (plot_right, plot_bottom) = (left + plot_width, top + plot_height);
    let _ = write!(
        body,
        r#"<rect class="bv-plot" x="{left:.1}" y="{top:.1}" width="{plot_width:.1}" height="{plot_height:.1}" fill="white" stroke="rgb(200,200,200)"/>"#
    );
    for v in &axis.ticks {
        let y = frame.y(&axis, *v);
        let _ = write!(
            body,
            r#"<line x1="{left:.1}" y1="{y:.1}" x2="{plot_right:.1}" y2="{y:.1}" stroke="{GRID}"/><text class="bv-ytick" x="{:.1}" y="{:.1}" text-anchor="end" font-size="{FONT}" fill="{INK}">{}</text>"#,
            left - 6.0,
            y + FONT * 0.35,
            escape(&axis.label(*v, lang))
        );
    }
    let _ = write!(body, r#"<text class="bv-axis-title" x="{left:.1}" y="{:.1}" font-size="{TITLE_FONT}" font-weight="600" fill="{INK}">{}</text>"#, if titles_fit { top - 12.0 } else { top - 30.0 }, escape(&axis_title(series, lang)));
    if let (Some((o, _)), Some(ra)) = (overlay.as_ref(), right_axis.as_ref()) {
        let _ = write!(body, r#"<g class="bv-right-axis">"#);
        for v in &ra.ticks {
            let y = frame.y(ra, *v);
            let _ = write!(
                body,
                r#"<line x1="{plot_right:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{OVERLAY}"/><text class="bv-ytick-right" x="{:.1}" y="{:.1}" font-size="{FONT}" fill="{INK}">{}</text>"#,
                plot_right + 4.0,
                plot_right + 6.0,
                y + FONT * 0.35,
                escape(&ra.label(*v, lang))
            );
        }
        let _ = write!(
            body,
            r#"<line x1="{plot_right:.1}" y1="{top:.1}" x2="{plot_right:.1}" y2="{plot_bottom:.1}" stroke="{OVERLAY}" stroke-dasharray="5 3"/><text class="bv-axis-title-right" x="{:.1}" y="{:.1}" text-anchor="end" font-size="{TITLE_FONT}" font-weight="600" fill="{MUTED}">{}</text></g>"#,
            width - 8.0,
            top - 12.0,
            escape(&axis_title(o, lang))
        );
    }
    // Date ticks: labels centred on their tick, kept inside the picture; the year on a second
    // line where it changes.
    for t in &ticks {
        let x = frame.x(t.at);
        let w = text_width(&t.label, FONT).max(t.year.map_or(0.0, |y| text_width(&y.to_string(), FONT)));
        let (anchor, tx) = if x - w / 2.0 < 2.0 {
            ("start", 2.0f64.max(x - w / 2.0))
        } else if x + w / 2.0 > width - 2.0 {
            ("end", x.min(width - 2.0))
        } else {
            ("middle", x)
        };
        let year = t.year.map(|y| format!(r#"<tspan x="{tx:.1}" dy="{:.1}">{y}</tspan>"#, FONT * 1.2)).unwrap_or_default();
        let _ = write!(
            body,
            r#"<line x1="{x:.1}" y1="{top:.1}" x2="{x:.1}" y2="{:.1}" stroke="{GRID}"/><text class="bv-xtick" data-at="{}" x="{tx:.1}" y="{:.1}" text-anchor="{anchor}" font-size="{FONT}" fill="{INK}">{}{year}</text>"#,
            plot_bottom + 4.0,
            t.at,
            plot_bottom + 6.0 + FONT,
            escape(&t.label)
        );
    }

    // Reference ranges, then the target: under the lines and points.
    for b in &bands {
        let colour = rgb(PALETTE[b.lab % PALETTE.len()]);
        let (mut x0, mut x1) = (frame.x(b.first), frame.x(b.last));
        if x1 - x0 < MIN_BAND {
            let middle = (x0 + x1) / 2.0;
            x0 = middle - MIN_BAND / 2.0;
            x1 = middle + MIN_BAND / 2.0;
        }
        let (x0, x1) = (x0.max(left), x1.min(plot_right));
        let y_top = b.high.map_or(top, |h| frame.y(&axis, h));
        let y_bottom = b.low.map_or(plot_bottom, |l| frame.y(&axis, l));
        let dash = if b.lab % 2 == 1 { r#" stroke-dasharray="4 2""# } else { "" };
        let _ = write!(
            body,
            r#"<g class="bv-band" data-lab="{}" data-from="{}" data-to="{}"><rect x="{x0:.1}" y="{y_top:.1}" width="{:.1}" height="{:.1}" fill="url(#bv-band-{})"/>"#,
            escape(&labs[b.lab]),
            b.first,
            b.last,
            x1 - x0,
            (y_bottom - y_top).max(0.0),
            b.lab
        );
        for (bound, y) in [(b.high, y_top), (b.low, y_bottom)] {
            if bound.is_some() {
                let _ = write!(body, r#"<line x1="{x0:.1}" y1="{y:.1}" x2="{x1:.1}" y2="{y:.1}" stroke="{colour}" stroke-width="1.5"{dash}/>"#);
            }
        }
        body.push_str("</g>");
    }
    if let Some(t) = target {
        let y_top = to_f(&t.high).map_or(top, |h| frame.y(&axis, h));
        let y_bottom = to_f(&t.low).map_or(plot_bottom, |l| frame.y(&axis, l));
        let _ = write!(
            body,
            r#"<g class="bv-target"><rect x="{left:.1}" y="{y_top:.1}" width="{plot_width:.1}" height="{:.1}" fill="url(#bv-target)"/>"#,
            (y_bottom - y_top).max(0.0)
        );
        for (bound, y) in [(&t.high, y_top), (&t.low, y_bottom)] {
            if bound.is_some() {
                let _ = write!(body, r#"<line x1="{left:.1}" y1="{y:.1}" x2="{plot_right:.1}" y2="{y:.1}" stroke="{TARGET}" stroke-width="1.5" stroke-dasharray="8 4"/>"#);
            }
        }
        body.push_str("</g>");
    }

    // Lines, then points (the overlay under the analyte's own).
    let mut points = String::new();
    if let (Some((o, o_marks)), Some(ra)) = (overlay.as_ref(), right_axis.as_ref()) {
        body.push_str(&polyline(o_marks, &frame, ra, OVERLAY, " stroke-dasharray=\"6 4\"", "bv-overlay-line"));
        for m in o_marks {
            points.push_str(&point_mark(m, &frame, ra, OVERLAY, true, Some(o), lang));
        }
    }
    body.push_str(&polyline(&marks, &frame, &axis, LINE, "", "bv-line"));
    for m in &marks {
        points.push_str(&point_mark(m, &frame, &axis, &rgb(PALETTE[m.lab % PALETTE.len()]), false, None, lang));
    }

    // The legend, below the date labels: never over the data.
    // One entry per laboratory: its colour, and its range's pattern when it has one.
    let mut entries: Vec<Entry> = Vec::new();
    for (lab, name) in labs.iter().enumerate() {
        let colour = rgb(PALETTE[lab % PALETTE.len()]);
        let swatch = if bands.iter().any(|b| b.lab == lab) {
            format!(r#"<rect x="0" y="0" width="24" height="14" fill="url(#bv-band-{lab})" stroke="{colour}"/><circle cx="12" cy="7" r="4.5" fill="{colour}"/>"#)
        } else {
            format!(r#"<circle cx="12" cy="7" r="4.5" fill="{colour}"/>"#)
        };
        entries.push(Entry { swatch, text: name.clone(), class: "bv-legend-lab" });
    }
    if !bands.is_empty() {
        entries.push(Entry {
            swatch: format!(r#"<rect x="0" y="2" width="24" height="10" fill="none" stroke="{MUTED}"/>"#),
            text: Msg::ChartReferenceRange.text(lang).to_string(),
            class: "bv-legend-range",
        });
    }
    if let Some(t) = target {
        let bound = |d: &Option<Decimal>| d.as_ref().map(|d| lang.decimal(&d.rounded(series.decimals)));
        let range = match (bound(&t.low), bound(&t.high)) {
            (Some(l), Some(h)) => format!("{l} – {h}"),
            (Some(l), None) => format!("≥ {l}"),
            (None, Some(h)) => format!("≤ {h}"),
            (None, None) => String::new(),
        };
        entries.push(Entry {
            swatch: format!(r#"<rect x="0" y="0" width="24" height="14" fill="url(#bv-target)" stroke="{TARGET}" stroke-dasharray="4 2"/>"#),
            text: format!("{} {range}", Msg::ChartTarget.text(lang)),
            class: "bv-legend-target",
        });
    }
    // A second analyte asked for but without a result in the period: said, not silently absent.
    if let Some(o) = options.overlay.filter(|o| o.analyte != series.analyte && overlay.is_none()) {
        entries.push(Entry {
            swatch: format!(r#"<line x1="0" y1="7" x2="24" y2="7" stroke="{OVERLAY}" stroke-width="2" stroke-dasharray="6 4"/>"#),
            text: format!("{}{} {}", series_name(o, lang), if lang == Lang::Fr { " :" } else { ":" }, Msg::NoPointsInPeriod.text(lang)),
            class: "bv-legend-overlay",
        });
    }
    if let Some((o, _)) = overlay.as_ref() {
        entries.push(Entry {
            swatch: format!(r#"<line x1="0" y1="7" x2="24" y2="7" stroke="{OVERLAY}" stroke-width="2" stroke-dasharray="6 4"/><path d="M12 2 L17 7 L12 12 L7 7 Z" fill="{OVERLAY}"/>"#),
            text: format!("{} ({})", series_name(o, lang), Msg::ChartRightAxis.text(lang)),
            class: "bv-legend-overlay",
        });
    }
    let legend_top = plot_bottom + 14.0 + FONT * 2.2 + 12.0;
    let row_height = 22.0;
    let start = left.min(16.0);
    let (mut x, mut row) = (start, 0.0);
    let mut legend = String::new();
    let max_text = (width - 60.0) / (FONT * 0.55);
    for e in &entries {
        let text: String = if e.text.chars().count() as f64 > max_text {
            e.text.chars().take(max_text as usize - 1).chain(['…']).collect()
        } else {
            e.text.clone()
        };
        let w = 30.0 + text_width(&text, FONT) + 18.0;
        if x > start && x + w > width - 8.0 {
            x = start;
            row += row_height;
        }
        let _ = write!(
            legend,
            r#"<g class="{}" transform="translate({x:.1} {:.1})">{}<text x="30" y="11" font-size="{FONT}" fill="{INK}">{}</text></g>"#,
            e.class,
            legend_top + row,
            e.swatch,
            escape(&text)
        );
        x += w;
    }
    let legend_height = if entries.is_empty() { 0.0 } else { row + row_height };
    let height = legend_top + legend_height + 4.0;
    let legend_box = format!("{:.1} {legend_top:.1} {:.1} {legend_height:.1}", 8.0, width - 16.0);

    let mut svg = String::with_capacity(body.len() + points.len() + legend.len() + 1024);
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="bv-chart{}" viewBox="0 0 {width:.0} {height:.0}" width="100%" preserveAspectRatio="xMidYMin meet" font-family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif" role="group" aria-label="{}">"#,
        if narrow { " bv-narrow" } else { "" },
        escape(&format!("{} — {}", Msg::Trend.text(lang), axis_title(series, lang)))
    );
    let _ = write!(svg, "<defs>{defs}</defs>{body}");
    let _ = write!(svg, r#"<g class="bv-legend" data-box="{legend_box}">{legend}</g>"#);
    // Points last: on top of everything, and focusable in time order.
    let _ = write!(svg, "{points}</svg>");
    Ok(svg)
}

/// The line through the exact values, broken where comparability changes; censored points are
/// not joined, nor derived ones among measured ones (a series that is all derived, such as an
/// eGFR Bioviewer computed, is joined: its points are alike).
fn polyline(marks: &[Mark<'_>], frame: &Frame, axis: &ValueAxis, colour: &str, style: &str, class: &str) -> String {
    let all_derived = marks.iter().all(|m| m.point.derived);
    let mut segments: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for m in marks {
        if m.point.comparator.is_some() || m.point.derived != all_derived {
            continue;
        }
        if m.point.comparability.any() && segments.last().is_some_and(|s| !s.is_empty()) {
            segments.push(Vec::new());
        }
        if let Some(s) = segments.last_mut() {
            s.push((frame.x(m.epoch), frame.y(axis, m.value)));
        }
    }
    let mut out = String::new();
    for s in segments.iter().filter(|s| s.len() > 1) {
        let d: Vec<String> = s.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
        let _ = write!(out, r#"<polyline class="{class}" points="{}" fill="none" stroke="{colour}" stroke-width="2"{style}/>"#, d.join(" "));
    }
    out
}

/// A focusable mark carrying the point's exact value (as the laboratory wrote it, rounded to the
/// analyte's precision) in its title and label.
fn point_mark(m: &Mark<'_>, frame: &Frame, axis: &ValueAxis, fill: &str, overlay: bool, overlay_series: Option<&Series>, lang: Lang) -> String {
    let (px, py) = (frame.x(m.epoch), frame.y(axis, m.value));
    let unit = lang.unit(m.point.unit.as_deref());
    let source = m.point.sources.first();
    let original = match (source.and_then(|s| s.original_value.as_deref()), source.map(|s| s.converted)) {
        (Some(v), Some(true)) => format!(" — {} {}", lang.decimal(v), source.and_then(|s| s.original_unit.as_deref()).unwrap_or("")),
        _ => String::new(),
    };
    let comparator = m.point.comparator.map(Comparator::symbol).unwrap_or("");
    let derived = if m.point.derived { format!(" ({})", Msg::ComputedValue.text(lang)) } else { String::new() };
    let name = overlay_series.map(|s| format!("{} ", series_name(s, lang))).unwrap_or_default();
    let title = format!(
        "{name}{}: {}{} {}{}{} — {}",
        m.point.time.as_ref().map(|t| point_date(t, lang)).unwrap_or_default(),
        comparator,
        lang.decimal(m.point.display.as_deref().unwrap_or("")),
        unit,
        derived,
        original,
        m.point.laboratory.as_deref().unwrap_or(""),
    );
    let triangle = |dir: f64| {
        format!(
            r#"<path d="M{:.1} {:.1} L{:.1} {:.1} L{:.1} {:.1} Z" fill="white" stroke="{fill}" stroke-width="2"/>"#,
            px - 6.0,
            py - 4.0 * dir,
            px + 6.0,
            py - 4.0 * dir,
            px,
            py + 6.0 * dir
        )
    };
    let shape = match m.point.comparator {
        Some(Comparator::Less | Comparator::LessOrEqual) => triangle(1.0),
        Some(Comparator::Greater | Comparator::GreaterOrEqual) => triangle(-1.0),
        None if overlay => {
            let inside = if m.point.derived { "white" } else { fill };
            format!(
                r#"<path d="M{px:.1} {:.1} L{:.1} {py:.1} L{px:.1} {:.1} L{:.1} {py:.1} Z" fill="{inside}" stroke="{fill}" stroke-width="2"/>"#,
                py - 6.0,
                px + 6.0,
                py + 6.0,
                px - 6.0
            )
        }
        None if m.point.derived => format!(r#"<circle cx="{px:.1}" cy="{py:.1}" r="5" fill="white" stroke="{fill}" stroke-width="2"/>"#),
        None => format!(r#"<circle cx="{px:.1}" cy="{py:.1}" r="5" fill="{fill}"/>"#),
    };
    format!(
        r#"<g class="bv-point{}" tabindex="0" role="img" aria-label="{t}"><title>{t}</title>{shape}<circle cx="{px:.1}" cy="{py:.1}" r="12" fill="transparent"/></g>"#,
        if overlay { " bv-overlay" } else { "" },
        t = escape(&title)
    )
}

#[cfg(test)]
mod tests;
