//! Importing a document: parse its header with the pure core, then store the raw bytes verbatim
//! with that index. A document that does not parse is stored anyway, with the reason, so that
//! nothing a laboratory sent is ever lost and a parser fix can re-read it.

use bioviewer_core::cda::{self, Report};
use tracing::{info, warn};

use crate::domain::Ins;
use crate::store::{DocumentIndex, DocumentSource, NewDocument, NewPatient, PatientIdentifier, PatientKey, Store, StoreError, Stored};
use bioviewer_core::cda::IdentifierKind;

/// What happened to one imported document (no health data: safe to log and print).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImportOutcome {
    pub name: String,
    pub stored: Option<String>,
    pub already_present: bool,
    pub patient: Option<String>,
    pub kind: Option<cda::DocumentKind>,
    /// Why the document is kept without a patient or without an index.
    pub problem: Option<String>,
    /// The same as a code the interface says in the reader's language: a parse error's
    /// `kind:line:column`, or `no_patient`, `no_ins`, `invalid_ins`.
    pub problem_code: Option<String>,
}

/// A document read on the blocking pool: its bytes back, and what the index needs.
struct Read {
    raw: Vec<u8>,
    index: Option<DocumentIndex>,
    patient: Option<NewPatient>,
    problem: Option<String>,
    problem_code: Option<String>,
    parse_error: Option<String>,
    parse_error_code: Option<String>,
}

fn read_document(raw: Vec<u8>) -> Read {
    match cda::parse(&raw) {
        Ok(report) => {
            let (patient, problem) = patient_of(&report);
            let (problem, problem_code) = problem.map(|(code, text)| (text, code.to_string())).unzip();
            Read { index: Some(index_of(&report)), patient, problem, problem_code, parse_error: None, parse_error_code: None, raw }
        }
        Err(e) => {
            let (text, code) = (e.to_string(), error_code(&e));
            Read {
                index: None,
                patient: None,
                problem: Some(text.clone()),
                problem_code: Some(code.clone()),
                parse_error: Some(text),
                parse_error_code: Some(code),
                raw,
            }
        }
    }
}

pub async fn import_bytes(store: &dyn Store, name: &str, raw: Vec<u8>, source: DocumentSource) -> Result<ImportOutcome, StoreError> {
    // Parsing a large document takes a while: on the blocking pool, so the server keeps
    // answering meanwhile. The parser never panics (fuzzed); if it ever did, so does this task.
    let read = match tokio::task::spawn_blocking(move || read_document(raw)).await {
        Ok(read) => read,
        Err(e) => std::panic::resume_unwind(e.try_into_panic().unwrap_or_else(|e| Box::new(e.to_string()))),
    };
    let Read { raw, index, patient, problem, problem_code, parse_error, parse_error_code } = read;
    let kind = index.as_ref().map(|i| i.kind);
    let document = NewDocument { raw, source, source_name: Some(capped(name)), index, parse_error, parse_error_code, patient };
    let outcome = match store.store_document(document).await? {
        Stored::Inserted { document, patient, unattributed } => ImportOutcome {
            name: capped(name),
            stored: Some(document.to_string()),
            already_present: false,
            patient: patient.map(|p| p.to_string()),
            kind,
            problem: problem.or_else(|| unattributed.map(str::to_string)),
            problem_code: problem_code.clone().or_else(|| unattributed.map(|_| "unattributed".to_string())),
        },
        Stored::AlreadyPresent { document } => ImportOutcome {
            name: capped(name),
            stored: Some(document.to_string()),
            already_present: true,
            patient: None,
            kind,
            problem,
            problem_code,
        },
    };
    match &outcome.problem {
        None => info!(document = ?outcome.stored, already_present = outcome.already_present, "document imported"),
        Some(_) => warn!(document = ?outcome.stored, "document imported with a problem"),
    }
    Ok(outcome)
}

/// `kind:line:column` of a parse error, for the interface to say in the reader's language.
fn error_code(error: &cda::ParseError) -> String {
    let cda::ParseError::Xml(e) = error;
    let kind =
        serde_json::to_value(&e.kind).ok().and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_string)).unwrap_or_default();
    format!("{kind}:{}:{}", e.line, e.column)
}

/// The longest header string kept in the document index, in characters.
const INDEX_STRING_MAX: usize = 256;

/// `s` cut to [`INDEX_STRING_MAX`] characters (at a character boundary, ending with `…` when
/// cut). The index feeds every list page: a 20 MB title must not make a 40 MB page. The raw
/// document keeps every byte; the document's own page reads it from there.
fn capped(s: &str) -> String {
    match s.char_indices().nth(INDEX_STRING_MAX) {
        None => s.to_string(),
        Some(_) => {
            let end = s.char_indices().nth(INDEX_STRING_MAX - 1).map_or(s.len(), |(i, _)| i);
            format!("{}…", &s[..end])
        }
    }
}

fn index_of(report: &Report) -> DocumentIndex {
    let h = &report.header;
    let text = |s: Option<&String>| s.map(|s| capped(s));
    DocumentIndex {
        kind: report.kind,
        // An id this long is malformed anyway: cut, it matches no DMP entry (the document is then
        // fetched again and found already present by its bytes).
        cda_id: h.id.as_ref().map(|id| capped(&id.to_string())),
        set_id: h.set_id.as_ref().map(|id| capped(&id.to_string())),
        version_number: h.version_number,
        report_status: h.status,
        title: text(h.title.as_ref()),
        laboratory: text(h.laboratory.as_ref().and_then(|l| l.name.as_ref())),
        effective_time: h.effective_time,
        prescriber_id: h.prescriber.as_ref().and_then(|p| p.id.as_ref()).map(|id| capped(&id.to_string())),
    }
}

/// The patient a report names: by its INS when it carries a valid one, otherwise by its other
/// identifiers (an INS-C first); the store decides which record that is
/// (`identity::attribute`). An INS that fails its key check attributes nothing. Otherwise why
/// not (a code for the interface, a sentence for the command line).
fn patient_of(report: &Report) -> (Option<NewPatient>, Option<(&'static str, String)>) {
    let Some(patient) = report.header.patient.as_ref() else {
        return (None, report.kind.carries_results().then(|| ("no_patient", "no patient in the document".to_string())));
    };
    let key = match patient.ins() {
        Some(id) => match Ins::new(&id.root, id.extension.as_deref().unwrap_or_default()) {
            Ok(ins) => PatientKey::Ins(ins),
            Err(e) => return (None, Some(("invalid_ins", format!("invalid INS: {e}")))),
        },
        None => match patient.primary_id().and_then(PatientIdentifier::of) {
            Some(id) => PatientKey::Other(id),
            None => return (None, Some(("no_identifier", "the patient has no identifier".to_string()))),
        },
    };
    let other_ids = patient
        .ids
        .iter()
        .filter_map(PatientIdentifier::of)
        .filter(|id| !(id.authority == key.authority() && id.value == key.value()) && id.kind != IdentifierKind::Ins)
        .collect();
    (
        Some(NewPatient {
            key,
            other_ids,
            family_name: patient.name.family.as_ref().or(patient.name.birth_family.as_ref()).map(|s| capped(s)),
            given_names: patient.name.given.first().map(|s| capped(s)),
            birth_date: patient.birth_date,
            sex: patient.sex,
        }),
        None,
    )
}
