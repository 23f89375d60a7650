//! What the interface shows, as plain serialisable data shared by the server and the browser.
//! Domain enums come from the pure core so the two sides can never disagree on them.

use serde::{Deserialize, Serialize};

pub use bioviewer_core::catalogue::UnitSystem;
pub use bioviewer_core::cda::{Comparator, DocumentKind, ReportStatus, Sex};
pub use bioviewer_core::normalise::{Direction, History, PatientIdentity, Point, PointStatus, Series};

/// One page of the patient list, as the list page shows it: the patients matching what was
/// typed, [`PATIENTS_PER_PAGE`] at a time (a GP's list of 1,500 patients is never sent whole).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientPage {
    pub patients: Vec<PatientSummary>,
    /// Patients matching the search, on every page.
    pub matching: usize,
    /// Patients the user may see, whatever the search.
    pub total: usize,
    /// This page, from 1 (the last one when asked beyond it).
    pub page: usize,
    pub pages: usize,
}

/// Patients on one page of the list.
pub const PATIENTS_PER_PAGE: usize = 50;

/// One patient in the patient list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientSummary {
    /// Bioviewer's own patient id (a UUID), used in URLs; never the INS.
    pub id: String,
    /// The national identifier and the OID saying which kind it is.
    pub ins: String,
    pub ins_root: String,
    pub display_name: String,
    /// ISO date (`1979-03-28`), as precise as the document gave it.
    pub birth_date: Option<String>,
    pub sex: Option<Sex>,
    pub document_count: u32,
    /// The other identifiers the record is known by (INS-C, local ids...), `ROOT^VALUE`.
    #[serde(default)]
    pub identifiers: Vec<String>,
}

impl PatientSummary {
    /// Test and demonstration INS (OIDs `.10` and `.11`) must be visibly marked.
    pub fn is_test_ins(&self) -> bool {
        matches!(self.ins_root.as_str(), "1.2.250.1.213.1.4.10" | "1.2.250.1.213.1.4.11")
    }

    /// A record known by no INS (created under an INS-C or a local id): marked "no INS".
    pub fn has_ins(&self) -> bool {
        bioviewer_core::cda::IdentifierKind::of(&self.ins_root, &self.ins) == bioviewer_core::cda::IdentifierKind::Ins
    }
}

/// One stored source document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentSummary {
    pub id: String,
    pub title: Option<String>,
    pub laboratory: Option<String>,
    /// The report's time (`ClinicalDocument/effectiveTime`) at its precision, in the clinician's
    /// zone and named by it when it has a clock and an offset (RFC 9557); else as written.
    pub effective_time: Option<String>,
    pub version: Option<u32>,
    /// `None` when the document could not be read at all (see `problem`).
    pub kind: Option<DocumentKind>,
    pub status: Option<ReportStatus>,
    /// When it was imported: RFC 9557, in the clinician's zone (`…+01:00[Europe/Paris]`).
    pub imported_at: String,
    pub size_bytes: u64,
    /// Why the document could not be read, in the parser's words (English: logs, support).
    pub problem: Option<String>,
    /// The same as `kind:line:column`, which the interface says in the reader's language.
    pub problem_code: Option<String>,
    /// Its place in the patient's history (current, replaced, unreadable, rejected), as the
    /// normalisation decided (the interface translates it; the reasons in words are in the
    /// history API); `None` when the history could not be computed.
    pub state: Option<bioviewer_core::normalise::DocumentState>,
    /// Why the normalisation rejected or limited it (another patient, not a laboratory report,
    /// PDF only...).
    #[serde(default)]
    pub reasons: Vec<bioviewer_core::normalise::DocumentProblem>,
    /// Where it came from: the DMP, the operator, or an upload (shown as such).
    #[serde(default)]
    pub provenance: bioviewer_core::normalise::Provenance,
    /// Who uploaded it (uploads only).
    #[serde(default)]
    pub uploaded_by: Option<String>,
    /// What it contains (its tests, which are abnormal), from the history; `None` when it
    /// counts for nothing (rejected, replaced, unreadable) or the history could not be computed.
    #[serde(default)]
    pub contents: Option<bioviewer_core::report_view::DocumentContents>,
}

/// The patient page's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientDocuments {
    pub patient: PatientSummary,
    /// Other records of the same person linked to this one: their documents show here too.
    #[serde(default)]
    pub linked: Vec<PatientSummary>,
    /// Whether the signed-in user may link records (professionals).
    #[serde(default)]
    pub may_link: bool,
    /// The record the user asked to link to this one, shown before the link is made.
    #[serde(default)]
    pub link_candidate: Option<PatientSummary>,
    pub documents: Vec<DocumentSummary>,
    /// The DMP sync of this patient, when Bioviewer is connected to the DMP.
    pub dmp_sync: Option<DmpSyncStatus>,
    /// Why this user is not offered a DMP sync (shown instead of the sync status).
    #[serde(default)]
    pub dmp_refusal: Option<DmpRefusal>,
}

/// Why Bioviewer does not read the DMP for this user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DmpRefusal {
    /// Signed in with a password: the DMP refuses reading without strong authentication.
    PasswordSignIn,
}

/// Where the DMP sync of a patient stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DmpSyncStatus {
    pub running: bool,
    /// The last successful sync (RFC 9557, in the clinician's zone); empty before the first one.
    pub at: String,
    pub found: usize,
    pub stored: usize,
    pub failed: usize,
    /// Why the last sync failed (results already stored stay visible).
    pub error: Option<String>,
}

/// One source document as the laboratory wrote it: its narrative sections (made safe by the
/// parser) and its attachments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentView {
    pub summary: DocumentSummary,
    pub sections: Vec<NarrativeSection>,
    pub attachments: Vec<AttachmentInfo>,
    /// The report's own results, by chapter and by isolate (core `report_view`).
    #[serde(default)]
    pub results: bioviewer_core::report_view::ReportResults,
    /// Prescriber, sampling, validation; point-of-care or not.
    #[serde(default)]
    pub facts: bioviewer_core::report_view::ReportFacts,
    /// The patient's name, for the browser tab's title.
    #[serde(default)]
    pub patient_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NarrativeSection {
    pub title: Option<String>,
    /// Allow-listed HTML from the parser (no script, link, style or attribute of the document).
    pub html: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttachmentInfo {
    pub index: usize,
    pub media_type: String,
    pub purpose: bioviewer_core::cda::AttachmentPurpose,
    pub size_bytes: usize,
}

/// What a signed-in user is, as the interface needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ViewerRole {
    Professional,
    Patient,
    Admin,
}

/// The signed-in user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Viewer {
    pub name: String,
    pub role: ViewerRole,
    pub profession: Option<String>,
    pub structure: Option<String>,
    /// Sent back in every form that changes something (CSRF protection).
    pub csrf_token: String,
    /// Patients: their own record's id.
    pub own_patient: Option<String>,
    /// Break-the-glass accesses in force.
    pub break_glass: Vec<BreakGlassBanner>,
    /// The time zone every time is shown in (IANA name, `Europe/Paris`): the server writes
    /// times in it; pages name it beside times that do not carry it.
    #[serde(default)]
    pub time_zone: String,
}

/// What became of one file of an upload: its name and this, nothing about the patient (whom
/// the uploader may not be allowed to see).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadedFile {
    /// The file's name as the browser sent it (empty for the part of an upload cut off).
    pub name: String,
    pub outcome: UploadOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum UploadOutcome {
    Stored,
    /// The same bytes were already stored: nothing new.
    AlreadyPresent,
    /// Stored, but unreadable or with no identifiable patient (attached to no record): `code`
    /// is a parse error's `kind:line:column`, or `no_patient`, `no_ins`, `invalid_ins`.
    StoredWithProblem {
        code: String,
    },
    /// Stored in a record the uploader may see, but its history does not count it: why
    /// (a conflict with a laboratory's report, another identity...). Said at once, so nobody
    /// reads "stored" as "in the patient's results".
    StoredNotCounted {
        reasons: Vec<bioviewer_core::normalise::DocumentProblem>,
    },
    Failed {
        reason: UploadFailure,
    },
}

/// Why a file of an upload was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UploadFailure {
    Empty,
    TooLarge,
    /// The upload ended in the middle of this file (or before the rest).
    CutOff,
    TooManyFiles,
    /// The store could not take it now: try again.
    Unavailable,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakGlassBanner {
    pub patient_id: String,
    pub reason: String,
    /// RFC 9557: local time in the clinician's zone, with its offset and the zone's name
    /// (`2026-03-29T03:30:00+02:00[Europe/Paris]`).
    pub expires_at: String,
}

/// One access to a patient's record, as the patient reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessLogLine {
    /// RFC 9557: local time in the clinician's zone, with its offset and the zone's name
    /// (`2026-03-29T03:30:00+02:00[Europe/Paris]`).
    pub at: String,
    pub action: String,
    pub mode: Option<String>,
    pub who: Option<String>,
    pub role: Option<String>,
    pub profession: Option<String>,
    pub structure: Option<String>,
}

/// A break-the-glass access to the patient's record, with the reason given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakGlassLine {
    pub who: String,
    pub reason: String,
    pub started_at: String,
    pub expires_at: String,
}

/// Refused requests for the patient's record by one account (someone without a reason to see
/// it): shown apart from the accesses, as one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusalGroup {
    pub who: Option<String>,
    pub role: Option<String>,
    pub profession: Option<String>,
    pub structure: Option<String>,
    pub count: u64,
    /// RFC 9557: local time in the clinician's zone, with its offset and the zone's name
    /// (`2026-03-29T03:30:00+02:00[Europe/Paris]`).
    pub first_at: String,
    pub last_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessLog {
    /// One page of the accesses, newest first.
    pub entries: Vec<AccessLogLine>,
    /// This page (from 0) and the number of pages (at least 1).
    pub page: u32,
    pub pages: u32,
    /// Accesses in all pages.
    pub total: u64,
    /// Refused requests, one line per account.
    pub refusals: Vec<RefusalGroup>,
    pub break_glass: Vec<BreakGlassLine>,
}

/// Something the administrator must look at: repeated refused requests by one account, or an
/// audit trail found broken at start. No patient data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmLine {
    /// RFC 9557: local time in the clinician's zone, with its offset and the zone's name
    /// (`2026-03-29T03:30:00+02:00[Europe/Paris]`).
    pub at: String,
    /// `refusals` or `audit_chain_broken`.
    pub kind: String,
    pub login: Option<String>,
    pub name: Option<String>,
    pub refusals: Option<i64>,
    pub window_minutes: Option<i64>,
    pub first_bad_record: Option<i64>,
}

/// An account, as the administrator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountLine {
    pub login: String,
    pub name: String,
    pub role: ViewerRole,
    pub profession: Option<String>,
    pub structure: Option<String>,
    pub disabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelationshipLine {
    pub id: String,
    pub login: String,
    pub professional: String,
    pub patient_ins: String,
    pub patient_name: String,
    pub kind: String,
    pub starts_at: String,
    pub ends_at: Option<String>,
}

/// What the administration page shows (no results: an administrator sees none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminOverview {
    pub accounts: Vec<AccountLine>,
    pub relationships: Vec<RelationshipLine>,
    /// Newest first.
    pub alarms: Vec<AlarmLine>,
}
