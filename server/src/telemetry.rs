//! Tracing set-up. What may be logged: request method and route, status, durations, internal
//! ids (UUIDs), counts, error kinds. What may not: names, INS, birth dates, results.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; `level` is an `EnvFilter` directive (`info`, `bioviewer=debug`).
/// Safe to call twice (the second call is ignored), which integration tests rely on.
pub fn init(level: &str) {
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_target(true).try_init();
}
