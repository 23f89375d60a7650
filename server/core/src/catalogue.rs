//! The analyte catalogue and the laboratories' local-code transcoding table.
//!
//! Both are data (`server/core/data/*.tsv`), versioned in the repository. The catalogue is
//! compiled in as the default; the transcoding table is read from a file by the server so that a
//! laboratory's local codes can be mapped without recompiling. Both are validated when loaded:
//! every LOINC code passes its check digit, every unit parses, conversions the catalogue promises
//! are possible. Codes and names from LOINC: see `data/LOINC-NOTICE.md`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::fxhash::FxBuild;
use crate::units::{self, Property, UnitError};

/// The catalogue shipped with Bioviewer.
pub const EMBEDDED_CATALOGUE: &str = include_str!("../data/analytes.tsv");
/// The transcoding table shipped with Bioviewer (the server may load another file instead).
pub const EMBEDDED_TRANSCODING: &str = include_str!("../data/transcoding.tsv");

/// Display-unit system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitSystem {
    /// Substance units where they exist (mmol/L, µmol/L): the default.
    #[default]
    Si,
    /// The mass units French laboratories also use (g/L, mg/L).
    Conventional,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnalyteKind {
    Numeric,
    Qualitative,
}

/// One analyte: what is measured, however a laboratory codes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Analyte {
    pub id: String,
    pub name_fr: String,
    pub name_en: String,
    pub chapter: String,
    pub specimen: String,
    /// Every LOINC code that measures it (mass and substance, comparable specimens).
    pub loinc: Vec<String>,
    pub unit_si: Option<String>,
    pub decimals_si: usize,
    pub unit_conventional: Option<String>,
    pub decimals_conventional: usize,
    /// g/mol, where mass and substance units meet.
    pub molar_mass: Option<f64>,
    /// Within-subject biological variation, %.
    pub cvi: Option<f64>,
    /// Default analytical variation, %.
    pub cva: Option<f64>,
    pub kind: AnalyteKind,
    /// Published critical limits, in `unit_si` (`data/critical.tsv`, see [`crate::judge`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub critical: Option<crate::judge::CriticalLimit>,
}

impl Analyte {
    pub fn display_unit(&self, system: UnitSystem) -> Option<&str> {
        match system {
            UnitSystem::Si => self.unit_si.as_deref(),
            UnitSystem::Conventional => self.unit_conventional.as_deref().or(self.unit_si.as_deref()),
        }
    }

    pub fn decimals(&self, system: UnitSystem) -> usize {
        match system {
            UnitSystem::Si => self.decimals_si,
            UnitSystem::Conventional => self.decimals_conventional,
        }
    }

    /// The reference change value (%), where the catalogue has CVI:
    /// RCV = √2 × 1.96 × √(CVA² + CVI²).
    pub fn rcv_percent(&self) -> Option<f64> {
        let cvi = self.cvi?;
        let cva = self.cva.unwrap_or(0.0);
        Some(2f64.sqrt() * 1.96 * (cva * cva + cvi * cvi).sqrt())
    }

    pub fn is_hba1c(&self) -> bool {
        self.id == "hba1c"
    }
}

/// Why a catalogue or transcoding file is refused (the line says where).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogueError {
    #[error("line {line}: expected {expected} tab-separated columns, found {found}")]
    Columns { line: usize, expected: usize, found: usize },
    #[error("line {line}: {code:?} fails the LOINC check digit")]
    CheckDigit { line: usize, code: String },
    #[error("line {line}: {what} {value:?} is not valid")]
    Field { line: usize, what: &'static str, value: String },
    #[error("line {line}: duplicate {what} {value:?}")]
    Duplicate { line: usize, what: &'static str, value: String },
    #[error("line {line}: unit {unit:?}: {error}")]
    Unit { line: usize, unit: String, error: UnitError },
    #[error("line {line}: unknown analyte {analyte:?}")]
    UnknownAnalyte { line: usize, analyte: String },
}

/// Validates a LOINC code's check digit (the mod-10 algorithm LOINC publishes).
pub fn loinc_check_digit_ok(code: &str) -> bool {
    let Some((body, check)) = code.split_once('-') else { return false };
    if body.is_empty() || body.len() > 7 || check.len() != 1 || !body.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let Some(check) = check.chars().next().and_then(|c| c.to_digit(10)) else { return false };
    // From the right: odd positions doubled (as one number), even positions kept, digits summed.
    let digits: Vec<u32> = body.bytes().rev().map(|b| u32::from(b - b'0')).collect();
    let odd: String = digits.iter().step_by(2).rev().map(|d| char::from_digit(*d, 10).unwrap_or('0')).collect();
    let even: String = digits.iter().skip(1).step_by(2).rev().map(|d| char::from_digit(*d, 10).unwrap_or('0')).collect();
    let doubled = odd.parse::<u64>().unwrap_or(0) * 2;
    let sum: u32 = format!("{even}{doubled}").chars().filter_map(|c| c.to_digit(10)).sum();
    (10 - sum % 10) % 10 == check
}

/// The analyte catalogue, indexed by LOINC code.
#[derive(Debug, Clone)]
pub struct Catalogue {
    analytes: Vec<Analyte>,
    by_loinc: HashMap<String, usize, FxBuild>,
    by_id: HashMap<String, usize, FxBuild>,
}

fn data_lines(text: &str) -> impl Iterator<Item = (usize, Vec<&str>)> {
    text.lines()
        .enumerate()
        .skip(1)
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|(i, l)| (i + 1, l.split('\t').map(str::trim).collect()))
}

impl Catalogue {
    pub fn embedded() -> Catalogue {
        // The embedded file is checked by the tests; a failure here is a build defect.
        Catalogue::from_tsv(EMBEDDED_CATALOGUE)
            .and_then(|c| c.with_critical_limits(crate::judge::EMBEDDED_CRITICAL))
            .expect("the embedded analyte catalogue is valid")
    }

    /// The catalogue with the critical limits of a file (`data/critical.tsv`'s form).
    pub fn with_critical_limits(mut self, text: &str) -> Result<Catalogue, CatalogueError> {
        for (id, limit) in crate::judge::critical_limits_from_tsv(text, &self)? {
            if let Some(&i) = self.by_id.get(&id) {
                self.analytes[i].critical = Some(limit);
            }
        }
        Ok(self)
    }

    pub fn from_tsv(text: &str) -> Result<Catalogue, CatalogueError> {
        let mut analytes = Vec::new();
        let mut by_loinc = HashMap::default();
        let mut by_id = HashMap::default();
        for (line, f) in data_lines(text) {
            if f.len() != 14 {
                return Err(CatalogueError::Columns { line, expected: 14, found: f.len() });
            }
            let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
            let number = |what: &'static str, s: &str| -> Result<Option<f64>, CatalogueError> {
                if s.is_empty() {
                    return Ok(None);
                }
                s.parse::<f64>().ok().filter(|v| v.is_finite() && *v > 0.0).map(Some).ok_or(CatalogueError::Field {
                    line,
                    what,
                    value: s.to_string(),
                })
            };
            let decimals = |s: &str| -> Result<usize, CatalogueError> {
                if s.is_empty() {
                    return Ok(0);
                }
                s.parse::<usize>().ok().filter(|d| *d <= 6).ok_or(CatalogueError::Field { line, what: "decimals", value: s.to_string() })
            };
            let analyte = Analyte {
                id: f[0].to_string(),
                name_fr: f[1].to_string(),
                name_en: f[2].to_string(),
                chapter: f[3].to_string(),
                specimen: f[4].to_string(),
                loinc: f[5].split_whitespace().map(str::to_string).collect(),
                unit_si: opt(f[6]),
                decimals_si: decimals(f[7])?,
                unit_conventional: opt(f[8]),
                decimals_conventional: decimals(f[9])?,
                molar_mass: number("molar mass", f[10])?,
                cvi: number("CVI", f[11])?,
                cva: number("CVA", f[12])?,
                kind: match f[13] {
                    "numeric" => AnalyteKind::Numeric,
                    "qualitative" => AnalyteKind::Qualitative,
                    other => return Err(CatalogueError::Field { line, what: "kind", value: other.to_string() }),
                },
                critical: None,
            };
            if analyte.id.is_empty() || !analyte.id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
                return Err(CatalogueError::Field { line, what: "id", value: analyte.id });
            }
            for unit in [&analyte.unit_si, &analyte.unit_conventional].into_iter().flatten() {
                units::parse_unit(unit).map_err(|error| CatalogueError::Unit { line, unit: unit.clone(), error })?;
            }
            if let (Some(si), Some(conv)) = (&analyte.unit_si, &analyte.unit_conventional)
                && !analyte.is_hba1c()
            {
                let one = crate::cda::Decimal::parse("1").expect("a literal");
                units::convert(&one, si, conv, analyte.molar_mass).map_err(|error| CatalogueError::Unit {
                    line,
                    unit: conv.clone(),
                    error,
                })?;
            }
            let index = analytes.len();
            if by_id.insert(analyte.id.clone(), index).is_some() {
                return Err(CatalogueError::Duplicate { line, what: "analyte id", value: analyte.id });
            }
            for code in &analyte.loinc {
                if !loinc_check_digit_ok(code) {
                    return Err(CatalogueError::CheckDigit { line, code: code.clone() });
                }
                if by_loinc.insert(code.clone(), index).is_some() {
                    return Err(CatalogueError::Duplicate { line, what: "LOINC code", value: code.clone() });
                }
            }
            analytes.push(analyte);
        }
        Ok(Catalogue { analytes, by_loinc, by_id })
    }

    pub fn analytes(&self) -> &[Analyte] {
        &self.analytes
    }

    pub fn by_loinc(&self, code: &str) -> Option<&Analyte> {
        self.by_loinc.get(code.trim()).map(|&i| &self.analytes[i])
    }

    /// The analyte's position in [`Catalogue::analytes`] and the analyte.
    pub fn index_by_loinc(&self, code: &str) -> Option<(usize, &Analyte)> {
        self.by_loinc.get(code.trim()).map(|&i| (i, &self.analytes[i]))
    }

    pub fn index_by_id(&self, id: &str) -> Option<(usize, &Analyte)> {
        self.by_id.get(id.trim()).map(|&i| (i, &self.analytes[i]))
    }

    pub fn by_id(&self, id: &str) -> Option<&Analyte> {
        self.by_id.get(id.trim()).map(|&i| &self.analytes[i])
    }
}

/// A laboratory's local codes mapped to analytes: (code system OID, local code) → analyte id.
/// Pairs of LOINC codes for one measurement in mass and in substance concentration
/// (`data/loinc-pairs.tsv`): what an export names a value converted between the two.
pub const EMBEDDED_LOINC_PAIRS: &str = include_str!("../data/loinc-pairs.tsv");

fn loinc_pairs() -> &'static HashMap<&'static str, (Property, &'static str), FxBuild> {
    static PAIRS: std::sync::OnceLock<HashMap<&'static str, (Property, &'static str), FxBuild>> = std::sync::OnceLock::new();
    PAIRS.get_or_init(|| {
        let mut pairs = HashMap::default();
        for line in EMBEDDED_LOINC_PAIRS.lines().skip(1).filter(|l| !l.trim().is_empty() && !l.starts_with('#')) {
            let mut f = line.split('\t').map(str::trim);
            if let (Some(mass), Some(substance)) = (f.next(), f.next()) {
                pairs.insert(mass, (Property::MassConcentration, substance));
                pairs.insert(substance, (Property::SubstanceConcentration, mass));
            }
        }
        pairs
    })
}

/// The property of a LOINC code of the pairs table (None for codes it does not list).
pub fn loinc_property(code: &str) -> Option<Property> {
    loinc_pairs().get(code.trim()).map(|(p, _)| *p)
}

/// The LOINC code of the same measurement in `property`: the code itself when it already
/// measures that property, its counterpart in the pairs table, else None (never a guess).
pub fn loinc_in_property(code: &str, property: Property) -> Option<&'static str> {
    let (own, counterpart) = loinc_pairs().get_key_value(code.trim()).map(|(k, v)| (*k, *v))?;
    if counterpart.0 == property { Some(own) } else { Some(counterpart.1) }
}

impl Analyte {
    /// The first of the analyte's LOINC codes that measures `property` (for results a
    /// laboratory coded with its own local code).
    pub fn loinc_of_property(&self, property: Property) -> Option<&str> {
        self.loinc.iter().map(String::as_str).find(|c| loinc_property(c) == Some(property))
    }
}

#[derive(Debug, Clone, Default)]
pub struct Transcoding {
    map: HashMap<(String, String), String>,
}

impl Transcoding {
    pub fn from_tsv(text: &str, catalogue: &Catalogue) -> Result<Transcoding, CatalogueError> {
        let mut map = HashMap::new();
        for (line, f) in data_lines(text) {
            if f.len() < 3 {
                return Err(CatalogueError::Columns { line, expected: 3, found: f.len() });
            }
            if catalogue.by_id(f[2]).is_none() {
                return Err(CatalogueError::UnknownAnalyte { line, analyte: f[2].to_string() });
            }
            let key = (f[0].to_string(), f[1].to_string());
            if map.insert(key, f[2].to_string()).is_some() {
                return Err(CatalogueError::Duplicate { line, what: "local code", value: format!("{} {}", f[0], f[1]) });
            }
        }
        Ok(Transcoding { map })
    }

    pub fn analyte(&self, code_system: &str, code: &str) -> Option<&str> {
        self.map.get(&(code_system.trim().to_string(), code.trim().to_string())).map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loinc_check_digits() {
        for good in ["2345-7", "3016-3", "29575-8", "14682-9", "718-7", "20-8", "98979-8"] {
            assert!(loinc_check_digit_ok(good), "{good}");
        }
        for bad in ["2345-6", "3016-4", "26453-2x", "abc-1", "2345", "-7", "12345678-9"] {
            assert!(!loinc_check_digit_ok(bad), "{bad}");
        }
    }

    #[test]
    fn embedded_catalogue_is_valid_and_broad() {
        let catalogue = Catalogue::from_tsv(EMBEDDED_CATALOGUE).unwrap_or_else(|e| panic!("{e}"));
        assert!(catalogue.analytes().len() >= 150, "{} analytes", catalogue.analytes().len());
        for a in catalogue.analytes() {
            for code in &a.loinc {
                assert!(loinc_check_digit_ok(code), "{}: {code}", a.id);
            }
            assert!(!a.name_fr.is_empty() && !a.name_en.is_empty(), "{}", a.id);
        }
        // Both TSH codes of the corpus are one analyte; so are the two glucose codes of the
        // dual-unit sample.
        assert_eq!(catalogue.by_loinc("3016-3").unwrap().id, "tsh");
        assert_eq!(catalogue.by_loinc("29575-8").unwrap().id, "tsh");
        assert_eq!(catalogue.by_loinc("40193-5").unwrap().id, catalogue.by_loinc("53049-3").unwrap().id);
        for chapter in [
            "haematology",
            "haemostasis",
            "biochemistry",
            "lipids",
            "endocrinology",
            "iron",
            "vitamins",
            "cardiac",
            "tumour_markers",
            "urine",
            "blood_gases",
            "proteins",
        ] {
            assert!(catalogue.analytes().iter().any(|a| a.chapter == chapter), "{chapter}");
        }
    }

    #[test]
    fn broken_catalogues_are_refused_with_the_line() {
        let header = EMBEDDED_CATALOGUE.lines().next().unwrap();
        let bad_digit = format!("{header}\nx\tX\tX\tbiochemistry\tserum\t2345-6\tmmol/L\t1\tmmol/L\t1\t\t\t\tnumeric\n");
        assert_eq!(Catalogue::from_tsv(&bad_digit).unwrap_err(), CatalogueError::CheckDigit { line: 2, code: "2345-6".into() });
        let bad_unit = format!("{header}\nx\tX\tX\tbiochemistry\tserum\t2345-7\tbananas/L\t1\t\t1\t\t\t\tnumeric\n");
        assert!(matches!(Catalogue::from_tsv(&bad_unit), Err(CatalogueError::Unit { line: 2, .. })));
        let no_molar_mass = format!("{header}\nx\tX\tX\tbiochemistry\tserum\t2345-7\tmmol/L\t1\tg/L\t1\t\t\t\tnumeric\n");
        assert!(matches!(Catalogue::from_tsv(&no_molar_mass), Err(CatalogueError::Unit { .. })));
    }

    #[test]
    fn loinc_pairs_are_catalogue_codes_of_one_analyte_in_two_properties() {
        let catalogue = Catalogue::embedded();
        let mut rows = 0;
        for (line, f) in data_lines(EMBEDDED_LOINC_PAIRS) {
            let (mass, substance, analyte) = (f[0], f[1], f[2]);
            for code in [mass, substance] {
                assert!(loinc_check_digit_ok(code), "line {line}: {code}");
                assert_eq!(catalogue.by_loinc(code).map(|a| a.id.as_str()), Some(analyte), "line {line}: {code}");
            }
            let a = catalogue.by_id(analyte).unwrap();
            // The analyte's display units are the two properties the pair names.
            let props: Vec<_> = [&a.unit_si, &a.unit_conventional].into_iter().flatten().filter_map(|u| units::property(u)).collect();
            assert!(props.contains(&Property::MassConcentration) && props.contains(&Property::SubstanceConcentration), "line {line}");
            assert_eq!(loinc_in_property(mass, Property::SubstanceConcentration), Some(substance));
            assert_eq!(loinc_in_property(substance, Property::MassConcentration), Some(mass));
            assert_eq!(loinc_in_property(mass, Property::MassConcentration), Some(mass));
            rows += 1;
        }
        assert!(rows >= 20);
        assert_eq!(loinc_property("2160-0"), Some(Property::MassConcentration));
        assert_eq!(loinc_property("14682-9"), Some(Property::SubstanceConcentration));
        assert_eq!(loinc_in_property("3016-3", Property::MassConcentration), None, "an unlisted code is never relabelled");
        assert_eq!(catalogue.by_id("creatinine").unwrap().loinc_of_property(Property::MassConcentration), Some("2160-0"));
    }

    #[test]
    fn transcoding_maps_the_corpus_local_crp() {
        let catalogue = Catalogue::embedded();
        let t = Transcoding::from_tsv(EMBEDDED_TRANSCODING, &catalogue).unwrap();
        assert_eq!(t.analyte("1.2.250.1.2.3.4", "1234"), Some("crp"));
        assert!(Transcoding::from_tsv("h\n1.2.3\tX1\tnot_an_analyte\n", &catalogue).is_err());
    }

    #[test]
    fn rcv_follows_the_formula() {
        let catalogue = Catalogue::embedded();
        let glucose = catalogue.by_id("glucose").unwrap();
        let expected = 2f64.sqrt() * 1.96 * (2.0f64.powi(2) + 5.0f64.powi(2)).sqrt();
        assert!((glucose.rcv_percent().unwrap() - expected).abs() < 1e-9);
        assert_eq!(catalogue.by_id("neutrophils_pct").unwrap().rcv_percent(), None);
    }
}
