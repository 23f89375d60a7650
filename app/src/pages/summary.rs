//! What a clinician admitting the patient reads first: the latest value of every analyte, with
//! its date, laboratory, flag and direction since the previous comparable value; abnormal
//! values and significant changes first.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use crate::api::load_history;
use crate::components::{format_datetime, point_text};
use crate::i18n::{Lang, Msg, chapter_name, tr, use_lang};
use crate::model::{Direction, Point, PointStatus, Series, UnitSystem};

#[component]
pub fn SummaryPage() -> impl IntoView {
    let params = use_params_map();
    let patient = move || params.read().get("id").unwrap_or_default();
    let data = Resource::new(patient, |p| load_history(p, UnitSystem::Si));
    let viewer = super::use_viewer();
    view! {
        <section class="page">
            <p class="breadcrumb"><a href=move || format!("/patients/{}", patient())>{tr(Msg::DocumentsLink)}</a></p>
            <h1>{tr(Msg::Summary)}</h1>
            <Suspense fallback=move || view! { <p class="loading">{tr(Msg::Loading)}</p> }>
                {move || Suspend::new(async move {
                    // Patients read their own results in plainer words.
                    let plain = matches!(viewer.await, Ok(Some(v)) if v.role == crate::model::ViewerRole::Patient);
                    let intro = if plain { Msg::PlainIntro } else { Msg::SummaryIntro };
                    match data.await {
                        Ok(h) => view! {
                            <p class="intro">{tr(intro)}</p>
                            <crate::components::PatientBanner identity=h.patient.clone()/>
                            <Panels series=h.series.clone() patient=patient()/>
                            <SummaryTable series=h.series patient=patient() plain/>
                        }
                        .into_any(),
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
    // Against the treatment target when one is set; critical values always.
    p.is_abnormal()
}

fn line(series: Series) -> Option<Line> {
    // Values Bioviewer computed count too (an eGFR from the day's creatinine): they are said to
    // be computed, with the KDIGO stage, never left out of the summary.
    let performed: Vec<&Point> = series.points.iter().filter(|p| p.status == PointStatus::Completed).collect();
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
fn SummaryTable(series: Vec<Series>, patient: String, plain: bool) -> impl IntoView {
    let lang = use_lang();
    let mut lines: Vec<Line> = series.into_iter().filter_map(line).collect();
    // Attention first, then the most recent, then by chapter.
    lines.sort_by(|a, b| {
        // Critical values above everything else.
        b.latest
            .critical
            .is_some()
            .cmp(&a.latest.critical.is_some())
            .then_with(|| b.attention.cmp(&a.attention))
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
                    let value = point_text(&l.latest, lang);
                    // An eGFR: its KDIGO stage, and "computed" when Bioviewer computed it.
                    let stage = l.series.analyte.starts_with("egfr_").then(|| l.latest.plottable()).flatten().map(|v| {
                        let computed = if l.latest.derived { format!(" · {}", Msg::ComputedFromCreatinine.text(lang)) } else { String::new() };
                        format!("{} {}{computed}", Msg::KdigoStage.text(lang), bioviewer_core::normalise::kdigo_stage(v))
                    });
                    // Against the treatment target when one is set; the critical marker first.
                    let flag = match (l.latest.shown_flag(), plain) {
                        (Some(f), true) => {
                            let critical = l.latest.critical.map(|c| format!("{} · ", crate::flags::critical_label(c, lang))).unwrap_or_default();
                            format!("{critical}{}", crate::plain::flag_words(&f.code, lang))
                        }
                        (_, false) => crate::flags::judged_label(&l.latest, lang),
                        (None, true) => l.latest.critical.map(|c| crate::flags::critical_label(c, lang)).unwrap_or_default(),
                    };
                    let laboratory = crate::flags::laboratory_judgement(&l.latest, l.series.decimals, lang);
                    let critical = l.latest.critical.is_some();
                    let help = if plain { crate::plain::analyte_description(&l.series.analyte, lang) } else { None };
                    let (arrow, words) = match (l.trend, plain) {
                        (Some(Trend::SignificantRise), false) => ("⬆", Msg::SignificantRise),
                        (Some(Trend::SignificantFall), false) => ("⬇", Msg::SignificantFall),
                        (Some(Trend::Rising), false) => ("↗", Msg::Rising),
                        (Some(Trend::Falling), false) => ("↘", Msg::Falling),
                        (Some(Trend::Stable), false) => ("→", Msg::Stable),
                        (None, false) => ("", Msg::NoPrevious),
                        (Some(Trend::SignificantRise), true) => ("⬆", Msg::PlainSignificantRise),
                        (Some(Trend::SignificantFall), true) => ("⬇", Msg::PlainSignificantFall),
                        (Some(_), true) => ("", Msg::PlainSmallChange),
                        (None, true) => ("", Msg::PlainFirst),
                    };
                    let class = match (critical, l.attention) {
                        (true, _) => "attention critical",
                        (false, true) => "attention",
                        (false, false) => "",
                    };
                    view! {
                        <tr class=class data-testid="summary-row">
                            <th scope="row"><a href=href>{name}</a>{help.map(|h| view! { <span class="analyte-help">{h}</span> })}</th>
                            <td class="num"><strong>{value}</strong>" "<span class="unit">{lang.unit(l.series.unit.as_deref())}</span>
                                {stage.map(|s| view! { <div class="stage" data-testid="kdigo-stage">{s}</div> })}</td>
                            <td data-testid="summary-flag">{flag}{laboratory.map(|t| view! { <div class="muted lab-judgement">{t}</div> })}</td>
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
                    <th scope="col">{tr(Msg::FlagColumn)}</th>
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

/// Panels of related analytes, shown as small multiples.
const PANELS: &[(Msg, &[&str])] = &[
    (Msg::PanelRenal, &["creatinine", "egfr_ckd_epi_2021", "egfr_ckd_epi_2009", "urea", "potassium", "sodium", "urine_acr"]),
    (Msg::PanelDiabetes, &["glucose_fasting", "glucose", "hba1c"]),
    (Msg::PanelLipids, &["cholesterol_total", "hdl", "ldl", "non_hdl", "triglycerides"]),
    (Msg::PanelBloodCount, &["haemoglobin", "leukocytes", "platelets", "mcv", "neutrophils", "lymphocytes"]),
    (Msg::PanelLiver, &["alt", "ast", "ggt", "alp", "bilirubin_total", "albumin"]),
    (Msg::PanelThyroid, &["tsh", "ft4", "ft3"]),
    (Msg::PanelIron, &["ferritin", "iron", "transferrin_saturation", "haemoglobin"]),
];

const SPARK_W: f64 = 180.0;
const SPARK_H: f64 = 44.0;

/// A sparkline: the exact values over a proportional time axis, the latest reference band, the
/// latest value written beside it. Censored and unconverted values are not drawn as points.
#[component]
fn Sparkline(series: Series, patient: String) -> impl IntoView {
    let lang = use_lang();
    let points: Vec<(f64, f64)> =
        series.points.iter().filter_map(|p| Some((p.time?.epoch_seconds() as f64, p.plottable()?))).collect();
    let latest = series.points.iter().rev().find(|p| p.status == PointStatus::Completed).cloned();
    let band = latest.as_ref().and_then(|p| Some((p.reference_low.as_ref().map(|d| d.to_f64()), p.reference_high.as_ref()?.to_f64())));
    let (t0, t1) = points.iter().fold((f64::MAX, f64::MIN), |(a, b), (t, _)| (a.min(*t), b.max(*t)));
    let values = points.iter().map(|(_, v)| *v).chain(band.iter().flat_map(|(l, h)| l.iter().copied().chain([*h])));
    let (v0, v1) = values.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    let x = move |t: f64| if t1 > t0 { 4.0 + (t - t0) / (t1 - t0) * (SPARK_W - 8.0) } else { SPARK_W / 2.0 };
    let y = move |v: f64| if v1 > v0 { SPARK_H - 4.0 - (v - v0) / (v1 - v0) * (SPARK_H - 8.0) } else { SPARK_H / 2.0 };
    let polyline = points.iter().map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v))).collect::<Vec<_>>().join(" ");
    let band_rect = band.map(|(low, high)| {
        let top = y(high);
        let bottom = y(low.unwrap_or(v0));
        view! { <rect x="0" y=format!("{top:.1}") width=SPARK_W.to_string() height=format!("{:.1}", (bottom - top).max(1.0)) class="spark-band"/> }
    });
    let last =
        points.last().map(|(t, v)| view! { <circle cx=format!("{:.1}", x(*t)) cy=format!("{:.1}", y(*v)) r="3" class="spark-last"/> });
    let name_fr = series.name_fr.clone();
    let name_en = series.name_en.clone();
    let unit = lang.get_untracked().unit(series.unit.as_deref());
    let href = format!("/patients/{patient}/analytes/{}", series.analyte);
    let value = move || latest.as_ref().map(|p| point_text(p, lang.get())).unwrap_or_default();
    view! {
        <li class="spark" data-testid="sparkline">
            <a href=href>{move || match lang.get() { Lang::Fr => name_fr.clone(), Lang::En => name_en.clone() }}</a>
            <svg viewBox=format!("0 0 {SPARK_W} {SPARK_H}") width=SPARK_W.to_string() height=SPARK_H.to_string() role="img"
                aria-label={
                    let (value, unit) = (value.clone(), unit.clone());
                    move || format!("{} {}", value(), unit)
                }>
                {band_rect}
                <polyline points=polyline class="spark-line"/>
                {last}
            </svg>
            <span class="spark-value">{value.clone()} " " {unit.clone()}</span>
        </li>
    }
}

#[component]
fn Panels(series: Vec<Series>, patient: String) -> impl IntoView {
    let chosen = RwSignal::new(0usize);
    let series = StoredValue::new(series);
    let patient = StoredValue::new(patient);
    view! {
        <section class="panels" aria-labelledby="panels-heading">
            <h2 id="panels-heading">{tr(Msg::Panels)}</h2>
            <div class="toolbar" role="group" aria-label=tr(Msg::Panel)>
                {PANELS.iter().enumerate().map(|(i, (name, _))| view! {
                    <button type="button" class="toggle" data-testid=format!("panel-{i}")
                        aria-pressed=move || (chosen.get() == i).to_string() on:click=move |_| chosen.set(i)>{tr(*name)}</button>
                }).collect_view()}
            </div>
            {move || {
                let (_, ids) = PANELS[chosen.get()];
                let members: Vec<Series> = series.with_value(|all| ids.iter().filter_map(|id| all.iter().find(|s| s.analyte == *id).cloned()).collect());
                if members.is_empty() {
                    view! { <p class="notice">{tr(Msg::NoPanelResults)}</p> }.into_any()
                } else {
                    view! { <ul class="sparklines">{members.into_iter().map(|s| view! { <Sparkline series=s patient=patient.get_value()/> }).collect_view()}</ul> }.into_any()
                }
            }}
        </section>
    }
}
