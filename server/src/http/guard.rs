//! The middleware every request passes: who is asking (session cookie), cross-site request
//! refusal, sign-in redirection, the per-request backend, and the security headers.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, Request, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bioviewer_app::api::ssr::Backend;

use super::{AppState, StoreBackend};
use crate::access::Principal;

pub(crate) const SESSION_COOKIE: &str = "bv_session";

/// Who is asking, for handlers outside Leptos.
#[derive(Clone)]
pub(crate) struct RequestAuth {
    pub principal: Option<Principal>,
    /// The client's address (the TCP peer), for the rate limiter and the audit trail.
    pub address: Option<String>,
}

/// The nonce of this response's Content-Security-Policy (Leptos puts it on its scripts).
#[derive(Clone)]
pub(crate) struct CspNonce(pub String);

/// A cookie's value from the request headers.
pub(crate) fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|line| {
        line.split(';').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k.trim() == name && !v.trim().is_empty()).then(|| v.trim().to_string())
        })
    })
}

/// Paths served to someone not signed in: the sign-in page and what it needs.
fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/connexion" | "/healthz" | "/favicon.svg" | "/auth/sign-in" | "/auth/oidc/start" | "/auth/oidc/callback" | "/fhir/metadata"
    )
        || path.starts_with("/pkg/")
        || path.starts_with("/sfn/")
}

/// The FHIR read API (`/fhir/...`), the only routes a bearer token opens.
pub(crate) fn is_fhir_api(path: &str) -> bool {
    path.starts_with("/fhir/")
}

/// The token of an `Authorization: Bearer ...` header.
fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim().to_string())
}

/// A state-changing request must come from one of our pages. Browsers send `Sec-Fetch-Site`
/// and `Origin` on every POST; a request carrying neither is refused too.
fn same_origin(headers: &HeaderMap, secure: bool) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return site == "same-origin";
    }
    let (Some(origin), Some(host)) =
        (headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()), headers.get(header::HOST).and_then(|v| v.to_str().ok()))
    else {
        return false;
    };
    let scheme = if secure { "https" } else { "http" };
    origin == format!("{scheme}://{host}")
}

pub(crate) fn session_cookie(token: &str, max_age_secs: u64, secure: bool) -> String {
    format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{}", if secure { "; Secure" } else { "" })
}

pub(crate) fn clear_session_cookie(secure: bool) -> String {
    session_cookie("", 0, secure)
}

/// Only a local path may follow sign-in (never `//host` or `https://...`: no open redirect).
pub(crate) fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') && !p.starts_with("/connexion") => p.to_string(),
        _ => "/".to_string(),
    }
}

/// Percent-encodes a local path for a query value (slashes kept).
pub(crate) fn percent_encode_path(path: &str) -> String {
    crate::urlencode::percent_encode(path, true)
}

pub(crate) async fn guard(State(state): State<AppState>, mut request: Request<Body>, next: Next) -> Response {
    let secure = state.access.settings().secure_cookies;
    let nonce = match crate::access::secrets::new_token() {
        Ok(n) => n,
        Err(e) => {
            tracing::error!(error = %e, "no random source");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let unsafe_method = !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if unsafe_method && !same_origin(request.headers(), secure) {
        let mut response = (StatusCode::FORBIDDEN, "cross-site request refused").into_response();
        security_headers(response.headers_mut(), &nonce, secure);
        return response;
    }
    let address = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string());
    let token = cookie_value(request.headers(), SESSION_COOKIE);
    let principal = match &token {
        None => None,
        Some(token) => match state.access.session(token, address.as_deref()).await {
            Ok(principal) => principal,
            Err(e) => {
                tracing::error!(error = %e, "session lookup failed");
                return unavailable(&nonce, secure);
            }
        },
    };
    let path = request.uri().path().to_string();
    // A system's bearer token opens the FHIR API only: on any other route it is ignored, so a
    // token never opens a page, an export or a form.
    let principal = match (principal, bearer_token(request.headers())) {
        (None, Some(bearer)) if is_fhir_api(&path) => match state.access.fhir_client_principal(&bearer, address.as_deref()).await {
            Ok(principal) => principal,
            Err(e) => {
                tracing::error!(error = %e, "FHIR client lookup failed");
                return unavailable(&nonce, secure);
            }
        },
        (principal, _) => principal,
    };
    if principal.is_none() && !is_public(&path) {
        let mut response = if path.starts_with("/api/") || is_fhir_api(&path) || unsafe_method {
            (StatusCode::UNAUTHORIZED, "sign in first").into_response()
        } else {
            let location = format!("/connexion?next={}", percent_encode_path(&path));
            (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
        };
        if token.is_some() {
            append_cookie(response.headers_mut(), &clear_session_cookie(secure));
        }
        security_headers(response.headers_mut(), &nonce, secure);
        return response;
    }
    let backend: Arc<dyn Backend> = Arc::new(StoreBackend {
        store: state.store.clone(),
        normaliser: state.normaliser.clone(),
        access: state.access.clone(),
        principal: principal.clone(),
        oidc_enabled: state.oidc.is_some(),
        dmp: state.dmp.clone(),
    });
    let stale_cookie = token.is_some() && principal.is_none();
    request.extensions_mut().insert(backend);
    request.extensions_mut().insert(RequestAuth { principal, address });
    request.extensions_mut().insert(CspNonce(nonce.clone()));
    let mut response = next.run(request).await;
    let sets_session = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.starts_with(&format!("{SESSION_COOKIE}="))));
    if stale_cookie && !sets_session {
        append_cookie(response.headers_mut(), &clear_session_cookie(secure));
    }
    security_headers(response.headers_mut(), &nonce, secure);
    response
}

/// The answer when who is asking cannot be looked up (the database is unavailable).
fn unavailable(nonce: &str, secure: bool) -> Response {
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, "service unavailable").into_response();
    security_headers(response.headers_mut(), nonce, secure);
    response
}

pub(crate) fn append_cookie(headers: &mut HeaderMap, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        headers.append(header::SET_COOKIE, value);
    }
}

/// Headers on every response. A handler that set its own Content-Security-Policy (attachments)
/// keeps it.
fn security_headers(headers: &mut HeaderMap, nonce: &str, secure: bool) {
    let csp = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    // Health data is never kept in shared or browser caches; the bundle and stylesheet may be.
    let is_asset = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/wasm") || t.starts_with("text/javascript") || t.starts_with("text/css"));
    let mut set = |name: header::HeaderName, value: &str| {
        if !headers.contains_key(&name)
            && let Ok(v) = HeaderValue::from_str(value)
        {
            headers.insert(name, v);
        }
    };
    set(header::CONTENT_SECURITY_POLICY, &csp);
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::REFERRER_POLICY, "no-referrer");
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::HeaderName::from_static("permissions-policy"), "camera=(), microphone=(), geolocation=(), interest-cohort=()");
    set(header::HeaderName::from_static("cross-origin-opener-policy"), "same-origin");
    if !is_asset {
        set(header::CACHE_CONTROL, "no-store");
    }
    if secure {
        set(header::STRICT_TRANSPORT_SECURITY, "max-age=31536000; includeSubDomains");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_follow_sign_in() {
        assert_eq!(safe_next(Some("/patients/x/results")), "/patients/x/results");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn origin_must_match_the_host() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:3000"));
        assert!(!same_origin(&h, false), "no Origin, no Sec-Fetch-Site: refused");
        h.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:3000"));
        assert!(same_origin(&h, false));
        assert!(!same_origin(&h, true), "https expected behind TLS");
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_origin(&h, false));
    }
}
