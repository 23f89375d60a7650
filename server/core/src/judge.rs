//! What a numeric result is judged against, in one place: the laboratory's reference range, the
//! patient's treatment target when a clinician set one (INR 2–3 under a vitamin K antagonist,
//! HbA1c < 7 % for a diabetic patient), and the published critical limits (`data/critical.tsv`).
//!
//! The flag a page shows is [`Point::shown_flag`]: the flag against the target when the result
//! was judged against one, else the laboratory's. A critical result is marked whatever the
//! target says (an INR of 6 is critical even for a patient whose target is 2–3).

use serde::{Deserialize, Serialize};

use crate::catalogue::{Catalogue, CatalogueError};
use crate::cda::{Comparator, Decimal};
use crate::normalise::{Flag, History, Point, PointStatus};
use crate::units;

/// The published critical limits, embedded (sources in the file's header).
pub const EMBEDDED_CRITICAL: &str = include_str!("../data/critical.tsv");

/// Beyond a critical limit: below the low one or above the high one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Critical {
    Low,
    High,
}

/// An analyte's critical limits, in the analyte's canonical unit (the catalogue's SI unit).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CriticalLimit {
    pub low: Option<Decimal>,
    pub high: Option<Decimal>,
    pub unit: String,
    /// Which published list the limits come from (the key the file's header explains).
    pub source: String,
}

/// Reads the critical limits file: `analyte, low, high, unit, source`, each analyte of the
/// catalogue at most once, in the analyte's SI unit, with at least one bound and a source.
pub fn critical_limits_from_tsv(text: &str, catalogue: &Catalogue) -> Result<Vec<(String, CriticalLimit)>, CatalogueError> {
    let mut limits: Vec<(String, CriticalLimit)> = Vec::new();
    for (line, f) in text.lines().enumerate().skip(1).filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#')) {
        let line = line + 1;
        let f: Vec<&str> = f.split('\t').map(str::trim).collect();
        if f.len() != 5 {
            return Err(CatalogueError::Columns { line, expected: 5, found: f.len() });
        }
        let analyte = catalogue.by_id(f[0]).ok_or_else(|| CatalogueError::UnknownAnalyte { line, analyte: f[0].to_string() })?;
        let bound = |what: &'static str, s: &str| -> Result<Option<Decimal>, CatalogueError> {
            if s.is_empty() {
                return Ok(None);
            }
            Decimal::parse(s).map(Some).ok_or(CatalogueError::Field { line, what, value: s.to_string() })
        };
        let (low, high) = (bound("low limit", f[1])?, bound("high limit", f[2])?);
        if low.is_none() && high.is_none() {
            return Err(CatalogueError::Field { line, what: "limits", value: String::new() });
        }
        if let (Some(l), Some(h)) = (&low, &high)
            && l.to_f64() >= h.to_f64()
        {
            return Err(CatalogueError::Field { line, what: "limits", value: format!("{} {}", l.as_str(), h.as_str()) });
        }
        if analyte.unit_si.as_deref() != Some(f[3]) {
            return Err(CatalogueError::Field { line, what: "unit (the analyte's SI unit)", value: f[3].to_string() });
        }
        if f[4].is_empty() {
            return Err(CatalogueError::Field { line, what: "source", value: String::new() });
        }
        if limits.iter().any(|(id, _)| id == &analyte.id) {
            return Err(CatalogueError::Duplicate { line, what: "analyte", value: analyte.id.clone() });
        }
        limits.push((analyte.id.clone(), CriticalLimit { low, high, unit: f[3].to_string(), source: f[4].to_string() }));
    }
    Ok(limits)
}

/// Which side of `[low, high]` a value is on: `L`, `N` or `H` (a bound may be open); `None` when
/// there is no bound, or when a censored value (`< 0.5`) is not known to be on one side.
pub fn side(value: f64, comparator: Option<Comparator>, low: Option<f64>, high: Option<f64>) -> Option<&'static str> {
    if low.is_none() && high.is_none() {
        return None;
    }
    match comparator {
        // A censored value is only known to be on one side of its bound.
        Some(Comparator::Less | Comparator::LessOrEqual) => {
            if low.is_some_and(|l| value <= l) {
                Some("L")
            } else if high.is_some_and(|h| value <= h) && low.is_none() {
                // `< 2.5` against 2–3 may be low or in range: not known.
                Some("N")
            } else {
                None
            }
        }
        Some(Comparator::Greater | Comparator::GreaterOrEqual) => {
            if high.is_some_and(|h| value >= h) {
                Some("H")
            } else if low.is_some_and(|l| value >= l) && high.is_none() {
                Some("N")
            } else {
                None
            }
        }
        None => {
            if low.is_some_and(|l| value < l) {
                Some("L")
            } else if high.is_some_and(|h| value > h) {
                Some("H")
            } else {
                Some("N")
            }
        }
    }
}

/// Whether a value is beyond a critical limit (strictly: a value at the limit is not). A
/// censored value is critical only when every value it allows is (`< 2.0` against a low limit
/// of 2.8; never `> 3.0` against a high limit of 6.2).
pub fn critical(value: f64, comparator: Option<Comparator>, low: Option<f64>, high: Option<f64>) -> Option<Critical> {
    let below = |l: f64| match comparator {
        None | Some(Comparator::LessOrEqual) => value < l,
        Some(Comparator::Less) => value <= l,
        Some(Comparator::Greater | Comparator::GreaterOrEqual) => false,
    };
    let above = |h: f64| match comparator {
        None | Some(Comparator::GreaterOrEqual) => value > h,
        Some(Comparator::Greater) => value >= h,
        Some(Comparator::Less | Comparator::LessOrEqual) => false,
    };
    if low.is_some_and(below) {
        Some(Critical::Low)
    } else if high.is_some_and(above) {
        Some(Critical::High)
    } else {
        None
    }
}

/// A treatment target a clinician set for one patient and one analyte: one bound or two, in
/// `unit` (the unit it was entered in, the analyte's display unit then; the history carries it
/// in the unit its series is shown in).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreatmentTarget {
    pub analyte: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub low: Option<Decimal>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub high: Option<Decimal>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub unit: Option<String>,
    /// The clinician who set it (her display name) and when (RFC 3339, UTC).
    pub set_by: String,
    pub set_at: String,
    /// False when the target could not be put in the series' unit: shown, never judged against.
    #[serde(default = "yes")]
    pub applies: bool,
}

fn yes() -> bool {
    true
}

/// What is wrong with a target a clinician typed (a code the page translates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TargetProblem {
    #[error("give at least one bound")]
    NoBound,
    #[error("a bound is not a number")]
    NotANumber,
    #[error("a bound is negative")]
    Negative,
    #[error("the low bound is not below the high bound")]
    LowNotBelowHigh,
    #[error("this analyte takes no numeric target")]
    NotNumeric,
    #[error("the unit is not this analyte's")]
    WrongUnit,
    #[error("a bound is not a plausible value (above 100,000, below 0.001, or more than 4 decimals)")]
    Implausible,
}

impl TargetProblem {
    pub fn code(self) -> &'static str {
        match self {
            TargetProblem::NoBound => "no_bound",
            TargetProblem::NotANumber => "not_a_number",
            TargetProblem::Negative => "negative",
            TargetProblem::LowNotBelowHigh => "low_not_below_high",
            TargetProblem::NotNumeric => "not_numeric",
            TargetProblem::WrongUnit => "wrong_unit",
            TargetProblem::Implausible => "implausible",
        }
    }

    pub const ALL: [TargetProblem; 7] = [
        TargetProblem::NoBound,
        TargetProblem::NotANumber,
        TargetProblem::Negative,
        TargetProblem::LowNotBelowHigh,
        TargetProblem::NotNumeric,
        TargetProblem::WrongUnit,
        TargetProblem::Implausible,
    ];

    pub fn from_code(code: &str) -> Option<TargetProblem> {
        TargetProblem::ALL.into_iter().find(|p| p.code() == code)
    }
}

/// Checks the bounds a clinician typed (a decimal comma is accepted; an empty field is an open
/// bound) for an analyte of the catalogue, in one of its display units.
pub fn parse_target(
    catalogue: &Catalogue,
    analyte: &str,
    low: &str,
    high: &str,
    unit: &str,
) -> Result<(Option<Decimal>, Option<Decimal>, Option<String>), TargetProblem> {
    let a = catalogue.by_id(analyte).filter(|a| a.kind == crate::catalogue::AnalyteKind::Numeric).ok_or(TargetProblem::NotNumeric)?;
    let unit = unit.trim();
    let unit = if unit.is_empty() {
        None
    } else if [&a.unit_si, &a.unit_conventional].into_iter().flatten().any(|u| u == unit) {
        Some(unit.to_string())
    } else {
        return Err(TargetProblem::WrongUnit);
    };
    if unit.is_none() && (a.unit_si.is_some() || a.unit_conventional.is_some()) {
        return Err(TargetProblem::WrongUnit);
    }
    let bound = |s: &str| -> Result<Option<Decimal>, TargetProblem> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(None);
        }
        let d = Decimal::parse(s).ok_or(TargetProblem::NotANumber)?;
        let v = d.to_f64();
        // A target is read back exactly as typed: no laboratory value needs more than 4
        // decimals, none is above 100,000 in a display unit, and a value that rounds to zero
        // on the page would show a target the clinician did not set.
        let decimals = s.replace(',', ".").split_once('.').map_or(0, |(_, f)| f.trim_end_matches(|c: char| !c.is_ascii_digit()).len());
        if v < 0.0 {
            Err(TargetProblem::Negative)
        } else if v > 100_000.0 || (v != 0.0 && v < 0.001) || decimals > 4 || s.contains(['e', 'E']) {
            Err(TargetProblem::Implausible)
        } else {
            Ok(Some(d))
        }
    };
    let (low, high) = (bound(low)?, bound(high)?);
    match (&low, &high) {
        (None, None) => Err(TargetProblem::NoBound),
        (Some(l), Some(h)) if l.to_f64() >= h.to_f64() => Err(TargetProblem::LowNotBelowHigh),
        _ => Ok((low, high, unit)),
    }
}

/// A bound in another unit of the same analyte (the HbA1c master equation between % and
/// mmol/mol, a molar mass between mass and substance units).
fn bound_in(catalogue: &Catalogue, analyte: &str, bound: &Decimal, from: &str, to: &str) -> Option<Decimal> {
    let a = catalogue.by_id(analyte)?;
    let converted = if a.is_hba1c() { units::convert_hba1c(bound, from, to) } else { units::convert(bound, from, to, a.molar_mass) };
    converted.ok().map(|c| c.value)
}

/// The flag of a result against a target (`L`, `N`, `H`), computed like the laboratory's flag
/// from its range; `None` for a result not performed, not a number, or not in the display unit.
pub fn target_flag(point: &Point, low: Option<&Decimal>, high: Option<&Decimal>) -> Option<&'static str> {
    if point.status != PointStatus::Completed || !point.in_display_unit {
        return None;
    }
    let value = point.value.as_ref()?.to_f64();
    side(value, point.comparator, low.map(Decimal::to_f64), high.map(Decimal::to_f64))
}

/// The patient's targets applied to a history: each target put in its series' unit (kept, and
/// marked as not applying, when that is not possible), and every result of the series judged
/// against it. Analytes without a target keep the laboratory's flags.
pub fn apply_targets(history: &mut History, targets: Vec<TreatmentTarget>, catalogue: &Catalogue) {
    for mut target in targets {
        let Some(series) = history.series.iter_mut().find(|s| s.analyte == target.analyte) else {
            history.targets.push(target);
            continue;
        };
        if target.unit != series.unit.as_deref().map(str::to_string) {
            let (Some(from), Some(to)) = (target.unit.clone(), series.unit.as_deref().map(str::to_string)) else {
                target.applies = false;
                history.targets.push(target);
                continue;
            };
            let low = target.low.as_ref().map(|b| bound_in(catalogue, &target.analyte, b, &from, &to));
            let high = target.high.as_ref().map(|b| bound_in(catalogue, &target.analyte, b, &from, &to));
            if matches!(low, Some(None)) || matches!(high, Some(None)) {
                target.applies = false;
                history.targets.push(target);
                continue;
            }
            target.low = low.flatten();
            target.high = high.flatten();
            target.unit = Some(to);
        }
        for point in &mut series.points {
            point.target_flag = target_flag(point, target.low.as_ref(), target.high.as_ref()).map(|code| Flag { code: code.into(), computed: true });
        }
        history.targets.push(target);
    }
}

impl Point {
    /// The flag a page shows: against the patient's treatment target when the result was judged
    /// against one, else the laboratory's (see the module documentation).
    pub fn shown_flag(&self) -> Option<&Flag> {
        self.target_flag.as_ref().or(self.flag.as_ref())
    }

    /// Whether the value needs attention: critical, or out of range (of target when judged
    /// against one) by the flag shown.
    pub fn is_abnormal(&self) -> bool {
        self.critical.is_some() || self.shown_flag().is_some_and(|f| !matches!(&*f.code, "N" | "NEG" | "S"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::parse(s).unwrap()
    }

    #[test]
    fn the_embedded_critical_limits_name_catalogue_analytes_in_their_si_unit_with_a_source() {
        let catalogue = Catalogue::embedded();
        let limits = critical_limits_from_tsv(EMBEDDED_CRITICAL, &catalogue).unwrap();
        let potassium = &limits.iter().find(|(id, _)| id == "potassium").unwrap().1;
        assert_eq!((potassium.low.as_ref().unwrap().as_str(), potassium.high.as_ref().unwrap().as_str()), ("2.8", "6.2"));
        assert_eq!(potassium.source, "kost1990");
        let inr = &limits.iter().find(|(id, _)| id == "inr").unwrap().1;
        assert_eq!((inr.low.as_ref(), inr.high.as_ref().map(Decimal::as_str)), (None, Some("5.0")));
        for (_, limit) in &limits {
            assert!(EMBEDDED_CRITICAL.contains(&format!("# {} —", limit.source)), "source {} explained in the header", limit.source);
        }
        assert!(catalogue.by_id("potassium").unwrap().critical.is_some(), "the embedded catalogue carries them");
    }

    #[test]
    fn a_critical_limits_file_is_refused_when_it_could_mislead() {
        let catalogue = Catalogue::embedded();
        let header = "analyte\tlow\thigh\tunit\tsource\n";
        let bad = |row: &str| critical_limits_from_tsv(&format!("{header}{row}\n"), &catalogue).unwrap_err();
        assert!(matches!(bad("kalium\t2.8\t6.2\tmmol/L\tx"), CatalogueError::UnknownAnalyte { .. }));
        assert!(matches!(bad("calcium\t6.6\t12.9\tmg/dL\tx"), CatalogueError::Field { .. }), "not the canonical unit");
        assert!(matches!(bad("potassium\t\t\tmmol/L\tx"), CatalogueError::Field { .. }), "no bound");
        assert!(matches!(bad("potassium\t6.2\t2.8\tmmol/L\tx"), CatalogueError::Field { .. }), "bounds reversed");
        assert!(matches!(bad("potassium\t2.8\t6.2\tmmol/L\t"), CatalogueError::Field { .. }), "no source");
        assert!(matches!(bad("potassium\t2.8\t6.2\tmmol/L\tx\npotassium\t2.8\t6.2\tmmol/L\tx"), CatalogueError::Duplicate { .. }));
    }

    #[test]
    fn critical_is_strictly_beyond_a_limit_and_censored_values_only_when_certain() {
        let k = (Some(2.8), Some(6.2));
        assert_eq!(critical(6.3, None, k.0, k.1), Some(Critical::High));
        assert_eq!(critical(6.2, None, k.0, k.1), None, "at the limit is not beyond it");
        assert_eq!(critical(2.7, None, k.0, k.1), Some(Critical::Low));
        assert_eq!(critical(4.0, None, k.0, k.1), None);
        assert_eq!(critical(2.8, Some(Comparator::Less), k.0, k.1), Some(Critical::Low), "< 2.8 is below 2.8");
        assert_eq!(critical(2.8, Some(Comparator::LessOrEqual), k.0, k.1), None, "≤ 2.8 may be 2.8");
        assert_eq!(critical(3.0, Some(Comparator::Greater), k.0, k.1), None, "> 3.0 may be normal");
        assert_eq!(critical(6.2, Some(Comparator::Greater), k.0, k.1), Some(Critical::High));
        assert_eq!(critical(9.0, Some(Comparator::Less), k.0, k.1), None, "< 9 is not known to be high");
        assert_eq!(critical(5.5, None, None, Some(5.0)), Some(Critical::High), "INR above 5");
    }

    #[test]
    fn side_of_a_range_with_one_or_two_bounds() {
        assert_eq!(side(2.5, None, Some(2.0), Some(3.0)), Some("N"));
        assert_eq!(side(1.9, None, Some(2.0), Some(3.0)), Some("L"));
        assert_eq!(side(3.1, None, Some(2.0), Some(3.0)), Some("H"));
        assert_eq!(side(3.0, None, Some(2.0), Some(3.0)), Some("N"), "bounds are in range");
        assert_eq!(side(7.4, None, None, Some(7.0)), Some("H"), "HbA1c < 7 %");
        assert_eq!(side(6.5, None, None, Some(7.0)), Some("N"));
        assert_eq!(side(1.0, Some(Comparator::Less), Some(2.0), Some(3.0)), Some("L"));
        assert_eq!(side(2.5, Some(Comparator::Less), Some(2.0), Some(3.0)), None, "< 2.5 may be low or in range");
        assert_eq!(side(2.5, None, None, None), None);
    }

    #[test]
    fn a_target_is_checked_before_it_is_stored() {
        let c = Catalogue::embedded();
        assert_eq!(parse_target(&c, "inr", "2", "3", "1"), Ok((Some(d("2")), Some(d("3")), Some("1".into()))));
        assert_eq!(parse_target(&c, "hba1c", "", "7", "%").map(|t| t.1), Ok(Some(d("7"))));
        assert_eq!(parse_target(&c, "inr", "2,5", "3,5", "1").map(|t| t.0), Ok(Some(d("2.5"))), "a decimal comma");
        assert_eq!(parse_target(&c, "inr", "", " ", "1"), Err(TargetProblem::NoBound));
        assert_eq!(parse_target(&c, "inr", "deux", "3", "1"), Err(TargetProblem::NotANumber));
        assert_eq!(parse_target(&c, "inr", "-1", "3", "1"), Err(TargetProblem::Negative));
        assert_eq!(parse_target(&c, "inr", "3", "2", "1"), Err(TargetProblem::LowNotBelowHigh));
        assert_eq!(parse_target(&c, "inr", "3", "3", "1"), Err(TargetProblem::LowNotBelowHigh));
        assert_eq!(parse_target(&c, "no_such_analyte", "1", "2", "1"), Err(TargetProblem::NotNumeric));
        assert_eq!(parse_target(&c, "glucose", "1", "2", "mg/dL"), Err(TargetProblem::WrongUnit), "not a display unit of glucose");
        assert_eq!(parse_target(&c, "glucose", "1", "2", ""), Err(TargetProblem::WrongUnit));
        assert!(parse_target(&c, "glucose", "1", "2", "g/L").is_ok(), "the conventional display unit");
        for absurd in ["1000000", "1e300", "1e-320", "0.0000001", "2.123456"] {
            assert_eq!(parse_target(&c, "inr", absurd, "", "1"), Err(TargetProblem::Implausible), "{absurd}");
        }
        assert!(parse_target(&c, "inr", "2", "3,5", "1").is_ok());
        for p in TargetProblem::ALL {
            assert_eq!(TargetProblem::from_code(p.code()), Some(p));
        }
    }

    fn point(value: &str, lab_flag: &str) -> Point {
        Point {
            time: None,
            value: Some(d(value)),
            display: Some(value.into()),
            unit: Some("1".into()),
            in_display_unit: true,
            flag: Some(Flag { code: lab_flag.into(), computed: false }),
            reference_low: Some(d("0.8")),
            reference_high: Some(d("1.2")),
            ..Default::default()
        }
    }

    fn history(analyte: &str, unit: &str, points: Vec<Point>) -> History {
        History {
            patient: None,
            unit_system: crate::catalogue::UnitSystem::Si,
            documents: Vec::new(),
            series: vec![crate::normalise::Series {
                analyte: analyte.into(),
                name_fr: analyte.into(),
                name_en: analyte.into(),
                chapter: "x".into(),
                loinc_seen: Vec::new(),
                unit: Some(unit.into()),
                decimals: 1,
                points,
                change_not_judged: false,
            }],
            other_results: Vec::new(),
            problems: Vec::new(),
            targets: Vec::new(),
        }
    }

    fn target(analyte: &str, low: Option<&str>, high: Option<&str>, unit: &str) -> TreatmentTarget {
        TreatmentTarget {
            analyte: analyte.into(),
            low: low.map(d),
            high: high.map(d),
            unit: Some(unit.into()),
            set_by: "Dr".into(),
            set_at: "2026-01-01T00:00:00Z".into(),
            applies: true,
        }
    }

    #[test]
    fn an_inr_in_its_target_is_not_flagged_though_the_laboratory_flags_it_high() {
        let c = Catalogue::embedded();
        let mut h = history("inr", "1", vec![point("2.4", "H"), point("3.6", "H"), point("1.1", "N")]);
        apply_targets(&mut h, vec![target("inr", Some("2"), Some("3"), "1")], &c);
        let shown: Vec<&str> = h.series[0].points.iter().map(|p| &*p.shown_flag().unwrap().code).collect();
        assert_eq!(shown, ["N", "H", "L"], "in target, above it, below it");
        assert!(!h.series[0].points[0].is_abnormal());
        assert_eq!(&*h.series[0].points[0].flag.as_ref().unwrap().code, "H", "the laboratory's flag is kept beside");
        assert_eq!(h.targets.len(), 1);
        assert!(h.targets[0].applies);
    }

    #[test]
    fn without_a_target_the_laboratory_flag_is_shown() {
        let mut h = history("inr", "1", vec![point("2.4", "H")]);
        apply_targets(&mut h, Vec::new(), &Catalogue::embedded());
        assert_eq!(&*h.series[0].points[0].shown_flag().unwrap().code, "H");
        assert!(h.series[0].points[0].is_abnormal());
    }

    #[test]
    fn a_target_follows_the_unit_the_series_is_shown_in_or_does_not_apply() {
        let c = Catalogue::embedded();
        // A glucose target set in g/L, the history shown in mmol/L.
        let mut p = point("5.0", "N");
        p.unit = Some("mmol/L".into());
        let mut h = history("glucose", "mmol/L", vec![p]);
        apply_targets(&mut h, vec![target("glucose", None, Some("0.8"), "g/L")], &c);
        let t = &h.targets[0];
        assert!(t.applies);
        assert_eq!(t.unit.as_deref(), Some("mmol/L"));
        let high = t.high.as_ref().unwrap().to_f64();
        assert!((high - 0.8 * 1000.0 / 180.156).abs() < 1e-6, "{high}");
        assert_eq!(&*h.series[0].points[0].shown_flag().unwrap().code, "H", "5.0 mmol/L is above 0.8 g/L (4.44 mmol/L)");
        // A unit that cannot be converted: shown, not judged against.
        let mut h = history("inr", "1", vec![point("2.4", "H")]);
        apply_targets(&mut h, vec![target("inr", Some("2"), Some("3"), "s")], &c);
        assert!(!h.targets[0].applies);
        assert_eq!(&*h.series[0].points[0].shown_flag().unwrap().code, "H");
    }

    #[test]
    fn a_result_not_in_the_display_unit_is_not_judged_against_the_target() {
        let mut p = point("2.4", "H");
        p.in_display_unit = false;
        assert_eq!(target_flag(&p, Some(&d("2")), Some(&d("3"))), None);
        let mut p = point("2.4", "H");
        p.status = PointStatus::NotPerformed;
        assert_eq!(target_flag(&p, Some(&d("2")), Some(&d("3"))), None);
    }
}
