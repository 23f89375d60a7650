//! The store over SQL: one implementation of [`Store`] for SQLite and PostgreSQL (see
//! [`super::db`] for how the two dialects share their SQL and where they differ).

use bioviewer_core::cda::CdaTime;
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;

use super::db::{Db, Dialect};
use super::*;

#[derive(Clone)]
pub struct SqlStore {
    db: Db,
}

/// The columns `document_from_row` reads.
const DOCUMENT_COLUMNS: &str = "id, patient_id, size_bytes, source, source_name, cda_id, set_id, version_number, kind, report_status,
     title, laboratory, effective_time, parse_error, imported_at, prescriber_id, parse_error_code,
     (SELECT a.display_name FROM accounts a WHERE a.id = documents.uploaded_by) AS uploaded_by_name";

impl SqlStore {
    /// Opens the database at `url` (`sqlite://path`, created if missing, `sqlite::memory:`, or
    /// `postgres://...`) and applies pending migrations.
    pub async fn open(url: &str) -> Result<SqlStore, StoreError> {
        Ok(SqlStore { db: Db::connect(url).await? })
    }

    /// One attempt at [`Store::store_document`] (tried again on a transient database failure:
    /// the whole transaction, from the start).
    async fn store_document_once(&self, document: &NewDocument) -> Result<Stored, StoreError> {
        let sha256 = format!("{:x}", Sha256::digest(&document.raw));
        let provenance = document.source.provenance();
        let (uploaded_by, dmp_entry) = match &document.source {
            DocumentSource::Upload { by } => (Some(by.to_string()), None),
            DocumentSource::Dmp { entry, .. } => (None, entry.clone()),
            DocumentSource::Operator => (None, None),
        };
        let mut tx = self.db.begin_write().await.map_err(StoreError::query("starting a transaction"))?;
        if let Some((existing, source)) =
            sqlx::query_as::<_, (String, String)>("SELECT id, source FROM documents WHERE content_sha256 = $1")
                .bind(&sha256)
                .fetch_optional(&mut *tx)
                .await
                .map_err(StoreError::query("looking up a document by content"))?
        {
            // The same bytes through a more trusted channel: the document is now the
            // laboratory's as that channel vouches for it (never the other way round).
            if provenance.rank() > provenance_from_str(&source).rank() {
                // The DMP files it with the patient it was asked about: an upload's
                // attribution never keeps a laboratory's document from its patient.
                let now = now_rfc3339();
                let mut alerts = Vec::new();
                let refile = match &document.source {
                    DocumentSource::Dmp { for_patient: Some(_), .. } => {
                        record_patient(&mut tx, document.patient.as_ref(), &document.source, &now, &mut alerts).await?.ok()
                    }
                    _ => None,
                };
                sqlx::query(
                    "UPDATE documents SET source = $1, dmp_entry = COALESCE($2, dmp_entry), patient_id = COALESCE($3, patient_id) WHERE id = $4",
                )
                .bind(provenance_str(provenance))
                .bind(&dmp_entry)
                .bind(refile.map(|p| p.to_string()))
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
        let for_dmp_patient = matches!(&document.source, DocumentSource::Dmp { for_patient: Some(_), .. });
        let (patient_id, unattributed) = if document.patient.is_some() || for_dmp_patient {
            match record_patient(&mut tx, document.patient.as_ref(), &document.source, &now, &mut alerts).await? {
                Ok(patient) => (Some(patient), None),
                Err(reason) => (None, Some(reason)),
            }
        } else {
            (None, None)
        };
        let index = document.index.as_ref();
        sqlx::query(
            "INSERT INTO documents (id, patient_id, content_sha256, size_bytes, source, source_name, cda_id, set_id,
                 version_number, kind, report_status, title, laboratory, effective_time, effective_epoch, parse_error,
                 imported_at, prescriber_id, parse_error_code, uploaded_by, dmp_entry)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)",
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
        sqlx::query("INSERT INTO document_contents (document_id, raw) VALUES ($1, $2)")
            .bind(id.to_string())
            .bind(&document.raw)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::query("storing a document's bytes"))?;
        if let Some(patient) = patient_id {
            for (kind, detail) in alerts {
                tracing::warn!(patient = %patient, document = %id, kind, "identity alert for the operator");
                sqlx::query("INSERT INTO identity_alerts (id, patient_id, document_id, kind, detail, at) VALUES ($1, $2, $3, $4, $5, $6)")
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
        Ok(Stored::Inserted { document: id, patient: patient_id, unattributed })
    }

    /// The connection pool, shared with the access service.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Writes a consistent copy of the whole database to a new file, while the server runs:
    /// `VACUUM INTO` reads one snapshot (writers go on meanwhile, in the write-ahead log) and
    /// writes a compact, self-contained database. Refuses an existing file. SQLite only: a
    /// PostgreSQL database is backed up with `pg_dump` (docs/deploy.md).
    pub async fn backup_into(&self, path: &std::path::Path) -> Result<(), StoreError> {
        if self.db.dialect() != Dialect::Sqlite {
            return Err(StoreError::Backup {
                path: path.display().to_string(),
                reason: "`bioviewer backup` copies an SQLite database; back a PostgreSQL database up with pg_dump (docs/deploy.md)",
            });
        }
        if path.exists() {
            return Err(StoreError::Backup {
                path: path.display().to_string(),
                reason: "the file exists already; a backup never overwrites one",
            });
        }
        let path =
            path.to_str().ok_or_else(|| StoreError::Backup { path: path.display().to_string(), reason: "the path is not valid UTF-8" })?;
        sqlx::query("VACUUM INTO $1").bind(path).execute(self.db.pool()).await.map_err(StoreError::query("writing the backup"))?;
        Ok(())
    }
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn parse_uuid(s: &str, what: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(s).map_err(|_| StoreError::Corrupt(format!("{what} is not a UUID")))
}

fn patient_from_row(row: &AnyRow) -> Result<PatientRecord, StoreError> {
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

fn document_from_row(row: &AnyRow) -> Result<DocumentRecord, StoreError> {
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

/// A record and the records linked to it now, for `IN`; binds the record's id as `$1`.
const RECORDS: &str = "(SELECT $1 UNION SELECT patient_b FROM patient_links WHERE patient_a = $1 AND unlinked_at IS NULL
     UNION SELECT patient_a FROM patient_links WHERE patient_b = $1 AND unlinked_at IS NULL)";

const PATIENT_COLUMNS: &str = "p.id, p.ins_root, p.ins, p.family_name, p.given_names, p.birth_date, p.sex, p.identity_source, \
     (SELECT COUNT(*) FROM documents d WHERE d.patient_id = p.id) AS document_count";

async fn dmp_sync_record<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    executor: E,
    patient: PatientId,
) -> Result<Option<DmpSyncRecord>, StoreError> {
    sqlx::query_as(
        "SELECT holder, lease_until, started_at, finished_at, succeeded_at, report_json, error FROM dmp_syncs WHERE patient_id = $1",
    )
    .bind(patient.to_string())
    .fetch_optional(executor)
    .await
    .map_err(StoreError::query("reading a DMP sync"))
}

/// A record's identifiers from its stored (authority, value) pairs, sorted as given, each once;
/// pairs that name no known kind of identifier are left out.
fn identifiers_of(pairs: impl IntoIterator<Item = (String, String)>) -> Vec<PatientIdentifier> {
    let mut out: Vec<PatientIdentifier> = Vec::new();
    for (authority, value) in pairs {
        let instance = bioviewer_core::cda::InstanceId { root: authority, extension: Some(value) };
        if let Some(id) = PatientIdentifier::of(&instance)
            && !out.contains(&id)
        {
            out.push(id);
        }
    }
    out
}

/// The record with this INS number, whatever INS authority it was spelled with. Only a record
/// keyed by an INS counts: an upload naming the same digits under another authority created a
/// record of a local identifier, which never draws a laboratory's documents to it.
async fn patient_with_ins_number(tx: &mut sqlx::AnyConnection, number: &str) -> Result<Option<PatientId>, StoreError> {
    let records: Vec<(String, String)> = sqlx::query_as("SELECT id, ins_root FROM patients WHERE ins = $1 ORDER BY created_at, id")
        .bind(number)
        .fetch_all(&mut *tx)
        .await
        .map_err(StoreError::query("finding a patient by INS"))?;
    records
        .into_iter()
        .find(|(_, root)| IdentifierKind::of(root, number) == IdentifierKind::Ins)
        .map(|(id, _)| parse_uuid(&id, "patient id").map(PatientId))
        .transpose()
}

/// The record known by an identifier other than an INS, and where that was learned.
async fn identifier_owner(tx: &mut sqlx::AnyConnection, id: &PatientIdentifier) -> Result<Option<(PatientId, String)>, StoreError> {
    let found: Option<(String, String)> =
        sqlx::query_as("SELECT patient_id, learned_from FROM patient_identifiers WHERE authority = $1 AND value = $2")
            .bind(&id.authority)
            .bind(&id.value)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::query("finding a patient by identifier"))?;
    found.map(|(id, learned)| Ok((PatientId(parse_uuid(&id, "patient id")?), learned))).transpose()
}

async fn patient_with_identifier(tx: &mut sqlx::AnyConnection, id: &PatientIdentifier) -> Result<Option<PatientId>, StoreError> {
    Ok(identifier_owner(tx, id).await?.map(|(patient, _)| patient))
}

/// Records that `patient` is known by `id` (learned from `learned_from`), unless another
/// record already is: then the identifier stays where it is and the operator is told.
async fn learn_identifier(
    tx: &mut sqlx::AnyConnection,
    patient: PatientId,
    id: &PatientIdentifier,
    learned_from: &str,
    now: &str,
    alerts: &mut Vec<(&'static str, String)>,
) -> Result<(), StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO patient_identifiers (authority, value, patient_id, kind, learned_from, first_seen) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (authority, value) DO NOTHING",
    )
    .bind(&id.authority)
    .bind(&id.value)
    .bind(patient.to_string())
    .bind(identifier_kind_str(id.kind))
    .bind(learned_from)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(StoreError::query("recording a patient identifier"))?
    .rows_affected();
    if inserted == 0 {
        match identifier_owner(tx, id).await? {
            Some((owner, _)) if owner == patient => {}
            // Learned from an upload only: a trusted source's word takes it over (an upload
            // never keeps a laboratory's later documents away from their patient).
            Some((_, learned)) if learned == "upload" && learned_from != "upload" => {
                sqlx::query("UPDATE patient_identifiers SET patient_id = $1, learned_from = $2 WHERE authority = $3 AND value = $4")
                    .bind(patient.to_string())
                    .bind(learned_from)
                    .bind(&id.authority)
                    .bind(&id.value)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::query("reassigning a patient identifier"))?;
                alerts.push(("identifier_reassigned", format!("authority={} kind={}", id.authority, identifier_kind_str(id.kind))));
            }
            _ => alerts.push(("identifier_elsewhere", format!("authority={} kind={}", id.authority, identifier_kind_str(id.kind)))),
        }
    }
    Ok(())
}

/// The record a document goes to ([`crate::identity::attribute`]), created when new, with the
/// identity kept as [`crate::identity::decide`] says. `Ok(Err(reason))`: no record.
/// Alerts for the operator are pushed to `alerts`.
async fn record_patient(
    tx: &mut sqlx::AnyConnection,
    patient: Option<&NewPatient>,
    source: &DocumentSource,
    now: &str,
    alerts: &mut Vec<(&'static str, String)>,
) -> Result<Result<PatientId, &'static str>, StoreError> {
    use crate::identity::{Attribution, AttributionFacts, IdentityDecision, NewKey, attribute, decide};
    let provenance = source.provenance();
    let dmp_query = match source {
        DocumentSource::Dmp { for_patient: Some(ins), .. } => Some(ins),
        _ => None,
    };
    let header_ins = patient.and_then(|p| match &p.key {
        PatientKey::Ins(ins) => Some(ins),
        PatientKey::Other(_) => None,
    });
    // Every identifier but an INS: the key of a document without INS, and the others.
    let others: Vec<&PatientIdentifier> = patient
        .into_iter()
        .flat_map(|p| {
            let key = match &p.key {
                PatientKey::Other(id) => Some(id),
                PatientKey::Ins(_) => None,
            };
            key.into_iter().chain(p.other_ids.iter())
        })
        .filter(|id| id.kind != IdentifierKind::Ins)
        .collect();
    // A trusted document is attributed by identifiers a trusted source taught, never by what
    // an upload claimed.
    let mut id_patients = Vec::new();
    for id in &others {
        if let Some((found, learned)) = identifier_owner(tx, id).await?
            && (learned != "upload" || !provenance.is_trusted())
            && !id_patients.contains(&found)
        {
            id_patients.push(found);
        }
    }
    let facts = AttributionFacts {
        dmp_query: dmp_query.map(|ins| ins.value().to_string()),
        dmp_patient: match dmp_query {
            Some(ins) => patient_with_ins_number(tx, ins.value()).await?,
            None => None,
        },
        header_ins: header_ins.map(|ins| ins.value().to_string()),
        header_ins_patient: match header_ins {
            Some(ins) => patient_with_ins_number(tx, ins.value()).await?,
            None => None,
        },
        id_patients,
    };
    // A DMP answer whose header names another INS: filed with the queried patient, but it
    // says nothing of their identity.
    let agrees = facts.dmp_query.is_none() || facts.header_ins.as_ref().is_none_or(|ins| Some(ins) == facts.dmp_query.as_ref());
    let incoming = patient.filter(|_| agrees).map(|p| bioviewer_core::normalise::PatientIdentity {
        ins: p.key.value().to_string(),
        ins_root: p.key.authority().to_string(),
        family_name: p.family_name.clone(),
        given_name: p.given_names.clone(),
        birth_date: p.birth_date,
        sex: p.sex,
    });
    let learned_from = match provenance {
        Provenance::Dmp => "dmp",
        Provenance::Operator => "document",
        Provenance::Upload => "upload",
    };
    let write = |identity: Option<&bioviewer_core::normalise::PatientIdentity>| {
        (
            identity.and_then(|i| i.family_name.clone()),
            identity.and_then(|i| i.given_name.clone()),
            identity.and_then(|i| i.birth_date).map(|d| d.to_string()),
            identity.and_then(|i| i.sex).map(sex_to_str),
        )
    };
    let (id, learn_ids) = match attribute(&facts, provenance) {
        Attribution::Unattributed { reason } => return Ok(Err(reason)),
        Attribution::New { key, learn_ids } => {
            let key = match key {
                NewKey::DmpQuery => dmp_query.map(|ins| PatientIdentifier {
                    authority: ins.oid().into(),
                    value: ins.value().into(),
                    kind: IdentifierKind::Ins,
                }),
                NewKey::HeaderIns => header_ins.map(|ins| PatientIdentifier {
                    authority: ins.oid().into(),
                    value: ins.value().into(),
                    kind: IdentifierKind::Ins,
                }),
                NewKey::HeaderOther => others.first().map(|id| (*id).clone()),
            };
            let Some(key) = key else { return Ok(Err("the document names no patient identifier")) };
            let (family, given, birth, sex) = write(incoming.as_ref());
            let id = PatientId::new();
            sqlx::query(
                "INSERT INTO patients (id, ins_root, ins, family_name, given_names, birth_date, sex, created_at, updated_at, identity_source)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(id.to_string())
            .bind(&key.authority)
            .bind(&key.value)
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
            learn_identifier(tx, id, &key, learned_from, now, alerts).await?;
            (id, learn_ids)
        }
        Attribution::To { patient: id, learn_ids } => {
            let sql = sqlx::AssertSqlSafe(format!("SELECT {PATIENT_COLUMNS} FROM patients p WHERE p.id = $1"));
            let row = sqlx::query(sql).bind(id.to_string()).fetch_one(&mut *tx).await.map_err(StoreError::query("reading a patient"))?;
            let existing = patient_from_row(&row)?;
            if let Some(ins) = header_ins
                && existing.has_ins()
                && existing.ins_root != ins.oid()
            {
                alerts.push(("ins_authority", format!("patient={} document={}", existing.ins_root, ins.oid())));
            }
            if let Some(incoming) = &incoming {
                match decide(Some((&existing.identity(), existing.identity_source)), incoming, provenance) {
                    IdentityDecision::Keep { conflict: false } => {}
                    IdentityDecision::Keep { conflict: true } => {
                        alerts.push(("identity_conflict", format!("source={}", provenance_str(provenance))));
                    }
                    IdentityDecision::Write { identity, source, replaced_different } => {
                        if replaced_different {
                            alerts.push((
                                "identity_replaced",
                                format!("from={} to={}", provenance_str(existing.identity_source), provenance_str(source)),
                            ));
                        }
                        let (family, given, birth, sex) = write(Some(&identity));
                        sqlx::query(
                            "UPDATE patients SET family_name = $1, given_names = $2, birth_date = $3, sex = $4, identity_source = $5, updated_at = $6
                             WHERE id = $7",
                        )
                        .bind(family)
                        .bind(given)
                        .bind(birth)
                        .bind(sex)
                        .bind(provenance_str(source))
                        .bind(now)
                        .bind(id.to_string())
                        .execute(&mut *tx)
                        .await
                        .map_err(StoreError::query("updating a patient's identity"))?;
                    }
                }
            }
            (id, learn_ids)
        }
    };
    if learn_ids {
        for other in others {
            learn_identifier(tx, id, other, learned_from, now, alerts).await?;
        }
    }
    Ok(Ok(id))
}

impl Store for SqlStore {
    fn schema_version(&self) -> StoreFuture<'_, i64> {
        Box::pin(async move {
            sqlx::query_scalar::<_, i64>("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success")
                .fetch_one(self.db.pool())
                .await
                .map_err(StoreError::query("reading the schema version"))
        })
    }

    fn store_document(&self, document: NewDocument) -> StoreFuture<'_, Stored> {
        Box::pin(async move { super::db::retrying(|| self.store_document_once(&document), StoreError::is_transient).await })
    }

    fn identity_alerts(&self) -> StoreFuture<'_, Vec<IdentityAlert>> {
        Box::pin(async move {
            let rows: Vec<(String, Option<String>, String, Option<String>, String)> =
                sqlx::query_as("SELECT patient_id, document_id, kind, detail, at FROM identity_alerts ORDER BY at DESC, id")
                    .fetch_all(self.db.pool())
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
                "SELECT {PATIENT_COLUMNS} FROM patients p ORDER BY LOWER(p.family_name), LOWER(p.given_names), p.id"
            ));
            let rows = sqlx::query(sql).fetch_all(self.db.pool()).await.map_err(StoreError::query("listing patients"))?;
            rows.iter().map(patient_from_row).collect()
        })
    }

    fn patient(&self, id: PatientId) -> StoreFuture<'_, Option<PatientRecord>> {
        Box::pin(async move {
            let sql = sqlx::AssertSqlSafe(format!("SELECT {PATIENT_COLUMNS} FROM patients p WHERE p.id = $1"));
            let row = sqlx::query(sql)
                .bind(id.to_string())
                .fetch_optional(self.db.pool())
                .await
                .map_err(StoreError::query("reading a patient"))?;
            row.as_ref().map(patient_from_row).transpose()
        })
    }

    fn patient_documents(&self, id: PatientId) -> StoreFuture<'_, Vec<DocumentRecord>> {
        Box::pin(async move {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {DOCUMENT_COLUMNS} FROM documents WHERE patient_id IN {RECORDS}
                 ORDER BY effective_epoch IS NULL, effective_epoch DESC, imported_at DESC, id"
            ));
            let rows = sqlx::query(sql)
                .bind(id.to_string())
                .fetch_all(self.db.pool())
                .await
                .map_err(StoreError::query("listing a patient's documents"))?;
            rows.iter().map(document_from_row).collect()
        })
    }

    fn patient_document(&self, patient: PatientId, document: DocumentId) -> StoreFuture<'_, Option<DocumentRecord>> {
        Box::pin(async move {
            let sql = sqlx::AssertSqlSafe(format!("SELECT {DOCUMENT_COLUMNS} FROM documents WHERE patient_id IN {RECORDS} AND id = $2"));
            let row = sqlx::query(sql)
                .bind(patient.to_string())
                .bind(document.to_string())
                .fetch_optional(self.db.pool())
                .await
                .map_err(StoreError::query("reading a patient's document"))?;
            row.as_ref().map(document_from_row).transpose()
        })
    }

    fn patient_raw_documents(&self, id: PatientId) -> StoreFuture<'_, Vec<RawDocument>> {
        Box::pin(async move {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT d.id, c.raw, d.source, d.content_sha256 FROM documents d JOIN document_contents c ON c.document_id = d.id
                 WHERE d.patient_id IN {RECORDS} ORDER BY d.imported_at, d.id"
            ));
            let rows: Vec<(String, Vec<u8>, String, String)> = sqlx::query_as(sql)
                .bind(id.to_string())
                .fetch_all(self.db.pool())
                .await
                .map_err(StoreError::query("reading a patient's documents"))?;
            rows.into_iter()
                .map(|(id, raw, source, sha256)| {
                    // Checked on every read: a result changed in the database is never shown as
                    // the laboratory's.
                    let intact = format!("{:x}", Sha256::digest(&raw)) == sha256;
                    Ok(RawDocument {
                        id: DocumentId(parse_uuid(&id, "document id")?),
                        raw,
                        provenance: provenance_from_str(&source),
                        intact,
                    })
                })
                .collect()
        })
    }

    fn patient_document_set(&self, id: PatientId) -> StoreFuture<'_, Vec<DocumentFingerprint>> {
        Box::pin(async move {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT d.id, d.content_sha256, d.source FROM documents d WHERE d.patient_id IN {RECORDS} ORDER BY d.imported_at, d.id"
            ));
            let rows: Vec<(String, String, String)> = sqlx::query_as(sql)
                .bind(id.to_string())
                .fetch_all(self.db.pool())
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

    fn stored_cda_ids(&self, patient_ins: String, ids: Vec<String>) -> StoreFuture<'_, std::collections::HashSet<String>> {
        Box::pin(async move {
            let mut found = std::collections::HashSet::new();
            // One indexed lookup each: a sync asks about a few hundred at most. Uploads do not
            // count: a decoy carrying a DMP document's id must not stop its retrieval.
            for id in ids {
                let hit: Option<i64> = sqlx::query_scalar(
                    "SELECT 1 FROM documents d JOIN patients p ON p.id = d.patient_id
                     WHERE d.cda_id = $1 AND d.source <> 'upload' AND p.ins = $2 LIMIT 1",
                )
                .bind(&id)
                .bind(&patient_ins)
                .fetch_optional(self.db.pool())
                .await
                .map_err(StoreError::query("looking up a document by CDA id"))?;
                if hit.is_some() {
                    found.insert(id);
                }
            }
            Ok(found)
        })
    }

    fn patient_identifiers(&self, id: PatientId) -> StoreFuture<'_, Vec<PatientIdentifier>> {
        Box::pin(async move {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT authority, value, kind FROM patient_identifiers WHERE patient_id IN {RECORDS}
                 UNION SELECT ins_root, ins, 'record' FROM patients WHERE id IN {RECORDS} ORDER BY 1, 2"
            ));
            let rows: Vec<(String, String, String)> = sqlx::query_as(sql)
                .bind(id.to_string())
                .fetch_all(self.db.pool())
                .await
                .map_err(StoreError::query("reading a patient's identifiers"))?;
            Ok(identifiers_of(rows.into_iter().map(|(authority, value, _)| (authority, value))))
        })
    }

    fn dmp_sync(&self, patient: PatientId) -> StoreFuture<'_, Option<DmpSyncRecord>> {
        Box::pin(async move { dmp_sync_record(self.db.pool(), patient).await })
    }

    fn take_dmp_sync_lease(
        &self,
        patient: PatientId,
        holder: String,
        now: i64,
        lease_until: i64,
        min_interval: i64,
    ) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let query = StoreError::query("taking a DMP sync lease");
            let mut tx = self.db.begin_write().await.map_err(StoreError::query("taking a DMP sync lease"))?;
            let record = dmp_sync_record(&mut *tx, patient).await?;
            if !crate::dmp::sync::may_start(record.as_ref(), now, min_interval) {
                return Ok(false);
            }
            sqlx::query(
                "INSERT INTO dmp_syncs (patient_id, holder, lease_until, started_at, report_json) VALUES ($1, $2, $3, $4, NULL)
                 ON CONFLICT (patient_id) DO UPDATE SET holder = $2, lease_until = $3, started_at = $4, report_json = NULL",
            )
            .bind(patient.to_string())
            .bind(&holder)
            .bind(lease_until)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::query("taking a DMP sync lease"))?;
            tx.commit().await.map_err(query)?;
            Ok(true)
        })
    }

    fn renew_dmp_sync_lease(
        &self,
        patient: PatientId,
        holder: String,
        lease_until: i64,
        report: Option<SyncReportJson>,
    ) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let updated = sqlx::query(
                "UPDATE dmp_syncs SET lease_until = $3, report_json = COALESCE($4, report_json) WHERE patient_id = $1 AND holder = $2",
            )
            .bind(patient.to_string())
            .bind(&holder)
            .bind(lease_until)
            .bind(report)
            .execute(self.db.pool())
            .await
            .map_err(StoreError::query("renewing a DMP sync lease"))?;
            Ok(updated.rows_affected() == 1)
        })
    }

    fn finish_dmp_sync(
        &self,
        patient: PatientId,
        holder: String,
        now: i64,
        outcome: Result<SyncReportJson, String>,
    ) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let succeeded_at =
                chrono::DateTime::from_timestamp(now, 0).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)).unwrap_or_default();
            let (report, error) = match outcome {
                Ok(report) => (Some(report), None),
                Err(error) => (None, Some(error)),
            };
            // A failure keeps the last success's time and report-less state; a success sets both.
            let updated = sqlx::query(
                "UPDATE dmp_syncs SET holder = NULL, lease_until = 0, finished_at = $3,
                     succeeded_at = CASE WHEN $5 IS NULL THEN $6 ELSE succeeded_at END,
                     report_json = $4, error = $5
                 WHERE patient_id = $1 AND holder = $2",
            )
            .bind(patient.to_string())
            .bind(&holder)
            .bind(now)
            .bind(report)
            .bind(error)
            .bind(succeeded_at)
            .execute(self.db.pool())
            .await
            .map_err(StoreError::query("ending a DMP sync"))?;
            Ok(updated.rows_affected() == 1)
        })
    }

    fn patients_with_identifiers(&self, ids: Vec<PatientId>) -> StoreFuture<'_, Vec<(PatientRecord, Vec<PatientIdentifier>)>> {
        Box::pin(async move {
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            // One JSON array parameter rather than thousands of placeholders (SQLite caps them).
            let wanted = serde_json::to_string(&ids.iter().map(|id| id.to_string()).collect::<Vec<_>>())
                .map_err(|e| StoreError::Corrupt(format!("patient ids: {e}")))?;
            let wanted_ids = self.db.dialect().json_text_values(1);
            let sql = sqlx::AssertSqlSafe(format!("SELECT {PATIENT_COLUMNS} FROM patients p WHERE p.id IN ({wanted_ids})"));
            let rows = sqlx::query(sql).bind(&wanted).fetch_all(self.db.pool()).await.map_err(StoreError::query("reading patients"))?;
            let records: Vec<PatientRecord> = rows.iter().map(patient_from_row).collect::<Result<_, _>>()?;
            // Each wanted record with the records linked to it, as RECORDS gives them one by one.
            let identifier_rows: Vec<(String, String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "WITH wanted(id) AS ({wanted_ids}),
                 records(patient, record) AS (
                     SELECT id, id FROM wanted
                     UNION SELECT w.id, l.patient_b FROM wanted w JOIN patient_links l ON l.patient_a = w.id AND l.unlinked_at IS NULL
                     UNION SELECT w.id, l.patient_a FROM wanted w JOIN patient_links l ON l.patient_b = w.id AND l.unlinked_at IS NULL)
                 SELECT r.patient, i.authority, i.value FROM records r JOIN patient_identifiers i ON i.patient_id = r.record
                 UNION SELECT r.patient, p.ins_root, p.ins FROM records r JOIN patients p ON p.id = r.record
                 ORDER BY 1, 2, 3"
            )))
            .bind(&wanted)
            .fetch_all(self.db.pool())
            .await
            .map_err(StoreError::query("reading patients' identifiers"))?;
            let mut by_patient: std::collections::HashMap<String, Vec<(String, String)>> = std::collections::HashMap::new();
            for (patient, authority, value) in identifier_rows {
                by_patient.entry(patient).or_default().push((authority, value));
            }
            Ok(records
                .into_iter()
                .map(|record| {
                    let identifiers = identifiers_of(by_patient.remove(&record.id.to_string()).unwrap_or_default());
                    (record, identifiers)
                })
                .collect())
        })
    }

    fn patient_by_identifier(&self, id: PatientIdentifier) -> StoreFuture<'_, Option<PatientId>> {
        Box::pin(async move {
            let mut conn = self.db.pool().acquire().await.map_err(StoreError::query("finding a patient"))?;
            match id.kind {
                IdentifierKind::Ins => patient_with_ins_number(&mut conn, &id.value).await,
                _ => patient_with_identifier(&mut conn, &id).await,
            }
        })
    }

    fn linked_patients(&self, id: PatientId) -> StoreFuture<'_, Vec<PatientId>> {
        Box::pin(async move {
            let sql = sqlx::AssertSqlSafe(format!("SELECT id FROM patients WHERE id IN {RECORDS} AND id <> $1 ORDER BY created_at, id"));
            let rows: Vec<String> = sqlx::query_scalar(sql)
                .bind(id.to_string())
                .fetch_all(self.db.pool())
                .await
                .map_err(StoreError::query("reading linked records"))?;
            rows.iter().map(|id| parse_uuid(id, "patient id").map(PatientId)).collect()
        })
    }

    fn link_patients(&self, a: PatientId, b: PatientId, by: Option<Uuid>) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            if a == b {
                return Ok(false);
            }
            let mut tx = self.db.begin_write().await.map_err(StoreError::query("starting a transaction"))?;
            let linked: Option<i64> = sqlx::query_scalar(
                "SELECT 1 FROM patient_links WHERE unlinked_at IS NULL AND ((patient_a = $1 AND patient_b = $2) OR (patient_a = $2 AND patient_b = $1))",
            )
            .bind(a.to_string())
            .bind(b.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::query("reading a link"))?;
            if linked.is_some() {
                return Ok(false);
            }
            sqlx::query("INSERT INTO patient_links (id, patient_a, patient_b, linked_by, linked_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(Uuid::new_v4().to_string())
                .bind(a.to_string())
                .bind(b.to_string())
                .bind(by.map(|u| u.to_string()))
                .bind(now_rfc3339())
                .execute(&mut *tx)
                .await
                .map_err(StoreError::query("linking two records"))?;
            tx.commit().await.map_err(StoreError::query("committing a link"))?;
            Ok(true)
        })
    }

    fn unlink_patients(&self, a: PatientId, b: PatientId, by: Option<Uuid>) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let done = sqlx::query(
                "UPDATE patient_links SET unlinked_at = $3, unlinked_by = $4
                 WHERE unlinked_at IS NULL AND ((patient_a = $1 AND patient_b = $2) OR (patient_a = $2 AND patient_b = $1))",
            )
            .bind(a.to_string())
            .bind(b.to_string())
            .bind(now_rfc3339())
            .bind(by.map(|u| u.to_string()))
            .execute(self.db.pool())
            .await
            .map_err(StoreError::query("unlinking two records"))?
            .rows_affected();
            Ok(done > 0)
        })
    }

    fn treatment_targets(&self, patient: PatientId) -> StoreFuture<'_, Vec<bioviewer_core::judge::TreatmentTarget>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT t.analyte, t.low, t.high, t.unit, a.display_name, t.set_at FROM treatment_targets t
                 JOIN accounts a ON a.id = t.set_by WHERE t.patient_id = $1 AND t.ended_at IS NULL ORDER BY t.analyte",
            )
            .bind(patient.to_string())
            .fetch_all(self.db.pool())
            .await
            .map_err(StoreError::query("reading treatment targets"))?;
            rows.iter()
                .map(|row| {
                    let get = |name: &'static str| {
                        row.try_get::<Option<String>, _>(name).map_err(StoreError::query("reading a treatment target"))
                    };
                    let bound = |s: Option<String>| -> Result<Option<bioviewer_core::cda::Decimal>, StoreError> {
                        s.map(|s| {
                            bioviewer_core::cda::Decimal::parse(&s)
                                .ok_or_else(|| StoreError::Corrupt("a target bound is not a number".into()))
                        })
                        .transpose()
                    };
                    Ok(bioviewer_core::judge::TreatmentTarget {
                        analyte: get("analyte")?.unwrap_or_default(),
                        low: bound(get("low")?)?,
                        high: bound(get("high")?)?,
                        unit: get("unit")?,
                        set_by: get("display_name")?.unwrap_or_default(),
                        set_at: get("set_at")?.unwrap_or_default(),
                        applies: true,
                    })
                })
                .collect()
        })
    }

    fn set_treatment_target(&self, patient: PatientId, target: NewTarget) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let now = now_rfc3339();
            let mut tx = self.db.begin_write().await.map_err(StoreError::query("starting a transaction"))?;
            sqlx::query(
                "UPDATE treatment_targets SET ended_at = $3, ended_by = $4 WHERE patient_id = $1 AND analyte = $2 AND ended_at IS NULL",
            )
            .bind(patient.to_string())
            .bind(&target.analyte)
            .bind(&now)
            .bind(target.by.to_string())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::query("ending a treatment target"))?;
            sqlx::query(
                "INSERT INTO treatment_targets (id, patient_id, analyte, low, high, unit, set_by, set_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(Uuid::new_v4().to_string())
            .bind(patient.to_string())
            .bind(&target.analyte)
            .bind(target.low.as_ref().map(|d| d.as_str().to_string()))
            .bind(target.high.as_ref().map(|d| d.as_str().to_string()))
            .bind(&target.unit)
            .bind(target.by.to_string())
            .bind(&now)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::query("setting a treatment target"))?;
            tx.commit().await.map_err(StoreError::query("committing a treatment target"))
        })
    }

    fn end_treatment_target(&self, patient: PatientId, analyte: String, by: Uuid) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let done = sqlx::query(
                "UPDATE treatment_targets SET ended_at = $3, ended_by = $4 WHERE patient_id = $1 AND analyte = $2 AND ended_at IS NULL",
            )
            .bind(patient.to_string())
            .bind(&analyte)
            .bind(now_rfc3339())
            .bind(by.to_string())
            .execute(self.db.pool())
            .await
            .map_err(StoreError::query("ending a treatment target"))?
            .rows_affected();
            Ok(done > 0)
        })
    }

    fn put_upload_outcome(&self, account: Uuid, files_json: String, now: i64, ttl_seconds: i64) -> StoreFuture<'_, String> {
        Box::pin(async move {
            let token = Uuid::new_v4().simple().to_string();
            let mut tx = self.db.begin_write().await.map_err(StoreError::query("keeping an upload's outcome"))?;
            sqlx::query("DELETE FROM upload_outcomes WHERE created_at < $1")
                .bind(now - ttl_seconds)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::query("forgetting old upload outcomes"))?;
            sqlx::query("INSERT INTO upload_outcomes (token, account_id, files_json, created_at) VALUES ($1, $2, $3, $4)")
                .bind(&token)
                .bind(account.to_string())
                .bind(files_json)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::query("keeping an upload's outcome"))?;
            tx.commit().await.map_err(StoreError::query("keeping an upload's outcome"))?;
            Ok(token)
        })
    }

    fn upload_outcome(&self, account: Uuid, token: String, now: i64, ttl_seconds: i64) -> StoreFuture<'_, Option<String>> {
        Box::pin(async move {
            sqlx::query_scalar("SELECT files_json FROM upload_outcomes WHERE token = $1 AND account_id = $2 AND created_at >= $3")
                .bind(token)
                .bind(account.to_string())
                .bind(now - ttl_seconds)
                .fetch_optional(self.db.pool())
                .await
                .map_err(StoreError::query("reading an upload's outcome"))
        })
    }

    fn document_raw(&self, id: DocumentId) -> StoreFuture<'_, Option<Vec<u8>>> {
        Box::pin(async move {
            sqlx::query_scalar::<_, Vec<u8>>("SELECT raw FROM document_contents WHERE document_id = $1")
                .bind(id.to_string())
                .fetch_optional(self.db.pool())
                .await
                .map_err(StoreError::query("reading a document's bytes"))
        })
    }
}
