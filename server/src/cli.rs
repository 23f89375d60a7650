//! The `bioviewer` command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::config::{CommonSettings, ServeSettings};
use crate::import::{ImportOutcome, import_bytes};
use crate::store::sql::SqlStore;
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
    /// Print one patient's unified history from documents (files or folders) as JSON
    /// (see docs/normalised-json.md).
    Normalize {
        /// The patient's INS (or ROOT^INS); default: the patient most documents name.
        #[arg(long)]
        patient: Option<String>,
        /// Display units.
        #[arg(long, value_enum, default_value = "si")]
        unit_system: UnitSystemArg,
        /// A transcoding table of local codes (TSV) instead of the one shipped.
        #[arg(long, env = "BIOVIEWER_TRANSCODING")]
        transcoding: Option<PathBuf>,
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Write generated CR-BIO documents: fictitious patients with clinical stories, seen over
    /// the years by laboratories with their own habits (one folder per patient INS); reports
    /// before 2021 name the patient by the INS-C, and `identities.tsv` maps each INS-C to its INS.
    DemoData {
        #[arg(long, default_value_t = 6)]
        patients: usize,
        #[arg(long, default_value_t = 10)]
        years: u32,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Serve a DMP simulator (XDS.b registry + repository) for the CDA documents of a folder.
    DmpSim {
        #[arg(long)]
        corpus: PathBuf,
        #[arg(long, default_value = "127.0.0.1:3100")]
        listen: std::net::SocketAddr,
        /// Added latency per answer, in milliseconds.
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
        /// Every n-th request fails with a SOAP Receiver fault (0: never).
        #[arg(long, default_value_t = 0)]
        fail_every: u64,
        /// Every answer is a SOAP fault.
        #[arg(long)]
        soap_fault: bool,
        /// MTOM answers are cut in half.
        #[arg(long)]
        truncate_mtom: bool,
        /// Answers trickle in 256-byte chunks this many milliseconds apart.
        #[arg(long)]
        drip_ms: Option<u64>,
        /// The registry lists every entry twice (two entryUUIDs, one uniqueId).
        #[arg(long)]
        duplicate_entries: bool,
        /// The repository alters one byte of one document (it no longer matches its entry's hash).
        #[arg(long)]
        corrupt_one: bool,
    },
    /// Sync one patient from the DMP into the store, on behalf of a professional's account.
    Sync {
        /// The patient's INS (15 digits).
        #[arg(long)]
        patient: String,
        /// The INS's OID; when given, it must be the one Bioviewer knows the patient by.
        #[arg(long)]
        ins_oid: Option<String>,
        /// The professional (login) on whose behalf the VIHF is signed. The same rules as on the
        /// web decide: a care relationship (or a prescription), else `--break-glass`.
        #[arg(long = "as")]
        as_login: String,
        /// Open a break-the-glass access (recorded, shown to the patient) and sync in
        /// bris_de_glace mode; needs `--reason`.
        #[arg(long, requires = "reason")]
        break_glass: bool,
        /// Why the glass is broken (15 characters at least).
        #[arg(long)]
        reason: Option<String>,
        /// How long the break-the-glass access lasts.
        #[arg(long, default_value_t = 60)]
        minutes: u64,
        #[command(flatten)]
        dmp: crate::config::DmpArgs,
    },
    /// Accounts and care relationships (the administrator's tools on the command line).
    Accounts {
        #[command(subcommand)]
        command: AccountsCommand,
    },
    /// Systems of the care team that read the FHIR API with a bearer token.
    FhirClients {
        #[command(subcommand)]
        command: FhirClientsCommand,
    },
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Unit tools for laboratory staff.
    Units {
        #[command(subcommand)]
        command: UnitsCommand,
    },
    /// Write a consistent copy of the live SQLite database to a new FILE (the server may keep
    /// running). The audit key and checkpoint files are kept outside the database on purpose:
    /// back them up separately (docs/deploy.md).
    Backup { file: PathBuf },
    /// Copy a whole installation into a new, empty database (an SQLite installation moved to
    /// PostgreSQL): every table, every row, in one transaction; then the audit chain is verified
    /// on the target with the audit key (`--audit-key-file`). Refuses a target that holds rows.
    CopyStore {
        /// The database to copy (`sqlite://...` or `postgres://...`).
        #[arg(long)]
        from: String,
        /// The new database (`postgres://...` or `sqlite://...`); its schema is created.
        #[arg(long)]
        to: String,
    },
    /// Patients' identities, for the operator.
    Patients {
        #[command(subcommand)]
        command: PatientsCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum PatientsCommand {
    /// Print the identity alerts (one JSON object per line, newest first): a document naming a
    /// patient's INS number under another INS authority, or with another birth date or sex, or
    /// an identity set again by a more trusted source. Ids, OIDs and field names only.
    Alerts,
    /// Link two records of one person (an INS record and an INS-C record): each then shows the
    /// documents of both. Recorded in both records' access logs.
    Link {
        /// One record's identifier: INS, INS-C or ROOT^VALUE.
        #[arg(long)]
        record: String,
        /// The other record's identifier.
        #[arg(long = "with")]
        with: String,
    },
    /// Undo a link between two records.
    Unlink {
        #[arg(long)]
        record: String,
        #[arg(long = "with")]
        with: String,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum UnitSystemArg {
    Si,
    Conventional,
}

#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// Create an account. The password is read from BIOVIEWER_NEW_PASSWORD or standard input.
    Add {
        #[arg(long)]
        login: String,
        /// professional, patient or admin.
        #[arg(long)]
        role: String,
        #[arg(long)]
        name: String,
        /// Professionals: national id as ROOT^EXTENSION (RPPS).
        #[arg(long)]
        rpps: Option<String>,
        #[arg(long)]
        profession: Option<String>,
        #[arg(long)]
        structure: Option<String>,
        /// Patients: the INS of their record.
        #[arg(long)]
        patient_ins: Option<String>,
    },
    /// Record a care relationship between a professional and a patient.
    Relate {
        #[arg(long)]
        login: String,
        #[arg(long)]
        patient_ins: String,
        /// attending_gp or hospital_stay.
        #[arg(long)]
        kind: String,
        /// Ends after this many days (default: until ended).
        #[arg(long)]
        days: Option<u32>,
    },
    /// Create the demo accounts (a GP, a hospital clinician, a patient, an administrator) and
    /// their care relationships with the demo patients, then print the logins. Idempotent.
    Demo,
}

#[derive(Debug, Subcommand)]
pub enum FhirClientsCommand {
    /// Issue a bearer token to a named system, reading on behalf of a professional account (it
    /// sees that professional's patients, never by break-the-glass). The token is printed once;
    /// only its SHA-256 is kept.
    Add {
        /// The system's name, as the audit trail records it.
        #[arg(long)]
        name: String,
        /// The professional account it reads on behalf of.
        #[arg(long = "as")]
        as_login: String,
        /// The only scope granted: patient/*.read.
        #[arg(long, default_value = "patient/*.read")]
        scope: String,
        /// Expires after this many days (at most 730).
        #[arg(long, default_value_t = 365)]
        days: u32,
    },
    /// Revoke a system's token at once.
    Revoke {
        #[arg(long)]
        name: String,
    },
    /// List the systems (names, accounts, scopes, expiry; never tokens).
    List,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the audit trail's keyed hash chain and the checkpoint file; names the first bad
    /// record (exit 1) or prints the head as SEQ:HASH.
    Verify {
        /// The head noted earlier (SEQ:HASH): fails unless the chain still ends on that record
        /// (a cut-off tail, or records added since).
        #[arg(long)]
        expect_head: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum UnitsCommand {
    /// Convert a value: prints {"value", "unit", "rule"} as JSON, or exits 1 with the reason.
    Convert {
        value: String,
        from: String,
        to: String,
        /// Molar mass in g/mol, for mass <-> substance.
        #[arg(long, conflicts_with = "analyte")]
        molar_mass: Option<f64>,
        /// An analyte of the catalogue (its molar mass, or HbA1c's master equation).
        #[arg(long)]
        analyte: Option<String>,
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
            let database = open_database(&cli.common).await?;
            let access =
                Arc::new(open_access_with(&cli.common, database.db().clone(), serve.access_settings(), serve.allow_broken_audit).await?);
            // The whole chain is read before serving: a server over a broken trail would add
            // records nobody can trust (about a second per million records).
            check_audit_at_start(&access, &cli.common.audit_checkpoint_file(), serve.allow_broken_audit).await?;
            // A quiet trail is checkpointed too: its head goes out every few minutes.
            let checkpointing = access.clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(AUDIT_CHECKPOINT_INTERVAL);
                loop {
                    every.tick().await;
                    if let Err(e) = checkpointing.checkpoint().await {
                        tracing::error!(error = %e, "the audit checkpoint could not be read");
                    }
                }
            });
            let store: Arc<dyn Store> = Arc::new(database);
            let dmp = match (&serve.dmp_simulator, &serve.dmp.dmp_endpoint) {
                (Some(folder), _) => {
                    let (simulator, skipped) = crate::dmp::simulator::Simulator::from_folder(folder, Default::default())
                        .map_err(|e| format!("cannot read {}: {e}", folder.display()))?;
                    let count = simulator.documents().len();
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
                    let address = listener.local_addr().map_err(|e| e.to_string())?;
                    tokio::spawn(async move {
                        if let Err(e) = axum::serve(listener, Arc::new(simulator).router()).await {
                            tracing::error!(error = %e, "the DMP simulator stopped");
                        }
                    });
                    tracing::info!(documents = count, skipped, %address, "DMP simulator started");
                    Some(serve.dmp.client(format!("http://{address}/dmp"))?)
                }
                (None, Some(endpoint)) => Some(serve.dmp.client(endpoint.clone())?),
                (None, None) => None,
            };
            let normaliser = std::sync::Arc::new(
                crate::history::Normaliser::load(serve.transcoding.as_deref())
                    .map_err(|e| e.to_string())?
                    .with_cache_capacity(serve.history_cache),
            );
            let dmp = dmp.map(|client| Arc::new(crate::dmp::sync::DmpService::new(client, store.clone()).warming(normaliser.clone())));
            let oidc = match serve.oidc_settings()? {
                Some(settings) => Some(Arc::new(crate::oidc::Oidc::new(settings).map_err(|e| e.to_string())?)),
                None => None,
            };
            let listener =
                tokio::net::TcpListener::bind(serve.listen).await.map_err(|e| format!("cannot listen on {}: {e}", serve.listen))?;
            let address = listener.local_addr().map_err(|e| e.to_string())?;
            println!("Bioviewer is listening on http://{address}");
            let app = crate::http::router_in_zone(store, normaliser, access, oidc, dmp, &serve.site_root, serve.time_zone);
            let header_read_timeout = std::time::Duration::from_secs(serve.header_read_timeout_secs.max(1));
            crate::http::serve(listener, app, header_read_timeout).await.map_err(|e| e.to_string())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Import { paths } => {
            let store = open_store(&cli.common).await?;
            let files = collect_files(&paths)?;
            let mut failures = 0;
            for file in files {
                // The identity mapping `demo-data` writes beside its documents is not a document.
                if file.file_name().is_some_and(|n| n == bioviewer_core::demo::IDENTITIES_FILE) {
                    eprintln!("{}: skipped (the demo's INS-C → INS mapping, not a document)", file.display());
                    continue;
                }
                let name = file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
                let outcome = match std::fs::read(&file) {
                    Ok(raw) => import_bytes(store.as_ref(), &name, raw, DocumentSource::Operator).await.map_err(|e| e.to_string()),
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
        Command::Backup { file } => {
            let database = open_database(&cli.common).await?;
            database.backup_into(&file).await.map_err(|e| e.to_string())?;
            let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
            println!("backup written to {} ({size} bytes); back up the audit key and checkpoint files beside it", file.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::CopyStore { from, to } => {
            // Without the key the chain was written with, the copy could not be vouched for.
            let key = crate::access::audit_files::load_key(&cli.common.audit_key_file(), false).map_err(|e| e.to_string())?;
            if let Some(path) = from.strip_prefix("sqlite://")
                && !std::path::Path::new(path.split('?').next().unwrap_or(path)).exists()
            {
                return Err(format!("no SQLite database at {path}"));
            }
            let source = SqlStore::open(&from).await.map_err(|e| e.to_string())?;
            let target = SqlStore::open(&to).await.map_err(|e| e.to_string())?;
            let report = crate::store::copy::copy_store(source.db(), target.db()).await.map_err(|e| e.to_string())?;
            for (table, rows) in &report {
                println!("{table}: {rows} rows");
            }
            let settings = crate::access::AccessSettings { audit_key: Some(key.key), ..Default::default() };
            let access = crate::access::Access::new(target.db().clone(), settings).map_err(|e| e.to_string())?;
            match access.verify_audit().await.map_err(|e| e.to_string())? {
                Ok(head) => {
                    println!(
                        "copied to {}; audit trail intact there: {} records, head {}",
                        crate::store::db::redact(&to),
                        head.records,
                        head.as_expected()
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(bad) => {
                    println!("copied, but the audit trail does NOT verify on the target at record {}: {bad}", bad.first_bad_record());
                    Ok(ExitCode::FAILURE)
                }
            }
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
        Command::Normalize { patient, unit_system, transcoding, paths } => normalize_command(patient, unit_system, transcoding, &paths),
        Command::Units { command } => units_command(command),
        Command::Patients { command: PatientsCommand::Link { record, with } } => link_command(&cli.common, &record, &with, true).await,
        Command::Patients { command: PatientsCommand::Unlink { record, with } } => link_command(&cli.common, &record, &with, false).await,
        Command::Patients { command: PatientsCommand::Alerts } => {
            let store = open_store(&cli.common).await?;
            let alerts = store.identity_alerts().await.map_err(|e| e.to_string())?;
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            for alert in &alerts {
                writeln!(out, "{}", serde_json::to_string(alert).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
            }
            if alerts.is_empty() {
                eprintln!("no identity alert");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Accounts { command } => accounts_command(&cli.common, command).await,
        Command::FhirClients { command } => fhir_clients_command(&cli.common, command).await,
        Command::DmpSim { corpus, listen, latency_ms, fail_every, soap_fault, truncate_mtom, drip_ms, duplicate_entries, corrupt_one } => {
            let faults = crate::dmp::simulator::Faults {
                latency: std::time::Duration::from_millis(latency_ms),
                fail_every,
                always_fault: soap_fault,
                truncate_mtom,
                drip: drip_ms.map(std::time::Duration::from_millis),
                duplicate_entries,
                corrupt_one,
            };
            let (simulator, skipped) = crate::dmp::simulator::Simulator::from_folder(&corpus, faults)
                .map_err(|e| format!("cannot read {}: {e}", corpus.display()))?;
            let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| format!("cannot listen on {listen}: {e}"))?;
            println!(
                "DMP simulator: {} documents ({skipped} files skipped), http://{}/dmp/registry and /dmp/repository",
                simulator.documents().len(),
                listener.local_addr().map_err(|e| e.to_string())?
            );
            axum::serve(listener, Arc::new(simulator).router()).await.map_err(|e| e.to_string())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Sync { patient, ins_oid, as_login, break_glass, reason, minutes, dmp } => {
            let endpoint = dmp.dmp_endpoint.clone().ok_or("--dmp-endpoint (or BIOVIEWER_DMP_ENDPOINT) is required")?;
            let client = dmp.client(endpoint)?;
            let database = open_database(&cli.common).await?;
            let access = open_access_with(&cli.common, database.db().clone(), crate::access::AccessSettings::default(), false).await?;
            let request = SyncRequest {
                patient_ins: patient,
                ins_oid,
                as_login,
                break_glass: break_glass.then(|| (reason.unwrap_or_default(), std::time::Duration::from_secs(minutes.saturating_mul(60)))),
            };
            let report = sync_on_behalf(&access, &database, &client, &request, &mut |r| {
                eprintln!(
                    "found {} (replaced {}), already stored {}, fetched {}, stored {}, failed {}",
                    r.found,
                    r.deprecated,
                    r.already_stored,
                    r.fetched,
                    r.stored,
                    r.failed.len()
                );
            })
            .await
            .map_err(|e| e.to_string())?;
            println!("{}", serde_json::to_string(&report).map_err(|e| e.to_string())?);
            Ok(if report.failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Audit { command: AuditCommand::Verify { expect_head } } => {
            let expected = match expect_head.as_deref() {
                Some(text) => Some(
                    crate::access::audit::parse_expected_head(text)
                        .ok_or("--expect-head takes SEQ:HASH, as `audit verify` prints the head")?,
                ),
                None => None,
            };
            // Verification never creates a key: without the one the chain was written with, it
            // cannot vouch for anything.
            let key = crate::access::audit_files::load_key(&cli.common.audit_key_file(), false).map_err(|e| e.to_string())?;
            let checkpoint_file = cli.common.audit_checkpoint_file();
            let checkpoints = crate::access::audit_files::read_checkpoints(&checkpoint_file).map_err(|e| e.to_string())?;
            let database = open_database(&cli.common).await?;
            let settings = crate::access::AccessSettings { audit_key: Some(key.key), ..Default::default() };
            let access = crate::access::Access::new(database.db().clone(), settings).map_err(|e| e.to_string())?;
            let verified = access
                .verify_audit_against(&checkpoints, expected.as_ref().map(|(seq, hash)| (*seq, hash.as_str())))
                .await
                .map_err(|e| e.to_string())?;
            match verified {
                Ok(head) => {
                    println!(
                        "audit trail intact: {} records, {} checkpoints of {} found in it; head {}",
                        head.records,
                        checkpoints.len(),
                        checkpoint_file.display(),
                        head.as_expected()
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(bad) => {
                    println!("audit trail BROKEN at record {}: {bad}", bad.first_bad_record());
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::DemoData { patients, years, out, seed } => demo_data_command(patients, years, &out, seed),
    }
}

/// `bioviewer sync`: one patient, on behalf of a professional's account.
#[derive(Debug, Clone)]
pub struct SyncRequest {
    pub patient_ins: String,
    /// When given, the INS OID must be the one Bioviewer knows the patient by.
    pub ins_oid: Option<String>,
    pub as_login: String,
    /// `--break-glass --reason R --minutes M`: the reason and the duration.
    pub break_glass: Option<(String, std::time::Duration)>,
}

/// Why `bioviewer sync` did not sync.
#[derive(Debug, thiserror::Error)]
pub enum SyncCommandError {
    #[error("no account {0}")]
    UnknownAccount(String),
    #[error("only an active professional's account may sync from the DMP")]
    NotAProfessional,
    #[error("this account has no national id or profession the VIHF can state")]
    NoVihfIdentity,
    #[error(transparent)]
    Refused(crate::dmp::client::ReadRefusal),
    /// As on the web, "no such patient" and "not yours" are one answer.
    #[error("this account may not see this patient (no care relationship); use --break-glass --reason \"...\" in an emergency")]
    NoAccess,
    #[error("break-the-glass refused: {0}")]
    BreakGlass(#[from] crate::access::BreakGlassError),
    #[error(transparent)]
    Access(#[from] crate::access::AccessError),
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Dmp(#[from] crate::dmp::client::DmpError),
    #[error("a sync of this patient is running (on a server instance or another command); try again when it is over")]
    RunningElsewhere,
}

/// Syncs one patient from the DMP for an account, through the web's access decision
/// (`Access::open_patient`): a care relationship, a prescription, or a break-the-glass access
/// opened here with its reason (`Access::start_break_glass`). The audit trail records the sync
/// with the patient and the mode, or the refusal; nothing is asked of the DMP when refused.
pub async fn sync_on_behalf(
    access: &crate::access::Access,
    store: &dyn Store,
    client: &crate::dmp::client::DmpClient,
    request: &SyncRequest,
    progress: &mut (dyn FnMut(&crate::dmp::sync::SyncReport) + Send),
) -> Result<crate::dmp::sync::SyncReport, SyncCommandError> {
    use crate::access::{Action, Principal, Refusal, Role};
    let account =
        access.account_by_login(&request.as_login).await?.ok_or_else(|| SyncCommandError::UnknownAccount(request.as_login.clone()))?;
    if account.role != Role::Professional || account.disabled {
        return Err(SyncCommandError::NotAProfessional);
    }
    let requester = crate::dmp::client::Requester::for_reading(&account, client.is_simulator()).map_err(|refusal| match refusal {
        crate::dmp::client::ReadRefusal::NoProfessionalIdentity => SyncCommandError::NoVihfIdentity,
        refused @ crate::dmp::client::ReadRefusal::PasswordSignIn => SyncCommandError::Refused(refused),
    })?;
    if requester.authentication_mode == crate::dmp::client::INDIRECT {
        eprintln!("a password account: allowed against the local simulator only (the DMP refuses INDIRECTE for reading)");
    }
    let principal = Principal::command_line(account);
    if let Some((reason, duration)) = &request.break_glass {
        access.start_break_glass(&principal, &request.patient_ins, reason, *duration, false).await?;
    }
    // An unknown INS goes through the gate too (as the nil id): refused and recorded alike.
    let patient = access.patient_by_ins(&request.patient_ins).await?.map(|p| p.to_string()).unwrap_or_default();
    let (patient, mode) = match access.open_patient(Some(&principal), &patient, Action::Sync).await {
        Ok(granted) => granted,
        Err(Refusal::NotSignedIn | Refusal::NoAccess | Refusal::Throttled) => return Err(SyncCommandError::NoAccess),
        Err(Refusal::Failed(e)) => return Err(e.into()),
    };
    let record = store.patient(patient).await?.ok_or(SyncCommandError::NoAccess)?;
    if request.ins_oid.as_ref().is_some_and(|oid| *oid != record.ins_root) {
        return Err(SyncCommandError::NoAccess);
    }
    let query =
        crate::dmp::client::PatientQuery { ins: record.ins, ins_oid: record.ins_root, purpose: crate::dmp::vihf::PurposeOfUse::of(mode) };
    // Not while a server instance syncs this patient (an explicit command may follow a recent
    // sync at once); progress is shared with the instances' pages as theirs is.
    let holder = format!("command-line {}", uuid::Uuid::new_v4());
    if !crate::dmp::sync::take_lease(store, patient, &holder, std::time::Duration::ZERO).await {
        return Err(SyncCommandError::RunningElsewhere);
    }
    let latest = crate::dmp::sync::LatestReport::default();
    let shared = latest.clone();
    let mut on_progress = move |report: &crate::dmp::sync::SyncReport| {
        shared.set(report);
        progress(report);
    };
    let sync = crate::dmp::sync::sync_patient(client, store, &requester, &query, &mut on_progress);
    let result = crate::dmp::sync::holding_lease(store, patient, &holder, &latest, sync).await;
    crate::dmp::sync::finish(store, patient, &holder, &result).await;
    Ok(result?)
}

fn normalize_command(
    patient: Option<String>,
    unit_system: UnitSystemArg,
    transcoding: Option<PathBuf>,
    paths: &[PathBuf],
) -> Result<ExitCode, String> {
    use bioviewer_core::catalogue::{Catalogue, EMBEDDED_TRANSCODING, Transcoding, UnitSystem};
    use bioviewer_core::normalise::{InputDocument, Options, normalise};
    let catalogue = Catalogue::embedded();
    let table = match &transcoding {
        Some(path) => std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        None => EMBEDDED_TRANSCODING.to_string(),
    };
    let transcoding = Transcoding::from_tsv(&table, &catalogue).map_err(|e| format!("transcoding table: {e}"))?;
    let files = collect_files(paths)?;
    let parsed: Vec<(String, Result<bioviewer_core::cda::Report, String>)> = files
        .iter()
        .map(|f| {
            let name = f.display().to_string();
            let report = std::fs::read(f)
                .map_err(|e| format!("cannot read the file: {e}"))
                .and_then(|raw| bioviewer_core::cda::parse(&raw).map_err(|e| e.to_string()));
            (name, report)
        })
        .collect();
    let inputs: Vec<InputDocument<'_>> = parsed
        .iter()
        .map(|(name, r)| InputDocument {
            id: name.clone(),
            report: r.as_ref().map_err(Clone::clone),
            // Files named on the command line: the operator's.
            provenance: bioviewer_core::normalise::Provenance::Operator,
        })
        .collect();
    let options = Options {
        patient_ins: patient,
        patient: None,
        known_identifiers: Vec::new(),
        unit_system: match unit_system {
            UnitSystemArg::Si => UnitSystem::Si,
            UnitSystemArg::Conventional => UnitSystem::Conventional,
        },
    };
    let history = normalise(&inputs, &catalogue, &transcoding, &options);
    let out = std::io::stdout().lock();
    serde_json::to_writer_pretty(out, &history).map_err(|e| e.to_string())?;
    println!();
    Ok(ExitCode::SUCCESS)
}

fn demo_data_command(patients: usize, years: u32, out: &Path, seed: u64) -> Result<ExitCode, String> {
    let today = chrono::Utc::now().timestamp() / 86_400;
    // The reports of the INS-C era as laboratories wrote them then (the INS from 2021), and
    // which INS each INS-C belongs to, for the DMP simulator serving this folder.
    let documents = bioviewer_core::demo::generate_with_legacy_identifiers(patients, years, seed, today);
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let identities = out.join(bioviewer_core::demo::IDENTITIES_FILE);
    std::fs::write(&identities, bioviewer_core::demo::identities_tsv(patients))
        .map_err(|e| format!("cannot write {}: {e}", identities.display()))?;
    for d in &documents {
        let folder = out.join(&d.patient);
        std::fs::create_dir_all(&folder).map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
        let path = folder.join(&d.file_name);
        std::fs::write(&path, bioviewer_core::cda::writer::write_cr_bio(&d.report))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    println!("{} documents for {patients} patients written to {}", documents.len(), out.display());
    Ok(ExitCode::SUCCESS)
}

fn units_command(command: UnitsCommand) -> Result<ExitCode, String> {
    use bioviewer_core::catalogue::Catalogue;
    use bioviewer_core::cda::Decimal;
    use bioviewer_core::units;
    let UnitsCommand::Convert { value, from, to, molar_mass, analyte } = command;
    let Some(number) = Decimal::parse(&value) else {
        eprintln!("bioviewer: {value:?} is not a number");
        return Ok(ExitCode::FAILURE);
    };
    let catalogue = Catalogue::embedded();
    let analyte = match analyte.as_deref().map(|id| catalogue.by_id(id).ok_or(id)) {
        None => None,
        Some(Ok(a)) => Some(a),
        Some(Err(id)) => {
            eprintln!("bioviewer: no analyte {id:?} in the catalogue");
            return Ok(ExitCode::FAILURE);
        }
    };
    // The same code path as the normaliser: HbA1c by its master equation, others by units.
    let result = match analyte {
        Some(a) if a.is_hba1c() => units::convert_hba1c(&number, &from, &to),
        Some(a) => units::convert(&number, &from, &to, a.molar_mass),
        None => units::convert(&number, &from, &to, molar_mass),
    };
    match result {
        Ok(converted) => {
            println!(
                "{}",
                serde_json::json!({"value": converted.value.as_str(), "unit": converted.unit, "rule": converted.rule.to_string()})
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("bioviewer: refused: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn open_database(common: &CommonSettings) -> Result<SqlStore, String> {
    let url = common.database_url();
    if url.starts_with("sqlite://") && !url.contains(":memory:") {
        std::fs::create_dir_all(&common.data_dir)
            .map_err(|e| format!("cannot create the data folder {}: {e}", common.data_dir.display()))?;
    }
    SqlStore::open(&url).await.map_err(|e| e.to_string())
}

/// `bioviewer patients link|unlink`: the operator's link between two records of one person.
async fn link_command(common: &CommonSettings, record: &str, with: &str, link: bool) -> Result<ExitCode, String> {
    let database = open_database(common).await?;
    let access = open_access_with(common, database.db().clone(), crate::access::AccessSettings::default(), false).await?;
    let store = database;
    let mut records = Vec::new();
    for typed in [record, with] {
        let identifier =
            crate::store::PatientIdentifier::parse(typed).ok_or_else(|| format!("{typed:?} is not an INS, an INS-C or ROOT^VALUE"))?;
        let found = store.patient_by_identifier(identifier).await.map_err(|e| e.to_string())?;
        records.push(found.ok_or_else(|| format!("no record is known by {typed}"))?);
    }
    let (a, b) = (records[0], records[1]);
    let changed = access.link_records(&store, crate::access::LinkActor::Operator, a, b, link).await.map_err(|e| e.to_string())?;
    println!(
        "{}",
        match (link, changed) {
            (true, true) => "linked",
            (true, false) => "already linked",
            (false, true) => "unlinked",
            (false, false) => "not linked",
        }
    );
    Ok(ExitCode::SUCCESS)
}

async fn open_store(common: &CommonSettings) -> Result<Arc<dyn Store>, String> {
    Ok(Arc::new(open_database(common).await?))
}

async fn open_access(common: &CommonSettings) -> Result<crate::access::Access, String> {
    let database = open_database(common).await?;
    open_access_with(common, database.db().clone(), crate::access::AccessSettings::default(), false).await
}

/// How often the server writes the audit head to the checkpoint file when it has moved.
const AUDIT_CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// The access service with the audit key of its file (created at first start) and the
/// checkpoint file. A key just created seals the chain so far (see
/// [`crate::access::Access::seal_with_new_key`]); if that chain does not verify, only
/// `allow_broken` goes on (the start-up check then raises the alarm).
async fn open_access_with(
    common: &CommonSettings,
    db: crate::store::db::Db,
    mut settings: crate::access::AccessSettings,
    allow_broken: bool,
) -> Result<crate::access::Access, String> {
    let loaded = crate::access::audit_files::load_key(&common.audit_key_file(), true).map_err(|e| e.to_string())?;
    settings.audit_key = Some(loaded.key);
    settings.audit_checkpoints = Some(common.audit_checkpoint_file());
    let access = crate::access::Access::new(db, settings).map_err(|e| e.to_string())?;
    if loaded.created {
        match access.seal_with_new_key().await.map_err(|e| e.to_string())? {
            Ok(_) => {}
            Err(bad) if allow_broken => {
                tracing::error!(first_bad_record = bad.first_bad_record(), "a new audit key over a broken trail: {bad}")
            }
            Err(bad) => {
                return Err(format!(
                    "a new audit key was created at {}, but the audit trail does not verify with it (was the key file lost?): {bad}",
                    common.audit_key_file().display()
                ));
            }
        }
    }
    Ok(access)
}

/// The check before serving: the chain verifies with the key and holds every checkpoint of the
/// checkpoint file. Otherwise the server refuses to start, unless `allow_broken`: then it starts,
/// logs the break as an error and records an alarm the administration page shows.
pub async fn check_audit_at_start(access: &crate::access::Access, checkpoint_file: &Path, allow_broken: bool) -> Result<(), String> {
    let checkpoints = match crate::access::audit_files::read_checkpoints(checkpoint_file) {
        Ok(checkpoints) => checkpoints,
        Err(e) if allow_broken => {
            tracing::error!(error = %e, "the audit checkpoints cannot be read; starting anyway (--allow-broken-audit)");
            Vec::new()
        }
        Err(e) => return Err(format!("{e}; refusing to start (look into it, then start with --allow-broken-audit to serve anyway)")),
    };
    match access.verify_audit_against(&checkpoints, None).await.map_err(|e| format!("the audit trail cannot be read: {e}"))? {
        Ok(head) => {
            tracing::info!(records = head.records, seq = head.last_seq, head = %head.last_hash, "audit trail verified");
            // Someone with the database dropped the append-only triggers: the chain may still verify
            // (nothing rewritten yet), but the trail is no longer protected.
            let missing = access.append_only_missing().await.map_err(|e| e.to_string())?;
            if !missing.is_empty() {
                if !allow_broken {
                    return Err(format!(
                        "the audit trail's append-only triggers were removed ({}); refusing to start (look into it, then start with \
                         --allow-broken-audit to put them back and serve)",
                        missing.join(", ")
                    ));
                }
                tracing::error!(missing = ?missing, "ALARM: the audit trail's append-only triggers were removed; putting them back");
                access.restore_append_only().await.map_err(|e| e.to_string())?;
            }
            access.checkpoint().await.map_err(|e| e.to_string())
        }
        Err(bad) if allow_broken => access.alarm_broken_chain(&bad).await.map_err(|e| e.to_string()),
        Err(bad) => Err(format!(
            "the audit trail is broken at record {}: {bad}; refusing to start (look into it with `bioviewer audit verify`, \
             then start with --allow-broken-audit to serve anyway, with an alarm)",
            bad.first_bad_record()
        )),
    }
}

async fn accounts_command(common: &CommonSettings, command: AccountsCommand) -> Result<ExitCode, String> {
    use crate::access::{NewAccount, Role};
    let access = open_access(common).await?;
    match command {
        AccountsCommand::Add { login, role, name, rpps, profession, structure, patient_ins } => {
            let role = Role::parse(&role).ok_or("the role is professional, patient or admin")?;
            let password = match std::env::var("BIOVIEWER_NEW_PASSWORD") {
                Ok(p) => p,
                Err(_) => {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line).map_err(|e| e.to_string())?;
                    line.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            let new = NewAccount {
                login,
                password: Some(password),
                role,
                display_name: name,
                rpps,
                profession,
                structure_id: None,
                structure_name: structure,
                patient_ins,
            };
            let id = access.create_account(crate::access::AdminActor::Operator, new).await.map_err(|e| e.to_string())?;
            println!("account {id} created");
        }
        AccountsCommand::Relate { login, patient_ins, kind, days } => {
            access
                .add_relationship(crate::access::AdminActor::Operator, &login, &patient_ins, &kind, days)
                .await
                .map_err(|e| e.to_string())?;
            println!("care relationship recorded");
        }
        AccountsCommand::Demo => demo_accounts(&access).await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn fhir_clients_command(common: &CommonSettings, command: FhirClientsCommand) -> Result<ExitCode, String> {
    use crate::access::{AdminActor, fhir_clients::NewFhirClient};
    let access = open_access(common).await?;
    match command {
        FhirClientsCommand::Add { name, as_login, scope, days } => {
            let new = NewFhirClient { name: &name, login: &as_login, scope: &scope, days };
            let token = access.issue_fhir_client(AdminActor::Operator, new).await.map_err(|e| e.to_string())?;
            // The only time the token is shown: standard output, for the operator to hand over.
            println!("{token}");
        }
        FhirClientsCommand::Revoke { name } => {
            if !access.revoke_fhir_client(AdminActor::Operator, &name).await.map_err(|e| e.to_string())? {
                return Err(format!("no active FHIR client named {name:?}"));
            }
            println!("revoked");
        }
        FhirClientsCommand::List => {
            for c in access.fhir_clients(AdminActor::Operator).await.map_err(|e| e.to_string())? {
                let line =
                    serde_json::json!({"name": c.name, "as": c.login, "scope": c.scope, "expires_at": c.expires_at, "revoked": c.revoked});
                println!("{line}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The demo accounts `make run` prints. Their passwords are public: demo data only.
pub const DEMO_ACCOUNTS: [(&str, &str, &str); 4] = [
    ("medecin", "demo-medecin-2026", "Dr Sophie DURAND, médecin généraliste (patients MARTIN, BERNARD; prescriptrice pour PETIT)"),
    ("hopital", "demo-hopital-2026", "Dr Karim BENALI, CHU (séjour en cours : ROUX, et la patiente des exemples de l'ANS)"),
    ("patient", "demo-patient-2026", "Claire MARTIN, patiente (son propre dossier)"),
    ("admin", "demo-admin-2026", "Administrateur (comptes et relations de soin, aucun résultat)"),
];

/// The INS of the ANS example documents' fictitious patient.
const ANS_CORPUS_PATIENT_INS: &str = "279035121518989";

async fn demo_accounts(access: &crate::access::Access) -> Result<(), String> {
    use crate::access::{NewAccount, Role};
    use bioviewer_core::demo::{GENERATED_PRESCRIBERS, RPPS_ROOT, patient_ins};
    let professional = |login: &str, password: &str, name: &str, rpps: String, profession: &str, structure: &str| NewAccount {
        login: login.into(),
        password: Some(password.into()),
        role: Role::Professional,
        display_name: name.into(),
        rpps: Some(rpps),
        profession: Some(profession.into()),
        structure_id: None,
        structure_name: Some(structure.into()),
        patient_ins: None,
    };
    let [gp, hospital, patient, admin] = DEMO_ACCOUNTS;
    let accounts = [
        (
            professional(
                gp.0,
                gp.1,
                "Dr Sophie DURAND",
                format!("{RPPS_ROOT}^{}", GENERATED_PRESCRIBERS[0].0),
                "Médecin généraliste",
                "Cabinet médical des Tilleuls",
            ),
            vec![(patient_ins(0), "attending_gp", None), (patient_ins(1), "attending_gp", None)],
        ),
        (
            professional(
                hospital.0,
                hospital.1,
                "Dr Karim BENALI",
                format!("{RPPS_ROOT}^810000000037"),
                "Médecin interniste",
                "CHU de Démo",
            ),
            vec![(patient_ins(3), "hospital_stay", Some(14)), (ANS_CORPUS_PATIENT_INS.to_string(), "hospital_stay", Some(14))],
        ),
        (
            NewAccount {
                login: patient.0.into(),
                password: Some(patient.1.into()),
                role: Role::Patient,
                display_name: "Claire MARTIN".into(),
                rpps: None,
                profession: None,
                structure_id: None,
                structure_name: None,
                patient_ins: Some(patient_ins(0)),
            },
            vec![],
        ),
        (
            NewAccount {
                login: admin.0.into(),
                password: Some(admin.1.into()),
                role: Role::Admin,
                display_name: "Administrateur".into(),
                rpps: None,
                profession: None,
                structure_id: None,
                structure_name: None,
                patient_ins: None,
            },
            vec![],
        ),
    ];
    // Idempotent and completing: an account already there is kept, and every relationship not
    // in force yet is recorded (a first run on a data folder without documents could record
    // none: their patients did not exist yet; `make run` runs this at every start).
    let in_force: Vec<(String, String, String)> = access
        .relationships(crate::access::AdminActor::Operator)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|r| (r.login, r.patient_ins, r.kind))
        .collect();
    for (account, relationships) in accounts {
        let login = account.login.clone();
        if access.account_by_login(&login).await.map_err(|e| e.to_string())?.is_none()
            && let Err(e) = access.create_account(crate::access::AdminActor::Operator, account).await
        {
            // The demo patient may be missing (no demo data loaded): say so, go on; the next run
            // tries again.
            eprintln!("demo account {login} not created yet: {e}");
            continue;
        }
        for (ins, kind, days) in missing_relationships(&login, relationships, &in_force) {
            if let Err(e) = access.add_relationship(crate::access::AdminActor::Operator, &login, &ins, kind, days).await {
                eprintln!("care relationship of {login} not recorded yet: {e}");
            }
        }
    }
    println!("Demo logins (fictitious data only):");
    for (login, password, who) in DEMO_ACCOUNTS {
        println!("  {login:<8} / {password:<18} {who}");
    }
    Ok(())
}

/// The relationships of `login` among `wanted` that are not in force (`in_force`: login,
/// patient INS, kind).
fn missing_relationships<'a>(
    login: &str,
    wanted: Vec<(String, &'a str, Option<u32>)>,
    in_force: &[(String, String, String)],
) -> Vec<(String, &'a str, Option<u32>)> {
    wanted.into_iter().filter(|(ins, kind, _)| !in_force.iter().any(|(l, i, k)| l == login && i == ins && k == kind)).collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_relationships_not_in_force_are_recorded_again() {
        let in_force = vec![("medecin".to_string(), "A".to_string(), "attending_gp".to_string())];
        let wanted = || {
            vec![
                ("A".to_string(), "attending_gp", None),
                ("B".to_string(), "attending_gp", None),
                ("A".to_string(), "hospital_stay", Some(14)),
            ]
        };
        let missing = missing_relationships("medecin", wanted(), &in_force);
        assert_eq!(missing, vec![("B".to_string(), "attending_gp", None), ("A".to_string(), "hospital_stay", Some(14))]);
        assert_eq!(missing_relationships("hopital", wanted(), &in_force).len(), 3, "another account's relationship is not this one's");
    }
}
