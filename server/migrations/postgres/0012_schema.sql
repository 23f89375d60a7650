-- The PostgreSQL schema, as SQLite's migrations 0001 to 0012 leave theirs (server/migrations/sqlite,
-- where each table and column is explained). PostgreSQL support arrived with schema version 12: its
-- history starts here, under the same number, and every later migration is written twice, once in
-- each folder, under one number.
--
-- Types are chosen so that both databases hand the store the same values: ids, times written as
-- RFC 3339 and codes are TEXT; counts and epoch times BIGINT (SQLite's INTEGER is 64 bits); flags
-- BIGINT 0/1 as in SQLite; document bytes BYTEA.

CREATE TABLE patients (
    id              TEXT PRIMARY KEY NOT NULL,
    ins_root        TEXT NOT NULL,
    ins             TEXT NOT NULL,
    family_name     TEXT,
    given_names     TEXT,
    birth_date      TEXT,
    sex             TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    identity_source TEXT NOT NULL DEFAULT 'operator',
    UNIQUE (ins_root, ins)
);
CREATE INDEX patients_by_ins_number ON patients (ins);

CREATE TABLE accounts (
    id             TEXT PRIMARY KEY NOT NULL,
    login          TEXT NOT NULL UNIQUE,
    password_hash  TEXT,
    role           TEXT NOT NULL CHECK (role IN ('professional', 'patient', 'admin')),
    display_name   TEXT NOT NULL,
    rpps           TEXT,
    profession     TEXT,
    structure_id   TEXT,
    structure_name TEXT,
    patient_id     TEXT REFERENCES patients (id),
    oidc_subject   TEXT UNIQUE,
    disabled       BIGINT NOT NULL DEFAULT 0,
    created_at     TEXT NOT NULL,
    CHECK (role <> 'patient' OR patient_id IS NOT NULL)
);
CREATE UNIQUE INDEX accounts_by_rpps ON accounts (rpps) WHERE rpps IS NOT NULL;

CREATE TABLE documents (
    id               TEXT PRIMARY KEY NOT NULL,
    patient_id       TEXT REFERENCES patients (id),
    content_sha256   TEXT NOT NULL UNIQUE,
    size_bytes       BIGINT NOT NULL,
    source           TEXT NOT NULL,
    source_name      TEXT,
    cda_id           TEXT,
    set_id           TEXT,
    version_number   BIGINT,
    kind             TEXT,
    report_status    TEXT,
    title            TEXT,
    laboratory       TEXT,
    effective_time   TEXT,
    effective_epoch  BIGINT,
    parse_error      TEXT,
    imported_at      TEXT NOT NULL,
    prescriber_id    TEXT,
    parse_error_code TEXT,
    uploaded_by      TEXT,
    dmp_entry        TEXT
);
CREATE INDEX documents_by_patient ON documents (patient_id, effective_epoch DESC);
CREATE INDEX documents_by_set ON documents (set_id, version_number);
CREATE INDEX documents_by_prescriber ON documents (prescriber_id, patient_id);
CREATE INDEX documents_by_cda_id ON documents (cda_id);
CREATE INDEX documents_by_patient_source ON documents (patient_id, source);

CREATE TABLE document_contents (
    document_id TEXT PRIMARY KEY NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    raw         BYTEA NOT NULL
);

CREATE TABLE sessions (
    token_sha256 TEXT PRIMARY KEY NOT NULL,
    account_id   TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    csrf_token   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    address      TEXT
);
CREATE INDEX sessions_by_account ON sessions (account_id);

CREATE TABLE care_relationships (
    id          TEXT PRIMARY KEY NOT NULL,
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    patient_id  TEXT NOT NULL REFERENCES patients (id),
    kind        TEXT NOT NULL CHECK (kind IN ('attending_gp', 'hospital_stay')),
    starts_at   BIGINT NOT NULL,
    ends_at     BIGINT,
    created_by  TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX care_by_account ON care_relationships (account_id, patient_id);

CREATE TABLE break_glass (
    id          TEXT PRIMARY KEY NOT NULL,
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    patient_id  TEXT NOT NULL REFERENCES patients (id),
    reason      TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    ended_at    BIGINT,
    regulation  BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX break_glass_by_account ON break_glass (account_id, patient_id);

CREATE TABLE audit_events (
    seq         BIGINT PRIMARY KEY NOT NULL,
    at          TEXT NOT NULL,
    actor_id    TEXT,
    actor_role  TEXT,
    patient_id  TEXT,
    action      TEXT NOT NULL,
    mode        TEXT,
    address     TEXT,
    detail      TEXT,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL UNIQUE,
    scheme      TEXT NOT NULL DEFAULT 'sha256'
);
CREATE INDEX audit_by_patient ON audit_events (patient_id, seq);
CREATE INDEX audit_by_patient_mode ON audit_events (patient_id, mode, seq);
CREATE INDEX audit_by_action ON audit_events (action, seq);

-- Append-only: the triggers stop ordinary updates and deletes; the keyed chain detects what
-- someone with raw access changes anyway (`bioviewer audit verify`).
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only';
END
$$;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();

CREATE TABLE identity_alerts (
    id          TEXT PRIMARY KEY NOT NULL,
    patient_id  TEXT NOT NULL REFERENCES patients (id),
    document_id TEXT REFERENCES documents (id),
    kind        TEXT NOT NULL,
    detail      TEXT,
    at          TEXT NOT NULL
);
CREATE INDEX identity_alerts_by_patient ON identity_alerts (patient_id);

CREATE TABLE sign_in_throttle (
    key      TEXT PRIMARY KEY NOT NULL,
    failures BIGINT NOT NULL,
    last_at  BIGINT NOT NULL
);
CREATE INDEX sign_in_throttle_by_age ON sign_in_throttle (last_at);

CREATE TABLE fhir_clients (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    account_id   TEXT NOT NULL REFERENCES accounts (id),
    scope        TEXT NOT NULL,
    token_sha256 TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);

CREATE TABLE patient_identifiers (
    authority    TEXT NOT NULL,
    value        TEXT NOT NULL,
    patient_id   TEXT NOT NULL REFERENCES patients (id),
    kind         TEXT NOT NULL,
    learned_from TEXT NOT NULL,
    first_seen   TEXT NOT NULL,
    PRIMARY KEY (authority, value)
);
CREATE INDEX patient_identifiers_by_patient ON patient_identifiers (patient_id);

CREATE TABLE patient_links (
    id          TEXT PRIMARY KEY NOT NULL,
    patient_a   TEXT NOT NULL REFERENCES patients (id),
    patient_b   TEXT NOT NULL REFERENCES patients (id),
    linked_by   TEXT,
    linked_at   TEXT NOT NULL,
    unlinked_by TEXT,
    unlinked_at TEXT,
    CHECK (patient_a <> patient_b)
);
CREATE INDEX patient_links_a ON patient_links (patient_a) WHERE unlinked_at IS NULL;
CREATE INDEX patient_links_b ON patient_links (patient_b) WHERE unlinked_at IS NULL;

CREATE TABLE dmp_syncs (
    patient_id    TEXT PRIMARY KEY,
    holder        TEXT,
    lease_until   BIGINT NOT NULL DEFAULT 0,
    started_at    BIGINT NOT NULL,
    finished_at   BIGINT,
    succeeded_at  TEXT NOT NULL DEFAULT '',
    report_json   TEXT,
    error         TEXT
);

CREATE TABLE treatment_targets (
    id          TEXT PRIMARY KEY NOT NULL,
    patient_id  TEXT NOT NULL REFERENCES patients (id),
    analyte     TEXT NOT NULL,
    low         TEXT,
    high        TEXT,
    unit        TEXT,
    set_by      TEXT NOT NULL REFERENCES accounts (id),
    set_at      TEXT NOT NULL,
    ended_by    TEXT REFERENCES accounts (id),
    ended_at    TEXT,
    CHECK (low IS NOT NULL OR high IS NOT NULL)
);
CREATE UNIQUE INDEX treatment_targets_current ON treatment_targets (patient_id, analyte) WHERE ended_at IS NULL;
