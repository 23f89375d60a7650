//! Who may see what: accounts, sessions, care relationships, break-the-glass and the audit trail.
//!
//! Module map:
//! - this module: the [`Access`] service the HTTP layer and the CLI call (SQLite through sqlx);
//! - [`audit`]: the audit trail's hash chain, as pure functions;
//! - [`secrets`]: argon2id passwords, random tokens;
//! - [`ratelimit`]: sign-in attempts per account and per address.
//!
//! The rules, in one place ([`Access::mode_for`]): a professional sees a patient through a care
//! relationship in force (attending GP, hospital stay), by having prescribed one of the patient's
//! reports, or in break-the-glass mode (a reason, a limited duration); a patient sees only their
//! own record; an administrator sees no results. Every patient access goes through
//! [`Access::open_patient`], which decides and writes the audit record in one step, so no route
//! can show data without leaving a trace. A refusal looks the same whether the patient exists or
//! not (same queries, same answer).

pub mod audit;
pub mod fhir_clients;
pub mod ratelimit;
pub mod secrets;

use bioviewer_app::model::AccessLogLine;
use std::time::{Duration, Instant};

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::domain::PatientId;
use audit::{AuditRecord, ChainBreak, ChainHead, ChainVerifier, GENESIS};
use ratelimit::SignInLimiter;
use secrets::SecretError;

/// How long sessions and break-the-glass accesses last.
#[derive(Debug, Clone)]
pub struct AccessSettings {
    /// A session unused this long ends.
    pub idle_timeout: Duration,
    /// A session ends this long after sign-in, however busy.
    pub absolute_timeout: Duration,
    /// Cookies carry `Secure` (the server is reached over TLS, directly or through a proxy).
    pub secure_cookies: bool,
    /// The longest break-the-glass access a professional may ask for.
    pub break_glass_max: Duration,
}

impl Default for AccessSettings {
    fn default() -> Self {
        AccessSettings {
            idle_timeout: Duration::from_secs(30 * 60),
            absolute_timeout: Duration::from_secs(12 * 3600),
            secure_cookies: false,
            break_glass_max: Duration::from_secs(12 * 3600),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("database error while {operation}: {source}")]
    Query { operation: &'static str, source: sqlx::Error },
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("stored access data is inconsistent: {0}")]
    Corrupt(String),
}

fn query_err(operation: &'static str) -> impl FnOnce(sqlx::Error) -> AccessError {
    move |source| AccessError::Query { operation, source }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Professional,
    Patient,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Professional => "professional",
            Role::Patient => "patient",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        [Role::Professional, Role::Patient, Role::Admin].into_iter().find(|r| r.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub id: Uuid,
    pub login: String,
    pub role: Role,
    pub display_name: String,
    /// Professionals: national id (`root^extension`), profession and structure, as the VIHF
    /// sent to the DMP states them.
    pub rpps: Option<String>,
    pub profession: Option<String>,
    pub structure_id: Option<String>,
    pub structure_name: Option<String>,
    /// Patients: their own record.
    pub patient_id: Option<PatientId>,
    pub disabled: bool,
    /// Signed in through the OpenID provider (strong authentication: the VIHF says `AIR`).
    pub oidc_linked: bool,
}

/// A signed-in user, for the duration of one request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub account: Account,
    /// Sent back with every form that changes something.
    pub csrf_token: String,
    session_digest: String,
    /// The client's address, for the audit trail.
    pub address: Option<String>,
    /// Set when a system reads the FHIR API with a bearer token on this account's behalf: its
    /// name goes with every audit record, and it never uses break-the-glass.
    pub fhir_client: Option<String>,
}

/// The reason the law accepts for a professional seeing a patient's results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessMode {
    AttendingGp,
    HospitalStay,
    /// Prescribed one of the patient's reports.
    Prescriber,
    BreakTheGlass {
        /// A regulation physician's access (centre 15) rather than break-the-glass.
        regulation: bool,
        expires_at: i64,
    },
    OwnRecord,
}

impl AccessMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessMode::AttendingGp => "attending_gp",
            AccessMode::HospitalStay => "hospital_stay",
            AccessMode::Prescriber => "prescriber",
            AccessMode::BreakTheGlass { regulation: true, .. } => "centre_15",
            AccessMode::BreakTheGlass { .. } => "break_glass",
            AccessMode::OwnRecord => "own_record",
        }
    }

    /// The access mode the VIHF sent to the DMP must carry for this access.
    pub fn dmp_access_mode(self) -> &'static str {
        match self {
            AccessMode::BreakTheGlass { regulation: true, .. } => "centre_15",
            AccessMode::BreakTheGlass { .. } => "bris_de_glace",
            _ => "normal",
        }
    }
}

/// What was done, as the audit trail records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    ViewPatient,
    ViewHistory,
    ViewDocument,
    ViewAttachment,
    ViewChart,
    ViewAccessLog,
    ExportJson,
    ExportCsv,
    ExportFhir,
    BreakGlassStart,
    BreakGlassEnd,
    SignIn,
    SignInRefused,
    SignOut,
    AccountCreated,
    AccountDisabled,
    AccountEnabled,
    RelationshipAdded,
    RelationshipEnded,
    Sync,
    Import,
    FhirClientIssued,
    FhirClientRevoked,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::ViewPatient => "view_patient",
            Action::ViewHistory => "view_history",
            Action::ViewDocument => "view_document",
            Action::ViewAttachment => "view_attachment",
            Action::ViewChart => "view_chart",
            Action::ViewAccessLog => "view_access_log",
            Action::ExportJson => "export_json",
            Action::ExportCsv => "export_csv",
            Action::ExportFhir => "export_fhir",
            Action::BreakGlassStart => "break_glass_start",
            Action::BreakGlassEnd => "break_glass_end",
            Action::SignIn => "sign_in",
            Action::SignInRefused => "sign_in_refused",
            Action::SignOut => "sign_out",
            Action::AccountCreated => "account_created",
            Action::AccountDisabled => "account_disabled",
            Action::AccountEnabled => "account_enabled",
            Action::RelationshipAdded => "relationship_added",
            Action::RelationshipEnded => "relationship_ended",
            Action::Sync => "dmp_sync",
            Action::Import => "import",
            Action::FhirClientIssued => "fhir_client_issued",
            Action::FhirClientRevoked => "fhir_client_revoked",
        }
    }
}

/// Why a patient's data is not served.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("not signed in")]
    NotSignedIn,
    /// No reason to see this patient, or no such patient: the two are not told apart.
    #[error("no access to this patient")]
    NoAccess,
    #[error(transparent)]
    Failed(#[from] AccessError),
}

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("unknown login or wrong password")]
    Invalid,
    #[error("too many failed attempts; try again later")]
    RateLimited,
    #[error(transparent)]
    Failed(#[from] AccessError),
}

#[derive(Debug, thiserror::Error)]
pub enum BreakGlassError {
    #[error("only professionals may break the glass")]
    NotAProfessional,
    #[error("state the reason (at least {min} characters)")]
    ReasonTooShort { min: usize },
    #[error("the duration must be between 15 minutes and {max_minutes} minutes")]
    BadDuration { max_minutes: u64 },
    #[error("no patient with this INS in Bioviewer")]
    UnknownPatient,
    #[error(transparent)]
    Failed(#[from] AccessError),
}

/// What is wrong with an administrator's request (a code the interface translates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AdminProblem {
    #[error("a login is 1 to 64 letters, digits, '.', '_', '-' or '@'")]
    BadLogin,
    #[error("a display name is required")]
    NoName,
    #[error("a password has at least 12 characters")]
    ShortPassword,
    #[error("no patient with this INS in Bioviewer")]
    UnknownPatient,
    #[error("a patient account names the patient's INS")]
    NoPatientIns,
    #[error("this login is taken")]
    LoginTaken,
    #[error("an administrator cannot disable their own account")]
    OwnAccount,
    #[error("no account with this login")]
    UnknownAccount,
    #[error("the kind is attending_gp or hospital_stay")]
    BadKind,
    #[error("care relationships are for professionals")]
    NotAProfessional,
    #[error("the duration is 1 to 3650 days")]
    BadDuration,
    #[error("unknown role")]
    BadRole,
    #[error("the password could not be hashed")]
    Hashing,
    #[error("another account has this national id")]
    NationalIdTaken,
    #[error("only professionals carry a national id")]
    NationalIdNotAProfessional,
    #[error("the only scope granted is patient/*.read")]
    BadScope,
    #[error("a FHIR client has this name")]
    ClientNameTaken,
}

impl AdminProblem {
    pub fn code(self) -> &'static str {
        match self {
            AdminProblem::BadLogin => "bad_login",
            AdminProblem::NoName => "no_name",
            AdminProblem::ShortPassword => "short_password",
            AdminProblem::UnknownPatient => "unknown_patient",
            AdminProblem::NoPatientIns => "no_patient_ins",
            AdminProblem::LoginTaken => "login_taken",
            AdminProblem::OwnAccount => "own_account",
            AdminProblem::UnknownAccount => "unknown_account",
            AdminProblem::BadKind => "bad_kind",
            AdminProblem::NotAProfessional => "not_a_professional",
            AdminProblem::BadDuration => "bad_duration",
            AdminProblem::BadRole => "bad_role",
            AdminProblem::Hashing => "hashing",
            AdminProblem::NationalIdTaken => "national_id_taken",
            AdminProblem::NationalIdNotAProfessional => "national_id_not_a_professional",
            AdminProblem::BadScope => "bad_scope",
            AdminProblem::ClientNameTaken => "client_name_taken",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("only administrators may do this")]
    NotAnAdmin,
    #[error("invalid input: {0}")]
    Invalid(AdminProblem),
    #[error(transparent)]
    Failed(#[from] AccessError),
}

/// Who asks for an administration change or listing.
#[derive(Debug, Clone, Copy)]
pub enum AdminActor<'a> {
    /// The operator at the command line: shell access to the server is already every right.
    Operator,
    /// Someone through the web application: allowed only for a signed-in administrator.
    Web(Option<&'a Principal>),
}

/// Whether this account may administer accounts and care relationships (a plain rule).
pub fn may_administer(account: &Account) -> bool {
    account.role == Role::Admin && !account.disabled
}

/// A new session: the token goes in the cookie, never in the database.
pub struct SignedIn {
    pub token: String,
    pub principal: Principal,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct BreakGlassGrant {
    pub patient_id: String,
    pub reason: String,
    pub expires_at: i64,
}

/// A care relationship as the administrator sees it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct RelationshipEntry {
    pub id: String,
    pub login: String,
    #[sqlx(rename = "display_name")]
    pub professional: String,
    #[sqlx(rename = "ins")]
    pub patient_ins: String,
    pub patient_name: String,
    pub kind: String,
    pub starts_at: i64,
    pub ends_at: Option<i64>,
}

/// An account to create.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub login: String,
    pub password: Option<String>,
    pub role: Role,
    pub display_name: String,
    pub rpps: Option<String>,
    pub profession: Option<String>,
    pub structure_id: Option<String>,
    pub structure_name: Option<String>,
    /// Patients: the INS of their record (15 digits, as the documents carry it).
    pub patient_ins: Option<String>,
}

/// One audit entry to append.
#[derive(Debug, Clone, Default)]
pub struct AuditEntry<'a> {
    pub actor: Option<&'a Account>,
    pub patient: Option<PatientId>,
    pub action: Option<Action>,
    pub mode: Option<&'a str>,
    pub address: Option<&'a str>,
    pub detail: Option<String>,
}

const ACCOUNT_COLUMNS: &str = "a.id, a.login, a.role, a.display_name, a.rpps, a.profession, a.structure_id, a.structure_name, a.patient_id, \
     a.disabled, a.oidc_subject IS NOT NULL AS oidc_linked";

fn account_from_row(row: &SqliteRow) -> Result<Account, AccessError> {
    let q = || query_err("reading an account");
    let text = |name: &str| row.try_get::<Option<String>, _>(name).map_err(q());
    let id: String = row.try_get("id").map_err(q())?;
    let role: String = row.try_get("role").map_err(q())?;
    Ok(Account {
        id: Uuid::parse_str(&id).map_err(|_| AccessError::Corrupt("an account id is not a UUID".into()))?,
        login: row.try_get("login").map_err(q())?,
        role: Role::parse(&role).ok_or_else(|| AccessError::Corrupt(format!("unknown role {role}")))?,
        display_name: row.try_get("display_name").map_err(q())?,
        rpps: text("rpps")?,
        profession: text("profession")?,
        structure_id: text("structure_id")?,
        structure_name: text("structure_name")?,
        patient_id: text("patient_id")?.as_deref().and_then(PatientId::parse),
        disabled: row.try_get::<i64, _>("disabled").map_err(q())? != 0,
        oidc_linked: row.try_get::<i64, _>("oidc_linked").map_err(q())? != 0,
    })
}

fn now_epoch() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The minimum length of a break-the-glass reason.
pub const BREAK_GLASS_REASON_MIN: usize = 15;

pub struct Access {
    pool: SqlitePool,
    settings: AccessSettings,
    limiter: SignInLimiter,
    /// Serialises appends to the audit chain within this process (the database transaction
    /// serialises them between processes).
    audit_lock: Mutex<()>,
    /// Verified against when the login is unknown, so both failures take the same time.
    dummy_hash: String,
}

impl Access {
    pub fn new(pool: SqlitePool, settings: AccessSettings) -> Result<Access, AccessError> {
        Ok(Access {
            pool,
            settings,
            limiter: SignInLimiter::new(Duration::from_secs(15 * 60), 5, 30),
            audit_lock: Mutex::new(()),
            dummy_hash: secrets::hash_password("no account has this password")?,
        })
    }

    pub fn settings(&self) -> &AccessSettings {
        &self.settings
    }

    // --- sign-in and sessions ---------------------------------------------------------------

    /// Checks a login and password and opens a new session (a new id: never one the browser
    /// brought). Failures are rate-limited per account and per address.
    pub async fn sign_in(&self, login: &str, password: &str, address: Option<&str>) -> Result<SignedIn, SignInError> {
        let login = login.trim().to_lowercase();
        let from = address.unwrap_or("unknown");
        if !self.limiter.allowed(&login, from, Instant::now()) {
            self.record(AuditEntry {
                action: Some(Action::SignInRefused),
                address,
                detail: Some("rate_limited".into()),
                ..Default::default()
            })
            .await?;
            return Err(SignInError::RateLimited);
        }
        let sql = sqlx::AssertSqlSafe(format!("SELECT {ACCOUNT_COLUMNS}, a.password_hash FROM accounts a WHERE a.login = ?"));
        let row = sqlx::query(sql).bind(&login).fetch_optional(&self.pool).await.map_err(query_err("looking up an account"))?;
        let (account, hash) = match &row {
            Some(row) => {
                (Some(account_from_row(row)?), row.try_get::<Option<String>, _>("password_hash").map_err(query_err("reading an account"))?)
            }
            None => (None, None),
        };
        // Always run one argon2 verification, so an unknown login answers as slowly as a known one.
        let password = password.to_string();
        let hash_to_check = hash.clone().unwrap_or_else(|| self.dummy_hash.clone());
        let matches = tokio::task::spawn_blocking(move || secrets::verify_password(&password, &hash_to_check)).await.unwrap_or(false);
        let account = match account {
            Some(account) if matches && hash.is_some() && !account.disabled => account,
            other => {
                self.limiter.record_failure(&login, from, Instant::now());
                self.record(AuditEntry {
                    actor: other.as_ref(),
                    action: Some(Action::SignInRefused),
                    address,
                    detail: Some("bad_credentials".into()),
                    ..Default::default()
                })
                .await?;
                return Err(SignInError::Invalid);
            }
        };
        self.limiter.record_success(&login);
        let signed_in = self.open_session(account, address).await?;
        self.record(AuditEntry { actor: Some(&signed_in.principal.account), action: Some(Action::SignIn), address, ..Default::default() })
            .await?;
        Ok(signed_in)
    }

    /// Signs in a professional the OpenID provider vouches for: the account linked to that
    /// subject, else the account with that national id (linked now), else a new professional
    /// account (no care relationship yet). The identity is refreshed from the claims each time.
    pub async fn sign_in_oidc(&self, identity: &crate::oidc::ProfessionalIdentity, address: Option<&str>) -> Result<SignedIn, AccessError> {
        let q = query_err("signing in with OpenID Connect");
        let existing: Option<String> = sqlx::query_scalar(
            "SELECT id FROM accounts WHERE oidc_subject = ?1
             UNION ALL SELECT id FROM accounts WHERE oidc_subject IS NULL AND ?2 IS NOT NULL AND rpps = ?2 AND role = 'professional'
             LIMIT 1",
        )
        .bind(&identity.subject)
        .bind(identity.national_id.as_deref())
        .fetch_optional(&self.pool)
        .await
        .map_err(q)?;
        let id = match existing {
            Some(id) => {
                sqlx::query(
                    "UPDATE accounts SET oidc_subject = ?, display_name = ?, rpps = COALESCE(?, rpps), profession = COALESCE(?, profession),
                         structure_id = COALESCE(?, structure_id), structure_name = COALESCE(?, structure_name) WHERE id = ?",
                )
                .bind(&identity.subject)
                .bind(&identity.display_name)
                .bind(identity.national_id.as_deref())
                .bind(identity.profession.as_deref())
                .bind(identity.structure_id.as_deref())
                .bind(identity.structure_name.as_deref())
                .bind(&id)
                .execute(&self.pool)
                .await
                .map_err(query_err("updating an account from OpenID claims"))?;
                id
            }
            None => {
                let id = Uuid::new_v4().to_string();
                let login: String = format!("oidc-{}", identity.subject)
                    .to_lowercase()
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() || "._-@".contains(c) { c } else { '-' })
                    .take(64)
                    .collect();
                sqlx::query(
                    "INSERT INTO accounts (id, login, password_hash, role, display_name, rpps, profession, structure_id, structure_name, oidc_subject, created_at)
                     VALUES (?, ?, NULL, 'professional', ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(&id)
                .bind(&login)
                .bind(&identity.display_name)
                .bind(identity.national_id.as_deref())
                .bind(identity.profession.as_deref())
                .bind(identity.structure_id.as_deref())
                .bind(identity.structure_name.as_deref())
                .bind(&identity.subject)
                .bind(chrono::Utc::now().to_rfc3339())
                .execute(&self.pool)
                .await
                .map_err(query_err("creating an account from OpenID claims"))?;
                self.record(AuditEntry {
                    action: Some(Action::AccountCreated),
                    address,
                    detail: Some(format!("account={id} role=professional source=oidc")),
                    ..Default::default()
                })
                .await?;
                id
            }
        };
        let sql = sqlx::AssertSqlSafe(format!("SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.id = ?"));
        let row = sqlx::query(sql).bind(&id).fetch_one(&self.pool).await.map_err(query_err("reading an account"))?;
        let account = account_from_row(&row)?;
        if account.disabled || account.role != Role::Professional {
            return Err(AccessError::Corrupt("this OpenID subject is linked to an account that may not sign in this way".into()));
        }
        let signed_in = self.open_session(account, address).await?;
        self.record(AuditEntry {
            actor: Some(&signed_in.principal.account),
            action: Some(Action::SignIn),
            address,
            detail: Some("oidc".into()),
            ..Default::default()
        })
        .await?;
        Ok(signed_in)
    }

    async fn open_session(&self, account: Account, address: Option<&str>) -> Result<SignedIn, AccessError> {
        let token = secrets::new_token()?;
        let csrf_token = secrets::new_token()?;
        let digest = secrets::token_digest(&token);
        let now = now_epoch();
        sqlx::query(
            "INSERT INTO sessions (token_sha256, account_id, csrf_token, created_at, last_seen_at, address) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&digest)
        .bind(account.id.to_string())
        .bind(&csrf_token)
        .bind(now)
        .bind(now)
        .bind(address)
        .execute(&self.pool)
        .await
        .map_err(query_err("opening a session"))?;
        Ok(SignedIn { token, principal: Principal { account, csrf_token, session_digest: digest, address: address.map(str::to_string), fhir_client: None } })
    }

    /// The signed-in user of a session token, if the session is still valid (not signed out,
    /// not idle too long, not too old, account not disabled). Expired sessions are deleted.
    pub async fn session(&self, token: &str, address: Option<&str>) -> Result<Option<Principal>, AccessError> {
        let digest = secrets::token_digest(token);
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {ACCOUNT_COLUMNS}, s.csrf_token, s.created_at, s.last_seen_at
             FROM sessions s JOIN accounts a ON a.id = s.account_id WHERE s.token_sha256 = ?"
        ));
        let Some(row) = sqlx::query(sql).bind(&digest).fetch_optional(&self.pool).await.map_err(query_err("reading a session"))? else {
            return Ok(None);
        };
        let account = account_from_row(&row)?;
        let q = || query_err("reading a session");
        let created_at: i64 = row.try_get("created_at").map_err(q())?;
        let last_seen_at: i64 = row.try_get("last_seen_at").map_err(q())?;
        let now = now_epoch();
        let idle = self.settings.idle_timeout.as_secs() as i64;
        let absolute = self.settings.absolute_timeout.as_secs() as i64;
        if account.disabled || now - last_seen_at > idle || now - created_at > absolute {
            self.end_session(&digest).await?;
            return Ok(None);
        }
        // Written at most once a minute: reading a page must not mean a write per request.
        if now - last_seen_at >= 60 {
            sqlx::query("UPDATE sessions SET last_seen_at = ? WHERE token_sha256 = ?")
                .bind(now)
                .bind(&digest)
                .execute(&self.pool)
                .await
                .map_err(query_err("touching a session"))?;
        }
        Ok(Some(Principal {
            account,
            csrf_token: row.try_get("csrf_token").map_err(q())?,
            session_digest: digest,
            address: address.map(str::to_string),
            fhir_client: None,
        }))
    }

    async fn end_session(&self, digest: &str) -> Result<(), AccessError> {
        sqlx::query("DELETE FROM sessions WHERE token_sha256 = ?")
            .bind(digest)
            .execute(&self.pool)
            .await
            .map_err(query_err("ending a session"))?;
        Ok(())
    }

    /// Ends the session for good: the token no longer opens anything, even if replayed.
    pub async fn sign_out(&self, principal: &Principal) -> Result<(), AccessError> {
        self.end_session(&principal.session_digest).await?;
        self.record(AuditEntry {
            actor: Some(&principal.account),
            action: Some(Action::SignOut),
            address: principal.address.as_deref(),
            ..Default::default()
        })
        .await
    }

    /// Ends a session given its token (a browser signing in again over an old session).
    pub async fn discard_session_token(&self, token: &str) -> Result<(), AccessError> {
        self.end_session(&secrets::token_digest(token)).await
    }

    // --- who sees whom ----------------------------------------------------------------------

    /// Why this user may see this patient now, or `None`.
    pub async fn mode_for(&self, principal: &Principal, patient: PatientId) -> Result<Option<AccessMode>, AccessError> {
        let account = &principal.account;
        match account.role {
            Role::Admin => Ok(None),
            Role::Patient => Ok((account.patient_id == Some(patient)).then_some(AccessMode::OwnRecord)),
            Role::Professional => {
                let now = now_epoch();
                let rows = sqlx::query(
                    "SELECT kind, NULL AS expires_at FROM care_relationships
                         WHERE account_id = ?1 AND patient_id = ?2 AND starts_at <= ?3 AND (ends_at IS NULL OR ends_at > ?3)
                     UNION ALL
                     SELECT 'prescriber', NULL FROM (SELECT 1 FROM documents
                         WHERE ?4 IS NOT NULL AND prescriber_id = ?4 AND patient_id = ?2 AND source IN ('dmp', 'operator') LIMIT 1)
                     UNION ALL
                     SELECT CASE WHEN regulation = 1 THEN 'centre_15' ELSE 'break_glass' END, expires_at FROM break_glass
                         WHERE account_id = ?1 AND patient_id = ?2 AND ended_at IS NULL AND started_at <= ?3 AND expires_at > ?3",
                )
                .bind(account.id.to_string())
                .bind(patient.to_string())
                .bind(now)
                .bind(account.rpps.as_deref())
                .fetch_all(&self.pool)
                .await
                .map_err(query_err("checking a care relationship"))?;
                let mut modes = Vec::new();
                for row in &rows {
                    let kind: String = row.try_get("kind").map_err(query_err("checking a care relationship"))?;
                    let expires_at: Option<i64> = row.try_get("expires_at").map_err(query_err("checking a care relationship"))?;
                    modes.push(match kind.as_str() {
                        "attending_gp" => AccessMode::AttendingGp,
                        "hospital_stay" => AccessMode::HospitalStay,
                        "prescriber" => AccessMode::Prescriber,
                        other => AccessMode::BreakTheGlass { expires_at: expires_at.unwrap_or(0), regulation: other == "centre_15" },
                    });
                }
                // A recorded relationship is the strongest reason; break-the-glass the last resort.
                let rank = |m: &AccessMode| match m {
                    AccessMode::AttendingGp => 0,
                    AccessMode::HospitalStay => 1,
                    AccessMode::Prescriber => 2,
                    AccessMode::OwnRecord => 3,
                    AccessMode::BreakTheGlass { .. } => 4,
                };
                Ok(modes.into_iter().min_by_key(rank))
            }
        }
    }

    /// The one gate to a patient's data: decides, and records the access (or the refusal) in
    /// the audit trail before anything is read.
    pub async fn open_patient(
        &self,
        principal: Option<&Principal>,
        patient_id: &str,
        action: Action,
    ) -> Result<(PatientId, AccessMode), Refusal> {
        let principal = principal.ok_or(Refusal::NotSignedIn)?;
        // An id that does not parse is checked like any other (the nil UUID matches nobody), so
        // a refusal takes the same path whatever the id.
        let parsed = PatientId::parse(patient_id);
        let patient = parsed.unwrap_or(PatientId(Uuid::nil()));
        // A system reading on a professional's behalf never breaks the glass: that takes a
        // person stating a reason.
        let mode = self.mode_for(principal, patient).await?.filter(|m| fhir_clients::client_may_use(principal, *m));
        let client = principal.fhir_client.as_ref().map(|name| format!("fhir_client={name}"));
        let entry = |mode: Option<&'static str>, detail: Option<String>| AuditEntry {
            actor: Some(&principal.account),
            patient: parsed,
            action: Some(action),
            mode,
            address: principal.address.as_deref(),
            detail,
        };
        match mode {
            Some(mode) => {
                self.record(entry(Some(mode.as_str()), client)).await?;
                Ok((patient, mode))
            }
            None => {
                self.record(entry(Some("denied"), client)).await?;
                Err(Refusal::NoAccess)
            }
        }
    }

    /// The patients this user may see now, with the reason.
    pub async fn visible_patients(&self, principal: &Principal) -> Result<Vec<(PatientId, AccessMode)>, AccessError> {
        let account = &principal.account;
        match account.role {
            Role::Admin => Ok(Vec::new()),
            Role::Patient => Ok(account.patient_id.map(|p| (p, AccessMode::OwnRecord)).into_iter().collect()),
            Role::Professional => {
                let rows = sqlx::query(
                    "SELECT DISTINCT patient_id FROM care_relationships WHERE account_id = ?1 AND starts_at <= ?2 AND (ends_at IS NULL OR ends_at > ?2)
                     UNION SELECT DISTINCT patient_id FROM documents
                         WHERE ?3 IS NOT NULL AND prescriber_id = ?3 AND patient_id IS NOT NULL AND source IN ('dmp', 'operator')
                     UNION SELECT DISTINCT patient_id FROM break_glass WHERE account_id = ?1 AND ended_at IS NULL AND started_at <= ?2 AND expires_at > ?2",
                )
                .bind(account.id.to_string())
                .bind(now_epoch())
                .bind(account.rpps.as_deref())
                .fetch_all(&self.pool)
                .await
                .map_err(query_err("listing a professional's patients"))?;
                let mut out = Vec::new();
                for row in rows {
                    let id: String = row.try_get("patient_id").map_err(query_err("listing a professional's patients"))?;
                    let Some(patient) = PatientId::parse(&id) else { continue };
                    if let Some(mode) = self.mode_for(principal, patient).await? {
                        out.push((patient, mode));
                    }
                }
                Ok(out)
            }
        }
    }

    pub(crate) async fn patient_by_ins(&self, ins: &str) -> Result<Option<PatientId>, AccessError> {
        let ins: String = ins.chars().filter(|c| !c.is_whitespace()).collect();
        let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM patients WHERE ins = ? LIMIT 2")
            .bind(&ins)
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("finding a patient by INS"))?;
        // Two records with this number under different INS kinds: refuse to guess.
        Ok(if ids.len() == 1 { PatientId::parse(&ids[0]) } else { None })
    }

    // --- break-the-glass --------------------------------------------------------------------

    /// Opens a patient's record without a care relationship: a stated reason, a limited time,
    /// and an audit record the patient will see.
    pub async fn start_break_glass(
        &self,
        principal: &Principal,
        ins: &str,
        reason: &str,
        duration: Duration,
        regulation: bool,
    ) -> Result<PatientId, BreakGlassError> {
        if principal.account.role != Role::Professional {
            return Err(BreakGlassError::NotAProfessional);
        }
        let reason = reason.trim();
        if reason.chars().count() < BREAK_GLASS_REASON_MIN {
            return Err(BreakGlassError::ReasonTooShort { min: BREAK_GLASS_REASON_MIN });
        }
        if duration < Duration::from_secs(15 * 60) || duration > self.settings.break_glass_max {
            return Err(BreakGlassError::BadDuration { max_minutes: self.settings.break_glass_max.as_secs() / 60 });
        }
        let patient = self.patient_by_ins(ins).await?.ok_or(BreakGlassError::UnknownPatient)?;
        let now = now_epoch();
        sqlx::query(
            "INSERT INTO break_glass (id, account_id, patient_id, reason, started_at, expires_at, regulation) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(Uuid::new_v4().to_string())
        .bind(principal.account.id.to_string())
        .bind(patient.to_string())
        .bind(reason)
        .bind(now)
        .bind(now + duration.as_secs() as i64)
        .bind(i64::from(regulation))
        .execute(&self.pool)
        .await
        .map_err(query_err("recording a break-the-glass access"))?;
        // The reason is the professional's words about the situation: it stays in the
        // break-the-glass table (shown to the patient), not in the audit trail.
        self.record(AuditEntry {
            actor: Some(&principal.account),
            patient: Some(patient),
            action: Some(Action::BreakGlassStart),
            mode: Some(if regulation { "centre_15" } else { "break_glass" }),
            address: principal.address.as_deref(),
            detail: Some(format!("minutes={}", duration.as_secs() / 60)),
        })
        .await?;
        Ok(patient)
    }

    /// Ends this professional's break-the-glass access to a patient before it expires.
    pub async fn end_break_glass(&self, principal: &Principal, patient: PatientId) -> Result<bool, AccessError> {
        let done = sqlx::query(
            "UPDATE break_glass SET ended_at = ?1 WHERE account_id = ?2 AND patient_id = ?3 AND ended_at IS NULL AND expires_at > ?1",
        )
        .bind(now_epoch())
        .bind(principal.account.id.to_string())
        .bind(patient.to_string())
        .execute(&self.pool)
        .await
        .map_err(query_err("ending a break-the-glass access"))?
        .rows_affected()
            > 0;
        if done {
            self.record(AuditEntry {
                actor: Some(&principal.account),
                patient: Some(patient),
                action: Some(Action::BreakGlassEnd),
                mode: Some("break_glass"),
                address: principal.address.as_deref(),
                detail: None,
            })
            .await?;
        }
        Ok(done)
    }

    /// The break-the-glass accesses of this user in force now.
    pub async fn active_break_glass(&self, principal: &Principal) -> Result<Vec<BreakGlassGrant>, AccessError> {
        sqlx::query_as(
            "SELECT patient_id, reason, expires_at FROM break_glass
             WHERE account_id = ?1 AND ended_at IS NULL AND started_at <= ?2 AND expires_at > ?2 ORDER BY expires_at",
        )
        .bind(principal.account.id.to_string())
        .bind(now_epoch())
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("listing break-the-glass accesses"))
    }

    // --- audit trail ------------------------------------------------------------------------

    /// Appends one record to the hash chain.
    pub async fn record(&self, entry: AuditEntry<'_>) -> Result<(), AccessError> {
        let _serialised = self.audit_lock.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(query_err("starting an audit append"))?;
        let last: Option<(i64, String)> = sqlx::query_as("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await
            .map_err(query_err("reading the audit head"))?;
        let (last_seq, prev_hash) = last.unwrap_or((0, GENESIS.to_string()));
        let mut record = AuditRecord {
            seq: last_seq + 1,
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            actor_id: entry.actor.map(|a| a.id.to_string()),
            actor_role: entry.actor.map(|a| a.role.as_str().to_string()),
            patient_id: entry.patient.map(|p| p.to_string()),
            action: entry.action.map(Action::as_str).unwrap_or("unknown").to_string(),
            mode: entry.mode.map(str::to_string),
            address: entry.address.map(str::to_string),
            detail: entry.detail,
            prev_hash,
            hash: String::new(),
        };
        record.hash = record.expected_hash();
        sqlx::query(
            "INSERT INTO audit_events (seq, at, actor_id, actor_role, patient_id, action, mode, address, detail, prev_hash, hash)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(record.seq)
        .bind(&record.at)
        .bind(&record.actor_id)
        .bind(&record.actor_role)
        .bind(&record.patient_id)
        .bind(&record.action)
        .bind(&record.mode)
        .bind(&record.address)
        .bind(&record.detail)
        .bind(&record.prev_hash)
        .bind(&record.hash)
        .execute(&mut *tx)
        .await
        .map_err(query_err("appending to the audit trail"))?;
        tx.commit().await.map_err(query_err("committing an audit record"))
    }

    /// Checks the whole chain, a page at a time; names the first bad record.
    pub async fn verify_audit(&self) -> Result<Result<ChainHead, ChainBreak>, AccessError> {
        let mut verifier = ChainVerifier::default();
        let mut after = 0i64;
        loop {
            let records: Vec<AuditRecord> = sqlx::query_as(
                "SELECT seq, at, actor_id, actor_role, patient_id, action, mode, address, detail, prev_hash, hash
                 FROM audit_events WHERE seq > ? ORDER BY seq LIMIT 5000",
            )
            .bind(after)
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("reading the audit trail"))?;
            if records.is_empty() {
                return Ok(Ok(verifier.head()));
            }
            for record in records {
                if let Err(bad) = verifier.check(&record) {
                    return Ok(Err(bad));
                }
                after = record.seq;
            }
        }
    }

    /// When this user last saw this patient's results before the current session (RFC 3339,
    /// UTC): the "since last visit" date the cumulative table offers. Views of this session do
    /// not count, refused attempts neither.
    pub async fn previous_visit(&self, principal: &Principal, patient: PatientId) -> Result<Option<String>, AccessError> {
        let session_start: Option<i64> = sqlx::query_scalar("SELECT created_at FROM sessions WHERE token_sha256 = ?")
            .bind(&principal.session_digest)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("reading a session"))?;
        let Some(session_start) = session_start.and_then(|t| chrono::DateTime::from_timestamp(t, 0)) else { return Ok(None) };
        let before = session_start.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        sqlx::query_scalar(
            "SELECT max(at) FROM audit_events
             WHERE patient_id = ? AND actor_id = ? AND at < ? AND mode IS NOT 'denied'
               AND action IN ('view_patient', 'view_history', 'view_chart', 'view_document')",
        )
        .bind(patient.to_string())
        .bind(principal.account.id.to_string())
        .bind(before)
        .fetch_one(&self.pool)
        .await
        .map_err(query_err("reading the previous visit"))
    }

    /// Who accessed this patient's record, newest first (what the patient reads), with the
    /// break-the-glass reasons given.
    pub async fn access_log(&self, patient: PatientId) -> Result<Vec<AccessLogLine>, AccessError> {
        // at, action, mode, who, role, profession, structure
        type Row = (String, String, Option<String>, Option<String>, Option<String>, Option<String>, Option<String>);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT e.at, e.action, e.mode, a.display_name, a.role, a.profession, a.structure_name
             FROM audit_events e LEFT JOIN accounts a ON a.id = e.actor_id
             WHERE e.patient_id = ? ORDER BY e.seq DESC LIMIT 1000",
        )
        .bind(patient.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("reading an access log"))?;
        Ok(rows
            .into_iter()
            .map(|(at, action, mode, who, role, profession, structure)| AccessLogLine {
                at,
                action,
                mode,
                who,
                role,
                profession,
                structure,
            })
            .collect())
    }

    /// The break-the-glass accesses to a patient's record with their reasons, newest first.
    pub async fn break_glass_history(&self, patient: PatientId) -> Result<Vec<(String, String, i64, i64)>, AccessError> {
        sqlx::query_as(
            "SELECT a.display_name, b.reason, b.started_at, b.expires_at FROM break_glass b JOIN accounts a ON a.id = b.account_id
             WHERE b.patient_id = ? ORDER BY b.started_at DESC",
        )
        .bind(patient.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("reading break-the-glass accesses"))
    }

    // --- administration ---------------------------------------------------------------------

    /// The one check every administration change and listing passes: the operator at the
    /// command line (shell access to the server), or a signed-in administrator. Any other
    /// account, or none, is refused before anything is read or written.
    fn authorize_admin<'p>(by: AdminActor<'p>) -> Result<Option<&'p Principal>, AdminError> {
        match by {
            AdminActor::Operator => Ok(None),
            AdminActor::Web(principal) => match principal {
                Some(p) if may_administer(&p.account) => Ok(Some(p)),
                _ => Err(AdminError::NotAnAdmin),
            },
        }
    }

    /// Creates an account. Creating a patient account opens that record to whoever holds the
    /// password, and a professional's national id opens the records of the patients whose
    /// laboratory reports name it as prescriber: both are recorded in those patients' access
    /// logs. One national id, one account.
    pub async fn create_account(&self, by: AdminActor<'_>, new: NewAccount) -> Result<Uuid, AdminError> {
        let admin = Self::authorize_admin(by)?;
        let login = new.login.trim().to_lowercase();
        if login.is_empty() || login.len() > 64 || !login.chars().all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c)) {
            return Err(AdminError::Invalid(AdminProblem::BadLogin));
        }
        if new.display_name.trim().is_empty() {
            return Err(AdminError::Invalid(AdminProblem::NoName));
        }
        if let Some(password) = &new.password
            && password.chars().count() < 12
        {
            return Err(AdminError::Invalid(AdminProblem::ShortPassword));
        }
        let rpps = new.rpps.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
        if rpps.is_some() && new.role != Role::Professional {
            return Err(AdminError::Invalid(AdminProblem::NationalIdNotAProfessional));
        }
        let patient_id = match (new.role, new.patient_ins.as_deref()) {
            (Role::Patient, Some(ins)) => {
                Some(self.patient_by_ins(ins).await?.ok_or_else(|| AdminError::Invalid(AdminProblem::UnknownPatient))?)
            }
            (Role::Patient, None) => return Err(AdminError::Invalid(AdminProblem::NoPatientIns)),
            _ => None,
        };
        if let Some(rpps) = &rpps {
            let taken: Option<i64> = sqlx::query_scalar("SELECT 1 FROM accounts WHERE rpps = ? LIMIT 1")
                .bind(rpps)
                .fetch_optional(&self.pool)
                .await
                .map_err(query_err("checking a national id"))?;
            if taken.is_some() {
                return Err(AdminError::Invalid(AdminProblem::NationalIdTaken));
            }
        }
        let hash = match new.password.clone() {
            Some(password) => Some(
                tokio::task::spawn_blocking(move || secrets::hash_password(&password))
                    .await
                    .map_err(|_| AdminError::Invalid(AdminProblem::Hashing))?
                    .map_err(AccessError::from)?,
            ),
            None => None,
        };
        let id = Uuid::new_v4();
        let inserted = sqlx::query(
            "INSERT INTO accounts (id, login, password_hash, role, display_name, rpps, profession, structure_id, structure_name, patient_id, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(id.to_string())
        .bind(&login)
        .bind(hash)
        .bind(new.role.as_str())
        .bind(new.display_name.trim())
        .bind(&rpps)
        .bind(new.profession.as_deref().map(str::trim).filter(|s| !s.is_empty()))
        .bind(new.structure_id.as_deref().map(str::trim).filter(|s| !s.is_empty()))
        .bind(new.structure_name.as_deref().map(str::trim).filter(|s| !s.is_empty()))
        .bind(patient_id.map(|p| p.to_string()))
        .bind(chrono::Utc::now().to_rfc3339())
        .execute(&self.pool)
        .await
        .map_err(query_err("creating an account"))?
        .rows_affected();
        if inserted == 0 {
            // The login, or (between the check above and now) the national id.
            return Err(AdminError::Invalid(if self.account_by_login(&login).await?.is_some() {
                AdminProblem::LoginTaken
            } else {
                AdminProblem::NationalIdTaken
            }));
        }
        let entry = |patient: Option<PatientId>, detail: String| AuditEntry {
            actor: admin.map(|p| &p.account),
            patient,
            action: Some(Action::AccountCreated),
            mode: admin.is_none().then_some("operator"),
            address: admin.and_then(|p| p.address.as_deref()),
            detail: Some(detail),
        };
        self.record(entry(patient_id, format!("account={id} role={}", new.role.as_str()))).await?;
        // The patients this national id now sees as their prescriber: each is told.
        if let Some(rpps) = &rpps {
            let patients: Vec<String> = sqlx::query_scalar(
                "SELECT DISTINCT patient_id FROM documents WHERE prescriber_id = ? AND patient_id IS NOT NULL AND source IN ('dmp', 'operator')",
            )
            .bind(rpps)
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("finding a prescriber's patients"))?;
            for patient in patients.iter().filter_map(|p| PatientId::parse(p)) {
                self.record(entry(Some(patient), format!("account={id} role=professional grants=prescriber"))).await?;
            }
        }
        Ok(id)
    }

    /// Disables (or enables again) an account; a disabled account's sessions end at once and it
    /// cannot sign in. An administrator cannot disable their own account.
    pub async fn set_account_disabled(&self, by: AdminActor<'_>, login: &str, disabled: bool) -> Result<(), AdminError> {
        let admin = Self::authorize_admin(by)?;
        let login = login.trim().to_lowercase();
        if admin.is_some_and(|admin| login == admin.account.login) {
            return Err(AdminError::Invalid(AdminProblem::OwnAccount));
        }
        let id: Option<String> = sqlx::query_scalar("UPDATE accounts SET disabled = ? WHERE login = ? RETURNING id")
            .bind(i64::from(disabled))
            .bind(&login)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("disabling an account"))?;
        let id = id.ok_or_else(|| AdminError::Invalid(AdminProblem::UnknownAccount))?;
        if disabled {
            sqlx::query("DELETE FROM sessions WHERE account_id = ?")
                .bind(&id)
                .execute(&self.pool)
                .await
                .map_err(query_err("ending a disabled account's sessions"))?;
        }
        self.record(AuditEntry {
            actor: admin.map(|p| &p.account),
            action: Some(if disabled { Action::AccountDisabled } else { Action::AccountEnabled }),
            mode: admin.is_none().then_some("operator"),
            address: admin.and_then(|p| p.address.as_deref()),
            detail: Some(format!("account={id}")),
            ..Default::default()
        })
        .await?;
        Ok(())
    }

    pub async fn account_by_login(&self, login: &str) -> Result<Option<Account>, AccessError> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.login = ?"));
        let row =
            sqlx::query(sql).bind(login.trim().to_lowercase()).fetch_optional(&self.pool).await.map_err(query_err("reading an account"))?;
        row.as_ref().map(account_from_row).transpose()
    }

    pub async fn accounts(&self, by: AdminActor<'_>) -> Result<Vec<Account>, AdminError> {
        Self::authorize_admin(by)?;
        let sql = sqlx::AssertSqlSafe(format!("SELECT {ACCOUNT_COLUMNS} FROM accounts a ORDER BY a.role, a.login"));
        let rows = sqlx::query(sql).fetch_all(&self.pool).await.map_err(query_err("listing accounts"))?;
        Ok(rows.iter().map(account_from_row).collect::<Result<_, _>>()?)
    }

    /// Records a care relationship (administrators, or the operator).
    pub async fn add_relationship(
        &self,
        by: AdminActor<'_>,
        login: &str,
        patient_ins: &str,
        kind: &str,
        days: Option<u32>,
    ) -> Result<String, AdminError> {
        let by = Self::authorize_admin(by)?;
        if !matches!(kind, "attending_gp" | "hospital_stay") {
            return Err(AdminError::Invalid(AdminProblem::BadKind));
        }
        let account = self.account_by_login(login).await?.ok_or_else(|| AdminError::Invalid(AdminProblem::UnknownAccount))?;
        if account.role != Role::Professional {
            return Err(AdminError::Invalid(AdminProblem::NotAProfessional));
        }
        let patient = self.patient_by_ins(patient_ins).await?.ok_or_else(|| AdminError::Invalid(AdminProblem::UnknownPatient))?;
        let now = now_epoch();
        let id = Uuid::new_v4().to_string();
        sqlx::query(
            "INSERT INTO care_relationships (id, account_id, patient_id, kind, starts_at, ends_at, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(account.id.to_string())
        .bind(patient.to_string())
        .bind(kind)
        .bind(now)
        .bind(days.map(|d| now + i64::from(d) * 86_400))
        .bind(by.map(|p| p.account.id.to_string()).unwrap_or_else(|| "cli".into()))
        .bind(chrono::Utc::now().to_rfc3339())
        .execute(&self.pool)
        .await
        .map_err(query_err("recording a care relationship"))?;
        self.record(AuditEntry {
            actor: by.map(|p| &p.account),
            patient: Some(patient),
            action: Some(Action::RelationshipAdded),
            mode: by.is_none().then_some("operator"),
            address: by.and_then(|p| p.address.as_deref()),
            detail: Some(format!("account={} kind={kind}", account.id)),
        })
        .await?;
        Ok(id)
    }

    pub async fn end_relationship(&self, by: AdminActor<'_>, id: &str) -> Result<bool, AdminError> {
        let admin = Self::authorize_admin(by)?;
        let patient: Option<String> = sqlx::query_scalar(
            "UPDATE care_relationships SET ends_at = ?1 WHERE id = ?2 AND (ends_at IS NULL OR ends_at > ?1) RETURNING patient_id",
        )
        .bind(now_epoch())
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("ending a care relationship"))?;
        if let Some(patient) = &patient {
            self.record(AuditEntry {
                actor: admin.map(|p| &p.account),
                patient: PatientId::parse(patient),
                action: Some(Action::RelationshipEnded),
                mode: admin.is_none().then_some("operator"),
                address: admin.and_then(|p| p.address.as_deref()),
                detail: Some(format!("relationship={id}")),
            })
            .await?;
        }
        Ok(patient.is_some())
    }

    pub async fn relationships(&self, by: AdminActor<'_>) -> Result<Vec<RelationshipEntry>, AdminError> {
        Self::authorize_admin(by)?;
        sqlx::query_as(
            "SELECT r.id, a.login, a.display_name, p.ins,
                    TRIM(COALESCE(p.family_name, '') || ' ' || COALESCE(p.given_names, '')) AS patient_name,
                    r.kind, r.starts_at, r.ends_at
             FROM care_relationships r JOIN accounts a ON a.id = r.account_id JOIN patients p ON p.id = r.patient_id
             WHERE r.ends_at IS NULL OR r.ends_at > ? ORDER BY a.login, p.family_name",
        )
        .bind(now_epoch())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| AdminError::Failed(query_err("listing care relationships")(e)))
    }
}
