//! One analyte: the trend chart (SVG drawn on the server) and every result with its sources.
//!
//! What the chart and the table show is in the URL (`?period=1y&with=ferritin&from=&to=`), so
//! Back and reload keep it, and the chart and the table under it always show the same results:
//! both filter through [`ChartView::window`].

use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};
use serde::{Deserialize, Serialize};

use crate::api::{load_analyte, load_chart};
use crate::components::{DateField, DocumentLabels, flag_label, format_datetime, not_converted_text, point_text, rule_text};
use crate::i18n::{Lang, Msg, tr, use_lang};
use crate::model::{History, Point, Series, UnitSystem};
use bioviewer_core::judge::{TargetProblem, TreatmentTarget};

/// A time preset, counted back from the series' latest result (so that an old record still
/// shows its last year rather than an empty chart; the page says so).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Period {
    OneMonth,
    SixMonths,
    OneYear,
    FiveYears,
    #[default]
    All,
}

impl Period {
    pub const ALL: [Period; 5] = [Period::OneMonth, Period::SixMonths, Period::OneYear, Period::FiveYears, Period::All];

    pub fn code(self) -> &'static str {
        match self {
            Period::OneMonth => "1m",
            Period::SixMonths => "6m",
            Period::OneYear => "1y",
            Period::FiveYears => "5y",
            Period::All => "all",
        }
    }

    pub fn from_code(code: &str) -> Option<Period> {
        Period::ALL.into_iter().find(|p| p.code() == code)
    }

    fn months(self) -> Option<i64> {
        match self {
            Period::OneMonth => Some(1),
            Period::SixMonths => Some(6),
            Period::OneYear => Some(12),
            Period::FiveYears => Some(60),
            Period::All => None,
        }
    }

    /// The first day of this period counted back from `latest` by calendar months (the 31st
    /// minus one month is the last day of the month before); `None`: no limit.
    pub fn back_from(self, (y, m, d): Day) -> Option<Day> {
        let months = self.months()?;
        let index = i64::from(y) * 12 + i64::from(m) - 1 - months;
        let (y, m) = (index.div_euclid(12), (index.rem_euclid(12) + 1) as u8);
        let last_day = match m {
            2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        Some((y.clamp(0, 9999) as u16, m, d.min(last_day)))
    }

    pub(crate) fn label(self) -> Msg {
        match self {
            Period::OneMonth => Msg::PeriodOneMonth,
            Period::SixMonths => Msg::PeriodSixMonths,
            Period::OneYear => Msg::PeriodOneYear,
            Period::FiveYears => Msg::PeriodFiveYears,
            Period::All => Msg::PeriodAll,
        }
    }
}

/// A calendar date (year, month, day) as the laboratory wrote it.
pub type Day = (u16, u8, u8);

pub(crate) fn day_of(point: &Point) -> Option<Day> {
    point.time.map(|t| (t.year, t.month.unwrap_or(1), t.day.unwrap_or(1)))
}

pub(crate) fn parse_day(iso: &str) -> Option<Day> {
    let t = bioviewer_core::cda::CdaTime::parse_iso(iso.trim())?;
    Some((t.year, t.month?, t.day?))
}

/// The dates whose results are shown, both inclusive; `None` is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Window {
    pub from: Option<Day>,
    pub to: Option<Day>,
}

impl Window {
    /// A result without a date is shown only when nothing limits the dates.
    pub fn contains(&self, point: &Point) -> bool {
        match day_of(point) {
            Some(day) => self.from.is_none_or(|f| day >= f) && self.to.is_none_or(|t| day <= t),
            None => self.from.is_none() && self.to.is_none(),
        }
    }

    /// The series with only the results inside the window (the chart and the table draw this).
    pub fn apply(&self, series: &Series) -> Series {
        Series { points: series.points.iter().filter(|p| self.contains(p)).cloned().collect(), ..series.clone() }
    }
}

/// What the analyte page shows, read from its URL and sent to the chart.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct ChartView {
    pub period: Period,
    /// ISO dates of a custom range, intersected with the period.
    pub from: Option<String>,
    pub to: Option<String>,
    /// A second analyte on its own axis.
    pub with: Option<String>,
    /// The width the chart is shown at, in CSS pixels (measured by the page).
    pub width: Option<u32>,
}

fn is_analyte_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl ChartView {
    /// Reads the view from query parameters, dropping what is not well formed (so nothing from
    /// the URL is ever written back into a link unchecked).
    pub fn from_query(get: impl Fn(&str) -> Option<String>) -> ChartView {
        ChartView {
            period: get("period").as_deref().and_then(Period::from_code).unwrap_or_default(),
            from: get("from").filter(|d| parse_day(d).is_some()),
            to: get("to").filter(|d| parse_day(d).is_some()),
            with: get("with").filter(|a| is_analyte_id(a)),
            width: None,
        }
    }

    /// The dates shown: the period counted back from the series' latest dated result,
    /// intersected with the custom range.
    pub fn window(&self, series: &Series) -> Window {
        let latest = series.points.iter().filter_map(day_of).max();
        let from_period = latest.and_then(|day| self.period.back_from(day));
        let custom_from = self.from.as_deref().and_then(parse_day);
        Window { from: from_period.max(custom_from), to: self.to.as_deref().and_then(parse_day) }
    }

    /// The query string of this view (without the width, which is the reader's screen).
    fn query(&self, units: UnitSystem) -> String {
        let mut parts = Vec::new();
        if units == UnitSystem::Conventional {
            parts.push("units=conventional".to_string());
        }
        if self.period != Period::All {
            parts.push(format!("period={}", self.period.code()));
        }
        for (key, value) in [("from", &self.from), ("to", &self.to), ("with", &self.with)] {
            if let Some(value) = value {
                parts.push(format!("{key}={value}"));
            }
        }
        if parts.is_empty() { String::new() } else { format!("?{}", parts.join("&")) }
    }
}

/// The analyte usually read beside this one: creatinine with eGFR (the patient's first eGFR
/// series, CKD-EPI 2021 first), haemoglobin with ferritin.
fn partner<'a>(analyte: &str, available: &[&'a str]) -> Option<&'a str> {
    const EGFR: [&str; 3] = ["egfr_ckd_epi_2021", "egfr_ckd_epi_2009", "egfr_mdrd"];
    let wanted: &[&str] = match analyte {
        "creatinine" => &EGFR,
        a if EGFR.contains(&a) => &["creatinine"],
        "haemoglobin" => &["ferritin"],
        "ferritin" => &["haemoglobin"],
        _ => &[],
    };
    wanted.iter().find_map(|w| available.iter().find(|a| *a == w).copied())
}

/// What the analyte page reads of a history: this analyte's series whole, the other analytes
/// by name only (the second analyte's chooser), the documents this analyte's results come from
/// (named in the points table), the patient and the targets. Not the other analytes' results.
#[cfg_attr(not(feature = "ssr"), allow(dead_code))]
pub fn analyte_history(history: &History, analyte: &str) -> History {
    let series: Vec<Series> = history
        .series
        .iter()
        .map(|s| if s.analyte == analyte { s.clone() } else { Series { points: Vec::new(), loinc_seen: Vec::new(), ..s.clone() } })
        .collect();
    let used: std::collections::HashSet<&str> = history
        .series
        .iter()
        .filter(|s| s.analyte == analyte)
        .flat_map(|s| &s.points)
        .flat_map(|p| &p.sources)
        .map(|s| &*s.document)
        .collect();
    History {
        patient: history.patient.clone(),
        unit_system: history.unit_system,
        documents: history.documents.iter().filter(|d| used.contains(d.id.as_str())).cloned().collect(),
        series,
        other_results: Vec::new(),
        problems: Vec::new(),
        targets: history.targets.iter().filter(|t| t.analyte == analyte).cloned().collect(),
    }
}

/// Widths are asked in steps, so a few pixels of resizing do not redraw the chart.
const WIDTH_STEP: i32 = 40;

/// The cookie that remembers the width the chart was last shown at, so that the server draws
/// the next analyte page's chart at that width and the page does not ask for it again.
#[cfg_attr(not(any(feature = "ssr", target_arch = "wasm32")), allow(dead_code))]
pub const CHART_WIDTH_COOKIE: &str = "bioviewer_chart_width";

/// A remembered chart width, from a `Cookie` header value (or `document.cookie`): a multiple of
/// the width step in a plausible range, else none.
#[cfg_attr(not(any(feature = "ssr", target_arch = "wasm32")), allow(dead_code))]
pub fn chart_width_from_cookies(cookies: &str) -> Option<u32> {
    cookies.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        let width: u32 = (name.trim() == CHART_WIDTH_COOKIE).then(|| value.trim().parse().ok()).flatten()?;
        (width.is_multiple_of(WIDTH_STEP as u32) && (WIDTH_STEP as u32..=4000).contains(&width)).then_some(width)
    })
}

/// The chart width this request remembers: the server draws a chart asked without a width at
/// it; the page, which reads the same cookie, then asks again only when it measures another.
pub fn remembered_chart_width() -> Option<u32> {
    #[cfg(feature = "ssr")]
    {
        use_context::<http::request::Parts>()
            .and_then(|parts| parts.headers.get_all(http::header::COOKIE).iter().find_map(|v| chart_width_from_cookies(v.to_str().ok()?)))
    }
    #[cfg(all(not(feature = "ssr"), target_arch = "wasm32"))]
    {
        use leptos::wasm_bindgen::JsCast;
        chart_width_from_cookies(&document().unchecked_into::<cookies::CookieDocument>().cookie())
    }
    #[cfg(all(not(feature = "ssr"), not(target_arch = "wasm32")))]
    {
        None
    }
}

/// `document.cookie`, which the web-sys features Leptos enables do not include.
#[cfg(all(not(feature = "ssr"), target_arch = "wasm32"))]
mod cookies {
    use leptos::wasm_bindgen::prelude::wasm_bindgen;

    #[wasm_bindgen]
    extern "C" {
        #[wasm_bindgen(extends = leptos::web_sys::Document)]
        pub type CookieDocument;
        #[wasm_bindgen(method, getter)]
        pub fn cookie(this: &CookieDocument) -> String;
        #[wasm_bindgen(method, setter)]
        pub fn set_cookie(this: &CookieDocument, value: &str);
    }
}

/// Remembers the width the chart is shown at (see [`CHART_WIDTH_COOKIE`]).
fn remember_chart_width(_width: u32) {
    #[cfg(all(not(feature = "ssr"), target_arch = "wasm32"))]
    {
        use leptos::wasm_bindgen::JsCast;
        let cookie = format!("{CHART_WIDTH_COOKIE}={_width}; Path=/; Max-Age=31536000; SameSite=Lax");
        document().unchecked_into::<cookies::CookieDocument>().set_cookie(&cookie);
    }
}

#[component]
pub fn AnalytePage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let lang = use_lang();
    let navigate = use_navigate();
    // The unit system the cumulative table was in when the analyte was opened.
    let units = move || {
        if query.read().get("units").as_deref() == Some("conventional") { UnitSystem::Conventional } else { UnitSystem::Si }
    };
    let patient = move || params.read().get("id").unwrap_or_default();
    let analyte = move || params.read().get("analyte").unwrap_or_default();
    let view = Memo::new(move |_| {
        let query = query.read();
        ChartView::from_query(|key| query.get(key))
    });
    let href = move |change: &dyn Fn(&mut ChartView)| {
        let mut v = view.get();
        change(&mut v);
        format!("/patients/{}/analytes/{}{}", patient(), analyte(), v.query(units()))
    };
    // The width the chart is shown at: unknown on the server (a default is drawn), measured once
    // the page runs in the browser and again when the window is resized.
    // `None` asks for the width this browser last showed a chart at (a cookie, the server's
    // default without it): the chart the page was rendered with is not asked for again when the
    // page measures that same width.
    let width = RwSignal::new(None::<u32>);
    let remembered = remembered_chart_width();
    let frame = NodeRef::<leptos::html::Div>::new();
    let measure = move || {
        if let Some(div) = frame.get_untracked() {
            let w = div.client_width();
            if w > 0 {
                let stepped = (w / WIDTH_STEP * WIDTH_STEP).max(WIDTH_STEP) as u32;
                remember_chart_width(stepped);
                let wanted = (remembered != Some(stepped)).then_some(stepped);
                if width.get_untracked() != wanted {
                    width.set(wanted);
                }
            }
        }
    };
    Effect::new(move |_| measure());
    #[cfg(feature = "hydrate")]
    {
        let handle = window_event_listener(leptos::ev::resize, move |_| measure());
        on_cleanup(move || handle.remove());
    }
    let chart = Resource::new(
        move || (patient(), analyte(), units(), lang.get(), view.get(), width.get()),
        move |(p, a, u, l, v, w)| load_chart(p, a, u, l, Some(v.period), v.from, v.to, v.with, w),
    );
    // This analyte's results and the names of the others, not the whole history.
    let history = Resource::new(move || (patient(), units(), analyte()), |(p, u, a)| load_analyte(p, u, a));
    let viewer = super::use_viewer();
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
    let go = {
        let navigate = navigate.clone();
        move |url: String| navigate(&url, Default::default())
    };
    let go_from = go.clone();
    let go_to = go;
    view! {
        <section class="page">
            <p class="breadcrumb"><a href=move || format!("/patients/{}/results{}", patient(), if units() == UnitSystem::Conventional { "?units=conventional" } else { "" })>{tr(Msg::BackToResults)}</a></p>
            <Suspense fallback=move || view! { <p class="loading">{tr(Msg::Loading)}</p> }>
                {move || Suspend::new(async move {
                    let wanted = analyte();
                    match history.await {
                        Ok(h) => match h.series.into_iter().find(|s| s.analyte == wanted) {
                            Some(series) => {
                                let target = h.targets.iter().find(|t| t.analyte == wanted).cloned();
                                view! {
                                    <super::PatientTitle page=Msg::Results name=h.patient.as_ref().map(super::patient_name)
                                        what=(series.name_fr.clone(), series.name_en.clone())/>
                                    <crate::components::PatientBanner identity=h.patient.clone()/>
                                    <AnalyteHeader series=series.clone()/>
                                    <TargetSection patient=patient() series target units=units()/>
                                }
                                .into_any()
                            }
                            None => view! { <p class="notice" role="alert">{tr(Msg::AnalyteNotFound)}</p> }.into_any(),
                        },
                        Err(error) => view! { <super::LoadError error/> }.into_any(),
                    }
                })}
            </Suspense>
            <h2>{tr(Msg::Trend)}</h2>
            <p class="intro">{tr(Msg::TrendIntro)}</p>
            <nav class="toolbar periods" aria-label=move || Msg::Period.text(lang.get()) data-testid="periods">
                <span class="label">{tr(Msg::Period)}</span>
                {Period::ALL.into_iter().map(|period| {
                    let target = move || href(&move |v: &mut ChartView| { v.period = period; v.from = None; v.to = None; });
                    let current = move || (view.read().period == period && view.read().from.is_none() && view.read().to.is_none()).then_some("page");
                    view! { <a class="period" href=target aria-current=current data-testid=format!("period-{}", period.code())>{tr(period.label())}</a> }
                }).collect_view()}
                // Presets count back from the latest result, not from today: the page says which.
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        let wanted = analyte();
                        let latest = history.await.ok().and_then(|h| {
                            h.series.iter().find(|s| s.analyte == wanted).and_then(|s| s.points.iter().filter_map(|p| p.time).max_by_key(|t| t.epoch_seconds()))
                        });
                        latest.map(|t| {
                            let iso: String = t.to_string().chars().take(10).collect();
                            view! { <span class="muted" data-testid="period-hint">{move || format!("({}, {})", Msg::PeriodHint.text(lang.get()), format_datetime(lang.get(), &iso))}</span> }
                        })
                    })}
                </Suspense>
            </nav>
            <div class="toolbar">
                <label for="zoom-from">{tr(Msg::From)}</label>
                <DateField id="zoom-from" testid="zoom-from" value=std::sync::Arc::new(move || view.read().from.clone().unwrap_or_default())
                    on_change=std::sync::Arc::new(move |d: String| go_from(href(&move |v: &mut ChartView| v.from = Some(d.clone()).filter(|d| !d.is_empty()))))/>
                <label for="zoom-to">{tr(Msg::To)}</label>
                <DateField id="zoom-to" testid="zoom-to" value=std::sync::Arc::new(move || view.read().to.clone().unwrap_or_default())
                    on_change=std::sync::Arc::new(move |d: String| go_to(href(&move |v: &mut ChartView| v.to = Some(d.clone()).filter(|d| !d.is_empty()))))/>
            </div>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let wanted = analyte();
                    history.await.ok().map(|h| {
                        let mut others: Vec<(String, String, String)> = h
                            .series
                            .iter()
                            .filter(|s| s.analyte != wanted)
                            .map(|s| (s.analyte.clone(), s.name_fr.clone(), s.name_en.clone()))
                            .collect();
                        others.sort_by(|a, b| a.1.cmp(&b.1));
                        let ids: Vec<&str> = others.iter().map(|o| o.0.as_str()).collect();
                        let suggestion = partner(&wanted, &ids).and_then(|id| others.iter().find(|o| o.0 == id).cloned());
                        view! { <OverlayChooser others suggestion view units=units() href=href/> }
                    })
                })}
            </Suspense>
            // The chart's points are each a tab stop: a keyboard user may go past them at once (the
            // browser follows the link itself, `external`, and focuses the heading).
            <a class="skip-chart" href="#points-heading" rel="external" data-testid="skip-chart">{tr(Msg::SkipChart)}</a>
            <div class="chart-frame" node_ref=frame>
            <Transition fallback=move || view! { <p class="loading">{tr(Msg::Loading)}</p> }>
                {move || Suspend::new(async move {
                    match chart.await {
                        // The SVG is Bioviewer's own drawing: text from documents is escaped
                        // (see server::chart).
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
            </div>
            // The value of the point under the pointer, focused or touched, in words: a chart's
            // own tooltips only show to a mouse.
            <p class="chart-readout" data-testid="chart-readout" aria-live="polite">
                {move || readout.get()}
            </p>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let wanted = analyte();
                    let viewer = viewer.await;
                    let zone = viewer.as_ref().ok().flatten().map(|v| v.time_zone.clone()).filter(|z| !z.is_empty());
                    let plain = super::results::is_patient(viewer);
                    history.await.ok().and_then(|h| {
                        let documents = DocumentLabels::of(&h);
                        h.series.into_iter().find(|s| s.analyte == wanted).map(|series| {
                            let series = view.read().window(&series).apply(&series);
                            view! { <PointsTable series documents patient=patient() plain zone/> }
                        })
                    })
                })}
            </Suspense>
        </section>
    }
}

/// The second analyte: the usual partner as one link, any other analyte of the patient from a
/// list (a plain GET form, so it works before the page is interactive too).
#[component]
fn OverlayChooser<H>(
    others: Vec<(String, String, String)>,
    suggestion: Option<(String, String, String)>,
    view: Memo<ChartView>,
    units: UnitSystem,
    href: H,
) -> impl IntoView
where
    H: Fn(&dyn Fn(&mut ChartView)) -> String + Copy + Send + Sync + 'static,
{
    let lang = use_lang();
    let navigate = use_navigate();
    let name = move |o: &(String, String, String)| match lang.get() {
        Lang::Fr => o.1.clone(),
        Lang::En => o.2.clone(),
    };
    let current = move || view.read().with.clone();
    let suggestion_link = suggestion.map(|s| {
        let id = s.0.clone();
        let shown = {
            let id = id.clone();
            move || current().as_deref() != Some(id.as_str())
        };
        let target = move || {
            let id = id.clone();
            href(&move |v: &mut ChartView| v.with = Some(id.clone()))
        };
        view! {
            <Show when=shown>
                <a class="button-link" href=target.clone() data-testid="overlay-suggestion">{tr(Msg::ShowWith)} " " {let s = s.clone(); move || name(&s)}</a>
            </Show>
        }
    });
    let options = others
        .iter()
        .map(|o| {
            let id = o.0.clone();
            let selected = {
                let id = id.clone();
                move || current().as_deref() == Some(id.as_str())
            };
            let o = o.clone();
            view! { <option value=id selected=selected>{move || name(&o)}</option> }
        })
        .collect_view();
    view! {
        <div class="toolbar overlay">
            {suggestion_link}
            <form method="get" class="compare">
                {move || {
                    let v = view.get();
                    let conventional = (units == UnitSystem::Conventional).then(|| "conventional".to_string());
                    [("units", conventional), ("period", (v.period != Period::All).then(|| v.period.code().to_string())), ("from", v.from.clone()), ("to", v.to.clone())]
                        .into_iter()
                        .filter_map(|(k, val)| val.map(|val| view! { <input type="hidden" name=k value=val/> }))
                        .collect_view()
                }}
                <label for="compare-with">{tr(Msg::CompareWith)}</label>
                <select id="compare-with" name="with" data-testid="compare-with" on:change=move |ev| {
                    let chosen = event_target_value(&ev);
                    navigate(&href(&move |v: &mut ChartView| v.with = Some(chosen.clone()).filter(|c| is_analyte_id(c))), Default::default());
                }>
                    <option value="" selected=move || current().is_none()>{tr(Msg::CompareNone)}</option>
                    {options}
                </select>
                <noscript><button type="submit">{tr(Msg::CompareApply)}</button></noscript>
            </form>
            <Show when=move || current().is_some()>
                <a href=move || href(&|v: &mut ChartView| v.with = None) data-testid="overlay-remove">{tr(Msg::HideOverlay)}</a>
            </Show>
        </div>
    }
}

/// The patient's treatment target for this analyte: what it is, who set it and when, and for a
/// clinician the form that sets, changes or ends it. Plain form posts (they work before the
/// bundle loads); the server answers back to this page with what was done or what is wrong.
#[component]
fn TargetSection(patient: String, series: Series, target: Option<TreatmentTarget>, units: UnitSystem) -> impl IntoView {
    let lang = use_lang();
    let viewer = super::use_viewer();
    let query = use_query_map();
    let outcome = move || {
        let q = query.read();
        if let Some(code) = q.get("target_error") {
            let msg = match TargetProblem::from_code(&code)? {
                TargetProblem::NoBound => Msg::TargetErrNoBound,
                TargetProblem::NotANumber => Msg::TargetErrNotANumber,
                TargetProblem::Negative => Msg::TargetErrNegative,
                TargetProblem::LowNotBelowHigh => Msg::TargetErrLowNotBelowHigh,
                TargetProblem::NotNumeric => Msg::TargetErrNotNumeric,
                TargetProblem::WrongUnit => Msg::TargetErrWrongUnit,
                TargetProblem::Implausible => Msg::TargetErrImplausible,
            };
            return Some(view! { <p class="notice notice-error" role="alert" data-testid="target-error">{tr(msg)}</p> }.into_any());
        }
        let msg = match q.get("target").as_deref() {
            Some("saved") => Msg::TargetSaved,
            Some("ended") => Msg::TargetEnded,
            _ => return None,
        };
        Some(view! { <p class="notice" role="status" data-testid="target-outcome">{tr(msg)}</p> }.into_any())
    };
    let decimals = series.decimals + 1;
    let unit_code = series.unit.clone().unwrap_or_default();
    let unit = StoredValue::new(series.unit.clone());
    let shown = move |d: &Option<bioviewer_core::cda::Decimal>, lang: Lang| d.as_ref().map(|d| lang.decimal(&d.display(decimals)));
    let current = target.clone();
    let current = move || {
        let lang = lang.get();
        let Some(t) = current.clone() else { return view! { <p data-testid="target-current">{Msg::TargetNone.text(lang)}</p> }.into_any() };
        let range = match (shown(&t.low, lang), shown(&t.high, lang)) {
            (Some(l), Some(h)) => format!("{l} – {h}"),
            (Some(l), None) => format!("≥ {l}"),
            (None, Some(h)) => format!("≤ {h}"),
            (None, None) => String::new(),
        };
        let unit = lang.unit(t.unit.as_deref());
        // Written by the server in the clinician's zone, labelled (never UTC beside local times).
        let when = crate::components::format_instant(lang, &t.set_at);
        view! {
            <p data-testid="target-current">
                {Msg::TargetCurrent.text(lang)} " " <strong>{crate::flags::TARGET_SYMBOL} " " {range} " " {unit}</strong>
                " — " {Msg::TargetSetBy.text(lang)} " " {t.set_by.clone()} " " {Msg::TargetOn.text(lang)} " " {when}
            </p>
            {(!t.applies).then(|| view! { <p class="notice notice-error" role="alert">{Msg::TargetNotApplied.text(lang)}</p> })}
        }
        .into_any()
    };
    let action = format!("/patients/{patient}/targets/{}", series.analyte);
    // The form starts from the current target (when it is in the unit shown).
    let applied = target.filter(|t| t.applies);
    let low = StoredValue::new(applied.as_ref().and_then(|t| t.low.as_ref().map(|d| d.as_str().to_string())));
    let high = StoredValue::new(applied.as_ref().and_then(|t| t.high.as_ref().map(|d| d.as_str().to_string())));
    let has_target = applied.is_some();
    let conventional = (units == UnitSystem::Conventional).then_some("conventional");
    let forms = move || {
        let action = action.clone();
        let unit_code = unit_code.clone();
        Suspend::new(async move {
            let v = viewer.await.ok().flatten().filter(|v| v.role == crate::model::ViewerRole::Professional)?;
            let unit_label = move || {
                let u = lang.get().unit(unit.get_value().as_deref());
                if u.is_empty() { String::new() } else { format!(" ({u})") }
            };
            let end = has_target.then(|| {
                let csrf = v.csrf_token.clone();
                view! {
                    <form method="post" action=action.clone() class="inline">
                        <input type="hidden" name="csrf" value=csrf/>
                        <input type="hidden" name="action" value="end"/>
                        {conventional.map(|c| view! { <input type="hidden" name="units" value=c/> })}
                        <button type="submit" data-testid="target-end">{tr(Msg::TargetEnd)}</button>
                    </form>
                }
            });
            Some(view! {
                <form method="post" action=action.clone() class="target-form" data-testid="target-form">
                    <input type="hidden" name="csrf" value=v.csrf_token.clone()/>
                    <input type="hidden" name="action" value="set"/>
                    <input type="hidden" name="unit" value=unit_code/>
                    {conventional.map(|c| view! { <input type="hidden" name="units" value=c/> })}
                    <label for="target-low">{tr(Msg::TargetLow)} {unit_label}</label>
                    <input id="target-low" name="low" inputmode="decimal" autocomplete="off" size="6" data-testid="target-low"
                        value=move || low.get_value().map(|d| lang.get().decimal(&d)).unwrap_or_default()/>
                    <label for="target-high">{tr(Msg::TargetHigh)} {unit_label}</label>
                    <input id="target-high" name="high" inputmode="decimal" autocomplete="off" size="6" data-testid="target-high"
                        value=move || high.get_value().map(|d| lang.get().decimal(&d)).unwrap_or_default()/>
                    <button type="submit" data-testid="target-save">{tr(Msg::TargetSave)}</button>
                </form>
                {end}
                <p class="muted">{tr(Msg::TargetBoundsHint)}</p>
            })
        })
    };
    view! {
        <section class="target-section" id="target" aria-labelledby="target-heading" data-testid="target-section">
            <h2 id="target-heading">{tr(Msg::TargetHeading)}</h2>
            <p class="intro">{tr(Msg::TargetIntro)}</p>
            {outcome}
            {current}
            <Suspense fallback=|| ()>{forms}</Suspense>
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
/// `plain`: a patient reads it: the laboratory's value and report, without codes or conversion
/// rules.
/// `zone`: the time zone the sampling times are written in (named in the date column's heading).
fn PointsTable(series: Series, documents: DocumentLabels, patient: String, plain: bool, zone: Option<String>) -> impl IntoView {
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
                // Converted bounds are exact; shown at the analyte's precision.
                let reference = crate::table::range_text(p, decimals, lang);
                // A value from an uploaded document says so beside its laboratory.
                let uploaded = p.sources.first().is_some_and(|s| documents.uploaded(&s.document));
                // Every source: what the laboratory wrote, under which code, how it was put in
                // the display unit (or why not), and the report it is in.
                let sources = p
                    .sources
                    .iter()
                    .map(|s| {
                        let how = match (&s.rule, &s.not_converted_reason) {
                            _ if plain => String::new(),
                            (Some(rule), _) => rule_text(rule, lang).to_string(),
                            (None, Some(reason)) => not_converted_text(reason, lang),
                            (None, None) => String::new(),
                        };
                        let previous = if s.previous_result { format!(" · {}", Msg::PreviousResult.text(lang)) } else { String::new() };
                        let value = format!(
                            "{} {}",
                            s.original_value.as_deref().map(|v| lang.decimal(v)).unwrap_or_default(),
                            s.original_unit.as_deref().unwrap_or(""),
                        );
                        let text = if plain {
                            format!("{value}{previous} · ")
                        } else {
                            format!("{value} · {} · {how}{previous} · ", s.code.as_deref().unwrap_or(""))
                        };
                        let href = format!("/patients/{patient}/documents/{}", s.document);
                        view! { <div>{text}<a href=href data-testid="source-document">{documents.label(&s.document, lang)}</a></div> }
                    })
                    .collect_view();
                // Against the treatment target when one is set, the laboratory's flag beside it.
                let flag = crate::flags::judged_label(p, lang);
                let lab_flag = p.target_flag.as_ref().and(p.flag.as_ref()).map(|f| format!("{}{} {}", crate::flags::capitalised(Msg::LabRange.text(lang)), if lang == Lang::Fr { " :" } else { ":" }, flag_label(&f.code, lang)));
                view! {
                    <tr class:derived=p.derived class:critical=p.critical.is_some() data-testid="point-row">
                        <td class="nowrap">{p.time.map(|t| format_datetime(lang, &t.to_string())).unwrap_or_default()}</td>
                        <td class="num">{point_text(p, lang)}</td>
                        <td data-testid="point-flag">{flag}{lab_flag.map(|t| view! { <div class="muted lab-judgement">{t}</div> })}</td>
                        <td class="nowrap">{reference}</td>
                        <td>{p.laboratory.as_deref().unwrap_or("").to_string()}
                            {uploaded.then(|| view! { " " <span class="badge badge-warning" data-testid="point-uploaded">{Msg::UploadedMark.text(lang)}</span> })}</td>
                        <td>{p.method.clone().unwrap_or_default()}</td>
                        <td class="sources">{sources}</td>
                    </tr>
                }
            })
            .collect_view()
    };
    view! {
        <h2 id="points-heading" tabindex="-1">{tr(Msg::Points)} {move || {
            let unit = lang.get().unit(unit.as_deref());
            if unit.is_empty() { String::new() } else { format!(" ({unit})") }
        }}</h2>
        // Scrolls sideways on its own: a wide table must not widen the page (a phone would
        // zoom the whole page out, chart included).
        <div class="points-scroll">
        <table class="data" data-testid="points-table">
            <thead>
                <tr>
                    <th scope="col">{tr(Msg::Date)} {zone.map(|z| view! { " " <span class="muted" data-testid="points-zone">{move || format!("({})", crate::components::zone_label(lang.get(), &z))}</span> })}</th>
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
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bioviewer_core::cda::CdaTime;

    fn series(dates: &[&str]) -> Series {
        let point = |d: &&str| Point { time: Some(CdaTime::parse_hl7(d).unwrap()), in_display_unit: true, ..Default::default() };
        Series {
            analyte: "inr".into(),
            name_fr: "INR".into(),
            name_en: "INR".into(),
            chapter: "haemostasis".into(),
            loinc_seen: Vec::new(),
            unit: None,
            decimals: 1,
            points: dates.iter().map(point).collect(),
            change_not_judged: false,
        }
    }

    fn view(query: &[(&str, &str)]) -> ChartView {
        ChartView::from_query(|k| query.iter().find(|(key, _)| *key == k).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn the_analyte_page_receives_its_analyte_whole_and_the_others_by_name() {
        let inr = series(&["20230105", "20240229"]);
        let other = Series { analyte: "haemoglobin".into(), name_fr: "Hémoglobine".into(), ..series(&["20230105", "20250101"]) };
        let history = History {
            patient: None,
            unit_system: UnitSystem::Si,
            documents: Vec::new(),
            series: vec![other, inr.clone()],
            other_results: Vec::new(),
            problems: vec!["a problem".into()],
            targets: Vec::new(),
        };
        let trimmed = analyte_history(&history, "inr");
        assert_eq!(trimmed.series[1], inr, "every result of the analyte, as the whole history has them");
        assert_eq!(trimmed.series[0].name_fr, "Hémoglobine", "the chooser of a second analyte still names it");
        assert!(trimmed.series[0].points.is_empty(), "but its results stay on the server");
        assert!(analyte_history(&history, "unknown").series.iter().all(|s| s.points.is_empty()));
    }

    #[test]
    fn a_remembered_chart_width_is_a_step_in_a_plausible_range() {
        assert_eq!(chart_width_from_cookies("a=b; bioviewer_chart_width=1240; bioviewer_lang=fr"), Some(1240));
        assert_eq!(chart_width_from_cookies("bioviewer_chart_width=1241"), None, "not a step");
        assert_eq!(chart_width_from_cookies("bioviewer_chart_width=0"), None);
        assert_eq!(chart_width_from_cookies("bioviewer_chart_width=999999"), None);
        assert_eq!(chart_width_from_cookies("bioviewer_chart_width=wide; x=1"), None);
        assert_eq!(chart_width_from_cookies(""), None);
    }

    #[test]
    fn a_period_counts_back_from_the_latest_result_by_calendar_months() {
        let s = series(&["20230105", "20240229", "20250228", "20250331"]);
        let year = view(&[("period", "1y")]).window(&s);
        assert_eq!(year.from, Some((2024, 3, 31)));
        assert_eq!(year.apply(&s).points.len(), 2, "the last year: 28/02/2025 and 31/03/2025");
        // 31 March minus one month is the last day of February.
        assert_eq!(view(&[("period", "1m")]).window(&s).from, Some((2025, 2, 28)));
        assert_eq!(view(&[("period", "5y")]).window(&s).apply(&s).points.len(), 4);
        assert_eq!(view(&[]).window(&s), Window::default(), "all by default");
    }

    #[test]
    fn custom_dates_narrow_the_period_and_undated_results_show_only_without_limits() {
        let mut s = series(&["20240105", "20240610", "20250301"]);
        s.points[1].time = None;
        assert_eq!(Window::default().apply(&s).points.len(), 3);
        let w = view(&[("from", "2024-01-05"), ("to", "2024-12-31")]).window(&s);
        assert_eq!(w.apply(&s).points.len(), 1, "inclusive bounds; the undated result is left out");
        let both = view(&[("period", "5y"), ("from", "2025-01-01")]).window(&s);
        assert_eq!(both.from, Some((2025, 1, 1)), "the later of the two starts");
    }

    #[test]
    fn a_malformed_url_is_ignored_and_never_written_back_into_a_link() {
        let v = view(&[("period", "forever"), ("from", "yesterday"), ("to", "2024-13-45"), ("with", "\"><script>")]);
        assert_eq!(v, ChartView::default());
        let v = view(&[("period", "6m"), ("with", "egfr_ckd_epi_2021"), ("from", "2024-01-01")]);
        assert_eq!(v.query(UnitSystem::Conventional), "?units=conventional&period=6m&from=2024-01-01&with=egfr_ckd_epi_2021");
        assert_eq!(ChartView::default().query(UnitSystem::Si), "");
    }

    #[test]
    fn the_usual_partner_is_offered_when_the_patient_has_it() {
        assert_eq!(partner("creatinine", &["urea", "egfr_mdrd", "egfr_ckd_epi_2021"]), Some("egfr_ckd_epi_2021"));
        assert_eq!(partner("egfr_mdrd", &["creatinine"]), Some("creatinine"));
        assert_eq!(partner("haemoglobin", &["ferritin"]), Some("ferritin"));
        assert_eq!(partner("ferritin", &["haemoglobin"]), Some("haemoglobin"));
        assert_eq!(partner("haemoglobin", &["urea"]), None);
        assert_eq!(partner("tsh", &["ft4"]), None);
    }
}
