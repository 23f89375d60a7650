//! The `Store` port: where patients and source documents are kept.
//!
//! The trait is object-safe (boxed futures) so the server holds one `Arc<dyn Store>` whatever the
//! database; [`sql::SqlStore`] implements it over SQLite (the embedded default) and PostgreSQL, which
//! share their SQL (see [`db`]). Invariants every implementation keeps:
//! - a document and its raw bytes are written in one transaction (never half-written);
//! - raw bytes are stored verbatim, identified by their SHA-256; importing the same bytes twice
//!   stores them once;
//! - a patient is keyed by (INS OID, INS); a document is attached to at most one patient.

pub mod copy;
pub mod db;
pub mod sql;

use std::future::Future;
use std::pin::Pin;

use bioviewer_core::cda::{CdaTime, DocumentKind, IdentifierKind, ReportStatus, Sex};
pub use bioviewer_core::normalise::Provenance;
use uuid::Uuid;

use crate::domain::{DocumentId, Ins, PatientId};

pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("could not open the database at {url}: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error while {operation}: {source}")]
    Query { operation: &'static str, source: sqlx::Error },
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("backup to {path}: {reason}")]
    Backup { path: String, reason: &'static str },
}

impl StoreError {
    /// A failure worth running the transaction again (see [`db::is_transient`]).
    pub(crate) fn is_transient(&self) -> bool {
        matches!(self, StoreError::Query { source, .. } if db::is_transient(source))
    }

    pub(crate) fn query(operation: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
        move |source| StoreError::Query { operation, source }
    }
}

/// A sync report as stored (JSON of [`crate::dmp::sync::SyncReport`]).
pub type SyncReportJson = String;

/// The shared record of one patient's DMP sync (table `dmp_syncs`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DmpSyncRecord {
    /// The instance running it now, if any (its lease may have lapsed: see `lease_until`).
    pub holder: Option<String>,
    pub lease_until: i64,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    /// RFC 3339 UTC of the last success; empty before the first.
    pub succeeded_at: String,
    pub report_json: Option<SyncReportJson>,
    pub error: Option<String>,
}

/// Where a document came from: its provenance, which alone decides what it may do (grant a
/// prescriber's access, set the patient's identity, replace another version, stop a DMP
/// document from being retrieved). What the document says is never a right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocumentSource {
    /// Retrieved from a patient's DMP, for this registry entry (`repositoryUniqueId^uniqueId`),
    /// in answer to a query for the patient of this INS: the document is that patient's
    /// whatever identifier its header carries (unless it contradicts them: the history then
    /// rejects it and shows why).
    Dmp { entry: Option<String>, for_patient: Option<Ins> },
    /// Imported by the operator (`bioviewer import`: shell access to the server).
    Operator,
    /// Uploaded through the web application by this account.
    Upload { by: Uuid },
}

impl DocumentSource {
    pub fn as_str(&self) -> &'static str {
        provenance_str(self.provenance())
    }

    pub fn provenance(&self) -> Provenance {
        match self {
            DocumentSource::Dmp { .. } => Provenance::Dmp,
            DocumentSource::Operator => Provenance::Operator,
            DocumentSource::Upload { .. } => Provenance::Upload,
        }
    }
}

pub(crate) fn provenance_str(provenance: Provenance) -> &'static str {
    match provenance {
        Provenance::Dmp => "dmp",
        Provenance::Operator => "operator",
        Provenance::Upload => "upload",
    }
}

/// The provenance a stored `source` column says; an unknown value is the least trusted.
pub(crate) fn provenance_from_str(s: &str) -> Provenance {
    match s {
        "dmp" => Provenance::Dmp,
        "operator" | "file" => Provenance::Operator,
        _ => Provenance::Upload,
    }
}

/// Identity of a patient as a document states it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPatient {
    /// The identifier the document names the patient by: its INS when it has one.
    pub key: PatientKey,
    /// The document's other patient identifiers (INS-C, NIR without key, local ids).
    pub other_ids: Vec<PatientIdentifier>,
    pub family_name: Option<String>,
    pub given_names: Option<String>,
    pub birth_date: Option<CdaTime>,
    pub sex: Option<Sex>,
}

/// How a document names its patient.
#[derive(Debug, Clone, PartialEq)]
pub enum PatientKey {
    /// A valid INS (its key checked).
    Ins(Ins),
    /// No INS: an INS-C, a local id... (a record created under it is marked "no INS").
    Other(PatientIdentifier),
}

impl PatientKey {
    pub fn authority(&self) -> &str {
        match self {
            PatientKey::Ins(ins) => ins.oid(),
            PatientKey::Other(id) => &id.authority,
        }
    }

    pub fn value(&self) -> &str {
        match self {
            PatientKey::Ins(ins) => ins.value(),
            PatientKey::Other(id) => &id.value,
        }
    }

    pub fn kind(&self) -> IdentifierKind {
        match self {
            PatientKey::Ins(_) => IdentifierKind::Ins,
            PatientKey::Other(id) => id.kind,
        }
    }
}

/// One patient identifier: authority (OID), value, and what kind it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PatientIdentifier {
    pub authority: String,
    pub value: String,
    pub kind: IdentifierKind,
}

impl PatientIdentifier {
    pub fn of(id: &bioviewer_core::cda::InstanceId) -> Option<PatientIdentifier> {
        let value = id.extension.as_deref()?.trim();
        (!value.is_empty() && !id.root.trim().is_empty()).then(|| PatientIdentifier {
            authority: id.root.trim().to_string(),
            value: value.to_string(),
            kind: id.patient_identifier_kind(),
        })
    }

    /// An identifier as a person types it: `ROOT^VALUE`, an INS (15 characters: any INS
    /// authority) or an INS-C (22 digits).
    pub fn parse(typed: &str) -> Option<PatientIdentifier> {
        let typed: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
        let instance = match typed.split_once('^') {
            Some((root, value)) => bioviewer_core::cda::InstanceId { root: root.into(), extension: Some(value.into()) },
            None if typed.len() == 15 => bioviewer_core::cda::InstanceId { root: "1.2.250.1.213.1.4.8".into(), extension: Some(typed) },
            None if typed.len() == 22 && typed.bytes().all(|b| b.is_ascii_digit()) => {
                bioviewer_core::cda::InstanceId { root: "1.2.250.1.213.1.4.2".into(), extension: Some(typed) }
            }
            None => return None,
        };
        PatientIdentifier::of(&instance)
    }

    pub fn instance_id(&self) -> bioviewer_core::cda::InstanceId {
        bioviewer_core::cda::InstanceId { root: self.authority.clone(), extension: Some(self.value.clone()) }
    }
}

pub(crate) fn identifier_kind_str(kind: IdentifierKind) -> &'static str {
    match kind {
        IdentifierKind::Ins => "ins",
        IdentifierKind::InsC => "ins_c",
        IdentifierKind::NirWithoutKey => "nir_without_key",
        IdentifierKind::Local => "local",
    }
}

/// What the header of a readable document says, for listing and ordering.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentIndex {
    pub kind: DocumentKind,
    pub cda_id: Option<String>,
    pub set_id: Option<String>,
    pub version_number: Option<u32>,
    pub report_status: Option<ReportStatus>,
    pub title: Option<String>,
    pub laboratory: Option<String>,
    pub effective_time: Option<CdaTime>,
    /// The prescriber's national id (`root^extension`): prescribing one of a patient's reports
    /// is a care relationship.
    pub prescriber_id: Option<String>,
}

/// A document to store.
#[derive(Debug, Clone)]
pub struct NewDocument {
    pub raw: Vec<u8>,
    pub source: DocumentSource,
    /// A name for people (the file name), never used as a key.
    pub source_name: Option<String>,
    /// `None` when the document could not be parsed; `parse_error` then says why.
    pub index: Option<DocumentIndex>,
    pub parse_error: Option<String>,
    /// The same as a code the interface translates (`kind:line:column`).
    pub parse_error_code: Option<String>,
    pub patient: Option<NewPatient>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    Inserted {
        document: DocumentId,
        patient: Option<PatientId>,
        /// Why it went to no patient, when its identifiers could not decide.
        unattributed: Option<&'static str>,
    },
    /// The same bytes were already stored.
    AlreadyPresent { document: DocumentId },
}

#[derive(Debug, Clone, PartialEq)]
pub struct PatientRecord {
    pub id: PatientId,
    /// The record's key: its INS, or for a record known by no INS the identifier it was
    /// created under (see [`PatientRecord::has_ins`]).
    pub ins_root: String,
    pub ins: String,
    pub family_name: Option<String>,
    pub given_names: Option<String>,
    pub birth_date: Option<CdaTime>,
    pub sex: Option<Sex>,
    pub document_count: u32,
    /// Where the identity above was learned.
    pub identity_source: Provenance,
}

impl PatientRecord {
    /// Whether the record is keyed by an INS (else: an INS-C or another identifier, "no INS").
    pub fn has_ins(&self) -> bool {
        IdentifierKind::of(&self.ins_root, &self.ins) == IdentifierKind::Ins
    }

    /// The identity the history shows and checks every document against.
    pub fn identity(&self) -> bioviewer_core::normalise::PatientIdentity {
        bioviewer_core::normalise::PatientIdentity {
            ins: self.ins.clone(),
            ins_root: self.ins_root.clone(),
            family_name: self.family_name.clone(),
            given_name: self.given_names.clone(),
            birth_date: self.birth_date,
            sex: self.sex,
        }
    }
}

/// A stored document's bytes with what the normaliser needs to know of its provenance.
#[derive(Debug, Clone)]
pub struct RawDocument {
    pub id: DocumentId,
    pub raw: Vec<u8>,
    pub provenance: Provenance,
    /// The bytes still hash to the SHA-256 recorded when they arrived (`false`: altered in the
    /// database since; the history shows the document as unreadable, saying so).
    pub intact: bool,
}

/// What the history cache keys on for one document: its id, the SHA-256 of its bytes and its
/// provenance (identical bytes retrieved from the DMP after an upload raise its provenance).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentFingerprint {
    pub id: DocumentId,
    pub sha256: String,
    pub provenance: Provenance,
}

/// Something about a patient's identity the operator must look at (no names, no dates).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IdentityAlert {
    pub patient_id: String,
    pub document_id: Option<String>,
    pub kind: String,
    pub detail: Option<String>,
    pub at: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DocumentRecord {
    pub id: DocumentId,
    pub patient_id: Option<PatientId>,
    pub size_bytes: u64,
    pub source: String,
    pub provenance: Provenance,
    /// The uploader's display name (uploads only).
    pub uploaded_by: Option<String>,
    pub source_name: Option<String>,
    pub index: Option<DocumentIndex>,
    pub parse_error: Option<String>,
    pub parse_error_code: Option<String>,
    /// RFC 3339, UTC.
    pub imported_at: String,
}

pub trait Store: Send + Sync + 'static {
    /// The newest applied migration.
    fn schema_version(&self) -> StoreFuture<'_, i64>;
    /// Stores a document (and creates or updates its patient) atomically.
    fn store_document(&self, document: NewDocument) -> StoreFuture<'_, Stored>;
    fn list_patients(&self) -> StoreFuture<'_, Vec<PatientRecord>>;
    fn patient(&self, id: PatientId) -> StoreFuture<'_, Option<PatientRecord>>;
    /// A patient's documents (and those of the records linked to theirs), newest report first.
    fn patient_documents(&self, id: PatientId) -> StoreFuture<'_, Vec<DocumentRecord>>;
    /// One document of this patient; `None` when it does not exist or is another patient's.
    fn patient_document(&self, patient: PatientId, document: DocumentId) -> StoreFuture<'_, Option<DocumentRecord>>;
    /// The raw bytes exactly as received.
    fn document_raw(&self, id: DocumentId) -> StoreFuture<'_, Option<Vec<u8>>>;
    /// Which of these CDA ids (`root^extension`, the DMP's uniqueId) are stored already, from a
    /// trusted source (the DMP, the operator), in the record of the patient with this INS
    /// number: an uploaded copy never stops a sync from retrieving the laboratory's document,
    /// and one filed with another record (an INS-C record imported earlier) is retrieved, and so
    /// refiled with the patient the DMP was asked about.
    fn stored_cda_ids(&self, patient_ins: String, ids: Vec<String>) -> StoreFuture<'_, std::collections::HashSet<String>>;
    /// Every document of a patient with its raw bytes (for normalisation), oldest import first.
    fn patient_raw_documents(&self, id: PatientId) -> StoreFuture<'_, Vec<RawDocument>>;
    /// The same documents as [`Store::patient_raw_documents`], in the same order, without the
    /// bytes: what the history cache keys on.
    fn patient_document_set(&self, id: PatientId) -> StoreFuture<'_, Vec<DocumentFingerprint>>;
    /// Identity alerts for the operator, newest first.
    fn identity_alerts(&self) -> StoreFuture<'_, Vec<IdentityAlert>>;
    /// Every identifier this patient (and the records linked to theirs) is known by.
    fn patient_identifiers(&self, id: PatientId) -> StoreFuture<'_, Vec<PatientIdentifier>>;
    /// The shared record of a patient's DMP sync (every instance on this database sees it).
    fn dmp_sync(&self, patient: PatientId) -> StoreFuture<'_, Option<DmpSyncRecord>>;
    /// Takes the patient's sync lease for `holder` until `lease_until` when
    /// [`crate::dmp::sync::may_start`] allows it over the stored record, atomically (two
    /// instances asking together: one gets it). `true`: this holder runs the sync.
    fn take_dmp_sync_lease(
        &self,
        patient: PatientId,
        holder: String,
        now: i64,
        lease_until: i64,
        min_interval: i64,
    ) -> StoreFuture<'_, bool>;
    /// Renews the lease and records the progress, if `holder` still holds it (`false`: lost).
    fn renew_dmp_sync_lease(
        &self,
        patient: PatientId,
        holder: String,
        lease_until: i64,
        report: Option<SyncReportJson>,
    ) -> StoreFuture<'_, bool>;
    /// Ends the sync `holder` ran: its report (success, `succeeded_at` set) or its failure; the
    /// lease is released. Nothing is written if another instance took the lease over meanwhile.
    fn finish_dmp_sync(
        &self,
        patient: PatientId,
        holder: String,
        now: i64,
        outcome: Result<SyncReportJson, String>,
    ) -> StoreFuture<'_, bool>;
    /// These patients with their identifiers, as [`Store::patient`] and
    /// [`Store::patient_identifiers`] give them one by one, in two queries whatever their number
    /// (a GP's list of 1,500 patients); unknown ids are left out.
    fn patients_with_identifiers(&self, ids: Vec<PatientId>) -> StoreFuture<'_, Vec<(PatientRecord, Vec<PatientIdentifier>)>>;
    /// The record known by this identifier: an INS number under any INS authority, or
    /// (authority, value) of any other identifier.
    fn patient_by_identifier(&self, id: PatientIdentifier) -> StoreFuture<'_, Option<PatientId>>;
    /// The records linked to this one now.
    fn linked_patients(&self, id: PatientId) -> StoreFuture<'_, Vec<PatientId>>;
    /// Links two records of one person (`by`: the account, `None` for the operator); `false`
    /// when they were linked already.
    fn link_patients(&self, a: PatientId, b: PatientId, by: Option<Uuid>) -> StoreFuture<'_, bool>;
    /// Ends the link between two records; `false` when there was none.
    fn unlink_patients(&self, a: PatientId, b: PatientId, by: Option<Uuid>) -> StoreFuture<'_, bool>;
    /// The patient's current treatment targets (one per analyte), with who set them, by analyte.
    fn treatment_targets(&self, patient: PatientId) -> StoreFuture<'_, Vec<bioviewer_core::judge::TreatmentTarget>>;
    /// Sets the patient's target for an analyte (ending the current one, in one transaction).
    fn set_treatment_target(&self, patient: PatientId, target: NewTarget) -> StoreFuture<'_, ()>;
    /// Ends the patient's target for an analyte; `false` when there was none.
    fn end_treatment_target(&self, patient: PatientId, analyte: String, by: Uuid) -> StoreFuture<'_, bool>;
    /// Keeps what each file of an upload became (JSON), under a new random token, for
    /// `ttl_seconds`; older outcomes are deleted meanwhile.
    fn put_upload_outcome(&self, account: Uuid, files_json: String, now: i64, ttl_seconds: i64) -> StoreFuture<'_, String>;
    /// An upload's outcome (JSON) under `token`, for the account that uploaded only, while
    /// younger than `ttl_seconds`.
    fn upload_outcome(&self, account: Uuid, token: String, now: i64, ttl_seconds: i64) -> StoreFuture<'_, Option<String>>;
}

/// A treatment target to store (bounds checked by `bioviewer_core::judge::parse_target`).
#[derive(Debug, Clone)]
pub struct NewTarget {
    pub analyte: String,
    pub low: Option<bioviewer_core::cda::Decimal>,
    pub high: Option<bioviewer_core::cda::Decimal>,
    pub unit: Option<String>,
    pub by: Uuid,
}

pub(crate) fn sex_to_str(sex: Sex) -> &'static str {
    match sex {
        Sex::Female => "female",
        Sex::Male => "male",
        Sex::Undetermined => "undetermined",
    }
}

pub(crate) fn sex_from_str(s: &str) -> Option<Sex> {
    Some(match s {
        "female" => Sex::Female,
        "male" => Sex::Male,
        "undetermined" => Sex::Undetermined,
        _ => return None,
    })
}

pub(crate) fn kind_to_str(kind: DocumentKind) -> &'static str {
    match kind {
        DocumentKind::CrBioStructured => "cr_bio_structured",
        DocumentKind::CrBioAutoPresentable => "cr_bio_auto_presentable",
        DocumentKind::CrBioPdfOnly => "cr_bio_pdf_only",
        DocumentKind::PointOfCareTest => "point_of_care_test",
        DocumentKind::OtherCda => "other_cda",
        DocumentKind::NotCda => "not_cda",
    }
}

pub(crate) fn kind_from_str(s: &str) -> Option<DocumentKind> {
    [
        DocumentKind::CrBioStructured,
        DocumentKind::CrBioAutoPresentable,
        DocumentKind::CrBioPdfOnly,
        DocumentKind::PointOfCareTest,
        DocumentKind::OtherCda,
        DocumentKind::NotCda,
    ]
    .into_iter()
    .find(|k| kind_to_str(*k) == s)
}

pub(crate) fn status_to_str(status: ReportStatus) -> &'static str {
    match status {
        ReportStatus::Completed => "completed",
        ReportStatus::Active => "active",
    }
}

pub(crate) fn status_from_str(s: &str) -> Option<ReportStatus> {
    match s {
        "completed" => Some(ReportStatus::Completed),
        "active" => Some(ReportStatus::Active),
        _ => None,
    }
}
