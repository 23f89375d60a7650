//! One report as a reader goes through it: its own results chapter by chapter (with flags), each
//! microbiology isolate with its organism and susceptibility grid, and who prescribed, sampled
//! and validated it. Pure: a parsed [`Report`] in, plain data out (the document page shows it).
//!
//! Rules (tests below and in `normalise::tests` on the shared corpus):
//! - only the report's own results: previous results (REFR) it repeats are left out;
//! - a result's name is the laboratory's own (its narrative text), else the code's display name;
//! - flags: the laboratory's interpretation, else what a coded or text result says
//!   ([`crate::qualitative`]), else the laboratory's range when value and range are in the same
//!   unit (marked computed); nothing is converted here: values stay as written;
//! - results inside an isolate (CR-BIO CLUSTER organizer) are grouped under their organism; those
//!   with an S/I/R interpretation or in an antibiogram battery (LOINC 18769-0) form its
//!   susceptibility grid: the laboratory's interpretation with the MIC as written beside it.

use serde::{Deserialize, Serialize};

use crate::cda::{Code, Comparator, Observation, Quantity, Report, ResultStatus, Value};

/// LOINC code of an antibiogram battery.
pub const ANTIBIOGRAM: &str = "18769-0";

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ReportResults {
    /// Results outside any isolate, by chapter in document order.
    pub groups: Vec<ResultGroup>,
    /// Microbiology isolates in document order.
    pub isolates: Vec<IsolateResults>,
}

impl ReportResults {
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty() && self.isolates.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultGroup {
    /// The chapter's (or sub-chapter's) name as the report gives it.
    pub chapter: Option<String>,
    pub results: Vec<ResultLine>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultLine {
    /// The laboratory's name for the test.
    pub name: String,
    /// The code's display name (a LOINC long name) when it differs from `name`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub code_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub comparator: Option<Comparator>,
    /// A number exactly as written.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub number: Option<String>,
    /// A coded or text result, or a value that is not a number.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub unit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub flag: Option<String>,
    /// The flag was computed by Bioviewer (from the range or the words), not sent.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub flag_computed: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reference_low: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reference_high: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reference_unit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reference_text: Option<String>,
    /// The narrative's words when they contradict the coded value.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub discordant_text: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub comments: Vec<String>,
    /// Not performed (aborted).
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub not_performed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IsolateResults {
    /// The organism as the laboratory names it.
    pub organism: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub organism_code: Option<String>,
    /// The isolate's other results (count, identification...).
    pub results: Vec<ResultLine>,
    /// The susceptibility grid.
    pub susceptibility: Vec<Susceptibility>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Susceptibility {
    pub antibiotic: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub code_name: Option<String>,
    /// The laboratory's interpretation: `S`, `I`, `R` (or another HL7 code as sent).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub interpretation: Option<String>,
    /// The minimum inhibitory concentration as written, with its comparator and unit.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub comparator: Option<Comparator>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mic: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub unit: Option<String>,
    /// A value given as text instead of a MIC (a disc diameter, a word).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub text: Option<String>,
}

/// Who and when, from the header.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ReportFacts {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub prescriber: Option<String>,
    /// When the samples were taken (the sampler's time, else the earliest collection time of the
    /// report's results).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sampled_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub validator: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub validated_at: Option<String>,
    /// A point-of-care rapid test (TROD), not a laboratory's report.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub point_of_care: bool,
}

fn professional(p: &crate::cda::Professional) -> Option<String> {
    let name = p.name.as_ref().map(|n| n.display()).filter(|n| !n.is_empty());
    let organization = p.organization.as_ref().and_then(|o| o.name.clone());
    match (name, organization) {
        (Some(n), Some(o)) => Some(format!("{n} ({o})")),
        (n, o) => n.or(o),
    }
}

pub fn facts(report: &Report) -> ReportFacts {
    let h = &report.header;
    let sampled = h
        .sampler
        .as_ref()
        .and_then(|s| s.time)
        .or_else(|| report.current_results().filter_map(|o| o.collection_time).min_by_key(|t| t.epoch_seconds()));
    ReportFacts {
        prescriber: h.prescriber.as_ref().and_then(professional),
        sampled_at: sampled.map(|t| t.to_string()),
        validator: h.validator.as_ref().and_then(professional),
        validated_at: h.validator.as_ref().and_then(|v| v.time).map(|t| t.to_string()),
        point_of_care: report.kind == crate::cda::DocumentKind::PointOfCareTest,
    }
}

fn name_of(code: &Code) -> (String, Option<String>) {
    let name = code.original_text.clone().or_else(|| code.display.clone()).or_else(|| code.code.clone()).unwrap_or_default();
    let code_name = code.display.clone().filter(|d| *d != name);
    (name, code_name)
}

fn value_parts(v: Option<&Value>) -> (Option<Comparator>, Option<String>, Option<String>, Option<String>) {
    let q = |q: &Quantity| (Some(q.value.as_str().to_string()), q.unit.clone());
    match v {
        None => (None, None, None, None),
        Some(Value::Quantity(quantity)) => {
            let (n, u) = q(quantity);
            (None, n, None, u)
        }
        Some(Value::Censored { comparator, quantity }) => {
            let (n, u) = q(quantity);
            (Some(*comparator), n, None, u)
        }
        Some(Value::Real { value }) => (None, Some(value.as_str().to_string()), None, None),
        Some(Value::Integer { value }) => (None, Some(value.to_string()), None, None),
        Some(other) => (None, None, crate::normalise::value_text(other), None),
    }
}

/// A flag from the laboratory's range when the value and the range are in the same unit.
fn range_flag(o: &Observation) -> Option<&'static str> {
    let (value, unit) = match o.value.as_ref()? {
        Value::Quantity(q) => (q.value.to_f64(), q.unit.as_deref()),
        Value::Real { value } => (value.to_f64(), None),
        _ => return None,
    };
    let range = o.reference_ranges.first()?;
    let same_unit = |b: &Option<Quantity>| b.as_ref().is_none_or(|b| b.unit.as_deref() == unit);
    if !(same_unit(&range.low) && same_unit(&range.high)) || (range.low.is_none() && range.high.is_none()) {
        return None;
    }
    if range.low.as_ref().is_some_and(|l| value < l.value.to_f64()) {
        Some("L")
    } else if range.high.as_ref().is_some_and(|h| value > h.value.to_f64()) {
        Some("H")
    } else {
        Some("N")
    }
}

fn line(o: &Observation) -> ResultLine {
    let (name, code_name) = name_of(&o.code);
    let (comparator, number, text, unit) = value_parts(o.value.as_ref());
    let not_performed = o.status == ResultStatus::Aborted;
    let reading = if not_performed { Default::default() } else { crate::qualitative::read(o) };
    let sent = o.interpretation.iter().find_map(|c| c.code.clone());
    let computed = if sent.is_some() || not_performed { None } else { reading.flag.or_else(|| range_flag(o)) };
    let range = o.reference_ranges.first();
    ResultLine {
        name,
        code_name,
        code: o.code.loinc().map(str::to_string).or_else(|| o.code.code.clone()),
        comparator,
        number,
        text,
        unit,
        flag_computed: computed.is_some(),
        flag: sent.or(computed.map(str::to_string)),
        reference_low: range.and_then(|r| r.low.as_ref()).map(|q| q.value.as_str().to_string()),
        reference_high: range.and_then(|r| r.high.as_ref()).map(|q| q.value.as_str().to_string()),
        reference_unit: range.and_then(|r| r.low.as_ref().or(r.high.as_ref())).and_then(|q| q.unit.clone()),
        reference_text: range.and_then(|r| r.text.clone()),
        discordant_text: reading.discordant_text,
        comments: o.comments.clone(),
        not_performed,
    }
}

fn is_susceptibility(o: &Observation) -> bool {
    o.battery.as_ref().and_then(|b| b.loinc()) == Some(ANTIBIOGRAM)
        || o.interpretation.iter().filter_map(|c| c.code.as_deref()).any(|c| matches!(c, "S" | "I" | "R" | "SDD" | "NS"))
}

fn susceptibility(o: &Observation) -> Susceptibility {
    let (antibiotic, code_name) = name_of(&o.code);
    let (comparator, mic, text, unit) = value_parts(o.value.as_ref());
    Susceptibility {
        antibiotic,
        code_name,
        interpretation: o.interpretation.iter().find_map(|c| c.code.clone()),
        comparator,
        mic,
        unit,
        text,
    }
}

/// The report's own results, grouped for reading.
pub fn results(report: &Report) -> ReportResults {
    let mut out = ReportResults::default();
    let mut isolate_keys: Vec<Code> = Vec::new();
    for o in report.current_results() {
        if let Some(isolate) = &o.isolate {
            let at = match isolate_keys.iter().position(|k| *k == isolate.organism) {
                Some(i) => i,
                None => {
                    let (organism, _) = name_of(&isolate.organism);
                    isolate_keys.push(isolate.organism.clone());
                    out.isolates.push(IsolateResults {
                        organism,
                        organism_code: isolate.organism.code.clone(),
                        results: Vec::new(),
                        susceptibility: Vec::new(),
                    });
                    out.isolates.len() - 1
                }
            };
            if is_susceptibility(o) {
                out.isolates[at].susceptibility.push(susceptibility(o));
            } else {
                out.isolates[at].results.push(line(o));
            }
            continue;
        }
        let chapter = o.sub_chapter.as_ref().or(o.chapter.as_ref()).and_then(|c| c.label().map(str::to_string));
        match out.groups.last_mut() {
            Some(g) if g.chapter == chapter => g.results.push(line(o)),
            _ => out.groups.push(ResultGroup { chapter, results: vec![line(o)] }),
        }
    }
    out
}

/// What a document of the history contains, for the documents list: its tests (the catalogue's
/// names, else the laboratory's label) and which of them are flagged abnormal.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DocumentContents {
    /// The catalogue chapters of its results (ids), in the history's order.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub chapters: Vec<String>,
    pub tests: Vec<ContentTest>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentTest {
    pub name_fr: String,
    pub name_en: String,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub abnormal: bool,
}

impl DocumentContents {
    pub fn abnormal(&self) -> usize {
        self.tests.iter().filter(|t| t.abnormal).count()
    }
}

/// A flag that calls for attention: anything but normal, negative or susceptible.
pub fn is_abnormal_flag(code: &str) -> bool {
    !matches!(code, "N" | "NEG" | "S")
}

/// The contents of every document of the history, by document id: only the document's own
/// results (not the previous results it repeats), each test once.
pub fn document_contents(history: &crate::normalise::History) -> std::collections::HashMap<String, DocumentContents> {
    use crate::normalise::Point;
    let mut out: std::collections::HashMap<String, DocumentContents> = std::collections::HashMap::new();
    let mut add = |p: &Point, chapter: Option<&str>, name_fr: &str, name_en: &str| {
        let abnormal = p.flag.as_ref().is_some_and(|f| is_abnormal_flag(&f.code));
        for s in p.sources.iter().filter(|s| !s.previous_result) {
            let c = out.entry(s.document.to_string()).or_default();
            if let Some(chapter) = chapter
                && !c.chapters.iter().any(|x| x == chapter)
            {
                c.chapters.push(chapter.to_string());
            }
            match c.tests.iter_mut().find(|t| t.name_fr == name_fr && t.name_en == name_en) {
                Some(t) => t.abnormal |= abnormal,
                None => c.tests.push(ContentTest { name_fr: name_fr.to_string(), name_en: name_en.to_string(), abnormal }),
            }
        }
    };
    for series in &history.series {
        for p in series.points.iter().filter(|p| !p.derived) {
            add(p, Some(&series.chapter), &series.name_fr, &series.name_en);
        }
    }
    for other in &history.other_results {
        for p in &other.points {
            let label = p.sources.first().and_then(|s| s.label.clone()).or_else(|| other.label.clone()).or_else(|| other.code.clone());
            let label = label.unwrap_or_default();
            add(p, None, &label, &label);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus(name: &str) -> Report {
        crate::cda::tests::corpus(name)
    }

    #[test]
    fn a_microbiology_report_lists_each_organism_with_its_susceptibility_grid() {
        let r = results(&corpus("BIO-CR-BIO_2024.01_Microbiologie_V2.xml"));
        assert_eq!(r.isolates.len(), 2, "{:#?}", r.isolates);
        let coli = &r.isolates[0];
        assert!(coli.organism.contains("coli"), "{}", coli.organism);
        let grid: Vec<(&str, Option<&str>, Option<Comparator>, Option<&str>)> = coli
            .susceptibility
            .iter()
            .map(|s| (s.antibiotic.as_str(), s.interpretation.as_deref(), s.comparator, s.mic.as_deref()))
            .collect();
        assert_eq!(
            grid,
            [
                ("Amoxicilline", Some("R"), Some(Comparator::GreaterOrEqual), Some("0.512")),
                ("Ampicilline", Some("I"), Some(Comparator::Less), Some("0.128")),
                ("Gentamicine", Some("S"), Some(Comparator::Less), Some("0.032")),
            ]
        );
        assert!(coli.results.iter().any(|l| l.number.as_deref() == Some("120000")), "the count stays with its organism");
        assert!(r.isolates[1].organism.contains("Streptococcus"), "{}", r.isolates[1].organism);
        assert!(r.isolates[1].susceptibility.iter().all(|s| s.interpretation.as_deref() == Some("S")));
        // The urine results outside the isolates stay in their chapter.
        assert!(r.groups.iter().flat_map(|g| &g.results).any(|l| l.name == "Leucocytes" && l.number.as_deref() == Some("500")));
    }

    #[test]
    fn a_cytology_report_flags_its_findings_and_leaves_out_previous_results() {
        let r = results(&corpus("BIO-CR-BIO_2024.01_DEP-CCU-tout-structuré.xml"));
        let lines: Vec<&ResultLine> = r.groups.iter().flat_map(|g| &g.results).collect();
        let hpv = lines.iter().find(|l| l.code.as_deref() == Some("77379-6")).unwrap();
        assert_eq!((hpv.text.as_deref(), hpv.flag.as_deref(), hpv.flag_computed), (Some("ADN d'HPV-HR détecté"), Some("POS"), true));
        let cyto = lines.iter().find(|l| l.code.as_deref() == Some("10524-7")).unwrap();
        assert_eq!(cyto.flag.as_deref(), Some("A"), "{cyto:?}");
        assert_eq!(cyto.name, "Examen cytologique", "the laboratory's name, not the LOINC long name");
        assert_eq!(
            lines.iter().filter(|l| l.code.as_deref() == Some("77379-6")).count(),
            1,
            "the previous HPV result is not this report's"
        );
    }

    #[test]
    fn a_rapid_test_is_marked_point_of_care_with_its_results_flagged() {
        let report = corpus("BIO-TROD_2024.01_COVID-19_Grippe-A_Grippe-B.xml");
        assert!(facts(&report).point_of_care);
        let r = results(&report);
        let lines: Vec<&ResultLine> = r.groups.iter().flat_map(|g| &g.results).collect();
        let flu_b = lines.iter().find(|l| l.code.as_deref() == Some("80383-3")).unwrap();
        assert_eq!(flu_b.flag.as_deref(), Some("POS"));
        assert_eq!(flu_b.discordant_text.as_deref(), Some("positif"), "the printed result contradicts the code: both shown");
        let covid = lines.iter().find(|l| l.code.as_deref() == Some("94558-4")).unwrap();
        assert_eq!((covid.flag.as_deref(), covid.discordant_text.as_deref()), (Some("NEG"), None));
    }

    #[test]
    fn a_document_says_what_it_contains_and_whether_anything_is_abnormal() {
        use crate::catalogue::{Catalogue, EMBEDDED_TRANSCODING, Transcoding};
        use crate::normalise::{InputDocument, Options, Provenance, normalise};
        let reports = [corpus("BIO-CR-BIO_2024.01_TSH_1.xml"), corpus("BIO-TROD_2024.01_COVID-19_Grippe-A_Grippe-B.xml")];
        let docs: Vec<InputDocument<'_>> = reports
            .iter()
            .enumerate()
            .map(|(i, r)| InputDocument { id: format!("d{i}"), report: Ok(r), provenance: Provenance::Operator })
            .collect();
        let catalogue = Catalogue::embedded();
        let transcoding = Transcoding::from_tsv(EMBEDDED_TRANSCODING, &catalogue).unwrap();
        let h = normalise(&docs, &catalogue, &transcoding, &Options::default());
        let contents = document_contents(&h);
        let tsh = &contents["d0"];
        assert!(tsh.tests.iter().any(|t| t.name_en == "TSH"), "{tsh:?}");
        let trod = &contents["d1"];
        assert_eq!(trod.tests.len(), 3, "{trod:?}");
        assert_eq!(trod.abnormal(), 2, "influenza A and B: the code and the printed text contradict each other");
    }

    #[test]
    fn the_facts_name_the_prescriber_and_the_validation() {
        let f = facts(&corpus("BIO-CR-BIO_2024.01_TSH_1.xml"));
        assert!(f.prescriber.is_some(), "{f:?}");
        assert!(f.sampled_at.is_some() && f.validated_at.is_some(), "{f:?}");
        assert!(!f.point_of_care);
    }
}
