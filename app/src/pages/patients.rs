//! The list of patients with imported documents.

use leptos::prelude::*;
use leptos_router::NavigateOptions;
use leptos_router::hooks::{use_navigate, use_query_map};

use crate::api::load_patient_page;
#[cfg(any(feature = "ssr", test))]
use crate::components::fold_for_search;
use crate::components::format_datetime;
use crate::i18n::{Msg, tr, use_lang};
#[cfg(any(feature = "ssr", test))]
use crate::model::PatientSummary;
use crate::model::{PATIENTS_PER_PAGE, PatientPage, Sex, ViewerRole};

/// The page of `all` (sorted already) that the list shows for `query` and `page` (from 1; a page
/// beyond the last shows the last). On the server: the browser receives the page only.
#[cfg(any(feature = "ssr", test))]
pub fn patient_page(all: Vec<PatientSummary>, query: &str, page: usize) -> PatientPage {
    let total = all.len();
    let matching: Vec<PatientSummary> = all.into_iter().filter(|p| matches(p, query)).collect();
    let pages = matching.len().div_ceil(PATIENTS_PER_PAGE).max(1);
    let page = page.clamp(1, pages);
    let patients = matching.iter().skip((page - 1) * PATIENTS_PER_PAGE).take(PATIENTS_PER_PAGE).cloned().collect();
    PatientPage { patients, matching: matching.len(), total, page, pages }
}

/// The list's URL for a search and a page (the search and the page live in the URL: Back and
/// reload keep them).
fn list_href(query: &str, page: usize) -> String {
    let mut params = Vec::new();
    if !query.trim().is_empty() {
        params.push(format!("q={}", crate::table::encode(query)));
    }
    if page > 1 {
        params.push(format!("page={page}"));
    }
    if params.is_empty() { "/".to_string() } else { format!("/?{}", params.join("&")) }
}

#[component]
pub fn PatientList() -> impl IntoView {
    let url = use_query_map();
    let query = Memo::new(move |_| url.with(|q| q.get("q").unwrap_or_default()));
    let page = Memo::new(move |_| url.with(|q| q.get("page").and_then(|p| p.parse::<usize>().ok()).unwrap_or(1)));
    let patients = Resource::new(move || (query.get(), page.get()), |(query, page)| load_patient_page(query, page as u32));
    let viewer = super::use_viewer();
    view! {
        <section class="page">
            <h1>{tr(Msg::Patients)}</h1>
            <Suspense fallback=move || view! { <p class="loading">{tr(Msg::Loading)}</p> }>
                {move || Suspend::new(async move {
                    let viewer = viewer.await.ok().flatten();
                    let role = viewer.as_ref().map(|v| v.role);
                    let intro = match role {
                        Some(ViewerRole::Patient) => Msg::PatientsIntroPatient,
                        Some(ViewerRole::Admin) => Msg::AdminSeesNoResults,
                        _ => Msg::PatientsIntroProfessional,
                    };
                    // Professionals only: administrators file nothing into records, patients do
                    // not upload (the server refuses them too).
                    let upload = viewer
                        .as_ref()
                        .filter(|v| v.role == ViewerRole::Professional)
                        .map(|v| view! { <super::access::UploadForm csrf=v.csrf_token.clone()/> });
                    let break_glass = viewer
                        .filter(|v| v.role == ViewerRole::Professional)
                        .map(|v| view! { <super::access::BreakGlassForm csrf=v.csrf_token/> });
                    view! { <p class="intro">{tr(intro)}</p> {break_glass} {upload} }
                })}
            </Suspense>
            <PatientSearch query/>
            // The search box stays outside: typing never re-renders it (nor loses its focus).
            <Transition fallback=move || view! { <p class="loading">{tr(Msg::Loading)}</p> }>
                {move || Suspend::new(async move {
                    match patients.await {
                        Ok(list) if list.total == 0 => view! { <p class="notice">{tr(Msg::NoPatients)}</p> }.into_any(),
                        Ok(list) => view! { <PatientTable list query=query.get_untracked()/> }.into_any(),
                        Err(error) => view! { <super::LoadError error/> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn PatientSearch(query: Memo<String>) -> impl IntoView {
    let navigate = use_navigate();
    view! {
        <div class="toolbar">
            <label for="patient-search">{tr(Msg::SearchPatient)}</label>
            <input id="patient-search" type="search" data-testid="patient-search" placeholder=tr(Msg::SearchPatientHint)
                prop:value=move || query.get()
                on:input=move |ev| {
                    // A new search starts on its first page; the URL keeps it (each further
                    // letter replaces it: typing is not a page of history).
                    // The first letter typed is a step of its own, so that Back returns to the
                    // page of the list the search started from.
                    let replace = !query.get_untracked().is_empty();
                    let options = NavigateOptions { replace, scroll: false, ..Default::default() };
                    navigate(&list_href(&event_target_value(&ev), 1), options);
                }/>
        </div>
    }
}

/// Whether a patient matches what was typed: the INS, words of the name (accents ignored), or
/// the birth date as typed in either language.
#[cfg(any(feature = "ssr", test))]
fn matches(p: &PatientSummary, query: &str) -> bool {
    let query = query.trim();
    if query.is_empty() {
        return true;
    }
    let digits: String = query.chars().filter(char::is_ascii_digit).collect();
    if digits.len() >= 6 && (p.ins.contains(&digits) || p.identifiers.iter().any(|id| id.contains(&digits))) {
        return true;
    }
    if let Some(birth) = &p.birth_date {
        let fr = format_datetime(crate::i18n::Lang::Fr, birth);
        if birth.starts_with(query) || fr.starts_with(query) {
            return true;
        }
    }
    let name = fold_for_search(&p.display_name);
    fold_for_search(query).split_whitespace().all(|word| name.contains(word))
}

/// What the count above the list says: none matching the search, one patient, or which of how
/// many this page shows.
fn patient_count(matching: usize, first: usize, last: usize) -> impl IntoView {
    match matching {
        0 => tr(Msg::NoPatientMatches).into_any(),
        1 => view! { "1 " {tr(Msg::PatientWord)} }.into_any(),
        n if first == 1 && last == n => view! { {n} " " {tr(Msg::PatientsWord)} }.into_any(),
        n => view! { {first} "–" {last} " " {tr(Msg::PatientsOf)} " " {n} " " {tr(Msg::PatientsWord)} }.into_any(),
    }
}

#[component]
fn PatientTable(list: PatientPage, query: String) -> impl IntoView {
    let lang = use_lang();
    let first = (list.page - 1) * PATIENTS_PER_PAGE + 1;
    let last = first + list.patients.len().saturating_sub(1);
    let rows = list
        .patients
        .into_iter()
        .map(|p| {
            let href = format!("/patients/{}", p.id);
            let test_ins = p.is_test_ins();
            let has_ins = p.has_ins();
            let birth = p.birth_date.clone();
            let sex = p.sex;
            view! {
                <tr data-testid="patient-row">
                    <th scope="row"><a href=href>{p.display_name.clone()}</a></th>
                    <td class="mono">
                        {p.ins.clone()}
                        {test_ins.then(|| view! { " " <span class="badge">{tr(Msg::InsTest)}</span> })}
                        {(!has_ins).then(|| view! { " " <span class="badge badge-warning" data-testid="no-ins">{tr(Msg::NoIns)}</span> })}
                    </td>
                    <td>{move || birth.as_deref().map(|b| format_datetime(lang.get(), b)).unwrap_or_default()}</td>
                    <td>{move || sex_label(sex).text(lang.get())}</td>
                    <td class="num">{p.document_count}</td>
                </tr>
            }
        })
        .collect_view();
    let (page, pages) = (list.page, list.pages);
    let pager = (pages > 1).then(|| {
        let link = move |p: usize| list_href(&query, p);
        view! {
            <nav class="pager" aria-label=tr(Msg::PatientListPages) data-testid="patient-pages">
                {(page > 1).then(|| view! { <a href=link(page - 1) rel="prev">{tr(Msg::PreviousPatients)}</a> " " })}
                <span aria-current="page">{tr(Msg::PageWord)} " " {page} " / " {pages}</span>
                {(page < pages).then(|| view! { " " <a href=link(page + 1) rel="next">{tr(Msg::NextPatients)}</a> })}
            </nav>
        }
    });
    view! {
        <p class="count" data-testid="patient-count">{patient_count(list.matching, first, last)}</p>
        {(list.matching > 0).then(|| view! {
        <table class="data">
            <thead>
                <tr>
                    <th scope="col">{tr(Msg::Name)}</th>
                    <th scope="col">{tr(Msg::Ins)}</th>
                    <th scope="col">{tr(Msg::BirthDate)}</th>
                    <th scope="col">{tr(Msg::Sex)}</th>
                    <th scope="col" class="num">{tr(Msg::DocumentCount)}</th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
        })}
        {pager}
    }
}

pub(crate) fn sex_label(sex: Option<Sex>) -> Msg {
    match sex {
        Some(Sex::Female) => Msg::SexFemale,
        Some(Sex::Male) => Msg::SexMale,
        _ => Msg::SexUnknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patient(n: usize, name: &str) -> PatientSummary {
        PatientSummary {
            id: format!("id-{n}"),
            ins: format!("{:015}", 100000000000000u64 + n as u64),
            display_name: name.to_string(),
            ..PatientSummary::default()
        }
    }

    #[test]
    fn a_long_list_is_sent_a_page_at_a_time_and_a_search_finds_beyond_the_first_page() {
        let all: Vec<PatientSummary> = (0..120).map(|n| patient(n, &format!("PATIENT {n:03}"))).collect();
        let first = patient_page(all.clone(), "", 1);
        assert_eq!((first.patients.len(), first.matching, first.total, first.pages), (50, 120, 120, 3));
        let last = patient_page(all.clone(), "", 3);
        assert_eq!(last.patients.len(), 20);
        assert_eq!(last.patients[0].display_name, "PATIENT 100");
        // Beyond the last page: the last one; before the first: the first.
        assert_eq!(patient_page(all.clone(), "", 9).page, 3);
        assert_eq!(patient_page(all.clone(), "", 0).page, 1);
        // A search looks at every patient, not at the page shown.
        let found = patient_page(all.clone(), "patient 117", 1);
        assert_eq!((found.matching, found.total), (1, 120));
        assert_eq!(found.patients[0].display_name, "PATIENT 117");
        let none = patient_page(all, "DUPONT", 1);
        assert_eq!((none.patients.len(), none.matching, none.pages), (0, 0, 1));
    }

    #[test]
    fn the_search_and_the_page_are_in_the_url() {
        assert_eq!(list_href("", 1), "/");
        assert_eq!(list_href("  ", 2), "/?page=2");
        assert_eq!(list_href("Élise Dupont", 1), format!("/?q={}", crate::table::encode("Élise Dupont")));
        assert_eq!(list_href("x", 3), "/?q=x&page=3");
    }
}
