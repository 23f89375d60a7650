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

#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

/// The columns `document_from_row` reads.
const DOCUMENT_COLUMNS: &str = "id, patient_id, size_bytes, source, source_name, cda_id, set_id, version_number, kind, report_status,
     title, laboratory, effective_time, parse_error, imported_at, prescriber_id, parse_error_code,
     (SELECT a.display_name FROM accounts a WHERE a.id = documents.uploaded_by) AS uploaded_by_name";

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
            .busy_timeout(Duration::from_secs(5))
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
        identity_source: provenance_from_str(&get("identity_source")?.unwrap_or_default()),
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
        provenance: provenance_from_str(&text("source")?.unwrap_or_default()),
        uploaded_by: text("uploaded_by_name")?,
        source_name: text("source_name")?,
        index,
        parse_error: text("parse_error")?,
        parse_error_code: text("parse_error_code")?,
        imported_at: text("imported_at")?.unwrap_or_default(),
    })
}

const PATIENT_COLUMNS: &str = "p.id, p.ins_root, p.ins, p.family_name, p.given_names, p.birth_date, p.sex, p.identity_source, \
     (SELECT COUNT(*) FROM documents d WHERE d.patient_id = p.id) AS document_count";

/// The patient a document names, found by INS number whatever the INS authority it is spelled
/// with (one number, one identity), created when new; the identity kept follows
/// [`crate::identity::decide`]. Alerts for the operator are pushed to `alerts`.
async fn record_patient(
    tx: &mut sqlx::SqliteConnection,
    patient: &NewPatient,
    provenance: Provenance,
    now: &str,
    alerts: &mut Vec<(&'static str, String)>,
) -> Result<PatientId, StoreError> {
    use crate::identity::{IdentityDecision, decide};
    let incoming = bioviewer_core::normalise::PatientIdentity {
        ins: patient.ins.value().to_string(),
        ins_root: patient.ins.oid().to_string(),
        family_name: patient.family_name.clone(),
        given_name: patient.given_names.clone(),
        birth_date: patient.birth_date,
        sex: patient.sex,
    };
    let sql = sqlx::AssertSqlSafe(format!("SELECT {PATIENT_COLUMNS}, p.identity_source FROM patients p WHERE p.ins = ? ORDER BY p.created_at, p.id LIMIT 1"));
    let existing = sqlx::query(sql).bind(patient.ins.value()).fetch_optional(&mut *tx).await.map_err(StoreError::query("finding a patient"))?;
    let existing = existing.as_ref().map(patient_from_row).transpose()?;
    let current = existing.as_ref().map(|p| (p.identity(), p.identity_source));
    let decision = decide(current.as_ref().map(|(identity, source)| (identity, *source)), &incoming, provenance);
    let write = |identity: &bioviewer_core::normalise::PatientIdentity| {
        (identity.family_name.clone(), identity.given_name.clone(), identity.birth_date.map(|d| d.to_string()), identity.sex.map(sex_to_str))
    };
    let Some(existing) = existing else {
        let (family, given, birth, sex) = write(&incoming);
        let id = PatientId::new();
        sqlx::query(
            "INSERT INTO patients (id, ins_root, ins, family_name, given_names, birth_date, sex, created_at, updated_at, identity_source)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(patient.ins.oid())
        .bind(patient.ins.value())
        .bind(family)
        .bind(given)
        .bind(birth)
        .bind(sex)
        .bind(now)
        .bind(now)
        .bind(provenance_str(provenance))
        .execute(&mut *tx)
        .await
        .map_err(StoreError::query("recording a patient"))?;
        return Ok(id);
    };
    if existing.ins_root != patient.ins.oid() {
        alerts.push(("ins_authority", format!("patient={} document={}", existing.ins_root, patient.ins.oid())));
    }
    match decision {
        IdentityDecision::Keep { conflict } => {
            if conflict {
                alerts.push(("identity_conflict", format!("source={}", provenance_str(provenance))));
            }
        }
        IdentityDecision::Write { identity, source, replaced_different } => {
            if replaced_different {
                alerts.push(("identity_replaced", format!("from={} to={}", provenance_str(existing.identity_source), provenance_str(source))));
            }
            let (family, given, birth, sex) = write(&identity);
            sqlx::query(
                "UPDATE patients SET family_name = ?, given_names = ?, birth_date = ?, sex = ?, identity_source = ?, updated_at = ? WHERE id = ?",
            )
            .bind(family)
            .bind(given)
            .bind(birth)
            .bind(sex)
            .bind(provenance_str(source))
            .bind(now)
            .bind(existing.id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::query("updating a patient's identity"))?;
        }
    }
    Ok(existing.id)
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
            let provenance = document.source.provenance();
            let (uploaded_by, dmp_entry) = match &document.source {
                DocumentSource::Upload { by } => (Some(by.to_string()), None),
                DocumentSource::Dmp { entry } => (None, entry.clone()),
                DocumentSource::Operator => (None, None),
            };
            // IMMEDIATE: this transaction writes; taking the write lock first makes concurrent
            // writers wait (busy timeout) instead of failing when a read would upgrade.
            let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(StoreError::query("starting a transaction"))?;
            if let Some((existing, source)) =
                sqlx::query_as::<_, (String, String)>("SELECT id, source FROM documents WHERE content_sha256 = ?")
                    .bind(&sha256)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(StoreError::query("looking up a document by content"))?
            {
                // The same bytes through a more trusted channel: the document is now the
                // laboratory's as that channel vouches for it (never the other way round).
                if provenance.rank() > provenance_from_str(&source).rank() {
                    sqlx::query("UPDATE documents SET source = ?, dmp_entry = COALESCE(?, dmp_entry) WHERE id = ?")
                        .bind(provenance_str(provenance))
                        .bind(&dmp_entry)
                        .bind(&existing)
                        .execute(&mut *tx)
                        .await
                        .map_err(StoreError::query("raising a document's provenance"))?;
                    tx.commit().await.map_err(StoreError::query("committing a document"))?;
                }
                return Ok(Stored::AlreadyPresent { document: DocumentId(parse_uuid(&existing, "document id")?) });
            }
            let now = now_rfc3339();
            let id = DocumentId::new();
            let mut alerts: Vec<(&'static str, String)> = Vec::new();
            let patient_id = match &document.patient {
                None => None,
                Some(patient) => Some(record_patient(&mut tx, patient, provenance, &now, &mut alerts).await?),
            };
            let index = document.index.as_ref();
            sqlx::query(
                "INSERT INTO documents (id, patient_id, content_sha256, size_bytes, source, source_name, cda_id, set_id,
                     version_number, kind, report_status, title, laboratory, effective_time, effective_epoch, parse_error,
                     imported_at, prescriber_id, parse_error_code, uploaded_by, dmp_entry)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
            .bind(&uploaded_by)
            .bind(&dmp_entry)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::query("recording a document"))?;
            sqlx::query("INSERT INTO document_contents (document_id, raw) VALUES (?, ?)")
                .bind(id.to_string())
                .bind(&document.raw)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::query("storing a document's bytes"))?;
            if let Some(patient) = patient_id {
                for (kind, detail) in alerts {
                    tracing::warn!(patient = %patient, document = %id, kind, "identity alert for the operator");
                    sqlx::query("INSERT INTO identity_alerts (id, patient_id, document_id, kind, detail, at) VALUES (?, ?, ?, ?, ?, ?)")
                        .bind(Uuid::new_v4().to_string())
                        .bind(patient.to_string())
                        .bind(id.to_string())
                        .bind(kind)
                        .bind(detail)
                        .bind(&now)
                        .execute(&mut *tx)
                        .await
                        .map_err(StoreError::query("recording an identity alert"))?;
                }
            }
            tx.commit().await.map_err(StoreError::query("committing a document"))?;
            Ok(Stored::Inserted { document: id, patient: patient_id })
        })
    }

    fn identity_alerts(&self) -> StoreFuture<'_, Vec<IdentityAlert>> {
        Box::pin(async move {
            let rows: Vec<(String, Option<String>, String, Option<String>, String)> =
                sqlx::query_as("SELECT patient_id, document_id, kind, detail, at FROM identity_alerts ORDER BY at DESC, id")
                    .fetch_all(&self.pool)
                    .await
                    .map_err(StoreError::query("reading identity alerts"))?;
            Ok(rows
                .into_iter()
                .map(|(patient_id, document_id, kind, detail, at)| IdentityAlert { patient_id, document_id, kind, detail, at })
                .collect())
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

    fn patient_raw_documents(&self, id: PatientId) -> StoreFuture<'_, Vec<RawDocument>> {
        Box::pin(async move {
            let rows: Vec<(String, Vec<u8>, String)> = sqlx::query_as(
                "SELECT d.id, c.raw, d.source FROM documents d JOIN document_contents c ON c.document_id = d.id
                 WHERE d.patient_id = ? ORDER BY d.imported_at, d.id",
            )
            .bind(id.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::query("reading a patient's documents"))?;
            rows.into_iter()
                .map(|(id, raw, source)| {
                    Ok(RawDocument { id: DocumentId(parse_uuid(&id, "document id")?), raw, provenance: provenance_from_str(&source) })
                })
                .collect()
        })
    }

    fn patient_document_set(&self, id: PatientId) -> StoreFuture<'_, Vec<DocumentFingerprint>> {
        Box::pin(async move {
            let rows: Vec<(String, String, String)> = sqlx::query_as(
                "SELECT d.id, d.content_sha256, d.source FROM documents d WHERE d.patient_id = ? ORDER BY d.imported_at, d.id",
            )
            .bind(id.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::query("listing a patient's document set"))?;
            rows.into_iter()
                .map(|(id, sha256, source)| {
                    Ok(DocumentFingerprint {
                        id: DocumentId(parse_uuid(&id, "document id")?),
                        sha256,
                        provenance: provenance_from_str(&source),
                    })
                })
                .collect()
        })
    }

    fn stored_cda_ids(&self, ids: Vec<String>) -> StoreFuture<'_, std::collections::HashSet<String>> {
        Box::pin(async move {
            let mut found = std::collections::HashSet::new();
            // One indexed lookup each: a sync asks about a few hundred at most. Uploads do not
            // count: a decoy carrying a DMP document's id must not stop its retrieval.
            for id in ids {
                let hit: Option<i64> = sqlx::query_scalar("SELECT 1 FROM documents WHERE cda_id = ? AND source <> 'upload' LIMIT 1")
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
