//! Who may see what: accounts, sessions, care relationships, break-the-glass and the audit trail.
//!
//! Module map:
//! - this module: the [`Access`] service the HTTP layer and the CLI call (SQLite through sqlx);
//! - [`audit`]: the audit trail's hash chain, as pure functions; [`audit_files`]: its key and
//!   checkpoint files;
//! - [`refusals`]: repeated refusals throttle an account and raise an alarm;
//! - [`secrets`]: argon2id passwords, random tokens;
//! - [`ratelimit`]: sign-in throttling per account and per address (in the database).
//!
//! The rules, in one place ([`Access::mode_for`]): a professional sees a patient through a care
//! relationship in force (attending GP, hospital stay), by having prescribed one of the patient's
//! reports, or in break-the-glass mode (a reason, a limited duration); a patient sees only their
//! own record; an administrator sees no results. Every patient access goes through
//! [`Access::open_patient`], which decides and writes the audit record in one step, so no route
//! can show data without leaving a trace. A refusal looks the same whether the patient exists or
//! not (same queries, same answer).

pub mod audit;
pub mod audit_files;
pub mod fhir_clients;
pub mod ratelimit;
pub mod refusals;
pub mod secrets;

use bioviewer_app::model::{AccessLogLine, AlarmLine, RefusalGroup};
use std::path::PathBuf;
use std::time::Duration;

use crate::store::db::Db;
use sqlx::Row;
use sqlx::any::AnyRow;
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::domain::PatientId;
use audit::{AuditKey, AuditRecord, ChainBreak, ChainHead, ChainVerifier, Checkpoint, GENESIS};
use ratelimit::Reservation;
pub use ratelimit::ThrottlePolicy;
use refusals::{RefusalOutcome, RefusalState, ThrottlePolicy as RefusalPolicy};
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
    /// The audit chain's key. The server and the command line always load it from its file;
    /// `None` (tests) makes a random one for this process only, which no later process can verify.
    pub audit_key: Option<AuditKey>,
    /// Where the chain's head is appended every `checkpoint_every` records (and when
    /// [`Access::checkpoint`] is called); `None`: no checkpoints.
    pub audit_checkpoints: Option<PathBuf>,
    pub checkpoint_every: i64,
    /// Repeated refused patient requests by one account.
    pub refusal_throttle: RefusalPolicy,
    /// Reverse proxies whose `X-Forwarded-For` is believed (`--trusted-proxy`): only when the
    /// TCP peer is one of them does the header name the client address.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// The most rows the sign-in throttle keeps (the oldest go first).
    pub throttle_entries: usize,
    /// How sign-in failures slow further attempts, per account and per client address.
    pub account_throttle: ThrottlePolicy,
    pub address_throttle: ThrottlePolicy,
}

/// The longest login and password a sign-in reads: anything longer is refused before any
/// lookup (and never stored). Account logins are at most 64 characters (`create_account`).
pub const LOGIN_MAX_BYTES: usize = 64;
pub const PASSWORD_MAX_BYTES: usize = 1024;

/// What sign-in's password checks have cost so far.
pub use secrets::CheckerStats as SignInStats;

impl Default for AccessSettings {
    fn default() -> Self {
        AccessSettings {
            idle_timeout: Duration::from_secs(30 * 60),
            absolute_timeout: Duration::from_secs(12 * 3600),
            secure_cookies: false,
            break_glass_max: Duration::from_secs(12 * 3600),
            audit_key: None,
            audit_checkpoints: None,
            checkpoint_every: 1000,
            refusal_throttle: RefusalPolicy::default(),
            trusted_proxies: Vec::new(),
            throttle_entries: 100_000,
            account_throttle: ThrottlePolicy::ACCOUNT,
            address_throttle: ThrottlePolicy::ADDRESS,
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
    /// Appending to the audit trail failed (for every entry of the batch it was written with).
    #[error("the audit trail could not be appended to: {0}")]
    AuditAppend(String),
}

impl AccessError {
    /// A failure worth running the transaction again (see [`crate::store::db::is_transient`]).
    fn is_transient(&self) -> bool {
        matches!(self, AccessError::Query { source, .. } if crate::store::db::is_transient(source))
    }
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
    /// Signed in through the OpenID provider (strong authentication: the VIHF says `INDIRECTE_RENFORCEE`, "AIR").
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

impl Principal {
    /// An account acting from the command line (`bioviewer sync --as LOGIN`): no session, no
    /// browser, no address; the same rules decide what it may see.
    pub fn command_line(account: Account) -> Principal {
        // A CSRF token nobody knows: this principal never answers a form.
        Principal { account, csrf_token: Uuid::new_v4().to_string(), session_digest: String::new(), address: None, fhir_client: None }
    }
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

/// Whether a refusal counts towards the account's throttle.
#[derive(Clone, Copy)]
enum Counted {
    Yes,
    No,
}

/// What counting a refusal found: the account throttled already (not counted), or counted, and
/// whether this refusal tripped the throttle (with the count).
struct CountedRefusal {
    throttled: bool,
    tripped: Option<usize>,
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
    /// A break-the-glass request refused (unknown INS, reason too short, bad duration).
    BreakGlassRefused,
    /// Something the administrator must look at (repeated refusals, a broken chain).
    Alarm,
    /// From this record on, the chain is keyed (written once, when the key is created).
    AuditKeyed,
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
    RecordsLinked,
    RecordsUnlinked,
    FhirClientIssued,
    FhirClientRevoked,
    /// A clinician set (or changed) a treatment target of the patient.
    TargetSet,
    /// A clinician ended a treatment target of the patient.
    TargetEnded,
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
            Action::BreakGlassRefused => "break_glass_refused",
            Action::Alarm => "alarm",
            Action::AuditKeyed => "audit_keyed",
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
            Action::RecordsLinked => "records_linked",
            Action::RecordsUnlinked => "records_unlinked",
            Action::FhirClientIssued => "fhir_client_issued",
            Action::FhirClientRevoked => "fhir_client_revoked",
            Action::TargetSet => "target_set",
            Action::TargetEnded => "target_ended",
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
    /// Too many refusals lately: this account's patient requests are refused for a while.
    #[error("too many refused requests; try again later")]
    Throttled,
    #[error(transparent)]
    Failed(#[from] AccessError),
}

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("unknown login or wrong password")]
    Invalid,
    #[error("too many failed attempts; try again in {wait_ms} ms")]
    RateLimited { wait_ms: i64 },
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
    #[error("this INS is mistyped: its last two digits (the key) do not match")]
    InvalidIns,
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
    #[error("a password has at least 12 characters and at most 1024 bytes")]
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
    #[error("the duration is out of bounds (a care relationship: 1 to 3650 days; a FHIR client's token: 1 to 730 days)")]
    BadDuration,
    #[error("unknown role")]
    BadRole,
    #[error("the password could not be hashed")]
    Hashing,
    #[error("another account has this national id")]
    NationalIdTaken,
    #[error("only professionals carry a national id")]
    NationalIdNotAProfessional,
    #[error("a national id is ROOT^NUMBER (e.g. 1.2.250.1.71.4.2.1^810000000011)")]
    BadNationalId,
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
            AdminProblem::BadNationalId => "bad_national_id",
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

/// Who links two records of one person.
#[derive(Debug, Clone, Copy)]
pub enum LinkActor<'a> {
    /// The operator at the command line (`bioviewer patients link`).
    Operator,
    /// A professional who may see both records.
    Professional(&'a Principal),
}

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// Either record is out of this user's sight, or does not exist: not told apart.
    #[error("no access to one of these records")]
    NoAccess,
    #[error("a record cannot be linked to itself")]
    SameRecord,
    /// The two records cannot be one person's.
    #[error("these records cannot be one person's: {0}")]
    NotOnePerson(crate::identity::NotOnePerson),
    #[error("the store failed: {0}")]
    Store(String),
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

/// The number of a professional's national id (`ROOT^NUMBER`), as compared for uniqueness:
/// without its root, spaces or leading zeros. `None`: not of that form.
pub fn national_id_number(id: &str) -> Option<String> {
    let (root, number) = id.trim().split_once('^')?;
    let number: String = number.chars().filter(|c| !c.is_whitespace()).collect();
    let significant = number.trim_start_matches('0');
    (!root.trim().is_empty() && !significant.is_empty() && number.chars().all(|c| c.is_ascii_alphanumeric()))
        .then(|| significant.to_ascii_uppercase())
}

/// Whether this account may administer accounts and care relationships (a plain rule).
pub fn may_administer(account: &Account) -> bool {
    account.role == Role::Admin && !account.disabled
}

/// The access mode a stored reason gives: the kind of a care relationship, `prescriber`, or a
/// break-the-glass (`centre_15` when under the emergency regulation) with its end.
fn care_reason_mode(kind: &str, expires_at: Option<i64>) -> AccessMode {
    match kind {
        "attending_gp" => AccessMode::AttendingGp,
        "hospital_stay" => AccessMode::HospitalStay,
        "prescriber" => AccessMode::Prescriber,
        other => AccessMode::BreakTheGlass { expires_at: expires_at.unwrap_or(0), regulation: other == "centre_15" },
    }
}

/// The mode a professional opens a record in when several reasons hold: a recorded
/// relationship is the strongest reason, break-the-glass the last resort.
fn strongest_mode(modes: impl IntoIterator<Item = AccessMode>) -> Option<AccessMode> {
    let rank = |m: &AccessMode| match m {
        AccessMode::AttendingGp => 0,
        AccessMode::HospitalStay => 1,
        AccessMode::Prescriber => 2,
        AccessMode::OwnRecord => 3,
        AccessMode::BreakTheGlass { .. } => 4,
    };
    modes.into_iter().min_by_key(rank)
}

/// Every patient named by at least one reason, once, with the strongest mode; in the order
/// patients first appear (the caller sorts for display).
fn modes_by_patient(reasons: Vec<(PatientId, AccessMode)>) -> Vec<(PatientId, AccessMode)> {
    let mut order: Vec<PatientId> = Vec::new();
    let mut by_patient: std::collections::HashMap<PatientId, Vec<AccessMode>> = std::collections::HashMap::new();
    for (patient, mode) in reasons {
        by_patient
            .entry(patient)
            .or_insert_with(|| {
                order.push(patient);
                Vec::new()
            })
            .push(mode);
    }
    order.into_iter().filter_map(|p| strongest_mode(by_patient.remove(&p).unwrap_or_default()).map(|m| (p, m))).collect()
}

#[cfg(test)]
mod mode_tests {
    use super::*;

    fn patient(n: u128) -> PatientId {
        PatientId(Uuid::from_u128(n))
    }

    #[test]
    fn a_relationship_outranks_a_prescription_and_break_the_glass() {
        let btg = care_reason_mode("break_glass", Some(99));
        assert_eq!(
            strongest_mode([btg, care_reason_mode("prescriber", None), care_reason_mode("hospital_stay", None)]),
            Some(AccessMode::HospitalStay)
        );
        assert_eq!(strongest_mode([btg]), Some(AccessMode::BreakTheGlass { expires_at: 99, regulation: false }));
        assert_eq!(care_reason_mode("centre_15", Some(5)), AccessMode::BreakTheGlass { expires_at: 5, regulation: true });
        assert_eq!(strongest_mode([]), None);
    }

    #[test]
    fn each_patient_is_listed_once_with_the_strongest_reason() {
        let reasons = vec![
            (patient(2), care_reason_mode("break_glass", Some(10))),
            (patient(1), care_reason_mode("prescriber", None)),
            (patient(2), care_reason_mode("attending_gp", None)),
            (patient(1), care_reason_mode("prescriber", None)),
        ];
        assert_eq!(modes_by_patient(reasons), vec![(patient(2), AccessMode::AttendingGp), (patient(1), AccessMode::Prescriber)]);
    }
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
     a.disabled, CASE WHEN a.oidc_subject IS NULL THEN 0 ELSE 1 END AS oidc_linked";

fn account_from_row(row: &AnyRow) -> Result<Account, AccessError> {
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

fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn now_epoch() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The audit mode of a refused patient request.
pub const MODE_DENIED: &str = "denied";
/// The audit mode of a patient request refused because the account is throttled.
pub const MODE_THROTTLED: &str = "throttled";
/// The kinds of alarm the administrator sees.
pub const ALARM_REFUSALS: &str = "refusals";
pub const ALARM_BROKEN_CHAIN: &str = "audit_chain_broken";
/// The records of a patient's access log that are accesses (not refusals); binds the patient as `$1`.
/// A record's log includes the records linked to it now (one person's), without the copies of
/// its own accesses that a view through the link wrote on them (`through=…`).
const GENUINE_ACCESS: &str = "(e.patient_id = $1 OR (e.patient_id IN (
         SELECT patient_b FROM patient_links WHERE patient_a = $1 AND unlinked_at IS NULL
         UNION SELECT patient_a FROM patient_links WHERE patient_b = $1 AND unlinked_at IS NULL)
       AND (e.detail IS NULL OR e.detail NOT LIKE 'through=%')))
     AND (e.mode IS NULL OR e.mode NOT IN ('denied', 'throttled'))";
/// Genuine accesses per page of the patient's access log.
pub const ACCESS_LOG_PAGE: i64 = 50;
/// argon2 verifications allowed at once (19 MiB each): as many as the 2-core machine runs.
const VERIFICATION_PERMITS: usize = 2;
/// How long a sign-in waits for a password thread before it is told to try again.
const VERIFICATION_QUEUE_WAIT: Duration = Duration::from_secs(10);

/// The minimum length of a break-the-glass reason.
pub const BREAK_GLASS_REASON_MIN: usize = 15;

pub struct Access {
    db: Db,
    settings: AccessSettings,
    /// argon2 verifications (19 MiB each) on [`VERIFICATION_PERMITS`] threads of their own
    /// (`secrets::PasswordChecker` says why).
    passwords: secrets::PasswordChecker,
    /// Serialises appends to the audit chain within this process (the database transaction
    /// serialises them between processes).
    audit_lock: Mutex<()>,
    /// Audit entries waiting for the next holder of `audit_lock` to append them (see `record`).
    pending_appends: std::sync::Mutex<Vec<(AuditRecord, tokio::sync::oneshot::Sender<Result<(), String>>)>>,
    /// Verified against when the login is unknown, so both failures take the same time.
    dummy_hash: String,
    audit_key: AuditKey,
    /// The sequence number of the last checkpoint written by this process.
    last_checkpoint: std::sync::Mutex<i64>,
    refusal_policy: RefusalPolicy,
}

impl Access {
    pub fn new(db: Db, settings: AccessSettings) -> Result<Access, AccessError> {
        let audit_key = match &settings.audit_key {
            Some(key) => key.clone(),
            None => {
                let bytes = secrets::new_token()?;
                AuditKey::from_bytes(bytes.as_bytes()).map_err(|e| AccessError::Corrupt(e.to_string()))?
            }
        };
        Ok(Access {
            db,
            passwords: secrets::PasswordChecker::new(VERIFICATION_PERMITS)?,
            audit_lock: Mutex::new(()),
            pending_appends: std::sync::Mutex::new(Vec::new()),
            dummy_hash: secrets::hash_password("no account has this password")?,
            audit_key,
            last_checkpoint: std::sync::Mutex::new(0),
            refusal_policy: settings.refusal_throttle,
            settings,
        })
    }

    pub fn settings(&self) -> &AccessSettings {
        &self.settings
    }

    // --- sign-in and sessions ---------------------------------------------------------------

    /// Checks a login and password and opens a new session (a new id: never one the browser
    /// brought). Attempts are throttled per account and per address (`ratelimit`); at most
    /// [`VERIFICATION_PERMITS`] passwords are checked at once.
    pub async fn sign_in(&self, login: &str, password: &str, address: Option<&str>) -> Result<SignedIn, SignInError> {
        // No account has a longer login, and no longer password is read: refused before any
        // lookup, so a megabyte login is neither hashed, stored nor kept.
        if login.len() > LOGIN_MAX_BYTES || password.len() > PASSWORD_MAX_BYTES {
            self.record(AuditEntry { action: Some(Action::SignInRefused), address, detail: Some("too_long".into()), ..Default::default() })
                .await?;
            return Err(SignInError::Invalid);
        }
        let login = login.trim().to_lowercase();
        let from = address.unwrap_or("unknown");
        let (account_key, address_key) = (ratelimit::account_key(&login), ratelimit::address_key(from));
        let now_ms = chrono::Utc::now().timestamp_millis();
        let q = query_err("throttling a sign-in");
        let keys = [(account_key.as_str(), self.settings.account_throttle), (address_key.as_str(), self.settings.address_throttle)];
        ratelimit::prune(&self.db, &keys, now_ms, self.settings.throttle_entries)
            .await
            .map_err(query_err("pruning the sign-in throttle"))?;
        if let Reservation::Wait(wait_ms) = ratelimit::reserve(&self.db, &keys, now_ms).await.map_err(q)? {
            self.record(AuditEntry {
                action: Some(Action::SignInRefused),
                address,
                detail: Some("rate_limited".into()),
                ..Default::default()
            })
            .await?;
            return Err(SignInError::RateLimited { wait_ms });
        }
        let sql = sqlx::AssertSqlSafe(format!("SELECT {ACCOUNT_COLUMNS}, a.password_hash FROM accounts a WHERE a.login = $1"));
        let row = sqlx::query(sql).bind(&login).fetch_optional(self.db.pool()).await.map_err(query_err("looking up an account"))?;
        let (account, hash) = match &row {
            Some(row) => {
                (Some(account_from_row(row)?), row.try_get::<Option<String>, _>("password_hash").map_err(query_err("reading an account"))?)
            }
            None => (None, None),
        };
        // Always run one argon2 verification, so an unknown login answers as slowly as a known one.
        let hash_to_check = hash.clone().unwrap_or_else(|| self.dummy_hash.clone());
        let matches = self.verify_password(password.to_string(), hash_to_check).await?;
        let account = match account {
            Some(account) if matches && hash.is_some() && !account.disabled => account,
            other => {
                // The failure was counted when the attempt was reserved.
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
        ratelimit::succeeded(&self.db, &account_key, &address_key).await.map_err(query_err("clearing the sign-in throttle"))?;
        let signed_in = self.open_session(account, address).await?;
        self.record(AuditEntry { actor: Some(&signed_in.principal.account), action: Some(Action::SignIn), address, ..Default::default() })
            .await?;
        Ok(signed_in)
    }

    /// One argon2 verification, once a password thread is free. A sign-in that waits too long
    /// for one is answered "try again" rather than queued for ever.
    async fn verify_password(&self, password: String, hash: String) -> Result<bool, SignInError> {
        self.passwords.verify(password, hash, VERIFICATION_QUEUE_WAIT).await.ok_or(SignInError::RateLimited { wait_ms: 1_000 })
    }

    /// What sign-in has cost so far.
    pub fn sign_in_stats(&self) -> SignInStats {
        self.passwords.stats()
    }

    /// Signs in a professional the OpenID provider vouches for: the account linked to that
    /// subject, else the account with that national id (linked now), else a new professional
    /// account (no care relationship yet). The identity is refreshed from the claims each time.
    pub async fn sign_in_oidc(&self, identity: &crate::oidc::ProfessionalIdentity, address: Option<&str>) -> Result<SignedIn, AccessError> {
        let q = query_err("signing in with OpenID Connect");
        let existing: Option<String> = sqlx::query_scalar(
            "SELECT id FROM accounts WHERE oidc_subject = $1
             UNION ALL SELECT id FROM accounts WHERE oidc_subject IS NULL AND $2 IS NOT NULL AND rpps = $2 AND role = 'professional'
             LIMIT 1",
        )
        .bind(&identity.subject)
        .bind(identity.national_id.as_deref())
        .fetch_optional(self.db.pool())
        .await
        .map_err(q)?;
        let id = match existing {
            Some(id) => {
                sqlx::query(
                    "UPDATE accounts SET oidc_subject = $1, display_name = $2, rpps = COALESCE($3, rpps), profession = COALESCE($4, profession),
                         structure_id = COALESCE($5, structure_id), structure_name = COALESCE($6, structure_name) WHERE id = $7",
                )
                .bind(&identity.subject)
                .bind(&identity.display_name)
                .bind(identity.national_id.as_deref())
                .bind(identity.profession.as_deref())
                .bind(identity.structure_id.as_deref())
                .bind(identity.structure_name.as_deref())
                .bind(&id)
                .execute(self.db.pool())
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
                     VALUES ($1, $2, NULL, 'professional', $3, $4, $5, $6, $7, $8, $9)",
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
                .execute(self.db.pool())
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
        let sql = sqlx::AssertSqlSafe(format!("SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.id = $1"));
        let row = sqlx::query(sql).bind(&id).fetch_one(self.db.pool()).await.map_err(query_err("reading an account"))?;
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
            "INSERT INTO sessions (token_sha256, account_id, csrf_token, created_at, last_seen_at, address) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&digest)
        .bind(account.id.to_string())
        .bind(&csrf_token)
        .bind(now)
        .bind(now)
        .bind(address)
        .execute(self.db.pool())
        .await
        .map_err(query_err("opening a session"))?;
        Ok(SignedIn {
            token,
            principal: Principal { account, csrf_token, session_digest: digest, address: address.map(str::to_string), fhir_client: None },
        })
    }

    /// The signed-in user of a session token, if the session is still valid (not signed out,
    /// not idle too long, not too old, account not disabled). Expired sessions are deleted.
    pub async fn session(&self, token: &str, address: Option<&str>) -> Result<Option<Principal>, AccessError> {
        let digest = secrets::token_digest(token);
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {ACCOUNT_COLUMNS}, s.csrf_token, s.created_at, s.last_seen_at
             FROM sessions s JOIN accounts a ON a.id = s.account_id WHERE s.token_sha256 = $1"
        ));
        let Some(row) = sqlx::query(sql).bind(&digest).fetch_optional(self.db.pool()).await.map_err(query_err("reading a session"))? else {
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
            sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE token_sha256 = $2")
                .bind(now)
                .bind(&digest)
                .execute(self.db.pool())
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
        sqlx::query("DELETE FROM sessions WHERE token_sha256 = $1")
            .bind(digest)
            .execute(self.db.pool())
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
                let reasons = self.care_reasons(account, Some(patient)).await?;
                Ok(strongest_mode(reasons.into_iter().map(|(_, mode)| mode)))
            }
        }
    }

    /// Every reason this professional has now to open a record (one row per reason), for one
    /// patient or for all: one query, whatever the number of patients, so that a GP with
    /// 1,500 patients gets her list without 1,500 round trips.
    async fn care_reasons(&self, account: &Account, patient: Option<PatientId>) -> Result<Vec<(PatientId, AccessMode)>, AccessError> {
        let rows = sqlx::query(
            "SELECT patient_id, kind, CAST(NULL AS BIGINT) AS expires_at FROM care_relationships
                 WHERE account_id = $1 AND ($2 IS NULL OR patient_id = $2) AND starts_at <= $3 AND (ends_at IS NULL OR ends_at > $3)
             UNION ALL
             SELECT DISTINCT patient_id, 'prescriber', CAST(NULL AS BIGINT) FROM documents
                 WHERE $4 IS NOT NULL AND prescriber_id = $4 AND patient_id IS NOT NULL AND ($2 IS NULL OR patient_id = $2)
                   AND source IN ('dmp', 'operator')
             UNION ALL
             SELECT patient_id, CASE WHEN regulation = 1 THEN 'centre_15' ELSE 'break_glass' END, expires_at FROM break_glass
                 WHERE account_id = $1 AND ($2 IS NULL OR patient_id = $2) AND ended_at IS NULL AND started_at <= $3 AND expires_at > $3",
        )
        .bind(account.id.to_string())
        .bind(patient.map(|p| p.to_string()))
        .bind(now_epoch())
        .bind(account.rpps.as_deref())
        .fetch_all(self.db.pool())
        .await
        .map_err(query_err("checking a care relationship"))?;
        let mut reasons = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: String = row.try_get("patient_id").map_err(query_err("checking a care relationship"))?;
            let kind: String = row.try_get("kind").map_err(query_err("checking a care relationship"))?;
            let expires_at: Option<i64> = row.try_get("expires_at").map_err(query_err("checking a care relationship"))?;
            let Some(id) = PatientId::parse(&id) else { continue };
            reasons.push((id, care_reason_mode(&kind, expires_at)));
        }
        Ok(reasons)
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
        let client = principal.fhir_client.as_ref().map(|name| format!("fhir_client={name}"));
        let entry = |mode: Option<&'static str>, detail: Option<String>| AuditEntry {
            actor: Some(&principal.account),
            patient: parsed,
            action: Some(action),
            mode,
            address: principal.address.as_deref(),
            detail,
        };
        let mode = self.mode_for(principal, patient).await?.filter(|m| fhir_clients::client_may_use(principal, *m));
        match mode {
            Some(mode) => {
                self.record(entry(Some(mode.as_str()), client.clone())).await?;
                // The records linked to this one show in its history: the access is theirs
                // too, and each such patient's log says so.
                for linked in self.linked_records(patient).await? {
                    self.record(AuditEntry {
                        actor: Some(&principal.account),
                        patient: Some(linked),
                        action: Some(action),
                        mode: Some(mode.as_str()),
                        address: principal.address.as_deref(),
                        detail: Some(format!("through={patient}{}", client.as_deref().map(|c| format!(" {c}")).unwrap_or_default())),
                    })
                    .await?;
                }
                Ok((patient, mode))
            }
            None => Err(self.refused(principal, parsed, action, client, Counted::Yes).await?),
        }
    }

    /// A request about a patient refused before anything of the patient was read: what only
    /// the patient may read, asked by someone else. Recorded and counted as
    /// [`Access::open_patient`] records and counts its refusals.
    pub async fn refuse(&self, principal: &Principal, patient_id: &str, action: Action) -> Refusal {
        self.refused(principal, PatientId::parse(patient_id), action, None, Counted::Yes).await.unwrap_or_else(Refusal::Failed)
    }

    /// A check that opens nothing of the patient (the progress of a DMP sync, the user's own
    /// previous visit), refused: recorded, and "too many" for a throttled account, but not
    /// counted again: a page asks for these beside its data, whose refusal counts once per page
    /// (a clinician who mistyped a link is not throttled three times as fast).
    pub async fn refuse_check(&self, principal: &Principal, patient_id: &str, action: Action) -> Refusal {
        self.refused(principal, PatientId::parse(patient_id), action, None, Counted::No).await.unwrap_or_else(Refusal::Failed)
    }

    /// Records a refusal and counts it. An account refused too often lately is throttled: its
    /// refusals answer "too many" for a while. Its own patients stay open to it (a clinician who
    /// mistyped a few links must still see their inpatients, and a patient opened by
    /// break-the-glass).
    async fn refused(
        &self,
        principal: &Principal,
        patient: Option<PatientId>,
        action: Action,
        detail: Option<String>,
        counted: Counted,
    ) -> Result<Refusal, AccessError> {
        let counted = match counted {
            Counted::Yes => self.count_refusal(principal).await?,
            Counted::No => CountedRefusal { throttled: self.refusals_throttled(principal.account.id).await?, tripped: None },
        };
        let mode = if counted.throttled { MODE_THROTTLED } else { MODE_DENIED };
        self.record(AuditEntry {
            actor: Some(&principal.account),
            patient,
            action: Some(action),
            mode: Some(mode),
            address: principal.address.as_deref(),
            detail: if counted.throttled { None } else { detail },
        })
        .await?;
        if let Some(refusals) = counted.tripped {
            self.alarm_refusals(principal, refusals).await?;
        }
        Ok(if counted.throttled { Refusal::Throttled } else { Refusal::NoAccess })
    }

    /// The records linked to this one now (their documents show in its history).
    async fn linked_records(&self, patient: PatientId) -> Result<Vec<PatientId>, AccessError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT patient_b FROM patient_links WHERE patient_a = $1 AND unlinked_at IS NULL
             UNION SELECT patient_a FROM patient_links WHERE patient_b = $1 AND unlinked_at IS NULL",
        )
        .bind(patient.to_string())
        .fetch_all(self.db.pool())
        .await
        .map_err(query_err("reading linked records"))?;
        Ok(ids.iter().filter_map(|id| PatientId::parse(id)).collect())
    }

    /// Whether the account's patient requests are throttled now (it was refused too often).
    /// Whether the account's refusals are throttled now (the status of a refused page says so).
    pub async fn refusals_throttled(&self, account: Uuid) -> Result<bool, AccessError> {
        let mut conn = self.db.pool().acquire().await.map_err(query_err("reading the refusal throttle"))?;
        Ok(self.refusal_policy.blocked(&self.refusal_state(&mut conn, account).await?, now_millis()))
    }

    /// An account's refusals in the window and its block, as stored (none: a fresh state).
    async fn refusal_state(&self, conn: &mut sqlx::AnyConnection, account: Uuid) -> Result<RefusalState, AccessError> {
        let row: Option<(String, i64)> = sqlx::query_as("SELECT refusals, blocked_until FROM refusal_throttle WHERE account_id = $1")
            .bind(account.to_string())
            .fetch_optional(&mut *conn)
            .await
            .map_err(query_err("reading the refusal throttle"))?;
        Ok(match row {
            None => RefusalState::default(),
            Some((refusals, blocked_until)) => RefusalState {
                refusals: serde_json::from_str(&refusals).map_err(|_| AccessError::Corrupt("refusal_throttle.refusals".into()))?,
                blocked_until,
            },
        })
    }

    /// Counts a refusal against the account, unless it is throttled already, deciding and
    /// writing in one write transaction: every instance and every concurrent request count
    /// together, so that a burst of refusals in parallel stops at the limit as a sequence does.
    async fn count_refusal(&self, principal: &Principal) -> Result<CountedRefusal, AccessError> {
        let account = principal.account.id;
        let now = now_millis();
        let mut tx = self.db.begin_write().await.map_err(query_err("counting a refusal"))?;
        let state = self.refusal_state(&mut tx, account).await?;
        if self.refusal_policy.blocked(&state, now) {
            tx.commit().await.map_err(query_err("counting a refusal"))?;
            return Ok(CountedRefusal { throttled: true, tripped: None });
        }
        let (state, outcome) = self.refusal_policy.record_refusal(state, now);
        let refusals = serde_json::to_string(&state.refusals).map_err(|e| AccessError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO refusal_throttle (account_id, refusals, blocked_until) VALUES ($1, $2, $3)
             ON CONFLICT (account_id) DO UPDATE SET refusals = $2, blocked_until = $3",
        )
        .bind(account.to_string())
        .bind(refusals)
        .bind(state.blocked_until)
        .execute(&mut *tx)
        .await
        .map_err(query_err("counting a refusal"))?;
        tx.commit().await.map_err(query_err("counting a refusal"))?;
        let tripped = match outcome {
            RefusalOutcome::Tripped { refusals } => Some(refusals),
            _ => None,
        };
        Ok(CountedRefusal { throttled: false, tripped })
    }

    /// The refusal that trips the throttle raises the alarm (an `alarm` record: the account and
    /// the count, no patient).
    async fn alarm_refusals(&self, principal: &Principal, refusals: usize) -> Result<(), AccessError> {
        let policy = self.refusal_policy;
        tracing::error!(
            account = %principal.account.id,
            refusals,
            window_minutes = policy.window.as_secs() / 60,
            "ALARM: repeated refused patient requests; the account is throttled"
        );
        self.record(AuditEntry {
            actor: Some(&principal.account),
            action: Some(Action::Alarm),
            address: principal.address.as_deref(),
            detail: Some(format!(
                "kind={ALARM_REFUSALS} refusals={refusals} window_minutes={} blocked_minutes={}",
                policy.window.as_secs() / 60,
                policy.block_for.as_secs() / 60
            )),
            ..Default::default()
        })
        .await
    }

    /// The patients this user may see now, with the reason.
    pub async fn visible_patients(&self, principal: &Principal) -> Result<Vec<(PatientId, AccessMode)>, AccessError> {
        let account = &principal.account;
        match account.role {
            Role::Admin => Ok(Vec::new()),
            Role::Patient => Ok(account.patient_id.map(|p| (p, AccessMode::OwnRecord)).into_iter().collect()),
            Role::Professional => Ok(modes_by_patient(self.care_reasons(account, None).await?)),
        }
    }

    pub(crate) async fn patient_by_ins(&self, ins: &str) -> Result<Option<PatientId>, AccessError> {
        let ins: String = ins.chars().filter(|c| !c.is_whitespace()).collect();
        let records: Vec<(String, String)> = sqlx::query_as("SELECT id, ins_root FROM patients WHERE ins = $1")
            .bind(&ins)
            .fetch_all(self.db.pool())
            .await
            .map_err(query_err("finding a patient by INS"))?;
        // Only a record keyed by a national identifier (an INS, an INS-C) is that patient's: a
        // record an upload created under a made-up authority with the same digits is a local
        // identifier's, and must not make the real one ambiguous. Two national records with
        // this number: refuse to guess.
        let ins_records: Vec<&String> = records
            .iter()
            .filter(|(_, root)| bioviewer_core::cda::IdentifierKind::of(root, &ins) != bioviewer_core::cda::IdentifierKind::Local)
            .map(|(id, _)| id)
            .collect();
        Ok(if ins_records.len() == 1 { PatientId::parse(ins_records[0]) } else { None })
    }

    // --- two records of one person ----------------------------------------------------------

    /// Links (or unlinks) two records of one person: an INS record and an INS-C record, say.
    /// A professional may do it only for two records they may both see now; the operator
    /// always. Either way it is recorded in both records' access logs, and it is undone the
    /// same way. Refused like a missing patient otherwise.
    pub async fn link_records(
        &self,
        store: &dyn crate::store::Store,
        by: LinkActor<'_>,
        a: PatientId,
        b: PatientId,
        link: bool,
    ) -> Result<bool, LinkError> {
        let principal = self.check_link(store, by, a, b, link).await?;
        let by_account = principal.map(|p| p.account.id);
        let changed = if link { store.link_patients(a, b, by_account).await } else { store.unlink_patients(a, b, by_account).await }
            .map_err(|e| LinkError::Store(e.to_string()))?;
        if changed {
            for (patient, other) in [(a, b), (b, a)] {
                self.record(AuditEntry {
                    actor: principal.map(|p| &p.account),
                    patient: Some(patient),
                    action: Some(if link { Action::RecordsLinked } else { Action::RecordsUnlinked }),
                    mode: principal.is_none().then_some("operator"),
                    address: principal.and_then(|p| p.address.as_deref()),
                    detail: Some(format!("other={other}")),
                })
                .await?;
            }
        }
        Ok(changed)
    }

    /// Whether `by` may link (or unlink) these two records, checked the same way whether the
    /// link is then made or only shown for confirmation: the principal (None: the operator).
    pub async fn check_link<'p>(
        &self,
        store: &dyn crate::store::Store,
        by: LinkActor<'p>,
        a: PatientId,
        b: PatientId,
        link: bool,
    ) -> Result<Option<&'p Principal>, LinkError> {
        if a == b {
            return Err(LinkError::SameRecord);
        }
        let principal = match by {
            LinkActor::Operator => None,
            LinkActor::Professional(principal) => {
                if principal.account.role != Role::Professional {
                    return Err(LinkError::NoAccess);
                }
                // Both checks run whatever the first answers: a refusal takes the same path. A
                // break-the-glass access is no ground: a link outlives it, and would turn a
                // limited, stated access into a lasting one.
                let (see_a, see_b) = (self.mode_for(principal, a).await?, self.mode_for(principal, b).await?);
                let lasting = |mode: Option<AccessMode>| matches!(mode, Some(m) if !matches!(m, AccessMode::BreakTheGlass { .. }));
                if !lasting(see_a) || !lasting(see_b) {
                    return Err(LinkError::NoAccess);
                }
                Some(principal)
            }
        };
        if link {
            let (Some(record_a), Some(record_b)) = (
                store.patient(a).await.map_err(|e| LinkError::Store(e.to_string()))?,
                store.patient(b).await.map_err(|e| LinkError::Store(e.to_string()))?,
            ) else {
                return Err(LinkError::NoAccess);
            };
            crate::identity::may_link(&record_a, &record_b).map_err(LinkError::NotOnePerson)?;
        }
        Ok(principal)
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
        let mode = AccessMode::BreakTheGlass { regulation, expires_at: 0 }.as_str();
        let checked = self.check_break_glass(principal, ins, reason, duration).await;
        let (patient, reason) = match checked {
            Ok(ok) => ok,
            Err(refused) => {
                // The kind of refusal only: the reason is the professional's words and the INS
                // identifies a patient, neither goes in the trail.
                let kind = match &refused {
                    BreakGlassError::NotAProfessional => "not_a_professional",
                    BreakGlassError::ReasonTooShort { .. } => "reason_too_short",
                    BreakGlassError::BadDuration { .. } => "bad_duration",
                    BreakGlassError::UnknownPatient => "unknown_patient",
                    BreakGlassError::InvalidIns => "invalid_ins",
                    BreakGlassError::Failed(_) => return Err(refused),
                };
                self.record(AuditEntry {
                    actor: Some(&principal.account),
                    action: Some(Action::BreakGlassRefused),
                    mode: Some(mode),
                    address: principal.address.as_deref(),
                    detail: Some(kind.to_string()),
                    ..Default::default()
                })
                .await?;
                return Err(refused);
            }
        };
        let now = now_epoch();
        sqlx::query(
            "INSERT INTO break_glass (id, account_id, patient_id, reason, started_at, expires_at, regulation) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(Uuid::new_v4().to_string())
        .bind(principal.account.id.to_string())
        .bind(patient.to_string())
        .bind(reason)
        .bind(now)
        .bind(now + duration.as_secs() as i64)
        .bind(i64::from(regulation))
        .execute(self.db.pool())
        .await
        .map_err(query_err("recording a break-the-glass access"))?;
        // The reason is the professional's words about the situation: it stays in the
        // break-the-glass table (shown to the patient), not in the audit trail.
        self.record(AuditEntry {
            actor: Some(&principal.account),
            patient: Some(patient),
            action: Some(Action::BreakGlassStart),
            mode: Some(mode),
            address: principal.address.as_deref(),
            detail: Some(format!("minutes={}", duration.as_secs() / 60)),
        })
        .await?;
        Ok(patient)
    }

    /// The checks of a break-the-glass request, in order: who asks, the reason, the duration,
    /// the patient. The trimmed reason comes back with the patient.
    async fn check_break_glass<'r>(
        &self,
        principal: &Principal,
        ins: &str,
        reason: &'r str,
        duration: Duration,
    ) -> Result<(PatientId, &'r str), BreakGlassError> {
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
        // A mistyped INS (its key does not match) is said as such, not as "no such patient".
        let typed: String = ins.chars().filter(|c| !c.is_whitespace()).collect();
        if typed.len() == 15 && crate::domain::Ins::new(crate::domain::InsKind::Nir.oid(), &typed).is_err() {
            return Err(BreakGlassError::InvalidIns);
        }
        let patient = self.patient_by_ins(ins).await?.ok_or(BreakGlassError::UnknownPatient)?;
        Ok((patient, reason))
    }

    /// Ends this professional's break-the-glass access to a patient before it expires.
    /// Each access ended is recorded in its own mode (`break_glass` or `centre_15`).
    pub async fn end_break_glass(&self, principal: &Principal, patient: PatientId) -> Result<bool, AccessError> {
        let ended: Vec<i64> = sqlx::query_scalar(
            "UPDATE break_glass SET ended_at = $1 WHERE account_id = $2 AND patient_id = $3 AND ended_at IS NULL AND expires_at > $1
             RETURNING regulation",
        )
        .bind(now_epoch())
        .bind(principal.account.id.to_string())
        .bind(patient.to_string())
        .fetch_all(self.db.pool())
        .await
        .map_err(query_err("ending a break-the-glass access"))?;
        for regulation in &ended {
            self.record(AuditEntry {
                actor: Some(&principal.account),
                patient: Some(patient),
                action: Some(Action::BreakGlassEnd),
                mode: Some(AccessMode::BreakTheGlass { regulation: *regulation != 0, expires_at: 0 }.as_str()),
                address: principal.address.as_deref(),
                detail: None,
            })
            .await?;
        }
        Ok(!ended.is_empty())
    }

    /// The break-the-glass accesses of this user in force now.
    pub async fn active_break_glass(&self, principal: &Principal) -> Result<Vec<BreakGlassGrant>, AccessError> {
        sqlx::query_as(
            "SELECT patient_id, reason, expires_at FROM break_glass
             WHERE account_id = $1 AND ended_at IS NULL AND started_at <= $2 AND expires_at > $2 ORDER BY expires_at",
        )
        .bind(principal.account.id.to_string())
        .bind(now_epoch())
        .fetch_all(self.db.pool())
        .await
        .map_err(query_err("listing break-the-glass accesses"))
    }

    // --- audit trail ------------------------------------------------------------------------

    /// Appends one record to the hash chain, keyed; every `checkpoint_every` records the new
    /// head also goes to the checkpoint file.
    pub async fn record(&self, entry: AuditEntry<'_>) -> Result<(), AccessError> {
        // Group commit: the entry waits in `pending`; whoever holds the append lock next writes
        // every waiting entry in one transaction (one head read, one commit for many views:
        // under load the appends no longer queue one commit each). The caller returns once its
        // own entry is committed, as before: nothing is read before its access is recorded.
        let (done, mut written) = tokio::sync::oneshot::channel();
        let record = AuditRecord {
            seq: 0,
            at: String::new(),
            actor_id: entry.actor.map(|a| a.id.to_string()),
            actor_role: entry.actor.map(|a| a.role.as_str().to_string()),
            patient_id: entry.patient.map(|p| p.to_string()),
            action: entry.action.map(Action::as_str).unwrap_or("unknown").to_string(),
            mode: entry.mode.map(str::to_string),
            address: entry.address.map(str::to_string),
            detail: entry.detail,
            prev_hash: String::new(),
            hash: String::new(),
            scheme: String::new(),
        };
        let own = record.clone();
        self.pending_appends.lock().unwrap_or_else(|e| e.into_inner()).push((record, done));
        let _serialised = self.audit_lock.lock().await;
        match written.try_recv() {
            // Written meanwhile by the previous holder of the lock, with its batch.
            Ok(outcome) => return outcome.map_err(AccessError::AuditAppend),
            // Still waiting: this call writes the batch.
            Err(tokio::sync::oneshot::error::TryRecvError::Empty) => {}
            // Taken by a holder whose request was dropped before it answered (the client went
            // away): written or not, it is appended again (an access recorded twice, never none).
            Err(tokio::sync::oneshot::error::TryRecvError::Closed) => {
                let (done, again) = tokio::sync::oneshot::channel();
                self.pending_appends.lock().unwrap_or_else(|e| e.into_inner()).push((own, done));
                written = again;
            }
        }
        let batch: Vec<(AuditRecord, tokio::sync::oneshot::Sender<Result<(), String>>)> =
            std::mem::take(&mut *self.pending_appends.lock().unwrap_or_else(|e| e.into_inner()));
        let (records, waiting): (Vec<AuditRecord>, Vec<_>) = batch.into_iter().unzip();
        // Each attempt seals its own copy (a retry starts again from the head it reads).
        let outcome = crate::store::db::retrying(|| self.append_batch(records.clone()), AccessError::is_transient).await;
        let shared = outcome.as_ref().map(|_| ()).map_err(ToString::to_string);
        for done in waiting {
            let _ = done.send(shared.clone());
        }
        match written.try_recv() {
            Ok(outcome) => outcome.map_err(AccessError::AuditAppend),
            // Not possible (this call's entry was in the batch it took), said rather than assumed.
            Err(_) => Err(AccessError::AuditAppend("the audit entry was not in the batch written".into())),
        }
    }

    /// One attempt at appending these records, in order, in one transaction (tried again, from
    /// the head's read, on a transient failure).
    async fn append_batch(&self, records: Vec<AuditRecord>) -> Result<(), AccessError> {
        let mut tx = self.db.begin_write().await.map_err(query_err("starting an audit append"))?;
        let last: Option<(i64, String)> = sqlx::query_as("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await
            .map_err(query_err("reading the audit head"))?;
        let (mut last_seq, mut prev_hash) = last.unwrap_or((0, GENESIS.to_string()));
        let mut checkpoints = Vec::new();
        for mut record in records {
            record.seq = last_seq + 1;
            record.at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            record.prev_hash = prev_hash;
            record.seal(&self.audit_key);
            sqlx::query(
                "INSERT INTO audit_events (seq, at, actor_id, actor_role, patient_id, action, mode, address, detail, prev_hash, hash, scheme)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
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
            .bind(&record.scheme)
            .execute(&mut *tx)
            .await
            .map_err(query_err("appending to the audit trail"))?;
            if record.seq % self.settings.checkpoint_every.max(1) == 0 {
                checkpoints.push(Checkpoint { at: record.at.clone(), seq: record.seq, hash: record.hash.clone() });
            }
            last_seq = record.seq;
            prev_hash = record.hash;
        }
        tx.commit().await.map_err(query_err("committing audit records"))?;
        for checkpoint in checkpoints {
            self.write_checkpoint(checkpoint);
        }
        Ok(())
    }

    /// Appends the head to the checkpoint file (when there is one) and logs it. A failure to
    /// write is logged, never fatal: the record itself is in the chain.
    fn write_checkpoint(&self, checkpoint: Checkpoint) {
        tracing::info!(seq = checkpoint.seq, hash = %checkpoint.hash, "audit trail head");
        let Some(path) = &self.settings.audit_checkpoints else { return };
        let mut last = self.last_checkpoint.lock().unwrap_or_else(|e| e.into_inner());
        if checkpoint.seq <= *last {
            return;
        }
        match audit_files::append_checkpoint(path, &checkpoint) {
            Ok(()) => *last = checkpoint.seq,
            Err(e) => tracing::error!(error = %e, "the audit checkpoint could not be written"),
        }
    }

    /// Writes the current head as a checkpoint if the chain grew since the last one (the
    /// server calls it every few minutes, so a quiet trail is checkpointed too).
    pub async fn checkpoint(&self) -> Result<(), AccessError> {
        let head: Option<(String, i64, String)> = sqlx::query_as("SELECT at, seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
            .fetch_optional(self.db.pool())
            .await
            .map_err(query_err("reading the audit head"))?;
        if let Some((at, seq, hash)) = head {
            self.write_checkpoint(Checkpoint { at, seq, hash });
        }
        Ok(())
    }

    /// Reads the chain in order, a page at a time, through the verifier; stops at the first bad
    /// record.
    async fn walk_chain(&self, key: Option<AuditKey>) -> Result<Result<ChainVerifier, ChainBreak>, AccessError> {
        let mut verifier = ChainVerifier::new(key);
        let mut after = 0i64;
        loop {
            let records: Vec<AuditRecord> = sqlx::query_as(
                "SELECT seq, at, actor_id, actor_role, patient_id, action, mode, address, detail, prev_hash, hash, scheme
                 FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT 5000",
            )
            .bind(after)
            .fetch_all(self.db.pool())
            .await
            .map_err(query_err("reading the audit trail"))?;
            if records.is_empty() {
                return Ok(Ok(verifier));
            }
            for record in records {
                if let Err(bad) = verifier.check(&record) {
                    return Ok(Err(bad));
                }
                after = record.seq;
            }
        }
    }

    /// The append-only triggers of the audit trail that are missing (someone with the database
    /// dropped them); empty when both are there.
    pub async fn append_only_missing(&self) -> Result<Vec<&'static str>, AccessError> {
        let mut missing = Vec::new();
        for name in ["audit_events_no_update", "audit_events_no_delete"] {
            let found: Option<i64> = sqlx::query_scalar(self.db.dialect().find_trigger())
                .bind(name)
                .fetch_optional(self.db.pool())
                .await
                .map_err(query_err("checking the audit triggers"))?;
            if found.is_none() {
                missing.push(name);
            }
        }
        Ok(missing)
    }

    /// Puts the append-only triggers back (as the migration created them).
    pub async fn restore_append_only(&self) -> Result<(), AccessError> {
        for sql in self.db.dialect().restore_audit_triggers() {
            sqlx::query(*sql).execute(self.db.pool()).await.map_err(query_err("restoring the audit triggers"))?;
        }
        Ok(())
    }

    /// Checks the whole chain with the key; names the first bad record. The chain must end on
    /// a keyed record (see [`ChainVerifier::finish`]).
    pub async fn verify_audit(&self) -> Result<Result<ChainHead, ChainBreak>, AccessError> {
        Ok(self.walk_chain(Some(self.audit_key.clone())).await?.and_then(ChainVerifier::finish))
    }

    /// For a key just created: the chain so far must verify (plain records, or none; a keyed
    /// record means the key it was written with is lost), then a keyed `audit_keyed` record
    /// seals it, so that from now on a chain ending on a plain record is a rewritten one.
    pub async fn seal_with_new_key(&self) -> Result<Result<ChainHead, ChainBreak>, AccessError> {
        let head = match self.walk_chain(Some(self.audit_key.clone())).await? {
            Ok(verifier) => verifier.head(),
            Err(bad) => return Ok(Err(bad)),
        };
        if head.records > 0 && !head.keyed {
            self.record(AuditEntry {
                action: Some(Action::AuditKeyed),
                detail: Some(format!("plain_records={}", head.records)),
                ..Default::default()
            })
            .await?;
        }
        self.verify_audit().await
    }

    /// The hash the chain holds at `seq` now.
    async fn audit_hash_at(&self, seq: i64) -> Result<Option<String>, AccessError> {
        sqlx::query_scalar("SELECT hash FROM audit_events WHERE seq = $1")
            .bind(seq)
            .fetch_optional(self.db.pool())
            .await
            .map_err(query_err("reading an audit record"))
    }

    /// The chain verified with the key, then every checkpoint still in it, then (when given)
    /// the head noted earlier still its head.
    pub async fn verify_audit_against(
        &self,
        checkpoints: &[Checkpoint],
        expected_head: Option<(i64, &str)>,
    ) -> Result<Result<ChainHead, ChainBreak>, AccessError> {
        let head = match self.verify_audit().await? {
            Ok(head) => head,
            Err(bad) => return Ok(Err(bad)),
        };
        for checkpoint in checkpoints {
            if let Err(bad) = audit::check_checkpoint(checkpoint, self.audit_hash_at(checkpoint.seq).await?.as_deref()) {
                return Ok(Err(bad));
            }
        }
        if let Some((seq, hash)) = expected_head {
            let stored = self.audit_hash_at(seq).await?;
            if let Err(bad) = audit::check_expected_head(&head, seq, hash, stored.as_deref()) {
                return Ok(Err(bad));
            }
        }
        Ok(Ok(head))
    }

    /// Raises the alarm that the chain is broken (the server started anyway, on the
    /// administrator's word): an `alarm` record the administration page lists.
    pub async fn alarm_broken_chain(&self, bad: &ChainBreak) -> Result<(), AccessError> {
        tracing::error!(first_bad_record = bad.first_bad_record(), "ALARM: the audit trail is broken: {bad}");
        self.record(AuditEntry {
            action: Some(Action::Alarm),
            detail: Some(format!("kind={ALARM_BROKEN_CHAIN} first_bad_record={}", bad.first_bad_record())),
            ..Default::default()
        })
        .await
    }

    /// The alarms, newest first (the administration page): what, when, which account, the
    /// count. No patient: alarms are recorded without one.
    pub async fn alarms(&self, by: AdminActor<'_>) -> Result<Vec<AlarmLine>, AdminError> {
        Self::authorize_admin(by)?;
        let rows: Vec<(String, Option<String>, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT e.at, e.detail, a.login, a.display_name FROM audit_events e LEFT JOIN accounts a ON a.id = e.actor_id
             WHERE e.action = 'alarm' ORDER BY e.seq DESC LIMIT 500",
        )
        .fetch_all(self.db.pool())
        .await
        .map_err(|e| AdminError::Failed(query_err("listing alarms")(e)))?;
        Ok(rows.into_iter().map(|(at, detail, login, name)| alarm_line(at, detail.as_deref().unwrap_or(""), login, name)).collect())
    }

    /// When this user last saw this patient's results before the current session (RFC 3339,
    /// UTC): the "since last visit" date the cumulative table offers. Views of this session do
    /// not count, refused attempts neither.
    pub async fn previous_visit(&self, principal: &Principal, patient: PatientId) -> Result<Option<String>, AccessError> {
        let session_start: Option<i64> = sqlx::query_scalar("SELECT created_at FROM sessions WHERE token_sha256 = $1")
            .bind(&principal.session_digest)
            .fetch_optional(self.db.pool())
            .await
            .map_err(query_err("reading a session"))?;
        let Some(session_start) = session_start.and_then(|t| chrono::DateTime::from_timestamp(t, 0)) else { return Ok(None) };
        let before = session_start.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        sqlx::query_scalar(
            "SELECT max(at) FROM audit_events
             WHERE patient_id = $1 AND actor_id = $2 AND at < $3 AND (mode IS NULL OR mode <> 'denied')
               AND action IN ('view_patient', 'view_history', 'view_chart', 'view_document')",
        )
        .bind(patient.to_string())
        .bind(principal.account.id.to_string())
        .bind(before)
        .fetch_one(self.db.pool())
        .await
        .map_err(query_err("reading the previous visit"))
    }

    /// Who accessed this patient's record, newest first (what the patient reads), one page
    /// of [`ACCESS_LOG_PAGE`] (`page` from 0), with the number of accesses in all. Refused
    /// requests are not accesses: [`Access::refusals_of`] groups them apart, so no number of
    /// them pushes a genuine access out of sight.
    pub async fn access_log(&self, patient: PatientId, page: u32) -> Result<(Vec<AccessLogLine>, i64), AccessError> {
        // at, action, mode, who, role, profession, structure
        type Row = (String, String, Option<String>, Option<String>, Option<String>, Option<String>, Option<String>);
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT e.at, e.action, e.mode, a.display_name, a.role, a.profession, a.structure_name
             FROM audit_events e LEFT JOIN accounts a ON a.id = e.actor_id
             WHERE {GENUINE_ACCESS} ORDER BY e.seq DESC LIMIT $2 OFFSET $3"
        ));
        let rows: Vec<Row> = sqlx::query_as(sql)
            .bind(patient.to_string())
            .bind(ACCESS_LOG_PAGE)
            .bind(i64::from(page) * ACCESS_LOG_PAGE)
            .fetch_all(self.db.pool())
            .await
            .map_err(query_err("reading an access log"))?;
        let count = sqlx::AssertSqlSafe(format!("SELECT count(*) FROM audit_events e WHERE {GENUINE_ACCESS}"));
        let total: i64 = sqlx::query_scalar(count)
            .bind(patient.to_string())
            .fetch_one(self.db.pool())
            .await
            .map_err(query_err("counting an access log"))?;
        let lines = rows
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
            .collect();
        Ok((lines, total))
    }

    /// The refused requests for this patient's record, one line per account: who, how many,
    /// first and last time; the latest first.
    pub async fn refusals_of(&self, patient: PatientId) -> Result<Vec<RefusalGroup>, AccessError> {
        type Row = (Option<String>, Option<String>, Option<String>, Option<String>, i64, String, String);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT a.display_name, a.role, a.profession, a.structure_name, count(*), min(e.at), max(e.at)
             FROM audit_events e LEFT JOIN accounts a ON a.id = e.actor_id
             WHERE e.patient_id = $1 AND e.mode IN ('denied', 'throttled')
             GROUP BY e.actor_id, a.display_name, a.role, a.profession, a.structure_name ORDER BY max(e.seq) DESC",
        )
        .bind(patient.to_string())
        .fetch_all(self.db.pool())
        .await
        .map_err(query_err("reading refused accesses"))?;
        Ok(rows
            .into_iter()
            .map(|(who, role, profession, structure, count, first_at, last_at)| RefusalGroup {
                who,
                role,
                profession,
                structure,
                count: count.max(0) as u64,
                first_at,
                last_at,
            })
            .collect())
    }

    /// The break-the-glass accesses to a patient's record with their reasons, newest first.
    pub async fn break_glass_history(&self, patient: PatientId) -> Result<Vec<(String, String, i64, i64)>, AccessError> {
        sqlx::query_as(
            // Ended early: the real end, not the one planned.
            "SELECT a.display_name, b.reason, b.started_at, CASE WHEN b.ended_at IS NOT NULL AND b.ended_at < b.expires_at THEN b.ended_at ELSE b.expires_at END
             FROM break_glass b JOIN accounts a ON a.id = b.account_id
             WHERE b.patient_id = $1 ORDER BY b.started_at DESC",
        )
        .bind(patient.to_string())
        .fetch_all(self.db.pool())
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
        if login.is_empty() || login.len() > LOGIN_MAX_BYTES || !login.chars().all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c)) {
            return Err(AdminError::Invalid(AdminProblem::BadLogin));
        }
        if new.display_name.trim().is_empty() {
            return Err(AdminError::Invalid(AdminProblem::NoName));
        }
        if let Some(password) = &new.password
            && (password.chars().count() < 12 || password.len() > PASSWORD_MAX_BYTES)
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
            let Some(number) = national_id_number(rpps) else { return Err(AdminError::Invalid(AdminProblem::BadNationalId)) };
            // One person, one id: the same number under another root, or with leading zeros,
            // is the same id.
            let existing: Vec<String> = sqlx::query_scalar("SELECT rpps FROM accounts WHERE rpps IS NOT NULL")
                .fetch_all(self.db.pool())
                .await
                .map_err(query_err("checking a national id"))?;
            if existing.iter().filter_map(|other| national_id_number(other)).any(|other| other == number) {
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
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING",
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
        .execute(self.db.pool())
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
                "SELECT DISTINCT patient_id FROM documents WHERE prescriber_id = $1 AND patient_id IS NOT NULL AND source IN ('dmp', 'operator')",
            )
            .bind(rpps)
            .fetch_all(self.db.pool())
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
        let id: Option<String> = sqlx::query_scalar("UPDATE accounts SET disabled = $1 WHERE login = $2 RETURNING id")
            .bind(i64::from(disabled))
            .bind(&login)
            .fetch_optional(self.db.pool())
            .await
            .map_err(query_err("disabling an account"))?;
        let id = id.ok_or_else(|| AdminError::Invalid(AdminProblem::UnknownAccount))?;
        if disabled {
            sqlx::query("DELETE FROM sessions WHERE account_id = $1")
                .bind(&id)
                .execute(self.db.pool())
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
        let sql = sqlx::AssertSqlSafe(format!("SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.login = $1"));
        let row = sqlx::query(sql)
            .bind(login.trim().to_lowercase())
            .fetch_optional(self.db.pool())
            .await
            .map_err(query_err("reading an account"))?;
        row.as_ref().map(account_from_row).transpose()
    }

    pub async fn accounts(&self, by: AdminActor<'_>) -> Result<Vec<Account>, AdminError> {
        Self::authorize_admin(by)?;
        let sql = sqlx::AssertSqlSafe(format!("SELECT {ACCOUNT_COLUMNS} FROM accounts a ORDER BY a.role, a.login"));
        let rows = sqlx::query(sql).fetch_all(self.db.pool()).await.map_err(query_err("listing accounts"))?;
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
            "INSERT INTO care_relationships (id, account_id, patient_id, kind, starts_at, ends_at, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&id)
        .bind(account.id.to_string())
        .bind(patient.to_string())
        .bind(kind)
        .bind(now)
        .bind(days.map(|d| now + i64::from(d) * 86_400))
        .bind(by.map(|p| p.account.id.to_string()).unwrap_or_else(|| "cli".into()))
        .bind(chrono::Utc::now().to_rfc3339())
        .execute(self.db.pool())
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
            "UPDATE care_relationships SET ends_at = $1 WHERE id = $2 AND (ends_at IS NULL OR ends_at > $1) RETURNING patient_id",
        )
        .bind(now_epoch())
        .bind(id)
        .fetch_optional(self.db.pool())
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
             WHERE r.ends_at IS NULL OR r.ends_at > $1 ORDER BY a.login, p.family_name",
        )
        .bind(now_epoch())
        .fetch_all(self.db.pool())
        .await
        .map_err(|e| AdminError::Failed(query_err("listing care relationships")(e)))
    }
}

/// An alarm record's detail (`kind=… refusals=… …`) as the administration page shows it.
fn alarm_line(at: String, detail: &str, login: Option<String>, name: Option<String>) -> AlarmLine {
    let field = |name: &str| detail.split_whitespace().find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='));
    let number = |name: &str| field(name).and_then(|v| v.parse::<i64>().ok());
    AlarmLine {
        at,
        kind: field("kind").unwrap_or("unknown").to_string(),
        login,
        name,
        refusals: number("refusals"),
        window_minutes: number("window_minutes"),
        first_bad_record: number("first_bad_record"),
    }
}

#[cfg(test)]
mod alarm_tests {
    use super::*;

    #[test]
    fn an_alarm_detail_reads_back_as_its_line() {
        let line = alarm_line("t".into(), "kind=refusals refusals=21 window_minutes=10 blocked_minutes=15", Some("gp".into()), None);
        assert_eq!((line.kind.as_str(), line.refusals, line.window_minutes, line.first_bad_record), ("refusals", Some(21), Some(10), None));
        let line = alarm_line("t".into(), "kind=audit_chain_broken first_bad_record=5", None, None);
        assert_eq!((line.kind.as_str(), line.first_bad_record), ("audit_chain_broken", Some(5)));
    }
}
