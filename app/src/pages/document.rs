//! One source document: its own results (flags, each microbiology isolate with its S/I/R grid),
//! who prescribed, sampled and validated it, its PDF copy shown in the page, the laboratory's
//! own narrative rendered safely, and its attachments.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use crate::api::{AppError, load_document};
use crate::components::{flag_label, flag_symbol, format_datetime, format_instant, format_size};
use crate::i18n::{Lang, Msg, tr, use_lang};
use crate::model::{AttachmentInfo, DocumentView};
use bioviewer_core::cda::{AttachmentPurpose, Comparator};
use bioviewer_core::report_view::{IsolateResults, ReportFacts, ReportResults, ResultLine};
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
                        Ok(view) => view! {
                            <super::PatientTitle page=Msg::PageDocument name=view.patient_name.clone()/>
                            <DocumentBody view patient=patient() document=document()/>
                        }.into_any(),
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
    // The PDF copy of the report, shown in the page (served from our origin only: the page's CSP
    // `frame-src 'self'`, the attachment's `frame-ancestors 'self'`).
    let copy = attachments.iter().find(|a| a.purpose == AttachmentPurpose::ReportCopy && a.media_type == "application/pdf").map(&link);
    let facts = view.facts.clone();
    view! {
        <h1>{summary.title.clone().unwrap_or_else(|| Msg::Document.text(lang.get_untracked()).to_string())}</h1>
        <p class="intro">
            {summary.laboratory.clone().unwrap_or_default()}
            " · "
            {move || when.as_deref().map(|t| format_instant(lang.get(), t)).unwrap_or_default()}
            {facts.point_of_care.then(|| view! { " " <span class="badge" data-testid="point-of-care">{tr(Msg::PointOfCareMark)}</span> })}
        </p>
        {facts.point_of_care.then(|| view! { <p class="notice">{tr(Msg::PointOfCareIntro)}</p> })}
        <Facts facts/>
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
        <ReportResultsView results=view.results/>
        {copy.map(|src| view! {
            <section class="pdf-copy" aria-labelledby="pdf-copy-heading">
                <h2 id="pdf-copy-heading">{tr(Msg::PurposeReportCopy)}</h2>
                <iframe src=src.clone() title=move || Msg::PurposeReportCopy.text(lang.get()) data-testid="pdf-copy"></iframe>
                <p class="muted">{tr(Msg::PdfFallback)} " " <a href=src target="_blank" rel="noopener">{tr(Msg::OpenPdf)}</a></p>
            </section>
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

/// Who prescribed, when the samples were taken, who validated and when.
#[component]
fn Facts(facts: ReportFacts) -> impl IntoView {
    let lang = use_lang();
    let ReportFacts { prescriber, sampled_at, validator, validated_at, .. } = facts;
    if prescriber.is_none() && sampled_at.is_none() && validator.is_none() && validated_at.is_none() {
        return ().into_any();
    }
    let validation = move || {
        let when = validated_at.as_deref().map(|t| format_datetime(lang.get(), t));
        [when, validator.clone()].into_iter().flatten().collect::<Vec<_>>().join(" · ")
    };
    view! {
        <dl class="identity document-facts" data-testid="document-facts">
            {prescriber.map(|p| view! { <div><dt>{tr(Msg::Prescriber)}</dt><dd data-testid="prescriber">{p}</dd></div> })}
            {sampled_at.map(|t| view! { <div><dt>{tr(Msg::SampledAt)}</dt><dd data-testid="sampled-at">{move || format_datetime(lang.get(), &t)}</dd></div> })}
            <div><dt>{tr(Msg::ValidatedAt)}</dt><dd data-testid="validated">{validation}</dd></div>
        </dl>
    }
    .into_any()
}

/// A number as written, with the language's decimal mark; a text as written.
fn value_text(comparator: Option<Comparator>, number: Option<&str>, text: Option<&str>, lang: Lang) -> String {
    match (number, text) {
        (Some(n), _) => format!("{}{}", comparator.map(|c| format!("{} ", c.symbol())).unwrap_or_default(), lang.decimal(n)),
        (None, Some(t)) => t.to_string(),
        (None, None) => String::new(),
    }
}

fn reference_text(l: &ResultLine, lang: Lang) -> String {
    let unit = l.reference_unit.as_deref().map(|u| format!(" {}", lang.unit(Some(u)))).unwrap_or_default();
    match (l.reference_low.as_deref(), l.reference_high.as_deref()) {
        (Some(low), Some(high)) => format!("{} – {}{unit}", lang.decimal(low), lang.decimal(high)),
        (None, Some(high)) => format!("≤ {}{unit}", lang.decimal(high)),
        (Some(low), None) => format!("≥ {}{unit}", lang.decimal(low)),
        (None, None) => l.reference_text.clone().unwrap_or_default(),
    }
}

/// One result line: name (the laboratory's, with the code's long name as a tip), value, flag,
/// reference; a long text result reads as a paragraph; a discrepancy between the code and the
/// printed words is said beside the value.
#[component]
fn ResultRows(lines: Vec<ResultLine>) -> impl IntoView {
    let lang = use_lang();
    move || {
        let lang = lang.get();
        lines
            .iter()
            .map(|l| {
                let (symbol, class, _) = l.flag.as_deref().map(flag_symbol).unwrap_or(("", "", Msg::Abnormal));
                let flag = l.flag.as_deref().map(|f| flag_label(f, lang)).unwrap_or_default();
                let computed = l.flag_computed.then(|| format!(" ({})", Msg::ComputedValue.text(lang)));
                let value = if l.not_performed {
                    Msg::NotPerformed.text(lang).to_string()
                } else {
                    value_text(l.comparator, l.number.as_deref(), l.text.as_deref(), lang)
                };
                // A long text (a pathology or cytology conclusion) reads as a paragraph.
                let value_class = if value.chars().count() > 60 { "text-report" } else { "" };
                let unit = l.unit.as_deref().map(|u| lang.unit(Some(u))).unwrap_or_default();
                let row_class = if symbol.is_empty() { "" } else { "attention" };
                view! {
                    <tr class=row_class data-testid="report-result">
                        <th scope="row" title=l.code_name.clone().unwrap_or_default()>{l.name.clone()}</th>
                        <td class=value_class>
                            <strong>{value}</strong> " " <span class="unit">{unit}</span>
                            {l.discordant_text.clone().map(|t| view! {
                                <div class="discordant" data-testid="discordant">"⚠ " {Msg::DiscordantText.text(lang)} " « " {t} " »"</div>
                            })}
                            {l.comments.iter().map(|c| view! { <div class="muted">{c.clone()}</div> }).collect_view()}
                        </td>
                        <td class=class>{flag}{computed}</td>
                        <td class="muted">{reference_text(l, lang)}</td>
                    </tr>
                }
            })
            .collect_view()
    }
}

#[component]
fn ResultTable(lines: Vec<ResultLine>) -> impl IntoView {
    view! {
        <table class="data report-results">
            <thead><tr>
                <th scope="col">{tr(Msg::Analyte)}</th>
                <th scope="col">{tr(Msg::ResultColumn)}</th>
                <th scope="col">{tr(Msg::FlagColumn)}</th>
                <th scope="col">{tr(Msg::ReferenceRange)}</th>
            </tr></thead>
            <tbody><ResultRows lines/></tbody>
        </table>
    }
}

/// The report's own results by chapter, then each isolate with its S/I/R grid.
#[component]
fn ReportResultsView(results: ReportResults) -> impl IntoView {
    let ReportResults { groups, isolates } = results;
    let empty = groups.is_empty() && isolates.is_empty();
    view! {
        <section class="report-results-section" aria-labelledby="report-results-heading" data-testid="report-results">
            <h2 id="report-results-heading">{tr(Msg::ReportResultsHeading)}</h2>
            {empty.then(|| view! { <p class="notice">{tr(Msg::NoReportResults)}</p> })}
            {groups.into_iter().map(|g| view! {
                {g.chapter.map(|c| view! { <h3>{c}</h3> })}
                <div class="table-scroll"><ResultTable lines=g.results/></div>
            }).collect_view()}
            {isolates.into_iter().map(|i| view! { <IsolateView isolate=i/> }).collect_view()}
        </section>
    }
}

/// One organism: its own results, then the laboratory's S/I/R interpretation for each
/// antibiotic with the MIC as written beside it.
#[component]
fn IsolateView(isolate: IsolateResults) -> impl IntoView {
    let lang = use_lang();
    let IsolateResults { organism, results, susceptibility, .. } = isolate;
    let has_grid = !susceptibility.is_empty();
    let rows = move || {
        let lang = lang.get();
        susceptibility
            .iter()
            .map(|s| {
                let code = s.interpretation.clone().unwrap_or_default();
                let cell = |column: &'static str| {
                    let here = code == column;
                    let word = match column {
                        "S" => Msg::Susceptible,
                        "I" => Msg::Intermediate,
                        _ => Msg::Resistant,
                    };
                    let class = if here { format!("sir sir-{}", column.to_lowercase()) } else { "sir".to_string() };
                    view! {
                        <td class=class data-sir=here.then_some(column)>
                            {here.then(|| view! { <span aria-hidden="true">{column}</span><span class="visually-hidden">{word.text(lang)}</span> })}
                        </td>
                    }
                };
                // An interpretation other than S, I or R is written as sent.
                let other = (!code.is_empty() && !matches!(code.as_str(), "S" | "I" | "R")).then(|| code.clone());
                let mic = value_text(s.comparator, s.mic.as_deref(), s.text.as_deref(), lang);
                let unit = s.unit.as_deref().map(|u| format!(" {}", lang.unit(Some(u)))).unwrap_or_default();
                view! {
                    <tr data-testid="sir-row">
                        <th scope="row" title=s.code_name.clone().unwrap_or_default()>{s.antibiotic.clone()}{other.map(|o| format!(" ({o})"))}</th>
                        {cell("S")}{cell("I")}{cell("R")}
                        <td class="num nowrap" data-testid="mic">{mic}{unit}</td>
                    </tr>
                }
            })
            .collect_view()
    };
    view! {
        <section class="isolate" data-testid="isolate">
            <h3>{tr(Msg::OrganismHeading)} " : " <em data-testid="organism">{organism}</em></h3>
            {(!results.is_empty()).then(|| view! { <div class="table-scroll"><ResultTable lines=results/></div> })}
            {has_grid.then(|| view! {
                <div class="table-scroll">
                    <table class="data sir-grid" data-testid="sir-grid">
                        <caption>{tr(Msg::SirColumn)}</caption>
                        <thead><tr>
                            <th scope="col">{tr(Msg::Antibiotic)}</th>
                            <th scope="col" class="sir" title=move || Msg::Susceptible.text(lang.get())>"S"</th>
                            <th scope="col" class="sir" title=move || Msg::Intermediate.text(lang.get())>"I"</th>
                            <th scope="col" class="sir" title=move || Msg::Resistant.text(lang.get())>"R"</th>
                            <th scope="col" class="num">{tr(Msg::MicColumn)}</th>
                        </tr></thead>
                        <tbody>{rows}</tbody>
                    </table>
                </div>
            })}
        </section>
    }
}
