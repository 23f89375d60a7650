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
}

pub async fn import_bytes(store: &dyn Store, name: &str, raw: Vec<u8>, source: DocumentSource) -> Result<ImportOutcome, StoreError> {
    let parsed = cda::parse(&raw);
    let (index, patient, problem) = match &parsed {
        Ok(report) => {
            let (patient, problem) = patient_of(report);
            (Some(index_of(report)), patient, problem)
        }
        Err(e) => (None, None, Some(e.to_string())),
    };
    let kind = index.as_ref().map(|i| i.kind);
    let document = NewDocument {
        raw,
        source,
        source_name: Some(name.to_string()),
        index,
        parse_error: parsed.as_ref().err().map(ToString::to_string),
        parse_error_code: parsed.as_ref().err().map(error_code),
        patient,
    };
    let outcome = match store.store_document(document).await? {
        Stored::Inserted { document, patient, unattributed } => ImportOutcome {
            name: name.to_string(),
            stored: Some(document.to_string()),
            already_present: false,
            patient: patient.map(|p| p.to_string()),
            kind,
            problem: problem.or_else(|| unattributed.map(str::to_string)),
        },
        Stored::AlreadyPresent { document } => ImportOutcome {
            name: name.to_string(),
            stored: Some(document.to_string()),
            already_present: true,
            patient: None,
            kind,
            problem,
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

fn index_of(report: &Report) -> DocumentIndex {
    let h = &report.header;
    DocumentIndex {
        kind: report.kind,
        cda_id: h.id.as_ref().map(ToString::to_string),
        set_id: h.set_id.as_ref().map(ToString::to_string),
        version_number: h.version_number,
        report_status: h.status,
        title: h.title.clone(),
        laboratory: h.laboratory.as_ref().and_then(|l| l.name.clone()),
        effective_time: h.effective_time,
        prescriber_id: h.prescriber.as_ref().and_then(|p| p.id.as_ref()).map(ToString::to_string),
    }
}

/// The patient a report names: by its INS when it carries a valid one, otherwise by its other
/// identifiers (an INS-C first); the store decides which record that is
/// (`identity::attribute`). An INS that fails its key check attributes nothing.
fn patient_of(report: &Report) -> (Option<NewPatient>, Option<String>) {
    let Some(patient) = report.header.patient.as_ref() else {
        return (None, report.kind.is_cr_bio().then(|| "no patient in the document".to_string()));
    };
    let key = match patient.ins() {
        Some(id) => match Ins::new(&id.root, id.extension.as_deref().unwrap_or_default()) {
            Ok(ins) => PatientKey::Ins(ins),
            Err(e) => return (None, Some(format!("invalid INS: {e}"))),
        },
        None => match patient.primary_id().and_then(PatientIdentifier::of) {
            Some(id) => PatientKey::Other(id),
            None => return (None, Some("the patient has no identifier".to_string())),
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
            family_name: patient.name.family.clone().or_else(|| patient.name.birth_family.clone()),
            given_names: patient.name.given.first().cloned(),
            birth_date: patient.birth_date,
            sex: patient.sex,
        }),
        None,
    )
}
