//! Incremental sync of one patient from the DMP: only documents whose uniqueId is new are
//! retrieved (replaced versions, Deprecated in the registry, are not); retrieves run a few at a
//! time; each document's raw bytes are stored as received, before and whatever the parse, by
//! the same path as file imports. A batch that fails for good is reported and the others go on.

use futures_util::StreamExt as _;

use std::collections::HashMap;

use super::client::{DmpClient, DmpError, PatientQuery, Requester};
use super::xds::RegistryEntry;
use crate::import::import_bytes;
use crate::store::{DocumentSource, Store};

/// Documents per ITI-43 request, and requests in flight.
const BATCH: usize = 10;
const CONCURRENT: usize = 4;

/// What a sync did (counts only: safe to log and show).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SyncReport {
    /// Entries the registry listed (current and replaced).
    pub found: usize,
    /// Replaced versions (Deprecated), not retrieved.
    pub deprecated: usize,
    /// Documents (distinct uniqueIds) the store already held.
    pub already_stored: usize,
    /// Documents the repository sent (each uniqueId asked for once).
    pub fetched: usize,
    /// Documents written: only those inserted by this sync.
    pub stored: usize,
    /// uniqueIds that could not be retrieved or were refused (bytes not matching their registry
    /// entry's size or hash), with the reason.
    pub failed: Vec<(String, String)>,
    /// The registry answered PartialSuccess: some entries may be missing.
    pub partial: bool,
}

/// Syncs one patient; `progress` sees the report after each step.
pub async fn sync_patient(
    client: &DmpClient,
    store: &dyn Store,
    requester: &Requester,
    patient: &PatientQuery,
    progress: &mut (dyn FnMut(&SyncReport) + Send),
) -> Result<SyncReport, DmpError> {
    if !client.patient_has_dmp(requester, patient).await? {
        return Err(DmpError::NoDmp);
    }
    let found = client.find_documents(requester, patient).await?;
    let mut report = SyncReport { found: found.entries.len(), partial: found.partial, ..SyncReport::default() };
    let current: Vec<&RegistryEntry> = found.entries.iter().filter(|e| !e.is_deprecated()).collect();
    report.deprecated = report.found - current.len();
    // One document per uniqueId, however many entries list it (the national example set has
    // documents sharing a CDA id): asked for once, checked against its first entry, counted once.
    let mut entries: HashMap<&str, &RegistryEntry> = HashMap::new();
    let mut ids: Vec<String> = Vec::new();
    for entry in &current {
        if let Some(id) = entry.unique_id.as_deref()
            && entries.insert(id, entry).is_none()
        {
            ids.push(id.to_string());
        }
    }
    let stored = store.stored_cda_ids(patient.ins.clone(), ids.clone()).await.map_err(|e| DmpError::Unreachable(format!("store: {e}")))?;
    let wanted: Vec<(String, String)> = ids
        .iter()
        .filter(|id| !stored.contains(*id))
        .map(|id| (entries[id.as_str()].repository_unique_id.clone().unwrap_or_default(), id.clone()))
        .collect();
    report.already_stored = ids.len() - wanted.len();
    progress(&report);
    let batches: Vec<Vec<(String, String)>> = wanted.chunks(BATCH).map(<[_]>::to_vec).collect();
    let mut answers = futures_util::stream::iter(batches)
        .map(|batch| async move {
            let result = client.retrieve(requester, patient, &batch).await;
            (batch, result)
        })
        .buffer_unordered(CONCURRENT);
    while let Some((batch, result)) = answers.next().await {
        match result {
            Err(e) => report.failed.extend(batch.into_iter().map(|(_, id)| (id, e.to_string()))),
            Ok(retrieved) => {
                let mut missing: Vec<(String, String)> = batch;
                for document in retrieved.documents {
                    // Only what this request asked for, once: an extra or repeated document is
                    // not a registry entry's, and is not stored as the DMP's.
                    let Some(position) = missing.iter().position(|(_, id)| *id == document.unique_id) else {
                        tracing::warn!("the repository sent a document that was not asked for; ignored");
                        continue;
                    };
                    let (repository, _) = missing.swap_remove(position);
                    report.fetched += 1;
                    // The bytes must be the document the registry describes (size and SHA-1).
                    if let Err(mismatch) = entries[document.unique_id.as_str()].check(&document.bytes) {
                        tracing::warn!(error = %mismatch, "retrieved document refused");
                        report.failed.push((document.unique_id, mismatch.to_string()));
                        continue;
                    }
                    // The DMP returned it for this patient: it is theirs whatever its header names.
                    let source = DocumentSource::Dmp {
                        entry: Some(format!("{repository}^{}", document.unique_id)),
                        for_patient: crate::domain::Ins::new(&patient.ins_oid, &patient.ins).ok(),
                    };
                    match import_bytes(store, &document.unique_id, document.bytes, source).await {
                        Ok(outcome) if outcome.already_present => report.already_stored += 1,
                        Ok(_) => report.stored += 1,
                        Err(e) => report.failed.push((document.unique_id, e.to_string())),
                    }
                }
                report.failed.extend(missing.into_iter().map(|(_, id)| (id, "not returned by the repository".to_string())));
            }
        }
        progress(&report);
    }
    Ok(report)
}

/// The last sync of a patient, for the patient's page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncState {
    /// RFC 3339, UTC: when the last successful sync finished (empty before the first).
    pub at: String,
    pub report: Option<SyncReport>,
    /// The failure, in words for people (no health data).
    pub error: Option<String>,
    pub running: bool,
}

/// Background syncs: at most one at a time per patient, not more often than every few minutes.
pub struct DmpService {
    client: DmpClient,
    store: std::sync::Arc<dyn Store>,
    states: std::sync::Mutex<std::collections::HashMap<crate::domain::PatientId, (std::time::Instant, SyncState)>>,
    min_interval: std::time::Duration,
    /// Computes the history of a patient whose sync brought documents, before the page is told
    /// the sync is over, so that the page it reloads finds it ready.
    warm: Option<std::sync::Arc<crate::history::Normaliser>>,
}

impl DmpService {
    pub fn new(client: DmpClient, store: std::sync::Arc<dyn Store>) -> DmpService {
        DmpService { client, store, states: Default::default(), min_interval: std::time::Duration::from_secs(300), warm: None }
    }

    /// Computes (and caches) the history of a patient right after a sync that stored documents.
    pub fn warming(mut self, normaliser: std::sync::Arc<crate::history::Normaliser>) -> DmpService {
        self.warm = Some(normaliser);
        self
    }

    /// Whether the DMP behind this service is the simulator (see `DmpClient::is_simulator`).
    pub fn is_simulator(&self) -> bool {
        self.client.is_simulator()
    }

    pub fn state(&self, patient: crate::domain::PatientId) -> Option<SyncState> {
        self.states.lock().unwrap_or_else(|e| e.into_inner()).get(&patient).map(|(_, s)| s.clone())
    }

    /// Starts a sync in the background unless one ran recently or is running. Returns whether
    /// one was started.
    pub fn start(self: &std::sync::Arc<Self>, patient: crate::domain::PatientId, requester: Requester, query: PatientQuery) -> bool {
        {
            let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((when, state)) = states.get(&patient)
                && (state.running || when.elapsed() < self.min_interval)
            {
                return false;
            }
            let previous = states.get(&patient).map(|(_, s)| s.clone());
            states.insert(
                patient,
                (
                    std::time::Instant::now(),
                    SyncState {
                        running: true,
                        at: previous.as_ref().map(|p| p.at.clone()).unwrap_or_default(),
                        report: previous.and_then(|p| p.report),
                        error: None,
                    },
                ),
            );
        }
        let this = self.clone();
        tokio::spawn(async move {
            let span = tracing::info_span!("dmp_sync", patient = %patient);
            let _enter = span.enter();
            // Progress shows on the patient's page while the sync runs.
            let progress_states = this.clone();
            let mut on_progress = move |report: &SyncReport| {
                if let Some((_, state)) = progress_states.states.lock().unwrap_or_else(|e| e.into_inner()).get_mut(&patient) {
                    state.report = Some(report.clone());
                }
            };
            let result = sync_patient(&this.client, this.store.as_ref(), &requester, &query, &mut on_progress).await;
            if let (Ok(report), Some(normaliser)) = (&result, &this.warm)
                && report.stored > 0
            {
                let unit_system = bioviewer_core::catalogue::UnitSystem::Si;
                if let Err(e) = crate::history::patient_history(this.store.as_ref(), normaliser.clone(), patient, unit_system).await {
                    tracing::warn!(error = %e, "history after the sync failed");
                }
            }
            let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let state = match result {
                Ok(report) => {
                    tracing::info!(found = report.found, stored = report.stored, failed = report.failed.len(), "DMP sync done");
                    SyncState { at, report: Some(report), error: None, running: false }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "DMP sync failed");
                    // The time shown stays the last successful sync's.
                    let last_success = this.state(patient).map(|s| s.at).unwrap_or_default();
                    SyncState { at: last_success, report: None, error: Some(e.to_string()), running: false }
                }
            };
            this.states.lock().unwrap_or_else(|e| e.into_inner()).insert(patient, (std::time::Instant::now(), state));
        });
        true
    }
}
