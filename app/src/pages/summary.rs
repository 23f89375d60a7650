//! What a clinician admitting the patient reads first: the latest value of every analyte, with
//! its date, laboratory, flag and direction since the previous comparable value; abnormal
//! values and significant changes first.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use crate::api::load_history;
use crate::components::format_datetime;
use crate::i18n::{Lang, Msg, chapter_name, tr, use_lang};
use crate::model::{Direction, Point, PointStatus, Series, UnitSystem};

#[component]
pub fn SummaryPage() -> impl IntoView {
    let params = use_params_map();
    let patient = move || params.read().get("id").unwrap_or_default();
    let data = Resource::new(move || patient(), |p| load_history(p, UnitSystem::Si));
    view! {
        <section class="page">
            <p class="breadcrumb"><a href=move || format!("/patients/{}", patient())>{tr(Msg::DocumentsLink)}</a></p>
            <h1>{tr(Msg::Summary)}</h1>
            <p class="intro">{tr(Msg::SummaryIntro)}</p>
            <Suspense fallback=move || view! { <p class="loading">{tr(Msg::Loading)}</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok(h) => view! { <SummaryTable series=h.series patient=patient()/> }.into_any(),
                        Err(error) => view! { <super::LoadError error/> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

/// Direction of the latest value since the previous comparable one.
#[derive(Clone, Copy)]
enum Trend {
    SignificantRise,
    SignificantFall,
    Rising,
    Falling,
    Stable,
}

/// One line of the summary.
struct Line {
    series: Series,
    latest: Point,
    trend: Option<Trend>,
    attention: bool,
}

fn is_abnormal(p: &Point) -> bool {
    p.flag.as_ref().is_some_and(|f| !matches!(&*f.code, "N" | "NEG" | "S"))
}

fn line(series: Series) -> Option<Line> {
    let performed: Vec<&Point> = series.points.iter().filter(|p| p.status == PointStatus::Completed && !p.derived).collect();
    let latest = (*performed.last()?).clone();
    // Direction since the previous value that can be compared (same unit, exact values).
    let trend = match (performed.len().checked_sub(2).map(|i| performed[i]), latest.plottable()) {
        (Some(previous), Some(now)) => previous.plottable().map(|before| match latest.significant_change {
            Some(Direction::Up) => Trend::SignificantRise,
            Some(Direction::Down) => Trend::SignificantFall,
            None if now > before => Trend::Rising,
            None if now < before => Trend::Falling,
            None => Trend::Stable,
        }),
        _ => None,
    };
    let attention = is_abnormal(&latest) || latest.significant_change.is_some();
    Some(Line { series, latest, trend, attention })
}

#[component]
fn SummaryTable(series: Vec<Series>, patient: String) -> impl IntoView {
    let lang = use_lang();
    let mut lines: Vec<Line> = series.into_iter().filter_map(line).collect();
    // Attention first, then the most recent, then by chapter.
    lines.sort_by(|a, b| {
        b.attention
            .cmp(&a.attention)
            .then_with(|| b.latest.time.map(|t| t.epoch_seconds()).cmp(&a.latest.time.map(|t| t.epoch_seconds())))
            .then_with(|| a.series.chapter.cmp(&b.series.chapter))
    });
    let lines = StoredValue::new(lines);
    let rows = move || {
        let lang = lang.get();
        lines.with_value(|lines| {
            lines
                .iter()
                .map(|l| {
                    let name = match lang {
                        Lang::Fr => l.series.name_fr.clone(),
                        Lang::En => l.series.name_en.clone(),
                    };
                    let href = format!("/patients/{patient}/analytes/{}", l.series.analyte);
                    let value = match (&l.latest.display, &l.latest.text) {
                        (Some(d), _) => format!("{}{}", l.latest.comparator.map(|c| c.symbol()).unwrap_or(""), lang.decimal(d)),
                        (None, Some(t)) => t.clone(),
                        _ => String::new(),
                    };
                    let flag = l.latest.flag.as_ref().map(|f| f.code.to_string()).unwrap_or_default();
                    let (arrow, words) = match l.trend {
                        Some(Trend::SignificantRise) => ("⬆", Msg::SignificantRise),
                        Some(Trend::SignificantFall) => ("⬇", Msg::SignificantFall),
                        Some(Trend::Rising) => ("↗", Msg::Rising),
                        Some(Trend::Falling) => ("↘", Msg::Falling),
                        Some(Trend::Stable) => ("→", Msg::Stable),
                        None => ("", Msg::NoPrevious),
                    };
                    let class = if l.attention { "attention" } else { "" };
                    view! {
                        <tr class=class data-testid="summary-row">
                            <th scope="row"><a href=href>{name}</a></th>
                            <td class="num"><strong>{value}</strong>" "<span class="unit">{l.series.unit.clone().unwrap_or_default()}</span></td>
                            <td>{flag}</td>
                            <td><span aria-hidden="true">{arrow}</span>" "{words.text(lang)}</td>
                            <td class="nowrap">{l.latest.time.map(|t| format_datetime(lang, &t.date_string())).unwrap_or_default()}</td>
                            <td>{l.latest.laboratory.as_deref().unwrap_or("").to_string()}</td>
                            <td class="muted">{chapter_name(&l.series.chapter, lang)}</td>
                        </tr>
                    }
                })
                .collect_view()
        })
    };
    view! {
        <table class="data summary" data-testid="summary-table">
            <thead>
                <tr>
                    <th scope="col">{tr(Msg::Analyte)}</th>
                    <th scope="col" class="num">{tr(Msg::Latest)}</th>
                    <th scope="col">"Flag"</th>
                    <th scope="col">{tr(Msg::Since)}</th>
                    <th scope="col">{tr(Msg::Date)}</th>
                    <th scope="col">{tr(Msg::Laboratory)}</th>
                    <th scope="col">{tr(Msg::Chapter)}</th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    }
}
