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
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

/// How long a sync's lease lasts unless renewed, and how often the running instance renews it:
/// an instance that dies mid-sync leaves the patient's sync to another within a minute.
const LEASE: std::time::Duration = std::time::Duration::from_secs(60);
const RENEW_EVERY: std::time::Duration = std::time::Duration::from_secs(15);

/// Whether a sync of this patient may start now, given the shared record of the last one: not
/// while another instance holds a live lease; a lapsed lease (its instance died) is taken over;
/// not again within `min_interval` seconds of the last end, success or failure.
pub fn may_start(record: Option<&crate::store::DmpSyncRecord>, now: i64, min_interval: i64) -> bool {
    let Some(record) = record else { return true };
    match &record.holder {
        Some(_) => record.lease_until <= now,
        None => record.finished_at.is_none_or(|end| now >= end + min_interval),
    }
}

/// The page's view of the shared record.
fn state_of(record: &crate::store::DmpSyncRecord, now: i64) -> SyncState {
    SyncState {
        at: record.succeeded_at.clone(),
        report: record.report_json.as_deref().and_then(|json| serde_json::from_str(json).ok()),
        error: record.error.clone(),
        running: record.holder.is_some() && record.lease_until > now,
    }
}

fn now_epoch() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The latest progress report of a running sync, shared with the lease's renewals.
#[derive(Clone, Default)]
pub struct LatestReport(std::sync::Arc<std::sync::Mutex<Option<SyncReport>>>);

impl LatestReport {
    pub fn set(&self, report: &SyncReport) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(report.clone());
    }

    fn json(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).as_ref().and_then(|r| serde_json::to_string(r).ok())
    }
}

/// Runs a sync whose lease `holder` took, renewing the lease (with the latest progress) while
/// it runs.
pub async fn holding_lease(
    store: &dyn Store,
    patient: crate::domain::PatientId,
    holder: &str,
    latest: &LatestReport,
    sync: impl std::future::Future<Output = Result<SyncReport, DmpError>>,
) -> Result<SyncReport, DmpError> {
    tokio::pin!(sync);
    let mut renew = tokio::time::interval(RENEW_EVERY);
    renew.tick().await;
    loop {
        tokio::select! {
            result = &mut sync => return result,
            _ = renew.tick() => {
                let until = now_epoch() + LEASE.as_secs() as i64;
                match store.renew_dmp_sync_lease(patient, holder.to_string(), until, latest.json()).await {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!("the DMP sync lease was taken over by another instance"),
                    Err(e) => tracing::warn!(error = %e, "renewing the DMP sync lease failed"),
                }
            }
        }
    }
}

/// Takes the patient's sync lease for `holder` (see [`may_start`]).
pub async fn take_lease(store: &dyn Store, patient: crate::domain::PatientId, holder: &str, min_interval: std::time::Duration) -> bool {
    let now = now_epoch();
    match store.take_dmp_sync_lease(patient, holder.to_string(), now, now + LEASE.as_secs() as i64, min_interval.as_secs() as i64).await {
        Ok(taken) => taken,
        Err(e) => {
            tracing::error!(error = %e, "taking a DMP sync lease failed");
            false
        }
    }
}

/// Records the end of the sync `holder` ran and releases its lease.
pub async fn finish(store: &dyn Store, patient: crate::domain::PatientId, holder: &str, result: &Result<SyncReport, DmpError>) {
    let outcome = match result {
        Ok(report) => {
            tracing::info!(found = report.found, stored = report.stored, failed = report.failed.len(), "DMP sync done");
            Ok(serde_json::to_string(report).unwrap_or_default())
        }
        Err(e) => {
            tracing::warn!(error = %e, "DMP sync failed");
            Err(e.to_string())
        }
    };
    match store.finish_dmp_sync(patient, holder.to_string(), now_epoch(), outcome).await {
        Ok(true) => {}
        Ok(false) => tracing::warn!("a DMP sync ended after another instance took its lease over"),
        Err(e) => tracing::error!(error = %e, "recording the end of a DMP sync failed"),
    }
}

/// Background syncs: at most one at a time per patient across every instance on the database
/// (a lease in the `dmp_syncs` table), not more often than every few minutes.
pub struct DmpService {
    client: DmpClient,
    store: std::sync::Arc<dyn Store>,
    /// This instance, as lease holder.
    instance: String,
    min_interval: std::time::Duration,
    /// Computes the history of a patient whose sync brought documents, before the page is told
    /// the sync is over, so that the page it reloads finds it ready.
    warm: Option<std::sync::Arc<crate::history::Normaliser>>,
}

impl DmpService {
    pub fn new(client: DmpClient, store: std::sync::Arc<dyn Store>) -> DmpService {
        DmpService {
            client,
            store,
            instance: uuid::Uuid::new_v4().to_string(),
            min_interval: std::time::Duration::from_secs(300),
            warm: None,
        }
    }

    /// Computes (and caches) the history of a patient right after a sync that stored documents.
    pub fn warming(mut self, normaliser: std::sync::Arc<crate::history::Normaliser>) -> DmpService {
        self.warm = Some(normaliser);
        self
    }

    /// The least time between two syncs of one patient (five minutes unless set).
    pub fn min_interval(mut self, interval: std::time::Duration) -> DmpService {
        self.min_interval = interval;
        self
    }

    /// Whether the DMP behind this service is the simulator (see `DmpClient::is_simulator`).
    pub fn is_simulator(&self) -> bool {
        self.client.is_simulator()
    }

    /// The patient's last (or running) sync, whichever instance ran it.
    pub async fn state(&self, patient: crate::domain::PatientId) -> Option<SyncState> {
        match self.store.dmp_sync(patient).await {
            Ok(record) => record.map(|r| state_of(&r, now_epoch())),
            Err(e) => {
                tracing::error!(error = %e, "reading a DMP sync state failed");
                None
            }
        }
    }

    /// Starts a sync in the background unless one runs (on any instance) or ran recently.
    /// Returns whether one was started.
    pub async fn start(self: &std::sync::Arc<Self>, patient: crate::domain::PatientId, requester: Requester, query: PatientQuery) -> bool {
        if !take_lease(self.store.as_ref(), patient, &self.instance, self.min_interval).await {
            return false;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let span = tracing::info_span!("dmp_sync", patient = %patient);
            let _enter = span.enter();
            // Progress shows on every instance's page while the sync runs: the latest report is
            // written with each renewal of the lease.
            let latest = LatestReport::default();
            let progress = latest.clone();
            let mut on_progress = move |report: &SyncReport| progress.set(report);
            let sync = sync_patient(&this.client, this.store.as_ref(), &requester, &query, &mut on_progress);
            let result = holding_lease(this.store.as_ref(), patient, &this.instance, &latest, sync).await;
            if let (Ok(report), Some(normaliser)) = (&result, &this.warm)
                && report.stored > 0
            {
                let unit_system = bioviewer_core::catalogue::UnitSystem::Si;
                if let Err(e) = crate::history::patient_history(this.store.as_ref(), normaliser.clone(), patient, unit_system).await {
                    tracing::warn!(error = %e, "history after the sync failed");
                }
            }
            finish(this.store.as_ref(), patient, &this.instance, &result).await;
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::DmpSyncRecord;

    fn record(holder: Option<&str>, lease_until: i64, finished_at: Option<i64>) -> DmpSyncRecord {
        DmpSyncRecord {
            holder: holder.map(str::to_string),
            lease_until,
            started_at: 0,
            finished_at,
            succeeded_at: String::new(),
            report_json: None,
            error: None,
        }
    }

    #[test]
    fn one_sync_at_a_time_and_a_dead_instances_lease_is_taken_over() {
        assert!(may_start(None, 1_000, 300), "never synced");
        assert!(!may_start(Some(&record(Some("a"), 1_060, None)), 1_000, 300), "another instance runs it");
        assert!(may_start(Some(&record(Some("a"), 999, None)), 1_000, 300), "its instance died: the lease lapsed");
        assert!(!may_start(Some(&record(None, 0, Some(900))), 1_000, 300), "ran five minutes ago at most");
        assert!(may_start(Some(&record(None, 0, Some(700))), 1_000, 300), "ran long enough ago");
    }

    #[test]
    fn the_page_shows_a_lapsed_lease_as_not_running() {
        let mut r = record(Some("a"), 1_060, None);
        r.succeeded_at = "2026-12-03T10:00:00Z".into();
        r.report_json = Some(r#"{"found":3,"deprecated":0,"already_stored":1,"fetched":2,"stored":2,"failed":[],"partial":false}"#.into());
        let state = state_of(&r, 1_000);
        assert!(state.running);
        assert_eq!(state.report.as_ref().map(|r| r.stored), Some(2));
        assert_eq!(state.at, "2026-12-03T10:00:00Z");
        assert!(!state_of(&r, 1_061).running);
    }
}
