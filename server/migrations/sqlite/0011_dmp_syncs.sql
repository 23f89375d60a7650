-- A patient's DMP sync, shared by every instance on this database: at most one runs at a time
-- (its holder's lease, renewed while it runs and taken over once lapsed, when the instance that
-- held it died mid-sync), not more often than every few minutes, and its progress and outcome
-- show on every instance's pages. Counts, uniqueIds and error kinds only: no health data.
CREATE TABLE dmp_syncs (
    patient_id    TEXT PRIMARY KEY,
    -- The instance running it now; NULL when none runs.
    holder        TEXT,
    -- Epoch seconds: the holder's lease lapses then unless renewed.
    lease_until   INTEGER NOT NULL DEFAULT 0,
    -- Epoch seconds: the last start and the last end (success or failure).
    started_at    INTEGER NOT NULL,
    finished_at   INTEGER,
    -- RFC 3339 UTC: the end of the last successful sync ('' before the first).
    succeeded_at  TEXT NOT NULL DEFAULT '',
    -- The running or last sync's report (JSON: counts and failed uniqueIds with their reason).
    report_json   TEXT,
    -- The last sync's failure in words; NULL when it succeeded.
    error         TEXT
);
