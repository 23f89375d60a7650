//! The database connection every store module shares: SQLite (embedded, the default) or
//! PostgreSQL, through sqlx's `Any` driver.
//!
//! The SQL of the store and access modules is written once, in the part of SQL both databases
//! read alike (`$1` placeholders, `ON CONFLICT`, `RETURNING`, `CASE` rather than two-argument
//! `MIN`/`MAX`...). Where they differ, [`Dialect`] holds one spelling per database: a list of ids
//! passed as one JSON parameter, the append-only triggers of the audit trail, and how a write
//! transaction takes its lock ([`Db::begin_write`]).
//!
//! Writers never lose work: on SQLite a write transaction begins `IMMEDIATE` (it waits for the
//! write lock through the busy timeout instead of failing when it would upgrade later); on
//! PostgreSQL it takes one transaction-scoped advisory lock, so writers queue exactly as on SQLite
//! whatever the number of instances (the audit chain needs its appends in one order anyway), and
//! [`Db::retrying`] runs a write again when PostgreSQL still reports a serialisation failure or a
//! deadlock.

use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{Any, AnyPool, Transaction};

use super::StoreError;

/// The advisory lock every PostgreSQL write transaction takes (an arbitrary number of ours:
/// "BIOV" in ASCII).
const PG_WRITE_LOCK: i64 = 0x4249_4f56;

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// From a database URL (`sqlite:...`, `postgres://...`, `postgresql://...`).
    pub fn of_url(url: &str) -> Option<Dialect> {
        let scheme = url.split(':').next()?.to_ascii_lowercase();
        match scheme.as_str() {
            "sqlite" => Some(Dialect::Sqlite),
            "postgres" | "postgresql" => Some(Dialect::Postgres),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "SQLite",
            Dialect::Postgres => "PostgreSQL",
        }
    }

    /// A subquery of the text values of a JSON array bound as parameter `$n` (one parameter
    /// rather than thousands of placeholders: SQLite caps their number).
    pub(crate) fn json_text_values(self, n: u8) -> String {
        match self {
            Dialect::Sqlite => format!("SELECT value FROM json_each(${n})"),
            Dialect::Postgres => format!("SELECT json_array_elements_text(${n}::json)"),
        }
    }

    /// The query that finds one of the audit trail's append-only triggers by name (`$1`).
    pub(crate) fn find_trigger(self) -> &'static str {
        match self {
            Dialect::Sqlite => "SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = $1",
            Dialect::Postgres => {
                "SELECT 1 FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
                 WHERE c.relname = 'audit_events' AND t.tgname = $1 AND NOT t.tgisinternal"
            }
        }
    }

    /// The statements that put the audit trail's append-only triggers back, as the migrations
    /// created them.
    pub(crate) fn restore_audit_triggers(self) -> &'static [&'static str] {
        match self {
            Dialect::Sqlite => &[
                "CREATE TRIGGER IF NOT EXISTS audit_events_no_update BEFORE UPDATE ON audit_events
                 BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END",
                "CREATE TRIGGER IF NOT EXISTS audit_events_no_delete BEFORE DELETE ON audit_events
                 BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END",
            ],
            Dialect::Postgres => &[
                "CREATE OR REPLACE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
                 FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()",
                "CREATE OR REPLACE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
                 FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()",
            ],
        }
    }

    /// Drops one of the audit trail's triggers (the tests' tampering, as someone with raw
    /// access to the database would).
    pub fn drop_trigger(self, name: &str) -> String {
        match self {
            Dialect::Sqlite => format!("DROP TRIGGER {name}"),
            Dialect::Postgres => format!("DROP TRIGGER {name} ON audit_events"),
        }
    }
}

/// A pool over one database, with its dialect.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    dialect: Dialect,
}

impl Db {
    /// Connects to `url` (`sqlite://path`, `sqlite::memory:`, `postgres://...`), creating an
    /// SQLite file when missing, and applies the pending migrations. On PostgreSQL the migrator
    /// holds an advisory lock while it runs: two instances starting together apply each
    /// migration once.
    pub async fn connect(url: &str) -> Result<Db, StoreError> {
        let open_err = |source| StoreError::Open { url: redact(url), source };
        let dialect = Dialect::of_url(url)
            .ok_or_else(|| open_err(sqlx::Error::Configuration("the database URL must start with sqlite: or postgres://".into())))?;
        install_default_drivers();
        let pool = match dialect {
            Dialect::Sqlite => {
                let in_memory = url.contains(":memory:");
                let url = if in_memory || url.contains("mode=") {
                    url.to_string()
                } else {
                    format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
                };
                // An in-memory database lives as long as its one connection: never open a second.
                AnyPoolOptions::new()
                    .max_connections(if in_memory { 1 } else { 8 })
                    .min_connections(if in_memory { 1 } else { 0 })
                    .idle_timeout(if in_memory { None } else { Some(Duration::from_secs(600)) })
                    .max_lifetime(if in_memory { None } else { Some(Duration::from_secs(3600)) })
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // Foreign keys on; writers queue behind each other for up to 30 s (see
                            // `begin_write`); write-ahead log; documents are read whole and often (a history reads
                            // all of a patient's): memory-mapped reads spare a system call a page.
                            sqlx::raw_sql(
                                "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 30000; PRAGMA journal_mode = WAL;
                                 PRAGMA synchronous = NORMAL; PRAGMA mmap_size = 268435456;",
                            )
                            .execute(&mut *conn)
                            .await?;
                            Ok(())
                        })
                    })
                    .connect(&url)
                    .await
                    .map_err(open_err)?
            }
            Dialect::Postgres => AnyPoolOptions::new()
                .max_connections(16)
                .min_connections(0)
                .acquire_timeout(Duration::from_secs(30))
                .idle_timeout(Some(Duration::from_secs(600)))
                .connect(url)
                .await
                .map_err(open_err)?,
        };
        match dialect {
            Dialect::Sqlite => SQLITE_MIGRATOR.run(&pool).await?,
            Dialect::Postgres => POSTGRES_MIGRATOR.run(&pool).await?,
        }
        Ok(Db { pool, dialect })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Begins a write transaction, holding the database's one write lock until it ends.
    ///
    /// SQLite: `BEGIN IMMEDIATE` takes the write lock at once, waiting for it through the busy
    /// timeout. A plain (deferred) `BEGIN` reads first and upgrades to a writer later; in WAL
    /// mode that upgrade fails at once with SQLITE_BUSY when another connection has written
    /// meanwhile, whatever the busy timeout: concurrent uploads were lost that way.
    /// PostgreSQL: a transaction-scoped advisory lock, released at commit or rollback.
    pub async fn begin_write(&self) -> Result<Transaction<'static, Any>, sqlx::Error> {
        match self.dialect {
            Dialect::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Dialect::Postgres => {
                let mut tx = self.pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(PG_WRITE_LOCK).execute(&mut *tx).await?;
                Ok(tx)
            }
        }
    }
}

/// Whether an error is worth running the whole transaction again: PostgreSQL's serialisation
/// failure or deadlock, SQLite's busy database when its timeout ran out.
pub(crate) fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(e) => {
            let code = e.code();
            matches!(code.as_deref(), Some("40001") | Some("40P01") | Some("5") | Some("517"))
        }
        sqlx::Error::PoolTimedOut => true,
        _ => false,
    }
}

/// How many times a write is tried when the database reports a transient failure.
pub(crate) const WRITE_ATTEMPTS: u32 = 5;

/// Runs `attempt` again (up to [`WRITE_ATTEMPTS`] times, with a short growing pause) while it
/// fails with an error `is_transient` says is worth another try; any other outcome is returned
/// as it is.
pub(crate) async fn retrying<T, E, F, Fut>(mut attempt: F, is_transient: impl Fn(&E) -> bool) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt().await {
            Err(e) if tries < WRITE_ATTEMPTS && is_transient(&e) => {
                tracing::warn!(attempt = tries, "transient database failure, trying the write again: {e}");
                tokio::time::sleep(Duration::from_millis(20 * u64::from(tries))).await;
            }
            outcome => return outcome,
        }
    }
}

/// A database URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_names_its_database() {
        assert_eq!(Dialect::of_url("sqlite://data/bioviewer.db"), Some(Dialect::Sqlite));
        assert_eq!(Dialect::of_url("sqlite::memory:"), Some(Dialect::Sqlite));
        assert_eq!(Dialect::of_url("postgres://bv@db/bioviewer"), Some(Dialect::Postgres));
        assert_eq!(Dialect::of_url("postgresql://db/bioviewer"), Some(Dialect::Postgres));
        assert_eq!(Dialect::of_url("mysql://db/bioviewer"), None);
        assert_eq!(Dialect::of_url("data/bioviewer.db"), None);
    }

    #[test]
    fn messages_never_carry_a_database_password() {
        assert_eq!(redact("postgres://bv:s3cret@db:5432/bioviewer"), "postgres://bv:***@db:5432/bioviewer");
        assert_eq!(redact("postgres://bv@db/bioviewer"), "postgres://bv@db/bioviewer");
        assert_eq!(redact("sqlite://data/bioviewer.db"), "sqlite://data/bioviewer.db");
    }

    #[tokio::test]
    async fn a_transient_failure_is_tried_again_and_a_lasting_one_is_reported() {
        use std::sync::atomic::{AtomicU32, Ordering};
        let tries = AtomicU32::new(0);
        // Fails twice with a transient error, then succeeds: the caller sees the success.
        let outcome: Result<&str, String> = retrying(
            || async { if tries.fetch_add(1, Ordering::SeqCst) < 2 { Err("transient".to_string()) } else { Ok("stored") } },
            |e: &String| e == "transient",
        )
        .await;
        assert_eq!((outcome, tries.load(Ordering::SeqCst)), (Ok("stored"), 3));
        // Another error is reported at once, never tried again.
        tries.store(0, Ordering::SeqCst);
        let outcome: Result<(), String> = retrying(
            || async {
                tries.fetch_add(1, Ordering::SeqCst);
                Err("constraint".to_string())
            },
            |e: &String| e == "transient",
        )
        .await;
        assert_eq!((outcome, tries.load(Ordering::SeqCst)), (Err("constraint".to_string()), 1));
        // A failure that lasts is reported after the last attempt.
        tries.store(0, Ordering::SeqCst);
        let outcome: Result<(), String> = retrying(
            || async {
                tries.fetch_add(1, Ordering::SeqCst);
                Err("transient".to_string())
            },
            |e: &String| e == "transient",
        )
        .await;
        assert_eq!((outcome, tries.load(Ordering::SeqCst)), (Err("transient".to_string()), WRITE_ATTEMPTS));
    }
}
