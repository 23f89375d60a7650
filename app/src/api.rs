//! Server functions: the browser calls them over HTTP; on the server they run against the
//! [`ssr::Backend`] the server crate provides in context.

use leptos::prelude::*;
use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

use crate::i18n::Lang;
use crate::model::{AccessLog, AdminOverview, DocumentView, History, PatientDocuments, PatientSummary, UnitSystem, Viewer};
/// The analyte page's view, which the chart server function and the SVG route take.
pub use crate::pages::{ChartView, Period, Window};

/// Errors a server function reports to the interface. Messages are for logs; the interface shows
/// its own translated text for each variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    /// No such thing, or no right to see it: the two are never told apart.
    #[error("not found")]
    NotFound,
    #[error("not signed in")]
    NotSignedIn,
    /// Too many refused requests lately: this account is refused patient data for a while.
    #[error("too many requests")]
    TooManyRequests,
    #[error("the service is unavailable: {0}")]
    Unavailable(String),
    #[error("request failed: {0}")]
    Transport(String),
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        AppError::Transport(value.to_string())
    }
}

#[server(prefix = "/sfn", endpoint = "list_patients")]
pub async fn list_patients() -> Result<Vec<PatientSummary>, AppError> {
    ssr::answer(async { ssr::backend()?.list_patients().await }.await)
}

/// One page of the patients the user may see, matching `query` (INS, name words, birth date):
/// the list page asks for this rather than for the whole list.
#[server(prefix = "/sfn", endpoint = "load_patient_page")]
pub async fn load_patient_page(query: String, page: u32) -> Result<crate::model::PatientPage, AppError> {
    ssr::answer(
        async {
            let all = ssr::backend()?.list_patients().await?;
            Ok(crate::pages::patients::patient_page(all, &query, page as usize))
        }
        .await,
    )
}

/// A patient's documents; `link_candidate`: another record the user is about to link to this
/// one, shown for confirmation when the user may see it (`?link_confirm=` on the page).
#[server(prefix = "/sfn", endpoint = "load_patient")]
pub async fn load_patient(patient_id: String, link_candidate: Option<String>) -> Result<PatientDocuments, AppError> {
    ssr::answer(async { ssr::backend()?.patient_documents(patient_id, link_candidate).await?.ok_or(AppError::NotFound) }.await)
}

/// The patient's unified history across laboratories (one series per analyte).
#[server(prefix = "/sfn", endpoint = "load_history")]
pub async fn load_history(patient_id: String, unit_system: UnitSystem) -> Result<History, AppError> {
    // The server keeps computed histories shared (`Arc`); the answer needs its own copy only
    // when the cache holds one too.
    ssr::answer(
        async {
            ssr::backend()?.patient_history(patient_id, unit_system).await?.map(std::sync::Arc::unwrap_or_clone).ok_or(AppError::NotFound)
        }
        .await,
    )
}

/// What the results page shows of one view of the cumulative table ([`crate::table::slice`]): its
/// page of columns (every column of the period for the print view), its rows, and what its
/// controls need; not the whole history. Access is decided, and recorded, as for
/// [`load_history`].
#[server(prefix = "/sfn", endpoint = "load_table")]
pub async fn load_table(patient_id: String, view: crate::table::TableView, print: bool) -> Result<crate::table::TableSlice, AppError> {
    ssr::answer(async { ssr::backend()?.table_slice(patient_id, view, print).await?.ok_or(AppError::NotFound) }.await)
}

/// What the analyte page reads of the patient's history ([`crate::pages::analyte_history`]):
/// one analyte's results, the other analytes' names. Access as for [`load_history`].
#[server(prefix = "/sfn", endpoint = "load_analyte")]
pub async fn load_analyte(patient_id: String, unit_system: UnitSystem, analyte: String) -> Result<History, AppError> {
    ssr::answer(
        async {
            let history = ssr::backend()?.patient_history(patient_id, unit_system).await?.ok_or(AppError::NotFound)?;
            Ok(crate::pages::analyte_history(&history, &analyte))
        }
        .await,
    )
}

/// What the summary page reads of the patient's history, in SI units
/// ([`crate::pages::summary_history`]). Access as for [`load_history`].
#[server(prefix = "/sfn", endpoint = "load_summary")]
pub async fn load_summary(patient_id: String) -> Result<History, AppError> {
    ssr::answer(
        async {
            let history = ssr::backend()?.patient_history(patient_id, UnitSystem::Si).await?.ok_or(AppError::NotFound)?;
            Ok(crate::pages::summary_history(&history))
        }
        .await,
    )
}

/// The trend chart of one analyte as SVG (drawn on the server), over the period and dates of
/// the page's view ([`ChartView`]), with a second analyte when `with` names one,
/// drawn for a container `width` CSS pixels wide (a default when unknown).
#[allow(clippy::too_many_arguments)]
#[server(prefix = "/sfn", endpoint = "load_chart")]
pub async fn load_chart(
    patient_id: String,
    analyte: String,
    unit_system: UnitSystem,
    lang: Lang,
    period: Option<Period>,
    from: Option<String>,
    to: Option<String>,
    with: Option<String>,
    width: Option<u32>,
) -> Result<String, AppError> {
    // Asked without a width: the width this browser last showed a chart at, when it said.
    let width = width.or_else(crate::pages::remembered_chart_width);
    let view = ChartView { period: period.unwrap_or_default(), from, to, with, width };
    ssr::answer(
        async { ssr::backend()?.analyte_chart(patient_id, analyte, unit_system, lang, view).await?.ok_or(AppError::NotFound) }.await,
    )
}

/// One document of the patient, with its narrative and attachments.
#[server(prefix = "/sfn", endpoint = "load_document")]
pub async fn load_document(patient_id: String, document_id: String) -> Result<DocumentView, AppError> {
    ssr::answer(async { ssr::backend()?.document(patient_id, document_id).await?.ok_or(AppError::NotFound) }.await)
}

/// The server's clock in the clinician's time zone (RFC 9557:
/// `2026-12-03T13:05:00+01:00[Europe/Paris]`): what a printout's "printed at" and the summary's
/// "old" mark are measured from, the same on the page the server renders and in the browser
/// that takes it over.
#[server(prefix = "/sfn", endpoint = "server_time")]
pub async fn server_time() -> Result<String, AppError> {
    Ok(ssr::backend()?.local_now())
}

/// The signed-in user, or `None`.
#[server(prefix = "/sfn", endpoint = "whoami")]
pub async fn whoami() -> Result<Option<Viewer>, AppError> {
    ssr::backend()?.viewer().await
}

/// Whether professionals may sign in with OpenID Connect (Pro Santé Connect) here.
#[server(prefix = "/sfn", endpoint = "oidc_enabled")]
pub async fn oidc_enabled() -> Result<bool, AppError> {
    Ok(ssr::backend()?.oidc_enabled())
}

/// Where the DMP sync of a patient stands (polled by the documents page while it runs).
#[server(prefix = "/sfn", endpoint = "dmp_sync_status")]
pub async fn dmp_sync_status(patient_id: String) -> Result<Option<crate::model::DmpSyncStatus>, AppError> {
    ssr::answer(async { ssr::backend()?.dmp_sync_status(patient_id).await }.await)
}

/// When the signed-in user last saw this patient's results, before this session (RFC 9557, in
/// the clinician's zone), or `None` (a first visit).
#[server(prefix = "/sfn", endpoint = "load_previous_visit")]
pub async fn load_previous_visit(patient_id: String) -> Result<Option<String>, AppError> {
    ssr::answer(async { ssr::backend()?.previous_visit(patient_id).await }.await)
}

/// Who accessed the patient's record (the patient's own read-access log).
/// `page` counts from 0 (absent: the newest accesses).
#[server(prefix = "/sfn", endpoint = "load_access_log")]
pub async fn load_access_log(patient_id: String, page: Option<u32>) -> Result<AccessLog, AppError> {
    ssr::answer(async { ssr::backend()?.access_log(patient_id, page.unwrap_or(0)).await?.ok_or(AppError::NotFound) }.await)
}

/// Accounts and care relationships (administrators only).
#[server(prefix = "/sfn", endpoint = "load_admin")]
pub async fn load_admin() -> Result<AdminOverview, AppError> {
    ssr::answer(async { ssr::backend()?.admin_overview().await }.await)
}

/// The per-file outcomes of one of the signed-in user's recent uploads (`None` once forgotten).
#[server(prefix = "/sfn", endpoint = "load_upload_outcome")]
pub async fn load_upload_outcome(token: String) -> Result<Option<Vec<crate::model::UploadedFile>>, AppError> {
    ssr::answer(async { ssr::backend()?.upload_outcome(token).await }.await)
}

/// Remembers the interface language in a cookie, so server-rendered pages come in it too.
#[server(prefix = "/sfn", endpoint = "set_language")]
pub async fn set_language(lang: Lang) -> Result<(), AppError> {
    use http::header::{HeaderValue, SET_COOKIE};
    let cookie = format!("{}={}; Path=/; Max-Age=31536000; SameSite=Lax", crate::i18n::LANG_COOKIE, lang.code());
    let value = HeaderValue::from_str(&cookie).map_err(|e| AppError::Transport(e.to_string()))?;
    expect_context::<leptos_axum::ResponseOptions>().append_header(SET_COOKIE, value);
    Ok(())
}

#[cfg(feature = "ssr")]
pub mod ssr {
    //! The port the server implements. Kept object-safe (boxed futures) so the server can hand
    //! the app one `Arc<dyn Backend>` whatever store sits behind it.

    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;

    use leptos::prelude::use_context;

    use super::AppError;
    use crate::model::{AccessLog, AdminOverview, DocumentView, History, PatientDocuments, PatientSummary, UnitSystem, Viewer};

    pub type BackendFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, AppError>> + Send + 'a>>;

    pub trait Backend: Send + Sync + 'static {
        fn list_patients(&self) -> BackendFuture<'_, Vec<PatientSummary>>;
        fn patient_history(&self, patient_id: String, unit_system: UnitSystem) -> BackendFuture<'_, Option<Arc<History>>>;
        /// One view of the cumulative table: the patient's history, with its access decided
        /// and recorded exactly as [`Backend::patient_history`] does (it is that call), sliced.
        fn table_slice(&self, patient_id: String, view: crate::table::TableView, print: bool) -> BackendFuture<'_, Option<crate::table::TableSlice>> {
            Box::pin(async move {
                let view = view.checked();
                let history = self.patient_history(patient_id, view.units).await?;
                Ok(history.map(|h| crate::table::slice(&h, &view, print)))
            })
        }
        /// A document of the patient; `None` when it does not exist or belongs to someone else.
        fn document(&self, patient_id: String, document_id: String) -> BackendFuture<'_, Option<DocumentView>>;
        /// An analyte's chart as SVG; `None` when the patient or the series does not exist.
        fn analyte_chart(
            &self,
            patient_id: String,
            analyte: String,
            unit_system: UnitSystem,
            lang: crate::i18n::Lang,
            view: super::ChartView,
        ) -> BackendFuture<'_, Option<String>>;
        fn patient_documents(&self, patient_id: String, link_candidate: Option<String>) -> BackendFuture<'_, Option<PatientDocuments>>;
        fn viewer(&self) -> BackendFuture<'_, Option<Viewer>>;
        /// Now, in the clinician's time zone (RFC 9557).
        fn local_now(&self) -> String;
        fn oidc_enabled(&self) -> bool;
        /// The per-file outcomes of one of this user's recent uploads.
        fn upload_outcome(&self, token: String) -> BackendFuture<'_, Option<Vec<crate::model::UploadedFile>>>;
        /// The DMP sync state of a patient this user may see (counts only: not audited as a view).
        fn dmp_sync_status(&self, patient_id: String) -> BackendFuture<'_, Option<crate::model::DmpSyncStatus>>;
        /// The user's previous visit to a patient they may see (read from the audit trail, not
        /// itself audited as a view).
        fn previous_visit(&self, patient_id: String) -> BackendFuture<'_, Option<String>>;
        /// The patient's read-access log, one page of it; only the patient reads it.
        fn access_log(&self, patient_id: String, page: u32) -> BackendFuture<'_, Option<AccessLog>>;
        fn admin_overview(&self) -> BackendFuture<'_, AdminOverview>;
    }

    /// A refusal keeps its meaning on the wire: 404 for "not found or not yours", 401 when
    /// signed out (instead of the 500 server functions answer for any error).
    pub fn answer<T>(result: Result<T, AppError>) -> Result<T, AppError> {
        let status = match &result {
            Err(AppError::NotFound) => Some(http::StatusCode::NOT_FOUND),
            Err(AppError::NotSignedIn) => Some(http::StatusCode::UNAUTHORIZED),
            Err(AppError::TooManyRequests) => Some(http::StatusCode::TOO_MANY_REQUESTS),
            _ => None,
        };
        if let (Some(status), Some(response)) = (status, use_context::<leptos_axum::ResponseOptions>()) {
            response.set_status(status);
        }
        result
    }

    /// The backend of this request: the server builds one per request, bound to the signed-in
    /// user (or to nobody), and every method checks that user's rights.
    pub fn backend() -> Result<Arc<dyn Backend>, AppError> {
        use_context::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Arc<dyn Backend>>().cloned())
            .ok_or_else(|| AppError::Unavailable("no backend for this request".into()))
    }
}
