//! A patient's unified history: stored documents → pure core (parse, normalise) → `History`.
//!
//! Parsing and normalising are CPU work: they run on the blocking pool, never on the async
//! workers that serve requests.
//!
//! Every page of a patient (documents, summary, table, chart) needs the same history, so the
//! result is kept in a small cache keyed by *what it was computed from*: the patient, the unit
//! system and a digest of the patient's document set (each document's id and the SHA-256 of its
//! bytes, in import order). Stored documents never change and a new one changes the digest, so
//! a cached history is never stale and never another patient's: there is nothing to invalidate.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use bioviewer_core::catalogue::{Catalogue, CatalogueError, EMBEDDED_TRANSCODING, Transcoding, UnitSystem};
use bioviewer_core::normalise::{History, InputDocument, Options, PatientIdentity, Provenance, normalise};

use bioviewer_core::judge::TreatmentTarget;

use crate::domain::PatientId;
use crate::local_time::LocalZone;
use crate::store::{DocumentFingerprint, Store, StoreError};

/// Why a document whose stored bytes no longer match the SHA-256 recorded when they arrived is
/// unreadable: its bytes are not read at all.
const ALTERED: &str = "the stored bytes of this document no longer match the digest recorded when it arrived: altered in the database";

/// The catalogue and the transcoding table, loaded once at start-up, and the histories computed
/// with them.
pub struct Normaliser {
    catalogue: Catalogue,
    transcoding: Transcoding,
    /// Computed histories, under what they were computed from.
    cache: Lru<CacheKey>,
    /// The interface's copies of the cached histories (targets applied, times in the
    /// clinician's zone): pages read them on every request, and a ten-year history is too
    /// large to copy and convert each time.
    shown: Lru<ShownKey>,
    /// The JSON of the cached computed histories (`GET /api/patients/{id}/history`), each beside
    /// the history it was written from: several megabytes for a ten-year record, written once.
    json: Lru<Arc<History>, axum::body::Bytes>,
}

/// How many histories the cache keeps by default (least recently used goes first). A ten-year
/// history is a few megabytes; two unit systems for a ward's worth of open patients fit.
pub const DEFAULT_CACHED_HISTORIES: usize = 32;

/// What a history was computed from. Equal keys give equal histories.
#[derive(Clone, PartialEq, Eq)]
struct CacheKey {
    patient: PatientId,
    unit_system: UnitSystem,
    /// SHA-256 over the patient's identity and identifiers and every (document id, content
    /// SHA-256, provenance), in order.
    document_set: [u8; 32],
}

impl CacheKey {
    fn new(
        patient: PatientId,
        identity: &PatientIdentity,
        identifiers: &[bioviewer_core::cda::InstanceId],
        unit_system: UnitSystem,
        documents: &[DocumentFingerprint],
    ) -> CacheKey {
        let mut digest = Sha256::new();
        // The identity the history checks documents against (it changes when a more trusted
        // source sets it), and every identifier the patient is known by.
        digest.update(serde_json::to_vec(&(identity, identifiers)).unwrap_or_default());
        for d in documents {
            // Fixed-width fields and a separator: no two different sets give the same stream.
            digest.update(b"\n");
            digest.update(d.id.0.as_bytes());
            digest.update(d.sha256.as_bytes());
            digest.update([d.provenance.rank()]);
        }
        CacheKey { patient, unit_system, document_set: digest.finalize().into() }
    }
}

/// A bounded, least-recently-used list of computed histories, each under what it was computed
/// from (`K`, compared by `matches`).
struct Lru<K, V = Arc<History>> {
    capacity: usize,
    entries: Mutex<VecDeque<(K, V)>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// How often the cache answered (for tests and the benchmark).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
}

impl<K, V: Clone> Lru<K, V> {
    fn new(capacity: usize) -> Lru<K, V> {
        Lru { capacity, entries: Mutex::new(VecDeque::with_capacity(capacity)), hits: AtomicU64::new(0), misses: AtomicU64::new(0) }
    }

    fn get(&self, matches: impl Fn(&K) -> bool) -> Option<V> {
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let found = entries.iter().position(|(k, _)| matches(k)).and_then(|at| entries.remove(at));
        match found {
            Some(entry) => {
                let history = entry.1.clone();
                entries.push_front(entry);
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(history)
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    fn put(&self, key: K, value: V, same: impl Fn(&K, &K) -> bool) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.retain(|(k, _)| !same(k, &key));
        entries.push_front((key, value));
        entries.truncate(self.capacity);
    }

    fn stats(&self) -> CacheStats {
        CacheStats { hits: self.hits.load(Ordering::Relaxed), misses: self.misses.load(Ordering::Relaxed) }
    }
}

/// What the interface's copy of a history was made from: the computed history itself (held
/// here, so that no other history can ever sit at its address while the entry lives), the
/// treatment targets applied to it, and the zone its times were moved to.
struct ShownKey {
    computed: Arc<History>,
    targets: Vec<TreatmentTarget>,
    zone: LocalZone,
}

impl ShownKey {
    fn same(&self, computed: &Arc<History>, targets: &[TreatmentTarget], zone: LocalZone) -> bool {
        Arc::ptr_eq(&self.computed, computed) && self.targets == targets && self.zone == zone
    }
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
        Ok(Normaliser {
            catalogue,
            transcoding,
            cache: Lru::new(DEFAULT_CACHED_HISTORIES),
            shown: Lru::new(DEFAULT_CACHED_HISTORIES),
            json: Lru::new(DEFAULT_CACHED_HISTORIES),
        })
    }

    /// Keeps at most `capacity` computed histories (0: none).
    pub fn with_cache_capacity(mut self, capacity: usize) -> Normaliser {
        self.cache = Lru::new(capacity);
        self.shown = Lru::new(capacity);
        self.json = Lru::new(capacity);
        self
    }

    /// The analyte catalogue (the FHIR export names converted values with its LOINC codes).
    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    /// How often a computed history came from the cache since start-up.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// How often the interface's copy of a history came from its cache since start-up.
    pub fn shown_cache_stats(&self) -> CacheStats {
        self.shown.stats()
    }

    /// A computed history ([`patient_history`]) as JSON (`docs/normalised-json.md`), written
    /// once per history.
    pub fn json(&self, history: &Arc<History>) -> Result<axum::body::Bytes, serde_json::Error> {
        if let Some(json) = self.json.get(|k| Arc::ptr_eq(k, history)) {
            return Ok(json);
        }
        let json = axum::body::Bytes::from(serde_json::to_vec(history.as_ref())?);
        self.json.put(history.clone(), json.clone(), Arc::ptr_eq);
        Ok(json)
    }

    /// Normalises raw documents (id, bytes, (provenance, bytes intact)) of one patient, whose
    /// identity is the store's.
    pub fn history(
        &self,
        documents: &[(String, Vec<u8>, (Provenance, bool))],
        patient: &PatientIdentity,
        known_identifiers: Vec<bioviewer_core::cda::InstanceId>,
        unit_system: UnitSystem,
    ) -> History {
        let parsed = parse_all(documents);
        let inputs: Vec<InputDocument<'_>> = documents
            .iter()
            .zip(&parsed)
            .map(|((id, _, (provenance, intact)), report)| InputDocument {
                id: id.clone(),
                report: if *intact { report.as_ref().map_err(Clone::clone) } else { Err(ALTERED.to_string()) },
                provenance: *provenance,
            })
            .collect();
        let options = Options {
            patient_ins: Some(format!("{}^{}", patient.ins_root, patient.ins)),
            patient: Some(patient.clone()),
            known_identifiers,
            unit_system,
        };
        normalise(&inputs, &self.catalogue, &self.transcoding, &options)
    }
}

/// Parses every document, on every core: parsing is most of a history's cost (a decade of
/// weekly reports is 5 MB of markup), and the documents are independent. A parser that failed
/// outright (it never should: it is fuzzed) leaves its documents unreadable, not the history.
fn parse_all<T>(documents: &[(String, Vec<u8>, T)]) -> Vec<Result<bioviewer_core::cda::Report, String>>
where
    T: Sync,
{
    let parse = |chunk: &[(String, Vec<u8>, T)]| -> Vec<Result<bioviewer_core::cda::Report, String>> {
        chunk.iter().map(|(_, raw, _)| bioviewer_core::cda::parse(raw).map_err(|e| e.to_string())).collect()
    };
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get).min(8);
    // Below a few dozen documents a thread costs more than it saves.
    if threads < 2 || documents.len() < 32 {
        return parse(documents);
    }
    let chunk = documents.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = documents.chunks(chunk).map(|part| (part.len(), scope.spawn(move || parse(part)))).collect();
        workers
            .into_iter()
            .flat_map(|(len, worker)| {
                worker.join().unwrap_or_else(|_| vec![Err("the parser failed on a document read with this one".to_string()); len])
            })
            .collect()
    })
}

/// The interface's copy of a patient's history: [`patient_history`] with the patient's treatment
/// targets applied ([`bioviewer_core::judge::apply_targets`]: a target changes without any
/// document changing, so they are never part of the computed history) and every report and
/// sampling time in the clinician's `zone` ([`LocalZone::history`]). The exports keep
/// the documents' own offsets and read [`patient_history`]. Kept beside the computed history it
/// was made from, and made again whenever that history, the patient's targets or the zone differ.
pub async fn patient_history_shown(
    store: &dyn Store,
    normaliser: Arc<Normaliser>,
    patient: PatientId,
    unit_system: UnitSystem,
    zone: LocalZone,
) -> Result<Option<Arc<History>>, HistoryError> {
    let Some(computed) = patient_history(store, normaliser.clone(), patient, unit_system).await? else { return Ok(None) };
    let targets = store.treatment_targets(patient).await?;
    if let Some(shown) = normaliser.shown.get(|k| k.same(&computed, &targets, zone)) {
        return Ok(Some(shown));
    }
    let mut shown = (*computed).clone();
    if !targets.is_empty() {
        bioviewer_core::judge::apply_targets(&mut shown, targets.clone(), normaliser.catalogue());
    }
    zone.history(&mut shown);
    let shown = Arc::new(shown);
    normaliser.shown.put(ShownKey { computed, targets, zone }, shown.clone(), |a, b| a.same(&b.computed, &b.targets, b.zone));
    Ok(Some(shown))
}

/// The history of a stored patient, or `None` when there is no such patient. Served from the
/// cache when the patient's documents are the ones it was computed from.
pub async fn patient_history(
    store: &dyn Store,
    normaliser: Arc<Normaliser>,
    patient: PatientId,
    unit_system: UnitSystem,
) -> Result<Option<Arc<History>>, HistoryError> {
    let Some(record) = store.patient(patient).await? else { return Ok(None) };
    let identity = record.identity();
    let identifiers: Vec<bioviewer_core::cda::InstanceId> =
        store.patient_identifiers(patient).await?.iter().map(crate::store::PatientIdentifier::instance_id).collect();
    let document_set = store.patient_document_set(patient).await?;
    let key = CacheKey::new(patient, &identity, &identifiers, unit_system, &document_set);
    if let Some(history) = normaliser.cache.get(|k| *k == key) {
        tracing::debug!(patient = %patient, "history from the cache");
        return Ok(Some(history));
    }
    let raw = store.patient_raw_documents(patient).await?;
    // A document imported between the two reads (a DMP sync running) would make the history
    // newer than its key: it is still right to show, but not cached under the older key.
    let same_set =
        raw.len() == document_set.len() && raw.iter().zip(&document_set).all(|(a, b)| a.id == b.id && a.provenance == b.provenance);
    if raw.iter().any(|d| !d.intact) {
        tracing::error!(patient = %patient, "ALARM: stored document bytes no longer match their digest");
    }
    let documents: Vec<(String, Vec<u8>, (Provenance, bool))> =
        raw.into_iter().map(|d| (d.id.to_string(), d.raw, (d.provenance, d.intact))).collect();
    let span = tracing::info_span!("history", patient = %patient, documents = documents.len());
    let worker = normaliser.clone();
    let history = tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        worker.history(&documents, &identity, identifiers, unit_system)
    })
    .await
    .map_err(|e| HistoryError::Task(e.to_string()))?;
    let history = Arc::new(history);
    if same_set {
        normaliser.cache.put(key, history.clone(), |a, b| a == b);
    }
    Ok(Some(history))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parsing on several threads gives every document its own report, in order.
    #[test]
    fn documents_parsed_in_parallel_keep_their_order() {
        let end = bioviewer_core::cda::CdaTime::parse_hl7("20261101").unwrap().epoch_seconds() / 86_400;
        let mut documents: Vec<(String, Vec<u8>, ())> = bioviewer_core::demo::generate(3, 3, 5, end)
            .iter()
            .enumerate()
            .map(|(i, d)| (format!("d{i}"), bioviewer_core::cda::writer::write_cr_bio(&d.report).into_bytes(), ()))
            .collect();
        documents.insert(17, ("broken".into(), b"<ClinicalDocument><id".to_vec(), ()));
        assert!(documents.len() >= 64, "enough documents for several threads: {}", documents.len());
        let parallel = parse_all(&documents);
        assert_eq!(parallel.len(), documents.len());
        for ((id, raw, _), report) in documents.iter().zip(&parallel) {
            assert_eq!(report, &bioviewer_core::cda::parse(raw).map_err(|e| e.to_string()), "{id}");
        }
        assert!(parallel[17].is_err(), "the broken document stays unreadable, alone");
    }
}
