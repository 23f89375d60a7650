//! What a clinician admitting the patient reads first: the latest value of every analyte, with
//! its date, laboratory, flag and direction since the previous comparable value; abnormal
//! values and significant changes first.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use crate::api::{load_summary, server_time};
use crate::components::{flag_label, flag_symbol, format_datetime, point_text};
use crate::i18n::{Lang, Msg, chapter_name, tr, use_lang};
use crate::model::{Direction, Point, PointStatus, Series};
use crate::pages::{Day, Period, day_of, parse_day};

/// What the summary reads of a history: every result of every analyte, the latest and the
/// previous sampling whole (the line's value, flags, range, trend, with their first source: the
/// document a line links to) and the older ones as the sparkline draws them (time and value
/// only), the other results' latest moment (a qualitative line each), the point-of-care and
/// uploaded documents (said so on their line). Not every source of every result, nor the list of
/// documents: a ten-year record's summary would otherwise weigh a megabyte.
#[cfg_attr(not(feature = "ssr"), allow(dead_code))]
pub fn summary_history(history: &crate::model::History) -> crate::model::History {
    let first_source = |p: &Point| Point { sources: p.sources.iter().take(1).cloned().collect(), ..p.clone() };
    let other_results = history
        .other_results
        .iter()
        .map(|o| {
            let last = o.points.iter().rev().find(|p| p.status == PointStatus::Completed).map(|p| p.time);
            let points = o.points.iter().filter(|p| p.status == PointStatus::Completed && Some(p.time) == last).map(first_source).collect();
            bioviewer_core::normalise::OtherResults { points, ..o.clone() }
        })
        .filter(|o| !o.points.is_empty())
        .collect();
    let uploaded = history.uploaded_documents();
    crate::model::History {
        patient: history.patient.clone(),
        unit_system: history.unit_system,
        // Point-of-care tests (said so on their line) and uploads (their values say "uploaded").
        documents: history
            .documents
            .iter()
            .filter(|d| {
                d.kind == Some(crate::model::DocumentKind::PointOfCareTest) || d.provenance == bioviewer_core::normalise::Provenance::Upload
            })
            .cloned()
            .collect(),
        series: history.series.iter().map(|s| Series { points: summary_points(&s.points, &uploaded), ..s.clone() }).collect(),
        other_results,
        problems: Vec::new(),
        targets: history.targets.clone(),
    }
}

/// A series' points as the summary reads them: from its previous sampling on, whole with their
/// first source; before it, what a sparkline draws ([`Point::plottable`]: status, value, unit
/// state, comparator) at its time.
#[cfg_attr(not(feature = "ssr"), allow(dead_code))]
fn summary_points(points: &[Point], uploaded: &[String]) -> Vec<Point> {
    // From the previous sampling on, and every result of the latest's own sampling (said on the
    // line beside it; review finding: with no previous sampling, the others were sent slim and
    // read "—").
    let whole_from = latest_and_previous(points, &|p| p.first_source_in(uploaded)).map_or(0, |(latest, previous)| {
        let latest_sampling = points.iter().position(|p| p.time == points[latest].time).unwrap_or(latest);
        previous.map_or(latest_sampling, |previous| previous.min(latest_sampling))
    });
    // An older uploaded result is not drawn by a sparkline where a laboratory's exist (it is
    // off the line, as on the chart); sent slim it would lose the source that says so.
    let any_laboratory = points.iter().any(|p| !p.first_source_in(uploaded));
    points
        .iter()
        .enumerate()
        .filter(|(i, p)| *i >= whole_from || !any_laboratory || !p.first_source_in(uploaded))
        .map(|(i, p)| {
            if i >= whole_from {
                Point { sources: p.sources.iter().take(1).cloned().collect(), ..p.clone() }
            } else {
                Point {
                    time: p.time,
                    status: p.status,
                    value: p.value.clone(),
                    comparator: p.comparator,
                    in_display_unit: p.in_display_unit,
                    ..Point::default()
                }
            }
        })
        .collect()
}

/// The latest completed result of a series and the one the summary gives as "previous": the
/// last completed result sampled before it (a second result of the latest's own sampling is no
/// "previous"); their indices. A laboratory's result (`uploaded` false) is the latest before any
/// uploaded one, even one sampled minutes later (review finding: a copy of a laboratory's
/// report moved by a minute, a value changed, took the summary's headline); the uploads after it
/// are said beside it ([`beside_latest`]). A laboratory's latest is compared with a laboratory's.
fn latest_and_previous(points: &[Point], uploaded: &dyn Fn(&Point) -> bool) -> Option<(usize, Option<usize>)> {
    let completed = |p: &Point| p.status == PointStatus::Completed;
    let latest = points.iter().rposition(|p| completed(p) && !uploaded(p)).or_else(|| points.iter().rposition(|p| completed(p)))?;
    let from_laboratory = !uploaded(&points[latest]);
    let sampled_at = |p: &Point| p.time.map(|t| t.epoch_seconds());
    let previous = points[..latest].iter().rposition(|p| {
        completed(p)
            && (!from_laboratory || !uploaded(p))
            && match (sampled_at(p), sampled_at(&points[latest])) {
                (Some(before), Some(latest)) => before < latest,
                _ => true,
            }
    });
    Some((latest, previous))
}

/// The other results said beside the latest on its line: those of its own sampling, and the
/// uploaded ones after it.
fn beside_latest(points: &[Point], latest: usize) -> Vec<Point> {
    points
        .iter()
        .enumerate()
        .filter(|(i, p)| {
            *i != latest && p.status == PointStatus::Completed && (*i > latest || (p.time.is_some() && p.time == points[latest].time))
        })
        .map(|(_, p)| p.clone())
        .collect()
}

#[component]
pub fn SummaryPage() -> impl IntoView {
    let params = use_params_map();
    let patient = move || params.read().get("id").unwrap_or_default();
    // What the summary reads of the history, not all of it (`summary_history`).
    let data = Resource::new(patient, load_summary);
    let viewer = super::use_viewer();
    let clock = Resource::new(|| (), |_| server_time());
    view! {
        <section class="page">
            <p class="breadcrumb">
                <a href=move || format!("/patients/{}", patient())>{tr(Msg::DocumentsLink)}</a>
                " · "
                <a href=move || format!("/patients/{}/results", patient()) data-testid="to-results">{tr(Msg::ResultsLink)}</a>
            </p>
            <h1>{tr(Msg::Summary)}</h1>
            <Suspense fallback=move || view! { <p class="loading">{tr(Msg::Loading)}</p> }>
                {move || Suspend::new(async move {
                    // Patients read their own results in plainer words.
                    let plain = matches!(viewer.await, Ok(Some(v)) if v.role == crate::model::ViewerRole::Patient);
                    let intro = if plain { Msg::PlainIntro } else { Msg::SummaryIntro };
                    // "Old" is counted back from today (the server's clock).
                    let today = clock.await.ok().and_then(|at| at.get(..10).and_then(parse_day));
                    match data.await {
                        Ok(h) => {
                            let qualitative = qualitative_lines(&h);
                            let uploaded = h.uploaded_documents();
                            view! {
                                <super::PatientTitle page=Msg::Summary name=h.patient.as_ref().map(super::patient_name)/>
                                <p class="intro">{tr(intro)}</p>
                                <crate::components::PatientBanner identity=h.patient.clone()/>
                                <QualitativeAbnormal history=qualitative patient=patient()/>
                                <Panels series=h.series.clone() patient=patient() today uploaded=uploaded.clone()/>
                                <SummaryTable series=h.series patient=patient() plain today uploaded/>
                            }
                            .into_any()
                        }
                        Err(error) => view! { <super::LoadError error/> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

/// What the latest value did since the previous comparable one: the words "rising" and
/// "falling" are kept for significant changes; anything else is "no significant change".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trend {
    SignificantRise,
    SignificantFall,
    NoSignificantChange,
    /// A previous value exists but the change is not judged: no biological variation known for
    /// the analyte, another laboratory or method, a censored or unconverted value.
    NotJudged,
}

/// One line of the summary.
struct Line {
    series: Series,
    latest: Point,
    previous: Option<Point>,
    trend: Option<Trend>,
    attention: bool,
    /// The latest value comes from a document a user uploaded (said on its line).
    uploaded: bool,
    /// Other results of the latest's own sampling (another report, another unit), and uploaded
    /// ones after it: said beside the value, never left for the table's tip alone.
    same_sampling: Vec<Point>,
}

fn is_abnormal(p: &Point) -> bool {
    // Against the treatment target when one is set; critical values always.
    p.is_abnormal()
}

/// The trend between the previous and the latest value: only a change the normaliser found
/// significant has a direction; "no significant change" only where the normaliser judged it (the
/// analyte's biological variation known, the same laboratory and method, two exact values in
/// the display unit); anything else is not judged, never "no change" (review finding: a tenfold
/// rise of urine red cells, an analyte without a known variation, read "no significant change").
fn trend(series: &Series, latest: &Point, previous: Option<&Point>) -> Option<Trend> {
    let previous = previous?;
    let comparable = previous.plottable().is_some()
        && latest.plottable().is_some()
        && !series.change_not_judged
        && !latest.comparability.laboratory
        && !latest.comparability.method;
    Some(match latest.significant_change {
        Some(Direction::Up) => Trend::SignificantRise,
        Some(Direction::Down) => Trend::SignificantFall,
        None if comparable => Trend::NoSignificantChange,
        None => Trend::NotJudged,
    })
}

/// A result more than a year before `today` is old: it is marked so, never read as current.
fn is_old(p: &Point, today: Option<Day>) -> bool {
    match (day_of(p), today.and_then(|t| Period::OneYear.back_from(t))) {
        (Some(day), Some(year_ago)) => day < year_ago,
        _ => false,
    }
}

fn line(series: Series, uploaded: &[String]) -> Option<Line> {
    // Values Bioviewer computed count too (an eGFR from the day's creatinine): they are said to
    // be computed, with the KDIGO stage, never left out of the summary.
    let (at, previous) = latest_and_previous(&series.points, &|p| p.first_source_in(uploaded))?;
    let latest = series.points[at].clone();
    let previous = previous.map(|i| series.points[i].clone());
    let same_sampling = beside_latest(&series.points, at);
    let trend = trend(&series, &latest, previous.as_ref());
    let attention = is_abnormal(&latest) || latest.significant_change.is_some();
    let uploaded = latest.first_source_in(uploaded);
    Some(Line { series, latest, previous, trend, attention, uploaded, same_sampling })
}

#[component]
fn SummaryTable(series: Vec<Series>, patient: String, plain: bool, today: Option<Day>, uploaded: Vec<String>) -> impl IntoView {
    let lang = use_lang();
    let mut lines: Vec<Line> = series.into_iter().filter_map(|s| line(s, &uploaded)).collect();
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
                        (Some(Trend::NoSignificantChange), false) => ("", Msg::NoSignificantChange),
                        (Some(Trend::NotJudged), false) => ("", Msg::ChangeNotJudged),
                        (None, false) => ("", Msg::NoPrevious),
                        (Some(Trend::SignificantRise), true) => ("⬆", Msg::PlainSignificantRise),
                        (Some(Trend::SignificantFall), true) => ("⬇", Msg::PlainSignificantFall),
                        (Some(Trend::NotJudged), true) => ("", Msg::PlainNotCompared),
                        (Some(_), true) => ("", Msg::PlainSmallChange),
                        (None, true) => ("", Msg::PlainFirst),
                    };
                    let class = match (critical, l.attention) {
                        (true, _) => "attention critical",
                        (false, true) => "attention",
                        (false, false) => "",
                    };
                    let previous = l.previous.as_ref().map(|p| {
                        let when = p.time.map(|t| format_datetime(lang, &t.date_string())).unwrap_or_default();
                        format!("{} {} ({when})", point_text(p, lang), lang.unit(l.series.unit.as_deref()))
                    });
                    let old = is_old(&l.latest, today);
                    // The same analyte in the cumulative table.
                    let in_table = format!("/patients/{patient}/results?q={}", crate::table::encode(&l.series.name_fr));
                    view! {
                        <tr class=class data-testid="summary-row">
                            <th scope="row"><a href=href>{name}</a>{help.map(|h| view! { <span class="analyte-help">{h}</span> })}</th>
                            <td class="num"><strong>{value}</strong>" "<span class="unit">{lang.unit(l.series.unit.as_deref())}</span>
                                {stage.map(|s| view! { <div class="stage" data-testid="kdigo-stage">{s}</div> })}
                                {l.same_sampling.iter().map(|o| {
                                    let from_upload = o.first_source_in(&uploaded);
                                    let said = if o.time == l.latest.time { Msg::SameSamplingResult } else { Msg::LaterUploadedResult };
                                    let when = if o.time == l.latest.time {
                                        String::new()
                                    } else {
                                        o.time.map(|t| format!(" ({})", format_datetime(lang, &t.to_string()))).unwrap_or_default()
                                    };
                                    let text = format!(
                                        "{}{when}{} {} {} — {}{}",
                                        said.text(lang),
                                        if lang == Lang::Fr { " :" } else { ":" },
                                        point_text(o, lang),
                                        lang.unit(o.unit.as_deref()),
                                        o.laboratory.as_deref().unwrap_or(""),
                                        if from_upload { format!(" ({})", Msg::UploadedMark.text(lang)) } else { String::new() },
                                    );
                                    view! { <div class="muted same-sampling" data-testid="summary-same-sampling">{text}</div> }
                                }).collect_view()}</td>
                            <td data-testid="summary-flag">{flag}{laboratory.map(|t| view! { <div class="muted lab-judgement">{t}</div> })}</td>
                            <td class="num muted" data-testid="summary-previous">{previous.unwrap_or_default()}</td>
                            <td data-testid="summary-trend"><span aria-hidden="true">{arrow}</span>" "{words.text(lang)}</td>
                            <td class="nowrap">{l.latest.time.map(|t| format_datetime(lang, &t.date_string())).unwrap_or_default()}
                                {old.then(|| view! { " " <span class="badge badge-old" data-testid="old-mark">{Msg::OldResult.text(lang)}</span> })}
                                " " <a class="in-table" href=in_table data-testid="summary-in-table">{Msg::SeeInTable.text(lang)}</a></td>
                            <td>{l.latest.laboratory.as_deref().unwrap_or("").to_string()}
                                {l.uploaded.then(|| view! { " " <span class="badge badge-warning" data-testid="summary-uploaded">{Msg::UploadedMark.text(lang)}</span> })}</td>
                            {(!plain).then(|| view! { <td class="muted">{chapter_name(&l.series.chapter, lang)}</td> })}
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
                    <th scope="col" class="num">{tr(Msg::PreviousValue)}</th>
                    <th scope="col">{tr(Msg::Since)}</th>
                    <th scope="col">{tr(Msg::Date)}</th>
                    <th scope="col">{tr(Msg::Laboratory)}</th>
                    {(!plain).then(|| view! { <th scope="col">{tr(Msg::Chapter)}</th> })}
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
fn Sparkline(series: Series, patient: String, today: Option<Day>, uploaded: Vec<String>) -> impl IntoView {
    let lang = use_lang();
    // The laboratories' values (an upload's are said on the summary's line, as on the chart they
    // are off the line); an upload's only where there is no laboratory's.
    let any_laboratory = series.points.iter().any(|p| !p.first_source_in(&uploaded));
    let points: Vec<(f64, f64)> = series
        .points
        .iter()
        .filter(|p| !any_laboratory || !p.first_source_in(&uploaded))
        .filter_map(|p| Some((p.time?.epoch_seconds() as f64, p.plottable()?)))
        .collect();
    // The previous sampling, as on the summary's line: a second result of the latest's own
    // sampling is no "previous" value.
    let (latest, previous) = match latest_and_previous(&series.points, &|p| p.first_source_in(&uploaded)) {
        Some((latest, previous)) => (Some(series.points[latest].clone()), previous.map(|i| series.points[i].clone())),
        None => (None, None),
    };
    let latest_uploaded = latest.as_ref().is_some_and(|p| p.first_source_in(&uploaded));
    let previous_uploaded = previous.as_ref().is_some_and(|p| p.first_source_in(&uploaded));
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
    // The card says what a reader needs without opening the chart: the latest value with its
    // flag and date (marked old after a year), and the previous value beside it.
    let old = latest.as_ref().is_some_and(|p| is_old(p, today));
    // Against the treatment target when one is set (a value in target is not flagged).
    let flag = latest.as_ref().filter(|p| p.is_abnormal()).and_then(|p| p.shown_flag().cloned());
    let flag_class = flag.as_ref().map(|f| flag_symbol(&f.code).1).unwrap_or("");
    let when = latest.as_ref().and_then(|p| p.time).map(|t| t.date_string());
    let before = previous.clone();
    let before_unit = unit.clone();
    let value = {
        let latest = latest.clone();
        move || latest.as_ref().map(|p| point_text(p, lang.get())).unwrap_or_default()
    };
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
            <span class=format!("spark-value {flag_class}") data-testid="card-latest">
                <strong>{value.clone()} " " {unit.clone()}</strong>
                {flag.map(|f| view! { " " <span class="flag">{move || flag_label(&f.code, lang.get())}</span> })}
                {when.map(|w| view! { " · " <span class="nowrap">{move || format_datetime(lang.get(), &w)}</span> })}
                {old.then(|| view! { " " <span class="badge badge-old" data-testid="old-mark">{tr(Msg::OldResult)}</span> })}
                {latest_uploaded.then(|| view! { " " <span class="badge badge-warning" data-testid="card-uploaded">{tr(Msg::UploadedMark)}</span> })}
            </span>
            {before.map(|p| {
                let day = p.time.map(|t| t.date_string());
                view! {
                    <span class="spark-previous muted" data-testid="card-previous">
                        {tr(Msg::PreviousValue)} {move || if lang.get() == Lang::Fr { " : " } else { ": " }}
                        {move || point_text(&p, lang.get())} " " {before_unit.clone()}
                        {day.map(|w| view! { " · " {move || format_datetime(lang.get(), &w)} })}
                        {previous_uploaded.then(|| view! { " " <span class="badge badge-warning" data-testid="card-previous-uploaded">{tr(Msg::UploadedMark)}</span> })}
                    </span>
                }
            })}
        </li>
    }
}

#[component]
fn Panels(series: Vec<Series>, patient: String, today: Option<Day>, uploaded: Vec<String>) -> impl IntoView {
    // Only the panels this patient has results for are offered.
    let offered: Vec<usize> = (0..PANELS.len()).filter(|i| PANELS[*i].1.iter().any(|id| series.iter().any(|s| s.analyte == *id))).collect();
    let chosen = RwSignal::new(offered.first().copied().unwrap_or(0));
    let series = StoredValue::new(series);
    let patient = StoredValue::new(patient);
    let uploaded = StoredValue::new(uploaded);
    (!offered.is_empty()).then(|| view! {
        <section class="panels" aria-labelledby="panels-heading">
            <h2 id="panels-heading">{tr(Msg::Panels)}</h2>
            <div class="toolbar" role="group" aria-label=tr(Msg::Panel)>
                {offered.iter().map(|&i| view! {
                    <button type="button" class="toggle" data-testid=format!("panel-{i}")
                        aria-pressed=move || (chosen.get() == i).to_string() on:click=move |_| chosen.set(i)>{tr(PANELS[i].0)}</button>
                }).collect_view()}
            </div>
            {move || {
                let (_, ids) = PANELS[chosen.get()];
                let members: Vec<Series> = series.with_value(|all| ids.iter().filter_map(|id| all.iter().find(|s| s.analyte == *id).cloned()).collect());
                view! { <ul class="sparklines">{members.into_iter().map(|s| view! { <Sparkline series=s patient=patient.get_value() today uploaded=uploaded.get_value()/> }).collect_view()}</ul> }
            }}
        </section>
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::UnitSystem;
    use bioviewer_core::cda::CdaTime;

    /// A qualitative series (a rapid test) with these results.
    fn covid(points: Vec<Point>) -> Series {
        Series {
            analyte: "covid".into(),
            name_fr: "Covid".into(),
            name_en: "Covid".into(),
            chapter: "microbiology".into(),
            loinc_seen: Vec::new(),
            unit: None,
            decimals: 0,
            points,
            change_not_judged: false,
        }
    }

    fn point(date: &str, value: &str, change: Option<Direction>) -> Point {
        Point {
            time: Some(CdaTime::parse_hl7(date).unwrap()),
            value: bioviewer_core::cda::Decimal::parse(value),
            display: Some(value.into()),
            in_display_unit: true,
            significant_change: change,
            ..Default::default()
        }
    }

    #[test]
    fn the_summary_receives_what_it_reads() {
        use bioviewer_core::normalise::{Flag, OtherResults, Source};
        let source = |document: &str| Source {
            document: document.into(),
            observation: 0,
            code: Some("X".into()),
            code_system: None,
            label: Some("Test rapide".into()),
            original_value: None,
            original_unit: None,
            converted: false,
            rule: None,
            not_converted: None,
            not_converted_reason: None,
            previous_result: false,
        };
        let positive = |date: &str, document: &str| Point {
            time: Some(CdaTime::parse_hl7(date).unwrap()),
            text: Some("positif".into()),
            flag: Some(Flag { code: "POS".into(), computed: false }),
            sources: vec![source(document), source("copy")],
            ..Default::default()
        };
        let series = covid(vec![positive("20240101", "d1"), point("20250101", "4.2", None), positive("20250102", "d2")]);
        let other = OtherResults {
            code: Some("Y".into()),
            code_system: None,
            label: None,
            laboratory: None,
            points: vec![positive("20200101", "d0"), positive("20230101", "d3"), positive("20230101", "d4")],
        };
        let history = crate::model::History {
            patient: None,
            unit_system: UnitSystem::Si,
            documents: Vec::new(),
            series: vec![series.clone()],
            other_results: vec![other],
            problems: vec!["x".into()],
            targets: Vec::new(),
        };
        let trimmed = summary_history(&history);
        assert_eq!(qualitative_lines(&trimmed), qualitative_lines(&history));
        assert_eq!(qualitative_lines(&history).len(), 2);
        assert_eq!(trimmed.series[0].points.len(), 3, "every result: the sparkline draws them all");
        assert!(trimmed.series[0].points.iter().all(|p| p.sources.len() <= 1));
        // One sampling only, two results of it: both whole (the line says the other one).
        let single = Series { points: vec![point("20250101", "4.2", None), point("20250101", "9.5", None)], ..series.clone() };
        assert_eq!(summary_points(&single.points, &[]), single.points, "review finding: the other result of the sampling read '—'");
        let [older, previous, latest] = &trimmed.series[0].points[..] else { panic!() };
        assert!(older.sources.is_empty() && older.flag.is_none(), "before the previous sampling: what a sparkline draws");
        assert_eq!((older.time, older.status), (series.points[0].time, series.points[0].status));
        assert_eq!(
            (previous, latest),
            (&series.points[1], &Point { sources: series.points[2].sources[..1].to_vec(), ..series.points[2].clone() })
        );
        assert_eq!(trimmed.other_results[0].points.len(), 2, "the latest moment's results only");
        let line = |s: &Series| line(s.clone(), &[]).map(|l| (l.latest, l.previous, l.trend));
        assert_eq!(
            line(&trimmed.series[0]).map(|l| (l.0.time, l.1.map(|p| p.time), l.2)),
            line(&series).map(|l| (l.0.time, l.1.map(|p| p.time), l.2))
        );
    }

    fn glucose(points: Vec<Point>) -> Series {
        Series {
            analyte: "glucose".into(),
            name_fr: "Glycémie".into(),
            name_en: "Glucose".into(),
            chapter: "biochemistry".into(),
            loinc_seen: Vec::new(),
            unit: Some("mmol/L".into()),
            decimals: 2,
            points,
            change_not_judged: false,
        }
    }

    /// Review finding: two results of the latest sampling showed one as the other's "previous".
    /// Review finding (attack review, seventh session): an uploaded positive of the moment of a
    /// laboratory's negative stood in front of it on the summary. The laboratory's result is the
    /// one read; the upload alone is still read (marked where it shows).
    #[test]
    fn an_uploaded_result_never_stands_in_front_of_the_laboratorys_of_the_same_moment() {
        use bioviewer_core::normalise::{DocumentEntry, DocumentState, Flag, Provenance, Source};
        let at = |document: &str, code: &str, text: &str| Point {
            time: Some(CdaTime::parse_hl7("20250105").unwrap()),
            text: Some(text.into()),
            flag: Some(Flag { code: code.into(), computed: false }),
            sources: vec![Source { document: document.into(), ..Source::default() }],
            ..Default::default()
        };
        let upload = DocumentEntry::bare("upload", DocumentState::Current, Provenance::Upload);
        let history = |points: Vec<Point>| crate::model::History {
            patient: None,
            unit_system: UnitSystem::Si,
            documents: vec![upload.clone()],
            series: vec![covid(points)],
            other_results: Vec::new(),
            problems: Vec::new(),
            targets: Vec::new(),
        };
        let negative = at("laboratory", "N", "négatif");
        let positive = at("upload", "POS", "positif");
        assert!(qualitative_lines(&history(vec![negative.clone(), positive.clone()])).is_empty(), "the laboratory's negative is read");
        assert!(qualitative_lines(&history(vec![positive.clone(), negative])).is_empty());
        let alone = qualitative_lines(&history(vec![positive]));
        assert_eq!(alone.len(), 1, "an upload alone is read");
        assert!(alone[0].uploaded, "and said to be uploaded (review finding, third round)");
        assert!(!qualitative_lines(&history(vec![at("laboratory", "POS", "positif")]))[0].uploaded);
    }

    #[test]
    fn the_previous_value_is_the_previous_sampling() {
        let series = glucose(vec![point("20200912", "7.2", None), point("20210104", "4.89", None), point("20210104", "7.2", None)]);
        let line = line(series, &[]).unwrap();
        assert_eq!(line.previous.and_then(|p| p.time).map(|t| t.date_string()), Some("2020-09-12".to_string()));
    }

    /// Review finding: an uploaded value, latest of its analyte, showed on the summary like a
    /// laboratory's. Its line says "uploaded" where it is the latest (no laboratory's result), and
    /// beside a laboratory's latest it is said as a more recent uploaded result (second round).
    #[test]
    fn a_latest_value_from_an_upload_is_said_to_be_uploaded() {
        let from = |document: &str, p: Point| Point {
            sources: vec![bioviewer_core::normalise::Source { document: document.into(), ..Default::default() }],
            status: PointStatus::Completed,
            ..p
        };
        let series = glucose(vec![from("lab", point("20240101", "5.0", None)), from("upload", point("20240201", "9.9", None))]);
        let upload = "upload".to_string();
        let beside_the_laboratorys = line(series.clone(), std::slice::from_ref(&upload)).unwrap();
        assert!(!beside_the_laboratorys.uploaded && beside_the_laboratorys.latest.display.as_deref() == Some("5.0"));
        assert_eq!(beside_the_laboratorys.same_sampling.len(), 1, "the upload said beside");
        assert!(!line(series.clone(), &[]).unwrap().uploaded);
        let alone = glucose(vec![from("upload", point("20240201", "9.9", None))]);
        assert!(line(alone, &[upload]).unwrap().uploaded, "an upload alone is the latest, said uploaded");
        let older = series.points[0].sources[0].document.to_string();
        assert!(!line(series, &[older]).unwrap().uploaded, "only the latest value's document counts");
    }

    #[test]
    fn rising_and_falling_are_said_only_of_significant_changes() {
        let series = glucose(Vec::new());
        let trend = |latest: &Point, previous: Option<&Point>| trend(&series, latest, previous);
        let before = point("20240101", "100", None);
        assert_eq!(trend(&point("20250101", "104", None), Some(&before)), Some(Trend::NoSignificantChange), "a small rise is not 'rising'");
        assert_eq!(trend(&point("20250101", "150", Some(Direction::Up)), Some(&before)), Some(Trend::SignificantRise));
        assert_eq!(trend(&point("20250101", "50", Some(Direction::Down)), Some(&before)), Some(Trend::SignificantFall));
        assert_eq!(trend(&point("20250101", "50", None), None), None, "a first value has no trend");
        let mut censored = point("20250101", "5", None);
        censored.comparator = Some(crate::model::Comparator::Less);
        assert_eq!(trend(&censored, Some(&before)), Some(Trend::NotJudged), "a censored value is not compared, nor called unchanged");
    }

    /// Review finding (pages review, seventh session): one sampling held 200 /mL and 2 /µL
    /// (2,000 /mL) from two reports; the summary showed one and said nothing of the other.
    #[test]
    fn other_results_of_the_latest_sampling_are_said_on_its_line() {
        let series = glucose(vec![point("20240101", "5.0", None), point("20250101", "6.1", None), point("20250101", "7.9", None)]);
        let l = line(series, &[]).unwrap();
        assert_eq!(l.latest.display.as_deref(), Some("7.9"));
        assert_eq!(l.same_sampling.iter().map(|p| p.display.as_deref()).collect::<Vec<_>>(), [Some("6.1")]);
        assert_eq!(l.previous.and_then(|p| p.display).as_deref(), Some("5.0"), "the previous sampling, not the other result");
        let alone = line(glucose(vec![point("20240101", "5.0", None), point("20250101", "6.1", None)]), &[]).unwrap();
        assert!(alone.same_sampling.is_empty());
    }

    /// Review finding (attack review, seventh session, second round): a copy of a laboratory's
    /// report sampled a minute later, a value changed, became the summary's latest value (a
    /// critical INR, a recomputed eGFR). The laboratory's result stays the headline, compared
    /// with the laboratory's before it; the later upload is said beside it.
    #[test]
    fn a_later_upload_is_said_beside_the_laboratorys_latest_never_in_its_place() {
        let from = |document: &str, mut p: Point| {
            p.sources = vec![bioviewer_core::normalise::Source { document: document.into(), ..Default::default() }];
            p
        };
        let series = glucose(vec![
            from("lab-1", point("20250101", "5.0", None)),
            from("upload-0", point("20250201", "9.0", None)),
            from("lab-2", point("202503010800", "5.2", None)),
            from("upload-1", point("202503010801", "30.0", Some(Direction::Up))),
        ]);
        let uploads = ["upload-0".to_string(), "upload-1".to_string()];
        let l = line(series.clone(), &uploads).unwrap();
        assert_eq!(l.latest.display.as_deref(), Some("5.2"), "the laboratory's latest");
        assert_eq!(l.previous.as_ref().and_then(|p| p.display.as_deref()), Some("5.0"), "compared with the laboratory's before it");
        assert!(!l.uploaded);
        assert_eq!(l.same_sampling.iter().map(|p| p.display.as_deref()).collect::<Vec<_>>(), [Some("30.0")], "the later upload, beside");
        // Uploads alone: the latest upload is the latest, said uploaded.
        let only = glucose(vec![from("upload-0", point("20250201", "9.0", None)), from("upload-1", point("20250301", "9.5", None))]);
        let l = line(only, &uploads).unwrap();
        assert_eq!(l.latest.display.as_deref(), Some("9.5"));
        assert!(l.uploaded);
        // The payload keeps the later upload whole (the line says it).
        let sent = summary_points(&series.points, &uploads);
        assert_eq!(sent[3].display.as_deref(), Some("30.0"));
        // An upload older than the previous sampling is not sent slim, unmarked, for the sparkline
        // to draw (review finding, third round: a spike on the card).
        let older = glucose(vec![
            from("upload-0", point("20241201", "25.0", None)),
            from("lab-1", point("20250101", "5.0", None)),
            from("lab-2", point("20250301", "5.2", None)),
        ]);
        let sent = summary_points(&older.points, &uploads);
        assert_eq!(sent.iter().map(|p| p.display.as_deref()).collect::<Vec<_>>(), [Some("5.0"), Some("5.2")]);
    }

    /// Review finding (pages review, seventh session): a tenfold rise of urine red cells (an
    /// analyte the catalogue has no biological variation for) read "no significant change"; so
    /// did a change between two laboratories, which the normaliser does not judge.
    #[test]
    fn a_change_nobody_judged_is_never_called_no_significant_change() {
        let before = point("20240101", "200", None);
        let after = point("20250101", "2000", None);
        let unjudged = Series { change_not_judged: true, ..glucose(Vec::new()) };
        assert_eq!(trend(&unjudged, &after, Some(&before)), Some(Trend::NotJudged));
        let mut other_laboratory = after.clone();
        other_laboratory.comparability.laboratory = true;
        assert_eq!(trend(&glucose(Vec::new()), &other_laboratory, Some(&before)), Some(Trend::NotJudged));
        assert_eq!(
            trend(&glucose(Vec::new()), &after, Some(&before)),
            Some(Trend::NoSignificantChange),
            "judged: no change beyond the RCV"
        );
    }

    #[test]
    fn a_result_over_a_year_old_is_marked_old() {
        let today = Some((2026, 12, 3));
        assert!(is_old(&point("20251202", "1", None), today));
        assert!(!is_old(&point("20251203", "1", None), today), "exactly a year ago is still within the year");
        assert!(!is_old(&point("20261101", "1", None), today));
        assert!(!is_old(&point("20101101", "1", None), None), "without a clock nothing is marked");
    }
}

/// A non-numeric result that calls for attention: positive, or an abnormal finding.
#[derive(Clone, Debug, PartialEq)]
struct QualitativeLine {
    name_fr: String,
    name_en: String,
    text: String,
    flag: String,
    discordant_text: Option<String>,
    time: Option<String>,
    laboratory: Option<String>,
    document: String,
    point_of_care: bool,
    /// From a document a user uploaded (review finding: an uploaded positive serology showed
    /// here as the laboratory's).
    uploaded: bool,
}

/// The latest result of every test whose latest result is a text or coded one flagged abnormal
/// (positive rapid test, HPV detected, malignant cytology...), newest first.
fn qualitative_lines(h: &crate::model::History) -> Vec<QualitativeLine> {
    use bioviewer_core::report_view::is_abnormal_flag;
    let point_of_care =
        |document: &str| h.documents.iter().any(|d| d.id == document && d.kind == Some(crate::model::DocumentKind::PointOfCareTest));
    let uploaded_documents = h.uploaded_documents();
    let line = |p: &Point, name_fr: String, name_en: String| -> Option<QualitativeLine> {
        let flag = p.flag.as_ref().filter(|f| is_abnormal_flag(&f.code))?;
        let text = p.text.clone().filter(|_| p.display.is_none())?;
        let document = p.sources.first()?.document.to_string();
        Some(QualitativeLine {
            name_fr,
            name_en,
            text,
            flag: flag.code.to_string(),
            discordant_text: p.discordant_text.clone(),
            time: p.time.map(|t| t.to_string()),
            laboratory: p.laboratory.as_deref().map(str::to_string),
            point_of_care: point_of_care(&document),
            uploaded: p.first_source_in(&uploaded_documents),
            document,
        })
    };
    // The latest day's result; of several at that time (two reports of one test), a
    // laboratory's before an uploaded one (an upload never stands in front of a laboratory's
    // result), then the abnormal one, so that a negative never hides a positive of the same
    // moment.
    let uploaded = |p: &Point| p.first_source_in(&uploaded_documents);
    let latest = |points: &[Point]| {
        // A laboratory's latest before an upload's, even one sampled later (as on the lines).
        let completed = |p: &&Point| p.status == PointStatus::Completed;
        let last = points.iter().rev().filter(completed).find(|p| !uploaded(p)).or_else(|| points.iter().rev().find(completed))?;
        let same_time: Vec<&Point> = points.iter().rev().filter(|p| p.status == PointStatus::Completed && p.time == last.time).collect();
        let abnormal = |p: &&&Point| p.flag.as_ref().is_some_and(|f| is_abnormal_flag(&f.code));
        let laboratory: Vec<&&Point> = same_time.iter().filter(|p| !uploaded(p)).collect();
        let shown = laboratory
            .iter()
            .copied()
            .find(abnormal)
            .or(laboratory.first().copied())
            .or_else(|| same_time.iter().find(abnormal))
            .map_or(last, |p| *p);
        Some(shown.clone())
    };
    let mut lines: Vec<(i64, QualitativeLine)> = h
        .series
        .iter()
        .filter_map(|s| latest(&s.points).and_then(|p| Some((p.time?.epoch_seconds(), line(&p, s.name_fr.clone(), s.name_en.clone())?))))
        .chain(h.other_results.iter().filter_map(|o| {
            let p = latest(&o.points)?;
            let name = p.sources.first().and_then(|s| s.label.clone()).or_else(|| o.label.clone()).or_else(|| o.code.clone())?;
            Some((p.time.map_or(i64::MIN, |t| t.epoch_seconds()), line(&p, name.clone(), name)?))
        }))
        .collect();
    lines.sort_by(|a, b| b.0.cmp(&a.0));
    lines.into_iter().map(|(_, l)| l).collect()
}

/// Results that are not numbers but call for attention, apart from the table of numbers: a
/// positive rapid test, a virus detected, a malignant cytology.
#[component]
fn QualitativeAbnormal(history: Vec<QualitativeLine>, patient: String) -> impl IntoView {
    let lang = use_lang();
    if history.is_empty() {
        return ().into_any();
    }
    let rows = move || {
        let lang = lang.get();
        history
            .iter()
            .map(|l| {
                let name = match lang {
                    Lang::Fr => l.name_fr.clone(),
                    Lang::En => l.name_en.clone(),
                };
                let (_, class, _) = crate::components::flag_symbol(&l.flag);
                let href = format!("/patients/{patient}/documents/{}", l.document);
                view! {
                    <tr class="attention" data-testid="qualitative-row">
                        <th scope="row">{name}</th>
                        <td>
                            <strong>{l.text.clone()}</strong>
                            {l.discordant_text.clone().map(|t| view! {
                                <div class="discordant" data-testid="discordant">"⚠ " {Msg::DiscordantText.text(lang)} " « " {t} " »"</div>
                            })}
                        </td>
                        <td class=class>{flag_label(&l.flag, lang)}</td>
                        <td class="nowrap">{l.time.as_deref().map(|t| format_datetime(lang, t)).unwrap_or_default()}</td>
                        <td>
                            {l.laboratory.clone().unwrap_or_default()}
                            {l.point_of_care.then(|| view! { " " <span class="badge" data-testid="point-of-care">{Msg::PointOfCareMark.text(lang)}</span> })}
                            {l.uploaded.then(|| view! { " " <span class="badge badge-warning" data-testid="qualitative-uploaded">{Msg::UploadedMark.text(lang)}</span> })}
                            " · " <a href=href>{Msg::OpenReport.text(lang)}</a>
                        </td>
                    </tr>
                }
            })
            .collect_view()
    };
    view! {
        <section class="qualitative" aria-labelledby="qualitative-heading" data-testid="qualitative-abnormal">
            <h2 id="qualitative-heading">{tr(Msg::QualitativeHeading)}</h2>
            <p class="intro">{tr(Msg::QualitativeIntro)}</p>
            <div class="table-scroll">
                <table class="data summary">
                    <thead><tr>
                        <th scope="col">{tr(Msg::Analyte)}</th>
                        <th scope="col">{tr(Msg::ResultColumn)}</th>
                        <th scope="col">{tr(Msg::FlagColumn)}</th>
                        <th scope="col">{tr(Msg::Date)}</th>
                        <th scope="col">{tr(Msg::Source)}</th>
                    </tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        </section>
    }
    .into_any()
}
