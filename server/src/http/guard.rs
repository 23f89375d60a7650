//! The middleware every request passes: who is asking (session cookie), cross-site request
//! refusal, sign-in redirection, the per-request backend, and the security headers.

use std::net::{IpAddr, SocketAddr};
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
    /// The client's address ([`client_address`]), for the sign-in throttle and the audit trail.
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
    ) || path.starts_with("/pkg/")
        || path.starts_with("/sfn/")
}

/// How long a browser may keep a static file. The bundle's files are named by their content
/// (`make site` writes `pkg/bioviewer.<hash>.wasm` and `hash.txt`): kept a year, never asked
/// again; a new build has new names. Other static files are checked again each time.
fn asset_cache_control(path: &str) -> Option<&'static str> {
    let hashed = path.strip_prefix("/pkg/").and_then(|name| {
        let (stem, extension) = name.rsplit_once('.')?;
        let (_, hash) = stem.rsplit_once('.')?;
        (matches!(extension, "js" | "wasm" | "css") && hash.len() >= 16 && hash.bytes().all(|b| b.is_ascii_hexdigit())).then_some(())
    });
    match (hashed, path.starts_with("/pkg/") || path == "/favicon.svg") {
        (Some(()), _) => Some("public, max-age=31536000, immutable"),
        (None, true) => Some("no-cache"),
        (None, false) => None,
    }
}

/// The FHIR read API (`/fhir/...`), the only routes a bearer token opens.
/// The patient a page of the interface is about (`/patients/{id}` and the pages under it), and
/// whether it is the patient's access log (which only the patient reads), for the status of a
/// refused page.
fn patient_of_page(path: &str) -> Option<(&str, bool)> {
    let rest = path.strip_prefix("/patients/")?;
    let (id, page) = rest.split_once('/').unwrap_or((rest, ""));
    let page = page.split('/').next().unwrap_or_default();
    matches!(page, "" | "summary" | "results" | "documents" | "analytes" | "access-log").then_some((id, page == "access-log"))
}

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
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let scheme = if secure { "https" } else { "http" };
    match (site, origin) {
        // The browser says another site (or none) sent it.
        (Some(site), _) if site != "same-origin" => false,
        // An Origin is checked whatever Sec-Fetch-Site says: a foreign one is never ours.
        // Behind a TLS proxy the browser's scheme may differ from ours; the host may not. Our
        // pages send `Referrer-Policy: no-referrer`, under which browsers write `Origin: null`
        // on their own form posts: with Sec-Fetch-Site saying same-origin, that is ours.
        (Some(_), Some("null")) => true,
        (Some(_), Some(origin)) => host.is_some_and(|host| origin == format!("http://{host}") || origin == format!("https://{host}")),
        (None, Some(origin)) => host.is_some_and(|host| origin == format!("{scheme}://{host}")),
        (Some(_), None) => true,
        (None, None) => false,
    }
}

/// `SameSite=Strict`: a navigation started by another site (a link, a form, a script on a
/// third-party page) does not carry the session, so it cannot record views or start DMP syncs
/// under the user's name. Where a cross-site arrival must end signed in (a link from elsewhere,
/// the OpenID callback), the answer is [`same_origin_hop`].
pub(crate) fn session_cookie(token: &str, max_age_secs: u64, secure: bool) -> String {
    format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{}", if secure { "; Secure" } else { "" })
}

pub(crate) fn clear_session_cookie(secure: bool) -> String {
    session_cookie("", 0, secure)
}

/// Only a local path may follow sign-in (never `//host`, `/\\host` or `https://...`: no open
/// redirect). Browsers drop tabs and newlines from URLs (`/\t/evil.example/` is
/// `//evil.example/` to them), so no control character or whitespace is accepted; and the same
/// rules hold once percent-decoded, for whatever decodes the path again later.
pub(crate) fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(p) if is_local_path(p) && is_local_path(&crate::urlencode::percent_decode(p)) && !p.starts_with("/connexion") => p.to_string(),
        _ => "/".to_string(),
    }
}

/// One `/`, then neither `/` nor `\\`; no `\\`, control character or whitespace anywhere.
fn is_local_path(p: &str) -> bool {
    let mut chars = p.chars();
    chars.next() == Some('/')
        && !matches!(chars.next(), Some('/' | '\\'))
        && !p.chars().any(|c| c == '\\' || c.is_control() || c.is_whitespace())
}

/// A page of our own that moves the browser on to `location` (a [`safe_next`] path). A
/// navigation that started on another site does not carry the `SameSite=Strict` session
/// cookie, not even after our redirects; the navigation this page starts is same-origin, so it
/// does. A meta refresh and a link: no script (the CSP allows none inline).
pub(crate) fn same_origin_hop(location: &str) -> Response {
    let location = safe_next(Some(location));
    let href = location.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;");
    let page = format!(
        "<!DOCTYPE html><html lang=\"fr\"><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"0;url={href}\">\
         <title>Bioviewer</title></head><body><p><a href=\"{href}\">Continuer</a></p></body></html>"
    );
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
}

/// A page navigation that another site started (a link in a message, a bookmark page).
fn cross_site_navigation(headers: &HeaderMap) -> bool {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    matches!(get("sec-fetch-site"), Some("cross-site" | "same-site")) && get("sec-fetch-mode") == Some("navigate")
}

/// The client's address: the TCP peer, unless the peer is one of the trusted proxies; then
/// the right-most address of `X-Forwarded-For` that is not itself a trusted proxy (the
/// addresses left of it were written by the client and prove nothing). An unreadable entry
/// stops the walk at the nearest address read.
pub(crate) fn client_address(peer: IpAddr, forwarded_for: &[&str], trusted: &[IpAddr]) -> IpAddr {
    let trusted_hop = |ip: &IpAddr| trusted.iter().any(|t| t.to_canonical() == ip.to_canonical());
    let peer = peer.to_canonical();
    if !trusted_hop(&peer) {
        return peer;
    }
    let mut client = peer;
    for hop in forwarded_for.iter().rev().flat_map(|line| line.split(',').rev()) {
        let hop = hop.trim();
        let Some(ip) = hop.parse::<IpAddr>().ok().or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip())) else {
            return client;
        };
        client = ip.to_canonical();
        if !trusted_hop(&client) {
            return client;
        }
    }
    client
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
    let address = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| {
        let forwarded: Vec<&str> = request.headers().get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect();
        client_address(c.0.ip(), &forwarded, &state.access.settings().trusted_proxies).to_string()
    });
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
        } else if token.is_none() && cross_site_navigation(request.headers()) {
            // Perhaps signed in, but the Strict cookie stayed behind: ask again from here.
            same_origin_hop(request.uri().path_and_query().map_or("/", |p| p.as_str()))
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
    // A patient's page asked with a trailing slash goes to its one address (review finding: the
    // router's fallback answered it 404 over the page, a status the page did not say).
    if *request.method() == Method::GET && path.len() > 1 && path.ends_with('/') && patient_of_page(path.trim_end_matches('/')).is_some() {
        let query = request.uri().query().map(|q| format!("?{q}")).unwrap_or_default();
        let location = format!("{}{query}", path.trim_end_matches('/'));
        let mut response = (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, location)]).into_response();
        security_headers(response.headers_mut(), &nonce, secure);
        return response;
    }
    // A patient's home is their own summary, not a list of patients.
    if let Some(own) = principal
        .as_ref()
        .filter(|p| p.account.role == crate::access::Role::Patient)
        .and_then(|p| p.account.patient_id)
        .filter(|_| path == "/" && *request.method() == Method::GET)
    {
        let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, format!("/patients/{own}/summary"))]).into_response();
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
        time_zone: state.time_zone,
    });
    // A page of a patient this user may not see, or of no patient, is a 404, as its server
    // functions are. The page streams: its status would leave before its data said "not found"
    // (200 or 404 depending on timing), so it is decided here, from the same rule the data's
    // gate applies (this read records nothing; the page's own gate records the refusal).
    let refused_page = match (&principal, patient_of_page(&path)) {
        // The id as the page reads it: percent-decoded (review finding: `%61` for `a` gave a 404
        // status over the patient's page).
        (Some(principal), Some((id, access_log))) if *request.method() == Method::GET => {
            match crate::domain::PatientId::parse(&crate::urlencode::percent_decode(id)) {
                None => true,
                Some(patient) => match state.access.mode_for(principal, patient).await {
                    Ok(None) => true,
                    Ok(Some(mode)) => access_log && mode != crate::access::AccessMode::OwnRecord,
                    Err(_) => false,
                },
            }
        }
        _ => false,
    };
    let auth_account = principal.as_ref().map(|p| p.account.id);
    let stale_cookie = token.is_some() && principal.is_none();
    request.extensions_mut().insert(backend);
    request.extensions_mut().insert(RequestAuth { principal, address });
    request.extensions_mut().insert(CspNonce(nonce.clone()));
    let mut response = next.run(request).await;
    if refused_page && response.status() == StatusCode::OK {
        // As the page's data answered: "too many" once the account's refusals are throttled.
        let throttled = match &auth_account {
            Some(account) => state.access.refusals_throttled(*account).await.unwrap_or(false),
            None => false,
        };
        *response.status_mut() = if throttled { StatusCode::TOO_MANY_REQUESTS } else { StatusCode::NOT_FOUND };
    }
    let sets_session = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.starts_with(&format!("{SESSION_COOKIE}="))));
    if stale_cookie && !sets_session {
        append_cookie(response.headers_mut(), &clear_session_cookie(secure));
    }
    if response.status() == StatusCode::OK
        && let Some(cache) = asset_cache_control(&path)
    {
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
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
         connect-src 'self'; font-src 'self'; object-src 'none'; frame-src 'self'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'"
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
    fn the_patient_a_page_is_about() {
        assert_eq!(patient_of_page("/patients/abc"), Some(("abc", false)));
        assert_eq!(patient_of_page("/patients/abc/summary"), Some(("abc", false)));
        assert_eq!(patient_of_page("/patients/abc/documents/d1"), Some(("abc", false)));
        assert_eq!(patient_of_page("/patients/abc/analytes/tsh"), Some(("abc", false)));
        assert_eq!(patient_of_page("/patients/abc/access-log"), Some(("abc", true)));
        assert_eq!(patient_of_page("/patients/abc/targets/tsh"), None, "a form's route answers for itself");
        assert_eq!(patient_of_page("/api/patients/abc/history"), None);
        assert_eq!(patient_of_page("/"), None);
    }

    #[test]
    fn a_foreign_origin_is_refused_whatever_sec_fetch_site_says() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, HeaderValue::from_static(v));
            }
            h
        };
        let host = ("host", "bioviewer.test");
        assert!(same_origin(&headers(&[host, ("sec-fetch-site", "same-origin"), ("origin", "http://bioviewer.test")]), false));
        assert!(!same_origin(&headers(&[host, ("sec-fetch-site", "same-origin"), ("origin", "https://evil.example")]), false));
        assert!(!same_origin(&headers(&[host, ("sec-fetch-site", "cross-site"), ("origin", "http://bioviewer.test")]), false));
        // A browser's own form post under `Referrer-Policy: no-referrer`.
        assert!(same_origin(&headers(&[host, ("sec-fetch-site", "same-origin"), ("origin", "null")]), false));
        assert!(!same_origin(&headers(&[host, ("sec-fetch-site", "cross-site"), ("origin", "null")]), false));
        assert!(!same_origin(&headers(&[host, ("origin", "http://evil.example")]), false));
        assert!(same_origin(&headers(&[host, ("origin", "http://bioviewer.test")]), false));
        assert!(!same_origin(&headers(&[host]), false), "neither header: refused");
    }

    #[test]
    fn only_content_named_bundle_files_are_cached_for_long() {
        let year = Some("public, max-age=31536000, immutable");
        assert_eq!(asset_cache_control("/pkg/bioviewer.0123456789abcdef.wasm"), year);
        assert_eq!(asset_cache_control("/pkg/bioviewer.0123456789abcdef.css"), year);
        assert_eq!(asset_cache_control("/pkg/bioviewer.wasm"), Some("no-cache"), "an unhashed name may change content");
        assert_eq!(asset_cache_control("/pkg/bioviewer.v1.js"), Some("no-cache"));
        assert_eq!(asset_cache_control("/favicon.svg"), Some("no-cache"));
        assert_eq!(asset_cache_control("/patients/0123456789abcdef.css"), None, "pages are never cached");
    }

    #[test]
    fn only_local_paths_follow_sign_in() {
        assert_eq!(safe_next(Some("/patients/x/results")), "/patients/x/results");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(None), "/");
        assert_eq!(safe_next(Some("/patients/x/results?units=conventional&a=%2F")), "/patients/x/results?units=conventional&a=%2F");
    }

    #[test]
    fn a_next_path_with_control_characters_is_not_followed_to_another_host() {
        // Browsers drop tabs and newlines from URLs: each of these is `//evil.example/` to them.
        for hostile in [
            "/\t/evil.example/",
            "/\n/evil.example/",
            "/\r\n/evil.example/",
            "\t//evil.example/",
            " //evil.example/",
            "/\u{0}/evil.example",
        ] {
            assert_eq!(safe_next(Some(hostile)), "/", "{hostile:?}");
        }
        // Whitespace or a backslash anywhere, and a path that is not absolute.
        for hostile in ["/ /evil.example/", "/\u{a0}/evil.example/", "/a\\b", "evil.example", "", "javascript:alert(1)", "/\u{7f}/x"] {
            assert_eq!(safe_next(Some(hostile)), "/", "{hostile:?}");
        }
        // Percent-encoded tricks that decode to the same.
        for hostile in
            ["/%2F/evil.example/", "/%2fevil.example", "/%5Cevil.example", "/%09/evil.example/", "/%0A/evil.example/", "%2F%2Fevil.example"]
        {
            assert_eq!(safe_next(Some(hostile)), "/", "{hostile:?}");
        }
    }

    #[test]
    fn the_client_address_is_the_peer_unless_a_trusted_proxy_forwarded_it() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let proxy = [ip("10.0.0.1")];
        // No trusted proxy: the header is ignored, whatever it says.
        assert_eq!(client_address(ip("203.0.113.5"), &["198.51.100.7"], &[]), ip("203.0.113.5"));
        // A peer that is not the trusted proxy forges the header: ignored.
        assert_eq!(client_address(ip("203.0.113.5"), &["198.51.100.7"], &proxy), ip("203.0.113.5"));
        // Through the proxy: the right-most address it did not write itself.
        assert_eq!(client_address(ip("10.0.0.1"), &["198.51.100.7"], &proxy), ip("198.51.100.7"));
        assert_eq!(
            client_address(ip("10.0.0.1"), &["1.2.3.4, 198.51.100.7"], &proxy),
            ip("198.51.100.7"),
            "the client's own entry is not believed"
        );
        assert_eq!(
            client_address(ip("10.0.0.1"), &["1.2.3.4", "198.51.100.7, 10.0.0.1"], &proxy),
            ip("198.51.100.7"),
            "several lines, trusted hops skipped"
        );
        assert_eq!(client_address(ip("10.0.0.1"), &["198.51.100.7:4711"], &proxy), ip("198.51.100.7"), "with a port");
        assert_eq!(client_address(ip("10.0.0.1"), &["1.2.3.4, garbage"], &proxy), ip("10.0.0.1"), "unreadable: the nearest hop");
        assert_eq!(client_address(ip("10.0.0.1"), &[], &proxy), ip("10.0.0.1"), "no header: the proxy itself");
        assert_eq!(client_address(ip("::ffff:10.0.0.1"), &["198.51.100.7"], &proxy), ip("198.51.100.7"), "IPv4 mapped in IPv6");
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
