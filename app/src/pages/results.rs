//! The cumulative table: analytes as rows grouped by chapter, collection days as columns
//! (newest first, paged), every laboratory in one unit.

use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::api::{load_history, load_previous_visit};
use crate::components::{DocumentLabels, flag_symbol, fold_for_search, format_datetime, point_text};
use crate::i18n::{Lang, Msg, chapter_name, tr, use_lang};
use crate::model::{Direction, History, Point, PointStatus, Series, UnitSystem};
use bioviewer_core::normalise::{DocumentState, OtherResults};

/// Columns shown at once: a decade has hundreds of sampling days; the table pages through them.
const PAGE: usize = 12;

#[component]
pub fn ResultsPage() -> impl IntoView {
    let params = use_params_map();
    // Coming back from an analyte opened in conventional units keeps them.
    let conventional = use_query_map().read_untracked().get("units").as_deref() == Some("conventional");
    let units = RwSignal::new(if conventional { UnitSystem::Conventional } else { UnitSystem::Si });
    let data = Resource::new(move || (params.read().get("id").unwrap_or_default(), units.get()), |(id, units)| load_history(id, units));
    let patient_id = move || params.read().get("id").unwrap_or_default();
    view! {
        <section class="page">
            <p class="breadcrumb"><a href=move || format!("/patients/{}", patient_id())>{tr(Msg::DocumentsLink)}</a></p>
            <h1>{tr(Msg::Results)}</h1>
            <p class="intro">{tr(Msg::ResultsIntro)}</p>
            <div class="toolbar" role="group" aria-label=tr(Msg::Units)>
                <span>{tr(Msg::Units)} ":"</span>
                <button type="button" class="toggle" data-testid="units-si" aria-pressed=move || (units.get() == UnitSystem::Si).to_string()
                    on:click=move |_| units.set(UnitSystem::Si)>{tr(Msg::UnitsSi)}</button>
                <button type="button" class="toggle" data-testid="units-conventional" aria-pressed=move || (units.get() == UnitSystem::Conventional).to_string()
                    on:click=move |_| units.set(UnitSystem::Conventional)>{tr(Msg::UnitsConventional)}</button>
                <a class="export" data-testid="export-csv" rel="nofollow"
                    href=move || format!("/api/patients/{}/history.csv?units={}", patient_id(), if units.get() == UnitSystem::Si { "si" } else { "conventional" })>
                    {tr(Msg::ExportCsv)}
                </a>
                <a class="export-fhir" data-testid="export-fhir" rel="nofollow"
                    href=move || format!("/api/patients/{}/history.fhir.json?units={}", patient_id(), if units.get() == UnitSystem::Si { "si" } else { "conventional" })>
                    {tr(Msg::ExportFhir)}
                </a>
            </div>
            <Transition fallback=move || view! { <p class="loading">{tr(Msg::Loading)}</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok(history) => view! { <crate::components::PatientBanner identity=history.patient.clone()/> <ResultsTable units=history.unit_system history patient=patient_id()/> }.into_any(),
                        Err(error) => view! { <super::LoadError error/> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

/// A column: one collection day.
#[derive(Clone, PartialEq)]
struct Column {
    day: String,
    laboratories: Vec<String>,
}

fn day_of(p: &Point) -> Option<String> {
    p.time.map(|t| t.date_string())
}

fn is_abnormal(p: &Point) -> bool {
    // Against the treatment target when one is set; critical values always.
    p.is_abnormal()
}

#[component]
fn ResultsTable(history: History, patient: String, units: UnitSystem) -> impl IntoView {
    let lang = use_lang();
    let patient = StoredValue::new(patient);
    let quality = DataQualityCounts::of(&history);
    let others = history.other_results.clone();
    let documents = StoredValue::new(DocumentLabels::of(&history));
    let series = StoredValue::new(history.series);
    let laboratories: Vec<String> = {
        let mut labs: Vec<String> =
            series.with_value(|s| s.iter().flat_map(|s| &s.points).filter_map(|p| p.laboratory.as_deref().map(str::to_string)).collect());
        labs.sort();
        labs.dedup();
        labs
    };
    let laboratory = RwSignal::new(String::new());
    let date_from = RwSignal::new(String::new());
    let date_to = RwSignal::new(String::new());
    // "Since last visit": columns after this date are highlighted as new.
    let since = RwSignal::new(String::new());
    let previous_visit = Resource::new(move || patient.get_value(), load_previous_visit);
    let print_header = history
        .patient
        .as_ref()
        .map(|p| format!("{} {} — INS {}", p.family_name.clone().unwrap_or_default(), p.given_name.clone().unwrap_or_default(), p.ins));
    let chapters: Vec<String> = {
        let mut c: Vec<String> = series.with_value(|s| s.iter().map(|s| s.chapter.clone()).collect());
        c.dedup();
        c
    };
    let chapter = RwSignal::new(String::new());
    let search = RwSignal::new(String::new());
    let abnormal_only = RwSignal::new(false);
    let page = RwSignal::new(0usize);

    // The rows shown, after filters.
    let visible = Memo::new(move |_| {
        let needle = fold_for_search(search.get().trim());
        let chapter = chapter.get();
        let abnormal = abnormal_only.get();
        let lab = laboratory.get();
        let (from, to) = (date_from.get(), date_to.get());
        // Points outside the laboratory or the dates chosen are left out; rows left empty go.
        let keep = |p: &Point| {
            (lab.is_empty() || p.laboratory.as_deref() == Some(lab.as_str()))
                && day_of(p).is_some_and(|d| (from.is_empty() || d >= from) && (to.is_empty() || d <= to))
        };
        series.with_value(|all| {
            all.iter()
                .filter(|s| chapter.is_empty() || s.chapter == chapter)
                .filter(|s| {
                    needle.is_empty() || fold_for_search(&s.name_fr).contains(&needle) || fold_for_search(&s.name_en).contains(&needle)
                })
                .map(|s| Series { points: s.points.iter().filter(|p| keep(p)).cloned().collect(), ..s.clone() })
                .filter(|s| !s.points.is_empty())
                .filter(|s| !abnormal || s.points.iter().any(is_abnormal))
                .collect::<Vec<Series>>()
        })
    });
    // Every collection day of the rows shown, newest first, with its laboratories.
    let columns = Memo::new(move |_| {
        let mut days: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> = Default::default();
        for s in visible.get().iter() {
            for p in &s.points {
                if let Some(day) = day_of(p) {
                    let labs = days.entry(day).or_default();
                    if let Some(l) = &p.laboratory {
                        labs.insert(l.to_string());
                    }
                }
            }
        }
        days.into_iter().rev().map(|(day, labs)| Column { day, laboratories: labs.into_iter().collect() }).collect::<Vec<_>>()
    });
    let page_columns = Memo::new(move |_| {
        let all = columns.get();
        let start = (page.get() * PAGE).min(all.len().saturating_sub(1));
        all.iter().skip(start).take(PAGE).cloned().collect::<Vec<_>>()
    });
    let pages = move || columns.with(|c| c.len().div_ceil(PAGE)).max(1);

    view! {
        <div class="toolbar filters">
            <label for="chapter-filter">{tr(Msg::Chapter)}</label>
            <select id="chapter-filter" data-testid="chapter-filter" on:change=move |ev| { chapter.set(event_target_value(&ev)); page.set(0); }>
                <option value="">{tr(Msg::AllChapters)}</option>
                {chapters.into_iter().map(|c| {
                    let value = c.clone();
                    view! { <option value=value>{move || chapter_name(&c, lang.get())}</option> }
                }).collect_view()}
            </select>
            <label for="analyte-search">{tr(Msg::SearchAnalyte)}</label>
            <input id="analyte-search" type="search" data-testid="analyte-search"
                on:input=move |ev| { search.set(event_target_value(&ev)); page.set(0); }/>
            <label for="lab-filter">{tr(Msg::Laboratory)}</label>
            <select id="lab-filter" data-testid="lab-filter" on:change=move |ev| { laboratory.set(event_target_value(&ev)); page.set(0); }>
                <option value="">{tr(Msg::AllLaboratories)}</option>
                {laboratories.into_iter().map(|l| view! { <option value=l.clone()>{l.clone()}</option> }).collect_view()}
            </select>
            <label for="date-from">{tr(Msg::From)}</label>
            <input id="date-from" type="date" data-testid="date-from" on:change=move |ev| { date_from.set(event_target_value(&ev)); page.set(0); }/>
            <label for="date-to">{tr(Msg::To)}</label>
            <input id="date-to" type="date" data-testid="date-to" on:change=move |ev| { date_to.set(event_target_value(&ev)); page.set(0); }/>
            <label for="since">{tr(Msg::SinceLastVisit)}</label>
            <input id="since" type="date" data-testid="since" prop:value=move || since.get() on:change=move |ev| since.set(event_target_value(&ev))/>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    // The date of this user's previous visit, one click away.
                    previous_visit.await.ok().flatten().and_then(|at| at.get(..10).map(str::to_string)).map(|day| {
                        let label = day.clone();
                        view! {
                            <button type="button" class="toggle" data-testid="since-previous-visit" on:click=move |_| since.set(day.clone())>
                                {move || format!("{} ({})", Msg::PreviousVisit.text(lang.get()), format_datetime(lang.get(), &label))}
                            </button>
                        }
                    })
                })}
            </Suspense>
            <label class="check">
                <input type="checkbox" data-testid="abnormal-only" on:change=move |ev| { abnormal_only.set(event_target_checked(&ev)); page.set(0); }/>
                {tr(Msg::AbnormalOnly)}
            </label>
            <span class="pager">
                <button type="button" data-testid="older" disabled=move || { page.get() + 1 >= pages() } on:click=move |_| page.update(|p| *p += 1)>{tr(Msg::Older)}</button>
                <span class="count">{move || page.get() + 1} " / " {pages}</span>
                <button type="button" data-testid="newer" disabled=move || page.get() == 0 on:click=move |_| page.update(|p| *p = p.saturating_sub(1))>{tr(Msg::Newer)}</button>
            </span>
        </div>
        <p class="print-only print-header">
            <strong>{tr(Msg::PrintedFor)} ": "</strong>{print_header.unwrap_or_default()}
            " — " <strong>{tr(Msg::Period)} ": "</strong>
            {move || {
                let cols = page_columns.get();
                let l = lang.get();
                match (cols.last(), cols.first()) {
                    (Some(a), Some(b)) => format!("{} – {}", format_datetime(l, &a.day), format_datetime(l, &b.day)),
                    _ => String::new(),
                }
            }}
        </p>
        <Show when=move || !visible.with(Vec::is_empty) fallback=|| view! { <p class="notice">{tr(Msg::NoResults)}</p> }>
            <div class="table-scroll">
                <table class="data cumulative" data-testid="cumulative-table">
                    <thead>
                        <tr>
                            <th scope="col" class="sticky-col">{tr(Msg::Analyte)}</th>
                            <th scope="col">{tr(Msg::Unit)}</th>
                            <For each=move || page_columns.get() key=|c| c.day.clone() let:column>
                                <th scope="col" class="day" class:new={ let day = column.day.clone(); move || { let s = since.get(); !s.is_empty() && day > s } }>
                                    <span class="date">{ let day = column.day.clone(); move || format_datetime(lang.get(), &day) }</span>
                                    <span class="labs">{column.laboratories.join(", ")}</span>
                                    <span class="new-mark">{tr(Msg::NewMark)}</span>
                                </th>
                            </For>
                        </tr>
                    </thead>
                    <tbody on:keydown=move_between_cells>
                        {move || {
                            let cols = page_columns.get();
                            let lang_now = lang.get();
                            let since_now = since.get();
                            let mut current_chapter = String::new();
                            let mut rows = Vec::new();
                            for s in visible.get() {
                                if s.chapter != current_chapter {
                                    current_chapter = s.chapter.clone();
                                    rows.push(view! {
                                        <tr class="chapter-row"><th scope="rowgroup" colspan=(cols.len() + 2).to_string()>{chapter_name(&s.chapter, lang_now)}</th></tr>
                                    }.into_any());
                                }
                                rows.push(view! { <SeriesRow series=s columns=cols.clone() lang=lang_now patient=patient.get_value() since=since_now.clone() documents units/> }.into_any());
                            }
                            rows
                        }}
                    </tbody>
                </table>
            </div>
        </Show>
        <OtherResultsLane others/>
        <DataQualityPanel counts=quality/>
    }
}

/// Arrow keys move the focus from value to value through the cumulative table (Tab still goes
/// through every value in reading order): left and right along the analyte's row, up and down
/// through the same day's column, skipping days without a result and chapter headings.
fn move_between_cells(ev: leptos::ev::KeyboardEvent) {
    use leptos::wasm_bindgen::JsCast;
    use leptos::web_sys::{Element, HtmlElement};
    let (dx, dy): (i32, i32) = match ev.key().as_str() {
        "ArrowLeft" => (-1, 0),
        "ArrowRight" => (1, 0),
        "ArrowUp" => (0, -1),
        "ArrowDown" => (0, 1),
        _ => return,
    };
    let Some(cell) = ev.target().and_then(|t| t.dyn_into::<Element>().ok()).and_then(|e| e.closest("td.result").ok().flatten()) else {
        return;
    };
    let Some(row) = cell.parent_element() else { return };
    let cells = row.children();
    let Some(column) = (0..cells.length()).find(|&i| cells.item(i).as_ref() == Some(&cell)) else { return };
    let focusable = |e: &Element| e.class_list().contains("result");
    let target = if dx != 0 {
        let mut i = column as i32 + dx;
        let mut found = None;
        while let Some(candidate) = (i >= 0).then(|| cells.item(i as u32)).flatten() {
            if focusable(&candidate) {
                found = Some(candidate);
                break;
            }
            i += dx;
        }
        found
    } else {
        let step = |r: &Element| if dy < 0 { r.previous_element_sibling() } else { r.next_element_sibling() };
        let mut next_row = step(&row);
        let mut found = None;
        while let Some(r) = next_row {
            if let Some(candidate) = r.children().item(column).filter(|c| focusable(c) && !r.class_list().contains("chapter-row")) {
                found = Some(candidate);
                break;
            }
            next_row = step(&r);
        }
        found
    };
    if let Some(target) = target.and_then(|t| t.dyn_into::<HtmlElement>().ok()) {
        ev.prevent_default();
        let _ = target.focus();
    }
}

/// Counts for the data-quality panel.
#[derive(Clone, Copy, Default)]
struct DataQualityCounts {
    unmapped_codes: usize,
    unmapped_results: usize,
    not_converted: usize,
    unreadable: usize,
    rejected: usize,
    replaced: usize,
}

impl DataQualityCounts {
    fn of(history: &History) -> DataQualityCounts {
        let docs = |state: DocumentState| history.documents.iter().filter(|d| d.status == state).count();
        DataQualityCounts {
            unmapped_codes: history.other_results.len(),
            unmapped_results: history.other_results.iter().map(|o| o.points.len()).sum(),
            not_converted: history
                .series
                .iter()
                .flat_map(|s| &s.points)
                .filter(|p| p.status == PointStatus::Completed && p.value.is_some() && !p.in_display_unit)
                .count(),
            unreadable: docs(DocumentState::Unreadable),
            rejected: docs(DocumentState::Rejected),
            replaced: docs(DocumentState::Replaced),
        }
    }
}

#[component]
fn DataQualityPanel(counts: DataQualityCounts) -> impl IntoView {
    let row = |msg: Msg, n: usize, testid: &'static str| {
        let class = if n > 0 { "problem" } else { "" };
        view! { <tr class=class><th scope="row">{tr(msg)}</th><td class="num" data-testid=testid>{n}</td></tr> }
    };
    view! {
        <section class="quality" aria-labelledby="quality-heading">
            <h2 id="quality-heading">{tr(Msg::DataQuality)}</h2>
            <p class="intro">{tr(Msg::DataQualityIntro)}</p>
            <table class="data compact">
                <tbody>
                    {row(Msg::UnmappedCodes, counts.unmapped_codes, "quality-unmapped")}
                    {row(Msg::UnmappedResults, counts.unmapped_results, "quality-unmapped-results")}
                    {row(Msg::NotConverted, counts.not_converted, "quality-not-converted")}
                    {row(Msg::UnreadableDocuments, counts.unreadable, "quality-unreadable")}
                    {row(Msg::RejectedDocuments, counts.rejected, "quality-rejected")}
                    {row(Msg::ReplacedDocuments, counts.replaced, "quality-replaced")}
                </tbody>
            </table>
        </section>
    }
}

/// Results whose code maps to no analyte: listed with their values, never dropped.
#[component]
fn OtherResultsLane(others: Vec<OtherResults>) -> impl IntoView {
    let lang = use_lang();
    (!others.is_empty()).then(|| {
        let rows = move || {
            let lang = lang.get();
            others
                .iter()
                .map(|o| {
                    let latest = o.points.last().map(|p| {
                        let value = match (&p.display, p.unit.as_deref()) {
                            (Some(_), Some(unit)) => format!("{} {unit}", point_text(p, lang)),
                            _ => point_text(p, lang),
                        };
                        let when = p.time.map(|t| format_datetime(lang, &t.date_string())).unwrap_or_default();
                        format!("{value} ({when})")
                    });
                    view! {
                        <tr>
                            <th scope="row">{o.label.clone().unwrap_or_default()}</th>
                            <td class="mono">{o.code.clone().unwrap_or_default()}</td>
                            <td>{o.laboratory.clone().unwrap_or_default()}</td>
                            <td class="num">{o.points.len()}</td>
                            <td>{latest.unwrap_or_default()}</td>
                        </tr>
                    }
                })
                .collect_view()
        };
        view! {
            <section class="other-results" aria-labelledby="other-heading">
                <h2 id="other-heading">{tr(Msg::OtherResults)}</h2>
                <table class="data" data-testid="other-results">
                    <thead><tr>
                        <th scope="col">{tr(Msg::Analyte)}</th>
                        <th scope="col">"Code"</th>
                        <th scope="col">{tr(Msg::Laboratory)}</th>
                        <th scope="col" class="num">{tr(Msg::Count)}</th>
                        <th scope="col">{tr(Msg::Latest)}</th>
                    </tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </section>
        }
    })
}

#[component]
fn SeriesRow(
    series: Series,
    columns: Vec<Column>,
    lang: Lang,
    patient: String,
    since: String,
    documents: StoredValue<DocumentLabels>,
    units: UnitSystem,
) -> impl IntoView {
    let href = format!(
        "/patients/{patient}/analytes/{}{}",
        series.analyte,
        if units == UnitSystem::Conventional { "?units=conventional" } else { "" }
    );
    let name = match lang {
        Lang::Fr => series.name_fr.clone(),
        Lang::En => series.name_en.clone(),
    };
    let cells = columns
        .iter()
        .map(|c| {
            let mut points: Vec<&Point> = series.points.iter().filter(|p| day_of(p).as_deref() == Some(c.day.as_str())).collect();
            // Several results the same day: the cell shows the day's latest abnormal one, else its
            // latest, so that an abnormal value is never the one behind "+n"; the others are
            // listed in the cell's tip.
            let Some(shown) = points.iter().rposition(|p| is_abnormal(p)).or(points.len().checked_sub(1)) else {
                return view! { <td class="empty"></td> }.into_any();
            };
            let point = points.remove(shown).clone();
            let others: Vec<Point> = points.into_iter().cloned().collect();
            let new = !since.is_empty() && c.day > since;
            let decimals = series.decimals;
            view! { <ResultCell point others lang new documents decimals/> }.into_any()
        })
        .collect_view();
    view! {
        <tr>
            <th scope="row" class="sticky-col"><a href=href>{name}</a></th>
            <td class="unit">{lang.unit(series.unit.as_deref())}</td>
            {cells}
        </tr>
    }
}

#[component]
fn ResultCell(
    point: Point,
    others: Vec<Point>,
    lang: Lang,
    new: bool,
    documents: StoredValue<DocumentLabels>,
    decimals: usize,
) -> impl IntoView {
    let more = others.len();
    let decimal = |s: &str| lang.decimal(s);
    let value = point_text(&point, lang);
    // The flag against the patient's treatment target when one is set (the laboratory's range
    // and flag then go in the tip), else the laboratory's; the critical marker apart.
    let (symbol, class, _) = point.shown_flag().map(|f| flag_symbol(&f.code)).unwrap_or(("", "", Msg::Abnormal));
    let judged = crate::flags::judged_label(&point, lang);
    let laboratory = crate::flags::laboratory_judgement(&point, decimals, lang);
    // Marked when the value shown is not in the unit the laboratory wrote (or could not be put
    // in the display unit); a result not performed has no value to mark.
    // A value Bioviewer computed (an eGFR) was not converted from anything: it is computed.
    let converted =
        !point.derived && point.status == PointStatus::Completed && (point.sources.iter().any(|s| s.converted) || !point.in_display_unit);
    // Where the value comes from, source by source: what the laboratory wrote, in its unit, under
    // its code, in which report. Shown on hover, focus and touch (the cell takes focus).
    let detail = documents.with_value(|documents| {
        point
            .sources
            .iter()
            .map(|s| {
                format!(
                    "{}{} {} {} — {} — {} {} — {}",
                    // A computed value's source is the creatinine it was computed from.
                    if point.derived { Msg::ComputedFromCreatinine.text(lang) } else { Msg::OriginalValue.text(lang) },
                    if lang == Lang::Fr { " :" } else { ":" },
                    s.original_value.as_deref().map(&decimal).unwrap_or_default(),
                    s.original_unit.as_deref().unwrap_or(""),
                    point.laboratory.as_deref().unwrap_or(""),
                    Msg::CodeLabel.text(lang),
                    s.code.as_deref().unwrap_or("?"),
                    documents.label(&s.document, lang),
                )
            })
            // The day's other results, which the cell does not show.
            .chain(laboratory.clone())
            .chain(others.iter().map(|o| {
                let flag = o.shown_flag().map(|_| format!(" ({})", crate::flags::judged_label(o, lang))).unwrap_or_default();
                format!(
                    "{}{} {} {}{flag} — {}",
                    Msg::SameDayResult.text(lang),
                    if lang == Lang::Fr { " :" } else { ":" },
                    point_text(o, lang),
                    lang.unit(o.unit.as_deref()),
                    o.laboratory.as_deref().unwrap_or(""),
                )
            }))
            .collect::<Vec<_>>()
            .join("\n")
    });
    let change = point.significant_change.map(|d| match d {
        Direction::Up => ("▲", Msg::SignificantRise),
        Direction::Down => ("▼", Msg::SignificantFall),
    });
    let mut label = value.clone();
    if !judged.is_empty() && (!symbol.is_empty() || point.critical.is_some() || point.target_flag.is_some()) {
        label.push_str(&format!(" ({judged})"));
    }
    if let Some((_, msg)) = change {
        label.push_str(&format!(", {}", msg.text(lang)));
    }
    if converted || more > 0 || laboratory.is_some() {
        label.push_str(&format!(". {}", detail));
    }
    // New since the chosen visit; new and significantly changed stands out most.
    let novelty = match (new, point.significant_change.is_some()) {
        (true, true) => " new changed",
        (true, false) => " new",
        _ => "",
    };
    let classes = format!(
        "result {class}{}{}{}{}{novelty}",
        if converted { " converted" } else { "" },
        if point.derived { " derived" } else { "" },
        if point.critical.is_some() { " critical" } else { "" },
        if point.target_flag.is_some() { " target" } else { "" },
    );
    view! {
        <td class=classes tabindex="0" aria-label=label data-testid="result-cell">
            {value}
            {(!detail.is_empty()).then(|| view! { <span class="origin-tip" role="tooltip" data-testid="origin-tip">{detail.clone()}</span> })}
            {(!symbol.is_empty()).then(|| view! { <span class="flag" aria-hidden="true">{symbol}</span> })}
            {point.critical.map(|_| view! { <span class="critical-mark" aria-hidden="true" title=judged.clone() data-testid="critical-mark">{crate::flags::CRITICAL_SYMBOL}</span> })}
            {point.target_flag.as_ref().map(|_| view! { <span class="target-mark" aria-hidden="true" title=judged.clone()>{crate::flags::TARGET_SYMBOL}</span> })}
            {change.map(|(s, _)| view! { <span class="change" aria-hidden="true">{s}</span> })}
            {converted.then(|| view! { <span class="conv-mark" aria-hidden="true" title=Msg::ConvertedMark.text(lang)>"*"</span> })}
            {(more > 0).then(|| view! { <span class="more">{format!(" +{more}")}</span> })}
        </td>
    }
}
