//! From all of one patient's reports, the unified history: one series per analyte across
//! laboratories, every point in the display unit with its sources, other results, problems.
//!
//! Rules (each has a test in `normalise::tests`):
//! - one patient: documents of another patient (or with no INS) are rejected, never merged;
//! - what counts: laboratory reports (CR-BIO) and point-of-care rapid tests (TROD), both under
//!   every rule here; other CDA documents are rejected as not laboratory reports;
//! - versions: per setId only the highest versionNumber counts; older versions (partial reports
//!   included) are listed as replaced and contribute nothing;
//! - provenance: a document a user uploaded never replaces, hides or outranks a laboratory's
//!   document (from the DMP or imported by the operator): in a set that has a laboratory's
//!   version, an upload claiming the same or a later version is rejected as a conflict, shown,
//!   and contributes nothing; uploads are marked as such wherever they show;
//! - attribution: a document belongs to the patient when it names their INS number (any INS
//!   authority) or an identifier the store knows them by, or when the DMP returned it for them;
//!   another INS is another patient; nothing known, no attribution;
//! - identity: the patient's identity is the one the store keeps (from the most trusted source);
//!   a document naming the same INS with another birth date or sex is rejected as an identity
//!   conflict, one with another name or another INS authority is kept and flagged;
//! - a result maps to an analyte by LOINC (its code or a translation), else by the laboratory's
//!   local code through the transcoding table; otherwise it goes to "other results";
//! - a measurement given in two units (sibling results, same times) is one point; the same
//!   result repeated (REFR inside a later report, or in two documents) is one point with several
//!   sources;
//! - values are converted to the display unit; what cannot be converted keeps its original value
//!   and unit and says why; aborted results are "not performed"; censored results keep their
//!   comparator; text and coded results are points too;
//! - flags: the laboratory's interpretation when given, else computed from its own range, or
//!   for a coded or text result from what it says (`crate::qualitative`: positive, negative, an
//!   abnormal finding; a code contradicting its printed text is flagged positive and the text
//!   kept), marked computed; comparability markers when laboratory, method or range change; significant
//!   change beyond the reference change value; eGFR (CKD-EPI 2021) derived from creatinine when
//!   the laboratory gave none for that sample, marked derived.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::catalogue::{Analyte, AnalyteKind, Catalogue, Transcoding, UnitSystem};
use crate::cda::{
    CdaTime, Code, Comparator, Decimal, DocumentKind, IdentifierKind, InstanceId, Observation, Report, ReportStatus, ResultStatus, Sex,
    Value,
};
use crate::fxhash::{FxBuild, FxHasher};
use crate::units::{self, Rule, UnitError};

/// One stored document given to the normaliser.
pub struct InputDocument<'r> {
    /// The store's id for the document (shown as the source of every point).
    pub id: String,
    /// The parsed report, or why it could not be parsed.
    pub report: Result<&'r Report, String>,
    /// Where the document came from, which decides what it may outrank.
    pub provenance: Provenance,
}

/// Where a stored document came from. What a document says is never a right: only the source
/// it came through decides how far it is trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provenance {
    /// Retrieved from the patient's DMP.
    Dmp,
    /// Imported by the operator (`bioviewer import`, shell access to the server).
    #[default]
    Operator,
    /// Uploaded by a user of the web application.
    Upload,
}

impl Provenance {
    /// A laboratory's document as a trusted channel delivered it (the DMP, the operator).
    pub fn is_trusted(self) -> bool {
        !matches!(self, Provenance::Upload)
    }

    /// Higher is more trusted: the DMP (identity-verified INS) over the operator over an upload.
    pub fn rank(self) -> u8 {
        match self {
            Provenance::Dmp => 2,
            Provenance::Operator => 1,
            Provenance::Upload => 0,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The patient's INS (value only, or `root^value`); when absent, the INS most documents name.
    pub patient_ins: Option<String>,
    /// Every identifier the store knows the patient by (and the records linked to theirs): a
    /// document naming none of them, and no INS of the patient, is not attributed.
    pub known_identifiers: Vec<InstanceId>,
    /// The patient's identity as the store keeps it (from the most trusted source). When given,
    /// it is the history's identity and every document is checked against it; otherwise the
    /// identity comes from the most trusted, earliest document naming the patient.
    pub patient: Option<PatientIdentity>,
    pub unit_system: UnitSystem,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentState {
    Current,
    Replaced,
    Unreadable,
    Rejected,
}

/// Why a document is rejected or limited, as data (the `problems` say it in English words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "problem")]
pub enum DocumentProblem {
    /// The document could not be read (the parse error is in `problems`).
    Unreadable,
    /// A CDA document of another kind (a rapid test, a discharge letter...).
    NotCrBio,
    /// No INS for the patient: it cannot be attributed safely.
    NoPatientIns,
    /// Another patient's INS.
    AnotherPatient,
    /// A PDF copy only: nothing structured to tabulate.
    PdfOnly,
    /// A later version of the same report (setId) replaces it; it may have been partial.
    ReplacedBy { version: u32, was_partial: bool },
    /// An uploaded document claims to replace (or to be) version `version` or later of a
    /// laboratory's report that came from the DMP or the operator: the laboratory's stays.
    ConflictsWithLaboratory { version: u32 },
    /// The document names the patient's INS with another birth date or sex: it may be about
    /// someone else, so it is not merged.
    IdentityConflict { birth_date: bool, sex: bool },
    /// The document names the patient's INS with another name (kept, flagged).
    NameDiffers,
    /// The document names the patient's INS number under another INS authority (a test OID
    /// beside a production one): kept under the one identity, flagged.
    InsAuthorityDiffers,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentEntry {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cda_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<DocumentKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report_status: Option<ReportStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub laboratory: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effective_time: Option<CdaTime>,
    pub status: DocumentState,
    /// Where it came from (uploads are shown as such).
    #[serde(default)]
    pub provenance: Provenance,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub problems: Vec<String>,
    /// The same problems as data, in the same order, for readers in other languages.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub problem_codes: Vec<DocumentProblem>,
}

impl DocumentEntry {
    /// A document of which nothing is known but its id, state and provenance (an unreadable
    /// one; tests build others field by field from it).
    pub fn bare(id: impl Into<String>, status: DocumentState, provenance: Provenance) -> DocumentEntry {
        DocumentEntry {
            id: id.into(),
            cda_id: None,
            set_id: None,
            version: None,
            kind: None,
            report_status: None,
            laboratory: None,
            effective_time: None,
            status,
            provenance,
            problems: Vec::new(),
            problem_codes: Vec::new(),
        }
    }

    fn problem(&mut self, code: DocumentProblem, words: impl Into<String>) {
        self.problem_codes.push(code);
        self.problems.push(words.into());
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatientIdentity {
    pub ins: String,
    pub ins_root: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<CdaTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sex: Option<Sex>,
}

/// Where a point comes from: one result of one document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Source {
    pub document: Arc<str>,
    /// Index of the result in the parsed report.
    pub observation: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_system: Option<Arc<str>>,
    /// The laboratory's label, for results that map to no analyte (a series has its names).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The value exactly as the laboratory wrote it (with its comparator for censored values).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_value: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_unit: Option<Arc<str>>,
    pub converted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<Rule>,
    /// Why the value stays in its original unit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_converted: Option<String>,
    /// The same reason as data (`{"reason": "unknown", "detail": "bananas/L"}`), for readers
    /// who say it in their own language.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub not_converted_reason: Option<UnitError>,
    /// The result came as a previous result (REFR) inside this document.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub previous_result: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PointStatus {
    #[default]
    Completed,
    NotPerformed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flag {
    /// HL7 interpretation code (N, L, H, LL, HH, A, ...).
    pub code: Arc<str>,
    /// True when Bioviewer computed it from the laboratory's range (no flag was sent).
    pub computed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Up,
    Down,
}

/// What changed since the previous point of the series (charts break or annotate the line).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Comparability {
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub laboratory: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub method: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub reference_range: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub unit: bool,
}

impl Comparability {
    pub fn any(&self) -> bool {
        self.laboratory || self.method || self.reference_range || self.unit
    }
}

/// `Point::default()` is an empty completed result (for building points field by field).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Point {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<CdaTime>,
    pub status: PointStatus,
    /// The value in `unit` (the display unit when converted, else the original unit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Decimal>,
    /// `value` rounded to the analyte's decimals, as shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display: Option<Arc<str>>,
    /// Text or coded result, or "not performed".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comparator: Option<Comparator>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<Arc<str>>,
    /// False when the value could not be put in the display unit (see the source's reason).
    pub in_display_unit: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flag: Option<Flag>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_low: Option<Decimal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_high: Option<Decimal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub laboratory: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    pub sources: Vec<Source>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub significant_change: Option<Direction>,
    #[serde(skip_serializing_if = "Comparability::is_default", default)]
    pub comparability: Comparability,
    /// Computed by Bioviewer (eGFR from creatinine), not reported by a laboratory.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub derived: bool,
    /// A coded result whose narrative text (what the report prints) says the opposite of its
    /// code (`positif` beside a "negative" code): those words, shown beside the value; the
    /// point is flagged as if positive (`crate::qualitative`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub discordant_text: Option<String>,
    /// Beyond a published critical limit (`data/critical.tsv`, [`crate::judge::critical`]).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub critical: Option<crate::judge::Critical>,
    /// The flag against the patient's treatment target, when a clinician set one
    /// ([`crate::judge::apply_targets`]; never from the normaliser: a target is not in any
    /// document). Pages show [`Point::shown_flag`].
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub target_flag: Option<Flag>,
}

impl Comparability {
    fn is_default(&self) -> bool {
        !self.any()
    }
}

impl Point {
    /// Whether the value is shown as coming from one of these documents (its first source: the
    /// one pages name), e.g. [`History::uploaded_documents`].
    pub fn first_source_in(&self, documents: &[String]) -> bool {
        self.sources.first().is_some_and(|s| documents.iter().any(|d| *d == *s.document))
    }

    /// A numeric value that may be drawn as exact (not censored, converted, performed).
    pub fn plottable(&self) -> Option<f64> {
        if self.status != PointStatus::Completed || self.comparator.is_some() || !self.in_display_unit {
            return None;
        }
        self.value.as_ref().map(Decimal::to_f64)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub analyte: String,
    pub name_fr: String,
    pub name_en: String,
    pub chapter: String,
    pub loinc_seen: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    pub decimals: usize,
    pub points: Vec<Point>,
    /// The catalogue has no biological variation for this analyte (no RCV): a change between
    /// two results is never judged significant or not, and pages must not say "no significant
    /// change" of it.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub change_not_judged: bool,
}

/// Results whose code maps to no analyte, grouped by code and laboratory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OtherResults {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_system: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub laboratory: Option<String>,
    pub points: Vec<Point>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct History {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient: Option<PatientIdentity>,
    pub unit_system: UnitSystem,
    pub documents: Vec<DocumentEntry>,
    pub series: Vec<Series>,
    pub other_results: Vec<OtherResults>,
    pub problems: Vec<String>,
    /// The patient's treatment targets, in the unit of their series (set by the server from
    /// its store, [`crate::judge::apply_targets`]; empty from the normaliser).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub targets: Vec<crate::judge::TreatmentTarget>,
}

impl History {
    /// The ids of the documents a user uploaded: their values are marked wherever they show.
    pub fn uploaded_documents(&self) -> Vec<String> {
        self.documents.iter().filter(|d| d.provenance == Provenance::Upload).map(|d| d.id.clone()).collect()
    }
}

/// Monovalent ions: mEq/L is mmol/L.
const MONOVALENT: &[&str] =
    &["sodium", "potassium", "chloride", "bicarbonate", "bicarbonate_arterial", "lithium", "urine_sodium", "urine_potassium"];

fn matches_requested(ins: &InstanceId, requested: &str) -> bool {
    let requested = requested.trim();
    match requested.split_once('^') {
        Some((root, value)) => ins.root == root && ins.extension.as_deref() == Some(value),
        None => ins.extension.as_deref() == Some(requested),
    }
}

/// How an identifier is counted when choosing the patient most documents name: an INS by its
/// number (any INS authority), any other identifier by authority and value.
fn identifier_key(id: &InstanceId) -> String {
    let value = id.extension.as_deref().unwrap_or_default().trim();
    match id.patient_identifier_kind() {
        IdentifierKind::Ins => format!("ins:{value}"),
        _ => format!("{}^{value}", id.root),
    }
}

fn same_identifier(a: &InstanceId, b: &InstanceId) -> bool {
    let value = |id: &InstanceId| id.extension.as_deref().map(str::trim).map(str::to_ascii_uppercase);
    match (a.patient_identifier_kind(), b.patient_identifier_kind()) {
        (IdentifierKind::Ins, IdentifierKind::Ins) => value(a) == value(b),
        _ => a.root == b.root && value(a).is_some() && value(a) == value(b),
    }
}

/// Who a history is about: the identifier chosen or asked for, the patient's INS number when
/// one is known, and every identifier the patient is known by.
struct Wanted {
    ins: Option<InstanceId>,
    ids: Vec<InstanceId>,
}

enum Belongs {
    Yes {
        authority_differs: bool,
    },
    /// The document names another INS.
    Other,
    /// Nothing in the document names this patient (no identifier known to be theirs).
    Unknown,
}

impl Wanted {
    fn new(primary: &InstanceId, known: &[InstanceId]) -> Wanted {
        let mut ids = vec![primary.clone()];
        ids.extend(known.iter().filter(|k| !same_identifier(k, primary)).cloned());
        let ins = ids.iter().find(|id| id.patient_identifier_kind() == IdentifierKind::Ins).cloned();
        Wanted { ins, ids }
    }

    /// Whether a document naming `p` is about this patient. An INS decides: the same number
    /// (under any INS authority, flagged when it differs) or an INS the patient is known by;
    /// another INS is another patient. Without an INS, an identifier known to be the
    /// patient's (INS-C, local id, NIR without key, learned from a trusted source) attributes
    /// it; nothing known (an unknown INS-C included), no attribution.
    fn belongs(&self, p: &crate::cda::Patient) -> Belongs {
        if let Some(ins) = p.ins() {
            // The patient's INS decides alone: another INS is another person, whatever else
            // the patient is known by.
            if let Some(wanted) = &self.ins {
                return if same_identifier(ins, wanted) {
                    Belongs::Yes { authority_differs: ins.root != wanted.root }
                } else {
                    Belongs::Other
                };
            }
            if self.ids.iter().any(|k| same_identifier(k, ins)) {
                return Belongs::Yes { authority_differs: false };
            }
        }
        if p.ids.iter().any(|id| self.ids.iter().any(|k| same_identifier(k, id))) {
            return Belongs::Yes { authority_differs: false };
        }
        if p.ins().is_some() { Belongs::Other } else { Belongs::Unknown }
    }
}

/// The INS number of `ins` is the one requested (whatever authority the request names).
fn same_ins_number(ins: &InstanceId, requested: &str) -> bool {
    let value = requested.trim().rsplit('^').next().unwrap_or_default();
    ins.extension.as_deref() == Some(value)
}

fn identity_of(primary: &InstanceId, p: &crate::cda::Patient) -> PatientIdentity {
    PatientIdentity {
        ins: primary.extension.clone().unwrap_or_default(),
        ins_root: primary.root.clone(),
        family_name: p.name.family.clone().or_else(|| p.name.birth_family.clone()),
        given_name: p.name.given.first().cloned(),
        birth_date: p.birth_date,
        sex: p.sex,
    }
}

/// Names compared as people write them: case, accents, hyphens and spaces do not count.
pub fn name_key(name: &str) -> String {
    name.chars()
        .flat_map(char::to_uppercase)
        .map(|c| match c {
            'À' | 'Â' | 'Ä' | 'Á' | 'Ã' => 'A',
            'Ç' => 'C',
            'É' | 'È' | 'Ê' | 'Ë' => 'E',
            'Î' | 'Ï' | 'Í' | 'Ì' => 'I',
            'Ô' | 'Ö' | 'Ó' | 'Ò' | 'Õ' => 'O',
            'Ù' | 'Û' | 'Ü' | 'Ú' => 'U',
            'Ÿ' | 'Ý' => 'Y',
            'Ñ' => 'N',
            other => other,
        })
        .filter(|c| c.is_alphanumeric())
        .collect()
}

/// What a document's identity contradicts in the patient's: birth date and sex (hard: the
/// document may be someone else's) and names (soft: spellings and married names differ).
/// Fields one side leaves out contradict nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IdentityDifferences {
    pub birth_date: bool,
    pub sex: bool,
    pub name: bool,
}

pub fn identity_differences(patient: &PatientIdentity, document: &PatientIdentity) -> IdentityDifferences {
    fn differ<T: PartialEq>(a: &Option<T>, b: &Option<T>) -> bool {
        matches!((a, b), (Some(a), Some(b)) if a != b)
    }
    let key = |n: &Option<String>| n.as_deref().map(name_key);
    IdentityDifferences {
        birth_date: differ(&patient.birth_date.map(|d| d.to_string()), &document.birth_date.map(|d| d.to_string())),
        sex: differ(&patient.sex, &document.sex),
        name: differ(&key(&patient.family_name), &key(&document.family_name))
            || differ(&key(&patient.given_name), &key(&document.given_name)),
    }
}

fn check_identity(entry: &mut DocumentEntry, patient: &PatientIdentity, named: &PatientIdentity) {
    let differences = identity_differences(patient, named);
    if differences.birth_date || differences.sex {
        entry.status = DocumentState::Rejected;
        entry.problem(
            DocumentProblem::IdentityConflict { birth_date: differences.birth_date, sex: differences.sex },
            "the document names the patient's INS with another birth date or sex: it may be about someone else",
        );
    } else if differences.name {
        entry.problem(DocumentProblem::NameDiffers, "the document names the patient's INS with another name");
    }
}

fn replaced(entry: &mut DocumentEntry, version: u32) {
    let superseded_partial = entry.report_status == Some(ReportStatus::Active);
    entry.status = DocumentState::Replaced;
    let words = format!("replaced by version {version}{}", if superseded_partial { " (this one was a partial report)" } else { "" });
    entry.problem(DocumentProblem::ReplacedBy { version, was_partial: superseded_partial }, words);
}

/// A point under construction, with what the merge and comparability steps need.
struct Candidate {
    analyte: Option<usize>,
    point: Point,
    /// Epoch seconds for ordering; documents without a time sort first.
    epoch: i64,
    document_index: usize,
    previous: bool,
    effective_epoch: Option<i64>,
    other_key: Option<(Option<String>, Option<String>, Option<String>, Option<String>)>,
}

/// Builds the history. Pure: everything it needs is in its arguments.
pub fn normalise(documents: &[InputDocument<'_>], catalogue: &Catalogue, transcoding: &Transcoding, options: &Options) -> History {
    let mut problems = Vec::new();
    let mut entries: Vec<DocumentEntry> = documents
        .iter()
        .map(|d| match &d.report {
            Err(reason) => {
                let mut entry = DocumentEntry::bare(d.id.clone(), DocumentState::Unreadable, d.provenance);
                entry.problem(DocumentProblem::Unreadable, reason.clone());
                entry
            }
            Ok(r) => DocumentEntry {
                id: d.id.clone(),
                cda_id: r.header.id.as_ref().map(ToString::to_string),
                set_id: r.header.set_id.as_ref().map(ToString::to_string),
                version: r.header.version_number,
                kind: Some(r.kind),
                report_status: r.header.status,
                laboratory: r.header.laboratory.as_ref().and_then(|l| l.name.clone()),
                effective_time: r.header.effective_time,
                status: DocumentState::Current,
                provenance: d.provenance,
                problems: Vec::new(),
                problem_codes: Vec::new(),
            },
        })
        .collect();

    // 1. Which patient: the identifier asked for (an INS under any INS authority: one number is
    //    one identity; an INS-C; `root^value` of any other), with every identifier the store
    //    knows the patient by; else the identifier most laboratory reports name.
    let reports: Vec<Option<&Report>> = documents.iter().map(|d| d.report.as_ref().ok().copied()).collect();
    let named_ids = || reports.iter().flatten().filter(|r| r.kind.carries_results()).filter_map(|r| r.header.patient.as_ref());
    let primary: Option<InstanceId> = match &options.patient_ins {
        Some(requested) => named_ids()
            .flat_map(|p| p.ids.iter())
            .find(|id| matches_requested(id, requested))
            .or_else(|| named_ids().filter_map(|p| p.ins()).find(|ins| same_ins_number(ins, requested)))
            .or_else(|| options.known_identifiers.iter().find(|id| matches_requested(id, requested)))
            .cloned(),
        None => {
            let mut counts: BTreeMap<String, (usize, InstanceId)> = BTreeMap::new();
            for id in named_ids().filter_map(|p| p.primary_id()) {
                counts.entry(identifier_key(id)).or_insert((0, id.clone())).0 += 1;
            }
            let best = counts.values().max_by_key(|(n, _)| *n).map(|(_, id)| id.clone());
            if counts.len() > 1 {
                problems.push(format!("documents name {} different patients; showing the one most documents name", counts.len()));
            }
            best
        }
    };
    if primary.is_none() {
        problems.push(match &options.patient_ins {
            Some(_) => "no document names the requested patient".to_string(),
            None => "no document names a patient".to_string(),
        });
    }
    let wanted = primary.as_ref().map(|primary| Wanted::new(primary, &options.known_identifiers));
    // The identity: the store's when given; else the most trusted, earliest report's.
    let patient: Option<PatientIdentity> = options.patient.clone().or_else(|| {
        let (wanted, primary) = (wanted.as_ref()?, primary.as_ref()?);
        document_order(&entries)
            .into_iter()
            .filter(|&i| reports[i].is_some_and(|r| r.kind.carries_results()))
            .filter_map(|i| {
                let p = reports[i]?.header.patient.as_ref()?;
                matches!(wanted.belongs(p), Belongs::Yes { .. })
                    .then(|| (std::cmp::Reverse(entries[i].provenance.rank()), identity_of(primary, p)))
            })
            .enumerate()
            .min_by_key(|(position, (rank, _))| (*rank, *position))
            .map(|(_, (_, identity))| identity)
    });
    for (entry, report) in entries.iter_mut().zip(&reports) {
        let Some(report) = report else { continue };
        // A point-of-care rapid test (TROD) is a document of one patient like a laboratory's
        // report: attributed, checked and versioned by the same rules below.
        if !report.kind.carries_results() {
            entry.status = DocumentState::Rejected;
            entry.problem(DocumentProblem::NotCrBio, "not a laboratory report (CR-BIO)");
            continue;
        }
        let named = report.header.patient.as_ref();
        match (named, &wanted) {
            (Some(named), Some(wanted)) => match wanted.belongs(named) {
                Belongs::Yes { authority_differs } => {
                    if authority_differs {
                        entry.problem(
                            DocumentProblem::InsAuthorityDiffers,
                            "the document names the patient's INS under another INS authority",
                        );
                    }
                    if let (Some(identity), Some(primary)) = (&patient, &primary) {
                        check_identity(entry, identity, &identity_of(primary, named));
                    }
                }
                Belongs::Other => {
                    entry.status = DocumentState::Rejected;
                    entry.problem(DocumentProblem::AnotherPatient, "the document is about another patient");
                }
                // The DMP returned it for this patient (the store files a DMP answer with the
                // patient it was asked about): theirs, unless its identity contradicts them.
                Belongs::Unknown if entry.provenance == Provenance::Dmp => {
                    if let (Some(identity), Some(primary)) = (&patient, &primary) {
                        check_identity(entry, identity, &identity_of(primary, named));
                    }
                }
                Belongs::Unknown => {
                    entry.status = DocumentState::Rejected;
                    entry.problem(
                        DocumentProblem::NoPatientIns,
                        "the document names no identifier of this patient: it cannot be attributed safely",
                    );
                }
            },
            _ => {
                entry.status = DocumentState::Rejected;
                entry.problem(DocumentProblem::NoPatientIns, "the document names no patient it could be attributed to");
            }
        }
        if report.kind == DocumentKind::CrBioPdfOnly {
            entry.problem(DocumentProblem::PdfOnly, "PDF only: no structured results");
        }
    }

    // 2. Versions: per setId, the highest version number is current (two copies of the same
    //    version: the later report, then the greater id, so the choice never depends on order).
    //    A laboratory's documents (DMP, operator) are ranked among themselves; uploads compete
    //    only in sets with no laboratory document, and never displace one.
    let order = document_order(&entries);
    let mut best_version: HashMap<(bool, String), (u32, usize)> = HashMap::new();
    for &i in &order {
        let entry = &entries[i];
        if entry.status != DocumentState::Current {
            continue;
        }
        let Some(set) = &entry.set_id else { continue };
        let version = entry.version.unwrap_or(0);
        let slot = best_version.entry((entry.provenance.is_trusted(), set.clone())).or_insert((version, i));
        if version >= slot.0 {
            *slot = (version, i);
        }
    }
    // An upload carrying the id of a laboratory's document (the DMP's uniqueId) claims to be
    // that document: a conflict, whatever set it names.
    let trusted_ids: HashMap<String, u32> =
        entries.iter().filter(|e| e.provenance.is_trusted()).filter_map(|e| Some((e.cda_id.clone()?, e.version.unwrap_or(0)))).collect();
    for entry in entries.iter_mut().filter(|e| !e.provenance.is_trusted() && e.status == DocumentState::Current) {
        if let Some(&version) = entry.cda_id.as_ref().and_then(|id| trusted_ids.get(id)) {
            entry.status = DocumentState::Rejected;
            let words = format!("an uploaded document carrying the id of a laboratory's report (version {version}), which stays");
            entry.problem(DocumentProblem::ConflictsWithLaboratory { version }, words);
        }
    }
    for i in 0..entries.len() {
        let Some(set) = entries[i].set_id.clone() else { continue };
        if entries[i].status != DocumentState::Current {
            continue;
        }
        let trusted = entries[i].provenance.is_trusted();
        let laboratory = best_version.get(&(true, set.clone())).copied();
        let own_kind = best_version.get(&(trusted, set)).copied();
        let version = entries[i].version.unwrap_or(0);
        match (trusted, laboratory) {
            (false, Some((lab_version, _))) if version >= lab_version => {
                entries[i].status = DocumentState::Rejected;
                let words = format!(
                    "an uploaded document in conflict with the laboratory's version {lab_version} (from the DMP or the operator), which stays"
                );
                entries[i].problem(DocumentProblem::ConflictsWithLaboratory { version: lab_version }, words);
            }
            (false, Some((lab_version, _))) => replaced(&mut entries[i], lab_version),
            _ => {
                if let Some((best, winner)) = own_kind
                    && winner != i
                {
                    replaced(&mut entries[i], best);
                }
            }
        }
    }

    // 3. Previous results (REFR) that repeat a result already in the history are recognised
    //    on what was written, before anything is built: they become sources of that result.
    let current: Vec<Option<&Report>> =
        entries.iter().zip(&reports).map(|(e, r)| if e.status == DocumentState::Current { *r } else { None }).collect();
    let analytes = map_analytes(&current, catalogue, transcoding);
    let repeats = find_repeats(&current, &analytes);

    // 4. Candidate points from every current document.
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut builder = Builder { catalogue, system: options.unit_system, plans: Plans::default(), strings: Interner::default() };
    let ids: Vec<Arc<str>> = entries.iter().map(|e| Arc::from(e.id.as_str())).collect();
    // Documents are read in a fixed order (report time, then id) so that the history does not
    // depend on the order the store returns them in: which source of a merged point comes
    // first, and which of two same-time results is listed first, are always the same.
    for index in order.iter().copied() {
        let Some(report) = current[index] else { continue };
        let doc = DocumentContext { index, id: ids[index].clone(), report };
        for o in &report.observations {
            if repeats.absorbed.contains(&(index, o.index)) {
                continue;
            }
            let mut c = builder.candidate(&doc, o, analytes[index][o.index]);
            let copies = repeats.of((index, o.index));
            if !copies.is_empty() {
                let own = c.point.sources[0].clone();
                c.point.sources.reserve(copies.len());
                for &(_, (d, i)) in copies {
                    c.point.sources.push(Source { document: ids[d].clone(), observation: i, previous_result: true, ..own.clone() });
                }
            }
            candidates.push(c);
        }
    }

    let mut rank = vec![0usize; entries.len()];
    for (position, &index) in order.iter().enumerate() {
        rank[index] = position;
    }

    // 5. Merge what remains: dual-unit siblings, results present in two documents.
    let trusted_document: Vec<bool> = entries.iter().map(|e| e.provenance.is_trusted()).collect();
    let candidates = merge(candidates, &trusted_document);

    // 6. Series and other results.
    let mut by_analyte: BTreeMap<usize, Vec<Candidate>> = BTreeMap::new();
    let mut others: BTreeMap<(Option<String>, Option<String>, Option<String>, Option<String>), Vec<Candidate>> = BTreeMap::new();
    for c in candidates {
        match c.analyte {
            Some(a) => by_analyte.entry(a).or_default().push(c),
            None => others.entry(c.other_key.clone().unwrap_or_default()).or_default().push(c),
        }
    }
    if let Some(p) = &patient {
        derive_egfr(&mut by_analyte, catalogue, p, options.unit_system);
    }
    // Points a laboratory's document (DMP, operator) stands behind: an uploaded value never
    // changes how a laboratory's own result reads (its significant change).
    let trusted_documents: std::collections::HashSet<&str> =
        entries.iter().filter(|e| e.provenance.is_trusted()).map(|e| e.id.as_str()).collect();
    let trusted = |p: &Point| p.sources.iter().any(|s| trusted_documents.contains(&*s.document));
    // Of results sampled at one time, a laboratory's comes after an uploaded one, whatever their
    // reports' times and ids: the latest result, the one a page shows first, is never an upload
    // standing in front of a laboratory's result of the same sampling.
    let trusted_last = |c: &Candidate| trusted_document[c.document_index];
    let mut series: Vec<Series> = by_analyte
        .into_iter()
        .map(|(index, mut points)| {
            let analyte = &catalogue.analytes()[index];
            points.sort_by_key(|c| (c.epoch, trusted_last(c), c.effective_epoch, rank[c.document_index]));
            let mut loinc: Vec<&str> = points
                .iter()
                .flat_map(|c| &c.point.sources)
                .filter(|s| s.code_system.as_deref() == Some(crate::cda::oid::LOINC))
                .filter_map(|s| s.code.as_deref())
                .collect();
            loinc.sort_unstable();
            loinc.dedup();
            let loinc_seen: Vec<String> = loinc.into_iter().map(str::to_string).collect();
            let mut points: Vec<Point> = points.into_iter().map(|c| c.point).collect();
            annotate(&mut points, analyte, &trusted);
            Series {
                analyte: analyte.id.clone(),
                name_fr: analyte.name_fr.clone(),
                name_en: analyte.name_en.clone(),
                chapter: analyte.chapter.clone(),
                loinc_seen,
                unit: analyte.display_unit(options.unit_system).map(str::to_string),
                decimals: analyte.decimals(options.unit_system),
                points,
                change_not_judged: analyte.rcv_percent().is_none(),
            }
        })
        .collect();
    series.sort_by(|a, b| a.chapter.cmp(&b.chapter).then(a.analyte.cmp(&b.analyte)));
    let other_results = others
        .into_iter()
        .map(|((code, code_system, label, laboratory), mut points)| {
            points.sort_by_key(|c| (c.epoch, trusted_last(c), c.effective_epoch, rank[c.document_index]));
            // The same result in two reports (one quoting the other, or sent twice) is one
            // point with both sources, as for the catalogue's analytes; two results of one
            // report (two isolates, say) stay two.
            let mut kept: Vec<Candidate> = Vec::with_capacity(points.len());
            for c in points {
                let day = |c: &Candidate| c.point.time.map(|t| t.epoch_seconds().div_euclid(86_400));
                let repeat = kept.iter().position(|k| {
                    day(k) == day(&c)
                        && day(k).is_some()
                        && same_measurement(&k.point, &c.point)
                        // Two reports saying the same words with another flag (a positive
                        // beside a negative of one test) stay two points.
                        && k.point.flag == c.point.flag
                        && !k.point.sources.iter().any(|s| c.point.sources.iter().any(|t| t.document == s.document))
                });
                match repeat {
                    Some(i) => kept[i].point.sources.extend(c.point.sources),
                    None => kept.push(c),
                }
            }
            OtherResults { code, code_system, label, laboratory, points: kept.into_iter().map(|c| c.point).collect() }
        })
        .collect();
    History { patient, unit_system: options.unit_system, documents: entries, series, other_results, problems, targets: Vec::new() }
}

fn analyte_of<'c>(o: &Observation, catalogue: &'c Catalogue, transcoding: &Transcoding) -> Option<(usize, &'c Analyte)> {
    o.code.loinc().and_then(|code| catalogue.index_by_loinc(code)).or_else(|| {
        std::iter::once(&o.code).chain(&o.code.translations).find_map(|c| {
            let id = transcoding.analyte(c.system.as_deref()?, c.code.as_deref()?)?;
            catalogue.index_by_id(id)
        })
    })
}

fn code_text(c: &Code) -> Option<String> {
    c.label().map(str::to_string).or_else(|| c.code.clone())
}

pub(crate) fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::Coded(c) => c.label().map(str::to_string).or_else(|| c.code.clone()),
        Value::Text { text } => Some(text.clone()),
        Value::Time { time } => Some(time.to_string()),
        Value::Ratio { numerator, denominator } => Some(format!("{}/{}", numerator.value, denominator.value)),
        Value::Interval { low, high } => Some(format!(
            "{}–{} {}",
            low.as_ref().map(|q| q.value.as_str()).unwrap_or(""),
            high.as_ref().map(|q| q.value.as_str()).unwrap_or(""),
            low.as_ref().or(high.as_ref()).and_then(|q| q.unit.as_deref()).unwrap_or("")
        )),
        Value::Null { flavor } => Some(format!("({flavor})")),
        Value::Unreadable { raw, reason, .. } => Some(format!("{raw} ({reason})")),
        Value::Quantity(_) | Value::Censored { .. } | Value::Real { .. } | Value::Integer { .. } => None,
    }
}

/// Conversion plans already worked out, per analyte and original unit: a decade of results
/// uses a handful of units per analyte, so each pair is parsed once.
#[derive(Default)]
struct Plans {
    by_analyte: HashMap<usize, Vec<CachedPlan>, FxBuild>,
}

struct CachedPlan {
    from: String,
    plan: Result<units::Plan, UnitError>,
}

impl Plans {
    fn plan(&mut self, index: usize, analyte: &Analyte, unit: Option<&str>, system: UnitSystem) -> Option<&CachedPlan> {
        let target = analyte.display_unit(system)?;
        let from = unit.unwrap_or("1");
        let plans = self.by_analyte.entry(index).or_default();
        if let Some(i) = plans.iter().position(|p| p.from == from) {
            return Some(&plans[i]);
        }
        let canonical = units::canonical_spelling(from);
        let monovalent = (canonical == "mEq/L" || canonical == "meq/L") && MONOVALENT.contains(&analyte.id.as_str());
        let enzyme_iu = canonical.contains("[IU]") && units::is_catalytic(target);
        let plan = if monovalent {
            units::plan("mmol/L", target, analyte.molar_mass).map(|p| p.with_rule(Rule::MonovalentEquivalent))
        } else if enzyme_iu {
            units::plan(&canonical.replace("[IU]", "U"), target, analyte.molar_mass).map(|p| p.with_rule(Rule::EnzymeInternationalUnit))
        } else if analyte.is_hba1c() {
            units::plan_hba1c(from, target)
        } else {
            units::plan(from, target, analyte.molar_mass)
        };
        plans.push(CachedPlan { from: from.to_string(), plan });
        plans.last()
    }
}

/// Converts to the display unit, or says why not.
fn to_display(
    plans: &mut Plans,
    index: usize,
    value: &Decimal,
    unit: Option<&str>,
    analyte: &Analyte,
    system: UnitSystem,
) -> Result<(Decimal, Option<String>, Rule), UnitError> {
    let Some(cached) = plans.plan(index, analyte, unit, system) else {
        return Ok((value.clone(), unit.map(str::to_string), Rule::Identity));
    };
    let plan = cached.plan.as_ref().map_err(Clone::clone)?;
    let converted = plan.apply(value)?;
    Ok((converted.value, Some(converted.unit), converted.rule))
}

/// Document indexes ordered by report time, then id.
fn document_order(entries: &[DocumentEntry]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by(|&a, &b| {
        let key = |e: &DocumentEntry| e.effective_time.map_or(i64::MIN, |t| t.epoch_seconds());
        key(&entries[a]).cmp(&key(&entries[b])).then_with(|| entries[a].id.cmp(&entries[b].id))
    });
    order
}

/// A measurement as the laboratory wrote it, borrowed from the report.
#[derive(Hash, PartialEq, Eq)]
struct WrittenKey<'r> {
    analyte: usize,
    day: i64,
    value: &'r str,
    unit: Option<&'r str>,
    comparator: Option<&'static str>,
    laboratory: Option<&'r str>,
}

fn written_key<'r>(report: &'r Report, o: &'r Observation, analyte: usize) -> Option<WrittenKey<'r>> {
    if o.status == ResultStatus::Aborted {
        return None;
    }
    let (value, unit, comparator) = match &o.value {
        Some(Value::Quantity(q)) => (q.value.as_str(), q.unit.as_deref(), None),
        Some(Value::Censored { comparator, quantity }) => (quantity.value.as_str(), quantity.unit.as_deref(), Some(comparator.symbol())),
        Some(Value::Real { value }) => (value.as_str(), None, None),
        _ => return None,
    };
    // The same time and laboratory rules as the points themselves.
    let time = if o.is_previous_result() { o.effective_time.or(o.collection_time) } else { o.collection_time.or(o.effective_time) };
    let laboratory = o.performer.as_ref().and_then(|p| p.name.as_deref()).or_else(|| report.header.laboratory.as_ref()?.name.as_deref());
    Some(WrittenKey { analyte, day: time?.epoch_seconds().div_euclid(86_400), value, unit, comparator, laboratory })
}

/// Which previous results repeat a report's own result, by (document, observation index).
#[derive(Default)]
struct Repeats {
    /// (own result, previous result repeating it), sorted by own result.
    copies: Vec<((usize, usize), (usize, usize))>,
    /// Previous results that need no point of their own.
    absorbed: std::collections::HashSet<(usize, usize), FxBuild>,
}

impl Repeats {
    fn of(&self, own: (usize, usize)) -> &[((usize, usize), (usize, usize))] {
        let start = self.copies.partition_point(|(o, _)| *o < own);
        let end = self.copies.partition_point(|(o, _)| *o <= own);
        &self.copies[start..end]
    }
}

/// The analyte of every result of every current document (`analytes[document][observation]`).
fn map_analytes(current: &[Option<&Report>], catalogue: &Catalogue, transcoding: &Transcoding) -> Vec<Vec<Option<usize>>> {
    current
        .iter()
        .map(|r| {
            r.map_or_else(Vec::new, |r| r.observations.iter().map(|o| analyte_of(o, catalogue, transcoding).map(|(i, _)| i)).collect())
        })
        .collect()
}

fn find_repeats(current: &[Option<&Report>], analytes: &[Vec<Option<usize>>]) -> Repeats {
    let mut own: HashMap<WrittenKey<'_>, (usize, usize), FxBuild> = HashMap::default();
    for (d, report) in current.iter().enumerate() {
        let Some(report) = report else { continue };
        for o in report.observations.iter().filter(|o| !o.is_previous_result()) {
            if let Some(key) = analytes[d][o.index].and_then(|a| written_key(report, o, a)) {
                own.entry(key).or_insert((d, o.index));
            }
        }
    }
    let mut repeats = Repeats::default();
    for (d, report) in current.iter().enumerate() {
        let Some(report) = report else { continue };
        for o in report.observations.iter().filter(|o| o.is_previous_result()) {
            let Some(key) = analytes[d][o.index].and_then(|a| written_key(report, o, a)) else { continue };
            if let Some(&original) = own.get(&key) {
                repeats.copies.push((original, (d, o.index)));
                repeats.absorbed.insert((d, o.index));
            }
        }
    }
    repeats.copies.sort_unstable();
    repeats
}

/// Shared strings: a decade of results names a handful of laboratories and units.
#[derive(Default)]
struct Interner {
    strings: HashMap<String, Arc<str>, FxBuild>,
}

impl Interner {
    fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(shared) = self.strings.get(s) {
            return shared.clone();
        }
        let shared: Arc<str> = Arc::from(s);
        self.strings.insert(s.to_string(), shared.clone());
        shared
    }
}

/// What a candidate needs from its document.
struct DocumentContext<'a> {
    index: usize,
    id: Arc<str>,
    report: &'a Report,
}

/// Per-run caches and settings for building candidates.
struct Builder<'c> {
    catalogue: &'c Catalogue,
    system: UnitSystem,
    plans: Plans,
    strings: Interner,
}

impl Builder<'_> {
    fn candidate(&mut self, doc: &DocumentContext<'_>, o: &Observation, analyte: Option<usize>) -> Candidate {
        let report = doc.report;
        let system = self.system;
        let mapped = analyte.map(|i| (i, &self.catalogue.analytes()[i]));
        let time = if o.is_previous_result() { o.effective_time.or(o.collection_time) } else { o.collection_time.or(o.effective_time) };
        let laboratory = o
            .performer
            .as_ref()
            .and_then(|p| p.name.as_deref())
            .or_else(|| report.header.laboratory.as_ref()?.name.as_deref())
            .map(|l| self.strings.get(l));
        let (code, code_system) = match o.code.loinc() {
            Some(l) => (Some(self.strings.get(l)), Some(self.strings.get(crate::cda::oid::LOINC))),
            None => {
                let local = std::iter::once(&o.code).chain(&o.code.translations).find(|c| c.code.is_some());
                (
                    local.and_then(|c| c.code.as_deref()).map(|c| self.strings.get(c)),
                    local.and_then(|c| c.system.as_deref()).map(|s| self.strings.get(s)),
                )
            }
        };
        let mut source = Source {
            document: doc.id.clone(),
            observation: o.index,
            code: code.clone(),
            code_system: code_system.clone(),
            // The name the laboratory printed (its narrative), else the code's display name.
            label: if mapped.is_none() { o.code.original_text.clone().or_else(|| code_text(&o.code)) } else { None },
            original_value: None,
            original_unit: None,
            converted: false,
            rule: None,
            not_converted: None,
            not_converted_reason: None,
            previous_result: o.is_previous_result(),
        };
        let (number, comparator, unit) = match &o.value {
            Some(Value::Quantity(q)) => (Some(q.value.clone()), None, q.unit.as_deref()),
            Some(Value::Censored { comparator, quantity }) => (Some(quantity.value.clone()), Some(*comparator), quantity.unit.as_deref()),
            Some(Value::Real { value }) => (Some(value.clone()), None, None),
            Some(Value::Integer { value }) => (Decimal::parse(&value.to_string()), None, None),
            _ => (None, None, None),
        };
        source.original_value = match (&number, comparator) {
            (Some(n), Some(c)) => Some(Arc::from(format!("{}{}", c.symbol(), n))),
            (Some(n), None) => Some(n.shared()),
            (None, _) => o.value.as_ref().and_then(value_text).map(Arc::from),
        };
        source.original_unit = unit.map(|u| self.strings.get(u));
        let status = if o.status == ResultStatus::Aborted { PointStatus::NotPerformed } else { PointStatus::Completed };
        let mut point = Point {
            time,
            status,
            value: None,
            display: None,
            text: None,
            comparator,
            unit: unit.map(|u| self.strings.get(u)),
            in_display_unit: false,
            flag: None,
            reference_low: None,
            reference_high: None,
            reference_text: None,
            laboratory,
            method: o.method.as_ref().and_then(code_text),
            sources: Vec::new(),
            significant_change: None,
            comparability: Comparability::default(),
            derived: false,
            discordant_text: None,
            critical: None,
            target_flag: None,
        };
        if status == PointStatus::NotPerformed {
            point.text = Some("not performed".into());
        } else if number.is_none() {
            point.text = o.value.as_ref().and_then(value_text);
        }
        let range = o.reference_ranges.first();
        point.reference_text = range.and_then(|r| r.text.clone());
        match (&mapped, &number) {
            (Some((analyte_index, analyte)), Some(n)) if analyte.kind == AnalyteKind::Numeric && status == PointStatus::Completed => {
                match to_display(&mut self.plans, *analyte_index, n, unit, analyte, system) {
                    Ok((value, display_unit, rule)) => {
                        let decimals = analyte.decimals(system);
                        point.display = Some(value.display(decimals));
                        point.value = Some(value);
                        point.unit = display_unit.map(|u| self.strings.get(&u));
                        point.in_display_unit = true;
                        source.converted = rule != Rule::Identity;
                        source.rule = Some(rule);
                        // The laboratory's range, in the same unit as the point.
                        let plans = &mut self.plans;
                        let mut convert_bound = |q: &crate::cda::Quantity| {
                            to_display(plans, *analyte_index, &q.value, q.unit.as_deref().or(unit), analyte, system).ok().map(|(v, _, _)| v)
                        };
                        point.reference_low = range.and_then(|r| r.low.as_ref()).and_then(&mut convert_bound);
                        point.reference_high = range.and_then(|r| r.high.as_ref()).and_then(&mut convert_bound);
                        // The published critical limits are in the analyte's SI unit: put in the
                        // point's unit the same way (a limit that cannot be is not applied).
                        if let (Some(limit), Some(value)) = (&analyte.critical, &point.value) {
                            let mut in_unit = |b: &Decimal| {
                                to_display(plans, *analyte_index, b, Some(limit.unit.as_str()), analyte, system)
                                    .ok()
                                    .map(|(v, _, _)| v.to_f64())
                            };
                            let low = limit.low.as_ref().and_then(&mut in_unit);
                            let high = limit.high.as_ref().and_then(&mut in_unit);
                            point.critical = crate::judge::critical(value.to_f64(), comparator, low, high);
                        }
                    }
                    Err(reason) => {
                        point.value = Some(n.clone());
                        point.display = Some(n.shared());
                        source.not_converted = Some(reason.to_string());
                        source.not_converted_reason = Some(reason);
                        point.reference_low = range.and_then(|r| r.low.as_ref()).map(|q| q.value.clone());
                        point.reference_high = range.and_then(|r| r.high.as_ref()).map(|q| q.value.clone());
                    }
                }
            }
            (_, Some(n)) if status == PointStatus::Completed => {
                // Not in the catalogue (or not numeric there): shown as the laboratory wrote it.
                point.value = Some(n.clone());
                point.display = Some(n.shared());
                point.reference_low = range.and_then(|r| r.low.as_ref()).map(|q| q.value.clone());
                point.reference_high = range.and_then(|r| r.high.as_ref()).map(|q| q.value.clone());
            }
            _ => {}
        }
        // A coded or text result says positive, negative or an abnormal finding in words.
        let reading = if point.status == PointStatus::Completed && point.value.is_none() {
            crate::qualitative::read(o)
        } else {
            crate::qualitative::Reading::default()
        };
        point.flag = flag(o, &point, reading.flag, &mut self.strings);
        point.discordant_text = reading.discordant_text;
        point.sources.push(source);
        let other_key = mapped.is_none().then(|| {
            (
                code.map(|c| c.to_string()),
                code_system.map(|s| s.to_string()),
                code_text(&o.code),
                point.laboratory.as_ref().map(|l| l.to_string()),
            )
        });
        Candidate {
            analyte: mapped.map(|(i, _)| i),
            epoch: time.map_or(i64::MIN, |t| t.epoch_seconds()),
            effective_epoch: o.effective_time.map(|t| t.epoch_seconds()),
            point,
            document_index: doc.index,
            previous: o.is_previous_result(),
            other_key,
        }
    }
}

/// The laboratory's flag, else one computed from its own range, or from what a coded or text
/// result says (`qualitative`), marked computed.
fn flag(o: &Observation, point: &Point, qualitative: Option<&'static str>, strings: &mut Interner) -> Option<Flag> {
    if let Some(code) = o.interpretation.iter().find_map(|c| c.code.as_deref()) {
        return Some(Flag { code: strings.get(code), computed: false });
    }
    if point.status != PointStatus::Completed {
        return None;
    }
    if let Some(code) = qualitative {
        return Some(Flag { code: strings.get(code), computed: true });
    }
    let value = point.value.as_ref()?.to_f64();
    let low = point.reference_low.as_ref().map(Decimal::to_f64);
    let high = point.reference_high.as_ref().map(Decimal::to_f64);
    if low.is_none() && high.is_none() {
        return None;
    }
    let code = crate::judge::side(value, point.comparator, low, high)?;
    Some(Flag { code: strings.get(code), computed: true })
}

/// What makes two results the same measurement seen twice: analyte, day, value, unit,
/// comparator and laboratory. Hashed without copying; equality is checked on the points.
fn repeat_hash(analyte: usize, day: i64, p: &Point) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = FxHasher::default();
    analyte.hash(&mut h);
    day.hash(&mut h);
    p.value.as_ref().map(Decimal::as_str).or(p.text.as_deref()).hash(&mut h);
    p.unit.hash(&mut h);
    p.comparator.map(|c| c.symbol()).hash(&mut h);
    p.laboratory.hash(&mut h);
    h.finish()
}

fn same_measurement(a: &Point, b: &Point) -> bool {
    a.value.as_ref().map(Decimal::as_str).or(a.text.as_deref()) == b.value.as_ref().map(Decimal::as_str).or(b.text.as_deref())
        && a.unit == b.unit
        && a.comparator == b.comparator
        && a.laboratory == b.laboratory
        // A result whose printed text contradicts its code is not the same statement as one
        // whose text agrees: merging them would hide the contradiction.
        && a.discordant_text == b.discordant_text
}

/// Dual-unit siblings (same document, same analyte, same times) and repeated results (same
/// analyte, same day, same value, same laboratory) become one point with all their sources.
fn merge(candidates: Vec<Candidate>, trusted_document: &[bool]) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = Vec::with_capacity(candidates.len());
    // First candidate per hash, and for each kept candidate the next one with the same hash.
    let mut repeats: HashMap<u64, usize, FxBuild> = HashMap::with_capacity_and_hasher(candidates.len(), FxBuild::default());
    let mut chain: Vec<Option<usize>> = Vec::with_capacity(candidates.len());
    let mut siblings: HashMap<(usize, usize, i64, Option<i64>), usize, FxBuild> =
        HashMap::with_capacity_and_hasher(candidates.len(), FxBuild::default());
    for c in candidates {
        let Some(analyte) = c.analyte else {
            out.push(c);
            chain.push(None);
            continue;
        };
        // Same document, same analyte, same collection and result times: one measurement
        // reported in two units.
        if !c.previous {
            let key = (c.document_index, analyte, c.epoch, c.effective_epoch);
            if let Some(&existing) = siblings.get(&key) {
                let target = &mut out[existing];
                // Keep as the point's value the one already in the display unit when possible.
                let prefer_new = !target.point.in_display_unit && c.point.in_display_unit;
                let mut sources = c.point.sources;
                if prefer_new {
                    let old = std::mem::replace(&mut target.point, Point { sources: Vec::new(), ..c.point });
                    target.point.sources = old.sources;
                }
                target.point.sources.append(&mut sources);
                continue;
            }
            siblings.insert(key, out.len());
        }
        // The same result seen again (previous result in a later report, or another document).
        // Two laboratories finding the same value the same day made two measurements.
        let day = c.point.time.map_or(i64::MIN, |t| t.epoch_seconds().div_euclid(86_400));
        let hash = repeat_hash(analyte, day, &c.point);
        let mut next = repeats.get(&hash).copied();
        let mut found = None;
        while let Some(i) = next {
            let o = &out[i];
            if o.analyte == Some(analyte)
                && o.point.time.map_or(i64::MIN, |t| t.epoch_seconds().div_euclid(86_400)) == day
                && same_measurement(&o.point, &c.point)
            {
                found = Some(i);
                break;
            }
            next = chain[i];
        }
        if let Some(existing) = found {
            let target = &mut out[existing];
            // A point of a report's own result wins over its copy as a previous result.
            if target.previous && !c.previous {
                let old_sources = std::mem::take(&mut target.point.sources);
                target.point = c.point;
                target.point.sources.splice(0..0, old_sources);
                target.previous = false;
                target.epoch = c.epoch;
            } else if target.previous == c.previous && !trusted_document[target.document_index] && trusted_document[c.document_index] {
                // An uploaded copy of a laboratory's result: the laboratory's is the point, its
                // source first (what a page reads to say "uploaded"), the upload's beside it.
                let old_sources = std::mem::take(&mut target.point.sources);
                *target = c;
                target.point.sources.extend(old_sources);
            } else {
                target.point.sources.extend(c.point.sources);
            }
            continue;
        }
        chain.resize(out.len(), None);
        chain.push(repeats.insert(hash, out.len()));
        out.push(c);
    }
    out
}

/// Comparability markers and significant changes along one series (points in time order).
fn annotate(points: &mut [Point], analyte: &Analyte, trusted: &dyn Fn(&Point) -> bool) {
    let rcv = analyte.rcv_percent();
    let time_of = |p: &Point| p.time.map(|t| t.epoch_seconds());
    for i in 0..points.len() {
        if points[i].status != PointStatus::Completed || points[i].derived {
            continue;
        }
        let is_trusted = trusted(&points[i]);
        let now = time_of(&points[i]);
        // Compared with the last result sampled BEFORE it (two results of one sampling are no
        // change over time, whatever they say); a laboratory's result with the laboratory
        // results before it only.
        let compared_with = (0..i).rev().find(|&j| {
            let p = &points[j];
            p.status == PointStatus::Completed
                && !p.derived
                && (!is_trusted || trusted(p))
                && match (time_of(p), now) {
                    (Some(before), Some(now)) => before < now,
                    _ => true,
                }
        });
        if let Some(p) = compared_with {
            let (before, after) = points.split_at_mut(i);
            let (prev, cur) = (&before[p], &mut after[0]);
            cur.comparability = Comparability {
                laboratory: prev.laboratory != cur.laboratory,
                method: prev.method.is_some() && cur.method.is_some() && prev.method != cur.method,
                reference_range: (prev.reference_low.as_ref().map(Decimal::to_f64), prev.reference_high.as_ref().map(Decimal::to_f64))
                    != (cur.reference_low.as_ref().map(Decimal::to_f64), cur.reference_high.as_ref().map(Decimal::to_f64)),
                unit: prev.in_display_unit != cur.in_display_unit || (!cur.in_display_unit && prev.unit != cur.unit),
            };
            if let (Some(rcv), Some(a), Some(b)) = (rcv, prev.plottable(), cur.plottable())
                && a != 0.0
                && !cur.comparability.laboratory
                && !cur.comparability.method
            {
                let change = (b - a) / a.abs() * 100.0;
                if change.abs() > rcv {
                    cur.significant_change = Some(if change > 0.0 { Direction::Up } else { Direction::Down });
                }
            }
        }
    }
}

/// The KDIGO stage of a glomerular filtration rate (mL/min/1.73 m²): G1 ≥ 90, G2 60–89,
/// G3a 45–59, G3b 30–44, G4 15–29, G5 < 15 (KDIGO 2012 CKD guideline, GFR categories).
pub fn kdigo_stage(egfr: f64) -> &'static str {
    match egfr {
        g if g >= 90.0 => "G1",
        g if g >= 60.0 => "G2",
        g if g >= 45.0 => "G3a",
        g if g >= 30.0 => "G3b",
        g if g >= 15.0 => "G4",
        _ => "G5",
    }
}

/// CKD-EPI 2021 (race-free) from serum creatinine (mg/dL), age (years) and sex.
pub fn ckd_epi_2021(creatinine_mg_dl: f64, age_years: f64, sex: Sex) -> Option<f64> {
    let (kappa, alpha, factor) = match sex {
        Sex::Female => (0.7, -0.241, 1.012),
        Sex::Male => (0.9, -0.302, 1.0),
        Sex::Undetermined => return None,
    };
    if !(creatinine_mg_dl > 0.0) || !(18.0..=120.0).contains(&age_years) {
        return None;
    }
    let ratio = creatinine_mg_dl / kappa;
    Some(142.0 * ratio.min(1.0).powf(alpha) * ratio.max(1.0).powf(-1.200) * 0.9938f64.powf(age_years) * factor)
}

fn age_years(birth: &CdaTime, at: &CdaTime) -> f64 {
    (at.epoch_seconds() - birth.epoch_seconds()) as f64 / (365.2425 * 86_400.0)
}

/// Adds eGFR (CKD-EPI 2021) points computed from creatinine where the laboratory reported no
/// eGFR for the same sample.
fn derive_egfr(by_analyte: &mut BTreeMap<usize, Vec<Candidate>>, catalogue: &Catalogue, patient: &PatientIdentity, system: UnitSystem) {
    let (Some(creatinine), Some(target)) = (
        catalogue.analytes().iter().position(|a| a.id == "creatinine"),
        catalogue.analytes().iter().position(|a| a.id == "egfr_ckd_epi_2021"),
    ) else {
        return;
    };
    let (Some(sex), Some(birth)) = (patient.sex, patient.birth_date) else { return };
    let reported: std::collections::HashSet<(usize, i64)> = catalogue
        .analytes()
        .iter()
        .enumerate()
        .filter(|(_, a)| a.id.starts_with("egfr_"))
        .filter_map(|(i, _)| by_analyte.get(&i))
        .flatten()
        .map(|c| (c.document_index, c.epoch))
        .collect();
    let creatinine_analyte = &catalogue.analytes()[creatinine];
    let mut derived = Vec::new();
    for c in by_analyte.get(&creatinine).into_iter().flatten() {
        if c.previous || reported.contains(&(c.document_index, c.epoch)) {
            continue;
        }
        let (Some(time), Some(value)) = (c.point.time, c.point.plottable()) else { continue };
        // Creatinine in mg/dL from the display unit (µmol/L or mg/L).
        let Some(unit) = creatinine_analyte.display_unit(system) else { continue };
        let Ok(mg_dl) = Decimal::from_f64(value)
            .ok_or(UnitError::Missing)
            .and_then(|d| units::convert(&d, unit, "mg/dL", creatinine_analyte.molar_mass))
        else {
            continue;
        };
        let Some(egfr) = ckd_epi_2021(mg_dl.value.to_f64(), age_years(&birth, &time), sex) else { continue };
        let Some(value) = Decimal::from_f64(egfr) else { continue };
        let mut point = c.point.clone();
        point.display = Some(value.display(0));
        point.value = Some(value);
        point.unit = Some(Arc::from("mL/min/{1.73_m2}"));
        // KDIGO: below 60 mL/min/1.73 m² (stage G3a and lower) is decreased kidney function,
        // whatever a laboratory's creatinine range says; the flag says it is ours.
        point.flag = (egfr < 60.0).then(|| Flag { code: Arc::from(if egfr < 15.0 { "LL" } else { "L" }), computed: true });
        point.reference_low = None;
        point.reference_high = None;
        point.method = Some("CKD-EPI 2021".into());
        point.derived = true;
        derived.push(Candidate {
            analyte: Some(target),
            point,
            epoch: c.epoch,
            document_index: c.document_index,
            previous: false,
            effective_epoch: c.effective_epoch,
            other_key: None,
        });
    }
    if !derived.is_empty() {
        by_analyte.entry(target).or_default().extend(derived);
    }
}

#[cfg(test)]
mod tests;
