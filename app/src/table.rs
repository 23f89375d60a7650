//! The cumulative table's decisions, as plain functions over the history.
//!
//! What the table shows is in its URL ([`TableView`]: period, dates, laboratory, chapter,
//! search, abnormal only, page, units), so Back, reload and a unit switch keep it; the results
//! page and the CSV/FHIR exports filter through the same [`TableView::apply`], so an export holds
//! what the screen shows. [`row_range`] says which reference range a row shows.

use crate::i18n::Lang;
use crate::model::{History, Point, PointStatus, Series, UnitSystem};
use bioviewer_core::normalise::OtherResults;
use crate::pages::{Day, Period, Window, day_of, parse_day};

/// A flag that is not "normal" (HL7 N, negative, susceptible).
pub fn is_abnormal(p: &Point) -> bool {
    // Against the treatment target when one is set; critical values always.
    p.is_abnormal()
}

/// The cumulative table's view, read from and written to its URL.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
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
            .map(|s| Series { points: s.points.iter().filter(|p| self.keeps(&window, p)).cloned().collect(), ..s.clone() })
            .filter(|s| !s.points.is_empty())
            .filter(|s| !self.abnormal || s.points.iter().any(is_abnormal))
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

/// The range of a row's results: only results in the display unit count (a range in another
/// unit is never shown as the row's), newest first. Two ranges are the same when their bounds
/// are the same numbers (`5` and `5.0`) or, without bounds, the same text.
pub fn row_range(points: &[Point], decimals: usize, lang: Lang) -> RowRange {
    type Key = (Option<f64>, Option<f64>, Option<String>);
    let key = |p: &Point| -> Key {
        let (low, high) = (p.reference_low.as_ref().map(|d| d.to_f64()), p.reference_high.as_ref().map(|d| d.to_f64()));
        (low, high, if low.is_none() && high.is_none() { p.reference_text.clone() } else { None })
    };
    let mut seen: Vec<(String, Key, String)> = Vec::new();
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
        }
    }

    fn view(query: &[(&str, &str)]) -> TableView {
        TableView::from_query(|k| query.iter().find(|(key, _)| *key == k).map(|(_, v)| v.to_string()))
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
}
