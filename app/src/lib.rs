#![recursion_limit = "256"]
//! Bioviewer's user interface, rendered on the server (SSR) and hydrated in the browser.
//!
//! Module map:
//! - [`i18n`]: every user-visible string, French first, English second.
//! - [`flags`]: how a result's flag, treatment target and critical marker are said.
//! - [`model`]: the data the UI shows, shared with the server (serde types).
//! - [`api`]: server functions (their server side calls the [`api::ssr::Backend`] port that the
//!   server crate implements; the browser side is a plain HTTP call).
//! - `pages`: one module per page; `components` for pieces shared between pages.
//!
//! This crate never reads the database or the DMP itself: on the server it asks the backend
//! given in context, so the dependency points from `server` to `app`, never back.

pub mod api;
pub mod flags;
pub mod i18n;
pub mod model;
pub mod plain;
pub mod table;

mod components;
mod pages;

pub use pages::patient_name;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Title, provide_meta_context};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;

use crate::i18n::{Msg, provide_lang, use_lang};

/// The HTML document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    let lang = i18n::request_lang();
    view! {
        <!DOCTYPE html>
        <html lang=lang.code()>
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light"/>
                <link rel="stylesheet" href=stylesheet_href(&options)/>
                <link rel="icon" type="image/svg+xml" href="/favicon.svg"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The stylesheet's address: `pkg/<name>.<hash>.css` when the site's files are named by their
/// content (the `css:` line of the hash file `make site` writes), else `pkg/<name>.css`. The
/// hash file is read once per hash-file path (a new build is a new server start).
fn stylesheet_href(options: &LeptosOptions) -> String {
    type Read = Option<(std::sync::Arc<str>, Option<String>)>;
    static READ: std::sync::Mutex<Read> = std::sync::Mutex::new(None);
    let hash = if options.hash_files {
        let mut read = READ.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match read.as_ref() {
            Some((file, hash)) if *file == options.hash_file => hash.clone(),
            _ => {
                let hash = std::fs::read_to_string(options.hash_file.as_ref())
                    .ok()
                    .and_then(|listed| listed.lines().find_map(|line| line.trim().strip_prefix("css:").map(|h| h.trim().to_string())));
                *read = Some((options.hash_file.clone(), hash.clone()));
                hash
            }
        }
    } else {
        None
    };
    match hash {
        Some(hash) => format!("/{}/{}.{hash}.css", options.site_pkg_dir, options.output_name),
        None => format!("/{}/{}.css", options.site_pkg_dir, options.output_name),
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    provide_lang();
    pages::provide_viewer();
    let lang = use_lang();
    view! {
        <Title text=move || Msg::AppName.text(lang.get())/>
        <Router>
            <components::Header/>
            <pages::BreakGlassBanner/>
            <main id="main" tabindex="-1">
                <Routes fallback=|| view! { <pages::NotFound/> }>
                    <Route path=path!("/") view=pages::PatientList/>
                    <Route path=path!("/connexion") view=pages::SignInPage/>
                    <Route path=path!("/admin") view=pages::AdminPage/>
                    <Route path=path!("/patients/:id/access-log") view=pages::AccessLogPage/>
                    <Route path=path!("/patients/:id") view=pages::PatientPage/>
                    <Route path=path!("/patients/:id/results") view=pages::ResultsPage/>
                    <Route path=path!("/patients/:id/summary") view=pages::SummaryPage/>
                    <Route path=path!("/patients/:id/documents/:doc") view=pages::DocumentPage/>
                    <Route path=path!("/patients/:id/analytes/:analyte") view=pages::AnalytePage/>
                </Routes>
            </main>
        </Router>
    }
}

/// Entry point of the browser bundle: attaches to the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
    // Lets browser tests (and curious people) see that the bundle has taken over the page.
    if let Some(root) = leptos::prelude::document().document_element() {
        let _ = root.set_attribute("data-hydrated", "true");
    }
}
