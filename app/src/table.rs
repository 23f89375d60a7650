//! The cumulative table's decisions, as plain functions over the history.
//!
//! What the table shows is in its URL ([`TableView`]: period, dates, laboratory, chapter,
//! search, abnormal only, page, units), so Back, reload and a unit switch keep it; the results
//! page and the CSV/FHIR exports filter through the same [`TableView::apply`], so an export holds
//! what the screen shows. [`row_range`] says which reference range a row shows.

use serde::{Deserialize, Serialize};

use crate::i18n::Lang;
use crate::model::{History, PatientIdentity, Point, PointStatus, Series, UnitSystem};
use bioviewer_core::normalise::{DocumentState, OtherResults};
use crate::pages::{Day, Period, Window, day_of, parse_day};

/// A flag that is not "normal" (HL7 N, negative, susceptible).
pub fn is_abnormal(p: &Point) -> bool {
    // Against the treatment target when one is set; critical values always.
    p.is_abnormal()
}

/// The cumulative table's view, read from and written to its URL (and sent to the server, which
/// checks it again with [`TableView::checked`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TableView {
    pub units: UnitSystem,
    pub period: Period,
    /// ISO dates of a custom range, intersected with the period.
    pub from: Option<String>,
    pub to: Option<String>,
    pub laboratory: Option<String>,
    pub chapter: Option<String>,
    pub search: Option<String>,
    pub abnormal: bool,
    /// Page of columns (0: the newest).
    pub page: usize,
}

/// Longest free text kept from a URL (a laboratory's name, a search).
const MAX_TEXT: usize = 200;

fn text(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_string()).filter(|v| !v.is_empty() && v.chars().count() <= MAX_TEXT)
}

/// Percent-encodes a query value (everything but unreserved characters).
pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl TableView {
    /// Reads the view from query parameters (already decoded), dropping what is not well formed.
    pub fn from_query(get: impl Fn(&str) -> Option<String>) -> TableView {
        TableView {
            units: if get("units").as_deref() == Some("conventional") { UnitSystem::Conventional } else { UnitSystem::Si },
            period: get("period").as_deref().and_then(Period::from_code).unwrap_or_default(),
            from: get("from").filter(|d| parse_day(d).is_some()),
            to: get("to").filter(|d| parse_day(d).is_some()),
            laboratory: text(get("lab")),
            chapter: get("chapter").filter(|c| !c.is_empty() && c.len() <= 64 && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')),
            search: text(get("q")),
            abnormal: get("abnormal").as_deref() == Some("1"),
            page: get("page").and_then(|p| p.parse::<usize>().ok()).filter(|p| *p < 10_000).unwrap_or(0),
        }
    }

    /// The same view with what is not well formed dropped, as if read from its URL: what a
    /// server function receives is checked by the same rules as the page's URL.
    pub fn checked(&self) -> TableView {
        let field = |key: &str| -> Option<String> {
            match key {
                "units" => (self.units == UnitSystem::Conventional).then(|| "conventional".into()),
                "period" => Some(self.period.code().to_string()),
                "from" => self.from.clone(),
                "to" => self.to.clone(),
                "lab" => self.laboratory.clone(),
                "chapter" => self.chapter.clone(),
                "q" => self.search.clone(),
                "abnormal" => self.abnormal.then(|| "1".into()),
                "page" => Some(self.page.to_string()),
                _ => None,
            }
        };
        TableView::from_query(field)
    }

    /// The query string of this view (`?units=…&period=…`), empty for the default view.
    pub fn query(&self) -> String {
        let mut parts = Vec::new();
        if self.units == UnitSystem::Conventional {
            parts.push("units=conventional".to_string());
        }
        if self.period != Period::All {
            parts.push(format!("period={}", self.period.code()));
        }
        for (key, value) in
            [("from", &self.from), ("to", &self.to), ("lab", &self.laboratory), ("chapter", &self.chapter), ("q", &self.search)]
        {
            if let Some(value) = value {
                parts.push(format!("{key}={}", encode(value)));
            }
        }
        if self.abnormal {
            parts.push("abnormal=1".into());
        }
        if self.page > 0 {
            parts.push(format!("page={}", self.page));
        }
        if parts.is_empty() { String::new() } else { format!("?{}", parts.join("&")) }
    }

    /// The same view for an export: what is filtered, without the page (an export holds every
    /// column of the period).
    pub fn export_query(&self) -> String {
        let units = if self.units == UnitSystem::Conventional { "conventional" } else { "si" };
        let rest = TableView { units: UnitSystem::Si, page: 0, ..self.clone() }.query();
        match rest.strip_prefix('?') {
            Some(rest) => format!("?units={units}&{rest}"),
            None => format!("?units={units}"),
        }
    }

    /// The dates shown: the period counted back from the patient's latest dated result (of any
    /// analyte), intersected with the custom range.
    pub fn window(&self, series: &[Series]) -> Window {
        let latest: Option<Day> = series.iter().flat_map(|s| s.points.iter().filter_map(day_of)).max();
        let from_period = latest.and_then(|day| self.period.back_from(day));
        Window { from: from_period.max(self.from.as_deref().and_then(parse_day)), to: self.to.as_deref().and_then(parse_day) }
    }

    /// The rows shown: each analyte's results of the window (and laboratory) chosen; a row left
    /// empty goes; "abnormal only" keeps the rows with an abnormal result in what is shown,
    /// not once in the whole record.
    pub fn rows(&self, series: &[Series]) -> Vec<Series> {
        self.kept(series).into_iter().map(|(s, points)| with_points(s, points.into_iter().cloned().collect())).collect()
    }

    /// [`TableView::rows`] without copying: each row's series and the results it keeps.
    fn kept<'a>(&self, series: &'a [Series]) -> Vec<(&'a Series, Vec<&'a Point>)> {
        let window = self.window(series);
        let needle = self.search.as_deref().map(crate::components::fold_for_search).unwrap_or_default();
        series
            .iter()
            .filter(|s| self.chapter.as_deref().is_none_or(|c| s.chapter == c))
            .filter(|s| {
                needle.is_empty()
                    || crate::components::fold_for_search(&s.name_fr).contains(&needle)
                    || crate::components::fold_for_search(&s.name_en).contains(&needle)
            })
            .map(|s| (s, s.points.iter().filter(|p| self.keeps(&window, p)).collect::<Vec<_>>()))
            .filter(|(_, points)| !points.is_empty())
            .filter(|(_, points)| !self.abnormal || points.iter().any(|p| is_abnormal(p)))
            .collect()
    }

    /// A result is shown when it has a day inside the window and comes from the laboratory chosen.
    fn keeps(&self, window: &Window, p: &Point) -> bool {
        day_of(p).is_some()
            && window.contains(p)
            && self.laboratory.as_deref().is_none_or(|lab| p.laboratory.as_deref() == Some(lab))
    }

    /// The history as the table shows it: its rows, and the other results (codes not
    /// recognised) of the same dates and laboratory. Documents and the patient stay whole.
    pub fn apply(&self, history: &mut History) {
        self.apply_to_others(&history.series, &mut history.other_results);
        history.series = self.rows(&history.series);
    }

    /// The other results (codes not recognised) of the window and laboratory of `series`'s view.
    pub fn apply_to_others(&self, series: &[Series], others: &mut Vec<OtherResults>) {
        let window = self.window(series);
        for other in others.iter_mut() {
            other.points.retain(|p| self.keeps(&window, p));
        }
        others.retain(|o| !o.points.is_empty());
    }
}

/// Columns the table shows at once: a decade has hundreds of sampling days; the table pages
/// through them.
pub const PAGE_COLUMNS: usize = 12;

/// A column of the cumulative table: one collection day, with the laboratories of its results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    /// ISO date (`2025-01-05`).
    pub day: String,
    pub laboratories: Vec<String>,
}

fn day_text(p: &Point) -> Option<String> {
    p.time.map(|t| t.date_string())
}

/// A series with other results (its names, chapter and unit copied, not its results).
fn with_points(s: &Series, points: Vec<Point>) -> Series {
    Series {
        analyte: s.analyte.clone(),
        name_fr: s.name_fr.clone(),
        name_en: s.name_en.clone(),
        chapter: s.chapter.clone(),
        loinc_seen: s.loinc_seen.clone(),
        unit: s.unit.clone(),
        decimals: s.decimals,
        points,
        change_not_judged: s.change_not_judged,
    }
}

/// Every collection day of these rows, newest first, with its laboratories.
pub fn columns_of(rows: &[Series]) -> Vec<Column> {
    columns_of_points(rows.iter().flat_map(|s| &s.points))
}

fn columns_of_points<'a>(points: impl Iterator<Item = &'a Point>) -> Vec<Column> {
    let mut days: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> = Default::default();
    for p in points {
        if let Some(day) = day_text(p) {
            let labs = days.entry(day).or_default();
            if let Some(l) = &p.laboratory {
                labs.insert(l.to_string());
            }
        }
    }
    days.into_iter().rev().map(|(day, labs)| Column { day, laboratories: labs.into_iter().collect() }).collect()
}

/// How many pages `count` columns make (at least one, an empty table's).
pub fn page_count(count: usize) -> usize {
    count.div_ceil(PAGE_COLUMNS).max(1)
}

/// The page actually shown: the one asked for, or the oldest there is when it asks beyond.
pub fn clamp_page(page: usize, count: usize) -> usize {
    page.min(page_count(count) - 1)
}

/// The columns of one page (page 0: the newest [`PAGE_COLUMNS`]).
pub fn page_columns(columns: &[Column], page: usize) -> &[Column] {
    let start = (clamp_page(page, columns.len()) * PAGE_COLUMNS).min(columns.len());
    &columns[start..(start + PAGE_COLUMNS).min(columns.len())]
}

/// The points a row's reference range is decided from ([`row_range`]): for each laboratory and
/// range, its newest result in the display unit, in the row's order. [`row_range`] of these is
/// [`row_range`] of the whole row, however many results the row has.
pub fn range_points(points: &[&Point], decimals: usize) -> Vec<Point> {
    let mut kept: Vec<usize> = Vec::new();
    let mut seen: Vec<(Option<&str>, RangeKey)> = Vec::new();
    for (i, p) in points.iter().enumerate().rev() {
        if p.status != PointStatus::Completed || !p.in_display_unit || range_text(p, decimals, Lang::En).trim().is_empty() {
            continue;
        }
        let k = (p.laboratory.as_deref(), range_key(p));
        if !seen.contains(&k) {
            seen.push(k);
            kept.push(i);
        }
    }
    kept.reverse();
    // Only the range is read from them: their sources (and the document text) stay behind.
    kept.into_iter().map(|i| Point { sources: Vec::new(), ..points[i].clone() }).collect()
}

/// The results whose code maps to no analyte, as the table lists them: each code's latest
/// result and how many there are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OtherRow {
    /// The code, its laboratory and label; `points` holds its latest result only.
    pub other: OtherResults,
    pub count: usize,
    /// Its latest result comes from a document a user uploaded (said on its row; review finding:
    /// an uploaded positive HIV test read here as the laboratory's).
    #[serde(default)]
    pub uploaded: bool,
}

/// Counts for the data-quality panel, over the whole record (not only what a view shows).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataQualityCounts {
    pub unmapped_codes: usize,
    pub unmapped_results: usize,
    pub not_converted: usize,
    pub unreadable: usize,
    pub rejected: usize,
    pub replaced: usize,
}

impl DataQualityCounts {
    pub fn of(history: &History) -> DataQualityCounts {
        let docs = |state: DocumentState| history.documents.iter().filter(|d| d.status == state).count();
        DataQualityCounts {
            unmapped_codes: history.other_results.len(),
            unmapped_results: history.other_results.iter().map(|o| o.points.len()).sum(),
            not_converted: history
                .series
                .iter()
                .flat_map(|s| &s.points)
                .filter(|p| p.status == PointStatus::Completed && p.value.is_some() && !p.in_display_unit)
                .count(),
            unreadable: docs(DocumentState::Unreadable),
            rejected: docs(DocumentState::Rejected),
            replaced: docs(DocumentState::Replaced),
        }
    }
}

/// A row of the slice: the analyte with the results of the columns sent only, and what its
/// reference range is decided from ([`range_points`], over the whole period shown).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SliceRow {
    pub series: Series,
    pub range: Vec<Point>,
}

/// What the results page receives for one view: the rows and columns it shows, and what it
/// needs to draw its controls, instead of the whole history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableSlice {
    /// The view this slice answers (checked), to tell a late answer from the current one.
    pub view: TableView,
    pub patient: Option<PatientIdentity>,
    pub unit_system: UnitSystem,
    /// The rows of the view (filters applied over the whole period), their results restricted
    /// to `columns`.
    pub rows: Vec<SliceRow>,
    /// The columns sent: the page's on screen, every column of the period for the print view.
    pub columns: Vec<Column>,
    /// The page shown (the one asked for, or the oldest) and how many the period has.
    pub page: usize,
    pub pages: usize,
    /// Every laboratory and chapter of the record (the filters' choices), chapters in the
    /// table's order.
    pub laboratories: Vec<String>,
    pub chapters: Vec<String>,
    /// The other results (codes not recognised) of the view's dates and laboratory.
    pub others: Vec<OtherRow>,
    pub quality: DataQualityCounts,
    /// The documents the sent results come from: id, laboratory, date, uploaded.
    pub documents: Vec<(String, Option<String>, Option<String>, bool)>,
}

/// The slice of `history` a view shows: the page of columns (or, for the print view, every
/// column of the period), with the rows the filters keep over the whole period ("abnormal
/// only" looks at the period shown, not at the page).
pub fn slice(history: &History, view: &TableView, print: bool) -> TableSlice {
    let view = view.checked();
    let kept = view.kept(&history.series);
    let all_columns = columns_of_points(kept.iter().flat_map(|(_, points)| points.iter().copied()));
    let page = clamp_page(view.page, all_columns.len());
    let columns: Vec<Column> = if print { all_columns.clone() } else { page_columns(&all_columns, page).to_vec() };
    let days: std::collections::HashSet<&str> = columns.iter().map(|c| c.day.as_str()).collect();
    let rows: Vec<SliceRow> = kept
        .into_iter()
        .map(|(s, points)| {
            let range = range_points(&points, s.decimals);
            let shown = points.into_iter().filter(|p| day_text(p).is_some_and(|d| days.contains(d.as_str()))).cloned().collect();
            SliceRow { series: with_points(s, shown), range }
        })
        .collect();
    let mut laboratories: Vec<String> =
        history.series.iter().flat_map(|s| &s.points).filter_map(|p| p.laboratory.as_deref().map(str::to_string)).collect();
    laboratories.sort();
    laboratories.dedup();
    let mut chapters: Vec<String> = history.series.iter().map(|s| s.chapter.clone()).collect();
    chapters.dedup();
    let mut others = history.other_results.clone();
    view.apply_to_others(&history.series, &mut others);
    let uploaded_documents = history.uploaded_documents();
    let others = others
        .into_iter()
        .map(|mut o| {
            let count = o.points.len();
            let last = o.points.pop();
            let uploaded = last.as_ref().is_some_and(|p| p.first_source_in(&uploaded_documents));
            o.points = last.into_iter().collect();
            OtherRow { other: o, count, uploaded }
        })
        .collect();
    let used: std::collections::HashSet<&str> =
        rows.iter().flat_map(|r| &r.series.points).flat_map(|p| &p.sources).map(|s| &*s.document).collect();
    let documents = history
        .documents
        .iter()
        .filter(|d| used.contains(d.id.as_str()))
        .map(|d| {
            let uploaded = d.provenance == bioviewer_core::normalise::Provenance::Upload;
            (d.id.clone(), d.laboratory.clone(), d.effective_time.map(|t| t.date_string()), uploaded)
        })
        .collect();
    TableSlice {
        view: TableView { page, ..view },
        patient: history.patient.clone(),
        unit_system: history.unit_system,
        rows,
        pages: page_count(all_columns.len()),
        page,
        columns,
        laboratories,
        chapters,
        others,
        quality: DataQualityCounts::of(history),
        documents,
    }
}

/// A result's reference range as written in the table (one function for the table, its tips
/// and the flags' words).
pub use crate::flags::range_text;

/// The reference range a row shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowRange {
    /// No result in the display unit gave one.
    None,
    /// Every laboratory gave the same range.
    One(String),
    /// Laboratories (or one laboratory over time) differ: each laboratory with its range(s),
    /// the latest first.
    Varies(Vec<(String, String)>),
}

/// Two ranges are the same when their bounds are the same numbers or, without bounds, the same text.
type RangeKey = (Option<f64>, Option<f64>, Option<String>);

fn range_key(p: &Point) -> RangeKey {
    let (low, high) = (p.reference_low.as_ref().map(|d| d.to_f64()), p.reference_high.as_ref().map(|d| d.to_f64()));
    (low, high, if low.is_none() && high.is_none() { p.reference_text.clone() } else { None })
}

/// The range of a row's results: only results in the display unit count (a range in another
/// unit is never shown as the row's), newest first. Two ranges are the same when their bounds
/// are the same numbers (`5` and `5.0`) or, without bounds, the same text.
pub fn row_range(points: &[Point], decimals: usize, lang: Lang) -> RowRange {
    let key = range_key;
    let mut seen: Vec<(String, RangeKey, String)> = Vec::new();
    for p in points.iter().rev().filter(|p| p.status == PointStatus::Completed && p.in_display_unit) {
        let range = range_text(p, decimals, lang);
        if range.trim().is_empty() {
            continue;
        }
        let (lab, k) = (p.laboratory.as_deref().unwrap_or("").to_string(), key(p));
        if !seen.iter().any(|(l, other, _)| *l == lab && *other == k) {
            seen.push((lab, k, range));
        }
    }
    match seen.first() {
        None => RowRange::None,
        Some((_, first, text)) if seen.iter().all(|(_, k, _)| k == first) => RowRange::One(text.clone()),
        Some(_) => RowRange::Varies(seen.into_iter().map(|(lab, _, range)| (lab, range)).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bioviewer_core::cda::{CdaTime, Decimal};
    use bioviewer_core::normalise::Flag;

    fn point(date: &str, lab: &str, flag: Option<&str>, range: Option<(&str, &str)>) -> Point {
        Point {
            time: Some(CdaTime::parse_hl7(date).unwrap()),
            display: Some("1".into()),
            in_display_unit: true,
            flag: flag.map(|c| Flag { code: c.into(), computed: false }),
            reference_low: range.map(|(l, _)| Decimal::parse(l).unwrap()),
            reference_high: range.map(|(_, h)| Decimal::parse(h).unwrap()),
            laboratory: Some(lab.into()),
            ..Default::default()
        }
    }

    fn series(analyte: &str, chapter: &str, points: Vec<Point>) -> Series {
        Series {
            analyte: analyte.into(),
            name_fr: format!("{analyte} fr"),
            name_en: format!("{analyte} en"),
            chapter: chapter.into(),
            loinc_seen: Vec::new(),
            unit: None,
            decimals: 1,
            points,
            change_not_judged: false,
        }
    }

    fn view(query: &[(&str, &str)]) -> TableView {
        TableView::from_query(|k| query.iter().find(|(key, _)| *key == k).map(|(_, v)| v.to_string()))
    }

    /// Review finding (pages review): "glyc" found the glucose rows but not the glycated
    /// haemoglobin ("Hémoglobine glyquée"): its English name says "glycated" now, and the search
    /// reads both languages' names, accents aside.
    #[test]
    fn a_search_reads_both_languages_names_of_the_catalogue() {
        let catalogue = bioviewer_core::catalogue::Catalogue::embedded();
        let named = |id: &str| {
            let a = catalogue.by_id(id).unwrap();
            Series {
                name_fr: a.name_fr.clone(),
                name_en: a.name_en.clone(),
                ..series(id, &a.chapter, vec![point("20250105", "A", None, None)])
            }
        };
        let all = vec![named("glucose_fasting"), named("hba1c"), named("creatinine")];
        let rows = |q: &str| view(&[("q", q)]).rows(&all).iter().map(|s| s.analyte.clone()).collect::<Vec<_>>();
        assert_eq!(rows("glyc"), ["glucose_fasting", "hba1c"]);
        assert_eq!(rows("GLYQUEE"), ["hba1c"], "accents and case aside");
        assert_eq!(rows("créat"), ["creatinine"]);
    }

    #[test]
    fn abnormal_only_keeps_rows_abnormal_in_the_period_shown() {
        let all = vec![
            // High ten years ago only.
            series("potassium", "chemistry", vec![point("20150105", "A", Some("H"), None), point("20250105", "A", Some("N"), None)]),
            series("sodium", "chemistry", vec![point("20241201", "A", Some("L"), None), point("20250110", "A", None, None)]),
        ];
        let rows = |q: &[(&str, &str)]| view(q).rows(&all).iter().map(|s| s.analyte.clone()).collect::<Vec<_>>();
        assert_eq!(rows(&[("abnormal", "1")]), ["potassium", "sodium"], "over the whole record both were abnormal once");
        assert_eq!(rows(&[("abnormal", "1"), ("period", "1y")]), ["sodium"], "in the last year only sodium was");
        assert_eq!(rows(&[("abnormal", "1"), ("to", "2016-01-01")]), ["potassium"]);
        assert_eq!(rows(&[("period", "1m")]), ["potassium", "sodium"], "the period counts back from the latest result of any row");
        assert_eq!(rows(&[("lab", "B")]), Vec::<String>::new());
    }

    #[test]
    fn the_url_round_trips_and_refuses_what_is_not_well_formed() {
        let v = view(&[
            ("units", "conventional"),
            ("period", "5y"),
            ("lab", "Labo de l'Ouest & Co"),
            ("chapter", "haematology"),
            ("q", "glycémie"),
            ("abnormal", "1"),
            ("page", "2"),
        ]);
        let q = v.query();
        assert_eq!(q, "?units=conventional&period=5y&lab=Labo%20de%20l%27Ouest%20%26%20Co&chapter=haematology&q=glyc%C3%A9mie&abnormal=1&page=2");
        assert_eq!(v.export_query(), "?units=conventional&period=5y&lab=Labo%20de%20l%27Ouest%20%26%20Co&chapter=haematology&q=glyc%C3%A9mie&abnormal=1");
        let bad = view(&[("period", "forever"), ("from", "yesterday"), ("chapter", "\"><script>"), ("page", "-1"), ("abnormal", "yes")]);
        assert_eq!(bad, TableView::default());
        assert_eq!(TableView::default().query(), "");
        assert_eq!(TableView::default().export_query(), "?units=si");
    }

    #[test]
    fn apply_filters_the_other_results_by_the_same_dates_and_laboratory() {
        let mut history = History {
            patient: None,
            unit_system: UnitSystem::Si,
            documents: Vec::new(),
            series: vec![series("sodium", "chemistry", vec![point("20200101", "A", None, None), point("20250101", "A", None, None)])],
            other_results: vec![bioviewer_core::normalise::OtherResults {
                code: Some("X".into()),
                code_system: None,
                label: None,
                laboratory: Some("A".into()),
                points: vec![point("20200101", "A", None, None)],
            }],
            problems: Vec::new(),
            targets: Vec::new(),
        };
        view(&[("period", "1y")]).apply(&mut history);
        assert_eq!(history.series[0].points.len(), 1);
        assert!(history.other_results.is_empty(), "a 2020 result is not in the last year");
    }

    #[test]
    fn one_range_or_varies_by_laboratory_in_the_display_unit_only() {
        let same = [point("20240101", "A", None, Some(("3.5", "5.0"))), point("20250101", "B", None, Some(("3.5", "5")))];
        assert_eq!(row_range(&same, 1, Lang::Fr), RowRange::One("3,5 – 5".into()), "5 and 5.0 are the same bound; the latest is written");
        let differ = [point("20240101", "A", None, Some(("3.5", "5.0"))), point("20250101", "B", None, Some(("3.6", "5.1")))];
        assert_eq!(
            row_range(&differ, 1, Lang::En),
            RowRange::Varies(vec![("B".into(), "3.6 – 5.1".into()), ("A".into(), "3.5 – 5.0".into())])
        );
        let mut other_unit = point("20250101", "B", None, Some(("20", "40")));
        other_unit.in_display_unit = false;
        assert_eq!(row_range(&[same[0].clone(), other_unit], 1, Lang::En), RowRange::One("3.5 – 5.0".into()));
        assert_eq!(row_range(&[point("20250101", "A", None, None)], 1, Lang::En), RowRange::None);
    }

    fn many_days(n: usize) -> Vec<Point> {
        // One result a day, 28 days a month from January 2010, each its own day; every tenth
        // from laboratory B, with another range, and the very first abnormal.
        (0..n)
            .map(|i| {
                let date = format!("{}{:02}{:02}", 2010 + i / 336, 1 + (i % 336) / 28, 1 + i % 28);
                let lab = if i % 10 == 0 { "B" } else { "A" };
                let range = if lab == "B" { ("3.6", "5.1") } else { ("3.5", "5.0") };
                let mut p = point(&date, lab, if i == 0 { Some("H") } else { Some("N") }, Some(range));
                p.display = Some(format!("4.{}", i % 10).into());
                p
            })
            .collect()
    }

    #[test]
    fn a_slice_sends_the_page_of_columns_asked_and_every_control_of_the_period() {
        let potassium = series("potassium", "chemistry", many_days(520));
        let history = History {
            patient: None,
            unit_system: UnitSystem::Si,
            documents: Vec::new(),
            series: vec![potassium.clone(), series("sodium", "chemistry", vec![point("20090101", "C", None, None)])],
            other_results: Vec::new(),
            problems: Vec::new(),
            targets: Vec::new(),
        };
        let newest = slice(&history, &TableView::default(), false);
        assert_eq!(newest.pages, 521_usize.div_ceil(PAGE_COLUMNS), "every day of both rows, in pages of twelve");
        assert_eq!(newest.page, 0);
        assert_eq!(newest.columns.len(), PAGE_COLUMNS);
        assert_eq!(newest.columns[0].day, potassium.points[519].time.unwrap().date_string(), "newest first");
        // Every row of the period, as on every page of the table, with this page's results only.
        assert_eq!(newest.rows.iter().map(|r| (r.series.analyte.as_str(), r.series.points.len())).collect::<Vec<_>>(), [
            ("potassium", PAGE_COLUMNS),
            ("sodium", 0)
        ]);
        assert_eq!(newest.laboratories, ["A", "B", "C"], "the filter offers every laboratory of the record");
        assert_eq!(newest.chapters, ["chemistry"]);
        // The range is the row's over the whole period, not the page's.
        assert_eq!(
            row_range(&newest.rows[0].range, 1, Lang::En),
            row_range(&potassium.points, 1, Lang::En),
            "B's range, given on a day of another page, still makes the row's range vary"
        );
        assert!(newest.rows[0].range.len() <= 2);

        // An older page holds the older values, the same numbers.
        let older = slice(&history, &view(&[("page", "40")]), false);
        assert_eq!(older.page, 40);
        let shown: Vec<_> = older.rows[0].series.points.iter().map(|p| p.time.unwrap().date_string()).collect();
        let expected: Vec<_> = potassium.points[520 - 41 * 12..520 - 40 * 12].iter().map(|p| p.time.unwrap().date_string()).collect();
        assert_eq!(shown, expected);
        assert_eq!(older.rows[0].series.points, potassium.points[520 - 41 * 12..520 - 40 * 12].to_vec());

        // Beyond the oldest page: the oldest, with sodium's day.
        let oldest = slice(&history, &view(&[("page", "9999")]), false);
        assert_eq!(oldest.page, oldest.pages - 1);
        assert_eq!(oldest.view.page, oldest.page, "the answer says which page it is");
        assert_eq!(oldest.rows.iter().map(|r| r.series.points.len()).sum::<usize>(), 520 % 12 + 1, "the last potassium days and sodium's");

        // The print view has every column of the period.
        let last_year = view(&[("period", "1y")]);
        let print = slice(&history, &last_year, true);
        let in_period = columns_of(&last_year.rows(&history.series)).len();
        assert!(in_period > PAGE_COLUMNS);
        assert_eq!(print.columns.len(), in_period);
        assert_eq!(print.rows[0].series.points.len(), in_period);
        assert_eq!(print.pages, page_count(in_period));
    }

    /// Review finding (third round): an uploaded positive HIV test, a code of no analyte, read in
    /// the table of other results as the laboratory's. Its row says it is uploaded.
    #[test]
    fn an_other_result_from_an_upload_says_so() {
        use bioviewer_core::normalise::{DocumentEntry, DocumentState, Provenance, Source};
        let document = |id: &str, provenance: Provenance| DocumentEntry::bare(id, DocumentState::Current, provenance);
        let other = |code: &str, from: &str| OtherResults {
            code: Some(code.into()),
            code_system: None,
            label: None,
            laboratory: Some("A".into()),
            points: vec![Point { sources: vec![Source { document: from.into(), ..Default::default() }], ..point("20250105", "A", Some("POS"), None) }],
        };
        let history = History {
            patient: None,
            unit_system: UnitSystem::Si,
            documents: vec![document("lab", Provenance::Dmp), document("up", Provenance::Upload)],
            series: Vec::new(),
            other_results: vec![other("X-1", "lab"), other("X-2", "up")],
            problems: Vec::new(),
            targets: Vec::new(),
        };
        let s = slice(&history, &TableView::default(), false);
        let uploaded: Vec<(Option<&str>, bool)> = s.others.iter().map(|o| (o.other.code.as_deref(), o.uploaded)).collect();
        assert_eq!(uploaded, [(Some("X-1"), false), (Some("X-2"), true)]);
    }

    #[test]
    fn abnormal_only_in_a_slice_looks_at_the_period_not_the_page() {
        let history = History {
            patient: None,
            unit_system: UnitSystem::Si,
            documents: Vec::new(),
            series: vec![series("potassium", "chemistry", many_days(700))],
            other_results: Vec::new(),
            problems: Vec::new(),
            targets: Vec::new(),
        };
        // The only abnormal result is the oldest: the row is kept on the newest page too, as
        // the table always did.
        let s = slice(&history, &view(&[("abnormal", "1")]), false);
        assert_eq!(s.rows.len(), 1);
        assert!(slice(&history, &view(&[("abnormal", "1"), ("period", "1y")]), false).rows.is_empty());
    }

    #[test]
    fn a_view_from_a_server_function_is_checked_like_a_url() {
        let bad = TableView {
            chapter: Some("\"><script>".into()),
            search: Some("x".repeat(5000)),
            from: Some("yesterday".into()),
            page: 1_000_000,
            ..TableView::default()
        };
        assert_eq!(bad.checked(), TableView::default());
        let good = view(&[("units", "conventional"), ("period", "5y"), ("lab", "L & Co"), ("abnormal", "1"), ("page", "3"), ("from", "2020-01-01")]);
        assert_eq!(good.checked(), good);
    }

    #[test]
    fn pages_of_columns() {
        let cols: Vec<Column> = (0..30).map(|i| Column { day: format!("d{i:02}"), laboratories: Vec::new() }).collect();
        assert_eq!(page_count(0), 1);
        assert_eq!(page_count(30), 3);
        assert_eq!(page_columns(&cols, 0).len(), 12);
        assert_eq!(page_columns(&cols, 2).iter().map(|c| c.day.as_str()).collect::<Vec<_>>(), ["d24", "d25", "d26", "d27", "d28", "d29"]);
        assert_eq!(page_columns(&cols, 7), page_columns(&cols, 2), "beyond the oldest page: the oldest");
        assert!(page_columns(&[], 3).is_empty());
    }
}
