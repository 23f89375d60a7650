//! The embedded SQLite store (WAL mode, foreign keys on, migrations applied at open).

use std::str::FromStr;
use std::time::Duration;

use bioviewer_core::cda::CdaTime;
use sha2::{Digest, Sha256};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use uuid::Uuid;

use super::*;

/// Migrations embedded in the binary, so a deployed server needs no files beside it.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a writer waits for another one before giving up ("database is locked").
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Begins a write transaction. `BEGIN IMMEDIATE` takes the write lock at once, waiting for it
/// through the busy timeout. A plain (deferred) `BEGIN` reads first and upgrades to a writer
/// later; in WAL mode that upgrade fails at once with SQLITE_BUSY when another connection has
/// written meanwhile, whatever the busy timeout: concurrent uploads were lost that way.
pub(crate) async fn begin_write(pool: &SqlitePool) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

/// The columns `document_from_row` reads.
const DOCUMENT_COLUMNS: &str = "id, patient_id, size_bytes, source, source_name, cda_id, set_id, version_number, kind, report_status,
     title, laboratory, effective_time, parse_error, imported_at, prescriber_id, parse_error_code";

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://path` or `sqlite::memory:`) and
    /// applies pending migrations.
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        let open_err = |source| StoreError::Open { url: url.to_string(), source };
        let options = SqliteConnectOptions::from_str(url)
            .map_err(open_err)?
            .create_if_missing(true)
            .foreign_keys(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            // Writers queue behind each other (every write transaction begins IMMEDIATE, see
            // `begin_write`): a burst of uploads waits its turn rather than failing.
            .busy_timeout(BUSY_TIMEOUT)
            // Documents are read whole and often (a history reads all of a patient's): memory-
            // mapped reads spare a system call per page of their bytes.
            .pragma("mmap_size", "268435456");
        let in_memory = url.contains(":memory:");
        // An in-memory database lives as long as its one connection: never open a second one.
        let pool = SqlitePoolOptions::new()
            .max_connections(if in_memory { 1 } else { 8 })
            .min_connections(if in_memory { 1 } else { 0 })
            .idle_timeout(if in_memory { None } else { Some(Duration::from_secs(600)) })
            .max_lifetime(if in_memory { None } else { Some(Duration::from_secs(3600)) })
            .connect_with(options)
            .await
            .map_err(open_err)?;
        MIGRATOR.run(&pool).await?;
        Ok(SqliteStore { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn parse_uuid(s: &str, what: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(s).map_err(|_| StoreError::Corrupt(format!("{what} is not a UUID")))
}

fn patient_from_row(row: &SqliteRow) -> Result<PatientRecord, StoreError> {
    let get = |name: &'static str| row.try_get::<Option<String>, _>(name).map_err(StoreError::query("reading a patient"));
    Ok(PatientRecord {
        id: PatientId(parse_uuid(&row.try_get::<String, _>("id").map_err(StoreError::query("reading a patient"))?, "patient id")?),
        ins_root: get("ins_root")?.unwrap_or_default(),
        ins: get("ins")?.unwrap_or_default(),
        family_name: get("family_name")?,
        given_names: get("given_names")?,
        birth_date: get("birth_date")?.as_deref().and_then(CdaTime::parse_iso),
        sex: get("sex")?.as_deref().and_then(sex_from_str),
        document_count: row.try_get::<i64, _>("document_count").map_err(StoreError::query("reading a patient"))? as u32,
    })
}

fn document_from_row(row: &SqliteRow) -> Result<DocumentRecord, StoreError> {
    let q = StoreError::query("reading a document");
    let text = |name: &'static str| row.try_get::<Option<String>, _>(name).map_err(StoreError::query("reading a document"));
    let id: String = row.try_get("id").map_err(q)?;
    let kind = text("kind")?.as_deref().and_then(kind_from_str);
    let index = match kind {
        None => None,
        Some(kind) => Some(DocumentIndex {
            kind,
            cda_id: text("cda_id")?,
            set_id: text("set_id")?,
            version_number: row
                .try_get::<Option<i64>, _>("version_number")
                .map_err(StoreError::query("reading a document"))?
                .map(|v| v as u32),
            report_status: text("report_status")?.as_deref().and_then(status_from_str),
            title: text("title")?,
            laboratory: text("laboratory")?,
            effective_time: text("effective_time")?.as_deref().and_then(CdaTime::parse_iso),
            prescriber_id: text("prescriber_id")?,
        }),
    };
    Ok(DocumentRecord {
        id: DocumentId(parse_uuid(&id, "document id")?),
        patient_id: text("patient_id")?.as_deref().map(|p| parse_uuid(p, "patient id").map(PatientId)).transpose()?,
        size_bytes: row.try_get::<i64, _>("size_bytes").map_err(StoreError::query("reading a document"))? as u64,
        source: text("source")?.unwrap_or_default(),
        source_name: text("source_name")?,
        index,
        parse_error: text("parse_error")?,
        parse_error_code: text("parse_error_code")?,
        imported_at: text("imported_at")?.unwrap_or_default(),
    })
}

const PATIENT_COLUMNS: &str = "p.id, p.ins_root, p.ins, p.family_name, p.given_names, p.birth_date, p.sex, \
     (SELECT COUNT(*) FROM documents d WHERE d.patient_id = p.id) AS document_count";

impl SqliteStore {
    /// A patient's documents as (id, one column), from a query selecting exactly those two.
    async fn document_pairs<T>(&self, patient: PatientId, sql: &'static str, what: &'static str) -> Result<Vec<(DocumentId, T)>, StoreError>
    where
        T: for<'r> sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite> + Send + Unpin,
    {
        let rows: Vec<(String, T)> =
            sqlx::query_as(sql).bind(patient.to_string()).fetch_all(&self.pool).await.map_err(StoreError::query(what))?;
        rows.into_iter().map(|(id, value)| Ok((DocumentId(parse_uuid(&id, "document id")?), value))).collect()
    }
}

impl Store for SqliteStore {
    fn schema_version(&self) -> StoreFuture<'_, i64> {
        Box::pin(async move {
            sqlx::query_scalar::<_, i64>("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.pool)
                .await
                .map_err(StoreError::query("reading the schema version"))
        })
    }

    fn store_document(&self, document: NewDocument) -> StoreFuture<'_, Stored> {
        Box::pin(async move {
            let sha256 = format!("{:x}", Sha256::digest(&document.raw));
            let mut tx = begin_write(&self.pool).await.map_err(StoreError::query("starting a transaction"))?;
            if let Some(existing) = sqlx::query_scalar::<_, String>("SELECT id FROM documents WHERE content_sha256 = ?")
                .bind(&sha256)
                .fetch_optional(&mut *tx)
                .await
                .map_err(StoreError::query("looking up a document by content"))?
            {
                return Ok(Stored::AlreadyPresent { document: DocumentId(parse_uuid(&existing, "document id")?) });
            }
            let now = now_rfc3339();
            let patient_id = match &document.patient {
                None => None,
                Some(patient) => {
                    let id: String = sqlx::query_scalar(
                        "INSERT INTO patients (id, ins_root, ins, family_name, given_names, birth_date, sex, created_at, updated_at)
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                         ON CONFLICT (ins_root, ins) DO UPDATE SET
                             family_name = COALESCE(excluded.family_name, patients.family_name),
                             given_names = COALESCE(excluded.given_names, patients.given_names),
                             birth_date = COALESCE(excluded.birth_date, patients.birth_date),
                             sex = COALESCE(excluded.sex, patients.sex),
                             updated_at = excluded.updated_at
                         RETURNING id",
                    )
                    .bind(PatientId::new().to_string())
                    .bind(patient.ins.oid())
                    .bind(patient.ins.value())
                    .bind(&patient.family_name)
                    .bind(&patient.given_names)
                    .bind(patient.birth_date.map(|d| d.to_string()))
                    .bind(patient.sex.map(sex_to_str))
                    .bind(&now)
                    .bind(&now)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(StoreError::query("recording a patient"))?;
                    Some(PatientId(parse_uuid(&id, "patient id")?))
                }
            };
            let id = DocumentId::new();
            let index = document.index.as_ref();
            sqlx::query(
                "INSERT INTO documents (id, patient_id, content_sha256, size_bytes, source, source_name, cda_id, set_id,
                     version_number, kind, report_status, title, laboratory, effective_time, effective_epoch, parse_error,
                     imported_at, prescriber_id, parse_error_code)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(id.to_string())
            .bind(patient_id.map(|p| p.to_string()))
            .bind(&sha256)
            .bind(document.raw.len() as i64)
            .bind(document.source.as_str())
            .bind(&document.source_name)
            .bind(index.and_then(|i| i.cda_id.clone()))
            .bind(index.and_then(|i| i.set_id.clone()))
            .bind(index.and_then(|i| i.version_number).map(i64::from))
            .bind(index.map(|i| kind_to_str(i.kind)))
            .bind(index.and_then(|i| i.report_status).map(status_to_str))
            .bind(index.and_then(|i| i.title.clone()))
            .bind(index.and_then(|i| i.laboratory.clone()))
            .bind(index.and_then(|i| i.effective_time).map(|t| t.to_string()))
            .bind(index.and_then(|i| i.effective_time).map(|t| t.epoch_seconds()))
            .bind(&document.parse_error)
            .bind(&now)
            .bind(index.and_then(|i| i.prescriber_id.clone()))
            .bind(&document.parse_error_code)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::query("recording a document"))?;
            sqlx::query("INSERT INTO document_contents (document_id, raw) VALUES (?, ?)")
                .bind(id.to_string())
                .bind(&document.raw)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::query("storing a document's bytes"))?;
            tx.commit().await.map_err(StoreError::query("committing a document"))?;
            Ok(Stored::Inserted { document: id, patient: patient_id })
        })
    }

    fn list_patients(&self) -> StoreFuture<'_, Vec<PatientRecord>> {
        Box::pin(async move {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {PATIENT_COLUMNS} FROM patients p ORDER BY p.family_name COLLATE NOCASE, p.given_names COLLATE NOCASE, p.id"
            ));
            let rows = sqlx::query(sql).fetch_all(&self.pool).await.map_err(StoreError::query("listing patients"))?;
            rows.iter().map(patient_from_row).collect()
        })
    }

    fn patient(&self, id: PatientId) -> StoreFuture<'_, Option<PatientRecord>> {
        Box::pin(async move {
            let sql = sqlx::AssertSqlSafe(format!("SELECT {PATIENT_COLUMNS} FROM patients p WHERE p.id = ?"));
            let row =
                sqlx::query(sql).bind(id.to_string()).fetch_optional(&self.pool).await.map_err(StoreError::query("reading a patient"))?;
            row.as_ref().map(patient_from_row).transpose()
        })
    }

    fn patient_documents(&self, id: PatientId) -> StoreFuture<'_, Vec<DocumentRecord>> {
        Box::pin(async move {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {DOCUMENT_COLUMNS} FROM documents WHERE patient_id = ?
                 ORDER BY effective_epoch IS NULL, effective_epoch DESC, imported_at DESC, id"
            ));
            let rows = sqlx::query(sql)
                .bind(id.to_string())
                .fetch_all(&self.pool)
                .await
                .map_err(StoreError::query("listing a patient's documents"))?;
            rows.iter().map(document_from_row).collect()
        })
    }

    fn patient_document(&self, patient: PatientId, document: DocumentId) -> StoreFuture<'_, Option<DocumentRecord>> {
        Box::pin(async move {
            let sql = sqlx::AssertSqlSafe(format!("SELECT {DOCUMENT_COLUMNS} FROM documents WHERE id = ? AND patient_id = ?"));
            let row = sqlx::query(sql)
                .bind(document.to_string())
                .bind(patient.to_string())
                .fetch_optional(&self.pool)
                .await
                .map_err(StoreError::query("reading a patient's document"))?;
            row.as_ref().map(document_from_row).transpose()
        })
    }

    fn patient_raw_documents(&self, id: PatientId) -> StoreFuture<'_, Vec<(DocumentId, Vec<u8>)>> {
        Box::pin(self.document_pairs(
            id,
            "SELECT d.id, c.raw FROM documents d JOIN document_contents c ON c.document_id = d.id
             WHERE d.patient_id = ? ORDER BY d.imported_at, d.id",
            "reading a patient's documents",
        ))
    }

    fn patient_document_set(&self, id: PatientId) -> StoreFuture<'_, Vec<(DocumentId, String)>> {
        Box::pin(self.document_pairs(
            id,
            "SELECT d.id, d.content_sha256 FROM documents d WHERE d.patient_id = ? ORDER BY d.imported_at, d.id",
            "listing a patient's document set",
        ))
    }

    fn stored_cda_ids(&self, ids: Vec<String>) -> StoreFuture<'_, std::collections::HashSet<String>> {
        Box::pin(async move {
            let mut found = std::collections::HashSet::new();
            // One indexed lookup each: a sync asks about a few hundred at most.
            for id in ids {
                let hit: Option<i64> = sqlx::query_scalar("SELECT 1 FROM documents WHERE cda_id = ? LIMIT 1")
                    .bind(&id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(StoreError::query("looking up a document by CDA id"))?;
                if hit.is_some() {
                    found.insert(id);
                }
            }
            Ok(found)
        })
    }

    fn document_raw(&self, id: DocumentId) -> StoreFuture<'_, Option<Vec<u8>>> {
        Box::pin(async move {
            sqlx::query_scalar::<_, Vec<u8>>("SELECT raw FROM document_contents WHERE document_id = ?")
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await
                .map_err(StoreError::query("reading a document's bytes"))
        })
    }
}
