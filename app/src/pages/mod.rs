//! One module per page.

mod access;
mod analyte;
mod document;
mod patient;
pub(crate) mod patients;
mod results;
mod summary;

pub use access::{AccessLogPage, AdminPage, BreakGlassBanner, SignInPage, UserMenu, provide_viewer, use_viewer};
pub use analyte::{AnalytePage, ChartView, Period, Window};
#[cfg(feature = "ssr")]
pub use analyte::{analyte_history, remembered_chart_width};
pub(crate) use analyte::{Day, day_of, parse_day};
pub use document::DocumentPage;
pub use patient::PatientPage;
pub use patients::PatientList;
pub use results::ResultsPage;
pub use summary::SummaryPage;
#[cfg(feature = "ssr")]
pub use summary::summary_history;

use leptos::prelude::*;

use crate::i18n::{Msg, tr};

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
    view! { <p class="notice">{tr(Msg::PageNotFound)}</p> }
}

/// What every page shows when its data cannot be loaded.
#[component]
pub fn LoadError(error: crate::api::AppError) -> impl IntoView {
    let notice = |msg: Msg| view! { <p class="notice notice-error" role="alert">{tr(msg)}</p> };
    match error {
        // A patient reading a link that is not to her record is told so, without the
        // professional's care relationship and break-the-glass words (review finding).
        crate::api::AppError::NotFound => {
            let viewer = use_viewer();
            view! {
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        let patient = matches!(viewer.await, Ok(Some(v)) if v.role == crate::model::ViewerRole::Patient);
                        notice(if patient { Msg::RecordNotFoundForPatient } else { Msg::PatientNotFound })
                    })}
                </Suspense>
            }
            .into_any()
        }
        crate::api::AppError::NotSignedIn => notice(Msg::SessionExpired).into_any(),
        crate::api::AppError::TooManyRequests => notice(Msg::TooManyRequests).into_any(),
        _ => notice(Msg::ErrorLoading).into_any(),
    }
}

/// A patient's name as a title says it: "MARTIN Claire".
pub fn patient_name(p: &crate::model::PatientIdentity) -> String {
    format!("{} {}", p.family_name.clone().unwrap_or_default(), p.given_name.clone().unwrap_or_default()).trim().to_string()
}

/// The browser tab names the page and the patient ("Synthèse — MARTIN Claire — Bioviewer"): a
/// clinician with several records open in tabs tells them apart.
#[component]
pub fn PatientTitle(
    page: Msg,
    name: Option<String>,
    /// A page about one thing names it instead (an analyte: its French and English names).
    #[prop(optional)]
    what: Option<(String, String)>,
) -> impl IntoView {
    let lang = crate::i18n::use_lang();
    let text = move || {
        let l = lang.get();
        let page = match (&what, l) {
            (Some((fr, _)), crate::i18n::Lang::Fr) => fr.clone(),
            (Some((_, en)), crate::i18n::Lang::En) => en.clone(),
            (None, _) => page.text(l).to_string(),
        };
        match name.as_deref().filter(|n| !n.is_empty()) {
            Some(n) => format!("{page} — {n} — {}", Msg::AppName.text(l)),
            None => format!("{page} — {}", Msg::AppName.text(l)),
        }
    };
    view! { <leptos_meta::Title text=text/> }
}
