//! Tracing set-up. What may be logged: request method and route, status, durations, internal
//! ids (UUIDs), counts, error kinds. What may not: names, INS, birth dates, results.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; `level` is an `EnvFilter` directive (`info`, `bioviewer=debug`).
/// Safe to call twice (the second call is ignored), which integration tests rely on.
///
/// Logs go to standard error: standard output is the commands' answer (`sync`'s JSON report,
/// `parse`'s JSON lines), which a script must be able to read whole. Colour codes only when
/// standard error is a terminal, so a log file or a pipe gets plain text.
pub fn init(level: &str) {
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
