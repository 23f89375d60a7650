//! One patient: identity and the documents received.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use crate::api::load_patient;
use crate::components::{fold_for_search, format_datetime, format_instant, format_size};
use crate::i18n::{Msg, tr, use_lang};
use crate::model::{DocumentKind, DocumentSummary, PatientDocuments, PatientSummary, ReportStatus};
use bioviewer_core::normalise::{DocumentState, Provenance};

#[component]
pub fn PatientPage() -> impl IntoView {
    let params = use_params_map();
    let query = leptos_router::hooks::use_query_map();
    let data = Resource::new(
        move || (params.read().get("id").unwrap_or_default(), query.read().get("link_confirm")),
        |(id, candidate)| load_patient(id, candidate),
    );
    view! {
        <section class="page">
            <p class="breadcrumb"><a href="/">{tr(Msg::BackToPatients)}</a></p>
            <Suspense fallback=move || view! { <p class="loading">{tr(Msg::Loading)}</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok(found) => view! {
                            <super::PatientTitle page=Msg::PageDocuments name=Some(found.patient.display_name.clone())/>
                            <PatientView data=found/>
                        }.into_any(),
                        Err(error) => view! { <super::LoadError error/> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

/// Other records of the same person (an INS-C record beside the INS one): listed, with the
/// form that links one more and the buttons that undo a link. Their documents show in this
/// record's list and history.
#[component]
fn LinkedRecords(patient: String, linked: Vec<PatientSummary>, may_link: bool, candidate: Option<PatientSummary>) -> impl IntoView {
    let lang = use_lang();
    let query = leptos_router::hooks::use_query_map();
    let viewer = super::access::use_viewer();
    let outcome = move || {
        query.read().get("links").map(|o| {
            if o == "done" {
                view! { <p class="notice" role="status">{tr(Msg::Done)}</p> }.into_any()
            } else if o == "not_one_person" {
                view! { <p class="notice notice-error" role="alert">{tr(Msg::LinkNotOnePerson)}</p> }.into_any()
            } else {
                view! { <p class="notice notice-error" role="alert">{tr(Msg::LinkRefused)}</p> }.into_any()
            }
        })
    };
    if linked.is_empty() && !may_link && candidate.is_none() {
        return ().into_any();
    }
    let rows = StoredValue::new(linked);
    let open = !rows.with_value(Vec::is_empty) || candidate.is_some();
    let candidate = StoredValue::new(candidate);
    view! {
        <details class="linked-records" data-testid="linked-records" open=open>
            <summary>{tr(Msg::LinkedRecords)} " (" {rows.with_value(Vec::len)} ")"</summary>
            <p class="intro">{tr(Msg::LinkedRecordsIntro)}</p>
            {outcome}
            <Suspense fallback=|| ()>
                {move || {
                    let patient = patient.clone();
                    Suspend::new(async move {
                        let csrf = viewer.await.ok().flatten().map(|v| v.csrf_token).unwrap_or_default();
                        let items = rows.get_value().into_iter().map(|other| {
                            let action = format!("/patients/{patient}/links/{}/end", other.id);
                            let csrf = csrf.clone();
                            view! {
                                <li data-testid="linked-record">
                                    <a href=format!("/patients/{}", other.id)>{other.display_name.clone()}</a>
                                    " · " <span class="mono">{other.ins.clone()}</span>
                                    {(!other.has_ins()).then(|| view! { " " <span class="badge badge-warning">{tr(Msg::NoIns)}</span> })}
                                    {may_link.then(|| view! {
                                        <form method="post" action=action class="inline">
                                            <input type="hidden" name="csrf" value=csrf/>
                                            <button type="submit">{tr(Msg::Unlink)}</button>
                                        </form>
                                    })}
                                </li>
                            }
                        }).collect_view();
                        let form = may_link.then(|| view! {
                            <form method="post" action=format!("/patients/{patient}/links") class="link-form">
                                <input type="hidden" name="csrf" value=csrf.clone()/>
                                <label for="link-other">{tr(Msg::LinkOtherLabel)}</label>
                                <input id="link-other" name="other" required autocomplete="off" class="mono" data-testid="link-other"/>
                                <button type="submit">{tr(Msg::Link)}</button>
                            </form>
                        });
                        // Before a link is made, the other record as it is: a link joins two
                        // records as one person's, so the clinician sees whom first.
                        let confirm = candidate.get_value().filter(|_| may_link).map(|c| {
                            let birth = c.birth_date.clone();
                            let other = format!("{}^{}", c.ins_root, c.ins);
                            view! {
                                <div class="notice link-confirm" role="alert" data-testid="link-confirm">
                                    <p><strong>{tr(Msg::LinkConfirmQuestion)}</strong></p>
                                    <p>
                                        <strong>{c.display_name.clone()}</strong>
                                        " · " {tr(Msg::BirthDate)} " " {move || birth.as_deref().map(|b| format_datetime(lang.get(), b)).unwrap_or_default()}
                                        " · " {move || super::patients::sex_label(c.sex).text(lang.get())}
                                        " · " <span class="mono">{c.ins.clone()}</span>
                                        {(!c.has_ins()).then(|| view! { " " <span class="badge badge-warning">{tr(Msg::NoIns)}</span> })}
                                        " · " {c.document_count} " " {move || Msg::Documents.text(lang.get()).to_lowercase()}
                                    </p>
                                    <form method="post" action=format!("/patients/{patient}/links") class="inline">
                                        <input type="hidden" name="csrf" value=csrf.clone()/>
                                        <input type="hidden" name="other" value=other/>
                                        <input type="hidden" name="confirm" value="1"/>
                                        <button type="submit" data-testid="link-confirm-button">{tr(Msg::LinkConfirm)}</button>
                                    </form>
                                    " " <a href=format!("/patients/{patient}")>{tr(Msg::Cancel)}</a>
                                </div>
                            }
                        });
                        view! { {confirm} <ul>{items}</ul> {form} }
                    })
                }}
            </Suspense>
        </details>
    }
    .into_any()
}

/// Where the DMP sync stands; while it runs, the browser asks again every two seconds.
#[component]
fn DmpSyncLine(patient: String, status: crate::model::DmpSyncStatus) -> impl IntoView {
    let lang = use_lang();
    let status = RwSignal::new(status);
    // Polling only in the browser, only while a sync runs.
    #[cfg(feature = "hydrate")]
    {
        fn poll(patient: String, status: RwSignal<crate::model::DmpSyncStatus>) {
            set_timeout(
                move || {
                    leptos::task::spawn_local(async move {
                        if let Ok(Some(now)) = crate::api::dmp_sync_status(patient.clone()).await {
                            let running = now.running;
                            status.set(now);
                            if running {
                                poll(patient, status);
                            }
                        }
                    })
                },
                std::time::Duration::from_secs(2),
            );
        }
        if status.get_untracked().running {
            poll(patient.clone(), status);
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = &patient;
    move || {
        let s = status.get();
        let at = s.at.clone();
        let (class, text) = match (&s.error, s.running) {
            (Some(_), _) => ("notice notice-error", Msg::DmpSyncFailed),
            (None, true) => ("notice", Msg::DmpSyncRunning),
            (None, false) => ("notice", Msg::DmpSyncDone),
        };
        view! {
            <p class=class role="status" data-testid="dmp-sync">
                {tr(text)}
                {(!at.is_empty()).then(|| view! { " " {tr(Msg::DmpLastSync)} " " {format_instant(lang.get(), &at)} })}
                {(s.error.is_none() && (s.found > 0 || !s.running)).then(|| view! { " · " {s.found} " " {tr(Msg::DmpFound)} ", " {s.stored} " " {tr(Msg::DmpNew)} })}
                {(s.failed > 0).then(|| view! { " · " {s.failed} " " {tr(Msg::DmpNotRetrieved)} })}
                {(!s.running && s.stored > 0).then(|| view! { " · " <a href="" rel="external">{tr(Msg::DmpReload)}</a> })}
            </p>
        }
    }
}

#[component]
fn PatientView(data: PatientDocuments) -> impl IntoView {
    let lang = use_lang();
    let PatientDocuments { patient, linked, may_link, link_candidate, documents, dmp_sync, dmp_refusal } = data;
    let patient_id = patient.id.clone();
    let total = documents.len();
    let filter = RwSignal::new(String::new());
    let documents = StoredValue::new(documents);
    let visible = Memo::new(move |_| {
        let needle = fold_for_search(filter.get().trim());
        documents.with_value(|docs| {
            docs.iter()
                .filter(|d| {
                    // Title, laboratory, and the names of the tests it contains (both languages).
                    let tests = d.contents.iter().flat_map(|c| &c.tests).flat_map(|t| [t.name_fr.as_str(), t.name_en.as_str()]);
                    needle.is_empty()
                        || [d.title.as_deref(), d.laboratory.as_deref()]
                            .into_iter()
                            .flatten()
                            .chain(tests)
                            .any(|field| fold_for_search(field).contains(&needle))
                })
                .cloned()
                .collect::<Vec<_>>()
        })
    });
    let birth = patient.birth_date.clone();
    let sex = patient.sex;
    view! {
        <header class="patient-banner">
            <h1>{patient.display_name.clone()}</h1>
            <dl class="identity">
                <div><dt>{tr(if patient.has_ins() { Msg::Ins } else { Msg::PatientKey })}</dt><dd class="mono">{patient.ins.clone()}
                    {patient.is_test_ins().then(|| view! { " " <span class="badge">{tr(Msg::InsTest)}</span> })}
                    {(!patient.has_ins()).then(|| view! { " " <span class="badge badge-warning" data-testid="no-ins">{tr(Msg::NoIns)}</span> })}</dd></div>
                <div><dt>{tr(Msg::BirthDate)}</dt>
                    <dd>{move || birth.as_deref().map(|b| format_datetime(lang.get(), b)).unwrap_or_default()}</dd></div>
                <div><dt>{tr(Msg::Sex)}</dt><dd>{move || super::patients::sex_label(sex).text(lang.get())}</dd></div>
            </dl>
        </header>
        {dmp_sync.map(|status| view! { <DmpSyncLine patient=patient_id.clone() status/> })}
        {dmp_refusal.map(|crate::model::DmpRefusal::PasswordSignIn| view! {
            <p class="notice" role="status" data-testid="dmp-refused">{tr(Msg::DmpNeedsProSanteConnect)}</p>
        })}
        <LinkedRecords patient=patient_id.clone() linked may_link candidate=link_candidate/>
        <p class="next-link">
            <a href=format!("/patients/{}/summary", patient.id) data-testid="summary-link">{tr(Msg::SummaryLink)}</a>
            " · "
            <a href=format!("/patients/{}/results", patient.id) data-testid="results-link">{tr(Msg::ResultsLink)}</a>
        </p>
        <h2 id="documents-heading">{tr(Msg::Documents)}</h2>
        <p class="intro">{tr(Msg::DocumentsIntro)}</p>
        <div class="toolbar">
            <label for="document-filter">{tr(Msg::Filter)}</label>
            <input
                id="document-filter"
                type="search"
                data-testid="document-filter"
                placeholder=tr(Msg::FilterPlaceholder)
                prop:value=move || filter.get()
                on:input=move |ev| filter.set(event_target_value(&ev))
            />
            <span class="count" aria-live="polite" data-testid="document-count">
                {move || visible.with(Vec::len)} " / " {total} " " {tr(Msg::Shown)}
            </span>
        </div>
        {if total == 0 {
            view! { <p class="notice">{tr(Msg::NoDocuments)}</p> }.into_any()
        } else {
            view! {
                <table class="data" aria-labelledby="documents-heading">
                    <thead>
                        <tr>
                            <th scope="col">{tr(Msg::ReportDate)}</th>
                            <th scope="col">{tr(Msg::Title)}</th>
                            <th scope="col">{tr(Msg::Laboratory)}</th>
                            <th scope="col">{tr(Msg::Status)}</th>
                            <th scope="col">{tr(Msg::TechnicalDetails)}</th>
                        </tr>
                    </thead>
                    <tbody>
                        <For each=move || visible.get() key=|d| d.id.clone() let:doc>
                            <DocumentRow doc patient=patient_id.clone()/>
                        </For>
                    </tbody>
                </table>
            }.into_any()
        }}
    }
}

#[component]
fn DocumentRow(doc: DocumentSummary, patient: String) -> impl IntoView {
    let lang = use_lang();
    let href = format!("/patients/{patient}/documents/{}", doc.id);
    let DocumentSummary {
        title,
        laboratory,
        effective_time,
        version,
        kind,
        status,
        imported_at,
        size_bytes,
        problem,
        problem_code,
        state,
        reasons,
        provenance,
        uploaded_by,
        contents,
        ..
    } = doc;
    let kind_msg = match kind {
        Some(DocumentKind::CrBioStructured) => Msg::KindStructured,
        Some(DocumentKind::CrBioAutoPresentable) => Msg::KindAutoPresentable,
        Some(DocumentKind::CrBioPdfOnly) => Msg::KindPdfOnly,
        Some(DocumentKind::PointOfCareTest) => Msg::KindPointOfCare,
        Some(DocumentKind::OtherCda) => Msg::KindOtherCda,
        Some(DocumentKind::NotCda) => Msg::KindNotCda,
        None => Msg::KindUnreadable,
    };
    // What the history made of it first (replaced, rejected, unreadable), else the report's own
    // status (final or partial).
    let status_msg = match (&state, status) {
        (Some(DocumentState::Replaced), _) => Msg::StateReplaced,
        (Some(DocumentState::Rejected), _) => Msg::StateRejected,
        (Some(DocumentState::Unreadable), _) => Msg::StateUnreadable,
        (_, Some(ReportStatus::Completed)) => Msg::StatusFinal,
        (_, Some(ReportStatus::Active)) => Msg::StatusPartial,
        (_, None) => Msg::StatusUnknown,
    };
    let row_class = if matches!(state, Some(DocumentState::Rejected | DocumentState::Unreadable)) || (problem.is_some() && state.is_none())
    {
        "problem"
    } else if state == Some(DocumentState::Replaced) {
        "replaced"
    } else {
        ""
    };
    view! {
        <tr class=row_class>
            <td class="nowrap">{move || effective_time.as_deref().map(|t| format_instant(lang.get(), t)).unwrap_or_default()}</td>
            <td>
                <a href=href>{title.unwrap_or_default()}</a>
                {(provenance == Provenance::Upload).then(|| view! {
                    <div class="uploaded" data-testid="document-uploaded">
                        {tr(Msg::UploadedBy)} " " {uploaded_by.clone().unwrap_or_else(|| "—".into())}
                    </div>
                })}
                {problem.is_some().then(|| view! { <div class="problem-text"><strong>{tr(Msg::ProblemLabel)} ": "</strong>{move || crate::components::problem_text(lang.get(), problem_code.as_deref())}</div> })}
                {(kind == Some(DocumentKind::PointOfCareTest)).then(|| view! { " " <span class="badge">{tr(Msg::PointOfCareMark)}</span> })}
                {contents.map(|c| view! { <DocumentContentsLine contents=c/> })}
            </td>
            <td>{laboratory.unwrap_or_else(|| "—".into())}</td>
            <td>
                {tr(status_msg)}
                {reasons.into_iter().map(|r| view! { <div class="reason" data-testid="document-reason">{move || document_problem(r, lang.get())}</div> }).collect_view()}
            </td>
            // Technical facts, for whoever needs them, out of the way.
            <td>
                <details class="doc-details" data-testid="document-details">
                    <summary>{tr(Msg::TechnicalDetails)}</summary>
                    <dl>
                        <div><dt>{tr(Msg::Kind)}</dt><dd>{tr(kind_msg)}</dd></div>
                        <div><dt>{tr(Msg::Version)}</dt><dd>{version.map(|v| v.to_string()).unwrap_or_else(|| "—".into())}</dd></div>
                        <div><dt>{tr(Msg::Size)}</dt><dd class="nowrap">{move || format_size(lang.get(), size_bytes)}</dd></div>
                        <div><dt>{tr(Msg::Imported)}</dt><dd class="nowrap">{move || format_instant(lang.get(), &imported_at)}</dd></div>
                    </dl>
                </details>
            </td>
        </tr>
    }
}

/// What a report contains: its chapters, its first tests, and how many are abnormal.
#[component]
fn DocumentContentsLine(contents: bioviewer_core::report_view::DocumentContents) -> impl IntoView {
    const SHOWN: usize = 4;
    let lang = use_lang();
    let abnormal = contents.abnormal();
    let text = move || {
        let lang = lang.get();
        let chapters: Vec<String> = contents.chapters.iter().map(|c| crate::i18n::chapter_name(c, lang)).collect();
        let mut tests: Vec<&str> = contents
            .tests
            .iter()
            .take(SHOWN)
            .map(|t| match lang {
                crate::i18n::Lang::Fr => t.name_fr.as_str(),
                crate::i18n::Lang::En => t.name_en.as_str(),
            })
            .collect();
        let more = contents.tests.len().saturating_sub(SHOWN);
        let more = (more > 0).then(|| format!("+{more}"));
        tests.extend(more.as_deref());
        [chapters.join(", "), tests.join(", ")].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" · ")
    };
    view! {
        <div class="doc-contents" data-testid="document-contents">
            {text}
            {(abnormal > 0).then(|| view! { " · " <span class="abnormal-count" data-testid="document-abnormal">"! " {abnormal} " " {tr(Msg::AbnormalResults)}</span> })}
        </div>
    }
}

/// Why the history rejected or limited a document, in words.
pub(crate) fn document_problem(problem: bioviewer_core::normalise::DocumentProblem, lang: crate::i18n::Lang) -> String {
    use bioviewer_core::normalise::DocumentProblem;
    let msg = match problem {
        DocumentProblem::Unreadable => Msg::StateUnreadable,
        DocumentProblem::NotCrBio => Msg::ReasonNotCrBio,
        DocumentProblem::NoPatientIns => Msg::ReasonNoIns,
        DocumentProblem::AnotherPatient => Msg::ReasonAnotherPatient,
        DocumentProblem::PdfOnly => Msg::ReasonPdfOnly,
        DocumentProblem::ReplacedBy { version, was_partial } => {
            let partial = if was_partial { format!(" ({})", Msg::ReasonWasPartial.text(lang)) } else { String::new() };
            return format!("{} {version}{partial}", Msg::ReasonReplacedBy.text(lang));
        }
        DocumentProblem::ConflictsWithLaboratory { version } => {
            return format!("{} {} {version}", Msg::ReasonConflictsWithLaboratory.text(lang), Msg::Version.text(lang).to_lowercase());
        }
        DocumentProblem::IdentityConflict { birth_date, sex } => {
            let fields: Vec<&str> = [(birth_date, Msg::ReasonIdentityBirthDate), (sex, Msg::ReasonIdentitySex)]
                .into_iter()
                .filter(|(differs, _)| *differs)
                .map(|(_, msg)| msg.text(lang))
                .collect();
            return format!("{} ({})", Msg::ReasonIdentityConflict.text(lang), fields.join(", "));
        }
        DocumentProblem::NameDiffers => Msg::ReasonNameDiffers,
        DocumentProblem::InsAuthorityDiffers => Msg::ReasonInsAuthorityDiffers,
    };
    msg.text(lang).to_string()
}
