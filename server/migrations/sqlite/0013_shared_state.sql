-- What each file of an upload became, for the page the upload redirects to (issue 13: with
-- several instances, that page may be served by another instance than the one that stored the
-- files). Readable by the uploading account only, for 15 minutes; file names may name patients,
-- so they stay here and out of URLs and logs. Rows older than that are deleted at the next upload.
CREATE TABLE upload_outcomes (
    token       TEXT PRIMARY KEY NOT NULL,           -- random, 128 bits, in the redirect's URL
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    files_json  TEXT NOT NULL,                       -- [{name, outcome}] as the page shows them
    created_at  INTEGER NOT NULL                     -- epoch seconds
) STRICT;
CREATE INDEX upload_outcomes_by_age ON upload_outcomes (created_at);

-- Repeated refused patient requests per account (server/src/access/refusals.rs): with several
-- instances each counted its own, so an insider probing patient ids got as many tries again per
-- instance. The refusals inside the window (epoch milliseconds, a JSON array of at most the
-- limit + 1) and the block's end.
CREATE TABLE refusal_throttle (
    account_id    TEXT PRIMARY KEY NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    refusals      TEXT NOT NULL,
    blocked_until INTEGER NOT NULL DEFAULT 0
) STRICT;

-- "Since your last visit" reads one clinician's last view of one patient: found at once rather
-- than among every record of the patient (the trail grows by every view).
CREATE INDEX audit_by_patient_actor ON audit_events (patient_id, actor_id, at);
