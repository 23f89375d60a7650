//! One source document: the laboratory's own narrative, rendered safely, and its attachments.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use crate::api::{AppError, load_document};
use crate::components::{format_instant, format_size};
use crate::i18n::{Msg, tr, use_lang};
use crate::model::{AttachmentInfo, DocumentView};
use bioviewer_core::cda::AttachmentPurpose;
use bioviewer_core::normalise::{DocumentState, Provenance};

#[component]
pub fn DocumentPage() -> impl IntoView {
    let params = use_params_map();
    let patient = move || params.read().get("id").unwrap_or_default();
    let document = move || params.read().get("doc").unwrap_or_default();
    let data = Resource::new(move || (patient(), document()), |(p, d)| load_document(p, d));
    view! {
        <section class="page">
            <p class="breadcrumb"><a href=move || format!("/patients/{}", patient())>{tr(Msg::DocumentsLink)}</a></p>
            <Suspense fallback=move || view! { <p class="loading">{tr(Msg::Loading)}</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok(view) => view! { <DocumentBody view patient=patient() document=document()/> }.into_any(),
                        Err(AppError::NotFound) => view! { <p class="notice notice-error" role="alert">{tr(Msg::DocumentNotFound)}</p> }.into_any(),
                        Err(error) => view! { <super::LoadError error/> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

fn purpose(p: AttachmentPurpose) -> Msg {
    match p {
        AttachmentPurpose::ReportCopy => Msg::PurposeReportCopy,
        AttachmentPurpose::SecondIntention => Msg::PurposeSecondIntention,
        AttachmentPurpose::Illustration => Msg::PurposeIllustration,
        AttachmentPurpose::Other => Msg::PurposeOther,
    }
}

#[component]
fn DocumentBody(view: DocumentView, patient: String, document: String) -> impl IntoView {
    let lang = use_lang();
    let summary = view.summary.clone();
    let when = summary.effective_time.clone();
    let attachments = view.attachments.clone();
    let link = move |a: &AttachmentInfo| format!("/api/patients/{patient}/documents/{document}/attachments/{}", a.index);
    view! {
        <h1>{summary.title.clone().unwrap_or_else(|| Msg::Document.text(lang.get_untracked()).to_string())}</h1>
        <p class="intro">
            {summary.laboratory.clone().unwrap_or_default()}
            " · "
            {move || when.as_deref().map(|t| format_instant(lang.get(), t)).unwrap_or_default()}
        </p>
        <p class="provenance" data-testid="document-provenance">
            {tr(Msg::Provenance)} ": "
            {match summary.provenance {
                Provenance::Dmp => tr(Msg::ProvenanceDmp).into_any(),
                Provenance::Operator => tr(Msg::ProvenanceOperator).into_any(),
                Provenance::Upload => {
                    let by = summary.uploaded_by.clone().unwrap_or_else(|| "—".into());
                    view! { {tr(Msg::ProvenanceUpload)} " · " {tr(Msg::UploadedBy)} " " {by} }.into_any()
                }
            }}
        </p>
        {(!summary.reasons.is_empty() || matches!(summary.state, Some(DocumentState::Rejected | DocumentState::Replaced))).then(|| {
            let state = match summary.state {
                Some(DocumentState::Rejected) => Msg::StateRejected,
                Some(DocumentState::Replaced) => Msg::StateReplaced,
                _ => Msg::ProblemLabel,
            };
            let reasons = summary.reasons.clone();
            view! {
                <p class="notice notice-error" role="alert" data-testid="document-state">
                    <strong>{tr(state)}</strong>
                    {move || reasons.iter().map(|r| format!(" — {}", super::patient::document_problem(*r, lang.get()))).collect::<String>()}
                </p>
            }
        })}
        {summary.problem.is_some().then(|| {
            let code = summary.problem_code.clone();
            view! { <p class="notice notice-error" role="alert"><strong>{tr(Msg::ProblemLabel)} ": "</strong>{move || crate::components::problem_text(lang.get(), code.as_deref())}</p> }
        })}
        {(!attachments.is_empty()).then(|| view! {
            <h2>{tr(Msg::Attachments)}</h2>
            <ul class="attachments" data-testid="attachments">
                {attachments.iter().map(|a| {
                    let href = link(a);
                    let size = a.size_bytes as u64;
                    let label = purpose(a.purpose);
                    let media = a.media_type.clone();
                    view! {
                        <li>
                            <a href=href.clone() target="_blank" rel="noopener">{tr(label)}</a>
                            " (" {media} ", " {move || format_size(lang.get(), size)} ") "
                            // Same origin: the browser saves the file instead of showing it.
                            <a href=href download="" data-testid="attachment-download">{tr(Msg::Download)}</a>
                        </li>
                    }
                }).collect_view()}
            </ul>
        })}
        <h2>{tr(Msg::LabNarrative)}</h2>
        <div class="narrative" data-testid="narrative">
            // The parser rebuilt this HTML from an allow-list: nothing from the document can run,
            // load a resource or navigate (cda::narrative).
            {view.sections.into_iter().map(|s| view! {
                <section class="narrative-section">
                    {s.title.map(|t| view! { <h3>{t}</h3> })}
                    <div inner_html=s.html></div>
                </section>
            }).collect_view()}
        </div>
    }
}
