//! The `bioviewer` command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::config::{CommonSettings, ServeSettings};
use crate::import::{ImportOutcome, import_bytes};
use crate::store::sqlite::SqliteStore;
use crate::store::{DocumentSource, Store};

#[derive(Debug, Parser)]
#[command(name = "bioviewer", version, about = "Every laboratory result of a patient, from every laboratory, as one history.")]
pub struct Cli {
    #[command(flatten)]
    pub common: CommonSettings,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the web application.
    Serve(ServeSettings),
    /// Import CDA documents (files, or folders read recursively) into the store.
    Import {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Parse CDA documents and print them as JSON, one object per file (see docs/parse-json.md).
    Parse {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::telemetry::init(&cli.common.log_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bioviewer: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("bioviewer: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode, String> {
    match cli.command {
        Command::Serve(serve) => {
            let store = open_store(&cli.common).await?;
            let listener = tokio::net::TcpListener::bind(serve.listen)
                .await
                .map_err(|e| format!("cannot listen on {}: {e}", serve.listen))?;
            let address = listener.local_addr().map_err(|e| e.to_string())?;
            println!("Bioviewer is listening on http://{address}");
            crate::http::serve(listener, store, &serve.site_root).await.map_err(|e| e.to_string())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Import { paths } => {
            let store = open_store(&cli.common).await?;
            let files = collect_files(&paths)?;
            let mut failures = 0;
            for file in files {
                let name = file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
                let outcome = match std::fs::read(&file) {
                    Ok(raw) => import_bytes(store.as_ref(), &name, raw, DocumentSource::File).await.map_err(|e| e.to_string()),
                    Err(e) => Err(format!("cannot read {}: {e}", file.display())),
                };
                match outcome {
                    Ok(outcome) => print_outcome(&outcome),
                    Err(e) => {
                        failures += 1;
                        eprintln!("{name}: {e}");
                    }
                }
            }
            Ok(if failures == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Parse { files } => {
            let mut out = std::io::stdout().lock();
            let mut failures = 0;
            for file in files {
                let value = match std::fs::read(&file) {
                    Err(e) => {
                        failures += 1;
                        serde_json::json!({"file": file.display().to_string(), "error": {"error": "io", "message": e.to_string()}})
                    }
                    Ok(raw) => match bioviewer_core::cda::parse(&raw) {
                        Ok(report) => serde_json::json!({"file": file.display().to_string(), "report": report}),
                        Err(e) => {
                            failures += 1;
                            serde_json::json!({"file": file.display().to_string(), "error": e, "message": e.to_string()})
                        }
                    },
                };
                use std::io::Write;
                serde_json::to_writer(&mut out, &value).map_err(|e| e.to_string())?;
                writeln!(out).map_err(|e| e.to_string())?;
            }
            Ok(if failures == 0 { ExitCode::SUCCESS } else { ExitCode::from(2) })
        }
    }
}

async fn open_store(common: &CommonSettings) -> Result<Arc<dyn Store>, String> {
    let url = common.database_url();
    if url.starts_with("sqlite://") && !url.contains(":memory:") {
        std::fs::create_dir_all(&common.data_dir)
            .map_err(|e| format!("cannot create the data folder {}: {e}", common.data_dir.display()))?;
    }
    let store = SqliteStore::open(&url).await.map_err(|e| e.to_string())?;
    Ok(Arc::new(store))
}

fn print_outcome(outcome: &ImportOutcome) {
    let state = if outcome.already_present { "already stored" } else { "stored" };
    match &outcome.problem {
        None => println!("{}: {state}", outcome.name),
        Some(problem) => println!("{}: {state}, with a problem: {problem}", outcome.name),
    }
}

/// Files named, and files inside folders named (recursively, in name order).
fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| format!("cannot read the folder {}: {e}", dir.display()))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, out)?;
            } else {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            walk(path, &mut out)?;
        } else if path.exists() {
            out.push(path.clone());
        } else {
            return Err(format!("{} does not exist", path.display()));
        }
    }
    Ok(out)
}
