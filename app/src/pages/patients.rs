//! The list of patients with imported documents.

use leptos::prelude::*;

use crate::api::list_patients;
use crate::components::{fold_for_search, format_datetime};
use crate::i18n::{Msg, tr, use_lang};
use crate::model::{PatientSummary, Sex, ViewerRole};

#[component]
pub fn PatientList() -> impl IntoView {
    let patients = Resource::new(|| (), |_| list_patients());
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
                    let list = match patients.await {
                        Ok(list) if list.is_empty() => view! { <p class="notice">{tr(Msg::NoPatients)}</p> }.into_any(),
                        Ok(list) => view! { <PatientTable patients=list/> }.into_any(),
                        Err(error) => view! { <super::LoadError error/> }.into_any(),
                    };
                    view! { <p class="intro">{tr(intro)}</p> {list} {break_glass} {upload} }
                })}
            </Suspense>
        </section>
    }
}

/// Whether a patient matches what was typed: the INS, words of the name (accents ignored), or
/// the birth date as typed in either language.
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

#[component]
fn PatientTable(patients: Vec<PatientSummary>) -> impl IntoView {
    let lang = use_lang();
    let query = RwSignal::new(String::new());
    let rows = patients
        .into_iter()
        .map(|p| {
            let visible = {
                let p = p.clone();
                move || matches(&p, &query.get())
            };
            let href = format!("/patients/{}", p.id);
            let test_ins = p.is_test_ins();
            let has_ins = p.has_ins();
            let birth = p.birth_date.clone();
            let sex = p.sex;
            view! {
                <tr data-testid="patient-row" hidden=move || !visible()>
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
    view! {
        <div class="toolbar">
            <label for="patient-search">{tr(Msg::SearchPatient)}</label>
            <input id="patient-search" type="search" data-testid="patient-search" placeholder=tr(Msg::SearchPatientHint)
                on:input=move |ev| query.set(event_target_value(&ev))/>
        </div>
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
    }
}

pub(crate) fn sex_label(sex: Option<Sex>) -> Msg {
    match sex {
        Some(Sex::Female) => Msg::SexFemale,
        Some(Sex::Male) => Msg::SexMale,
        _ => Msg::SexUnknown,
    }
}
