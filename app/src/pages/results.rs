//! The cumulative table: analytes as rows grouped by chapter, collection days as columns
//! (newest first, paged), every laboratory in one unit.

use std::sync::Arc;

use leptos::prelude::*;
use leptos_router::NavigateOptions;
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};

use crate::api::{load_previous_visit, load_table, server_time};
use crate::components::{DateField, DocumentLabels, flag_label, flag_symbol, format_datetime, point_text};
use crate::i18n::{Lang, Msg, chapter_name, tr, use_lang};
use crate::model::{Direction, PatientIdentity, Point, PointStatus, UnitSystem};
use crate::table::{Column, DataQualityCounts, OtherRow, RowRange, SliceRow, TableSlice, TableView, is_abnormal, range_text, row_range};

use super::Period;

/// Columns per block in the print view: what fits an A4 landscape page beside the analyte names.
const PRINT_COLUMNS: usize = 7;

#[component]
pub fn ResultsPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    // Everything the table shows is in the URL: Back, reload and a unit switch keep it.
    let view = Memo::new(move |_| {
        let query = query.read();
        TableView::from_query(|key| query.get(key))
    });
    let print = Memo::new(move |_| query.read().get("print").as_deref() == Some("1"));
    let units = Memo::new(move |_| view.read().units);
    let patient_id = move || params.read().get("id").unwrap_or_default();
    // The page receives what it shows (one page of columns; the print view every column of the
    // period), not the whole history. Filters and pages then fetch their slice in place
    // (ResultsTable); another unit system or the print view loads the page's data again.
    let data =
        Resource::new(move || (patient_id(), units.get(), print.get()), move |(id, _, print)| load_table(id, view.get_untracked(), print));
    let viewer = super::use_viewer();
    let clock = Resource::new(|| (), |_| server_time());
    let href = move |change: &dyn Fn(&mut TableView)| {
        let mut v = view.get();
        change(&mut v);
        format!("/patients/{}/results{}", patient_id(), v.query())
    };
    let export = move |what: &str| format!("/api/patients/{}/history.{what}{}", patient_id(), view.read().export_query());
    let print_href = move || {
        let q = view.read().query();
        format!("/patients/{}/results{}print=1", patient_id(), if q.is_empty() { "?".to_string() } else { format!("{q}&") })
    };
    let unit_link = move |system: UnitSystem, msg: Msg, testid: &'static str| {
        view! {
            <a class="toggle clinician-only" data-testid=testid href=move || href(&move |v: &mut TableView| v.units = system)
                aria-current=move || (units.get() == system).then_some("true")>{tr(msg)}</a>
        }
    };
    view! {
        <section class="page" class:print-view=print>
            <p class="breadcrumb">
                <a href=move || format!("/patients/{}", patient_id())>{tr(Msg::DocumentsLink)}</a>
                " · "
                <a href=move || format!("/patients/{}/summary", patient_id()) data-testid="to-summary">{tr(Msg::ResultsOfSummary)}</a>
            </p>
            <h1>{tr(Msg::Results)}</h1>
            <Show when=move || !print.get() fallback=move || view! {
                <div class="toolbar print-toolbar">
                    <p class="intro">{tr(Msg::PrintViewIntro)}</p>
                    <a data-testid="back-to-table" href=move || href(&|_: &mut TableView| {})>{tr(Msg::BackToTable)}</a>
                    <PrintButton/>
                </div>
            }>
                <p class="intro">{tr(Msg::ResultsIntro)}</p>
                <div class="toolbar" role="group" aria-label=tr(Msg::Units)>
                    // Unit systems are a clinician's choice: a patient reads the laboratory's units
                    // (hidden by the stylesheet once the table below marks the page as hers).
                    <span class="clinician-only">{tr(Msg::Units)} ":"</span>
                    {unit_link(UnitSystem::Si, Msg::UnitsSi, "units-si")}
                    {unit_link(UnitSystem::Conventional, Msg::UnitsConventional, "units-conventional")}
                    <a class="export" data-testid="export-csv" rel="nofollow" href=move || export("csv")>{tr(Msg::ExportCsv)}</a>
                    <a class="export-fhir clinician-only" data-testid="export-fhir" rel="nofollow" href=move || export("fhir.json")>{tr(Msg::ExportFhir)}</a>
                    <a class="print-link" data-testid="print-period" href=print_href>{tr(Msg::PrintPeriod)}</a>
                </div>
                <nav class="toolbar periods" aria-label=tr(Msg::Period) data-testid="periods">
                    <span class="label">{tr(Msg::Period)}</span>
                    {Period::ALL.into_iter().map(|period| {
                        let target = move || href(&move |v: &mut TableView| { v.period = period; v.from = None; v.to = None; v.page = 0; });
                        let current = move || (view.read().period == period && view.read().from.is_none() && view.read().to.is_none()).then_some("page");
                        view! { <a class="period" href=target aria-current=current data-testid=format!("period-{}", period.code())>{tr(period.label())}</a> }
                    }).collect_view()}
                </nav>
            </Show>
            <Transition fallback=move || view! { <p class="loading">{tr(Msg::Loading)}</p> }>
                {move || {
                    // Switching between the table and its print view redraws it.
                    let print = print.get();
                    Suspend::new(async move {
                    match data.await {
                        Ok(slice) => {
                            // The print view says who printed it, and when (the server's clock).
                            let printed = if print {
                                let who = viewer.await.ok().flatten().map(|v| v.name).unwrap_or_default();
                                let at = clock.await.unwrap_or_default();
                                Some((who, at))
                            } else {
                                None
                            };
                            let plain = is_patient(viewer.await);
                            view! {
                                <super::PatientTitle page=Msg::Results name=slice.patient.as_ref().map(super::patient_name)/>
                                <crate::components::PatientBanner identity=slice.patient.clone()/>
                                <ResultsTable slice patient=patient_id() view print printed plain/>
                            }.into_any()
                        }
                        Err(error) => view! { <super::LoadError error/> }.into_any(),
                    }
                })}}
            </Transition>
        </section>
    }
}

/// Opens the browser's print dialog (the print view prints as it is shown).
#[component]
fn PrintButton() -> impl IntoView {
    view! {
        <button type="button" class="toggle" data-testid="print-now" on:click=move |_| {
            let _ = window().print();
        }>{tr(Msg::PrintNow)}</button>
    }
}

fn day_of(p: &Point) -> Option<String> {
    p.time.map(|t| t.date_string())
}

/// A colon as each language writes it before a value.
fn colon(lang: Lang) -> &'static str {
    if lang == Lang::Fr { " : " } else { ": " }
}

/// "Patient: NAME Given — date of birth … — INS …", on every printed page.
fn identity_line(identity: Option<&PatientIdentity>, lang: Lang) -> String {
    identity
        .map(|p| {
            let name = format!("{} {}", p.family_name.clone().unwrap_or_default(), p.given_name.clone().unwrap_or_default());
            let birth = p
                .birth_date
                .map(|b| format!(" — {} {}", Msg::BirthDate.text(lang), format_datetime(lang, &b.to_string())))
                .unwrap_or_default();
            format!("{}{}{}{birth} — INS {}", Msg::PrintedFor.text(lang), colon(lang), name.trim(), p.ins)
        })
        .unwrap_or_default()
}

/// The filters a view applies, in words (`anormaux seulement, chapitre Biochimie, ...`); empty
/// when it shows everything of its period.
fn filter_words(v: &TableView, lang: Lang) -> String {
    let mut words = Vec::new();
    if v.abnormal {
        words.push(Msg::AbnormalOnly.text(lang).to_string());
    }
    if let Some(chapter) = &v.chapter {
        words.push(format!("{} {}", Msg::Chapter.text(lang), chapter_name(chapter, lang)));
    }
    if let Some(lab) = &v.laboratory {
        words.push(format!("{} {lab}", Msg::Laboratory.text(lang)));
    }
    if let Some(search) = &v.search {
        words.push(format!("« {search} »"));
    }
    words.join(", ")
}

/// Whether the signed-in user is a patient reading their own results: plainer pages, without
/// the clinician's codes, unit systems and data-quality counts.
pub(crate) fn is_patient(viewer: Result<Option<crate::model::Viewer>, crate::api::AppError>) -> bool {
    matches!(viewer, Ok(Some(v)) if v.role == crate::model::ViewerRole::Patient)
}

#[component]
fn ResultsTable(
    slice: TableSlice,
    patient: String,
    view: Memo<TableView>,
    print: bool,
    printed: Option<(String, String)>,
    plain: bool,
) -> impl IntoView {
    let lang = use_lang();
    let navigate = use_navigate();
    let patient = StoredValue::new(patient);
    let units = slice.unit_system;
    let quality = slice.quality;
    let identity = StoredValue::new(slice.patient.clone());
    let laboratories = slice.laboratories.clone();
    let chapters = slice.chapters.clone();
    // The slice shown. A new view (a filter, another page of columns: the URL changed, Back and
    // reload keep it) fetches its own slice in place; the table keeps what it shows until the
    // answer arrives, and a late answer to an older view is dropped.
    let current = RwSignal::new(slice);
    let failed = RwSignal::new(None::<crate::api::AppError>);
    // A slice is on its way: the table says it is being updated (`aria-busy`).
    let loading = RwSignal::new(false);
    let asked = StoredValue::new(0_u64);
    if !print {
        Effect::new(move |_| {
            let wanted = view.get().checked();
            let shown = current.with_untracked(|s| (s.view.clone(), s.pages));
            // Another unit system reloads the whole page (ResultsPage); the same view (its page
            // beyond the oldest read as the oldest) has nothing to fetch, as after hydration.
            if wanted.units != units || (TableView { page: wanted.page.min(shown.1 - 1), ..wanted.clone() }) == shown.0 {
                return;
            }
            asked.update_value(|n| *n += 1);
            let ticket = asked.get_value();
            let id = patient.get_value();
            loading.set(true);
            leptos::task::spawn_local(async move {
                let answer = load_table(id, wanted, false).await;
                if asked.try_get_value() != Some(ticket) {
                    return;
                }
                loading.try_set(false);
                match answer {
                    Ok(slice) => {
                        failed.try_set(None);
                        current.try_set(slice);
                    }
                    Err(error) => {
                        failed.try_set(Some(error));
                    }
                }
            });
        });
    }
    // "Since last visit": columns after this date are highlighted as new.
    let since = RwSignal::new(String::new());
    let previous_visit = Resource::new(move || patient.get_value(), load_previous_visit);
    // The rows shown, after filters (the exports filter the same way), and their columns.
    let visible = Memo::new(move |_| current.with(|s| s.rows.clone()));
    let other_rows = Memo::new(move |_| current.with(|s| s.others.clone()));
    let columns = Memo::new(move |_| current.with(|s| s.columns.clone()));
    let pages = move || current.with(|s| s.pages);
    let page = move || current.with(|s| s.page);
    let page_columns = columns;
    let href = move |change: &dyn Fn(&mut TableView)| {
        let mut v = view.get();
        change(&mut v);
        format!("/patients/{}/results{}", patient.get_value(), v.query())
    };
    // A filter changed: the new view goes in the history (Back undoes it); typing replaces it.
    let go = move |change: &dyn Fn(&mut TableView), replace: bool| {
        let mut v = view.get_untracked();
        change(&mut v);
        v.page = 0;
        navigate(
            &format!("/patients/{}/results{}", patient.get_value(), v.query()),
            NavigateOptions { replace, scroll: false, ..Default::default() },
        );
    };
    let (go_chapter, go_search, go_lab, go_from, go_to, go_abnormal) = (go.clone(), go.clone(), go.clone(), go.clone(), go.clone(), go);
    let period_text = move |cols: &[Column], lang: Lang| match (cols.last(), cols.first()) {
        (Some(a), Some(b)) => format!("{} – {}", format_datetime(lang, &a.day), format_datetime(lang, &b.day)),
        _ => String::new(),
    };
    let printed_text = move |lang: Lang| {
        printed.as_ref().map(|(who, at)| {
            format!("{} {who} {} {}", Msg::PrintedBy.text(lang), Msg::PrintedAt.text(lang), crate::components::format_instant(lang, at))
        })
    };
    let printed_text = StoredValue::new(printed_text);

    let filters = (!print).then(|| view! {
        <div class="toolbar filters">
            <label for="chapter-filter">{tr(Msg::Chapter)}</label>
            <select id="chapter-filter" data-testid="chapter-filter" on:change=move |ev| {
                let c = event_target_value(&ev);
                go_chapter(&move |v: &mut TableView| v.chapter = Some(c.clone()).filter(|c| !c.is_empty()), false);
            }>
                <option value="" selected=move || view.read().chapter.is_none()>{tr(Msg::AllChapters)}</option>
                {chapters.into_iter().map(|c| {
                    let value = c.clone();
                    let selected = { let c = c.clone(); move || view.read().chapter.as_deref() == Some(c.as_str()) };
                    view! { <option value=value selected=selected>{move || chapter_name(&c, lang.get())}</option> }
                }).collect_view()}
            </select>
            <label for="analyte-search">{tr(Msg::SearchAnalyte)}</label>
            <input id="analyte-search" type="search" data-testid="analyte-search" prop:value=move || view.read().search.clone().unwrap_or_default()
                on:input=move |ev| {
                    let q = event_target_value(&ev);
                    go_search(&move |v: &mut TableView| v.search = Some(q.clone()).filter(|q| !q.trim().is_empty()), true);
                }/>
            <label for="lab-filter">{tr(Msg::Laboratory)}</label>
            <select id="lab-filter" data-testid="lab-filter" on:change=move |ev| {
                let l = event_target_value(&ev);
                go_lab(&move |v: &mut TableView| v.laboratory = Some(l.clone()).filter(|l| !l.is_empty()), false);
            }>
                <option value="" selected=move || view.read().laboratory.is_none()>{tr(Msg::AllLaboratories)}</option>
                {laboratories.into_iter().map(|l| {
                    let selected = { let l = l.clone(); move || view.read().laboratory.as_deref() == Some(l.as_str()) };
                    view! { <option value=l.clone() selected=selected>{l.clone()}</option> }
                }).collect_view()}
            </select>
            <label for="date-from">{tr(Msg::From)}</label>
            <DateField id="date-from" testid="date-from" value=Arc::new(move || view.read().from.clone().unwrap_or_default())
                on_change=Arc::new(move |d: String| go_from(&move |v: &mut TableView| v.from = Some(d.clone()).filter(|d| !d.is_empty()), false))/>
            <label for="date-to">{tr(Msg::To)}</label>
            <DateField id="date-to" testid="date-to" value=Arc::new(move || view.read().to.clone().unwrap_or_default())
                on_change=Arc::new(move |d: String| go_to(&move |v: &mut TableView| v.to = Some(d.clone()).filter(|d| !d.is_empty()), false))/>
            <label for="since">{tr(Msg::SinceLastVisit)}</label>
            <DateField id="since" testid="since" value=Arc::new(move || since.get()) on_change=Arc::new(move |d| since.set(d))/>
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
                <input type="checkbox" data-testid="abnormal-only" prop:checked=move || view.read().abnormal
                    on:change=move |ev| { let on = event_target_checked(&ev); go_abnormal(&move |v: &mut TableView| v.abnormal = on, false) }/>
                {tr(Msg::AbnormalOnly)}
            </label>
            <span class="pager">
                {move || (page() + 1 < pages()).then(|| view! {
                    <a class="toggle" data-testid="older" href=move || href(&|v: &mut TableView| v.page = page() + 1)>{tr(Msg::Older)}</a>
                })}
                <span class="count" data-testid="page-count">{move || page() + 1} " / " {pages}</span>
                {move || (page() > 0).then(|| view! {
                    <a class="toggle" data-testid="newer" href=move || href(&|v: &mut TableView| v.page = page() - 1)>{tr(Msg::Newer)}</a>
                })}
            </span>
        </div>
        // Printing this page prints what is on screen; the print view prints the whole period.
        <p class="print-only print-header">
            {move || identity.with_value(|i| identity_line(i.as_ref(), lang.get()))}
            " — " <strong>{tr(Msg::Period)} ": "</strong>
            {move || period_text(&page_columns.get(), lang.get())}
        </p>
        <p class="print-only print-note">{tr(Msg::PrintScreenOnly)}</p>
    });

    // The table itself: on screen one page of columns, in the print view every column of the
    // period in blocks that fit a page, each with the patient's identity in its repeated header.
    let tables = move || {
        let lang_now = lang.get();
        let since_now = since.get();
        let rows = visible.get();
        // The reports the values of this slice come from, named in the cells' tips.
        let documents = StoredValue::new(current.with(|s| DocumentLabels::of_entries(&s.documents)));
        let (blocks, header): (Vec<Vec<Column>>, Option<String>) = if print {
            let all = columns.get();
            let mut line = identity.with_value(|i| identity_line(i.as_ref(), lang_now));
            line.push_str(&format!(" — {}{}{}", Msg::Period.text(lang_now), colon(lang_now), period_text(&all, lang_now)));
            // What the printout leaves out, said on it: a filtered table is never read as complete.
            let filters = view.with(|v| filter_words(v, lang_now));
            if !filters.is_empty() {
                line.push_str(&format!(" — {}{}{}", Msg::PrintFilters.text(lang_now), colon(lang_now), filters));
            }
            if let Some(p) = printed_text.with_value(|f| f(lang_now)) {
                line.push_str(&format!(" — {p}"));
            }
            (all.chunks(PRINT_COLUMNS).map(<[Column]>::to_vec).collect(), Some(line))
        } else {
            (vec![page_columns.get()], None)
        };
        blocks
            .into_iter()
            .map(|cols| {
                let header = header.clone();
                // One tab stop into the table: its first value (or range tip); arrows do the rest.
                let entry = (!print).then(|| rows.iter().position(|s| row_is_navigable(s, &cols, lang_now))).flatten();
                let mut current_chapter = String::new();
                let mut body = Vec::new();
                for (i, row) in rows.iter().enumerate() {
                    let s = row;
                    if s.series.chapter != current_chapter {
                        current_chapter = s.series.chapter.clone();
                        body.push(view! {
                            <tr class="chapter-row"><th scope="rowgroup" colspan=(cols.len() + 3).to_string()>{chapter_name(&s.series.chapter, lang_now)}</th></tr>
                        }.into_any());
                    }
                    body.push(view! {
                        <SeriesRow row=s.clone() columns=cols.clone() lang=lang_now patient=patient.get_value() since=since_now.clone()
                            documents units entry=entry == Some(i) plain/>
                    }.into_any());
                }
                let day_headers = cols.iter().map(|column| {
                    let new = !since_now.is_empty() && column.day > since_now;
                    view! {
                        <th scope="col" class="day" class:new=new>
                            <span class="date">{format_datetime(lang_now, &column.day)}</span>
                            <span class="labs">{column.laboratories.join(", ")}</span>
                            <span class="new-mark">{tr(Msg::NewMark)}</span>
                        </th>
                    }
                }).collect_view();
                let width = cols.len() + 3;
                view! {
                    <div class="table-scroll" aria-busy=move || loading.get().then_some("true")>
                        <table class="data cumulative" data-testid="cumulative-table" aria-describedby="table-legend">
                            <thead>
                                {header.map(|h| view! {
                                    <tr class="print-identity"><th colspan=width.to_string() data-testid="print-identity">{h}</th></tr>
                                })}
                                <tr>
                                    <th scope="col" class="sticky-col">{tr(Msg::Analyte)}</th>
                                    <th scope="col">{tr(Msg::Unit)}</th>
                                    <th scope="col" class="range-col">{tr(Msg::Reference)}</th>
                                    {day_headers}
                                </tr>
                            </thead>
                            <tbody on:keydown=move_between_cells on:focusin=keep_one_tab_stop>{body}</tbody>
                        </table>
                    </div>
                }
            })
            .collect_view()
    };

    view! {
        {filters}
        {(!print).then(|| view! { <p class="muted keyboard-hint">{tr(Msg::TableKeyboardHint)}</p> })}
        {move || failed.get().map(|error| view! { <super::LoadError error/> })}
        {move || if visible.with(Vec::is_empty) { view! { <p class="notice">{tr(Msg::NoResults)}</p> }.into_any() } else { tables().into_any() }}
        <Legend/>
        {move || view! { <OtherResultsLane others=other_rows.get() plain/> }}
        // Marks the page as a patient's: the stylesheet hides what is for clinicians only.
        {plain.then(|| view! { <span class="plain-marker" hidden></span> })}
        {(!print && !plain).then(|| view! { <DataQualityPanel counts=quality/> })}
    }
}

/// Whether a row has a cell the keyboard reaches among these columns.
fn row_is_navigable(row: &SliceRow, cols: &[Column], lang: Lang) -> bool {
    let s = &row.series;
    matches!(row_range(&row.range, s.decimals, lang), RowRange::Varies(_))
        || s.points.iter().any(|p| day_of(p).is_some_and(|d| cols.iter().any(|c| c.day == d)))
}

/// Every symbol the table uses, in words (on screen and printed). Written as one piece of
/// markup from the translated texts: static, it costs the browser bundle almost nothing.
#[component]
fn Legend() -> impl IntoView {
    let lang = use_lang();
    // (symbol, its class, what it means); critical values and treatment targets go with the flags.
    const ITEMS: [(&str, &str, Msg); 12] = [
        ("↑", "flag-high", Msg::LegendHigh),
        ("↓", "flag-low", Msg::LegendLow),
        ("!", "flag-abnormal", Msg::LegendAbnormal),
        (crate::flags::CRITICAL_SYMBOL, "critical-mark", Msg::LegendCritical),
        (crate::flags::TARGET_SYMBOL, "target-mark", Msg::LegendTarget),
        ("▲", "", Msg::LegendRise),
        ("▼", "", Msg::LegendFall),
        ("*", "", Msg::LegendConverted),
        (UPLOADED_SYMBOL, "uploaded-mark", Msg::LegendUploaded),
        ("12.3", "derived", Msg::LegendComputed),
        ("+n", "", Msg::LegendMore),
        ("", "", Msg::LegendVaries),
    ];
    let items = move || {
        let l = lang.get();
        ITEMS
            .iter()
            .map(|(symbol, class, msg)| {
                let symbol = if symbol.is_empty() { Msg::RangeVaries.text(l).to_string() } else { l.decimal(symbol) };
                // Our own texts, escaped all the same.
                let escape = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;");
                format!(
                    "<li><span class=\"legend-symbol {class}\" aria-hidden=\"true\">{}</span> {}</li>",
                    escape(&symbol),
                    escape(msg.text(l))
                )
            })
            .collect::<String>()
    };
    view! {
        <section class="legend" id="table-legend" aria-labelledby="legend-heading" data-testid="legend">
            <h2 id="legend-heading">{tr(Msg::Legend)}</h2>
            <ul inner_html=items></ul>
        </section>
    }
}

/// The keyboard's way through the cumulative table, a grid with one tab stop: arrow keys move
/// from value to value (left and right along the analyte's row, up and down through the same
/// day's column, skipping days without a result and chapter headings), Home and End to the
/// row's first and last, Page Up and Page Down ten rows at a time. The cell reached becomes the
/// table's tab stop.
fn move_between_cells(ev: leptos::ev::KeyboardEvent) {
    use leptos::wasm_bindgen::JsCast;
    use leptos::web_sys::{Element, HtmlElement};
    let (dx, dy): (i32, i32) = match ev.key().as_str() {
        "ArrowLeft" => (-1, 0),
        "ArrowRight" => (1, 0),
        "ArrowUp" => (0, -1),
        "ArrowDown" => (0, 1),
        "Home" => (-1000, 0),
        "End" => (1000, 0),
        "PageUp" => (0, -10),
        "PageDown" => (0, 10),
        _ => return,
    };
    let Some(cell) = ev.target().and_then(|t| t.dyn_into::<Element>().ok()).and_then(|e| e.closest(".nav").ok().flatten()) else {
        return;
    };
    let Some(row) = cell.parent_element() else { return };
    let cells = row.children();
    let Some(column) = (0..cells.length()).find(|&i| cells.item(i).as_ref() == Some(&cell)) else { return };
    let focusable = |e: &Element| e.class_list().contains("nav");
    let target = if dx != 0 {
        // Along the row: the next cell with a value, or (Home/End) the farthest one.
        let step = dx.signum();
        let mut i = column as i32 + step;
        let mut found = None;
        while let Some(candidate) = (i >= 0).then(|| cells.item(i as u32)).flatten() {
            if focusable(&candidate) {
                found = Some(candidate);
                if dx.abs() == 1 {
                    break;
                }
            }
            i += step;
        }
        found
    } else {
        // Down the column: the |dy|-th row below (or above) with a value that day, else the last one found.
        let step = |r: &Element| if dy < 0 { r.previous_element_sibling() } else { r.next_element_sibling() };
        let mut next_row = step(&row);
        let (mut found, mut left) = (None, dy.abs());
        while let Some(r) = next_row {
            if let Some(candidate) = r.children().item(column).filter(|c| focusable(c) && !r.class_list().contains("chapter-row")) {
                found = Some(candidate);
                left -= 1;
                if left == 0 {
                    break;
                }
            }
            next_row = step(&r);
        }
        found
    };
    // A row's name takes the focus on its link.
    let target = target.map(|t| if t.tag_name() == "TH" { t.query_selector("a").ok().flatten().unwrap_or(t) } else { t });
    if let Some(target) = target.and_then(|t| t.dyn_into::<HtmlElement>().ok()) {
        ev.prevent_default();
        let _ = target.focus();
    }
}

/// The cell that has the focus (by keyboard, mouse or touch) becomes the table's only tab stop.
fn keep_one_tab_stop(ev: leptos::ev::FocusEvent) {
    use leptos::wasm_bindgen::JsCast;
    use leptos::web_sys::Element;
    let Some(cell) = ev.target().and_then(|t| t.dyn_into::<Element>().ok()).filter(|e| e.matches("td.nav, th.nav a").unwrap_or(false))
    else {
        return;
    };
    if let Some(Ok(Some(old))) = cell.closest("tbody").ok().flatten().map(|body| body.query_selector("[tabindex=\"0\"]")) {
        if old != cell {
            let _ = old.set_attribute("tabindex", "-1");
        }
    }
    let _ = cell.set_attribute("tabindex", "0");
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
fn OtherResultsLane(others: Vec<OtherRow>, plain: bool) -> impl IntoView {
    let lang = use_lang();
    (!others.is_empty()).then(|| {
        let rows = move || {
            let lang = lang.get();
            others
                .iter()
                .map(|row| {
                    let o = &row.other;
                    let latest = o.points.last().map(|p| {
                        let value = match (&p.display, p.unit.as_deref()) {
                            (Some(_), Some(unit)) => format!("{} {unit}", point_text(p, lang)),
                            _ => point_text(p, lang),
                        };
                        let when = p.time.map(|t| format_datetime(lang, &t.date_string())).unwrap_or_default();
                        // Its flag (positive, abnormal finding...), never a bare word.
                        let flag = p.flag.as_ref().map(|f| format!(" · {}", flag_label(&f.code, lang))).unwrap_or_default();
                        format!("{value}{flag} ({when})")
                    });
                    // The laboratory's own name for the test, the code's long name as a tip.
                    let name = o.points.last().and_then(|p| p.sources.first()).and_then(|s| s.label.clone()).or_else(|| o.label.clone());
                    view! {
                        <tr>
                            <th scope="row" title=o.label.clone().unwrap_or_default()>{name.unwrap_or_default()}</th>
                            {(!plain).then(|| view! { <td class="mono">{o.code.clone().unwrap_or_default()}</td> })}
                            <td>{o.laboratory.clone().unwrap_or_default()}</td>
                            <td class="num">{row.count}</td>
                            <td>{latest.unwrap_or_default()}
                                {row.uploaded.then(|| view! { " " <span class="badge badge-warning" data-testid="other-uploaded">{Msg::UploadedMark.text(lang)}</span> })}</td>
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
                        {(!plain).then(|| view! { <th scope="col">"Code"</th> })}
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
    row: SliceRow,
    columns: Vec<Column>,
    lang: Lang,
    patient: String,
    since: String,
    documents: StoredValue<DocumentLabels>,
    units: UnitSystem,
    /// This row holds the table's tab stop (its first cell the keyboard reaches).
    entry: bool,
    plain: bool,
) -> impl IntoView {
    let SliceRow { series, range } = row;
    let href = format!(
        "/patients/{patient}/analytes/{}{}",
        series.analyte,
        if units == UnitSystem::Conventional { "?units=conventional" } else { "" }
    );
    let name = match lang {
        Lang::Fr => series.name_fr.clone(),
        Lang::En => series.name_en.clone(),
    };
    let mut entry_left = entry;
    let mut take_entry = move || std::mem::replace(&mut entry_left, false);
    // The laboratory's range for the unit shown; "varies by lab" with each range in its tip.
    let range = match row_range(&range, series.decimals, lang) {
        RowRange::None => view! { <td class="range" data-testid="row-range"></td> }.into_any(),
        RowRange::One(r) => view! { <td class="range" data-testid="row-range">{r}</td> }.into_any(),
        RowRange::Varies(each) => {
            let tip = each.iter().map(|(lab, r)| format!("{lab}{}{r}", colon(lang))).collect::<Vec<_>>().join("\n");
            let label = format!("{} — {}", Msg::RangeVaries.text(lang), tip.replace('\n', " ; "));
            view! {
                <td class="range varies nav" data-testid="row-range" tabindex={if take_entry() { "0" } else { "-1" }} aria-label=label>
                    {tr(Msg::RangeVaries)}
                    <span class="origin-tip" role="tooltip" data-testid="range-tip">{tip}</span>
                </td>
            }
            .into_any()
        }
    };
    let unit = series.unit.clone();
    let cells = columns
        .iter()
        .map(|c| {
            let mut points: Vec<&Point> = series.points.iter().filter(|p| day_of(p).as_deref() == Some(c.day.as_str())).collect();
            // Several results the same day: the cell shows a laboratory's result before an uploaded
            // one (an upload never stands in front of a laboratory's result), and of those the
            // day's latest abnormal one, else its latest, so that an abnormal value is never the
            // one behind "+n"; the others are listed in the cell's tip.
            let from_laboratory = |p: &&Point| !documents.with_value(|d| p.sources.first().is_some_and(|s| d.uploaded(&s.document)));
            let Some(shown) = points
                .iter()
                .rposition(|p| from_laboratory(p) && is_abnormal(p))
                .or_else(|| points.iter().rposition(from_laboratory))
                .or_else(|| points.iter().rposition(|p| is_abnormal(p)))
                .or(points.len().checked_sub(1))
            else {
                return view! { <td class="empty"></td> }.into_any();
            };
            let point = points.remove(shown).clone();
            let others: Vec<Point> = points.into_iter().cloned().collect();
            let new = !since.is_empty() && c.day > since;
            view! { <ResultCell point others lang new documents decimals=series.decimals unit=unit.clone() entry=take_entry() plain/> }
                .into_any()
        })
        .collect_view();
    view! {
        <tr>
            // The name is reached by the arrow keys too (Home), and opens the analyte with Enter.
            <th scope="row" class="sticky-col nav"><a href=href tabindex="-1">{name}</a></th>
            <td class="unit">{lang.unit(series.unit.as_deref())}</td>
            {range}
            {cells}
        </tr>
    }
}

/// The mark of a value from an uploaded document (its words are in the legend and the tip).
const UPLOADED_SYMBOL: &str = "⇪";

#[component]
fn ResultCell(
    point: Point,
    others: Vec<Point>,
    lang: Lang,
    new: bool,
    documents: StoredValue<DocumentLabels>,
    /// The analyte's precision and display unit (the range in the tip is written with them).
    decimals: usize,
    unit: Option<String>,
    entry: bool,
    plain: bool,
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
                // A patient reads where the value comes from without the laboratory's code.
                let code =
                    if plain { String::new() } else { format!(" — {} {}", Msg::CodeLabel.text(lang), s.code.as_deref().unwrap_or("?")) };
                format!(
                    "{}{} {} {} — {}{code} — {}",
                    // A computed value's source is the creatinine it was computed from.
                    if point.derived { Msg::ComputedFromCreatinine.text(lang) } else { Msg::OriginalValue.text(lang) },
                    if lang == Lang::Fr { " :" } else { ":" },
                    s.original_value.as_deref().map(&decimal).unwrap_or_default(),
                    s.original_unit.as_deref().unwrap_or(""),
                    point.laboratory.as_deref().unwrap_or(""),
                    documents.label(&s.document, lang),
                )
            })
            // The day's other results, which the cell does not show.
            .chain(laboratory.clone())
            .chain(others.iter().map(|o| {
                let flag = o.shown_flag().map(|_| format!(" ({})", crate::flags::judged_label(o, lang))).unwrap_or_default();
                // Review finding: an uploaded value of the same day read like a laboratory's here.
                let source = o.sources.first().map(|s| format!(" — {}", documents.label(&s.document, lang))).unwrap_or_default();
                format!(
                    "{}{} {} {}{flag} — {}{source}",
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
    // The laboratory's range for this value, in the unit it is shown in.
    let range_line = {
        let range = range_text(&point, decimals, lang);
        let unit = if point.in_display_unit { lang.unit(unit.as_deref()) } else { point.unit.as_deref().unwrap_or("").to_string() };
        (!range.is_empty()).then(|| format!("{}{}{range} {unit}", Msg::RangeInTip.text(lang), colon(lang)))
    };
    let change = point.significant_change.map(|d| match d {
        Direction::Up => ("▲", Msg::SignificantRise),
        Direction::Down => ("▼", Msg::SignificantFall),
    });
    // A value from a document a user uploaded never passes for a laboratory's: marked in the
    // cell (on screen and on paper) and said to screen readers.
    let uploaded = point.sources.first().is_some_and(|s| documents.with_value(|d| d.uploaded(&s.document)));
    let mut label = value.clone();
    if uploaded {
        label.push_str(&format!(" ({})", Msg::UploadedMark.text(lang)));
    }
    if !judged.is_empty() && (!symbol.is_empty() || point.critical.is_some() || point.target_flag.is_some()) {
        label.push_str(&format!(" ({judged})"));
    }
    if let Some((_, msg)) = change {
        label.push_str(&format!(", {}", msg.text(lang)));
    }
    if converted || more > 0 || laboratory.is_some() {
        label.push_str(&format!(". {}", detail.replace('\n', ". ")));
    }
    if let Some(range) = &range_line {
        label.push_str(&format!(". {range}"));
    }
    let detail = [detail, range_line.unwrap_or_default()].into_iter().filter(|d| !d.is_empty()).collect::<Vec<_>>().join("\n");
    // New since the chosen visit; new and significantly changed stands out most.
    let novelty = match (new, point.significant_change.is_some()) {
        (true, true) => " new changed",
        (true, false) => " new",
        _ => "",
    };
    let classes = format!(
        "result nav {class}{}{}{}{}{novelty}",
        if converted { " converted" } else { "" },
        if point.derived { " derived" } else { "" },
        if point.critical.is_some() { " critical" } else { "" },
        if point.target_flag.is_some() { " target" } else { "" },
    );
    view! {
        <td class=classes tabindex={if entry { "0" } else { "-1" }} aria-label=label data-testid="result-cell">
            {value}
            {(!detail.is_empty()).then(|| view! { <span class="origin-tip" role="tooltip" data-testid="origin-tip">{detail.clone()}</span> })}
            {(!symbol.is_empty()).then(|| view! { <span class="flag" aria-hidden="true">{symbol}</span> })}
            {point.critical.map(|_| view! { <span class="critical-mark" aria-hidden="true" title=judged.clone() data-testid="critical-mark">{crate::flags::CRITICAL_SYMBOL}</span> })}
            {point.target_flag.as_ref().map(|_| view! { <span class="target-mark" aria-hidden="true" title=judged.clone()>{crate::flags::TARGET_SYMBOL}</span> })}
            {change.map(|(s, _)| view! { <span class="change" aria-hidden="true">{s}</span> })}
            {converted.then(|| view! { <span class="conv-mark" aria-hidden="true" title=Msg::ConvertedMark.text(lang)>"*"</span> })}
            {uploaded.then(|| view! { <span class="uploaded-mark" aria-hidden="true" title=Msg::UploadedMark.text(lang) data-testid="uploaded-mark">{UPLOADED_SYMBOL}</span> })}
            {(more > 0).then(|| view! { <span class="more">{format!(" +{more}")}</span> })}
        </td>
    }
}
