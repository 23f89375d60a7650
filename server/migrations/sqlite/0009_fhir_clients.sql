-- Systems of the care team (an EHR, a hospital's results module) that read the FHIR API
-- (issue 16). An administrator issues each one a bearer token: the database keeps only its
-- SHA-256. A client acts on behalf of one professional account, so it sees exactly the
-- patients that professional may see (never by break-the-glass); it expires, may be revoked,
-- and every use is in the audit trail with the client's name.
CREATE TABLE fhir_clients (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    scope TEXT NOT NULL,
    token_sha256 TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);
