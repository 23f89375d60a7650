//! The web application: Leptos pages (SSR + hydration), server functions, the JSON/CSV/FHIR API,
//! health, static files.
//!
//! - [`guard`]: the middleware every request passes (session, CSRF, security headers);
//! - [`forms`]: the form posts that change something (sign-in, break-the-glass, administration);
//! - this module: the router, the API routes and the app's `Backend` port over the store. Every
//!   route and backend method that touches a patient goes through `Access::open_patient`.

mod exports;
mod forms;
mod guard;
mod upload;

use std::path::Path;
use std::sync::Arc;

use axum::extract::{Extension, MatchedPath, Path as UrlPath, Query, State};
use axum::http::{Request, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use bioviewer_app::api::AppError;
use bioviewer_app::api::ssr::{Backend, BackendFuture};
use bioviewer_app::model::{
    AccessLog, AccountLine, AdminOverview, BreakGlassBanner, BreakGlassLine, DocumentSummary, PatientDocuments, PatientSummary,
    RelationshipLine, Viewer, ViewerRole,
};
use bioviewer_app::{App, shell};
use bioviewer_core::catalogue::UnitSystem;
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{LeptosRoutes, generate_route_list};
use tower_http::compression::CompressionLayer;
use tower_http::trace::TraceLayer;

use crate::access::{Access, AccessMode, Action, Principal, Refusal};
use crate::domain::PatientId;
use crate::history::{Normaliser, patient_history, patient_history_shown};
use crate::local_time::LocalZone;
use crate::store::{DocumentRecord, PatientRecord, Store};
use guard::{CspNonce, RequestAuth};

/// Shared state of the HTTP layer.
#[derive(Clone)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub store: Arc<dyn Store>,
    pub normaliser: Arc<Normaliser>,
    pub access: Arc<Access>,
    /// OpenID Connect sign-in, when configured.
    pub oidc: Option<Arc<crate::oidc::Oidc>>,
    /// The DMP connection, when configured: opening a patient syncs them in the background.
    pub dmp: Option<Arc<crate::dmp::sync::DmpService>>,
    /// The zone every time the interface shows is written in.
    pub(crate) time_zone: LocalZone,
}

impl axum::extract::FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

/// Builds the router. `site_root` holds `pkg/` (bundle, stylesheet) and the public files.
/// Times are shown in Paris time ([`router_in_zone`] for another zone).
pub fn router(
    store: Arc<dyn Store>,
    normaliser: Arc<Normaliser>,
    access: Arc<Access>,
    oidc: Option<Arc<crate::oidc::Oidc>>,
    dmp: Option<Arc<crate::dmp::sync::DmpService>>,
    site_root: &Path,
) -> Router {
    router_in_zone(store, normaliser, access, oidc, dmp, site_root, LocalZone::default())
}

/// [`router`], showing every time in `time_zone`.
pub fn router_in_zone(
    store: Arc<dyn Store>,
    normaliser: Arc<Normaliser>,
    access: Arc<Access>,
    oidc: Option<Arc<crate::oidc::Oidc>>,
    dmp: Option<Arc<crate::dmp::sync::DmpService>>,
    site_root: &Path,
    time_zone: LocalZone,
) -> Router {
    // `make site` names the bundle's files by their content and lists the names in hash.txt
    // (an absolute path: Leptos joins it to the executable's folder otherwise).
    let hash_file = site_root.join("hash.txt");
    let leptos_options = LeptosOptions::builder()
        .output_name(env!("LEPTOS_OUTPUT_NAME"))
        .site_root(site_root.display().to_string())
        .site_pkg_dir("pkg")
        .hash_files(hash_file.is_file())
        .hash_file(hash_file.display().to_string().into())
        .build();
    let state = AppState { leptos_options: leptos_options.clone(), store, normaliser, access, oidc, dmp, time_zone };
    let routes = generate_route_list(App);
    // Uploaded documents may carry PDF copies: a larger body limit for that one route.
    let uploads = Router::new()
        .route("/import", post(upload::upload))
        .layer(axum::extract::DefaultBodyLimit::max(upload::UPLOAD_MAX))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(upload::UPLOAD_MAX));
    Router::new()
        .route("/healthz", get(health))
        .route("/auth/sign-in", post(forms::sign_in))
        .route("/auth/sign-out", post(forms::sign_out))
        .route("/auth/oidc/start", get(forms::oidc_start))
        .route("/auth/oidc/callback", get(forms::oidc_callback))
        .route("/break-glass", post(forms::break_glass))
        .route("/patients/{id}/break-glass/end", post(forms::end_break_glass))
        .route("/patients/{id}/links", post(forms::link_records))
        .route("/patients/{id}/links/{other}/end", post(forms::unlink_records))
        .route("/patients/{id}/targets/{analyte}", post(forms::set_target))
        .route("/admin/accounts", post(forms::create_account))
        .route("/admin/accounts/{login}/disabled", post(forms::set_account_disabled))
        .route("/admin/relationships", post(forms::add_relationship))
        .route("/admin/relationships/{id}/end", post(forms::end_relationship))
        .route("/api/patients/{id}/history", get(history_json))
        .route("/api/patients/{id}/history.csv", get(exports::history_csv))
        .route("/api/patients/{id}/history.fhir.json", get(exports::history_fhir))
        .route("/api/patients/{id}/documents/{doc}/cda.xml", get(exports::cda_document))
        .route("/fhir/metadata", get(exports::metadata))
        .route("/fhir/Patient", get(exports::search_patients))
        .route("/fhir/Patient/{id}", get(exports::read_patient))
        .route("/fhir/Observation", get(exports::search_observations))
        .route("/fhir/Observation/{id}", get(exports::read_observation))
        .route("/fhir/DiagnosticReport", get(exports::search_reports))
        .route("/fhir/DiagnosticReport/{id}", get(exports::read_report))
        .route("/api/patients/{id}/documents/{doc}/attachments/{n}", get(attachment))
        .route("/api/patients/{id}/analytes/{analyte}/chart.svg", get(chart_svg))
        .leptos_routes_with_context(&state, routes, provide_request_nonce, move || shell(leptos_options.clone()))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        // Nothing else a user sends is large.
        .layer(tower_http::limit::RequestBodyLimitLayer::new(1024 * 1024))
        .merge(uploads)
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard::guard))
        // Nothing should take long.
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, std::time::Duration::from_secs(60)))
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            // The route pattern, never the raw URI: query strings may one day carry search terms.
            let route = request.extensions().get::<MatchedPath>().map(MatchedPath::as_str).unwrap_or("static-or-unmatched");
            tracing::info_span!("request", method = %request.method(), route)
        }))
        .with_state(state)
}

/// Leptos puts the nonce in context on its scripts; the guard wrote the same one in the
/// Content-Security-Policy header.
fn provide_request_nonce() {
    if let Some(nonce) = leptos::prelude::use_context::<axum::http::request::Parts>().and_then(|p| p.extensions.get::<CspNonce>().cloned())
    {
        provide_context(leptos::nonce::Nonce::from_value(nonce.0));
    }
}

/// Serves `app` (from [`router`]) until Ctrl-C or SIGTERM.
pub async fn serve(listener: tokio::net::TcpListener, app: Router, header_read_timeout: std::time::Duration) -> std::io::Result<()> {
    serve_until(listener, app, header_read_timeout, shutdown_signal()).await
}

/// Serves `app` until `shutdown` completes, then lets the requests under way finish (30 s at
/// most).
///
/// hyper directly rather than `axum::serve`, for one setting axum does not expose: the time a
/// client has to send a request's headers. Without it a client that sends half a request line
/// holds its connection (and a task) for ever: a few thousand such "slow-loris" connections
/// and nobody else gets in. The same limit closes a kept-alive connection left idle that long.
/// The body's time is bounded by the router's request timeout.
pub async fn serve_until(
    listener: tokio::net::TcpListener,
    app: Router,
    header_read_timeout: std::time::Duration,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, most often: wait for some to close.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: Request<hyper::body::Incoming>| {
            // What `into_make_service_with_connect_info` did: the guard reads the peer here.
            request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            tower::Service::call(&mut app.clone(), request.map(axum::body::Body::new))
        });
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(header_read_timeout);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "connection closed with an error");
                    }
                    return;
                }
                _ = stop.changed() => connection.as_mut().graceful_shutdown(),
            }
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection closed with an error");
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(stop_rx);
    // Every connection task holds a receiver: `closed` completes when the last one ends.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(30), stop_tx.closed()).await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
}

#[derive(serde::Serialize)]
struct Health {
    status: &'static str,
    schema_version: i64,
}

async fn health(State(state): State<AppState>) -> Result<Json<Health>, (axum::http::StatusCode, &'static str)> {
    match state.store.schema_version().await {
        Ok(schema_version) => Ok(Json(Health { status: "ok", schema_version })),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            Err((axum::http::StatusCode::SERVICE_UNAVAILABLE, "database unavailable"))
        }
    }
}

#[derive(serde::Deserialize)]
struct HistoryQuery {
    units: Option<String>,
}

fn unit_system(name: Option<&str>) -> UnitSystem {
    match name {
        Some("conventional") => UnitSystem::Conventional,
        _ => UnitSystem::Si,
    }
}

type ApiError = (StatusCode, &'static str);

/// The gate of every API route: the signed-in user's right to this patient, recorded in the
/// audit trail. "No such patient" and "not yours" are the same answer.
async fn api_gate(state: &AppState, auth: &RequestAuth, id: &str, action: Action) -> Result<PatientId, ApiError> {
    match state.access.open_patient(auth.principal.as_ref(), id, action).await {
        Ok((patient, _)) => Ok(patient),
        Err(Refusal::NotSignedIn) => Err((StatusCode::UNAUTHORIZED, "sign in first")),
        Err(Refusal::NoAccess) => Err((StatusCode::NOT_FOUND, "no such patient")),
        Err(Refusal::Throttled) => Err((StatusCode::TOO_MANY_REQUESTS, "too many refused requests; try again later")),
        Err(Refusal::Failed(e)) => {
            tracing::error!(error = %e, "access check failed");
            Err((StatusCode::SERVICE_UNAVAILABLE, "service unavailable"))
        }
    }
}

/// The history behind the JSON, CSV and FHIR routes, once the access is granted and recorded.
async fn api_history(
    state: &AppState,
    auth: &RequestAuth,
    id: &str,
    query: &HistoryQuery,
    action: Action,
) -> Result<Arc<bioviewer_core::normalise::History>, ApiError> {
    let patient = api_gate(state, auth, id, action).await?;
    match patient_history(state.store.as_ref(), state.normaliser.clone(), patient, unit_system(query.units.as_deref())).await {
        Ok(Some(history)) => Ok(history),
        Ok(None) => Err((StatusCode::NOT_FOUND, "no such patient")),
        Err(e) => {
            tracing::error!(error = %e, "history failed");
            Err((StatusCode::SERVICE_UNAVAILABLE, "history unavailable"))
        }
    }
}

/// `GET /api/patients/{id}/history[?units=si|conventional]`: the normalised history
/// (docs/normalised-json.md).
async fn history_json(
    State(state): State<AppState>,
    Extension(auth): Extension<RequestAuth>,
    UrlPath(id): UrlPath<String>,
    Query(query): Query<HistoryQuery>,
) -> Result<impl axum::response::IntoResponse, ApiError> {
    let history = api_history(&state, &auth, &id, &query, Action::ExportJson).await?;
    let json = state.normaliser.json(&history).map_err(|e| {
        tracing::error!(error = %e, "history JSON failed");
        (StatusCode::SERVICE_UNAVAILABLE, "history unavailable")
    })?;
    Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], json))
}

#[derive(serde::Deserialize)]
struct ChartQuery {
    units: Option<String>,
    lang: Option<String>,
    period: Option<String>,
    from: Option<String>,
    to: Option<String>,
    with: Option<String>,
    width: Option<u32>,
}

/// `GET /api/patients/{id}/analytes/{analyte}/chart.svg[?units&lang&period&from&to&with&width]`:
/// the trend chart the analyte page shows, as an image (printing, embedding, benchmarks).
async fn chart_svg(
    State(state): State<AppState>,
    Extension(auth): Extension<RequestAuth>,
    UrlPath((id, analyte)): UrlPath<(String, String)>,
    Query(query): Query<ChartQuery>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let patient = api_gate(&state, &auth, &id, Action::ViewChart).await?;
    let lang = query.lang.as_deref().and_then(bioviewer_app::i18n::Lang::from_code).unwrap_or_default();
    // The same validation as the page's own URL: what is not well formed is ignored.
    let get = |key: &str| match key {
        "period" => query.period.clone(),
        "from" => query.from.clone(),
        "to" => query.to.clone(),
        "with" => query.with.clone(),
        _ => None,
    };
    let view = bioviewer_app::api::ChartView { width: query.width, ..bioviewer_app::api::ChartView::from_query(get) };
    let svg =
        chart_of(&state.store, &state.normaliser, patient, &analyte, unit_system(query.units.as_deref()), lang, &view, state.time_zone)
            .await
            .map_err(|_| (StatusCode::SERVICE_UNAVAILABLE, "chart unavailable"))?
            .filter(|svg| !svg.is_empty())
            .ok_or((StatusCode::NOT_FOUND, "no such chart"))?;
    Ok(([(axum::http::header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}

/// The raw bytes of a document of this patient (never of another one).
async fn patient_document_raw(
    store: &dyn Store,
    patient: PatientId,
    document: &str,
) -> Result<Option<(DocumentRecord, Vec<u8>)>, crate::store::StoreError> {
    let Some(document) = crate::domain::DocumentId::parse(document) else { return Ok(None) };
    let Some(record) = store.patient_document(patient, document).await? else { return Ok(None) };
    Ok(store.document_raw(document).await?.map(|raw| (record, raw)))
}

/// `GET /api/patients/{id}/documents/{doc}/attachments/{n}`: a PDF copy or image of the document.
async fn attachment(
    State(state): State<AppState>,
    Extension(auth): Extension<RequestAuth>,
    UrlPath((patient, document, index)): UrlPath<(String, String, usize)>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let not_found = (StatusCode::NOT_FOUND, "no such attachment");
    let unavailable = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, "attachment failed");
        (StatusCode::SERVICE_UNAVAILABLE, "attachment unavailable")
    };
    let patient = api_gate(&state, &auth, &patient, Action::ViewAttachment).await?;
    let (_, raw) = patient_document_raw(state.store.as_ref(), patient, &document).await.map_err(|e| unavailable(&e))?.ok_or(not_found)?;
    let report =
        tokio::task::spawn_blocking(move || bioviewer_core::cda::parse(&raw)).await.map_err(|e| unavailable(&e))?.map_err(|_| not_found)?;
    let item = report.attachments.get(index).ok_or(not_found)?;
    let bytes = item.bytes().map_err(|e| unavailable(&e))?;
    // Only types a browser shows safely are served inline; anything else is a download.
    let (content_type, disposition) = match item.media_type.as_str() {
        "application/pdf" => ("application/pdf", "inline"),
        "image/png" => ("image/png", "inline"),
        "image/jpeg" => ("image/jpeg", "inline"),
        "image/gif" => ("image/gif", "inline"),
        _ => ("application/octet-stream", "attachment"),
    };
    let extension = match content_type {
        "application/pdf" => "pdf",
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/gif" => "gif",
        _ => "bin",
    };
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, content_type.to_string()),
            (axum::http::header::CONTENT_DISPOSITION, format!("{disposition}; filename=\"document-{index}.{extension}\"")),
            (axum::http::header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
            // The browser's PDF viewer must run, so the page policy does not apply; the file may
            // be framed by our own document page only, never by another site.
            (axum::http::header::CONTENT_SECURITY_POLICY, "frame-ancestors 'self'".to_string()),
            (axum::http::header::X_FRAME_OPTIONS, "SAMEORIGIN".to_string()),
        ],
        bytes,
    )
        .into_response())
}

/// The app's [`Backend`] port over the store.
/// One per request, bound to the signed-in user: every method checks that user's rights.
pub(crate) struct StoreBackend {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) normaliser: Arc<Normaliser>,
    pub(crate) access: Arc<Access>,
    pub(crate) principal: Option<Principal>,
    pub(crate) oidc_enabled: bool,
    pub(crate) dmp: Option<Arc<crate::dmp::sync::DmpService>>,
    pub(crate) time_zone: LocalZone,
}

fn unavailable(e: crate::store::StoreError) -> AppError {
    tracing::error!(error = %e, "store error");
    AppError::Unavailable("store".into())
}

fn patient_summary(p: PatientRecord, identifiers: Vec<crate::store::PatientIdentifier>) -> PatientSummary {
    let display_name = format!("{} {}", p.family_name.unwrap_or_default(), p.given_names.unwrap_or_default()).trim().to_string();
    let identifiers = identifiers
        .into_iter()
        .filter(|i| !(i.authority == p.ins_root && i.value == p.ins))
        .map(|i| format!("{}^{}", i.authority, i.value))
        .collect();
    PatientSummary {
        identifiers,
        id: p.id.to_string(),
        ins: p.ins,
        ins_root: p.ins_root,
        display_name,
        birth_date: p.birth_date.map(|d| d.to_string()),
        sex: p.sex,
        document_count: p.document_count,
    }
}

/// A stored document as the interface lists it, its times in the clinician's zone.
fn document_summary(d: DocumentRecord, zone: LocalZone) -> DocumentSummary {
    let index = d.index;
    DocumentSummary {
        id: d.id.to_string(),
        title: index.as_ref().and_then(|i| i.title.clone()).or(d.source_name),
        laboratory: index.as_ref().and_then(|i| i.laboratory.clone()),
        effective_time: index.as_ref().and_then(|i| i.effective_time).map(|t| zone.cda_labelled(t)),
        version: index.as_ref().and_then(|i| i.version_number),
        kind: index.as_ref().map(|i| i.kind),
        status: index.as_ref().and_then(|i| i.report_status),
        imported_at: zone.rfc3339(&d.imported_at),
        size_bytes: d.size_bytes,
        problem: d.parse_error,
        problem_code: d.parse_error_code,
        state: None,
        reasons: Vec::new(),
        provenance: d.provenance,
        uploaded_by: d.uploaded_by,
        contents: None,
    }
}

/// Epoch seconds of an ISO date (`2024-01-05`), at the start (or end) of that day.
/// An analyte's chart of a patient whose access was checked; `Some("")` when nothing to plot.
/// The series (and the second analyte's) keep only the results of the view's window, the same
/// filter the page's table applies.
#[allow(clippy::too_many_arguments)]
async fn chart_of(
    store: &Arc<dyn Store>,
    normaliser: &Arc<Normaliser>,
    patient: PatientId,
    analyte: &str,
    unit_system: UnitSystem,
    lang: bioviewer_app::i18n::Lang,
    view: &bioviewer_app::api::ChartView,
    zone: LocalZone,
) -> Result<Option<String>, AppError> {
    // Sampling times in the clinician's zone, as the page's table has them.
    let history = patient_history_shown(store.as_ref(), normaliser.clone(), patient, unit_system, zone).await.map_err(|e| {
        tracing::error!(error = %e, "history failed");
        AppError::Unavailable("history".into())
    })?;
    let Some(history) = history.as_deref() else { return Ok(None) };
    let Some(series) = history.series.iter().find(|s| s.analyte == analyte) else { return Ok(None) };
    let window = view.window(series);
    let shown = window.apply(series);
    let overlay = view
        .with
        .as_deref()
        .filter(|w| *w != analyte)
        .and_then(|w| history.series.iter().find(|s| s.analyte == w))
        .map(|s| window.apply(s));
    // The patient's treatment target, in the series' unit (one that could not be put in it is
    // not drawn: the page says so).
    let target = history
        .targets
        .iter()
        .find(|t| t.analyte == analyte && t.applies)
        .map(|t| crate::chart::Target { low: t.low.clone(), high: t.high.clone() });
    let uploaded = history.uploaded_documents();
    let options = crate::chart::ChartOptions {
        width: view.width.unwrap_or(900),
        target: target.as_ref(),
        overlay: overlay.as_ref(),
        uploaded: &uploaded,
    };
    match crate::chart::render(&shown, lang, &options) {
        Ok(svg) => Ok(Some(svg)),
        Err(crate::chart::ChartError::Empty) => Ok(Some(String::new())),
        Err(e @ crate::chart::ChartError::Drawing(_)) => {
            tracing::error!(error = %e, "chart drawing failed");
            Err(AppError::Unavailable("chart".into()))
        }
    }
}

impl StoreBackend {
    /// Opening a patient syncs them from the DMP in the background (professionals only: the
    /// VIHF names a professional), recorded in the audit trail; the stored results show at once.
    /// A password account is not offered a read the DMP would refuse: the page says why instead
    /// of a sync status (`Requester::for_reading`).
    async fn dmp_sync(
        &self,
        patient: PatientId,
        mode: AccessMode,
        record: &PatientRecord,
    ) -> (Option<bioviewer_app::model::DmpSyncStatus>, Option<bioviewer_app::model::DmpRefusal>) {
        let (Some(dmp), Some(principal)) = (self.dmp.as_ref(), self.principal.as_ref()) else { return (None, None) };
        // The DMP knows patients by their INS: a record known by no INS (INS-C, local id) has
        // nothing to ask it; its documents come with the INS record it is linked to.
        if !record.has_ins() {
            return (None, None);
        }
        let account = &principal.account;
        if account.role == crate::access::Role::Professional {
            use crate::dmp::client::{ReadRefusal, Requester};
            match Requester::for_reading(account, dmp.is_simulator()) {
                Ok(requester) => {
                    let query = crate::dmp::client::PatientQuery {
                        ins: record.ins.clone(),
                        ins_oid: record.ins_root.clone(),
                        purpose: crate::dmp::vihf::PurposeOfUse::of(mode),
                    };
                    if dmp.start(patient, requester, query).await {
                        let entry = crate::access::AuditEntry {
                            actor: Some(account),
                            patient: Some(patient),
                            action: Some(Action::Sync),
                            mode: Some(mode.as_str()),
                            address: principal.address.as_deref(),
                            detail: None,
                        };
                        if let Err(e) = self.access.record(entry).await {
                            tracing::error!(error = %e, "audit of a DMP sync failed");
                        }
                    }
                }
                Err(ReadRefusal::PasswordSignIn) => return (None, Some(bioviewer_app::model::DmpRefusal::PasswordSignIn)),
                Err(ReadRefusal::NoProfessionalIdentity) => {}
            }
        }
        (dmp.state(patient).await.map(|s| sync_status(s, self.time_zone)), None)
    }

    /// Whether this user may see this patient, without recording a view: for what is not
    /// itself patient data (the sync's progress, the user's own previous visit). A refusal is
    /// `NotFound`, as for a patient that does not exist, recorded (counted once per page, by the
    /// page's data: [`crate::access::Access::refuse_check`]).
    async fn may_see(&self, patient_id: &str) -> Result<(&Principal, PatientId), AppError> {
        let principal = self.principal.as_ref().ok_or(AppError::NotSignedIn)?;
        let patient = PatientId::parse(patient_id).unwrap_or(PatientId(uuid::Uuid::nil()));
        let allowed = self.access.mode_for(principal, patient).await.map_err(|e| {
            tracing::error!(error = %e, "access check failed");
            AppError::Unavailable("access".into())
        })?;
        if allowed.is_none() {
            return Err(refusal_error(self.access.refuse_check(principal, patient_id, Action::ViewPatient).await));
        }
        Ok((principal, patient))
    }

    /// The gate of every backend method that touches a patient (decision + audit record).
    async fn gate(&self, patient_id: &str, action: Action) -> Result<Option<(PatientId, AccessMode)>, AppError> {
        match self.access.open_patient(self.principal.as_ref(), patient_id, action).await {
            Ok(granted) => Ok(Some(granted)),
            Err(Refusal::NoAccess) => Ok(None),
            Err(refusal) => Err(refusal_error(refusal)),
        }
    }
}

/// A refusal as the interface answers it: someone else's patient is a patient that does not exist.
fn refusal_error(refusal: Refusal) -> AppError {
    match refusal {
        Refusal::NotSignedIn => AppError::NotSignedIn,
        Refusal::NoAccess => AppError::NotFound,
        Refusal::Throttled => AppError::TooManyRequests,
        Refusal::Failed(e) => {
            tracing::error!(error = %e, "access check failed");
            AppError::Unavailable("access".into())
        }
    }
}

impl Backend for StoreBackend {
    fn document(&self, patient_id: String, document_id: String) -> BackendFuture<'_, Option<bioviewer_app::model::DocumentView>> {
        Box::pin(async move {
            use bioviewer_app::model::{AttachmentInfo, DocumentView, NarrativeSection};
            let Some((patient, _)) = self.gate(&patient_id, Action::ViewDocument).await? else { return Ok(None) };
            let found = patient_document_raw(self.store.as_ref(), patient, &document_id).await.map_err(unavailable)?;
            let Some((record, raw)) = found else { return Ok(None) };
            let report = tokio::task::spawn_blocking(move || bioviewer_core::cda::parse(&raw))
                .await
                .map_err(|e| AppError::Unavailable(e.to_string()))?;
            let (sections, attachments, results, facts) = match report {
                Err(_) => (Vec::new(), Vec::new(), Default::default(), Default::default()),
                Ok(report) => {
                    fn flatten(sections: &[bioviewer_core::cda::Section], out: &mut Vec<NarrativeSection>) {
                        for s in sections {
                            // The PDF copy is shown in the page itself: its section would be an
                            // empty box pointing at it.
                            if s.kind == bioviewer_core::cda::SectionKind::PdfCopy {
                                continue;
                            }
                            if !s.narrative_html.is_empty() {
                                out.push(NarrativeSection { title: s.title.clone(), html: s.narrative_html.clone() });
                            }
                            flatten(&s.sub_sections, out);
                        }
                    }
                    let mut sections = Vec::new();
                    flatten(&report.sections, &mut sections);
                    let attachments = report
                        .attachments
                        .iter()
                        .enumerate()
                        .map(|(index, a)| AttachmentInfo {
                            index,
                            media_type: a.media_type.clone(),
                            purpose: a.purpose,
                            size_bytes: a.size_bytes,
                        })
                        .collect();
                    let results = bioviewer_core::report_view::results(&report);
                    let facts = bioviewer_core::report_view::facts(&report);
                    (sections, attachments, results, facts)
                }
            };
            // Its place in the patient's history (rejected, replaced, and why), as on the list.
            let mut summary = document_summary(record, self.time_zone);
            let mut patient_name = None;
            if let Ok(Some(history)) = patient_history(self.store.as_ref(), self.normaliser.clone(), patient, UnitSystem::Si).await
                && let Some(entry) = history.documents.iter().find(|d| d.id == summary.id)
            {
                patient_name = history.patient.as_ref().map(bioviewer_app::patient_name);
                summary.state = Some(entry.status.clone());
                summary.reasons =
                    entry.problem_codes.iter().copied().filter(|p| *p != bioviewer_core::normalise::DocumentProblem::Unreadable).collect();
            }
            Ok(Some(DocumentView { summary, sections, attachments, results, facts, patient_name }))
        })
    }

    fn analyte_chart(
        &self,
        patient_id: String,
        analyte: String,
        unit_system: UnitSystem,
        lang: bioviewer_app::i18n::Lang,
        view: bioviewer_app::api::ChartView,
    ) -> BackendFuture<'_, Option<String>> {
        Box::pin(async move {
            let Some((patient, _)) = self.gate(&patient_id, Action::ViewChart).await? else { return Ok(None) };
            chart_of(&self.store, &self.normaliser, patient, &analyte, unit_system, lang, &view, self.time_zone).await
        })
    }

    fn patient_history(
        &self,
        patient_id: String,
        unit_system: UnitSystem,
    ) -> BackendFuture<'_, Option<Arc<bioviewer_core::normalise::History>>> {
        Box::pin(async move {
            let Some((id, _)) = self.gate(&patient_id, Action::ViewHistory).await? else { return Ok(None) };
            // The interface's copy: targets applied, times in the clinician's zone (the
            // exports write the documents' own offsets).
            patient_history_shown(self.store.as_ref(), self.normaliser.clone(), id, unit_system, self.time_zone).await.map_err(|e| {
                tracing::error!(error = %e, "history failed");
                AppError::Unavailable("history".into())
            })
        })
    }

    fn list_patients(&self) -> BackendFuture<'_, Vec<PatientSummary>> {
        Box::pin(async move {
            let principal = self.principal.as_ref().ok_or(AppError::NotSignedIn)?;
            let visible = self.access.visible_patients(principal).await.map_err(|e| {
                tracing::error!(error = %e, "listing visible patients failed");
                AppError::Unavailable("access".into())
            })?;
            let ids = visible.into_iter().map(|(id, _)| id).collect();
            let mut patients: Vec<PatientSummary> = self
                .store
                .patients_with_identifiers(ids)
                .await
                .map_err(unavailable)?
                .into_iter()
                .map(|(patient, identifiers)| patient_summary(patient, identifiers))
                .collect();
            // By name as a reader sorts it (accents aside: Émilie before Zoé), then two of the
            // same name by birth date and INS, always in the same order.
            patients.sort_by_cached_key(|p| {
                (bioviewer_core::qualitative::fold_accents(&p.display_name), p.birth_date.clone(), p.ins.clone(), p.id.clone())
            });
            Ok(patients)
        })
    }

    fn patient_documents(&self, patient_id: String, link_candidate: Option<String>) -> BackendFuture<'_, Option<PatientDocuments>> {
        Box::pin(async move {
            let Some((id, mode)) = self.gate(&patient_id, Action::ViewPatient).await? else { return Ok(None) };
            let Some(patient) = self.store.patient(id).await.map_err(unavailable)? else { return Ok(None) };
            let (dmp_sync, dmp_refusal) = self.dmp_sync(id, mode, &patient).await;
            let documents = self.store.patient_documents(id).await.map_err(unavailable)?;
            // The history says which documents count: replaced versions, rejected ones.
            let history = patient_history(self.store.as_ref(), self.normaliser.clone(), id, UnitSystem::Si).await.map_err(|e| {
                tracing::error!(error = %e, "history failed");
                AppError::Unavailable("history".into())
            })?;
            use bioviewer_core::normalise::{DocumentEntry, DocumentProblem};
            let entries: std::collections::HashMap<&str, &DocumentEntry> =
                history.as_deref().map(|h| h.documents.iter().map(|d| (d.id.as_str(), d)).collect()).unwrap_or_default();
            let mut contents = history.as_deref().map(bioviewer_core::report_view::document_contents).unwrap_or_default();
            let documents = documents
                .into_iter()
                .map(|d| document_summary(d, self.time_zone))
                .map(|mut d| {
                    if let Some(entry) = entries.get(d.id.as_str()) {
                        d.state = Some(entry.status.clone());
                        // A parse error is said from the stored code already.
                        d.reasons = entry.problem_codes.iter().copied().filter(|p| *p != DocumentProblem::Unreadable).collect();
                    }
                    d.contents = contents.remove(&d.id);
                    d
                })
                .collect();
            let identifiers = self.store.patient_identifiers(id).await.map_err(unavailable)?;
            let mut linked = Vec::new();
            for other in self.store.linked_patients(id).await.map_err(unavailable)? {
                if let Some(record) = self.store.patient(other).await.map_err(unavailable)? {
                    let identifiers = self.store.patient_identifiers(other).await.map_err(unavailable)?;
                    linked.push(patient_summary(record, identifiers));
                }
            }
            let may_link = self.principal.as_ref().is_some_and(|p| p.account.role == crate::access::Role::Professional);
            // The record about to be linked, shown only when this user may link the two.
            let mut candidate = None;
            if let (Some(principal), Some(other)) = (self.principal.as_ref(), link_candidate.as_deref().and_then(PatientId::parse))
                && may_link
                && self
                    .access
                    .check_link(self.store.as_ref(), crate::access::LinkActor::Professional(principal), id, other, true)
                    .await
                    .is_ok()
                && let Some(record) = self.store.patient(other).await.map_err(unavailable)?
            {
                let identifiers = self.store.patient_identifiers(other).await.map_err(unavailable)?;
                candidate = Some(patient_summary(record, identifiers));
            }
            Ok(Some(PatientDocuments {
                patient: patient_summary(patient, identifiers),
                linked,
                may_link,
                link_candidate: candidate,
                documents,
                dmp_sync,
                dmp_refusal,
            }))
        })
    }

    fn local_now(&self) -> String {
        self.time_zone.epoch(chrono::Utc::now().timestamp())
    }

    fn oidc_enabled(&self) -> bool {
        self.oidc_enabled
    }

    fn upload_outcome(&self, token: String) -> BackendFuture<'_, Option<Vec<bioviewer_app::model::UploadedFile>>> {
        Box::pin(async move {
            let principal = self.principal.as_ref().ok_or(AppError::NotSignedIn)?;
            upload::outcomes(self.store.as_ref(), principal.account.id, token).await.map_err(|e| {
                tracing::error!(error = %e, "reading an upload's outcome");
                AppError::Unavailable("store".into())
            })
        })
    }

    fn dmp_sync_status(&self, patient_id: String) -> BackendFuture<'_, Option<bioviewer_app::model::DmpSyncStatus>> {
        Box::pin(async move {
            let (_, patient) = self.may_see(&patient_id).await?;
            let Some(dmp) = self.dmp.as_ref() else { return Ok(None) };
            Ok(dmp.state(patient).await.map(|s| sync_status(s, self.time_zone)))
        })
    }

    fn previous_visit(&self, patient_id: String) -> BackendFuture<'_, Option<String>> {
        Box::pin(async move {
            let (principal, patient) = self.may_see(&patient_id).await?;
            let visit = self.access.previous_visit(principal, patient).await.map_err(|e| {
                tracing::error!(error = %e, "previous visit lookup failed");
                AppError::Unavailable("access".into())
            })?;
            Ok(visit.map(|at| self.time_zone.rfc3339(&at)))
        })
    }

    fn viewer(&self) -> BackendFuture<'_, Option<Viewer>> {
        Box::pin(async move {
            let Some(principal) = &self.principal else { return Ok(None) };
            let grants = self.access.active_break_glass(principal).await.map_err(|e| {
                tracing::error!(error = %e, "break-the-glass lookup failed");
                AppError::Unavailable("access".into())
            })?;
            let account = &principal.account;
            Ok(Some(Viewer {
                name: account.display_name.clone(),
                role: viewer_role(account.role),
                profession: account.profession.clone(),
                structure: account.structure_name.clone(),
                csrf_token: principal.csrf_token.clone(),
                own_patient: account.patient_id.map(|p| p.to_string()),
                time_zone: self.time_zone.name().to_string(),
                break_glass: grants
                    .into_iter()
                    .map(|g| BreakGlassBanner {
                        patient_id: g.patient_id,
                        reason: g.reason,
                        expires_at: self.time_zone.epoch(g.expires_at),
                    })
                    .collect(),
            }))
        })
    }

    fn access_log(&self, patient_id: String, page: u32) -> BackendFuture<'_, Option<AccessLog>> {
        Box::pin(async move {
            // Only the patient reads their access log: anyone else is refused (recorded and
            // counted as every refusal), whether or not they may see the patient's results.
            let principal = self.principal.as_ref().ok_or(AppError::NotSignedIn)?;
            if principal.account.role != crate::access::Role::Patient {
                return match self.access.refuse(principal, &patient_id, Action::ViewAccessLog).await {
                    Refusal::NoAccess => Ok(None),
                    refusal => Err(refusal_error(refusal)),
                };
            }
            let Some((patient, AccessMode::OwnRecord)) = self.gate(&patient_id, Action::ViewAccessLog).await? else { return Ok(None) };
            let failed = |e: crate::access::AccessError| {
                tracing::error!(error = %e, "access log failed");
                AppError::Unavailable("access".into())
            };
            let (mut entries, total) = self.access.access_log(patient, page).await.map_err(failed)?;
            let mut refusals = self.access.refusals_of(patient).await.map_err(failed)?;
            for entry in &mut entries {
                entry.at = self.time_zone.rfc3339(&entry.at);
            }
            for refusal in &mut refusals {
                refusal.first_at = self.time_zone.rfc3339(&refusal.first_at);
                refusal.last_at = self.time_zone.rfc3339(&refusal.last_at);
            }
            let break_glass = self.access.break_glass_history(patient).await.map_err(failed)?;
            let pages = ((total + crate::access::ACCESS_LOG_PAGE - 1) / crate::access::ACCESS_LOG_PAGE).max(1);
            Ok(Some(AccessLog {
                entries,
                page,
                pages: u32::try_from(pages).unwrap_or(u32::MAX),
                total: total.max(0) as u64,
                refusals,
                break_glass: break_glass
                    .into_iter()
                    .map(|(who, reason, started, expires)| BreakGlassLine {
                        who,
                        reason,
                        started_at: self.time_zone.epoch(started),
                        expires_at: self.time_zone.epoch(expires),
                    })
                    .collect(),
            }))
        })
    }

    fn admin_overview(&self) -> BackendFuture<'_, AdminOverview> {
        Box::pin(async move {
            let principal = self.principal.as_ref().ok_or(AppError::NotSignedIn)?;
            let refused = |e: crate::access::AdminError| match e {
                crate::access::AdminError::NotAnAdmin => AppError::NotFound,
                other => {
                    tracing::error!(error = %other, "administration failed");
                    AppError::Unavailable("access".into())
                }
            };
            let by = crate::access::AdminActor::Web(Some(principal));
            let accounts = self.access.accounts(by).await.map_err(refused)?;
            let relationships = self.access.relationships(by).await.map_err(refused)?;
            let mut alarms = self.access.alarms(by).await.map_err(refused)?;
            for alarm in &mut alarms {
                alarm.at = self.time_zone.rfc3339(&alarm.at);
            }
            Ok(AdminOverview {
                alarms,
                accounts: accounts
                    .into_iter()
                    .map(|a| AccountLine {
                        login: a.login,
                        name: a.display_name,
                        role: viewer_role(a.role),
                        profession: a.profession,
                        structure: a.structure_name,
                        disabled: a.disabled,
                    })
                    .collect(),
                relationships: relationships
                    .into_iter()
                    .map(|r| RelationshipLine {
                        id: r.id,
                        login: r.login,
                        professional: r.professional,
                        patient_ins: r.patient_ins,
                        patient_name: r.patient_name,
                        kind: r.kind,
                        starts_at: self.time_zone.epoch(r.starts_at),
                        ends_at: r.ends_at.map(|t| self.time_zone.epoch(t)),
                    })
                    .collect(),
            })
        })
    }
}

fn sync_status(s: crate::dmp::sync::SyncState, zone: LocalZone) -> bioviewer_app::model::DmpSyncStatus {
    bioviewer_app::model::DmpSyncStatus {
        running: s.running,
        at: zone.rfc3339(&s.at),
        found: s.report.as_ref().map(|r| r.found).unwrap_or(0),
        stored: s.report.as_ref().map(|r| r.stored).unwrap_or(0),
        failed: s.report.as_ref().map(|r| r.failed.len()).unwrap_or(0),
        error: s.error,
    }
}

fn viewer_role(role: crate::access::Role) -> ViewerRole {
    match role {
        crate::access::Role::Professional => ViewerRole::Professional,
        crate::access::Role::Patient => ViewerRole::Patient,
        crate::access::Role::Admin => ViewerRole::Admin,
    }
}
