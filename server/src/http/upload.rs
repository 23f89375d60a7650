//! `POST /import?csrf=…`: CDA documents uploaded by a professional, through the same store path
//! as `bioviewer import` and the DMP sync, each file with its own outcome.
//!
//! The order matters (issue 12): the session, the role and the CSRF token (in the form's action,
//! so in the URL) are checked before a byte of the body is read; the multipart body is split by
//! `multer` (linear time, boundary of 70 characters at most as RFC 2046 says, size limits per
//! field); documents are parsed on the blocking pool (inside `import_bytes`). Our own MTOM
//! splitter (`dmp::mtom`), which searched the boundary naively, spent seconds of CPU on a 32 KB
//! boundary: three such requests froze the server.

use axum::body::{Body, Bytes};
use axum::extract::{Extension, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bioviewer_app::model::{UploadFailure, UploadOutcome, UploadedFile};
use uuid::Uuid;

use super::AppState;
use super::guard::RequestAuth;
use crate::access::{Action, AuditEntry, Role};

/// The whole upload (the router's body limit for this route is the same).
pub(crate) const UPLOAD_MAX: usize = 32 * 1024 * 1024;
/// RFC 2046 §5.1.1: a boundary is 1 to 70 characters.
const BOUNDARY_MAX: usize = 70;
/// Any field other than a file (none is expected): small.
const OTHER_FIELD_MAX: u64 = 4 * 1024;
/// Files read from one upload; the others are reported as not read.
pub(crate) const FILES_MAX: usize = 200;
/// A file name as shown back (the store caps it the same way).
const NAME_MAX: usize = 256;

/// Who may put documents into patients' records by upload: professionals. Administrators see
/// no results and file nothing into records; patients do not upload.
pub(crate) fn may_upload(role: Role) -> bool {
    role == Role::Professional
}

/// Why an upload is refused as a whole, before or while its body is split.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum UploadRefusal {
    NotMultipart,
    /// A boundary longer than RFC 2046 allows: refused before reading the body.
    BoundaryTooLong(usize),
}

/// The boundary of a `multipart/form-data` body, if it is one RFC 2046 allows.
pub(crate) fn form_boundary(content_type: &str) -> Result<String, UploadRefusal> {
    let boundary = multer::parse_boundary(content_type).map_err(|_| UploadRefusal::NotMultipart)?;
    match boundary.len() {
        0 => Err(UploadRefusal::NotMultipart),
        n if n > BOUNDARY_MAX => Err(UploadRefusal::BoundaryTooLong(n)),
        _ => Ok(boundary),
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct UploadQuery {
    csrf: Option<String>,
}

/// `POST /import?csrf=TOKEN` (multipart form, files in fields named `file`).
pub(crate) async fn upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    Extension(auth): Extension<RequestAuth>,
    Query(query): Query<UploadQuery>,
    body: Body,
) -> Response {
    // Nothing of the body is read before these checks.
    let principal = match super::forms::checked(&auth, query.csrf.as_deref().unwrap_or_default()) {
        Ok(p) => p,
        Err(r) => return r,
    };
    if !may_upload(principal.account.role) {
        return (StatusCode::FORBIDDEN, "only professionals upload documents").into_response();
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let boundary = match form_boundary(content_type) {
        Ok(b) => b,
        Err(refusal) => {
            tracing::warn!(?refusal, "upload refused");
            return (StatusCode::BAD_REQUEST, "a multipart form is expected").into_response();
        }
    };
    // The body whole (bounded), handed to multer in one piece: multer looks for the end of a
    // part's headers again over its whole buffer each time a chunk arrives, so a body trickled
    // in small chunks with a huge header would cost quadratic time; in one piece every search
    // is linear. The documents are kept in memory whole anyway.
    let bytes = match axum::body::to_bytes(body, UPLOAD_MAX).await {
        Ok(b) => b,
        Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "upload too large").into_response(),
    };
    let files = match store_files(&state, principal, bytes, boundary).await {
        Some(files) => files,
        None => return (StatusCode::BAD_REQUEST, "a multipart form is expected").into_response(),
    };
    let stored = files
        .iter()
        .filter(|f| {
            matches!(f.outcome, UploadOutcome::Stored | UploadOutcome::StoredWithProblem { .. } | UploadOutcome::StoredNotCounted { .. })
        })
        .count();
    tracing::info!(files = files.len(), stored, "upload done");
    match keep_outcomes(state.store.as_ref(), principal.account.id, &files).await {
        Ok(token) => (StatusCode::SEE_OTHER, [(header::LOCATION, format!("/?upload={token}"))]).into_response(),
        Err(e) => {
            // The files are stored (or refused) already; only the page listing them is lost.
            tracing::error!(files = files.len(), stored, "could not keep an upload's outcomes: {e}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("{stored} of {} files were stored, but their list could not be kept: see the patients' documents.", files.len()),
            )
                .into_response()
        }
    }
}

/// Splits the form and stores every file; `None` when the body is no multipart form at all.
async fn store_files(state: &AppState, principal: &crate::access::Principal, bytes: Bytes, boundary: String) -> Option<Vec<UploadedFile>> {
    let limits = multer::SizeLimit::new().whole_stream(UPLOAD_MAX as u64).per_field(OTHER_FIELD_MAX).for_field("file", UPLOAD_MAX as u64);
    let stream = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes)]);
    let mut form = multer::Multipart::with_constraints(stream, boundary, multer::Constraints::new().size_limit(limits));
    let mut files: Vec<UploadedFile> = Vec::new();
    // Stored files and where they went: checked against their patients' histories at the end,
    // each history computed once whatever the number of files.
    let mut filed: Vec<(usize, crate::domain::PatientId, String)> = Vec::new();
    let mut read_any = false;
    loop {
        let field = match form.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => {
                // Not even one part: not a form. Later: the rest was cut off, and is said so.
                if !read_any {
                    tracing::warn!(error = %e, "upload is no multipart form");
                    return None;
                }
                files.push(UploadedFile { name: String::new(), outcome: UploadOutcome::Failed { reason: failure_of(&e) } });
                break;
            }
        };
        read_any = true;
        if field.name() != Some("file") {
            continue;
        }
        let name = shown_name(field.file_name().unwrap_or_default());
        let data = match field.bytes().await {
            Ok(data) => data,
            Err(e) => {
                files.push(UploadedFile { name, outcome: UploadOutcome::Failed { reason: failure_of(&e) } });
                break;
            }
        };
        if data.is_empty() {
            // A form sent without choosing a file has one empty, nameless part.
            if !name.is_empty() {
                files.push(UploadedFile { name, outcome: UploadOutcome::Failed { reason: UploadFailure::Empty } });
            }
            continue;
        }
        if files.len() >= FILES_MAX {
            files.push(UploadedFile { name, outcome: UploadOutcome::Failed { reason: UploadFailure::TooManyFiles } });
            continue;
        }
        let (outcome, stored) = store_one(state, principal, &name, data).await;
        if let Some((patient, document)) = stored {
            filed.push((files.len(), patient, document));
        }
        files.push(UploadedFile { name, outcome });
    }
    counted_or_why(state, principal, &mut files, &filed).await;
    Some(files)
}

/// Stores one file and records it, with its patient, in the audit trail; a file stored with no
/// problem comes back with its patient and document, for [`counted_or_why`].
async fn store_one(
    state: &AppState,
    principal: &crate::access::Principal,
    name: &str,
    data: Bytes,
) -> (UploadOutcome, Option<(crate::domain::PatientId, String)>) {
    let stored_name = if name.is_empty() { "upload.xml" } else { name };
    let outcome = match crate::import::import_bytes(
        state.store.as_ref(),
        stored_name,
        data.into(),
        crate::store::DocumentSource::Upload { by: principal.account.id },
    )
    .await
    {
        Ok(outcome) => outcome,
        Err(e) => {
            tracing::error!(error = %e, "an uploaded document could not be stored");
            return (UploadOutcome::Failed { reason: UploadFailure::Unavailable }, None);
        }
    };
    if outcome.already_present {
        return (UploadOutcome::AlreadyPresent, None);
    }
    // The patient sees in their access log who put a document into their record.
    let entry = AuditEntry {
        actor: Some(&principal.account),
        patient: outcome.patient.as_deref().and_then(crate::domain::PatientId::parse),
        action: Some(Action::Import),
        address: principal.address.as_deref(),
        detail: outcome.stored.as_ref().map(|d| format!("document={d}")),
        ..Default::default()
    };
    if let Err(e) = state.access.record(entry).await {
        // Stored but not recorded: said as a failure, so the uploader knows something is wrong.
        tracing::error!(error = %e, "audit of an upload failed");
        return (UploadOutcome::Failed { reason: UploadFailure::Unavailable }, None);
    }
    match outcome.problem_code {
        None => {
            let filed = outcome.patient.as_deref().and_then(crate::domain::PatientId::parse).zip(outcome.stored);
            (UploadOutcome::Stored, filed)
        }
        Some(code) => (UploadOutcome::StoredWithProblem { code }, None),
    }
}

/// "Stored" only when the patient's history counts the document; otherwise why not (a conflict
/// with a laboratory's report, another identity), for a patient the uploader may see. For one
/// they may not see, nothing more than "stored" is said.
async fn counted_or_why(
    state: &AppState,
    principal: &crate::access::Principal,
    files: &mut [UploadedFile],
    filed: &[(usize, crate::domain::PatientId, String)],
) {
    let mut patients: Vec<crate::domain::PatientId> = filed.iter().map(|(_, p, _)| *p).collect();
    patients.sort_by_key(|p| p.0);
    patients.dedup();
    for patient in patients {
        if !matches!(state.access.mode_for(principal, patient).await, Ok(Some(_))) {
            continue;
        }
        let Ok(Some(history)) =
            crate::history::patient_history(state.store.as_ref(), state.normaliser.clone(), patient, Default::default()).await
        else {
            continue;
        };
        for (index, _, document) in filed.iter().filter(|(_, p, _)| *p == patient) {
            if let Some(entry) = history.documents.iter().find(|d| d.id == *document)
                && entry.status != bioviewer_core::normalise::DocumentState::Current
            {
                files[*index].outcome = UploadOutcome::StoredNotCounted { reasons: entry.problem_codes.clone() };
            }
        }
    }
}

fn failure_of(e: &multer::Error) -> UploadFailure {
    match e {
        multer::Error::FieldSizeExceeded { .. } | multer::Error::StreamSizeExceeded { .. } => UploadFailure::TooLarge,
        _ => UploadFailure::CutOff,
    }
}

/// The file's own name (no folder a browser may send), cut to a reasonable length.
fn shown_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    match base.char_indices().nth(NAME_MAX) {
        None => base.to_string(),
        Some((end, _)) => format!("{}…", &base[..end]),
    }
}

/// The outcomes of recent uploads, for the page the upload redirects to: in the database, so
/// that the instance serving that page may be another than the one that stored the files; each
/// readable only by the account that uploaded (file names may name patients: they stay out of
/// URLs and logs), for [`RECENT_TTL_SECONDS`].
pub(crate) const RECENT_TTL_SECONDS: i64 = 15 * 60;

/// Keeps an upload's outcomes; the token to ask for them.
pub(crate) async fn keep_outcomes(store: &dyn crate::store::Store, account: Uuid, files: &[UploadedFile]) -> Result<String, String> {
    let json = serde_json::to_string(files).map_err(|e| e.to_string())?;
    store.put_upload_outcome(account, json, chrono::Utc::now().timestamp(), RECENT_TTL_SECONDS).await.map_err(|e| e.to_string())
}

/// An upload's outcomes, for the account that made it only.
pub(crate) async fn outcomes(store: &dyn crate::store::Store, account: Uuid, token: String) -> Result<Option<Vec<UploadedFile>>, String> {
    let json = store.upload_outcome(account, token, chrono::Utc::now().timestamp(), RECENT_TTL_SECONDS).await.map_err(|e| e.to_string())?;
    json.map(|json| serde_json::from_str(&json).map_err(|e| e.to_string())).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_professionals_upload() {
        assert!(may_upload(Role::Professional));
        assert!(!may_upload(Role::Admin));
        assert!(!may_upload(Role::Patient));
    }

    #[test]
    fn a_boundary_longer_than_rfc_2046_allows_is_refused() {
        let ok = format!("multipart/form-data; boundary={}", "b".repeat(70));
        assert_eq!(form_boundary(&ok).map(|b| b.len()), Ok(70));
        let long = format!("multipart/form-data; boundary={}", "-".repeat(32 * 1024));
        assert_eq!(form_boundary(&long), Err(UploadRefusal::BoundaryTooLong(32 * 1024)));
        assert_eq!(form_boundary("application/x-www-form-urlencoded"), Err(UploadRefusal::NotMultipart));
    }

    #[test]
    fn shown_names_lose_folders_and_are_cut() {
        assert_eq!(shown_name("C:\\Users\\x\\cr.xml"), "cr.xml");
        assert_eq!(shown_name(&"é".repeat(1000)).chars().count(), NAME_MAX + 1);
    }
}
