-- State every instance over one database must share (issue 13): upload outcomes and the refusal
-- throttle. What each file of an upload became (see server/migrations/sqlite/0013_shared_state.sql).
CREATE TABLE upload_outcomes (
    token       TEXT PRIMARY KEY NOT NULL,
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    files_json  TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX upload_outcomes_by_age ON upload_outcomes (created_at);

-- Repeated refused patient requests per account (see the SQLite migration).
CREATE TABLE refusal_throttle (
    account_id    TEXT PRIMARY KEY NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    refusals      TEXT NOT NULL,
    blocked_until BIGINT NOT NULL DEFAULT 0
);

-- "Since your last visit": one clinician's last view of one patient.
CREATE INDEX audit_by_patient_actor ON audit_events (patient_id, actor_id, at);
