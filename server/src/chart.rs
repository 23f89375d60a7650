//! Trend charts of one analyte, drawn on the server as SVG with plotters.
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
//! plotters is the drawing engine: its `SVGBackend` writes the picture, split into a plot area
//! and a legend area below it; its chart builder lays out the plot and its label areas and maps
//! values to pixels (one mapping for everything drawn, the focusable marks included); its mesh
//! draws the grid, the axes and the tick labels, at the calendar ticks and value ticks computed
//! here (`with_key_points`) and formatted in the reader's language at the analyte's precision;
//! the second analyte has plotters' secondary coordinate and axis. Our code decides what to draw
//! (ticks, ranges, legend layout) and adds to plotters' output only what it cannot write, through
//! [`Hook`]s (see [`finish`]): the `<pattern>` fills, the classes and data attributes the page's
//! tests and styles use, dashes, the year under a date label, the focusable point groups, and
//! the root tag with its `viewBox` at the width the page measured, in CSS pixels, scaling to its
//! container (`width="100%"`): text is drawn at the size it is read at, and a phone gets fewer
//! ticks rather than smaller ones.

use std::cell::RefCell;
use std::fmt::Write as _;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use bioviewer_app::i18n::{Lang, Msg};
use bioviewer_core::cda::{CdaTime, Comparator, Decimal};
use bioviewer_core::normalise::{Point, PointStatus, Series};

/// Colour-blind-safe palette (Okabe–Ito), one colour per laboratory.
const PALETTE: [RGBColor; 6] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(230, 159, 0),
];
/// The second analyte: one dark colour whatever its laboratory, so it never reads as a laboratory.
const OVERLAY: RGBColor = RGBColor(60, 60, 60);
const TARGET: RGBColor = RGBColor(27, 94, 32);
/// The ring around a critical value (with its `‼` and the words in its tip: never colour alone).
const CRITICAL: RGBColor = RGBColor(178, 24, 43);
const INK: RGBColor = RGBColor(40, 40, 40);
const MUTED: RGBColor = RGBColor(85, 85, 85);
const GRID: RGBColor = RGBColor(230, 230, 230);
const FRAME: RGBColor = RGBColor(200, 200, 200);
const LINE: RGBColor = RGBColor(110, 110, 110);
const FONT_FAMILY: &str = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
/// Text sizes in CSS pixels: the viewBox is the width the chart is shown at.
const FONT: f64 = 12.5;
const TITLE_FONT: f64 = 13.5;
/// plotters' SVG backend writes a font size divided by 1.24 (its em box): sizes given to it
/// are multiplied by this so the SVG says `FONT` and `TITLE_FONT`.
const PLOTTERS_EM: f64 = 1.24;
/// A reference range is never drawn narrower than this (a single point's range would otherwise
/// be a thin vertical bar that reads as an event).
const MIN_BAND: f64 = 22.0;
const WIDTH_RANGE: (u32, u32) = (320, 1600);
const DAY: i64 = 86_400;

#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("nothing to draw: no numeric value in the display unit")]
    Empty,
    /// plotters failed to draw (it writes into a `String`: not expected; the message is
    /// plotters' own and carries no value of the series).
    #[error("drawing failed: {0}")]
    Drawing(String),
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
    /// The documents a user uploaded: their values say so in their titles (an uploaded value
    /// never passes for one a laboratory sent).
    pub uploaded: &'a [String],
}

impl Default for ChartOptions<'_> {
    fn default() -> Self {
        ChartOptions { width: 900, target: None, overlay: None, uploaded: &[] }
    }
}

/// Text for an attribute or a title we write: escaped, and without our markers' characters.
fn escape(s: &str) -> String {
    plain(s).replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Rough width of a text at a font size: charts have no font metrics, and a generous estimate
/// only costs a little space (used to keep labels apart and the legend inside the picture).
fn text_width(s: &str, font: f64) -> f64 {
    s.chars().count() as f64 * font * 0.6
}

fn day_start(y: i64, m: u8, d: u8) -> i64 {
    let t = CdaTime {
        year: y.clamp(0, 9999) as u16,
        month: Some(m),
        day: Some(d),
        hour: None,
        minute: None,
        second: None,
        offset_minutes: None,
    };
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

/// A value axis is a plotters coordinate: plotters' own linear mapping of `[low, high]`, with our
/// ticks as its key points. (`WithKeyPoints` over an `f64` range would say the same, but in
/// plotters 0.3.7 its mesh cannot be given a label formatter.)
impl Ranged for ValueAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        RangedCoordf64::from(self.low..self.high).map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() { Vec::new() } else { self.ticks.clone() }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.low..self.high
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

fn css(c: RGBColor) -> String {
    format!("rgb({},{},{})", c.0, c.1, c.2)
}

fn lab_colour(lab: usize) -> RGBColor {
    PALETTE[lab % PALETTE.len()]
}

/// The pattern of laboratory `lab`'s reference range: plain for the first, hatched at a different
/// angle for the next ones, so overlapping ranges stay apart.
fn band_pattern(lab: usize) -> String {
    let colour = css(lab_colour(lab));
    let angle = [0, 45, -45, 90, 0, 60][lab % 6];
    format!(
        r#"<pattern id="bv-band-{lab}" patternUnits="userSpaceOnUse" width="7" height="7" patternTransform="rotate({angle})"><rect width="7" height="7" fill="{colour}" fill-opacity="0.10"/>{}</pattern>"#,
        if lab % 6 == 0 {
            String::new()
        } else {
            format!(r#"<line x1="0" y1="0" x2="0" y2="7" stroke="{colour}" stroke-opacity="0.45" stroke-width="1.5"/>"#)
        }
    )
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
    plain(&if unit.is_empty() { name.to_string() } else { format!("{name} ({unit})") })
}

/// What plotters cannot write, passed through it: [`Hooks::put`] draws a text whose content is
/// a marker (the hook's index between two private-use characters, which plotters writes as
/// they are); [`finish`] then replaces that text element as the hook says. A label formatter
/// can also start its label with a marker ([`Hooks::marker`]), to reach a tick label plotters
/// draws itself.
enum Hook {
    /// `<g {attributes}>` (written escaped) in place of the marker.
    Open(String),
    /// `</g>` in place of the marker.
    Close,
    /// Markup in place of the marker (the focusable points).
    Raw(String),
    /// Attributes set on the next element plotters writes (a class, a pattern fill, a dash),
    /// replacing plotters' value of the same attribute.
    Next(Vec<(&'static str, String)>),
    /// The marker starts a label's text: attributes set on that `<text>`, and markup added at
    /// its end (`{x}` in it is the label's x).
    Label(Vec<(&'static str, String)>, String),
}

const MARK_OPEN: char = '\u{E000}';
const MARK_CLOSE: char = '\u{E001}';

/// Text from a document (a laboratory's name) without the characters of our markers, so that
/// it cannot pass for a hook: every text handed to plotters or written by us goes through it.
fn plain(s: &str) -> String {
    s.replace([MARK_OPEN, MARK_CLOSE], "")
}

/// The hooks of one picture, in a `RefCell`: plotters takes label formatters as `Fn`.
#[derive(Default)]
struct Hooks(RefCell<Vec<Hook>>);

impl Hooks {
    fn marker(&self, hook: Hook) -> String {
        self.padded_marker(hook, 0)
    }

    /// A marker whose index is written with at least `digits` digits (leading zeros).
    fn padded_marker(&self, hook: Hook, digits: usize) -> String {
        let mut hooks = self.0.borrow_mut();
        hooks.push(hook);
        format!("{MARK_OPEN}{:0digits$}{MARK_CLOSE}", hooks.len() - 1)
    }

    fn put<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, hook: Hook) -> Result<(), ChartError> {
        let marker = self.marker(hook);
        area.draw_text(&marker, &FontDesc::new(FontFamily::SansSerif, 1.0, FontStyle::Normal).color(&BLACK), (0, 0)).map_err(drawing)
    }

    fn class<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, class: &str) -> Result<(), ChartError> {
        self.put(area, Hook::Next(vec![("class", class.to_string())]))
    }

    fn open<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, attributes: String) -> Result<(), ChartError> {
        self.put(area, Hook::Open(attributes))
    }

    fn close<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), ChartError> {
        self.put(area, Hook::Close)
    }
}

fn drawing(e: impl std::fmt::Display) -> ChartError {
    ChartError::Drawing(e.to_string())
}

fn text_style(size: f64, colour: RGBColor, bold: bool, h: HPos, v: VPos) -> TextStyle<'static> {
    let style = if bold { FontStyle::Bold } else { FontStyle::Normal };
    FontDesc::new(FontFamily::Name(FONT_FAMILY), size * PLOTTERS_EM, style).color(&colour).pos(Pos::new(h, v))
}

/// What a legend entry shows before its text (drawn in a 24×14 box).
enum Swatch {
    /// A laboratory's colour, on its range's pattern when it has one.
    Lab {
        lab: usize,
        band: bool,
    },
    Range,
    Target,
    /// A critical value's ring.
    Critical,
    /// A value from an uploaded document: its dashed square.
    Uploaded,
    /// The second analyte's dashed line, with its diamond when it has points.
    Overlay {
        points: bool,
    },
}

struct Entry {
    swatch: Swatch,
    text: String,
    class: &'static str,
}

/// Where each legend entry goes (x, y from the legend's top, its text shortened to fit), and
/// the legend's height: entries side by side, on as many rows as the width needs.
fn legend_layout(entries: &[Entry], width: f64, left: f64) -> (Vec<(i32, i32, String)>, f64) {
    let row_height = 22.0;
    let start = left.min(16.0);
    let (mut x, mut row) = (start, 0.0);
    let max_text = (width - 60.0) / (FONT * 0.55);
    let mut placed = Vec::new();
    for e in entries {
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
        placed.push((x.round() as i32, row as i32, text));
        x += w;
    }
    (placed, if entries.is_empty() { 0.0 } else { row + row_height })
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
    let plot_height = (width * 0.42).clamp(220.0, 360.0).round();
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

    // Horizontal layout, in whole pixels (plotters draws on a pixel grid): the y labels' widths
    // decide the margins.
    let label_width = |a: &ValueAxis| a.ticks.iter().map(|v| text_width(&a.label(*v, lang), FONT)).fold(0.0, f64::max);
    let left = (10.0 + label_width(&axis) + 8.0).round();
    let right = right_axis.as_ref().map_or(16.0, |a| (10.0 + label_width(a) + 8.0).round());
    // The axis titles above the plot, side by side, or the right one on a line of its own when
    // both do not fit (a phone).
    let titles_fit = overlay.as_ref().is_none_or(|(o, _)| {
        text_width(&axis_title(series, lang), TITLE_FONT) + text_width(&axis_title(o, lang), TITLE_FONT) + 24.0 <= width - 16.0
    });
    let top = if titles_fit { 34.0 } else { 52.0 };
    let plot_width = (width - left - right).max(100.0);
    // Under the plot: the date labels and their years, then a gap before the legend.
    let date_labels_height = (14.0 + FONT * 2.2 + 12.0).round();
    let legend_top = top + plot_height + date_labels_height;

    // Time: the data's span, padded so no point sits on the frame.
    let all_epochs = marks.iter().map(|m| m.epoch).chain(overlay.iter().flat_map(|(_, m)| m.iter().map(|m| m.epoch)));
    let (first, last) = all_epochs.fold((i64::MAX, i64::MIN), |(a, b), e| (a.min(e), b.max(e)));
    let span = (last - first).max(DAY);
    let pad = ((span as f64) * 16.0 / (plot_width - 32.0).max(1.0)) as i64 + if last == first { DAY } else { 0 };
    let (x0, x1) = (first - pad, last + pad);
    let ticks = date_ticks(first, last, plot_width, lang);

    // The legend's entries, laid out first: the picture's height depends on its rows.
    let entries = legend_entries(series, options, &labs, &bands, target, overlay.as_ref().map(|(o, _)| *o), lang);
    let (placed, legend_height) = legend_layout(&entries, width, left);
    let height = legend_top + legend_height + 4.0;

    let hooks = Hooks::default();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width as u32, height as u32)).into_drawing_area();
        let (upper, lower) = root.split_vertically(legend_top as u32);
        // The second analyte has plotters' secondary coordinate (without one, the secondary
        // coordinate is the primary's and nothing is drawn on it).
        let mut chart = ChartBuilder::on(&upper)
            .margin_top(top as u32)
            .margin_right(if overlay.is_some() { 0 } else { right as u32 })
            .y_label_area_size(left as u32)
            .right_y_label_area_size(if overlay.is_some() { right as u32 } else { 0 })
            .x_label_area_size(date_labels_height as u32)
            .build_cartesian_2d((x0..x1).with_key_points(ticks.iter().map(|t| t.at).collect()), axis.clone())
            .map_err(drawing)?
            .set_secondary_coord(x0..x1, right_axis.clone().unwrap_or_else(|| axis.clone()));
        let (plot_x, plot_y) = chart.plotting_area().get_pixel_range();

        // The plot area, then plotters' mesh: the value grid, the date grid, the axes and the
        // tick labels (each label starting with a marker that gives it its class).
        hooks.put(&root, Hook::Next(vec![("class", "bv-plot".into()), ("stroke", css(FRAME))]))?;
        root.draw(&Rectangle::new([(plot_x.start, plot_y.start), (plot_x.end, plot_y.end)], WHITE.filled())).map_err(drawing)?;
        let x_label = |at: &i64| {
            let Some(tick) = ticks.iter().find(|t| t.at == *at) else { return String::new() };
            // The year on a second line where it changes.
            let year = tick.year.map(|y| format!(r#"<tspan x="{{x}}" dy="1.2em">{y}</tspan>"#)).unwrap_or_default();
            let marker = hooks.marker(Hook::Label(vec![("class", "bv-xtick".into()), ("data-at", tick.at.to_string())], year));
            format!("{marker}{}", tick.label)
        };
        let y_label =
            |v: &f64| format!("{}{}", hooks.marker(Hook::Label(vec![("class", "bv-ytick".into())], String::new())), axis.label(*v, lang));
        chart
            .configure_mesh()
            .x_label_formatter(&x_label)
            .y_label_formatter(&y_label)
            .label_style(text_style(FONT, INK, false, HPos::Center, VPos::Center))
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .axis_style(FRAME)
            .set_all_tick_mark_size(4)
            .draw()
            .map_err(drawing)?;
        hooks.class(&root, "bv-axis-title")?;
        root.draw_text(
            &axis_title(series, lang),
            &text_style(TITLE_FONT, INK, true, HPos::Left, VPos::Bottom),
            (left as i32, (if titles_fit { top - 12.0 } else { top - 30.0 }) as i32),
        )
        .map_err(drawing)?;
        if let (Some((o, _)), Some(ra)) = (overlay.as_ref(), right_axis.as_ref()) {
            hooks.open(&root, r#"class="bv-right-axis""#.into())?;
            // plotters aligns the labels of a right axis by their estimated width, which it takes
            // from the text's length in bytes, marker included: each marker is padded so that
            // every label has the length of the longest, and all start at the axis, in one column.
            let longest = ra.ticks.iter().map(|v| ra.label(*v, lang).len()).max().unwrap_or(0);
            let right_label = |v: &f64| {
                let label = ra.label(*v, lang);
                let hook = Hook::Label(vec![("class", "bv-ytick-right".into())], String::new());
                format!("{}{label}", hooks.padded_marker(hook, 8 + longest - label.len()))
            };
            // The first thing plotters draws for these axes is the axis line: dashed like the
            // second analyte's line.
            hooks.put(&root, Hook::Next(vec![("stroke-dasharray", "5 3".into())]))?;
            chart
                .configure_secondary_axes()
                .y_label_formatter(&right_label)
                .label_style(text_style(FONT, INK, false, HPos::Left, VPos::Center))
                .axis_style(OVERLAY)
                .set_all_tick_mark_size(4)
                .draw()
                .map_err(drawing)?;
            hooks.class(&root, "bv-axis-title-right")?;
            root.draw_text(
                &axis_title(o, lang),
                &text_style(TITLE_FONT, MUTED, true, HPos::Right, VPos::Bottom),
                ((width - 8.0) as i32, (top - 12.0) as i32),
            )
            .map_err(drawing)?;
            hooks.close(&root)?;
        }

        // Reference ranges, then the target: under the lines and points.
        let x_of = |epoch: i64| f64::from(chart.backend_coord(&(epoch, axis.low)).0);
        let y_of = |v: f64| chart.backend_coord(&(x0, v)).1;
        for b in &bands {
            let colour = lab_colour(b.lab);
            let (mut bx0, mut bx1) = (x_of(b.first), x_of(b.last));
            if bx1 - bx0 < MIN_BAND {
                let middle = (bx0 + bx1) / 2.0;
                bx0 = middle - MIN_BAND / 2.0;
                bx1 = middle + MIN_BAND / 2.0;
            }
            let (bx0, bx1) = ((bx0.floor() as i32).max(plot_x.start), (bx1.ceil() as i32).min(plot_x.end));
            let y_top = b.high.map_or(plot_y.start, y_of);
            let y_bottom = b.low.map_or(plot_y.end, y_of).max(y_top);
            hooks.open(
                &root,
                format!(r#"class="bv-band" data-lab="{}" data-from="{}" data-to="{}""#, escape(&labs[b.lab]), b.first, b.last),
            )?;
            hooks.put(&root, Hook::Next(vec![("fill", format!("url(#bv-band-{})", b.lab))]))?;
            root.draw(&Rectangle::new([(bx0, y_top), (bx1, y_bottom)], colour.filled())).map_err(drawing)?;
            for (bound, y) in [(b.high, y_top), (b.low, y_bottom)] {
                if bound.is_some() {
                    let dash = if b.lab % 2 == 1 { "4 2" } else { "none" };
                    hooks.put(&root, Hook::Next(vec![("stroke-width", "1.5".into()), ("stroke-dasharray", dash.into())]))?;
                    root.draw(&PathElement::new(vec![(bx0, y), (bx1, y)], colour)).map_err(drawing)?;
                }
            }
            hooks.close(&root)?;
        }
        if let Some(t) = target {
            let y_top = to_f(&t.high).map_or(plot_y.start, y_of);
            let y_bottom = to_f(&t.low).map_or(plot_y.end, y_of).max(y_top);
            hooks.open(&root, r#"class="bv-target""#.into())?;
            hooks.put(&root, Hook::Next(vec![("fill", "url(#bv-target)".into())]))?;
            root.draw(&Rectangle::new([(plot_x.start, y_top), (plot_x.end, y_bottom)], TARGET.filled())).map_err(drawing)?;
            for (bound, y) in [(&t.high, y_top), (&t.low, y_bottom)] {
                if bound.is_some() {
                    hooks.put(&root, Hook::Next(vec![("stroke-width", "1.5".into()), ("stroke-dasharray", "8 4".into())]))?;
                    root.draw(&PathElement::new(vec![(plot_x.start, y), (plot_x.end, y)], TARGET)).map_err(drawing)?;
                }
            }
            hooks.close(&root)?;
        }

        // Lines (the overlay under the analyte's own), each comparable run its own series.
        let mut points = String::new();
        if let Some((o, o_marks)) = overlay.as_ref() {
            for run in comparable_runs(o_marks, options.uploaded) {
                hooks.put(&root, Hook::Next(vec![("class", "bv-overlay-line".into()), ("stroke-dasharray", "6 4".into())]))?;
                chart
                    .draw_secondary_series(LineSeries::new(run.iter().map(|m| (m.epoch, m.value)), OVERLAY.stroke_width(2)))
                    .map_err(drawing)?;
            }
            let secondary = chart.borrow_secondary();
            for m in o_marks {
                let uploaded = m.point.first_source_in(options.uploaded);
                points.push_str(&point_mark(m, secondary.backend_coord(&(m.epoch, m.value)), OVERLAY, Some(o), o.decimals, lang, uploaded));
            }
        }
        for run in comparable_runs(&marks, options.uploaded) {
            hooks.class(&root, "bv-line")?;
            chart.draw_series(LineSeries::new(run.iter().map(|m| (m.epoch, m.value)), LINE.stroke_width(2))).map_err(drawing)?;
        }
        for m in &marks {
            let uploaded = m.point.first_source_in(options.uploaded);
            points.push_str(&point_mark(
                m,
                chart.backend_coord(&(m.epoch, m.value)),
                lab_colour(m.lab),
                None,
                series.decimals,
                lang,
                uploaded,
            ));
        }

        // The legend, in its own area below the date labels: never over the data.
        let legend_box = format!("{:.1} {legend_top:.1} {:.1} {legend_height:.1}", 8.0, width - 16.0);
        hooks.open(&lower, format!(r#"class="bv-legend" data-box="{legend_box}""#))?;
        for (e, (x, y, text)) in entries.iter().zip(&placed) {
            hooks.open(&lower, format!(r#"class="{}""#, e.class))?;
            draw_swatch(&lower, &hooks, &e.swatch, (*x, *y))?;
            lower.draw_text(&plain(text), &text_style(FONT, INK, false, HPos::Left, VPos::Center), (x + 30, y + 7)).map_err(drawing)?;
            hooks.close(&lower)?;
        }
        hooks.close(&lower)?;
        // Points last: on top of everything, and focusable in time order.
        hooks.put(&root, Hook::Raw(points))?;
        root.present().map_err(drawing)?;
    }

    let mut defs: String = (0..labs.len()).map(band_pattern).collect();
    defs.push_str(&format!(
        r#"<pattern id="bv-target" patternUnits="userSpaceOnUse" width="8" height="8"><rect width="8" height="8" fill="{t}" fill-opacity="0.08"/><path d="M0 8 L8 0 M0 0 L8 8" stroke="{t}" stroke-opacity="0.30" stroke-width="1"/></pattern>"#,
        t = css(TARGET)
    ));
    let root = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="bv-chart{}" viewBox="0 0 {width:.0} {height:.0}" width="100%" preserveAspectRatio="xMidYMin meet" font-family="{}" role="group" aria-label="{}"><defs>{defs}</defs>"#,
        if narrow { " bv-narrow" } else { "" },
        escape(FONT_FAMILY),
        escape(&format!("{} — {}", Msg::Trend.text(lang), axis_title(series, lang)))
    );
    Ok(finish(svg, &hooks.0.into_inner(), &root))
}

/// The legend's entries: one per laboratory (its colour, and its range's pattern when it has
/// one), what a band is, the target, and the second analyte.
fn legend_entries(
    series: &Series,
    options: &ChartOptions<'_>,
    labs: &[String],
    bands: &[Band],
    target: Option<&Target>,
    overlay: Option<&Series>,
    lang: Lang,
) -> Vec<Entry> {
    let mut entries: Vec<Entry> = labs
        .iter()
        .enumerate()
        .map(|(lab, name)| Entry {
            swatch: Swatch::Lab { lab, band: bands.iter().any(|b| b.lab == lab) },
            text: name.clone(),
            class: "bv-legend-lab",
        })
        .collect();
    if !bands.is_empty() {
        entries.push(Entry { swatch: Swatch::Range, text: Msg::ChartReferenceRange.text(lang).to_string(), class: "bv-legend-range" });
    }
    if let Some(t) = target {
        let bound = |d: &Option<Decimal>| d.as_ref().map(|d| lang.decimal(&d.rounded(series.decimals)));
        let range = match (bound(&t.low), bound(&t.high)) {
            (Some(l), Some(h)) => format!("{l} – {h}"),
            (Some(l), None) => format!("≥ {l}"),
            (None, Some(h)) => format!("≤ {h}"),
            (None, None) => String::new(),
        };
        entries.push(Entry { swatch: Swatch::Target, text: format!("{} {range}", Msg::ChartTarget.text(lang)), class: "bv-legend-target" });
    }
    if series.points.iter().any(|p| p.critical.is_some()) {
        let words = Msg::CriticalValue.text(lang);
        let mut chars = words.chars();
        let words: String = chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default();
        entries.push(Entry {
            swatch: Swatch::Critical,
            text: format!("{} {words}", bioviewer_app::flags::CRITICAL_SYMBOL),
            class: "bv-legend-critical",
        });
    }
    if series.points.iter().any(|p| p.plottable().is_some() && p.first_source_in(options.uploaded)) {
        entries.push(Entry { swatch: Swatch::Uploaded, text: Msg::ChartUploaded.text(lang).to_string(), class: "bv-legend-uploaded" });
    }
    // A second analyte asked for but without a result in the period: said, not silently absent.
    if let Some(o) = options.overlay.filter(|o| o.analyte != series.analyte && overlay.is_none()) {
        entries.push(Entry {
            swatch: Swatch::Overlay { points: false },
            text: format!("{}{} {}", series_name(o, lang), if lang == Lang::Fr { " :" } else { ":" }, Msg::NoPointsInPeriod.text(lang)),
            class: "bv-legend-overlay",
        });
    }
    if let Some(o) = overlay {
        entries.push(Entry {
            swatch: Swatch::Overlay { points: true },
            text: format!("{} ({})", series_name(o, lang), Msg::ChartRightAxis.text(lang)),
            class: "bv-legend-overlay",
        });
    }
    entries
}

/// A legend entry's swatch in the 24×14 box at `(x, y)` of the legend's area.
fn draw_swatch<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    hooks: &Hooks,
    swatch: &Swatch,
    (x, y): (i32, i32),
) -> Result<(), ChartError> {
    let dot = |colour: RGBColor| area.draw(&Circle::new((x + 12, y + 7), 5, colour.filled())).map_err(drawing);
    match swatch {
        Swatch::Lab { lab, band } => {
            let colour = lab_colour(*lab);
            if *band {
                hooks.put(area, Hook::Next(vec![("fill", format!("url(#bv-band-{lab})")), ("stroke", css(colour))]))?;
                area.draw(&Rectangle::new([(x, y), (x + 24, y + 14)], colour.filled())).map_err(drawing)?;
            }
            dot(colour)
        }
        Swatch::Range => area.draw(&Rectangle::new([(x, y + 2), (x + 24, y + 12)], MUTED)).map_err(drawing),
        Swatch::Target => {
            hooks.put(
                area,
                Hook::Next(vec![("fill", "url(#bv-target)".into()), ("stroke", css(TARGET)), ("stroke-dasharray", "4 2".into())]),
            )?;
            area.draw(&Rectangle::new([(x, y), (x + 24, y + 14)], TARGET.filled())).map_err(drawing)
        }
        Swatch::Critical => {
            dot(MUTED)?;
            area.draw(&Circle::new((x + 12, y + 7), 8, CRITICAL.stroke_width(2))).map_err(drawing)
        }
        Swatch::Uploaded => {
            dot(MUTED)?;
            hooks.put(area, Hook::Next(vec![("stroke-dasharray", "3 2".into())]))?;
            area.draw(&Rectangle::new([(x + 5, y), (x + 19, y + 14)], MUTED.stroke_width(2))).map_err(drawing)
        }
        Swatch::Overlay { points } => {
            hooks.put(area, Hook::Next(vec![("stroke-dasharray", "6 4".into())]))?;
            area.draw(&PathElement::new(vec![(x, y + 7), (x + 24, y + 7)], OVERLAY.stroke_width(2))).map_err(drawing)?;
            if *points {
                area.draw(&Polygon::new(vec![(x + 12, y + 2), (x + 17, y + 7), (x + 12, y + 12), (x + 7, y + 7)], OVERLAY.filled()))
                    .map_err(drawing)?;
            }
            Ok(())
        }
    }
}

/// The runs of points the line joins, broken where comparability changes; censored points are
/// not joined, nor derived ones among measured ones (a series that is all derived, such as an
/// eGFR Bioviewer computed, is joined: its points are alike), nor values from uploaded
/// documents (review finding: the line ran through an uploaded value, then dropped to the
/// laboratory's of the same sampling; uploaded values are points, marked, off the line).
fn comparable_runs<'m, 'p>(marks: &'m [Mark<'p>], uploaded: &[String]) -> Vec<Vec<&'m Mark<'p>>> {
    let all_derived = marks.iter().all(|m| m.point.derived);
    let mut runs: Vec<Vec<&Mark<'_>>> = vec![Vec::new()];
    for m in marks {
        if m.point.comparator.is_some() || m.point.derived != all_derived || m.point.first_source_in(uploaded) {
            continue;
        }
        if m.point.comparability.any() && runs.last().is_some_and(|s| !s.is_empty()) {
            runs.push(Vec::new());
        }
        if let Some(s) = runs.last_mut() {
            s.push(m);
        }
    }
    runs.retain(|s| s.len() > 1);
    runs
}

/// plotters' SVG turned into the page's: its root tag replaced by ours (viewBox at the width
/// shown, `width="100%"`, the patterns in `<defs>`), the newlines it ends every tag with dropped
/// (they would be part of a label's text), and each hook's marker replaced (see [`Hook`]).
/// Markers are handled from the last to the first, so the earlier ones stay where they are.
fn finish(svg: String, hooks: &[Hook], root: &str) -> String {
    let mut svg = svg.replace('\n', "");
    let mut search_end = svg.len();
    while let Some(at) = svg[..search_end].rfind(MARK_OPEN) {
        search_end = at;
        let digits = at + MARK_OPEN.len_utf8();
        let Some(close) = svg[digits..].find(MARK_CLOSE).map(|i| digits + i) else { continue };
        let Some(hook) = svg[digits..close].parse::<usize>().ok().and_then(|i| hooks.get(i)) else { continue };
        let start = svg[..at].rfind("<text").unwrap_or(at);
        let end = svg[close..].find("</text>").map_or(close, |i| close + i + "</text>".len());
        // Everything before the marker's text element stays as it is.
        search_end = start;
        match hook {
            Hook::Open(attributes) => svg.replace_range(start..end, &format!("<g {attributes}>")),
            Hook::Close => svg.replace_range(start..end, "</g>"),
            Hook::Raw(markup) => svg.replace_range(start..end, markup),
            Hook::Next(attributes) => {
                svg.replace_range(start..end, "");
                set_attributes(&mut svg, start, attributes);
            }
            Hook::Label(attributes, suffix) => {
                let tag = &svg[start..svg[start..].find('>').map_or(start, |i| start + i)];
                let x = tag.split(" x=\"").nth(1).and_then(|v| v.split('"').next()).unwrap_or("0").to_string();
                svg.insert_str(end - "</text>".len(), &suffix.replace("{x}", &x));
                svg.replace_range(at..close + MARK_CLOSE.len_utf8(), "");
                set_attributes(&mut svg, start, attributes);
            }
        }
    }
    let root_end = svg.find('>').map_or(0, |i| i + 1);
    svg.replace_range(..root_end, root);
    svg
}

/// Sets attributes on the tag starting at or after `from`: a value plotters wrote is replaced,
/// the others are added right after the tag's name (so a class comes first).
fn set_attributes(svg: &mut String, from: usize, attributes: &[(&'static str, String)]) {
    let Some(open) = svg[from..].find('<').map(|i| from + i) else { return };
    let Some(close) = svg[open..].find('>').map(|i| open + i) else { return };
    let mut tag = svg[open..close].to_string();
    let mut added = String::new();
    for (name, value) in attributes {
        let key = format!(" {name}=\"");
        match tag.find(&key) {
            Some(i) => {
                let v = i + key.len();
                let e = tag[v..].find('"').map_or(v, |j| v + j);
                tag.replace_range(v..e, &escape(value));
            }
            None => {
                let _ = write!(added, " {name}=\"{}\"", escape(value));
            }
        }
    }
    let name_end = tag.find([' ', '/']).unwrap_or(tag.len());
    tag.insert_str(name_end, &added);
    svg.replace_range(open..close, &tag);
}

/// A focusable mark carrying the point's exact value (as the laboratory wrote it, rounded to the
/// analyte's precision) in its title and label.
/// `at` is the point's place as plotters maps it (`backend_coord`), so the mark sits on the line.
fn point_mark(
    m: &Mark<'_>,
    at: (i32, i32),
    fill: RGBColor,
    overlay_series: Option<&Series>,
    decimals: usize,
    lang: Lang,
    uploaded: bool,
) -> String {
    let (px, py) = (f64::from(at.0), f64::from(at.1));
    let overlay = overlay_series.is_some();
    let fill = css(fill);
    let unit = lang.unit(m.point.unit.as_deref());
    let source = m.point.sources.first();
    let original = match (source.and_then(|s| s.original_value.as_deref()), source.map(|s| s.converted)) {
        (Some(v), Some(true)) => format!(" — {} {}", lang.decimal(v), source.and_then(|s| s.original_unit.as_deref()).unwrap_or("")),
        _ => String::new(),
    };
    let comparator = m.point.comparator.map(Comparator::symbol).unwrap_or("");
    let derived = if m.point.derived { format!(" ({})", Msg::ComputedValue.text(lang)) } else { String::new() };
    let name = overlay_series.map(|s| format!("{} ", series_name(s, lang))).unwrap_or_default();
    // The flag in words (against the treatment target when one is set, with the laboratory's
    // range and flag then), and the critical marker.
    let judged = bioviewer_app::flags::judged_label(m.point, lang);
    let judged = if judged.is_empty() { String::new() } else { format!(" — {judged}") };
    let laboratory = bioviewer_app::flags::laboratory_judgement(m.point, decimals, lang).map(|t| format!(" — {t}")).unwrap_or_default();
    let uploaded = if uploaded { format!(" — {}", Msg::UploadedMark.text(lang)) } else { String::new() };
    let title = format!(
        "{name}{}: {}{} {}{}{} — {}{uploaded}{judged}{laboratory}",
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
            let inside = if m.point.derived { "white" } else { &fill };
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
    // A critical value: a ring and `‼` above the point (its words are in the title).
    let critical = if m.point.critical.is_some() {
        format!(
            r#"<circle cx="{px:.1}" cy="{py:.1}" r="9" fill="none" stroke="{c}" stroke-width="2"/><text x="{px:.1}" y="{:.1}" text-anchor="middle" font-size="13" font-weight="bold" fill="{c}">{}</text>"#,
            py - 13.0,
            bioviewer_app::flags::CRITICAL_SYMBOL,
            c = css(CRITICAL)
        )
    } else {
        String::new()
    };
    // A value from an uploaded document: a dashed square around it (the legend says what it
    // is, the title says it in words), seen without hovering.
    let upload_mark = if uploaded.is_empty() {
        String::new()
    } else {
        format!(
            r#"<rect x="{:.1}" y="{:.1}" width="16" height="16" fill="none" stroke="{fill}" stroke-width="1.5" stroke-dasharray="3 2"/>"#,
            px - 8.0,
            py - 8.0
        )
    };
    format!(
        r#"<g class="bv-point{}{}{}{}" tabindex="0" role="img" aria-label="{t}"><title>{t}</title>{shape}{upload_mark}{critical}<circle cx="{px:.1}" cy="{py:.1}" r="12" fill="transparent"/></g>"#,
        if overlay { " bv-overlay" } else { "" },
        if upload_mark.is_empty() { "" } else { " bv-uploaded" },
        if m.point.critical.is_some() { " bv-critical" } else { "" },
        if m.point.target_flag.is_some() { " bv-target-judged" } else { "" },
        t = escape(&title)
    )
}

#[cfg(test)]
mod tests;
