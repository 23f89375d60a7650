//! One analyte: the trend chart (SVG drawn on the server) and every result with its sources.

use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::api::{load_chart, load_history};
use crate::components::{DocumentLabels, flag_label, format_datetime, not_converted_text, point_text, rule_text};
use crate::i18n::{Lang, Msg, tr, use_lang};
use crate::model::{Series, UnitSystem};

#[component]
pub fn AnalytePage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let lang = use_lang();
    // The unit system the cumulative table was in when the analyte was opened.
    let units = move || {
        if query.read().get("units").as_deref() == Some("conventional") { UnitSystem::Conventional } else { UnitSystem::Si }
    };
    let patient = move || params.read().get("id").unwrap_or_default();
    let analyte = move || params.read().get("analyte").unwrap_or_default();
    let from = RwSignal::new(String::new());
    let to = RwSignal::new(String::new());
    let optional = |s: String| (!s.is_empty()).then_some(s);
    let chart = Resource::new(
        move || (patient(), analyte(), units(), lang.get(), from.get(), to.get()),
        move |(p, a, u, l, f, t)| load_chart(p, a, u, l, optional(f), optional(t)),
    );
    let history = Resource::new(move || (patient(), units()), |(p, u)| load_history(p, u));
    let readout = RwSignal::new(String::new());
    let show_point = move |ev: &leptos::web_sys::Event| {
        use leptos::wasm_bindgen::JsCast;
        let label = ev
            .target()
            .and_then(|t| t.dyn_into::<leptos::web_sys::Element>().ok())
            .and_then(|e| e.closest(".bv-point").ok().flatten())
            .and_then(|mark| mark.get_attribute("aria-label"));
        if let Some(label) = label {
            readout.set(label);
        }
    };
    view! {
        <section class="page">
            <p class="breadcrumb"><a href=move || format!("/patients/{}/results{}", patient(), if units() == UnitSystem::Conventional { "?units=conventional" } else { "" })>{tr(Msg::BackToResults)}</a></p>
            <Suspense fallback=move || view! { <p class="loading">{tr(Msg::Loading)}</p> }>
                {move || Suspend::new(async move {
                    let wanted = analyte();
                    match history.await {
                        Ok(h) => match h.series.into_iter().find(|s| s.analyte == wanted) {
                            Some(series) => view! { <crate::components::PatientBanner identity=h.patient.clone()/> <AnalyteHeader series/> }.into_any(),
                            None => view! { <p class="notice" role="alert">{tr(Msg::AnalyteNotFound)}</p> }.into_any(),
                        },
                        Err(error) => view! { <super::LoadError error/> }.into_any(),
                    }
                })}
            </Suspense>
            <h2>{tr(Msg::Trend)}</h2>
            <p class="intro">{tr(Msg::TrendIntro)}</p>
            <div class="toolbar">
                <label for="zoom-from">{tr(Msg::From)}</label>
                <input id="zoom-from" type="date" data-testid="zoom-from" on:change=move |ev| from.set(event_target_value(&ev))/>
                <label for="zoom-to">{tr(Msg::To)}</label>
                <input id="zoom-to" type="date" data-testid="zoom-to" on:change=move |ev| to.set(event_target_value(&ev))/>
            </div>
            <Transition fallback=move || view! { <p class="loading">{tr(Msg::Loading)}</p> }>
                {move || Suspend::new(async move {
                    match chart.await {
                        // The SVG is Bioviewer's own drawing: text from documents is escaped in
                        // titles and stripped of markup in labels (see server::chart).
                        Ok(svg) if !svg.is_empty() => view! {
                            <figure class="chart" data-testid="chart" inner_html=svg
                                on:focusin=move |ev| show_point(&ev) on:mouseover=move |ev| show_point(&ev)
                                on:click=move |ev| show_point(&ev)></figure>
                        }.into_any(),
                        Ok(_) => view! { <p class="notice">{tr(Msg::NoChart)}</p> }.into_any(),
                        Err(error) => view! { <super::LoadError error/> }.into_any(),
                    }
                })}
            </Transition>
            // The value of the point under the pointer, focused or touched, in words: a chart's
            // own tooltips only show to a mouse.
            <p class="chart-readout" data-testid="chart-readout" aria-live="polite">
                {move || readout.get()}
            </p>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let wanted = analyte();
                    history.await.ok().and_then(|h| {
                        let documents = DocumentLabels::of(&h);
                        h.series.into_iter().find(|s| s.analyte == wanted).map(|series| view! { <PointsTable series documents patient=patient()/> })
                    })
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn AnalyteHeader(series: Series) -> impl IntoView {
    let lang = use_lang();
    let name_fr = series.name_fr.clone();
    let name_en = series.name_en.clone();
    view! {
        <h1>{move || match lang.get() { Lang::Fr => name_fr.clone(), Lang::En => name_en.clone() }}
            {move || {
                let unit = lang.get().unit(series.unit.as_deref());
                (!unit.is_empty()).then(|| view! { <span class="unit-title">" (" {unit} ")"</span> })
            }}</h1>
    }
}

#[component]
fn PointsTable(series: Series, documents: DocumentLabels, patient: String) -> impl IntoView {
    let lang = use_lang();
    let unit = series.unit.clone();
    let decimals = series.decimals;
    let rows = move || {
        let lang = lang.get();
        series
            .points
            .iter()
            .rev()
            .map(|p| {
                let reference = match (&p.reference_low, &p.reference_high) {
                    // Converted bounds are exact; shown at the analyte's precision.
                    (Some(l), Some(h)) => format!("{} – {}", lang.decimal(&l.rounded(decimals)), lang.decimal(&h.rounded(decimals))),
                    (None, Some(h)) => format!("< {}", lang.decimal(&h.rounded(decimals))),
                    (Some(l), None) => format!("> {}", lang.decimal(&l.rounded(decimals))),
                    (None, None) => p.reference_text.clone().unwrap_or_default(),
                };
                // Every source: what the laboratory wrote, under which code, how it was put in
                // the display unit (or why not), and the report it is in.
                let sources = p
                    .sources
                    .iter()
                    .map(|s| {
                        let how = match (&s.rule, &s.not_converted_reason) {
                            (Some(rule), _) => rule_text(rule, lang).to_string(),
                            (None, Some(reason)) => not_converted_text(reason, lang),
                            (None, None) => String::new(),
                        };
                        let text = format!(
                            "{} {} · {} · {}{} · ",
                            s.original_value.as_deref().map(|v| lang.decimal(v)).unwrap_or_default(),
                            s.original_unit.as_deref().unwrap_or(""),
                            s.code.as_deref().unwrap_or(""),
                            how,
                            if s.previous_result { format!(" · {}", Msg::PreviousResult.text(lang)) } else { String::new() },
                        );
                        let href = format!("/patients/{patient}/documents/{}", s.document);
                        view! { <div>{text}<a href=href data-testid="source-document">{documents.label(&s.document, lang)}</a></div> }
                    })
                    .collect_view();
                let flag = p.flag.as_ref().map(|f| flag_label(&f.code, lang));
                view! {
                    <tr class:derived=p.derived>
                        <td class="nowrap">{p.time.map(|t| format_datetime(lang, &t.to_string())).unwrap_or_default()}</td>
                        <td class="num">{point_text(p, lang)}</td>
                        <td>{flag.unwrap_or_default()}</td>
                        <td class="nowrap">{reference}</td>
                        <td>{p.laboratory.as_deref().unwrap_or("").to_string()}</td>
                        <td>{p.method.clone().unwrap_or_default()}</td>
                        <td class="sources">{sources}</td>
                    </tr>
                }
            })
            .collect_view()
    };
    view! {
        <h2>{tr(Msg::Points)} {move || {
            let unit = lang.get().unit(unit.as_deref());
            if unit.is_empty() { String::new() } else { format!(" ({unit})") }
        }}</h2>
        <table class="data" data-testid="points-table">
            <thead>
                <tr>
                    <th scope="col">{tr(Msg::Date)}</th>
                    <th scope="col" class="num">{tr(Msg::Value)}</th>
                    <th scope="col">{tr(Msg::FlagColumn)}</th>
                    <th scope="col">{tr(Msg::Reference)}</th>
                    <th scope="col">{tr(Msg::Laboratory)}</th>
                    <th scope="col">{tr(Msg::Method)}</th>
                    <th scope="col">{tr(Msg::Sources)}</th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    }
}
