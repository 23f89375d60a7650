//! One analyte: the trend chart (SVG drawn on the server) and every result with its sources.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use crate::api::{load_chart, load_history};
use crate::components::{format_datetime, point_text};
use crate::i18n::{Lang, Msg, tr, use_lang};
use crate::model::{Series, UnitSystem};

#[component]
pub fn AnalytePage() -> impl IntoView {
    let params = use_params_map();
    let lang = use_lang();
    let patient = move || params.read().get("id").unwrap_or_default();
    let analyte = move || params.read().get("analyte").unwrap_or_default();
    let from = RwSignal::new(String::new());
    let to = RwSignal::new(String::new());
    let optional = |s: String| (!s.is_empty()).then_some(s);
    let chart = Resource::new(
        move || (patient(), analyte(), lang.get(), from.get(), to.get()),
        move |(p, a, l, f, t)| load_chart(p, a, UnitSystem::Si, l, optional(f), optional(t)),
    );
    let history = Resource::new(patient, |p| load_history(p, UnitSystem::Si));
    view! {
        <section class="page">
            <p class="breadcrumb"><a href=move || format!("/patients/{}/results", patient())>{tr(Msg::BackToResults)}</a></p>
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
                        Ok(svg) if !svg.is_empty() => view! { <figure class="chart" data-testid="chart" inner_html=svg></figure> }.into_any(),
                        Ok(_) => view! { <p class="notice">{tr(Msg::NoChart)}</p> }.into_any(),
                        Err(error) => view! { <super::LoadError error/> }.into_any(),
                    }
                })}
            </Transition>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let wanted = analyte();
                    history.await.ok().and_then(|h| h.series.into_iter().find(|s| s.analyte == wanted)).map(|series| view! { <PointsTable series/> })
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
            {series.unit.map(|u| view! { <span class="unit-title">" (" {u} ")"</span> })}</h1>
    }
}

#[component]
fn PointsTable(series: Series) -> impl IntoView {
    let lang = use_lang();
    let unit = series.unit.clone().unwrap_or_default();
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
                let sources = p
                    .sources
                    .iter()
                    .map(|s| {
                        format!(
                            "{} {} · {} · {}{}",
                            s.original_value.as_deref().map(|v| lang.decimal(v)).unwrap_or_default(),
                            s.original_unit.as_deref().unwrap_or(""),
                            s.code.as_deref().unwrap_or(""),
                            s.rule.as_ref().map(ToString::to_string).unwrap_or_else(|| s.not_converted.clone().unwrap_or_default()),
                            if s.previous_result { " · REFR" } else { "" },
                        )
                    })
                    .collect::<Vec<_>>();
                let flag = p.flag.as_ref().map(|f| f.code.to_string()).unwrap_or_default();
                view! {
                    <tr class:derived=p.derived>
                        <td class="nowrap">{p.time.map(|t| format_datetime(lang, &t.to_string())).unwrap_or_default()}</td>
                        <td class="num">{point_text(p, lang)}</td>
                        <td>{flag}</td>
                        <td class="nowrap">{reference}</td>
                        <td>{p.laboratory.as_deref().unwrap_or("").to_string()}</td>
                        <td>{p.method.clone().unwrap_or_default()}</td>
                        <td class="sources">{sources.into_iter().map(|s| view! { <div>{s}</div> }).collect_view()}</td>
                    </tr>
                }
            })
            .collect_view()
    };
    view! {
        <h2>{tr(Msg::Points)} " (" {unit} ")"</h2>
        <table class="data" data-testid="points-table">
            <thead>
                <tr>
                    <th scope="col">{tr(Msg::Date)}</th>
                    <th scope="col" class="num">{tr(Msg::Value)}</th>
                    <th scope="col">"Flag"</th>
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
