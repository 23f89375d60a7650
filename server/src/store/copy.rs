//! `bioviewer copy-store`: an installation moved from one database to another (SQLite to
//! PostgreSQL, when a practice's Bioviewer joins a hospital's), every table, every row, byte for
//! byte; the audit chain is verified on the target afterwards (by the command, with the key).
//!
//! The tables and their columns are listed here, in an order where every row's references are
//! copied before it. A test compares this list with the schema the migrations build, so a new
//! table or column that this list forgets fails the tests rather than being left behind.

use sqlx::any::AnyRow;
use sqlx::{Row, ValueRef};

use super::db::Db;

/// What one column holds, as both databases store it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Integer,
    Bytes,
}

use Kind::{Bytes, Integer, Text};

/// Every table of schema version 13, parents before children.
pub(crate) const TABLES: &[(&str, &[(&str, Kind)])] = &[
    (
        "patients",
        &[
            ("id", Text),
            ("ins_root", Text),
            ("ins", Text),
            ("family_name", Text),
            ("given_names", Text),
            ("birth_date", Text),
            ("sex", Text),
            ("created_at", Text),
            ("updated_at", Text),
            ("identity_source", Text),
        ],
    ),
    (
        "accounts",
        &[
            ("id", Text),
            ("login", Text),
            ("password_hash", Text),
            ("role", Text),
            ("display_name", Text),
            ("rpps", Text),
            ("profession", Text),
            ("structure_id", Text),
            ("structure_name", Text),
            ("patient_id", Text),
            ("oidc_subject", Text),
            ("disabled", Integer),
            ("created_at", Text),
        ],
    ),
    (
        "documents",
        &[
            ("id", Text),
            ("patient_id", Text),
            ("content_sha256", Text),
            ("size_bytes", Integer),
            ("source", Text),
            ("source_name", Text),
            ("cda_id", Text),
            ("set_id", Text),
            ("version_number", Integer),
            ("kind", Text),
            ("report_status", Text),
            ("title", Text),
            ("laboratory", Text),
            ("effective_time", Text),
            ("effective_epoch", Integer),
            ("parse_error", Text),
            ("imported_at", Text),
            ("prescriber_id", Text),
            ("parse_error_code", Text),
            ("uploaded_by", Text),
            ("dmp_entry", Text),
        ],
    ),
    ("document_contents", &[("document_id", Text), ("raw", Bytes)]),
    (
        "sessions",
        &[
            ("token_sha256", Text),
            ("account_id", Text),
            ("csrf_token", Text),
            ("created_at", Integer),
            ("last_seen_at", Integer),
            ("address", Text),
        ],
    ),
    (
        "care_relationships",
        &[
            ("id", Text),
            ("account_id", Text),
            ("patient_id", Text),
            ("kind", Text),
            ("starts_at", Integer),
            ("ends_at", Integer),
            ("created_by", Text),
            ("created_at", Text),
        ],
    ),
    (
        "break_glass",
        &[
            ("id", Text),
            ("account_id", Text),
            ("patient_id", Text),
            ("reason", Text),
            ("started_at", Integer),
            ("expires_at", Integer),
            ("ended_at", Integer),
            ("regulation", Integer),
        ],
    ),
    (
        "audit_events",
        &[
            ("seq", Integer),
            ("at", Text),
            ("actor_id", Text),
            ("actor_role", Text),
            ("patient_id", Text),
            ("action", Text),
            ("mode", Text),
            ("address", Text),
            ("detail", Text),
            ("prev_hash", Text),
            ("hash", Text),
            ("scheme", Text),
        ],
    ),
    ("identity_alerts", &[("id", Text), ("patient_id", Text), ("document_id", Text), ("kind", Text), ("detail", Text), ("at", Text)]),
    ("sign_in_throttle", &[("key", Text), ("failures", Integer), ("last_at", Integer)]),
    ("upload_outcomes", &[("token", Text), ("account_id", Text), ("files_json", Text), ("created_at", Integer)]),
    ("refusal_throttle", &[("account_id", Text), ("refusals", Text), ("blocked_until", Integer)]),
    (
        "fhir_clients",
        &[
            ("id", Text),
            ("name", Text),
            ("account_id", Text),
            ("scope", Text),
            ("token_sha256", Text),
            ("created_at", Integer),
            ("expires_at", Integer),
            ("revoked_at", Integer),
        ],
    ),
    (
        "patient_identifiers",
        &[("authority", Text), ("value", Text), ("patient_id", Text), ("kind", Text), ("learned_from", Text), ("first_seen", Text)],
    ),
    (
        "patient_links",
        &[
            ("id", Text),
            ("patient_a", Text),
            ("patient_b", Text),
            ("linked_by", Text),
            ("linked_at", Text),
            ("unlinked_by", Text),
            ("unlinked_at", Text),
        ],
    ),
    (
        "dmp_syncs",
        &[
            ("patient_id", Text),
            ("holder", Text),
            ("lease_until", Integer),
            ("started_at", Integer),
            ("finished_at", Integer),
            ("succeeded_at", Text),
            ("report_json", Text),
            ("error", Text),
        ],
    ),
    (
        "treatment_targets",
        &[
            ("id", Text),
            ("patient_id", Text),
            ("analyte", Text),
            ("low", Text),
            ("high", Text),
            ("unit", Text),
            ("set_by", Text),
            ("set_at", Text),
            ("ended_by", Text),
            ("ended_at", Text),
        ],
    ),
];

/// The tables copied, in order, with their columns (for the test that keeps the list complete).
pub fn tables() -> &'static [(&'static str, &'static [(&'static str, Kind)])] {
    TABLES
}

/// The schema version [`TABLES`] describes: a copy between databases at another version is
/// refused (apply the same release's migrations to both first).
pub(crate) const SCHEMA_VERSION: i64 = 13;

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("the {which} database is at schema version {found}, this release copies version {SCHEMA_VERSION}")]
    Version { which: &'static str, found: i64 },
    #[error("the target database is not empty ({table} has {rows} rows): copy-store only fills a new database")]
    TargetNotEmpty { table: &'static str, rows: i64 },
    #[error("copying {table}: {source}")]
    Query { table: &'static str, source: sqlx::Error },
    #[error("{table}: {copied} rows copied but {found} found in the target")]
    Count { table: &'static str, copied: i64, found: i64 },
}

/// Rows copied, table by table.
pub type CopyReport = Vec<(&'static str, i64)>;

/// Rows read and written at a time (documents' bytes included: a batch of documents may weigh
/// a few hundred megabytes at worst, never the whole database).
const BATCH: i64 = 200;

async fn schema_version(db: &Db) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success").fetch_one(db.pool()).await
}

async fn count(db: &Db, table: &'static str) -> Result<i64, CopyError> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(db.pool())
        .await
        .map_err(|source| CopyError::Query { table, source })
}

/// Copies every row of `from` into the empty database `to` (both migrated to the same schema
/// version), in one transaction on the target: a copy that fails leaves the target as empty as
/// it was. The counts are compared table by table afterwards.
pub async fn copy_store(from: &Db, to: &Db) -> Result<CopyReport, CopyError> {
    for (which, db) in [("source", from), ("target", to)] {
        let found = schema_version(db).await.map_err(|source| CopyError::Query { table: "_sqlx_migrations", source })?;
        if found != SCHEMA_VERSION {
            return Err(CopyError::Version { which, found });
        }
    }
    for (table, _) in TABLES {
        let rows = count(to, table).await?;
        if rows > 0 {
            return Err(CopyError::TargetNotEmpty { table, rows });
        }
    }
    let mut tx = to.begin_write().await.map_err(|source| CopyError::Query { table: "(begin)", source })?;
    let mut report = Vec::new();
    for (table, columns) in TABLES {
        let names = columns.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ");
        let placeholders = (1..=columns.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
        let insert = format!("INSERT INTO {table} ({names}) VALUES ({placeholders})");
        // Ordered by the table's key (its first column; an identifier's is its authority and value).
        let key = if *table == "patient_identifiers" { "authority, value" } else { columns[0].0 };
        let select = format!("SELECT {names} FROM {table} ORDER BY {key} LIMIT $1 OFFSET $2");
        let mut copied = 0i64;
        loop {
            let rows = sqlx::query(sqlx::AssertSqlSafe(select.clone()))
                .bind(BATCH)
                .bind(copied)
                .fetch_all(from.pool())
                .await
                .map_err(|source| CopyError::Query { table, source })?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                let mut query = sqlx::query(sqlx::AssertSqlSafe(insert.clone()));
                for (index, (_, kind)) in columns.iter().enumerate() {
                    query = bind_column(query, row, index, *kind).map_err(|source| CopyError::Query { table, source })?;
                }
                query.execute(&mut *tx).await.map_err(|source| CopyError::Query { table, source })?;
            }
            copied += rows.len() as i64;
        }
        report.push((*table, copied));
    }
    tx.commit().await.map_err(|source| CopyError::Query { table: "(commit)", source })?;
    for (table, copied) in &report {
        let found = count(to, table).await?;
        if found != *copied {
            return Err(CopyError::Count { table, copied: *copied, found });
        }
    }
    Ok(report)
}

fn bind_column<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    row: &AnyRow,
    index: usize,
    kind: Kind,
) -> Result<sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>, sqlx::Error> {
    let null = row.try_get_raw(index)?.is_null();
    Ok(match kind {
        Kind::Text => query.bind(if null { None } else { Some(row.try_get::<String, _>(index)?) }),
        Kind::Integer => query.bind(if null { None } else { Some(row.try_get::<i64, _>(index)?) }),
        Kind::Bytes => query.bind(if null { None } else { Some(row.try_get::<Vec<u8>, _>(index)?) }),
    })
}

/// The columns of each table of a database, as its own catalogue lists them (for the test that
/// keeps [`TABLES`] complete).
pub async fn schema_columns(db: &Db) -> Result<Vec<(String, Vec<String>)>, sqlx::Error> {
    let tables: Vec<String> = match db.dialect() {
        super::db::Dialect::Sqlite => sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations' ORDER BY name",
        )
        .fetch_all(db.pool())
        .await?,
        super::db::Dialect::Postgres => {
            sqlx::query_scalar(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()
                 AND table_type = 'BASE TABLE' AND table_name <> '_sqlx_migrations' ORDER BY table_name",
            )
            .fetch_all(db.pool())
            .await?
        }
    };
    let mut out = Vec::new();
    for table in tables {
        let columns: Vec<String> = match db.dialect() {
            super::db::Dialect::Sqlite => {
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid")))
                    .fetch_all(db.pool())
                    .await?
            }
            super::db::Dialect::Postgres => {
                sqlx::query_scalar(
                    "SELECT column_name::text FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1
                     ORDER BY ordinal_position",
                )
                .bind(&table)
                .fetch_all(db.pool())
                .await?
            }
        };
        out.push((table, columns));
    }
    Ok(out)
}
