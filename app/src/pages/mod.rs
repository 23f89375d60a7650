//! One module per page.

mod access;
mod analyte;
mod document;
mod patient;
mod patients;
mod results;
mod summary;

pub use access::{AccessLogPage, AdminPage, BreakGlassBanner, SignInPage, UserMenu, provide_viewer, use_viewer};
pub use analyte::{AnalytePage, ChartView, Period, Window};
pub use document::DocumentPage;
pub use patient::PatientPage;
pub use patients::PatientList;
pub use results::ResultsPage;
pub use summary::SummaryPage;

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
    let msg = match error {
        crate::api::AppError::NotFound => Msg::PatientNotFound,
        crate::api::AppError::NotSignedIn => Msg::SessionExpired,
        crate::api::AppError::TooManyRequests => Msg::TooManyRequests,
        _ => Msg::ErrorLoading,
    };
    view! { <p class="notice notice-error" role="alert">{tr(msg)}</p> }
}
