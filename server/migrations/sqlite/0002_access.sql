-- Who may see what (issue 7): accounts, sessions, care relationships, break-the-glass and the
-- hash-chained audit trail.

-- The prescriber of a report (RPPS "root^extension"): a professional who prescribed one of the
-- patient's reports has a care relationship with them.
ALTER TABLE documents ADD COLUMN prescriber_id TEXT;
CREATE INDEX documents_by_prescriber ON documents (prescriber_id, patient_id);

CREATE TABLE accounts (
    id             TEXT PRIMARY KEY NOT NULL,        -- UUID
    login          TEXT NOT NULL UNIQUE,             -- lower case
    password_hash  TEXT,                             -- argon2id PHC string; NULL: OpenID Connect only
    role           TEXT NOT NULL CHECK (role IN ('professional', 'patient', 'admin')),
    display_name   TEXT NOT NULL,
    -- Professionals: identity sent in the VIHF.
    rpps           TEXT,                             -- national professional id (root^extension)
    profession     TEXT,                             -- e.g. "Médecin généraliste"
    structure_id   TEXT,
    structure_name TEXT,
    -- Patients: the one record they may read.
    patient_id     TEXT REFERENCES patients (id),
    oidc_subject   TEXT UNIQUE,
    disabled       INTEGER NOT NULL DEFAULT 0,
    created_at     TEXT NOT NULL,
    CHECK (role <> 'patient' OR patient_id IS NOT NULL)
) STRICT;

-- Only the SHA-256 of a session token is stored: a copy of the database opens no session.
CREATE TABLE sessions (
    token_sha256 TEXT PRIMARY KEY NOT NULL,
    account_id   TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    csrf_token   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,                   -- epoch seconds
    last_seen_at INTEGER NOT NULL,
    address      TEXT
) STRICT;
CREATE INDEX sessions_by_account ON sessions (account_id);

CREATE TABLE care_relationships (
    id          TEXT PRIMARY KEY NOT NULL,
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    patient_id  TEXT NOT NULL REFERENCES patients (id),
    kind        TEXT NOT NULL CHECK (kind IN ('attending_gp', 'hospital_stay')),
    starts_at   INTEGER NOT NULL,                    -- epoch seconds
    ends_at     INTEGER,                             -- NULL: until ended
    created_by  TEXT NOT NULL,
    created_at  TEXT NOT NULL
) STRICT;
CREATE INDEX care_by_account ON care_relationships (account_id, patient_id);

CREATE TABLE break_glass (
    id          TEXT PRIMARY KEY NOT NULL,
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    patient_id  TEXT NOT NULL REFERENCES patients (id),
    reason      TEXT NOT NULL,
    started_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    ended_at    INTEGER
) STRICT;
CREATE INDEX break_glass_by_account ON break_glass (account_id, patient_id);

-- Append-only, hash-chained: hash = SHA-256(previous hash | the record's fields), see
-- server/src/access/audit.rs. The triggers stop ordinary updates and deletes; the chain detects
-- what someone with raw access to the file changes anyway (`bioviewer audit verify`).
CREATE TABLE audit_events (
    seq         INTEGER PRIMARY KEY NOT NULL,
    at          TEXT NOT NULL,                       -- RFC 3339 UTC, milliseconds
    actor_id    TEXT,                                -- account UUID; NULL for the system
    actor_role  TEXT,
    patient_id  TEXT,                                -- the only patient datum recorded
    action      TEXT NOT NULL,
    mode        TEXT,                                -- attending_gp | hospital_stay | prescriber | break_glass | own_record | denied
    address     TEXT,
    detail      TEXT,                                -- never clinical data
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL UNIQUE
) STRICT;
CREATE INDEX audit_by_patient ON audit_events (patient_id, seq);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
