-- What each file of an upload became (see server/migrations/sqlite/0013_upload_outcomes.sql).
CREATE TABLE upload_outcomes (
    token       TEXT PRIMARY KEY NOT NULL,
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    files_json  TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX upload_outcomes_by_age ON upload_outcomes (created_at);
