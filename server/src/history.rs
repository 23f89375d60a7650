//! A patient's unified history: stored documents → pure core (parse, normalise) → `History`.
//!
//! Parsing and normalising are CPU work: they run on the blocking pool, never on the async
//! workers that serve requests.

use std::path::Path;
use std::sync::Arc;

use bioviewer_core::catalogue::{Catalogue, CatalogueError, EMBEDDED_TRANSCODING, Transcoding, UnitSystem};
use bioviewer_core::normalise::{History, InputDocument, Options, normalise};

use crate::domain::PatientId;
use crate::store::{Store, StoreError};

/// The catalogue and the transcoding table, loaded once at start-up.
pub struct Normaliser {
    catalogue: Catalogue,
    transcoding: Transcoding,
}

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot read the transcoding table {path}: {source}")]
    TranscodingFile { path: String, source: std::io::Error },
    #[error("the transcoding table is invalid: {0}")]
    Transcoding(#[from] CatalogueError),
    #[error("the history computation failed: {0}")]
    Task(String),
}

impl Normaliser {
    /// The shipped catalogue, and the transcoding table from `path` (or the shipped one).
    pub fn load(transcoding: Option<&Path>) -> Result<Normaliser, HistoryError> {
        let catalogue = Catalogue::embedded();
        let table = match transcoding {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|source| HistoryError::TranscodingFile { path: path.display().to_string(), source })?,
            None => EMBEDDED_TRANSCODING.to_string(),
        };
        let transcoding = Transcoding::from_tsv(&table, &catalogue)?;
        Ok(Normaliser { catalogue, transcoding })
    }

    /// Normalises raw documents (id, bytes) of one patient, identified by `ins` (`root^value`).
    pub fn history(&self, documents: &[(String, Vec<u8>)], ins: &str, unit_system: UnitSystem) -> History {
        let parsed: Vec<(&str, Result<bioviewer_core::cda::Report, String>)> =
            documents.iter().map(|(id, raw)| (id.as_str(), bioviewer_core::cda::parse(raw).map_err(|e| e.to_string()))).collect();
        let inputs: Vec<InputDocument<'_>> = parsed
            .iter()
            .map(|(id, report)| InputDocument { id: (*id).to_string(), report: report.as_ref().map_err(Clone::clone) })
            .collect();
        let options = Options { patient_ins: Some(ins.to_string()), unit_system };
        normalise(&inputs, &self.catalogue, &self.transcoding, &options)
    }
}

/// The history of a stored patient, or `None` when there is no such patient.
pub async fn patient_history(
    store: &dyn Store,
    normaliser: Arc<Normaliser>,
    patient: PatientId,
    unit_system: UnitSystem,
) -> Result<Option<History>, HistoryError> {
    let Some(record) = store.patient(patient).await? else { return Ok(None) };
    let documents: Vec<(String, Vec<u8>)> =
        store.patient_raw_documents(patient).await?.into_iter().map(|(id, raw)| (id.to_string(), raw)).collect();
    let ins = format!("{}^{}", record.ins_root, record.ins);
    let span = tracing::info_span!("history", patient = %patient, documents = documents.len());
    let history = tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        normaliser.history(&documents, &ins, unit_system)
    })
    .await
    .map_err(|e| HistoryError::Task(e.to_string()))?;
    Ok(Some(history))
}
