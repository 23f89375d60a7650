//! Exports for other software and the people who open them, and the FHIR read API.
//!
//! - `GET /api/patients/{id}/history.csv[?format=fr|rfc4180&lang&units]`: one row per result;
//!   French form by default in French (`;`, decimal comma, UTF-8 with BOM);
//! - `GET /api/patients/{id}/history.fhir.json[?lang&units]`: a FHIR R4 `collection` Bundle;
//! - `GET /api/patients/{id}/documents/{doc}/cda.xml`: a document as received (the Bundle's
//!   `presentedForm`);
//! - `GET /fhir/metadata`, `/fhir/Patient/{id}`, `/fhir/Observation?patient=&code=&date=&_count=`,
//!   `/fhir/DiagnosticReport?patient=`: the read API for the care team's systems, signed in or
//!   with a bearer token (`guard`), through the same gate and audit as every page.
//!
//! Every file name carries the patient's name and the day of the export.

use axum::extract::{Extension, Path as UrlPath, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bioviewer_core::export::{CsvFormat, csv};
use bioviewer_core::fhir::{self, Context, Language, Resource};
use bioviewer_core::normalise::History;
use serde_json::json;

use super::guard::RequestAuth;
use super::{AppState, HistoryQuery, api_gate, api_history, patient_document_raw};
use crate::access::Action;

const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";

#[derive(serde::Deserialize)]
pub(crate) struct ExportQuery {
    units: Option<String>,
    format: Option<String>,
    lang: Option<String>,
}

/// The history as the cumulative table showed it when the export was asked for: the same
/// period, dates, laboratory, chapter, search and "abnormal only" (`bioviewer_app::table`), so
/// an export holds what is on screen. Without any of them, the whole history.
fn as_on_screen(history: std::sync::Arc<History>, filters: &std::collections::HashMap<String, String>) -> std::sync::Arc<History> {
    let view = bioviewer_app::table::TableView::from_query(|key| filters.get(key).cloned());
    let whole = bioviewer_app::table::TableView { units: view.units, page: view.page, ..Default::default() };
    if view == whole {
        return history;
    }
    let mut shown = History::clone(&history);
    view.apply(&mut shown);
    std::sync::Arc::new(shown)
}

/// The language asked for: `lang=fr|en`, else the interface's language cookie, else the
/// `Accept-Language` header, else French.
fn language(asked: Option<&str>, headers: &HeaderMap) -> Language {
    let from_code = |c: &str| match c.get(..2) {
        Some("en") => Some(Language::English),
        Some("fr") => Some(Language::French),
        _ => None,
    };
    asked
        .and_then(from_code)
        .or_else(|| {
            headers
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(bioviewer_app::i18n::Lang::from_cookie_header)
                .map(|l| match l {
                    bioviewer_app::i18n::Lang::En => Language::English,
                    _ => Language::French,
                })
        })
        .or_else(|| headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).and_then(|v| from_code(v.trim())))
        .unwrap_or_default()
}

/// `bioviewer-MARTIN-Claire-2026-12-03`: the patient and the day, for a file someone saves.
fn file_stem(history: &History) -> String {
    let mut parts = vec!["bioviewer".to_string()];
    if let Some(p) = &history.patient {
        parts.extend(p.family_name.iter().chain(&p.given_name).map(|n| n.split_whitespace().collect::<Vec<_>>().join("_")));
    }
    parts.push(chrono::Utc::now().format("%Y-%m-%d").to_string());
    parts.join("-")
}

/// `Content-Disposition: attachment` with an ASCII name every client reads and the exact
/// (UTF-8) name for those that read RFC 6266's `filename*`.
fn attachment(stem: &str, extension: &str) -> HeaderValue {
    let ascii: String = stem
        .chars()
        .map(|c| match c {
            'à' | 'â' | 'ä' | 'á' => 'a',
            'À' | 'Â' | 'Ä' | 'Á' => 'A',
            'ç' => 'c',
            'Ç' => 'C',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'É' | 'È' | 'Ê' | 'Ë' => 'E',
            'î' | 'ï' => 'i',
            'Î' | 'Ï' => 'I',
            'ô' | 'ö' => 'o',
            'Ô' | 'Ö' => 'O',
            'ù' | 'û' | 'ü' => 'u',
            'Ù' | 'Û' | 'Ü' => 'U',
            c if c.is_ascii_alphanumeric() || c == '-' || c == '_' => c,
            _ => '_',
        })
        .collect();
    let exact = crate::urlencode::percent_encode(&format!("{stem}.{extension}"), false);
    HeaderValue::from_str(&format!("attachment; filename=\"{ascii}.{extension}\"; filename*=UTF-8''{exact}"))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// `GET /api/patients/{id}/history.csv`: one row per result, in the form asked for.
pub(crate) async fn history_csv(
    State(state): State<AppState>,
    Extension(auth): Extension<RequestAuth>,
    UrlPath(id): UrlPath<String>,
    Query(query): Query<ExportQuery>,
    Query(filters): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, super::ApiError> {
    let language = language(query.lang.as_deref(), &headers);
    let format = match query.format.as_deref() {
        Some("fr") => CsvFormat::French,
        Some("rfc4180") => CsvFormat::Rfc4180,
        _ if language == Language::French => CsvFormat::French,
        _ => CsvFormat::Rfc4180,
    };
    let history = as_on_screen(api_history(&state, &auth, &id, &HistoryQuery { units: query.units }, Action::ExportCsv).await?, &filters);
    let body = csv(&history, format, language == Language::French);
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8; header=present")),
            (header::CONTENT_DISPOSITION, attachment(&file_stem(&history), "csv")),
        ],
        body,
    )
        .into_response())
}

/// The FHIR base URL of this server as the client reached it (links and `fullUrl`s).
fn fhir_base(state: &AppState, headers: &HeaderMap) -> String {
    let scheme = if state.access.settings().secure_cookies { "https" } else { "http" };
    match headers.get(header::HOST).and_then(|v| v.to_str().ok()) {
        // A host header is only trusted as a host name and port, nothing that changes the URL.
        Some(host) if !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c)) => {
            format!("{scheme}://{host}/fhir")
        }
        _ => "/fhir".to_string(),
    }
}

fn resources_of(state: &AppState, history: &History, patient_id: &str, language: Language) -> fhir::Resources {
    let document_url = |document: &str| format!("/api/patients/{patient_id}/documents/{document}/cda.xml");
    let ctx = Context { patient_id, language, document_url: &document_url };
    fhir::resources(history, state.normaliser.catalogue(), &ctx)
}

/// `GET /api/patients/{id}/history.fhir.json`: the whole history as a FHIR R4 Bundle, a file.
pub(crate) async fn history_fhir(
    State(state): State<AppState>,
    Extension(auth): Extension<RequestAuth>,
    UrlPath(id): UrlPath<String>,
    Query(query): Query<ExportQuery>,
    Query(filters): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, super::ApiError> {
    let language = language(query.lang.as_deref(), &headers);
    let history = as_on_screen(api_history(&state, &auth, &id, &HistoryQuery { units: query.units }, Action::ExportFhir).await?, &filters);
    let resources = resources_of(&state, &history, id.trim(), language);
    let body = fhir::to_string(&fhir::bundle("collection", &fhir_base(&state, &headers), resources.all(), language));
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON)),
            (header::CONTENT_DISPOSITION, attachment(&file_stem(&history), "fhir.json")),
        ],
        body,
    )
        .into_response())
}

/// `GET /api/patients/{id}/documents/{doc}/cda.xml`: the document exactly as received, as a
/// download (never rendered by the browser: it is the laboratory's, not ours).
pub(crate) async fn cda_document(
    State(state): State<AppState>,
    Extension(auth): Extension<RequestAuth>,
    UrlPath((patient, document)): UrlPath<(String, String)>,
) -> Result<Response, super::ApiError> {
    let patient = api_gate(&state, &auth, &patient, Action::ViewDocument).await?;
    let (_, raw) = patient_document_raw(state.store.as_ref(), patient, &document)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "document failed");
            (StatusCode::SERVICE_UNAVAILABLE, "document unavailable")
        })?
        .ok_or((StatusCode::NOT_FOUND, "no such document"))?;
    let name =
        format!("attachment; filename=\"{}.xml\"", document.chars().filter(|c| c.is_ascii_hexdigit() || *c == '-').collect::<String>());
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/xml")),
            (header::CONTENT_DISPOSITION, HeaderValue::from_str(&name).unwrap_or_else(|_| HeaderValue::from_static("attachment"))),
        ],
        raw,
    )
        .into_response())
}

// --- the FHIR read API -------------------------------------------------------------------------

/// An answer of the FHIR API: a resource, or an OperationOutcome with the status.
fn fhir_response(status: StatusCode, body: &serde_json::Value) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON))], fhir::to_string(body)).into_response()
}

fn outcome(status: StatusCode, code: &str, text: &str) -> Response {
    fhir_response(status, &json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": code, "diagnostics": text}]}))
}

fn fhir_error((status, text): super::ApiError) -> Response {
    let code = match status {
        StatusCode::NOT_FOUND => "not-found",
        StatusCode::UNAUTHORIZED => "login",
        StatusCode::BAD_REQUEST => "invalid",
        _ => "transient",
    };
    outcome(status, code, text)
}

/// `GET /fhir/metadata`: what this server answers (no patient data: public).
pub(crate) async fn metadata(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let param = |name: &str, kind: &str| json!({"name": name, "type": kind});
    let body = json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": chrono::Utc::now().format("%Y-%m-%d").to_string(),
        "kind": "instance",
        "software": {"name": "Bioviewer", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": "Bioviewer: laboratory results of French patients", "url": fhir_base(&state, &headers)},
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [{
            "mode": "server",
            "security": {"description": "A professional's session, or a bearer token an administrator issued to a named system (scope patient/*.read, on behalf of one professional account: the patients that professional may see). Every read is audited."},
            "resource": [
                {"type": "Patient", "interaction": [{"code": "read"}, {"code": "search-type"}],
                 "searchParam": [param("identifier", "token")]},
                {"type": "Observation", "interaction": [{"code": "read"}, {"code": "search-type"}],
                 "searchParam": [param("patient", "reference"), param("code", "token"), param("date", "date"), param("_count", "number")]},
                {"type": "DiagnosticReport", "interaction": [{"code": "read"}, {"code": "search-type"}],
                 "searchParam": [param("patient", "reference"), param("_count", "number")]},
            ],
        }],
    });
    fhir_response(StatusCode::OK, &body)
}

/// `GET /fhir/Patient/{id}`.
pub(crate) async fn read_patient(
    State(state): State<AppState>,
    Extension(auth): Extension<RequestAuth>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let history = match api_history(&state, &auth, &id, &HistoryQuery { units: None }, Action::ViewPatient).await {
        Ok(h) => h,
        Err(e) => return fhir_error(e),
    };
    match resources_of(&state, &history, id.trim(), language(None, &headers)).patient {
        Some(p) => fhir_response(StatusCode::OK, &p.json),
        None => fhir_error((StatusCode::NOT_FOUND, "no such patient")),
    }
}

/// `GET /fhir/Patient?identifier=[system|]INS`: the patient of an INS, as a searchset (an EHR
/// knows its patients by INS). A patient out of reach and an unknown INS both answer an empty
/// searchset, after the same gate (an unknown INS is checked as the nil id).
pub(crate) async fn search_patients(
    State(state): State<AppState>,
    Extension(auth): Extension<RequestAuth>,
    Query(params): Query<Params>,
    headers: HeaderMap,
) -> Response {
    let Some(identifier) = values(&params, "identifier").next() else {
        return fhir_error((StatusCode::BAD_REQUEST, "a patient search names an identifier (identifier=INS)"));
    };
    let ins = identifier.rsplit('|').next().unwrap_or_default();
    let id = match state.access.patient_by_ins(ins).await {
        Ok(id) => id.map(|p| p.to_string()).unwrap_or_else(|| uuid::Uuid::nil().to_string()),
        Err(e) => {
            tracing::error!(error = %e, "patient lookup failed");
            return fhir_error((StatusCode::SERVICE_UNAVAILABLE, "service unavailable"));
        }
    };
    let language = language(None, &headers);
    let base = fhir_base(&state, &headers);
    let found = match api_history(&state, &auth, &id, &HistoryQuery { units: None }, Action::ViewPatient).await {
        Ok(history) => resources_of(&state, &history, &id, language).patient,
        Err((StatusCode::NOT_FOUND, _)) => None,
        Err(e) => return fhir_error(e),
    };
    let mut bundle = fhir::bundle("searchset", &base, found.iter(), language);
    bundle["total"] = json!(found.iter().count());
    fhir_response(StatusCode::OK, &bundle)
}

/// `GET /fhir/Observation/{id}` and `GET /fhir/DiagnosticReport/{id}`: the resources a
/// DiagnosticReport's `result` and an eGFR's `derivedFrom` name. Their ids begin with their
/// document's id, which names the patient; that patient's gate decides, and an id of a patient
/// out of reach answers like an id that does not exist (both pass the gate, the unknown as the
/// nil id).
async fn read_by_id(state: AppState, auth: RequestAuth, id: String, headers: HeaderMap, resource_type: &'static str) -> Response {
    let document = id.strip_prefix("egfr-").unwrap_or(&id).get(..36).and_then(|d| uuid::Uuid::parse_str(d).ok());
    let patient = match document {
        Some(d) => match state.access.patient_of_document(d).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "document lookup failed");
                return fhir_error((StatusCode::SERVICE_UNAVAILABLE, "service unavailable"));
            }
        },
        None => None,
    };
    let patient = patient.map(|p| p.to_string()).unwrap_or_else(|| uuid::Uuid::nil().to_string());
    let history = match api_history(&state, &auth, &patient, &HistoryQuery { units: None }, Action::ExportFhir).await {
        Ok(h) => h,
        Err((StatusCode::NOT_FOUND, _)) => return fhir_error((StatusCode::NOT_FOUND, "no such resource")),
        Err(e) => return fhir_error(e),
    };
    let resources = resources_of(&state, &history, &patient, language(None, &headers));
    let pool = if resource_type == "Observation" { &resources.observations } else { &resources.reports };
    match pool.iter().find(|r| r.id == id) {
        Some(r) => fhir_response(StatusCode::OK, &r.json),
        None => fhir_error((StatusCode::NOT_FOUND, "no such resource")),
    }
}

/// `GET /fhir/Observation/{id}`.
pub(crate) async fn read_observation(
    State(state): State<AppState>,
    Extension(auth): Extension<RequestAuth>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    read_by_id(state, auth, id, headers, "Observation").await
}

/// `GET /fhir/DiagnosticReport/{id}`.
pub(crate) async fn read_report(
    State(state): State<AppState>,
    Extension(auth): Extension<RequestAuth>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    read_by_id(state, auth, id, headers, "DiagnosticReport").await
}

/// A search's parameters, in the order given (a parameter may repeat: `date=ge...&date=le...`).
type Params = Vec<(String, String)>;

fn values<'p>(params: &'p Params, name: &'p str) -> impl Iterator<Item = &'p str> {
    params.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Whether a resource's codes match a `code` token (`system|code`, `|code`, `code`; a comma
/// separates alternatives).
fn code_matches(resource: &Resource, token: &str) -> bool {
    token.split(',').any(|alternative| {
        let (system, code) = match alternative.split_once('|') {
            Some((s, c)) => (Some(s), c),
            None => (None, alternative),
        };
        resource.codes.iter().any(|(s, c)| c == code && system.is_none_or(|wanted| wanted.is_empty() || wanted == s))
    })
}

/// Whether the resource's time satisfies a `date` parameter (`ge2024-01-01`, `lt2024-06`...): the
/// value covers its whole precision (a day, a month), compared with the time's instant.
fn date_matches(resource: &Resource, parameter: &str) -> Option<bool> {
    let (prefix, value) = match parameter.get(..2) {
        Some(p @ ("eq" | "ne" | "gt" | "lt" | "ge" | "le")) => (p, &parameter[2..]),
        _ => ("eq", parameter),
    };
    let asked = bioviewer_core::cda::CdaTime::parse_iso(value)?;
    let start = asked.epoch_seconds();
    // The end of the period the value names (exclusive).
    let end = match (asked.month, asked.day, asked.hour) {
        (None, _, _) => bioviewer_core::cda::CdaTime { year: asked.year + 1, ..asked }.epoch_seconds(),
        (Some(12), None, _) => bioviewer_core::cda::CdaTime { year: asked.year + 1, month: Some(1), ..asked }.epoch_seconds(),
        (Some(m), None, _) => bioviewer_core::cda::CdaTime { month: Some(m + 1), ..asked }.epoch_seconds(),
        (_, Some(_), None) => start + 86_400,
        _ => start + 1,
    };
    let Some(t) = resource.time.map(|t| t.epoch_seconds()) else { return Some(false) };
    Some(match prefix {
        "gt" => t >= end,
        "ge" => t >= start,
        "lt" => t < start,
        "le" => t < end,
        "ne" => !(start..end).contains(&t),
        _ => (start..end).contains(&t),
    })
}

/// The patient a search is for (`patient=ID` or `patient=Patient/ID`): required, so that every
/// search passes the gate of one patient.
fn patient_param(params: &Params) -> Option<String> {
    let value = values(params, "patient").next().or_else(|| values(params, "subject").next())?;
    Some(value.strip_prefix("Patient/").unwrap_or(value).to_string())
}

const DEFAULT_COUNT: usize = 50;
const MAX_COUNT: usize = 200;

async fn search(state: AppState, auth: RequestAuth, params: Params, headers: HeaderMap, resource_type: &'static str) -> Response {
    let Some(patient) = patient_param(&params) else {
        return fhir_error((StatusCode::BAD_REQUEST, "a search names its patient (patient=ID)"));
    };
    let count = values(&params, "_count").next().and_then(|c| c.parse::<usize>().ok()).unwrap_or(DEFAULT_COUNT).clamp(1, MAX_COUNT);
    let offset = values(&params, "_offset").next().and_then(|c| c.parse::<usize>().ok()).unwrap_or(0);
    let history = match api_history(&state, &auth, &patient, &HistoryQuery { units: None }, Action::ExportFhir).await {
        Ok(h) => h,
        Err(e) => return fhir_error(e),
    };
    let language = language(None, &headers);
    let resources = resources_of(&state, &history, patient.trim(), language);
    let pool = if resource_type == "Observation" { &resources.observations } else { &resources.reports };
    let mut matches: Vec<&Resource> = Vec::new();
    for r in pool {
        let codes_ok = values(&params, "code").all(|token| code_matches(r, token));
        let mut dates_ok = true;
        for d in values(&params, "date") {
            match date_matches(r, d) {
                Some(ok) => dates_ok &= ok,
                None => return fhir_error((StatusCode::BAD_REQUEST, "a date is YYYY[-MM[-DD[Thh:mm:ss+zz:zz]]] with an optional prefix")),
            }
        }
        if codes_ok && dates_ok {
            matches.push(r);
        }
    }
    let base = fhir_base(&state, &headers);
    let page: Vec<&Resource> = matches.iter().skip(offset).take(count).copied().collect();
    let link = |relation: &str, offset: usize| {
        let mut kept: Vec<(&str, String)> =
            params.iter().filter(|(k, _)| k != "_offset" && k != "_count").map(|(k, v)| (k.as_str(), v.clone())).collect();
        kept.push(("_count", count.to_string()));
        kept.push(("_offset", offset.to_string()));
        let pairs: Vec<(&str, &str)> = kept.iter().map(|(k, v)| (*k, v.as_str())).collect();
        json!({"relation": relation, "url": format!("{base}/{resource_type}?{}", crate::urlencode::form_encode(&pairs))})
    };
    let mut links = vec![link("self", offset)];
    if offset + count < matches.len() {
        links.push(link("next", offset + count));
    }
    if offset > 0 {
        links.push(link("previous", offset.saturating_sub(count)));
    }
    let mut bundle = fhir::bundle("searchset", &base, page, language);
    bundle["total"] = json!(matches.len());
    bundle["link"] = serde_json::Value::Array(links);
    fhir_response(StatusCode::OK, &bundle)
}

/// `GET /fhir/Observation?patient=&code=&date=&_count=&_offset=`.
pub(crate) async fn search_observations(
    State(state): State<AppState>,
    Extension(auth): Extension<RequestAuth>,
    Query(params): Query<Params>,
    headers: HeaderMap,
) -> Response {
    search(state, auth, params, headers, "Observation").await
}

/// `GET /fhir/DiagnosticReport?patient=&_count=&_offset=`.
pub(crate) async fn search_reports(
    State(state): State<AppState>,
    Extension(auth): Extension<RequestAuth>,
    Query(params): Query<Params>,
    headers: HeaderMap,
) -> Response {
    search(state, auth, params, headers, "DiagnosticReport").await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(time: &str, codes: &[(&str, &str)]) -> Resource {
        Resource {
            resource_type: "Observation",
            id: "x".into(),
            json: json!({}),
            codes: codes.iter().map(|(s, c)| (s.to_string(), c.to_string())).collect(),
            time: bioviewer_core::cda::CdaTime::parse_iso(time),
        }
    }

    #[test]
    fn dates_cover_their_precision() {
        let r = resource("2024-03-15T08:00:00+01:00", &[]);
        assert_eq!(date_matches(&r, "2024-03-15"), Some(true));
        assert_eq!(date_matches(&r, "ge2024-03"), Some(true));
        assert_eq!(date_matches(&r, "gt2024-03"), Some(false));
        assert_eq!(date_matches(&r, "le2024-03-14"), Some(false));
        assert_eq!(date_matches(&r, "lt2025"), Some(true));
        assert_eq!(date_matches(&r, "ge2024-12"), Some(false));
        assert_eq!(date_matches(&r, "ge-not-a-date"), None);
    }

    #[test]
    fn codes_match_with_or_without_their_system() {
        let r = resource("2024", &[("http://loinc.org", "14682-9")]);
        assert!(code_matches(&r, "14682-9"));
        assert!(code_matches(&r, "http://loinc.org|14682-9"));
        assert!(code_matches(&r, "2160-0,14682-9"));
        assert!(!code_matches(&r, "urn:oid:1.2.3|14682-9"));
        assert!(!code_matches(&r, "2160-0"));
    }

    #[test]
    fn file_names_carry_an_ascii_name_and_the_exact_one() {
        let v = attachment("bioviewer-LEFÈVRE-Zoé-2026-12-03", "csv");
        let v = v.to_str().unwrap();
        assert!(v.starts_with("attachment; filename=\"bioviewer-LEFEVRE-Zoe-2026-12-03.csv\""), "{v}");
        assert!(v.contains("filename*=UTF-8''bioviewer-LEF%C3%88VRE-Zo%C3%A9-2026-12-03.csv"), "{v}");
    }
}
