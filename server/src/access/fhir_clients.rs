//! Bearer tokens for the systems that read the FHIR API (an EHR, a hospital's results module).
//!
//! An administrator issues a token to a named system, on behalf of one professional account
//! and with a scope; the token is shown once and only its SHA-256 is kept. The system then
//! sees exactly the patients that professional may see now (care relationships, prescriptions),
//! never through break-the-glass; the token expires, can be revoked, and every use is in the
//! audit trail with the system's name. It opens the FHIR routes only (`/fhir/...`): the guard
//! reads it nowhere else.

use sqlx::Row;
use uuid::Uuid;

use super::{
    ACCOUNT_COLUMNS, Access, AccessError, AccessMode, Action, AdminActor, AdminError, AdminProblem, AuditEntry, Principal, Role,
    account_from_row, now_epoch, query_err, secrets,
};

/// The one scope Bioviewer grants: reading the patients the account may see.
pub const READ_SCOPE: &str = "patient/*.read";
/// The longest a token may live.
pub const MAX_DAYS: u32 = 730;

/// Whether a principal may use this reason to open a record: a system reading with a token on
/// a professional's behalf may not use break-the-glass (it needs a person and a reason).
pub(super) fn client_may_use(principal: &Principal, mode: AccessMode) -> bool {
    principal.fhir_client.is_none() || !matches!(mode, AccessMode::BreakTheGlass { .. })
}

/// What an administrator asks for when issuing a token.
pub struct NewFhirClient<'a> {
    /// The system's name, as the audit trail and the patient's access log will name it.
    pub name: &'a str,
    /// The professional account the system reads on behalf of.
    pub login: &'a str,
    pub scope: &'a str,
    pub days: u32,
}

/// An issued client, as listed (never its token).
#[derive(Debug, Clone)]
pub struct FhirClient {
    pub id: String,
    pub name: String,
    pub login: String,
    pub scope: String,
    pub expires_at: i64,
    pub revoked: bool,
}

/// Checks an administrator's request; the problem as data.
fn validate(new: &NewFhirClient<'_>) -> Result<(), AdminProblem> {
    let name = new.name.trim();
    if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
        return Err(AdminProblem::NoName);
    }
    if new.scope != READ_SCOPE {
        return Err(AdminProblem::BadScope);
    }
    if new.days == 0 || new.days > MAX_DAYS {
        return Err(AdminProblem::BadDuration);
    }
    Ok(())
}

impl Access {
    /// Issues a token to a system; returns it (shown once: only its digest is stored).
    pub async fn issue_fhir_client(&self, by: AdminActor<'_>, new: NewFhirClient<'_>) -> Result<String, AdminError> {
        let admin = Self::authorize_admin(by)?;
        validate(&new).map_err(AdminError::Invalid)?;
        let account = self.account_by_login(new.login).await?.ok_or(AdminError::Invalid(AdminProblem::UnknownAccount))?;
        if account.role != Role::Professional {
            return Err(AdminError::Invalid(AdminProblem::NotAProfessional));
        }
        let token = secrets::new_token().map_err(|_| AdminError::Invalid(AdminProblem::Hashing))?;
        let now = now_epoch();
        let id = Uuid::new_v4().to_string();
        sqlx::query(
            "INSERT INTO fhir_clients (id, name, account_id, scope, token_sha256, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&id)
        .bind(new.name.trim())
        .bind(account.id.to_string())
        .bind(new.scope)
        .bind(secrets::token_digest(&token))
        .bind(now)
        .bind(now + i64::from(new.days) * 86_400)
        .execute(self.db.pool())
        .await
        .map_err(|e| match e {
            sqlx::Error::Database(d) if d.is_unique_violation() => AdminError::Invalid(AdminProblem::ClientNameTaken),
            e => AdminError::Failed(query_err("issuing a FHIR client")(e)),
        })?;
        self.record(AuditEntry {
            actor: admin.map(|p| &p.account),
            action: Some(Action::FhirClientIssued),
            mode: admin.is_none().then_some("operator"),
            address: admin.and_then(|p| p.address.as_deref()),
            detail: Some(format!("fhir_client={} account={} scope={}", new.name.trim(), account.id, new.scope)),
            ..Default::default()
        })
        .await?;
        Ok(token)
    }

    /// Revokes a system's token at once; false when no such (unrevoked) client.
    pub async fn revoke_fhir_client(&self, by: AdminActor<'_>, name: &str) -> Result<bool, AdminError> {
        let admin = Self::authorize_admin(by)?;
        let done = sqlx::query("UPDATE fhir_clients SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL")
            .bind(now_epoch())
            .bind(name.trim())
            .execute(self.db.pool())
            .await
            .map_err(query_err("revoking a FHIR client"))?
            .rows_affected()
            > 0;
        if done {
            self.record(AuditEntry {
                actor: admin.map(|p| &p.account),
                action: Some(Action::FhirClientRevoked),
                mode: admin.is_none().then_some("operator"),
                address: admin.and_then(|p| p.address.as_deref()),
                detail: Some(format!("fhir_client={}", name.trim())),
                ..Default::default()
            })
            .await?;
        }
        Ok(done)
    }

    pub async fn fhir_clients(&self, by: AdminActor<'_>) -> Result<Vec<FhirClient>, AdminError> {
        Self::authorize_admin(by)?;
        let rows = sqlx::query(
            "SELECT c.id, c.name, a.login, c.scope, c.expires_at, c.revoked_at FROM fhir_clients c JOIN accounts a ON a.id = c.account_id
             ORDER BY c.name",
        )
        .fetch_all(self.db.pool())
        .await
        .map_err(query_err("listing FHIR clients"))?;
        let q = || query_err("listing FHIR clients");
        rows.iter()
            .map(|r| {
                Ok(FhirClient {
                    id: r.try_get("id").map_err(q())?,
                    name: r.try_get("name").map_err(q())?,
                    login: r.try_get("login").map_err(q())?,
                    scope: r.try_get("scope").map_err(q())?,
                    expires_at: r.try_get("expires_at").map_err(q())?,
                    revoked: r.try_get::<Option<i64>, _>("revoked_at").map_err(q())?.is_some(),
                })
            })
            .collect::<Result<_, AccessError>>()
            .map_err(AdminError::Failed)
    }

    /// The patient a stored document belongs to (the FHIR API reads an Observation or a
    /// DiagnosticReport by an id made of its document's id). Only a lookup: the caller then
    /// passes that patient's gate like any other read.
    pub async fn patient_of_document(&self, document: uuid::Uuid) -> Result<Option<crate::domain::PatientId>, AccessError> {
        let id: Option<Option<String>> = sqlx::query_scalar("SELECT patient_id FROM documents WHERE id = $1")
            .bind(document.to_string())
            .fetch_optional(self.db.pool())
            .await
            .map_err(query_err("finding a document's patient"))?;
        Ok(id.flatten().as_deref().and_then(crate::domain::PatientId::parse))
    }

    /// The principal a bearer token acts as: the professional account it was issued for, marked
    /// with the system's name. None for an unknown, revoked or expired token, a disabled
    /// account, or a scope Bioviewer does not grant.
    pub async fn fhir_client_principal(&self, token: &str, address: Option<&str>) -> Result<Option<Principal>, AccessError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {ACCOUNT_COLUMNS}, c.name AS client_name, c.scope AS client_scope
             FROM fhir_clients c JOIN accounts a ON a.id = c.account_id
             WHERE c.token_sha256 = $1 AND c.revoked_at IS NULL AND c.expires_at > $2"
        ));
        let Some(row) = sqlx::query(sql)
            .bind(secrets::token_digest(token))
            .bind(now_epoch())
            .fetch_optional(self.db.pool())
            .await
            .map_err(query_err("reading a FHIR client"))?
        else {
            return Ok(None);
        };
        let account = account_from_row(&row)?;
        let scope: String = row.try_get("client_scope").map_err(query_err("reading a FHIR client"))?;
        if account.disabled || account.role != Role::Professional || scope != READ_SCOPE {
            return Ok(None);
        }
        Ok(Some(Principal {
            account,
            csrf_token: String::new(),
            session_digest: String::new(),
            address: address.map(str::to_string),
            fhir_client: Some(row.try_get("client_name").map_err(query_err("reading a FHIR client"))?),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_checked_before_anything_is_written() {
        let ok = NewFhirClient { name: "EHR", login: "gp", scope: READ_SCOPE, days: 30 };
        assert_eq!(validate(&ok), Ok(()));
        assert_eq!(validate(&NewFhirClient { name: " ", ..ok }), Err(AdminProblem::NoName));
        assert_eq!(validate(&NewFhirClient { name: "a\nb", ..ok }), Err(AdminProblem::NoName));
        assert_eq!(validate(&NewFhirClient { scope: "patient/*.write", ..ok }), Err(AdminProblem::BadScope));
        assert_eq!(validate(&NewFhirClient { days: 0, ..ok }), Err(AdminProblem::BadDuration));
        assert_eq!(validate(&NewFhirClient { days: MAX_DAYS + 1, ..ok }), Err(AdminProblem::BadDuration));
    }
}
