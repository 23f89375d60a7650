//! Sign-in, the signed-in user's menu, break-the-glass, the patient's access log, administration.
//!
//! Every form here is a plain HTML form posted to the server (`server/src/http/forms.rs`): it
//! works before the bundle has loaded, and the server checks rights and the CSRF token itself.

use leptos::prelude::*;
use leptos_router::hooks::{use_location, use_params_map, use_query_map};

use crate::api::{AppError, load_access_log, load_admin, oidc_enabled, whoami};
use crate::components::{format_datetime, format_instant, split_zone, zone_label};
use crate::i18n::{Lang, Msg, tr, use_lang};
use crate::model::{AccessLog, AccessLogLine, AdminOverview, AlarmLine, RefusalGroup, Viewer, ViewerRole};

/// The signed-in user, loaded once per page and shared by every component.
#[derive(Clone, Copy)]
pub struct ViewerResource(pub Resource<Result<Option<Viewer>, AppError>>);

pub fn provide_viewer() {
    provide_context(ViewerResource(Resource::new(|| (), |_| whoami())));
}

pub fn use_viewer() -> Resource<Result<Option<Viewer>, AppError>> {
    expect_context::<ViewerResource>().0
}

#[component]
pub fn SignInPage() -> impl IntoView {
    let query = use_query_map();
    let next = move || query.read().get("next").unwrap_or_default();
    let notice = move || {
        let q = query.read();
        match (q.get("error").as_deref(), q.get("signed_out").is_some()) {
            (Some("invalid"), _) => Some((Msg::SignInInvalid, true)),
            (Some("rate"), _) => Some((Msg::SignInRateLimited, true)),
            (Some("oidc"), _) => Some((Msg::SignInOidcFailed, true)),
            (_, true) => Some((Msg::SignedOut, false)),
            _ => None,
        }
    };
    let oidc = Resource::new(|| (), |_| oidc_enabled());
    view! {
        <section class="page sign-in">
            <h1>{tr(Msg::SignIn)}</h1>
            <p class="intro">{tr(Msg::SignInIntro)}</p>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    oidc.await.unwrap_or(false).then(|| {
                        // Only a plain local path goes along (the server checks it again).
                        let next = Some(next()).filter(|n| n.starts_with('/') && n.chars().all(|c| c.is_ascii_alphanumeric() || "/-_.".contains(c)));
                        let href = format!("/auth/oidc/start?next={}", next.unwrap_or_else(|| "/".into()));
                        view! {
                            <p><a class="button-link" href=href rel="external" data-testid="oidc-sign-in">{tr(Msg::SignInWithPsc)}</a></p>
                            <p class="muted">{tr(Msg::OrLocalAccount)}</p>
                        }
                    })
                })}
            </Suspense>
            {move || notice().map(|(msg, error)| view! {
                <p class=if error { "notice notice-error" } else { "notice" } role=if error { "alert" } else { "status" } data-testid="sign-in-notice">
                    {tr(msg)}
                </p>
            })}
            <form method="post" action="/auth/sign-in" class="form-grid" data-testid="sign-in-form">
                <input type="hidden" name="next" value=next/>
                <label for="login">{tr(Msg::Login)}</label>
                <input id="login" name="login" autocomplete="username" required autofocus/>
                <label for="password">{tr(Msg::Password)}</label>
                <input id="password" name="password" type="password" autocomplete="current-password" required/>
                <span></span>
                <button type="submit" class="primary">{tr(Msg::SignInButton)}</button>
            </form>
        </section>
    }
}

/// Who is signed in, and the way out. Shown in the header.
#[component]
pub fn UserMenu() -> impl IntoView {
    let viewer = use_viewer();
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                match viewer.await {
                    Ok(Some(v)) => {
                        let own = v.own_patient.clone();
                        let admin = v.role == ViewerRole::Admin;
                        let details = [v.profession.clone(), v.structure.clone()].into_iter().flatten().collect::<Vec<_>>().join(", ");
                        view! {
                            <div class="user-menu" data-testid="user-menu">
                                <span class="user-name">
                                    <span class="visually-hidden">{tr(Msg::SignedInAs)} " "</span>
                                    {v.name.clone()}
                                    {(!details.is_empty()).then(|| view! { " " <span class="user-details">{details}</span> })}
                                </span>
                                {own.map(|id| view! { <a href=format!("/patients/{id}/access-log") data-testid="access-log-link">{tr(Msg::AccessLog)}</a> })}
                                {admin.then(|| view! { <a href="/admin">{tr(Msg::Administration)}</a> })}
                                <form method="post" action="/auth/sign-out">
                                    <input type="hidden" name="csrf" value=v.csrf_token.clone()/>
                                    <button type="submit" data-testid="sign-out">{tr(Msg::SignOut)}</button>
                                </form>
                            </div>
                        }
                        .into_any()
                    }
                    _ => ().into_any(),
                }
            })}
        </Suspense>
    }
}

/// The banner on every page of a patient opened in break-the-glass mode, while it lasts.
#[component]
pub fn BreakGlassBanner() -> impl IntoView {
    let viewer = use_viewer();
    let location = use_location();
    let patient_in_path = move || {
        let path = location.pathname.get();
        path.strip_prefix("/patients/").map(|rest| rest.split('/').next().unwrap_or_default().to_string())
    };
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let viewer = viewer.await.ok().flatten();
                let current = patient_in_path();
                let grant = viewer.as_ref().and_then(|v| v.break_glass.iter().find(|g| Some(&g.patient_id) == current.as_ref()).cloned());
                match (viewer, grant) {
                    (Some(v), Some(g)) => {
                        let lang = use_lang();
                        let until = g.expires_at.clone();
                        view! {
                            <div class="banner banner-emergency" role="alert" data-testid="break-glass-banner">
                                <strong>{tr(Msg::BreakGlassBanner)} " " {move || format_instant(lang.get(), &until)}</strong>
                                " · " {tr(Msg::BreakGlassReasonLabel)} " " {g.reason.clone()}
                                <form method="post" action=format!("/patients/{}/break-glass/end", g.patient_id)>
                                    <input type="hidden" name="csrf" value=v.csrf_token.clone()/>
                                    <button type="submit">{tr(Msg::BreakGlassEnd)}</button>
                                </form>
                            </div>
                        }
                        .into_any()
                    }
                    _ => ().into_any(),
                }
            })}
        </Suspense>
    }
}

/// The break-the-glass form of the patient list (professionals only).
#[component]
pub fn BreakGlassForm(csrf: String) -> impl IntoView {
    let query = use_query_map();
    let error = move || match query.read().get("break_glass").as_deref() {
        Some("reason") => Some(Msg::BreakGlassErrorReason),
        Some("duration") => Some(Msg::BreakGlassErrorDuration),
        Some("unknown") => Some(Msg::BreakGlassErrorUnknown),
        Some("invalid_ins") => Some(Msg::BreakGlassErrorInvalidIns),
        _ => None,
    };
    view! {
        <details class="break-glass" open=move || error().is_some() data-testid="break-glass">
            <summary>{tr(Msg::BreakGlass)}</summary>
            <p>{tr(Msg::BreakGlassIntro)}</p>
            {move || error().map(|msg| view! { <p class="notice notice-error" role="alert">{tr(msg)}</p> })}
            <form method="post" action="/break-glass" class="form-grid">
                <input type="hidden" name="csrf" value=csrf/>
                <label for="bg-ins">{tr(Msg::Ins)}</label>
                <input id="bg-ins" name="ins" inputmode="numeric" autocomplete="off" required/>
                <label for="bg-reason">{tr(Msg::BreakGlassReason)}</label>
                <textarea id="bg-reason" name="reason" minlength="15" required rows="2"></textarea>
                <label for="bg-purpose">{tr(Msg::BreakGlassPurpose)}</label>
                <select id="bg-purpose" name="purpose">
                    <option value="bris_de_glace" selected>{tr(Msg::PurposeEmergency)}</option>
                    <option value="centre_15">{tr(Msg::PurposeRegulation)}</option>
                </select>
                <label for="bg-minutes">{tr(Msg::BreakGlassDuration)}</label>
                <select id="bg-minutes" name="minutes">
                    <option value="60">{tr(Msg::OneHour)}</option>
                    <option value="240" selected>{tr(Msg::FourHours)}</option>
                    <option value="720">{tr(Msg::TwelveHours)}</option>
                </select>
                <span></span>
                <button type="submit" class="danger">{tr(Msg::BreakGlassButton)}</button>
            </form>
        </details>
    }
}

/// Import documents from files (the second source, beside the DMP), professionals only. The
/// CSRF token rides in the form's action: the server checks it before reading the files. After
/// an upload the page shows what became of every file.
#[component]
pub fn UploadForm(csrf: String) -> impl IntoView {
    let query = use_query_map();
    let token = move || query.read().get("upload");
    let outcome = Resource::new(token, |token| async move {
        match token {
            Some(token) => crate::api::load_upload_outcome(token).await.map(|files| Some(files.unwrap_or_default())),
            None => Ok(None),
        }
    });
    let action = format!("/import?csrf={csrf}");
    view! {
        <details class="admin-form" open=move || token().is_some() data-testid="upload">
            <summary>{tr(Msg::ImportDocuments)}</summary>
            <p>{tr(Msg::ImportIntro)}</p>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match outcome.await {
                        Ok(Some(files)) => Some(view! { <UploadOutcomes files/> }.into_any()),
                        Ok(None) => None,
                        Err(error) => Some(view! { <super::LoadError error/> }.into_any()),
                    }
                })}
            </Suspense>
            <form method="post" action=action enctype="multipart/form-data" class="form-grid">
                <label for="upload-files">{tr(Msg::CdaFiles)}</label>
                <input id="upload-files" name="file" type="file" accept=".xml,text/xml,application/xml" multiple required/>
                <span></span>
                <button type="submit" class="primary">{tr(Msg::Import)}</button>
            </form>
        </details>
    }
}

/// One line per file of an upload: its name and what became of it.
#[component]
fn UploadOutcomes(files: Vec<crate::model::UploadedFile>) -> impl IntoView {
    let lang = use_lang();
    if files.is_empty() {
        return view! { <p class="notice" role="status" data-testid="upload-outcome">{tr(Msg::UploadOutcomeGone)}</p> }.into_any();
    }
    let rows = files
        .into_iter()
        .map(|file| {
            let outcome = file.outcome.clone();
            let failed = matches!(outcome, crate::model::UploadOutcome::Failed { .. });
            let name = if file.name.is_empty() { "—".to_string() } else { file.name };
            view! {
                <tr data-testid="upload-file" class:problem=failed>
                    <th scope="row" class="mono">{name}</th>
                    <td>{move || upload_outcome_text(lang.get(), &outcome)}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="data" role="status" data-testid="upload-outcome">
            <thead>
                <tr>
                    <th scope="col">{tr(Msg::UploadFile)}</th>
                    <th scope="col">{tr(Msg::UploadResult)}</th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}

/// What became of an uploaded file, in the reader's language.
pub fn upload_outcome_text(lang: Lang, outcome: &crate::model::UploadOutcome) -> String {
    use crate::model::{UploadFailure, UploadOutcome};
    match outcome {
        UploadOutcome::Stored => Msg::UploadStored.text(lang).to_string(),
        UploadOutcome::AlreadyPresent => Msg::UploadAlreadyPresent.text(lang).to_string(),
        UploadOutcome::StoredWithProblem { code } => {
            let problem = match code.as_str() {
                "no_patient" => Msg::UploadNoPatient.text(lang).to_string(),
                "no_ins" => Msg::UploadNoIns.text(lang).to_string(),
                "invalid_ins" => Msg::UploadInvalidIns.text(lang).to_string(),
                parse_error => crate::components::problem_text(lang, Some(parse_error)),
            };
            format!("{} {problem}", Msg::UploadStoredWithProblem.text(lang))
        }
        UploadOutcome::StoredNotCounted { reasons } => {
            let why: Vec<String> = reasons.iter().map(|r| super::patient::document_problem(*r, lang)).collect();
            format!("{} {}", Msg::UploadStoredNotCounted.text(lang), why.join(" ; "))
        }
        UploadOutcome::Failed { reason } => {
            let why = match reason {
                UploadFailure::Empty => Msg::UploadEmpty,
                UploadFailure::TooLarge => Msg::UploadTooLarge,
                UploadFailure::CutOff => Msg::UploadCutOff,
                UploadFailure::TooManyFiles => Msg::UploadTooManyFiles,
                UploadFailure::Unavailable => Msg::UploadUnavailable,
            };
            format!("{} {}", Msg::UploadFailed.text(lang), why.text(lang))
        }
    }
}

fn action_label(action: &str) -> Msg {
    match action {
        "view_patient" => Msg::ActionViewPatient,
        "view_history" => Msg::ActionViewHistory,
        "view_document" => Msg::ActionViewDocument,
        "view_attachment" => Msg::ActionViewAttachment,
        "view_chart" => Msg::ActionViewChart,
        "view_access_log" => Msg::ActionViewAccessLog,
        "export_json" => Msg::ActionExportJson,
        "export_csv" => Msg::ActionExportCsv,
        "export_fhir" => Msg::ActionExportFhir,
        "break_glass_refused" => Msg::ActionBreakGlassRefused,
        a if a.starts_with("view_") => Msg::ActionView,
        a if a.starts_with("export_") => Msg::ActionExport,
        "break_glass_start" => Msg::ActionBreakGlass,
        "import" => Msg::ActionImport,
        "break_glass_end" => Msg::ActionBreakGlassEnd,
        "account_created" => Msg::ActionAccountCreated,
        "records_linked" => Msg::ActionRecordsLinked,
        "records_unlinked" => Msg::ActionRecordsUnlinked,
        "dmp_sync" => Msg::ActionDmpSync,
        "relationship_added" => Msg::ActionRelationshipAdded,
        "relationship_ended" => Msg::ActionRelationshipEnded,
        "target_set" => Msg::ActionTargetSet,
        "target_ended" => Msg::ActionTargetEnded,
        _ => Msg::ActionOther,
    }
}

fn mode_label(mode: Option<&str>) -> Option<Msg> {
    Some(match mode? {
        "attending_gp" => Msg::ModeAttendingGp,
        "hospital_stay" => Msg::ModeHospitalStay,
        "prescriber" => Msg::ModePrescriber,
        "break_glass" => Msg::ModeBreakGlass,
        "centre_15" => Msg::ModeRegulation,
        "own_record" => Msg::ModeOwnRecord,
        "denied" => Msg::ModeDenied,
        "throttled" => Msg::ModeThrottled,
        _ => return None,
    })
}

/// The patient's read-access log: who looked at their results, when, and on what grounds, a
/// page at a time (`?page=N`, from 0, newest first); refused requests apart, one line per
/// account.
#[component]
pub fn AccessLogPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let page = move || query.read().get("page").and_then(|p| p.parse::<u32>().ok());
    let log = Resource::new(move || (id(), page()), |(id, page)| load_access_log(id, page));
    let viewer = use_viewer();
    view! {
        <section class="page">
            <Suspense fallback=|| ()>
                // Only the patient reads their access log: the tab names them.
                {move || Suspend::new(async move {
                    let name = viewer.await.ok().flatten().map(|v| v.name);
                    view! { <super::PatientTitle page=Msg::PageAccessLog name/> }
                })}
            </Suspense>
            <h1>{tr(Msg::AccessLog)}</h1>
            <p class="intro">{tr(Msg::AccessLogIntro)}</p>
            <Suspense fallback=move || view! { <p class="loading">{tr(Msg::Loading)}</p> }>
                {move || Suspend::new(async move {
                    match log.await {
                        Ok(log) => view! { <AccessLogTables log patient=id()/> }.into_any(),
                        Err(error) => view! { <super::LoadError error/> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn AccessLogTables(log: AccessLog, patient: String) -> impl IntoView {
    let lang = use_lang();
    let AccessLog { entries, page, pages, total, refusals, break_glass } = log;
    view! {
        {(!break_glass.is_empty()).then(|| view! {
            <h2>{tr(Msg::BreakGlassAccesses)}</h2>
            <ul class="break-glass-list" data-testid="break-glass-list">
                {break_glass.into_iter().map(|b| {
                    let (from, until) = (b.started_at.clone(), b.expires_at.clone());
                    view! {
                        <li>
                            <strong>{b.who}</strong> " · " {move || format_instant(lang.get(), &from)} " " {tr(Msg::Until)} " "
                            {move || format_instant(lang.get(), &until)} " · " {tr(Msg::BreakGlassReasonLabel)} " " {b.reason}
                        </li>
                    }
                }).collect_view()}
            </ul>
        })}
        <h2>{tr(Msg::AccessLogAccesses)}</h2>
        {if entries.is_empty() {
            view! { <p class="notice">{tr(Msg::AccessLogEmpty)}</p> }.into_any()
        } else {
            view! {
                <p data-testid="access-total">{total} " " {tr(Msg::AccessLogTotal)}</p>
                <AccessRows entries/>
                <AccessLogPager patient page pages/>
            }
            .into_any()
        }}
        {(!refusals.is_empty()).then(|| view! { <RefusalRows refusals/> })}
    }
}

/// One person's accesses on one day: who, on what grounds, and each action with its times.
#[derive(Debug, Clone, PartialEq)]
struct PersonDay {
    who: Option<String>,
    own: bool,
    modes: Vec<String>,
    /// Action codes in the order first seen, each with its local times (`09:12`).
    actions: Vec<(String, Vec<String>)>,
}

/// The page's accesses grouped by local day (newest first, as they come), then by person in the
/// order each first appears that day. Times are the clinician's zone's, as the server wrote them.
fn group_by_day(entries: &[AccessLogLine]) -> Vec<(String, Vec<PersonDay>)> {
    let mut days: Vec<(String, Vec<PersonDay>)> = Vec::new();
    for e in entries {
        let (local, _) = split_zone(&e.at);
        let (day, time) = local.split_once('T').unwrap_or((local, ""));
        let clock: String = time.chars().take(5).collect();
        if days.last().is_none_or(|(d, _)| d != day) {
            days.push((day.to_string(), Vec::new()));
        }
        let people = &mut days.last_mut().expect("a day was just pushed").1;
        let own = e.mode.as_deref() == Some("own_record");
        let who = (!own).then(|| who_line(&e.who, &e.profession, &e.structure));
        let person = match people.iter().position(|p| p.who == who && p.own == own) {
            Some(i) => &mut people[i],
            None => {
                people.push(PersonDay { who, own, modes: Vec::new(), actions: Vec::new() });
                people.last_mut().expect("a person was just pushed")
            }
        };
        if let Some(mode) = &e.mode
            && !person.modes.contains(mode)
        {
            person.modes.push(mode.clone());
        }
        match person.actions.iter_mut().find(|(a, _)| *a == e.action) {
            Some((_, times)) => times.push(clock),
            None => person.actions.push((e.action.clone(), vec![clock])),
        }
    }
    days
}

#[component]
fn AccessRows(entries: Vec<AccessLogLine>) -> impl IntoView {
    let lang = use_lang();
    let zone = entries.first().and_then(|e| split_zone(&e.at).1.map(str::to_string));
    let days = group_by_day(&entries);
    // One text per line, said again when the language changes.
    let person_text = move |who: &Option<String>, own: bool, modes: &[String], lang: Lang| {
        // What no person did (an account made by the administration, the operator's import)
        // is said to come from the administration.
        let mut text = match who.as_deref() {
            _ if own => return Msg::You.text(lang).to_string(),
            Some(who) if !who.is_empty() => who.to_string(),
            _ => Msg::Administration.text(lang).to_string(),
        };
        let why: Vec<&str> = modes.iter().filter_map(|m| mode_label(Some(m))).map(|m| m.text(lang)).collect();
        if !why.is_empty() {
            text.push_str(&format!(" · {}", why.join(", ")));
        }
        text
    };
    view! {
        <p class="muted" data-testid="access-log-zone">
            {move || Msg::AccessLogByDay.text(lang.get()).replace("{zone}", &zone.as_deref().map(|z| zone_label(lang.get(), z)).unwrap_or_default())}
        </p>
        <div class="access-log" data-testid="access-log">
            {days.into_iter().map(|(day, people)| {
                let heading = day.clone();
                view! {
                    <section class="access-day" data-testid="access-day" data-day=day>
                        <h3>{move || format_datetime(lang.get(), &heading)}</h3>
                        <ul class="access-people">
                            {people.into_iter().map(|p| {
                                let PersonDay { who, own, modes, actions } = p;
                                view! {
                                    <li data-testid="access-person">
                                        <strong class="who">{move || person_text(&who, own, &modes, lang.get())}</strong>
                                        <ul class="access-actions">
                                            {actions.into_iter().map(|(action, times)| {
                                                let text = move || format!("{} {} {}", action_label(&action).text(lang.get()), Msg::TimesAt.text(lang.get()), times.join(", "));
                                                view! { <li data-testid="access-row">{text}</li> }
                                            }).collect_view()}
                                        </ul>
                                    </li>
                                }
                            }).collect_view()}
                        </ul>
                    </section>
                }
            }).collect_view()}
        </div>
    }
}

/// Who, as the patient reads it: name, profession, structure.
fn who_line(who: &Option<String>, profession: &Option<String>, structure: &Option<String>) -> String {
    [who, profession, structure].into_iter().flatten().cloned().collect::<Vec<_>>().join(", ")
}

/// Links to the other pages of the log: newer, every page number, older.
#[component]
fn AccessLogPager(patient: String, page: u32, pages: u32) -> impl IntoView {
    let link = move |p: u32| format!("/patients/{patient}/access-log?page={p}");
    (pages > 1).then(|| {
        view! {
            <nav class="pager" aria-label=tr(Msg::AccessLogPages) data-testid="access-log-pages">
                {(page > 0).then(|| view! { <a href=link(page - 1) rel="prev">{tr(Msg::NewerPage)}</a> " " })}
                {(0..pages).map(|p| {
                    if p == page {
                        view! { <span aria-current="page">{tr(Msg::PageWord)} " " {p + 1}</span> " " }.into_any()
                    } else {
                        view! { <a href=link(p)>{p + 1}</a> " " }.into_any()
                    }
                }).collect_view()}
                {(page + 1 < pages).then(|| view! { <a href=link(page + 1) rel="next">{tr(Msg::OlderPage)}</a> })}
            </nav>
        }
    })
}

#[component]
fn RefusalRows(refusals: Vec<RefusalGroup>) -> impl IntoView {
    let lang = use_lang();
    view! {
        <h2>{tr(Msg::RefusedRequests)}</h2>
        <p>{tr(Msg::RefusedRequestsIntro)}</p>
        <table class="data" data-testid="refusals">
            <thead>
                <tr>
                    <th scope="col">{tr(Msg::Who)}</th>
                    <th scope="col">{tr(Msg::RefusalCount)}</th>
                    <th scope="col">{tr(Msg::FirstTime)}</th>
                    <th scope="col">{tr(Msg::LastTime)}</th>
                </tr>
            </thead>
            <tbody>
                {refusals.into_iter().map(|r| {
                    let (first, last) = (r.first_at.clone(), r.last_at.clone());
                    view! {
                        <tr data-testid="refusal-row">
                            <td>{who_line(&r.who, &r.profession, &r.structure)}</td>
                            <td>{r.count}</td>
                            <td>{move || format_instant(lang.get(), &first)}</td>
                            <td>{move || format_instant(lang.get(), &last)}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}

/// The administration's refusals, by the code the server sends.
fn admin_problem(code: &str) -> Msg {
    match code {
        "bad_login" => Msg::AdminBadLogin,
        "no_name" => Msg::AdminNoName,
        "short_password" => Msg::AdminShortPassword,
        "unknown_patient" => Msg::BreakGlassErrorUnknown,
        "no_patient_ins" => Msg::AdminNoPatientIns,
        "login_taken" => Msg::AdminLoginTaken,
        "own_account" => Msg::AdminOwnAccount,
        "unknown_account" => Msg::AdminUnknownAccount,
        "not_a_professional" => Msg::AdminNotAProfessional,
        "bad_duration" => Msg::AdminBadDuration,
        "national_id_taken" => Msg::AdminNationalIdTaken,
        "national_id_not_a_professional" => Msg::AdminNationalIdNotAProfessional,
        "bad_national_id" => Msg::AdminBadNationalId,
        _ => Msg::AdminInvalid,
    }
}

fn role_label(role: ViewerRole) -> Msg {
    match role {
        ViewerRole::Professional => Msg::RoleProfessional,
        ViewerRole::Patient => Msg::RolePatient,
        ViewerRole::Admin => Msg::RoleAdmin,
    }
}

/// Accounts and care relationships. No results: an administrator sees none.
#[component]
pub fn AdminPage() -> impl IntoView {
    let overview = Resource::new(|| (), |_| load_admin());
    let viewer = use_viewer();
    let query = use_query_map();
    view! {
        <section class="page">
            <h1>{tr(Msg::Administration)}</h1>
            <p class="intro">{tr(Msg::AdminSeesNoResults)}</p>
            {move || query.read().get("done").map(|_| view! { <p class="notice" role="status">{tr(Msg::Done)}</p> })}
            {move || query.read().get("error").map(|code| view! { <p class="notice notice-error" role="alert">{tr(admin_problem(&code))}</p> })}
            <Suspense fallback=move || view! { <p class="loading">{tr(Msg::Loading)}</p> }>
                {move || Suspend::new(async move {
                    let csrf = viewer.await.ok().flatten().map(|v| v.csrf_token).unwrap_or_default();
                    match overview.await {
                        Ok(overview) => view! { <AdminTables overview csrf/> }.into_any(),
                        Err(error) => view! { <super::LoadError error/> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn AdminTables(overview: AdminOverview, csrf: String) -> impl IntoView {
    let lang = use_lang();
    let csrf_end = csrf.clone();
    let csrf_disable = csrf.clone();
    let csrf_relationship = csrf.clone();
    view! {
        <AlarmRows alarms=overview.alarms/>
        <h2>{tr(Msg::Accounts)}</h2>
        <table class="data" data-testid="accounts">
            <thead>
                <tr>
                    <th scope="col">{tr(Msg::Login)}</th>
                    <th scope="col">{tr(Msg::Name)}</th>
                    <th scope="col">{tr(Msg::Role)}</th>
                    <th scope="col">{tr(Msg::Profession)}</th>
                    <th scope="col">{tr(Msg::Structure)}</th>
                    <th scope="col">{tr(Msg::Status)}</th>
                </tr>
            </thead>
            <tbody>
                {overview.accounts.into_iter().map(|a| {
                    let action = format!("/admin/accounts/{}/disabled", a.login);
                    let csrf = csrf_disable.clone();
                    let (state, button, next) =
                        if a.disabled { (Msg::AccountDisabled, Msg::Enable, "false") } else { (Msg::AccountActive, Msg::Disable, "true") };
                    view! {
                        <tr>
                            <td class="mono">{a.login}</td>
                            <td>{a.name}</td>
                            <td>{tr(role_label(a.role))}</td>
                            <td>{a.profession.unwrap_or_default()}</td>
                            <td>{a.structure.unwrap_or_default()}</td>
                            <td>
                                {tr(state)} " "
                                <form method="post" action=action class="inline">
                                    <input type="hidden" name="csrf" value=csrf/>
                                    <input type="hidden" name="disabled" value=next/>
                                    <button type="submit">{tr(button)}</button>
                                </form>
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
        <details class="admin-form">
            <summary>{tr(Msg::NewAccount)}</summary>
            <form method="post" action="/admin/accounts" class="form-grid">
                <input type="hidden" name="csrf" value=csrf/>
                <label for="acc-login">{tr(Msg::Login)}</label>
                <input id="acc-login" name="login" required autocomplete="off"/>
                <label for="acc-password">{tr(Msg::Password)}</label>
                <input id="acc-password" name="password" type="password" minlength="12" required autocomplete="new-password"/>
                <label for="acc-role">{tr(Msg::Role)}</label>
                <select id="acc-role" name="role">
                    <option value="professional">{tr(Msg::RoleProfessional)}</option>
                    <option value="patient">{tr(Msg::RolePatient)}</option>
                    <option value="admin">{tr(Msg::RoleAdmin)}</option>
                </select>
                <label for="acc-name">{tr(Msg::DisplayName)}</label>
                <input id="acc-name" name="display_name" required/>
                <label for="acc-rpps">{tr(Msg::Rpps)}</label>
                <input id="acc-rpps" name="rpps"/>
                <label for="acc-profession">{tr(Msg::Profession)}</label>
                <input id="acc-profession" name="profession"/>
                <label for="acc-structure">{tr(Msg::Structure)}</label>
                <input id="acc-structure" name="structure_name"/>
                <label for="acc-ins">{tr(Msg::PatientInsForAccount)}</label>
                <input id="acc-ins" name="patient_ins" inputmode="numeric"/>
                <span></span>
                <button type="submit" class="primary">{tr(Msg::Create)}</button>
            </form>
        </details>
        <h2>{tr(Msg::CareRelationships)}</h2>
        <table class="data" data-testid="relationships">
            <thead>
                <tr>
                    <th scope="col">{tr(Msg::Professional)}</th>
                    <th scope="col">{tr(Msg::Patient)}</th>
                    <th scope="col">{tr(Msg::RelationshipKind)}</th>
                    <th scope="col">{tr(Msg::Since2)}</th>
                    <th scope="col">{tr(Msg::Until)}</th>
                    <th scope="col"><span class="visually-hidden">{tr(Msg::End)}</span></th>
                </tr>
            </thead>
            <tbody>
                {overview.relationships.into_iter().map(|r| {
                    let since = r.starts_at.clone();
                    let until = r.ends_at.clone();
                    let kind = if r.kind == "hospital_stay" { Msg::KindHospitalStay } else { Msg::KindAttendingGp };
                    let csrf = csrf_end.clone();
                    view! {
                        <tr>
                            <td>{r.professional} " (" <span class="mono">{r.login}</span> ")"</td>
                            <td>{r.patient_name} " · " <span class="mono">{r.patient_ins}</span></td>
                            <td>{tr(kind)}</td>
                            <td>{move || format_instant(lang.get(), &since)}</td>
                            <td>{move || until.as_deref().map(|u| format_instant(lang.get(), u)).unwrap_or_default()}</td>
                            <td>
                                <form method="post" action=format!("/admin/relationships/{}/end", r.id)>
                                    <input type="hidden" name="csrf" value=csrf/>
                                    <button type="submit">{tr(Msg::End)}</button>
                                </form>
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
        <details class="admin-form">
            <summary>{tr(Msg::NewRelationship)}</summary>
            <form method="post" action="/admin/relationships" class="form-grid">
                <input type="hidden" name="csrf" value=csrf_relationship/>
                <label for="rel-login">{tr(Msg::Login)}</label>
                <input id="rel-login" name="login" required/>
                <label for="rel-ins">{tr(Msg::Ins)}</label>
                <input id="rel-ins" name="patient_ins" inputmode="numeric" required/>
                <label for="rel-kind">{tr(Msg::RelationshipKind)}</label>
                <select id="rel-kind" name="kind">
                    <option value="attending_gp">{tr(Msg::KindAttendingGp)}</option>
                    <option value="hospital_stay">{tr(Msg::KindHospitalStay)}</option>
                </select>
                <label for="rel-days">{tr(Msg::DurationDays)}</label>
                <input id="rel-days" name="days" inputmode="numeric"/>
                <span></span>
                <button type="submit" class="primary">{tr(Msg::Record)}</button>
            </form>
        </details>
    }
}

/// What the administrator must look at: accounts refused too often, a broken audit trail.
#[component]
fn AlarmRows(alarms: Vec<AlarmLine>) -> impl IntoView {
    let lang = use_lang();
    view! {
        <h2>{tr(Msg::Alarms)}</h2>
        {if alarms.is_empty() {
            view! { <p class="notice" data-testid="alarms-empty">{tr(Msg::AlarmsEmpty)}</p> }.into_any()
        } else {
            view! {
                <table class="data" data-testid="alarms">
                    <thead>
                        <tr>
                            <th scope="col">{tr(Msg::When)}</th>
                            <th scope="col">{tr(Msg::AlarmKind)}</th>
                            <th scope="col">{tr(Msg::AlarmAccount)}</th>
                            <th scope="col">{tr(Msg::AlarmDetail)}</th>
                        </tr>
                    </thead>
                    <tbody>
                        {alarms.into_iter().map(|a| {
                            let at = a.at.clone();
                            let kind = match a.kind.as_str() {
                                "refusals" => Msg::AlarmRefusals,
                                "audit_chain_broken" => Msg::AlarmBrokenChain,
                                _ => Msg::AlarmOther,
                            };
                            let account = match (a.name, a.login) {
                                (Some(name), Some(login)) => format!("{name} ({login})"),
                                (name, login) => name.or(login).unwrap_or_default(),
                            };
                            let detail = match (a.refusals, a.window_minutes, a.first_bad_record) {
                                (Some(n), Some(m), _) => view! { {n} " " {tr(Msg::RefusalsIn)} " " {m} " " {tr(Msg::Minutes)} }.into_any(),
                                (_, _, Some(seq)) => view! { {tr(Msg::FirstBadRecord)} " " {seq} }.into_any(),
                                _ => ().into_any(),
                            };
                            view! {
                                <tr data-testid="alarm-row">
                                    <td>{move || format_instant(lang.get(), &at)}</td>
                                    <td>{tr(kind)}</td>
                                    <td class="mono">{account}</td>
                                    <td>{detail}</td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            }
            .into_any()
        }}
    }
}

#[cfg(test)]
mod access_log_tests {
    use super::*;

    /// What opens or changes a record is said in words in the patient's log, never "Other".
    #[test]
    fn the_patients_log_names_what_opened_or_changed_her_record() {
        for action in [
            "account_created",
            "records_linked",
            "records_unlinked",
            "dmp_sync",
            "break_glass_end",
            "import",
            "relationship_added",
            "relationship_ended",
            "view_patient",
            "view_history",
            "view_document",
            "view_attachment",
            "view_chart",
            "view_access_log",
            "export_json",
            "export_csv",
            "export_fhir",
            "target_set",
            "target_ended",
        ] {
            assert!(!matches!(action_label(action), Msg::ActionOther | Msg::ActionView | Msg::ActionExport), "{action}");
        }
    }

    fn line(at: &str, action: &str, who: Option<&str>, mode: &str) -> AccessLogLine {
        AccessLogLine {
            at: at.into(),
            action: action.into(),
            mode: Some(mode.into()),
            who: who.map(str::to_string),
            role: None,
            profession: None,
            structure: None,
        }
    }

    /// The log reads day by day in the clinician's zone, one line per person and their actions
    /// with times: a night access at 00:30 Paris time (22:30 UTC the day before) is on its
    /// Paris day.
    #[test]
    fn the_log_is_grouped_by_local_day_then_person() {
        let entries = vec![
            line("2026-07-15T00:30:00+02:00[Europe/Paris]", "view_history", Some("Dr A"), "break_glass"),
            line("2026-07-14T18:05:00+02:00[Europe/Paris]", "view_chart", Some("Dr B"), "attending_gp"),
            line("2026-07-14T18:01:00+02:00[Europe/Paris]", "view_history", Some("Dr B"), "attending_gp"),
            line("2026-07-14T09:00:00+02:00[Europe/Paris]", "view_history", None, "own_record"),
            line("2026-07-14T08:00:00+02:00[Europe/Paris]", "view_history", Some("Dr B"), "attending_gp"),
        ];
        let days = group_by_day(&entries);
        assert_eq!(days.iter().map(|(d, _)| d.as_str()).collect::<Vec<_>>(), ["2026-07-15", "2026-07-14"]);
        let july_14 = &days[1].1;
        assert_eq!(july_14.len(), 2, "Dr B once, the patient once");
        assert_eq!(july_14[0].who.as_deref(), Some("Dr B"));
        assert_eq!(
            july_14[0].actions,
            vec![("view_chart".to_string(), vec!["18:05".to_string()]), ("view_history".to_string(), vec!["18:01".to_string(), "08:00".to_string()])]
        );
        assert!(july_14[1].own);
    }
}
