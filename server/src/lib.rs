//! Bioviewer's server side: the adapters around the pure core (`bioviewer_core`).
//!
//! Module map:
//! - [`access`]: accounts, sessions, care relationships, break-the-glass, the audit trail.
//! - [`chart`]: trend charts as SVG, drawn on the server.
//! - [`cli`]: the `bioviewer` command line (serve, import, parse).
//! - [`config`]: settings from flags and `BIOVIEWER_*` variables.
//! - [`dmp`]: the DMP adapter: the signed VIHF (SAML 2.0) so far.
//! - [`domain`]: validated identifiers (INS, patient and document ids).
//! - [`store`]: the `Store` port and its SQLite implementation (sqlx).
//! - [`history`]: a stored patient's documents through the core's parser and normaliser.
//! - [`oidc`]: OpenID Connect sign-in for professionals (Pro Santé Connect).
//! - [`import`]: bytes of a document in, stored verbatim and indexed by its header.
//! - [`local_time`]: the clinician's time zone, in which every time the interface shows is written.
//! - `identity`: which identity a patient keeps when a document arrives (a plain decision).
//! - [`http`]: the axum application (Leptos SSR, server functions, health, static files).
//! - [`telemetry`]: tracing set-up. Logs never carry health data: ids and counts only.
//!
//! Dependency rule: `http`/`cli` → `import` → `store` + `bioviewer_core`; nothing here is used by
//! the core, and the UI crate (`bioviewer_app`) reaches the store only through the
//! `Backend` port it defines.

pub mod access;
pub mod chart;
pub mod cli;
pub mod config;
pub mod dmp;
pub mod domain;
pub mod history;
pub mod http;
pub(crate) mod identity;
pub mod import;
pub mod local_time;
pub mod oidc;
pub mod store;
pub mod telemetry;
mod urlencode;
