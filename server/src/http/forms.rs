//! The HTML forms that change something: sign-in, sign-out, break-the-glass, administration
//! (uploads: [`super::upload`]).
//! Plain form posts (they work before the bundle loads); each answers with a redirect
//! (post/redirect/get). Every form of a signed-in user carries the session's CSRF token, checked
//! here on top of the same-origin check of the guard.

use std::time::Duration;

use axum::Form;
use axum::extract::{Extension, Path as UrlPath, State};
use axum::http::StatusCode;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::guard::{
    RequestAuth, SESSION_COOKIE, append_cookie, clear_session_cookie, cookie_value, percent_encode_path, safe_next, same_origin_hop,
    session_cookie,
};
use crate::access::secrets::constant_time_eq;
use crate::access::{
    Action, AdminActor, AdminError, AdminProblem, BreakGlassError, LinkActor, LinkError, NewAccount, Principal, Refusal, Role, SignInError,
};
use crate::domain::PatientId;

fn see_other(location: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, location.to_string())]).into_response()
}

fn failed(e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "form failed");
    (StatusCode::SERVICE_UNAVAILABLE, "service unavailable").into_response()
}

/// A form posted by the signed-in user with their CSRF token: the user and the form. Any other
/// post is refused here, before the handler runs.
pub(crate) struct Checked<T>(pub Principal, pub T);

/// Forms that carry the session's CSRF token.
pub(crate) trait CarriesCsrf {
    fn csrf(&self) -> &str;
}

macro_rules! carries_csrf {
    ($($form:ty),*) => { $(impl CarriesCsrf for $form { fn csrf(&self) -> &str { &self.csrf } })* };
}
carries_csrf!(CsrfForm, BreakGlassForm, AccountForm, DisableForm, RelationshipForm);

impl<S, T> axum::extract::FromRequest<S> for Checked<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned + CarriesCsrf + Send,
{
    type Rejection = Response;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, Response> {
        let auth = request.extensions().get::<RequestAuth>().cloned().ok_or_else(|| StatusCode::UNAUTHORIZED.into_response())?;
        let Form(form) = Form::<T>::from_request(request, state).await.map_err(IntoResponse::into_response)?;
        let principal = checked(&auth, form.csrf())?.clone();
        Ok(Checked(principal, form))
    }
}

/// The signed-in user, if the form's CSRF token is theirs.
#[allow(clippy::result_large_err)] // the refusal is the response itself, built once per bad form
pub(crate) fn checked<'a>(auth: &'a RequestAuth, csrf: &str) -> Result<&'a Principal, Response> {
    match &auth.principal {
        None => Err((StatusCode::UNAUTHORIZED, "sign in first").into_response()),
        Some(p) if constant_time_eq(&p.csrf_token, csrf) => Ok(p),
        Some(_) => Err((StatusCode::FORBIDDEN, "invalid form token: reload the page").into_response()),
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct SignInForm {
    login: String,
    password: String,
    next: Option<String>,
}

/// `POST /auth/sign-in`: a new session (a new id, whatever the browser had), then back where
/// the user was going.
pub(crate) async fn sign_in(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Extension(auth): Extension<RequestAuth>,
    Form(form): Form<SignInForm>,
) -> Response {
    let secure = state.access.settings().secure_cookies;
    let address = auth.address.clone();
    let next = safe_next(form.next.as_deref());
    match state.access.sign_in(&form.login, &form.password, address.as_deref()).await {
        Ok(signed_in) => {
            // Session fixation: whatever session the browser brought ends here.
            if let Some(old) = cookie_value(&headers, SESSION_COOKIE)
                && let Err(e) = state.access.discard_session_token(&old).await
            {
                return failed(&e);
            }
            let mut response = see_other(&next);
            let max_age = state.access.settings().absolute_timeout.as_secs();
            append_cookie(response.headers_mut(), &session_cookie(&signed_in.token, max_age, secure));
            response
        }
        Err(SignInError::Invalid) => see_other(&format!("/connexion?error=invalid&next={}", percent_encode_path(&next))),
        Err(SignInError::RateLimited { .. }) => see_other(&format!("/connexion?error=rate&next={}", percent_encode_path(&next))),
        Err(SignInError::Failed(e)) => failed(&e),
    }
}

const OIDC_STATE_COOKIE: &str = "bv_oidc_state";

#[derive(serde::Deserialize)]
pub(crate) struct OidcStart {
    next: Option<String>,
}

/// `GET /auth/oidc/start`: off to the identity provider, with this browser's state in a cookie.
pub(crate) async fn oidc_start(State(state): State<AppState>, axum::extract::Query(query): axum::extract::Query<OidcStart>) -> Response {
    let Some(oidc) = &state.oidc else { return (StatusCode::NOT_FOUND, "OpenID Connect is not configured").into_response() };
    match oidc.start(&safe_next(query.next.as_deref())).await {
        Ok((url, browser_state)) => {
            let mut response = see_other(&url);
            let secure = if state.access.settings().secure_cookies { "; Secure" } else { "" };
            // Lax: the provider sends the browser back with a top-level GET.
            append_cookie(
                response.headers_mut(),
                &format!("{OIDC_STATE_COOKIE}={browser_state}; Path=/auth/oidc; HttpOnly; SameSite=Lax; Max-Age=600{secure}"),
            );
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "OpenID sign-in could not start");
            see_other("/connexion?error=oidc")
        }
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct OidcCallback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /auth/oidc/callback`: the provider's answer; a new session on success. The browser
/// arrives from the provider's site, so a redirect would not carry the new `SameSite=Strict`
/// cookie to the next page (Chromium keeps the whole redirect chain cross-site): the answer is
/// a page of ours that moves on from here.
pub(crate) async fn oidc_callback(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Extension(auth): Extension<RequestAuth>,
    axum::extract::Query(query): axum::extract::Query<OidcCallback>,
) -> Response {
    let Some(oidc) = &state.oidc else { return (StatusCode::NOT_FOUND, "OpenID Connect is not configured").into_response() };
    let secure = state.access.settings().secure_cookies;
    let clear_state =
        format!("{OIDC_STATE_COOKIE}=; Path=/auth/oidc; HttpOnly; SameSite=Lax; Max-Age=0{}", if secure { "; Secure" } else { "" });
    let fail = |reason: &dyn std::fmt::Display| {
        tracing::warn!(reason = %reason, "OpenID sign-in refused");
        let mut response = see_other("/connexion?error=oidc");
        append_cookie(response.headers_mut(), &clear_state);
        response
    };
    let (Some(code), Some(returned_state)) = (query.code.as_deref(), query.state.as_deref()) else {
        return fail(&query.error.unwrap_or_else(|| "no code".into()));
    };
    let browser_state = cookie_value(&headers, OIDC_STATE_COOKIE);
    let (identity, next) = match oidc.finish(returned_state, browser_state.as_deref(), code).await {
        Ok(done) => done,
        Err(e) => return fail(&e),
    };
    match state.access.sign_in_oidc(&identity, auth.address.as_deref()).await {
        Ok(signed_in) => {
            if let Some(old) = cookie_value(&headers, SESSION_COOKIE)
                && let Err(e) = state.access.discard_session_token(&old).await
            {
                return failed(&e);
            }
            let mut response = same_origin_hop(&next);
            append_cookie(
                response.headers_mut(),
                &session_cookie(&signed_in.token, state.access.settings().absolute_timeout.as_secs(), secure),
            );
            append_cookie(response.headers_mut(), &clear_state);
            response
        }
        Err(e) => fail(&e),
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct CsrfForm {
    csrf: String,
}

/// `POST /auth/sign-out`: the session ends in the database, not only in the browser.
pub(crate) async fn sign_out(State(state): State<AppState>, Checked(principal, _): Checked<CsrfForm>) -> Response {
    let principal = &principal;
    if let Err(e) = state.access.sign_out(principal).await {
        return failed(&e);
    }
    let mut response = see_other("/connexion?signed_out=1");
    append_cookie(response.headers_mut(), &clear_session_cookie(state.access.settings().secure_cookies));
    response
}

#[derive(serde::Deserialize)]
pub(crate) struct BreakGlassForm {
    csrf: String,
    ins: String,
    reason: String,
    minutes: u64,
    /// `centre_15`: a regulation physician's access; otherwise break-the-glass.
    purpose: Option<String>,
}

/// `POST /break-glass`: opens a patient's record without a care relationship.
pub(crate) async fn break_glass(State(state): State<AppState>, Checked(principal, form): Checked<BreakGlassForm>) -> Response {
    let principal = &principal;
    let regulation = form.purpose.as_deref() == Some("centre_15");
    match state
        .access
        .start_break_glass(principal, &form.ins, &form.reason, Duration::from_secs(form.minutes.saturating_mul(60)), regulation)
        .await
    {
        Ok(patient) => see_other(&format!("/patients/{patient}/summary")),
        Err(BreakGlassError::NotAProfessional) => (StatusCode::FORBIDDEN, "only professionals may break the glass").into_response(),
        Err(BreakGlassError::ReasonTooShort { .. }) => see_other("/?break_glass=reason"),
        Err(BreakGlassError::BadDuration { .. }) => see_other("/?break_glass=duration"),
        Err(BreakGlassError::UnknownPatient) => see_other("/?break_glass=unknown"),
        Err(BreakGlassError::InvalidIns) => see_other("/?break_glass=invalid_ins"),
        Err(BreakGlassError::Failed(e)) => failed(&e),
    }
}

/// `POST /patients/{id}/break-glass/end`: ends a break-the-glass access before it expires.
pub(crate) async fn end_break_glass(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
    Checked(principal, _): Checked<CsrfForm>,
) -> Response {
    let principal = &principal;
    let Some(patient) = PatientId::parse(&id) else { return see_other("/") };
    match state.access.end_break_glass(principal, patient).await {
        Ok(_) => see_other("/"),
        Err(e) => failed(&e),
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct AccountForm {
    csrf: String,
    login: String,
    password: String,
    role: String,
    display_name: String,
    rpps: Option<String>,
    profession: Option<String>,
    structure_name: Option<String>,
    patient_ins: Option<String>,
}

fn admin_outcome(result: Result<(), AdminError>, done: &str) -> Response {
    match result {
        Ok(()) => see_other(&format!("/admin?done={done}")),
        Err(AdminError::NotAnAdmin) => (StatusCode::FORBIDDEN, "administrators only").into_response(),
        // A code: the page says it in the reader's language.
        Err(AdminError::Invalid(problem)) => see_other(&format!("/admin?error={}", problem.code())),
        Err(AdminError::Failed(e)) => failed(&e),
    }
}

/// `POST /admin/accounts`.
pub(crate) async fn create_account(State(state): State<AppState>, Checked(principal, form): Checked<AccountForm>) -> Response {
    let principal = &principal;
    let Some(role) = Role::parse(&form.role) else { return admin_outcome(Err(AdminError::Invalid(AdminProblem::BadRole)), "") };
    let nonempty = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
    let new = NewAccount {
        login: form.login,
        password: Some(form.password),
        role,
        display_name: form.display_name,
        rpps: nonempty(form.rpps),
        profession: nonempty(form.profession),
        structure_id: None,
        structure_name: nonempty(form.structure_name),
        patient_ins: nonempty(form.patient_ins),
    };
    admin_outcome(state.access.create_account(AdminActor::Web(Some(principal)), new).await.map(|_| ()), "account")
}

#[derive(serde::Deserialize)]
pub(crate) struct DisableForm {
    csrf: String,
    disabled: bool,
}

/// `POST /admin/accounts/{login}/disabled`.
pub(crate) async fn set_account_disabled(
    State(state): State<AppState>,
    UrlPath(login): UrlPath<String>,
    Checked(principal, form): Checked<DisableForm>,
) -> Response {
    let principal = &principal;
    admin_outcome(state.access.set_account_disabled(AdminActor::Web(Some(principal)), &login, form.disabled).await, "account")
}

#[derive(serde::Deserialize)]
pub(crate) struct RelationshipForm {
    csrf: String,
    login: String,
    patient_ins: String,
    kind: String,
    days: Option<String>,
}

/// `POST /admin/relationships`.
pub(crate) async fn add_relationship(State(state): State<AppState>, Checked(principal, form): Checked<RelationshipForm>) -> Response {
    let principal = &principal;
    let days = match form.days.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        None => None,
        Some(d) => match d.parse::<u32>() {
            Ok(d) if (1..=3650).contains(&d) => Some(d),
            _ => return admin_outcome(Err(AdminError::Invalid(AdminProblem::BadDuration)), ""),
        },
    };
    let result = state.access.add_relationship(AdminActor::Web(Some(principal)), &form.login, &form.patient_ins, &form.kind, days).await;
    admin_outcome(result.map(|_| ()), "relationship")
}

/// `POST /admin/relationships/{id}/end`.
pub(crate) async fn end_relationship(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
    Checked(principal, _): Checked<CsrfForm>,
) -> Response {
    let principal = &principal;
    admin_outcome(state.access.end_relationship(AdminActor::Web(Some(principal)), &id).await.map(|_| ()), "ended")
}

#[derive(serde::Deserialize)]
pub(crate) struct LinkForm {
    csrf: String,
    /// The other record's identifier: INS, INS-C or `ROOT^VALUE`.
    other: String,
    /// `1` once the user saw the other record and confirmed; otherwise the link is only checked
    /// and the page shows the other record for confirmation.
    confirm: Option<String>,
}
carries_csrf!(LinkForm);

/// `POST /patients/{id}/links`: this record and the one known by `other` are one person's.
/// Either record out of the user's sight answers like an unknown identifier.
pub(crate) async fn link_records(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
    Checked(principal, form): Checked<LinkForm>,
) -> Response {
    let Some(patient) = PatientId::parse(&id) else { return see_other("/") };
    let other = match crate::store::PatientIdentifier::parse(&form.other) {
        Some(identifier) => match state.store.patient_by_identifier(identifier).await {
            Ok(found) => found,
            Err(e) => return failed(&e),
        },
        None => None,
    };
    // An unknown identifier is checked like any other (the nil id matches nobody's care).
    let other = other.unwrap_or(PatientId(uuid::Uuid::nil()));
    let by = LinkActor::Professional(&principal);
    if form.confirm.as_deref() != Some("1") {
        // First the other record, for the clinician to see whom they are linking.
        return match state.access.check_link(state.store.as_ref(), by, patient, other, true).await {
            Ok(_) => see_other(&format!("/patients/{patient}?link_confirm={other}")),
            Err(e) => link_outcome(patient, Err(e)),
        };
    }
    link_outcome(patient, state.access.link_records(state.store.as_ref(), by, patient, other, true).await)
}

/// `POST /patients/{id}/links/{other}/end`: undoes a link.
pub(crate) async fn unlink_records(
    State(state): State<AppState>,
    UrlPath((id, other)): UrlPath<(String, String)>,
    Checked(principal, _): Checked<CsrfForm>,
) -> Response {
    let (Some(patient), Some(other)) = (PatientId::parse(&id), PatientId::parse(&other)) else { return see_other("/") };
    link_outcome(patient, state.access.link_records(state.store.as_ref(), LinkActor::Professional(&principal), patient, other, false).await)
}

fn link_outcome(patient: PatientId, result: Result<bool, LinkError>) -> Response {
    match result {
        Ok(_) => see_other(&format!("/patients/{patient}?links=done")),
        Err(LinkError::NoAccess | LinkError::SameRecord) => see_other(&format!("/patients/{patient}?links=refused")),
        // Only for two records the user may see both of (checked first).
        Err(LinkError::NotOnePerson(_)) => see_other(&format!("/patients/{patient}?links=not_one_person")),
        Err(e) => failed(&e),
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct TargetForm {
    csrf: String,
    /// `set` (or change) or `end`.
    action: String,
    #[serde(default)]
    low: String,
    #[serde(default)]
    high: String,
    /// The unit the bounds are in: the analyte's display unit the page showed.
    #[serde(default)]
    unit: String,
    /// `conventional` when the page was in conventional units (to go back to it).
    units: Option<String>,
}
carries_csrf!(TargetForm);

/// `POST /patients/{id}/targets/{analyte}`: a clinician sets or changes (`action=set`) or ends
/// (`action=end`) the patient's treatment target for an analyte, then goes back to the analyte
/// page, which says what was done or what is wrong with the bounds. Only a professional who may
/// open the record: the patient's own account and the administrator never set a target, and a
/// record out of the user's sight answers like a missing one. Recorded in the patient's access
/// log (`target_set`, `target_ended`).
pub(crate) async fn set_target(
    State(state): State<AppState>,
    UrlPath((id, analyte)): UrlPath<(String, String)>,
    Checked(principal, form): Checked<TargetForm>,
) -> Response {
    use bioviewer_core::judge::{TargetProblem, parse_target};
    if principal.account.role != Role::Professional {
        return (StatusCode::FORBIDDEN, "only a clinician sets a treatment target").into_response();
    }
    let not_found = || (StatusCode::NOT_FOUND, "no such patient or analyte").into_response();
    // Both go into the address this answer redirects to: a UUID and a catalogue id only.
    let Some(patient) = PatientId::parse(&id) else { return not_found() };
    let catalogue = state.normaliser.catalogue();
    let Some(analyte) = catalogue.by_id(&analyte).map(|a| a.id.clone()) else { return not_found() };
    let units = if form.units.as_deref() == Some("conventional") { "units=conventional&" } else { "" };
    let back = |outcome: &str| see_other(&format!("/patients/{patient}/analytes/{analyte}?{units}{outcome}#target"));
    let (action, new) = match form.action.as_str() {
        "set" => match parse_target(catalogue, &analyte, &form.low, &form.high, &form.unit) {
            Ok(bounds) => (Action::TargetSet, Some(bounds)),
            Err(problem) => return back(&format!("target_error={}", problem.code())),
        },
        "end" => (Action::TargetEnded, None),
        _ => return back(&format!("target_error={}", TargetProblem::NoBound.code())),
    };
    match state.access.open_patient(Some(&principal), &patient.to_string(), action).await {
        Ok(_) => {}
        Err(Refusal::NotSignedIn | Refusal::NoAccess) => return not_found(),
        Err(Refusal::Throttled) => return (StatusCode::TOO_MANY_REQUESTS, "too many refused requests; try again later").into_response(),
        Err(Refusal::Failed(e)) => return failed(&e),
    }
    let by = principal.account.id;
    match new {
        Some((low, high, unit)) => {
            let target = crate::store::NewTarget { analyte: analyte.clone(), low, high, unit, by };
            match state.store.set_treatment_target(patient, target).await {
                Ok(()) => back("target=saved"),
                Err(e) => failed(&e),
            }
        }
        None => match state.store.end_treatment_target(patient, analyte.clone(), by).await {
            Ok(_) => back("target=ended"),
            Err(e) => failed(&e),
        },
    }
}
